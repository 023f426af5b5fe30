/*
 * hotcache: aged count-min sketch and top-N list for hot-key detection, a
 * bounded cache of hot keys' replies with refresh-ahead and generation
 * checks, and leases that hold duplicate misses. Pure: no I/O, no clock.
 */
#include "proxy/hotcache.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xxhash.h>

#include "proxy/util.h"

#define HOT_GEN_SLOTS (1u << HOT_GEN_SLOTS_BITS)
#define HOT_MIN_BUCKETS 16
#define HOT_WAITERS_MIN 4

/* XXH3-128 of a key: lanes index the sketch rows, the table and the slots. */
struct hot_hash {
    uint64_t lo; /* low 64 bits */
    uint64_t hi; /* high 64 bits */
};

/*
 * Header of an object kept in a hot_index (cache entry or lease); it is the
 * first member of its container, which owns the key bytes.
 */
struct hot_node {
    struct hot_node *next; /* next in the bucket chain; in a detached list
                              while being handed back */
    struct hot_hash hash;  /* hash of the key */
    const char *key;       /* borrowed from the container: key bytes */
    size_t klen;           /* bytes at key */
    size_t slot;           /* position in the index's dense array */
};

/*
 * Chained hash table plus a dense array of the same nodes (for uniform
 * sampling and scans). Capacity is fixed at creation.
 */
struct hot_index {
    struct hot_node **buckets; /* owned: mask + 1 chain heads */
    size_t mask;               /* bucket count - 1 (a power of two - 1) */
    struct hot_node **dense;   /* owned: cap slots, the first count used;
                                  the nodes belong to the containers */
    size_t count;              /* nodes in the index */
    size_t cap;                /* most nodes allowed */
};

/* One cached reply. Owned by h->cache; one allocation with its bytes. */
struct hot_entry {
    struct hot_node node;   /* index header; node.key points into data */
    uint64_t created_ms;    /* when stored */
    uint64_t expires_at_ms; /* served while now < this */
    uint64_t refresh_at_ms; /* refresh-ahead once now > this */
    uint64_t gen;           /* h->seq when stored (its generation) */
    size_t vlen;            /* value bytes, after the key in data */
    bool refreshing;        /* a refresh was signalled for this entry */
    char data[];            /* key bytes, then value bytes */
};

/* One lease. Owned by h->leases; one allocation with its key. */
struct hot_lease {
    struct hot_node node;   /* index header; node.key points into data */
    uint64_t expires_at_ms; /* held GETs wait while now < this */
    void **waiters;         /* owned array; the waiters are the caller's */
    size_t nwaiters;        /* waiters held, in hold order */
    size_t cap;             /* room in waiters */
    bool spent;             /* ran out with no refill: kept only to refuse a
                               new lease of the key until it is written
                               (hot_invalidate, hot_lease_release); holds
                               nothing, has no deadline, evicted when room
                               is needed */
    char data[];            /* key bytes */
};

/* A key tracked for hot_top(). */
struct hot_top_item {
    struct hot_hash hash; /* hash of the key */
    char *key;            /* owned copy of the key bytes */
    size_t klen;          /* bytes at key */
    uint32_t count;       /* sketch count when last seen */
};

/* The tracker and cache (opaque to callers). */
struct hot {
    struct hot_opts o;                          /* copied options */
    uint32_t cms[HOT_CMS_DEPTH][HOT_CMS_WIDTH]; /* sketch counters, aged */
    uint64_t cms_total;                         /* aged sum of all reads */
    uint64_t decay_at_ms;                       /* start of this period */
    bool clock_started;                         /* decay_at_ms is set */
    struct hot_top_item *top;                   /* owned: top_keys items */
    size_t ntop;                                /* items used */
    uint32_t top_min;                           /* smallest count in a full top
                                                   list, 0 while it has room */
    struct hot_index cache;                     /* struct hot_entry nodes */
    uint64_t cache_bytes;                       /* bytes charged to entries */
    struct hot_index leases;                    /* struct hot_lease nodes */
    uint64_t *gen_slots;                        /* owned: HOT_GEN_SLOTS seq
                                                   values of the last
                                                   invalidation per slot */
    uint64_t seq;                               /* invalidation sequence,
                                                   >= 1, only grows */
    uint64_t flush_seq;                         /* seq of the last flush */
    uint64_t rng;                               /* xorshift64* state, != 0 */
    struct hot_stats st;                        /* counters */
};

