#!/usr/bin/env python3
"""`make test-systemd`: the Debian package under a real systemd.

The ops tests check the unit files with systemd-analyze and emulate socket
activation; neither runs systemd, so what only a running systemd does (where
it puts a runtime directory, whom it lets in, what a purge leaves behind) is
checked here. The test:

1. builds a Debian 12 root file system with debootstrap (minbase, plus
   systemd, dbus, python3 and the packages the .deb depends on), once, and
   keeps it in CACHE (/var/cache/spectator-relay-test, or
   RELAY_TEST_CACHE); a new dependency builds a new one, and
   `rm -rf /var/cache/spectator-relay-test` clears it;
2. boots it with systemd-nspawn: read-only below a throw-away overlay
   (--volatile=overlay), so that the cached root never changes, with a
   private network (loopback only), and this directory's helpers and the
   .deb bound at /mnt/relay-test;
3. installs the .deb with `dpkg -i`, starts a fake SpectatorD
   (spectatord.service, fake_spectatord.py) on
   /run/spectatord/spectatord.unix, and checks, through the default
   addresses, what the issue asks, one check at a time (CHECKS below);
4. always shuts the container down: an orderly halt, else SIGKILL to its
   init, whatever happened before.

Commands run inside with `nsenter -t INIT -a`, as root or, through setpriv,
as uid 65534 (nobody) or a member of the admin group. Every wait polls a
condition against a deadline; the whole run is bounded by RUN_TIMEOUT.
Needs root, debootstrap and systemd-container (`make test-systemd`
installs them), and the mirror only to build the root.
"""

import argparse
import fcntl
import glob
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
# wait_until lives in tests/waiting.py, shared with the other harnesses.
sys.path.insert(0, os.path.dirname(HERE))
from waiting import wait_until  # noqa: E402
CACHE = os.environ.get("RELAY_TEST_CACHE", "/var/cache/spectator-relay-test")
MIRROR = os.environ.get("RELAY_TEST_MIRROR", "http://deb.debian.org/debian")
SUITE = "bookworm"
# What the container needs besides the relay's own dependencies: an init, the
# bus systemctl talks over, the fake SpectatorD's and the clients' python3;
# passwd (useradd) and util-linux (setpriv) are in every Debian, named here
# because the test uses them.
BASE_PACKAGES = ["systemd", "systemd-sysv", "dbus", "python3", "passwd", "util-linux"]
# Part of the cache key: raise it when the way the root is made changes.
ROOTFS_FORMAT = 1
MOUNT = "/mnt/relay-test"
PACKAGE = "spectator-relay"
RUN_TIMEOUT = 1200
CONTAINER_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
NOBODY = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
ADMIN_GROUP = "relayadmin"
ADMIN_USER = "relayop"
ADMIN = ["setpriv", "--reuid=" + ADMIN_USER, "--regid=" + ADMIN_USER, "--init-groups"]
LOAD_RATE = 2000  # lines a second per transport while the relay reloads and restarts


def log(msg):
    print("test-systemd: %s" % msg, flush=True)


def run(argv, check=True, timeout=60, **kw):
    kw.setdefault("stdout", subprocess.PIPE)
    kw.setdefault("stderr", subprocess.PIPE)
    kw.setdefault("stdin", subprocess.DEVNULL)
    proc = subprocess.run(argv, text=True, timeout=timeout, **kw)
    if check and proc.returncode != 0:
        raise AssertionError("%s exited %d\nstdout:\n%s\nstderr:\n%s"
                             % (" ".join(argv), proc.returncode, proc.stdout, proc.stderr))
    return proc


# How often a wait polls: each poll here runs a command in the container.
POLL = 0.2


# ----------------------------------------------------------------------------
# The root file system
# ----------------------------------------------------------------------------

def deb_depends(deb):
    """The package names in the .deb's Depends: (first of alternatives)."""
    field = run(["dpkg-deb", "-f", deb, "Depends"]).stdout
    names = []
    for dep in field.split(","):
        name = dep.split("|")[0].strip().split()[0] if dep.strip() else ""
        if name:
            names.append(name.split(":")[0])
    return names


def lock(f, mode, timeout):
    """flock with a deadline."""
    def taken():
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
            return True
        except BlockingIOError:
            return False
    wait_until(taken, timeout, 1, "%s to be unlocked by another run" % CACHE)


