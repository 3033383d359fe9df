"""Start, stop and configuration errors of the real binary."""

import os
import shutil
import signal
import subprocess
import sys
import unittest

from relaytest import RELAY_BIN, SLOW, RelayTestCase, wait_until


class ShutdownTest(RelayTestCase):

    def test_sigterm_mid_window_delivers_the_partial_window(self):
        up = self.fake("unix")
        # A long window: SIGTERM comes long before it would close.
        relay = self.relay(up, config={"relay": {"window": "5s"}})
        relay.send_udp("c:partial:1\nc:partial:2\nt:partial.lat:0.5")
        relay.send_unix("c:partial:4\ng,30:partial.g:7")
        # The relay has read them once its stats say so; without the admin
        # socket we rely on SIGTERM draining the kernel queue.
        self.assertExit0(relay)
        self.assertEqual(sorted(up.snapshot()),
                         ["c:partial:7", "g,30:partial.g:7", "t:partial.lat:0.5"])
        self.assertIn("event=stopped", relay.log())

    def test_sigint_is_a_stop_too(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"}})
        relay.send_udp("c:int:1")
        relay.signal(signal.SIGINT)
        self.assertEqual(relay.proc.wait(20), 0)
        up.settle()
        self.assertEqual(up.snapshot(), ["c:int:1"])

    def test_unix_socket_is_removed_on_exit_and_stale_one_replaced(self):
        up = self.fake("unix")
        relay = self.relay(up)
        self.assertTrue(os.path.exists(relay.unix_path))
        self.assertExit0(relay)
        self.assertFalse(os.path.exists(relay.unix_path))
        # A socket file left by a killed relay is stale: the next one takes over.
        relay.start()
        relay.kill()
        self.assertTrue(os.path.exists(relay.unix_path))
        relay.start()
        relay.send_unix("c:after.stale:1")
        wait_until(lambda: up.count() >= 1, message="line through the new socket")
        self.assertExit0(relay)

    def test_refuses_a_unix_path_another_process_is_bound_to(self):
        up = self.fake("unix")
        first = self.relay(up)
        second_tmp = os.path.join(self.tmp, "second")
        os.mkdir(second_tmp)
        from relaytest import Relay
        second = Relay(second_tmp, up.url, listen="unix://" + first.unix_path, start=False)
        second.admin_path = os.path.join(second_tmp, "admin.sock")
        proc = subprocess.run([RELAY_BIN, "--config", second.config_path], capture_output=True,
                              timeout=20, text=True)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("another process is bound to " + first.unix_path, proc.stderr)
        self.assertExit0(first)

    def test_refuses_a_busy_udp_port(self):
        up = self.fake("unix")
        first = self.relay(up)
        from relaytest import Relay
        second_tmp = os.path.join(self.tmp, "second")
        os.mkdir(second_tmp)
        second = Relay(second_tmp, up.url, listen="udp://127.0.0.1:%d" % first.udp_port,
                       start=False)
        proc = subprocess.run([RELAY_BIN, "--config", second.config_path], capture_output=True,
                              timeout=20, text=True)
        self.assertEqual(proc.returncode, 1, proc.stderr)
        self.assertIn("cannot bind udp://127.0.0.1:%d" % first.udp_port, proc.stderr)
        self.assertExit0(first)

    def test_listen_line_gives_the_buffer_set_and_the_kernels_double(self):
        # 64 KiB is under the default net.core.rmem_max, so that the relay
        # gets it as root (SO_RCVBUFFORCE) and as anyone else (SO_RCVBUF).
        up = self.fake("unix")
        relay = self.relay(up, config={"sockets": {"receive_buffer": "64KiB"}})
        stats = relay.admin("stats")
        self.assertEqual([l["receive_buffer"] for l in stats["listeners"]], [131072, 131072])
        for url in ("udp://127.0.0.1:%d" % relay.udp_port, "unix://" + relay.unix_path):
            self.assertIn("event=listen listener=%s source=bound receive_buffer=65536 "
                          "kernel_rcvbuf=131072 note=\"the kernel reports SO_RCVBUF doubled, "
                          "for its bookkeeping\"\n" % url, relay.log())
        self.assertNotIn("receive_buffer_capped", relay.log())
        self.assertExit0(relay)


# Runs inside a network and mount namespace of its own: loopback up, IPv6
# off, a private /run; starts the relay with built-in listen addresses and
# reports what it logged once ready.
NO_IPV6 = r"""
import os, subprocess, sys, time
subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
for conf in ("all", "lo"):
    with open("/proc/sys/net/ipv6/conf/%s/disable_ipv6" % conf, "w") as f:
        f.write("1")
subprocess.run(["mount", "-t", "tmpfs", "none", "/run"], check=True)
relay_bin, config, log = sys.argv[1:4]
with open(log, "wb") as err:
    p = subprocess.Popen([relay_bin, "--config", config], stderr=err, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + float(sys.argv[4])
    while time.monotonic() < deadline and p.poll() is None:
        if b"event=ready" in open(log, "rb").read():
            break
        time.sleep(0.01)  # polls the log for readiness, against the deadline above
    p.terminate()
    sys.exit(p.wait())
"""


class NoIPv6Test(RelayTestCase):

    @unittest.skipUnless(os.geteuid() == 0 and shutil.which("unshare") and shutil.which("ip"),
                         "needs root, unshare and ip to make a host without IPv6")
    def test_default_ipv6_listener_is_skipped_where_there_is_no_ipv6(self):
        config = os.path.join(self.tmp, "relay.ini")
        log = os.path.join(self.tmp, "relay.log")
        with open(config, "w") as f:
            f.write("[relay]\nupstream = file://%s/out\n[admin]\nsocket =\n"
                    "[spectatord]\nadmin =\n" % self.tmp)
        run = subprocess.run(["unshare", "-nm", sys.executable, "-c", NO_IPV6, RELAY_BIN, config,
                              log, str(20 * SLOW)], capture_output=True, text=True, timeout=60)
        with open(log) as f:
            text = f.read()
        self.assertEqual(run.returncode, 0, run.stderr + text)
        self.assertIn("event=listen_skipped", text)
        self.assertIn("udp://[::1]:1235", text)
        self.assertIn("event=listen listener=udp://127.0.0.1:1235", text)
        self.assertIn("event=ready", text)
        # An address the operator wrote is not skipped: that is an error.
        with open(config, "w") as f:
            f.write("[relay]\nlisten = udp://[::1]:1235\nupstream = file://%s/out\n"
                    "[admin]\nsocket =\n[spectatord]\nadmin =\n" % self.tmp)
        run = subprocess.run(["unshare", "-nm", sys.executable, "-c", NO_IPV6, RELAY_BIN, config,
                              log, str(20 * SLOW)], capture_output=True, text=True, timeout=60)
        self.assertEqual(run.returncode, 1)


class CheckConfigTest(RelayTestCase):
    """--check-config prints FILE:LINE: key: reason and exits 1 for each kind
    of bad file; a good file prints nothing and exits 0. --print-config
    checks the same and prints the effective configuration."""

    def check(self, text, option="--check-config"):
        path = os.path.join(self.tmp, "relay.ini")
        with open(path, "wb") as f:
            f.write(text.encode())
        proc = subprocess.run([RELAY_BIN, option, "--config", path],
                              capture_output=True, text=True, timeout=20)
        return proc.returncode, proc.stdout, proc.stderr.strip(), path

    def assertBad(self, text, line, message):
        code, _, err, path = self.check(text)
        self.assertEqual(code, 1, err)
        self.assertEqual(err, "%s:%d: %s" % (path, line, message))

    def test_good_file_passes_quietly(self):
        # systemd runs the check before every start and reload: a listing
        # would land in the journal each time.
        code, out, err, _ = self.check("[relay]\nwindow = 250ms\n")
        self.assertEqual((code, out, err), (0, "", ""))

    def test_print_config_prints_the_effective_configuration(self):
        code, out, err, _ = self.check("[relay]\nwindow = 250ms\n[limits]\nmax_pending_bytes = 1MiB\n",
                                       option="--print-config")
        self.assertEqual(code, 0, err)
        self.assertIn("window = 250ms\n", out)
        self.assertIn("max_pending_bytes = 1MiB\n", out)
        self.assertIn("upstream = unix:///run/spectatord/spectatord.unix\n", out)
        # A bad file: the same one-line error as --check-config, nothing printed.
        code, out, err, path = self.check("[relay]\nwindow = 50ms\n", option="--print-config")
        self.assertEqual((code, out), (1, ""))
        self.assertEqual(err, "%s:2: window: must be between 100ms and 5s" % path)

    def test_unknown_key(self):
        self.assertBad("[relay]\nwindow = 1s\nwindwo = 2s\n", 3, "windwo: unknown key in [relay]")

    def test_unknown_section(self):
        self.assertBad("[relay]\nwindow = 1s\n\n[relays]\nwindow = 1s\n", 4,
                       "[relays]: unknown section")

    def test_unknown_empty_section(self):
        self.assertBad("[relay]\n[bogus]\n", 2, "[bogus]: unknown section")

    def test_bad_value(self):
        self.assertBad("[relay]\nwindow = soon\n", 2,
                       "window: expected a duration such as 250ms, 1s or 2m")
        self.assertBad("[self_metrics]\nenabled = maybe\n", 2, "enabled: expected true or false")
        self.assertBad("[sockets]\nunix_mode = 666\n", 2,
                       "unix_mode: expected an octal mode such as 0660")

    def test_out_of_range(self):
        self.assertBad("[relay]\nwindow = 50ms\n", 2, "window: must be between 100ms and 5s")
        self.assertBad("[relay]\nwindow = 6s\n", 2, "window: must be between 100ms and 5s")
        self.assertBad("[limits]\nmax_datagram = 65508\n", 2,
                       "max_datagram: must be between 512 and 65507")

    def test_bad_url(self):
        self.assertBad("[relay]\nlisten = tcp://127.0.0.1:1235\n", 2,
                       "listen: tcp://127.0.0.1:1235: expected udp://HOST:PORT or unix:///PATH")
        self.assertBad("[relay]\nupstream = udp://127.0.0.1\n", 2,
                       "upstream: udp://127.0.0.1: expected udp://HOST:PORT")
        self.assertBad("[relay]\nlisten = unix://relative/path\n", 2,
                       "listen: unix://relative/path: the path must be absolute (three slashes)")
        self.assertBad("[relay]\nlisten = udp://127.0.0.1:99999\n", 2,
                       "listen: udp://127.0.0.1:99999: port must be a number from 0 to 65535")

    def test_upstream_that_is_a_listen_address(self):
        # The line of the upstream, whichever key comes first.
        self.assertBad("[relay]\nlisten = udp://127.0.0.1:1235 unix:///tmp/r.unix\n"
                       "upstream = unix:///tmp/r.unix\n", 3,
                       "upstream: unix:///tmp/r.unix is also a listen address")
        self.assertBad("[relay]\nupstream = udp://127.0.0.1:1235\n; between\n"
                       "listen = udp://127.0.0.1:1235\n", 2,
                       "upstream: udp://127.0.0.1:1235 is also a listen address")
        # The default upstream: the listen line that names it.
        self.assertBad("[relay]\nlisten = udp://127.0.0.1:1235\nlisten = "
                       "unix:///run/spectatord/spectatord.unix\n", 3,
                       "listen: unix:///run/spectatord/spectatord.unix is also the upstream")
        code, _, err, _ = self.check("[relay]\nlisten = udp://127.0.0.1:1235\n"
                                     "upstream = udp://127.0.0.1:1236\n")
        self.assertEqual(code, 0, err)

    def test_nul_byte(self):
        self.assertBad("[relay]\nwindow = 1s\n[limits]\nmax_series = 1\0 0\n", 4,
                       "max_series: contains a NUL byte")
        self.assertBad("[relay]\n; a comment\0\nwindow = 1s\n", 2, "contains a NUL byte")

    def test_unknown_group(self):
        """--check-config, start and reload agree: a group that does not
        exist is refused where it is written (ReloadTest checks reload)."""
        self.assertBad("[relay]\nwindow = 1s\n[sockets]\nunix_group = no-such-group-here\n", 4,
                       "unix_group: unknown group no-such-group-here")
        self.assertBad("[admin]\ngroup = no-such-group-here\n", 2,
                       "group: unknown group no-such-group-here")
        code, out, err, _ = self.check("[sockets]\nunix_group = daemon\n[admin]\ngroup = daemon\n",
                                       option="--print-config")
        self.assertEqual(code, 0, err)
        self.assertIn("unix_group = daemon\n", out)

    def test_admin_socket_is_an_absolute_path_or_empty(self):
        for value in ("+5", "udp://localhost:1235", "admin.sock", "./admin.sock"):
            self.assertBad("[admin]\nsocket = %s\n" % value, 2,
                           "socket: must be an absolute path, or empty to disable the admin socket")
        self.assertBad("[admin]\nsocket = /%s\n" % ("x" * 107), 2, "socket: longer than 107 bytes")
        for value in ("", "/run/x/admin.sock"):
            code, _, err, _ = self.check("[admin]\nsocket = %s\n" % value)
            self.assertEqual(code, 0, err)

    def test_set_twice(self):
        self.assertBad("[relay]\nwindow = 1s\nwindow = 2s\n", 3, "window: set twice")

    def test_syntax_error(self):
        self.assertBad("[relay]\nwindow 1s\n", 2, "syntax error: expected [section] or key = value")

    def test_missing_file(self):
        code, _, err, _ = self.check("")
        self.assertEqual(code, 0)
        proc = subprocess.run([RELAY_BIN, "--check-config", "--config",
                               os.path.join(self.tmp, "nope.ini")],
                              capture_output=True, text=True, timeout=20)
        self.assertEqual(proc.returncode, 1)
        self.assertIn("nope.ini: No such file or directory", proc.stderr)

    def test_startup_reports_the_same_error(self):
        path = os.path.join(self.tmp, "relay.ini")
        with open(path, "w") as f:
            f.write("[limits]\nmax_series = 0\n")
        proc = subprocess.run([RELAY_BIN, "--config", path], capture_output=True, text=True,
                              timeout=20)
        self.assertEqual(proc.returncode, 1)
        self.assertEqual(proc.stderr.strip(),
                         "%s:2: max_series: must be between 1 and 100000000" % path)

    def test_usage(self):
        proc = subprocess.run([RELAY_BIN, "--bogus"], capture_output=True, text=True, timeout=20)
        self.assertEqual(proc.returncode, 2)
        self.assertIn("usage: spectator-relay", proc.stderr)
        proc = subprocess.run([RELAY_BIN, "--version"], capture_output=True, text=True,
                              timeout=20)
        self.assertEqual(proc.returncode, 0)
        self.assertRegex(proc.stdout, r"^spectator-relay \d+\.\d+\.\d+\n$")


if __name__ == "__main__":
    unittest.main()
