/*
 * Unit tests of proxy/slots.c, the reply FIFO of a connection: replies leave
 * in request order whatever order they are completed in, a reply made with
 * nothing pending goes straight out, RESP3 clients get RESP3's null for
 * bulwark's RESP2 one, parked bytes are counted, a closing owner orphans its
 * pending slots and whoever completes them frees them. No socket: the
 * output is a plain evbuffer.
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

#include "proxy/cmdstats.h"
#include "proxy/slots.h"

static struct event_base *base;
static struct cmdstats cs;
static struct evbuffer *out;
static struct slotq q;
static int flushes, grows;

static void
on_flushed(struct session *owner)
{
    (void)owner;
    flushes++;
}

static void
on_grew(struct session *owner)
{
    (void)owner;
    grows++;
}

static const struct slotq_ops ops = {.flushed = on_flushed, .grew = on_grew};

static int
setup(void **state)
{
    (void)state;
    base = event_base_new();
    memset(&cs, 0, sizeof(cs));
    out = evbuffer_new();
    slotq_init(&q, out, NULL, &ops, &cs, base);
    flushes = grows = 0;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    slotq_orphan(&q);
    evbuffer_free(out);
    event_base_free(base);
    return 0;
}

/* The output so far, as a string. */
static const char *
output(void)
{
    static char buf[512];
    size_t n = evbuffer_get_length(out);
    assert_true(n < sizeof(buf));
    evbuffer_copyout(out, buf, n);
    buf[n] = '\0';
    return buf;
}

static void
test_replies_leave_in_request_order(void **state)
{
    (void)state;
    struct slot *a = slot_new(&q, SLOT_PLAIN), *b = slot_new(&q, SLOT_PLAIN),
                *c = slot_new(&q, SLOT_PLAIN);
    slot_finish(c, ":3\r\n", 4);
    slot_finish(b, ":2\r\n", 4);
    assert_string_equal(output(), ""); /* a is still due */
    assert_int_equal(q.parked_bytes, 8);
    assert_true(grows > 0);
    slot_finish(a, ":1\r\n", 4);
    assert_string_equal(output(), ":1\r\n:2\r\n:3\r\n");
    assert_int_equal(q.n, 0);
    assert_int_equal(q.parked_bytes, 0);
    assert_true(flushes >= 3);
}

static void
test_target_is_the_output_when_nothing_is_due(void **state)
{
    (void)state;
    evbuffer_add(slotq_target(&q), "+OK\r\n", 5);
    assert_string_equal(output(), "+OK\r\n");
    assert_int_equal(q.n, 0);
    struct slot *a = slot_new(&q, SLOT_PLAIN);
    evbuffer_add(slotq_target(&q), "+PONG\r\n", 7); /* parked behind a */
    assert_int_equal(q.n, 2);
    assert_string_equal(output(), "+OK\r\n");
    slot_finish(a, "$1\r\nx\r\n", 7);
    assert_string_equal(output(), "+OK\r\n$1\r\nx\r\n+PONG\r\n");
}

static void
test_resp3_null_rewritten_only_for_resp3(void **state)
{
    (void)state;
    struct slot *a = slot_new(&q, SLOT_PLAIN);
    slot_finish(a, "$-1\r\n", 5);
    q.proto = 3;
    struct slot *b = slot_new(&q, SLOT_PLAIN), *c = slot_new(&q, SLOT_PLAIN);
    slot_finish(b, "*-1\r\n", 5);
    struct evbuffer *src = evbuffer_new();
    evbuffer_add(src, "$-1\r\n$3\r\nabc\r\n", 14);
    slot_finish_move(c, src, 5);                   /* moved from an upstream buffer */
    assert_int_equal(evbuffer_get_length(src), 9); /* only its own bytes were taken */
    evbuffer_free(src);
    struct slot *d = slot_new(&q, SLOT_PLAIN);
    slot_finish(d, "$3\r\n-1\r\n", 9); /* a value that only looks like one */
    assert_string_equal(output(), "$-1\r\n_\r\n_\r\n$3\r\n-1\r\n");
}

