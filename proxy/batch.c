/* batch: per-turn GET coalescing with single flight (see batch.h). */
#include "proxy/batch.h"

#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <xxhash.h>

#include "proxy/cmdstats.h"
#include "proxy/proxy.h"
#include "proxy/reply.h"
#include "proxy/resp.h"
#include "proxy/session.h"
#include "proxy/slots.h"
#include "proxy/upstream.h"
#include "proxy/util.h"

#define BATCH_BUCKETS_MIN 64 /* dedup hash buckets, at least */

/* One distinct key of a batch and the GETs waiting for it. */
struct batch_entry {
    struct proxy *px;         /* borrowed; outlives the batcher */
    struct upstream_conn *up; /* connection the key is read on (borrowed) */
    int db;                   /* database the key is read in */
    bool pooled;              /* BATCH_ENTRY_SIZE bytes: returns to entry_pool */
    struct batch_entry *next; /* dedup bucket chain (pending only) */
    size_t len;               /* bytes in key */
    uint64_t hash;            /* XXH3 of key */
    struct slot **waiters;    /* reply slots (each owned by its client): &first, or owned */
    size_t nwaiters;          /* entries in waiters */
    size_t cap;               /* room in waiters */
    struct slot *first;       /* the first waiter (most keys have one) */
    char key[];               /* len bytes, inline */
};

/*
 * Entries with a key of at most BATCH_KEY_INLINE bytes have one size and
 * are kept for reuse: a batch of hundreds of keys allocated and freed its
 * entries, key copies and waiter arrays through malloc (3 calls a GET, the
 * largest item of a forwarded GET's profile). Bounded, per thread.
 */
#define BATCH_KEY_INLINE 64
#define BATCH_ENTRY_SIZE (sizeof(struct batch_entry) + BATCH_KEY_INLINE)
static _Thread_local struct bw_pool entry_pool = BW_POOL(BATCH_ENTRY_SIZE, 4096);
static _Thread_local char *scratch;      /* commands are encoded here (owned) */
static _Thread_local size_t scratch_cap; /* its size */

/* The keys of one MGET sent in mget mode. */
struct batch_group {
    size_t n;                      /* entries */
    struct batch_entry *entries[]; /* owned until answered */
};

struct batch {
    struct proxy *px;             /* borrowed */
    struct upstream_conn *up;     /* borrowed */
    int db;                       /* the database of its GETs (a keyspace's batcher) */
    struct batch_entry **pending; /* keys waiting for the flush (owned) */
    size_t npending;              /* entries in pending */
    size_t cap;                   /* allocated pending */
    struct batch_entry **spare;   /* the array of the last batch sent, reused (owned) */
    size_t spare_cap;             /* allocated spare */
    struct batch_entry **buckets; /* dedup index of pending (chains borrowed) */
    size_t nbuckets;              /* power of two */
    struct event *flush_ev;       /* end-of-turn / batch-window flush (owned) */
    bool scheduled;               /* flush_ev is pending or active */
    uint64_t epoch;               /* flushes so far: keys a client added in this epoch wait */
    size_t last_batch_keys;       /* keys in the last batch sent */
    bool pipeline_only;           /* GETs only, whatever batch-mode says (a Redis Cluster
                                        node: one MGET must stay in one slot) */
};

static void batch_flush(struct batch *b);

static void
batch_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct batch *b = arg;
    (void)fd;
    (void)what;
    b->scheduled = false;
    batch_flush(b);
}

struct batch *
batch_new(struct proxy *px, struct upstream_conn *up, int db)
{
    struct batch *b = bw_calloc(1, sizeof(*b));
    b->px = px;
    b->up = up;
    b->db = db;
    b->flush_ev = event_new(px->base, -1, 0, batch_flush_cb, b);
    BW_ASSERT(b->flush_ev != NULL);
    b->nbuckets = BATCH_BUCKETS_MIN;
    b->buckets = bw_calloc(b->nbuckets, sizeof(*b->buckets));
    return b;
}

