#!/usr/bin/env bash
# Cost of one `spool` run (fork + exec + write + fsync + rename + fsync dir).
# Usage: bench/spool/run.sh [path/to/spool] [messages per round] [message bytes]
# Five rounds; in each, the commands run in turn (A B C D, A B C D, ...);
# the median per-message time over the rounds is reported. Without a spool
# path (or with ""), builds spool for the target scripts/lib/target.sh picks
# (static musl when installed) and, when that is not glibc, the static glibc
# build too, measured in the same rounds as command G (GLIBC=0 to skip it).
set -euo pipefail
SPOOL=${1:-}
GSPOOL=""
if [ -z "$SPOOL" ]; then
  root=$(cd "$(dirname "$0")/../.." && pwd)
  tdir=${CARGO_TARGET_DIR:-$root/target}
  cd "$root"
  . scripts/lib/target.sh
  cargo build -q --release -p spool
  SPOOL=$tdir/${RG_TRIPLE_DIR}release/spool
  gnu=$RG_GNU
  if [ -n "$RG_GLIBC_TOO" ]; then
    CARGO_BUILD_TARGET=$gnu cargo build -q --release -p spool
    GSPOOL=$tdir/$gnu/release/spool
  fi
  echo "spool: $SPOOL${GSPOOL:+; G: $GSPOOL}"
fi
N=${2:-200}
SIZE=${3:-4096}
ROUNDS=5
WORK=$(mktemp -d "${BENCH_DIR:-/tmp}/spool-bench.XXXXXX")
trap 'rm -rf "$WORK"' EXIT
export SPOOLDIR=$WORK/spool
mkdir -p "$SPOOLDIR"

head -c "$SIZE" /dev/urandom | base64 -w 76 | head -c "$SIZE" > "$WORK/msg"
printf 'Fsender@example.org\0Trcpt@example.net\0\0' > "$WORK/env"

# A: spool as qmail-queue.  B: the fork+exec floor (/bin/true, same
# redirections).  C: a C program writing and fsyncing a file of the same
# size (dd conv=fsync; no rename, no directory fsync).  D: C with the same
# durability steps as spool (dd conv=fsync, mv, `sync DIR` = fsync of the
# directory), at the price of three execs instead of one.  G: the static
# glibc build of spool, when built above.
cmd_A() { "$SPOOL" < "$WORK/msg" 1< "$WORK/env"; }
cmd_G() { "$GSPOOL" < "$WORK/msg" 1< "$WORK/env"; }
cmd_B() { /bin/true < "$WORK/msg" 1< "$WORK/env"; }
cmd_C() { dd if="$WORK/msg" of="$WORK/c.$1" conv=fsync status=none; }
cmd_D() { dd if="$WORK/msg" of="$WORK/d.tmp" conv=fsync status=none && mv "$WORK/d.tmp" "$WORK/d.$1" && sync "$WORK"; }

cmds="A B C D"
[ -z "$GSPOOL" ] || cmds="A G B C D"
declare -A results
for round in $(seq $ROUNDS); do
  for c in $cmds; do
    rm -rf "$SPOOLDIR/new" "$WORK"/c.* "$WORK"/d.*
    start=$(date +%s%N)
    for i in $(seq "$N"); do "cmd_$c" "$i"; done
    end=$(date +%s%N)
    results[$c]+="$(( (end - start) / N / 1000 )) "
    if { [ "$c" = A ] || [ "$c" = G ]; } && [ "$(ls "$SPOOLDIR/new" | wc -l)" -ne "$N" ]; then
      echo "spool did not queue $N messages" >&2; exit 1
    fi
  done
done

median() { tr ' ' '\n' | grep . | sort -n | sed -n 3p; }
echo "message size $SIZE bytes, $N messages per round, $ROUNDS rounds, median microseconds per message:"
for c in $cmds; do
  m=$(echo "${results[$c]}" | median)
  case $c in
    A) label="spool (qmail-queue interface)";;
    G) label="spool, static glibc build";;
    B) label="/bin/true (fork+exec floor)";;
    C) label="dd conv=fsync (write+fsync, C)";;
    D) label="dd+mv+sync dir (same steps, C)";;
  esac
  printf '%s  %-32s %6s us   (rounds: %s)\n' "$c" "$label" "$m" "${results[$c]}"
  eval "med_$c=$m"
done
echo "spool - floor: $((med_A - med_B)) us; spool / (dd+mv+sync dir): $(awk "BEGIN{printf \"%.2f\", $med_A/$med_D}")"
if [ -n "$GSPOOL" ]; then
  echo "spool / spool-glibc: $(awk "BEGIN{printf \"%.2f\", $med_A/$med_G}")"
fi
