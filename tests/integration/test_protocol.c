/*
 * test_protocol: hostile and limit-probing inputs (after Redis's
 * tests/unit/protocol.tcl). Each is sent to bulwark and to a reference
 * redis; replies must be byte-for-byte equal, including whether the server
 * closes the connection afterwards.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* The default-config servers shared by the tests of this binary. */
static struct {
    struct harness_server *upstream; /* redis-A, behind bulwark */
    struct harness_server *subject;  /* bulwark (or a second redis) */
    struct harness_server *ref;      /* redis-B, the reference */
} env;

/* One hostile request script and how many replies Redis gives it. */
struct hostile {
    const char *name;  /* what it probes, for failure messages */
    const char *bytes; /* raw request bytes, may hold NULs */
    size_t len;        /* length of bytes */
    size_t nreplies;   /* replies before the probe (PING) */
};

#define CASE(name, s, n)          \
    {                             \
        name, s, sizeof(s) - 1, n \
    }

static int
group_setup(void **state)
{
    (void)state;
    env.upstream = harness_redis_start(NULL);
    env.subject = harness_subject_start(env.upstream->port, NULL);
    env.ref = harness_reference_start(NULL);
    return 0;
}

/* Last: bulwark exits 0 on SIGTERM after all of the above (no crash, no leak).
 */
static void
test_clean_shutdown(void **state)
{
    (void)state;
    struct harness_server *s = env.subject;
    env.subject = NULL;
    harness_bulwark_stop(s);
}

static int
group_teardown(void **state)
{
    (void)state;
    harness_bulwark_stop(env.subject);
    harness_redis_stop(env.ref);
    harness_redis_stop(env.upstream);
    return 0;
}

/*
 * Run every case on fresh connections to ref and sub, in one write and
 * (when split) again one byte per write; each reply, the probe answer and
 * the close must match. Fails listing how many cases differ.
 */
static void
run_cases(const struct harness_server *ref, const struct harness_server *sub,
          const struct hostile *cases, size_t n, bool split)
{
    size_t bad = 0;
    for (size_t i = 0; i < n; i++) {
        for (int pass = 0; pass < (split ? 2 : 1); pass++) {
            struct harness_script sc = {
                .bytes = cases[i].bytes,
                .len = cases[i].len,
                .nreplies = cases[i].nreplies,
                .chunk = pass == 0 ? 0 : 1,
                .flags = HARNESS_PROBE,
            };
            if (!harness_same_replies(ref, sub, &sc)) {
                fprintf(stderr, "  ^ case \"%s\"%s\n", cases[i].name,
                        pass ? " sent one byte per write" : "");
                bad++;
                break;
            }
        }
    }
    if (bad > 0)
        fail_msg("%zu of %zu hostile cases differ from redis", bad, n);
}

static void
test_bad_multibulk_length(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        CASE("letters", "*abc\r\n", 1),
        CASE("trailing junk", "*1x\r\n", 1),
        CASE("plus sign", "*+1\r\n$4\r\nPING\r\n", 1),
        CASE("leading space", "* 1\r\n", 1),
        CASE("leading zero", "*01\r\n$4\r\nPING\r\n", 1),
        CASE("minus zero", "*-0\r\nPING\r\n", 1),
        CASE("negative is ignored", "*-10\r\nPING\r\n", 1),
        CASE("nil multibulk is ignored", "*-1\r\n*-1\r\nPING\r\n", 1),
        CASE("beyond INT_MAX", "*2147483648\r\n", 1),
        CASE("CR without LF", "*1\r$4\r\nPING\r\n", 1),
    };
    run_cases(env.ref, env.subject, cases, BW_ARRAY_LEN(cases), true);
}

/* A count line of 70,000 digits: Redis gives up after 64 KB without CRLF. */
static void
test_too_big_count_strings(void **state)
{
    (void)state;
    static const char *const prefix[] = {"*", "*1\r\n$"};
    for (size_t i = 0; i < BW_ARRAY_LEN(prefix); i++) {
        struct harness_buf req = {0};
        harness_buf_puts(&req, prefix[i]);
        for (size_t k = 0; k < 70000; k++)
            harness_buf_append(&req, "1", 1);
        struct harness_script sc = {
            .bytes = req.data,
            .len = req.len,
            .nreplies = 1,
            .flags = HARNESS_PROBE,
        };
        assert_true(harness_same_replies(env.ref, env.subject, &sc));
        harness_buf_free(&req);
    }
}

