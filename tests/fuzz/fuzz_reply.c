/*
 * fuzz_reply: libFuzzer target for the upstream reply scanner (RESP2 and RESP3) and the reply
 * tree parser (proxy/reply.c). Scans each input whole, byte by byte and split
 * at an input-chosen offset, aborts if the three disagree, and cross-checks
 * every reply the scanner delimits against reply_parse() and a re-encoding.
 * Build: see the fuzz rule in the Makefile.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/reply.h"
#include "proxy/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* reply_parse() refuses nodes deeper than this (reply.h: "capped at 64"). */
#define FUZZ_MAX_DEPTH 64
/* Shortest reply: "+\r\n". */
#define FUZZ_MIN_REPLY 3

/* A growing byte string: the scan log, or a re-encoded reply. */
struct fuzz_buf {
    char *s;    /* owned */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
};

static void
fuzz_put(struct fuzz_buf *b, const void *p, size_t n)
{
    if (b->len + n > b->cap) {
        b->cap = (b->len + n) * 2 + 64;
        b->s = bw_realloc(b->s, b->cap);
    }
    memcpy(b->s + b->len, p, n);
    b->len += n;
}

static void
fuzz_put_tagged(struct fuzz_buf *b, char tag, uint64_t v)
{
    fuzz_put(b, &tag, 1);
    fuzz_put(b, &v, sizeof(v));
}

/* reply_parse() on an exact-size copy, so ASan sees any read past len. */
static struct reply_node *
fuzz_parse(const char *buf, size_t len, char **copy)
{
    *copy = bw_malloc(len ? len : 1);
    memcpy(*copy, buf, len);
    return reply_parse(*copy, len);
}

/* ---- the reference framing, for parse failures only ---------------------- */

/* What fuzz_ref_walk() saw in a reply. */
struct fuzz_ref {
    int max_depth; /* deepest node, the root being 0 */
    bool lenient;  /* a line the scanner does not check: a ':' that is not an
                      integer, a bare LF inside a + - : line */
};

/*
 * An integer as reply.c reads one: 1..31 bytes, a sign or a digit first,
 * every byte taken by strtoll.
 */
static bool
fuzz_ref_int(const char *s, size_t n, long long *out)
{
    char tmp[32], *end;

    if (n == 0 || n >= sizeof(tmp) || strchr("+-0123456789", s[0]) == NULL || s[0] == '\0')
        return false;
    memcpy(tmp, s, n);
    tmp[n] = '\0';
    errno = 0;
    *out = strtoll(tmp, &end, 10);
    return errno == 0 && end == tmp + n;
}

/*
 * Frame one reply at p as RESP2/RESP3 say (a line ends at the first CRLF),
 * noting in ref what reply_parse() may refuse although the framing is right.
 * Returns the end of the reply, or NULL when p..end is not one.
 */
static const char *
fuzz_ref_walk(const char *p, const char *end, int depth, struct fuzz_ref *ref)
{
    const char *line, *crlf;
    long long n;
    char type;

    ref->max_depth = BW_MAX(ref->max_depth, depth);
    if (p >= end)
        return NULL;
    type = *p++;
    crlf = memmem(p, (size_t)(end - p), "\r\n", 2);
    if (crlf == NULL)
        return NULL;
    line = p;
    p = crlf + 2;
    size_t ll = (size_t)(crlf - line);
    if (strchr("+-:_,#(", type) != NULL && type != '\0') {
        if (memchr(line, '\n', ll) != NULL || (type == ':' && !fuzz_ref_int(line, ll, &n)) ||
            (type == '_' && ll != 0) ||
            (type == '#' && (ll != 1 || (line[0] != 't' && line[0] != 'f'))))
            ref->lenient = true;
        return p;
    }
    bool bulk = type == '$' || type == '!' || type == '=';
    bool agg = type == '*' || type == '%' || type == '~' || type == '>' || type == '|';
    if ((!bulk && !agg) || !fuzz_ref_int(line, ll, &n) || n < -1 ||
        (n == -1 && type != '$' && type != '*'))
        return NULL;
    if (bulk) {
        if (n < 0)
            return p;
        if ((uint64_t)n + 2 > (uint64_t)(end - p))
            return NULL;
        if (p[n] != '\r' || p[n + 1] != '\n')
            ref->lenient = true; /* the scanner skips the two bytes unchecked */
        return p + n + 2;
    }
    long long items = type == '%' ? 2 * n : type == '|' ? 2 * n + 1 : n;
    for (long long i = 0; i < items && p != NULL; i++)
        p = fuzz_ref_walk(p, end, depth + 1, ref);
    return p;
}

/* ---- tree checks ------------------------------------------------------------ */

static bool
fuzz_is_agg(char t)
{
    return t == '*' || t == '%' || t == '~' || t == '>' || t == '|';
}

