/*
 * Unit tests of proxy/hotcache: sketch bounds and aging, hot detection and
 * cooling, cache bounds and eviction, expiry, refresh-ahead, generation
 * checks, flush, and leases. All times are explicit now_ms values.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/hotcache.h"

#define T_VAL "$3\r\nfoo\r\n"
#define T_MAX_LOG 256
#define T_KEY_MAX 32

/* Waiters handed back through t_waiter_cb, in order. */
struct t_log {
    size_t n;                   /* records used */
    void *waiter[T_MAX_LOG];    /* borrowed: the waiter handed back */
    char value[T_MAX_LOG][16];  /* the value given, "" for NULL */
    bool null_value[T_MAX_LOG]; /* value was NULL (forward upstream) */
};

/* Rows reported by hot_top, through t_top_cb. */
struct t_top {
    size_t n;                       /* rows used */
    char key[T_MAX_LOG][T_KEY_MAX]; /* key bytes, NUL-terminated */
    double rate[T_MAX_LOG];         /* reported rate, reads/s */
};

static void
t_waiter_cb(void *ctx, void *waiter, const char *value, size_t vlen)
{
    struct t_log *lg = ctx;

    assert_true(lg->n < T_MAX_LOG);
    lg->waiter[lg->n] = waiter;
    lg->null_value[lg->n] = value == NULL;
    if (value != NULL) {
        assert_true(vlen < sizeof(lg->value[0]));
        memcpy(lg->value[lg->n], value, vlen);
        lg->value[lg->n][vlen] = '\0';
    }
    lg->n++;
}

static void
t_top_cb(void *ctx, const char *key, size_t len, double rate_rps)
{
    struct t_top *tp = ctx;

    assert_true(tp->n < T_MAX_LOG && len < T_KEY_MAX);
    memcpy(tp->key[tp->n], key, len);
    tp->key[tp->n][len] = '\0';
    tp->rate[tp->n] = rate_rps;
    tp->n++;
}

/* How many times w was handed back. */
static size_t
t_times(const struct t_log *lg, void *w)
{
    size_t i, n = 0;

    for (i = 0; i < lg->n; i++)
        n += lg->waiter[i] == w;
    return n;
}

static struct hot *
t_new(const struct hot_opts *o)
{
    char err[128] = "";
    struct hot *h = hot_new(o, err, sizeof(err));

    assert_non_null(h);
    return h;
}

static struct hot_opts
t_opts(void)
{
    struct hot_opts o;

    hot_opts_init(&o);
    o.seed = 42;
    return o;
}

/* count reads of key (C string) spread evenly over [from_ms, to_ms). */
static bool
t_reads(struct hot *h, const char *key, size_t count, uint64_t from_ms, uint64_t to_ms)
{
    bool hot = false;
    size_t i;

    for (i = 0; i < count; i++) {
        uint64_t t = from_ms + (to_ms - from_ms) * i / count;

        hot = hot_note_read(h, key, strlen(key), t, NULL);
    }
    return hot;
}

static enum hot_store_result
t_store(struct hot *h, const char *key, const char *val, int64_t pttl_ms, uint64_t now_ms)
{
    uint64_t tok = hot_fetch_begin(h, key, strlen(key));

    return hot_store(h, key, strlen(key), tok, val, strlen(val), pttl_ms, now_ms);
}

static bool
t_lookup(struct hot *h, const char *key, uint64_t now_ms, struct hot_hit *hit)
{
    struct hot_hit tmp;

    return hot_lookup(h, key, strlen(key), now_ms, hit != NULL ? hit : &tmp);
}

static struct hot_stats
t_stats(const struct hot *h)
{
    struct hot_stats st;

    hot_stats_get(h, &st);
    return st;
}

/* ---- options ---------------------------------------------------------- */

static void
test_opts_defaults_and_ranges(void **state)
{
    struct hot_opts o;
    char err[128];

    (void)state;
    hot_opts_init(&o);
    assert_int_equal(o.threshold_rps, 100);
    assert_int_equal(o.max_keys, 10000);
    assert_int_equal(o.max_bytes, 64u << 20);
    assert_int_equal(o.ttl_ms, 1000);
    assert_true(o.refresh_ratio == 0.8);
    assert_int_equal(o.lease_ms, 200);
    assert_int_equal(o.decay_ms, 1000);

    o.refresh_ratio = 1.5;
    assert_null(hot_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "refresh_ratio"));
    o.refresh_ratio = NAN;
    assert_null(hot_new(&o, err, sizeof(err)));
    hot_opts_init(&o);
    o.max_keys = 0;
    assert_null(hot_new(&o, err, sizeof(err)));
    assert_non_null(strstr(err, "max_keys"));
    hot_opts_init(&o);
    o.decay_ms = 0;
    assert_null(hot_new(&o, err, sizeof(err)));
    hot_opts_init(&o);
    o.ttl_ms = 0;
    assert_null(hot_new(&o, err, 0)); /* errlen 0: nothing written */
    hot_free(NULL, NULL, NULL);
}

/* ---- the sketch ------------------------------------------------------- */

