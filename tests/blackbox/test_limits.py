"""Limits under attack: a cardinality flood, a runaway metric name, and the
memory they may take (the bounds are stated in docs/performance.md)."""

import socket
import time
import unittest

from relaytest import SLOW, RelayTestCase, wait_until

FLOOD = 2000000
MAX_SERIES = 200000
# docs/performance.md states these bounds for the flood below.
PEAK_RSS_BOUND_KB = 100 * 1024
SETTLED_RSS_BOUND_KB = 20 * 1024


def status(pid, key):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1])
    raise KeyError(key)


class LimitsTest(RelayTestCase):

    def test_cardinality_flood(self):
        up = self.fake("unix", rcvbuf=32 << 20, keep=False)
        relay = self.relay(up, config={"relay": {"window": "2s"},
                                       "limits": {"max_series": str(MAX_SERIES)}})
        # Over the unix socket: a blocking sender waits for the relay instead
        # of being dropped, whatever the build's speed.
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            for base in range(0, FLOOD, 400):
                s.sendto("\n".join("c:flood.series.number.%d,host=h%d:1" % (i, i % 10)
                                   for i in range(base, base + 400)).encode(), relay.unix_path)
        stats = wait_until(lambda: (lambda s: s if s["received"]["lines"] == FLOOD else None)(
            relay.admin("stats")), 120, message="the whole flood read")
        peak = status(relay.proc.pid, "VmHWM")
        limited = stats["rejected"]["by_reason"]["series-limit"]
        # 2M ids in a few 2 s windows of at most 200k: most are refused.
        self.assertGreater(limited, 0)
        self.assertEqual(stats["dropped"]["series_limit"], limited)
        self.assertEqual(stats["merged"]["lines_in"], FLOOD - limited)
        self.assertLessEqual(stats["series"]["active"], MAX_SERIES)

        # The flood is over: a trickle for a few windows, and memory follows
        # the working set back down.
        def settled():
            relay.send_udp("c:steady:1")
            return status(relay.proc.pid, "VmRSS") < SETTLED_RSS_BOUND_KB * SLOW
        if SLOW == 1:  # sanitizers inflate and hold memory: bounds for plain builds
            self.assertLess(peak, PEAK_RSS_BOUND_KB, "peak RSS %d kB" % peak)
            print("\nflood: peak RSS %d kB, series-limit %d" % (peak, limited))
            start = time.monotonic()
            wait_until(settled, 20, interval=0.2, message="RSS back to the working set")
            print("RSS back under %d kB after %.1f s" % (SETTLED_RSS_BOUND_KB,
                                                         time.monotonic() - start))
        accepted = relay.admin("stats")["merged"]["lines_in"]  # flood and trickle
        relay.admin("flush")
        self.assertExit0(relay)
        # Every accepted increment arrived, once.
        self.assertEqual(up.counter_total, accepted)

    def test_runaway_name_cannot_starve_the_others(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"},
                                       "limits": {"max_series_per_name": "100"}})
        relay.send_unix("\n".join("c:runaway,request=%d:1" % i for i in range(150)))
        relay.send_unix("\n".join("c:healthy,endpoint=%d:1" % i for i in range(20)))
        stats = wait_until(lambda: (lambda s: s if s["received"]["lines"] == 170 else None)(
            relay.admin("stats")), message="lines read")
        self.assertEqual(stats["rejected"]["by_reason"]["name-limit"], 50)
        self.assertEqual(stats["dropped"]["name_limit"], 50)
        relay.admin("flush")
        self.assertExit0(relay)
        names = [l.split(",")[0] for l in up.snapshot()]
        self.assertEqual(names.count("c:runaway"), 100)
        self.assertEqual(names.count("c:healthy"), 20)


if __name__ == "__main__":
    unittest.main()
