/*
 * cluster: the pure half of Redis Cluster support — hash slots (CRC16 with
 * {hash tags}), the slot map read from an upstream's CLUSTER SLOTS or CLUSTER
 * SHARDS reply, MOVED/ASK redirections, and bulwark's own CLUSTER answers as
 * a one-node cluster that owns every slot. Pure: libc, proxy/reply.h and
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
 *   client side     CLUSTER <sub> from a client: cluster_command() appends
 *                   bulwark's own answer (one node, every slot, itself) to a
 *                   struct cluster_out, so cluster-aware clients (redis-cli
 *                   -c, ioredis Cluster, redis-py RedisCluster) send every
 *                   key to bulwark and never see a MOVED.
 *
 * The one-node answers are byte for byte those of a real redis-server 7.0.15
 * started with --cluster-enabled yes and given all slots by CLUSTER
 * ADDSLOTSRANGE 0 16383 (captured in RESP2 and after HELLO 3; the references
 * are in tests/unit/test_cluster.c), with these differences, all in values,
 * never in shape:
 *   - the node id, ip, hostname and ports are bulwark's (cluster_self);
 *   - cluster_current_epoch, cluster_my_epoch and the config epoch in NODES
 *     are cluster_self's (0 and 0 by default, as on that reference node);
 *   - cluster_stats_messages_*: a real node counts its bus messages (0 while
 *     it is alone, growing once it has peers); bulwark has no bus: always 0
 *     sent / 0 received, no per-type lines;
 *   - ping_sent / pong_received in NODES are 0 (as for "myself" in Redis);
 *   - replication-offset in SHARDS is 0 (a lone master with no replica has
 *     no backlog and reports 0 too);
 *   - cluster_state is always ok: bulwark answers the upstream's failures
 *     per request, it does not present them as a down cluster.
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

/* ---- bulwark as a one-node cluster -------------------------------------- */

/* A growable byte buffer the answers are appended to. Zero it to start. */
struct cluster_out {
    char *buf;  /* owned: bytes appended so far (not NUL-terminated), NULL
                   before the first append */
    size_t len; /* bytes used; the caller may set it to 0 to reuse buf */
    size_t cap; /* bytes allocated at buf */
};

/* Free o's bytes and zero it. */
void cluster_out_deinit(struct cluster_out *o);

/*
 * INFO's "# Cluster" section as a cluster node writes it (genRedisInfoString()
 * in server.c; "INFO cluster" of a cluster node is exactly this in a bulk).
 * bulwark must say cluster_enabled:1 when it answers CLUSTER as a node:
 * redis-py's RedisCluster (4.3) reads INFO first and refuses a seed node
 * with "Cluster mode is not enabled on this node" otherwise.
 */
#define CLUSTER_INFO_SECTION "# Cluster\r\ncluster_enabled:1\r\n"

/* Who bulwark says it is. Filled by cluster_self_init(), then adjusted. */
struct cluster_self {
    char id[CLUSTER_NAMELEN + 1]; /* node id: 40 lowercase hex digits */
    const char *ip;               /* borrowed: announced ip, NUL-terminated, at most
                                     CLUSTER_HOST_MAX bytes. "" is what a lone Redis
                                     node says, and redis-py then uses the address it
                                     connected to, but ioredis 5 skips a node with no
                                     host and never gets a slot map: announce the
                                     address the client reached (getsockname()) */
    const char *hostname;         /* borrowed: announced hostname
                                     (cluster-announce-hostname), NULL or "" for none */
    bool prefer_hostname;         /* cluster-preferred-endpoint-type hostname: the
                                     endpoint is the hostname ("?" when none) */
    int port;                     /* client port bulwark listens on, 1..65535 */
    int bus_port;                 /* shown after '@' in NODES: bulwark has no bus;
                                     port + 10000 (Redis's default) unless above
                                     65535, then 0 */
    uint64_t current_epoch;       /* cluster_current_epoch; 0 */
    uint64_t config_epoch;        /* cluster_my_epoch and the NODES epoch; 0 */
};

/*
 * Fill s for ip:port (ip borrowed, as the field) with no hostname, the
 * default bus port and epochs, and the id cluster_node_id(seed, seed_len).
 */
