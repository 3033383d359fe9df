"""The admin socket, spectator-relayctl and self-metrics, against the real
binary."""

import collections
import grp
import json
import os
import resource
import select
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
import unittest

from relaytest import RELAYCTL_BIN, SLOW, RelayTestCase, parse_line, wait_until
from test_docs import stopped


def connect(path, timeout=30):
    """A connected admin client. A unix socket's connect() fails at once
    (EAGAIN) while the relay's backlog is full; it is tried again."""
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.setblocking(False)

    def attempt():
        try:
            s.connect(path)
            return True
        except BlockingIOError:
            return False
    try:
        wait_until(attempt, timeout, interval=0.001, message="room in the admin backlog")
    except BaseException:
        s.close()
        raise
    s.settimeout(timeout)
    return s


# A hog of admin slots, as a process of its own, so that it can run as
# another user:
#     python3 -c HOG PATH COUNT SECONDS
# prints "holding" once it holds COUNT connections, and keeps them topped up
# until SECONDS have passed or it is killed.
HOG = r"""
import socket, sys, time
path, count, limit = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
end = time.monotonic() + limit
held = []
def connect():
    while time.monotonic() < end:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        try:
            s.connect(path)
            return s
        except BlockingIOError:
            s.close()
            time.sleep(0.001)  # the backlog is full: pace the retries
        except OSError:
            sys.exit(0)  # the relay is gone: so is the point of hogging it
    sys.exit(0)
announced = False
while time.monotonic() < end:
    alive = []
    for s in held:
        try:
            s.recv(1 << 16)
            s.close()
        except BlockingIOError:
            alive.append(s)
        except OSError:
            s.close()
    held = alive
    while len(held) < count:
        held.append(connect())
    if not announced:
        print("holding", flush=True)
        announced = True
    time.sleep(0.005)  # pacing the hog's rounds, not synchronisation
"""


def read_all(s):
    """Everything the relay sends on s, until it closes."""
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            return data
        data += chunk