static bool
fuzz_is_bulk(char t)
{
    return t == '$' || t == '!' || t == '=';
}

/* Check n (parsed from buf, len bytes) against reply.h's promises. */
static void
fuzz_check_tree(const struct reply_node *n, const char *buf, size_t len)
{
    BW_ASSERT(strchr("+-:$*_,#(!=%~>|", n->type) != NULL && n->type != '\0');
    BW_ASSERT(!n->nil || n->type == '_' ||
              ((n->type == '$' || n->type == '*') && n->integer == -1));
    if (!fuzz_is_agg(n->type) && !n->nil)
        BW_ASSERT(n->str >= buf && n->len <= len && n->str + n->len <= buf + len);
    if (fuzz_is_bulk(n->type) && !n->nil)
        BW_ASSERT(n->integer >= 0 && (uint64_t)n->integer == n->len);
    if (fuzz_is_agg(n->type) && !n->nil) {
        uint64_t want = n->type == '%'   ? 2 * (uint64_t)n->integer
                        : n->type == '|' ? 2 * (uint64_t)n->integer + 1
                                         : (uint64_t)n->integer;
        BW_ASSERT(n->integer >= 0 && n->nelems == want && (n->nelems > 0) == (n->elems != NULL));
        for (size_t i = 0; i < n->nelems; i++)
            fuzz_check_tree(&n->elems[i], buf, len);
    }
    (void)reply_node_is(n, "ok");
}

/* Canonical RESP of a tree. */
static void
fuzz_encode(struct fuzz_buf *b, const struct reply_node *n)
{
    char head[48];
    int hl;

    if (n->nil && n->type == '_') {
        fuzz_put(b, "_\r\n", 3);
        return;
    }
    if (n->nil) {
        hl = snprintf(head, sizeof(head), "%c-1\r\n", n->type);
    } else if (fuzz_is_bulk(n->type)) {
        hl = snprintf(head, sizeof(head), "%c%zu\r\n", n->type, n->len);
    } else if (fuzz_is_agg(n->type) || n->type == ':') {
        hl = snprintf(head, sizeof(head), "%c%lld\r\n", n->type, (long long)n->integer);
    } else {
        fuzz_put(b, &n->type, 1);
        fuzz_put(b, n->str, n->len);
        fuzz_put(b, "\r\n", 2);
        return;
    }
    fuzz_put(b, head, (size_t)hl);
    if (fuzz_is_bulk(n->type) && !n->nil) {
        fuzz_put(b, n->str, n->len);
        fuzz_put(b, "\r\n", 2);
    }
    for (size_t i = 0; fuzz_is_agg(n->type) && i < n->nelems; i++)
        fuzz_encode(b, &n->elems[i]);
}

static void
fuzz_same_tree(const struct reply_node *a, const struct reply_node *b)
{
    BW_ASSERT(a->type == b->type && a->nil == b->nil);
    if (a->type == ':' || fuzz_is_agg(a->type) || a->type == '#')
        BW_ASSERT(a->integer == b->integer);
    if (a->type != ':' && !fuzz_is_agg(a->type) && !a->nil)
        BW_ASSERT(a->len == b->len && memcmp(a->str, b->str, a->len) == 0);
    for (size_t i = 0; fuzz_is_agg(a->type) && i < a->nelems; i++)
        fuzz_same_tree(&a->elems[i], &b->elems[i]);
}

/* The canonical encoding of t scans and parses back to itself. */
static void
fuzz_check_encoding(const struct reply_node *t)
{
    struct fuzz_buf e = {NULL, 0, 0}, e2 = {NULL, 0, 0};
    struct reply_scan s;
    struct reply_node *t2;
    size_t used = 0;
    char *copy;

    fuzz_encode(&e, t);
    reply_scan_reset(&s);
    BW_ASSERT(reply_scan_feed(&s, e.s, e.len, &used) == REPLY_DONE);
    BW_ASSERT(used == e.len && s.consumed == e.len);
    t2 = fuzz_parse(e.s, e.len, &copy);
    BW_ASSERT(t2 != NULL);
    fuzz_same_tree(t, t2);
    fuzz_encode(&e2, t2);
    BW_ASSERT(e2.len == e.len && memcmp(e.s, e2.s, e.len) == 0);
    reply_node_free(t2);
    bw_free(copy);
    bw_free(e.s);
    bw_free(e2.s);
}

/*
 * r (len bytes) is a reply the scanner delimited: reply_parse() takes exactly
 * these bytes, unless the reply nests deeper than it allows or holds a line
 * the scanner does not check (reply.h: the scanner only frames).
 */
