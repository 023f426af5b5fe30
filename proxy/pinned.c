/* pinned: a client's session on a dedicated upstream connection (see pinned.h). */
#include "proxy/pinned.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/keyspace.h"
#include "proxy/proxy.h"
#include "proxy/reply.h"
#include "proxy/resp.h"
#include "proxy/session.h"
#include "proxy/upstream.h"
#include "proxy/util.h"

/* A refused request's place: Redis's reply number `reply` (its error for our
 * placeholder command) is replaced by bulwark's error text. */
struct pinned_swap {
    uint64_t reply; /* number of the reply to replace */
    char *text;     /* owned: the whole error reply, "-ERR …\r\n" */
};

/* A SELECT queued in a transaction: its position in EXEC's reply, its database. */
struct pinned_sel {
    int pos; /* 0-based among the transaction's queued requests */
    int db;  /* the database it names */
};

/* A reply that may move the client to another database. */
struct pinned_dbfx {
    uint64_t reply;         /* its number (p->replies when it has arrived) */
    int db;                 /* SELECT: the database, applied on +OK */
    struct pinned_sel *sel; /* EXEC: the transaction's SELECTs (owned), NULL for SELECT */
    size_t nsel;            /* entries in sel */
};

struct pinned {
    struct session *s;            /* owner (borrowed; it frees us) */
    const struct pinned_ops *ops; /* the owner's callbacks (borrowed, static) */
    struct upstream_conn *up;     /* the dedicated connection (borrowed from the pool) */
    bool multi;                   /* MULTI sent, EXEC/DISCARD not yet */
    bool watching;                /* WATCH sent outside MULTI, no EXEC/DISCARD/UNWATCH yet */
    bool sticky;                  /* MONITOR or CLIENT REPLY: pinned until disconnect */
    bool debug;                   /* SCRIPT DEBUG YES|SYNC sent: Lua debugger replies
                                  do not match requests one to one; pinned until
                                  disconnect, the connection closed, never pooled */
    uint64_t script_reply;        /* number of the reply that answers the last script
                                  (EVAL, FCALL …) sent, 0: none due */
    bool quit;                    /* QUIT sent: Redis closes the connection after its +OK;
                                  never unpinned (the close ends the client too) */
    bool dirty;                   /* a request may have changed connection state that
                                  only RESET (+ AUTH, SELECT) restores */
    int64_t subs;                 /* channels + patterns subscribed, from the replies */
    int64_t ssubs;                /* shard channels subscribed, from the replies */
    bool pubsub;                  /* a (P|S)(UN)SUBSCRIBE was sent: confirmations and
                                  messages are not replies to requests, unpin by
                                  marker; in RESP2 replies are then not counted
                                  (they look like messages), in RESP3 they are (every
                                  message is a push) */
    int proto;                    /* RESP version of the session (the client's) */
    bool subscribing;             /* the last (P|S)(UN)SUBSCRIBE sent subscribes */
    uint64_t outstanding;         /* requests whose reply is due (outside pubsub) */
    struct pinned_dbfx *fx;       /* replies that may move the client to another database
                                  (SELECT, EXEC of a transaction with SELECTs), in
                                  reply order (owned) */
    size_t nfx, fx_head;          /* entries in fx; the first not yet answered */
    int multi_queued;             /* requests sent since MULTI (EXEC's array positions) */
    struct pinned_sel *msel;      /* SELECTs queued in the open transaction (owned) */
    size_t nmsel;                 /* entries in msel */
    uint64_t replies;             /* replies received (outside pubsub) */
    uint64_t auth_reply;          /* number of the reply that answers an AUTH, 0: none */
    struct pinned_swap *swaps;    /* owned: replies to replace, in reply order */
    size_t nswaps, swap_head;     /* entries used; the first not yet due */
    bool marker_out;              /* an unpin marker PING is in flight (pubsub) */
    char marker[48];              /* its argument, "bulwark-unpin-<n>" */
    uint64_t sent_after;          /* client requests sent after the marker */
    uint64_t seq;                 /* markers sent */
    uint64_t blocked_reply;       /* number of the reply that answers the last blocking
                                  command sent outside MULTI (BLPOP …), 0: none */
    uint64_t blocked_ms;          /* when it was sent, monotonic ms */
    uint64_t exec_reply;          /* number of the reply that answers the EXEC of a
                                  transaction, 0: none due */
    bool shut;                    /* the client sent its last request (pinned_shutdown):
                                  the connection's write side is shut */
    bool tx_subs;                 /* a (P|S)(UN)SUBSCRIBE is queued in the open MULTI */
    bool exec_subs;               /* the EXEC of such a transaction is due: its reply
                                  holds their confirmations */
    bool reply_off;               /* CLIENT REPLY OFF sent: Redis answers nothing */
    bool monitor;                 /* MONITOR sent */
    bool skip_next;               /* CLIENT REPLY SKIP sent: Redis does not answer the
                                  next command */
};

