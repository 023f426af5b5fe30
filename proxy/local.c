/* local: commands answered by bulwark itself, and the refused ones. */
#include "proxy/local.h"
#include "proxy/local_client.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <event2/buffer.h>

#include "config/config.h"
#include "proxy/cfwd.h"
#include "proxy/cluster.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/encode.h"
#include "proxy/forward.h"
#include "proxy/hotkey.h"
#include "proxy/keyspace.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/reply.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/session.h"
#include "proxy/tracking.h"
#include "proxy/upstream.h"
#include "proxy/util.h"
#include "proxy/watch.h"

#define BULWARK_VERSION "0.1.0"

typedef bool local_fn(struct session *s, const struct resp_request *req);

/* A command bulwark answers: cmd_info.extra of LOCAL_HANDLER entries. */
struct local_handler {
    const char *name; /* command name, lowercase; "container|sub" for a subcommand */
    local_fn *fn;     /* returns false to forward the request as it came */
};



/* ---- connection commands -------------------------------------------------- */

static bool
local_ping(struct session *s, const struct resp_request *req)
{
    if (upstream_pool_script_inflight(s->px->pool))
        return false; /* Redis answers: -BUSY while a script runs too long, as it would */
    if (req->argc > 2)
        session_reply_error(s, "ERR wrong number of arguments for 'ping' command");
    else if (req->argc == 2)
        session_reply_bulk(s, req->argv[1].ptr, req->argv[1].len);
    else
        session_reply_status(s, "PONG");
    return true;
}

static bool
local_echo(struct session *s, const struct resp_request *req)
{
    if (upstream_pool_script_inflight(s->px->pool))
        return false; /* as PING */
    session_reply_bulk(s, req->argv[1].ptr, req->argv[1].len);
    return true;
}

static bool
local_quit(struct session *s, const struct resp_request *req)
{
    (void)req;
    session_reply_status(s, "OK");
    s->ops->close_after_reply(s);
    return true;
}

static bool
local_select(struct session *s, const struct resp_request *req)
{
    long long id;
    if (!resp_arg_ll(&req->argv[1], &id))
        session_reply_error(s, "ERR value is not an integer or out of range");
    else if (id < INT32_MIN || id > INT32_MAX)
        session_reply_error(s, "ERR value is out of range, value must between -2147483648 and "
                               "2147483647");
    else if (id != 0 && router_active(s->px)) /* Redis Cluster's own answer */
        session_reply_error(s, "ERR SELECT is not allowed in cluster mode");
    else if (id < 0 || id >= s->px->databases)
        session_reply_error(s, "ERR DB index is out of range");
    else {
        keyspace_select(s, (int)id);
        session_reply_status(s, "OK");
    }
    return true;
}

/* Check user/password against requirepass; replies on failure. */
static bool
local_check_password(struct session *s, const struct resp_arg *user, const struct resp_arg *pass)
{
    const char *want = s->px->cfg.requirepass;
    bool nopass = want == NULL || want[0] == '\0';
    bool user_ok = user == NULL || (user->len == 7 && memcmp(user->ptr, "default", 7) == 0);
    bool pass_ok = nopass ||
                   (pass->len == strlen(want) && memcmp(pass->ptr, want, pass->len) == 0);
    if (user_ok && pass_ok) {
        s->authenticated = true;
        return true;
    }
    session_reply_error(s, "WRONGPASS invalid username-password pair or user is disabled.");
    return false;
}

static bool
local_auth(struct session *s, const struct resp_request *req)
{
    const char *want = s->px->cfg.requirepass;
    if (req->argc > 3) {
        session_reply_error(s, "ERR syntax error");
        return true;
    }
    if (req->argc == 2 && (want == NULL || want[0] == '\0')) {
        session_reply_error(s,
                            "ERR AUTH <password> called without any password configured "
                            "for the default user. Are you sure your configuration is correct?");
        return true;
    }
    const struct resp_arg *user = req->argc == 3 ? &req->argv[1] : NULL;
    if (local_check_password(s, user, &req->argv[req->argc - 1]))
        session_reply_status(s, "OK");
    return true;
}


/* The HELLO reply: a map of 7 pairs (RESP2: a flat array), as Redis 7.0 sends it. */
static void
local_hello_reply(struct session *s)
{
    struct evbuffer *out = session_reply_target(s);
    const char *ver = s->px->upstream_version;
    /* in front of a cluster bulwark is a one-node cluster: Redis Cluster's "cluster" */
    const char *mode = router_active(s->px) ? "$7\r\ncluster" : "$10\r\nstandalone";
    enc_map_len(out, s->proto, 7);
    evbuffer_add_printf(out,
                        "$6\r\nserver\r\n$5\r\nredis\r\n$7\r\nversion\r\n$%zu\r\n%s\r\n"
                        "$5\r\nproto\r\n:%d\r\n$2\r\nid\r\n:%llu\r\n$4\r\nmode\r\n"
                        "%s\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
                        "$7\r\nmodules\r\n*0\r\n",
                        strlen(ver), ver, s->proto, (unsigned long long)s->id, mode);
}

