/* metrics: the Prometheus /metrics endpoint (evhttp) and its rendering. */
#include "proxy/metrics.h"

#include <dirent.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/time.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/keyvalq_struct.h>

#include "proxy/cmdstats.h"
#include "proxy/local.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/util.h"

/* How a field of bulwark's INFO becomes a metric. */
enum metrics_kind {
    METRICS_COUNTER, /* a number that only grows (until CONFIG RESETSTAT) */
    METRICS_GAUGE,   /* a number that goes up and down */
    METRICS_STATE,   /* a word: metric{label="word"} 1 (a gauge) */
    METRICS_ALIAS,   /* carried by another field's metric (named in its HELP) */
    METRICS_NODE     /* the upstream node's address: the node label of later fields */
};

/* One row of the INFO field -> metric table. */
struct metrics_map {
    const char *field;      /* INFO field name, as bulwark's INFO writes it */
    enum metrics_kind kind; /* see enum metrics_kind */
    const char *metric;     /* metric name (for ALIAS and NODE: the metric carrying it) */
    double scale;           /* multiplies the INFO value (ms -> s: 0.001); 0 = 1 */
    const char *label;      /* STATE: the label holding the word */
    bool node;              /* labelled {node="<upstream_address>"} */
    const char *help;       /* HELP text, without the "(INFO …)" part */
};

#define C(f, m, h)                               \
    {                                            \
        f, METRICS_COUNTER, m, 0, NULL, false, h \
    }
#define G(f, m, h)                             \
    {                                          \
        f, METRICS_GAUGE, m, 0, NULL, false, h \
    }
#define CN(f, m, h)                             \
    {                                           \
        f, METRICS_COUNTER, m, 0, NULL, true, h \
    }
#define GN(f, m, h)                           \
    {                                         \
        f, METRICS_GAUGE, m, 0, NULL, true, h \
    }

