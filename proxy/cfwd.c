/*
 * cfwd: forwarding in front of a Redis Cluster (see cfwd.h).
 */
#include "proxy/cfwd.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/batch.h"
#include "proxy/cluster.h"
#include "proxy/command.h"
#include "proxy/ctrack.h"
#include "proxy/encode.h"
#include "proxy/forward.h"
#include "proxy/proxy.h"
#include "proxy/reply.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/session.h"
#include "proxy/slots.h"
#include "proxy/upstream.h"
#include "proxy/util.h"

/* cmd_info.fanout kinds. */
enum cfwd_kind {
    CFWD_SLOT = 0, /* by its keys' slot */
    CFWD_MGET,     /* split, values merged in key order */
    CFWD_SUM,      /* split (or every master), integers summed */
    CFWD_ALLOK,    /* split (or every master), +OK when all are */
    CFWD_KEYS,     /* every master, arrays concatenated */
    CFWD_FIRST,    /* every master, the first one's reply */
    CFWD_RANDOM,   /* a random master */
    CFWD_SCAN,     /* master by master */
    CFWD_INFO,     /* every master, INFO texts merged (cfwd_info_merge) */
    CFWD_DEBUG,    /* by its subcommand (cfwd_debug) */
};

static const struct {
    const char *name; /* "container|sub" for subcommands */
    enum cfwd_kind kind;
} cfwd_rules[] = {
    {"mget", CFWD_MGET},
    {"del", CFWD_SUM},
    {"unlink", CFWD_SUM},
    {"exists", CFWD_SUM},
    {"touch", CFWD_SUM},
    {"mset", CFWD_ALLOK},
    {"dbsize", CFWD_SUM},
    {"flushall", CFWD_ALLOK},
    {"flushdb", CFWD_ALLOK},
    {"keys", CFWD_KEYS},
    {"randomkey", CFWD_RANDOM},
    {"scan", CFWD_SCAN},
    {"script|load", CFWD_FIRST},
    {"script|exists", CFWD_FIRST},
    {"script|flush", CFWD_ALLOK},
    {"function|load", CFWD_FIRST},
    {"function|delete", CFWD_FIRST},
    {"function|flush", CFWD_ALLOK},
    {"config|resetstat", CFWD_ALLOK},
    {"config|rewrite", CFWD_ALLOK},
    {"debug", CFWD_DEBUG},
};

#define CFWD_MAX_TRIES 5      /* redirects and retries of one request */
#define CFWD_TRYAGAIN_MS 100  /* TRYAGAIN: resent after this */
#define CFWD_MAX_MASTERS 4096 /* SCAN's cursor has room for this many */
#define CFWD_SCAN_SHIFT 12

void
cfwd_apply(struct cmd_table *t)
{
    for (size_t i = 0; i < BW_ARRAY_LEN(cfwd_rules); i++) {
        struct cmd_info *ci = cmd_lookup_path(t, cfwd_rules[i].name);
        if (ci != NULL)
            ci->fanout = cfwd_rules[i].kind;
    }
}

/* ---- one request to one node, redirects followed ---------------------------- */

struct cfwd_parent;

/* One request (or part of a split one) on its way. */
struct cfwd_req {
    struct proxy *px;            /* borrowed */
    struct slot *slot;           /* the client's reply slot (its queue's), or NULL: a part */
    struct cfwd_parent *parent;  /* a part's whole (owned by its parts together) */
    int part;                    /* which part */
    uint64_t client_id;          /* picks the shared connection, as for one Redis */
    int proto;                   /* the client's RESP version: the connection's */
    unsigned hslot;              /* the hash slot it is routed by */
    int tries;                   /* redirects and retries so far */
    struct upstream_pool *at;    /* the node it was last sent to (borrowed) */
    struct upstream_pool *mover; /* the node that last answered MOVED, or NULL */
    size_t len;                  /* bytes in cmd */
    char cmd[];                  /* the request (owned) */
};

static void cfwd_send(struct cfwd_req *r, struct upstream_pool *pool, bool asking);
static void cfwd_part_done(struct cfwd_req *r, const char *reply, size_t len);

static struct cfwd_req *
cfwd_req_alloc(struct proxy *px, uint64_t client_id, int proto, const char *cmd, size_t len,
               unsigned hslot)
{
    struct cfwd_req *r = bw_malloc(sizeof(*r) + len);
    memset(r, 0, sizeof(*r));
    r->px = px;
    r->client_id = client_id;
    r->proto = proto;
    r->hslot = hslot;
    r->len = len;
    memcpy(r->cmd, cmd, len);
    return r;
}

static struct cfwd_req *
cfwd_req_new(struct session *s, const char *cmd, size_t len, unsigned hslot)
{
    return cfwd_req_alloc(s->px, s->id, s->proto, cmd, len, hslot);
}

/*
 * The reply slot of s's request: a write's keys (CLIENT TRACKING) are told
 * when it is answered, as forward.c's.
 */
