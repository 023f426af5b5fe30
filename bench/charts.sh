#!/usr/bin/env bash
# bench/charts.sh: draws the PNG charts of bench/ from the data the benchmarks
# saved, without running anything again (gnuplot, Debian's gnuplot-nox):
#   bench/avalanche.png   DB loads per second across a mass expiry, TTL jitter
#                         0 vs 10% (bench/run.sh: results/avalanche.tsv, last
#                         round, and meta.txt for the scenario's sizes)
#   bench/leases.png      refills per hot-key expiry with and without leases
#                         (bench/leases.py: results/leases.tsv)
#   bench/throughput.png  Redis CPU per client GET (bench/cpu.sh:
#                         results/cpu.md) and throughput ratios to Redis
#                         direct (bench/run.sh: results/medians.tsv)
# A chart whose data file is missing is skipped (and said so).
# Usage: bench/charts.sh [results dir (bench/results)] [output dir (bench)]
set -euo pipefail
cd "$(dirname "$0")/.."
IN=${1:-bench/results}
OUT=${2:-bench}
command -v gnuplot >/dev/null || { echo "charts.sh: gnuplot is needed (make deps)" >&2; exit 1; }
tmp=$(mktemp -d /tmp/bulwark-charts.XXXXXX)
trap 'rm -rf "$tmp"' EXIT

TERM_PNG="set terminal pngcairo size 1000,600 font 'DejaVu Sans,11' noenhanced"
meta() { sed -n "s/^$1: //p" "$IN/meta.txt" 2>/dev/null; }
size() { meta sizes | tr ' ' '\n' | sed -n "s/^$1=//p"; }
drawn=()

# ---- 1. avalanche ----------------------------------------------------------
if [[ -s $IN/avalanche.tsv ]]; then
    # the last round's three timelines side by side: second, redis, bulwark
    # jitter 0, bulwark jitter 10%
    awk -F'\t' 'NR > 1 { last = $1; v[$1 "|" $2 "|" $3 "|" $4] = $5; if ($4 > n[$1]) n[$1] = $4 }
        END { for (s = 0; s <= n[last]; s++)
                  printf "%d\t%s\t%s\t%s\n", s, v[last "|jitter 0|redis|" s],
                         v[last "|jitter 0|bulwark|" s], v[last "|jitter 10%|bulwark|" s] }' \
        "$IN/avalanche.tsv" > "$tmp/av.dat"
    keys=$(size AV_KEYS); ttl=$(size AV_TTL); dbms=$(size AV_DB_MS)
    peak() { awk -F'\t' -v c="$1" '$c > m {m = $c} END {print m + 0}' "$tmp/av.dat"; }
    sum() { awk -F'\t' -v c="$1" '{s += $c} END {print s + 0}' "$tmp/av.dat"; }
    # the seconds before the expiry are all 0: start 5 s before it
    x0=$(( ${ttl:-20} > 5 ? ${ttl:-20} - 5 : 0 ))
    gnuplot <<GP
