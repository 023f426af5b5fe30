#!/usr/bin/env bash
# tests/cluster-smoke.sh: start a 3-master, 3-replica Redis Cluster with
# tests/cluster-lib.sh, write and read through redis-cli -c from every node,
# stop it. Exits non-zero on any failure; prints how long cluster_start took.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=tests/cluster-lib.sh
source "$here/cluster-lib.sh"

dir=$(mktemp -d /tmp/bulwark-cluster.XXXXXX)
trap 'cluster_stop "$dir"; rm -rf "$dir"' EXIT

t0=$(date +%s%N)
cluster_start "$dir"
t1=$(date +%s%N)
echo "cluster_start: $(((t1 - t0) / 1000000)) ms, ports $CLUSTER_PORTS, seed $CLUSTER_SEED"

fail() {
    echo "cluster-smoke: $*" >&2
    exit 1
}

[ "$(redis-cli -c -p "$CLUSTER_SEED" set foo bar)" = OK ] || fail "set foo bar through $CLUSTER_SEED"
# foo's slot (12182) is on one master: every other node redirects there.
for p in $CLUSTER_PORTS; do
    got=$(redis-cli -c -p "$p" get foo)
    [ "$got" = bar ] || fail "get foo through $p: '$got'"
done
# Keys on every master: 100 keys set through the seed, read back through the
# last node, and a hash-tagged MSET (one slot) read with MGET.
for i in $(seq 100); do echo "SET key:$i v$i"; done | redis-cli -c -p "$CLUSTER_SEED" >/dev/null
last=${CLUSTER_PORTS##* }
for i in 1 37 100; do
    got=$(redis-cli -c -p "$last" get "key:$i")
    [ "$got" = "v$i" ] || fail "get key:$i through $last: '$got'"
done
[ "$(redis-cli -c -p "$last" mset '{u1}a' 1 '{u1}b' 2)" = OK ] || fail "mset {u1}a {u1}b"
[ "$(redis-cli -c -p "$CLUSTER_SEED" mget '{u1}a' '{u1}b' | tr '\n' ' ')" = "1 2 " ] ||
    fail "mget {u1}a {u1}b"
masters=$(redis-cli -p "$CLUSTER_SEED" cluster nodes | grep -c master)
[ "$masters" = 3 ] || fail "$masters masters, not 3"
echo "cluster-smoke: ok"
