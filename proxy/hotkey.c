/* hotkey: hot-key cache, refresh-ahead and leases on the GET path. */
#include "proxy/hotkey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <xxhash.h>

#include "proxy/batch.h"
#include "proxy/cluster.h"
#include "proxy/cmdstats.h"
#include "proxy/hotcache.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "proxy/slots.h"
#include "proxy/reply.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/upstream.h"
#include "proxy/util.h"
#include "proxy/watch.h"

#define HOTKEY_FILL_SLOTS 4096 /* in-flight fill index (hash slots) */

struct hotkey {
    struct proxy *px; /* borrowed */
    int db;           /* the database whose GETs it serves */
    struct hot *hot;  /* sketch, cache and leases (owned) */
    /* The fill in flight for a key hashing to slot i (borrowed; it clears
     * its slot when done): one fill per key at a time (single flight); a
     * collision only delays another key's fill. */
    struct hotkey_fill *filling[HOTKEY_FILL_SLOTS];
    struct event *lease_ev;  /* fires at the earliest lease deadline (owned) */
    uint64_t lease_armed_ms; /* deadline lease_ev is set for; UINT64_MAX: unset */
};

/* One upstream fill of a hot key: GET and PTTL pipelined. */
struct hotkey_fill {
    struct hotkey *hk; /* borrowed (outlives fills: freed after the pool) */
    struct slot *slot; /* the client's GET, or NULL for a refresh */
    char *key;         /* owned copy */
    size_t len;        /* bytes in key */
    uint64_t token;    /* hot_fetch_begin() generation */
    char *value;       /* GET reply bytes (owned) once arrived */
    size_t vlen;       /* bytes in value */
    bool lease;        /* the GET came back nil: a lease was started */
    bool stale;        /* the key was written or invalidated meanwhile:
                                   its value must not reach held GETs */
    size_t fill_slot;  /* index in hotkey.filling */
    int pending;       /* replies still due (2, then 1, then 0) */
};

/*
 * Where a key's fills go and who guards its entry: in front of one Redis the
 * client's shared connection, batcher and px->watch; in front of a Redis
 * Cluster the connection, batcher and keyspace watch of the master of the
 * key's hash slot (router.h).
 */
struct hotkey_route {
    struct upstream_conn *up; /* where its GET + PTTL go (borrowed) */
    struct batch *batch;      /* where a held GET goes when its lease ends (borrowed) */
    struct watch *watch;      /* the watch that names its changes (borrowed) */
};

/* A GET held by a lease. */
struct hotkey_waiter {
    struct slot *slot;   /* the client's reply slot */
    struct batch *batch; /* where to send it if the lease ends without a value */
    char *key;           /* owned copy */
    size_t len;          /* bytes in key */
};

static void hotkey_wake(void *ctx, void *waiter, const char *value, size_t vlen);

/* Arm lease_ev for the earliest lease deadline, unless already set for it. */
static void
hotkey_lease_arm(struct hotkey *hk)
{
    uint64_t due = hot_lease_next_deadline(hk->hot), now = bw_now_ms();
    if (due == hk->lease_armed_ms)
        return;
    hk->lease_armed_ms = due;
    if (due == UINT64_MAX) {
        evtimer_del(hk->lease_ev);
        return;
    }
    uint64_t in_ms = due > now ? due - now : 0;
    struct timeval tv = {(time_t)(in_ms / 1000), (suseconds_t)(in_ms % 1000) * 1000};
    evtimer_add(hk->lease_ev, &tv);
}

/* A lease ran out: its held GETs go upstream at once, not at the next cron. */
static void
hotkey_lease_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    struct hotkey *hk = arg;
    (void)fd;
    (void)what;
    hk->lease_armed_ms = UINT64_MAX;
    hot_lease_expire(hk->hot, bw_now_ms(), hotkey_wake, hk);
    hotkey_lease_arm(hk);
}

struct hotkey *
hotkey_new(struct proxy *px, int db)
{
    const struct cfg *cfg = &px->cfg;
    struct hot_opts o;
    char err[256];
    if (!cfg->hotkey)
        return NULL;
    hot_opts_init(&o);
    o.threshold_rps = (uint64_t)cfg->hotkey_threshold;
    o.max_keys = (size_t)cfg->hotkey_max_keys;
    o.max_bytes = (size_t)cfg->hotkey_maxmemory;
    o.ttl_ms = cfg->hotkey_ttl_ms;
    o.refresh_ratio = cfg->hotkey_refresh_ratio;
    o.lease_ms = cfg->hotkey_lease_ms;
    o.seed = bw_now_us();
    struct hotkey *hk = bw_calloc(1, sizeof(*hk));
    hk->px = px;
    hk->db = db;
    hk->lease_ev = evtimer_new(px->base, hotkey_lease_timer_cb, hk);
    BW_ASSERT(hk->lease_ev != NULL);
    hk->lease_armed_ms = UINT64_MAX;
    hk->hot = hot_new(&o, err, sizeof(err));
    if (hk->hot == NULL) {
        log_warn("hotkey: %s", err);
        exit(1);
    }
    return hk;
}

