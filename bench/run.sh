#!/usr/bin/env bash
# bench/run.sh: bulwark vs Redis directly (and twemproxy/nutcracker when
# installed) in one run: redis-benchmark and bench/loadgen workloads, the
# targets interleaved round by round; prints one markdown table of medians
# with each ratio to Redis direct. Starts its own redis-server, bulwark and
# nutcracker on free loopback ports and stops them (by pid) on exit.
#
# Usage: bench/run.sh [rounds]            (make bench runs it with 3 rounds)
# Environment (defaults sized for < 15 minutes on 2 cores):
#   RB_N1=50000 RB_N16=250000   redis-benchmark requests per test at -P 1 / -P 16
#   RB_CLIENTS="50 500" RB_PIPES="1 16" RB_TESTS=get,set,mget,incr
#   LG_SECS=3       seconds per loadgen workload (50 connections)
#   KEYS=100000 VALUE=100       key space (prefilled) and value bytes
#   AV_KEYS=5000 AV_TTL=20 AV_SECS=23 AV_DB_MS=5   avalanche scenario
#   AG_N1=150000 AG_N16=900000  GETs per agreement run (loadgen and
#                               redis-benchmark back to back on Redis direct)
#   AG_CASES="10:1 50:1 50:16 500:16"   their connections:pipeline
#   BUDGET_S=780    no round is started that would, at the pace so far, end
#                   after this many seconds (the machine may be shared)
#   BULWARK_BIN=./bulwark LOADGEN_BIN=bench/loadgen
#   BENCH_OUT=bench/results   where the raw data is saved at the end (for
#                   bench/charts.sh): table.md (what is printed), medians.tsv,
#                   raw.tsv (every round's value), avalanche.tsv (every
#                   round's DB loads per second), meta.txt (machine, load)
set -euo pipefail
cd "$(dirname "$0")/.."
ROUNDS=${1:-3}
RB_N1=${RB_N1:-50000}
RB_N16=${RB_N16:-250000}
RB_CLIENTS=${RB_CLIENTS:-50 500}
RB_PIPES=${RB_PIPES:-1 16}
RB_TESTS=${RB_TESTS:-get,set,mget,incr}
LG_SECS=${LG_SECS:-3}
KEYS=${KEYS:-100000}
VALUE=${VALUE:-100}
AV_KEYS=${AV_KEYS:-5000}
AV_TTL=${AV_TTL:-20}
AV_SECS=${AV_SECS:-23}
AV_DB_MS=${AV_DB_MS:-5}
AG_N1=${AG_N1:-150000}
AG_N16=${AG_N16:-900000}
AG_CASES=${AG_CASES:-10:1 50:1 50:16 500:16}
BUDGET_S=${BUDGET_S:-780}
BIN=${BULWARK_BIN:-./bulwark}
LG=${LOADGEN_BIN:-bench/loadgen}
OUT=${BENCH_OUT:-bench/results}
RUN_TIMEOUT=120 # seconds any single benchmark command may take

for f in "$BIN" "$LG"; do
    [[ -x $f ]] || { echo "run.sh: $f not built (make all bench/loadgen)" >&2; exit 1; }
done
if ! command -v redis-server >/dev/null || ! command -v redis-benchmark >/dev/null; then
    echo "run.sh: redis-server and redis-benchmark are needed (make deps)" >&2; exit 1
fi

. bench/lib.sh
bench_init bench

# ---- start the targets ---------------------------------------------------
bench_redis
bench_bulwark "$BIN" "$rport" --loglevel warning --ttl-jitter-percent 10
targets=("redis:$rport" "bulwark:$bport")
if command -v nutcracker >/dev/null; then
    tport=$(free_port)
    cat > "$dir/nutcracker.yml" <<YML
bench:
  listen: 127.0.0.1:$tport
  redis: true
  servers:
   - 127.0.0.1:$rport:1
YML
    # its own stats port too: the default 22222 may be taken, and then it exits
    nutcracker -c "$dir/nutcracker.yml" -o "$dir/nutcracker.log" -a 127.0.0.1 \
        -s "$(free_port)" & pids+=($!)
    for _ in $(seq 100); do redis-cli -p "$tport" get probe >/dev/null 2>&1 && break; sleep 0.05; done
    if redis-cli -p "$tport" get probe >/dev/null 2>&1; then
        targets+=("twemproxy:$tport")
    else
        echo "run.sh: nutcracker did not answer (see below); going on without it" >&2
        tail -n 3 "$dir/nutcracker.log" >&2
    fi
