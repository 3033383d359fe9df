#!/usr/bin/env python3
"""The end-to-end benchmark behind `make bench-e2e`. Never run as a test.

For every scenario (datagram shape x transport x number of series) it finds
the highest rate at which a reader loses nothing, for two readers measured in
the same run:

  raw    blast -> bench/sink                       the ceiling: kernel + sender
  relay  blast -> spectator-relay -> bench/sink    sink as the fake SpectatorD

and prints one table, with the relay as a ratio to the raw sink, then the
issue's targets with PASS or FAIL. The machine is shared and noisy, so only
the ratios are meant to be compared between runs.

A timer-heavy scenario follows: one timer or distribution type alone (T and
t by default; D and d with --only 'timers D' ...) in 20-line UDP datagrams
over 1,000 series, each spread over about 30 percentile buckets. For it the
relay merges every line, so what it forwards per line received is the point:
the same search for the highest rate with zero drops, then one trial offered
4M lines/s, the issue's target.

Method
  * The sender (blast) and the fake SpectatorD run on the first allowed core,
    the reader under test (sink or relay) alone on the second.
  * Every trial starts a fresh reader, so counters and peak RSS are its own.
  * A trial passes when every line sent was received: no kernel drop on the
    reader's UDP socket (/proc/net/udp), no line missing from the reader's
    own count, no send error.
  * UDP: a flat-out trial first; if it loses lines, a geometric search over
    the offered rate between the best passing and the lowest failing rate.
  * Unix datagram sockets have no drops: a blocked sender waits (as thin
    clients do), so one flat-out trial gives the rate the reader sustains.
  * lines/s = lines received / sending time of the passing trial.
  * Relay CPU is utime+stime from /proc/PID/stat between ready and the end of
    the load (its queue drained); peak RSS is VmHWM from /proc/PID/status.
    Forwarded per received comes from the relay's own event=stopped line.

Only loopback and unix sockets in a fresh temporary directory are used;
every process is bounded in time and is stopped by its own pid.
"""

import argparse
import ctypes
import json
import math
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

# The harnesses' one way to wait (tests/waiting.py); its timeout raises
# AssertionError, which main reports like a BenchError.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests"))
from waiting import wait_until  # noqa: E402

CLK_TCK = os.sysconf("SC_CLK_TCK")

SHAPES = [
    ("1 line", ["-l", "1"]),
    ("20 lines", ["-l", "20"]),
    ("8 KiB", ["-B", "8192"]),
]
TRANSPORTS = ["udp", "unix"]
SERIES = [1000, 100000]

# The timer-heavy scenario: one type alone, 20-line UDP datagrams.
TIMER_KINDS = ["T", "t", "D", "d"]
TIMER_DEFAULT_KINDS = "Tt"
TIMER_SERIES = 1000
TIMER_TARGET_RATE = 4e6  # lines/s (issue 11)
TIMER_TARGET_FWD = 0.01  # forwarded per received line, at most
WINDOW_SECONDS = 1.0


class BenchError(Exception):
    pass


# ---------------------------------------------------------------------------
# Processes, readiness and /proc
# ---------------------------------------------------------------------------

# Niceness of every process a trial starts (--nice); 0 leaves it alone.
NICE = 0
PR_SET_PDEATHSIG = 1
LIBC = ctypes.CDLL(None, use_errno=True)


def pinned(core):
    """preexec_fn that pins the child to one core and makes it die with the
    harness. With --nice it also gets a session of its own: the scheduler
    shares a core fairly between sessions (autogroups) first, so a plain
    nice value would not count against another session's work; the new
    session's autogroup gets the niceness instead."""
    def setup():
        LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        os.sched_setaffinity(0, {core})
        if NICE:
            os.setsid()
            try:
                with open("/proc/self/autogroup", "w") as f:
                    f.write(str(NICE))
            except OSError:
                pass  # no autogroups: the process's own niceness is what counts
            os.setpriority(os.PRIO_PROCESS, 0, NICE)
    return setup


