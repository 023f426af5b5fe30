/*
 * watch: the keyspace watch and SCAN that keep the Bloom filter a superset of
 * the upstream's keys, and the gate's state.
 *
 * Two hiredis async connections to the upstream: "sub" runs CLIENT ID, then
 * CLIENT TRACKING on REDIRECT <its own id> BCAST and SUBSCRIBE
 * __redis__:invalidate, so Redis (>= 6) names on that channel every key
 * modified by anyone (set, renamed, copied, restored, written by a script,
 * expired, deleted), and each named key is added. Tracking and delivery live
 * on one socket: losing either is one EOF. Keys are named without their
 * database: the one filter holds the key names of every database (see
 * keyspace.h for why). Then "trk" SCANs, every database INFO keyspace
 * lists in turn, the whole
 * keyspace (bloom-scan-count per call, bloom-scan-interval apart) into a new
 * filter; while it runs, every add goes to both filters; when it ends the new
 * filter replaces the old.
 *
 *   OFF        bloom no: no filter, the gate stays open; the watch itself
 *              still runs for the hot-key cache and CLIENT TRACKING
 *   WARMING    watch up, first SCAN running: gate open (reads forwarded)
 *   ACTIVE     filter complete: gate closed (absent reads answered locally)
 *   REBUILDING filter complete but stale (DBSIZE check, FLUSHALL): gate
 *              closed on the old filter while a new one is scanned
 *   OPEN       watch lost or CLIENT TRACKING refused: gate open; a full
 *              rebuild starts when the watch is back
 *
 * Watch first, then SCAN: a key created after the SCAN passed its slot is
 * named by the watch, so no key is missed.
 */
#ifndef BW_WATCH_H
#define BW_WATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct proxy;
struct watch;

enum watch_state { WATCH_OFF = 0, WATCH_WARMING, WATCH_ACTIVE, WATCH_REBUILDING, WATCH_OPEN };

/* Counters of the gate, for INFO bloom (gate.c updates them). */
struct watch_counters {
    uint64_t gated_reads;  /* reads answered locally as absent */
    uint64_t passed_reads; /* gated-kind reads forwarded (key maybe present) */
    uint64_t passed_nil;   /* of those, the ones Redis answered as absent */
};

/* Listeners of the watch (main.c wires them; the watch knows no feature). */
typedef void watch_key_fn(void *arg, const char *key, size_t len); /* key named */
/* A flush, or the watch lost: anything of w's node changed. told: the null echoes a
 * flush the listener already told (watch_expect_flush); the change is real all the same. */
typedef void watch_flush_fn(void *arg, const struct watch *w, bool told);

/* Set the listeners (NULL: none) and their argument (borrowed). */
void watch_set_listener(struct watch *w, watch_key_fn *on_key, watch_flush_fn *on_flush,
                        void *arg);

/*
 * Create the watch for px (borrowed for its lifetime); it connects at once
 * when something needs it: the filter (bloom), the hot-key cache (hotkey) or
 * a client that turned CLIENT TRACKING on (px->watch_needed), else at
 * watch_need(). With bloom no it keeps no filter (the gate stays OFF) but
 * tells its listeners every key named and every flush all the same.
 * Returns the watch (watch_free()).
 */
struct watch *watch_new(struct proxy *px);

/* watch_new() of the Redis at host:port (a Redis Cluster master; host copied). */
struct watch *watch_new_at(struct proxy *px, const char *host, int port);

/* Connect w if it is not connecting or connected yet (a client turned
 * CLIENT TRACKING on). */
void watch_need(struct watch *w);
/* A tracking client reads a key of w's node: when w is not tracking now, the
 * change it would have named may be missed, so w tells its listener a flush
 * (a null to tracking clients) as soon as it tracks again. */
void watch_unwatched_read(struct watch *w);
/* dst tells the listeners src tells. */
void watch_copy_listener(struct watch *dst, const struct watch *src);

/* Close the connections and free the filters. NULL is a no-op. */
void watch_free(struct watch *w);

/* True when reads may be answered locally from the filter. */
bool watch_gate_closed(const struct watch *w);

/*
 * False only when key (len bytes) is definitely absent upstream. Lock-free;
 * meaningful when watch_gate_closed().
 */
bool watch_maybe_contains(const struct watch *w, const char *key, size_t len);

/*
 * Take in everything the keyspace watch has delivered so far, before a read
 * is answered locally (gate, hot-key cache, lease): a read that starts after
 * a write to Redis completed never sees the state before it. Redis writes a
 * BCAST invalidation to the watch before the writer's reply (both in
 * beforeSleep(), tracking first), so on one host it is in the watch's socket
 * buffer by the time the read arrives; an EOF there (the watch killed,
 * Redis restarted) opens the gate here, before the read is judged.
 * Costs one recv(MSG_PEEK) when nothing is waiting, and nothing at all when
 * no client socket was read since the last call (px->input_seq).
 * Returns false when more is waiting than one call reads (the caller
 * forwards the read instead of answering it).
 */
bool watch_sync(struct watch *w);

/* watch_sync() whether or not a client socket was read since the last call
 * (a write's reply came: its tracking echo is taken in first). */
bool watch_drain(struct watch *w);

/* Add a key written through bulwark (to both filters while rebuilding). */
void watch_add_key(struct watch *w, const char *key, size_t len);

/* The gate's counters (owned by w). */
struct watch_counters *watch_counters(struct watch *w);

/* Staleness check and reconnects; called by the proxy's cron (100 ms). */
void watch_cron(struct watch *w, uint64_t now_ms);

/* Append the "# Bloom" INFO section (Redis INFO format) to out. */
void watch_info(const struct watch *w, struct evbuffer *out);

/*
 * Nulls (FLUSHALL, FLUSHDB) received and losses of the watch so far: the
 * same count before a flush is sent and after its reply means the flush's
 * own null is still to come on the same connection (Redis writes a
 * FLUSHALL's reply before the tracking message it queued earlier).
 */
uint64_t watch_flushes(const struct watch *w);

/*
 * The next null w receives echoes a flush its listener has already told:
 * it is passed with told set. Forgotten when the watch is lost.
 */
void watch_expect_flush(struct watch *w);

/* True while client tracking feeds the watch (the hot-key cache needs it). */
bool watch_tracking_on(const struct watch *w);

/* Name of a state for INFO: off, warming, active, rebuilding, open. */
const char *watch_state_name(enum watch_state s);

#endif
