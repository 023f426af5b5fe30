/* reply: streaming RESP2/RESP3 reply scanner and a small reply tree parser. */
#include "proxy/reply.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "proxy/util.h"

enum reply_scan_state {
    SCAN_TYPE = 0, /* expecting a type byte */
    SCAN_LINE,     /* inside a +, -, :, _, ',', #, ( line: skip to CRLF */
    SCAN_NUM,      /* inside an aggregate or bulk header: collect digits to CRLF */
    SCAN_BULK      /* skipping a bulk payload and its CRLF */
};

void
reply_scan_reset(struct reply_scan *s)
{
    memset(s, 0, sizeof(*s));
    s->remaining = 1;
}

/* An integer starts with a sign or a digit (strtoll would skip white space). */
static bool
reply_int_start(char c)
{
    return (c >= '0' && c <= '9') || c == '-' || c == '+';
}

bool
reply_is_aggregate(char type)
{
    return type == '*' || type == '%' || type == '~' || type == '>' || type == '|';
}

/* Types whose value is one line: simple string, error, integer, and RESP3's
 * null, double, boolean and big number. */
static bool
reply_is_line(char type)
{
    return type == '+' || type == '-' || type == ':' || type == '_' || type == ',' ||
           type == '#' || type == '(';
}

/* Length-prefixed strings: bulk, and RESP3's blob error and verbatim string. */
static bool
reply_is_bulk(char type)
{
    return type == '$' || type == '!' || type == '=';
}

/* Parse the collected header number; false if not a valid integer >= -1. */
static bool
reply_scan_number(struct reply_scan *s, int64_t *out)
{
    char *end;
    s->num[s->num_len] = '\0';
    if (s->num_len == 0 || !reply_int_start(s->num[0]))
        return false;
    long long v; /* the common case without strtoll; strtoll decides the rest */
    if (bw_string2ll(s->num, s->num_len, &v)) {
        if (v < -1)
            return false;
        *out = v;
        return true;
    }
    errno = 0;
    v = strtoll(s->num, &end, 10);
    if (errno != 0 || end != s->num + s->num_len || v < -1)
        return false;
    *out = v;
    return true;
}

/* Items an aggregate header of n announces: maps and attributes hold n
 * pairs, and an attribute is followed by the value it describes. */
static uint64_t
reply_aggregate_items(char type, uint64_t n, bool *ok)
{
    *ok = true;
    if (type != '%' && type != '|')
        return n;
    if (n > (UINT64_MAX - 1) / 2) {
        *ok = false;
        return 0;
    }
    return type == '|' ? 2 * n + 1 : 2 * n;
}

/* An aggregate or bulk header line ended: account for what it announces. */
static int
reply_scan_header_done(struct reply_scan *s)
{
    int64_t n;
    if (!reply_scan_number(s, &n))
        return REPLY_ERR;
    s->remaining--;
    if (reply_is_aggregate(s->type)) {
        bool ok;
        if (n < 0 && s->type != '*')
            return REPLY_ERR; /* only RESP2's null array has length -1 */
        /* (an attribute of 0 pairs still describes the value after it) */
        uint64_t items = n >= 0 ? reply_aggregate_items(s->type, (uint64_t)n, &ok) : 0;
        if (n >= 0 && (!ok || items > UINT64_MAX - s->remaining))
            return REPLY_ERR; /* would wrap to "reply complete" */
        s->remaining += items;
        s->state = SCAN_TYPE;
    } else if (n >= 0) {
        s->bulk_left = (uint64_t)n + 2;
        s->state = SCAN_BULK;
    } else if (s->type == '$') {
        s->state = SCAN_TYPE; /* RESP2's null bulk */
    } else {
        return REPLY_ERR;
    }
    return REPLY_DONE;
}

/* Consume one line byte (SCAN_LINE or SCAN_NUM). */
static int
reply_scan_line_byte(struct reply_scan *s, char c)
{
    if (c == '\n' && s->saw_cr) {
        s->saw_cr = false;
        if (s->state == SCAN_NUM)
            return reply_scan_header_done(s);
        s->remaining--;
        s->state = SCAN_TYPE;
        return REPLY_DONE;
    }
    if (s->saw_cr && s->state == SCAN_NUM)
        return REPLY_ERR; /* a CR not ending the header: not a number */
    s->saw_cr = (c == '\r');
    if (s->state == SCAN_NUM && !s->saw_cr) {
        if (s->num_len + 1 >= sizeof(s->num))
            return REPLY_ERR;
        s->num[s->num_len++] = c;
    }
    return REPLY_DONE;
}

