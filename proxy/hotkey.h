/*
 * hotkey: hot keys on the GET path — detection (count-min sketch, hotcache.c),
 * a coherent local cache refreshed ahead of expiry, and leases that hold
 * duplicate misses of a hot key while one client refills it. This is the
 * glue between the pure hotcache.c and the request path (client, batch,
 * upstream) and the keyspace watch (coherence).
 *
 * Coherence: values are served only while the keyspace watch has client
 * tracking on; a write through bulwark invalidates at once, a key named on
 * the watch invalidates, a flush or a lost watch empties the cache, and a
 * fetch in flight across an invalidation is not stored (generation check).
 * Staleness is bounded by the invalidation latency, and by hotkey-ttl.
 *
 * In front of a Redis Cluster a key's fills (GET + PTTL, refresh-ahead) go
 * to the master of its hash slot, on the connection its client's other
 * requests to that master use; its entry is served only while that master's
 * watch has tracking on (every master's watch invalidates every hot cache,
 * main.c); a fill answered MOVED, ASK or TRYAGAIN is not stored, its GET
 * follows the redirect as a batched GET's does (px->on_batch_redirect);
 * when slots change masters (px->on_slots_moved: hotkey_slots_moved) or a
 * master's watch is lost or sees a flush (hotkey_watch_flushed), the
 * entries and fills of the keys it guarded are dropped, the other
 * masters' stay.
 */
#ifndef BW_HOTKEY_H
#define BW_HOTKEY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct session;
struct proxy;
struct hotkey;
struct resp_request;
struct watch;

/*
 * From px->cfg (hotkey-*), serving database db's GETs (its fills SELECT db);
 * NULL when `hotkey no`. Exits on bad options.
 */
struct hotkey *hotkey_new(struct proxy *px, int db);

/* Free; held GETs are answered by forwarding them. NULL ok. */
void hotkey_free(struct hotkey *hk);

/*
 * A GET of key by c that passed the Bloom gate. Returns true when handled
 * here (a cache hit answered, a held GET, or a miss of a hot key fetched
 * with its PTTL); false: not hot, the caller batches it as usual.
 */
bool hotkey_get(struct hotkey *hk, struct session *s, const char *key, size_t len);

/* A key written through bulwark (or named on the keyspace watch). */
void hotkey_invalidate(struct hotkey *hk, const char *key, size_t len);

/*
 * A key written through bulwark: invalidate it, and send the GETs a lease
 * held for it upstream (they were asked before the write).
 */
void hotkey_on_write(struct hotkey *hk, const char *key, size_t len);

/* SET key value through bulwark: held GETs of key get value (call first). */
void hotkey_on_set(struct hotkey *hk, const struct resp_request *req);

/* FLUSHALL seen or the watch lost: drop every entry. */
void hotkey_flush(struct hotkey *hk);

/*
 * In front of a Redis Cluster: the watch w of a master was lost or saw a
 * flush; the entries it guarded (keys whose slot's master has w) and the
 * fills in flight for them are dropped, the other masters' stay.
 */
void hotkey_watch_flushed(struct hotkey *hk, const struct watch *w);

/*
 * In front of a Redis Cluster: the slots whose bit is set in changed
 * (CLUSTER_SLOTS bits, slot s at changed[s / 8] bit s % 8) have a new
 * master; their entries and fills in flight are dropped.
 */
void hotkey_slots_moved(struct hotkey *hk, const uint8_t *changed);

/* Lease timeouts; called by the proxy's cron. */
void hotkey_cron(struct hotkey *hk, uint64_t now_ms);

/* The "# Hotkeys" INFO section, summed over hks (n hot caches, one per database). */
void hotkey_info(struct hotkey *const *hks, size_t n, struct evbuffer *out);

/* BULWARK HOTKEYS [N]: flat array of key, estimated reads/s (as a string). */
void hotkey_top_reply(struct hotkey *hk, size_t n, struct evbuffer *out);

#endif
