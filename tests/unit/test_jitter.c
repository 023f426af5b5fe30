/*
 * Unit tests for proxy/jitter: which writes get extra TTL, how much, and
 * that every other request reaches Redis byte for byte. Redis replies named
 * in comments were checked against redis-server 7.0.15 with redis-cli.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/jitter.h"

#define T_MAX_ARGS 16
#define T_ARG_MAX 64
#define T_BUF 1024
#define T_ROUNDS 300

/* Wall clock used for absolute expiries: 2023-11-14T22:13:20Z, in ms. */
#define T_NOW_MS UINT64_C(1700000000000)

/* NULL-terminated list of C-string arguments. */
#define T_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A request: views into caller-owned strings. */
struct t_req {
    int argc;                           /* arguments used */
    struct jitter_arg argv[T_MAX_ARGS]; /* borrowed views */
};

/* A request decoded back from jitter_encode()'s RESP output. */
struct t_decoded {
    int argc;                        /* arguments decoded */
    char arg[T_MAX_ARGS][T_ARG_MAX]; /* argument bytes, NUL-terminated */
    size_t len[T_MAX_ARGS];          /* bytes in arg[i] */
};

/* What a jittered request must look like. */
struct t_expect {
    const char *name;     /* argv[0] after rewriting, NULL: as sent */
    int ttl_index;        /* argv index of the TTL */
    int unit_index;       /* argv index of the replaced unit word, or -1 */
    const char *unit;     /* the replacement unit word, if unit_index >= 0 */
    uint64_t lo;          /* smallest allowed new TTL (= the original) */
    uint64_t hi;          /* largest allowed new TTL */
    uint64_t ms_per_unit; /* 1 for a ms result, 1000 for seconds */
};

static struct t_req
t_req(const char *const *args)
{
    struct t_req rq;

    int i;

    memset(&rq, 0, sizeof(rq));
    while (args[rq.argc] != NULL) {
        assert_true(rq.argc < T_MAX_ARGS - 1);
        rq.argv[rq.argc].ptr = args[rq.argc];
        rq.argv[rq.argc].len = strlen(args[rq.argc]);
        rq.argc++;
    }
    /* a valid TTL past the end: reading beyond argc would be noticed */
    for (i = rq.argc; i < T_MAX_ARGS; i++) {
        rq.argv[i].ptr = "100";
        rq.argv[i].len = 3;
    }
    return rq;
}

/* Defaults the tests start from: 10%, at most one hour, no floor. */
static struct jitter_opts
t_opts(void)
{
    struct jitter_opts o;

    memset(&o, 0, sizeof(o));
    o.percent = 10;
    o.max_ms = 3600000;
    return o;
}

static uint64_t
t_u64(const char *s)
{
    char *end;
    unsigned long long v;

    v = strtoull(s, &end, 10);
    assert_true(*s >= '0' && *s <= '9' && *end == '\0');
    return (uint64_t)v;
}

/* Decode a RESP multibulk of bulk strings; fails the test on bad framing. */
static void
t_decode(const char *buf, size_t n, struct t_decoded *d)
{
    const char *p = buf, *end = buf + n;
    char *e;
    int i;

    memset(d, 0, sizeof(*d));
    assert_true(n > 3 && *p == '*');
    d->argc = (int)strtol(p + 1, &e, 10);
    assert_true(e + 2 <= end && memcmp(e, "\r\n", 2) == 0);
    assert_true(d->argc >= 0 && d->argc <= T_MAX_ARGS);
    p = e + 2;
    for (i = 0; i < d->argc; i++) {
        assert_true(p < end && *p == '$');
        d->len[i] = (size_t)strtoul(p + 1, &e, 10);
        assert_true(d->len[i] < T_ARG_MAX);
        assert_true(e + 2 + d->len[i] + 2 <= end);
        assert_memory_equal(e, "\r\n", 2);
        memcpy(d->arg[i], e + 2, d->len[i]);
        p = e + 2 + d->len[i];
        assert_memory_equal(p, "\r\n", 2);
        p += 2;
    }
    assert_ptr_equal(p, end);
}

/* The RESP a client would send for rq, built independently of jitter. */
static size_t
t_resp(const struct t_req *rq, char *buf, size_t cap)
{
    size_t off = (size_t)snprintf(buf, cap, "*%d\r\n", rq->argc);
    int i;

    for (i = 0; i < rq->argc; i++) {
        off += (size_t)snprintf(buf + off, cap - off, "$%zu\r\n", rq->argv[i].len);
        assert_true(off + rq->argv[i].len + 2 < cap);
        memcpy(buf + off, rq->argv[i].ptr, rq->argv[i].len);
        memcpy(buf + off + rq->argv[i].len, "\r\n", 2);
        off += rq->argv[i].len + 2;
    }
    return off;
}

/* rq is never rewritten and is re-encoded exactly as a client sent it. */
static void
t_untouched_req(const struct jitter_opts *o, const struct t_req *rq)
{
    char want[T_BUF], got[T_BUF];
    size_t wlen = t_resp(rq, want, sizeof(want));
    struct jitter_rng r;
    struct jitter_result res;
    int i;

    jitter_rng_seed(&r, 7);
    for (i = 0; i < 50; i++) {
        assert_false(jitter_rewrite(o, &r, T_NOW_MS, rq->argc, rq->argv, &res));
        assert_false(res.rewritten);
        assert_int_equal(res.added_ms, 0);
        assert_int_equal(jitter_encode(rq->argc, rq->argv, &res, got, sizeof(got)), wlen);
        assert_memory_equal(got, want, wlen);
    }
}

