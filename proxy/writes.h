/*
 * writes: the stage every write passes on its way upstream, shared and
 * pinned alike. It transforms and passes on, never answers:
 *   - keys computed once (cmd_get_keys): each is added to the Bloom filter
 *     (before the write is sent, so the gate never answers nil for it), its
 *     hot-cache entry dropped, and, while anyone tracks, the write
 *     attributed to its client (ctrack.h);
 *   - a SET's value wakes the GETs a hot key's lease holds (hotkey.h);
 *   - FLUSHALL, FLUSHDB, SWAPDB (and COPY with options) empty every hot
 *     cache: a read pipelined after them is not answered from before;
 *   - TTL jitter: a cache write with an expiry may be rewritten with a
 *     longer TTL (rules in jitter.h).
 */
#ifndef BW_WRITES_H
#define BW_WRITES_H

#include <stdbool.h>
#include <stddef.h>

struct cmd_info;
struct cmd_table;
struct resp_request;
struct session;

/* Mark the commands of this stage in t (CMD_RULE_JITTER, _WIDE, _FLUSH, _LEASE_SET). */
void writes_apply(struct cmd_table *t);

/*
 * Everything but jitter for request req of s (ci: its command, subcommand
 * resolved). shared: it goes to a shared connection now (a SET inside a
 * session, which may be a transaction's, wakes no lease).
 */
void writes_note(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
                 bool shared);

/*
 * TTL jitter: true with *out (owned by the caller, bw_free) and *outlen set
 * to the request with a lengthened TTL; false to send it as it came.
 */
bool writes_jitter(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
                   char **out, size_t *outlen);

#endif
