/*
 * client: one client connection — its buffers, the FIFO of reply slots that
 * keeps replies in request order, back-pressure and close-after-flush.
 *
 * Request flow:
 *
 *   socket --read (netio.h: 16 KB a read; a big bulk into one chain)-->
 *     input evbuffer --resp_parse--> request (views)
 *     --> command lookup, arity, AUTH, deny-commands   (errors: local reply)
 *     --> policy: local handler (local.c)               -> reply now
 *                 forward (raw multibulk bytes)         -> upstream_send()
 *                 (a big request's chain is moved, not copied)
 *   reply slot FIFO: one slot per request still waiting; local replies made
 *   while earlier slots wait are parked in a ready slot; an upstream reply is
 *   moved into the client's output when its slot is at the head.
 *   output evbuffer --write at the end of the loop turn (netio.h)--> socket
 *
 * Back-pressure: a client with client-max-pending requests in flight, or
 * with more than CLIENT_OUTPUT_PAUSE_BYTES of unsent output, is not read
 * until it drains (libevent's le-proxy watermark pattern). A closing client
 * orphans its in-flight slots: the upstream callback frees them.
 */
#ifndef BW_CLIENT_H
#define BW_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

struct evbuffer;
struct sockaddr;
struct proxy;
struct client;
struct cmd_table;
struct resp_request;
struct keyspace;

/* Unsent output above which a client is not read any more, bytes. */
#define CLIENT_OUTPUT_PAUSE_BYTES (64u * 1024 * 1024)

/*
 * Filter for a forwarded request whose upstream reply bulwark rewrites
 * (INFO, CONFIG GET …). Called once: with c and out set, it writes the
 * client's reply into out (reply/len/err as for upstream_reply_fn); with c
 * NULL (client gone) it only releases data. Takes ownership of data.
 */
typedef void client_filter_fn(struct client *c, struct evbuffer *reply, size_t len,
                              const char *err, struct evbuffer *out, void *data);

/*
 * Take a newly accepted socket (ownership of fd passes). Sets it
 * non-blocking, TCP_NODELAY and keepalive per cfg, starts reading.
 * addr is the peer, already formatted as Redis's "ip:port" (copied).
 */
void client_accept(struct proxy *px, evutil_socket_t fd, const char *addr,
                   const char *laddr, bool is_unix);

/* Close a client now (unsent output dropped); freed from the reap event. */
void client_close(struct client *c);

/* Free clients queued by client_close() (the proxy's reap event). */
void client_reap(struct proxy *px);

/* Idle timeouts; called once a second. */
void client_cron(struct proxy *px, uint64_t now_ms);

/* Shutdown: stop reading every client; each closes once its replies are out. */
void client_shutdown_all(struct proxy *px);

/*
 * The most reply bytes bulwark holds for one client now (output and parked
 * replies): Redis's INFO client_recent_max_output_buffer.
 */
size_t client_max_output(struct proxy *px);

/* Close and free every client (end of shutdown). */
void client_free_all(struct proxy *px);

/*
 * The evbuffer to write the current request's reply into: the client's
 * output when no earlier reply is pending, else a new ready slot. Call once
 * per reply.
 */
struct evbuffer *client_reply_target(struct client *c);

/* Whole replies, written to client_reply_target(). */
void client_reply_raw(struct client *c, const char *data, size_t len);
void client_reply_error(struct client *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3))); /* fmt without '-' and CRLF */
void client_reply_status(struct client *c, const char *status);
void client_reply_bulk(struct client *c, const char *data, size_t len);
void client_reply_int(struct client *c, long long v);
void client_reply_nil(struct client *c); /* $-1, or RESP3's _ */

/* The RESP version c speaks (2, or 3 after HELLO 3). */
int client_proto(const struct client *c);

/*
 * HELLO switched c to proto: its later requests use the shared connection
 * and batcher of that protocol (and its session's connection follows).
 * Called with nothing of c due on the old ones.
 */
void client_set_proto(struct client *c, int proto);

/* Encoders for c's protocol, appending to out: a null; a map header of
 * pairs entries (RESP2: a flat array); a verbatim "txt" string (RESP2: a
 * bulk) made of text, which is drained. */
