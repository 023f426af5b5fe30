/*
 * loadgen: cache-workload load generator for bulwark, Redis and twemproxy
 * (libevent + hiredis async). Plain GET/SET mixes, cache-aside with a
 * simulated database, and the TTL avalanche scenario; prints throughput,
 * latency percentiles, upstream commands per request and database loads.
 *
 * Model: N connections; each sends P commands, waits for all P replies and
 * sends the next P, as redis-benchmark -P does (--window instead refills
 * each of the P places as its reply arrives). One slot per request; in
 * cache-aside mode a slot that reads nil holds a libevent timer for the
 * simulated database load, then SETs the key with EX ttl. The last output
 * line ("RESULT k=v ...") is for scripts (bench/run.sh).
 *
 * --threads T splits the connections (and the request count, and the
 * prefill) over T threads, each with its own event loop, as redis-benchmark
 * --threads does; the threads start the measured run together (a barrier)
 * and their counts and histograms are summed at the end. Use it when the
 * report says loadgen's own CPU limits the rate.
 */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <event2/event.h>
#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

/* Log-linear histogram: 2^LG_SUB_BITS sub-buckets per power of two, so a
 * recorded value is known within 1/128 (under 0.8%), as in HdrHistogram. */
#define LG_SUB_BITS 7
#define LG_SUB (1u << LG_SUB_BITS)
#define LG_HIST_BUCKETS (2 * LG_SUB + (64 - LG_SUB_BITS - 1) * LG_SUB)

/* Timeline resolution, ns (100 ms), and the most buckets kept (1 hour). */
#define LG_TICK_NS UINT64_C(100000000)
#define LG_TICKS_MAX 36000u

/* Depth per connection while prefilling, whatever the run's pipeline. */
#define LG_PREFILL_DEPTH 32u

/* Seconds allowed to connect, and to drain in-flight requests at the end. */
#define LG_CONNECT_S 10
#define LG_DRAIN_S 5

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

/* Options, from the command line; read only after parsing. */
struct lg_opts {
    const char *host;       /* target host (bulwark, Redis or twemproxy) */
    int port;               /* target TCP port */
    const char *redis_host; /* Redis whose INFO commandstats is diffed, or NULL */
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
    const char *prefix;     /* key prefix; keys are prefix + 12 digits */
    uint64_t seed;          /* RNG seed; 0 = from the clock */
};

/* Where a request slot stands. */
enum lg_state {
    LG_IDLE,     /* nothing in flight */
    LG_PREFILL,  /* SET of the prefill phase in flight */
    LG_GET,      /* GET in flight */
    LG_SET,      /* SET (write of the mix) in flight */
    LG_DB_LOAD,  /* simulated database load: db_timer pending */
    LG_FILL_SET, /* cache-aside SET after a database load in flight */
};

/* Phases of the whole run, in order. */
enum lg_phase {
    LG_CONNECTING, /* waiting for every connection */
    LG_PREFILLING, /* writing the key space */
    LG_RUNNING,    /* measured: sending requests */
    LG_DRAINING,   /* duration over: waiting for replies, sending nothing */
    LG_DONE,       /* loop left; replies (NULL on free) are ignored */
};

struct lg;
struct lg_conn;

/* What the threads of one run share; the mutex guards everything but zipf_cdf
 * (read only once the threads run). */
struct lg_shared {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    unsigned threads;        /* workers in the run */
    unsigned arrived;        /* workers waiting at the start barrier */
    bool released;           /* the barrier opened: all workers start */
    bool aborted;            /* a worker failed before the start: all stop */
    int64_t upstream_before; /* commandstats calls at the start, or -1 */
    uint64_t start_cpu_ns;   /* process CPU time at the start, ns */
    uint64_t start_ns;       /* monotonic ns at the start */
    double *zipf_cdf;        /* owned: o.keys cumulative probabilities, or NULL */
};

/* One request in flight on a connection. */
struct lg_slot {
    struct lg_conn *conn;   /* borrowed: the connection owning the slot */
    struct event *db_timer; /* owned: the simulated database load */
    uint64_t sent_ns;       /* monotonic ns when the command was queued */
    uint32_t key;           /* key index of the request */
    enum lg_state state;    /* what is in flight */
    bool absent;            /* key is one that exists nowhere */
};

