#!/bin/bash
# Messages per second: tcpserver + smtpd + embedded spool (on disk, fsynced)
# against Postfix's smtpd (private instance, queue on disk, discard
# delivery), both loaded by Postfix's smtp-source, alternating A B A B,
# median of ROUNDS (default 5). Not a test; see README.md.
#   BIN      directory with release smtpd (default /work/tgt/smtpd/release)
#   TCPSERVER tcpserver to use (default ucspi-tcp's /usr/bin/tcpserver)
#   MSGS     messages per round (default 2000), SESSIONS (10), SIZE (2048)
#   TMPFS=1  both queues on /dev/shm (CPU-bound comparison, no fsync cost)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
BIN=${BIN:-/work/tgt/smtpd/release}
TCPSERVER=${TCPSERVER:-/usr/bin/tcpserver}
TCPRULES=${TCPRULES:-/usr/bin/tcprules}
MSGS=${MSGS:-2000}
SESSIONS=${SESSIONS:-10}
SIZE=${SIZE:-2048}
ROUNDS=${ROUNDS:-5}
OUR_PORT=${OUR_PORT:-2527}
PF_PORT=${PF_PORT:-2526}
W=${W:-/tmp/smtpd-bench}

SPOOL=$W/spool
PFQ=$W/postfix/spool
if [ "${TMPFS:-0}" = 1 ]; then SPOOL=/dev/shm/smtpd-bench-spool; PFQ=/dev/shm/smtpd-bench-pfq; fi
mkdir -p "$W/control" "$SPOOL/tmp" "$SPOOL/new"
echo mx.example.org > "$W/control/me"
echo example.org > "$W/control/rcpthosts"
echo '127.0.0.:allow' | "$TCPRULES" "$W/control/tcp.smtp.cdb" "$W/control/tcp.tmp"

# Postfix, the peer (stop a previous run's instance first)
postfix -c "$W/postfix/etc" stop 2>/dev/null || true
for _ in $(seq 50); do
  [ -f "$PFQ/pid/master.pid" ] && kill -0 "$(tr -d ' ' < "$PFQ/pid/master.pid")" 2>/dev/null || break
  sleep 0.2
done
PFDIR=$W/postfix PFQUEUE=$PFQ PF_PORT=$PF_PORT /work/shared/bench/postfix-instance.sh >/dev/null
postfix -c "$W/postfix/etc" start 2>/dev/null
# ours
CONTROLDIR=$W/control SPOOLDIR=$SPOOL \
  "$TCPSERVER" -R -H -l 0 -c 100 -x "$W/control/tcp.smtp.cdb" 127.0.0.1 "$OUR_PORT" \
  "$BIN/smtpd" 2>/dev/null &
ours=$!
cleanup() { kill $ours 2>/dev/null || true; postfix -c "$W/postfix/etc" stop 2>/dev/null || true; }
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

: > "$W/ours.txt"; : > "$W/pf.txt"
for i in $(seq "$ROUNDS"); do
  rm -rf "$SPOOL/new" && mkdir "$SPOOL/new"
  o=$(rate "$OUR_PORT"); echo "$o" >> "$W/ours.txt"
  p=$(rate "$PF_PORT"); echo "$p" >> "$W/pf.txt"
  pf_drain
  printf 'round %d: relaygate %.0f msg/s, postfix %.0f msg/s\n' "$i" "$o" "$p"
done
mo=$(median < "$W/ours.txt"); mp=$(median < "$W/pf.txt")
printf 'median: relaygate %.0f msg/s, postfix %.0f msg/s, ratio %.2f\n' "$mo" "$mp" "$(echo "$mo / $mp" | bc -l)"
echo "messages in our spool after the last round: $(ls "$SPOOL/new" | wc -l)"
