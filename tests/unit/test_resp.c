/*
 * test_resp: the RESP2 request parser against vectors observed on a real
 * redis-server 7.0.15 (raw sockets), each fed whole, byte by byte and split
 * at every offset; limits, stickiness, need(), and linear-time parsing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>

#include "proxy/resp.h"
#include "proxy/util.h"

/* ---- transcript: what a client would see the parser produce ----------- */

/* A growing text buffer for transcripts. */
struct text {
    char *s;    /* owned, NUL-terminated */
    size_t len; /* bytes before the NUL */
    size_t cap; /* bytes allocated */
};

static void
text_put(struct text *t, const char *s, size_t n)
{
    if (t->len + n + 1 > t->cap) {
        t->cap = (t->len + n + 1) * 2;
        t->s = bw_realloc(t->s, t->cap);
    }
    memcpy(t->s + t->len, s, n);
    t->len += n;
    t->s[t->len] = '\0';
}

static void text_printf(struct text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
text_printf(struct text *t, const char *fmt, ...)
{
    char tmp[256];
    va_list ap;
    int n;

    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(tmp));
    text_put(t, tmp, (size_t)n);
}

/* Bytes as text: \r \n \t and \xHH for other non-printables, \[ \] \\. */
static void
text_escape(struct text *t, const char *s, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '\r')
            text_put(t, "\\r", 2);
        else if (c == '\n')
            text_put(t, "\\n", 2);
        else if (c == '\t')
            text_put(t, "\\t", 2);
        else if (c == '[' || c == ']' || c == '\\')
            text_printf(t, "\\%c", c);
        else if (c < 0x20 || c >= 0x7f)
            text_printf(t, "\\x%02x", c);
        else
            text_put(t, (const char *)&c, 1);
    }
}

/* ---- a simulated client connection ----------------------------------------
 */

/*
 * The caller's side of the contract: a query buffer that is moved to a new
 * allocation on every change (old bytes poisoned, then freed), so a parser
 * that kept a pointer is caught. Small inputs use exact-size allocations so
 * a read past len is caught under ASan; big ones grow by doubling (moving
 * on growth, like realloc) to keep the harness linear.
 */
struct conn {
    char *buf;  /* owned; cap bytes (NULL when cap is 0) */
    size_t len; /* pending bytes at buf */
    size_t cap; /* bytes allocated */
    bool exact; /* true: cap == len after every change */
};

static void
conn_move(struct conn *c, size_t cap)
{
    char *nb = cap > 0 ? bw_malloc(cap) : NULL;

    if (c->len > 0)
        memcpy(nb, c->buf, c->len);
    if (c->buf != NULL) {
        memset(c->buf, 0xAA, c->cap);
        bw_free(c->buf);
    }
    c->buf = nb;
    c->cap = cap;
}

static void
conn_append(struct conn *c, const char *s, size_t n)
{
    if (c->exact || c->len + n > c->cap)
        conn_move(c, c->exact ? c->len + n : (c->len + n) * 2);
    memcpy(c->buf + c->len, s, n);
    c->len += n;
}

static void
conn_drop(struct conn *c, size_t n)
{
    assert_true(n <= c->len);
    if (n == 0)
        return;
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    memset(c->buf + c->len, 0xAA, c->cap - c->len);
    if (c->exact)
        conn_move(c, c->len);
}

/* Check one OK request's shape and append it to the transcript. */
static void
record_request(struct text *t, const struct conn *c, size_t consumed,
               const struct resp_request *req)
{
    int i;

    assert_true(req->argc >= 1);
    assert_true(consumed > 0 && consumed <= c->len);
    if (req->is_inline) {
        assert_null(req->raw);
        assert_int_equal(req->raw_len, 0);
    } else {
        /* raw is the tail of what was consumed, inside buf. */
        assert_ptr_equal(req->raw + req->raw_len, c->buf + consumed);
        assert_true(req->raw >= c->buf && req->raw[0] == '*');
    }
    text_put(t, req->is_inline ? "I" : "M", 1);
    for (i = 0; i < req->argc; i++) {
        const struct resp_arg *a = &req->argv[i];
        if (!req->is_inline)
            assert_true(a->ptr >= req->raw && a->ptr + a->len <= req->raw + req->raw_len);
        text_put(t, "[", 1);
        text_escape(t, a->ptr, a->len);
        text_put(t, "]", 1);
    }
    text_put(t, "\n", 1);
}

/*
 * Parse everything pending, as the daemon does after each read. Returns
 * false after RESP_ERR (recorded, and checked to be sticky).
 */
