/*
 * upstream: multiplexed, pipelined connections to the upstream Redis over
 * netio sockets (netio.h); replies are found with the streaming scanner of
 * reply.c and relayed as raw bytes, in request order.
 */
#include "proxy/upstream.h"

#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/queue.h>
#include <sys/socket.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/log.h"
#include "proxy/netio.h"
#include "proxy/proxy.h"
#include "proxy/reply.h"
#include "proxy/util.h"

#define UPSTREAM_BACKOFF_MIN_MS 50      /* first reconnect delay */
#define UPSTREAM_PEEK_VECS 16           /* iovecs per evbuffer_peek */
#define UPSTREAM_BUSY_THRESHOLD_MS 5000 /* Redis's default busy-reply-threshold */
#define UPSTREAM_IDLE_SURPLUS_MS \
    1000 /* idle pinned connections above upstream-pinned-idle
                                          are closed after this long unused */

enum upstream_state {
    UPSTREAM_DOWN = 0,   /* no socket; waiting for the retry timer */
    UPSTREAM_CONNECTING, /* socket connecting; requests queue behind handshake */
    UPSTREAM_UP          /* connected */
};

static const char *const upstream_state_names[] = {"down", "connecting", "up"};

/* One request written upstream and not yet answered. */
struct upstream_req {
    STAILQ_ENTRY(upstream_req) link; /* in upstream_conn.pending, send order */
    uint64_t sent_us;                /* monotonic send time, µs */
    upstream_reply_fn *fn;           /* reply callback */
    void *privdata;                  /* callback argument (borrowed) */
};

STAILQ_HEAD(upstream_req_list, upstream_req);

/* One multiplexed connection. */
struct upstream_conn {
    struct upstream_pool *pool;       /* owning pool (borrowed) */
    int index;                        /* position in the pool */
    enum upstream_state state;        /* see the diagram in upstream.h */
    struct netio *io;                 /* socket and its buffers (owned), NULL when DOWN */
    struct upstream_req_list pending; /* requests in flight (owned), FIFO */
    uint64_t inflight;                /* entries in pending */
    struct reply_scan scan;           /* scanner of the reply at the head */
    struct evbuffer *acc;             /* bytes of the reply being read, scanned (owned) */
    size_t in_scanned;                /* bytes at the head of the input already fed to
                                            the scanner: a big bulk's, left in place */
    uint64_t last_read_us;            /* last time bytes arrived, µs (timeouts count from it) */
    struct event *retry_ev;           /* reconnect timer (owned) */
    uint64_t backoff_ms;              /* next reconnect delay, ms */
    uint64_t connect_started_ms;      /* when CONNECTING began, ms */
    char last_error[128];             /* why the connection last failed */
    bool warned_down;                 /* a warning about this outage was logged */
    char down_reply[512];             /* "-ERR upstream … unavailable: …\r\n" */
    uint64_t reconnects;              /* successful connects after the first */
    uint64_t connects;                /* successful connects */
    uint64_t timeouts;                /* requests failed by upstream-timeout */
    uint64_t replies;                 /* replies relayed */
    uint64_t requests;                /* requests sent, or refused while DOWN */
    uint64_t request_errors;          /* requests failed: DOWN, timed out or lost */
    uint64_t rtt_ewma_us;             /* round trip, EWMA with alpha 1/8, µs */
    bool pinned;                      /* a dedicated connection (pool->idle or an owner) */
    bool dead;                        /* pinned and failed: freed by a zero-timeout event */
    bool in_idle;                     /* pinned and listed in pool->idle */
    void *owner;                      /* pinned: the session its raw replies go to (borrowed) */
    upstream_raw_fn *raw_fn;          /* pinned: receives every reply not owed internally */
    upstream_down_fn *down_fn;        /* pinned: told when the connection fails */
    bool shut;                        /* pinned: write side shut (never pooled again) */
    uint64_t idle_since_ms;           /* pinned: when it last went idle, monotonic ms */
    bool script;                      /* pinned: a script's reply is due (see
                                            upstream_pinned_script) */
    int db;                           /* database the connection is in, as bulwark's
                                            requests leave it: 0 on connect and after
                                            RESET, -1 unknown (a SELECT was refused);
                                            upstream_send_db() SELECTs first when a
                                            request is for another */
    int proto;                        /* RESP version the connection speaks: 2, or 3
                                            after bulwark's HELLO 3 (RESP3 clients'
                                            shared connections; pinned ones of RESP3
                                            sessions) */
    bool started;                     /* shared: connecting was ever begun (RESP3
                                            ones wait for their first client) */
    uint64_t redis_id;                /* pinned: Redis's CLIENT ID of the connection,
                                            0 until known (CLIENT UNBLOCK) */
    TAILQ_ENTRY(upstream_conn) idle_link; /* in pool->idle while idle */
};

TAILQ_HEAD(upstream_conn_list, upstream_conn);

/* A request waiting for a pinned connection (see upstream_pinned_wait()). */
struct upstream_waiter {
    TAILQ_ENTRY(upstream_waiter) link; /* in upstream_pool.waiters, arrival order */
    struct upstream_pool *pool;        /* owning pool (borrowed) */
    struct event *timer;               /* upstream-pinned-wait deadline (owned) */
    upstream_wake_fn *fn;              /* told once: a connection is free, or time is up */
    void *arg;                         /* fn's argument (borrowed) */
};

TAILQ_HEAD(upstream_waiter_list, upstream_waiter);

/* All connections of a worker. */
struct upstream_pool {
    struct proxy *px;                  /* borrowed */
    int nconns;                        /* connections per protocol */
    struct upstream_conn *conns;       /* owned array of 2 * nconns: RESP2 ones
                                            (0 … nconns-1, connected at start), then
                                            RESP3 ones (opened on first use) */
    char host[256];                    /* the node's host (the upstream directive's, or a
                                            cluster node's) */
    int port;                          /* its port */
    char addr[300];                    /* "host:port" for messages */
    upstream_commands_fn *on_commands; /* receives the learned command table */
    struct upstream_conn_list idle;    /* pinned connections waiting for an owner (owned) */
    int nidle;                         /* entries in idle */
    int npinned;                       /* pinned connections existing (idle or owned) */
    uint64_t pinned_peak;              /* most pinned connections at once */
    uint64_t pinned_refused;           /* requests refused: wait timed out, or no fd */
    int nscripts;                      /* pinned connections with a script in flight */
    uint64_t script_mark_us;           /* last script event (first sent, or answered):
                                            Redis may serve nobody else until this plus
                                            busy_threshold_ms, µs */
    uint64_t busy_threshold_ms;        /* Redis's busy-reply-threshold (lua-time-limit),
                                            ms; 5000 until learned */
    struct upstream_waiter_list
        waiters;                    /* requests waiting for a pinned connection, FIFO (owned) */
    uint64_t nwaiters;              /* entries in waiters */
    struct event *wake_ev;          /* zero-timeout event that wakes waiters (owned) */
    uint64_t pinned_warn_ms;        /* last "cannot open" warning, monotonic ms */
    uint64_t pinned_warn_muted;     /* warnings suppressed since (one a second) */
    uint64_t db_switches;           /* SELECTs bulwark sent to move a connection
                                            to a request's database */
    struct upstream_req_list spare; /* freed requests kept for reuse (owned): one
                                            malloc and free per request otherwise */
    uint64_t nspare;                /* entries in spare, at most UPSTREAM_SPARE_REQS */
};

