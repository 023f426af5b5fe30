/*
 * pinstage: the pinned-session stage — requests of a client in a session on
 * a dedicated upstream connection (MULTI, blocking commands, pub/sub,
 * scripts …), the requests that start one, and what the session's replies
 * and end do to the client (see pinstage.h; pinned.c follows the session's
 * protocol state).
 */
#include "proxy/pinstage.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include <event2/buffer.h>

#include "proxy/batch.h"
#include "proxy/command.h"
#include "proxy/cfwd.h"
#include "proxy/ctrack.h"
#include "proxy/encode.h"
#include "proxy/forward.h"
#include "proxy/local.h"
#include "proxy/log.h"
#include "proxy/pinned.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/session.h"
#include "proxy/tracking.h"
#include "proxy/upstream.h"
#include "proxy/util.h"
#include "proxy/writes.h"

/* Redis's error for a server with no room (networking.c, maxclients). */
#define PINSTAGE_NO_ROOM "ERR max number of clients reached"
/* Redis's EXEC of a transaction flagged by an error (multi.c). */
#define PINSTAGE_EXECABORT "-EXECABORT Transaction discarded because of previous errors.\r\n"

static bool pinstage_deliver(struct session *s, struct evbuffer *reply, size_t len);
static void pinstage_unpin(struct session *s);
static void pinstage_lost(struct session *s, const char *reason);
static bool pinstage_is_local(const struct resp_request *req);
static bool pinstage_other_node(struct session *s, const struct cmd_info *ci,
                                const struct resp_request *req);
static bool pinstage_subscribed_harmless(const struct session *s, const struct resp_request *req);
static void pinstage_refuse(struct session *s, const struct resp_request *req, const char *why);

/* What pinned.c tells the session's owner. */
static const struct pinned_ops pinstage_ops = {
    .deliver = pinstage_deliver,
    .unpin = pinstage_unpin,
    .lost = pinstage_lost,
};

/*
 * The error for a request of a pinned client that bulwark must not forward
 * (denied, refused, or answered by bulwark itself) while the session is
 * inside MULTI or has a reply due: Redis's own no-multi error for a denied
 * no-multi command inside MULTI, else bulwark's refusal. Into err (size).
 */
static void
pinstage_refusal(const struct session *s, const struct resp_request *req,
                 const struct cmd_info *pci, const struct cmd_info *sub, bool denied, char *err,
                 size_t size)
{
    int n = (int)BW_MIN(req->argv[0].len, 128);
    if (denied && pinned_in_multi(s->pin) && pci != NULL && (pci->flags & CMD_NO_MULTI))
        snprintf(err, size, "-ERR Command not allowed inside a transaction\r\n");
    else if (denied)
        snprintf(err, size, "-ERR command '%.*s' is disabled in bulwark (deny-commands)\r\n", n,
                 req->argv[0].ptr);
    else if (sub != NULL && sub->policy == LOCAL_REFUSED)
        local_refusal_error(sub, err, size);
    else if (pinned_in_multi(s->pin))
        snprintf(err, size, "-ERR %.*s inside MULTI is not supported by bulwark\r\n", n,
                 req->argv[0].ptr);
    else
        snprintf(err, size,
                 "-ERR %.*s behind a pending reply of a blocking command or WATCH is not "
                 "supported by bulwark\r\n",
                 n, req->argv[0].ptr);
}

/*
 * A request that needed a dedicated connection gets none (err: "ERR …").
 * A refused MULTI starts a failed transaction and a refused WATCH fails the
 * next one: nothing the client pipelined after them runs outside one.
 */
static void
pinstage_unavailable(struct session *s, const struct resp_request *req, const char *err)
{
    session_reply_error(s, "%s", err);
    if (resp_arg_is(&req->argv[0], "multi"))
        s->multi_refused = true;
    else if (resp_arg_is(&req->argv[0], "watch"))
        s->watch_refused = true;
}