static bool
local_hello(struct session *s, const struct resp_request *req)
{
    const struct resp_arg *user = NULL, *pass = NULL, *name = NULL;
    long long ver = 0; /* none named: the connection keeps its protocol */
    if (req->argc >= 2) {
        if (!resp_arg_ll(&req->argv[1], &ver)) {
            session_reply_error(s, "ERR Protocol version is not an integer or out of range");
            return true;
        }
        if (ver < 2 || ver > 3) {
            session_reply_error(s, "NOPROTO unsupported protocol version");
            return true;
        }
    }
    for (int j = 2; j < req->argc; j++) {
        int more = req->argc - 1 - j;
        if (resp_arg_is(&req->argv[j], "AUTH") && more >= 2) {
            user = &req->argv[j + 1];
            pass = &req->argv[j + 2];
            j += 2;
        } else if (resp_arg_is(&req->argv[j], "SETNAME") && more >= 1) {
            name = &req->argv[++j];
        } else {
            session_reply_error(s, "ERR Syntax error in HELLO option '%.*s'",
                                (int)BW_MIN(req->argv[j].len, 900), req->argv[j].ptr);
            return true;
        }
    }
    if (user != NULL && !local_check_password(s, user, pass))
        return true;
    if (!s->authenticated) {
        session_reply_error(s, "NOAUTH HELLO must be called with the client already "
                               "authenticated, otherwise the HELLO AUTH <user> <pass> option can "
                               "be used to authenticate the client and select the RESP protocol "
                               "version at the same time");
        return true;
    }
    if (name != NULL && !local_client_set_name(s, name))
        return true;
    if (ver != 0)
        keyspace_set_proto(s, (int)ver);
    local_hello_reply(s);
    return true;
}

static bool
local_reset(struct session *s, const struct resp_request *req)
{
    (void)req;
    session_reset_auth(s);
    keyspace_select(s, 0);
    keyspace_set_proto(s, 2);
    tracking_disable(s->px->tracking, s->id);
    session_reply_status(s, "RESET");
    return true;
}

/* EXEC/DISCARD can only ever be "without MULTI" while MULTI is refused. */
static bool
local_exec(struct session *s, const struct resp_request *req)
{
    session_reply_error(s, "ERR %s without MULTI",
                        resp_arg_is(&req->argv[0], "exec") ? "EXEC" : "DISCARD");
    return true;
}

static bool
local_unwatch(struct session *s, const struct resp_request *req)
{
    (void)req;
    session_reply_status(s, "OK");
    return true;
}

/* "# Upstream": the pool's lines, then the cluster's. */
static void
local_info_upstream(struct proxy *px, struct evbuffer *text)
{
    char cl[256];
    upstream_pool_info(px->pool, text);
    router_info(px, cl, sizeof(cl));
    evbuffer_add(text, cl, strlen(cl));
}

/* ---- in front of a Redis Cluster ----------------------------------------------- */

/*
 * CLUSTER … in front of a Redis Cluster: bulwark answers INFO, SLOTS, SHARDS,
 * NODES, MYID and KEYSLOT as a one-node cluster that owns every slot (the
 * address the client reached), so cluster-aware clients send everything
 * here and never see MOVED; COUNTKEYSINSLOT and GETKEYSINSLOT go to the
 * slot's master; the rest to the master of slot 0. In front of one Redis:
 * forwarded (Redis says cluster support is disabled).
 */
static bool
local_cluster(struct session *s, const struct resp_request *req)
{
    if (!router_active(s->px))
        return false;
    const char *argv[8];
    size_t lens[8];
    int argc = BW_MIN(req->argc, 8);
    for (int i = 0; i < argc; i++) {
        argv[i] = req->argv[i].ptr;
        lens[i] = req->argv[i].len;
    }
    char ip[64];
    size_t iplen = strcspn(s->laddr, " ");
    const char *colon = memrchr(s->laddr, ':', iplen);
    snprintf(ip, sizeof(ip), "%.*s", (int)(colon != NULL ? colon - s->laddr : 0), s->laddr);
    struct cluster_self self;
    cluster_self_init(&self, ip, s->px->cfg.port, s->laddr, strlen(s->laddr));
    struct cluster_out o = {0};
    if (cluster_command(&o, &self, s->proto, argc, argv, lens) == CLUSTER_CMD_DONE) {
        session_reply_raw(s, o.buf, o.len);
        cluster_out_deinit(&o);
        return true;
    }
    cluster_out_deinit(&o);
    long long slot;
    if ((resp_arg_is(&req->argv[1], "countkeysinslot") ||
         resp_arg_is(&req->argv[1], "getkeysinslot")) &&
        resp_arg_ll(&req->argv[2], &slot) && slot >= 0 && slot < CLUSTER_SLOTS)
        return cfwd_to_slot(s, req, (unsigned)slot), true;
    return false;
}