static struct slot *
cfwd_slot_new(struct session *s)
{
    struct slot *slot = slot_new(&s->q, SLOT_PLAIN);
    ctrack_attach(s, slot);
    return slot;
}

/* The final reply of r (len bytes at the head of reply, or err): to its client. */
static void
cfwd_complete(struct cfwd_req *r, struct evbuffer *reply, size_t len, const char *err)
{
    if (r->parent == NULL && r->slot->filter != NULL) { /* INFO, CONFIG GET …: rewritten */
        fwd_slot_reply(r->slot, reply, len, err);
        bw_free(r);
        return;
    }
    if (reply == NULL)
        r->px->stats.upstream_errors++;
    if (r->parent != NULL) {
        const char *p = reply != NULL ? (const char *)evbuffer_pullup(reply, (ev_ssize_t)len)
                                      : err;
        cfwd_part_done(r, p, reply != NULL ? len : strlen(err));
    } else if (reply != NULL) {
        slot_finish_move(r->slot, reply, len); /* an orphaned slot is freed */
    } else {
        slot_finish(r->slot, err, strlen(err));
    }
    bw_free(r);
}

static void
cfwd_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    struct cfwd_req *r = arg;
    (void)fd;
    (void)what;
    cfwd_send(r, router_pool(r->px, r->hslot), false);
}

static void
cfwd_discard_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    (void)privdata, (void)reply, (void)len, (void)err; /* ASKING's +OK is bulwark's */
}

/* True when the reply (len bytes at p) starts with the error word w. */
static bool
cfwd_is_error(const char *p, size_t len, const char *w)
{
    size_t n = strlen(w);
    return len > n + 1 && p[0] == '-' && memcmp(p + 1, w, n) == 0;
}

/*
 * The error reply p (n bytes) of r: a MOVED or ASK is followed (r resent),
 * a TRYAGAIN retried later; true when r was taken so.
 */
static bool
cfwd_redirect(struct cfwd_req *r, const char *p, size_t n)
{
    struct cluster_redirect rd;
    if (r->tries >= CFWD_MAX_TRIES)
        return false;
    if ((cfwd_is_error(p, n, "MOVED") || cfwd_is_error(p, n, "ASK")) &&
        cluster_parse_redirect(p, n, &rd) == BW_OK) {
        r->tries++;
        if (!rd.ask)
            router_moved(r->px, &rd);
        const char *host = rd.host[0] != '\0' ? rd.host : r->px->cfg.upstream_host;
        struct upstream_pool *to = router_pool_at(r->px, host, rd.port);
        bool asking = rd.ask;
        if (!rd.ask) {
            /* MOVED back to a node that sent it away: the slot is changing
             * hands, the old owner gave it up and the new one still imports
             * it (redis-cli --cluster reshard sets the owner node by node,
             * the old owner first). ASKING makes the importing node serve
             * it; a node not importing the slot ignores it. */
            asking = to == r->mover;
            r->mover = r->at;
        }
        cfwd_send(r, to, asking);
        return true;
    }
    if (cfwd_is_error(p, n, "TRYAGAIN")) {
        r->tries++;
        struct timeval tv = {0, CFWD_TRYAGAIN_MS * 1000};
        BW_ASSERT(event_base_once(r->px->base, -1, EV_TIMEOUT, cfwd_retry_cb, r, &tv) == 0);
        return true;
    }
    if (cfwd_is_error(p, n, "CLUSTERDOWN"))
        router_refresh_soon(r->px);
    return false;
}

static void
cfwd_reply_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct cfwd_req *r = privdata;
    char head[8];
    if (reply != NULL && evbuffer_copyout(reply, head, BW_MIN(len, sizeof(head))) >= 4 &&
        head[0] == '-') {
        size_t n = BW_MIN(len, (size_t)600);
        if (cfwd_redirect(r, (const char *)evbuffer_pullup(reply, (ev_ssize_t)n), n))
            return;
    }
    cfwd_complete(r, reply, len, err);
}

bool
cfwd_batch_redirect(struct proxy *px, const char *key, size_t len, struct slot **waiters,
                    size_t n, const char *reply, size_t rlen)
{
    size_t m = BW_MIN(rlen, (size_t)600);
    if (!cfwd_is_error(reply, m, "MOVED") && !cfwd_is_error(reply, m, "ASK") &&
        !cfwd_is_error(reply, m, "TRYAGAIN"))
        return false;
    struct evbuffer *b = evbuffer_new();
    enc_array_len(b, 2);
    enc_bulk(b, "GET", 3);
    enc_bulk(b, key, len);
    size_t clen = evbuffer_get_length(b);
    const char *cmd = (const char *)evbuffer_pullup(b, -1);
    for (size_t i = 0; i < n; i++) { /* each waiter's GET follows the redirect */
        const struct session *s = waiters[i]->q != NULL ? waiters[i]->q->owner : NULL;
        if (waiters[i]->q == NULL && waiters[i]->fn == NULL) {
            slot_free(waiters[i]); /* orphaned: its client is gone */
            continue;
        }
        struct cfwd_req *r = cfwd_req_alloc(px, s != NULL ? s->id : 0, s != NULL ? s->proto : 2,
                                            cmd, clen, cluster_keyslot(key, len));
        r->slot = waiters[i];
        if (!cfwd_redirect(r, reply, m))
            cfwd_complete(r, NULL, 0, "-ERR cluster redirect loop\r\n");
    }
    evbuffer_free(b);
    return true;
}