static void
test_bad_bulk(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        CASE("expected '$'", "*1\r\nfoo\r\n", 1),
        CASE("integer instead of bulk", "*2\r\n$3\r\nGET\r\n:1\r\n", 1),
        CASE("nil bulk in a request", "*1\r\n$-1\r\n", 1),
        CASE("minus zero", "*1\r\n$-0\r\n", 1),
        CASE("letters", "*1\r\n$abc\r\n", 1),
        CASE("leading zero", "*1\r\n$04\r\nPING\r\n", 1),
        CASE("plus sign", "*1\r\n$+4\r\nPING\r\n", 1),
        CASE("trailing space", "*1\r\n$4 \r\nPING\r\n", 1),
        CASE("above proto-max-bulk-len 512mb", "*1\r\n$536870913\r\n", 1),
        CASE("bad second bulk", "*2\r\n$4\r\nECHO\r\n$x\r\n", 1),
    };
    run_cases(env.ref, env.subject, cases, BW_ARRAY_LEN(cases), true);
}

/* 70 KB of inline request without a newline: too big inline request. */
static void
test_too_big_inline(void **state)
{
    (void)state;
    struct harness_buf req = {0};
    for (size_t k = 0; k < 70000; k++)
        harness_buf_append(&req, "x", 1);
    struct harness_script sc = {
        .bytes = req.data,
        .len = req.len,
        .nreplies = 1,
        .flags = HARNESS_PROBE,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
    sc.chunk = 4096;
    assert_true(harness_same_replies(env.ref, env.subject, &sc));

    /* Just under the limit, with its newline, it is an ordinary request. */
    harness_buf_reset(&req);
    harness_buf_puts(&req, "SET inline-big ");
    for (size_t k = 0; k < 60000; k++)
        harness_buf_append(&req, "v", 1);
    harness_buf_puts(&req, "\r\nSTRLEN inline-big\r\nDEL inline-big\r\n");
    sc.bytes = req.data;
    sc.len = req.len;
    sc.nreplies = 3;
    sc.chunk = 0;
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
    harness_buf_free(&req);
}

static void
test_inline_quoting(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        CASE("unbalanced double quote", "SET \"a\r\n", 1),
        CASE("unbalanced single quote", "SET 'a\r\n", 1),
        CASE("closing quote not followed by space", "SET \"a\"b c\r\n", 1),
        CASE("lone quote at the end", "PING \"\r\n", 1),
        CASE("bare CR splits arguments", "PI\rNG\r\n", 1),
        CASE("CR CR LF", "PING\r\r\n", 1),
        CASE("CR-only line", "\r\r\nPING\r\n", 1),
        CASE("spaces-only line", "   \r\nPING\r\n", 1),
        CASE("LF only", "PING\nECHO x\n", 2),
        CASE("escapes", "ECHO \"\\x41\\x00\\r\\n\\t\\\\\\\"\"\r\n", 1),
        CASE("bad hex escape is literal", "ECHO \"\\xZZ\"\r\n", 1),
        CASE("single-quote escape", "ECHO 'it\\'s' 'a\\b'\r\n", 1),
        CASE("empty argument", "ECHO \"\"\r\n", 1),
    };
    run_cases(env.ref, env.subject, cases, BW_ARRAY_LEN(cases), true);
}

/* Replies to valid requests before the bad one come first, then the close. */
static void
test_valid_before_bad(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        CASE("multibulk length", "PING\r\nSET pb v\r\nGET pb\r\n*abc\r\nPING\r\n", 4),
        CASE("bulk length",
             "*1\r\n$4\r\nPING\r\n*2\r\n$3\r\nGET\r\n$2\r\npb\r\n"
             "*1\r\n$-5\r\nPING\r\n",
             3),
        CASE("expected '$'", "ECHO one\r\nGET nokey\r\n*1\r\nfoo\r\n", 3),
        CASE("unbalanced quotes", "GET pb\r\nGET \"pb\r\nGET pb\r\n", 2),
        CASE("unknown command is not fatal",
             "FOO\r\nBAR x\r\nGET pb\r\n*2\r\n$3\r\nGET\r\n$x\r\n", 4),
    };
    run_cases(env.ref, env.subject, cases, BW_ARRAY_LEN(cases), true);
}

static void
test_empty_requests_ignored(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        CASE("*0 and empty lines", "*0\r\n\r\n\r\n*0\r\nPING\r\n", 1),
        CASE("only *0", "*0\r\n*0\r\n*0\r\n", 0),
        CASE("empty lines between requests", "\r\nPING\r\n\r\n\n\r\nECHO x\r\n\r\n", 2),
        CASE("*0 inside a pipeline", "PING\r\n*0\r\nPING\r\n", 2),
    };
    run_cases(env.ref, env.subject, cases, BW_ARRAY_LEN(cases), true);
}

