/*
 * test_sessions: what a client in a dedicated-connection session sees at the
 * edges, compared with Redis 7.0: its dedicated connection lost while it
 * WATCHes or is inside MULTI (the client's connection ends, nothing commits
 * unwatched), a half-closed client's replies, SUBSCRIBE queued in MULTI,
 * CLIENT REPLY OFF/SKIP, CLIENT KILL USER, `timeout`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* Send the commands (one line each, redis-cli style) in one write. */
static void
send_cmds(struct harness_conn *c, const char *const *lines, size_t n)
{
    struct harness_buf b = {0};
    for (size_t i = 0; i < n; i++)
        harness_buf_command(&b, lines[i]);
    harness_conn_send(c, b.data, b.len, 0);
    harness_buf_free(&b);
}

/* Read one reply and check its bytes. */
static void
expect_reply(struct harness_conn *c, const char *want)
{
    struct harness_buf got = {0};
    enum harness_read rd = harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, &got);
    if (rd != HARNESS_READ_REPLY || strcmp(got.data, want) != 0) {
        struct harness_buf e = {0};
        harness_buf_escape(&e, got.data, got.len, 200);
        fail_msg("got (%d) \"%s\", want \"%s\"", (int)rd, e.data, want);
    }
    harness_buf_free(&got);
}

/*
 * CLIENT KILL, on bulwark's upstream directly, the one connection whose
 * CLIENT LIST line holds needle (the session's dedicated one). Fails the
 * test when none or several do.
 */
static void
kill_dedicated(const char *needle)
{
    redisContext *r = harness_redis_connect(harness_env.upstream);
    redisReply *list = redisCommand(r, "CLIENT LIST");
    assert_non_null(list);
    assert_int_equal(list->type, REDIS_REPLY_STRING);
    long long id = 0;
    int found = 0;
    for (char *line = list->str; line != NULL && *line != '\0';) {
        char *end = strchr(line, '\n');
        if (end != NULL)
            *end = '\0';
        if (strstr(line, needle) != NULL) {
            id = atoll(line + 3); /* "id=N addr=…" */
            found++;
        }
        line = end != NULL ? end + 1 : NULL;
    }
    freeReplyObject(list);
    assert_int_equal(found, 1);
    redisReply *k = redisCommand(r, "CLIENT KILL ID %lld", id);
    assert_non_null(k);
    assert_int_equal(k->integer, 1);
    freeReplyObject(k);
    redisFree(r);
}

/* The client's connection ends (bulwark closes it, as Redis's would drop). */
static void
expect_closed(struct harness_conn *c)
{
    struct harness_buf extra = {0};
    enum harness_read rd = harness_conn_read_eof(c, HARNESS_TIMEOUT_MS, &extra);
    if (rd != HARNESS_READ_EOF || extra.len != 0) {
        struct harness_buf e = {0};
        harness_buf_escape(&e, extra.data, extra.len, 200);
        fail_msg("connection not closed (%d), or more bytes: \"%s\"", (int)rd, e.data);
    }
    harness_buf_free(&extra);
}

/* GET key on the upstream directly, "(nil)" when absent. */
static void
expect_upstream_value(const char *key, const char *want)
{
    redisContext *r = harness_redis_connect(harness_env.upstream);
    redisReply *v = redisCommand(r, "GET %s", key);
    assert_non_null(v);
    assert_string_equal(v->type == REDIS_REPLY_NIL ? "(nil)" : v->str, want);
    freeReplyObject(v);
    redisFree(r);
}

/* A client of bulwark that set key to 0 and WATCHes it (on its dedicated connection). */
static struct harness_conn *
watching_client(const char *key)
{
    struct harness_conn *c = harness_conn_open(harness_env.bulwark);
    char set[64], watch[64];
    snprintf(set, sizeof(set), "SET %s 0", key);
    snprintf(watch, sizeof(watch), "WATCH %s", key);
    const char *const first[] = {set, watch};
    send_cmds(c, first, 2);
    expect_reply(c, "+OK\r\n");
    expect_reply(c, "+OK\r\n");
    return c;
}

/*
 * WATCH, then the dedicated connection is killed: the client's connection
 * ends; the MULTI/SET/EXEC it sends next can never commit unwatched (it
 * answered "+OK +QUEUED *1 +OK" and wrote the key before).
 */