/* ---- hashing and the index -------------------------------------------- */

static struct hot_hash
hot_hash_key(const struct hot *h, const char *key, size_t len)
{
    XXH128_hash_t x = XXH3_128bits_withSeed(key, len, h->o.seed);
    struct hot_hash hh = {x.low64, x.high64};

    return hh;
}

static bool
hot_node_is(const struct hot_node *n, struct hot_hash hh, const char *key, size_t len)
{
    return n->hash.lo == hh.lo && n->hash.hi == hh.hi && n->klen == len &&
           (len == 0 || memcmp(n->key, key, len) == 0);
}

static void
hot_index_init(struct hot_index *ix, size_t cap)
{
    size_t nb = HOT_MIN_BUCKETS;

    while (nb < cap)
        nb <<= 1;
    ix->buckets = bw_calloc(nb, sizeof(*ix->buckets));
    ix->mask = nb - 1;
    ix->dense = bw_calloc(cap, sizeof(*ix->dense));
    ix->count = 0;
    ix->cap = cap;
}

static void
hot_index_deinit(struct hot_index *ix)
{
    bw_free(ix->buckets);
    bw_free(ix->dense);
    memset(ix, 0, sizeof(*ix));
}

static struct hot_node **
hot_index_head(struct hot_index *ix, struct hot_hash hh)
{
    return &ix->buckets[(hh.lo ^ (hh.hi >> 17)) & ix->mask];
}

static struct hot_node *
hot_index_find(struct hot_index *ix, struct hot_hash hh, const char *key, size_t len)
{
    struct hot_node *n;

    for (n = *hot_index_head(ix, hh); n != NULL; n = n->next) {
        if (hot_node_is(n, hh, key, len))
            return n;
    }
    return NULL;
}

static void
hot_index_add(struct hot_index *ix, struct hot_node *n)
{
    struct hot_node **head = hot_index_head(ix, n->hash);

    BW_ASSERT(ix->count < ix->cap);
    n->next = *head;
    *head = n;
    n->slot = ix->count;
    ix->dense[ix->count++] = n;
}

/* Unlink n (in ix); the dense array's last node moves into n's slot. */
static void
hot_index_del(struct hot_index *ix, struct hot_node *n)
{
    struct hot_node **pp = hot_index_head(ix, n->hash);
    struct hot_node *last;

    while (*pp != n) {
        BW_ASSERT(*pp != NULL);
        pp = &(*pp)->next;
    }
    *pp = n->next;
    n->next = NULL;
    last = ix->dense[--ix->count];
    ix->dense[n->slot] = last;
    last->slot = n->slot;
}

static uint64_t
hot_rand(struct hot *h)
{
    /* xorshift64* (Vigna 2016), only to pick eviction samples */
    h->rng ^= h->rng >> 12;
    h->rng ^= h->rng << 25;
    h->rng ^= h->rng >> 27;
    return h->rng * UINT64_C(2685821657736338717);
}

/* ---- the sketch ------------------------------------------------------- */

static uint32_t
hot_cms_col(struct hot_hash hh, int row)
{
    uint64_t lane = row < 2 ? hh.lo : hh.hi;

    return (uint32_t)(lane >> (32 * (row & 1))) & (HOT_CMS_WIDTH - 1);
}

static uint32_t
hot_cms_get(const struct hot *h, struct hot_hash hh)
{
    uint32_t min = UINT32_MAX;
    int r;

    for (r = 0; r < HOT_CMS_DEPTH; r++)
        min = BW_MIN(min, h->cms[r][hot_cms_col(hh, r)]);
    return min;
}