#define UPSTREAM_SPARE_REQS 4096

static void upstream_connect(struct upstream_conn *u);
static void upstream_pinned_drop(struct upstream_conn *u, const char *reason);
static void upstream_handshake(struct upstream_conn *u);
static void upstream_queue_busy_threshold(struct upstream_conn *u);
static void upstream_wake_cb(evutil_socket_t fd, short what, void *arg);
static void upstream_pinned_wake_soon(struct upstream_pool *pool);

/* ---- failure and reconnect ---------------------------------------------- */

static void
upstream_free_io_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    netio_free(arg);
}

/* Stop u's socket and free it from a zero-timeout event (we may be inside its callback). */
static void
upstream_close_io(struct upstream_conn *u)
{
    struct timeval zero = {0, 0};
    if (u->io == NULL)
        return;
    netio_setcb(u->io, NULL, NULL, NULL, NULL);
    netio_enable_read(u->io, false);
    netio_enable_write(u->io, false);
    if (event_base_once(u->pool->px->base, -1, EV_TIMEOUT, upstream_free_io_cb, u->io, &zero) !=
        0)
        netio_free(u->io);
    u->io = NULL;
}

/* A request record, from the pool's spares when it has one. */
static struct upstream_req *
upstream_req_alloc(struct upstream_pool *pool)
{
    struct upstream_req *r = STAILQ_FIRST(&pool->spare);
    if (r == NULL)
        return bw_malloc(sizeof(*r));
    STAILQ_REMOVE_HEAD(&pool->spare, link);
    pool->nspare--;
    return r;
}

static void
upstream_req_free(struct upstream_pool *pool, struct upstream_req *r)
{
    if (pool->nspare >= UPSTREAM_SPARE_REQS) {
        bw_free(r);
        return;
    }
    STAILQ_INSERT_HEAD(&pool->spare, r, link);
    pool->nspare++;
}

/* Answer every pending request with err_reply and free them. */
static void
upstream_fail_pending(struct upstream_conn *u, const char *err_reply)
{
    struct upstream_req *r;
    while ((r = STAILQ_FIRST(&u->pending)) != NULL) {
        STAILQ_REMOVE_HEAD(&u->pending, link);
        u->inflight--;
        u->request_errors++;
        r->fn(r->privdata, NULL, 0, err_reply);
        upstream_req_free(u->pool, r);
    }
}

/*
 * Drop the connection: DOWN at once (so callbacks that send get a prompt
 * error), socket freed from a zero-timeout event (never inside its own
 * callback), pending requests failed with err_reply, reconnect scheduled.
 */
static void
upstream_fail(struct upstream_conn *u, const char *reason, const char *err_reply)
{
    struct proxy *px = u->pool->px;
    bool was_up = u->state == UPSTREAM_UP;

    snprintf(u->last_error, sizeof(u->last_error), "%s", reason);
    snprintf(u->down_reply, sizeof(u->down_reply), "-ERR upstream %s unavailable: %s\r\n",
             u->pool->addr, reason);
    u->state = UPSTREAM_DOWN;
    upstream_close_io(u);
    if (u->pinned)
        log_verbose("upstream %s pinned connection closed: %s", u->pool->addr, reason);
    else if (was_up || !u->warned_down)
        log_warn("upstream %s connection %d %s: %s", u->pool->addr, u->index,
                 was_up ? "lost" : "down", reason);
    else
        log_verbose("upstream %s connection %d failed: %s", u->pool->addr, u->index, reason);
    u->warned_down = true;
    upstream_fail_pending(u, err_reply != NULL ? err_reply : u->down_reply);
    if (u->pinned) {
        upstream_pinned_drop(u, reason);
        return;
    }
    if (!px->shutting_down) {
        struct timeval tv = {(time_t)(u->backoff_ms / 1000),
                             (suseconds_t)(u->backoff_ms % 1000) * 1000};
        evtimer_add(u->retry_ev, &tv);
        u->backoff_ms = BW_MIN(u->backoff_ms * 2, BW_MAX(px->cfg.upstream_retry_max_ms, 1));
    }
}

static void
upstream_retry_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    upstream_connect(arg);
}

/* ---- replies -------------------------------------------------------------- */

/* One complete reply of len bytes is at the head of in: hand it over. */
static void
upstream_dispatch(struct upstream_conn *u, struct evbuffer *in, size_t len)
{
    struct upstream_req *r = STAILQ_FIRST(&u->pending);
    STAILQ_REMOVE_HEAD(&u->pending, link);
    u->inflight--;
    u->replies++;
    uint64_t rtt = bw_now_us() - r->sent_us;
    u->rtt_ewma_us = u->rtt_ewma_us == 0 ? rtt : (u->rtt_ewma_us * 7 + rtt) / 8;
    cmdstats_hist_add(&u->pool->px->cmdstats.upstream_rtt, rtt);

    size_t before = evbuffer_get_length(in);
    r->fn(r->privdata, in, len, NULL);
    size_t taken = before - evbuffer_get_length(in);
    BW_ASSERT(taken <= len);
    if (taken < len)
        evbuffer_drain(in, len - taken);
    upstream_req_free(u->pool, r);
}

/*
 * Feed the input to the scanner, from its first byte (bytes scanned before
 * were moved to u->acc, so no byte is scanned twice and no offset walk is
 * needed: evbuffer_ptr_set walks the chains, which made big replies
 * quadratic). Returns 1 when a reply ended (*used: its bytes still in in),
 * 0 when all of in was used and more is needed, -1 on a protocol error.
 */
