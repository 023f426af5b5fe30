/*
 * client: one client connection, its request path and the reply FIFO that
 * keeps replies in request order (flow diagram in client.h).
 */
#include "proxy/client.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/batch.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/gate.h"
#include "proxy/hotkey.h"
#include "proxy/keyspace.h"
#include "proxy/local.h"
#include "proxy/inflight.h"
#include "proxy/pinned.h"
#include "proxy/tracking.h"
#include "proxy/watch.h"
#include "proxy/log.h"
#include "proxy/netio.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/upstream.h"
#include "proxy/util.h"

/* The keys (and flush) of a write through bulwark while CLIENT TRACKING is in
 * use, in flight until its reply (client_trk_done). */
struct client_trk_write {
    size_t n, cap;  /* keys, allocated */
    char **keys;    /* owned copies */
    size_t *lens;   /* their lengths */
    bool flush;     /* FLUSHALL / FLUSHDB */
};

/* One request whose reply has not been written to the output yet. */
struct client_slot {
    TAILQ_ENTRY(client_slot) link; /* in client.slots, request order */
    struct client *c;              /* owner; NULL once orphaned (client closed) */
    bool ready;                    /* reply complete (in buf) */
    bool batched;                  /* a batched GET: counted in client.batch_inflight */
    bool held;                     /* a GET held by a hot-key lease: counted in client.held */
    client_slot_fn *fn;            /* detached slot: receives the reply (c is NULL) */
    void *fn_data;                 /* its argument (borrowed) */
    struct evbuffer *buf;          /* the reply while it waits (owned), or NULL */
    client_filter_fn *filter;      /* rewrites the upstream reply, or NULL */
    void *filter_data;             /* filter's data (owned by the filter call) */
    struct cmdstats_req req;       /* its request's command and start, for cmdstats */
    struct client_trk_write *trk;  /* a write's keys for CLIENT TRACKING (owned), or NULL */
    struct proxy *trk_px;          /* its proxy (the slot may outlive its client) */
};

TAILQ_HEAD(client_slot_list, client_slot);

/* States of a client connection. */
enum client_state {
    CLIENT_ACTIVE = 0, /* reading and answering requests */
    CLIENT_DRAINING,   /* QUIT, protocol error or shutdown: reads nothing more,
                          closes when every reply is written */
    CLIENT_CLOSED      /* socket dead; waiting in proxy.reaped to be freed */
};

struct client {
    TAILQ_ENTRY(client) link;      /* in proxy.clients or proxy.reaped */
    struct proxy *px;              /* borrowed */
    uint64_t id;                   /* CLIENT ID, from 1 */
    enum client_state state;       /* see enum client_state */
    struct netio *io;              /* the socket and its buffers (owned, closes fd on free) */
    struct resp_parser *parser;    /* request parser (owned) */
    size_t need;                   /* input bytes needed before parsing again */
    struct client_slot_list slots; /* replies pending, request order (owned) */
    uint64_t nslots;               /* entries in slots */
    struct upstream_conn *up;      /* upstream connection of this client (borrowed) */
    int db;                        /* SELECTed database, 0 on connect (as Redis) */
    int proto;                     /* RESP version (HELLO): 2 on connect, or 3 */
    struct keyspace *ks;           /* that database's protections (borrowed, keyspace.h) */
    struct batch *batch;           /* ks's GET batcher of the client's connection (borrowed) */
    uint64_t batch_epoch;          /* batcher epoch of the last batched GET */
    uint64_t batch_inflight;       /* batched GETs not answered yet */
    bool batch_wait;               /* input held until the batched/held GETs are answered */
    bool pin_idle_wait;            /* input held: a request bulwark answers itself (HELLO,
                                      CLIENT …, SELECT) waits until nothing is due on the
                                      session's connection (or the session ends), as Redis
                                      reads nothing from a client blocked or mid-reply */
    bool drain_wait;               /* input held until every reply due is in: a request
                                      that starts a pinned session (its writes must come
                                      first), or a HELLO that moves the client to the
                                      shared connection of the other protocol */
    struct upstream_waiter *pin_waiter; /* input held: queued for a dedicated connection
                                      (upstream-pinned-max in use; the pool's handle) */
    bool pin_woken;                /* the pool woke us: a dedicated connection is ours */
    bool pin_timed_out;            /* the wait ended without one: the held request is refused */
    bool multi_refused;            /* a MULTI was refused: requests up to EXEC/DISCARD are a
                                      failed transaction, never run outside one */
    bool watch_refused;            /* a WATCH was refused: the next MULTI is refused too */
    uint64_t held;                 /* GETs held by hot-key leases, not answered yet */
    struct pinned *pin;            /* dedicated-connection session (owned), or NULL */
    struct client_slot *pin_slot;  /* the slot the pinned replies go to (in slots) */
    bool authenticated;            /* AUTH passed (or no requirepass) */
    bool paused;                   /* reading stopped by back-pressure */
    bool eof;                      /* the client closed its side: nothing more is read;
                                      replies go straight to the socket (client_eof_push) */
    bool close_asap;               /* passed client-output-buffer-limit: closed from
                                      resume_ev on the next loop turn, no reply kept */
    size_t parked_bytes;           /* bytes in the bufs of ready slots (and the pinned
                                      slot) not yet moved to the output */
    uint64_t obl_soft_since_ms;    /* when the held bytes reached the soft limit, monotonic
                                      ms; 0 = below it */
    bool in_process;               /* inside client_process_input() */
    bool trk_after;                /* CLIENT TRACKING: the command's end (its own
                                      invalidations, CACHING's reset) waits until the
                                      session's replies are in (tracking_after_command) */
    bool trk_after_client;         /* that command was CLIENT … */
    struct client_trk_write *trk_cur; /* the current request's write keys, until its slot
                                      takes them (owned) */
    struct client_trk_write *trk_pin; /* writes sent in the session whose replies are not
                                      all in (owned) */
    struct client_trk_write *trk_mreads; /* keys read inside MULTI: remembered once EXEC ran
                                      (after its writes, as Redis runs them) (owned) */
    struct client_trk_write *trk_mdirty; /* of those, keys the transaction writes after
                                      reading them: told once remembered (owned) */
    const char *move_raw;          /* the big request being handled, whose bytes are at the
                                      head of the input: client_forward() moves them to the
                                      upstream (whole chains, no copy); NULL otherwise */
    bool moved;                    /* client_forward() moved move_raw's bytes out */
    const struct resp_request *pins_req; /* the request pins is about (client_pins), or NULL */
    bool pins;                     /* pinned_needed(pins_req) */
    struct event *resume_ev;       /* zero-timeout event that resumes input processing on
                                      the next loop turn (owned): completions never re-enter
                                      client_process_input() from another module's loop */
    bool is_unix;                  /* accepted on the unix socket */
    char *name;                    /* CLIENT SETNAME (owned), NULL when unset */
    char addr[64];                 /* peer "ip:port" */
    char laddr[64];                /* local "ip:port" */
    uint64_t created_ms;           /* accept time, monotonic ms */
    uint64_t last_ms;              /* last read or write, monotonic ms */
    uint64_t commands;             /* requests handled */
    char last_cmd[32];             /* name of the last command, lowercase */
};

static void client_process_input(struct client *c);
static void client_schedule_input(struct client *c);
static void client_encode_request(const struct resp_request *req, struct evbuffer *out);
static void client_pinned_request(struct client *c, const struct cmd_info *ci,
                                  const struct resp_request *req);
static void client_pinned_refuse(struct client *c, const struct resp_request *req,
                                 const char *why);
static bool client_may_pin(const struct client *c, const struct resp_request *req);
static bool client_must_queue(struct client *c, const struct resp_request *req);
static void client_pinned_wake(void *arg, bool timed_out);
static void client_check_output(struct client *c);
static void client_eof_push(struct client *c);
static bool client_query_buffer_over(struct client *c);
static void client_info_line(const struct client *c, char *out, size_t size);
static bool client_handle_refused(struct client *c, const struct resp_request *req);
static void client_pinned_unavailable(struct client *c, const struct resp_request *req,
                                      const char *err);
static bool client_pinned_is_local(const struct resp_request *req);
static bool client_subscribed_resp2_harmless(const struct client *c,
                                             const struct resp_request *req);
static void client_handle(struct client *c, const struct resp_request *req);
static void client_handle_req(struct client *c, const struct resp_request *req);
static void client_handle_pinned(struct client *c, const struct resp_request *req);
static bool client_is_denied(const struct proxy *px, const char *name, size_t len);
static bool client_pins(struct client *c, const struct resp_request *req);

/* Redis's error for a server with no room (networking.c, maxclients). */
#define CLIENT_NO_ROOM "ERR max number of clients reached"
/* Redis's EXEC of a transaction flagged by an error (multi.c). */
#define CLIENT_EXECABORT "-EXECABORT Transaction discarded because of previous errors.\r\n"

/* ---- reply slots ---------------------------------------------------------- */

/*
 * Freed slots kept for reuse by this worker: one slot per request cost a
 * calloc and a free on every request (callgrind). At most
 * CLIENT_SLOT_CACHE; emptied by client_free_all().
 */
#define CLIENT_SLOT_CACHE 4096
static _Thread_local struct client_slot *client_slot_cache[CLIENT_SLOT_CACHE];
static _Thread_local size_t client_slot_cached;
static _Thread_local bool client_slot_nocache; /* client_free_all() ran: free for real */

/* A zeroed slot, from the cache when it has one. */
static struct client_slot *
client_slot_alloc(void)
{
    if (client_slot_cached == 0)
        return bw_calloc(1, sizeof(struct client_slot));
    struct client_slot *s = client_slot_cache[--client_slot_cached];
    memset(s, 0, sizeof(*s));
    return s;
}

static struct client_slot *
client_slot_new(struct client *c)
{
    struct client_slot *s = client_slot_alloc();
    s->c = c;
    cmdstats_slot(&c->px->cmdstats, &s->req);
    TAILQ_INSERT_TAIL(&c->slots, s, link);
    c->nslots++;
    return s;
}

/* Parked bytes of c: every change to a slot's buf. */
static void
client_count_parked(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct client *c = arg;
    (void)buf;
    c->parked_bytes += info->n_added;
    c->parked_bytes -= BW_MIN(info->n_deleted, c->parked_bytes);
    if (info->n_added > 0)
        client_check_output(c);
}

/* s's buf, made when missing, its bytes counted in c->parked_bytes. */
static struct evbuffer *
client_slot_buf(struct client *c, struct client_slot *s)
{
    if (s->buf == NULL) {
        s->buf = evbuffer_new();
        BW_ASSERT(s->buf != NULL);
        BW_ASSERT(evbuffer_add_cb(s->buf, client_count_parked, c) != NULL);
    }
    return s->buf;
}

static void client_trk_release(struct proxy *px, struct client_trk_write *w, uint64_t writer);

static void
client_slot_free(struct client_slot *s)
{
    if (s->buf != NULL)
        evbuffer_free(s->buf);
    if (s->trk != NULL) /* orphaned before its reply: forget the write */
        client_trk_release(s->trk_px, s->trk, 0);
    if (client_slot_cached < CLIENT_SLOT_CACHE && !client_slot_nocache)
        client_slot_cache[client_slot_cached++] = s;
    else
        bw_free(s);
}

