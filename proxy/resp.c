/*
 * resp: the RESP2 request parser (inline and multibulk), an incremental
 * re-implementation of redis-server 7.0.15's processInlineBuffer(),
 * processMultibulkBuffer(), sdssplitargs() and string2ll().
 */
#include "proxy/resp.h"

#include <strings.h>
#include <stdlib.h>
#include <errno.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "proxy/util.h"

/* Internal outcome: an empty request (blank inline line, *0, *-1) to skip. */
#define RESP_SKIP 2

/* Redis preallocates at most this many argv entries from a declared count
 * (networking.c: argv_len = min(multibulklen, 1024)); we also shrink back
 * to it after a bigger request. */
#define RESP_ARGV_PREALLOC 1024

/* Where the parser stands inside the current request. */
enum resp_state {
    RESP_ST_START = 0, /* nothing of the current request parsed */
    RESP_ST_INLINE,    /* inline: looking for the line's '\n' */
    RESP_ST_MBULK,     /* multibulk: looking for the '\r' of "*<n>" */
    RESP_ST_BULK_HDR,  /* looking for the '\r' of "$<len>" starting at pos */
    RESP_ST_BULK_DATA, /* waiting for bulk_len + 2 bytes starting at pos */
    RESP_ST_ERROR      /* protocol error; sticky until reset */
};

/*
 * The parser. Progress is kept as offsets from the start of the current
 * request (buf[0] of the next call), never as pointers, because the caller
 * may move its buffer between calls.
 */
struct resp_parser {
    enum resp_state state; /* see enum resp_state */
    size_t pos;            /* offset of the current line or payload start */
    size_t scan;           /* offset where the terminator search resumes */
    bool blocked;          /* a NUL hides the terminator: Redis's strchr()
                              never finds it, the line never completes */
    int64_t mbulk_left;    /* multibulk elements still to read */
    uint64_t bulk_len;     /* declared length of the pending bulk, bytes */
    int argc;              /* arguments parsed so far */
    size_t argv_cap;       /* entries allocated in offs and argv */
    size_t *offs;          /* owned: argv_cap payload offsets (from the
                              request start, or into scratch for inline) */
    struct resp_arg *argv; /* owned: argv_cap entries handed out in req */
    char *scratch;         /* owned: unescaped inline arguments */
    size_t scratch_cap;    /* bytes allocated at scratch */
    uint64_t max_bulk_len; /* proto-max-bulk-len, bytes */
    bool authenticated;    /* false: Redis's pre-AUTH limits apply */
    uint64_t scanned;      /* bytes examined by scans since new, for stats */
    char error[80];        /* the reply to send, valid in RESP_ST_ERROR */
};

struct resp_parser *
resp_parser_new(void)
{
    struct resp_parser *p = bw_calloc(1, sizeof(*p));
    p->max_bulk_len = RESP_MAX_BULK_DEFAULT;
    p->authenticated = true;
    return p;
}

void
resp_parser_free(struct resp_parser *p)
{
    if (p == NULL)
        return;
    bw_free(p->offs);
    bw_free(p->argv);
    bw_free(p->scratch);
    bw_free(p);
}

void
resp_parser_reset(struct resp_parser *p)
{
    p->state = RESP_ST_START;
    p->pos = 0;
    p->scan = 0;
    p->blocked = false;
    p->mbulk_left = 0;
    p->bulk_len = 0;
    p->argc = 0;
    p->error[0] = '\0';
}

void
resp_parser_set_limits(struct resp_parser *p, uint64_t max_bulk_len)
{
    p->max_bulk_len = max_bulk_len;
}

void
resp_parser_set_authenticated(struct resp_parser *p, bool authenticated)
{
    p->authenticated = authenticated;
}

size_t
resp_parser_need(const struct resp_parser *p)
{
    if (p->state != RESP_ST_BULK_DATA)
        return 0;
    return p->pos + (size_t)p->bulk_len + 2;
}

size_t
resp_parser_parsed(const struct resp_parser *p)
{
    if (p->state != RESP_ST_BULK_HDR && p->state != RESP_ST_BULK_DATA)
        return 0;
    return p->pos;
}

