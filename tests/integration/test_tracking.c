/*
 * test_tracking: CLIENT TRACKING served by bulwark (issue #15), compared with
 * Redis's own. Each scenario runs twice, against a reference Redis and
 * against bulwark, with the same connections and the same requests; every
 * byte a tracking client (and its REDIRECT client) receives must be the same:
 * replies, invalidation pushes, __redis__:invalidate messages, nulls. Writes
 * come from another client, from the tracking client itself, and — against
 * bulwark — directly on its upstream Redis, bypassing it (what the keyspace
 * watch must turn into invalidations within 100 ms).
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

static struct {
    struct harness_server *redis; /* bulwark's upstream */
    struct harness_server *ref;   /* the reference Redis */
    struct harness_server *bulwark;
} env;

static int
group_setup(void **state)
{
    (void)state;
    env.redis = harness_redis_start(NULL);
    env.ref = harness_reference_start(NULL);
    env.bulwark =
        harness_bulwark_start(env.redis->port, HARNESS_ARGS("--ttl-jitter-percent", "0"));
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

/* One run of a scenario against one server. */
struct run {
    const struct harness_server *target; /* where the clients connect */
    const struct harness_server *direct; /* where "direct" writes go (Redis behind it) */
    struct harness_conn *t;              /* the tracking client */
    struct harness_conn *r;              /* its REDIRECT client, or NULL */
    struct harness_conn *w;              /* another client of target */
    struct harness_conn *d;              /* a client of direct */
    long long r_id;                      /* r's CLIENT ID */
    struct harness_buf seen;             /* everything t and r received, labelled */
};

/* Everything c has for us now (replies and pushes), appended to seen as "tag: …". */
static void
drain(struct run *run, struct harness_conn *c, const char *tag, int first_ms)
{
    int wait = first_ms;
    for (;;) {
        struct harness_buf got = {0};
        if (harness_conn_read_reply(c, wait, &got) != HARNESS_READ_REPLY) {
            harness_buf_free(&got);
            return;
        }
        harness_buf_printf(&run->seen, "%s: ", tag);
        harness_buf_escape(&run->seen, got.data, got.len, 4000);
        harness_buf_puts(&run->seen, "\n");
        harness_buf_free(&got);
        wait = 150;
    }
}

/* Send one command line (redis-cli syntax) on c. */
static void
send_line(struct harness_conn *c, const char *line)
{
    struct harness_buf b = {0};
    harness_buf_command(&b, line);
    harness_conn_send(c, b.data, b.len, 0);
    harness_buf_free(&b);
}

/* A command on a helper connection whose reply we only wait for. */
static void
quiet(struct harness_conn *c, const char *line)
{
    send_line(c, line);
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(c, 5000, &got), HARNESS_READ_REPLY);
    harness_buf_free(&got);
}

/* t sends line; what t (and r) then receive is recorded. */
static void
t_do(struct run *run, const char *line)
{
    send_line(run->t, line);
    drain(run, run->t, "t", 2000);
    if (run->r != NULL)
        drain(run, run->r, "r", 50);
}

/* Someone else changes something; the invalidations it causes are recorded. */
static void
other_do(struct run *run, struct harness_conn *who, const char *line)
{
    quiet(who, line);
    usleep(100 * 1000); /* a direct write reaches bulwark through its watch */
    drain(run, run->t, "t", 50);
    if (run->r != NULL)
        drain(run, run->r, "r", 50);
}

static void
run_open(struct run *run, const struct harness_server *target,
         const struct harness_server *direct, bool redirect)
{
    memset(run, 0, sizeof(*run));
    run->target = target;
    run->direct = direct;
    run->t = harness_conn_open(target);
    run->w = harness_conn_open(target);
    run->d = harness_conn_open(direct);
    quiet(run->d, "FLUSHALL");
    if (redirect) {
        run->r = harness_conn_open(target);
        send_line(run->r, "CLIENT ID");
        struct harness_buf got = {0};
        assert_int_equal(harness_conn_read_reply(run->r, 5000, &got), HARNESS_READ_REPLY);
        run->r_id = atoll(got.data + 1);
        harness_buf_free(&got);
        send_line(run->r, "SUBSCRIBE __redis__:invalidate");
        drain(run, run->r, "r", 2000);
    }
}

