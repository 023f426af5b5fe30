/*
 * config: struct cfg, the directive table (names, types, defaults, bounds,
 * help), the redis.conf-style parser, command-line overrides, CONFIG GET/SET
 * and SIGHUP reload. Pure: libc only (no util.h, no log.h).
 */
#ifndef BW_CONFIG_H
#define BW_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define CFG_OK 0
#define CFG_ERR -1
/* cfg_reload(): runtime directives applied, some others need a restart. */
#define CFG_RELOAD_PARTIAL 1

/* Deepest include nesting accepted (the top file is depth 1). */
#define CFG_INCLUDE_DEPTH_MAX 16

/* Classes of "client-output-buffer-limit" (index of struct cfg.client_obl). */
#define CFG_OBL_NORMAL 0  /* every client not subscribed (MONITOR too, as Redis) */
#define CFG_OBL_REPLICA 1 /* Redis's replica ("slave") class: bulwark has none, kept for CONFIG */
#define CFG_OBL_PUBSUB 2  /* subscribed to a channel, pattern or shard channel */
#define CFG_OBL_CLASSES 3

/* One class of client-output-buffer-limit (Redis's clientBufferLimitsConfig). */
struct cfg_obl {
    uint64_t hard_bytes;   /* held bytes at which the client is closed at once; 0 = none */
    uint64_t soft_bytes;   /* held bytes that close it once held for more than
                              soft_seconds without a break; 0 = none */
    uint64_t soft_seconds; /* seconds, see soft_bytes */
};

/*
 * The whole configuration. Filled by cfg_init() with the defaults of the
 * directive table, then by cfg_load_file() and cfg_apply_args(). Every
 * string and list is owned by the struct and freed by cfg_deinit(); an
 * unset string is NULL (an empty value in the file, "", also means NULL).
 * Durations are stored in milliseconds whatever their bare unit.
 */
/* upstream-cluster values. */
enum cfg_cluster { CFG_CLUSTER_AUTO = 0, CFG_CLUSTER_NO = 1, CFG_CLUSTER_YES = 2 };

