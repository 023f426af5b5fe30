/*
 * router: Redis Cluster as the upstream. When the upstream node answers
 * CLUSTER SLOTS (upstream-cluster auto or yes), bulwark reads the slot map
 * and keeps a pool of multiplexed connections per master; the forward stage
 * then sends every request to the master of its keys' hash slot (CRC16,
 * {hash tags}: cluster.h). The map is read again on MOVED, when a node's
 * connections are lost, and every cluster-refresh-interval; until then a
 * MOVED moves its slot in the map at once.
 *
 *   DETECTING --CLUSTER SLOTS array--> CLUSTER (px->router set)
 *       |
 *       +--error (cluster support disabled)--> standalone (router stays NULL)
 *
 * Standalone bulwark never creates a router: every path here is skipped.
 */
#ifndef BW_ROUTER_H
#define BW_ROUTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct batch;
struct cluster_redirect;
struct proxy;
struct router;
struct upstream_conn;
struct upstream_pool;
struct watch;

/*
 * The upstream's commands are known (its first connection is up): ask it
 * whether it is a cluster node, unless upstream-cluster is no.
 */
void router_probe(struct proxy *px);

/* True once the upstream is known to be a cluster and its map was read. */
bool router_active(const struct proxy *px);

/*
 * The pool of the master that owns slot (0..16383), or of any master when
 * the slot is unassigned; the seed's pool until a map was read.
 */
struct upstream_pool *router_pool(struct proxy *px, unsigned slot);

/* The pool of the node at host:port (a MOVED/ASK target), made when new. */
struct upstream_pool *router_pool_at(struct proxy *px, const char *host, int port);

/*
 * The masters' pools, in slot order (the master of slot 0 first): up to max
 * into out; returns how many there are.
 */
size_t router_masters(struct proxy *px, struct upstream_pool **out, size_t max);

/*
 * The keyspace watch (and Bloom filter) of the master of slot: px->watch in
 * front of one Redis; NULL for an unassigned slot. Every master has its own:
 * a new master (a failover, a new node) starts warming, its slots' reads
 * pass the gate until its SCAN is done.
 */
struct watch *router_watch(struct proxy *px, unsigned slot);

/*
 * The watches of every master that owns slots in bulwark's map: up to max
 * into out; returns how many there are. The gate answers a key absent only
 * when none of them may hold it: a map that lags behind a resharding or a
 * failover can then make a read pass the gate, never answer nil for a key
 * that exists on another master.
 */
size_t router_watches(struct proxy *px, struct watch **out, size_t max);

/*
 * The GET batcher of the master of slot for a client with this id speaking
 * proto (the one on the connection its other requests to that master use;
 * pipelined GETs only: an MGET must stay in one slot); NULL for an
 * unassigned slot.
 */
struct batch *router_batch(struct proxy *px, unsigned slot, uint64_t client_id, int proto);

/*
 * A MOVED was received: its slot now belongs to its target (until the next
 * read). Whenever a slot of the map changes masters (here, or a map read),
 * px->on_slots_moved is told.
 */
void router_moved(struct proxy *px, const struct cluster_redirect *r);

/* Read the slot map again soon (a node failed, a refresh was asked). */
void router_refresh_soon(struct proxy *px);

/* A CONFIG SET went through: every node's pool reads Redis's busy-reply-threshold again. */
void router_refresh_busy_threshold(struct proxy *px);

/* The proxy's 100 ms cron: the periodic refresh. */
void router_cron(struct proxy *px, uint64_t now_ms);

/* The "# Cluster" INFO section lines bulwark adds (masters, slots, refreshes). */
void router_info(const struct proxy *px, char *out, size_t size);

/* Free the router and its pools (exit). NULL router ok. */
void router_free(struct proxy *px);

#endif
