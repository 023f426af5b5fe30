/*
 * test_resp3: RESP3 through bulwark (issue #15) — HELLO 3 and back, and
 * every reply a RESP3 client gets byte for byte what Redis 7.0 sends a RESP3
 * client: the gate's absent replies, coalesced GETs, hot-key answers, maps,
 * sets, doubles, verbatim strings, transactions, blocking commands, scripts
 * and pub/sub pushes interleaved with ordinary replies.
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
    struct harness_server *redis;   /* bulwark's upstream */
    struct harness_server *ref;     /* a reference Redis, for byte-equal replies */
    struct harness_server *bulwark; /* hot keys on at a low threshold */
} env;

static int
group_setup(void **state)
{
    (void)state;
    env.redis = harness_redis_start(NULL);
    env.ref = harness_reference_start(NULL);
    env.bulwark =
        harness_bulwark_start(env.redis->port, HARNESS_ARGS("--hotkey-threshold", "5",
                                                            "--ttl-jitter-percent", "0"));
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    harness_bulwark_stop(env.bulwark);
    harness_redis_stop(env.ref);
    harness_redis_stop(env.redis);
    return 0;
}

/* Requests (redis-cli syntax, one per line) as one pipelined multibulk string. */
static void
script_of(struct harness_buf *b, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        harness_buf_command(b, lines[i]);
}

/* The same lines on both servers, each reply byte-equal; conns already open. */
static void
same_on(struct harness_conn *ref, struct harness_conn *sub, const char *const *lines, size_t n)
{
    struct harness_buf b = {0};
    script_of(&b, lines, n);
    struct harness_script sc = {.bytes = b.data, .len = b.len, .nreplies = n, .labels = lines};
    assert_true(harness_same_replies_on(ref, sub, &sc));
    harness_buf_free(&b);
}

/* HELLO proto on c: its reply (the map, or the RESP2 array) minus the id. */
static void
hello(struct harness_conn *c, int proto, struct harness_buf *masked)
{
    char req[32];
    snprintf(req, sizeof(req), "HELLO %d\r\n", proto);
    harness_conn_send_str(c, req);
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(c, 5000, &got), HARNESS_READ_REPLY);
    char *id = strstr(got.data, "$2\r\nid\r\n:");
    assert_non_null(id);
    char *end = strstr(id + 9, "\r\n");
    harness_buf_append(masked, got.data, (size_t)(id + 9 - got.data));
    harness_buf_append(masked, end, got.len - (size_t)(end - got.data));
    harness_buf_free(&got);
}

/* HELLO 3 on both: the same map but for the client id. */
static void
hello_both(struct harness_conn *ref, struct harness_conn *sub, int proto)
{
    struct harness_buf a = {0}, b = {0};
    hello(ref, proto, &a);
    hello(sub, proto, &b);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
        struct harness_buf m = {0};
        harness_buf_escape(&m, a.data, a.len, 400);
        harness_buf_puts(&m, "\n  bulwark: ");
        harness_buf_escape(&m, b.data, b.len, 400);
        fail_msg("HELLO %d differs: redis: %s", proto, m.data);
    }
    assert_memory_equal(a.data, proto == 3 ? "%7\r\n" : "*14\r\n", proto == 3 ? 4 : 5);
    harness_buf_free(&a);
    harness_buf_free(&b);
}

/* Data both servers hold (written through bulwark to its upstream). */
static const char *const fill[] = {
    "FLUSHALL",
    "SET r3:s v",
    "HSET r3:h f1 v1 f2 v2",
    "ZADD r3:z 1.5 a 2 b",
    "SADD r3:set 1 2 3",
    "RPUSH r3:l a b c",
    "SET r3:gone x",
    "DEL r3:gone", /* in the Bloom filter, absent: answered by Redis, not the gate */
    "XADD r3:x 1-1 f v",
};

