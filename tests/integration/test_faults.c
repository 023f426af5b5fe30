/*
 * test_faults: what clients see when the upstream fails under pipelined GET/SET
 * load (issue #18 item 1): every request gets a reply, no reply carries a
 * wrong value, bulwark stays alive and keys written on Redis afterwards read back.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <hiredis/read.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* ---- (a) the small repro: GET batching with nothing listening upstream --- */

/* Pairs of (GET k, SET k v) each connection pipelines in one write. */
#define REPRO_PAIRS 16
/* Times the connections send the pipeline while nothing listens. */
#define REPRO_ROUNDS 5
/* Deadline of all the replies of one connection, ms. */
#define REPRO_REPLY_MS 5000
/* Deadline of the recovery once Redis listens again, ms. */
#define REPRO_RECOVER_MS 5000

/* The pipeline: 16 x (GET k, SET k v) in one write. */
static void
repro_send(struct harness_conn *c)
{
    struct harness_buf req = {0};
    for (int i = 0; i < REPRO_PAIRS; i++)
        harness_buf_puts(&req, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                               "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    harness_conn_send(c, req.data, req.len, 0);
    harness_buf_free(&req);
}

/* Replies read from c within REPRO_REPLY_MS, at most want. */
static int
repro_read(struct harness_conn *c, int want)
{
    struct harness_buf got = {0};
    uint64_t deadline = bw_now_ms() + REPRO_REPLY_MS;
    int n = 0;
    while (n < want) {
        uint64_t now = bw_now_ms();
        int ms = now >= deadline ? 0 : (int)(deadline - now);
        harness_buf_reset(&got);
        if (harness_conn_read_reply(c, ms, &got) != HARNESS_READ_REPLY)
            break;
        n++;
    }
    harness_buf_free(&got);
    return n;
}

/* True when b answers "INFO proxy" on a fresh connection within 3 s. */
static bool
answers_info(const struct harness_server *b)
{
    struct harness_conn *c = harness_conn_open_addr(b->host, b->port);
    if (c == NULL)
        return false;
    struct harness_buf got = {0};
    harness_conn_send_str(c, "INFO proxy\r\n");
    bool ok = harness_conn_read_reply(c, 3000, &got) == HARNESS_READ_REPLY && got.data[0] == '$';
    harness_buf_free(&got);
    harness_conn_close(c);
    return ok;
}

/*
 * On c, "SET k <value>" until it answers +OK (errors allowed while the link
 * comes back) within REPRO_RECOVER_MS, then "GET k" must read value.
 */
static bool
repro_recovered(struct harness_conn *c, const char *value)
{
    char set[96], want[96];
    snprintf(set, sizeof(set), "SET k %s\r\n", value);
    snprintf(want, sizeof(want), "$%zu\r\n%s\r\n", strlen(value), value);
    uint64_t deadline = bw_now_ms() + REPRO_RECOVER_MS;
    struct harness_buf got = {0};
    bool ok = false;
    while (!ok && bw_now_ms() < deadline) {
        harness_buf_reset(&got);
        harness_conn_send_str(c, set);
        if (harness_conn_read_reply(c, REPRO_RECOVER_MS, &got) != HARNESS_READ_REPLY)
            break;
        ok = strcmp(got.data, "+OK\r\n") == 0;
        if (!ok)
            usleep(20 * 1000);
    }
    harness_buf_free(&got);
    return ok && harness_conn_roundtrip(c, "GET k\r\n", want);
}

static void
repro_run(int nconns)
{
    struct harness_server *r = harness_redis_start(NULL);
    harness_redis_kill(r); /* its port now has nothing listening */
    struct harness_server *b = harness_bulwark_start(r->port, NULL);
    struct harness_conn **cs = bw_calloc((size_t)nconns, sizeof(*cs));
    for (int i = 0; i < nconns; i++)
        cs[i] = harness_conn_open(b);
    int replies = 0;
    for (int round = 0; round < REPRO_ROUNDS; round++) {
        for (int i = 0; i < nconns; i++)
            repro_send(cs[i]);
        for (int i = 0; i < nconns; i++)
            replies += repro_read(cs[i], 2 * REPRO_PAIRS);
    }
    bool alive = answers_info(b);
    fprintf(stderr, "no upstream, %d connection(s) x %d rounds x %d requests: %d replies; INFO %s\n",
            nconns, REPRO_ROUNDS, 2 * REPRO_PAIRS, replies, alive ? "answered" : "NOT answered");
    assert_int_equal(replies, REPRO_ROUNDS * nconns * 2 * REPRO_PAIRS);
    assert_true(alive);

    harness_redis_restart(r); /* on the same port */
    int recovered = 0;
    for (int i = 0; i < nconns; i++) {
        char value[32];
        snprintf(value, sizeof(value), "v%d", i);
        recovered += repro_recovered(cs[i], value);
    }
    fprintf(stderr, "after Redis came back: %d of %d connections read their own write; INFO %s\n",
            recovered, nconns, answers_info(b) ? "answered" : "NOT answered");
    assert_int_equal(recovered, nconns);
    /* The same pipeline again, now answered in full and in order. */
    struct harness_buf got = {0};
    for (int i = 0; i < nconns; i++) {
        repro_send(cs[i]);
        for (int j = 0; j < 2 * REPRO_PAIRS; j++) {
            harness_buf_reset(&got);
            assert_int_equal(harness_conn_read_reply(cs[i], REPRO_REPLY_MS, &got),
                             HARNESS_READ_REPLY);
            char last[32]; /* connections run one after the other */
            snprintf(last, sizeof(last), "$2\r\nv%d\r\n", nconns - 1);
            const char *want = j % 2 ? "+OK\r\n" : i == 0 && j == 0 ? last : "$1\r\nv\r\n";
            assert_string_equal(got.data, want);
        }
    }
    struct harness_conn *fresh = harness_conn_open(b);
    assert_true(harness_conn_roundtrip(fresh, "GET k\r\n", "$1\r\nv\r\n"));
    harness_conn_close(fresh);
    harness_buf_free(&got);
    for (int i = 0; i < nconns; i++)
        harness_conn_close(cs[i]);
    bw_free(cs);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

static void
test_batch_no_upstream_one_conn(void **state)
{
    (void)state;
    repro_run(1);
}

static void
test_batch_no_upstream_eight_conns(void **state)
{
    (void)state;
    repro_run(8);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_no_upstream_one_conn),
        cmocka_unit_test(test_batch_no_upstream_eight_conns),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
