/*
 * tracking: CLIENT TRACKING state, the default-mode key table and the BCAST
 * prefix table for bulwark's own clients (Redis 7.0 src/tracking.c).
 */
#include "proxy/tracking.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "proxy/util.h"

/* Client flags (Redis's CLIENT_TRACKING_* of one client). */
#define TRK_ON 0x01u      /* tracking on (the state exists only then) */
#define TRK_BCAST 0x02u   /* BCAST mode */
#define TRK_OPTIN 0x04u   /* OPTIN mode */
#define TRK_OPTOUT 0x08u  /* OPTOUT mode */
#define TRK_CACHING 0x10u /* CLIENT CACHING yes (OPTIN) / no (OPTOUT) given */
#define TRK_NOLOOP 0x20u  /* NOLOOP */
#define TRK_BROKEN 0x40u  /* the redirect client was gone at a delivery */

/* Initial bucket counts (powers of two). */
#define TRK_KEY_BUCKETS 64
#define TRK_CLIENT_BUCKETS 16

/* Redis's trackingLimitUsedSlots(): keys evicted per call per round. */
#define TRK_EVICT_EFFORT 100

/* A byte string (owned). */
struct trk_str {
    char *ptr;  /* owned, len bytes (plus a NUL for convenience) */
    size_t len; /* bytes */
};

/*
 * A sorted set of client ids, in the order Redis's rax of ids iterates
 * them: memcmp of the id's bytes in memory, little-endian on every host
 * bulwark runs on (x86-64, ARM64), i.e. ascending byte-swapped id. Clients
 * sharing a REDIRECT target get their messages in this order, as from
 * Redis (the differential test found it: id 2816, 0x0b00, goes before
 * 2714, 0x0a9a).
 */
struct trk_ids {
    uint64_t *v; /* owned, in trk_id_order() */
    size_t n;    /* ids in v */
    size_t cap;  /* slots in v */
};

/* One tracking client (exists while tracking is on). */
struct trk_client {
    struct trk_client *next;  /* hash chain (owned by the table) */
    uint64_t id;              /* bulwark client id */
    unsigned flags;           /* TRK_* */
    uint64_t redirect;        /* REDIRECT id, 0 = none */
    struct trk_str *prefixes; /* owned, BCAST prefixes in byte order */
    size_t nprefixes;         /* entries in prefixes */
};

/* One key of the default-mode table. */
struct trk_key {
    struct trk_key *next; /* hash chain (owned by the table) */
    uint64_t hash;        /* of the name */
    struct trk_ids ids;   /* clients that read the key (some maybe stale) */
    size_t len;           /* name bytes */
    char name[];          /* the key name */
};

/* A key changed under a BCAST prefix since the last flush. */
struct trk_pending {
    struct trk_str key; /* owned copy */
    uint64_t writer;    /* who changed it, TRACKING_WRITER_NONE */
    uint64_t seq;       /* arrival order (the last writer wins) */
};

/* One BCAST prefix. */
struct trk_prefix {
    struct trk_str bytes;     /* the prefix (owned) */
    struct trk_ids clients;   /* its clients */
    struct trk_pending *pend; /* owned, keys changed since the last flush */
    size_t npend;             /* entries in pend */
    size_t cappend;           /* slots in pend */
};

struct tracking {
    tracking_lookup_fn *lookup; /* client facts */
    tracking_send_fn *send;     /* delivery */
    void *arg;                  /* borrowed, for both */
    struct trk_client **cb;     /* owned: client hash buckets */
    size_t ncb;                 /* buckets (power of two) */
    size_t nclients;            /* clients with tracking on */
    struct trk_key **kb;        /* owned: key hash buckets */
    size_t nkb;                 /* buckets (power of two) */
    size_t nkeys;               /* keys in the table */
    uint64_t nitems;            /* (key, id) pairs */
    struct trk_prefix *pfx;     /* owned, in byte order of the prefix */
    size_t npfx;                /* entries in pfx */
    size_t cappfx;              /* slots in pfx */
    uint64_t seed;              /* hash seed */
    uint64_t rng;               /* xorshift state for eviction */
    unsigned evict_rounds;      /* calls of tracking_limit still over */
    uint64_t seq;               /* pending-key counter */
    uint64_t own;               /* client whose own invalidations wait in own_keys */
    struct trk_str *own_keys;   /* owned: keys (ptr NULL: a flush) held for
                                   tracking_after_command(own) */
    size_t nown, capown;        /* entries used / allocated in own_keys */
    char *msg;                  /* owned scratch for messages */
    size_t msglen, msgcap;      /* bytes used / allocated in msg */
};

/* ---- small helpers ------------------------------------------------------ */

static uint64_t
trk_hash(const struct tracking *t, const char *p, size_t len)
{
    uint64_t h = 0xcbf29ce484222325ULL ^ t->seed; /* FNV-1a 64, seeded */
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)p[i];
        h *= 0x100000001b3ULL;
    }
    return h ^ (h >> 29);
}

static uint64_t
trk_hash_id(uint64_t id)
{
    id ^= id >> 33;
    id *= 0xff51afd7ed558ccdULL;
    return id ^ (id >> 33);
}

static uint64_t
trk_rand(struct tracking *t)
{
    uint64_t x = t->rng;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return t->rng = x;
}

/* Byte order of rax (Redis's radix tree): memcmp, a prefix sorts first. */
static int
trk_cmp(const char *a, size_t alen, const char *b, size_t blen)
{
    int r = memcmp(a, b, BW_MIN(alen, blen));
    if (r != 0)
        return r;
    return alen < blen ? -1 : alen > blen;
}