static void
t_untouched(const struct jitter_opts *o, const char *const *args)
{
    struct t_req rq = t_req(args);

    t_untouched_req(o, &rq);
}

/* Check one rewritten request against e and the original rq. */
static uint64_t
t_check_rewrite(const struct t_req *rq, const struct jitter_result *res, const struct t_expect *e)
{
    char buf[T_BUF];
    struct t_decoded d;
    size_t n = jitter_encode(rq->argc, rq->argv, res, NULL, 0);
    uint64_t v;
    int i;

    assert_true(n < sizeof(buf));
    assert_int_equal(jitter_encode(rq->argc, rq->argv, res, buf, n), n);
    t_decode(buf, n, &d);
    assert_int_equal(d.argc, rq->argc);
    for (i = 0; i < rq->argc; i++) {
        if (i == e->ttl_index)
            continue;
        if (i == 0 && e->name != NULL)
            assert_string_equal(d.arg[0], e->name);
        else if (i == e->unit_index)
            assert_string_equal(d.arg[i], e->unit);
        else
            assert_true(d.len[i] == rq->argv[i].len &&
                        memcmp(d.arg[i], rq->argv[i].ptr, d.len[i]) == 0);
    }
    v = t_u64(d.arg[e->ttl_index]);
    assert_in_range(v, e->lo + 1, e->hi); /* d = 0 is sent unchanged */
    assert_true(v * e->ms_per_unit <= JITTER_TTL_MAX_MS);
    assert_int_equal(res->added_ms, (v - e->lo) * e->ms_per_unit);
    return v;
}

/*
 * Rewrite args T_ROUNDS times: every result matches e; nearly all are
 * rewritten (a zero draw is legal and leaves the request alone) and the
 * drawn TTLs vary.
 */
static void
t_jittered(const struct jitter_opts *o, const char *const *args, const struct t_expect *e)
{
    struct t_req rq = t_req(args);
    struct jitter_rng r;
    struct jitter_result res;
    uint64_t v, vmin = UINT64_MAX, vmax = 0;
    int i, rewritten = 0;

    jitter_rng_seed(&r, 42);
    for (i = 0; i < T_ROUNDS; i++) {
        if (!jitter_rewrite(o, &r, T_NOW_MS, rq.argc, rq.argv, &res)) {
            assert_false(res.rewritten);
            continue;
        }
        rewritten++;
        v = t_check_rewrite(&rq, &res, e);
        vmin = v < vmin ? v : vmin;
        vmax = v > vmax ? v : vmax;
    }
    assert_true(rewritten >= T_ROUNDS * 9 / 10);
    assert_true(vmax > vmin);
}

/* ---- generator ----------------------------------------------------------- */

/* Reference outputs of xoshiro256** from state {1, 2, 3, 4} (the C reference
 * at prng.di.unimi.it, as used in rand_xoshiro's test vector). */
static void
test_rng_reference_vector(void **state)
{
    static const uint64_t want[] = {
        UINT64_C(11520),
        UINT64_C(0),
        UINT64_C(1509978240),
        UINT64_C(1215971899390074240),
        UINT64_C(1216172134540287360),
        UINT64_C(607988272756665600),
        UINT64_C(16172922978634559625),
        UINT64_C(8476171486693032832),
        UINT64_C(10595114339597558777),
        UINT64_C(2904607092377533576),
    };
    struct jitter_rng r = {{1, 2, 3, 4}};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++)
        assert_true(jitter_rng_next(&r) == want[i]);
}

/* An explicit seed is expanded with splitmix64 (reference outputs for
 * seed 1234567), so a seed reproduces its sequence. */
static void
test_rng_seed_fixed(void **state)
{
    struct jitter_rng a, b;
    int i;

    (void)state;
    jitter_rng_seed(&a, 1234567);
    assert_true(a.s[0] == UINT64_C(6457827717110365317));
    assert_true(a.s[1] == UINT64_C(3203168211198807973));
    assert_true(a.s[2] == UINT64_C(9817491932198370423));
    assert_true(a.s[3] == UINT64_C(4593380528125082431));
    jitter_rng_seed(&b, 1234567);
    for (i = 0; i < 100; i++)
        assert_true(jitter_rng_next(&a) == jitter_rng_next(&b));
}

/* Seed 0 draws from the kernel: two generators do not share a sequence. */
static void
test_rng_seed_random(void **state)
{
    struct jitter_rng a, b;

    (void)state;
    jitter_rng_seed(&a, 0);
    jitter_rng_seed(&b, 0);
    assert_true((a.s[0] | a.s[1] | a.s[2] | a.s[3]) != 0);
    assert_false(memcmp(a.s, b.s, sizeof(a.s)) == 0);
    assert_false(jitter_rng_next(&a) == jitter_rng_next(&b));
}

