/*
 * router: slot map and per-master connection pools (see router.h).
 */
#include "proxy/router.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/batch.h"
#include "proxy/cluster.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/upstream.h"
#include "proxy/util.h"
#include "proxy/watch.h"

/* One node bulwark has connections to. */
struct router_node {
    char host[CLUSTER_HOST_MAX + 1]; /* as the map names it */
    int port;
    struct upstream_pool *pool; /* owned; the seed's is px->pool (borrowed) */
    struct watch *watch;        /* its keyspace watch and Bloom filter (owned; the
                                        seed's is px->watch, borrowed) */
    struct batch **batches;     /* GET batchers per shared connection (owned, made on
                                        first use): RESP2 ones, then RESP3 ones */
};

struct router {
    struct cluster_map *map;   /* the slot map (owned) */
    struct router_node *nodes; /* every node connected so far (owned array) */
    size_t nnodes, cap;
    int16_t slot_node[CLUSTER_SLOTS]; /* slot -> index in nodes of its master, -1 none */
    int *masters;                     /* indexes in nodes of the masters slot_node names, in
                                        slot order, each once (owned): router_masters() and
                                        router_watches() run per request (the gate) */
    size_t nmasters;
    bool refreshing;          /* a CLUSTER SLOTS is in flight */
    bool refresh_due;         /* read the map again at the next cron */
    uint64_t last_refresh_ms; /* when the map was last read, monotonic ms */
    uint64_t refreshes;       /* maps read */
    uint64_t moved;           /* MOVED replies followed */
};

static const char router_cmd_slots[] = "*2\r\n$7\r\nCLUSTER\r\n$5\r\nSLOTS\r\n";

bool
router_active(const struct proxy *px)
{
    return px->router != NULL;
}

/* The node at host:port, connected when new. */
static int
router_node_at(struct proxy *px, const char *host, int port)
{
    struct router *r = px->router;
    for (size_t i = 0; i < r->nnodes; i++)
        if (r->nodes[i].port == port && strcmp(r->nodes[i].host, host) == 0)
            return (int)i;
    if (r->nnodes == r->cap) {
        r->cap = BW_MAX(r->cap * 2, (size_t)8);
        r->nodes = bw_realloc(r->nodes, r->cap * sizeof(*r->nodes));
    }
    struct router_node *n = &r->nodes[r->nnodes];
    memset(n, 0, sizeof(*n));
    snprintf(n->host, sizeof(n->host), "%s", host);
    n->port = port;
    bool seed = port == px->cfg.upstream_port && strcmp(host, px->cfg.upstream_host) == 0;
    n->pool = seed ? px->pool : upstream_pool_new_at(px, host, port, NULL);
    n->watch = seed ? px->watch : watch_new_at(px, host, port);
    if (!seed)
        watch_copy_listener(n->watch, px->watch);
    log_verbose("cluster: connections to node %s:%d", host, port);
    return (int)r->nnodes++;
}

/* masters from slot_node (after every change of slot_node). */
static void
router_list_masters(struct router *r)
{
    bool *seen = bw_calloc(r->nnodes + 1, sizeof(*seen));
    r->masters = bw_realloc(r->masters, (r->nnodes + 1) * sizeof(*r->masters));
    r->nmasters = 0;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++) {
        int i = r->slot_node[s];
        if (i < 0 || seen[i])
            continue;
        seen[i] = true;
        r->masters[r->nmasters++] = i;
    }
    bw_free(seen);
}

/* Slots (the bits set in changed) changed masters: the listener drops what
 * the old ones' watches guarded. */
static void
router_slots_moved(struct proxy *px, const uint8_t *changed)
{
    if (px->on_slots_moved != NULL)
        px->on_slots_moved(px, changed);
}

/* slot_node from the map: the master of each slot, connected. */
static void
router_index(struct proxy *px)
{
    struct router *r = px->router;
    uint8_t changed[CLUSTER_SLOTS / 8] = {0};
    bool moved = false;
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++) {
        int i = cluster_map_slot_node(r->map, s);
        const struct cluster_node *n = i >= 0 ? cluster_map_node(r->map, (size_t)i) : NULL;
        int16_t to = n != NULL ? (int16_t)router_node_at(px, n->host, n->port) : -1;
        if (r->slot_node[s] >= 0 && r->slot_node[s] != to) {
            changed[s / 8] |= (uint8_t)(1u << (s % 8));
            moved = true;
        }
        r->slot_node[s] = to;
    }
    router_list_masters(r);
    if (moved)
        router_slots_moved(px, changed);
}

