# bench/lib.sh: what the bench scripts share (sourced, not run, from the
# repository's top): tests/lib.sh's free ports and waits, a temp dir and the
# servers a script starts, all stopped by pid (never by name) on exit.
# shellcheck shell=bash source=tests/lib.sh
. tests/lib.sh

# bench_init NAME: dir (a fresh /tmp/bulwark-NAME.* directory), pids (the
# processes to stop) and the traps that stop them and remove dir.
bench_init() {
    dir=$(mktemp -d "/tmp/bulwark-$1.XXXXXX")
    pids=()
    trap bench_cleanup EXIT
    trap 'exit 130' INT TERM
}

bench_cleanup() {
    local p
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
    rm -rf "$dir"
}

# bench_redis: a redis-server without persistence on a free port, data and
# log in dir; sets rport and rpid.
bench_redis() {
    rport=$(free_port)
    redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" \
        --daemonize no --logfile "$dir/redis.log" & rpid=$!
    pids+=("$rpid")
    wait_port "$rport" "$dir/redis.log"
}

# bench_bulwark BIN UPSTREAM_PORT [ARG ...]: bulwark on a free port in front
# of 127.0.0.1:UPSTREAM_PORT, log in dir; sets bport and bpid.
bench_bulwark() {
    local bin=$1 up=$2
    shift 2
    bport=$(free_port)
    "$bin" --port "$bport" --upstream "127.0.0.1:$up" --logfile "$dir/bulwark.log" "$@" & bpid=$!
    pids+=("$bpid")
    wait_port "$bport" "$dir/bulwark.log"
}

# bench_pin PID ...: with PIN=1, every thread of each PID (the servers) on
# core 1 and on_client=(taskset -c 0) to run the load generators on core 0:
# the servers share one core, the client has the other, and runs vary far less
# than unpinned on 2 cores. Without PIN=1, on_client is empty.
bench_pin() {
    on_client=()
    [[ ${PIN:-0} == 1 ]] || return 0
    command -v taskset >/dev/null || { echo "PIN=1 needs taskset (util-linux)" >&2; exit 1; }
    local p
    for p in "$@"; do taskset -a -p -c 1 "$p" >/dev/null; done
    on_client=(taskset -c 0)
}

# bench_prefill PORT N: keys key:000000000000 … (redis-benchmark's -r names)
# set to "xxx" on PORT, pipelined.
bench_prefill() {
    awk -v n="$2" 'BEGIN { for (i = 0; i < n; i++)
        printf "*3\r\n$3\r\nSET\r\n$16\r\nkey:%012d\r\n$3\r\nxxx\r\n", i }' |
        redis-cli -p "$1" --pipe >/dev/null
}

# bench_wait_gate PORT: until bulwark on PORT has its Bloom gate active (its
# first SCAN done), 10 s at most.
bench_wait_gate() {
    for _ in $(seq 100); do
        [[ $(redis-cli -p "$1" info bloom | tr -d '\r' | sed -n 's/^bloom_state://p') == active ]] &&
            return 0
        sleep 0.1
    done
}

# bench_servers BIN KEYS [ARG ...]: what every comparison run starts with —
# redis-server, bulwark BIN in front of it (with ARGs), KEYS keys prefilled
# and hot:key, the gate waited for, and both pinned when PIN=1 (bench_pin).
bench_servers() {
    local bin=$1 keys=$2
    shift 2
    bench_redis
    bench_bulwark "$bin" "$rport" "$@"
    bench_prefill "$rport" "$keys"
    redis-cli -p "$rport" set hot:key xxx >/dev/null
    bench_wait_gate "$bport" # the Bloom gate answers once its first SCAN is done
    bench_pin "$rpid" "$bpid"
}