fi
names=()
for t in "${targets[@]}"; do names+=("${t%%:*}"); done

started=$(date +%s)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
loads="" # 1-min load average at each stage of each round
stage_load() { loads+="$(cut -d' ' -f1 /proc/loadavg) "; }
date_start=$(date -u '+%Y-%m-%d %H:%M UTC')
# raw data, copied to $OUT at the end (an aborted run leaves the old files)
printf 'round\tworkload\tconns\tpipeline\ttarget\tmetric\tvalue\n' > "$dir/raw.tsv"
printf 'round\tlabel\ttarget\tsecond\tdb_loads\n' > "$dir/avalanche.tsv"
echo "bench: $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load $(cut -d' ' -f1-3 /proc/loadavg)" >&2
echo "bench: redis :$rport, bulwark :$bport${tport:+, twemproxy :$tport}; $ROUNDS rounds" >&2

# The key space every workload reads, written once through bulwark (which
# learns the keys); redis-benchmark -r $KEYS uses the same names.
timeout "$RUN_TIMEOUT" "$LG" -p "$bport" --prefill -n 1 -k "$KEYS" --value-size "$VALUE" \
    -c 50 > "$dir/prefill.out" || { cat "$dir/prefill.out" >&2; exit 1; }

declare -A res # "row|target|metric" -> space-separated values, one per round
declare -A timeline # "avalanche label|target" -> last round's DB loads per second
add() { # "row|c|p|target|metric" value (agreement: "agree|c|p|what")
    res["$1"]+="$2 "
    local k=$1
    [[ $k == agree\|* ]] && k="${k%|*}|redis|${k##*|}"
    printf '%s\t%s\t%s\n' "${round:-0}" "${k//|/$'\t'}" "$2" >> "$dir/raw.tsv"
}

# redis-benchmark: one invocation per (target, clients, pipeline). It has no
# MGET test (its -t list stops at MSET), so "mget" runs as the command
# MGET of 10 random keys of the key space (as its MSET test writes 10).
mget_cmd=(MGET); for _ in $(seq 10); do mget_cmd+=("key:__rand_int__"); done
rb_tests=$(echo ",$RB_TESTS," | sed 's/,mget,/,/; s/^,//; s/,$//')
rb_parse() { # name clients pipe < csv
    local test rps _
    while IFS=, read -r test rps _; do
        test=${test//\"/}; rps=${rps//\"/}
        [[ $test == test || -z $rps ]] && continue
        test=${test%% *} # "MGET key:..." and "MSET (10 keys)": first word
        add "rb $test|$2|$3|$1|req/s" "$rps"
    done
}
# A target that died is skipped (and said so) rather than timed out run by run.
alive() { # name port
    redis-cli -p "$2" get probe >/dev/null 2>&1 && return 0
    echo "run.sh: $1 (port $2) does not answer; skipping its runs" >&2; return 1
}
run_rb() { # name port clients pipe
    local n=$RB_N1
    alive "$1" "$2" || return 0
    [[ $4 == 1 ]] || n=$RB_N16
    local args=(-p "$2" -n "$n" -c "$3" -P "$4" -r "$KEYS" -d "$VALUE" --csv -q)
    if [[ -n $rb_tests ]]; then
        rb_parse "$1" "$3" "$4" < <(timeout "$RUN_TIMEOUT" redis-benchmark "${args[@]}" \
            -t "$rb_tests" 2>/dev/null || true)
    fi
    if [[ ,$RB_TESTS, == *,mget,* ]]; then
        rb_parse "$1" "$3" "$4" < <(timeout "$RUN_TIMEOUT" redis-benchmark "${args[@]}" \
            "${mget_cmd[@]}" 2>/dev/null || true)
    fi
}

# loadgen: parse its RESULT line into the metrics of one row.
run_lg() { # row name port clients pipe args...
    local row=$1 name=$2 port=$3 c=$4 p=$5 line kv
    shift 5
    alive "$name" "$port" || return 0
    line=$(timeout "$RUN_TIMEOUT" "$LG" -p "$port" --redis "127.0.0.1:$rport" -c "$c" -P "$p" \
               "$@" 2>>"$dir/loadgen.err" | tee -a "$dir/loadgen.out" | grep '^RESULT' || true)
    [[ -n $line ]] || { echo "run.sh: loadgen $row on $name failed" >&2; return 0; }
    for kv in ${line#RESULT }; do
        case ${kv%%=*} in
        rps) add "lg $row|$c|$p|$name|req/s" "${kv#*=}" ;;
        p50_us) add "lg $row|$c|$p|$name|p50 µs" "${kv#*=}" ;;
        p99_us) add "lg $row|$c|$p|$name|p99 µs" "${kv#*=}" ;;
        p999_us) add "lg $row|$c|$p|$name|p99.9 µs" "${kv#*=}" ;;
        upstream_per_req) add "lg $row|$c|$p|$name|upstream cmds/req" "${kv#*=}" ;;
        peak_db_loads_per_s) add "lg $row|$c|$p|$name|peak DB loads/s" "${kv#*=}" ;;
        db_loads) add "lg $row|$c|$p|$name|DB loads" "${kv#*=}" ;;
        esac
    done
}

