#!/bin/bash
# Where one smtpd session's start-up time goes (not a test; see README.md):
# syscall counts of one whole session (strace -c), then CPU and page faults
# per start + greeting + EOF (perf stat -r 1000) for the static musl build,
# the static glibc build and the dynamic glibc build, and for empty C and
# Rust programs as floors.
#   CARGO_TARGET_DIR (default target/)
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
cd "$top"
t=${CARGO_TARGET_DIR:-$top/target}
W=${W:-/tmp/smtpd-bench-startup}
mkdir -p "$W/control" "$W/spool/tmp" "$W/spool/new" "$W/empty/src"
echo mx.example.org > "$W/control/me"
echo example.org > "$W/control/rcpthosts"

builds=()
if [ -d "$(rustc --print sysroot)/lib/rustlib/x86_64-unknown-linux-musl" ]; then
  cargo build -q --release -p smtpd --target x86_64-unknown-linux-musl
  builds+=("$t/x86_64-unknown-linux-musl/release/smtpd")
fi
cargo build -q --release -p smtpd --target x86_64-unknown-linux-gnu
builds+=("$t/x86_64-unknown-linux-gnu/release/smtpd")
RUSTFLAGS=" " CARGO_TARGET_DIR=$t/dynamic cargo build -q --release -p smtpd
builds+=("$t/dynamic/release/smtpd")

# floors: an empty C program and an empty Rust program, static
echo 'int main(void){return 0;}' > "$W/empty.c"
gcc -static -O2 -o "$W/empty-c-glibc" "$W/empty.c"
floors=("$W/empty-c-glibc")
if command -v musl-gcc >/dev/null; then
  musl-gcc -static -O2 -o "$W/empty-c-musl" "$W/empty.c"; floors+=("$W/empty-c-musl")
fi
printf '[package]\nname = "empty"\nversion = "0.1.0"\nedition = "2021"\n[workspace]\n' > "$W/empty/Cargo.toml"
echo 'fn main() {}' > "$W/empty/src/main.rs"
for tr in x86_64-unknown-linux-musl x86_64-unknown-linux-gnu; do
  [ -d "$(rustc --print sysroot)/lib/rustlib/$tr" ] || continue
  (cd "$W/empty" && RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=$W/empty/t \
    cargo build -q --release --target "$tr")
  floors+=("$W/empty/t/$tr/release/empty")
done

export CONTROLDIR=$W/control SPOOLDIR=$W/spool TCPREMOTEIP=127.0.0.5
session() {
  printf 'EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n'
  sleep 0.2
  printf 'Subject: s\r\n\r\nhello\r\n.\r\nQUIT\r\n'
}
echo "== syscalls of one whole session (${builds[0]})"
session | strace -f -c -o "$W/strace.txt" "${builds[0]}" >/dev/null 2>&1
grep -E "calls|total|fsync|open|read|write|poll|mmap|munmap" "$W/strace.txt"

echo "== CPU and page faults per start + greeting + EOF (perf stat -r 1000, twice)"
for round in 1 2; do
  for b in "${builds[@]}" "${floors[@]}"; do
    perf stat -r 1000 -e task-clock,page-faults "$b" </dev/null 2>&1 >/dev/null |
      awk -v b="${b#"$t"/}" '/task-clock/ {ms=$1} /page-faults/ {pf=$1}
        END {printf "round %s  %-50s %s ms %s faults\n", "'"$round"'", b, ms, pf}'
  done
done