/* Blocking when it waits: XREAD/XREADGROUP only with BLOCK before STREAMS. */
static bool
pinned_xread_blocks(const struct resp_request *req)
{
    for (int i = 1; i < req->argc; i++) {
        if (resp_arg_is(&req->argv[i], "STREAMS"))
            return false;
        if (resp_arg_is(&req->argv[i], "BLOCK"))
            return true;
    }
    return false;
}

/*
 * False for a command name none of the session-starting commands has: they
 * are 4 to 12 bytes long and start with one of a b c e f m p s u w x (GET,
 * SET, HGET, INCR … are turned away without a string compare; a profile of
 * GET -P 16 had pinned_needed() at 8% of bulwark's instructions).
 */
static bool
pinned_name_may_pin(const struct resp_arg *a)
{
    if (a->len < 4 || a->len > 12)
        return false;
    switch (a->ptr[0] | 0x20) {
    case 'a':
    case 'b':
    case 'c':
    case 'e':
    case 'f':
    case 'm':
    case 'p':
    case 's':
    case 'u':
    case 'w':
    case 'x':
        return true;
    default:
        return false;
    }
}

bool
pinned_is_script(const struct resp_request *req)
{
    if (!pinned_name_may_pin(&req->argv[0]))
        return false;
    static const char *const names[] = {"eval",       "evalsha", "eval_ro",
                                        "evalsha_ro", "fcall",   "fcall_ro"};
    for (size_t i = 0; i < BW_ARRAY_LEN(names); i++)
        if (resp_arg_is(&req->argv[0], names[i]))
            return true;
    return false;
}

/* SCRIPT DEBUG YES or SYNC: Redis's Lua debugger takes the connection. */
static bool
pinned_is_debug(const struct resp_request *req)
{
    return req->argc == 3 && resp_arg_is(&req->argv[0], "script") &&
           resp_arg_is(&req->argv[1], "debug") &&
           (resp_arg_is(&req->argv[2], "yes") || resp_arg_is(&req->argv[2], "sync"));
}

/* Commands that block the connection until data arrives (outside MULTI). */
static bool
pinned_is_blocking(const struct resp_request *req)
{
    static const char *const names[] = {"blpop",    "brpop",    "blmove", "brpoplpush", "blmpop",
                                        "bzpopmin", "bzpopmax", "bzmpop", "wait"};
    for (size_t i = 0; i < BW_ARRAY_LEN(names); i++)
        if (resp_arg_is(&req->argv[0], names[i]))
            return true;
    return (resp_arg_is(&req->argv[0], "xread") || resp_arg_is(&req->argv[0], "xreadgroup")) &&
           pinned_xread_blocks(req);
}

bool
pinned_needed(const struct resp_request *req)
{
    static const char *const names[] = {
        "multi",        "watch",        "subscribe", "psubscribe", "ssubscribe", "unsubscribe",
        "punsubscribe", "sunsubscribe", "monitor",   "blpop",      "brpop",      "blmove",
        "brpoplpush",   "blmpop",       "bzpopmin",  "bzpopmax",   "bzmpop",     "wait",
    };
    const struct resp_arg *a = &req->argv[0];
    if (!pinned_name_may_pin(a))
        return false;
    for (size_t i = 0; i < BW_ARRAY_LEN(names); i++)
        if (resp_arg_is(a, names[i]))
            return true;
    if (resp_arg_is(a, "xread") || resp_arg_is(a, "xreadgroup"))
        return pinned_xread_blocks(req);
    if (pinned_is_script(req))
        return true;
    /* ACL users other than default: the session is theirs (client.c only
     * lets this through when bulwark has no requirepass of its own). */
    if (resp_arg_is(a, "auth") && req->argc == 3 && !resp_arg_is(&req->argv[1], "default"))
        return true;
    if (req->argc < 2)
        return false;
    /* Requests that must not queue behind a stuck shared connection: they
     * unstick it (a busy script, a paused server). */
    if ((resp_arg_is(a, "script") || resp_arg_is(a, "function")) &&
        resp_arg_is(&req->argv[1], "kill"))
        return true;
    if (pinned_is_debug(req))
        return true;
    return resp_arg_is(a, "client") &&
           (resp_arg_is(&req->argv[1], "reply") || resp_arg_is(&req->argv[1], "unpause"));
}