struct cfg {
    /* "bind": TCP addresses to listen on, owned; default 127.0.0.1 */
    char **bind;
    size_t bind_count; /* entries in bind; 0 = no TCP address */
    /* "port" 0..65535, default 6380; 0 = no TCP listener */
    int port;
    char *unixsocket; /* "unixsocket" path, owned; NULL = none */
    /* "unixsocketperm" mode bits 0..0777 (octal in text); 0 = umask's */
    int unixsocketperm;
    /* "maxclients" clients at once, 1..1000000, default 10000; runtime */
    int maxclients;
    int timeout; /* "timeout" idle seconds before close, 0 = never; runtime */
    /* "tcp-keepalive" seconds between probes, 0 = off, default 300; runtime */
    int tcp_keepalive;
    int tcp_backlog; /* "tcp-backlog" listen(2) backlog, default 511 */
    /* "proto-max-bulk-len" bytes of a bulk string, >= 1mb, 512mb; runtime */
    uint64_t proto_max_bulk_len;
    /* "client-query-buffer-limit" bytes per client, >= 1mb, 1gb; runtime */
    uint64_t client_query_buffer_limit;
    /*
     * "client-max-pending" requests in flight per client before bulwark
     * stops reading it, 1..1000000, default 10000; runtime
     */
    int client_max_pending;
    /*
     * "client-output-buffer-limit" per class, Redis's syntax; default
     * normal 1gb 256mb 60, replica 256mb 64mb 60, pubsub 32mb 8mb 60;
     * runtime, and also set on Redis by CONFIG SET (cfg_is_shared)
     */
    struct cfg_obl client_obl[CFG_OBL_CLASSES];
    char *requirepass; /* "requirepass", owned; NULL = no AUTH; runtime */
    /* "upstream" host name or address (IPv6 without brackets), owned */
    char *upstream_host;
    int upstream_port; /* "upstream" port 1..65535; default 127.0.0.1:6379 */
    /* "upstream-password", owned; NULL = no AUTH to the upstream */
    char *upstream_password;
    /* "upstream-user", owned; NULL = AUTH <password> (the default user) */
    char *upstream_user;
    int upstream_db;          /* "upstream-db": retired, only 0 is accepted */
    int upstream_databases;   /* "upstream-databases" 0..2147483647, default 0 (learn) */
    int upstream_connections; /* "upstream-connections" 1..64, default 1 */
    int upstream_cluster;     /* "upstream-cluster": CFG_CLUSTER_AUTO, _NO, _YES */
    /* "cluster-refresh-interval" ms, 100..3600000, default 10000; runtime */
    uint64_t cluster_refresh_interval_ms;
    /* "upstream-connect-timeout" ms, 1..3600000, default 1000; runtime */
    uint64_t upstream_connect_timeout_ms;
    /* "upstream-timeout" ms per request, 1..3600000, default 5000; runtime */
    uint64_t upstream_timeout_ms;
    /* "upstream-retry-max" ms, cap of reconnect backoff, 1000; runtime */
    uint64_t upstream_retry_max_ms;
    /* "deny-commands" names as written, owned; SHUTDOWN DEBUG; runtime */
    int tracking_table_max_keys; /* "tracking-table-max-keys" (CLIENT TRACKING's default-mode
                                    table), default 1000000 as Redis; runtime */
    int upstream_pinned_max; /* "upstream-pinned-max" dedicated connections at most, default 1024; runtime */
    int upstream_pinned_idle; /* "upstream-pinned-idle" idle dedicated connections kept, default 16; runtime */
    /* "upstream-pinned-wait" ms a request waits for a dedicated connection, 0..86400000,
     * default 60000; 0 = refuse at once; runtime */
    uint64_t upstream_pinned_wait_ms;
    char **deny_commands;
    size_t deny_commands_count; /* entries in deny_commands */
    /* "loglevel": 0 debug, 1 verbose, 2 notice (default), 3 warning; runtime */
    int loglevel;
    char *logfile;  /* "logfile" path, owned; NULL = stderr */
    bool daemonize; /* "daemonize" yes|no, default no */
    char *pidfile;  /* "pidfile" path, owned; NULL = none */
    /* "shutdown-timeout" ms (a bare number is seconds), default 10 s */
    int ttl_jitter_percent; /* "ttl-jitter-percent" 0..1000, default 10; 0 = off; runtime */
    uint64_t
        ttl_jitter_max_ms; /* "ttl-jitter-max" ms, cap of the extra TTL, default 1 h; runtime */
    uint64_t
        ttl_jitter_min_ttl_ms; /* "ttl-jitter-min-ttl" ms: shorter TTLs stay exact, default 0; runtime */
    bool
        ttl_jitter_expire; /* "ttl-jitter-expire" yes: EXPIRE/PEXPIRE/GETEX too; default no; runtime */
    bool
        ttl_jitter_absolute; /* "ttl-jitter-absolute" yes: EXAT/PXAT/…AT too; default no; runtime */
    char **
        ttl_jitter_exclude; /* "ttl-jitter-exclude" key globs never jittered, owned; repeatable; runtime */
    size_t ttl_jitter_exclude_count; /* entries in ttl_jitter_exclude */
    int batch_max_keys; /* "batch-max-keys" keys per GET batch, default 128; 0 = no batching; runtime */
    int batch_window_us; /* "batch-window" µs a batch waits for more GETs under concurrency, default 100; runtime */
    int batch_mode;       /* "batch-mode" 0 pipeline, 1 mget (default); runtime */
    bool batch_mget;      /* "batch-mget" split MGETs into coalesced GETs; default no; runtime */
    bool hotkey;          /* "hotkey" yes: hot-key cache and leases; default yes */
    int hotkey_threshold; /* "hotkey-threshold" reads/s from which a key is hot, default 100 */
    int hotkey_max_keys;  /* "hotkey-max-keys" cached keys at most, default 10000 */
    uint64_t hotkey_maxmemory; /* "hotkey-maxmemory" cached bytes at most, default 64mb */
    uint64_t hotkey_ttl_ms;    /* "hotkey-ttl" longest life of a cached value, ms, default 1000 */
    double hotkey_refresh_ratio; /* "hotkey-refresh-ratio" refresh-ahead point, default 0.8 */
    uint64_t
        hotkey_lease_ms; /* "hotkey-lease" ms GETs of a missing hot key are held, default 200 */
    bool bloom;          /* "bloom" yes: the Bloom filter gate is on; default yes */
    double bloom_error_rate; /* "bloom-error-rate" false positive rate, default 0.01 */
    int bloom_capacity;      /* "bloom-capacity" keys of the first sub-filter, default 1000000 */
    int bloom_scan_count;    /* "bloom-scan-count" SCAN COUNT, default 1000; runtime */
    uint64_t
        bloom_scan_interval_ms; /* "bloom-scan-interval" ms between SCAN calls, default 1; runtime */
    double
        bloom_rebuild_ratio; /* "bloom-rebuild-ratio" keys added / DBSIZE - 1 that triggers a rebuild, default 0.5; runtime */
    bool bloom_trust_writes; /* "bloom-trust-writes" gate without tracking; default no; runtime */
    uint64_t shutdown_timeout_ms;
    int metrics_port;          /* "metrics-port" of the /metrics HTTP server; 0 = off (default) */
    char **metrics_bind;       /* "metrics-bind" addresses of it, owned; default 127.0.0.1 */
    size_t metrics_bind_count; /* entries in metrics_bind */

