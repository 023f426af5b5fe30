/*
 * test_bloom: the Bloom filter as its users see it: no false negatives, the
 * promised false positive rate and size, growth, save/load and its refusals,
 * and adds from several threads.
 */
#include "bloom/bloom.h"

#include <dirent.h>
#include <math.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

/* Keys per million-key test, and absent keys probed for the rate. */
#define MILLION 1000000u

/* Write key "<prefix><i>" into buf (at least 48 bytes); returns its length. */
static size_t
key_of(char *buf, const char *prefix, uint64_t i)
{
    return (size_t)snprintf(buf, 48, "%s%llu", prefix, (unsigned long long)i);
}

static void
add_keys(struct bloom *b, const char *prefix, uint64_t from, uint64_t to)
{
    char buf[48];
    for (uint64_t i = from; i < to; i++)
        bloom_add(b, buf, key_of(buf, prefix, i));
}

/* Number of keys prefix0..prefix(n-1) the filter does NOT find. */
static uint64_t
count_missing(const struct bloom *b, const char *prefix, uint64_t n)
{
    char buf[48];
    uint64_t missing = 0;
    for (uint64_t i = 0; i < n; i++)
        missing += !bloom_maybe_contains(b, buf, key_of(buf, prefix, i));
    return missing;
}

/* Number of keys prefix0..prefix(n-1) the filter (falsely) finds. */
static uint64_t
count_found(const struct bloom *b, const char *prefix, uint64_t n)
{
    return n - count_missing(b, prefix, n);
}

/* ---- parameters and sizing ---------------------------------------------- */

static void
test_bad_params_refused(void **state)
{
    char err[128];
    const double bad_rates[] = {0.0, -0.01, 0.51, 1.0, 2.0, 1e-10, NAN};

    (void)state;
    assert_null(bloom_new(0, 0.01, false, err, sizeof(err)));
    assert_non_null(strstr(err, "capacity must be at least 1"));
    for (size_t i = 0; i < sizeof(bad_rates) / sizeof(bad_rates[0]); i++) {
        err[0] = '\0';
        assert_null(bloom_new(1000, bad_rates[i], true, err, sizeof(err)));
        assert_non_null(strstr(err, "fp_rate"));
        assert_non_null(strstr(err, "out of range"));
    }
    assert_null(bloom_new(UINT64_MAX / 2, 0.01, false, err, sizeof(err)));
    assert_non_null(strstr(err, "too large"));
    /* No error buffer: still refused, nothing written. */
    assert_null(bloom_new(0, 0.01, false, NULL, 0));
    /* A tiny error buffer is truncated, still NUL-terminated. */
    char small[8];
    assert_null(bloom_new(0, 0.01, false, small, sizeof(small)));
    assert_int_equal(strlen(small), sizeof(small) - 1);
}

/* Bits per key follow the SBBF table of Parquet BloomFilter.md (bloom.h). */
static void
test_bits_per_key_follow_sbbf_table(void **state)
{
    const double rates[] = {0.1, 0.01, 0.001, 0.0001};
    const double bits[] = {5.99, 10.53, 16.89, 26.34};

    (void)state;
    for (size_t i = 0; i < 4; i++) {
        struct bloom *b = bloom_new(MILLION, rates[i], false, NULL, 0);
        assert_non_null(b);
        assert_true(fabs(bloom_bits_per_key(b) - bits[i]) < 0.01);
        assert_int_equal(bloom_capacity(b), MILLION);
        assert_int_equal(bloom_filters(b), 1);
        /* memory: the bit array (bits per key / 8 per key) plus a header */
        double want = bits[i] / 8.0 * MILLION;
        assert_true(fabs((double)bloom_memory_bytes(b) - want) < 0.01 * want);
        bloom_free(b);
    }
    /* The smallest filter is one block. */
    struct bloom *one = bloom_new(1, 0.01, false, NULL, 0);
    assert_non_null(one);
    assert_true(bloom_bits_per_key(one) == 256.0);
    bloom_free(one);
}

/* ---- false negatives and false positives -------------------------------- */

