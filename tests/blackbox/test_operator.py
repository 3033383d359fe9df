"""The operator's tools of issue 15, through the real binaries: `tap` (with
spectator-relayctl and with a client speaking the admin protocol), `top`,
and `spectator-relay --replay`.

Taps are synchronised without sleeping: a raw client is attached once the
relay's {"tap": true, ...} line has arrived; spectator-relayctl prints no
such line, so a probe line of its prefix is sent until the tap shows it.
"""

import grp
import json
import os
import re
import shutil
import socket
import subprocess
import threading
import time
import unittest

from relaytest import (RELAY_BIN, RELAYCTL_BIN, SLOW, Relay, RelayTestCase, parse_line,
                       wait_until)


class Tail:
    """A running spectator-relayctl whose standard output is read line by
    line in a thread (or not at all, with read=False, until drain())."""

    def __init__(self, args, user=None, extra_groups=None, read=True):
        self.proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                     user=user, extra_groups=extra_groups)
        self.out = []
        self.lock = threading.Lock()
        self.thread = None
        self.gate = threading.Event()  # cleared: the reader stops, as a slow one would
        self.gate.set()
        if read:
            self.drain()

    def drain(self):
        """Starts reading standard output, to its end."""
        def run():
            for raw in self.proc.stdout:
                self.gate.wait(300)
                with self.lock:
                    self.out.append(raw.decode("utf-8", "surrogateescape").rstrip("\n"))
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()

    def lines(self):
        with self.lock:
            return list(self.out)

    def wait(self, timeout=30):
        """The exit status once the process ended and its output is read;
        its standard error."""
        code = self.proc.wait(timeout * SLOW)
        if self.thread is None:
            self.drain()
        self.thread.join(timeout * SLOW)
        self.assert_done()
        err = self.proc.stderr.read().decode("utf-8", "replace")
        self.proc.stdout.close()
        self.proc.stderr.close()
        return code, err

    def assert_done(self):
        if self.thread.is_alive():
            raise AssertionError("relayctl's output did not end")

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdout, self.proc.stderr):
            f.close()


class RawTap:
    """A client speaking the admin protocol: `tap SECONDS PREFIX`, then the
    relay's first line, then events. read=False leaves the socket unread
    after that first line, as a client that stopped reading would."""

    def __init__(self, path, request, timeout=10):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout * SLOW)
        self.sock.connect(path)
        self.sock.sendall(request.encode() + b"\n")
        self.buf = b""
        while b"\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                break
            self.buf += chunk
        head, _, self.buf = self.buf.partition(b"\n")
        self.first = json.loads(head) if head else None

    def read_to_end(self):
        """Every event line until the relay closes the connection."""
        data = self.buf
        while True:
            chunk = self.sock.recv(1 << 20)
            if not chunk:
                break
            data += chunk
        self.buf = b""
        self.sock.close()
        return data.decode("utf-8", "surrogateescape").splitlines()

    def close(self):
        self.sock.close()


def rss_kib(pid):
    """The resident memory of a process, in KiB."""
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS for %d" % pid)


def ctl_args(relay, *args):
    return [RELAYCTL_BIN, "--socket", relay.admin_path] + list(args)


def attach(relay, tails, probe):
    """Sends probe (a line of the taps' prefix) until every tail shows it:
    from then on each tap sees every line. Bounded by wait_until."""
    def seen():
        relay.send_udp(probe)
        return all(any(probe in l for l in t.lines()) for t in tails)
    wait_until(seen, 10, interval=0.05, message="the taps to attach")


def without(lines, marker):
    return [l for l in lines if marker not in l]


def name_of(line):
    """What a prefix is matched against: the bytes after the first ':'."""
    return line.split(":", 1)[1] if ":" in line else ""


def received(relay, n):
    """Waits until the relay has read n lines in all."""
    wait_until(lambda: relay.admin("stats")["received"]["lines"] >= n,
               message="the relay to read %d lines" % n)


# What a client of the "srv." ids sends, and others beside them. Two
# datagrams, one by UDP and one by the unix socket.
SRV_UDP = [
    "c:srv.requests,status=200,method=get:1",
    "c:other.requests:1",                       # another id: never in the tap
    "c:srv.requests,method=get,status=200:2",   # the same series as the first
    "c:srv.neg:-1",                              # refused: negative
    "c:other.neg:-1",                            # refused, another id
    "Q:srv.bad:1",                               # refused: bad-type (name after the ':')
    "c:srvx.requests:1",                         # "srvx." is not "srv."
    "c:xsrv.requests:1",
    "X,1700000000000:srv.sampled,b=1,a=2:5",     # forwarded as it came
]
SRV_UNIX = [
    "t:srv.latency:1",                           # merged: five samples, four statistics
    "t:srv.latency:2",
    "t:srv.latency:3",
    "t:srv.latency:4",
    "t:srv.latency:5",
    "t:other.latency:1",
    "m:srv.peak:3",
    "m:srv.peak:9",
    "c:srv.hex:0x10",                            # refused: hex
]
SRV_REASONS = {"c:srv.neg:-1": "negative", "Q:srv.bad:1": "bad-type", "c:srv.hex:0x10": "hex"}
SRV_OUT = [
    "X,1700000000000:srv.sampled,a=2,b=1:5",
    "c:srv.requests,method=get,status=200:3",
    "m:srv.peak:9",
    "c:srv.latency,statistic=count:5",
    "c:srv.latency,statistic=totalTime:15",
    "c:srv.latency,statistic=totalOfSquares:55",
    "m:srv.latency,statistic=max:5",
]