def stop(proc, timeout=15.0):
    """SIGTERM to this one process, then SIGKILL if it does not exit."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return proc.returncode


def key_values(line):
    return dict(m.groups() for m in re.finditer(r"(\w+)=(\S+)", line))


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def udp_socket_state(port):
    """(rx_queue bytes, drops) of the IPv4 loopback UDP socket on port."""
    want = "0100007F:%04X" % port
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1] == want:
                rx = int(fields[4].split(":")[1], 16)
                return rx, int(fields[-1])
    raise BenchError("no UDP socket on port %d" % port)


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def core_times(core):
    """Ticks of one core from /proc/stat: busy (user, nice, system, irq,
    softirq), steal (taken by the hypervisor) and total."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu%d " % core):
                v = [int(x) for x in line.split()[1:9]]
                return {"busy": v[0] + v[1] + v[2] + v[5] + v[6], "steal": v[7], "total": sum(v)}
    raise BenchError("no cpu%d in /proc/stat" % core)


def vm_hwm_kib(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    return 0


class Sink:
    """bench/sink on a core, started and ready."""

    def __init__(self, bench, url, core, seconds):
        self.proc = subprocess.Popen([os.path.join(bench, "sink"), "-l", url, "-d",
                                      "%.0f" % seconds], stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True,
                                     preexec_fn=pinned(core))
        ready, _, _ = select.select([self.proc.stdout], [], [], 10)
        line = self.proc.stdout.readline() if ready else ""
        if not line.startswith("sink: ready"):
            stop(self.proc)
            raise BenchError("sink did not start: " + line + self.proc.stderr.read())
        self.url = key_values(line)["url"]

    def finish(self):
        """Stops it (it reads what is queued first); returns its counts."""
        stop(self.proc)
        out, err = self.proc.communicate()
        for line in out.splitlines():
            if line.startswith("sink: datagrams="):
                kv = key_values(line)
                kv["burst_lines"] = [int(x) for x in kv.get("burst_lines", "").split(",") if x]
                return kv
        raise BenchError("sink printed no counts: " + err)


class Relay:
    """spectator-relay on a core, with a config in tmp, ready."""

    def __init__(self, binary, tmp, listen, upstream, core, window="1s"):
        self.tmp = tmp
        config = os.path.join(tmp, "relay.ini")
        with open(config, "w") as f:
            f.write("[relay]\nlisten = %s\nupstream = %s\nwindow = %s\n"
                    "[admin]\nsocket = %s\n[self_metrics]\nenabled = false\n"
                    "[sockets]\nreceive_buffer = 16MiB\n"
                    % (listen, upstream, window, os.path.join(tmp, "admin.sock")))
        self.log_path = os.path.join(tmp, "relay.stderr")
        self.log = open(self.log_path, "w")
        self.proc = subprocess.Popen([binary, "--config", config], stdin=subprocess.DEVNULL,
                                     stdout=subprocess.DEVNULL, stderr=self.log,
                                     preexec_fn=pinned(core))
        try:
            wait_until(lambda: self.proc.poll() is not None or "event=ready" in self.text(),
                       10, message="the relay to be ready")
        except AssertionError:
            stop(self.proc)
        if self.proc.poll() is not None:
            self.log.close()
            raise BenchError("relay did not start: " + self.text())

    def text(self):
        with open(self.log_path) as f:
            return f.read()

    def finish(self):
        rc = stop(self.proc)
        self.log.close()
        m = re.search(r"event=stopped (.*)", self.text())
        if rc != 0 or not m:
            raise BenchError("relay did not stop cleanly (exit %s): %s" % (rc, self.text()[-800:]))
        return {k: int(v) for k, v in key_values(m.group(1)).items()}


# ---------------------------------------------------------------------------
# One trial: one reader, one blast run
# ---------------------------------------------------------------------------

class Bench:
    def __init__(self, args):
        self.args = args
        self.bench = os.path.join(args.build, "bench")
        self.relay_bin = os.path.join(args.build, "spectator-relay")
        cores = sorted(os.sched_getaffinity(0))
        self.send_core = cores[0]
        self.read_core = cores[1] if len(cores) > 1 else cores[0]
        self.tmp = tempfile.mkdtemp(prefix="relay-bench-")
        self.seconds = args.seconds  # of a trial; the timer scenario's are longer
        self.trials = 0
        self.rerun = 0  # trials run again because of noise
        self.noisy = 0  # trials kept although still noisy
        # The harness waits with the sender: the reader's core is the reader's.
        os.sched_setaffinity(0, {self.send_core})

    def close(self):
        shutil.rmtree(self.tmp, ignore_errors=True)

    def blast(self, target, shape, series, rate, mix="mix"):
        """Runs blast to the end; returns its counts."""
        seconds = self.seconds
        if rate:
            count, limit = int(rate * seconds), seconds * 1.5 + 1
        else:
            count, limit = 10 ** 10, seconds
        argv = [os.path.join(self.bench, "blast"), "-t", target, *shape, "-s", str(series),
                "-m", mix, "-r", str(int(rate)), "-n", str(count), "-d", "%.3f" % limit]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=limit + 60,
                           preexec_fn=pinned(self.send_core))
        m = re.search(r"^blast: (lines_sent=.*)$", p.stdout, re.M)
        if p.returncode == 2 or not m:
            raise BenchError("blast failed: " + p.stdout + p.stderr)
        kv = key_values(m.group(1))
        return {"sent": int(kv["lines_sent"]), "errors": int(kv["errors"]),
                "seconds": float(kv["seconds"])}

    def listen_url(self, transport, name):
        if transport == "udp":
            return "udp://127.0.0.1:%d" % free_udp_port()
        return "unix://" + os.path.join(self.tmp, name + ".unix")

    def drained(self, transport, port):
        """Waits until the reader's UDP queue is empty; returns its drops."""
        if transport != "udp":
            return 0
        wait_until(lambda: udp_socket_state(port)[0] == 0, 30, message="the reader to drain")
        return udp_socket_state(port)[1]

    def trial_raw(self, transport, shape, series, rate, mix="mix"):
        self.trials += 1
        sink = Sink(self.bench, self.listen_url(transport, "raw") if transport == "unix"
                    else "udp://127.0.0.1:0", self.read_core, self.seconds * 3 + 30)
        try:
            cpu0, core0 = cpu_seconds(sink.proc.pid), core_times(self.read_core)
            b = self.blast(sink.url, shape, series, rate, mix)
            port = int(sink.url.rsplit(":", 1)[1]) if transport == "udp" else 0
            drops = self.drained(transport, port)
            cpu = cpu_seconds(sink.proc.pid) - cpu0
            noise = self.noise(core0, core_times(self.read_core), cpu)
        finally:
            got = sink.finish()
        received = int(got["lines"])
        t = self.verdict(b, received, drops, rate, noise)
        t.update(cpu_us_per_1k=cpu * 1e6 / (received / 1000.0) if received else 0.0,
                 busy=cpu / b["seconds"] if b["seconds"] > 0 else 0.0)
        return t

    def trial_relay(self, transport, shape, series, rate, mix="mix", window="1s", linger=0.0):
        self.trials += 1
        up = Sink(self.bench, "unix://" + os.path.join(self.tmp, "upstream.unix"),
                  self.send_core, self.seconds * 3 + 30)
        listen = self.listen_url(transport, "relay")
        try:
            relay = Relay(self.relay_bin, self.tmp, listen, up.url, self.read_core, window)
            try:
                cpu0, core0 = cpu_seconds(relay.proc.pid), core_times(self.read_core)
                b = self.blast(listen, shape, series, rate, mix)
                port = int(listen.rsplit(":", 1)[1]) if transport == "udp" else 0
                drops = self.drained(transport, port)
                cpu = cpu_seconds(relay.proc.pid) - cpu0
                noise = self.noise(core0, core_times(self.read_core), cpu)
                if linger:
                    time.sleep(linger)  # let a window close on its own timer
                rss = vm_hwm_kib(relay.proc.pid)
            finally:
                stopped = relay.finish()
        finally:
            fwd = up.finish()
        received = stopped["received_lines"]
        t = self.verdict(b, received, drops, rate, noise)
        t.update(cpu_us_per_1k=cpu * 1e6 / (received / 1000.0) if received else 0.0,
                 busy=cpu / b["seconds"] if b["seconds"] > 0 else 0.0,
                 fwd_per_line=stopped["forwarded_lines"] / received if received else 0.0,
                 fwd_per_line_window=full_window_fwd(fwd["burst_lines"], t["rate"]),
                 rss_kib=rss, forwarded=stopped["forwarded_lines"],
                 upstream_lines=int(fwd["lines"]), dropped_upstream=stopped["dropped_upstream"],
                 windows=fwd["burst_lines"])
        return t

    def noise(self, before, after, reader_cpu):
        """The share of the reader's core that went to anything but the
        reader during a trial: other processes on this shared machine, and
        time the hypervisor stole."""
        wall = after["total"] - before["total"]
        others = (after["busy"] - before["busy"] - reader_cpu * CLK_TCK
                  + after["steal"] - before["steal"])
        return max(0.0, others / wall) if wall > 0 else 0.0

    def verdict(self, b, received, drops, rate, noise):
        lost = b["sent"] - received
        ok = drops == 0 and lost == 0 and b["errors"] == 0 and b["sent"] > 0
        t = {"ok": ok, "offered": rate, "sent": b["sent"], "received": received, "drops": drops,
             "lost": lost, "errors": b["errors"], "seconds": b["seconds"], "noise": noise,
             "rate": received / b["seconds"] if b["seconds"] > 0 else 0.0,
             "send_rate": b["sent"] / b["seconds"] if b["seconds"] > 0 else 0.0}
        if self.args.verbose:
            print("    %-5s offered=%-10s sent=%-10d received=%-10d drops=%-7d lost=%-8d "
                  "errors=%d noise=%2.0f%% -> %.0f lines/s"
                  % ("ok" if ok else "LOSS", "flat" if not rate else "%.0f" % rate, b["sent"],
                     received, drops, lost, b["errors"], 100 * noise, t["rate"]),
                  file=sys.stderr, flush=True)
        return t

    def quiet(self, trial, rate):
        """trial(rate), run again (up to --retries times) while it lost lines
        and something else took more than --max-noise of the reader's core:
        such a loss says nothing about the reader. (A pass despite the noise
        stands.)"""
        for _ in range(self.args.retries):
            t = trial(rate)
            if t["ok"] or t["noise"] <= self.args.max_noise:
                return t
            self.rerun += 1
        t = trial(rate)
        if not t["ok"] and t["noise"] > self.args.max_noise:
            self.noisy += 1
        return t

    def scenario(self, transport, shape, series, mix="mix", linger=0.0):
        """(raw, relay): the best passing trial of each reader, or None.

        Flat-out trials come first, raw and relay alternately, each repeated
        while it passes so that the best of --repeat is kept (a reader that
        keeps up flat out measures the sender, which is noisy). A UDP reader
        that loses lines flat out is then searched for; a unix one cannot
        lose any."""
        measures = (
            lambda r: self.quiet(lambda x: self.trial_raw(transport, shape, series, x, mix), r),
            lambda r: self.quiet(lambda x: self.trial_relay(transport, shape, series, x, mix,
                                                            linger=linger), r))
        flats = [m(0) for m in measures]
        for _ in range(self.args.repeat - 1):
            for k, m in enumerate(measures):
                if flats[k]["ok"]:
                    again = m(0)
                    if again["ok"] and again["rate"] > flats[k]["rate"]:
                        flats[k] = again
        best = []
        for m, flat in zip(measures, flats):
            if flat["ok"]:
                best.append(flat)
            elif transport == "udp":
                best.append(self.search(m, flat))
            else:
                best.append(None)
        return best[0], best[1]

    def search(self, measure, flat):
        """Geometric search over the offered rate, between the best passing
        and the lowest failing one, starting just under what the reader took
        in flat out. Returns the best passing trial or None."""
        best, lo, hi = None, 0.0, flat["send_rate"]
        guess = min(flat["rate"], hi) * 0.95
        for _ in range(self.args.steps):
            t = measure(guess)
            if t["ok"]:
                best, lo = t, guess
            else:
                hi = guess
            if best and hi / lo < 1.0 + self.args.precision:
                break
            guess = math.sqrt(lo * hi) if best else guess * 0.5
        return best

    def timers(self, kind):
        """The timer-heavy scenario for one type: (raw, relay, at_target).
        Its trials last --timer-seconds, so that most windows are whole, and
        linger past one window after the load so that the last window closes
        on its timer."""
        shape = ["-l", "20"]
        self.seconds = self.args.timer_seconds
        try:
            raw, rel = self.scenario("udp", shape, TIMER_SERIES, mix=kind, linger=1.3)
            at = self.quiet(lambda r: self.trial_relay("udp", shape, TIMER_SERIES, r, kind,
                                                       linger=1.3), TIMER_TARGET_RATE)
        finally:
            self.seconds = self.args.seconds
        return raw, rel, at