/* What a RESP3 client reads, across every way bulwark answers. */
static const char *const resp3_lines[] = {
    /* the gate (keys definitely absent) */
    "GET r3:nokey",
    "HGET r3:noh a",
    "HMGET r3:noh a b",
    "MGET r3:n1 r3:n2",
    "ZSCORE r3:noz a",
    "LINDEX r3:nol 0",
    "EXISTS r3:nokey",
    "TYPE r3:nokey",
    "TTL r3:nokey",
    "HGETALL r3:noh",
    /* passed the gate, absent at Redis: the batcher's and Redis's nulls */
    "GET r3:gone",
    "MGET r3:s r3:gone r3:nokey",
    "HGET r3:gone a",
    /* RESP3 types from Redis */
    "GET r3:s",
    "HGETALL r3:h",
    "HMGET r3:h f1 nof",
    "HRANDFIELD r3:noh",
    "ZSCORE r3:z a",
    "ZRANGE r3:z 0 -1 WITHSCORES",
    "ZMSCORE r3:z a nope",
    "ZRANK r3:z nope",
    "ZINCRBY r3:z 0.25 a",
    "SMEMBERS r3:set",
    "SISMEMBER r3:set 1",
    "SMISMEMBER r3:set 1 9",
    "LPOS r3:l z",
    "LPOP r3:nol",
    "GETDEL r3:nokey2",
    "INCRBYFLOAT r3:f 1.5",
    "XRANGE r3:x - +",
    "OBJECT ENCODING r3:z",
    "CONFIG GET maxmemory-policy",
    "CONFIG GET maxmemory",
    "GET r3:h",
    "NOSUCHCOMMAND x",
    "GET",
    "PING",
    "ECHO hi",
    /* scripts (dedicated connections) */
    "EVAL \"return redis.call('get', KEYS[1])\" 1 r3:nokey",
    "EVAL \"return {1, 'x', {2, false}}\" 0",
    "EVAL \"redis.setresp(3); return redis.call('hgetall', KEYS[1])\" 1 r3:h",
    /* a transaction and a blocking command (dedicated connections) */
    "MULTI",
    "GET r3:nokey",
    "HGETALL r3:h",
    "ZSCORE r3:z b",
    "EXEC",
    "BLPOP r3:nol 0.01",
    "BZPOPMIN r3:noz 0.01",
    "GET r3:nokey",
};

static void
test_resp3_replies(void **state)
{
    (void)state;
    struct harness_buf b = {0};
    script_of(&b, fill, BW_ARRAY_LEN(fill));
    assert_true(harness_same(env.ref, env.bulwark, b.data, BW_ARRAY_LEN(fill)));
    harness_buf_free(&b);
    harness_wait_gate(env.bulwark);

    struct harness_conn *ref = harness_conn_open(env.ref), *sub = harness_conn_open(env.bulwark);
    hello_both(ref, sub, 3);
    /* one by one, then the whole pipeline at once */
    for (size_t i = 0; i < BW_ARRAY_LEN(resp3_lines); i++)
        same_on(ref, sub, &resp3_lines[i], 1);
    same_on(ref, sub, resp3_lines, BW_ARRAY_LEN(resp3_lines));
    /* verbatim strings: INFO's section of Redis's, CLIENT INFO's shape */
    static const char *const verb[] = {"INFO keyspace"};
    same_on(ref, sub, verb, 1);
    harness_conn_send_str(sub, "CLIENT INFO\r\n");
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(sub, 2000, &got), HARNESS_READ_REPLY);
    assert_memory_equal(got.data, "=", 1);
    assert_non_null(strstr(got.data, "\r\ntxt:id="));
    assert_non_null(strstr(got.data, " resp=3\n\r\n"));
    harness_buf_free(&got);
    /* HELLO 2: back to RESP2's encodings */
    hello_both(ref, sub, 2);
    static const char *const back[] = {"GET r3:nokey",      "HGETALL r3:h",
                                       "ZSCORE r3:z a",     "MGET r3:s r3:gone",
                                       "BLPOP r3:nol 0.01", "CONFIG GET maxmemory-policy"};
    same_on(ref, sub, back, BW_ARRAY_LEN(back));
    harness_conn_close(ref);
    harness_conn_close(sub);
}

