#!/usr/bin/env bash
# fuzz-bypass: resp-fuzz --bypass (writes made directly on the upstream, read at
# once through bulwark) against bulwark in front of its own redis-server and a
# reference redis-server, all on free loopback ports in a temp dir; once with
# hot keys on (--hotkey-threshold 1) and once with them off (--hotkey no).
# Exits non-zero on any divergence (issue #18 item 2).
#
# usage: tests/fuzz-bypass.sh [-n SEQUENCES] [-s SEED] [-b BULWARK_BIN] [-- extra bulwark args]
#   SEQUENCES per configuration (default 1000, or $FUZZ_SEQUENCES); SEED default 1.
#   The tool is ../shared/tools/resp-fuzz.py from the repo root (or $RESP_FUZZ).
#   FUZZ_FLAGS: the tool's command mixes (default --bypass; e.g. "--bypass --dbs").
set -u

root=$(cd "$(dirname "$0")/.." && pwd)
. "$root/tests/lib.sh"
sequences=${FUZZ_SEQUENCES:-1000}
seed=1
bin=$root/bulwark
while getopts "n:s:b:" opt; do
    case $opt in
    n) sequences=$OPTARG ;;
    s) seed=$OPTARG ;;
    b) bin=$OPTARG ;;
    *) echo "usage: $0 [-n SEQUENCES] [-s SEED] [-b BULWARK_BIN] [-- bulwark args]" >&2; exit 2 ;;
    esac
done
shift $((OPTIND - 1))
extra=("$@")
tool=${RESP_FUZZ:-$root/../shared/tools/resp-fuzz.py}
[ -f "$tool" ] || { echo "fuzz-bypass: $tool not found (set RESP_FUZZ)" >&2; exit 2; }
[ -x "$bin" ] || { echo "fuzz-bypass: $bin not built (make)" >&2; exit 2; }

dir=$(mktemp -d /tmp/bulwark-fuzz.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    if [ -n "${KEEP_TMP:-}" ]; then echo "fuzz-bypass: kept $dir"; else rm -rf "$dir"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A free loopback port: bind port 0 and read it back.

# Wait (5 s at most) until 127.0.0.1:$1 answers PING.

start_redis() { # port
    redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --daemonize no --logfile "$dir/redis-$1.log" >"$dir/redis-$1.out" 2>&1 &
    pids+=($!)
    wait_port "$1"
}

rc=0
for mode in hot nohot; do
    ref=$(free_port); up=$(free_port); port=$(free_port)
    start_redis "$ref" || exit 2
    start_redis "$up" || exit 2
    if [ $mode = hot ]; then args=(--hotkey-threshold 1); else args=(--hotkey no); fi
    "$bin" --port "$port" --upstream "127.0.0.1:$up" --logfile "$dir/bulwark-$port.log" \
        "${args[@]}" "${extra[@]}" >"$dir/bulwark-$port.out" 2>&1 &
    bpid=$!
    pids+=($bpid)
    wait_port "$port" || exit 2
    echo "== resp-fuzz ${FUZZ_FLAGS:---bypass}, $sequences sequences, seed $seed, bulwark ${args[*]} ${extra[*]}"
    python3 "$tool" --test "127.0.0.1:$port" --test-upstream "127.0.0.1:$up" \
        --ref "127.0.0.1:$ref" ${FUZZ_FLAGS:---bypass} --seed "$seed" --sequences "$sequences" \
        2>&1 | tee "$dir/fuzz-$mode.txt"
    [ "${PIPESTATUS[0]}" = 0 ] || rc=1
    if ! kill -0 "$bpid" 2>/dev/null; then
        echo "fuzz-bypass: bulwark exited during the run:" >&2
        tail -n 30 "$dir/bulwark-$port.log" "$dir/bulwark-$port.out" >&2
        rc=1
    fi
done
exit $rc