const char *
resp_parser_error(const struct resp_parser *p)
{
    return p->state == RESP_ST_ERROR ? p->error : NULL;
}

uint64_t
resp_parser_scanned(const struct resp_parser *p)
{
    return p->scanned;
}

/* Enter the sticky error state with "-ERR Protocol error: <what>\r\n". */
static int
resp_fail(struct resp_parser *p, const char *what)
{
    snprintf(p->error, sizeof(p->error), "-ERR Protocol error: %s\r\n", what);
    p->state = RESP_ST_ERROR;
    return RESP_ERR;
}

/*
 * Find the next term byte at or after p->scan in rb[0, rlen), as Redis's
 * strchr() on its NUL-terminated query buffer would: a NUL byte first
 * means "not found" now and forever (p->blocked). Resumes where the last
 * call stopped, so every byte is examined about once. Sets *at on success.
 */
static bool
resp_find(struct resp_parser *p, const char *rb, size_t rlen, char term, size_t *at)
{
    size_t from = p->scan, i;

    if (p->blocked || from >= rlen)
        return false;
    for (i = from; i < rlen; i++) {
        if (rb[i] == term || rb[i] == '\0')
            break;
    }
    p->scanned += i - from;
    p->scan = i;
    if (i == rlen)
        return false;
    if (rb[i] == '\0') {
        p->blocked = true;
        return false;
    }
    *at = i;
    return true;
}

/* Make room for at least want argv entries; keeps the parsed ones. */
static void
resp_argv_reserve(struct resp_parser *p, size_t want)
{
    if (want <= p->argv_cap)
        return;
    p->offs = bw_realloc(p->offs, want * sizeof(*p->offs));
    p->argv = bw_realloc(p->argv, want * sizeof(*p->argv));
    p->argv_cap = want;
}

/*
 * Append one argument (offset and length). Growth doubles, capped at what
 * the request can still need (elements_left), as Redis does: a declared
 * count never allocates more than RESP_ARGV_PREALLOC entries up front.
 */
static void
resp_argv_push(struct resp_parser *p, size_t off, size_t len, uint64_t elements_left)
{
    size_t n = (size_t)p->argc;

    if (n == p->argv_cap) {
        size_t grow = p->argv_cap ? p->argv_cap * 2 : 8;
        if (elements_left > 0 && grow > n + elements_left)
            grow = n + (size_t)elements_left;
        resp_argv_reserve(p, grow);
    }
    p->offs[n] = off;
    p->argv[n].ptr = NULL;
    p->argv[n].len = len;
    p->argc++;
}

/* Start a new request: forget the last one, give back oversized memory. */
static void
resp_begin(struct resp_parser *p, char first)
{
    if (p->argv_cap > RESP_ARGV_PREALLOC) {
        p->offs = bw_realloc(p->offs, RESP_ARGV_PREALLOC * sizeof(*p->offs));
        p->argv = bw_realloc(p->argv, RESP_ARGV_PREALLOC * sizeof(*p->argv));
        p->argv_cap = RESP_ARGV_PREALLOC;
    }
    if (p->scratch_cap > RESP_INLINE_MAX_SIZE) {
        bw_free(p->scratch);
        p->scratch = NULL;
        p->scratch_cap = 0;
    }
    p->state = first == '*' ? RESP_ST_MBULK : RESP_ST_INLINE;
    p->pos = 0;
    p->scan = 0;
    p->blocked = false;
    p->argc = 0;
}

/* ---- inline ------------------------------------------------------------ */

/* isspace() in the C locale, which Redis runs its ctype in. */
static bool
resp_isspace(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r';
}

static bool
resp_ishex(char c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

static int
resp_hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    return (c | 0x20) - 'a' + 10;
}

/* The byte at i of an n-byte line, NUL past its end, as C strings read. */
static char
resp_at(const char *s, size_t n, size_t i)
{
    return i < n ? s[i] : '\0';
}

