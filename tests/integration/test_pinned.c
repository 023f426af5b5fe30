/*
 * test_pinned: stateful commands through bulwark on dedicated upstream
 * connections — transactions and their errors byte for byte as Redis,
 * WATCH optimistic locking under contention, blocking pops (each element to
 * exactly one waiter, none to a client that left), pub/sub, and the
 * upstream-pinned-max limit.
 */
#include <pthread.h>
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

static void
send_lines(struct harness_buf *b, const char *const *lines, size_t n)
{
    for (size_t i = 0; i < n; i++)
        harness_buf_command(b, lines[i]);
}

static void
test_transactions_equal_redis(void **state)
{
    (void)state;
    static const char *const lines[] = {
        "FLUSHALL",   "MULTI",           "SET t 1", "INCR t",  "GET t",   "LPUSH t x",
        "EXEC",       "GET t",           "MULTI",   "SET t 5", "DISCARD", "GET t",
        "EXEC",       "DISCARD",         "MULTI",   "MULTI",   "DISCARD", "MULTI",
        "SET t 9",    "NOSUCHCOMMAND x", "EXEC",    "GET t",   "MULTI",   "GET",
        "EXEC",       "MULTI",           "WATCH t", "DISCARD", "WATCH t", "UNWATCH",
        "WATCH t",    "MULTI",           "INCR t",  "EXEC",    "GET t",   "PING",
        "ECHO after",
    };
    struct harness_buf req = {0};
    send_lines(&req, lines, BW_ARRAY_LEN(lines));
    assert_true(
        harness_same(harness_env.ref, harness_env.bulwark, req.data, BW_ARRAY_LEN(lines)));
    harness_buf_free(&req);
}

/* WATCH/MULTI/EXEC retry loops of several clients on one counter. */
struct incr_job {
    const struct harness_server *server; /* bulwark */
    int increments;                      /* successful increments to do */
    int retries;                         /* EXECs that came back nil */
};

static void *
watch_incr_worker(void *arg)
{
    struct incr_job *job = arg;
    redisContext *c = redisConnect(job->server->host, job->server->port);
    for (int done = 0; done < job->increments;) {
        freeReplyObject(redisCommand(c, "WATCH counter"));
        redisReply *v = redisCommand(c, "GET counter");
        long long n = v->type == REDIS_REPLY_STRING ? atoll(v->str) : 0;
        freeReplyObject(v);
        freeReplyObject(redisCommand(c, "MULTI"));
        freeReplyObject(redisCommand(c, "SET counter %lld", n + 1));
        redisReply *r = redisCommand(c, "EXEC");
        if (r->type == REDIS_REPLY_ARRAY)
            done++;
        else
            job->retries++;
        freeReplyObject(r);
    }
    redisFree(c);
    return NULL;
}

static void
test_watch_optimistic_locking(void **state)
{
    /* 10 x 200 in the suite; the 50 x 1000 with
     * BULWARK_WATCH_CLIENTS=50 BULWARK_WATCH_EACH=1000. */
    enum { MAX_CLIENTS = 64 };
    int CLIENTS = getenv("BULWARK_WATCH_CLIENTS") ? atoi(getenv("BULWARK_WATCH_CLIENTS")) : 10;
    int EACH = getenv("BULWARK_WATCH_EACH") ? atoi(getenv("BULWARK_WATCH_EACH")) : 200;
    pthread_t t[MAX_CLIENTS];
    struct incr_job jobs[MAX_CLIENTS];
    (void)state;
    assert_true(CLIENTS >= 1 && CLIENTS <= MAX_CLIENTS);
    redisContext *c = harness_redis_connect(harness_env.bulwark);
    freeReplyObject(redisCommand(c, "DEL counter"));
    for (int i = 0; i < CLIENTS; i++) {
        jobs[i] = (struct incr_job){harness_env.bulwark, EACH, 0};
        assert_int_equal(pthread_create(&t[i], NULL, watch_incr_worker, &jobs[i]), 0);
    }
    int retries = 0;
    for (int i = 0; i < CLIENTS; i++) {
        pthread_join(t[i], NULL);
        retries += jobs[i].retries;
    }
    redisReply *r = redisCommand(c, "GET counter");
    fprintf(stderr, "counter %s after %d increments, %d EXEC retries\n", r->str, CLIENTS * EACH,
            retries);
    assert_int_equal(atoi(r->str), CLIENTS * EACH);
    freeReplyObject(r);
    redisFree(c);
}

