/*
 * cluster: the pure half of Redis Cluster support — hash slots (CRC16 with
 * {hash tags}), the slot map read from an upstream's CLUSTER SLOTS or CLUSTER
 * SHARDS reply, and MOVED/ASK redirections. Pure: libc, proxy/reply.h and
 * proxy/util.h only; no I/O, no clock. Not thread-safe: one map per worker.
 *
 * How the daemon uses it (issue #16):
 *
 *   upstream side   send CLUSTER SHARDS (or SLOTS) to a seed node and feed
 *                   the whole raw reply to cluster_map_parse_shards() (or
 *                   _slots()): the map changes only when the reply parses;
 *                   cluster_map_covered() says whether every slot has a
 *                   master. Route a request to cluster_map_slot_node(m,
 *                   cluster_keyslot(key)); on a -MOVED/-ASK reply,
 *                   cluster_parse_redirect() says where to go, and
 *                   cluster_map_move_slot() applies a MOVED until the next
 *                   refresh.
 */
#ifndef BW_CLUSTER_H
#define BW_CLUSTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Hash slots of a Redis Cluster (CLUSTER_SLOTS in Redis's cluster.h). */
#define CLUSTER_SLOTS 16384

/* Bytes of a node id: 40 hex digits (CLUSTER_NAMELEN in Redis). */
#define CLUSTER_NAMELEN 40

/* Longest host (ip or hostname) kept from a reply or redirection. */
#define CLUSTER_HOST_MAX 255

/* Most nodes a slot map holds; a reply naming more is refused. Redis
 * Cluster's documented design limit is 1000 nodes. */
#define CLUSTER_MAP_MAX_NODES 4096

/* ---- hash slots -------------------------------------------------------- */

/*
 * CRC16 of len bytes at buf: CRC-16/XMODEM (polynomial 0x1021, initial 0,
 * no reflection, no final xor), the CRC of Redis's src/crc16.c; check value
 * crc16("123456789") = 0x31c3. Computed byte by byte without a table.
 */
uint16_t cluster_crc16(const char *buf, size_t len);

/*
 * The hash slot of key (len bytes, any bytes, borrowed): 0..16383. As
 * keyHashSlot() of Redis 7.0 src/cluster.c: when the key has a '{' and a '}'
 * after the first '{' with at least one byte between them, only the bytes
 * between that first '{' and the first '}' after it are hashed ("{a}{b}"
 * hashes "a"); otherwise the whole key ("{}x", "a{" are hashed whole).
 */
unsigned cluster_keyslot(const char *key, size_t len);

/* ---- slot map (the upstream cluster) ------------------------------------ */

/* What a node's last reply said of its health (CLUSTER SHARDS "health";
 * nodes read from CLUSTER SLOTS are CLUSTER_ONLINE). */
enum cluster_health {
    CLUSTER_ONLINE = 0,  /* serving */
    CLUSTER_LOADING = 1, /* a replica still in its first sync */
    CLUSTER_FAIL = 2     /* flagged FAIL by the cluster */
};

/* One node of the map. Read-only for users of the map. */
struct cluster_node {
    char host[CLUSTER_HOST_MAX + 1]; /* where to connect: ip or hostname,
                                        NUL-terminated, never empty */
    int port;                        /* client port, 1..65535 */
    char id[CLUSTER_NAMELEN + 1];    /* 40 lowercase hex digits, or "" when
                                        the node was learned from a MOVED */
    bool replica;                    /* false: a master */
    int master;                      /* replicas: index of the master they
                                        follow; masters: -1 */
    enum cluster_health health;      /* as last reported */
};

struct cluster_map; /* opaque */

/* An empty map: no node, every slot unassigned. The caller owns it
 * (cluster_map_free()). Never NULL (aborts on OOM). */
struct cluster_map *cluster_map_new(void);

/* Free m. NULL is a no-op. */
void cluster_map_free(struct cluster_map *m);

