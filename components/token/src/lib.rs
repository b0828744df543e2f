//! The `token` component: serves `Group::TOKEN` (see `mcp_auth_core::Endpoint::TOKEN`).

struct Token;

impl mcp_auth_wasi::IncomingHandler for Token {
    fn handle(request: mcp_auth_wasi::IncomingRequest, out: mcp_auth_wasi::ResponseOutparam) {
        mcp_auth_wasi::serve(
            request,
            out,
            &mcp_auth_wasi::Group::TOKEN,
            &mcp_auth_wasi::outbound::Denied,
        );
    }
}

mcp_auth_wasi::export!(Token, mcp_auth_wasi::precompute_signing);