void
batch_set_pipeline_only(struct batch *b)
{
    b->pipeline_only = true;
}

void
batch_free(struct batch *b)
{
    if (b == NULL)
        return;
    batch_flush(b);
    event_free(b->flush_ev);
    bw_free(b->pending);
    bw_free(b->spare);
    bw_free(b->buckets);
    bw_free(b);
}

static void
batch_entry_free(struct batch_entry *e)
{
    if (e->waiters != &e->first)
        bw_free(e->waiters);
    if (e->pooled)
        bw_pool_put(&entry_pool, e);
    else
        bw_free(e);
}

void
batch_cache_free_all(void)
{
    bw_pool_drain(&entry_pool); /* entries answered later (at upstream close) are freed */
    bw_free(scratch);
    scratch = NULL;
    scratch_cap = 0;
}

/* A new entry for len bytes of key, its fields zero but the key's. */
static struct batch_entry *
batch_entry_alloc(const char *key, size_t len)
{
    struct batch_entry *e;
    if (len <= BATCH_KEY_INLINE)
        e = bw_pool_get(&entry_pool);
    else
        e = bw_malloc(sizeof(*e) + len);
    memset(e, 0, sizeof(*e));
    e->pooled = len <= BATCH_KEY_INLINE;
    e->waiters = &e->first;
    e->cap = 1;
    memcpy(e->key, key, len);
    e->len = len;
    return e;
}

/* Give every waiter of e a copy of the reply (len bytes at data), free e. */
static void
batch_entry_answer(struct batch_entry *e, const char *data, size_t len)
{
    for (size_t i = 0; i < e->nwaiters; i++)
        slot_finish(e->waiters[i], data, len);
    batch_entry_free(e);
}

/* A lone GET's reply (pipeline mode, or an mget-mode re-check). */
static void
batch_get_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct batch_entry *e = privdata;
    if (reply == NULL) {
        batch_entry_answer(e, err, strlen(err));
        return;
    }
    char head[5];
    if (e->px->on_batch_redirect != NULL && evbuffer_copyout(reply, head, 1) == 1 &&
        head[0] == '-') {
        const char *p = (const char *)evbuffer_pullup(reply, (ev_ssize_t)len);
        if (e->px->on_batch_redirect(e->px, e->key, e->len, e->waiters, e->nwaiters, p, len)) {
            e->nwaiters = 0; /* the hook took the slots (a MOVED or ASK followed) */
            batch_entry_free(e);
            return;
        }
    }
    if (e->px->on_batch_nil != NULL &&
        ((len == 5 && evbuffer_copyout(reply, head, 5) == 5 && memcmp(head, "$-1\r\n", 5) == 0) ||
         (len == 3 && evbuffer_copyout(reply, head, 3) == 3 && memcmp(head, "_\r\n", 3) == 0)))
        e->px->on_batch_nil(e->px); /* a GET that passed the gate read nil */
    if (e->nwaiters == 1) {         /* one GET: its reply is moved, not copied */
        slot_finish_move(e->waiters[0], reply, len);
        batch_entry_free(e);
        return;
    }
    batch_entry_answer(e, (const char *)evbuffer_pullup(reply, (ev_ssize_t)len), len);
}

