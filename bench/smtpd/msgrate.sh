#!/bin/bash
# Messages per second: tcpserver + smtpd + embedded spool (on disk, fsynced)
# against Postfix's smtpd (private instance, queue on disk, discard
# delivery), both loaded by Postfix's smtp-source, taking turns in each
# round, median of ROUNDS (default 5). Not a test; see README.md.
#   BIN       directory with the release smtpd and tcpserver (default: build
#             them for the target scripts/lib/target.sh picks)
#   GLIBC=0   do not also build and measure the static glibc build in the
#             same rounds (it is measured when the pick is musl)
#   TCPSERVER tcpserver to use (default ours from BIN; /usr/bin/tcpserver
#             for ucspi-tcp's)
#   MSGS      messages per round (default 2000), SESSIONS (10), SIZE (2048)
#   TMPFS=1   both queues on /dev/shm (CPU-bound comparison, no fsync cost)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
MSGS=${MSGS:-2000}
SESSIONS=${SESSIONS:-10}
SIZE=${SIZE:-2048}
ROUNDS=${ROUNDS:-5}
OUR_PORT=${OUR_PORT:-2527}
GLIBC_PORT=${GLIBC_PORT:-2529}
PF_PORT=${PF_PORT:-2526}
W=${W:-/tmp/smtpd-bench}
tdir=${CARGO_TARGET_DIR:-$top/target}

cd "$top"
. scripts/lib/target.sh
if [ -z "${BIN:-}" ]; then
  cargo build -q --release -p smtpd -p tcpserver -p tcprules
  BIN=$tdir/${RG_TRIPLE_DIR}release
fi
if [ -n "$RG_GLIBC_TOO" ]; then
  CARGO_BUILD_TARGET=$RG_GNU cargo build -q --release -p smtpd -p tcpserver
  GBIN=$tdir/$RG_GNU/release
fi
TCPSERVER=${TCPSERVER:-$BIN/tcpserver}
echo "relaygate: $BIN ($(file -b "$BIN/smtpd" | cut -d, -f1-2)), tcpserver: $TCPSERVER"

# A fresh spool for every run, and no deletions during it: on an ext4
# without a journal (these machines) every new inode is checked against
# recently deleted ones (ext4's recently_deleted()), so deleting the last
# round's messages would slow the next round's file creation (measured:
# 780-970 msg/s right after an rm -rf, 1,320-1,340 without). Deleting
# delivered mail is the consumer's work, not smtpd's; Postfix's own
# discard agent deletes its queue files as part of its pipeline.
mkdir -p "$W"
SPOOL=$(mktemp -d "$W/spool.XXXXXX")
PFQ=$W/postfix/spool
if [ "${TMPFS:-0}" = 1 ]; then
  SPOOL=$(mktemp -d /dev/shm/smtpd-bench-spool.XXXXXX); PFQ=/dev/shm/smtpd-bench-pfq
fi
mkdir -p "$W/control" "$SPOOL/tmp" "$SPOOL/new"
echo mx.example.org > "$W/control/me"
echo example.org > "$W/control/rcpthosts"
echo '127.0.0.:allow' | "$BIN/tcprules" "$W/control/tcp.smtp.cdb" "$W/control/tcp.tmp"

# Postfix, the peer (stop a previous run's instance first)
postfix -c "$W/postfix/etc" stop 2>/dev/null || true
for _ in $(seq 50); do
  [ -f "$PFQ/pid/master.pid" ] && kill -0 "$(tr -d ' ' < "$PFQ/pid/master.pid")" 2>/dev/null || break
  sleep 0.2
done
PFDIR=$W/postfix PFQUEUE=$PFQ PF_PORT=$PF_PORT /work/shared/bench/postfix-instance.sh >/dev/null
postfix -c "$W/postfix/etc" start 2>/dev/null
pids=()
serve() { # port bindir
  CONTROLDIR=$W/control SPOOLDIR=$SPOOL \
    "$TCPSERVER" -R -H -l 0 -c 100 -x "$W/control/tcp.smtp.cdb" 127.0.0.1 "$1" \
    "$2/smtpd" 2>/dev/null &
  pids+=($!)
}
serve "$OUR_PORT" "$BIN"
[ -n "${GBIN:-}" ] && serve "$GLIBC_PORT" "$GBIN"
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  postfix -c "$W/postfix/etc" stop 2>/dev/null || true
  rm -rf "$SPOOL"
}
trap cleanup EXIT
sleep 1

rate() { # port -> msg/s
  local t0 t1
  t0=$(date +%s.%N)
  smtp-source -s "$SESSIONS" -m "$MSGS" -l "$SIZE" -f a@example.org -t b@example.org "127.0.0.1:$1"
  t1=$(date +%s.%N)
  echo "$MSGS / ($t1 - $t0)" | bc -l
}
# Postfix delivers (discards) its queue after a round; let it finish before
# the next round so it does not steal CPU from whoever runs next
pf_drain() {
  for _ in $(seq 300); do
    n=$(find "$PFQ/incoming" "$PFQ/active" "$PFQ/maildrop" -type f 2>/dev/null | wc -l)
    [ "$n" = 0 ] && return
    sleep 0.2
  done
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

: > "$W/ours.txt"; : > "$W/glibc.txt"; : > "$W/pf.txt"
for i in $(seq "$ROUNDS"); do
  o=$(rate "$OUR_PORT"); echo "$o" >> "$W/ours.txt"
  g=0
  if [ -n "${GBIN:-}" ]; then g=$(rate "$GLIBC_PORT"); echo "$g" >> "$W/glibc.txt"; fi
  p=$(rate "$PF_PORT"); echo "$p" >> "$W/pf.txt"
  pf_drain
  printf 'round %d: relaygate %.0f msg/s, postfix %.0f msg/s, ratio %.2f' "$i" "$o" "$p" \
    "$(echo "$o / $p" | bc -l)"
  [ -n "${GBIN:-}" ] && printf ' (glibc build %.0f msg/s)' "$g"
  echo
done
mo=$(median < "$W/ours.txt"); mp=$(median < "$W/pf.txt")
printf 'median: relaygate %.0f msg/s, postfix %.0f msg/s, ratio %.2f\n' "$mo" "$mp" "$(echo "$mo / $mp" | bc -l)"
if [ -n "${GBIN:-}" ]; then
  mg=$(median < "$W/glibc.txt")
  printf 'median: glibc build %.0f msg/s, ratio to postfix %.2f\n' "$mg" "$(echo "$mg / $mp" | bc -l)"
fi
k=1; [ -n "${GBIN:-}" ] && k=2
echo "messages in our spool: $(ls "$SPOOL/new" | wc -l) (expected $((MSGS * ROUNDS * k)))"
