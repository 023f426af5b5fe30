/*
 * loadgen's command line: usage, option values and their bounds, and the
 * run's first output line.
 */
#include "bench/loadgen.h"

#include <errno.h>
#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void
usage(FILE *f)
{
    fprintf(f, "Usage: loadgen [options]\n"
               "  -h, --host HOST         target host (default 127.0.0.1)\n"
               "  -p, --port PORT         target port (default 6380)\n"
               "      --redis HOST:PORT   Redis whose INFO commandstats counts "
               "upstream commands\n"
               "  -c, --conns N           connections (default 50)\n"
               "      --threads T         event-loop threads sharing the connections "
               "(default 1)\n"
               "  -P, --pipeline N        commands sent per batch per connection "
               "(default 1)\n"
               "  -d, --duration S        run for S seconds (default 5)\n"
               "  -n, --requests N        or send N commands (overrides --duration)\n"
               "  -k, --keys N            key space size (default 100000)\n"
               "      --dist D            uniform | zipf:S | sequential (default "
               "uniform)\n"
               "      --absent F          fraction of GETs for keys that never exist "
               "(0..1)\n"
               "      --value-size B      SET value bytes (default 100)\n"
               "      --write-ratio F     fraction of requests that are SETs (0..1)\n"
               "      --ttl S             EX seconds on SETs and cache fills (default "
               "none)\n"
               "      --mode M            plain | cache-aside | avalanche (default "
               "plain)\n"
               "      --db-latency MS     simulated database load, ms (default 5)\n"
               "      --prefill           SET every key (with --ttl) before the run\n"
               "      --window            keep P in flight per connection, refilled "
               "reply by\n"
               "                          reply (default: batches of P, as "
               "redis-benchmark -P)\n"
               "      --prefix P          key prefix (default \"key:\"); keys are P + "
               "12 digits\n"
               "      --timeline          print commands, nils and database loads "
               "per second\n"
               "      --seed N            random seed (default: from the clock)\n"
               "avalanche = cache-aside + --prefill + --timeline, --ttl 20 unless "
               "given:\n"
               "the keys are written with one EX as fast as possible, then read "
               "across\n"
               "their expiry; every miss is a database load and a SET EX ttl.\n");
}

/* The number in v, or exit 2 naming option name and [min, max]. */
static double
opt_num(const char *name, const char *v, double min, double max)
{
    char *end;
    double d;

    errno = 0;
    d = strtod(v, &end);
    if (errno || end == v || *end || !(d >= min && d <= max)) {
        fprintf(stderr, "loadgen: --%s wants a number in [%g, %g], got \"%s\"\n", name, min, max,
                v);
        exit(2);
    }
    return d;
}

/* Split v ("host:port", the last colon) into *host (allocated, lives until
 * exit) and *port, or exit 2. */
static void
opt_hostport(const char *v, const char **host, int *port)
{
    const char *colon = strrchr(v, ':');
    size_t len;
    char *h;

    if (colon == NULL || colon == v) {
        fprintf(stderr, "loadgen: --redis wants host:port, got \"%s\"\n", v);
        exit(2);
    }
    *port = (int)opt_num("redis port", colon + 1, 1, 65535);
    len = (size_t)(colon - v);
    h = calloc(1, len + 1);
    if (h == NULL) {
        fprintf(stderr, "loadgen: out of memory (%zu x %zu bytes)\n", (size_t)1, len + 1);
        exit(1);
    }
    memcpy(h, v, len);
    *host = h;
}

/* Index of v in words (n of them), or exit 2 naming the choices. */
static int
opt_word(const char *name, const char *v, const char *const *words, int n)
{
    for (int i = 0; i < n; i++) {
        if (strcmp(v, words[i]) == 0) {
            return i;
        }
    }
    fprintf(stderr, "loadgen: --%s: unknown \"%s\"; see --help\n", name, v);
    exit(2);
}

/* Names of enum lg_mode and enum lg_dist values, in order. */
static const char *const mode_names[] = {"plain", "cache-aside", "avalanche"};
static const char *const dist_names[] = {"uniform", "zipf", "sequential"};

static void
opt_dist(struct lg_opts *o, const char *v)
{
    if (strncmp(v, "zipf:", 5) == 0) {
        o->dist = LG_ZIPF;
        o->zipf_s = opt_num("dist zipf", v + 5, 0.01, 10);
    } else {
        o->dist = (enum lg_dist)opt_word("dist", v, dist_names, 3);
    }
}

