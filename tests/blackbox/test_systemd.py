"""The relay under systemd's protocol, with the test playing systemd:
NOTIFY_SOCKET messages (READY, STATUS, RELOADING, WATCHDOG, STOPPING), and a
restart on descriptors passed with LISTEN_FDS that loses nothing while a
sender keeps sending."""

import os
import signal
import socket
import sys
import threading
import time
import unittest

from relaytest import SLOW, Relay, RelayTestCase, activate_wrapper, wait_until

class Notify:
    """A datagram socket standing in for systemd's NOTIFY_SOCKET."""

    def __init__(self, path):
        self.path = path
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.messages = []

    def poll(self):
        while True:
            try:
                self.messages.append(self.sock.recv(4096).decode())
            except socket.timeout:
                return self.messages

    def found(self, prefix, after=0):
        """One more than the index of the first message from `after` on
        with a line starting with prefix, or None."""
        for i, m in enumerate(self.poll()[after:], after):
            if any(line.startswith(prefix) for line in m.split("\n")):
                return i + 1
        return None

    def wait_for(self, prefix, after=0, timeout=10):
        return wait_until(lambda: self.found(prefix, after), timeout,
                          message="%s on NOTIFY_SOCKET" % prefix)

    def close(self):
        self.sock.close()


class NotifyTest(RelayTestCase):

    def test_ready_status_reload_watchdog_stopping(self):
        notify = Notify(os.path.join(self.tmp, "notify"))
        self._owned.append(notify.close)
        up = self.fake("unix")
        relay = self.relay(up, start=False, config={"relay": {"window": "200ms"}},
                           env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"})
        relay.start(ready=lambda: notify.found("READY=1"))
        ready = notify.wait_for("READY=1")
        # Ready means the sockets are bound: the port is taken, the path
        # exists, and a datagram sent now is read.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            with self.assertRaises(OSError):
                s.bind(("127.0.0.1", relay.udp_port))
        self.assertTrue(os.path.exists(relay.unix_path))
        self.assertTrue(os.path.exists(relay.admin_path))
        relay.send_unix("c:after.ready:1")
        relay.send_udp("c:after.ready:2")

        status = notify.wait_for("STATUS=", ready)
        self.assertRegex(notify.messages[status - 1],
                         r"^STATUS=in \d+ lines/s, out \d+ lines/s, rejected \d+, upstream up$")
        notify.wait_for("WATCHDOG=1", ready)
        watchdogs = sum(m == "WATCHDOG=1" for m in notify.poll())
        wait_until(lambda: sum(m == "WATCHDOG=1" for m in notify.poll()) >= watchdogs + 3,
                   message="repeated WATCHDOG=1")

        relay.signal(signal.SIGHUP)
        reloading = notify.wait_for("RELOADING=1", ready)
        self.assertIn("MONOTONIC_USEC=", notify.messages[reloading - 1])
        notify.wait_for("READY=1", reloading)

        relay.send_udp("c:partial:5")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 3, message="read")
        n = len(notify.poll())
        relay.signal(signal.SIGTERM)
        notify.wait_for("STOPPING=1", n)
        self.assertEqual(relay.proc.wait(20 * SLOW), 0)
        up.settle()
        self.assertEqual(up.sums("c"), {"after.ready": 3.0, "partial": 5.0})

    def test_no_notify_socket_is_fine(self):
        up = self.fake("unix")
        relay = self.relay(up)
        relay.send_udp("c:plain:1")
        wait_until(lambda: up.count() == 1, message="a line")
        self.assertExit0(relay)


