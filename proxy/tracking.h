/*
 * tracking: server-assisted client-side caching (CLIENT TRACKING) served by
 * bulwark to its own clients, as Redis 7.0 src/tracking.c and the CLIENT
 * TRACKING / CACHING / GETREDIR / TRACKINGINFO branches of clientCommand()
 * (src/networking.c) do. Pure: libc and proxy/util only, no sockets, no
 * clock. Not thread-safe: one struct tracking per worker.
 *
 * What it holds:
 *   - per client (by bulwark client id) the tracking state: on, REDIRECT id,
 *     BCAST and its prefixes, OPTIN / OPTOUT, NOLOOP, CACHING given for the
 *     next command, broken redirect. The state exists only while tracking
 *     is on (CLIENT TRACKING off forgets everything, as disableTracking());
 *   - the default-mode table: key -> ids of clients that read it, bounded
 *     by tracking_limit() (tracking-table-max-keys). As Redis, an id stays
 *     in the table after its client turned tracking off or closed (lazy:
 *     skipped and dropped when the key changes or is evicted), which is
 *     what INFO's tracking_total_items counts;
 *   - the BCAST prefix table: prefix -> clients, plus the keys changed under
 *     the prefix since the last tracking_bcast_flush().
 *
 * Checked against redis-server 7.0.15: tests/unit/test_tracking.c holds the
 * bytes observed for every reply and message form; tests/tracking-diff/
 * runs random sessions against a real server and through this API and
 * compares what each client receives.
 *
 * It writes nothing itself: every message goes out through the send
 * callback, addressed to a bulwark client id, already encoded for that
 * client (RESP3 push or RESP2 pub/sub message); the lookup callback tells it
 * whether a client exists, its protocol and whether it is subscribed.
 *
 * ---- Integration plan (the hooks the connection / request path calls) ----
 *
 * Wiring (main.c / client.c): one struct tracking per proxy, created with
 *   lookup = "client by id: resp (2|3) and pubsub (subscribed to any channel,
 *   pattern or shard channel: CLIENT_KILL_TYPE_PUBSUB)", send = "append these
 *   bytes to client `to` as a ready reply slot at the tail of its FIFO (see
 *   placement below), counted against its client-output-buffer-limit".
 *
 * CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO (local_client.c): build
 *   the argv as struct tracking_arg and call tracking_command(); reply with
 *   its bytes. Everything else of CLIENT stays as it is.
 *
 * Per request of client X (client.c, the stage table), in this order:
 *   1. before running a command: tracking_limit(t, tracking-table-max-keys, X)
 *      (Redis: processCommand(), with X as server.current_client: verified
 *      on 7.0.15 with DEBUG PAUSE-CRON, a NOLOOP X is not told of its own
 *      keys evicted there; per tracking.tcl "Regression test for #11715" the
 *      eviction messages go out before X's reply, even before +QUEUED:
 *      at the FIFO tail before X's slot is made); also from
 *      the 100 ms cron with TRACKING_WRITER_NONE, as serverCron() does, so
 *      a CONFIG SET shrink takes effect while idle;
 *   2. a read command (CMD_READONLY in the command table, and not EVAL_RO,
 *      EVALSHA_RO, FCALL_RO, and not a pub/sub command) whose reply X gets,
 *      whoever answers it (Redis, gate, hot cache, batcher, MGET split):
 *      tracking_remember_keys(t, X, keys) with the command's key arguments
 *      (the command table's key specs), called when the command is
 *      dispatched, not when its reply arrives: a write by another client
 *      between the two then still invalidates the (maybe old) value. A read
 *      inside MULTI is remembered when EXEC runs (Redis calls it per
 *      executed command). Scripts: Redis remembers an EVAL/FCALL's declared
 *      keys only when the script ran a read command; bulwark cannot see
 *      that (see the test list below);
 *   3. after every command X ran (queued commands inside MULTI count as run
 *      when queued, as resetClient()): tracking_after_command(t, X,
 *      X_in_multi_now, command_was_CLIENT). This is what makes CLIENT
 *      CACHING apply to the next command only, or to the whole next
 *      MULTI ... EXEC;
 *   4. a write through bulwark that changes keys k1..kn (the writes stage
 *      knows the keys at once): tracking_key_changed(t, ki, X) for each key,
 *      in argument order (Redis signals them in execution order; one message
 *      per key in default mode). Inside MULTI: at EXEC, for the queued
 *      writes. FLUSHALL / FLUSHDB through bulwark: tracking_flushed(t, X).
 *   5. RESET, and the client closing: tracking_client_gone(t, X) (RESET:
 *      tracking_disable(t, X)). HELLO 2/3 changes nothing here: the protocol
 *      is read through lookup at each delivery, as Redis reads c->resp.
 *
 * From the keyspace watch (watch_set_listener):
 *   - each key it names: tracking_key_changed(t, key, TRACKING_WRITER_NONE);
 *   - a flush, or the watch lost: tracking_flushed(t, TRACKING_WRITER_NONE).
 *   The watch also echoes bulwark's own writes. In default mode that is
 *   harmless and even needed: step 4 dropped the key, so the echo notifies
 *   only clients that read the key again in between (a read that may have
 *   raced with the write and cached the old value). In BCAST mode the echo
 *   notifies every client of the prefix again, NOLOOP ones included: to
 *   keep NOLOOP exact, either feed BCAST only from the watch and attribute
 *   the echo to the bulwark client whose write to that key is in flight (a
 *   small key -> writer map filled at step 4, cleared when the write's reply
 *   arrives), or accept a duplicate message (always safe for a cache).
 *
 * Once per event-loop turn, after the watch and all clients were read and
 *   before replies are written (Redis: beforeSleep()):
 *   tracking_bcast_flush(t). BCAST batches every key changed under a prefix
 *   in that turn into one message per prefix (keys in byte order, each once;
 *   a client with two overlapping prefixes gets both messages); default
 *   mode sends one message per key at once.
 *
 * Placement in a client's reply FIFO (send callback):
 *   - a change by another client or by the watch: append as a ready slot at
 *     the FIFO tail. Any reply already in flight may carry the old value,
 *     so the invalidation must follow it; a reply to a request sent later
 *     is read after the change reached Redis, so it may follow.
 *   - X's own write (not NOLOOP): Redis 7.0 queues the key in
 *     tracking_pending_keys and sends it in afterCommand(), i.e. after the
 *     command's whole reply, after EXEC's whole reply for a transaction
 *     (tracking.tcl "hdel deliver invalidate message after response in the
 *     same connection", "not interleaved with multiple keys response", "not
 *     interleaved with transaction response", "flushdb ... not interleaved
 *     with transaction response"). The module holds these and sends them
 *     from tracking_after_command(X) (step 3), called after X's reply slot
 *     was queued: the FIFO tail is then exactly there, and a REDIRECT
 *     client shared with others gets X's after the others', as from Redis.
 *   - A null (flush) for X's own FLUSHALL: same, after its reply.
 *   - Redis sends invalidations of keys evicted by maxmemory before the
 *     reply of the command that triggered the eviction (tracking.tcl
 *     "Tracking invalidation message of eviction keys should be before
 *     response"); bulwark sees them from the watch after the command was
 *     sent, so they land after that reply: a known difference.
 *
 * INFO: tracking_counts(): tracking_clients goes in "# Clients" (after
 *   blocked_clients, before clients_in_timeout_table), tracking_total_keys,
 *   tracking_total_items, tracking_total_prefixes in "# Stats".
 *
 * ---- tests/unit/tracking.tcl (7.0.15: 52 test blocks, one run for RESP2
 *      and RESP3) that need more than this module and steps 1-5 ----
 *   "Tracking gets notification of expired keys" / "... of lazy expired
 *     keys": expiries happen on Redis and reach bulwark only from the
 *     watch. The lazy one (BCAST NOLOOP; X's MULTI sets mykey with PX 1,
 *     then GETs it after it expired) expects the message because Redis's
 *     last change of the key, the expiry, had no client: an echo
 *     attribution by "X's write in flight" would wrongly drop it;
 *   "HELLO 3 reply is correct", "HELLO without protover": RESP3 (lead);
 *   "Invalid keys should not be tracked for scripts in NOLOOP mode",
 *     "Tracking only occurs for scripts when a command calls a read-only
 *     command": scripts; bulwark cannot see which commands a script ran;
 *   "RESP3 Client gets tracking-redir-broken ...", "... redir broken",
 *     "... tracking-redir-broken with client reply off": client closing /
 *     QUIT must make lookup fail at once;
 *   "Different clients using different protocols ...", "Able to redirect to
 *     a RESP3 client": RESP3 and pub/sub in pinned sessions (the redirect
 *     target is subscribed on its dedicated connection: bulwark must inject
 *     the message into that session's reply stream);
 *   "Tracking invalidation message of eviction keys should be before
 *     response": maxmemory eviction on Redis (see placement above);
 *   "Unblocked BLMOVE gets notification after response": a blocked
 *     command in a pinned session whose write is known only when it
 *     returns (feed the destination key when the reply arrives);
 *   "Tracking gets notification on tracking table key eviction", "Server is
 *     able to evacuate enough keys ...", "Regression test for #11715": CONFIG
 *     SET tracking-table-max-keys through bulwark must set bulwark's limit
 *     (a bulwark directive of Redis's name) and tracking_limit() must run
 *     before each command, MULTI-queued ones included (#11715: the
 *     invalidation arrives before +QUEUED);
 *   "Invalidation message received for flushall/flushdb", "Test ASYNC
 *     flushall": FLUSHALL/FLUSHDB by another client -> the watch's null;
 *     "Test ASYNC flushall" reads INFO tracking_total_keys right after: the
 *     flush must be applied when bulwark forwards FLUSHALL (step 4), not
 *     only when the watch's null arrives;
 *   "Tracking info is correct": INFO fields above;
 *   "RESP$resp based basic invalidation with client reply off" (x2),
 *     "RESP3 based basic redirect invalidation with client reply off":
 *     CLIENT REPLY OFF must not suppress pushes (Redis: CLIENT_PUSHING);
 *   every test uses `r CONFIG SET tracking-table-max-keys` in clean_all and
 *     DEBUG SLEEP / SET-ACTIVE-EXPIRE / PAUSE-CRON (forwarded to Redis).
 *   The rest (redirect, BCAST, prefixes, NOLOOP, OPTIN/OPTOUT, CACHING,
 *   GETREDIR, TRACKINGINFO, switching modes) is this module plus steps 1-5.
 */
