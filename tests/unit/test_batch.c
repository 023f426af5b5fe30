/*
 * Unit tests of proxy/batch.c: de-duplication, the order replies reach their
 * slots, the batch-max-keys limit, mget-mode re-checks, flush before a
 * client's other requests, and a batch freed with keys waiting. The reply
 * slots are the real ones (slots.c) of sessions without a socket; upstream.c
 * is a fake that records what the batcher sends; libevent is real.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/batch.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/upstream.h"
#include "proxy/session.h"
#include "proxy/slots.h"

/* ---- fakes and a client without a socket --------------------------------- */

/* A client as the batcher sees it: a session whose replies land in out. */
struct tclient {
    struct session s;
    struct evbuffer *out;
};

#define MAX_SENT 64
#define MAX_CLIENTS 8
static struct tclient *clients[MAX_CLIENTS];
static int nclients;

/* One request the batcher sent upstream. */
struct sent {
    char cmd[512];
    size_t len;
    upstream_reply_fn *fn;
    void *privdata;
};
static struct sent sent[MAX_SENT];
static int nsent;
static struct proxy px;

static void
tc_flushed(struct session *s)
{
    (void)s;
}

static const struct slotq_ops tc_ops = {.flushed = tc_flushed, .grew = tc_flushed};

/* A new client (freed by teardown). */
static struct session *
tc_new(void)
{
    struct tclient *c = calloc(1, sizeof(*c));
    assert_non_null(c);
    c->out = evbuffer_new();
    slotq_init(&c->s.q, c->out, &c->s, &tc_ops, &px.cmdstats, px.base);
    c->s.px = &px;
    assert_true(nclients < MAX_CLIENTS);
    clients[nclients++] = c;
    return &c->s;
}

/* Everything s has received so far, as a string. */
static const char *
tc_out(struct session *s)
{
    static char buf[1024];
    struct tclient *c = (struct tclient *)s;
    size_t n = evbuffer_get_length(c->out);
    assert_true(n < sizeof(buf));
    evbuffer_copyout(c->out, buf, n);
    buf[n] = '\0';
    return buf;
}

static int sent_db[64]; /* database of each request sent (upstream_send_db) */

int
upstream_send_db(struct upstream_conn *u, int db, const char *cmd, size_t len,
                 upstream_reply_fn *fn, void *privdata, const char **err)
{
    if (nsent < 64)
        sent_db[nsent] = db;
    return upstream_send(u, cmd, len, fn, privdata, err);
}

int
upstream_send(struct upstream_conn *u, const char *cmd, size_t len, upstream_reply_fn *fn,
              void *privdata, const char **err)
{
    (void)u;
    (void)err;
    assert_true(nsent < MAX_SENT && len < sizeof(sent[0].cmd));
    memcpy(sent[nsent].cmd, cmd, len);
    sent[nsent].cmd[len] = '\0';
    sent[nsent].len = len;
    sent[nsent].fn = fn;
    sent[nsent].privdata = privdata;
    nsent++;
    return 0;
}

/* Answer sent request i with reply (RESP bytes). */
static void
answer(int i, const char *reply)
{
    struct evbuffer *in = evbuffer_new();
    evbuffer_add(in, reply, strlen(reply));
    sent[i].fn(sent[i].privdata, in, strlen(reply), NULL);
    evbuffer_free(in);
}

/* ---- fixture ----------------------------------------------------------- */

static int
setup(void **state)
{
    (void)state;
    memset(&px, 0, sizeof(px));
    px.base = event_base_new();
    px.cfg.batch_max_keys = 128;
    px.cfg.batch_window_us = 0;
    px.cfg.batch_mode = BATCH_PIPELINE;
    nsent = 0;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    for (int i = 0; i < nclients; i++) {
        slotq_orphan(&clients[i]->s.q);
        evbuffer_free(clients[i]->out);
        free(clients[i]);
    }
    nclients = 0;
    event_base_free(px.base);
    return 0;
}

/* Run the loop once: the end-of-turn flush fires. */
static void
turn(void)
{
    event_base_loop(px.base, EVLOOP_NONBLOCK);
}

/* ---- tests --------------------------------------------------------------- */