static int
upstream_scan(struct upstream_conn *u, struct evbuffer *in, size_t *used_in)
{
    struct evbuffer_iovec stackv[UPSTREAM_PEEK_VECS];
    struct evbuffer_ptr at, *from = NULL;
    if (u->in_scanned > 0) { /* a big bulk's bytes left in place: one or two chains */
        BW_ASSERT(evbuffer_ptr_set(in, &at, u->in_scanned, EVBUFFER_PTR_SET) == 0);
        from = &at;
    }
    int n = evbuffer_peek(in, -1, from, NULL, 0), rc = 0;
    struct evbuffer_iovec *vec = n <= UPSTREAM_PEEK_VECS ? stackv
                                                         : bw_malloc(sizeof(*vec) * (size_t)n);
    n = evbuffer_peek(in, -1, from, vec, n);
    *used_in = 0;
    for (int i = 0; i < n && rc == 0; i++) {
        size_t used;
        int r = reply_scan_feed(&u->scan, vec[i].iov_base, vec[i].iov_len, &used);
        *used_in += used;
        rc = r == REPLY_DONE ? 1 : r == REPLY_ERR ? -1 : 0;
    }
    if (vec != stackv)
        bw_free(vec);
    return rc;
}


static void
upstream_read_cb(struct netio *io, void *arg)
{
    struct upstream_conn *u = arg;
    struct evbuffer *in = netio_input(io);

    u->last_read_us = bw_now_us();
    while (u->io == io && evbuffer_get_length(in) > u->in_scanned) {
        size_t used;
        int rc = upstream_scan(u, in, &used);
        if (rc == 0 && u->scan.bulk_left > NETIO_BIG_BYTES) {
            /* a big bulk: its bytes stay in the input, which the next reads
             * fill in large pieces, in one chain (parking them would move
             * the chain being filled and waste its room) */
            u->in_scanned += used;
            netio_set_want(io, (size_t)u->scan.bulk_left, true);
            return;
        }
        used += u->in_scanned;
        u->in_scanned = 0;
        if (rc == 0) { /* a reply in the making: park its bytes */
            evbuffer_remove_buffer(in, u->acc, used);
            netio_set_want(io, (size_t)u->scan.bulk_left, false);
            return;
        }
        bool raw = STAILQ_EMPTY(&u->pending) && u->pinned && u->owner != NULL;
        if (rc < 0 || (STAILQ_EMPTY(&u->pending) && !raw)) {
            upstream_fail(u, rc < 0 ? "protocol error in reply" : "unexpected reply", NULL);
            return;
        }
        struct evbuffer *src = in;
        if (evbuffer_get_length(u->acc) > 0) {
            evbuffer_remove_buffer(in, u->acc, used);
            src = u->acc;
        }
        size_t len = (size_t)u->scan.consumed;
        reply_scan_reset(&u->scan);
        if (!raw) {
            upstream_dispatch(u, src, len);
            continue;
        }
        size_t before = evbuffer_get_length(src);
        u->replies++;
        u->raw_fn(u->owner, src, len);
        size_t taken = before - evbuffer_get_length(src);
        if (u->io == io && taken < len)
            evbuffer_drain(src, len - taken);
    }
}

static void
upstream_event_cb(struct netio *io, short what, void *arg)
{
    struct upstream_conn *u = arg;
    if (what & NETIO_CONNECTED) {
        int one = 1;
        evutil_socket_t fd = netio_fd(io);
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (u->connects++ > 0)
            u->reconnects++;
        u->state = UPSTREAM_UP;
        u->warned_down = false;
        snprintf(u->last_error, sizeof(u->last_error), "none");
        u->backoff_ms = UPSTREAM_BACKOFF_MIN_MS;
        if (u->index >= 0)
            log_notice("upstream %s connection %d up", u->pool->addr, u->index);
        else
            log_verbose("upstream %s pinned connection up", u->pool->addr);
        return;
    }
    char reason[128];
    if (what & NETIO_EOF)
        snprintf(reason, sizeof(reason), "connection closed by upstream");
    else
        snprintf(reason, sizeof(reason), "%s",
                 evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()));
    upstream_fail(u, reason, NULL);
}

/* ---- handshake ------------------------------------------------------------ */

/* Append one RESP multibulk made of C strings to out. */
static void
upstream_format(struct evbuffer *out, int argc, const char *const *argv)
{
    evbuffer_add_printf(out, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        evbuffer_add_printf(out, "$%zu\r\n%s\r\n", strlen(argv[i]), argv[i]);
}

static void
upstream_queue_internal(struct upstream_conn *u, int argc, const char *const *argv,
                        upstream_reply_fn *fn)
{
    struct evbuffer *tmp = evbuffer_new();
    upstream_format(tmp, argc, argv);
    size_t len = evbuffer_get_length(tmp);
    const char *err;
    (void)upstream_send(u, (const char *)evbuffer_pullup(tmp, -1), len, fn, u, &err);
    evbuffer_free(tmp);
}

/* Log an error reply to a handshake command, at most once per connect. */
static void
upstream_handshake_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct upstream_conn *u = privdata;
    if (reply == NULL || len == 0) {
        (void)err;
        return;
    }
    const char *p = (const char *)evbuffer_pullup(reply, (ev_ssize_t)len);
    if (p[0] == '-')
        log_warn("upstream %s refused the handshake: %.*s", u->pool->addr,
                 (int)BW_MIN(len - 2, 200), p + 1);
}

static void
upstream_info_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct upstream_conn *u = privdata;
    (void)err;
    if (reply == NULL)
        return;
    const char *p = (const char *)evbuffer_pullup(reply, (ev_ssize_t)len);
    struct reply_node *n = reply_parse(p, len);
    if (n != NULL && n->type == '$' && !n->nil) {
        const char *v = memmem(n->str, n->len, "redis_version:", 14);
        if (v != NULL) {
            v += 14;
            size_t l = strcspn(v, "\r\n");
            snprintf(u->pool->px->upstream_version, sizeof(u->pool->px->upstream_version), "%.*s",
                     (int)BW_MIN(l, 31), v);
        }
    }
    reply_node_free(n);
}

/*
 * The value of a CONFIG GET reply ["name", "value"] into out (outlen bytes,
 * NUL-terminated); false for an error or a value that does not fit.
 */
static bool
upstream_config_value(struct evbuffer *reply, size_t len, char *out, size_t outlen)
{
    const char *p = (const char *)evbuffer_pullup(reply, (ev_ssize_t)len);
    struct reply_node *n = reply_parse(p, len);
    bool ok = n != NULL && n->type == '*' && n->integer == 2 && n->elems[1].type == '$' &&
              !n->elems[1].nil && n->elems[1].len > 0 && n->elems[1].len < outlen;
    if (ok) {
        memcpy(out, n->elems[1].str, n->elems[1].len);
        out[n->elems[1].len] = '\0';
    }
    reply_node_free(n);
    return ok;
}

/* CONFIG GET lua-time-limit answered: Redis's busy-reply-threshold (the
 * name lua-time-limit works on Redis 6 and, as an alias, on 7). An error
 * (CONFIG renamed or denied, managed Redis) keeps what was known. */
