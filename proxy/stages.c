/*
 * stages: the stage table of the request path (diagram in stages.h).
 */
#include "proxy/stages.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "proxy/batch.h"
#include "proxy/cfwd.h"
#include "proxy/cluster.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/ctrack.h"
#include "proxy/forward.h"
#include "proxy/gate.h"
#include "proxy/hotkey.h"
#include "proxy/keyspace.h"
#include "proxy/local.h"
#include "proxy/pinned.h"
#include "proxy/pinstage.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/tracking.h"
#include "proxy/util.h"
#include "proxy/writes.h"

/* One request on its way through the table. */
struct stage_req {
    struct session *s;              /* whose (borrowed) */
    const struct resp_request *req; /* the request (views into the input) */
    const struct cmd_info *ci;      /* its command, subcommand resolved (admission) */
    bool forward_unknown;           /* unknown, but the table is only the built-in one */
    struct pinned *pin_keep;        /* a session set aside while bulwark answers */
    struct gate_mget *mget_rest;    /* an MGET the gate half answered (owned) */
    bool track_read;                /* remember its keys for a tracking client, once
                                       the stages made its reply's place (see below) */
};

/* What a stage did with the request. */
enum stage_rc {
    STAGE_NEXT = 0, /* passed on (maybe transformed) */
    STAGE_DONE,     /* answered or taken: the request's path ends here */
};

typedef enum stage_rc stage_fn(struct stage_req *r);

static enum stage_rc
stage_refused(struct stage_req *r)
{
    struct session *s = r->s;
    if (s->pin != NULL || !(s->multi_refused || s->watch_refused))
        return STAGE_NEXT;
    return pinstage_handle_refused(s, r->req) ? STAGE_DONE : STAGE_NEXT;
}

static enum stage_rc
stage_bulwark(struct stage_req *r)
{
    const struct resp_arg *a = &r->req->argv[0];
    if (r->s->pin != NULL || a->len != 7 || strncasecmp(a->ptr, "bulwark", 7) != 0)
        return STAGE_NEXT;
    r->s->px->cmdstats.cur.id = cmdstats_intern(&r->s->px->cmdstats, "bulwark"); /* not
                                                                 in Redis's table */
    if (!r->s->authenticated)
        session_reply_error(r->s, "NOAUTH Authentication required.");
    else if (session_is_denied(r->s->px, a->ptr, a->len))
        session_reply_denied(r->s, r->req);
    else
        local_bulwark(r->s, r->req);
    return STAGE_DONE;
}

static enum stage_rc
stage_pinned(struct stage_req *r)
{
    if (r->s->cl_multi) /* the transaction's first command names its node */
        return pinstage_deferred_multi(r->s, r->req, &r->pin_keep) ? STAGE_DONE : STAGE_NEXT;
    if (r->s->pin == NULL)
        return STAGE_NEXT;
    return pinstage_handle(r->s, r->req, &r->pin_keep) ? STAGE_DONE : STAGE_NEXT;
}

/* Redis's unknown-command error for req. */
static void
stage_unknown_command(struct session *s, const struct resp_request *req)
{
    char out[4096];
    int argc = BW_MIN(req->argc, 64);
    const char *argv[64];
    size_t argvlen[64];
    for (int i = 0; i < argc; i++) {
        argv[i] = req->argv[i].ptr;
        argvlen[i] = req->argv[i].len;
    }
    size_t n = cmd_unknown_command_error(argc, argv, argvlen, out, sizeof(out));
    session_reply_raw(s, out, BW_MIN(n, sizeof(out) - 1));
}

/*
 * Resolve the command (container commands to their subcommand). NULL after
 * replying with Redis's unknown-command / unknown-subcommand error, or
 * r->forward_unknown set when the table is only the built-in fallback.
 */
static const struct cmd_info *
stage_lookup(struct stage_req *r)
{
    struct session *s = r->s;
    const struct resp_request *req = r->req;
    struct proxy *px = s->px;
    const struct cmd_info *ci = session_cmd(s, req);
    if (ci == NULL) {
        if (!px->cmds_learned && s->authenticated)
            r->forward_unknown = true;
        else
            stage_unknown_command(s, req);
        return NULL;
    }
    if (ci->subcommands == NULL || req->argc < 2)
        return ci;
    const struct cmd_info *sub = cmd_lookup(ci->subcommands, req->argv[1].ptr, req->argv[1].len);
    if (sub != NULL)
        return sub;
    if (!px->cmds_learned && s->authenticated) {
        r->forward_unknown = true;
        return NULL;
    }
    char out[512];
    size_t n =
        cmd_unknown_subcommand_error(ci, req->argv[1].ptr, req->argv[1].len, out, sizeof(out));
    session_reply_raw(s, out, BW_MIN(n, sizeof(out) - 1));
    return NULL;
}

