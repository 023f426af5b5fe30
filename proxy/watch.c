/*
 * watch: keyspace watch (client tracking, BCAST, redirected to a subscriber)
 * and paced SCAN that keep the Bloom filter a superset of the upstream's keys.
 * hiredis async on libevent: these replies are shallow (depth <= 3).
 */
#include "proxy/watch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "bloom/bloom.h"
#include "proxy/hireply.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/util.h"

#define WATCH_BACKOFF_MIN_MS 100
#define WATCH_BACKOFF_MAX_MS 2000
#define WATCH_STALE_CHECK_MS 10000 /* staleness check (INFO keyspace) period */
#define WATCH_CHANNEL "__redis__:invalidate"
#define WATCH_SYNC_MAX_READS 64 /* hiredis reads (16 KB each) per watch_sync() */

struct watch {
    struct proxy *px; /* borrowed */
    char host[256];   /* the node watched (the upstream, or a cluster master) */
    int port;
    enum watch_state state;         /* see watch.h */
    redisAsyncContext *sub;         /* subscriber (hiredis owns; we clear on disconnect) */
    redisAsyncContext *trk;         /* tracking + SCAN + DBSIZE connection */
    long long sub_id;               /* CLIENT ID of sub */
    uint64_t gen;                   /* connection generation: stale callbacks are ignored */
    struct bloom *filter;           /* filter in force (owned), NULL until the first SCAN ends */
    struct bloom *building;         /* filter being scanned (owned), or NULL */
    char cursor[32];                /* SCAN cursor of the build */
    uint64_t scan_keys;             /* keys seen by the current SCAN */
    uint64_t build_started_ms;      /* monotonic start of the current build */
    bool tracking_refused;          /* CLIENT TRACKING was refused upstream */
    struct event *retry_ev;         /* reconnect timer (owned) */
    struct event *scan_ev;          /* pause between SCAN calls (owned) */
    struct event *reset_ev;         /* zero-timeout teardown after a loss (owned) */
    uint64_t backoff_ms;            /* next reconnect delay */
    uint64_t last_stale_check_ms;   /* last DBSIZE check */
    uint64_t rebuilds;              /* completed builds */
    uint64_t last_rebuild_ms;       /* duration of the last build, ms */
    uint64_t invalidations;         /* keys named on the watch */
    uint64_t synced_seq;            /* px->input_seq when sub was last drained (watch_sync) */
    struct watch_counters counters; /* gate counters */
    char last_error[128];           /* why the watch was last lost */
    bool tracking_on;               /* CLIENT TRACKING accepted on the current trk */
    bool filter_on;                 /* the Bloom gate's filter is kept (bloom yes) */
    bool wanted;                    /* connect: the filter, the hot-key cache or a
                                       tracking client needs the watch (watch_need) */
    bool unwatched_reads;           /* a tracking client read a key of this node while
                                       the watch was not tracking (watch_unwatched_read) */
    uint64_t builds_started;        /* builds begun: stale SCAN replies are ignored */
    uint64_t build_swapdb_calls;    /* cmdstat_swapdb calls when the build began */
    uint64_t swapdb_restarts;       /* builds begun again because SWAPDB ran meanwhile */
    int *scan_dbs;                  /* databases the build SCANs (owned), from INFO keyspace */
    size_t nscan_dbs;               /* entries in scan_dbs */
    size_t scan_idx;                /* the database being scanned: scan_dbs[scan_idx] */
    uint64_t swapdb_calls;          /* cmdstat_swapdb calls last seen (INFO commandstats) */
    bool swapdb_known;              /* swapdb_calls was read on this connection generation */
    uint64_t flushes;               /* nulls received and losses so far (watch_flushes) */
    uint64_t echoes;                /* nulls to come that echo a flush already told
                                       (watch_expect_flush); 0 after a loss */
    uint64_t last_swapdb_check_ms;  /* last INFO commandstats poll */
    watch_key_fn *on_key;           /* told every key named (NULL: nobody) */
    watch_flush_fn *on_flush;       /* told when everything may have changed */
    void *listener;                 /* their argument (borrowed) */
};

static void watch_connect(struct watch *w);
static void watch_scan_next(struct watch *w);
static void watch_log_error_cb(redisAsyncContext *ac, void *r, void *tag);
static redisAsyncContext *watch_open(struct watch *w);
static void watch_handshake(struct watch *w, redisAsyncContext *ac);