static bool
drain(struct resp_parser *p, struct conn *c, struct text *t)
{
    for (;;) {
        struct resp_request req;
        size_t consumed = 12345;
        int rc = resp_parse(p, c->buf, c->len, &consumed, &req);

        if (rc == RESP_OK) {
            record_request(t, c, consumed, &req);
            conn_drop(c, consumed);
            continue;
        }
        if (rc == RESP_AGAIN) {
            assert_null(resp_parser_error(p));
            conn_drop(c, consumed);
            return true;
        }
        assert_int_equal(rc, RESP_ERR);
        assert_int_equal(consumed, 0);
        text_put(t, "ERR ", 4);
        text_escape(t, resp_parser_error(p), strlen(resp_parser_error(p)));
        text_put(t, "\n", 1);
        /* Sticky: more bytes, even a valid request, change nothing. */
        rc = resp_parse(p, "PING\r\n", 6, &consumed, &req);
        assert_int_equal(rc, RESP_ERR);
        assert_int_equal(consumed, 0);
        return false;
    }
}

/* Flags of a vector. */
#define V_UNAUTH 1u /* parse as a client that has not authenticated */

/* One test vector: input bytes and the expected transcript. */
struct vec {
    const char *name; /* what it shows */
    const char *in;   /* input bytes (may hold NULs) */
    size_t len;       /* bytes at in */
    const char *want; /* transcript: one line per request, then the end */
    unsigned flags;   /* V_* */
};

/*
 * Feed v->in in chunks of the given sizes (summing to v->len) and return
 * the transcript: "I" or "M" then [arg] per argument for each request,
 * then "AGAIN <bytes still pending>" or "ERR <reply>". Caller frees.
 */
static char *
feed_chunks(const struct vec *v, const size_t *chunks, size_t nchunks)
{
    struct resp_parser *p = resp_parser_new();
    struct conn c = {NULL, 0, 0, v->len < 4096};
    struct text t = {NULL, 0, 0};
    size_t off = 0, i;
    bool alive = true;

    text_put(&t, "", 0);
    resp_parser_set_authenticated(p, (v->flags & V_UNAUTH) == 0);
    for (i = 0; i < nchunks && alive; i++) {
        conn_append(&c, v->in + off, chunks[i]);
        off += chunks[i];
        alive = drain(p, &c, &t);
    }
    if (alive) {
        assert_int_equal(off, v->len);
        text_printf(&t, "AGAIN %zu\n", c.len);
    }
    c.len = 0;
    conn_move(&c, 0);
    resp_parser_free(p);
    return t.s;
}

static void
expect_transcript(const struct vec *v, const char *how, char *got)
{
    if (strcmp(got, v->want) != 0) {
        print_error("vector \"%s\" fed %s:\n got: %s\nwant: %s\n", v->name, how, got, v->want);
        bw_free(got);
        fail();
    }
    bw_free(got);
}

/*
 * Feed whole, byte by byte, split in two at every offset (when
 * every_offset; else at every 997th) and in pseudo-random chunks; all
 * must give v->want.
 */
static void
check_vec(const struct vec *v, bool every_offset)
{
    size_t *ones = bw_malloc((v->len + 1) * sizeof(size_t));
    size_t two[2], k, step = every_offset ? 1 : 997;
    uint32_t seed = 12345;
    int round;

    two[0] = v->len;
    expect_transcript(v, "whole", feed_chunks(v, two, 1));
    for (k = 0; k < v->len; k++)
        ones[k] = 1;
    expect_transcript(v, "byte by byte", feed_chunks(v, ones, v->len));
    for (k = 1; k < v->len; k += step) {
        char how[64];
        two[0] = k;
        two[1] = v->len - k;
        snprintf(how, sizeof(how), "split at %zu", k);
        expect_transcript(v, how, feed_chunks(v, two, 2));
    }
    for (round = 0; round < 8; round++) {
        size_t n = 0, left = v->len;
        while (left > 0) {
            seed = seed * 1103515245u + 12345u;
            ones[n] = BW_MIN(left, (size_t)(seed >> 16) % 9 + 1);
            left -= ones[n++];
        }
        expect_transcript(v, "in random chunks", feed_chunks(v, ones, n));
    }
    bw_free(ones);
}

/* ---- vectors (each observed on redis-server 7.0.15) ------------------- */

#define V(name, in, want)                 \
    {                                     \
        name, in, sizeof(in) - 1, want, 0 \
    }
#define VU(name, in, want)                       \
    {                                            \
        name, in, sizeof(in) - 1, want, V_UNAUTH \
    }

#define PE "ERR -ERR Protocol error: "
#define E_END "\\r\\n\n"
#define E_QUOTES PE "unbalanced quotes in request" E_END
#define E_MBULK PE "invalid multibulk length" E_END
#define E_BULK PE "invalid bulk length" E_END

