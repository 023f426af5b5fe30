/*
 * command: the Redis command table as an open-addressing hash of entries,
 * Redis 7.0's exact command errors, and key extraction per command.
 */
#include "proxy/command.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/util.h"

/* Redis 7.0 cuts names and argument lists in its errors at this many bytes
 * (server.c processCommand: "%.128s", "sdslen(args) < 128"). */
#define CMD_ERR_CUT 128

/* A table: entries in insertion order plus a hash index over them. */
struct cmd_table {
    /* owned array of owned entries, in insertion order */
    struct cmd_info **entries;
    size_t count;    /* entries in use */
    size_t cap;      /* entries allocated */
    uint32_t *slots; /* owned; entry index + 1, 0 = empty slot */
    size_t nslots;   /* slots allocated, a power of two, >= 2 * count */
};

/* One line of the generated built-in table (proxy/command_table.inc). */
struct cmd_builtin_entry {
    const char *parent; /* static; the container's name, NULL if none */
    const char *name;   /* static; lowercase (after '|' for a subcommand) */
    int arity;          /* Redis arity */
    uint32_t flags;     /* enum cmd_flag bits */
    int first_key;      /* legacy key spec */
    int last_key;       /* legacy key spec */
    int key_step;       /* legacy key spec */
};

static const struct cmd_builtin_entry cmd_builtin_entries[] = {
#include "proxy/command_table.inc"
};

/* A flag name as COMMAND reports it and its bit. */
struct cmd_flag_name {
    const char *name; /* static, lowercase */
    uint32_t flag;    /* enum cmd_flag */
};

static const struct cmd_flag_name cmd_flag_names[] = {
    {"write", CMD_WRITE},
    {"readonly", CMD_READONLY},
    {"denyoom", CMD_DENYOOM},
    {"module", CMD_MODULE},
    {"admin", CMD_ADMIN},
    {"pubsub", CMD_PUBSUB},
    {"noscript", CMD_NOSCRIPT},
    {"blocking", CMD_BLOCKING},
    {"loading", CMD_LOADING},
    {"stale", CMD_STALE},
    {"skip_monitor", CMD_SKIP_MONITOR},
    {"skip_slowlog", CMD_SKIP_SLOWLOG},
    {"asking", CMD_ASKING},
    {"fast", CMD_FAST},
    {"no_auth", CMD_NO_AUTH},
    {"may_replicate", CMD_MAY_REPLICATE},
    {"sentinel", CMD_SENTINEL},
    {"only_sentinel", CMD_ONLY_SENTINEL},
    {"no_mandatory_keys", CMD_NO_MANDATORY_KEYS},
    {"protected", CMD_PROTECTED},
    {"no_async_loading", CMD_NO_ASYNC_LOADING},
    {"no_multi", CMD_NO_MULTI},
    {"movablekeys", CMD_MOVABLEKEYS},
    {"allow_busy", CMD_ALLOW_BUSY},
};

/* A command whose keys move and the parser that finds them. */
struct cmd_keys_name {
    const char *name;        /* static, lowercase command name */
    enum cmd_keys_kind kind; /* its key parser */
};

static const struct cmd_keys_name cmd_keys_names[] = {
    {"eval", CMD_KEYS_EVAL},
    {"evalsha", CMD_KEYS_EVAL},
    {"eval_ro", CMD_KEYS_EVAL},
    {"evalsha_ro", CMD_KEYS_EVAL},
    {"fcall", CMD_KEYS_EVAL},
    {"fcall_ro", CMD_KEYS_EVAL},
    {"zunionstore", CMD_KEYS_ZSTORE},
    {"zinterstore", CMD_KEYS_ZSTORE},
    {"zdiffstore", CMD_KEYS_ZSTORE},
    {"zunion", CMD_KEYS_NUMKEYS},
    {"zinter", CMD_KEYS_NUMKEYS},
    {"zdiff", CMD_KEYS_NUMKEYS},
    {"zintercard", CMD_KEYS_NUMKEYS},
    {"sintercard", CMD_KEYS_NUMKEYS},
    {"lmpop", CMD_KEYS_MPOP},
    {"zmpop", CMD_KEYS_MPOP},
    {"blmpop", CMD_KEYS_BMPOP},
    {"bzmpop", CMD_KEYS_BMPOP},
    {"xread", CMD_KEYS_XREAD},
    {"xreadgroup", CMD_KEYS_XREADGROUP},
    {"sort", CMD_KEYS_SORT},
    {"sort_ro", CMD_KEYS_SORT_RO},
    {"migrate", CMD_KEYS_MIGRATE},
    {"georadius", CMD_KEYS_GEORADIUS},
    {"georadiusbymember", CMD_KEYS_GEORADIUSBYMEMBER},
};