def full_window_fwd(windows, rate):
    """Forwarded per received line in the worst whole window: the bursts at
    the fake SpectatorD but the first and the last (windows the load only
    partly covered), each over the lines a window received at `rate`. None
    without a whole window."""
    inner = windows[1:-1]
    if not inner or rate <= 0:
        return None
    return max(inner) / (rate * WINDOW_SECONDS)


# ---------------------------------------------------------------------------
# The matrix and the report
# ---------------------------------------------------------------------------

def sysctl(name):
    try:
        with open("/proc/sys/" + name) as f:
            return f.read().strip()
    except OSError:
        return "?"


def fmt_rate(r):
    return "%.2fM" % (r / 1e6) if r >= 1e6 else "%.0fk" % (r / 1e3)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory (default build)")
    ap.add_argument("--seconds", type=float, default=2.5,
                    help="length of one trial, at most 30 (default 2.5)")
    ap.add_argument("--steps", type=int, default=6, help="search steps per UDP reader (default 6)")
    ap.add_argument("--repeat", type=int, default=2,
                    help="flat-out trials that pass are repeated, best kept (default 2)")
    ap.add_argument("--max-noise", type=float, default=0.05,
                    help="share of the reader's core that others may take in a trial before "
                    "it is run again (default 0.05)")
    ap.add_argument("--retries", type=int, default=2,
                    help="runs again of a trial that was too noisy (default 2)")
    ap.add_argument("--nice", type=int, default=-10,
                    help="niceness of the sender, readers and fake SpectatorD, so that other "
                    "work on a shared machine takes less of their cores; needs root for a "
                    "negative value, 0 leaves it (default -10)")
    ap.add_argument("--precision", type=float, default=0.06,
                    help="stop a search when fail/pass rates are this close (default 0.06)")
    ap.add_argument("--only", default="",
                    help="run only the scenarios whose name contains this, e.g. '1 line udp'; "
                    "'counters' runs only the counters-only check; 'timers' only the "
                    "timer-heavy scenario, 'timers T' (t, D, d) one type of it")
    ap.add_argument("--timer-seconds", type=float, default=5.0,
                    help="length of one trial of the timer-heavy scenario, at most 30 "
                    "(default 5: a few whole windows of 1 s)")
    ap.add_argument("--json", help="also write every result to this file")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every trial")
    args = ap.parse_args()
    if not 0.5 <= args.seconds <= 30:
        ap.error("--seconds must be between 0.5 and 30")
    if not 0.5 <= args.timer_seconds <= 30:
        ap.error("--timer-seconds must be between 0.5 and 30")
    for exe in ("bench/blast", "bench/sink", "spectator-relay"):
        if not os.access(os.path.join(args.build, exe), os.X_OK):
            ap.error("%s/%s is missing: run `make build` first" % (args.build, exe))

    global NICE
    NICE = args.nice
    if NICE < 0:
        try:
            os.setpriority(os.PRIO_PROCESS, 0, os.getpriority(os.PRIO_PROCESS, 0))
            probe = subprocess.run(["true"], preexec_fn=lambda: os.setpriority(
                os.PRIO_PROCESS, 0, NICE))
            if probe.returncode != 0:
                raise OSError
        except (OSError, subprocess.SubprocessError):
            print("warning: cannot set niceness %d (not root?): running at 0" % NICE,
                  flush=True)
            NICE = 0
    b = Bench(args)
    started = time.monotonic()
    results = []
    print("spectator-relay end-to-end benchmark: sender on cpu %d, reader on cpu %d, "
          "%.1f s per trial" % (b.send_core, b.read_core, args.seconds), flush=True)
    print("kernel %s, net.core.rmem_max=%s, net.unix.max_dgram_qlen=%s, nice %d"
          % (os.uname().release, sysctl("net/core/rmem_max"), sysctl("net/unix/max_dgram_qlen"),
             NICE), flush=True)
    if b.send_core == b.read_core:
        print("warning: only one core allowed: sender and reader share it", flush=True)
    before = core_times(b.read_core)
    time.sleep(1)
    idle_noise = b.noise(before, core_times(b.read_core), 0.0)
    if idle_noise > args.max_noise:
        print("warning: other work already takes %.0f%% of the reader's core: expect noisy "
              "results and re-run trials" % (100 * idle_noise), flush=True)
    try:
        for shape_name, shape in SHAPES:
            for transport in TRANSPORTS:
                for series in SERIES:
                    name = "%s %s %dk" % (shape_name, transport, series // 1000)
                    if args.only not in name or args.only in ("counters", "timers"):
                        continue
                    print("  %s ..." % name, file=sys.stderr, flush=True)
                    raw, rel = b.scenario(transport, shape, series)
                    results.append({"scenario": name, "shape": shape_name,
                                    "transport": transport, "series": series, "raw": raw,
                                    "relay": rel})
        timers = []
        for kind in TIMER_KINDS:
            name = "timers %s udp %dk" % (kind, TIMER_SERIES // 1000)
            default = kind in TIMER_DEFAULT_KINDS
            if (args.only in ("", "timers") and default
                    or args.only.startswith("timers ") and args.only in name):
                print("  %s ..." % name, file=sys.stderr, flush=True)
                raw, rel, at = b.timers(kind)
                timers.append({"scenario": name, "kind": kind, "series": TIMER_SERIES,
                               "raw": raw, "relay": rel, "at_target": at})
        counters = None
        if not args.only or args.only == "counters":
            print("  counters-only 10k series at 1M lines/s ...", file=sys.stderr, flush=True)
            # Linger past one window after the load so that the last window
            # closes on its timer and the shutdown flush is empty: then each
            # burst at the fake SpectatorD is exactly one window.
            counters = b.quiet(lambda r: b.trial_relay("udp", ["-l", "20"], 10000, r,
                                                       mix="counters", linger=1.3), 1e6)
    finally:
        b.close()

    report(results, timers, counters, b, time.monotonic() - started)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"scenarios": results, "timers": timers, "counters_10k": counters}, f,
                      indent=1)
    return 0