static void
test_blocked_clients_get_one_element_each(void **state)
{
    enum { N = 50 };
    struct harness_conn *w[N];
    (void)state;
    for (int i = 0; i < N; i++) {
        char cmd[64];
        w[i] = harness_conn_open(harness_env.bulwark);
        snprintf(cmd, sizeof(cmd), "BLPOP queue:%d 10\r\n", i);
        harness_conn_send_str(w[i], cmd);
    }
    /* a client that leaves while blocked must not consume an element */
    struct harness_conn *gone = harness_conn_open(harness_env.bulwark);
    harness_conn_send_str(gone, "BLPOP queue:gone 10\r\n");
    usleep(200 * 1000);
    harness_conn_close(gone);
    usleep(200 * 1000);
    redisContext *d = harness_redis_connect(harness_env.upstream);
    for (int i = 0; i < N; i++)
        freeReplyObject(redisCommand(d, "RPUSH queue:%d item%d", i, i));
    freeReplyObject(redisCommand(d, "RPUSH queue:gone lost"));
    for (int i = 0; i < N; i++) {
        struct harness_buf got = {0};
        char want[128];
        assert_int_equal(harness_conn_read_reply(w[i], 5000, &got), HARNESS_READ_REPLY);
        snprintf(want, sizeof(want), "*2\r\n$%d\r\nqueue:%d\r\n$%d\r\nitem%d\r\n", i < 10 ? 7 : 8,
                 i, i < 10 ? 5 : 6, i);
        assert_string_equal(got.data, want);
        harness_buf_free(&got);
        /* unpinned afterwards: an ordinary GET works on the same connection */
        assert_true(harness_conn_roundtrip(w[i], "GET nokey\r\n", "$-1\r\n"));
        harness_conn_close(w[i]);
    }
    redisReply *r = redisCommand(d, "LLEN queue:gone");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(d);
}

