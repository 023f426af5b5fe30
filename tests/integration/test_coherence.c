/*
 * test_coherence: a key written directly on Redis and read through bulwark as
 * the very next request reads what was written (issue #18 item 2): never nil
 * from the Bloom gate, never an old value from the hot-key cache.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* Direct write + read pairs of the gate tests (the 20,000). */
#define GATE_PAIRS 20000
/* Direct write + read pairs of the hot-key test (the 5,000). */
#define HOT_PAIRS 5000
/* CLIENT KILL + write + read rounds, per kill type. */
#define KILL_ROUNDS 25
/* Pipeline depth of the background write load. */
#define LOAD_DEPTH 32
/* Keys the write load cycles through. */
#define LOAD_KEYS 10000

static struct {
    struct harness_server *redis;
    struct harness_server *bulwark;
    int run; /* numbers the key names of each measurement: never seen before */
} env;

static int
group_setup(void **state)
{
    (void)state;
    env.redis = harness_redis_start(NULL);
    env.bulwark = harness_bulwark_start(env.redis->port, NULL);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    harness_bulwark_stop(env.bulwark);
    harness_redis_stop(env.redis);
    return 0;
}

/* ---- the background write load through bulwark --------------------------- */

/* One writer thread: pipelined SETs through bulwark until stopped. */
struct writer {
    const struct harness_server *bulwark; /* borrowed */
    pthread_t thread;
    atomic_bool stop;     /* main: end the thread */
    atomic_ullong writes; /* SETs answered */
    int id;               /* names its keys */
};

static void *
writer_main(void *arg)
{
    struct writer *w = arg;
    redisContext *c = redisConnect(w->bulwark->host, w->bulwark->port);
    if (c == NULL || c->err)
        return NULL;
    unsigned n = 0;
    while (!atomic_load(&w->stop)) {
        for (int i = 0; i < LOAD_DEPTH; i++, n++)
            redisAppendCommand(c, "SET w:%d:%u %u", w->id, n % LOAD_KEYS, n);
        for (int i = 0; i < LOAD_DEPTH; i++) {
            redisReply *r = NULL;
            if (redisGetReply(c, (void **)&r) != REDIS_OK) {
                redisFree(c); /* bulwark closed it: go on with a new one */
                c = redisConnect(w->bulwark->host, w->bulwark->port);
                if (c == NULL || c->err)
                    return NULL;
                break;
            }
            freeReplyObject(r);
            atomic_fetch_add(&w->writes, 1);
        }
    }
    redisFree(c);
    return NULL;
}

#define WRITERS 2

static struct writer writers[WRITERS];
static bool writers_running; /* started and not yet stopped */

static void
writers_start(const struct harness_server *b)
{
    for (int i = 0; i < WRITERS; i++) {
        memset(&writers[i], 0, sizeof(writers[i]));
        writers[i].bulwark = b;
        writers[i].id = i;
        assert_int_equal(pthread_create(&writers[i].thread, NULL, writer_main, &writers[i]), 0);
    }
    writers_running = true;
    /* Under load: wait (bounded) until the writers are running. */
    uint64_t t0 = bw_now_ms();
    while (atomic_load(&writers[0].writes) < 1000 || atomic_load(&writers[1].writes) < 1000) {
        assert_true(bw_now_ms() - t0 < 10000);
        usleep(1000);
    }
}

/* Stop the writers; returns the SETs they had answered. */
static unsigned long long
writers_stop(void)
{
    unsigned long long total = 0;
    writers_running = false;
    for (int i = 0; i < WRITERS; i++) {
        atomic_store(&writers[i].stop, true);
        pthread_join(writers[i].thread, NULL);
        total += atomic_load(&writers[i].writes);
    }
    return total;
}

/* Per-test teardown: a test that failed under load leaves no writer behind. */
static int
test_teardown(void **state)
{
    (void)state;
    if (writers_running)
        writers_stop();
    return 0;
}

/* ---- direct write, read through bulwark ---------------------------------- */

/* What the reads through bulwark returned. */
struct tally {
    int nil;    /* nil for a key just written: the failure of the issue */
    int wrong;  /* another value (or type) than the one just written */
    int errors; /* error replies (retried) */
    int reads;  /* pairs done */
};