static void
test_lost_while_watching(void **state)
{
    (void)state;
    struct harness_conn *c = watching_client("lw:k");
    kill_dedicated("cmd=watch");
    static const char *const tx[] = {"MULTI", "SET lw:k 1", "EXEC"};
    send_cmds(c, tx, 3);
    expect_closed(c);
    harness_conn_close(c);
    expect_upstream_value("lw:k", "0");
}

/* Between MULTI's queued commands: the transaction is never half-run. */
static void
test_lost_inside_multi(void **state)
{
    (void)state;
    struct harness_conn *c = harness_conn_open(harness_env.bulwark);
    static const char *const first[] = {"SET lm:k 0", "MULTI", "SET lm:k 1"};
    send_cmds(c, first, 3);
    expect_reply(c, "+OK\r\n");
    expect_reply(c, "+OK\r\n");
    expect_reply(c, "+QUEUED\r\n");
    kill_dedicated("flags=x ");
    static const char *const rest[] = {"INCR lm:k", "EXEC"};
    send_cmds(c, rest, 2);
    expect_closed(c);
    harness_conn_close(c);
    expect_upstream_value("lm:k", "0");
}

/*
 * Redis restarted while a client WATCHes: its connection ends too; a new one
 * works once Redis is back (the restarted Redis is empty: nothing of the
 * transaction may appear).
 */
static void
test_lost_on_upstream_restart(void **state)
{
    (void)state;
    struct harness_conn *c = watching_client("lr:k");
    harness_redis_restart(harness_env.upstream);
    static const char *const tx[] = {"MULTI", "SET lr:k 1", "EXEC"};
    send_cmds(c, tx, 3);
    expect_closed(c);
    harness_conn_close(c);
    expect_upstream_value("lr:k", "(nil)");
    /* bulwark serves new clients again once its shared connections are back */
    uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        struct harness_conn *n = harness_conn_open(harness_env.bulwark);
        struct harness_buf got = {0};
        harness_conn_send_str(n, "*2\r\n$3\r\nGET\r\n$4\r\nlr:k\r\n");
        enum harness_read rd = harness_conn_read_reply(n, HARNESS_TIMEOUT_MS, &got);
        bool ok = rd == HARNESS_READ_REPLY && strcmp(got.data, "$-1\r\n") == 0;
        harness_buf_free(&got);
        harness_conn_close(n);
        if (ok)
            break;
        assert_true(bw_now_ms() < deadline);
        usleep(50 * 1000);
    }
}

/*
 * A session that holds nothing of the client's (a blocking command due):
 * losing it answers the request with bulwark's upstream error, and the
 * client goes on.
 */
static void
test_lost_blocking_only(void **state)
{
    (void)state;
    struct harness_conn *c = harness_conn_open(harness_env.bulwark);
    harness_conn_send_str(c, "*3\r\n$5\r\nBLPOP\r\n$6\r\nlb:nil\r\n$1\r\n0\r\n");
    uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
    while (harness_info_ll(harness_env.upstream, "clients", "blocked_clients") < 1) {
        assert_true(bw_now_ms() < deadline);
        usleep(20 * 1000);
    }
    kill_dedicated("cmd=blpop");
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, &got), HARNESS_READ_REPLY);
    assert_true(strncmp(got.data, "-ERR upstream ", 14) == 0);
    harness_buf_free(&got);
    assert_true(harness_conn_roundtrip(c, "PING\r\n", "+PONG\r\n"));
    harness_conn_close(c);
}

/*
 * Requests then shutdown(SHUT_WR): every byte until the close, bulwark's
 * equal to Redis's (Redis answers what it read before the EOF, a command
 * that blocks excepted, then frees the client).
 */
static void
same_after_half_close(const char *const *lines, size_t n)
{
    struct harness_buf got[2] = {{0}, {0}};
    const struct harness_server *srv[2] = {harness_env.ref, harness_env.bulwark};
    for (int i = 0; i < 2; i++) {
        struct harness_conn *c = harness_conn_open(srv[i]);
        send_cmds(c, lines, n);
        assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
        uint64_t t0 = bw_now_ms();
        assert_int_equal(harness_conn_read_eof(c, HARNESS_TIMEOUT_MS, &got[i]), HARNESS_READ_EOF);
        assert_true(bw_now_ms() - t0 < 3000); /* freed promptly, not at a timeout */
        harness_conn_close(c);
    }
    if (got[0].len != got[1].len || memcmp(got[0].data, got[1].data, got[0].len) != 0) {
        struct harness_buf e0 = {0}, e1 = {0};
        harness_buf_escape(&e0, got[0].data, got[0].len, 400);
        harness_buf_escape(&e1, got[1].data, got[1].len, 400);
        fail_msg("after '%s' and EOF: redis \"%s\", bulwark \"%s\"", lines[0], e0.data, e1.data);
    }
    harness_buf_free(&got[0]);
    harness_buf_free(&got[1]);
}

