"""No include cycle among the modules of src/: each module (a .c and its .h)
includes only modules below it, so that the source tour can list every
module after the ones it uses. Given the README, also checks that its tour
lists every module, each after every module it includes.

usage: check_includes.py SRC_DIR [README]"""

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


def tour_problems(g, readme):
    """The README's source tour against the include graph."""
    with open(readme) as fh:
        order = re.findall(r"^\| `src/([a-z_]+)\.(?:\[ch\]|c|h)` \|", fh.read(), flags=re.M)
    problems = ["%s is not in the source tour" % m for m in sorted(set(g) - set(order))]
    seen = set()
    for m in order:
        problems += ["the tour lists %s before %s, which it includes" % (m, i)
                     for i in sorted(g.get(m, ())) if i not in seen]
        seen.add(m)
    return problems


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
    if len(sys.argv) > 2:
        problems = tour_problems(g, sys.argv[2])
        if problems:
            print("\n".join(problems))
            return 1
    print("%d modules, no include cycle%s" % (len(g), ", in the tour's order" if len(sys.argv) > 2 else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
