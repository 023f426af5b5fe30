/*
 * test_limits: bounded memory for any client (issue #19): the output limits
 * of client-output-buffer-limit (slow reader, never-reading subscriber),
 * a half-closed client freed as Redis frees it, client-query-buffer-limit
 * counted as Redis counts it, maxclients against the descriptor limit
 * (CONFIG SET refused as Redis refuses it, EMFILE answered, never silence),
 * and shutdown not waiting for a client blocked in BLPOP 0.
 */
#include <errno.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

#define MB (1024 * 1024)

static struct {
    struct harness_server *upstream; /* the Redis behind every bulwark here */
} env;

static int
group_setup(void **state)
{
    (void)state;
    env.upstream = harness_redis_start(NULL);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    harness_redis_stop(env.upstream);
    return 0;
}

/* One command on a fresh sync connection to s; returns the reply (caller frees). */
static redisReply *
run(const struct harness_server *s, const char *fmt, ...)
{
    va_list ap;
    redisContext *c = harness_redis_connect(s);
    va_start(ap, fmt);
    redisReply *r = redisvCommand(c, fmt, ap);
    va_end(ap);
    assert_non_null(r);
    redisFree(c);
    return r;
}

/* A field of /proc/<pid>/status in kB ("VmRSS", "VmHWM"). */
static long
proc_kb(pid_t pid, const char *field)
{
    char path[64], line[256];
    long kb = -1;
    snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return -1;
    while (fgets(line, sizeof(line), f) != NULL)
        if (strncmp(line, field, strlen(field)) == 0 && line[strlen(field)] == ':')
            kb = strtol(line + strlen(field) + 1, NULL, 10);
    fclose(f);
    return kb;
}

/* True when the log of s contains text. */
static bool
log_has(const struct harness_server *s, const char *text)
{
    char line[4096];
    bool found = false;
    FILE *f = fopen(s->log_path, "r");
    if (f == NULL)
        return false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, text) != NULL;
    fclose(f);
    return found;
}