/* READONLY, READWRITE, ASKING: bulwark routes to masters itself; +OK. */
static bool
local_cluster_noop(struct session *s, const struct resp_request *req)
{
    (void)req;
    if (!router_active(s->px))
        return false;
    session_reply_status(s, "OK");
    return true;
}

/* ---- requests bulwark forwards for itself ------------------------------------- */

/*
 * cmd (len bytes of RESP multibulk) through filter: to the upstream, or in
 * front of a Redis Cluster where `to` says (cfwd.h).
 */
static void
local_send(struct session *s, const char *cmd, size_t len, enum cfwd_to to,
           slot_filter_fn *filter, void *data)
{
    if (router_active(s->px))
        cfwd_send_filtered(s, cmd, len, to, filter, data);
    else
        fwd_send(s, cmd, len, filter, data);
}

/* local_send() of req (an inline request encoded as multibulk). */
static void
local_send_req(struct session *s, const struct resp_request *req, enum cfwd_to to,
               slot_filter_fn *filter, void *data)
{
    if (req->raw != NULL) {
        local_send(s, req->raw, req->raw_len, to, filter, data);
        return;
    }
    struct evbuffer *b = evbuffer_new();
    fwd_encode(req, b);
    size_t len = evbuffer_get_length(b);
    local_send(s, (const char *)evbuffer_pullup(b, -1), len, to, filter, data);
    evbuffer_free(b);
}

/* ---- INFO ------------------------------------------------------------------- */

/* bulwark's own INFO sections wanted by a request. */
struct local_info_want {
    bool proxy;    /* "# Proxy" */
    bool upstream; /* "# Upstream" */
    bool bloom;    /* "# Bloom" */
    bool hotkeys;  /* "# Hotkeys" */
    bool cmdstats; /* "# Bulwark_commandstats" (all, everything, commandstats) */
    bool latstats; /* "# Bulwark_latencystats" (all, everything, latencystats) */
    bool redis;    /* anything the upstream must answer */
};

static void
local_info_parse(const struct resp_request *req, struct local_info_want *w)
{
    memset(w, 0, sizeof(*w));
    if (req->argc == 1) {
        w->proxy = w->upstream = w->bloom = w->hotkeys = w->redis = true;
        return;
    }
    for (int i = 1; i < req->argc; i++) {
        const struct resp_arg *a = &req->argv[i];
        bool all = resp_arg_is(a, "all") || resp_arg_is(a, "everything");
        if (resp_arg_is(a, "proxy")) {
            w->proxy = true;
        } else if (resp_arg_is(a, "upstream")) {
            w->upstream = true;
        } else if (resp_arg_is(a, "bloom")) {
            w->bloom = true;
        } else if (resp_arg_is(a, "hotkeys")) {
            w->hotkeys = true;
        } else if (resp_arg_is(a, "bulwark_commandstats")) {
            w->cmdstats = true;
        } else if (resp_arg_is(a, "bulwark_latencystats")) {
            w->latstats = true;
        } else {
            if (resp_arg_is(a, "default") || all)
                w->proxy = w->upstream = w->bloom = w->hotkeys = true;
            /* Redis's own sections stay as Redis wrote them; bulwark's view follows */
            w->cmdstats |= all || resp_arg_is(a, "commandstats");
            w->latstats |= all || resp_arg_is(a, "latencystats");
            w->redis = true;
        }
    }
}