/* One connection to the target. */
struct lg_conn {
    struct lg *lg;          /* borrowed: the run */
    redisAsyncContext *ac;  /* hiredis owns it once connected; NULL when gone */
    struct lg_slot *slots;  /* owned: nslots slots */
    unsigned nslots;        /* max(pipeline, LG_PREFILL_DEPTH) */
    unsigned active;        /* slots not LG_IDLE */
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

/* The whole run. */
struct lg {
    struct lg_opts o;          /* options (conns, requests: this thread's share) */
    struct lg_shared *sh;      /* borrowed: what the run's threads share */
    pthread_t tid;             /* the worker thread */
    unsigned id;               /* worker index, 0..threads-1 */
    struct event_base *base;   /* owned: the event loop */
    struct lg_conn *conns;     /* owned: o.conns connections */
    enum lg_phase phase;       /* where the run stands */
    bool failed;               /* a connection failed: exit 1 */
    unsigned up;               /* connections established */
    uint64_t busy;             /* slots not LG_IDLE */
    uint32_t prefill_next;     /* next key to prefill */
    uint32_t prefill_end;      /* end of this thread's prefill range */
    uint32_t prefill_todo;     /* keys in that range */
    uint32_t prefill_done;     /* prefill SETs answered */
    double prefill_ms;         /* prefill time, ms (0 until done) */
    uint64_t prefill_ns;       /* prefill start, monotonic ns */
    uint64_t start_ns;         /* run start, monotonic ns */
    uint64_t start_tcpu_ns;    /* this thread's CPU time at the run start, ns */
    double cpu_share;          /* this thread's CPU / wall over its run */
    uint64_t deadline_ns;      /* run end (duration mode), monotonic ns */
    uint64_t end_ns;           /* when the last counted reply came */
    uint64_t issued;           /* run commands sent */
    uint64_t done;             /* run commands answered */
    uint64_t done_window;      /* of which before the deadline */
    uint64_t gets, sets;       /* answered GETs, SETs (mix and fills) */
    uint64_t nils;             /* GETs answered nil */
    uint64_t errors;           /* error replies and lost requests */
    uint64_t db_loads;         /* simulated database loads */
    uint64_t seq;              /* next key of the sequential distribution */
    uint64_t rng;              /* splitmix64 state */
    const double *zipf_cdf;    /* borrowed from sh: zipf cumulative probabilities */
    struct lg_hist hist;       /* latency of run commands */
    struct lg_tick *ticks;     /* owned: LG_TICKS_MAX ticks */
    struct lg_tick sink;       /* counts beyond the timeline */
    char *cmd;                 /* owned: scratch for one encoded command */
    char *value;               /* owned: o.value_size bytes of 'x' */
    struct event *stop_timer;  /* owned: deadline, then drain limit */
    struct event *conn_timer;  /* owned: connect limit */
};

static void lg_start_run(struct lg *lg);

/* ---- small helpers ---------------------------------------------------- */

static uint64_t
now_ns(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

/* CPU time (user + system) used by this process (clock
 * CLOCK_PROCESS_CPUTIME_ID) or by the calling thread (CLOCK_THREAD_CPUTIME_ID),
 * ns. */
static uint64_t
cpu_ns(clockid_t clock)
{
    struct timespec ts;

    clock_gettime(clock, &ts);
    return (uint64_t)ts.tv_sec * UINT64_C(1000000000) + (uint64_t)ts.tv_nsec;
}

static void *
xcalloc(size_t n, size_t size)
{
    void *p = calloc(n, size);

    if (p == NULL) {
        fprintf(stderr, "loadgen: out of memory (%zu x %zu bytes)\n", n, size);
        exit(1);
    }
    return p;
}

/* splitmix64 (Steele, Lea & Flood 2014): one word of state, and plenty for
 * drawing keys. */
static uint64_t
rng_next(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* Uniform double in [0, 1). */
static double
rng_double(uint64_t *s)
{
    return (double)(rng_next(s) >> 11) * 0x1.0p-53;
}

/* Uniform integer in [0, n), n < 2^32 (Lemire's multiply, no rejection:
 * the bias is below 2^-32 for our key spaces). */
static uint32_t
rng_below(uint64_t *s, uint32_t n)
{
    return (uint32_t)(((rng_next(s) >> 32) * (uint64_t)n) >> 32);
}

/* ---- histogram ---------------------------------------------------------- */

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

static void
hist_add(struct lg_hist *h, uint64_t v)
{
    h->counts[hist_index(v)]++;
    h->total++;
    if (v > h->max) {
        h->max = v;
    }
}

/* Smallest recorded value (bucket middle) with at least q of all values at
 * or below it; q in (0, 1]. 0 when nothing was recorded. */
static uint64_t
hist_quantile(const struct lg_hist *h, double q)
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

/* ---- keys and commands ------------------------------------------------ */

/* Cumulative zipf probabilities of ranks 0..keys-1; the caller owns them. */
static double *
zipf_build(uint32_t keys, double s)
{
    double *cdf = xcalloc(keys, sizeof(*cdf)), sum = 0.0;

    for (uint32_t i = 0; i < keys; i++) {
        sum += 1.0 / pow((double)i + 1.0, s);
        cdf[i] = sum;
    }
    for (uint32_t i = 0; i < keys; i++) {
        cdf[i] /= sum;
    }
    return cdf;
}

static uint32_t
key_draw(struct lg *lg)
{
    switch (lg->o.dist) {
    case LG_SEQUENTIAL:
        return (uint32_t)(lg->seq++ % lg->o.keys);
    case LG_ZIPF: {
        double u = rng_double(&lg->rng);
        uint32_t lo = 0, hi = lg->o.keys - 1;
        while (lo < hi) { /* first rank whose cdf >= u */
            uint32_t mid = lo + (hi - lo) / 2;
            if (lg->zipf_cdf[mid] < u) {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        return lo;
    }
    case LG_UNIFORM:
    default:
        return rng_below(&lg->rng, lg->o.keys);
    }
}

/* Decimal digits of v at p (no NUL); returns their count. No printf: this
 * runs twice per request and must not cost more than redis-benchmark's
 * pre-formatted buffers. */
static size_t
put_uint(char *p, uint64_t v)
{
    char tmp[20];
    size_t n = 0;

    do {
        tmp[n++] = (char)('0' + v % 10);
        v /= 10;
    } while (v != 0);
    for (size_t i = 0; i < n; i++) {
        p[i] = tmp[n - 1 - i];
    }
    return n;
}

/* Append "$len\r\nbytes\r\n" at p; returns the bytes written. */
static size_t
put_bulk(char *p, const char *s, size_t len)
{
    size_t n = 1;

    p[0] = '$';
    n += put_uint(p + 1, len);
    memcpy(p + n, "\r\n", 2);
    memcpy(p + n + 2, s, len);
    memcpy(p + n + 2 + len, "\r\n", 2);
    return n + len + 4;
}

/* Key text of index k (prefix + 12 digits, as redis-benchmark -r writes
 * key:__rand_int__) or, when absent, a random key that nothing writes. */
static size_t
key_text(struct lg *lg, char *out, uint32_t k, bool absent)
{
    size_t plen = strlen(lg->o.prefix);

    memcpy(out, lg->o.prefix, plen);
    if (absent) {
        return plen + (size_t)sprintf(out + plen, "absent:%016llx",
                                      (unsigned long long)rng_next(&lg->rng));
    }
    for (int i = 11; i >= 0; i--) {
        out[plen + (size_t)i] = (char)('0' + k % 10);
        k /= 10;
    }
    return plen + 12;
}

/* Encode GET key into lg->cmd; returns its length. */
static size_t
cmd_get(struct lg *lg, uint32_t k, bool absent)
{
    char key[LG_PREFIX_MAX + 32];
    size_t klen = key_text(lg, key, k, absent), n;

    n = sizeof("*2\r\n$3\r\nGET\r\n") - 1;
    memcpy(lg->cmd, "*2\r\n$3\r\nGET\r\n", n);
    return n + put_bulk(lg->cmd + n, key, klen);
}

/* Encode SET key value [EX ttl_s] into lg->cmd; returns its length. */
static size_t
cmd_set(struct lg *lg, uint32_t k, unsigned ttl_s)
{
    char key[LG_PREFIX_MAX + 32], ttl[24];
    size_t klen = key_text(lg, key, k, false), n;

    n = sizeof("*3\r\n$3\r\nSET\r\n") - 1;
    memcpy(lg->cmd, ttl_s ? "*5\r\n$3\r\nSET\r\n" : "*3\r\n$3\r\nSET\r\n", n);
    n += put_bulk(lg->cmd + n, key, klen);
    n += put_bulk(lg->cmd + n, lg->value, lg->o.value_size);
    if (ttl_s) {
        size_t tlen = put_uint(ttl, ttl_s);
        n += put_bulk(lg->cmd + n, "EX", 2);
        n += put_bulk(lg->cmd + n, ttl, tlen);
    }
    return n;
}

/* ---- request slots ------------------------------------------------------ */

static void
slot_set_state(struct lg_slot *s, enum lg_state st)
{
    struct lg *lg = s->conn->lg;

    if (s->state == LG_IDLE && st != LG_IDLE) {
        lg->busy++;
        s->conn->active++;
    } else if (s->state != LG_IDLE && st == LG_IDLE) {
        lg->busy--;
        s->conn->active--;
    }
    s->state = st;
}

/* Leave the event loop when nothing more can happen. */
static void
lg_check_done(struct lg *lg)
{
    /* Running with nothing in flight: the request count is reached, or
     * every connection is gone. */
    if (lg->busy == 0 && (lg->phase == LG_RUNNING || lg->phase == LG_DRAINING)) {
        lg->phase = LG_DONE;
        event_base_loopbreak(lg->base);
    }
}

static void reply_cb(redisAsyncContext *ac, void *r, void *privdata);

/* Send lg->cmd (len bytes) for slot s, now in state st. */
static void
slot_send(struct lg_slot *s, size_t len, enum lg_state st)
{
    struct lg *lg = s->conn->lg;

    if (s->conn->ac == NULL) {
        slot_set_state(s, LG_IDLE);
        return;
    }
    slot_set_state(s, st);
    s->sent_ns = now_ns();
    if (redisAsyncFormattedCommand(s->conn->ac, reply_cb, s, lg->cmd, len) != REDIS_OK) {
        lg->errors++;
        slot_set_state(s, LG_IDLE);
    }
}

static struct lg_tick *
tick_at(struct lg *lg, uint64_t t_ns)
{
    uint64_t i = t_ns > lg->start_ns ? (t_ns - lg->start_ns) / LG_TICK_NS : 0;

    return i < LG_TICKS_MAX ? &lg->ticks[i] : &lg->sink;
}

/* Next request of the run on slot s, or idle when the run is over. */
static void
slot_issue(struct lg_slot *s)
{
    struct lg *lg = s->conn->lg;
    bool write;

    if (lg->phase != LG_RUNNING || (lg->o.requests && lg->issued >= lg->o.requests)) {
        slot_set_state(s, LG_IDLE);
        return;
    }
    lg->issued++;
    write = lg->o.write_ratio > 0 && rng_double(&lg->rng) < lg->o.write_ratio;
    s->absent = !write && lg->o.absent > 0 && rng_double(&lg->rng) < lg->o.absent;
    s->key = s->absent ? 0 : key_draw(lg);
    if (write) {
        slot_send(s, cmd_set(lg, s->key, lg->o.ttl_s), LG_SET);
    } else {
        slot_send(s, cmd_get(lg, s->key, s->absent), LG_GET);
    }
}

/* Slot s finished its request: in window mode send its next one at once;
 * in batch mode (redis-benchmark's -P) wait until the connection's whole
 * batch is done, then send the next batch of o.pipeline requests. */
static void
lg_issue(struct lg_slot *s)
{
    struct lg_conn *c = s->conn;

    if (c->lg->o.window || c->lg->phase != LG_RUNNING) {
        slot_issue(s);
        return;
    }
    slot_set_state(s, LG_IDLE);
    if (c->active == 0) {
        for (unsigned j = 0; j < c->lg->o.pipeline; j++) {
            slot_issue(&c->slots[j]);
        }
    }
}

/* Start the simulated database load of slot s's key (a cache miss). */
static void
slot_db_load(struct lg_slot *s)
{
    struct lg *lg = s->conn->lg;
    struct timeval tv = {lg->o.db_latency_ms / 1000,
                         (long)(lg->o.db_latency_ms % 1000) * 1000};

    lg->db_loads++;
    tick_at(lg, now_ns())->db_loads++;
    slot_set_state(s, LG_DB_LOAD);
    if (event_add(s->db_timer, &tv) != 0) {
        fprintf(stderr, "loadgen: event_add failed\n");
        exit(1);
    }
}

/* The database answered: fill the cache (keys the database has) and go on. */
static void
db_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lg_slot *s = arg;
    struct lg *lg = s->conn->lg;

    (void)fd;
    (void)what;
    if (lg->phase == LG_RUNNING && !s->absent) {
        slot_send(s, cmd_set(lg, s->key, lg->o.ttl_s), LG_FILL_SET);
    } else {
        lg_issue(s);
    }
    lg_check_done(lg);
}

/* A prefill SET was answered: send the next key, or start the run. */
static void
prefill_reply(struct lg_slot *s, const redisReply *reply)
{
    struct lg *lg = s->conn->lg;

    if (reply->type == REDIS_REPLY_ERROR) {
        if (lg->errors++ == 0) {
            fprintf(stderr, "loadgen: prefill error: %s\n", reply->str);
        }
    }
    lg->prefill_done++;
    if (lg->prefill_next < lg->prefill_end) {
        s->key = lg->prefill_next++;
        slot_send(s, cmd_set(lg, s->key, lg->o.ttl_s), LG_PREFILL);
    } else {
        slot_set_state(s, LG_IDLE);
    }
    if (lg->prefill_done == lg->prefill_todo) {
        lg->prefill_ms = (double)(now_ns() - lg->prefill_ns) / 1e6;
        lg_start_run(lg);
    }
}

/* Count one answered run command of slot s. */
static void
run_account(struct lg *lg, struct lg_slot *s, const redisReply *reply)
{
    uint64_t t = now_ns();

    hist_add(&lg->hist, t - s->sent_ns);
    lg->done++;
    if (lg->o.requests != 0 || t <= lg->deadline_ns) {
        lg->done_window++;
        lg->end_ns = t;
    }
    tick_at(lg, t)->done++;
    if (s->state == LG_GET) {
        lg->gets++;
    } else {
        lg->sets++;
    }
    if (reply->type == REDIS_REPLY_ERROR && lg->errors++ == 0) {
        fprintf(stderr, "loadgen: error reply: %s\n", reply->str);
    }
    if (s->state == LG_GET && reply->type == REDIS_REPLY_NIL) {
        lg->nils++;
        tick_at(lg, t)->nil++;
    }
}

static void
reply_cb(redisAsyncContext *ac, void *r, void *privdata)
{
    struct lg_slot *s = privdata;
    struct lg *lg = s->conn->lg;
    const redisReply *reply = r;

    (void)ac;
    if (lg->phase == LG_DONE) {
        return;
    }
    if (reply == NULL) { /* connection lost or freed */
        lg->errors++;
        slot_set_state(s, LG_IDLE);
        lg_check_done(lg);
        return;
    }
    if (s->state == LG_PREFILL) {
        prefill_reply(s, reply);
        return;
    }
    run_account(lg, s, reply);
    if (s->state == LG_GET && reply->type == REDIS_REPLY_NIL &&
        lg->o.mode != LG_PLAIN && lg->phase == LG_RUNNING) {
        slot_db_load(s);
    } else {
        lg_issue(s);
    }
    lg_check_done(lg);
}

/* ---- phases ------------------------------------------------------------- */

/* Sum of calls= over INFO commandstats of the Redis in o.redis_*, or -1. */
static int64_t
commandstats_calls(const struct lg_opts *o)
{
    struct timeval tv = {5, 0};
    redisContext *c = redisConnectWithTimeout(o->redis_host, o->redis_port, tv);
    redisReply *r;
    int64_t sum = 0;

    if (c == NULL || c->err) {
        fprintf(stderr, "loadgen: --redis %s:%d: %s\n", o->redis_host, o->redis_port,
                c ? c->errstr : "out of memory");
        redisFree(c);
        return -1;
    }
    r = redisCommand(c, "INFO commandstats");
    if (r == NULL || r->type != REDIS_REPLY_STRING) {
        fprintf(stderr, "loadgen: INFO commandstats failed\n");
        sum = -1;
    } else {
        for (const char *p = strstr(r->str, "calls="); p; p = strstr(p + 6, "calls=")) {
            if (p[-1] == ':') { /* not rejected_calls= / failed_calls= */
                sum += strtoll(p + 6, NULL, 10);
            }
        }
    }
    if (r) {
        freeReplyObject(r);
    }
    redisFree(c);
    return sum;
}

/* A worker cannot go on (connect failed, connection lost before the run):
 * leave its loop, and release the others from the start barrier. */
static void
lg_fail(struct lg *lg)
{
    lg->failed = true;
    pthread_mutex_lock(&lg->sh->mu);
    lg->sh->aborted = true;
    pthread_cond_broadcast(&lg->sh->cv);
    pthread_mutex_unlock(&lg->sh->mu);
    event_base_loopbreak(lg->base);
}

/* Start barrier: wait until every worker is ready to run (connected, its
 * prefill done); the last to arrive reads the Redis INFO commandstats and
 * the clocks the whole run is measured from. Blocks this worker's event loop
 * meanwhile (it has nothing in flight). Returns false when a worker failed. */
static bool
lg_barrier(struct lg *lg)
{
    struct lg_shared *sh = lg->sh;
    bool ok;

    pthread_mutex_lock(&sh->mu);
    if (++sh->arrived == sh->threads && !sh->aborted) {
        sh->upstream_before = lg->o.redis_host ? commandstats_calls(&lg->o) : -1;
        sh->start_cpu_ns = cpu_ns(CLOCK_PROCESS_CPUTIME_ID);
        sh->start_ns = now_ns();
        sh->released = true;
        pthread_cond_broadcast(&sh->cv);
    }
    while (!sh->released && !sh->aborted) {
        pthread_cond_wait(&sh->cv, &sh->mu);
    }
    ok = sh->released;
    pthread_mutex_unlock(&sh->mu);
    return ok;
}

/* Deadline, then drain limit. */
static void
stop_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lg *lg = arg;
    struct timeval drain = {LG_DRAIN_S, 0};

    (void)fd;
    (void)what;
    if (lg->phase == LG_RUNNING) {
        lg->phase = LG_DRAINING;
        event_add(lg->stop_timer, &drain);
        lg_check_done(lg);
        return;
    }
    fprintf(stderr, "loadgen: %llu requests still in flight after %d s; giving up on them\n",
            (unsigned long long)lg->busy, LG_DRAIN_S);
    lg->phase = LG_DONE;
    event_base_loopbreak(lg->base);
}

static void
lg_start_run(struct lg *lg)
{
    if (!lg_barrier(lg)) {
        lg->failed = true;
        event_base_loopbreak(lg->base);
        return;
    }
    lg->phase = LG_RUNNING;
    lg->start_ns = now_ns();
    lg->start_tcpu_ns = cpu_ns(CLOCK_THREAD_CPUTIME_ID);
    lg->deadline_ns = UINT64_MAX;
    if (lg->o.duration_s > 0) {
        struct timeval tv = {(time_t)lg->o.duration_s,
                             (suseconds_t)(fmod(lg->o.duration_s, 1.0) * 1e6)};
        lg->deadline_ns = lg->start_ns + (uint64_t)(lg->o.duration_s * LG_NS_PER_S);
        event_add(lg->stop_timer, &tv);
    }
    for (unsigned i = 0; i < lg->o.conns; i++) {
        for (unsigned j = 0; j < lg->o.pipeline; j++) {
            struct lg_slot *s = &lg->conns[i].slots[j];
            if (s->state == LG_IDLE) {
                slot_issue(s);
            }
        }
    }
    lg_check_done(lg);
}

static void
lg_start(struct lg *lg)
{
    event_del(lg->conn_timer);
    if (!lg->o.prefill || lg->prefill_todo == 0) {
        lg_start_run(lg);
        return;
    }
    lg->phase = LG_PREFILLING;
    lg->prefill_ns = now_ns();
    for (unsigned j = 0; j < lg->conns[0].nslots; j++) {
        for (unsigned i = 0; i < lg->o.conns && lg->prefill_next < lg->prefill_end; i++) {
            struct lg_slot *s = &lg->conns[i].slots[j];
            s->key = lg->prefill_next++;
            slot_send(s, cmd_set(lg, s->key, lg->o.ttl_s), LG_PREFILL);
        }
    }
}

static void
connect_cb(const redisAsyncContext *ac, int status)
{
    struct lg_conn *c = ac->data;
    struct lg *lg = c->lg;

    if (status != REDIS_OK) {
        fprintf(stderr, "loadgen: connect %s:%d: %s\n", lg->o.host, lg->o.port, ac->errstr);
        c->ac = NULL; /* hiredis frees the context */
        lg_fail(lg);
        return;
    }
    if (++lg->up == lg->o.conns) {
        lg_start(lg);
    }
}

static void
disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct lg_conn *c = ac->data;

    c->ac = NULL; /* hiredis frees the context */
    if (status != REDIS_OK && c->lg->phase != LG_DONE) {
        fprintf(stderr, "loadgen: connection lost: %s\n", ac->errstr);
        c->lg->errors++;
        if (c->lg->phase != LG_RUNNING && c->lg->phase != LG_DRAINING) {
            lg_fail(c->lg);
        }
        lg_check_done(c->lg);
    }
}

static void
conn_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct lg *lg = arg;

    (void)fd;
    (void)what;
    fprintf(stderr, "loadgen: only %u of %u connections up after %d s\n", lg->up,
            lg->o.conns, LG_CONNECT_S);
    lg_fail(lg);
}

/* Allocate the run and open its connections (answers arrive in the loop). */
static int
lg_init(struct lg *lg)
{
    struct timeval tv = {LG_CONNECT_S, 0};
    unsigned nslots = lg->o.pipeline > LG_PREFILL_DEPTH ? lg->o.pipeline : LG_PREFILL_DEPTH;

    lg->base = event_base_new();
    if (lg->base == NULL) {
        fprintf(stderr, "loadgen: event_base_new failed\n");
        return -1;
    }
    /* Each worker its own stream: the seed (or the clock) plus its index. */
    lg->rng = (lg->o.seed ? lg->o.seed : now_ns() ^ (uint64_t)getpid() << 32) +
              (uint64_t)lg->id * UINT64_C(0x632be59bd9b4e019);
    lg->zipf_cdf = lg->sh->zipf_cdf;
    lg->ticks = xcalloc(LG_TICKS_MAX, sizeof(*lg->ticks));
    lg->cmd = xcalloc(1, lg->o.value_size + 256);
    lg->value = xcalloc(1, lg->o.value_size + 1);
    memset(lg->value, 'x', lg->o.value_size);
    lg->stop_timer = evtimer_new(lg->base, stop_timer_cb, lg);
    lg->conn_timer = evtimer_new(lg->base, conn_timer_cb, lg);
    if (lg->stop_timer == NULL || lg->conn_timer == NULL || event_add(lg->conn_timer, &tv)) {
        fprintf(stderr, "loadgen: cannot create timers\n");
        return -1;
    }
    lg->conns = xcalloc(lg->o.conns, sizeof(*lg->conns));
    for (unsigned i = 0; i < lg->o.conns; i++) {
        struct lg_conn *c = &lg->conns[i];
        c->lg = lg;
        c->nslots = nslots;
        c->slots = xcalloc(nslots, sizeof(*c->slots));
        for (unsigned j = 0; j < nslots; j++) {
            c->slots[j].conn = c;
            c->slots[j].db_timer = evtimer_new(lg->base, db_timer_cb, &c->slots[j]);
            if (c->slots[j].db_timer == NULL) {
                fprintf(stderr, "loadgen: evtimer_new failed\n");
                return -1;
            }
        }
        c->ac = redisAsyncConnect(lg->o.host, lg->o.port);
        if (c->ac == NULL || c->ac->err) {
            fprintf(stderr, "loadgen: connect %s:%d: %s\n", lg->o.host, lg->o.port,
                    c->ac ? c->ac->errstr : "out of memory");
            if (c->ac) {
                redisAsyncFree(c->ac);
                c->ac = NULL;
            }
            return -1;
        }
        c->ac->data = c;
        redisLibeventAttach(c->ac, lg->base);
        redisAsyncSetConnectCallback(c->ac, connect_cb);
        redisAsyncSetDisconnectCallback(c->ac, disconnect_cb);
    }
    return 0;
}

/* Free everything; pending callbacks see LG_DONE and do nothing. */
static void
lg_deinit(struct lg *lg)
{
    lg->phase = LG_DONE;
    for (unsigned i = 0; lg->conns && i < lg->o.conns; i++) {
        if (lg->conns[i].ac) {
            redisAsyncFree(lg->conns[i].ac);
        }
    }
    for (unsigned i = 0; lg->conns && i < lg->o.conns; i++) {
        for (unsigned j = 0; lg->conns[i].slots && j < lg->conns[i].nslots; j++) {
            if (lg->conns[i].slots[j].db_timer) {
                event_free(lg->conns[i].slots[j].db_timer);
            }
        }
        free(lg->conns[i].slots);
    }
    free(lg->conns);
    if (lg->stop_timer) {
        event_free(lg->stop_timer);
    }
    if (lg->conn_timer) {
        event_free(lg->conn_timer);
    }
    if (lg->base) {
        event_base_free(lg->base);
    }
    free(lg->ticks);
    free(lg->cmd);
    free(lg->value);
}

/* ---- report ------------------------------------------------------------- */

/* Ticks covered by the run (the drain included). */
static unsigned
report_ticks(const struct lg *lg)
{
    uint64_t n = (lg->end_ns > lg->start_ns ? lg->end_ns - lg->start_ns : 0) / LG_TICK_NS + 1;

    if (lg->o.duration_s > 0) {
        n = (uint64_t)ceil(lg->o.duration_s * 10.0);
    }
    return n < LG_TICKS_MAX ? (unsigned)n : LG_TICKS_MAX;
}

/* Largest number of database loads started within any 1 s window (ten
 * consecutive 100 ms ticks), so a burst straddling a second is not halved. */
static uint64_t
peak_db_loads(const struct lg *lg, unsigned nticks)
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

/* Per-second rows (--timeline) and the TIMELINE line for scripts. */
static void
report_timeline(const struct lg *lg, unsigned nticks)
{
    struct lg_tick t;

    if (lg->o.timeline) {
        printf("timeline: second, commands/s, nil/s, database loads/s\n");
        for (unsigned sec = 0; sec * 10 < nticks; sec++) {
            tick_second(lg, sec, nticks, &t);
            printf("  %3u  %9" PRIu64 "  %8" PRIu64 "  %8" PRIu64 "\n", sec, t.done, t.nil,
                   t.db_loads);
        }
    }
    printf("TIMELINE db_loads_per_s=");
    for (unsigned sec = 0; sec * 10 < nticks; sec++) {
        tick_second(lg, sec, nticks, &t);
        printf("%s%" PRIu64, sec ? "," : "", t.db_loads);
    }
    printf("\n");
}

/* The run as one: lg holds the sums of the workers' counts, histograms and
 * timelines; cpu is the process's CPU over the run's wall time (may exceed 1
 * with threads) and cpu_max the busiest worker's share of one core. */
static void
lg_report(const struct lg *lg, int64_t upstream_before, int64_t upstream_after, double cpu,
          double cpu_max)
{
    double secs = lg->o.requests ? (double)(lg->end_ns - lg->start_ns) / LG_NS_PER_S
                                 : lg->o.duration_s;
    double rps = secs > 0 ? (double)lg->done_window / secs : 0.0;
    double p50 = (double)hist_quantile(&lg->hist, 0.50) / 1e3;
    double p99 = (double)hist_quantile(&lg->hist, 0.99) / 1e3;
    double p999 = (double)hist_quantile(&lg->hist, 0.999) / 1e3;
    unsigned nticks = report_ticks(lg);
    uint64_t peak = peak_db_loads(lg, nticks);
    char per_req[32] = "-";
    int64_t up = -1;

    if (upstream_before >= 0 && upstream_after >= 0) {
        up = upstream_after - upstream_before - 1; /* our first INFO */
        if (lg->done > 0) {
            snprintf(per_req, sizeof(per_req), "%.3f", (double)up / (double)lg->done);
        }
    }
    printf("run: %.2f s, %" PRIu64 " commands (GET %" PRIu64 ", SET %" PRIu64 "), nil %" PRIu64
           ", errors %" PRIu64 "\n", secs, lg->done, lg->gets, lg->sets, lg->nils, lg->errors);
    printf("throughput: %.0f commands/s\n", rps);
    printf("latency us: p50 %.1f  p99 %.1f  p99.9 %.1f  max %.1f\n", p50, p99, p999,
           (double)lg->hist.max / 1e3);
    if (up >= 0) {
        printf("upstream: %lld commands at %s:%d, %s per client command\n", (long long)up,
               lg->o.redis_host, lg->o.redis_port, per_req);
    }
    printf("database: %" PRIu64 " loads, %.0f/s, peak %" PRIu64 "/s (any 1 s window)\n",
           lg->db_loads, secs > 0 ? (double)lg->db_loads / secs : 0.0, peak);
    /* Near 1.0 in one thread, the rate is bounded by loadgen's own CPU. */
    printf("client cpu: %.0f%% of one core", cpu * 100.0);
    if (lg->o.threads > 1) {
        printf(" over %u threads, the busiest %.0f%%", lg->o.threads, cpu_max * 100.0);
    }
    printf("%s\n", cpu_max >= LG_CPU_BOUND
                       ? " (loadgen itself may be what limits the rate: try --threads)"
                       : "");
    report_timeline(lg, nticks);
    printf("RESULT rps=%.0f p50_us=%.1f p99_us=%.1f p999_us=%.1f upstream_per_req=%s "
           "db_loads=%" PRIu64 " peak_db_loads_per_s=%" PRIu64 " nil=%" PRIu64 " errors=%" PRIu64
           " client_cpu=%.2f client_cpu_max_thread=%.2f\n", rps, p50, p99, p999, per_req,
           lg->db_loads, peak, lg->nils, lg->errors, cpu, cpu_max);
}

/* ---- options ------------------------------------------------------------ */

static void
usage(FILE *f)
{
    fprintf(f,
        "Usage: loadgen [options]\n"
        "  -h, --host HOST         target host (default 127.0.0.1)\n"
        "  -p, --port PORT         target port (default 6380)\n"
        "      --redis HOST:PORT   Redis whose INFO commandstats counts upstream commands\n"
        "  -c, --conns N           connections (default 50)\n"
        "      --threads T         event-loop threads sharing the connections (default 1)\n"
        "  -P, --pipeline N        commands sent per batch per connection (default 1)\n"
        "  -d, --duration S        run for S seconds (default 5)\n"
        "  -n, --requests N        or send N commands (overrides --duration)\n"
        "  -k, --keys N            key space size (default 100000)\n"
        "      --dist D            uniform | zipf:S | sequential (default uniform)\n"
        "      --absent F          fraction of GETs for keys that never exist (0..1)\n"
        "      --value-size B      SET value bytes (default 100)\n"
        "      --write-ratio F     fraction of requests that are SETs (0..1)\n"
        "      --ttl S             EX seconds on SETs and cache fills (default none)\n"
        "      --mode M            plain | cache-aside | avalanche (default plain)\n"
        "      --db-latency MS     simulated database load, ms (default 5)\n"
        "      --prefill           SET every key (with --ttl) before the run\n"
        "      --window            keep P in flight per connection, refilled reply by\n"
        "                          reply (default: batches of P, as redis-benchmark -P)\n"
        "      --prefix P          key prefix (default \"key:\"); keys are P + 12 digits\n"
        "      --timeline          print commands, nils and database loads per second\n"
        "      --seed N            random seed (default: from the clock)\n"
        "avalanche = cache-aside + --prefill + --timeline, --ttl 20 unless given:\n"
        "the keys are written with one EX as fast as possible, then read across\n"
        "their expiry; every miss is a database load and a SET EX ttl.\n");
}

static double
opt_num(const char *name, const char *v, double min, double max)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= min && d <= max)) {
        fprintf(stderr, "loadgen: --%s wants a number in [%g, %g], got \"%s\"\n", name, min,
                max, v);
        exit(2);
    }
    return d;
}

