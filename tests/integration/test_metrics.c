/*
 * test_metrics: bulwark's /metrics (promtool-clean, every INFO field mapped,
 * requests and latencies by command), INFO bulwark_commandstats /
 * bulwark_latencystats next to Redis's own sections, CONFIG RESETSTAT of
 * both, a real Prometheus scraping bulwark every second and queried through
 * its HTTP API, and prometheus-redis-exporter pointed at bulwark.
 * Prometheus, promtool and the exporter come from Debian (make deps); a test
 * that needs one skips when it is not installed.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* redis-server and bulwark with /metrics on a free port. */
struct env {
    struct harness_server *redis;   /* the upstream */
    struct harness_server *bulwark; /* the subject */
    int metrics_port;               /* bulwark's metrics-port */
};

static void
env_start(struct env *e)
{
    char port[16];
    e->redis = harness_redis_start(NULL);
    e->metrics_port = harness_free_port();
    snprintf(port, sizeof(port), "%d", e->metrics_port);
    e->bulwark = harness_bulwark_start(e->redis->port, HARNESS_ARGS("--metrics-port", port));
}

static void
env_stop(struct env *e)
{
    harness_bulwark_stop(e->bulwark);
    harness_redis_stop(e->redis);
}

/* GET path from 127.0.0.1:port (HTTP/1.0); the status code, body appended to body. */
static int
http_get(int port, const char *method, const char *path, struct harness_buf *body)
{
    char req[2048];
    struct harness_buf raw = {0};
    struct harness_conn *c = harness_conn_open_addr("127.0.0.1", port);
    if (c == NULL)
        return -1;
    snprintf(req, sizeof(req), "%s %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n", method, path);
    harness_conn_send_str(c, req);
    harness_conn_read_eof(c, HARNESS_TIMEOUT_MS, &raw);
    harness_conn_close(c);
    int status = -1;
    if (raw.len > 12)
        status = atoi(raw.data + 9);
    const char *p = raw.data != NULL ? strstr(raw.data, "\r\n\r\n") : NULL;
    if (p != NULL && body != NULL)
        harness_buf_append(body, p + 4, raw.len - (size_t)(p + 4 - raw.data));
    harness_buf_free(&raw);
    return status;
}

static bool
have_program(const char *name)
{
    char cmd[256];
    snprintf(cmd, sizeof(cmd), "command -v %s >/dev/null 2>&1", name);
    return system(cmd) == 0;
}