/* Every field of INFO proxy, upstream, bloom and hotkeys, in INFO order. */
static const struct metrics_map metrics_map[] = {
    {"bulwark_version", METRICS_STATE, "bulwark_build_info", 0, "version", false,
     "bulwark's version, as a label"},
    G("process_id", "bulwark_process_id", "Process id of bulwark"),
    G("tcp_port", "bulwark_tcp_port", "TCP port bulwark accepts clients on"),
    G("uptime_in_seconds", "bulwark_uptime_seconds", "Seconds since bulwark started"),
    {"uptime_in_days", METRICS_ALIAS, "bulwark_uptime_seconds", 0, NULL, false, NULL},
    G("connected_clients", "bulwark_connected_clients", "Clients connected now"),
    G("maxclients", "bulwark_maxclients", "Most clients connected at once (maxclients)"),
    C("total_connections_received", "bulwark_connections_received_total",
      "Client connections accepted"),
    C("rejected_connections", "bulwark_rejected_connections_total",
      "Client connections refused by maxclients"),
    C("total_commands_processed", "bulwark_commands_processed_total",
      "Requests parsed and handled"),
    G("instantaneous_ops_per_sec", "bulwark_instantaneous_ops_per_second",
      "Requests per second, mean of the last 16 samples of 100 ms"),
    C("total_net_input_bytes", "bulwark_net_input_bytes_total", "Bytes read from clients"),
    C("total_net_output_bytes", "bulwark_net_output_bytes_total", "Bytes queued to clients"),
    C("local_replies", "bulwark_local_replies_total",
      "Requests not sent upstream (answered by bulwark)"),
    C("forwarded_requests", "bulwark_forwarded_requests_total",
      "Requests sent upstream (batched GETs included)"),
    C("upstream_error_replies", "bulwark_upstream_error_replies_total",
      "Requests answered -ERR because the upstream failed"),
    C("protocol_errors", "bulwark_protocol_errors_total", "Clients closed for a protocol error"),
    C("ttl_jittered_writes", "bulwark_ttl_jittered_writes_total",
      "Writes whose TTL was lengthened by TTL jitter"),
    {"ttl_jitter_added_ms_total", METRICS_COUNTER, "bulwark_ttl_jitter_added_seconds_total",
     0.001, NULL, false, "Sum of the TTL added by jitter, seconds"},
    C("batch_batches", "bulwark_batch_batches_total", "Coalesced GET batches sent upstream"),
    C("batch_keys", "bulwark_batch_keys_total", "Distinct keys in those batches"),
    G("batch_max_keys_seen", "bulwark_batch_max_keys", "Most keys in one batch"),
    C("batch_dedup_saved", "bulwark_batch_dedup_saved_total",
      "GETs that joined a key already waiting in a batch"),
    C("batch_rechecks", "bulwark_batch_rechecks_total", "mget-mode nils re-checked with GET"),
    G("pinned_connections", "bulwark_pinned_connections",
      "Dedicated (pinned) upstream connections open: owned by a client or idle in the pool"),
    G("pinned_peak", "bulwark_pinned_connections_peak", "Most pinned connections in use at once"),
    C("pinned_refused", "bulwark_pinned_refused_total",
      "Requests refused a dedicated connection: upstream-pinned-wait ran out, or no descriptor"),
    G("pinned_waiting", "bulwark_pinned_waiting",
      "Requests waiting for a dedicated connection (upstream-pinned-max in use)"),
    C("client_output_limit_closed", "bulwark_client_output_limit_closed_total",
      "Clients closed by client-output-buffer-limit"),
    G("client_recent_max_output_buffer", "bulwark_client_recent_max_output_buffer_bytes",
      "Largest output held for one client now, bytes"),
    {"upstream_address", METRICS_NODE, "bulwark_upstream_info", 0, NULL, false, NULL},
    {"upstream_redis_version", METRICS_STATE, "bulwark_upstream_info", 0, "redis_version", true,
     "The upstream node, with its redis_version"},
    {"upstream_link_status", METRICS_STATE, "bulwark_upstream_link_status", 0, "status", true,
     "State of the first shared upstream connection"},
    GN("upstream_connections", "bulwark_upstream_connections",
       "Shared upstream connections (upstream-connections)"),
    GN("upstream_connections_up", "bulwark_upstream_connections_up",
       "Shared upstream connections up"),
    CN("upstream_reconnects", "bulwark_upstream_reconnects_total", "Upstream reconnects"),
    GN("upstream_requests_in_flight", "bulwark_upstream_requests_in_flight",
       "Requests sent upstream and not answered yet"),
    CN("upstream_requests", "bulwark_upstream_requests_total",
       "Requests sent on the shared upstream connections (or refused while down)"),
    CN("upstream_request_errors", "bulwark_upstream_request_errors_total",
       "Upstream requests failed: connection down, lost or timed out"),
    CN("upstream_replies", "bulwark_upstream_replies_total", "Upstream replies relayed"),
    CN("upstream_timeouts", "bulwark_upstream_timeouts_total",
       "Upstream requests failed by upstream-timeout"),
    {"upstream_rtt_us", METRICS_GAUGE, "bulwark_upstream_rtt_ewma_seconds", 1e-6, NULL, true,
     "Upstream round trip, moving average (alpha 1/8), seconds"},
    G("upstream_databases", "bulwark_upstream_databases",
      "Databases a client may SELECT (upstream's CONFIG GET databases, or upstream-databases)"),
    G("upstream_cluster", "bulwark_upstream_cluster",
      "1 when the upstream is a Redis Cluster (requests routed by hash slot)"),
    G("cluster_nodes_connected", "bulwark_cluster_nodes_connected",
      "Cluster nodes bulwark has connection pools to"),
    G("cluster_slots_served", "bulwark_cluster_slots_served",
      "Hash slots with a master in bulwark's slot map"),
    G("cluster_gates_closed", "bulwark_cluster_gates_closed",
      "Cluster nodes whose keyspace watch has its Bloom filter complete (gate closed)"),
    C("cluster_map_reads", "bulwark_cluster_map_reads_total",
      "Cluster slot maps read (CLUSTER SLOTS)"),
    C("cluster_moved", "bulwark_cluster_moved_total", "MOVED redirects followed"),
    C("upstream_db_switches", "bulwark_upstream_db_switches_total",
      "SELECTs bulwark sent to move a shared connection to a request's database"),
    {"upstream_last_error", METRICS_STATE, "bulwark_upstream_last_error_info", 0, "error", true,
     "Why the upstream connection last failed (empty: never)"},
    {"bloom_state", METRICS_STATE, "bulwark_bloom_state", 0, "state", false,
     "State of the Bloom filter gate"},
    G("bloom_keys_added", "bulwark_bloom_keys_added", "Keys added to the Bloom filter"),
    G("bloom_capacity", "bulwark_bloom_capacity_keys", "Keys the Bloom filter is sized for"),
    G("bloom_memory_bytes", "bulwark_bloom_memory_bytes", "Memory of the Bloom filter(s), bytes"),
    {"bloom_bits_per_key", METRICS_GAUGE, "bulwark_bloom_bytes_per_key", 0.125, NULL, false,
     "Bloom filter memory per key added, bytes (INFO gives bits)"},
    G("bloom_estimated_fpr", "bulwark_bloom_estimated_false_positive_ratio",
      "Estimated Bloom filter false positive rate (0..1)"),
    C("bloom_gated_reads", "bulwark_bloom_gated_reads_total",
      "Reads answered by the gate (keys definitely absent)"),
    C("bloom_passed_reads", "bulwark_bloom_passed_reads_total",
      "Reads the gate let pass (keys maybe present)"),
    C("bloom_passed_nil", "bulwark_bloom_passed_nil_total",
      "Reads that passed the gate and came back nil (false positives or deleted keys)"),
    C("bloom_rebuilds", "bulwark_bloom_rebuilds_total", "Bloom filter rebuilds"),
    {"bloom_last_rebuild_ms", METRICS_GAUGE, "bulwark_bloom_last_rebuild_duration_seconds", 0.001,
     NULL, false, "Duration of the last Bloom filter build, seconds"},
    G("bloom_scan_keys", "bulwark_bloom_scan_keys", "Keys seen by the current SCAN"),
    C("bloom_invalidations", "bulwark_bloom_invalidations_total",
      "Keys named by the keyspace watch"),
    {"bloom_tracking", METRICS_STATE, "bulwark_bloom_tracking", 0, "state", false,
     "State of the keyspace watch's client tracking"},
    {"bloom_watch_last_error", METRICS_STATE, "bulwark_bloom_watch_last_error_info", 0, "error",
     false, "Why the keyspace watch last failed (empty: never)"},
    G("hotkey_enabled", "bulwark_hotkey_enabled", "1 when the hot-key cache serves reads"),
    G("hotkey_cached_keys", "bulwark_hotkey_cached_keys", "Hot keys cached"),
    G("hotkey_cache_bytes", "bulwark_hotkey_cache_bytes", "Bytes of cached hot keys"),
    C("hotkey_hits", "bulwark_hotkey_hits_total", "GETs answered from the hot-key cache"),
    C("hotkey_misses", "bulwark_hotkey_misses_total", "GETs of hot keys not cached"),
    C("hotkey_refreshes", "bulwark_hotkey_refreshes_total", "Refresh-ahead fetches"),
    C("hotkey_invalidations", "bulwark_hotkey_invalidations_total",
      "Cached hot keys invalidated"),
    C("hotkey_lease_holds", "bulwark_hotkey_lease_holds_total",
      "GETs held by a lease until a hot key is refilled"),
    C("hotkey_lease_wakeups", "bulwark_hotkey_lease_wakeups_total",
      "Held GETs answered by the refill"),
    C("hotkey_lease_timeouts", "bulwark_hotkey_lease_timeouts_total",
      "Held GETs released by the lease's timeout"),
    C("hotkey_lease_spent", "bulwark_hotkey_lease_spent_total",
      "Leases that ran out with no refill (the key is not leased again until written)"),
    G("hotkey_databases", "bulwark_hotkey_databases",
      "Databases with a hot-key cache (keyspaces used)"),
};

