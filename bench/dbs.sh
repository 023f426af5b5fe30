#!/usr/bin/env bash
# bench/dbs.sh: GET/SET through bulwark in database 0 and database 5, each as a
# ratio to Redis direct on the same database, and two clients sets at once in
# db 0 and db 5 sharing bulwark's upstream connection (every alternation costs
# a SELECT: upstream_db_switches counts them). Interleaved rounds, medians.
# Starts its own redis-server and bulwark on free loopback ports.
#
# Usage: bench/dbs.sh [rounds]   Environment: N=200000 P=16 C=50 BULWARK_BIN=./bulwark
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
N=${N:-200000}
P=${P:-16}
C=${C:-50}
BIN=${BULWARK_BIN:-./bulwark}
dir=$(mktemp -d /tmp/bulwark-dbs.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
. tests/lib.sh
wait_ping() { wait_port "$1" "$dir"/*.log || exit 1; }
rp=$(free_port); bp=$(free_port)
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize no \
    --logfile "$dir/redis.log" & pids+=($!)
wait_ping "$rp"
"$BIN" --port "$bp" --upstream "127.0.0.1:$rp" --ttl-jitter-percent 0 --logfile "$dir/bulwark.log" &
pids+=($!)
wait_ping "$bp"
for db in 0 5; do redis-benchmark -p "$rp" --dbnum "$db" -t set -n 100000 -r 100000 -q >/dev/null; done
# rps PORT DB TEST: requests per second of one redis-benchmark run
rps() { rb_rps -p "$1" --dbnum "$2" -t "$3" -n "$N" -r 100000 -c "$C" -P "$P"; }
# both PORT TEST: summed rps of two runs at once, in db 0 and db 5 (half the clients each)
both() {
    local a b
    a=$(rb_rps -p "$1" --dbnum 0 -t "$2" -n "$((N / 2))" -r 100000 -c "$((C / 2))" -P "$P" > "$dir/a") &
    local pa=$!
    rb_rps -p "$1" --dbnum 5 -t "$2" -n "$((N / 2))" -r 100000 -c "$((C / 2))" -P "$P" > "$dir/b"
    wait "$pa"
    python3 -c "print(float(open('$dir/a').read() or 0) + float(open('$dir/b').read() or 0))"
}
declare -A R
cases=("get 0" "get 5" "set 0" "set 5" "get both" "set both")
for ((round = 1; round <= ROUNDS; round++)); do
    for cs in "${cases[@]}"; do
        read -r t db <<<"$cs"
        for tgt in redis bulwark; do
            port=$rp; [ $tgt = bulwark ] && port=$bp
            if [ "$db" = both ]; then v=$(both "$port" "$t"); else v=$(rps "$port" "$db" "$t"); fi
            R["$cs $tgt"]="${R["$cs $tgt"]:-} $v"
        done
    done
done
echo "| test (-c $C -P $P, $N requests) | Redis direct rps | bulwark rps | ratio |"
echo "| --- | ---: | ---: | ---: |"
for cs in "${cases[@]}"; do
    r=$(median ${R["$cs redis"]}); b=$(median ${R["$cs bulwark"]})
    read -r t db <<<"$cs"
    label="$(echo "$t" | tr a-z A-Z) db $db"; [ "$db" = both ] && label="$(echo "$t" | tr a-z A-Z) db 0 + db 5 at once"
    echo "| $label | $r | $b | $(python3 -c "print('%.2f' % ($b / $r))") |"
done
echo
echo "bulwark: $(redis-cli -p "$bp" info upstream | tr -d '\r' | grep -E 'upstream_db_switches|upstream_replies')"
