/*
 * session: the request path's view of a client connection (see session.h).
 */
#include "proxy/session.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "proxy/command.h"
#include "proxy/encode.h"
#include "proxy/pinned.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/tracking.h"
#include "proxy/util.h"

/* ---- sessions by id: open addressing, linear probing ----------------------- */

static size_t
session_id_slot(uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static void
session_index_add(struct proxy *px, struct session *s)
{
    if ((px->by_id_n + 1) * 2 > px->by_id_cap) { /* keep it at most half full */
        size_t cap = BW_MAX(px->by_id_cap * 2, (size_t)64);
        struct session **old = px->by_id;
        size_t oldcap = px->by_id_cap;
        px->by_id = bw_calloc(cap, sizeof(*px->by_id));
        px->by_id_cap = cap;
        px->by_id_n = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i] != NULL)
                session_index_add(px, old[i]);
        bw_free(old);
    }
    size_t i = session_id_slot(s->id, px->by_id_cap);
    while (px->by_id[i] != NULL)
        i = (i + 1) & (px->by_id_cap - 1);
    px->by_id[i] = s;
    px->by_id_n++;
}

static void
session_index_remove(struct proxy *px, struct session *s)
{
    size_t mask = px->by_id_cap - 1, i = session_id_slot(s->id, px->by_id_cap);
    while (px->by_id[i] != s)
        i = (i + 1) & mask;
    px->by_id[i] = NULL;
    px->by_id_n--;
    /* backward shift: entries after the hole that probed past it move up */
    for (size_t j = (i + 1) & mask; px->by_id[j] != NULL; j = (j + 1) & mask) {
        size_t home = session_id_slot(px->by_id[j]->id, px->by_id_cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            px->by_id[i] = px->by_id[j];
            px->by_id[j] = NULL;
            i = j;
        }
    }
}

struct session *
session_by_id(struct proxy *px, uint64_t id)
{
    if (px->by_id_cap == 0)
        return NULL;
    size_t mask = px->by_id_cap - 1;
    for (size_t i = session_id_slot(id, px->by_id_cap); px->by_id[i] != NULL; i = (i + 1) & mask)
        if (px->by_id[i]->id == id)
            return px->by_id[i];
    return NULL;
}

void
session_index_free(struct proxy *px)
{
    bw_free(px->by_id);
    px->by_id = NULL;
    px->by_id_cap = px->by_id_n = 0;
}

/* ---- life cycle ------------------------------------------------------------ */

void
session_init(struct session *s, struct proxy *px, const struct session_ops *ops,
             const struct slotq_ops *qops, struct evbuffer *out, const char *addr,
             const char *laddr, bool is_unix)
{
    s->px = px;
    s->ops = ops;
    s->id = px->next_client_id++;
    s->is_unix = is_unix;
    s->created_ms = bw_now_ms();
    snprintf(s->addr, sizeof(s->addr), "%s", addr);
    snprintf(s->laddr, sizeof(s->laddr), "%s", laddr);
    session_reset_auth(s);
    slotq_init(&s->q, out, s, qops, &px->cmdstats, px->base);
    s->proto = 2;
    TAILQ_INSERT_TAIL(&px->sessions, s, link);
    session_index_add(px, s);
}

void
session_deinit(struct session *s)
{
    s->closed = true;
    slotq_orphan(&s->q);
    TAILQ_REMOVE(&s->px->sessions, s, link);
    session_index_remove(s->px, s);
    bw_free(s->name);
    s->name = NULL;
}

void
session_set_name(struct session *s, const char *name, size_t len)
{
    bw_free(s->name);
    s->name = name != NULL && len > 0 ? bw_strndup(name, len) : NULL;
}

void
session_reset_auth(struct session *s)
{
    const char *pass = s->px->cfg.requirepass;
    session_set_name(s, NULL, 0);
    s->authenticated = pass == NULL || pass[0] == '\0';
}

/* ---- replies --------------------------------------------------------------- */

struct evbuffer *
session_reply_target(struct session *s)
{
    return slotq_target(&s->q);
}

void
session_reply_raw(struct session *s, const char *data, size_t len)
{
    evbuffer_add(slotq_target(&s->q), data, len);
}

void
session_reply_error(struct session *s, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    enc_verror(slotq_target(&s->q), fmt, ap);
    va_end(ap);
}

void
session_reply_status(struct session *s, const char *status)
{
    enc_status(slotq_target(&s->q), status);
}

void
session_reply_bulk(struct session *s, const char *data, size_t len)
{
    enc_bulk(slotq_target(&s->q), data, len);
}

void
session_reply_int(struct session *s, long long v)
{
    enc_int(slotq_target(&s->q), v);
}

void
session_reply_nil(struct session *s)
{
    enc_nil(slotq_target(&s->q), s->proto);
}