static void
upstream_busy_threshold_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct upstream_conn *u = privdata;
    char num[24], *end;
    (void)err;
    if (reply == NULL || !upstream_config_value(reply, len, num, sizeof(num)))
        return;
    unsigned long long v = strtoull(num, &end, 10);
    if (*end == '\0' && u->pool->busy_threshold_ms != v) {
        u->pool->busy_threshold_ms = v;
        log_verbose("upstream %s: busy-reply-threshold %llu ms", u->pool->addr, v);
    }
}

/*
 * The reply to a SELECT bulwark sent to move u: refused (-BUSY while a script
 * runs, -LOADING …), u stays where it was, which bulwark no longer knows:
 * the next request of any database sends its SELECT again.
 */
static void
upstream_select_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct upstream_conn *u = privdata;
    (void)err;
    if (reply == NULL || len == 0)
        return;
    const char *p = (const char *)evbuffer_pullup(reply, 1);
    if (p[0] == '-')
        u->db = -1;
}

/* A reply bulwark asked for and needs nothing of. */
static void
upstream_ignore_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    (void)privdata;
    (void)reply;
    (void)len;
    (void)err;
}

void
upstream_pinned_shutdown(struct upstream_conn *u)
{
    if (u->dead || u->io == NULL)
        return;
    u->shut = true;
    netio_shutdown_write(u->io);
}

void
upstream_pinned_reply_on(struct upstream_conn *u)
{
    const char *argv[] = {"CLIENT", "REPLY", "ON"};
    if (!u->dead)
        upstream_queue_internal(u, 3, argv, upstream_ignore_cb);
}

/* CLIENT ID of a pinned connection (an error, e.g. CLIENT denied: stays 0). */
static void
upstream_client_id_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct upstream_conn *u = privdata;
    (void)err;
    if (reply == NULL)
        return;
    struct reply_node *n =
        reply_parse((const char *)evbuffer_pullup(reply, (ev_ssize_t)len), len);
    if (n != NULL && n->type == ':' && n->integer > 0)
        u->redis_id = (uint64_t)n->integer;
    reply_node_free(n);
}

uint64_t
upstream_conn_redis_id(const struct upstream_conn *u)
{
    return u->redis_id;
}

void
upstream_pinned_learn_id(struct upstream_conn *u)
{
    if (u->redis_id != 0 || u->dead)
        return;
    const char *id[] = {"CLIENT", "ID"};
    upstream_queue_internal(u, 2, id, upstream_client_id_cb);
}

/* CONFIG GET databases: the indexes a client may SELECT (upstream-databases 0). */
static void
upstream_databases_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct upstream_conn *u = privdata;
    struct proxy *px = u->pool->px;
    char num[16], *end;
    (void)err;
    if (reply == NULL || px->cfg.upstream_databases > 0 ||
        !upstream_config_value(reply, len, num, sizeof(num)))
        return;
    long v = strtol(num, &end, 10);
    if (*end == '\0' && v >= 1 && v <= INT32_MAX && px->databases != (int)v) {
        px->databases = (int)v;
        log_verbose("upstream %s: %ld databases", u->pool->addr, v);
    }
}

static void
upstream_queue_busy_threshold(struct upstream_conn *u)
{
    const char *db[] = {"CONFIG", "GET", "databases"};
    upstream_queue_internal(u, 3, db, upstream_databases_cb);
    const char *argv[] = {"CONFIG", "GET", "lua-time-limit"};
    upstream_queue_internal(u, 3, argv, upstream_busy_threshold_cb);
}

/* Read "name|sub" entries of a COMMAND reply into table t (or parent's subs). */
static void
upstream_learn_entry(struct cmd_table *t, struct cmd_info *parent, const struct reply_node *e)
{
    if (e->type != '*' || e->nil || e->integer < 6)
        return;
    const struct reply_node *f = e->elems;
    if (f[0].type != '$' || f[1].type != ':' || f[2].type != '*' || f[3].type != ':' ||
        f[4].type != ':' || f[5].type != ':')
        return;
    uint32_t flags = 0;
    for (int64_t i = 0; i < f[2].integer; i++)
        if (f[2].elems[i].type == '+' || f[2].elems[i].type == '$')
            flags |= cmd_flag_parse(f[2].elems[i].str, f[2].elems[i].len);
    const char *name = f[0].str;
    size_t nlen = f[0].len;
    const char *bar = memchr(name, '|', nlen);
    struct cmd_info *ci;
    if (parent != NULL && bar != NULL) {
        ci = cmd_info_add_sub(parent, bar + 1, nlen - (size_t)(bar + 1 - name), (int)f[1].integer,
                              flags, (int)f[3].integer, (int)f[4].integer, (int)f[5].integer);
    } else {
        ci = cmd_table_add(t, name, nlen, (int)f[1].integer, flags, (int)f[3].integer,
                           (int)f[4].integer, (int)f[5].integer);
    }
    if (parent == NULL && e->integer >= 10 && f[9].type == '*')
        for (int64_t i = 0; i < f[9].integer; i++)
            upstream_learn_entry(t, ci, &f[9].elems[i]);
}

static void
upstream_command_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct upstream_conn *u = privdata;
    struct proxy *px = u->pool->px;
    (void)err;
    if (reply == NULL)
        return;
    const char *p = (const char *)evbuffer_pullup(reply, (ev_ssize_t)len);
    struct reply_node *n = reply_parse(p, len);
    if (n == NULL || n->type != '*' || n->nil || n->integer == 0) {
        log_warn("upstream %s: COMMAND failed; using the built-in Redis 7.0 table",
                 u->pool->addr);
        reply_node_free(n);
        return;
    }
    struct cmd_table *t = cmd_table_new();
    for (int64_t i = 0; i < n->integer; i++)
        upstream_learn_entry(t, NULL, &n->elems[i]);
    reply_node_free(n);
    log_verbose("learned %zu commands from upstream %s", cmd_count(t), u->pool->addr);
    u->pool->on_commands(px, t);
}

/* Queue AUTH (or HELLO 3 with AUTH), INFO server and (once) COMMAND ahead
 * of any request. */
