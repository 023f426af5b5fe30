/*
 * ctrack: CLIENT TRACKING for bulwark's clients on the request path — the
 * keys a tracking client reads are remembered, the writes that pass through
 * bulwark are attributed to their writer and told when Redis has made them,
 * invalidation messages go into the client's reply order (see ctrack.h).
 */
#include "proxy/ctrack.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/cluster.h"
#include "proxy/command.h"
#include "proxy/inflight.h"
#include "proxy/pinned.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/session.h"
#include "proxy/tracking.h"
#include "proxy/util.h"
#include "proxy/watch.h"

/* The keys (and flush) of a write through bulwark while CLIENT TRACKING is in
 * use, in flight until its reply (ctrk_done). */
struct ctrk_write {
    struct proxy *px;  /* borrowed: the write may outlive its client */
    size_t n, cap;     /* keys, allocated */
    char **keys;       /* owned copies */
    size_t *lens;      /* their lengths */
    bool flush;        /* FLUSHALL / FLUSHDB */
    bool flush_ok;     /* ... answered +OK (ctrk_flush_filter) */
    uint64_t flushes;  /* px->watch_flushes when the list was made (ctrk_mreads) */
    size_t nfw;        /* watches in fw */
    struct watch **fw; /* a flush's: every master's watch tracking when it was sent
                          (borrowed; owned array) */
    uint64_t *fcount;  /* watch_flushes() of each then (owned array) */
};

/* ---- CLIENT TRACKING -------------------------------------------------------- */

/*
 * The keyspace watch that names key's changes: px->watch in front of one
 * Redis, the watch of the master of key's slot in front of a cluster (NULL:
 * a slot without a master in the map).
 */
static struct watch *
ctrk_watch_of(struct proxy *px, const char *key, size_t len)
{
    return router_active(px) ? router_watch(px, cluster_keyslot(key, len)) : px->watch;
}

/*
 * Take in what the watches of w's keys have delivered (every master's for a
 * flush in front of a cluster): on one host Redis wrote the write's tracking
 * message before its reply.
 */
static void
ctrk_drain(struct proxy *px, const struct ctrk_write *w)
{
    struct watch *ws[64], *last = NULL;
    if (!router_active(px)) {
        (void)watch_drain(px->watch);
        return;
    }
    size_t n = w->flush ? router_watches(px, ws, BW_ARRAY_LEN(ws)) : 0;
    for (size_t i = 0; i < n && i < BW_ARRAY_LEN(ws); i++)
        (void)watch_drain(ws[i]);
    for (size_t i = 0; i < w->n; i++) {
        struct watch *k = ctrk_watch_of(px, w->keys[i], w->lens[i]);
        if (k != NULL && k != last)
            (void)watch_drain(k);
        last = k;
    }
}

bool
ctrack_lookup(void *arg, uint64_t id, struct tracking_peer *out)
{
    struct session *s = session_by_id(arg, id);
    if (s == NULL || s->closed)
        return false;
    out->resp = s->proto;
    out->pubsub = s->pin != NULL && pinned_subscriptions(s->pin) > 0;
    return true;
}

void
ctrack_send(void *arg, uint64_t to, const char *bytes, size_t len)
{
    struct session *s = session_by_id(arg, to);
    if (s == NULL || s->closed || s->q.drop)
        return;
    struct slot *ps = s->pin_slot;
    if (ps != NULL && slot_is_tail(ps)) {
        /* a session streams into its slot, whole replies at a time */
        evbuffer_add(slot_output(ps), bytes, len);
        return;
    }
    session_reply_raw(s, bytes, len);
}

void
ctrack_key_changed(struct proxy *px, const char *key, size_t len, uint64_t writer)
{
    if (!tracking_any(px->tracking))
        return;
    tracking_key_changed(px->tracking, key, len, writer);
    event_active(px->tracking_ev, EV_TIMEOUT, 0); /* BCAST: at the end of this turn */
}