static bool
trk_arg_is(const struct tracking_arg *a, const char *s)
{
    return a->len == strlen(s) && strncasecmp(a->ptr, s, a->len) == 0;
}

static struct trk_str
trk_str_dup(const char *p, size_t len)
{
    struct trk_str s = {bw_malloc(len + 1), len};
    memcpy(s.ptr, p, len);
    s.ptr[len] = '\0';
    return s;
}

/* Append len bytes to a growable buffer. */
static void
trk_cat(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    if (*len + n > *cap) {
        size_t want = BW_MAX(*cap * 2, *len + n);
        *buf = bw_realloc(*buf, BW_MAX(want, (size_t)64));
        *cap = BW_MAX(want, (size_t)64);
    }
    memcpy(*buf + *len, p, n);
    *len += n;
}

static void trk_catf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void
trk_catf(char **buf, size_t *len, size_t *cap, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    BW_ASSERT(n >= 0 && (size_t)n < sizeof(tmp));
    trk_cat(buf, len, cap, tmp, (size_t)n);
}

static void
trk_cat_bulk(char **buf, size_t *len, size_t *cap, const char *p, size_t n)
{
    trk_catf(buf, len, cap, "$%zu\r\n", n);
    trk_cat(buf, len, cap, p, n);
    trk_cat(buf, len, cap, "\r\n", 2);
}

/* The sort key of an id in a trk_ids (see there). */
static uint64_t
trk_id_order(uint64_t id)
{
    return __builtin_bswap64(id);
}

/* Insert id into a sorted id set; false when it was there. */
static bool
trk_ids_add(struct trk_ids *s, uint64_t id)
{
    size_t lo = 0, hi = s->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (trk_id_order(s->v[mid]) < trk_id_order(id))
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < s->n && s->v[lo] == id)
        return false;
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 2;
        s->v = bw_realloc(s->v, s->cap * sizeof(*s->v));
    }
    memmove(s->v + lo + 1, s->v + lo, (s->n - lo) * sizeof(*s->v));
    s->v[lo] = id;
    s->n++;
    return true;
}

static void
trk_ids_del(struct trk_ids *s, uint64_t id)
{
    for (size_t i = 0; i < s->n; i++) {
        if (s->v[i] == id) {
            memmove(s->v + i, s->v + i + 1, (s->n - i - 1) * sizeof(*s->v));
            s->n--;
            return;
        }
    }
}

/* ---- clients ------------------------------------------------------------ */

static struct trk_client *
trk_client_get(const struct tracking *t, uint64_t id)
{
    struct trk_client *c = t->cb[trk_hash_id(id) & (t->ncb - 1)];
    while (c != NULL && c->id != id)
        c = c->next;
    return c;
}

static void
trk_client_rehash(struct tracking *t)
{
    size_t n = t->ncb * 2;
    struct trk_client **b = bw_calloc(n, sizeof(*b));
    for (size_t i = 0; i < t->ncb; i++) {
        struct trk_client *c = t->cb[i], *next;
        for (; c != NULL; c = next) {
            next = c->next;
            size_t j = trk_hash_id(c->id) & (n - 1);
            c->next = b[j];
            b[j] = c;
        }
    }
    bw_free(t->cb);
    t->cb = b;
    t->ncb = n;
}

static struct trk_client *
trk_client_create(struct tracking *t, uint64_t id)
{
    if (t->nclients >= t->ncb)
        trk_client_rehash(t);
    struct trk_client *c = bw_calloc(1, sizeof(*c));
    size_t j = trk_hash_id(id) & (t->ncb - 1);
    c->id = id;
    c->next = t->cb[j];
    t->cb[j] = c;
    t->nclients++;
    return c;
}

/* ---- prefixes ----------------------------------------------------------- */