#ifndef BW_TRACKING_H
#define BW_TRACKING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct tracking;

/* A command argument: len bytes at ptr (borrowed, not NUL-terminated). */
struct tracking_arg {
    const char *ptr;
    size_t len;
};

/* What the module needs to know about a live client when it delivers. */
struct tracking_peer {
    int resp;    /* protocol the client speaks now: 2 or 3 */
    bool pubsub; /* subscribed to any channel, pattern or shard channel */
};

/*
 * Look up client id: fill *out and return true, or return false when no
 * such client is connected (closed or closing: Redis lookupClientByID()).
 */
typedef bool tracking_lookup_fn(void *arg, uint64_t id, struct tracking_peer *out);

/*
 * Deliver len bytes (one whole RESP message, valid for the call only) to
 * client to. Called synchronously from the tracking_* call that caused it;
 * must not call back into the module.
 */
typedef void tracking_send_fn(void *arg, uint64_t to, const char *bytes, size_t len);

/* A change with no bulwark client behind it (the watch, an eviction). */
#define TRACKING_WRITER_NONE 0

/* Counters for INFO, as Redis 7.0 reports them. */
struct tracking_counts {
    uint64_t clients;  /* tracking_clients: clients with tracking on */
    uint64_t keys;     /* tracking_total_keys: keys in the default-mode table */
    uint64_t items;    /* tracking_total_items: (key, client id) pairs in it */
    uint64_t prefixes; /* tracking_total_prefixes: distinct BCAST prefixes */
};

