"""Socket activation as spectator-relay.socket sets it up, without systemd.

This test plays systemd's part: it opens the sockets the unit lists (on a
free port and in a temporary directory instead of 1235 and /run, with the
unit's socket options), hands them to the real relay the way systemd does
(descriptors from 3 on, LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), and keeps
them open across a restart. It checks what docs/operations.md promises:

- the relay adopts every socket of the unit instead of binding its own;
- datagrams sent before the relay starts, and while it restarts, wait in the
  kernel and are delivered;
- the relay leaves the unit's socket file in place when it stops.
"""

import os
import signal
import socket
import stat
import subprocess
import sys
import unittest

from opsutil import RELAY_BIN, SOURCE_DIR, Unit

sys.path.insert(0, os.path.join(SOURCE_DIR, "tests", "blackbox"))
from relaytest import ACTIVATE, RelayTestCase, SLOW, wait_until  # noqa: E402

SOCKET_UNIT = os.path.join(SOURCE_DIR, "systemd", "spectator-relay.socket")


class Activated:
    """The unit's sockets, opened as systemd would, and relays started on them."""

    def __init__(self, tmp):
        unit = Unit.read(SOCKET_UNIT)
        self.tmp = tmp
        self.mode = int(unit.value("Socket", "SocketMode"), 8)
        self.name = unit.value("Socket", "FileDescriptorName")
        self.v6only = unit.value("Socket", "BindIPv6Only") == "ipv6-only"
        self.socks, self.urls, self.send_to = [], [], []
        for addr in unit.values("Socket", "ListenDatagram"):
            if addr.startswith("/"):
                path = os.path.join(tmp, os.path.basename(addr))
                s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
                s.bind(path)
                os.chmod(path, self.mode)
                self.unix_path = path
                self.urls.append("unix://" + path)
                self.send_to.append((socket.AF_UNIX, path))
            else:
                host, _, _ = addr.rpartition(":")
                family = socket.AF_INET6 if host.startswith("[") else socket.AF_INET
                host = host.strip("[]")
                s = socket.socket(family, socket.SOCK_DGRAM)
                if family == socket.AF_INET6 and self.v6only:
                    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
                s.bind((host, 0))  # a free port rather than the unit's
                port = s.getsockname()[1]
                self.urls.append("udp://%s:%d" % ("[%s]" % host if family == socket.AF_INET6
                                                  else host, port))
                self.send_to.append((family, (host, port)))
            self.socks.append(s)
        self.log_path = os.path.join(tmp, "relay.stderr")

    def send(self, tag):
        """One counter line to every socket; returns the ids sent."""
        ids = []
        for i, (family, addr) in enumerate(self.send_to):
            ident = "ops.activation,at=%s,via=%d" % (tag, i)
            with socket.socket(family, socket.SOCK_DGRAM) as s:
                s.sendto(("c:%s:1" % ident).encode(), addr)
            ids.append(ident)
        return ids

    def start(self, config_path):
        fds = [s.fileno() for s in self.socks]
        names = ":".join([self.name] * len(fds))
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-c", ACTIVATE, ",".join(map(str, fds)), names, RELAY_BIN,
             "--config", config_path],
            pass_fds=fds, stdout=subprocess.DEVNULL, stderr=self.log)
        return self.proc

    def read_log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            code = self.proc.wait(20 * SLOW)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
                self.proc.wait()
            self.log.close()
        return code

    def close(self):
        if getattr(self, "proc", None) and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for s in self.socks:
            s.close()


class ActivationTest(RelayTestCase):

    def write_config(self, act, upstream):
        path = os.path.join(self.tmp, "relay.ini")
        with open(path, "w") as f:
            f.write("[relay]\nlisten = %s\nupstream = %s\nwindow = 200ms\n\n"
                    "[admin]\nsocket = %s\n\n[self_metrics]\nenabled = false\n"
                    % (" ".join(act.urls), upstream.url, os.path.join(self.tmp, "admin.sock")))
        return path

    def test_sockets_are_adopted_and_keep_datagrams_across_a_restart(self):
        up = self.fake("unix")
        act = Activated(self.tmp)
        self._owned.append(act.close)
        config = self.write_config(act, up)
        n = len(act.urls)
        self.assertEqual(n, 3, act.urls)

        # Sent before the relay exists: only the kernel holds these.
        before = act.send("before-start")
        act.start(config)
        wait_until(lambda: act.proc.poll() is not None or "event=ready" in act.read_log(),
                   10, message="relay readiness")
        self.assertIsNone(act.proc.poll(), act.read_log())
        log = act.read_log()
        self.assertEqual(log.count("source=systemd"), n, log)
        self.assertNotIn("source=bound", log)
        self.assertNotIn("event=unused_socket", log)
        wait_until(lambda: set(before) <= set(up.sums()), message="lines queued before start")
        self.assertEqual(act.stop(), 0, act.read_log())

        # The relay is gone; systemd (this test) still holds the sockets.
        st = os.stat(act.unix_path)
        self.assertTrue(stat.S_ISSOCK(st.st_mode), "the relay removed the unit's socket file")
        self.assertEqual(stat.S_IMODE(st.st_mode), act.mode)
        during = act.send("during-restart")

        act.start(config)
        wait_until(lambda: act.proc.poll() is not None or act.read_log().count("event=ready") == 2,
                   10, message="second relay readiness")
        self.assertIsNone(act.proc.poll(), act.read_log())
        wait_until(lambda: set(during) <= set(up.sums()), message="lines sent during the restart")
        self.assertEqual(act.stop(), 0, act.read_log())

        sums = up.sums()
        for ident in before + during:
            self.assertEqual(sums[ident], 1.0, ident)


if __name__ == "__main__":
    unittest.main()