/* Index of prefix p in the table, or where it would go (*found false). */
static size_t
trk_prefix_find(const struct tracking *t, const char *p, size_t len, bool *found)
{
    size_t lo = 0, hi = t->npfx;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (trk_cmp(t->pfx[mid].bytes.ptr, t->pfx[mid].bytes.len, p, len) < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = lo < t->npfx && trk_cmp(t->pfx[lo].bytes.ptr, t->pfx[lo].bytes.len, p, len) == 0;
    return lo;
}

static void
trk_pending_clear(struct trk_prefix *x)
{
    for (size_t i = 0; i < x->npend; i++)
        bw_free(x->pend[i].key.ptr);
    x->npend = 0;
}

/* Redis's enableBcastTrackingForPrefix(). */
static void
trk_prefix_join(struct tracking *t, struct trk_client *c, const char *p, size_t len)
{
    bool found;
    size_t i = trk_prefix_find(t, p, len, &found);
    if (!found) {
        if (t->npfx == t->cappfx) {
            t->cappfx = t->cappfx ? t->cappfx * 2 : 4;
            t->pfx = bw_realloc(t->pfx, t->cappfx * sizeof(*t->pfx));
        }
        memmove(t->pfx + i + 1, t->pfx + i, (t->npfx - i) * sizeof(*t->pfx));
        memset(&t->pfx[i], 0, sizeof(t->pfx[i]));
        t->pfx[i].bytes = trk_str_dup(p, len);
        t->npfx++;
    }
    if (!trk_ids_add(&t->pfx[i].clients, c->id))
        return;
    size_t k = 0;
    while (k < c->nprefixes && trk_cmp(c->prefixes[k].ptr, c->prefixes[k].len, p, len) < 0)
        k++;
    c->prefixes = bw_realloc(c->prefixes, (c->nprefixes + 1) * sizeof(*c->prefixes));
    memmove(c->prefixes + k + 1, c->prefixes + k, (c->nprefixes - k) * sizeof(*c->prefixes));
    c->prefixes[k] = trk_str_dup(p, len);
    c->nprefixes++;
}

static void
trk_prefix_leave(struct tracking *t, uint64_t id, const struct trk_str *p)
{
    bool found;
    size_t i = trk_prefix_find(t, p->ptr, p->len, &found);
    BW_ASSERT(found);
    struct trk_prefix *x = &t->pfx[i];
    trk_ids_del(&x->clients, id);
    if (x->clients.n > 0)
        return;
    trk_pending_clear(x);
    bw_free(x->pend);
    bw_free(x->clients.v);
    bw_free(x->bytes.ptr);
    memmove(t->pfx + i, t->pfx + i + 1, (t->npfx - i - 1) * sizeof(*t->pfx));
    t->npfx--;
}

/* ---- delivery ----------------------------------------------------------- */

void
tracking_encode(char **buf, size_t *len, size_t *cap, bool push, const struct tracking_arg *keys,
                size_t nkeys, bool flush, int null_resp)
{
    static const char push_hdr[] = ">2\r\n$10\r\ninvalidate\r\n";
    static const char msg_hdr[] = "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n";
    if (push)
        trk_cat(buf, len, cap, push_hdr, sizeof(push_hdr) - 1);
    else
        trk_cat(buf, len, cap, msg_hdr, sizeof(msg_hdr) - 1);
    if (flush) {
        if (null_resp > 2)
            trk_cat(buf, len, cap, "_\r\n", 3);
        else
            trk_cat(buf, len, cap, "$-1\r\n", 5);
        return;
    }
    trk_catf(buf, len, cap, "*%zu\r\n", nkeys);
    for (size_t i = 0; i < nkeys; i++)
        trk_cat_bulk(buf, len, cap, keys[i].ptr, keys[i].len);
}

/*
 * Redis's sendTrackingMessage(): to c itself in RESP3 as a push, or to its
 * REDIRECT client (a push when that one speaks RESP3, a pub/sub message
 * when it speaks RESP2 and is subscribed, else nothing); a redirect client
 * that is gone marks c broken and tells c so (RESP3 only).
 */
static void
trk_deliver(struct tracking *t, struct trk_client *c, const struct tracking_arg *keys,
            size_t nkeys, bool flush)
{
    struct tracking_peer self, target;
    if (!t->lookup(t->arg, c->id, &self))
        return;
    uint64_t to = c->id;
    bool redirected = false;
    target = self;
    if (c->redirect != 0) {
        if (!t->lookup(t->arg, c->redirect, &target)) {
            c->flags |= TRK_BROKEN;
            if (self.resp > 2) {
                t->msglen = 0;
                trk_catf(&t->msg, &t->msglen, &t->msgcap,
                         ">2\r\n$21\r\ntracking-redir-broken\r\n:%llu\r\n",
                         (unsigned long long)c->redirect);
                t->send(t->arg, c->id, t->msg, t->msglen);
            }
            return;
        }
        to = c->redirect;
        redirected = true;
    }
    bool push;
    if (target.resp > 2)
        push = true;
    else if (redirected && target.pubsub)
        push = false;
    else
        return; /* RESP2 without redirection: nowhere to put it */
    t->msglen = 0;
    tracking_encode(&t->msg, &t->msglen, &t->msgcap, push, keys, nkeys, flush, self.resp);
    t->send(t->arg, to, t->msg, t->msglen);
}

/* ---- the default-mode table --------------------------------------------- */

static struct trk_key **
trk_key_slot(struct tracking *t, const char *key, size_t len, uint64_t h)
{
    struct trk_key **pp = &t->kb[h & (t->nkb - 1)];
    while (*pp != NULL &&
           !((*pp)->hash == h && (*pp)->len == len && memcmp((*pp)->name, key, len) == 0))
        pp = &(*pp)->next;
    return pp;
}

static void
trk_key_rehash(struct tracking *t, size_t n)
{
    struct trk_key **b = bw_calloc(n, sizeof(*b));
    for (size_t i = 0; i < t->nkb; i++) {
        struct trk_key *k = t->kb[i], *next;
        for (; k != NULL; k = next) {
            next = k->next;
            size_t j = k->hash & (n - 1);
            k->next = b[j];
            b[j] = k;
        }
    }
    bw_free(t->kb);
    t->kb = b;
    t->nkb = n;
}

static void
trk_key_free(struct trk_key *k)
{
    bw_free(k->ids.v);
    bw_free(k);
}

/*
 * Redis's trackingInvalidateKey() without the BCAST part: the clients in the
 * table for key (tracking on, not BCAST, not skip when NOLOOP) are told,
 * and the key leaves the table.
 */
static void trk_own_hold(struct tracking *t, uint64_t id, const char *key, size_t len);
static void trk_own_clear(struct tracking *t);

static void trk_key_add(struct tracking *t, const char *key, size_t len, uint64_t id);

/*
 * key changed: every client remembering it is told (the NOLOOP client skip
 * is not) and the key is forgotten. keep_skip: a NOLOOP writer's own write,
 * applied when its reply or the watch's echo comes — the writer may have
 * read key again since it sent the write (SET k then GET k, pipelined), so
 * it stays remembered (Redis forgets it: at worst a later change tells it
 * once more than Redis would; forgetting it could leave its read untold).
 */
static void
trk_invalidate(struct tracking *t, const char *key, size_t len, uint64_t skip, uint64_t writer,
               bool keep_skip)
{
    struct trk_key **pp = trk_key_slot(t, key, len, trk_hash(t, key, len));
    struct trk_key *k = *pp;
    if (k == NULL)
        return;
    *pp = k->next; /* unlinked first: key may point into k->name */
    t->nkeys--;
    t->nitems -= k->ids.n;
    struct tracking_arg arg = {k->name, k->len};
    bool keep = false;
    for (size_t i = 0; i < k->ids.n; i++) {
        struct trk_client *c = trk_client_get(t, k->ids.v[i]);
        if (c == NULL || (c->flags & TRK_BCAST))
            continue;
        if ((c->flags & TRK_NOLOOP) && c->id == skip) {
            keep = keep_skip;
            continue;
        }
        if (c->id == writer && writer != TRACKING_WRITER_NONE)
            trk_own_hold(t, c->id, k->name, k->len); /* after its command */
        else
            trk_deliver(t, c, &arg, 1, false);
    }
    if (keep)
        trk_key_add(t, k->name, k->len, skip);
    trk_key_free(k);
    /* Shrink a mostly empty table: random eviction scans buckets. */
    if (t->nkb > TRK_KEY_BUCKETS && t->nkeys < t->nkb / 8)
        trk_key_rehash(t, t->nkb / 2);
}

static void
trk_keys_clear(struct tracking *t)
{
    for (size_t i = 0; i < t->nkb; i++) {
        struct trk_key *k = t->kb[i], *next;
        for (; k != NULL; k = next) {
            next = k->next;
            trk_key_free(k);
        }
    }
    bw_free(t->kb);
    t->nkb = TRK_KEY_BUCKETS;
    t->kb = bw_calloc(t->nkb, sizeof(*t->kb));
    t->nkeys = 0;
    t->nitems = 0;
}

/* ---- public: lifecycle and state --------------------------------------- */

struct tracking *
tracking_new(tracking_lookup_fn *lookup, tracking_send_fn *send, void *arg)
{
    BW_ASSERT(lookup != NULL && send != NULL);
    struct tracking *t = bw_calloc(1, sizeof(*t));
    t->lookup = lookup;
    t->send = send;
    t->arg = arg;
    t->ncb = TRK_CLIENT_BUCKETS;
    t->cb = bw_calloc(t->ncb, sizeof(*t->cb));
    t->nkb = TRK_KEY_BUCKETS;
    t->kb = bw_calloc(t->nkb, sizeof(*t->kb));
    if (getentropy(&t->seed, sizeof(t->seed)) != 0)
        t->seed = (uint64_t)(uintptr_t)t ^ bw_now_us();
    t->rng = t->seed | 1;
    return t;
}

static void
trk_client_free(struct trk_client *c)
{
    for (size_t i = 0; i < c->nprefixes; i++)
        bw_free(c->prefixes[i].ptr);
    bw_free(c->prefixes);
    bw_free(c);
}

void
tracking_free(struct tracking *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->ncb; i++) {
        struct trk_client *c = t->cb[i], *next;
        for (; c != NULL; c = next) {
            next = c->next;
            trk_client_free(c);
        }
    }
    bw_free(t->cb);
    trk_keys_clear(t);
    bw_free(t->kb);
    for (size_t i = 0; i < t->npfx; i++) {
        trk_pending_clear(&t->pfx[i]);
        bw_free(t->pfx[i].pend);
        bw_free(t->pfx[i].clients.v);
        bw_free(t->pfx[i].bytes.ptr);
    }
    bw_free(t->pfx);
    trk_own_clear(t);
    bw_free(t->own_keys);
    bw_free(t->msg);
    bw_free(t);
}