/* Send r on pool (after ASKING when asked to). */
static void
cfwd_send(struct cfwd_req *r, struct upstream_pool *pool, bool asking)
{
    static const char cmd_asking[] = "*1\r\n$6\r\nASKING\r\n";
    const char *err;
    struct upstream_conn *u = upstream_pick(pool, r->client_id, r->proto);
    r->at = pool;
    if (asking)
        (void)upstream_send(u, cmd_asking, sizeof(cmd_asking) - 1, cfwd_discard_cb, NULL, &err);
    if (upstream_send(u, r->cmd, r->len, cfwd_reply_cb, r, &err) != BW_OK) {
        router_refresh_soon(r->px); /* the node may be gone: its slots moved */
        cfwd_complete(r, NULL, 0, err);
    }
}

/* ---- split and fanned-out requests ------------------------------------------ */

/*
 * The masters (at most max) into pools. When no slot has one (a map read
 * while the cluster is down or being set up) the node router_pool() picks
 * for slot 0, so that Redis answers (-CLUSTERDOWN …).
 */
static size_t
cfwd_masters(struct proxy *px, struct upstream_pool **pools, size_t max)
{
    size_t n = BW_MIN(router_masters(px, pools, max), max);
    if (n == 0) {
        pools[0] = router_pool(px, 0);
        n = 1;
    }
    return n;
}

/* A request sent in parts; its reply is made when the last part is in. */
struct cfwd_parent {
    struct slot *slot;    /* the client's reply slot */
    enum cfwd_kind kind;  /* how the parts' replies are merged */
    int proto;            /* the client's RESP version */
    int remaining;        /* parts not answered yet */
    char *error;          /* the first part's error, whole (owned), or NULL */
    long long sum;        /* CFWD_SUM */
    struct evbuffer *acc; /* CFWD_KEYS elements; CFWD_FIRST the first part's reply */
    size_t count;         /* CFWD_KEYS elements in acc */
    int nkeys;            /* CFWD_MGET: keys of the client's MGET */
    int **part_keys;      /* CFWD_MGET: per part, the key indexes it asks (owned) */
    int *part_n;          /* CFWD_MGET: keys per part (owned) */
    char **vals;          /* CFWD_MGET: per key, its encoded value (owned) or NULL */
    size_t *vlens;
    int scan_master;  /* CFWD_SCAN: the master's place */
    int scan_masters; /* CFWD_SCAN: masters */
    int nparts;       /* parts sent */
    char **texts;     /* CFWD_INFO: per part, its INFO text (owned) or NULL */
    size_t *tlens;
};

/* INFO fields that count per node: the merged INFO shows their sum over the masters. */
static const char *const cfwd_info_sums[] = {
    "connected_clients",
    "blocked_clients",
    "tracking_clients",
    "clients_in_timeout_table",
    "used_memory",
    "rdb_changes_since_last_save",
    "total_connections_received",
    "total_commands_processed",
    "instantaneous_ops_per_sec",
    "total_net_input_bytes",
    "total_net_output_bytes",
    "rejected_connections",
    "expired_keys",
    "expired_time_cap_reached_count",
    "evicted_keys",
    "evicted_clients",
    "keyspace_hits",
    "keyspace_misses",
    "total_forks",
    "total_error_replies",
    "total_reads_processed",
    "total_writes_processed",
};

#define CFWD_INFO_DBS 16

/* One "dbN:keys=…,expires=…,avg_ttl=…" line summed over the masters. */
struct cfwd_info_db {
    long long keys, expires;
    double ttl_weight; /* sum of avg_ttl × expires */
    bool seen;
};

/* Encode one element of a part's array (a bulk, or nil) into out. */
static void
cfwd_encode_elem(struct evbuffer *out, const struct reply_node *e, int proto)
{
    if (e->nil || (e->type != '$' && e->type != '+'))
        enc_nil(out, proto);
    else
        enc_bulk(out, e->str, e->len);
}