static void
upstream_handshake(struct upstream_conn *u)
{
    const struct cfg *cfg = &u->pool->px->cfg;
    bool pass = cfg->upstream_password != NULL && cfg->upstream_password[0] != '\0';
    if (u->proto == 3 && !u->pinned) {
        const char *user = cfg->upstream_user != NULL && cfg->upstream_user[0] != '\0'
                               ? cfg->upstream_user
                               : "default";
        const char *argv[] = {"HELLO", "3", "AUTH", user, cfg->upstream_password};
        upstream_queue_internal(u, pass ? 5 : 2, argv, upstream_handshake_cb);
        u->db = 0;
        return; /* INFO and COMMAND: the RESP2 connections' business */
    }
    if (u->pinned)
        u->proto = 2; /* new, or just RESET: the owner's HELLO follows */
    if (pass) {
        if (cfg->upstream_user != NULL && cfg->upstream_user[0] != '\0') {
            const char *argv[] = {"AUTH", cfg->upstream_user, cfg->upstream_password};
            upstream_queue_internal(u, 3, argv, upstream_handshake_cb);
        } else {
            const char *argv[] = {"AUTH", cfg->upstream_password};
            upstream_queue_internal(u, 2, argv, upstream_handshake_cb);
        }
    }
    u->db = 0; /* a new connection, or one just RESET */
    if (u->pinned)
        return; /* INFO and COMMAND: the shared connections' business */
    const char *info[] = {"INFO", "server"};
    upstream_queue_internal(u, 2, info, upstream_info_cb);
    if (u->index == 0)
        upstream_queue_busy_threshold(u);
    if (u->index == 0 && !u->pool->px->cmds_learned && u->pool->on_commands != NULL) {
        const char *cmd[] = {"COMMAND"};
        upstream_queue_internal(u, 1, cmd, upstream_command_cb);
    }
}

/* ---- connect and send ----------------------------------------------------- */