/*
 * One double-quoted step of sdssplitargs() at *ip: escapes \xHH \n \r \t
 * \b \a and \<any>; a closing quote must be followed by a space or the end.
 * Returns 1 when the token is done, 0 to go on, -1 on unbalanced quotes.
 */
static int
resp_split_dquote(const char *s, size_t n, size_t *ip, char *dst, size_t *op)
{
    size_t i = *ip;
    char c = resp_at(s, n, i);
    char e = resp_at(s, n, i + 1);

    if (c == '\\' && e == 'x' && resp_ishex(resp_at(s, n, i + 2)) &&
        resp_ishex(resp_at(s, n, i + 3))) {
        dst[(*op)++] = (char)(resp_hexval(s[i + 2]) * 16 + resp_hexval(s[i + 3]));
        *ip = i + 3;
    } else if (c == '\\' && e != '\0') {
        const char *from = "nrtba", *to = "\n\r\t\b\a";
        const char *hit = strchr(from, e);
        dst[(*op)++] = hit != NULL ? to[hit - from] : e;
        *ip = i + 1;
    } else if (c == '"') {
        if (e != '\0' && !resp_isspace(e))
            return -1;
        return 1;
    } else if (c == '\0') {
        return -1;
    } else {
        dst[(*op)++] = c;
    }
    return 0;
}

/* One single-quoted step: only \' is an escape. Same returns as above. */
static int
resp_split_squote(const char *s, size_t n, size_t *ip, char *dst, size_t *op)
{
    size_t i = *ip;
    char c = resp_at(s, n, i);
    char e = resp_at(s, n, i + 1);

    if (c == '\\' && e == '\'') {
        dst[(*op)++] = '\'';
        *ip = i + 1;
    } else if (c == '\'') {
        if (e != '\0' && !resp_isspace(e))
            return -1;
        return 1;
    } else if (c == '\0') {
        return -1;
    } else {
        dst[(*op)++] = c;
    }
    return 0;
}

/*
 * One token of sdssplitargs() starting at *ip (not a space): unquoted
 * bytes up to ' ', '\t', '\r', '\n' or the end, where a quote switches to
 * quoted mode inside the same token. Appends to dst at *op; advances *ip
 * like Redis's pointer. Returns BW_OK, or BW_ERR on unbalanced quotes.
 */
static int
resp_split_token(const char *s, size_t n, size_t *ip, char *dst, size_t *op)
{
    int quote = 0; /* 0, '"' or '\'' */
    int done = 0;

    while (!done) {
        char c = resp_at(s, n, *ip);
        if (quote == '"') {
            done = resp_split_dquote(s, n, ip, dst, op);
        } else if (quote == '\'') {
            done = resp_split_squote(s, n, ip, dst, op);
        } else if (c == ' ' || c == '\n' || c == '\r' || c == '\t' || c == '\0') {
            done = 1;
        } else if (c == '"' || c == '\'') {
            quote = c;
        } else {
            dst[(*op)++] = c;
        }
        if (done < 0)
            return BW_ERR;
        if (resp_at(s, n, *ip) != '\0')
            (*ip)++;
    }
    return BW_OK;
}

/*
 * Split an inline line (no NUL inside, terminator removed) into argv with
 * unescaped copies in scratch. Output never exceeds the input in bytes.
 * Returns BW_OK (argc may be 0) or BW_ERR on unbalanced quotes.
 */
static int
resp_split_inline(struct resp_parser *p, const char *line, size_t n)
{
    size_t i = 0, out = 0;

    if (p->scratch_cap < n) {
        bw_free(p->scratch);
        p->scratch = bw_malloc(n);
        p->scratch_cap = n;
    }
    p->scanned += n;
    p->argc = 0;
    for (;;) {
        size_t start = out;
        while (i < n && resp_isspace(line[i]))
            i++;
        /* resp_find() never passes a NUL; stop at one like a C string. */
        if (i >= n || line[i] == '\0')
            return BW_OK;
        if (resp_split_token(line, n, &i, p->scratch, &out) != BW_OK)
            return BW_ERR;
        resp_argv_push(p, start, out - start, 0);
    }
}

