#!/bin/bash
# run.sh: bulwark in front of a real Redis Cluster (make cluster, part of make
# test). Starts 3 masters + 3 replicas on free loopback ports
# (tests/cluster-lib.sh) and bulwark with the first node as its upstream, then
# runs tests/cluster/checks.py (plain and cluster-aware redis-py, redis-cli -c,
# slots moved by hand for MOVED and ASK) and tests/cluster/*.js (ioredis
# Cluster, from tests/clients/node_modules) with the bulwark port; then a
# second bulwark in front of a one-node cluster that stops serving any slot.
#
#   tests/cluster/run.sh [BULWARK_BIN]
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cluster-lib.sh"
bin=${1:-$here/../../bulwark}
work=$(mktemp -d /tmp/bulwark-cluster.XXXXXX)
bw=
bw2=
cleanup() {
    [ -n "$bw" ] && { kill "$bw" 2>/dev/null; wait "$bw" 2>/dev/null; }
    [ -n "$bw2" ] && { kill "$bw2" 2>/dev/null; wait "$bw2" 2>/dev/null; }
    [ -f "$work/empty/redis.pid" ] && kill "$(cat "$work/empty/redis.pid")" 2>/dev/null
    cluster_stop "$work" >/dev/null 2>&1
    rm -rf "$work"
}
trap cleanup EXIT INT TERM

CLUSTER_SERVER_ARGS=(--enable-debug-command yes) # checks.py: DEBUG through bulwark
cluster_start "$work" || { echo "cluster: could not start a Redis Cluster"; exit 1; }
bport=$(free_port)
"$bin" --port "$bport" --upstream "127.0.0.1:$CLUSTER_SEED" --logfile "$work/bulwark.log" &
bw=$!
wait_port "$bport" "$work/bulwark.log" || exit 1
for _ in $(seq 100); do # the slot map is read once the first connection is up
    redis-cli -p "$bport" info upstream | grep -q 'upstream_cluster:1' && break
    sleep 0.05
done

rc=0
echo "== redis-cli -c"
out=$(redis-cli -c -p "$bport" set cli:key v1 && redis-cli -c -p "$bport" get cli:key)
[ "$(echo "$out" | tail -1)" = v1 ] || { echo "FAIL redis-cli -c: $out"; rc=1; }
echo "== checks.py"
/usr/bin/python3 "$here/checks.py" "$bport" $CLUSTER_PORTS || rc=1
for t in "$here"/*.js; do
    [ -d "$here/../clients/node_modules/ioredis" ] || { echo "cluster: npm packages missing (make clients)"; rc=1; break; }
    echo "== $(basename "$t")"
    NODE_PATH="$here/../clients/node_modules" node "$t" "$bport" || rc=1
done
# A map with no slot served (every slot deleted on a one-node cluster: what
# bulwark reads while a cluster is down or being set up): the commands sent to
# every master or a random one get Redis's answer, and bulwark stays up.
echo "== a cluster that serves no slot"
mkdir -p "$work/empty"
eport=$(cluster_free_port $CLUSTER_PORTS)
redis-server --port "$eport" --bind 127.0.0.1 --cluster-enabled yes \
    --cluster-config-file "$work/empty/nodes.conf" --save '' --appendonly no \
    --dir "$work/empty" --daemonize yes --pidfile "$work/empty/redis.pid" \
    --logfile "$work/empty/redis.log"
wait_port "$eport" "$work/empty/redis.log" || exit 1
redis-cli -p "$eport" cluster addslotsrange 0 16383 >/dev/null
bport2=$(free_port)
"$bin" --port "$bport2" --upstream "127.0.0.1:$eport" --cluster-refresh-interval 100 \
    --logfile "$work/bulwark2.log" &
bw2=$!
wait_port "$bport2" "$work/bulwark2.log" || exit 1
for _ in $(seq 100); do
    redis-cli -p "$bport2" info upstream | grep -q 'cluster_slots_served:16384' && break
    sleep 0.05
done
redis-cli -p "$bport2" set k v >/dev/null
redis-cli -p "$eport" cluster delslotsrange 0 16383 >/dev/null
for _ in $(seq 100); do
    redis-cli -p "$bport2" info upstream | grep -q 'cluster_slots_served:0' && break
    sleep 0.05
done
set -f # "keys *" unexpanded
for c in randomkey dbsize "scan 0" "keys *" flushall; do
    # shellcheck disable=SC2086 # c is a command and its arguments
    out=$(timeout 5 redis-cli -p "$bport2" $c 2>&1)
    if [ $? = 124 ] || ! kill -0 "$bw2" 2>/dev/null; then
        echo "FAIL $c with no slot served: no answer, or bulwark gone ($out)"
        rc=1
        break
    fi
    echo "ok   $c with no slot served: $(echo $out | head -c 60)"
done
set +f

if [ $rc != 0 ]; then
    echo "--- bulwark log"; tail -20 "$work/bulwark.log"
fi
exit $rc
