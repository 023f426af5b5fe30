#!/usr/bin/env bash
# bench/cluster.sh: bulwark in front of a Redis Cluster, in one run (issue #16).
#   1. GET and SET at -P 1 and -P 16 (redis-benchmark -c C, -r 100000):
#      the cluster direct through a cluster-aware client (redis-benchmark
#      --cluster), bulwark in front of the cluster, bulwark in front of one
#      standalone redis-server; interleaved rounds, medians, ratios to the
#      cluster direct.
#   2. What the protections save the cluster: Redis CPU (used_cpu_user+sys,
#      summed over the 3 masters) for the same load direct and through bulwark:
#      90% GETs of absent keys (the gate), and 50 clients reading one hot key
#      (coalescing).
# Starts its own cluster (tests/cluster-lib.sh), redis-server and bulwarks on
# free loopback ports.
#
# Usage: bench/cluster.sh [rounds]   Environment: N=200000 C=50 BULWARK_BIN=./bulwark
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
N=${N:-200000}
C=${C:-50}
BIN=${BULWARK_BIN:-./bulwark}
dir=$(mktemp -d /tmp/bulwark-cbench.XXXXXX)
pids=()
. tests/cluster-lib.sh
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    cluster_stop "$dir" >/dev/null 2>&1
    rm -rf "$dir"
}
trap cleanup EXIT INT TERM
cluster_start "$dir" >/dev/null
masters=$(for p in $CLUSTER_PORTS; do redis-cli -p "$p" role | head -1 | grep -q master && echo "$p"; done; true)
rp=$(free_port); bc=$(free_port); bs=$(free_port)
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --logfile "$dir/redis.log" & pids+=($!)
wait_port "$rp" "$dir/redis.log"
"$BIN" --port "$bc" --upstream "127.0.0.1:$CLUSTER_SEED" --ttl-jitter-percent 0 \
    --logfile "$dir/bulwark-cluster.log" & pids+=($!)
"$BIN" --port "$bs" --upstream "127.0.0.1:$rp" --ttl-jitter-percent 0 \
    --logfile "$dir/bulwark-standalone.log" & pids+=($!)
wait_port "$bc" "$dir/bulwark-cluster.log"; wait_port "$bs" "$dir/bulwark-standalone.log"
for _ in $(seq 100); do
    redis-cli -p "$bc" info upstream | grep -q 'cluster_gates_closed:3' && break; sleep 0.1
done
redis-benchmark -p "$CLUSTER_SEED" --cluster -t set -n 100000 -r 100000 -q >/dev/null 2>&1
redis-benchmark -p "$rp" -t set -n 100000 -r 100000 -q >/dev/null 2>&1

# rps PORT TEST PIPELINE [--cluster]
rps() { rb_rps -p "$1" ${4:-} -t "$2" -n "$N" -r 100000 -c "$C" -P "$3"; }
declare -A R
for ((round = 1; round <= ROUNDS; round++)); do
    for tp in "get 1" "get 16" "set 1" "set 16"; do
        read -r t p <<<"$tp"
        R["$tp direct"]="${R["$tp direct"]:-} $(rps "$CLUSTER_SEED" "$t" "$p" --cluster)"
        R["$tp bc"]="${R["$tp bc"]:-} $(rps "$bc" "$t" "$p")"
        R["$tp bs"]="${R["$tp bs"]:-} $(rps "$bs" "$t" "$p")"
    done
done
echo "| test (-c $C, $N requests, -r 100000) | cluster direct (--cluster) rps | bulwark on the cluster rps | ratio | bulwark on one Redis rps | ratio |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
for tp in "get 1" "get 16" "set 1" "set 16"; do
    read -r t p <<<"$tp"
    d=$(median ${R["$tp direct"]}); c=$(median ${R["$tp bc"]}); s=$(median ${R["$tp bs"]})
    printf '| %s -P %s | %s | %s | %.2f | %s | %.2f |\n' "${t^^}" "$p" "$d" "$c" \
        "$(python3 -c "print($c / $d)")" "$s" "$(python3 -c "print($s / $d)")"
done

# 2. Redis CPU summed over the masters
cpu() {
    local t=0 p
    for p in $masters; do
        t=$(python3 -c "print($t + $(redis-cli -p "$p" info cpu | tr -d '\r' |
            awk -F: '/^used_cpu_(user|sys):/ {s += $2} END {print s}'))")
    done
    echo "$t"
}
# load PORT [--cluster] KIND: KIND absent (99% absent keys) or hot (one key: direct, the
# master that owns it, as a cluster-aware client would send it there)
redis-cli -c -p "$CLUSTER_SEED" set hotkey v >/dev/null
owner=$(for p in $masters; do [ "$(redis-cli -p "$p" get hotkey 2>/dev/null)" = v ] && echo "$p"; done; true)
load() {
    if [ "$3" = absent ]; then
        redis-benchmark -p "$1" $2 -t get -n "$N" -r 10000000 -c "$C" -P 16 -q >/dev/null 2>&1 || true
    else
        local port=$1
        [ "$1" = "$CLUSTER_SEED" ] && port=$owner
        redis-benchmark -p "$port" -n "$N" -c "$C" -P 16 -q GET hotkey >/dev/null 2>&1 || true
    fi
}
echo
echo "| load ($N GETs, -c $C -P 16) | cluster CPU direct, s | cluster CPU through bulwark, s | saved |"
echo "| --- | ---: | ---: | ---: |"
for kind in absent hot; do
    c0=$(cpu); load "$CLUSTER_SEED" --cluster "$kind"; c1=$(cpu)
    load "$bc" "" "$kind"; c2=$(cpu)
    dd=$(python3 -c "print(round($c1 - $c0, 2))"); db=$(python3 -c "print(round($c2 - $c1, 2))")
    printf '| %s | %s | %s | %.0f%% |\n' \
        "$([ $kind = absent ] && echo 'GET of keys 99% absent (-r 10000000 over 100k present)' || echo 'GET of one hot key')" \
        "$dd" "$db" "$(python3 -c "print(100 * (1 - $db / max($dd, 1e-9)))")"
done