/* Write "$n\r\n" (or "*n\r\n" with prefix '*') at p; returns the end. */
static char *
batch_put_len(char *p, char prefix, size_t n)
{
    char digits[24];
    size_t nd = 0;
    do {
        digits[nd++] = (char)('0' + n % 10);
        n /= 10;
    } while (n > 0);
    *p++ = prefix;
    while (nd > 0)
        *p++ = digits[--nd];
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* Bytes of one RESP bulk argument of len bytes, at most. */
#define BATCH_ARG_MAX(len) ((len) + 26)

/* Append the bulk argument key to p; returns the end. */
static char *
batch_put_arg(char *p, const char *key, size_t len)
{
    p = batch_put_len(p, '$', len);
    memcpy(p, key, len);
    p += len;
    *p++ = '\r';
    *p++ = '\n';
    return p;
}

/* The scratch buffer commands are encoded in, at least need bytes. */
static char *
batch_scratch(size_t need)
{
    if (need > scratch_cap) {
        scratch_cap = BW_MAX(need, 2 * scratch_cap);
        scratch = bw_realloc(scratch, scratch_cap);
    }
    return scratch;
}

static void
batch_send_get(struct batch_entry *e)
{
    char stack[256], *cmd = BATCH_ARG_MAX(e->len) + 16 <= sizeof(stack)
                                ? stack
                                : batch_scratch(BATCH_ARG_MAX(e->len) + 16);
    const char *err;
    char *p = cmd;
    memcpy(p, "*2\r\n$3\r\nGET\r\n", 13);
    p = batch_put_arg(p + 13, e->key, e->len);
    if (upstream_send_db(e->up, e->db, cmd, (size_t)(p - cmd), batch_get_cb, e, &err) != BW_OK)
        batch_get_cb(e, NULL, 0, err);
}

/*
 * An MGET reply read the short way: "*n" then n elements, each a bulk
 * string or a null ("$-1" or RESP3's "_"), ending exactly at len. Returns
 * false (nothing answered) for anything else, which reply_parse() reads.
 */
static bool
batch_mget_walk(struct batch_group *g, const char *data, size_t len)
{
    const char *p = data, *end = data + len;
    for (size_t i = 0; i <= g->n; i++) { /* pass 0: the header; then the elements */
        if (i > 0 && end - p >= 3 && p[0] == '_' && p[1] == '\r' && p[2] == '\n') {
            p += 3;
            continue;
        }
        if (end - p < 4 || p[0] != (i == 0 ? '*' : '$'))
            return false;
        const char *q = p + 1;
        size_t n = 0;
        if (i > 0 && q[0] == '-' && q[1] == '1' && end - p >= 5 && q[2] == '\r' && q[3] == '\n') {
            p += 5;
            continue;
        }
        for (; q < end && *q >= '0' && *q <= '9' && q - p < 19; q++)
            n = n * 10 + (size_t)(*q - '0');
        if (q == p + 1 || end - q < 2 || q[0] != '\r' || q[1] != '\n')
            return false;
        q += 2;
        if (i == 0) {
            if (n != g->n)
                return false;
        } else if ((size_t)(end - q) < n + 2 || q[n] != '\r' || q[n + 1] != '\n') {
            return false;
        } else {
            q += n + 2;
        }
        p = q;
    }
    if (p != end)
        return false;
    p = data;
    while (*p != '\n')
        p++;
    p++;
    for (size_t i = 0; i < g->n; i++) {
        struct batch_entry *e = g->entries[i];
        const char *q = p;
        if (*q == '_' || q[1] == '-') {
            p += *q == '_' ? 3 : 5;
            e->px->stats.batch_rechecks++;
            batch_send_get(e); /* nil or WRONGTYPE: ask as a lone GET */
            continue;
        }
        size_t n = 0;
        for (q++; *q != '\r'; q++)
            n = n * 10 + (size_t)(*q - '0');
        q += 2 + n + 2;
        batch_entry_answer(e, p, (size_t)(q - p)); /* exactly a lone GET's bulk reply */
        p = q;
    }
    return true;
}

/* mget mode: values answered, nils re-checked with a lone GET. */
static void
batch_mget_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct batch_group *g = privdata;
    struct reply_node *n = NULL;
    const char *data = NULL;
    if (reply != NULL) {
        data = (const char *)evbuffer_pullup(reply, (ev_ssize_t)len);
        if (batch_mget_walk(g, data, len)) {
            bw_free(g);
            return;
        }
        n = reply_parse(data, len);
    }
    bool array = n != NULL && n->type == '*' && !n->nil && (size_t)n->integer == g->n;
    for (size_t i = 0; i < g->n; i++) {
        struct batch_entry *e = g->entries[i];
        if (!array) { /* upstream error or failure: what a lone GET would get */
            batch_entry_answer(e, reply != NULL ? data : err, reply != NULL ? len : strlen(err));
            continue;
        }
        const struct reply_node *v = &n->elems[i];
        if (v->type == '$' && !v->nil) {
            /* The element's bytes are exactly a lone GET's bulk reply. */
            const char *start = v->str - 1;
            while (*start != '$')
                start--;
            batch_entry_answer(e, start, (size_t)(v->str + v->len + 2 - start));
        } else {
            e->px->stats.batch_rechecks++;
            batch_send_get(e); /* nil or WRONGTYPE: ask as a lone GET */
        }
    }
    reply_node_free(n);
    bw_free(g);
}