#undef C
#undef G
#undef CN
#undef GN

/* The HTTP server. */
struct metrics {
    struct proxy *px;    /* borrowed */
    struct evhttp *http; /* the server (owned): listeners and connections */
};

/* ---- text helpers --------------------------------------------------------- */

/* A label value with \, " and newline escaped (exposition format 0.0.4). */
static void
metrics_add_escaped(struct evbuffer *out, const char *s, size_t len)
{
    for (size_t i = 0; i < len; i++) {
        if (s[i] == '\\' || s[i] == '"')
            evbuffer_add_printf(out, "\\%c", s[i]);
        else if (s[i] == '\n')
            evbuffer_add(out, "\\n", 2);
        else
            evbuffer_add(out, &s[i], 1);
    }
}

static const struct metrics_map *
metrics_find(const char *field, size_t len)
{
    for (size_t i = 0; i < BW_ARRAY_LEN(metrics_map); i++)
        if (strlen(metrics_map[i].field) == len && memcmp(metrics_map[i].field, field, len) == 0)
            return &metrics_map[i];
    return NULL;
}

/* "# HELP name text (INFO field, alias…)." and "# TYPE name type". */
static void
metrics_header(struct evbuffer *out, const struct metrics_map *m)
{
    evbuffer_add_printf(out, "# HELP %s %s (INFO %s", m->metric, m->help, m->field);
    for (size_t i = 0; i < BW_ARRAY_LEN(metrics_map); i++) {
        const struct metrics_map *a = &metrics_map[i];
        if ((a->kind == METRICS_ALIAS || a->kind == METRICS_NODE) &&
            strcmp(a->metric, m->metric) == 0)
            evbuffer_add_printf(out, ", %s", a->field);
    }
    evbuffer_add_printf(out, ").\n# TYPE %s %s\n", m->metric,
                        m->kind == METRICS_COUNTER ? "counter" : "gauge");
}