void client_encode_nil(const struct client *c, struct evbuffer *out);
void client_encode_map_len(const struct client *c, struct evbuffer *out, size_t pairs);
void client_encode_verbatim(const struct client *c, struct evbuffer *out, struct evbuffer *text);

/* Close the connection after the current reply (QUIT). */
void client_close_after_reply(struct client *c);

/*
 * Forward cmd (len bytes of RESP multibulk, copied) upstream on the
 * client's connection; the reply goes through filter (NULL: relayed as is).
 * Takes ownership of data. When the upstream is down the client gets the
 * filter's rendering of the error at once.
 */
void client_forward(struct client *c, const char *cmd, size_t len,
                    client_filter_fn *filter, void *data);

/*
 * Forward the current request as it came (inline ones re-encoded to
 * multibulk), through filter when not NULL (takes ownership of data).
 */
void client_forward_request(struct client *c, const struct resp_request *req,
                            client_filter_fn *filter, void *data);

/*
 * SELECT db (0 <= db < px->databases, checked by the caller): later requests
 * go to db on the client's upstream connection and use db's keyspace (its
 * batcher and hot cache). A GET of the old database still batched is sent
 * first.
 */
void client_select(struct client *c, int db);
int client_db(const struct client *c);
struct keyspace *client_keyspace(const struct client *c); /* borrowed */

/* Accessors for local.c. */
struct proxy *client_proxy(const struct client *c);
uint64_t client_id(const struct client *c);
bool client_authenticated(const struct client *c);
void client_set_authenticated(struct client *c, bool yes);
const char *client_name(const struct client *c);           /* NULL when unset */
void client_set_name(struct client *c, const char *name, size_t len); /* len 0 clears */
/* One line of CLIENT LIST / CLIENT INFO for c, with '\n', appended to out. */
void client_format_info(const struct client *c, struct evbuffer *out);
/* CLIENT LIST: client_format_info() of every live client, appended to out. */
void client_format_all(struct proxy *px, struct evbuffer *out);
/*
 * CLIENT UNBLOCK: Redis's id of the dedicated connection of the client with
 * this id when that client is blocked there (BLPOP …), else 0.
 */
uint64_t client_blocked_redis_id(struct proxy *px, uint64_t id);

/* ---- CLIENT TRACKING (tracking.h) ------------------------------------------ */

struct tracking_peer;

/* tracking_lookup_fn (arg: the proxy): a live client's protocol and pub/sub state. */
bool client_tracking_lookup(void *arg, uint64_t id, struct tracking_peer *out);

/*
 * tracking_send_fn (arg: the proxy): an invalidation for client `to`, queued
 * after every reply already due to it (the FIFO tail; in a session, between
 * two of its dedicated connection's replies).
 */
void client_tracking_send(void *arg, uint64_t to, const char *bytes, size_t len);

/*
 * Key (len bytes) changed, by bulwark client writer or TRACKING_WRITER_NONE
 * (the keyspace watch): tracking clients are told (BCAST ones at the end of
 * the loop turn). No-op while nobody tracks.
 */
void client_tracking_key_changed(struct proxy *px, const char *key, size_t len, uint64_t writer);

/*
 * A write of client writer to key (len bytes) is being forwarded: while
 * anyone tracks, the change is told when Redis has made it (the watch's
 * echo, or the write's reply), attributed to writer.
 */
void client_tracking_write(struct proxy *px, const char *key, size_t len, uint64_t writer);

/* The watch named key: the bulwark client whose write to it is in flight, or 0. */
uint64_t client_tracking_echo_writer(struct proxy *px, const char *key, size_t len);

/* The live client with this id, or NULL (closed ones are gone at once). */
struct client *client_by_id(struct proxy *px, uint64_t id);

/* CLIENT LIST ID: the line of the client with this id, if it is live. */
void client_format_id(struct proxy *px, uint64_t id, struct evbuffer *out);

/* Which clients CLIENT KILL closes (Redis 7.0 networking.c); NULL / 0 / -1
 * members match every client. Strings are not NUL-terminated. */