/* After a refused WATCH: the MULTI or WATCH that must be refused as well. */
static bool
pinstage_refused_by_watch(const struct session *s, const struct resp_request *req)
{
    return s->watch_refused && ((resp_arg_is(&req->argv[0], "multi") && req->argc == 1) ||
                                (resp_arg_is(&req->argv[0], "watch") && req->argc >= 2));
}

/*
 * Requests after a MULTI or WATCH that got no dedicated connection. Up to
 * EXEC or DISCARD a refused MULTI is a failed transaction, as one with a
 * command Redis rejected: each request gets the no-room error, EXEC
 * -EXECABORT, DISCARD +OK (both also end a refused WATCH). After a refused
 * WATCH, MULTI and WATCH are refused the same way until UNWATCH. QUIT and
 * RESET end both and run. True when req was answered here.
 */
bool
pinstage_handle_refused(struct session *s, const struct resp_request *req)
{
    const struct resp_arg *a = &req->argv[0];
    if (resp_arg_is(a, "quit") || resp_arg_is(a, "reset")) {
        s->multi_refused = s->watch_refused = false;
        return false;
    }
    if (!s->multi_refused) {
        if (resp_arg_is(a, "unwatch"))
            s->watch_refused = false;
        if (!pinstage_refused_by_watch(s, req))
            return false;
        pinstage_unavailable(s, req, PINSTAGE_NO_ROOM);
        return true;
    }
    if (req->argc == 1 && (resp_arg_is(a, "exec") || resp_arg_is(a, "discard"))) {
        s->multi_refused = s->watch_refused = false;
        if (resp_arg_is(a, "exec"))
            session_reply_raw(s, PINSTAGE_EXECABORT, strlen(PINSTAGE_EXECABORT));
        else
            session_reply_status(s, "OK");
        return true;
    }
    session_reply_error(s, "%s", PINSTAGE_NO_ROOM);
    return true;
}

/* True when req passes admission (known, arity, AUTH, deny-commands), no reply. */
static bool
pinstage_admitted(const struct session *s, const struct resp_request *req)
{
    const struct proxy *px = s->px;
    const struct cmd_info *ci = cmd_lookup(px->cmds, req->argv[0].ptr, req->argv[0].len);
    if (ci != NULL && ci->subcommands != NULL && req->argc >= 2)
        ci = cmd_lookup(ci->subcommands, req->argv[1].ptr, req->argv[1].len);
    return ci != NULL && cmd_arity_ok(ci, req->argc) &&
           (s->authenticated || (ci->flags & CMD_NO_AUTH)) &&
           !session_is_denied(px, req->argv[0].ptr, req->argv[0].len);
}

/*
 * True when req (of an unpinned client with nothing due) would start a
 * session but no dedicated connection is free for it now, or others wait
 * ahead: it must queue. Not for what is refused anyway (admission, a failed
 * transaction, the wait already timed out).
 */
bool
pinstage_must_queue(struct session *s, const struct resp_request *req)
{
    bool woken = s->pin_woken; /* the first request parsed after a wake is the held one */
    s->pin_woken = false;
    if (!pinstage_pins(s, req) || s->pin_timed_out || s->multi_refused ||
        !pinstage_may_pin(s, req) || !pinstage_admitted(s, req) ||
        pinstage_refused_by_watch(s, req))
        return false;
    if (pinned_is_script(req))
        return false; /* no room: it runs on the shared connection (pinstage_request) */
    return !upstream_pinned_room(s->px->pool, woken);
}

/* The pool's answer to a held request: a connection is free, or time is up. */
static void
pinstage_wake(void *arg, bool timed_out)
{
    struct session *s = arg;
    s->pin_waiter = NULL; /* freed by the pool */
    s->hold = SESSION_RUN;
    if (timed_out)
        s->pin_timed_out = true;
    else
        s->pin_woken = true;
    s->ops->resume(s);
}

