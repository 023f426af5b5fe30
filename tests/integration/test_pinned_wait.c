/*
 * test_pinned_wait: requests that need a dedicated upstream connection when
 * every one is taken (upstream-pinned-max) wait for one, in order; when the
 * wait (upstream-pinned-wait) times out, nothing a client pipelined after a
 * refused MULTI runs outside a transaction; no file descriptor is reported
 * as such; QUIT in every pinned state answers +OK and closes, as Redis.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* Clients of the BLPOP fleet tests. */
#define FLEET 1000

/* One command on a fresh sync connection to s; the reply is freed. */
static void
run(const struct harness_server *s, const char *cmd)
{
    redisContext *c = harness_redis_connect(s);
    redisReply *r = redisCommand(c, cmd);
    assert_non_null(r);
    freeReplyObject(r);
    redisFree(c);
}

/* GET key on s as a string ("" for nil), into out. */
static void
get_str(const struct harness_server *s, const char *key, char *out, size_t outlen)
{
    redisContext *c = harness_redis_connect(s);
    redisReply *r = redisCommand(c, "GET %s", key);
    assert_non_null(r);
    snprintf(out, outlen, "%s", r->type == REDIS_REPLY_STRING ? r->str : "");
    freeReplyObject(r);
    redisFree(c);
}

/* LLEN key on s. */
static long long
llen(const struct harness_server *s, const char *key)
{
    redisContext *c = harness_redis_connect(s);
    redisReply *r = redisCommand(c, "LLEN %s", key);
    assert_non_null(r);
    long long n = r->integer;
    freeReplyObject(r);
    redisFree(c);
    return n;
}

/* Poll b's INFO proxy until pinned_connections and pinned_waiting are as
 * given (waiting < 0: not looked at; 10 s deadline); fails the test with
 * what was seen last. */
static void
await_pinned(const struct harness_server *b, long long pinned, long long waiting)
{
    long long p = -1, w = -1;
    for (int i = 0; i < 1000; i++) {
        p = harness_info_ll(b, "proxy", "pinned_connections");
        w = harness_info_ll(b, "proxy", "pinned_waiting");
        if (p == pinned && (w == waiting || waiting < 0))
            return;
        usleep(10 * 1000);
    }
    fprintf(stderr, "pinned_connections %lld (want %lld), pinned_waiting %lld (want %lld)\n", p,
            pinned, w, waiting);
    fail();
}

/*
 * FLEET clients BLPOP one list through b; all block (pinned connections and
 * the queue counted as given), then another client RPUSHes FLEET items and
 * each waiter gets exactly one, none lost, none twice.
 */
static void
blpop_fleet(const struct harness_server *b, long long pinned, long long waiting)
{
    static struct harness_conn *w[FLEET];
    static bool seen[FLEET];
    memset(seen, 0, sizeof(seen));
    run(harness_env.upstream, "DEL jobs");
    for (int i = 0; i < FLEET; i++) {
        w[i] = harness_conn_open(b);
        harness_conn_send_str(w[i], "BLPOP jobs 0\r\n");
    }
    await_pinned(b, pinned, waiting);
    redisContext *p = harness_redis_connect(b);
    for (int i = 0; i < FLEET; i++)
        redisAppendCommand(p, "RPUSH jobs o%d", i);
    for (int i = 0; i < FLEET; i++) {
        redisReply *r;
        assert_int_equal(redisGetReply(p, (void **)&r), REDIS_OK);
        assert_int_equal(r->type, REDIS_REPLY_INTEGER);
        freeReplyObject(r);
    }
    redisFree(p);
    for (int i = 0; i < FLEET; i++) {
        struct harness_buf got = {0};
        int n = -1;
        assert_int_equal(harness_conn_read_reply(w[i], HARNESS_TIMEOUT_MS, &got),
                         HARNESS_READ_REPLY);
        const char *item = strstr(got.data, "\r\no");
        assert_non_null(item);
        assert_int_equal(strncmp(got.data, "*2\r\n$4\r\njobs\r\n$", 15), 0);
        n = atoi(item + 3);
        assert_true(n >= 0 && n < FLEET);
        assert_false(seen[n]);
        seen[n] = true;
        harness_buf_free(&got);
        harness_conn_close(w[i]);
    }
    assert_int_equal(llen(harness_env.upstream, "jobs"), 0);
}

