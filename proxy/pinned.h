/*
 * pinned: a client's session on a dedicated upstream connection, for the
 * commands that cannot share the multiplexed one: MULTI/EXEC, WATCH,
 * blocking commands, WAIT, the SUBSCRIBE family, MONITOR, CLIENT REPLY.
 *
 * While pinned, every request of the client goes to that connection as it
 * came (QUIT too: Redis answers it after every earlier reply and closes, and
 * that close ends the client) and every reply comes back as raw bytes, in order, into
 * the client's pinned reply slot. The state is tracked from the requests
 * (MULTI .. EXEC/DISCARD, WATCH .. UNWATCH, MONITOR, CLIENT REPLY, RESET) and
 * from the replies (subscription counts). When it looks clean, a marker
 * "PING bulwark-unpin-<n>" is sent; its reply ("$…" or ["pong", …] when
 * subscribed) proves every earlier reply was delivered: if nothing else was
 * sent meanwhile and the state is still clean, the client is unpinned and
 * the connection goes back to the pool (RESET first).
 *
 * SCRIPT DEBUG YES|SYNC makes the session last until the client leaves, its
 * replies uncounted (the Lua debugger answers in its own rhythm; Redis
 * closes the connection when the debugged script ends), and the connection
 * is closed, never pooled: a forked debugger child or a SYNC session would
 * otherwise answer, or block Redis for, whoever used it next.
 */
#ifndef BW_PINNED_H
#define BW_PINNED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct pinned;
struct session;
struct tracking_peer;
struct resp_request;

/*
 * True when req starts a state that needs a dedicated connection: MULTI,
 * WATCH, blocking commands, pub/sub, MONITOR, CLIENT REPLY, SCRIPT DEBUG
 * YES|SYNC, a script (pinned_is_script), SCRIPT/FUNCTION KILL.
 */
bool pinned_needed(const struct resp_request *req);

/*
 * True for EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO. A script runs
 * on a dedicated connection so that no other client's request waits behind
 * it on a shared one (Redis serves nobody while it runs, then answers -BUSY
 * until it ends): its session ends when its replies are in (pipelined
 * scripts of one client share it), the connection back to the pool as it is
 * (a script cannot change connection state). Redis lets the caller wait as
 * long as the script runs: no upstream-timeout applies.
 */
bool pinned_is_script(const struct resp_request *req);

/*
 * What the session's owner is told (pinstage.c); each call may free p:
 *   deliver  a reply (len bytes at the head of reply) for the client, to
 *            move into its pinned slot; false when the client was closed
 *   unpin    every reply is delivered and the state is clean: back to the
 *            shared connection (frees p)
 *   lost     the dedicated connection is gone (frees p)
 */
struct pinned_ops {
    bool (*deliver)(struct session *s, struct evbuffer *reply, size_t len);
    void (*unpin)(struct session *s);
    void (*lost)(struct session *s, const char *reason);
};

/*
 * Open a pinned session for s. Returns it (s owns it), or NULL with the
 * client's error in err ("ERR …", see upstream_pinned_acquire()): none
 * free (the caller checks upstream_pinned_room() first and waits), or no
 * socket (EMFILE …). The client then gets that error and stays on the
 * shared connection. The session follows s's SELECTs and RESET
 * (keyspace_select, keyspace_set_proto).
 */
struct pinned *pinned_start(struct session *s, const struct pinned_ops *ops, char *err,
                            size_t errlen);

/*
 * Send one request of the client (cmd: len bytes of RESP, copied) and track
 * the state it starts or ends (req: the parsed request, for its name).
 */
void pinned_forward(struct pinned *p, const struct resp_request *req, const char *cmd,
                    size_t len);

/*
 * The client is going away: release the connection — back to the
 * pool when clean and idle, else closed — and free p.
 */
void pinned_free(struct pinned *p);

/*
 * The client sent its last request (it closed its side): so does the
 * session, shutting the connection's write side. Redis then reads EOF, as
 * it would read the client's: it answers what it would (nothing for a
 * command that blocks), frees its client and closes (ops->lost). Idempotent.
 */
void pinned_shutdown(struct pinned *p);

/*
 * How long a blocking command (BLPOP …) sent is given to answer before it
 * counts as blocked (pinned_answered) when the session cannot be shut yet
 * (a request bulwark answers itself waits behind it): one that finds its
 * data answers within a round trip.
 */
