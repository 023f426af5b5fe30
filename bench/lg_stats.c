/*
 * loadgen's numbers: the log-linear latency histogram, the sum of the
 * workers' counts, and the report (summary lines, timeline, RESULT line).
 */
#include "bench/loadgen.h"

#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- histogram ---------------------------------------------------------- */

/* Bucket of v: exact below 2 * LG_SUB, then LG_SUB per power of two. */
static unsigned
hist_index(uint64_t v)
{
    if (v < 2 * LG_SUB) {
        return (unsigned)v;
    }
    unsigned msb = 63u - (unsigned)__builtin_clzll(v);
    unsigned shift = msb - LG_SUB_BITS;
    return 2 * LG_SUB + (shift - 1) * LG_SUB + (unsigned)((v >> shift) - LG_SUB);
}

/* Middle of bucket i: the value reported for every value counted in it. */
static uint64_t
hist_value(unsigned i)
{
    if (i < 2 * LG_SUB) {
        return i;
    }
    unsigned shift = (i - 2 * LG_SUB) / LG_SUB + 1;
    uint64_t low = (uint64_t)(LG_SUB + (i - 2 * LG_SUB) % LG_SUB) << shift;
    return low + ((UINT64_C(1) << shift) >> 1);
}

void
lg_hist_add(struct lg_hist *h, uint64_t v_ns)
{
    h->counts[hist_index(v_ns)]++;
    h->total++;
    if (v_ns > h->max) {
        h->max = v_ns;
    }
}

