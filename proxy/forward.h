/*
 * forward: the last stage — a request goes to the session's shared upstream
 * connection, in its database, into a new reply slot; the upstream's reply
 * (or its prompt error when the upstream is down) completes the slot,
 * through a filter when one is given (INFO, CONFIG GET … rewrite Redis's
 * reply). A GET of the session still waiting in its batcher is sent first,
 * so nothing the client sends later overtakes it.
 */
#ifndef BW_FORWARD_H
#define BW_FORWARD_H

#include <stddef.h>

#include "proxy/slots.h"

struct resp_request;
struct session;

/*
 * Forward cmd (len bytes of RESP multibulk, copied; or moved when it is the
 * session's big request at the head of its input, s->move_raw) through
 * filter (NULL: relayed as is; takes ownership of data).
 */
void fwd_send(struct session *s, const char *cmd, size_t len, slot_filter_fn *filter, void *data);

/* Forward req as it came (inline requests re-encoded to multibulk). */
void fwd_request(struct session *s, const struct resp_request *req, slot_filter_fn *filter,
                 void *data);

/*
 * Complete s (a slot of fwd_send's making: its filter, if any, set) with an
 * upstream reply (len bytes at the head of reply; what it leaves there is the
 * caller's to drain) or a failure
 * (reply NULL, err): through its filter, or as is; an orphaned s is freed.
 */
void fwd_slot_reply(struct slot *s, struct evbuffer *reply, size_t len, const char *err);

/* req as RESP multibulk, appended to out. */
void fwd_encode(const struct resp_request *req, struct evbuffer *out);

#endif
