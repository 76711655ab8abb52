#!/usr/bin/env python3
"""execbench.py RELAYCHECK EMPTY_DIR FULL_DIR ROUNDS BATCH [RELAYCHECK_GLIBC]

Per-connection cost of `relaycheck /bin/true` (fork + exec of relaycheck, its
two table stats, exec of /bin/true, wait), with the tables empty and with
FULL_DIR as RELAYDIR and DENYDIR, alternating empty/full batch by batch.
Clients: a stranger, absent from both tables (RELAYDIR and DENYDIR both the
table under test), and a user who logged in (present in RELAYDIR = the table
under test, DENYDIR empty). Prints the median microseconds per connection of each and the
full/empty ratios. Also /bin/true alone as the floor. With RELAYCHECK_GLIBC (another
build of relaycheck, e.g. static glibc next to static musl), its cases run in the same
rounds (suffix -glibc) and the ratios RELAYCHECK/RELAYCHECK_GLIBC are printed too.
"""
import os
import statistics
import sys
import time


def batch(argv, env, n):
    t0 = time.perf_counter()
    for _ in range(n):
        pid = os.posix_spawn(argv[0], argv, env)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            sys.exit("%s exited with status %d" % (argv, status))
    return (time.perf_counter() - t0) / n * 1e6


def main():
    rc, empty, full = sys.argv[1:4]
    rounds, n = int(sys.argv[4]), int(sys.argv[5])
    builds = [("", rc)]
    if len(sys.argv) > 6:
        builds.append(("-glibc", sys.argv[6]))
    path = {"PATH": "/usr/bin:/bin"}
    cases = {
        "true-alone": (["/bin/true"], path),
    }
    for table, d in (("empty", empty), ("full", full)):
        # a stranger misses in both tables; a user is in RELAYDIR only
        for who, ip, deny in (("stranger", "192.0.2.1", d), ("user", "10.0.1.1", empty)):
            env = dict(path, RELAYDIR=d, DENYDIR=deny, TCPREMOTEIP=ip)
            for suffix, prog in builds:
                cases["%s-%s%s" % (table, who, suffix)] = ([prog, "/bin/true"], env)
    times = {k: [] for k in cases}
    for _ in range(rounds):
        for k, (argv, env) in cases.items():  # A B A B: every case each round
            times[k].append(batch(argv, env, n))
    med = {k: statistics.median(v) for k, v in times.items()}
    for k, v in med.items():
        print("%-20s median %8.1f us/connection  (min %.1f, max %.1f, %d batches of %d)"
              % (k, v, min(times[k]), max(times[k]), rounds, n))
    for suffix, _ in builds:
        for who in ("stranger", "user"):
            w = who + suffix
            print("ratio full/empty %-14s %.3f" % (w, med["full-" + w] / med["empty-" + w]))
    if len(builds) > 1:
        for k in [k for k in cases if k.endswith("-glibc")]:
            base = k[: -len("-glibc")]
            print("ratio %s/%s %.3f" % (base, k, med[base] / med[k]))


if __name__ == "__main__":
    main()
