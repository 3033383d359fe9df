"""The documentation names what the code has, no more and no less: stats,
self-metrics, admin commands and reject reasons in docs/admin.md, and
configuration keys in conf/relay.ini and docs/configuration.md, each
compared with what the running relay reports."""

import configparser
import os
import re
import signal
import socket
import unittest

from relaytest import RelayTestCase, parse_line, wait_until

ROOT = os.path.join(os.path.dirname(__file__), "..", "..")


def doc_table(path, heading):
    """First-column names (in backticks) of the table under a heading."""
    with open(os.path.join(ROOT, path)) as f:
        text = f.read()
    start = text.index("\n" + heading + "\n")
    names = []
    in_table = False
    for line in text[start + len(heading) + 2:].splitlines():
        if line.startswith("|"):
            in_table = True
            m = re.match(r"\|\s*`([^`]+)`", line)
            if m:
                names.append(m.group(1))
        elif in_table:
            break
    return names


def flatten(value, prefix=""):
    if isinstance(value, dict):
        for k, v in value.items():
            if prefix == "rejected.by_reason":
                yield "rejected.by_reason.<reason>"
                continue
            yield from flatten(v, prefix + "." + k if prefix else k)
    elif isinstance(value, list):
        for v in value:
            yield from flatten(v, prefix + "[]")
    else:
        yield prefix


def stopped(pid):
    with open("/proc/%d/stat" % pid) as f:
        return f.read().rsplit(")", 1)[1].split()[0] == "T"


class DocsTest(RelayTestCase):

    def test_stats_commands_and_reasons(self):
        relay = self.relay(self.fake("unix"))
        stats = relay.admin("stats")
        self.assertEqual(sorted(set(flatten(stats))),
                         sorted(doc_table("docs/admin.md", "## Stats")))
        self.assertEqual(sorted(stats["rejected"]["by_reason"]),
                         sorted(doc_table("docs/admin.md", "### Reject reasons")))
        usages = [c["usage"] for c in relay.admin("help")["commands"]]
        self.assertEqual(usages, doc_table("docs/admin.md", "## Commands"))
        self.assertExit0(relay)

    def test_configuration_keys(self):
        relay = self.relay(self.fake("unix"))
        cfg = relay.admin("config")
        keys = sorted("%s.%s" % (s, k) for s, v in cfg.items() if isinstance(v, dict) for k in v)
        self.assertExit0(relay)

        sample = configparser.ConfigParser(interpolation=None, comment_prefixes=(";", "#"))
        sample.read(os.path.join(ROOT, "conf", "relay.ini"))
        self.assertEqual(sorted("%s.%s" % (s, k) for s in sample.sections() for k in sample[s]),
                         keys)
        with open(os.path.join(ROOT, "docs", "configuration.md")) as f:
            rows = re.findall(r"^\| (\w+) \| (\w+) \|", f.read(), re.M)
        self.assertEqual(sorted("%s.%s" % r for r in rows if r[0] != "Section"), keys)

    def test_self_metrics(self):
        """Provoke every self-metric, then compare what reached SpectatorD
        with the documented table."""
        documented = set(doc_table("docs/admin.md", "## Self-metrics"))
        path = os.path.join(self.tmp, "spectatord.unix")
        relay = self.relay("unix://" + path,
                           config={"self_metrics": {"enabled": "true"},
                                   "limits": {"age_gauge_limit": "1"},
                                   "sockets": {"receive_buffer": "4KiB"}})
        # Kernel drops: stop the relay and overflow its small UDP buffer.
        relay.signal(signal.SIGSTOP)
        wait_until(lambda: stopped(relay.proc.pid), message="the relay to stop")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            for _ in range(3000):
                s.sendto(b"c:flood:1", ("127.0.0.1", relay.udp_port))
        relay.signal(signal.SIGCONT)
        # Over unix: the UDP buffer may still be full of the flood.
        relay.send_unix("A:age.one:1\nA:age.two:1\nQ:bad:1")  # a limit drop and a reject
        relay.send_unix("c:unix.line:1\nt:merged.timer:1")
        # A timer forwarded one to one: its id leaves no room for the
        # statistic tags in a 61440-byte datagram.
        relay.send_unix("t:%s:1" % ("u" * 61400))
        wait_until(lambda: relay.admin("stats")["listeners"][0]["datagrams"] > 0,
                   message="UDP traffic")
        wait_until(lambda: relay.admin("stats")["upstream"]["errors"] > 0,
                   message="an upstream error")
        up = self.fake("unix")                                 # SpectatorD appears

        def seen():
            return {parse_line(l)[2].split(",")[0] for l in up.snapshot()
                    if parse_line(l)[2].startswith("spectatorRelay.")}
        try:
            wait_until(lambda: seen() >= documented, 30, message="every documented self-metric")
        except AssertionError:
            raise AssertionError("never seen: %s" % sorted(documented - seen()))
        self.assertExit0(relay)
        self.assertEqual(seen(), documented)
        tags = {parse_line(l)[2] for l in up.snapshot()}
        self.assertIn("spectatorRelay.linesDropped,reason=age-gauge-limit", tags)
        self.assertIn("spectatorRelay.linesReceived,transport=unix", tags)


if __name__ == "__main__":
    unittest.main()