static void
test_moved_reply_keeps_following_bytes(void **state)
{
    (void)state;
    struct slot *a = slot_new(&q, SLOT_PLAIN), *b = slot_new(&q, SLOT_PLAIN);
    struct evbuffer *src = evbuffer_new();
    evbuffer_add(src, "$2\r\nhi\r\n:7\r\n", 12);
    slot_finish_move(b, src, 8); /* parked: a is due */
    slot_finish_move(a, src, 4);
    assert_int_equal(evbuffer_get_length(src), 0);
    assert_string_equal(output(), ":7\r\n$2\r\nhi\r\n");
    evbuffer_free(src);
}

static int filtered_gone, hook_answered, hook_dropped;

static void
filter(struct session *s, struct evbuffer *reply, size_t len, const char *err, struct evbuffer *o,
       void *data)
{
    (void)reply, (void)len, (void)err, (void)o, (void)data;
    if (s == NULL)
        filtered_gone++;
}

static void
hook(struct session *owner, void *arg, bool answered)
{
    (void)owner, (void)arg;
    if (answered)
        hook_answered++;
    else
        hook_dropped++;
}

static void
test_orphaned_slots_are_freed_by_their_completion(void **state)
{
    (void)state;
    filtered_gone = hook_answered = hook_dropped = 0;
    struct slot *a = slot_new(&q, SLOT_BATCHED), *b = slot_new(&q, SLOT_PLAIN);
    b->filter = filter;
    b->hook = hook;
    evbuffer_add(slotq_target(&q), "+OK\r\n", 5); /* ready, parked */
    assert_int_equal(q.nbatched, 1);
    slotq_orphan(&q);
    assert_int_equal(q.n, 0);
    assert_int_equal(q.nbatched, 0);
    slot_finish(a, ":1\r\n", 4); /* freed, nothing written */
    slot_free(b);                /* the upstream's completion of an orphan */
    assert_int_equal(filtered_gone, 1);
    assert_int_equal(hook_dropped, 1);
    assert_int_equal(hook_answered, 0);
    assert_string_equal(output(), "");
}

static void
test_hook_told_before_the_reply_leaves(void **state)
{
    (void)state;
    hook_answered = 0;
    struct slot *a = slot_new(&q, SLOT_PLAIN);
    a->hook = hook;
    evbuffer_add(slot_output(a), "+OK\r\n", 5);
    slot_ready(a);
    assert_int_equal(hook_answered, 1);
    assert_string_equal(output(), "+OK\r\n");
}

static char detached_reply[64];

static void
detached(void *data, const char *reply, size_t len)
{
    (void)data;
    memcpy(detached_reply, reply, len);
    detached_reply[len] = '\0';
}

static void
test_detached_slot_hands_its_reply_over(void **state)
{
    (void)state;
    struct slot *d = slot_new_detached(detached, NULL);
    slot_finish(d, "$1\r\nv\r\n", 7);
    assert_string_equal(detached_reply, "$1\r\nv\r\n");
    assert_string_equal(output(), "");
}

static void
test_counts_by_kind(void **state)
{
    (void)state;
    struct slot *a = slot_new(&q, SLOT_BATCHED), *b = slot_new(&q, SLOT_BATCHED);
    slot_mark_held(b);
    assert_int_equal(q.nbatched, 2);
    assert_int_equal(q.nheld, 1);
    slot_finish(b, "$-1\r\n", 5);
    assert_int_equal(q.nbatched, 1);
    assert_int_equal(q.nheld, 0);
    slot_finish(a, "$-1\r\n", 5);
    assert_int_equal(q.nbatched, 0);
}

static void
test_dropping_owner_gets_nothing(void **state)
{
    (void)state;
    struct slot *a = slot_new(&q, SLOT_PLAIN);
    q.drop = true; /* over its output limit, closing */
    slot_finish(a, "$5\r\nhello\r\n", 11);
    assert_string_equal(output(), "");
    assert_int_equal(q.n, 0);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_replies_leave_in_request_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_target_is_the_output_when_nothing_is_due, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_resp3_null_rewritten_only_for_resp3, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_moved_reply_keeps_following_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_orphaned_slots_are_freed_by_their_completion, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(test_hook_told_before_the_reply_leaves, setup, teardown),
        cmocka_unit_test_setup_teardown(test_detached_slot_hands_its_reply_over, setup, teardown),
        cmocka_unit_test_setup_teardown(test_counts_by_kind, setup, teardown),
        cmocka_unit_test_setup_teardown(test_dropping_owner_gets_nothing, setup, teardown),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    slot_cache_free_all();
    return rc;
}
