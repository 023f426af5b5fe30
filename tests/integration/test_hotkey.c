/*
 * test_hotkey: hot keys as clients see them — a hot key is served locally,
 * stays coherent with writes through bulwark and behind its back, and a
 * missing hot key is refilled by one client while the others wait (lease).
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
    env.bulwark = harness_bulwark_start(env.redis->port, HARNESS_ARGS("--hotkey-threshold", "50"));
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

static long long
info_field(const struct harness_server *s, const char *section, const char *name)
{
    redisContext *c = harness_redis_connect(s);
    redisReply *r = redisCommand(c, "INFO %s", section);
    char want[96];
    snprintf(want, sizeof(want), "%s", name);
    const char *p = strstr(r->str, want);
    long long v = p != NULL ? atoll(p + strlen(want)) : -1;
    freeReplyObject(r);
    redisFree(c);
    return v;
}

/* n pipelined GETs of key through bulwark; every reply must be want. */
static void
read_many(const char *key, int n, const char *want)
{
    redisContext *c = harness_redis_connect(env.bulwark);
    for (int i = 0; i < n; i++)
        redisAppendCommand(c, "GET %s", key);
    for (int i = 0; i < n; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_string_equal(r->str, want);
        freeReplyObject(r);
    }
    redisFree(c);
}

/* Wait (bounded) until the watch is up, so values may be cached. */
static void
wait_watch(void)
{
    uint64_t t0 = bw_now_ms();
    while (info_field(env.bulwark, "hotkeys", "hotkey_enabled:") != 1) {
        assert_true(bw_now_ms() - t0 < 10000);
        usleep(20 * 1000);
    }
}

static void
test_hot_key_served_locally(void **state)
{
    (void)state;
    wait_watch();
    redisContext *d = harness_redis_connect(env.redis);
    freeReplyObject(redisCommand(d, "SET hot:1 v1"));
    freeReplyObject(redisCommand(d, "CONFIG RESETSTAT"));
    read_many("hot:1", 5000, "v1");
    redisReply *r = redisCommand(d, "INFO commandstats");
    const char *p = strstr(r->str, "cmdstat_get:calls=");
    long long calls = p != NULL ? atoll(p + 18) : 0;
    freeReplyObject(r);
    redisFree(d);
    fprintf(stderr, "upstream GETs for 5000 reads of a hot key: %lld; hits %lld\n", calls,
            info_field(env.bulwark, "hotkeys", "hotkey_hits:"));
    assert_true(calls < 500);
    /* Now cached: further reads cost (almost) nothing upstream. */
    long long hits = info_field(env.bulwark, "hotkeys", "hotkey_hits:");
    d = harness_redis_connect(env.redis);
    freeReplyObject(redisCommand(d, "CONFIG RESETSTAT"));
    read_many("hot:1", 2000, "v1");
    r = redisCommand(d, "INFO commandstats");
    p = strstr(r->str, "cmdstat_get:calls=");
    calls = p != NULL ? atoll(p + 18) : 0;
    freeReplyObject(r);
    redisFree(d);
    assert_true(calls <= 10);
    assert_true(info_field(env.bulwark, "hotkeys", "hotkey_hits:") - hits >= 1900);
}

static void
test_coherent_with_writes(void **state)
{
    (void)state;
    read_many("hot:1", 2000, "v1"); /* cached */
    redisContext *b = harness_redis_connect(env.bulwark);
    freeReplyObject(redisCommand(b, "SET hot:1 v2"));
    redisReply *r = redisCommand(b, "GET hot:1"); /* read-your-write, at once */
    assert_string_equal(r->str, "v2");
    freeReplyObject(r);
    read_many("hot:1", 2000, "v2");
    redisContext *d = harness_redis_connect(env.redis);
    freeReplyObject(redisCommand(d, "SET hot:1 v3")); /* behind bulwark's back */
    redisFree(d);
    usleep(50 * 1000);
    read_many("hot:1", 100, "v3");
    redisFree(b);
}

static void
test_lease_holds_misses_until_refilled(void **state)
{
    (void)state;
    read_many("hot:2", 0, "");
    redisContext *d = harness_redis_connect(env.redis);
    freeReplyObject(redisCommand(d, "SET hot:2 a"));
    read_many("hot:2", 3000, "a");
    freeReplyObject(redisCommand(d, "DEL hot:2")); /* it expired, say */
    redisFree(d);
    usleep(50 * 1000);
    struct harness_conn *first = harness_conn_open(env.bulwark);
    assert_true(harness_conn_roundtrip(first, "GET hot:2\r\n", "$-1\r\n")); /* refills it */
    struct harness_conn *other = harness_conn_open(env.bulwark);
    harness_conn_send_str(other, "GET hot:2\r\n");
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(other, 50, &got), HARNESS_READ_TIMEOUT); /* held */
    harness_buf_reset(&got);
    assert_true(harness_conn_roundtrip(first, "SET hot:2 refilled\r\n", "+OK\r\n"));
    assert_int_equal(harness_conn_read_reply(other, 1000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, "$8\r\nrefilled\r\n");
    harness_buf_free(&got);
    assert_true(info_field(env.bulwark, "hotkeys", "hotkey_lease_holds:") >= 1);
    harness_conn_close(first);
    harness_conn_close(other);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hot_key_served_locally),
        cmocka_unit_test(test_coherent_with_writes),
        cmocka_unit_test(test_lease_holds_misses_until_refilled),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