/* Zipf(1.1) over nkeys: keys drawn by inverse CDF with a fixed LCG. */
static void
test_sketch_bounds_on_skewed_stream(void **state)
{
    enum { NKEYS = 20000, NREADS = 300000 };
    struct hot_opts o = t_opts();
    struct hot *h;
    double *cdf = calloc(NKEYS, sizeof(*cdf)), sum = 0;
    uint64_t *truth = calloc(NKEYS, sizeof(*truth)), lcg = 12345, n;
    double eps = exp(1.0) / HOT_CMS_WIDTH, delta = exp(-(double)HOT_CMS_DEPTH);
    size_t i, over = 0, exact = 0;
    char key[T_KEY_MAX];

    (void)state;
    o.decay_ms = 1000000; /* no halving in this test */
    h = t_new(&o);
    for (i = 0; i < NKEYS; i++)
        cdf[i] = (sum += 1.0 / pow((double)(i + 1), 1.1));
    for (i = 0; i < NREADS; i++) {
        double u;
        size_t lo = 0, hi = NKEYS - 1;

        lcg = lcg * 6364136223846793005u + 1442695040888963407u;
        u = (double)(lcg >> 11) / 9007199254740992.0 * sum;
        while (lo < hi) {
            size_t mid = (lo + hi) / 2;

            if (cdf[mid] < u)
                lo = mid + 1;
            else
                hi = mid;
        }
        snprintf(key, sizeof(key), "user:%zu", lo);
        hot_note_read(h, key, strlen(key), 0, NULL);
        truth[lo]++;
    }
    n = hot_sketch_total(h, 0);
    assert_int_equal(n, NREADS);
    for (i = 0; i < NKEYS; i++) {
        uint64_t est;

        snprintf(key, sizeof(key), "user:%zu", i);
        est = hot_sketch_count(h, key, strlen(key), 0);
        assert_true(est >= truth[i]); /* never under-counts */
        over += (double)(est - truth[i]) > eps * (double)n;
        exact += est == truth[i];
    }
    /* P(est > true + eps N) <= delta per key (Cormode & Muthukrishnan) */
    assert_true((double)over <= delta * NKEYS);
    assert_true(exact > NKEYS / 2); /* conservative update: mostly exact */
    free(cdf);
    free(truth);
    hot_free(h, NULL, NULL);
}

static void
test_sketch_aging_halves(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);

    (void)state;
    t_reads(h, "k", 101, 0, 900); /* period starts at the first read, t=0 */
    assert_int_equal(hot_sketch_count(h, "k", 1, 999), 101);
    assert_int_equal(hot_sketch_total(h, 999), 101);
    assert_int_equal(hot_sketch_count(h, "k", 1, 1000), 50);
    assert_int_equal(hot_sketch_total(h, 1000), 50);
    assert_int_equal(hot_sketch_count(h, "k", 1, 2500), 25);
    /* several periods at once: halved once per period */
    assert_int_equal(hot_sketch_count(h, "k", 1, 4000), 6); /* 25 >> 2 */
    assert_int_equal(hot_sketch_count(h, "k", 1, 100000), 0);
    assert_int_equal(hot_sketch_total(h, 100000), 0);
    /* a clock that steps back does not age or break anything */
    hot_note_read(h, "k", 1, 50000, NULL);
    assert_int_equal(hot_sketch_count(h, "k", 1, 50000), 1);
    hot_free(h, NULL, NULL);
}

static void
test_rate_tracks_steady_rate(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    double rate;
    uint64_t t;

    (void)state;
    for (t = 0; t < 10000; t += 5) /* 200 reads/s for 10 s */
        hot_note_read(h, "steady", 6, t, &rate);
    assert_true(rate > 190 && rate < 205);
    rate = hot_rate(h, "steady", 6, 9999);
    assert_true(rate > 190 && rate < 205);
    /* reads stop at 9995: halved at 10000, 199 reads over 1.5 s by 10500 */
    rate = hot_rate(h, "steady", 6, 10500);
    assert_true(rate > 130 && rate < 135);
    assert_true(hot_rate(h, "never-read", 10, 10499) == 0.0);
    hot_free(h, NULL, NULL);
}

static void
test_hot_threshold_and_cooling(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    struct hot_stats st;
    uint64_t t, became = 0;

    (void)state;
    assert_false(hot_note_read(h, "k", 1, 0, NULL)); /* one read is not hot */
    /* 250 reads/s */
    for (t = 4; t < 5000; t += 4) {
        if (hot_note_read(h, "k", 1, t, NULL) && became == 0)
            became = t;
    }
    assert_true(became > 0 && became < 2000);
    assert_true(hot_note_read(h, "k", 1, 5000, NULL));
    assert_int_equal(t_store(h, "k", T_VAL, -1, 5000), HOT_STORED);
    assert_true(t_lookup(h, "k", 5100, NULL));

    /* cool down to 20 reads/s: no longer hot within a few periods */
    assert_false(t_reads(h, "k", 100, 5001, 10000));
    assert_true(hot_rate(h, "k", 1, 10000) < 100);
    /* a cached entry of a cooled key is dropped at its refresh point */
    assert_int_equal(t_store(h, "k", T_VAL, -1, 10000), HOT_STORED);
    assert_true(t_lookup(h, "k", 10500, NULL));
    assert_false(t_lookup(h, "k", 10801, NULL));
    st = t_stats(h);
    assert_int_equal(st.hotkey_cached_keys, 0);
    assert_int_equal(st.hotkey_refreshes, 0);
    assert_int_equal(st.hotkey_misses, 0); /* misses count hot keys only */
    assert_int_equal(st.hotkey_hits, 2);
    hot_free(h, NULL, NULL);
}