void
pinstage_queue(struct session *s)
{
    s->hold = SESSION_HOLD_POOL;
    s->pin_waiter = upstream_pinned_wait(s->px->pool, pinstage_wake, s);
}

/*
 * A SELECT in a session that bulwark answers itself instead of forwarding:
 * an index beyond upstream-databases (when set, it may be fewer than
 * Redis's), or one sent while the session's replies are not
 * counted (pub/sub winding down), where its reply could not be matched and
 * the client's database would be lost.
 */
static bool
pinstage_select_refused(const struct session *s, const struct resp_request *req)
{
    long long db;
    if (!resp_arg_is(&req->argv[0], "select") || req->argc != 2)
        return false;
    if (!pinned_counts_replies(s->pin))
        return true;
    /* Redis judges its own range (inside MULTI it queues and fails at EXEC) */
    return s->px->cfg.upstream_databases > 0 && resp_arg_ll(&req->argv[1], &db) &&
           db >= s->px->databases;
}

/*
 * A request of a client in a pinned session. Redis judges everything on the
 * dedicated connection, unknown commands included, except what bulwark
 * denies, refuses or answers itself (its CLIENT view, SELECT, HELLO): those
 * are never forwarded. With nothing due and outside MULTI bulwark answers
 * them in order; otherwise an unknown command holds their place and its
 * error is replaced by bulwark's (inside MULTI that aborts the transaction,
 * as Redis's own rejections do).
 */
bool
pinstage_handle(struct session *s, const struct resp_request *req, struct pinned **keep)
{
    struct proxy *px = s->px;
    const struct cmd_info *pci = cmd_lookup(px->cmds, req->argv[0].ptr, req->argv[0].len);
    const struct cmd_info *sub = pci;
    if (pci != NULL && pci->subcommands != NULL && req->argc >= 2)
        sub = cmd_lookup(pci->subcommands, req->argv[1].ptr, req->argv[1].len);
    bool denied = session_is_denied(px, req->argv[0].ptr, req->argv[0].len);
    bool refused = sub != NULL && sub->policy == LOCAL_REFUSED;
    bool noauth = !s->authenticated && (pci == NULL || !(pci->flags & CMD_NO_AUTH));
    bool bad_select = pinstage_select_refused(s, req);
    *keep = NULL;
    if (!denied && !refused && !noauth && !bad_select && !pinstage_is_local(req)) {
        if (!pinstage_other_node(s, pci, req)) {
            pinstage_request(s, pci, req);
        } else if (pinned_in_multi(s->pin)) { /* a transaction stays on one node */
            pinned_refuse_in_multi(s->pin, "-CROSSSLOT Keys in request don't hash to the same "
                                           "slot\r\n");
        } else if (pinned_idle(s->pin)) {
            /* another master's keys outside a transaction (after EXEC, while
             * WATCHing): the shared path takes it, the session set aside */
            struct slot *ps = s->pin_slot;
            s->pin_slot = NULL;
            slot_ready(ps);
            if (s->closed)
                return true;
            s->q.mute = pinned_local_muted(s->pin); /* under CLIENT REPLY OFF/SKIP */
            *keep = s->pin;
            s->pin = NULL;
            return false;
        } else { /* (stages_hold waits until the session is idle: not reached) */
            pinstage_request(s, pci, req);
        }
        return true;
    }
    if (!denied && !noauth && pinstage_subscribed_harmless(s, req)) {
        /* RESP2 pub/sub: Redis refuses it with its exact error (and would
         * only show its own connection's view if not subscribed after all) */
        pinstage_request(s, pci, req);
        return true;
    }
    if (pinned_idle(s->pin) && !pinned_in_multi(s->pin)) {
        /* Nothing is due on the dedicated connection: bulwark's own
         * reply (its CLIENT name/id, a refusal) can go in between. */
        struct slot *ps = s->pin_slot;
        s->pin_slot = NULL;
        slot_ready(ps);
        if (s->closed)
            return true; /* it had closed its side and its output could go (adversarial pass) */
        s->q.mute = pinned_local_muted(s->pin); /* CLIENT REPLY OFF/SKIP: done, not seen */
        *keep = s->pin;
        s->pin = NULL;
        return false; /* the caller answers it, then pinstage_resume() */
    }
    if (noauth) {
        pinstage_refuse(s, req, "NOAUTH Authentication required.");
        return true;
    }
    char err[256];
    if (bad_select)
        snprintf(err, sizeof(err), "%s",
                 pinned_counts_replies(s->pin)
                     ? "-ERR DB index is out of range\r\n"
                     : "-ERR SELECT right after UNSUBSCRIBE is not supported by bulwark\r\n");
    else
        pinstage_refusal(s, req, pci, sub, denied, err, sizeof(err));
    pinned_refuse_in_multi(s->pin, err);
    return true;
}