static const struct vec inline_vecs[] = {
    V("crlf", "PING\r\n", "I[PING]\nAGAIN 0\n"),
    V("lf only", "PING\n", "I[PING]\nAGAIN 0\n"),
    V("no terminator yet", "PING", "AGAIN 4\n"),
    V("cr only is not an end", "PING\r", "AGAIN 5\n"),
    V("empty lines skipped", "\r\n\r\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("blank line skipped", "   \r\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("isspace line skipped", "\t \x0b\x0c\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("cr line skipped", "\r\r\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("vt line skipped", "\x0b\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("trailing empties consumed", "PING\r\n\r\n\n", "I[PING]\nAGAIN 0\n"),
    V("only empties", "\r\n\n  \n", "AGAIN 0\n"),
    V("double cr: second ends token", "PING\r\r\n", "I[PING]\nAGAIN 0\n"),
    V("cr inside line separates", "ECHO a\rb\r\n", "I[ECHO][a][b]\nAGAIN 0\n"),
    V("vt inside token is kept",
      "ECHO a\x0b"
      "b\r\n",
      "I[ECHO][a\\x0bb]\nAGAIN 0\n"),
    V("ff inside token is kept",
      "ECHO a\x0c"
      "b\r\n",
      "I[ECHO][a\\x0cb]\nAGAIN 0\n"),
    V("tabs and spaces", " \tSET\t k  v \r\n", "I[SET][k][v]\nAGAIN 0\n"),
    V("double quotes", "ECHO \"a b\"\r\n", "I[ECHO][a b]\nAGAIN 0\n"),
    V("dq escapes", "ECHO \"a\\x41\\xzz\\n\\t\\q\"\r\n", "I[ECHO][aAxzz\\n\\tq]\nAGAIN 0\n"),
    V("dq hex both cases, short hex", "ECHO \"\\x4a\\x4A\\x4\"\r\n", "I[ECHO][JJx4]\nAGAIN 0\n"),
    V("dq \\x alone", "ECHO \"\\x\"\r\n", "I[ECHO][x]\nAGAIN 0\n"),
    V("dq \\b \\a \\r", "ECHO \"\\b\\a\\r\"\r\n", "I[ECHO][\\x08\\x07\\r]\nAGAIN 0\n"),
    V("dq escaped quote", "ECHO \"a\\\"b\"\r\n", "I[ECHO][a\"b]\nAGAIN 0\n"),
    V("dq hex nul and high", "ECHO \"\\x00\\xff\"\r\n", "I[ECHO][\\x00\\xff]\nAGAIN 0\n"),
    V("single quotes", "ECHO 'a\\'b'\r\n", "I[ECHO][a'b]\nAGAIN 0\n"),
    V("sq other escapes literal", "ECHO 'a\\nb'\r\n", "I[ECHO][a\\\\nb]\nAGAIN 0\n"),
    V("empty quoted args", "ECHO \"\" ''\r\n", "I[ECHO][][]\nAGAIN 0\n"),
    V("unquoted backslash literal", "ECHO \\x41\r\n", "I[ECHO][\\\\x41]\nAGAIN 0\n"),
    V("quote opens mid token", "ECHO ab\"c d\"\r\n", "I[ECHO][abc d]\nAGAIN 0\n"),
    V("dq mid token", "ECHO a\"b\"\r\n", "I[ECHO][ab]\nAGAIN 0\n"),
    V("sq mid token", "ECHO a'b'\r\n", "I[ECHO][ab]\nAGAIN 0\n"),
    V("closing quote then vt", "ECHO \"a\"\x0b\r\n", "I[ECHO][a]\nAGAIN 0\n"),
    V("closing quote then vt and more",
      "ECHO \"a\"\x0b"
      "b\r\n",
      "I[ECHO][a][b]\nAGAIN 0\n"),
    V("closing quote then tab", "ECHO \"a\"\t\"b\"\r\n", "I[ECHO][a][b]\nAGAIN 0\n"),
    V("closing quote then space", "ECHO \"a\" \r\n", "I[ECHO][a]\nAGAIN 0\n"),
    V("high bytes", "ECHO \xff\xfe\r\n", "I[ECHO][\\xff\\xfe]\nAGAIN 0\n"),
    V("dq utf-8", "ECHO \"\xc3\xa9\"\r\n", "I[ECHO][\\xc3\\xa9]\nAGAIN 0\n"),
    V("leading spaces then star is inline", "  *1\r\n", "I[*1]\nAGAIN 0\n"),
    V("text after closing dq", "ECHO \"ab\"c\r\n", E_QUOTES),
    V("text after closing sq", "ECHO 'a'b\r\n", E_QUOTES),
    V("unterminated dq", "ECHO \"abc\r\n", E_QUOTES),
    V("dq closed by escaped quote only", "ECHO \"\\\"\r\n", E_QUOTES),
    V("dq ends in backslash", "ECHO \"a\\\r\n", E_QUOTES),
    V("sq ends in backslash quote", "ECHO 'a\\\\'\r\n", E_QUOTES),
    V("unquoted backslash then dq", "ECHO x\\\"y\r\n", E_QUOTES),
    V("dq inner quote", "ECHO \"a\"b\"\r\n", E_QUOTES),
    V("error after a good request", "PING\r\nECHO \"x\r\nPING\r\n", "I[PING]\n" E_QUOTES),
    /* Redis finds the '\n' with strchr(): a NUL hides it for good. */
    V("nul hides the newline", "ECHO a\0b\r\nPING\r\n", "AGAIN 16\n"),
    V("nul at line start", "PING\r\n\0\r\n", "I[PING]\nAGAIN 3\n"),
    VU("no argument limit before auth", "ECHO a a a a a a a a a a a a\r\n",
       "I[ECHO][a][a][a][a][a][a][a][a][a][a][a][a]\nAGAIN 0\n"),
};

static const struct vec mbulk_vecs[] = {
    V("one element", "*1\r\n$4\r\nPING\r\n", "M[PING]\nAGAIN 0\n"),
    V("incomplete: count only", "*1\r\n", "AGAIN 4\n"),
    V("incomplete: cr without next byte", "*1\r\n$4\r", "AGAIN 7\n"),
    V("incomplete: payload", "*1\r\n$4\r\nPIN", "AGAIN 11\n"),
    V("incomplete: no trailing bytes", "*1\r\n$4\r\nPING", "AGAIN 12\n"),
    V("byte after count cr unchecked", "*1\rX$4\r\nPING\r\n", "M[PING]\nAGAIN 0\n"),
    V("byte after bulk cr unchecked", "*1\r\n$4\rXPING\r\n", "M[PING]\nAGAIN 0\n"),
    V("2 bytes after payload unchecked", "*1\r\n$4\r\nPINGXY", "M[PING]\nAGAIN 0\n"),
    V("2 bytes after payload, pipelined", "*1\r\n$4\r\nPINGXY*1\r\n$4\r\nPING\r\n",
      "M[PING]\nM[PING]\nAGAIN 0\n"),
    V("empty bulk", "*2\r\n$4\r\nECHO\r\n$0\r\n\r\n", "M[ECHO][]\nAGAIN 0\n"),
    V("binary bulk", "*2\r\n$4\r\nECHO\r\n$3\r\na\0\n\r\n", "M[ECHO][a\\x00\\n]\nAGAIN 0\n"),
    V("bulk holding protocol", "*2\r\n$4\r\nECHO\r\n$10\r\n\0\r\n\r\n$\r\n*\r\n\r\n",
      "M[ECHO][\\x00\\r\\n\\r\\n$\\r\\n*\\r]\nAGAIN 0\n"),
    V("bulk of one cr", "*2\r\n$4\r\nECHO\r\n$1\r\n\r\r\n", "M[ECHO][\\r]\nAGAIN 0\n"),
    V("value with crlf", "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$3\r\na\r\n\r\n",
      "M[SET][k][a\\r\\n]\nAGAIN 0\n"),
    V("*0 skipped", "*0\r\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("*-1 skipped", "*-1\r\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("*-5 skipped", "*-5\r\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("*LLONG_MIN skipped", "*-9223372036854775808\r\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    V("only empty multibulks", "*0\r\n*-1\r\n", "AGAIN 0\n"),
    V("INT_MAX elements accepted", "*2147483647\r\n", "AGAIN 13\n"),
    V("mixed pipeline",
      "\r\n*0\r\nPING\r\n*-1\r\n*2\r\n$3\r\nGET\r\n$1\r\nk\r\n\r\n"
      "SET a \"b c\"\n*1\r\n$4\r\nPING\r\n",
      "I[PING]\nM[GET][k]\nI[SET][a][b c]\nM[PING]\nAGAIN 0\n"),
    V("INT_MAX+1 elements", "*2147483648\r\n", E_MBULK),
    V("LLONG_MAX elements", "*9223372036854775807\r\n", E_MBULK),
    V("count overflow", "*9223372036854775808\r\n", E_MBULK),
    V("count -0", "*-0\r\n", E_MBULK),
    V("count 00", "*00\r\n", E_MBULK),
    V("count leading zero", "*01\r\n$4\r\nPING\r\n", E_MBULK),
    V("count plus", "*+1\r\n$4\r\nPING\r\n", E_MBULK),
    V("count leading space", "* 1\r\n", E_MBULK),
    V("count trailing space", "*1 \r\n", E_MBULK),
    V("count empty", "*\r\n", E_MBULK),
    V("count letter", "*a\r\n", E_MBULK),
    V("count line ends at cr, not lf", "*1\n$4\r\nPING\r\n", E_MBULK),
    V("bare word for bulk", "*1\r\nPING\r\n", PE "expected '$', got 'P'" E_END),
    V("empty line for bulk", "*1\r\n\r\n", PE "expected '$', got ' '" E_END),
    V("lf for bulk", "*1\r\n\n\r\n", PE "expected '$', got ' '" E_END),
    V("control byte for bulk", "*1\r\n\x01\r\n", PE "expected '$', got '\\x01'" E_END),
    V("simple string for bulk", "*2\r\n$4\r\nECHO\r\n+3\r\n", PE "expected '$', got '+'" E_END),
    V("bulk -1", "*1\r\n$-1\r\n", E_BULK),
    V("bulk -0", "*1\r\n$-0\r\n", E_BULK),
    V("bulk plus", "*1\r\n$+4\r\nPING\r\n", E_BULK),
    V("bulk leading zero", "*1\r\n$04\r\nPING\r\n", E_BULK),
    V("bulk empty", "*1\r\n$\r\n", E_BULK),
    V("bulk space", "*1\r\n$ 4\r\n", E_BULK),
    V("bulk 20 digits", "*1\r\n$99999999999999999999\r\n", E_BULK),
    V("bulk 21 digits", "*1\r\n$999999999999999999999\r\n", E_BULK),
    V("bulk proto-max-bulk-len", "*1\r\n$536870912\r\n", "AGAIN 16\n"),
    V("bulk over proto-max-bulk-len", "*1\r\n$536870913\r\n", E_BULK),
    V("error after good ones", "SET k1 v\r\n*1\r\n$4\r\nPING\r\n*x\r\nSET k2 v\r\n",
      "I[SET][k1][v]\nM[PING]\n" E_MBULK),
    V("bad bulk after a good request", "PING\r\n*1\r\n$x\r\nPING\r\n", "I[PING]\n" E_BULK),
    /* strchr() on the '\r' of a header line stops at a NUL. */
    V("nul in count line", "*1\0\r\n$4\r\nPING\r\n", "AGAIN 15\n"),
    V("nul in bulk line", "*1\r\n$4\0\r\nPING\r\n", "AGAIN 15\n"),
    V("nul as bulk line", "*1\r\n$4\r\nPING\r\n*1\r\n$\0\r\n", "M[PING]\nAGAIN 8\n"),
    VU("10 elements before auth", "*10\r\n", "AGAIN 5\n"),
    VU("11 elements before auth", "*11\r\n", PE "unauthenticated multibulk length" E_END),
    VU("negative count before auth", "*-5\r\nPING\r\n", "I[PING]\nAGAIN 0\n"),
    VU("invalid count wins before auth", "*2147483648\r\n", E_MBULK),
    VU("16384 bytes before auth", "*1\r\n$16384\r\n", "AGAIN 12\n"),
    VU("16385 bytes before auth", "*1\r\n$16385\r\n", PE "unauthenticated bulk length" E_END),
    VU("invalid bulk wins before auth", "*1\r\n$536870913\r\n", E_BULK),
};

static void
test_inline_vectors(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < BW_ARRAY_LEN(inline_vecs); i++)
        check_vec(&inline_vecs[i], true);
}

static void
test_multibulk_vectors(void **state)
{
    size_t i;

    (void)state;
    for (i = 0; i < BW_ARRAY_LEN(mbulk_vecs); i++)
        check_vec(&mbulk_vecs[i], true);
}

/* ---- "too big" lines, built at run time ------------------------------------
 */

/* A heap vector: prefix, fill bytes of c, suffix. */
static struct vec
big_vec(const char *name, const char *prefix, size_t plen, char c, size_t fill,
        const char *suffix, const char *want)
{
    size_t slen = strlen(suffix);
    char *in = bw_malloc(plen + fill + slen);
    struct vec v = {name, in, plen + fill + slen, want, 0};

    memcpy(in, prefix, plen);
    memset(in + plen, c, fill);
    memcpy(in + plen + fill, suffix, slen);
    return v;
}

static void
check_big(struct vec v)
{
    check_vec(&v, false);
    bw_free((char *)v.in);
}

static void
test_too_big_lines(void **state)
{
    (void)state;
    /* Redis: no terminator and more than 64 KB after the line start. */
    check_big(big_vec("inline 64 KB", "", 0, 'A', 65536, "", "AGAIN 65536\n"));
    check_big(
        big_vec("inline 64 KB + 1", "", 0, 'A', 65537, "", PE "too big inline request" E_END));
    check_big(big_vec("count 64 KB", "*", 1, '1', 65535, "", "AGAIN 65536\n"));
    check_big(big_vec("count 64 KB + 1", "*", 1, '1', 65536, "",
                      PE "too big mbulk count string" E_END));
    /* For a bulk header the 64 KB count from the '$', not the '*'. */
    check_big(big_vec("bulk line 64 KB", "*1\r\n$", 5, '1', 65535, "", "AGAIN 65540\n"));
    check_big(big_vec("bulk line 64 KB + 1", "*1\r\n$", 5, '1', 65536, "",
                      PE "too big bulk count string" E_END));
    /* A NUL hides the terminator until the buffer is too big. */
    check_big(big_vec("inline nul", "PING\0", 5, 'A', 70000, "\r\n",
                      PE "too big inline request" E_END));
    check_big(big_vec("count nul", "*1\0", 3, 'A', 70000, "\r\n",
                      PE "too big mbulk count string" E_END));
    check_big(big_vec("bulk nul", "*1\r\n$4\0", 7, 'A', 70000, "\r\n",
                      PE "too big bulk count string" E_END));
}

static void
test_long_bulk_is_no_line(void **state)
{
    /* A bulk payload is not a line: 100 KB without a terminator is fine. */
    char *want = bw_malloc(100000 + 32);

    (void)state;
    memcpy(want, "M[ECHO][", 8);
    memset(want + 8, 'x', 100000);
    strcpy(want + 8 + 100000, "]\nAGAIN 0\n");
    const char *hdr = "*2\r\n$4\r\nECHO\r\n$100000\r\n";
    check_big(big_vec("100 KB bulk", hdr, strlen(hdr), 'x', 100000, "\r\n", want));
    bw_free(want);
}

/* ---- contract details -------------------------------------------------- */

/* Parse one request from a string; the request is valid until the next call. */
static int
parse_str(struct resp_parser *p, const char *s, size_t len, size_t *consumed,
          struct resp_request *req)
{
    return resp_parse(p, s, len, consumed, req);
}

static void
test_free_null_and_defaults(void **state)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t consumed;

    (void)state;
    resp_parser_free(NULL);
    assert_null(resp_parser_error(p));
    assert_int_equal(resp_parser_need(p), 0);
    assert_int_equal(resp_parse(p, NULL, 0, &consumed, &req), RESP_AGAIN);
    assert_int_equal(consumed, 0);
    resp_parser_free(p);
}

static void
test_consumed_counts_skipped(void **state)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t consumed;
    const char *s = "\r\n*0\r\n  \n*1\r\n$4\r\nPING\r\n";

    (void)state;
    /* OK: consumed = skipped empties + the request, raw = request only. */
    assert_int_equal(parse_str(p, s, strlen(s), &consumed, &req), RESP_OK);
    assert_int_equal(consumed, strlen(s));
    assert_ptr_equal(req.raw, s + 9); /* after "\r\n*0\r\n  \n" */
    assert_int_equal(req.raw_len, 14);
    /* AGAIN: empties are consumed even when nothing completes. */
    assert_int_equal(parse_str(p, "\r\n*-1\r\n*1\r\n$4", 13, &consumed, &req), RESP_AGAIN);
    assert_int_equal(consumed, 7);
    /* The caller drops them; progress is relative to the new start. */
    assert_int_equal(parse_str(p, "*1\r\n$4\r\nPING\r\n", 14, &consumed, &req), RESP_OK);
    assert_int_equal(consumed, 14);
    assert_int_equal(req.argc, 1);
    assert_memory_equal(req.argv[0].ptr, "PING", 4);
    resp_parser_free(p);
}

static void
test_error_sticky_until_reset(void **state)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t consumed;

    (void)state;
    assert_int_equal(parse_str(p, "*1\r\n$-1\r\n", 9, &consumed, &req), RESP_ERR);
    assert_string_equal(resp_parser_error(p), "-ERR Protocol error: invalid bulk length\r\n");
    assert_int_equal(parse_str(p, "PING\r\n", 6, &consumed, &req), RESP_ERR);
    assert_int_equal(consumed, 0);
    assert_string_equal(resp_parser_error(p), "-ERR Protocol error: invalid bulk length\r\n");
    resp_parser_reset(p);
    assert_null(resp_parser_error(p));
    assert_int_equal(parse_str(p, "PING\r\n", 6, &consumed, &req), RESP_OK);
    assert_true(req.is_inline);
    /* reset also drops partial progress */
    assert_int_equal(parse_str(p, "*2\r\n$3\r\nGET\r\n", 13, &consumed, &req), RESP_AGAIN);
    resp_parser_reset(p);
    assert_int_equal(parse_str(p, "GET k\r\n", 7, &consumed, &req), RESP_OK);
    assert_int_equal(req.argc, 2);
    assert_true(req.is_inline);
    resp_parser_free(p);
}

static void
test_limits_at_runtime(void **state)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t consumed;
    const char *s = "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n";

    (void)state;
    resp_parser_set_limits(p, 3);
    assert_int_equal(parse_str(p, s, strlen(s), &consumed, &req), RESP_OK);
    assert_int_equal(parse_str(p, "*1\r\n$4\r\n", 8, &consumed, &req), RESP_ERR);
    assert_string_equal(resp_parser_error(p), "-ERR Protocol error: invalid bulk length\r\n");
    /* Lowered in the middle of a request: the next header sees it. */
    resp_parser_reset(p);
    resp_parser_set_limits(p, 1000);
    assert_int_equal(parse_str(p, s, 13, &consumed, &req), RESP_AGAIN);
    resp_parser_set_limits(p, 2);
    assert_int_equal(parse_str(p, s, strlen(s), &consumed, &req), RESP_ERR);
    /* Raised again: the default's ceiling no longer applies. */
    resp_parser_reset(p);
    resp_parser_set_limits(p, UINT64_MAX);
    assert_int_equal(parse_str(p, "*1\r\n$536870913\r\n", 16, &consumed, &req), RESP_AGAIN);
    assert_int_equal(resp_parser_need(p), 16 + 536870913 + 2);
    resp_parser_free(p);
}

