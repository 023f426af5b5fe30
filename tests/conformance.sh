#!/bin/bash
# conformance.sh: Redis's own test suite (units of Debian's redis 7.0 source
# package) run against a redis-server directly and through bulwark, with the
# passed/failed/skipped counts of both side by side. Exit 1 when they differ.
#
#   tests/conformance.sh [BULWARK_BIN]      (make conformance)
#   UNITS="unit/scripting unit/functions"   units to run (the default)
#   SINGLEDB=no                             run without --singledb (the suite then
#                                           works in db 9 and SELECTs, MOVEs, SWAPDBs)
#   REDIS_SRC=/path/to/redis-7.0.x          a source tree with runtest; else
#                                           build/redis-src, fetched with
#                                           `apt-get source redis` when missing
#   CLUSTER=yes                             bulwark in front of a Redis Cluster
#                                           (3 masters + 3 replicas, tests/cluster-lib.sh)
#                                           against one standalone redis-server,
#                                           both runs with --cluster-mode (issue #16)
#   BULWARK_ARGS="--bloom no"               more bulwark arguments
#   LOGS=DIR                                keep each run's log in DIR
#                                           (UNIT.redis.log, UNIT.bulwark.log)
#
# Same flags for both runs: --singledb unless SINGLEDB=no, --tags -needs:repl
# (SYNC/PSYNC are refused by bulwark; so are four tests of unit/type/list and
# unit/expire that read the replication stream but are tagged needs:debug
# only, skipped by name; and unit/tracking's "lazy expired keys" test: a key
# a NOLOOP client wrote and Redis then expired in the same transaction reaches
# bulwark's watch as one change it must attribute to that client, so the
# message the test waits for never comes; and two more of unit/tracking that
# need what bulwark cannot see: which commands a script ran, and keys Redis
# evicts for maxmemory before the reply of the command that caused it — see
# README, Differences). RESP3 tests run (HELLO 3). bulwark runs
# with --ttl-jitter-percent 0 and --deny-commands '' (the suite uses DEBUG).
# CLUSTER=yes skips the four "script timeout" tests of unit/multi in both
# runs: in a cluster a script that runs too long blocks its own node only (a
# keyless EVAL runs on the master of slot 0), so a transaction on another
# master's key never gets -BUSY where the tests expect EXECABORT; and a
# failed one leaves its script running, which fails the rest of the unit.
set -u
here=$(cd "$(dirname "$0")/.." && pwd)
. "$here/tests/cluster-lib.sh" # and tests/lib.sh
bin=${1:-$here/bulwark}
units=${UNITS:-unit/scripting unit/functions}
src=${REDIS_SRC:-}
work=$(mktemp -d /tmp/bulwark-conformance.XXXXXX)
pids=()
cluster=${CLUSTER:-no}
logs=${LOGS:-}
suite=
cleanup() {
    [ -n "$suite" ] && kill "$suite" 2>/dev/null
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    [ "$cluster" = yes ] && cluster_stop "$work/cluster" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 1' INT TERM # cleanup runs at exit (a bare cleanup here went on with the next unit)

fetch_suite() {
    local dir=$here/build/redis-src
    src=$(ls -d "$dir"/redis-7.* 2>/dev/null | head -1)
    [ -n "$src" ] && [ -x "$src/runtest" ] && return 0
    command -v tclsh >/dev/null || { echo "conformance: tclsh is needed (apt-get install tcl)"; exit 1; }
    if ! apt-get source --print-uris redis >/dev/null 2>&1; then
        echo "conformance: no deb-src for redis; add 'deb-src' to Types in"
        echo "  /etc/apt/sources.list.d/debian.sources, run apt-get update, or set REDIS_SRC"
        exit 1
    fi
    mkdir -p "$dir" && (cd "$dir" && apt-get source -qq redis >/dev/null 2>&1)
    src=$(ls -d "$dir"/redis-7.* 2>/dev/null | head -1)
    [ -n "$src" ] && [ -x "$src/runtest" ] || { echo "conformance: apt-get source redis failed"; exit 1; }
}



# what the suite's default.conf sets that the tests rely on (DEBUG …)
suite_args=(--enable-debug-command yes --enable-protected-configs yes
    --enable-module-command yes --notify-keyspace-events KEA --latency-monitor-threshold 1)

# start_redis PORT: a redis-server configured as the suite's default.conf
start_redis() {
    mkdir -p "$work/r$1"
    redis-server --port "$1" --bind 127.0.0.1 --save '' --appendonly no --dir "$work/r$1" \
        --daemonize no --logfile "$work/r$1/redis.log" "${suite_args[@]}" &
    pids+=($!)
    wait_ping "$1"
}

wait_ping() { wait_port "$1" "$work"/r*/redis.log "$work/bulwark.log" || exit 1; }

# start_upstream: the upstream bulwark fronts, its address in $upstream: a
# redis-server, or (CLUSTER=yes) a fresh cluster whose first node bulwark is
# pointed at (it reads the slot map from there)
start_upstream() {
    if [ "$cluster" = yes ]; then
        cluster_stop "$work/cluster" >/dev/null 2>&1
        CLUSTER_SERVER_ARGS=("${suite_args[@]}")
        # twice: a port taken between the check and the bind makes a node fail
        cluster_start "$work/cluster" || cluster_start "$work/cluster" ||
            { echo "conformance: could not start a Redis Cluster"; exit 1; }
        upstream=127.0.0.1:$CLUSTER_SEED
    else
        local uport
        uport=$(free_port)
        start_redis "$uport"
        upstream=127.0.0.1:$uport
    fi
}

# only_bulwark REDIS_LOG BULWARK_LOG: the [err]/[exception] lines of the
# bulwark run whose test did not fail against Redis, each with the lines up
# to the next test's (4 at most); the summary the suite repeats at its end is
# left out
only_bulwark() {
    awk 'NR == FNR { if (/^\[(err|exception)\]/) seen[$0] = 1; next }
         /^\[[0-9]+\/[0-9]+ done\]/ || /The End/ { exit }
         /^\[/ { show = /^\[(err|exception)\]/ && !($0 in seen); n = 0 }
         show && n++ < 5' "$1" "$2"
}

# counts LOG: "ok err exception ignore skip" of a runtest log
counts() {
    local plain=$1.plain k out=""
    sed 's/\x1b\[[0-9;]*m//g' "$1" >"$plain"
    for k in ok err exception ignore skip; do out="$out $(grep -c "^\[$k\]" "$plain")"; done
    echo $out
}

# The suite listens for its test client on a port in [baseport - 32, baseport);
# its default, 21111, is inside the ranges of tests/lib.sh and cluster-lib.sh.
suite_baseport=16111

# run_unit UNIT PORT LOG
run_unit() {
    local db=--singledb
    [ "${SINGLEDB:-yes}" = no ] && db=
    local skips=()
    [ "$cluster" = yes ] && db=--cluster-mode # implies --singledb
    [ "$cluster" = yes ] && skips=(--skiptest 'MULTI and script timeout'
        --skiptest 'EXEC and script timeout' --skiptest 'MULTI-EXEC body and script timeout'
        --skiptest 'just EXEC and script timeout')
    # in the background, so that a signal to this script is acted on at once
    # (cleanup stops timeout, which passes the signal to the whole suite)
    (cd "$src" && exec timeout 1200 ./runtest --host 127.0.0.1 --port "$2" $db --single "$1" \
        --clients 1 --tags '-needs:repl' --baseport "$suite_baseport" \
        --skiptest 'SWAPDB wants to wake blocked client, but the key already expired' \
        --skiptest 'MULTI + LPUSH + EXPIRE + DEBUG SLEEP on blocked client, key already expired' \
        --skiptest 'SCAN: Lazy-expire should not be wrapped in MULTI/EXEC' \
        --skiptest 'RANDOMKEY: Lazy-expire should not be wrapped in MULTI/EXEC' \
        --skiptest 'Tracking gets notification of lazy expired keys' \
        --skiptest 'Tracking only occurs for scripts when a command calls a read-only command' \
        --skiptest 'Tracking invalidation message of eviction keys should be before response' \
        "${skips[@]}" \
        >"$3" 2>&1) &
    suite=$!
    wait "$suite"
    suite=
}

[ -x "$bin" ] || { echo "conformance: $bin is not built"; exit 1; }
[ -n "$src" ] || fetch_suite
rc=0
printf '%-16s %-8s %5s %5s %9s %6s %5s\n' unit target ok err exception ignore skip
for unit in $units; do
    rport=$(free_port); start_redis "$rport"
    run_unit "$unit" "$rport" "$work/direct.log"
    direct=$(counts "$work/direct.log")
    start_upstream
    bport=$(free_port)
    # shellcheck disable=SC2086 # BULWARK_ARGS: words on purpose
    "$bin" --port "$bport" --upstream "$upstream" --ttl-jitter-percent 0 \
        --deny-commands '' --logfile "$work/bulwark.log" ${BULWARK_ARGS:-} &
    pids+=($!)
    wait_ping "$bport"
    if [ "$cluster" = yes ]; then # the slot map is read once the first connection is up
        for _ in $(seq 100); do
            redis-cli -p "$bport" info upstream | grep -q 'upstream_cluster:1' && break
            sleep 0.05
        done
    fi
    run_unit "$unit" "$bport" "$work/bulwark.log.suite"
    through=$(counts "$work/bulwark.log.suite")
    printf '%-16s %-8s %5s %5s %9s %6s %5s\n' "$unit" redis $direct
    printf '%-16s %-8s %5s %5s %9s %6s %5s\n' "$unit" bulwark $through
    if [ "$direct" != "$through" ]; then
        rc=1
        only_bulwark "$work/direct.log.plain" "$work/bulwark.log.suite.plain"
    fi
    if [ -n "$logs" ]; then
        mkdir -p "$logs"
        cp "$work/direct.log.plain" "$logs/${unit//\//_}.redis.log"
        cp "$work/bulwark.log.suite.plain" "$logs/${unit//\//_}.bulwark.log"
    fi
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    pids=()
done
[ $rc = 0 ] && echo "conformance: same counts through bulwark as against Redis" ||
    echo "conformance: counts differ"
exit $rc