void
pinstage_resume(struct session *s, struct pinned *keep)
{
    bool muted = s->q.mute; /* the answer bulwark made under CLIENT REPLY OFF/SKIP */
    s->q.mute = false;
    if (s->closed) {
        pinned_free(keep); /* closed while bulwark answered: the session goes too */
        return;
    }
    if (muted)
        slotq_flush(&s->q); /* its muted slots at the head go, unseen */
    s->pin = keep;
    pinned_follow_db(keep, s->db);       /* a SELECT bulwark answered */
    pinned_follow_proto(keep, s->proto); /* a HELLO bulwark answered */
    s->pin_slot = slot_new(&s->q, SLOT_PLAIN);
}

/*
 * A request of a pinned client, or one that starts a pinned state: it goes
 * to the client's dedicated connection as it came (keys of writes still
 * feed the Bloom filter, cache writes still get TTL jitter).
 */
void
pinstage_request(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    char err[512];
    if (s->pin == NULL) {
        if (s->pin_timed_out) { /* upstream-pinned-wait passed in the queue */
            s->pin_timed_out = false;
            pinstage_unavailable(s, req, PINSTAGE_NO_ROOM);
            return;
        }
        s->pin_pool = router_active(s->px) ? cfwd_pool_for(s, ci, req) : NULL;
        s->pin = pinned_start(s, &pinstage_ops, err, sizeof(err));
        if (s->pin == NULL && pinned_is_script(req)) {
            /* upstream-pinned-max reached: the script still runs, on the
             * shared connection, as it did before scripts were pinned */
            fwd_request(s, req, NULL, NULL);
            return;
        }
        if (s->pin == NULL) {
            pinstage_unavailable(s, req, err);
            return;
        }
        s->pin_slot = slot_new(&s->q, SLOT_PLAIN);
        if (s->batch != NULL)
            batch_before_forward(s->batch, s);
    }
    if (ci != NULL && ci->subcommands != NULL && req->argc >= 2)
        ci = cmd_lookup(ci->subcommands, req->argv[1].ptr, req->argv[1].len);
    if (ci != NULL)
        writes_note(s, ci, req, false);
    if (ci != NULL && tracking_any(s->px->tracking)) {
        ctrack_read(s, ci, req);
        ctrack_script(s, ci, req);
    }
    if (resp_arg_is(&req->argv[0], "reset")) { /* RESET's effect on bulwark's side */
        session_reset_auth(s);
        tracking_disable(s->px->tracking, s->id);
    }
    char *rewritten = NULL;
    size_t len = 0;
    if (writes_jitter(s, ci, req, &rewritten, &len)) {
        pinned_forward(s->pin, req, rewritten, len);
        bw_free(rewritten);
    } else if (req->raw != NULL) {
        pinned_forward(s->pin, req, req->raw, req->raw_len);
    } else {
        struct evbuffer *tmp = evbuffer_new();
        fwd_encode(req, tmp);
        len = evbuffer_get_length(tmp);
        pinned_forward(s->pin, req, (const char *)evbuffer_pullup(tmp, -1), len);
        evbuffer_free(tmp);
    }
    if (resp_arg_is(&req->argv[0], "quit") && !s->closed)
        /* Redis answers +OK after every earlier reply, then closes: read
         * nothing more; the dedicated connection's close ends the client. */
        s->ops->close_after_reply(s);
}