static void
opt_hostport(const char *v, const char **host, int *port)
{
    const char *colon = strrchr(v, ':');
    char *h;

    if (colon == NULL || colon == v) {
        fprintf(stderr, "loadgen: --redis wants host:port, got \"%s\"\n", v);
        exit(2);
    }
    *port = (int)opt_num("redis port", colon + 1, 1, 65535);
    h = xcalloc(1, (size_t)(colon - v) + 1);
    memcpy(h, v, (size_t)(colon - v));
    *host = h; /* lives until exit */
}

/* Index of v in words (n of them), or exit 2 naming the choices. */
static int
opt_word(const char *name, const char *v, const char *const *words, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(v, words[i]) == 0) {
            return i;
        }
    }
    fprintf(stderr, "loadgen: --%s: unknown \"%s\"; see --help\n", name, v);
    exit(2);
}

/* Names of enum lg_mode and enum lg_dist values, in order. */
static const char *const mode_names[] = {"plain", "cache-aside", "avalanche"};
static const char *const dist_names[] = {"uniform", "zipf", "sequential"};

static void
opt_dist(struct lg_opts *o, const char *v)
{
    if (strncmp(v, "zipf:", 5) == 0) {
        o->dist = LG_ZIPF;
        o->zipf_s = opt_num("dist zipf", v + 5, 0.01, 10);
    } else {
        o->dist = (enum lg_dist)opt_word("dist", v, dist_names, 3);
    }
}

