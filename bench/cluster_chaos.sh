#!/usr/bin/env bash
# bench/cluster_chaos.sh: bulwark in front of a Redis Cluster that is
# resharded or loses a master under load (issue #16). For each scenario: a
# fresh 3 masters + 3 replicas cluster (tests/cluster-lib.sh) and bulwark on
# free loopback ports; load through bulwark (redis-benchmark -c 50 -P 16 -t
# get,set -r 1000000, restarted in a loop: it exits at the first error reply)
# and at the same time bench/cluster_check.py, a value checker (wrong values,
# nil for written keys, values for absent keys, errors with timestamps); the
# event; load until AFTER_S seconds after the cluster is whole again; then a
# final sweep of every checked key. Prints one markdown table. Stops
# everything it started (by pid) on exit.
#
#   baseline   no event (LOAD_S seconds of load)
#   reshard    redis-cli --cluster reshard: RESHARD_SLOTS slots from the
#              master of slot 0 to another master
#   kill       kill -9 a master that is not bulwark's upstream node; its
#              replica is promoted (cluster-node-timeout of cluster-lib.sh)
#   kill-seed  kill -9 bulwark's upstream node, the master of slot 0
#
# failover window: from the kill to the moment a surviving master lists the
# replica as master of the slots and says cluster_state:ok. "errors outside"
# counts the checker's errors before the event or later than WINDOW_SLACK_S
# after the window (bulwark's own delay to follow the new map is "lag").
#
# Usage: bench/cluster_chaos.sh [scenario …]   (default: all four)
# Environment: BULWARK_BIN=./bulwark BULWARK_ARGS= (more options) WARM_S=3 AFTER_S=6 LOAD_S=10
#   RESHARD_SLOTS=1000 RB_N=200000 (requests per redis-benchmark test)
#   PREFILL=1000000 (SETs of key:… through bulwark before the load: ~630,000
#   keys, ~39,000 in the resharded slots)
#   CHECK_THREADS=6 CHECK_KEYS=2000 (keys per checker thread)
#   WINDOW_SLACK_S=1 KEEP=1 (keep the work directory: logs, raw results)
set -uo pipefail
cd "$(dirname "$0")/.."
BIN=${BULWARK_BIN:-./bulwark}
BULWARK_ARGS=${BULWARK_ARGS:-}
WARM_S=${WARM_S:-3}
AFTER_S=${AFTER_S:-6}
LOAD_S=${LOAD_S:-10}
RESHARD_SLOTS=${RESHARD_SLOTS:-1000}
RB_N=${RB_N:-200000}
PREFILL=${PREFILL:-1000000}
CHECK_THREADS=${CHECK_THREADS:-6}
CHECK_KEYS=${CHECK_KEYS:-2000}
WINDOW_SLACK_S=${WINDOW_SLACK_S:-1}
SCENARIOS=("$@")
[ ${#SCENARIOS[@]} -gt 0 ] || SCENARIOS=(baseline reshard kill kill-seed)

[ -x "$BIN" ] || { echo "cluster_chaos.sh: $BIN not built (make all)" >&2; exit 1; }
. tests/cluster-lib.sh
work=$(mktemp -d /tmp/bulwark-chaos.XXXXXX)
pids=()
cur=
cleanup() {
    local p
    [ -n "$cur" ] && touch "$cur/stop"
    for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null; done
    [ -n "$cur" ] && cluster_stop "$cur" >/dev/null 2>&1
    if [ -n "${KEEP:-}" ]; then echo "kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now() { date +%s.%N | cut -c1-14; }

# master_of SLOT PORT: "id port" of the master serving SLOT, as PORT's node says.
master_of() {
    redis-cli -p "$2" cluster nodes | awk -v s="$1" '$3 ~ /master/ && $3 !~ /fail/ {
        for (i = 9; i <= NF; i++) { n = split($i, r, "-"); if (n == 1) r[2] = r[1]
            if (s >= r[1] && s <= r[2]) { split($2, a, "[:@]"); print $1, a[2]; exit } } }'
}

# replica_of ID PORT: the port of ID's replica, as PORT's node says.
replica_of() {
    redis-cli -p "$2" cluster nodes | awk -v m="$1" '$4 == m { split($2, a, "[:@]"); print a[2]; exit }'
}

# The load: redis-benchmark runs back to back until $1/stop; one line per run
# in $1/rb.runs: start end rc set_rps get_rps first-error.
load_loop() {
    local d=$1 bp=$2 s e rc i=0
    while [ ! -e "$d/stop" ]; do
        i=$((i + 1))
        s=$(now)
        timeout 120 redis-benchmark -p "$bp" -c 50 -P 16 -t get,set -r 1000000 -n "$RB_N" \
            --csv >"$d/rb.out" 2>"$d/rb.err"
        rc=$?
        e=$(now)
        echo "$s $e $rc $(awk -F'"' '$2 == "SET" { s = $4 } $2 == "GET" { g = $4 }
            END { printf "%s %s", s ? s : "-", g ? g : "-" }' "$d/rb.out") \
            $(head -c 120 "$d/rb.err" | tr '\n' ' ')" >>"$d/rb.runs"
        [ $rc = 0 ] || sleep 0.05
    done
}

# cluster_whole PORT VICTIM_REPLICA: PORT's node says cluster_state:ok and
# lists VICTIM_REPLICA as a master with slots.
cluster_whole() {
    cluster_state_ok "$1" &&
        redis-cli -p "$1" cluster nodes | awk -v p="$2" '
            { split($2, a, "[:@]") } a[2] == p && $3 ~ /master/ && NF >= 9 { f = 1 } END { exit !f }'
}

run_scenario() {
    local name=$1 d=$work/$1 bp bw seed ev_start ev_end promoted=- victim=- extra=
    mkdir -p "$d"
    cur=$d
    echo "== $name" >&2
    cluster_start "$d" >&2 || { echo "$name: no cluster" >&2; return 1; }
    seed=$CLUSTER_SEED
    bp=$(free_port)
    # shellcheck disable=SC2086
    "$BIN" --port "$bp" --upstream "127.0.0.1:$seed" --logfile "$d/bulwark.log" $BULWARK_ARGS &
    bw=$!
    pids+=("$bw")
    wait_port "$bp" "$d/bulwark.log" || return 1
    for _ in $(seq 100); do
        redis-cli -p "$bp" info upstream | grep -q 'cluster_slots_served:16384' && break
        sleep 0.05
    done
    if [ "$PREFILL" -gt 0 ]; then # keys for the resharding to move (and the gate to know)
        redis-benchmark -p "$bp" -c 50 -P 64 -t set -r 1000000 -n "$PREFILL" -q >/dev/null 2>&1
    fi
    /usr/bin/python3 bench/cluster_check.py "$bp" "$d/stop" "$CHECK_THREADS" "$CHECK_KEYS" \
        >"$d/check.json" 2>"$d/check.err" &
    local ck=$!
    pids+=("$ck")
    load_loop "$d" "$bp" &
    local ll=$!
    pids+=("$ll")
    sleep "$WARM_S"
    ev_start=$(now)
    case $name in
    baseline)
        sleep "$LOAD_S"
        ;;
    reshard)
        local src dst
        src=$(master_of 0 "$seed" | cut -d' ' -f1)
        dst=$(master_of 16383 "$seed" | cut -d' ' -f1)
        redis-cli --cluster reshard "127.0.0.1:$seed" --cluster-from "$src" --cluster-to "$dst" \
            --cluster-slots "$RESHARD_SLOTS" --cluster-yes >"$d/reshard.log" 2>&1 ||
            extra="reshard failed (rc $?): $(tail -n 2 "$d/reshard.log" | tr '\n' ' ')"
        ;;
    kill | kill-seed)
        local vid vport rport other
        read -r vid vport < <(master_of "$([ "$name" = kill ] && echo 16383 || echo 0)" "$seed")
        rport=$(replica_of "$vid" "$seed")
        other=$(master_of 8000 "$seed" | cut -d' ' -f2)
        [ "$other" != "$vport" ] || other=$(master_of 16383 "$seed" | cut -d' ' -f2)
        victim=$vport
        ev_start=$(now)
        kill -9 "$(cat "$d/redis-$vport.pid")"
        rm -f "$d/redis-$vport.pid"
        for _ in $(seq 1200); do
            cluster_whole "$other" "$rport" && break
            sleep 0.05
        done
        promoted=$(now)
        cluster_whole "$other" "$rport" || extra="replica $rport not promoted after 60 s"
        ;;
    esac
    ev_end=$(now)
    sleep "$AFTER_S"
    touch "$d/stop"
    local t0=$SECONDS
    while kill -0 "$ck" 2>/dev/null && [ $((SECONDS - t0)) -lt 120 ]; do sleep 0.2; done
    kill -0 "$ck" 2>/dev/null && extra="$extra checker hung"
    wait "$ll" 2>/dev/null
    local alive=yes
    kill -0 "$bw" 2>/dev/null || alive=no
    redis-cli -p "$bp" info upstream | tr -d '\r' | grep '^cluster_' >"$d/info.txt"
    kill "$bw" 2>/dev/null
    wait "$bw" 2>/dev/null
    cluster_stop "$d" >/dev/null 2>&1
    cur=
    cat >"$d/event" <<EOF
