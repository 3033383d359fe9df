"""A small model of what SpectatorD publishes (docs/protocol.md 6.1, 6.2 and
12.9), for the meters whose lines the relay merges into others: counters,
max gauges, timers and distribution summaries, percentile ones included.

Feed it protocol lines, in order; publish() then gives what Atlas would hold
for them: every measurement id SpectatorD would publish, with its value
folded as Atlas folds measurements of one id (op add: the sum; op max: the
max), as if every line had landed in one publish step. Two models fed the
lines sent straight to SpectatorD and the lines the relay forwarded must
publish the same thing: the same ids, counts, buckets and maxima exactly,
totals within rounding (same_publish()).

Written from the protocol document, independently of the relay's code. Lines
of other types (g C U A X) are ignored.
"""

import math

STAT_OP = {"count": "add", "totalAmount": "add", "totalTime": "add", "totalOfSquares": "add",
           "percentile": "add"}
INT64_MAX = 2**63 - 1
TIMER_MAX_NS = 86400 * 10**9


def replace_bytes(s):
    """SpectatorD's byte-wise character replacement (protocol.md 5)."""
    ok = set(b"-._~^0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
    return bytes(c if c in ok else ord("_") for c in s.encode("utf-8", "surrogateescape")).decode()


def parse(line):
    """A well-formed line -> (type, name, {key: value}, number text). Test
    lines only: no error handling beyond what the tests send."""
    typ = line[0]
    rest = line[2:] if line[1] == ":" else line[line.index(":") + 1:]
    ident, _, number = rest.rpartition(":")
    parts = ident.split(",")
    tags = {}
    for p in parts[1:]:
        k, _, v = p.partition("=")
        tags[replace_bytes(k)] = replace_bytes(v)
    return typ, replace_bytes(parts[0]), tags, number.strip()


def key_of(name, tags):
    return name + "".join(",%s=%s" % (k, tags[k]) for k in sorted(tags))


def bucket_index(v):
    """SpectatorD's PercentileBucketIndexOf(), from its definition."""
    if v <= 0:
        return 0
    if v <= 4:
        return v
    shift = v.bit_length() - 1
    shift -= shift % 2
    base = 1 << shift
    k = shift // 2
    start = 3 if k == 1 else 14 + 9 * (k - 2)
    pos = (v - base) // (base // 3) + start
    return 275 if pos >= 275 else pos + 1


class Meter:
    def __init__(self):
        self.count = 0
        self.total = 0          # int ns for timers, float for summaries
        self.total_sq = 0.0
        self.max = 0


class SpectatordModel:

    def __init__(self):
        self.counters = {}      # key -> sum of positive deltas
        self.maxes = {}         # key -> max
        self.timers = {}        # base key -> Meter (t and T share one)
        self.summaries = {}     # base key -> Meter (d and D share one)
        self.buckets = {}       # bucket counter key -> count

    def feed(self, lines):
        for line in lines:
            self.line(line)
        return self

    def line(self, line):
        typ, name, tags, number = parse(line)
        if typ == "c":
            v = float(number)
            tags.setdefault("statistic", "count")   # Counter: WithDefaultStat
            k = key_of(name, tags)
            if v >= 0:   # negatives are ignored; the relay never sends them
                self.counters[k] = self.counters.get(k, 0.0) + v
        elif typ == "m":
            tags["statistic"] = "max"              # MaxGauge: forced
            k = key_of(name, tags)
            self.maxes[k] = max(self.maxes.get(k, -math.inf), float(number))
        elif typ in "tT":
            ns = int(float(number) * 1e9)          # C cast: truncation toward zero
            m = self.timers.setdefault(key_of(name, tags), Meter())
            if ns >= 0:
                m.count += 1
                m.total += ns
                m.total_sq += float(ns) * float(ns)
                m.max = max(m.max, ns)
            if typ == "T":
                self.bucket(name, tags, "T", bucket_index(min(max(ns, 1), TIMER_MAX_NS)))
        elif typ in "dD":
            v = float(number)
            if typ == "D":
                v = float(int(v))
            m = self.summaries.setdefault(key_of(name, tags), Meter())
            if v >= 0:
                m.count += 1
                m.total += v
                m.total_sq += v * v
                m.max = max(m.max, v)
            if typ == "D" and v >= 0:
                self.bucket(name, tags, "D", bucket_index(int(v)))

    def bucket(self, name, tags, prefix, index):
        t = dict(tags)
        t["statistic"] = "percentile"
        t["percentile"] = "%s%04X" % (prefix, index)
        k = key_of(name, t)
        self.buckets[k] = self.buckets.get(k, 0) + 1

    def publish(self):
        """{measurement id: (op, value)}, folded as Atlas folds them."""
        out = {}

        def add(key, op, value):
            if key in out:
                old_op, old = out[key]
                assert old_op == op, key
                value = old + value if op == "add" else max(old, value)
            out[key] = (op, value)

        for k, v in self.counters.items():
            if v > 0:   # a counter that sums to 0 is not published
                stat = k.split("statistic=")[1].split(",")[0]
                add(k, STAT_OP.get(stat, "max"), v)
        for k, v in self.maxes.items():
            if v > -1.7976931348623157e308:
                add(k, "max", v)
        for k, v in self.buckets.items():
            add(k, "add", float(v))
        for base, m in self.timers.items():
            self.publish_meter(add, base, m, 1e9, 1e18, "totalTime")
        for base, m in self.summaries.items():
            self.publish_meter(add, base, m, 1, 1, "totalAmount")
        return out

    @staticmethod
    def publish_meter(add, base, m, unit, unit_sq, total_stat):
        if m.count == 0:
            return
        name, _, rest = base.partition(",")
        tags = dict(p.split("=", 1) for p in rest.split(",")) if rest else {}

        def stat(s):
            t = dict(tags)
            t["statistic"] = s
            return key_of(name, t)
        add(stat("count"), "add", float(m.count))
        add(stat(total_stat), "add", m.total / unit)
        add(stat("totalOfSquares"), "add", m.total_sq / unit_sq)
        add(stat("max"), "max", m.max / unit)


def same_publish(test, direct, relayed, rel=1e-12):
    """Asserts that two publishes hold the same ids; counts, buckets and
    maxima equal, totals within `rel` relative."""
    test.assertEqual(sorted(direct), sorted(relayed), "published ids differ")
    for k, (op, v) in direct.items():
        rop, rv = relayed[k]
        test.assertEqual(op, rop, k)
        exact = "statistic=totalTime" not in k and "statistic=totalAmount" not in k and \
            "statistic=totalOfSquares" not in k
        if exact:
            test.assertEqual(v, rv, k)
        else:
            test.assertTrue(v == rv or abs(v - rv) <= rel * max(abs(v), abs(rv)),
                            "%s: %r != %r" % (k, v, rv))
