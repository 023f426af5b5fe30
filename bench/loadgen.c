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
 *
 * This file: keys and commands, request slots, phases, connections and
 * threads. The histogram and the report are in lg_stats.c, the command line
 * in lg_opts.c, what they share in loadgen.h.
 */
#include "bench/loadgen.h"

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

/* Depth per connection while prefilling, whatever the run's pipeline. */
#define LG_PREFILL_DEPTH 32u

/* Seconds allowed to connect, and to drain in-flight requests at the end. */
#define LG_CONNECT_S 10
#define LG_DRAIN_S 5

/* Where a request slot stands. */
enum lg_state {
    LG_IDLE,     /* nothing in flight */
    LG_PREFILL,  /* SET of the prefill phase in flight */
    LG_GET,      /* GET in flight */
    LG_SET,      /* SET (write of the mix) in flight */
    LG_DB_LOAD,  /* simulated database load: db_timer pending */
    LG_FILL_SET, /* cache-aside SET after a database load in flight */
};

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
    struct lg *lg;         /* borrowed: the run */
    redisAsyncContext *ac; /* hiredis owns it once connected; NULL when gone */
    struct lg_slot *slots; /* owned: nslots slots */
    unsigned nslots;       /* max(pipeline, LG_PREFILL_DEPTH) */
    unsigned active;       /* slots not LG_IDLE */
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
    struct timeval tv = {lg->o.db_latency_ms / 1000, (long)(lg->o.db_latency_ms % 1000) * 1000};

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
    if (lg->prefill_done == lg->prefill_count) {
        lg->prefill_ms = (double)(now_ns() - lg->prefill_ns) / 1e6;
        lg_start_run(lg);
    }
}

/* Count one answered run command of slot s. */
static void
run_account(struct lg *lg, struct lg_slot *s, const redisReply *reply)
{
    uint64_t t = now_ns();

    lg_hist_add(&lg->hist, t - s->sent_ns);
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
    if (s->state == LG_GET && reply->type == REDIS_REPLY_NIL && lg->o.mode != LG_PLAIN &&
        lg->phase == LG_RUNNING) {
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
        sum = lg_calls_sum(r->str);
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
    fprintf(stderr,
            "loadgen: %llu requests still in flight after %d s; giving up on "
            "them\n",
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
    if (!lg->o.prefill || lg->prefill_count == 0) {
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
        c->lg->lost = true;
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
    fprintf(stderr, "loadgen: only %u of %u connections up after %d s\n", lg->up, lg->o.conns,
            LG_CONNECT_S);
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

/* Create the run's n = o->threads workers, each with its share of the
 * connections, requests and prefill keys, and start their threads. Returns
 * the workers (the caller owns them: lg_deinit() each, then free()); exits 1
 * when a thread cannot start. */
static struct lg *
workers_start(const struct lg_opts *o, struct lg_shared *sh)
{
    unsigned n = o->threads;
    struct lg *w = xcalloc(n, sizeof(*w));

    for (unsigned i = 0; i < n; i++) {
        w[i].o = *o;
        w[i].o.conns = (unsigned)share(o->conns, n, i);
        w[i].o.requests = o->requests ? share(o->requests, n, i) : 0;
        w[i].sh = sh;
        w[i].id = i;
        w[i].prefill_next = (uint32_t)((uint64_t)o->keys * i / n);
        w[i].prefill_end = (uint32_t)((uint64_t)o->keys * (i + 1) / n);
        w[i].prefill_count = w[i].prefill_end - w[i].prefill_next;
        w[i].seq = (uint64_t)o->keys * i / n; /* sequential: a slice each */
        if (pthread_create(&w[i].tid, NULL, worker_main, &w[i]) != 0) {
            fprintf(stderr, "loadgen: cannot start thread %u\n", i);
            exit(1);
        }
    }
    return w;
}

/* Wait for the n workers w; returns the process's CPU over the run's wall
 * time (0 when the run never started). */
static double
workers_join(struct lg *w, unsigned n, const struct lg_shared *sh)
{
    uint64_t wall;

    for (unsigned i = 0; i < n; i++) {
        pthread_join(w[i].tid, NULL);
    }
    wall = now_ns() - sh->start_ns;
    if (sh->released && wall > 0) {
        return (double)(cpu_ns(CLOCK_PROCESS_CPUTIME_ID) - sh->start_cpu_ns) / (double)wall;
    }
    return 0;
}

/* The prefill line, then the report of the workers w[0..n) summed into sum
 * (whose o is the whole run's; sum->ticks is allocated here, freed by the
 * caller). */
static void
lg_summary(struct lg *sum, const struct lg *w, unsigned n, const struct lg_shared *sh, double cpu,
           double cpu_max)
{
    int64_t upstream_after = -1;
    double prefill_ms = 0;

    for (unsigned i = 0; i < n; i++) {
        prefill_ms = w[i].prefill_ms > prefill_ms ? w[i].prefill_ms : prefill_ms;
    }
    if (sum->o.prefill) {
        printf("prefill: %u keys%s in %.0f ms\n", sum->o.keys,
               sum->o.ttl_s ? " with the same EX" : "", prefill_ms);
    }
    if (sum->o.redis_host) {
        upstream_after = commandstats_calls(&sum->o);
    }
    sum->ticks = xcalloc(LG_TICKS_MAX, sizeof(*sum->ticks));
    lg_merge(sum, w, n);
    lg_report(stdout, sum, sh->upstream_before, upstream_after, cpu, cpu_max);
}

int
main(int argc, char **argv)
{
    static struct lg sum; /* large (histogram): static storage */
    static struct lg_shared sh = {.mu = PTHREAD_MUTEX_INITIALIZER,
                                  .cv = PTHREAD_COND_INITIALIZER,
                                  .upstream_before = -1};
    struct lg *w;
    double cpu, cpu_max = 0;
    bool failed = false, lost = false;
    unsigned n;

    signal(SIGPIPE, SIG_IGN);
    lg_opts_parse(&sum.o, argc, argv);
    n = sum.o.threads;
    lg_opts_print(stdout, &sum.o);
    fflush(stdout);
    if (sum.o.dist == LG_ZIPF) {
        sh.zipf_cdf = zipf_build(sum.o.keys, sum.o.zipf_s);
    }
    sh.threads = n;
    w = workers_start(&sum.o, &sh);
    cpu = workers_join(w, n, &sh);
    for (unsigned i = 0; i < n; i++) {
        failed |= w[i].failed;
        lost |= w[i].lost;
        cpu_max = w[i].cpu_share > cpu_max ? w[i].cpu_share : cpu_max;
    }
    if (!failed) {
        lg_summary(&sum, w, n, &sh, cpu, cpu_max);
    }
    for (unsigned i = 0; i < n; i++) {
        lg_deinit(&w[i]);
    }
    free(w);
    free(sum.ticks);
    free(sh.zipf_cdf);
    return failed || lost ? 1 : 0;
}
