#!/bin/sh
# cdb benchmark: ours vs tinycdb, same inputs, same run, alternating, median
# of 5. Not a test. Usage: bench/cdb/run.sh [RECORDS] [LOOKUPS]
# Builds our programs for the target scripts/lib/target.sh picks (static musl
# when installed) and, when that is not glibc, the static glibc build too
# (GLIBC=0 to skip it), measured in the same rounds.
# Needs: tinycdb (cdb), libcdb-dev, a C compiler, python3. See README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
records=${1:-1000000}
lookups=${2:-1000000}
work=${BENCH_DIR:-/tmp/cdb-bench-work}
target=${CARGO_TARGET_DIR:-$root/target}
export CARGO_TARGET_DIR=$target
lookup_target=$target/cdb-lookup-bench
mkdir -p "$work"

cd "$root"
. scripts/lib/target.sh
echo "building (release, target ${CARGO_BUILD_TARGET:-host})..." >&2
cargo build --release -q -p cdbmake -p cdbget -p cdbdump
(cd "$here/rust" && CARGO_TARGET_DIR=$lookup_target cargo build --release -q)
bin=$target/${RG_TRIPLE_DIR}release
lookup_rs=$lookup_target/${RG_TRIPLE_DIR}release/cdb-lookup-bench
set --
gnu=$RG_GNU
if [ -n "$RG_GLIBC_TOO" ]; then
  echo "building the static glibc build for comparison..." >&2
  CARGO_BUILD_TARGET=$gnu cargo build --release -q -p cdbmake -p cdbget -p cdbdump
  (cd "$here/rust" && CARGO_BUILD_TARGET=$gnu CARGO_TARGET_DIR=$lookup_target cargo build --release -q)
  set -- --glibc-bin "$target/$gnu/release" --glibc-lookup-rs "$lookup_target/$gnu/release/cdb-lookup-bench"
fi
cc -O2 -o "$work/lookup_tinycdb" "$here/lookup.c" -lcdb

if [ ! -s "$work/in.$records" ] || [ ! -s "$work/keys.$lookups" ]; then
  echo "generating $records records, $lookups lookup keys..." >&2
  python3 "$here/gen.py" "$records" "$work/in.$records" "$work/keys.$lookups" "$lookups"
fi

exec python3 "$here/bench.py" \
  --work "$work" --input "$work/in.$records" --keys "$work/keys.$lookups" \
  --bin "$bin" --lookup-rs "$lookup_rs" --lookup-c "$work/lookup_tinycdb" \
  --label "${CARGO_BUILD_TARGET:-host}" "$@"