static const struct option long_opts[] = {
    {"host", required_argument, NULL, 'h'},   {"port", required_argument, NULL, 'p'},
    {"conns", required_argument, NULL, 'c'},  {"pipeline", required_argument, NULL, 'P'},
    {"duration", required_argument, NULL, 'd'}, {"requests", required_argument, NULL, 'n'},
    {"keys", required_argument, NULL, 'k'},   {"redis", required_argument, NULL, 'R'},
    {"dist", required_argument, NULL, 'D'},   {"absent", required_argument, NULL, 'A'},
    {"value-size", required_argument, NULL, 'V'}, {"write-ratio", required_argument, NULL, 'W'},
    {"ttl", required_argument, NULL, 'T'},    {"mode", required_argument, NULL, 'M'},
    {"db-latency", required_argument, NULL, 'L'}, {"prefill", no_argument, NULL, 'F'},
    {"prefix", required_argument, NULL, 'X'}, {"timeline", no_argument, NULL, 't'},
    {"seed", required_argument, NULL, 'S'},   {"help", no_argument, NULL, 'H'},
    {"window", no_argument, NULL, 'w'},      {"threads", required_argument, NULL, 'j'},
    {NULL, 0, NULL, 0},
};

static void
opts_parse(struct lg_opts *o, int argc, char **argv)
{
    int ch;
    bool ttl_given = false;

    *o = (struct lg_opts){.host = "127.0.0.1", .port = 6380, .conns = 50, .pipeline = 1,
                          .threads = 1, .duration_s = 5, .keys = 100000, .value_size = 100,
                          .db_latency_ms = 5, .prefix = "key:", .zipf_s = 0.99};
    while ((ch = getopt_long(argc, argv, "h:p:c:P:d:n:k:", long_opts, NULL)) != -1) {
        switch (ch) {
        case 'h': o->host = optarg; break;
        case 'p': o->port = (int)opt_num("port", optarg, 1, 65535); break;
        case 'c': o->conns = (unsigned)opt_num("conns", optarg, 1, 10000); break;
        case 'P': o->pipeline = (unsigned)opt_num("pipeline", optarg, 1, 1024); break;
        case 'd': o->duration_s = opt_num("duration", optarg, 0.1, 3600); break;
        case 'n': o->requests = (uint64_t)opt_num("requests", optarg, 1, 1e15); break;
        case 'k': o->keys = (uint32_t)opt_num("keys", optarg, 1, 1e8); break;
        case 'R': opt_hostport(optarg, &o->redis_host, &o->redis_port); break;
        case 'D': opt_dist(o, optarg); break;
        case 'A': o->absent = opt_num("absent", optarg, 0, 1); break;
        case 'V': o->value_size = (size_t)opt_num("value-size", optarg, 0, 1 << 24); break;
        case 'W': o->write_ratio = opt_num("write-ratio", optarg, 0, 1); break;
        case 'T': o->ttl_s = (unsigned)opt_num("ttl", optarg, 0, 1e8); ttl_given = true; break;
        case 'M': o->mode = (enum lg_mode)opt_word("mode", optarg, mode_names, 3); break;
        case 'L': o->db_latency_ms = (unsigned)opt_num("db-latency", optarg, 0, 60000); break;
        case 'F': o->prefill = true; break;
        case 'X': o->prefix = optarg; break;
        case 't': o->timeline = true; break;
        case 'w': o->window = true; break;
        case 'j': o->threads = (unsigned)opt_num("threads", optarg, 1, LG_THREADS_MAX); break;
        case 'S': o->seed = (uint64_t)opt_num("seed", optarg, 0, 1e18); break;
        case 'H': usage(stdout); exit(0);
        default: usage(stderr); exit(2);
        }
    }
    if (optind < argc || strlen(o->prefix) > LG_PREFIX_MAX) {
        usage(stderr);
        exit(2);
    }
    if (o->threads > o->conns || (o->requests && o->requests < o->threads)) {
        fprintf(stderr, "loadgen: --threads %u wants at least as many connections and "
                        "requests\n", o->threads);
        exit(2);
    }
    if (o->requests) {
        o->duration_s = 0;
    }
    if (o->mode == LG_AVALANCHE) {
        o->prefill = o->timeline = true;
        o->ttl_s = ttl_given ? o->ttl_s : 20;
    }
}

