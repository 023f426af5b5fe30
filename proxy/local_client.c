/* local_client: the CLIENT subcommands bulwark answers for its own clients. */
#include "proxy/local_client.h"

#include <stdio.h>
#include <string.h>

#include <event2/buffer.h>

#include "proxy/client.h"
#include "proxy/proxy.h"
#include "proxy/tracking.h"
#include "proxy/resp.h"
#include "proxy/util.h"

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
local_client_set_name(struct client *c, const struct resp_arg *name)
{
    if (!local_valid_name(name)) {
        client_reply_error(c, "ERR Client names cannot contain spaces, newlines or special "
                              "characters.");
        return false;
    }
    client_set_name(c, name->ptr, name->len);
    return true;
}

bool
local_client_setname(struct client *c, const struct resp_request *req)
{
    if (local_client_set_name(c, &req->argv[2]))
        client_reply_status(c, "OK");
    return true;
}

bool
local_client_getname(struct client *c, const struct resp_request *req)
{
    const char *name = client_name(c);
    (void)req;
    if (name == NULL)
        client_reply_nil(c);
    else
        client_reply_bulk(c, name, strlen(name));
    return true;
}

bool
local_client_id(struct client *c, const struct resp_request *req)
{
    (void)req;
    client_reply_int(c, (long long)client_id(c));
    return true;
}

/* Reply with CLIENT INFO of only, or CLIENT LIST of all clients (only NULL). */
static void
local_client_lines(struct client *c, const struct client *only)
{
    struct evbuffer *lines = evbuffer_new();
    if (only != NULL)
        client_format_info(only, lines);
    else
        client_format_all(client_proxy(c), lines);
    client_encode_verbatim(c, client_reply_target(c), lines);
    evbuffer_free(lines);
}

bool
local_client_info(struct client *c, const struct resp_request *req)
{
    (void)req;
    local_client_lines(c, c);
    return true;
}

