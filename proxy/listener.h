/*
 * listener: the listening sockets (TCP on every `bind` address at `port`,
 * and `unixsocket`), accept, and the maxclients limit.
 */
#ifndef BW_LISTENER_H
#define BW_LISTENER_H

#include <stddef.h>

struct proxy;
struct listener;

/*
 * Open every listening socket from px->cfg and start accepting.
 * Returns the listener (free with listener_free()) or NULL with the reason
 * in err ("bind 127.0.0.1:6380: Address already in use").
 */
struct listener *listener_new(struct proxy *px, char *err, size_t errlen);

/* Stop accepting and close the sockets (removing the unix socket file). NULL ok. */
void listener_free(struct listener *l);

#endif
