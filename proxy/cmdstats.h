/*
 * cmdstats: per-command request counters and latency histograms of the
 * requests bulwark handled (INFO bulwark_commandstats / bulwark_latencystats,
 * /metrics). Pure: the caller passes the time. Hot path is a few stores and
 * increments into arrays indexed by a command's stat_id; no allocation per
 * request (a command's histogram is allocated once, at its first request).
 *
 * Usage, per request, in request order:
 *   cmdstats_begin(cs, now_us)       the request was parsed
 *   cmdstats_command(cs, ci)         its command is known (else "unknown")
 *   cmdstats_answered(cs, by)        the stage that took it (first one wins;
 *                                    default CMDSTATS_BY_LOCAL)
 *   cmdstats_slot(cs, &slot->req)    a reply slot was made for it (its reply
 *                                    is written later)
 *   cmdstats_end(cs, now_us)         handling returned: counted; timed now
 *                                    when no slot was made
 *   cmdstats_done(cs, &slot->req, now_us)  the slot's reply moved to the
 *                                    client's output: timed
 * Requests of pinned sessions are counted, not timed (a session's replies
 * have no one-to-one slot). Known gap: a request bulwark answers itself in
 * the middle of a pinned session (CLIENT ID …) is timed until the session's
 * next slot is flushed, as client.c makes that slot inside its handling.
 */
#ifndef BW_CMDSTATS_H
#define BW_CMDSTATS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cmd_info;
struct cmd_table;

/* Most distinct command names (commands and "container|sub"). */
#define CMDSTATS_MAX 1024
/* Histogram bins: 0..8 one each, then 8 per power of two up to 2^32. */
#define CMDSTATS_BINS (9 + 29 * 8)

/* Who answered a request (the "answered_by" label). */
enum cmdstats_by {
    CMDSTATS_BY_LOCAL = 0, /* bulwark itself: local commands, errors, refusals */
    CMDSTATS_BY_GATE,      /* the Bloom gate: every key definitely absent */
    CMDSTATS_BY_HOTCACHE,  /* the hot-key cache (or a lease on it) */
    CMDSTATS_BY_BATCH,     /* a coalesced GET batch */
    CMDSTATS_BY_UPSTREAM,  /* forwarded on the shared upstream connection */
    CMDSTATS_BY_PINNED,    /* forwarded on a dedicated (pinned) connection */
    CMDSTATS_BY_N
};

/* Label values of enum cmdstats_by, indexed by it. */
extern const char *const cmdstats_by_names[CMDSTATS_BY_N];

/*
 * A log-linear histogram of non-negative integers (µs, keys): values 0..8
 * have a bin each; above, each power of two is split into 8 bins, so a bin's
 * upper bound is within 12.5% of any value in it (HdrHistogram's layout with
 * 3 bits of sub-bucket). Values above 2^32 go to the last bin. Every power
 * of two is a bin's upper bound, so counts at or below one are exact.
 */
struct cmdstats_hist {
    uint64_t count;               /* values added */
    uint64_t sum;                 /* their sum (µs for latencies) */
    uint64_t bins[CMDSTATS_BINS]; /* values per bin, see cmdstats_hist_upper() */
};

/* One command's counters. */
struct cmdstats_cmd {
    char name[48];                 /* "get", "config|get"; "" for a free id */
    uint64_t calls[CMDSTATS_BY_N]; /* requests, by who answered */
    struct cmdstats_hist *lat;     /* latency, µs (owned), NULL until the first */
};

/* The request being handled, or the one a reply slot belongs to. */
struct cmdstats_req {
    uint64_t start_us; /* when it was parsed, µs (the caller's clock) */
    uint32_t id;       /* its command's stat id; 0 = unknown command */
    bool timed;        /* its latency is to be recorded */
};

/* Every counter of a worker. */
struct cmdstats {
    struct cmdstats_cmd cmds[CMDSTATS_MAX]; /* by stat id; 0 is "unknown" */
    uint32_t ncmds;                         /* ids in use (1 + names interned) */
    struct cmdstats_req cur;                /* the request being handled */
    uint8_t cur_by;                         /* enum cmdstats_by of cur; CMDSTATS_BY_N = unset */
    bool cur_slotted;                       /* cur got a reply slot */
    struct cmdstats_req *cur_slot;          /* that slot's copy (borrowed), NULL once done */
    struct cmdstats_hist upstream_rtt;      /* upstream round trips, µs */
    struct cmdstats_hist batch_keys;        /* keys per coalesced GET batch */
};

/* Zero everything; id 0 is "unknown". */
void cmdstats_init(struct cmdstats *cs);

/* Free the histograms. */
void cmdstats_deinit(struct cmdstats *cs);

/* CONFIG RESETSTAT: zero the counters and histograms; ids are kept. */
void cmdstats_reset(struct cmdstats *cs);

