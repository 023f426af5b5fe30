/*
 * keyspace: one database's protections — its GET batchers (one per shared
 * upstream connection) and its hot-key cache and leases — reached from a
 * client's current database. Created on first use (a client SELECTs the
 * database), freed at exit.
 *
 * The Bloom filter is not per keyspace: one filter holds the key names of
 * every database (watch.c). The keyspace watch names keys without a
 * database, and SWAPDB, MOVE and COPY … DB move keys between databases
 * (SWAPDB without any tracking message): a filter keyed by name alone stays
 * a superset of every database through all of them, where per-database
 * filters would each need rebuilding. The cost is false positives for a key
 * name used in another database only (one upstream round trip each).
 *
 * Invalidations from the watch apply to every keyspace's hot cache
 * (conservative: the message names no database); a flush to all of them.
 */
#ifndef BW_KEYSPACE_H
#define BW_KEYSPACE_H

#include <stddef.h>
#include <stdint.h>

struct batch;
struct evbuffer;
struct hotkey;
struct proxy;
struct session;
struct watch;

/* One database's protections (the fields are read by the request path). */
struct keyspace {
    int db;                 /* database index, 0 .. px->databases - 1 */
    struct batch **batches; /* GET batcher per shared upstream connection (owned):
                               nbatches on the RESP2 ones, then nbatches on the
                               RESP3 ones (NULL until keyspace_batch() needs one) */
    int nbatches;           /* batchers per protocol (= upstream-connections) */
    struct hotkey *hotkey;  /* hot-key cache and leases (owned), NULL when `hotkey no` */
};

/*
 * The keyspace of database db (>= 0), created on first use. Never NULL.
 * Valid until keyspace_free_all().
 */
struct keyspace *keyspace_get(struct proxy *px, int db);

/*
 * The GET batcher a client with this id speaking RESP proto uses in ks: the
 * one on the client's own shared connection, so its batched GETs and its
 * other requests are answered by Redis in the order sent.
 */
struct batch *keyspace_batch(struct proxy *px, struct keyspace *ks, uint64_t client_id,
                             int proto);

/*
 * Session s now works in database db (0 <= db < px->databases, checked by
 * the caller; also on connect, which picks its shared upstream connection):
 * its requests use db's keyspace and batcher. A GET of the old database
 * still batched is sent first.
 */
void keyspace_select(struct session *s, int db);

/*
 * HELLO switched s to proto: its later requests use the shared connection
 * and batcher of that protocol. Called with nothing of s due on the old ones.
 */
void keyspace_set_proto(struct session *s, int proto);

/* Free every keyspace (held GETs go to the batchers, then batches are sent). */
void keyspace_free_all(struct proxy *px);

/* The watch named key (len bytes): drop it from every hot cache. */
void keyspace_key_changed(void *px, const char *key, size_t len);

/* Everything may have changed (flush, watch lost): empty every hot cache. */
void keyspace_flushed(void *px);

/*
 * In front of a Redis Cluster, the watch w of one master saw a flush or was
 * lost: every hot cache drops what w guarded (the keys of its slots).
 */
void keyspace_watch_flushed(struct proxy *px, const struct watch *w);

/* In front of a Redis Cluster, the slots set in changed have new masters (hotkey.h). */
void keyspace_slots_moved(struct proxy *px, const uint8_t *changed);

/* SWAPDB a b through bulwark: both databases' hot caches are emptied. */
void keyspace_swapped(struct proxy *px, int a, int b);

/* Lease deadlines of every keyspace (the proxy's 100 ms cron). */
void keyspace_cron(struct proxy *px, uint64_t now_ms);

/* The "# Hotkeys" INFO section, summed over the keyspaces. */
void keyspace_info_hotkeys(struct proxy *px, struct evbuffer *out);

#endif