/*
 * Redis reads a bulk's declared length and skips two bytes whatever they
 * are, and an empty command name is a command. A byte-exact proxy must too.
 */
static void
test_bulk_framing_quirks(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        CASE("bulk followed by junk, not CRLF", "*1\r\n$4\r\nPINGxx*1\r\n$4\r\nPING\r\n", 2),
        CASE("bulk shorter than its data", "*1\r\n$1\r\nab\r\nPING\r\n", 2),
        CASE("extra bulk read as inline", "*1\r\n$4\r\nPING\r\n$4\r\nPING\r\n", 3),
        CASE("empty command name", "*1\r\n$0\r\n\r\n", 1),
        CASE("empty key", "*2\r\n$3\r\nGET\r\n$0\r\n\r\n", 1),
        CASE("data with CRLF inside", "*2\r\n$4\r\nECHO\r\n$3\r\na\r\nb\r\n", 1),
    };
    run_cases(env.ref, env.subject, cases, BW_ARRAY_LEN(cases), true);
}

/* More than 1M arguments is legal in Redis 7 (the limit is INT_MAX). */
static void
test_huge_multibulk(void **state)
{
    (void)state;
    size_t nkeys = 1048576;
    struct harness_buf req = {0};
    /* The key exists, so the reply (:1) shows the DEL really ran. */
    harness_buf_puts(&req, "SET huge:k v\r\n");
    harness_buf_printf(&req, "*%zu\r\n$3\r\nDEL\r\n", nkeys + 1);
    for (size_t k = 0; k < nkeys; k++)
        harness_buf_append(&req, "$6\r\nhuge:k\r\n", 12);
    harness_buf_puts(&req, "EXISTS huge:k\r\n");
    struct harness_script sc = {
        .bytes = req.data,
        .len = req.len,
        .nreplies = 3,
        .flags = HARNESS_PROBE,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
    harness_buf_free(&req);
}

/* AUTH when no password is configured. */
static void
test_auth_without_password(void **state)
{
    (void)state;
    static const struct hostile cases[] = {
        CASE("AUTH password", "AUTH foo\r\n", 1),
        CASE("AUTH default password", "AUTH default foo\r\n", 1),
        CASE("AUTH unknown user", "AUTH nobody foo\r\n", 1),
        CASE("AUTH too many args", "AUTH a b c\r\n", 1),
        CASE("AUTH no args", "AUTH\r\n", 1),
    };
    run_cases(env.ref, env.subject, cases, BW_ARRAY_LEN(cases), false);
}

/* requirepass on bulwark and on the reference (bulwark's upstream has none). */
static void
test_requirepass(void **state)
{
    (void)state;
    const char *const *args = HARNESS_ARGS("--requirepass", "s3cret");
    struct harness_server *ref = harness_reference_start(args);
    struct harness_server *sub = harness_subject_start(env.upstream->port, args);
    static const struct hostile cases[] = {
        CASE("PING before AUTH", "PING\r\n", 1),
        CASE("GET before AUTH", "GET a\r\n", 1),
        CASE("ECHO before AUTH", "ECHO a\r\n", 1),
        CASE("SELECT before AUTH", "SELECT 0\r\n", 1),
        CASE("CLIENT SETNAME before AUTH", "CLIENT SETNAME x\r\n", 1),
        CASE("unknown command before AUTH", "FOO bar\r\n", 1),
        CASE("wrong password", "AUTH wrong\r\nGET a\r\n", 2),
        CASE("wrong password, default user", "AUTH default wrong\r\n", 1),
        CASE("unknown user", "AUTH nobody s3cret\r\n", 1),
        CASE("AUTH syntax", "AUTH a b c\r\n", 1),
        CASE("AUTH arity", "AUTH\r\n", 1),
        CASE("right password", "AUTH s3cret\r\nPING\r\nGET nokey\r\n", 3),
        CASE("right password, default user", "AUTH default s3cret\r\nECHO in\r\n", 2),
        CASE("wrong then right", "AUTH x\r\nAUTH s3cret\r\nPING\r\n", 3),
        CASE("QUIT before AUTH", "QUIT\r\n", 1),
        CASE("unauthenticated multibulk length", "*11\r\n", 1),
        CASE("pipelined before unauthenticated multibulk", "PING\r\n*11\r\n", 2),
        CASE("10 arguments are allowed",
             "*10\r\n$4\r\nPING\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
             "$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n",
             1),
        CASE("unauthenticated bulk length", "*1\r\n$16385\r\n", 1),
        CASE("after AUTH, 11 arguments are fine",
             "AUTH s3cret\r\n*11\r\n$3\r\nDEL\r\n$1\r\na\r\n$1\r\na\r\n"
             "$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n"
             "$1\r\na\r\n$1\r\na\r\n$1\r\na\r\n",
             2),
    };
    run_cases(ref, sub, cases, BW_ARRAY_LEN(cases), false);

    /* 16384 bytes of bulk are allowed before AUTH; 16385 are not (above). */
    struct harness_buf req = {0};
    harness_buf_puts(&req, "*2\r\n$4\r\nECHO\r\n$16384\r\n");
    for (size_t k = 0; k < 16384; k++)
        harness_buf_append(&req, "b", 1);
    harness_buf_puts(&req, "\r\n");
    struct harness_script sc = {
        .bytes = req.data,
        .len = req.len,
        .nreplies = 1,
        .flags = HARNESS_PROBE,
    };
    assert_true(harness_same_replies(ref, sub, &sc));
    /* After AUTH the limit is proto-max-bulk-len. */
    struct harness_buf req2 = {0};
    harness_buf_puts(&req2, "AUTH s3cret\r\n*2\r\n$4\r\nECHO\r\n$20000\r\n");
    for (size_t k = 0; k < 20000; k++)
        harness_buf_append(&req2, "c", 1);
    harness_buf_puts(&req2, "\r\n");
    sc.bytes = req2.data;
    sc.len = req2.len;
    sc.nreplies = 2;
    assert_true(harness_same_replies(ref, sub, &sc));
    harness_buf_free(&req);
    harness_buf_free(&req2);

    harness_bulwark_stop(sub);
    harness_redis_stop(ref);
}

/* A connection that answers PING with +PONG; retries while slots free up. */
static struct harness_conn *
open_accepted(const struct harness_server *s)
{
    uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        struct harness_conn *c = harness_conn_open(s);
        struct harness_buf got = {0};
        harness_conn_send_str(c, "PING\r\n");
        enum harness_read r = harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, &got);
        bool ok = r == HARNESS_READ_REPLY && strcmp(got.data, "+PONG\r\n") == 0;
        harness_buf_free(&got);
        if (ok)
            return c;
        harness_conn_close(c);
        if (bw_now_ms() >= deadline)
            fail_msg("%s: no connection accepted within %d ms", harness_server_name(s),
                     HARNESS_TIMEOUT_MS);
        struct timespec ts = {0, 10 * 1000000L};
        nanosleep(&ts, NULL);
    }
}