/* ---- names and hashing ------------------------------------------------- */

static unsigned char
cmd_lower(unsigned char ch)
{
    return (ch >= 'A' && ch <= 'Z') ? (unsigned char)(ch - 'A' + 'a') : ch;
}

static unsigned char
cmd_upper(unsigned char ch)
{
    return (ch >= 'a' && ch <= 'z') ? (unsigned char)(ch - 'a' + 'A') : ch;
}

/* ASCII case-insensitive equality of a[0..alen) and b[0..blen). */
static bool
cmd_name_eq(const char *a, size_t alen, const char *b, size_t blen)
{
    if (alen != blen)
        return false;
    for (size_t i = 0; i < alen; i++) {
        if (cmd_lower((unsigned char)a[i]) != cmd_lower((unsigned char)b[i]))
            return false;
    }
    return true;
}

/* True when the argument arg[0..len) is the word (lowercase), any case. */
static bool
cmd_arg_is(const char *arg, size_t len, const char *word)
{
    return cmd_name_eq(arg, len, word, strlen(word));
}

/* FNV-1a (64 bit) over the lowercased bytes. */
static uint64_t
cmd_hash(const char *name, size_t len)
{
    uint64_t h = 14695981039346656037ULL;

    for (size_t i = 0; i < len; i++) {
        h ^= cmd_lower((unsigned char)name[i]);
        h *= 1099511628211ULL;
    }
    return h;
}

/* ---- the table ---------------------------------------------------------- */

struct cmd_table *
cmd_table_new(void)
{
    struct cmd_table *t = bw_calloc(1, sizeof(*t));

    t->nslots = 16;
    t->slots = bw_calloc(t->nslots, sizeof(*t->slots));
    return t;
}

static void
cmd_info_free(struct cmd_info *c)
{
    bw_free(c->name);
    bw_free(c->fullname);
    cmd_table_free(c->subcommands);
    bw_free(c);
}

void
cmd_table_free(struct cmd_table *t)
{
    if (t == NULL)
        return;
    for (size_t i = 0; i < t->count; i++)
        cmd_info_free(t->entries[i]);
    bw_free(t->entries);
    bw_free(t->slots);
    bw_free(t);
}

/* The slot holding name, or the empty slot where it would go. */
static size_t
cmd_slot_find(const struct cmd_table *t, const char *name, size_t len)
{
    size_t mask = t->nslots - 1;
    size_t i = (size_t)cmd_hash(name, len) & mask;

    while (t->slots[i] != 0) {
        const struct cmd_info *c = t->entries[t->slots[i] - 1];
        if (cmd_name_eq(c->name, c->name_len, name, len))
            return i;
        i = (i + 1) & mask;
    }
    return i;
}

/* Double the hash index and re-insert every entry. */
static void
cmd_table_grow(struct cmd_table *t)
{
    bw_free(t->slots);
    t->nslots *= 2;
    t->slots = bw_calloc(t->nslots, sizeof(*t->slots));
    for (size_t e = 0; e < t->count; e++) {
        const struct cmd_info *c = t->entries[e];
        size_t i = cmd_slot_find(t, c->name, c->name_len);
        t->slots[i] = (uint32_t)(e + 1);
    }
}