/* 1,000 BLPOP workers, 50 dedicated connections: 950 wait their turn. */
static void
test_blpop_fleet_larger_than_pinned_max(void **state)
{
    (void)state;
    struct harness_server *b = harness_bulwark_start(harness_env.upstream->port,
                                                     HARNESS_ARGS("--upstream-pinned-max", "50"));
    blpop_fleet(b, 50, FLEET - 50);
    assert_int_equal(harness_info_ll(b, "proxy", "pinned_refused"), 0);
    harness_bulwark_stop(b);
}

/* The same fleet with the defaults: every worker blocks at once. */
static void
test_blpop_fleet_default_config(void **state)
{
    (void)state;
    blpop_fleet(harness_env.bulwark, FLEET, 0);
}

/* Every dedicated connection of b (n) held by a client in BLPOP busy 0. */
static void
hold_all(const struct harness_server *b, struct harness_conn **h, int n)
{
    for (int i = 0; i < n; i++) {
        h[i] = harness_conn_open(b);
        harness_conn_send_str(h[i], "BLPOP busy 0\r\n");
    }
    await_pinned(b, n, -1);
}

/* Free the holders: one item each, then close them. */
static void
release_all(struct harness_conn **h, int n)
{
    for (int i = 0; i < n; i++)
        run(harness_env.upstream, "RPUSH busy x");
    for (int i = 0; i < n; i++) {
        struct harness_buf got = {0};
        assert_int_equal(harness_conn_read_reply(h[i], HARNESS_TIMEOUT_MS, &got),
                         HARNESS_READ_REPLY);
        harness_buf_free(&got);
        harness_conn_close(h[i]);
    }
}

static const char order[] = "MULTI\r\nDECR stock\r\nRPUSH orders o1\r\nEXEC\r\n";

/*
 * The order: while every dedicated connection is in BLPOP, a
 * pipelined MULTI … EXEC waits (nothing of it applied, no reply), then
 * commits as one transaction once a connection frees.
 */
static void
test_transaction_waits_for_a_connection(void **state)
{
    (void)state;
    struct harness_conn *h[2];
    char v[32];
    struct harness_server *b =
        harness_bulwark_start(harness_env.upstream->port,
                              HARNESS_ARGS("--upstream-pinned-max", "2", "--upstream-pinned-wait",
                                           "10s"));
    run(harness_env.upstream, "SET stock 10");
    run(harness_env.upstream, "DEL orders busy");
    hold_all(b, h, 2);
    struct harness_conn *c = harness_conn_open(b);
    harness_conn_send_str(c, order);
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(c, 300, &got), HARNESS_READ_TIMEOUT);
    harness_buf_free(&got);
    get_str(harness_env.upstream, "stock", v, sizeof(v));
    assert_string_equal(v, "10");
    assert_int_equal(llen(harness_env.upstream, "orders"), 0);
    await_pinned(b, 2, 1);
    run(harness_env.upstream, "RPUSH busy x"); /* one holder gets it and leaves its connection */
    static const char *const want[] = {"+OK\r\n", "+QUEUED\r\n", "+QUEUED\r\n",
                                       "*2\r\n:9\r\n:1\r\n"};
    assert_true(harness_conn_pipeline(c, "", want, BW_ARRAY_LEN(want)));
    get_str(harness_env.upstream, "stock", v, sizeof(v));
    assert_string_equal(v, "9");
    assert_int_equal(llen(harness_env.upstream, "orders"), 1);
    harness_conn_close(c);
    for (int i = 0; i < 2; i++)
        harness_conn_close(h[i]);
    harness_bulwark_stop(b);
}

