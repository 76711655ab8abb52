#!/bin/bash
# smtpd messages/s with the abuse defences on (the defaults, nothing
# tripped) against off (every limit 0), in the same run, taking turns in
# each round, median of ROUNDS (default 5). Two workloads, both driven by
# Postfix's smtp-source over loopback through tcpserver + smtpd + the
# embedded spool (on disk, fsynced), as bench/smtpd/msgrate.sh:
#   local    to b@example.org (rcpthosts): the defences count nothing, so
#            this is their cost for a connection that trips nothing
#   relayed  to b@victim.test from a RELAYCLIENT address: every recipient
#            takes a sendlimits slot (one flock'd counter file, shared by
#            all sessions); "on" has the limit raised to 100000000 a day
#            so that it is not tripped, otherwise the same code path as
#            the default 1000
# Besides msg/s (wall clock, noisy on a shared machine) it reports the CPU
# each message cost the server side (tcpserver's children: smtpd and the
# spool writes, from tcpserver's cutime+cstime in /proc, 10 ms ticks),
# which other load on the machine disturbs much less, and the median of the
# per-round on/off ratios. Not a test; figures in README.md.
#   BIN      directory with the release smtpd, tcpserver, tcprules (default:
#            build them for the target scripts/lib/target.sh picks)
#   MSGS     messages per measurement (default 1000), SESSIONS (10),
#            SIZE (2048), ROUNDS (5)
#   TMPFS=1  spools and STATEDIR on /dev/shm (CPU-bound comparison)
#   REDIS=1  issue 12's comparison instead: both servers have the defences
#            on; "on" keeps its state in a private Redis (RELAYSTATE, started
#            here on 127.0.0.1:$REDIS_PORT), "off" in STATEDIR/DENYDIR
#   REDIS=unix  the same with Redis reached through its Unix socket
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
MSGS=${MSGS:-1000}
SESSIONS=${SESSIONS:-10}
SIZE=${SIZE:-2048}
ROUNDS=${ROUNDS:-9}
ON_PORT=${ON_PORT:-2537}
OFF_PORT=${OFF_PORT:-2539}
W=${W:-/tmp/abuse-bench}
tdir=${CARGO_TARGET_DIR:-$top/target}

cd "$top"
. scripts/lib/target.sh
if [ -z "${BIN:-}" ]; then
  cargo build -q --release -p smtpd -p tcpserver -p tcprules
  BIN=$tdir/${RG_TRIPLE_DIR}release
fi
echo "relaygate: $BIN ($(file -b "$BIN/smtpd" | cut -d, -f1-2))"

base=$W
[ "${TMPFS:-0}" = 1 ] && base=/dev/shm/abuse-bench
rm -rf "$W" "$base"
mkdir -p "$W" "$base"
pids=()
cleanup() {
  kill "${pids[@]}" 2>/dev/null || true
  rm -rf "$base" "$W"
}
trap cleanup EXIT

# one server: NAME PORT, control files from stdin as "name content" lines
serve() {
  local d=$W/$1 s=$base/$1
  mkdir -p "$d/control" "$s/spool/tmp" "$s/spool/new" "$s/state" "$s/deny"
  echo mx.example.org > "$d/control/me"
  echo example.org > "$d/control/rcpthosts"
  while read -r name content; do
    [ -n "$name" ] && echo "$content" > "$d/control/$name"
  done
  echo '127.0.0.1:allow,RELAYCLIENT=""' | "$BIN/tcprules" "$d/control/tcp.smtp.cdb" "$d/control/tcp.tmp"
  local extra=
  [ "$1" = on ] && extra=${ON_RELAYSTATE:-}
  CONTROLDIR=$d/control SPOOLDIR=$s/spool STATEDIR=$s/state DENYDIR=$s/deny \
    RELAYSTATE=$extra "$BIN/tcpserver" -R -H -l 0 -c 100 -x "$d/control/tcp.smtp.cdb" 127.0.0.1 "$2" \
    "$BIN/smtpd" 2>"$W/$1.log" &
  pids+=($!)
  eval "pid_$1=$!"
}
if [ "${REDIS:-0}" = 1 ] || [ "${REDIS:-0}" = unix ]; then
  REDIS_PORT=${REDIS_PORT:-2541}
  mkdir -p "$W/redis"
  redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --dir "$W/redis" --save '' \
    --unixsocket "$W/redis/redis.sock" --unixsocketperm 700 \
    --appendonly no >"$W/redis.log" 2>&1 &
  pids+=($!)
  sleep 0.5
  ON_RELAYSTATE=redis://127.0.0.1:$REDIS_PORT
  [ "$REDIS" = unix ] && ON_RELAYSTATE=redis+unix://$W/redis/redis.sock
  serve on "$ON_PORT" <<'C'