/* Conservative update: raise only the counters below min + 1. */
static uint32_t
hot_cms_add(struct hot *h, struct hot_hash hh)
{
    uint32_t min = hot_cms_get(h, hh);
    uint32_t want = min == UINT32_MAX ? min : min + 1;
    int r;

    for (r = 0; r < HOT_CMS_DEPTH; r++) {
        uint32_t *c = &h->cms[r][hot_cms_col(hh, r)];

        if (*c < want)
            *c = want;
    }
    h->cms_total++;
    return want;
}

static void hot_top_recount(struct hot *h);

/* Halve the counters once per decay_ms elapsed since the period began. */
static void
hot_age(struct hot *h, uint64_t now_ms)
{
    uint64_t periods;
    unsigned shift;
    size_t r, c;

    if (!h->clock_started) {
        h->clock_started = true;
        h->decay_at_ms = now_ms;
        return;
    }
    if (now_ms < h->decay_at_ms || now_ms - h->decay_at_ms < h->o.decay_ms)
        return;
    periods = (now_ms - h->decay_at_ms) / h->o.decay_ms;
    h->decay_at_ms += periods * h->o.decay_ms;
    shift = periods >= 32 ? 32 : (unsigned)periods;
    for (r = 0; r < HOT_CMS_DEPTH; r++) {
        for (c = 0; c < HOT_CMS_WIDTH; c++)
            h->cms[r][c] = shift == 32 ? 0 : h->cms[r][c] >> shift;
    }
    h->cms_total = periods >= 64 ? 0 : h->cms_total >> periods;
    hot_top_recount(h);
}

/* ms the current count stands for: decay_ms + time since the last halving. */
static uint64_t
hot_window_ms(const struct hot *h, uint64_t now_ms)
{
    uint64_t since = now_ms > h->decay_at_ms ? now_ms - h->decay_at_ms : 0;

    return h->o.decay_ms + since;
}

static double
hot_count_rate(const struct hot *h, uint32_t count, uint64_t now_ms)
{
    return (double)count * 1000.0 / (double)hot_window_ms(h, now_ms);
}

static bool
hot_count_is_hot(const struct hot *h, uint32_t count, uint64_t now_ms)
{
    return (double)count * 1000.0 >=
           (double)h->o.threshold_rps * (double)hot_window_ms(h, now_ms);
}

/* ---- the top list ----------------------------------------------------- */

/* Recount the tracked keys after a halving; forget those at zero. */
/* Recompute top_min after the list's counts or members changed. */
static void
hot_top_min_update(struct hot *h)
{
    uint32_t m = UINT32_MAX;

    for (size_t i = 0; i < h->ntop; i++)
        m = BW_MIN(m, h->top[i].count);
    h->top_min = h->ntop < h->o.top_keys ? 0 : m;
}

static void
hot_top_recount(struct hot *h)
{
    size_t i = 0;

    while (i < h->ntop) {
        struct hot_top_item *t = &h->top[i];

        t->count = hot_cms_get(h, t->hash);
        if (t->count > 0) {
            i++;
            continue;
        }
        bw_free(t->key);
        *t = h->top[--h->ntop];
    }
    hot_top_min_update(h);
}

