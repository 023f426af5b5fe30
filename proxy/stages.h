/*
 * stages: the request path, as a table of stages run in order for each
 * parsed request of a session (the connection, client.c, parses and calls
 * stages_run). Each stage answers (into the session's reply slots), takes
 * the request (forwards it, batches it, starts a session), transforms and
 * passes on, or passes on untouched:
 *
 *   refused     after a MULTI/WATCH that got no dedicated connection: a
 *               failed transaction up to EXEC/DISCARD      ─► error now
 *   bulwark     BULWARK … (bulwark's own command)          ─► reply now
 *   pinned      the client is in a session                 ─► its dedicated conn
 *                 (what bulwark answers in between passes on, session set aside)
 *   admission   command lookup, arity, AUTH, deny-commands ─► error now
 *   pin start   MULTI, WATCH, BLPOP…, SUBSCRIBE…, scripts   ─► dedicated conn
 *   writes      Bloom add, hot-cache invalidation, lease wake, tracking (transform)
 *   track read  CLIENT TRACKING: the keys a read names are remembered (transform)
 *   gate        every key definitely absent?               ─► absent reply now
 *   hot cache   GET of a hot key: cached, or held by a lease ─► reply now / later
 *   batcher     GET, MGET                                   ─► coalesced read
 *   local       PING, ECHO, HELLO, SELECT, INFO, CONFIG, CLIENT … ─► reply now
 *   forward     everything else (TTL jitter on cache writes) ─► shared upstream conn
 *
 * Before a request is run, stages_hold() says whether it must wait (the
 * input stays unparsed): behind the session's batched GETs in mget mode,
 * until every reply is due before a session starts or the protocol
 * changes, until a session is idle, or in the queue for a connection.
 */
#ifndef BW_STAGES_H
#define BW_STAGES_H

#include <stdbool.h>

#include "proxy/session.h"

struct cmd_table;
struct proxy;
struct resp_request;

/* Run req of s through the stage table (CLIENT TRACKING's steps around it). */
void stages_run(struct session *s, const struct resp_request *req);

/*
 * Whether req of s must wait before it is run: SESSION_RUN, or the hold
 * reason (set in s->hold; SESSION_HOLD_POOL also queued s for a connection).
 */
enum session_hold stages_hold(struct session *s, const struct resp_request *req);

/* Install a command table (ownership passes): each stage marks its commands. */
void stages_set_command_table(struct proxy *px, struct cmd_table *t, bool learned);

#endif
