"""Black-box harness: the real spectator-relay binary, a temporary directory,
free loopback ports, and a fake SpectatorD that records what arrives.

Nothing here sleeps to synchronise: every wait polls a condition until it
holds or a deadline passes (wait_until). Every process and socket is owned by
a test and closed by it; all traffic stays on loopback or in the temporary
directory.
"""

import collections
import json
import math
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import unittest

# wait_until and SLOW live in tests/waiting.py, shared with the other harnesses.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
from waiting import SLOW, wait_until  # noqa: E402,F401 - re-exported for the tests

RELAY_BIN = os.environ.get("RELAY_BIN", os.path.join(os.path.dirname(__file__), "..", "..",
                                                     "build", "spectator-relay"))
RELAYCTL_BIN = os.environ.get("RELAYCTL_BIN", os.path.join(os.path.dirname(RELAY_BIN),
                                                           "spectator-relayctl"))


# A wrapper command that plays systemd's socket activation: run as
#     [sys.executable, "-c", ACTIVATE, "FD,FD,...", "NAME:NAME:...", COMMAND...]
# it moves the descriptors to 3, 4, ..., sets LISTEN_FDS, LISTEN_FDNAMES and
# LISTEN_PID (the pid of the process it execs into: its own, hence the exec).
ACTIVATE = r"""
import fcntl, os, sys
fds = [int(x) for x in sys.argv[1].split(",")]
# Copies above every source and target first, so that no dup2 below
# overwrites a descriptor that is still to be moved.
base = max(fds) + len(fds) + 3
high = [fcntl.fcntl(fd, fcntl.F_DUPFD, base) for fd in fds]
for i, fd in enumerate(high):
    os.dup2(fd, 3 + i, inheritable=True)
for fd in high + [fd for fd in fds if fd >= 3 + len(fds)]:
    os.close(fd)
os.environ.update(LISTEN_PID=str(os.getpid()), LISTEN_FDS=str(len(fds)),
                  LISTEN_FDNAMES=sys.argv[2])
os.execv(sys.argv[3], sys.argv[3:])
"""


def activate_wrapper(fds, names=None):
    """The wrapper for Relay.start(wrapper=...): fds become LISTEN_FDS."""
    names = names or ["relay"] * len(fds)
    return [sys.executable, "-c", ACTIVATE, ",".join(map(str, fds)), ":".join(names)]


def free_udp_port(family=socket.AF_INET):
    """A UDP port nothing was bound to a moment ago on loopback: only for a
    port the relay itself must bind. Another process (a test running beside
    this one under ctest -j) may take it before the relay does, so whoever
    hands it to the relay tries again with another on "Address already in
    use" (port_taken(); Relay does, for the ports it chooses). A fake binds
    port 0 and reports the port it got instead."""
    host = "127.0.0.1" if family == socket.AF_INET else "::1"
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# How many ports a start or a reload tries before it gives up.
PORT_ATTEMPTS = 5


def port_taken(text, *ports):
    """Whether the relay's message (its log, a reload's reply) says that one
    of these UDP ports was taken by another process before it could bind
    it."""
    return any(re.search(r"cannot bind udp://\S+:%d: Address already in use" % p, text)
               for p in ports if p)


class PortTaken(Exception):
    """The relay could not start: a port chosen for it was taken first."""


def parse_line(line):
    """'c,60:name,a=1:2.5' -> (type, extra or None, id, value text)."""
    head, _, rest = line.partition(":")
    ident, _, value = rest.rpartition(":")
    typ, _, extra = head.partition(",")
    return typ, (extra if extra else None), ident, value