set_jitter() {
    local r
    r=$(redis-cli -p "$bport" config set ttl-jitter-percent "$1" 2>&1)
    [[ $r == OK ]] || { echo "run.sh: CONFIG SET ttl-jitter-percent $1: $r" >&2; exit 1; }
}

# Avalanche: AV_KEYS keys written with the same EX AV_TTL, then read (cache-
# aside, AV_DB_MS database loads) for AV_SECS seconds across their expiry.
run_av() { # round label name port
    local out
    run_lg "avalanche $2" "$3" "$4" 50 4 --mode avalanche -k "$AV_KEYS" --ttl "$AV_TTL" \
        -d "$AV_SECS" --db-latency "$AV_DB_MS" --value-size "$VALUE" --prefix "av$1-$3-${2//[^0-9]/}:"
    out=$(tail -n 2 "$dir/loadgen.out" | sed -n 's/^TIMELINE db_loads_per_s=//p')
    timeline["$2|$3"]=$out
    tr ',' '\n' <<< "$out" | awk -v r="$1" -v l="$2" -v t="$3" \
        'NF {printf "%s\t%s\t%s\t%d\t%s\n", r, l, t, NR - 1, $1}' >> "$dir/avalanche.tsv"
}

# Agreement: the same GETs (count, keys, -c c, -P p) from redis-benchmark and
# from loadgen on Redis direct, back to back, the order alternating by round,
# so that load from elsewhere on the machine hits both alike. Each tool's CPU
# per GET is kept too: where a client saturates its core (on 2 cores, any
# single-threaded client at -P 1 with many connections) the rate is bounded
# by the client's own cost per request, and the two tools' costs differ.
run_agree() { # round clients pipe
    local n=$AG_N1 rb="" lg="" rbcpu="" lgcpu="" line u s r
    [[ $3 == 1 ]] || n=$AG_N16
    local order="rb lg"; (( $1 % 2 )) || order="lg rb"
    for tool in $order; do
        if [[ $tool == rb ]]; then
            # bash's time: user, system and wall seconds of redis-benchmark
            { TIMEFORMAT='%U %S %R'; time timeout "$RUN_TIMEOUT" redis-benchmark -p "$rport" \
                  -t get -n "$n" -c "$2" -P "$3" -r "$KEYS" -d "$VALUE" --csv -q \
                  > "$dir/agree.csv" 2>/dev/null; } 2> "$dir/agree.time" || true
            rb=$(awk -F, '/"GET"/ {gsub(/"/, "", $2); print $2}' "$dir/agree.csv")
            read -r u s r < "$dir/agree.time" || true
            rbcpu=$(awk -v u="$u" -v s="$s" -v r="$r" 'BEGIN { if (r > 0) printf "%.2f", (u + s) / r }')
        else
            line=$(timeout "$RUN_TIMEOUT" "$LG" -p "$rport" -n "$n" -c "$2" -P "$3" -k "$KEYS" \
                       2>>"$dir/loadgen.err" | grep '^RESULT' || true)
            lg=$(sed -n 's/^RESULT rps=\([0-9.]*\) .*/\1/p' <<< "$line")
            lgcpu=$(sed -n 's/.* client_cpu=\([0-9.]*\).*/\1/p' <<< "$line")
        fi
    done
    [[ -n $rb && -n $lg ]] || { echo "run.sh: agreement run -c $2 -P $3 failed" >&2; return 0; }
    add "agree|$2|$3|rb" "$rb"; add "agree|$2|$3|lg" "$lg"
    add "agree|$2|$3|rbcpu" "$rbcpu"; add "agree|$2|$3|lgcpu" "$lgcpu"
    add "agree|$2|$3|ratio" "$(awk -v a="$lg" -v b="$rb" 'BEGIN {printf "%.4f", a / b}')"
}

