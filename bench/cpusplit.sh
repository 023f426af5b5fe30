#!/usr/bin/env bash
# bench/cpusplit.sh: where the CPU goes, Redis direct vs through bulwark, in
# one run (issue #13). For each case, redis-benchmark runs against Redis
# directly, then through bulwark (same redis-server, same keys); the CPU
# seconds each process used during the run (user and system, from
# /proc/<pid>/stat and /usr/bin/time) are printed as one markdown table with
# the throughput. On a machine with fewer cores than busy processes (2 cores:
# client, bulwark, Redis) the ratio of throughputs follows the ratio of total
# CPU per request, which this table shows. The busy column is each process's
# CPU seconds over the run's wall time: a client at ~100% is the limit of
# what any server can be measured at.
#
# PIN=1 keeps the client on core 0 and both servers on core 1 (bench_pin in
# lib.sh): the servers then share exactly one core, the client has its own.
#
# Usage: bench/cpusplit.sh
# Environment: N16=2000000 N1=300000 requests per run, KEYS=100000,
#   BULWARK_BIN=./bulwark, BULWARK_ARGS="" (extra bulwark arguments), PIN=0,
#   ONLY="" (an extended regular expression: only the cases it matches)
set -euo pipefail
cd "$(dirname "$0")/.."
N16=${N16:-2000000}
N1=${N1:-300000}
KEYS=${KEYS:-100000}
BIN=${BULWARK_BIN:-./bulwark}
read -r -a EXTRA <<< "${BULWARK_ARGS:-}"
[[ -x $BIN ]] || { echo "cpusplit.sh: $BIN not built (make)" >&2; exit 1; }
[[ -x /usr/bin/time ]] || { echo "cpusplit.sh: /usr/bin/time is needed (apt-get install time)" >&2; exit 1; }

. bench/lib.sh
bench_init cpusplit
bench_servers "$BIN" "$KEYS" "${EXTRA[@]}"

hz=$(getconf CLK_TCK)
# user and system ticks of pid
ticks() { awk '{ print $14, $15 }' "/proc/$1/stat"; }
secs() { awk -v t="$1" -v hz="$hz" 'BEGIN { printf "%.2f", t / hz }'; }

echo "| case | target | req/s | ratio | Redis user+sys s | bulwark user+sys s | client user+sys s | total CPU µs/req | busy % Redis/bulwark/client |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
run_case() { # name n args...
    local name=$1 n=$2 direct_rps=""
    shift 2
    [[ -z ${ONLY:-} ]] || grep -qE -- "$ONLY" <<< "$name" || return 0
    local target port
    for target in direct bulwark; do
        port=$rport
        [[ $target == bulwark ]] && port=$bport
        local r0 b0 r1 b1 rps t
        read -r -a r0 <<< "$(ticks "$rpid")"
        read -r -a b0 <<< "$(ticks "$bpid")"
        rps=$(/usr/bin/time -f "%U %S" -o "$dir/time" "${on_client[@]}" redis-benchmark -p "$port" -c 50 -n "$n" \
            --csv "$@" | tail -1 | cut -d, -f2 | tr -d '"')
        read -r -a r1 <<< "$(ticks "$rpid")"
        read -r -a b1 <<< "$(ticks "$bpid")"
        read -r -a t < "$dir/time"
        local ru=$((r1[0] - r0[0])) rs=$((r1[1] - r0[1])) bu=$((b1[0] - b0[0])) bs=$((b1[1] - b0[1]))
        local ratio="1.00"
        if [[ $target == direct ]]; then
            direct_rps=$rps
        else
            ratio=$(awk -v a="$rps" -v b="$direct_rps" 'BEGIN { printf "%.2f", a / b }')
        fi
        local per busy
        per=$(awk -v r=$((ru + rs + bu + bs)) -v hz="$hz" -v cu="${t[0]}" -v cs="${t[1]}" -v n="$n" \
            'BEGIN { printf "%.2f", (r / hz + cu + cs) * 1e6 / n }')
        busy=$(awk -v r=$((ru + rs)) -v b=$((bu + bs)) -v c="${t[0]} ${t[1]}" -v hz="$hz" -v n="$n" \
            -v rps="$rps" 'BEGIN { split(c, cc, " "); w = n / rps
                printf "%.0f/%.0f/%.0f", 100 * r / hz / w, 100 * b / hz / w, 100 * (cc[1] + cc[2]) / w }')
        echo "| $name | $target | ${rps%.*} | $ratio | $(secs $ru)+$(secs $rs) | $(secs $bu)+$(secs $bs) | ${t[0]}+${t[1]} | $per | $busy |"
    done
}
run_case "GET -P 16" "$N16" -P 16 -r "$KEYS" -t get
run_case "SET -P 16" "$N16" -P 16 -r "$KEYS" -t set
run_case "GET -P 1" "$N1" -P 1 -r "$KEYS" -t get
run_case "SET -P 1" "$N1" -P 1 -r "$KEYS" -t set
run_case "gate: GET absent -P 16" "$N16" -P 16 -r "$KEYS" get 'absent:__rand_int__'
run_case "hot: GET one key -P 16" "$N16" -P 16 get hot:key
echo
echo "redis-benchmark -c 50 (-n $N16 at -P 16, $N1 at -P 1); CPU from /proc/<pid>/stat (Redis, bulwark: its watch runs during the direct runs too) and /usr/bin/time (the client); PIN=${PIN:-0}; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
