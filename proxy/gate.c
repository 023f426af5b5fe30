/* gate: Bloom-gated reads with Redis's absent replies, and write keys. */
#include "proxy/gate.h"

#include <string.h>

#include <event2/buffer.h>

#include "proxy/cmdstats.h"
#include "proxy/encode.h"
#include "proxy/forward.h"
#include "proxy/command.h"
#include "proxy/proxy.h"
#include "proxy/reply.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/session.h"
#include "proxy/util.h"
#include "proxy/watch.h"

/* What Redis 7.0 answers for a read of a missing key. */
enum gate_kind {
    GATE_NIL_BULK,    /* $-1 */
    GATE_EMPTY_BULK,  /* $0 (GETRANGE) */
    GATE_ZERO,        /* :0 */
    GATE_MINUS2,      /* :-2 (TTL, PTTL) */
    GATE_NONE,        /* +none (TYPE) */
    GATE_EMPTY_ARRAY, /* *0 */
    GATE_EMPTY_MAP,   /* *0, RESP3 %0 (HGETALL) */
    GATE_EMPTY_SET,   /* *0, RESP3 ~0 (SMEMBERS) */
    GATE_NILS,        /* HMGET: one $-1 per field */
    GATE_MGET,        /* per key: absent ones answered, the rest fetched */
    GATE_EXISTS       /* count of the maybe-present keys, asked upstream */
};

/* One gated read: cmd_info.gate points at it. */
struct gate_rule {
    const char *name;    /* command, lowercase */
    enum gate_kind kind; /* the absent reply */
    int argc;            /* exact argc for a local answer; 0: any */
    unsigned int_args;   /* bit i: argv[i] must be an integer (Redis checks
                            it before looking the key up) */
};

static const char *const gate_replies[] = {
    [GATE_NIL_BULK] = "$-1\r\n", [GATE_EMPTY_BULK] = "$0\r\n\r\n", [GATE_ZERO] = ":0\r\n",
    [GATE_MINUS2] = ":-2\r\n",   [GATE_NONE] = "+none\r\n",        [GATE_EMPTY_ARRAY] = "*0\r\n",
    [GATE_EMPTY_MAP] = "*0\r\n", [GATE_EMPTY_SET] = "*0\r\n",
};

/* The same for a RESP3 client (Redis 7.0 with HELLO 3). */
static const char *const gate_replies3[] = {
    [GATE_NIL_BULK] = "_\r\n",   [GATE_EMPTY_BULK] = "$0\r\n\r\n", [GATE_ZERO] = ":0\r\n",
    [GATE_MINUS2] = ":-2\r\n",   [GATE_NONE] = "+none\r\n",        [GATE_EMPTY_ARRAY] = "*0\r\n",
    [GATE_EMPTY_MAP] = "%0\r\n", [GATE_EMPTY_SET] = "~0\r\n",
};

/* The absent reply of kind for s's protocol. */
static const char *
gate_absent(const struct session *s, enum gate_kind kind)
{
    return s->proto == 3 ? gate_replies3[kind] : gate_replies[kind];
}

/* Source: Redis 7.0 t_string.c, t_hash.c, t_list.c, t_set.c, t_zset.c, db.c,
 * expire.c: the reply of each command when lookupKeyRead() finds nothing. */
static const struct gate_rule gate_rules[] = {
    {"get", GATE_NIL_BULK, 2, 0},
    {"getrange", GATE_EMPTY_BULK, 4, (1u << 2) | (1u << 3)},
    {"strlen", GATE_ZERO, 2, 0},
    {"mget", GATE_MGET, 0, 0},
    {"exists", GATE_EXISTS, 0, 0},
    {"type", GATE_NONE, 2, 0},
    {"ttl", GATE_MINUS2, 2, 0},
    {"pttl", GATE_MINUS2, 2, 0},
    {"hget", GATE_NIL_BULK, 3, 0},
    {"hmget", GATE_NILS, 0, 0},
    {"hgetall", GATE_EMPTY_MAP, 2, 0},
    {"hexists", GATE_ZERO, 3, 0},
    {"hlen", GATE_ZERO, 2, 0},
    {"hstrlen", GATE_ZERO, 3, 0},
    {"hkeys", GATE_EMPTY_ARRAY, 2, 0},
    {"hvals", GATE_EMPTY_ARRAY, 2, 0},
    {"lrange", GATE_EMPTY_ARRAY, 4, (1u << 2) | (1u << 3)},
    {"llen", GATE_ZERO, 2, 0},
    {"lindex", GATE_NIL_BULK, 3, 1u << 2},
    {"smembers", GATE_EMPTY_SET, 2, 0},
    {"sismember", GATE_ZERO, 3, 0},
    {"scard", GATE_ZERO, 2, 0},
    {"zscore", GATE_NIL_BULK, 3, 0},
    {"zrange", GATE_EMPTY_ARRAY, 4, (1u << 2) | (1u << 3)},
    {"zcard", GATE_ZERO, 2, 0},
};

