/*
 * hotcache: hot-key detection (aged count-min sketch + top-N list), a bounded
 * local cache of hot keys' GET replies with refresh-ahead and generation
 * checks, and leases that hold duplicate misses of a hot key. Pure: libc and
 * xxhash only, no I/O, no clock reads (every time is the caller's now_ms,
 * from the monotonic clock). Not thread-safe: one struct hot per worker.
 *
 * How the daemon uses it on a GET of key k at time now:
 *
 *   hot = hot_note_read(h, k, now, &rate)     every GET, before anything else
 *   if hot_lookup(h, k, now, &hit)            answer hit.value locally;
 *       if hit.refresh: tok = hot_fetch_begin(h, k); send GET k + PTTL k;
 *                       on reply hot_store(h, k, tok, value, pttl, now)
 *   else if hot_lease_hold(h, k, now, w)      hold the GET (w = reply slot)
 *   else if hot: tok = hot_fetch_begin(h, k); forward GET k + PTTL k;
 *       reply bulk -> hot_store(...); reply nil -> hot_lease_begin(h, k, ...)
 *   else forward as usual.
 *
 * On a write of k through bulwark and on each key named by the keyspace
 * watch: hot_invalidate(h, k). On a SET k v through bulwark, also
 * hot_lease_release(h, k, reply-for-v, ...). On FLUSHALL / FLUSHDB, a nil
 * invalidation, or a lost watch connection: hot_flush(h). From a timer armed
 * at hot_lease_next_deadline(): hot_lease_expire(h, now, cb, ctx).
 */
