#!/usr/bin/env bash
# func-length-selftest.sh: tests/func-length.sh finds a long function (exit 1),
# passes a short one (exit 0), and refuses a file with no function it can
# recognise (exit 2) instead of calling it "all short".
here=$(cd "$(dirname "$0")" && pwd)
dir=$(mktemp -d /tmp/func-length-selftest.XXXXXX)
trap 'rm -rf "$dir"' EXIT
pass=0 fail=0
check() { if [ "$2" = "$3" ]; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1 (exit $2, want $3)"; fi; }
body() { printf 'static int\n%s(void)\n{\n' "$1"; for _ in $(seq "$2"); do echo '    x++;'; done; printf '}\n'; }
body long 90 >"$dir/long.c"
body short 10 >"$dir/short.c"
echo 'int x;' >"$dir/none.c"
out=$(bash "$here/func-length.sh" 80 "$dir/long.c" "$dir/short.c"); rc=$?
check "a 92-line function over 80" $rc 1
grep -q "long.c:2: long 92 lines" <<<"$out"; check "names it with its line and length" $? 0
bash "$here/func-length.sh" 80 "$dir/short.c" >/dev/null; check "a 12-line function" $? 0
bash "$here/func-length.sh" 80 "$dir/none.c" >/dev/null 2>&1; check "no function found" $? 2
echo "func-length selftest: $pass passed, $fail failed"
[ "$fail" -eq 0 ]