/* Append a copy of key to *list (made when NULL). */
static void
ctrk_push(struct proxy *px, struct ctrk_write **list, const char *key, size_t len)
{
    struct ctrk_write *w = *list;
    if (w == NULL) {
        w = *list = bw_calloc(1, sizeof(*w));
        w->px = px;
        w->flushes = px->watch_flushes;
    }
    if (w->n == w->cap) {
        w->cap = BW_MAX(w->cap * 2, (size_t)4);
        w->keys = bw_realloc(w->keys, w->cap * sizeof(*w->keys));
        w->lens = bw_realloc(w->lens, w->cap * sizeof(*w->lens));
    }
    w->keys[w->n] = bw_strndup(key, len);
    w->lens[w->n++] = len;
}

/* Free a key list that was never registered anywhere. NULL ok. */
static void
ctrk_free_list(struct ctrk_write *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++)
        bw_free(w->keys[i]);
    bw_free(w->keys);
    bw_free(w->lens);
    bw_free(w->fw);
    bw_free(w->fcount);
    bw_free(w);
}

/*
 * The change is told when Redis has made it: when the keyspace watch names
 * the key (its echo, attributed to the writer through px->trk_writes), and
 * at the latest when the write's reply arrives (ctrk_done), never when
 * the write is sent: a read that reached Redis before the write would
 * otherwise put the old value back in a client's cache, untold.
 */
void
ctrack_write(struct proxy *px, const char *key, size_t len, uint64_t writer)
{
    struct session *s = session_by_id(px, writer);
    if (!tracking_any(px->tracking) || s == NULL)
        return;
    if (s->trk_mreads != NULL) /* a transaction writes a key it read: told after EXEC */
        for (size_t i = 0; i < s->trk_mreads->n; i++)
            if (s->trk_mreads->lens[i] == len && memcmp(s->trk_mreads->keys[i], key, len) == 0) {
                ctrk_push(px, &s->trk_mdirty, key, len);
                break;
            }
    if (px->trk_writes == NULL)
        px->trk_writes = inflight_new();
    inflight_add(px->trk_writes, key, len, writer);
    ctrk_push(px, &s->trk_cur, key, len);
}

uint64_t
ctrack_echo_writer(struct proxy *px, const char *key, size_t len)
{
    return px->trk_writes != NULL ? inflight_echo(px->trk_writes, key, len) : 0;
}

/*
 * Forget write w of writer (0: the client is gone, nobody is told): its
 * in-flight entries go; a key the watch never named while it is down is
 * told now, attributed to writer.
 */
static void
ctrk_release(struct proxy *px, struct ctrk_write *w, uint64_t writer)
{
    for (size_t i = 0; i < w->n; i++) {
        if (px->trk_writes != NULL) {
            uint64_t who = writer;
            if (who == 0) /* the client is gone: drop the latest write's entry */
                who = inflight_echo(px->trk_writes, w->keys[i], w->lens[i]);
            bool seen = inflight_done(px->trk_writes, w->keys[i], w->lens[i], who);
            struct watch *kw = ctrk_watch_of(px, w->keys[i], w->lens[i]);
            if (writer != 0 && !seen && (kw == NULL || !watch_tracking_on(kw)))
                ctrack_key_changed(px, w->keys[i], w->lens[i], writer);
        }
        bw_free(w->keys[i]);
    }
    if (w->flush && px->trk_flushes > 0)
        px->trk_flushes--;
    bw_free(w->keys);
    bw_free(w->lens);
    bw_free(w->fw);
    bw_free(w->fcount);
    bw_free(w);
}

/*
 * The reads of a transaction that ran: remembered now, after its writes were
 * told; a key it wrote after reading it is told now (after EXEC's reply).
 * Redis ran them at EXEC, while bulwark did not remember them yet: when a
 * watch was lost or flushed since they were queued, a change made meanwhile
 * may have gone untold, so they are told now (or, their watch down, by a
 * null when it is back).
 */
static void
ctrk_mreads(struct session *s)
{
    struct ctrk_write *w = s->trk_mreads, *d = s->trk_mdirty;
    s->trk_mreads = s->trk_mdirty = NULL;
    bool missed = w->flushes != s->px->watch_flushes;
    for (size_t i = 0; i < w->n; i++) {
        struct tracking_arg k = {w->keys[i], w->lens[i]};
        tracking_remember_keys(s->px->tracking, s->id, &k, 1);
        struct watch *kw = ctrk_watch_of(s->px, k.ptr, k.len);
        if (kw != NULL)
            watch_unwatched_read(kw);
        if (missed && kw != NULL && watch_tracking_on(kw))
            ctrack_key_changed(s->px, k.ptr, k.len, TRACKING_WRITER_NONE);
    }
    for (size_t i = 0; d != NULL && i < d->n; i++)
        ctrack_key_changed(s->px, d->keys[i], d->lens[i], s->id);
    ctrk_free_list(w);
    ctrk_free_list(d);
}

