#!/usr/bin/env python3
"""Write the benchmark inputs: N records in cdbmake format and a file of
lookup keys (90% present, 10% absent, shuffled). Deterministic (seeded).
Usage: gen.py N RECORDS_OUT KEYS_OUT LOOKUPS"""
import random
import sys

n, rec_out, keys_out, lookups = int(sys.argv[1]), sys.argv[2], sys.argv[3], int(sys.argv[4])
rng = random.Random(20261122)
keys = []
with open(rec_out, "wb") as f:
    buf = []
    for i in range(n):
        k = b"user%07d@host%d.example" % (i, rng.randrange(1000))
        d = bytes(rng.choice(b"abcdefghijklmnopqrstuvwxyz0123456789=+") for _ in range(rng.randrange(8, 48)))
        keys.append(k)
        buf.append(b"+%d,%d:%s->%s\n" % (len(k), len(d), k, d))
        if len(buf) >= 10000:
            f.write(b"".join(buf))
            buf = []
    f.write(b"".join(buf))
    f.write(b"\n")
with open(keys_out, "wb") as f:
    out = []
    for i in range(lookups):
        if rng.randrange(10) == 0:
            out.append(b"absent%d@nowhere.example" % i)
        else:
            out.append(rng.choice(keys))
    f.write(b"\n".join(out) + b"\n")