/*
 * Run read (a GET or HGET through bc) until it answers without an error (at
 * most 5 s) and tally the reply against want.
 */
static void
read_tally(redisContext *bc, const char *want, struct tally *t, const char *fmt, ...)
{
    uint64_t t0 = bw_now_ms();
    t->reads++;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        redisReply *r = redisvCommand(bc, fmt, ap);
        va_end(ap);
        assert_non_null(r);
        bool err = r->type == REDIS_REPLY_ERROR;
        if (!err) {
            t->nil += r->type == REDIS_REPLY_NIL;
            t->wrong += r->type != REDIS_REPLY_NIL &&
                        (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0);
        }
        freeReplyObject(r);
        if (!err)
            return;
        t->errors++;
        assert_true(bw_now_ms() - t0 < 5000);
        usleep(5 * 1000);
    }
}

static void
direct_ok(redisContext *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(d, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("direct write failed: %s", r->str);
    freeReplyObject(r);
}

/*
 * n keys never seen before, each written directly on Redis (SET, or HSET
 * when hash) and read through bulwark as the very next request after the
 * write's reply. Prints and returns the tally.
 */
static struct tally
direct_then_read(bool hash, int n, const char *what)
{
    int run = ++env.run;
    char want[32];
    struct tally t = {0};
    harness_wait_gate(env.bulwark);
    redisContext *d = harness_redis_connect(env.redis);
    redisContext *bc = harness_redis_connect(env.bulwark);
    uint64_t t0 = bw_now_ms();
    for (int i = 0; i < n; i++) {
        snprintf(want, sizeof(want), "v%d", i);
        if (hash) {
            direct_ok(d, "HSET c:%d:%d f %s", run, i, want);
            read_tally(bc, want, &t, "HGET c:%d:%d f", run, i);
        } else {
            direct_ok(d, "SET c:%d:%d %s", run, i, want);
            read_tally(bc, want, &t, "GET c:%d:%d", run, i);
        }
    }
    redisFree(d);
    redisFree(bc);
    fprintf(stderr, "%s: %d nil, %d wrong of %d (%d errors retried) in %llu ms\n", what, t.nil,
            t.wrong, t.reads, t.errors, (unsigned long long)(bw_now_ms() - t0));
    return t;
}

static void
test_gate_set_get_idle(void **state)
{
    (void)state;
    struct tally t = direct_then_read(false, GATE_PAIRS, "direct SET, GET through bulwark, idle");
    assert_int_equal(t.nil, 0);
    assert_int_equal(t.wrong, 0);
}

static void
test_gate_hset_hget_idle(void **state)
{
    (void)state;
    struct tally t =
        direct_then_read(true, GATE_PAIRS, "direct HSET, HGET through bulwark, idle");
    assert_int_equal(t.nil, 0);
    assert_int_equal(t.wrong, 0);
}

static void
test_gate_set_get_under_writes(void **state)
{
    (void)state;
    writers_start(env.bulwark);
    struct tally t = direct_then_read(false, GATE_PAIRS,
                                      "direct SET, GET through bulwark, under writes through it");
    fprintf(stderr, "  (%llu SETs through bulwark meanwhile)\n", writers_stop());
    assert_int_equal(t.nil, 0);
    assert_int_equal(t.wrong, 0);
}

static void
test_gate_hset_hget_under_writes(void **state)
{
    (void)state;
    writers_start(env.bulwark);
    struct tally t =
        direct_then_read(true, GATE_PAIRS,
                         "direct HSET, HGET through bulwark, under writes through it");
    fprintf(stderr, "  (%llu SETs through bulwark meanwhile)\n", writers_stop());
    assert_int_equal(t.nil, 0);
    assert_int_equal(t.wrong, 0);
}

/*
 * CLIENT KILL TYPE type on Redis directly (it kills bulwark's watch
 * connections), then at once a direct SET of a new key and a GET through
 * bulwark, KILL_ROUNDS times under writes through bulwark; each round
 * starts with the gate closed again.
 */
static void
kill_then_read(const char *type)
{
    int run = ++env.run;
    char want[32];
    struct tally t = {0};
    long long killed = 0;
    writers_start(env.bulwark);
    redisContext *d = harness_redis_connect(env.redis);
    for (int i = 0; i < KILL_ROUNDS; i++) {
        harness_wait_gate(env.bulwark);
        redisContext *bc = harness_redis_connect(env.bulwark);
        redisReply *r = redisCommand(d, "CLIENT KILL TYPE %s", type);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        killed += r->integer;
        freeReplyObject(r);
        snprintf(want, sizeof(want), "v%d", i);
        direct_ok(d, "SET k:%d:%d %s", run, i, want);
        read_tally(bc, want, &t, "GET k:%d:%d", run, i);
        redisFree(bc);
    }
    redisFree(d);
    unsigned long long writes = writers_stop();
    fprintf(stderr,
            "CLIENT KILL TYPE %s (%lld connections killed), then direct SET, GET through "
            "bulwark: %d nil, %d wrong of %d (%d errors retried; %llu SETs through "
            "bulwark meanwhile)\n",
            type, killed, t.nil, t.wrong, t.reads, t.errors, writes);
    assert_true(killed >= KILL_ROUNDS); /* the watch was there to be killed */
    assert_int_equal(t.nil, 0);
    assert_int_equal(t.wrong, 0);
}

static void
test_kill_normal_then_read(void **state)
{
    (void)state;
    kill_then_read("normal");
}

static void
test_kill_pubsub_then_read(void **state)
{
    (void)state;
    kill_then_read("pubsub");
}

/*
 * A hot key (a bulwark with --hotkey-threshold 10, INFO hotkeys shows it
 * cached) changed directly on Redis and read through bulwark at once, HOT_PAIRS
 * times: always the new value.
 */
static void
test_hot_key_not_stale(void **state)
{
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(env.redis->port, HARNESS_ARGS("--hotkey-threshold", "10"));
    uint64_t t0 = bw_now_ms();
    while (harness_info_ll(b, "hotkeys", "hotkey_enabled") != 1) {
        assert_true(bw_now_ms() - t0 < 10000);
        usleep(10 * 1000);
    }
    redisContext *d = harness_redis_connect(env.redis);
    redisContext *bc = harness_redis_connect(b);
    direct_ok(d, "SET hot v-start");
    /* Make it hot: reads through bulwark until INFO hotkeys shows it cached. */
    t0 = bw_now_ms();
    while (harness_info_ll(b, "hotkeys", "hotkey_cached_keys") < 1) {
        for (int i = 0; i < 100; i++)
            freeReplyObject(redisCommand(bc, "GET hot"));
        assert_true(bw_now_ms() - t0 < 10000);
    }
    long long hits0 = harness_info_ll(b, "hotkeys", "hotkey_hits");
    struct tally t = {0};
    char want[32];
    for (int i = 0; i < HOT_PAIRS; i++) {
        snprintf(want, sizeof(want), "v%d", i);
        direct_ok(d, "SET hot %s", want);
        read_tally(bc, want, &t, "GET hot");
        read_tally(bc, want, &t, "GET hot"); /* a read the cache may serve */
    }
    long long hits = harness_info_ll(b, "hotkeys", "hotkey_hits") - hits0;
    long long cached = harness_info_ll(b, "hotkeys", "hotkey_cached_keys");
    redisFree(d);
    redisFree(bc);
    fprintf(stderr,
            "hot key changed directly, read through bulwark at once: %d stale (wrong), %d "
            "nil of %d reads (%d errors retried); %lld cache hits meanwhile, %lld cached "
            "at the end\n",
            t.wrong, t.nil, t.reads, t.errors, hits, cached);
    harness_bulwark_stop(b);
    assert_int_equal(t.wrong, 0);
    assert_int_equal(t.nil, 0);
}

int
main(void)
{
    harness_init(300);
    if (getenv("TEST_FILTER") != NULL) /* one test by name */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_teardown(test_gate_set_get_idle, test_teardown),
        cmocka_unit_test_teardown(test_gate_hset_hget_idle, test_teardown),
        cmocka_unit_test_teardown(test_gate_set_get_under_writes, test_teardown),
        cmocka_unit_test_teardown(test_gate_hset_hget_under_writes, test_teardown),
        cmocka_unit_test_teardown(test_kill_normal_then_read, test_teardown),
        cmocka_unit_test_teardown(test_kill_pubsub_then_read, test_teardown),
        cmocka_unit_test_teardown(test_hot_key_not_stale, test_teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
