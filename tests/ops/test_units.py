"""The systemd units, the install rules and the man pages.

The units are checked as `cmake --install` writes them (into a temporary
root, prefix /usr, as in the package): systemd-analyze accepts them, their
hardening keeps its exposure score, every setting says why it is there, they
name the paths the install put things at, and the socket unit listens where
the relay's configuration says the relay listens. No running systemd is
needed: systemd-analyze verify loads the units into a manager of its own.
"""

import os
import re
import shutil
import stat
import tempfile
import unittest

from opsutil import (CONFIG, INSTALLED_FILES, RELAY_BIN, RELAYCTL_BUILT, SERVICE, SOCKET,
                     SOURCE_DIR, Staged, Unit, effective_config, listen_to_unit_addresses, run,
                     stage_install, tool)

# Settings the issue and docs/style.md (habit 20) require, as exact values.
REQUIRED_SERVICE = {
    "Type": "notify",
    "Restart": "on-failure",
    # A static system user, which the package creates: with DynamicUser=,
    # systemd moves a preserved runtime directory below /run/private (0700),
    # out of every client's reach. Its implied hardening is set explicitly.
    "User": "spectator-relay",
    "Group": "spectator-relay",
    "RuntimeDirectory": "spectator-relay",
    "RuntimeDirectoryMode": "0755",
    "RuntimeDirectoryPreserve": "yes",
    "ConfigurationDirectory": "spectator-relay",
    "ProtectSystem": "strict",
    "ProtectHome": "yes",
    "PrivateTmp": "yes",
    "NoNewPrivileges": "yes",
    "RestrictSUIDSGID": "yes",
    "RemoveIPC": "yes",
    "RestrictAddressFamilies": "AF_UNIX AF_INET AF_INET6",
    "MemoryDenyWriteExecute": "yes",
    "LockPersonality": "yes",
}
# SpectatorD's own addresses, which the relay must never take.
SPECTATORD_UDP_PORT = "1234"
SPECTATORD_SOCKET = "/run/spectatord/spectatord.unix"


def section_text(man, name):
    """The roff source of one .SH section of a man page."""
    found = re.search(r'^\.SH "?%s"?\n(.*?)(?=^\.SH |\Z)' % re.escape(name), man,
                      flags=re.M | re.S)
    if not found:
        raise AssertionError("no %s section" % name)
    return found.group(1)


class UnitsTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.staged = Staged()
        cls.service = Unit.read(cls.staged.path(SERVICE))
        cls.socket = Unit.read(cls.staged.path(SOCKET))
        # The units with their binary paths pointing into the staged root, so
        # that systemd-analyze finds the executables it checks for.
        cls.unitdir = tempfile.mkdtemp(prefix="relay-units-")
        for rel in (SERVICE, SOCKET):
            text = cls.staged.read(rel)
            text = re.sub(r"^(Exec\w*=[-@:+!]*)/usr/", r"\1%s/usr/" % cls.staged.root, text,
                          flags=re.M)
            with open(os.path.join(cls.unitdir, os.path.basename(rel)), "w") as f:
                f.write(text)

    @classmethod
    def tearDownClass(cls):
        cls.staged.remove()
        shutil.rmtree(cls.unitdir, ignore_errors=True)

    def unit_copy(self, name):
        return os.path.join(self.unitdir, name)

    # Install layout --------------------------------------------------------

    def test_install_puts_every_file_in_its_place(self):
        self.assertEqual(self.staged.files, INSTALLED_FILES)
        mode = lambda rel: stat.S_IMODE(os.stat(self.staged.path(rel)).st_mode)
        self.assertEqual(mode("usr/sbin/spectator-relay"), 0o755)
        # The relay runs as its own user and must be able to read its file.
        self.assertEqual(mode(CONFIG), 0o644)
        # The docs' copy is the same sample as the one in /etc.
        self.assertEqual(self.staged.read(CONFIG),
                         self.staged.read("usr/share/doc/spectator-relay/examples/relay.ini"))

    def test_install_keeps_an_existing_configuration(self):
        path = self.staged.path(CONFIG)
        with open(path, "w") as f:
            f.write("[log]\nlevel = debug\n")
        try:
            stage_install(self.staged.root)
            with open(path) as f:
                self.assertEqual(f.read(), "[log]\nlevel = debug\n")
        finally:
            os.unlink(path)
            stage_install(self.staged.root)

    # systemd's own checks --------------------------------------------------

    def test_systemd_analyze_verify_accepts_both_units(self):
        argv = [tool("systemd-analyze"), "verify"]
        # Documentation= names both man pages; man finds them in the staged
        # root only when both were installed.
        if not RELAYCTL_BUILT:
            argv.append("--man=no")
        argv += [self.unit_copy("spectator-relay.service"), self.unit_copy("spectator-relay.socket")]
        env = dict(os.environ, MANPATH=self.staged.path("usr/share/man"))
        proc = run(argv, check=False, env=env, cwd=self.unitdir)
        self.assertEqual((proc.returncode, proc.stdout + proc.stderr), (0, ""),
                         "systemd-analyze verify complained")

    def test_hardening_keeps_its_exposure_score(self):
        # systemd's own score, 0 (locked down) to 10; this unit scores 1.4.
        # A change that loosens the sandbox past 2.0 fails here.
        proc = run([tool("systemd-analyze"), "security", "--offline=yes", "--threshold=20",
                    "--no-pager", self.unit_copy("spectator-relay.service")], check=False)
        score = re.search(r"Overall exposure level for \S+: ([0-9.]+)", proc.stdout)
        self.assertIsNotNone(score, proc.stdout + proc.stderr)
        self.assertEqual(proc.returncode, 0, "exposure %s > 2.0\n%s" % (score.group(1), proc.stdout))

    # What the issue and the style guide ask of the units ---------------------

    def test_service_has_the_required_settings(self):
        for key, want in REQUIRED_SERVICE.items():
            self.assertEqual(self.service.value("Service", key), want, key)
        self.assertIn("@system-service", self.service.values("Service", "SystemCallFilter"))
        self.assertTrue(self.service.value("Service", "WatchdogSec"))
        self.assertIsNone(self.service.value("Service", "DynamicUser"))
        pre = self.service.values("Service", "ExecStartPre")
        self.assertTrue(any("--check-config" in v for v in pre), pre)
        reload = self.service.values("Service", "ExecReload")
        self.assertTrue(any("--check-config" in v for v in reload), reload)
        # The shell's kill: /bin/kill (procps) is missing from minimal systems.
        self.assertEqual(reload[-1], "/bin/sh -c 'kill -HUP \"$$MAINPID\"'")
        # Neither check lists the configuration into the journal.
        for line in pre + reload:
            self.assertNotIn("--print-config", line)
        # The relay's sockets come from the socket unit whenever it starts.
        self.assertIn("spectator-relay.socket", self.service.value("Unit", "Wants"))

    def test_every_service_and_socket_setting_says_why(self):
        for unit, section in ((self.service, "Service"), (self.socket, "Socket")):
            missing = [(k, n) for s, k, _, n in unit.uncommented if s == section]
            self.assertEqual(missing, [], "settings without a comment above their block")

    def test_units_name_the_installed_paths(self):
        sbin = "/usr/sbin/spectator-relay"
        execs = [v for key in ("ExecStartPre", "ExecStart", "ExecReload")
                 for v in self.service.values("Service", key)]
        relay_lines = [v for v in execs if "spectator-relay" in v.split()[0]]
        self.assertEqual(len(relay_lines), 3, execs)
        for line in relay_lines:
            argv = line.split()
            self.assertEqual(argv[0], sbin)
            self.assertEqual(argv[argv.index("--config") + 1], "/" + CONFIG)
        # The file the units pass is the one the binary reads by default.
        usage = run([RELAY_BIN, "--help"]).stdout
        self.assertIn("default /" + CONFIG, usage)
        self.assertEqual(self.service.value("Service", "ConfigurationDirectory"),
                         os.path.basename(os.path.dirname("/" + CONFIG)))

    def test_socket_listens_where_the_relay_is_configured_to(self):
        cfg = effective_config(self.staged.path(CONFIG))
        want = listen_to_unit_addresses(cfg[("relay", "listen")])
        got = self.socket.values("Socket", "ListenDatagram")
        self.assertEqual(got, want)
        self.assertEqual(got, ["127.0.0.1:1235", "[::1]:1235", "/run/spectator-relay/relay.unix"])
        for addr in got:
            self.assertFalse(addr.endswith(":" + SPECTATORD_UDP_PORT), addr)
            self.assertNotEqual(addr, SPECTATORD_SOCKET)
        self.assertEqual(cfg[("relay", "upstream")], "unix://" + SPECTATORD_SOCKET)
        self.assertEqual(self.socket.value("Socket", "SocketMode"), "0666")
        self.assertTrue(self.socket.value("Socket", "FileDescriptorName"))
        self.assertEqual(self.socket.value("Install", "WantedBy"), "sockets.target")

    def test_check_in_the_units_prints_nothing(self):
        argv = [RELAY_BIN, "--check-config", "--config", self.staged.path(CONFIG)]
        proc = run(argv)
        self.assertEqual((proc.stdout, proc.stderr), ("", ""))

    def test_runtime_directory_outlives_a_stop_when_it_holds_the_socket(self):
        # systemd deletes a RuntimeDirectory on stop unless told otherwise;
        # the socket unit's relay.unix lives in it and must survive.
        rundir = "/run/" + self.service.value("Service", "RuntimeDirectory") + "/"
        paths = [a for a in self.socket.values("Socket", "ListenDatagram") if a.startswith("/")]
        self.assertTrue(paths)
        for p in paths:
            self.assertTrue(p.startswith(rundir), p)
        self.assertEqual(self.service.value("Service", "RuntimeDirectoryPreserve"), "yes")
        # The admin socket lives there too, and the relay's user owns it;
        # the installed file lets every local user connect for the
        # read-only commands (docs/admin.md).
        cfg = effective_config(self.staged.path(CONFIG))
        self.assertTrue(cfg[("admin", "socket")].startswith(rundir))
        self.assertEqual(cfg[("admin", "mode")], "0666")
        self.assertEqual(self.service.value("Service", "RuntimeDirectoryMode"), "0755")

    # Man pages -------------------------------------------------------------

    def check_page(self, name):
        path = os.path.join(SOURCE_DIR, "docs", name)
        proc = run([tool("groff"), "-man", "-ww", "-z", path], check=False)
        self.assertEqual((proc.returncode, proc.stderr), (0, ""), name)
        with open(path) as f:
            text = f.read()
        sections = re.findall(r'^\.SH "?([^"\n]+)"?$', text, flags=re.M)
        return text.replace("\\-", "-"), sections

    def test_relay_man_page(self):
        text, sections = self.check_page("spectator-relay.8")
        for s in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "SIGNALS", "EXIT STATUS",
                  "FILES", "SEE ALSO"):
            self.assertIn(s, sections)
        usage = run([RELAY_BIN, "--help"]).stdout
        options = section_text(text, "OPTIONS")
        for opt in set(re.findall(r"--[a-z][a-z-]+", usage)):
            self.assertTrue(opt in options, "%s is in --help but not in OPTIONS" % opt)
        signals = section_text(text, "SIGNALS")
        for sig in ("SIGHUP", "SIGTERM", "SIGINT", "SIGPIPE"):
            self.assertTrue(re.search(r"^\.BR? .*\b%s\b" % sig, signals, flags=re.M), sig)
        exit_codes = section_text(text, "EXIT STATUS")
        self.assertEqual(re.findall(r"^\.B (\d+)$", exit_codes, flags=re.M), ["0", "1", "2"])

    def test_relayctl_man_page(self):
        text, sections = self.check_page("spectator-relayctl.1")
        for s in ("NAME", "SYNOPSIS", "DESCRIPTION", "OPTIONS", "COMMANDS", "EXIT STATUS",
                  "FILES", "SEE ALSO"):
            self.assertIn(s, sections)
        commands = section_text(text, "COMMANDS")
        for cmd in ("help", "stats", "config", "flush", "age-gauges", "forget-age-gauge",
                    "forget-age-gauges", "senders", "rejects", "reload"):
            self.assertTrue(re.search(r"^\.BI? %s( |$)" % re.escape(cmd), commands, flags=re.M),
                            cmd)
        options = section_text(text, "OPTIONS")
        for opt in ("--socket", "--config", "--json"):
            self.assertTrue(opt in options, opt)


if __name__ == "__main__":
    unittest.main()