/* CLIENT LIST cmd=: a copy per request, without snprintf (it showed in profiles). */
static void
stage_set_last_cmd(struct session *s, const char *name)
{
    size_t n = strlen(name);
    n = BW_MIN(n, sizeof(s->last_cmd) - 1);
    memcpy(s->last_cmd, name, n);
    s->last_cmd[n] = '\0';
}

static enum stage_rc
stage_admission(struct stage_req *r)
{
    struct session *s = r->s;
    const struct resp_request *req = r->req;
    r->ci = stage_lookup(r);
    cmdstats_command(&s->px->cmdstats, r->ci);
    stage_set_last_cmd(s, r->ci != NULL ? r->ci->fullname : "NULL");
    if (r->ci == NULL) {
        if (r->forward_unknown && session_is_denied(s->px, req->argv[0].ptr, req->argv[0].len))
            session_reply_denied(s, req); /* unknown to the built-in table, denied all the same */
        else if (r->forward_unknown)
            fwd_request(s, req, NULL, NULL);
        return STAGE_DONE;
    }
    if (!cmd_arity_ok(r->ci, req->argc)) {
        char out[256];
        size_t n = cmd_arity_error(r->ci, out, sizeof(out));
        session_reply_raw(s, out, BW_MIN(n, sizeof(out) - 1));
        return STAGE_DONE;
    }
    if (!s->authenticated && !(r->ci->flags & CMD_NO_AUTH)) {
        session_reply_error(s, "NOAUTH Authentication required.");
        return STAGE_DONE;
    }
    /* CONFIG stays: CONFIG SET is how deny-commands itself is changed */
    if (session_is_denied(s->px, req->argv[0].ptr, req->argv[0].len) &&
        !(r->ci->parent != NULL && strcmp(r->ci->parent->name, "config") == 0)) {
        session_reply_denied(s, req);
        return STAGE_DONE;
    }
    return STAGE_NEXT;
}

static enum stage_rc
stage_pin_start(struct stage_req *r)
{
    if (!pinstage_pins(r->s, r->req) || !pinstage_may_pin(r->s, r->req))
        return STAGE_NEXT;
    if (pinstage_defer_multi(r->s, r->req))
        return STAGE_DONE;
    pinstage_request(r->s, r->ci, r->req);
    return STAGE_DONE;
}

static enum stage_rc
stage_writes(struct stage_req *r)
{
    writes_note(r->s, r->ci, r->req, true);
    r->track_read = tracking_any(r->s->px->tracking);
    return STAGE_NEXT;
}

/* The batcher takes MGETs (batch-mget) on this session now. */
static bool
stage_batches_mget(const struct session *s)
{
    const struct cfg *cfg = &s->px->cfg;
    return s->batch != NULL && cfg->batch_max_keys > 0 && cfg->batch_mget;
}

static enum stage_rc
stage_gate(struct stage_req *r)
{
    if (r->ci->gate == NULL)
        return STAGE_NEXT;
    bool mget = (r->ci->rules & CMD_RULE_MGET) && stage_batches_mget(r->s);
    return gate_read(r->s, r->ci, r->req, mget ? &r->mget_rest : NULL) ? STAGE_DONE : STAGE_NEXT;
}

static enum stage_rc
stage_hot(struct stage_req *r)
{
    if (!(r->ci->rules & CMD_RULE_GET))
        return STAGE_NEXT;
    const struct resp_arg *key = &r->req->argv[1];
    return hotkey_get(r->s->ks->hotkey, r->s, key->ptr, key->len) ? STAGE_DONE : STAGE_NEXT;
}

/* In front of a Redis Cluster: GETs coalesce per master (pipelined GETs). */
static enum stage_rc
stage_batch_cluster(struct stage_req *r)
{
    struct session *s = r->s;
    const struct resp_arg *key = &r->req->argv[1];
    if (!(r->ci->rules & CMD_RULE_GET) || s->px->cfg.batch_max_keys <= 0)
        return STAGE_NEXT;
    struct batch *b = router_batch(s->px, cluster_keyslot(key->ptr, key->len), s->id, s->proto);
    if (b == NULL)
        return STAGE_NEXT;
    if (s->batch != b && s->batch != NULL) /* its GETs elsewhere go first: one batcher */
        batch_before_forward(s->batch, s);
    s->batch = b;
    batch_get(b, s, key->ptr, key->len);
    return STAGE_DONE;
}

static enum stage_rc
stage_batch(struct stage_req *r)
{
    struct session *s = r->s;
    if (router_active(s->px))
        return stage_batch_cluster(r);
    if ((r->ci->rules & CMD_RULE_MGET) && stage_batches_mget(s)) {
        batch_mget(s->batch, s, r->req, r->mget_rest != NULL ? r->mget_rest->present : NULL);
        return STAGE_DONE;
    }
    if ((r->ci->rules & CMD_RULE_GET) && s->batch != NULL && s->px->cfg.batch_max_keys > 0) {
        batch_get(s->batch, s, r->req->argv[1].ptr, r->req->argv[1].len);
        return STAGE_DONE;
    }
    return STAGE_NEXT;
}

