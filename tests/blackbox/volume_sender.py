"""One sender process of test_volume: sends `count` lines of mixed types in
10-line datagrams at a bounded pace, and writes what it sent as JSON.

usage: volume_sender.py TRANSPORT TARGET INDEX NSENDERS COUNT NSERIES OUT
  TRANSPORT  udp or unix; TARGET  PORT or PATH
"""

import json
import random
import socket
import sys
import time


def main():
    transport, target, index, nsenders, count, nseries, out = sys.argv[1:8]
    index, nsenders, count, nseries = int(index), int(nsenders), int(count), int(nseries)
    rnd = random.Random(1000 + index)
    if transport == "udp":
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        addr = ("127.0.0.1", int(target))
    else:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        addr = target

    sums, maxima, last, passthrough = {}, {}, {}, []
    # Last-value series belong to one sender each, so that "last" is defined.
    own = [s for s in range(nseries) if s % nsenders == index]
    batch = []
    start = time.monotonic()
    for seq in range(count):
        r = rnd.random()
        s = rnd.randrange(nseries)
        tags = ",shard=%d,kind=vol" % (s % 7) if s % 2 else ",kind=vol,shard=%d" % (s % 7)
        canon = ",kind=vol,shard=%d" % (s % 7)
        if r < 0.50:
            v = rnd.choice([1, 2, 3, 0.5, 0.25, 10])
            line, key = "c:vol.c%d%s:%s" % (s, tags, v), "c:vol.c%d%s" % (s, canon)
            sums[key] = sums.get(key, 0) + v
        elif r < 0.60:
            v = rnd.randrange(-1000, 1000000)
            line, key = "m:vol.m%d%s:%d" % (s, tags, v), "m:vol.m%d%s" % (s, canon)
            maxima[key] = max(maxima.get(key, v), v)
        elif r < 0.85:
            o = own[s % len(own)]
            typ = "gCUA"[seq % 4]
            if typ == "U":
                v = "%d" % rnd.randrange(0, 2**64)
            elif typ == "A":
                v = "%d" % (1700000000 + seq)
            else:
                v = repr(rnd.uniform(-1e6, 1e6) if typ == "g" else float(seq))
            line = "%s:vol.%s%d:%s" % (typ, typ.lower(), o, v)
            last["%s:vol.%s%d" % (typ, typ.lower(), o)] = v
        else:
            typ = "tTdD"[seq % 4]
            v = "%d.5" % (index * 1000000 + seq) if typ != "D" else "%d" % (index * 1000000 + seq)
            line = "%s:vol.%s%d%s:%s" % (typ, typ.lower(), s % 50, tags, v)
            passthrough.append("%s:vol.%s%d%s:%s" % (typ, typ.lower(), s % 50, canon, v))
        batch.append(line)
        if len(batch) == 10 or seq == count - 1:
            sock.sendto("\n".join(batch).encode(), addr)
            batch = []
        # Pace: at most 20k lines/s per sender, well within what the relay
        # reads, so that the kernel never drops.
        if seq % 1000 == 999:
            ahead = (seq + 1) / 20000.0 - (time.monotonic() - start)
            if ahead > 0:
                time.sleep(ahead)  # pacing the load, not synchronisation
    sock.close()
    with open(out, "w") as f:
        json.dump({"sums": sums, "maxima": maxima, "last": last,
                   "passthrough": passthrough}, f)


if __name__ == "__main__":
    main()
