#!/usr/bin/env python3
"""Driver for run.sh: times ours vs tinycdb, alternating A B A B, median of 5,
and prints raw numbers and ratios ours/theirs (below 1.00 = ours faster).
With --glibc-bin (and --glibc-lookup-rs), the static glibc build of our
programs runs in the same rounds as a third contender ("-glibc"), and the
ratios of the main build (--bin, --label) to it are printed too."""
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


def med(v):
    return statistics.median(v)


def ratios(res, pairs, fmt=""):
    for a, b in pairs:
        if a in res and b in res:
            print(f"ratio {a}/{b}{fmt}: {med(res[a]) / med(res[b]):.2f}")


def main():
    ap = argparse.ArgumentParser()
    for a in ("work", "input", "keys", "bin", "lookup-rs", "lookup-c"):
        ap.add_argument("--" + a, required=True)
    ap.add_argument("--label", default="host", help="target of --bin, for the output")
    ap.add_argument("--glibc-bin", help="static glibc build of cdbmake, cdbget, cdbdump")
    ap.add_argument("--glibc-lookup-rs", help="static glibc build of cdb-lookup-bench")
    a = ap.parse_args()
    ours_db = os.path.join(a.work, "ours.cdb")
    glibc_db = os.path.join(a.work, "ours-glibc.cdb")
    theirs_db = os.path.join(a.work, "theirs.cdb")
    nrec = sum(1 for _ in open(a.input, "rb")) - 1
    print(f"# input: {nrec} records, {os.path.getsize(a.input)} bytes; load average {os.getloadavg()[0]:.2f}")
    print(f"# ours: {a.bin} ({a.label}); ours-glibc: {a.glibc_bin or 'not measured'}")
    print("# the machine is shared with other builds: numbers are noisy")

    # 1. build time
    makers = {"ours": ([f"{a.bin}/cdbmake", ours_db, ours_db + ".tmp"], a.input)}
    if a.glibc_bin:
        makers["ours-glibc"] = ([f"{a.glibc_bin}/cdbmake", glibc_db, glibc_db + ".tmp"], a.input)
    makers["tinycdb"] = (["cdb", "-c", "-t", theirs_db + ".tmp", theirs_db], a.input)
    build = {k: [] for k in makers}
    for _ in range(ROUNDS):
        for k, (cmd, inp) in makers.items():
            build[k].append(timed(cmd, inp))
    same = filecmp.cmp(ours_db, theirs_db, shallow=False)
    if a.glibc_bin:
        same = same and filecmp.cmp(glibc_db, theirs_db, shallow=False)
    print(f"\n## build ({nrec} records; cdbmake fsyncs, cdb -c does not); files identical: {same}")
    for k, v in build.items():
        print(f"{k:10} median {med(v):.3f} s   runs {' '.join(f'{x:.3f}' for x in v)}")
    ratios(build, [("ours", "tinycdb"), ("ours-glibc", "tinycdb"), ("ours", "ours-glibc")])

    # 2. lookups in memory / mmap
    impls = {"rgcdb": [a.lookup_rs, "rgcdb", theirs_db, a.keys]}
    if a.glibc_lookup_rs:
        impls["rgcdb-glibc"] = [a.glibc_lookup_rs, "rgcdb", theirs_db, a.keys]
    impls["tinycdb"] = [a.lookup_c, theirs_db, a.keys]
    impls["cdbcrate"] = [a.lookup_rs, "cdbcrate", theirs_db, a.keys]
    impls["rgcdb-pread"] = [a.lookup_rs, "rgcdb-pread", theirs_db, a.keys]
    if a.glibc_lookup_rs:
        impls["rgcdb-pread-glibc"] = [a.glibc_lookup_rs, "rgcdb-pread", theirs_db, a.keys]
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
        print(f"{k:18} median {med(v):8.1f} ns   runs {' '.join(f'{x:.1f}' for x in v)}   found,sum={checks[k]}")
    pairs = [(k, "tinycdb") for k in impls if k != "tinycdb"]
    pairs += [("rgcdb", "rgcdb-glibc"), ("rgcdb-pread", "rgcdb-pread-glibc")]
    ratios(res, pairs)
    print("open (load/mmap) + all lookups, ms:")
    for k, v in total.items():
        print(f"{k:18} median {med(v):8.1f} ms   runs {' '.join(f'{x:.1f}' for x in v)}")
    ratios(total, pairs, " (open + lookups)")
    assert len(set(checks.values())) == 1, "implementations disagree"

    # 3. one lookup per process (what a per-connection program pays)
    n = 300
    key = open(a.keys, "rb").readline().rstrip(b"\n")
    progs = {"cdbget": f"{a.bin}/cdbget"}
    if a.glibc_bin:
        progs["cdbget-glibc"] = f"{a.glibc_bin}/cdbget"
    progs["cdb -q"] = None
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
        print(f"{k:14} median {med(v) * 1e3:.3f} ms   runs {' '.join(f'{x * 1e3:.3f}' for x in v)}")
    ratios(per, [("cdbget", "cdb -q"), ("cdbget-glibc", "cdb -q"), ("cdbget", "cdbget-glibc")])

    # 4. dump
    dumpers = {"ours": ([f"{a.bin}/cdbdump"], theirs_db)}
    if a.glibc_bin:
        dumpers["ours-glibc"] = ([f"{a.glibc_bin}/cdbdump"], theirs_db)
    dumpers["tinycdb"] = (["cdb", "-d", theirs_db], "/dev/null")
    dump = {k: [] for k in dumpers}
    for _ in range(ROUNDS):
        for k, (cmd, inp) in dumpers.items():
            dump[k].append(timed(cmd, inp))
    print("\n## dump to /dev/null")
    for k, v in dump.items():
        print(f"{k:10} median {med(v):.3f} s   runs {' '.join(f'{x:.3f}' for x in v)}")
    ratios(dump, [("ours", "tinycdb"), ("ours-glibc", "tinycdb"), ("ours", "ours-glibc")])


if __name__ == "__main__":
    main()
