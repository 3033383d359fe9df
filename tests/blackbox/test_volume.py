"""Exactness at volume: 8 sender processes x 100,000 lines over 1,000 series
of mixed types, over UDP and the unix socket. Counter sums equal what was
sent, maxima and last values match, and what SpectatorD would publish for
the timers and distribution summaries is what it would have published from
the lines sent."""

import collections
import json
import os
import subprocess
import sys
import unittest

from relaytest import RelayTestCase, parse_line, wait_until
from spectatord_model import SpectatordModel, same_publish

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

        got_sums, got_max, got_last, got_dist = collections.Counter(), {}, {}, []
        for line in up.snapshot():
            typ, extra, ident, value = parse_line(line)
            key = "%s:%s" % (typ, ident)
            if ident.startswith(("vol.t", "vol.d")):
                got_dist.append(line)   # statistics or samples of t T d D
            elif typ == "c":
                got_sums[key] += float(value)
            elif typ == "m":
                got_max[key] = max(got_max.get(key, float(value)), float(value))
            elif typ in "gCUA":
                got_last[key] = value

        self.assertEqual(dict(got_sums), {k: float(v) for k, v in sums.items()})
        self.assertEqual(got_max, {k: float(v) for k, v in maxima.items()})
        self.assertEqual(set(got_last), set(last))
        for k, v in last.items():
            if k.startswith("U:"):
                self.assertEqual(got_last[k], v, k)
            else:
                self.assertEqual(float(got_last[k]), float(v), k)
        same_publish(self, SpectatordModel().feed(passthrough.elements()).publish(),
                     SpectatordModel().feed(got_dist).publish())
        # Merged where that is shorter. The samples spread over many buckets,
        # so many windows are shorter as samples: no large reduction here.
        self.assertLess(len(got_dist), sum(passthrough.values()) * 0.9)


if __name__ == "__main__":
    unittest.main()