static void
run_close(struct run *run)
{
    harness_conn_close(run->t);
    harness_conn_close(run->w);
    harness_conn_close(run->d);
    if (run->r != NULL)
        harness_conn_close(run->r);
}

typedef void scenario_fn(struct run *run);

/* The scenario against Redis and against bulwark bw: the same bytes, in the same order. */
static void
compare_on(const struct harness_server *bw, scenario_fn *fn, bool redirect, const char *name)
{
    struct run a, b;
    run_open(&a, env.ref, env.ref, redirect);
    fn(&a);
    run_open(&b, bw, env.redis, redirect);
    fn(&b);
    if (a.seen.len != b.seen.len || memcmp(a.seen.data, b.seen.data, a.seen.len) != 0)
        fail_msg("%s: what the tracking clients received differs\n--- redis:\n%s--- bulwark:\n%s",
                 name, a.seen.data, b.seen.data);
    assert_true(strstr(a.seen.data, "invalidate") != NULL); /* the scenario tells something */
    run_close(&a);
    run_close(&b);
    harness_buf_free(&a.seen);
    harness_buf_free(&b.seen);
}

static void
compare(scenario_fn *fn, bool redirect, const char *name)
{
    compare_on(env.bulwark, fn, redirect, name);
}

/* Default mode, RESP3: reads remembered, changes by others, directly and its own. */
static void
sc_default_resp3(struct run *run)
{
    t_do(run, "HELLO 3");
    harness_buf_reset(&run->seen); /* HELLO's id differs */
    t_do(run, "CLIENT TRACKING on");
    quiet(run->w, "MSET a 1 b 2 c 3");
    t_do(run, "GET a");
    t_do(run, "MGET b c nokey");
    t_do(run, "HGETALL noh");
    other_do(run, run->w, "SET a 10"); /* another client through the same server */
    other_do(run, run->d, "SET b 20"); /* directly on Redis */
    other_do(run, run->d, "DEL c");
    other_do(run, run->w, "SET a 11"); /* not read again: no second message */
    t_do(run, "GET a");
    t_do(run, "SET a 12"); /* its own write: after its reply */
    t_do(run, "GET nokey");
    other_do(run, run->d, "SET nokey x"); /* absent when read: still tracked */
    t_do(run, "CLIENT TRACKINGINFO");
    t_do(run, "GET a");
    other_do(run, run->w, "FLUSHALL"); /* the null */
    t_do(run, "PING");
}

/* RESP2 tracking client redirecting to a subscriber. */
static void
sc_redirect_resp2(struct run *run)
{
    char line[96];
    snprintf(line, sizeof(line), "CLIENT TRACKING on REDIRECT %lld", run->r_id);
    t_do(run, line);
    t_do(run, "CLIENT GETREDIR");
    harness_buf_reset(&run->seen); /* GETREDIR shows the id */
    t_do(run, "GET k1");
    t_do(run, "GET k2");
    other_do(run, run->w, "SET k1 v");
    other_do(run, run->d, "SET k2 v");
    t_do(run, "GET k1");
    t_do(run, "SET k1 mine");
    other_do(run, run->d, "FLUSHDB");
    t_do(run, "PING");
}