static void
client_maybe_finish(struct client *c)
{
    if (c->state == CLIENT_DRAINING && c->nslots == 0 &&
        evbuffer_get_length(netio_output(c->io)) == 0)
        client_close(c);
}

static void
client_maybe_resume(struct client *c)
{
    if (!c->paused || c->state != CLIENT_ACTIVE)
        return;
    uint64_t max = (uint64_t)c->px->cfg.client_max_pending;
    if (c->nslots > max / 2 ||
        evbuffer_get_length(netio_output(c->io)) > CLIENT_OUTPUT_PAUSE_BYTES / 2)
        return;
    c->paused = false;
    if (!c->eof)
        netio_enable_read(c->io, true);
    client_schedule_input(c);
}

/* ---- clients by id -------------------------------------------------------- */

static size_t
client_id_slot(uint64_t id, size_t cap)
{
    return (size_t)((id * 0x9E3779B97F4A7C15ull) >> 32) & (cap - 1);
}

static void
client_index_add(struct proxy *px, struct client *c)
{
    if ((px->by_id_n + 1) * 2 > px->by_id_cap) { /* keep it at most half full */
        size_t cap = BW_MAX(px->by_id_cap * 2, (size_t)64);
        struct client **old = px->by_id;
        size_t oldcap = px->by_id_cap;
        px->by_id = bw_calloc(cap, sizeof(*px->by_id));
        px->by_id_cap = cap;
        px->by_id_n = 0;
        for (size_t i = 0; i < oldcap; i++)
            if (old[i] != NULL)
                client_index_add(px, old[i]);
        bw_free(old);
    }
    size_t i = client_id_slot(c->id, px->by_id_cap);
    while (px->by_id[i] != NULL)
        i = (i + 1) & (px->by_id_cap - 1);
    px->by_id[i] = c;
    px->by_id_n++;
}

static void
client_index_remove(struct proxy *px, struct client *c)
{
    size_t mask = px->by_id_cap - 1, i = client_id_slot(c->id, px->by_id_cap);
    while (px->by_id[i] != c)
        i = (i + 1) & mask;
    px->by_id[i] = NULL;
    px->by_id_n--;
    /* backward shift: entries after the hole that probed past it move up */
    for (size_t j = (i + 1) & mask; px->by_id[j] != NULL; j = (j + 1) & mask) {
        size_t home = client_id_slot(px->by_id[j]->id, px->by_id_cap);
        if (((j - home) & mask) >= ((j - i) & mask)) {
            px->by_id[i] = px->by_id[j];
            px->by_id[j] = NULL;
            i = j;
        }
    }
}

struct client *
client_by_id(struct proxy *px, uint64_t id)
{
    if (px->by_id_cap == 0)
        return NULL;
    size_t mask = px->by_id_cap - 1;
    for (size_t i = client_id_slot(id, px->by_id_cap); px->by_id[i] != NULL; i = (i + 1) & mask)
        if (px->by_id[i]->id == id)
            return px->by_id[i];
    return NULL;
}

/* ---- CLIENT TRACKING -------------------------------------------------------- */

bool
client_tracking_lookup(void *arg, uint64_t id, struct tracking_peer *out)
{
    struct client *c = client_by_id(arg, id);
    if (c == NULL || c->state == CLIENT_CLOSED)
        return false;
    out->resp = c->proto;
    out->pubsub = c->pin != NULL && pinned_subscriptions(c->pin) > 0;
    return true;
}

void
client_tracking_send(void *arg, uint64_t to, const char *bytes, size_t len)
{
    struct client *c = client_by_id(arg, to);
    if (c == NULL || c->state == CLIENT_CLOSED || c->close_asap)
        return;
    struct client_slot *s = c->pin_slot;
    if (s != NULL && TAILQ_LAST(&c->slots, client_slot_list) == s) {
        /* a session streams into its slot, whole replies at a time */
        if (TAILQ_FIRST(&c->slots) == s)
            evbuffer_add(netio_output(c->io), bytes, len);
        else
            evbuffer_add(client_slot_buf(c, s), bytes, len);
        return;
    }
    client_reply_raw(c, bytes, len);
}

void
client_tracking_key_changed(struct proxy *px, const char *key, size_t len, uint64_t writer)
{
    if (!tracking_any(px->tracking))
        return;
    tracking_key_changed(px->tracking, key, len, writer);
    event_active(px->tracking_ev, EV_TIMEOUT, 0); /* BCAST: at the end of this turn */
}

