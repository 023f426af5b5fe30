/*
 * inflight: writes through bulwark whose reply has not come back, by key —
 * so that when the keyspace watch names one of those keys, bulwark knows
 * the change is (most likely) that write's own echo and can tell CLIENT
 * TRACKING clients who wrote it (NOLOOP; a writer's own invalidation goes
 * after its reply). Pure: libc, util and xxhash.
 *
 * An entry is added when a write is forwarded and removed when its reply
 * arrives (after the watch's socket was drained: on one host Redis writes
 * the tracking message before the writer's reply), so the table holds only
 * what is in flight.
 */
#ifndef BW_INFLIGHT_H
#define BW_INFLIGHT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct inflight;

struct inflight *inflight_new(void);
void inflight_free(struct inflight *f); /* NULL ok */

/* A write of client writer (> 0) to key (len bytes, copied) was forwarded. */
void inflight_add(struct inflight *f, const char *key, size_t len, uint64_t writer);

/*
 * The watch named key: the writer of the latest write in flight to it (its
 * echo is marked seen), or 0 when none is (a change made elsewhere).
 */
uint64_t inflight_echo(struct inflight *f, const char *key, size_t len);

/*
 * A write to key got its reply: drop one entry of writer for key. Returns
 * true when the watch named the key while it was in flight.
 */
bool inflight_done(struct inflight *f, const char *key, size_t len, uint64_t writer);

/* Entries in the table. */
size_t inflight_count(const struct inflight *f);

#endif