static bool
pinned_clean(const struct pinned *p)
{
    return !p->multi && !p->watching && !p->sticky && !p->debug && !p->quit && p->subs == 0 &&
           p->ssubs == 0 && !p->exec_subs;
}

/* Replies are not counted: RESP2 pub/sub, Lua debugger output. */
static bool
pinned_uncounted(const struct pinned *p)
{
    return (p->pubsub && p->proto != 3) || p->debug;
}

/* True for the (P|S)(UN)SUBSCRIBE family. */
static bool
pinned_is_subscribe(const struct resp_arg *a)
{
    return resp_arg_is(a, "subscribe") || resp_arg_is(a, "psubscribe") ||
           resp_arg_is(a, "ssubscribe") || resp_arg_is(a, "unsubscribe") ||
           resp_arg_is(a, "punsubscribe") || resp_arg_is(a, "sunsubscribe");
}

/* Send the unpin marker when the state looks clean and none is in flight. */
static void
pinned_maybe_marker(struct pinned *p)
{
    char cmd[96];
    if (!p->pubsub || !pinned_clean(p) || p->marker_out || p->up == NULL || p->shut)
        return;
    snprintf(p->marker, sizeof(p->marker), "bulwark-unpin-%llu", (unsigned long long)++p->seq);
    int n = snprintf(cmd, sizeof(cmd), "*2\r\n$4\r\nPING\r\n$%zu\r\n%s\r\n", strlen(p->marker),
                     p->marker);
    if (upstream_pinned_send(p->up, cmd, (size_t)n) != BW_OK)
        return;
    p->marker_out = true;
    p->sent_after = 0;
}

/* True when the reply (len bytes at r) answers our marker PING. */
static bool
pinned_is_marker(const struct pinned *p, const char *r, size_t len)
{
    char want[128];
    size_t ml = strlen(p->marker);
    int n = snprintf(want, sizeof(want), "$%zu\r\n%s\r\n", ml, p->marker);
    if ((size_t)n == len && memcmp(r, want, len) == 0)
        return true;
    n = snprintf(want, sizeof(want), "*2\r\n$4\r\npong\r\n$%zu\r\n%s\r\n", ml, p->marker);
    return (size_t)n == len && memcmp(r, want, len) == 0;
}

/*
 * n, a (P|S)(UN)SUBSCRIBE confirmation (RESP2 array or RESP3 push of kind,
 * channel, count)? Its count is taken; false for anything else.
 */
static bool
pinned_take_confirmation(struct pinned *p, const struct reply_node *n)
{
    if ((n->type != '*' && n->type != '>') || n->nil || n->nelems != 3 ||
        n->elems[0].type != '$' || n->elems[2].type != ':')
        return false;
    const struct reply_node *kind = &n->elems[0];
    if (reply_node_is(kind, "subscribe") || reply_node_is(kind, "psubscribe") ||
        reply_node_is(kind, "unsubscribe") || reply_node_is(kind, "punsubscribe"))
        p->subs = n->elems[2].integer;
    else if (reply_node_is(kind, "ssubscribe") || reply_node_is(kind, "sunsubscribe"))
        p->ssubs = n->elems[2].integer;
    else
        return false;
    return true;
}

/* True for a RESP2 pub/sub message (an array opening with "message" …). */
static bool
pinned_is_message(const struct reply_node *n)
{
    return n->nelems >= 3 && n->elems[0].type == '$' &&
           (reply_node_is(&n->elems[0], "message") || reply_node_is(&n->elems[0], "pmessage") ||
            reply_node_is(&n->elems[0], "smessage"));
}

