//! The `authorize` component: serves `Group::AUTHORIZE` (see `mcp_auth_core::Endpoint::AUTHORIZE`).

struct Authorize;

impl mcp_auth_wasi::IncomingHandler for Authorize {
    fn handle(request: mcp_auth_wasi::IncomingRequest, out: mcp_auth_wasi::ResponseOutparam) {
        mcp_auth_wasi::serve(
            request,
            out,
            &mcp_auth_wasi::Group::AUTHORIZE,
            &mcp_auth_wasi::outbound::Http,
        );
    }
}

mcp_auth_wasi::export!(Authorize);
