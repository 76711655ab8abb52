#!/bin/sh
# The cost of one AUTH as smtpd pays it: fork+exec checkpassword, one
# SHA-512-crypt verify, exec of `true`. Prints the median of 5 runs of N
# checks for each rounds setting, good and bad password, in ms per check.
# Usage: bench/auth/cost.sh [BINDIR] [N]   (BINDIR: release build of
# checkpassword and userdb; default target/release)
set -eu
BIN=${1:-target/release}
N=${2:-50}
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export CONTROLDIR="$T"

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ms per check for N checks of user $1 password $2
per_check() {
  python3 - "$BIN/checkpassword" "$1" "$2" "$N" <<'PY'
import os, subprocess, sys, time
prog, user, pw, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
data = user.encode() + b"\0" + pw.encode() + b"\0\0"
t = time.perf_counter()
for _ in range(n):
    r, w = os.pipe()
    os.write(w, data); os.close(w)
    p = subprocess.Popen([prog, "true"], pass_fds=(r,), stdin=subprocess.DEVNULL,
                         preexec_fn=lambda: (os.dup2(r, 3)))
    p.wait(); os.close(r)
print("%.2f" % ((time.perf_counter() - t) * 1000 / n))
PY
}

for rounds in 1000 5000 10000 20000 50000; do
  rm -f "$T/users" "$T/users.cdb"
  echo pw | "$BIN/userdb" add -r "$rounds" "u@example.org"
  good=$(for i in 1 2 3 4 5; do per_check u@example.org pw; done | median)
  bad=$(for i in 1 2 3 4 5; do per_check u@example.org wrong; done | median)
  unknown=$(for i in 1 2 3 4 5; do per_check nobody@example.org pw; done | median)
  echo "rounds=$rounds good_ms=$good bad_ms=$bad unknown_ms=$unknown"
done
# the floor: fork+exec of `true` through checkpassword's misuse path
echo "baseline (true alone): $(python3 -c "
import subprocess,time
t=time.perf_counter()
for _ in range($N): subprocess.run(['true'])
print('%.2f' % ((time.perf_counter()-t)*1000/$N))") ms"