/* Fill a non-scaling filter to capacity; check both error kinds. */
static void
check_rate(double p)
{
    struct bloom *b = bloom_new(MILLION, p, false, NULL, 0);

    assert_non_null(b);
    add_keys(b, "key:", 0, MILLION);
    assert_int_equal(count_missing(b, "key:", MILLION), 0);
    uint64_t fp = count_found(b, "absent:", MILLION);
    double rate = (double)fp / MILLION;
    print_message("p=%g: measured fpr %.5f (%llu/%u), estimated %.5f\n", p, rate,
                  (unsigned long long)fp, MILLION, bloom_estimated_fpr(b));
    assert_true(rate <= 1.25 * p);
    /* The scalar and the SIMD lookup (where the CPU has one) agree. */
    bool simd = bloom_set_simd(b, !bloom_set_simd(b, true));
    assert_int_equal(count_found(b, "absent:", MILLION), fp);
    assert_int_equal(count_missing(b, "key:", MILLION), 0);
    print_message("p=%g: same answers with %s lookups\n", p, simd ? "AVX2" : "scalar");
    /* The fill-based estimate agrees with what was measured. */
    assert_true(fabs(bloom_estimated_fpr(b) - p) < 0.15 * p);
    /* Nearly every key was new; false positives at add time are not. */
    assert_true(bloom_count(b) <= MILLION);
    assert_true(bloom_count(b) >= MILLION - 2 * fp);
    bloom_free(b);
}

static void
test_rate_p10(void **state)
{
    (void)state;
    check_rate(0.1);
}

static void
test_rate_p1(void **state)
{
    (void)state;
    check_rate(0.01);
}

static void
test_rate_p01(void **state)
{
    (void)state;
    check_rate(0.001);
}

static void
test_empty_filter_finds_nothing(void **state)
{
    struct bloom *b = bloom_new(1000, 0.01, true, NULL, 0);

    (void)state;
    assert_int_equal(count_found(b, "any:", 100000), 0);
    assert_true(bloom_maybe_contains(b, "", 0) == false);
    assert_true(bloom_estimated_fpr(b) == 0.0);
    assert_int_equal(bloom_count(b), 0);
    assert_false(bloom_saturated(b));
    bloom_free(b);
    bloom_free(NULL);
}

static void
test_add_reports_new_keys(void **state)
{
    struct bloom *b = bloom_new(1000, 0.01, false, NULL, 0);

    (void)state;
    assert_true(bloom_add(b, "user:1", 6));
    assert_false(bloom_add(b, "user:1", 6));
    assert_true(bloom_add(b, "", 0));
    assert_false(bloom_add(b, "", 0));
    /* Binary keys with NUL bytes are keys of their own. */
    assert_true(bloom_add(b, "a\0b", 3));
    assert_true(bloom_maybe_contains(b, "a\0b", 3));
    assert_int_equal(bloom_count(b), 3);
    bloom_free(b);
}

/* Hash once, add to two filters (rebuild); plain lookups then find it. */
static void
test_hash_once_add_twice(void **state)
{
    struct bloom *a = bloom_new(1000, 0.01, true, NULL, 0);
    struct bloom *b = bloom_new(50000, 0.001, false, NULL, 0);
    char buf[48];

    (void)state;
    assert_int_equal(bloom_hash("k", 1), bloom_hash("k", 1));
    assert_int_not_equal(bloom_hash("k", 1), bloom_hash("l", 1));
    for (uint64_t i = 0; i < 5000; i++) {
        uint64_t h = bloom_hash(buf, key_of(buf, "h:", i));
        bloom_add_hash(a, h);
        bloom_add_hash(b, h);
    }
    assert_int_equal(count_missing(a, "h:", 5000), 0);
    assert_int_equal(count_missing(b, "h:", 5000), 0);
    assert_true(bloom_maybe_contains_hash(b, bloom_hash("h:42", 4)));
    bloom_free(a);
    bloom_free(b);
}

/* ---- growth and saturation ---------------------------------------------- */