/*
 * Follow subscription counts in (P|S)(UN)SUBSCRIBE confirmations, and in
 * the reply of an EXEC whose transaction queued some (Redis puts their
 * confirmations inside EXEC's array, pushes nested in it in RESP3).
 */
static void
pinned_track_reply(struct pinned *p, const char *r, size_t len)
{
    if (len == 8 && memcmp(r, "+RESET\r\n", 8) == 0) {
        p->subs = p->ssubs = 0;
        upstream_conn_was_reset(p->up); /* RESET also goes back to database 0 and RESP2 */
        p->proto = 2;
        keyspace_select(p->s, 0);
        keyspace_set_proto(p->s, 2);
        return;
    }
    if (p->exec_subs && r[0] == '-') { /* EXECABORT: nothing ran */
        p->exec_subs = false;
        return;
    }
    bool exec = p->exec_subs && r[0] == '*';
    /* RESP2's confirmations are arrays, RESP3's pushes */
    if (!exec && (len < 4 || (r[0] != '*' && r[0] != '>') || r[1] != '3'))
        return;
    struct reply_node *n = reply_parse(r, len);
    if (n != NULL && !pinned_take_confirmation(p, n) && exec && !pinned_is_message(n)) {
        for (size_t i = 0; i < n->nelems; i++) /* EXEC's array (nil: aborted by WATCH) */
            (void)pinned_take_confirmation(p, &n->elems[i]);
        p->exec_subs = false;
    }
    reply_node_free(n);
}

/*
 * The reply to a SELECT (or to the EXEC of a transaction that queued some):
 * when Redis switched, the client is in that database from now on, on this
 * connection and on the shared ones after the session. In a transaction the
 * last SELECT Redis ran (+OK in EXEC's array) wins; an aborted one (EXECABORT,
 * a WATCH that failed: nil) moves nothing.
 */
static void
pinned_track_select(struct pinned *p, const char *r, size_t len)
{
    struct pinned_dbfx *f = &p->fx[p->fx_head++];
    int db = -1;
    if (f->sel == NULL) {
        if (len == 5 && memcmp(r, "+OK\r\n", 5) == 0)
            db = f->db;
    } else {
        struct reply_node *n = reply_parse(r, len);
        for (size_t i = f->nsel; n != NULL && n->type == '*' && !n->nil && i-- > 0;) {
            int pos = f->sel[i].pos;
            if (pos < n->integer && n->elems[pos].type == '+' &&
                reply_node_is(&n->elems[pos], "OK")) {
                db = f->sel[i].db;
                break;
            }
        }
        reply_node_free(n);
        bw_free(f->sel);
        f->sel = NULL;
    }
    if (p->fx_head == p->nfx)
        p->fx_head = p->nfx = 0;
    if (db >= 0) {
        upstream_conn_set_db(p->up, db);
        keyspace_select(p->s, db);
    }
}

/* Remember a reply that may move the client (sel: owned, NULL for a SELECT). */
static void
pinned_push_dbfx(struct pinned *p, int db, struct pinned_sel *sel, size_t nsel)
{
    p->fx = bw_realloc(p->fx, (p->nfx + 1) * sizeof(*p->fx));
    p->fx[p->nfx++] = (struct pinned_dbfx){p->replies + p->outstanding, db, sel, nsel};
}

static void
pinned_dbfx_free(struct pinned *p)
{
    for (size_t i = p->fx_head; i < p->nfx; i++)
        bw_free(p->fx[i].sel);
    bw_free(p->fx);
    bw_free(p->msel);
}