/* ---- CLIENT LIST, INFO ------------------------------------------------------ */

void
session_format_info(const struct session *s, struct evbuffer *out)
{
    /* Redis 7.0's flag letters, in its order, of the states bulwark knows */
    char flags[12], trk[4], *f = flags;
    int64_t redir;
    if (s->pin != NULL && pinned_subscriptions(s->pin) > 0)
        *f++ = 'P';
    if (s->pin != NULL && pinned_in_multi(s->pin))
        *f++ = 'x';
    if (s->pin != NULL && pinned_blocked(s->pin) && pinned_subscriptions(s->pin) == 0)
        *f++ = 'b';
    (void)tracking_client_flags(s->px->tracking, s->id, trk, &redir);
    for (const char *t = trk; *t != '\0'; t++)
        *f++ = *t;
    if (s->is_unix)
        *f++ = 'U';
    if (f == flags)
        *f++ = 'N';
    *f = '\0';
    struct session_io io;
    s->ops->io_stats(s, &io);
    evbuffer_add_printf(out,
                        "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu "
                        "flags=%s db=%d sub=0 psub=0 ssub=0 multi=-1 qbuf=%zu qbuf-free=0 "
                        "argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=%llu omem=%zu "
                        "tot-mem=0 events=r cmd=%s user=default redir=%lld resp=%d\n",
                        (unsigned long long)s->id, s->addr, s->laddr, io.fd,
                        s->name != NULL ? s->name : "",
                        (unsigned long long)(bw_now_ms() - s->created_ms) / 1000,
                        (unsigned long long)io.idle_ms / 1000, flags, s->db, io.qbuf,
                        (unsigned long long)s->q.n, io.omem,
                        s->last_cmd[0] ? s->last_cmd : "NULL", (long long)redir, s->proto);
}

void
session_info_line(const struct session *s, char *out, size_t size)
{
    struct evbuffer *b = evbuffer_new();
    session_format_info(s, b);
    size_t n = evbuffer_copyout(b, out, size - 1) > 0 ? evbuffer_get_length(b) : 0;
    n = BW_MIN(n, size - 1);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = '\0';
    evbuffer_free(b);
}

void
session_format_all(struct proxy *px, struct evbuffer *out)
{
    struct session *s;
    TAILQ_FOREACH(s, &px->sessions, link)
    session_format_info(s, out);
}

void
session_format_id(struct proxy *px, uint64_t id, struct evbuffer *out)
{
    struct session *s = session_by_id(px, id);
    if (s != NULL)
        session_format_info(s, out);
}

size_t
session_max_output(struct proxy *px)
{
    size_t most = 0;
    struct session *s;
    TAILQ_FOREACH(s, &px->sessions, link)
    most = BW_MAX(most, s->ops->held_bytes(s));
    return most;
}

/* ---- deny-commands ---------------------------------------------------------- */

bool
session_is_denied(const struct proxy *px, const char *name, size_t len)
{
    for (size_t i = 0; i < px->cfg.deny_commands_count; i++) {
        const char *d = px->cfg.deny_commands[i];
        if (strlen(d) == len && strncasecmp(d, name, len) == 0)
            return true;
    }
    return false;
}

void
session_reply_denied(struct session *s, const struct resp_request *req)
{
    session_reply_error(s, "ERR command '%.*s' is disabled in bulwark (deny-commands)",
                        (int)BW_MIN(req->argv[0].len, 128), req->argv[0].ptr);
}

/* ---- client-output-buffer-limit --------------------------------------------- */

bool
session_output_over(const struct session *s, size_t used, uint64_t *soft_since_ms)
{
    /* the class: Redis getClientType (MONITOR is normal) */
    int cls = s->pin != NULL && pinned_subscriptions(s->pin) > 0 ? CFG_OBL_PUBSUB
                                                                 : CFG_OBL_NORMAL;
    const struct cfg_obl *l = &s->px->cfg.client_obl[cls];
    bool hard = l->hard_bytes > 0 && used >= l->hard_bytes;
    bool soft = l->soft_bytes > 0 && used >= l->soft_bytes;
    if (!soft) {
        *soft_since_ms = 0;
    } else if (!hard) {
        uint64_t now = bw_now_ms();
        if (*soft_since_ms == 0)
            *soft_since_ms = now;
        soft = now - *soft_since_ms > l->soft_seconds * 1000;
    }
    return hard || soft;
}

const struct cmd_info *
session_cmd(struct session *s, const struct resp_request *req)
{
    /* An unknown command is looked up again each time: rare, and cheap. */
    if (req->cmd == NULL)
        ((struct resp_request *)req)->cmd =
            cmd_lookup(s->px->cmds, req->argv[0].ptr, req->argv[0].len);
    return req->cmd;
}
