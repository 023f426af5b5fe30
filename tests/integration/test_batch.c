/*
 * test_batch: GET coalescing as clients see it. Coalesced GETs answer exactly
 * what lone GETs would (values, nil, WRONGTYPE) in request order, in both
 * batch modes; hundreds of clients reading one key cost a handful of upstream
 * reads; a client gone mid-batch harms nobody.
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
    struct harness_server *upstream;
    struct harness_server *ref;
} env;

static int
group_setup(void **state)
{
    (void)state;
    env.upstream = harness_redis_start(NULL);
    env.ref = harness_reference_start(NULL);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    harness_redis_stop(env.upstream);
    harness_redis_stop(env.ref);
    return 0;
}

/* The same keys of every type on both servers. */
static void
seed(const struct harness_server *s)
{
    redisContext *c = harness_redis_connect(s);
    freeReplyObject(redisCommand(c, "FLUSHALL"));
    for (int i = 0; i < 50; i++) {
        freeReplyObject(redisCommand(c, "SET s:%d val%d", i, i));
        freeReplyObject(redisCommand(c, "RPUSH l:%d x", i));
        freeReplyObject(redisCommand(c, "SET s:%02d pad%d", i, i));
        freeReplyObject(redisCommand(c, "RPUSH l:%02d x", i));
    }
    freeReplyObject(redisCommand(c, "SET empty \"\""));
    redisFree(c);
}

/* A pipeline mixing GETs of strings, lists, absent keys with writes. */
static void
build_script(struct harness_buf *b, int client, size_t *n)
{
    *n = 0;
    for (int i = 0; i < 200; i++) {
        int k = (i * 7 + client) % 50;
        switch (i % 8) {
        case 0:
            harness_buf_printf(b, "*2\r\n$3\r\nGET\r\n$%d\r\ns:%d\r\n", k < 10 ? 3 : 4, k);
            break;
        case 1:
            harness_buf_printf(b, "*2\r\n$3\r\nGET\r\n$%d\r\nl:%d\r\n", k < 10 ? 3 : 4, k);
            break;
        case 2:
            harness_buf_printf(b, "*2\r\n$3\r\nGET\r\n$%d\r\nn:%d\r\n", k < 10 ? 3 : 4, k);
            break;
        case 3: /* MGET coalesced key by key: values, a list (nil), absent, dups */
            if (i % 16 == 3)
                harness_buf_command(b, "GET empty");
            else
                harness_buf_printf(b,
                                   "*6\r\n$4\r\nMGET\r\n$4\r\ns:%02d\r\n$4\r\nl:%02d\r\n"
                                   "$4\r\nn:%02d\r\n$5\r\nempty\r\n$4\r\ns:%02d\r\n",
                                   k, k, k, k);
            break;
        case 4:
            harness_buf_printf(b, "*3\r\n$3\r\nSET\r\n$6\r\nown:%02d\r\n$1\r\n%d\r\n", client,
                               i % 10);
            break;
        case 5:
            harness_buf_printf(b, "*2\r\n$3\r\nGET\r\n$6\r\nown:%02d\r\n", client);
            break;
        case 6:
            harness_buf_printf(b, "*2\r\n$4\r\nINCR\r\n$6\r\nctr:%02d\r\n", client);
            break;
        default:
            harness_buf_printf(b, "*2\r\n$3\r\nGET\r\n$6\r\nctr:%02d\r\n", client);
            break;
        }
        (*n)++;
    }
}

/* 20 clients at once through bulwark vs. the same 20 scripts against Redis. */
static void
concurrent_clients_match_redis(const char *mode)
{
    enum { NCLIENTS = 20 };
    seed(env.upstream);
    seed(env.ref);
    struct harness_server *b =
        harness_bulwark_start(env.upstream->port,
                              HARNESS_ARGS("--batch-mode", mode, "--batch-mget", "yes"));
    struct harness_conn *sub[NCLIENTS], *ref[NCLIENTS];
    struct harness_buf script[NCLIENTS];
    size_t n[NCLIENTS];
    memset(script, 0, sizeof(script));
    for (int i = 0; i < NCLIENTS; i++) {
        build_script(&script[i], i, &n[i]);
        sub[i] = harness_conn_open(b);
        ref[i] = harness_conn_open(env.ref);
    }
    for (int i = 0; i < NCLIENTS; i++) { /* all requests in flight together */
        harness_conn_send(sub[i], script[i].data, script[i].len, 0);
        harness_conn_send(ref[i], script[i].data, script[i].len, 0);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        for (size_t j = 0; j < n[i]; j++) {
            struct harness_buf a = {0}, e = {0};
            assert_int_equal(harness_conn_read_reply(sub[i], HARNESS_TIMEOUT_MS, &a),
                             HARNESS_READ_REPLY);
            assert_int_equal(harness_conn_read_reply(ref[i], HARNESS_TIMEOUT_MS, &e),
                             HARNESS_READ_REPLY);
            if (a.len != e.len || memcmp(a.data, e.data, a.len) != 0)
                fail_msg("client %d reply %zu: bulwark '%.60s' redis '%.60s'", i, j, a.data,
                         e.data);
            harness_buf_free(&a);
            harness_buf_free(&e);
        }
        harness_conn_close(sub[i]);
        harness_conn_close(ref[i]);
        harness_buf_free(&script[i]);
    }
    redisContext *c = harness_redis_connect(b);
    redisReply *r = redisCommand(c, "INFO proxy");
    assert_non_null(strstr(r->str, "batch_batches:"));
    assert_null(strstr(r->str, "batch_batches:0\r\n"));
    freeReplyObject(r);
    redisFree(c);
    harness_bulwark_stop(b);
}

