/*
 * pinstage: the pinned-session stage of the request path. A client in MULTI,
 * blocked, subscribed, debugging a script or running one has a session on a
 * dedicated upstream connection (pinned.c tracks its protocol state); this
 * stage sends its requests there, starts sessions (queueing for a
 * connection when upstream-pinned-max are in use), answers what bulwark
 * answers itself in between (CLIENT …, HELLO, SELECT refusals) or refuses
 * it inside MULTI, and turns the session's replies, end and loss into the
 * client's replies.
 *
 * A MULTI or WATCH that got no connection starts a failed transaction:
 * nothing the client pipelined after it runs outside one
 * (pinstage_handle_refused).
 */
#ifndef BW_PINSTAGE_H
#define BW_PINSTAGE_H

#include <stdbool.h>

struct cmd_info;
struct pinned;
struct resp_request;
struct session;

/*
 * A request of s, which is in a session. True when handled here; false when
 * bulwark answers it itself with nothing due on the session: the session is
 * set aside in *keep (s->pin is NULL), the caller runs the other stages,
 * then pinstage_resume(s, *keep).
 */
bool pinstage_handle(struct session *s, const struct resp_request *req, struct pinned **keep);

/* The request answered in between: the session goes on (or is freed if s closed). */
void pinstage_resume(struct session *s, struct pinned *keep);

/*
 * A request that starts a session (pinstage_pins and pinstage_may_pin), or
 * of a session: to the dedicated connection as it came, after the write
 * stage (Bloom filter, hot cache, tracking, TTL jitter). ci: its command.
 */
void pinstage_request(struct session *s, const struct cmd_info *ci,
                      const struct resp_request *req);

/*
 * Requests after a MULTI or WATCH that got no dedicated connection, of a
 * client not in a session. True when req was answered here.
 */
bool pinstage_handle_refused(struct session *s, const struct resp_request *req);

/* True when req needs a dedicated connection (pinned_needed, worked out once per request). */
bool pinstage_pins(struct session *s, const struct resp_request *req);

/* AUTH of an ACL user pins only when bulwark has no requirepass. */
bool pinstage_may_pin(const struct session *s, const struct resp_request *req);

/*
 * True for a HELLO naming the protocol s does not speak (or a RESET of a
 * RESP3 client): it waits until every reply due on this connection is in.
 */
bool pinstage_switches_proto(const struct session *s, const struct resp_request *req);

/*
 * True when req, of a client in a session, is one bulwark answers itself and
 * must wait for until nothing is due on the session (SESSION_HOLD_IDLE).
 */
bool pinstage_must_wait(const struct session *s, const struct resp_request *req);

/*
 * True when req (of a client not in a session) would start one but no
 * dedicated connection is free now, or others wait ahead: pinstage_queue().
 */
bool pinstage_must_queue(struct session *s, const struct resp_request *req);

/* Queue s for a dedicated connection (SESSION_HOLD_POOL until the pool wakes it). */
void pinstage_queue(struct session *s);

/*
 * In front of a Redis Cluster, MULTI (of a client not in a session) is sent
 * with the transaction's first command, whose keys name the node: true when
 * req was that MULTI, answered +OK at once (s->cl_multi) as Redis always
 * does outside a session — a client may wait for it before sending more.
 */
bool pinstage_defer_multi(struct session *s, const struct resp_request *req);

/*
 * The request after a deferred MULTI: EXEC or DISCARD of the empty
 * transaction are answered as Redis would; anything else starts the session
 * on the node of its keys (MULTI first, its reply dropped) and is handled as
 * pinstage_handle().
 */
bool pinstage_deferred_multi(struct session *s, const struct resp_request *req,
                             struct pinned **keep);

#endif
