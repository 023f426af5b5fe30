/*
 * ctrack: CLIENT TRACKING on the request path (tracking.h is the table and
 * the messages; this is where a session's reads, writes and replies meet it).
 *
 * A change is told when Redis has made it, never when the write is sent: the
 * keyspace watch's message names the key and is attributed to the bulwark
 * client whose write to it is in flight (px->trk_writes), or, with the watch
 * down, the write's reply tells it. A client's own invalidations follow its
 * write's reply (EXEC's for a transaction); reads inside MULTI are
 * remembered once EXEC ran.
 *
 * In front of a Redis Cluster every master's watch names its keys (main.c
 * wires them all); a write's reply drains the watch of its keys' masters
 * (every master's for a flush), and a master whose watch is down has its
 * keys told by the write's reply, as px->watch down does for one Redis.
 *
 * Per request (stages.c): ctrack_begin, then ctrack_read / ctrack_script /
 * ctrack_flush / ctrack_write as the request is judged, ctrack_attach when
 * it is forwarded on a shared connection, ctrack_end after it.
 */
#ifndef BW_CTRACK_H
#define BW_CTRACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cmd_info;
struct proxy;
struct resp_request;
struct session;
struct slot;
struct tracking_peer;

/* tracking_lookup_fn (arg: the proxy): a live client's protocol and pub/sub state. */
bool ctrack_lookup(void *arg, uint64_t id, struct tracking_peer *out);

/*
 * tracking_send_fn (arg: the proxy): an invalidation for client `to`, queued
 * after every reply already due to it (the FIFO tail; in a session, between
 * two of its dedicated connection's replies).
 */
void ctrack_send(void *arg, uint64_t to, const char *bytes, size_t len);

/*
 * Key (len bytes) changed, by bulwark client writer or TRACKING_WRITER_NONE
 * (the keyspace watch): tracking clients are told (BCAST ones at the end of
 * the loop turn). No-op while nobody tracks.
 */
void ctrack_key_changed(struct proxy *px, const char *key, size_t len, uint64_t writer);

/* A write of client writer to key is being forwarded (no-op while nobody tracks). */
void ctrack_write(struct proxy *px, const char *key, size_t len, uint64_t writer);

/* The watch named key: the bulwark client whose write to it is in flight, or 0. */
uint64_t ctrack_echo_writer(struct proxy *px, const char *key, size_t len);

/* Before a request of s is handled: the table's limit (Redis's order). */
void ctrack_begin(struct session *s);

/* A read command of s: its keys are remembered (default mode; in MULTI after EXEC). */
void ctrack_read(struct session *s, const struct cmd_info *ci, const struct resp_request *req);

/* A script of s: the keys it declares are taken as written by s (NOLOOP). */
void ctrack_script(struct session *s, const struct cmd_info *ci, const struct resp_request *req);

/*
 * FLUSHALL / FLUSHDB of s: the watch's null is s's. Also while nobody
 * tracks: a null Redis writes after the flush's reply is known as its echo
 * (watch_expect_flush), so a client that starts tracking after the reply
 * never gets it.
 */
void ctrack_flush(struct session *s, const struct resp_request *req);

/* The current request's writes go with slot (forwarded): told by its reply. */
void ctrack_attach(struct session *s, struct slot *slot);

/* After a request of s was handled (was_client_cmd: it was CLIENT …). */
void ctrack_end(struct session *s, bool was_client_cmd);

/* A reply of s's pinned session was delivered: the command's end if all are in. */
void ctrack_pinned_answered(struct session *s);

/* s's pinned session ended clean: what waited for its replies goes now. */
void ctrack_unpinned(struct session *s);

/* A request of s handled while nobody tracks: a flush's keys not forwarded are forgotten. */
void ctrack_discard(struct session *s);

/* s is closing: its table entries and writes in flight are forgotten. */
void ctrack_session_gone(struct session *s);

#endif