/*
 * A denied command (deny-commands) while pinned. Its error cannot be slotted
 * between replies still due on the dedicated connection, so the session
 * ends: what arrived is delivered, then the error, then the connection is
 * closed (the dedicated connection too), as for a protocol error.
 */
static void
pinstage_refuse(struct session *s, const struct resp_request *req, const char *why)
{
    pinned_free(s->pin);
    s->pin = NULL;
    s->pin_slot->ready = true; /* moved out with the error that follows */
    s->pin_slot = NULL;
    if (strncmp(why, "NOAUTH", 6) == 0)
        session_reply_error(s, "%s", why);
    else
        session_reply_denied(s, req);
    s->ops->close_after_reply(s);
}

/*
 * A reply (len bytes at the head of reply) from s's dedicated connection:
 * moved into s's pinned slot (dropped when s is over its
 * client-output-buffer-limit and about to close). Returns true (s is never
 * closed inside this call: the limit closes it on the next loop turn).
 */
static bool
pinstage_deliver(struct session *s, struct evbuffer *reply, size_t len)
{
    if (s->cl_multi_swallow) { /* a deferred MULTI's: the client had bulwark's +OK */
        s->cl_multi_swallow = false;
        evbuffer_drain(reply, len);
    } else if (!s->q.drop) /* over its output limit: dropped until closed on the next turn */
        evbuffer_remove_buffer(reply, slot_output(s->pin_slot), len);
    if (s->hold == SESSION_HOLD_IDLE && pinned_idle(s->pin)) { /* the held request's turn */
        s->hold = SESSION_RUN;
        s->ops->resume(s);
    } else if (pinned_outstanding(s->pin) == 0) {
        s->ops->resume(s); /* a client that closed its side may be done now */
    }
    ctrack_pinned_answered(s);
    return true;
}

/* Every pinned reply is delivered and the state is clean: back to shared. */
static void
pinstage_unpin(struct session *s)
{
    struct pinned *p = s->pin;
    s->pin = NULL;
    s->pin_slot->ready = true;
    s->pin_slot = NULL;
    pinned_free_clean(p);
    if (s->hold == SESSION_HOLD_IDLE) /* a held request goes on, on the shared connection */
        s->hold = SESSION_RUN;
    ctrack_unpinned(s);
    slotq_flush(&s->q);
    s->ops->resume(s);
}

/*
 * The dedicated connection is gone. When it held state of the client's
 * (pinned_holds_state: MULTI, WATCH, an EXEC's reply due, pub/sub, MONITOR,
 * CLIENT REPLY …), the client's connection ends as it would with Redis:
 * what it has is flushed, nothing is made up for the replies still due (an
 * EXEC may or may not have run), nothing more is read, and it is closed, so
 * a later EXEC can never run without its MULTI or its WATCH. Otherwise (a
 * blocking command or a script due, nothing else) each request still due
 * gets the error a shared connection's would and the client goes on.
 */
static void
pinstage_lost(struct session *s, const char *reason)
{
    uint64_t due = pinned_outstanding(s->pin);
    bool state = pinned_holds_state(s->pin);
    log_verbose("client id=%llu addr=%s: dedicated upstream connection lost: %s%s",
                (unsigned long long)s->id, s->addr, reason,
                state ? " (it held the client's state: closing the client)" : "");
    if (s->cl_multi_swallow && due > 0) /* the deferred MULTI's reply: already answered */
        due--;
    s->cl_multi_swallow = false;
    struct slot *ps = s->pin_slot;
    pinned_free(s->pin);
    s->pin = NULL;
    s->pin_slot = NULL;
    if (state) {
        ps->ready = true;
        s->ops->close_after_reply(s); /* reads nothing more, closes once the replies are out */
        return;
    }
    if (s->hold == SESSION_HOLD_IDLE) { /* a held request goes on, on the shared connection */
        s->hold = SESSION_RUN;
        s->ops->resume(s);
    }
    struct evbuffer *out = slot_output(ps);
    for (uint64_t i = 0; i < due; i++)
        enc_error(out, "ERR upstream %s:%d unavailable: %s", s->px->cfg.upstream_host,
                  s->px->cfg.upstream_port, reason);
    ps->ready = true;
    slotq_flush(&s->q);
}

