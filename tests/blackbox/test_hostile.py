"""Hostile input through the real sockets: random bytes, maximum and
oversized datagrams, 64 KiB lines, NUL bytes, invalid UTF-8, 10,000 tags,
a million empty lines. The relay stays up, counts every refusal under its
reason, and the good lines in the same datagrams still arrive. It also never
answers a UDP sender."""

import os
import random
import socket
import unittest

from relaytest import RelayTestCase, parse_line, wait_until

UNIX_MAX = 65535   # the largest unix datagram SpectatorD takes safely
SPECTATORD_READ = 65536   # where SpectatorD's read, and so the relay's, cuts a longer one
UDP4_MAX = 65507   # the largest UDP payload over IPv4


class Battery:
    """Sends crafted datagrams through one transport and remembers what must
    come out: counter sums of good lines, and refusals by reason."""

    def __init__(self, relay, transport, port6=None):
        self.relay = relay
        self.transport = transport
        self.port6 = port6
        self.sums = {}
        self.reasons = {}
        self.lines = 0
        self.datagrams = 0
        self.tag = transport

    def send(self, payload):
        if self.transport == "udp":
            self.relay.send_udp(payload)
        elif self.transport == "udp6":
            self.relay.send_udp(payload, family=socket.AF_INET6, port=self.port6)
        else:
            self.relay.send_unix(payload)
        self.datagrams += 1

    def good(self, name):
        self.sums["%s.%s" % (name, self.tag)] = self.sums.get("%s.%s" % (name, self.tag), 0) + 1
        self.lines += 1
        return b"c:%s.%s:1" % (name.encode(), self.tag.encode())

    def refused(self, reason, n=1):
        self.reasons[reason] = self.reasons.get(reason, 0) + n
        self.lines += n