static void
cfwd_part_merge(struct cfwd_parent *p, int part, const char *reply, size_t len)
{
    struct reply_node *n = reply_parse(reply, len);
    if (p->kind == CFWD_SUM && n != NULL && n->type == ':') {
        p->sum += n->integer;
    } else if (p->kind == CFWD_FIRST && part == 0) {
        evbuffer_add(p->acc, reply, len);
    } else if (p->kind == CFWD_INFO && n != NULL && (n->type == '$' || n->type == '=') &&
               !n->nil) {
        size_t skip = n->type == '=' && n->len >= 4 ? 4 : 0; /* RESP3's "txt:" */
        p->texts[part] = bw_malloc(n->len - skip + 1);
        memcpy(p->texts[part], n->str + skip, n->len - skip);
        p->texts[part][n->len - skip] = '\0';
        p->tlens[part] = n->len - skip;
    } else if (p->kind == CFWD_KEYS && n != NULL && n->type == '*' && !n->nil) {
        for (size_t i = 0; i < n->nelems; i++)
            cfwd_encode_elem(p->acc, &n->elems[i], p->proto);
        p->count += n->nelems;
    } else if (p->kind == CFWD_MGET && n != NULL && n->type == '*' && !n->nil) {
        for (size_t i = 0; i < n->nelems && (int)i < p->part_n[part]; i++) {
            struct evbuffer *b = evbuffer_new();
            cfwd_encode_elem(b, &n->elems[i], p->proto);
            int k = p->part_keys[part][i];
            p->vlens[k] = evbuffer_get_length(b);
            p->vals[k] = bw_malloc(p->vlens[k]);
            evbuffer_remove(b, p->vals[k], p->vlens[k]);
            evbuffer_free(b);
        }
    }
    reply_node_free(n);
}

/* The line at p (up to end) ends before *next; its length without "\r\n". */
static size_t
cfwd_line(const char *p, const char *end, const char **next)
{
    const char *nl = memchr(p, '\n', (size_t)(end - p));
    *next = nl != NULL ? nl + 1 : end;
    size_t n = (size_t)(*next - p);
    while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r'))
        n--;
    return n;
}

/* The integer of field name ("name:value" line) in the INFO text t (len bytes). */
static bool
cfwd_info_value(const char *t, size_t len, const char *name, long long *v)
{
    size_t nl = strlen(name);
    const char *next;
    for (const char *q = t, *end = t + len; q < end; q = next) {
        size_t n = cfwd_line(q, end, &next);
        if (n > nl + 1 && n - nl - 1 < 24 && memcmp(q, name, nl) == 0 && q[nl] == ':') {
            char digits[24], *e;
            memcpy(digits, q + nl + 1, n - nl - 1);
            digits[n - nl - 1] = '\0';
            *v = strtoll(digits, &e, 10);
            return *e == '\0';
        }
    }
    return false;
}

/* The "# Keyspace" lines of every master's text, summed per database. */
static void
cfwd_info_keyspace(const struct cfwd_parent *p, struct evbuffer *out)
{
    struct cfwd_info_db db[CFWD_INFO_DBS];
    memset(db, 0, sizeof(db));
    for (int i = 0; i < p->nparts; i++) {
        bool in = false;
        const char *next;
        for (const char *q = p->texts[i], *end = q + p->tlens[i]; q != NULL && q < end;
             q = next) {
            size_t n = cfwd_line(q, end, &next);
            int d;
            long long keys, expires, ttl;
            if (n > 0 && q[0] == '#')
                in = n >= 10 && memcmp(q, "# Keyspace", 10) == 0;
            else if (in &&
                     sscanf(q, "db%d:keys=%lld,expires=%lld,avg_ttl=%lld", &d, &keys, &expires,
                            &ttl) == 4 &&
                     d >= 0 && d < CFWD_INFO_DBS) {
                db[d].seen = true;
                db[d].keys += keys;
                db[d].expires += expires;
                db[d].ttl_weight += (double)ttl * (double)expires;
            }
        }
    }
    for (int d = 0; d < CFWD_INFO_DBS; d++)
        if (db[d].seen)
            evbuffer_add_printf(out, "db%d:keys=%lld,expires=%lld,avg_ttl=%lld\r\n", d,
                                db[d].keys, db[d].expires,
                                db[d].expires > 0
                                    ? (long long)(db[d].ttl_weight / (double)db[d].expires)
                                    : 0);
}

/* A field of cfwd_info_sums: its line with the sum over the masters' texts. */
static bool
cfwd_info_sum(const struct cfwd_parent *p, const char *line, size_t n, struct evbuffer *out)
{
    const char *colon = memchr(line, ':', n);
    long long v, sum = 0;
    if (colon == NULL)
        return false;
    for (size_t i = 0; i < BW_ARRAY_LEN(cfwd_info_sums); i++) {
        const char *name = cfwd_info_sums[i];
        if (strlen(name) != (size_t)(colon - line) || memcmp(line, name, strlen(name)) != 0)
            continue;
        for (int j = 0; j < p->nparts; j++)
            if (p->texts[j] != NULL && cfwd_info_value(p->texts[j], p->tlens[j], name, &v))
                sum += v;
        evbuffer_add_printf(out, "%s:%lld\r\n", name, sum);
        return true;
    }
    return false;
}

/*
 * One INFO text for the cluster: the first master's (slot 0's), with the
 * fields that count per node (cfwd_info_sums) summed over the masters and
 * "# Keyspace" summed per database (avg_ttl weighted by expires).
 */
