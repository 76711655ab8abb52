#!/bin/sh
# Per-session cost of rgpolicy's relay decision with large control files.
# Usage: bench/policy/run.sh   (from the repository root)
set -e
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-/work/tgt/policy}"
cargo run -q --release -p rgpolicy --example policy_bench