static void
test_auth_flip_between_requests(void **state)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t consumed;
    char s[256];
    int n, i;

    (void)state;
    n = snprintf(s, sizeof(s), "AUTH x\r\n*11\r\n$4\r\nMSET\r\n");
    for (i = 0; i < 5; i++)
        n += snprintf(s + n, sizeof(s) - (size_t)n, "$1\r\nk\r\n$1\r\nv\r\n");
    resp_parser_set_authenticated(p, false);
    assert_int_equal(parse_str(p, s, (size_t)n, &consumed, &req), RESP_OK);
    assert_int_equal(req.argc, 2);
    assert_int_equal(consumed, 8);
    /* The daemon saw +OK for AUTH and lifts the limits. */
    resp_parser_set_authenticated(p, true);
    assert_int_equal(parse_str(p, s + 8, (size_t)n - 8, &consumed, &req), RESP_OK);
    assert_int_equal(req.argc, 11);
    /* Without it the same bytes are refused. */
    resp_parser_set_authenticated(p, false);
    assert_int_equal(parse_str(p, s + 8, (size_t)n - 8, &consumed, &req), RESP_ERR);
    assert_string_equal(resp_parser_error(p),
                        "-ERR Protocol error: unauthenticated multibulk length\r\n");
    resp_parser_free(p);
}