/* ---- threads ------------------------------------------------------------ */

/* Share i (of n) of total: the first total % n shares get one more. */
static uint64_t
share(uint64_t total, unsigned n, unsigned i)
{
    return total / n + (i < total % n ? 1 : 0);
}

/* A worker: its connections, its loop, until its part of the run is over. */
static void *
worker_main(void *arg)
{
    struct lg *lg = arg;

    if (lg_init(lg) != 0) {
        lg->failed = true;
        pthread_mutex_lock(&lg->sh->mu);
        lg->sh->aborted = true;
        pthread_cond_broadcast(&lg->sh->cv);
        pthread_mutex_unlock(&lg->sh->mu);
        return NULL;
    }
    event_base_dispatch(lg->base);
    if (lg->start_ns != 0) {
        uint64_t wall = now_ns() - lg->start_ns;
        lg->cpu_share = wall ? (double)(cpu_ns(CLOCK_THREAD_CPUTIME_ID) - lg->start_tcpu_ns) /
                                   (double)wall
                             : 0.0;
    }
    return NULL;
}

/* Sum the workers w[0..n) into sum (whose o is the whole run's). */
static void
lg_merge(struct lg *sum, const struct lg *w, unsigned n)
{
    sum->ticks = xcalloc(LG_TICKS_MAX, sizeof(*sum->ticks));
    sum->start_ns = w[0].start_ns;
    for (unsigned i = 0; i < n; i++) {
        if (w[i].start_ns < sum->start_ns) {
            sum->start_ns = w[i].start_ns;
        }
        if (w[i].end_ns > sum->end_ns) {
            sum->end_ns = w[i].end_ns;
        }
        sum->done += w[i].done;
        sum->done_window += w[i].done_window;
        sum->gets += w[i].gets;
        sum->sets += w[i].sets;
        sum->nils += w[i].nils;
        sum->errors += w[i].errors;
        sum->db_loads += w[i].db_loads;
        for (unsigned b = 0; b < LG_HIST_BUCKETS; b++) {
            sum->hist.counts[b] += w[i].hist.counts[b];
        }
        sum->hist.total += w[i].hist.total;
        if (w[i].hist.max > sum->hist.max) {
            sum->hist.max = w[i].hist.max;
        }
        /* Tick k of every worker is the same 100 ms: they start together. */
        for (unsigned k = 0; k < LG_TICKS_MAX; k++) {
            sum->ticks[k].done += w[i].ticks[k].done;
            sum->ticks[k].nil += w[i].ticks[k].nil;
            sum->ticks[k].db_loads += w[i].ticks[k].db_loads;
        }
    }
}