def table(head, rows):
    """A Markdown table, numbers right-aligned."""
    widths = [max(len(str(r[i])) for r in [head] + rows) for i in range(len(head))]

    def line(cells):
        return "| " + " | ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                                 for i, (c, w) in enumerate(zip(cells, widths))) + " |"
    rule = "|" + "|".join("-" * (w + 2) if i == 0 else "-" * (w + 1) + ":"
                          for i, w in enumerate(widths)) + "|"
    return "\n".join([line(head), rule] + [line(r) for r in rows])


def fmt_fwd(x):
    return "-" if x is None else "%.4f" % x


def report(results, timers, counters, b, elapsed):
    head = ("scenario", "raw lines/s", "relay lines/s", "relay/raw", "relay us/1k lines",
            "fwd/recv", "relay peak RSS", "relay CPU busy", "raw us/1k lines")
    rows = []
    for r in results:
        raw, rel = r["raw"], r["relay"]
        rows.append((r["scenario"],
                     fmt_rate(raw["rate"]) if raw else "none",
                     fmt_rate(rel["rate"]) if rel else "none",
                     "%.2f" % (rel["rate"] / raw["rate"]) if raw and rel else "-",
                     "%.0f" % rel["cpu_us_per_1k"] if rel else "-",
                     "%.3f" % rel["fwd_per_line"] if rel else "-",
                     "%.1f MiB" % (rel["rss_kib"] / 1024.0) if rel else "-",
                     "%.0f%%" % (100 * rel["busy"]) if rel else "-",
                     "%.0f" % raw["cpu_us_per_1k"] if raw else "-"))
    if rows:
        print()
        print(table(head, rows))
        print()
    print("lines/s: highest rate with every line received and zero kernel drops (UDP: "
          "searched; unix: blocking sender, flat out).")
    print("relay us/1k lines: relay CPU (user+sys) per 1000 received lines at that rate.")
    print("fwd/recv: lines forwarded upstream per line received (t/T/d/D series forward their "
          "statistics, or their samples when that is shorter).")
    print("relay CPU busy: relay CPU time / sending time; near 100% means the relay is the "
          "limit, well under it means the sender or the socket is.")
    print("raw us/1k lines: the same CPU figure for bench/sink, which only counts lines.")

    if timers:
        head = ("timer-heavy scenario", "raw lines/s", "relay lines/s", "relay/raw",
                "relay us/1k lines", "fwd/recv", "fwd/recv window", "relay CPU busy",
                "at 4M offered: sent/s", "recv/s", "lost", "fwd/recv", "fwd/recv window")
        rows = []
        for r in timers:
            raw, rel, at = r["raw"], r["relay"], r["at_target"]
            rows.append((r["scenario"],
                         fmt_rate(raw["rate"]) if raw else "none",
                         fmt_rate(rel["rate"]) if rel else "none",
                         "%.2f" % (rel["rate"] / raw["rate"]) if raw and rel else "-",
                         "%.0f" % rel["cpu_us_per_1k"] if rel else "-",
                         fmt_fwd(rel["fwd_per_line"]) if rel else "-",
                         fmt_fwd(rel["fwd_per_line_window"]) if rel else "-",
                         "%.0f%%" % (100 * rel["busy"]) if rel else "-",
                         fmt_rate(at["send_rate"]), fmt_rate(at["rate"]),
                         "%d" % (at["drops"] + max(at["lost"], 0)),
                         fmt_fwd(at["fwd_per_line"]), fmt_fwd(at["fwd_per_line_window"])))
        print()
        print(table(head, rows))
        print()
        print("One type alone, 20-line UDP datagrams, %d series of about 30 buckets, window "
              "%.0f s, %.1f s per trial." % (TIMER_SERIES, WINDOW_SECONDS, b.args.timer_seconds))
        print("fwd/recv: over the whole trial, windows the load only partly covered included; "
              "fwd/recv window: the worst whole window.")
        print("A window forwards about series x (4 + buckets) lines whatever the rate, so "
              "fwd/recv falls as the rate rises.")

    # The targets.
    def find(shape, transport):
        return [r for r in results if r["shape"] == shape and r["transport"] == transport]

    checks = []
    for r in find("1 line", "udp"):
        checks.append(ratio_check(r, 0.9, "relay >= 0.9x raw, 1-line UDP"))
    for r in find("20 lines", "udp"):
        rate = r["relay"]["rate"] if r["relay"] else 0.0
        checks.append((rate >= 4e6, "relay >= 4M lines/s, 20-line UDP, %s series: %s"
                       % (r["series"], fmt_rate(rate))))
    for r in [r for r in results if r["transport"] == "unix"]:
        checks.append(ratio_check(r, 0.8, "relay >= 0.8x raw, unix"))
    for r in timers:
        at = r["at_target"]
        lost = at["drops"] + max(at["lost"], 0)
        fwd = at["fwd_per_line_window"]
        # The sender must have kept up with the rate asked for, too.
        ok = (at["ok"] and at["send_rate"] >= 0.97 * TIMER_TARGET_RATE and fwd is not None
              and fwd <= TIMER_TARGET_FWD)
        checks.append((ok, "%s: 4M lines/s offered, zero drops and <= 1%% forwarded: sent "
                       "%s/s, received %s/s, lost %d, fwd/recv %s (worst whole window), %s "
                       "(whole trial)"
                       % (r["scenario"], fmt_rate(at["send_rate"]), fmt_rate(at["rate"]), lost,
                          fmt_fwd(fwd), fmt_fwd(at["fwd_per_line"]))))
    if counters:
        windows = counters["windows"]
        worst = max(windows) if windows else 0
        ok = counters["ok"] and worst <= 1.01 * 10000
        checks.append((ok, "counters-only, 10k series at 1M lines/s: <= 10100 lines per "
                       "window: windows=%s (lines each), received %s/s, drops=%d, lost=%d"
                       % (",".join(map(str, windows)), fmt_rate(counters["rate"]),
                          counters["drops"], counters["lost"])))
    print()
    print("targets:")
    for ok, text in checks:
        print("  %s  %s" % ("PASS" if ok else "FAIL", text))
    print()
    print("%d trials in %.0f s; %d losses run again because other work took over %.0f%% "
          "of the reader's core, %d kept although still noisy"
          % (b.trials, elapsed, b.rerun, 100 * b.args.max_noise, b.noisy))


def ratio_check(r, want, text):
    raw, rel = r["raw"], r["relay"]
    ratio = rel["rate"] / raw["rate"] if raw and rel else 0.0
    return (ratio >= want, "%s (%s): %.2f" % (text, r["scenario"], ratio))


if __name__ == "__main__":
    try:
        sys.exit(main())
    except (BenchError, AssertionError) as e:
        print("bench-e2e: " + str(e), file=sys.stderr)
        sys.exit(1)