/* One INFO line "field:value" as its metric; node is the upstream's address. */
static void
metrics_info_line(struct evbuffer *out, const char *line, size_t len, char *node, size_t nodesz)
{
    const char *colon = memchr(line, ':', len);
    if (colon == NULL)
        return;
    const char *val = colon + 1;
    size_t flen = (size_t)(colon - line), vlen = len - flen - 1;
    const struct metrics_map *m = metrics_find(line, flen);
    if (m == NULL) {
        log_debug("metrics: INFO field '%.*s' has no metric", (int)flen, line);
        return;
    }
    if (m->kind == METRICS_NODE)
        snprintf(node, nodesz, "%.*s", (int)vlen, val);
    if (m->kind == METRICS_ALIAS || m->kind == METRICS_NODE)
        return;
    metrics_header(out, m);
    evbuffer_add_printf(out, "%s", m->metric);
    const char *sep = "{";
    if (m->node) {
        evbuffer_add(out, "{node=\"", 7);
        metrics_add_escaped(out, node, strlen(node));
        evbuffer_add(out, "\"", 1);
        sep = ",";
    }
    if (m->kind == METRICS_STATE) {
        evbuffer_add_printf(out, "%s%s=\"", sep, m->label);
        metrics_add_escaped(out, val, vlen);
        evbuffer_add(out, "\"} 1\n", 5);
        return;
    }
    char num[64];
    snprintf(num, sizeof(num), "%.*s", (int)BW_MIN(vlen, sizeof(num) - 1), val);
    double v = strtod(num, NULL) * (m->scale != 0 ? m->scale : 1);
    evbuffer_add_printf(out, "%s %.15g\n", m->node ? "}" : "", v);
}

/* Every field of bulwark's own INFO sections, through metrics_map. */
static void
metrics_render_info(struct proxy *px, struct evbuffer *out)
{
    struct evbuffer *text = evbuffer_new();
    char node[256] = "";
    local_info_text(px, text);
    evbuffer_add(text, "", 1); /* NUL: a C string from here */
    const char *p = (const char *)evbuffer_pullup(text, -1);
    while (*p != '\0') {
        size_t len = strcspn(p, "\r\n");
        if (len > 0 && p[0] != '#')
            metrics_info_line(out, p, len, node, sizeof(node));
        p += len;
        p += strspn(p, "\r\n");
    }
    evbuffer_free(text);
}

/* ---- histograms and per-command families ---------------------------------- */

/*
 * The buckets of h as name_bucket{labels,le=…}, name_sum, name_count: le at
 * the powers of two 2^lo … 2^hi (bin bounds, so the counts are exact) times
 * unit (1e-6 for µs -> s).
 */
static void
metrics_hist(struct evbuffer *out, const char *name, const char *labels,
             const struct cmdstats_hist *h, int lo, int hi, double unit)
{
    const char *comma = labels[0] != '\0' ? "," : "";
    for (int k = lo; k <= hi; k++) {
        uint64_t le = (uint64_t)1 << k;
        evbuffer_add_printf(out, "%s_bucket{%s%sle=\"%.*f\"} %llu\n", name, labels, comma,
                            unit < 1 ? 6 : 0, (double)le * unit,
                            (unsigned long long)cmdstats_hist_count_le(h, le));
    }
    evbuffer_add_printf(out, "%s_bucket{%s%sle=\"+Inf\"} %llu\n", name, labels, comma,
                        (unsigned long long)h->count);
    const char *open = labels[0] != '\0' ? "{" : "", *close = labels[0] != '\0' ? "}" : "";
    evbuffer_add_printf(out, "%s_sum%s%s%s %.15g\n%s_count%s%s%s %llu\n", name, open, labels,
                        close, (double)h->sum * unit, name, open, labels, close,
                        (unsigned long long)h->count);
}

