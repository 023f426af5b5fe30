/*
 * bloom_bench: ns per add and per lookup (present and absent keys), measured
 * false positive rate and bits per key of the Bloom filter, printed as a
 * markdown table. Single thread; keys are 16-byte strings "key:%012llu".
 *
 * Build and run (from the repository root):
 *   mkdir -p build && cc -std=c11 -D_GNU_SOURCE -O2 -I. \
 *       bench/bloom_bench.c bloom/bloom.c -lxxhash -lm -pthread \
 *       -o build/bloom_bench && ./build/bloom_bench [keys] [fp_rate]
 * Defaults: 10000000 keys at fp_rate 0.01. Each figure is the best of
 * BENCH_REPS runs (a fresh filter each run): the machine is shared, and the
 * best run is the one least disturbed. Lookups are timed with the scalar
 * and with the AVX2 path (bloom_set_simd()).
 */
#include "bloom/bloom.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* Bytes per generated key (no NUL stored). */
#define BENCH_KEY_LEN 16u

/* Runs per scenario; the best (fastest) of them is reported. */
#define BENCH_REPS 3

/* One benchmarked configuration. */
struct bench_case {
    const char *name; /* row label */
    bool scaling;     /* bloom_new() scaling flag */
    uint64_t divisor; /* initial capacity = keys / divisor */
};

/* Best figures of one configuration over BENCH_REPS runs. */
struct bench_result {
    double add_ns;     /* ns per bloom_add(), new keys */
    double hit_ns[2];  /* ns per bloom_maybe_contains(), present keys;
                          [0] scalar, [1] AVX2 (bloom_set_simd()) */
    double miss_ns[2]; /* the same for absent keys */
    bool simd;         /* the AVX2 path exists on this CPU */
    double fpr;        /* measured false positive rate on absent keys */
    double bits_key;   /* bit-array bits per inserted key */
    double bits_cap;   /* bit-array bits per key of capacity */
    uint32_t filters;  /* sub-filters at the end */
};

static uint64_t
bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* n keys of BENCH_KEY_LEN bytes "<p>:%012llu" with 3-char prefix p. */
static char *
bench_keys(const char *prefix, uint64_t n)
{
    char *keys = malloc(n * BENCH_KEY_LEN + 1);
    if (keys == NULL) {
        fprintf(stderr, "bloom_bench: out of memory\n");
        exit(1);
    }
    for (uint64_t i = 0; i < n; i++)
        snprintf(keys + i * BENCH_KEY_LEN, BENCH_KEY_LEN + 1, "%.3s:%012llu", prefix,
                 (unsigned long long)(i % 1000000000000u));
    return keys;
}

/* ns per lookup of n keys; *found gets how many were "maybe present". */
static double
bench_lookup(const struct bloom *b, const char *keys, uint64_t n, uint64_t *found)
{
    uint64_t hits = 0, t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        hits += bloom_maybe_contains(b, keys + i * BENCH_KEY_LEN, BENCH_KEY_LEN);
    uint64_t t1 = bench_now_ns();
    *found = hits;
    return (double)(t1 - t0) / (double)n;
}

static void
bench_min(double *best, double v)
{
    if (*best == 0.0 || v < *best)
        *best = v;
}

static int
bench_run(const struct bench_case *c, const char *present, const char *absent, uint64_t n,
          double p, struct bench_result *r)
{
    char err[256];

    memset(r, 0, sizeof(*r));
    for (int rep = 0; rep < BENCH_REPS; rep++) {
        struct bloom *b = bloom_new(n / c->divisor, p, c->scaling, err, sizeof(err));
        if (b == NULL) {
            fprintf(stderr, "bloom_bench: %s\n", err);
            return -1;
        }
        uint64_t t0 = bench_now_ns(), found;
        for (uint64_t i = 0; i < n; i++)
            bloom_add(b, present + i * BENCH_KEY_LEN, BENCH_KEY_LEN);
        bench_min(&r->add_ns, (double)(bench_now_ns() - t0) / (double)n);
        for (int simd = 0; simd < 2; simd++) {
            r->simd = bloom_set_simd(b, simd);
            bench_min(&r->hit_ns[simd], bench_lookup(b, present, n, &found));
            if (found != n) {
                fprintf(stderr, "bloom_bench: %llu false negatives\n",
                        (unsigned long long)(n - found));
                return -1;
            }
            bench_min(&r->miss_ns[simd], bench_lookup(b, absent, n, &found));
            r->fpr = (double)found / (double)n;
        }
        r->bits_cap = bloom_bits_per_key(b);
        r->bits_key = r->bits_cap * (double)bloom_capacity(b) / (double)n;
        r->filters = bloom_filters(b);
        bloom_free(b);
    }
    return 0;
}