static void
test_half_close_inside_sessions(void **state)
{
    (void)state;
    static const char *const tx[] = {"DEL hc:a", "MULTI", "SET hc:a 1", "INCR hc:a", "EXEC"};
    static const char *const pop[] = {"DEL hc:l", "RPUSH hc:l x", "BLPOP hc:l 1", "PING"};
    static const char *const watch[] = {"SET hc:w 2", "WATCH hc:w", "GET hc:w", "PING"};
    static const char *const sub[] = {"SUBSCRIBE hc:ch", "PING"};
    static const char *const sub2[] = {"SUBSCRIBE hc:ch hc:c2", "UNSUBSCRIBE hc:ch", "PING x"};
    static const char *const script[] = {"EVAL \"return 5\" 0", "PING"};
    static const char *const blocked[] = {"DEL hc:e", "BLPOP hc:e 0", "PING"};
    static const char *const held[] = {"DEL hc:e", "BLPOP hc:e 0", "CLIENT ID", "PING"};
    static const char *const off[] = {"CLIENT REPLY OFF", "SET hc:o 1", "GET hc:o"};
    static const char *const offblk[] = {"CLIENT REPLY OFF", "BLPOP hc:e 0"};
    same_after_half_close(tx, BW_ARRAY_LEN(tx));
    same_after_half_close(pop, BW_ARRAY_LEN(pop));
    same_after_half_close(watch, BW_ARRAY_LEN(watch));
    same_after_half_close(sub, BW_ARRAY_LEN(sub));
    same_after_half_close(sub2, BW_ARRAY_LEN(sub2));
    same_after_half_close(script, BW_ARRAY_LEN(script));
    same_after_half_close(blocked, BW_ARRAY_LEN(blocked));
    same_after_half_close(held, BW_ARRAY_LEN(held));
    same_after_half_close(off, BW_ARRAY_LEN(off));
    same_after_half_close(offblk, BW_ARRAY_LEN(offblk));
    /* a client blocked a moment that half-closes takes nothing pushed after
     * (Redis frees it at its EOF: the element stays in the list) */
    const struct harness_server *srv[2] = {harness_env.ref, harness_env.bulwark};
    for (int i = 0; i < 2; i++) {
        struct harness_conn *c = harness_conn_open(srv[i]);
        harness_conn_send_str(c, "*3\r\n$5\r\nBLPOP\r\n$6\r\nhc:gone\r\n$2\r\n10\r\n");
        usleep(20 * 1000);
        assert_int_equal(shutdown(c->fd, SHUT_WR), 0);
        assert_int_equal(harness_conn_read_eof(c, HARNESS_TIMEOUT_MS, NULL), HARNESS_READ_EOF);
        harness_conn_close(c);
        redisContext *r = harness_redis_connect(i == 0 ? harness_env.ref : harness_env.upstream);
        freeReplyObject(redisCommand(r, "RPUSH hc:gone x"));
        redisReply *n = redisCommand(r, "LLEN hc:gone");
        assert_int_equal(n->integer, 1);
        freeReplyObject(n);
        freeReplyObject(redisCommand(r, "DEL hc:gone"));
        redisFree(r);
    }
    /* every one of them is freed (INFO's own connection is the one left),
     * the blocked one's dedicated connection closed */
    uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
    while (harness_info_ll(harness_env.bulwark, "proxy", "connected_clients") > 1 ||
           harness_info_ll(harness_env.upstream, "clients", "blocked_clients") > 0) {
        assert_true(bw_now_ms() < deadline);
        usleep(20 * 1000);
    }
}

/* The commands' replies, on Redis and through bulwark, byte for byte. */
static void
same(const char *const *lines, size_t n, size_t nreplies)
{
    struct harness_buf b = {0};
    for (size_t i = 0; i < n; i++)
        harness_buf_command(&b, lines[i]);
    assert_true(harness_same(harness_env.ref, harness_env.bulwark, b.data, nreplies));
    harness_buf_free(&b);
}