static void
test_scaling_grows_keeps_rate(void **state)
{
    const uint64_t cap = 250000;
    struct bloom *b = bloom_new(cap, 0.01, true, NULL, 0);

    (void)state;
    add_keys(b, "key:", 0, 4 * cap);
    assert_int_equal(count_missing(b, "key:", 4 * cap), 0);
    /* cap + 2 cap fill the first two; the third (4 cap) holds the rest */
    assert_int_equal(bloom_filters(b), 3);
    assert_int_equal(bloom_capacity(b), 7 * cap);
    assert_false(bloom_saturated(b));
    uint64_t fp = count_found(b, "absent:", MILLION);
    print_message("scaling 4x: measured fpr %.5f, estimated %.5f, %.2f "
                  "bits/key of capacity\n",
                  (double)fp / MILLION, bloom_estimated_fpr(b), bloom_bits_per_key(b));
    assert_true((double)fp / MILLION <= 1.25 * 0.01);
    assert_true(bloom_count(b) > 4 * cap - 4 * cap / 100);
    /* Re-adding known keys changes nothing. */
    uint64_t count = bloom_count(b);
    add_keys(b, "key:", 0, cap);
    assert_int_equal(bloom_count(b), count);
    assert_int_equal(bloom_filters(b), 3);
    bloom_free(b);
}

static void
test_nonscaling_saturates(void **state)
{
    struct bloom *b = bloom_new(1000, 0.01, false, NULL, 0);

    (void)state;
    add_keys(b, "key:", 0, 900);
    assert_false(bloom_saturated(b));
    add_keys(b, "key:", 900, 3000);
    assert_true(bloom_saturated(b));
    assert_int_equal(bloom_filters(b), 1);
    assert_int_equal(bloom_capacity(b), 1000);
    assert_int_equal(count_missing(b, "key:", 3000), 0);
    /* Overfilled 3x, the rate is well above 1% and the estimate says so. */
    assert_true(bloom_estimated_fpr(b) > 0.1);
    bloom_free(b);
}

static void
test_clear_forgets_everything(void **state)
{
    struct bloom *b = bloom_new(1000, 0.01, true, NULL, 0);

    (void)state;
    add_keys(b, "key:", 0, 10000);
    assert_true(bloom_filters(b) > 1);
    bloom_clear(b);
    assert_int_equal(bloom_count(b), 0);
    assert_int_equal(bloom_filters(b), 1);
    assert_int_equal(bloom_capacity(b), 1000);
    assert_int_equal(count_found(b, "key:", 10000), 0);
    /* It grows again as a new filter would. */
    add_keys(b, "new:", 0, 2500);
    assert_int_equal(count_missing(b, "new:", 2500), 0);
    assert_int_equal(bloom_filters(b), 2);
    bloom_free(b);
}

/* ---- save and load ------------------------------------------------------ */

/* A fresh temporary directory per test (cmocka state), removed after. */
static int
dir_setup(void **state)
{
    char *dir = strdup("/tmp/test_bloom.XXXXXX");
    if (dir == NULL || mkdtemp(dir) == NULL)
        return -1;
    *state = dir;
    return 0;
}

/* Number of entries of dir whose name contains part. */
static int
dir_count(const char *dir, const char *part)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    int n = 0;

    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strstr(e->d_name, part) != NULL;
    closedir(d);
    return n;
}

static int
dir_teardown(void **state)
{
    char *dir = *state;
    DIR *d = opendir(dir);
    struct dirent *e;
    char path[512];

    while (d != NULL && (e = readdir(d)) != NULL) {
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        if (e->d_name[0] != '.')
            unlink(path);
    }
    if (d != NULL)
        closedir(d);
    rmdir(dir);
    free(dir);
    return 0;
}