/* Some traffic of several commands and answerers. */
static void
traffic(const struct harness_server *b, int rounds)
{
    redisContext *c = harness_redis_connect(b);
    for (int i = 0; i < rounds; i++) {
        redisAppendCommand(c, "SET k%d v", i % 50);
        redisAppendCommand(c, "GET k%d", i % 50);
        redisAppendCommand(c, "GET absent%d", i);
        redisAppendCommand(c, "PING");
        redisAppendCommand(c, "MGET k1 k2");
    }
    for (int i = 0; i < rounds * 5; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(c, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    redisFree(c);
}

/* Value of the sample line starting with prefix ("name{labels}") in text; -1 if absent. */
static double
sample(const char *text, const char *prefix)
{
    size_t n = strlen(prefix);
    for (const char *l = text; l != NULL && *l != '\0'; l = strchr(l, '\n'), l = l ? l + 1 : l)
        if (strncmp(l, prefix, n) == 0 && l[n] == ' ')
            return strtod(l + n + 1, NULL);
    return -1;
}

static void
test_metrics_pass_promtool(void **state)
{
    struct env e;
    struct harness_buf body = {0};
    (void)state;
    env_start(&e);
    traffic(e.bulwark, 200);
    assert_int_equal(http_get(e.metrics_port, "GET", "/metrics", &body), 200);
    assert_non_null(strstr(body.data, "# TYPE bulwark_requests_total counter"));
    assert_true(sample(body.data,
                       "bulwark_requests_total{command=\"ping\",answered_by=\"local\"}") >= 200);
    assert_true(
        sample(body.data, "bulwark_requests_total{command=\"set\",answered_by=\"upstream\"}") >=
        200);
    assert_true(sample(body.data, "bulwark_request_duration_seconds_count{command=\"get\"}") >=
                400);
    assert_true(sample(body.data,
                       "bulwark_request_duration_seconds_bucket{command=\"get\",le=\"+Inf\"}") >=
                400);
    assert_true(sample(body.data, "bulwark_batch_size_keys_count") >= 0);
    assert_true(sample(body.data, "process_resident_memory_bytes") > 0);
    assert_true(sample(body.data, "process_open_fds") > 0);
    assert_true(sample(body.data, "process_start_time_seconds") > 1.6e9);
    if (have_program("promtool")) {
        char path[600], cmd[1400];
        snprintf(path, sizeof(path), "%s/metrics.txt", harness_tmpdir());
        FILE *f = fopen(path, "w");
        assert_non_null(f);
        fwrite(body.data, 1, body.len, f);
        fclose(f);
        snprintf(cmd, sizeof(cmd), "promtool check metrics < %s", path);
        assert_int_equal(system(cmd), 0);
    } else {
        fprintf(stderr, "promtool not installed (make deps): format check skipped\n");
    }
    harness_buf_reset(&body);
    assert_int_equal(http_get(e.metrics_port, "GET", "/other", &body), 404);
    assert_int_equal(http_get(e.metrics_port, "POST", "/metrics", NULL), 405);
    harness_buf_free(&body);
    env_stop(&e);
}

/* Does some "(INFO a, b, …)" group of a HELP line of text name field? */
static bool
help_names(const char *text, const char *field)
{
    for (const char *p = strstr(text, "(INFO "); p != NULL; p = strstr(p + 1, "(INFO ")) {
        const char *end = strchr(p, ')');
        size_t n = strlen(field);
        for (const char *q = p + 6; q != NULL && q < end;
             q = strpbrk(q, ",)"), q = q ? q + 1 : q) {
            q += strspn(q, " ");
            if (strncmp(q, field, n) == 0 && (q[n] == ',' || q[n] == ')'))
                return true;
        }
    }
    return false;
}

static void
test_every_info_field_is_a_metric(void **state)
{
    static const char *const sections[] = {"proxy", "upstream", "bloom", "hotkeys"};
    struct env e;
    struct harness_buf body = {0}, missing = {0};
    int fields = 0;
    (void)state;
    env_start(&e);
    traffic(e.bulwark, 20);
    assert_int_equal(http_get(e.metrics_port, "GET", "/metrics", &body), 200);
    redisContext *c = harness_redis_connect(e.bulwark);
    for (size_t i = 0; i < BW_ARRAY_LEN(sections); i++) {
        redisReply *r = redisCommand(c, "INFO %s", sections[i]);
        assert_int_equal(r->type, REDIS_REPLY_STRING);
        for (char *l = strtok(r->str, "\r\n"); l != NULL; l = strtok(NULL, "\r\n")) {
            char *colon = strchr(l, ':');
            if (l[0] == '#' || colon == NULL)
                continue;
            *colon = '\0';
            fields++;
            if (!help_names(body.data, l))
                harness_buf_printf(&missing, " %s", l);
        }
        freeReplyObject(r);
    }
    redisFree(c);
    if (missing.len > 0)
        fail_msg("INFO fields with no metric in /metrics:%s", missing.data);
    assert_true(fields > 50);
    harness_buf_free(&body);
    env_stop(&e);
}

static void
test_commandstats_sections_and_resetstat(void **state)
{
    struct env e;
    char v[256];
    (void)state;
    env_start(&e);
    traffic(e.bulwark, 30);
    /* Redis's own section as Redis wrote it, then bulwark's */
    redisContext *c = harness_redis_connect(e.bulwark);
    redisReply *r = redisCommand(c, "INFO commandstats");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    const char *redis = strstr(r->str, "# Commandstats\r\n");
    const char *own = strstr(r->str, "# Bulwark_commandstats\r\n");
    assert_non_null(redis);
    assert_non_null(own);
    assert_true(redis < own);
    const char *ping = strstr(own, "cmdstat_ping:calls=");
    assert_non_null(ping);
    assert_true(atoll(ping + strlen("cmdstat_ping:calls=")) >= 30); /* + the harness's */
    freeReplyObject(r);
    r = redisCommand(c, "INFO bulwark_latencystats");
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    assert_non_null(strstr(r->str, "# Bulwark_latencystats\r\nlatency_percentiles_usec_"));
    assert_non_null(strstr(r->str, "latency_percentiles_usec_get:p50="));
    assert_null(strstr(r->str, "# Commandstats")); /* one section only */
    freeReplyObject(r);
    assert_true(
        harness_info_field(e.bulwark, "bulwark_commandstats", "cmdstat_set", v, sizeof(v)));
    assert_int_equal(strncmp(v, "calls=30,", 9), 0);
    /* bulwark's own command is counted under its name, not as an unknown one */
    for (int i = 0; i < 3; i++)
        freeReplyObject(redisCommand(c, "BULWARK HOTKEYS"));
    assert_true(
        harness_info_field(e.bulwark, "bulwark_commandstats", "cmdstat_bulwark", v, sizeof(v)));
    assert_int_equal(strncmp(v, "calls=3,", 8), 0);
    assert_false(
        harness_info_field(e.bulwark, "bulwark_commandstats", "cmdstat_unknown", v, sizeof(v)));
    /* CONFIG RESETSTAT: Redis's (forwarded) and bulwark's */
    assert_true(harness_command_calls(e.redis, "set") >= 30);
    r = redisCommand(c, "CONFIG RESETSTAT");
    assert_int_equal(r->type, REDIS_REPLY_STATUS);
    freeReplyObject(r);
    redisFree(c);
    assert_int_equal(harness_command_calls(e.redis, "set"), 0);
    assert_false(
        harness_info_field(e.bulwark, "bulwark_commandstats", "cmdstat_set", v, sizeof(v)));
    assert_false(harness_info_field(e.bulwark, "bulwark_latencystats",
                                    "latency_percentiles_usec_set", v, sizeof(v)));
    env_stop(&e);
}

/* ---- external servers ----------------------------------------------------- */

/* Start argv (stdout and stderr to log) in its own process group; its pid. */
static pid_t
spawn(const char *const *argv, const char *log)
{
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        FILE *f = freopen(log, "w", stdout);
        (void)f;
        dup2(STDOUT_FILENO, STDERR_FILENO);
        setpgid(0, 0);
        execvp(argv[0], (char *const *)argv);
        _exit(127);
    }
    return pid;
}

static void
reap(pid_t pid)
{
    int st;
    kill(pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(pid, &st, WNOHANG) == pid)
            return;
        usleep(50 * 1000);
    }
    kill(pid, SIGKILL);
    waitpid(pid, &st, 0);
}