static enum stage_rc
stage_local(struct stage_req *r)
{
    if (r->ci->policy == LOCAL_FORWARD || !local_dispatch(r->s, r->ci, r->req))
        return STAGE_NEXT;
    return STAGE_DONE;
}

static enum stage_rc
stage_forward(struct stage_req *r)
{
    char *rewritten;
    size_t len;
    bool jittered = writes_jitter(r->s, r->ci, r->req, &rewritten, &len);
    if (router_active(r->s->px)) {
        struct evbuffer *b = NULL;
        if (!jittered && r->req->raw == NULL) { /* an inline request */
            b = evbuffer_new();
            fwd_encode(r->req, b);
            len = evbuffer_get_length(b);
        }
        cfwd_request(r->s, r->ci, r->req,
                     jittered    ? rewritten
                     : b != NULL ? (const char *)evbuffer_pullup(b, -1)
                                 : r->req->raw,
                     jittered || b != NULL ? len : r->req->raw_len);
        if (b != NULL)
            evbuffer_free(b);
    } else if (jittered) {
        fwd_send(r->s, rewritten, len, NULL, NULL);
    } else {
        fwd_request(r->s, r->req, NULL, NULL);
    }
    if (jittered)
        bw_free(rewritten);
    return STAGE_DONE;
}

/* The table, in data-flow order (stages.h). */
static const struct {
    const char *name;
    stage_fn *fn;
} stage_table[] = {
    {"refused", stage_refused},     {"bulwark", stage_bulwark},     {"pinned", stage_pinned},
    {"admission", stage_admission}, {"pin start", stage_pin_start}, {"writes", stage_writes},
    {"gate", stage_gate},           {"hot cache", stage_hot},       {"batcher", stage_batch},
    {"local", stage_local},         {"forward", stage_forward},
};

/* Run the table for one request. */
static void
stages_run_table(struct session *s, const struct resp_request *req)
{
    struct stage_req r = {.s = s, .req = req};
    s->px->stats.total_commands++;
    s->commands++;
    for (size_t i = 0; i < BW_ARRAY_LEN(stage_table); i++)
        if (stage_table[i].fn(&r) == STAGE_DONE)
            break;
    /* A tracking client's read is remembered once its reply has its place
     * in the client's order: the gate and the hot-key cache take in the watch
     * first (watch_sync), and a change named there, made before the read,
     * would otherwise be told ahead of the reply and forget the read — whose
     * newer value then stayed cached untold. Nothing is read from Redis
     * before this loop turn ends, so no later change can come first. */
    if (r.track_read)
        ctrack_read(s, r.ci, req);
    bw_free(r.mget_rest);
    if (r.pin_keep != NULL)
        pinstage_resume(s, r.pin_keep);
}

void
stages_run(struct session *s, const struct resp_request *req)
{
    if (!tracking_any(s->px->tracking)) {
        stages_run_table(s, req);
        if (s->trk_cur != NULL) /* a flush not forwarded on a shared connection */
            ctrack_discard(s);
        return;
    }
    ctrack_begin(s);
    stages_run_table(s, req);
    ctrack_end(s, resp_arg_is(&req->argv[0], "client"));
}

/* True for "GET key", the one request batched GETs may run ahead of. */
static bool
stages_is_plain_get(struct session *s, const struct resp_request *req)
{
    const struct cmd_info *ci = session_cmd(s, req);
    return req->argc == 2 && ci != NULL && (ci->rules & CMD_RULE_GET);
}

enum session_hold
stages_hold(struct session *s, const struct resp_request *req)
{
    if ((s->q.nheld > 0 || (s->batch != NULL && batch_client_busy(s->batch, s))) &&
        !stages_is_plain_get(s, req))
        s->hold = SESSION_HOLD_BATCH; /* mget mode: behind its batched GETs */
    else if (s->pin == NULL && s->q.n > 0 &&
             ((pinstage_pins(s, req) && pinstage_may_pin(s, req)) ||
              pinstage_switches_proto(s, req)))
        s->hold = SESSION_HOLD_DRAIN; /* Redis must have run its earlier requests first */
    else if (s->pin != NULL && pinstage_must_wait(s, req))
        s->hold = SESSION_HOLD_IDLE; /* answered by bulwark: after what the session owes */
    else if (s->pin == NULL && pinstage_must_queue(s, req))
        pinstage_queue(s); /* every dedicated connection is taken: wait in the pool's FIFO */
    return s->hold;
}

void
stages_set_command_table(struct proxy *px, struct cmd_table *t, bool learned)
{
    local_apply_policies(px, t);
    gate_apply(t);
    writes_apply(t);
    cfwd_apply(t);
    struct cmd_info *ci;
    if ((ci = cmd_lookup_path(t, "get")) != NULL)
        ci->rules |= CMD_RULE_GET;
    if ((ci = cmd_lookup_path(t, "mget")) != NULL)
        ci->rules |= CMD_RULE_MGET;
    cmd_table_free(px->cmds);
    px->cmds = t;
    px->cmds_learned = learned;
}