    /* owned copies of the words given to cfg_apply_args(), for cfg_reload() */
    char **overrides;
    size_t override_count; /* entries in overrides */
};

/* Fill c with every directive's default (the table's). Never fails. */
void cfg_init(struct cfg *c);

/* Free every string and list c owns and zero it; c may be re-inited. */
void cfg_deinit(struct cfg *c);

/*
 * Read the redis.conf-style file at path into c. Syntax (as Redis 7's
 * loadServerConfigFromString and sdssplitargs):
 *   - one "directive arg ..." per line; the line is trimmed of " \t\r\n";
 *     empty lines and lines starting with '#' are skipped; there are no
 *     comments after a directive (a '#' there is an argument, as in Redis);
 *   - arguments split on white space; "double quoted" with escapes
 *     \n \r \t \b \a \" \\ \xHH (any other \c is c); 'single quoted' with
 *     \' only; a closing quote must be followed by a space or the end;
 *   - directive names are case-insensitive; an argument may not contain a
 *     NUL byte (\x00);
 *   - "include path": the file is read at that point; a relative path is
 *     resolved against the including file's directory (Redis uses the
 *     working directory); a path with * ? or [ is a glob(3) pattern whose
 *     matches are read in alphabetical order, and matching nothing is not
 *     an error (as Redis 7). Includes nest at most CFG_INCLUDE_DEPTH_MAX
 *     deep, and a file that is already being read cannot be included again.
 * Value rules per type (the table in config.c):
 *   - integer: Redis's string2ll: optional '-', no '+', no spaces, no
 *     leading zeros, no "-0"; then the directive's [min, max];
 *   - a value is checked whole before it is stored: a bad line changes
 *     nothing; range errors show the bounds in the bare unit;
 *   - octal (unixsocketperm): strtoll base 8, then [0, 0777];
 *   - size: Redis's memtoull: digits and an optional case-insensitive unit
 *     b, k (1000), kb (1024), m, mb, g, gb; no sign, no fraction;
 *   - duration: digits and an optional case-insensitive unit ms or s; a
 *     bare number is in the directive's unit (stated in its help); a value
 *     must be a whole number of that unit;
 *   - bool: yes | no; enum: one of the listed names (case-insensitive);
 *   - list: one or more arguments, each split on spaces (as Redis splits
 *     "bind" given as one argument), empty words dropped; so a single ""
 *     is the empty list, and list words never contain spaces;
 *   - string: one argument; "" means unset (NULL).
 * Repetition: a later line replaces the whole value of an earlier one, lists
 * included (as Redis's "bind"; there is no append-style directive like
 * Redis's "save").
 * Returns CFG_OK, or CFG_ERR with "file:line: reason" in err (file is the
 * path as given, or as resolved for an included file; a file that cannot be
 * read gives "file: cannot open: <strerror>"). On error c holds the lines
 * applied before the bad one: the caller exits (status 1) or cfg_deinit()s.
 */
int cfg_load_file(struct cfg *c, const char *path, char *err, size_t errlen);

/*
 * As cfg_load_file() on the NUL-terminated text; name stands for the file
 * name in errors ("name:line: reason"); relative includes resolve against
 * the working directory.
 */
int cfg_load_string(struct cfg *c, const char *text, const char *name, char *err, size_t errlen);

/*
 * Apply command-line overrides, as redis-server: argv holds only the option
 * words (the caller strips the program name and the config file, and
 * handles --help / --version itself). Each "--name" starts a directive and
 * the following words up to the next "--" word are its arguments, so
 *   --port 7000 --deny-commands "FLUSHALL KEYS" --requirepass ""
 * sets three directives. The words act as lines read after the whole file:
 * they win over it, and a list given here replaces the file's list.
 * "--include path" is allowed (relative to the working directory).
 * The words are copied into c->overrides for cfg_reload().
 * Returns CFG_OK, or CFG_ERR with "(command line):--name: reason" in err (a
 * word before any --name gives "(command line):word: reason").
 */
