/* Unit tests of proxy/reply.c: the streaming reply scanner and tree parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/reply.h"

/* Replies and their exact lengths as Redis sends them. */
static const char *const replies[] = {
    "+OK\r\n",
    "-ERR unknown command 'x'\r\n",
    ":12345\r\n",
    ":-1\r\n",
    "$3\r\nfoo\r\n",
    "$0\r\n\r\n",
    "$-1\r\n",
    "*-1\r\n",
    "*0\r\n",
    "$8\r\na\r\nb\0c\r\n\r\n",
    "*2\r\n$1\r\na\r\n*2\r\n:1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n*1\r\n+deep\r\n",
    "*3\r\n$-1\r\n*-1\r\n-ERR inside\r\n",
    /* RESP3, as Redis 7.0 sends it to a HELLO 3 client */
    "_\r\n",
    ",3.14\r\n",
    ",inf\r\n",
    "#t\r\n",
    "(3492890328409238509324850943850943825024385\r\n",
    "!21\r\nSYNTAX invalid syntax\r\n",
    "=15\r\ntxt:Some string\r\n",
    "%2\r\n+first\r\n:1\r\n$6\r\nsecond\r\n~2\r\n_\r\n#f\r\n",
    "%0\r\n",
    "~0\r\n",
    ">3\r\n$7\r\nmessage\r\n$2\r\nch\r\n$5\r\nhello\r\n",
    "|1\r\n+key-popularity\r\n%1\r\n$1\r\na\r\n,0.19\r\n*1\r\n:2\r\n",
};
/* strlen() of each, except the bulk with a NUL inside (14 bytes). */
static size_t reply_lens[sizeof(replies) / sizeof(replies[0])];

/* Scan a concatenation of every reply, fed in chunks of `step` bytes. */
static void
scan_all_with_step(size_t step)
{
    char stream[1024];
    size_t total = 0;
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++)
        reply_lens[i] = i == 9 ? 14 : strlen(replies[i]);
    for (size_t i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
        memcpy(stream + total, replies[i], reply_lens[i]);
        total += reply_lens[i];
    }
    struct reply_scan s;
    reply_scan_reset(&s);
    size_t pos = 0, which = 0;
    while (pos < total) {
        size_t n = step < total - pos ? step : total - pos, used;
        int rc = reply_scan_feed(&s, stream + pos, n, &used);
        assert_int_not_equal(rc, REPLY_ERR);
        pos += used;
        if (rc == REPLY_DONE) {
            assert_int_equal(s.consumed, reply_lens[which]);
            which++;
            reply_scan_reset(&s);
        } else {
            assert_int_equal(used, n);
        }
    }
    assert_int_equal(which, sizeof(replies) / sizeof(replies[0]));
}

static void
test_scan_whole_and_split(void **state)
{
    (void)state;
    for (size_t step = 1; step <= 80; step++)
        scan_all_with_step(step);
    scan_all_with_step(100000);
}

static void
test_scan_rejects_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {"?what\r\n",
                                      "$abc\r\n",
                                      "*-5\r\n",
                                      "$-2\r\n",
                                      "$99999999999999999999999999999999999\r\n",
                                      "%-1\r\n",
                                      "~-1\r\n",
                                      "!-1\r\n",
                                      "$?\r\n"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct reply_scan s;
        size_t used;
        reply_scan_reset(&s);
        assert_int_equal(reply_scan_feed(&s, bad[i], strlen(bad[i]), &used), REPLY_ERR);
    }
}

static void
test_scan_big_bulk_needs_no_copy(void **state)
{
    (void)state;
    /* A 16 MB bulk announced by its header is skipped by count, not scanned. */
    struct reply_scan s;
    size_t used;
    reply_scan_reset(&s);
    assert_int_equal(reply_scan_feed(&s, "$16777216\r\n", 11, &used), REPLY_AGAIN);
    assert_int_equal(s.bulk_left, 16777216 + 2);
}

