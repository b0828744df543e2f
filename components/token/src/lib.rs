//! The `token` component: serves `Group::TOKEN` (see `mcp_auth_core::Endpoint::TOKEN`).
//!
//! It calls out for one thing only: token exchange (RFC 8693) refreshes a user's upstream
//! token at the provider's token endpoint. The core sends nothing else from here (client
//! metadata documents are read from the cache on this side), and spin.toml's
//! `allowed_outbound_hosts` lets it reach the token endpoints' hosts only.

struct Token;

impl mcp_auth_wasi::IncomingHandler for Token {
    fn handle(request: mcp_auth_wasi::IncomingRequest, out: mcp_auth_wasi::ResponseOutparam) {
        mcp_auth_wasi::serve(
            request,
            out,
            &mcp_auth_wasi::Group::TOKEN,
            &mcp_auth_wasi::outbound::Http,
        );
    }
}

mcp_auth_wasi::export!(Token, mcp_auth_wasi::precompute_signing);
