#!/usr/bin/env python3
"""gen.py DIR N [AGE_SECONDS]: fill DIR with N relay-table entries.

Names are canonical IPv4 addresses from 10.0.0.0 up (and every 16th one an
IPv6 address in 2001:db8::/32), content empty or USER=..., as relayallow
writes them. With AGE_SECONDS the mtimes are set that far in the past.
"""
import ipaddress
import os
import sys
import time

V6_BASE = 0x20010DB8 << 96


def name(i):
    if i % 16 == 15:
        return str(ipaddress.IPv6Address(V6_BASE | i))  # RFC 5952 form
    return "10.%d.%d.%d" % ((i >> 16) & 255, (i >> 8) & 255, i & 255)


def main():
    d, n = sys.argv[1], int(sys.argv[2])
    age = int(sys.argv[3]) if len(sys.argv) > 3 else 0
    os.makedirs(d, exist_ok=True)
    fd_dir = os.open(d, os.O_RDONLY | os.O_DIRECTORY)
    when = time.time() - age
    user = b"USER=bench@example.org\n"
    for i in range(n):
        fd = os.open(name(i), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644, dir_fd=fd_dir)
        if i % 2:
            os.write(fd, user)
        if age:
            os.utime(fd, (when, when))
        os.close(fd)
    os.close(fd_dir)


if __name__ == "__main__":
    main()