def rootfs(packages):
    """The cached root for this package set, built first if missing, and
    the open lock file that keeps it: shared while a run uses the root,
    exclusive while one builds. One root is kept: building a new one removes
    the others. A root is used only once complete (its stamp exists)."""
    key = hashlib.sha256(json.dumps([ROOTFS_FORMAT, SUITE, sorted(set(packages))])
                         .encode()).hexdigest()[:16]
    os.makedirs(CACHE, exist_ok=True)
    root = os.path.join(CACHE, "rootfs-" + key)
    stamp = root + ".complete"
    held = open(os.path.join(CACHE, "lock"), "w")
    lock(held, fcntl.LOCK_SH, 1200)
    if os.path.exists(stamp) and os.path.isdir(root):
        log("root file system: %s (cached)" % root)
        return root, held
    fcntl.flock(held, fcntl.LOCK_UN)
    lock(held, fcntl.LOCK_EX, 1200)
    if not (os.path.exists(stamp) and os.path.isdir(root)):  # or another run built it meanwhile
        for old in glob.glob(os.path.join(CACHE, "rootfs-*")):
            if os.path.isdir(old):
                shutil.rmtree(old)
            else:
                os.unlink(old)
        tmp = root + ".tmp"
        log("root file system: debootstrap %s into %s (a few minutes, once)" % (SUITE, root))
        start = time.monotonic()
        proc = run(["debootstrap", "--variant=minbase", "--include=" + ",".join(sorted(set(packages))),
                    SUITE, tmp, MIRROR], check=False, timeout=1200)
        if proc.returncode != 0:
            shutil.rmtree(tmp, ignore_errors=True)
            raise AssertionError("debootstrap failed:\n%s%s" % (proc.stdout[-4000:], proc.stderr[-4000:]))
        with open(os.path.join(tmp, "etc", "hostname"), "w") as f:
            f.write("relaytest\n")
        for deb in glob.glob(os.path.join(tmp, "var/cache/apt/archives/*.deb")):
            os.unlink(deb)
        os.rename(tmp, root)
        open(stamp, "w").close()
        log("root file system built in %.0fs" % (time.monotonic() - start))
    # Exclusive to shared. flock unlocks before it relocks, so a run that
    # wants another root could slip in between and replace this one.
    fcntl.flock(held, fcntl.LOCK_SH)
    if not os.path.exists(stamp):
        raise AssertionError("another run replaced %s meanwhile; run again" % root)
    return root, held


# ----------------------------------------------------------------------------
# The container
# ----------------------------------------------------------------------------

