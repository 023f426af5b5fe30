/*
 * test_jitter: TTL jitter as a user sees it. Cache writes through bulwark get
 * TTLs spread over [ttl, ttl * 1.1]; locks, EXPIRE and invalid TTLs keep
 * Redis's exact meaning and replies; ttl-jitter-percent 0 turns it off.
 * TTLs are read from the upstream Redis directly.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/integration/harness.h"

static long long
pttl_direct(redisContext *direct, const char *key)
{
    redisReply *r = redisCommand(direct, "PTTL %s", key);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_INTEGER);
    long long v = r->integer;
    freeReplyObject(r);
    return v;
}

static void
test_set_ex_spread_over_ten_percent(void **state)
{
    enum { N = 10000, BUCKETS = 10 };
    int bucket[BUCKETS] = {0};
    (void)state;
    redisContext *b = harness_redis_connect(harness_env.bulwark);
    redisContext *d = harness_redis_connect(harness_env.upstream);
    for (int i = 0; i < N; i++)
        redisAppendCommand(b, "SET spread:%d v EX 600", i);
    for (int i = 0; i < N; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(b, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        assert_string_equal(r->str, "OK");
        freeReplyObject(r);
    }
    for (int i = 0; i < N; i++)
        redisAppendCommand(d, "PTTL spread:%d", i);
    for (int i = 0; i < N; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(d, (void **)&r), REDIS_OK);
        long long ms = r->integer;
        freeReplyObject(r);
        /* Written within the last few seconds: allow 5 s of elapsed time. */
        assert_true(ms > 595000 && ms <= 660000);
        long long off = ms < 600000 ? 0 : ms - 600000;
        int k = (int)(off * BUCKETS / 60001);
        bucket[k < BUCKETS ? k : BUCKETS - 1]++;
    }
    for (int k = 0; k < BUCKETS; k++) {
        fprintf(stderr, "tenth %d: %d keys\n", k, bucket[k]);
        assert_true(bucket[k] >= N * 5 / 100 && bucket[k] <= N * 15 / 100);
    }
    redisFree(b);
    redisFree(d);
}

static void
test_locks_and_expire_stay_exact(void **state)
{
    (void)state;
    redisContext *b = harness_redis_connect(harness_env.bulwark);
    redisContext *d = harness_redis_connect(harness_env.upstream);
    freeReplyObject(redisCommand(b, "SET lock:1 owner NX EX 600"));
    long long ms = pttl_direct(d, "lock:1");
    assert_true(ms > 595000 && ms <= 600000);
    freeReplyObject(redisCommand(b, "SET counter 1"));
    freeReplyObject(redisCommand(b, "EXPIRE counter 600"));
    ms = pttl_direct(d, "counter");
    assert_true(ms > 595000 && ms <= 600000);
    freeReplyObject(redisCommand(b, "SET keep v EX 600"));
    freeReplyObject(redisCommand(b, "SET keep v2 KEEPTTL"));
    long long kept = pttl_direct(d, "keep");
    assert_true(kept >= 595000 && kept <= 660000);
    redisFree(b);
    redisFree(d);
}

/* Replies to expiry edge cases are Redis's, byte for byte. */
static void
test_edge_replies_equal_redis(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "SET e1 v EX 0",
        "SET e1 v EX -5",
        "SET e1 v EX abc",
        "SET e1 v PX 0",
        "SET e1 v EX 9223372036854775807",
        "SET e1 v EX 9223372036854776",
        "SET e1 v EX 100 KEEPTTL",
        "SET e1 v EX 10 PX 10",
        "SET e1 v EX",
        "SETEX e2 0 v",
        "SETEX e2 -1 v",
        "SETEX e2 abc v",
        "PSETEX e2 0 v",
        "SETEX e2 100 v",
        "EXISTS e2",
        "SET e3 v EX 100",
        "PERSIST e3",
        "TTL e3",
        "SET e4 v KEEPTTL",
        "TTL e4",
        "SET e5 old EX 100",
        "SET e5 new EX 200 GET",
        "SET e5 x XX PX 100000 GET",
        "EXPIRE e5 -1",
        "EXISTS e5",
        "SET e6 v NX EX 100",
        "SET e6 v NX EX 100",
        "GETEX e6 PERSIST",
        "TTL e6",
    };
    struct harness_buf req = {0};
    for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++)
        harness_buf_command(&req, lines[i]);
    assert_true(harness_same(harness_env.ref, harness_env.bulwark, req.data,
                             sizeof(lines) / sizeof(lines[0])));
    harness_buf_free(&req);
}

static void
test_percent_zero_turns_it_off(void **state)
{
    (void)state;
    redisContext *b = harness_redis_connect(harness_env.bulwark);
    redisContext *d = harness_redis_connect(harness_env.upstream);
    redisReply *r = redisCommand(b, "CONFIG SET ttl-jitter-percent 0");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    for (int i = 0; i < 200; i++)
        freeReplyObject(redisCommand(b, "SET off:%d v EX 600", i));
    for (int i = 0; i < 200; i++) {
        char key[32];
        snprintf(key, sizeof(key), "off:%d", i);
        long long ms = pttl_direct(d, key);
        assert_true(ms > 595000 && ms <= 600000);
    }
    freeReplyObject(redisCommand(b, "CONFIG SET ttl-jitter-percent 10"));
    r = redisCommand(b, "INFO proxy");
    assert_non_null(strstr(r->str, "ttl_jittered_writes:"));
    freeReplyObject(r);
    redisFree(b);
    redisFree(d);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_ex_spread_over_ten_percent),
        cmocka_unit_test(test_locks_and_expire_stay_exact),
        cmocka_unit_test(test_edge_replies_equal_redis),
        cmocka_unit_test(test_percent_zero_turns_it_off),
    };
    return harness_finish(
        cmocka_run_group_tests(tests, harness_trio_setup, harness_trio_teardown));
}
