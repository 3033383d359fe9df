"""SpectatorD away, full, slow or refusing: the relay keeps running, counter
totals and timer statistics stay exact, and lines forwarded one to one
(here timers with [relay] merge_timers off) are lost only past
max_pending_bytes, oldest first, and counted."""

import os
import re
import socket
import threading
import time
import unittest

from relaytest import SLOW, RelayTestCase, parse_line, wait_until
from spectatord_model import SpectatordModel, same_publish


class Sender(threading.Thread):
    """Sends counters over 20 series and one timer per datagram, at a steady
    pace, until stopped; remembers exactly what it sent."""

    def __init__(self, relay, transport="udp", pace=0.002, limit_s=30):
        super().__init__(daemon=True)
        self.relay = relay
        self.transport = transport
        self.pace = pace
        self.limit_s = limit_s
        self.sent = {}
        self.timers = 0
        self.halt = threading.Event()
        self.sock, self.addr = relay.client_socket(transport)

    def run(self):
        end = time.monotonic() + self.limit_s
        n = 0
        while not self.halt.is_set() and time.monotonic() < end:
            lines = []
            for i in range(10):
                ident = "fault.ctr,i=%d" % ((n + i) % 20)
                lines.append("c:%s:%d" % (ident, 1 + i % 3))
                self.sent[ident] = self.sent.get(ident, 0) + 1 + i % 3
            lines.append("t:fault.lat,seq=x:%d" % self.timers)
            self.timers += 1
            self.sock.sendto("\n".join(lines).encode(), self.addr)
            n += 10
            time.sleep(self.pace)  # pacing the load, not synchronisation
        self.sock.close()

    def finish(self):
        self.halt.set()
        self.join(10)


def sent_by(*senders):
    """What these senders sent, counter by counter, together."""
    total = {}
    for s in senders:
        for ident, v in s.sent.items():
            total[ident] = total.get(ident, 0) + v
    return total


def counter_sums(*fakes):
    total = {}
    for f in fakes:
        for ident, v in f.sums("c").items():
            if ident.startswith("fault.ctr"):
                total[ident] = total.get(ident, 0) + v
    return total


def timer_values(*fakes):
    """The timer samples that arrived one to one (merge_timers off)."""
    vals = []
    for f in fakes:
        vals += [int(parse_line(l)[3]) for l in f.of_type("t")]
    return vals


def assert_timers_exact(test, senders, *fakes):
    """What SpectatorD would publish for the timer: the same as from the
    samples the sender (or senders) sent, whether they arrived merged or
    one to one."""
    senders = senders if isinstance(senders, (list, tuple)) else [senders]
    sent = ["t:fault.lat,seq=x:%d" % i for s in senders for i in range(s.timers)]
    got = [l for f in fakes for l in f.snapshot() if parse_line(l)[2].startswith("fault.lat")]
    same_publish(test, SpectatordModel().feed(sent).publish(), SpectatordModel().feed(got).publish())


def dropped(relay):
    m = re.search(r"dropped_upstream=(\d+)", relay.log())
    return int(m.group(1))


