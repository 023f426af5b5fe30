/*
 * local: the commands bulwark answers itself (PING, ECHO, QUIT, SELECT,
 * HELLO, AUTH, RESET, CLIENT …, CONFIG, INFO) and the ones it refuses, as
 * policies attached to the command table.
 */
#ifndef BW_LOCAL_H
#define BW_LOCAL_H

#include <stdbool.h>
#include <stddef.h>

struct session;
struct evbuffer;
struct cfg;
struct cmd_info;
struct cmd_table;
struct proxy;
struct resp_request;

/* cmd_info.policy values. */
enum local_policy {
    LOCAL_FORWARD = 0, /* sent upstream as it came */
    LOCAL_HANDLER = 1, /* cmd_info.extra is a struct local_handler */
    LOCAL_REFUSED = 2  /* cmd_info.extra is the reason (const char *) */
};

/* Set policy and extra of every command bulwark handles or refuses in t. */
void local_apply_policies(struct proxy *px, struct cmd_table *t);

/*
 * Run the local policy of ci for req (arity and AUTH already checked).
 * Returns true when the client got its reply (or a forward with a filter
 * was queued), false when the request is to be forwarded as it came.
 */
bool local_dispatch(struct session *s, const struct cmd_info *ci, const struct resp_request *req);

/*
 * The whole error reply ("-ERR <NAME> is not supported by bulwark…\r\n")
 * for ci, whose policy is LOCAL_REFUSED, into out (size bytes, truncated).
 */
void local_refusal_error(const struct cmd_info *ci, char *out, size_t size);

/*
 * bulwark's own INFO sections (# Proxy, # Upstream, # Bloom, # Hotkeys), as
 * INFO without arguments appends them, into out (metrics.c reads them).
 */
void local_info_text(struct proxy *px, struct evbuffer *out);

/* BULWARK HOTKEYS [N] | HELP: bulwark's own command (not Redis's). */
void local_bulwark(struct session *s, const struct resp_request *req);

/*
 * Descriptors bulwark keeps beside its clients' (Redis's reserve of 32 for
 * listeners, log and spares, the shared upstream connections, the two of the
 * keyspace watch, and upstream-pinned-max dedicated connections, each a
 * descriptor of its own beside its client's). RLIMIT_NOFILE must cover
 * maxclients plus this (main at start, CONFIG SET maxclients).
 */
int local_fd_reserve(const struct cfg *cfg);

#endif