static void
test_need_for_big_bulk(void **state)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t consumed;
    const char *hdr = "\r\n*2\r\n$3\r\nSET\r\n$100000\r\nabc";

    (void)state;
    /* "\r\n*2\r\n$3\r": the empty line goes, the header is incomplete */
    assert_int_equal(parse_str(p, hdr, 9, &consumed, &req), RESP_AGAIN);
    assert_int_equal(consumed, 2);
    assert_int_equal(resp_parser_need(p), 0);
    /* "*2\r\n$3\r\n": 8 bytes, then "SET" and 2 more */
    assert_int_equal(parse_str(p, hdr + 2, 8, &consumed, &req), RESP_AGAIN);
    assert_int_equal(resp_parser_need(p), 8 + 3 + 2);
    /* "*2\r\n$3\r\nSET\r\n$100000\r\n": 22 bytes, + payload + 2 */
    assert_int_equal(parse_str(p, hdr + 2, strlen(hdr) - 2, &consumed, &req), RESP_AGAIN);
    assert_int_equal(consumed, 0);
    assert_int_equal(resp_parser_need(p), 22 + 100000 + 2);
    /* payload complete but its 2 trailing bytes missing: still 1 short */
    {
        size_t len = 22 + 100000 + 1;
        char *in = bw_malloc(len + 1);
        memcpy(in, hdr + 2, 22);
        memset(in + 22, 'v', 100000 + 1);
        assert_int_equal(resp_parse(p, in, len, &consumed, &req), RESP_AGAIN);
        assert_int_equal(resp_parser_need(p), len + 1);
        in[len] = '\n';
        assert_int_equal(resp_parse(p, in, len + 1, &consumed, &req), RESP_OK);
        assert_int_equal(req.argc, 2);
        assert_int_equal(req.argv[1].len, 100000);
        assert_int_equal(resp_parser_need(p), 0);
        bw_free(in);
    }
    resp_parser_free(p);
}