class UpstreamFaultTest(RelayTestCase):

    def test_away_and_back(self):
        path = os.path.join(self.tmp, "spectatord.unix")
        first = self.fake("unix")
        relay = self.relay(first, config={"relay": {"window": "100ms"}})
        sender = Sender(relay)
        sender.start()
        wait_until(lambda: first.count() > 50, message="traffic before the outage")
        first.close()                       # SpectatorD goes away: socket gone
        wait_until(lambda: "event=upstream_down" in relay.log(), message="upstream down")
        stats = relay.admin("stats")["upstream"]
        self.assertEqual((stats["state"], stats["up"]), ("down", False))
        self.assertEqual(stats["last_error"], "No such file or directory")
        self.assertEqual(stats["outages"], 1)
        # Several windows pass without an upstream: each one's close is put
        # off, the open window merging on, while lines keep coming.
        deferred = relay.admin("stats")["windows"]["deferred"]
        wait_until(lambda: relay.admin("stats")["windows"]["deferred"] >= deferred + 3,
                   message="three windows put off while SpectatorD is away")
        # Quiet before SpectatorD returns, so that what recovery sends (the
        # two windows held) cannot fill its queue: a full queue would look
        # like a failed retry below.
        sender.finish()
        second = self.fake("unix")          # SpectatorD comes back at the same path
        self.assertEqual(second.path, path)
        # The relay answers this after the socket exists, between two
        # windows: every retry from now on finds SpectatorD there.
        at_return = relay.admin("stats")
        wait_until(lambda: second.count() > 0, message="delivery after the outage")
        # Recovery by itself, at the first window after SpectatorD came
        # back: not one send failed, not one window close was put off since.
        back = relay.admin("stats")
        self.assertEqual(back["upstream"]["errors"], at_return["upstream"]["errors"])
        self.assertEqual(back["windows"]["deferred"], at_return["windows"]["deferred"])
        self.assertGreater(back["windows"]["flushed"], at_return["windows"]["flushed"])
        again = Sender(relay)
        again.start()
        wait_until(lambda: second.count() > 50, message="traffic after the outage")
        stats = relay.admin("stats")["upstream"]
        self.assertEqual((stats["state"], stats["last_error"]), ("up", ""))
        # One outage, however many windows retried during it.
        self.assertEqual(stats["outages"], 1)
        self.assertEqual(relay.log().count("event=upstream_down"), 1)
        self.assertEqual(relay.log().count("event=upstream_up"), 1)
        again.finish()
        self.assertExit0(relay)
        self.assertEqual(counter_sums(first, second), sent_by(sender, again))
        assert_timers_exact(self, [sender, again], first, second)
        self.assertEqual(dropped(relay), 0)

    def test_starts_without_upstream_and_delivers_once_it_appears(self):
        relay = self.relay("unix://" + os.path.join(self.tmp, "spectatord.unix"))
        relay.send_udp("c:early:1\nt:early.lat:1")
        wait_until(lambda: "event=upstream_down" in relay.log(), message="upstream down")
        up = self.fake("unix")
        wait_until(lambda: up.count() >= 2, message="delivery after the upstream appeared")
        self.assertExit0(relay)
        self.assertEqual(sorted(up.snapshot()), ["c:early:1", "t:early.lat:1"])

    def test_full_queue_then_resume(self):
        # A small receive queue that stops being read: sendto() gets EAGAIN.
        # Timers one to one, so that the upstream's own queue fills.
        up = self.fake("unix", rcvbuf=4096)
        relay = self.relay(up, config={"relay": {"window": "100ms", "merge_timers": "false"}})
        up.pause()
        sender = Sender(relay)
        sender.start()
        wait_until(lambda: sender.timers > 1000, message="load while the upstream is full")
        stats = relay.admin("stats")["upstream"]
        self.assertEqual(stats["state"], "blocked")
        self.assertEqual(stats["last_error"], "Resource temporarily unavailable")
        self.assertGreater(stats["pending_bytes"], 0)
        up.resume()
        wait_until(lambda: up.count() > 0, message="delivery after resume")
        sender.finish()
        self.assertExit0(relay)
        self.assertEqual(counter_sums(up), sender.sent)
        self.assertEqual(sorted(timer_values(up)), list(range(sender.timers)))
        assert_timers_exact(self, sender, up)

    def test_slow_upstream(self):
        up = self.fake("unix", rcvbuf=8192, delay=0.01)  # one datagram every 10 ms
        relay = self.relay(up, config={"relay": {"window": "100ms"}})
        sender = Sender(relay, pace=0.001)
        sender.start()
        wait_until(lambda: sender.timers > 1500, message="load against a slow upstream")
        sender.finish()
        self.assertExit0(relay)
        self.assertEqual(counter_sums(up), sender.sent)
        assert_timers_exact(self, sender, up)

    def test_udp_upstream_refusing_then_back(self):
        # SpectatorD's port, refusing, yet kept from any other process: a
        # socket bound to it but connected to itself takes none of the
        # relay's datagrams, so the kernel answers them with "port
        # unreachable" as for a closed port.
        hold = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.addCleanup(hold.close)
        hold.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        hold.bind(("127.0.0.1", 0))
        port = hold.getsockname()[1]
        hold.connect(("127.0.0.1", port))
        relay = self.relay("udp://127.0.0.1:%d" % port, config={"relay": {"window": "100ms"}})
        sender = Sender(relay, transport="unix")
        sender.start()
        wait_until(lambda: "event=upstream_down" in relay.log(), message="ICMP refusal noticed")
        self.assertEqual(relay.admin("stats")["upstream"]["last_error"], "Connection refused")
        deferred = relay.admin("stats")["windows"]["deferred"]
        wait_until(lambda: relay.admin("stats")["windows"]["deferred"] >= deferred + 3,
                   message="three windows of refusals")
        back = self.fake("udp", port=port, reuse_port=True)  # SpectatorD binds the port again
        hold.close()
        wait_until(lambda: back.count() > 50, message="delivery after the port opened")
        sender.finish()
        self.assertExit0(relay)
        self.assertEqual(counter_sums(back), sender.sent)
        assert_timers_exact(self, sender, back)

    def test_pass_through_bounded_by_max_pending_bytes(self):
        path = os.path.join(self.tmp, "spectatord.unix")
        relay = self.relay("unix://" + path,
                           config={"relay": {"window": "100ms", "merge_timers": "false"},
                                   "limits": {"max_pending_bytes": "64KiB",
                                              "max_datagram": "1024"}})
        # ~300 KiB of timer lines while nobody listens: most must be dropped,
        # oldest first.
        n = 12000
        for start in range(0, n, 40):
            relay.send_unix("\n".join("t:pt.lat:%d" % i for i in range(start, start + 40)))
        relay.send_unix("c:pt.ctr:%d" % n)
        wait_until(lambda: "event=upstream_down" in relay.log(), message="upstream down")
        stats = relay.admin("stats")
        self.assertEqual(stats["upstream"]["state"], "down")
        self.assertLessEqual(stats["upstream"]["pending_bytes"], 64 * 1024)
        self.assertGreater(stats["dropped"]["upstream"], 0)
        with open("/proc/%d/status" % relay.proc.pid) as f:
            rss_kb = int([l for l in f if l.startswith("VmRSS:")][0].split()[1])
        if SLOW == 1:
            self.assertLess(rss_kb, 64 * 1024)  # memory stays bounded meanwhile
        up = self.fake("unix")
        wait_until(lambda: any(l.startswith("c:") for l in up.snapshot()), message="counter")
        self.assertExit0(relay)
        got = sorted(int(parse_line(l)[3]) for l in up.of_type("t"))
        lost = dropped(relay)
        self.assertGreater(lost, 0)
        self.assertEqual(len(got) + lost, n)
        # What survived is the newest, and nothing newer is missing.
        self.assertEqual(got, list(range(n - len(got), n)))
        # Held back: at most max_pending_bytes, plus the datagram being packed.
        self.assertLessEqual(sum(len("t:pt.lat:%d\n" % i) for i in got), 64 * 1024 + 1024)
        self.assertEqual(up.sums("c"), {"pt.ctr": n})