sendlimits default 100000000 86400
C
  serve off "$OFF_PORT" <<'C'
sendlimits default 100000000 86400
C
else
# on: no control file for the defences but sendlimits raised (see above)
serve on "$ON_PORT" <<'C'
sendlimits default 100000000 86400
C
serve off "$OFF_PORT" <<'C'
authfailures 0
authdelay 0
sendlimits default 0 0
probelimits 0
C
fi
sleep 1

declare -A pid_of=([$ON_PORT]=$pid_on [$OFF_PORT]=$pid_off)
# CPU ticks of a tcpserver's reaped children (smtpd sessions)
ticks() { awk '{print $16 + $17}' "/proc/$1/stat"; }
rate() { # port rcpt -> "msg/s cpu-ms-per-message"
  local t0 t1 c0 c1
  sleep 0.3 # the last round's children are reaped
  c0=$(ticks "${pid_of[$1]}")
  t0=$(date +%s.%N)
  smtp-source -s "$SESSIONS" -m "$MSGS" -l "$SIZE" -f a@example.org -t "$2" "127.0.0.1:$1"
  t1=$(date +%s.%N)
  sleep 0.3
  c1=$(ticks "${pid_of[$1]}")
  echo "$(echo "$MSGS / ($t1 - $t0)" | bc -l) $(echo "($c1 - $c0) * 1000 / $(getconf CLK_TCK) / $MSGS" | bc -l)"
}
median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

for load in local relayed; do
  rcpt=b@example.org
  [ "$load" = relayed ] && rcpt=b@victim.test
  : > "$W/$load.on"; : > "$W/$load.off"; : > "$W/$load.ratio"
  : > "$W/$load.con"; : > "$W/$load.coff"; : > "$W/$load.cratio"
  for i in $(seq "$ROUNDS"); do
    # alternate who goes first, so neither always meets a warmer cache
    if [ $((i % 2)) = 1 ]; then
      read -r on con < <(rate "$ON_PORT" "$rcpt"); read -r off coff < <(rate "$OFF_PORT" "$rcpt")
    else
      read -r off coff < <(rate "$OFF_PORT" "$rcpt"); read -r on con < <(rate "$ON_PORT" "$rcpt")
    fi
    echo "$on" >> "$W/$load.on"; echo "$off" >> "$W/$load.off"
    echo "$con" >> "$W/$load.con"; echo "$coff" >> "$W/$load.coff"
    echo "$on / $off" | bc -l >> "$W/$load.ratio"
    echo "$con / $coff" | bc -l >> "$W/$load.cratio"
    printf '%s round %d: on %.0f msg/s %.3f ms CPU/msg, off %.0f msg/s %.3f ms CPU/msg, msg/s on/off %.3f, CPU on/off %.3f\n' \
      "$load" "$i" "$on" "$con" "$off" "$coff" "$(tail -1 "$W/$load.ratio")" "$(tail -1 "$W/$load.cratio")"
  done
  printf '%s median: on %.0f msg/s, off %.0f msg/s; per-round msg/s on/off median %.3f; CPU/msg on %.3f ms, off %.3f ms, per-round on/off median %.3f\n' \
    "$load" "$(median < "$W/$load.on")" "$(median < "$W/$load.off")" "$(median < "$W/$load.ratio")" \
    "$(median < "$W/$load.con")" "$(median < "$W/$load.coff")" "$(median < "$W/$load.cratio")"
done
echo "state files (on): $(ls "$base/on/state" | tr '\n' ' ')"
echo "state files (off): $(ls "$base/off/state" | wc -l)"
echo "queued: on $(ls "$base/on/spool/new" | wc -l), off $(ls "$base/off/spool/new" | wc -l)" \
  "(expected $((MSGS * ROUNDS * 2)) each)"
grep -h "warning\|state_error" "$W/on.log" "$W/off.log" | head -5 || true