static void
metrics_render_commands(struct proxy *px, struct evbuffer *out)
{
    const struct cmdstats *cs = &px->cmdstats;
    char labels[128];
    evbuffer_add_printf(out, "# HELP bulwark_requests_total Requests handled, by command and by "
                             "who answered (INFO bulwark_commandstats calls).\n"
                             "# TYPE bulwark_requests_total counter\n");
    for (uint32_t id = 0; id < cs->ncmds; id++)
        for (int b = 0; b < CMDSTATS_BY_N; b++)
            if (cs->cmds[id].calls[b] > 0)
                evbuffer_add_printf(out,
                                    "bulwark_requests_total{command=\"%s\",answered_by=\"%s\"} "
                                    "%llu\n",
                                    cs->cmds[id].name, cmdstats_by_names[b],
                                    (unsigned long long)cs->cmds[id].calls[b]);
    evbuffer_add_printf(out, "# HELP bulwark_request_duration_seconds Client-observed latency "
                             "through bulwark, from request parsed to reply moved to the "
                             "client's output, by command (INFO bulwark_latencystats).\n"
                             "# TYPE bulwark_request_duration_seconds histogram\n");
    for (uint32_t id = 0; id < cs->ncmds; id++) {
        if (cs->cmds[id].lat == NULL || cs->cmds[id].lat->count == 0)
            continue;
        snprintf(labels, sizeof(labels), "command=\"%s\"", cs->cmds[id].name);
        metrics_hist(out, "bulwark_request_duration_seconds", labels, cs->cmds[id].lat, 3, 24,
                     1e-6);
    }
}

static void
metrics_render_hists(struct proxy *px, struct evbuffer *out)
{
    char labels[300];
    struct evbuffer *node = evbuffer_new();
    metrics_add_escaped(node, px->cfg.upstream_host, strlen(px->cfg.upstream_host));
    snprintf(labels, sizeof(labels),
             strchr(px->cfg.upstream_host, ':') != NULL ? "node=\"[%.*s]:%d\""
                                                        : "node=\"%.*s:%d\"",
             (int)evbuffer_get_length(node), (const char *)evbuffer_pullup(node, -1),
             px->cfg.upstream_port);
    evbuffer_free(node);
    evbuffer_add_printf(out, "# HELP bulwark_upstream_request_duration_seconds Upstream round "
                             "trip of requests on the shared connections, by node.\n"
                             "# TYPE bulwark_upstream_request_duration_seconds histogram\n");
    metrics_hist(out, "bulwark_upstream_request_duration_seconds", labels,
                 &px->cmdstats.upstream_rtt, 3, 24, 1e-6);
    evbuffer_add_printf(out, "# HELP bulwark_batch_size_keys Keys per coalesced GET batch.\n"
                             "# TYPE bulwark_batch_size_keys histogram\n");
    metrics_hist(out, "bulwark_batch_size_keys", "", &px->cmdstats.batch_keys, 0, 14, 1);
}

/* ---- process_* (the Prometheus client libraries' standard set) ----------- */

/* Fields of /proc/self/stat after the command name: utime stime starttime vsize rss. */
static bool
metrics_proc_stat(unsigned long long *utime, unsigned long long *stime, unsigned long long *start,
                  unsigned long long *vsize, long long *rss)
{
    char buf[1024];
    FILE *f = fopen("/proc/self/stat", "r");
    if (f == NULL)
        return false;
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    fclose(f);
    buf[n] = '\0';
    const char *p = strrchr(buf, ')'); /* the name may hold spaces */
    if (p == NULL)
        return false;
    /* state(3) … utime(14) stime(15) … starttime(22) vsize(23) rss(24) */
    return sscanf(p + 2,
                  "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %*d "
                  "%*d %llu %llu %lld",
                  utime, stime, start, vsize, rss) == 5;
}

static unsigned long long
metrics_boot_time(void)
{
    char line[256];
    unsigned long long btime = 0;
    FILE *f = fopen("/proc/stat", "r");
    if (f == NULL)
        return 0;
    while (fgets(line, sizeof(line), f) != NULL)
        if (sscanf(line, "btime %llu", &btime) == 1)
            break;
    fclose(f);
    return btime;
}

static long
metrics_open_fds(void)
{
    DIR *d = opendir("/proc/self/fd");
    long n = 0;
    if (d == NULL)
        return -1;
    while (readdir(d) != NULL)
        n++;
    closedir(d);
    return n - 3; /* ".", ".." and the directory's own descriptor */
}