/* Append a copy of key to *list (made when NULL). */
static void
client_trk_push(struct client_trk_write **list, const char *key, size_t len)
{
    struct client_trk_write *w = *list;
    if (w == NULL)
        w = *list = bw_calloc(1, sizeof(*w));
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
client_trk_free_list(struct client_trk_write *w)
{
    if (w == NULL)
        return;
    for (size_t i = 0; i < w->n; i++)
        bw_free(w->keys[i]);
    bw_free(w->keys);
    bw_free(w->lens);
    bw_free(w);
}

/*
 * The change is told when Redis has made it: when the keyspace watch names
 * the key (its echo, attributed to the writer through px->trk_writes), and
 * at the latest when the write's reply arrives (client_trk_done), never when
 * the write is sent: a read that reached Redis before the write would
 * otherwise put the old value back in a client's cache, untold.
 */
void
client_tracking_write(struct proxy *px, const char *key, size_t len, uint64_t writer)
{
    struct client *c = client_by_id(px, writer);
    if (!tracking_any(px->tracking) || c == NULL)
        return;
    if (c->trk_mreads != NULL) /* a transaction writes a key it read: told after EXEC */
        for (size_t i = 0; i < c->trk_mreads->n; i++)
            if (c->trk_mreads->lens[i] == len && memcmp(c->trk_mreads->keys[i], key, len) == 0) {
                client_trk_push(&c->trk_mdirty, key, len);
                break;
            }
    if (px->trk_writes == NULL)
        px->trk_writes = inflight_new();
    inflight_add(px->trk_writes, key, len, writer);
    client_trk_push(&c->trk_cur, key, len);
}

uint64_t
client_tracking_echo_writer(struct proxy *px, const char *key, size_t len)
{
    return px->trk_writes != NULL ? inflight_echo(px->trk_writes, key, len) : 0;
}

/*
 * Forget write w of writer (0: the client is gone, nobody is told): its
 * in-flight entries go; a key the watch never named while it is down is
 * told now, attributed to writer.
 */
static void
client_trk_release(struct proxy *px, struct client_trk_write *w, uint64_t writer)
{
    for (size_t i = 0; i < w->n; i++) {
        if (px->trk_writes != NULL) {
            uint64_t who = writer;
            if (who == 0) /* the client is gone: drop the latest write's entry */
                who = inflight_echo(px->trk_writes, w->keys[i], w->lens[i]);
            bool seen = inflight_done(px->trk_writes, w->keys[i], w->lens[i], who);
            if (writer != 0 && !seen && !watch_tracking_on(px->watch))
                client_tracking_key_changed(px, w->keys[i], w->lens[i], writer);
        }
        bw_free(w->keys[i]);
    }
    if (w->flush && px->trk_flushes > 0)
        px->trk_flushes--;
    bw_free(w->keys);
    bw_free(w->lens);
    bw_free(w);
}

/*
 * The reads of a transaction that ran: remembered now, after its writes were
 * told; a key it wrote after reading it is told now (after EXEC's reply).
 */
static void
client_trk_mreads(struct client *c)
{
    struct client_trk_write *w = c->trk_mreads, *d = c->trk_mdirty;
    c->trk_mreads = c->trk_mdirty = NULL;
    for (size_t i = 0; i < w->n; i++) {
        struct tracking_arg k = {w->keys[i], w->lens[i]};
        tracking_remember_keys(c->px->tracking, c->id, &k, 1);
    }
    for (size_t i = 0; d != NULL && i < d->n; i++)
        client_tracking_key_changed(c->px, d->keys[i], d->lens[i], c->id);
    client_trk_free_list(w);
    client_trk_free_list(d);
}

/* Merge write src into *dst (a session's writes in flight); src is freed. */
static void
client_trk_merge(struct client_trk_write **dst, struct client_trk_write *src)
{
    if (*dst == NULL) {
        *dst = src;
        return;
    }
    struct client_trk_write *d = *dst;
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
    bw_free(src->keys);
    bw_free(src->lens);
    bw_free(src);
}

/*
 * Write w of c has its reply: take in what the watch has delivered (on one
 * host Redis wrote the write's tracking message before the reply), forget
 * it, and send c its own invalidations (after this reply, as Redis does).
 */
static void
client_trk_done(struct client *c, struct client_trk_write *w)
{
    (void)watch_drain(c->px->watch);
    client_trk_release(c->px, w, c->id);
    tracking_after_command(c->px->tracking, c->id, c->pin != NULL && pinned_in_multi(c->pin),
                           true /* CACHING is not reset here */);
}

#define CLIENT_TRACK_STACK_KEYS 32

/* A read command of a tracking client: its keys are remembered (default mode). */
static void
client_track_read(struct client *c, const struct cmd_info *ci, const struct resp_request *req)
{
    /* scripts: their declared keys, whether the script reads them or not
     * (Redis remembers them only when it ran a read; bulwark cannot see that) */
    if ((!(ci->flags & CMD_READONLY) && ci->keys_kind != CMD_KEYS_EVAL) ||
        (ci->flags & CMD_PUBSUB) || !tracking_is_on(c->px->tracking, c->id))
        return;
    const char *sargv[CLIENT_TRACK_STACK_KEYS];
    size_t slen[CLIENT_TRACK_STACK_KEYS];
    int sidx[CLIENT_TRACK_STACK_KEYS];
    struct tracking_arg skeys[CLIENT_TRACK_STACK_KEYS];
    bool heap = req->argc > CLIENT_TRACK_STACK_KEYS;
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
    for (int i = 0; i < nk; i++)
        keys[i] = (struct tracking_arg){argv[idx[i]], lens[idx[i]]};
    if (nk > 0 && c->pin != NULL && pinned_in_multi(c->pin)) {
        for (int i = 0; i < nk; i++)
            client_trk_push(&c->trk_mreads, keys[i].ptr, keys[i].len);
    } else if (nk > 0) {
        tracking_remember_keys(c->px->tracking, c->id, keys, (size_t)nk);
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
static void
client_track_script(struct client *c, const struct cmd_info *ci, const struct resp_request *req)
{
    if (ci->keys_kind != CMD_KEYS_EVAL || (ci->flags & CMD_READONLY) || req->argc < 3 ||
        req->argc > CLIENT_TRACK_STACK_KEYS)
        return;
    const char *argv[CLIENT_TRACK_STACK_KEYS];
    size_t lens[CLIENT_TRACK_STACK_KEYS];
    int idx[CLIENT_TRACK_STACK_KEYS];
    for (int i = 0; i < req->argc; i++) {
        argv[i] = req->argv[i].ptr;
        lens[i] = req->argv[i].len;
    }
    int nk = cmd_get_keys(ci, req->argc, argv, lens, idx, req->argc);
    for (int i = 0; i < nk; i++)
        client_tracking_write(c->px, argv[idx[i]], lens[idx[i]], c->id);
}

/* FLUSHALL / FLUSHDB through bulwark: the watch's null is this client's. */
static void
client_track_flush(struct client *c, const struct resp_request *req)
{
    if (!tracking_any(c->px->tracking) ||
        !(resp_arg_is(&req->argv[0], "flushall") || resp_arg_is(&req->argv[0], "flushdb")))
        return;
    if (c->trk_cur == NULL)
        c->trk_cur = bw_calloc(1, sizeof(*c->trk_cur));
    c->trk_cur->flush = true;
    c->px->trk_flushes++;
    c->px->trk_flush_writer = c->id;
}

/* The end of a command of c for tracking, once its replies are due in order. */
static void
client_track_after(struct client *c, bool was_client_cmd)
{
    c->trk_after = false;
    tracking_after_command(c->px->tracking, c->id, c->pin != NULL && pinned_in_multi(c->pin),
                           was_client_cmd);
}

/* Move every ready reply at the head of the FIFO to the output. */
static void
client_flush(struct client *c)
{
    struct evbuffer *out = netio_output(c->io);
    struct client_slot *s;

    while ((s = TAILQ_FIRST(&c->slots)) != NULL && s->ready) {
        if (s->buf != NULL)
            evbuffer_add_buffer(out, s->buf);
        cmdstats_done(&c->px->cmdstats, &s->req, stats_loop_us(c->px->base));
        TAILQ_REMOVE(&c->slots, s, link);
        c->nslots--;
        client_slot_free(s);
    }
    if (c->eof) {
        client_eof_push(c); /* may close c */
        if (c->state == CLIENT_CLOSED)
            return;
        if (c->nslots == 0)
            client_schedule_input(c); /* what is left of its input, then close */
    }
    client_maybe_finish(c);
    if (c->drain_wait && c->nslots == 0 && c->state == CLIENT_ACTIVE) {
        c->drain_wait = false; /* every earlier request is answered: the session may start */
        client_schedule_input(c);
    }
    if (c->state == CLIENT_ACTIVE)
        client_maybe_resume(c);
}

struct evbuffer *
client_reply_target(struct client *c)
{
    if (TAILQ_EMPTY(&c->slots))
        return netio_output(c->io);
    struct client_slot *s = client_slot_new(c);
    s->ready = true;
    return client_slot_buf(c, s);
}

void
client_reply_raw(struct client *c, const char *data, size_t len)
{
    evbuffer_add(client_reply_target(c), data, len);
}

void
client_reply_error(struct client *c, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    n = BW_MIN(n, (int)sizeof(msg) - 1);
    /* Errors are one line: newlines become spaces, as Redis's addReplyError. */
    for (int i = 0; i < n; i++)
        if (msg[i] == '\r' || msg[i] == '\n')
            msg[i] = ' ';
    struct evbuffer *out = client_reply_target(c);
    evbuffer_add(out, "-", 1);
    evbuffer_add(out, msg, (size_t)n);
    evbuffer_add(out, "\r\n", 2);
}

void
client_reply_status(struct client *c, const char *status)
{
    evbuffer_add_printf(client_reply_target(c), "+%s\r\n", status);
}

void
client_reply_bulk(struct client *c, const char *data, size_t len)
{
    struct evbuffer *out = client_reply_target(c);
    evbuffer_add_printf(out, "$%zu\r\n", len);
    evbuffer_add(out, data, len);
    evbuffer_add(out, "\r\n", 2);
}

void
client_reply_int(struct client *c, long long v)
{
    evbuffer_add_printf(client_reply_target(c), ":%lld\r\n", v);
}

void
client_reply_nil(struct client *c)
{
    client_encode_nil(c, client_reply_target(c));
}

int
client_proto(const struct client *c)
{
    return c->proto;
}

void
client_encode_nil(const struct client *c, struct evbuffer *out)
{
    if (c->proto == 3)
        evbuffer_add(out, "_\r\n", 3);
    else
        evbuffer_add(out, "$-1\r\n", 5);
}

void
client_encode_map_len(const struct client *c, struct evbuffer *out, size_t pairs)
{
    if (c->proto == 3)
        evbuffer_add_printf(out, "%%%zu\r\n", pairs);
    else
        evbuffer_add_printf(out, "*%zu\r\n", 2 * pairs);
}

void
client_encode_verbatim(const struct client *c, struct evbuffer *out, struct evbuffer *text)
{
    size_t len = evbuffer_get_length(text);
    if (c->proto == 3)
        evbuffer_add_printf(out, "=%zu\r\ntxt:", len + 4);
    else
        evbuffer_add_printf(out, "$%zu\r\n", len);
    evbuffer_add_buffer(out, text);
    evbuffer_add(out, "\r\n", 2);
}

/*
 * A whole reply that is RESP2's null (a bulwark-made or RESP2-fetched nil:
 * the gate's, a hot key's lease, a coalesced GET's) for a RESP3 client:
 * RESP3's null. Redis never sends "$-1" or "*-1" to a RESP3 client, so
 * nothing meant for one is ever rewritten wrongly.
 */
static bool
client_resp3_null(const struct client *c, const char **data, size_t *len)
{
    if (c->proto != 3 || *len != 5 || ((*data)[0] != '$' && (*data)[0] != '*') ||
        memcmp(*data + 1, "-1\r\n", 4) != 0)
        return false;
    *data = "_\r\n";
    *len = 3;
    return true;
}

void
client_close_after_reply(struct client *c)
{
    if (c->state == CLIENT_ACTIVE) {
        c->state = CLIENT_DRAINING;
        netio_enable_read(c->io, false);
    }
    client_flush(c);
}

void
client_slot_joined_batch(struct client_slot *s, uint64_t epoch)
{
    if (s->c != NULL)
        s->c->batch_epoch = epoch;
}

struct client_slot *
client_slot_new_batched(struct client *c, uint64_t epoch)
{
    struct client_slot *s = client_slot_new(c);
    s->batched = true;
    c->batch_epoch = epoch;
    c->batch_inflight++;
    c->px->stats.forwarded++;
    return s;
}

struct client_slot *
client_slot_new_detached(client_slot_fn *fn, void *data)
{
    struct client_slot *s = client_slot_alloc();
    s->fn = fn;
    s->fn_data = data;
    return s;
}

/*
 * Complete s with len bytes: copied from data, or moved from the head of
 * src when src is not NULL (whole chains change hands).
 */
static void
client_slot_complete(struct client_slot *s, const char *data, struct evbuffer *src, size_t len)
{
    struct client *c = s->c;
    if (s->fn != NULL) {
        s->fn(s->fn_data, src != NULL ? (const char *)evbuffer_pullup(src, (ev_ssize_t)len) : data,
              len);
        client_slot_free(s);
        return;
    }
    if (c == NULL) {
        client_slot_free(s);
        return;
    }
    if (s->batched)
        c->batch_inflight--;
    if (s->held)
        c->held--;
    char head[5];
    if (src != NULL && c->proto == 3 && len == 5) {
        /* RESP2's null from a RESP2 source, moved: a RESP3 client gets its own */
        if (evbuffer_copyout(src, head, 5) == 5 && (head[0] == '$' || head[0] == '*') &&
            memcmp(head + 1, "-1\r\n", 4) == 0) {
            evbuffer_drain(src, 5);
            src = NULL;
            data = head;
        }
    }
    if (src == NULL)
        (void)client_resp3_null(c, &data, &len);
    struct evbuffer *out = TAILQ_FIRST(&c->slots) == s ? netio_output(c->io) : NULL;
    if (c->close_asap)
        ; /* closing for its output limit: the reply is dropped */
    else if (src != NULL)
        evbuffer_remove_buffer(src, out != NULL ? out : client_slot_buf(c, s), len);
    else
        evbuffer_add(out != NULL ? out : client_slot_buf(c, s), data, len);
    s->ready = true;
    client_flush(c);
    if (c->batch_wait && c->batch_inflight == 0 && c->held == 0 && c->state == CLIENT_ACTIVE) {
        c->batch_wait = false;
        client_schedule_input(c);
    }
}

void
client_slot_finish(struct client_slot *s, const char *data, size_t len)
{
    client_slot_complete(s, data, NULL, len);
}

void
client_slot_finish_move(struct client_slot *s, struct evbuffer *src, size_t len)
{
    client_slot_complete(s, NULL, src, len);
}

struct upstream_conn *
client_upstream(const struct client *c)
{
    return c->up;
}

struct batch *
client_batch(const struct client *c)
{
    return c->batch;
}

void
client_slot_mark_held(struct client_slot *s)
{
    s->held = true;
    s->c->held++;
}

uint64_t
client_batch_epoch(const struct client *c)
{
    return c->batch_epoch;
}

uint64_t
client_batch_inflight(const struct client *c)
{
    return c->batch_inflight;
}

/* ---- forwarding ----------------------------------------------------------- */

/* Upstream reply (or failure) for the slot in privdata. */
static void
client_upstream_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct client_slot *s = privdata;
    struct client *c = s->c;

    if (c == NULL) { /* orphaned: the client is gone */
        if (s->filter != NULL)
            s->filter(NULL, NULL, 0, NULL, NULL, s->filter_data);
        client_slot_free(s);
        return;
    }
    bool head = TAILQ_FIRST(&c->slots) == s;
    struct evbuffer *out = head ? netio_output(c->io) : client_slot_buf(c, s);
    if (c->close_asap) { /* closing for its output limit: the reply is dropped */
        if (s->filter != NULL)
            s->filter(NULL, NULL, 0, NULL, NULL, s->filter_data);
    } else if (s->filter != NULL)
        s->filter(c, reply, len, err, out, s->filter_data);
    else if (reply != NULL)
        evbuffer_remove_buffer(reply, out, len);
    else
        evbuffer_add(out, err, strlen(err));
    if (reply == NULL)
        c->px->stats.upstream_errors++;
    s->ready = true;
    if (s->trk != NULL) { /* a write: its invalidations, its own after this reply */
        struct client_trk_write *w = s->trk;
        s->trk = NULL;
        client_trk_done(c, w);
    }
    client_flush(c);
}

void
client_forward(struct client *c, const char *cmd, size_t len, client_filter_fn *filter,
               void *data)
{
    const char *err;
    if (c->batch != NULL)
        batch_before_forward(c->batch, c);
    struct client_slot *s = client_slot_new(c);
    s->filter = filter;
    s->filter_data = data;
    s->trk = c->trk_cur; /* a write's keys, for CLIENT TRACKING: told by its reply */
    s->trk_px = c->px;
    c->trk_cur = NULL;
    c->px->stats.forwarded++;
    int rc;
    if (cmd == c->move_raw) { /* the big request at the head of the input: moved */
        rc = upstream_send_db_move(c->up, c->db, netio_input(c->io), len, client_upstream_cb, s,
                                   &err);
        c->moved = rc == BW_OK;
    } else {
        rc = upstream_send_db(c->up, c->db, cmd, len, client_upstream_cb, s, &err);
    }
    if (rc != BW_OK)
        client_upstream_cb(s, NULL, 0, err);
}

/* An inline request as RESP multibulk, appended to out. */
static void
client_encode_request(const struct resp_request *req, struct evbuffer *out)
{
    evbuffer_add_printf(out, "*%d\r\n", req->argc);
    for (int i = 0; i < req->argc; i++) {
        evbuffer_add_printf(out, "$%zu\r\n", req->argv[i].len);
        evbuffer_add(out, req->argv[i].ptr, req->argv[i].len);
        evbuffer_add(out, "\r\n", 2);
    }
}

void
client_forward_request(struct client *c, const struct resp_request *req,
                       client_filter_fn *filter, void *data)
{
    if (req->raw != NULL) {
        client_forward(c, req->raw, req->raw_len, filter, data);
        return;
    }
    struct evbuffer *tmp = evbuffer_new();
    client_encode_request(req, tmp);
    size_t len = evbuffer_get_length(tmp);
    client_forward(c, (const char *)evbuffer_pullup(tmp, -1), len, filter, data);
    evbuffer_free(tmp);
}

/* ---- request dispatch ----------------------------------------------------- */

static bool
client_is_denied(const struct proxy *px, const char *name, size_t len)
{
    for (size_t i = 0; i < px->cfg.deny_commands_count; i++) {
        const char *d = px->cfg.deny_commands[i];
        if (strlen(d) == len && strncasecmp(d, name, len) == 0)
            return true;
    }
    return false;
}

/* Build argv/argvlen arrays for the command module's error helpers. */
static void
client_unknown_command(struct client *c, const struct resp_request *req)
{
    char out[4096];
    int argc = BW_MIN(req->argc, 64);
    const char *argv[64];
    size_t argvlen[64];
    for (int i = 0; i < argc; i++) {
        argv[i] = req->argv[i].ptr;
        argvlen[i] = req->argv[i].len;
    }
    size_t n = cmd_unknown_command_error(argc, argv, argvlen, out, sizeof(out));
    client_reply_raw(c, out, BW_MIN(n, sizeof(out) - 1));
}

/*
 * Resolve the command (container commands to their subcommand). NULL after
 * replying with Redis's unknown-command / unknown-subcommand error, or
 * *forward_unknown set when the table is only the built-in fallback.
 */
static const struct cmd_info *
client_lookup(struct client *c, const struct resp_request *req, bool *forward_unknown)
{
    struct proxy *px = c->px;
    const struct cmd_info *ci = cmd_lookup(px->cmds, req->argv[0].ptr, req->argv[0].len);
    *forward_unknown = false;
    if (ci == NULL) {
        if (!px->cmds_learned && c->authenticated)
            *forward_unknown = true;
        else
            client_unknown_command(c, req);
        return NULL;
    }
    if (ci->subcommands == NULL || req->argc < 2)
        return ci;
    const struct cmd_info *sub = cmd_lookup(ci->subcommands, req->argv[1].ptr, req->argv[1].len);
    if (sub != NULL)
        return sub;
    if (!px->cmds_learned && c->authenticated) {
        *forward_unknown = true;
        return NULL;
    }
    char out[512];
    size_t n = cmd_unknown_subcommand_error(ci, req->argv[1].ptr, req->argv[1].len, out,
                                            sizeof(out));
    client_reply_raw(c, out, BW_MIN(n, sizeof(out) - 1));
    return NULL;
}

/*
 * The error for a request of a pinned client that bulwark must not forward
 * (denied, refused, or answered by bulwark itself) while the session is
 * inside MULTI or has a reply due: Redis's own no-multi error for a denied
 * no-multi command inside MULTI, else bulwark's refusal. Into err (size).
 */
static void
client_pinned_refusal(const struct client *c, const struct resp_request *req,
                      const struct cmd_info *pci, const struct cmd_info *sub, bool denied,
                      char *err, size_t size)
{
    int n = (int)BW_MIN(req->argv[0].len, 128);
    if (denied && pinned_in_multi(c->pin) && pci != NULL && (pci->flags & CMD_NO_MULTI))
        snprintf(err, size, "-ERR Command not allowed inside a transaction\r\n");
    else if (denied)
        snprintf(err, size, "-ERR command '%.*s' is disabled in bulwark (deny-commands)\r\n", n,
                 req->argv[0].ptr);
    else if (sub != NULL && sub->policy == LOCAL_REFUSED)
        local_refusal_error(sub, err, size);
    else if (pinned_in_multi(c->pin))
        snprintf(err, size, "-ERR %.*s inside MULTI is not supported by bulwark\r\n", n,
                 req->argv[0].ptr);
    else
        snprintf(err, size,
                 "-ERR %.*s behind a pending reply of a blocking command or WATCH is not "
                 "supported by bulwark\r\n",
                 n, req->argv[0].ptr);
}

/*
 * A request that needed a dedicated connection gets none (err: "ERR …").
 * A refused MULTI starts a failed transaction and a refused WATCH fails the
 * next one: nothing the client pipelined after them runs outside one.
 */
static void
client_pinned_unavailable(struct client *c, const struct resp_request *req, const char *err)
{
    client_reply_error(c, "%s", err);
    if (resp_arg_is(&req->argv[0], "multi"))
        c->multi_refused = true;
    else if (resp_arg_is(&req->argv[0], "watch"))
        c->watch_refused = true;
}

/* After a refused WATCH: the MULTI or WATCH that must be refused as well. */
static bool
client_refused_by_watch(const struct client *c, const struct resp_request *req)
{
    return c->watch_refused && ((resp_arg_is(&req->argv[0], "multi") && req->argc == 1) ||
                                (resp_arg_is(&req->argv[0], "watch") && req->argc >= 2));
}

/*
 * Requests after a MULTI or WATCH that got no dedicated connection. Up to
 * EXEC or DISCARD a refused MULTI is a failed transaction, as one with a
 * command Redis rejected: each request gets the no-room error, EXEC
 * -EXECABORT, DISCARD +OK (both also end a refused WATCH). After a refused
 * WATCH, MULTI and WATCH are refused the same way until UNWATCH. QUIT and
 * RESET end both and run. True when req was answered here.
 */
static bool
client_handle_refused(struct client *c, const struct resp_request *req)
{
    const struct resp_arg *a = &req->argv[0];
    if (resp_arg_is(a, "quit") || resp_arg_is(a, "reset")) {
        c->multi_refused = c->watch_refused = false;
        return false;
    }
    if (!c->multi_refused) {
        if (resp_arg_is(a, "unwatch"))
            c->watch_refused = false;
        if (!client_refused_by_watch(c, req))
            return false;
        client_pinned_unavailable(c, req, CLIENT_NO_ROOM);
        return true;
    }
    if (req->argc == 1 && (resp_arg_is(a, "exec") || resp_arg_is(a, "discard"))) {
        c->multi_refused = c->watch_refused = false;
        if (resp_arg_is(a, "exec"))
            client_reply_raw(c, CLIENT_EXECABORT, strlen(CLIENT_EXECABORT));
        else
            client_reply_status(c, "OK");
        return true;
    }
    client_reply_error(c, "%s", CLIENT_NO_ROOM);
    return true;
}

/* True when req passes admission (known, arity, AUTH, deny-commands), no reply. */
static bool
client_pin_admitted(const struct client *c, const struct resp_request *req)
{
    const struct proxy *px = c->px;
    const struct cmd_info *ci = cmd_lookup(px->cmds, req->argv[0].ptr, req->argv[0].len);
    if (ci != NULL && ci->subcommands != NULL && req->argc >= 2)
        ci = cmd_lookup(ci->subcommands, req->argv[1].ptr, req->argv[1].len);
    return ci != NULL && cmd_arity_ok(ci, req->argc) &&
           (c->authenticated || (ci->flags & CMD_NO_AUTH)) &&
           !client_is_denied(px, req->argv[0].ptr, req->argv[0].len);
}

/*
 * True when req (of an unpinned client with nothing due) would start a
 * session but no dedicated connection is free for it now, or others wait
 * ahead: it must queue. Not for what is refused anyway (admission, a failed
 * transaction, the wait already timed out).
 */
static bool
client_must_queue(struct client *c, const struct resp_request *req)
{
    bool woken = c->pin_woken; /* the first request parsed after a wake is the held one */
    c->pin_woken = false;
    if (!client_pins(c, req) || c->pin_timed_out || c->multi_refused || !client_may_pin(c, req) ||
        !client_pin_admitted(c, req) || client_refused_by_watch(c, req))
        return false;
    if (pinned_is_script(req))
        return false; /* no room: it runs on the shared connection (client_pinned_request) */
    return !upstream_pinned_room(c->px->pool, woken);
}

/* The pool's answer to a held request: a connection is free, or time is up. */
static void
client_pinned_wake(void *arg, bool timed_out)
{
    struct client *c = arg;
    c->pin_waiter = NULL; /* freed by the pool */
    if (timed_out)
        c->pin_timed_out = true;
    else
        c->pin_woken = true;
    client_schedule_input(c);
}

/*
 * A SELECT in a session that bulwark answers itself instead of forwarding:
 * an index beyond upstream-databases (when set, it may be fewer than
 * Redis's), or one sent while the session's replies are not
 * counted (pub/sub winding down), where its reply could not be matched and
 * the client's database would be lost.
 */
static bool
client_pinned_select_refused(const struct client *c, const struct resp_request *req)
{
    long long db;
    if (!resp_arg_is(&req->argv[0], "select") || req->argc != 2)
        return false;
    if (!pinned_counts_replies(c->pin))
        return true;
    /* Redis judges its own range (inside MULTI it queues and fails at EXEC) */
    return c->px->cfg.upstream_databases > 0 && resp_arg_ll(&req->argv[1], &db) &&
           db >= c->px->databases;
}

/*
 * A request of a client in a pinned session. Redis judges everything on the
 * dedicated connection, unknown commands included, except what bulwark
 * denies, refuses or answers itself (its CLIENT view, SELECT, HELLO): those
 * are never forwarded. With nothing due and outside MULTI bulwark answers
 * them in order; otherwise an unknown command holds their place and its
 * error is replaced by bulwark's (inside MULTI that aborts the transaction,
 * as Redis's own rejections do).
 */
static void
client_handle_pinned(struct client *c, const struct resp_request *req)
{
    struct proxy *px = c->px;
    const struct cmd_info *pci = cmd_lookup(px->cmds, req->argv[0].ptr, req->argv[0].len);
    const struct cmd_info *sub = pci;
    if (pci != NULL && pci->subcommands != NULL && req->argc >= 2)
        sub = cmd_lookup(pci->subcommands, req->argv[1].ptr, req->argv[1].len);
    bool denied = client_is_denied(px, req->argv[0].ptr, req->argv[0].len);
    bool refused = sub != NULL && sub->policy == LOCAL_REFUSED;
    bool noauth = !c->authenticated && (pci == NULL || !(pci->flags & CMD_NO_AUTH));
    bool bad_select = client_pinned_select_refused(c, req);
    if (!denied && !refused && !noauth && !bad_select && !client_pinned_is_local(req)) {
        client_pinned_request(c, pci, req);
        return;
    }
    if (!denied && !noauth && client_subscribed_resp2_harmless(c, req)) {
        /* RESP2 pub/sub: Redis refuses it with its exact error (and would
         * only show its own connection's view if not subscribed after all) */
        client_pinned_request(c, pci, req);
        return;
    }
    if (pinned_idle(c->pin) && !pinned_in_multi(c->pin)) {
        /* Nothing is due on the dedicated connection: bulwark's own
         * reply (its CLIENT name/id, a refusal) can go in between. */
        c->pin_slot->ready = true;
        c->pin_slot = NULL;
        client_flush(c);
        if (c->state == CLIENT_CLOSED)
            return; /* it had closed its side and its output could go (adversarial pass) */
        struct pinned *keep = c->pin;
        c->pin = NULL;
        client_handle_req(c, req);
        if (c->state == CLIENT_CLOSED) {
            pinned_free(keep); /* closed while bulwark answered: the session goes too */
            return;
        }
        c->pin = keep;
        pinned_follow_db(keep, c->db); /* a SELECT bulwark answered */
        pinned_follow_proto(keep, c->proto); /* a HELLO bulwark answered */
        c->pin_slot = client_slot_new(c);
        return;
    }
    if (noauth) {
        client_pinned_refuse(c, req, "NOAUTH Authentication required.");
        return;
    }
    char err[256];
    if (bad_select)
        snprintf(err, sizeof(err), "%s",
                 pinned_counts_replies(c->pin)
                     ? "-ERR DB index is out of range\r\n"
                     : "-ERR SELECT right after UNSUBSCRIBE is not supported by bulwark\r\n");
    else
        client_pinned_refusal(c, req, pci, sub, denied, err, sizeof(err));
    pinned_refuse_in_multi(c->pin, err);
}

/*
 * FLUSHALL, FLUSHDB, SWAPDB: writes that name no key (and COPY with options,
 * which may replace a key of another database). The hot caches are
 * emptied when one is forwarded, so a read the client pipelines after it is
 * not answered from before it (the watch's flush message comes later, and
 * SWAPDB has none).
 */
static bool
client_is_keyspace_wide(const struct resp_request *req)
{
    const struct resp_arg *a = &req->argv[0];
    return resp_arg_is(a, "flushall") || resp_arg_is(a, "flushdb") || resp_arg_is(a, "swapdb") ||
           (resp_arg_is(a, "copy") && req->argc > 3); /* COPY … DB n REPLACE: another db's key */
}

/* CLIENT LIST cmd=: a copy per request, without snprintf (it showed in profiles). */
static void
client_set_last_cmd(struct client *c, const char *name)
{
    size_t n = strlen(name);
    n = BW_MIN(n, sizeof(c->last_cmd) - 1);
    memcpy(c->last_cmd, name, n);
    c->last_cmd[n] = '\0';
}

/*
 * Handle one parsed request; with CLIENT TRACKING in use, Redis's steps
 * around it: the table's limit before, the command's end after (in a
 * session, once its replies are in: client_pinned_deliver).
 */
static void
client_handle(struct client *c, const struct resp_request *req)
{
    struct tracking *t = c->px->tracking;
    if (!tracking_any(t)) {
        client_handle_req(c, req);
        return;
    }
    tracking_limit(t, (uint64_t)c->px->cfg.tracking_table_max_keys, c->id);
    client_handle_req(c, req);
    if (c->trk_cur != NULL) { /* a write not forwarded on a shared connection */
        if (c->pin != NULL && c->state != CLIENT_CLOSED) {
            client_trk_merge(&c->trk_pin, c->trk_cur); /* in the session: told when answered */
            c->trk_after = true;
        } else {
            client_trk_release(c->px, c->trk_cur, 0); /* refused: nothing happened */
        }
        c->trk_cur = NULL;
    }
    if (c->state == CLIENT_CLOSED)
        return;
    bool was_client = resp_arg_is(&req->argv[0], "client");
    if (c->pin != NULL && !pinned_idle(c->pin)) {
        c->trk_after = true;
        c->trk_after_client = was_client;
        return;
    }
    client_track_after(c, was_client);
}

/* Handle one parsed request. */
static void
client_handle_req(struct client *c, const struct resp_request *req)
{
    struct proxy *px = c->px;
    bool forward_unknown;

    px->stats.total_commands++;
    c->commands++;
    if (c->pin == NULL && (c->multi_refused || c->watch_refused) && client_handle_refused(c, req))
        return;
    if (c->pin == NULL && req->argv[0].len == 7 && strncasecmp(req->argv[0].ptr, "bulwark", 7) == 0) {
        if (!c->authenticated)
            client_reply_error(c, "NOAUTH Authentication required.");
        else
            local_bulwark(c, req);
        return;
    }
    if (c->pin != NULL) {
        client_handle_pinned(c, req);
        return;
    }
    const struct cmd_info *ci = client_lookup(c, req, &forward_unknown);
    cmdstats_command(&px->cmdstats, ci);
    client_set_last_cmd(c, ci != NULL ? ci->fullname : "NULL");
    if (ci == NULL) {
        if (forward_unknown)
            client_forward_request(c, req, NULL, NULL);
        return;
    }
    if (!cmd_arity_ok(ci, req->argc)) {
        char out[256];
        size_t n = cmd_arity_error(ci, out, sizeof(out));
        client_reply_raw(c, out, BW_MIN(n, sizeof(out) - 1));
        return;
    }
    if (!c->authenticated && !(ci->flags & CMD_NO_AUTH)) {
        client_reply_error(c, "NOAUTH Authentication required.");
        return;
    }
    if (client_is_denied(px, req->argv[0].ptr, req->argv[0].len) &&
        !(req->argv[0].len == 6 && strncasecmp(req->argv[0].ptr, "config", 6) == 0)) {
        client_reply_error(c, "ERR command '%.*s' is disabled in bulwark (deny-commands)",
                           (int)BW_MIN(req->argv[0].len, 128), req->argv[0].ptr);
        return;
    }
    if (c->pin != NULL || (client_pins(c, req) && client_may_pin(c, req))) {
        client_pinned_request(c, ci, req);
        return;
    }
    if (ci == px->cmd_set) /* before the write's invalidation: its value wakes the held */
        hotkey_on_set(c->ks->hotkey, req);
    if (ci->flags & CMD_WRITE)
        gate_note_write(px, c->ks->hotkey, ci, req, c->id);
    if (client_is_keyspace_wide(req)) { /* no key to drop: every hot cache is emptied */
        keyspace_flushed(px);
        client_track_flush(c, req);
    }
    if (tracking_any(px->tracking))
        client_track_read(c, ci, req);
    if (ci->gate != NULL && gate_read(c, ci, req))
        return;
    if (ci == px->cmd_get && hotkey_get(c->ks->hotkey, c, req->argv[1].ptr, req->argv[1].len))
        return;
    if (ci == px->cmd_mget && c->batch != NULL && px->cfg.batch_max_keys > 0 && px->cfg.batch_mget) {
        batch_mget(c->batch, c, req, NULL);
        return;
    }
    if (ci == px->cmd_get && c->batch != NULL && px->cfg.batch_max_keys > 0) {
        batch_get(c->batch, c, req->argv[1].ptr, req->argv[1].len);
        return;
    }
    if (ci->policy != LOCAL_FORWARD && local_dispatch(c, ci, req))
        return;
    client_forward_request(c, req, NULL, NULL);
}

/*
 * A request of a pinned client, or one that starts a pinned state: it goes
 * to the client's dedicated connection as it came (keys of writes still
 * feed the Bloom filter, cache writes still get TTL jitter).
 */
static void
client_pinned_request(struct client *c, const struct cmd_info *ci, const struct resp_request *req)
{
    char err[512];
    if (c->pin == NULL) {
        if (c->pin_timed_out) { /* upstream-pinned-wait passed in the queue */
            c->pin_timed_out = false;
            client_pinned_unavailable(c, req, CLIENT_NO_ROOM);
            return;
        }
        c->pin = pinned_start(c, err, sizeof(err));
        if (c->pin == NULL && pinned_is_script(req)) {
            /* upstream-pinned-max reached: the script still runs, on the
             * shared connection, as it did before scripts were pinned */
            client_forward_request(c, req, NULL, NULL);
            return;
        }
        if (c->pin == NULL) {
            client_pinned_unavailable(c, req, err);
            return;
        }
        c->pin_slot = client_slot_new(c);
        if (c->batch != NULL)
            batch_before_forward(c->batch, c);
    }
    if (ci != NULL && ci->subcommands != NULL && req->argc >= 2)
        ci = cmd_lookup(ci->subcommands, req->argv[1].ptr, req->argv[1].len);
    if (ci != NULL && (ci->flags & CMD_WRITE))
        gate_note_write(c->px, c->ks->hotkey, ci, req, c->id);
    if (client_is_keyspace_wide(req)) {
        keyspace_flushed(c->px);
        client_track_flush(c, req);
    }
    if (ci != NULL && tracking_any(c->px->tracking)) {
        client_track_read(c, ci, req);
        client_track_script(c, ci, req);
    }
    if (req->argv[0].len == 5 && strncasecmp(req->argv[0].ptr, "reset", 5) == 0) {
        const char *pass = c->px->cfg.requirepass; /* RESET's effect on bulwark's side */
        client_set_name(c, NULL, 0);
        tracking_disable(c->px->tracking, c->id);
        c->authenticated = pass == NULL || pass[0] == '\0';
    }
    char *rewritten = NULL;
    size_t len = 0;
    if (local_jitter_encode(c, ci, req, &rewritten, &len)) {
        pinned_forward(c->pin, req, rewritten, len);
        bw_free(rewritten);
    } else if (req->raw != NULL) {
        pinned_forward(c->pin, req, req->raw, req->raw_len);
    } else {
        struct evbuffer *tmp = evbuffer_new();
        client_encode_request(req, tmp);
        len = evbuffer_get_length(tmp);
        pinned_forward(c->pin, req, (const char *)evbuffer_pullup(tmp, -1), len);
        evbuffer_free(tmp);
    }
    if (resp_arg_is(&req->argv[0], "quit") && c->state == CLIENT_ACTIVE)
        /* Redis answers +OK after every earlier reply, then closes: read
         * nothing more; the dedicated connection's close ends c. */
        client_close_after_reply(c);
}

/*
 * A denied command (deny-commands) while pinned. Its error cannot be slotted
 * between replies still due on the dedicated connection, so the session
 * ends: what arrived is delivered, then the error, then the connection is
 * closed (the dedicated connection too), as for a protocol error.
 */
static void
client_pinned_refuse(struct client *c, const struct resp_request *req, const char *why)
{
    pinned_free(c->pin);
    c->pin = NULL;
    c->pin_slot->ready = true;
    c->pin_slot = NULL;
    if (strncmp(why, "NOAUTH", 6) == 0)
        client_reply_error(c, "%s", why);
    else
        client_reply_error(c, "ERR command '%.*s' is disabled in bulwark (deny-commands)",
                           (int)BW_MIN(req->argv[0].len, 128), req->argv[0].ptr);
    client_close_after_reply(c);
}

bool
client_pinned_deliver(struct client *c, struct evbuffer *reply, size_t len)
{
    struct client_slot *s = c->pin_slot;
    struct evbuffer *out = netio_output(c->io);
    if (c->close_asap) {
        /* over its output limit: dropped until closed on the next turn */
    } else if (TAILQ_FIRST(&c->slots) == s) {
        evbuffer_remove_buffer(reply, out, len);
    } else {
        evbuffer_remove_buffer(reply, client_slot_buf(c, s), len);
    }
    if (c->pin_idle_wait && pinned_idle(c->pin)) { /* the held request's turn */
        c->pin_idle_wait = false;
        client_schedule_input(c);
    }
    if (c->trk_after && pinned_outstanding(c->pin) == 0) {
        /* the session's writes are answered (a transaction's run at EXEC) */
        if (c->trk_pin != NULL && !pinned_in_multi(c->pin)) {
            struct client_trk_write *w = c->trk_pin;
            c->trk_pin = NULL;
            client_trk_done(c, w);
        }
        if (c->trk_mreads != NULL && !pinned_in_multi(c->pin))
            client_trk_mreads(c);
        client_track_after(c, c->trk_after_client); /* its own invalidations follow */
    }
    return true;
}

void
client_unpin(struct client *c)
{
    struct pinned *p = c->pin;
    c->pin = NULL;
    c->pin_slot->ready = true;
    c->pin_slot = NULL;
    pinned_free_clean(p);
    c->pin_idle_wait = false; /* a held request goes on, on the shared connection */
    if (c->trk_pin != NULL) {
        struct client_trk_write *w = c->trk_pin;
        c->trk_pin = NULL;
        client_trk_done(c, w);
    }
    if (c->trk_mreads != NULL)
        client_trk_mreads(c);
    if (c->trk_after)
        client_track_after(c, c->trk_after_client);
    client_flush(c);
    client_schedule_input(c);
}

void
client_pinned_lost(struct client *c, const char *reason)
{
    log_verbose("client id=%llu addr=%s: dedicated upstream connection lost: %s",
                (unsigned long long)c->id, c->addr, reason);
    uint64_t due = pinned_outstanding(c->pin);
    bool stream = due == 0 && !pinned_idle(c->pin); /* pub/sub: no count to answer */
    struct client_slot *s = c->pin_slot;
    pinned_free(c->pin);
    c->pin = NULL;
    c->pin_slot = NULL;
    if (c->pin_idle_wait) { /* a held request goes on, on the shared connection */
        c->pin_idle_wait = false;
        client_schedule_input(c);
    }
    if (!stream) { /* each request still due gets the error a shared one would */
        struct evbuffer *out = TAILQ_FIRST(&c->slots) == s ? netio_output(c->io)
                                                           : client_slot_buf(c, s);
        for (uint64_t i = 0; i < due; i++)
            evbuffer_add_printf(out, "-ERR upstream %s:%d unavailable: %s\r\n",
                                c->px->cfg.upstream_host, c->px->cfg.upstream_port, reason);
        s->ready = true;
        client_flush(c);
        return;
    }
    s->ready = true;
    if (c->state == CLIENT_ACTIVE) {
        c->state = CLIENT_DRAINING;
        netio_enable_read(c->io, false);
    }
    client_flush(c);
}

/* Send the parser's protocol error after earlier replies, then close. */
static void
client_protocol_error(struct client *c)
{
    char peek[68];
    const char *err = resp_parser_error(c->parser);
    struct evbuffer *in = netio_input(c->io);
    size_t n = BW_MIN(evbuffer_get_length(in), 64);
    log_sanitize((const char *)evbuffer_pullup(in, (ev_ssize_t)n), n, peek, sizeof(peek));
    log_verbose("client id=%llu addr=%s: %.*s; input: '%s'", (unsigned long long)c->id,
                c->addr, (int)strcspn(err + 1, "\r\n"), err + 1, peek);
    c->px->stats.protocol_errors++;
    client_reply_raw(c, err, strlen(err));
    client_close_after_reply(c);
}

/*
 * A request bulwark answers itself (HELLO, CLIENT …, SELECT) from a RESP2
 * client whose session surely runs subscribed when Redis reaches it (the
 * last pub/sub request subscribed): Redis refuses it, unrun, with its exact
 * "Can't execute '…': only (P|S)SUBSCRIBE / …" error, in order with the
 * messages, so it goes to the session's connection as it came.
 */
static bool
client_subscribed_resp2_harmless(const struct client *c, const struct resp_request *req)
{
    return c->proto == 2 && !pinned_counts_replies(c->pin) && pinned_surely_subscribed(c->pin) &&
           (client_pinned_is_local(req) || resp_arg_is(&req->argv[0], "select"));
}

/*
 * True when req, of a client in a session, is one bulwark answers itself and
 * must wait for: replies are due on the session (a blocking command, a
 * script, a pipeline; or pub/sub winding down after UNSUBSCRIBE), so its
 * reply cannot go in between yet. Redis reads nothing more from a blocked
 * client either. Not inside MULTI (refused there), not in a Lua debugger
 * session or a surely subscribed RESP2 one (Redis answers those).
 */
static bool
client_pinned_must_wait(const struct client *c, const struct resp_request *req)
{
    /* (a SELECT goes to Redis, followed, except while replies are not counted) */
    if (!client_pinned_is_local(req) &&
        !(resp_arg_is(&req->argv[0], "select") && !pinned_counts_replies(c->pin)))
        return false;
    if (pinned_idle(c->pin) || pinned_in_multi(c->pin) || pinned_debugging(c->pin))
        return false;
    return !client_subscribed_resp2_harmless(c, req) &&
           (pinned_counts_replies(c->pin) || !pinned_maybe_subscribed(c->pin));
}

/*
 * Requests a pinned client gets from bulwark itself when nothing is due on
 * its connection: CLIENT SETNAME/GETNAME/ID/INFO/LIST (bulwark's view of the
 * client) and SELECT of another database (refused as always).
 */
static bool
client_pinned_is_local(const struct resp_request *req)
{
    const struct resp_arg *a = &req->argv[0];
    if (resp_arg_is(a, "hello"))
        return true; /* HELLO is bulwark's (SELECT goes to Redis: pinned tracks the db) */
    if (a->len != 6 || strncasecmp(a->ptr, "client", 6) != 0 || req->argc < 2)
        return false;
    static const char *const subs[] = {"setname", "getname", "id", "info", "list", "kill",
                                       "unblock", "tracking", "caching", "getredir",
                                       "trackinginfo"};
    for (size_t i = 0; i < BW_ARRAY_LEN(subs); i++)
        if (req->argv[1].len == strlen(subs[i]) &&
            strncasecmp(req->argv[1].ptr, subs[i], req->argv[1].len) == 0)
            return true;
    return false;
}

/*
 * pinned_needed(req), worked out once per request: it compares the command
 * name with some forty names, and three checks on the way ask it.
 */
static bool
client_pins(struct client *c, const struct resp_request *req)
{
    if (c->pins_req != req) {
        c->pins_req = req;
        c->pins = pinned_needed(req);
    }
    return c->pins;
}

/*
 * AUTH of an ACL user moves the client to a connection of its own, but only
 * when bulwark has no requirepass: else bulwark's own AUTH rules apply.
 */
static bool
client_may_pin(const struct client *c, const struct resp_request *req)
{
    const char *pass = c->px->cfg.requirepass;
    if (req->argv[0].len == 4 && strncasecmp(req->argv[0].ptr, "auth", 4) == 0)
        return pass == NULL || pass[0] == '\0';
    return true;
}

/*
 * True for a HELLO that names the protocol the client does not speak (or a
 * RESET of a RESP3 client, back to RESP2): its
 * later requests go to the shared connection of that protocol, so it waits
 * until every reply due on this one is in (a pipeline keeps its order).
 */
static bool
client_switches_proto(const struct client *c, const struct resp_request *req)
{
    long long v;
    if (c->proto != 2 && resp_arg_is(&req->argv[0], "reset"))
        return true;
    return req->argc >= 2 && resp_arg_is(&req->argv[0], "hello") &&
           resp_arg_ll(&req->argv[1], &v) && (v == 2 || v == 3) && v != c->proto;
}

/* True for "GET key", the one request batched GETs may run ahead of. */
static bool
client_is_plain_get(const struct resp_request *req)
{
    return req->argc == 2 && req->argv[0].len == 3 && strncasecmp(req->argv[0].ptr, "get", 3) == 0;
}

/* True when the client must not be read further for now. */
static bool
client_should_pause(struct client *c)
{
    return c->close_asap || c->nslots >= (uint64_t)c->px->cfg.client_max_pending ||
           evbuffer_get_length(netio_output(c->io)) > CLIENT_OUTPUT_PAUSE_BYTES;
}

/*
 * How many input bytes to parse at once: all avail, except when a big
 * request is complete in the first chain (netio_set_want put it there):
 * then that chain alone, so evbuffer_pullup() copies nothing and bytes
 * that arrived after it (in a chain of their own) are parsed next round.
 */
static size_t
client_parse_span(const struct client *c, struct evbuffer *in, size_t avail)
{
    struct evbuffer_iovec first;
    if (c->need <= NETIO_BIG_BYTES || evbuffer_peek(in, -1, NULL, &first, 1) <= 1)
        return avail;
    return first.iov_len >= c->need ? first.iov_len : avail;
}

/* Parse and handle what the input buffer holds, as far as allowed. */
static void
client_process_input(struct client *c)
{
    struct evbuffer *in = netio_input(c->io);
    const struct cfg *cfg = &c->px->cfg;

    if (c->pin_waiter != NULL)
        return; /* held until the pool wakes us (client_pinned_wake) */
    c->in_process = true;
    while (c->state == CLIENT_ACTIVE) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0 || avail < c->need)
            break;
        if (client_should_pause(c)) {
            c->paused = true;
            netio_enable_read(c->io, false);
            break;
        }
        size_t len = client_parse_span(c, in, avail);
        const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        size_t off = 0, drained = 0;
        int rc = RESP_OK;
        while (c->state == CLIENT_ACTIVE && off < len && !client_should_pause(c)) {
            struct resp_request req;
            size_t used = 0;
            resp_parser_set_limits(c->parser, cfg->proto_max_bulk_len);
            resp_parser_set_authenticated(c->parser, c->authenticated);
            rc = resp_parse(c->parser, buf + off, len - off, &used, &req);
            c->pins_req = NULL; /* a new request (maybe at the same address) */
            if (rc == RESP_OK &&
                (c->held > 0 || (c->batch != NULL && batch_client_busy(c->batch, c))) &&
                !client_is_plain_get(&req)) {
                /* mget mode: this request waits until the client's batched
                 * GETs are answered; it stays in the input, parsed again. */
                resp_parser_reset(c->parser);
                c->batch_wait = true;
                c->need = 0;
                break;
            }
            if (rc == RESP_OK && c->pin == NULL && c->nslots > 0 &&
                ((client_pins(c, &req) && client_may_pin(c, &req)) ||
                 client_switches_proto(c, &req))) {
                /* A session starts on another upstream connection: Redis
                 * must have run this client's earlier requests first. */
                resp_parser_reset(c->parser);
                c->drain_wait = true;
                c->need = 0;
                break;
            }
            if (rc == RESP_OK && c->pin != NULL && client_pinned_must_wait(c, &req)) {
                /* Answered by bulwark: after what is due on the session. */
                resp_parser_reset(c->parser);
                c->pin_idle_wait = true;
                c->need = 0;
                break;
            }
            if (rc == RESP_OK && c->pin == NULL && client_must_queue(c, &req)) {
                /* Every dedicated connection is taken: the request (and all
                 * after it) waits unparsed in the pool's FIFO queue. */
                resp_parser_reset(c->parser);
                c->pin_waiter = upstream_pinned_wait(c->px->pool, client_pinned_wake, c);
                c->need = 0;
                break;
            }
            off += used;
            if (rc != RESP_OK)
                break;
            if (req.raw != NULL && req.raw_len > NETIO_BIG_BYTES) {
                /* a big request: its bytes go to the head of the input, so
                 * that forwarding it moves them instead of copying */
                evbuffer_drain(in, (size_t)(req.raw - buf) - drained);
                drained = (size_t)(req.raw - buf);
                c->move_raw = req.raw;
            }
            uint64_t now_us = stats_loop_us(c->px->base); /* cached: no clock read */
            cmdstats_begin(&c->px->cmdstats, now_us);
            client_handle(c, &req);
            cmdstats_end(&c->px->cmdstats, now_us);
            if (c->moved) /* its bytes left the input (buf stays valid: the upstream's now) */
                drained += req.raw_len;
            c->move_raw = NULL;
            c->moved = false;
        }
        evbuffer_drain(in, off - drained);
        if (c->batch_wait || c->drain_wait || c->pin_idle_wait || c->pin_waiter != NULL)
            break;
        if (rc == RESP_ERR) {
            client_protocol_error(c);
            break;
        }
        c->need = rc == RESP_AGAIN ? resp_parser_need(c->parser) : 0;
        if (rc == RESP_AGAIN && len == avail)
            break;
    }
    c->in_process = false;
    if (c->state == CLIENT_ACTIVE) { /* a big bulk pending: read it into place */
        size_t have = evbuffer_get_length(in);
        netio_set_want(c->io, c->need > have ? c->need - have : 0, true);
    }
    if (c->state == CLIENT_ACTIVE && client_query_buffer_over(c))
        return;
    if (c->eof && c->state == CLIENT_ACTIVE && c->nslots == 0 && !c->batch_wait &&
        !c->drain_wait && !c->pin_idle_wait && c->pin_waiter == NULL && !c->close_asap) {
        /* every request it sent before closing its side is answered */
        log_verbose("client id=%llu addr=%s closed its side: closing", (unsigned long long)c->id,
                    c->addr);
        client_eof_push(c);
        client_close(c);
    }
}

