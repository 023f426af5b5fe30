/*
 * netio: socket reads that libevent's bufferevents do not do well — a big
 * bulk string read straight into an evbuffer in large pieces.
 */
#ifndef BW_NETIO_H
#define BW_NETIO_H

#include <stddef.h>

#include <event2/util.h>

struct evbuffer;

/*
 * Read up to want bytes from fd straight into buf (a bufferevent's input),
 * at most max_read bytes per read(), past libevent 2.1's cap of 4096 bytes
 * per read (EVBUFFER_MAX_READ), which made a 64 MB value 16,384 loop turns.
 * Stops at EAGAIN, EOF or an error (the bufferevent's next read reports
 * those). Returns the bytes read.
 */
size_t netio_read_big(struct evbuffer *buf, evutil_socket_t fd, size_t want, size_t max_read);

#endif