lg_rows=("uniform|50|1|--dist uniform" "uniform|50|16|--dist uniform"
         "zipf 0.99|50|1|--dist zipf:0.99" "90% absent|50|1|--dist uniform --absent 0.9")

rounds_done=0
for round in $(seq "$ROUNDS"); do
    elapsed=$(( $(date +%s) - started ))
    if (( round > 1 && elapsed + elapsed / (round - 1) > BUDGET_S )); then
        echo "run.sh: stopping after $rounds_done rounds: another would end past BUDGET_S=$BUDGET_S s" >&2
        break
    fi
    echo "bench: round $round/$ROUNDS ($elapsed s)" >&2
    stage_load
    for c in $RB_CLIENTS; do
        for p in $RB_PIPES; do
            for t in "${targets[@]}"; do run_rb "${t%%:*}" "${t##*:}" "$c" "$p"; done
        done
    done
    echo "bench:   loadgen vs redis-benchmark ($(( $(date +%s) - started )) s)" >&2
    stage_load
    for cp in $AG_CASES; do run_agree "$round" "${cp%:*}" "${cp#*:}"; done
    echo "bench:   loadgen workloads ($(( $(date +%s) - started )) s)" >&2
    stage_load
    for spec in "${lg_rows[@]}"; do
        IFS='|' read -r row c p args <<< "$spec"
        for t in "${targets[@]}"; do
            # shellcheck disable=SC2086 # args is a list of options
            run_lg "$row" "${t%%:*}" "${t##*:}" "$c" "$p" -d "$LG_SECS" -k "$KEYS" \
                --value-size "$VALUE" $args
        done
    done
    # Jitter is bulwark's: Redis direct is the baseline of both rows.
    echo "bench:   avalanche ($(( $(date +%s) - started )) s)" >&2
    stage_load
    run_av "$round" "jitter 0" redis "$rport"
    set_jitter 0
    run_av "$round" "jitter 0" bulwark "$bport"
    set_jitter 10
    run_av "$round" "jitter 10%" bulwark "$bport"
    res["lg avalanche jitter 10%|50|4|redis|peak DB loads/s"]=${res["lg avalanche jitter 0|50|4|redis|peak DB loads/s"]-}
    res["lg avalanche jitter 10%|50|4|redis|DB loads"]=${res["lg avalanche jitter 0|50|4|redis|DB loads"]-}
    rounds_done=$round
done

# ---- the table -----------------------------------------------------------
median() {
    tr ' ' '\n' | awk '/^[0-9.]+$/' | sort -g |
        awk '{a[NR]=$1} END {if (NR) print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'
}
fmt() { # value metric
    [[ -n $1 ]] || { echo "—"; return; }
    if [[ $2 == "upstream cmds/req" ]]; then printf '%.3f' "$1"; else printf '%.0f' "$1"; fi
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a != "" && b > 0) printf "%.2f", a / b; else printf "—" }'; }