const char *
watch_state_name(enum watch_state s)
{
    static const char *const names[] = {"off", "warming", "active", "rebuilding", "open"};
    return names[s];
}

/* privdata of every command: the generation it belongs to. */
static void *
watch_gen_tag(const struct watch *w)
{
    return (void *)(uintptr_t)w->gen;
}

static bool
watch_current(const struct watch *w, void *tag)
{
    return (uintptr_t)tag == (uintptr_t)w->gen;
}

static struct bloom *
watch_new_filter(const struct watch *w)
{
    char err[256];
    const struct cfg *cfg = &w->px->cfg;
    struct bloom *b =
        bloom_new((uint64_t)cfg->bloom_capacity, cfg->bloom_error_rate, true, err, sizeof(err));
    if (b == NULL) {
        log_warn("bloom: cannot create the filter: %s", err);
        abort();
    }
    return b;
}

/* ---- loss and reconnect --------------------------------------------------- */

/*
 * Free both watch connections (never from inside their own callbacks). The
 * generation moves first, so their pending callbacks, called with NULL
 * replies while freeing, are recognised as stale.
 */
static void
watch_close_connections(struct watch *w)
{
    redisAsyncContext *sub = w->sub, *trk = w->trk;
    w->gen++;
    w->sub = w->trk = NULL;
    if (sub != NULL)
        redisAsyncFree(sub);
    if (trk != NULL)
        redisAsyncFree(trk);
}

static void
watch_reset_cb(evutil_socket_t fd, short what, void *arg)
{
    struct watch *w = arg;
    (void)fd;
    (void)what;
    watch_close_connections(w);
    evtimer_del(w->scan_ev);
    bloom_free(w->building);
    w->building = NULL;
    if (w->px->shutting_down)
        return;
    struct timeval tv = {(time_t)(w->backoff_ms / 1000),
                         (suseconds_t)(w->backoff_ms % 1000) * 1000};
    evtimer_add(w->retry_ev, &tv);
    w->backoff_ms = BW_MIN(w->backoff_ms * 2, WATCH_BACKOFF_MAX_MS);
}

/* Anything of w's node may have changed (a null, a loss, a return after
 * unwatched reads): counted (watch_flushes) and told to the listener. */
static void
watch_flushed(struct watch *w, bool told)
{
    w->flushes++;
    if (w->on_flush != NULL)
        w->on_flush(w->listener, w, told);
}

/*
 * The watch may have missed something: open the gate, tear both connections
 * down (outside hiredis callbacks) and reconnect with backoff.
 */
static void
watch_lost(struct watch *w, const char *why)
{
    if ((w->state != WATCH_OPEN && w->filter_on) || strcmp(w->last_error, why) != 0)
        log_warn("bloom: keyspace watch lost (%s): %s", why,
                 w->filter_on ? "gate open until a full rebuild"
                              : "hot keys and tracking wait for it");
    snprintf(w->last_error, sizeof(w->last_error), "%s", why);
    if (w->filter_on)
        w->state = WATCH_OPEN;
    bool was_tracking = w->tracking_on;
    w->tracking_on = false;
    w->swapdb_known = false;
    w->echoes = 0; /* the connection that owed them is gone */
    /* Coherence lost with the watch; a watch that was not tracking promised
     * nothing (each failed reconnect would send tracking clients another
     * null): what was read meanwhile is told when it is back. */
    if (was_tracking)
        watch_flushed(w, false);
    event_active(w->reset_ev, EV_TIMEOUT, 0);
}

static void
watch_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_connect(arg);
}

static void
watch_connect_cb(const redisAsyncContext *ac, int status)
{
    struct watch *w = ac->data;
    if (status == REDIS_OK)
        return;
    if (ac == w->sub)
        w->sub = NULL;
    else if (ac == w->trk)
        w->trk = NULL;
    else
        return;
    watch_lost(w, ac->errstr[0] ? ac->errstr : "connect failed");
}

static void
watch_disconnect_cb(const redisAsyncContext *ac, int status)
{
    struct watch *w = ac->data;
    (void)status;
    if (ac == w->sub)
        w->sub = NULL;
    else if (ac == w->trk)
        w->trk = NULL;
    else
        return; /* freed by us in watch_reset_cb */
    watch_lost(w, ac->errstr[0] ? ac->errstr : "connection closed");
}

/* ---- SCAN ----------------------------------------------------------------- */