/* A CLUSTER SLOTS reply: the new map, or (first time) standalone. */
static void
router_slots_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct proxy *px = privdata;
    struct router *r = px->router;
    char why[256];
    const char *p = reply != NULL ? (const char *)evbuffer_pullup(reply, (ev_ssize_t)len) : NULL;
    r->refreshing = false;
    r->last_refresh_ms = bw_now_ms();
    if (p == NULL || p[0] == '-') {
        int n = p != NULL ? (int)BW_MIN(strcspn(p, "\r\n"), len) : (int)strcspn(err, "\r\n");
        log_warn("cluster: CLUSTER SLOTS failed: %.*s", n, p != NULL ? p : err);
        r->refresh_due = true;
        return;
    }
    if (cluster_map_parse_slots(r->map, p, len, px->cfg.upstream_host, why, sizeof(why)) !=
        BW_OK) {
        log_warn("cluster: unreadable CLUSTER SLOTS reply: %s", why);
        r->refresh_due = true;
        return;
    }
    router_index(px);
    r->refreshes++;
    if (!cluster_map_covered(r->map))
        log_warn("cluster: %zu of %d slots have a master", cluster_map_slots_assigned(r->map),
                 CLUSTER_SLOTS);
}

/* CLUSTER SLOTS on pool (only when one of its connections is up: up_only). */
static bool
router_ask_slots(struct proxy *px, struct upstream_pool *pool, bool up_only)
{
    const char *err;
    if (pool == NULL || (up_only && !upstream_pool_is_up(pool)))
        return false;
    return upstream_send(upstream_pick(pool, 0, 2), router_cmd_slots,
                         sizeof(router_cmd_slots) - 1, router_slots_cb, px, &err) == BW_OK;
}

/*
 * Send CLUSTER SLOTS to a node that can answer: the master of slot 0, the
 * seed, then any other node connected to (a node up first); when none takes
 * it, the map's nodes not connected yet (replicas) are connected to and the
 * next cron asks them. A dead node is never the only one asked: after a
 * failover of the seed or of slot 0's master, the map comes from a survivor.
 */
static void
router_refresh(struct proxy *px)
{
    struct router *r = px->router;
    if (r->refreshing)
        return;
    r->refreshing = true;
    r->refresh_due = false;
    for (int pass = 0; pass < 2; pass++) {
        bool up_only = pass == 0;
        if (router_ask_slots(px, router_pool(px, 0), up_only) ||
            router_ask_slots(px, px->pool, up_only))
            return;
        for (size_t i = 0; i < r->nnodes; i++)
            if (router_ask_slots(px, r->nodes[i].pool, up_only))
                return;
    }
    r->refreshing = false;
    r->refresh_due = true; /* every node known is down: the cron tries again */
    for (size_t i = 0; i < cluster_map_node_count(r->map); i++) {
        const struct cluster_node *n = cluster_map_node(r->map, i);
        (void)router_node_at(px, n->host, n->port); /* connects when new */
    }
}

/* The probe's answer: a cluster node (an array) or not (an error). */
static void
router_probe_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct proxy *px = privdata;
    const char *p = reply != NULL ? (const char *)evbuffer_pullup(reply, (ev_ssize_t)len) : NULL;
    if (p == NULL || p[0] == '-') {
        if (px->cfg.upstream_cluster == CFG_CLUSTER_YES) {
            log_warn("cluster: upstream-cluster yes, but CLUSTER SLOTS failed: %.*s",
                     (int)strcspn(p != NULL ? p : err, "\r\n"), p != NULL ? p : err);
            router_probe(px);
        } else {
            log_verbose("upstream is not a Redis Cluster node");
        }
        return;
    }
    struct router *r = bw_calloc(1, sizeof(*r));
    r->map = cluster_map_new();
    memset(r->slot_node, 0xff, sizeof(r->slot_node));
    px->router = r;
    px->databases = 1; /* a cluster has database 0 only */
    router_slots_cb(px, reply, len, err);
    log_notice("upstream is a Redis Cluster: %zu masters, %zu slots served", r->nnodes,
               cluster_map_slots_assigned(r->map));
}

void
router_probe(struct proxy *px)
{
    const char *err;
    if (px->cfg.upstream_cluster == CFG_CLUSTER_NO || px->router != NULL)
        return;
    (void)upstream_send(upstream_pick(px->pool, 0, 2), router_cmd_slots,
                        sizeof(router_cmd_slots) - 1, router_probe_cb, px, &err);
}

struct upstream_pool *
router_pool(struct proxy *px, unsigned slot)
{
    struct router *r = px->router;
    if (r == NULL || r->nnodes == 0)
        return px->pool;
    int i = r->slot_node[slot & (CLUSTER_SLOTS - 1)];
    if (i < 0)
        i = r->slot_node[0] >= 0 ? r->slot_node[0] : 0;
    return r->nodes[i].pool;
}

struct upstream_pool *
router_pool_at(struct proxy *px, const char *host, int port)
{
    if (px->router == NULL)
        return px->pool;
    return px->router->nodes[router_node_at(px, host, port)].pool;
}

size_t
router_masters(struct proxy *px, struct upstream_pool **out, size_t max)
{
    struct router *r = px->router;
    if (r == NULL || r->nnodes == 0) {
        if (max > 0)
            out[0] = px->pool;
        return 1;
    }
    for (size_t j = 0; j < r->nmasters && j < max; j++)
        out[j] = r->nodes[r->masters[j]].pool;
    return r->nmasters;
}