bool
tracking_is_on(const struct tracking *t, uint64_t id)
{
    return t->nclients > 0 && trk_client_get(t, id) != NULL;
}

bool
tracking_any(const struct tracking *t)
{
    return t->nclients > 0;
}

bool
tracking_client_flags(const struct tracking *t, uint64_t id, char *flags, int64_t *redir)
{
    const struct trk_client *c = t->nclients > 0 ? trk_client_get(t, id) : NULL;
    char *f = flags;
    *redir = -1;
    if (c == NULL) {
        *f = '\0';
        return false;
    }
    *f++ = 't';
    if (c->flags & TRK_BROKEN)
        *f++ = 'R';
    if (c->flags & TRK_BCAST)
        *f++ = 'B';
    *f = '\0';
    *redir = (int64_t)c->redirect;
    return true;
}

void
tracking_disable(struct tracking *t, uint64_t id)
{
    struct trk_client **pp = &t->cb[trk_hash_id(id) & (t->ncb - 1)];
    while (*pp != NULL && (*pp)->id != id)
        pp = &(*pp)->next;
    struct trk_client *c = *pp;
    if (c == NULL)
        return;
    *pp = c->next;
    for (size_t i = 0; i < c->nprefixes; i++)
        trk_prefix_leave(t, id, &c->prefixes[i]);
    t->nclients--;
    trk_client_free(c);
}

void
tracking_client_gone(struct tracking *t, uint64_t id)
{
    if (t->nown > 0 && t->own == id)
        trk_own_clear(t);
    tracking_disable(t, id);
}

void
tracking_counts(const struct tracking *t, struct tracking_counts *out)
{
    out->clients = t->nclients;
    out->keys = t->nkeys;
    out->items = t->nitems;
    out->prefixes = t->npfx;
}

/* ---- public: the request path ------------------------------------------ */

void
tracking_remember_keys(struct tracking *t, uint64_t id, const struct tracking_arg *keys,
                       size_t nkeys)
{
    struct trk_client *c = t->nclients ? trk_client_get(t, id) : NULL;
    if (c == NULL || (c->flags & TRK_BCAST))
        return;
    bool caching = c->flags & TRK_CACHING;
    if (((c->flags & TRK_OPTIN) && !caching) || ((c->flags & TRK_OPTOUT) && caching))
        return;
    for (size_t i = 0; i < nkeys; i++)
        trk_key_add(t, keys[i].ptr, keys[i].len, id);
}