int
main(int argc, char **argv)
{
    static struct lg sum; /* large (histogram): static storage */
    static struct lg_shared sh = {.mu = PTHREAD_MUTEX_INITIALIZER,
                                  .cv = PTHREAD_COND_INITIALIZER, .upstream_before = -1};
    struct lg *w;
    int64_t upstream_after = -1;
    double prefill_ms = 0, cpu = 0, cpu_max = 0;
    bool failed = false;
    unsigned n;
    uint64_t wall;

    signal(SIGPIPE, SIG_IGN);
    opts_parse(&sum.o, argc, argv);
    n = sum.o.threads;
    printf("loadgen: %s:%d conns %u pipeline %u mode %s dist %s", sum.o.host, sum.o.port,
           sum.o.conns, sum.o.pipeline, mode_names[sum.o.mode], dist_names[sum.o.dist]);
    if (sum.o.dist == LG_ZIPF) {
        printf(":%g", sum.o.zipf_s);
    }
    printf(" keys %u absent %.2f writes %.2f value %zu B ttl %u s db-latency %u ms",
           sum.o.keys, sum.o.absent, sum.o.write_ratio, sum.o.value_size, sum.o.ttl_s,
           sum.o.db_latency_ms);
    printf(n > 1 ? " threads %u\n" : "\n", n);
    fflush(stdout);
    if (sum.o.dist == LG_ZIPF) {
        sh.zipf_cdf = zipf_build(sum.o.keys, sum.o.zipf_s);
    }
    sh.threads = n;
    w = xcalloc(n, sizeof(*w));
    for (unsigned i = 0; i < n; i++) {
        w[i].o = sum.o;
        w[i].o.conns = (unsigned)share(sum.o.conns, n, i);
        w[i].o.requests = sum.o.requests ? share(sum.o.requests, n, i) : 0;
        w[i].sh = &sh;
        w[i].id = i;
        w[i].prefill_next = (uint32_t)((uint64_t)sum.o.keys * i / n);
        w[i].prefill_end = (uint32_t)((uint64_t)sum.o.keys * (i + 1) / n);
        w[i].prefill_todo = w[i].prefill_end - w[i].prefill_next;
        w[i].seq = (uint64_t)sum.o.keys * i / n; /* sequential: a slice each */
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "loadgen: cannot start thread %u\n", i);
            exit(1);
        }
    }
    for (unsigned i = 0; i < n; i++) {
        pthread_join(w[i].tid, NULL);
    }
    wall = now_ns() - sh.start_ns;
    if (sh.released && wall > 0) {
        cpu = (double)(cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - sh.start_cpu_ns) / (double)wall;
    }
    for (unsigned i = 0; i < n; i++) {
        failed |= w[i].failed;
        prefill_ms = w[i].prefill_ms > prefill_ms ? w[i].prefill_ms : prefill_ms;
        cpu_max = w[i].cpu_share > cpu_max ? w[i].cpu_share : cpu_max;
    }
    if (!failed) {
        if (sum.o.prefill) {
            printf("prefill: %u keys%s in %.0f ms\n", sum.o.keys,
                   sum.o.ttl_s ? " with the same EX" : "", prefill_ms);
        }
        if (sum.o.redis_host) {
            upstream_after = commandstats_calls(&sum.o);
        }
        lg_merge(&sum, w, n);
        lg_report(&sum, sh.upstream_before, upstream_after, cpu, cpu_max);
    }
    for (unsigned i = 0; i < n; i++) {
        lg_deinit(&w[i]);
    }
    free(w);
    free(sum.ticks);
    free(sh.zipf_cdf);
    return failed ? 1 : 0;
}
