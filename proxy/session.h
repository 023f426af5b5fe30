/*
 * session: what the request path knows of one client connection — who it is
 * (id, name, addresses, AUTH), where its requests go (database, protocol,
 * keyspace, shared upstream connection, batcher), its reply queue, and the
 * state each feature keeps per connection (batched GETs, a pinned session,
 * CLIENT TRACKING bookkeeping). Stages and features see this struct, never
 * the connection (client.c) behind it: what only the connection can do
 * (close, CLIENT LIST's socket figures) it offers through session_ops.
 *
 * Sessions are listed in the proxy (px->sessions) and indexed by id, for
 * messages addressed to a client (CLIENT TRACKING REDIRECT, CLIENT KILL ID).
 */
#ifndef BW_SESSION_H
#define BW_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proxy/slots.h"

struct evbuffer;
struct cmd_info;
struct proxy;
struct resp_request;
struct keyspace;
struct upstream_conn;
struct upstream_pool;
struct upstream_waiter;
struct batch;
struct pinned;
struct ctrk_write;
struct session;

/* What CLIENT LIST shows of a session's socket. */
struct session_io {
    int fd;           /* fd= */
    size_t qbuf;      /* qbuf=: input not consumed yet */
    size_t omem;      /* omem=: output not written yet */
    uint64_t idle_ms; /* since the last read or write */
};

/* What the connection does for the request path. */
struct session_ops {
    /* Close after the replies due are out (QUIT, CLIENT KILL of itself). */
    void (*close_after_reply)(struct session *s);
    /* Close now (CLIENT KILL of another client): freed later, never inside the call. */
    void (*close)(struct session *s);
    /* Parse the connection's input again on the next loop turn (a hold ended). */
    void (*resume)(struct session *s);
    /* CLIENT LIST's figures of the socket (session_format_info). */
    void (*io_stats)(const struct session *s, struct session_io *io);
    /* Reply bytes held for s (output and parked), for INFO. */
    size_t (*held_bytes)(const struct session *s);
};

/*
 * Why the connection's input is not parsed now (Redis blocked.c's one
 * "blocked" flag with a reason); the request that waits stays unparsed.
 */
enum session_hold {
    SESSION_RUN = 0,    /* parsing */
    SESSION_HOLD_BATCH, /* mget mode: until its batched / lease-held GETs are answered */
    SESSION_HOLD_DRAIN, /* until every reply due is in: a session starts on another
                           connection, or HELLO moves to the other protocol's one */
    SESSION_HOLD_IDLE,  /* pinned: a request bulwark answers waits until nothing is due
                           on the dedicated connection, as Redis reads nothing from a
                           client blocked or mid-reply */
    SESSION_HOLD_POOL,  /* queued for a dedicated connection (upstream-pinned-max in use) */
};

struct session {
    TAILQ_ENTRY(session) link;     /* in px->sessions */
    struct proxy *px;              /* borrowed */
    const struct session_ops *ops; /* the connection's (borrowed, static) */
    uint64_t id;                   /* CLIENT ID, from 1 */
    bool closed;                   /* the connection is closed: nothing more goes to it */
    bool authenticated;            /* AUTH passed (or no requirepass) */
    char *name;                    /* CLIENT SETNAME (owned), NULL when unset */
    char addr[64];                 /* peer "ip:port" */
    char laddr[64];                /* local "ip:port" */
    bool is_unix;                  /* accepted on the unix socket */
    uint64_t created_ms;           /* accept time, monotonic ms (CLIENT LIST age=) */
    char last_cmd[32];             /* name of the last command, lowercase (CLIENT LIST cmd=) */
    uint64_t commands;             /* requests handled */

    /* where requests go */
    int db;                   /* SELECTed database, 0 on connect (as Redis) */
    int proto;                /* RESP version (HELLO): 2 on connect, or 3 */
    struct keyspace *ks;      /* that database's protections (borrowed) */
    struct upstream_conn *up; /* the shared upstream connection (borrowed) */
    struct batch *batch;      /* ks's GET batcher of that connection (borrowed) */
    struct slotq q;           /* replies in request order */

    /* input held */
    enum session_hold hold;             /* see enum session_hold */
    struct upstream_waiter *pin_waiter; /* SESSION_HOLD_POOL: the pool's handle */
    bool pin_woken;                     /* the pool woke us: a dedicated connection is ours */
    bool pin_timed_out; /* the wait ended without one: the held request is refused */

    /* a big request being handled, whose bytes are at the head of move_src */
    struct evbuffer *move_src; /* the connection's input (borrowed) */
    const char *move_raw;      /* those bytes: forwarding moves them, no copy; or NULL */
    bool moved;                /* they were moved out */

