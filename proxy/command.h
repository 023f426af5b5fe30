/*
 * command: the Redis command table (name, arity, flags, key positions,
 * bulwark's policy), Redis's exact arity / unknown-command errors, and key
 * extraction. Pure: libc and proxy/util.h only.
 */
#ifndef BW_COMMAND_H
#define BW_COMMAND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Command flags: every flag name Redis 7.0 knows (server.h CMD_*, named as
 * COMMAND reports them, e.g. "write", "no_mandatory_keys", "movablekeys").
 * Redis 7.0.15 reports only 20 of them in COMMAND; may_replicate, sentinel,
 * only_sentinel and protected are hidden by the server, so a table learned
 * from COMMAND (or the built-in one) never has them set.
 */
enum cmd_flag {
    CMD_WRITE = 1u << 0,              /* "write": may modify the keyspace */
    CMD_READONLY = 1u << 1,           /* "readonly": reads keys only */
    CMD_DENYOOM = 1u << 2,            /* "denyoom": refused when over maxmemory */
    CMD_MODULE = 1u << 3,             /* "module": implemented by a module */
    CMD_ADMIN = 1u << 4,              /* "admin": administrative */
    CMD_PUBSUB = 1u << 5,             /* "pubsub": publish/subscribe related */
    CMD_NOSCRIPT = 1u << 6,           /* "noscript": not allowed in scripts */
    CMD_BLOCKING = 1u << 7,           /* "blocking": may block the client */
    CMD_LOADING = 1u << 8,            /* "loading": allowed while loading */
    CMD_STALE = 1u << 9,              /* "stale": allowed on a stale replica */
    CMD_SKIP_MONITOR = 1u << 10,      /* "skip_monitor": not shown in MONITOR */
    CMD_SKIP_SLOWLOG = 1u << 11,      /* "skip_slowlog": not in SLOWLOG */
    CMD_ASKING = 1u << 12,            /* "asking": cluster ASKING related */
    CMD_FAST = 1u << 13,              /* "fast": O(1) or O(log N) */
    CMD_NO_AUTH = 1u << 14,           /* "no_auth": allowed before AUTH */
    CMD_MAY_REPLICATE = 1u << 15,     /* "may_replicate" (hidden by 7.0) */
    CMD_SENTINEL = 1u << 16,          /* "sentinel" (hidden by 7.0) */
    CMD_ONLY_SENTINEL = 1u << 17,     /* "only_sentinel" (hidden by 7.0) */
    CMD_NO_MANDATORY_KEYS = 1u << 18, /* "no_mandatory_keys": keys optional */
    CMD_PROTECTED = 1u << 19,         /* "protected" (hidden by 7.0) */
    CMD_NO_ASYNC_LOADING = 1u << 20,  /* "no_async_loading" */
    CMD_NO_MULTI = 1u << 21,          /* "no_multi": refused inside MULTI */
    CMD_MOVABLEKEYS = 1u << 22,       /* "movablekeys": keys not at fixed spots */
    CMD_ALLOW_BUSY = 1u << 23,        /* "allow_busy": allowed during BUSY */
};

/*
 * How cmd_get_keys() finds the keys of a command whose keys move
 * (CMD_MOVABLEKEYS). Set by cmd_table_add() from the command's name, so a
 * table learned from an upstream COMMAND reply gets them too.
 */