static void
test_parse_tree(void **state)
{
    (void)state;
    const char *r = "*4\r\n$3\r\nfoo\r\n:42\r\n$-1\r\n*1\r\n+OK\r\n";
    struct reply_node *n = reply_parse(r, strlen(r));
    assert_non_null(n);
    assert_int_equal(n->type, '*');
    assert_int_equal(n->integer, 4);
    assert_true(reply_node_is(&n->elems[0], "FOO"));
    assert_int_equal(n->elems[1].integer, 42);
    assert_true(n->elems[2].nil);
    assert_true(reply_node_is(&n->elems[3].elems[0], "ok"));
    reply_node_free(n);
    assert_null(reply_parse("*2\r\n:1\r\n", 8));        /* incomplete */
    assert_null(reply_parse("+OK\r\n+OK\r\n", 10));     /* two replies */
    assert_null(reply_parse("*1000000\r\n:1\r\n", 14)); /* count beyond input */
}

/* Scan len bytes fed in chunks of step; the outcome, *end the reply length. */
static int
scan_bytes(const char *buf, size_t len, size_t step, uint64_t *end)
{
    struct reply_scan s;
    size_t pos = 0, used;
    int rc = REPLY_AGAIN;

    reply_scan_reset(&s);
    while (pos < len && rc == REPLY_AGAIN) {
        size_t n = step < len - pos ? step : len - pos;
        rc = reply_scan_feed(&s, buf + pos, n, &used);
        pos += n;
    }
    *end = s.consumed;
    return rc;
}

/* A hostile reply and what the scanner and reply_parse() must make of it. */
struct hostile {
    const char *bytes; /* the reply */
    size_t len;        /* bytes in it (some hold a NUL) */
    int scan;          /* REPLY_DONE (then at len), REPLY_AGAIN or REPLY_ERR */
    bool parses;       /* reply_parse() of all len bytes gives a tree */
};

#define HOSTILE(s, scan, parses)       \
    {                                  \
        s, sizeof(s) - 1, scan, parses \
    }

/* Found by tests/fuzz/fuzz_reply.c (and reading it): scanner and parser agree. */
static const struct hostile hostile[] = {
    /* a NUL in a header ended the number: "*<NUL>" read as *0, "$5<NUL>x" as $5 */
    HOSTILE("*\0\0"
            "5*\xff\n\r\n",
            REPLY_ERR, false),
    HOSTILE("$1\0x\r\na\r\n", REPLY_ERR, false),
    /* the parser took counts below -1 as nil; the scanner refuses them */
    HOSTILE("*-2\r\n", REPLY_ERR, false),
    HOSTILE("$-2\r\n", REPLY_ERR, false),
    /* a CR inside a header was dropped by the scanner: "$0\r\r\n" read as $0 */
    HOSTILE("$0\r\r\n\n>", REPLY_ERR, false),
    HOSTILE("$1\r2\r\n", REPLY_ERR, false),
    /* white space before a number (strtoll skips it): "$\r-1" parsed as nil */
    HOSTILE("$\r-1\r\n", REPLY_ERR, false),
    HOSTILE("$ 1\r\na\r\n", REPLY_ERR, false),
    HOSTILE(":\t1\r\n", REPLY_DONE, false), /* the scanner does not read ':' */
    /* the parser computed 9223372036854775807 + 2 (signed overflow) */
    HOSTILE("$9223372036854775807\r\nx", REPLY_AGAIN, false),
    HOSTILE("*2\r\n$9223372036854775806\r\n+x\r\n", REPLY_AGAIN, false),
    /* the scanner's count of items still due wrapped to 0: "reply complete" */
    HOSTILE("*9223372036854775807\r\n*9223372036854775807\r\n*4\r\n", REPLY_ERR, false),
    /* the parser assumed 4 bytes per element; "+\r\n" is 3 */
    HOSTILE("*5\r\n+\r\n+\r\n+\r\n+\r\n+\r\n", REPLY_DONE, true),
    HOSTILE("*1\r\n+\r\n", REPLY_DONE, true),
    /* huge counts wait for their elements; nothing is allocated for them */
    HOSTILE("*2147483648\r\n", REPLY_AGAIN, false),
    HOSTILE("*-5\r\n", REPLY_ERR, false),
    HOSTILE("$+3\r\nabc\r\n", REPLY_DONE, true),
};

