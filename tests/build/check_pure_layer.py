"""The pure core (librelaycore.a) calls no libuv, socket, logging or
sd_notify function: the layering the README's source tour describes is held
by the build, not by review.

usage: check_pure_layer.py NM LIBRARY

Fails, naming each, if an undefined symbol of the library is one of those;
and fails if the library defines none of the functions it is known for (a
check that passed on an empty archive would prove nothing)."""

import re
import subprocess
import sys

FORBIDDEN = [
    r"uv_.*",                                   # libuv
    r"socket|socketpair|bind|connect|listen|accept4?",
    r"send|sendto|sendmsg|sendmmsg|recv|recvfrom|recvmsg|recvmmsg",
    r"setsockopt|getsockopt|getsockname|getpeername|shutdown",
    r"log_.*",                                  # the relay's logging (log.h)
    r"syslog|vsyslog|openlog",
    r"sd_.*",                                   # libsystemd
    r"sdnotify_.*",
]
EXPECTED = ["proto_parse_line", "agg_table_record", "packer_add_table", "config_load"]


def main():
    nm, lib = sys.argv[1], sys.argv[2]
    undefined = set(subprocess.run([nm, "-u", lib], check=True, capture_output=True,
                                   text=True).stdout.split())
    defined = subprocess.run([nm, "--defined-only", lib], check=True, capture_output=True,
                             text=True).stdout
    missing = [f for f in EXPECTED if not re.search(r"\bT %s\b" % f, defined)]
    if missing:
        print("%s does not define %s: is it the pure core?" % (lib, ", ".join(missing)))
        return 1
    pattern = re.compile("^(%s)$" % "|".join(FORBIDDEN))
    bad = sorted(s for s in undefined if pattern.match(s))
    if bad:
        print("the pure core calls what belongs to the I/O layer: %s" % ", ".join(bad))
        return 1
    print("pure core: %d undefined symbols, none of libuv, sockets, logging or sd_notify"
          % len(undefined))
    return 0


if __name__ == "__main__":
    sys.exit(main())