static void
local_info_proxy(struct proxy *px, struct evbuffer *out)
{
    const struct stats *s = &px->stats;
    uint64_t up_s = (bw_now_ms() - s->start_ms) / 1000;
    uint64_t pin_now, pin_peak, pin_refused;
    upstream_pool_pinned_stats(px->pool, &pin_now, &pin_peak, &pin_refused);
    evbuffer_add_printf(out,
                        "# Proxy\r\n"
                        "bulwark_version:%s\r\n"
                        "process_id:%d\r\n"
                        "tcp_port:%d\r\n"
                        "uptime_in_seconds:%llu\r\n"
                        "uptime_in_days:%llu\r\n"
                        "connected_clients:%llu\r\n"
                        "maxclients:%d\r\n"
                        "total_connections_received:%llu\r\n"
                        "rejected_connections:%llu\r\n"
                        "total_commands_processed:%llu\r\n"
                        "instantaneous_ops_per_sec:%llu\r\n"
                        "total_net_input_bytes:%llu\r\n"
                        "total_net_output_bytes:%llu\r\n"
                        "local_replies:%llu\r\n"
                        "forwarded_requests:%llu\r\n"
                        "upstream_error_replies:%llu\r\n"
                        "protocol_errors:%llu\r\n"
                        "ttl_jittered_writes:%llu\r\n"
                        "ttl_jitter_added_ms_total:%llu\r\n"
                        "batch_batches:%llu\r\n"
                        "batch_keys:%llu\r\n"
                        "batch_max_keys_seen:%llu\r\n"
                        "batch_dedup_saved:%llu\r\n"
                        "batch_rechecks:%llu\r\n"
                        "pinned_connections:%llu\r\n"
                        "pinned_peak:%llu\r\n"
                        "pinned_refused:%llu\r\n",
                        BULWARK_VERSION, (int)getpid(), px->cfg.port, (unsigned long long)up_s,
                        (unsigned long long)(up_s / 86400),
                        (unsigned long long)s->connected_clients, px->cfg.maxclients,
                        (unsigned long long)s->total_connections,
                        (unsigned long long)s->rejected_connections,
                        (unsigned long long)s->total_commands,
                        (unsigned long long)stats_ops_per_sec(s),
                        (unsigned long long)s->net_input_bytes,
                        (unsigned long long)s->net_output_bytes,
                        (unsigned long long)(s->total_commands - s->forwarded),
                        (unsigned long long)s->forwarded, (unsigned long long)s->upstream_errors,
                        (unsigned long long)s->protocol_errors,
                        (unsigned long long)s->ttl_jittered_writes,
                        (unsigned long long)s->ttl_jitter_added_ms,
                        (unsigned long long)s->batch_batches, (unsigned long long)s->batch_keys,
                        (unsigned long long)s->batch_max_keys_seen,
                        (unsigned long long)s->batch_dedup_saved,
                        (unsigned long long)s->batch_rechecks, (unsigned long long)pin_now,
                        (unsigned long long)pin_peak, (unsigned long long)pin_refused);
    evbuffer_add_printf(out, "pinned_waiting:%llu\r\n",
                        (unsigned long long)upstream_pool_pinned_waiting(px->pool));
    evbuffer_add_printf(
        out, "client_output_limit_closed:%llu\r\nclient_recent_max_output_buffer:%zu\r\n",
        (unsigned long long)s->client_output_limit_closed, session_max_output(px));
}

/* "# Bulwark_commandstats": Redis's cmdstat_ lines of the requests bulwark handled. */
static void
local_info_cmdstats(struct proxy *px, struct evbuffer *out)
{
    char line[256];
    evbuffer_add_printf(out, "# Bulwark_commandstats\r\n");
    for (uint32_t id = 0; id < px->cmdstats.ncmds; id++)
        if (cmdstats_format_commandstat(&px->cmdstats, id, line, sizeof(line)))
            evbuffer_add_printf(out, "%s\r\n", line);
}

/* "# Bulwark_latencystats": Redis 7's latency_percentiles_usec_ lines. */
static void
local_info_latstats(struct proxy *px, struct evbuffer *out)
{
    char line[256];
    evbuffer_add_printf(out, "# Bulwark_latencystats\r\n");
    for (uint32_t id = 0; id < px->cmdstats.ncmds; id++)
        if (cmdstats_format_latencystat(&px->cmdstats, id, line, sizeof(line)))
            evbuffer_add_printf(out, "%s\r\n", line);
}

/* Append bulwark's wanted sections to text, Redis's blank line between sections. */
static void
local_info_own(struct proxy *px, const struct local_info_want *w, struct evbuffer *text)
{
    const bool want[] = {w->proxy, w->upstream, w->bloom, w->hotkeys, w->cmdstats, w->latstats};
    for (size_t i = 0; i < BW_ARRAY_LEN(want); i++) {
        if (!want[i])
            continue;
        if (evbuffer_get_length(text) > 0)
            evbuffer_add(text, "\r\n", 2);
        if (i == 0)
            local_info_proxy(px, text);
        else if (i == 1)
            local_info_upstream(px, text);
        else if (i == 2)
            watch_info(px->watch, text);
        else if (i == 3)
            keyspace_info_hotkeys(px, text);
        else if (i == 4)
            local_info_cmdstats(px, text);
        else
            local_info_latstats(px, text);
    }
}

void
local_info_text(struct proxy *px, struct evbuffer *out)
{
    struct local_info_want w = {.proxy = true, .upstream = true, .bloom = true, .hotkeys = true};
    local_info_own(px, &w, out);
}

/*
 * Redis's INFO text (len bytes at s) into out, with its CLIENT TRACKING
 * fields (tracking_clients in # Clients, tracking_total_* in # Stats)
 * holding bulwark's figures: bulwark serves tracking to its clients, and
 * Redis's count only bulwark's own watch.
 */