/* Resolve host:port (numeric first, then getaddrinfo); false with a reason. */
static bool
upstream_resolve(const struct upstream_pool *pool, struct sockaddr_storage *ss, int *sslen,
                 char *reason, size_t reasonlen)
{
    struct addrinfo hints, *res = NULL;
    char port[16];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    snprintf(port, sizeof(port), "%d", pool->port);
    int rc = getaddrinfo(pool->host, port, &hints, &res);
    if (rc != 0 || res == NULL) {
        snprintf(reason, reasonlen, "cannot resolve %.100s: %s", pool->host, gai_strerror(rc));
        return false;
    }
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *sslen = (int)res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

static void
upstream_connect(struct upstream_conn *u)
{
    struct proxy *px = u->pool->px;
    struct sockaddr_storage ss;
    int sslen;
    char reason[160];

    if (px->shutting_down || u->state != UPSTREAM_DOWN)
        return;
    if (!upstream_resolve(u->pool, &ss, &sslen, reason, sizeof(reason))) {
        upstream_fail(u, reason, NULL);
        return;
    }
    u->state = UPSTREAM_CONNECTING;
    u->connect_started_ms = bw_now_ms();
    reply_scan_reset(&u->scan);
    evbuffer_drain(u->acc, evbuffer_get_length(u->acc));
    u->in_scanned = 0;
    u->io = netio_connect(px->base, (struct sockaddr *)&ss, sslen, upstream_read_cb, NULL,
                          upstream_event_cb, u);
    if (u->io == NULL) {
        upstream_fail(u, evutil_socket_error_to_string(EVUTIL_SOCKET_ERROR()), NULL);
        return;
    }
    netio_set_flush_after_read(u->io); /* the replies it completes go out at once */
    upstream_handshake(u);
}

int
upstream_send_db(struct upstream_conn *u, int db, const char *cmd, size_t len,
                 upstream_reply_fn *fn, void *privdata, const char **err)
{
    if (u->state == UPSTREAM_DOWN || u->io == NULL) {
        *err = u->down_reply;
        return BW_ERR;
    }
    if (db >= 0 && db != u->db) {
        /* One connection serves every database: it moves to the request's
         * first (the reply is bulwark's; the index was checked by the client's
         * SELECT against the upstream's databases). */
        char num[24];
        snprintf(num, sizeof(num), "%d", db);
        const char *argv[] = {"SELECT", num};
        u->db = db;
        u->pool->db_switches++;
        upstream_queue_internal(u, 2, argv, upstream_select_cb);
    }
    return upstream_send(u, cmd, len, fn, privdata, err);
}

int
upstream_send(struct upstream_conn *u, const char *cmd, size_t len, upstream_reply_fn *fn,
              void *privdata, const char **err)
{
    u->requests++;
    cmdstats_answered(&u->pool->px->cmdstats, CMDSTATS_BY_UPSTREAM);
    if (u->state == UPSTREAM_DOWN || u->io == NULL) {
        u->request_errors++;
        *err = u->down_reply;
        return BW_ERR;
    }
    struct upstream_req *r = upstream_req_alloc(u->pool);
    r->sent_us = bw_now_us();
    r->fn = fn;
    r->privdata = privdata;
    STAILQ_INSERT_TAIL(&u->pending, r, link);
    u->inflight++;
    if (len > 0 && evbuffer_add(netio_output(u->io), cmd, len) != 0)
        log_warn("upstream %s: evbuffer_add of %zu bytes failed", u->pool->addr, len);
    return BW_OK;
}

int
upstream_send_db_move(struct upstream_conn *u, int db, struct evbuffer *src, size_t len,
                      upstream_reply_fn *fn, void *privdata, const char **err)
{
    if (upstream_send_db(u, db, NULL, 0, fn, privdata, err) != BW_OK)
        return BW_ERR;
    evbuffer_remove_buffer(src, netio_output(u->io), len);
    return BW_OK;
}

/* ---- pool ----------------------------------------------------------------- */

struct upstream_pool *
upstream_pool_new(struct proxy *px, upstream_commands_fn *on_commands)
{
    return upstream_pool_new_at(px, px->cfg.upstream_host, px->cfg.upstream_port, on_commands);
}

struct upstream_pool *
upstream_pool_new_at(struct proxy *px, const char *host, int port,
                     upstream_commands_fn *on_commands)
{
    struct upstream_pool *pool = bw_calloc(1, sizeof(*pool));
    snprintf(pool->host, sizeof(pool->host), "%s", host);
    pool->port = port;
    pool->px = px;
    pool->on_commands = on_commands;
    pool->busy_threshold_ms = UPSTREAM_BUSY_THRESHOLD_MS;
    pool->nconns = BW_MAX(px->cfg.upstream_connections, 1);
    pool->conns = bw_calloc(2 * (size_t)pool->nconns, sizeof(*pool->conns));
    TAILQ_INIT(&pool->idle);
    TAILQ_INIT(&pool->waiters);
    STAILQ_INIT(&pool->spare);
    pool->wake_ev = event_new(px->base, -1, 0, upstream_wake_cb, pool);
    BW_ASSERT(pool->wake_ev != NULL);
    if (strchr(host, ':') != NULL)
        snprintf(pool->addr, sizeof(pool->addr), "[%s]:%d", host, port);
    else
        snprintf(pool->addr, sizeof(pool->addr), "%s:%d", host, port);
    for (int i = 0; i < 2 * pool->nconns; i++) {
        struct upstream_conn *u = &pool->conns[i];
        u->pool = pool;
        u->index = i;
        u->proto = i < pool->nconns ? 2 : 3;
        STAILQ_INIT(&u->pending);
        u->backoff_ms = UPSTREAM_BACKOFF_MIN_MS;
        u->retry_ev = evtimer_new(px->base, upstream_retry_cb, u);
        u->acc = evbuffer_new();
        BW_ASSERT(u->retry_ev != NULL && u->acc != NULL);
        snprintf(u->last_error, sizeof(u->last_error), "not connected yet");
        snprintf(u->down_reply, sizeof(u->down_reply),
                 "-ERR upstream %s unavailable: not connected yet\r\n", pool->addr);
        if (u->proto == 2) {
            u->started = true;
            upstream_connect(u);
        }
    }
    return pool;
}

void
upstream_pool_free(struct upstream_pool *pool)
{
    if (pool == NULL)
        return;
    while (!TAILQ_EMPTY(&pool->waiters)) /* their clients are gone already */
        upstream_pinned_wait_cancel(TAILQ_FIRST(&pool->waiters));
    event_free(pool->wake_ev);
    while (!TAILQ_EMPTY(&pool->idle)) {
        struct upstream_conn *u = TAILQ_FIRST(&pool->idle);
        TAILQ_REMOVE(&pool->idle, u, idle_link);
        netio_free(u->io);
        u->io = NULL;
        u->state = UPSTREAM_DOWN;
        upstream_fail_pending(u, "-ERR bulwark is shutting down\r\n");
        event_free(u->retry_ev);
        evbuffer_free(u->acc);
        bw_free(u);
    }
    for (int i = 0; i < 2 * pool->nconns; i++) {
        struct upstream_conn *u = &pool->conns[i];
        char err[512];
        snprintf(err, sizeof(err), "-ERR upstream %s: bulwark is shutting down\r\n", pool->addr);
        netio_free(u->io);
        u->io = NULL;
        u->state = UPSTREAM_DOWN;
        upstream_fail_pending(u, err);
        event_free(u->retry_ev);
        evbuffer_free(u->acc);
    }
    bw_free(pool->conns);
    struct upstream_req *r;
    while ((r = STAILQ_FIRST(&pool->spare)) != NULL) {
        STAILQ_REMOVE_HEAD(&pool->spare, link);
        bw_free(r);
    }
    bw_free(pool);
}

struct upstream_conn *
upstream_pick(struct upstream_pool *pool, uint64_t client_id, int proto)
{
    uint64_t i = client_id % (uint64_t)pool->nconns;
    if (proto != 3)
        return &pool->conns[i];
    struct upstream_conn *u = &pool->conns[(uint64_t)pool->nconns + i];
    if (!u->started) { /* the first RESP3 client of this slot: connect now */
        u->started = true;
        upstream_connect(u);
    }
    return u;
}

int
upstream_conn_proto(const struct upstream_conn *u)
{
    return u->proto;
}

uint64_t
upstream_pool_inflight(const struct upstream_pool *pool)
{
    uint64_t n = 0;
    for (int i = 0; i < 2 * pool->nconns; i++)
        n += pool->conns[i].inflight;
    return n;
}

bool
upstream_pool_is_up(const struct upstream_pool *pool)
{
    for (int i = 0; i < pool->nconns; i++)
        if (pool->conns[i].state == UPSTREAM_UP)
            return true;
    return false;
}

void
upstream_pool_info(const struct upstream_pool *pool, struct evbuffer *out)
{
    uint64_t reconnects = 0, timeouts = 0, replies = 0, rtt = 0, up = 0, reqs = 0, errs = 0;
    for (int i = 0; i < 2 * pool->nconns; i++) { /* rtt: of the RESP2 ones */
        const struct upstream_conn *u = &pool->conns[i];
        if (i >= pool->nconns) {
            reqs += u->requests;
            errs += u->request_errors;
            reconnects += u->reconnects;
            timeouts += u->timeouts;
            replies += u->replies;
            continue;
        }
        reqs += u->requests;
        errs += u->request_errors;
        reconnects += u->reconnects;
        timeouts += u->timeouts;
        replies += u->replies;
        rtt += u->rtt_ewma_us;
        up += u->state == UPSTREAM_UP;
    }
    const struct upstream_conn *u0 = &pool->conns[0];
    evbuffer_add_printf(out,
                        "# Upstream\r\n"
                        "upstream_address:%s\r\n"
                        "upstream_redis_version:%s\r\n"
                        "upstream_link_status:%s\r\n"
                        "upstream_connections:%d\r\n"
                        "upstream_connections_up:%llu\r\n"
                        "upstream_reconnects:%llu\r\n"
                        "upstream_requests_in_flight:%llu\r\n"
                        "upstream_requests:%llu\r\n"
                        "upstream_request_errors:%llu\r\n"
                        "upstream_replies:%llu\r\n"
                        "upstream_timeouts:%llu\r\n"
                        "upstream_rtt_us:%llu\r\n"
                        "upstream_databases:%d\r\n"
                        "upstream_db_switches:%llu\r\n"
                        "upstream_last_error:%s\r\n",
                        pool->addr, pool->px->upstream_version, upstream_state_names[u0->state],
                        pool->nconns, (unsigned long long)up, (unsigned long long)reconnects,
                        (unsigned long long)upstream_pool_inflight(pool),
                        (unsigned long long)reqs, (unsigned long long)errs,
                        (unsigned long long)replies, (unsigned long long)timeouts,
                        (unsigned long long)(rtt / (uint64_t)pool->nconns), pool->px->databases,
                        (unsigned long long)pool->db_switches, u0->last_error);
}

void
upstream_pinned_select(struct upstream_conn *u, int db)
{
    if (u->db == db || u->dead)
        return;
    char num[24];
    snprintf(num, sizeof(num), "%d", db);
    const char *argv[] = {"SELECT", num};
    u->db = db;
    upstream_queue_internal(u, 2, argv, upstream_select_cb);
}

int
upstream_conn_db(const struct upstream_conn *u)
{
    return u->db;
}

void
upstream_conn_was_reset(struct upstream_conn *u)
{
    u->db = 0;
    u->proto = 2;
}

void
upstream_conn_set_db(struct upstream_conn *u, int db)
{
    u->db = db;
}

void
upstream_conn_set_proto(struct upstream_conn *u, int proto)
{
    if (u->proto == proto || u->dead)
        return;
    const char *argv[] = {"HELLO", proto == 3 ? "3" : "2"};
    u->proto = proto;
    upstream_queue_internal(u, 2, argv, upstream_handshake_cb);
}

void
upstream_pool_reset_stats(struct upstream_pool *pool)
{
    for (int i = 0; i < 2 * pool->nconns; i++) {
        pool->conns[i].reconnects = 0;
        pool->conns[i].timeouts = 0;
        pool->conns[i].replies = 0;
        pool->conns[i].requests = 0;
        pool->conns[i].request_errors = 0;
    }
}

static void upstream_pinned_trim(struct upstream_pool *pool, uint64_t now_ms);

void
upstream_pool_cron(struct upstream_pool *pool, uint64_t now_ms)
{
    const struct cfg *cfg = &pool->px->cfg;
    upstream_pinned_trim(pool, now_ms);
    upstream_pinned_wake_soon(pool); /* upstream-pinned-max may have been raised */
    for (int i = 0; i < 2 * pool->nconns; i++) {
        struct upstream_conn *u = &pool->conns[i];
        char reason[128], err[512];
        if (u->state == UPSTREAM_CONNECTING && cfg->upstream_connect_timeout_ms > 0 &&
            now_ms - u->connect_started_ms > cfg->upstream_connect_timeout_ms) {
            snprintf(reason, sizeof(reason), "connect timed out after %llu ms",
                     (unsigned long long)cfg->upstream_connect_timeout_ms);
            upstream_fail(u, reason, NULL);
            continue;
        }
        struct upstream_req *head = STAILQ_FIRST(&u->pending);
        if (u->state != UPSTREAM_UP || head == NULL || cfg->upstream_timeout_ms == 0)
            continue;
        /* A reply still streaming in is progress: count from the later of
         * the head's send and the last bytes received. */
        uint64_t now_us = bw_now_us(), since = BW_MAX(head->sent_us, u->last_read_us);
        /* A script may run alone until Redis's BUSY replies begin (one a
         * client left still runs: the mark holds when it was last seen). */
        if (pool->script_mark_us != 0)
            since = BW_MAX(since, pool->script_mark_us + pool->busy_threshold_ms * 1000);
        if (now_us > since && now_us - since > cfg->upstream_timeout_ms * 1000) {
            u->timeouts++;
            snprintf(reason, sizeof(reason), "request timed out after %llu ms",
                     (unsigned long long)cfg->upstream_timeout_ms);
            snprintf(err, sizeof(err), "-ERR upstream %s timed out after %llu ms\r\n", pool->addr,
                     (unsigned long long)cfg->upstream_timeout_ms);
            upstream_fail(u, reason, err);
        }
    }
}

/* ---- pinned connections --------------------------------------------------- */

static void
upstream_pinned_free_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_conn *u = arg;
    (void)fd;
    (void)what;
    upstream_fail_pending(u, u->down_reply); /* bulwark's own (SELECT …) still due */
    event_free(u->retry_ev);
    evbuffer_free(u->acc);
    bw_free(u);
}