bool
local_client_tracking(struct client *c, const struct resp_request *req)
{
    struct tracking_arg stack[16];
    size_t n = (size_t)req->argc;
    struct tracking_arg *args = n <= 16 ? stack : bw_malloc(n * sizeof(*args));
    for (size_t i = 0; i < n; i++)
        args[i] = (struct tracking_arg){req->argv[i].ptr, req->argv[i].len};
    char *reply = NULL;
    size_t len = 0;
    if (tracking_command(client_proxy(c)->tracking, client_id(c), client_proto(c), req->argc,
                         args, &reply, &len))
        client_reply_raw(c, reply, len);
    else /* not one of the four: the table sent something else here */
        client_reply_error(c, "ERR unknown subcommand '%.*s'", (int)BW_MIN(req->argv[1].len, 128),
                           req->argv[1].ptr);
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
local_client_unblock(struct client *c, const struct resp_request *req)
{
    long long id;
    if (req->argc == 4 && !resp_arg_is(&req->argv[3], "timeout") &&
        !resp_arg_is(&req->argv[3], "error")) {
        client_reply_error(c, "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR");
        return true;
    }
    if (!resp_arg_ll(&req->argv[2], &id)) {
        client_reply_error(c, "ERR value is not an integer or out of range");
        return true;
    }
    uint64_t rid = id > 0 ? client_blocked_redis_id(client_proxy(c), (uint64_t)id) : 0;
    if (rid == 0) {
        client_reply_int(c, 0);
        return true;
    }
    char num[24], cmd[128];
    int nl = snprintf(num, sizeof(num), "%llu", (unsigned long long)rid);
    int n = req->argc == 4
                ? snprintf(cmd, sizeof(cmd), "*4\r\n$6\r\nCLIENT\r\n$7\r\nUNBLOCK\r\n$%d\r\n%s\r\n$%zu\r\n%.*s\r\n",
                           nl, num, req->argv[3].len, (int)req->argv[3].len, req->argv[3].ptr)
                : snprintf(cmd, sizeof(cmd), "*3\r\n$6\r\nCLIENT\r\n$7\r\nUNBLOCK\r\n$%d\r\n%s\r\n", nl, num);
    client_forward(c, cmd, (size_t)n, NULL, NULL);
    return true;
}

/*
 * CLIENT LIST [TYPE normal|master|replica|pubsub] [ID id ...], as Redis 7.0:
 * bulwark's clients are all "normal" ones.
 */
bool
local_client_list(struct client *c, const struct resp_request *req)
{
    struct evbuffer *lines = evbuffer_new();
    if (req->argc == 2) {
        client_format_all(client_proxy(c), lines);
    } else if (req->argc == 4 && resp_arg_is(&req->argv[2], "type")) {
        const struct resp_arg *t = &req->argv[3];
        if (!resp_arg_is(t, "normal") && !resp_arg_is(t, "master") && !resp_arg_is(t, "replica") &&
            !resp_arg_is(t, "slave") && !resp_arg_is(t, "pubsub")) {
            client_reply_error(c, "ERR Unknown client type '%.*s'", (int)BW_MIN(t->len, 128), t->ptr);
            evbuffer_free(lines);
            return true;
        }
        if (resp_arg_is(t, "normal"))
            client_format_all(client_proxy(c), lines);
    } else if (req->argc > 3 && resp_arg_is(&req->argv[2], "id")) {
        for (int i = 3; i < req->argc; i++) {
            long long id;
            if (!resp_arg_ll(&req->argv[i], &id) || id <= 0) {
                client_reply_error(c, "ERR Invalid client ID");
                evbuffer_free(lines);
                return true;
            }
            client_format_id(client_proxy(c), (uint64_t)id, lines);
        }
    } else {
        client_reply_error(c, "ERR syntax error");
        evbuffer_free(lines);
        return true;
    }
    client_encode_verbatim(c, client_reply_target(c), lines);
    evbuffer_free(lines);
    return true;
}

/*
 * CLIENT KILL addr (old form: +OK or "No such client"; may kill the caller)
 * or CLIENT KILL <ID id | TYPE t | ADDR a | LADDR a | USER u | SKIPME yes/no>
 * ... (the number killed), with Redis 7.0.15's errors. bulwark's clients
 * are all user "default" (as CLIENT LIST says): another USER matches none.
 */
bool
local_client_kill(struct client *c, const struct resp_request *req)
{
    struct client_kill_filter f = {.type = -1, .skipme = true};
    bool self;
    if (req->argc == 3) {
        f.addr = req->argv[2].ptr;
        f.addr_len = req->argv[2].len;
        f.skipme = false;
    }
    for (int i = 2; req->argc > 3 && i < req->argc; i += 2) {
        const struct resp_arg *o = &req->argv[i], *v = &req->argv[i + 1];
        long long id;
        if (i + 1 >= req->argc) {
            client_reply_error(c, "ERR syntax error");
            return true;
        } else if (resp_arg_is(o, "id")) {
            if (!resp_arg_ll(v, &id) || id < 1) {
                client_reply_error(c, "ERR client-id should be greater than 0");
                return true;
            }
            f.id = (uint64_t)id;
        } else if (resp_arg_is(o, "type")) {
            if (resp_arg_is(v, "normal"))
                f.type = CLIENT_KILL_TYPE_NORMAL;
            else if (resp_arg_is(v, "pubsub"))
                f.type = CLIENT_KILL_TYPE_PUBSUB;
            else if (resp_arg_is(v, "master") || resp_arg_is(v, "replica") || resp_arg_is(v, "slave"))
                f.type = CLIENT_KILL_TYPE_OTHER;
            else {
                client_reply_error(c, "ERR Unknown client type '%.*s'", (int)BW_MIN(v->len, 128),
                                   v->ptr);
                return true;
            }
        } else if (resp_arg_is(o, "addr") || resp_arg_is(o, "laddr")) {
            *(resp_arg_is(o, "addr") ? &f.addr : &f.laddr) = v->ptr;
            *(resp_arg_is(o, "addr") ? &f.addr_len : &f.laddr_len) = v->len;
        } else if (resp_arg_is(o, "user")) {
            f.no_user = f.no_user || !resp_arg_is(v, "default");
        } else if (resp_arg_is(o, "skipme") && (resp_arg_is(v, "yes") || resp_arg_is(v, "no"))) {
            f.skipme = resp_arg_is(v, "yes");
        } else {
            client_reply_error(c, "ERR syntax error");
            return true;
        }
    }
    size_t n = client_kill(c, &f, &self);
    if (req->argc == 3 && n == 0)
        client_reply_error(c, "ERR No such client");
    else if (req->argc == 3)
        client_reply_status(c, "OK");
    else
        client_reply_int(c, (long long)n);
    if (self)
        client_close_after_reply(c);
    return true;
}