/* SUBSCRIBE queued in MULTI: EXEC's array holds its confirmations. */
static void
test_subscribe_inside_multi(void **state)
{
    (void)state;
    static const char *const one[] = {"MULTI", "SUBSCRIBE sm:ch", "EXEC", "PING"};
    static const char *const two[] = {"MULTI", "SUBSCRIBE sm:a sm:b",   "SET sm:k 1", "EXEC",
                                      "PING",  "UNSUBSCRIBE sm:a sm:b", "PING"};
    static const char *const three[] = {"MULTI", "PSUBSCRIBE sm:*", "PUNSUBSCRIBE", "EXEC",
                                        "GET sm:k"};
    same(one, BW_ARRAY_LEN(one), 4);
    same(two, BW_ARRAY_LEN(two), 9);
    same(three, BW_ARRAY_LEN(three), 5);
    /* and the client stays subscribed: messages reach it (RESP2, RESP3) */
    for (int proto = 2; proto <= 3; proto++) {
        struct harness_conn *c = harness_conn_open(harness_env.bulwark);
        struct harness_buf skip = {0};
        if (proto == 3) {
            harness_conn_send_str(c, "*2\r\n$5\r\nHELLO\r\n$1\r\n3\r\n");
            assert_int_equal(harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, &skip),
                             HARNESS_READ_REPLY);
        }
        static const char *const tx[] = {"MULTI", "SUBSCRIBE sm:m", "EXEC"};
        send_cmds(c, tx, 3);
        expect_reply(c, "+OK\r\n");
        expect_reply(c, "+QUEUED\r\n");
        expect_reply(c, proto == 2 ? "*1\r\n*3\r\n$9\r\nsubscribe\r\n$4\r\nsm:m\r\n:1\r\n"
                                   : "*1\r\n>3\r\n$9\r\nsubscribe\r\n$4\r\nsm:m\r\n:1\r\n");
        redisContext *pub = harness_redis_connect(harness_env.bulwark);
        uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
        for (long long n = 0; n < 1; assert_true(bw_now_ms() < deadline)) {
            redisReply *r = redisCommand(pub, "PUBLISH sm:m hi");
            n = r->integer;
            freeReplyObject(r);
        }
        redisFree(pub);
        expect_reply(c, proto == 2 ? "*3\r\n$7\r\nmessage\r\n$4\r\nsm:m\r\n$2\r\nhi\r\n"
                                   : ">3\r\n$7\r\nmessage\r\n$4\r\nsm:m\r\n$2\r\nhi\r\n");
        harness_buf_free(&skip);
        harness_conn_close(c);
    }
}

/* CLIENT REPLY OFF/SKIP/ON, bulwark's own answers (CLIENT ID, HELLO …) included. */
static void
test_client_reply_modes(void **state)
{
    (void)state;
    static const char *const off[] = {"CLIENT REPLY OFF", "SET cr:a 1", "CLIENT REPLY ON",
                                      "GET cr:a"};
    static const char *const local[] = {"CLIENT REPLY OFF", "CLIENT ID", "CLIENT SETNAME cr",
                                        "HELLO 2",          "NOSUCH",    "CLIENT REPLY ON",
                                        "CLIENT GETNAME"};
    static const char *const skip[] = {"CLIENT REPLY SKIP", "PING a", "PING b"};
    static const char *const skip2[] = {"CLIENT REPLY SKIP", "CLIENT REPLY SKIP", "PING a",
                                        "PING b"};
    static const char *const skiplocal[] = {"CLIENT REPLY SKIP", "CLIENT ID", "PING b", "PING c"};
    static const char *const offskip[] = {"CLIENT REPLY OFF", "CLIENT REPLY SKIP", "PING a",
                                          "CLIENT REPLY ON", "PING b"};
    static const char *const offtx[] = {"CLIENT REPLY OFF", "MULTI",   "SET cr:t 1", "EXEC",
                                        "CLIENT REPLY ON",  "GET cr:t"};
    same(off, BW_ARRAY_LEN(off), 2);
    same(local, BW_ARRAY_LEN(local), 2);
    same(skip, BW_ARRAY_LEN(skip), 1);
    same(skip2, BW_ARRAY_LEN(skip2), 1);
    same(skiplocal, BW_ARRAY_LEN(skiplocal), 2);
    same(offskip, BW_ARRAY_LEN(offskip), 2);
    same(offtx, BW_ARRAY_LEN(offtx), 2);
    /* what bulwark asks Redis for itself (CLIENT KILL USER) is not seen either */
    static const char *const offask[] = {"CLIENT REPLY OFF", "CLIENT KILL USER nobody",
                                         "CLIENT REPLY ON", "PING"};
    same(offask, BW_ARRAY_LEN(offask), 2);
    /* HELLO 3 under OFF: bulwark's HELLO on the session's connection is answered to it alone */
    static const char *const offhello[] = {"CLIENT REPLY OFF", "HELLO 3",
                                           "SET cr:h 1",       "CLIENT REPLY ON",
                                           "GET cr:h",         "CLIENT REPLY OFF",
                                           "HELLO 2",          "CLIENT REPLY ON",
                                           "GET cr:h"};
    same(offhello, BW_ARRAY_LEN(offhello), 4);
}