/* The SCAN of a build reached cursor 0: the new filter replaces the old. */
static void
watch_build_done(struct watch *w)
{
    bloom_free(w->filter);
    w->filter = w->building;
    w->building = NULL;
    w->rebuilds++;
    w->last_rebuild_ms = bw_now_ms() - w->build_started_ms;
    w->last_stale_check_ms = bw_now_ms();
    if (w->tracking_refused && !w->px->cfg.bloom_trust_writes) {
        w->state = WATCH_OPEN;
        return;
    }
    w->state = WATCH_ACTIVE;
    log_notice("bloom: filter built from SCAN of %" PRIu64 " keys in %" PRIu64 " ms; gate closed",
               w->scan_keys, w->last_rebuild_ms);
}

/* cmdstat_swapdb calls in an INFO commandstats reply (0 when never called). */
static uint64_t
watch_swapdb_calls(const redisReply *reply)
{
    const char *p = strstr(reply->str, "cmdstat_swapdb:calls=");
    return p != NULL ? strtoull(p + 21, NULL, 10) : 0;
}

static void watch_build_check_cb(redisAsyncContext *ac, void *r, void *tag);
static void watch_build_start(struct watch *w, enum watch_state state);

/* The tag of a build's SCAN and INFO replies: generation and build together. */
static void *
watch_build_tag(const struct watch *w)
{
    return (void *)(uintptr_t)((w->gen << 20) | (w->builds_started & 0xfffff));
}

static bool
watch_build_current(const struct watch *w, void *tag)
{
    return (uintptr_t)tag == (uintptr_t)watch_build_tag(w) && w->building != NULL;
}

/*
 * The databases that hold keys, from an INFO keyspace reply ("db3:keys=…"
 * lines) into dbs (owned by the caller, *n entries); the sum of their keys
 * into *total. Returns false when text is not an INFO keyspace reply.
 */
static bool
watch_parse_keyspace(const char *text, size_t len, int **dbs, size_t *n, uint64_t *total)
{
    const char *p = text, *end = text + len;
    *n = 0;
    *total = 0;
    if (len < 10 || memcmp(text, "# Keyspace", 10) != 0)
        return false;
    while (p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        eol = eol != NULL ? eol : end;
        int db;
        unsigned long long keys;
        if (eol - p > 2 && memcmp(p, "db", 2) == 0 &&
            sscanf(p, "db%d:keys=%llu", &db, &keys) == 2 && db >= 0) {
            *dbs = bw_realloc(*dbs, (*n + 1) * sizeof(**dbs));
            (*dbs)[(*n)++] = db;
            *total += keys;
        }
        p = eol + 1;
    }
    return true;
}

static void
watch_scan_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    if (!watch_build_current(w, tag) || reply == NULL)
        return;
    if (reply->type == REDIS_REPLY_ERROR && strncmp(reply->str, "BUSY ", 5) == 0) {
        /* a script runs too long: nothing was missed, the same page later */
        uint64_t pause = BW_MAX(w->px->cfg.bloom_scan_interval_ms, 100);
        struct timeval tv = {(time_t)(pause / 1000), (suseconds_t)(pause % 1000) * 1000};
        evtimer_add(w->scan_ev, &tv);
        return;
    }
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2 ||
        reply->element[0]->type != REDIS_REPLY_STRING ||
        reply->element[1]->type != REDIS_REPLY_ARRAY) {
        watch_lost(w, reply->type == REDIS_REPLY_ERROR ? reply->str : "bad SCAN reply");
        return;
    }
    redisReply *keys = reply->element[1];
    for (size_t i = 0; i < keys->elements; i++)
        if (keys->element[i]->type == REDIS_REPLY_STRING)
            bloom_add(w->building, keys->element[i]->str, keys->element[i]->len);
    w->scan_keys += keys->elements;
    snprintf(w->cursor, sizeof(w->cursor), "%.*s", (int)BW_MIN(reply->element[0]->len, 31),
             reply->element[0]->str);
    if (strcmp(w->cursor, "0") == 0 && ++w->scan_idx >= w->nscan_dbs) {
        redisAsyncCommand(w->trk, watch_build_check_cb, watch_build_tag(w), "INFO commandstats");
        return;
    }
    uint64_t pause = w->px->cfg.bloom_scan_interval_ms;
    struct timeval tv = {(time_t)(pause / 1000), (suseconds_t)(pause % 1000) * 1000};
    evtimer_add(w->scan_ev, &tv);
}