static void
test_save_load_round_trip(void **state)
{
    char path[512], err[256];
    struct bloom *b = bloom_new(20000, 0.01, true, NULL, 0);

    snprintf(path, sizeof(path), "%s/filter.bloom", (char *)*state);
    add_keys(b, "key:", 0, 50000);
    assert_int_equal(bloom_filters(b), 2);
    assert_int_equal(bloom_save(b, path, err, sizeof(err)), BLOOM_OK);
    /* saving again replaces the file and leaves no temporary behind */
    assert_int_equal(bloom_save(b, path, err, sizeof(err)), BLOOM_OK);
    assert_int_equal(dir_count(*state, ".tmp."), 0);
    struct bloom *c = bloom_load(path, err, sizeof(err));
    assert_non_null(c);
    assert_int_equal(bloom_count(c), bloom_count(b));
    assert_int_equal(bloom_capacity(c), bloom_capacity(b));
    assert_int_equal(bloom_filters(c), bloom_filters(b));
    assert_int_equal(bloom_memory_bytes(c), bloom_memory_bytes(b));
    assert_true(bloom_estimated_fpr(c) == bloom_estimated_fpr(b));
    char buf[48];
    for (uint64_t i = 0; i < 200000; i++) {
        size_t len = key_of(buf, i % 2 ? "key:" : "other:", i / 2);
        assert_true(bloom_maybe_contains(c, buf, len) == bloom_maybe_contains(b, buf, len));
    }
    /* The loaded filter keeps growing like the original. */
    add_keys(c, "more:", 0, 100000);
    assert_int_equal(bloom_filters(c), 4);
    assert_int_equal(count_missing(c, "key:", 50000), 0);
    assert_int_equal(count_missing(c, "more:", 100000), 0);
    bloom_free(b);
    bloom_free(c);
}

/* A saturated non-scaling filter stays one saturated sub-filter. */
static void
test_save_load_nonscaling(void **state)
{
    char path[512], err[256];
    struct bloom *b = bloom_new(5000, 0.001, false, NULL, 0);

    snprintf(path, sizeof(path), "%s/flat.bloom", (char *)*state);
    add_keys(b, "key:", 0, 8000);
    assert_true(bloom_saturated(b));
    assert_int_equal(bloom_save(b, path, err, sizeof(err)), BLOOM_OK);
    struct bloom *c = bloom_load(path, err, sizeof(err));
    assert_non_null(c);
    assert_true(bloom_saturated(c));
    assert_int_equal(bloom_filters(c), 1);
    assert_int_equal(bloom_capacity(c), 5000);
    assert_int_equal(bloom_count(c), bloom_count(b));
    assert_int_equal(count_missing(c, "key:", 8000), 0);
    assert_int_equal(count_found(c, "other:", 100000), count_found(b, "other:", 100000));
    add_keys(c, "more:", 0, 5000);
    assert_int_equal(bloom_filters(c), 1);
    bloom_free(b);
    bloom_free(c);
}

/* Save a small filter to path and read the file back into *data. */
static size_t
save_small(const char *path, unsigned char **data)
{
    struct bloom *b = bloom_new(100, 0.01, true, NULL, 0);
    char err[256];

    add_keys(b, "key:", 0, 250);
    assert_int_equal(bloom_filters(b), 2);
    assert_int_equal(bloom_save(b, path, err, sizeof(err)), BLOOM_OK);
    bloom_free(b);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    *data = malloc(1 << 16);
    size_t len = fread(*data, 1, 1 << 16, f);
    fclose(f);
    assert_true(len > 100 && len < (1 << 16));
    return len;
}

/* Write len bytes of data to path, load it and expect a refusal naming why. */
static void
expect_refused(const char *path, const unsigned char *data, size_t len, const char *why)
{
    char err[256] = "";
    FILE *f = fopen(path, "wb");

    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, len, f), len);
    fclose(f);
    assert_null(bloom_load(path, err, sizeof(err)));
    if (why != NULL && strstr(err, why) == NULL)
        fail_msg("expected \"%s\" in \"%s\"", why, err);
    assert_non_null(strstr(err, path));
}