/*
 * Replace m's nodes and slots with those of a CLUSTER SLOTS reply: the raw
 * bytes of one whole reply (len bytes at buf, borrowed), RESP2 or RESP3.
 * Each range [start, end, master, replica...] gives its slots to its first
 * node; the rest are replicas of it. A node is [endpoint, port, id,
 * metadata] (id and metadata optional, metadata an array or map of "ip",
 * "hostname" and any other pairs). A null, empty or "?" endpoint (Redis's
 * cluster-preferred-endpoint-type unknown-endpoint, a lone node that never
 * learned its own ip, hostname preferred but none set) falls back to the
 * metadata's ip, then to asked_host: the host the reply came from (NUL-
 * terminated, borrowed; NULL for none).
 *
 * Returns BW_OK, or BW_ERR with the reason in err (NUL-terminated,
 * truncated to errlen) and m unchanged when the bytes are not one complete
 * reply, an error reply, or not of that shape: a slot outside 0..16383 or
 * start > end, a slot given twice, a port outside 1..65535, an id that is
 * not 40 hex digits, a node that is a master in one place and a replica in
 * another, a host too long or missing, more than CLUSTER_MAP_MAX_NODES.
 * Any bytes are safe. Slots no range names stay unassigned (see
 * cluster_map_covered()).
 */
int cluster_map_parse_slots(struct cluster_map *m, const char *buf, size_t len,
                            const char *asked_host, char *err, size_t errlen);

/*
 * The same from a CLUSTER SHARDS reply (Redis 7.0+; RESP2 arrays of pairs
 * or RESP3 maps): each shard's "slots" (start/end pairs) go to its master,
 * the first node whose "role" is "master" and whose "health" is not "fail"
 * (else the first master); its other nodes follow that master (further
 * masters in one shard, which 7.0 never sends, are kept as slotless
 * masters). A node's host is its "endpoint", else "ip", else asked_host,
 * as for SLOTS; its port is "port" (a node with only "tls-port" is an
 * error: bulwark speaks plain TCP). Unknown fields are skipped. A shard
 * with no master is an error (7.0 builds every shard around a master).
 * Every node is kept, slotless masters and failed nodes included.
 */
int cluster_map_parse_shards(struct cluster_map *m, const char *buf, size_t len,
                             const char *asked_host, char *err, size_t errlen);

/* Number of nodes in m (masters and replicas). */
size_t cluster_map_node_count(const struct cluster_map *m);

/* Node i of m, 0 <= i < cluster_map_node_count(m) (else abort). The
 * pointer is valid until m is next parsed, changed or freed. */
const struct cluster_node *cluster_map_node(const struct cluster_map *m, size_t i);

/* Index of the master serving slot (0..16383, else abort), or -1 when
 * the slot is unassigned. */
int cluster_map_slot_node(const struct cluster_map *m, unsigned slot);

/*
 * The next master after index after (-1 to start), or -1 when there is
 * none: for (int i = cluster_map_next_master(m, -1); i >= 0;
 *           i = cluster_map_next_master(m, i)) ...
 * Slotless masters are included.
 */
int cluster_map_next_master(const struct cluster_map *m, int after);

/* Index of the node at host:port (host compared case-insensitively), or -1. */
int cluster_map_find(const struct cluster_map *m, const char *host, int port);

/* Slots with a master; cluster_map_covered(): all CLUSTER_SLOTS of them. */
size_t cluster_map_slots_assigned(const struct cluster_map *m);
bool cluster_map_covered(const struct cluster_map *m);

/*
 * Give slot (0..16383) to the node at host:port (NUL-terminated, borrowed,
 * at most CLUSTER_HOST_MAX bytes, not empty; port 1..65535), as a -MOVED
 * says until the next full refresh: a node not in m is added as a master
 * with no id; a replica named there becomes a master (a failover's MOVED
 * names the promoted replica). Returns the node's index, or -1 when the
 * arguments are out of range or m is full (m unchanged).
 */
int cluster_map_move_slot(struct cluster_map *m, unsigned slot, const char *host, int port);

/* ---- redirections ------------------------------------------------------- */

/* A -MOVED or -ASK error, parsed. */
struct cluster_redirect {
    bool ask;                        /* -ASK (true) or -MOVED (false) */
    unsigned slot;                   /* 0..16383 */
    char host[CLUSTER_HOST_MAX + 1]; /* NUL-terminated; "" when Redis sent
                                        none (a node that does not know its
                                        ip): the node that answered */
    int port;                        /* 1..65535 */
};

/*
 * Parse the error line "-MOVED <slot> <host>:<port>" or "-ASK ..." (len
 * bytes at s; the leading '-' and the trailing CRLF are optional) as
 * clusterRedirectClient() of Redis 7.0 writes it: the host is the node's
 * preferred endpoint, an IPv6 address unbracketed ("::1:6379": split at
 * the last ':'); "[::1]:6379" is read too, brackets removed. Returns BW_OK
 * with *r filled, or BW_ERR (r unspecified) for anything else.
 */
int cluster_parse_redirect(const char *s, size_t len, struct cluster_redirect *r);

#endif
