/*
 * local_client: CLIENT SETNAME/GETNAME/ID/INFO/LIST/KILL answered by bulwark
 * for its own clients (Redis 7.0.15's replies and errors), as local handlers.
 */
#ifndef BW_LOCAL_CLIENT_H
#define BW_LOCAL_CLIENT_H

#include <stdbool.h>

struct session;
struct resp_arg;
struct resp_request;

/*
 * Set c's name (CLIENT SETNAME, HELLO … SETNAME): printable ASCII without
 * spaces, as Redis's clientSetName; an empty name clears it. On a bad name
 * replies Redis's error and returns false (c unchanged).
 */
bool local_client_set_name(struct session *s, const struct resp_arg *name);

/*
 * The handlers (struct local_handler's fn): each replies to c for req (arity
 * checked by the caller) and returns true. LIST takes TYPE and ID filters;
 * KILL takes the old form (an address: +OK or "No such client", may close
 * the caller) or ID/ADDR/LADDR/TYPE/USER/SKIPME (the count), and closes the
 * caller after its reply when it matched itself.
 */
bool local_client_setname(struct session *s, const struct resp_request *req);
bool local_client_getname(struct session *s, const struct resp_request *req);
bool local_client_id(struct session *s, const struct resp_request *req);
bool local_client_info(struct session *s, const struct resp_request *req);
bool local_client_list(struct session *s, const struct resp_request *req);
bool local_client_kill(struct session *s, const struct resp_request *req);
bool local_client_unblock(struct session *s, const struct resp_request *req);
/* CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO: bulwark's own (tracking.h). */
bool local_client_tracking(struct session *s, const struct resp_request *req);

#endif