/*
 * Create the tables. lookup and send are required; arg (borrowed) is passed
 * to both. Returns the tables (tracking_free()); never NULL.
 */
struct tracking *tracking_new(tracking_lookup_fn *lookup, tracking_send_fn *send, void *arg);

/* Free everything. NULL is a no-op. Sends nothing. */
void tracking_free(struct tracking *t);

/*
 * Run CLIENT TRACKING / CACHING / GETREDIR / TRACKINGINFO for client id,
 * whose protocol is resp (2 or 3: TRACKINGINFO is a map and a set in
 * RESP3). argv[0] is "CLIENT", argv[1] the subcommand (any case), argc >= 2.
 * Returns false when argv[1] is none of the four (nothing written). Else
 * true, with the reply bytes, Redis 7.0.15's exactly (errors included), in
 * *reply (bw_malloc'd, the caller frees with bw_free) and *reply_len.
 * Quirk kept: CLIENT TRACKING on BCAST PREFIX x PREFIX a PREFIX ab (an
 * overlap among the given prefixes found at the second prefix or later)
 * gets "-ERR Prefix 'a' overlaps ..." AND "+OK" and tracking is enabled with
 * all three prefixes, as Redis 7.0 (checkPrefixCollisionsOrReply returns
 * the index). Commands never send invalidations.
 */
bool tracking_command(struct tracking *t, uint64_t id, int resp, int argc,
                      const struct tracking_arg *argv, char **reply, size_t *reply_len);

/* True when client id has tracking on (cheap: for the request path). */
bool tracking_is_on(const struct tracking *t, uint64_t id);

/*
 * CLIENT LIST/INFO of client id, as Redis 7.0 shows tracking: its flag
 * letters ("t", then "R" for a broken redirect, "B" for BCAST; at most 3 and
 * a NUL into flags) and redir= (the REDIRECT id, 0 none; -1 when tracking is
 * off, flags then empty). Returns whether tracking is on.
 */
