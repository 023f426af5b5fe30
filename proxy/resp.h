/*
 * resp: the RESP2 request parser. Bytes in, one request (argv) out at a time,
 * with the framing, limits and error replies of redis-server 7.0.15.
 * Pure: libc and proxy/util.h only.
 */
#ifndef BW_RESP_H
#define BW_RESP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* resp_parse() outcomes (hiredis read.c style: ok / need more / error). */
enum {
    RESP_OK = 0,    /* one request in *req */
    RESP_AGAIN = 1, /* incomplete: call again with more bytes */
    RESP_ERR = -1   /* protocol error, sticky until resp_parser_reset() */
};

/*
 * Protocol limits, from redis-server 7.0.15 src/server.h and
 * src/networking.c processMultibulkBuffer() (checked against a live server).
 */
#define RESP_INLINE_MAX_SIZE (64 * 1024)             /* bytes of a line without terminator */
#define RESP_MBULK_MAX 2147483647                    /* INT_MAX elements per request */
#define RESP_MAX_BULK_DEFAULT (512ull * 1024 * 1024) /* proto-max-bulk-len */
#define RESP_UNAUTH_MBULK_MAX 10                     /* elements before AUTH */
#define RESP_UNAUTH_BULK_MAX 16384                   /* bytes per element before AUTH */

/* One argument: a view, not NUL-terminated, may contain any byte. */
struct resp_arg {
    const char *ptr; /* borrowed: into the caller's buf (multibulk) or the
                        parser's scratch (inline) */
    size_t len;      /* bytes at ptr */
};

/* One parsed request; everything in it is valid until the next
 * resp_parse() or resp_parser_reset() on the same parser. */
struct resp_request {
    int argc;              /* number of arguments, >= 1 */
    struct resp_arg *argv; /* borrowed: argc entries owned by the parser */
    const char *raw;       /* borrowed: multibulk: the exact bytes of this
                              request inside buf (forwardable as is);
                              inline: NULL */
    size_t raw_len;        /* bytes at raw; 0 for inline */
    bool is_inline;        /* true: inline command, argv unescaped into the
                              parser's scratch */
    const void *cmd;       /* NULL from the parser: the request path's note of
                              its command-table entry (session_cmd) */
};

struct resp_parser; /* opaque */

/*
 * Create a parser: no progress, limits at their defaults (max bulk
 * RESP_MAX_BULK_DEFAULT, authenticated). Never NULL (aborts on OOM).
 * The caller owns it: resp_parser_free().
 */
struct resp_parser *resp_parser_new(void);

/* Free a parser and everything it owns. NULL is a no-op. */
void resp_parser_free(struct resp_parser *p);

/*
 * Forget partial progress and the sticky error; the limits and the
 * authenticated flag are kept. Any previous req becomes invalid.
 */
void resp_parser_reset(struct resp_parser *p);

/*
 * Set proto-max-bulk-len: the largest accepted bulk ($<len>) in bytes; a
 * larger declared length is "-ERR Protocol error: invalid bulk length".
 * Applies from the next bulk header parsed, also mid-request. Any value is
 * taken (Redis's CONFIG SET allows 1mb and up); default 512 MB.
 */
void resp_parser_set_limits(struct resp_parser *p, uint64_t max_bulk_len);

/*
 * Whether the client counts as authenticated. false models redis-server
 * with requirepass set before a successful AUTH: a multibulk of more than
 * RESP_UNAUTH_MBULK_MAX elements or a bulk over RESP_UNAUTH_BULK_MAX bytes
 * is an error ("unauthenticated multibulk length" / "unauthenticated bulk
 * length"). Inline requests have no such limit (as in Redis). Default true.
 * Applies from the next header parsed, so set it after AUTH succeeds and
 * before parsing the next request.
 */
void resp_parser_set_authenticated(struct resp_parser *p, bool authenticated);

