#!/bin/bash
# What rblsmtpd costs per SMTP connection (it is exec'd for each one) when
# the DNS answer is at hand: ours (static, the shipped target) against
# ucspi-tcp's /usr/bin/rblsmtpd, side by side, both asking the same local
# dnsmasq on port 53 (ucspi-tcp's resolver knows no other port) through
# DNSCACHEIP. Not a test; see README.md. Needs root (port 53).
#
# Cases, each `rblsmtpd -r bl.test PROG`:
#   clean   the client is not listed: one TXT query (NXDOMAIN), then exec
#           /bin/true (the cost of true is in both figures)
#   listed  the client is listed: one TXT query, the log line, the refusal
#           (-t 0: the reply line alone, no conversation)
#   env     RBLSMTPD="" (a tcprules allow): no query, exec /bin/true
#   bare    /bin/true alone, for scale
#
#   N (default 300): perf stat runs per binary and case
#   ROUNDS (default 2)
#   IP (default 127.0.0.153): where dnsmasq listens
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
. scripts/lib/target.sh
t=${CARGO_TARGET_DIR:-$top/target}
N=${N:-300}
ROUNDS=${ROUNDS:-2}
IP=${IP:-127.0.0.153}
W=$(mktemp -d /tmp/rblsmtpd-bench.XXXXXX)

cargo build -q --release -p rblsmtpd
ours=$t/${RG_TRIPLE_DIR}release/rblsmtpd
theirs=/usr/bin/rblsmtpd

# 7.2.0.192.bl.test is listed (TXT and A); everything else under .test is
# NXDOMAIN, answered by dnsmasq from its own records (no upstream, no cache
# miss to wait for: as fast as a cached answer)
/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --user=root --group=root --listen-address="$IP" --port=53 \
  --pid-file="$W/dnsmasq.pid" --local=/test/ \
  --txt-record=7.2.0.192.bl.test,"listed by bl.test" \
  --host-record=7.2.0.192.bl.test,127.0.0.2 --log-facility="$W/dnsmasq.log" &
dns=$!
trap 'kill $dns; rm -rf "$W"' EXIT
sleep 0.5
export DNSCACHEIP=$IP
unset DNSRESOLVER RBLSMTPD

echo "== answers (stdout, then stderr)"
for b in "$ours" "$theirs"; do
  echo "-- $b clean";  TCPREMOTEIP=192.0.2.8 $b -r bl.test echo passed 2>&1
  echo "-- $b listed"; TCPREMOTEIP=192.0.2.7 $b -t 0 -r bl.test echo passed 2>&1
done
ls -l "$ours" "$theirs" | awk '{print $5, $9}'

# one case: perf stat -r N, task-clock and page faults (stdin: /dev/null);
# the environment comes from assignments before the call (no env(1) in
# the measured process)
measure() { # label cmd...
  local label=$1; shift
  perf stat -r "$N" -e task-clock,page-faults "$@" 2>&1 >/dev/null </dev/null |
    awk -v l="$label" '/task-clock/ {ms=$1} /page-faults/ {pf=$1}
      END {printf "%-30s %8s ms CPU  %5s faults\n", l, ms, pf}'
}

echo "== CPU and page faults per exec (perf stat -r $N)"
for round in $(seq "$ROUNDS"); do
  echo "-- round $round"
  for who in ours theirs; do
    b=$ours; [ $who = theirs ] && b=$theirs
    TCPREMOTEIP=192.0.2.8 measure "$who clean" "$b" -r bl.test /bin/true
    TCPREMOTEIP=192.0.2.7 measure "$who listed" "$b" -t 0 -r bl.test /bin/true
    TCPREMOTEIP=192.0.2.8 RBLSMTPD= measure "$who env" "$b" -r bl.test /bin/true
  done
  measure "bare /bin/true" /bin/true
done