/*
 * With maxclients 2 and two clients connected, what a third sees (without
 * sending anything), and whether a slot frees up when one leaves.
 */
static void
maxclients_run(const struct harness_server *s, struct harness_buf *out)
{
    struct harness_conn *c1 = open_accepted(s);
    struct harness_conn *c2 = open_accepted(s);
    struct harness_conn *c3 = harness_conn_open(s);
    enum harness_read r = harness_conn_read_reply(c3, HARNESS_TIMEOUT_MS, out);
    harness_buf_printf(out, "<%s>", r == HARNESS_READ_REPLY ? "reply" : "none");
    r = harness_conn_read_eof(c3, HARNESS_TIMEOUT_MS, out);
    harness_buf_printf(out, "<%s>", r == HARNESS_READ_EOF ? "closed" : "left open");
    harness_conn_close(c3);
    /* The first two are still served. */
    assert_true(harness_conn_roundtrip(c2, "ECHO still\r\n", "$5\r\nstill\r\n"));
    harness_conn_close(c1);
    struct harness_conn *c4 = open_accepted(s);
    harness_buf_puts(out, "<slot reused>");
    harness_conn_close(c4);
    harness_conn_close(c2);
}

static void
test_maxclients(void **state)
{
    (void)state;
    const char *const *args = HARNESS_ARGS("--maxclients", "2");
    struct harness_server *ref = harness_reference_start(args);
    struct harness_server *sub = harness_subject_start(env.upstream->port, args);
    struct harness_buf a = {0}, b = {0};
    maxclients_run(ref, &a);
    maxclients_run(sub, &b);
    /* The reference itself behaves as documented. */
    assert_string_equal(a.data, "-ERR max number of clients reached\r\n"
                                "<reply><closed><slot reused>");
    if (strcmp(a.data, b.data) != 0) {
        struct harness_buf msg = {0};
        harness_buf_puts(&msg, "maxclients:\n  reference \"");
        harness_buf_escape(&msg, a.data, a.len, 300);
        harness_buf_puts(&msg, "\"\n  subject   \"");
        harness_buf_escape(&msg, b.data, b.len, 300);
        harness_buf_puts(&msg, "\"\n");
        fputs(msg.data, stderr);
        harness_buf_free(&msg);
        fail_msg("the third client of maxclients 2 is treated differently");
    }
    harness_buf_free(&a);
    harness_buf_free(&b);
    harness_bulwark_stop(sub);
    harness_redis_stop(ref);
}