static void
hotkey_waiter_free(struct hotkey_waiter *w)
{
    bw_free(w->key);
    bw_free(w);
}

/* A lease ended: answer the held GET with value, or send it upstream. */
static void
hotkey_wake(void *ctx, void *waiter, const char *value, size_t vlen)
{
    struct hotkey_waiter *w = waiter;
    (void)ctx;
    if (value != NULL)
        slot_finish(w->slot, value, vlen);
    else
        batch_get_slot(w->batch, w->slot, w->key, w->len);
    hotkey_waiter_free(w);
}

void
hotkey_free(struct hotkey *hk)
{
    if (hk == NULL)
        return;
    hot_free(hk->hot, hotkey_wake, hk);
    event_free(hk->lease_ev);
    bw_free(hk);
}

/* Served only while a keyspace watch can tell us about changes (INFO): in
 * front of a cluster, while one master's watch at least can. */
static bool
hotkey_coherent(const struct hotkey *hk)
{
    struct watch *ws[64];
    size_t n = router_watches(hk->px, ws, BW_ARRAY_LEN(ws));
    if (n == 0)
        return watch_tracking_on(hk->px->watch);
    for (size_t i = 0; i < n && i < BW_ARRAY_LEN(ws); i++)
        if (watch_tracking_on(ws[i]))
            return true;
    return false;
}

/*
 * Key's route for session s; false when it has none: a cluster slot without
 * a master in bulwark's map (the GET goes on as usual).
 */
static bool
hotkey_route(struct hotkey *hk, struct session *s, const char *key, size_t len,
             struct hotkey_route *rt)
{
    struct proxy *px = hk->px;
    if (!router_active(px)) {
        *rt = (struct hotkey_route){s->up, s->batch, px->watch};
        return s->up != NULL && s->batch != NULL;
    }
    unsigned slot = cluster_keyslot(key, len);
    rt->watch = router_watch(px, slot);
    rt->batch = router_batch(px, slot, s->id, s->proto);
    rt->up = upstream_pick(router_pool(px, slot), s->id, s->proto);
    return rt->watch != NULL && rt->batch != NULL && rt->up != NULL;
}

/*
 * In front of a cluster, a fill's error reply (n bytes at data) may be a
 * MOVED, ASK or TRYAGAIN: the client's GET follows it as a batched GET's
 * does (px->on_batch_redirect takes its slot), nothing is stored, and the
 * GETs held by the key's lease go to their batcher (they follow it too).
 * True when it was one.
 */
static bool
hotkey_redirected(struct hotkey_fill *f, const char *data, size_t n)
{
    struct proxy *px = f->hk->px;
    if (n < 4 || data[0] != '-' || !router_active(px) || px->on_batch_redirect == NULL)
        return false;
    if (!px->on_batch_redirect(px, f->key, f->len, &f->slot, f->slot != NULL ? 1 : 0, data, n))
        return false;
    f->slot = NULL; /* taken */
    f->stale = true;
    hot_lease_release(f->hk->hot, f->key, f->len, NULL, 0, hotkey_wake, f->hk);
    return true;
}

static void
hotkey_fill_done(struct hotkey_fill *f, int64_t pttl)
{
    struct hotkey *hk = f->hk;
    if (f->value != NULL && !f->lease && f->value[0] == '$' && f->vlen > 5)
        (void)hot_store(hk->hot, f->key, f->len, f->token, f->value, f->vlen, pttl, bw_now_ms());
    hk->filling[f->fill_slot] = NULL;
    bw_free(f->key);
    bw_free(f->value);
    bw_free(f);
}