class HostileTest(RelayTestCase):

    def run_battery(self, b, max_payload):
        rnd = random.Random(20261125)
        # Random binary lines, each followed by a good line. NUL bytes would
        # cut the datagram, so the random part has none (they come below);
        # its first byte names no type, so each is exactly one bad-type (the
        # fuzzer explores the parser's depths; this is about the sockets).
        types = set(b"AcCdDgmtTUX\n")
        for i in range(300):
            first = rnd.choice([c for c in range(1, 256) if c not in types])
            junk = bytes([first]) + bytes(rnd.randrange(1, 256) for _ in range(rnd.randrange(0, 600)))
            b.send(junk.replace(b"\n", b" ") + b"\n" + b.good("after.random"))
            b.refused("bad-type")
        # A maximum-size datagram of good lines.
        lines = []
        size = 0
        while True:
            line = b.good("max.size")
            if size + len(line) + 1 > max_payload:
                b.sums["max.size." + b.tag] -= 1
                b.lines -= 1
                break
            lines.append(line)
            size += len(line) + 1
        payload = b"\n".join(lines)
        payload += b"\n" * (max_payload - len(payload))
        self.assertEqual(len(payload), max_payload)
        b.send(payload)
        # A 64 KiB line (too long for any upstream datagram) and a good one.
        long_line = b"c:" + b"n" * (max_payload - 600) + b":1"
        b.refused("too-long")
        b.send(long_line + b"\n" + b.good("after.long"))
        # NUL: the rest of the datagram is ignored, as spectatord does.
        b.send(b.good("before.nul") + b"\nc:cut.he\x00re:1\nc:never:1")
        b.refused("missing-value")       # "c:cut.he" is what is left of that line
        # Invalid UTF-8 and control bytes are replaced in names, not refused.
        b.send(b"c:raw\xff\xfe." + b.tag.encode() + b":1\nc:caf\xc3\xa9." + b.tag.encode() + b":1")
        b.lines += 2
        b.sums["raw__." + b.tag] = 1
        b.sums["caf__." + b.tag] = 1
        # 10,000 distinct tags on one line: accepted, sorted, forwarded.
        keys = ["%c%c%c" % (97 + k // 676, 97 + k // 26 % 26, 97 + k % 26) for k in range(10000)]
        rnd.shuffle(keys)
        many = "c:many.tags.%s,%s:1" % (b.tag, ",".join("%s=v" % k for k in keys))
        b.send(many.encode())
        b.lines += 1
        # A million empty lines, with a good line at the end of each datagram.
        for _ in range(16):
            tail = b.good("after.empty")
            b.send(b"\n" * (max_payload - len(tail)) + tail)
        # Crafted refusals, one of each kind that a client could send.
        crafted = [(b"Q:bad:1", "bad-type"), (b"c:neg:-1", "negative"),
                   (b"c:hex:0x10", "hex"), (b"c:tags,,k=v:1", "empty-tag-segment"),
                   (b"g:inf:inf", "non-finite"), (b"c:n,name=x:1", "reserved-tag-key")]
        for line, reason in crafted:
            b.send(line + b"\n" + b.good("after.crafted"))
            b.refused(reason)

    def check(self, relay, up, batteries):
        want_lines = sum(b.lines for b in batteries)
        datagrams = sum(b.datagrams for b in batteries)
        stats = wait_until(lambda: (lambda s: s if s["received"]["datagrams"] == datagrams else None)(
            relay.admin("stats")), 60, message="every datagram read")
        relay.admin("flush")
        self.assertExit0(relay)
        self.assertEqual(stats["received"]["lines"], want_lines)
        want = {}
        for b in batteries:
            for reason, n in b.reasons.items():
                want[reason] = want.get(reason, 0) + n
        got = {r: n for r, n in stats["rejected"]["by_reason"].items() if n}
        self.assertEqual(got, want)
        self.assertEqual(stats["received"]["nul_cut"], len(batteries))
        sums = up.sums("c")
        for b in batteries:
            for name, n in b.sums.items():
                self.assertEqual(sums.get(name), n, name)
            many = [l for l in up.snapshot() if l.startswith("c:many.tags.%s," % b.tag)]
            self.assertEqual(len(many), 1)
            tags = parse_line(many[0])[2].split(",")[1:]
            self.assertEqual(len(tags), 10000)
            self.assertEqual(tags, sorted(tags))
        self.assertNotIn("never", " ".join(sums))

    def test_every_listener_survives_and_counts(self):
        up = self.fake("unix", rcvbuf=16 << 20)
        relay = self.relay(up, config={"relay": {"window": "200ms"}},
                           listen="udp://127.0.0.1:{udp} udp://[::1]:{udp6} unix://%s"
                           % os.path.join(self.tmp, "relay.unix"))
        port6 = relay.udp6_port
        batteries = []
        for transport, limit in (("udp", UDP4_MAX), ("udp6", UDP4_MAX), ("unix", UNIX_MAX)):
            b = Battery(relay, transport, port6)
            self.run_battery(b, limit)
            batteries.append(b)
            wait_until(lambda: relay.admin("stats")["received"]["datagrams"] ==
                       sum(x.datagrams for x in batteries), 60, message="a battery read")
        self.check(relay, up, batteries)

    def send_oversized(self, relay, payload):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
            s.sendto(payload, relay.unix_path)
        return wait_until(lambda: (lambda s: s if s["received"]["datagrams"] == 1 else None)(
            relay.admin("stats")), message="the oversized datagram")

    def test_oversized_unix_datagram_is_counted_as_truncated(self):
        up = self.fake("unix")
        relay = self.relay(up)
        lines = [b"c:whole.%d:1" % i for i in range(8000)]
        payload = b"\n".join(lines)
        self.assertGreater(len(payload), SPECTATORD_READ + 1000)
        # Make the cut fall inside a line: pad the front until it does.
        while payload[SPECTATORD_READ - 1:SPECTATORD_READ + 1].count(b"\n"):
            payload = b"\n" + payload
        stats = self.send_oversized(relay, payload)
        self.assertEqual(stats["received"]["truncated"], 1)
        self.assertEqual(stats["rejected"]["by_reason"]["truncated"], 1)
        # Lines that ended before the cut; the padding's empty lines are no lines.
        whole = len([l for l in payload[:SPECTATORD_READ].split(b"\n")[:-1] if l])
        self.assertEqual(stats["merged"]["lines_in"], whole)
        self.assertEqual(stats["rejected"]["total"], 1)
        relay.admin("flush")
        self.assertExit0(relay)
        self.assertEqual(len(up.sums("c")), whole)

    @staticmethod
    def counters_ending(end, size=SPECTATORD_READ):
        """size bytes of whole counter lines, the last one ending with end."""
        body = b"c:k:1\n" * 10920
        return body + b"c:" + b"k" * (size - len(body) - 2 - len(end)) + end

    def test_lines_spectatord_would_read_whole_are_kept(self):
        # 65536 bytes: one more than SpectatorD takes safely, but it reads
        # every line; so does the relay, and it counts the datagram.
        up = self.fake("unix")
        relay = self.relay(up)
        payload = self.counters_ending(b":1\ng:z:7\n")
        stats = self.send_oversized(relay, payload)
        self.assertEqual(stats["received"]["truncated"], 1)
        self.assertEqual(stats["rejected"]["total"], 0)
        self.assertEqual(stats["merged"]["lines_in"], 10922)
        relay.admin("flush")
        self.assertExit0(relay)
        self.assertEqual(up.sums("c")["k"], 10920)
        self.assertEqual(up.last("g")["z"][0], "7")

    def cut_at(self, end, tail, refused):
        up = self.fake("unix")
        relay = self.relay(up)
        stats = self.send_oversized(relay, self.counters_ending(end) + tail)
        self.assertEqual(stats["received"]["truncated"], 1)
        self.assertEqual(stats["rejected"]["by_reason"]["truncated"], refused)
        self.assertEqual(stats["rejected"]["total"], refused)
        self.assertEqual(stats["merged"]["lines_in"], 10921)
        relay.admin("flush")
        self.assertExit0(relay)
        self.assertEqual(up.sums("c")["k"], 10920)
        self.assertNotIn("after", up.sums("c"))

    def test_a_line_started_at_the_cut_is_refused(self):
        # Every line before the cut is whole; the next one, started right at
        # the cut, is refused.
        self.cut_at(b":1\n", b"c:after:1\n", 1)

    def test_a_line_the_cut_ends_is_whole(self):
        # The cut falls right before a '\n': the line it ends is whole, as
        # SpectatorD reads it; what follows is past the read, as it would be
        # for SpectatorD.
        self.cut_at(b":1", b"\nc:after:1\n", 0)

    def test_udp_senders_get_nothing_back(self):
        up = self.fake("unix")
        relay = self.relay(up)
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for payload in (b"c:ok:1", b"Q:bad:1", b"\x00\xff" * 100, b"", b"\n" * 1000,
                            b"stats", b"help\n"):
                s.sendto(payload, ("127.0.0.1", relay.udp_port))
            wait_until(lambda: relay.admin("stats")["received"]["datagrams"] == 7,
                       message="datagrams read")
            relay.admin("flush")
            s.setblocking(False)
            with self.assertRaises(BlockingIOError):
                s.recv(65536)
        self.assertExit0(relay)


class SecurityTest(RelayTestCase):

    def test_non_loopback_listener_logs_a_warning(self):
        relay = self.relay(self.fake("unix"), listen="udp://0.0.0.0:{udp}")
        self.assertRegex(relay.log(), r"event=listen_not_loopback listener=udp://0\.0\.0\.0:\d+")
        self.assertExit0(relay)

    def test_loopback_listeners_log_no_warning(self):
        relay = self.relay(self.fake("unix"))
        self.assertNotIn("listen_not_loopback", relay.log())
        self.assertExit0(relay)

    def test_no_other_process_can_share_the_udp_ports(self):
        """libuv turns SO_REUSEADDR on when it wraps a socket; the relay
        turns it off, so that nobody can bind the port beside it and take
        the clients' datagrams."""
        relay = self.relay(self.fake("unix"), listen="udp://127.0.0.1:{udp} udp://[::1]:{udp6}")
        port4, port6 = relay.udp_port, relay.udp6_port
        for family, host, port in ((socket.AF_INET, "127.0.0.1", port4),
                                   (socket.AF_INET6, "::1", port6)):
            with socket.socket(family, socket.SOCK_DGRAM) as thief:
                thief.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                with self.assertRaises(OSError, msg="bound beside the relay on %s" % host):
                    thief.bind((host, port))
        self.assertExit0(relay)

    def test_unix_socket_mode_and_group(self):
        import grp
        group = grp.getgrnam("daemon")
        relay = self.relay(self.fake("unix"),
                           config={"sockets": {"unix_mode": "0620", "unix_group": "daemon"}})
        st = os.stat(relay.unix_path)
        self.assertEqual(st.st_mode & 0o777, 0o620)
        self.assertEqual(st.st_gid, group.gr_gid)
        self.assertExit0(relay)

    def test_unknown_group_is_a_startup_error(self):
        relay = self.relay(self.fake("unix"), start=False,
                           config={"sockets": {"unix_group": "no-such-group-here"}})
        relay.start(wait=False)
        self.assertEqual(relay.proc.wait(20), 1)
        self.assertIn("unknown group no-such-group-here", relay.log())
        relay.kill()


if __name__ == "__main__":
    unittest.main()