/* Track key with sketch count c if it is tracked or beats the smallest. */
static void
hot_top_note(struct hot *h, struct hot_hash hh, const char *key, size_t len, uint32_t c)
{
    size_t i, min_i = 0;
    struct hot_top_item *t;

    /*
     * A tracked key's count is its sketch estimate when last noted or
     * recounted; estimates only grow between agings (which recount) and c
     * is one more than this key's estimate before this read. So c > its
     * tracked count >= top_min: c <= top_min means not tracked and not
     * beating the smallest — most reads of a wide key space stop here.
     */
    if (c <= h->top_min)
        return;
    for (i = 0; i < h->ntop; i++) {
        t = &h->top[i];
        if (t->hash.lo == hh.lo && t->hash.hi == hh.hi && t->klen == len &&
            (len == 0 || memcmp(t->key, key, len) == 0)) {
            bool was_min = t->count == h->top_min;
            t->count = c;
            if (was_min)
                hot_top_min_update(h);
            return;
        }
        if (t->count < h->top[min_i].count)
            min_i = i;
    }
    if (h->ntop < h->o.top_keys) {
        t = &h->top[h->ntop++];
    } else if (c > h->top[min_i].count) {
        t = &h->top[min_i];
        bw_free(t->key);
    } else {
        return;
    }
    t->hash = hh;
    t->key = bw_malloc(len);
    if (len > 0)
        memcpy(t->key, key, len);
    t->klen = len;
    t->count = c;
    hot_top_min_update(h);
}

/* Highest count first; equal counts by key bytes, for a stable order. */
static int
hot_top_cmp(const void *a, const void *b)
{
    const struct hot_top_item *x = a, *y = b;
    size_t n = BW_MIN(x->klen, y->klen);
    int d = n > 0 ? memcmp(x->key, y->key, n) : 0;

    if (x->count != y->count)
        return x->count > y->count ? -1 : 1;
    if (d != 0)
        return d;
    return x->klen < y->klen ? -1 : x->klen > y->klen;
}

/* ---- options, lifecycle ----------------------------------------------- */

void
hot_opts_init(struct hot_opts *o)
{
    memset(o, 0, sizeof(*o));
    o->threshold_rps = 100;
    o->max_keys = 10000;
    o->max_bytes = (size_t)64 << 20;
    o->ttl_ms = 1000;
    o->refresh_ratio = 0.8;
    o->lease_ms = 200;
    o->decay_ms = 1000;
    o->top_keys = 32;
    o->seed = 0;
}

static const char *
hot_opts_check(const struct hot_opts *o)
{
    if (o->max_keys < 1 || o->max_keys > ((size_t)1 << 30))
        return "max_keys must be in [1, 2^30]";
    if (o->max_bytes < 1)
        return "max_bytes must be at least 1";
    if (o->ttl_ms < 1)
        return "ttl_ms must be at least 1";
    if (!(o->refresh_ratio >= 0.0 && o->refresh_ratio <= 1.0))
        return "refresh_ratio must be in [0, 1]";
    if (o->decay_ms < 1)
        return "decay_ms must be at least 1";
    if (o->top_keys < 1 || o->top_keys > 100000)
        return "top_keys must be in [1, 100000]";
    return NULL;
}

struct hot *
hot_new(const struct hot_opts *o, char *err, size_t errlen)
{
    const char *why = hot_opts_check(o);
    struct hot *h;

    if (why != NULL) {
        if (errlen > 0)
            snprintf(err, errlen, "%s", why);
        return NULL;
    }
    h = bw_calloc(1, sizeof(*h));
    h->o = *o;
    h->top = bw_calloc(o->top_keys, sizeof(*h->top));
    hot_index_init(&h->cache, o->max_keys);
    hot_index_init(&h->leases, o->max_keys);
    h->gen_slots = bw_calloc(HOT_GEN_SLOTS, sizeof(*h->gen_slots));
    h->seq = 1;
    h->flush_seq = 1;
    h->rng = o->seed ^ UINT64_C(0x9e3779b97f4a7c15);
    if (h->rng == 0)
        h->rng = 1;
    return h;
}

static void hot_entry_drop(struct hot *h, struct hot_entry *e);
static void hot_lease_hand_back(struct hot_lease *l, const char *value, size_t vlen,
                                hot_waiter_fn *cb, void *ctx);