def raise_fd_limit(want):
    """Room for want sockets in this process; returns how many it may open."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = want + 64
    if soft < need:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(need, hard), hard))
    return min(want, resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 64)


def ctl(relay, *args, user=None, extra_groups=None, binary=RELAYCTL_BIN):
    return subprocess.run([binary, "--socket", relay.admin_path] + list(args),
                          capture_output=True, text=True, timeout=30, user=user,
                          extra_groups=extra_groups)


class AdminTest(RelayTestCase):

    def test_stats_count_lines_and_rejects_exactly(self):
        up = self.fake("unix")
        relay = self.relay(up)
        good = ["c:ok.a:1", "c:ok.b,x=1:2", "t:ok.t:0.5", "g:ok.g:3", "m:ok.m:4"]
        bad = {"Q:bad.type:1": "bad-type", "c:bad.neg:-1": "negative",
               "c:bad.hex:0x10": "hex", "g:bad.hex2:0xff": "hex"}
        relay.send_udp("\n".join(good[:3] + list(bad)[:2]))
        relay.send_unix("\n".join(good[3:] + list(bad)[2:]))
        stats = wait_until(lambda: (lambda s: s if s["received"]["lines"] == 9 else None)(
            relay.admin("stats")), message="stats to count 9 lines")
        self.assertEqual(stats["received"]["datagrams"], 2)
        self.assertEqual(stats["rejected"]["total"], 4)
        by = stats["rejected"]["by_reason"]
        self.assertEqual(by["bad-type"], 1)
        self.assertEqual(by["negative"], 1)
        self.assertEqual(by["hex"], 2)
        self.assertEqual(sum(by.values()), 4)
        self.assertEqual(stats["merged"]["lines_in"], 4)
        per = {l["transport"]: l for l in stats["listeners"]}
        self.assertEqual(per["udp"]["lines"], 5)
        self.assertEqual(per["unix"]["lines"], 4)
        self.assertEqual(per["udp"]["kernel_drops"], 0)
        self.assertGreater(per["udp"]["receive_buffer"], 0)

        rejects = relay.admin("rejects")["rejects"]
        self.assertEqual([(r["line"], r["reason"]) for r in rejects], list(bad.items()))
        self.assertTrue(all(abs(r["time"] - time.time()) < 60 for r in rejects))
        self.assertRegex(rejects[0]["sender"], r"^127\.0\.0\.1:\d+$")
        self.assertRegex(rejects[3]["sender"], r"^pid %d uid %d" % (os.getpid(), os.getuid()))

        # The window closes and the good lines go out; stats agree.
        wait_until(lambda: up.count() >= 5, message="forwarded lines")
        stats = relay.admin("stats")
        self.assertEqual(stats["forwarded"]["lines"], up.count())
        self.assertExit0(relay)

    def test_rejects_keeps_the_last_100_cut_to_200_bytes(self):
        relay = self.relay(self.fake("unix"))
        for i in range(130):
            relay.send_udp("Q:%d:%s" % (i, "x" * 300))
        wait_until(lambda: relay.admin("stats")["rejected"]["total"] == 130, message="rejects")
        rejects = relay.admin("rejects")["rejects"]
        self.assertEqual(len(rejects), 100)
        self.assertTrue(rejects[0]["line"].startswith("Q:30:"))
        self.assertTrue(rejects[-1]["line"].startswith("Q:129:"))
        self.assertEqual(len(rejects[-1]["line"]), 200)
        self.assertEqual(rejects[-1]["bytes"], len("Q:129:") + 300)
        # Invalid UTF-8 and control bytes still make valid JSON.
        relay.send_udp(b"Q:bin\xff\xfe\x01:1")
        wait_until(lambda: relay.admin("stats")["rejected"]["total"] == 131, message="binary")
        self.assertEqual(relay.admin("rejects")["rejects"][-1]["line"], "Q:bin\ufffd\ufffd\x01:1")
        self.assertExit0(relay)

    def test_senders_show_our_pid_and_uid_for_unix_traffic(self):
        relay = self.relay(self.fake("unix"))
        for _ in range(3):
            relay.send_unix("c:from.me:1\nQ:bad:1")
        relay.send_udp("c:from.udp:1")
        senders = wait_until(lambda: (lambda s: s if len(s["by_lines"]) == 2 else None)(
            relay.admin("senders")), message="two senders")
        mine = [s for s in senders["by_lines"] if s["transport"] == "unix"][0]
        self.assertEqual(mine["pid"], os.getpid())
        self.assertEqual(mine["uid"], os.getuid())
        self.assertEqual(mine["datagrams"], 3)
        self.assertEqual(mine["lines"], 6)
        self.assertEqual(mine["rejects"], 3)
        self.assertEqual(mine["top_reject"], "bad-type")
        self.assertEqual(senders["by_lines"][0]["pid"], os.getpid())  # heaviest first
        self.assertEqual([s["transport"] for s in senders["by_rejects"]], ["unix"])
        out = ctl(relay, "senders")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertIn("pid %d uid %d" % (os.getpid(), os.getuid()), out.stdout)
        self.assertIn("bad-type", out.stdout)
        self.assertExit0(relay)

    def test_senders_table_is_bounded(self):
        relay = self.relay(self.fake("unix"))
        socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in range(100)]
        try:
            for i, s in enumerate(socks):
                for _ in range(1 + (i == 99) * 50):  # the last one is heavy
                    s.sendto(b"c:many:1", ("127.0.0.1", relay.udp_port))
        finally:
            for s in socks:
                s.close()
        wait_until(lambda: relay.admin("stats")["received"]["datagrams"] == 150,
                   message="all datagrams")
        senders = relay.admin("senders")
        self.assertEqual(senders["tracked"], 64)
        self.assertEqual(senders["evictions"], 36)
        self.assertGreaterEqual(senders["by_lines"][0]["lines"], 51)
        self.assertExit0(relay)

    def test_flush_delivers_the_open_window_before_replying(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"}})
        relay.send_udp("c:flushed:2\nc:flushed:3\nt:flushed.t:1")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 3, message="read")
        self.assertEqual(relay.admin("stats")["windows"]["flushed"], 0)
        reply = relay.admin("flush")
        self.assertEqual(reply["flushed"], True)
        self.assertEqual(reply["delivered"], True)
        self.assertEqual(reply["forwarded_lines"], 2)
        up.settle()  # everything the relay sent is in the fake's queue already
        self.assertEqual(sorted(up.snapshot()), ["c:flushed:5", "t:flushed.t:1"])
        self.assertEqual(relay.admin("stats")["windows"]["flushed"], 1)
        self.assertExit0(relay)

    def test_socket_mode_and_errors(self):
        relay = self.relay(self.fake("unix"), config={"admin": {"mode": "0640"}})
        self.assertEqual(stat.S_IMODE(os.stat(relay.admin_path).st_mode), 0o640)
        self.assertTrue(stat.S_ISSOCK(os.stat(relay.admin_path).st_mode))
        self.assertIn("unknown command 'bogus'", relay.admin("bogus")["error"])
        self.assertEqual(relay.admin("forget-age-gauge")["error"], "usage: forget-age-gauge ID")
        self.assertEqual(relay.admin("stats now")["error"], "stats takes no argument")
        self.assertIn("not tracked", relay.admin("forget-age-gauge nope")["error"])
        names = [c["command"] for c in relay.admin("help")["commands"]]
        self.assertEqual(names, ["help", "stats", "config", "flush", "age-gauges",
                                 "forget-age-gauge", "forget-age-gauges", "senders", "top",
                                 "rejects", "reload", "tap"])
        cfg = relay.admin("config")
        self.assertEqual(cfg["relay"]["window"], "200ms")
        self.assertEqual(cfg["admin"]["mode"], "0640")
        self.assertExit0(relay)
        self.assertFalse(os.path.exists(relay.admin_path))

    def test_idle_client_is_dropped_and_never_blocks_the_loop(self):
        up = self.fake("unix")
        relay = self.relay(up)
        idle = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        idle.connect(relay.admin_path)
        half = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        half.connect(relay.admin_path)
        half.sendall(b"sta")  # half a command, then silence
        try:
            # The relay keeps serving and forwarding meanwhile.
            self.assertIn("received", relay.admin("stats"))
            relay.send_udp("c:while.idle:1")
            wait_until(lambda: up.count() >= 1, message="forwarding with idle admin clients")
            idle.settimeout(15)
            half.settimeout(15)
            self.assertEqual(idle.recv(100), b"")  # closed by the relay after 5 s
            self.assertEqual(half.recv(100), b"")
        finally:
            idle.close()
            half.close()
        self.assertExit0(relay)

    def test_connections_are_capped_and_the_oldest_idle_one_makes_room(self):
        relay = self.relay(self.fake("unix"))
        held = []
        try:
            for _ in range(40):
                held.append(connect(relay.admin_path))
            # 32 are open at most: the 8 that came first were closed to make
            # room for the last 8, and told why.
            for s in held[:8]:
                s.settimeout(10)
                self.assertEqual(json.loads(read_all(s)),
                                 {"error": "too many admin connections; this one waited "
                                           "longest for its request"})
            # The 32 newest are still served.
            held[8].sendall(b"help\n")
            held[8].settimeout(10)
            self.assertIn("commands", json.loads(read_all(held[8])))
        finally:
            for s in held:
                s.close()
        self.assertExit0(relay)

    def test_idle_connections_cannot_lock_root_out(self):
        """Anyone who may connect (here nobody, with the socket open to all)
        could hold every slot, and reconnect whenever one is closed; root's
        relayctl still gets its answer, every time, however slow it is to
        send its request after connecting."""
        relay = self.relay(self.fake("unix"), config={"admin": {"mode": "0666"}})
        os.chmod(self.tmp, 0o755)
        # An interpreter nobody may run: Debian's, not one under /root.
        python = shutil.which("python3", path="/usr/bin:/bin") or sys.executable
        hog = subprocess.Popen([python, "-c", HOG, relay.admin_path, "100",
                                str(120 * SLOW)], user=65534, stdout=subprocess.PIPE, text=True)
        self.addCleanup(hog.stdout.close)
        self.addCleanup(hog.wait, 30)
        self.addCleanup(hog.kill)
        ready, _, _ = select.select([hog.stdout], [], [], 30 * SLOW)
        self.assertTrue(ready and hog.stdout.readline().strip() == "holding")
        for _ in range(5):
            out = ctl(relay, "stats")
            self.assertEqual(out.returncode, 0, out.stderr)
            self.assertIn("received", out.stdout)
            # A privileged client slow to send its request keeps its slot.
            with connect(relay.admin_path) as s:
                time.sleep(0.05)  # slowness, not synchronisation: the hog churns meanwhile
                s.sendall(b"stats\n")
                self.assertIn(b"received", read_all(s))
        self.assertExit0(relay)

    def test_a_thousand_concurrent_requests_are_all_answered(self):
        """All open at once, each request sent right after its connect: none
        waits for a slot, since a request already sent is answered before
        its connection could be the one to make room."""
        n = raise_fd_limit(1000)
        relay = self.relay(self.fake("unix"))
        socks = []
        try:
            for _ in range(n):
                s = connect(relay.admin_path)
                socks.append(s)
                s.sendall(b"stats\n")
            replies = [json.loads(read_all(s)) for s in socks]
        finally:
            for s in socks:
                s.close()
        self.assertEqual(sum("received" in r for r in replies), n)
        self.assertExit0(relay)

    def test_concurrent_clients_get_an_answer_or_a_clean_close(self):
        """From many threads at once, a client that is slow to send its
        request may lose its slot; it is then told so, or finds the
        connection closed, never half a reply, and the relay goes on."""
        relay = self.relay(self.fake("unix"))
        outcomes = collections.Counter()
        lock = threading.Lock()

        def client():
            for _ in range(25):
                try:
                    with connect(relay.admin_path) as s:
                        s.sendall(b"stats\n")
                        data = read_all(s)
                    kind = "closed" if not data else (
                        "answered" if "received" in json.loads(data) else "evicted")
                except (ConnectionResetError, BrokenPipeError):
                    kind = "reset"
                with lock:
                    outcomes[kind] += 1
        threads = [threading.Thread(target=client) for _ in range(40)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        self.assertFalse(any(t.is_alive() for t in threads))
        self.assertEqual(sum(outcomes.values()), 1000, outcomes)
        self.assertGreater(outcomes["answered"], 0, outcomes)
        self.assertIn("received", relay.admin("stats"))
        self.assertExit0(relay)

    def test_request_too_long(self):
        relay = self.relay(self.fake("unix"))
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.connect(relay.admin_path)
            s.sendall(b"x" * 5000)
            s.settimeout(10)
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(1000)
                if not chunk:
                    break
                data += chunk
        self.assertIn(b"request longer than 1024 bytes", data)
        self.assertExit0(relay)

    def test_mutating_commands_need_privilege(self):
        # A group the unprivileged client can be given, or not.
        group = grp.getgrnam("daemon")
        relay = self.relay(self.fake("unix"),
                           config={"admin": {"mode": "0666", "group": "daemon"}})
        self.assertEqual(os.stat(relay.admin_path).st_gid, group.gr_gid)
        nobody = 65534
        os.chmod(self.tmp, 0o755)
        # nobody runs a copy in the test's own directory: the build directory
        # may be below one it cannot enter (a checkout in /root, say).
        binary = os.path.join(self.tmp, "spectator-relayctl")
        shutil.copy(RELAYCTL_BIN, binary)
        as_nobody = dict(user=nobody, extra_groups=[], binary=binary)
        out = ctl(relay, "flush", **as_nobody)
        self.assertEqual(out.returncode, 1)
        self.assertIn("flush changes the relay: it needs root", out.stderr)
        for cmd in ("reload", "forget-age-gauges"):
            self.assertEqual(ctl(relay, cmd, **as_nobody).returncode, 1)
        out = ctl(relay, "stats", **as_nobody)  # read-only: open
        self.assertEqual(out.returncode, 0, out.stderr)
        out = ctl(relay, "flush", user=nobody, extra_groups=[group.gr_gid],  # in [admin] group
                  binary=binary)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertEqual(ctl(relay, "flush").returncode, 0)  # root
        self.assertExit0(relay)


class KernelDropsTest(RelayTestCase):

    def test_kernel_drops_are_counted_on_ipv4_and_ipv6(self):
        """SpectatorD's own drop counter misses IPv6 sockets; the relay's does
        not. The relay is stopped while its small buffers overflow."""
        relay = self.relay(self.fake("unix"), listen="udp://127.0.0.1:{udp} udp://[::1]:{udp6}",
                           config={"sockets": {"receive_buffer": "4KiB"}})
        port6 = relay.udp6_port
        relay.signal(signal.SIGSTOP)
        wait_until(lambda: stopped(relay.proc.pid), message="the relay to stop")
        for _ in range(2000):
            relay.send_udp("c:flood:1")
            relay.send_udp("c:flood:1", family=socket.AF_INET6, port=port6)
        relay.signal(signal.SIGCONT)

        def drops():
            per = {l["url"].split(":")[1]: l["kernel_drops"]
                   for l in relay.admin("stats")["listeners"]}
            return per if all(per.values()) else None
        per = wait_until(drops, message="drops on both sockets")  # refreshed every second
        self.assertEqual(len(per), 2)
        stats = relay.admin("stats")
        received = {l["url"].split(":")[1]: l["datagrams"] for l in stats["listeners"]}
        for family in per:
            self.assertEqual(received[family] + per[family], 2000, family)
        self.assertExit0(relay)


class RelayctlTest(RelayTestCase):

    def test_stats_for_people_and_for_scripts(self):
        relay = self.relay(self.fake("unix"))
        relay.send_udp("c:ctl:1\nQ:x:1")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 2, message="lines")
        out = ctl(relay, "stats")
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"(?m)^received\.lines +2$")
        self.assertRegex(out.stdout, r"(?m)^rejected\.by_reason\.bad-type +1$")
        self.assertRegex(out.stdout, r"(?m)^listeners\[0\]\.url +udp://127\.0\.0\.1:\d+$")
        out = ctl(relay, "--json", "stats")
        self.assertEqual(__import__("json").loads(out.stdout)["received"]["lines"], 2)
        out = ctl(relay, "rejects")
        self.assertRegex(out.stdout, r"(?m)^TIME +REASON +SENDER +LINE$")
        self.assertRegex(out.stdout, r"(?m)bad-type +127\.0\.0\.1:\d+ +Q:x:1$")
        # The socket path can come from the relay's configuration.
        out = subprocess.run([RELAYCTL_BIN, "--config", relay.config_path, "config"],
                             capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 0, out.stderr)
        self.assertRegex(out.stdout, r"(?m)^relay\.window +200ms$")
        self.assertExit0(relay)

    def test_relay_down_or_error_exits_non_zero(self):
        relay = self.relay(self.fake("unix"))
        out = ctl(relay, "bogus")
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stderr.strip(), "spectator-relayctl: unknown command 'bogus'; try help")
        self.assertExit0(relay)
        out = ctl(relay, "stats")
        self.assertEqual(out.returncode, 1)
        self.assertEqual(out.stdout, "")
        self.assertIn("cannot reach the relay at %s" % relay.admin_path, out.stderr)
        self.assertEqual(len(out.stderr.strip().splitlines()), 1)
        out = subprocess.run([RELAYCTL_BIN], capture_output=True, text=True, timeout=30)
        self.assertEqual(out.returncode, 2)


class SelfMetricsTest(RelayTestCase):

    def test_self_metrics_reach_spectatord_and_agree_with_stats(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"self_metrics": {"enabled": "true",
                                                        "tags": "nf.app=relaytest,env=test"}})
        relay.send_udp("c:app.a:1\nc:app.a:1\nQ:bad:1")
        relay.send_unix("c:app.b:1")

        def received():
            sums = up.sums("c")
            udp = sums.get("spectatorRelay.linesReceived,env=test,nf.app=relaytest,transport=udp")
            unix = sums.get("spectatorRelay.linesReceived,env=test,nf.app=relaytest,transport=unix")
            return (udp, unix) if udp and unix else None
        self.assertEqual(wait_until(received, 20, message="self-metrics"), (3.0, 1.0))
        sums = up.sums("c")
        self.assertEqual(sums["spectatorRelay.linesRejected,env=test,nf.app=relaytest,"
                              "reason=bad-type"], 1.0)
        stats = relay.admin("stats")
        self.assertEqual(stats["received"]["lines"], 4)
        self.assertEqual(stats["rejected"]["total"], 1)
        gauges = up.last("g")
        self.assertIn("spectatorRelay.upstreamUp,env=test,nf.app=relaytest", gauges)
        self.assertEqual(gauges["spectatorRelay.upstreamUp,env=test,nf.app=relaytest"], ("1", "30"))
        # Forwarded lines reported by self-metrics never exceed what stats says.
        fwd = sum(v for k, v in up.sums("c").items() if k.startswith("spectatorRelay.linesForwarded"))
        self.assertLessEqual(fwd, relay.admin("stats")["forwarded"]["lines"])
        self.assertGreater(fwd, 0)
        self.assertExit0(relay)

    def test_totals_survive_a_listener_closed_by_reload(self):
        up = self.fake("unix")
        second = os.path.join(self.tmp, "second.unix")
        relay = self.relay(up, config={"self_metrics": {"enabled": "true"}},
                           listen="unix://%s unix://%s" % (os.path.join(self.tmp, "relay.unix"),
                                                          second))
        key = "spectatorRelay.linesReceived,transport=unix"
        relay.send_unix("c:a:1\nc:a:1")
        relay.send_unix("c:b:1", path=second)
        wait_until(lambda: up.sums("c").get(key) == 3.0, 20, message="the first report")
        with open(relay.config_path) as f:
            text = f.read()
        with open(relay.config_path, "w") as f:
            f.write(text.replace(" unix://" + second, ""))
        self.assertTrue(relay.admin("reload")["ok"])
        relay.send_unix("c:a:1")
        wait_until(lambda: up.sums("c").get(key) == 4.0, 20, message="the next report")
        relay.admin("flush")
        self.assertExit0(relay)
        self.assertEqual(up.sums("c")[key], 4.0)
        self.assertTrue(all(v < 1e6 for v in up.sums("c").values()), up.sums("c"))

    def test_disabled(self):
        up = self.fake("unix")
        relay = self.relay(up)  # the harness disables them
        relay.send_udp("c:only.mine:1")
        wait_until(lambda: up.count() >= 1, message="a line")
        self.assertExit0(relay)
        self.assertEqual([parse_line(l)[2] for l in up.snapshot()], ["only.mine"])


if __name__ == "__main__":
    unittest.main()
