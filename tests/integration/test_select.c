/*
 * test_select: every database through bulwark (issue #14) — SELECT as Redis
 * answers it, databases kept apart in one pipeline and across clients, and
 * the commands that cross databases (MOVE, COPY … DB, SWAPDB, FLUSHDB,
 * FLUSHALL, SELECT inside MULTI), through bulwark and behind its back,
 * never leaving a nil for a key that exists or an old value in a hot cache.
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

/* One command on c; its reply as a string ("(nil)", ":1", "+OK", "$v" …). */
static const char *
cmd(redisContext *c, char *buf, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    switch (r->type) {
    case REDIS_REPLY_NIL:
        snprintf(buf, size, "(nil)");
        break;
    case REDIS_REPLY_INTEGER:
        snprintf(buf, size, ":%lld", r->integer);
        break;
    case REDIS_REPLY_STATUS:
        snprintf(buf, size, "+%s", r->str);
        break;
    case REDIS_REPLY_ERROR:
        snprintf(buf, size, "-%s", r->str);
        break;
    case REDIS_REPLY_STRING:
        snprintf(buf, size, "$%s", r->str);
        break;
    default:
        snprintf(buf, size, "*%zu", r->elements);
    }
    freeReplyObject(r);
    return buf;
}

#define CMD(c, ...) cmd((c), buf, sizeof(buf), __VA_ARGS__)

/* SELECT's replies, byte for byte as Redis's, and CLIENT LIST's db=. */
static void
test_select_replies(void **state)
{
    (void)state;
    const char *req = "SELECT 1\r\nSELECT 15\r\nSELECT 16\r\nSELECT -1\r\nSELECT x\r\n"
                      "SELECT 99999999999\r\nSELECT\r\nSELECT 1 2\r\nSELECT 0\r\n";
    assert_true(harness_same(env.ref, env.bulwark, req, 9));
    struct harness_conn *c = harness_conn_open(env.bulwark);
    assert_true(harness_conn_roundtrip(c, "SELECT 7\r\n", "+OK\r\n"));
    harness_conn_send_str(c, "CLIENT INFO\r\n");
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(c, 2000, &got), HARNESS_READ_REPLY);
    assert_non_null(strstr(got.data, " db=7 "));
    harness_buf_free(&got);
    harness_conn_close(c);
}

/* A pipeline across SELECTs keeps its order and its databases (the probe). */
static void
test_pipeline_across_select(void **state)
{
    (void)state;
    const char *req = "FLUSHALL\r\nSELECT 1\r\nSET k v1\r\nSELECT 0\r\nGET k\r\nSET k v0\r\n"
                      "SELECT 1\r\nGET k\r\nGET k\r\nSELECT 2\r\nGET k\r\nMGET k x\r\n"
                      "SELECT 0\r\nGET k\r\nEXISTS k\r\n";
    for (int i = 0; i < 20; i++)
        assert_true(harness_same(env.ref, env.bulwark, req, 15));
}

/* Two clients on two databases, writing and reading the same names. */
static void
test_databases_kept_apart(void **state)
{
    (void)state;
    char buf[128];
    redisContext *a = harness_redis_connect(env.bulwark);
    redisContext *b = harness_redis_connect(env.bulwark);
    assert_string_equal(CMD(a, "SELECT 3"), "+OK");
    assert_string_equal(CMD(b, "SELECT 4"), "+OK");
    for (int round = 0; round < 50; round++) {
        for (int i = 0; i < 40; i++) {
            redisAppendCommand(a, "SET apart:%d a%d", i, round);
            redisAppendCommand(b, "SET apart:%d b%d", i, round);
            redisAppendCommand(a, "GET apart:%d", i);
            redisAppendCommand(b, "GET apart:%d", i);
        }
        char wa[32], wb[32];
        snprintf(wa, sizeof(wa), "a%d", round);
        snprintf(wb, sizeof(wb), "b%d", round);
        for (int i = 0; i < 80; i++) {
            redisReply *ra, *rb;
            assert_int_equal(redisGetReply(a, (void **)&ra), REDIS_OK);
            assert_int_equal(redisGetReply(b, (void **)&rb), REDIS_OK);
            if (i % 2 == 1) {
                assert_int_equal(ra->type, REDIS_REPLY_STRING);
                assert_string_equal(ra->str, wa);
                assert_string_equal(rb->str, wb);
            }
            freeReplyObject(ra);
            freeReplyObject(rb);
        }
    }
    redisContext *d = harness_redis_connect(env.redis);
    assert_string_equal(CMD(d, "SELECT 3"), "+OK");
    assert_string_equal(CMD(d, "GET apart:0"), "$a49");
    assert_string_equal(CMD(d, "SELECT 4"), "+OK");
    assert_string_equal(CMD(d, "GET apart:0"), "$b49");
    assert_string_equal(CMD(d, "SELECT 0"), "+OK");
    assert_string_equal(CMD(d, "EXISTS apart:0"), ":0");
    redisFree(d);
    redisFree(a);
    redisFree(b);
}