void
hot_free(struct hot *h, hot_waiter_fn *cb, void *ctx)
{
    size_t i;

    if (h == NULL)
        return;
    while (h->leases.count > 0) {
        struct hot_lease *l = (struct hot_lease *)h->leases.dense[0];

        hot_index_del(&h->leases, &l->node);
        BW_ASSERT(l->nwaiters == 0 || cb != NULL);
        hot_lease_hand_back(l, NULL, 0, cb, ctx);
    }
    while (h->cache.count > 0)
        hot_entry_drop(h, (struct hot_entry *)h->cache.dense[0]);
    for (i = 0; i < h->ntop; i++)
        bw_free(h->top[i].key);
    bw_free(h->top);
    hot_index_deinit(&h->cache);
    hot_index_deinit(&h->leases);
    bw_free(h->gen_slots);
    bw_free(h);
}

/* ---- detection -------------------------------------------------------- */

bool
hot_note_read(struct hot *h, const char *key, size_t len, uint64_t now_ms, double *rate_rps)
{
    struct hot_hash hh = hot_hash_key(h, key, len);
    uint32_t c;

    hot_age(h, now_ms);
    c = hot_cms_add(h, hh);
    hot_top_note(h, hh, key, len, c);
    if (rate_rps != NULL)
        *rate_rps = hot_count_rate(h, c, now_ms);
    return hot_count_is_hot(h, c, now_ms);
}

double
hot_rate(struct hot *h, const char *key, size_t len, uint64_t now_ms)
{
    struct hot_hash hh = hot_hash_key(h, key, len);

    hot_age(h, now_ms);
    return hot_count_rate(h, hot_cms_get(h, hh), now_ms);
}

uint64_t
hot_sketch_count(struct hot *h, const char *key, size_t len, uint64_t now_ms)
{
    struct hot_hash hh = hot_hash_key(h, key, len);

    hot_age(h, now_ms);
    return hot_cms_get(h, hh);
}

uint64_t
hot_sketch_total(struct hot *h, uint64_t now_ms)
{
    hot_age(h, now_ms);
    return h->cms_total;
}

size_t
hot_top(struct hot *h, size_t n, uint64_t now_ms, hot_top_fn *cb, void *ctx)
{
    size_t i;

    hot_age(h, now_ms);
    hot_top_recount(h);
    if (h->ntop > 1)
        qsort(h->top, h->ntop, sizeof(*h->top), hot_top_cmp);
    n = BW_MIN(n, h->ntop);
    for (i = 0; i < n; i++) {
        const struct hot_top_item *t = &h->top[i];

        cb(ctx, t->key, t->klen, hot_count_rate(h, t->count, now_ms));
    }
    return n;
}

/* ---- the cache -------------------------------------------------------- */

static size_t
hot_entry_cost(size_t klen, size_t vlen)
{
    return sizeof(struct hot_entry) + klen + vlen;
}

static void
hot_entry_drop(struct hot *h, struct hot_entry *e)
{
    hot_index_del(&h->cache, &e->node);
    h->cache_bytes -= hot_entry_cost(e->node.klen, e->vlen);
    bw_free(e);
}

/*
 * The entry to evict: of HOT_EVICT_SAMPLES random entries (all when there
 * are no more), the first expired one, else the lowest sketch count, ties
 * to the soonest expiry. The cache is not empty.
 */
static struct hot_entry *
hot_pick_victim(struct hot *h, uint64_t now_ms)
{
    size_t n = h->cache.count, k = BW_MIN(n, (size_t)HOT_EVICT_SAMPLES), i;
    struct hot_entry *best = NULL;
    uint32_t best_count = 0;

    BW_ASSERT(n > 0);
    for (i = 0; i < k; i++) {
        size_t at = n <= HOT_EVICT_SAMPLES ? i : (size_t)(hot_rand(h) % n);
        struct hot_entry *e = (struct hot_entry *)h->cache.dense[at];
        uint32_t c;

        if (e->expires_at_ms <= now_ms)
            return e;
        c = hot_cms_get(h, e->node.hash);
        if (best == NULL || c < best_count ||
            (c == best_count && e->expires_at_ms < best->expires_at_ms)) {
            best = e;
            best_count = c;
        }
    }
    return best;
}

