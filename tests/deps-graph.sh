#!/usr/bin/env bash
# tests/deps-graph.sh: the file-level call graph of the daemon from its object
# files (nm), and every circle in it (issue #12: no import circle in proxy/).
#
# usage: tests/deps-graph.sh [-v] [--dot FILE] [-b BUILD_DIR] [FILE ...]
#   FILE        a source (proxy/client.c, looked up as BUILD_DIR/proxy/client.o)
#               or an object file (x.o); default: every .o under
#               BUILD_DIR/proxy, BUILD_DIR/bloom and BUILD_DIR/config
#   -b DIR      the build directory (default build/release)
#   -v          also list the symbols of every edge, and for each circle one
#               shortest cycle through each of its files
#   --dot FILE  also write the graph as graphviz dot to FILE ("-" for stdout;
#               then the text report goes to stderr); edges inside a circle red
#   --expect A:B the edge A -> B must be in the graph (exit 2 if not): a graph
#               read wrong or empty (stripped objects, nm printing nothing)
#               cannot pass as "no circle"
#
# A -> B when an undefined symbol of A.o is defined (nm type T, D, B, R, and
# the rarer C, G, S, V, W) in B.o; symbols no listed object defines (libc,
# libevent, hiredis) are ignored. A file is named by its object's path relative
# to BUILD_DIR without ".o" (proxy/client).
#
# Output: one "a -> b (n symbols)" line per edge, sorted; then each strongly
# connected component of two or more files, with one concrete cycle in it and
# the symbols of each of its edges.
# Exit: 0 no circle, 1 at least one circle, 2 usage error, a missing object,
# nm failing, an --expect edge missing, or no edge at all between 2+ files.
exec python3 - "$@" <<'PY'
import os
import subprocess
import sys
from collections import deque

DEFINED = set("TDBRCGSVW")


def usage(msg):
    sys.stderr.write("deps-graph: %s\n" % msg)
    sys.stderr.write("usage: tests/deps-graph.sh [-v] [--dot FILE] [-b BUILD_DIR] [FILE ...]\n")
    sys.exit(2)


verbose = False
dot_path = None
expect = []
build = "build/release"
files = []
args = sys.argv[1:]
while args:
    a = args.pop(0)
    if a == "-v":
        verbose = True
    elif a == "--dot":
        if not args:
            usage("--dot needs a file")
        dot_path = args.pop(0)
    elif a == "--expect":
        if not args or ":" not in args[0]:
            usage("--expect needs A:B")
        expect.append(tuple(args.pop(0).split(":", 1)))
    elif a == "-b":
        if not args:
            usage("-b needs a directory")
        build = args.pop(0)
    elif a in ("-h", "--help"):
        usage("help")
    elif a == "--":
        files.extend(args)
        args = []
    elif a.startswith("-"):
        usage("unknown option " + a)
    else:
        files.append(a)

out = sys.stderr if dot_path == "-" else sys.stdout

if not files:
    for sub in ("proxy", "bloom", "config"):
        d = os.path.join(build, sub)
        if os.path.isdir(d):
            files += [os.path.join(d, f) for f in sorted(os.listdir(d)) if f.endswith(".o")]
    if not files:
        usage("no object files under %s/{proxy,bloom,config}: run make all first" % build)

# label -> object path
objects = {}
for f in files:
    if f.endswith(".c"):
        obj = os.path.join(build, f[:-2] + ".o")
    elif f.endswith(".o"):
        obj = f
        if not os.path.exists(obj) and os.path.exists(os.path.join(build, f)):
            obj = os.path.join(build, f)
    else:
        usage("not a .c or .o file: " + f)
    if not os.path.exists(obj):
        usage("missing object %s (run make all first)" % obj)
    rel = os.path.relpath(obj, build)
    label = (rel if not rel.startswith("..") else os.path.basename(obj))[:-2]
    if label in objects and objects[label] != obj:
        usage("two objects named %s: %s and %s" % (label, objects[label], obj))
    objects[label] = obj

defs = {}       # label -> set of defined global symbols
undefs = {}     # label -> set of undefined symbols
for label, obj in objects.items():
    try:
        text = subprocess.run(["nm", "-P", obj], check=True, capture_output=True,
                              text=True).stdout
    except (OSError, subprocess.CalledProcessError) as e:
        sys.stderr.write("deps-graph: nm %s failed: %s\n" % (obj, e))
        sys.exit(2)
    d, u = set(), set()
    for line in text.splitlines():
        parts = line.split()
        if len(parts) < 2:
            continue
        name, kind = parts[0], parts[1]
        if kind == "U":
            u.add(name)
        elif kind in DEFINED:
            d.add(name)
    defs[label], undefs[label] = d, u

