#!/usr/bin/env bash
# bench/run.sh: redis-benchmark through bulwark vs Redis directly (and
# twemproxy/nutcracker when installed), interleaved round by round, in one go.
# Prints a markdown table of median requests/s and each ratio to Redis direct.
#
# Usage: bench/run.sh [rounds] ; env: N (requests per run, default 200000),
#        CLIENTS (default 50), TESTS (default get,set), PIPES (default "1 16").
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
N=${N:-200000}
CLIENTS=${CLIENTS:-50}
TESTS=${TESTS:-get,set}
PIPES=${PIPES:-1 16}
BIN=${BULWARK_BIN:-./bulwark}

dir=$(mktemp -d /tmp/bulwark-bench.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    wait 2>/dev/null || true
    rm -rf "$dir"
}
trap cleanup EXIT

free_port() {
    local p
    for p in $(shuf -i 20000-60000 -n 100); do
        (exec 3<>/dev/tcp/127.0.0.1/$p) 2>/dev/null || { echo "$p"; return; }
    done
    return 1
}
wait_port() {
    for _ in $(seq 200); do redis-cli -p "$1" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
    echo "port $1 did not answer" >&2; return 1
}

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
    --daemonize no --logfile "$dir/redis.log" & pids+=($!)
wait_port "$rport"
bport=$(free_port)
"$BIN" --port "$bport" --upstream "127.0.0.1:$rport" --loglevel warning \
    --logfile "$dir/bulwark.log" & pids+=($!)
wait_port "$bport"
targets=("redis:$rport" "bulwark:$bport")
if command -v nutcracker >/dev/null; then
    tport=$(free_port)
    cat > "$dir/nutcracker.yml" <<YML
bench:
  listen: 127.0.0.1:$tport
  redis: true
  servers:
   - 127.0.0.1:$rport:1
YML
    nutcracker -c "$dir/nutcracker.yml" -o "$dir/nutcracker.log" & pids+=($!)
    sleep 0.5
    wait_port "$tport" && targets+=("twemproxy:$tport")
fi

declare -A results
for round in $(seq "$ROUNDS"); do
    for p in $PIPES; do
        for t in "${targets[@]}"; do
            name=${t%%:*}; port=${t##*:}
            while IFS=, read -r test rps _; do
                test=${test//\"/}; rps=${rps//\"/}
                [[ $test == test ]] && continue
                results["$test|$p|$name"]+="$rps "
            done < <(redis-benchmark -p "$port" -t "$TESTS" -n "$N" -c "$CLIENTS" -P "$p" --csv -q 2>/dev/null)
        done
    done
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }

echo "| test | pipeline | target | median req/s | ratio to redis |"
echo "| --- | --- | --- | ---: | ---: |"
for key in $(printf '%s\n' "${!results[@]}" | sort); do
    IFS='|' read -r test p name <<< "$key"
    [[ $name == redis ]] || continue
    base=$(echo "${results[$key]}" | median)
    for t in "${targets[@]}"; do
        n=${t%%:*}
        m=$(echo "${results[$test|$p|$n]}" | median)
        printf '| %s | %s | %s | %.0f | %.2f |\n' "$test" "$p" "$n" "$m" "$(awk -v a="$m" -v b="$base" 'BEGIN{print (b>0 ? a/b : 0)}')"
    done
done
