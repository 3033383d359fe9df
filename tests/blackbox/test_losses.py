"""Every loss the stats count reaches the journal as a warning with its
count: promptly after a quiet spell, at most one line per kind per interval
in a flood, the rest at shutdown, and the counts add up to the stats."""

import re
import signal
import socket
import time
import unittest

from relaytest import SLOW, RelayTestCase, wait_until
from test_docs import stopped

LOST = re.compile(r"<4>event=(lines|datagrams)_lost kind=(\S+) count=(\d+) since_s=([\d.]+) "
                  r"stat=(\S+)\n")
INTERVAL_S = 10
SPECTATORD_READ = 65536


def lost(relay, kind=None, before_stop=False):
    """The loss warnings in the relay's log: (unit, kind, count, since_s, stat)."""
    text = relay.log()
    if before_stop and "event=stopping" in text:
        text = text[:text.index("event=stopping")]
    return [(m[0], m[1], int(m[2]), float(m[3]), m[4]) for m in LOST.findall(text)
            if kind is None or m[1] == kind]


class LossesTest(RelayTestCase):

    def told(self, relay, kind, message):
        """Waits (a few seconds at most: the first loss after quiet is told
        at the next one-second tick) for the one warning of kind."""
        return wait_until(lambda: lost(relay, kind), 5, message=message)

    def test_every_kind_is_told_with_its_count(self):
        up = self.fake("unix")
        relay = self.relay(up, config={
            "relay": {"window": "5s"},
            "limits": {"max_series": "5", "max_series_per_name": "2", "age_gauge_limit": "1"},
            "sockets": {"receive_buffer": "4KiB"}})
        relay.send_unix("A:g1:1\nA:g2:1")                      # one over age_gauge_limit
        relay.send_unix("c:a,k=1:1\nc:a,k=2:1\nc:a,k=3:1")    # one over max_series_per_name
        relay.send_unix("c:b:1\nc:c:1\nc:d:1\nc:e:1")         # two over max_series
        stats = wait_until(lambda: (lambda s: s if s["received"]["lines"] == 9 else None)(
            relay.admin("stats")), message="the lines")
        dropped = stats["dropped"]
        self.assertEqual((dropped["age_gauge_limit"], dropped["name_limit"],
                          dropped["series_limit"]), (1, 1, 2))
        for kind, stat in (("age-gauge-limit", "age_gauge_limit"), ("name-limit", "name_limit"),
                           ("series-limit", "series_limit")):
            (line,) = self.told(relay, kind, "a warning of " + kind)
            self.assertEqual(line[0], "lines")
            self.assertEqual(line[2], dropped[stat], kind)
            self.assertEqual(line[4], "dropped." + stat)

        # A unix datagram cut at SpectatorD's read.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.sendto(b"c:b:1\n" * (SPECTATORD_READ // 6 + 100), relay.unix_path)
        (line,) = self.told(relay, "truncated", "a warning of the truncated datagram")
        self.assertEqual(line[:3], ("datagrams", "truncated", 1))
        self.assertEqual(line[4], "received.truncated")

        # The kernel drops what a stopped relay's small buffer cannot hold.
        relay.signal(signal.SIGSTOP)
        wait_until(lambda: stopped(relay.proc.pid), message="the relay to stop")
        for _ in range(2000):
            relay.send_udp("c:b:1")  # a series the window has: no more series-limit
        relay.signal(signal.SIGCONT)
        (line,) = self.told(relay, "kernel", "a warning of kernel drops")
        drops = sum(l["kernel_drops"] for l in relay.admin("stats")["listeners"])
        self.assertGreater(drops, 0)
        self.assertEqual(line[:3], ("datagrams", "kernel", drops))

        self.assertExit0(relay)
        # Each was told once, and nothing was left for the end.
        self.assertEqual(sorted(l[1] for l in lost(relay)),
                         ["age-gauge-limit", "kernel", "name-limit", "series-limit", "truncated"])

    def test_lines_dropped_on_the_way_out_are_told(self):
        # Timers one to one, so that they queue for the upstream.
        relay = self.relay("unix://" + self.tmp + "/nobody.unix",
                           config={"relay": {"window": "100ms", "merge_timers": "false"},
                                   "limits": {"max_pending_bytes": "64KiB",
                                              "max_datagram": "1024"}})
        for start in range(0, 12000, 40):  # ~300 KiB of timer lines, nobody listening
            relay.send_unix("\n".join("t:pt.lat:%d" % i for i in range(start, start + 40)))
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 12000, message="lines")
        self.assertGreater(relay.admin("stats")["dropped"]["upstream"], 0)
        first = self.told(relay, "upstream", "a warning of dropped lines")[0]
        self.assertEqual(first[0], "lines")
        self.assertEqual(first[4], "dropped.upstream")
        self.assertExit0(relay)
        # What was still held at the end is lost too; every line is told.
        total = int(re.search(r"event=stopped .*dropped_upstream=(\d+)", relay.log())[1])
        self.assertEqual(sum(l[2] for l in lost(relay, "upstream")), total)

    def test_a_flood_is_one_line_per_kind_per_interval(self):
        relay = self.relay(self.fake("unix"), config={"limits": {"max_series": "1"}})
        start = time.monotonic()
        sent = 0
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            while sent < 1000 and time.monotonic() - start < 3:  # 10 new series every 3 ms
                s.sendto("\n".join("c:flood,i=%d:1" % (sent * 10 + j)
                                   for j in range(10)).encode(), relay.unix_path)
                sent += 1
                time.sleep(0.003)  # pacing the flood, not synchronisation
        wait_until(lambda: lost(relay, "series-limit"), 5, message="the first warning")
        counted = wait_until(lambda: (lambda s: s["received"]["datagrams"] == sent and
                                      s["dropped"]["series_limit"])(relay.admin("stats")),
                             message="every datagram read")
        self.assertExit0(relay)
        elapsed = time.monotonic() - start  # a bound on how long the relay ran the flood
        running = lost(relay, "series-limit", before_stop=True)
        self.assertGreaterEqual(len(running), 1)
        self.assertLessEqual(len(running), 1 + elapsed // INTERVAL_S)
        self.assertTrue(all(l[3] >= INTERVAL_S for l in running[1:]), running)
        # The rest, at shutdown; together they are the counter.
        self.assertEqual(sum(l[2] for l in lost(relay, "series-limit")), counted)
        self.assertEqual(len(lost(relay)), len(lost(relay, "series-limit")))


if __name__ == "__main__":
    unittest.main()