class TapTest(RelayTestCase):

    def srv_events(self, relay, up, tails, probe):
        """Sends SRV_UDP and SRV_UNIX once every tap is attached, flushes
        the window, and returns the lines the relay forwarded."""
        attach(relay, tails, probe)
        before = relay.admin("stats")["received"]["lines"]
        relay.send_udp("\n".join(SRV_UDP))
        received(relay, before + len(SRV_UDP))  # so the datagrams keep their order
        relay.send_unix("\n".join(SRV_UNIX))
        received(relay, before + len(SRV_UDP) + len(SRV_UNIX))
        self.assertTrue(relay.admin("flush")["delivered"])
        wait_until(lambda: len([l for l in up.snapshot() if "srv.latency" in l]) == 4,
                   message="the window's lines")
        up.settle()
        return up.snapshot()

    def test_tap_shows_in_reject_and_out_for_its_prefix_and_nothing_else(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"}})
        raw = RawTap(relay.admin_path, "tap 0 srv.")
        self.addCleanup(raw.close)
        self.assertEqual(raw.first, {"tap": True, "seconds": 0, "prefix": "srv."})
        text = Tail(ctl_args(relay, "tap", "srv."))
        as_json = Tail(ctl_args(relay, "--json", "tap", "srv."))
        as_raw = Tail(ctl_args(relay, "tap", "--raw", "srv."))
        for t in (text, as_json, as_raw):
            self.addCleanup(t.kill)
        probe = "g:srv.sync:1"
        forwarded = self.srv_events(relay, up, [text, as_json, as_raw], probe)

        # The tap ends when the relay stops, and spectator-relayctl with 0.
        self.assertExit0(relay)
        results = {}
        for name, t in (("text", text), ("json", as_json), ("raw", as_raw)):
            code, err = t.wait()
            self.assertEqual((code, err), (0, ""), name)
            results[name] = without(t.lines(), "srv.sync")
        events = without(raw.read_to_end(), "srv.sync")

        mine = [l for l in SRV_UDP + SRV_UNIX if name_of(l).startswith("srv.")]
        want_in = ["reject %s %s" % (SRV_REASONS[l], l) if l in SRV_REASONS else "in " + l
                   for l in mine]
        want_out = ["out " + l for l in SRV_OUT]
        # What the relay forwarded for those ids is exactly what the tap
        # says went out.
        self.assertEqual([l for l in forwarded if name_of(l).startswith("srv.")
                          and "srv.sync" not in l], SRV_OUT)
        self.assertEqual(events, results["text"])  # relayctl prints the events as they are
        self.assertEqual([e for e in events if not e.startswith("out ")], want_in)
        self.assertEqual([e for e in events if e.startswith("out ")], want_out)
        # The X line goes out as it came, the window's lines at the flush.
        self.assertGreater(events.index(want_out[0]), events.index("in " + SRV_UDP[-1]))
        self.assertGreater(events.index(want_out[1]), events.index(want_in[-1]))
        self.assertFalse([e for e in events if "other." in e or "srvx" in e or "xsrv" in e])

        # --json: one object per event, the same events.
        objs = [json.loads(l) for l in results["json"]]
        self.assertEqual(
            ["%s %s%s" % (o["event"], o["reason"] + " " if "reason" in o else "", o["line"])
             for o in objs], events)
        self.assertEqual(objs[1], {"event": "in", "line": SRV_UDP[2]})
        self.assertEqual(objs[2], {"event": "reject", "reason": "negative",
                                   "line": "c:srv.neg:-1"})
        self.assertTrue(all(set(o) <= {"event", "reason", "line"} for o in objs))
        # --raw: the lines that came in, accepted or refused, one per line.
        self.assertEqual(results["raw"], mine)

    def test_tap_seconds_ends_by_itself(self):
        relay = self.relay(self.fake("unix"))
        start = time.monotonic()
        out = subprocess.run(ctl_args(relay, "tap", "--seconds", "1", "srv."),
                             capture_output=True, text=True, timeout=30 * SLOW)
        elapsed = time.monotonic() - start
        self.assertEqual((out.returncode, out.stdout, out.stderr), (0, "", ""))
        self.assertGreaterEqual(elapsed, 1.0)
        self.assertLess(elapsed, 1.0 + 5 * SLOW)

        start = time.monotonic()
        raw = RawTap(relay.admin_path, "tap 1")
        self.assertEqual(raw.first, {"tap": True, "seconds": 1, "prefix": ""})
        relay.send_udp("c:anything:1")  # no prefix: every line
        self.assertEqual(raw.read_to_end()[0], "in c:anything:1")
        self.assertGreaterEqual(time.monotonic() - start, 1.0)
        # A prefix may start with a digit; a blank in it is refused.
        raw = RawTap(relay.admin_path, "tap 2xx.y")
        self.assertEqual(raw.first, {"tap": True, "seconds": 0, "prefix": "2xx.y"})
        raw.close()
        raw = RawTap(relay.admin_path, "tap 5 a b")
        self.assertIn("a prefix holds no blank", raw.first["error"])
        raw.close()
        self.assertExit0(relay)

    def test_a_non_privileged_user_is_refused_tap_but_allowed_stats(self):
        group = grp.getgrnam("daemon")
        relay = self.relay(self.fake("unix"),
                           config={"admin": {"mode": "0666", "group": "daemon"}})
        os.chmod(self.tmp, 0o755)
        # nobody runs a copy in the test's own directory (as in test_admin):
        # the build directory may be below one it cannot enter.
        binary = os.path.join(self.tmp, "spectator-relayctl")
        shutil.copy(RELAYCTL_BIN, binary)
        nobody = 65534

        def as_nobody(*args, groups=()):
            return subprocess.run([binary, "--socket", relay.admin_path] + list(args),
                                  capture_output=True, text=True, timeout=30 * SLOW,
                                  user=nobody, extra_groups=list(groups))
        out = as_nobody("tap", "--seconds", "1", "srv.")
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stdout, "")
        self.assertEqual(out.stderr.strip(),
                         "spectator-relayctl: tap shows every line the relay sees: it needs "
                         "root, the relay's own user, or membership in [admin] group")
        out = as_nobody("stats")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"(?m)^received\.lines +\d+$")
        out = as_nobody("--json", "top")
        self.assertEqual((out.returncode, json.loads(out.stdout)), (0, []))

        # A member of [admin] group may tap.
        member = Tail([binary, "--socket", relay.admin_path, "tap", "srv."], user=nobody,
                      extra_groups=[group.gr_gid])
        self.addCleanup(member.kill)
        attach(relay, [member], "g:srv.sync:1")
        self.assertExit0(relay)
        code, err = member.wait()
        self.assertEqual((code, err), (0, ""))
        self.assertIn("out g:srv.sync:1", member.lines())

    def test_at_most_four_taps_at_once(self):
        relay = self.relay(self.fake("unix"))
        taps = [RawTap(relay.admin_path, "tap 0 p%d." % i) for i in range(4)]
        for t in taps:
            self.addCleanup(t.close)
            self.assertTrue(t.first["tap"])
        fifth = RawTap(relay.admin_path, "tap 0 p5.")
        self.assertEqual(fifth.first, {"error": "too many taps at once (4)"})
        self.assertEqual(fifth.read_to_end(), [])  # and closed
        out = subprocess.run(ctl_args(relay, "tap", "p5."), capture_output=True, text=True,
                             timeout=30 * SLOW)
        self.assertEqual((out.returncode, out.stdout), (1, ""))
        self.assertEqual(out.stderr.strip(), "spectator-relayctl: too many taps at once (4)")
        # The others go on. One leaves: its place is free again once the
        # relay has seen it go.
        relay.send_udp("c:p0.x:1\nc:p3.y:1")
        taps[1].close()

        def another():
            t = RawTap(relay.admin_path, "tap 0 p1.")
            if t.first.get("tap"):
                return t
            t.close()
            return None
        again = wait_until(another, message="a tap's place to be free")
        self.addCleanup(again.close)
        self.assertEqual(again.first, {"tap": True, "seconds": 0, "prefix": "p1."})
        self.assertExit0(relay)
        self.assertEqual(taps[0].read_to_end()[0], "in c:p0.x:1")
        self.assertEqual(taps[3].read_to_end()[0], "in c:p3.y:1")

    def test_a_slow_tap_client_neither_slows_the_relay_nor_grows_its_memory(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "1s"}})
        # spectator-relayctl whose output nobody reads: it stops reading
        # the relay once the pipe is full.
        ctl = Tail(ctl_args(relay, "tap", "slow."))
        self.addCleanup(ctl.kill)
        attach(relay, [ctl], "g:slow.sync:1")
        ctl.gate.clear()
        # A client that asks and never reads.
        slow = RawTap(relay.admin_path, "tap 0 slow.load.")
        self.addCleanup(slow.close)
        self.assertTrue(slow.first["tap"])

        ids = ["slow.load.%03d,k=%s" % (i, "v" * 120) for i in range(100)]
        payload = "\n".join("c:%s:1" % i for i in ids[:50]).encode()
        payload2 = "\n".join("c:%s:1" % i for i in ids[50:]).encode()
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # blocks: no loss
        self.addCleanup(sender.close)
        sent = 0
        latencies = []

        def load(datagrams):
            nonlocal sent
            for i in range(datagrams):
                sender.sendto(payload if i % 2 else payload2, relay.unix_path)
                sent += 50
                if i % 1000 == 999:
                    start = time.monotonic()
                    self.assertIn("received", relay.admin("stats"))
                    latencies.append(time.monotonic() - start)
            received(relay, sent + 1)  # and the probes, one at least
        # Warm up: the rings fill (1 MiB each) and the tables grow to the
        # 100 series; then the memory must stay where it is.
        rss_start = rss_kib(relay.proc.pid)
        load(1000)
        rss_full = rss_kib(relay.proc.pid)
        load(10000)
        rss_end = rss_kib(relay.proc.pid)
        event_bytes = (10000 * 50) * (len("in c::1\n") + len(ids[0]))
        # Two taps, each a 1 MiB ring and a 128 KiB write: already full
        # after the warm-up. 16 MiB is room for the allocator's noise, and
        # a fraction of the events of the load that a queue would hold.
        self.assertGreater(event_bytes, 64 << 20)
        self.assertLess(rss_end - rss_full, 16 << 10,
                        "RSS %d KiB at start, %d after the warm-up, %d after %d bytes of "
                        "events" % (rss_start, rss_full, rss_end, event_bytes))
        self.assertLess(rss_end - rss_start, 32 << 10)
        # The admin socket answered promptly throughout.
        self.assertEqual(len(latencies), 11)
        self.assertLess(max(latencies), 2.0 * SLOW, latencies)

        # Everything was forwarded, exactly.
        self.assertTrue(relay.admin("flush")["delivered"])
        want = {i: float(sent // 100) for i in ids}

        def sums():
            got = {k: v for k, v in up.sums("c").items() if k.startswith("slow.load.")}
            return got if got == want else None
        wait_until(sums, 30, message="every counter's sum")
        up.settle()
        out_lines = [l for l in up.snapshot() if l.startswith("c:slow.load.")]
        self.assertEqual(relay.admin("stats")["dropped"]["upstream"], 0)

        # The slow client reads at last: what the relay held for it, then
        # a "lost N" line, then what came since; held and lost add up to
        # every event, and they come as fast as it reads.
        start = time.monotonic()
        deadline = start + 5 * SLOW
        counts = {"in": 0, "out": 0, "lost": 0}
        losts = 0
        data = b""
        while counts["in"] + counts["out"] + counts["lost"] < sent + len(out_lines):
            slow.sock.settimeout(max(0.01, deadline - time.monotonic()))
            try:
                chunk = slow.sock.recv(1 << 20)
            except socket.timeout:
                break
            self.assertTrue(chunk, "the relay closed the tap")
            lines = (slow.buf + data + chunk).split(b"\n")
            slow.buf = b""
            data = lines.pop()
            for l in lines:
                word, _, rest = l.decode().partition(" ")
                if word == "lost":
                    counts["lost"] += int(rest)
                    losts += 1
                else:
                    self.assertIn(word, ("in", "out"), l)
                    self.assertTrue(rest.startswith("c:slow.load."), l)
                    counts[word] += 1
        elapsed = time.monotonic() - start
        self.assertEqual(counts["in"] + counts["out"] + counts["lost"], sent + len(out_lines),
                         "%s after %.1f s" % (counts, elapsed))
        self.assertGreater(counts["lost"], sent // 2)
        self.assertGreaterEqual(losts, 1)
        self.assertEqual(data, b"")

        # relayctl, let go, catches up (a new probe comes after what the
        # relay held for it), and says on standard error how many it lost.
        ctl.gate.set()
        attach(relay, [ctl], "g:slow.sync:2")
        self.assertExit0(relay)
        code, err = ctl.wait()
        self.assertEqual(code, 0, err)
        said = re.findall(r"(?m)^spectator-relayctl: (\d+) events lost: this client read too "
                          r"slowly$", err)
        self.assertTrue(said, err)
        self.assertEqual(len(said), len(err.splitlines()), err)
        self.assertGreater(sum(map(int, said)), sent // 2)
        lines = ctl.lines()
        self.assertTrue(all(re.match(r"(in|out) [cg]:slow\.(load|sync)", l) for l in lines))
        self.assertLess(len(lines), sent // 2)


if __name__ == "__main__":
    unittest.main()