/*
 * Milliseconds until s closes an idle client under timeout 1 (after one
 * PING), or -1 when it is still open after HARNESS_TIMEOUT_MS. Any bytes
 * sent before the close go to extra.
 */
static long
idle_close_ms(const struct harness_server *s, struct harness_buf *extra)
{
    struct harness_conn *c = harness_conn_open(s);
    assert_true(harness_conn_roundtrip(c, "PING\r\n", "+PONG\r\n"));
    uint64_t t0 = bw_now_ms();
    enum harness_read r = harness_conn_read_eof(c, HARNESS_TIMEOUT_MS, extra);
    long ms = r == HARNESS_READ_EOF ? (long)(bw_now_ms() - t0) : -1;
    harness_conn_close(c);
    return ms;
}

static void
test_idle_timeout(void **state)
{
    (void)state;
    const char *const *args = HARNESS_ARGS("--timeout", "1");
    struct harness_server *ref = harness_reference_start(args);
    struct harness_server *sub = harness_subject_start(env.upstream->port, args);
    struct harness_buf a = {0}, b = {0};
    long ref_ms = idle_close_ms(ref, &a);
    long sub_ms = idle_close_ms(sub, &b);
    fprintf(stderr, "idle close after: reference %ld ms, subject %ld ms\n", ref_ms, sub_ms);
    /* Closed silently, after at least the timeout and well before 10 s. */
    assert_true(ref_ms >= 900);
    assert_int_equal(a.len, 0);
    assert_true(sub_ms >= 900);
    assert_int_equal(b.len, 0);
    harness_buf_free(&a);
    harness_buf_free(&b);
    harness_bulwark_stop(sub);
    harness_redis_stop(ref);
}

/* proto-max-bulk-len 1048576 (Redis's minimum) on both. */
static void
test_proto_max_bulk_len(void **state)
{
    (void)state;
    const char *const *args = HARNESS_ARGS("--proto-max-bulk-len", "1048576");
    struct harness_server *ref = harness_reference_start(args);
    struct harness_server *sub = harness_subject_start(env.upstream->port, args);
    static const struct hostile cases[] = {
        CASE("one above the limit", "*2\r\n$4\r\nECHO\r\n$1048577\r\n", 1),
        CASE("pipelined before", "PING\r\n*2\r\n$4\r\nECHO\r\n$2000000\r\n", 2),
    };
    run_cases(ref, sub, cases, BW_ARRAY_LEN(cases), false);

    /* Exactly at the limit is fine. */
    struct harness_buf req = {0};
    harness_buf_puts(&req, "*2\r\n$4\r\nECHO\r\n$1048576\r\n");
    for (size_t k = 0; k < 1048576; k++)
        harness_buf_append(&req, k % 64 ? "m" : "\n", 1);
    harness_buf_puts(&req, "\r\n");
    struct harness_script sc = {
        .bytes = req.data,
        .len = req.len,
        .nreplies = 1,
        .flags = HARNESS_PROBE,
    };
    assert_true(harness_same_replies(ref, sub, &sc));
    harness_buf_free(&req);
    harness_bulwark_stop(sub);
    harness_redis_stop(ref);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_multibulk_length),
        cmocka_unit_test(test_too_big_count_strings),
        cmocka_unit_test(test_bad_bulk),
        cmocka_unit_test(test_too_big_inline),
        cmocka_unit_test(test_inline_quoting),
        cmocka_unit_test(test_valid_before_bad),
        cmocka_unit_test(test_empty_requests_ignored),
        cmocka_unit_test(test_bulk_framing_quirks),
        cmocka_unit_test(test_huge_multibulk),
        cmocka_unit_test(test_auth_without_password),
        cmocka_unit_test(test_requirepass),
        cmocka_unit_test(test_maxclients),
        cmocka_unit_test(test_idle_timeout),
        cmocka_unit_test(test_proto_max_bulk_len),
        cmocka_unit_test(test_clean_shutdown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
