#!/usr/bin/env bash
# bench/syscalls.sh: system calls per client request batch, Redis direct and
# bulwark (client and upstream sides together), counted by `strace -c -f -p`
# on each server while redis-benchmark runs the same load (issue #13), in one
# run; prints one markdown table. Starts its own redis-server and bulwark on
# free loopback ports (below the ephemeral range) and stops them by pid.
#
# Usage: bench/syscalls.sh
# Environment: N=200000 requests per test, C=50 connections, P=16 pipeline,
#   KEYS=100000 (prefilled, redis-benchmark's key:%012d names), TESTS="get set",
#   BULWARK_BIN=./bulwark, BULWARK_ARGS="" (extra bulwark arguments)
# A client request batch is P requests of one connection: N / P batches.
set -euo pipefail
cd "$(dirname "$0")/.."
N=${N:-200000}
C=${C:-50}
P=${P:-16}
KEYS=${KEYS:-100000}
TESTS=${TESTS:-get set}
BIN=${BULWARK_BIN:-./bulwark}
read -r -a EXTRA <<< "${BULWARK_ARGS:-}"

for t in strace redis-server redis-benchmark redis-cli; do
    command -v "$t" >/dev/null || { echo "syscalls.sh: $t is needed" >&2; exit 1; }
done
[[ -x $BIN ]] || { echo "syscalls.sh: $BIN not built (make)" >&2; exit 1; }

. bench/lib.sh
bench_init syscalls
bench_servers "$BIN" "$KEYS" "${EXTRA[@]}"

# strace -c of pid during one redis-benchmark run: "calls per syscall" lines.
count() { # pid port test
    local out=$dir/strace.$1.$3 spid _
    strace -c -f -q -p "$1" -o "$out" & spid=$!
    for _ in $(seq 100); do # attached when the target shows a tracer
        [[ $(awk '/^TracerPid:/ {print $2}' "/proc/$1/status") != 0 ]] && break
        sleep 0.02
    done
    redis-benchmark -p "$2" -t "$3" -r "$KEYS" -n "$N" -c "$C" -P "$P" -q >/dev/null 2>&1
    kill -INT "$spid"
    wait "$spid" 2>/dev/null || true
    awk '$1 ~ /^[0-9.]+$/ && NF >= 5 && $NF != "total" { print $NF, $4 }' "$out"
}

echo "| test | server | read | write | epoll_ctl | ioctl | epoll_wait | timerfd_settime | other | total | per batch |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
for t in $TESTS; do
    for target in "redis-server $rpid $rport" "bulwark $bpid $bport"; do
        read -r name pid port <<< "$target"
        count "$pid" "$port" "$t" | awk -v t="${t^^}" -v name="$name" -v batches=$((N / P)) '
            { n[$1] += $2; total += $2 }
            END {
                rd = n["read"] + n["readv"] + n["recvfrom"] + n["recvmsg"]
                wr = n["write"] + n["writev"] + n["sendto"] + n["sendmsg"]
                ew = n["epoll_wait"] + n["epoll_pwait"]
                other = total - rd - wr - n["epoll_ctl"] - n["ioctl"] - ew - n["timerfd_settime"]
                printf "| %s | %s | %d | %d | %d | %d | %d | %d | %d | %d | %.2f |\n", t, name,
                       rd, wr, n["epoll_ctl"], n["ioctl"], ew, n["timerfd_settime"], other,
                       total, total / batches
            }'
    done
done
echo
echo "redis-benchmark -t <test> -r $KEYS -n $N -c $C -P $P ($((N / P)) client batches); strace -c -f -p on each server; $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg)"