/*
 * A pinned connection is finished (failed or not reusable): tell its owner,
 * leave the idle list, free it from a zero-timeout event (we may be inside
 * its read callback).
 */
static void
upstream_pinned_drop(struct upstream_conn *u, const char *reason)
{
    struct upstream_pool *pool = u->pool;
    if (u->dead)
        return;
    u->dead = true;
    upstream_close_io(u);
    u->state = UPSTREAM_DOWN;
    if (u->in_idle) {
        TAILQ_REMOVE(&pool->idle, u, idle_link);
        u->in_idle = false;
        pool->nidle--;
    }
    pool->npinned--;
    upstream_pinned_script(u, false);
    upstream_pinned_wake_soon(pool); /* a slot is free */
    void *owner = u->owner;
    u->owner = NULL;
    if (owner != NULL && u->down_fn != NULL)
        u->down_fn(owner, reason);
    struct timeval zero = {0, 0};
    if (event_base_once(pool->px->base, -1, EV_TIMEOUT, upstream_pinned_free_cb, u, &zero) != 0)
        upstream_pinned_free_cb(-1, 0, u);
}

/* Warn that a pinned connection could not be opened, at most once a second. */
static void
upstream_pinned_warn(struct upstream_pool *pool, const char *reason)
{
    uint64_t now = bw_now_ms();
    if (pool->pinned_warn_ms != 0 && now - pool->pinned_warn_ms < 1000) {
        pool->pinned_warn_muted++;
        return;
    }
    log_warn("upstream %s: cannot open a dedicated connection: %s (%llu more since the last "
             "warning)",
             pool->addr, reason, (unsigned long long)pool->pinned_warn_muted);
    pool->pinned_warn_ms = now;
    pool->pinned_warn_muted = 0;
}

/* A new pinned connection, connecting; NULL (reason in err) when it cannot start. */
static struct upstream_conn *
upstream_pinned_open(struct upstream_pool *pool, char *err, size_t errlen)
{
    struct proxy *px = pool->px;
    struct upstream_conn *u = bw_calloc(1, sizeof(*u));
    u->pool = pool;
    u->index = -1;
    u->pinned = true;
    STAILQ_INIT(&u->pending);
    u->backoff_ms = UPSTREAM_BACKOFF_MIN_MS;
    u->retry_ev = evtimer_new(px->base, upstream_retry_cb, u);
    u->acc = evbuffer_new();
    BW_ASSERT(u->retry_ev != NULL && u->acc != NULL);
    pool->npinned++;
    pool->pinned_peak = BW_MAX(pool->pinned_peak, (uint64_t)pool->npinned);
    upstream_connect(u);
    if (!u->dead)
        return u;
    /* could not even start connecting (EMFILE, ENFILE, a name that does not
     * resolve): already dropped, freed from a zero-timeout event */
    snprintf(err, errlen, "ERR upstream %s: cannot open a dedicated connection: %s", pool->addr,
             u->last_error);
    upstream_pinned_warn(pool, u->last_error);
    pool->pinned_refused++;
    return NULL;
}

struct upstream_conn *
upstream_pinned_acquire(struct upstream_pool *pool, int proto, void *owner,
                        upstream_raw_fn *raw_fn, upstream_down_fn *down_fn, char *err,
                        size_t errlen)
{
    /* the most recently used first: under a steady load the same ones
     * cycle and the surplus above upstream-pinned-idle ages out (cron) */
    struct upstream_conn *u = TAILQ_LAST(&pool->idle, upstream_conn_list);
    if (u != NULL) {
        TAILQ_REMOVE(&pool->idle, u, idle_link);
        u->in_idle = false;
        pool->nidle--;
    } else if (pool->npinned >= pool->px->cfg.upstream_pinned_max) {
        pool->pinned_refused++;
        snprintf(err, errlen, "ERR max number of clients reached");
        return NULL;
    } else if ((u = upstream_pinned_open(pool, err, errlen)) == NULL) {
        return NULL;
    }
    u->owner = owner;
    u->raw_fn = raw_fn;
    u->down_fn = down_fn;
    upstream_conn_set_proto(u, proto);
    return u;
}

bool
upstream_pinned_room(const struct upstream_pool *pool, bool woken)
{
    bool room = pool->nidle > 0 || pool->npinned < pool->px->cfg.upstream_pinned_max;
    return room && (woken || TAILQ_EMPTY(&pool->waiters));
}

