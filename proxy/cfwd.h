/*
 * cfwd: the forward stage in front of a Redis Cluster (router.h). A request
 * goes to the master of its keys' hash slot; MOVED is followed (the map
 * learns the slot's new owner), ASK is followed with ASKING on the target
 * without changing the map, a MOVED back to a node that already sent the
 * request away is followed with ASKING (a slot changing hands: its old owner
 * gave it up, the new one still imports it), TRYAGAIN is retried after
 * 100 ms — at most five redirects or retries, then the client gets the last
 * reply. Keys in more than one slot:
 *
 *   MGET                         split per slot, the values merged in key order
 *   DEL UNLINK EXISTS TOUCH      split per slot, the counts summed
 *   MSET                         split per slot, +OK when every part says so
 *   anything else                Redis Cluster's -CROSSSLOT error, never sent
 *
 * Keyless commands go to the master of slot 0, except:
 *
 *   DBSIZE                       every master, summed
 *   FLUSHALL FLUSHDB             every master, +OK when every one says so
 *   SCRIPT FLUSH, FUNCTION FLUSH (same)
 *   KEYS                         every master, the keys concatenated
 *   SCRIPT LOAD/EXISTS, FUNCTION LOAD/DELETE  every master, the first one's reply
 *   RANDOMKEY                    a random master
 *   SCAN                         master by master: the cursor carries the master's
 *                                place (cursor = redis cursor × 4096 + master)
 *   CONFIG SET/RESETSTAT/REWRITE every master, +OK when every one says so
 *   INFO                         every master: slot 0's master's text, with the
 *                                fields that count per node (blocked_clients,
 *                                expired_keys, total_forks …) and # Keyspace summed
 *   DEBUG OBJECT … key           the key's master (OBJECT SDSLEN LISTPACK QUICKLIST
 *                                HTSTATS-KEY DIGEST-VALUE, by their first key)
 *   DEBUG SET-ACTIVE-EXPIRE …    every master, +OK when every one says so (the
 *                                node-wide settings, SLEEP, RELOAD, LOADAOF)
 *
 * Any part's error is the whole reply (the first one).
 */
#ifndef BW_CFWD_H
#define BW_CFWD_H

#include <stdbool.h>
#include <stddef.h>

#include "proxy/slots.h"

struct cmd_info;
struct proxy;
struct slot;
struct cmd_table;
struct resp_request;
struct session;
struct upstream_pool;

/* Mark the commands split or fanned out (cmd_info.fanout) in t. */
void cfwd_apply(struct cmd_table *t);

/*
 * Forward req of s (ci: its command, subcommand resolved; cmd/len: its bytes
 * as they go, TTL jitter applied) to the cluster.
 */
void cfwd_request(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
                  const char *cmd, size_t len);

/*
 * The pool a session that req starts connects to: the master of its first
 * key's slot (a blocking command, WATCH, a script), or of slot 0 (MULTI,
 * SUBSCRIBE: pub/sub reaches every node); SCRIPT KILL and FUNCTION KILL: the
 * first master where a script bulwark sent may be running.
 */
struct upstream_pool *cfwd_pool_for(struct session *s, const struct cmd_info *ci,
                                    const struct resp_request *req);

/* The pool of the master of req's first key; NULL when it names none. */
struct upstream_pool *cfwd_key_pool(struct session *s, const struct cmd_info *ci,
                                    const struct resp_request *req);

/* Where cfwd_send_filtered() sends a keyless request. */
enum cfwd_to {
    CFWD_TO_ONE,      /* the master of slot 0 (CONFIG GET) */
    CFWD_TO_ALL_OK,   /* every master: +OK when every one says so, else the first error */
    CFWD_TO_ALL_INFO, /* every master: one INFO text (above) */
};

/*
 * A keyless request bulwark forwards for itself (cmd/len: RESP multibulk),
 * its reply (merged, for the every-master kinds) through filter as
 * fwd_send() does.
 */
void cfwd_send_filtered(struct session *s, const char *cmd, size_t len, enum cfwd_to to,
                        slot_filter_fn *filter, void *data);

/* Send cmd (len bytes of RESP multibulk) of s to the node of pool (CLIENT UNBLOCK). */
void cfwd_send_at(struct session *s, struct upstream_pool *pool, const char *cmd, size_t len);

/* Forward req of s to the master of hash slot hslot (CLUSTER COUNTKEYSINSLOT …). */
void cfwd_to_slot(struct session *s, const struct resp_request *req, unsigned hslot);

/*
 * px->on_batch_redirect: a batched GET of key was answered with MOVED, ASK
 * or TRYAGAIN (reply, rlen bytes): each waiter's GET follows it as a
 * forwarded request would. True when taken (the waiters are cfwd's now).
 */
bool cfwd_batch_redirect(struct proxy *px, const char *key, size_t len, struct slot **waiters,
                         size_t n, const char *reply, size_t rlen);

#endif
