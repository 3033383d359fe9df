"""Shared by the tests of the operations surface: where things are, a staged
`cmake --install`, and a reader for systemd unit files.

Everything is written below temporary directories; nothing here touches the
running system. The environment comes from tests/ops/CMakeLists.txt.
"""

import os
import re
import shutil
import subprocess
import sys
import tempfile

SOURCE_DIR = os.environ.get("RELAY_SOURCE_DIR",
                            os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..")))

# wait_until and SLOW live in tests/waiting.py, shared with the other harnesses.
sys.path.insert(0, os.path.join(SOURCE_DIR, "tests"))
from waiting import SLOW, wait_until  # noqa: E402,F401 - re-exported for the tests
BUILD_DIR = os.environ.get("RELAY_BUILD_DIR", os.path.join(SOURCE_DIR, "build"))
RELAY_BIN = os.environ.get("RELAY_BIN", os.path.join(BUILD_DIR, "spectator-relay"))
CMAKE = os.environ.get("CMAKE_COMMAND", "cmake")
CPACK = os.environ.get("CPACK_COMMAND", "cpack")
# Whether this build has the admin client (a second target, built elsewhere).
RELAYCTL_BUILT = os.environ.get("RELAYCTL_BUILT", "0") == "1"

# The files the install rules put down, relative to the root, for prefix /usr.
# docs/operations.md lists the same (test_deb checks the package against both).
RELAYCTL_FILES = {
    "usr/bin/spectator-relayctl",
    "usr/share/man/man1/spectator-relayctl.1.gz",
}
INSTALLED_FILES = {
    "usr/sbin/spectator-relay",
    "etc/spectator-relay/relay.ini",
    "usr/lib/systemd/system/spectator-relay.service",
    "usr/lib/systemd/system/spectator-relay.socket",
    "usr/share/man/man8/spectator-relay.8.gz",
    "usr/share/doc/spectator-relay/README.md",
    "usr/share/doc/spectator-relay/operations.md",
    "usr/share/doc/spectator-relay/configuration.md",
    "usr/share/doc/spectator-relay/admin.md",
    "usr/share/doc/spectator-relay/examples/relay.ini",
} | (RELAYCTL_FILES if RELAYCTL_BUILT else set())

SERVICE = "usr/lib/systemd/system/spectator-relay.service"
SOCKET = "usr/lib/systemd/system/spectator-relay.socket"
CONFIG = "etc/spectator-relay/relay.ini"


def run(argv, check=True, **kw):
    """Runs argv and returns the CompletedProcess (text); on failure with
    check, raises AssertionError with everything it printed."""
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("timeout", 300)
    proc = subprocess.run(argv, text=True, **kw)
    if check and proc.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr))
    return proc


def tool(name):
    """The path of a program the tests need; a clear failure if it is missing
    (.ci/install-deps installs them all)."""
    path = shutil.which(name)
    if not path:
        raise AssertionError("%s not found: run .ci/install-deps" % name)
    return path


def stage_install(root):
    """`cmake --install` of this build into root (DESTDIR) with prefix /usr,
    as the package is built. Returns the installed files, relative to root."""
    env = dict(os.environ, DESTDIR=root)
    run([CMAKE, "--install", BUILD_DIR, "--prefix", "/usr"], env=env)
    found = set()
    for dirpath, _, files in os.walk(root):
        for f in files:
            found.add(os.path.relpath(os.path.join(dirpath, f), root))
    return found


class Staged:
    """A temporary root with this build installed in it; remove() deletes it."""

    def __init__(self):
        self.root = tempfile.mkdtemp(prefix="relay-ops-")
        self.files = stage_install(self.root)

    def path(self, rel):
        return os.path.join(self.root, rel)

    def read(self, rel):
        with open(self.path(rel)) as f:
            return f.read()

    def remove(self):
        shutil.rmtree(self.root, ignore_errors=True)


class Unit:
    """A systemd unit file: its directives in order, as (section, key, value,
    line number), and for each one whether a comment explains it. A directive
    counts as commented when the block of directive lines it belongs to (no
    blank line or comment between them) starts right below a comment line."""

    def __init__(self, text):
        self.entries = []
        self.uncommented = []
        section = None
        prev = "blank"          # what the previous line was: blank, comment, directive
        block_commented = False
        for n, raw in enumerate(text.splitlines(), 1):
            line = raw.strip()
            if not line:
                prev = "blank"
                continue
            if line[0] in "#;":
                prev = "comment"
                continue
            if line.startswith("["):
                section = line.strip("[]")
                prev = "blank"
                continue
            key, sep, value = line.partition("=")
            if not sep:
                raise AssertionError("line %d is not key=value: %r" % (n, raw))
            if prev != "directive":
                block_commented = prev == "comment"
            prev = "directive"
            entry = (section, key.strip(), value.strip(), n)
            self.entries.append(entry)
            if not block_commented:
                self.uncommented.append(entry)

    @classmethod
    def read(cls, path):
        with open(path) as f:
            return cls(f.read())

    def values(self, section, key):
        """Every value of key in section, in order (settings may repeat)."""
        return [v for s, k, v, _ in self.entries if s == section and k == key]

    def value(self, section, key):
        """The last value of key in section, or None."""
        vals = self.values(section, key)
        return vals[-1] if vals else None


def listen_to_unit_addresses(listen):
    """The relay's listen URLs as the socket unit writes them:
    udp://127.0.0.1:1235 -> 127.0.0.1:1235, unix:///run/x -> /run/x."""
    out = []
    for url in re.split(r"[\s,]+", listen.strip()):
        if url.startswith("udp://"):
            out.append(url[len("udp://"):])
        elif url.startswith("unix://"):
            out.append(url[len("unix://"):])
        elif url:
            raise AssertionError("unexpected listen URL %r" % url)
    return out


def effective_config(config_path):
    """`spectator-relay --print-config` of a file, as {(section, key): value}."""
    out = run([RELAY_BIN, "--print-config", "--config", config_path]).stdout
    cfg, section = {}, None
    for line in out.splitlines():
        line = line.strip()
        if not line or line.startswith(";"):
            continue
        if line.startswith("["):
            section = line.strip("[]")
            continue
        key, _, value = line.partition("=")
        cfg[(section, key.strip())] = value.strip()
    return cfg