#define PINNED_BLOCK_GRACE_MS 100

/*
 * True when every request sent is answered (replies counted); before
 * pinned_shutdown(), also when the reply due waits for what may never come:
 * messages, or a blocking command sent PINNED_BLOCK_GRACE_MS ago or more.
 * Never with replies not counted: the connection's close or the unpin
 * marker tells.
 */
bool pinned_answered(const struct pinned *p);

/*
 * bulwark answers a request of the session itself (CLIENT …, HELLO): true
 * when CLIENT REPLY OFF, or a SKIP the request takes, means its reply must
 * not be seen (the SKIP is then spent on Redis's side too, with a PING
 * whose reply Redis drops).
 */
bool pinned_local_muted(struct pinned *p);

/*
 * True when `timeout` may close the session's idle client, as Redis 7.0's
 * clientsCronHandleTimeout() closes one in MULTI, WATCHing or on CLIENT
 * REPLY OFF: nothing due (not blocked), not subscribed, not MONITOR.
 */
bool pinned_times_out(const struct pinned *p);

/*
 * True when the dedicated connection holds state of the client's that
 * bulwark cannot carry to another connection: inside MULTI or WATCHing, an
 * EXEC's reply due (the transaction may or may not have run), pub/sub (a
 * (P|S)(UN)SUBSCRIBE was sent), MONITOR, CLIENT REPLY, an ACL user's AUTH
 * (passed or due), the Lua debugger, QUIT. Losing such a connection ends
 * the client's connection too, as with Redis; the database and protocol
 * are bulwark's (followed on the next connection) and do not count.
 */
bool pinned_holds_state(const struct pinned *p);

/*
 * True when every reply of the session is out (outside pub/sub): a reply
 * bulwark makes itself can be put in between without reordering.
 */
bool pinned_idle(const struct pinned *p);

/*
 * A request bulwark refuses inside MULTI or while replies are due: an
 * unknown command holds its place on the connection (inside MULTI Redis
 * flags the transaction: EXECABORT) and the client gets error_reply (a
 * whole RESP error line, copied) in its place, in order; any number may be
 * pending. In pub/sub mode (replies not counted) Redis's own error shows.
 */
void pinned_refuse_in_multi(struct pinned *p, const char *error_reply);

/*
 * True when nothing due on the session is bound to come: the next reply
 * due answers a blocking command (BLPOP …, WAIT, XREAD BLOCK) sent outside
 * MULTI, or the session is subscribed (pub/sub replies are not counted).
 * Shutdown closes such clients at once instead of waiting for them.
 */
bool pinned_blocked(const struct pinned *p);

/*
 * False while replies are not counted (pub/sub, and until an UNSUBSCRIBE's
 * session is confirmed over; the Lua debugger): a SELECT then cannot be
 * matched to its reply, so the client refuses it.
 */
bool pinned_counts_replies(const struct pinned *p);

/* The client SELECTed db between two requests of the session (nothing due):
 * the dedicated connection follows before the next one. */
void pinned_follow_db(struct pinned *p, int db);

/* The client's HELLO (bulwark's, with nothing due) switched it to proto:
 * the dedicated connection follows before the next request. */
void pinned_follow_proto(struct pinned *p, int proto);

/* Redis's CLIENT ID of the session's dedicated connection, 0 when unknown. */
uint64_t pinned_redis_id(const struct pinned *p);

/* True between MULTI and EXEC/DISCARD. */
bool pinned_in_multi(const struct pinned *p);

/* Channels, patterns and shard channels subscribed (from Redis's replies). */
int64_t pinned_subscriptions(const struct pinned *p);

/* The last (P|S)(UN)SUBSCRIBE sent subscribes: Redis runs what follows subscribed. */
bool pinned_surely_subscribed(const struct pinned *p);

/* SCRIPT DEBUG YES|SYNC was sent: replies are never counted again. */
bool pinned_debugging(const struct pinned *p);

/* Subscribed, or the last (P|S)(UN)SUBSCRIBE sent subscribes (not confirmed yet). */
bool pinned_maybe_subscribed(const struct pinned *p);

/* Replies still due (0 in pub/sub mode, where they are not counted). */
uint64_t pinned_outstanding(const struct pinned *p);

/* The unpin marker came back clean: return the connection to the pool, free p. */
void pinned_free_clean(struct pinned *p);

#endif
