/*
 * Unit tests of bench/loadgen's pure parts: latency quantiles, the sum of
 * the workers, the timeline and report lines bench/run.sh reads, INFO
 * commandstats sums, and the command line (rejections run in a child).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "bench/loadgen.h"

#define T_MAX_ARGS 24
#define T_OUT_MAX 4096
#define T_NS_PER_S UINT64_C(1000000000)

/* NULL-terminated list of C-string arguments (argv[0] not included). */
#define T_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* A command line loadgen must refuse, and what it must say. */
struct t_reject {
    const char *const *args; /* borrowed: the arguments after argv[0] */
    const char *says;        /* a substring of its stderr */
};

/* splitmix64, for reproducible test data. */
static uint64_t
t_rand(uint64_t *s)
{
    uint64_t z = (*s += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

/* A zeroed run with its LG_TICKS_MAX ticks; free with t_lg_free(). */
static struct lg *
t_lg_new(void)
{
    struct lg *lg = calloc(1, sizeof(*lg));

    assert_non_null(lg);
    lg->ticks = calloc(LG_TICKS_MAX, sizeof(*lg->ticks));
    assert_non_null(lg->ticks);
    lg->o.threads = 1;
    return lg;
}

static void
t_lg_free(struct lg *lg)
{
    free(lg->ticks);
    free(lg);
}

/* lg_report()'s text, NUL-terminated; the caller frees it. */
static char *
t_report(const struct lg *lg, int64_t before, int64_t after, double cpu, double cpu_max)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    lg_report(f, lg, before, after, cpu, cpu_max);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* The line of text starting with prefix, without its newline, into out. */
static void
t_line(const char *text, const char *prefix, char *out, size_t outlen)
{
    size_t plen = strlen(prefix);

    for (const char *p = text; *p; p = strchr(p, '\n') + 1) {
        const char *nl = strchr(p, '\n');
        size_t n = nl ? (size_t)(nl - p) : strlen(p);
        if (strncmp(p, prefix, plen) == 0) {
            assert_true(n < outlen);
            memcpy(out, p, n);
            out[n] = '\0';
            return;
        }
        if (nl == NULL) {
            break;
        }
    }
    fail_msg("no line starting with \"%s\" in:\n%s", prefix, text);
}

/* |got - want| <= want / 128: the histogram's promised precision. */
static void
t_assert_near(uint64_t got, uint64_t want)
{
    uint64_t diff = got > want ? got - want : want - got;

    if (diff > want / 128) {
        fail_msg("got %llu, want %llu within 1/128", (unsigned long long)got,
                 (unsigned long long)want);
    }
}

/* ---- histogram ---------------------------------------------------------- */

/* Uniform 1..1,000,000 ns: the percentiles the report prints are within
 * 0.8% of the exact ones, and the top one is the true maximum. */
static void
test_quantiles_uniform(void **state)
{
    struct lg_hist *h = calloc(1, sizeof(*h));

    (void)state;
    assert_non_null(h);
    for (uint64_t v = 1; v <= 1000000; v++) {
        lg_hist_add(h, v);
    }
    t_assert_near(lg_hist_quantile(h, 0.50), 500000);
    t_assert_near(lg_hist_quantile(h, 0.99), 990000);
    t_assert_near(lg_hist_quantile(h, 0.999), 999000);
    assert_int_equal(lg_hist_quantile(h, 1.0), 1000000);
    assert_int_equal(lg_hist_quantile(h, 1e-9), 1); /* the smallest */
    assert_int_equal(h->max, 1000000);
    free(h);
}

static void
test_quantile_empty_is_zero(void **state)
{
    struct lg_hist *h = calloc(1, sizeof(*h));

    (void)state;
    assert_non_null(h);
    assert_int_equal(lg_hist_quantile(h, 0.5), 0);
    assert_int_equal(lg_hist_quantile(h, 0.999), 0);
    assert_int_equal(lg_hist_quantile(h, 1.0), 0);
    free(h);
}

/* One value: every percentile reports the same number, at most the value
 * and within 1/128 of it (exact below 256 ns). */
static void
test_quantile_single_value(void **state)
{
    static const uint64_t vs[] =
        {0,         1, 255, 256, 1000, 1003, 4095, 4096, 123457, 999999999, UINT64_C(1) << 40,
         UINT64_MAX};
    static const double qs[] = {0.5, 0.99, 0.999, 1.0};
    struct lg_hist *h = malloc(sizeof(*h));

    (void)state;
    assert_non_null(h);
    for (size_t i = 0; i < sizeof(vs) / sizeof(vs[0]); i++) {
        memset(h, 0, sizeof(*h));
        lg_hist_add(h, vs[i]);
        uint64_t p50 = lg_hist_quantile(h, 0.5);
        for (size_t j = 0; j < sizeof(qs) / sizeof(qs[0]); j++) {
            assert_int_equal(lg_hist_quantile(h, qs[j]), p50);
        }
        assert_true(p50 <= vs[i]);
        t_assert_near(p50, vs[i]);
        if (vs[i] < 256) {
            assert_int_equal(p50, vs[i]);
        }
    }
    free(h);
}

/* Any value is reported within 1/128 when a larger one caps nothing: every
 * power of two and its neighbours, and random values of every magnitude. */
static void
test_bucket_precision(void **state)
{
    struct lg_hist *h = malloc(sizeof(*h));
    uint64_t rng = 42;

    (void)state;
    assert_non_null(h);
    for (unsigned k = 0; k < 64 * 4 + 2000; k++) {
        uint64_t v;
        if (k < 64 * 4) {
            uint64_t p = UINT64_C(1) << (k / 4);
            uint64_t near[4] = {p - 1, p, p + 1, p + p / 2};
            v = near[k % 4];
        } else {
            v = t_rand(&rng) >> (t_rand(&rng) % 64);
        }
        if (v == UINT64_MAX) {
            continue;
        }
        memset(h, 0, sizeof(*h));
        lg_hist_add(h, v);
        lg_hist_add(h, UINT64_MAX);
        t_assert_near(lg_hist_quantile(h, 0.5), v);
        if (v < 256) {
            assert_int_equal(lg_hist_quantile(h, 0.5), v);
        }
        t_assert_near(lg_hist_quantile(h, 1.0), UINT64_MAX);
    }
    free(h);
}

/* A heavy-tailed sample: percentiles never decrease with q and never pass
 * the largest value recorded. */
static void
test_quantile_monotonic_and_capped(void **state)
{
    struct lg_hist *h = calloc(1, sizeof(*h));
    uint64_t rng = 7, prev = 0;

    (void)state;
    assert_non_null(h);
    for (int i = 0; i < 100000; i++) {
        uint64_t r = t_rand(&rng);
        lg_hist_add(h, 20000 + (r % 1000) * (r % 1000) * (r % 7 + 1));
    }
    for (int i = 1; i <= 1000; i++) {
        uint64_t v = lg_hist_quantile(h, i / 1000.0);
        assert_true(v >= prev);
        assert_true(v <= h->max);
        prev = v;
    }
    t_assert_near(prev, h->max);
    free(h);
}

/* ---- merge -------------------------------------------------------------- */

/* Record one answered command into lg: latency lat_ns at tick k. */
static void
t_record(struct lg *lg, uint64_t lat_ns, unsigned k, uint64_t r)
{
    lg_hist_add(&lg->hist, lat_ns);
    lg->done++;
    lg->done_window += r % 10 != 0;
    lg->ticks[k].done++;
    if (r % 3 == 0) {
        lg->sets++;
        return;
    }
    lg->gets++;
    if (r % 5 == 0) {
        lg->nils++;
        lg->ticks[k].nil++;
        lg->db_loads++;
        lg->ticks[k].db_loads++;
    }
    lg->errors += r % 97 == 0;
}

/* Two workers' counts, histograms and timelines summed report exactly what
 * one recorder of everything reports. */
static void
test_merge_equals_one_recorder(void **state)
{
    struct lg *w = calloc(2, sizeof(*w)), *all = t_lg_new(), *sum = t_lg_new();
    uint64_t rng = 1;
    char *want, *got;

    (void)state;
    assert_non_null(w);
    for (int i = 0; i < 2; i++) {
        w[i].ticks = calloc(LG_TICKS_MAX, sizeof(*w[i].ticks));
        assert_non_null(w[i].ticks);
    }
    all->o.requests = 300000;
    all->o.threads = 2;
    all->o.redis_host = "127.0.0.1";
    all->o.redis_port = 6379;
    all->start_ns = 5 * T_NS_PER_S; /* worker 1 passed the barrier first */
    w[0].start_ns = 5 * T_NS_PER_S + 3000;
    w[1].start_ns = 5 * T_NS_PER_S;
    for (int i = 0; i < 300000; i++) {
        uint64_t r = t_rand(&rng);
        uint64_t lat = 50000 + r % 2000000 + (i % 2 ? 0 : 400000);
        unsigned k = (unsigned)(i / 5000); /* 6 s of ticks */
        t_record(&w[i % 2], lat, k, r >> 20);
        t_record(all, lat, k, r >> 20);
    }
    w[0].end_ns = all->start_ns + 6 * T_NS_PER_S - 777;
    w[1].end_ns = all->start_ns + 6 * T_NS_PER_S; /* and answered last */
    all->end_ns = w[1].end_ns;
    sum->o = all->o;
    lg_merge(sum, w, 2);

    assert_int_equal(sum->start_ns, all->start_ns);
    assert_int_equal(sum->end_ns, all->end_ns);
    assert_int_equal(sum->hist.total, 300000);
    assert_memory_equal(&sum->hist, &all->hist, sizeof(all->hist));
    assert_memory_equal(sum->ticks, all->ticks, LG_TICKS_MAX * sizeof(*all->ticks));
    want = t_report(all, 10, 250010, 1.2, 0.7);
    got = t_report(sum, 10, 250010, 1.2, 0.7);
    assert_string_equal(got, want);
    free(want);
    free(got);
    for (int i = 0; i < 2; i++) {
        free(w[i].ticks);
    }
    free(w);
    t_lg_free(all);
    t_lg_free(sum);
}

/* ---- timeline and report ------------------------------------------------ */

/* A burst of 300 loads over 600 ms across the 1 s mark shows as 150 + 150
 * per second, and as one peak of 300 in a 1 s window. */
static void
test_peak_counts_burst_across_second_whole(void **state)
{
    struct lg *lg = t_lg_new();
    char *out, line[T_OUT_MAX];

    (void)state;
    lg->o.duration_s = 3;
    for (unsigned k = 7; k <= 12; k++) {
        lg->ticks[k].db_loads = 50;
    }
    lg->db_loads = 300;
    assert_int_equal(lg_peak_db_loads(lg, lg_report_ticks(lg)), 300);
    out = t_report(lg, -1, -1, 0.1, 0.1);
    t_line(out, "TIMELINE ", line, sizeof(line));
    assert_string_equal(line, "TIMELINE db_loads_per_s=150,150,0");
    t_line(out, "database: ", line, sizeof(line));
    assert_string_equal(line, "database: 300 loads, 100/s, peak 300/s (any 1 s window)");
    t_line(out, "RESULT ", line, sizeof(line));
    assert_non_null(strstr(line, " db_loads=300 peak_db_loads_per_s=300 "));
    free(out);
    t_lg_free(lg);
}

/* The window is 1 s: loads 1 s apart are two windows, 0.9 s apart one. */
static void
test_peak_window_is_one_second(void **state)
{
    struct lg *lg = t_lg_new();

    (void)state;
    lg->o.duration_s = 5;
    lg->ticks[20].db_loads = 100;
    lg->ticks[30].db_loads = 100;
    assert_int_equal(lg_peak_db_loads(lg, lg_report_ticks(lg)), 100);
    lg->ticks[29].db_loads = 1;
    assert_int_equal(lg_peak_db_loads(lg, lg_report_ticks(lg)), 101);
    lg->ticks[21].db_loads = 5;
    assert_int_equal(lg_peak_db_loads(lg, lg_report_ticks(lg)), 106);
    /* Nothing past the run counts: 8 s of ticks, but a 5 s run. */
    lg->ticks[60].db_loads = 1000;
    assert_int_equal(lg_peak_db_loads(lg, lg_report_ticks(lg)), 106);
    /* The first tick leaves the window like any other. */
    lg->ticks[0].db_loads = 100;
    assert_int_equal(lg_peak_db_loads(lg, lg_report_ticks(lg)), 106);
    lg->ticks[0].db_loads = 200;
    assert_int_equal(lg_peak_db_loads(lg, lg_report_ticks(lg)), 200);
    t_lg_free(lg);
}

/* Comma-separated entries of the TIMELINE line of lg's report. */
static size_t
t_timeline_seconds(const struct lg *lg)
{
    char *out = t_report(lg, -1, -1, 0, 0);
    static char line[8 * LG_TICKS_MAX];
    size_t n = 1;

    t_line(out, "TIMELINE db_loads_per_s=", line, sizeof(line));
    for (const char *p = line; *p; p++) {
        n += *p == ',';
    }
    free(out);
    return n;
}

/* The TIMELINE covers the run, its last partial second included: a 2.5 s
 * run has 3 seconds, a run of 1.05 s (by request count) 2, and any run at
 * most an hour. Loads after a timed run (its drain) are not shown. */
static void
test_timeline_covers_the_run(void **state)
{
    struct lg *lg = t_lg_new();
    char *out, line[T_OUT_MAX];

    (void)state;
    lg->o.duration_s = 2.5;
    lg->ticks[24].db_loads = 7; /* 2.4 .. 2.5 s */
    lg->ticks[25].db_loads = 9; /* drain */
    assert_int_equal(t_timeline_seconds(lg), 3);
    out = t_report(lg, -1, -1, 0, 0);
    t_line(out, "TIMELINE ", line, sizeof(line));
    assert_string_equal(line, "TIMELINE db_loads_per_s=0,0,7");
    free(out);

    lg->o.duration_s = 1.05; /* 11 ticks: the 11th is a second of its own */
    lg->ticks[10].db_loads = 4;
    out = t_report(lg, -1, -1, 0, 0);
    t_line(out, "TIMELINE ", line, sizeof(line));
    assert_string_equal(line, "TIMELINE db_loads_per_s=0,4");
    free(out);

    lg->o.duration_s = 0;
    lg->o.requests = 1000;
    lg->start_ns = 7 * T_NS_PER_S;
    lg->end_ns = lg->start_ns + T_NS_PER_S + T_NS_PER_S / 20;
    assert_int_equal(t_timeline_seconds(lg), 2);
    lg->end_ns = lg->start_ns;
    assert_int_equal(t_timeline_seconds(lg), 1);
    lg->end_ns = lg->start_ns + 2 * 3600 * T_NS_PER_S;
    assert_int_equal(t_timeline_seconds(lg), 3600);
    lg->o.requests = 0;
    lg->o.duration_s = 3600;
    assert_int_equal(t_timeline_seconds(lg), 3600);
    t_lg_free(lg);
}

/* --timeline: one row per second of the TIMELINE line, same numbers. */
static void
test_timeline_rows(void **state)
{
    struct lg *lg = t_lg_new();
    char *out;

    (void)state;
    lg->o.duration_s = 2;
    lg->o.timeline = true;
    lg->ticks[3] = (struct lg_tick){.done = 1000, .nil = 40, .db_loads = 30};
    lg->ticks[9] = (struct lg_tick){.done = 500, .nil = 2, .db_loads = 1};
    lg->ticks[10] = (struct lg_tick){.done = 7, .nil = 0, .db_loads = 0};
    out = t_report(lg, -1, -1, 0, 0);
    assert_non_null(strstr(out, "timeline: second, commands/s, nil/s, "
                                "database loads/s\n"
                                "    0       1500        42        31\n"
                                "    1          7         0         0\n"
                                "TIMELINE db_loads_per_s=31,0\n"));
    free(out);
    t_lg_free(lg);
}

/* The lines and RESULT fields bench/run.sh reads, with upstream counts:
 * 1,500 upstream commands (after our own INFO) for 1,000 client commands
 * in 2 s. */
static void
test_report_lines(void **state)
{
    struct lg *lg = t_lg_new();
    char *out, line[T_OUT_MAX];

    (void)state;
    lg->o.requests = 1000;
    lg->o.threads = 2;
    lg->o.redis_host = "10.1.2.3";
    lg->o.redis_port = 6379;
    lg->start_ns = T_NS_PER_S;
    lg->end_ns = 3 * T_NS_PER_S;
    for (int i = 0; i < 1000; i++) {
        lg_hist_add(&lg->hist, 100000);
    }
    lg->done = lg->done_window = 1000;
    lg->gets = 900;
    lg->sets = 100;
    lg->nils = 12;
    lg->errors = 1;
    out = t_report(lg, 100, 1601, 1.5, 0.96);
    t_line(out, "run: ", line, sizeof(line));
    assert_string_equal(line, "run: 2.00 s, 1000 commands (GET 900, SET 100), "
                              "nil 12, errors 1");
    t_line(out, "throughput: ", line, sizeof(line));
    assert_string_equal(line, "throughput: 500 commands/s");
    t_line(out, "latency us: ", line, sizeof(line));
    assert_string_equal(line, "latency us: p50 100.0  p99 100.0  p99.9 "
                              "100.0  max 100.0");
    t_line(out, "upstream: ", line, sizeof(line));
    assert_string_equal(line, "upstream: 1500 commands at 10.1.2.3:6379, "
                              "1.500 per client command");
    t_line(out, "client cpu: ", line, sizeof(line));
    assert_string_equal(line, "client cpu: 150% of one core over 2 threads, "
                              "the busiest 96% (loadgen itself may be what "
                              "limits the rate: try --threads)");
    t_line(out, "RESULT ", line, sizeof(line));
    assert_string_equal(line, "RESULT rps=500 p50_us=100.0 p99_us=100.0 p999_us=100.0 "
                              "upstream_per_req=1.500 db_loads=0 peak_db_loads_per_s=0 nil=12 "
                              "errors=1 client_cpu=1.50 client_cpu_max_thread=0.96");
    free(out);

    /* Two threads at 60% each: 120% in all, but no thread is the limit. */
    out = t_report(lg, 100, 1601, 1.2, 0.6);
    t_line(out, "client cpu: ", line, sizeof(line));
    assert_string_equal(line, "client cpu: 120% of one core over 2 threads, "
                              "the busiest 60%");
    free(out);

    /* Without --redis: no upstream line, "-" in RESULT; one thread under
     * the bound: no warning. */
    lg->o.threads = 1;
    out = t_report(lg, -1, -1, 0.5, 0.5);
    assert_null(strstr(out, "upstream: "));
    t_line(out, "client cpu: ", line, sizeof(line));
    assert_string_equal(line, "client cpu: 50% of one core");
    t_line(out, "RESULT ", line, sizeof(line));
    assert_non_null(strstr(line, " upstream_per_req=- "));
    free(out);
    t_lg_free(lg);
}

/* ---- INFO commandstats -------------------------------------------------- */

static void
test_calls_sum(void **state)
{
    (void)state;
    /* Redis 7: rejected_calls= and failed_calls= are not calls. */
    assert_int_equal(lg_calls_sum("# Commandstats\r\n"
                                  "cmdstat_get:calls=120,usec=300,usec_per_call=2.50,"
                                  "rejected_calls=3,failed_calls=4\r\n"
                                  "cmdstat_set:calls=80,usec=240,usec_per_call=3.00,"
                                  "rejected_calls=0,failed_calls=0\r\n"
                                  "cmdstat_info:calls=1,usec=50,usec_per_call=50.00,"
                                  "rejected_calls=0,failed_calls=0\r\n"),
                     201);
    /* Redis 5 */
    assert_int_equal(lg_calls_sum("# Commandstats\r\n"
                                  "cmdstat_get:calls=5,usec=10,"
                                  "usec_per_call=2.00\r\n"
                                  "cmdstat_mget:calls=12345678901,usec=1,"
                                  "usec_per_call=0.00\r\n"),
                     INT64_C(12345678906));
    assert_int_equal(lg_calls_sum("# Commandstats\r\n"), 0);
    assert_int_equal(lg_calls_sum(""), 0);
    assert_int_equal(lg_calls_sum("calls=9"), 0);
}

/* ---- command line ------------------------------------------------------- */

/* Parse "loadgen" + args into o in this process (getopt reset first). */
static void
t_parse(struct lg_opts *o, const char *const *args)
{
    static char name[] = "loadgen";
    char *argv[T_MAX_ARGS + 1] = {name};
    int argc = 1;

    while (args[argc - 1] != NULL) {
        assert_true(argc < T_MAX_ARGS);
        argv[argc] = (char *)args[argc - 1];
        argc++;
    }
    optind = 0;
    lg_opts_parse(o, argc, argv);
}

/* Exit status of lg_opts_parse on "loadgen" + args in a child, 100 when it
 * returned; what it printed (stdout and stderr) into out. */
static int
t_parse_exit(const char *const *args, char *out, size_t outlen)
{
    int fd[2], status;
    size_t len = 0;
    ssize_t n;
    pid_t pid;

    assert_int_equal(pipe(fd), 0);
    fflush(NULL);
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct lg_opts o;
        close(fd[0]);
        dup2(fd[1], STDOUT_FILENO);
        dup2(fd[1], STDERR_FILENO);
        t_parse(&o, args);
        _exit(100);
    }
    close(fd[1]);
    while ((n = read(fd[0], out + len, outlen - 1 - len)) > 0) {
        len += (size_t)n;
    }
    out[len] = '\0';
    close(fd[0]);
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    return WEXITSTATUS(status);
}

/* The defaults --help names, and the run's first line with them. */
static void
test_opts_defaults(void **state)
{
    struct lg_opts o;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    t_parse(&o, T_ARGS(NULL));
    assert_string_equal(o.host, "127.0.0.1");
    assert_int_equal(o.port, 6380);
    assert_int_equal(o.conns, 50);
    assert_int_equal(o.threads, 1);
    assert_int_equal(o.pipeline, 1);
    assert_true(o.duration_s == 5);
    assert_int_equal(o.requests, 0);
    assert_int_equal(o.keys, 100000);
    assert_int_equal(o.dist, LG_UNIFORM);
    assert_int_equal(o.value_size, 100);
    assert_int_equal(o.ttl_s, 0);
    assert_int_equal(o.mode, LG_PLAIN);
    assert_int_equal(o.db_latency_ms, 5);
    assert_string_equal(o.prefix, "key:");
    assert_null(o.redis_host);
    assert_false(o.prefill || o.window || o.timeline);
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    lg_opts_print(f, &o);
    fclose(f);
    assert_string_equal(buf, "loadgen: 127.0.0.1:6380 conns 50 pipeline 1 "
                             "mode plain dist uniform keys 100000 absent "
                             "0.00 writes 0.00 value 100 B ttl 0 s "
                             "db-latency 5 ms\n");
    free(buf);
}

/* The command lines of bench/run.sh's kind, as parsed and as echoed. */
static void
test_opts_values(void **state)
{
    struct lg_opts o;
    char *buf = NULL;
    size_t len = 0;
    FILE *f;

    (void)state;
    t_parse(&o, T_ARGS("-p", "7000", "-c", "50", "-P", "16", "-d", "3", "-n", "100000",
                       "--prefill", "-k", "10000", "--redis", "127.0.0.1:7001", "--window"));
    assert_int_equal(o.port, 7000);
    assert_int_equal(o.pipeline, 16);
    assert_int_equal(o.requests, 100000);
    assert_true(o.duration_s == 0); /* -n overrides -d, in any order */
    assert_int_equal(o.keys, 10000);
    assert_true(o.prefill && o.window);
    assert_string_equal(o.redis_host, "127.0.0.1");
    assert_int_equal(o.redis_port, 7001);
    free((char *)o.redis_host);

    t_parse(&o, T_ARGS("--redis", "::1:6379", "--threads", "2", "-c", "10", "--mode",
                       "cache-aside", "--ttl", "2", "--dist", "zipf:0.99", "--absent", "0.25",
                       "--write-ratio", "1"));
    assert_string_equal(o.redis_host, "::1"); /* the last colon splits */
    assert_int_equal(o.redis_port, 6379);
    free((char *)o.redis_host);
    assert_int_equal(o.dist, LG_ZIPF);
    assert_true(o.zipf_s == 0.99);
    f = open_memstream(&buf, &len);
    assert_non_null(f);
    lg_opts_print(f, &o);
    fclose(f);
    assert_string_equal(buf, "loadgen: 127.0.0.1:6380 conns 10 pipeline 1 "
                             "mode cache-aside dist zipf:0.99 keys 100000 "
                             "absent 0.25 writes 1.00 value 100 B ttl 2 s "
                             "db-latency 5 ms threads 2\n");
    free(buf);

    t_parse(&o, T_ARGS("-p", "65535", "-c", "64", "--threads", "64", "-P", "1024", "--dist",
                       "sequential", "--prefix",
                       "0123456789012345678901234567890123456789"
                       "012345678901234567890123"));
    assert_int_equal(o.threads, 64);
    assert_int_equal(o.dist, LG_SEQUENTIAL);
    assert_int_equal(strlen(o.prefix), LG_PREFIX_MAX);
    t_parse(&o, T_ARGS("-c", "1", "-d", "0.1", "--absent", "0", "--dist", "zipf:0.01",
                       "--value-size", "0"));
    assert_int_equal(o.conns, 1);
    assert_true(o.duration_s == 0.1);
    assert_true(o.zipf_s == 0.01);
    assert_int_equal(o.value_size, 0);
}

/* avalanche turns on the prefill and the timeline, and a 20 s TTL unless
 * --ttl is given (0 included). */
static void
test_opts_avalanche(void **state)
{
    struct lg_opts o;

    (void)state;
    t_parse(&o, T_ARGS("--mode", "avalanche"));
    assert_int_equal(o.mode, LG_AVALANCHE);
    assert_true(o.prefill && o.timeline);
    assert_int_equal(o.ttl_s, 20);
    t_parse(&o, T_ARGS("--ttl", "5", "--mode", "avalanche"));
    assert_int_equal(o.ttl_s, 5);
    t_parse(&o, T_ARGS("--mode", "avalanche", "--ttl", "0"));
    assert_int_equal(o.ttl_s, 0);
}

/* Bad values and combinations: exit 2 and say what was wrong. */
static void
test_opts_reject(void **state)
{
    const struct t_reject cases[] = {
        {T_ARGS("-p", "0"), "--port wants a number in [1, 65535], got \"0\""},
        {T_ARGS("-p", "65536"), "--port wants a number"},
        {T_ARGS("--port", "80x"), "--port wants a number"},
        {T_ARGS("-c", ""), "--conns wants a number in [1, 10000]"},
        {T_ARGS("-c", "10001"), "--conns wants a number"},
        {T_ARGS("-P", "1025"), "--pipeline wants a number in [1, 1024]"},
        {T_ARGS("-d", "0"), "--duration wants a number in [0.1, 3600]"},
        {T_ARGS("-n", "0"), "--requests wants a number"},
        {T_ARGS("-k", "0"), "--keys wants a number"},
        {T_ARGS("--absent", "1.5"), "--absent wants a number in [0, 1]"},
        {T_ARGS("--absent", "nan"), "--absent wants a number"},
        {T_ARGS("--write-ratio", "-0.1"), "--write-ratio wants a number"},
        {T_ARGS("--value-size", "16777217"), "--value-size wants a number"},
        {T_ARGS("--db-latency", "60001"), "--db-latency wants a number"},
        {T_ARGS("--mode", "write-back"), "--mode: unknown \"write-back\""},
        {T_ARGS("--dist", "pareto"), "--dist: unknown \"pareto\""},
        {T_ARGS("--dist", "zipf:0"), "--dist zipf wants a number in [0.01, 10]"},
        {T_ARGS("--dist", "zipf:"), "--dist zipf wants a number"},
        {T_ARGS("--redis", "6379"), "--redis wants host:port"},
        {T_ARGS("--redis", ":6379"), "--redis wants host:port"},
        {T_ARGS("--redis", "localhost:0"), "--redis port wants a number"},
        {T_ARGS("--threads", "3", "-c", "2"),
         "--threads 3 wants at least as many connections and requests"},
        {T_ARGS("--threads", "4", "-n", "3"), "--threads 4 wants at least"},
        {T_ARGS("--threads", "65", "-c", "100"), "--threads wants a number in [1, 64]"},
        {T_ARGS("stray"), "Usage: loadgen"},
        {T_ARGS("--bogus"), "Usage: loadgen"},
        {T_ARGS("--prefix", "0123456789012345678901234567890123456789"
                            "0123456789012345678901234"),
         "Usage: loadgen"},
    };
    char out[T_OUT_MAX];

    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        int st = t_parse_exit(cases[i].args, out, sizeof(out));
        if (st != 2 || strstr(out, cases[i].says) == NULL) {
            fail_msg("case %zu (%s ...): exit %d, said \"%s\"", i, cases[i].args[0], st, out);
        }
    }
    assert_int_equal(t_parse_exit(T_ARGS("--help"), out, sizeof(out)), 0);
    assert_non_null(strstr(out, "Usage: loadgen [options]\n"));
    assert_int_equal(t_parse_exit(T_ARGS("-n", "5"), out, sizeof(out)), 100);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_quantiles_uniform),
        cmocka_unit_test(test_quantile_empty_is_zero),
        cmocka_unit_test(test_quantile_single_value),
        cmocka_unit_test(test_bucket_precision),
        cmocka_unit_test(test_quantile_monotonic_and_capped),
        cmocka_unit_test(test_merge_equals_one_recorder),
        cmocka_unit_test(test_peak_counts_burst_across_second_whole),
        cmocka_unit_test(test_peak_window_is_one_second),
        cmocka_unit_test(test_timeline_covers_the_run),
        cmocka_unit_test(test_timeline_rows),
        cmocka_unit_test(test_report_lines),
        cmocka_unit_test(test_calls_sum),
        cmocka_unit_test(test_opts_defaults),
        cmocka_unit_test(test_opts_values),
        cmocka_unit_test(test_opts_avalanche),
        cmocka_unit_test(test_opts_reject),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