/*
 * The wait times out: MULTI gets Redis's no-room error, the commands up to
 * EXEC are refused as in a failed transaction, EXEC answers EXECABORT, and
 * nothing is applied; DISCARD ends it with +OK; after a refused WATCH the
 * next transaction is refused the same way (it would run unprotected).
 */
static void
test_transaction_wait_times_out_applies_nothing(void **state)
{
    (void)state;
    struct harness_conn *h[1];
    char v[32];
    struct harness_server *b =
        harness_bulwark_start(harness_env.upstream->port,
                              HARNESS_ARGS("--upstream-pinned-max", "1", "--upstream-pinned-wait",
                                           "300ms"));
    run(harness_env.upstream, "SET stock 10");
    run(harness_env.upstream, "DEL orders busy");
    hold_all(b, h, 1);
    struct harness_conn *c = harness_conn_open(b);
    static const char *const want[] =
        {"-ERR max number of clients reached\r\n", "-ERR max number of clients reached\r\n",
         "-ERR max number of clients reached\r\n",
         "-EXECABORT Transaction discarded because of previous errors.\r\n", "+PONG\r\n"};
    char req[256];
    snprintf(req, sizeof(req), "%sPING\r\n", order);
    assert_true(harness_conn_pipeline(c, req, want, BW_ARRAY_LEN(want)));
    get_str(harness_env.upstream, "stock", v, sizeof(v));
    assert_string_equal(v, "10");
    assert_int_equal(llen(harness_env.upstream, "orders"), 0);
    static const char *const want2[] = {"-ERR max number of clients reached\r\n",
                                        "-ERR max number of clients reached\r\n", "+OK\r\n",
                                        "$2\r\n10\r\n"};
    assert_true(harness_conn_pipeline(c, "MULTI\r\nDECR stock\r\nDISCARD\r\nGET stock\r\n", want2,
                                      BW_ARRAY_LEN(want2)));
    static const char *const want3[] =
        {"-ERR max number of clients reached\r\n",
         "$2\r\n10\r\n",
         "-ERR max number of clients reached\r\n",
         "-ERR max number of clients reached\r\n",
         "-EXECABORT Transaction discarded because of previous errors.\r\n",
         "+PONG\r\n"};
    assert_true(harness_conn_pipeline(
        c, "WATCH stock\r\nGET stock\r\nMULTI\r\nDECR stock\r\nEXEC\r\nPING\r\n", want3,
        BW_ARRAY_LEN(want3)));
    get_str(harness_env.upstream, "stock", v, sizeof(v));
    assert_string_equal(v, "10");
    assert_int_equal(harness_info_ll(b, "proxy", "pinned_refused"), 3);
    harness_conn_close(c);
    release_all(h, 1);
    harness_bulwark_stop(b);
}

/*
 * No file descriptor left for a dedicated connection: the client is told
 * that, not that upstream-pinned-max was reached. bulwark runs with
 * RLIMIT_NOFILE 100 and 60 descriptors taken before it starts (a wrapper
 * script), so its 20 clients' BLPOPs run out of descriptors.
 */