/* The next SCAN page; a database's first page is preceded by its SELECT. */
static void
watch_scan_next(struct watch *w)
{
    if (w->trk == NULL || w->building == NULL || w->scan_idx >= w->nscan_dbs)
        return;
    if (strcmp(w->cursor, "0") == 0)
        redisAsyncCommand(w->trk, watch_log_error_cb, watch_gen_tag(w), "SELECT %d",
                          w->scan_dbs[w->scan_idx]);
    redisAsyncCommand(w->trk, watch_scan_cb, watch_build_tag(w), "SCAN %s COUNT %d", w->cursor,
                      w->px->cfg.bloom_scan_count);
}

static void
watch_scan_timer_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    watch_scan_next(arg);
}

/* INFO keyspace at the start of a build: which databases to SCAN. */
static void
watch_keyspace_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    uint64_t total;
    if (!watch_build_current(w, tag) || reply == NULL)
        return;
    if (reply->type != REDIS_REPLY_STRING ||
        !watch_parse_keyspace(reply->str, reply->len, &w->scan_dbs, &w->nscan_dbs, &total)) {
        watch_lost(w, reply->type == REDIS_REPLY_ERROR ? reply->str : "bad INFO keyspace reply");
        return;
    }
    w->scan_idx = 0;
    snprintf(w->cursor, sizeof(w->cursor), "0");
    if (w->nscan_dbs == 0) /* no keys anywhere */
        redisAsyncCommand(w->trk, watch_build_check_cb, watch_build_tag(w), "INFO commandstats");
    else
        watch_scan_next(w);
}

/* SWAPDB's count when a build starts (see watch_build_check_cb). */
static void
watch_build_swaps_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    if (watch_build_current(w, tag) && reply != NULL && reply->type == REDIS_REPLY_STRING)
        w->build_swapdb_calls = watch_swapdb_calls(reply);
}

/*
 * The SCAN of every database ended. SWAPDB names no key on the tracking
 * channel: one run between the databases' SCANs may have moved keys from a
 * database not yet scanned into one already done, so the new filter could
 * miss them. If SWAPDB ran since the build began, the build starts again
 * (the filter in force stays, kept a superset by the watch); else the new
 * filter replaces it.
 */
static void
watch_build_check_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    if (!watch_build_current(w, tag) || reply == NULL)
        return;
    if (reply->type != REDIS_REPLY_STRING) {
        watch_lost(w, reply->type == REDIS_REPLY_ERROR ? reply->str : "bad INFO reply");
        return;
    }
    if (watch_swapdb_calls(reply) != w->build_swapdb_calls) {
        log_verbose("bloom: SWAPDB ran during the filter's SCAN: scanning again");
        w->swapdb_restarts++;
        watch_build_start(w, w->state);
        return;
    }
    watch_build_done(w);
}

/*
 * Start filling a new filter: INFO keyspace names the databases with keys,
 * then each is SCANned from 0 in turn (every key name of every database
 * goes into the one filter).
 */
static void
watch_build_start(struct watch *w, enum watch_state state)
{
    bloom_free(w->building);
    w->building = watch_new_filter(w);
    evtimer_del(w->scan_ev);
    w->builds_started++;
    w->nscan_dbs = w->scan_idx = 0;
    snprintf(w->cursor, sizeof(w->cursor), "0");
    w->scan_keys = 0;
    w->build_started_ms = bw_now_ms();
    w->state = state;
    if (w->trk != NULL) {
        redisAsyncCommand(w->trk, watch_build_swaps_cb, watch_build_tag(w), "INFO commandstats");
        redisAsyncCommand(w->trk, watch_keyspace_cb, watch_build_tag(w), "INFO keyspace");
    }
}

/* ---- the watch ------------------------------------------------------------ */

static void
watch_add_both(struct watch *w, const char *key, size_t len)
{
    uint64_t h = bloom_hash(key, len);
    if (w->filter != NULL)
        bloom_add_hash(w->filter, h);
    if (w->building != NULL)
        bloom_add_hash(w->building, h);
}

/* A key named on the watch: into the filters, and to the listener. */
static void
watch_key(struct watch *w, const char *key, size_t len)
{
    watch_add_both(w, key, len);
    if (w->on_key != NULL)
        w->on_key(w->listener, key, len);
    w->invalidations++;
}