static enum cmd_keys_kind
cmd_keys_kind_of(const char *name, size_t len, uint32_t flags, bool sub)
{
    if (!sub) {
        for (size_t i = 0; i < BW_ARRAY_LEN(cmd_keys_names); i++) {
            if (cmd_arg_is(name, len, cmd_keys_names[i].name))
                return cmd_keys_names[i].kind;
        }
    }
    return (flags & CMD_MOVABLEKEYS) ? CMD_KEYS_UNKNOWN : CMD_KEYS_RANGE;
}

/* Fill the fields of c, a new or reused entry, for name under parent. */
static void
cmd_info_fill(struct cmd_info *c, const struct cmd_info *parent, const char *name, size_t len,
              int arity, uint32_t flags, int first_key, int last_key, int key_step)
{
    size_t plen = parent != NULL ? strlen(parent->fullname) + 1 : 0;

    c->name = bw_malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        c->name[i] = (char)cmd_lower((unsigned char)name[i]);
    c->name[len] = '\0';
    c->name_len = len;
    c->fullname = bw_malloc(plen + len + 1);
    if (parent != NULL) {
        memcpy(c->fullname, parent->fullname, plen - 1);
        c->fullname[plen - 1] = '|';
    }
    memcpy(c->fullname + plen, c->name, len + 1);
    c->arity = arity;
    c->flags = flags;
    c->first_key = first_key;
    c->last_key = last_key;
    c->key_step = key_step;
    c->keys_kind = cmd_keys_kind_of(name, len, flags, parent != NULL);
    c->subcommands = NULL;
    c->parent = parent;
    c->policy = 0;
    c->extra = NULL;
    c->gate = NULL;
}

/* Add or reset the entry name in t; parent is NULL for a command. */
static struct cmd_info *
cmd_table_put(struct cmd_table *t, const struct cmd_info *parent, const char *name, size_t len,
              int arity, uint32_t flags, int first_key, int last_key, int key_step)
{
    size_t i = cmd_slot_find(t, name, len);
    struct cmd_info *c;

    BW_ASSERT(len >= 1);
    if (t->slots[i] != 0) {
        c = t->entries[t->slots[i] - 1];
        bw_free(c->name);
        bw_free(c->fullname);
        cmd_table_free(c->subcommands);
    } else {
        if (t->count == t->cap) {
            t->cap = t->cap ? t->cap * 2 : 32;
            t->entries = bw_realloc(t->entries, t->cap * sizeof(*t->entries));
        }
        c = bw_calloc(1, sizeof(*c));
        t->entries[t->count++] = c;
        t->slots[i] = (uint32_t)t->count;
    }
    cmd_info_fill(c, parent, name, len, arity, flags, first_key, last_key, key_step);
    if (t->count * 2 > t->nslots)
        cmd_table_grow(t); /* after fill: rehashing reads c->name */
    return c;
}

struct cmd_info *
cmd_table_add(struct cmd_table *t, const char *name, size_t len, int arity, uint32_t flags,
              int first_key, int last_key, int key_step)
{
    return cmd_table_put(t, NULL, name, len, arity, flags, first_key, last_key, key_step);
}

struct cmd_info *
cmd_info_add_sub(struct cmd_info *parent, const char *name, size_t len, int arity, uint32_t flags,
                 int first_key, int last_key, int key_step)
{
    const char *bar = memchr(name, '|', len);

    if (bar != NULL) {
        len -= (size_t)(bar + 1 - name);
        name = bar + 1;
    }
    if (parent->subcommands == NULL)
        parent->subcommands = cmd_table_new();
    return cmd_table_put(parent->subcommands, parent, name, len, arity, flags, first_key,
                         last_key, key_step);
}

