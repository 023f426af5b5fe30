/*
 * upstream: the multiplexed, pipelined connections to the upstream Redis.
 * Requests are written back to back; replies come back in the same order and
 * are matched to requests by a FIFO; each reply is handed over as raw bytes.
 * Own deadlines (upstream-connect-timeout, upstream-timeout), reconnect with
 * capped exponential backoff, AUTH/SELECT on connect.
 *
 * Connection life:
 *
 *   DOWN --retry timer--> CONNECTING --connected--> UP
 *     ^                        |                     |
 *     +--- error / EOF / connect or request timeout -+  (every pending
 *          request is answered with an error, then backoff)
 *
 * While DOWN, upstream_send() fails at once, so clients get a prompt -ERR.
 * While CONNECTING, requests queue behind the handshake.
 */
#ifndef BW_UPSTREAM_H
#define BW_UPSTREAM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct event_base;
struct proxy;
struct upstream_conn;
struct upstream_pool;
struct cmd_table;

/*
 * Reply callback. On success reply is the connection's input buffer whose
 * first len bytes are exactly this reply (raw RESP); the callback may copy
 * them or move them out (evbuffer_remove_buffer(reply, dst, len)); whatever
 * of those len bytes it leaves is drained afterwards. On failure reply is
 * NULL, len 0, and err is the full error reply to give the client
 * ("-ERR upstream 127.0.0.1:6379 ...\r\n"). Called exactly once per request.
 * The callback must not free the connection or the pool.
 */
typedef void upstream_reply_fn(void *privdata, struct evbuffer *reply, size_t len,
                               const char *err);

typedef void upstream_raw_fn(void *owner, struct evbuffer *reply, size_t len);
typedef void upstream_down_fn(void *owner, const char *reason);

/*
 * Called when the upstream's COMMAND reply has been read into a new table;
 * the callee takes ownership of t.
 */
typedef void upstream_commands_fn(struct proxy *px, struct cmd_table *t);

/*
 * Create the pool of cfg upstream-connections connections to cfg upstream
 * and start connecting. Borrows px for its lifetime (config, base, stats).
 * on_commands receives the command table learned on the first connect.
 * Never fails: an unreachable upstream is retried.
 */
struct upstream_pool *upstream_pool_new(struct proxy *px, upstream_commands_fn *on_commands);

/*
 * upstream_pool_new() for the Redis at host:port (a Redis Cluster node;
 * host copied). on_commands may be NULL.
 */
struct upstream_pool *upstream_pool_new_at(struct proxy *px, const char *host, int port,
                                           upstream_commands_fn *on_commands);

/* "host:port" of the pool's Redis, for messages. */
const char *upstream_pool_addr(const struct upstream_pool *pool);

/* Close every connection (pending requests get an error) and free. NULL ok. */
void upstream_pool_free(struct upstream_pool *pool);

/*
 * The shared connection a client with this id speaking RESP proto (2 or 3)
 * uses (id % connections of that protocol). RESP3 connections say HELLO 3
 * in their handshake, so Redis encodes their replies for RESP3 clients
 * exactly as it would for them; they are opened by the first pick.
 */
struct upstream_conn *upstream_pick(struct upstream_pool *pool, uint64_t client_id, int proto);

/* The RESP version u speaks now (2 or 3). */
int upstream_conn_proto(const struct upstream_conn *u);

/*
 * Pinned u speaks proto before the owner's next request: bulwark sends
 * HELLO proto (its reply is bulwark's) when u speaks the other one.
 */
void upstream_conn_set_proto(struct upstream_conn *u, int proto);

/*
 * Queue one request (cmd: len bytes of RESP multibulk, copied) on u.
 * Returns BW_OK, or BW_ERR without calling fn when u is DOWN; then *err
 * points to the error reply to send (static until the next state change).
 */
int upstream_send(struct upstream_conn *u, const char *cmd, size_t len, upstream_reply_fn *fn,
                  void *privdata, const char **err);

/*
 * upstream_send() in database db: when u is in another one, a SELECT db is
 * sent first (its reply is bulwark's). db < 0: wherever u is (bulwark's own
 * keyless requests). Same returns as upstream_send().
 */
