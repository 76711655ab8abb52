#!/bin/bash
# Delivered messages per second out of a full queue: `deliver -1` (with
# `remote` per attempt) draining SPOOLDIR against Postfix's qmgr + smtp(8)
# draining its own queue, both to the same smtp-sink on loopback, taking
# turns in each round, median of ROUNDS (default 3). Not a test; see README.md.
#   BIN       directory with the release deliver, remote, spool, smtpd,
#             tcpserver, tcprules (default: build them for the target
#             scripts/lib/target.sh picks)
#   GLIBC=1   also build the static glibc deliver + remote and measure them
#             in the same rounds (default 0 here: each side adds a drain of MSGS per round)
#   MSGS      messages per side and round (default 10000), SIZE (2048)
#   PERHOST   our concurrencyperhost values, one side each (default "5 20";
#             concurrencyremote stays at its default 20)
#   W         work directory (default /tmp/deliver-bench); both queues are
#             in it, on the same file system
# Both queues are filled untimed by Postfix's smtp-source (10 sessions):
# ours once, through our tcpserver + smtpd into a template spool that is
# copied into the real spool (cp -a, then sync) before each of our drains
# (filling through smtpd each time took 10-50 s on a loaded machine);
# Postfix's through its smtpd before each of its drains, with its queue
# manager disabled, so the mail waits in `incoming`. The timed part
# is `deliver -1` from start to exit (everything delivered, files removed),
# and for Postfix from the HUP that starts qmgr until the sink has counted
# every message and Postfix's incoming and active queues are empty.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
here=$top/bench/deliver
MSGS=${MSGS:-10000}
SIZE=${SIZE:-2048}
ROUNDS=${ROUNDS:-3}
PERHOST=${PERHOST:-"5 20"}
SINK_PORT=${SINK_PORT:-2535}
PF_PORT=${PF_PORT:-2536}
OUR_PORT=${OUR_PORT:-2537}
W=${W:-/tmp/deliver-bench}
GLIBC=${GLIBC:-0}
tdir=${CARGO_TARGET_DIR:-$top/target}
TICK=$(getconf CLK_TCK)

cd "$top"
. scripts/lib/target.sh
if [ -z "${BIN:-}" ]; then
  cargo build -q --release -p deliver -p remote -p spool -p smtpd -p tcpserver -p tcprules
  BIN=$tdir/${RG_TRIPLE_DIR}release
fi
GBIN=
if [ -n "$RG_GLIBC_TOO" ]; then
  CARGO_BUILD_TARGET=$RG_GNU cargo build -q --release -p deliver -p remote
  GBIN=$tdir/$RG_GNU/release
fi
echo "relaygate: $BIN ($(file -b "$BIN/deliver" | cut -d, -f1-2))${GBIN:+, glibc: $GBIN}"

# --- the work directory, the sink, our smtpd for filling, Postfix ---------
PFDIR=$W/postfix
PFQ=$PFDIR/spool
postfix -c "$PFDIR/etc" stop 2>/dev/null || true
for _ in $(seq 50); do
  [ -f "$PFQ/pid/master.pid" ] && kill -0 "$(tr -d ' ' < "$PFQ/pid/master.pid")" 2>/dev/null || break
  sleep 0.2
done
rm -rf "$W/spool" "$W/template"
mkdir -p "$W/control" "$W/spool/tmp" "$W/spool/new" "$W/template/tmp" "$W/template/new"
SPOOL=$W/spool
echo bench.example.net > "$W/control/me"
echo example.org > "$W/control/rcpthosts"
echo ":127.0.0.1:$SINK_PORT" > "$W/control/smtproutes"
echo '127.0.0.:allow' | "$BIN/tcprules" "$W/control/tcp.smtp.cdb" "$W/control/tcp.tmp"
: > "$W/deliver.log"

