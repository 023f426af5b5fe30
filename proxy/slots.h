/*
 * slots: one connection's replies in request order. Every request gets a
 * reply slot at the tail of its connection's queue; whoever answers it (the
 * upstream, the batcher, the hot-key cache, a local command) completes the
 * slot, and ready slots at the head move to the connection's output. So a
 * pipeline answered from different places keeps its order (twemproxy's
 * per-connection message queue; Envoy's redis_proxy pending requests).
 *
 * The queue knows nothing of sockets or clients: its owner hands it the
 * output buffer and is told through two callbacks when slots moved out and
 * when held bytes grew (back-pressure and output limits are the owner's).
 *
 *   slot_new(q)            pending, at the tail (counted by kind)
 *   slot_finish(s, …)      complete with a copy   \  the head's bytes go
 *   slot_finish_move(s, …) complete, bytes moved   >  straight to the output,
 *   slot_output(s) + slot_ready(s)                /   the others are parked
 *   slotq_target(q)        where a reply made now goes: the output when
 *                          nothing is pending, else a new ready slot
 *   slotq_orphan(q)        the owner closes: pending slots are orphaned,
 *                          freed by whoever completes them
 *
 * A detached slot (slot_new_detached) belongs to no queue: its reply goes to
 * a callback (the parts of a coalesced MGET).
 */
#ifndef BW_SLOTS_H
#define BW_SLOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/queue.h>

#include "proxy/cmdstats.h"

struct evbuffer;
struct event_base;
struct session;
struct slot;

/* What a slot counts as while pending (slotq.nbatched / nheld). */
enum slot_kind {
    SLOT_PLAIN = 0, /* anything */
    SLOT_BATCHED,   /* a GET sent through the batcher or the hot-key cache */
};

/*
 * Rewrites an upstream reply for the client (INFO, CONFIG GET …). Called
 * once: with s and out set it writes the client's reply into out (reply/len/
 * err as for upstream_reply_fn); with s NULL (client gone) it only releases
 * data. Takes ownership of data.
 */
typedef void slot_filter_fn(struct session *s, struct evbuffer *reply, size_t len,
                            const char *err, struct evbuffer *out, void *data);

/* Receives a detached slot's reply (len bytes at data, valid for the call). */
typedef void slot_fn(void *data, const char *reply, size_t len);

/*
 * Told when the slot's reply is in (answered true; the queue's owner is
 * alive, the slot is ready but not moved out yet) or when the slot is freed
 * unanswered (answered false, owner NULL: it was orphaned). Once.
 */
typedef void slot_hook_fn(struct session *owner, void *arg, bool answered);

/* One request whose reply has not reached the output yet. */
struct slot {
    TAILQ_ENTRY(slot) link;  /* in slotq.head, request order */
    struct slotq *q;         /* its queue; NULL once orphaned, or detached */
    bool ready;              /* reply complete (in buf) */
    bool batched;            /* counted in q->nbatched */
    bool held;               /* counted in q->nheld (a GET held by a hot-key lease) */
    bool muted;              /* made under q->mute: its reply is dropped, never out */
    slot_fn *fn;             /* detached slot: receives the reply */
    void *fn_data;           /* its argument (borrowed) */
    struct evbuffer *buf;    /* the reply while it waits behind others (owned), or NULL */
    slot_filter_fn *filter;  /* rewrites the upstream reply, or NULL */
    void *filter_data;       /* filter's data (owned by the filter call) */
    slot_hook_fn *hook;      /* told when answered or dropped, or NULL */
    void *hook_arg;          /* its argument (owned by the hook) */
    struct cmdstats_req req; /* its request's command and start, for cmdstats */
};

TAILQ_HEAD(slot_list, slot);

/* The owner's side. */
struct slotq_ops {
    void (*flushed)(struct session *owner); /* ready slots moved to the output (or the
                                               queue changed: holds may be released) */
    void (*grew)(struct session *owner);    /* parked bytes grew: check output limits */
};

/* One connection's queue (the owner's storage: slotq_init / slotq_orphan). */
struct slotq {
    struct slot_list head;       /* pending and parked replies, request order (owned) */
    uint64_t n;                  /* slots in head */
    uint64_t nbatched;           /* of them, batched GETs not answered yet */
    uint64_t nheld;              /* of them, GETs held by hot-key leases not answered yet */
    size_t parked_bytes;         /* bytes in the bufs of slots not at the head */
    int proto;                   /* the client's RESP version: RESP2 nulls of bulwark's
                                    own making become "_" for RESP3 */
    bool drop;                   /* the owner is closing for its output limit: replies
                                    are dropped */
    struct evbuffer *out;        /* the connection's output (borrowed) */
    bool mute;                   /* slots made while set are muted: a session's
                                    CLIENT REPLY OFF/SKIP (set and cleared by the owner) */
    struct session *owner;       /* passed to ops (borrowed) */
    const struct slotq_ops *ops; /* borrowed, static */
    struct cmdstats *cs;         /* per-command latencies (borrowed) */
    struct event_base *base;     /* its cached loop time stamps the replies (borrowed) */
};

void slotq_init(struct slotq *q, struct evbuffer *out, struct session *owner,
                const struct slotq_ops *ops, struct cmdstats *cs, struct event_base *base);

/* A new pending slot at the tail of q, of kind. */
struct slot *slot_new(struct slotq *q, enum slot_kind kind);

/* A slot of no queue: slot_finish() hands its reply to fn(data, …) and frees it. */
struct slot *slot_new_detached(slot_fn *fn, void *data);

/* s is a GET held by a hot-key lease (q->nheld) until answered. */
void slot_mark_held(struct slot *s);

/*
 * Complete s with a copy of len bytes at data and move what is ready to
 * the output. A whole RESP2 null ("$-1", "*-1": bulwark's own or a RESP2
 * fetch) becomes "_" for a RESP3 queue. Frees an orphaned or detached s.
 */
void slot_finish(struct slot *s, const char *data, size_t len);

/* slot_finish() of the len bytes at the head of src, moved (drained unless orphaned). */
void slot_finish_move(struct slot *s, struct evbuffer *src, size_t len);

/*
 * Where s's reply bytes go now: the output when s is at the head, else its
 * parked buffer. For writers that complete s in several steps (filters, a
 * pinned session's stream), then slot_ready().
 */
struct evbuffer *slot_output(struct slot *s);

/* s is complete (bytes written with slot_output): hook told, ready slots moved out. */
void slot_ready(struct slot *s);

/* True when s is the head of its queue. */
bool slot_is_head(const struct slot *s);

/* True when s is the tail of its queue. */
bool slot_is_tail(const struct slot *s);

/*
 * Free s, which is orphaned (q NULL) or detached and was answered or never
 * will be (its filter and hook are told).
 */
void slot_free(struct slot *s);

/*
 * The buffer a reply made now goes to: the output, or a new ready slot's
 * (a muted one while q->mute). Once per reply.
 */
struct evbuffer *slotq_target(struct slotq *q);

/* Move ready slots at the head to the output; tell the owner. */
void slotq_flush(struct slotq *q);

/* The owner goes: ready slots are freed, pending ones orphaned. */
void slotq_orphan(struct slotq *q);

/* Slots freed from now on go back to the heap (exit: bw_free every cached one). */
void slot_cache_free_all(void);

#endif