/* An invalidation message: the keys modified, or nil for FLUSHALL/FLUSHDB. */
static void
watch_invalidate(struct watch *w, const redisReply *payload)
{
    if (payload->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < payload->elements; i++) {
            const redisReply *k = payload->element[i];
            if (k->type == REDIS_REPLY_STRING)
                watch_key(w, k->str, k->len);
        }
    } else if (payload->type == REDIS_REPLY_STRING) {
        watch_key(w, payload->str, payload->len);
    } else if (payload->type == REDIS_REPLY_NIL) {
        bool told = w->echoes > 0;
        w->echoes -= told ? 1 : 0;
        watch_flushed(w, told);
    }
    if (payload->type == REDIS_REPLY_NIL && w->state == WATCH_ACTIVE) {
        /* A flush: the filter is still a superset (nothing was missed), only
         * stale. Keep gating on it while a fresh one is scanned. */
        log_verbose("bloom: upstream flushed; rebuilding the filter");
        watch_build_start(w, WATCH_REBUILDING);
    }
}

/* The scanner connection (SCAN, INFO keyspace and commandstats) is opened
 * and, with the filter, the first build starts. */
static void
watch_start_scanning(struct watch *w)
{
    if (w->trk == NULL) {
        w->trk = watch_open(w);
        if (w->trk == NULL) {
            watch_lost(w, w->last_error);
            return;
        }
        watch_handshake(w, w->trk);
    }
    if (w->filter_on)
        watch_build_start(w, WATCH_WARMING);
}

static void watch_message_cb(redisAsyncContext *ac, void *r, void *tag);

static void
watch_tracking_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    if (!watch_current(w, tag) || reply == NULL)
        return;
    w->backoff_ms = WATCH_BACKOFF_MIN_MS;
    if (reply->type == REDIS_REPLY_ERROR) {
        w->tracking_refused = true;
        log_warn("bloom: CLIENT TRACKING refused upstream (%s): %s", reply->str,
                 w->px->cfg.bloom_trust_writes
                     ? "trusting writes through bulwark (bloom-trust-writes)"
                     : "gate stays open");
        if (!w->filter_on)
            return; /* nothing to scan for; hot keys and tracking stay without it */
        if (!w->px->cfg.bloom_trust_writes) {
            w->state = WATCH_OPEN;
            return;
        }
        watch_start_scanning(w);
        return;
    }
    w->tracking_refused = false;
    redisAsyncCommand(w->sub, watch_message_cb, watch_gen_tag(w), "SUBSCRIBE " WATCH_CHANNEL);
}

static void
watch_log_error_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    if (watch_current(w, tag) && reply != NULL && reply->type == REDIS_REPLY_ERROR)
        log_warn("bloom: watch connection: %s", reply->str);
}

/* Queue AUTH and a name on a new watch connection. */
static void
watch_handshake(struct watch *w, redisAsyncContext *ac)
{
    const struct cfg *cfg = &w->px->cfg;
    if (cfg->upstream_password != NULL && cfg->upstream_user != NULL)
        redisAsyncCommand(ac, watch_log_error_cb, watch_gen_tag(w), "AUTH %s %s",
                          cfg->upstream_user, cfg->upstream_password);
    else if (cfg->upstream_password != NULL)
        redisAsyncCommand(ac, watch_log_error_cb, watch_gen_tag(w), "AUTH %s",
                          cfg->upstream_password);
    redisAsyncCommand(ac, watch_log_error_cb, watch_gen_tag(w), "CLIENT SETNAME bulwark-watch");
}

/*
 * hiredis 0.14's libevent adapter arms a one-shot read event, so each read of
 * a watch connection (every loop turn that brings invalidations, i.e. under
 * writes) cost an epoll_ctl DEL and ADD pair; this adapter keeps one
 * persistent read event armed until hiredis asks for it to stop.
 */
struct watch_ev {
    redisAsyncContext *ac; /* borrowed: the context the events serve */
    struct event *rev;     /* EV_READ|EV_PERSIST (owned) */
    struct event *wev;     /* EV_WRITE, one-shot as hiredis expects (owned) */
    bool reading;          /* rev is armed */
};

static void
watch_ev_read(evutil_socket_t fd, short what, void *arg)
{
    struct watch_ev *e = arg;
    (void)fd;
    (void)what;
    redisAsyncHandleRead(e->ac);
}