void
gate_apply(struct cmd_table *t)
{
    for (size_t i = 0; i < BW_ARRAY_LEN(gate_rules); i++) {
        struct cmd_info *ci = cmd_lookup_mut(t, gate_rules[i].name, strlen(gate_rules[i].name));
        if (ci != NULL)
            ci->gate = &gate_rules[i];
    }
}

/*
 * A canonical integer as Redis's string2ll accepts it: optional '-', then
 * "0" or a digit 1-9 and up to 17 more digits. Anything else (which Redis
 * might still accept, or reject with an error) is left to Redis.
 */
static bool
gate_is_int(const struct resp_arg *a)
{
    size_t i = a->len > 0 && a->ptr[0] == '-' ? 1 : 0;
    if (a->len <= i || a->len - i > 18)
        return false;
    if (a->ptr[i] == '0')
        return a->len - i == 1 && i == 0;
    for (; i < a->len; i++)
        if (a->ptr[i] < '0' || a->ptr[i] > '9')
            return false;
    return true;
}

static bool
gate_args_ok(const struct gate_rule *r, const struct resp_request *req)
{
    if (r->argc != 0 && req->argc != r->argc)
        return false;
    for (int i = 0; i < req->argc && i < 32; i++)
        if ((r->int_args & (1u << i)) && !gate_is_int(&req->argv[i]))
            return false;
    return true;
}

/* Passed read: count the replies that come back as absent anyway. */
static void
gate_passed_filter(struct session *s, struct evbuffer *reply, size_t len, const char *err,
                   struct evbuffer *out, void *data)
{
    const struct gate_rule *r = data;
    if (s == NULL)
        return;
    if (reply == NULL) {
        evbuffer_add(out, err, strlen(err));
        return;
    }
    const char *absent = gate_absent(s, r->kind);
    size_t alen = strlen(absent);
    if (len == alen && memcmp(evbuffer_pullup(reply, (ev_ssize_t)len), absent, alen) == 0)
        watch_counters(s->px->watch)->passed_nil++;
    evbuffer_remove_buffer(reply, out, len);
}



/* Rebuild the client's MGET reply: fetched values in place, nil elsewhere. */
static void
gate_mget_filter(struct session *s, struct evbuffer *reply, size_t len, const char *err,
                 struct evbuffer *out, void *data)
{
    struct gate_mget *m = data;
    if (s == NULL) {
        bw_free(m);
        return;
    }
    struct reply_node *n = NULL;
    if (reply != NULL)
        n = reply_parse((const char *)evbuffer_pullup(reply, (ev_ssize_t)len), len);
    if (n == NULL || n->type != '*' || n->nil) {
        if (reply != NULL)
            evbuffer_remove_buffer(reply, out, len); /* Redis's error as it is */
        else
            evbuffer_add(out, err, strlen(err));
        reply_node_free(n);
        bw_free(m);
        return;
    }
    enc_array_len(out, (size_t)m->nkeys);
    int64_t j = 0;
    for (int i = 0; i < m->nkeys; i++) {
        const struct reply_node *e = m->present[i] && j < n->integer ? &n->elems[j++] : NULL;
        if (e == NULL || e->nil || e->type != '$') {
            enc_nil(out, s->proto);
        } else {
            enc_bulk(out, e->str, e->len);
        }
    }
    reply_node_free(n);
    bw_free(m);
}

/* Encode argv[0] and the keys flagged in keep (argv[1..]) as a multibulk. */
static void
gate_encode_subset(const struct resp_request *req, const bool *keep, int nkeep,
                   struct evbuffer *out)
{
    enc_array_len(out, (size_t)nkeep + 1);
    enc_bulk(out, req->argv[0].ptr, req->argv[0].len);
    for (int i = 1; i < req->argc; i++)
        if (keep[i - 1])
            enc_bulk(out, req->argv[i].ptr, req->argv[i].len);
}

