# tests/lib.sh: shell helpers shared by the scripts of tests/ and bench/
# (sourced, not run): free loopback ports and waiting for a server to answer.

# A free loopback port, below the ephemeral range (32768-60999): a port
# picked there could be taken by an outgoing connection before we listen.
free_port() {
    local p
    for p in $(shuf -i 20000-32767 -n 100); do
        (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null || { echo "$p"; return 0; }
    done
    return 1
}

# wait_port PORT [LOG …]: until a server on PORT answers PING (20 s at most,
# WAIT_PORT_TRIES × 50 ms when set); else the last lines of each LOG go to
# stderr and it returns 1.
wait_port() {
    local port=$1 _
    shift
    for _ in $(seq "${WAIT_PORT_TRIES:-400}"); do
        redis-cli -p "$port" ping 2>/dev/null | grep -q PONG && return 0
        sleep 0.05
    done
    echo "nothing answers PING on port $port" >&2
    [ $# -gt 0 ] && tail -n 5 "$@" >&2 2>/dev/null
    return 1
}

# rb_rps ARGS…: requests per second of one `redis-benchmark -q ARGS…` run
# (its last "requests per second" figure; empty when it failed).
rb_rps() {
    redis-benchmark -q "$@" 2>/dev/null | tr '\r' '\n' |
        awk '/requests per second/ {for (i = 1; i <= NF; i++) if ($i == "requests") print $(i-1)}' |
        tail -1
}

# median N…: the median of the numbers, rounded (a benchmark's rounds).
median() {
    python3 -c 'import sys, statistics; print("%.0f" % statistics.median([float(x) for x in sys.argv[1:]]))' "$@"
}
