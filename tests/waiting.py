"""The one way the Python harnesses wait: poll a condition until it holds or a
deadline passes. A fixed sleep never stands in for "long enough".

Shared by tests/blackbox/relaytest.py, tests/ops/opsutil.py and
tests/systemd/boot_test.py. ctest runs each harness from its own directory
and make runs boot_test.py as a script, so each puts this file's directory
(tests/) on sys.path before importing it. Python standard library only.
"""

import os
import time

# Sanitizer builds are slower; deadlines are scaled by this factor, which
# tests/CMakeLists.txt sets (4 under ASan, else 1).
SLOW = float(os.environ.get("RELAY_TEST_SLOW", "1"))


def wait_until(predicate, timeout=10.0, interval=0.01, message="condition"):
    """Polls predicate() every `interval` seconds until it returns a truthy
    value, and returns that value. Raises AssertionError naming `message`
    once `timeout` seconds (times SLOW) have passed without one."""
    limit = timeout * SLOW
    deadline = time.monotonic() + limit
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %gs waiting for %s" % (limit, message))
        time.sleep(interval)  # the polling period, not a guess at how long things take