/* Client id remembers key (len bytes). */
static void
trk_key_add(struct tracking *t, const char *key, size_t len, uint64_t id)
{
    uint64_t h = trk_hash(t, key, len);
    struct trk_key **pp = trk_key_slot(t, key, len, h);
    if (*pp == NULL) {
        struct trk_key *k = bw_calloc(1, sizeof(*k) + len + 1);
        k->hash = h;
        k->len = len;
        memcpy(k->name, key, len);
        *pp = k;
        t->nkeys++;
    }
    if (trk_ids_add(&(*pp)->ids, id))
        t->nitems++;
    if (t->nkeys > t->nkb)
        trk_key_rehash(t, t->nkb * 2);
}

/* Drop the held invalidations (their client is gone). */
static void
trk_own_clear(struct tracking *t)
{
    for (size_t i = 0; i < t->nown; i++)
        bw_free(t->own_keys[i].ptr);
    t->nown = 0;
    t->own = TRACKING_WRITER_NONE;
}

/* Send the held invalidations of t->own, in the order they were held. */
static void
trk_own_release(struct tracking *t)
{
    struct trk_client *c = t->nown > 0 ? trk_client_get(t, t->own) : NULL;
    for (size_t i = 0; c != NULL && i < t->nown; i++) {
        struct tracking_arg arg = {t->own_keys[i].ptr, t->own_keys[i].len};
        trk_deliver(t, c, &arg, 1, arg.ptr == NULL);
    }
    trk_own_clear(t);
}

/*
 * Hold an invalidation for id's own change (key NULL: a flush) until
 * tracking_after_command(id): Redis's tracking_pending_keys. Another
 * client's held ones go first (its after_command was missed).
 */
static void
trk_own_hold(struct tracking *t, uint64_t id, const char *key, size_t len)
{
    if (t->nown > 0 && t->own != id)
        trk_own_release(t);
    t->own = id;
    if (t->nown == t->capown) {
        t->capown = t->capown ? t->capown * 2 : 4;
        t->own_keys = bw_realloc(t->own_keys, t->capown * sizeof(*t->own_keys));
    }
    t->own_keys[t->nown++] = key != NULL ? trk_str_dup(key, len) : (struct trk_str){NULL, 0};
}

void
tracking_after_command(struct tracking *t, uint64_t id, bool in_multi, bool was_client_cmd)
{
    if (t->nown > 0 && t->own == id)
        trk_own_release(t);
    if (in_multi || was_client_cmd || t->nclients == 0)
        return;
    struct trk_client *c = trk_client_get(t, id);
    if (c != NULL)
        c->flags &= ~TRK_CACHING;
}

void
tracking_key_changed(struct tracking *t, const char *key, size_t len, uint64_t writer)
{
    for (size_t i = 0; i < t->npfx; i++) {
        struct trk_prefix *x = &t->pfx[i];
        if (x->bytes.len > len || memcmp(x->bytes.ptr, key, x->bytes.len) != 0)
            continue;
        if (x->npend == x->cappend) {
            x->cappend = x->cappend ? x->cappend * 2 : 8;
            x->pend = bw_realloc(x->pend, x->cappend * sizeof(*x->pend));
        }
        x->pend[x->npend++] = (struct trk_pending){trk_str_dup(key, len), writer, t->seq++};
    }
    if (t->nkeys > 0)
        trk_invalidate(t, key, len, writer, writer, true);
}