/* Merge write src into *dst (a session's writes in flight); src is freed. */
static void
ctrk_merge(struct ctrk_write **dst, struct ctrk_write *src)
{
    if (*dst == NULL) {
        *dst = src;
        return;
    }
    struct ctrk_write *d = *dst;
    for (size_t i = 0; i < src->n; i++) {
        if (d->n == d->cap) {
            d->cap = BW_MAX(d->cap * 2, (size_t)4);
            d->keys = bw_realloc(d->keys, d->cap * sizeof(*d->keys));
            d->lens = bw_realloc(d->lens, d->cap * sizeof(*d->lens));
        }
        d->keys[d->n] = src->keys[i];
        d->lens[d->n++] = src->lens[i];
    }
    d->flush = d->flush || src->flush;
    if (d->fw == NULL) { /* the older snapshot stays: at worst a null is told twice */
        d->fw = src->fw;
        d->fcount = src->fcount;
        d->nfw = src->nfw;
        src->fw = NULL;
        src->fcount = NULL;
    }
    bw_free(src->fw);
    bw_free(src->fcount);
    bw_free(src->keys);
    bw_free(src->lens);
    bw_free(src);
}

/*
 * A flush of s answered +OK, its nulls taken in: a watch whose count did not
 * move since it was sent still owes its null (Redis writes the reply first),
 * so s's flush is told now and that null, when it comes, is known as its
 * echo: a client that turns tracking on after the reply never gets it.
 */
static void
ctrk_flush_late(struct session *s, struct ctrk_write *w)
{
    bool late = false;
    for (size_t i = 0; i < w->nfw; i++)
        if (watch_tracking_on(w->fw[i]) && watch_flushes(w->fw[i]) == w->fcount[i]) {
            watch_expect_flush(w->fw[i]);
            late = true;
        }
    if (late)
        tracking_flushed(s->px->tracking, s->id);
}

/*
 * Write w of s has its reply: take in what the watch has delivered (on one
 * host Redis wrote the write's tracking message before the reply), forget
 * it, and send s its own invalidations (after this reply, as Redis does).
 */
static void
ctrk_done(struct session *s, struct ctrk_write *w)
{
    ctrk_drain(s->px, w);
    if (w->flush_ok)
        ctrk_flush_late(s, w);
    ctrk_release(s->px, w, s->id);
    tracking_after_command(s->px->tracking, s->id, s->pin != NULL && pinned_in_multi(s->pin),
                           true /* CACHING is not reset here */);
}

#define CTRACK_STACK_KEYS 32

/* A read command of a tracking client: its keys are remembered (default mode). */
void
ctrack_read(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    /* scripts: their declared keys, whether the script reads them or not
     * (Redis remembers them only when it ran a read; bulwark cannot see that) */
    if ((!(ci->flags & CMD_READONLY) && ci->keys_kind != CMD_KEYS_EVAL) ||
        (ci->flags & CMD_PUBSUB) || !tracking_is_on(s->px->tracking, s->id))
        return;
    const char *sargv[CTRACK_STACK_KEYS];
    size_t slen[CTRACK_STACK_KEYS];
    int sidx[CTRACK_STACK_KEYS];
    struct tracking_arg skeys[CTRACK_STACK_KEYS];
    bool heap = req->argc > CTRACK_STACK_KEYS;
    size_t n = (size_t)req->argc;
    const char **argv = heap ? bw_malloc(n * sizeof(*argv)) : sargv;
    size_t *lens = heap ? bw_malloc(n * sizeof(*lens)) : slen;
    int *idx = heap ? bw_malloc(n * sizeof(*idx)) : sidx;
    struct tracking_arg *keys = heap ? bw_malloc(n * sizeof(*keys)) : skeys;
    for (int i = 0; i < req->argc; i++) {
        argv[i] = req->argv[i].ptr;
        lens[i] = req->argv[i].len;
    }
    int nk = cmd_get_keys(ci, req->argc, argv, lens, idx, req->argc);
    for (int i = 0; i < nk; i++) {
        keys[i] = (struct tracking_arg){argv[idx[i]], lens[idx[i]]};
        struct watch *kw = ctrk_watch_of(s->px, keys[i].ptr, keys[i].len);
        if (kw != NULL) /* read while its watch is down: a null when it is back */
            watch_unwatched_read(kw);
    }
    if (nk > 0 && s->pin != NULL && pinned_in_multi(s->pin)) {
        for (int i = 0; i < nk; i++)
            ctrk_push(s->px, &s->trk_mreads, keys[i].ptr, keys[i].len);
    } else if (nk > 0) {
        tracking_remember_keys(s->px->tracking, s->id, keys, (size_t)nk);
    }
    if (heap) {
        bw_free(argv);
        bw_free(lens);
        bw_free(idx);
        bw_free(keys);
    }
}

