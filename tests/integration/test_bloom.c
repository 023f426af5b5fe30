/*
 * test_bloom: the Bloom filter gate as a user sees it. Keys written behind
 * bulwark's back (directly to Redis, by SET, HSET, LPUSH, RENAME, COPY,
 * RESTORE and EVAL) read back through bulwark 50 ms later — also after Redis
 * restarts, after a watch connection is killed and across a rebuild — while
 * reads of absent keys mostly never reach Redis.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

static struct {
    struct harness_server *redis;
    struct harness_server *bulwark;
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

/* Value of field name in INFO bloom through bulwark (static buffer). */
static const char *
bloom_field(const char *name)
{
    static char value[128];
    assert_true(harness_info_field(env.bulwark, "bloom", name, value, sizeof(value)));
    return value;
}

/* Wait (bounded) until bloom_rebuilds passes before: a new build ended. */
static void
wait_rebuild_after(long before)
{
    uint64_t t0 = bw_now_ms();
    while (atol(bloom_field("bloom_rebuilds")) <= before) {
        assert_true(bw_now_ms() - t0 < 10000);
        usleep(20 * 1000);
    }
}

/* Wait (bounded) until the gate is closed again: bloom_state active. */
static void
wait_gate_active(void)
{
    uint64_t t0 = bw_now_ms();
    while (strcmp(bloom_field("bloom_state"), "active") != 0) {
        assert_true(bw_now_ms() - t0 < 10000);
        usleep(20 * 1000);
    }
}

static void
run_direct(redisContext *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(d, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    if (r->type == REDIS_REPLY_ERROR)
        fail_msg("direct command failed: %s", r->str);
    freeReplyObject(r);
}

/*
 * Create n keys named "<tag>:<kind>:<i>" directly in Redis, cycling through
 * the ways a key comes to exist. Pipelined; returns after the last reply.
 */
static void
write_behind_back(const char *tag, int n)
{
    redisContext *d = harness_redis_connect(env.redis);
    redisReply *dump;
    run_direct(d, "SET %s:src v", tag);
    dump = redisCommand(d, "DUMP %s:src", tag);
    assert_int_equal(dump->type, REDIS_REPLY_STRING);
    for (int i = 0; i < n; i++) {
        switch (i % 7) {
        case 0:
            redisAppendCommand(d, "SET %s:%d v", tag, i);
            break;
        case 1:
            redisAppendCommand(d, "HSET %s:%d f v", tag, i);
            break;
        case 2:
            redisAppendCommand(d, "LPUSH %s:%d v", tag, i);
            break;
        case 3:
            redisAppendCommand(d, "SET %s:tmp%d v", tag, i);
            redisAppendCommand(d, "RENAME %s:tmp%d %s:%d", tag, i, tag, i);
            break;
        case 4:
            redisAppendCommand(d, "COPY %s:src %s:%d", tag, tag, i);
            break;
        case 5:
            redisAppendCommand(d, "RESTORE %s:%d 0 %b", tag, i, dump->str, dump->len);
            break;
        default:
            redisAppendCommand(d, "EVAL %s 1 %s:%d", "return redis.call('SET', KEYS[1], 'v')",
                               tag, i);
            break;
        }
    }
    int replies = 0;
    for (int i = 0; i < n; i++)
        replies += i % 7 == 3 ? 2 : 1;
    for (int i = 0; i < replies; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(d, (void **)&r), REDIS_OK);
        if (r->type == REDIS_REPLY_ERROR)
            fail_msg("write %d failed: %s", i, r->str);
        freeReplyObject(r);
    }
    freeReplyObject(dump);
    redisFree(d);
}

/* Through bulwark, every key "<tag>:<i>" must exist (EXISTS is gated). */
static void
read_back_through_bulwark(const char *tag, int n)
{
    redisContext *b = harness_redis_connect(env.bulwark);
    int missing = 0;
    for (int i = 0; i < n; i++)
        redisAppendCommand(b, "EXISTS %s:%d", tag, i);
    for (int i = 0; i < n; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(b, (void **)&r), REDIS_OK);
        if (r->type != REDIS_REPLY_INTEGER || r->integer != 1) {
            if (missing++ < 5)
                fprintf(stderr, "key %s:%d reads as absent through bulwark\n", tag, i);
        }
        freeReplyObject(r);
    }
    redisFree(b);
    assert_int_equal(missing, 0);
}

static void
test_no_false_negatives_for_writes_behind_its_back(void **state)
{
    (void)state;
    wait_gate_active();
    write_behind_back("nfn", 100000);
    usleep(50 * 1000);
    read_back_through_bulwark("nfn", 100000);
    assert_true(atoll(bloom_field("bloom_gated_reads")) >= 0);
}