/* Draws stay in [0, bound] and reach both ends. */
static void
test_rng_below_bounds(void **state)
{
    static const uint64_t bounds[] = {
        UINT64_C(1) << 63, /* worst case: half the draws are rejected */
        (UINT64_C(1) << 63) + 1,
        UINT64_MAX - 1,
        UINT64_MAX,
    };
    struct jitter_rng r;
    int seen[10] = {0};
    size_t i, k;
    uint64_t v;

    (void)state;
    jitter_rng_seed(&r, 1);
    for (i = 0; i < 1000; i++)
        assert_true(jitter_rng_below(&r, 0) == 0);
    for (i = 0; i < 1000; i++) {
        v = jitter_rng_below(&r, 9);
        assert_true(v <= 9);
        seen[v]++;
    }
    for (i = 0; i < 10; i++)
        assert_true(seen[i] > 0);
    for (k = 0; k < sizeof(bounds) / sizeof(bounds[0]); k++)
        for (i = 0; i < 1000; i++)
            assert_true(jitter_rng_below(&r, bounds[k]) <= bounds[k]);
}

/*
 * No modulo bias. For a range of two thirds of 2^64, a plain "x % range"
 * folds the top third of the draws onto the lower half of the range, which
 * then gets 2/3 of the results instead of 1/2.
 */
static void
test_rng_below_unbiased(void **state)
{
    const uint64_t bound = UINT64_C(0xAAAAAAAAAAAAAAAA);
    struct jitter_rng r;
    int i, low = 0;

    (void)state;
    jitter_rng_seed(&r, 11);
    for (i = 0; i < 4000; i++)
        if (jitter_rng_below(&r, bound) < bound / 2)
            low++;
    assert_in_range(low, 4000 * 45 / 100, 4000 * 55 / 100);
}

/*
 * 10,000 SET ... EX 600 at 10% land in [600 s, 660 s] and put 5-15% in each
 * tenth of that range (expected 10% each; a draw that is clipped, scaled
 * wrongly or skewed piles up at one end).
 */
static void
test_distribution(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_req rq = t_req(T_ARGS("SET", "k", "v", "EX", "600"));
    struct jitter_rng r;
    struct jitter_result res;
    int tenth[10] = {0};
    uint64_t v;
    int i;

    (void)state;
    jitter_rng_seed(&r, 20240601);
    for (i = 0; i < 10000; i++) {
        v = 600000;
        if (jitter_rewrite(&o, &r, T_NOW_MS, rq.argc, rq.argv, &res))
            v = t_u64(res.ttl_buf);
        assert_in_range(v, 600000, 660000);
        tenth[(v - 600000) * 10 / 60001]++;
    }
    for (i = 0; i < 10; i++)
        assert_in_range(tenth[i], 500, 1500);
}

/* ---- jittered by default ------------------------------------------------- */

/* SET EX becomes SET PX (in ms, for a fine spread); reply is still +OK. */
static void
test_set_ex(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_expect e = {NULL, 4, 3, "PX", 100000, 110000, 1};

    (void)state;
    t_jittered(&o, T_ARGS("SET", "k", "v", "EX", "100"), &e);
    t_jittered(&o, T_ARGS("set", "k", "v", "ex", "100"), &e);
}

static void
test_set_px(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_expect e = {NULL, 4, -1, NULL, 100000, 110000, 1};

    (void)state;
    t_jittered(&o, T_ARGS("SET", "k", "v", "PX", "100000"), &e);
    /* the unit word is kept as sent when it already is ms */
    t_jittered(&o, T_ARGS("sEt", "k", "v", "pX", "100000"), &e);
}

/* XX and GET may come anywhere; every other argument keeps its place. */
static void
test_set_option_order(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_expect px4 = {NULL, 4, -1, NULL, 100, 110, 1};
    struct t_expect ex4 = {NULL, 4, 3, "PX", 5000, 5500, 1};
    struct t_expect ex6 = {NULL, 6, 5, "PX", 100000, 110000, 1};

    (void)state;
    t_jittered(&o, T_ARGS("SET", "k", "v", "PX", "100", "XX", "GET"), &px4);
    /* SET k v ex 5 xx get replies with the old value either way */
    t_jittered(&o, T_ARGS("SET", "k", "v", "ex", "5", "xx", "get"), &ex4);
    t_jittered(&o, T_ARGS("SET", "k", "v", "GET", "XX", "EX", "100"), &ex6);
    /* repeated XX and GET are accepted by Redis (replies OK / old value) */
    t_jittered(&o, T_ARGS("SET", "k", "v", "XX", "XX", "EX", "100"), &ex6);
    t_jittered(&o, T_ARGS("SET", "k", "v", "GET", "GET", "EX", "100"), &ex6);
}

/* SETEX becomes PSETEX; both reply +OK. PSETEX keeps its name as sent. */
static void
test_setex_psetex(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_expect setex = {"PSETEX", 2, -1, NULL, 100000, 110000, 1};
    struct t_expect psetex = {NULL, 2, -1, NULL, 100000, 110000, 1};

    (void)state;
    t_jittered(&o, T_ARGS("SETEX", "k", "100", "v"), &setex);
    t_jittered(&o, T_ARGS("setex", "k", "100", "v"), &setex);
    t_jittered(&o, T_ARGS("psetex", "k", "100000", "v"), &psetex);
}