static void
test_load_refuses_bad_files(void **state)
{
    char path[512], bad[512], err[256];
    unsigned char *data;

    snprintf(path, sizeof(path), "%s/good.bloom", (char *)*state);
    snprintf(bad, sizeof(bad), "%s/bad.bloom", (char *)*state);
    size_t len = save_small(path, &data);
    unsigned char *copy = malloc(len + 1);
    struct bloom *ok = bloom_load(path, err, sizeof(err));
    assert_non_null(ok);
    bloom_free(ok);

    expect_refused(bad, data, len - 1, "truncated");
    expect_refused(bad, data, 20, "truncated");
    expect_refused(bad, data, 0, "truncated");
    memcpy(copy, data, len);
    copy[len] = 0;
    expect_refused(bad, copy, len + 1, "corrupted");
    copy[0] = 'X';
    expect_refused(bad, copy, len, "bad magic");
    memcpy(copy, data, len);
    copy[8] = 2; /* version 2 */
    expect_refused(bad, copy, len, "unsupported version 2");
    memcpy(copy, data, len);
    copy[26] ^= 0x01; /* capacity */
    expect_refused(bad, copy, len, "header checksum mismatch");
    memcpy(copy, data, len);
    copy[len - 40] ^= 0x10; /* a payload word */
    expect_refused(bad, copy, len, "checksum mismatch");
    /* Every single flipped bit and every truncation is refused. */
    for (size_t i = 0; i < len; i++) {
        for (unsigned bit = 0; bit < 8; bit++) {
            memcpy(copy, data, len);
            copy[i] ^= (unsigned char)(1u << bit);
            expect_refused(bad, copy, len, NULL);
        }
        expect_refused(bad, data, i, NULL);
    }
    snprintf(bad, sizeof(bad), "%s/missing.bloom", (char *)*state);
    assert_null(bloom_load(bad, err, sizeof(err)));
    assert_non_null(strstr(err, "No such file"));
    free(copy);
    free(data);
}

static void
test_save_error_leaves_nothing(void **state)
{
    char path[512], err[256] = "";
    struct bloom *b = bloom_new(1000, 0.01, false, NULL, 0);

    snprintf(path, sizeof(path), "%s/no/such/dir/f.bloom", (char *)*state);
    assert_int_equal(bloom_save(b, path, err, sizeof(err)), BLOOM_ERR);
    assert_non_null(strstr(err, "bloom save"));
    assert_non_null(strstr(err, "No such file"));
    assert_int_equal(dir_count(*state, "bloom"), 0);
    bloom_free(b);
}

/* ---- threads ------------------------------------------------------------ */

#define THREAD_KEYS 200000u
#define PRE_KEYS 10000u

/* One writer or reader thread of test_concurrent_adds. */
struct worker {
    struct bloom *b;    /* borrowed; shared filter */
    const char *prefix; /* key prefix of a writer; NULL for the reader */
    _Atomic int *done;  /* borrowed; writers finished */
    uint64_t missing;   /* reader: pre-added keys not found, any pass */
    uint64_t passes;    /* reader: full passes over the pre-added keys */
};

static void *
worker_run(void *arg)
{
    struct worker *w = arg;

    if (w->prefix != NULL) {
        add_keys(w->b, w->prefix, 0, THREAD_KEYS);
        atomic_fetch_add(w->done, 1);
        return NULL;
    }
    do {
        w->missing += count_missing(w->b, "pre:", PRE_KEYS);
        w->passes++;
    } while (atomic_load(w->done) < 2);
    return NULL;
}

/* Two writers grow a small scaling filter while a reader checks old keys. */
static void
test_concurrent_adds(void **state)
{
    struct bloom *b = bloom_new(1000, 0.01, true, NULL, 0);
    _Atomic int done = 0;
    struct worker w[3] = {{b, "t0:", &done, 0, 0},
                          {b, "t1:", &done, 0, 0},
                          {b, NULL, &done, 0, 0}};
    pthread_t tid[3];

    (void)state;
    add_keys(b, "pre:", 0, PRE_KEYS);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_create(&tid[i], NULL, worker_run, &w[i]), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(pthread_join(tid[i], NULL), 0);
    assert_int_equal(count_missing(b, "t0:", THREAD_KEYS), 0);
    assert_int_equal(count_missing(b, "t1:", THREAD_KEYS), 0);
    assert_int_equal(count_missing(b, "pre:", PRE_KEYS), 0);
    assert_int_equal(w[2].missing, 0);
    assert_true(w[2].passes >= 1);
    /* 410k keys from 1000: filters of 1k, 2k, ... 256k: 9 of them */
    assert_int_equal(bloom_filters(b), 9);
    uint64_t n = 2 * THREAD_KEYS + PRE_KEYS;
    assert_true(bloom_count(b) <= n);
    assert_true(bloom_count(b) >= n - n / 100);
    bloom_free(b);
}