int
reply_scan_feed(struct reply_scan *s, const char *buf, size_t len, size_t *used)
{
    size_t i = 0;
    while (i < len) {
        if (s->state == SCAN_BULK) {
            uint64_t take = BW_MIN(s->bulk_left, (uint64_t)(len - i));
            s->bulk_left -= take;
            i += take;
            s->consumed += take;
            if (s->bulk_left == 0)
                s->state = SCAN_TYPE;
        } else if (s->state == SCAN_TYPE) {
            char c = buf[i++];
            s->consumed++;
            s->type = c;
            s->num_len = 0;
            s->saw_cr = false;
            if (reply_is_line(c))
                s->state = SCAN_LINE;
            else if (reply_is_aggregate(c) || reply_is_bulk(c))
                s->state = SCAN_NUM;
            else
                return REPLY_ERR;
        } else {
            s->consumed++;
            if (reply_scan_line_byte(s, buf[i++]) != REPLY_DONE)
                return REPLY_ERR;
        }
        if (s->remaining == 0 && s->state == SCAN_TYPE) {
            *used = i;
            return REPLY_DONE;
        }
    }
    *used = i;
    return REPLY_AGAIN;
}

/* ---- tree parser --------------------------------------------------------- */

struct reply_cursor {
    const char *p;   /* next byte */
    const char *end; /* one past the last byte */
};

/* Read a CRLF-terminated line; returns its length or -1. */
static long
reply_read_line(struct reply_cursor *c, const char **line)
{
    const char *nl = memchr(c->p, '\n', (size_t)(c->end - c->p));
    if (nl == NULL || nl == c->p || nl[-1] != '\r')
        return -1;
    *line = c->p;
    long n = (long)(nl - 1 - c->p);
    c->p = nl + 1;
    return n;
}

static bool
reply_parse_int(const char *s, long n, int64_t *out)
{
    char tmp[32], *end;
    if (n <= 0 || n >= (long)sizeof(tmp) || !reply_int_start(s[0]))
        return false;
    long long fast; /* the common case without strtoll; strtoll decides the rest */
    if (bw_string2ll(s, (size_t)n, &fast)) {
        *out = fast;
        return true;
    }
    memcpy(tmp, s, (size_t)n);
    tmp[n] = '\0';
    errno = 0;
    long long v = strtoll(tmp, &end, 10);
    if (errno != 0 || end != tmp + n)
        return false;
    *out = v;
    return true;
}

static bool reply_parse_node(struct reply_cursor *c, struct reply_node *n, int depth);

static bool
reply_parse_array(struct reply_cursor *c, struct reply_node *n, int depth)
{
    if (n->integer < 0) {
        n->nil = true;
        return n->type == '*';
    }
    bool ok;
    uint64_t items = reply_aggregate_items(n->type, (uint64_t)n->integer, &ok);
    /* Each element takes at least 3 bytes ("+\r\n"): bound the allocation
     * by the input. */
    if (!ok || items > (uint64_t)(c->end - c->p) / 3)
        return false;
    n->nelems = (size_t)items;
    if (items > 0)
        n->elems = bw_calloc((size_t)items, sizeof(*n->elems));
    for (size_t i = 0; i < n->nelems; i++)
        if (!reply_parse_node(c, &n->elems[i], depth + 1))
            return false;
    return true;
}

static bool
reply_parse_node(struct reply_cursor *c, struct reply_node *n, int depth)
{
    const char *line;
    if (depth > 64 || c->p >= c->end)
        return false;
    n->type = *c->p++;
    long ll = reply_read_line(c, &line);
    if (ll < 0)
        return false;
    if (reply_is_aggregate(n->type)) {
        if (!reply_parse_int(line, ll, &n->integer) || n->integer < -1)
            return false;
        return reply_parse_array(c, n, depth);
    }
    if (reply_is_bulk(n->type)) {
        if (!reply_parse_int(line, ll, &n->integer) || n->integer < -1)
            return false;
        if (n->integer < 0) {
            n->nil = true;
            return n->type == '$';
        }
        if (n->integer > c->end - c->p - 2)
            return false;
        n->str = c->p;
        n->len = (size_t)n->integer;
        c->p += n->integer + 2;
        return c->p[-2] == '\r' && c->p[-1] == '\n';
    }
    n->str = line;
    n->len = (size_t)ll;
    switch (n->type) {
    case '+':
    case '-':
    case ',':
    case '(':
        return true;
    case ':':
        return reply_parse_int(line, ll, &n->integer);
    case '_':
        n->nil = true;
        return ll == 0;
    case '#':
        n->integer = ll == 1 && line[0] == 't';
        return ll == 1 && (line[0] == 't' || line[0] == 'f');
    default:
        return false;
    }
}

static void
reply_node_clear(struct reply_node *n)
{
    if (n->elems != NULL) {
        for (size_t i = 0; i < n->nelems; i++)
            reply_node_clear(&n->elems[i]);
        bw_free(n->elems);
    }
}

struct reply_node *
reply_parse(const char *buf, size_t len)
{
    struct reply_cursor c = {buf, buf + len};
    struct reply_node *root = bw_calloc(1, sizeof(*root));
    if (!reply_parse_node(&c, root, 0) || c.p != c.end) {
        reply_node_free(root);
        return NULL;
    }
    return root;
}

void
reply_node_free(struct reply_node *n)
{
    if (n == NULL)
        return;
    reply_node_clear(n);
    bw_free(n);
}

bool
reply_node_is(const struct reply_node *n, const char *s)
{
    size_t l = strlen(s);
    return (n->type == '$' || n->type == '+' || n->type == '=') && !n->nil && n->len == l &&
           strncasecmp(n->str, s, l) == 0;
}
