/*
 * test_upstream: what clients see when the upstream Redis dies, hangs or comes
 * back — a prompt -ERR naming the upstream (never a hang), bulwark's own
 * INFO still answering, and traffic resuming by itself within 2 s.
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

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* Poll GET until it answers without error or deadline_ms passes; returns ms taken or -1. */
static long
wait_until_served(const struct harness_server *b, uint64_t deadline_ms)
{
    uint64_t start = bw_now_ms();
    while (bw_now_ms() - start < deadline_ms) {
        redisContext *c = harness_redis_connect(b);
        redisReply *r = redisCommand(c, "SET probe 1");
        bool ok = r != NULL && r->type == REDIS_REPLY_STATUS;
        freeReplyObject(r);
        redisFree(c);
        if (ok)
            return (long)(bw_now_ms() - start);
        usleep(20 * 1000);
    }
    return -1;
}

/* One GET through b: true when it is an error reply that names the upstream. */
static bool
get_fails_naming_upstream(const struct harness_server *b, int upstream_port, uint64_t *ms)
{
    char want[64];
    snprintf(want, sizeof(want), "upstream 127.0.0.1:%d", upstream_port);
    redisContext *c = harness_redis_connect(b);
    uint64_t t0 = bw_now_ms();
    redisReply *r = redisCommand(c, "GET probe"); /* exists: never answered by the Bloom gate */
    *ms = bw_now_ms() - t0;
    bool ok = r != NULL && r->type == REDIS_REPLY_ERROR && strstr(r->str, want) != NULL;
    if (!ok)
        fprintf(stderr, "unexpected reply: %s\n", r == NULL ? c->errstr : r->str);
    freeReplyObject(r);
    redisFree(c);
    return ok;
}

static void
test_killed_upstream_gives_prompt_errors_then_recovers(void **state)
{
    (void)state;
    struct harness_server *r = harness_redis_start(NULL);
    struct harness_server *b = harness_bulwark_start(r->port, NULL);
    uint64_t ms;
    assert_true(wait_until_served(b, 5000) >= 0);

    harness_redis_kill(r);
    /* The first request may be the one that finds the socket closed. */
    for (int i = 0; i < 20; i++) {
        assert_true(get_fails_naming_upstream(b, r->port, &ms));
        assert_true(ms < 1000);
    }
    /* bulwark's own sections still answer while Redis is down. */
    redisContext *c = harness_redis_connect(b);
    redisReply *info = redisCommand(c, "INFO upstream");
    assert_non_null(info);
    assert_int_equal(info->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(info->str, "upstream_link_status:down"));
    freeReplyObject(info);
    redisFree(c);

    harness_redis_restart(r);
    long took = wait_until_served(b, 5000);
    fprintf(stderr, "traffic resumed %ld ms after Redis came back\n", took);
    assert_true(took >= 0 && took <= 2000);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

static void
test_hung_upstream_times_out(void **state)
{
    (void)state;
    struct harness_server *r = harness_redis_start(NULL);
    struct harness_server *b =
        harness_bulwark_start(r->port, HARNESS_ARGS("--upstream-timeout", "300"));
    uint64_t ms;
    assert_true(wait_until_served(b, 5000) >= 0);

    assert_int_equal(kill(r->pid, SIGSTOP), 0);
    assert_true(get_fails_naming_upstream(b, r->port, &ms));
    fprintf(stderr, "hung upstream answered with an error after %llu ms\n",
            (unsigned long long)ms);
    assert_true(ms >= 250 && ms < 1500);
    assert_int_equal(kill(r->pid, SIGCONT), 0);
    long took = wait_until_served(b, 5000);
    assert_true(took >= 0 && took <= 2000);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

/* Many pipelining clients when Redis dies: every request gets a reply. */
static void
test_kill_mid_load_answers_every_request(void **state)
{
    (void)state;
    enum { NCLIENTS = 20, DEPTH = 200 };
    struct harness_server *r = harness_redis_start(NULL);
    struct harness_server *b = harness_bulwark_start(r->port, NULL);
    redisContext *cs[NCLIENTS];
    assert_true(wait_until_served(b, 5000) >= 0);
    for (int i = 0; i < NCLIENTS; i++) {
        cs[i] = harness_redis_connect(b);
        for (int j = 0; j < DEPTH; j++)
            assert_int_equal(redisAppendCommand(cs[i], "SET k%d:%d %d", i, j, j), REDIS_OK);
    }
    for (int i = 0; i < NCLIENTS; i++) {
        int done = 0;
        /* Flush half the clients before the kill, half after. */
        if (i == NCLIENTS / 2)
            harness_redis_kill(r);
        while (!done)
            assert_int_equal(redisBufferWrite(cs[i], &done), REDIS_OK);
    }
    int ok = 0, errors = 0;
    for (int i = 0; i < NCLIENTS; i++) {
        for (int j = 0; j < DEPTH; j++) {
            redisReply *rep = NULL;
            assert_int_equal(redisGetReply(cs[i], (void **)&rep), REDIS_OK);
            assert_non_null(rep);
            if (rep->type == REDIS_REPLY_STATUS)
                ok++;
            else if (rep->type == REDIS_REPLY_ERROR && strstr(rep->str, "upstream") != NULL)
                errors++;
            freeReplyObject(rep);
        }
        redisFree(cs[i]);
    }
    assert_int_equal(ok + errors, NCLIENTS * DEPTH);
    assert_true(errors > 0);
    harness_redis_restart(r);
    assert_true(wait_until_served(b, 5000) >= 0);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_killed_upstream_gives_prompt_errors_then_recovers),
        cmocka_unit_test(test_hung_upstream_times_out),
        cmocka_unit_test(test_kill_mid_load_answers_every_request),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
