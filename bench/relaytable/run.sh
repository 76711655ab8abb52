#!/bin/sh
# bench/relaytable/run.sh [N]: relaycheck's per-connection cost with an empty
# table and with N (default 1000000) entries; clearopensmtp's time and peak
# memory scanning N entries and removing REMOVE_N (default 200000) expired
# ones, each against find(1), the usual C way to age such a directory,
# alternating A B A B. Tables live in $BENCHDIR (default
# /work/tgt/popbefore-bench: local disk, not tmpfs). Our programs are built
# for the target scripts/lib/target.sh picks (static musl when installed);
# when that is not glibc, the static glibc build is measured in the same
# rounds too (GLIBC=0 to skip it). See README.
set -eu
N=${1:-1000000}
REMOVE_N=${REMOVE_N:-200000}
ROUNDS=${ROUNDS:-15}
BATCH=${BATCH:-200}
cd "$(dirname "$0")/../.."
BENCHDIR=${BENCHDIR:-/work/tgt/popbefore-bench}
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/tgt/popbefore}
. scripts/lib/target.sh
cargo build -q --release -p relaycheck -p clearopensmtp
cargo build -q --release -p rgiptable --example lookupbench
REL=$CARGO_TARGET_DIR/${RG_TRIPLE_DIR}release
GREL=""
gnu=$RG_GNU
if [ -n "$RG_GLIBC_TOO" ]; then
  CARGO_BUILD_TARGET=$gnu cargo build -q --release -p relaycheck -p clearopensmtp
  CARGO_BUILD_TARGET=$gnu cargo build -q --release -p rgiptable --example lookupbench
  GREL=$CARGO_TARGET_DIR/$gnu/release
fi
echo "# ours: $REL (${CARGO_BUILD_TARGET:-host}); glibc: ${GREL:-not measured}; $(date -u); $(uptime)"
# the builds measured: "ours" and, with GLIBC, "glibc"
builds="ours=$REL${GREL:+ glibc=$GREL}"
TIME='elapsed %e s, user %U s, sys %S s, max RSS %M KiB'
mkdir -p "$BENCHDIR/empty"
if [ "$(ls -f "$BENCHDIR/full" 2>/dev/null | wc -l)" -lt "$N" ]; then
  rm -rf "$BENCHDIR/full"
  echo "generating $N entries in $BENCHDIR/full"
  /usr/bin/time -f "generated in %e s" python3 bench/relaytable/gen.py "$BENCHDIR/full" "$N"
fi
# a user whose entry exists in the full table must be fresh there
touch "$BENCHDIR/full/10.0.1.1"
RELAYDIR=$BENCHDIR/full DENYDIR=$BENCHDIR/empty TCPREMOTEIP=10.0.1.1 "$REL/relaycheck" env |
  grep -qx 'RELAYUSER=bench@example.org' || { echo "user not granted in the full table" >&2; exit 1; }
RELAYDIR=$BENCHDIR/full DENYDIR=$BENCHDIR/full TCPREMOTEIP=192.0.2.1 "$REL/relaycheck" env |
  grep -q '^RELAYCLIENT=' && { echo "stranger granted" >&2; exit 1; }

echo "== relaycheck /bin/true: per connection, empty vs $N entries"
python3 bench/relaytable/execbench.py "$REL/relaycheck" "$BENCHDIR/empty" "$BENCHDIR/full" "$ROUNDS" "$BATCH" \
  ${GREL:+"$GREL/relaycheck"}

echo "== rgiptable::lookup in process (median of 9 x 100000)"
for d in empty full; do
  for ip in 192.0.2.1 10.0.1.1; do
    for b in $builds; do
      printf '%-6s %-6s %-10s ' "${b%%=*}" "$d" "$ip"
      "${b#*=}/examples/lookupbench" "$BENCHDIR/$d" "$ip" 100000
    done
  done
done

echo "== scan of $N fresh entries, nothing to remove: clearopensmtp vs find -mmin +60 (A B A B A B)"
for i in 1 2 3; do
  for b in $builds; do
    printf 'clearopensmtp %-6s ' "${b%%=*}:"
    RELAYDIR=$BENCHDIR/full DENYDIR=$BENCHDIR/empty /usr/bin/time -f "$TIME" "${b#*=}/clearopensmtp" 2>&1 | tr '\n' ' '
    echo
  done
  printf 'find:                '
  /usr/bin/time -f "$TIME" find "$BENCHDIR/full" -type f -mmin +60 -delete 2>&1
done

echo "== removal of $REMOVE_N expired entries: clearopensmtp vs find -mmin +60 -delete (A B A B)"
for i in 1 2; do
  for b in $builds; do
    rm -rf "$BENCHDIR/old"
    python3 bench/relaytable/gen.py "$BENCHDIR/old" "$REMOVE_N" 7200
    printf 'clearopensmtp %-6s ' "${b%%=*}:"
    RELAYDIR=$BENCHDIR/old DENYDIR=$BENCHDIR/empty /usr/bin/time -f "$TIME" "${b#*=}/clearopensmtp" 2>&1 | tr '\n' ' '
    echo
  done
  rm -rf "$BENCHDIR/old"
  python3 bench/relaytable/gen.py "$BENCHDIR/old" "$REMOVE_N" 7200
  printf 'find:                '
  /usr/bin/time -f "$TIME" find "$BENCHDIR/old" -type f -mmin +60 -delete 2>&1
done
rm -rf "$BENCHDIR/old"