/* ---- hostile lengths, linear time ------------------------------------------
 */

static size_t
heap_in_use(void)
{
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
}

static void
test_declared_count_not_preallocated(void **state)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t consumed, before = heap_in_use();
    char s[64];
    int n = snprintf(s, sizeof(s), "*2147483647\r\n$1\r\na\r\n$1\r\nb\r\n");

    (void)state;
    assert_int_equal(parse_str(p, s, (size_t)n, &consumed, &req), RESP_AGAIN);
    /* 2^31 entries would be tens of GB; Redis caps its prealloc at 1024. */
    assert_true(heap_in_use() - before < 256 * 1024);
    resp_parser_free(p);
}

/*
 * Feed a request through a buffer of its full size in step-byte reads
 * (the daemon reads into a grown buffer) and return the bytes the parser
 * scanned. Expects exactly one request with argc arguments.
 */
static uint64_t
feed_steps(const char *in, size_t len, size_t step, int argc)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t have = 0, consumed = 0;
    uint64_t scanned;
    int rc = RESP_AGAIN;

    while (rc == RESP_AGAIN && have < len) {
        have = BW_MIN(len, have + step);
        rc = resp_parse(p, in, have, &consumed, &req);
    }
    assert_int_equal(rc, RESP_OK);
    assert_int_equal(consumed, len);
    assert_int_equal(req.argc, argc);
    scanned = resp_parser_scanned(p);
    resp_parser_free(p);
    return scanned;
}