static void
cfwd_info_merge(const struct cfwd_parent *p, struct evbuffer *out)
{
    const char *t = p->texts[0], *next;
    bool keyspace = false;
    for (const char *q = t, *end = t + p->tlens[0]; t != NULL && q < end; q = next) {
        size_t n = cfwd_line(q, end, &next);
        if (n > 0 && q[0] == '#') {
            keyspace = n >= 10 && memcmp(q, "# Keyspace", 10) == 0;
            evbuffer_add(out, q, (size_t)(next - q));
            if (keyspace)
                cfwd_info_keyspace(p, out);
        } else if (!(keyspace && n > 2 && memcmp(q, "db", 2) == 0) &&
                   !cfwd_info_sum(p, q, n, out)) {
            evbuffer_add(out, q, (size_t)(next - q));
        }
    }
}

/* Every part is in: the client's reply. */
static void
cfwd_parent_finish(struct cfwd_parent *p)
{
    struct evbuffer *out = evbuffer_new();
    if (p->error != NULL) {
        evbuffer_add(out, p->error, strlen(p->error));
    } else if (p->kind == CFWD_SUM) {
        enc_int(out, p->sum);
    } else if (p->kind == CFWD_ALLOK) {
        enc_status(out, "OK");
    } else if (p->kind == CFWD_FIRST) {
        evbuffer_add_buffer(out, p->acc);
    } else if (p->kind == CFWD_KEYS) {
        enc_array_len(out, p->count);
        evbuffer_add_buffer(out, p->acc);
    } else if (p->kind == CFWD_MGET) {
        enc_array_len(out, (size_t)p->nkeys);
        for (int k = 0; k < p->nkeys; k++) {
            if (p->vals[k] != NULL)
                evbuffer_add(out, p->vals[k], p->vlens[k]);
            else
                enc_nil(out, p->proto);
        }
    } else if (p->kind == CFWD_INFO) {
        struct evbuffer *text = evbuffer_new();
        cfwd_info_merge(p, text);
        size_t tl = evbuffer_get_length(text);
        enc_bulk(out, (const char *)evbuffer_pullup(text, -1), tl);
        evbuffer_free(text);
    }
    size_t len = evbuffer_get_length(out);
    if (p->slot->filter != NULL) /* INFO, CONFIG SET: rewritten */
        fwd_slot_reply(p->slot, out, len, NULL);
    else
        slot_finish(p->slot, (const char *)evbuffer_pullup(out, -1), len);
    evbuffer_free(out);
    for (int i = 0; p->texts != NULL && i < p->nparts; i++)
        bw_free(p->texts[i]);
    bw_free(p->texts);
    bw_free(p->tlens);
    for (int k = 0; p->vals != NULL && k < p->nkeys; k++)
        bw_free(p->vals[k]);
    for (int i = 0; p->part_keys != NULL && p->part_keys[i] != NULL; i++)
        bw_free(p->part_keys[i]);
    bw_free(p->part_keys);
    bw_free(p->part_n);
    bw_free(p->vals);
    bw_free(p->vlens);
    bw_free(p->error);
    if (p->acc != NULL)
        evbuffer_free(p->acc);
    bw_free(p);
}

static void
cfwd_part_done(struct cfwd_req *r, const char *reply, size_t len)
{
    struct cfwd_parent *p = r->parent;
    if (len > 0 && reply[0] == '-') {
        if (p->error == NULL)
            p->error = bw_strndup(reply, len);
    } else {
        cfwd_part_merge(p, r->part, reply, len);
    }
    if (--p->remaining == 0)
        cfwd_parent_finish(p);
}

static struct cfwd_parent *
cfwd_parent_new(struct session *s, enum cfwd_kind kind, int parts)
{
    struct cfwd_parent *p = bw_calloc(1, sizeof(*p));
    p->slot = cfwd_slot_new(s);
    p->kind = kind;
    p->proto = s->proto;
    p->remaining = parts;
    p->nparts = parts;
    if (kind == CFWD_KEYS || kind == CFWD_FIRST)
        p->acc = evbuffer_new();
    if (kind == CFWD_INFO) {
        p->texts = bw_calloc((size_t)parts, sizeof(*p->texts));
        p->tlens = bw_calloc((size_t)parts, sizeof(*p->tlens));
    }
    return p;
}

/* Send part `part` (bytes cmd/len, routed by hslot) of p. */
static void
cfwd_send_part(struct session *s, struct cfwd_parent *p, int part, const char *cmd, size_t len,
               unsigned hslot, struct upstream_pool *pool)
{
    struct cfwd_req *r = cfwd_req_new(s, cmd, len, hslot);
    r->parent = p;
    r->part = part;
    cfwd_send(r, pool, false);
}

/* The same request to every master; the replies merged by kind, then through filter. */
static void
cfwd_every_master(struct session *s, enum cfwd_kind kind, const char *cmd, size_t len,
                  slot_filter_fn *filter, void *data)
{
    struct upstream_pool *pools[64];
    size_t n = cfwd_masters(s->px, pools, BW_ARRAY_LEN(pools));
    struct cfwd_parent *p = cfwd_parent_new(s, kind, (int)n);
    if (filter != NULL) { /* (else a FLUSHALL's own, ctrack's, stays) */
        p->slot->filter = filter;
        p->slot->filter_data = data;
    }
    for (size_t i = 0; i < n; i++)
        cfwd_send_part(s, p, (int)i, cmd, len, 0, pools[i]);
}

