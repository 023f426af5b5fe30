#!/usr/bin/env bash
# bench/io.sh: the throughput cases of issue #13, Redis direct vs bulwark in
# one run, interleaved (each case runs on both targets back to back, the
# order alternating by round), medians of ROUNDS; prints one markdown table
# with each ratio to Redis direct. Starts its own redis-server and bulwark on
# free loopback ports (below the ephemeral range) and stops them by pid.
#
# Cases (redis-benchmark -c 50, keys key:%012d prefilled):
#   GET / SET -P 16 and -P 1 (-r KEYS);
#   gate: GET of absent keys (absent:<rand>), answered by bulwark's Bloom gate;
#   hot: GET of one key, answered by bulwark's hot-key cache;
#   loadgen uniform GETs -P 1 -c 50: req/s, p50, p99.
# Usage: bench/io.sh [rounds]   (default 3)
# Environment: N16=500000 N1=100000 requests per redis-benchmark run,
#   LG_SECS=3, KEYS=100000, BULWARK_BIN=./bulwark, LOADGEN_BIN=bench/loadgen,
#   BULWARK_ARGS="" (extra bulwark arguments), PIN=0 (1: the clients on core
#   0, redis-server and bulwark on core 1; bench_pin in lib.sh)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
N16=${N16:-500000}
N1=${N1:-100000}
LG_SECS=${LG_SECS:-3}
KEYS=${KEYS:-100000}
BIN=${BULWARK_BIN:-./bulwark}
LG=${LOADGEN_BIN:-bench/loadgen}
read -r -a EXTRA <<< "${BULWARK_ARGS:-}"

for f in "$BIN" "$LG"; do
    [[ -x $f ]] || { echo "io.sh: $f not built (make all bench/loadgen)" >&2; exit 1; }
done

. bench/lib.sh
bench_init io
bench_servers "$BIN" "$KEYS" "${EXTRA[@]}"

declare -A vals # "case|target|metric" -> space-separated values of every round
add() { vals[$1]="${vals[$1]:-} $2"; }

rb() { # case target port n pipe args...
    local c=$1 t=$2 port=$3 n=$4 p=$5 rps
    shift 5
    rps=$("${on_client[@]}" redis-benchmark -p "$port" -c 50 -n "$n" -P "$p" --csv "$@" 2>/dev/null |
        tail -n 1 | cut -d, -f2 | tr -d '"')
    add "$c|$t|req/s" "${rps:-0}"
}
lg() { # target port
    local line kv
    line=$("${on_client[@]}" "$LG" -p "$2" -c 50 -P 1 -d "$LG_SECS" -k "$KEYS" --dist uniform 2>/dev/null |
        grep '^RESULT' || true)
    for kv in ${line#RESULT }; do
        case ${kv%%=*} in
        rps) add "loadgen uniform -P 1|$1|req/s" "${kv#*=}" ;;
        p50_us) add "loadgen uniform -P 1|$1|p50 µs" "${kv#*=}" ;;
        p99_us) add "loadgen uniform -P 1|$1|p99 µs" "${kv#*=}" ;;
        esac
    done
}
one_round() { # target port
    rb "GET -P 16" "$1" "$2" "$N16" 16 -t get -r "$KEYS"
    rb "SET -P 16" "$1" "$2" "$N16" 16 -t set -r "$KEYS"
    rb "GET -P 1" "$1" "$2" "$N1" 1 -t get -r "$KEYS"
    rb "SET -P 1" "$1" "$2" "$N1" 1 -t set -r "$KEYS"
    rb "gate: GET absent -P 16" "$1" "$2" "$N16" 16 -r "$KEYS" GET "absent:__rand_int__"
    rb "hot: GET one key -P 16" "$1" "$2" "$N16" 16 GET hot:key
    lg "$1" "$2"
}

for r in $(seq "$ROUNDS"); do
    echo "io.sh: round $r of $ROUNDS" >&2
    if ((r % 2)); then
        one_round redis "$rport"; one_round bulwark "$bport"
    else
        one_round bulwark "$bport"; one_round redis "$rport"
    fi
done

median() { tr ' ' '\n' | grep -v '^$' | sort -g | awk '{a[NR] = $1} END {print a[int((NR + 1) / 2)]}'; }
echo "| case | metric | Redis direct | bulwark | ratio | bulwark rounds |"
echo "| --- | --- | ---: | ---: | ---: | --- |"
for key in "GET -P 16|req/s" "SET -P 16|req/s" "GET -P 1|req/s" "SET -P 1|req/s" \
    "gate: GET absent -P 16|req/s" "hot: GET one key -P 16|req/s" \
    "loadgen uniform -P 1|req/s" "loadgen uniform -P 1|p50 µs" "loadgen uniform -P 1|p99 µs"; do
    c=${key%%|*} m=${key#*|}
    rv=$(median <<< "${vals[$c|redis|$m]:-0}")
    bv=$(median <<< "${vals[$c|bulwark|$m]:-0}")
    echo "| $c | $m | $rv | $bv | $(awk -v a="$bv" -v b="$rv" 'BEGIN {printf (b > 0 ? "%.2f" : "-"), a / b}') |${vals[$c|bulwark|$m]} |"
done
echo
echo "Medians of $ROUNDS interleaved rounds; redis-benchmark -c 50 (-n $N16 at -P 16, $N1 at -P 1), loadgen -c 50 -P 1 -d $LG_SECS; PIN=${PIN:-0}; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