static void
watch_ev_write(evutil_socket_t fd, short what, void *arg)
{
    struct watch_ev *e = arg;
    (void)fd;
    (void)what;
    redisAsyncHandleWrite(e->ac);
}

static void
watch_ev_add_read(void *arg)
{
    struct watch_ev *e = arg;
    if (!e->reading && event_add(e->rev, NULL) == 0)
        e->reading = true;
}

static void
watch_ev_del_read(void *arg)
{
    struct watch_ev *e = arg;
    if (e->reading)
        event_del(e->rev);
    e->reading = false;
}

static void
watch_ev_add_write(void *arg)
{
    struct watch_ev *e = arg;
    event_add(e->wev, NULL);
}

static void
watch_ev_del_write(void *arg)
{
    struct watch_ev *e = arg;
    event_del(e->wev);
}

static void
watch_ev_cleanup(void *arg)
{
    struct watch_ev *e = arg;
    event_free(e->rev);
    event_free(e->wev);
    bw_free(e);
}

/* Attach ac to base with the adapter above (redisLibeventAttach's contract). */
static void
watch_ev_attach(redisAsyncContext *ac, struct event_base *base)
{
    struct watch_ev *e = bw_calloc(1, sizeof(*e));
    e->ac = ac;
    e->rev = event_new(base, ac->c.fd, EV_READ | EV_PERSIST, watch_ev_read, e);
    e->wev = event_new(base, ac->c.fd, EV_WRITE, watch_ev_write, e);
    BW_ASSERT(e->rev != NULL && e->wev != NULL);
    ac->ev.addRead = watch_ev_add_read;
    ac->ev.delRead = watch_ev_del_read;
    ac->ev.addWrite = watch_ev_add_write;
    ac->ev.delWrite = watch_ev_del_write;
    ac->ev.cleanup = watch_ev_cleanup;
    ac->ev.data = e;
    watch_ev_add_read(e);
    watch_ev_add_write(e); /* the connect completes on writability */
}

static redisAsyncContext *
watch_open(struct watch *w)
{
    redisAsyncContext *ac = redisAsyncConnect(w->host, w->port);
    if (ac == NULL || ac->err) {
        snprintf(w->last_error, sizeof(w->last_error), "%s",
                 ac != NULL ? ac->errstr : "out of memory");
        if (ac != NULL)
            redisAsyncFree(ac);
        return NULL;
    }
    ac->data = w;
    ac->c.reader->fn = &hireply_fns; /* reply objects without malloc per key */
    watch_ev_attach(ac, w->px->base);
    redisAsyncSetConnectCallback(ac, watch_connect_cb);
    redisAsyncSetDisconnectCallback(ac, watch_disconnect_cb);
    return ac;
}

static void
watch_message_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    if (!watch_current(w, tag) || reply == NULL || reply->type != REDIS_REPLY_ARRAY ||
        reply->elements < 3 || reply->element[0]->type != REDIS_REPLY_STRING)
        return;
    const char *kind = reply->element[0]->str;
    if (strcasecmp(kind, "subscribe") == 0 && !w->tracking_on) {
        w->tracking_on = true; /* every change from now on is named here */
        watch_start_scanning(w);
        /* A change made before now was never named: a tracking client that
         * read a key while the watch was down (or not yet up) would keep it
         * for ever. For them everything may have changed, as at a loss. */
        if (w->unwatched_reads && w->tracking_on) {
            w->unwatched_reads = false;
            watch_flushed(w, false);
        }
    } else if (strcasecmp(kind, "message") == 0)
        watch_invalidate(w, reply->element[2]);
}

static void
watch_id_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    if (!watch_current(w, tag) || reply == NULL)
        return;
    if (reply->type != REDIS_REPLY_INTEGER) {
        watch_lost(w, reply->type == REDIS_REPLY_ERROR ? reply->str : "bad CLIENT ID reply");
        return;
    }
    w->sub_id = reply->integer;
    /* Tracking redirected to the same connection: once it is subscribed,
     * Redis sends it every key change as a message on the channel, and a
     * lost watch is one lost socket (watch_sync() sees its EOF). */
    redisAsyncCommand(w->sub, watch_tracking_cb, watch_gen_tag(w),
                      "CLIENT TRACKING on REDIRECT %lld BCAST", w->sub_id);
}

