#!/bin/sh
# bench/shared/run.sh: relaycheck's per-connection cost with the relay table
# and bans in the host's directories, in Redis (RELAYSTATE) and in MariaDB
# (RELAYSQL, IndiMail's table), each over TCP and over the engine's Unix
# socket, in the same rounds (A B C A B C ...), then
# with 1,000,000 grants in Redis (N=...). relaycheck then runs a static
# program that exits at once (`relaycheck --version`: the dynamic
# /bin/true's start-up is larger and noisier than what is measured), as it
# would run smtpd; the client has a fresh grant in every table. Redis and MariaDB are private instances on 127.0.0.x ports of
# their own, started and stopped here. Figures: median over ROUNDS of the
# mean of BATCH runs (perf stat -r), and the minimum (the machine is
# shared: the least disturbed round), task-clock (CPU of relaycheck and
# the program) and elapsed (wall, which also holds the engine's answer).
# See README.md.
#
# PIN=N runs the engines and relaycheck on CPU N only: no process then
# waits for a wake-up on the other CPU, which shows what the client itself
# costs apart from the scheduler's cross-CPU work (README.md).
set -eu
ROUNDS=${ROUNDS:-15}
BATCH=${BATCH:-200}
N=${N:-1000000}
cd "$(dirname "$0")/../.."
. scripts/lib/target.sh
cargo build -q --release -p relaycheck
REL=target/${RG_TRIPLE_DIR}release
W=$(mktemp -d /tmp/rg-shared-bench.XXXXXX)
RIP=127.0.0.71 RPORT=${RPORT:-16371} MIP=127.0.0.72 MPORT=${MPORT:-13371}
cleanup() {
  [ -f "$W/redis.pid" ] && kill "$(cat "$W/redis.pid")" 2>/dev/null
  [ -f "$W/mdb.pid" ] && kill "$(cat "$W/mdb.pid")" 2>/dev/null
  sleep 1
  rm -rf "$W"
}
trap cleanup EXIT INT TERM
pin() { if [ -n "${PIN:-}" ]; then taskset -c "$PIN" "$@"; else "$@"; fi; }
mkdir -p "$W/relay" "$W/deny" "$W/state" "$W/tmp"
pin redis-server --port $RPORT --bind $RIP --unixsocket "$W/redis.sock" --unixsocketperm 700 \
  --dir "$W" --save '' --appendonly no \
  --daemonize yes --pidfile "$W/redis.pid" --logfile "$W/redis.log"
mariadb-install-db --no-defaults --datadir="$W/data" --tmpdir="$W/tmp" \
  --auth-root-authentication-method=normal --user=root --skip-test-db >/dev/null
pin mariadbd --no-defaults --datadir="$W/data" --tmpdir="$W/tmp" --socket="$W/mdb.sock" \
  --port=$MPORT --bind-address=$MIP --user=root --skip-log-bin --skip-name-resolve \
  --innodb-buffer-pool-size=64M --pid-file="$W/mdb.pid" 2>"$W/mdb.log" &
i=0
until mariadb-admin --no-defaults --socket="$W/mdb.sock" -uroot ping >/dev/null 2>&1; do
  i=$((i + 1)); [ $i -lt 100 ] || { echo "mariadbd did not start"; exit 1; }; sleep 0.2
done
mariadb --no-defaults --socket="$W/mdb.sock" -uroot -e "CREATE DATABASE indimail;
  CREATE USER 'indimail'@'%' IDENTIFIED BY 'pw'; GRANT ALL ON indimail.* TO 'indimail'@'%';
  CREATE TABLE indimail.relay (email char(96) not null, ipaddr char(46) not null,
    timestamp int, unique index (email, ipaddr), index(ipaddr), index(timestamp))"

IP=192.0.2.7
export TCPREMOTEIP=$IP RELAYDIR="$W/relay" DENYDIR="$W/deny" STATEDIR="$W/state"
REDIS=redis://$RIP:$RPORT/0
REDISU=redis+unix://$W/redis.sock?db=0
SQL=mysql://indimail:pw@$MIP:$MPORT/indimail
SQLU="mysql://indimail:pw@localhost/indimail?socket=$W/mdb.sock"
# the same fresh grant in every table
printf 'USER=joe@example.org\n' >"$W/relay/$IP"
redis-cli -h $RIP -p $RPORT SET rg:relay:$IP "$(printf 'since=%s\nUSER=joe@example.org\n' "$(date +%s)")" EX 86400 >/dev/null
mariadb --no-defaults --socket="$W/mdb.sock" -uroot indimail -e \
  "REPLACE INTO relay (email, ipaddr, timestamp) VALUES ('joe@example.org', '$IP', UNIX_TIMESTAMP() + 86400)"
