/*
 * stats: bulwark's own counters and the text of its INFO sections, in
 * Redis's INFO format ("# Section\r\n" then "name:value\r\n" lines).
 */
#ifndef BW_STATS_H
#define BW_STATS_H

#include <stdint.h>

struct evbuffer;
struct event_base;

#define STATS_OPS_SAMPLES 16 /* as Redis's STATS_METRIC_SAMPLES */

/* Counters of one worker. All totals count since start or CONFIG RESETSTAT. */
struct stats {
    uint64_t start_ms;                   /* monotonic start time, ms */
    uint64_t connected_clients;          /* clients connected now */
    uint64_t total_connections;          /* clients accepted */
    uint64_t rejected_connections;       /* refused by maxclients */
    uint64_t total_commands;             /* requests parsed and handled */
    uint64_t net_input_bytes;            /* bytes read from clients */
    uint64_t net_output_bytes;           /* bytes queued to clients */
    uint64_t forwarded;                  /* requests sent upstream */
    uint64_t upstream_errors;            /* requests answered -ERR because the upstream failed */
    uint64_t protocol_errors;            /* clients closed for a protocol error */
    uint64_t client_output_limit_closed; /* clients closed by client-output-buffer-limit */
    uint64_t ttl_jittered_writes;        /* writes whose TTL was lengthened */
    uint64_t ttl_jitter_added_ms;        /* sum of the TTL added, ms */
    uint64_t batch_batches;              /* GET batches sent upstream */
    uint64_t batch_keys;                 /* distinct keys in those batches */
    uint64_t batch_max_keys_seen;        /* most keys in one batch */
    uint64_t batch_dedup_saved;          /* GETs that joined a key already waiting */
    uint64_t batch_rechecks;             /* mget-mode nils re-checked with GET */
    uint64_t ops_samples[STATS_OPS_SAMPLES]; /* ops/sec samples, ring */
    int ops_idx;                             /* next sample slot */
    uint64_t ops_last_ms;                    /* time of the last sample, ms */
    uint64_t ops_last_count;                 /* total_commands at the last sample */
};

/* Zero the counters and record the start time (now). */
void stats_init(struct stats *s);

/* CONFIG RESETSTAT: zero the totals, keep connected_clients and start_ms. */
void stats_reset(struct stats *s);

/*
 * Take an ops/sec sample (call every 100 ms or so; Redis's
 * trackInstantaneousMetric does the same over 16 samples).
 */
void stats_sample(struct stats *s, uint64_t now_ms);

/* Instantaneous ops/sec: the mean of the samples. */
uint64_t stats_ops_per_sec(const struct stats *s);

/*
 * The loop's time of this turn, µs: libevent's cached clock (monotonic,
 * read once when the loop wakes up), so timing a request costs no clock
 * read. Requests answered in the turn they were read in take 0 µs by it.
 */
uint64_t stats_loop_us(struct event_base *base);

#endif