static void
test_big_bulk_is_linear(void **state)
{
    const size_t payload = 64u * 1024 * 1024;
    const char *hdr = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$67108864\r\n";
    size_t hlen = strlen(hdr), len = hlen + payload + 2;
    char *in = bw_malloc(len);
    uint64_t t0, scanned;

    (void)state;
    memcpy(in, hdr, hlen);
    memset(in + hlen, '\r', payload); /* a payload full of would-be ends */
    memcpy(in + hlen + payload, "\r\n", 2);
    t0 = bw_now_us();
    scanned = feed_steps(in, len, 4096, 3);
    /* 16384 calls; the payload is skipped, never rescanned. */
    assert_true(scanned <= hlen);
    assert_true(bw_now_us() - t0 < 2000000);
    bw_free(in);
}

static void
test_many_args_and_long_line_are_linear(void **state)
{
    const int nargs = 200000;
    size_t len = 0, cap = 16 + (size_t)nargs * 7;
    char *in = bw_malloc(cap);
    uint64_t t0 = bw_now_us();
    int i;

    (void)state;
    len += (size_t)snprintf(in, cap, "*%d\r\n", nargs);
    for (i = 0; i < nargs; i++) {
        memcpy(in + len, "$1\r\nx\r\n", 7);
        len += 7;
    }
    /* byte-by-byte arrival: each byte examined a bounded number of times */
    assert_true(feed_steps(in, len, 1, nargs) <= 2 * len);
    assert_true(feed_steps(in, len, 3, nargs) <= 2 * len);
    bw_free(in);

    /* a 60 KB inline line, byte by byte */
    len = 60000;
    in = bw_malloc(len);
    for (i = 0; i < (int)len - 2; i++)
        in[i] = i % 4 == 3 ? ' ' : 'a';
    memcpy(in + len - 2, "\r\n", 2);
    assert_true(feed_steps(in, len, 1, 15000) <= 3 * len);
    bw_free(in);
    /* loose: a quadratic parser spends seconds here */
    assert_true(bw_now_us() - t0 < 3000000);
}