name=$name
ev_start=$ev_start
ev_end=$ev_end
promoted=$promoted
victim=$victim
alive=$alive
extra=$extra
EOF
}

for s in "${SCENARIOS[@]}"; do run_scenario "$s"; done

/usr/bin/python3 - "$work" "$WINDOW_SLACK_S" "${SCENARIOS[@]}" <<'EOF'
import json, statistics, sys
work, slack, names = sys.argv[1], float(sys.argv[2]), sys.argv[3:]
print("| scenario | event s | redis-benchmark SET / GET rps (median of runs; runs cut by an error) "
      "| checker ops | wrong | stale | nil for written | absent not nil | errors "
      "| error window s (first → last) | cluster failover s | lag s | errors outside "
      "| sweep keys / wrong / errors | bulwark alive |")
print("| --- | ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | ---: | ---: | --- | --- |")
notes = []
for n in names:
    d = "%s/%s" % (work, n)
    try:
        ev = dict(l.rstrip("\n").split("=", 1) for l in open(d + "/event"))
        c = json.load(open(d + "/check.json"))
    except Exception as e:
        print("| %s | failed: %s |" % (n, e))
        continue
    s0, s1 = float(ev["ev_start"]), float(ev["ev_end"])
    prom = float(ev["promoted"]) if ev["promoted"] != "-" else None
    sets, gets, cut = [], [], 0
    for l in open(d + "/rb.runs"):
        f = l.split()
        if f[2] != "0":
            cut += 1
            continue
        if f[3] != "-": sets.append(float(f[3]))
        if f[4] != "-": gets.append(float(f[4]))
    med = lambda v: "%.0f" % statistics.median(v) if v else "-"
    win_end = (prom if prom is not None else s0) + slack
    outside = sum(k for t, k in c["err_hist"] if t + 0.1 < s0 or (t > win_end if prom else True))
    fe, le = c["first_error"], c["last_error"]
    window = "%.2f (%+.2f → %+.2f)" % (le - fe, fe - s0, le - s0) if fe else "none"
    lag = "%.2f" % (le - prom) if fe and prom else "-"
    print("| %s | %.1f | %s / %s (%d cut) | %d | %d | %d | %d | %d | %d | %s | %s | %s | %d | %d / %d / %d | %s |" % (
        n, s1 - s0, med(sets), med(gets), cut, c["ops"], c["wrong"], c["stale"], c["nil_written"],
        c["absent_not_nil"], c["errors"], window, "%.2f" % (prom - s0) if prom else "-", lag,
        outside, c["sweep_keys"], c["sweep_wrong"] + c["sweep_nil_written"], c["sweep_errors"],
        ev["alive"]))
    kinds = ", ".join("%s ×%d" % kv for kv in sorted(c["error_kinds"].items(), key=lambda kv: -kv[1]))
    info = " ".join(l.strip() for l in open(d + "/info.txt")) if open(d + "/info.txt").read() else ""
    notes.append("- %s: %s%s%s" % (n, ("errors: " + kinds + "; ") if kinds else "", info,
                                   ("; " + ev["extra"]) if ev["extra"] else ""))
    if c["wrong_samples"]:
        notes.append("  wrong: %s" % json.dumps(c["wrong_samples"][:5]))
print()
print("\n".join(notes))
EOF
