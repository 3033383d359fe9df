"""The Debian package, as `make deb` builds it.

CPack runs on this build directory (what `make deb` does after building),
writing into a temporary directory. The package must hold exactly what
`cmake --install` installs and docs/operations.md lists, with the right
owners and modes, dependencies for every library the binary links, the
configuration as a conffile, and maintainer scripts that parse.

As root, the package is also installed with `dpkg -i`, checked in place
(the files, the binary, the configuration, systemd-analyze on the installed
units, the system user it creates), and purged, leaving the machine as it
was but for that user, which the package keeps as Debian packages do; the
test then removes it if it was not there before. That part is skipped when
not root, when a spectator-relay package is already installed (it is not
ours to replace), or with RELAY_TEST_NO_DPKG=1. What needs a running
systemd is in tests/systemd (make test-systemd).
"""

import grp
import os
import pwd
import re
import shutil
import tempfile
import unittest

from opsutil import (BUILD_DIR, CONFIG, CPACK, INSTALLED_FILES, RELAYCTL_BUILT, RELAYCTL_FILES,
                     SERVICE, SOCKET, SOURCE_DIR, Staged, Unit, run, tool)

PACKAGE = "spectator-relay"
USER = "spectator-relay"  # User= and Group= of the service; postinst creates both


def doc_paths():
    """The paths in the first table of docs/operations.md's "What is
    installed where", relative to the root."""
    with open(os.path.join(SOURCE_DIR, "docs", "operations.md")) as f:
        text = f.read()
    section = re.search(r"^## What is installed where\n(.*?)(?=^## )", text, flags=re.M | re.S)
    assert section, "docs/operations.md has no 'What is installed where' section"
    table = re.search(r"^\|.*?(?=\n\n)", section.group(1), flags=re.M | re.S).group(0)
    return {p.lstrip("/") for p in re.findall(r"^\| `(/[^`]+)`", table, flags=re.M)}


def user_exists(name):
    try:
        pwd.getpwnam(name)
        return True
    except KeyError:
        return False


def remove_user(name):
    """Undoes what the package's postinst did on a machine that had no such
    user: the test's cleanup, not the package's (which keeps it)."""
    run(["userdel", name], check=False)
    try:
        grp.getgrnam(name)
        run(["groupdel", name], check=False)
    except KeyError:
        pass


def installed_status(name):
    proc = run(["dpkg-query", "-W", "-f=${Status}", name], check=False)
    return proc.stdout.strip() if proc.returncode == 0 else ""