/* redis-cli -n 5 (it SELECTs on connect and warns, then runs, when refused). */
static void
test_redis_cli_n(void **state)
{
    (void)state;
    char line[512];
    snprintf(line, sizeof(line),
             "redis-cli -h %s -p %d -n 5 set cli:n five >/dev/null 2>&1 && "
             "redis-cli -h %s -p %d -n 5 get cli:n 2>&1",
             env.bulwark->host, env.bulwark->port, env.bulwark->host, env.bulwark->port);
    FILE *f = popen(line, "r");
    assert_non_null(f);
    char out[256] = "";
    assert_non_null(fgets(out, sizeof(out), f));
    pclose(f);
    assert_string_equal(out, "five\n");
    char buf[64];
    redisContext *d = harness_redis_connect(env.redis);
    assert_string_equal(CMD(d, "SELECT 5"), "+OK");
    assert_string_equal(CMD(d, "GET cli:n"), "$five");
    redisFree(d);
}

/* Make key hot in the current database of c (reads through bulwark). */
static void
heat(redisContext *c, const char *key)
{
    for (int i = 0; i < 200; i++)
        freeReplyObject(redisCommand(c, "GET %s", key));
}

/*
 * Each command that crosses databases, done through bulwark (via) or
 * directly on Redis (direct), then reads through bulwark at once: what
 * exists is never nil, and a hot key never shows its old value.
 */
static void
cross_database_commands(redisContext *via, const char *who)
{
    char buf[128];
    redisContext *b = harness_redis_connect(env.bulwark);
    redisContext *b1 = harness_redis_connect(env.bulwark);
    assert_string_equal(CMD(b1, "SELECT 1"), "+OK");
    assert_string_equal(CMD(via, "FLUSHALL"), "+OK");
    harness_wait_gate(env.bulwark);
    /* MOVE: the key leaves db 0 for db 1 */
    assert_string_equal(CMD(via, "SELECT 0"), "+OK");
    assert_string_equal(CMD(via, "SET mv v"), "+OK");
    heat(b, "mv");
    assert_string_equal(CMD(via, "MOVE mv 1"), ":1");
    assert_string_equal(CMD(b1, "GET mv"), "$v");
    assert_string_equal(CMD(b, "GET mv"), "(nil)");
    /* COPY … DB 2 */
    assert_string_equal(CMD(via, "SET cp orig"), "+OK");
    assert_string_equal(CMD(via, "COPY cp cp2 DB 2"), ":1");
    assert_string_equal(CMD(b1, "SELECT 2"), "+OK");
    assert_string_equal(CMD(b1, "GET cp2"), "$orig");
    /* SWAPDB 0 2: hot values of db 0 must not survive */
    assert_string_equal(CMD(via, "SET sw zero"), "+OK");
    heat(b, "sw");
    assert_string_equal(CMD(b, "GET sw"), "$zero");
    assert_string_equal(CMD(via, "SWAPDB 0 2"), "+OK");
    if (strcmp(who, "direct") == 0)
        usleep(1200 * 1000); /* seen by polling INFO commandstats, once a second */
    assert_string_equal(CMD(b, "GET sw"), "(nil)");
    assert_string_equal(CMD(b, "GET cp2"), "$orig");
    assert_string_equal(CMD(b1, "GET sw"), "$zero");
    /* FLUSHDB, SYNC and ASYNC: the other database keeps its keys */
    assert_string_equal(CMD(via, "SELECT 2"), "+OK");
    assert_string_equal(CMD(via, "FLUSHDB"), "+OK");
    assert_string_equal(CMD(b1, "GET sw"), "(nil)");
    assert_string_equal(CMD(b, "GET cp2"), "$orig");
    assert_string_equal(CMD(via, "SELECT 0"), "+OK");
    assert_string_equal(CMD(via, "SET fl kept"), "+OK");
    assert_string_equal(CMD(via, "SELECT 1"), "+OK");
    assert_string_equal(CMD(via, "FLUSHDB ASYNC"), "+OK");
    assert_string_equal(CMD(b, "GET fl"), "$kept");
    /* a key created in another database behind the gate: never nil */
    for (int i = 0; i < 200; i++) {
        assert_string_equal(CMD(via, "SELECT %d", i % 16), "+OK");
        assert_string_equal(CMD(via, "SET fresh:%s:%d v", who, i), "+OK");
        assert_string_equal(CMD(b1, "SELECT %d", i % 16), "+OK");
        assert_string_equal(CMD(b1, "GET fresh:%s:%d", who, i), "$v");
    }
    /* SELECT inside MULTI moves the client, as with Redis */
    assert_string_equal(CMD(b1, "SELECT 0"), "+OK");
    assert_string_equal(CMD(b1, "MULTI"), "+OK");
    assert_string_equal(CMD(b1, "SELECT 6"), "+QUEUED");
    assert_string_equal(CMD(b1, "SET inmulti six"), "+QUEUED");
    assert_string_equal(CMD(b1, "EXEC"), "*2");
    assert_string_equal(CMD(b1, "GET inmulti"), "$six");
    assert_string_equal(CMD(b, "GET inmulti"), "(nil)");
    assert_string_equal(CMD(via, "FLUSHALL"), "+OK");
    assert_string_equal(CMD(b1, "GET inmulti"), "(nil)");
    assert_string_equal(CMD(via, "SELECT 0"), "+OK");
    redisFree(b);
    redisFree(b1);
}