static void
watch_connect(struct watch *w)
{
    if (w->px->shutting_down || w->sub != NULL)
        return;
    w->gen++;
    w->sub = watch_open(w);
    if (w->sub == NULL) {
        watch_lost(w, w->last_error);
        return;
    }
    watch_handshake(w, w->sub);
    redisAsyncCommand(w->sub, watch_id_cb, watch_gen_tag(w), "CLIENT ID");
}

/* ---- public --------------------------------------------------------------- */

struct watch *
watch_new(struct proxy *px)
{
    return watch_new_at(px, px->cfg.upstream_host, px->cfg.upstream_port);
}

struct watch *
watch_new_at(struct proxy *px, const char *host, int port)
{
    struct watch *w = bw_calloc(1, sizeof(*w));
    w->px = px;
    snprintf(w->host, sizeof(w->host), "%s", host);
    w->port = port;
    w->backoff_ms = WATCH_BACKOFF_MIN_MS;
    w->retry_ev = evtimer_new(px->base, watch_retry_cb, w);
    w->scan_ev = evtimer_new(px->base, watch_scan_timer_cb, w);
    w->reset_ev = event_new(px->base, -1, 0, watch_reset_cb, w);
    BW_ASSERT(w->retry_ev != NULL && w->scan_ev != NULL && w->reset_ev != NULL);
    snprintf(w->last_error, sizeof(w->last_error), "none");
    w->filter_on = px->cfg.bloom;
    w->state = w->filter_on ? WATCH_WARMING : WATCH_OFF;
    if (px->cfg.bloom || px->cfg.hotkey || px->watch_needed)
        watch_need(w);
    return w;
}

void
watch_unwatched_read(struct watch *w)
{
    if (!watch_tracking_on(w))
        w->unwatched_reads = true;
}

void
watch_need(struct watch *w)
{
    if (w->wanted)
        return;
    w->wanted = true;
    watch_connect(w);
}

void
watch_copy_listener(struct watch *dst, const struct watch *src)
{
    watch_set_listener(dst, src->on_key, src->on_flush, src->listener);
}

void
watch_free(struct watch *w)
{
    if (w == NULL)
        return;
    watch_close_connections(w);
    event_free(w->retry_ev);
    event_free(w->scan_ev);
    event_free(w->reset_ev);
    bloom_free(w->filter);
    bloom_free(w->building);
    bw_free(w->scan_dbs);
    bw_free(w);
}

uint64_t
watch_flushes(const struct watch *w)
{
    return w->flushes;
}

void
watch_expect_flush(struct watch *w)
{
    w->echoes++;
}

bool
watch_tracking_on(const struct watch *w)
{
    return w->tracking_on && w->trk != NULL && w->sub != NULL;
}

bool
watch_gate_closed(const struct watch *w)
{
    return (w->state == WATCH_ACTIVE || w->state == WATCH_REBUILDING) && w->filter != NULL;
}

bool
watch_maybe_contains(const struct watch *w, const char *key, size_t len)
{
    return w->filter == NULL || bloom_maybe_contains(w->filter, key, len);
}

void
watch_add_key(struct watch *w, const char *key, size_t len)
{
    if (w->state != WATCH_OFF)
        watch_add_both(w, key, len);
}

bool
watch_sync(struct watch *w)
{
    if (w->synced_seq == w->px->input_seq)
        return true;
    return watch_drain(w);
}

bool
watch_drain(struct watch *w)
{
    for (int i = 0; i < WATCH_SYNC_MAX_READS; i++) {
        redisAsyncContext *ac = w->sub;
        char byte;
        if (ac == NULL || !(ac->c.flags & REDIS_CONNECTED)) {
            w->synced_seq = w->px->input_seq; /* no watch: the gate is open already */
            return true;
        }
        ssize_t n = recv(ac->c.fd, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            w->synced_seq = w->px->input_seq;
            return true;
        }
        if (n < 0 && errno == EINTR)
            continue;
        /* Bytes, EOF or an error: hiredis reads (up to 16 KB) and calls our
         * callbacks, or disconnects, which calls watch_lost(). */
        redisAsyncHandleRead(ac);
    }
    return false; /* still more: the caller must not answer locally */
}

struct watch_counters *
watch_counters(struct watch *w)
{
    return &w->counters;
}