/* MGET / EXISTS: ask upstream only for the keys that may exist. */
static bool
gate_multi_key(struct session *s, const struct gate_rule *r, const struct resp_request *req,
               struct gate_mget **mget_rest)
{
    struct watch *w = s->px->watch;
    struct watch_counters *k = watch_counters(w);
    int nkeys = req->argc - 1, nmaybe = 0;
    struct gate_mget *m = bw_malloc(sizeof(*m) + (size_t)nkeys * sizeof(bool));
    m->nkeys = nkeys;
    for (int pass = 0; pass < 2 && nmaybe < nkeys; pass++) {
        /* A key looks absent: take in what the watch has delivered, judge again. */
        if (pass == 1 && (!watch_sync(w) || !watch_gate_closed(w))) {
            bw_free(m);
            return false;
        }
        nmaybe = 0;
        for (int i = 0; i < nkeys; i++) {
            m->present[i] = watch_maybe_contains(w, req->argv[i + 1].ptr, req->argv[i + 1].len);
            nmaybe += m->present[i];
        }
    }
    k->gated_reads += (uint64_t)(nkeys - nmaybe);
    k->passed_reads += (uint64_t)nmaybe;
    if (nmaybe == nkeys) { /* nothing to answer locally: MGET goes on to the batcher */
        bw_free(m);
        return false;
    }
    if (nmaybe == 0) {
        cmdstats_answered(&s->px->cmdstats, CMDSTATS_BY_GATE);
        struct evbuffer *out = session_reply_target(s);
        if (r->kind == GATE_EXISTS) {
            evbuffer_add(out, ":0\r\n", 4);
        } else {
            enc_array_len(out, (size_t)nkeys);
            for (int i = 0; i < nkeys; i++)
                enc_nil(out, s->proto);
        }
        bw_free(m);
        return true;
    }
    if (r->kind == GATE_MGET && mget_rest != NULL) { /* the rest, key by key: the batcher's */
        *mget_rest = m;
        return false;
    }
    struct evbuffer *cmd = evbuffer_new();
    gate_encode_subset(req, m->present, nmaybe, cmd);
    size_t len = evbuffer_get_length(cmd);
    const char *bytes = (const char *)evbuffer_pullup(cmd, -1);
    if (r->kind == GATE_EXISTS) { /* absent keys add 0 to the count */
        fwd_send(s, bytes, len, NULL, NULL);
        bw_free(m);
    } else {
        fwd_send(s, bytes, len, gate_mget_filter, m);
    }
    evbuffer_free(cmd);
    return true;
}

/* The absent reply of r for req, answered now. */
static void
gate_answer_absent(struct session *s, const struct gate_rule *r, const struct resp_request *req)
{
    cmdstats_answered(&s->px->cmdstats, CMDSTATS_BY_GATE);
    struct evbuffer *out = session_reply_target(s);
    if (r->kind == GATE_NILS) {
        enc_array_len(out, (size_t)req->argc - 2);
        for (int i = 2; i < req->argc; i++)
            enc_nil(out, s->proto);
    } else {
        const char *absent = gate_absent(s, r->kind);
        evbuffer_add(out, absent, strlen(absent));
    }
}

/* True when some master's filter may hold key (all of them complete: else true). */
static bool
gate_cluster_maybe(struct watch *const *ws, size_t n, const struct resp_arg *key, bool sync)
{
    for (size_t i = 0; i < n; i++)
        if ((sync && !watch_sync(ws[i])) || !watch_gate_closed(ws[i]))
            return true;
    for (size_t i = 0; i < n; i++)
        if (watch_maybe_contains(ws[i], key->ptr, key->len))
            return true;
    return false;
}

/*
 * In front of a Redis Cluster: a single-key read is answered absent only
 * when no master's filter may hold its key (router_watches(): a map that
 * lags behind a resharding or failover never makes a key that exists look
 * absent); multi-key reads are split per slot by the forward stage.
 */
static bool
gate_read_cluster(struct session *s, const struct gate_rule *r, const struct resp_request *req)
{
    struct watch *ws[64];
    size_t n = router_watches(s->px, ws, BW_ARRAY_LEN(ws));
    if (n == 0 || n > BW_ARRAY_LEN(ws) || r->kind == GATE_MGET || r->kind == GATE_EXISTS ||
        !gate_args_ok(r, req))
        return false;
    struct watch_counters *k = watch_counters(s->px->watch);
    /* about to answer locally: take in what every watch has delivered first */
    if (gate_cluster_maybe(ws, n, &req->argv[1], false) ||
        gate_cluster_maybe(ws, n, &req->argv[1], true)) {
        k->passed_reads++;
        return false;
    }
    k->gated_reads++;
    gate_answer_absent(s, r, req);
    return true;
}

bool
gate_read(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
          struct gate_mget **mget_rest)
{
    const struct gate_rule *r = ci->gate;
    if (router_active(s->px))
        return gate_read_cluster(s, r, req);
    struct watch *w = s->px->watch;
    if (!watch_gate_closed(w) || !gate_args_ok(r, req))
        return false;
    if (r->kind == GATE_MGET || r->kind == GATE_EXISTS)
        return gate_multi_key(s, r, req, mget_rest);
    struct watch_counters *k = watch_counters(w);
    const struct resp_arg *key = &req->argv[1];
    /* About to answer locally: take in what the watch has delivered first. */
    if (!watch_maybe_contains(w, key->ptr, key->len) && (!watch_sync(w) || !watch_gate_closed(w)))
        return false;
    if (watch_maybe_contains(w, key->ptr, key->len)) {
        k->passed_reads++;
        /* HMGET: nothing to count; GET: the hot-key cache and the batcher
         * take it from here (batch.c counts the nils it sees). */
        if (r->kind == GATE_NILS || r == &gate_rules[0])
            return false;
        fwd_request(s, req, gate_passed_filter, (void *)r);
        return true;
    }
    k->gated_reads++;
    gate_answer_absent(s, r, req);
    return true;
}

void
gate_batch_nil(struct proxy *px)
{
    if (watch_gate_closed(px->watch))
        watch_counters(px->watch)->passed_nil++;
}