/* A reply from the dedicated connection. */
static void
pinned_raw_cb(void *owner, struct evbuffer *reply, size_t len)
{
    struct pinned *p = owner;
    const char *r = (const char *)evbuffer_pullup(reply, (ev_ssize_t)len);
    if (p->marker_out && pinned_is_marker(p, r, len)) {
        p->marker_out = false;
        if (p->sent_after == 0 && pinned_clean(p)) {
            p->ops->unpin(p->s); /* frees p: touch nothing after */
            return;
        }
        pinned_maybe_marker(p);
        return;
    }
    if (!pinned_uncounted(p) && r[0] != '>') { /* a push answers no request */
        p->replies++;
        if (p->outstanding > 0)
            p->outstanding--;
        if (p->script_reply != 0) { /* answered, or the next one starts */
            if (p->replies >= p->script_reply)
                p->script_reply = 0;
            upstream_pinned_script(p->up, p->script_reply != 0);
        }
        if (p->exec_reply != 0 && p->replies >= p->exec_reply)
            p->exec_reply = 0; /* the transaction's outcome is the client's now */
        if (p->swap_head < p->nswaps && p->replies == p->swaps[p->swap_head].reply) {
            /* Redis's unknown-command error for our placeholder: show ours */
            char *text = p->swaps[p->swap_head++].text;
            if (p->swap_head == p->nswaps)
                p->swap_head = p->nswaps = 0;
            evbuffer_drain(reply, len);
            struct evbuffer *mine = evbuffer_new();
            evbuffer_add(mine, text, strlen(text));
            bw_free(text);
            bool alive = p->ops->deliver(p->s, mine, evbuffer_get_length(mine));
            evbuffer_free(mine);
            if (!alive)
                return; /* the client was closed: p is gone */
            if (!p->pubsub && p->outstanding == 0 && pinned_clean(p)) {
                p->ops->unpin(p->s); /* frees p */
                return;
            }
            pinned_maybe_marker(p);
            return;
        }
        if (p->fx_head < p->nfx && p->replies == p->fx[p->fx_head].reply)
            pinned_track_select(p, r, len);
        if (p->auth_reply != 0 && p->replies == p->auth_reply) {
            p->auth_reply = 0; /* the connection is the ACL user's only if AUTH passed */
            p->sticky = p->sticky || (len == 5 && memcmp(r, "+OK\r\n", 5) == 0);
        }
    }
    pinned_track_reply(p, r, len);
    if (!p->ops->deliver(p->s, reply, len))
        return; /* the client was closed (output limit): p is gone */
    if (!p->pubsub && !p->debug && p->outstanding == 0 && pinned_clean(p)) {
        p->ops->unpin(p->s); /* every reply is out and nothing is left: frees p */
        return;
    }
    pinned_maybe_marker(p);
}

/* The dedicated connection failed: the client loses its session, as with Redis. */
static void
pinned_down_cb(void *owner, const char *reason)
{
    struct pinned *p = owner;
    p->up = NULL;
    p->ops->lost(p->s, reason);
}

struct pinned *
pinned_start(struct session *s, const struct pinned_ops *ops, char *err, size_t errlen)
{
    struct proxy *px = s->px;
    struct pinned *p = bw_calloc(1, sizeof(*p));
    p->s = s;
    p->ops = ops;
    p->proto = s->proto;
    p->up = upstream_pinned_acquire(s->pin_pool != NULL ? s->pin_pool : px->pool, p->proto, p,
                                    pinned_raw_cb, pinned_down_cb, err, errlen);
    if (p->up == NULL) {
        bw_free(p);
        return NULL;
    }
    upstream_pinned_select(p->up, s->db); /* the session starts in the client's db */
    return p;
}

/* EXEC or DISCARD (argc 1 inside MULTI: the transaction ends, else an error). */
static void
pinned_track_end(struct pinned *p, const struct resp_request *req)
{
    bool end = p->multi && req->argc == 1, exec = end && resp_arg_is(&req->argv[0], "exec");
    if (exec && p->nmsel > 0) {
        pinned_push_dbfx(p, -1, p->msel, p->nmsel); /* the list goes with the EXEC */
        p->msel = NULL;
    }
    if (exec) {
        p->exec_reply = p->replies + p->outstanding;
        p->exec_subs = p->tx_subs;
    }
    if (end)
        p->multi = p->watching = p->tx_subs = false;
    p->nmsel = 0;
}