/* keep_unit draws whole seconds and keeps SETEX / EX as sent. */
static void
test_keep_unit(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_expect setex = {NULL, 2, -1, NULL, 1000, 1100, 1000};
    struct t_expect ex = {NULL, 4, -1, NULL, 1000, 1100, 1000};

    (void)state;
    o.keep_unit = true;
    t_jittered(&o, T_ARGS("SETEX", "k", "1000", "v"), &setex);
    t_jittered(&o, T_ARGS("SET", "k", "v", "EX", "1000"), &ex);
    /* 10% of 5 s is under one second: nothing to add */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "5"));
}

/* The extra TTL is capped by max_ms, and percent may exceed 100. */
static void
test_max_and_percent(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_expect capped = {NULL, 4, 3, "PX", 100000000, 100005000, 1};
    struct t_expect doubled = {NULL, 4, -1, NULL, 1000, 3000, 1};
    struct t_expect one = {NULL, 4, -1, NULL, 10, 11, 1};

    (void)state;
    o.max_ms = 5000;
    t_jittered(&o, T_ARGS("SET", "k", "v", "EX", "100000"), &capped);
    o = t_opts();
    o.percent = 200;
    t_jittered(&o, T_ARGS("SET", "k", "v", "PX", "1000"), &doubled);
    o = t_opts();
    /* 10% of 10 ms is 1 ms: the result is 10 (sent unchanged) or 11 */
    o.percent = 10;
    {
        struct t_req rq = t_req(T_ARGS("SET", "k", "v", "PX", "10"));
        struct jitter_rng r;
        struct jitter_result res;
        int i, n = 0;

        jitter_rng_seed(&r, 3);
        for (i = 0; i < T_ROUNDS; i++)
            if (jitter_rewrite(&o, &r, T_NOW_MS, rq.argc, rq.argv, &res)) {
                t_check_rewrite(&rq, &res, &one);
                n++;
            }
        assert_in_range(n, T_ROUNDS / 4, T_ROUNDS * 3 / 4);
    }
    /* 10% of 9 ms rounds down to 0 ms */
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", "9"));
}

/* percent 0 or max_ms 0 turns jitter off for every form. */
static void
test_disabled(void **state)
{
    const char *const *forms[] = {
        T_ARGS("SET", "k", "v", "EX", "100"),
        T_ARGS("SET", "k", "v", "PX", "100000"),
        T_ARGS("SETEX", "k", "100", "v"),
        T_ARGS("PSETEX", "k", "100000", "v"),
        T_ARGS("EXPIRE", "k", "100"),
        T_ARGS("GETEX", "k", "EX", "100"),
        T_ARGS("SET", "k", "v", "EXAT", "1700000100"),
    };
    struct jitter_opts o = t_opts();
    size_t i;

    (void)state;
    o.expire = true;
    o.absolute = true;
    o.percent = 0;
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        t_untouched(&o, forms[i]);
    o.percent = 10;
    o.max_ms = 0;
    for (i = 0; i < sizeof(forms) / sizeof(forms[0]); i++)
        t_untouched(&o, forms[i]);
}

/* Keys and values are binary-safe through the rewrite. */
static void
test_binary_args(void **state)
{
    struct t_req rq = t_req(T_ARGS("SET", "k", "v", "EX", "100"));
    struct t_expect e = {NULL, 4, 3, "PX", 100000, 110000, 1};
    struct jitter_opts o = t_opts();
    struct jitter_rng r;
    struct jitter_result res;

    (void)state;
    rq.argv[1].ptr = "k\0\r\n*";
    rq.argv[1].len = 5;
    rq.argv[2].ptr = "\r\n$3\r\n\0";
    rq.argv[2].len = 7;
    jitter_rng_seed(&r, 5);
    assert_true(jitter_rewrite(&o, &r, T_NOW_MS, rq.argc, rq.argv, &res));
    t_check_rewrite(&rq, &res, &e);
}

/* ---- left alone by default ----------------------------------------------- */

/* Locks: SET NX with an expiry keeps its exact TTL. */
static void
test_nx_untouched(void **state)
{
    struct jitter_opts o = t_opts();

    (void)state;
    o.expire = true;
    o.absolute = true;
    t_untouched(&o, T_ARGS("SET", "lock", "me", "NX", "EX", "10"));
    t_untouched(&o, T_ARGS("SET", "lock", "me", "PX", "30000", "nx"));
    /* Redis 7.0 accepts NX with GET: reply nil or the old value */
    t_untouched(&o, T_ARGS("set", "lock", "me", "nx", "get", "px", "300"));
    t_untouched(&o, T_ARGS("SET", "lock", "me", "NX", "NX", "EX", "10"));
}

