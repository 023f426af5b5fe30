/*
 * reply: RESP2 and RESP3 *reply* reading for the upstream side — a streaming scanner
 * that finds where one reply ends (so replies are relayed as raw bytes, never
 * re-encoded), and a small tree parser for the few replies bulwark inspects
 * (INFO, CONFIG GET, COMMAND). Pure: libc and util only.
 *
 * Why not hiredis's reader: hiredis 0.14 refuses replies nested deeper than 7
 * ("No support for nested multi bulk replies with depth > 7") and then drops
 * the connection; COMMAND is 9 deep and COMMAND DOCS 13 deep in Redis 7.0,
 * and on a multiplexed connection one such reply would fail every client's
 * requests in flight.
 */
#ifndef BW_REPLY_H
#define BW_REPLY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum { REPLY_DONE = 0, REPLY_AGAIN = 1, REPLY_ERR = -1 };

/* Longest header line accepted ("$<len>", "*<n>"): digits, sign, CRLF. */
#define REPLY_MAX_NUM_LINE 32

/* Streaming scanner state for the reply being read. Zero it to start. */
struct reply_scan {
    uint64_t consumed;            /* bytes of the current reply scanned so far */
    uint64_t remaining;           /* items still to read (1 at the start of a reply) */
    uint64_t bulk_left;           /* payload+CRLF bytes still to skip for a bulk */
    int state;                    /* internal: type byte / line / bulk payload */
    char type;                    /* type byte of the item being read */
    char num[REPLY_MAX_NUM_LINE]; /* digits of a '*' / '$' header so far */
    size_t num_len;               /* bytes in num */
    bool saw_cr;                  /* last byte of the line was '\r' */
};

/* Reset s to read a new reply. */
void reply_scan_reset(struct reply_scan *s);

/*
 * Feed the next len bytes of the upstream stream (continuing where the last
 * call stopped). Returns REPLY_DONE when a reply ended inside buf: *used is
 * how many of these bytes belong to it and s->consumed is its total length;
 * the caller resets s before the next reply. REPLY_AGAIN: all len bytes were
 * used, the reply goes on. REPLY_ERR: not RESP (bad type byte, bad length,
 * header line too long); the connection must be dropped. RESP3's types are
 * read too (null, double, boolean, big number, blob error, verbatim string,
 * map, set, attribute, push); a push is one reply like any other, an
 * attribute belongs to the value after it. Streamed strings and aggregates
 * (never sent by Redis 7) are refused.
 */
int reply_scan_feed(struct reply_scan *s, const char *buf, size_t len, size_t *used);

/* True for the aggregate type bytes: '*', '%', '~', '>', '|'. */
bool reply_is_aggregate(char type);

/* A parsed reply (tree). Strings point into the parsed buffer. */
struct reply_node {
    char type;                /* the RESP type byte: '+', '-', ':', '$', '*', and
                                     RESP3's '_', ',', '#', '(', '!', '=', '%', '~',
                                     '>', '|' */
    bool nil;                 /* $-1, *-1 or _ */
    const char *str;          /* line types and bulk-like types: bytes (borrowed);
                                     ':' the digits; '=' includes its "txt:" prefix */
    size_t len;               /* bytes at str */
    int64_t integer;          /* ':' value; '#' 1/0; aggregates: the header's count
                                     (pairs for '%' and '|') */
    size_t nelems;            /* aggregates: entries in elems (2 per pair) */
    struct reply_node *elems; /* aggregates: elements (owned array), NULL when none */
};

/*
 * Parse exactly one complete reply of len bytes at buf into a tree. The tree
 * borrows buf. Depth is capped at 64. Returns the root (free with
 * reply_node_free()) or NULL when buf is not one complete well-formed reply.
 */
struct reply_node *reply_parse(const char *buf, size_t len);

/* Free a tree from reply_parse(); NULL is a no-op. */
void reply_node_free(struct reply_node *n);

/* True if n is a bulk or status string equal to s (case-insensitive). */
bool reply_node_is(const struct reply_node *n, const char *s);

#endif