/*
 * A multi-key command whose keys span slots (nkeys keys at argv indexes idx,
 * step: arguments per key — 2 for MSET): one request per slot, with the
 * keys (and values) of that slot in their order.
 */
static void
cfwd_split(struct session *s, enum cfwd_kind kind, const struct resp_request *req, const int *idx,
           const unsigned *hs, int nkeys, int step)
{
    int *part_of = bw_malloc(sizeof(int) * (size_t)nkeys);
    unsigned *part_slot = bw_malloc(sizeof(unsigned) * (size_t)nkeys);
    int nparts = 0;
    for (int k = 0; k < nkeys; k++) {
        int j = 0;
        while (j < nparts && part_slot[j] != hs[k])
            j++;
        if (j == nparts)
            part_slot[nparts++] = hs[k];
        part_of[k] = j;
    }
    struct cfwd_parent *p = cfwd_parent_new(s, kind, nparts);
    if (kind == CFWD_MGET) {
        p->nkeys = nkeys;
        p->vals = bw_calloc((size_t)nkeys, sizeof(*p->vals));
        p->vlens = bw_calloc((size_t)nkeys, sizeof(*p->vlens));
        p->part_keys = bw_calloc((size_t)nparts + 1, sizeof(*p->part_keys));
        p->part_n = bw_calloc((size_t)nparts, sizeof(*p->part_n));
    }
    struct evbuffer *b = evbuffer_new();
    for (int j = 0; j < nparts; j++) {
        int n = 0;
        for (int k = 0; k < nkeys; k++)
            n += part_of[k] == j;
        enc_array_len(b, (size_t)(1 + n * step));
        enc_bulk(b, req->argv[0].ptr, req->argv[0].len);
        if (kind == CFWD_MGET)
            p->part_keys[j] = bw_malloc(sizeof(int) * (size_t)n);
        for (int k = 0; k < nkeys; k++) {
            if (part_of[k] != j)
                continue;
            if (kind == CFWD_MGET)
                p->part_keys[j][p->part_n[j]++] = k;
            for (int a = 0; a < step; a++)
                enc_bulk(b, req->argv[idx[k] + a].ptr, req->argv[idx[k] + a].len);
        }
        size_t len = evbuffer_get_length(b);
        cfwd_send_part(s, p, j, (const char *)evbuffer_pullup(b, -1), len, part_slot[j],
                       router_pool(s->px, part_slot[j]));
        evbuffer_drain(b, len);
    }
    evbuffer_free(b);
    bw_free(part_of);
    bw_free(part_slot);
}

/* SCAN's reply from one master: its keys, and the cursor made global. */
static void
cfwd_scan_cb(void *data, const char *reply, size_t len)
{
    struct cfwd_parent *p = data;
    struct evbuffer *out = evbuffer_new();
    struct reply_node *n = reply_parse(reply, len);
    unsigned long long next = 0;
    bool ok = n != NULL && n->type == '*' && n->nelems == 2 && n->elems[0].type == '$' &&
              n->elems[1].type == '*' && n->elems[0].len > 0 && n->elems[0].len < 21;
    if (ok) {
        char digits[24], *end;
        memcpy(digits, n->elems[0].str, n->elems[0].len);
        digits[n->elems[0].len] = '\0';
        next = strtoull(digits, &end, 10);
        ok = *end == '\0';
    }
    if (!ok) {
        evbuffer_add(out, reply, len); /* an error, as Redis sent it */
    } else {
        unsigned long long cursor = next == 0 ? (unsigned long long)(p->scan_master + 1) : 0;
        if (next == 0 && p->scan_master + 1 >= p->scan_masters)
            cursor = 0;
        else if (next != 0)
            cursor = (next << CFWD_SCAN_SHIFT) | (unsigned long long)p->scan_master;
        char num[32];
        int w = snprintf(num, sizeof(num), "%llu", cursor);
        enc_array_len(out, 2);
        enc_bulk(out, num, (size_t)w);
        enc_array_len(out, n->elems[1].nelems);
        for (size_t i = 0; i < n->elems[1].nelems; i++)
            cfwd_encode_elem(out, &n->elems[1].elems[i], p->proto);
    }
    reply_node_free(n);
    size_t olen = evbuffer_get_length(out);
    slot_finish(p->slot, (const char *)evbuffer_pullup(out, -1), olen);
    evbuffer_free(out);
    bw_free(p);
}