int upstream_send_db(struct upstream_conn *u, int db, const char *cmd, size_t len,
                     upstream_reply_fn *fn, void *privdata, const char **err);

/*
 * upstream_send_db() of the len bytes at the head of src (a client's input),
 * moved into u's output (whole chains change hands, no copy) and drained
 * from src; on BW_ERR src is untouched. The bytes of a moved chain stay
 * valid until u writes them, which is never before the current loop turn ends.
 */
int upstream_send_db_move(struct upstream_conn *u, int db, struct evbuffer *src, size_t len,
                          upstream_reply_fn *fn, void *privdata, const char **err);

/* Pinned u moves to database db before the owner's next request (its reply is bulwark's). */
void upstream_pinned_select(struct upstream_conn *u, int db);

/* The database pinned connection u is in (its session may SELECT). */
int upstream_conn_db(const struct upstream_conn *u);

/* Redis's CLIENT ID of pinned u, 0 until known (upstream_pinned_learn_id). */
uint64_t upstream_conn_redis_id(const struct upstream_conn *u);

/*
 * Ask Redis for pinned u's CLIENT ID (once per connection), before a
 * blocking command: CLIENT UNBLOCK of its owner names it. Not at connect: a
 * reply still pending makes Redis refuse SCRIPT DEBUG ("outside a pipeline").
 */
void upstream_pinned_learn_id(struct upstream_conn *u);

/*
 * Pinned u's session sent its last request (its client closed its side):
 * the write side is shut once the output is written, so Redis reads EOF
 * after it, answers what it would and closes (the owner's down_fn). Never
 * pooled again.
 */
void upstream_pinned_shutdown(struct upstream_conn *u);

/*
 * Queue CLIENT REPLY ON on pinned u, its +OK taken here: bulwark's own
 * requests queued next (SELECT, HELLO) are answered under a session's
 * CLIENT REPLY OFF; the session sends OFF again after them.
 */
void upstream_pinned_reply_on(struct upstream_conn *u);

/* A session's RESET was answered on pinned u: database 0, RESP2. */
void upstream_conn_was_reset(struct upstream_conn *u);

/* A session's SELECT was answered +OK on pinned connection u. */
void upstream_conn_set_db(struct upstream_conn *u, int db);

/* Requests sent on all connections and not yet answered. */
uint64_t upstream_pool_inflight(const struct upstream_pool *pool);

/* True when at least one connection is UP. */
bool upstream_pool_is_up(const struct upstream_pool *pool);

/*
 * Append the "# Upstream" INFO section ("name:value\r\n" lines, Redis INFO
 * format) to out.
 */
void upstream_pool_info(const struct upstream_pool *pool, struct evbuffer *out);

/* CONFIG RESETSTAT: zero the upstream counters. */
void upstream_pool_reset_stats(struct upstream_pool *pool);

/* ---- pinned connections (MULTI, blocking commands, pub/sub …) ---------- */

/*
 * A pinned connection relays raw replies to its owner (upstream_raw_fn,
 * declared above): every complete reply not owed to one of bulwark's own
 * requests (AUTH, SELECT, RESET) is handed over as for upstream_reply_fn
 * (reply: the input buffer, len bytes). upstream_down_fn tells the owner the
 * connection failed or closed; the owner must forget it.
 */

/*
 * A dedicated connection for owner, speaking RESP proto: an idle one
 * (cleaned by RESET) or a new one (AUTH and SELECT queued first; HELLO 3
 * for a RESP3 owner). NULL with the client's error in err
 * (errlen bytes, "ERR …" without '-' and CRLF) when upstream-pinned-max are
 * in use ("ERR max number of clients reached": callers check
 * upstream_pinned_room() first and wait) or a socket cannot even be made
 * ("ERR upstream host:port: cannot open a dedicated connection: Too many
 * open files", logged at most once a second); both counted in
 * pinned_refused. No upstream-timeout applies to it (blocking commands wait
 * as they say).
 */
struct upstream_conn *upstream_pinned_acquire(struct upstream_pool *pool, int proto, void *owner,
                                              upstream_raw_fn *raw_fn, upstream_down_fn *down_fn,
                                              char *err, size_t errlen);