class StreamUpstreamTest(RelayTestCase):
    """stdout as a pipe whose reader stalls: the loop must go on (signals,
    admin, ingest), and what the pipe takes later is whole and exact."""

    N = 20000  # distinct counters: about 600 KiB of lines, ten pipes' worth

    def relay_on_pipe(self, **config):
        rfd, wfd = os.pipe()
        self.addCleanup(os.close, rfd)
        relay = self.relay("stdout", start=False, config=config)
        relay.start(stdout=wfd)
        os.close(wfd)
        return relay, rfd

    def send_counters(self, relay):
        for start in range(0, self.N, 50):
            relay.send_unix("\n".join("c:pipe.ctr,i=%d:1" % i
                                      for i in range(start, start + 50)))
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == self.N,
                   message="all lines received")

    def test_stalled_reader_blocks_nothing_and_loses_nothing(self):
        relay, rfd = self.relay_on_pipe(relay={"window": "100ms"})
        self.send_counters(relay)
        # The admin socket answers while the pipe is full.
        wait_until(lambda: relay.admin("stats")["upstream"]["state"] == "blocked",
                   message="upstream blocked on the full pipe")
        data = b""
        deadline = time.monotonic() + 20 * SLOW
        while data.count(b"\n") < self.N and time.monotonic() < deadline:
            data += os.read(rfd, 1 << 16)
        self.assertExit0(relay)
        lines = data.decode().split("\n")
        self.assertEqual(lines[-1], "")  # no torn line
        self.assertEqual(sorted(lines[:-1]),
                         sorted("c:pipe.ctr,i=%d:1" % i for i in range(self.N)))

    def test_sigterm_while_stalled_ends_within_shutdown_timeout(self):
        relay, rfd = self.relay_on_pipe(relay={"window": "100ms", "shutdown_timeout": "1s"})
        self.send_counters(relay)
        wait_until(lambda: relay.admin("stats")["upstream"]["state"] == "blocked",
                   message="upstream blocked on the full pipe")
        self.assertEqual(relay.stop(timeout=10), 0)
        data = b""
        while True:
            chunk = os.read(rfd, 1 << 16)
            if not chunk:
                break
            data += chunk
        # Every line is either whole in the pipe or counted as dropped; the
        # line being written when time ran out is cut short, and counted.
        whole = data.count(b"\n")
        self.assertGreater(dropped(relay), 0)
        self.assertEqual(whole + dropped(relay), self.N)


if __name__ == "__main__":
    unittest.main()
