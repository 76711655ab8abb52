#!/usr/bin/env python3
"""Driver for run.sh: times ours vs tinycdb, alternating A B A B, median of 5,
and prints raw numbers and ratios ours/theirs (below 1.00 = ours faster)."""
import argparse
import filecmp
import os
import statistics
import subprocess
import time

ROUNDS = 5


def timed(cmd, stdin_path):
    with open(stdin_path, "rb") as f:
        t = time.perf_counter()
        subprocess.run(cmd, stdin=f, stdout=subprocess.DEVNULL, check=True)
        return time.perf_counter() - t


def kv(line):
    return dict(p.split("=", 1) for p in line.split())


def lookup(cmd):
    out = subprocess.run(cmd, capture_output=True, check=True, text=True).stdout
    return kv(out.strip())


def main():
    ap = argparse.ArgumentParser()
    for a in ("work", "input", "keys", "bin", "lookup-rs", "lookup-c"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--static-bin", help="cdbget built with -C target-feature=+crt-static")
    a = ap.parse_args()
    ours_db = os.path.join(a.work, "ours.cdb")
    theirs_db = os.path.join(a.work, "theirs.cdb")
    nrec = sum(1 for _ in open(a.input, "rb")) - 1
    print(f"# input: {nrec} records, {os.path.getsize(a.input)} bytes; load average {os.getloadavg()[0]:.2f}")
    print("# the machine is shared with other builds: numbers are noisy")

    # 1. build time
    build = {"ours": [], "tinycdb": []}
    for _ in range(ROUNDS):
        build["ours"].append(timed([f"{a.bin}/cdbmake", ours_db, ours_db + ".tmp"], a.input))
        build["tinycdb"].append(timed(["cdb", "-c", "-t", theirs_db + ".tmp", theirs_db], a.input))
    same = filecmp.cmp(ours_db, theirs_db, shallow=False)
    print(f"\n## build ({nrec} records; cdbmake fsyncs, cdb -c does not); files identical: {same}")
    for k, v in build.items():
        print(f"{k:10} median {statistics.median(v):.3f} s   runs {' '.join(f'{x:.3f}' for x in v)}")
    rb = statistics.median(build["ours"]) / statistics.median(build["tinycdb"])
    print(f"ratio ours/tinycdb: {rb:.2f}")

    # 2. lookups in memory / mmap
    impls = {
        "rgcdb": [a.lookup_rs, "rgcdb", theirs_db, a.keys],
        "tinycdb": [a.lookup_c, theirs_db, a.keys],
        "cdbcrate": [a.lookup_rs, "cdbcrate", theirs_db, a.keys],
        "rgcdb-pread": [a.lookup_rs, "rgcdb-pread", theirs_db, a.keys],
    }
    res = {k: [] for k in impls}
    total = {k: [] for k in impls}
    checks = {}
    for _ in range(ROUNDS):
        for k, cmd in impls.items():
            r = lookup(cmd)
            res[k].append(float(r["ns_per_lookup"]))
            nlook = int(r["lookups"])
            total[k].append(float(r["open_ms"]) + float(r["ns_per_lookup"]) * nlook / 1e6)
            checks[k] = (r["found"], r["sum"])
    print(f"\n## random lookups ({r['lookups']} keys, 90% present), ns per lookup (loop only)")
    for k, v in res.items():
        print(f"{k:12} median {statistics.median(v):8.1f} ns   runs {' '.join(f'{x:.1f}' for x in v)}   found,sum={checks[k]}")
    base = statistics.median(res["tinycdb"])
    for k in ("rgcdb", "cdbcrate", "rgcdb-pread"):
        print(f"ratio {k}/tinycdb: {statistics.median(res[k]) / base:.2f}")
    print("open (load/mmap) + all lookups, ms:")
    for k, v in total.items():
        print(f"{k:12} median {statistics.median(v):8.1f} ms   runs {' '.join(f'{x:.1f}' for x in v)}")
    tb = statistics.median(total["tinycdb"])
    for k in ("rgcdb", "cdbcrate", "rgcdb-pread"):
        print(f"ratio {k}/tinycdb (open + lookups): {statistics.median(total[k]) / tb:.2f}")
    assert len(set(checks.values())) == 1, "implementations disagree"

    # 3. one lookup per process (what a per-connection program pays)
    n = 300
    key = open(a.keys, "rb").readline().rstrip(b"\n")
    progs = {"cdbget": f"{a.bin}/cdbget", "cdb -q": None}
    if a.static_bin:
        progs["cdbget-static"] = f"{a.static_bin}/cdbget"
    per = {k: [] for k in progs}
    for _ in range(ROUNDS):
        # interleaved run by run, so a burst of load hits every program alike
        spent = {k: 0.0 for k in progs}
        for _ in range(n):
            for k, prog in progs.items():
                with open(theirs_db, "rb") as f:
                    cmd = ["cdb", "-q", theirs_db, key] if prog is None else [prog, key]
                    t = time.perf_counter()
                    subprocess.run(cmd, stdin=f, stdout=subprocess.DEVNULL, check=True)
                    spent[k] += time.perf_counter() - t
        for k in progs:
            per[k].append(spent[k] / n)
    print(f"\n## one lookup per process ({n} runs per round), ms per run (mostly process start-up)")
    for k, v in per.items():
        print(f"{k:14} median {statistics.median(v) * 1e3:.3f} ms   runs {' '.join(f'{x * 1e3:.3f}' for x in v)}")
    for k in progs:
        if k != "cdb -q":
            print(f"ratio {k}/cdb -q: {statistics.median(per[k]) / statistics.median(per['cdb -q']):.2f}")

    # 4. dump
    dump = {"ours": [], "tinycdb": []}
    for _ in range(ROUNDS):
        dump["ours"].append(timed([f"{a.bin}/cdbdump"], theirs_db))
        dump["tinycdb"].append(timed(["cdb", "-d", theirs_db], "/dev/null"))
    print("\n## dump to /dev/null")
    for k, v in dump.items():
        print(f"{k:10} median {statistics.median(v):.3f} s   runs {' '.join(f'{x:.3f}' for x in v)}")
    print(f"ratio ours/tinycdb: {statistics.median(dump['ours']) / statistics.median(dump['tinycdb']):.2f}")


if __name__ == "__main__":
    main()
