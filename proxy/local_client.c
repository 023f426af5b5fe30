/* local_client: the CLIENT subcommands bulwark answers for its own clients. */
#include "proxy/local_client.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/cfwd.h"
#include "proxy/encode.h"
#include "proxy/forward.h"
#include "proxy/pinned.h"
#include "proxy/proxy.h"
#include "proxy/tracking.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/session.h"
#include "proxy/util.h"
#include "proxy/watch.h"


/* Which clients CLIENT KILL closes (Redis 7.0 networking.c); NULL / 0 / -1
 * members match every client. Strings are not NUL-terminated. */
struct local_kill_filter {
    const char *addr; /* peer "ip:port", as CLIENT LIST addr= */
    size_t addr_len;
    const char *laddr; /* local "ip:port", as CLIENT LIST laddr= */
    size_t laddr_len;
    uint64_t id;  /* CLIENT ID, 0 = any */
    int type;     /* LOCAL_KILL_TYPE_*, or -1 = any */
    bool no_user; /* USER names a user none of bulwark's clients has */
    bool skipme;  /* never self */
};

#define LOCAL_KILL_TYPE_NORMAL 0 /* not subscribed (MONITOR included, as Redis) */
#define LOCAL_KILL_TYPE_PUBSUB 1 /* subscribed to a channel, pattern or shard channel */
#define LOCAL_KILL_TYPE_OTHER 2  /* master / replica: bulwark has none */

static bool
local_kill_matches(const struct session *c, const struct local_kill_filter *f)
{
    if (f->no_user)
        return false;
    if (f->addr != NULL &&
        (strlen(c->addr) != f->addr_len || memcmp(c->addr, f->addr, f->addr_len) != 0))
        return false;
    if (f->laddr != NULL &&
        (strlen(c->laddr) != f->laddr_len || memcmp(c->laddr, f->laddr, f->laddr_len) != 0))
        return false;
    if (f->id != 0 && c->id != f->id)
        return false;
    if (f->type >= 0) {
        bool pubsub = c->pin != NULL && pinned_subscriptions(c->pin) > 0;
        int type = pubsub ? LOCAL_KILL_TYPE_PUBSUB : LOCAL_KILL_TYPE_NORMAL;
        if (type != f->type)
            return false;
    }
    return true;
}

/*
 * Close every client that matches f, except self, which is only counted,
 * *kill_self set: the caller replies, then closes it after the reply.
 * Returns the number of clients matched.
 */
static size_t
local_client_kill_matching(struct session *self, const struct local_kill_filter *f,
                           bool *kill_self)
{
    struct session *c, *next;
    size_t killed = 0;
    *kill_self = false;
    for (c = TAILQ_FIRST(&self->px->sessions); c != NULL; c = next) {
        next = TAILQ_NEXT(c, link);
        if (!local_kill_matches(c, f) || (c == self && f->skipme))
            continue;
        killed++;
        if (c == self)
            *kill_self = true;
        else
            c->ops->close(c);
    }
    return killed;
}

/* Redis's clientSetName rule: printable ASCII without spaces. */
static bool
local_valid_name(const struct resp_arg *a)
{
    for (size_t i = 0; i < a->len; i++)
        if (a->ptr[i] < '!' || a->ptr[i] > '~')
            return false;
    return true;
}

bool
local_client_set_name(struct session *s, const struct resp_arg *name)
{
    if (!local_valid_name(name)) {
        session_reply_error(s, "ERR Client names cannot contain spaces, newlines or special "
                               "characters.");
        return false;
    }
    session_set_name(s, name->ptr, name->len);
    return true;
}

bool
local_client_setname(struct session *s, const struct resp_request *req)
{
    if (local_client_set_name(s, &req->argv[2]))
        session_reply_status(s, "OK");
    return true;
}

bool
local_client_getname(struct session *s, const struct resp_request *req)
{
    const char *name = s->name;
    (void)req;
    if (name == NULL)
        session_reply_nil(s);
    else
        session_reply_bulk(s, name, strlen(name));
    return true;
}

bool
local_client_id(struct session *s, const struct resp_request *req)
{
    (void)req;
    session_reply_int(s, (long long)s->id);
    return true;
}

