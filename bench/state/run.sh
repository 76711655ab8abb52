#!/bin/sh
# bench/state/run.sh [DIR] [N]: the file store's cost per call (rgstate's
# examples/statebench), three rounds. DIR must be on the file system that
# holds STATEDIR (default /work/tgt/state-bench, ext4; not tmpfs), N calls
# per run (default 2000; 9 runs per figure, the median printed).
set -eu
cd "$(dirname "$0")/../.."
dir=${1:-/work/tgt/state-bench}
n=${2:-2000}
cargo build --release --examples -p rgstate >&2
for round in 1 2 3; do
  rm -rf "$dir"
  echo "round $round ($(cut -d' ' -f1-3 /proc/loadavg) load)"
  target/release/examples/statebench "$dir" "$n"
done
rm -rf "$dir"