void
router_moved(struct proxy *px, const struct cluster_redirect *rd)
{
    struct router *r = px->router;
    if (r == NULL)
        return;
    r->moved++;
    const char *host = rd->host[0] != '\0' ? rd->host : px->cfg.upstream_host;
    if (cluster_map_move_slot(r->map, rd->slot, host, rd->port) == BW_OK) {
        int i = router_node_at(px, host, rd->port);
        if (r->slot_node[rd->slot] != i) {
            uint8_t changed[CLUSTER_SLOTS / 8] = {0};
            changed[rd->slot / 8] = (uint8_t)(1u << (rd->slot % 8));
            r->slot_node[rd->slot] = (int16_t)i;
            router_list_masters(r);
            router_slots_moved(px, changed);
        }
    }
    r->refresh_due = true;
}

void
router_refresh_soon(struct proxy *px)
{
    if (px->router != NULL)
        px->router->refresh_due = true;
}

struct batch *
router_batch(struct proxy *px, unsigned slot, uint64_t client_id, int proto)
{
    struct router *r = px->router;
    int i = r != NULL ? r->slot_node[slot & (CLUSTER_SLOTS - 1)] : -1;
    if (i < 0)
        return NULL;
    struct router_node *n = &r->nodes[i];
    int nc = BW_MAX(px->cfg.upstream_connections, 1);
    if (n->batches == NULL)
        n->batches = bw_calloc(2 * (size_t)nc, sizeof(*n->batches));
    size_t k = (proto == 3 ? (size_t)nc : 0) + (size_t)(client_id % (uint64_t)nc);
    if (n->batches[k] == NULL) {
        n->batches[k] = batch_new(px, upstream_pick(n->pool, client_id, proto), 0);
        batch_set_pipeline_only(n->batches[k]);
    }
    return n->batches[k];
}

size_t
router_watches(struct proxy *px, struct watch **out, size_t max)
{
    struct router *r = px->router;
    if (r == NULL)
        return 0;
    for (size_t j = 0; j < r->nmasters && j < max; j++)
        out[j] = r->nodes[r->masters[j]].watch;
    return r->nmasters;
}

struct watch *
router_watch(struct proxy *px, unsigned slot)
{
    struct router *r = px->router;
    if (r == NULL)
        return px->watch;
    int i = r->slot_node[slot & (CLUSTER_SLOTS - 1)];
    return i >= 0 ? r->nodes[i].watch : NULL;
}

void
router_refresh_busy_threshold(struct proxy *px)
{
    struct router *r = px->router;
    for (size_t i = 0; r != NULL && i < r->nnodes; i++)
        if (r->nodes[i].pool != px->pool)
            upstream_pool_refresh_busy_threshold(r->nodes[i].pool);
}

void
router_cron(struct proxy *px, uint64_t now_ms)
{
    struct router *r = px->router;
    if (r == NULL)
        return;
    for (size_t i = 0; i < r->nnodes; i++) { /* (main's cron runs the seed's) */
        if (r->nodes[i].watch != px->watch)
            watch_cron(r->nodes[i].watch, now_ms);
        if (r->nodes[i].pool != px->pool)
            upstream_pool_cron(r->nodes[i].pool, now_ms);
    }
    if (r->refresh_due || now_ms - r->last_refresh_ms >= px->cfg.cluster_refresh_interval_ms)
        router_refresh(px);
}

void
router_info(const struct proxy *px, char *out, size_t size)
{
    const struct router *r = px->router;
    size_t closed = 0;
    for (size_t i = 0; r != NULL && i < r->nnodes; i++)
        closed += watch_gate_closed(r->nodes[i].watch);
    snprintf(out, size,
             "upstream_cluster:%d\r\ncluster_nodes_connected:%zu\r\n"
             "cluster_slots_served:%zu\r\ncluster_gates_closed:%zu\r\n"
             "cluster_map_reads:%llu\r\ncluster_moved:%llu\r\n",
             r != NULL, r != NULL ? r->nnodes : 0,
             r != NULL ? cluster_map_slots_assigned(r->map) : 0, closed,
             r != NULL ? (unsigned long long)r->refreshes : 0,
             r != NULL ? (unsigned long long)r->moved : 0);
}

void
router_free(struct proxy *px)
{
    struct router *r = px->router;
    if (r == NULL)
        return;
    int nb = 2 * BW_MAX(px->cfg.upstream_connections, 1);
    for (size_t i = 0; i < r->nnodes; i++) {
        for (int j = 0; r->nodes[i].batches != NULL && j < nb; j++)
            batch_free(r->nodes[i].batches[j]); /* what waits is sent */
        bw_free(r->nodes[i].batches);
    }
    for (size_t i = 0; i < r->nnodes; i++) {
        if (r->nodes[i].pool != px->pool)
            upstream_pool_free(r->nodes[i].pool);
        if (r->nodes[i].watch != px->watch)
            watch_free(r->nodes[i].watch);
    }
    bw_free(r->nodes);
    bw_free(r->masters);
    cluster_map_free(r->map);
    bw_free(r);
    px->router = NULL;
}
