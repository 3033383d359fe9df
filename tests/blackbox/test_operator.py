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
    line in a thread; clearing .gate stops the reading, so that the pipe
    fills and relayctl stops reading the relay, as a slow client would."""

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
    relay's first line (in .first), then events, read only when the test
    says: until then it is a client that stopped reading."""

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

    def test_what_tap_raw_captures_replays_to_what_the_relay_forwarded(self):
        """One window holds everything (a long one, closed by a flush), so
        the replay of the capture is exactly what the relay sent for those
        ids."""
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"}})
        capture = Tail(ctl_args(relay, "tap", "--raw", "r."))
        self.addCleanup(capture.kill)
        attach(relay, [capture], "g:r.sync:1")
        flushed = relay.admin("stats")["windows"]["flushed"]
        lines = REPLAY_IN.splitlines()
        before = relay.admin("stats")["received"]["lines"]
        relay.send_udp("c:other:1\n" + "\n".join(lines[:10]))
        received(relay, before + 1 + len([l for l in lines[:10] if l]))  # in order
        relay.send_unix("\n".join(lines[10:]) + "\nt:other:1")
        received(relay, before + 2 + len([l for l in lines if l]))  # before the flush
        self.assertTrue(relay.admin("flush")["delivered"])
        self.assertEqual(relay.admin("stats")["windows"]["flushed"], flushed + 1,
                         "the lines were split over two windows")
        wait_until(lambda: any("r.size,statistic=max" in l for l in up.snapshot()),
                   message="the window's lines")
        rejected = relay.admin("stats")["rejected"]["by_reason"]
        self.assertExit0(relay)
        code, err = capture.wait()
        self.assertEqual((code, err), (0, ""))

        raw = capture.lines()
        probes = len(raw) - len([l for l in lines if l])
        self.assertGreater(probes, 0)
        self.assertEqual(raw, ["g:r.sync:1"] * probes + [l for l in lines if l])
        path = os.path.join(self.tmp, "lines.txt")
        with open(path, "w") as f:
            f.write("\n".join(raw) + "\n")
        run = subprocess.run([RELAY_BIN, "--config", relay.config_path, "--replay", path],
                             capture_output=True, text=True, timeout=60 * SLOW)
        self.assertEqual(run.returncode, 0, run.stderr)
        forwarded = [l for l in up.snapshot() if parse_line(l)[2].startswith("r.")]
        self.assertEqual(run.stdout.splitlines(), forwarded)
        self.assertEqual(forwarded[:3], REPLAY_OUT.splitlines()[:2] + ["g:r.sync:1"])
        self.assertEqual(run.stderr.splitlines(),
                         ["rejected %s %d" % (k, v) for k, v in rejected.items() if v] +
                         ["replayed %d lines: 3 refused, %d lines forwarded"
                          % (len(raw), len(forwarded))])

    def test_a_tap_that_ends_still_says_what_it_lost(self):
        """A client behind when its SECONDS are up still gets what the
        relay held for it and the count of what it lost, then the end."""
        up = self.fake("unix")
        relay = self.relay(up)
        seconds = int(2 * SLOW)
        begun = time.monotonic()
        slow = RawTap(relay.admin_path, "tap %d end." % seconds)
        self.addCleanup(slow.close)
        self.assertEqual(slow.first["seconds"], seconds)
        ids = ["end.%02d,k=%s" % (i, "v" * 120) for i in range(50)]
        payload = "\n".join("c:%s:1" % i for i in ids).encode()
        sender = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sender.close)
        for _ in range(400):  # 20,000 events of 150 bytes: more than the ring holds
            sender.sendto(payload, relay.unix_path)
        received(relay, 400 * 50)
        self.assertLess(time.monotonic() - begun, seconds - 0.5,
                        "the load took longer than the tap lasts")
        # Its time passes before it reads (the end is the relay's to
        # enforce, so only waiting shows it).
        wait_until(lambda: time.monotonic() > begun + seconds + 0.5, seconds + 5,
                   message="the tap's time to pass")
        events = slow.read_to_end()
        lost = sum(int(l.split()[1]) for l in events if l.startswith("lost "))
        kept = [l for l in events if not l.startswith("lost ")]
        self.assertGreater(lost, 0, "%d events, no lost line" % len(kept))
        self.assertTrue(all(re.match(r"(in|out) c:end\.", l) for l in kept))
        self.assertExit0(relay)
        # Every event is there or counted: the lines in, and those the
        # windows sent out, all before the tap's time was up.
        out = [l for l in up.snapshot() if l.startswith("c:end.")]
        self.assertEqual(sum(float(parse_line(l)[3]) for l in out), 400 * 50)
        self.assertEqual(len(kept) + lost, 400 * 50 + len(out))