/*
 * True when upstream_pinned_acquire() would get a connection now without
 * overtaking a waiter: one is idle or fewer than upstream-pinned-max exist,
 * and nobody waits (woken: the caller was just woken by
 * upstream_pinned_wait(), so the queue does not count).
 */
bool upstream_pinned_room(const struct upstream_pool *pool, bool woken);

struct upstream_waiter;

/*
 * Told once that a waiter's turn came (timed_out false: room is there now,
 * take it with upstream_pinned_acquire() before returning, or queue again)
 * or that upstream-pinned-wait passed (timed_out true). The waiter is freed
 * before the call: forget the handle.
 */
typedef void upstream_wake_fn(void *arg, bool timed_out);

/*
 * Queue for a dedicated connection, FIFO. When one is released or closed
 * (a slot frees), fn is called from the pool's own zero-timeout event on a
 * later loop turn, never from inside another module's callback; after
 * upstream-pinned-wait (read now; 0: on the next turn) it is called with
 * timed_out. Returns the waiter, owned by the pool until fn is called or
 * upstream_pinned_wait_cancel(); arg is borrowed.
 */
struct upstream_waiter *upstream_pinned_wait(struct upstream_pool *pool, upstream_wake_fn *fn,
                                             void *arg);

/* Leave the queue (the client is closing): fn is never called. NULL ok. */
void upstream_pinned_wait_cancel(struct upstream_waiter *w);

/* Requests waiting for a dedicated connection now (INFO pinned_waiting). */
uint64_t upstream_pool_pinned_waiting(const struct upstream_pool *pool);

/* Write len bytes of the owner's requests as they are. BW_ERR if it is dead. */
int upstream_pinned_send(struct upstream_conn *u, const char *cmd, size_t len);

/*
 * The owner is done with u. reusable: every reply was delivered and no state
 * is left that RESET cannot clear: u waits in the idle pool (those above
 * upstream-pinned-idle are closed by the cron after a second unused; the
 * most recently used is taken first), after RESET, AUTH, SELECT when reset (the session
 * may have changed connection state: pub/sub, AUTH, HELLO, SELECT, CLIENT,
 * RESET …) or as it is when not (a transaction or a blocking command that
 * ended clean leaves nothing: one fewer round of three commands for Redis).
 * Otherwise u is closed, which makes Redis drop a blocked command instead of
 * handing it an element.
 */
void upstream_pinned_release(struct upstream_conn *u, bool reusable, bool reset);

/*
 * Scripts (EVAL, EVALSHA, FCALL … and their _RO forms) run on pinned
 * connections; their owner says when one is in flight on u: inflight true
 * after writing one (and again after each reply while another is still due:
 * the next one starts running then), false once the last is answered (and
 * implied when u is released or dropped). While a script runs, Redis serves
 * nobody else until its busy-reply-threshold passes, then answers -BUSY; so
 * the upstream-timeout of shared requests counts from the later of their own
 * start (or last bytes) and the last script event plus that threshold (a
 * script whose client left still runs: its connection's release is an event) (learned with CONFIG GET lua-time-limit on connection
 * 0; 5000 ms, Redis's default, when CONFIG is not allowed). A hung upstream
 * is still reported, at most busy-reply-threshold later. No deadline
 * applies to the script itself: Redis lets its caller wait until it ends.
 */
void upstream_pinned_script(struct upstream_conn *u, bool inflight);

/* True while a script written by bulwark is in flight (see above). */
bool upstream_pool_script_inflight(const struct upstream_pool *pool);

/* Read Redis's busy-reply-threshold again (a CONFIG SET went through). */
void upstream_pool_refresh_busy_threshold(struct upstream_pool *pool);

/* pinned_connections (now), pinned_peak, pinned_refused for INFO proxy. */
void upstream_pool_pinned_stats(const struct upstream_pool *pool, uint64_t *now, uint64_t *peak,
                                uint64_t *refused);

/* Periodic deadline check (called by the proxy's 100 ms cron). */
void upstream_pool_cron(struct upstream_pool *pool, uint64_t now_ms);

#endif