enum cmd_keys_kind {
    /* first_key, last_key, key_step only */
    CMD_KEYS_RANGE = 0,
    /* EVAL, EVALSHA, EVAL_RO, EVALSHA_RO, FCALL, FCALL_RO: x numkeys key... */
    CMD_KEYS_EVAL,
    /* ZUNIONSTORE, ZINTERSTORE, ZDIFFSTORE: dest numkeys key... */
    CMD_KEYS_ZSTORE,
    /* ZUNION, ZINTER, ZDIFF, ZINTERCARD, SINTERCARD: numkeys key... */
    CMD_KEYS_NUMKEYS,
    /* LMPOP, ZMPOP: numkeys key... LEFT|RIGHT|MIN|MAX */
    CMD_KEYS_MPOP,
    /* BLMPOP, BZMPOP: timeout numkeys key... LEFT|RIGHT|MIN|MAX */
    CMD_KEYS_BMPOP,
    /* XREAD: [COUNT n] [BLOCK ms] STREAMS key... id... */
    CMD_KEYS_XREAD,
    /* XREADGROUP: GROUP g c [COUNT n] [BLOCK ms] [NOACK] STREAMS key... */
    CMD_KEYS_XREADGROUP,
    /* SORT: key [BY p] [LIMIT o c] [GET p]... [ASC|DESC] [ALPHA] [STORE d] */
    CMD_KEYS_SORT,
    /* SORT_RO: as SORT without STORE */
    CMD_KEYS_SORT_RO,
    /* MIGRATE: host port key|"" db timeout [COPY] [REPLACE] [AUTH[2] ..]
     * [KEYS key...] */
    CMD_KEYS_MIGRATE,
    /* GEORADIUS: key lon lat radius unit options [STORE|STOREDIST dest] */
    CMD_KEYS_GEORADIUS,
    /* GEORADIUSBYMEMBER: key member radius unit options [STORE|STOREDIST d] */
    CMD_KEYS_GEORADIUSBYMEMBER,
    /* movable keys bulwark cannot locate: cmd_get_keys() returns -1 */
    CMD_KEYS_UNKNOWN,
};

/* Longest reply any cmd_*_error() function writes, "\r\n" and NUL included. */
#define CMD_ERROR_MAX 512

/*
 * One command or subcommand. Created by cmd_table_add() / cmd_info_add_sub(),
 * owned by its table, freed by cmd_table_free(). The pointer stays valid for
 * the table's life, also when the entry is replaced.
 */
struct cmd_info {
    /* owned, lowercase, NUL-terminated: "get"; for a subcommand the part
     * after the '|' ("get" under "config") */
    char *name;
    size_t name_len; /* bytes in name */
    /* owned, lowercase: "get" or "config|get", the name Redis puts in its
     * arity error */
    char *fullname;
    /* Redis convention: N exactly N arguments, -N at least N; argc includes
     * the command name, and for a subcommand counts from the container's
     * name, as Redis does */
    int arity;
    uint32_t flags; /* enum cmd_flag bits */
    /* Redis's legacy key spec: argv index of the first key (0 when no key
     * is at a fixed spot), of the last key (negative counts from the end:
     * -1 the last argument, -2 the one before), and the distance between
     * keys (2 for MSET's key value pairs) */
    int first_key;
    int last_key;
    int key_step;
    enum cmd_keys_kind keys_kind;  /* how cmd_get_keys() finds the keys */
    struct cmd_table *subcommands; /* owned, NULL when not a container */
    const struct cmd_info *parent; /* borrowed, the container; NULL if none */
    int policy;                    /* bulwark's use, set by the daemon; 0 by default */
    const void *extra;             /* borrowed, bulwark's per-command data for the
                        * policy (local handler, refusal); NULL by default */
    const void *gate;              /* borrowed, the Bloom gate's rule for this read (its
                        * absent reply, gate.c); NULL when not gated */
    uint32_t stat_id;              /* bulwark's per-command stats slot (cmdstats.h),
                        * set by cmdstats_assign_table(); 0 = "unknown" */
    uint32_t rules;                /* enum cmd_rule bits: what the request path's stages do
                        * with it, set by each stage when a table is installed */
    int fanout;                    /* in front of a Redis Cluster: how it is split or sent to
                        * every master (cfwd.c); 0: by its keys' slot */
};

/*
 * Per-stage rules of a command (cmd_info.rules), so that the request path
 * recognises its commands by a bit, never by comparing names. Each stage
 * marks its own (stages.c installs a table).
 */