uint64_t
lg_hist_quantile(const struct lg_hist *h, double q)
{
    uint64_t rank = (uint64_t)ceil(q * (double)h->total), seen = 0;

    if (h->total == 0) {
        return 0;
    }
    if (rank < 1) {
        rank = 1;
    }
    for (unsigned i = 0; i < LG_HIST_BUCKETS; i++) {
        seen += h->counts[i];
        if (seen >= rank) {
            uint64_t v = hist_value(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}

/* ---- sums --------------------------------------------------------------- */

/* Add worker w's counters, histogram and timeline into sum. */
static void
merge_one(struct lg *sum, const struct lg *w)
{
    sum->done += w->done;
    sum->done_window += w->done_window;
    sum->gets += w->gets;
    sum->sets += w->sets;
    sum->nils += w->nils;
    sum->errors += w->errors;
    sum->db_loads += w->db_loads;
    for (unsigned b = 0; b < LG_HIST_BUCKETS; b++) {
        sum->hist.counts[b] += w->hist.counts[b];
    }
    sum->hist.total += w->hist.total;
    if (w->hist.max > sum->hist.max) {
        sum->hist.max = w->hist.max;
    }
    for (unsigned k = 0; k < LG_TICKS_MAX; k++) {
        sum->ticks[k].done += w->ticks[k].done;
        sum->ticks[k].nil += w->ticks[k].nil;
        sum->ticks[k].db_loads += w->ticks[k].db_loads;
    }
}

void
lg_merge(struct lg *sum, const struct lg *w, unsigned n)
{
    sum->start_ns = w[0].start_ns;
    for (unsigned i = 0; i < n; i++) {
        if (w[i].start_ns < sum->start_ns) {
            sum->start_ns = w[i].start_ns;
        }
        if (w[i].end_ns > sum->end_ns) {
            sum->end_ns = w[i].end_ns;
        }
        merge_one(sum, &w[i]);
    }
}

int64_t
lg_calls_sum(const char *info)
{
    int64_t sum = 0;

    for (const char *p = strstr(info, "calls="); p; p = strstr(p + 6, "calls=")) {
        if (p > info && p[-1] == ':') { /* not rejected_ / failed_calls= */
            sum += strtoll(p + 6, NULL, 10);
        }
    }
    return sum;
}

/* ---- report ------------------------------------------------------------- */

unsigned
lg_report_ticks(const struct lg *lg)
{
    uint64_t run_ns = lg->end_ns > lg->start_ns ? lg->end_ns - lg->start_ns : 0;
    uint64_t n = run_ns / LG_TICK_NS + 1;

    if (lg->o.duration_s > 0) {
        n = (uint64_t)ceil(lg->o.duration_s * 10.0);
    }
    return n < LG_TICKS_MAX ? (unsigned)n : LG_TICKS_MAX;
}

uint64_t
lg_peak_db_loads(const struct lg *lg, unsigned nticks)
{
    uint64_t best = 0, sum = 0;

    for (unsigned i = 0; i < nticks; i++) {
        sum += lg->ticks[i].db_loads;
        if (i >= 10) {
            sum -= lg->ticks[i - 10].db_loads;
        }
        if (sum > best) {
            best = sum;
        }
    }
    return best;
}

/* Sum of second sec's ticks (of nticks) into *t. */
static void
tick_second(const struct lg *lg, unsigned sec, unsigned nticks, struct lg_tick *t)
{
    *t = (struct lg_tick){0};
    for (unsigned j = sec * 10; j < sec * 10 + 10 && j < nticks; j++) {
        t->done += lg->ticks[j].done;
        t->nil += lg->ticks[j].nil;
        t->db_loads += lg->ticks[j].db_loads;
    }
}

/* Per-second rows (--timeline) and the TIMELINE line for scripts, to f. */
static void
report_timeline(FILE *f, const struct lg *lg, unsigned nticks)
{
    struct lg_tick t;

    if (lg->o.timeline) {
        fprintf(f, "timeline: second, commands/s, nil/s, database loads/s\n");
        for (unsigned sec = 0; sec * 10 < nticks; sec++) {
            tick_second(lg, sec, nticks, &t);
            fprintf(f, "  %3u  %9" PRIu64 "  %8" PRIu64 "  %8" PRIu64 "\n", sec, t.done, t.nil,
                    t.db_loads);
        }
    }
    fprintf(f, "TIMELINE db_loads_per_s=");
    for (unsigned sec = 0; sec * 10 < nticks; sec++) {
        tick_second(lg, sec, nticks, &t);
        fprintf(f, "%s%" PRIu64, sec ? "," : "", t.db_loads);
    }
    fprintf(f, "\n");
}

/* The client cpu line: the process's share of one core, the busiest
 * thread's, and a warning when loadgen itself may be the bottleneck. */
static void
report_cpu(FILE *f, const struct lg *lg, double cpu, double cpu_max)
{
    /* Near 1.0 in one thread, the rate is bounded by loadgen's own CPU. */
    fprintf(f, "client cpu: %.0f%% of one core", cpu * 100.0);
    if (lg->o.threads > 1) {
        fprintf(f, " over %u threads, the busiest %.0f%%", lg->o.threads, cpu_max * 100.0);
    }
    fprintf(f, "%s\n",
            cpu_max >= LG_CPU_BOUND
                ? " (loadgen itself may be what limits the rate: try --threads)"
                : "");
}

void
lg_report(FILE *f, const struct lg *lg, int64_t upstream_before, int64_t upstream_after,
          double cpu, double cpu_max)
{
    /* nothing answered (end_ns 0): 0 s and 0 req/s, not a wrapped difference */
    double secs = lg->o.requests ? (lg->end_ns > lg->start_ns
                                        ? (double)(lg->end_ns - lg->start_ns) / LG_NS_PER_S
                                        : 0.0)
                                 : lg->o.duration_s;
    double rps = secs > 0 ? (double)lg->done_window / secs : 0.0;
    double p50 = (double)lg_hist_quantile(&lg->hist, 0.50) / 1e3;
    double p99 = (double)lg_hist_quantile(&lg->hist, 0.99) / 1e3;
    double p999 = (double)lg_hist_quantile(&lg->hist, 0.999) / 1e3;
    unsigned nticks = lg_report_ticks(lg);
    uint64_t peak = lg_peak_db_loads(lg, nticks);
    char per_req[32] = "-";
    int64_t up = -1;

    if (upstream_before >= 0 && upstream_after >= 0) {
        up = upstream_after - upstream_before - 1; /* our first INFO */
        if (lg->done > 0) {
            snprintf(per_req, sizeof(per_req), "%.3f", (double)up / (double)lg->done);
        }
    }
    fprintf(f,
            "run: %.2f s, %" PRIu64 " commands (GET %" PRIu64 ", SET %" PRIu64 "), nil %" PRIu64
            ", errors %" PRIu64 "\n",
            secs, lg->done, lg->gets, lg->sets, lg->nils, lg->errors);
    fprintf(f, "throughput: %.0f commands/s\n", rps);
    fprintf(f, "latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", p50, p99, p999,
            (double)lg->hist.max / 1e3);
    if (up >= 0) {
        fprintf(f, "upstream: %lld commands at %s:%d, %s per client command\n", (long long)up,
                lg->o.redis_host, lg->o.redis_port, per_req);
    }
    fprintf(f, "database: %" PRIu64 " loads, %.0f/s, peak %" PRIu64 "/s (any 1 s window)\n",
            lg->db_loads, secs > 0 ? (double)lg->db_loads / secs : 0.0, peak);
    report_cpu(f, lg, cpu, cpu_max);
    report_timeline(f, lg, nticks);
    fprintf(f,
            "RESULT rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f "
            "upstream_per_req=%s db_loads=%" PRIu64 " peak_db_loads_per_s=%" PRIu64
            " nil=%" PRIu64 " errors=%" PRIu64 " client_cpu=%.2f client_cpu_max_thread=%.2f\n",
            rps, p50, p99, p999, per_req, lg->db_loads, peak, lg->nils, lg->errors, cpu, cpu_max);
}
