#!/usr/bin/python3
"""The clients of `make test-systemd`, run inside the container, usually as
uid 65534 (nobody), through the relay's default addresses.

    client.py send ID COUNT   COUNT lines c:ID.unix:1 over the unix socket
                              and COUNT lines c:ID.udp:1 over UDP, 10 a
                              datagram
    client.py load ID RATE    the same at RATE lines a second per transport,
                              until standard input closes (at most
                              MAX_SECONDS)

Prints one JSON object: the lines each transport accepted
({"unix": n, "udp": n}), the errors by errno name, and the uid it ran as. A
line counts as sent only when its datagram was accepted; a unix send that
blocks (the relay's queue full while it restarts) waits, at most
SEND_TIMEOUT seconds.
"""

import errno
import json
import os
import socket
import sys
import threading
import time

UNIX = "/run/spectator-relay/relay.unix"
UDP = ("127.0.0.1", 1235)
PER_DATAGRAM = 10
SEND_TIMEOUT = 30
MAX_SECONDS = 300


class Sender:

    def __init__(self, ident):
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.unix.settimeout(SEND_TIMEOUT)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.payload = {
            "unix": "\n".join(["c:%s.unix:1" % ident] * PER_DATAGRAM).encode(),
            "udp": "\n".join(["c:%s.udp:1" % ident] * PER_DATAGRAM).encode(),
        }
        self.sent = {"unix": 0, "udp": 0}
        self.errors = {}

    def one(self, transport, lines=PER_DATAGRAM):
        data = self.payload[transport]
        if lines != PER_DATAGRAM:
            data = b"\n".join(data.split(b"\n")[:lines])
        try:
            if transport == "unix":
                self.unix.sendto(data, UNIX)
            else:
                self.udp.sendto(data, UDP)
        except OSError as e:
            name = errno.errorcode.get(e.errno, str(e)) if e.errno else type(e).__name__
            key = "%s %s" % (transport, name)
            self.errors[key] = self.errors.get(key, 0) + 1
            return
        self.sent[transport] += lines

    def report(self):
        print(json.dumps({"sent": self.sent, "errors": self.errors, "uid": os.getuid()}))


def send(ident, count):
    s = Sender(ident)
    for transport in ("unix", "udp"):
        left = count
        while left > 0:
            n = min(left, PER_DATAGRAM)
            s.one(transport, n)
            left -= n
    s.report()


def load(ident, rate):
    s = Sender(ident)
    closed = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), closed.set()), daemon=True).start()
    interval = PER_DATAGRAM / rate
    start = time.monotonic()
    due = start
    while not closed.is_set() and time.monotonic() - start < MAX_SECONDS:
        s.one("unix")
        s.one("udp")
        # Pacing, not synchronisation: the sender keeps a steady rate, and
        # after a blocked send it does not burst more than a second's worth.
        due = max(due + interval, time.monotonic() - 1.0)
        closed.wait(max(0.0, due - time.monotonic()))
    s.report()


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in ("send", "load"):
        sys.exit(__doc__)
    cmd, ident, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    (send if cmd == "send" else load)(ident, n)


if __name__ == "__main__":
    main()