/*
 * A request bulwark answers itself (HELLO, CLIENT …, SELECT) from a RESP2
 * client whose session surely runs subscribed when Redis reaches it (the
 * last pub/sub request subscribed): Redis refuses it, unrun, with its exact
 * "Can't execute '…': only (P|S)SUBSCRIBE / …" error, in order with the
 * messages, so it goes to the session's connection as it came.
 */
static bool
pinstage_subscribed_harmless(const struct session *s, const struct resp_request *req)
{
    return s->proto == 2 && !pinned_counts_replies(s->pin) && pinned_surely_subscribed(s->pin) &&
           (pinstage_is_local(req) || resp_arg_is(&req->argv[0], "select"));
}

/*
 * True when req, of a client in a session, is one bulwark answers itself and
 * must wait for: replies are due on the session (a blocking command, a
 * script, a pipeline; or pub/sub winding down after UNSUBSCRIBE), so its
 * reply cannot go in between yet. Redis reads nothing more from a blocked
 * client either. Not inside MULTI (refused there), not in a Lua debugger
 * session or a surely subscribed RESP2 one (Redis answers those).
 */
/* In front of a cluster: req names keys of another master than the session's. */
static bool
pinstage_other_node(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    if (!router_active(s->px) || s->pin_pool == NULL)
        return false;
    struct upstream_pool *kp = cfwd_key_pool(s, ci, req);
    return kp != NULL && kp != s->pin_pool;
}

bool
pinstage_must_wait(const struct session *s, const struct resp_request *req)
{
    if (router_active(s->px) && !pinned_in_multi(s->pin) && !pinned_idle(s->pin)) {
        /* another master's keys outside a transaction: after what is due */
        const struct cmd_info *ci = cmd_lookup(s->px->cmds, req->argv[0].ptr, req->argv[0].len);
        if (pinstage_other_node((struct session *)s, ci, req))
            return true;
    }
    /* (a SELECT goes to Redis, followed, except while replies are not counted) */
    if (!pinstage_is_local(req) &&
        !(resp_arg_is(&req->argv[0], "select") && !pinned_counts_replies(s->pin)))
        return false;
    if (pinned_idle(s->pin) || pinned_in_multi(s->pin) || pinned_debugging(s->pin))
        return false;
    return !pinstage_subscribed_harmless(s, req) &&
           (pinned_counts_replies(s->pin) || !pinned_maybe_subscribed(s->pin));
}

/*
 * Requests a pinned client gets from bulwark itself when nothing is due on
 * its connection: CLIENT SETNAME/GETNAME/ID/INFO/LIST (bulwark's view of the
 * client) and SELECT of another database (refused as always).
 */
static bool
pinstage_is_local(const struct resp_request *req)
{
    const struct resp_arg *a = &req->argv[0];
    if (resp_arg_is(a, "hello"))
        return true; /* HELLO is bulwark's (SELECT goes to Redis: pinned tracks the db) */
    if (a->len != 6 || strncasecmp(a->ptr, "client", 6) != 0 || req->argc < 2)
        return false;
    static const char *const subs[] = {"setname", "getname",  "id",          "info",
                                       "list",    "kill",     "unblock",     "tracking",
                                       "caching", "getredir", "trackinginfo"};
    for (size_t i = 0; i < BW_ARRAY_LEN(subs); i++)
        if (req->argv[1].len == strlen(subs[i]) &&
            strncasecmp(req->argv[1].ptr, subs[i], req->argv[1].len) == 0)
            return true;
    return false;
}