class FakeSpectatord:
    """Receives datagrams on a unix datagram socket or a UDP port, in a thread,
    and keeps every line. `pause()` stops reading (so the kernel queue fills),
    `resume()` reads again, `close()` removes the socket."""

    def __init__(self, kind, path=None, family=socket.AF_INET, rcvbuf=None, delay=0.0, port=0,
                 keep=True, reuse_port=False):
        """keep=False counts lines and sums counter values without keeping
        them (for floods). reuse_port: SO_REUSEADDR, to bind a port the test
        holds with a socket of its own (it must set it too)."""
        self.kind = kind
        self.lines = []
        self.datagrams = []
        self.lock = threading.Lock()
        self.reading = threading.Event()
        self.reading.set()
        self.stop = threading.Event()
        self.delay = delay
        self.empty_polls = 0  # reads that found the queue empty
        self.keep = keep
        self.nlines = 0
        self.counter_total = 0.0
        if kind == "unix":
            self.path = path
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
            if os.path.exists(path):
                os.unlink(path)
            self.sock.bind(path)
            self.url = "unix://" + path
        else:
            self.sock = socket.socket(family, socket.SOCK_DGRAM)
            host = "127.0.0.1" if family == socket.AF_INET else "::1"
            if reuse_port:
                self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            self.sock.bind((host, port))
            port = self.sock.getsockname()[1]
            self.url = "udp://%s:%d" % (host if family == socket.AF_INET else "[::1]", port)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf or (4 << 20))
        self.sock.settimeout(0.05)
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self):
        while not self.stop.is_set():
            if not self.reading.is_set():
                self.reading.wait(0.05)
                continue
            try:
                data = self.sock.recv(70000)
            except socket.timeout:
                self.empty_polls += 1
                continue
            except OSError:
                return
            self._take(data)
            if self.delay:
                time.sleep(self.delay)  # a slow SpectatorD, not synchronisation

    def _take(self, data):
        if not data:
            return  # the relay's empty liveness probe
        lines = [l for l in data.decode("utf-8", "surrogateescape").split("\n") if l]
        with self.lock:
            self.nlines += len(lines)
            if self.keep:
                self.datagrams.append(data)
                self.lines.extend(lines)
            else:
                self.counter_total += sum(float(l.rsplit(":", 1)[1]) for l in lines
                                          if l.startswith("c:"))

    def settle(self):
        """Returns once everything the kernel queued for this socket has
        been read: two reads in a row found it empty after this call."""
        start = self.empty_polls
        wait_until(lambda: self.empty_polls >= start + 2, 30, message="fake to drain its queue")

    def pause(self):
        self.reading.clear()

    def resume(self):
        self.reading.set()

    def snapshot(self):
        with self.lock:
            return list(self.lines)

    def count(self):
        with self.lock:
            return self.nlines

    def close(self):
        """SpectatorD going away: what the relay sent before it went is
        read (SpectatorD would have read it), what it sends after is not."""
        if self.kind == "unix" and os.path.exists(self.path):
            os.unlink(self.path)  # sendto() fails from here on
        self.stop.set()
        self.reading.set()
        self.thread.join(5)
        self.sock.setblocking(False)
        while True:
            try:
                data = self.sock.recv(70000)
            except OSError:
                break
            self._take(data)
        self.sock.close()

    # Views of what arrived -------------------------------------------------

    def sums(self, typ="c"):
        """Sum of every forwarded value per id, for one type."""
        out = collections.defaultdict(float)
        for line in self.snapshot():
            t, _, ident, value = parse_line(line)
            if t == typ:
                out[ident] += float(value)
        return dict(out)

    def last(self, typ):
        """Last forwarded value per id (text), for one type."""
        out = {}
        for line in self.snapshot():
            t, extra, ident, value = parse_line(line)
            if t == typ:
                out[ident] = (value, extra)
        return out

    def of_type(self, typ):
        return [l for l in self.snapshot() if parse_line(l)[0] == typ]