static void
fuzz_check_reply(const char *r, size_t len)
{
    char *copy, *copy2;
    struct reply_node *t = fuzz_parse(r, len, &copy), *p;

    if (t == NULL) {
        struct fuzz_ref ref = {0, false};
        BW_ASSERT(fuzz_ref_walk(r, r + len, 0, &ref) == r + len);
        BW_ASSERT(ref.max_depth > FUZZ_MAX_DEPTH || ref.lenient);
        bw_free(copy);
        return;
    }
    fuzz_check_tree(t, copy, len);
    fuzz_check_encoding(t);
    p = fuzz_parse(r, len - 1, &copy2); /* no reply is a prefix of another */
    BW_ASSERT(p == NULL);
    bw_free(copy2);
    reply_node_free(t);
    bw_free(copy);
}

/* ---- scanning --------------------------------------------------------------- */

/*
 * Scan data in chunks of `step` bytes after the first `first` bytes; log
 * every boundary ('D' and the reply's length), then the error ('E' and how
 * far into its reply) or what is pending at the end ('P'). With check, each
 * reply found is cross-checked with fuzz_check_reply().
 */
static struct fuzz_buf
fuzz_scan(const char *data, size_t size, size_t first, size_t step, bool check)
{
    struct fuzz_buf l = {NULL, 0, 0};
    struct reply_scan s;
    size_t off = 0, start = 0;

    reply_scan_reset(&s);
    while (off < size) {
        size_t n = BW_MIN(size - off, off == 0 && first > 0 ? first : step);
        size_t used = SIZE_MAX;
        int rc = reply_scan_feed(&s, data + off, n, &used);

        if (rc == REPLY_ERR) {
            fuzz_put_tagged(&l, 'E', s.consumed);
            BW_ASSERT(s.consumed >= 1 && s.consumed <= off + n - start);
            return l;
        }
        BW_ASSERT(used <= n);
        off += used;
        BW_ASSERT(s.consumed == off - start);
        if (rc == REPLY_AGAIN) {
            BW_ASSERT(used == n);
            continue;
        }
        BW_ASSERT(rc == REPLY_DONE && used >= 1 && s.consumed >= FUZZ_MIN_REPLY);
        fuzz_put_tagged(&l, 'D', s.consumed);
        if (check)
            fuzz_check_reply(data + start, (size_t)s.consumed);
        start = off;
        reply_scan_reset(&s);
    }
    fuzz_put_tagged(&l, 'P', s.consumed);
    return l;
}

/*
 * The tail from the start of the last reply the scanner did not finish (it
 * needs more bytes, or it was refused): no prefix of it parses as a reply,
 * at least for the first 128 and the whole tail.
 */
static void
fuzz_check_tail(const char *tail, size_t len)
{
    for (size_t k = 1; k <= len; k++) {
        char *copy;
        struct reply_node *t;

        if (k > 128 && k < len)
            k = len;
        t = fuzz_parse(tail, k, &copy);
        BW_ASSERT(t == NULL);
        bw_free(copy);
    }
}

/* Where the last unfinished reply starts in the whole scan log l. */
static size_t
fuzz_tail_start(const struct fuzz_buf *l)
{
    size_t at = 0;

    for (size_t i = 0; i + 9 <= l->len; i += 9) {
        uint64_t v;
        memcpy(&v, l->s + i + 1, sizeof(v));
        if (l->s[i] == 'D')
            at += (size_t)v;
    }
    return at;
}

/* When the whole input parses as one reply, the scanner found just that. */
static void
fuzz_check_whole(const char *d, size_t size, const struct fuzz_buf *whole)
{
    char *copy;
    struct reply_node *t = fuzz_parse(d, size, &copy);
    struct fuzz_buf want = {NULL, 0, 0};

    if (t != NULL) {
        fuzz_put_tagged(&want, 'D', size);
        fuzz_put_tagged(&want, 'P', 0);
        BW_ASSERT(whole->len == want.len && memcmp(whole->s, want.s, want.len) == 0);
        bw_free(want.s);
    }
    reply_node_free(t);
    bw_free(copy);
}

static void
fuzz_same(const struct fuzz_buf *a, const struct fuzz_buf *b)
{
    BW_ASSERT(a->len == b->len && memcmp(a->s, b->s, a->len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_buf whole, split, bytes;
    const char *d = (const char *)data + 1;
    size_t cut, start;

    if (size < 2 || size > 65536)
        return 0;
    cut = data[0] % (size - 1) + 1;
    size -= 1;
    whole = fuzz_scan(d, size, 0, size, true);
    split = fuzz_scan(d, size, cut, size, false);
    fuzz_same(&whole, &split);
    if (size <= 4096) {
        bytes = fuzz_scan(d, size, 0, 1, false);
        fuzz_same(&whole, &bytes);
        bw_free(bytes.s);
    }
    fuzz_check_whole(d, size, &whole);
    start = fuzz_tail_start(&whole);
    if (start < size)
        fuzz_check_tail(d + start, size - start);
    bw_free(whole.s);
    bw_free(split.s);
    return 0;
}