class TopTest(RelayTestCase):

    def check_rate(self, entry, started, ready, asked, answered):
        """lines_per_second is lines over the span since the window before
        the open one opened: here, since the relay started (one window at
        most has closed)."""
        longest = answered - started + 0.05
        shortest = max(asked - ready - 0.05, 0.001)
        self.assertGreaterEqual(entry["lines_per_second"], entry["lines"] / longest - 0.1)
        self.assertLessEqual(entry["lines_per_second"], entry["lines"] / shortest + 0.1)

    def test_top_names_a_flooding_id_first(self):
        started = time.monotonic()
        relay = self.relay(self.fake("unix"), config={"relay": {"window": "5s"}})
        ready = time.monotonic()
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(sock.close)
        sent = 0

        def send(lines):
            nonlocal sent
            sock.sendto("\n".join(lines).encode(), relay.unix_path)
            sent += len(lines)
        # An X id sent first keeps its place in the sketch, exactly.
        for _ in range(6):
            send(["X,1700000000000:top.sampled:1"] * 100)
        # A crowd: 300 merged series, 100 X ids (more than the sketch's 64),
        # a merged timer, and one counter flooding among them.
        for i in range(100):
            send(["c:top.many.%d,k=v:1" % (3 * i + j) for j in range(3)] +
                 ["X,1700000000000:top.x.%d:1" % i] +
                 ["c:top.flood,b=2,a=1:1"] * 20 +
                 ["t:top.latency:0.5"] * 3)
        received(relay, sent)
        asked = time.monotonic()
        top = relay.admin("top")
        answered = time.monotonic()
        self.assertLessEqual(relay.admin("stats")["windows"]["flushed"], 1)

        self.assertEqual(len(top), 20)  # the default
        for e in top:
            self.assertEqual(set(e), {"id", "type", "lines", "lines_per_second", "merges"})
        self.assertEqual({k: top[0][k] for k in ("id", "type", "lines", "merges")},
                         {"id": "top.flood,a=1,b=2", "type": "c", "lines": 2000,
                          "merges": True})
        self.assertEqual({k: top[1][k] for k in ("id", "type", "lines", "merges")},
                         {"id": "top.sampled", "type": "X", "lines": 600, "merges": False})
        self.assertEqual({k: top[2][k] for k in ("id", "type", "lines", "merges")},
                         {"id": "top.latency", "type": "t", "lines": 300, "merges": True})
        for e in top[:3]:
            self.check_rate(e, started, ready, asked, answered)
        self.assertEqual([e["lines"] for e in top], sorted((e["lines"] for e in top),
                                                          reverse=True))
        # The crowd: merged counters of one line, and X ids whose counts the
        # sketch may have raised (upper bounds), never lowered.
        for e in top[3:]:
            if e["type"] == "c":
                self.assertEqual((e["lines"], e["merges"]), (1, True), e)
                self.assertRegex(e["id"], r"^top\.many\.\d+,k=v$")
            else:
                self.assertEqual((e["type"], e["merges"]), ("X", False), e)
                self.assertRegex(e["id"], r"^top\.x\.\d+$")
                self.assertGreaterEqual(e["lines"], 1)
        three = relay.admin("top 3")
        self.assertEqual([(e["id"], e["lines"]) for e in three],
                         [(e["id"], e["lines"]) for e in top[:3]])
        self.assertEqual(len(relay.admin("top 1000")), 300 + 1 + 1 + 1 + 63)
        for bad in ("0", "1001", "x", "-1", "2 3"):
            self.assertEqual(relay.admin("top " + bad),
                             {"error": "usage: top [N], N from 1 to 1000"}, bad)

        # spectator-relayctl: a table for people, the list for scripts.
        out = subprocess.run(ctl_args(relay, "top", "3"), capture_output=True, text=True,
                             timeout=30 * SLOW)
        self.assertEqual(out.returncode, 0, out.stderr)
        rows = out.stdout.splitlines()
        self.assertRegex(rows[0], r"^TYPE +LINES/S +LINES +MERGES +ID$")
        self.assertEqual(len(rows), 4)
        self.assertRegex(rows[1], r"^c +[\d.]+ +2000 +true +top\.flood,a=1,b=2$")
        self.assertRegex(rows[2], r"^X +[\d.]+ +600 +false +top\.sampled$")
        self.assertRegex(rows[3], r"^t +[\d.]+ +300 +true +top\.latency$")
        out = subprocess.run(ctl_args(relay, "--json", "top"), capture_output=True, text=True,
                             timeout=30 * SLOW)
        self.assertEqual(out.returncode, 0, out.stderr)
        listed = json.loads(out.stdout)
        self.assertEqual(len(listed), 20)
        self.assertEqual(listed[0]["id"], "top.flood,a=1,b=2")
        out = subprocess.run(ctl_args(relay, "top", "0"), capture_output=True, text=True,
                             timeout=30 * SLOW)
        self.assertEqual((out.returncode, out.stderr.strip()),
                         (1, "spectator-relayctl: usage: top [N], N from 1 to 1000"))
        self.assertExit0(relay)

    def test_an_unmerged_timer_flooding_is_first_and_does_not_merge(self):
        relay = self.relay(self.fake("unix"), config={"relay": {"window": "5s",
                                                                "merge_timers": "false"}})
        lines = []
        for i in range(50):
            lines += ["t:top.slow,op=read:0.25"] * 10 + ["c:top.other.%d:1" % i,
                                                          "T:top.pct:1"]
        relay.send_unix("\n".join(lines))
        received(relay, len(lines))
        top = relay.admin("top 3")
        self.assertEqual([{k: e[k] for k in ("id", "type", "lines", "merges")} for e in top[:2]],
                         [{"id": "top.slow,op=read", "type": "t", "lines": 500, "merges": False},
                          {"id": "top.pct", "type": "T", "lines": 50, "merges": False}])
        self.assertEqual((top[2]["type"], top[2]["lines"], top[2]["merges"]), ("c", 1, True))
        self.assertExit0(relay)