enum cmd_rule {
    CMD_RULE_GET = 1u << 0,       /* GET: hot-key cache, then the batcher */
    CMD_RULE_MGET = 1u << 1,      /* MGET: the batcher (mget split) */
    CMD_RULE_LEASE_SET = 1u << 2, /* SET: its value wakes GETs held by a hot key's lease */
    CMD_RULE_JITTER = 1u << 3,    /* a cache write whose TTL may be lengthened (jitter.h) */
    CMD_RULE_WIDE = 1u << 4,      /* a write that names no key (FLUSHALL, FLUSHDB, SWAPDB):
                                     every hot cache is emptied when it is forwarded */
    CMD_RULE_WIDE_OPTS = 1u << 5, /* COPY: wide when it has options (DB n REPLACE) */
    CMD_RULE_FLUSH = 1u << 6,     /* FLUSHALL, FLUSHDB: the watch's null is the client's */
};

struct cmd_table;

/* An empty table. Returns a table the caller owns (cmd_table_free()). */
struct cmd_table *cmd_table_new(void);

/* Free a table, its entries and their subcommand tables. NULL is a no-op. */
void cmd_table_free(struct cmd_table *t);

/*
 * Add the command name[0..len) (any case; stored lowercase) with its COMMAND
 * fields: arity, flags (enum cmd_flag), first_key, last_key, key_step. When
 * the table already has that name, the existing entry is reset in place (its
 * subcommands freed, policy 0, extra NULL) and keeps its address.
 * len >= 1. Returns the entry, owned by t. keys_kind is set from the name
 * (see enum cmd_keys_kind; CMD_KEYS_UNKNOWN for other CMD_MOVABLEKEYS names).
 */
struct cmd_info *cmd_table_add(struct cmd_table *t, const char *name, size_t len, int arity,
                               uint32_t flags, int first_key, int last_key, int key_step);

/*
 * Add the subcommand name[0..len) to the container parent, creating its
 * subcommand table on first use. name is the part after '|' ("get") or the
 * full "config|get" form as COMMAND reports it; the container prefix is
 * stripped. Same fields, replacement and ownership rules as cmd_table_add();
 * fullname becomes "<parent>|<name>". Returns the subcommand, owned by parent.
 */
struct cmd_info *cmd_info_add_sub(struct cmd_info *parent, const char *name, size_t len,
                                  int arity, uint32_t flags, int first_key, int last_key,
                                  int key_step);

/*
 * The built-in Redis 7.0 table: every command and subcommand of
 * redis-server 7.0.15's COMMAND reply (proxy/command_table.inc, generated by
 * proxy/gen_command_table.py). For when the upstream's COMMAND fails.
 * Returns a table the caller owns (cmd_table_free()).
 */
struct cmd_table *cmd_table_builtin(void);

/*
 * Find name[0..len): ASCII case-insensitive and binary-safe ("get\0" is not
 * "get", as in Redis). O(1) average (open addressing). NULL when unknown.
 */
const struct cmd_info *cmd_lookup(const struct cmd_table *t, const char *name, size_t len);

/* cmd_lookup() returning a mutable entry, e.g. to set policy and extra. */
struct cmd_info *cmd_lookup_mut(struct cmd_table *t, const char *name, size_t len);

/*
 * cmd_lookup_mut() of a NUL-terminated lowercase "name" or "container|sub"
 * (a subcommand), as the stages' rule tables name commands; NULL when absent.
 */
struct cmd_info *cmd_lookup_path(struct cmd_table *t, const char *path);

/*
 * Resolve a request argv[0..argc) (argvlen[i] bytes each) as Redis 7.0 does
 * (server.c lookupCommandLogic): argv[0] names the command; when it is a
 * container and argc >= 2, argv[1] names the subcommand. Returns the
 * subcommand; the container itself when argc == 1 or argv[1] is no
 * subcommand of it (the caller then answers cmd_unknown_subcommand_error(),
 * see cmd_is_unknown_sub()); NULL when argv[0] is unknown or argc < 1.
 */
const struct cmd_info *cmd_lookup_argv(const struct cmd_table *t, int argc,
                                       const char *const *argv, const size_t *argvlen);

/*
 * True when c, the result of cmd_lookup_argv() for argc arguments, is a
 * container reached with a subcommand name it does not know: Redis answers
 * "unknown subcommand" (cmd_unknown_subcommand_error()) before any arity
 * check. c may be NULL (false).
 */