/* Many pipelined GETs (coalesced, hot keys, leases) as a RESP3 client reads them. */
static void
test_resp3_coalesced_and_hot(void **state)
{
    (void)state;
    harness_wait_gate(env.bulwark);
    struct harness_conn *ref = harness_conn_open(env.ref), *sub = harness_conn_open(env.bulwark);
    hello_both(ref, sub, 3);
    const char *lines[300];
    static const char *const keys[] = {"GET r3:s", "GET r3:gone", "GET r3:nokey", "GET r3:h",
                                       "MGET r3:s r3:gone r3:s"};
    for (size_t i = 0; i < BW_ARRAY_LEN(lines); i++)
        lines[i] = keys[i % BW_ARRAY_LEN(keys)];
    for (int round = 0; round < 3; round++) /* the keys become hot after the first */
        same_on(ref, sub, lines, BW_ARRAY_LEN(lines));
    assert_true(harness_info_ll(env.bulwark, "proxy", "batch_keys") > 0);
    harness_conn_close(ref);
    harness_conn_close(sub);
}

/* A pipeline keeps its order across HELLO 3 and HELLO 2 (two upstream connections). */
static void
test_hello_keeps_pipeline_order(void **state)
{
    (void)state;
    struct harness_conn *c = harness_conn_open(env.bulwark);
    for (int i = 0; i < 50; i++) {
        struct harness_buf req = {0};
        static const char *const lines[] = {"SET r3:o 1", "HELLO 3", "INCR r3:o",
                                            "GET r3:o",   "HELLO 2", "INCR r3:o",
                                            "GET r3:o",   "HELLO 3", "GET r3:o"};
        script_of(&req, lines, BW_ARRAY_LEN(lines));
        harness_conn_send(c, req.data, req.len, 0);
        static const char *const want[] = {"+OK\r\n",     NULL, ":2\r\n",
                                           "$1\r\n2\r\n", NULL, ":3\r\n",
                                           "$1\r\n3\r\n", NULL, "$1\r\n3\r\n"};
        for (size_t j = 0; j < BW_ARRAY_LEN(want); j++) {
            struct harness_buf got = {0};
            assert_int_equal(harness_conn_read_reply(c, 5000, &got), HARNESS_READ_REPLY);
            if (want[j] != NULL) {
                assert_int_equal(got.len, strlen(want[j]));
                assert_memory_equal(got.data, want[j], got.len);
            }
            harness_buf_free(&got);
        }
        harness_buf_free(&req);
    }
    harness_conn_close(c);
}

/* Read every reply on c until none comes for a moment; append them all to out. */
static void
drain_into(struct harness_conn *c, struct harness_buf *out, int first_ms)
{
    int wait = first_ms;
    for (;;) {
        struct harness_buf got = {0};
        enum harness_read r = harness_conn_read_reply(c, wait, &got);
        if (r != HARNESS_READ_REPLY) {
            harness_buf_free(&got);
            return;
        }
        harness_buf_append(out, got.data, got.len);
        harness_buf_free(&got);
        wait = 300;
    }
}