/* SCAN cursor [options]: to the master the cursor names, with its own cursor. */
static void
cfwd_scan(struct session *s, const struct resp_request *req)
{
    struct upstream_pool *pools[CFWD_MAX_MASTERS];
    int n = (int)cfwd_masters(s->px, pools, CFWD_MAX_MASTERS);
    char digits[32];
    size_t dl = BW_MIN(req->argv[1].len, sizeof(digits) - 1);
    memcpy(digits, req->argv[1].ptr, dl);
    digits[dl] = '\0';
    char *end;
    unsigned long long c = strtoull(digits, &end, 10);
    int master = (int)(c & (CFWD_MAX_MASTERS - 1));
    if (dl == 0 || *end != '\0' || digits[0] == '-' || master >= n) {
        session_reply_error(s, "ERR invalid cursor");
        return;
    }
    struct cfwd_parent *p = cfwd_parent_new(s, CFWD_SCAN, 1);
    p->scan_master = master;
    p->scan_masters = n;
    struct evbuffer *b = evbuffer_new();
    char own[32];
    int w = snprintf(own, sizeof(own), "%llu", c >> CFWD_SCAN_SHIFT);
    enc_array_len(b, (size_t)req->argc);
    enc_bulk(b, req->argv[0].ptr, req->argv[0].len);
    enc_bulk(b, own, (size_t)w);
    for (int i = 2; i < req->argc; i++)
        enc_bulk(b, req->argv[i].ptr, req->argv[i].len);
    size_t len = evbuffer_get_length(b);
    struct cfwd_req *r = cfwd_req_new(s, (const char *)evbuffer_pullup(b, -1), len, 0);
    evbuffer_free(b);
    r->slot = slot_new_detached(cfwd_scan_cb, p);
    cfwd_send(r, pools[master], false);
}

/* ---- the stage -------------------------------------------------------------- */

#define CFWD_STACK_ARGS 64

/* DEBUG subcommands that name a key (at argv[2]): the key's master. */
static const char *const cfwd_debug_keyed[] = {
    "object", "sdslen", "listpack", "quicklist", "htstats-key", "digest-value",
};

/* DEBUG subcommands that set or do something node-wide: every master. */
static const char *const cfwd_debug_every[] = {
    "reload",
    "loadaof",
    "sleep",
    "set-active-expire",
    "quicklist-packed-threshold",
    "set-skip-checksum-validation",
    "aof-flush-sleep",
    "set-disable-deny-scripts",
    "pause-cron",
    "replybuffer",
    "change-repl-id",
    "config-rewrite-force-all",
};

/* DEBUG: where its subcommand works (above); anything else to the master of slot 0. */
static void
cfwd_debug(struct session *s, const struct resp_request *req, const char *cmd, size_t len)
{
    unsigned hslot = 0;
    for (size_t i = 0; req->argc >= 3 && i < BW_ARRAY_LEN(cfwd_debug_keyed); i++)
        if (resp_arg_is(&req->argv[1], cfwd_debug_keyed[i]))
            hslot = cluster_keyslot(req->argv[2].ptr, req->argv[2].len);
    for (size_t i = 0; i < BW_ARRAY_LEN(cfwd_debug_every); i++) {
        if (resp_arg_is(&req->argv[1], cfwd_debug_every[i])) {
            cfwd_every_master(s, CFWD_ALLOK, cmd, len, NULL, NULL);
            return;
        }
    }
    struct cfwd_req *r = cfwd_req_new(s, cmd, len, hslot);
    r->slot = cfwd_slot_new(s);
    cfwd_send(r, router_pool(s->px, hslot), false);
}

/* Keyless: one master, or several (fanout kinds). */
static void
cfwd_keyless(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
             const char *cmd, size_t len)
{
    enum cfwd_kind kind = (enum cfwd_kind)ci->fanout;
    if (kind == CFWD_SCAN) {
        cfwd_scan(s, req);
    } else if (kind == CFWD_DEBUG) {
        cfwd_debug(s, req, cmd, len);
    } else if (kind == CFWD_SUM || kind == CFWD_ALLOK || kind == CFWD_KEYS ||
               kind == CFWD_FIRST) {
        cfwd_every_master(s, kind, cmd, len, NULL, NULL);
    } else {
        struct upstream_pool *pools[64];
        size_t n = cfwd_masters(s->px, pools, BW_ARRAY_LEN(pools));
        struct cfwd_req *r = cfwd_req_new(s, cmd, len, 0);
        r->slot = cfwd_slot_new(s);
        cfwd_send(r, kind == CFWD_RANDOM ? pools[(size_t)random() % n] : router_pool(s->px, 0),
                  false);
    }
}