/* Entry life in ms from the PTTL rule, or 0 when it is not to be stored. */
static uint64_t
hot_life_ms(const struct hot *h, int64_t pttl_ms)
{
    if (pttl_ms == -1)
        return h->o.ttl_ms;
    if (pttl_ms >= 1)
        return BW_MIN(h->o.ttl_ms, (uint64_t)pttl_ms);
    return 0;
}

static struct hot_entry *
hot_entry_new(struct hot_hash hh, const char *key, size_t len, const char *value, size_t vlen)
{
    struct hot_entry *e = bw_malloc(hot_entry_cost(len, vlen));

    memset(e, 0, sizeof(*e));
    if (len > 0)
        memcpy(e->data, key, len);
    if (vlen > 0)
        memcpy(e->data + len, value, vlen);
    e->node.hash = hh;
    e->node.key = e->data;
    e->node.klen = len;
    e->vlen = vlen;
    return e;
}

enum hot_store_result
hot_store(struct hot *h, const char *key, size_t len, uint64_t token, const char *value,
          size_t vlen, int64_t pttl_ms, uint64_t now_ms)
{
    struct hot_hash hh = hot_hash_key(h, key, len);
    uint64_t life = hot_life_ms(h, pttl_ms);
    size_t cost = hot_entry_cost(len, vlen);
    struct hot_entry *e;

    BW_ASSERT(token >= 1 && token <= h->seq);
    hot_age(h, now_ms);
    if (token < h->flush_seq || token < h->gen_slots[hh.hi & (HOT_GEN_SLOTS - 1)])
        return HOT_STALE;
    if (life == 0)
        return HOT_NO_TTL;
    if (cost > h->o.max_bytes)
        return HOT_TOO_BIG;
    e = (struct hot_entry *)hot_index_find(&h->cache, hh, key, len);
    if (e != NULL)
        hot_entry_drop(h, e);
    while (h->cache.count >= h->o.max_keys || h->cache_bytes + cost > h->o.max_bytes)
        hot_entry_drop(h, hot_pick_victim(h, now_ms));
    e = hot_entry_new(hh, key, len, value, vlen);
    e->created_ms = now_ms;
    e->expires_at_ms = now_ms + life;
    e->refresh_at_ms = now_ms + (uint64_t)(h->o.refresh_ratio * (double)life);
    e->gen = h->seq;
    hot_index_add(&h->cache, &e->node);
    h->cache_bytes += cost;
    return HOT_STORED;
}

bool
hot_lookup(struct hot *h, const char *key, size_t len, uint64_t now_ms, struct hot_hit *hit)
{
    struct hot_hash hh = hot_hash_key(h, key, len);
    struct hot_entry *e;
    bool refresh = false;

    hot_age(h, now_ms);
    e = (struct hot_entry *)hot_index_find(&h->cache, hh, key, len);
    if (e != NULL && now_ms >= e->expires_at_ms) {
        hot_entry_drop(h, e);
        e = NULL;
    }
    if (e == NULL) {
        if (hot_count_is_hot(h, hot_cms_get(h, hh), now_ms))
            h->st.hotkey_misses++;
        return false;
    }
    if (!e->refreshing && now_ms > e->refresh_at_ms) {
        if (!hot_count_is_hot(h, hot_cms_get(h, hh), now_ms)) {
            hot_entry_drop(h, e); /* cooled down: not refreshed */
            return false;
        }
        e->refreshing = true;
        refresh = true;
        h->st.hotkey_refreshes++;
    }
    h->st.hotkey_hits++;
    hit->value = e->data + e->node.klen;
    hit->vlen = e->vlen;
    hit->created_ms = e->created_ms;
    hit->expires_at_ms = e->expires_at_ms;
    hit->refresh = refresh;
    return true;
}

uint64_t
hot_fetch_begin(struct hot *h, const char *key, size_t len)
{
    (void)key; /* the check is by the key's slot, made in hot_store() */
    (void)len;
    return h->seq;
}