class SteadySender(threading.Thread):
    """Counters at a steady rate, over UDP and unix, until stopped. Counts
    what it sent, and what the kernel refused (nobody bound)."""

    def __init__(self, udp_port, unix_path, rate=2000, limit_s=30):
        super().__init__(daemon=True)
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.udp_addr = ("127.0.0.1", udp_port)
        self.unix_path = unix_path
        self.period = 1.0 / rate
        self.limit_s = limit_s
        self.sent = 0
        self.sent_by = {"udp": 0, "unix": 0}
        self.refused = 0
        self.halt = threading.Event()

    def run(self):
        start = time.monotonic()
        i = 0
        while not self.halt.is_set() and time.monotonic() - start < self.limit_s:
            try:
                if i % 2:
                    self.unix.sendto(b"c:restart.unix:1", self.unix_path)
                else:
                    self.udp.sendto(b"c:restart.udp:1", self.udp_addr)
            except OSError:
                self.refused += 1  # no socket at that path, or port refused
            self.sent += 1
            self.sent_by["unix" if i % 2 else "udp"] += 1
            i += 1
            ahead = start + i * self.period - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)  # pacing the load, not synchronisation
        self.udp.close()
        self.unix.close()

    def finish(self):
        self.halt.set()
        self.join(10)


def restart_run(test, activated, restarts=3, rate=10000):
    """Starts a relay, restarts it `restarts` times while a sender keeps
    sending, and returns (sent, delivered, refused at the sender)."""
    up = test.fake("unix", rcvbuf=8 << 20)
    path = os.path.join(test.tmp, "relay.unix")
    socks = []
    if activated:
        # Bound here, as systemd binds them, and passed to every relay.
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8 << 20)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        listen = "udp://127.0.0.1:%d unix://%s" % (port, path)
        x = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        x.bind(path)
        os.chmod(path, 0o666)
        socks = [u, x]
        for s in socks:
            test._owned.append(s.close)
    else:
        # The first relay chooses a free port; the restarts bind it again
        # (between two runs it is nobody's: that is what this run measures).
        port, listen = None, "udp://127.0.0.1:{udp} unix://%s" % path

    def start(n):
        nonlocal port, listen
        home = os.path.join(test.tmp, "relay%d" % n)
        os.mkdir(home)
        r = Relay(home, up.url, listen=listen, start=False, config={"relay": {"window": "100ms"}})
        test._owned.append(r.kill)
        if activated:
            fds = [s.fileno() for s in socks]
            r.start(pass_fds=fds, wrapper=activate_wrapper(fds))
            test.assertEqual(r.log().count("source=systemd"), 2)
        else:
            r.start()
            port = r.udp_port
            listen = "udp://127.0.0.1:%d unix://%s" % (port, path)
        return r

    relay = start(0)
    sender = SteadySender(port, path, rate=rate)
    sender.start()
    for n in range(1, restarts + 1):
        target = sender.sent + 500
        wait_until(lambda: sum(up.sums("c").values()) > target, message="traffic before a restart")
        code = relay.stop()
        test.assertEqual(code, 0, relay.log())
        relay = start(n)
    target = sender.sent + 500
    wait_until(lambda: sum(up.sums("c").values()) > target, message="traffic after the restarts")
    sender.finish()
    test.assertExit0(relay)
    test.by_transport = {t: (sender.sent_by[t], int(up.sums("c").get("restart." + t, 0)))
                         for t in ("udp", "unix")}
    return sender.sent, int(sum(up.sums("c").values())), sender.refused


class RestartTest(RelayTestCase):

    def test_restart_on_passed_descriptors_loses_nothing(self):
        sent, delivered, refused = restart_run(self, activated=True)
        self.assertEqual(refused, 0)
        self.assertEqual(delivered, sent)

    def test_restart_without_socket_activation_loses_lines(self):
        """The same run with sockets the relay binds itself: what is sent
        while no process is bound is refused or dropped. Reported, for
        docs/operations.md; only asserted to not gain anything."""
        sent, delivered, refused = restart_run(self, activated=False)
        sys.stderr.write("\nwithout socket activation: sent %d, delivered %d, lost %d "
                         "(%d refused at the sender)\n" % (sent, delivered, sent - delivered,
                                                           refused))
        self.assertLessEqual(delivered, sent)


if __name__ == "__main__":
    unittest.main()