/*
 * A script (EVAL, EVALSHA, FCALL) of a tracking-era client: the keys it
 * declares are taken as written by it, so the watch's echo of its writes is
 * its own (NOLOOP). Writes to keys it does not declare are seen as anyone's.
 */
void
ctrack_script(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    if (ci->keys_kind != CMD_KEYS_EVAL || (ci->flags & CMD_READONLY) || req->argc < 3 ||
        req->argc > CTRACK_STACK_KEYS)
        return;
    const char *argv[CTRACK_STACK_KEYS];
    size_t lens[CTRACK_STACK_KEYS];
    int idx[CTRACK_STACK_KEYS];
    for (int i = 0; i < req->argc; i++) {
        argv[i] = req->argv[i].ptr;
        lens[i] = req->argv[i].len;
    }
    int nk = cmd_get_keys(ci, req->argc, argv, lens, idx, req->argc);
    for (int i = 0; i < nk; i++)
        ctrack_write(s->px, argv[idx[i]], lens[idx[i]], s->id);
}

/* A flush is sent: the watches that will echo it, and their counts (ctrk_flush_late). */
static void
ctrk_flush_snapshot(struct proxy *px, struct ctrk_write *w)
{
    struct watch *ws[64];
    size_t n = 1;
    if (w->fw != NULL) /* a second flush in one transaction: the first's snapshot */
        return;
    if (router_active(px))
        n = BW_MIN(router_watches(px, ws, BW_ARRAY_LEN(ws)), BW_ARRAY_LEN(ws));
    else
        ws[0] = px->watch;
    w->fw = bw_calloc(n + 1, sizeof(*w->fw));
    w->fcount = bw_calloc(n + 1, sizeof(*w->fcount));
    for (size_t i = 0; i < n; i++)
        if (ws[i] != NULL && watch_tracking_on(ws[i])) {
            w->fw[w->nfw] = ws[i];
            w->fcount[w->nfw++] = watch_flushes(ws[i]);
        }
}

/* FLUSHALL / FLUSHDB through bulwark: the watch's null is this client's. */
void
ctrack_flush(struct session *s, const struct resp_request *req)
{
    /* (also while nobody tracks: its nulls are owed to whoever tracks next) */
    if (!(resp_arg_is(&req->argv[0], "flushall") || resp_arg_is(&req->argv[0], "flushdb")))
        return;
    if (s->trk_cur == NULL) {
        s->trk_cur = bw_calloc(1, sizeof(*s->trk_cur));
        s->trk_cur->px = s->px;
    }
    s->trk_cur->flush = true;
    ctrk_flush_snapshot(s->px, s->trk_cur);
    s->px->trk_flushes++;
    s->px->trk_flush_writer = s->id;
}

/* The end of a command of s for tracking, once its replies are due in order. */
static void
ctrack_after(struct session *s, bool was_client_cmd)
{
    s->trk_after = false;
    tracking_after_command(s->px->tracking, s->id, s->pin != NULL && pinned_in_multi(s->pin),
                           was_client_cmd);
}