static void
test_dedup_and_order(void **state)
{
    struct session *a = tc_new(), *b = tc_new(), *c = tc_new();
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "k", 1);
    batch_get(bt, b, "k", 1);
    batch_get(bt, c, "j", 1);
    batch_get(bt, a, "k", 1);
    assert_int_equal(nsent, 0); /* nothing before the turn ends */
    turn();
    assert_int_equal(nsent, 2);
    assert_string_equal(sent[0].cmd, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert_string_equal(sent[1].cmd, "*2\r\n$3\r\nGET\r\n$1\r\nj\r\n");
    assert_int_equal(px.stats.batch_dedup_saved, 2);
    answer(1, "$2\r\njj\r\n");
    assert_string_equal(tc_out(c), "$2\r\njj\r\n");
    assert_string_equal(tc_out(a), "");
    answer(0, "$-1\r\n");
    assert_string_equal(tc_out(a), "$-1\r\n$-1\r\n");
    assert_string_equal(tc_out(b), "$-1\r\n");
    assert_int_equal(a->q.nbatched + b->q.nbatched + c->q.nbatched, 0);
    assert_int_equal(a->q.n + b->q.n + c->q.n, 0);
    assert_int_equal(px.stats.batch_batches, 1);
    assert_int_equal(px.stats.batch_keys, 2);
    batch_free(bt);
}

static void
test_max_keys_sends_full_batch_at_once(void **state)
{
    struct session *a = tc_new();
    (void)state;
    px.cfg.batch_max_keys = 2;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "k1", 2);
    assert_int_equal(nsent, 0);
    batch_get(bt, a, "k2", 2);
    assert_int_equal(nsent, 2); /* full: sent without waiting for the turn */
    batch_get(bt, a, "k3", 2);
    turn();
    assert_int_equal(nsent, 3);
    assert_int_equal(px.stats.batch_max_keys_seen, 2);
    for (int i = 0; i < 3; i++)
        answer(i, ":1\r\n");
    assert_string_equal(tc_out(a), ":1\r\n:1\r\n:1\r\n");
    batch_free(bt);
}