static void
hotkey_get_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct hotkey_fill *f = privdata;
    const char *data = reply != NULL ? (const char *)evbuffer_pullup(reply, (ev_ssize_t)len)
                                     : err;
    size_t n = reply != NULL ? len : strlen(err);
    if (n == 3 && memcmp(data, "_\r\n", 3) == 0) {
        /* a RESP3 client's fill: held GETs of either protocol share it, in
         * RESP2's form (slot_finish gives RESP3 clients their null) */
        data = "$-1\r\n";
        n = 5;
    }
    if (reply != NULL && hotkey_redirected(f, data, n)) {
        if (--f->pending == 0)
            hotkey_fill_done(f, -2);
        return;
    }
    if (f->slot != NULL)
        slot_finish(f->slot, data, n);
    if (reply != NULL) {
        f->value = bw_strndup(data, n);
        f->vlen = n;
        if (n == 5 && memcmp(data, "$-1\r\n", 5) == 0) {
            /* Absent (expired, deleted): this client refills it; the GETs
             * held since the miss keep waiting for its SET (or the lease's
             * end). */
            f->lease = true;
        } else if (f->slot != NULL && !f->stale) {
            /* The value is there: the GETs held since the miss get it. */
            hot_lease_release(f->hk->hot, f->key, f->len, data, n, hotkey_wake, f->hk);
        }
    }
    if (--f->pending == 0)
        hotkey_fill_done(f, -2);
}

static void
hotkey_pttl_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct hotkey_fill *f = privdata;
    int64_t pttl = -2;
    (void)err;
    if (reply != NULL) {
        struct reply_node *n =
            reply_parse((const char *)evbuffer_pullup(reply, (ev_ssize_t)len), len);
        if (n != NULL && n->type == ':')
            pttl = n->integer;
        reply_node_free(n);
    }
    if (--f->pending == 0) /* the GET's reply always comes first (FIFO) */
        hotkey_fill_done(f, pttl);
}

/*
 * GET key and PTTL key back to back on up; the GET answers slot (or nobody:
 * a refresh). Returns false, sending nothing, when a fill of key is out.
 */
static bool
hotkey_fetch(struct hotkey *hk, struct upstream_conn *up, struct slot *slot, const char *key,
             size_t len)
{
    size_t fs = (size_t)(XXH3_64bits(key, len) % HOTKEY_FILL_SLOTS);
    if (hk->filling[fs] != NULL)
        return false; /* one fill per key at a time */
    struct hotkey_fill *f = bw_calloc(1, sizeof(*f));
    hk->filling[fs] = f;
    struct evbuffer *cmd = evbuffer_new();
    const char *err;
    f->fill_slot = fs;
    f->hk = hk;
    f->slot = slot;
    f->key = bw_strndup(key, len);
    f->len = len;
    f->token = hot_fetch_begin(hk->hot, key, len);
    f->pending = 2;
    evbuffer_add_printf(cmd, "*2\r\n$3\r\nGET\r\n$%zu\r\n", len);
    evbuffer_add(cmd, key, len);
    evbuffer_add(cmd, "\r\n", 2);
    size_t getlen = evbuffer_get_length(cmd);
    evbuffer_add_printf(cmd, "*2\r\n$4\r\nPTTL\r\n$%zu\r\n", len);
    evbuffer_add(cmd, key, len);
    evbuffer_add(cmd, "\r\n", 2);
    const char *bytes = (const char *)evbuffer_pullup(cmd, -1);
    size_t total = evbuffer_get_length(cmd);
    if (upstream_send_db(up, hk->db, bytes, getlen, hotkey_get_cb, f, &err) != BW_OK) {
        hotkey_get_cb(f, NULL, 0, err);
        hotkey_pttl_cb(f, NULL, 0, err);
    } else if (upstream_send_db(up, hk->db, bytes + getlen, total - getlen, hotkey_pttl_cb, f,
                                &err) != BW_OK) {
        hotkey_pttl_cb(f, NULL, 0, err);
    }
    evbuffer_free(cmd);
    return true;
}

/* A hot key not in the cache: its GET is held by a lease, or fetched. */
static bool
hotkey_miss(struct hotkey *hk, struct session *s, const struct hotkey_route *rt, const char *key,
            size_t len, uint64_t now)
{
    struct slot *slot = slot_new(&s->q, SLOT_BATCHED);
    hk->px->stats.forwarded++;
    struct hotkey_waiter *w = bw_calloc(1, sizeof(*w));
    w->slot = slot;
    w->batch = rt->batch;
    w->key = bw_strndup(key, len);
    w->len = len;
    if (hot_lease_hold(hk->hot, key, len, now, w)) {
        cmdstats_answered(&hk->px->cmdstats, CMDSTATS_BY_HOTCACHE);
        slot_mark_held(slot);
        return true; /* a lease is out: wait for its SET (or its timeout) */
    }
    hotkey_waiter_free(w);
    /* The first miss of a hot key: a lease starts now, so the GETs that
     * follow wait for this one fill (GET with its PTTL) instead of going
     * upstream too; its value (or the refilling SET) answers them. */
    if (hot_lease_begin(hk->hot, key, len, now, 0))
        hotkey_lease_arm(hk);
    batch_before_forward(rt->batch, s);
    if (!hotkey_fetch(hk, rt->up, slot, key, len))
        batch_get_slot(rt->batch, slot, key, len); /* a fill is already out */
    return true;
}