/*
 * Parse one request from buf[0, len): all bytes the client sent that are
 * not yet consumed, buf[0] being where the current request starts. The
 * parser keeps its progress as offsets from buf[0], so between calls the
 * caller may move or grow its buffer but must keep the bytes: the next call
 * passes the same bytes (minus those consumed) plus whatever arrived.
 * buf may be NULL when len == 0.
 *
 * RESP_OK: *req holds one request; *consumed = its bytes plus any empty
 *   inline lines and empty multibulks (*0, *-1, any *<negative>) skipped
 *   before it, which Redis ignores silently.
 * RESP_AGAIN: no complete request. *consumed may be > 0 (skipped empty
 *   requests); the caller drops those bytes before the next call.
 *   resp_parser_need() tells how much is known to be needed.
 * RESP_ERR: a protocol error; *consumed = 0, *req untouched. The reply to
 *   send is resp_parser_error(); Redis sends it after the replies of the
 *   requests before it and then closes the connection. Every later call
 *   returns RESP_ERR until resp_parser_reset().
 *
 * Framing follows redis-server 7.0.15 src/networking.c processInputBuffer(),
 * processInlineBuffer() and processMultibulkBuffer(), src/sds.c
 * sdssplitargs() and src/util.c string2ll(), including their quirks:
 *  - a request starting with '*' is multibulk, anything else inline;
 *  - inline: the line ends at the first '\n' (one '\r' before it dropped)
 *    and is split like sdssplitargs; lines with no argument are skipped;
 *  - multibulk: a header line ends at the first '\r' and the byte after the
 *    '\r' is not checked; the 2 bytes after a bulk payload are not checked;
 *  - numbers: optional '-', no '+', no leading zeros, no spaces, < 21 chars;
 *  - a NUL byte before a line's terminator hides the terminator (Redis uses
 *    strchr), so such a request never completes and ends in the "too big"
 *    error once more than RESP_INLINE_MAX_SIZE bytes are pending;
 *  - "too big" errors are raised when no terminator is in buf and more than
 *    RESP_INLINE_MAX_SIZE bytes follow the line start, so how long a line
 *    may be depends on how much the caller passes at once, as in Redis.
 * Work per call is proportional to the bytes not examined before.
 */
int resp_parse(struct resp_parser *p, const char *buf, size_t len, size_t *consumed,
               struct resp_request *req);

/*
 * After RESP_AGAIN: the total number of bytes, counted from the first byte
 * not consumed, known to be needed for the current request (while a bulk
 * payload is pending: through its trailing 2 bytes), so a caller can grow
 * its buffer once for a big bulk. 0 when unknown (inside a header or an
 * inline line) or when nothing is pending.
 */
size_t resp_parser_need(const struct resp_parser *p);

/*
 * After RESP_AGAIN: bytes of the current request, from the first byte not
 * consumed, that are complete headers and arguments (up to the start of the
 * pending bulk's header or payload); 0 when nothing is pending or inside a
 * multibulk header or an inline line. Redis 7.0 moves complete arguments out
 * of its query buffer, so client-query-buffer-limit counts only the bytes
 * after these (networking.c processMultibulkBuffer / readQueryFromClient).
 */
size_t resp_parser_parsed(const struct resp_parser *p);

/*
 * After RESP_ERR: the complete reply Redis 7.0.15 sends, NUL-terminated,
 * e.g. "-ERR Protocol error: invalid bulk length\r\n". Owned by the parser,
 * valid until resp_parser_reset() or resp_parser_free(). NULL when there
 * is no error.
 */
const char *resp_parser_error(const struct resp_parser *p);

/*
 * Bytes examined by the parser's scans (terminator searches, inline
 * splitting) since resp_parser_new(); bulk payloads are skipped, not
 * scanned. For stats and for testing that parsing is linear.
 */
uint64_t resp_parser_scanned(const struct resp_parser *p);

/* True when argument a equals s (NUL-terminated), ASCII case-insensitively. */
static inline bool
resp_arg_is(const struct resp_arg *a, const char *s)
{
    /* Inline, one pass, no strlen: the command-name tests run on every
     * request and nearly all differ at the first byte. ASCII case folding,
     * as strncasecmp in the C locale. */
    size_t i;
    for (i = 0; s[i] != '\0'; i++) {
        if (i == a->len)
            return false; /* a is shorter */
        unsigned char x = (unsigned char)a->ptr[i], y = (unsigned char)s[i];
        if (x == y)
            continue;
        /* equal but for bit 5 only counts for letters ('@' is not '`') */
        if ((x | 0x20) != (y | 0x20) || (x | 0x20) < 'a' || (x | 0x20) > 'z')
            return false;
    }
    return i == a->len;
}

/*
 * Parse the whole argument a as a signed 64-bit decimal, by Redis's
 * string2ll rules (util.c): no sign "+", no leading zeros, no "-0", no
 * spaces, at most 20 digits. False (out untouched) when it is not one.
 */
bool resp_arg_ll(const struct resp_arg *a, long long *out);

#endif
