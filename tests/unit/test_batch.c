/*
 * Unit tests of proxy/batch.c: de-duplication, the order replies reach their
 * slots, the batch-max-keys limit, mget-mode re-checks, flush before a
 * client's other requests, and a batch freed with keys waiting. client.c,
 * upstream.c and watch.c are replaced by fakes that record what the batcher
 * does; libevent is real.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/batch.h"
#include "proxy/client.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/upstream.h"
#include "proxy/watch.h"

/* ---- fakes --------------------------------------------------------------- */

struct client {
    uint64_t epoch;    /* client_batch_epoch() */
    uint64_t inflight; /* client_batch_inflight() */
};

struct client_slot {
    struct client *c; /* owner, or NULL for a detached slot */
    client_slot_fn *fn; /* detached: receives the reply */
    void *fn_data;      /* its argument */
    char reply[256];  /* bytes given by client_slot_finish() */
    size_t len;       /* bytes in reply */
    bool done;        /* finished */
};

#define MAX_SLOTS 64
#define MAX_SENT 64
static struct client_slot slots[MAX_SLOTS];
static int nslots;

/* One request the batcher sent upstream. */
struct sent {
    char cmd[512];
    size_t len;
    upstream_reply_fn *fn;
    void *privdata;
};
static struct sent sent[MAX_SENT];
static int nsent;
static struct watch_counters counters;

struct client_slot *
client_slot_new_batched(struct client *c, uint64_t epoch)
{
    struct client_slot *s = &slots[nslots++];
    memset(s, 0, sizeof(*s));
    s->c = c;
    c->epoch = epoch;
    c->inflight++;
    return s;
}

void
client_slot_joined_batch(struct client_slot *s, uint64_t epoch)
{
    if (s->c != NULL)
        s->c->epoch = epoch;
}

struct client_slot *
client_slot_new_detached(client_slot_fn *fn, void *data)
{
    struct client_slot *s = &slots[nslots++];
    memset(s, 0, sizeof(*s));
    s->fn = fn;
    s->fn_data = data;
    return s;
}

int
client_proto(const struct client *c)
{
    (void)c;
    return 2;
}

void
client_slot_finish(struct client_slot *s, const char *data, size_t len)
{
    assert_false(s->done);
    if (s->fn != NULL) {
        s->done = true;
        s->fn(s->fn_data, data, len);
        return;
    }
    memcpy(s->reply, data, len);
    s->len = len;
    s->done = true;
    s->c->inflight--;
}

/* The moved reply (batch.c hands a lone GET's reply over with it). */
void
client_slot_finish_move(struct client_slot *s, struct evbuffer *src, size_t len)
{
    char buf[256];
    assert_true(len <= sizeof(buf));
    assert_int_equal(evbuffer_remove(src, buf, len), (int)len);
    client_slot_finish(s, buf, len);
}

uint64_t
client_batch_epoch(const struct client *c)
{
    return c->epoch;
}

uint64_t
client_batch_inflight(const struct client *c)
{
    return c->inflight;
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

bool
watch_gate_closed(const struct watch *w)
{
    (void)w;
    return false;
}

struct watch_counters *
watch_counters(struct watch *w)
{
    (void)w;
    return &counters;
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

static struct proxy px;

static int
setup(void **state)
{
    (void)state;
    memset(&px, 0, sizeof(px));
    px.base = event_base_new();
    px.cfg.batch_max_keys = 128;
    px.cfg.batch_window_us = 0;
    px.cfg.batch_mode = BATCH_PIPELINE;
    nslots = nsent = 0;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
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
    struct client a = {0}, b = {0}, c = {0};
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, &a, "k", 1);
    batch_get(bt, &b, "k", 1);
    batch_get(bt, &c, "j", 1);
    batch_get(bt, &a, "k", 1);
    assert_int_equal(nsent, 0); /* nothing before the turn ends */
    turn();
    assert_int_equal(nsent, 2);
    assert_string_equal(sent[0].cmd, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");
    assert_string_equal(sent[1].cmd, "*2\r\n$3\r\nGET\r\n$1\r\nj\r\n");
    assert_int_equal(px.stats.batch_dedup_saved, 2);
    answer(1, "$2\r\njj\r\n");
    answer(0, "$-1\r\n");
    assert_string_equal(slots[0].reply, "$-1\r\n");
    assert_string_equal(slots[1].reply, "$-1\r\n");
    assert_string_equal(slots[2].reply, "$2\r\njj\r\n");
    assert_string_equal(slots[3].reply, "$-1\r\n");
    assert_int_equal(a.inflight + b.inflight + c.inflight, 0);
    assert_int_equal(px.stats.batch_batches, 1);
    assert_int_equal(px.stats.batch_keys, 2);
    batch_free(bt);
}

static void
test_max_keys_sends_full_batch_at_once(void **state)
{
    struct client a = {0};
    (void)state;
    px.cfg.batch_max_keys = 2;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, &a, "k1", 2);
    assert_int_equal(nsent, 0);
    batch_get(bt, &a, "k2", 2);
    assert_int_equal(nsent, 2); /* full: sent without waiting for the turn */
    batch_get(bt, &a, "k3", 2);
    turn();
    assert_int_equal(nsent, 3);
    assert_int_equal(px.stats.batch_max_keys_seen, 2);
    for (int i = 0; i < 3; i++)
        answer(i, ":1\r\n");
    batch_free(bt);
}

static void
test_mget_mode_rechecks_nils(void **state)
{
    struct client a = {0}, b = {0};
    (void)state;
    px.cfg.batch_mode = BATCH_MGET;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, &a, "s", 1);
    batch_get(bt, &b, "l", 1);
    assert_true(batch_client_busy(bt, &a));
    turn();
    assert_int_equal(nsent, 1);
    assert_string_equal(sent[0].cmd, "*3\r\n$4\r\nMGET\r\n$1\r\ns\r\n$1\r\nl\r\n");
    answer(0, "*2\r\n$3\r\nval\r\n$-1\r\n");
    assert_string_equal(slots[0].reply, "$3\r\nval\r\n");
    assert_false(slots[1].done);
    assert_int_equal(nsent, 2); /* the nil is asked again as a lone GET */
    assert_string_equal(sent[1].cmd, "*2\r\n$3\r\nGET\r\n$1\r\nl\r\n");
    answer(1, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_string_equal(slots[1].reply,
                        "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_int_equal(px.stats.batch_rechecks, 1);
    assert_false(batch_client_busy(bt, &a));
    batch_free(bt);
}

static void
test_mget_error_reaches_every_waiter(void **state)
{
    struct client a = {0};
    (void)state;
    px.cfg.batch_mode = BATCH_MGET;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, &a, "x", 1);
    batch_get(bt, &a, "y", 1);
    turn();
    sent[0].fn(sent[0].privdata, NULL, 0, "-ERR upstream 127.0.0.1:1 unavailable: down\r\n");
    assert_string_equal(slots[0].reply, "-ERR upstream 127.0.0.1:1 unavailable: down\r\n");
    assert_string_equal(slots[1].reply, "-ERR upstream 127.0.0.1:1 unavailable: down\r\n");
    batch_free(bt);
}

static void
test_flush_before_clients_other_requests(void **state)
{
    struct client a = {0}, other = {0};
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, &a, "k", 1);
    batch_before_forward(bt, &other); /* has nothing waiting: no flush */
    assert_int_equal(nsent, 0);
    batch_before_forward(bt, &a); /* its GET must reach Redis before its write */
    assert_int_equal(nsent, 1);
    answer(0, "$1\r\nv\r\n");
    batch_free(bt);
}