#ifndef BW_HOTCACHE_H
#define BW_HOTCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Count-min sketch shape: HOT_CMS_DEPTH rows of HOT_CMS_WIDTH 32-bit
 * counters (256 KB). With w = 2^14 and d = 4, an estimate n^ of a key whose
 * (aged) true count is n satisfies n <= n^ always, and n^ <= n + eps * N with
 * probability >= 1 - delta, where N is the aged total of all counts,
 * eps = e / w = 1.66e-4 and delta = e^-d = 0.0183 (Cormode & Muthukrishnan,
 * "An improved data stream summary: the count-min sketch and its
 * applications", J. Algorithms 55(1), 2005, Theorem 1). Updates are
 * conservative (Estan & Varghese, SIGCOMM 2002: only counters equal to the
 * row minimum grow), which keeps both bounds and tightens the estimate.
 */
#define HOT_CMS_DEPTH 4
#define HOT_CMS_WIDTH_BITS 14
#define HOT_CMS_WIDTH (1u << HOT_CMS_WIDTH_BITS)

/*
 * Generation slots: a fetch token is checked against the slot of its key's
 * hash; an invalidation of another key in the same slot discards the fetch
 * too (safe: one more upstream read). 2^14 slots of 8 bytes (128 KB).
 */
#define HOT_GEN_SLOTS_BITS 14

/* Eviction samples this many entries and evicts the coldest of them. */
#define HOT_EVICT_SAMPLES 8

/* Tunables, filled from the config (hotkey-* directives); copied by hot_new. */
struct hot_opts {
    uint64_t threshold_rps; /* reads/s at or above which a key is hot
                               (hotkey-threshold); 0: every read key is hot */
    size_t max_keys;        /* cached entries at most (hotkey-max-keys), >= 1;
                               also bounds active leases */
    size_t max_bytes;       /* cached bytes at most, counting key, value and
                               struct overhead (hotkey-maxmemory), >= 1 */
    uint64_t ttl_ms;        /* longest life of an entry, ms (hotkey-ttl), >= 1 */
    double refresh_ratio;   /* refresh-ahead once an entry is older than this
                             fraction of its life, [0, 1]; 1: never
                             (hotkey-refresh-ratio) */
    uint64_t lease_ms;      /* default lease length, ms (hotkey-lease);
                             0 disables leases */
    uint64_t decay_ms;      /* sketch counters halve every decay_ms, >= 1 */
    size_t top_keys;        /* keys tracked for hot_top(), >= 1 */
    uint64_t seed;          /* hash and sampling seed; any value, fixed
                             seeds give reproducible behaviour */
};

/*
 * INFO hotkeys counters; names are the INFO field names. Gauges are marked;
 * the rest only grow.
 */
struct hot_stats {
    uint64_t hotkey_cached_keys;    /* gauge: entries in the cache */
    uint64_t hotkey_cache_bytes;    /* gauge: bytes charged for them (key +
                                       value + per-entry overhead) */
    uint64_t hotkey_hits;           /* hot_lookup() answered from the cache */
    uint64_t hotkey_misses;         /* hot_lookup() of a hot key found
                                       nothing usable (absent or expired) */
    uint64_t hotkey_refreshes;      /* refresh-ahead fetches signalled */
    uint64_t hotkey_invalidations;  /* entries dropped by hot_invalidate()
                                       and hot_flush() */
    uint64_t hotkey_lease_holds;    /* GETs held by hot_lease_hold() */
    uint64_t hotkey_lease_wakeups;  /* held GETs handed back by
                                       hot_lease_release() */
    uint64_t hotkey_lease_timeouts; /* held GETs handed back because their
                                       lease timed out */
    uint64_t hotkey_lease_spent;    /* leases that ran out with no refill:
                                       their key is not leased again until
                                       it is written */
};

/* What hot_lookup() found: a view into the cache. */
struct hot_hit {
    const char *value;      /* borrowed: the stored reply bytes; valid until
                               the next hot_store/hot_lookup/hot_invalidate/
                               hot_flush/hot_free on this struct hot */
    size_t vlen;            /* bytes at value */
    uint64_t created_ms;    /* when the entry was stored */
    uint64_t expires_at_ms; /* when it stops being served */
    bool refresh;           /* true exactly once per entry: the caller starts
                               the one background refresh now */
};

/* Result of hot_store(). */
enum hot_store_result {
    HOT_STORED = 0,  /* stored (replacing any older entry of the key) */
    HOT_STALE = 1,   /* discarded: the key was invalidated or the cache
                        flushed after the token was taken */
    HOT_NO_TTL = 2,  /* discarded: pttl_ms is -2 (key gone), 0 or invalid */
    HOT_TOO_BIG = 3, /* discarded: the entry alone exceeds max_bytes */
};

struct hot;

/*
 * Waiter hand-back. waiter is the pointer given to hot_lease_hold(); the
 * caller owns it throughout and gets it back exactly once. value (vlen
 * bytes, borrowed for the call) is the reply to answer the held GET with,
 * or NULL: forward the GET upstream. The callback may call hot_* functions
 * on h, except from hot_free().
 */
typedef void hot_waiter_fn(void *ctx, void *waiter, const char *value, size_t vlen);

/* One hot_top() row: key bytes (borrowed for the call) and its rate. */
typedef void hot_top_fn(void *ctx, const char *key, size_t len, double rate_rps);

/*
 * Fill o with the defaults: threshold 100 reads/s, 10000 keys, 64 MB,
 * ttl 1000 ms, refresh ratio 0.8, lease 200 ms, decay 1000 ms, 32 top keys,
 * seed 0.
 */
void hot_opts_init(struct hot_opts *o);

/*
 * Create a hot-key tracker and cache with options o (copied). Allocates
 * about 400 KB plus up to 48 bytes per max_keys up front (sketch,
 * generation slots, cache and lease indexes); entries as stored.
 * Returns a struct the caller owns (hot_free()), or NULL with the reason in
 * err (NUL-terminated, truncated to errlen) when an option is out of range.
 */
struct hot *hot_new(const struct hot_opts *o, char *err, size_t errlen);

/*
 * Free h and everything in it. Every waiter still held is handed back
 * through cb(ctx, waiter, NULL, 0) first (so the caller forwards or drops
 * it); cb must not call into h. cb may be NULL only when no waiter is held
 * (otherwise abort: a leak). h NULL is a no-op.
 */
void hot_free(struct hot *h, hot_waiter_fn *cb, void *ctx);

/*
 * Count one read of key (len bytes, borrowed) at now_ms and return whether
 * the key is hot: estimated rate >= threshold_rps. *rate_rps (may be NULL)
 * gets the estimated rate in reads/s.
 *
 * Rate: counters halve every decay_ms (D), so a steady rate r keeps a count
 * c of r * (D + t) / 1000 where t is the ms since the last halving
 * (geometric sum of halved periods); the estimate is c * 1000 / (D + t),
 * exact for a steady rate up to sketch over-count and integer halving. A
 * new key's estimate rises to its rate within a few D (the gap halves every
 * period); a key that stops being read falls below the threshold likewise.
 * Also keeps the key in the top list when it is among the top_keys largest.
 */
bool hot_note_read(struct hot *h, const char *key, size_t len, uint64_t now_ms, double *rate_rps);

/* Estimated rate of key in reads/s at now_ms, as hot_note_read() without
 * counting a read. */
double hot_rate(struct hot *h, const char *key, size_t len, uint64_t now_ms);

/*
 * The aged sketch count of key at now_ms (never below the key's true aged
 * count; see HOT_CMS_*), and the aged total N of all counts.
 */
uint64_t hot_sketch_count(struct hot *h, const char *key, size_t len, uint64_t now_ms);
uint64_t hot_sketch_total(struct hot *h, uint64_t now_ms);

/*
 * Report up to n of the tracked keys with the highest estimated rates at
 * now_ms, highest first, through cb(ctx, key, len, rate_rps); cb must not
 * call into h. At most top_keys are tracked; the list is approximate (a key
 * enters it when its estimate beats the smallest tracked one) and may
 * include keys below the threshold. Returns the number of rows reported.
 */
size_t hot_top(struct hot *h, size_t n, uint64_t now_ms, hot_top_fn *cb, void *ctx);

/*
 * Look key up in the cache at now_ms. An entry at or past its expiry is
 * dropped. On a usable entry fills *hit, counts a hit and returns true.
 * Refresh-ahead: once now_ms - created_ms > refresh_ratio * (expires_at_ms -
 * created_ms), the first lookup marks the entry refreshing and sets
 * hit->refresh (never again for that entry: the refresh stores a new entry,
 * or the entry expires) - unless the key's rate fell below threshold_rps,
 * in which case the entry is dropped (cooled keys are not refreshed) and
 * false is returned. Returns false when nothing usable is cached; counts a
 * miss only if the key is hot.
 */
bool hot_lookup(struct hot *h, const char *key, size_t len, uint64_t now_ms, struct hot_hit *hit);

/*
 * Take a generation token before sending the read whose reply will be
 * given to hot_store(). Tokens are never 0 and need no release: a fetch
 * that fails is simply never stored.
 */
uint64_t hot_fetch_begin(struct hot *h, const char *key, size_t len);

/*
 * Store value (vlen bytes, copied: the reply bytes to answer later GETs
 * with, e.g. "$3\r\nfoo\r\n") for key (len bytes, copied), fetched under
 * token (from hot_fetch_begin() on this h; anything else aborts), at now_ms.
 * pttl_ms is the key's PTTL read in the same pipeline:
 * >= 1 remaining ms, -1 no expiry; -2 (no key), 0 and other values are not
 * stored. The entry lives until min(now_ms + ttl_ms, now_ms + pttl_ms).
 * Not stored if hot_invalidate() of the key (or of a key sharing its
 * generation slot) or hot_flush() happened after hot_fetch_begin() returned
 * token. Replaces an older entry of the key; then evicts entries until the
 * new one fits max_keys and max_bytes. Eviction policy (approximate LFU,
 * as Redis's sampled eviction): look at HOT_EVICT_SAMPLES entries drawn at
 * random (every entry when there are no more), evict the first expired one
 * seen, else the coldest: lowest sketch count, ties to the soonest expiry.
 * Stores whatever the key's rate: the caller fetches only hot keys.
 */
enum hot_store_result hot_store(struct hot *h, const char *key, size_t len, uint64_t token,
                                const char *value, size_t vlen, int64_t pttl_ms, uint64_t now_ms);

/*
 * key (len bytes) was or may have been modified: drop its entry and make
 * fetches begun before now unstorable. Counts an invalidation if an entry
 * was dropped. Leases are not touched: the delete or expiry that caused a
 * lease is itself announced on the watch, so the caller releases a lease
 * only with a value it knows (hot_lease_release).
 */
void hot_invalidate(struct hot *h, const char *key, size_t len);

/* A predicate on a key (len bytes) for hot_drop_if(). */
typedef bool hot_key_pred_fn(void *ctx, const char *key, size_t len);

/*
 * hot_invalidate() every cached key pred says true of (a Redis Cluster
 * master's keys when its watch is lost, the keys of slots that changed
 * masters). Fetches of keys not cached are not touched: the caller
 * invalidates the keys it has in flight. Returns the entries dropped.
 */
size_t hot_drop_if(struct hot *h, hot_key_pred_fn *pred, void *ctx);

/*
 * Drop every entry and make every fetch begun before now unstorable
 * (FLUSHALL, FLUSHDB, nil invalidation, lost watch). Leases stay.
 */
void hot_flush(struct hot *h);

/*
 * key's upstream read came back nil at now_ms: start a lease of lease_ms
 * (0: opts.lease_ms) during which further GETs of key are held. Returns
 * true if a lease started; false if leases are disabled, a lease of key
 * already exists (even one timed out but not yet expired by
 * hot_lease_expire()), the key's last lease ran out with no refill and it
 * was not written since (a key that stays absent is not leased again: its
 * readers are never held twice for nothing), or max_keys live leases exist
 * (a spent one is evicted to make room).
 */
bool hot_lease_begin(struct hot *h, const char *key, size_t len, uint64_t now_ms,
                     uint64_t lease_ms);

/*
 * If key has a lease still active at now_ms, record waiter (non-NULL,
 * opaque, still owned by the caller, who must keep it valid until it is
 * handed back or cancelled) and return true: hold the GET. Otherwise
 * return false: forward it. Every held waiter comes back exactly once,
 * through hot_lease_release(), hot_lease_expire() or hot_free(), unless
 * hot_lease_cancel() takes it out first.
 */
bool hot_lease_hold(struct hot *h, const char *key, size_t len, uint64_t now_ms, void *waiter);

/*
 * End key's lease: each held waiter, in hold order, goes to
 * cb(ctx, waiter, value, vlen): value is the reply for the held GETs (the
 * new value of a SET through bulwark, encoded as a GET reply), or NULL to
 * have them forwarded. Returns the number handed back (0 if no lease).
 */
size_t hot_lease_release(struct hot *h, const char *key, size_t len, const char *value,
                         size_t vlen, hot_waiter_fn *cb, void *ctx);

/* GETs held by key's lease now (0: no lease, or none held). */
size_t hot_lease_waiters(struct hot *h, const char *key, size_t len);

/*
 * End every lease whose time is up at now_ms (expires_at_ms <= now_ms);
 * their waiters go to cb(ctx, waiter, NULL, 0) at once, each counted as a
 * lease timeout. The lease stays as spent until the key is written
 * (hot_invalidate(), hot_lease_release()). Returns the number of waiters
 * handed back.
 */
size_t hot_lease_expire(struct hot *h, uint64_t now_ms, hot_waiter_fn *cb, void *ctx);

/*
 * Take waiter out of key's lease without a callback (its client closed).
 * Returns true if it was held there.
 */
bool hot_lease_cancel(struct hot *h, const char *key, size_t len, void *waiter);

/* Earliest lease expiry in ms, or UINT64_MAX when no lease exists. */
uint64_t hot_lease_next_deadline(const struct hot *h);

/* Copy the counters into *out. */
void hot_stats_get(const struct hot *h, struct hot_stats *out);

#endif
