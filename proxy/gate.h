/*
 * gate: the Bloom filter gate's request side. Reads whose keys are all
 * definitely absent (per watch.c's filter) are answered locally with Redis's
 * own reply for a missing key; the keys of every write are added to the
 * filter when the write is forwarded, so read-your-writes through bulwark is
 * exact.
 */
#ifndef BW_GATE_H
#define BW_GATE_H

#include <stdbool.h>
#include <stdint.h>

struct client;
struct cmd_info;
struct cmd_table;
struct proxy;
struct hotkey;
struct resp_request;

/* Attach the gate's rule (cmd_info.gate) to each gated read of t. */
void gate_apply(struct cmd_table *t);

/*
 * A gated read (ci->gate set; arity and AUTH checked). Returns true when the
 * client got its reply or the request was forwarded here (MGET/EXISTS with
 * only their maybe-present keys, or any read with the passed-nil count);
 * false to forward it as it came (gate open, arguments Redis would reject).
 */
bool gate_read(struct client *c, const struct cmd_info *ci, const struct resp_request *req);

/*
 * A write (ci has CMD_WRITE) of client writer: add its keys (cmd_get_keys())
 * to the filter, drop them from hk, the hot cache of the client's database
 * (NULL: none), and tell the CLIENT TRACKING clients that read them.
 */
void gate_note_write(struct proxy *px, struct hotkey *hk, const struct cmd_info *ci,
                     const struct resp_request *req, uint64_t writer);

#endif