definers = {}   # symbol -> labels defining it
for label, d in defs.items():
    for s in d:
        definers.setdefault(s, []).append(label)

edges = {}      # (a, b) -> sorted symbols
for a, u in undefs.items():
    for s in u:
        for b in definers.get(s, ()):
            if b != a:
                edges.setdefault((a, b), []).append(s)
for k in edges:
    edges[k].sort()
succ = {n: sorted(b for (a, b) in edges if a == n) for n in objects}
if len(objects) > 1 and not edges:
    sys.stderr.write("deps-graph: no edge between %d files: the objects were not read\n"
                     % len(objects))
    sys.exit(2)
for (a, b) in expect:
    if (a, b) not in edges:
        sys.stderr.write("deps-graph: expected edge %s -> %s is not in the graph\n" % (a, b))
        sys.exit(2)

# Tarjan's strongly connected components (iterative: no recursion limit).
index, low, on_stack, stack, sccs = {}, {}, set(), [], []
counter = 0
for root in sorted(objects):
    if root in index:
        continue
    work = [(root, 0)]
    while work:
        v, i = work.pop()
        if i == 0:
            index[v] = low[v] = counter
            counter += 1
            stack.append(v)
            on_stack.add(v)
        recurse = False
        for j in range(i, len(succ[v])):
            w = succ[v][j]
            if w not in index:
                work.append((v, j + 1))
                work.append((w, 0))
                recurse = True
                break
            if w in on_stack:
                low[v] = min(low[v], index[w])
        if recurse:
            continue
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) >= 2:
                sccs.append(sorted(comp))
        if work:
            parent = work[-1][0]
            low[parent] = min(low[parent], low[v])
sccs.sort(key=lambda c: (-len(c), c))
in_scc = {n: i for i, c in enumerate(sccs) for n in c}


def shortest_cycle(start, members):
    """Shortest cycle start -> ... -> start inside members (BFS)."""
    prev = {}
    q = deque([start])
    seen = {start}
    while q:
        v = q.popleft()
        for w in succ[v]:
            if w not in members:
                continue
            if w == start:
                path = [v]
                while path[-1] != start:
                    path.append(prev[path[-1]])
                return list(reversed(path)) + [start]
            if w not in seen:
                seen.add(w)
                prev[w] = v
                q.append(w)
    return None


def print_cycle(path, indent):
    out.write("%scycle: %s\n" % (indent, " -> ".join(path)))
    for a, b in zip(path, path[1:]):
        out.write("%s  %s -> %s: %s\n" % (indent, a, b, " ".join(edges[(a, b)])))


out.write("# %d files, %d edges (a -> b: a.o uses symbols b.o defines)\n"
          % (len(objects), len(edges)))
for (a, b) in sorted(edges):
    syms = edges[(a, b)]
    out.write("%s -> %s (%d symbol%s)\n" % (a, b, len(syms), "" if len(syms) == 1 else "s"))
    if verbose:
        for s in syms:
            out.write("    %s\n" % s)

if not sccs:
    out.write("# no circle: the call graph is acyclic\n")
else:
    out.write("# %d circle%s (strongly connected components of 2+ files)\n"
              % (len(sccs), "" if len(sccs) == 1 else "s"))
    for i, comp in enumerate(sccs, 1):
        members = set(comp)
        out.write("SCC %d (%d files): %s\n" % (i, len(comp), " ".join(comp)))
        # The hub: the member with the most edges inside the component.
        deg = {n: sum(1 for (a, b) in edges if a in members and b in members and n in (a, b))
               for n in comp}
        hub = sorted(comp, key=lambda n: (-deg[n], n))[0]
        print_cycle(shortest_cycle(hub, members), "  ")
        if verbose:
            shown = set()
            for n in comp:
                path = shortest_cycle(n, members)
                key = frozenset(zip(path, path[1:]))
                if key in shown:
                    continue
                shown.add(key)
                out.write("  via %s:\n" % n)
                print_cycle(path, "    ")

if dot_path is not None:
    lines = ["digraph deps {", "    rankdir=LR;", "    node [shape=box, fontsize=10];"]
    for n in sorted(objects):
        attr = ' style=filled fillcolor="#f4cccc"' if n in in_scc else ""
        lines.append('    "%s" [label="%s"%s];' % (n, n, attr))
    for (a, b) in sorted(edges):
        red = a in in_scc and in_scc.get(a) == in_scc.get(b)
        lines.append('    "%s" -> "%s" [label="%d"%s];'
                     % (a, b, len(edges[(a, b)]), ", color=red" if red else ""))
    lines.append("}")
    text = "\n".join(lines) + "\n"
    if dot_path == "-":
        sys.stdout.write(text)
    else:
        with open(dot_path, "w") as f:
            f.write(text)

sys.exit(1 if sccs else 0)
PY