static int
trk_pending_cmp(const void *a, const void *b)
{
    const struct trk_pending *x = a, *y = b;
    int r = trk_cmp(x->key.ptr, x->key.len, y->key.ptr, y->key.len);
    if (r != 0)
        return r;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

/* Sort and dedupe a prefix's pending keys (the last writer of each kept). */
static size_t
trk_pending_unique(struct trk_prefix *x)
{
    qsort(x->pend, x->npend, sizeof(*x->pend), trk_pending_cmp);
    size_t n = 0;
    for (size_t i = 0; i < x->npend; i++) {
        if (n > 0 && trk_cmp(x->pend[n - 1].key.ptr, x->pend[n - 1].key.len, x->pend[i].key.ptr,
                             x->pend[i].key.len) == 0) {
            bw_free(x->pend[n - 1].key.ptr);
            x->pend[n - 1] = x->pend[i]; /* later arrival: its writer wins */
        } else {
            x->pend[n++] = x->pend[i];
        }
    }
    x->npend = n;
    return n;
}

/* Send one prefix's keys to its clients (each NOLOOP one its own subset). */
static void
trk_bcast_prefix(struct tracking *t, struct trk_prefix *x)
{
    size_t n = trk_pending_unique(x);
    struct tracking_arg *all = bw_malloc(n * sizeof(*all));
    struct tracking_arg *mine = bw_malloc(n * sizeof(*mine));
    for (size_t i = 0; i < n; i++)
        all[i] = (struct tracking_arg){x->pend[i].key.ptr, x->pend[i].key.len};
    for (size_t j = 0; j < x->clients.n; j++) {
        struct trk_client *c = trk_client_get(t, x->clients.v[j]);
        BW_ASSERT(c != NULL);
        if (!(c->flags & TRK_NOLOOP)) {
            trk_deliver(t, c, all, n, false);
            continue;
        }
        size_t m = 0;
        for (size_t i = 0; i < n; i++)
            if (x->pend[i].writer != c->id)
                mine[m++] = all[i];
        if (m > 0)
            trk_deliver(t, c, mine, m, false);
    }
    bw_free(all);
    bw_free(mine);
    trk_pending_clear(x);
}

void
tracking_bcast_flush(struct tracking *t)
{
    /* trk_deliver never changes the prefix table, so indexes stay valid. */
    for (size_t i = 0; i < t->npfx; i++)
        if (t->pfx[i].npend > 0)
            trk_bcast_prefix(t, &t->pfx[i]);
}

static int
trk_u64_cmp(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

void
tracking_flushed(struct tracking *t, uint64_t current)
{
    if (t->nclients > 0) {
        uint64_t *ids = bw_malloc(t->nclients * sizeof(*ids));
        size_t n = 0;
        for (size_t i = 0; i < t->ncb; i++)
            for (struct trk_client *c = t->cb[i]; c != NULL; c = c->next)
                ids[n++] = c->id;
        qsort(ids, n, sizeof(*ids), trk_u64_cmp);
        for (size_t i = 0; i < n; i++) {
            if (ids[i] == current && current != TRACKING_WRITER_NONE)
                trk_own_hold(t, current, NULL, 0); /* after its FLUSHALL */
            else
                trk_deliver(t, trk_client_get(t, ids[i]), NULL, 0, true);
        }
        bw_free(ids);
    }
    trk_keys_clear(t);
}

/* A random key of the table (nkeys > 0): a random bucket, then on. */
static struct trk_key *
trk_key_random(struct tracking *t)
{
    size_t b = trk_rand(t) & (t->nkb - 1);
    while (t->kb[b] == NULL)
        b = (b + 1) & (t->nkb - 1);
    size_t n = 0;
    for (struct trk_key *k = t->kb[b]; k != NULL; k = k->next)
        n++;
    struct trk_key *k = t->kb[b];
    for (size_t i = trk_rand(t) % n; i > 0; i--)
        k = k->next;
    return k;
}

void
tracking_limit(struct tracking *t, uint64_t max_keys, uint64_t current)
{
    if (max_keys == 0 || t->nclients == 0)
        return;
    if (t->nkeys <= max_keys) {
        t->evict_rounds = 0;
        return;
    }
    uint64_t effort = (uint64_t)TRK_EVICT_EFFORT * (t->evict_rounds + 1);
    while (effort-- > 0 && t->nkeys > 0) {
        struct trk_key *k = trk_key_random(t);
        trk_invalidate(t, k->name, k->len, current, TRACKING_WRITER_NONE, false);
        if (t->nkeys <= max_keys) {
            t->evict_rounds = 0;
            return;
        }
    }
    t->evict_rounds++;
}

/* ---- public: the CLIENT subcommands ------------------------------------- */

/* A reply being built for tracking_command(). */
struct trk_reply {
    char *buf;  /* owned until handed to the caller */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
};

static void
trk_reply_cat(struct trk_reply *r, const char *s)
{
    trk_cat(&r->buf, &r->len, &r->cap, s, strlen(s));
}

static void
trk_reply_error(struct trk_reply *r, const char *msg)
{
    trk_reply_cat(r, "-ERR ");
    trk_reply_cat(r, msg);
    trk_reply_cat(r, "\r\n");
}

/*
 * The prefix overlap error, as addReplyErrorFormat() with %s: each prefix
 * stops at its first NUL, CR and LF become spaces.
 */
static void
trk_reply_overlap(struct trk_reply *r, const struct tracking_arg *a, const char *what,
                  const char *b, size_t blen)
{
    size_t start = r->len;
    trk_reply_cat(r, "-ERR Prefix '");
    trk_cat(&r->buf, &r->len, &r->cap, a->ptr, strnlen(a->ptr, a->len));
    trk_reply_cat(r, "' overlaps with ");
    trk_reply_cat(r, what);
    trk_reply_cat(r, " '");
    trk_cat(&r->buf, &r->len, &r->cap, b, strnlen(b, blen));
    trk_reply_cat(r, "'. Prefixes for a single client must not overlap.");
    for (size_t i = start; i < r->len; i++)
        if (r->buf[i] == '\r' || r->buf[i] == '\n')
            r->buf[i] = ' ';
    trk_reply_cat(r, "\r\n");
}

/* Redis's string2ll(): an optional '-', then digits without a leading 0. */
static bool
trk_parse_ll(const struct tracking_arg *a, long long *out)
{
    const char *p = a->ptr;
    size_t n = a->len;
    bool neg = false;
    unsigned long long v = 0;
    if (n == 0 || n > 20)
        return false;
    if (n == 1 && p[0] == '0') {
        *out = 0;
        return true;
    }
    if (p[0] == '-') {
        neg = true;
        p++;
        n--;
    }
    if (n == 0 || p[0] < '1' || p[0] > '9')
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        if (v > (ULLONG_MAX - (unsigned)(p[i] - '0')) / 10)
            return false;
        v = v * 10 + (unsigned)(p[i] - '0');
    }
    if (neg ? v > (unsigned long long)LLONG_MAX + 1 : v > (unsigned long long)LLONG_MAX)
        return false;
    *out = neg ? (long long)(0 - v) : (long long)v;
    return true;
}

static bool
trk_min_length_equal(const char *a, size_t alen, const char *b, size_t blen)
{
    return memcmp(a, b, BW_MIN(alen, blen)) == 0;
}

/*
 * Redis's checkPrefixCollisionsOrReply(), its return value included: 1 or
 * the index i > 0 of a prefix that overlaps a later given one (the error is
 * written and the caller goes on), 0 (error written, stop).
 */
static size_t
trk_check_prefixes(const struct trk_client *c, const struct tracking_arg *const *pfx, size_t n,
                   struct trk_reply *r)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; c != NULL && k < c->nprefixes; k++) {
            if (trk_min_length_equal(c->prefixes[k].ptr, c->prefixes[k].len, pfx[i]->ptr,
                                     pfx[i]->len)) {
                trk_reply_overlap(r, pfx[i], "an existing prefix", c->prefixes[k].ptr,
                                  c->prefixes[k].len);
                return 0;
            }
        }
        for (size_t j = i + 1; j < n; j++) {
            if (trk_min_length_equal(pfx[i]->ptr, pfx[i]->len, pfx[j]->ptr, pfx[j]->len)) {
                trk_reply_overlap(r, pfx[i], "another provided prefix", pfx[j]->ptr, pfx[j]->len);
                return i;
            }
        }
    }
    return 1;
}

