# tests/cluster-lib.sh: a real Redis Cluster of our own for the tests (sourced,
# not run): 3 masters and 3 replicas on loopback, as issue #16 asks.
#
#   source tests/cluster-lib.sh
#   cluster_start "$dir"     # exports CLUSTER_PORTS ("p1 … p6") and CLUSTER_SEED
#   redis-cli -c -p "$CLUSTER_SEED" set foo bar
#   cluster_stop "$dir"      # stops the six servers; $dir (logs) is the caller's
#
# Client ports are picked in 20000-22767 so that each bus port (client port
# + 10000, Redis's default) is in 30000-32767: every port the cluster listens
# on stays below the ephemeral range (32768-60999), where an outgoing
# connection could take it between our check and the server's bind.

# shellcheck shell=bash source=tests/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# Seconds cluster_start waits for every node to settle.
CLUSTER_OK_TIMEOUT=${CLUSTER_OK_TIMEOUT:-60}

# cluster-node-timeout of the nodes, ms: how long a silent master takes to be
# failed over, and how often nodes ping each other (every half of it). Redis's
# default, 15000, makes a new cluster take ~6 s longer to agree on who
# replicates whom; 2000 settles in ~1 s and is still far above the stalls of
# a loaded 2-core machine.
CLUSTER_NODE_TIMEOUT_MS=${CLUSTER_NODE_TIMEOUT_MS:-2000}

# CLUSTER_SERVER_ARGS: extra redis-server arguments for every node (an array
# the caller sets; none when unset), e.g. (--enable-debug-command yes) for
# Redis's test suite (tests/conformance.sh, CLUSTER=yes).

# cluster_free_port TAKEN…: a client port whose bus port is free too, and
# neither is one of TAKEN (ports already handed out but not yet bound).
cluster_free_port() {
    local p t ok
    for p in $(shuf -i 20000-22767 -n 200); do
        ok=1
        for t in "$@"; do
            if [ "$p" = "$t" ] || [ "$((p + 10000))" = "$t" ] || [ "$p" = "$((t + 10000))" ]; then
                ok=0
                break
            fi
        done
        [ "$ok" = 1 ] || continue
        (exec 3<>/dev/tcp/127.0.0.1/"$p") 2>/dev/null && continue
        (exec 3<>/dev/tcp/127.0.0.1/"$((p + 10000))") 2>/dev/null && continue
        echo "$p"
        return 0
    done
    return 1
}

# cluster_state_ok PORT: the node on PORT says cluster_state:ok.
cluster_state_ok() {
    redis-cli -p "$1" cluster info 2>/dev/null | tr -d '\r' | grep -qx 'cluster_state:ok'
}

# cluster_start DIR: six cluster-enabled redis-servers (data, nodes-*.conf,
# logs and pid files in DIR; each node its own RDB file and AOF directory, so
# that DEBUG RELOAD or BGSAVE on two nodes at once share none), joined by
# redis-cli --cluster create with one replica per master, then waits until
# every node says cluster_state:ok and sees the settled topology
# (cluster_settled). Exports CLUSTER_PORTS and CLUSTER_SEED; DIR/ports keeps
# the ports for cluster_stop. Returns 1 (servers started so far stopped, logs
# kept) on failure.
#
# Two settings only speed up the start: repl-diskless-sync-delay 0 (a
# replica's first sync starts at once, not after 5 s) and
# repl-ping-replica-period 1: CLUSTER SLOTS leaves out a replica whose
# replication offset is 0 (isReplicaAvailable() in cluster.c), and with no
# writes the offset first moves with the master's replication PING, every
# 10 s by default.
cluster_start() {
    local dir=$1 ports=() p _
    mkdir -p "$dir"
    rm -f "$dir"/nodes-*.conf "$dir"/redis-*.pid
    for _ in 1 2 3 4 5 6; do
        p=$(cluster_free_port "${ports[@]}") ||
            { echo "cluster_start: no free port pair" >&2; return 1; }
        ports+=("$p")
    done
    echo "${ports[*]}" >"$dir/ports"
    for p in "${ports[@]}"; do
        redis-server --port "$p" --bind 127.0.0.1 --cluster-enabled yes \
            --cluster-config-file "$dir/nodes-$p.conf" \
            --cluster-node-timeout "$CLUSTER_NODE_TIMEOUT_MS" \
            --repl-diskless-sync-delay 0 --repl-ping-replica-period 1 \
            --save '' --appendonly no --dir "$dir" --daemonize yes \
            --dbfilename "dump-$p.rdb" --appenddirname "appendonlydir-$p" \
            --pidfile "$dir/redis-$p.pid" --logfile "$dir/redis-$p.log" \
            "${CLUSTER_SERVER_ARGS[@]}" ||
            { cluster_stop "$dir"; return 1; }
    done
    for p in "${ports[@]}"; do
        wait_port "$p" "$dir/redis-$p.log" || { cluster_stop "$dir"; return 1; }
    done
    local addrs=()
    for p in "${ports[@]}"; do addrs+=("127.0.0.1:$p"); done
    if ! redis-cli --cluster create "${addrs[@]}" --cluster-replicas 1 --cluster-yes \
        >"$dir/create.log" 2>&1; then
        echo "cluster_start: redis-cli --cluster create failed:" >&2
        tail -n 20 "$dir/create.log" >&2
        cluster_stop "$dir"
        return 1
    fi
    cluster_wait_ok "$dir" || { cluster_stop "$dir"; return 1; }
    CLUSTER_PORTS="${ports[*]}"
    CLUSTER_SEED=${ports[0]}
    export CLUSTER_PORTS CLUSTER_SEED
}

