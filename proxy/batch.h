/*
 * batch: GET coalescing. Every GET that reaches the upstream side during one
 * event-loop turn, from any client, joins the batch of its upstream
 * connection; identical keys share one entry (single flight); when the turn
 * ends (or batch-max-keys keys wait, or batch-window µs passed) the batch
 * goes upstream as back-to-back GETs (batch-mode pipeline) or one MGET
 * (batch-mode mget, whose nils are re-checked with a lone GET so that
 * WRONGTYPE and absent keys come out exactly as a lone GET's).
 *
 * Ordering: a client's replies stay in request order through its reply slots.
 * Its writes must not overtake its own batched GETs: in pipeline mode a
 * client that forwards anything else first flushes the batch it has keys in
 * (same connection, so Redis sees them in order); in mget mode, where a
 * re-check may come later, the client is not read further until its batched
 * GETs are answered (stages.c asks batch_client_busy()).
 */
#ifndef BW_BATCH_H
#define BW_BATCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct evbuffer;
struct session;
struct proxy;
struct batch;
struct upstream_conn;
struct slot;
struct resp_request;

/* Modes of batch-mode. */
enum batch_mode { BATCH_PIPELINE = 0, BATCH_MGET = 1 };

/*
 * A batcher for one upstream connection (borrowed); counts into px->stats
 * (batch_batches, batch_keys, batch_max_keys_seen, batch_dedup_saved,
 * batch_rechecks).
 */
struct batch *batch_new(struct proxy *px, struct upstream_conn *up, int db);

/* GETs only, whatever batch-mode says (a Redis Cluster node's batcher). */
void batch_set_pipeline_only(struct batch *b);

/* Send what waits, then free. Waiting GETs get their replies later. NULL ok. */
void batch_free(struct batch *b);

/*
 * Queue a GET of key (len bytes, copied) for session s: s gets a reply slot
 * now and the reply when the batch is answered.
 */
void batch_get(struct batch *b, struct session *s, const char *key, size_t len);

/*
 * Queue a GET of key (len bytes, copied) for an existing reply slot (one
 * from slot_new(…, SLOT_BATCHED), e.g. a GET a lease held). b may be NULL
 * only for an orphaned slot, which is then just released.
 */
void batch_get_slot(struct batch *b, struct slot *slot, const char *key, size_t len);

/*
 * MGET of s split into its keys, each coalesced like a GET; the client gets
 * one array reply, in key order, as Redis's MGET gives it (a key holding
 * another type reads as nil). fetch (argc-1 flags, may be NULL: all) says
 * which keys to ask for; the others are nil (the Bloom gate knows them
 * absent). An upstream error for any key is the whole reply, as when the
 * MGET itself fails.
 */
void batch_mget(struct batch *b, struct session *s, const struct resp_request *req,
                const bool *fetch);

/*
 * Before s forwards anything but a batched GET: in pipeline mode, send the
 * batch if s has keys waiting in it.
 */
void batch_before_forward(struct batch *b, struct session *s);

/*
 * Free the entries kept for reuse and the encoding buffer (at shutdown,
 * after every batcher and upstream connection is gone: entries answered
 * later are freed, not kept).
 */
void batch_cache_free_all(void);

/* mget mode: true while s has batched GETs not yet answered. */
bool batch_client_busy(const struct batch *b, const struct session *s);

#endif