static void
batch_send_mget(struct batch *b, struct batch_entry *const *keys, size_t nkeys)
{
    struct batch_group *g = bw_malloc(sizeof(*g) + nkeys * sizeof(g->entries[0]));
    const char *err;
    size_t need = 32;
    g->n = nkeys;
    for (size_t i = 0; i < nkeys; i++)
        need += BATCH_ARG_MAX(keys[i]->len);
    char *cmd = batch_scratch(need), *p = batch_put_len(cmd, '*', nkeys + 1);
    memcpy(p, "$4\r\nMGET\r\n", 10);
    p += 10;
    for (size_t i = 0; i < nkeys; i++) {
        g->entries[i] = keys[i];
        p = batch_put_arg(p, keys[i]->key, keys[i]->len);
    }
    if (upstream_send_db(b->up, b->db, cmd, (size_t)(p - cmd), batch_mget_cb, g, &err) != BW_OK)
        batch_mget_cb(g, NULL, 0, err);
}

/* Send every pending key upstream, one batch. */
static void
batch_flush(struct batch *b)
{
    struct stats *st = &b->px->stats;
    if (b->scheduled) {
        event_del(b->flush_ev);
        b->scheduled = false;
    }
    if (b->npending == 0)
        return;
    b->epoch++;
    b->last_batch_keys = b->npending;
    st->batch_batches++;
    st->batch_keys += b->npending;
    st->batch_max_keys_seen = BW_MAX(st->batch_max_keys_seen, (uint64_t)b->npending);
    cmdstats_hist_add(&b->px->cmdstats.batch_keys, b->npending);
    memset(b->buckets, 0, b->nbuckets * sizeof(*b->buckets));
    /* The batch leaves the pending list before anything is sent: a send
     * that fails at once answers its waiters here, and whatever they cause
     * starts a new batch instead of touching this one. */
    struct batch_entry **keys = b->pending;
    size_t nkeys = b->npending, keys_cap = b->cap;
    b->pending = b->spare;
    b->cap = b->spare_cap;
    b->npending = 0;
    b->spare = NULL;
    b->spare_cap = 0;
    if (b->px->cfg.batch_mode == BATCH_MGET && !b->pipeline_only && nkeys > 1) {
        batch_send_mget(b, keys, nkeys);
    } else {
        for (size_t i = 0; i < nkeys; i++)
            batch_send_get(keys[i]);
    }
    bw_free(b->spare); /* NULL unless a nested flush left one */
    b->spare = keys;   /* reused by the next flush: no allocation per batch */
    b->spare_cap = keys_cap;
}

/* The pending entry of key, or NULL. */
static struct batch_entry *
batch_find(const struct batch *b, const char *key, size_t len, uint64_t h)
{
    for (struct batch_entry *e = b->buckets[h & (b->nbuckets - 1)]; e != NULL; e = e->next)
        if (e->hash == h && e->len == len && memcmp(e->key, key, len) == 0)
            return e;
    return NULL;
}