/* Reply with CLIENT INFO of only, or CLIENT LIST of all clients (only NULL). */
static void
local_client_lines(struct session *s, const struct session *only)
{
    struct evbuffer *lines = evbuffer_new();
    if (only != NULL)
        session_format_info(only, lines);
    else
        session_format_all(s->px, lines);
    enc_verbatim(session_reply_target(s), s->proto, lines);
    evbuffer_free(lines);
}

bool
local_client_info(struct session *s, const struct resp_request *req)
{
    (void)req;
    local_client_lines(s, s);
    return true;
}

/*
 * Before a client starts tracking: every keyspace watch runs (with bloom no
 * and hotkey no nothing had started them; a key read before one is up is
 * told by its first null), and what each has delivered is taken in, so that
 * a change Redis made before (a FLUSHALL's null read in the same loop turn)
 * is not told to it, as Redis never would.
 */
static void
local_client_tracking_sync(struct proxy *px)
{
    struct watch *ws[64];
    size_t n = router_watches(px, ws, BW_ARRAY_LEN(ws));
    px->watch_needed = true;
    if (n == 0) {
        watch_need(px->watch);
        (void)watch_drain(px->watch);
    }
    for (size_t i = 0; i < n && i < BW_ARRAY_LEN(ws); i++) {
        watch_need(ws[i]);
        (void)watch_drain(ws[i]);
    }
}

bool
local_client_tracking(struct session *s, const struct resp_request *req)
{
    if (req->argc >= 3 && resp_arg_is(&req->argv[1], "tracking") &&
        resp_arg_is(&req->argv[2], "on"))
        local_client_tracking_sync(s->px);
    struct tracking_arg stack[16];
    size_t n = (size_t)req->argc;
    struct tracking_arg *args = n <= 16 ? stack : bw_malloc(n * sizeof(*args));
    for (size_t i = 0; i < n; i++)
        args[i] = (struct tracking_arg){req->argv[i].ptr, req->argv[i].len};
    char *reply = NULL;
    size_t len = 0;
    if (tracking_command(s->px->tracking, s->id, s->proto, req->argc, args, &reply, &len))
        session_reply_raw(s, reply, len);
    else /* not one of the four: the table sent something else here */
        session_reply_error(s, "ERR unknown subcommand '%.*s'",
                            (int)BW_MIN(req->argv[1].len, 128), req->argv[1].ptr);
    bw_free(reply);
    if (args != stack)
        bw_free(args);
    return true;
}

/*
 * CLIENT UNBLOCK id [TIMEOUT|ERROR], as Redis 7.0: a client of bulwark blocked
 * on its dedicated connection (BLPOP …) is unblocked there by Redis (the
 * request names that connection's id); any other gets 0.
 */