static void
local_info_upstream_text(struct proxy *px, const char *s, size_t len, struct evbuffer *out)
{
    struct tracking_counts tc;
    tracking_counts(px->tracking, &tc);
    static const char *const names[] = {"tracking_clients:", "tracking_total_keys:",
                                        "tracking_total_items:", "tracking_total_prefixes:"};
    const uint64_t vals[] = {tc.clients, tc.keys, tc.items, tc.prefixes};
    const char *end = s + len;
    while (s < end) {
        const char *nl = memchr(s, '\n', (size_t)(end - s));
        const char *next = nl != NULL ? nl + 1 : end;
        size_t i = 0;
        for (; i < BW_ARRAY_LEN(names); i++) {
            size_t nlen = strlen(names[i]);
            if ((size_t)(next - s) > nlen && memcmp(s, names[i], nlen) == 0) {
                evbuffer_add_printf(out, "%s%llu\r\n", names[i], (unsigned long long)vals[i]);
                break;
            }
        }
        if (i == BW_ARRAY_LEN(names))
            evbuffer_add(out, s, (size_t)(next - s));
        s = next;
    }
}

/* INFO filter: the upstream's sections, then bulwark's. */
static void
local_info_filter(struct session *s, struct evbuffer *reply, size_t len, const char *err,
                  struct evbuffer *out, void *data)
{
    struct local_info_want *w = data;
    if (s != NULL && reply == NULL && !w->proxy && !w->upstream && !w->bloom && !w->hotkeys &&
        !w->cmdstats && !w->latstats) {
        evbuffer_add(out, err, strlen(err)); /* only Redis's sections asked: say it failed */
        bw_free(w);
        return;
    }
    if (s != NULL) {
        struct evbuffer *text = evbuffer_new();
        struct reply_node *n = NULL;
        if (reply != NULL)
            n = reply_parse((const char *)evbuffer_pullup(reply, (ev_ssize_t)len), len);
        if (n != NULL && n->type == '$' && !n->nil)
            local_info_upstream_text(s->px, n->str, n->len, text);
        else if (n != NULL && n->type == '=' && n->len >= 4) /* RESP3: "txt:…" */
            local_info_upstream_text(s->px, n->str + 4, n->len - 4, text);
        reply_node_free(n);
        local_info_own(s->px, w, text);
        enc_verbatim(out, s->proto, text);
        evbuffer_free(text);
    }
    bw_free(w);
}

static bool
local_info(struct session *s, const struct resp_request *req)
{
    struct local_info_want *w = bw_malloc(sizeof(*w));
    local_info_parse(req, w);
    if (w->redis) {
        local_send_req(s, req, CFWD_TO_ALL_INFO, local_info_filter, w);
        return true;
    }
    struct evbuffer *text = evbuffer_new();
    local_info_own(s->px, w, text);
    enc_verbatim(session_reply_target(s), s->proto, text);
    evbuffer_free(text);
    bw_free(w);
    return true;
}

/* ---- CONFIG ----------------------------------------------------------------- */

/* Name/value pairs of bulwark's own directives in one CONFIG SET. */
struct local_config_set {
    int n;         /* pairs */
    char **names;  /* owned, n entries */
    char **values; /* owned, n entries */
};

/* Reply array under construction for CONFIG GET. */
struct local_config_get {
    struct evbuffer *items; /* encoded bulk strings (owned) */
    long count;             /* bulk strings in items */
    char **seen;            /* own names emitted (borrowed from the cfg table) */
    int nseen;              /* entries in seen */
    int npatterns;          /* patterns */
    char **patterns;        /* owned, NUL-terminated copies */
};

static bool
local_config_denied(struct proxy *px)
{
    for (size_t i = 0; i < px->cfg.deny_commands_count; i++)
        if (strcasecmp(px->cfg.deny_commands[i], "config") == 0)
            return true;
    return false;
}

static void
local_add_bulk(struct evbuffer *out, const char *s, size_t len)
{
    evbuffer_add_printf(out, "$%zu\r\n", len);
    evbuffer_add(out, s, len);
    evbuffer_add(out, "\r\n", 2);
}

static void
local_config_emit(void *ud, const char *name, const char *value)
{
    struct local_config_get *g = ud;
    for (int i = 0; i < g->nseen; i++)
        if (strcmp(g->seen[i], name) == 0)
            return;
    g->seen = bw_realloc(g->seen, sizeof(*g->seen) * (size_t)(g->nseen + 1));
    g->seen[g->nseen++] = (char *)name;
    local_add_bulk(g->items, name, strlen(name));
    local_add_bulk(g->items, value, strlen(value));
    g->count += 2;
}

static void
local_config_get_free(struct local_config_get *g)
{
    for (int i = 0; i < g->npatterns; i++)
        bw_free(g->patterns[i]);
    bw_free(g->patterns);
    bw_free(g->seen);
    evbuffer_free(g->items);
    bw_free(g);
}

/* Add bulwark's matches and write the reply to out: a map (RESP2: a flat array). */
static void
local_config_get_finish(struct session *s, struct local_config_get *g, struct evbuffer *out)
{
    for (int i = 0; i < g->npatterns; i++)
        cfg_get(&s->px->cfg, g->patterns[i], local_config_emit, g);
    enc_map_len(out, s->proto, (size_t)g->count / 2);
    evbuffer_add_buffer(out, g->items);
}