static void
test_pubsub_through_bulwark(void **state)
{
    (void)state;
    struct harness_conn *sub = harness_conn_open(harness_env.bulwark);
    harness_conn_send_str(sub, "SUBSCRIBE news\r\n");
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(sub, 5000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, "*3\r\n$9\r\nsubscribe\r\n$4\r\nnews\r\n:1\r\n");
    harness_buf_reset(&got);
    redisContext *p = harness_redis_connect(harness_env.bulwark);
    redisReply *r = redisCommand(p, "PUBLISH news hello");
    assert_int_equal(r->integer, 1);
    freeReplyObject(r);
    redisFree(p);
    assert_int_equal(harness_conn_read_reply(sub, 5000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, "*3\r\n$7\r\nmessage\r\n$4\r\nnews\r\n$5\r\nhello\r\n");
    harness_buf_free(&got);
    assert_true(harness_conn_roundtrip(
        sub, "GET x\r\n",
        "-ERR Can't execute 'get': only (P|S)SUBSCRIBE / (P|S)UNSUBSCRIBE / PING / QUIT / RESET "
        "are allowed in this context\r\n"));
    assert_true(harness_conn_roundtrip(sub, "UNSUBSCRIBE\r\n",
                                       "*3\r\n$11\r\nunsubscribe\r\n$4\r\nnews\r\n:0\r\n"));
    assert_true(harness_conn_roundtrip(sub, "SET after 1\r\n", "+OK\r\n"));
    harness_conn_close(sub);
}

static void
test_pool_limit(void **state)
{
    enum { LIMIT = 10 };
    struct harness_conn *c[LIMIT + 1];
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(harness_env.upstream->port,
                              HARNESS_ARGS("--upstream-pinned-max", "10",
                                           "--upstream-pinned-wait", "200ms"));
    for (int i = 0; i < LIMIT; i++) {
        c[i] = harness_conn_open(b);
        assert_true(harness_conn_roundtrip(c[i], "MULTI\r\n", "+OK\r\n"));
    }
    c[LIMIT] = harness_conn_open(b);
    struct harness_buf got = {0};
    harness_conn_send_str(c[LIMIT], "MULTI\r\n");
    assert_int_equal(harness_conn_read_reply(c[LIMIT], 5000, &got), HARNESS_READ_REPLY);
    /* after upstream-pinned-wait: Redis's own error for a server with no room */
    assert_string_equal(got.data, "-ERR max number of clients reached\r\n");
    harness_buf_free(&got);
    /* the refused MULTI is a failed transaction until DISCARD (test_pinned_wait.c) */
    assert_true(harness_conn_roundtrip(c[LIMIT], "DISCARD\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(c[LIMIT], "PING\r\n", "+PONG\r\n")); /* still served */
    for (int i = 0; i < LIMIT; i++) {
        assert_true(harness_conn_roundtrip(c[i], "INCR limit\r\n", "+QUEUED\r\n"));
        struct harness_buf r = {0};
        harness_conn_send_str(c[i], "EXEC\r\n");
        assert_int_equal(harness_conn_read_reply(c[i], 5000, &r), HARNESS_READ_REPLY);
        assert_int_equal(r.data[0], '*');
        harness_buf_free(&r);
        harness_conn_close(c[i]);
    }
    harness_conn_close(c[LIMIT]);
    redisContext *d = harness_redis_connect(harness_env.upstream);
    redisReply *r = redisCommand(d, "GET limit");
    assert_string_equal(r->str, "10");
    freeReplyObject(r);
    redisFree(d);
    harness_bulwark_stop(b);
}

/* Requests bulwark refuses inside MULTI abort the transaction, as Redis's own
 * rejections do, and leave the connection open; a failed AUTH of an ACL user
 * leaves the client as it was. */
static void
test_refusals_inside_a_session(void **state)
{
    (void)state;
    struct harness_conn *c = harness_conn_open(harness_env.bulwark);
    assert_true(harness_conn_roundtrip(c, "CLIENT SETNAME me\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(
        c, "AUTH not-a-user nopass\r\n",
        "-WRONGPASS invalid username-password pair or user is disabled.\r\n"));
    assert_true(harness_conn_roundtrip(c, "CLIENT GETNAME\r\n", "$2\r\nme\r\n"));
    assert_true(harness_conn_roundtrip(c, "MULTI\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(c, "SET refused v\r\n", "+QUEUED\r\n"));
    assert_true(harness_conn_roundtrip(
        c, "DEBUG sleep 0\r\n",
        "-ERR command 'DEBUG' is disabled in bulwark (deny-commands)\r\n"));
    assert_true(harness_conn_roundtrip(
        c, "EXEC\r\n", "-EXECABORT Transaction discarded because of previous errors.\r\n"));
    /* SELECT inside MULTI is Redis's (issue #14): it runs at EXEC */
    assert_true(harness_conn_roundtrip(c, "MULTI\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(c, "SELECT 1\r\n", "+QUEUED\r\n"));
    assert_true(harness_conn_roundtrip(c, "EXEC\r\n", "*1\r\n+OK\r\n"));
    assert_true(harness_conn_roundtrip(c, "EXISTS refused\r\n", ":0\r\n"));
    assert_true(harness_conn_roundtrip(c, "SELECT 0\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(c, "PING\r\n", "+PONG\r\n"));
    harness_conn_close(c);
    /* A denied command that Redis refuses inside MULTI anyway ("no-multi",
     * checked before permissions): Redis's own error, byte for byte, and
     * nothing runs (SHUTDOWN reaches the reference only inside MULTI). */
    const char *shutdown_in_multi =
        "MULTI\r\nSET refused v\r\nSHUTDOWN\r\nEXEC\r\nEXISTS refused\r\n";
    assert_true(harness_same(harness_env.ref, harness_env.bulwark, shutdown_in_multi, 5));
}

/* Load on the shared upstream connection: pipelines of 500 SETs until *stop. */
static void *
shared_noise(void *arg)
{
    volatile bool *stop = arg;
    redisContext *c = harness_redis_connect(harness_env.bulwark);
    while (!*stop) {
        for (int i = 0; i < 500; i++)
            redisAppendCommand(c, "SET noise:%d %0200d", i, i);
        for (int i = 0; i < 500; i++) {
            redisReply *r;
            if (redisGetReply(c, (void **)&r) != REDIS_OK)
                return NULL;
            freeReplyObject(r);
        }
    }
    redisFree(c);
    return NULL;
}

/*
 * A client's write on the shared connection, then a transaction (which goes
 * to a dedicated connection), in one pipeline: the transaction must see the
 * write, as it would on Redis. Under load on the shared connection it did
 * not (243 of 300 stale) until a request that starts a session waited for
 * the client's shared-connection replies.
 */
static void
test_session_sees_earlier_writes(void **state)
{
    (void)state;
    volatile bool stop = false;
    pthread_t t[4];
    for (int i = 0; i < 4; i++)
        assert_int_equal(pthread_create(&t[i], NULL, shared_noise, (void *)&stop), 0);
    struct harness_conn *c = harness_conn_open(harness_env.bulwark);
    char req[256], want[64];
    int stale = 0;
    for (int i = 0; i < 200; i++) {
        snprintf(req, sizeof(req), "SET seen v%d\r\nMULTI\r\nGET seen\r\nEXEC\r\n", i);
        harness_conn_send_str(c, req);
        struct harness_buf r = {0};
        for (int k = 0; k < 4; k++)
            assert_int_equal(harness_conn_read_reply(c, 10000, &r), HARNESS_READ_REPLY);
        int vlen = snprintf(NULL, 0, "v%d", i);
        snprintf(want, sizeof(want), "*1\r\n$%d\r\nv%d\r\n", vlen, i);
        harness_buf_append(&r, "", 1);
        stale += strstr(r.data, want) == NULL;
        harness_buf_free(&r);
    }
    stop = true;
    for (int i = 0; i < 4; i++)
        pthread_join(t[i], NULL);
    harness_conn_close(c);
    assert_int_equal(stale, 0);
}

/*
 * A session that ended clean goes back to the pool without RESET (no RESET,
 * AUTH or SELECT per transaction); one that changed connection state (here
 * the client's own RESET, which puts the connection back in db 0) is reset and
 * given its AUTH again first; every session starts in the client's database
 * (here 3, SELECTed before the first one and again after the RESET).
 */
static void
test_pool_reuse_after_clean_and_dirty_sessions(void **state)
{
    (void)state;
    struct harness_server *r = harness_redis_start(NULL);
    struct harness_server *b =
        harness_bulwark_start(r->port, HARNESS_ARGS("--upstream-pinned-idle", "1"));
    struct harness_conn *c = harness_conn_open(b);
    char want[32];
    long long resets = harness_command_calls(r, "reset");
    assert_true(harness_conn_roundtrip(c, "SELECT 3\r\n", "+OK\r\n"));
    for (int i = 1; i <= 23; i++) {
        if (i == 21) { /* the client's RESET inside a session: back in db 0, as Redis */
            assert_true(harness_conn_roundtrip(c, "MULTI\r\n", "+OK\r\n"));
            assert_int_equal(harness_command_calls(r, "reset"), resets); /* none so far */
            assert_true(harness_conn_roundtrip(c, "RESET\r\n", "+RESET\r\n"));
            assert_true(harness_conn_roundtrip(c, "GET tx\r\n", "$-1\r\n"));
            assert_true(harness_conn_roundtrip(c, "SELECT 3\r\n", "+OK\r\n"));
        }
        snprintf(want, sizeof(want), "*1\r\n:%d\r\n", i);
        assert_true(harness_conn_roundtrip(c, "MULTI\r\n", "+OK\r\n"));
        assert_true(harness_conn_roundtrip(c, "INCR tx\r\n", "+QUEUED\r\n"));
        assert_true(harness_conn_roundtrip(c, "EXEC\r\n", want));
    }
    /* the client's RESET and bulwark's one on release; none per transaction */
    assert_int_equal(harness_command_calls(r, "reset"), resets + 2);
    assert_true(harness_conn_roundtrip(c, "GET tx\r\n", "$2\r\n23\r\n"));
    harness_conn_close(c);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

/*
 * Found by an adversarial pass: nothing bulwark denies, refuses or answers
 * itself may reach Redis from a pinned session, whatever bulwark believes
 * of the session's state (a MULTI Redis rejected is not a transaction), and
 * a WATCH that Redis keeps never reaches the next user of the connection.
 */
static void
test_session_refusals_never_forwarded(void **state)
{
    (void)state;
    struct harness_server *b = harness_bulwark_start(harness_env.upstream->port,
                                                     HARNESS_ARGS("--upstream-pinned-idle", "1"));
    struct harness_conn *c = harness_conn_open(b);
    static const char *const want[] =
        {"+OK\r\n", "-ERR wrong number of arguments for 'multi' command\r\n",
         "-ERR command 'SHUTDOWN' is disabled in bulwark (deny-commands)\r\n", "+PONG\r\n"};
    assert_true(harness_conn_pipeline(c, "WATCH k\r\nMULTI x\r\nSHUTDOWN NOSAVE\r\nPING\r\n",
                                      want, BW_ARRAY_LEN(want)));
    assert_true(harness_conn_roundtrip(c, "UNWATCH\r\n", "+OK\r\n"));
    /* several refusals in flight at once each get their own text */
    static const char *const want2[] =
        {"+OK\r\n",
         "-ERR command 'DEBUG' is disabled in bulwark (deny-commands)\r\n",
         "-ERR command 'DEBUG' is disabled in bulwark (deny-commands)\r\n",
         "+OK\r\n",
         "-ERR command 'DEBUG' is disabled in bulwark (deny-commands)\r\n",
         "-ERR command 'DEBUG' is disabled in bulwark (deny-commands)\r\n",
         "-EXECABORT Transaction discarded because of previous errors.\r\n",
         "+PONG\r\n"};
    assert_true(harness_conn_pipeline(c,
                                      "WATCH k\r\nDEBUG x\r\nDEBUG y\r\nMULTI\r\nDEBUG z\r\n"
                                      "DEBUG w\r\nEXEC\r\nPING\r\n",
                                      want2, BW_ARRAY_LEN(want2)));
    /* inside MULTI: CLIENT KILL and a refused CLIENT subcommand abort it */
    assert_true(harness_conn_roundtrip(c, "MULTI\r\n", "+OK\r\n"));
    assert_true(
        harness_conn_roundtrip(c, "CLIENT KILL TYPE normal\r\n",
                               "-ERR CLIENT inside MULTI is not supported by bulwark\r\n"));
    assert_true(harness_conn_roundtrip(
        c, "CLIENT NO-EVICT on\r\n",
        "-ERR CLIENT NO-EVICT is not supported by bulwark: it cannot work through a proxy\r\n"));
    assert_true(harness_conn_roundtrip(
        c, "EXEC\r\n", "-EXECABORT Transaction discarded because of previous errors.\r\n"));
    /* EXEC without MULTI keeps the WATCH in Redis: it must not leak */
    assert_true(harness_conn_roundtrip(c, "SET wk 0\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(c, "WATCH wk\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(c, "EXEC\r\n", "-ERR EXEC without MULTI\r\n"));
    harness_conn_close(c);
    struct harness_conn *d = harness_conn_open(b);
    assert_true(harness_conn_roundtrip(d, "SET wk 1\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(d, "MULTI\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(d, "SET wk 2\r\n", "+QUEUED\r\n"));
    assert_true(harness_conn_roundtrip(d, "EXEC\r\n", "*1\r\n+OK\r\n"));
    harness_conn_close(d);
    redisContext *u = harness_redis_connect(harness_env.upstream); /* still up */
    redisReply *r = redisCommand(u, "PING");
    assert_non_null(r);
    assert_string_equal(r->str, "PONG");
    freeReplyObject(r);
    redisFree(u);
    harness_bulwark_stop(b);
}

/* Read one reply of c into a fresh string (caller frees with harness_buf_free). */
static void
read_one(struct harness_conn *c, struct harness_buf *got)
{
    assert_int_equal(harness_conn_read_reply(c, 5000, got), HARNESS_READ_REPLY);
}

/* Wait (bounded) until CLIENT LIST ID id on ctl shows flags=b: blocked at Redis. */
static void
wait_blocked(struct harness_conn *ctl, long long id)
{
    char req[64];
    snprintf(req, sizeof(req), "CLIENT LIST ID %lld\r\n", id);
    for (int i = 0; i < 400; i++) {
        struct harness_buf got = {0};
        harness_conn_send_str(ctl, req);
        read_one(ctl, &got);
        bool blocked = strstr(got.data, " flags=b ") != NULL;
        harness_buf_free(&got);
        if (blocked && harness_info_ll(harness_env.upstream, "clients", "blocked_clients") > 0)
            return;
        usleep(10 * 1000);
    }
    fail_msg("client %lld never showed flags=b", id);
}

/* CLIENT UNBLOCK names bulwark's client id, as Redis's does its own (the list unit). */
static void
test_client_unblock(void **state)
{
    (void)state;
    struct harness_conn *b = harness_conn_open(harness_env.bulwark),
                        *ctl = harness_conn_open(harness_env.bulwark);
    struct harness_buf got = {0};
    harness_conn_send_str(b, "CLIENT ID\r\n");
    read_one(b, &got);
    long long id = atoll(got.data + 1);
    harness_buf_free(&got);
    char req[96];

    harness_conn_send_str(b, "BLPOP unblock:l 0\r\n");
    wait_blocked(ctl, id);
    snprintf(req, sizeof(req), "CLIENT UNBLOCK %lld\r\n", id);
    assert_true(harness_conn_roundtrip(ctl, req, ":1\r\n"));
    read_one(b, &got);
    assert_string_equal(got.data, "*-1\r\n");
    harness_buf_free(&got);

    harness_conn_send_str(b, "BLPOP unblock:l 0\r\n");
    wait_blocked(ctl, id);
    snprintf(req, sizeof(req), "CLIENT UNBLOCK %lld ERROR\r\n", id);
    assert_true(harness_conn_roundtrip(ctl, req, ":1\r\n"));
    read_one(b, &got);
    assert_string_equal(got.data, "-UNBLOCKED client unblocked via CLIENT UNBLOCK\r\n");
    harness_buf_free(&got);

    /* not blocked (any more), unknown, not a number, bad reason: as Redis */
    assert_true(harness_conn_roundtrip(ctl, req, ":0\r\n"));
    assert_true(harness_conn_roundtrip(ctl, "CLIENT UNBLOCK 999999\r\n", ":0\r\n"));
    assert_true(harness_conn_roundtrip(ctl, "CLIENT UNBLOCK asd\r\n",
                                       "-ERR value is not an integer or out of range\r\n"));
    assert_true(
        harness_conn_roundtrip(ctl, "CLIENT UNBLOCK 1 FOO\r\n",
                               "-ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR\r\n"));
    /* the client still works, and pops what is pushed */
    harness_conn_send_str(b, "BLPOP unblock:l 5\r\n");
    wait_blocked(ctl, id);
    assert_true(harness_conn_roundtrip(ctl, "RPUSH unblock:l x\r\n", ":1\r\n"));
    read_one(b, &got);
    assert_string_equal(got.data, "*2\r\n$9\r\nunblock:l\r\n$1\r\nx\r\n");
    harness_buf_free(&got);
    harness_conn_close(b);
    harness_conn_close(ctl);
}

/*
 * What bulwark answers itself inside a session waits for what is due there
 * (a blocking command, a script, pub/sub winding down after UNSUBSCRIBE) and
 * then comes in order; a surely subscribed RESP2 client gets Redis's own
 * refusal; a new dedicated connection's first blocking command keeps its
 * replies (adversarial pass: each of these once lost, swapped or garbled a reply).
 */
static void
test_local_answers_in_sessions_keep_order(void **state)
{
    (void)state;
    static const char *const cases[] = {
        "UNSUBSCRIBE\r\nCLIENT GETNAME\r\nECHO next\r\n",
        "UNSUBSCRIBE\r\nSELECT 0\r\nGET s\r\n",
        "SUBSCRIBE c1\r\nHELLO 3\r\nSELECT 1\r\nCLIENT KILL ID 1\r\nCLIENT ID\r\nPING\r\n",
        "WATCH x\r\nBLPOP nokey 0.01\r\nPING\r\n",
        "SUBSCRIBE ch\r\nBLPOP nokey 0.01\r\nUNSUBSCRIBE\r\nPING\r\n",
        "EVAL \"return 1\" 0\r\nCLIENT GETNAME\r\nPING\r\n",
        "BLPOP nokey 0.2\r\nCLIENT GETNAME\r\nSELECT 2\r\nPING\r\n",
    };
    static const size_t nreplies[] = {3, 3, 6, 3, 4, 3, 4};
    for (size_t i = 0; i < BW_ARRAY_LEN(cases); i++)
        assert_true(harness_same(harness_env.ref, harness_env.bulwark, cases[i], nreplies[i]));
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transactions_equal_redis),
        cmocka_unit_test(test_watch_optimistic_locking),
        cmocka_unit_test(test_blocked_clients_get_one_element_each),
        cmocka_unit_test(test_pubsub_through_bulwark),
        cmocka_unit_test(test_pool_limit),
        cmocka_unit_test(test_refusals_inside_a_session),
        cmocka_unit_test(test_pool_reuse_after_clean_and_dirty_sessions),
        cmocka_unit_test(test_session_sees_earlier_writes),
        cmocka_unit_test(test_session_refusals_never_forwarded),
        cmocka_unit_test(test_client_unblock),
        cmocka_unit_test(test_local_answers_in_sessions_keep_order),
    };
    return harness_finish(
        cmocka_run_group_tests(tests, harness_trio_setup, harness_trio_teardown));
}
