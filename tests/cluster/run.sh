#!/bin/bash
# run.sh: bulwark in front of a real Redis Cluster (make cluster, part of make
# test). Starts 3 masters + 3 replicas on free loopback ports
# (tests/cluster-lib.sh) and bulwark with the first node as its upstream, then
# runs tests/cluster/checks.py (plain and cluster-aware redis-py, redis-cli -c,
# slots moved by hand for MOVED and ASK) and tests/cluster/*.js (ioredis
# Cluster, from tests/clients/node_modules) with the bulwark port.
#
#   tests/cluster/run.sh [BULWARK_BIN]
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../cluster-lib.sh"
bin=${1:-$here/../../bulwark}
work=$(mktemp -d /tmp/bulwark-cluster.XXXXXX)
bw=
cleanup() {
    [ -n "$bw" ] && { kill "$bw" 2>/dev/null; wait "$bw" 2>/dev/null; }
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
if [ $rc != 0 ]; then
    echo "--- bulwark log"; tail -20 "$work/bulwark.log"
fi
exit $rc