static void
test_mget_mode_rechecks_nils(void **state)
{
    struct session *a = tc_new(), *b = tc_new();
    (void)state;
    px.cfg.batch_mode = BATCH_MGET;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "s", 1);
    batch_get(bt, b, "l", 1);
    assert_true(batch_client_busy(bt, a));
    turn();
    assert_int_equal(nsent, 1);
    assert_string_equal(sent[0].cmd, "*3\r\n$4\r\nMGET\r\n$1\r\ns\r\n$1\r\nl\r\n");
    answer(0, "*2\r\n$3\r\nval\r\n$-1\r\n");
    assert_string_equal(tc_out(a), "$3\r\nval\r\n");
    assert_string_equal(tc_out(b), ""); /* its nil is asked again as a lone GET */
    assert_int_equal(nsent, 2);
    assert_string_equal(sent[1].cmd, "*2\r\n$3\r\nGET\r\n$1\r\nl\r\n");
    answer(1, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_string_equal(tc_out(b),
                        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_int_equal(px.stats.batch_rechecks, 1);
    assert_false(batch_client_busy(bt, a));
    assert_false(batch_client_busy(bt, b));
    batch_free(bt);
}

/*
 * The MGET reply is read the short way (batch.c's walk): values with CR LF
 * and digits inside, an empty value, RESP2 and RESP3 nulls each reach the
 * right key; a reply of another shape (an element that is not a string, a
 * length that lies) is read by the general parser and answered as before.
 */
static void
test_mget_reply_shapes(void **state)
{
    struct session *a = tc_new();
    (void)state;
    px.cfg.batch_mode = BATCH_MGET;
    struct batch *bt = batch_new(&px, NULL, 0);
    const char *keys[] = {"k0", "k1", "k2", "k3", "k4"};
    for (int i = 0; i < 5; i++)
        batch_get(bt, a, keys[i], 2);
    turn();
    assert_int_equal(nsent, 1);
    answer(0, "*5\r\n$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n_\r\n$12\r\n$3\r\n:1\r\n*1\r\n\r\n");
    /* k2 and k3 read nil: asked again, one lone GET each, in key order */
    assert_int_equal(nsent, 3);
    assert_string_equal(sent[1].cmd, "*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n");
    assert_string_equal(sent[2].cmd, "*2\r\n$3\r\nGET\r\n$2\r\nk3\r\n");
    assert_string_equal(tc_out(a), "$4\r\na\r\nb\r\n$0\r\n\r\n"); /* k4 waits behind */
    answer(1, "$-1\r\n");
    answer(2, "$1\r\nz\r\n");
    assert_string_equal(tc_out(a), "$4\r\na\r\nb\r\n$0\r\n\r\n$-1\r\n$1\r\nz\r\n"
                                   "$12\r\n$3\r\n:1\r\n*1\r\n\r\n");
    assert_int_equal(px.stats.batch_rechecks, 2);

    /* an integer where a string was due: the general parser, a lone GET for it */
    batch_get(bt, a, "m0", 2);
    batch_get(bt, a, "m1", 2);
    turn();
    assert_int_equal(nsent, 4);
    answer(3, "*2\r\n:7\r\n$2\r\nvv\r\n");
    assert_int_equal(nsent, 5);
    assert_string_equal(sent[4].cmd, "*2\r\n$3\r\nGET\r\n$2\r\nm0\r\n");
    answer(4, "$2\r\nuu\r\n");
    const char *out = tc_out(a);
    assert_non_null(strstr(out, "*1\r\n\r\n$2\r\nuu\r\n$2\r\nvv\r\n"));

    /* the count or a length lies: no key gets a piece of another's bytes */
    struct session *b = tc_new();
    batch_get(bt, b, "n0", 2);
    batch_get(bt, b, "n1", 2);
    turn();
    assert_int_equal(nsent, 6);
    answer(5, "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$-1\r\n");
    assert_string_equal(tc_out(b), "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$-1\r\n"
                                   "*3\r\n$1\r\nx\r\n$1\r\ny\r\n$-1\r\n");
    batch_free(bt);
}

/* A key longer than the entries kept for reuse, and many waiters on one key. */
static void
test_long_key_and_many_waiters(void **state)
{
    struct session *a = tc_new();
    (void)state;
    char key[300];
    memset(key, 'q', sizeof(key));
    struct batch *bt = batch_new(&px, NULL, 0);
    for (int i = 0; i < 9; i++)
        batch_get(bt, a, key, sizeof(key));
    turn();
    assert_int_equal(nsent, 1);
    assert_int_equal(sent[0].len, 4 + 9 + 6 + sizeof(key) + 2);
    assert_int_equal(memcmp(sent[0].cmd, "*2\r\n$3\r\nGET\r\n$300\r\nqqq", 22), 0);
    answer(0, ":5\r\n");
    assert_string_equal(tc_out(a), ":5\r\n:5\r\n:5\r\n:5\r\n:5\r\n:5\r\n:5\r\n:5\r\n:5\r\n");
    assert_int_equal(px.stats.batch_dedup_saved, 8);
    batch_free(bt);
}

static void
test_mget_error_reaches_every_waiter(void **state)
{
    struct session *a = tc_new();
    (void)state;
    px.cfg.batch_mode = BATCH_MGET;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "x", 1);
    batch_get(bt, a, "y", 1);
    turn();
    sent[0].fn(sent[0].privdata, NULL, 0, "-ERR upstream 127.0.0.1:1 unavailable: down\r\n");
    assert_string_equal(tc_out(a), "-ERR upstream 127.0.0.1:1 unavailable: down\r\n"
                                   "-ERR upstream 127.0.0.1:1 unavailable: down\r\n");
    batch_free(bt);
}

static void
test_flush_before_clients_other_requests(void **state)
{
    struct session *a = tc_new(), *other = tc_new();
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "k", 1);
    batch_before_forward(bt, other); /* has nothing waiting: no flush */
    assert_int_equal(nsent, 0);
    batch_before_forward(bt, a); /* its GET must reach Redis before its write */
    assert_int_equal(nsent, 1);
    answer(0, "$1\r\nv\r\n");
    assert_string_equal(tc_out(a), "$1\r\nv\r\n");
    batch_free(bt);
}

/* A slot made earlier (a hot key's miss, a GET woken from a lease) that joins
 * a later batch: its client's write still flushes that batch first. */
