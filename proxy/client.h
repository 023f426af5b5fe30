/*
 * client: one client connection — socket, buffers, request parser,
 * back-pressure, output limits and life cycle. The request path behind it
 * sees only the connection's session (session.h).
 *
 * Request flow:
 *
 *   socket --read (netio.h: 16 KB a read; a big bulk into one chain)-->
 *     input evbuffer --resp_parse--> request (views into the input)
 *     --> stages_hold(): must it wait? (it then stays unparsed)
 *     --> stages_run(): the stage table (stages.h) answers into the
 *         session's reply slots, forwards, batches or pins it
 *   reply slots (slots.h): one per request, in request order; ready ones at
 *   the head move to the output, the others park their bytes
 *   output evbuffer --write at the end of the loop turn (netio.h)--> socket
 *
 * Back-pressure: a client with client-max-pending requests in flight, or
 * with more than CLIENT_OUTPUT_PAUSE_BYTES of unsent output, is not read
 * until it drains (libevent's le-proxy watermark pattern). Replies held for
 * it beyond client-output-buffer-limit close it. A closing client orphans
 * its pending slots: whoever completes them frees them.
 */
#ifndef BW_CLIENT_H
#define BW_CLIENT_H

#include <stdbool.h>
#include <stdint.h>

#include <event2/util.h>

struct proxy;
struct client;

/* Unsent output above which a client is not read any more, bytes. */
#define CLIENT_OUTPUT_PAUSE_BYTES (64u * 1024 * 1024)

/*
 * Take a newly accepted socket (ownership of fd passes). Sets it
 * non-blocking, TCP_NODELAY and keepalive per cfg, starts reading.
 * addr is the peer, already formatted as Redis's "ip:port" (copied).
 */
void client_accept(struct proxy *px, evutil_socket_t fd, const char *addr, const char *laddr,
                   bool is_unix);

/* Close a client now (unsent output dropped); freed from the reap event. */
void client_close(struct client *c);

/* Close the connection after the replies due (QUIT, protocol error). */
void client_close_after_reply(struct client *c);

/* Free clients queued by client_close() (the proxy's reap event). */
void client_reap(struct proxy *px);

/* Idle timeouts; called once a second. */
void client_cron(struct proxy *px, uint64_t now_ms);

/* Shutdown: stop reading every client; each closes once its replies are out. */
void client_shutdown_all(struct proxy *px);

/* Close and free every client (end of shutdown). */
void client_free_all(struct proxy *px);

#endif