/* Rounds, and keys per thread per round, of test_concurrent_same_words. */
#define RACE_ROUNDS 2000u
#define RACE_KEYS 1000u

/* One of two writers of test_concurrent_same_words. */
struct racer {
    struct bloom *b;            /* borrowed; shared small filter */
    pthread_barrier_t *barrier; /* borrowed; main and both racers */
    unsigned id;                /* 0 or 1, part of its keys */
    uint64_t hashes[RACE_KEYS]; /* this round's key hashes */
};

static void *
racer_run(void *arg)
{
    struct racer *r = arg;
    char buf[48];

    for (unsigned round = 0; round < RACE_ROUNDS; round++) {
        for (unsigned i = 0; i < RACE_KEYS; i++) {
            int len = snprintf(buf, sizeof(buf), "r%u:%u:%u", r->id, round, i);
            r->hashes[i] = bloom_hash(buf, (size_t)len);
        }
        pthread_barrier_wait(r->barrier); /* start together */
        for (unsigned i = 0; i < RACE_KEYS; i++)
            bloom_add_hash(r->b, r->hashes[i]);
        pthread_barrier_wait(r->barrier); /* main checks and clears */
        pthread_barrier_wait(r->barrier);
    }
    return NULL;
}

/*
 * Two threads add at the same moment into one small filter (41 blocks), so
 * they often set bits of the same word at once: every bit must survive.
 */
static void
test_concurrent_same_words(void **state)
{
    struct bloom *b = bloom_new(RACE_KEYS, 0.01, false, NULL, 0);
    pthread_barrier_t barrier;
    static struct racer r[2];
    pthread_t tid[2];
    uint64_t missing = 0;

    (void)state;
    assert_int_equal(pthread_barrier_init(&barrier, NULL, 3), 0);
    for (unsigned t = 0; t < 2; t++) {
        r[t].b = b;
        r[t].barrier = &barrier;
        r[t].id = t;
        assert_int_equal(pthread_create(&tid[t], NULL, racer_run, &r[t]), 0);
    }
    for (unsigned round = 0; round < RACE_ROUNDS; round++) {
        pthread_barrier_wait(&barrier);
        pthread_barrier_wait(&barrier);
        for (unsigned t = 0; t < 2; t++)
            for (unsigned i = 0; i < RACE_KEYS; i++)
                missing += !bloom_maybe_contains_hash(b, r[t].hashes[i]);
        bloom_clear(b);
        pthread_barrier_wait(&barrier);
    }
    for (unsigned t = 0; t < 2; t++)
        assert_int_equal(pthread_join(tid[t], NULL), 0);
    pthread_barrier_destroy(&barrier);
    assert_int_equal(missing, 0);
    bloom_free(b);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bad_params_refused),
        cmocka_unit_test(test_bits_per_key_follow_sbbf_table),
        cmocka_unit_test(test_rate_p10),
        cmocka_unit_test(test_rate_p1),
        cmocka_unit_test(test_rate_p01),
        cmocka_unit_test(test_empty_filter_finds_nothing),
        cmocka_unit_test(test_add_reports_new_keys),
        cmocka_unit_test(test_hash_once_add_twice),
        cmocka_unit_test(test_scaling_grows_keeps_rate),
        cmocka_unit_test(test_nonscaling_saturates),
        cmocka_unit_test(test_clear_forgets_everything),
        cmocka_unit_test_setup_teardown(test_save_load_round_trip, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_save_load_nonscaling, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_load_refuses_bad_files, dir_setup, dir_teardown),
        cmocka_unit_test_setup_teardown(test_save_error_leaves_nothing, dir_setup, dir_teardown),
        cmocka_unit_test(test_concurrent_adds),
        cmocka_unit_test(test_concurrent_same_words),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