/*
 * client-query-buffer-limit, as Redis 7.0 readQueryFromClient(): only the
 * bytes not parsed yet count (Redis moves complete arguments out of its
 * query buffer into argv; bulwark keeps them in place to forward the
 * request as it came). Over the limit: logged as Redis logs it, closed.
 */
static bool
client_query_buffer_over(struct client *c)
{
    struct evbuffer *in = netio_input(c->io);
    size_t avail = evbuffer_get_length(in), parsed = resp_parser_parsed(c->parser);
    size_t unparsed = avail - BW_MIN(parsed, avail);
    if (unparsed <= c->px->cfg.client_query_buffer_limit)
        return false;
    char info[512], peek[68];
    struct evbuffer_ptr at;
    evbuffer_ptr_set(in, &at, parsed, EVBUFFER_PTR_SET);
    char head[64];
    ev_ssize_t n = evbuffer_copyout_from(in, &at, head, sizeof(head));
    log_sanitize(head, n > 0 ? (size_t)n : 0, peek, sizeof(peek));
    client_info_line(c, info, sizeof(info));
    log_warn("Closing client that reached max query buffer length: %s (qbuf initial bytes: "
             "\"%s\")", info, peek);
    client_close(c);
    return true;
}

/*
 * Resume parsing c's input on the next loop turn. Every completion path
 * (an upstream reply, a batch answered or failed, a lease woken, a pinned
 * session ended) calls this instead of client_process_input(): those run
 * inside another module's loop (batch_flush walking its keys, the upstream
 * FIFO), which c's next requests must not re-enter (redis blocked.c resumes
 * blocked clients from a queue in the same way).
 */
