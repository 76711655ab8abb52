#!/bin/sh
# Connections per second: relaygate tcpserver vs ucspi-tcp's /usr/bin/tcpserver.
# Same rules cdb (3 rules; 100,000 rules), same program (/bin/true), same load
# generator (/work/shared/bench/tcpload.c), concurrency 10 and 50, options
# -HRl0 on both (no DNS: without -l, ucspi-tcp looks up the local name in DNS
# for every connection). Rounds alternate A B A B; the median of ROUNDS is
# reported with the ratio ours/theirs. Ours is built for the target
# scripts/lib/target.sh picks (static musl when installed); when that is not
# glibc, the static glibc build runs in the same rounds too (A B C A B C;
# GLIBC=0 to skip it) and the ratio ours/glibc is printed. Not a test. Usage:
#   bench/tcpserver/run.sh            (N=5000 connections per run, ROUNDS=5)
#   N=20000 ROUNDS=5 OPTS=-HRl0 bench/tcpserver/run.sh
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
N=${N:-5000}
ROUNDS=${ROUNDS:-5}
OPTS=${OPTS:--HRl0}
# backlog: with the default 20 and 50 clients connecting at once, the
# accept queue overflows; with SYN cookies on, a client whose final ACK is
# dropped then waits for data forever (until tcpload's timeout), which
# turns the rate into noise. Both servers get the same -b.
BACKLOG=${BACKLOG:-128}
CONCS=${CONCS:-10 50}
THEIRS=${THEIRS:-/usr/bin/tcpserver}
work=${WORK:-/tmp/tcpserver-bench.$$}
mkdir -p "$work"
trap 'rm -rf "$work"' EXIT INT TERM

export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-/work/tgt/tcp}
cd "$root"
. scripts/lib/target.sh
cargo build --release -q -p tcpserver
OURS=$CARGO_TARGET_DIR/${RG_TRIPLE_DIR}release/tcpserver
GLIBC_BIN=""
gnu=$RG_GNU
if [ -n "$RG_GLIBC_TOO" ]; then
  CARGO_BUILD_TARGET=$gnu cargo build --release -q -p tcpserver
  GLIBC_BIN=$CARGO_TARGET_DIR/$gnu/release/tcpserver
fi
cc -O2 -o "$work/tcpload" /work/shared/bench/tcpload.c

echo "# N=$N ROUNDS=$ROUNDS OPTS=$OPTS -b $BACKLOG -c 100; $(date -u); $(uptime)"
echo "# ours: $OURS (${CARGO_BUILD_TARGET:-host}); glibc: ${GLIBC_BIN:-not measured}; theirs: $THEIRS"
# the rules: the client (127.0.0.1) matches an exact-IP rule in both sets
printf '127.0.0.1:allow,RELAYCLIENT=""\n10.:deny\n:allow\n' >"$work/r3"
awk 'BEGIN { print "127.0.0.1:allow,RELAYCLIENT=\"\"";
  for (i = 1; i < 100000; i++)
    printf "10.%d.%d.%d:deny\n", int(i / 65536) % 256, int(i / 256) % 256, i % 256;
  print ":allow" }' >"$work/r100k"
for r in r3 r100k; do
  /usr/bin/tcprules "$work/$r.cdb" "$work/$r.tmp" <"$work/$r"
done

# one run: prints the rate
run1() { # server cdb concurrency
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  "$1" $OPTS -b "$BACKLOG" -c 100 -x "$2" 127.0.0.1 "$port" /bin/true 2>/dev/null &
  pid=$!
  i=0
  while ! python3 -c "import socket,sys; s=socket.socket(); sys.exit(s.connect_ex(('127.0.0.1',$port)))" 2>/dev/null; do
    i=$((i + 1)); [ $i -lt 100 ] || break; sleep 0.05
  done
  sleep 0.2
  "$work/tcpload" -t 60 -n "$N" -c "$3" 127.0.0.1 "$port" | sed 's/.*rate_per_s=\([0-9.]*\).*/\1/'
  kill "$pid" 2>/dev/null || true
  wait "$pid" 2>/dev/null || true
}

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

printf '%-7s %-5s %-9s %-9s %-9s %-11s %-10s %s\n' rules conc ours glibc theirs ours/theirs ours/glibc \
  "raw (ours | glibc | theirs)"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "-" }'; }
for r in r3 r100k; do
  for c in $CONCS; do
    o=""; g=""; t=""
    for _ in $(seq "$ROUNDS"); do
      o="$o $(run1 "$OURS" "$work/$r.cdb" "$c")"
      [ -z "$GLIBC_BIN" ] || g="$g $(run1 "$GLIBC_BIN" "$work/$r.cdb" "$c")"
      t="$t $(run1 "$THEIRS" "$work/$r.cdb" "$c")"
    done
    mo=$(echo "$o" | median); mt=$(echo "$t" | median)
    if [ -n "$g" ]; then mg=$(echo "$g" | median); else mg=-; fi
    printf '%-7s %-5s %-9s %-9s %-9s %-11s %-10s %s |%s |%s\n' "$r" "$c" "$mo" "$mg" "$mt" \
      "$(ratio "$mo" "$mt")" "$(ratio "$mo" "${mg#-}")" "$o" "$g" "$t"
  done
done