static void
test_cross_database_through_bulwark(void **state)
{
    (void)state;
    redisContext *via = harness_redis_connect(env.bulwark);
    cross_database_commands(via, "bulwark");
    redisFree(via);
}

static void
test_cross_database_behind_its_back(void **state)
{
    (void)state;
    redisContext *via = harness_redis_connect(env.redis);
    cross_database_commands(via, "direct");
    redisFree(via);
}

/*
 * SWAPDB names no key on the tracking channel. Found by resp-fuzz --dbs: a
 * SWAPDB between the databases' SCANs of a filter rebuild moved a key out of
 * a database not yet scanned, and the new filter missed it (the gate then
 * answered nil for a key that exists). Here the rebuild's SCAN is made slow
 * and the SWAPDB lands in it: the key must still be found.
 */
static void
test_swapdb_during_filter_rebuild(void **state)
{
    (void)state;
    char buf[128];
    struct harness_server *b =
        harness_bulwark_start(env.redis->port, HARNESS_ARGS("--bloom-scan-count", "10",
                                                            "--bloom-scan-interval", "5ms"));
    redisContext *d = harness_redis_connect(env.redis);
    assert_string_equal(CMD(d, "FLUSHALL"), "+OK");
    assert_string_equal(CMD(d, "SELECT 1"), "+OK");
    for (int i = 0; i < 2000; i++)
        freeReplyObject(redisCommand(d, "SET filler:%d x", i));
    assert_string_equal(CMD(d, "SELECT 5"), "+OK");
    assert_string_equal(CMD(d, "SET moved v"), "+OK");
    harness_wait_gate(b); /* the first build (and any a FLUSHALL started) is over */
    long long rebuilds = harness_info_ll(b, "bloom", "bloom_rebuilds");
    assert_string_equal(CMD(d, "SELECT 3"), "+OK");
    assert_string_equal(CMD(d, "FLUSHDB"), "+OK");    /* a rebuild starts: db 1, then db 5 */
    usleep(200 * 1000);                               /* db 1 takes ~1 s to scan */
    assert_string_equal(CMD(d, "SWAPDB 5 7"), "+OK"); /* db 7 is not in the build's list */
    uint64_t t0 = bw_now_ms();
    while (harness_info_ll(b, "bloom", "bloom_rebuilds") <= rebuilds)
        assert_true(bw_now_ms() - t0 < 20000);
    redisContext *c = harness_redis_connect(b);
    assert_string_equal(CMD(c, "SELECT 7"), "+OK");
    assert_string_equal(CMD(c, "GET moved"), "$v");
    assert_string_equal(CMD(c, "EXISTS moved"), ":1");
    redisFree(c);
    redisFree(d);
    harness_bulwark_stop(b);
}

/* The same bytes to ref and sub on their open connections; the same n replies. */
static bool
same_on(struct harness_conn *ref, struct harness_conn *sub, const char *bytes, size_t n)
{
    struct harness_script sc = {bytes, strlen(bytes), n, 0, 0, NULL};
    return harness_same_replies_on(ref, sub, &sc);
}

/*
 * Found by an adversarial pass: SELECTs in sessions whose reply bulwark must
 * follow — a failing SELECT after a good one (in MULTI, and pipelined after a
 * WATCH), pipelined transactions, an embedded NUL — end in the database Redis
 * ends in (each compared with a reference Redis, the GET at the end reads the
 * database the client is in).
 */