static void
client_schedule_input(struct client *c)
{
    if (c->state == CLIENT_ACTIVE)
        event_active(c->resume_ev, EV_TIMEOUT, 0);
}

static void
client_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (c->close_asap) {
        client_close(c);
        return;
    }
    if (c->state == CLIENT_ACTIVE && !c->paused && !c->in_process && !c->batch_wait &&
        !c->drain_wait && !c->pin_idle_wait && c->pin_waiter == NULL)
        client_process_input(c);
}

/* ---- socket callbacks ----------------------------------------------------- */

static void
client_read_cb(struct netio *io, void *arg)
{
    struct client *c = arg;
    c->last_ms = bw_now_ms();
    c->px->input_seq++; /* watch_sync(): bytes read after the watch was last drained */
    c->px->stats.net_input_bytes += netio_last_read(io);
    if (client_query_buffer_over(c)) /* after each read, before parsing, as Redis checks */
        return;
    client_process_input(c);
}

static void
client_write_cb(struct netio *io, void *arg)
{
    struct client *c = arg;
    (void)io;
    c->last_ms = bw_now_ms();
    client_maybe_finish(c);
    if (c->state == CLIENT_ACTIVE)
        client_maybe_resume(c);
}

static void
client_event_cb(struct netio *io, short what, void *arg)
{
    struct client *c = arg;
    (void)io;
    if ((what & NETIO_EOF) && c->state != CLIENT_CLOSED &&
        c->pin == NULL && !c->eof) {
        /*
         * Read returned 0. Redis 7.0 (readQueryFromClient) frees the client
         * then, its unsent output dropped; the requests it read before have
         * run, and their replies went out as far as the socket took them.
         * bulwark answers the requests read before the EOF as their replies
         * arrive, each written straight to the socket, and closes once all
         * are out, or at the first reply the socket does not take whole (a
         * half-closed client that does not read is freed, holding nothing).
         */
        log_verbose("client id=%llu addr=%s closed its side", (unsigned long long)c->id,
                    c->addr);
        c->eof = true;
        netio_enable_read(c->io, false);
        client_eof_push(c);
        if (c->state == CLIENT_DRAINING)
            client_maybe_finish(c);
        else if (c->state == CLIENT_ACTIVE && !c->in_process && c->nslots == 0 &&
                 evbuffer_get_length(netio_input(c->io)) == 0 && !c->batch_wait &&
                 !c->drain_wait && !c->pin_idle_wait && c->pin_waiter == NULL && !c->close_asap)
            client_close(c); /* nothing read is unanswered: freed now, as Redis frees a
                                client that read 0 (a connection accepted later in this
                                loop turn no longer finds it counted against maxclients) */
        else if (c->state == CLIENT_ACTIVE && !c->in_process)
            client_schedule_input(c);
    } else if (what & (NETIO_EOF | NETIO_ERROR)) {
        log_verbose("client id=%llu addr=%s connection error", (unsigned long long)c->id,
                    c->addr);
        client_close(c);
    }
}