static struct batch_entry *
batch_add_entry(struct batch *b, const char *key, size_t len, uint64_t h)
{
    struct batch_entry *e = batch_entry_alloc(key, len);
    e->px = b->px;
    e->up = b->up;
    e->db = b->db;
    e->hash = h;
    if (b->npending == b->cap) {
        b->cap = b->cap ? b->cap * 2 : 64;
        b->pending = bw_realloc(b->pending, b->cap * sizeof(*b->pending));
    }
    b->pending[b->npending++] = e;
    if (b->npending * 2 > b->nbuckets) { /* grow and re-index the chains */
        b->nbuckets *= 2;
        b->buckets = bw_realloc(b->buckets, b->nbuckets * sizeof(*b->buckets));
        memset(b->buckets, 0, b->nbuckets * sizeof(*b->buckets));
        for (size_t i = 0; i + 1 < b->npending; i++) {
            struct batch_entry *o = b->pending[i];
            o->next = b->buckets[o->hash & (b->nbuckets - 1)];
            b->buckets[o->hash & (b->nbuckets - 1)] = o;
        }
    }
    e->next = b->buckets[h & (b->nbuckets - 1)];
    b->buckets[h & (b->nbuckets - 1)] = e;
    return e;
}

static void
batch_schedule(struct batch *b)
{
    int window_us = b->px->cfg.batch_window_us;
    if (b->scheduled)
        return;
    b->scheduled = true;
    /* The window only applies under concurrency (the last batch coalesced
     * more than one key): a lone client never waits for company. */
    if (window_us <= 0 || b->last_batch_keys <= 1) {
        event_active(b->flush_ev, EV_TIMEOUT, 0); /* after this turn's other events */
    } else {
        struct timeval tv = {window_us / 1000000, window_us % 1000000};
        evtimer_add(b->flush_ev, &tv);
    }
}

/* A reply slot for a batched GET of s in this epoch. */
static struct slot *
batch_slot_new(struct batch *b, struct session *s)
{
    struct slot *slot = slot_new(&s->q, SLOT_BATCHED);
    s->batch_epoch = b->epoch;
    b->px->stats.forwarded++;
    return slot;
}

void
batch_get(struct batch *b, struct session *s, const char *key, size_t len)
{
    cmdstats_answered(&b->px->cmdstats, CMDSTATS_BY_BATCH);
    batch_get_slot(b, batch_slot_new(b, s), key, len);
}

void
batch_get_slot(struct batch *b, struct slot *slot, const char *key, size_t len)
{
    if (b == NULL) {
        slot_finish(slot, "", 0);
        return;
    }
    uint64_t h = XXH3_64bits(key, len);
    struct batch_entry *e = batch_find(b, key, len, h);
    if (e != NULL)
        b->px->stats.batch_dedup_saved++;
    else
        e = batch_add_entry(b, key, len, h);
    if (e->nwaiters == e->cap) { /* a key read by more than one GET of the batch */
        e->cap *= 4;
        if (e->waiters == &e->first) {
            e->waiters = bw_malloc(e->cap * sizeof(*e->waiters));
            e->waiters[0] = e->first;
        } else {
            e->waiters = bw_realloc(e->waiters, e->cap * sizeof(*e->waiters));
        }
    }
    e->waiters[e->nwaiters++] = slot;
    if (slot->q != NULL) /* its client's next forward flushes this batch first */
        slot->q->owner->batch_epoch = b->epoch;
    if (b->npending >= (size_t)BW_MAX(b->px->cfg.batch_max_keys, 1))
        batch_flush(b);
    else
        batch_schedule(b);
}

void
batch_before_forward(struct batch *b, struct session *s)
{
    if (b->npending > 0 && s->batch_epoch == b->epoch && s->q.nbatched > 0)
        batch_flush(b);
}

bool
batch_client_busy(const struct batch *b, const struct session *s)
{
    return b->px->cfg.batch_mode == BATCH_MGET && !b->pipeline_only && s->q.nbatched > 0;
}

