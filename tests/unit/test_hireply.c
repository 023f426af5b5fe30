/*
 * Unit tests of proxy/hireply.c: hiredis's own reader, fed the replies the
 * keyspace watch gets (a subscribe confirmation, an invalidation message
 * naming keys short and long, integers, nils, errors), builds with
 * hireply_fns the same objects as with its default functions; freed blocks
 * are used again.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>
#include <hiredis/hiredis.h>

#include "proxy/hireply.h"

/* Read the whole reply in wire with fn (NULL: hiredis's default functions). */
static redisReply *
read_reply(const char *wire, size_t len, redisReplyObjectFunctions *fn, redisReader **keep)
{
    redisReader *r = redisReaderCreate();
    assert_non_null(r);
    if (fn != NULL)
        r->fn = fn;
    /* fed in two pieces: hiredis keeps half-built objects across reads */
    assert_int_equal(redisReaderFeed(r, wire, len / 2), REDIS_OK);
    void *out = NULL;
    assert_int_equal(redisReaderGetReply(r, &out), REDIS_OK);
    if (out == NULL) {
        assert_int_equal(redisReaderFeed(r, wire + len / 2, len - len / 2), REDIS_OK);
        assert_int_equal(redisReaderGetReply(r, &out), REDIS_OK);
    }
    assert_non_null(out);
    *keep = r;
    return out;
}

/* a and b are the same reply, recursively. */
static void
assert_same(const redisReply *a, const redisReply *b)
{
    assert_int_equal(a->type, b->type);
    switch (a->type) {
    case REDIS_REPLY_STRING:
    case REDIS_REPLY_STATUS:
    case REDIS_REPLY_ERROR:
        assert_int_equal(a->len, b->len);
        assert_memory_equal(a->str, b->str, a->len);
        assert_int_equal(b->str[b->len], '\0');
        break;
    case REDIS_REPLY_INTEGER:
        assert_int_equal(a->integer, b->integer);
        break;
    case REDIS_REPLY_ARRAY:
        assert_int_equal(a->elements, b->elements);
        for (size_t i = 0; i < a->elements; i++)
            assert_same(a->element[i], b->element[i]);
        break;
    default:
        break;
    }
}

static void
compare(const char *wire, size_t len)
{
    redisReader *ra, *rb;
    redisReply *a = read_reply(wire, len, NULL, &ra);
    redisReply *b = read_reply(wire, len, &hireply_fns, &rb);
    assert_same(a, b);
    freeReplyObject(a);
    hireply_fns.freeObject(b);
    redisReaderFree(ra);
    redisReaderFree(rb);
}

static void
test_watch_replies_same_as_hiredis(void **state)
{
    (void)state;
    static const char *const wires[] = {
        "*3\r\n$9\r\nsubscribe\r\n$20\r\n__redis__:invalidate\r\n:1\r\n",
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*2\r\n$1\r\na\r\n$0\r\n\r\n",
        "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*-1\r\n",
        "*2\r\n$1\r\n0\r\n*3\r\n$2\r\nk1\r\n$-1\r\n:-42\r\n",
        "-ERR unknown command 'x'\r\n",
        "+OK\r\n",
        "*0\r\n",
        "*1\r\n*1\r\n*0\r\n",
    };
    for (size_t i = 0; i < sizeof(wires) / sizeof(wires[0]); i++)
        compare(wires[i], strlen(wires[i]));
}

static void
test_long_keys_and_reuse(void **state)
{
    (void)state;
    /* an invalidation of 300 keys, one of them longer than a pooled block holds */
    char wire[16384];
    size_t n = (size_t)snprintf(wire, sizeof(wire),
                                "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n*300\r\n");
    char big[HIREPLY_INLINE + 50];
    memset(big, 'b', sizeof(big));
    for (int i = 0; i < 300; i++) {
        if (i == 150) {
            n += (size_t)snprintf(wire + n, sizeof(wire) - n, "$%zu\r\n", sizeof(big));
            memcpy(wire + n, big, sizeof(big));
            n += sizeof(big);
            memcpy(wire + n, "\r\n", 2);
            n += 2;
        } else {
            n += (size_t)snprintf(wire + n, sizeof(wire) - n, "$9\r\nkey:%05d\r\n", i);
        }
    }
    for (int round = 0; round < 3; round++) /* the second and third reuse the blocks */
        compare(wire, n);
    redisReader *r;
    redisReply *b = read_reply(wire, n, &hireply_fns, &r);
    assert_int_equal(b->element[2]->element[150]->len, sizeof(big));
    assert_string_equal(b->element[2]->element[299]->str, "key:00299");
    hireply_fns.freeObject(b);
    redisReaderFree(r);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_watch_replies_same_as_hiredis),
        cmocka_unit_test(test_long_keys_and_reuse),
    };
    int rc = cmocka_run_group_tests(tests, NULL, NULL);
    hireply_cache_free_all();
    return rc;
}
