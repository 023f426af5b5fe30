#!/usr/bin/env bash
# bench/resp3.sh: RESP3 and CLIENT TRACKING through bulwark, in one run.
#   1. GET and SET (redis-benchmark -3 and RESP2) through bulwark as a ratio to
#      Redis direct, interleaved rounds, medians;
#   2. the cost of tracking on everyone's GETs: the same GET run through bulwark
#      with no tracking client, and with one tracking client connected (every
#      request then passes the tracking hooks), ratio;
#   3. memory of bulwark's tracking table: RSS before and after one client with
#      tracking on reads K distinct keys, bytes per tracked key.
# Starts its own redis-server and bulwark on free loopback ports.
#
# Usage: bench/resp3.sh [rounds]   Environment: N=200000 P=16 C=50 K=500000 BULWARK_BIN=./bulwark
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
N=${N:-200000}
P=${P:-16}
C=${C:-50}
K=${K:-500000}
BIN=${BULWARK_BIN:-./bulwark}
dir=$(mktemp -d /tmp/bulwark-resp3.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$dir"; }
trap cleanup EXIT INT TERM
. tests/lib.sh
wait_ping() { wait_port "$1" "$dir"/*.log || exit 1; }
rp=$(free_port); bp=$(free_port)
redis-server --port "$rp" --bind 127.0.0.1 --save '' --appendonly no --dir "$dir" --daemonize no \
    --logfile "$dir/redis.log" & pids+=($!)
wait_ping "$rp"
"$BIN" --port "$bp" --upstream "127.0.0.1:$rp" --ttl-jitter-percent 0 --logfile "$dir/bulwark.log" &
bpid=$!
pids+=($bpid)
wait_ping "$bp"
redis-benchmark -p "$rp" -t set -n 100000 -r 100000 -q >/dev/null
# rps PORT TEST PROTO: requests per second of one redis-benchmark run
rps() {
    local three=""
    [ "$3" = 3 ] && three=-3
    rb_rps -p "$1" $three -t "$2" -n "$N" -r 100000 -c "$C" -P "$P"
}
# a client that turns tracking on, reads keys, and stays connected: tracker PORT NKEYS
tracker() {
    python3 - "$1" "$2" <<'PY' &
import socket, sys, time
port, n = int(sys.argv[1]), int(sys.argv[2])
s = socket.create_connection(("127.0.0.1", port))
s.sendall(b"HELLO 3\r\nCLIENT TRACKING on\r\n")
batch = 10000
for start in range(0, n, batch):
    s.sendall(b"".join(b"*2\r\n$3\r\nGET\r\n$%d\r\n%s\r\n" % (len(k), k)
                       for k in (b"trk:%d" % i for i in range(start, min(n, start + batch)))))
s.sendall(b"PING\r\n")
buf = b""
while not buf.endswith(b"+PONG\r\n"):
    buf = buf[-16:] + s.recv(1 << 20)
print("ready", flush=True)
time.sleep(3600)
PY
}
declare -A R
for ((round = 1; round <= ROUNDS; round++)); do
    for cs in "get 2" "get 3" "set 2" "set 3"; do
        read -r t p <<<"$cs"
        R["$cs redis"]="${R["$cs redis"]:-} $(rps "$rp" "$t" "$p")"
        R["$cs bulwark"]="${R["$cs bulwark"]:-} $(rps "$bp" "$t" "$p")"
    done
done
echo "| test (-c $C -P $P, $N requests) | Redis direct rps | bulwark rps | ratio |"
echo "| --- | ---: | ---: | ---: |"
for cs in "get 2" "get 3" "set 2" "set 3"; do
    read -r t p <<<"$cs"
    r=$(median ${R["$cs redis"]}); b=$(median ${R["$cs bulwark"]})
    printf '| %s RESP%s | %s | %s | %.2f |\n' "${t^^}" "$p" "$r" "$b" "$(python3 -c "print($b / $r)")"
done

# 2. GETs of other clients with and without a tracking client connected
off="" on=""
for ((round = 1; round <= ROUNDS; round++)); do off="$off $(rps "$bp" get 2)"; done
tracker "$bp" 1000 >"$dir/tracker1" ; tpid=$!
for _ in $(seq 100); do grep -q ready "$dir/tracker1" && break; sleep 0.1; done
for ((round = 1; round <= ROUNDS; round++)); do on="$on $(rps "$bp" get 2)"; done
kill $tpid 2>/dev/null; wait $tpid 2>/dev/null || true
o=$(median $off); n=$(median $on)
echo
echo "| GET -c $C -P $P through bulwark | rps |"
echo "| --- | ---: |"
echo "| no tracking client | $o |"
printf '| one tracking client connected (ratio %.2f) | %s |\n' "$(python3 -c "print($n / $o)")" "$n"

# 3. tracking table memory
sleep 0.5
rss() { awk '/^VmRSS/ {print $2 * 1024}' /proc/"$bpid"/status; }
r0=$(rss)
tracker "$bp" "$K" >"$dir/tracker2"; tpid=$!
for _ in $(seq 600); do grep -q ready "$dir/tracker2" && break; sleep 0.1; done
r1=$(rss)
keys=$(redis-cli -p "$bp" info stats | tr -d '\r' | awk -F: '/^tracking_total_keys/ {print $2}')
kill $tpid 2>/dev/null; wait $tpid 2>/dev/null || true
echo
echo "| tracking table | value |"
echo "| --- | ---: |"
echo "| keys tracked (INFO tracking_total_keys) | $keys |"
echo "| bulwark RSS growth | $(( (r1 - r0) / 1048576 )) MB |"
printf '| bytes per tracked key (RSS growth / keys) | %.0f |\n' "$(python3 -c "print(($r1 - $r0) / max(1, $keys))")"