void cluster_self_init(struct cluster_self *s, const char *ip, int port, const char *seed,
                       size_t seed_len);

/*
 * A node id derived from seed (seed_len bytes, any bytes): 40 lowercase hex
 * digits and a NUL into out. The same seed always gives the same id
 * (160 bits from three FNV-1a-64 hashes of the seed, each salted and
 * finished with splitmix64's mixer); different seeds give different ids
 * with overwhelming probability. Seed it with what identifies this bulwark
 * (e.g. its announced "ip:port"), so restarts keep the id.
 */
void cluster_node_id(const char *seed, size_t seed_len, char out[CLUSTER_NAMELEN + 1]);

/*
 * Append bulwark's answer to one CLUSTER subcommand, in RESP2 (proto 2) or
 * RESP3 (proto 3). Each appends one whole reply to o:
 *   info     bulk (RESP2) / verbatim txt (RESP3) of the 12 lines of CLUSTER
 *            INFO (cluster_state:ok, 16384 slots ok, 1 known node, size 1)
 *   nodes    bulk / verbatim: "<id> <ip>:<port>@<bus>[,<hostname>]
 *            myself,master - 0 0 <epoch> connected 0-16383\n"
 *   slots    one range 0-16383: endpoint, port, id, metadata (array in
 *            RESP2, map in RESP3: hostname when the ip is preferred and a
 *            hostname is set; ip when the hostname is preferred)
 *   shards   one shard: slots [0, 16383], one node map (array of pairs in
 *            RESP2) with id, port, ip, endpoint, [hostname], role master,
 *            replication-offset 0, health online
 *   myid     bulk of the 40-digit id
 *   keyslot  integer cluster_keyslot(key, len)
 */
void cluster_reply_info(struct cluster_out *o, const struct cluster_self *s, int proto);
void cluster_reply_nodes(struct cluster_out *o, const struct cluster_self *s, int proto);
void cluster_reply_slots(struct cluster_out *o, const struct cluster_self *s, int proto);
void cluster_reply_shards(struct cluster_out *o, const struct cluster_self *s, int proto);
void cluster_reply_myid(struct cluster_out *o, const struct cluster_self *s);
void cluster_reply_keyslot(struct cluster_out *o, const char *key, size_t len);

/* cluster_command() outcomes. */
enum {
    CLUSTER_CMD_DONE = 0,    /* o got the whole reply (an answer or an error) */
    CLUSTER_CMD_UNSERVED = 1 /* a Redis 7.0 CLUSTER subcommand with a valid
                                arity that bulwark does not answer itself
                                (ADDSLOTS, COUNTKEYSINSLOT, HELP, ...): o is
                                unchanged; the caller refuses or forwards */
};

/*
 * Answer the request CLUSTER argv[1] ... (argc >= 1 arguments; argv[i] is
 * argvlen[i] bytes, borrowed; argv[0] is the command name) in proto 2 or
 * 3, as redis-server 7.0.15 would, through the functions above:
 *   INFO, NODES, SLOTS, SHARDS, MYID, KEYSLOT <key>  answered;
 *   argc == 1            "-ERR wrong number of arguments for 'cluster' command"
 *   an unknown name      "-ERR unknown subcommand '<name>'. Try CLUSTER HELP."
 *                        (name cut at 128 bytes and at a NUL, CR and LF as
 *                        spaces: commandCheckExistence() in server.c)
 *   a wrong arity        "-ERR wrong number of arguments for 'cluster|<sub>'
 *                        command" (commandCheckArity(); arities of
 *                        src/commands.c)
 *   any other subcommand CLUSTER_CMD_UNSERVED, nothing appended.
 * The admission stage normally answers the last two error kinds first from
 * the command table (cmd_arity_error(), cmd_unknown_subcommand_error()); the
 * bytes are the same. Returns CLUSTER_CMD_DONE or CLUSTER_CMD_UNSERVED.
 */
int cluster_command(struct cluster_out *o, const struct cluster_self *s, int proto, int argc,
                    const char *const *argv, const size_t *argvlen);

#endif