static void
test_threshold_zero_everything_hot(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;

    (void)state;
    o.threshold_rps = 0;
    h = t_new(&o);
    assert_true(hot_note_read(h, "any", 3, 0, NULL));
    assert_false(t_lookup(h, "never", 0, NULL));
    assert_int_equal(t_stats(h).hotkey_misses, 1);
    hot_free(h, NULL, NULL);
}

static void
test_top_lists_hottest_first(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;
    struct t_top tp;
    char key[T_KEY_MAX];
    int i;

    (void)state;
    o.top_keys = 4;
    h = t_new(&o);
    for (i = 0; i < 10; i++) { /* key i read 10 * (i + 1) times */
        snprintf(key, sizeof(key), "k%d", i);
        t_reads(h, key, 10 * (size_t)(i + 1), 0, 900);
    }
    memset(&tp, 0, sizeof(tp));
    assert_int_equal(hot_top(h, 3, 900, t_top_cb, &tp), 3);
    assert_string_equal(tp.key[0], "k9");
    assert_string_equal(tp.key[1], "k8");
    assert_string_equal(tp.key[2], "k7");
    assert_true(tp.rate[0] > tp.rate[1] && tp.rate[1] > tp.rate[2]);
    assert_true(fabs(tp.rate[0] - 100.0 * 1000 / 1900) < 1.0); /* 100 reads */
    memset(&tp, 0, sizeof(tp));
    assert_int_equal(hot_top(h, 100, 900, t_top_cb, &tp), 4); /* top_keys */
    assert_string_equal(tp.key[3], "k6");
    /* aged to zero: forgotten */
    memset(&tp, 0, sizeof(tp));
    assert_int_equal(hot_top(h, 10, 60000, t_top_cb, &tp), 0);
    hot_free(h, NULL, NULL);
}

/* ---- the cache -------------------------------------------------------- */

static void
test_cache_bounded_by_keys_coldest_first(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;
    static const char *const keys[] = {"a", "b", "c", "d", "e", "f"};
    static const size_t reads[] = {5, 10, 20, 30, 40, 7};
    size_t i;

    (void)state;
    o.max_keys = 4;
    h = t_new(&o);
    for (i = 0; i < 6; i++)
        t_reads(h, keys[i], reads[i], 0, 100);
    for (i = 0; i < 4; i++)
        assert_int_equal(t_store(h, keys[i], T_VAL, -1, 100), HOT_STORED);
    assert_int_equal(t_stats(h).hotkey_cached_keys, 4);
    /* e evicts a (5 reads), then f (7) evicts b (10) */
    assert_int_equal(t_store(h, "e", T_VAL, -1, 101), HOT_STORED);
    assert_false(t_lookup(h, "a", 102, NULL));
    assert_true(t_lookup(h, "b", 102, NULL));
    assert_int_equal(t_store(h, "f", T_VAL, -1, 103), HOT_STORED);
    assert_false(t_lookup(h, "b", 104, NULL));
    assert_true(t_lookup(h, "c", 104, NULL) && t_lookup(h, "d", 104, NULL) &&
                t_lookup(h, "e", 104, NULL) && t_lookup(h, "f", 104, NULL));
    /* replacing a cached key evicts nothing */
    assert_int_equal(t_store(h, "c", "$1\r\nx\r\n", -1, 105), HOT_STORED);
    assert_int_equal(t_stats(h).hotkey_cached_keys, 4);
    assert_true(t_lookup(h, "d", 106, NULL));
    hot_free(h, NULL, NULL);
}

static void
test_cache_bounded_by_bytes(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;
    char val[101];
    uint64_t cost;
    struct hot_stats st;

    (void)state;
    memset(val, 'v', 100);
    val[100] = '\0';
    h = t_new(&o); /* learn what one entry of key "k0" and 100 bytes costs */
    assert_int_equal(t_store(h, "k0", val, -1, 0), HOT_STORED);
    cost = t_stats(h).hotkey_cache_bytes;
    assert_true(cost >= 102);
    hot_free(h, NULL, NULL);

    o.max_bytes = 3 * cost + cost / 2; /* room for three */
    h = t_new(&o);
    t_reads(h, "k0", 30, 0, 10);
    t_reads(h, "k1", 10, 0, 10);
    t_reads(h, "k2", 20, 0, 10);
    t_reads(h, "k3", 40, 0, 10);
    assert_int_equal(t_store(h, "k0", val, -1, 10), HOT_STORED);
    assert_int_equal(t_store(h, "k1", val, -1, 10), HOT_STORED);
    assert_int_equal(t_store(h, "k2", val, -1, 10), HOT_STORED);
    assert_int_equal(t_store(h, "k3", val, -1, 10), HOT_STORED);
    st = t_stats(h);
    assert_int_equal(st.hotkey_cached_keys, 3);
    assert_int_equal(st.hotkey_cache_bytes, 3 * cost);
    assert_false(t_lookup(h, "k1", 11, NULL)); /* the coldest went */
    /* a value bigger than all of max_bytes is refused, nothing evicted */
    {
        size_t big = (size_t)o.max_bytes;
        char *v = malloc(big);

        memset(v, 'x', big);
        assert_int_equal(hot_store(h, "k9", 2, hot_fetch_begin(h, "k9", 2), v, big, -1, 12),
                         HOT_TOO_BIG);
        free(v);
    }
    assert_int_equal(t_stats(h).hotkey_cached_keys, 3);
    hot_free(h, NULL, NULL);
}

