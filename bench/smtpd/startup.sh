#!/bin/bash
# Where one smtpd session's time goes (not a test; see README.md):
# syscall counts (strace -c), CPU per session (perf stat, start + greeting
# + EOF), and the same for a statically linked build when STATIC points at
# one (build it with:
#   RUSTFLAGS="-C target-feature=+crt-static" CARGO_TARGET_DIR=/work/tgt/smtpd-static \
#     cargo build --release -p smtpd --target x86_64-unknown-linux-gnu )
set -eu
BIN=${BIN:-/work/tgt/smtpd/release}
STATIC=${STATIC:-/work/tgt/smtpd-static/x86_64-unknown-linux-gnu/release}
W=${W:-/tmp/smtpd-bench-startup}
mkdir -p "$W/control" "$W/spool/tmp" "$W/spool/new"
echo mx.example.org > "$W/control/me"
echo example.org > "$W/control/rcpthosts"
export CONTROLDIR=$W/control SPOOLDIR=$W/spool TCPREMOTEIP=127.0.0.5
session() {
  printf 'EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n'
  sleep 0.2
  printf 'Subject: s\r\n\r\nhello\r\n.\r\nQUIT\r\n'
}
echo "== syscalls of one whole session (dynamic build)"
session | strace -f -c -o "$W/strace.txt" "$BIN/smtpd" >/dev/null 2>&1
grep -E "calls|total|fsync|openat|read|write|poll|mmap" "$W/strace.txt"
for b in "$BIN/smtpd" "$STATIC/smtpd"; do
  [ -x "$b" ] || continue
  echo "== $b: CPU per start + greeting + EOF (perf stat -r 500)"
  perf stat -r 500 -e task-clock "$b" </dev/null 2>&1 >/dev/null | grep -E "task-clock|elapsed"
done
