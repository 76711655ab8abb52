#!/bin/bash
# What one MX lookup costs a process that is exec'd for it, as remote is per
# delivery attempt and rblsmtpd per SMTP connection (not a test; see
# README.md): rgdns (hickory-proto's wire format + blocking std UDP) against
# hickory-resolver on a tokio current-thread runtime, both static, against a
# local dnsmasq. CPU per exec (perf stat -r N) and binary sizes, then the
# paired rounds taking turns (A B A B ...) for a ratio.
#   N (default 200): perf stat runs per binary
#   CARGO_TARGET_DIR (default target/)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
t=${CARGO_TARGET_DIR:-$top/target}
N=${N:-200}
W=${W:-/tmp/rgdns-bench}
mkdir -p "$W"

triples=()
for tr in x86_64-unknown-linux-musl x86_64-unknown-linux-gnu; do
  [ -d "$(rustc --print sysroot)/lib/rustlib/$tr" ] && triples+=("$tr")
done
# static glibc as the shipped fallback is built (scripts/lib/target.sh); the
# explicit --target keeps crt-static away from build scripts and proc-macros
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS="-C target-feature=+crt-static"
builds=()
for tr in "${triples[@]}"; do
  cargo build -q --release -p rgdns --example lookup --target "$tr"
  (cd bench/dns/hickory-resolver &&
    CARGO_TARGET_DIR=$t/bench-dns cargo build -q --release --target "$tr")
  builds+=("$t/$tr/release/examples/lookup mx" "$t/bench-dns/$tr/release/mx-hickory-resolver")
done

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
/usr/sbin/dnsmasq --keep-in-foreground --conf-file=/dev/null --no-resolv --no-hosts \
  --bind-interfaces --user=root --group=root --listen-address=127.0.0.1 --port="$port" \
  --pid-file="$W/dnsmasq.pid" --local=/test/ \
  --mx-host=bench.test,mx1.bench.test,10 --mx-host=bench.test,mx2.bench.test,10 \
  --mx-host=bench.test,mx3.bench.test,20 --log-facility="$W/dnsmasq.log" &
dns=$!
trap 'kill $dns' EXIT
sleep 0.5
export DNSRESOLVER=127.0.0.1:$port

echo "== answers"
for b in "${builds[@]}"; do echo "-- ${b#"$t"/}"; $b bench.test; done

echo "== sizes"
for b in "${builds[@]}"; do set -- $b; ls -l "$1" | awk '{print $5, $9}'; done

echo "== CPU and page faults per exec of one MX lookup (perf stat -r $N, twice)"
for round in 1 2; do
  for b in "${builds[@]}"; do
    perf stat -r "$N" -e task-clock,page-faults $b bench.test 2>&1 >/dev/null |
      awk -v b="${b#"$t"/}" -v r=$round '/task-clock/ {ms=$1} /page-faults/ {pf=$1}
        END {printf "round %s  %-62s %s ms %s faults\n", r, b, ms, pf}'
  done
done

set -- "${builds[@]}"
echo "== paired, musl (or first target): A = rgdns, B = hickory-resolver, taking turns"
for pair in $(seq 1 20); do
  for b in "$1" "$2"; do
    perf stat -r 20 -e task-clock $b bench.test 2>&1 >/dev/null |
      awk -v b="${b#"$t"/}" -v p=$pair '/task-clock/ {printf "pair %s %-50s %s ms\n", p, b, $1}'
  done
done