bool tracking_client_flags(const struct tracking *t, uint64_t id, char *flags, int64_t *redir);

/* True when any client has tracking on (the fast path: skip every hook). */
bool tracking_any(const struct tracking *t);

/*
 * Client id executed a read command with these keys (nkeys >= 0, borrowed):
 * in default mode, remember them for it unless OPTIN without CACHING yes or
 * OPTOUT with CACHING no. No-op when it is not tracking or in BCAST mode.
 * Keys are copied.
 */
void tracking_remember_keys(struct tracking *t, uint64_t id, const struct tracking_arg *keys,
                            size_t nkeys);

/*
 * After client id ran a command (its reply slot is queued): send the
 * invalidations of its own changes held by tracking_key_changed() and
 * tracking_flushed() (Redis's afterCommand() ->
 * trackingHandlePendingKeyInvalidations()); then clear its CACHING flag
 * unless it is in MULTI now or the command was CLIENT (any subcommand), as
 * resetClient(). For EXEC: once, after the whole transaction.
 */
void tracking_after_command(struct tracking *t, uint64_t id, bool in_multi, bool was_client_cmd);

/*
 * Key (len bytes, borrowed) changed; writer is the bulwark client that
 * changed it, or TRACKING_WRITER_NONE. Default mode: every client in the
 * table for key (tracking on, not BCAST, not writer when NOLOOP) gets an
 * invalidation of this one key, and key leaves the table: the others now,
 * the writer its own only at tracking_after_command(writer), so it follows
 * the command's reply (and others' messages to a shared REDIRECT client).
 * BCAST: the
 * key is queued under every matching prefix for tracking_bcast_flush(),
 * with writer as its last writer.
 */
void tracking_key_changed(struct tracking *t, const char *key, size_t len, uint64_t writer);

/*
 * Send the BCAST messages queued since the last call: per prefix (in byte
 * order) one array of its changed keys (byte order, each once) to each of
 * its clients; a NOLOOP client's array leaves out keys it changed last, and
 * it gets nothing when that leaves none. Redis: beforeSleep() ->
 * trackingBroadcastInvalidationMessages().
 */
void tracking_bcast_flush(struct tracking *t);

/*
 * Everything changed (FLUSHALL, FLUSHDB, the watch lost): every tracking
 * client (ascending id) gets the null invalidation, and the default-mode
 * table is emptied. current is the client whose FLUSHALL/FLUSHDB it is
 * (TRACKING_WRITER_NONE for the watch): its null is held until
 * tracking_after_command(current). Queued BCAST keys stay queued, as in
 * Redis.
 */
void tracking_flushed(struct tracking *t, uint64_t current);

/*
 * Keep the default-mode table at max_keys keys at most (0: no limit), as
 * trackingLimitUsedSlots(): when over, evict random keys, each invalidated
 * for its clients (no BCAST), with an effort of 100 keys per call times the
 * number of consecutive calls that ended still over. Does nothing while no
 * client tracks. current is the client whose command is about to run
 * (TRACKING_WRITER_NONE from the cron): as Redis compares with
 * server.current_client, a NOLOOP current client is not told of its own
 * evicted keys. Call before every command (queued ones in MULTI too) and
 * from the cron.
 */
void tracking_limit(struct tracking *t, uint64_t max_keys, uint64_t current);

/*
 * CLIENT TRACKING off for id (also RESET): leave its prefixes, forget its
 * state. Its ids in the default-mode table stay (lazy, as Redis).
 */
void tracking_disable(struct tracking *t, uint64_t id);

/* Client id closed: as tracking_disable(). */
void tracking_client_gone(struct tracking *t, uint64_t id);

/* The INFO counters. */
void tracking_counts(const struct tracking *t, struct tracking_counts *out);

/*
 * Encoders of the two delivery forms (also used inside): append to *buf /
 * *len / *cap (bw_realloc'd; start from NULL/0/0) the header of an
 * invalidation for a RESP3 client (">2\r\n$10\r\ninvalidate\r\n") or of a
 * RESP2 pub/sub message on __redis__:invalidate
 * ("*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"), then the
 * payload: the keys as an array of bulk strings, or (nkeys == 0 and
 * flush) the null of protocol null_resp ("$-1\r\n" for 2, "_\r\n" for 3:
 * Redis uses the tracking client's protocol, not the receiver's).
 */
void tracking_encode(char **buf, size_t *len, size_t *cap, bool push,
                     const struct tracking_arg *keys, size_t nkeys, bool flush, int null_resp);

#endif