    /* batcher */
    uint64_t batch_epoch; /* batcher epoch of the last batched GET */

    /* pinned session (pinned.c) */
    struct pinned *pin;             /* dedicated-connection session (owned), or NULL */
    struct slot *pin_slot;          /* the slot its replies stream into (in q) */
    bool cl_multi;                  /* in front of a cluster: a MULTI bulwark answered,
                                      sent with the transaction's first command */
    bool cl_multi_swallow;          /* that MULTI's reply is the next on the session's
                                      connection: the client has had bulwark's +OK */
    struct upstream_pool *pin_pool; /* where the next session's connection comes from: NULL
                                      the upstream's; in front of a cluster, the master of
                                      the starting request's first key (borrowed) */
    bool multi_refused;             /* a MULTI was refused: up to EXEC/DISCARD a failed
                                      transaction, never run outside one */
    bool watch_refused;             /* a WATCH was refused: the next MULTI is refused too */
    const void *pins_req;           /* the request pins is about, or NULL */
    bool pins;                      /* pinned_needed(pins_req) */

    /* CLIENT TRACKING (ctrack.c) */
    bool trk_after;                /* the command's end waits for the session's replies */
    bool trk_after_client;         /* that command was CLIENT … */
    struct ctrk_write *trk_cur;    /* the current request's write keys (owned) */
    struct ctrk_write *trk_pin;    /* writes sent in the session, replies not all in (owned) */
    struct ctrk_write *trk_mreads; /* keys read inside MULTI, remembered once EXEC ran (owned) */
    struct ctrk_write *trk_mdirty; /* of those, keys the transaction writes after reading */
};

/*
 * Start s (the connection's storage, zeroed): listed and indexed, RESP2,
 * replies queued before out; addr/laddr are copied. Where its requests go
 * is keyspace_select()'s (keyspace.h).
 */
void session_init(struct session *s, struct proxy *px, const struct session_ops *ops,
                  const struct slotq_ops *qops, struct evbuffer *out, const char *addr,
                  const char *laddr, bool is_unix);

/* s is closing: unlisted, pending replies orphaned, name freed. */
void session_deinit(struct session *s);

/* The live session with this id, or NULL. */
struct session *session_by_id(struct proxy *px, uint64_t id);

/* Forget the id index (exit). */
void session_index_free(struct proxy *px);

void session_set_name(struct session *s, const char *name, size_t len); /* len 0 clears */

/* RESET's effect on bulwark's side: no name, AUTH as on connect. */
void session_reset_auth(struct session *s);

/* Replies, in request order, encoded for s's protocol (encode.h). */
struct evbuffer *session_reply_target(struct session *s); /* once per reply */
void session_reply_raw(struct session *s, const char *data, size_t len);
void session_reply_error(struct session *s, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))); /* fmt without '-' and CRLF */
void session_reply_status(struct session *s, const char *status);
void session_reply_bulk(struct session *s, const char *data, size_t len);
void session_reply_int(struct session *s, long long v);
void session_reply_nil(struct session *s);

/* deny-commands names this command (len bytes, any case). */
bool session_is_denied(const struct proxy *px, const char *name, size_t len);

/*
 * The command table's entry of req's command name (not its subcommand), or
 * NULL: looked up once per parsed request and noted in req->cmd (which the
 * request path may write: requests are never really const).
 */
const struct cmd_info *session_cmd(struct session *s, const struct resp_request *req);

/* bulwark's error for a denied request. */
void session_reply_denied(struct session *s, const struct resp_request *req);

/* One CLIENT LIST / CLIENT INFO line of s, with '\n', appended to out. */
void session_format_info(const struct session *s, struct evbuffer *out);

/* session_format_info() as a NUL-terminated string without its '\n' (log lines). */
void session_info_line(const struct session *s, char *out, size_t size);

/* CLIENT LIST of every session / of the one with this id (if live). */
void session_format_all(struct proxy *px, struct evbuffer *out);
void session_format_id(struct proxy *px, uint64_t id, struct evbuffer *out);

/*
 * Redis 7.0 checkClientOutputBufferLimits() on the used bytes held for s (of
 * its class: pub/sub when subscribed, else normal): true at or above hard,
 * or at or above soft for more than soft-seconds (*soft_since_ms: when it
 * reached soft, monotonic ms, 0 below; the caller's storage).
 */
bool session_output_over(const struct session *s, size_t used, uint64_t *soft_since_ms);

/* The most reply bytes held for one client now (INFO client_recent_max_output_buffer). */
size_t session_max_output(struct proxy *px);

#endif