class Relay:
    """The real binary with a generated config in its own temporary directory.
    Sections given as {"relay": {"window": "200ms"}} override the defaults
    chosen here (UDP on a free IPv4 port, a unix socket in the directory).

    In `listen`, {udp} and {udp6} stand for free loopback UDP ports (IPv4,
    IPv6) that the harness chooses, as udp_port and udp6_port. The relay must
    bind them itself, so a start that finds one taken by another process in
    the meantime is tried again on new ones, PORT_ATTEMPTS times at most. A
    listen without them is started as it is."""

    def __init__(self, tmp, upstream_url, config=None, listen=None, env=None, start=True,
                 extra_args=()):
        self.tmp = tmp
        self.unix_path = os.path.join(tmp, "relay.unix")
        self.admin_path = os.path.join(tmp, "admin.sock")
        if listen is None:
            listen = "udp://127.0.0.1:{udp} unix://%s" % self.unix_path
        self.sections = {
            "relay": {"listen": listen, "upstream": upstream_url, "window": "200ms"},
            "admin": {"socket": self.admin_path},
            # A test's fake SpectatorD has no admin server; test_resync has one.
            "spectatord": {"admin": ""},
            "self_metrics": {"enabled": "false"},
            "log": {"level": "info"},
        }
        for sec, keys in (config or {}).items():
            self.sections.setdefault(sec, {}).update(keys)
        self.started_with = {sec: dict(keys) for sec, keys in self.sections.items()}
        self.udp6_port = None
        self.choose_ports()
        self.config_path = os.path.join(tmp, "relay.ini")
        self.write_config(self.sections)
        self.env = dict(os.environ)
        self.env.update(env or {})
        self.extra_args = list(extra_args)
        self.proc = None
        self._stderr = self._stdout = None
        self.stderr_path = os.path.join(tmp, "relay.stderr")
        self.stdout_path = os.path.join(tmp, "relay.stdout")
        if start:
            self.start()

    def chooses_ports(self):
        listen = self.sections.get("relay", {}).get("listen", "")
        return "{udp}" in listen or "{udp6}" in listen

    def choose_ports(self):
        """New ports for {udp} and {udp6}. udp_port is chosen even when the
        listen has no {udp}, as before: send_udp() needs some port."""
        self.udp_port = free_udp_port()
        if "{udp6}" in self.sections.get("relay", {}).get("listen", ""):
            self.udp6_port = free_udp_port(socket.AF_INET6)

    def write_config(self, sections):
        """Writes sections as the relay's file, and keeps them for a start
        that must choose other ports; {udp} and {udp6} in a listen become
        the ports chosen."""
        self.sections = sections
        with open(self.config_path, "w") as f:
            for sec, keys in sections.items():
                f.write("[%s]\n" % sec)
                for k, v in keys.items():
                    if sec == "relay" and k == "listen":
                        v = v.replace("{udp}", str(self.udp_port))
                        v = v.replace("{udp6}", str(self.udp6_port))
                    f.write("%s = %s\n" % (k, v))
                f.write("\n")

    def rewrite(self, **override):
        """Rewrites the file for a reload: the sections the relay was made
        with, override's keys on top (each rewrite starts from those)."""
        sections = {sec: dict(keys) for sec, keys in self.started_with.items()}
        for sec, keys in override.items():
            sections.setdefault(sec, {}).update(keys)
        self.write_config(sections)

    def start(self, wait=True, pass_fds=(), wrapper=(), stdout=None, ready=None):
        """Starts the binary; wrapper is a command that execs it (its
        arguments follow the wrapper's). stdout: a file descriptor to give
        it instead of the file stdout_path. wait: until ready() is true
        (by default, until the relay logs event=ready); a start whose chosen
        port was taken meanwhile is tried again on new ports. Without wait,
        a taken port is the test's to notice."""
        for attempt in range(1, PORT_ATTEMPTS + 1):
            self._spawn(pass_fds, wrapper, stdout)
            if not wait:
                return self
            try:
                self.wait_ready(ready)
                return self
            except PortTaken:
                if attempt == PORT_ATTEMPTS:
                    raise AssertionError("%d starts found their ports taken:\n%s"
                                         % (attempt, self.log()))
                self.choose_ports()
                self.write_config(self.sections)

    def _spawn(self, pass_fds, wrapper, stdout):
        for f in (self._stderr, self._stdout):
            if f:
                f.close()
        self._stderr = open(self.stderr_path, "ab")
        self._stdout = open(self.stdout_path, "ab")
        self._log_start = os.path.getsize(self.stderr_path)
        self.proc = subprocess.Popen(list(wrapper) + [RELAY_BIN, "--config", self.config_path] +
                                     self.extra_args, stderr=self._stderr,
                                     stdout=self._stdout if stdout is None else stdout,
                                     env=self.env, pass_fds=pass_fds)

    def log(self):
        with open(self.stderr_path, "rb") as f:
            return f.read().decode("utf-8", "replace")

    def wait_ready(self, ready=None):
        """Until the process started last is ready: ready() is true, or by
        default its log says event=ready. Raises PortTaken if it exited
        because a port chosen for it was taken, AssertionError if it exited
        for any other reason."""
        def this_run():
            with open(self.stderr_path, "rb") as f:
                f.seek(self._log_start)
                return f.read().decode("utf-8", "replace")

        def up():
            if self.proc.poll() is not None:
                if self.chooses_ports() and port_taken(this_run(), self.udp_port,
                                                       self.udp6_port):
                    raise PortTaken()
                raise AssertionError("relay exited with %s:\n%s" % (self.proc.returncode,
                                                                    self.log()))
            return ready() if ready else "event=ready" in this_run()
        return wait_until(up, 10, message="relay readiness")

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self, timeout=20):
        """SIGTERM, then the exit status."""
        if self.proc is None or self.proc.poll() is not None:
            return self.proc.returncode if self.proc else None
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout * SLOW)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
            raise AssertionError("relay did not stop on SIGTERM:\n" + self.log())
        finally:
            self._stderr.close()
            self._stdout.close()

    def kill(self):
        """Ends the process however it is doing (test cleanup)."""
        if self.proc and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        for f in (self._stderr, self._stdout):
            if f:
                f.close()

    def admin(self, command, timeout=10):
        """One admin command; the parsed JSON reply."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout * SLOW)
            s.connect(self.admin_path)
            s.sendall(command.encode() + b"\n")
            data = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        return json.loads(data)

    # Senders ---------------------------------------------------------------

    def client_socket(self, transport):
        """A datagram socket and the address to send to: "udp" (IPv4) or
        "unix". For senders that keep one socket; the caller closes it."""
        if transport == "udp":
            return socket.socket(socket.AF_INET, socket.SOCK_DGRAM), ("127.0.0.1", self.udp_port)
        return socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM), self.unix_path

    def send_udp(self, payload, family=socket.AF_INET, port=None):
        host = "127.0.0.1" if family == socket.AF_INET else "::1"
        with socket.socket(family, socket.SOCK_DGRAM) as s:
            s.sendto(payload if isinstance(payload, bytes) else payload.encode(),
                     (host, port or self.udp_port))

    def send_unix(self, payload, path=None):
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.sendto(payload if isinstance(payload, bytes) else payload.encode(),
                     path or self.unix_path)


class RelayTestCase(unittest.TestCase):
    """A temporary directory per test, removed afterwards; relays and fakes
    started through these helpers are stopped even when a test fails."""

    def setUp(self):
        self.tmp = tempfile.mkdtemp(prefix="relaytest-")
        self._owned = []
        self._fakes = []

    def tearDown(self):
        for fn in reversed(self._owned):
            try:
                fn()
            except Exception:  # noqa: BLE001 - cleanup must go on
                pass
        shutil.rmtree(self.tmp, ignore_errors=True)

    def fake(self, kind="unix", name="spectatord.unix", **kw):
        """A fake SpectatorD: unix at tmp/name, or UDP on loopback (port=N to
        take a given port)."""
        f = FakeSpectatord(kind, path=os.path.join(self.tmp, name), **kw)
        self._owned.append(f.close)
        self._fakes.append(f)
        return f

    def relay(self, upstream, **kw):
        r = Relay(self.tmp, upstream.url if hasattr(upstream, "url") else upstream, **kw)

        self._owned.append(r.kill)
        return r

    def assertExit0(self, relay):
        """Stops the relay, checks its exit status, and lets every fake read
        what the relay delivered before it exited."""
        code = relay.stop()
        self.assertEqual(code, 0, "exit status %s; log:\n%s" % (code, relay.log()))
        for f in self._fakes:
            if not f.stop.is_set():
                f.settle()


def close_enough(a, b):
    return a == b or (math.isnan(a) and math.isnan(b))
