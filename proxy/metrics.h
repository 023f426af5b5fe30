/*
 * metrics: the Prometheus endpoint. GET /metrics on metrics-port (evhttp on
 * the worker's event loop) answers in the text exposition format 0.0.4:
 * every field of bulwark's INFO sections (through a mapping table: INFO
 * field -> metric name, type, unit scale, labels), requests by command and
 * by who answered, latency histograms per command and of upstream round
 * trips, keys per coalesced batch, and the standard process_* metrics.
 * Each metric's HELP names the INFO fields it carries ("(INFO a, b)").
 */
#ifndef BW_METRICS_H
#define BW_METRICS_H

#include <stddef.h>

struct evbuffer;
struct proxy;
struct metrics;

/*
 * Start the HTTP server on every metrics-bind address at metrics-port
 * (which must be > 0). Borrows px for its lifetime. Returns the server the
 * caller owns (metrics_free()), or NULL with the reason in err when an
 * address cannot be bound.
 */
struct metrics *metrics_new(struct proxy *px, char *err, size_t errlen);

/* Close the listeners and connections. NULL is a no-op. */
void metrics_free(struct metrics *m);

/* Append the whole exposition text of px to out (what GET /metrics sends). */
void metrics_render(struct proxy *px, struct evbuffer *out);

#endif