/* BCAST with prefixes, and NOLOOP. */
static void
sc_bcast(struct run *run)
{
    t_do(run, "HELLO 3");
    harness_buf_reset(&run->seen);
    t_do(run, "CLIENT TRACKING on BCAST PREFIX user: PREFIX sess: NOLOOP");
    other_do(run, run->w, "MSET user:1 a sess:9 b other:1 c");
    other_do(run, run->d, "SET user:2 x");
    t_do(run, "SET user:3 mine"); /* NOLOOP: not told */
    other_do(run, run->d, "DEL sess:9 other:1");
    t_do(run, "CLIENT TRACKING on BCAST PREFIX user:x"); /* overlaps user: */
    t_do(run, "CLIENT TRACKINGINFO");
    t_do(run, "PING");
}

/* OPTIN and OPTOUT with CLIENT CACHING. */
static void
sc_optin_optout(struct run *run)
{
    t_do(run, "HELLO 3");
    harness_buf_reset(&run->seen);
    t_do(run, "CLIENT TRACKING on OPTIN");
    t_do(run, "GET x1"); /* not remembered */
    t_do(run, "CLIENT CACHING yes");
    t_do(run, "GET x2"); /* remembered */
    t_do(run, "GET x3"); /* CACHING applied to one command only */
    other_do(run, run->w, "MSET x1 a x2 b x3 c");
    t_do(run, "CLIENT CACHING no"); /* wrong mode: Redis's error */
    t_do(run, "CLIENT TRACKING off");
    t_do(run, "CLIENT TRACKING on OPTOUT");
    t_do(run, "CLIENT CACHING no");
    t_do(run, "GET y1"); /* not remembered */
    t_do(run, "GET y2"); /* remembered */
    other_do(run, run->d, "MSET y1 a y2 b");
    t_do(run, "CLIENT TRACKING on OPTIN OPTOUT");
    t_do(run, "PING");
}

/*
 * NOLOOP, its own write and a read of the same key pipelined behind it: the
 * write (told to nobody) must not make bulwark forget the read, or a change
 * made directly on Redis afterwards is never told.
 */
static void
sc_noloop_pipeline(struct run *run)
{
    t_do(run, "HELLO 3");
    harness_buf_reset(&run->seen);
    t_do(run, "CLIENT TRACKING on NOLOOP");
    send_line(run->t, "SET np:k x1");
    t_do(run, "GET np:k");
    other_do(run, run->d, "SET np:k d1");
    t_do(run, "GET np:k");
    other_do(run, run->w, "SET np:k w1");
    t_do(run, "PING");
}

/* Transactions: a client's own writes in MULTI are told after EXEC's reply. */
static void
sc_multi(struct run *run)
{
    t_do(run, "HELLO 3");
    harness_buf_reset(&run->seen);
    t_do(run, "CLIENT TRACKING on");
    t_do(run, "MGET m1 m2");
    t_do(run, "MULTI");
    t_do(run, "SET m1 a");
    t_do(run, "SET m2 b");
    t_do(run, "EXEC");
    t_do(run, "MGET m1 m2");
    other_do(run, run->w, "DEL m1");
    /* a key read then written in one transaction: told after EXEC's reply */
    quiet(run->w, "SET n1 1");
    t_do(run, "MULTI");
    t_do(run, "GET n1");
    t_do(run, "INCR n1");
    t_do(run, "EXEC");
    t_do(run, "PING");
}

static void
test_default_resp3(void **state)
{
    (void)state;
    compare(sc_default_resp3, false, "default RESP3");
}

static void
test_redirect_resp2(void **state)
{
    (void)state;
    compare(sc_redirect_resp2, true, "REDIRECT RESP2");
}

static void
test_bcast_prefix_noloop(void **state)
{
    (void)state;
    compare(sc_bcast, false, "BCAST PREFIX NOLOOP");
}

static void
test_optin_optout(void **state)
{
    (void)state;
    compare(sc_optin_optout, false, "OPTIN OPTOUT");
}

static void
test_multi(void **state)
{
    (void)state;
    compare(sc_multi, false, "MULTI");
}

