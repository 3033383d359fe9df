"""Exactness at volume: 8 sender processes x 100,000 lines over 1,000 series
of mixed types, over UDP and the unix socket. Counter sums equal what was
sent, every t/T/d/D line arrives exactly once, maxima and last values match."""

import collections
import json
import os
import subprocess
import sys
import unittest

from relaytest import RelayTestCase, parse_line, wait_until

SENDERS = 8
LINES = 100000
SERIES = 1000


class VolumeTest(RelayTestCase):

    def test_exact_at_volume(self):
        up = self.fake("unix", rcvbuf=8 << 20)
        relay = self.relay(up, config={"relay": {"window": "500ms"}})
        procs = []
        for i in range(SENDERS):
            transport = "udp" if i % 2 == 0 else "unix"
            target = str(relay.udp_port) if transport == "udp" else relay.unix_path
            out = os.path.join(self.tmp, "sent-%d.json" % i)
            procs.append((out, subprocess.Popen(
                [sys.executable, os.path.join(os.path.dirname(__file__), "volume_sender.py"),
                 transport, target, str(i), str(SENDERS), str(LINES), str(SERIES), out])))
        for _, p in procs:
            self.assertEqual(p.wait(300), 0)
        self.assertExit0(relay)
        self.assertIn("received_lines=%d " % (SENDERS * LINES), relay.log())

        sums, maxima, last, passthrough = collections.Counter(), {}, {}, collections.Counter()
        for out, _ in procs:
            with open(out) as f:
                sent = json.load(f)
            for k, v in sent["sums"].items():
                sums[k] += v
            for k, v in sent["maxima"].items():
                maxima[k] = max(maxima.get(k, v), v)
            last.update(sent["last"])
            passthrough.update(sent["passthrough"])

        got_sums, got_max, got_last, got_pt = collections.Counter(), {}, {}, collections.Counter()
        for line in up.snapshot():
            typ, extra, ident, value = parse_line(line)
            key = "%s:%s" % (typ, ident)
            if typ == "c":
                got_sums[key] += float(value)
            elif typ == "m":
                got_max[key] = max(got_max.get(key, float(value)), float(value))
            elif typ in "gCUA":
                got_last[key] = value
            else:
                got_pt[line] += 1

        self.assertEqual(dict(got_sums), {k: float(v) for k, v in sums.items()})
        self.assertEqual(got_max, {k: float(v) for k, v in maxima.items()})
        self.assertEqual(set(got_last), set(last))
        for k, v in last.items():
            if k.startswith("U:"):
                self.assertEqual(got_last[k], v, k)
            else:
                self.assertEqual(float(got_last[k]), float(v), k)
        self.assertEqual(got_pt, passthrough)


if __name__ == "__main__":
    unittest.main()