bool
hotkey_get(struct hotkey *hk, struct session *s, const char *key, size_t len)
{
    struct hot_hit hit;
    struct hotkey_route rt;
    double rate;
    uint64_t now = bw_now_ms();
    if (hk == NULL || !hotkey_route(hk, s, key, len, &rt) || !watch_tracking_on(rt.watch) ||
        !hot_note_read(hk->hot, key, len, now, &rate))
        return false;
    /* A hot key may be answered from the cache or held: take in what the
     * watch has delivered first (an invalidation, or its loss). */
    if (!watch_sync(rt.watch) || !watch_tracking_on(rt.watch))
        return false;
    if (hot_lookup(hk->hot, key, len, now, &hit)) {
        cmdstats_answered(&hk->px->cmdstats, CMDSTATS_BY_HOTCACHE);
        evbuffer_add(slotq_target(&s->q), hit.value, hit.vlen);
        if (hit.refresh) /* refresh-ahead: one background fetch, readers keep the value */
            (void)hotkey_fetch(hk, rt.up, NULL, key, len);
        return true;
    }
    if (s->batch != rt.batch) { /* a cluster: its GETs elsewhere go first, one batcher */
        if (s->batch != NULL)
            batch_before_forward(s->batch, s);
        s->batch = rt.batch;
    }
    return hotkey_miss(hk, s, &rt, key, len, now);
}

void
hotkey_invalidate(struct hotkey *hk, const char *key, size_t len)
{
    if (hk == NULL)
        return;
    hot_invalidate(hk->hot, key, len);
    struct hotkey_fill *f = hk->filling[XXH3_64bits(key, len) % HOTKEY_FILL_SLOTS];
    if (f != NULL && f->len == len && memcmp(f->key, key, len) == 0)
        f->stale = true;
}

void
hotkey_on_write(struct hotkey *hk, const char *key, size_t len)
{
    if (hk == NULL)
        return;
    hotkey_invalidate(hk, key, len);
    /* GETs held for key arrived before this write: they go upstream now,
     * ahead of anything the client sends later, and read what Redis has. */
    hot_lease_release(hk->hot, key, len, NULL, 0, hotkey_wake, hk);
}

void
hotkey_on_set(struct hotkey *hk, const struct resp_request *req)
{
    if (hk == NULL || req->argc < 3)
        return;
    const struct resp_arg *key = &req->argv[1], *val = &req->argv[2];
    if (req->argc != 3 || hot_lease_waiters(hk->hot, key->ptr, key->len) == 0) {
        /* options may keep the SET from happening; or nobody is held, and
         * a big value is not copied twice for nothing */
        hot_lease_release(hk->hot, key->ptr, key->len, NULL, 0, hotkey_wake, hk);
        return;
    }
    struct evbuffer *enc = evbuffer_new();
    evbuffer_add_printf(enc, "$%zu\r\n", val->len);
    evbuffer_add(enc, val->ptr, val->len);
    evbuffer_add(enc, "\r\n", 2);
    size_t n = evbuffer_get_length(enc);
    hot_lease_release(hk->hot, key->ptr, key->len, (const char *)evbuffer_pullup(enc, -1), n,
                      hotkey_wake, hk);
    evbuffer_free(enc);
}

void
hotkey_flush(struct hotkey *hk)
{
    if (hk != NULL)
        hot_flush(hk->hot);
}

/* What a per-master drop matches: keys of a master's watch, or of changed slots. */
struct hotkey_match {
    struct proxy *px;       /* borrowed */
    const struct watch *w;  /* the master's watch, or NULL */
    const uint8_t *changed; /* the slots' bitmap, or NULL */
};

static bool
hotkey_matches(void *ctx, const char *key, size_t len)
{
    const struct hotkey_match *m = ctx;
    unsigned slot = cluster_keyslot(key, len);
    if (m->changed != NULL)
        return (m->changed[slot / 8] >> (slot % 8)) & 1;
    return router_watch(m->px, slot) == m->w;
}

