#!/usr/bin/env bash
# tests/deps-graph-selftest.sh: tests/deps-graph.sh on three tiny objects in a
# temp dir: a <-> b plus c (a circle: exit 1, names a and b, not c), then the
# same without b's call back to a (no circle: exit 0), then a missing object
# (exit 2). Edges through data (B, R) are checked along the way.
set -u
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/bulwark-deps-selftest.XXXXXX)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; fi; }
CC=${CC:-cc}

# a calls b; c reads a's const table (R) and b's counter (B); b calls a only
# when -DCIRCLE.
cat >"$dir/a.c" <<'EOF'
int b_f(int);
int a_f(int x);
const int a_table[4] = {1, 2, 3, 4};
int a_f(int x) { return b_f(x) + 1; }
EOF
cat >"$dir/b.c" <<'EOF'
int a_f(int);
int b_f(int x);
int b_count;
#ifdef CIRCLE
int b_f(int x) { b_count++; return x > 10 ? a_f(x - 10) : x; }
#else
int b_f(int x) { b_count++; return x; }
#endif
EOF
cat >"$dir/c.c" <<'EOF'
extern const int a_table[4];
extern int b_count;
int c_f(void);
int c_f(void) { return a_table[b_count & 3]; }
EOF

build() { # build SUBDIR [CFLAGS]: objects a.o b.o c.o in $dir/SUBDIR
    mkdir -p "$dir/$1"
    for f in a b c; do "$CC" -c -O2 ${2:-} "$dir/$f.c" -o "$dir/$1/$f.o" || exit 2; done
}

# 1. a circle a -> b -> a, and c outside it
build circle -DCIRCLE
out=$("$here/deps-graph.sh" -v --dot "$dir/circle.dot" -b "$dir/circle" a.o b.o c.o); rc=$?
check "circle: exit 1 (got $rc)" '[ $rc -eq 1 ]'
check "circle: SCC names a and b only" 'grep -qx "SCC 1 (2 files): a b" <<<"$out"'
check "circle: a cycle through a and b" 'grep -Eq "cycle: (a -> b -> a|b -> a -> b)$" <<<"$out"'
check "circle: edge symbols listed" 'grep -q "b -> a: a_f" <<<"$out" && grep -q "a -> b: b_f" <<<"$out"'
check "circle: c outside every SCC" '! grep "^SCC" <<<"$out" | grep -qw c'
check "circle: c -> a through R data" 'grep -qx "c -> a (1 symbol)" <<<"$out"'
check "circle: c -> b through B data" 'grep -qx "c -> b (1 symbol)" <<<"$out"'
check "circle: dot marks a -> b red" 'grep -q "\"a\" -> \"b\" .*color=red" "$dir/circle.dot"'
check "circle: dot leaves c -> a black" '! grep -q "\"c\" -> \"a\" .*color=red" "$dir/circle.dot"'

# 2. no circle: same files, b does not call a
build flat
out=$("$here/deps-graph.sh" -b "$dir/flat" a.o b.o c.o); rc=$?
check "flat: exit 0 (got $rc)" '[ $rc -eq 0 ]'
check "flat: no SCC" '! grep -q "^SCC" <<<"$out"'
check "flat: a -> b kept" 'grep -qx "a -> b (1 symbol)" <<<"$out"'
check "flat: no b -> a" '! grep -q "^b -> a" <<<"$out"'

# 3. a missing object is an error, not "no circle"
"$here/deps-graph.sh" -b "$dir/flat" a.o missing.o >/dev/null 2>&1; rc=$?
check "missing object: exit 2 (got $rc)" '[ $rc -eq 2 ]'

# 4. a graph read wrong cannot pass: a missing expected edge, or no edge at all
"$here/deps-graph.sh" -b "$dir/flat" --expect a:b a.o b.o c.o >/dev/null 2>&1; rc=$?
check "expected edge present: exit 0 (got $rc)" '[ $rc -eq 0 ]'
"$here/deps-graph.sh" -b "$dir/flat" --expect b:a a.o b.o c.o >/dev/null 2>&1; rc=$?
check "expected edge missing: exit 2 (got $rc)" '[ $rc -eq 2 ]'
: >"$dir/flat/empty1.o"; : >"$dir/flat/empty2.o"
"$here/deps-graph.sh" -b "$dir/flat" empty1.o empty2.o >/dev/null 2>&1; rc=$?
check "no edge between files: exit 2 (got $rc)" '[ $rc -eq 2 ]'

echo "deps-graph selftest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
