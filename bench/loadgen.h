/*
 * bench/loadgen: what its files share — the run's options, its counts,
 * latency histogram and timeline, and the functions of lg_stats.c (histogram,
 * merge, report) and lg_opts.c (command line). Neither includes libevent nor
 * hiredis, so both are unit-tested alone (tests/unit/test_loadgen.c).
 */
#ifndef BENCH_LOADGEN_H
#define BENCH_LOADGEN_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

/* Log-linear histogram: 2^LG_SUB_BITS sub-buckets per power of two, so a
 * recorded value is known within 1/128 (under 0.8%), as in HdrHistogram. */
#define LG_SUB_BITS 7
#define LG_SUB (1u << LG_SUB_BITS)
#define LG_HIST_BUCKETS (2 * LG_SUB + (64 - LG_SUB_BITS - 1) * LG_SUB)

/* Timeline resolution, ns (100 ms), and the most buckets kept (1 hour). */
#define LG_TICK_NS UINT64_C(100000000)
#define LG_TICKS_MAX 36000u

/* Longest key prefix, bytes. */
#define LG_PREFIX_MAX 64u

#define LG_NS_PER_S 1000000000.0
/* Client CPU share (of one core) from which loadgen warns that it may be the
 * bottleneck: a closed-loop client at 95%+ cannot send faster. */
#define LG_CPU_BOUND 0.95

/* Most threads (--threads). */
#define LG_THREADS_MAX 64u

/* What the run does with a request. */
enum lg_mode {
    LG_PLAIN,       /* GET or SET per the write ratio, no database */
    LG_CACHE_ASIDE, /* GET; on nil a database load, then SET EX ttl */
    LG_AVALANCHE,   /* cache-aside after writing all keys with one EX */
};

/* How keys are drawn from [0, keys). */
enum lg_dist {
    LG_UNIFORM,    /* every key equally likely */
    LG_ZIPF,       /* rank r with probability ~ 1 / (r + 1)^s */
    LG_SEQUENTIAL, /* 0, 1, 2, ... wrapping, shared by all connections */
};

/* Phases of the whole run, in order. */
enum lg_phase {
    LG_CONNECTING, /* waiting for every connection */
    LG_PREFILLING, /* writing the key space */
    LG_RUNNING,    /* measured: sending requests */
    LG_DRAINING,   /* duration over: waiting for replies, sending nothing */
    LG_DONE,       /* loop left; replies (NULL on free) are ignored */
};

/* Options, from the command line; read only after parsing. */
struct lg_opts {
    const char *host;       /* borrowed from argv: target host (bulwark, Redis
                               or twemproxy) */
    int port;               /* target TCP port */
    const char *redis_host; /* owned, lives until exit: Redis whose INFO
                               commandstats is diffed, or NULL */
    int redis_port;         /* its port */
    unsigned conns;         /* connections, 1..10000 (of this thread, in a worker) */
    unsigned threads;       /* event-loop threads, 1..LG_THREADS_MAX, <= conns */
    unsigned pipeline;      /* commands per batch per connection, 1..1024 */
    double duration_s;      /* run length, s; 0 = run until requests */
    uint64_t requests;      /* commands to send (of this thread, in a worker);
                          0 = until duration_s */
    uint32_t keys;          /* key space [0, keys) */
    enum lg_dist dist;      /* key distribution */
    double zipf_s;          /* zipf exponent, > 0 */
    double absent;          /* fraction of GETs for keys that never exist */
    size_t value_size;      /* SET value, bytes */
    double write_ratio;     /* fraction of requests that are SETs */
    unsigned ttl_s;         /* EX on writes and cache fills; 0 = none */
    enum lg_mode mode;      /* what a request does */
    unsigned db_latency_ms; /* simulated database load, ms */
    bool prefill;           /* SET every key before the run */
    bool window;            /* refill each slot as its reply comes (keep P in
                               flight) instead of redis-benchmark's batches:
                               send P, wait for all P, send the next P */
    bool timeline;          /* print per-second rows after the summary */
    const char *prefix;     /* borrowed from argv or static: key prefix; keys are
                           prefix + 12 digits */
    uint64_t seed;          /* RNG seed; 0 = from the clock */
};

/* Latency histogram, ns. */
struct lg_hist {
    uint64_t counts[LG_HIST_BUCKETS]; /* values per log-linear bucket */
    uint64_t total;                   /* values recorded */
    uint64_t max;                     /* largest value recorded, ns */
};

/* Counts per LG_TICK_NS of the run. */
struct lg_tick {
    uint64_t done;     /* commands completed */
    uint64_t nil;      /* GETs answered nil */
    uint64_t db_loads; /* database loads started */
};

struct event;
struct event_base;
struct lg_conn;
struct lg_shared;

