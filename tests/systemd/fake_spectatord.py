#!/usr/bin/python3
"""A fake SpectatorD for `make test-systemd`, run inside the container by
spectatord.service (beside this file).

It binds SpectatorD's socket, /run/spectatord/spectatord.unix, world-writable
as SpectatorD does (umask 0), and counts what arrives: datagrams, lines, and
the sum of every counter (`c:`) line by id. After each datagram it replaces
/run/spectatord/totals.json with those totals, so that the test reads them
whenever it likes (`cat`), never half-written. The relay merges per window,
so datagrams arrive a few per second and rewriting the file is cheap.
"""

import json
import os
import socket

SOCKET = "/run/spectatord/spectatord.unix"
TOTALS = "/run/spectatord/totals.json"


def write(totals):
    tmp = TOTALS + ".tmp"
    with open(tmp, "w") as f:
        json.dump(totals, f)
    os.replace(tmp, TOTALS)


def main():
    try:
        os.unlink(SOCKET)
    except FileNotFoundError:
        pass
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    old = os.umask(0)
    sock.bind(SOCKET)
    os.umask(old)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    totals = {"datagrams": 0, "lines": 0, "counters": {}}
    write(totals)  # the test waits for this file: the socket is bound
    counters = totals["counters"]
    while True:
        data = sock.recv(1 << 17)
        totals["datagrams"] += 1
        for line in data.decode("utf-8", "replace").split("\n"):
            if not line:
                continue
            totals["lines"] += 1
            kind, _, rest = line.partition(":")
            ident, _, value = rest.rpartition(":")
            if kind == "c" and ident:
                counters[ident] = counters.get(ident, 0) + float(value)
        write(totals)


if __name__ == "__main__":
    main()