/* Request-side state changes of one request. */
static void
pinned_track_request(struct pinned *p, const struct resp_request *req)
{
    static const char *const stateful[] = {"reset",    "auth",      "hello",  "select",  "client",
                                           "readonly", "readwrite", "asking", "monitor", "watch"};
    const struct resp_arg *a = &req->argv[0];
    for (size_t i = 0; i < BW_ARRAY_LEN(stateful); i++)
        p->dirty = p->dirty || resp_arg_is(a, stateful[i]);
    /* Only what Redis accepts changes the state: a MULTI with arguments or
     * in subscribed mode, an EXEC or DISCARD outside MULTI (which keeps the
     * WATCH) are errors. (A WATCH makes the session dirty anyway: RESET on
     * release, whatever bulwark believes.) */
    if (p->multi && !resp_arg_is(a, "exec") && !resp_arg_is(a, "discard"))
        p->multi_queued++;
    if (resp_arg_is(a, "multi")) {
        if (!p->multi && req->argc == 1) {
            p->multi_queued = 0;
            p->nmsel = 0;
        }
        /* In pub/sub mode Redis refuses MULTI while subscribed and accepts it
         * once every subscription is gone, which bulwark cannot tell while
         * replies are not counted: it assumes a transaction (no unpin marker
         * may be queued inside one; a wrong guess only keeps the session
         * pinned until EXEC/DISCARD). */
        p->multi = p->multi || req->argc == 1;
    } else if (resp_arg_is(a, "exec") || resp_arg_is(a, "discard")) {
        pinned_track_end(p, req);
    } else if (resp_arg_is(a, "select") && req->argc == 2) {
        long long db;
        if (!resp_arg_ll(&req->argv[1], &db) || db < 0 || db > INT32_MAX) {
            /* Redis refuses it: nothing changes */
        } else if (p->multi) {
            p->msel = bw_realloc(p->msel, (p->nmsel + 1) * sizeof(*p->msel));
            p->msel[p->nmsel++] = (struct pinned_sel){p->multi_queued - 1, (int)db};
        } else if (!pinned_uncounted(p)) { /* (subscribed in RESP2: Redis refuses it) */
            pinned_push_dbfx(p, (int)db, NULL, 0);
        }
    } else if (resp_arg_is(a, "watch")) {
        p->watching = p->watching || !p->multi;
    } else if (resp_arg_is(a, "unwatch")) {
        if (!p->multi)
            p->watching = false;
    } else if (resp_arg_is(a, "monitor") || (resp_arg_is(a, "client") && req->argc >= 2 &&
                                             resp_arg_is(&req->argv[1], "reply"))) {
        p->sticky = true;
        p->monitor = p->monitor || resp_arg_is(a, "monitor");
    } else if (resp_arg_is(a, "auth")) {
        if (!p->pubsub) /* sticky if it passes: see pinned_raw_cb */
            p->auth_reply = p->replies + p->outstanding;
    } else if (pinned_is_subscribe(a)) {
        p->pubsub = p->dirty = true;
        p->tx_subs = p->tx_subs || p->multi;
        p->subscribing = !resp_arg_is(a, "unsubscribe") && !resp_arg_is(a, "punsubscribe") &&
                         !resp_arg_is(a, "sunsubscribe");
    } else if (resp_arg_is(a, "reset")) {
        p->multi = p->watching = p->sticky = false;
    } else if (pinned_is_debug(req)) {
        /* Even if Redis refuses it (inside MULTI, behind a pipeline): the
         * session then only lasts longer, and its connection is closed. */
        p->debug = true;
        p->script_reply = 0; /* a debugged script blocks no one but its caller
                                (fork) or everyone until it ends (sync) */
        upstream_pinned_script(p->up, false);
    } else if (pinned_is_script(req) && !pinned_uncounted(p) && !p->multi) {
        p->script_reply = p->replies + p->outstanding;
        upstream_pinned_script(p->up, true);
    } else if (resp_arg_is(a, "quit")) {
        p->quit = true;
    }
}

/*
 * Whether Redis answers a request sent now (req NULL: one that is not CLIENT
 * REPLY), following CLIENT REPLY as Redis 7.0 does (networking.c
 * clientCommand, resetClient): OFF answers nothing from itself on, SKIP
 * (outside OFF) nothing for itself and the next command, ON +OK and
 * everything after. Inside MULTI, CLIENT REPLY is only queued.
 */