/*
 * Time bloom_estimated_fpr(), bloom_save() and bloom_load() of a
 * non-scaling filter holding the n present keys; the file goes to a fresh
 * directory under /tmp, removed afterwards.
 */
static int
bench_io(const char *present, uint64_t n, double p)
{
    char dir[] = "/tmp/bloom_bench.XXXXXX", path[64], err[256];
    struct bloom *b = bloom_new(n, p, false, err, sizeof(err));

    if (b == NULL || mkdtemp(dir) == NULL) {
        fprintf(stderr, "bloom_bench: %s\n", b == NULL ? err : "mkdtemp");
        return -1;
    }
    snprintf(path, sizeof(path), "%s/f.bloom", dir);
    for (uint64_t i = 0; i < n; i++)
        bloom_add(b, present + i * BENCH_KEY_LEN, BENCH_KEY_LEN);
    uint64_t t0 = bench_now_ns();
    double est = bloom_estimated_fpr(b);
    uint64_t t1 = bench_now_ns();
    int rc = bloom_save(b, path, err, sizeof(err));
    uint64_t t2 = bench_now_ns();
    struct bloom *c = rc == 0 ? bloom_load(path, err, sizeof(err)) : NULL;
    uint64_t t3 = bench_now_ns();
    if (c == NULL)
        fprintf(stderr, "bloom_bench: %s\n", err);
    else
        printf("\nnon-scaling, %.1f MB: bloom_estimated_fpr %.1f ms (%.5f), "
               "bloom_save %.1f ms (with fsync), bloom_load %.1f ms\n",
               (double)bloom_memory_bytes(b) / 1e6, (double)(t1 - t0) / 1e6, est,
               (double)(t2 - t1) / 1e6, (double)(t3 - t2) / 1e6);
    unlink(path);
    rmdir(dir);
    bloom_free(b);
    bloom_free(c);
    return c == NULL ? -1 : 0;
}

/* ns per bloom_hash() of n keys: the share of hashing in every figure. */
static double
bench_hash(const char *keys, uint64_t n)
{
    uint64_t sink = 0, t0 = bench_now_ns();
    for (uint64_t i = 0; i < n; i++)
        sink ^= bloom_hash(keys + i * BENCH_KEY_LEN, BENCH_KEY_LEN);
    double ns = (double)(bench_now_ns() - t0) / (double)n;
    if (sink == 42)
        printf("(sink)\n");
    return ns;
}

int
main(int argc, char **argv)
{
    uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 10) : 10000000u;
    double p = argc > 2 ? strtod(argv[2], NULL) : 0.01;
    const struct bench_case cases[] = {
        {"non-scaling, capacity = keys", false, 1},
        {"scaling, capacity = keys", true, 1},
        {"scaling, capacity = keys / 10", true, 10},
    };

    if (n < 10) {
        fprintf(stderr, "usage: bloom_bench [keys >= 10] [fp_rate]\n");
        return 2;
    }
    char *present = bench_keys("key", n), *absent = bench_keys("abs", n);
    printf("%llu keys of %u bytes, fp_rate %g, best of %d runs; "
           "bloom_hash alone: %.1f ns/key\n\n",
           (unsigned long long)n, BENCH_KEY_LEN, p, BENCH_REPS, bench_hash(present, n));
    printf("| filter | sub-filters | add ns | lookup ns present, scalar | "
           "absent, scalar | present, AVX2 | absent, AVX2 | measured fpr | "
           "bits/key (inserted) | bits/key (capacity) |\n");
    printf("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
           "---: |\n");
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct bench_result r;
        if (bench_run(&cases[i], present, absent, n, p, &r) != 0)
            return 1;
        printf("| %s | %u | %.1f | %.1f | %.1f | ", cases[i].name, r.filters, r.add_ns,
               r.hit_ns[0], r.miss_ns[0]);
        if (r.simd)
            printf("%.1f | %.1f | ", r.hit_ns[1], r.miss_ns[1]);
        else
            printf("n/a | n/a | ");
        printf("%.5f | %.2f | %.2f |\n", r.fpr, r.bits_key, r.bits_cap);
    }
    int rc = bench_io(present, n, p);
    free(present);
    free(absent);
    return rc == 0 ? 0 : 1;
}
