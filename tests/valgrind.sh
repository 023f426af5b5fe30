#!/usr/bin/env bash
# tests/valgrind.sh BULWARK: run bulwark under valgrind in front of a private
# redis-server, push mixed traffic through it (pipelines, local commands,
# protocol errors, a client gone with requests in flight, an upstream restart),
# stop it with SIGTERM and require exit 0 with no leaks and no memory errors.
set -u
bin=${1:-./bulwark}
dir=$(mktemp -d /tmp/bulwark-vg.XXXXXX)
pass=0 fail=0
pids=()
cleanup() { for p in "${pids[@]}"; do { kill -9 "$p"; wait "$p"; } 2>/dev/null; done; if [ -n "${KEEP:-}" ]; then echo "kept $dir"; else rm -rf "$dir"; fi; }
trap cleanup EXIT
check() { if eval "$2"; then pass=$((pass+1)); else fail=$((fail+1)); echo "FAIL: $1"; fi; }
. "$(dirname "$0")/lib.sh"
WAIT_PORT_TRIES=1200 # 60 s: bulwark starts slowly under valgrind

if ! command -v valgrind >/dev/null; then
    echo "valgrind not installed"; echo "0 passed, 1 failed"; exit 1
fi
# A free port can be taken by someone else before redis binds it: retry.
for _ in 1 2 3 4 5; do
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --daemonize no --logfile "$dir/redis.log" & rpid=$!; pids+=($rpid)
    wait_port "$rport" && kill -0 "$rpid" 2>/dev/null && break
done
bport=$(free_port)
valgrind --leak-check=full --show-leak-kinds=definite,indirect,possible \
    --errors-for-leak-kinds=definite,indirect,possible --error-exitcode=99 \
    --log-file="$dir/valgrind.log" "$bin" --port "$bport" --upstream "127.0.0.1:$rport" \
    --loglevel warning --logfile "$dir/bulwark.log" & vpid=$!; pids+=($vpid)
check "bulwark under valgrind answers" "wait_port $bport"
if [ "$fail" -ne 0 ]; then # nothing to test: do not leave a client spinning on a dead port
    tail -n 20 "$dir/bulwark.log" "$dir/valgrind.log" 2>/dev/null
    echo "$pass passed, $fail failed"
    exit 1
fi

timeout 300 redis-benchmark -p "$bport" -t set,get,lpush,lrange_100,mset -n 2000 -c 20 -P 8 -q >/dev/null 2>&1
check "benchmark traffic" "[[ \"\$(redis-cli -p $bport dbsize)\" =~ ^[1-9][0-9]*$ ]]"
redis-cli -p "$bport" info >/dev/null; redis-cli -p "$bport" config get '*max*' >/dev/null
redis-cli -p "$bport" config set maxclients 500 >/dev/null; redis-cli -p "$bport" hello 2 >/dev/null
redis-cli -p "$bport" client setname vg >/dev/null; redis-cli -p "$bport" client list >/dev/null
redis-cli -p "$bport" command docs get >/dev/null
# protocol error, and a client that leaves with 1000 requests in flight
printf 'PING\r\n*abc\r\n' | timeout 5 redis-cli -p "$bport" >/dev/null 2>&1
python3 - "$bport" <<'PY' 2>/dev/null || true
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(b"*2\r\n$3\r\nGET\r\n$3\r\nkey\r\n" * 1000)
s.close()
PY
# upstream restart while bulwark runs
kill "$rpid"; wait "$rpid" 2>/dev/null
redis-cli -p "$bport" get x >/dev/null
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize no --logfile "$dir/redis.log" & rpid=$!; pids+=($rpid)
wait_port "$rport"
for _ in $(seq 100); do [ "$(redis-cli -p "$bport" set k v 2>/dev/null)" = OK ] && break; sleep 0.05; done
check "traffic after upstream restart" "[ \"\$(redis-cli -p $bport get k)\" = v ]"

kill -TERM "$vpid"
wait "$vpid"; rc=$?
check "clean shutdown exits 0 under valgrind (rc=$rc)" "[ $rc -eq 0 ]"
if [ "$rc" -ne 0 ]; then sed -n '/HEAP SUMMARY/,$p' "$dir/valgrind.log" | head -60; fi
grep -E "definitely lost|indirectly lost|All heap blocks|ERROR SUMMARY" "$dir/valgrind.log" | sed 's/^==[0-9]*== /valgrind: /'
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