static void
test_noloop_own_write_then_read(void **state)
{
    (void)state;
    compare(sc_noloop_pipeline, false, "NOLOOP SET then GET pipelined");
}

/*
 * With the Bloom gate and the hot-key cache off nothing needs the keyspace
 * watch until a client turns tracking on: it starts then, and writes made
 * directly on Redis are told as before (they were never told: the watch
 * stayed down with the filter).
 */
static void
test_without_bloom_and_hotkey(void **state)
{
    (void)state;
    struct harness_server *b = harness_bulwark_start(
        env.redis->port,
        HARNESS_ARGS("--bloom", "no", "--hotkey", "no", "--ttl-jitter-percent", "0"));
    compare_on(b, sc_default_resp3, false, "default RESP3, bloom no, hotkey no");
    compare_on(b, sc_redirect_resp2, true, "REDIRECT RESP2, bloom no, hotkey no");
    harness_bulwark_stop(b);
}

/* Kill bulwark's keyspace watch and keep it out (Redis's maxclients) until
 * watch_let_in(); t (tracking, RESP3) gets the loss's null. */
static void
watch_lock_out(redisContext *d, struct harness_conn *t)
{
    redisReply *r = redisCommand(d, "INFO clients");
    long long connected = atoll(strstr(r->str, "connected_clients:") + 18);
    freeReplyObject(r);
    freeReplyObject(redisCommand(d, "CONFIG SET maxclients %lld", connected));
    freeReplyObject(redisCommand(d, "CLIENT KILL TYPE pubsub")); /* the watch */
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(t, 2000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    harness_buf_free(&got);
}

/* Let the watch back in; t must then get a null (read while it was down). */
static void
watch_let_in(redisContext *d, struct harness_conn *t)
{
    struct harness_buf got = {0};
    usleep(300 * 1000);
    freeReplyObject(redisCommand(d, "CONFIG SET maxclients 10000"));
    assert_int_equal(harness_conn_read_reply(t, 5000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, ">2\r\n$10\r\ninvalidate\r\n_\r\n");
    harness_buf_free(&got);
    harness_wait_gate(env.bulwark); /* the watch is back for the next tests */
}

/* A RESP3 client of bulwark that tracks (default mode). */
static struct harness_conn *
tracking_client(void)
{
    struct harness_conn *t = harness_conn_open(env.bulwark);
    struct harness_buf got = {0};
    harness_conn_send_str(t, "HELLO 3\r\n");
    assert_int_equal(harness_conn_read_reply(t, 2000, &got), HARNESS_READ_REPLY);
    harness_buf_free(&got);
    assert_true(harness_conn_roundtrip(t, "CLIENT TRACKING on\r\n", "+OK\r\n"));
    return t;
}

/*
 * A key read while the keyspace watch is down (killed and kept out) and
 * changed directly on Redis meanwhile: the change cannot be named, so once
 * the watch is back the client gets a null (flush everything) after that
 * read's reply; before, the null of the loss came first and the value read
 * stayed valid for ever. in_multi: the read was queued in MULTI while the
 * watch was up and runs at an EXEC sent while it is down (bulwark remembers
 * it at EXEC's reply, after the loss's null).
 */
static void
read_while_the_watch_is_down(const char *key, bool in_multi)
{
    struct harness_conn *t = tracking_client();
    redisContext *d = harness_redis_connect(env.redis);
    char get[64];
    snprintf(get, sizeof(get), "GET %s\r\n", key);
    freeReplyObject(redisCommand(d, "SET %s v1", key));
    if (in_multi) {
        assert_true(harness_conn_roundtrip(t, "MULTI\r\n", "+OK\r\n"));
        assert_true(harness_conn_roundtrip(t, get, "+QUEUED\r\n"));
    } else {
        assert_true(harness_conn_roundtrip(t, get, "$2\r\nv1\r\n"));
    }
    watch_lock_out(d, t);
    if (in_multi)
        assert_true(harness_conn_roundtrip(t, "EXEC\r\n", "*1\r\n$2\r\nv1\r\n"));
    else
        assert_true(harness_conn_roundtrip(t, get, "$2\r\nv1\r\n"));
    freeReplyObject(redisCommand(d, "SET %s v2", key)); /* never named by the watch */
    watch_let_in(d, t);
    redisFree(d);
    harness_conn_close(t);
}

static void
test_read_while_the_watch_is_down(void **state)
{
    (void)state;
    read_while_the_watch_is_down("down:k", false);
}

static void
test_transaction_run_while_the_watch_is_down(void **state)
{
    (void)state;
    read_while_the_watch_is_down("down:m", true);
}

/*
 * A read that finds a change of its key still waiting on the watch (bulwark
 * stopped while the GET arrives and the key is then written directly): the
 * gate takes the watch in before answering; the change it names was made
 * before the read, so it must not be told ahead of the read's reply and make
 * bulwark forget the read — the next direct write must be told.
 */
static void
test_read_behind_a_change_the_watch_holds(void **state)
{
    (void)state;
    struct harness_conn *t = tracking_client();
    redisContext *d = harness_redis_connect(env.redis);
    struct harness_buf got = {0};
    freeReplyObject(redisCommand(d, "DEL pend:k"));
    usleep(100 * 1000);
    assert_int_equal(kill(env.bulwark->pid, SIGSTOP), 0);
    harness_conn_send_str(t, "GET pend:k\r\n");
    usleep(50 * 1000);
    freeReplyObject(redisCommand(d, "SET pend:k v2"));
    usleep(50 * 1000);
    assert_int_equal(kill(env.bulwark->pid, SIGCONT), 0);
    assert_int_equal(harness_conn_read_reply(t, 5000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, "$2\r\nv2\r\n");
    freeReplyObject(redisCommand(d, "SET pend:k v3"));
    harness_buf_reset(&got);
    assert_int_equal(harness_conn_read_reply(t, 2000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, ">2\r\n$10\r\ninvalidate\r\n*1\r\n$6\r\npend:k\r\n");
    harness_buf_free(&got);
    redisFree(d);
    harness_conn_close(t);
}

/* INFO's tracking fields are bulwark's: its clients are the ones tracking. */
static void
test_info_counts(void **state)
{
    (void)state;
    struct harness_conn *t = harness_conn_open(env.bulwark);
    harness_conn_send_str(t, "HELLO 3\r\n");
    struct harness_buf got = {0};
    assert_int_equal(harness_conn_read_reply(t, 2000, &got), HARNESS_READ_REPLY);
    harness_buf_free(&got);
    long long keys0 = harness_info_ll(env.bulwark, "stats", "tracking_total_keys");
    assert_true(harness_conn_roundtrip(t, "CLIENT TRACKING on\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(t, "GET info:a\r\n", "_\r\n"));
    assert_true(harness_conn_roundtrip(t, "GET info:b\r\n", "_\r\n"));
    assert_int_equal(harness_info_ll(env.bulwark, "clients", "tracking_clients"), 1);
    assert_int_equal(harness_info_ll(env.bulwark, "stats", "tracking_total_keys"), keys0 + 2);
    harness_conn_close(t);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_default_resp3),
        cmocka_unit_test(test_redirect_resp2),
        cmocka_unit_test(test_bcast_prefix_noloop),
        cmocka_unit_test(test_optin_optout),
        cmocka_unit_test(test_multi),
        cmocka_unit_test(test_without_bloom_and_hotkey),
        cmocka_unit_test(test_noloop_own_write_then_read),
        cmocka_unit_test(test_read_while_the_watch_is_down),
        cmocka_unit_test(test_transaction_run_while_the_watch_is_down),
        cmocka_unit_test(test_read_behind_a_change_the_watch_holds),
        cmocka_unit_test(test_info_counts),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