/*
 * The stat id of name (lowercase, NUL-terminated), interned on first use;
 * 0 ("unknown") when CMDSTATS_MAX names are taken.
 */
uint32_t cmdstats_intern(struct cmdstats *cs, const char *name);

/*
 * Set stat_id of every command and subcommand of t (by fullname), so the
 * same name keeps its id when the table is replaced.
 */
void cmdstats_assign_table(struct cmdstats *cs, struct cmd_table *t);

/* The bin of value v (see struct cmdstats_hist). */
static inline size_t
cmdstats_hist_bin(uint64_t v)
{
    if (v <= 8)
        return (size_t)v;
    uint64_t x = v - 1;
    int msb = 63 - __builtin_clzll(x);
    if (msb > 31)
        return CMDSTATS_BINS - 1;
    int shift = msb - 3;
    return 9 + (size_t)(msb - 3) * 8 + (size_t)((x >> shift) & 7);
}

/* Add value v to h. */
static inline void
cmdstats_hist_add(struct cmdstats_hist *h, uint64_t v)
{
    h->count++;
    h->sum += v;
    h->bins[cmdstats_hist_bin(v)]++;
}

/* Inclusive upper bound of bin i (values v with bin(v) == i are <= it). */
uint64_t cmdstats_hist_upper(size_t i);

/*
 * The value at percentile p (0 < p <= 100) of h: the upper bound of the bin
 * holding the ceil(p% × count)-th smallest value, as HdrHistogram's
 * value_at_percentile gives the highest equivalent value. 0 when empty.
 */
uint64_t cmdstats_hist_percentile(const struct cmdstats_hist *h, double p);

/* Values of h that are <= le (exact when le is a bin's upper bound). */
uint64_t cmdstats_hist_count_le(const struct cmdstats_hist *h, uint64_t le);

/* ---- the request hooks (see the usage at the top) ----------------------- */

/* Add now_us - r->start_us (0 if the clock went back) to r's command's latency. */
void cmdstats_record(struct cmdstats *cs, const struct cmdstats_req *r, uint64_t now_us);

static inline void
cmdstats_begin(struct cmdstats *cs, uint64_t now_us)
{
    cs->cur.start_us = now_us;
    cs->cur.id = 0;
    cs->cur.timed = true;
    cs->cur_by = CMDSTATS_BY_N;
    cs->cur_slotted = false;
    cs->cur_slot = NULL;
}

/* ci may be NULL (unknown command). */
void cmdstats_command(struct cmdstats *cs, const struct cmd_info *ci);

static inline void
cmdstats_answered(struct cmdstats *cs, enum cmdstats_by by)
{
    if (cs->cur_by == CMDSTATS_BY_N)
        cs->cur_by = (uint8_t)by;
}

/* The request went to a pinned session: counted as such, never timed. */
static inline void
cmdstats_pinned(struct cmdstats *cs)
{
    cs->cur_by = CMDSTATS_BY_PINNED;
    cs->cur.timed = false;
    if (cs->cur_slot != NULL)
        cs->cur_slot->timed = false; /* the session's slot, made for this request */
}

static inline void
cmdstats_slot(struct cmdstats *cs, struct cmdstats_req *slot_req)
{
    *slot_req = cs->cur;
    if (cs->cur_slotted) {
        slot_req->timed = false; /* a request's second slot: timed by its first */
        return;
    }
    cs->cur_slotted = true;
    cs->cur_slot = slot_req;
}

static inline void
cmdstats_done(struct cmdstats *cs, struct cmdstats_req *slot_req, uint64_t now_us)
{
    if (cs->cur_slot == slot_req)
        cs->cur_slot = NULL;
    if (slot_req->timed)
        cmdstats_record(cs, slot_req, now_us);
}

void cmdstats_end(struct cmdstats *cs, uint64_t now_us);

/* ---- reading ---------------------------------------------------------- */

/* Requests of command id (all answerers). */
uint64_t cmdstats_calls(const struct cmdstats *cs, uint32_t id);

/*
 * Redis's "cmdstat_<name>:calls=…,usec=…,usec_per_call=…,rejected_calls=0,
 * failed_calls=0" line of command id (without CRLF) into out (size bytes,
 * truncated as snprintf). usec is the client-observed time through bulwark.
 * Returns false when id has no calls (nothing written).
 */
bool cmdstats_format_commandstat(const struct cmdstats *cs, uint32_t id, char *out, size_t size);

/*
 * Redis 7's "latency_percentiles_usec_<name>:p50=…,p99=…,p99.9=…" line
 * (without CRLF) of command id into out. Returns false when id was never
 * timed.
 */
bool cmdstats_format_latencystat(const struct cmdstats *cs, uint32_t id, char *out, size_t size);

#endif
