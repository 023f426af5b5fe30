#!/usr/bin/env bash
# bench/compare.sh: two bulwark builds in front of the same redis-server, in one
# run — for a change that must not cost speed (a refactor). redis-benchmark
# -c 50 at -P 16 and -P 1 for GET and SET of 100,000 present keys, GET of
# absent keys (the gate) and of one hot key; rounds alternate the builds;
# medians and the ratio B/A per case.
#
# Usage: bench/compare.sh BIN_A BIN_B [rounds]   Environment: N=300000
set -euo pipefail
cd "$(dirname "$0")/.."
A=$1 B=$2 ROUNDS=${3:-3} N=${N:-300000}
dir=$(mktemp -d /tmp/bulwark-compare.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
. tests/lib.sh
rp=$(free_port); pa=$(free_port); pb=$(free_port)
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" & pids+=($!)
wait_port "$rp" "$dir/redis.log"
"$A" --port "$pa" --upstream "127.0.0.1:$rp" --ttl-jitter-percent 0 --logfile "$dir/a.log" & pids+=($!)
"$B" --port "$pb" --upstream "127.0.0.1:$rp" --ttl-jitter-percent 0 --logfile "$dir/b.log" & pids+=($!)
wait_port "$pa" "$dir/a.log"; wait_port "$pb" "$dir/b.log"
redis-benchmark -p "$rp" -t set -n 200000 -r 100000 -q >/dev/null
redis-cli -p "$rp" set hot:key v >/dev/null
sleep 1 # both gates closed
rps() { # PORT PIPELINE ARGS...
    local port=$1 p=$2
    shift 2
    rb_rps -p "$port" -c 50 -P "$p" -n "$N" "$@"
}
cases=("GET -P 16|16|-t get -r 100000" "SET -P 16|16|-t set -r 100000" "GET -P 1|1|-t get -r 100000"
       "SET -P 1|1|-t set -r 100000" "gate: GET absent -P 16|16|-r 100000 GET absent:__rand_int__"
       "hot: GET one key -P 16|16|GET hot:key")
declare -A R
for ((round = 1; round <= ROUNDS; round++)); do
    for c in "${cases[@]}"; do
        IFS='|' read -r name p args <<<"$c"
        if ((round % 2)); then order="a b"; else order="b a"; fi
        for w in $order; do
            port=$pa; [ $w = b ] && port=$pb
            R["$name $w"]="${R["$name $w"]:-} $(rps "$port" "$p" $args)"
        done
    done
done
echo "| case (-c 50, $N requests) | A rps | B rps | B/A | A rounds | B rounds |"
echo "| --- | ---: | ---: | ---: | --- | --- |"
for c in "${cases[@]}"; do
    IFS='|' read -r name p args <<<"$c"
    a=$(median ${R["$name a"]}); b=$(median ${R["$name b"]})
    printf '| %s | %s | %s | %.2f | %s | %s |\n' "$name" "$a" "$b" "$(python3 -c "print($b / $a)")" \
        "${R["$name a"]# }" "${R["$name b"]# }"
done
