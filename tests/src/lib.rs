//! End-to-end tests of mcp-auth over real HTTP; they live in `tests/e2e/`. This library is
//! empty on purpose: nothing here is for other crates.