/* CONFIG GET filter: the upstream's pairs minus bulwark's names, then bulwark's. */
static void
local_config_get_filter(struct session *s, struct evbuffer *reply, size_t len, const char *err,
                        struct evbuffer *out, void *data)
{
    struct local_config_get *g = data;
    if (s != NULL) {
        struct reply_node *n = NULL;
        if (reply != NULL)
            n = reply_parse((const char *)evbuffer_pullup(reply, (ev_ssize_t)len), len);
        if (n == NULL || (n->type != '*' && n->type != '%') || n->nil) {
            if (n != NULL)
                evbuffer_remove_buffer(reply, out, len); /* the upstream's error */
            else
                evbuffer_add(out, err, strlen(err));
            reply_node_free(n);
            local_config_get_free(g);
            return;
        }
        for (size_t i = 0; i + 1 < n->nelems; i += 2) {
            char name[256];
            snprintf(name, sizeof(name), "%.*s", (int)BW_MIN(n->elems[i].len, 255),
                     n->elems[i].str);
            if (cfg_is_own(name))
                continue;
            local_add_bulk(g->items, n->elems[i].str, n->elems[i].len);
            local_add_bulk(g->items, n->elems[i + 1].str, n->elems[i + 1].len);
            g->count += 2;
        }
        reply_node_free(n);
        local_config_get_finish(s, g, out);
    }
    local_config_get_free(g);
}

static bool
local_config_get(struct session *s, const struct resp_request *req)
{
    struct proxy *px = s->px;
    struct local_config_get *g = bw_calloc(1, sizeof(*g));
    bool upstream = false;
    g->items = evbuffer_new();
    g->npatterns = req->argc - 2;
    g->patterns = bw_calloc((size_t)g->npatterns, sizeof(char *));
    for (int i = 0; i < g->npatterns; i++) {
        g->patterns[i] = bw_strndup(req->argv[i + 2].ptr, req->argv[i + 2].len);
        if (strpbrk(g->patterns[i], "*?[\\") != NULL || !cfg_is_own(g->patterns[i]))
            upstream = true;
    }
    if (upstream && !local_config_denied(px)) {
        local_send_req(s, req, CFWD_TO_ONE, local_config_get_filter, g);
        return true;
    }
    local_config_get_finish(s, g, session_reply_target(s));
    local_config_get_free(g);
    return true;
}

static void
local_config_set_free(struct local_config_set *s)
{
    for (int i = 0; i < s->n; i++) {
        bw_free(s->names[i]);
        bw_free(s->values[i]);
    }
    bw_free(s->names);
    bw_free(s->values);
    bw_free(s);
}

/* Apply validated own pairs to the live configuration and its users. */
static void
local_config_apply(struct proxy *px, const struct local_config_set *s)
{
    char err[256];
    for (int i = 0; i < s->n; i++)
        if (!cfg_is_same(&px->cfg, s->names[i], s->values[i]) &&
            cfg_set(&px->cfg, s->names[i], s->values[i], err, sizeof(err)) != 0)
            log_warn("CONFIG SET %s failed after validation: %s", s->names[i], err);
    log_current_level = (enum log_level)px->cfg.loglevel;
}

static void
local_config_set_filter(struct session *s, struct evbuffer *reply, size_t len, const char *err,
                        struct evbuffer *out, void *data)
{
    struct local_config_set *cs = data;
    if (s != NULL) {
        const char *p = reply != NULL ? (const char *)evbuffer_pullup(reply, 1) : NULL;
        if (p != NULL && p[0] == '+') {
            local_config_apply(s->px, cs);
            /* busy-reply-threshold (lua-time-limit) may have changed */
            upstream_pool_refresh_busy_threshold(s->px->pool);
            router_refresh_busy_threshold(s->px); /* every master's pool, in a cluster */
        }
        if (reply != NULL)
            evbuffer_remove_buffer(reply, out, len);
        else
            evbuffer_add(out, err, strlen(err));
    }
    local_config_set_free(cs);
}

int
local_fd_reserve(const struct cfg *cfg)
{
    return 32 + cfg->upstream_connections + 2 + cfg->upstream_pinned_max;
}

/*
 * CONFIG SET maxclients as Redis 7.0 updateMaxclients(): the open files
 * limit is raised to cover it if the system lets us; else refused with
 * Redis's text and the number that fits.
 */
static bool
local_maxclients_fit(struct proxy *px, int want, char *err, size_t errlen)
{
    int fit = bw_fd_fit_clients(want, local_fd_reserve(&px->cfg));
    if (fit >= want)
        return true;
    snprintf(err, errlen,
             "The operating system is not able to handle the specified number of "
             "clients, try with %d",
             fit);
    return false;
}

/*
 * Split CONFIG SET pairs into bulwark's (validated on a scratch cfg, kept in
 * *own) and the rest (encoded into fwd with "CONFIG SET" in front). Replies
 * and returns false on an invalid or duplicate own parameter.
 */