struct cmd_table *
cmd_table_builtin(void)
{
    struct cmd_table *t = cmd_table_new();

    for (size_t i = 0; i < BW_ARRAY_LEN(cmd_builtin_entries); i++) {
        const struct cmd_builtin_entry *b = &cmd_builtin_entries[i];
        if (b->parent == NULL) {
            cmd_table_add(t, b->name, strlen(b->name), b->arity, b->flags, b->first_key,
                          b->last_key, b->key_step);
            continue;
        }
        struct cmd_info *p = cmd_lookup_mut(t, b->parent, strlen(b->parent));
        BW_ASSERT(p != NULL);
        cmd_info_add_sub(p, b->name, strlen(b->name), b->arity, b->flags, b->first_key,
                         b->last_key, b->key_step);
    }
    return t;
}

struct cmd_info *
cmd_lookup_mut(struct cmd_table *t, const char *name, size_t len)
{
    size_t i = cmd_slot_find(t, name, len);

    return t->slots[i] != 0 ? t->entries[t->slots[i] - 1] : NULL;
}

struct cmd_info *
cmd_lookup_path(struct cmd_table *t, const char *path)
{
    const char *bar = strchr(path, '|');
    if (bar == NULL)
        return cmd_lookup_mut(t, path, strlen(path));
    struct cmd_info *parent = cmd_lookup_mut(t, path, (size_t)(bar - path));
    if (parent == NULL || parent->subcommands == NULL)
        return NULL;
    return cmd_lookup_mut(parent->subcommands, bar + 1, strlen(bar + 1));
}

const struct cmd_info *
cmd_lookup(const struct cmd_table *t, const char *name, size_t len)
{
    size_t i = cmd_slot_find(t, name, len);

    return t->slots[i] != 0 ? t->entries[t->slots[i] - 1] : NULL;
}

const struct cmd_info *
cmd_lookup_argv(const struct cmd_table *t, int argc, const char *const *argv,
                const size_t *argvlen)
{
    const struct cmd_info *c, *sub;

    if (argc < 1)
        return NULL;
    c = cmd_lookup(t, argv[0], argvlen[0]);
    if (c == NULL || argc == 1 || c->subcommands == NULL)
        return c;
    sub = cmd_lookup(c->subcommands, argv[1], argvlen[1]);
    return sub != NULL ? sub : c;
}

bool
cmd_is_unknown_sub(const struct cmd_info *c, int argc)
{
    return c != NULL && c->subcommands != NULL && argc >= 2;
}

void
cmd_info_set_policy(struct cmd_info *c, int policy)
{
    c->policy = policy;
}

size_t
cmd_count(const struct cmd_table *t)
{
    return t->count;
}

void
cmd_table_foreach(const struct cmd_table *t, void (*fn)(const struct cmd_info *c, void *ud),
                  void *ud)
{
    for (size_t i = 0; i < t->count; i++)
        fn(t->entries[i], ud);
}

uint32_t
cmd_flag_parse(const char *name, size_t len)
{
    for (size_t i = 0; i < BW_ARRAY_LEN(cmd_flag_names); i++) {
        if (cmd_arg_is(name, len, cmd_flag_names[i].name))
            return cmd_flag_names[i].flag;
    }
    return 0;
}

bool
cmd_arity_ok(const struct cmd_info *c, int argc)
{
    if (c->arity >= 0)
        return argc == c->arity;
    return argc >= -c->arity;
}

/* ---- error replies ------------------------------------------------------ */

/* An output buffer that truncates like snprintf and counts the full length. */
struct cmd_out {
    char *buf;  /* borrowed, the caller's buffer */
    size_t cap; /* bytes in buf, NUL included; 0 allowed */
    size_t len; /* bytes of the full reply so far (may exceed cap) */
};

/* Append s[0..n); with sanitize, '\r' and '\n' become ' ' as Redis's
 * rejectCommandFormat() does (sdsmapchars). */
static void
cmd_out_put(struct cmd_out *o, const char *s, size_t n, bool sanitize)
{
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (sanitize && (ch == '\r' || ch == '\n'))
            ch = ' ';
        if (o->len + 1 < o->cap)
            o->buf[o->len] = ch;
        o->len++;
    }
}

static void
cmd_out_str(struct cmd_out *o, const char *s)
{
    cmd_out_put(o, s, strlen(s), false);
}

