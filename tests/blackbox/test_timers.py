"""Timers and distribution summaries through the real binary (issue 11,
docs/protocol.md 12.9): busy series reach SpectatorD as their statistics, at
most 4 + buckets lines per window; what SpectatorD would publish from the
relay's lines is what it would publish from the lines sent
(spectatord_model.py); zeros keep their zero totals; small windows go as
samples; [relay] merge_timers off forwards every sample, and toggling it by
reload under load loses nothing. Windows are closed with the admin `flush`
command, never by waiting for the timer."""

import collections
import random
import signal
import threading
import time
import unittest

from relaytest import RelayTestCase, parse_line, wait_until
from spectatord_model import SpectatordModel, same_publish


def publish(lines):
    return SpectatordModel().feed(lines).publish()


def name_of(line):
    return parse_line(line)[2].split(",")[0]


class TimersTest(RelayTestCase):

    def start(self, **config):
        """A fake SpectatorD and a relay whose windows only `flush` closes
        in time (5 s, the longest window there is)."""
        up = self.fake("unix", rcvbuf=8 << 20)
        cfg = {"relay": {"window": "5s"}}
        for sec, keys in config.items():
            cfg.setdefault(sec, {}).update(keys)
        return up, self.relay(up, config=cfg)

    def received(self, relay, n):
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == n, 30,
                   message="%d lines read" % n)

    def close_window(self, relay, up):
        """Closes the open window and waits until the fake holds every line
        the relay forwarded. A flush that finds the previous window still
        on its way leaves the open one open, so flush until one closes and
        is delivered at once: then every window before it was too."""
        wait_until(lambda: (lambda r: r["flushed"] and r["delivered"])(relay.admin("flush")),
                   30, interval=0.05, message="a window closed and delivered")
        def all_read():
            stats = relay.admin("stats")
            return (stats["upstream"]["pending_lines"] == 0 and
                    up.count() == stats["forwarded"]["lines"])
        wait_until(all_read, 30, message="the fake to read every forwarded line")

    def assert_nothing_lost(self, relay):
        stats = relay.admin("stats")
        self.assertEqual(stats["rejected"]["total"], 0)
        self.assertEqual(stats["dropped"]["upstream"], 0)
        self.assertEqual(sum(l["kernel_drops"] for l in stats["listeners"]), 0)

    def test_busy_series_are_their_statistics(self):
        # Percentile timers over UDP and over unix, a timer whose client
        # sent its own statistic tag, and distribution summaries, plain and
        # percentile: 2000 samples each in one window.
        up, relay = self.start()
        rng = random.Random(11)
        per_series = 2000
        series = {
            "T:lat.udp,zone=a": lambda: "%.6f" % rng.uniform(0, 0.3),
            "T:lat.unix": lambda: "%.9f" % rng.expovariate(20),
            "t:lat.own,statistic=p99": lambda: "%g" % rng.uniform(0, 2),
            "d:size": lambda: "%.3f" % rng.uniform(0, 5000),
            "D:size.pct": lambda: "%.2f" % rng.lognormvariate(5, 2),
        }
        sent = []
        udp, udp_addr = relay.client_socket("udp")
        unix, unix_addr = relay.client_socket("unix")
        try:
            for start in range(0, per_series, 20):
                for key, value in series.items():
                    lines = ["%s:%s" % (key, value()) for _ in range(20)]
                    sent += lines
                    if key.endswith(".udp,zone=a"):
                        udp.sendto("\n".join(lines).encode(), udp_addr)
                    else:
                        unix.sendto("\n".join(lines).encode(), unix_addr)
        finally:
            udp.close()
            unix.close()
        self.received(relay, len(sent))
        flushed = relay.admin("stats")["windows"]["flushed"]
        self.close_window(relay, up)
        windows = relay.admin("stats")["windows"]["flushed"] - flushed
        got = up.snapshot()

        same_publish(self, publish(sent), publish(got))
        # At most 4 + buckets lines per series and window: in each datagram,
        # each statistic of a series once (its lines share one datagram).
        for dgram in up.datagrams:
            ids = [parse_line(l)[2] for l in dgram.decode().split("\n") if l]
            self.assertEqual(len(ids), len(set(ids)), "a statistic twice in one window")
        by_name = collections.defaultdict(list)
        for line in got:
            by_name[name_of(line)].append(line)
        self.assertEqual(sorted(by_name), sorted(name_of(k + ":0") for k in series))
        for name, lines in by_name.items():
            buckets = {parse_line(l)[2] for l in lines if "statistic=percentile" in l}
            self.assertLessEqual(len(lines), windows * (4 + len(buckets)), name)
            self.assertTrue(all(l[0] in "cm" for l in lines), name)  # no sample passed
        # The client's statistic tag gave way to SpectatorD's.
        own = [parse_line(l)[2] for l in by_name["lat.own"]]
        self.assertIn("lat.own,statistic=count", own)
        self.assertFalse([i for i in own if "p99" in i])
        stats = relay.admin("stats")["timers"]
        self.assertEqual(stats, {"lines_in": len(sent), "lines_out": len(got), "unmerged": 0})
        self.assert_nothing_lost(relay)
        self.assertExit0(relay)

    def test_a_series_of_zeros_keeps_its_zero_totals(self):
        # SpectatorD's timer publishes totalTime and totalOfSquares of 0;
        # no counter line can say 0. The first sample carries them.
        up, relay = self.start()
        sent = (["t:zero:0"] * 10 + ["T:zero.pct:1e-10"] * 10 + ["d:zero.d:1e-200"] * 10 +
                ["D:zero.dd:0.5"] * 10)
        relay.send_unix("\n".join(sent))
        self.received(relay, len(sent))
        self.close_window(relay, up)
        got = up.snapshot()
        self.assertEqual(sorted(got), sorted([
            "t:zero:0", "c:zero,statistic=count:9",
            "T:zero.pct:1e-10", "c:zero.pct,statistic=count:9",
            "c:zero.pct,percentile=T0001,statistic=percentile:9",
            "d:zero.d:1e-200", "c:zero.d,statistic=count:9",
            "c:zero.d,statistic=totalAmount:9e-200",
            "D:zero.dd:0.5", "c:zero.dd,statistic=count:9",
            "c:zero.dd,percentile=D0000,statistic=percentile:9"]))
        published = publish(got)
        for name in ("zero", "zero.pct", "zero.dd"):
            stat = "totalAmount" if name == "zero.dd" else "totalTime"
            self.assertEqual(published["%s,statistic=%s" % (name, stat)], ("add", 0.0))
            self.assertEqual(published["%s,statistic=totalOfSquares" % name], ("add", 0.0))
            self.assertEqual(published["%s,statistic=count" % name], ("add", 10.0))
        same_publish(self, publish(sent), published)
        self.assertEqual(relay.admin("stats")["timers"],
                         {"lines_in": 40, "lines_out": 11, "unmerged": 0})
        self.assertExit0(relay)

    def test_a_two_sample_window_goes_as_two_samples(self):
        up, relay = self.start()
        sent = ["t:two:0.5", "t:two:0.25", "T:two.pct:0.001", "T:two.pct:0.002",
                "d:two.d:3.5", "d:two.d:1e-200", "D:two.dd:1.9", "D:two.dd:2.5"]
        relay.send_udp("\n".join(sent))
        self.received(relay, len(sent))
        self.close_window(relay, up)
        # As sent, D not truncated, each series' samples in order.
        self.assertEqual(up.snapshot(), sent)
        self.assertEqual(relay.admin("stats")["timers"],
                         {"lines_in": 8, "lines_out": 8, "unmerged": 0})
        self.assertExit0(relay)

    def test_merge_timers_off_forwards_every_sample(self):
        up, relay = self.start(relay={"merge_timers": "false"})
        sent = ["%s:off.%s:%s" % (t, t, v) for t in "tTdD"
                for v in ("0.0420", "1e-10", "0", "86400.5", "7", "1.9")] * 10
        for i in range(0, len(sent), 20):
            relay.send_unix("\n".join(sent[i:i + 20]))
        self.received(relay, len(sent))
        self.close_window(relay, up)
        self.assertEqual(up.snapshot(), sent)  # one to one, the text as sent
        self.assertEqual(relay.admin("stats")["timers"],
                         {"lines_in": 0, "lines_out": 0, "unmerged": len(sent)})
        self.assertExit0(relay)

    def test_series_past_max_series_are_forwarded_not_refused(self):
        up, relay = self.start(limits={"max_series": "2"})
        sent = ["c:ctr:1", "t:in:1", "t:in:2", "t:out:1", "d:out:2", "T:out:3", "D:out:4",
                "t:in:3", "t:in:4", "t:in:5"]
        relay.send_unix("\n".join(sent))
        self.received(relay, len(sent))
        self.close_window(relay, up)
        got = up.snapshot()
        self.assertEqual(got[:4], ["t:out:1", "d:out:2", "T:out:3", "D:out:4"])
        same_publish(self, publish(sent), publish(got))
        stats = relay.admin("stats")
        self.assertEqual(stats["timers"], {"lines_in": 5, "lines_out": 4, "unmerged": 4})
        self.assertEqual(stats["rejected"]["total"], 0)
        self.assertEqual(stats["dropped"]["series_limit"], 0)
        self.assertExit0(relay)

    def test_toggling_merge_timers_under_load_loses_nothing(self):
        up, relay = self.start()
        sender = Sender(relay)
        sender.start()
        try:
            stats = lambda: relay.admin("stats")  # noqa: E731
            wait_until(lambda: stats()["timers"]["lines_in"] > 5000, 30, message="merged load")
            relay.rewrite(relay={"merge_timers": "false"})
            self.assertTrue(relay.admin("reload")["ok"])
            unmerged = stats()["timers"]["unmerged"]
            wait_until(lambda: stats()["timers"]["unmerged"] > unmerged + 5000, 30,
                       message="one-to-one load")
            self.assertEqual(relay.admin("config")["relay"]["merge_timers"], False)
            relay.rewrite(relay={"merge_timers": "true"})
            relay.signal(signal.SIGHUP)
            wait_until(lambda: stats()["reload"]["ok"] == 2, message="SIGHUP reload")
            merged = stats()["timers"]["lines_in"]
            wait_until(lambda: stats()["timers"]["lines_in"] > merged + 5000, 30,
                       message="merged load again")
            relay.rewrite(relay={"merge_timers": "false"})
            self.assertTrue(relay.admin("reload")["ok"])
            unmerged = stats()["timers"]["unmerged"]
            wait_until(lambda: stats()["timers"]["unmerged"] > unmerged + 5000, 30,
                       message="one-to-one load again")
        finally:
            sender.finish()
        self.received(relay, len(sender.sent))
        self.close_window(relay, up)
        got = up.snapshot()
        same_publish(self, publish(sender.sent), publish(got))
        stats = relay.admin("stats")["timers"]
        self.assertEqual(stats["lines_in"] + stats["unmerged"], len(sender.sent))
        # Both forms reached SpectatorD: statistics and samples one to one.
        self.assertTrue([l for l in got if l.startswith("c:")])
        self.assertGreater(len([l for l in got if l[0] in "tTdD"]), 4000)
        self.assert_nothing_lost(relay)
        self.assertExit0(relay)