/* No relative expiry, or an opted-out one. */
static void
test_other_forms_untouched(void **state)
{
    struct jitter_opts o = t_opts();

    (void)state;
    t_untouched(&o, T_ARGS("SET", "k", "v"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "XX", "GET"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "KEEPTTL"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "KEEPTTL", "XX"));
    t_untouched(&o, T_ARGS("PERSIST", "k"));
    t_untouched(&o, T_ARGS("GET", "k"));
    t_untouched(&o, T_ARGS("SETNX", "k", "v"));
    t_untouched(&o, T_ARGS("INCR", "k"));
    /* EXPIRE family and GETEX need the expire option */
    t_untouched(&o, T_ARGS("EXPIRE", "k", "100"));
    t_untouched(&o, T_ARGS("PEXPIRE", "k", "100000", "NX"));
    t_untouched(&o, T_ARGS("GETEX", "k", "EX", "100"));
    t_untouched(&o, T_ARGS("GETEX", "k", "PX", "100000"));
    /* absolute expiries need the absolute option */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EXAT", "1700000100"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "PXAT", "1700000100000"));
    t_untouched(&o, T_ARGS("EXPIREAT", "k", "1700000100"));
    t_untouched(&o, T_ARGS("PEXPIREAT", "k", "1700000100000"));
}

/* TTLs below min_ttl_ms keep their value. */
static void
test_min_ttl(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_expect ex = {NULL, 4, 3, "PX", 60000, 66000, 1};
    struct t_expect setex = {"PSETEX", 2, -1, NULL, 60000, 66000, 1};

    (void)state;
    o.min_ttl_ms = 60000;
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "59"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", "59999"));
    t_untouched(&o, T_ARGS("SETEX", "k", "59", "v"));
    t_untouched(&o, T_ARGS("PSETEX", "k", "1", "v"));
    t_jittered(&o, T_ARGS("SET", "k", "v", "EX", "60"), &ex);
    t_jittered(&o, T_ARGS("SETEX", "k", "60", "v"), &setex);
}

/* Keys matching an exclude glob (Redis KEYS syntax, case-sensitive). */
static void
test_exclude(void **state)
{
    static const char *const globs[] = {"lock:*", "rate:[ab]?", "exact"};
    struct jitter_opts o = t_opts();
    struct t_expect e = {NULL, 4, 3, "PX", 100000, 110000, 1};
    struct t_expect s = {"PSETEX", 2, -1, NULL, 100000, 110000, 1};

    (void)state;
    o.exclude = globs;
    o.exclude_count = 3;
    t_untouched(&o, T_ARGS("SET", "lock:order:1", "v", "EX", "100"));
    t_untouched(&o, T_ARGS("SETEX", "rate:a1", "100", "v"));
    t_untouched(&o, T_ARGS("SET", "rate:b9", "v", "EX", "100"));
    t_untouched(&o, T_ARGS("SET", "exact", "v", "EX", "100"));
    t_jittered(&o, T_ARGS("SET", "LOCK:order:1", "v", "EX", "100"), &e);
    t_jittered(&o, T_ARGS("SET", "rate:c1", "v", "EX", "100"), &e);
    t_jittered(&o, T_ARGS("SET", "rate:a12", "v", "EX", "100"), &e);
    t_jittered(&o, T_ARGS("SETEX", "exact2", "100", "v"), &s);
}

/* ---- opt-ins ------------------------------------------------------------- */