static void
watch_dbsize_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    int *dbs = NULL;
    size_t n;
    uint64_t total;
    if (!watch_current(w, tag) || reply == NULL || reply->type != REDIS_REPLY_STRING ||
        w->state != WATCH_ACTIVE || w->filter == NULL ||
        !watch_parse_keyspace(reply->str, reply->len, &dbs, &n, &total)) {
        bw_free(dbs);
        return;
    }
    bw_free(dbs);
    double limit = (double)total * (1.0 + w->px->cfg.bloom_rebuild_ratio) + 1000.0;
    if ((double)bloom_count(w->filter) > limit) {
        log_verbose("bloom: %" PRIu64 " keys added for %" PRIu64 " keys in every database: "
                    "rebuilding the stale filter",
                    bloom_count(w->filter), total);
        watch_build_start(w, WATCH_REBUILDING);
    }
}

/*
 * SWAPDB sends nothing on the tracking channel (Redis 7.0, measured): its
 * count in INFO commandstats is polled, and a change empties the hot caches
 * (the filter, keyed by name in every database, is not affected).
 */
static void
watch_swapdb_cb(redisAsyncContext *ac, void *r, void *tag)
{
    struct watch *w = ac->data;
    redisReply *reply = r;
    if (!watch_current(w, tag) || reply == NULL || reply->type != REDIS_REPLY_STRING)
        return;
    uint64_t calls = watch_swapdb_calls(reply);
    if (w->swapdb_known && calls != w->swapdb_calls && w->on_flush != NULL) {
        log_verbose("bloom: SWAPDB seen in INFO commandstats: hot caches emptied");
        w->on_flush(w->listener, w, false);
    }
    w->swapdb_calls = calls;
    w->swapdb_known = true;
}

void
watch_cron(struct watch *w, uint64_t now_ms)
{
    if (w->trk != NULL && w->tracking_on && now_ms - w->last_swapdb_check_ms >= 1000) {
        w->last_swapdb_check_ms = now_ms;
        redisAsyncCommand(w->trk, watch_swapdb_cb, watch_gen_tag(w), "INFO commandstats");
    }
    if (w->state != WATCH_ACTIVE || w->trk == NULL ||
        now_ms - w->last_stale_check_ms < WATCH_STALE_CHECK_MS)
        return;
    w->last_stale_check_ms = now_ms;
    redisAsyncCommand(w->trk, watch_dbsize_cb, watch_gen_tag(w), "INFO keyspace");
}

void
watch_set_listener(struct watch *w, watch_key_fn *on_key, watch_flush_fn *on_flush, void *arg)
{
    w->on_key = on_key;
    w->on_flush = on_flush;
    w->listener = arg;
}

void
watch_info(const struct watch *w, struct evbuffer *out)
{
    const struct bloom *b = w->filter != NULL ? w->filter : w->building;
    evbuffer_add_printf(out,
                        "# Bloom\r\n"
                        "bloom_state:%s\r\n"
                        "bloom_keys_added:%" PRIu64 "\r\n"
                        "bloom_capacity:%" PRIu64 "\r\n"
                        "bloom_memory_bytes:%zu\r\n"
                        "bloom_bits_per_key:%.2f\r\n"
                        "bloom_estimated_fpr:%.6f\r\n"
                        "bloom_gated_reads:%" PRIu64 "\r\n"
                        "bloom_passed_reads:%" PRIu64 "\r\n"
                        "bloom_passed_nil:%" PRIu64 "\r\n"
                        "bloom_rebuilds:%" PRIu64 "\r\n"
                        "bloom_last_rebuild_ms:%" PRIu64 "\r\n"
                        "bloom_scan_keys:%" PRIu64 "\r\n"
                        "bloom_invalidations:%" PRIu64 "\r\n"
                        "bloom_tracking:%s\r\n"
                        "bloom_watch_last_error:%s\r\n",
                        watch_state_name(w->state), b != NULL ? bloom_count(b) : 0,
                        b != NULL ? bloom_capacity(b) : 0,
                        (w->filter != NULL ? bloom_memory_bytes(w->filter) : 0) +
                            (w->building != NULL ? bloom_memory_bytes(w->building) : 0),
                        b != NULL ? bloom_bits_per_key(b) : 0.0,
                        b != NULL ? bloom_estimated_fpr(b) : 0.0, w->counters.gated_reads,
                        w->counters.passed_reads, w->counters.passed_nil, w->rebuilds,
                        w->last_rebuild_ms, w->scan_keys, w->invalidations,
                        !w->wanted            ? "off"
                        : w->tracking_refused ? "refused"
                        : w->trk != NULL      ? "on"
                                              : "down",
                        w->last_error);
}