static void
client_count_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct client *c = arg;
    (void)buf;
    c->px->stats.net_output_bytes += info->n_added;
    client_check_output(c);
}

/*
 * After EOF: write c's output to the socket now; what the socket does not
 * take is dropped and c closed, as Redis frees a client that read 0.
 */
static void
client_eof_push(struct client *c)
{
    struct evbuffer *out = netio_output(c->io);
    if (c->state == CLIENT_CLOSED)
        return;
    if (netio_write_now(c->io) == 0)
        return;
    log_verbose("client id=%llu addr=%s closed its side and does not read: %zu bytes of "
                "replies dropped", (unsigned long long)c->id, c->addr, evbuffer_get_length(out));
    client_close(c);
}

/* ---- output limits -------------------------------------------------------- */

/* client-output-buffer-limit class of c (Redis getClientType: MONITOR is normal). */
static int
client_obl_class(const struct client *c)
{
    return c->pin != NULL && pinned_subscriptions(c->pin) > 0 ? CFG_OBL_PUBSUB : CFG_OBL_NORMAL;
}

/* Reply bytes bulwark holds for c: its output and the parked ready replies. */
static size_t
client_held_bytes(const struct client *c)
{
    return evbuffer_get_length(netio_output(c->io)) + c->parked_bytes;
}