static void
test_session_selects_followed(void **state)
{
    (void)state;
    const char *setup = "FLUSHALL\r\nSELECT 3\r\nSET k three\r\nSELECT 0\r\nSET k zero\r\n";
    static const char *const cases[] = {
        "MULTI\r\nSELECT 3\r\nSELECT 99\r\nEXEC\r\nGET k\r\n",
        "WATCH x\r\nSELECT 3\r\nSELECT 99\r\nUNWATCH\r\nGET k\r\n",
        "BLPOP q 0.01\r\nSELECT 3\r\nSELECT 99\r\nGET k\r\n",
        "MULTI\r\nSELECT 3\r\nEXEC\r\nMULTI\r\nGET k\r\nEXEC\r\nGET k\r\n",
        "MULTI\r\nSELECT 3\r\nEXEC\r\nMULTI\r\nSELECT 99\r\nEXEC\r\nGET k\r\n",
        "WATCH k\r\nSET k changed\r\nMULTI\r\nSELECT 3\r\nEXEC\r\nGET k\r\n",
    };
    static const int replies[] = {5, 5, 4, 7, 7, 6};
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct harness_conn *r = harness_conn_open(env.ref), *b = harness_conn_open(env.bulwark);
        assert_true(same_on(r, b, setup, 5));
        assert_true(same_on(r, b, cases[i], (size_t)replies[i]));
        usleep(100 * 1000); /* the session ends */
        assert_true(same_on(r, b, "GET k\r\nSET k after\r\nGET k\r\n", 3));
        harness_conn_close(r);
        harness_conn_close(b);
    }
    /* MULTI right after UNSUBSCRIBE (adversarial pass: bulwark's unpin PING was
     * queued inside the transaction and every later reply came one behind) */
    {
        struct harness_conn *r2 = harness_conn_open(env.ref),
                            *b2 = harness_conn_open(env.bulwark);
        assert_true(same_on(r2, b2, "UNSUBSCRIBE\r\nMULTI\r\nSET a 1\r\n", 3));
        assert_true(same_on(r2, b2, "EXEC\r\nPING p0\r\n", 2));
        usleep(100 * 1000);
        assert_true(same_on(r2, b2, "PING p1\r\nGET a\r\n", 2));
        harness_conn_close(r2);
        harness_conn_close(b2);
    }
    /* SELECT "3\0": not an integer for Redis */
    const char nul[] = "*2\r\n$6\r\nSELECT\r\n$2\r\n3\0\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n";
    struct harness_conn *r = harness_conn_open(env.ref), *b = harness_conn_open(env.bulwark);
    struct harness_buf want = {0}, got = {0};
    harness_conn_send(r, nul, sizeof(nul) - 1, 0);
    harness_conn_send(b, nul, sizeof(nul) - 1, 0);
    for (int i = 0; i < 2; i++) {
        assert_int_equal(harness_conn_read_reply(r, 2000, &want), HARNESS_READ_REPLY);
        assert_int_equal(harness_conn_read_reply(b, 2000, &got), HARNESS_READ_REPLY);
    }
    assert_string_equal(got.data, want.data);
    harness_buf_free(&want);
    harness_buf_free(&got);
    harness_conn_close(r);
    harness_conn_close(b);
}

/* upstream-databases fewer than Redis's: a session cannot SELECT past it either. */
static void
test_upstream_databases_bound_in_sessions(void **state)
{
    (void)state;
    char buf[128];
    struct harness_server *b =
        harness_bulwark_start(env.redis->port, HARNESS_ARGS("--upstream-databases", "4"));
    redisContext *c = harness_redis_connect(b);
    assert_string_equal(CMD(c, "SELECT 4"), "-ERR DB index is out of range");
    assert_string_equal(CMD(c, "MULTI"), "+OK");
    assert_string_equal(CMD(c, "SELECT 10"), "-ERR DB index is out of range");
    assert_string_equal(CMD(c, "EXEC"),
                        "-EXECABORT Transaction discarded because of previous errors.");
    assert_string_equal(CMD(c, "BLPOP nolist 0.01"), "(nil)");
    assert_string_equal(CMD(c, "SET bound here"), "+OK");
    redisFree(c);
    redisContext *d = harness_redis_connect(env.redis);
    assert_string_equal(CMD(d, "SELECT 0"), "+OK");
    assert_string_equal(CMD(d, "GET bound"), "$here");
    redisFree(d);
    harness_bulwark_stop(b);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_select_replies),
        cmocka_unit_test(test_pipeline_across_select),
        cmocka_unit_test(test_databases_kept_apart),
        cmocka_unit_test(test_redis_cli_n),
        cmocka_unit_test(test_cross_database_through_bulwark),
        cmocka_unit_test(test_cross_database_behind_its_back),
        cmocka_unit_test(test_swapdb_during_filter_rebuild),
        cmocka_unit_test(test_session_selects_followed),
        cmocka_unit_test(test_upstream_databases_bound_in_sessions),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