# Lines as a client's capture holds them, and what one window makes of them
# with the default configuration: what is forwarded as it came first (X),
# then the window's series, scalars before timers, each in the order it
# first came; canonical ids (tags sorted); the refused lines counted.
REPLAY_IN = """c:r.count,b=2,a=1:1
X,1700000000000:r.sampled,z=1,a=2:5

c:r.count,a=1,b=2:2.5
m:r.max:3
Q:r.bad:1
m:r.max:9
g,60:r.gauge:1
g:r.gauge:2
t:r.latency:1
t:r.latency:2
t:r.latency:3
t:r.latency:4
t:r.latency:5
t:r.once:0.5
c:r.neg:-1
c:r.hex:0x1
A:r.age,b=1,a=2:12
d:r.size:10
d:r.size:20
d:r.size:30
d:r.size:40
d:r.size:50
d:r.size:60
X,1700000000001:r.sampled,a=2,z=1:6
C:r.mono:5
C:r.mono:7
U:r.u:18446744073709551615
c:r.count,a=1,b=2:0.5
"""
REPLAY_OUT = """X,1700000000000:r.sampled,a=2,z=1:5
X,1700000000001:r.sampled,a=2,z=1:6
c:r.count,a=1,b=2:4
m:r.max:9
g,60:r.gauge:2
A:r.age,a=2,b=1:12
C:r.mono:7
U:r.u:18446744073709551615
c:r.latency,statistic=count:5
c:r.latency,statistic=totalTime:15
c:r.latency,statistic=totalOfSquares:55
m:r.latency,statistic=max:5
t:r.once:0.5
c:r.size,statistic=count:6
c:r.size,statistic=totalAmount:210
c:r.size,statistic=totalOfSquares:9100
m:r.size,statistic=max:60
"""
REPLAY_ERR = """rejected bad-type 1
rejected hex 1
rejected negative 1
replayed 28 lines: 3 refused, 17 lines forwarded
"""