/* Past the sample size eviction is approximate but still favours cold keys. */
static void
test_sampled_eviction_keeps_hot_keys(void **state)
{
    enum { NKEYS = 2000, CAP = 500 };
    struct hot_opts o = t_opts();
    struct hot *h;
    char key[T_KEY_MAX];
    size_t i, hot_kept = 0;

    (void)state;
    o.max_keys = CAP;
    o.decay_ms = 1000000;
    h = t_new(&o);
    for (i = 0; i < NKEYS; i++) { /* every 4th key is hot (50 reads) */
        snprintf(key, sizeof(key), "s%zu", i);
        t_reads(h, key, i % 4 == 0 ? 50 : 1, 0, 10);
    }
    for (i = 0; i < NKEYS; i++) {
        snprintf(key, sizeof(key), "s%zu", i);
        assert_int_equal(t_store(h, key, T_VAL, -1, 10), HOT_STORED);
    }
    assert_int_equal(t_stats(h).hotkey_cached_keys, CAP);
    for (i = 0; i < NKEYS; i += 4) {
        snprintf(key, sizeof(key), "s%zu", i);
        hot_kept += t_lookup(h, key, 11, NULL);
    }
    /* random replacement would keep about a quarter of the 500 hot keys;
       sampling 8 keeps about 400 (the last cold keys stored stay) */
    assert_true(hot_kept > 300);
    hot_free(h, NULL, NULL);
}

static void
test_expired_entries_evicted_first(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;

    (void)state;
    o.max_keys = 2;
    h = t_new(&o);
    t_reads(h, "short", 50, 0, 10); /* hot but short-lived */
    t_reads(h, "cold", 1, 0, 10);
    assert_int_equal(t_store(h, "short", T_VAL, 20, 10), HOT_STORED);
    assert_int_equal(t_store(h, "cold", T_VAL, -1, 10), HOT_STORED);
    assert_int_equal(t_store(h, "new", T_VAL, -1, 40), HOT_STORED);
    assert_true(t_lookup(h, "cold", 41, NULL));
    hot_free(h, NULL, NULL);
}

static void
test_expiry_min_ttl_pttl(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;
    struct hot_hit hit;

    (void)state;
    o.threshold_rps = 0; /* every key hot: no cooling drop at refresh time */
    h = t_new(&o);
    assert_int_equal(t_store(h, "noexp", T_VAL, -1, 1000), HOT_STORED);
    assert_int_equal(t_store(h, "short", T_VAL, 300, 1000), HOT_STORED);
    assert_int_equal(t_store(h, "long", T_VAL, 5000, 1000), HOT_STORED);
    assert_int_equal(t_store(h, "gone", T_VAL, -2, 1000), HOT_NO_TTL);
    assert_int_equal(t_store(h, "now", T_VAL, 0, 1000), HOT_NO_TTL);
    assert_int_equal(t_store(h, "bad", T_VAL, -7, 1000), HOT_NO_TTL);

    assert_true(t_lookup(h, "noexp", 1000, &hit));
    assert_int_equal(hit.expires_at_ms, 2000);
    assert_int_equal(hit.created_ms, 1000);
    assert_int_equal(hit.vlen, strlen(T_VAL));
    assert_memory_equal(hit.value, T_VAL, hit.vlen);
    assert_true(t_lookup(h, "short", 1299, &hit));
    assert_int_equal(hit.expires_at_ms, 1300);
    assert_false(t_lookup(h, "short", 1300, NULL)); /* PTTL wins */
    assert_true(t_lookup(h, "long", 1999, &hit));
    assert_int_equal(hit.expires_at_ms, 2000); /* hotkey-ttl wins */
    assert_false(t_lookup(h, "long", 2000, NULL));
    assert_false(t_lookup(h, "noexp", 2000, NULL));
    assert_int_equal(t_stats(h).hotkey_cached_keys, 0); /* expired: dropped */
    assert_int_equal(t_stats(h).hotkey_cache_bytes, 0);
    hot_free(h, NULL, NULL);
}

/* Keep "k" hot: 200 reads/s over [from, to). */
static void
t_keep_hot(struct hot *h, uint64_t from_ms, uint64_t to_ms)
{
    t_reads(h, "k", (size_t)((to_ms - from_ms) / 5), from_ms, to_ms);
}