/*
 * Redis 7.0 checkClientOutputBufferLimits() on the bytes bulwark holds for
 * c: at or above hard, or at or above soft for more than soft-seconds, c is
 * closed on the next loop turn (Redis's "close ASAP"; never inside the
 * evbuffer or upstream callback that grew it), and nothing more is kept
 * for it meanwhile. Called on every change of its output.
 */
static void
client_check_output(struct client *c)
{
    if (c->state == CLIENT_CLOSED || c->close_asap)
        return;
    size_t used = client_held_bytes(c);
    const struct cfg_obl *l = &c->px->cfg.client_obl[client_obl_class(c)];
    bool hard = l->hard_bytes > 0 && used >= l->hard_bytes;
    bool soft = l->soft_bytes > 0 && used >= l->soft_bytes;
    if (!soft) {
        c->obl_soft_since_ms = 0;
    } else if (!hard) {
        uint64_t now = bw_now_ms();
        if (c->obl_soft_since_ms == 0)
            c->obl_soft_since_ms = now;
        soft = now - c->obl_soft_since_ms > l->soft_seconds * 1000;
    }
    if (!hard && !soft)
        return;
    char info[512];
    client_info_line(c, info, sizeof(info));
    log_warn("Client %s scheduled to be closed ASAP for overcoming of output buffer limits.",
             info);
    c->px->stats.client_output_limit_closed++;
    c->close_asap = true;
    netio_enable_read(c->io, false);
    event_active(c->resume_ev, EV_TIMEOUT, 0);
}

size_t
client_max_output(struct proxy *px)
{
    size_t most = 0;
    struct client *c;
    TAILQ_FOREACH(c, &px->clients, link)
        most = BW_MAX(most, client_held_bytes(c));
    return most;
}

/* ---- life cycle ----------------------------------------------------------- */

void
client_accept(struct proxy *px, evutil_socket_t fd, const char *addr, const char *laddr,
              bool is_unix)
{
    struct client *c = bw_calloc(1, sizeof(*c));
    c->px = px;
    c->id = px->next_client_id++;
    c->is_unix = is_unix;
    snprintf(c->addr, sizeof(c->addr), "%s", addr);
    snprintf(c->laddr, sizeof(c->laddr), "%s", laddr);
    c->created_ms = c->last_ms = bw_now_ms();
    c->authenticated = px->cfg.requirepass == NULL || px->cfg.requirepass[0] == '\0';
    c->parser = resp_parser_new();
    TAILQ_INIT(&c->slots);
    c->proto = 2;
    c->up = upstream_pick(px->pool, c->id, 2);
    client_select(c, 0);
    /* reads 16 KB at a time, big bulks straight into place; replies are
     * written at the end of the loop turn (netio.h) */
    c->io = netio_new(px->base, fd, client_read_cb, client_write_cb, client_event_cb, c);
    c->resume_ev = event_new(px->base, -1, 0, client_resume_cb, c);
    BW_ASSERT(c->resume_ev != NULL);
    evbuffer_add_cb(netio_output(c->io), client_count_output, c);
    TAILQ_INSERT_TAIL(&px->clients, c, link);
    client_index_add(px, c);
    px->stats.connected_clients++;
    px->stats.total_connections++;
    log_verbose("accepted client id=%llu addr=%s", (unsigned long long)c->id, c->addr);
}