static void
test_no_false_negatives_after_upstream_restart(void **state)
{
    (void)state;
    redisContext *d = harness_redis_connect(env.redis);
    run_direct(d, "SET restart:0 v");
    run_direct(d, "SAVE");
    redisFree(d);
    long before = atol(bloom_field("bloom_rebuilds"));
    harness_redis_restart(env.redis);
    /* Data reloaded from the RDB: keys written while bulwark was not watching. */
    wait_rebuild_after(before);
    wait_gate_active();
    read_back_through_bulwark("restart", 1);
    write_behind_back("afterrestart", 2000);
    usleep(50 * 1000);
    read_back_through_bulwark("afterrestart", 2000);
}

static void
test_no_false_negatives_after_watch_killed(void **state)
{
    (void)state;
    wait_gate_active();
    long before = atol(bloom_field("bloom_rebuilds"));
    redisContext *d = harness_redis_connect(env.redis);
    redisReply *r = redisCommand(d, "CLIENT LIST");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    int killed = 0;
    for (char *line = strstr(r->str, "id="); line != NULL; line = strstr(line + 1, "\nid=")) {
        char *p = line[0] == '\n' ? line + 1 : line;
        char *eol = strchr(p, '\n');
        if (strstr(p, "name=bulwark-watch") != NULL &&
            (eol == NULL || strstr(p, "name=bulwark-watch") < eol)) {
            run_direct(d, "CLIENT KILL ID %lld", atoll(p + 3));
            killed++;
        }
    }
    freeReplyObject(r);
    assert_true(killed >= 1);
    /* Written while the watch is down: the rebuild's SCAN must find them. */
    for (int i = 0; i < 500; i++)
        run_direct(d, "SET killed:%d v", i);
    redisFree(d);
    wait_rebuild_after(before);
    wait_gate_active();
    read_back_through_bulwark("killed", 500);
}

static void
test_no_false_negatives_across_a_rebuild(void **state)
{
    (void)state;
    wait_gate_active();
    long before = atol(bloom_field("bloom_rebuilds"));
    redisContext *d = harness_redis_connect(env.redis);
    run_direct(d, "FLUSHALL"); /* starts a rebuild, gate kept on the old filter */
    redisFree(d);
    write_behind_back("rebuild", 20000);
    usleep(50 * 1000);
    read_back_through_bulwark("rebuild", 20000);
    wait_gate_active();
    assert_true(atol(bloom_field("bloom_rebuilds")) > before);
    read_back_through_bulwark("rebuild", 20000);
}

/* 1M GETs of absent keys cost at most 1.5% as many upstream GETs (p = 1%). */
static void
test_absent_gets_mostly_answered_locally(void **state)
{
    (void)state;
    /* A filter filled to its capacity: the first sub-filter holds 1000 keys
     * and it grows to the 100k keys present, so the compound rate is the
     * configured one, not the near-zero of a mostly empty filter. */
    write_behind_back("present", 100000);
    struct harness_server *b =
        harness_bulwark_start(env.redis->port, HARNESS_ARGS("--bloom-capacity", "1000"));
    redisContext *d = harness_redis_connect(env.redis);
    uint64_t t0 = bw_now_ms();
    for (;;) { /* wait for its gate */
        redisContext *c = harness_redis_connect(b);
        redisReply *r = redisCommand(c, "INFO bloom");
        bool up = strstr(r->str, "bloom_state:active") != NULL;
        freeReplyObject(r);
        redisFree(c);
        if (up)
            break;
        assert_true(bw_now_ms() - t0 < 10000);
        usleep(20 * 1000);
    }
    run_direct(d, "CONFIG RESETSTAT");
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "redis-benchmark -p %d -t get -n 1000000 -r 1000000000 -c 50 -P 16 -q "
             ">/dev/null 2>&1",
             b->port);
    assert_int_equal(system(cmd), 0);
    harness_bulwark_stop(b);
    long long calls = harness_command_calls(env.redis, "get");
    redisFree(d);
    fprintf(stderr, "upstream GETs for 1M absent GETs: %lld\n", calls);
    assert_true(calls <= 15000);
}

int
main(void)
{
    harness_init(300);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_no_false_negatives_for_writes_behind_its_back),
        cmocka_unit_test(test_no_false_negatives_after_upstream_restart),
        cmocka_unit_test(test_no_false_negatives_after_watch_killed),
        cmocka_unit_test(test_no_false_negatives_across_a_rebuild),
        cmocka_unit_test(test_absent_gets_mostly_answered_locally),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
