/*
 * encode: RESP replies as bulwark writes them, for a client speaking RESP2
 * or RESP3 (HELLO), appended to an evbuffer. The one place the reply syntax
 * of bulwark's own answers is spelled out; every module that answers for
 * Redis encodes through it (Redis 7.0 networking.c addReply* is the model:
 * same bytes, same one-line errors).
 *
 * No I/O and no state: libevent is used for its buffers only.
 */
#ifndef BW_ENCODE_H
#define BW_ENCODE_H

#include <stdarg.h>
#include <stddef.h>

struct evbuffer;

/* "+status\r\n" (status without '+' and CRLF). */
void enc_status(struct evbuffer *out, const char *status);

/*
 * "-msg\r\n" from printf-style fmt (without '-' and CRLF); CR and LF in the
 * message become spaces, as Redis's addReplyError makes errors one line.
 * Messages longer than 1,023 bytes are cut.
 */
void enc_error(struct evbuffer *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* enc_error() with a va_list. */
void enc_verror(struct evbuffer *out, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/* ":v\r\n". */
void enc_int(struct evbuffer *out, long long v);

/* "$len\r\n" data "\r\n". */
void enc_bulk(struct evbuffer *out, const char *data, size_t len);

/* A C string as a bulk. */
void enc_bulk_str(struct evbuffer *out, const char *s);

/* "*n\r\n": an array of n elements follows. */
void enc_array_len(struct evbuffer *out, size_t n);

/* The null reply: RESP2 "$-1\r\n", RESP3 "_\r\n". */
void enc_nil(struct evbuffer *out, int proto);

/* A map of pairs entries follows: RESP3 "%pairs", RESP2 a flat array of 2 × pairs. */
void enc_map_len(struct evbuffer *out, int proto, size_t pairs);

/* A set of n elements follows: RESP3 "~n", RESP2 an array. */
void enc_set_len(struct evbuffer *out, int proto, size_t n);

/*
 * The text of text (drained) as a verbatim "txt" string (RESP3 "=len\r\ntxt:…")
 * or a bulk (RESP2), as Redis's addReplyVerbatim for INFO and CLIENT LIST.
 */
void enc_verbatim(struct evbuffer *out, int proto, struct evbuffer *text);

#endif