$TERM_PNG
set output '$OUT/avalanche.png'
set title "Cache avalanche: ${keys:-5000} keys written with the same EX ${ttl:-20}, read cache-aside by 50 connections\n(a miss = ${dbms:-5} ms database load + SET EX ${ttl:-20}); last of $(meta rounds | cut -d' ' -f1) round(s), $(meta date), $(meta machine | cut -d, -f1-2), load $(meta 'load average at the start (1, 5, 15 min)' | cut -d' ' -f1)"
set xlabel 'time since the reads began, right after the keys were written (s; loads counted per whole second)'
set ylabel 'database loads per second (1/s)'
set key top right box opaque
set grid ytics
set xrange [$x0:$(wc -l < "$tmp/av.dat")]
set yrange [0:*]
set offsets 0, 0, graph 0.15, 0
set arrow from ${ttl:-20}, graph 0 to ${ttl:-20}, graph 1 nohead dt 2 lc rgb '#888888'
set label 'the keys expire: EX ${ttl:-20} s (+ up to 10% jitter)' at ${ttl:-20}, graph 0.7 right offset -0.5,0 tc rgb '#666666'
set datafile separator tab
# each count is of one second [s, s + 1): drawn as a step over that second
plot '$tmp/av.dat' using (\$1 + 0.5):2 with histeps title "Redis direct: peak $(peak 2)/s, $(sum 2) loads" lw 2.5 lc rgb '#c0392b', \
     '' using (\$1 + 0.5):3 with histeps title "bulwark, ttl-jitter-percent 0: peak $(peak 3)/s, $(sum 3) loads" lw 2 dt 2 lc rgb '#e67e22', \
     '' using (\$1 + 0.5):4 with histeps title "bulwark, ttl-jitter-percent 10 (default): peak $(peak 4)/s, $(sum 4) loads" lw 2.5 lc rgb '#2471a3'
GP
    drawn+=("$OUT/avalanche.png")
else
    echo "charts.sh: no $IN/avalanche.tsv (bench/run.sh writes it); avalanche.png skipped" >&2
fi

# ---- 2. leases ---------------------------------------------------------------
if [[ -s $IN/leases.tsv ]]; then
    # one row per expiry: expiry, refills with leases, refills without
    awk -F'\t' '/^#/ || $1 == "lease_ms" { next }
        { v[$1 "|" $2] = $3; if ($2 > n) n = $2 }
        END { for (e = 1; e <= n; e++) printf "%d\t%s\t%s\n", e,
                  v["200|" e], v["0|" e] }' "$IN/leases.tsv" > "$tmp/leases.dat"
    head=$(sed -n '1s/^# bench\/leases.py: //p' "$IN/leases.tsv")
    gnuplot <<GP
$TERM_PNG
set output '$OUT/leases.png'
set title "Hot-key stampede: refills per expiry of one hot key read through bulwark by cache-aside clients\n${head%%; load*}\nload${head#*; load}"
set xlabel 'expiry of the key (n-th)'
set ylabel 'refills per expiry (database load + SET; at most one per client)'
set key top left box opaque
set grid ytics
set yrange [0:*]
set offsets 0, 0, graph 0.1, 0
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set boxwidth 0.9
set datafile separator tab
set datafile missing ''
plot '$tmp/leases.dat' using 2:xtic(1) title 'hotkey-lease 200 ms (default)' lc rgb '#2471a3', \
     '' using 3 title 'hotkey-lease 0 (leases off)' lc rgb '#c0392b', \
     '' using (\$0 - 0.15):2:2 with labels offset 0,0.7 notitle, \
     '' using (\$0 + 0.15):3:3 with labels offset 0,0.7 notitle
GP
    drawn+=("$OUT/leases.png")
else
    echo "charts.sh: no $IN/leases.tsv (bench/leases.py writes it); leases.png skipped" >&2
fi

