/*
 * netio: one non-blocking socket with an input and an output evbuffer, at
 * Redis's syscall cost (networking.c): one bounded read per readable event
 * (no FIONREAD ioctl), output written once at the end of the loop turn it
 * was queued in (no write event armed unless a write was partial), the
 * read event armed once for the connection's life (no epoll_ctl per
 * request), big bulk strings read straight into place in large pieces.
 * Replaces libevent's bufferevent_socket for clients and upstreams.
 */
#ifndef BW_NETIO_H
#define BW_NETIO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/util.h>

struct evbuffer;
struct event_base;
struct sockaddr;
struct netio;

/* What netio_event_fn reports. */
#define NETIO_EOF 0x01       /* read returned 0: the peer closed its side; reading stopped */
#define NETIO_ERROR 0x02     /* a read, write or connect failed; errno tells why */
#define NETIO_CONNECTED 0x04 /* netio_connect() completed */

/* Bytes one read asks for when no big bulk is pending (Redis PROTO_IOBUF_LEN). */
#define NETIO_READ_BYTES (16 * 1024)

/* A pending bulk above this is read in large pieces (see netio_set_want). */
#define NETIO_BIG_BYTES (64 * 1024)

/* Most bytes one read() of a big bulk asks for; a 4 MB libevent chain minus
 * its header, so a chain is one 4 MB allocation, not 8. */
#define NETIO_BIG_READ_BYTES (4 * 1024 * 1024 - 512)

/* Called after a read added bytes to the input. */
typedef void netio_read_fn(struct netio *n, void *arg);
/* Called after a write emptied the output. */
typedef void netio_write_fn(struct netio *n, void *arg);
/* Called with NETIO_EOF, NETIO_ERROR or NETIO_CONNECTED (errno set for errors). */
typedef void netio_event_fn(struct netio *n, short what, void *arg);

/*
 * Wrap connected socket fd (ownership passes: netio_free() closes it),
 * made non-blocking here. Reading starts at once; callbacks may be NULL.
 * Never NULL (aborts on OOM).
 */
struct netio *netio_new(struct event_base *base, evutil_socket_t fd, netio_read_fn *read_fn,
                        netio_write_fn *write_fn, netio_event_fn *event_fn, void *arg);

/*
 * A new non-blocking socket connecting to sa (salen bytes). Output queued
 * before the connection completes is written then; event_fn gets
 * NETIO_CONNECTED, or NETIO_ERROR (errno set) on a later loop turn, never
 * inside this call. NULL with errno set when no socket can be made (EMFILE …).
 */
struct netio *netio_connect(struct event_base *base, const struct sockaddr *sa, int salen,
                            netio_read_fn *read_fn, netio_write_fn *write_fn,
                            netio_event_fn *event_fn, void *arg);

/*
 * Close the socket, free the buffers and events; NULL is a no-op. Not
 * from inside one of n's own callbacks (defer it to a zero-timeout event).
 */
void netio_free(struct netio *n);

/*
 * netio_free() will reset the connection (SO_LINGER 0: RST) instead of
 * closing it, so the kernel drops what is still queued for the peer
 * instead of holding it until a peer that does not read takes it.
 */
void netio_set_abortive(struct netio *n);

/*
 * Close the write side (shutdown SHUT_WR) once the output is written: the
 * peer reads EOF after our last byte; reading goes on. Nothing may be
 * added to the output afterwards (it would never be written).
 */
void netio_shutdown_write(struct netio *n);

/* Replace the callbacks (all NULL: n reports nothing more). */
void netio_setcb(struct netio *n, netio_read_fn *read_fn, netio_write_fn *write_fn,
                 netio_event_fn *event_fn, void *arg);

/* The input (bytes read, not consumed) and output (bytes queued) buffers. */
struct evbuffer *netio_input(const struct netio *n);
struct evbuffer *netio_output(const struct netio *n);

evutil_socket_t netio_fd(const struct netio *n);

/* Bytes the last read event added to the input (for the owner's counters). */
size_t netio_last_read(const struct netio *n);

/*
 * Start or stop reading (back-pressure, draining). Arms or disarms the read
 * event: an epoll_ctl, so only on a change of state, never per request.
 * Reading stays off after NETIO_EOF and errors.
 */
void netio_enable_read(struct netio *n, bool on);

/* Stop writing from the end-of-turn flush (the output is kept); true again resumes. */
void netio_enable_write(struct netio *n, bool on);

/*
 * The owner's item in the input needs want more bytes (0: unknown, read
 * NETIO_READ_BYTES). Above NETIO_BIG_BYTES the next readable events read
 * up to want bytes, in a loop until EAGAIN. With contiguous, the bytes
 * already in the input and the want bytes to come end up in one chain, so
 * evbuffer_pullup() of the whole item costs nothing (a request the parser
 * needs in one piece); the item's bytes are then read exactly, none past
 * it, so moving them out with evbuffer_remove_buffer() moves the chain.
 */
void netio_set_want(struct netio *n, size_t want, bool contiguous);

/*
 * Write the output now, until it is empty or the socket is full (EAGAIN).
 * Returns the bytes left in the output, or -1 after a write error (errno
 * set; the event callback is not called).
 */
ssize_t netio_write_now(struct netio *n);

/*
 * Write now every output that was to be written at the end of this loop
 * turn (the replies a read of the upstream completed go out before the
 * turn's other events run: the client works on them meanwhile).
 */
void netio_flush_pending(void);

/* After each read of n, netio_flush_pending(). */
void netio_set_flush_after_read(struct netio *n);

/*
 * libevent's allocations go through netio (event_set_mem_functions): a
 * freed block of 1 MB or more (a big bulk's chain) is kept up to 2 s for the
 * next big bulk, as Redis's jemalloc keeps freed pages for a while, so a
 * stream of big values is not read into freshly faulted memory each time
 * (at most 8 blocks, 2 GB of capacity). Call netio_mem_init() before any
 * other libevent call; netio_mem_cron() releases blocks kept too long (all
 * of them with all, at exit).
 */
void netio_mem_init(void);
void netio_mem_cron(uint64_t now_ms, bool all);

#endif