/* Terminate and return the full length. */
static size_t
cmd_out_end(struct cmd_out *o)
{
    if (o->cap > 0)
        o->buf[BW_MIN(o->len, o->cap - 1)] = '\0';
    return o->len;
}

/* Bytes "%.*s" prints of s[0..len) with precision max: up to the first NUL. */
static size_t
cmd_cstr_len(const char *s, size_t len, size_t max)
{
    const char *nul = memchr(s, '\0', BW_MIN(len, max));

    return nul != NULL ? (size_t)(nul - s) : BW_MIN(len, max);
}

size_t
cmd_arity_error(const struct cmd_info *c, char *out, size_t outlen)
{
    struct cmd_out o = {out, outlen, 0};

    cmd_out_str(&o, "-ERR wrong number of arguments for '");
    cmd_out_str(&o, c->fullname);
    cmd_out_str(&o, "' command\r\n");
    return cmd_out_end(&o);
}

size_t
cmd_unknown_subcommand_error(const struct cmd_info *container, const char *sub, size_t sublen,
                             char *out, size_t outlen)
{
    struct cmd_out o = {out, outlen, 0};

    cmd_out_str(&o, "-ERR unknown subcommand '");
    cmd_out_put(&o, sub, cmd_cstr_len(sub, sublen, CMD_ERR_CUT), true);
    cmd_out_str(&o, "'. Try ");
    for (size_t i = 0; i < container->name_len; i++) {
        char ch = (char)cmd_upper((unsigned char)container->name[i]);
        cmd_out_put(&o, &ch, 1, true);
    }
    cmd_out_str(&o, " HELP.\r\n");
    return cmd_out_end(&o);
}

size_t
cmd_unknown_command_error(int argc, const char *const *argv, const size_t *argvlen, char *out,
                          size_t outlen)
{
    struct cmd_out o = {out, outlen, 0};
    size_t args = 0; /* bytes of the "'a' 'b' " list so far */

    BW_ASSERT(argc >= 1);
    cmd_out_str(&o, "-ERR unknown command '");
    cmd_out_put(&o, argv[0], cmd_cstr_len(argv[0], argvlen[0], CMD_ERR_CUT), true);
    cmd_out_str(&o, "', with args beginning with: ");
    for (int i = 1; i < argc && args < CMD_ERR_CUT; i++) {
        size_t n = cmd_cstr_len(argv[i], argvlen[i], CMD_ERR_CUT - args);
        cmd_out_str(&o, "'");
        cmd_out_put(&o, argv[i], n, true);
        cmd_out_str(&o, "' ");
        args += n + 3;
    }
    cmd_out_str(&o, "\r\n");
    return cmd_out_end(&o);
}

/* ---- key extraction ----------------------------------------------------- */

/* The request being searched for keys and the caller's output array. */
struct cmd_keys {
    int argc;                /* arguments, command name included */
    const char *const *argv; /* borrowed */
    const size_t *argvlen;   /* borrowed, bytes of each argument */
    int *out;                /* borrowed, the caller's index array */
    int max_out;             /* entries in out */
    int n;                   /* keys found so far (may exceed max_out) */
};

static void
cmd_keys_emit(struct cmd_keys *k, int idx)
{
    if (k->n < k->max_out)
        k->out[k->n] = idx;
    k->n++;
}

static bool
cmd_keys_is(const struct cmd_keys *k, int i, const char *word)
{
    return cmd_arg_is(k->argv[i], k->argvlen[i], word);
}

/*
 * Parse s[0..len) as Redis's string2ll() (util.c) does: optional '-', no
 * '+', no leading zeros or spaces, within long long. False when not.
 */
