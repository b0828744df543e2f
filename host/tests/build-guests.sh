#!/usr/bin/env bash
# Builds the host's test guest for wasm32-wasip2. The integration tests run this themselves
# (once per test binary) when the .wasm is missing or older than its sources; run it by hand to
# build ahead. Output: target/test-guests/wasm32-wasip2/release/mcp_auth_test_guest.wasm (its
# path is the last line printed) and, beside it, mcp_auth_test_guest_init_calls_import.wasm.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
# The variant whose initializer calls an import, in a target dir of its own so that the two
# builds do not undo each other; copied beside the guest.
cargo build --quiet --release --target wasm32-wasip2 \
  --manifest-path "$here/guests/Cargo.toml" \
  --target-dir "$root/target/test-guests-variant" --features init-calls-import
out="$root/target/test-guests/wasm32-wasip2/release"
mkdir -p "$out"
cp "$root/target/test-guests-variant/wasm32-wasip2/release/mcp_auth_test_guest.wasm" \
  "$out/mcp_auth_test_guest_init_calls_import.wasm"
cargo build --quiet --release --target wasm32-wasip2 \
  --manifest-path "$here/guests/Cargo.toml" \
  --target-dir "$root/target/test-guests"
echo "$out/mcp_auth_test_guest.wasm"