void
cfwd_request(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
             const char *cmd, size_t len)
{
    if (s->batch != NULL) /* its batched GETs first: nothing it sends later overtakes them */
        batch_before_forward(s->batch, s);
    const char *sargv[CFWD_STACK_ARGS];
    size_t slen[CFWD_STACK_ARGS];
    int sidx[CFWD_STACK_ARGS];
    unsigned shs[CFWD_STACK_ARGS];
    bool heap = req->argc > CFWD_STACK_ARGS;
    size_t na = (size_t)req->argc;
    const char **argv = heap ? bw_malloc(na * sizeof(*argv)) : sargv;
    size_t *lens = heap ? bw_malloc(na * sizeof(*lens)) : slen;
    int *idx = heap ? bw_malloc(na * sizeof(*idx)) : sidx;
    unsigned *hs = heap ? bw_malloc(na * sizeof(*hs)) : shs;
    for (int i = 0; i < req->argc; i++) {
        argv[i] = req->argv[i].ptr;
        lens[i] = req->argv[i].len;
    }
    int nk = ci != NULL ? cmd_get_keys(ci, req->argc, argv, lens, idx, req->argc) : 0;
    bool cross = false;
    for (int k = 0; k < nk; k++) {
        hs[k] = cluster_keyslot(argv[idx[k]], lens[idx[k]]);
        cross = cross || hs[k] != hs[0];
    }
    if (nk <= 0) {
        cfwd_keyless(s, ci, req, cmd, len);
    } else if (!cross) {
        struct cfwd_req *r = cfwd_req_new(s, cmd, len, hs[0]);
        r->slot = cfwd_slot_new(s);
        cfwd_send(r, router_pool(s->px, hs[0]), false);
    } else if (ci->fanout == CFWD_MGET || ci->fanout == CFWD_SUM || ci->fanout == CFWD_ALLOK) {
        cfwd_split(s, (enum cfwd_kind)ci->fanout, req, idx, hs, nk, ci->key_step > 1 ? 2 : 1);
    } else {
        session_reply_error(s, "CROSSSLOT Keys in request don't hash to the same slot");
    }
    if (heap) {
        bw_free(argv);
        bw_free(lens);
        bw_free(idx);
        bw_free(hs);
    }
}

void
cfwd_to_slot(struct session *s, const struct resp_request *req, unsigned hslot)
{
    struct evbuffer *b = evbuffer_new();
    const char *cmd = req->raw;
    size_t len = req->raw_len;
    if (cmd == NULL) {
        enc_array_len(b, (size_t)req->argc);
        for (int i = 0; i < req->argc; i++)
            enc_bulk(b, req->argv[i].ptr, req->argv[i].len);
        len = evbuffer_get_length(b);
        cmd = (const char *)evbuffer_pullup(b, -1);
    }
    struct cfwd_req *r = cfwd_req_new(s, cmd, len, hslot);
    r->slot = cfwd_slot_new(s);
    cfwd_send(r, router_pool(s->px, hslot), false);
    evbuffer_free(b);
}

void
cfwd_send_filtered(struct session *s, const char *cmd, size_t len, enum cfwd_to to,
                   slot_filter_fn *filter, void *data)
{
    if (to != CFWD_TO_ONE) {
        cfwd_every_master(s, to == CFWD_TO_ALL_OK ? CFWD_ALLOK : CFWD_INFO, cmd, len, filter,
                          data);
        return;
    }
    struct cfwd_req *r = cfwd_req_new(s, cmd, len, 0);
    r->slot = cfwd_slot_new(s);
    r->slot->filter = filter;
    r->slot->filter_data = data;
    cfwd_send(r, router_pool(s->px, 0), false);
}

void
cfwd_send_at(struct session *s, struct upstream_pool *pool, const char *cmd, size_t len)
{
    struct cfwd_req *r = cfwd_req_new(s, cmd, len, 0);
    r->slot = cfwd_slot_new(s);
    cfwd_send(r, pool, false);
}

struct upstream_pool *
cfwd_key_pool(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    const char *argv[CFWD_STACK_ARGS];
    size_t lens[CFWD_STACK_ARGS];
    int idx[CFWD_STACK_ARGS];
    int argc = BW_MIN(req->argc, CFWD_STACK_ARGS);
    for (int i = 0; i < argc; i++) {
        argv[i] = req->argv[i].ptr;
        lens[i] = req->argv[i].len;
    }
    if (ci != NULL && ci->subcommands != NULL && req->argc >= 2)
        ci = cmd_lookup(ci->subcommands, req->argv[1].ptr, req->argv[1].len);
    int nk = ci != NULL ? cmd_get_keys(ci, argc, argv, lens, idx, argc) : 0;
    return nk > 0 ? router_pool(s->px, cluster_keyslot(argv[idx[0]], lens[idx[0]])) : NULL;
}

struct upstream_pool *
cfwd_pool_for(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    struct upstream_pool *p = cfwd_key_pool(s, ci, req);
    if (p != NULL)
        return p;
    if (req->argc == 2 && resp_arg_is(&req->argv[1], "kill") &&
        (resp_arg_is(&req->argv[0], "script") || resp_arg_is(&req->argv[0], "function"))) {
        /* the master where a script bulwark sent may be running (one with keys
         * runs on their master) */
        struct upstream_pool *pools[64];
        size_t n = cfwd_masters(s->px, pools, BW_ARRAY_LEN(pools));
        for (size_t i = 0; i < n; i++)
            if (upstream_pool_script_inflight(pools[i]))
                return pools[i];
    }
    return router_pool(s->px, 0);
}