void
client_close(struct client *c)
{
    struct proxy *px = c->px;
    struct client_slot *s;

    if (c->state == CLIENT_CLOSED)
        return;
    c->state = CLIENT_CLOSED;
    tracking_client_gone(px->tracking, c->id);
    if (c->trk_cur != NULL)
        client_trk_release(px, c->trk_cur, 0);
    if (c->trk_pin != NULL)
        client_trk_release(px, c->trk_pin, 0);
    client_trk_free_list(c->trk_mreads); /* never remembered: only freed */
    client_trk_free_list(c->trk_mdirty);
    c->trk_cur = c->trk_pin = c->trk_mreads = c->trk_mdirty = NULL;
    if (c->close_asap) /* over its output limit: what the kernel still holds for it goes too */
        netio_set_abortive(c->io);
    netio_enable_read(c->io, false);
    netio_enable_write(c->io, false);
    netio_setcb(c->io, NULL, NULL, NULL, NULL);
    event_del(c->resume_ev);
    upstream_pinned_wait_cancel(c->pin_waiter); /* leave the queue */
    c->pin_waiter = NULL;
    if (c->pin != NULL) { /* closes the connection: a blocked command gets nothing */
        pinned_free(c->pin);
        c->pin = NULL;
        if (c->pin_slot != NULL) /* (NULL while bulwark answers in between) */
            c->pin_slot->ready = true; /* freed below, nothing refers to it */
        c->pin_slot = NULL;
    }
    while ((s = TAILQ_FIRST(&c->slots)) != NULL) {
        TAILQ_REMOVE(&c->slots, s, link);
        if (s->ready) {
            client_slot_free(s);
        } else {
            s->c = NULL; /* orphan: the upstream callback frees it */
        }
    }
    c->nslots = 0;
    TAILQ_REMOVE(&px->clients, c, link);
    client_index_remove(px, c);
    TAILQ_INSERT_TAIL(&px->reaped, c, link);
    px->stats.connected_clients--;
    event_active(px->reap_ev, EV_TIMEOUT, 0);
}

void
client_reap(struct proxy *px)
{
    struct client *c;
    while ((c = TAILQ_FIRST(&px->reaped)) != NULL) {
        TAILQ_REMOVE(&px->reaped, c, link);
        netio_free(c->io);
        event_free(c->resume_ev);
        resp_parser_free(c->parser);
        bw_free(c->name);
        bw_free(c);
    }
}

void
client_cron(struct proxy *px, uint64_t now_ms)
{
    int timeout = px->cfg.timeout;
    struct client *c, *next;
    if (timeout <= 0)
        return;
    for (c = TAILQ_FIRST(&px->clients); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->nslots == 0 && c->pin_waiter == NULL &&
            now_ms - c->last_ms > (uint64_t)timeout * 1000) {
            log_verbose("closing idle client id=%llu addr=%s", (unsigned long long)c->id,
                        c->addr);
            client_close(c);
        }
    }
}

void
client_shutdown_all(struct proxy *px)
{
    struct client *c, *next;
    for (c = TAILQ_FIRST(&px->clients); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (c->pin != NULL && pinned_blocked(c->pin) && c->nslots == 1) {
            /* blocked (BLPOP 0) or subscribed: nothing is due that the
             * shutdown-timeout could wait for */
            log_verbose("shutdown: closing blocked client id=%llu addr=%s",
                        (unsigned long long)c->id, c->addr);
            client_eof_push(c); /* its earlier replies, as far as the socket takes them */
            client_close(c);
            continue;
        }
        if (c->state == CLIENT_ACTIVE) {
            c->state = CLIENT_DRAINING;
            netio_enable_read(c->io, false);
        }
        client_maybe_finish(c);
    }
}

void
client_free_all(struct proxy *px)
{
    while (!TAILQ_EMPTY(&px->clients))
        client_close(TAILQ_FIRST(&px->clients));
    client_reap(px);
    bw_free(px->by_id);
    px->by_id = NULL;
    px->by_id_cap = px->by_id_n = 0;
    client_slot_nocache = true; /* slots freed later (batches, upstream) are freed */
    while (client_slot_cached > 0)
        bw_free(client_slot_cache[--client_slot_cached]);
}

/* ---- accessors ------------------------------------------------------------ */

void
client_select(struct client *c, int db)
{
    /* A batched GET still pending in the old database's batcher goes out
     * first: nothing the client sends later may overtake it. */
    if (c->batch != NULL)
        batch_before_forward(c->batch, c);
    c->db = db;
    c->ks = keyspace_get(c->px, db);
    c->batch = keyspace_batch(c->px, c->ks, c->id, c->proto);
}

void
client_set_proto(struct client *c, int proto)
{
    if (c->proto == proto)
        return;
    /* The shared connection and batcher of the other protocol: nothing of
     * this client is due on the old ones (client_process_input held the
     * HELLO until then), so nothing it sends later overtakes them. */
    if (c->batch != NULL)
        batch_before_forward(c->batch, c);
    c->proto = proto;
    c->up = upstream_pick(c->px->pool, c->id, proto);
    c->batch = keyspace_batch(c->px, c->ks, c->id, proto);
    if (c->pin != NULL)
        pinned_follow_proto(c->pin, proto);
}

int
client_db(const struct client *c)
{
    return c->db;
}

struct keyspace *
client_keyspace(const struct client *c)
{
    return c->ks;
}

struct proxy *
client_proxy(const struct client *c)
{
    return c->px;
}

uint64_t
client_id(const struct client *c)
{
    return c->id;
}

bool
client_authenticated(const struct client *c)
{
    return c->authenticated;
}

void
client_set_authenticated(struct client *c, bool yes)
{
    c->authenticated = yes;
}

const char *
client_name(const struct client *c)
{
    return c->name;
}

void
client_set_name(struct client *c, const char *name, size_t len)
{
    bw_free(c->name);
    c->name = name != NULL && len > 0 ? bw_strndup(name, len) : NULL;
}

void
client_format_info(const struct client *c, struct evbuffer *out)
{
    /* Redis 7.0's flag letters, in its order, of the states bulwark knows */
    char flags[12], trk[4], *f = flags;
    int64_t redir;
    if (c->pin != NULL && pinned_subscriptions(c->pin) > 0)
        *f++ = 'P';
    if (c->pin != NULL && pinned_in_multi(c->pin))
        *f++ = 'x';
    if (c->pin != NULL && pinned_blocked(c->pin) && pinned_subscriptions(c->pin) == 0)
        *f++ = 'b';
    (void)tracking_client_flags(c->px->tracking, c->id, trk, &redir);
    for (const char *t = trk; *t != '\0'; t++)
        *f++ = *t;
    if (c->is_unix)
        *f++ = 'U';
    if (f == flags)
        *f++ = 'N';
    *f = '\0';
    uint64_t now = bw_now_ms();
    struct evbuffer *o = netio_output(c->io);
    struct evbuffer *in = netio_input(c->io);
    evbuffer_add_printf(out,
                        "id=%llu addr=%s laddr=%s fd=%d name=%s age=%llu idle=%llu "
                        "flags=%s db=%d sub=0 psub=0 ssub=0 multi=-1 qbuf=%zu qbuf-free=0 "
                        "argv-mem=0 multi-mem=0 rbs=0 rbp=0 obl=0 oll=%llu omem=%zu "
                        "tot-mem=0 events=r cmd=%s user=default redir=%lld resp=%d\n",
                        (unsigned long long)c->id, c->addr, c->laddr,
                        (int)netio_fd(c->io), c->name != NULL ? c->name : "",
                        (unsigned long long)(now - c->created_ms) / 1000,
                        (unsigned long long)(now - c->last_ms) / 1000,
                        flags, c->db, evbuffer_get_length(in),
                        (unsigned long long)c->nslots, evbuffer_get_length(o),
                        c->last_cmd[0] ? c->last_cmd : "NULL", (long long)redir, c->proto);
}

/* client_format_info() of c as a NUL-terminated string without its '\n' (log lines). */
static void
client_info_line(const struct client *c, char *out, size_t size)
{
    struct evbuffer *b = evbuffer_new();
    client_format_info(c, b);
    size_t n = evbuffer_copyout(b, out, size - 1) > 0 ? evbuffer_get_length(b) : 0;
    n = BW_MIN(n, size - 1);
    while (n > 0 && (out[n - 1] == '\n' || out[n - 1] == '\r'))
        n--;
    out[n] = '\0';
    evbuffer_free(b);
}

void
client_format_all(struct proxy *px, struct evbuffer *out)
{
    struct client *c;
    TAILQ_FOREACH(c, &px->clients, link)
        client_format_info(c, out);
}

uint64_t
client_blocked_redis_id(struct proxy *px, uint64_t id)
{
    struct client *c = client_by_id(px, id);
    return c != NULL && c->pin != NULL && pinned_blocked(c->pin) ? pinned_redis_id(c->pin) : 0;
}

void
client_format_id(struct proxy *px, uint64_t id, struct evbuffer *out)
{
    struct client *c = client_by_id(px, id);
    if (c != NULL)
        client_format_info(c, out);
}

static bool
client_kill_matches(const struct client *c, const struct client_kill_filter *f)
{
    if (f->no_user)
        return false;
    if (f->addr != NULL && (strlen(c->addr) != f->addr_len ||
                            memcmp(c->addr, f->addr, f->addr_len) != 0))
        return false;
    if (f->laddr != NULL && (strlen(c->laddr) != f->laddr_len ||
                             memcmp(c->laddr, f->laddr, f->laddr_len) != 0))
        return false;
    if (f->id != 0 && c->id != f->id)
        return false;
    if (f->type >= 0) {
        bool pubsub = c->pin != NULL && pinned_subscriptions(c->pin) > 0;
        int type = pubsub ? CLIENT_KILL_TYPE_PUBSUB : CLIENT_KILL_TYPE_NORMAL;
        if (type != f->type)
            return false;
    }
    return true;
}

size_t
client_kill(struct client *self, const struct client_kill_filter *f, bool *kill_self)
{
    struct client *c, *next;
    size_t killed = 0;
    *kill_self = false;
    for (c = TAILQ_FIRST(&self->px->clients); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (!client_kill_matches(c, f) || (c == self && f->skipme))
            continue;
        killed++;
        if (c == self)
            *kill_self = true;
        else
            client_close(c);
    }
    return killed;
}

void
client_set_command_table(struct proxy *px, struct cmd_table *t, bool learned)
{
    local_apply_policies(px, t);
    gate_apply(t);
    px->cmd_get = cmd_lookup(t, "get", 3);
    px->cmd_set = cmd_lookup(t, "set", 3);
    px->cmd_mget = cmd_lookup(t, "mget", 4);
    cmd_table_free(px->cmds);
    px->cmds = t;
    px->cmds_learned = learned;
}
