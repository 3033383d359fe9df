"""Every type over every transport: merged lines arrive once per window with
the right sum, max or last value; pass-through lines arrive once each,
unchanged; rejected lines never arrive."""

import socket
import time
import unittest

from relaytest import RelayTestCase, parse_line, wait_until

# One window's worth of lines per type, and what must come out of it.
LINES = [
    "c:req,status=200,app=a:1",
    "c:req,app=a,status=200:2.5",       # same series, tags unsorted
    "c:req,status=200,app=a:0",         # no-op increment
    "m:depth:3",
    "m:depth:7",
    "m:depth:-2",
    "g:temp:10",
    "g,60:temp:11",
    "g:temp:12",                        # last value 12, TTL of the last line that had one: 60
    "g:cleared:1",
    "g:cleared:nan",
    "C:mono:100",
    "C:mono:90",
    "U:bytes:18446744073709551615",
    "U:bytes:9007199254740993",
    "A:age:1700000000",
    "A:age:1600000000",                 # last, not max
    "t:lat:0.042",
    "t:lat:0.042",
    "T:plat:0.5",
    "d:size:1024",
    "D:pdist:1.9",
    "X,1543160297100:sampled:42",
]
REJECTED = [
    "c:neg:-1", "Q:bad.type:1", "c:hex:0x10", "g:inf:inf", "c:dangling,", "c:name,name=x:1",
]


class ForwardingTest(RelayTestCase):

    def check_window(self, send):
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "300ms"}})
        send(relay, "\n".join(LINES[:12]))
        send(relay, "\n".join(LINES[12:] + REJECTED))
        # 7 merged series (c m g g C U A) and 6 pass-through lines.
        wait_until(lambda: up.count() >= 13, message="forwarded lines")
        self.assertExit0(relay)
        lines = up.snapshot()
        got = {}
        for line in lines:
            typ, extra, ident, value = parse_line(line)
            got.setdefault((typ, ident), []).append((extra, value))

        self.assertEqual(got[("c", "req,app=a,status=200")], [(None, "3.5")])
        self.assertEqual(got[("m", "depth")], [(None, "7")])
        self.assertEqual(got[("g", "temp")], [("60", "12")])
        self.assertEqual(got[("g", "cleared")], [(None, "nan")])
        self.assertEqual(got[("C", "mono")], [(None, "90")])
        self.assertEqual(got[("U", "bytes")], [(None, "9007199254740993")])
        self.assertEqual(got[("A", "age")], [(None, "1600000000")])
        self.assertEqual(got[("t", "lat")], [(None, "0.042"), (None, "0.042")])
        self.assertEqual(got[("T", "plat")], [(None, "0.5")])
        self.assertEqual(got[("d", "size")], [(None, "1024")])
        self.assertEqual(got[("D", "pdist")], [(None, "1.9")])  # as written
        self.assertEqual(got[("X", "sampled")], [("1543160297100", "42")])
        for line in REJECTED:
            ident = line.split(":")[1]
            self.assertFalse(any(k[1] == ident for k in got), line)
        self.assertEqual(len(lines), 13, lines)

    def test_udp_ipv4(self):
        self.check_window(lambda r, p: r.send_udp(p))

    def test_unix(self):
        self.check_window(lambda r, p: r.send_unix(p))

    def test_udp_ipv6(self):
        up = self.fake("unix")
        relay = self.relay(up, listen="udp://[::1]:{udp6}")
        relay.send_udp("c:v6:1\nc:v6:2\nt:v6lat:0.25", family=socket.AF_INET6,
                       port=relay.udp6_port)
        wait_until(lambda: len(up.snapshot()) >= 2, message="IPv6 lines")
        self.assertExit0(relay)
        self.assertEqual(sorted(up.snapshot()), ["c:v6:3", "t:v6lat:0.25"])

    def test_merged_lines_arrive_once_per_window(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "200ms"}})
        for _ in range(3):
            before = up.count()
            relay.send_udp("c:tick:1\nc:tick:1")
            wait_until(lambda: up.count() > before, message="a window")
        self.assertExit0(relay)
        self.assertEqual(up.snapshot(), ["c:tick:2"] * 3)

    def test_age_gauge_zero_becomes_receive_time(self):
        up = self.fake("unix")
        relay = self.relay(up)
        before = time.time()
        relay.send_udp("A:age.now:0")
        wait_until(lambda: up.count() >= 1, message="age gauge")
        after = time.time()
        self.assertExit0(relay)
        typ, _, ident, value = parse_line(up.snapshot()[0])
        self.assertEqual((typ, ident), ("A", "age.now"))
        self.assertTrue(before - 0.001 <= float(value) <= after + 0.001, value)

    def test_a_line_as_long_as_max_datagram_is_forwarded(self):
        # 512 bytes, with max_datagram = 512: the newline is only needed
        # between lines, so it goes alone, in a datagram of exactly 512.
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"},
                                       "limits": {"max_datagram": "512"}})
        line = "g,60:" + "a" * 505 + ":1"
        self.assertEqual(len(line), 512)
        relay.send_unix(line + "\nc:other:1")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 2, message="read")
        self.assertTrue(relay.admin("flush")["delivered"])
        up.settle()
        self.assertEqual(sorted(up.snapshot()), sorted([line, "c:other:1"]))
        self.assertIn(line.encode(), up.datagrams)   # 512 bytes, no '\n' after it
        self.assertEqual(relay.admin("stats")["rejected"]["total"], 0)
        # One byte more is too long, and refused as such.
        relay.send_unix("g,60:" + "a" * 506 + ":1")
        wait_until(lambda: relay.admin("stats")["rejected"]["by_reason"]["too-long"] == 1,
                   message="too-long")
        self.assertExit0(relay)

    def test_gauge_whose_ttl_and_value_need_two_lines(self):
        # Each line fits 512 bytes; the TTL of the first with the value of
        # the second would not. The gauge as it stood goes first, then the
        # new value: SpectatorD ends with the TTL and the last value.
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"},
                                       "limits": {"max_datagram": "512"}})
        ident = "b" * 480
        relay.send_unix("g,1000000000000:%s:1\ng:%s:0.30000000000000004" % (ident, ident))
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 2, message="read")
        self.assertTrue(relay.admin("flush")["delivered"])
        up.settle()
        self.assertEqual(up.snapshot(), ["g,1000000000000:%s:1" % ident,
                                         "g:%s:0.30000000000000004" % ident])
        self.assertExit0(relay)

    def test_counter_sum_that_overflows_is_never_inf(self):
        # 1e308 + 1e308 is inf in SpectatorD as well, but a line saying inf
        # is one the relay refuses: each goes as a finite line, and
        # SpectatorD sums them to what it would have.
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"}})
        relay.send_unix("c:big:1e308\nc:big:1e308\nc:big:1\nc:small:1")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 4, message="read")
        self.assertTrue(relay.admin("flush")["delivered"])
        up.settle()
        got = up.snapshot()
        big = [float(parse_line(l)[3]) for l in got if parse_line(l)[2] == "big"]
        self.assertTrue(all(v != float("inf") for v in big), got)
        self.assertEqual(sum(big), float("inf"))     # as SpectatorD adds them
        self.assertIn("c:small:1", got)
        # The second 1e308 went alone: not merged.
        self.assertEqual(relay.admin("stats")["merged"]["lines_in"], 3)
        self.assertExit0(relay)


if __name__ == "__main__":
    unittest.main()
