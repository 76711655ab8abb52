#!/bin/sh
# Per-session cost of rgpolicy's relay decision with large control files.
# Usage: bench/policy/run.sh   Built for the target scripts/lib/target.sh
# picks (static musl when installed); when that is not glibc, run a second
# time with the static glibc build for comparison (GLIBC=0 to skip it).
set -e
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/tgt/policy}"
. scripts/lib/target.sh
echo "== ${CARGO_BUILD_TARGET:-host} build"
cargo run -q --release -p rgpolicy --example policy_bench
gnu=$RG_GNU
if [ -n "$RG_GLIBC_TOO" ]; then
  echo "== static glibc build ($gnu), for comparison"
  CARGO_BUILD_TARGET=$gnu cargo run -q --release -p rgpolicy --example policy_bench
fi