static const struct option long_opts[] = {
    {"host", required_argument, NULL, 'h'},
    {"port", required_argument, NULL, 'p'},
    {"conns", required_argument, NULL, 'c'},
    {"pipeline", required_argument, NULL, 'P'},
    {"duration", required_argument, NULL, 'd'},
    {"requests", required_argument, NULL, 'n'},
    {"keys", required_argument, NULL, 'k'},
    {"redis", required_argument, NULL, 'R'},
    {"dist", required_argument, NULL, 'D'},
    {"absent", required_argument, NULL, 'A'},
    {"value-size", required_argument, NULL, 'V'},
    {"write-ratio", required_argument, NULL, 'W'},
    {"ttl", required_argument, NULL, 'T'},
    {"mode", required_argument, NULL, 'M'},
    {"db-latency", required_argument, NULL, 'L'},
    {"prefill", no_argument, NULL, 'F'},
    {"prefix", required_argument, NULL, 'X'},
    {"timeline", no_argument, NULL, 't'},
    {"seed", required_argument, NULL, 'S'},
    {"help", no_argument, NULL, 'H'},
    {"window", no_argument, NULL, 'w'},
    {"threads", required_argument, NULL, 'j'},
    {NULL, 0, NULL, 0},
};

/* Apply option ch (getopt_long's answer) with value v to o; *ttl_given
 * records --ttl. Exits as lg_opts_parse() does. One line per option: the
 * table is easier to check against --help than clang-format's layout. */
static void
opt_apply(struct lg_opts *o, int ch, const char *v, bool *ttl_given)
{
    /* clang-format off */
    switch (ch) {
    case 'h': o->host = v; break;
    case 'p': o->port = (int)opt_num("port", v, 1, 65535); break;
    case 'c': o->conns = (unsigned)opt_num("conns", v, 1, 10000); break;
    case 'P': o->pipeline = (unsigned)opt_num("pipeline", v, 1, 1024); break;
    case 'd': o->duration_s = opt_num("duration", v, 0.1, 3600); break;
    case 'n': o->requests = (uint64_t)opt_num("requests", v, 1, 1e15); break;
    case 'k': o->keys = (uint32_t)opt_num("keys", v, 1, 1e8); break;
    case 'R': opt_hostport(v, &o->redis_host, &o->redis_port); break;
    case 'D': opt_dist(o, v); break;
    case 'A': o->absent = opt_num("absent", v, 0, 1); break;
    case 'V': o->value_size = (size_t)opt_num("value-size", v, 0, 1 << 24);
              break;
    case 'W': o->write_ratio = opt_num("write-ratio", v, 0, 1); break;
    case 'T': o->ttl_s = (unsigned)opt_num("ttl", v, 0, 1e8);
              *ttl_given = true; break;
    case 'M': o->mode = (enum lg_mode)opt_word("mode", v, mode_names, 3);
              break;
    case 'L': o->db_latency_ms = (unsigned)opt_num("db-latency", v, 0, 60000);
              break;
    case 'F': o->prefill = true; break;
    case 'X': o->prefix = v; break;
    case 't': o->timeline = true; break;
    case 'w': o->window = true; break;
    case 'j': o->threads = (unsigned)opt_num("threads", v, 1, LG_THREADS_MAX);
              break;
    case 'S': o->seed = (uint64_t)opt_num("seed", v, 0, 1e18); break;
    case 'H': usage(stdout); exit(0);
    default: usage(stderr); exit(2);
    }
    /* clang-format on */
}

void
lg_opts_parse(struct lg_opts *o, int argc, char **argv)
{
    int ch;
    bool ttl_given = false;

    *o = (struct lg_opts){.host = "127.0.0.1",
                          .port = 6380,
                          .conns = 50,
                          .pipeline = 1,
                          .threads = 1,
                          .duration_s = 5,
                          .keys = 100000,
                          .value_size = 100,
                          .db_latency_ms = 5,
                          .prefix = "key:",
                          .zipf_s = 0.99};
    while ((ch = getopt_long(argc, argv, "h:p:c:P:d:n:k:", long_opts, NULL)) != -1) {
        opt_apply(o, ch, optarg, &ttl_given);
    }
    if (optind < argc || strlen(o->prefix) > LG_PREFIX_MAX) {
        usage(stderr);
        exit(2);
    }
    if (o->threads > o->conns || (o->requests && o->requests < o->threads)) {
        fprintf(stderr,
                "loadgen: --threads %u wants at least as many connections and "
                "requests\n",
                o->threads);
        exit(2);
    }
    if (o->requests) {
        o->duration_s = 0;
    }
    if (o->mode == LG_AVALANCHE) {
        o->prefill = o->timeline = true;
        o->ttl_s = ttl_given ? o->ttl_s : 20;
    }
}

void
lg_opts_print(FILE *f, const struct lg_opts *o)
{
    fprintf(f, "loadgen: %s:%d conns %u pipeline %u mode %s dist %s", o->host, o->port, o->conns,
            o->pipeline, mode_names[o->mode], dist_names[o->dist]);
    if (o->dist == LG_ZIPF) {
        fprintf(f, ":%g", o->zipf_s);
    }
    fprintf(f,
            " keys %u absent %.2f writes %.2f value %zu B ttl %u s "
            "db-latency %u ms",
            o->keys, o->absent, o->write_ratio, o->value_size, o->ttl_s, o->db_latency_ms);
    fprintf(f, o->threads > 1 ? " threads %u\n" : "\n", o->threads);
}