static void
test_refresh_ahead_once_per_life(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    struct hot_hit hit;
    uint64_t t, tok;
    int refreshes = 0;

    (void)state;
    t_keep_hot(h, 0, 3000);
    assert_int_equal(t_store(h, "k", T_VAL, -1, 3000), HOT_STORED);
    for (t = 3000; t < 4000; t++) { /* one life: 1000 ms, refresh past 800 */
        hot_note_read(h, "k", 1, t, NULL);
        assert_true(t_lookup(h, "k", t, &hit));
        if (hit.refresh) {
            assert_int_equal(t, 3801);
            refreshes++;
        }
    }
    assert_int_equal(refreshes, 1);
    assert_false(t_lookup(h, "k", 4000, NULL)); /* refresh never came */
    /* the refresh arrives: a new life, signalled once more */
    tok = hot_fetch_begin(h, "k", 1);
    assert_int_equal(hot_store(h, "k", 1, tok, "$1\r\nn\r\n", 7, 600, 4010), HOT_STORED);
    refreshes = 0;
    for (t = 4010; t < 4610; t++) { /* life 600 ms (PTTL), refresh past 480 */
        hot_note_read(h, "k", 1, t, NULL);
        assert_true(t_lookup(h, "k", t, &hit));
        assert_memory_equal(hit.value, "$1\r\nn\r\n", 7);
        refreshes += hit.refresh;
        if (hit.refresh)
            assert_int_equal(t, 4491);
    }
    assert_int_equal(refreshes, 1);
    assert_int_equal(t_stats(h).hotkey_refreshes, 2);
    hot_free(h, NULL, NULL);
}

static void
test_refresh_ratio_edges(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;
    struct hot_hit hit;

    (void)state;
    o.refresh_ratio = 1.0; /* never */
    o.threshold_rps = 0;
    h = t_new(&o);
    assert_int_equal(t_store(h, "k", T_VAL, -1, 0), HOT_STORED);
    assert_true(t_lookup(h, "k", 999, &hit));
    assert_false(hit.refresh);
    hot_free(h, NULL, NULL);

    o.refresh_ratio = 0.0; /* at the first read after the store */
    h = t_new(&o);
    assert_int_equal(t_store(h, "k", T_VAL, -1, 0), HOT_STORED);
    assert_true(t_lookup(h, "k", 0, &hit));
    assert_false(hit.refresh);
    assert_true(t_lookup(h, "k", 1, &hit));
    assert_true(hit.refresh);
    assert_true(t_lookup(h, "k", 2, &hit));
    assert_false(hit.refresh);
    hot_free(h, NULL, NULL);
}

/* ---- coherence -------------------------------------------------------- */

static void
test_generation_discards_raced_fetch(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    uint64_t tok, tok_other;
    struct hot_stats st;

    (void)state;
    tok = hot_fetch_begin(h, "k", 1);
    assert_int_not_equal(tok, 0);
    tok_other = hot_fetch_begin(h, "other", 5);
    hot_invalidate(h, "k", 1); /* a write raced the fetch */
    assert_int_equal(hot_store(h, "k", 1, tok, T_VAL, strlen(T_VAL), -1, 10), HOT_STALE);
    assert_false(t_lookup(h, "k", 10, NULL));
    /* another key's fetch is not affected (different generation slot) */
    assert_int_equal(hot_store(h, "other", 5, tok_other, T_VAL, strlen(T_VAL), -1, 10),
                     HOT_STORED);
    /* a fetch begun after the invalidation stores */
    assert_int_equal(t_store(h, "k", T_VAL, -1, 10), HOT_STORED);
    assert_true(t_lookup(h, "k", 11, NULL));
    /* invalidation drops a cached entry and counts it; a second does not */
    hot_invalidate(h, "k", 1);
    assert_false(t_lookup(h, "k", 12, NULL));
    hot_invalidate(h, "k", 1);
    st = t_stats(h);
    assert_int_equal(st.hotkey_invalidations, 1);
    assert_int_equal(st.hotkey_cached_keys, 1);
    /* a refresh in flight when the key is invalidated is not stored */
    tok = hot_fetch_begin(h, "other", 5);
    hot_invalidate(h, "other", 5);
    assert_int_equal(hot_store(h, "other", 5, tok, "$1\r\nz\r\n", 7, -1, 20), HOT_STALE);
    assert_false(t_lookup(h, "other", 20, NULL));
    hot_free(h, NULL, NULL);
}

static void
test_flush_invalidates_inflight(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    uint64_t ta, tb;
    struct hot_stats st;

    (void)state;
    assert_int_equal(t_store(h, "x", T_VAL, -1, 0), HOT_STORED);
    assert_int_equal(t_store(h, "y", T_VAL, -1, 0), HOT_STORED);
    ta = hot_fetch_begin(h, "a", 1);
    tb = hot_fetch_begin(h, "b", 1);
    hot_flush(h);
    st = t_stats(h);
    assert_int_equal(st.hotkey_cached_keys, 0);
    assert_int_equal(st.hotkey_cache_bytes, 0);
    assert_int_equal(st.hotkey_invalidations, 2);
    assert_false(t_lookup(h, "x", 1, NULL));
    assert_int_equal(hot_store(h, "a", 1, ta, T_VAL, strlen(T_VAL), -1, 1), HOT_STALE);
    assert_int_equal(hot_store(h, "b", 1, tb, T_VAL, strlen(T_VAL), -1, 1), HOT_STALE);
    assert_int_equal(t_store(h, "a", T_VAL, -1, 1), HOT_STORED);
    assert_true(t_lookup(h, "a", 2, NULL));
    hot_flush(h);
    hot_flush(h); /* flushing an empty cache is harmless */
    assert_int_equal(t_stats(h).hotkey_invalidations, 3);
    hot_free(h, NULL, NULL);
}

