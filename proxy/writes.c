/*
 * writes: the write stage (see writes.h).
 */
#include "proxy/writes.h"

#include <string.h>

#include "proxy/cluster.h"
#include "proxy/command.h"
#include "proxy/ctrack.h"
#include "proxy/hotkey.h"
#include "proxy/jitter.h"
#include "proxy/keyspace.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/session.h"
#include "proxy/tracking.h"
#include "proxy/util.h"
#include "proxy/watch.h"

/* Which commands this stage acts on, and how. */
static const struct {
    const char *name;
    uint32_t rules;
} writes_rules[] = {
    {"set", CMD_RULE_JITTER | CMD_RULE_LEASE_SET},
    {"setex", CMD_RULE_JITTER},
    {"psetex", CMD_RULE_JITTER},
    {"expire", CMD_RULE_JITTER},
    {"pexpire", CMD_RULE_JITTER},
    {"expireat", CMD_RULE_JITTER},
    {"pexpireat", CMD_RULE_JITTER},
    {"getex", CMD_RULE_JITTER},
    {"flushall", CMD_RULE_WIDE | CMD_RULE_FLUSH},
    {"flushdb", CMD_RULE_WIDE | CMD_RULE_FLUSH},
    {"swapdb", CMD_RULE_WIDE},
    {"copy", CMD_RULE_WIDE_OPTS}, /* COPY … DB n REPLACE: another database's key */
};

void
writes_apply(struct cmd_table *t)
{
    for (size_t i = 0; i < BW_ARRAY_LEN(writes_rules); i++) {
        struct cmd_info *ci = cmd_lookup_path(t, writes_rules[i].name);
        if (ci != NULL)
            ci->rules |= writes_rules[i].rules;
    }
}

#define WRITES_STACK_ARGS 64 /* argv arrays on the stack up to this many */

/* Each key of the write: Bloom filter, hot cache, tracking. */
static void
writes_keys(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    struct proxy *px = s->px;
    struct hotkey *hk = s->ks->hotkey;
    const char *sargv[WRITES_STACK_ARGS];
    size_t slen[WRITES_STACK_ARGS];
    int sidx[WRITES_STACK_ARGS];
    if (!px->cfg.bloom && hk == NULL && !tracking_any(px->tracking))
        return;
    bool heap = req->argc > WRITES_STACK_ARGS;
    const char **argv = heap ? bw_malloc(sizeof(char *) * (size_t)req->argc) : sargv;
    size_t *lens = heap ? bw_malloc(sizeof(size_t) * (size_t)req->argc) : slen;
    int *idx = heap ? bw_malloc(sizeof(int) * (size_t)req->argc) : sidx;
    for (int i = 0; i < req->argc; i++) {
        argv[i] = req->argv[i].ptr;
        lens[i] = req->argv[i].len;
    }
    int n = cmd_get_keys(ci, req->argc, argv, lens, idx, req->argc);
    bool cluster = router_active(px);
    for (int i = 0; i < n && i < req->argc; i++) {
        struct watch *w = cluster ? router_watch(px, cluster_keyslot(argv[idx[i]], lens[idx[i]]))
                                  : px->watch;
        if (w != NULL) /* (an unassigned slot: its master, when known, has its watch) */
            watch_add_key(w, argv[idx[i]], lens[idx[i]]);
        hotkey_on_write(hk, argv[idx[i]], lens[idx[i]]);
        ctrack_write(px, argv[idx[i]], lens[idx[i]], s->id);
    }
    if (heap) {
        bw_free(argv);
        bw_free(lens);
        bw_free(idx);
    }
}

void
writes_note(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
            bool shared)
{
    if (shared && (ci->rules & CMD_RULE_LEASE_SET)) /* before its invalidation: its value wakes */
        hotkey_on_set(s->ks->hotkey, req);
    if (ci->flags & CMD_WRITE)
        writes_keys(s, ci, req);
    if ((ci->rules & CMD_RULE_WIDE) || ((ci->rules & CMD_RULE_WIDE_OPTS) && req->argc > 3)) {
        keyspace_flushed(s->px); /* no key to drop: every hot cache is emptied */
        if (ci->rules & CMD_RULE_FLUSH)
            ctrack_flush(s, req);
    }
}

#define WRITES_JITTER_MAX_ARGS 16 /* SET's longest form is 7 arguments */

bool
writes_jitter(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
              char **out, size_t *outlen)
{
    struct proxy *px = s->px;
    const struct cfg *cfg = &px->cfg;
    struct jitter_arg args[WRITES_JITTER_MAX_ARGS];
    struct jitter_result res;

    if (ci == NULL || !(ci->rules & CMD_RULE_JITTER) || cfg->ttl_jitter_percent == 0 ||
        req->argc > WRITES_JITTER_MAX_ARGS)
        return false;
    struct jitter_opts o = {
        .percent = (unsigned)cfg->ttl_jitter_percent,
        .max_ms = cfg->ttl_jitter_max_ms,
        .min_ttl_ms = cfg->ttl_jitter_min_ttl_ms,
        .expire = cfg->ttl_jitter_expire,
        .absolute = cfg->ttl_jitter_absolute,
        .keep_unit = false,
        .exclude = (const char *const *)cfg->ttl_jitter_exclude,
        .exclude_count = cfg->ttl_jitter_exclude_count,
    };
    for (int i = 0; i < req->argc; i++) {
        args[i].ptr = req->argv[i].ptr;
        args[i].len = req->argv[i].len;
    }
    if (!jitter_rewrite(&o, &px->jitter_rng, bw_wall_ms(), req->argc, args, &res))
        return false;
    size_t n = jitter_encode(req->argc, args, &res, NULL, 0);
    *out = bw_malloc(n);
    BW_ASSERT(jitter_encode(req->argc, args, &res, *out, n) == n);
    *outlen = n;
    px->stats.ttl_jittered_writes++;
    px->stats.ttl_jitter_added_ms += res.added_ms;
    return true;
}