static void
test_flush_before_write_of_late_joined_slot(void **state)
{
    struct session *a = tc_new();
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "x", 1);
    turn(); /* epoch 0 flushed; a's slot was made then */
    struct slot *late = slot_new(&a->q, SLOT_BATCHED);
    batch_get_slot(bt, late, "k", 1);
    assert_int_equal(nsent, 1);
    batch_before_forward(bt, a);
    assert_int_equal(nsent, 2);
    answer(1, "$1\r\nw\r\n");
    assert_string_equal(tc_out(a), ""); /* behind x's reply */
    answer(0, "$1\r\nv\r\n");
    assert_string_equal(tc_out(a), "$1\r\nv\r\n$1\r\nw\r\n");
    batch_free(bt);
}

static void
test_free_with_keys_waiting_sends_them(void **state)
{
    struct session *a = tc_new();
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "k", 1);
    batch_free(bt); /* the entry now belongs to the request in flight */
    assert_int_equal(nsent, 1);
    answer(0, "$1\r\nv\r\n");
    assert_string_equal(tc_out(a), "$1\r\nv\r\n");
}

/* A client gone before its reply: the orphaned slot is freed by the answer. */
static void
test_orphaned_slot_freed_by_its_answer(void **state)
{
    struct session *a = tc_new(), *b = tc_new();
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "k", 1);
    batch_get(bt, b, "k", 1);
    turn();
    slotq_orphan(&a->q); /* a closes */
    answer(0, "$1\r\nv\r\n");
    assert_string_equal(tc_out(a), "");
    assert_string_equal(tc_out(b), "$1\r\nv\r\n");
    batch_free(bt);
}

/* MGET split into its keys: one array in key order, WRONGTYPE as nil. */
static void
test_mget_key_by_key(void **state)
{
    struct session *a = tc_new();
    (void)state;
    px.cfg.batch_mode = BATCH_MGET;
    struct batch *bt = batch_new(&px, NULL, 0);
    struct resp_arg argv[] = {{"MGET", 4}, {"a", 1}, {"l", 1}, {"a", 1}, {"z", 1}};
    struct resp_request req = {5, argv, NULL, 0, false, NULL};
    bool fetch[] = {true, true, true, false}; /* z: absent per the gate */
    batch_mget(bt, a, &req, fetch);
    turn();
    assert_int_equal(nsent, 1);
    assert_string_equal(sent[0].cmd, "*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nl\r\n");
    answer(0, "*2\r\n$2\r\nva\r\n$-1\r\n");
    assert_string_equal(tc_out(a), ""); /* l is re-checked */
    answer(1, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_string_equal(tc_out(a), "*4\r\n$2\r\nva\r\n$-1\r\n$2\r\nva\r\n$-1\r\n");
    assert_int_equal(a->q.nbatched, 0);
    batch_free(bt);
}

/* A RESP3 client's coalesced GET of a missing key reads RESP3's null. */
static void
test_resp3_client_gets_its_null(void **state)
{
    struct session *a = tc_new(), *b = tc_new();
    (void)state;
    a->proto = a->q.proto = 3;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, a, "k", 1);
    batch_get(bt, b, "k", 1);
    turn();
    answer(0, "$-1\r\n");
    assert_string_equal(tc_out(a), "_\r\n");
    assert_string_equal(tc_out(b), "$-1\r\n");
    batch_free(bt);
}

/* A keyspace's batcher reads its keys in its own database. */
static void
test_batch_reads_in_its_database(void **state)
{
    struct session *a = tc_new();
    (void)state;
    struct batch *b5 = batch_new(&px, NULL, 5);
    batch_get(b5, a, "k", 1);
    batch_get(b5, a, "j", 1);
    turn();
    assert_true(nsent >= 1);
    for (int i = 0; i < nsent; i++)
        assert_int_equal(sent_db[i], 5);
    for (int i = 0; i < nsent; i++)
        answer(i, ":0\r\n");
    batch_free(b5);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_dedup_and_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_max_keys_sends_full_batch_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mget_mode_rechecks_nils, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mget_error_reaches_every_waiter, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mget_reply_shapes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_key_and_many_waiters, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_before_clients_other_requests, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_flush_before_write_of_late_joined_slot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_with_keys_waiting_sends_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphaned_slot_freed_by_its_answer, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mget_key_by_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_resp3_client_gets_its_null, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_reads_in_its_database, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