static bool
local_config_split(struct session *s, const struct resp_request *req,
                   struct local_config_set *own, struct evbuffer *fwd_args, int *nfwd)
{
    struct cfg scratch;
    char err[256];
    bool ok = true;
    cfg_init(&scratch);
    for (int i = 2; ok && i + 1 < req->argc; i += 2) {
        char *name = bw_strndup(req->argv[i].ptr, req->argv[i].len);
        char *value = bw_strndup(req->argv[i + 1].ptr, req->argv[i + 1].len);
        if (!cfg_is_own(name) || (cfg_is_shared(name) && !local_config_denied(s->px))) {
            /* Redis's; a shared one (client-output-buffer-limit) is Redis's
             * and bulwark's: validated here too, applied when Redis says OK */
            local_add_bulk(fwd_args, req->argv[i].ptr, req->argv[i].len);
            local_add_bulk(fwd_args, req->argv[i + 1].ptr, req->argv[i + 1].len);
            *nfwd += 2;
            if (!cfg_is_own(name)) {
                bw_free(name);
                bw_free(value);
                continue;
            }
        }
        for (int j = 0; j < own->n; j++)
            if (strcasecmp(own->names[j], name) == 0)
                ok = false, snprintf(err, sizeof(err), "duplicate parameter");
        if (ok && cfg_set(&scratch, name, value, err, sizeof(err)) != 0 &&
            !cfg_is_same(&s->px->cfg, name, value))
            ok = false;
        if (ok && strcasecmp(name, "maxclients") == 0)
            ok = local_maxclients_fit(s->px, scratch.maxclients, err, sizeof(err));
        if (!ok)
            session_reply_error(s,
                                "ERR CONFIG SET failed (possibly related to argument '%s') - %s",
                                name, err);
        own->names = bw_realloc(own->names, sizeof(char *) * (size_t)(own->n + 1));
        own->values = bw_realloc(own->values, sizeof(char *) * (size_t)(own->n + 1));
        own->names[own->n] = name;
        own->values[own->n++] = value;
    }
    cfg_deinit(&scratch);
    return ok;
}

static bool
local_config_set(struct session *s, const struct resp_request *req)
{
    struct proxy *px = s->px;
    if ((req->argc - 2) % 2 != 0) {
        session_reply_error(s, "ERR wrong number of arguments for 'config|set' command");
        return true;
    }
    struct local_config_set *own = bw_calloc(1, sizeof(*own));
    struct evbuffer *fwd = evbuffer_new();
    int nfwd = 0;
    if (!local_config_split(s, req, own, fwd, &nfwd)) {
        local_config_set_free(own);
    } else if (nfwd == 0) {
        local_config_apply(px, own);
        local_config_set_free(own);
        session_reply_status(s, "OK");
    } else if (local_config_denied(px)) {
        local_config_set_free(own);
        session_reply_error(s, "ERR CONFIG SET of Redis parameters is disabled in bulwark "
                               "(deny-commands CONFIG)");
    } else {
        struct evbuffer *cmd = evbuffer_new(); /* the client's own words, its case kept */
        evbuffer_add_printf(cmd, "*%d\r\n", nfwd + 2);
        local_add_bulk(cmd, req->argv[0].ptr, req->argv[0].len);
        local_add_bulk(cmd, req->argv[1].ptr, req->argv[1].len);
        evbuffer_add_buffer(cmd, fwd);
        size_t n = evbuffer_get_length(cmd);
        local_send(s, (const char *)evbuffer_pullup(cmd, -1), n, CFWD_TO_ALL_OK,
                   local_config_set_filter, own);
        evbuffer_free(cmd);
    }
    evbuffer_free(fwd);
    return true;
}

static bool
local_config_resetstat(struct session *s, const struct resp_request *req)
{
    struct proxy *px = s->px;
    stats_reset(&px->stats);
    cmdstats_reset(&px->cmdstats);
    upstream_pool_reset_stats(px->pool);
    if (local_config_denied(px)) {
        session_reply_status(s, "OK");
        return true;
    }
    (void)req;
    return false; /* forward: Redis resets its own */
}

/* CONFIG REWRITE / HELP …: forwarded unless CONFIG is denied. */
static bool
local_config_other(struct session *s, const struct resp_request *req)
{
    if (!local_config_denied(s->px))
        return false;
    session_reply_error(s,
                        "ERR CONFIG %.*s of Redis is disabled in bulwark (deny-commands CONFIG)",
                        (int)BW_MIN(req->argv[1].len, 32), req->argv[1].ptr);
    return true;
}

/* ---- BULWARK ------------------------------------------------------------------ */

