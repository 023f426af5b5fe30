/*
 * encode: RESP reply encoders (see encode.h).
 */
#include "proxy/encode.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/util.h"

void
enc_status(struct evbuffer *out, const char *status)
{
    evbuffer_add(out, "+", 1);
    evbuffer_add(out, status, strlen(status));
    evbuffer_add(out, "\r\n", 2);
}

void
enc_error(struct evbuffer *out, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enc_verror(out, fmt, ap);
    va_end(ap);
}

void
enc_verror(struct evbuffer *out, const char *fmt, va_list ap)
{
    char msg[1024];
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    n = BW_MAX(BW_MIN(n, (int)sizeof(msg) - 1), 0);
    for (int i = 0; i < n; i++)
        if (msg[i] == '\r' || msg[i] == '\n')
            msg[i] = ' ';
    evbuffer_add(out, "-", 1);
    evbuffer_add(out, msg, (size_t)n);
    evbuffer_add(out, "\r\n", 2);
}

/* "<type><v>\r\n" without printf (per-request paths use these). */
static void
enc_number(struct evbuffer *out, char type, long long v)
{
    char buf[32], *p = buf + sizeof(buf);
    unsigned long long u = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
    *--p = '\n';
    *--p = '\r';
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u != 0);
    if (v < 0)
        *--p = '-';
    *--p = type;
    evbuffer_add(out, p, (size_t)(buf + sizeof(buf) - p));
}

void
enc_int(struct evbuffer *out, long long v)
{
    enc_number(out, ':', v);
}

void
enc_bulk(struct evbuffer *out, const char *data, size_t len)
{
    enc_number(out, '$', (long long)len);
    evbuffer_add(out, data, len);
    evbuffer_add(out, "\r\n", 2);
}

void
enc_bulk_str(struct evbuffer *out, const char *s)
{
    enc_bulk(out, s, strlen(s));
}

void
enc_array_len(struct evbuffer *out, size_t n)
{
    enc_number(out, '*', (long long)n);
}

void
enc_nil(struct evbuffer *out, int proto)
{
    if (proto == 3)
        evbuffer_add(out, "_\r\n", 3);
    else
        evbuffer_add(out, "$-1\r\n", 5);
}

void
enc_map_len(struct evbuffer *out, int proto, size_t pairs)
{
    if (proto == 3)
        enc_number(out, '%', (long long)pairs);
    else
        enc_number(out, '*', (long long)(2 * pairs));
}

void
enc_set_len(struct evbuffer *out, int proto, size_t n)
{
    enc_number(out, proto == 3 ? '~' : '*', (long long)n);
}

void
enc_verbatim(struct evbuffer *out, int proto, struct evbuffer *text)
{
    size_t len = evbuffer_get_length(text);
    if (proto == 3) {
        enc_number(out, '=', (long long)(len + 4));
        evbuffer_add(out, "txt:", 4);
    } else {
        enc_number(out, '$', (long long)len);
    }
    evbuffer_add_buffer(out, text);
    evbuffer_add(out, "\r\n", 2);
}
