"""No include cycle among the modules of src/: each module (a .c and its .h)
includes only modules below it, so that the source tour can list every
module after the ones it uses.

usage: check_includes.py SRC_DIR"""

import os
import re
import sys


def graph(src):
    g = {}
    for f in sorted(os.listdir(src)):
        if not f.endswith((".c", ".h")):
            continue
        mod = f.rsplit(".", 1)[0]
        with open(os.path.join(src, f)) as fh:
            incs = re.findall(r'^#include "([^"]+)\.h"', fh.read(), flags=re.M)
        g.setdefault(mod, set()).update(i for i in incs if i != mod)
    return g


def find_cycle(g):
    state, stack = {}, []

    def visit(u):
        state[u] = 1
        stack.append(u)
        for v in sorted(g.get(u, ())):
            if state.get(v) == 1:
                return stack[stack.index(v):] + [v]
            if v not in state:
                c = visit(v)
                if c:
                    return c
        state[u] = 2
        stack.pop()
        return None

    for u in sorted(g):
        if u not in state:
            c = visit(u)
            if c:
                return c
    return None


def main():
    g = graph(sys.argv[1])
    missing = sorted({i for incs in g.values() for i in incs} - set(g))
    if missing:
        print("included but not in src/: %s" % ", ".join(missing))
        return 1
    cycle = find_cycle(g)
    if cycle:
        print("include cycle: %s" % " -> ".join(cycle))
        return 1
    print("%d modules, no include cycle" % len(g))
    return 0


if __name__ == "__main__":
    sys.exit(main())