/* hot_drop_if: keys starting with 'a' (a master's keys), the others stay. */
static bool
t_starts_with_a(void *ctx, const char *key, size_t len)
{
    (*(int *)ctx)++;
    return len > 0 && key[0] == 'a';
}

static void
test_drop_if(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    char key[16];
    int asked = 0;

    (void)state;
    for (int i = 0; i < 40; i++) { /* a1 b1 a2 b2 …: drops move entries around */
        snprintf(key, sizeof(key), "%c%d", i % 2 ? 'b' : 'a', i);
        assert_int_equal(t_store(h, key, T_VAL, -1, 0), HOT_STORED);
    }
    uint64_t ta = hot_fetch_begin(h, "a0", 2), tb = hot_fetch_begin(h, "b1", 2);
    assert_int_equal(hot_drop_if(h, t_starts_with_a, &asked), 20);
    assert_int_equal(asked, 40); /* each entry asked about once */
    assert_int_equal(t_stats(h).hotkey_cached_keys, 20);
    assert_int_equal(t_stats(h).hotkey_invalidations, 20);
    for (int i = 0; i < 40; i++) {
        snprintf(key, sizeof(key), "%c%d", i % 2 ? 'b' : 'a', i);
        assert_int_equal(t_lookup(h, key, 1, NULL), i % 2 == 1);
    }
    /* a dropped key's fetch in flight is stale; another key's is not */
    assert_int_equal(hot_store(h, "a0", 2, ta, T_VAL, strlen(T_VAL), -1, 1), HOT_STALE);
    assert_int_equal(hot_store(h, "b1", 2, tb, T_VAL, strlen(T_VAL), -1, 1), HOT_STORED);
    assert_int_equal(hot_drop_if(h, t_starts_with_a, &asked), 0);
    hot_free(h, NULL, NULL);
}

static void
test_binary_and_empty_keys(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;
    struct hot_hit hit;
    static const char bin1[] = {'a', '\0', 'b'}, bin2[] = {'a', '\0', 'c'};

    (void)state;
    o.threshold_rps = 0;
    h = t_new(&o);
    assert_int_equal(hot_store(h, bin1, 3, hot_fetch_begin(h, bin1, 3), "1", 1, -1, 0),
                     HOT_STORED);
    assert_int_equal(hot_store(h, "", 0, hot_fetch_begin(h, "", 0), "2", 1, -1, 0), HOT_STORED);
    assert_false(hot_lookup(h, bin2, 3, 1, &hit));
    assert_false(hot_lookup(h, "a", 1, 1, &hit));
    assert_true(hot_lookup(h, bin1, 3, 1, &hit));
    assert_memory_equal(hit.value, "1", 1);
    assert_true(hot_lookup(h, "", 0, 1, &hit));
    assert_memory_equal(hit.value, "2", 1);
    assert_true(hot_note_read(h, "", 0, 1, NULL));
    assert_true(hot_lease_begin(h, "", 0, 1, 0));
    hot_invalidate(h, "", 0);
    assert_false(hot_lookup(h, "", 0, 2, &hit));
    assert_int_equal(hot_lease_release(h, "", 0, NULL, 0, t_waiter_cb, NULL), 0);
    hot_free(h, NULL, NULL);
}

/* ---- leases ----------------------------------------------------------- */

static void
test_lease_hold_release(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    struct t_log lg;
    int w[4];
    struct hot_stats st;
    size_t i;

    (void)state;
    memset(&lg, 0, sizeof(lg));
    assert_false(hot_lease_hold(h, "k", 1, 0, &w[0])); /* no lease */
    assert_true(hot_lease_begin(h, "k", 1, 0, 0));
    assert_false(hot_lease_begin(h, "k", 1, 10, 0)); /* one per key */
    for (i = 0; i < 3; i++)
        assert_true(hot_lease_hold(h, "k", 1, 10 + i, &w[i]));
    assert_false(hot_lease_hold(h, "other", 5, 10, &w[3]));
    assert_int_equal(hot_lease_next_deadline(h), 200); /* opts.lease_ms */
    assert_int_equal(hot_lease_release(h, "k", 1, "$1\r\nv\r\n", 7, t_waiter_cb, &lg), 3);
    assert_int_equal(lg.n, 3);
    for (i = 0; i < 3; i++) {
        assert_ptr_equal(lg.waiter[i], &w[i]); /* hold order */
        assert_false(lg.null_value[i]);
        assert_string_equal(lg.value[i], "$1\r\nv\r\n");
    }
    /* released: the lease is gone, nothing more comes back */
    assert_false(hot_lease_hold(h, "k", 1, 20, &w[3]));
    assert_int_equal(hot_lease_release(h, "k", 1, NULL, 0, t_waiter_cb, &lg), 0);
    assert_int_equal(hot_lease_expire(h, 100000, t_waiter_cb, &lg), 0);
    assert_int_equal(lg.n, 3);
    assert_int_equal(hot_lease_next_deadline(h), UINT64_MAX);
    st = t_stats(h);
    assert_int_equal(st.hotkey_lease_holds, 3);
    assert_int_equal(st.hotkey_lease_wakeups, 3);
    assert_int_equal(st.hotkey_lease_timeouts, 0);
    /* release with NULL: the waiters are to be forwarded */
    assert_true(hot_lease_begin(h, "k", 1, 30, 50));
    assert_true(hot_lease_hold(h, "k", 1, 31, &w[0]));
    assert_int_equal(hot_lease_release(h, "k", 1, NULL, 0, t_waiter_cb, &lg), 1);
    assert_true(lg.null_value[3]);
    hot_free(h, NULL, NULL);
}