static void
test_pipeline_mode_matches_lone_gets(void **state)
{
    (void)state;
    concurrent_clients_match_redis("pipeline");
}

static void
test_mget_mode_matches_lone_gets(void **state)
{
    (void)state;
    concurrent_clients_match_redis("mget");
}

/* redis-benchmark -t get -n 200000 -c 200 -P 16 on its one default key. */
static void
test_one_hot_key_costs_few_upstream_reads(void **state)
{
    (void)state;
    struct harness_server *b = harness_bulwark_start(env.upstream->port, NULL);
    redisContext *d = harness_redis_connect(env.upstream);
    freeReplyObject(redisCommand(d, "SET key:__rand_int__ xxx"));
    freeReplyObject(redisCommand(d, "CONFIG RESETSTAT"));
    char cmd[256];
    snprintf(cmd, sizeof(cmd),
             "redis-benchmark -p %d -t get -n 200000 -c 200 -P 16 -q >/dev/null 2>&1", b->port);
    assert_int_equal(system(cmd), 0);
    long long calls = harness_command_calls(env.upstream, "get") +
                      harness_command_calls(env.upstream, "mget");
    fprintf(stderr, "upstream GET+MGET calls for 200000 client GETs: %lld\n", calls);
    assert_true(calls <= 20000);
    redisFree(d);
    harness_bulwark_stop(b);
}

/* Clients that send many GETs and vanish; bulwark stays healthy. */
static void
test_clients_gone_mid_batch(void **state)
{
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(env.upstream->port, HARNESS_ARGS("--batch-max-keys", "4"));
    struct harness_buf req = {0};
    for (int i = 0; i < 2000; i++)
        harness_buf_printf(&req, "*2\r\n$3\r\nGET\r\n$%d\r\ns:%d\r\n", i % 50 < 10 ? 3 : 4,
                           i % 50);
    for (int round = 0; round < 20; round++) {
        struct harness_conn *c = harness_conn_open(b);
        harness_conn_send(c, req.data, req.len, 0);
        harness_conn_close(c);
    }
    harness_buf_free(&req);
    redisContext *c = harness_redis_connect(b);
    redisReply *r = redisCommand(c, "GET s:1");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    freeReplyObject(r);
    r = redisCommand(c, "INFO proxy");
    const char *p = strstr(r->str, "batch_max_keys_seen:");
    assert_non_null(p);
    assert_true(atoi(p + strlen("batch_max_keys_seen:")) <= 4);
    freeReplyObject(r);
    redisFree(c);
    harness_bulwark_stop(b); /* exit status 0: no crash, no sanitizer report */
}

/*
 * batch-mget yes in pipeline mode: an MGET longer than batch-max-keys is
 * flushed part by part; the parts after the last forced flush must still
 * reach Redis before the client's next forwarded request (found by the
 * adversarial trial: MGET k0..k9 then DEL k9 answered nil for k9).
 */
static void
test_split_mget_then_write_keeps_order(void **state)
{
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(env.upstream->port,
                              HARNESS_ARGS("--batch-mode", "pipeline", "--batch-mget", "yes",
                                           "--batch-max-keys", "4"));
    redisContext *d = harness_redis_connect(env.upstream);
    freeReplyObject(redisCommand(d, "FLUSHALL"));
    for (int i = 0; i < 10; i++)
        freeReplyObject(redisCommand(d, "SET k%d v%d", i, i));
    redisFree(d);
    struct harness_conn *c = harness_conn_open(b);
    for (int round = 0; round < 3; round++) {
        const char *const expect[] =
            {"*10\r\n$2\r\nv0\r\n$2\r\nv1\r\n$2\r\nv2\r\n$2\r\nv3\r\n$2\r\nv4\r\n"
             "$2\r\nv5\r\n$2\r\nv6\r\n$2\r\nv7\r\n$2\r\nv8\r\n$2\r\nv9\r\n",
             ":1\r\n", "$-1\r\n"};
        assert_true(harness_conn_pipeline(c,
                                          "MGET k0 k1 k2 k3 k4 k5 k6 k7 k8 k9\r\n"
                                          "DEL k9\r\nGET k9\r\n",
                                          expect, 3));
        assert_true(harness_conn_roundtrip(c, "SET k9 v9\r\n", "+OK\r\n"));
    }
    harness_conn_close(c);
    harness_bulwark_stop(b);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pipeline_mode_matches_lone_gets),
        cmocka_unit_test(test_mget_mode_matches_lone_gets),
        cmocka_unit_test(test_one_hot_key_costs_few_upstream_reads),
        cmocka_unit_test(test_clients_gone_mid_batch),
        cmocka_unit_test(test_split_mget_then_write_keeps_order),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