static void
test_argv_grows_and_shrinks(void **state)
{
    struct resp_parser *p = resp_parser_new();
    struct resp_request req;
    size_t len = 0, consumed;
    const int nargs = 5000;
    char *in = bw_malloc(16 + (size_t)nargs * 16);
    int i;

    (void)state;
    len += (size_t)sprintf(in, "*%d\r\n", nargs);
    for (i = 0; i < nargs; i++)
        len += (size_t)sprintf(in + len, "$%d\r\n%d\r\n",
                               i < 10     ? 1
                               : i < 100  ? 2
                               : i < 1000 ? 3
                                          : 4,
                               i);
    assert_int_equal(resp_parse(p, in, len, &consumed, &req), RESP_OK);
    assert_int_equal(consumed, len);
    assert_int_equal(req.argc, nargs);
    assert_memory_equal(req.argv[4999].ptr, "4999", 4);
    assert_memory_equal(req.argv[0].ptr, "0", 1);
    /* the next, small request still parses (array given back to 1024) */
    assert_int_equal(resp_parse(p, "*2\r\n$1\r\na\r\n$1\r\nb\r\n", 18, &consumed, &req), RESP_OK);
    assert_int_equal(req.argc, 2);
    assert_memory_equal(req.argv[1].ptr, "b", 1);
    bw_free(in);
    resp_parser_free(p);
}

/* resp_arg_is: ASCII case-insensitive, whole argument, NUL bytes kept. */
static void
test_arg_is(void **state)
{
    (void)state;
    struct resp_arg a = {"MuLtI", 5}, z = {"get\0", 4}, at = {"@x", 2}, e = {"", 0};
    assert_true(resp_arg_is(&a, "multi"));
    assert_true(resp_arg_is(&a, "MULTI"));
    assert_false(resp_arg_is(&a, "mult"));
    assert_false(resp_arg_is(&a, "multix"));
    assert_false(resp_arg_is(&a, "nulti"));
    assert_false(resp_arg_is(&z, "get"));
    assert_false(resp_arg_is(&at, "`x")); /* differs in bit 5, not a letter */
    assert_true(resp_arg_is(&at, "@X"));
    assert_true(resp_arg_is(&e, ""));
    assert_false(resp_arg_is(&e, "a"));
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_inline_vectors),
        cmocka_unit_test(test_multibulk_vectors),
        cmocka_unit_test(test_too_big_lines),
        cmocka_unit_test(test_long_bulk_is_no_line),
        cmocka_unit_test(test_free_null_and_defaults),
        cmocka_unit_test(test_consumed_counts_skipped),
        cmocka_unit_test(test_error_sticky_until_reset),
        cmocka_unit_test(test_limits_at_runtime),
        cmocka_unit_test(test_auth_flip_between_requests),
        cmocka_unit_test(test_need_for_big_bulk),
        cmocka_unit_test(test_declared_count_not_preallocated),
        cmocka_unit_test(test_big_bulk_is_linear),
        cmocka_unit_test(test_many_args_and_long_line_are_linear),
        cmocka_unit_test(test_argv_grows_and_shrinks),
        cmocka_unit_test(test_arg_is),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
