"""SIGHUP and the `reload` command: what can change at runtime changes,
without losing the open window's merged state or the age-gauge set; a bad
file keeps the old configuration and says why."""

import os
import signal
import socket
import unittest

from relaytest import PORT_ATTEMPTS, RelayTestCase, free_udp_port, port_taken, wait_until


class ReloadTest(RelayTestCase):

    def test_reload_keeps_the_open_window(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"relay": {"window": "5s"}})
        relay.send_udp("c:kept:1\nc:kept:2\nm:kept.max:9\ng,60:kept.g:1")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 4, message="read")
        relay.rewrite(relay={"window": "4s"}, limits={"max_series": "5000"})
        relay.signal(signal.SIGHUP)
        wait_until(lambda: relay.admin("stats")["reload"]["ok"] == 1, message="SIGHUP reload")
        relay.send_udp("c:kept:4\nm:kept.max:3\ng:kept.g:2")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 7, message="read")
        self.assertEqual(relay.admin("stats")["windows"]["flushed"], 0)  # nothing closed yet
        self.assertEqual(relay.admin("flush")["delivered"], True)
        up.settle()
        self.assertEqual(sorted(up.snapshot()), ["c:kept:7", "g,60:kept.g:2", "m:kept.max:9"])
        cfg = relay.admin("config")
        self.assertEqual(cfg["relay"]["window"], "4s")
        self.assertEqual(cfg["limits"]["max_series"], 5000)
        self.assertIn("relay.window", relay.admin("stats")["reload"]["last"])
        self.assertExit0(relay)

    def test_bad_file_keeps_the_old_configuration(self):
        up = self.fake("unix")
        relay = self.relay(up)
        relay.rewrite(relay={"window": "forever"})
        with open(relay.config_path) as f:
            line = f.read().splitlines().index("window = forever") + 1
        reply = relay.admin("reload")
        want = "%s:%d: window: expected a duration such as 250ms, 1s or 2m" % (
            relay.config_path, line)
        self.assertEqual(reply, {"error": want})
        relay.signal(signal.SIGHUP)
        stats = wait_until(lambda: (lambda s: s if s["reload"]["failed"] == 2 else None)(
            relay.admin("stats")), message="two failed reloads")
        self.assertEqual(stats["reload"]["ok"], 0)
        self.assertEqual(stats["reload"]["last"], "failed: " + want)
        self.assertIn('event=reload_failed error="%s"' % want, relay.log())
        self.assertEqual(relay.admin("config")["relay"]["window"], "200ms")
        relay.send_udp("c:still.running:1")
        wait_until(lambda: up.count() == 1, message="forwarding after a bad reload")
        self.assertExit0(relay)

    def test_unknown_group_is_refused_as_check_config_refuses_it(self):
        """A reload that would pass and leave a relay that cannot start
        again is refused, with the line of the key."""
        up = self.fake("unix")
        relay = self.relay(up)
        for section, key in (("sockets", "unix_group"), ("admin", "group")):
            relay.rewrite(**{section: {key: "no-such-group-here"}})
            with open(relay.config_path) as f:
                line = f.read().splitlines().index("%s = no-such-group-here" % key) + 1
            want = "%s:%d: %s: unknown group no-such-group-here" % (relay.config_path, line, key)
            self.assertEqual(relay.admin("reload"), {"error": want})
        stats = relay.admin("stats")
        self.assertEqual((stats["reload"]["ok"], stats["reload"]["failed"]), (0, 2))
        self.assertExit0(relay)

    def test_mode_change_never_follows_a_swapped_path(self):
        """Whoever can write the socket's directory can put a symlink where
        the socket was; a reload that changes unix_mode or unix_group then
        changes nothing and says so, instead of changing what it points to."""
        up = self.fake("unix")
        relay = self.relay(up, config={"sockets": {"unix_mode": "0620"}})
        relay.rewrite(sockets={"unix_mode": "0640"})
        self.assertNotIn("problems", relay.admin("reload")["message"])
        self.assertEqual(os.lstat(relay.unix_path).st_mode & 0o7777, 0o640)  # its own: changed

        victim = os.path.join(self.tmp, "victim")
        with open(victim, "w"):
            pass
        os.chmod(victim, 0o600)
        victim_gid = os.stat(victim).st_gid
        os.rename(relay.unix_path, relay.unix_path + ".moved")
        os.symlink(victim, relay.unix_path)
        relay.rewrite(sockets={"unix_mode": "0646", "unix_group": "daemon"})
        reply = relay.admin("reload")
        self.assertEqual(os.stat(victim).st_mode & 0o7777, 0o600)
        self.assertEqual(os.stat(victim).st_gid, victim_gid)
        self.assertIn("problems: %s is no longer the socket the relay bound" % relay.unix_path,
                      reply["message"])
        self.assertIn("event=socket_mode_failed listener=unix://%s" % relay.unix_path,
                      relay.log())

        # Another socket at the path (not a symlink) is not the relay's either.
        os.unlink(relay.unix_path)
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as other:
            other.bind(relay.unix_path)
            os.chmod(relay.unix_path, 0o600)
            relay.rewrite(sockets={"unix_mode": "0666"})
            self.assertIn("no longer the socket", relay.admin("reload")["message"])
            self.assertEqual(os.lstat(relay.unix_path).st_mode & 0o7777, 0o600)
        os.unlink(relay.unix_path)
        self.assertExit0(relay)

    def test_listeners_open_and_close_on_reload(self):
        up = self.fake("unix")
        relay = self.relay(up)
        new_path = os.path.join(self.tmp, "second.unix")
        # The relay binds the new port itself: one another process took
        # first is tried again with another.
        for _ in range(PORT_ATTEMPTS):
            new_port = free_udp_port()
            relay.rewrite(relay={"listen": "udp://127.0.0.1:%d unix://%s" % (new_port, new_path)})
            reply = relay.admin("reload")
            if not port_taken(reply["message"], new_port):
                break
        self.assertTrue(reply["ok"], reply)
        self.assertIn("relay.listen", reply["message"])
        urls = sorted(l["url"] for l in relay.admin("stats")["listeners"])
        self.assertEqual(urls, sorted(["udp://127.0.0.1:%d" % new_port, "unix://" + new_path]))
        self.assertFalse(os.path.exists(relay.unix_path))  # the removed one is gone
        relay.send_udp("c:new.port:1", port=new_port)
        relay.send_unix("c:new.path:1", path=new_path)
        wait_until(lambda: up.count() >= 2, message="traffic on the new listeners")
        # A listener that cannot be opened is reported, the rest applies.
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as busy:
            busy.bind(("127.0.0.1", 0))
            busy_port = busy.getsockname()[1]
            relay.rewrite(relay={"listen": "udp://127.0.0.1:%d udp://127.0.0.1:%d" % (
                new_port, busy_port)}, log={"level": "debug"})
            reply = relay.admin("reload")
        self.assertIn("problems: cannot bind udp://127.0.0.1:%d" % busy_port, reply["message"])
        self.assertEqual(relay.admin("config")["relay"]["listen"],
                         ["udp://127.0.0.1:%d" % new_port])
        self.assertEqual(relay.admin("config")["log"]["level"], "debug")
        self.assertExit0(relay)

    def test_restart_only_keys_are_reported_not_applied(self):
        up = self.fake("unix")
        relay = self.relay(up)
        relay.rewrite(admin={"mode": "0600"})
        reply = relay.admin("reload")
        self.assertIn("changed: nothing; restart required for: admin.mode", reply["message"])
        self.assertEqual(relay.admin("config")["admin"]["mode"], "0666")
        self.assertExit0(relay)

    def test_upstream_changes_on_reload(self):
        first = self.fake("unix", name="first.unix")
        second = self.fake("unix", name="second.unix")
        relay = self.relay(first)
        relay.send_udp("c:before:1")
        wait_until(lambda: first.count() == 1, message="first upstream")
        relay.rewrite(relay={"upstream": second.url})
        self.assertTrue(relay.admin("reload")["ok"])
        relay.send_udp("c:after:1")
        wait_until(lambda: second.count() == 1, message="second upstream")
        self.assertExit0(relay)
        self.assertEqual(first.snapshot(), ["c:before:1"])
        self.assertEqual(second.snapshot(), ["c:after:1"])

    def test_age_gauge_limit_holds_across_reload(self):
        up = self.fake("unix")
        relay = self.relay(up, config={"limits": {"age_gauge_limit": "2"}})
        relay.send_udp("A:age.a:1\nA:age.b:1\nA:age.c:1")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 3, message="read")
        self.assertEqual(relay.admin("stats")["rejected"]["by_reason"]["age-gauge-limit"], 1)
        relay.rewrite(limits={"age_gauge_limit": "2", "max_series": "1000"})
        self.assertTrue(relay.admin("reload")["ok"])
        relay.send_udp("A:age.c:2\nA:age.a:2")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 5, message="read")
        stats = relay.admin("stats")
        self.assertEqual(stats["rejected"]["by_reason"]["age-gauge-limit"], 2)
        self.assertEqual(stats["series"]["age_gauges"], 2)
        self.assertEqual(sorted(relay.admin("age-gauges")["ids"]), ["age.a", "age.b"])
        # Freeing a slot lets a new id in.
        self.assertEqual(relay.admin("forget-age-gauge age.b")["count"], 1)
        relay.send_udp("A:age.c:3")
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == 6, message="read")
        self.assertEqual(sorted(relay.admin("age-gauges")["ids"]), ["age.a", "age.c"])
        self.assertEqual(relay.admin("forget-age-gauges")["forgotten"], 2)
        self.assertEqual(relay.admin("age-gauges")["count"], 0)
        self.assertExit0(relay)

    def test_shrinking_max_datagram_recuts_what_is_held(self):
        # SpectatorD stops reading while X lines queue up in 60 KiB
        # datagrams; a reload then lowers max_datagram to 512. What the
        # relay still holds goes out in 512-byte datagrams; only what the
        # kernel had already taken (net.unix.max_dgram_qlen of them) may be
        # larger. Every line arrives once.
        up = self.fake("unix", rcvbuf=1 << 18)
        relay = self.relay(up, config={"relay": {"window": "100ms"}})
        up.pause()
        n = 60000
        for start in range(0, n, 100):
            relay.send_unix("\n".join("X,1543160297100:held,i=%d:%d" % (i, i)
                                      for i in range(start, start + 100)))
        wait_until(lambda: relay.admin("stats")["received"]["lines"] == n, message="read")
        wait_until(lambda: relay.admin("stats")["upstream"]["pending_lines"] > n / 2,
                   message="lines held for the paused upstream")
        relay.rewrite(limits={"max_datagram": "512"})
        self.assertTrue(relay.admin("reload")["ok"])
        up.resume()
        wait_until(lambda: up.count() == n, message="every held line")
        self.assertExit0(relay)
        with open("/proc/sys/net/unix/max_dgram_qlen") as f:
            qlen = int(f.read())
        big = [len(d) for d in up.datagrams if len(d) > 512]
        # The kernel queues a unix datagram while fewer than qlen + 1 wait.
        self.assertLessEqual(len(big), qlen + 1, big)
        self.assertEqual(sorted(int(l.rsplit(":", 1)[1]) for l in up.snapshot()),
                         list(range(n)))


if __name__ == "__main__":
    unittest.main()