/* Options of one CLIENT TRACKING command. */
struct trk_opts {
    unsigned flags;                       /* TRK_BCAST|OPTIN|OPTOUT|NOLOOP */
    long long redirect;                   /* 0 = none */
    const struct tracking_arg **prefixes; /* owned array of borrowed args */
    size_t nprefixes;                     /* entries */
};

/* Parse the options after on|off; false with the error written. */
static bool
trk_parse_opts(struct tracking *t, int argc, const struct tracking_arg *argv, struct trk_opts *o,
               struct trk_reply *r)
{
    struct tracking_peer peer;
    for (int j = 3; j < argc; j++) {
        bool more = argc - 1 - j > 0;
        if (trk_arg_is(&argv[j], "redirect") && more) {
            j++;
            if (o->redirect != 0) {
                trk_reply_error(r, "A client can only redirect to a single other client");
                return false;
            }
            if (!trk_parse_ll(&argv[j], &o->redirect)) {
                trk_reply_error(r, "value is not an integer or out of range");
                return false;
            }
            if (o->redirect <= 0 || !t->lookup(t->arg, (uint64_t)o->redirect, &peer)) {
                trk_reply_error(r, "The client ID you want redirect to does not exist");
                return false;
            }
        } else if (trk_arg_is(&argv[j], "bcast")) {
            o->flags |= TRK_BCAST;
        } else if (trk_arg_is(&argv[j], "optin")) {
            o->flags |= TRK_OPTIN;
        } else if (trk_arg_is(&argv[j], "optout")) {
            o->flags |= TRK_OPTOUT;
        } else if (trk_arg_is(&argv[j], "noloop")) {
            o->flags |= TRK_NOLOOP;
        } else if (trk_arg_is(&argv[j], "prefix") && more) {
            j++;
            o->prefixes = bw_realloc(o->prefixes, (o->nprefixes + 1) * sizeof(*o->prefixes));
            o->prefixes[o->nprefixes++] = &argv[j];
        } else {
            trk_reply_error(r, "syntax error");
            return false;
        }
    }
    return true;
}

/* The checks of CLIENT TRACKING on, in Redis's order; false: error written. */
static bool
trk_check_on(const struct trk_client *c, const struct trk_opts *o, struct trk_reply *r)
{
    unsigned cur = c != NULL ? c->flags : 0;
    if (!(o->flags & TRK_BCAST) && o->nprefixes > 0)
        trk_reply_error(r, "PREFIX option requires BCAST mode to be enabled");
    else if (c != NULL && !(cur & TRK_BCAST) != !(o->flags & TRK_BCAST))
        trk_reply_error(r, "You can't switch BCAST mode on/off before disabling tracking for "
                           "this client, and then re-enabling it with a different mode.");
    else if ((o->flags & TRK_BCAST) && (o->flags & (TRK_OPTIN | TRK_OPTOUT)))
        trk_reply_error(r, "OPTIN and OPTOUT are not compatible with BCAST");
    else if ((o->flags & TRK_OPTIN) && (o->flags & TRK_OPTOUT))
        trk_reply_error(r, "You can't specify both OPTIN mode and OPTOUT mode");
    else if (((o->flags & TRK_OPTIN) && (cur & TRK_OPTOUT)) ||
             ((o->flags & TRK_OPTOUT) && (cur & TRK_OPTIN)))
        trk_reply_error(r, "You can't switch OPTIN/OPTOUT mode before disabling tracking for "
                           "this client, and then re-enabling it with a different mode.");
    else
        return true;
    return false;
}

/* Redis's enableTracking(). */
static void
trk_enable(struct tracking *t, uint64_t id, const struct trk_opts *o)
{
    struct trk_client *c = trk_client_get(t, id);
    if (c == NULL) {
        c = trk_client_create(t, id);
        c->flags = TRK_ON;
    }
    c->flags &= ~(TRK_BROKEN | TRK_BCAST | TRK_OPTIN | TRK_OPTOUT | TRK_NOLOOP);
    c->redirect = (uint64_t)o->redirect;
    if (o->flags & TRK_BCAST) {
        c->flags |= TRK_BCAST;
        if (o->nprefixes == 0)
            trk_prefix_join(t, c, "", 0);
        for (size_t i = 0; i < o->nprefixes; i++)
            trk_prefix_join(t, c, o->prefixes[i]->ptr, o->prefixes[i]->len);
    }
    c->flags |= o->flags & (TRK_OPTIN | TRK_OPTOUT | TRK_NOLOOP);
}