void
hot_invalidate(struct hot *h, const char *key, size_t len)
{
    struct hot_hash hh = hot_hash_key(h, key, len);
    struct hot_node *n = hot_index_find(&h->cache, hh, key, len);

    struct hot_lease *l;

    h->gen_slots[hh.hi & (HOT_GEN_SLOTS - 1)] = ++h->seq;
    if (n != NULL) {
        hot_entry_drop(h, (struct hot_entry *)n);
        h->st.hotkey_invalidations++;
    }
    /* Written: a spent lease lets go (a live one waits for its refill). */
    l = h->leases.count > 0 ? (struct hot_lease *)hot_index_find(&h->leases, hh, key, len) : NULL;
    if (l != NULL && l->spent) {
        hot_index_del(&h->leases, &l->node);
        hot_lease_hand_back(l, NULL, 0, NULL, NULL);
    }
}

size_t
hot_drop_if(struct hot *h, hot_key_pred_fn *pred, void *ctx)
{
    size_t dropped = 0;
    /* from the end: a drop moves the last entry (already seen) into its place */
    for (size_t i = h->cache.count; i > 0; i--) {
        struct hot_node *n = h->cache.dense[i - 1];
        if (!pred(ctx, n->key, n->klen))
            continue;
        size_t klen = n->klen;
        char *key = bw_strndup(n->key, klen); /* n is freed by the drop */
        hot_invalidate(h, key, klen);
        bw_free(key);
        dropped++;
    }
    return dropped;
}

void
hot_flush(struct hot *h)
{
    h->flush_seq = ++h->seq;
    while (h->cache.count > 0) {
        hot_entry_drop(h, (struct hot_entry *)h->cache.dense[0]);
        h->st.hotkey_invalidations++;
    }
}

/* ---- leases ----------------------------------------------------------- */

/* Give l's waiters to cb (l already out of the index), then free l. */
static void
hot_lease_hand_back(struct hot_lease *l, const char *value, size_t vlen, hot_waiter_fn *cb,
                    void *ctx)
{
    size_t i;

    for (i = 0; i < l->nwaiters; i++)
        cb(ctx, l->waiters[i], value, vlen);
    bw_free(l->waiters);
    bw_free(l);
}

static struct hot_lease *
hot_lease_find(struct hot *h, const char *key, size_t len)
{
    struct hot_hash hh = hot_hash_key(h, key, len);

    return (struct hot_lease *)hot_index_find(&h->leases, hh, key, len);
}

/* Free one spent lease to make room; false when every lease is live. */
static bool
hot_lease_evict_spent(struct hot *h)
{
    size_t i;

    for (i = 0; i < h->leases.count; i++) {
        struct hot_lease *l = (struct hot_lease *)h->leases.dense[i];

        if (l->spent) {
            hot_index_del(&h->leases, &l->node);
            hot_lease_hand_back(l, NULL, 0, NULL, NULL);
            return true;
        }
    }
    return false;
}

bool
hot_lease_begin(struct hot *h, const char *key, size_t len, uint64_t now_ms, uint64_t lease_ms)
{
    struct hot_hash hh = hot_hash_key(h, key, len);
    struct hot_lease *l;

    if (lease_ms == 0)
        lease_ms = h->o.lease_ms;
    if (lease_ms == 0 || hot_index_find(&h->leases, hh, key, len) != NULL)
        return false; /* disabled, live, or spent: the key stays absent */
    if (h->leases.count >= h->leases.cap && !hot_lease_evict_spent(h))
        return false;
    l = bw_malloc(sizeof(*l) + len);
    memset(l, 0, sizeof(*l));
    if (len > 0)
        memcpy(l->data, key, len);
    l->node.hash = hh;
    l->node.key = l->data;
    l->node.klen = len;
    l->expires_at_ms = now_ms + lease_ms;
    hot_index_add(&h->leases, &l->node);
    return true;
}