/* A slot made earlier (a hot key's miss, a GET woken from a lease) that joins
 * a later batch: its client's write still flushes that batch first. */
static void
test_flush_before_write_of_late_joined_slot(void **state)
{
    struct client a = {0};
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, &a, "x", 1);
    turn(); /* epoch 0 flushed; a's slot was made then */
    struct client_slot *late = client_slot_new_batched(&a, 0);
    batch_get_slot(bt, late, "k", 1);
    assert_int_equal(nsent, 1);
    batch_before_forward(bt, &a);
    assert_int_equal(nsent, 2);
    answer(0, "$1\r\nv\r\n");
    answer(1, "$1\r\nw\r\n");
    assert_string_equal(late->reply, "$1\r\nw\r\n");
    batch_free(bt);
}

static void
test_free_with_keys_waiting_sends_them(void **state)
{
    struct client a = {0};
    (void)state;
    struct batch *bt = batch_new(&px, NULL, 0);
    batch_get(bt, &a, "k", 1);
    batch_free(bt); /* the entry now belongs to the request in flight */
    assert_int_equal(nsent, 1);
    answer(0, "$1\r\nv\r\n");
    assert_string_equal(slots[0].reply, "$1\r\nv\r\n");
}

/* MGET split into its keys: one array in key order, WRONGTYPE as nil. */
static void
test_mget_key_by_key(void **state)
{
    struct client a = {0};
    (void)state;
    px.cfg.batch_mode = BATCH_MGET;
    struct batch *bt = batch_new(&px, NULL, 0);
    struct resp_arg argv[] = {{"MGET", 4}, {"a", 1}, {"l", 1}, {"a", 1}, {"z", 1}};
    struct resp_request req = {5, argv, NULL, 0, false};
    bool fetch[] = {true, true, true, false}; /* z: absent per the gate */
    batch_mget(bt, &a, &req, fetch);
    turn();
    assert_int_equal(nsent, 1);
    assert_string_equal(sent[0].cmd, "*3\r\n$4\r\nMGET\r\n$1\r\na\r\n$1\r\nl\r\n");
    answer(0, "*2\r\n$2\r\nva\r\n$-1\r\n");
    assert_false(slots[0].done); /* l is re-checked */
    answer(1, "-WRONGTYPE Operation against a key holding the wrong kind of value\r\n");
    assert_true(slots[0].done);
    assert_string_equal(slots[0].reply, "*4\r\n$2\r\nva\r\n$-1\r\n$2\r\nva\r\n$-1\r\n");
    assert_int_equal(a.inflight, 0);
    batch_free(bt);
}

/* A keyspace's batcher reads its keys in its own database. */
static void
test_batch_reads_in_its_database(void **state)
{
    struct client a = {0};
    (void)state;
    struct batch *b5 = batch_new(&px, NULL, 5);
    batch_get(b5, &a, "k", 1);
    batch_get(b5, &a, "j", 1);
    turn();
    assert_true(nsent >= 1);
    for (int i = 0; i < nsent; i++)
        assert_int_equal(sent_db[i], 5);
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
        cmocka_unit_test_setup_teardown(test_flush_before_clients_other_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(test_flush_before_write_of_late_joined_slot, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_free_with_keys_waiting_sends_them, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mget_key_by_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_batch_reads_in_its_database, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
