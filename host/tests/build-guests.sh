#!/usr/bin/env bash
# Builds the host's test guest for wasm32-wasip2. The integration tests run this themselves
# (once per test binary) when the .wasm is missing or older than its sources; run it by hand to
# build ahead. Output: target/test-guests/wasm32-wasip2/release/mcp_auth_test_guest.wasm
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
cargo build --quiet --release --target wasm32-wasip2 \
  --manifest-path "$here/guests/Cargo.toml" \
  --target-dir "$root/target/test-guests"
echo "$root/target/test-guests/wasm32-wasip2/release/mcp_auth_test_guest.wasm"
