#!/usr/bin/env bash
# metrics_cost.sh: what the always-on counters and the /metrics listener cost.
# One private redis-server; bulwark with metrics-port off and on (and, with
# BASE_BIN=path, a binary built before the counters existed), each started
# fresh per round; redis-benchmark GET -P 16 -c 50 through each, interleaved,
# ROUNDS rounds (3), the median of each: requests/s, and bulwark's own CPU
# time per request (utime+stime from /proc, less sensitive to what else runs
# on the machine than throughput). With SCRAPE=1, curl reads /metrics every
# second during the "on" runs, as Prometheus would (curl's own start-up then
# competes for the CPU too).
#
#   bash bench/metrics_cost.sh ./bulwark            # off vs on
#   BASE_BIN=/tmp/base/bulwark bash bench/metrics_cost.sh ./bulwark
set -euo pipefail
BIN=${1:-./bulwark}
ROUNDS=${ROUNDS:-3}
N=${N:-1000000}
KEYS=${KEYS:-100000}
T=$(mktemp -d /tmp/bulwark-mcost.XXXXXX)
fp() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
RP=$(fp)
redis-server --port "$RP" --bind 127.0.0.1 --save '' --appendonly no --dir "$T" \
    --daemonize no --logfile "$T/redis.log" &
RPID=$!
trap 'kill $RPID 2>/dev/null; wait $RPID 2>/dev/null; rm -rf "$T"' EXIT
for _ in $(seq 100); do redis-cli -p "$RP" ping >/dev/null 2>&1 && break; sleep 0.05; done
redis-benchmark -p "$RP" -t set -r "$KEYS" -n $((KEYS * 3)) -P 16 -q >/dev/null

# run VARIANT: start bulwark, prefill its Bloom filter by waiting for its SCAN, GET bench, stop.
run() {
    local variant=$1 bin=$BIN port mport args=() spid=""
    [ "$variant" = base ] && bin=$BASE_BIN
    port=$(fp)
    if [ "$variant" = on ]; then mport=$(fp); args=(--metrics-port "$mport"); fi
    "$bin" --port "$port" --upstream "127.0.0.1:$RP" --logfile "$T/b-$variant.log" "${args[@]}" &
    local bpid=$!
    for _ in $(seq 100); do redis-cli -p "$port" ping >/dev/null 2>&1 && break; sleep 0.05; done
    for _ in $(seq 200); do  # the gate closes once the first SCAN is done
        redis-cli -p "$port" info bloom | grep -q '^bloom_state:active' && break; sleep 0.05
    done
    if [ "$variant" = on ] && [ -n "${SCRAPE:-}" ]; then
        (while sleep 1; do curl -s "127.0.0.1:$mport/metrics" >/dev/null || true; done) &
        spid=$!
    fi
    local cpu0 cpu1 rps tck
    tck=$(getconf CLK_TCK)
    cpu0=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$bpid/stat")
    rps=$(redis-benchmark -p "$port" -t get -r "$KEYS" -n "$N" -P 16 -c 50 --csv 2>/dev/null |
        awk -F'"' '/^"GET"/ {print $4}')
    cpu1=$(awk '{sub(/.*\) /, ""); print $12 + $13}' "/proc/$bpid/stat")
    [ -z "$spid" ] || kill "$spid"
    echo "$rps $(awk -v a="$cpu0" -v b="$cpu1" -v t="$tck" -v n="$N" \
        'BEGIN {printf "%.3f", (b - a) / t * 1e6 / n}')"
    kill "$bpid"; wait "$bpid" 2>/dev/null || true
}

variants=(off on)
[ -n "${BASE_BIN:-}" ] && variants=(base off on)
declare -A res cpu
for r in $(seq "$ROUNDS"); do
    for v in "${variants[@]}"; do
        read -r x c < <(run "$v")
        res[$v]="${res[$v]:-} $x"; cpu[$v]="${cpu[$v]:-} $c"
        echo "round $r $v: $x requests/s, bulwark CPU $c us/request"
    done
done
median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
for v in "${variants[@]}"; do
    m=$(echo "${res[$v]}" | median); mc=$(echo "${cpu[$v]}" | median)
    echo "median $v: $m requests/s (${res[$v]# }); CPU $mc us/request (${cpu[$v]# })"
    eval "med_$v=$m"
done
awk -v on="$med_on" -v off="$med_off" 'BEGIN {printf "on/off: %.3f\n", on / off}'
[ -z "${BASE_BIN:-}" ] ||
    awk -v on="$med_on" -v off="$med_off" -v b="$med_base" \
        'BEGIN {printf "off/base: %.3f  on/base: %.3f\n", off / b, on / b}'