/* Poll GET path on port until it answers 200 (deadline_ms); its body in body. */
static bool
wait_http(int port, const char *path, uint64_t deadline_ms, struct harness_buf *body)
{
    uint64_t start = bw_now_ms();
    while (bw_now_ms() - start < deadline_ms) {
        harness_buf_reset(body);
        if (http_get(port, "GET", path, body) == 200)
            return true;
        usleep(100 * 1000);
    }
    return false;
}

/* Percent-encoding of a PromQL query for a URL. */
static void
urlencode(const char *s, char *out, size_t size)
{
    size_t n = 0;
    for (; *s != '\0' && n + 4 < size; s++) {
        if ((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
            *s == '_' || *s == '.')
            out[n++] = *s;
        else
            n += (size_t)snprintf(out + n, size - n, "%%%02X", (unsigned char)*s);
    }
    out[n] = '\0';
}

/*
 * The value of an instant query's first result through Prometheus's API
 * (/api/v1/query), as text into val; false when there is none (yet).
 */
static bool
prom_query(int port, const char *query, char *val, size_t size)
{
    char enc[1024], path[1200];
    struct harness_buf body = {0};
    urlencode(query, enc, sizeof(enc));
    snprintf(path, sizeof(path), "/api/v1/query?query=%s", enc);
    bool ok = false;
    if (http_get(port, "GET", path, &body) == 200 &&
        strstr(body.data, "\"status\":\"success\"")) {
        const char *p = strstr(body.data, "\"value\":[");
        if (p != NULL && (p = strchr(p, ',')) != NULL && p[1] == '"') {
            snprintf(val, size, "%.*s", (int)strcspn(p + 2, "\""), p + 2);
            ok = true;
        }
    }
    harness_buf_free(&body);
    return ok;
}

static bool
finite_number(const char *s)
{
    char *end;
    double d = strtod(s, &end);
    return end != s && *end == '\0' && d == d && d < 1e300 && d > -1e300;
}

static void
test_prometheus_scrapes_bulwark(void **state)
{
    struct env e;
    char dir[600], conf[700], log[700], listen[64], cfgarg[720], tsdb[720], v[128] = "";
    struct harness_buf body = {0};
    (void)state;
    if (!have_program("prometheus"))
        skip(); /* make deps installs it; CI runs make deps */
    env_start(&e);
    int port = harness_free_port();
    snprintf(dir, sizeof(dir), "%s/prometheus", harness_tmpdir());
    snprintf(conf, sizeof(conf), "%s.yml", dir);
    snprintf(log, sizeof(log), "%s.log", dir);
    FILE *f = fopen(conf, "w");
    assert_non_null(f);
    fprintf(f,
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: bulwark\n    static_configs:\n"
            "      - targets: ['127.0.0.1:%d']\n",
            e.metrics_port);
    fclose(f);
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", port);
    snprintf(cfgarg, sizeof(cfgarg), "--config.file=%s", conf);
    snprintf(tsdb, sizeof(tsdb), "--storage.tsdb.path=%s", dir);
    pid_t pid = spawn(HARNESS_ARGS("prometheus", cfgarg, tsdb, listen), log);
    assert_true(wait_http(port, "/-/ready", 30000, &body));
    /* traffic while Prometheus scrapes, until it saw bulwark_requests_total grow
     * and can compute a finite p99 of GET from the histogram */
    double first = -1, last = -1;
    bool p99 = false;
    uint64_t start = bw_now_ms();
    while (bw_now_ms() - start < 40000 && !(p99 && first >= 0 && last > first)) {
        traffic(e.bulwark, 100);
        usleep(200 * 1000);
        if (prom_query(port, "sum(bulwark_requests_total)", v, sizeof(v))) {
            last = strtod(v, NULL);
            if (first < 0)
                first = last;
        }
        p99 = prom_query(port,
                         "histogram_quantile(0.99, sum by (le) "
                         "(rate(bulwark_request_duration_seconds_bucket{command=\"get\"}[30s])))",
                         v, sizeof(v)) &&
              finite_number(v);
    }
    if (!(p99 && last > first)) {
        fprintf(stderr, "prometheus: first %g last %g p99 '%s'\n", first, last, v);
        harness_print_log_tail(e.bulwark, 20);
    }
    assert_true(first >= 0 && last > first);
    assert_true(p99);
    assert_true(prom_query(port, "up{job=\"bulwark\"}", v, sizeof(v)));
    assert_string_equal(v, "1");
    reap(pid);
    harness_buf_free(&body);
    env_stop(&e);
}

static void
test_redis_exporter_against_bulwark(void **state)
{
    struct env e;
    char addr[64], listen[64], log[600];
    struct harness_buf body = {0};
    (void)state;
    if (!have_program("prometheus-redis-exporter"))
        skip();
    env_start(&e);
    traffic(e.bulwark, 20);
    int port = harness_free_port();
    snprintf(addr, sizeof(addr), "--redis.addr=redis://127.0.0.1:%d", e.bulwark->port);
    snprintf(listen, sizeof(listen), "--web.listen-address=127.0.0.1:%d", port);
    snprintf(log, sizeof(log), "%s/redis-exporter.log", harness_tmpdir());
    pid_t pid = spawn(HARNESS_ARGS("prometheus-redis-exporter", addr, listen), log);
    assert_true(wait_http(port, "/metrics", 20000, &body));
    for (int i = 0; i < 2; i++) { /* a second scrape: the first one's state is not special */
        harness_buf_reset(&body);
        assert_int_equal(http_get(port, "GET", "/metrics", &body), 200);
        if (sample(body.data, "redis_up") != 1 ||
            sample(body.data, "redis_exporter_last_scrape_error{err=\"\"}") != 0)
            fprintf(stderr, "%s\n", body.data);
        assert_true(sample(body.data, "redis_up") == 1);
        assert_true(sample(body.data, "redis_exporter_last_scrape_error{err=\"\"}") == 0);
        assert_true(sample(body.data, "redis_commands_processed_total") > 0);
        assert_true(sample(body.data, "redis_connected_clients") >= 1);
    }
    reap(pid);
    /* the exporter logged no error about bulwark's replies */
    FILE *f = fopen(log, "r");
    char line[1024];
    while (f != NULL && fgets(line, sizeof(line), f) != NULL)
        if (strstr(line, "level=error") != NULL)
            fail_msg("redis exporter: %s", line);
    if (f != NULL)
        fclose(f);
    harness_buf_free(&body);
    env_stop(&e);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_metrics_pass_promtool),
        cmocka_unit_test(test_every_info_field_is_a_metric),
        cmocka_unit_test(test_commandstats_sections_and_resetstat),
        cmocka_unit_test(test_prometheus_scrapes_bulwark),
        cmocka_unit_test(test_redis_exporter_against_bulwark),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
