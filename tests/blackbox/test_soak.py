"""Soak: about a minute of mixed traffic from 4 senders over UDP and the unix
socket, with a SIGHUP every 10 s and one upstream outage, then exact totals,
and for timers and distribution summaries what SpectatorD would publish
(spectatord_model.py).
Run under AddressSanitizer (leaks end the relay with a non-zero status) and
UndefinedBehaviorSanitizer by `make test`; RELAY_SOAK_SECONDS shortens or
lengthens it."""

import collections
import os
import random
import signal
import threading
import time
import unittest

from relaytest import RelayTestCase, parse_line, wait_until
from spectatord_model import SpectatordModel, same_publish

SECONDS = float(os.environ.get("RELAY_SOAK_SECONDS", "60"))
# The names the senders give t T (soak.tN) and d D (soak.dN) lines; their
# merged statistics are c and m lines of the same names.
DIST_NAMES = {"soak.%s%d" % (k, i) for k in "td" for i in range(5)}


class MixedSender(threading.Thread):
    """Mixed types at a steady pace; keeps the exact expected result."""

    def __init__(self, index, transport, relay, halt):
        super().__init__(daemon=True)
        self.index = index
        self.rnd = random.Random(index)
        self.halt = halt
        self.sock, self.addr = relay.client_socket(transport)
        self.sums = collections.Counter()
        self.maxima = {}
        self.last = {}
        self.passthrough = collections.Counter()
        self.lines = 0

    def line(self, seq):
        r = self.rnd.random()
        s = self.rnd.randrange(50)
        if r < 0.5:
            v = self.rnd.choice([1, 2, 0.5])
            self.sums["soak.c%d,k=%d" % (s, s % 3)] += v
            return "c:soak.c%d,k=%d:%s" % (s, s % 3, v)
        if r < 0.6:
            v = self.rnd.randrange(1000000)
            key = "soak.m%d" % s
            self.maxima[key] = max(self.maxima.get(key, v), v)
            return "m:%s:%d" % (key, v)
        if r < 0.8:
            typ = "gCUA"[seq % 4]
            key = "soak.%s%d.%d" % (typ.lower(), s % 10, self.index)  # one sender per id
            v = str(1700000000 + seq) if typ == "A" else str(seq)
            self.last["%s:%s" % (typ, key)] = v
            return "%s:%s:%s" % (typ, key, v)
        typ = "tTdD"[seq % 4]
        line = "%s:soak.%s%d:%d" % (typ, typ.lower(), s % 5, self.index * 10000000 + seq)
        self.passthrough[line] += 1
        return line

    def run(self):
        seq = 0
        start = time.monotonic()
        while not self.halt.is_set():
            batch = [self.line(seq + i) for i in range(10)]
            seq += 10
            try:
                self.sock.sendto("\n".join(batch).encode(), self.addr)
            except OSError:
                raise
            self.lines += 10
            ahead = start + seq / 1000.0 - time.monotonic()  # 1,000 lines/s
            if ahead > 0:
                time.sleep(ahead)  # pacing the load, not synchronisation
        self.sock.close()


class SoakTest(RelayTestCase):

    def test_soak(self):
        up = self.fake("unix", rcvbuf=16 << 20)
        relay = self.relay(up, config={"relay": {"window": "500ms"},
                                       "self_metrics": {"enabled": "true"}})
        halt = threading.Event()
        senders = [MixedSender(i, "udp" if i % 2 == 0 else "unix", relay, halt) for i in range(4)]
        for s in senders:
            s.start()
        fakes = [up]
        start = time.monotonic()
        reloads = 0
        outage_done = False
        while time.monotonic() - start < SECONDS:
            elapsed = time.monotonic() - start
            if elapsed >= 10 * (reloads + 1):
                window = "500ms" if reloads % 2 else "700ms"
                with open(relay.config_path) as f:
                    text = f.read()
                with open(relay.config_path, "w") as f:
                    f.write(text.replace("window = 500ms", "window = " + window)
                            .replace("window = 700ms", "window = " + window))
                relay.signal(signal.SIGHUP)
                reloads += 1
                wait_until(lambda: relay.admin("stats")["reload"]["ok"] == reloads,
                           message="reload %d" % reloads)
            if not outage_done and elapsed >= SECONDS / 2:
                fakes[-1].close()                    # SpectatorD goes away...
                wait_until(lambda: relay.admin("stats")["upstream"]["state"] == "down",
                           message="the outage noticed")
                deferred = relay.admin("stats")["windows"]["deferred"]
                wait_until(lambda: relay.admin("stats")["windows"]["deferred"] >= deferred + 4,
                           message="four windows put off")  # ...for a few windows...
                fakes.append(self.fake("unix", rcvbuf=16 << 20))  # ...and returns
                outage_done = True
            time.sleep(0.05)  # the test's own clock, not synchronisation
        halt.set()
        for s in senders:
            s.join(10)
        stats = wait_until(lambda: (lambda st: st if st["received"]["lines"] ==
                                    sum(s.lines for s in senders) else None)(
            relay.admin("stats")), 60, message="every line read")
        self.assertExit0(relay)

        self.assertEqual(stats["rejected"]["total"], 0)
        self.assertEqual(stats["dropped"]["upstream"], 0)
        self.assertGreaterEqual(stats["upstream"]["outages"], 1)
        sums, maxima, last, passthrough = collections.Counter(), {}, {}, collections.Counter()
        for s in senders:
            sums.update(s.sums)
            for k, v in s.maxima.items():
                maxima[k] = max(maxima.get(k, v), v)
            last.update(s.last)
            passthrough.update(s.passthrough)
        got_sums, got_max, got_last, got_dist = collections.Counter(), {}, {}, []
        for f in fakes:
            for line in f.snapshot():
                typ, _, ident, value = parse_line(line)
                if not ident.startswith("soak."):
                    continue  # self-metrics
                if ident.split(",")[0] in DIST_NAMES:
                    got_dist.append(line)  # statistics or samples of t T d D
                elif typ == "c":
                    got_sums[ident] += float(value)
                elif typ == "m":
                    got_max[ident] = max(got_max.get(ident, float(value)), float(value))
                elif typ in "gCUA":
                    got_last["%s:%s" % (typ, ident)] = value
        self.assertEqual(dict(got_sums), {k: float(v) for k, v in sums.items()})
        self.assertEqual(got_max, {k: float(v) for k, v in maxima.items()})
        self.assertEqual({k: float(v) for k, v in got_last.items()},
                         {k: float(v) for k, v in last.items()})
        # Timers and distribution summaries arrive as SpectatorD's statistics
        # where those are shorter ([relay] merge_timers): what it publishes
        # is what it would have published from the lines sent.
        same_publish(self, SpectatordModel().feed(passthrough.elements()).publish(),
                     SpectatordModel().feed(got_dist).publish())


if __name__ == "__main__":
    unittest.main()