/* Wake the first waiters on the next loop turn if a connection is free. */
static void
upstream_pinned_wake_soon(struct upstream_pool *pool)
{
    if (!TAILQ_EMPTY(&pool->waiters) && upstream_pinned_room(pool, true))
        event_active(pool->wake_ev, EV_TIMEOUT, 0);
}

/* Dequeue and free w; its callback is not called. */
static void
upstream_waiter_remove(struct upstream_waiter *w)
{
    TAILQ_REMOVE(&w->pool->waiters, w, link);
    w->pool->nwaiters--;
    event_free(w->timer);
    bw_free(w);
}

/* Hand free connections to the waiters at the head, one each, in order. */
static void
upstream_wake_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_pool *pool = arg;
    struct upstream_waiter *w;
    (void)fd;
    (void)what;
    /* Bounded: every round removes a waiter; a woken client that does not
     * take its connection now (paused) queues again at the tail later. */
    while ((w = TAILQ_FIRST(&pool->waiters)) != NULL && upstream_pinned_room(pool, true)) {
        upstream_wake_fn *fn = w->fn;
        void *wa = w->arg;
        upstream_waiter_remove(w);
        fn(wa, false);
    }
}

/* upstream-pinned-wait passed: the waiter gives up. */
static void
upstream_wait_timeout_cb(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_waiter *w = arg;
    upstream_wake_fn *fn = w->fn;
    void *wa = w->arg;
    (void)fd;
    (void)what;
    w->pool->pinned_refused++;
    upstream_waiter_remove(w);
    fn(wa, true);
}

struct upstream_waiter *
upstream_pinned_wait(struct upstream_pool *pool, upstream_wake_fn *fn, void *arg)
{
    uint64_t ms = pool->px->cfg.upstream_pinned_wait_ms;
    struct timeval tv = {(time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000};
    struct upstream_waiter *w = bw_calloc(1, sizeof(*w));
    w->pool = pool;
    w->fn = fn;
    w->arg = arg;
    w->timer = evtimer_new(pool->px->base, upstream_wait_timeout_cb, w);
    BW_ASSERT(w->timer != NULL && evtimer_add(w->timer, &tv) == 0);
    TAILQ_INSERT_TAIL(&pool->waiters, w, link);
    pool->nwaiters++;
    upstream_pinned_wake_soon(pool); /* room may be there already (a paused waiter's) */
    return w;
}

void
upstream_pinned_wait_cancel(struct upstream_waiter *w)
{
    if (w == NULL)
        return;
    struct upstream_pool *pool = w->pool;
    upstream_waiter_remove(w);
    upstream_pinned_wake_soon(pool); /* it may have been woken for a slot it left */
}

uint64_t
upstream_pool_pinned_waiting(const struct upstream_pool *pool)
{
    return pool->nwaiters;
}

int
upstream_pinned_send(struct upstream_conn *u, const char *cmd, size_t len)
{
    if (u->dead || u->io == NULL)
        return BW_ERR;
    if (evbuffer_add(netio_output(u->io), cmd, len) != 0)
        return BW_ERR;
    return BW_OK;
}

/* RESET answered: the connection is clean; close it if it is not. */
static void
upstream_reset_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    struct upstream_conn *u = privdata;
    (void)err;
    if (reply == NULL)
        return; /* the connection failed and is being dropped */
    if (len != 8 || memcmp(evbuffer_pullup(reply, 8), "+RESET\r\n", 8) != 0) {
        log_warn("upstream %s: RESET of a pinned connection failed; closing it", u->pool->addr);
        upstream_pinned_drop(u, "RESET failed");
    }
}

void
upstream_pinned_release(struct upstream_conn *u, bool reusable, bool reset)
{
    struct upstream_pool *pool = u->pool;
    u->owner = NULL;
    if (u->dead)
        return;
    upstream_pinned_script(u, false);
    if (!reusable || u->state != UPSTREAM_UP || u->shut || pool->px->shutting_down) {
        upstream_pinned_drop(u, "released");
        return;
    }
    if (reset) {
        /* RESET (Redis >= 6.2) clears MULTI, WATCH, subscriptions, CLIENT
         * REPLY, tracking and the db; AUTH and SELECT put it back as new. */
        const char *cmd[] = {"RESET"};
        upstream_queue_internal(u, 1, cmd, upstream_reset_cb);
        upstream_handshake(u);
    }
    TAILQ_INSERT_TAIL(&pool->idle, u, idle_link);
    u->in_idle = true;
    u->idle_since_ms = bw_now_ms();
    pool->nidle++;
    upstream_pinned_wake_soon(pool);
}

/*
 * Close idle pinned connections above upstream-pinned-idle once they have
 * been unused for UPSTREAM_IDLE_SURPLUS_MS: closing them at release made a
 * load of short sessions (scripts from more clients than that) connect,
 * AUTH and SELECT again for nearly every request.
 */
static void
upstream_pinned_trim(struct upstream_pool *pool, uint64_t now_ms)
{
    struct upstream_conn *u;
    while (pool->nidle > BW_MAX(pool->px->cfg.upstream_pinned_idle, 0) &&
           (u = TAILQ_FIRST(&pool->idle)) != NULL &&
           (now_ms - u->idle_since_ms >= UPSTREAM_IDLE_SURPLUS_MS ||
            pool->px->cfg.upstream_pinned_idle == 0))
        upstream_pinned_drop(u, "idle surplus");
}

void
upstream_pinned_script(struct upstream_conn *u, bool inflight)
{
    struct upstream_pool *pool = u->pool;
    if (inflight && !u->script && pool->nscripts++ == 0)
        pool->script_mark_us = bw_now_us(); /* Redis may start running it now */
    else if (u->script)
        pool->script_mark_us = bw_now_us(); /* answered: the next one may start now */
    if (!inflight && u->script)
        pool->nscripts--; /* released unanswered: it still runs, from the mark on */
    u->script = inflight;
}

bool
upstream_pool_script_inflight(const struct upstream_pool *pool)
{
    return pool->nscripts > 0;
}

void
upstream_pool_refresh_busy_threshold(struct upstream_pool *pool)
{
    struct upstream_conn *u = &pool->conns[0];
    if (u->state == UPSTREAM_UP)
        upstream_queue_busy_threshold(u);
}

void
upstream_pool_pinned_stats(const struct upstream_pool *pool, uint64_t *now, uint64_t *peak,
                           uint64_t *refused)
{
    *now = (uint64_t)pool->npinned;
    *peak = pool->pinned_peak;
    *refused = pool->pinned_refused;
}

const char *
upstream_pool_addr(const struct upstream_pool *pool)
{
    return pool->addr;
}