/* ---- MGET, key by key ------------------------------------------------------ */

/* One client MGET waiting for its keys. */
struct batch_mget {
    struct slot *slot; /* the client's reply slot (owned by the client) */
    int n;             /* keys in the MGET */
    int remaining;     /* keys not answered yet */
    char *error;       /* first upstream error reply (owned), or NULL */
    char **values;     /* n bulk replies "$len\r\n…\r\n" (owned) or NULL: nil */
    int proto;         /* the client's RESP version: its nulls */
    size_t *lens;      /* their lengths */
};

/* One key of a batch_mget. */
struct batch_mget_part {
    struct batch_mget *m; /* borrowed; freed when its last part is answered */
    int index;            /* key position, 0-based */
};

static void
batch_mget_done(struct batch_mget *m)
{
    if (m->error != NULL) {
        slot_finish(m->slot, m->error, strlen(m->error));
    } else {
        struct evbuffer *out = evbuffer_new();
        evbuffer_add_printf(out, "*%d\r\n", m->n);
        for (int i = 0; i < m->n; i++) {
            if (m->values[i] != NULL)
                evbuffer_add(out, m->values[i], m->lens[i]);
            else if (m->proto == 3)
                evbuffer_add(out, "_\r\n", 3);
            else
                evbuffer_add(out, "$-1\r\n", 5);
        }
        size_t len = evbuffer_get_length(out);
        slot_finish(m->slot, (const char *)evbuffer_pullup(out, -1), len);
        evbuffer_free(out);
    }
    for (int i = 0; i < m->n; i++)
        bw_free(m->values[i]);
    bw_free(m->values);
    bw_free(m->lens);
    bw_free(m->error);
    bw_free(m);
}

/* A key's GET reply: a value, nil, WRONGTYPE (nil for MGET) or an error. */
static void
batch_mget_part_cb(void *data, const char *reply, size_t len)
{
    struct batch_mget_part *p = data;
    struct batch_mget *m = p->m;
    if (len > 1 && reply[0] == '$' && reply[1] != '-') {
        m->values[p->index] = bw_strndup(reply, len);
        m->lens[p->index] = len;
    } else if (len > 0 && reply[0] == '-' && strncmp(reply, "-WRONGTYPE", 10) != 0 &&
               m->error == NULL) {
        m->error = bw_strndup(reply, len);
    }
    bw_free(p);
    if (--m->remaining == 0)
        batch_mget_done(m);
}

void
batch_mget(struct batch *b, struct session *s, const struct resp_request *req, const bool *fetch)
{
    cmdstats_answered(&b->px->cmdstats, CMDSTATS_BY_BATCH);
    struct batch_mget *m = bw_calloc(1, sizeof(*m));
    m->n = req->argc - 1;
    m->proto = s->proto;
    m->values = bw_calloc((size_t)m->n, sizeof(*m->values));
    m->lens = bw_calloc((size_t)m->n, sizeof(*m->lens));
    m->slot = batch_slot_new(b, s);
    m->remaining = 1; /* held until every part is queued */
    for (int i = 0; i < m->n; i++) {
        if (fetch != NULL && !fetch[i])
            continue;
        struct batch_mget_part *p = bw_malloc(sizeof(*p));
        p->m = m;
        p->index = i;
        m->remaining++;
        batch_get_slot(b, slot_new_detached(batch_mget_part_cb, p), req->argv[i + 1].ptr,
                       req->argv[i + 1].len);
    }
    /* The parts' slots are detached (no owner to stamp): when batch-max-keys
     * forced a flush among them, the parts queued after it wait in a later
     * epoch than the one m->slot was stamped with, and the client's next
     * forward (a DEL of the last key) must still flush them first. */
    s->batch_epoch = b->epoch;
    if (--m->remaining == 0)
        batch_mget_done(m);
}