class Sender(threading.Thread):
    """Sends t T d D lines over a handful of series, 20 to a datagram,
    mostly over the unix socket (a blocking send: nothing is lost before the
    relay reads it) and every tenth over UDP, until stopped; keeps every
    line it sent."""

    def __init__(self, relay, limit_s=60):
        super().__init__(daemon=True)
        self.relay = relay
        self.limit_s = limit_s
        self.sent = []
        self.halt = threading.Event()
        self.rng = random.Random(1111)

    def value(self, typ):
        r = self.rng.random()
        if r < 0.05:
            return self.rng.choice(["0", "-0", "1e-10", "1e-9", "1e-200"])
        if r < 0.08:
            return "%.3f" % self.rng.uniform(86400, 200000)   # past 24 h
        if typ == "D":
            return "%.2f" % self.rng.uniform(0, 1000)          # fractional
        return "%.9f" % self.rng.expovariate(10)

    def run(self):
        udp, udp_addr = self.relay.client_socket("udp")
        unix, unix_addr = self.relay.client_socket("unix")
        end = time.monotonic() + self.limit_s
        n = 0
        try:
            while not self.halt.is_set() and time.monotonic() < end:
                lines = []
                for _ in range(20):
                    typ = self.rng.choice("tTdD")
                    ident = "load.%s,i=%d" % ("t" if typ in "tT" else "d", self.rng.randrange(4))
                    lines.append("%s:%s:%s" % (typ, ident, self.value(typ)))
                if n % 10 == 0:
                    udp.sendto("\n".join(lines).encode(), udp_addr)
                else:
                    unix.sendto("\n".join(lines).encode(), unix_addr)
                self.sent += lines
                n += 1
                time.sleep(0.0005)  # pacing the load, not synchronisation
        finally:
            udp.close()
            unix.close()

    def finish(self):
        self.halt.set()
        self.join(10)


if __name__ == "__main__":
    unittest.main()