/*
 * pinned_needed(req), worked out once per request: it compares the command
 * name with some forty names, and three checks on the way ask it.
 */
bool
pinstage_pins(struct session *s, const struct resp_request *req)
{
    if (s->pins_req != req) {
        s->pins_req = req;
        s->pins = pinned_needed(req);
    }
    return s->pins;
}

/*
 * AUTH of an ACL user moves the client to a connection of its own, but only
 * when bulwark has no requirepass: else bulwark's own AUTH rules apply.
 */
bool
pinstage_may_pin(const struct session *s, const struct resp_request *req)
{
    const char *pass = s->px->cfg.requirepass;
    if (req->argv[0].len == 4 && strncasecmp(req->argv[0].ptr, "auth", 4) == 0)
        return pass == NULL || pass[0] == '\0';
    return true;
}


/*
 * True for a HELLO that names the protocol the client does not speak (or a
 * RESET of a RESP3 client, back to RESP2): its
 * later requests go to the shared connection of that protocol, so it waits
 * until every reply due on this one is in (a pipeline keeps its order).
 */
bool
pinstage_switches_proto(const struct session *s, const struct resp_request *req)
{
    long long v;
    if (s->proto != 2 && resp_arg_is(&req->argv[0], "reset"))
        return true;
    return req->argc >= 2 && resp_arg_is(&req->argv[0], "hello") &&
           resp_arg_ll(&req->argv[1], &v) && (v == 2 || v == 3) && v != s->proto;
}

/* ---- MULTI in front of a Redis Cluster ------------------------------------------ */

bool
pinstage_defer_multi(struct session *s, const struct resp_request *req)
{
    if (!router_active(s->px) || s->pin != NULL || req->argc != 1 ||
        !resp_arg_is(&req->argv[0], "multi"))
        return false;
    /* its node is the one of the transaction's first command: MULTI is
     * sent with it; Redis's reply to MULTI outside a session is always +OK */
    s->cl_multi = true;
    session_reply_status(s, "OK");
    return true;
}

bool
pinstage_deferred_multi(struct session *s, const struct resp_request *req, struct pinned **keep)
{
    static const char multi[] = "*1\r\n$5\r\nMULTI\r\n";
    struct resp_arg multi_arg = {"MULTI", 5};
    struct resp_request multi_req = {1, &multi_arg, multi, sizeof(multi) - 1, false, NULL};
    char err[512];
    *keep = NULL;
    s->cl_multi = false;
    if (req->argc == 1 &&
        (resp_arg_is(&req->argv[0], "exec") || resp_arg_is(&req->argv[0], "discard"))) {
        /* an empty transaction: Redis's own replies */
        session_reply_raw(s, resp_arg_is(&req->argv[0], "exec") ? "*0\r\n" : "+OK\r\n",
                          resp_arg_is(&req->argv[0], "exec") ? 4 : 5);
        return true;
    }
    const struct cmd_info *ci = cmd_lookup(s->px->cmds, req->argv[0].ptr, req->argv[0].len);
    s->pin_pool = cfwd_pool_for(s, ci, req);
    s->pin = pinned_start(s, &pinstage_ops, err, sizeof(err));
    if (s->pin == NULL) { /* no connection: every command fails, EXEC -EXECABORT */
        s->multi_refused = true;
        return pinstage_handle_refused(s, req);
    }
    s->pin_slot = slot_new(&s->q, SLOT_PLAIN);
    s->cl_multi_swallow = true; /* the client has had its +OK */
    pinned_forward(s->pin, &multi_req, multi, sizeof(multi) - 1);
    if (s->pin == NULL)
        return true; /* the connection was lost at once: the client was told */
    return pinstage_handle(s, req, keep);
}
