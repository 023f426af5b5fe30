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

/* Close every connection (pending requests get an error) and free. NULL ok. */
void upstream_pool_free(struct upstream_pool *pool);

/* The connection a client with this id uses (id % connections). */
struct upstream_conn *upstream_pick(struct upstream_pool *pool, uint64_t client_id);

/*
 * Queue one request (cmd: len bytes of RESP multibulk, copied) on u.
 * Returns BW_OK, or BW_ERR without calling fn when u is DOWN; then *err
 * points to the error reply to send (static until the next state change).
 */
int upstream_send(struct upstream_conn *u, const char *cmd, size_t len,
                  upstream_reply_fn *fn, void *privdata, const char **err);

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

/* Periodic deadline check (called by the proxy's 100 ms cron). */
void upstream_pool_cron(struct upstream_pool *pool, uint64_t now_ms);

#endif