static bool
cmd_parse_ll(const char *s, size_t len, long long *out)
{
    size_t i = 0;
    bool neg = false;
    unsigned long long v = 0, lim;

    if (len == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    if (len > 0 && s[0] == '-') {
        neg = true;
        i = 1;
    }
    if (i >= len || s[i] < '1' || s[i] > '9')
        return false;
    lim = neg ? (unsigned long long)LLONG_MAX + 1 : (unsigned long long)LLONG_MAX;
    for (; i < len; i++) {
        if (s[i] < '0' || s[i] > '9')
            return false;
        if (v > (lim - (unsigned long long)(s[i] - '0')) / 10)
            return false;
        v = v * 10 + (unsigned long long)(s[i] - '0');
    }
    *out = neg ? (long long)(0 - v) : (long long)v;
    return true;
}

/*
 * Keys from first_key / last_key / key_step, as Redis 7.0's range key spec
 * (db.c getKeysUsingKeySpecs): positions past argc are skipped. With a step
 * above 1 and last_key -1 (MSET key value ...) the tail must be whole.
 */
static int
cmd_keys_range(const struct cmd_info *c, struct cmd_keys *k)
{
    int step = c->key_step > 0 ? c->key_step : 1;
    int last = c->last_key < 0 ? k->argc + c->last_key : c->last_key;

    if (c->first_key <= 0)
        return 0;
    if (step > 1 && c->last_key == -1 && (k->argc - c->first_key) % step != 0)
        return -1;
    for (int j = c->first_key; j <= last && j < k->argc; j += step)
        cmd_keys_emit(k, j);
    return k->n;
}

/*
 * "numkeys key... [trailing]" with numkeys at argv[nk_idx]: at least min
 * keys, and the keys plus trailing arguments (LMPOP's LEFT|RIGHT) present.
 * store_idx > 0 is emitted first (ZUNIONSTORE's destination).
 */
static int
cmd_keys_counted(struct cmd_keys *k, int nk_idx, long long min, int trailing, int store_idx)
{
    long long num;

    if (nk_idx >= k->argc || !cmd_parse_ll(k->argv[nk_idx], k->argvlen[nk_idx], &num))
        return -1;
    if (num < min || num > (long long)(k->argc - nk_idx - 1 - trailing))
        return -1;
    if (store_idx > 0)
        cmd_keys_emit(k, store_idx);
    for (int j = 0; j < (int)num; j++)
        cmd_keys_emit(k, nk_idx + 1 + j);
    return k->n;
}

/* XREAD / XREADGROUP: the option loop of t_stream.c xreadCommand(). */
static int
cmd_keys_xread(struct cmd_keys *k, bool group)
{
    int streams = 0, nstreams;
    bool have_group = false;

    for (int i = 1; i < k->argc && streams == 0; i++) {
        int more = k->argc - i - 1;
        if ((cmd_keys_is(k, i, "block") || cmd_keys_is(k, i, "count")) && more >= 1) {
            i++;
        } else if (cmd_keys_is(k, i, "streams") && more >= 1) {
            streams = i + 1;
        } else if (cmd_keys_is(k, i, "group") && more >= 2 && group) {
            have_group = true;
            i += 2;
        } else if (!(cmd_keys_is(k, i, "noack") && group)) {
            return -1;
        }
    }
    if (streams == 0 || (group && !have_group) || (k->argc - streams) % 2)
        return -1;
    nstreams = (k->argc - streams) / 2;
    for (int j = 0; j < nstreams; j++)
        cmd_keys_emit(k, streams + j);
    return k->n;
}

/* SORT / SORT_RO: the option loop of sort.c sortCommandGeneric(). */
static int
cmd_keys_sort(struct cmd_keys *k, bool readonly)
{
    int store = 0;

    if (k->argc < 2)
        return -1;
    for (int j = 2; j < k->argc; j++) {
        int left = k->argc - j - 1;
        if (cmd_keys_is(k, j, "asc") || cmd_keys_is(k, j, "desc") || cmd_keys_is(k, j, "alpha")) {
            continue;
        } else if (cmd_keys_is(k, j, "limit") && left >= 2) {
            j += 2;
        } else if (cmd_keys_is(k, j, "store") && left >= 1 && !readonly) {
            store = j + 1;
            j++;
        } else if ((cmd_keys_is(k, j, "by") || cmd_keys_is(k, j, "get")) && left >= 1) {
            j++;
        } else {
            return -1;
        }
    }
    cmd_keys_emit(k, 1);
    if (store > 0)
        cmd_keys_emit(k, store);
    return k->n;
}

/* MIGRATE: the option loop of cluster.c migrateCommand(). */
static int
cmd_keys_migrate(struct cmd_keys *k)
{
    if (k->argc < 6)
        return -1;
    for (int j = 6; j < k->argc; j++) {
        int more = k->argc - 1 - j;
        if (cmd_keys_is(k, j, "copy") || cmd_keys_is(k, j, "replace")) {
            continue;
        } else if (cmd_keys_is(k, j, "auth") && more >= 1) {
            j++;
        } else if (cmd_keys_is(k, j, "auth2") && more >= 2) {
            j += 2;
        } else if (cmd_keys_is(k, j, "keys")) {
            if (k->argvlen[3] != 0)
                return -1;
            for (int i = j + 1; i < k->argc; i++)
                cmd_keys_emit(k, i);
            return k->n;
        } else {
            return -1;
        }
    }
    cmd_keys_emit(k, 3);
    return k->n;
}

/* GEORADIUS(BYMEMBER): options from argv[base] as geo.c georadiusGeneric()
 * reads them; the last STORE / STOREDIST names the destination. */
static int
cmd_keys_georadius(struct cmd_keys *k, int base)
{
    static const char *const plain[] = {"withdist", "withhash", "withcoord",
                                        "any",      "asc",      "desc"};
    int store = 0;

    if (k->argc < base)
        return -1;
    for (int i = base; i < k->argc; i++) {
        bool more = i + 1 < k->argc, known = false;
        for (size_t w = 0; w < BW_ARRAY_LEN(plain) && !known; w++)
            known = cmd_keys_is(k, i, plain[w]);
        if (known)
            continue;
        if (cmd_keys_is(k, i, "count") && more) {
            i++;
        } else if ((cmd_keys_is(k, i, "store") || cmd_keys_is(k, i, "storedist")) && more) {
            store = ++i;
        } else {
            return -1;
        }
    }
    cmd_keys_emit(k, 1);
    if (store > 0)
        cmd_keys_emit(k, store);
    return k->n;
}

int
cmd_get_keys(const struct cmd_info *c, int argc, const char *const *argv, const size_t *argvlen,
             int *out_idx, int max_out)
{
    struct cmd_keys k = {argc, argv, argvlen, out_idx, max_out, 0};

    if (!cmd_arity_ok(c, argc))
        return -1;
    switch (c->keys_kind) {
    case CMD_KEYS_RANGE:
        return cmd_keys_range(c, &k);
    case CMD_KEYS_EVAL:
        return cmd_keys_counted(&k, 2, 0, 0, 0);
    case CMD_KEYS_ZSTORE:
        return cmd_keys_counted(&k, 2, 1, 0, 1);
    case CMD_KEYS_NUMKEYS:
        return cmd_keys_counted(&k, 1, 1, 0, 0);
    case CMD_KEYS_MPOP:
        return cmd_keys_counted(&k, 1, 1, 1, 0);
    case CMD_KEYS_BMPOP:
        return cmd_keys_counted(&k, 2, 1, 1, 0);
    case CMD_KEYS_XREAD:
        return cmd_keys_xread(&k, false);
    case CMD_KEYS_XREADGROUP:
        return cmd_keys_xread(&k, true);
    case CMD_KEYS_SORT:
        return cmd_keys_sort(&k, false);
    case CMD_KEYS_SORT_RO:
        return cmd_keys_sort(&k, true);
    case CMD_KEYS_MIGRATE:
        return cmd_keys_migrate(&k);
    case CMD_KEYS_GEORADIUS:
        return cmd_keys_georadius(&k, 6);
    case CMD_KEYS_GEORADIUSBYMEMBER:
        return cmd_keys_georadius(&k, 5);
    case CMD_KEYS_UNKNOWN:
        break;
    }
    return -1;
}
