//! The `discovery` component: serves `Group::DISCOVERY` (see `mcp_auth_core::Endpoint::DISCOVERY`).

struct Discovery;

impl mcp_auth_wasi::IncomingHandler for Discovery {
    fn handle(request: mcp_auth_wasi::IncomingRequest, out: mcp_auth_wasi::ResponseOutparam) {
        mcp_auth_wasi::serve(
            request,
            out,
            &mcp_auth_wasi::Group::DISCOVERY,
            &mcp_auth_wasi::outbound::Denied,
        );
    }
}

mcp_auth_wasi::export!(Discovery, mcp_auth_wasi::precompute_signing);