printf 'workload\tconns\tpipeline\tmetric\ttarget\tmedian\n' > "$dir/medians.tsv"
{
echo
echo "Medians of $rounds_done rounds; ratios are to Redis direct. loadgen req/s counts commands."
header="| workload | conns | pipeline | metric |"
rule="| --- | ---: | ---: | --- |"
for n in "${names[@]}"; do
    header+=" $n |"; rule+=" ---: |"
    [[ $n == redis ]] || { header+=" $n/redis |"; rule+=" ---: |"; }
done
echo
echo "$header"
echo "$rule"
rows=()
for c in $RB_CLIENTS; do for p in $RB_PIPES; do for t in ${RB_TESTS//,/ }; do
    rows+=("rb ${t^^}|$c|$p|req/s")
done; done; done
for spec in "${lg_rows[@]}"; do
    IFS='|' read -r row c p _ <<< "$spec"
    for m in "req/s" "p50 µs" "p99 µs" "p99.9 µs" "upstream cmds/req"; do rows+=("lg $row|$c|$p|$m"); done
done
for row in "avalanche jitter 0" "avalanche jitter 10%"; do
    rows+=("lg $row|50|4|peak DB loads/s" "lg $row|50|4|DB loads")
done
for r in "${rows[@]}"; do
    IFS='|' read -r row c p m <<< "$r"
    base=$(echo "${res["$row|$c|$p|redis|$m"]-}" | median)
    label=${row/#rb /redis-benchmark }
    label=${label/#lg /loadgen }
    line="| $label | $c | $p | $m |"
    for n in "${names[@]}"; do
        v=$(echo "${res["$row|$c|$p|$n|$m"]-}" | median)
        if [[ $row == "lg avalanche"* && $n == twemproxy ]]; then v=""; fi
        [[ -z $v ]] || printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$label" "$c" "$p" "$m" "$n" "$v" \
            >> "$dir/medians.tsv"
        line+=" $(fmt "$v" "$m") |"
        [[ $n == redis ]] || line+=" $(ratio "$v" "$base") |"
    done
    echo "$line"
done

# ---- agreement and avalanche timelines -----------------------------------
echo
echo "loadgen vs redis-benchmark: the same GETs on Redis direct, back to back (medians of $rounds_done)."
echo "client cpu = the tool's share of one core during its run; at 0.95 and more it measures itself."
echo
echo "| conns | pipeline | loadgen req/s | client cpu | redis-benchmark req/s | client cpu | loadgen/redis-benchmark per round | median | verdict |"
echo "| ---: | ---: | ---: | ---: | ---: | ---: | --- | ---: | --- |"
for cp in $AG_CASES; do
    c=${cp%:*} p=${cp#*:}
    a=$(echo "${res["agree|$c|$p|lg"]-}" | median)
    b=$(echo "${res["agree|$c|$p|rb"]-}" | median)
    r=$(echo "${res["agree|$c|$p|ratio"]-}" | median)
    ac=$(echo "${res["agree|$c|$p|lgcpu"]-}" | median)
    bc=$(echo "${res["agree|$c|$p|rbcpu"]-}" | median)
    [[ -n $a && -n $b ]] || continue
    verdict=$(awk -v r="$r" -v a="${ac:-0}" -v b="${bc:-0}" 'BEGIN {
        if (r >= 0.9 && r <= 1.1) print "within 10%";
        else if (a >= 0.95 && b >= 0.95) print "both clients CPU-bound: they differ by their own cost";
        else print "DISAGREE" }')
    printf '| %s | %s | %.0f | %s | %.0f | %s | %s| %.3f | %s |\n' "$c" "$p" "$a" "${ac:-?}" \
        "$b" "${bc:-?}" "${res["agree|$c|$p|ratio"]}" "$r" "$verdict"
done
echo
echo "avalanche, last round: database loads per second (keys expire at about ${AV_TTL} s):"
for k in "jitter 0|redis" "jitter 0|bulwark" "jitter 10%|bulwark"; do
    echo "  ${k#*|} ${k%|*}: ${timeline[$k]-}"
done
} | tee "$dir/table.md"

# ---- the raw data, for bench/charts.sh -------------------------------------
mkdir -p "$OUT"
{
    echo "date: $date_start"
    echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo)"
    echo "redis: $(redis-server --version | sed -n 's/.*v=\([^ ]*\).*/\1/p')"
    echo "targets: ${names[*]}"
    echo "rounds: $rounds_done of $ROUNDS"
    echo "seconds: $(( $(date +%s) - started ))"
    echo "load average at the start (1, 5, 15 min): $load_start"
    echo "load average at the end (1, 5, 15 min): $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "load average (1 min) at each stage of each round: ${loads% }"
    echo "sizes: RB_N1=$RB_N1 RB_N16=$RB_N16 RB_CLIENTS=\"$RB_CLIENTS\" RB_PIPES=\"$RB_PIPES\" RB_TESTS=$RB_TESTS LG_SECS=$LG_SECS KEYS=$KEYS VALUE=$VALUE AV_KEYS=$AV_KEYS AV_TTL=$AV_TTL AV_SECS=$AV_SECS AV_DB_MS=$AV_DB_MS AG_N1=$AG_N1 AG_N16=$AG_N16 AG_CASES=\"$AG_CASES\""
} > "$dir/meta.txt"
for f in table.md medians.tsv raw.tsv avalanche.tsv meta.txt; do cp "$dir/$f" "$OUT/$f"; done
echo
echo "bench: done in $(( $(date +%s) - started )) s; data in $OUT/" >&2
