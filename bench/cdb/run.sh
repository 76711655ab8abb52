#!/bin/sh
# cdb benchmark: ours vs tinycdb, same inputs, same run, alternating, median
# of 5. Not a test. Usage: bench/cdb/run.sh [RECORDS] [LOOKUPS]
# Needs: tinycdb (cdb), libcdb-dev, a C compiler, python3. See README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
records=${1:-1000000}
lookups=${2:-1000000}
work=${BENCH_DIR:-/tmp/cdb-bench-work}
target=${CARGO_TARGET_DIR:-$root/target}
mkdir -p "$work"

echo "building (release)..." >&2
(cd "$root" && CARGO_TARGET_DIR=$target cargo build --release -q -p cdbmake -p cdbget -p cdbdump)
(cd "$here/rust" && CARGO_TARGET_DIR=$target/cdb-lookup-bench cargo build --release -q)
# cdbget once more, statically linked, to show what start-up costs
(cd "$root" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=$target/crt-static \
  cargo build --release -q -p cdbget)
cc -O2 -o "$work/lookup_tinycdb" "$here/lookup.c" -lcdb

if [ ! -s "$work/in.$records" ] || [ ! -s "$work/keys.$lookups" ]; then
  echo "generating $records records, $lookups lookup keys..." >&2
  python3 "$here/gen.py" "$records" "$work/in.$records" "$work/keys.$lookups" "$lookups"
fi

exec python3 "$here/bench.py" \
  --work "$work" --input "$work/in.$records" --keys "$work/keys.$lookups" \
  --bin "$target/release" --lookup-rs "$target/cdb-lookup-bench/release/cdb-lookup-bench" \
  --lookup-c "$work/lookup_tinycdb" --static-bin "$target/crt-static/release"
