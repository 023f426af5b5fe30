/*
 * fuzz_resp: libFuzzer target for the RESP request parser. Feeds each input
 * whole, byte by byte and split at an input-chosen offset, and aborts if
 * the three disagree or a request breaks the API's invariants.
 * Built and run by `make fuzz` (build/fuzz/fuzz_resp, corpus build/fuzz/corpus).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/resp.h"
#include "proxy/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A growing digest of everything the parser produced. */
struct fuzz_log {
    char *s;    /* owned */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
};

static void
fuzz_log_put(struct fuzz_log *l, const void *p, size_t n)
{
    if (l->len + n > l->cap) {
        l->cap = (l->len + n) * 2 + 64;
        l->s = bw_realloc(l->s, l->cap);
    }
    memcpy(l->s + l->len, p, n);
    l->len += n;
}

/* Check one request against the API's promises and log it. */
static void
fuzz_check_request(struct fuzz_log *l, const char *buf, size_t len, size_t consumed,
                   const struct resp_request *req, uint64_t max_bulk)
{
    int i;

    BW_ASSERT(req->argc >= 1 && consumed > 0 && consumed <= len);
    if (!req->is_inline) {
        BW_ASSERT(req->raw >= buf && req->raw + req->raw_len == buf + consumed);
        BW_ASSERT(req->raw[0] == '*');
    } else {
        BW_ASSERT(req->raw == NULL && req->raw_len == 0);
        BW_ASSERT(buf[consumed - 1] == '\n');
    }
    fuzz_log_put(l, req->is_inline ? "I" : "M", 1);
    for (i = 0; i < req->argc; i++) {
        const struct resp_arg *a = &req->argv[i];
        if (!req->is_inline)
            BW_ASSERT(a->ptr >= req->raw && a->ptr + a->len <= buf + consumed &&
                      a->len <= max_bulk);
        fuzz_log_put(l, &a->len, sizeof(a->len));
        fuzz_log_put(l, a->ptr, a->len);
    }
}

/* Parse all pending bytes in *c (len *clen); drop what was consumed. */
static int
fuzz_drain(struct resp_parser *p, char **c, size_t *clen, struct fuzz_log *l, uint64_t max_bulk)
{
    for (;;) {
        struct resp_request req;
        size_t consumed;
        int rc = resp_parse(p, *c, *clen, &consumed, &req);
        char *nb;

        if (rc == RESP_ERR) {
            const char *e = resp_parser_error(p);
            BW_ASSERT(e != NULL && strncmp(e, "-ERR Protocol error: ", 21) == 0);
            BW_ASSERT(strcmp(e + strlen(e) - 2, "\r\n") == 0);
            BW_ASSERT(resp_parse(p, *c, *clen, &consumed, &req) == RESP_ERR);
            fuzz_log_put(l, e, strlen(e));
            return RESP_ERR;
        }
        BW_ASSERT(consumed <= *clen);
        if (rc == RESP_OK)
            fuzz_check_request(l, *c, *clen, consumed, &req, max_bulk);
        else if (resp_parser_need(p) != 0)
            BW_ASSERT(resp_parser_need(p) > *clen - consumed);
        /* move the rest to a new exact-size buffer, as a caller may */
        nb = bw_malloc(*clen - consumed + 1);
        memcpy(nb, *c + consumed, *clen - consumed);
        memset(*c, 0xAA, *clen);
        bw_free(*c);
        *c = nb;
        *clen -= consumed;
        if (rc == RESP_AGAIN)
            return RESP_AGAIN;
    }
}

/* Feed data in chunks of `step` bytes after the first `first` bytes. */
static struct fuzz_log
fuzz_feed(const char *data, size_t size, size_t first, size_t step, bool authenticated,
          uint64_t max_bulk)
{
    struct resp_parser *p = resp_parser_new();
    struct fuzz_log l = {NULL, 0, 0};
    char *c = bw_malloc(1);
    size_t clen = 0, off = 0;
    int rc = RESP_AGAIN;

    resp_parser_set_authenticated(p, authenticated);
    resp_parser_set_limits(p, max_bulk);
    while (off < size) {
        size_t n = BW_MIN(size - off, off == 0 && first > 0 ? first : step);
        char *nb = bw_malloc(clen + n + 1);
        memcpy(nb, c, clen);
        memcpy(nb + clen, data + off, n);
        bw_free(c);
        c = nb;
        clen += n;
        off += n;
        rc = fuzz_drain(p, &c, &clen, &l, max_bulk);
        if (rc == RESP_ERR)
            break;
    }
    /* what is left pending after all bytes were fed (not after an error:
     * how much had arrived then depends on the chunking) */
    if (rc != RESP_ERR)
        fuzz_log_put(&l, &clen, sizeof(clen));
    bw_free(c);
    resp_parser_free(p);
    return l;
}

static void
fuzz_same(const struct fuzz_log *a, const struct fuzz_log *b)
{
    BW_ASSERT(a->len == b->len && memcmp(a->s, b->s, a->len) == 0);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fuzz_log whole, split, bytes;
    bool authenticated;
    uint64_t max_bulk;
    size_t cut;

    /* Lines over 64 KB may legitimately depend on chunking (as in Redis). */
    if (size < 2 || size > RESP_INLINE_MAX_SIZE)
        return 0;
    authenticated = (data[0] & 1) == 0;
    max_bulk = (data[0] & 2) ? 16 : RESP_MAX_BULK_DEFAULT;
    cut = data[1] % (size - 1) + 1;
    data += 2;
    size -= 2;
    whole = fuzz_feed((const char *)data, size, 0, size ? size : 1, authenticated, max_bulk);
    split = fuzz_feed((const char *)data, size, cut, size ? size : 1, authenticated, max_bulk);
    fuzz_same(&whole, &split);
    if (size <= 4096) {
        bytes = fuzz_feed((const char *)data, size, 0, 1, authenticated, max_bulk);
        fuzz_same(&whole, &bytes);
        bw_free(bytes.s);
    }
    bw_free(whole.s);
    bw_free(split.s);
    return 0;
}