bool
hot_lease_hold(struct hot *h, const char *key, size_t len, uint64_t now_ms, void *waiter)
{
    struct hot_lease *l;

    if (h->leases.count == 0)
        return false;
    l = hot_lease_find(h, key, len);
    if (l == NULL || l->spent || now_ms >= l->expires_at_ms)
        return false;
    BW_ASSERT(waiter != NULL);
    if (l->nwaiters == l->cap) {
        l->cap = l->cap == 0 ? HOT_WAITERS_MIN : l->cap * 2;
        l->waiters = bw_realloc(l->waiters, l->cap * sizeof(*l->waiters));
    }
    l->waiters[l->nwaiters++] = waiter;
    h->st.hotkey_lease_holds++;
    return true;
}

size_t
hot_lease_release(struct hot *h, const char *key, size_t len, const char *value, size_t vlen,
                  hot_waiter_fn *cb, void *ctx)
{
    struct hot_lease *l;
    size_t n;

    if (h->leases.count == 0)
        return 0;
    l = hot_lease_find(h, key, len);
    if (l == NULL)
        return 0;
    hot_index_del(&h->leases, &l->node);
    n = l->nwaiters;
    h->st.hotkey_lease_wakeups += n;
    hot_lease_hand_back(l, value, vlen, cb, ctx);
    return n;
}

size_t
hot_lease_waiters(struct hot *h, const char *key, size_t len)
{
    if (h->leases.count == 0)
        return 0;
    struct hot_lease *l = hot_lease_find(h, key, len);
    return l != NULL ? l->nwaiters : 0;
}

size_t
hot_lease_expire(struct hot *h, uint64_t now_ms, hot_waiter_fn *cb, void *ctx)
{
    void **held = NULL;
    size_t i, n = 0, cap = 0;

    /* Collect first, call back after: cb may begin and hold other leases. A
     * lease that ran out stays, spent, so that a key which keeps coming back
     * nil is not leased again (its readers are not held again) until it is
     * written. */
    for (i = 0; i < h->leases.count; i++) {
        struct hot_lease *l = (struct hot_lease *)h->leases.dense[i];

        if (l->spent || now_ms < l->expires_at_ms)
            continue;
        l->spent = true;
        h->st.hotkey_lease_spent++;
        if (n + l->nwaiters > cap) {
            cap = BW_MAX(cap * 2, n + l->nwaiters);
            held = bw_realloc(held, cap * sizeof(*held));
        }
        if (l->nwaiters > 0)
            memcpy(&held[n], l->waiters, l->nwaiters * sizeof(*held));
        n += l->nwaiters;
        bw_free(l->waiters);
        l->waiters = NULL;
        l->nwaiters = l->cap = 0;
    }
    h->st.hotkey_lease_timeouts += n;
    for (i = 0; i < n; i++)
        cb(ctx, held[i], NULL, 0);
    bw_free(held);
    return n;
}

bool
hot_lease_cancel(struct hot *h, const char *key, size_t len, void *waiter)
{
    struct hot_lease *l;
    size_t i;

    if (h->leases.count == 0)
        return false;
    l = hot_lease_find(h, key, len);
    if (l == NULL)
        return false;
    for (i = 0; i < l->nwaiters; i++) {
        if (l->waiters[i] != waiter)
            continue;
        memmove(&l->waiters[i], &l->waiters[i + 1], (l->nwaiters - i - 1) * sizeof(*l->waiters));
        l->nwaiters--;
        return true;
    }
    return false;
}

uint64_t
hot_lease_next_deadline(const struct hot *h)
{
    uint64_t t = UINT64_MAX;
    size_t i;

    for (i = 0; i < h->leases.count; i++) {
        const struct hot_lease *l = (const struct hot_lease *)h->leases.dense[i];

        if (!l->spent)
            t = BW_MIN(t, l->expires_at_ms);
    }
    return t;
}

void
hot_stats_get(const struct hot *h, struct hot_stats *out)
{
    *out = h->st;
    out->hotkey_cached_keys = h->cache.count;
    out->hotkey_cache_bytes = h->cache_bytes;
}