# cluster_settled PORT N: the node on PORT says cluster_state:ok, knows N
# nodes, all connected and none failing, N/2 of them replicas; and its
# CLUSTER SLOTS lists all N (a replica is listed only once it has synced).
# cluster_state:ok alone comes too early: for a few seconds after
# redis-cli --cluster create, nodes still show some replicas as slotless
# masters (gossip has not reached them yet).
cluster_settled() {
    local port=$1 n=$2 nodes
    cluster_state_ok "$port" || return 1
    nodes=$(redis-cli -p "$port" cluster nodes 2>/dev/null) || return 1
    [ "$(grep -c ' connected' <<<"$nodes")" = "$n" ] || return 1
    [ "$(grep -cE '[ ,]slave ' <<<"$nodes")" = "$((n / 2))" ] || return 1
    awk '$3 ~ /fail/ { f = 1 } END { exit f }' <<<"$nodes" || return 1
    [ "$(redis-cli -p "$port" cluster slots 2>/dev/null | grep -c '^127\.0\.0\.1$')" = "$n" ]
}

# cluster_wait_ok DIR: until every node of DIR/ports is cluster_settled
# (CLUSTER_OK_TIMEOUT seconds at most, polled every 50 ms).
cluster_wait_ok() {
    local dir=$1 p ports deadline
    read -ra ports <"$dir/ports"
    deadline=$((SECONDS + CLUSTER_OK_TIMEOUT))
    for p in "${ports[@]}"; do
        until cluster_settled "$p" "${#ports[@]}"; do
            if [ "$SECONDS" -ge "$deadline" ]; then
                echo "cluster_start: node $p not settled after ${CLUSTER_OK_TIMEOUT}s:" >&2
                redis-cli -p "$p" cluster info 2>&1 | head -n 1 >&2
                redis-cli -p "$p" cluster nodes >&2 2>&1
                return 1
            fi
            sleep 0.05
        done
    done
}

# cluster_stop DIR: SIGTERM to each server cluster_start started in DIR (by
# the pid in its pid file, never by name), waits up to 10 s for each to
# exit, then SIGKILL. Logs stay in DIR. Safe to call twice.
cluster_stop() {
    local dir=$1 f pid pids=() _
    for f in "$dir"/redis-*.pid; do
        [ -e "$f" ] || continue
        pid=$(cat "$f" 2>/dev/null) || continue
        [ -n "$pid" ] || continue
        kill "$pid" 2>/dev/null && pids+=("$pid")
        rm -f "$f"
    done
    for pid in "${pids[@]}"; do
        for _ in $(seq 200); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.05
        done
        kill -0 "$pid" 2>/dev/null && kill -9 "$pid" 2>/dev/null
    done
    return 0
}
