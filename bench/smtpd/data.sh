#!/bin/bash
# DATA-phase throughput and session memory (not a test; see README.md).
#  1. the DATA decoder alone (rgsmtp example, in memory, 10 MB message)
#  2. a 10 MB message over loopback through tcpserver + smtpd + embedded
#     spool on disk (fsynced): time from the first body byte to the 250,
#     median of 5
#  3. peak RSS (VmHWM) of one smtpd session: small message, and the 10 MB one
#   BIN (default: build release smtpd and tcpserver for the target
#   scripts/lib/target.sh picks), TCPSERVER (default ours from BIN)
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ -z "${BIN:-}" ]; then
  cd "$here/../.."
  . scripts/lib/target.sh
  cargo build -q --release -p smtpd -p tcpserver
  BIN=${CARGO_TARGET_DIR:-$(pwd)/target}/${RG_TRIPLE_DIR}release
fi
TCPSERVER=${TCPSERVER:-$BIN/tcpserver}
echo "smtpd: $BIN/smtpd"
PORT=${PORT:-2528}
W=${W:-/tmp/smtpd-bench-data}
mkdir -p "$W/control" "$W/spool/tmp" "$W/spool/new"
echo mx.example.org > "$W/control/me"
echo example.org > "$W/control/rcpthosts"

echo "== 1. decoder alone"
(cd "$here/../.." && cargo run --release -q -p rgsmtp --example decode_bench)

echo "== 2. 10 MB message through tcpserver + smtpd + spool"
CONTROLDIR=$W/control SPOOLDIR=$W/spool "$TCPSERVER" -R -H -l 0 127.0.0.1 "$PORT" "$BIN/smtpd" 2>/dev/null &
srv=$!
trap 'kill $srv 2>/dev/null || true' EXIT
sleep 0.5
python3 - "$PORT" <<'PY'
import socket, sys, time, statistics
port = int(sys.argv[1])
line = b"QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVphYmNkZWZnaGlqa2xtbm9wcXJzdHV2d3h5ejAxMjM0\r\n"
body = b"Subject: big\r\n\r\n" + line * (10 * 1024 * 1024 // len(line)) + b".\r\n"
def reply(f):
    while True:
        l = f.readline()
        if l[3:4] != b"-":
            return l
rates = []
for i in range(5):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    reply(f)
    for c in (b"EHLO b", b"MAIL FROM:<a@example.org>", b"RCPT TO:<b@example.org>", b"DATA"):
        s.sendall(c + b"\r\n"); reply(f)
    t = time.time()
    s.sendall(body)
    r = reply(f)
    dt = time.time() - t
    assert r.startswith(b"250"), r
    rates.append(len(body) / dt / 1e6)
    s.sendall(b"QUIT\r\n"); s.close()
print("10 MB DATA to 250: %s MB/s, median %.0f MB/s" % (" ".join("%.0f" % r for r in rates), statistics.median(rates)))
PY

echo "== 3. peak RSS of one session"
rss() { # input generator -> VmHWM via /usr/bin/time
  CONTROLDIR=$W/control SPOOLDIR=$W/spool TCPREMOTEIP=127.0.0.5 \
    /usr/bin/time -f "%M" "$BIN/smtpd" 2>&1 >/dev/null | tail -n 1
}
small=$( (printf 'EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n'; sleep 0.2
          printf 'Subject: s\r\n\r\nhello\r\n.\r\nQUIT\r\n') | rss)
big=$( (printf 'EHLO c\r\nMAIL FROM:<a@example.org>\r\nRCPT TO:<b@example.org>\r\nDATA\r\n'; sleep 0.2
        python3 -c 'import sys; l=b"x"*76+b"\r\n"; sys.stdout.buffer.write(b"Subject: b\r\n\r\n"+l*(10*1024*1024//78)+b".\r\nQUIT\r\n")') | rss)
echo "peak RSS: small message ${small} KiB, 10 MB message ${big} KiB"
