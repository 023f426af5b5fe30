#!/usr/bin/env bash
# bench/cpu.sh: Redis's own CPU (INFO cpu: used_cpu_user + used_cpu_sys) per
# client GET, Redis direct vs through bulwark (batch-mode pipeline and mget)
# vs twemproxy when installed, with redis-benchmark -t get -r 100000 on a
# 100k-key keyspace where every key exists. Also prints throughput.
# Usage: bench/cpu.sh [requests] ; env CLIENTS (200), PIPES ("1 16"),
#        PRESENT (percent of the 100k keys that exist, 100; 10 = the
#        penetration workload where 90% of the keys read are absent).
set -euo pipefail
cd "$(dirname "$0")/.."
N=${1:-400000}
CLIENTS=${CLIENTS:-200}
PIPES=${PIPES:-1 16}
PRESENT=${PRESENT:-100}
BIN=${BULWARK_BIN:-./bulwark}
dir=$(mktemp -d /tmp/bulwark-cpu.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do { kill "$p"; wait "$p"; } 2>/dev/null || true; done; rm -rf "$dir"; }
trap cleanup EXIT
free_port() {
    local p
    for p in $(shuf -i 20000-32767 -n 100); do # below the ephemeral ports (32768-60999)
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
    done
}
wait_port() { for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done; return 1; }
cpu() { redis-cli -p "$rport" info cpu | awk -F: '/used_cpu_(user|sys):/ {s += $2} END {printf "%.6f", s}'; }

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize no --logfile "$dir/redis.log" & pids+=($!)
wait_port "$rport"
# the keys redis-benchmark -r 100000 can name: key:000000000000 .. key:000000099999
# (every one, or every (100/PRESENT)-th)
step=$((100 / PRESENT))
for i in $(seq 0 "$step" 99999); do printf 'SET key:%012d v%d\n' "$i" "$i"; done |
    redis-cli -p "$rport" --pipe >/dev/null
targets=("redis:$rport")
for mode in pipeline mget; do
    p=$(free_port)
    "$BIN" --port "$p" --upstream "127.0.0.1:$rport" --batch-mode "$mode" --loglevel warning \
        --logfile "$dir/bulwark-$mode.log" & pids+=($!)
    wait_port "$p"
    targets+=("bulwark-$mode:$p")
done
if command -v nutcracker >/dev/null; then
    tport=$(free_port)
    printf 'bench:\n  listen: 127.0.0.1:%s\n  redis: true\n  servers:\n   - 127.0.0.1:%s:1\n' \
        "$tport" "$rport" > "$dir/nc.yml"
    sport=$(free_port) # its stats port: the default 22222 may be taken
    nutcracker -c "$dir/nc.yml" -o "$dir/nc.log" -a 127.0.0.1 -s "$sport" & pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$tport" get probe >/dev/null 2>&1 && break; sleep 0.05; done
    targets+=("twemproxy:$tport")
fi
sleep 1 # let the Bloom gates finish their SCAN

echo "| pipeline | target | GET req/s | Redis CPU µs per client GET | ratio to direct |"
echo "| --- | --- | ---: | ---: | ---: |"
for P in $PIPES; do
    base=""
    for t in "${targets[@]}"; do
        name=${t%%:*}; port=${t##*:}
        c0=$(cpu)
        rps=$(timeout 120 redis-benchmark -p "$port" -t get -r 100000 -n "$N" -c "$CLIENTS" -P "$P" \
              --csv -q 2>/dev/null | awk -F, '/"GET"/ {gsub(/"/, "", $2); print $2}') || true
        [ -n "$rps" ] || rps="(no result in 120 s)"
        c1=$(cpu)
        us=$(awk -v a="$c0" -v b="$c1" -v n="$N" 'BEGIN {printf "%.3f", (b - a) * 1e6 / n}')
        [ -z "$base" ] && base=$us
        ratio=$(awk -v a="$us" -v b="$base" 'BEGIN {printf "%.2f", (b > 0 ? a / b : 0)}')
        echo "| $P | $name | $rps | $us | $ratio |"
    done
done
