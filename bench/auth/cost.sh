#!/bin/sh
# The cost of one AUTH as smtpd pays it: fork+exec checkpassword, one
# SHA-512-crypt verify, exec of `true`. Prints the median of 5 runs of N
# checks for each rounds setting, good and bad password, in ms per check.
# Usage: bench/auth/cost.sh [BINDIR] [N]   (BINDIR: release build of
# checkpassword and userdb; default: build them for the target
# scripts/lib/target.sh picks, static musl when installed, and then also the
# static glibc build, measured in the same rounds: GLIBC=0 to skip it)
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${1:-}
N=${2:-50}
GBIN=""
if [ -z "$BIN" ]; then
  tdir=${CARGO_TARGET_DIR:-$root/target}
  cd "$root"
  . scripts/lib/target.sh
  cargo build -q --release -p checkpassword -p userdb
  BIN=$tdir/${RG_TRIPLE_DIR}release
  gnu=$RG_GNU
  if [ -n "$RG_GLIBC_TOO" ]; then
    CARGO_BUILD_TARGET=$gnu cargo build -q --release -p checkpassword
    GBIN=$tdir/$gnu/release
  fi
fi
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
export CONTROLDIR="$T"
echo "# checkpassword: $BIN${GBIN:+ and (glibc) $GBIN}; N=$N; $(date -u); $(uptime)"

median() { tr ' ' '\n' | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }

# ms per check for N checks of user $2 password $3 by checkpassword in dir $1
per_check() {
  python3 - "$1/checkpassword" "$2" "$3" "$N" <<'PY'
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
  # ours good bad unknown, then glibc's, five times over (A B A B)
  g1="" b1="" u1="" g2="" b2="" u2=""
  for i in 1 2 3 4 5; do
    g1="$g1 $(per_check "$BIN" u@example.org pw)"
    b1="$b1 $(per_check "$BIN" u@example.org wrong)"
    u1="$u1 $(per_check "$BIN" nobody@example.org pw)"
    [ -n "$GBIN" ] || continue
    g2="$g2 $(per_check "$GBIN" u@example.org pw)"
    b2="$b2 $(per_check "$GBIN" u@example.org wrong)"
    u2="$u2 $(per_check "$GBIN" nobody@example.org pw)"
  done
  echo "rounds=$rounds good_ms=$(echo "$g1" | median) bad_ms=$(echo "$b1" | median)" \
    "unknown_ms=$(echo "$u1" | median)   raw good:$g1 bad:$b1 unknown:$u1"
  [ -z "$GBIN" ] ||
    echo "  glibc       good_ms=$(echo "$g2" | median) bad_ms=$(echo "$b2" | median)" \
      "unknown_ms=$(echo "$u2" | median)   raw good:$g2 bad:$b2 unknown:$u2"
done
# the floor: fork+exec of `true` through checkpassword's misuse path
echo "baseline (true alone): $(python3 -c "
import subprocess,time
t=time.perf_counter()
for _ in range($N): subprocess.run(['true'])
print('%.2f' % ((time.perf_counter()-t)*1000/$N))") ms"
