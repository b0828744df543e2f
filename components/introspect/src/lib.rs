//! The `introspect` component: serves `Group::INTROSPECT` (see `mcp_auth_core::Endpoint::INTROSPECT`).

struct Introspect;

impl mcp_auth_wasi::IncomingHandler for Introspect {
    fn handle(request: mcp_auth_wasi::IncomingRequest, out: mcp_auth_wasi::ResponseOutparam) {
        mcp_auth_wasi::serve(
            request,
            out,
            &mcp_auth_wasi::Group::INTROSPECT,
            &mcp_auth_wasi::outbound::Denied,
        );
    }
}

mcp_auth_wasi::export!(Introspect);