int cfg_apply_args(struct cfg *c, int argc, char **argv, char *err, size_t errlen);

/* True if name (case-insensitive) is one of bulwark's directives. */
bool cfg_is_own(const char *name);

/*
 * True if name is one of bulwark's directives that is also a Redis parameter
 * (client-output-buffer-limit): CONFIG SET validates it, forwards it to Redis
 * and applies bulwark's copy when Redis answers +OK; CONFIG GET shows
 * bulwark's value.
 */
bool cfg_is_shared(const char *name);

/*
 * CONFIG SET name value for one of bulwark's directives. value is the one
 * CONFIG SET argument: lists split on spaces ("" = empty list), strings
 * taken whole ("" = unset), other types parsed as in the file. c is changed
 * only on success; the caller applies side effects (listener, log level).
 * Returns CFG_OK, or CFG_ERR with the text Redis 7.0.15 puts after
 * "ERR CONFIG SET failed (possibly related to argument '<name>') - " in err:
 *   "can't set immutable config" (directive not runtime-settable; checked
 *   first), "argument couldn't be parsed into an integer",
 *   "argument must be between <min> and <max> inclusive",
 *   "argument must be 'yes' or 'no'", "argument must be a memory value",
 *   "argument(s) must be one of the following: debug, verbose, notice,
 * warning", and, for bulwark's own types, "argument must be a duration (...)".
 * A name that is not bulwark's gives CFG_ERR and "Unknown option"; callers
 * test cfg_is_own() first and forward other names upstream.
 */
int cfg_set(struct cfg *c, const char *name, const char *value, char *err, size_t errlen);

/* Receives one CONFIG GET pair; both strings are valid during the call only. */
/*
 * True when value, parsed as directive name's type, equals its current value
 * in c (so CONFIG SET of an immutable directive to what it already is can be
 * accepted as Redis 7 does). False for unknown names or bad values.
 */
bool cfg_is_same(const struct cfg *c, const char *name, const char *value);

typedef void cfg_emit_fn(void *ud, const char *name, const char *value);

/*
 * CONFIG GET pattern over bulwark's directives, as Redis 7.0 configGetCommand:
 * a pattern without any of * ? [ is an exact case-insensitive lookup and
 * the name emitted is the pattern as given ("CONFIG GET PORT" answers
 * "PORT"); otherwise every directive whose name matches the glob
 * case-insensitively is emitted under its own name, in table order.
 * Values are formatted as Redis formats the type: integers and sizes in
 * decimal (sizes as bytes), octal in octal, bools yes/no, enums by name,
 * lists space-separated, unset strings "", durations in their bare unit,
 * upstream as host:port ([addr]:port for IPv6).
 * Returns the number of pairs emitted.
 */
size_t cfg_get(const struct cfg *c, const char *pattern, cfg_emit_fn *emit, void *ud);

/*
 * Glob match with Redis's stringmatchlen() rules (util.c): * any run,
 * ? one byte, [abc] [a-z] (reversed ranges allowed) [^x] classes, \ escapes
 * the next byte; an unclosed [ matches up to the end of the pattern; a
 * class swallows a ']' that ends a range ("[a-]"). Quirk kept: "*" does not
 * match the empty string. nocase folds ASCII case. Lengths in bytes; neither
 * string needs a NUL.
 */
bool cfg_glob_match(const char *pattern, size_t plen, const char *s, size_t slen, bool nocase);

/*
 * SIGHUP: read path into a fresh config from the defaults, re-apply
 * live->overrides, then copy every runtime directive that differs into
 * live. A differing non-runtime directive is left as it is (it needs a
 * restart). Values changed by cfg_set() since start are replaced by the
 * file's (or the default). Returns CFG_OK with err "" when everything was
 * applied; CFG_RELOAD_PARTIAL with "restart required to apply: name, name"
 * in err; CFG_ERR with the parse error in err and live untouched.
 */
int cfg_reload(struct cfg *live, const char *path, char *err, size_t errlen);

/* Write every directive, its value syntax, default and help to out (--help). */
void cfg_print_help(FILE *out);

#endif