class Container:
    """A booted systemd-nspawn container; stop() always ends it."""

    def __init__(self, root, assets, workdir):
        self.root = root
        self.assets = assets
        self.log_path = os.path.join(workdir, "nspawn.log")
        self.proc = None
        self.init = None
        self.background = []

    def start(self):
        argv = ["systemd-nspawn", "--quiet", "-D", self.root, "--volatile=overlay", "-b",
                "--register=no", "--keep-unit", "--private-network", "--console=passive",
                "--machine=relaytest-%d" % os.getpid(), "--bind-ro=%s:%s" % (self.assets, MOUNT)]
        self.log_file = open(self.log_path, "w")
        self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=self.log_file,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        self.init = wait_until(self.find_init, 60, POLL, "the container's init to start")
        last = []

        def booted():
            # Until systemd has its socket up, systemctl cannot connect and
            # says so at once; then --wait waits for the boot to finish.
            proc = self.run(["systemctl", "is-system-running", "--wait"], check=False,
                            timeout=180)
            last[:] = [proc.stdout.strip(), proc.stderr.strip()]
            return last[0] if last[0] not in ("", "initializing", "starting") else None
        try:
            state = wait_until(booted, 180, POLL, "the container to boot")
        except AssertionError as e:
            raise AssertionError("%s: %s\n%s" % (e, last, self.nspawn_log()))
        if state not in ("running", "degraded"):
            raise AssertionError("the container did not boot: %s\n%s" % (last, self.nspawn_log()))
        if state == "degraded":
            log("booted degraded; failed units:\n" + self.sh("systemctl --failed --no-pager").stdout)

    def find_init(self):
        """PID 1 of the container, as the host sees it: the child of
        systemd-nspawn in another PID namespace that runs systemd."""
        if self.proc.poll() is not None:
            raise AssertionError("systemd-nspawn exited %d\n%s" % (self.proc.returncode,
                                                                 self.nspawn_log()))
        own = os.readlink("/proc/self/ns/pid")
        try:
            with open("/proc/%d/task/%d/children" % (self.proc.pid, self.proc.pid)) as f:
                children = [int(p) for p in f.read().split()]
        except OSError:
            return None
        for pid in children:
            try:
                with open("/proc/%d/comm" % pid) as f:
                    comm = f.read().strip()
                if comm == "systemd" and os.readlink("/proc/%d/ns/pid" % pid) != own:
                    return pid
            except OSError:
                continue
        return None

    def nspawn_log(self):
        try:
            with open(self.log_path) as f:
                return f.read()[-4000:]
        except OSError:
            return ""

    def argv(self, argv, user=None):
        return ["nsenter", "-t", str(self.init), "-a", "--"] + (user or []) + argv

    def env(self):
        return {"PATH": CONTAINER_PATH, "LANG": "C.UTF-8"}

    def run(self, argv, user=None, check=True, timeout=60, **kw):
        return run(self.argv(argv, user), check=check, timeout=timeout, env=self.env(), **kw)

    def sh(self, script, user=None, check=True, timeout=60):
        return self.run(["sh", "-c", script], user=user, check=check, timeout=timeout)

    def popen(self, argv, user=None):
        proc = subprocess.Popen(self.argv(argv, user), env=self.env(), text=True,
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        self.background.append(proc)
        return proc

    def stop(self):
        for proc in self.background:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        if self.proc is None:
            return
        if self.proc.poll() is None:
            # systemd-nspawn turns SIGTERM into SIGRTMIN+3 for the
            # container's systemd: an orderly halt.
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(90)
            except subprocess.TimeoutExpired:
                log("the container did not halt within 90s; killing it")
                if self.init:
                    try:
                        os.kill(self.init, signal.SIGKILL)  # ends its whole PID namespace
                    except ProcessLookupError:
                        pass
                self.proc.kill()
                self.proc.wait(30)
        self.log_file.close()


# ----------------------------------------------------------------------------
# What the checks share
# ----------------------------------------------------------------------------

class Scenario:

    def __init__(self, c, deb_name):
        self.c = c
        self.deb = "%s/%s" % (MOUNT, deb_name)
        self.marker = 0

    def totals(self):
        proc = self.c.run(["cat", "/run/spectatord/totals.json"], check=False)
        return json.loads(proc.stdout) if proc.returncode == 0 else None

    def counter(self, ident):
        t = self.totals()
        return t["counters"].get(ident, 0) if t else 0

    def main_pid(self):
        return int(self.c.run(["systemctl", "show", "-p", "MainPID", "--value",
                               "spectator-relay.service"]).stdout.strip())

    def active(self, unit):
        return self.c.run(["systemctl", "is-active", unit], check=False).stdout.strip() == "active"

    def relay_stats(self):
        return json.loads(self.c.run(["spectator-relayctl", "--json", "stats"]).stdout)

    def send(self, ident, count, user=NOBODY):
        out = self.c.run(["python3", MOUNT + "/client.py", "send", ident, str(count)], user=user)
        return json.loads(out.stdout)

    def expect_sums(self, want, timeout=60):
        """Waits until the fake SpectatorD's counter sums equal want
        ({id: n}), then sends a marker through the relay and waits for it:
        whatever was on its way before the marker has arrived by then, so
        equal sums mean nothing was lost and nothing added."""
        def equal():
            t = self.totals()
            return t and all(t["counters"].get(k, 0) == v for k, v in want.items())
        try:
            wait_until(equal, timeout, POLL, "the sums at the fake SpectatorD")
        except AssertionError:
            t = self.totals() or {"counters": {}}
            got = {k: t["counters"].get(k, 0) for k in want}
            raise AssertionError("sums at the fake SpectatorD: want %s, got %s" % (want, got))
        self.marker += 1
        ident = "marker%d" % self.marker
        sent = self.send(ident, 1, user=None)
        assert sent["sent"] == {"unix": 1, "udp": 1}, sent
        wait_until(lambda: self.counter(ident + ".unix") == 1 and self.counter(ident + ".udp") == 1,
                   30, POLL, "the marker %s" % ident)
        t = self.totals()
        got = {k: t["counters"].get(k, 0) for k in want}
        assert got == want, "after the marker: want %s, got %s" % (want, got)

    def journal(self, unit="spectator-relay.service"):
        out = self.c.run(["journalctl", "-u", unit, "-o", "json", "--no-pager"]).stdout
        return [json.loads(line) for line in out.splitlines() if line.strip()]

    def start_relay(self, enable):
        verb = ["enable", "--now"] if enable else ["start"]
        self.c.run(["systemctl"] + verb + ["spectator-relay.socket", "spectator-relay.service"],
                   timeout=90)
        wait_until(lambda: self.active("spectator-relay.service"), 60, POLL,
                   "the relay to be active")

    # ------------------------------------------------------------------------
    # The checks, in order; each builds on the state the earlier ones left.
    # ------------------------------------------------------------------------

    def check_install(self):
        """dpkg -i installs the package and its user; the relay starts."""
        self.c.sh("cp %s/spectatord.service /etc/systemd/system/ && systemctl daemon-reload"
                  " && systemctl start spectatord.service" % MOUNT)
        wait_until(self.totals, 30, POLL, "the fake SpectatorD to bind its socket")
        self.c.run(["dpkg", "-i", self.deb], timeout=120)
        self.c.run(["id", "spectator-relay"])
        # The operator's side of [admin] group (docs/operations.md,
        # "Permissions"): a group, a member, the relay in it, the key set.
        self.c.run(["groupadd", "--system", ADMIN_GROUP])
        self.c.run(["useradd", "--system", "--no-create-home", "--groups", ADMIN_GROUP, ADMIN_USER])
        self.c.sh("mkdir -p /etc/systemd/system/spectator-relay.service.d && printf "
                  "'[Service]\\nSupplementaryGroups=%s\\n' > "
                  "/etc/systemd/system/spectator-relay.service.d/admin-group.conf" % ADMIN_GROUP)
        self.c.run(["sed", "-i", "s/^group =$/group = %s/" % ADMIN_GROUP,
                    "/etc/spectator-relay/relay.ini"])
        self.c.run(["systemctl", "daemon-reload"])
        self.start_relay(enable=True)

    def check_ready_line_at_priority_6(self):
        """The ready line is in the journal, at priority 6 (info)."""
        ready = [e for e in self.journal() if "event=ready" in str(e.get("MESSAGE"))]
        assert ready, "no event=ready in the journal"
        assert all(e.get("PRIORITY") == "6" for e in ready), \
            [(e.get("PRIORITY"), e.get("MESSAGE")) for e in ready]

    def check_nonroot_client_sums_arrive(self):
        """uid 65534 sends over unix and UDP; the sums arrive exactly."""
        st = self.c.run(["stat", "-c", "%F %a %U", "/run/spectator-relay"]).stdout.strip()
        assert st == "directory 755 spectator-relay", "/run/spectator-relay: %s" % st
        sent = self.send("nobody", 1000)
        assert sent["uid"] == 65534 and not sent["errors"], sent
        assert sent["sent"] == {"unix": 1000, "udp": 1000}, sent
        self.expect_sums({"nobody.unix": 1000, "nobody.udp": 1000})
        # The relay saw the unix datagrams come from uid 65534.
        senders = json.loads(self.c.run(["spectator-relayctl", "--json", "senders"]).stdout)
        uids = {s.get("uid") for s in senders["by_lines"] if "uid" in s}
        assert 65534 in uids, senders

    def check_nonroot_reads_stats_not_flush(self):
        """A non-root user reads stats, and is refused flush."""
        out = self.c.run(["spectator-relayctl", "--json", "stats"], user=NOBODY, check=False)
        assert out.returncode == 0, out.stderr
        assert "received" in json.loads(out.stdout)
        out = self.c.run(["spectator-relayctl", "flush"], user=NOBODY, check=False)
        assert out.returncode == 1, (out.returncode, out.stdout, out.stderr)
        assert "needs root" in out.stderr, out.stderr

    def check_admin_group_member_may_flush(self):
        """A member of [admin] group may flush."""
        gid = self.c.run(["getent", "group", ADMIN_GROUP]).stdout.split(":")[2]
        st = self.c.run(["stat", "-c", "%g", "/run/spectator-relay/admin.sock"]).stdout.strip()
        assert st == gid, "admin.sock group %s, want %s" % (st, gid)
        out = self.c.run(["spectator-relayctl", "--json", "flush"], user=ADMIN, check=False)
        assert out.returncode == 0, (out.stdout, out.stderr)
        assert "flushed" in json.loads(out.stdout), out.stdout

    def check_reload_and_restart_under_load(self):
        """systemctl reload and restart under load lose nothing.

        Also: no reload writes the configuration into the journal, and each
        start logged its ready line at priority 6."""
        load = self.c.popen(["python3", MOUNT + "/client.py", "load", "load", str(LOAD_RATE)],
                            user=NOBODY)
        seen = [0]

        def traffic_moves():
            """More load lines arrived since the last event."""
            n = self.counter("load.unix") + self.counter("load.udp")
            if n > seen[0] + LOAD_RATE // 2:
                seen[0] = n
                return True
            return False

        try:
            wait_until(traffic_moves, 30, POLL, "load lines at the fake SpectatorD")
            pid = self.main_pid()
            for _ in range(2):
                self.c.run(["systemctl", "reload", "spectator-relay.service"], timeout=60)
                wait_until(traffic_moves, 30, POLL, "load lines after a reload")
            assert self.main_pid() == pid, "a reload restarted the relay"
            assert self.relay_stats()["reload"]["ok"] == 2
            for _ in range(2):
                self.c.run(["systemctl", "restart", "spectator-relay.service"], timeout=120)
                new = self.main_pid()
                assert new not in (0, pid), "the relay did not restart (MainPID %d)" % new
                pid = new
                wait_until(traffic_moves, 30, POLL, "load lines after a restart")
            out, err = load.communicate(timeout=60)  # closes its stdin: the load stops
        finally:
            if load.poll() is None:
                load.kill()
        assert load.returncode == 0, err
        sent = json.loads(out)
        assert sent["uid"] == 65534 and not sent["errors"], sent
        self.expect_sums({"load.unix": sent["sent"]["unix"], "load.udp": sent["sent"]["udp"]})
        log("  under load: %d lines over unix, %d over UDP, 2 reloads, 2 restarts, none lost"
            % (sent["sent"]["unix"], sent["sent"]["udp"]))
        dumped = [e["MESSAGE"] for e in self.journal()
                  if re.match(r"^(\[\w+\]|\w+ = )", str(e.get("MESSAGE")))]
        assert not dumped, "configuration lines in the journal: %s" % dumped[:5]
        ready = [e for e in self.journal() if "event=ready" in str(e.get("MESSAGE"))]
        assert len(ready) == 3 and all(e.get("PRIORITY") == "6" for e in ready), \
            [(e.get("PRIORITY"), e.get("MESSAGE")) for e in ready]

    def reinstalled_relay_works(self, ident):
        self.c.run(["id", "spectator-relay"])
        sent = self.send(ident, 10)
        assert not sent["errors"] and sent["sent"] == {"unix": 10, "udp": 10}, sent
        self.expect_sums({ident + ".unix": 10, ident + ".udp": 10})
        out = self.c.run(["spectator-relayctl", "stats"], user=NOBODY, check=False)
        assert out.returncode == 0, out.stderr

    def check_remove_and_reinstall(self):
        """dpkg -r, then dpkg -i: the relay starts again and works."""
        self.c.run(["dpkg", "-r", PACKAGE], timeout=120)
        gone = self.c.run(["ls", "-d", "/run/spectator-relay", "/run/private/spectator-relay"],
                          check=False)
        assert gone.stdout.strip() == "", "left after dpkg -r: %s" % gone.stdout
        self.c.run(["dpkg", "-i", self.deb], timeout=120)
        self.start_relay(enable=False)
        self.reinstalled_relay_works("removed")

    def check_purge_and_reinstall(self):
        """dpkg -P, then dpkg -i: the relay starts again and works.

        The purge leaves nothing of the relay but its system user. Then a
        member of the relay's own group, set as [admin] group, may flush."""
        self.c.run(["dpkg", "-P", PACKAGE], timeout=120)
        left = self.c.sh("ls -d /etc/spectator-relay /run/spectator-relay "
                         "/run/private/spectator-relay /usr/lib/systemd/system/spectator-relay.* "
                         "/etc/systemd/system/*.wants/spectator-relay.* 2>/dev/null", check=False)
        assert left.stdout.strip() == "", "left after dpkg -P: %s" % left.stdout
        self.c.run(["id", "spectator-relay"])  # kept, as Debian packages keep their users
        self.c.run(["dpkg", "-i", self.deb], timeout=120)
        # This time [admin] group is the relay's own, which needs no
        # drop-in (docs/operations.md, "Permissions").
        self.c.run(["rm", "-r", "/etc/systemd/system/spectator-relay.service.d"])
        self.c.run(["systemctl", "daemon-reload"])
        self.c.run(["sed", "-i", "s/^group =$/group = spectator-relay/",
                    "/etc/spectator-relay/relay.ini"])
        self.c.run(["useradd", "--system", "--no-create-home", "--groups", "spectator-relay",
                    ADMIN_USER + "2"])
        self.start_relay(enable=True)
        self.reinstalled_relay_works("purged")
        member = ["setpriv", "--reuid=" + ADMIN_USER + "2", "--regid=" + ADMIN_USER + "2",
                  "--init-groups"]
        out = self.c.run(["spectator-relayctl", "flush"], user=member, check=False)
        assert out.returncode == 0, (out.stdout, out.stderr)
        out = self.c.run(["spectator-relayctl", "flush"], user=ADMIN, check=False)
        assert out.returncode == 1, "relayadmin is no longer [admin] group: %s" % out.stdout
        ready = [e for e in self.journal() if "event=ready" in str(e.get("MESSAGE"))]
        assert ready and ready[-1].get("PRIORITY") == "6", ready[-1:]

    CHECKS = [
        check_install,
        check_ready_line_at_priority_6,
        check_nonroot_client_sums_arrive,
        check_nonroot_reads_stats_not_flush,
        check_admin_group_member_may_flush,
        check_reload_and_restart_under_load,
        check_remove_and_reinstall,
        check_purge_and_reinstall,
    ]


def package_file(build_dir):
    with open(os.path.join(SOURCE_DIR, "CMakeLists.txt")) as f:
        version = re.search(r"project\(spectator-relay VERSION (\S+)", f.read()).group(1)
    arch = run(["dpkg", "--print-architecture"]).stdout.strip()
    return os.path.join(build_dir, "%s_%s-1_%s.deb" % (PACKAGE, version, arch))


def diagnostics(c):
    for script in ("systemctl --no-pager status spectator-relay.socket spectator-relay.service "
                   "spectatord.service",
                   "journalctl --no-pager -b -n 80",
                   "ls -la /run /run/spectator-relay /run/private"):
        try:
            proc = c.sh(script, check=False, timeout=30)
            print("--- %s\n%s%s" % (script, proc.stdout, proc.stderr))
        except Exception as e:  # the container may be gone
            print("--- %s: %s" % (script, e))


def on_signal(signum, _frame):
    raise SystemExit("test-systemd: stopped by signal %d" % signum)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build", default=os.path.join(SOURCE_DIR, "build"),
                    help="the build directory `make deb` wrote the package into")
    ap.add_argument("--deb", help="test this package instead (an older one, say)")
    args = ap.parse_args()
    if os.geteuid() != 0:
        sys.exit("test-systemd: needs root (debootstrap, systemd-nspawn, nsenter)")
    for tool in ("debootstrap", "systemd-nspawn", "nsenter", "dpkg-deb"):
        if not shutil.which(tool):
            sys.exit("test-systemd: %s not found: run .ci/install-deps debootstrap "
                     "systemd-container" % tool)
    deb = os.path.abspath(args.deb) if args.deb else package_file(args.build)
    if not os.path.isfile(deb):
        sys.exit("test-systemd: %s missing: run make deb" % deb)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGALRM, on_signal)
    signal.alarm(RUN_TIMEOUT)

    started = time.monotonic()
    root, root_lock = rootfs(BASE_PACKAGES + deb_depends(deb))
    workdir = tempfile.mkdtemp(prefix="relay-systemd-")
    assets = os.path.join(workdir, "assets")
    os.mkdir(assets)
    for name in ("fake_spectatord.py", "client.py", "spectatord.service"):
        shutil.copy(os.path.join(HERE, name), assets)
    shutil.copy(deb, assets)
    os.chmod(workdir, 0o755)
    c = Container(root, assets, workdir)
    passed, failed = 0, 0
    try:
        boot = time.monotonic()
        c.start()
        log("booted in %.1fs" % (time.monotonic() - boot))
        scenario = Scenario(c, os.path.basename(deb))
        for check in Scenario.CHECKS:
            t = time.monotonic()
            try:
                check(scenario)
            except Exception as e:
                failed += 1
                log("FAIL %s (%.1fs): %s" % (check.__name__, time.monotonic() - t, e))
                diagnostics(c)
                break
            passed += 1
            log("ok   %s (%.1fs): %s" % (check.__name__, time.monotonic() - t,
                                        check.__doc__.split("\n")[0].strip()))
    finally:
        c.stop()
        shutil.rmtree(workdir, ignore_errors=True)
        root_lock.close()
        signal.alarm(0)
    not_run = len(Scenario.CHECKS) - passed - failed
    log("%.0fs in all" % (time.monotonic() - started))
    print("test-systemd: %d passed, %d failed%s" % (passed, failed,
          ", %d skipped" % not_run if not_run else ""))
    return 1 if failed or not_run else 0


if __name__ == "__main__":
    sys.exit(main())