struct client_kill_filter {
    const char *addr;  /* peer "ip:port", as CLIENT LIST addr= */
    size_t addr_len;
    const char *laddr; /* local "ip:port", as CLIENT LIST laddr= */
    size_t laddr_len;
    uint64_t id;       /* CLIENT ID, 0 = any */
    int type;          /* CLIENT_KILL_TYPE_*, or -1 = any */
    bool no_user;      /* USER names a user none of bulwark's clients has */
    bool skipme;       /* never self */
};

#define CLIENT_KILL_TYPE_NORMAL 0 /* not subscribed (MONITOR included, as Redis) */
#define CLIENT_KILL_TYPE_PUBSUB 1 /* subscribed to a channel, pattern or shard channel */
#define CLIENT_KILL_TYPE_OTHER 2  /* master / replica: bulwark has none */

/*
 * Close every client of self's proxy that matches f, except self, which is
 * only counted, *kill_self set: the caller replies, then closes it with
 * client_close_after_reply(). Returns the number of clients matched.
 */
size_t client_kill(struct client *self, const struct client_kill_filter *f, bool *kill_self);

/* ---- for batch.c ---------------------------------------------------------- */

struct client_slot;

/*
 * A reply slot for a batched GET: pending, in request order. Records epoch
 * (the batcher's flush count) and counts the GET as in flight for c.
 */
struct client_slot *client_slot_new_batched(struct client *c, uint64_t epoch);

/*
 * Slot s (of client_slot_new_batched) is now a waiter of the batch in epoch:
 * its client's next forward flushes that batch first, so nothing the client
 * sends later overtakes the GET. No-op for a detached slot. Needed where the
 * slot joins a batch after it was made (a hot key's miss while its fill is
 * out, or a GET held by a lease and woken).
 */
void client_slot_joined_batch(struct client_slot *s, uint64_t epoch);

/* Receives a detached slot's reply (len bytes at data, valid for the call). */
typedef void client_slot_fn(void *data, const char *reply, size_t len);

/*
 * A slot that belongs to no client: client_slot_finish() hands its reply
 * to fn(data, …) and frees it (the parts of a coalesced MGET).
 */
struct client_slot *client_slot_new_detached(client_slot_fn *fn, void *data);

/*
 * Complete a slot with a copy of the reply (len bytes at data) and flush
 * what is ready; frees the slot when its client is gone.
 */
void client_slot_finish(struct client_slot *s, const char *data, size_t len);

/*
 * client_slot_finish() of the len bytes at the head of src (an upstream
 * reply), moved instead of copied (whole chains change hands); they are
 * drained from src unless the slot's client is gone.
 */
void client_slot_finish_move(struct client_slot *s, struct evbuffer *src, size_t len);

/*
 * The slot's GET is held by a hot-key lease: until it is answered, the
 * client's later requests other than GETs wait (they must not overtake it).
 */
void client_slot_mark_held(struct client_slot *s);

/* c's upstream connection and GET batcher (borrowed). */
struct upstream_conn *client_upstream(const struct client *c);
struct batch *client_batch(const struct client *c);

/* The batcher epoch of c's last batched GET; c's batched GETs in flight. */
uint64_t client_batch_epoch(const struct client *c);
uint64_t client_batch_inflight(const struct client *c);

/* ---- for pinned.c --------------------------------------------------------- */

/*
 * A reply (len bytes at the head of reply) from c's dedicated connection:
 * moved into c's pinned slot (dropped when c is over its
 * client-output-buffer-limit and about to close). Returns true (c is never
 * closed inside this call: the limit closes it on the next loop turn).
 */
bool client_pinned_deliver(struct client *c, struct evbuffer *reply, size_t len);

/* Every pinned reply is delivered and the state is clean: back to shared. */
void client_unpin(struct client *c);

/* The dedicated connection is gone: flush what c has, then close it. */
void client_pinned_lost(struct client *c, const char *reason);

/* Install a command table (ownership passes); policies are applied to it. */
void client_set_command_table(struct proxy *px, struct cmd_table *t, bool learned);

#endif