static bool
pinned_reply_due(struct pinned *p, const struct resp_request *req)
{
    bool skip = p->skip_next;
    p->skip_next = false;
    if (req != NULL && !p->multi && req->argc == 3 && resp_arg_is(&req->argv[0], "client") &&
        resp_arg_is(&req->argv[1], "reply")) {
        const struct resp_arg *mode = &req->argv[2];
        if (resp_arg_is(mode, "on")) {
            p->reply_off = false;
            return true;
        }
        if (resp_arg_is(mode, "off")) {
            p->reply_off = true;
            return false;
        }
        if (resp_arg_is(mode, "skip")) {
            p->skip_next = !p->reply_off;
            return false;
        }
    }
    return !p->reply_off && !skip;
}

bool
pinned_local_muted(struct pinned *p)
{
    bool skip = p->skip_next;
    if (!skip)
        return p->reply_off;
    /* Redis's own SKIP goes with the next command it runs: one it does
     * not answer takes it */
    static const char ping[] = "*1\r\n$4\r\nPING\r\n";
    p->skip_next = false;
    if (p->up != NULL)
        (void)upstream_pinned_send(p->up, ping, sizeof(ping) - 1);
    return true;
}

/* Count req in its command's stats as answered on the pinned connection. */
static void
pinned_count(struct pinned *p, const struct resp_request *req)
{
    struct proxy *px = p->s->px;
    if (px->cmdstats.cur.id == 0) { /* inside a session: not looked up before */
        const struct cmd_info *ci = cmd_lookup(px->cmds, req->argv[0].ptr, req->argv[0].len);
        if (ci != NULL && ci->subcommands != NULL && req->argc >= 2) {
            const struct cmd_info *sub =
                cmd_lookup(ci->subcommands, req->argv[1].ptr, req->argv[1].len);
            ci = sub != NULL ? sub : ci;
        }
        cmdstats_command(&px->cmdstats, ci);
    }
    cmdstats_pinned(&px->cmdstats);
}

void
pinned_forward(struct pinned *p, const struct resp_request *req, const char *cmd, size_t len)
{
    pinned_count(p, req);
    /* for CLIENT UNBLOCK; only with nothing due on the connection: bulwark's
     * reply is told from the owner's by its place in the FIFO */
    if (p->up != NULL && !p->multi && !pinned_uncounted(p) && p->outstanding == 0 &&
        !p->reply_off && !p->skip_next && pinned_is_blocking(req))
        upstream_pinned_learn_id(p->up);
    if (p->up == NULL || upstream_pinned_send(p->up, cmd, len) != BW_OK) {
        p->ops->lost(p->s, "dedicated upstream connection lost");
        return;
    }
    if (p->marker_out)
        p->sent_after++;
    /* RESP3: (un)subscribing is confirmed by pushes only (in MULTI: +QUEUED) */
    bool due = pinned_reply_due(p, req);
    if (due && (p->proto != 3 || p->multi || !pinned_is_subscribe(&req->argv[0])))
        p->outstanding++;
    if (due && !p->multi && pinned_is_blocking(req)) {
        p->blocked_reply = p->replies + p->outstanding;
        p->blocked_ms = bw_now_ms();
    }
    pinned_track_request(p, req);
    pinned_maybe_marker(p);
}

void
pinned_refuse_in_multi(struct pinned *p, const char *error_reply)
{
    /* An unknown command makes Redis mark the transaction (EXECABORT at
     * EXEC), as a rejected command does; its reply is replaced by ours. */
    static const char cmd[] = "*1\r\n$24\r\nbulwark-refused-in-multi\r\n";
    if (p->up == NULL || upstream_pinned_send(p->up, cmd, sizeof(cmd) - 1) != BW_OK) {
        p->ops->lost(p->s, "dedicated upstream connection lost");
        return;
    }
    if (!pinned_reply_due(p, NULL))
        return; /* CLIENT REPLY OFF or SKIP: Redis answers it nothing, nor do we */
    p->outstanding++;
    p->swaps = bw_realloc(p->swaps, (p->nswaps + 1) * sizeof(*p->swaps));
    p->swaps[p->nswaps].reply = p->replies + p->outstanding;
    p->swaps[p->nswaps++].text = bw_strdup(error_reply);
}

bool
pinned_blocked(const struct pinned *p)
{
    if (pinned_uncounted(p))
        return pinned_subscriptions(p) > 0;
    if (p->pubsub && p->outstanding == 0) /* RESP3, subscribed: waits for messages */
        return pinned_subscriptions(p) > 0;
    return p->outstanding > 0 && p->blocked_reply == p->replies + 1;
}