bool
local_client_unblock(struct session *s, const struct resp_request *req)
{
    long long id;
    if (req->argc == 4 && !resp_arg_is(&req->argv[3], "timeout") &&
        !resp_arg_is(&req->argv[3], "error")) {
        session_reply_error(s, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        return true;
    }
    if (!resp_arg_ll(&req->argv[2], &id)) {
        session_reply_error(s, "ERR value is not an integer or out of range");
        return true;
    }
    const struct session *t = id > 0 ? session_by_id(s->px, (uint64_t)id) : NULL;
    uint64_t rid = t != NULL && t->pin != NULL && pinned_blocked(t->pin) ? pinned_redis_id(t->pin)
                                                                         : 0;
    if (rid == 0) {
        session_reply_int(s, 0);
        return true;
    }
    char num[24], cmd[128];
    int nl = snprintf(num, sizeof(num), "%llu", (unsigned long long)rid);
    int n = req->argc == 4
                ? snprintf(cmd, sizeof(cmd),
                           "*4\r\n$6\r\nCLIENT\r\n$7\r\nUNBLOCK\r\n$%d\r\n%s\r\n$%zu\r\n%.*s\r\n",
                           nl, num, req->argv[3].len, (int)req->argv[3].len, req->argv[3].ptr)
                : snprintf(cmd, sizeof(cmd),
                           "*3\r\n$6\r\nCLIENT\r\n$7\r\nUNBLOCK\r\n$%d\r\n%s\r\n", nl, num);
    if (router_active(s->px)) /* in front of a cluster: on the node t is blocked on */
        cfwd_send_at(s, t->pin_pool != NULL ? t->pin_pool : router_pool(s->px, 0), cmd,
                     (size_t)n);
    else
        fwd_send(s, cmd, (size_t)n, NULL, NULL);
    return true;
}

/*
 * CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...], as Redis 7.0:
 * bulwark's clients are all "normal" ones.
 */
bool
local_client_list(struct session *s, const struct resp_request *req)
{
    struct evbuffer *lines = evbuffer_new();
    if (req->argc == 2) {
        session_format_all(s->px, lines);
    } else if (req->argc == 4 && resp_arg_is(&req->argv[2], "type")) {
        const struct resp_arg *t = &req->argv[3];
        if (!resp_arg_is(t, "normal") && !resp_arg_is(t, "master") &&
            !resp_arg_is(t, "replica") && !resp_arg_is(t, "slave") && !resp_arg_is(t, "pubsub")) {
            session_reply_error(s, "ERR Unknown client type '%.*s'", (int)BW_MIN(t->len, 128),
                                t->ptr);
            evbuffer_free(lines);
            return true;
        }
        if (resp_arg_is(t, "normal"))
            session_format_all(s->px, lines);
    } else if (req->argc > 3 && resp_arg_is(&req->argv[2], "id")) {
        for (int i = 3; i < req->argc; i++) {
            long long id;
            if (!resp_arg_ll(&req->argv[i], &id) || id <= 0) {
                session_reply_error(s, "ERR Invalid client ID");
                evbuffer_free(lines);
                return true;
            }
            session_format_id(s->px, (uint64_t)id, lines);
        }
    } else {
        session_reply_error(s, "ERR syntax error");
        evbuffer_free(lines);
        return true;
    }
    enc_verbatim(session_reply_target(s), s->proto, lines);
    evbuffer_free(lines);
    return true;
}

/* The answer to CLIENT KILL … USER u when Redis knows u (data: owned RESP). */
static void
local_client_kill_filter(struct session *s, struct evbuffer *reply, size_t len, const char *err,
                         struct evbuffer *out, void *data)
{
    if (s != NULL && reply == NULL)
        evbuffer_add(out, err, strlen(err));
    else if (s != NULL && len > 0 && evbuffer_pullup(reply, 1)[0] == '-')
        evbuffer_remove_buffer(reply, out, len); /* Redis's "No such user 'u'" */
    else if (s != NULL)
        evbuffer_add(out, data, strlen(data));
    bw_free(data);
}

/*
 * CLIENT KILL … USER u, u not "default": none of bulwark's clients is u's,
 * so nothing is killed and the answer is what bulwark's checks of the other
 * filters say (answer, RESP: ":0" or their first error) — unless u is not
 * one of Redis's ACL users, which Redis reports first (it checks the filters
 * in order). Redis is asked "CLIENT KILL USER u … ID 2^63-1" (each such USER
 * before argument stop): no client has that id, so it kills nothing either.
 */
static void
local_client_kill_ask(struct session *s, const struct resp_request *req, int stop,
                      const char *answer)
{
    static const char id[] = "$2\r\nID\r\n$19\r\n9223372036854775807\r\n";
    struct evbuffer *users = evbuffer_new(), *cmd = evbuffer_new();
    int n = 0;
    for (int i = 2; i + 1 < stop; i += 2) {
        const struct resp_arg *v = &req->argv[i + 1];
        if (!resp_arg_is(&req->argv[i], "user") || resp_arg_is(v, "default"))
            continue;
        evbuffer_add_printf(users, "$4\r\nUSER\r\n$%zu\r\n", v->len);
        evbuffer_add(users, v->ptr, v->len);
        evbuffer_add(users, "\r\n", 2);
        n++;
    }
    evbuffer_add_printf(cmd, "*%d\r\n$6\r\nCLIENT\r\n$4\r\nKILL\r\n", 4 + 2 * n);
    evbuffer_add_buffer(cmd, users);
    evbuffer_free(users);
    evbuffer_add(cmd, id, sizeof(id) - 1);
    size_t len = evbuffer_get_length(cmd);
    const char *bytes = (const char *)evbuffer_pullup(cmd, -1);
    char *data = bw_strdup(answer);
    if (router_active(s->px))
        cfwd_send_filtered(s, bytes, len, CFWD_TO_ONE, local_client_kill_filter, data);
    else
        fwd_send(s, bytes, len, local_client_kill_filter, data);
    evbuffer_free(cmd);
}

/*
 * The new form's filters into f, as Redis 7.0.15 reads them (networking.c
 * clientCommand "kill"): BW_OK, or BW_ERR with Redis's error line (RESP) in
 * err. *stop: the argument where reading stopped (the bad one, or argc).
 */
static int
local_client_kill_parse(const struct resp_request *req, struct local_kill_filter *f, int *stop,
                        char *err, size_t size)
{
    for (*stop = 2; *stop < req->argc; *stop += 2) {
        int i = *stop;
        const struct resp_arg *o = &req->argv[i], *v = &req->argv[i + 1];
        long long id;
        if (i + 1 >= req->argc) {
            snprintf(err, size, "-ERR syntax error\r\n");
            return BW_ERR;
        } else if (resp_arg_is(o, "id")) {
            if (!resp_arg_ll(v, &id) || id < 1) {
                snprintf(err, size, "-ERR client-id should be greater than 0\r\n");
                return BW_ERR;
            }
            f->id = (uint64_t)id;
        } else if (resp_arg_is(o, "type")) {
            if (resp_arg_is(v, "normal"))
                f->type = LOCAL_KILL_TYPE_NORMAL;
            else if (resp_arg_is(v, "pubsub"))
                f->type = LOCAL_KILL_TYPE_PUBSUB;
            else if (resp_arg_is(v, "master") || resp_arg_is(v, "replica") ||
                     resp_arg_is(v, "slave"))
                f->type = LOCAL_KILL_TYPE_OTHER;
            else {
                snprintf(err, size, "-ERR Unknown client type '%.*s'\r\n",
                         (int)BW_MIN(v->len, 128), v->ptr);
                return BW_ERR;
            }
        } else if (resp_arg_is(o, "addr") || resp_arg_is(o, "laddr")) {
            *(resp_arg_is(o, "addr") ? &f->addr : &f->laddr) = v->ptr;
            *(resp_arg_is(o, "addr") ? &f->addr_len : &f->laddr_len) = v->len;
        } else if (resp_arg_is(o, "user")) {
            f->no_user = f->no_user || !resp_arg_is(v, "default");
        } else if (resp_arg_is(o, "skipme") && (resp_arg_is(v, "yes") || resp_arg_is(v, "no"))) {
            f->skipme = resp_arg_is(v, "yes");
        } else {
            snprintf(err, size, "-ERR syntax error\r\n");
            return BW_ERR;
        }
    }
    return BW_OK;
}

/*
 * CLIENT KILL addr (old form: +OK or "No such client"; may kill the caller)
 * or CLIENT KILL <ID id | TYPE t | ADDR a | LADDR a | USER u | SKIPME yes/no>
 * ... (the number killed), with Redis 7.0.15's errors. bulwark's clients
 * are all user "default" (as CLIENT LIST says): another USER matches none
 * (local_client_kill_ask).
 */
bool
local_client_kill(struct session *s, const struct resp_request *req)
{
    struct local_kill_filter f = {.type = -1, .skipme = true};
    char err[256];
    int stop = 0;
    bool self;
    if (req->argc == 3) {
        f.addr = req->argv[2].ptr;
        f.addr_len = req->argv[2].len;
        f.skipme = false;
    } else if (local_client_kill_parse(req, &f, &stop, err, sizeof(err)) != BW_OK) {
        if (f.no_user) /* a USER before the bad argument: does Redis know it? */
            local_client_kill_ask(s, req, stop, err);
        else
            session_reply_raw(s, err, strlen(err));
        return true;
    }
    if (f.no_user) {
        local_client_kill_ask(s, req, stop, ":0\r\n");
        return true;
    }
    size_t n = local_client_kill_matching(s, &f, &self);
    if (req->argc == 3 && n == 0)
        session_reply_error(s, "ERR No such client");
    else if (req->argc == 3)
        session_reply_status(s, "OK");
    else
        session_reply_int(s, (long long)n);
    if (self)
        s->ops->close_after_reply(s);
    return true;
}
