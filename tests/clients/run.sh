#!/bin/bash
# run.sh: real client libraries through bulwark (make clients, part of make test).
# Starts a private redis-server and bulwark on free loopback ports, installs the
# npm packages of tests/clients/package.json when missing (npm ci), then runs
# every tests/clients/*.js (node) and *.py (Debian's python3 with python3-redis)
# with the bulwark port. Exit 1 on the first failure.
#
#   tests/clients/run.sh [BULWARK_BIN]
set -u
here=$(cd "$(dirname "$0")" && pwd)
. "$here/../lib.sh"
bin=${1:-$here/../../bulwark}
work=$(mktemp -d /tmp/bulwark-clients.XXXXXX)
pids=()
cleanup() {
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
    rm -rf "$work"
}
trap cleanup EXIT INT TERM



wait_ping() { wait_port "$1" "$work"/*.log || exit 1; }

command -v node >/dev/null && command -v npm >/dev/null ||
    { echo "clients: node and npm are needed (make deps)"; exit 1; }
if [ ! -d "$here/node_modules/redis" ] || [ ! -d "$here/node_modules/ioredis" ]; then
    (cd "$here" && npm ci --no-audit --no-fund --loglevel=error) ||
        { echo "clients: npm ci failed"; exit 1; }
fi

rport=$(free_port)
redis-server --port "$rport" --bind 127.0.0.1 --save '' --appendonly no --dir "$work" \
    --logfile "$work/redis.log" &
pids+=($!)
wait_ping "$rport"
bport=$(free_port)
"$bin" --port "$bport" --upstream "127.0.0.1:$rport" --logfile "$work/bulwark.log" &
pids+=($!)
wait_ping "$bport"
# the gate closes once the first SCAN is done: tests then see local answers too
for _ in $(seq 200); do
    redis-cli -p "$bport" info bloom | grep -q 'bloom_state:active' && break
    sleep 0.05
done

rc=0
for t in "$here"/*.js "$here"/*.py; do
    echo "== $(basename "$t")"
    run=node
    [ "${t%.py}" != "$t" ] && run=/usr/bin/python3 # Debian's, with python3-redis
    if ! timeout 120 $run "$t" "$bport" "$rport"; then
        rc=1
        echo "clients: $(basename "$t") failed; bulwark log:"
        tail -n 20 "$work/bulwark.log"
        break
    fi
done
exit $rc
