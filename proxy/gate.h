/*
 * gate: the Bloom filter gate's request side. Reads whose keys are all
 * definitely absent (per watch.c's filter) are answered locally with Redis's
 * own reply for a missing key (writes.c adds the keys of every write to the
 * filter when the write is forwarded, so read-your-writes through bulwark is
 * exact).
 */
#ifndef BW_GATE_H
#define BW_GATE_H

#include <stdbool.h>
#include <stdint.h>

struct session;
struct cmd_info;
struct cmd_table;
struct proxy;
struct resp_request;

/* Attach the gate's rule (cmd_info.gate) to each gated read of t. */
void gate_apply(struct cmd_table *t);

/* MGET with some keys absent: which positions may exist (to be fetched). */
struct gate_mget {
    int nkeys;      /* keys in the client's MGET */
    bool present[]; /* nkeys flags: true = may exist, fetched from upstream */
};

/*
 * A gated read (ci->gate set; arity and AUTH checked). Returns true when the
 * client got its reply or the request was forwarded here (MGET/EXISTS with
 * only their maybe-present keys, or any read with the passed-nil count);
 * false to pass it on (gate open, arguments Redis would reject). An MGET
 * with some keys absent, when mget_rest is not NULL, is passed on with
 * *mget_rest set (owned by the caller, bw_free): the next stage fetches the
 * present keys and answers the others nil.
 */
bool gate_read(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
               struct gate_mget **mget_rest);

/* px->on_batch_nil: a batched GET that passed the gate read nil (stale filter). */
void gate_batch_nil(struct proxy *px);

#endif