pids=()
deliver_pid=
source_pid=
cleanup() {
  [ -n "$deliver_pid" ] && kill "$deliver_pid" 2>/dev/null
  [ -n "$source_pid" ] && kill "$source_pid" 2>/dev/null
  kill "${pids[@]}" 2>/dev/null || true
  postfix -c "$PFDIR/etc" stop 2>/dev/null || true
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# smtp-sink -c rewrites one counter line ("\rsess=S quit=Q mesg=M") after
# every session and message, flushed at once, so its output file is a
# running count of what it accepted
smtp-sink -u nobody -c "127.0.0.1:$SINK_PORT" 1000 > "$W/sink.out" 2>&1 &
sink_pid=$!
pids+=("$sink_pid")
CONTROLDIR=$W/control SPOOLDIR=$W/template \
  "$BIN/tcpserver" -R -H -l 0 -c 100 -x "$W/control/tcp.smtp.cdb" 127.0.0.1 "$OUR_PORT" \
  "$BIN/smtpd" 2>/dev/null &
pids+=($!)
PFDIR=$PFDIR PF_PORT=$PF_PORT SINK_PORT=$SINK_PORT HOLD=1 "$here/postfix-relay.sh" >/dev/null
sleep 1

sink_field() { # sess|mesg -> the sink's count so far
  tail -c 120 "$W/sink.out" | tr '\r' '\n' | grep -o "$1=[0-9]*" | tail -1 | cut -d= -f2
}
# CPU ticks of a process tree: each live process's own and reaped children's
# time. A child that exits moves its time into its parent's reaped share, so
# the sum only grows by CPU actually used.
tree_ticks() { # pid...
  local p kids t=0
  for p in "$@"; do
    [ -r "/proc/$p/stat" ] || continue
    t=$((t + $(sed 's/.*) //' "/proc/$p/stat" | awk '{print $12 + $13 + $14 + $15}')))
    kids=$(pgrep -P "$p" || true)
    # shellcheck disable=SC2086
    [ -n "$kids" ] && t=$((t + $(tree_ticks $kids)))
  done
  echo "$t"
}
# in the background and waited for, so that a signal reaches the trap at once
fill() { # port
  smtp-source -s 10 -m "$MSGS" -l "$SIZE" -f a@example.org -t b@example.org "127.0.0.1:$1" &
  source_pid=$!
  wait "$source_pid"
  source_pid=
}
now() { date +%s.%N; }
check() { # what expected got
  [ "$2" = "$3" ] || echo "WARNING: $1: expected $2, got $3" >&2
}

# --- one timed drain by deliver -1 -----------------------------------------
# prints: msg/s, CPU ms per message (deliver + remotes), sink CPU ms per
# message, deliver's own peak RSS (KiB, VmHWM sampled every 0.1 s), peak
# RSS of the whole tree (KiB, wait4's maxrss), sink sessions, deliver's own
# CPU ms per message (its last 0.1 s sample, without remotes); appended to
# RESULTFILE. Not in a subshell, so that the trap can stop deliver.
ours() { # bindir perhost resultfile
  cp -a "$W/template/new/." "$SPOOL/new/"
  sync
  check "our spool after filling" "$MSGS" "$(find "$SPOOL/new" -type f | wc -l)"
  echo "$2" > "$W/control/concurrencyperhost"
  local m0 s0 k0 t0 t1 hwm=0 h
  m0=$(sink_field mesg); s0=$(sink_field sess); k0=$(tree_ticks "$sink_pid")
  t0=$(now)
  CONTROLDIR=$W/control SPOOLDIR=$SPOOL /usr/bin/time -f '%U %S %M' -o "$W/time.out" \
    "$1/deliver" -1 2>> "$W/deliver.log" &
  local tp=$!
  for _ in $(seq 100); do deliver_pid=$(pgrep -P "$tp" || true); [ -n "$deliver_pid" ] && break; sleep 0.01; done
  local own=0 o
  while kill -0 "$deliver_pid" 2>/dev/null; do
    h=$(awk '/^VmHWM/ {print $2}' "/proc/$deliver_pid/status" 2>/dev/null || true)
    [ -n "$h" ] && hwm=$h
    o=$(sed 's/.*) //' "/proc/$deliver_pid/stat" 2>/dev/null | awk '{print $12 + $13}' || true)
    [ -n "$o" ] && own=$o
    sleep 0.1
  done
  wait "$tp" || echo "WARNING: deliver -1 exited $?" >&2
  t1=$(now)
  deliver_pid=
  local k1 m1 s1
  k1=$(tree_ticks "$sink_pid"); m1=$(sink_field mesg); s1=$(sink_field sess)
  sleep 0.2 # the sink counts a session when the client's close reaches it
  s1=$(sink_field sess)
  check "sink count (ours)" "$MSGS" $((m1 - m0))
  check "our spool after deliver -1" 0 "$(find "$SPOOL/new" "$SPOOL/info" -type f | wc -l)"
  local u s rss
  read -r u s rss < "$W/time.out"
  {
    echo "$MSGS / ($t1 - $t0)" | bc -l | tr '\n' ' '
    echo "($u + $s) * 1000 / $MSGS" | bc -l | tr '\n' ' '
    echo "($k1 - $k0) * 1000 / $TICK / $MSGS" | bc -l | tr '\n' ' '
    echo "$hwm $rss $((s1 - s0))" | tr '\n' ' '
    echo "$own * 1000 / $TICK / $MSGS" | bc -l
  } >> "$3"
}

# --- one timed drain by Postfix ---------------------------------------------
pf_master() { tr -d ' ' < "$PFQ/pid/master.pid"; }
pf_stop() {
  postfix -c "$PFDIR/etc" stop 2>/dev/null || true
  for _ in $(seq 100); do
    [ -f "$PFQ/pid/master.pid" ] && kill -0 "$(pf_master)" 2>/dev/null || return 0
    sleep 0.1
  done
}
pf_queued() { find "$PFQ/incoming" "$PFQ/active" -type f 2>/dev/null | wc -l; }
# prints: msg/s, CPU ms per message (every Postfix process), sink CPU ms per
# message, -, -, sink sessions; appended to RESULTFILE
postfix_side() { # resultfile
  postconf -c "$PFDIR/etc" -e master_service_disable=qmgr/unix
  postfix -c "$PFDIR/etc" start 2>/dev/null
  fill "$PF_PORT"
  check "Postfix incoming after filling" "$MSGS" "$(pf_queued)"
  postconf -c "$PFDIR/etc" -e master_service_disable=
  local m0 s0 k0 p0 t0 t1 m1 s1 k1 p1 master
  master=$(pf_master)
  m0=$(sink_field mesg); s0=$(sink_field sess)
  k0=$(tree_ticks "$sink_pid"); p0=$(tree_ticks "$master")
  t0=$(now)
  kill -HUP "$master" # what `postfix reload` does: rereads main.cf, starts qmgr
  for _ in $(seq 6000); do
    m1=$(sink_field mesg)
    [ $((m1 - m0)) -ge "$MSGS" ] && [ "$(pf_queued)" = 0 ] && break
    sleep 0.05
  done
  t1=$(now)
  k1=$(tree_ticks "$sink_pid"); p1=$(tree_ticks "$master")
  sleep 2.5 # Postfix's cached connections close after 2 s
  s1=$(sink_field sess)
  check "sink count (Postfix)" "$MSGS" $((m1 - m0))
  pf_stop
  {
    echo "$MSGS / ($t1 - $t0)" | bc -l | tr '\n' ' '
    echo "($p1 - $p0) * 1000 / $TICK / $MSGS" | bc -l | tr '\n' ' '
    echo "($k1 - $k0) * 1000 / $TICK / $MSGS" | bc -l | tr '\n' ' '
    echo "- - $((s1 - s0))"
  } >> "$1"
}

fill "$OUR_PORT"
check "the template spool" "$MSGS" "$(find "$W/template/new" -type f | wc -l)"

median() { sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
sides=()
for p in $PERHOST; do sides+=("musl:$p"); done
if [ -n "$GBIN" ]; then for p in $PERHOST; do sides+=("glibc:$p"); done; fi
rm -f "$W"/res.*
for i in $(seq "$ROUNDS"); do
  echo "round $i (load $(cut -d' ' -f1-3 /proc/loadavg)):"
  for s in "${sides[@]}"; do
    b=$BIN; [ "${s%%:*}" = glibc ] && b=$GBIN
    ours "$b" "${s#*:}" "$W/res.$s"
    read -r rate cpu sink hwm rss sess own < <(tail -1 "$W/res.$s")
    printf '  relaygate %-8s %6.0f msg/s  cpu %.3f ms/msg (deliver alone %.3f)  sink %.3f ms/msg  deliver peak RSS %s KiB (tree %s KiB)  %s sessions\n' \
      "$s" "$rate" "$cpu" "$own" "$sink" "$hwm" "$rss" "$sess"
  done
  postfix_side "$W/res.postfix"
  read -r rate cpu sink _ _ sess < <(tail -1 "$W/res.postfix")
  printf '  postfix            %6.0f msg/s  cpu %.3f ms/msg  sink %.3f ms/msg  %s sessions\n' \
    "$rate" "$cpu" "$sink" "$sess"
  printf '  ratios:'
  for s in "${sides[@]}"; do
    printf ' %s %.2f' "$s" "$(echo "$(tail -1 "$W/res.$s" | cut -d' ' -f1) / $rate" | bc -l)"
  done
  echo
done

col() { awk -v c="$2" '{print $c}' "$W/res.$1" | median; }
mp=$(col postfix 1)
echo "median of $ROUNDS ($MSGS messages of $SIZE bytes each):"
printf '  postfix            %6.0f msg/s  cpu %.3f ms/msg  sink %.3f ms/msg\n' "$mp" "$(col postfix 2)" "$(col postfix 3)"
for s in "${sides[@]}"; do
  mo=$(col "$s" 1)
  printf '  relaygate %-8s %6.0f msg/s  ratio %.2f  cpu %.3f ms/msg (deliver alone %.3f)  sink %.3f ms/msg  deliver peak RSS %s KiB (max %s)\n' \
    "$s" "$mo" "$(echo "$mo / $mp" | bc -l)" "$(col "$s" 2)" "$(col "$s" 7)" "$(col "$s" 3)" \
    "$(col "$s" 4)" "$(awk '{print $4}' "$W/res.$s" | sort -g | tail -1)"
done
echo "deferred or bounced in our log: $(grep -cE 'status=(deferred|bounced)' "$W/deliver.log" || true)"