/* The whole run: one per worker thread, and one that main() sums them into. */
struct lg {
    struct lg_opts o;         /* options (conns, requests: this thread's share) */
    struct lg_shared *sh;     /* borrowed: what the run's threads share */
    pthread_t tid;            /* the worker thread */
    unsigned id;              /* worker index, 0..threads-1 */
    struct event_base *base;  /* owned: the event loop */
    struct lg_conn *conns;    /* owned: o.conns connections */
    enum lg_phase phase;      /* where the run stands */
    bool failed;              /* a connection failed: exit 1 */
    bool lost;                /* a connection was lost during the run: report, exit 1 */
    unsigned up;              /* connections established */
    uint64_t busy;            /* slots not LG_IDLE */
    uint32_t prefill_next;    /* next key to prefill */
    uint32_t prefill_end;     /* end of this thread's prefill range */
    uint32_t prefill_count;   /* keys in that range */
    uint32_t prefill_done;    /* prefill SETs answered */
    double prefill_ms;        /* prefill time, ms (0 until done) */
    uint64_t prefill_ns;      /* prefill start, monotonic ns */
    uint64_t start_ns;        /* run start, monotonic ns */
    uint64_t start_tcpu_ns;   /* this thread's CPU time at the run start, ns */
    double cpu_share;         /* this thread's CPU / wall over its run */
    uint64_t deadline_ns;     /* run end (duration mode), monotonic ns */
    uint64_t end_ns;          /* when the last counted reply came */
    uint64_t issued;          /* run commands sent */
    uint64_t done;            /* run commands answered */
    uint64_t done_window;     /* of which before the deadline */
    uint64_t gets, sets;      /* answered GETs, SETs (mix and fills) */
    uint64_t nils;            /* GETs answered nil */
    uint64_t errors;          /* error replies and lost requests */
    uint64_t db_loads;        /* simulated database loads */
    uint64_t seq;             /* next key of the sequential distribution */
    uint64_t rng;             /* splitmix64 state */
    const double *zipf_cdf;   /* borrowed from sh: zipf cumulative
                                 probabilities */
    struct lg_hist hist;      /* latency of run commands */
    struct lg_tick *ticks;    /* owned: LG_TICKS_MAX ticks */
    struct lg_tick sink;      /* counts beyond the timeline */
    char *cmd;                /* owned: scratch for one encoded command */
    char *value;              /* owned: o.value_size bytes of 'x' */
    struct event *stop_timer; /* owned: deadline, then drain limit */
    struct event *conn_timer; /* owned: connect limit */
};

/* ---- lg_stats.c ---------------------------------------------------------- */

/*
 * Count one latency v_ns (any uint64_t) in h. O(1), no allocation.
 */
void lg_hist_add(struct lg_hist *h, uint64_t v_ns);

/*
 * The q quantile of h, ns: the smallest bucket middle with at least
 * ceil(q * total) values at or below it (at least 1), never above h->max, so
 * within 1/128 of a recorded value. q in (0, 1]. Returns 0 when h is empty.
 */
uint64_t lg_hist_quantile(const struct lg_hist *h, double q);

/*
 * Ticks (of LG_TICK_NS) the report covers, 1..LG_TICKS_MAX: ceil(duration_s
 * * 10) in duration mode (replies of the drain that follows are not in the
 * timeline), else up to and including the tick of the last counted reply
 * (end_ns - start_ns).
 */
unsigned lg_report_ticks(const struct lg *lg);

/*
 * Largest number of database loads started within any 1 s window of the
 * first nticks ticks (ten consecutive 100 ms ticks), so a burst straddling
 * a second is not halved. nticks <= LG_TICKS_MAX; lg->ticks must be set.
 */
uint64_t lg_peak_db_loads(const struct lg *lg, unsigned nticks);

/*
 * Add the counts, histograms and timelines of the workers w[0..n) (n >= 1,
 * all started: start_ns set) into sum, whose o is the whole run's and whose
 * ticks point at LG_TICKS_MAX ticks, zero or earlier sums (caller owns).
 * sum->start_ns becomes the workers' earliest start, end_ns the latest of
 * sum's and the workers' ends. Tick k of every worker is taken as the same 100
 * ms: the workers start together (a barrier).
 */
void lg_merge(struct lg *sum, const struct lg *w, unsigned n);

/*
 * Print the run's report to f: the run, throughput, latency, upstream (when
 * both counts are >= 0), database, client cpu and TIMELINE lines (per-second
 * rows first with o.timeline), then the RESULT line for scripts. lg holds
 * the sums of the workers (lg_merge()); upstream_before/after are INFO
 * commandstats call sums (lg_calls_sum()) or -1; cpu is the process's CPU
 * over the run's wall time (may exceed 1 with threads), cpu_max the busiest
 * worker's share of one core.
 */
void lg_report(FILE *f, const struct lg *lg, int64_t upstream_before, int64_t upstream_after,
               double cpu, double cpu_max);

/*
 * Sum of the calls= fields of an INFO commandstats reply (NUL-terminated
 * text, borrowed); rejected_calls= and failed_calls= (Redis 6.2+) are not
 * counted. 0 when there are none.
 */
int64_t lg_calls_sum(const char *info);

/* ---- lg_opts.c ----------------------------------------------------------- */

/*
 * Fill o from argv (argc entries; borrowed, must outlive o) with getopt_long,
 * defaults for what is not given (see --help). Exits 0 after printing usage
 * to stdout on --help; exits 2 with a message on stderr on an unknown
 * option, a value out of range or a bad combination (more threads than
 * connections or requests). Exits 1 when out of memory. Resets nothing of
 * getopt's: to parse twice in one process, set optind = 0 first.
 */
void lg_opts_parse(struct lg_opts *o, int argc, char **argv);

/*
 * Print the run's first line ("loadgen: host:port conns ...") to f.
 */
void lg_opts_print(FILE *f, const struct lg_opts *o);

#endif