/* CLIENT KILL … USER: Redis's "No such user" for a user its ACL lacks. */
static void
test_client_kill_user(void **state)
{
    (void)state;
    const struct harness_server *both[] = {harness_env.ref, harness_env.upstream};
    for (int i = 0; i < 2; i++) { /* bob exists on both */
        redisContext *r = harness_redis_connect(both[i]);
        freeReplyObject(redisCommand(r, "ACL SETUSER ck-bob on nopass ~* +@all"));
        redisFree(r);
    }
    static const char *const lines[] = {
        "CLIENT KILL USER nobody",
        "CLIENT KILL USER ck-bob",
        "CLIENT KILL USER default SKIPME yes",
        "CLIENT KILL USER nobody TYPE bogus",
        "CLIENT KILL TYPE bogus USER nobody",
        "CLIENT KILL USER ck-bob TYPE bogus",
        "CLIENT KILL USER ck-bob SKIPME",
        "CLIENT KILL ID 0 USER nobody",
        "CLIENT KILL USER ck-bob USER nobody",
        "CLIENT KILL USER \"no\\r\\nbody\"",
        "WATCH ck:k",
        "CLIENT KILL USER nobody",
        "PING",
    };
    same(lines, BW_ARRAY_LEN(lines), BW_ARRAY_LEN(lines));
}

/*
 * `timeout` in sessions, as Redis 7.0 applies it: idle clients in MULTI,
 * WATCHing or on CLIENT REPLY OFF are closed; blocked, subscribed and
 * MONITOR ones are not.
 */
static void
test_timeout_in_sessions(void **state)
{
    (void)state;
    static const char *const cases[] = {"MULTI",        "WATCH to:k", "SUBSCRIBE to:c",
                                        "BLPOP to:l 0", "MONITOR",    "CLIENT REPLY OFF",
                                        "PING"};
    enum { N = BW_ARRAY_LEN(cases) };
    struct harness_server *b =
        harness_bulwark_start(harness_env.upstream->port, HARNESS_ARGS("--timeout", "1"));
    redisContext *r = harness_redis_connect(harness_env.ref);
    freeReplyObject(redisCommand(r, "CONFIG SET timeout 1"));
    const struct harness_server *srv[2] = {harness_env.ref, b};
    struct harness_conn *c[2][N];
    for (int i = 0; i < 2; i++)
        for (size_t k = 0; k < N; k++) {
            c[i][k] = harness_conn_open(srv[i]);
            send_cmds(c[i][k], &cases[k], 1);
        }
    usleep(3500 * 1000); /* cron: Redis's 10 times a second, bulwark's once */
    for (size_t k = 0; k < N; k++) {
        enum harness_read rd[2];
        for (int i = 0; i < 2; i++) {
            rd[i] = harness_conn_read_eof(c[i][k], 300, NULL);
            harness_conn_close(c[i][k]);
        }
        if (rd[0] != rd[1])
            fail_msg("'%s' idle past timeout: redis %s, bulwark %s", cases[k],
                     rd[0] == HARNESS_READ_EOF ? "closed" : "open",
                     rd[1] == HARNESS_READ_EOF ? "closed" : "open");
    }
    freeReplyObject(redisCommand(r, "CONFIG SET timeout 0"));
    redisFree(r);
    harness_bulwark_stop(b);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lost_while_watching),
        cmocka_unit_test(test_lost_inside_multi),
        cmocka_unit_test(test_lost_blocking_only),
        cmocka_unit_test(test_half_close_inside_sessions),
        cmocka_unit_test(test_subscribe_inside_multi),
        cmocka_unit_test(test_client_reply_modes),
        cmocka_unit_test(test_client_kill_user),
        cmocka_unit_test(test_timeout_in_sessions),
        cmocka_unit_test(test_lost_on_upstream_restart),
    };
    return harness_finish(
        cmocka_run_group_tests(tests, harness_trio_setup, harness_trio_teardown));
}