bool cmd_is_unknown_sub(const struct cmd_info *c, int argc);

/* Set bulwark's policy for c (a value of the daemon's policy enum). */
void cmd_info_set_policy(struct cmd_info *c, int policy);

/* The flag named name[0..len) as COMMAND spells it ("write" -> CMD_WRITE),
 * case-insensitive; 0 when unknown. */
uint32_t cmd_flag_parse(const char *name, size_t len);

/* True when argc arguments (command name included) satisfy c->arity. */
bool cmd_arity_ok(const struct cmd_info *c, int argc);

/*
 * Write Redis 7.0's arity error for c into out[0..outlen) (NUL-terminated,
 * truncated like snprintf): "-ERR wrong number of arguments for 'get'
 * command\r\n", or 'config|get' for a subcommand (server.c
 * processCommand). Returns the full reply length (not counting the NUL);
 * outlen >= CMD_ERROR_MAX never truncates.
 */
size_t cmd_arity_error(const struct cmd_info *c, char *out, size_t outlen);

/*
 * Write Redis 7.0's reply to an unknown subcommand sub[0..sublen) of
 * container: "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n". As
 * redis-server 7.0.15 does: the name is cut at 128 bytes and at its first
 * NUL, and '\r' and '\n' become spaces; the container's name is uppercased.
 * Output and return value as cmd_arity_error().
 */
size_t cmd_unknown_subcommand_error(const struct cmd_info *container, const char *sub,
                                    size_t sublen, char *out, size_t outlen);

/*
 * Write Redis 7.0's reply to an unknown command argv[0..argc) (argc >= 1):
 * "-ERR unknown command 'foo', with args beginning with: 'a' 'b' \r\n".
 * As redis-server 7.0.15 does (server.c processCommand): the name is cut at
 * 128 bytes; arguments are appended as "'arg' " while the list is under 128
 * bytes, each cut to the room left (128 minus the list's length); every
 * string stops at its first NUL; '\r' and '\n' become spaces; other bytes
 * pass unchanged. Output and return value as cmd_arity_error().
 */
size_t cmd_unknown_command_error(int argc, const char *const *argv, const size_t *argvlen,
                                 char *out, size_t outlen);

/*
 * Find the key arguments of the request argv[0..argc) for c (the result of
 * cmd_lookup_argv()). Stores up to max_out argv indexes, in argv order, in
 * out_idx and returns how many keys there are (may exceed max_out: call
 * again with a larger array). Fixed keys follow first_key/last_key/key_step;
 * movable ones follow the parsing of each command's implementation in Redis
 * 7.0 (see enum cmd_keys_kind): a numkeys must be a canonical integer
 * (Redis's string2ll: no sign '+', no leading zero or space), >= 1 except
 * for EVAL and FCALL (>= 0), and the keys it counts must be present; SORT
 * and GEORADIUS take the last STORE / STOREDIST; MIGRATE's KEYS needs an
 * empty key argument.
 * Returns -1 when the arguments that locate the keys are malformed, which
 * Redis rejects (wrong arity, MSET without a value, bad numkeys, XREAD
 * without STREAMS or unbalanced, an unknown option word, SORT_RO ... STORE),
 * and for movable keys bulwark cannot locate (CMD_KEYS_UNKNOWN). Values of
 * options that do not move keys (COUNT, BLOCK, LIMIT, timeouts) are not
 * checked, so a request Redis rejects for such a value still yields keys.
 */
int cmd_get_keys(const struct cmd_info *c, int argc, const char *const *argv,
                 const size_t *argvlen, int *out_idx, int max_out);

/* Number of entries (commands, not counting subcommands) in t. */
size_t cmd_count(const struct cmd_table *t);

/* Call fn(entry, ud) for each entry of t in insertion order (subcommands
 * are reached through entry->subcommands). fn must not modify t. */
void cmd_table_foreach(const struct cmd_table *t, void (*fn)(const struct cmd_info *c, void *ud),
                       void *ud);

#endif