/* expire: EXPIRE becomes PEXPIRE (reply :1 / :0 either way), options kept. */
static void
test_expire_opt_in(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_expect exp = {"PEXPIRE", 2, -1, NULL, 100000, 110000, 1};
    struct t_expect pexp = {NULL, 2, -1, NULL, 100000, 110000, 1};
    struct t_expect getex = {NULL, 3, 2, "PX", 100000, 110000, 1};
    struct t_expect getpx = {NULL, 3, -1, NULL, 100000, 110000, 1};

    (void)state;
    o.expire = true;
    t_jittered(&o, T_ARGS("EXPIRE", "k", "100"), &exp);
    t_jittered(&o, T_ARGS("expire", "k", "100", "nx"), &exp);
    t_jittered(&o, T_ARGS("EXPIRE", "k", "100", "XX", "GT"), &exp);
    t_jittered(&o, T_ARGS("EXPIRE", "k", "100", "LT", "lt"), &exp);
    t_jittered(&o, T_ARGS("PEXPIRE", "k", "100000", "GT"), &pexp);
    t_jittered(&o, T_ARGS("GETEX", "k", "EX", "100"), &getex);
    t_jittered(&o, T_ARGS("getex", "k", "px", "100000"), &getpx);
    t_untouched(&o, T_ARGS("GETEX", "k"));
    t_untouched(&o, T_ARGS("GETEX", "k", "PERSIST"));
    /* absolute forms still need the absolute option */
    t_untouched(&o, T_ARGS("EXPIREAT", "k", "1700000100"));
    t_untouched(&o, T_ARGS("GETEX", "k", "EXAT", "1700000100"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EXAT", "1700000100"));
}

/* absolute: jitter sized from (timestamp - now_ms); EXAT becomes PXAT. */
static void
test_absolute_opt_in(void **state)
{
    struct jitter_opts o = t_opts();
    /* 1000 s ahead of T_NOW_MS: up to 100 s more */
    struct t_expect exat = {NULL, 4, 3, "PXAT", 1700001000000, 1700001100000, 1};
    struct t_expect pxat = {NULL, 4, -1, NULL, 1700001000000, 1700001100000, 1};
    struct t_expect expat = {"PEXPIREAT", 2, -1, NULL, 1700001000000, 1700001100000, 1};
    struct t_expect pexpat = {NULL, 2, -1, NULL, 1700001000000, 1700001100000, 1};
    struct t_expect getex = {NULL, 3, 2, "PXAT", 1700001000000, 1700001100000, 1};

    (void)state;
    o.absolute = true;
    t_jittered(&o, T_ARGS("SET", "k", "v", "EXAT", "1700001000"), &exat);
    t_jittered(&o, T_ARGS("SET", "k", "v", "pxat", "1700001000000"), &pxat);
    /* EXPIREAT/PEXPIREAT: ttl-jitter-absolute alone opts in; GETEX needs expire */
    t_jittered(&o, T_ARGS("EXPIREAT", "k", "1700001000", "GT"), &expat);
    t_untouched(&o, T_ARGS("GETEX", "k", "EXAT", "1700001000"));
    /* not in the future: left alone (Redis deletes / expires at once) */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EXAT", "1700000000"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "PXAT", "1"));
    o.expire = true;
    t_jittered(&o, T_ARGS("EXPIREAT", "k", "1700001000", "GT"), &expat);
    t_jittered(&o, T_ARGS("PEXPIREAT", "k", "1700001000000"), &pexpat);
    t_jittered(&o, T_ARGS("GETEX", "k", "EXAT", "1700001000"), &getex);
    /* min_ttl_ms applies to the time left, not to the timestamp */
    o.min_ttl_ms = 1000001;
    t_untouched(&o, T_ARGS("SET", "k", "v", "EXAT", "1700001000"));
    o.min_ttl_ms = 1000000;
    t_jittered(&o, T_ARGS("SET", "k", "v", "EXAT", "1700001000"), &exat);
}

/* ---- requests Redis rejects or that we do not model: sent as received ---- */

/*
 * TTLs that are not a positive canonical integer. Redis 7.0.15 replies
 * "-ERR invalid expire time in 'set' command" for 0 and negatives, and
 * "-ERR value is not an integer or out of range" for the rest.
 */
static void
test_bad_ttl_untouched(void **state)
{
    static const char *const bad[] = {
        "0",
        "-1",
        "-100",
        "abc",
        "010",
        "+10",
        " 10",
        "10 ",
        "10.0",
        "0x10",
        "",
        "1e3",
        "9223372036854775808",
        "99999999999999999999",
        "18446744073709551617",
    };
    struct jitter_opts o = t_opts();
    size_t i;

    (void)state;
    o.expire = true;
    o.absolute = true;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        t_untouched(&o, T_ARGS("SET", "k", "v", "EX", bad[i]));
        t_untouched(&o, T_ARGS("SET", "k", "v", "PX", bad[i]));
        t_untouched(&o, T_ARGS("SETEX", "k", bad[i], "v"));
        t_untouched(&o, T_ARGS("PSETEX", "k", bad[i], "v"));
        /* EXPIRE k -1 is valid: it deletes the key (reply :1) */
        t_untouched(&o, T_ARGS("EXPIRE", "k", bad[i]));
        t_untouched(&o, T_ARGS("GETEX", "k", "EX", bad[i]));
        t_untouched(&o, T_ARGS("SET", "k", "v", "EXAT", bad[i]));
    }
}

/*
 * Malformed SET/SETEX: each reply (from redis-server 7.0.15) must come from
 * Redis itself, so the request goes out unchanged.
 */
static void
test_invalid_set_untouched(void **state)
{
    struct jitter_opts o = t_opts();

    (void)state;
    o.absolute = true;
    /* +OK: Redis keeps the last expiry (PTTL ~20000); not modelled */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "10", "EX", "20"));
    /* +OK: only the last value is parsed */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "abc", "EX", "10"));
    /* -ERR invalid expire time in 'set' command */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "10", "EX", "0"));
    /* +OK, duplicate absolute expiry */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EXAT", "1700001000", "EXAT", "1700002000"));
    /* -ERR syntax error */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "10", "PX", "20"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", "20", "EX", "10"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "10", "EXAT", "100"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "10", "KEEPTTL"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "KEEPTTL", "EX", "10"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "XX", "EX"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "NX", "XX", "EX", "10"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "XX", "NX", "EX", "10"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "10", "PERSIST"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "FOO", "EX", "10"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "10", "FOO"));
    /* EX takes "PX" as its value (not an integer), then "100" is a syntax
     * error */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "PX", "100"));
    /* -ERR wrong number of arguments for 'set' command */
    t_untouched(&o, T_ARGS("SET", "k"));
    t_untouched(&o, T_ARGS("SET"));
    /* -ERR wrong number of arguments for 'setex' / 'psetex' command */
    t_untouched(&o, T_ARGS("SETEX", "k", "10"));
    t_untouched(&o, T_ARGS("SETEX", "k", "10", "v", "extra"));
    t_untouched(&o, T_ARGS("PSETEX", "k", "10000"));
    t_untouched(&o, T_ARGS("PSETEX", "k", "10000", "v", "EX"));
}