class DebTest(unittest.TestCase):

    @classmethod
    def setUpClass(cls):
        cls.out = tempfile.mkdtemp(prefix="relay-deb-")
        run([CPACK, "-G", "DEB", "--config", os.path.join(BUILD_DIR, "CPackConfig.cmake"),
             "-B", cls.out], cwd=BUILD_DIR, timeout=600)
        debs = [f for f in os.listdir(cls.out) if f.endswith(".deb")]
        assert len(debs) == 1, debs
        cls.deb = os.path.join(cls.out, debs[0])
        arch = run([tool("dpkg"), "--print-architecture"]).stdout.strip()
        version = run(["sed", "-n", "s/^project(spectator-relay VERSION \\([^ ]*\\) .*/\\1/p",
                       os.path.join(SOURCE_DIR, "CMakeLists.txt")]).stdout.strip()
        cls.expected_name = "%s_%s-1_%s.deb" % (PACKAGE, version, arch)
        cls.version = version
        # What dpkg-deb -c lists: {path: (mode string, owner/group)} for files.
        cls.contents = {}
        for line in run([tool("dpkg-deb"), "-c", cls.deb]).stdout.splitlines():
            fields = line.split(None, 5)
            mode, owner, path = fields[0], fields[1], fields[5]
            if mode.startswith("-"):
                cls.contents[path[2:] if path.startswith("./") else path] = (mode, owner)
        cls.control = tempfile.mkdtemp(prefix="relay-deb-control-")
        run([tool("dpkg-deb"), "-e", cls.deb, cls.control])
        cls.extracted = tempfile.mkdtemp(prefix="relay-deb-files-")
        run([tool("dpkg-deb"), "-x", cls.deb, cls.extracted])

    @classmethod
    def tearDownClass(cls):
        for d in (cls.out, cls.control, cls.extracted):
            shutil.rmtree(d, ignore_errors=True)

    def field(self, name):
        return run([tool("dpkg-deb"), "-f", self.deb, name]).stdout.strip()

    # The archive -----------------------------------------------------------

    def test_file_name_and_fields(self):
        self.assertEqual(os.path.basename(self.deb), self.expected_name)
        self.assertEqual(self.field("Package"), PACKAGE)
        self.assertEqual(self.field("Version"), self.version + "-1")
        self.assertTrue(self.field("Maintainer"))
        self.assertTrue(self.field("Description"))

    def test_files_land_where_the_docs_say(self):
        files = set(self.contents)
        self.assertEqual(files, INSTALLED_FILES)
        documented = doc_paths()
        # The admin client is documented before it is built in every tree.
        expected_docs = files | (set() if RELAYCTL_BUILT else RELAYCTL_FILES)
        self.assertEqual(documented, expected_docs)

    def test_package_holds_what_make_install_installs(self):
        staged = Staged()
        try:
            self.assertEqual(set(self.contents), staged.files)
            for rel in (SERVICE, SOCKET, CONFIG):
                with open(os.path.join(self.extracted, rel)) as f:
                    self.assertEqual(f.read(), staged.read(rel), rel)
        finally:
            staged.remove()

    def test_owners_and_modes(self):
        for path, (mode, owner) in self.contents.items():
            self.assertEqual(owner, "root/root", path)
            want = "-rwxr-xr-x" if "/sbin/" in path or "/bin/" in path else "-rw-r--r--"
            self.assertEqual(mode, want, path)

    def test_units_name_the_packaged_binary(self):
        unit = Unit.read(os.path.join(self.extracted, SERVICE))
        self.assertEqual(unit.value("Service", "ExecStart").split()[0], "/usr/sbin/spectator-relay")
        self.assertIn("usr/sbin/spectator-relay", self.contents)

    def test_depends_on_every_library_the_binaries_link(self):
        depends = {d.strip().split()[0] for d in self.field("Depends").split(",")}
        for lib in ("libc6", "libuv1", "libinih1", "libsystemd0"):
            self.assertIn(lib, depends)
        # postinst runs adduser; xxHash is compiled in, so no libxxhash0.
        self.assertIn("adduser", depends)
        self.assertNotIn("libxxhash0", depends)
        # Every NEEDED library's package, whatever else gets linked later.
        for rel in self.contents:
            if not re.match(r"usr/s?bin/", rel):
                continue
            dyn = run([tool("readelf"), "-d", os.path.join(self.extracted, rel)]).stdout
            for soname in re.findall(r"\(NEEDED\).*\[(.+)\]", dyn):
                owners = set()
                for line in run(["dpkg", "-S", "*/" + soname]).stdout.splitlines():
                    if not line.startswith("diversion "):
                        owners |= {p.split(":")[0] for p in line.split(": ")[0].split(", ")}
                self.assertTrue(owners & depends, "%s needs %s from %s" % (rel, soname, owners))

    def test_configuration_is_a_conffile(self):
        with open(os.path.join(self.control, "conffiles")) as f:
            self.assertEqual(f.read().split(), ["/" + CONFIG])

    def test_maintainer_scripts_parse(self):
        for name in ("postinst", "prerm", "postrm"):
            path = os.path.join(self.control, name)
            self.assertTrue(os.access(path, os.X_OK), name)
            run(["sh", "-n", path])
            with open(path) as f:
                text = f.read()
            # systemctl only talks to a running systemd.
            for line in text.splitlines():
                if "systemctl" in line and "daemon-reload" in line:
                    self.assertIn("/run/systemd/system", text, name)

    # Installed for real ----------------------------------------------------

    def test_dpkg_install_and_purge(self):
        if os.geteuid() != 0:
            self.skipTest("dpkg -i needs root")
        if os.environ.get("RELAY_TEST_NO_DPKG") == "1":
            self.skipTest("RELAY_TEST_NO_DPKG=1")
        if installed_status(PACKAGE) not in ("", "unknown ok not-installed",
                                             "deinstall ok config-files"):
            self.skipTest("a %s package is already installed; not replacing it" % PACKAGE)
        dpkg = tool("dpkg")
        user_before = user_exists(USER)
        try:
            run([dpkg, "-i", self.deb])
            self.assertEqual(installed_status(PACKAGE), "install ok installed")
            # The service's user: a system account of its own group, no login.
            pw = pwd.getpwnam(USER)
            self.assertLess(pw.pw_uid, 1000)
            self.assertEqual(grp.getgrgid(pw.pw_gid).gr_name, USER)
            self.assertEqual(pw.pw_dir, "/nonexistent")
            self.assertFalse(os.path.exists(pw.pw_dir))
            self.assertEqual(pw.pw_shell, "/usr/sbin/nologin")
            service = Unit.read("/" + SERVICE)
            self.assertEqual((service.value("Service", "User"), service.value("Service", "Group")),
                             (USER, USER))
            # A second configure (a reinstall) keeps the same user.
            run([dpkg, "-i", self.deb])
            self.assertEqual(pwd.getpwnam(USER).pw_uid, pw.pw_uid)
            listed = set(run([dpkg, "-L", PACKAGE]).stdout.split())
            for rel in self.contents:
                self.assertIn("/" + rel, listed)
                self.assertTrue(os.path.isfile("/" + rel), rel)
            out = run(["/usr/sbin/spectator-relay", "--version"]).stdout
            self.assertIn(self.version, out)
            run(["/usr/sbin/spectator-relay", "--check-config", "--config", "/" + CONFIG])
            argv = [tool("systemd-analyze"), "verify"]
            if not RELAYCTL_BUILT:
                argv.append("--man=no")
            proc = run(argv + ["/" + SERVICE, "/" + SOCKET], check=False)
            self.assertEqual((proc.returncode, proc.stdout + proc.stderr), (0, ""))
            self.assertTrue(run(["man", "-w", "8", "spectator-relay"]).stdout.strip())
        finally:
            run([dpkg, "--purge", PACKAGE], check=False)
            purged_user_kept = user_exists(USER)
            if not user_before:
                remove_user(USER)
        self.assertIn(installed_status(PACKAGE), ("", "unknown ok not-installed"))
        for rel in self.contents:
            self.assertFalse(os.path.exists("/" + rel), rel)
        self.assertFalse(os.path.exists("/etc/spectator-relay"))
        self.assertFalse(os.path.exists("/usr/share/doc/spectator-relay"))
        self.assertTrue(purged_user_kept, "the purge removed the system user")


if __name__ == "__main__":
    unittest.main()