void
local_bulwark(struct session *s, const struct resp_request *req)
{
    long long n = 10;
    if (req->argc >= 2 && resp_arg_is(&req->argv[1], "hotkeys") && req->argc <= 3) {
        if (req->argc == 3 && (!resp_arg_ll(&req->argv[2], &n) || n < 0)) {
            session_reply_error(s, "ERR value is not an integer or out of range");
            return;
        }
        hotkey_top_reply(s->ks->hotkey, (size_t)n, session_reply_target(s));
        return;
    }
    if (req->argc == 2 && resp_arg_is(&req->argv[1], "help")) {
        static const char help[] =
            "*3\r\n+BULWARK <subcommand>. Subcommands are:\r\n"
            "+HOTKEYS [<count>]: the hottest keys with their estimated reads per second.\r\n"
            "+HELP: this text.\r\n";
        session_reply_raw(s, help, sizeof(help) - 1);
        return;
    }
    if (req->argc < 2)
        session_reply_error(s, "ERR wrong number of arguments for 'bulwark' command");
    else
        session_reply_error(s, "ERR unknown subcommand '%.*s'. Try BULWARK HELP.",
                            (int)BW_MIN(req->argv[1].len, 128), req->argv[1].ptr);
}

/* ---- policy tables ---------------------------------------------------------- */

static const struct local_handler local_handlers[] = {
    {"ping", local_ping},
    {"echo", local_echo},
    {"quit", local_quit},
    {"select", local_select},
    {"hello", local_hello},
    {"auth", local_auth},
    {"reset", local_reset},
    {"exec", local_exec},
    {"discard", local_exec},
    {"unwatch", local_unwatch},
    {"info", local_info},
    {"cluster|info", local_cluster},
    {"cluster|slots", local_cluster},
    {"cluster|shards", local_cluster},
    {"cluster|nodes", local_cluster},
    {"cluster|myid", local_cluster},
    {"cluster|keyslot", local_cluster},
    {"cluster|countkeysinslot", local_cluster},
    {"cluster|getkeysinslot", local_cluster},
    {"readonly", local_cluster_noop},
    {"readwrite", local_cluster_noop},
    {"asking", local_cluster_noop},
    {"client|setname", local_client_setname},
    {"client|getname", local_client_getname},
    {"client|id", local_client_id},
    {"client|info", local_client_info},
    {"client|list", local_client_list},
    {"client|kill", local_client_kill},
    {"client|unblock", local_client_unblock},
    {"client|tracking", local_client_tracking},
    {"client|caching", local_client_tracking},
    {"client|getredir", local_client_tracking},
    {"client|trackinginfo", local_client_tracking},
    {"config|get", local_config_get},
    {"config|set", local_config_set},
    {"config|resetstat", local_config_resetstat},
    {"config|rewrite", local_config_other},
    {"config|help", local_config_other},
};

/* Refused commands and why (cmd_info.extra of LOCAL_REFUSED entries). */
struct local_refusal {
    const char *name;   /* lowercase; "container|sub" for a subcommand */
    const char *reason; /* completes "ERR <NAME> is not supported by bulwark…" */
};

#define LOCAL_NOPROXY ": it cannot work through a proxy"

static const struct local_refusal local_refusals[] = {
    {"client|no-evict", LOCAL_NOPROXY},
    {"client|no-touch", LOCAL_NOPROXY},
    {"sync", LOCAL_NOPROXY},
    {"psync", LOCAL_NOPROXY},
    {"replicaof", LOCAL_NOPROXY},
    {"slaveof", LOCAL_NOPROXY},
    /* REPLCONF ACK/GETACK get no reply at all: on a shared connection that
     * would hand every later reply to the wrong client. */
    {"replconf", LOCAL_NOPROXY},
};

void
local_apply_policies(struct proxy *px, struct cmd_table *t)
{
    (void)px;
    for (size_t i = 0; i < BW_ARRAY_LEN(local_handlers); i++) {
        struct cmd_info *ci = cmd_lookup_path(t, local_handlers[i].name);
        if (ci != NULL) {
            ci->policy = LOCAL_HANDLER;
            ci->extra = &local_handlers[i];
        }
    }
    for (size_t i = 0; i < BW_ARRAY_LEN(local_refusals); i++) {
        struct cmd_info *ci = cmd_lookup_path(t, local_refusals[i].name);
        if (ci != NULL) {
            ci->policy = LOCAL_REFUSED;
            ci->extra = &local_refusals[i];
        }
    }
}

bool
local_dispatch(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    if (ci->policy == LOCAL_HANDLER) {
        const struct local_handler *h = ci->extra;
        return h->fn(s, req);
    }
    if (ci->policy == LOCAL_REFUSED) {
        char err[256];
        local_refusal_error(ci, err, sizeof(err));
        session_reply_raw(s, err, strlen(err));
        return true;
    }
    return false;
}

void
local_refusal_error(const struct cmd_info *ci, char *out, size_t size)
{
    const struct local_refusal *r = ci->extra;
    char upper[64];
    size_t n = 0;
    for (const char *p = r->name; *p != '\0' && n + 1 < sizeof(upper); p++)
        upper[n++] = *p == '|' ? ' ' : (char)toupper((unsigned char)*p);
    upper[n] = '\0';
    snprintf(out, size, "-ERR %s is not supported by bulwark%s\r\n", upper, r->reason);
}