/* Drop the entries m matches, and make its fills in flight unstorable. */
static void
hotkey_drop_matching(struct hotkey *hk, struct hotkey_match *m)
{
    if (hk == NULL)
        return;
    (void)hot_drop_if(hk->hot, hotkey_matches, m);
    for (size_t i = 0; i < HOTKEY_FILL_SLOTS; i++) {
        struct hotkey_fill *f = hk->filling[i];
        if (f != NULL && hotkey_matches(m, f->key, f->len))
            hotkey_invalidate(hk, f->key, f->len);
    }
}

void
hotkey_watch_flushed(struct hotkey *hk, const struct watch *w)
{
    struct hotkey_match m = {hk != NULL ? hk->px : NULL, w, NULL};
    hotkey_drop_matching(hk, &m);
}

void
hotkey_slots_moved(struct hotkey *hk, const uint8_t *changed)
{
    struct hotkey_match m = {hk != NULL ? hk->px : NULL, NULL, changed};
    hotkey_drop_matching(hk, &m);
}

void
hotkey_cron(struct hotkey *hk, uint64_t now_ms)
{
    if (hk != NULL && hot_lease_next_deadline(hk->hot) <= now_ms) {
        hot_lease_expire(hk->hot, now_ms, hotkey_wake, hk);
        hotkey_lease_arm(hk);
    }
}

void
hotkey_info(struct hotkey *const *hks, size_t n, struct evbuffer *out)
{
    struct hot_stats s, one;
    bool coherent = false;
    memset(&s, 0, sizeof(s));
    for (size_t i = 0; i < n; i++) {
        hot_stats_get(hks[i]->hot, &one);
        s.hotkey_cached_keys += one.hotkey_cached_keys;
        s.hotkey_cache_bytes += one.hotkey_cache_bytes;
        s.hotkey_hits += one.hotkey_hits;
        s.hotkey_misses += one.hotkey_misses;
        s.hotkey_refreshes += one.hotkey_refreshes;
        s.hotkey_invalidations += one.hotkey_invalidations;
        s.hotkey_lease_holds += one.hotkey_lease_holds;
        s.hotkey_lease_wakeups += one.hotkey_lease_wakeups;
        s.hotkey_lease_timeouts += one.hotkey_lease_timeouts;
        s.hotkey_lease_spent += one.hotkey_lease_spent;
        coherent = coherent || hotkey_coherent(hks[i]);
    }
    evbuffer_add_printf(out,
                        "# Hotkeys\r\n"
                        "hotkey_enabled:%d\r\n"
                        "hotkey_cached_keys:%llu\r\n"
                        "hotkey_cache_bytes:%llu\r\n"
                        "hotkey_hits:%llu\r\n"
                        "hotkey_misses:%llu\r\n"
                        "hotkey_refreshes:%llu\r\n"
                        "hotkey_invalidations:%llu\r\n"
                        "hotkey_lease_holds:%llu\r\n"
                        "hotkey_lease_wakeups:%llu\r\n"
                        "hotkey_lease_timeouts:%llu\r\n"
                        "hotkey_lease_spent:%llu\r\n"
                        "hotkey_databases:%zu\r\n",
                        coherent, (unsigned long long)s.hotkey_cached_keys,
                        (unsigned long long)s.hotkey_cache_bytes,
                        (unsigned long long)s.hotkey_hits, (unsigned long long)s.hotkey_misses,
                        (unsigned long long)s.hotkey_refreshes,
                        (unsigned long long)s.hotkey_invalidations,
                        (unsigned long long)s.hotkey_lease_holds,
                        (unsigned long long)s.hotkey_lease_wakeups,
                        (unsigned long long)s.hotkey_lease_timeouts,
                        (unsigned long long)s.hotkey_lease_spent, n);
}

/* hot_top() rows, encoded as they come; counted for the array header. */
struct hotkey_top {
    struct evbuffer *items; /* owned */
    size_t n;               /* rows */
};

static void
hotkey_top_row(void *ctx, const char *key, size_t len, double rate)
{
    struct hotkey_top *t = ctx;
    char r[64];
    int rl = snprintf(r, sizeof(r), "%.1f", rate);
    evbuffer_add_printf(t->items, "$%zu\r\n", len);
    evbuffer_add(t->items, key, len);
    evbuffer_add_printf(t->items, "\r\n$%d\r\n%s\r\n", rl, r);
    t->n++;
}

void
hotkey_top_reply(struct hotkey *hk, size_t n, struct evbuffer *out)
{
    struct hotkey_top t = {evbuffer_new(), 0};
    if (hk != NULL)
        hot_top(hk->hot, n, bw_now_ms(), hotkey_top_row, &t);
    evbuffer_add_printf(out, "*%zu\r\n", t.n * 2);
    evbuffer_add_buffer(out, t.items);
    evbuffer_free(t.items);
}