/* Close with RST: bulwark sees an error, not a half-close. */
static void
conn_reset(struct harness_conn *c)
{
    struct linger lg = {1, 0};
    setsockopt(c->fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    harness_conn_close(c);
}

/* n keys "big:<i>" of size bytes each, written on Redis directly. */
static void
make_big_keys(int n, size_t size)
{
    char *v = bw_malloc(size);
    memset(v, 'v', size);
    for (int i = 0; i < n; i++) {
        redisReply *r = run(env.upstream, "SET big:%d %b", i, v, size);
        freeReplyObject(r);
    }
    bw_free(v);
}

/*
 * A client pipelines 5,000 GETs of 1 MB values and reads nothing: bulwark's
 * RSS stays below the normal hard limit (64mb) plus 64 MB, the client is
 * closed with Redis's log line and counted, and another client's GETs work
 * meanwhile. Before the limit bulwark held gigabytes.
 */
static void
test_slow_reader_closed_at_hard_limit(void **state)
{
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(env.upstream->port,
                              HARNESS_ARGS("--client-output-buffer-limit", "normal 64mb 0 0"));
    make_big_keys(8, MB);
    long base_kb = proc_kb(b->pid, "VmRSS");
    struct harness_conn *slow = harness_conn_open(b);
    int small = 4096;
    setsockopt(slow->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct harness_buf req = {0};
    for (int i = 0; i < 5000; i++)
        harness_buf_printf(&req, "*2\r\n$3\r\nGET\r\n$5\r\nbig:%d\r\n", i % 8);
    harness_conn_send(slow, req.data, req.len, 0);
    harness_buf_free(&req);

    redisContext *other = harness_redis_connect(b);
    long peak_kb = 0, limit_kb = base_kb + (64 + 64) * 1024;
#if defined(__SANITIZE_ADDRESS__)
    limit_kb += 1024 * 1024; /* ASan's quarantine keeps freed memory resident */
#endif
    uint64_t deadline = bw_now_ms() + 20000;
    int gets = 0;
    while (harness_info_ll(b, "proxy", "client_output_limit_closed") < 1) {
        long rss = proc_kb(b->pid, "VmRSS");
        peak_kb = rss > peak_kb ? rss : peak_kb;
        if (peak_kb > limit_kb || bw_now_ms() > deadline) {
            conn_reset(slow);
            fail_msg("RSS %ld kB (start %ld kB), slow reader not closed", peak_kb, base_kb);
        }
        redisReply *r = redisCommand(other, "GET big:%d", gets % 8);
        assert_non_null(r);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        assert_int_equal(r->len, MB);
        freeReplyObject(r);
        gets++;
        usleep(20 * 1000);
    }
    long hwm = proc_kb(b->pid, "VmHWM");
    assert_true(hwm < limit_kb);
    assert_true(
        log_has(b, "scheduled to be closed ASAP for overcoming of output buffer limits."));
    /* the other client keeps working after the close */
    redisReply *r = redisCommand(other, "GET big:1");
    assert_non_null(r);
    assert_int_equal(r->len, MB);
    freeReplyObject(r);
    redisFree(other);
    enum harness_read rd = harness_conn_read_eof(slow, 5000, NULL);
    assert_int_equal(rd, HARNESS_READ_EOF);
    harness_conn_close(slow);
    fprintf(stderr, "slow reader: RSS start %ld kB, peak %ld kB, VmHWM %ld kB, %d other GETs\n",
            base_kb, peak_kb, hwm, gets);
    harness_bulwark_stop(b);
}

/* Every byte s sends to a client that sent req and then FIN, until it closes. */
static void
pipeline_then_fin(const struct harness_server *s, const char *req, struct harness_buf *got)
{
    struct harness_conn *c = harness_conn_open(s);
    harness_conn_send_str(c, req);
    shutdown(c->fd, SHUT_WR);
    assert_int_equal(harness_conn_read_eof(c, 5000, NULL), HARNESS_READ_EOF);
    harness_buf_append(got, c->in.data, c->in.len);
    harness_conn_close(c);
}

/*
 * A client that half-closes (FIN) with 300 MB of replies due and reads
 * nothing is freed within a second (Redis frees a client whose read
 * returns 0). A small pipeline followed by FIN still gets every reply, as
 * from Redis.
 */
static void
test_half_closed_client_freed(void **state)
{
    (void)state;
    struct harness_server *b = harness_bulwark_start(env.upstream->port, NULL);
    make_big_keys(8, MB);
    long before = harness_info_ll(b, "proxy", "connected_clients");
    struct harness_conn *c = harness_conn_open(b);
    struct harness_buf req = {0};
    for (int i = 0; i < 300; i++)
        harness_buf_printf(&req, "*2\r\n$3\r\nGET\r\n$5\r\nbig:%d\r\n", i % 8);
    harness_conn_send(c, req.data, req.len, 0);
    harness_buf_free(&req);
    shutdown(c->fd, SHUT_WR);
    uint64_t t0 = bw_now_ms();
    while (harness_info_ll(b, "proxy", "connected_clients") > before) {
        if (bw_now_ms() - t0 > 1000) {
            conn_reset(c);
            fail_msg("half-closed client still connected after 1 s");
        }
        usleep(10 * 1000);
    }
    fprintf(stderr, "half-closed client freed after %llu ms\n",
            (unsigned long long)(bw_now_ms() - t0));
    conn_reset(c);

    static const char small[] = "SET hc:a b\r\nGET hc:a\r\nPING\r\nINCR hc:n\r\nECHO x\r\n";
    struct harness_buf want = {0}, got = {0};
    freeReplyObject(run(env.upstream, "DEL hc:n"));
    pipeline_then_fin(env.upstream, small, &want);
    freeReplyObject(run(env.upstream, "DEL hc:n"));
    pipeline_then_fin(b, small, &got);
    assert_int_equal(got.len, want.len);
    assert_memory_equal(got.data, want.data, want.len);
    harness_buf_free(&want);
    harness_buf_free(&got);
    harness_bulwark_stop(b);
}

/*
 * A subscriber that never reads 100-byte messages is disconnected by the
 * pubsub soft limit (256kb for 1 s) while below the hard limit (1mb).
 */
static void
test_subscriber_soft_limit(void **state)
{
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(env.upstream->port,
                              HARNESS_ARGS("--client-output-buffer-limit", "pubsub 1mb 256kb 1"));
    struct harness_conn *sub = harness_conn_open(b);
    int small = 4096;
    setsockopt(sub->fd, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct harness_buf out = {0};
    harness_conn_send_str(sub, "SUBSCRIBE ch\r\n");
    assert_int_equal(harness_conn_read_reply(sub, 5000, &out), HARNESS_READ_REPLY);
    harness_buf_free(&out);

    char msg[101];
    memset(msg, 'm', 100);
    msg[100] = '\0';
    redisContext *pub = harness_redis_connect(env.upstream);
    /* fill past the soft limit, then keep it there slowly */
    uint64_t t0 = bw_now_ms(), soft_at = 0;
    long long most = 0;
    while (harness_info_ll(b, "proxy", "client_output_limit_closed") < 1) {
        long long held = harness_info_ll(b, "proxy", "client_recent_max_output_buffer");
        most = held > most ? held : most;
        int n = held < 300 * 1024 ? 200 : 1;
        if (held >= 256 * 1024 && soft_at == 0)
            soft_at = bw_now_ms();
        for (int i = 0; i < n; i++)
            redisAppendCommand(pub, "PUBLISH ch %s", msg);
        for (int i = 0; i < n; i++) {
            redisReply *r;
            assert_int_equal(redisGetReply(pub, (void **)&r), REDIS_OK);
            freeReplyObject(r);
        }
        if (bw_now_ms() - t0 > 15000) {
            conn_reset(sub);
            fail_msg("subscriber holding %lld bytes not disconnected", most);
        }
        usleep(20 * 1000);
    }
    uint64_t closed_at = bw_now_ms();
    redisFree(pub);
    fprintf(stderr, "subscriber: soft limit reached, closed %llu ms later; most held %lld\n",
            (unsigned long long)(closed_at - soft_at), most);
    assert_true(soft_at != 0 && closed_at - soft_at >= 900);
    assert_true(most < 1024 * 1024);
    uint64_t deadline = bw_now_ms() + 5000;
    while (harness_info_ll(b, "proxy", "connected_clients") > 1 && bw_now_ms() < deadline)
        usleep(10 * 1000);
    assert_int_equal(harness_info_ll(b, "proxy", "connected_clients"), 1); /* INFO's own */
    assert_true(
        log_has(b, "scheduled to be closed ASAP for overcoming of output buffer limits."));
    conn_reset(sub);
    harness_bulwark_stop(b);
}

/*
 * CONFIG SET client-output-buffer-limit through bulwark reaches Redis and
 * bulwark; CONFIG GET shows bulwark's value; bad values get Redis's errors.
 */
static void
test_config_set_output_limit(void **state)
{
    (void)state;
    struct harness_server *b = harness_bulwark_start(env.upstream->port, NULL);
    redisReply *r = run(b, "CONFIG GET client-output-buffer-limit");
    assert_int_equal(r->type, REDIS_REPLY_ARRAY);
    assert_string_equal(r->element[1]->str, "normal 1073741824 268435456 60 slave 268435456 "
                                            "67108864 60 pubsub 33554432 8388608 60");
    freeReplyObject(r);
    r = run(b, "CONFIG SET client-output-buffer-limit %s", "normal 256mb 0 0");
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);
    r = run(env.upstream, "CONFIG GET client-output-buffer-limit");
    assert_non_null(strstr(r->element[1]->str, "normal 268435456 0 0"));
    freeReplyObject(r);
    r = run(b, "CONFIG GET client-output-buffer-limit");
    assert_string_equal(r->element[1]->str, "normal 268435456 0 0 slave 268435456 67108864 60 "
                                            "pubsub 33554432 8388608 60");
    freeReplyObject(r);
    static const char *const bad[] = {"normal 256mb 0", "master 1 1 1", "normal 1 1 -1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        redisReply *want = run(env.upstream, "CONFIG SET client-output-buffer-limit %s", bad[i]);
        redisReply *got = run(b, "CONFIG SET client-output-buffer-limit %s", bad[i]);
        assert_int_equal(got->type, REDIS_REPLY_ERROR);
        assert_string_equal(got->str, want->str);
        freeReplyObject(want);
        freeReplyObject(got);
    }
    freeReplyObject(
        run(env.upstream, "CONFIG SET client-output-buffer-limit %s", "normal 0 0 0"));
    harness_bulwark_stop(b);
}

/*
 * client-query-buffer-limit counts the unparsed query buffer, as Redis:
 * MSET of two 40 MB values passes a 64mb limit; one 70 MB value closes the
 * connection. Checked against Redis directly.
 */
static void
test_query_buffer_limit_counts_unparsed(void **state)
{
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(env.upstream->port,
                              HARNESS_ARGS("--client-query-buffer-limit", "64mb"));
    freeReplyObject(run(env.upstream, "CONFIG SET client-query-buffer-limit 64mb"));
    size_t n = 40u * MB;
    char *v = bw_malloc(70u * MB);
    memset(v, 'q', 70u * MB);
    const struct harness_server *both[] = {env.upstream, b};
    for (int i = 0; i < 2; i++) {
        redisReply *r = run(both[i], "MSET qb:1 %b qb:2 %b", v, n, v, n);
        assert_int_equal(r->type, REDIS_REPLY_STATUS);
        assert_string_equal(r->str, "OK");
        freeReplyObject(r);
        redisContext *c = harness_redis_connect(both[i]);
        r = redisCommand(c, "SET qb:3 %b", v, (size_t)70u * MB);
        assert_true(r == NULL || r->type == REDIS_REPLY_ERROR);
        if (r != NULL)
            freeReplyObject(r);
        redisFree(c);
    }
    bw_free(v);
    freeReplyObject(run(env.upstream, "CONFIG SET client-query-buffer-limit 1gb"));
    freeReplyObject(run(env.upstream, "DEL qb:1 qb:2 qb:3"));
    assert_true(log_has(b, "Closing client that reached max query buffer length"));
    harness_bulwark_stop(b);
}

/*
 * With a low descriptor limit (RLIMIT_NOFILE 64, soft and hard, set on the
 * running bulwark): CONFIG SET maxclients above what fits is refused with
 * Redis's message; 100 clients each get +PONG or -ERR max number of
 * clients reached, never silence (EMFILE answered through the spare
 * descriptor).
 */
static void
test_maxclients_and_descriptors(void **state)
{
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(env.upstream->port, HARNESS_ARGS("--upstream-pinned-max", "4"));
    struct rlimit low = {64, 64};
    if (prlimit(b->pid, RLIMIT_NOFILE, &low, NULL) != 0) {
        fprintf(stderr, "prlimit: %s: skipped\n", strerror(errno));
        harness_bulwark_stop(b);
        skip();
    }
    int fit = 64 - (32 + 1 + 2 + 4);
    char want[256];
    snprintf(want, sizeof(want),
             "ERR CONFIG SET failed (possibly related to argument 'maxclients') - The operating "
             "system is not able to handle the specified number of clients, try with %d",
             fit);
    redisReply *r = run(b, "CONFIG SET maxclients 50000");
    assert_int_equal(r->type, REDIS_REPLY_ERROR);
    assert_string_equal(r->str, want);
    freeReplyObject(r);
    r = run(b, "CONFIG GET maxclients");
    assert_string_equal(r->element[1]->str, "10000");
    freeReplyObject(r);

    enum { N = 100 };
    struct harness_conn *c[N];
    int pong = 0, refused = 0;
    for (int i = 0; i < N; i++) {
        c[i] = harness_conn_open(b);
        harness_conn_send_str(c[i], "PING\r\n");
    }
    for (int i = 0; i < N; i++) {
        struct harness_buf out = {0};
        enum harness_read rd = harness_conn_read_reply(c[i], 5000, &out);
        if (rd == HARNESS_READ_REPLY && strcmp(out.data, "+PONG\r\n") == 0)
            pong++;
        else if (rd == HARNESS_READ_REPLY &&
                 strcmp(out.data, "-ERR max number of clients reached\r\n") == 0)
            refused++;
        else
            fprintf(stderr, "client %d: read %d '%s'\n", i, (int)rd, out.data ? out.data : "");
        harness_buf_free(&out);
    }
    for (int i = 0; i < N; i++)
        harness_conn_close(c[i]);
    fprintf(stderr, "maxclients: %d +PONG, %d refused\n", pong, refused);
    assert_int_equal(pong + refused, N);
    assert_true(pong > 0 && refused > 0);
    uint64_t deadline = bw_now_ms() + 5000; /* bulwark sees the 100 closes */
    for (;;) {
        /* until it has, this INFO's own connection may be one too many */
        redisContext *ic = harness_redis_connect(b);
        redisReply *ir = redisCommand(ic, "INFO proxy");
        bool done = ir != NULL && ir->type == REDIS_REPLY_STRING &&
                    strstr(ir->str, "\nconnected_clients:1\r\n") != NULL;
        if (ir != NULL)
            freeReplyObject(ir);
        redisFree(ic);
        if (done || bw_now_ms() > deadline)
            break;
        usleep(10 * 1000);
    }
    r = run(b, "CONFIG SET maxclients 20");
    assert_string_equal(r->str, "OK");
    freeReplyObject(r);
    harness_bulwark_stop(b);
}

/* SIGTERM with a client blocked in BLPOP 0: bulwark exits at once, not after shutdown-timeout. */
static void
test_shutdown_does_not_wait_for_blocked(void **state)
{
    (void)state;
    struct harness_server *b =
        harness_bulwark_start(env.upstream->port, HARNESS_ARGS("--shutdown-timeout", "10"));
    struct harness_conn *c = harness_conn_open(b);
    harness_conn_send_str(c, "BLPOP sd:never 0\r\n");
    uint64_t deadline = bw_now_ms() + 5000;
    while (harness_info_ll(b, "proxy", "pinned_connections") < 1 && bw_now_ms() < deadline)
        usleep(10 * 1000);
    usleep(100 * 1000);
    uint64_t t0 = bw_now_ms();
    harness_bulwark_stop(b);
    uint64_t took = bw_now_ms() - t0;
    fprintf(stderr, "shutdown with a client in BLPOP 0 took %llu ms\n", (unsigned long long)took);
    assert_true(took < 2000);
    harness_conn_close(c);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_slow_reader_closed_at_hard_limit),
        cmocka_unit_test(test_half_closed_client_freed),
        cmocka_unit_test(test_subscriber_soft_limit),
        cmocka_unit_test(test_config_set_output_limit),
        cmocka_unit_test(test_query_buffer_limit_counts_unparsed),
        cmocka_unit_test(test_maxclients_and_descriptors),
        cmocka_unit_test(test_shutdown_does_not_wait_for_blocked),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