static void
metrics_render_process(struct evbuffer *out)
{
    unsigned long long ut, st, start, vsize;
    long long rss;
    double tck = (double)sysconf(_SC_CLK_TCK);
    struct rlimit rl;
    if (metrics_proc_stat(&ut, &st, &start, &vsize, &rss) && tck > 0) {
        evbuffer_add_printf(out,
                            "# HELP process_cpu_seconds_total Total user and system CPU time "
                            "spent in seconds.\n# TYPE process_cpu_seconds_total counter\n"
                            "process_cpu_seconds_total %.2f\n"
                            "# HELP process_virtual_memory_bytes Virtual memory size in bytes.\n"
                            "# TYPE process_virtual_memory_bytes gauge\n"
                            "process_virtual_memory_bytes %llu\n"
                            "# HELP process_resident_memory_bytes Resident memory size in "
                            "bytes.\n# TYPE process_resident_memory_bytes gauge\n"
                            "process_resident_memory_bytes %lld\n"
                            "# HELP process_start_time_seconds Start time of the process since "
                            "unix epoch in seconds.\n# TYPE process_start_time_seconds gauge\n"
                            "process_start_time_seconds %.2f\n",
                            (double)(ut + st) / tck, vsize,
                            rss * (long long)sysconf(_SC_PAGESIZE),
                            (double)metrics_boot_time() + (double)start / tck);
    }
    long fds = metrics_open_fds();
    if (fds >= 0)
        evbuffer_add_printf(out,
                            "# HELP process_open_fds Number of open file descriptors.\n"
                            "# TYPE process_open_fds gauge\nprocess_open_fds %ld\n",
                            fds);
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0)
        evbuffer_add_printf(out,
                            "# HELP process_max_fds Maximum number of open file descriptors.\n"
                            "# TYPE process_max_fds gauge\nprocess_max_fds %llu\n",
                            (unsigned long long)rl.rlim_cur);
}

void
metrics_render(struct proxy *px, struct evbuffer *out)
{
    metrics_render_info(px, out);
    metrics_render_commands(px, out);
    metrics_render_hists(px, out);
    metrics_render_process(out);
}

/* ---- HTTP ----------------------------------------------------------------- */

static void
metrics_http_cb(struct evhttp_request *req, void *arg)
{
    struct metrics *m = arg;
    enum evhttp_cmd_type t = evhttp_request_get_command(req);
    if (t != EVHTTP_REQ_GET && t != EVHTTP_REQ_HEAD) {
        evhttp_send_error(req, 405, "Method Not Allowed");
        return;
    }
    struct evbuffer *body = evbuffer_new();
    BW_ASSERT(body != NULL);
    metrics_render(m->px, body);
    evhttp_add_header(evhttp_request_get_output_headers(req), "Content-Type",
                      "text/plain; version=0.0.4; charset=utf-8");
    evhttp_send_reply(req, 200, "OK", body);
    evbuffer_free(body);
}

static void
metrics_http_other(struct evhttp_request *req, void *arg)
{
    (void)arg;
    evhttp_send_error(req, 404, "Not Found: try /metrics");
}

struct metrics *
metrics_new(struct proxy *px, char *err, size_t errlen)
{
    struct metrics *m = bw_calloc(1, sizeof(*m));
    m->px = px;
    m->http = evhttp_new(px->base);
    BW_ASSERT(m->http != NULL);
    evhttp_set_timeout(m->http, 10);
    evhttp_set_max_headers_size(m->http, 16384);
    evhttp_set_max_body_size(m->http, 4096);
    evhttp_set_cb(m->http, "/metrics", metrics_http_cb, m);
    evhttp_set_gencb(m->http, metrics_http_other, m);
    for (size_t i = 0; i < px->cfg.metrics_bind_count; i++) {
        const char *addr = px->cfg.metrics_bind[i];
        if (evhttp_bind_socket(m->http, addr, (ev_uint16_t)px->cfg.metrics_port) != 0) {
            snprintf(err, errlen, "metrics: cannot listen on %s:%d", addr, px->cfg.metrics_port);
            metrics_free(m);
            return NULL;
        }
        log_notice("metrics: Prometheus endpoint on http://%s:%d/metrics", addr,
                   px->cfg.metrics_port);
    }
    return m;
}

void
metrics_free(struct metrics *m)
{
    if (m == NULL)
        return;
    evhttp_free(m->http);
    bw_free(m);
}
