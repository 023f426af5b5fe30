/*
 * proxy: the one shared context of a bulwark worker — configuration, event
 * base, upstream pool, command table, clients and counters. A plain struct,
 * no functions: each module takes what it needs from it.
 */
#ifndef BW_PROXY_H
#define BW_PROXY_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/queue.h>

#include "config/config.h"
#include "proxy/cmdstats.h"
#include "proxy/jitter.h"
#include "proxy/stats.h"

struct event_base;
struct event;
struct cmd_table;
struct upstream_pool;
struct listener;
struct watch;
struct batch;
struct cmd_info;
struct keyspace;
struct client;
struct metrics;
struct session;
struct router;
struct slot;

TAILQ_HEAD(session_list, session);

TAILQ_HEAD(client_list, client);

/* The worker's context; lives from start-up to exit in main(). */
struct proxy {
    struct cfg cfg;               /* configuration in force (owned) */
    const char *config_path;      /* file given on the command line or NULL (borrowed argv) */
    struct event_base *base;      /* the worker's event loop (owned) */
    struct cmd_table *cmds;       /* command table in force (owned); replaced when learned */
    bool cmds_learned;            /* true once cmds came from the upstream's COMMAND */
    char upstream_version[32];    /* redis_version of the upstream, "7.0.0" until known */
    int databases;                /* databases a client may SELECT: upstream-databases,
                                      else the upstream's CONFIG GET databases (16 until
                                      known) */
    struct upstream_pool *pool;   /* multiplexed upstream connections (owned); in front of
                                      a Redis Cluster, the seed node's */
    struct router *router;        /* Redis Cluster slot map and per-master pools (owned,
                                      router.h), NULL for one Redis */
    struct watch *watch;          /* keyspace watch and Bloom filter (owned) */
    bool watch_needed;            /* a client turned CLIENT TRACKING on: every keyspace
                                      watch runs, bloom and hotkey off or not */
    uint64_t watch_flushes;       /* flushes and losses any keyspace watch told so far */
    struct keyspace **keyspaces;  /* per database, created on first use (owned; keyspace.h) */
    struct tracking *tracking;    /* CLIENT TRACKING served to bulwark's clients (owned) */
    struct event *tracking_ev;    /* zero-timeout event: BCAST messages of the keys changed
                                      this loop turn go out (owned) */
    struct inflight *trk_writes;  /* keys of writes through bulwark in flight while
                                      someone tracks: the watch's echo names their writer
                                      (owned, inflight.h) */
    uint64_t trk_flushes;         /* FLUSHALL/FLUSHDB through bulwark in flight */
    uint64_t trk_flush_writer;    /* the client of the last of them */
    size_t nkeyspaces;            /* entries in keyspaces (NULL where unused) */
    struct listener *listener;    /* listening sockets (owned), NULL once closed */
    struct session_list sessions; /* every live client's session (each owned by its
                                      connection, client.c) */
    struct session **by_id;       /* live sessions by id: open addressing, linear probing
                                      (owned array of by_id_cap, a power of two; NULL:
                                      empty), for messages addressed to a client id */
    size_t by_id_cap, by_id_n;    /* slots in by_id; sessions in it */
    struct client_list reaped;    /* clients closed, freed by reap_ev (owned) */
    struct event *reap_ev;        /* zero-timeout event that frees reaped clients (owned) */
    struct event *cron_ev;        /* 100 ms periodic housekeeping (owned) */
    uint64_t next_client_id;      /* id of the next accepted client, from 1 */
    uint64_t input_seq;           /* client socket reads so far: the keyspace watch is
                                      drained before a local answer when it moved */
    bool shutting_down;           /* SIGTERM/SIGINT seen: accept nothing new */
    struct stats stats;           /* counters for INFO proxy */
    struct cmdstats cmdstats;     /* per-command counters and latencies, upstream round
                                      trips, keys per batch (INFO bulwark_commandstats,
                                      /metrics) */
    struct metrics *metrics;      /* the /metrics HTTP server (owned), NULL when off */
    struct jitter_rng jitter_rng; /* TTL jitter draws of this worker */
    void (*on_batch_nil)(struct proxy *px); /* a batched GET read nil (main wires the
                                      gate's stale-filter count), or NULL */
    bool (*on_batch_redirect)(struct proxy *px, const char *key, size_t len,
                              struct slot **waiters, size_t n, const char *reply,
                              size_t rlen); /* a batched GET's error reply (len bytes): true
                                      when it was a cluster redirect and the hook took
                                      the waiters (main wires cfwd's), or NULL */
    void (*on_slots_moved)(struct proxy *px,
                           const uint8_t *changed); /* slots of the cluster's map have
                                      another master now (MOVED, a map read after a
                                      failover or resharding; changed: a bitmap of
                                      CLUSTER_SLOTS bits): what the old ones' watches
                                      guarded goes (main wires the hot caches'), or NULL */
};

#endif