/* Parse an inline request from rb[0, rlen); *used set on OK and SKIP. */
static int
resp_parse_inline(struct resp_parser *p, const char *rb, size_t rlen, size_t *used,
                  struct resp_request *req)
{
    size_t nl, end;
    int i;

    if (!resp_find(p, rb, rlen, '\n', &nl)) {
        if (rlen > RESP_INLINE_MAX_SIZE)
            return resp_fail(p, "too big inline request");
        return RESP_AGAIN;
    }
    end = nl > 0 && rb[nl - 1] == '\r' ? nl - 1 : nl;
    if (resp_split_inline(p, rb, end) != BW_OK)
        return resp_fail(p, "unbalanced quotes in request");
    *used = nl + 1;
    p->state = RESP_ST_START;
    if (p->argc == 0)
        return RESP_SKIP;
    for (i = 0; i < p->argc; i++)
        p->argv[i].ptr = p->scratch + p->offs[i];
    req->argc = p->argc;
    req->argv = p->argv;
    req->raw = NULL;
    req->raw_len = 0;
    req->is_inline = true;
    req->cmd = NULL;
    return RESP_OK;
}

/* ---- multibulk ---------------------------------------------------------- */

/*
 * Find the '\r' ending the header line that starts at p->pos, and check
 * Redis's framing: no '\r' and more than RESP_INLINE_MAX_SIZE bytes after
 * the line start is the "too big" error; the '\r' must be followed by one
 * more byte, which is not checked. Returns RESP_OK with *cr set,
 * RESP_AGAIN or RESP_ERR.
 */
static int
resp_header_line(struct resp_parser *p, const char *rb, size_t rlen, const char *too_big,
                 size_t *cr)
{
    if (!resp_find(p, rb, rlen, '\r', cr)) {
        if (rlen - p->pos > RESP_INLINE_MAX_SIZE)
            return resp_fail(p, too_big);
        return RESP_AGAIN;
    }
    if (*cr + 1 >= rlen)
        return RESP_AGAIN;
    return RESP_OK;
}

/* "*<n>\r?" at rb[0]: RESP_OK (state moved on), RESP_SKIP, AGAIN or ERR. */
static int
resp_parse_count(struct resp_parser *p, const char *rb, size_t rlen, size_t *used)
{
    size_t cr;
    long long n;
    int rc = resp_header_line(p, rb, rlen, "too big mbulk count string", &cr);

    if (rc != RESP_OK)
        return rc;
    if (!bw_string2ll(rb + 1, cr - 1, &n) || n > RESP_MBULK_MAX)
        return resp_fail(p, "invalid multibulk length");
    if (n > RESP_UNAUTH_MBULK_MAX && !p->authenticated)
        return resp_fail(p, "unauthenticated multibulk length");
    p->pos = cr + 2;
    p->scan = p->pos;
    if (n <= 0) {
        *used = p->pos;
        p->state = RESP_ST_START;
        return RESP_SKIP;
    }
    p->mbulk_left = n;
    resp_argv_reserve(p, (size_t)BW_MIN(n, RESP_ARGV_PREALLOC));
    p->state = RESP_ST_BULK_HDR;
    return RESP_OK;
}

/* "$<len>\r?" at rb[p->pos]: RESP_OK (now in BULK_DATA), AGAIN or ERR. */
static int
resp_parse_bulk_header(struct resp_parser *p, const char *rb, size_t rlen)
{
    size_t cr;
    long long n;
    char c, what[40];
    int rc = resp_header_line(p, rb, rlen, "too big bulk count string", &cr);

    if (rc != RESP_OK)
        return rc;
    c = rb[p->pos];
    if (c != '$') {
        /* addReplyErrorFormat() turns \r and \n into spaces. */
        snprintf(what, sizeof(what), "expected '$', got '%c'", c == '\r' || c == '\n' ? ' ' : c);
        return resp_fail(p, what);
    }
    if (!bw_string2ll(rb + p->pos + 1, cr - p->pos - 1, &n) || n < 0 ||
        (uint64_t)n > p->max_bulk_len)
        return resp_fail(p, "invalid bulk length");
    if (n > RESP_UNAUTH_BULK_MAX && !p->authenticated)
        return resp_fail(p, "unauthenticated bulk length");
    p->pos = cr + 2;
    p->bulk_len = (uint64_t)n;
    p->state = RESP_ST_BULK_DATA;
    return RESP_OK;
}

