//! One integration binary (one link) for every backend test.

mod conformance;
mod embedded;
mod redis;
mod runtime_config;
mod support;