static void
test_lease_timeout(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    struct t_log lg;
    int w[3];

    (void)state;
    memset(&lg, 0, sizeof(lg));
    assert_true(hot_lease_begin(h, "a", 1, 0, 200));
    assert_true(hot_lease_begin(h, "b", 1, 50, 100));
    assert_int_equal(hot_lease_next_deadline(h), 150);
    assert_true(hot_lease_hold(h, "a", 1, 10, &w[0]));
    assert_true(hot_lease_hold(h, "a", 1, 199, &w[1]));
    assert_true(hot_lease_hold(h, "b", 1, 149, &w[2]));
    assert_false(hot_lease_hold(h, "a", 1, 200, &w[2])); /* timed out */
    /* timed out but not yet expired: no new lease either */
    assert_false(hot_lease_begin(h, "a", 1, 200, 200));
    assert_int_equal(hot_lease_expire(h, 149, t_waiter_cb, &lg), 0);
    assert_int_equal(hot_lease_expire(h, 150, t_waiter_cb, &lg), 1);
    assert_ptr_equal(lg.waiter[0], &w[2]);
    assert_true(lg.null_value[0]);
    assert_int_equal(hot_lease_next_deadline(h), 200);
    assert_int_equal(hot_lease_expire(h, 1000, t_waiter_cb, &lg), 2);
    assert_int_equal(lg.n, 3);
    assert_int_equal(t_times(&lg, &w[0]), 1);
    assert_int_equal(t_times(&lg, &w[1]), 1);
    assert_int_equal(t_times(&lg, &w[2]), 1);
    assert_int_equal(t_stats(h).hotkey_lease_timeouts, 3);
    assert_int_equal(t_stats(h).hotkey_lease_wakeups, 0);
    assert_int_equal(hot_lease_expire(h, 2000, t_waiter_cb, &lg), 0);
    /* ran out with no refill: not leased again (its readers are not held
     * again) until the key is written */
    assert_int_equal(t_stats(h).hotkey_lease_spent, 2);
    assert_int_equal(hot_lease_next_deadline(h), UINT64_MAX);
    assert_false(hot_lease_begin(h, "a", 1, 2000, 0));
    assert_false(hot_lease_hold(h, "a", 1, 2001, &w[0]));
    hot_invalidate(h, "a", 1);                        /* written (watch) */
    assert_true(hot_lease_begin(h, "a", 1, 2000, 0)); /* a fresh lease */
    assert_int_equal(hot_lease_release(h, "b", 1, "$1\r\nv\r\n", 7, t_waiter_cb, &lg), 0);
    assert_true(hot_lease_begin(h, "b", 1, 2000, 0)); /* written through bulwark */
    hot_free(h, t_waiter_cb, &lg);
    assert_int_equal(lg.n, 3);
}

static void
test_lease_disabled_and_bounded(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h;

    (void)state;
    o.lease_ms = 0;
    o.max_keys = 2;
    h = t_new(&o);
    assert_false(hot_lease_begin(h, "a", 1, 0, 0)); /* disabled */
    assert_true(hot_lease_begin(h, "a", 1, 0, 10)); /* explicit length */
    assert_true(hot_lease_begin(h, "b", 1, 0, 10));
    assert_false(hot_lease_begin(h, "c", 1, 0, 10)); /* max_keys leases */
    /* spent leases make room: "c" evicts one, "d" finds none left */
    assert_int_equal(hot_lease_expire(h, 10, NULL, NULL), 0);
    assert_true(hot_lease_begin(h, "c", 1, 10, 10));
    assert_true(hot_lease_begin(h, "d", 1, 10, 10));
    assert_false(hot_lease_begin(h, "e", 1, 10, 10));
    hot_free(h, NULL, NULL); /* no waiters: cb may be NULL */
}