void
pinned_shutdown(struct pinned *p)
{
    if (p->shut)
        return;
    p->shut = true;
    if (p->up != NULL)
        upstream_pinned_shutdown(p->up);
}

bool
pinned_answered(const struct pinned *p)
{
    if (pinned_uncounted(p))
        return false; /* Redis's close, or the unpin marker, tells */
    if (p->outstanding == 0)
        return true;
    if (p->shut)
        return false; /* Redis answers what it would, and closes */
    /* a blocking command that finds its data answers within a round trip */
    return pinned_blocked(p) && bw_now_ms() - p->blocked_ms >= PINNED_BLOCK_GRACE_MS;
}

bool
pinned_times_out(const struct pinned *p)
{
    return !pinned_uncounted(p) && p->outstanding == 0 && pinned_subscriptions(p) == 0 &&
           !p->monitor;
}

bool
pinned_holds_state(const struct pinned *p)
{
    return !pinned_clean(p) || p->pubsub || p->auth_reply != 0 || p->exec_reply != 0 || p->shut;
}

bool
pinned_idle(const struct pinned *p)
{
    return !pinned_uncounted(p) && p->outstanding == 0;
}

bool
pinned_in_multi(const struct pinned *p)
{
    return p->multi;
}

int64_t
pinned_subscriptions(const struct pinned *p)
{
    return p->subs + p->ssubs;
}

bool
pinned_surely_subscribed(const struct pinned *p)
{
    return p->pubsub && p->subscribing;
}

bool
pinned_debugging(const struct pinned *p)
{
    return p->debug;
}

bool
pinned_maybe_subscribed(const struct pinned *p)
{
    return pinned_subscriptions(p) > 0 || (p->pubsub && p->subscribing);
}

uint64_t
pinned_outstanding(const struct pinned *p)
{
    return pinned_uncounted(p) ? 0 : p->outstanding;
}

/* The texts of refused requests not answered yet, and the array. */
static void
pinned_swaps_free(struct pinned *p)
{
    for (size_t i = p->swap_head; i < p->nswaps; i++)
        bw_free(p->swaps[i].text);
    bw_free(p->swaps);
}

void
pinned_free(struct pinned *p)
{
    if (p == NULL)
        return;
    if (p->up != NULL)
        upstream_pinned_release(p->up, false, true);
    pinned_swaps_free(p);
    pinned_dbfx_free(p);
    bw_free(p);
}

/* Hand the connection back for reuse (the unpin marker came back clean). */
void
pinned_free_clean(struct pinned *p)
{
    if (p->up != NULL)
        upstream_pinned_release(p->up, !p->debug && !p->shut, p->dirty);
    pinned_swaps_free(p);
    pinned_dbfx_free(p);
    bw_free(p);
}

uint64_t
pinned_redis_id(const struct pinned *p)
{
    return p->up != NULL ? upstream_conn_redis_id(p->up) : 0;
}

bool
pinned_counts_replies(const struct pinned *p)
{
    return !pinned_uncounted(p);
}

/*
 * Under the client's CLIENT REPLY OFF, bulwark's own request on the
 * connection (HELLO, SELECT: upstream.c waits for its reply) goes between
 * CLIENT REPLY ON (answered to upstream.c too) and OFF (answers nothing).
 */
static void
pinned_unmuted(struct pinned *p, bool begin)
{
    static const char off[] = "*3\r\n$6\r\nCLIENT\r\n$5\r\nREPLY\r\n$3\r\nOFF\r\n";
    if (!p->reply_off)
        return;
    if (begin)
        upstream_pinned_reply_on(p->up);
    else
        (void)upstream_pinned_send(p->up, off, sizeof(off) - 1);
}

void
pinned_follow_proto(struct pinned *p, int proto)
{
    p->proto = proto;
    if (p->up == NULL || upstream_conn_proto(p->up) == proto)
        return;
    pinned_unmuted(p, true);
    upstream_conn_set_proto(p->up, proto);
    pinned_unmuted(p, false);
}

void
pinned_follow_db(struct pinned *p, int db)
{
    if (p->up == NULL || upstream_conn_db(p->up) == db)
        return;
    pinned_unmuted(p, true);
    upstream_pinned_select(p->up, db);
    pinned_unmuted(p, false);
}