static void
trk_cmd_tracking(struct tracking *t, uint64_t id, int argc, const struct tracking_arg *argv,
                 struct trk_reply *r)
{
    struct trk_opts o = {0};
    if (!trk_parse_opts(t, argc, argv, &o, r)) {
        bw_free(o.prefixes);
        return;
    }
    if (trk_arg_is(&argv[2], "on")) {
        const struct trk_client *c = trk_client_get(t, id);
        if (!trk_check_on(c, &o, r) ||
            ((o.flags & TRK_BCAST) && trk_check_prefixes(c, o.prefixes, o.nprefixes, r) == 0)) {
            bw_free(o.prefixes);
            return;
        }
        trk_enable(t, id, &o);
    } else if (trk_arg_is(&argv[2], "off")) {
        tracking_disable(t, id);
    } else {
        trk_reply_error(r, "syntax error");
        bw_free(o.prefixes);
        return;
    }
    bw_free(o.prefixes);
    trk_reply_cat(r, "+OK\r\n");
}

static void
trk_cmd_caching(struct tracking *t, uint64_t id, const struct tracking_arg *opt,
                struct trk_reply *r)
{
    struct trk_client *c = trk_client_get(t, id);
    if (c == NULL) {
        trk_reply_error(r, "CLIENT CACHING can be called only when the client is in tracking "
                           "mode with OPTIN or OPTOUT mode enabled");
    } else if (trk_arg_is(opt, "yes")) {
        if (!(c->flags & TRK_OPTIN)) {
            trk_reply_error(r, "CLIENT CACHING YES is only valid when tracking is enabled in "
                               "OPTIN mode.");
            return;
        }
        c->flags |= TRK_CACHING;
        trk_reply_cat(r, "+OK\r\n");
    } else if (trk_arg_is(opt, "no")) {
        if (!(c->flags & TRK_OPTOUT)) {
            trk_reply_error(r, "CLIENT CACHING NO is only valid when tracking is enabled in "
                               "OPTOUT mode.");
            return;
        }
        c->flags |= TRK_CACHING;
        trk_reply_cat(r, "+OK\r\n");
    } else {
        trk_reply_error(r, "syntax error");
    }
}

static void
trk_cmd_trackinginfo(struct tracking *t, uint64_t id, int resp, struct trk_reply *r)
{
    const struct trk_client *c = trk_client_get(t, id);
    unsigned f = c != NULL ? c->flags : 0;
    const char *flags[8];
    size_t n = 0;
    flags[n++] = c != NULL ? "on" : "off";
    if (f & TRK_BCAST)
        flags[n++] = "bcast";
    if (f & TRK_OPTIN) {
        flags[n++] = "optin";
        if (f & TRK_CACHING)
            flags[n++] = "caching-yes";
    }
    if (f & TRK_OPTOUT) {
        flags[n++] = "optout";
        if (f & TRK_CACHING)
            flags[n++] = "caching-no";
    }
    if (f & TRK_NOLOOP)
        flags[n++] = "noloop";
    if (f & TRK_BROKEN)
        flags[n++] = "broken_redirect";
    trk_reply_cat(r, resp > 2 ? "%3\r\n" : "*6\r\n");
    trk_cat_bulk(&r->buf, &r->len, &r->cap, "flags", 5);
    trk_catf(&r->buf, &r->len, &r->cap, "%c%zu\r\n", resp > 2 ? '~' : '*', n);
    for (size_t i = 0; i < n; i++)
        trk_cat_bulk(&r->buf, &r->len, &r->cap, flags[i], strlen(flags[i]));
    trk_cat_bulk(&r->buf, &r->len, &r->cap, "redirect", 8);
    if (c != NULL)
        trk_catf(&r->buf, &r->len, &r->cap, ":%llu\r\n", (unsigned long long)c->redirect);
    else
        trk_reply_cat(r, ":-1\r\n");
    trk_cat_bulk(&r->buf, &r->len, &r->cap, "prefixes", 8);
    size_t np = c != NULL ? c->nprefixes : 0;
    trk_catf(&r->buf, &r->len, &r->cap, "*%zu\r\n", np);
    for (size_t i = 0; i < np; i++)
        trk_cat_bulk(&r->buf, &r->len, &r->cap, c->prefixes[i].ptr, c->prefixes[i].len);
}

/* Subcommands and their arity in Redis 7.0's command table (commands.c). */
static const struct {
    const char *name; /* lower case, as in the arity error */
    int arity;        /* >= 0 exact argc, < 0 at least -arity */
} trk_subcommands[] = {
    {"tracking", -3},
    {"caching", 3},
    {"getredir", 2},
    {"trackinginfo", 2},
};

bool
tracking_command(struct tracking *t, uint64_t id, int resp, int argc,
                 const struct tracking_arg *argv, char **reply, size_t *reply_len)
{
    size_t k = 0;
    if (argc < 2)
        return false;
    while (k < BW_ARRAY_LEN(trk_subcommands) && !trk_arg_is(&argv[1], trk_subcommands[k].name))
        k++;
    if (k == BW_ARRAY_LEN(trk_subcommands))
        return false;
    struct trk_reply r = {0};
    int arity = trk_subcommands[k].arity;
    if ((arity >= 0 && argc != arity) || (arity < 0 && argc < -arity)) {
        trk_reply_cat(&r, "-ERR wrong number of arguments for 'client|");
        trk_reply_cat(&r, trk_subcommands[k].name);
        trk_reply_cat(&r, "' command\r\n");
    } else if (k == 0) {
        trk_cmd_tracking(t, id, argc, argv, &r);
    } else if (k == 1) {
        trk_cmd_caching(t, id, &argv[2], &r);
    } else if (k == 2) {
        const struct trk_client *c = trk_client_get(t, id);
        if (c != NULL)
            trk_catf(&r.buf, &r.len, &r.cap, ":%llu\r\n", (unsigned long long)c->redirect);
        else
            trk_reply_cat(&r, ":-1\r\n");
    } else {
        trk_cmd_trackinginfo(t, id, resp, &r);
    }
    *reply = r.buf;
    *reply_len = r.len;
    return true;
}