static void
test_lease_cancel(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    struct t_log lg;
    int w[3];
    size_t i;

    (void)state;
    memset(&lg, 0, sizeof(lg));
    assert_true(hot_lease_begin(h, "k", 1, 0, 0));
    for (i = 0; i < 3; i++)
        assert_true(hot_lease_hold(h, "k", 1, 1, &w[i]));
    assert_true(hot_lease_cancel(h, "k", 1, &w[1]));
    assert_false(hot_lease_cancel(h, "k", 1, &w[1]));
    assert_false(hot_lease_cancel(h, "nokey", 5, &w[0]));
    assert_int_equal(hot_lease_release(h, "k", 1, NULL, 0, t_waiter_cb, &lg), 2);
    assert_ptr_equal(lg.waiter[0], &w[0]);
    assert_ptr_equal(lg.waiter[1], &w[2]);
    assert_int_equal(t_times(&lg, &w[1]), 0);
    hot_free(h, NULL, NULL);
}

/* A callback that starts a new lease while leases are being expired. */
struct t_reenter {
    struct hot *h;   /* borrowed: the tracker */
    struct t_log lg; /* what came back */
    int again;       /* waiter held on the new lease */
};

static void
t_reenter_cb(void *ctx, void *waiter, const char *value, size_t vlen)
{
    struct t_reenter *re = ctx;

    t_waiter_cb(&re->lg, waiter, value, vlen);
    if (re->lg.n == 1) {
        /* the expired keys are spent; another key can be leased and held */
        assert_false(hot_lease_begin(re->h, "k", 1, 300, 100));
        assert_true(hot_lease_begin(re->h, "n", 1, 300, 100));
        assert_true(hot_lease_hold(re->h, "n", 1, 300, &re->again));
    }
}

static void
test_lease_callbacks_may_reenter(void **state)
{
    struct hot_opts o = t_opts();
    struct t_reenter re;
    int w[2];

    (void)state;
    memset(&re, 0, sizeof(re));
    re.h = t_new(&o);
    assert_true(hot_lease_begin(re.h, "k", 1, 0, 0));
    assert_true(hot_lease_begin(re.h, "j", 1, 0, 0));
    assert_true(hot_lease_hold(re.h, "k", 1, 1, &w[0]));
    assert_true(hot_lease_hold(re.h, "j", 1, 1, &w[1]));
    assert_int_equal(hot_lease_expire(re.h, 300, t_reenter_cb, &re), 2);
    assert_int_equal(re.lg.n, 2);
    assert_int_equal(hot_lease_next_deadline(re.h), 400);
    assert_int_equal(hot_lease_expire(re.h, 400, t_reenter_cb, &re), 1);
    assert_ptr_equal(re.lg.waiter[2], &re.again);
    hot_free(re.h, NULL, NULL);
}

static void
test_free_hands_back_held_waiters(void **state)
{
    struct hot_opts o = t_opts();
    struct hot *h = t_new(&o);
    struct t_log lg;
    int w[5];
    size_t i;

    (void)state;
    memset(&lg, 0, sizeof(lg));
    assert_true(hot_lease_begin(h, "a", 1, 0, 0));
    assert_true(hot_lease_begin(h, "b", 1, 0, 0));
    assert_true(hot_lease_begin(h, "c", 1, 0, 0)); /* no waiters */
    for (i = 0; i < 5; i++) /* grows the waiter array past its first size */
        assert_true(hot_lease_hold(h, i < 2 ? "a" : "b", 1, 1, &w[i]));
    assert_int_equal(t_store(h, "cached", T_VAL, -1, 0), HOT_STORED);
    t_reads(h, "top", 3, 0, 1);
    hot_free(h, t_waiter_cb, &lg);
    assert_int_equal(lg.n, 5);
    for (i = 0; i < 5; i++) {
        assert_int_equal(t_times(&lg, &w[i]), 1);
    }
    for (i = 0; i < lg.n; i++)
        assert_true(lg.null_value[i]);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_opts_defaults_and_ranges),
        cmocka_unit_test(test_drop_if),
        cmocka_unit_test(test_sketch_bounds_on_skewed_stream),
        cmocka_unit_test(test_sketch_aging_halves),
        cmocka_unit_test(test_rate_tracks_steady_rate),
        cmocka_unit_test(test_hot_threshold_and_cooling),
        cmocka_unit_test(test_threshold_zero_everything_hot),
        cmocka_unit_test(test_top_lists_hottest_first),
        cmocka_unit_test(test_cache_bounded_by_keys_coldest_first),
        cmocka_unit_test(test_cache_bounded_by_bytes),
        cmocka_unit_test(test_sampled_eviction_keeps_hot_keys),
        cmocka_unit_test(test_expired_entries_evicted_first),
        cmocka_unit_test(test_expiry_min_ttl_pttl),
        cmocka_unit_test(test_refresh_ahead_once_per_life),
        cmocka_unit_test(test_refresh_ratio_edges),
        cmocka_unit_test(test_generation_discards_raced_fetch),
        cmocka_unit_test(test_flush_invalidates_inflight),
        cmocka_unit_test(test_binary_and_empty_keys),
        cmocka_unit_test(test_lease_hold_release),
        cmocka_unit_test(test_lease_timeout),
        cmocka_unit_test(test_lease_disabled_and_bounded),
        cmocka_unit_test(test_lease_cancel),
        cmocka_unit_test(test_lease_callbacks_may_reenter),
        cmocka_unit_test(test_free_hands_back_held_waiters),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