static void
test_parse_resp3(void **state)
{
    (void)state;
    const char *m = "%3\r\n$4\r\nbool\r\n#t\r\n$3\r\ndbl\r\n,1.5\r\n"
                    "$4\r\ninfo\r\n=9\r\ntxt:a:1\r\n\r\n";
    struct reply_node *n = reply_parse(m, strlen(m));
    assert_non_null(n);
    assert_int_equal(n->type, '%');
    assert_int_equal(n->integer, 3);
    assert_int_equal(n->nelems, 6);
    assert_int_equal(n->elems[1].type, '#');
    assert_int_equal(n->elems[1].integer, 1);
    assert_int_equal(n->elems[3].len, 3);
    assert_memory_equal(n->elems[3].str, "1.5", 3);
    assert_true(reply_node_is(&n->elems[4], "info"));
    assert_int_equal(n->elems[5].type, '=');
    assert_int_equal(n->elems[5].len, 9);
    reply_node_free(n);

    n = reply_parse("_\r\n", 3);
    assert_non_null(n);
    assert_true(n->nil);
    reply_node_free(n);
    assert_null(reply_parse("_x\r\n", 4));
    assert_null(reply_parse("#x\r\n", 4));
    assert_null(reply_parse("=3\r\nabcXY", 10)); /* no CRLF after the payload */
    assert_null(reply_parse("~-1\r\n", 5));

    const char *p = ">2\r\n$10\r\ninvalidate\r\n*1\r\n$1\r\nk\r\n";
    n = reply_parse(p, strlen(p));
    assert_non_null(n);
    assert_int_equal(n->type, '>');
    assert_int_equal(n->nelems, 2);
    assert_int_equal(n->elems[1].type, '*');
    reply_node_free(n);
}

static void
test_hostile_replies(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        const struct hostile *h = &hostile[i];
        for (size_t step = 1; step <= h->len; step++) {
            uint64_t end;
            int rc = scan_bytes(h->bytes, h->len, step, &end);
            assert_int_equal(rc, h->scan);
            if (rc == REPLY_DONE)
                assert_int_equal(end, h->len);
        }
        struct reply_node *n = reply_parse(h->bytes, h->len);
        assert_int_equal(n != NULL, h->parses);
        reply_node_free(n);
    }
}

/* reply_parse() takes 64 levels of nesting and refuses 65; the scanner both. */
static void
test_depth_limit(void **state)
{
    (void)state;
    char buf[65 * 4 + 8];
    for (size_t levels = 64; levels <= 65; levels++) {
        size_t len = 0;
        uint64_t end;
        for (size_t i = 0; i < levels; i++) {
            memcpy(buf + len, "*1\r\n", 4);
            len += 4;
        }
        memcpy(buf + len, ":1\r\n", 4);
        len += 4;
        assert_int_equal(scan_bytes(buf, len, len, &end), REPLY_DONE);
        assert_int_equal(end, len);
        struct reply_node *n = reply_parse(buf, len);
        assert_int_equal(n != NULL, levels == 64);
        reply_node_free(n);
    }
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_scan_whole_and_split),
        cmocka_unit_test(test_scan_rejects_garbage),
        cmocka_unit_test(test_scan_big_bulk_needs_no_copy),
        cmocka_unit_test(test_parse_tree),
        cmocka_unit_test(test_parse_resp3),
        cmocka_unit_test(test_hostile_replies),
        cmocka_unit_test(test_depth_limit),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