/* Malformed GETEX / EXPIRE with the expire option on. */
static void
test_invalid_expire_untouched(void **state)
{
    struct jitter_opts o = t_opts();

    (void)state;
    o.expire = true;
    o.absolute = true;
    /* -ERR syntax error */
    t_untouched(&o, T_ARGS("GETEX", "k", "PX", "10000", "EX", "5"));
    t_untouched(&o, T_ARGS("GETEX", "k", "NX", "EX", "10"));
    t_untouched(&o, T_ARGS("GETEX", "k", "EX", "10", "GET"));
    t_untouched(&o, T_ARGS("GETEX", "k", "PERSIST", "EX", "10"));
    t_untouched(&o, T_ARGS("GETEX", "k", "EX", "10", "PERSIST"));
    t_untouched(&o, T_ARGS("GETEX", "k", "KEEPTTL"));
    t_untouched(&o, T_ARGS("GETEX", "k", "EX"));
    /* the value: Redis keeps the last expiry; not modelled */
    t_untouched(&o, T_ARGS("GETEX", "k", "EX", "10", "EX", "20"));
    t_untouched(&o, T_ARGS("GETEX", "k", "ex", "abc", "ex", "20"));
    /* -ERR wrong number of arguments for 'getex' / 'expire' command */
    t_untouched(&o, T_ARGS("GETEX"));
    t_untouched(&o, T_ARGS("EXPIRE", "k"));
    /* -ERR NX and XX, GT or LT options at the same time are not compatible */
    t_untouched(&o, T_ARGS("EXPIRE", "k", "10", "NX", "XX"));
    t_untouched(&o, T_ARGS("EXPIRE", "k", "10", "NX", "GT"));
    t_untouched(&o, T_ARGS("PEXPIRE", "k", "10000", "lt", "nx"));
    /* -ERR GT and LT options at the same time are not compatible */
    t_untouched(&o, T_ARGS("EXPIRE", "k", "10", "GT", "LT"));
    /* -ERR Unsupported option foo */
    t_untouched(&o, T_ARGS("EXPIRE", "k", "10", "foo"));
    t_untouched(&o, T_ARGS("EXPIREAT", "k", "1700001000", "EX"));
}

/*
 * Redis compares option words as C strings, so it reads "EX\0" as EX (SET
 * replies +OK with a 10 s TTL); we do not model that and leave it alone.
 * A TTL with a NUL ("10\0") is not an integer to Redis either.
 */
static void
test_nul_in_option_untouched(void **state)
{
    struct jitter_opts o = t_opts();
    struct t_req rq = t_req(T_ARGS("SET", "k", "v", "EX", "10"));

    (void)state;
    rq.argv[3].ptr = "EX\0";
    rq.argv[3].len = 3;
    t_untouched_req(&o, &rq);
    rq = t_req(T_ARGS("SET", "k", "v", "EX", "10"));
    rq.argv[4].ptr = "10\0";
    rq.argv[4].len = 3;
    t_untouched_req(&o, &rq);
    rq = t_req(T_ARGS("SET", "k", "v", "EX", "10"));
    rq.argv[0].ptr = "SET\0";
    rq.argv[0].len = 4;
    t_untouched_req(&o, &rq);
}

/* ---- overflow edges ------------------------------------------------------ */

/*
 * Values Redis 7.0.15 rejects stay as sent. Measured: SET PX n is accepted
 * up to LLONG_MAX - now_ms and SET EX n up to (LLONG_MAX - now_ms) / 1000
 * (the expiry plus the server clock must fit in a long long); EX, SETEX
 * and EXPIRE above LLONG_MAX / 1000 fail at the seconds-to-ms conversion;
 * EXAT accepts up to LLONG_MAX / 1000, PXAT and PEXPIREAT up to LLONG_MAX.
 */
static void
test_overflow_rejected_untouched(void **state)
{
    struct jitter_opts o = t_opts();

    (void)state;
    o.expire = true;
    o.absolute = true;
    o.max_ms = UINT64_MAX;
    /* -ERR invalid expire time in 'set' / 'setex' / 'psetex' / 'expire' /
     * 'pexpire' command */
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", "9223372036854775807"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "9223372036854775"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "9223372036854774"));
    t_untouched(&o, T_ARGS("SETEX", "k", "9223372036854775", "v"));
    t_untouched(&o, T_ARGS("PSETEX", "k", "9223372036854775807", "v"));
    t_untouched(&o, T_ARGS("EXPIRE", "k", "9223372036854775"));
    t_untouched(&o, T_ARGS("PEXPIRE", "k", "9223372036854775807"));
    t_untouched(&o, T_ARGS("GETEX", "k", "EX", "9223372036854775"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EXAT", "9223372036854776"));
    /* accepted by Redis but already beyond JITTER_TTL_MAX_MS: a larger
     * value could overflow the server clock, so it is left alone */
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "9223370240889095"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", "9223370000000000000"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "EXAT", "9223372036854775"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "PXAT", "9223372036854775807"));
    t_untouched(&o, T_ARGS("PEXPIREAT", "k", "9223372036854775807"));
}

/* Near the bound: jitter is drawn only if the largest result fits. */
static void
test_overflow_bound(void **state)
{
    struct jitter_opts o = t_opts();
    char ttl[32];
    /* 2^62 = 4611686018427387904 */
    struct t_expect px = {NULL, 4, -1, NULL, 4611686018427386904, 4611686018427387904, 1};
    struct t_expect ex = {NULL, 4, 3, "PX", 4611686018427386000, 4611686018427387000, 1};
    struct t_expect pct = {NULL, 4, -1, NULL, 1000000, 42949673950000, 1};
    struct t_expect sat = {NULL, 4, -1, NULL, 1000000000000, 1000000001000, 1};

    (void)state;
    /* every value we may produce is accepted by any server clock before
     * the year 146 million */
    assert_true(JITTER_TTL_MAX_MS + UINT64_C(253402300800000) <
                (uint64_t)LLONG_MAX); /* 2^62 ms + year 10000 */
    o.max_ms = 1000;
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)(JITTER_TTL_MAX_MS - 1000));
    t_jittered(&o, T_ARGS("SET", "k", "v", "PX", ttl), &px);
    snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)(JITTER_TTL_MAX_MS - 999));
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", ttl));
    t_jittered(&o, T_ARGS("SET", "k", "v", "EX", "4611686018427386"), &ex);
    t_untouched(&o, T_ARGS("SET", "k", "v", "EX", "4611686018427387"));
    /* an extreme percent saturates instead of wrapping */
    o.percent = UINT_MAX;
    o.max_ms = UINT64_MAX;
    t_jittered(&o, T_ARGS("SET", "k", "v", "PX", "1000000"), &pct);
    /* 1e12 ms * UINT_MAX / 100 does not fit in 64 bits: max_ms still caps */
    o.max_ms = 1000;
    t_jittered(&o, T_ARGS("SET", "k", "v", "PX", "1000000000000"), &sat);
    o.max_ms = UINT64_MAX;
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", "2305843009213693952"));
    /* (2^32 + 1) * UINT_MAX is UINT64_MAX exactly; the remainder's share
     * must saturate too, not wrap to a small span */
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", "429496729750"));
    t_untouched(&o, T_ARGS("SET", "k", "v", "PX", "9223372036854775806"));
}