/* Move every ready reply at the head of the FIFO to the output. */
/* A forwarded write's slot: answered, its invalidations go; orphaned, it is forgotten. */
static void
ctrack_slot_hook(struct session *owner, void *arg, bool answered)
{
    struct ctrk_write *w = arg;
    if (answered)
        ctrk_done(owner, w);
    else
        ctrk_release(w->px, w, 0);
}

/* A flush's reply, to its client as it is; +OK noted (its nulls are owed). */
static void
ctrk_flush_filter(struct session *s, struct evbuffer *reply, size_t len, const char *err,
                  struct evbuffer *out, void *data)
{
    struct ctrk_write *w = data; /* owned by the slot's hook */
    char head[5];
    if (s == NULL)
        return;
    if (reply == NULL) {
        evbuffer_add(out, err, strlen(err));
        return;
    }
    w->flush_ok = len == 5 && evbuffer_copyout(reply, head, 5) == 5 &&
                  memcmp(head, "+OK\r\n", 5) == 0;
    evbuffer_remove_buffer(reply, out, len);
}

void
ctrack_attach(struct session *s, struct slot *slot)
{
    if (s->trk_cur == NULL)
        return;
    if (s->trk_cur->flush && slot->filter == NULL) { /* a flush: its +OK is looked at */
        slot->filter = ctrk_flush_filter;
        slot->filter_data = s->trk_cur;
    }
    slot->hook = ctrack_slot_hook; /* a write's keys: told by its reply */
    slot->hook_arg = s->trk_cur;
    s->trk_cur = NULL;
}

void
ctrack_begin(struct session *s)
{
    tracking_limit(s->px->tracking, (uint64_t)s->px->cfg.tracking_table_max_keys, s->id);
}

void
ctrack_end(struct session *s, bool was_client_cmd)
{
    if (s->trk_cur != NULL) { /* a write not forwarded on a shared connection */
        if (s->pin != NULL && !s->closed) {
            ctrk_merge(&s->trk_pin, s->trk_cur); /* in the session: told when answered */
            s->trk_after = true;
        } else {
            ctrk_release(s->px, s->trk_cur, 0); /* refused: nothing happened */
        }
        s->trk_cur = NULL;
    }
    if (s->closed)
        return;
    if (s->pin != NULL && !pinned_idle(s->pin)) {
        s->trk_after = true;
        s->trk_after_client = was_client_cmd;
        return;
    }
    ctrack_after(s, was_client_cmd);
}

void
ctrack_pinned_answered(struct session *s)
{
    if (!s->trk_after || pinned_outstanding(s->pin) != 0)
        return;
    /* the session's writes are answered (a transaction's run at EXEC) */
    if (s->trk_pin != NULL && !pinned_in_multi(s->pin)) {
        struct ctrk_write *w = s->trk_pin;
        s->trk_pin = NULL;
        ctrk_done(s, w);
    }
    if (s->trk_mreads != NULL && !pinned_in_multi(s->pin))
        ctrk_mreads(s);
    ctrack_after(s, s->trk_after_client); /* its own invalidations follow */
}

void
ctrack_unpinned(struct session *s)
{
    if (s->trk_pin != NULL) {
        struct ctrk_write *w = s->trk_pin;
        s->trk_pin = NULL;
        ctrk_done(s, w);
    }
    if (s->trk_mreads != NULL)
        ctrk_mreads(s);
    if (s->trk_after)
        ctrack_after(s, s->trk_after_client);
}

void
ctrack_discard(struct session *s)
{
    if (s->trk_cur != NULL)
        ctrk_release(s->px, s->trk_cur, 0);
    s->trk_cur = NULL;
}

void
ctrack_session_gone(struct session *s)
{
    struct proxy *px = s->px;
    tracking_client_gone(px->tracking, s->id);
    if (s->trk_cur != NULL)
        ctrk_release(px, s->trk_cur, 0);
    if (s->trk_pin != NULL)
        ctrk_release(px, s->trk_pin, 0);
    ctrk_free_list(s->trk_mreads); /* never remembered: only freed */
    ctrk_free_list(s->trk_mdirty);
    s->trk_cur = s->trk_pin = s->trk_mreads = s->trk_mdirty = NULL;
}