# ---- 3. Redis CPU per GET and throughput ratios -----------------------------
if [[ -s $IN/cpu.md && -s $IN/medians.tsv ]]; then
    # Redis CPU µs per client GET: pipeline, then one column per target
    awk -F'|' '$2 ~ /^ *[0-9]+ *$/ { gsub(/ /, ""); p = $2; t = $3; v[p "|" t] = $5
            if (!(p in seen)) { seen[p]; ps[++np] = p } }
        END { for (i = 1; i <= np; i++) { p = ps[i]
                  printf "%s\t%s\t%s\t%s\t%s\n", "-P " p, v[p "|redis"], v[p "|bulwark-mget"],
                         v[p "|bulwark-pipeline"], v[p "|twemproxy"] } }' \
        "$IN/cpu.md" > "$tmp/cpu.dat"
    # req/s ratios to Redis direct, one row per workload
    awk -F'\t' 'NR > 1 && $4 == "req/s" { k = $1 "|" $2 "|" $3; v[k "|" $5] = $6
            if (!(k in seen)) { seen[k]; ks[++n] = k } }
        END { for (i = 1; i <= n; i++) { k = ks[i]; split(k, f, "|"); b = v[k "|redis"]
                  if (b <= 0) continue
                  lab = f[1]; sub(/^redis-benchmark /, "rb ", lab); sub(/^loadgen /, "lg ", lab)
                  bw = (k "|bulwark") in v ? sprintf("%.2f", v[k "|bulwark"] / b) : ""
                  tw = (k "|twemproxy") in v ? sprintf("%.2f", v[k "|twemproxy"] / b) : ""
                  printf "%s c%s P%s\t%s\t%s\n", lab, f[2], f[3], bw, tw } }' \
        "$IN/medians.tsv" > "$tmp/ratio.dat"
    cpuhead=$(sed -n '1s/^<!-- \(.*\) -->$/\1/p' "$IN/cpu.md")
    gnuplot <<GP
set terminal pngcairo size 1200,1000 font 'DejaVu Sans,11' noenhanced
set output '$OUT/throughput.png'
set multiplot layout 2,1 title "Redis / bulwark / twemproxy (nutcracker) on one redis-server, $(meta date), $(meta machine | cut -d, -f1-2)"
set datafile separator tab
set datafile missing ''
set style data histograms
set style histogram clustered gap 1
set style fill solid 0.85 border -1
set grid ytics
set key top right box opaque
set yrange [0:*]
set offsets 0, 0, graph 0.12, 0
set title "Redis's own CPU per client GET (bench/cpu.sh: redis-benchmark -t get -c 200, 100k keys all present)\n$cpuhead"
set ylabel 'Redis CPU per client GET (µs; lower = less work for Redis)'
set xlabel 'redis-benchmark pipeline depth'
plot '$tmp/cpu.dat' using 2:xtic(1) title 'Redis direct' lc rgb '#c0392b', \
     '' using 3 title 'bulwark batch-mode mget (default)' lc rgb '#2471a3', \
     '' using 4 title 'bulwark batch-mode pipeline' lc rgb '#7fb3d5', \
     '' using 5 title 'twemproxy' lc rgb '#7d7d7d', \
     '' using (\$0 - 0.3):2:2 with labels offset 0,0.7 notitle, \
     '' using (\$0 - 0.1):3:3 with labels offset 0,0.7 notitle, \
     '' using (\$0 + 0.1):4:4 with labels offset 0,0.7 notitle, \
     '' using (\$0 + 0.3):5:5 with labels offset 0,0.7 notitle
set title "Throughput relative to Redis direct (bench/run.sh, medians of $(meta rounds | cut -d' ' -f1) rounds, 1-min load $(meta 'load average (1 min) at each stage of each round' | tr ' ' '\n' | sort -g | sed -n '1p;$p' | paste -sd- -))\nrb = redis-benchmark, lg = bench/loadgen; cN = connections, PN = pipeline depth; above 1 = faster than Redis direct"
set ylabel 'req/s ÷ Redis direct req/s'
set xlabel 'workload'
set xtics rotate by -40 left
set rmargin 9
set yrange [0:*]
set arrow from graph 0, first 1 to graph 1, first 1 nohead dt 2 lc rgb '#c0392b' lw 1.5
plot '$tmp/ratio.dat' using 2:xtic(1) title 'bulwark / Redis' lc rgb '#2471a3', \
     '' using 3 title 'twemproxy / Redis' lc rgb '#7d7d7d'
unset multiplot
GP
    drawn+=("$OUT/throughput.png")
else
    echo "charts.sh: no $IN/cpu.md or $IN/medians.tsv (bench/cpu.sh, bench/run.sh); throughput.png skipped" >&2
fi

echo "charts.sh: ${drawn[*]:-nothing drawn}" >&2