/* Fill req with the completed multibulk of raw_len bytes at rb. */
static void
resp_finish_multibulk(struct resp_parser *p, const char *rb, size_t raw_len,
                      struct resp_request *req)
{
    int i;

    for (i = 0; i < p->argc; i++)
        p->argv[i].ptr = rb + p->offs[i];
    req->argc = p->argc;
    req->argv = p->argv;
    req->raw = rb;
    req->raw_len = raw_len;
    req->is_inline = false;
    req->cmd = NULL;
    p->state = RESP_ST_START;
}

/* Parse (or resume) a multibulk request at rb[0, rlen). */
static int
resp_parse_multibulk(struct resp_parser *p, const char *rb, size_t rlen, size_t *used,
                     struct resp_request *req)
{
    int rc;

    if (p->state == RESP_ST_MBULK) {
        rc = resp_parse_count(p, rb, rlen, used);
        if (rc != RESP_OK)
            return rc;
    }
    for (;;) {
        if (p->state == RESP_ST_BULK_HDR) {
            rc = resp_parse_bulk_header(p, rb, rlen);
            if (rc != RESP_OK)
                return rc;
        }
        /* Payload plus the 2 bytes after it, which Redis does not check. */
        if ((uint64_t)(rlen - p->pos) < p->bulk_len + 2)
            return RESP_AGAIN;
        p->mbulk_left--;
        resp_argv_push(p, p->pos, (size_t)p->bulk_len, (uint64_t)p->mbulk_left + 1);
        p->pos += (size_t)p->bulk_len + 2;
        p->scan = p->pos;
        p->state = RESP_ST_BULK_HDR;
        if (p->mbulk_left == 0) {
            *used = p->pos;
            resp_finish_multibulk(p, rb, p->pos, req);
            return RESP_OK;
        }
    }
}

/* ---- entry point -------------------------------------------------------- */

int
resp_parse(struct resp_parser *p, const char *buf, size_t len, size_t *consumed,
           struct resp_request *req)
{
    size_t base = 0; /* bytes of skipped empty requests */

    *consumed = 0;
    if (p->state == RESP_ST_ERROR)
        return RESP_ERR;
    /* The caller must pass at least the bytes it passed before. */
    BW_ASSERT(p->state == RESP_ST_START || len >= p->pos);
    for (;;) {
        const char *rb;
        size_t rlen = len - base, used = 0;
        int rc;

        if (p->state == RESP_ST_START && rlen == 0)
            break;
        rb = buf + base;
        if (p->state == RESP_ST_START)
            resp_begin(p, rb[0]);
        if (p->state == RESP_ST_INLINE)
            rc = resp_parse_inline(p, rb, rlen, &used, req);
        else
            rc = resp_parse_multibulk(p, rb, rlen, &used, req);
        if (rc == RESP_ERR)
            return RESP_ERR;
        if (rc == RESP_AGAIN)
            break;
        base += used;
        if (rc == RESP_OK) {
            *consumed = base;
            return RESP_OK;
        }
    }
    *consumed = base;
    return RESP_AGAIN;
}

/* ---- argument helpers ------------------------------------------------------ */

bool
resp_arg_ll(const struct resp_arg *a, long long *out)
{
    char tmp[32], *end;
    if (a->len == 0 || a->len >= sizeof(tmp))
        return false;
    memcpy(tmp, a->ptr, a->len);
    tmp[a->len] = '\0';
    if (isspace((unsigned char)tmp[0]) || (tmp[0] == '0' && a->len > 1) || tmp[0] == '+' ||
        (tmp[0] == '-' && (a->len == 1 || tmp[1] == '0')))
        return false; /* Redis string2ll: no "+1", "01", "-0", "-" */
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || end != tmp + a->len) /* an embedded NUL ends strtoll early */
        return false;
    *out = v;
    return true;
}