class ReplayTest(RelayTestCase):

    def hold_the_relays_sockets(self, relay):
        """Binds the UDP port and the unix paths of relay's configuration,
        as another process would; returns the unix socket."""
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", relay.udp_port))
        self.addCleanup(udp.close)
        unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        unix.bind(relay.unix_path)
        self.addCleanup(unix.close)
        admin = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        admin.bind(relay.admin_path)
        admin.listen(1)
        self.addCleanup(admin.close)
        # The relay itself cannot start beside them.
        run = subprocess.run([RELAY_BIN, "--config", relay.config_path], capture_output=True,
                             text=True, timeout=30 * SLOW)
        self.assertEqual(run.returncode, 1)
        self.assertIn("Address already in use", run.stderr)
        return unix

    def replay(self, relay, source, stdin=None):
        return subprocess.run([RELAY_BIN, "--config", relay.config_path, "--replay", source],
                              input=stdin, capture_output=True, text=True, timeout=60 * SLOW)

    def test_replay_prints_merged_canonical_lines_beside_a_holder_of_its_port(self):
        relay = Relay(self.tmp, "unix://" + os.path.join(self.tmp, "nobody.unix"), start=False)
        unix = self.hold_the_relays_sockets(relay)
        path = os.path.join(self.tmp, "capture.txt")
        with open(path, "w") as f:
            f.write(REPLAY_IN)
        for source, stdin in ((path, None), ("-", REPLAY_IN)):
            run = self.replay(relay, source, stdin)
            self.assertEqual(run.returncode, 0, run.stderr)
            self.assertEqual(run.stdout, REPLAY_OUT, source)
            self.assertEqual(run.stderr, REPLAY_ERR, source)
        # The sockets are still the holder's: nothing was bound or removed.
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.addCleanup(probe.close)
        probe.sendto(b"still mine", relay.unix_path)
        unix.settimeout(5)
        self.assertEqual(unix.recv(100), b"still mine")
        # Nothing to read is no error; a file that cannot be read is.
        run = self.replay(relay, os.devnull)
        self.assertEqual((run.returncode, run.stdout, run.stderr),
                         (0, "", "replayed 0 lines: 0 refused, 0 lines forwarded\n"))
        missing = os.path.join(self.tmp, "missing.txt")
        run = self.replay(relay, missing)
        self.assertEqual((run.returncode, run.stdout), (1, ""))
        self.assertEqual(run.stderr, "spectator-relay: %s: No such file or directory\n" % missing)

    def test_replay_applies_the_limits_and_merge_timers_of_its_config(self):
        relay = Relay(self.tmp, "unix://" + os.path.join(self.tmp, "nobody.unix"), start=False,
                      config={"relay": {"merge_timers": "false"},
                              "limits": {"max_series": "3", "max_series_per_name": "1",
                                         "max_datagram": "512"}})
        self.hold_the_relays_sockets(relay)
        lines = [
            "c:l.a,k=1:1",
            "t:l.timer:1",                  # with merge_timers off: as it came, in order
            "c:l.a,k=2:1",                  # a second series of l.a: name-limit
            "c:l.a,k=1:2",                  # the first: merged
            "d:l.dist:3",
            "m:l.b:1",
            "g:l.c:1",                      # the third series
            "g:l.d:1",                      # a fourth: series-limit
            "t:l.timer:2",
            "c:l.%s:1" % ("x" * 600),       # longer than max_datagram: too-long
            "X,1:l.x:1",
            "g:l.c:2",
        ]
        run = self.replay(relay, "-", "\n".join(lines) + "\n")
        self.assertEqual(run.returncode, 0, run.stderr)
        self.assertEqual(run.stdout.splitlines(), [
            "t:l.timer:1", "d:l.dist:3", "t:l.timer:2", "X,1:l.x:1",
            "c:l.a,k=1:3", "m:l.b:1", "g:l.c:2",
        ])
        self.assertEqual(run.stderr.splitlines(), [
            "rejected too-long 1",
            "rejected series-limit 1",
            "rejected name-limit 1",
            "replayed 12 lines: 3 refused, 7 lines forwarded",
        ])


if __name__ == "__main__":
    unittest.main()