for v in dir redis redis-unix sql sql-unix; do
  case $v in
  dir) got=$("$REL/relaycheck" env | grep RELAYUSER) ;;
  redis) got=$(RELAYSTATE=$REDIS "$REL/relaycheck" env | grep RELAYUSER) ;;
  redis-unix) got=$(RELAYSTATE=$REDISU "$REL/relaycheck" env | grep RELAYUSER) ;;
  sql) got=$(RELAYSQL=$SQL "$REL/relaycheck" env | grep RELAYUSER) ;;
  sql-unix) got=$(RELAYSQL=$SQLU "$REL/relaycheck" env | grep RELAYUSER) ;;
  esac
  [ "$got" = "RELAYUSER=joe@example.org" ] || { echo "$v: no grant ($got)"; exit 1; }
done

# one batch: the mean task-clock (ms) and elapsed time (us) of a run
batch() {
  pin env "$@" perf stat -e task-clock -r "$BATCH" "$REL/relaycheck" "$REL/relaycheck" --version 2>&1 >/dev/null |
    awk '/task-clock/ {cpu = $1} /seconds time elapsed/ {wall = $1 * 1000000} END {printf "%s %d\n", cpu, wall}'
}
stats() { # column: min and median
  awk -v c="$1" '{print $c}' | sort -n | awk '{a[NR]=$1} END {printf "min %s median %s", a[1], a[int((NR+1)/2)]}'
}
measure() { : >"$W/m.$1"; }
round() { # label, then the variables
  label=$1; shift
  batch "$@" >>"$W/m.$label"
}
added() { # label: what it adds to dir, round by round (the same round's
  # runs are the nearest in time: the machine's drift cancels), median and
  # the rounds' spread (lowest and highest quartile)
  for label in "$@"; do
    printf '%-10s adds to dir, median (quartiles): task-clock ms %s   elapsed us %s\n' "$label" \
      "$(paste "$W/m.dir" "$W/m.$label" | awk '{printf "%.3f\n", $3 - $1}' | quartiles)" \
      "$(paste "$W/m.dir" "$W/m.$label" | awk '{print $4 - $2}' | quartiles)"
  done
}
quartiles() {
  sort -n | awk '{a[NR]=$1} END {printf "%s (%s to %s)", a[int((NR+1)/2)], a[int((NR+3)/4)], a[int((3*NR+3)/4)]}'
}
report() {
  for label in "$@"; do
    printf '%-10s task-clock ms: %s   elapsed us: %s\n' "$label" \
      "$(stats 1 <"$W/m.$label")" "$(stats 2 <"$W/m.$label")"
  done
}

echo "# relaycheck: $REL; $(date -u); $(uptime)${PIN:+; everything on CPU $PIN}"
echo "# $ROUNDS rounds of $BATCH runs each: min and median over the rounds of the mean per run"
for l in dir redis redis-unix sql sql-unix; do measure $l; done
r=0
while [ $r -lt "$ROUNDS" ]; do
  round dir X=1
  round redis RELAYSTATE=$REDIS
  round redis-unix RELAYSTATE=$REDISU
  round sql RELAYSQL=$SQL
  round sql-unix RELAYSQL=$SQLU
  r=$((r + 1))
done
report dir redis redis-unix sql sql-unix
added redis redis-unix sql sql-unix

echo "# filling Redis with $N grants (one Lua script)"
redis-cli -h $RIP -p $RPORT EVAL "for i = 1, tonumber(ARGV[1]) do
  local ip = '10.' .. (math.floor(i / 65536) % 256) .. '.' .. (math.floor(i / 256) % 256) .. '.' .. (i % 256)
  redis.call('SET', 'rg:relay:' .. ip, 'since=' .. ARGV[2] .. '\nUSER=user' .. i .. '@example.org\n', 'EX', 86400)
end return redis.call('DBSIZE')" 0 "$N" "$(date +%s)"
redis-cli -h $RIP -p $RPORT INFO memory | grep '^used_memory_human'
for l in dir full-hit full-miss full-unix; do measure $l; done
r=0
while [ $r -lt "$ROUNDS" ]; do
  round dir X=1
  round full-hit RELAYSTATE=$REDIS TCPREMOTEIP=10.7.161.32
  round full-miss RELAYSTATE=$REDIS TCPREMOTEIP=10.200.0.1
  round full-unix RELAYSTATE=$REDISU TCPREMOTEIP=10.7.161.32
  r=$((r + 1))
done
# full-hit: a grant among N (compare with "redis" above: a grant among 1);
# full-miss: an address without one
# full-unix: full-hit through the Unix socket
report full-hit full-miss full-unix
added full-hit full-miss full-unix