/* ---- encoding ------------------------------------------------------------ */

/* Exact bytes, sizing with out NULL, and no write into a short buffer. */
static void
test_encode_exact(void **state)
{
    static const char want[] = "*4\r\n$6\r\nPSETEX\r\n$1\r\nk\r\n"
                               "$6\r\n123456\r\n$0\r\n\r\n";
    static const char plain[] = "*4\r\n$5\r\nSETEX\r\n$1\r\nk\r\n"
                                "$3\r\n123\r\n$0\r\n\r\n";
    struct t_req rq = t_req(T_ARGS("SETEX", "k", "123", ""));
    struct jitter_result res;
    char buf[T_BUF];
    size_t n = sizeof(want) - 1;

    (void)state;
    memset(&res, 0, sizeof(res));
    res.rewritten = true;
    res.cmd_name = "PSETEX";
    res.ttl_index = 2;
    res.unit_index = -1;
    memcpy(res.ttl_buf, "123456", 7);
    res.ttl_len = 6;
    assert_int_equal(jitter_encode(rq.argc, rq.argv, &res, NULL, 0), n);
    memset(buf, 'x', sizeof(buf));
    assert_int_equal(jitter_encode(rq.argc, rq.argv, &res, buf, n - 1), n);
    assert_int_equal(buf[0], 'x');
    assert_int_equal(jitter_encode(rq.argc, rq.argv, &res, buf, n), n);
    assert_memory_equal(buf, want, n);
    assert_int_equal(buf[n], 'x');
    /* no result, or one not rewritten: the request as given */
    n = sizeof(plain) - 1;
    assert_int_equal(jitter_encode(rq.argc, rq.argv, NULL, buf, sizeof(buf)), n);
    assert_memory_equal(buf, plain, n);
    res.rewritten = false;
    assert_int_equal(jitter_encode(rq.argc, rq.argv, &res, buf, sizeof(buf)), n);
    assert_memory_equal(buf, plain, n);
    assert_int_equal(jitter_encode(0, NULL, NULL, buf, sizeof(buf)), 4);
    assert_memory_equal(buf, "*0\r\n", 4);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rng_reference_vector),
        cmocka_unit_test(test_rng_seed_fixed),
        cmocka_unit_test(test_rng_seed_random),
        cmocka_unit_test(test_rng_below_bounds),
        cmocka_unit_test(test_rng_below_unbiased),
        cmocka_unit_test(test_distribution),
        cmocka_unit_test(test_set_ex),
        cmocka_unit_test(test_set_px),
        cmocka_unit_test(test_set_option_order),
        cmocka_unit_test(test_setex_psetex),
        cmocka_unit_test(test_keep_unit),
        cmocka_unit_test(test_max_and_percent),
        cmocka_unit_test(test_disabled),
        cmocka_unit_test(test_binary_args),
        cmocka_unit_test(test_nx_untouched),
        cmocka_unit_test(test_other_forms_untouched),
        cmocka_unit_test(test_min_ttl),
        cmocka_unit_test(test_exclude),
        cmocka_unit_test(test_expire_opt_in),
        cmocka_unit_test(test_absolute_opt_in),
        cmocka_unit_test(test_bad_ttl_untouched),
        cmocka_unit_test(test_invalid_set_untouched),
        cmocka_unit_test(test_invalid_expire_untouched),
        cmocka_unit_test(test_nul_in_option_untouched),
        cmocka_unit_test(test_overflow_rejected_untouched),
        cmocka_unit_test(test_overflow_bound),
        cmocka_unit_test(test_encode_exact),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