/* One server's view of a RESP3 subscriber: pushes and replies interleaved. */
static void
subscriber_session(const struct harness_server *s, struct harness_buf *seen)
{
    struct harness_conn *sub = harness_conn_open(s), *pub = harness_conn_open(s);
    harness_conn_send_str(sub, "HELLO 3\r\n");
    struct harness_buf skip = {0};
    assert_int_equal(harness_conn_read_reply(sub, 5000, &skip), HARNESS_READ_REPLY);
    harness_buf_free(&skip);
    harness_conn_send_str(sub, "SUBSCRIBE r3:ch1 r3:ch2\r\nPSUBSCRIBE r3:p*\r\n");
    drain_into(sub, seen, 2000);
    assert_true(harness_conn_roundtrip(pub, "PUBLISH r3:ch1 hello\r\n", ":1\r\n"));
    assert_true(harness_conn_roundtrip(pub, "PUBLISH r3:px both\r\n", ":1\r\n"));
    drain_into(sub, seen, 2000);
    /* ordinary commands while subscribed: RESP3 allows them */
    harness_conn_send_str(sub, "PING\r\nGET r3:s\r\nGET r3:nokey\r\nHGETALL r3:h\r\n"
                               "UNSUBSCRIBE r3:ch1\r\nPING x\r\n");
    drain_into(sub, seen, 2000);
    assert_true(harness_conn_roundtrip(pub, "PUBLISH r3:ch2 again\r\n", ":1\r\n"));
    drain_into(sub, seen, 2000);
    harness_conn_send_str(sub, "UNSUBSCRIBE\r\nPUNSUBSCRIBE\r\nUNSUBSCRIBE\r\nGET r3:s\r\n");
    drain_into(sub, seen, 2000);
    harness_conn_close(pub);
    harness_conn_close(sub);
}

static void
test_resp3_pubsub(void **state)
{
    (void)state;
    harness_wait_gate(env.bulwark);
    struct harness_buf a = {0}, b = {0};
    subscriber_session(env.ref, &a);
    subscriber_session(env.bulwark, &b);
    if (a.len != b.len || memcmp(a.data, b.data, a.len) != 0) {
        struct harness_buf m = {0};
        harness_buf_escape(&m, a.data, a.len, 2000);
        harness_buf_puts(&m, "\n  bulwark: ");
        harness_buf_escape(&m, b.data, b.len, 2000);
        fail_msg("RESP3 subscriber differs:\n  redis: %s", m.data);
    }
    harness_buf_free(&a);
    harness_buf_free(&b);
}

/* HELLO's own errors and options, as Redis answers them. */
static void
test_hello_errors(void **state)
{
    (void)state;
    const char *req = "HELLO 4\r\nHELLO 1\r\nHELLO x\r\nHELLO 3 SETNAME\r\nHELLO 3 FOO\r\n"
                      "HELLO 3 AUTH default\r\nCLIENT GETNAME\r\n";
    assert_true(harness_same(env.ref, env.bulwark, req, 7));
}

/* A RESP2 subscriber's CLIENT ID / INFO are refused with Redis's own error, in order,
 * and the connection goes on (a placeholder's length was once off by two). */
static void
test_resp2_subscribed_client_commands(void **state)
{
    (void)state;
    const char *req = "SUBSCRIBE r3:c1\r\nCLIENT ID\r\nCLIENT INFO\r\nPING\r\n"
                      "UNSUBSCRIBE\r\nPING\r\n";
    assert_true(harness_same(env.ref, env.bulwark, req, 6));
    struct harness_conn *c = harness_conn_open(env.bulwark);
    harness_conn_send_str(c, "SUBSCRIBE r3:c1\r\nHELLO 3\r\nPING\r\n");
    struct harness_buf got = {0};
    for (int i = 0; i < 3; i++) {
        harness_buf_reset(&got);
        assert_int_equal(harness_conn_read_reply(c, 5000, &got), HARNESS_READ_REPLY);
    }
    assert_string_equal(got.data, "*2\r\n$4\r\npong\r\n$0\r\n\r\n"); /* still subscribed */
    harness_buf_free(&got);
    harness_conn_close(c);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_resp3_replies),
        cmocka_unit_test(test_resp3_coalesced_and_hot),
        cmocka_unit_test(test_hello_keeps_pipeline_order),
        cmocka_unit_test(test_resp3_pubsub),
        cmocka_unit_test(test_hello_errors),
        cmocka_unit_test(test_resp2_subscribed_client_commands),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