static void
test_no_file_descriptor_is_named(void **state)
{
    (void)state;
    enum { N = 20 };
    const char *real = getenv("BULWARK_BIN");
    if (real == NULL || getenv("BULWARK_ATTACH") != NULL)
        skip();
    char wrapper[600], saved[600];
    snprintf(saved, sizeof(saved), "%s", real);
    snprintf(wrapper, sizeof(wrapper), "%s/bulwark-fd-starved.sh", harness_tmpdir());
    FILE *f = fopen(wrapper, "w");
    assert_non_null(f);
    fprintf(f,
            "#!/bin/bash\n"
            "for i in $(seq 10 69); do eval \"exec $i</dev/null\"; done\n"
            "exec prlimit --nofile=100:100 '%s' \"$@\"\n",
            saved);
    fclose(f);
    assert_int_equal(chmod(wrapper, 0755), 0);
    setenv("BULWARK_BIN", wrapper, 1);
    struct harness_server *b =
        harness_bulwark_start(harness_env.upstream->port,
                              HARNESS_ARGS("--maxclients", "20", "--upstream-pinned-max", "20",
                                           "--upstream-pinned-wait", "1s"));
    setenv("BULWARK_BIN", saved, 1);
    struct harness_conn *c[N];
    int emfile = 0, blocked = 0, refused = 0;
    char want[256];
    snprintf(want, sizeof(want),
             "-ERR upstream 127.0.0.1:%d: cannot open a dedicated connection: Too many open "
             "files\r\n",
             harness_env.upstream->port);
    for (int i = 0; i < N; i++) {
        c[i] = harness_conn_open(b);
        harness_conn_send_str(c[i], "BLPOP fd:nothing 0\r\n");
    }
    for (int i = 0; i < N; i++) {
        struct harness_buf got = {0};
        enum harness_read rd = harness_conn_read_reply(c[i], 500, &got);
        if (rd == HARNESS_READ_TIMEOUT) {
            blocked++;
        } else if (rd == HARNESS_READ_REPLY &&
                   strcmp(got.data, "-ERR max number of clients reached\r\n") == 0) {
            refused++; /* no descriptor to accept it: refused through the spare one */
        } else {
            assert_int_equal(rd, HARNESS_READ_REPLY);
            assert_string_equal(got.data, want);
            emfile++;
        }
        harness_buf_free(&got);
        harness_conn_close(c[i]);
    }
    fprintf(stderr, "%d blocked, %d told Too many open files, %d refused at accept\n", blocked,
            emfile, refused);
    assert_true(emfile > 0 && blocked > 0);
    harness_bulwark_stop(b);
}

/* A script replayed on Redis and bulwark: n replies, then both close. */
static void
same_then_eof(const char *bytes, size_t n)
{
    struct harness_script sc = {bytes, strlen(bytes), n, 0, HARNESS_EXPECT_EOF, NULL};
    assert_true(harness_same_replies(harness_env.ref, harness_env.bulwark, &sc));
}

/* QUIT in every pinned state: +OK after every earlier reply, then closed. */
static void
test_quit_in_pinned_states(void **state)
{
    (void)state;
    static const char *const states[] = {"MULTI\r\n", "WATCH k\r\n"};
    for (size_t i = 0; i < BW_ARRAY_LEN(states); i++) {
        struct harness_conn *c = harness_conn_open(harness_env.bulwark);
        assert_true(harness_conn_roundtrip(c, states[i], "+OK\r\n"));
        assert_true(harness_conn_roundtrip(c, "QUIT\r\n", "+OK\r\n"));
        assert_int_equal(harness_conn_read_eof(c, 3000, NULL), HARNESS_READ_EOF);
        harness_conn_close(c);
    }
    same_then_eof("MULTI\r\nQUIT\r\nPING\r\n", 2);
    same_then_eof("MULTI\r\nSET quit:k 1\r\nQUIT\r\nPING\r\n", 3);
    same_then_eof("WATCH k\r\nQUIT\r\nPING\r\n", 2);
    same_then_eof("SUBSCRIBE ch\r\nQUIT\r\nPING\r\n", 2);
    same_then_eof("PSUBSCRIBE p*\r\nQUIT\r\nPING\r\n", 2);
    same_then_eof("BLPOP quit:nothing 1\r\nQUIT\r\nPING\r\n", 2); /* after the nil */
    assert_int_equal(llen(harness_env.upstream, "quit:k"), 0);
}

int
main(void)
{
    harness_init(0);
    /* FLEET clients, each a socket here and two in bulwark */
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 4096) {
        rl.rlim_cur = rl.rlim_max < 4096 ? rl.rlim_max : 4096;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_blpop_fleet_larger_than_pinned_max),
        cmocka_unit_test(test_blpop_fleet_default_config),
        cmocka_unit_test(test_transaction_waits_for_a_connection),
        cmocka_unit_test(test_transaction_wait_times_out_applies_nothing),
        cmocka_unit_test(test_no_file_descriptor_is_named),
        cmocka_unit_test(test_quit_in_pinned_states),
    };
    return harness_finish(
        cmocka_run_group_tests(tests, harness_trio_setup, harness_trio_teardown));
}
