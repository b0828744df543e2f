//! The `registration` component: serves `Group::REGISTRATION` (see `mcp_auth_core::Endpoint::REGISTRATION`).

struct Registration;

impl mcp_auth_wasi::IncomingHandler for Registration {
    fn handle(request: mcp_auth_wasi::IncomingRequest, out: mcp_auth_wasi::ResponseOutparam) {
        mcp_auth_wasi::serve(
            request,
            out,
            &mcp_auth_wasi::Group::REGISTRATION,
            &mcp_auth_wasi::outbound::Denied,
        );
    }
}

mcp_auth_wasi::export!(Registration);
