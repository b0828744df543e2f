//! Upstream identity providers.
