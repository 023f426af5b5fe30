/*
 * config: the directive table and everything driven by it: defaults, the
 * redis.conf parser (sdssplitargs quoting, include), command-line overrides,
 * CONFIG GET/SET, SIGHUP reload and --help. Pure: libc only.
 */
#include "config/config.h"
#include "config/syntax.h"

#include <ctype.h>
#include <errno.h>
#include <glob.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the directive table ---------------------------------------------- */

/* How a directive's text maps to its member(s) of struct cfg. */
enum cfg_type {
    CFG_T_BOOL,     /* bool: yes | no */
    CFG_T_INT,      /* int: Redis string2ll, then [min, max] */
    CFG_T_OCTAL,    /* int: strtoll base 8, then [min, max]; printed in octal */
    CFG_T_SIZE,     /* uint64_t bytes: Redis memtoull units, then [min, max] */
    CFG_T_DURATION, /* uint64_t ms: digits + ms|s, bare = unit_ms; [min, max] in
                       the bare unit */
    CFG_T_ENUM,     /* int: index into names */
    CFG_T_STRING,   /* char * owned; "" = NULL */
    CFG_T_LIST,     /* char ** owned + size_t count at off2 */
    CFG_T_HOSTPORT, /* char * host owned + int port at off2 */
    CFG_T_RATIO,    /* double; [min, max] in millionths */
    CFG_T_OBL       /* struct cfg_obl[CFG_OBL_CLASSES]: Redis's
                       client-output-buffer-limit "<class> <hard> <soft>
                       <soft-seconds>" groups; classes not named keep their
                       value (Redis 7.0 config.c) */
};

/* Directive may be changed while running (CONFIG SET, SIGHUP reload). */
#define CFG_F_RUNTIME 0x1u
/* LIST whose repeated lines (file, command line) add to it; CONFIG SET replaces. */
#define CFG_F_APPEND 0x2u
/* Also a Redis parameter: CONFIG SET goes to Redis too (config.h cfg_is_shared). */
#define CFG_F_SHARED 0x4u

/* One row of the table: everything bulwark knows about a directive. */
struct cfg_directive {
    const char *name;         /* lower-case name, as in the file and CONFIG */
    enum cfg_type type;       /* value syntax and storage */
    size_t off;               /* offsetof(struct cfg, member) */
    size_t off2;              /* offset of the count (LIST) or port (HOSTPORT) */
    const char *def;          /* default in config syntax; NULL = unset */
    long long min;            /* lowest value in the bare unit (numeric types) */
    long long max;            /* highest value in the bare unit (numeric types) */
    uint64_t unit_ms;         /* DURATION: milliseconds in one bare unit (1 or 1000) */
    const char *const *names; /* ENUM: NULL-terminated names, index = value */
    unsigned flags;           /* CFG_F_* */
    const char *help;         /* one line for --help and the sample file */
};

#define CFG_OFF(m) offsetof(struct cfg, m)
#define CFG_RT CFG_F_RUNTIME
#define CFG_APPEND CFG_F_APPEND
#define CFG_SHARED CFG_F_SHARED
/* Row constructors: adding a directive is one line (and a struct member). */
/* clang-format off */
#define CFG_BOOL(n, m, def, fl, help) \
    {n, CFG_T_BOOL, CFG_OFF(m), 0, def, 0, 1, 0, NULL, fl, help}
#define CFG_INT(n, m, def, lo, hi, fl, help) \
    {n, CFG_T_INT, CFG_OFF(m), 0, def, lo, hi, 0, NULL, fl, help}
#define CFG_OCTAL(n, m, def, lo, hi, fl, help) \
    {n, CFG_T_OCTAL, CFG_OFF(m), 0, def, lo, hi, 0, NULL, fl, help}
#define CFG_SIZE(n, m, def, lo, hi, fl, help) \
    {n, CFG_T_SIZE, CFG_OFF(m), 0, def, lo, hi, 0, NULL, fl, help}
#define CFG_MSEC(n, m, def, lo, hi, fl, help) \
    {n, CFG_T_DURATION, CFG_OFF(m), 0, def, lo, hi, 1, NULL, fl, help}
#define CFG_SEC(n, m, def, lo, hi, fl, help) \
    {n, CFG_T_DURATION, CFG_OFF(m), 0, def, lo, hi, 1000, NULL, fl, help}
#define CFG_ENUM(n, m, names, def, fl, help) \
    {n, CFG_T_ENUM, CFG_OFF(m), 0, def, 0, 0, 0, names, fl, help}
#define CFG_STRING(n, m, fl, help) \
    {n, CFG_T_STRING, CFG_OFF(m), 0, NULL, 0, 0, 0, NULL, fl, help}
#define CFG_LIST(n, m, cnt, def, fl, help) \
    {n, CFG_T_LIST, CFG_OFF(m), CFG_OFF(cnt), def, 0, 0, 0, NULL, fl, help}
#define CFG_RATIO(n, m, def, lo, hi, fl, help) \
    {n, CFG_T_RATIO, CFG_OFF(m), 0, def, lo, hi, 0, NULL, fl, help}
#define CFG_OBLIMIT(n, m, def, fl, help) \
    {n, CFG_T_OBL, CFG_OFF(m), 0, def, 0, 0, 0, NULL, fl, help}
#define CFG_HOSTPORT(n, h, p, def, fl, help) \
    {n, CFG_T_HOSTPORT, CFG_OFF(h), CFG_OFF(p), def, 1, 65535, 0, NULL, fl, \
     help}
/* clang-format on */

/* The directives: one row each (names, types, defaults, ranges, help). */
#include "config/directives.inc"

#define CFG_TABLE_LEN (sizeof(cfg_table) / sizeof(cfg_table[0]))

/* A broken table or invariant is a bug: abort, as BW_ASSERT would. */
#define CFG_CHECK(cond, what)                                                             \
    do {                                                                                  \
        if (!(cond)) {                                                                    \
            fprintf(stderr, "config: %s:%d: %s (%s)\n", __FILE__, __LINE__, #cond, what); \
            abort();                                                                      \
        }                                                                                 \
    } while (0)

static const struct cfg_directive *
cfg_lookup(const char *name)
{
    for (size_t i = 0; i < CFG_TABLE_LEN; i++) {
        if (strcasecmp(cfg_table[i].name, name) == 0)
            return &cfg_table[i];
    }
    return NULL;
}

/* Member access: p is the member of c at offset off. */
#define CFG_AT(c, off, type) ((type *)(void *)((char *)(c) + (off)))
#define CFG_CAT(c, off, type) ((type const *)(const void *)((const char *)(c) + (off)))

/* ---- value parsing ------------------------------------------------------ */

/* Why a value was refused; cfg_reason() turns it into text. */
enum cfg_verr {
    CFG_V_OK,        /* accepted */
    CFG_V_ARITY,     /* wrong number of arguments */
    CFG_V_INT,       /* not an integer */
    CFG_V_OCTAL,     /* not an octal number */
    CFG_V_RANGE,     /* parsed, outside [min, max] */
    CFG_V_BOOL,      /* not yes/no */
    CFG_V_SIZE,      /* not a memory value */
    CFG_V_DURATION,  /* not a duration */
    CFG_V_UNIT,      /* duration not a whole number of the bare unit */
    CFG_V_ENUM,      /* not one of the names */
    CFG_V_HOSTPORT,  /* not host:port */
    CFG_V_RATIO,     /* not a decimal number */
    CFG_V_OBL_ARITY, /* client-output-buffer-limit: words not a multiple of 4 */
    CFG_V_OBL_CLASS, /* ... a class other than normal, replica/slave, pubsub */
    CFG_V_OBL_VALUE  /* ... a bad hard, soft or soft-seconds */
};

/* bulwark's durations: digits and an optional unit ms or s; out in ms. */
static enum cfg_verr
cfg_parse_duration(const char *s, uint64_t unit_ms, uint64_t *out_ms)
{
    const char *u = s;
    uint64_t n = 0, mul;

    while (*u >= '0' && *u <= '9') {
        if (n > (UINT64_MAX - 9) / 10)
            return CFG_V_DURATION;
        n = n * 10 + (uint64_t)(*u - '0');
        u++;
    }
    if (u == s)
        return CFG_V_DURATION;
    if (*u == '\0')
        mul = unit_ms;
    else if (strcasecmp(u, "ms") == 0)
        mul = 1;
    else if (strcasecmp(u, "s") == 0)
        mul = 1000;
    else
        return CFG_V_DURATION;
    if (n > UINT64_MAX / mul)
        return CFG_V_DURATION;
    if ((n * mul) % unit_ms != 0)
        return CFG_V_UNIT;
    *out_ms = n * mul;
    return CFG_V_OK;
}

/* "host:port" or "[ipv6]:port" with port 1..65535; host copied to *host. */
static enum cfg_verr
cfg_parse_hostport(const char *s, char **host, int *port)
{
    const char *h = s, *colon;
    size_t hlen;
    long long p;

    if (s[0] == '[') {
        const char *rb = strchr(s, ']');
        if (rb == NULL || rb[1] != ':')
            return CFG_V_HOSTPORT;
        h = s + 1;
        hlen = (size_t)(rb - h);
        colon = rb + 1;
    } else {
        colon = strrchr(s, ':');
        if (colon == NULL)
            return CFG_V_HOSTPORT;
        hlen = (size_t)(colon - s);
        if (memchr(s, ':', hlen) != NULL)
            return CFG_V_HOSTPORT;
    }
    if (hlen == 0 || !cfg_string2ll(colon + 1, &p) || p < 1 || p > 65535)
        return CFG_V_HOSTPORT;
    *host = cfg_xstrndup(h, hlen);
    *port = (int)p;
    return CFG_V_OK;
}

/* Words of a list: every argument is split on spaces; empty words dropped. */
static void
cfg_parse_list(int argc, const char *const *argv, char ***out, size_t *count)
{
    char **v = NULL;
    size_t n = 0;

    for (int i = 0; i < argc; i++) {
        for (const char *p = argv[i]; *p != '\0'; p += strspn(p, " ")) {
            size_t len = strcspn(p, " ");
            if (len > 0) {
                v = cfg_xrealloc(v, (n + 1) * sizeof(*v));
                v[n++] = cfg_xstrndup(p, len);
            }
            p += len;
        }
    }
    *out = v;
    *count = n;
}

/* Parse one numeric or bool value into *num (bare unit for durations: ms). */
static enum cfg_verr
cfg_parse_scalar(const struct cfg_directive *d, const char *s, long long *num, uint64_t *u64)
{
    char *end;
    uint64_t ms;
    enum cfg_verr e;

    switch (d->type) {
    case CFG_T_BOOL:
        if (strcasecmp(s, "yes") != 0 && strcasecmp(s, "no") != 0)
            return CFG_V_BOOL;
        *num = strcasecmp(s, "yes") == 0;
        return CFG_V_OK;
    case CFG_T_INT:
        return cfg_string2ll(s, num) ? CFG_V_OK : CFG_V_INT;
    case CFG_T_OCTAL:
        errno = 0;
        *num = strtoll(s, &end, 8);
        return errno == 0 && *end == '\0' ? CFG_V_OK : CFG_V_OCTAL;
    case CFG_T_SIZE:
        if (!cfg_memtoull(s, u64))
            return CFG_V_SIZE;
        *num = *u64 > (uint64_t)LLONG_MAX ? -1 : (long long)*u64;
        return CFG_V_OK;
    case CFG_T_DURATION:
        e = cfg_parse_duration(s, d->unit_ms, &ms);
        if (e != CFG_V_OK)
            return e;
        *u64 = ms;
        *num = ms / d->unit_ms > (uint64_t)LLONG_MAX ? -1 : (long long)(ms / d->unit_ms);
        return CFG_V_OK;
    case CFG_T_ENUM:
        for (int i = 0; d->names[i] != NULL; i++) {
            if (strcasecmp(s, d->names[i]) == 0) {
                *num = i;
                return CFG_V_OK;
            }
        }
        return CFG_V_ENUM;
    default:
        return CFG_V_OK;
    }
}

/*
 * client-output-buffer-limit words (every argument split on spaces) onto
 * limits[], as Redis 7.0 config.c setConfigClientOutputBufferLimitOption():
 * groups of "<class> <hard> <soft> <soft-seconds>", class normal, replica
 * (or slave) or pubsub (master is refused), sizes as memtoull, seconds a
 * string2ll >= 0. limits[] changes only when every group is valid.
 */
static enum cfg_verr
cfg_parse_obl(int argc, const char *const *argv, struct cfg_obl *limits)
{
    static const char *const classes[] = {"normal", "replica", "pubsub"};
    struct cfg_obl tmp[CFG_OBL_CLASSES];
    enum cfg_verr e = CFG_V_OK;
    char **w;
    size_t n;

    memcpy(tmp, limits, sizeof(tmp));
    cfg_parse_list(argc, argv, &w, &n);
    if (n % 4 != 0)
        e = CFG_V_OBL_ARITY;
    for (size_t i = 0; e == CFG_V_OK && i < n; i += 4) {
        int k = -1;
        long long secs;
        uint64_t hard, soft;
        for (int j = 0; j < CFG_OBL_CLASSES; j++)
            if (strcasecmp(w[i], classes[j]) == 0)
                k = j;
        if (strcasecmp(w[i], "slave") == 0)
            k = CFG_OBL_REPLICA;
        if (k < 0)
            e = CFG_V_OBL_CLASS;
        else if (!cfg_memtoull(w[i + 1], &hard) || !cfg_memtoull(w[i + 2], &soft) ||
                 !cfg_string2ll(w[i + 3], &secs) || secs < 0)
            e = CFG_V_OBL_VALUE;
        else
            tmp[k] = (struct cfg_obl){hard, soft, (uint64_t)secs};
    }
    cfg_free_words(w, n);
    if (e == CFG_V_OK)
        memcpy(limits, tmp, sizeof(tmp));
    return e;
}

/* ---- value storage ------------------------------------------------------ */

/* Release what d's members own in c and leave them empty. */
static void
cfg_value_free(struct cfg *c, const struct cfg_directive *d)
{
    if (d->type == CFG_T_STRING || d->type == CFG_T_HOSTPORT) {
        free(*CFG_AT(c, d->off, char *));
        *CFG_AT(c, d->off, char *) = NULL;
    } else if (d->type == CFG_T_LIST) {
        cfg_free_words(*CFG_AT(c, d->off, char **), *CFG_AT(c, d->off2, size_t));
        *CFG_AT(c, d->off, char **) = NULL;
        *CFG_AT(c, d->off2, size_t) = 0;
    }
}

/* Store an already validated scalar. */
static void
cfg_store_scalar(struct cfg *c, const struct cfg_directive *d, long long num, uint64_t u64)
{
    switch (d->type) {
    case CFG_T_BOOL:
        *CFG_AT(c, d->off, bool) = num != 0;
        break;
    case CFG_T_SIZE:
    case CFG_T_DURATION:
        *CFG_AT(c, d->off, uint64_t) = u64;
        break;
    default:
        *CFG_AT(c, d->off, int) = (int)num;
        break;
    }
}

/*
 * Set d in c from argc arguments. c changes only when CFG_V_OK is returned.
 */
static enum cfg_verr
cfg_value_set(struct cfg *c, const struct cfg_directive *d, int argc, const char *const *argv)
{
    long long num = 0;
    uint64_t u64 = 0;
    enum cfg_verr e;
    char *host;
    int port;

    if (d->type == CFG_T_LIST || d->type == CFG_T_OBL ? argc < 1 : argc != 1)
        return CFG_V_ARITY;
    if (d->type == CFG_T_OBL)
        return cfg_parse_obl(argc, argv, CFG_AT(c, d->off, struct cfg_obl));
    if (d->type == CFG_T_LIST) {
        char **v;
        size_t n;
        cfg_parse_list(argc, argv, &v, &n);
        if ((d->flags & CFG_F_APPEND) && *CFG_AT(c, d->off2, size_t) > 0) {
            char **old = *CFG_AT(c, d->off, char **);
            size_t m = *CFG_AT(c, d->off2, size_t);
            old = realloc(old, sizeof(char *) * (m + n + 1));
            if (old == NULL)
                abort();
            memcpy(old + m, v, sizeof(char *) * n);
            old[m + n] = NULL;
            free(v);
            v = old;
            n += m;
        } else {
            cfg_value_free(c, d);
        }
        *CFG_AT(c, d->off, char **) = v;
        *CFG_AT(c, d->off2, size_t) = n;
    } else if (d->type == CFG_T_STRING) {
        cfg_value_free(c, d);
        if (argv[0][0] != '\0')
            *CFG_AT(c, d->off, char *) = cfg_xstrdup(argv[0]);
    } else if (d->type == CFG_T_RATIO) {
        char *end;
        errno = 0;
        double x = strtod(argv[0], &end);
        if (errno != 0 || end == argv[0] || *end != '\0' || x != x)
            return CFG_V_RATIO;
        if (x * 1e6 < (double)d->min || x * 1e6 > (double)d->max)
            return CFG_V_RANGE;
        *CFG_AT(c, d->off, double) = x;
    } else if (d->type == CFG_T_HOSTPORT) {
        e = cfg_parse_hostport(argv[0], &host, &port);
        if (e != CFG_V_OK)
            return e;
        cfg_value_free(c, d);
        *CFG_AT(c, d->off, char *) = host;
        *CFG_AT(c, d->off2, int) = port;
    } else {
        e = cfg_parse_scalar(d, argv[0], &num, &u64);
        if (e != CFG_V_OK)
            return e;
        if (d->type != CFG_T_BOOL && d->type != CFG_T_ENUM && (num < d->min || num > d->max))
            return CFG_V_RANGE;
        cfg_store_scalar(c, d, num, u64);
    }
    return CFG_V_OK;
}

/* d's value as CONFIG GET shows it; the caller frees the string. */
static char *
cfg_value_format(const struct cfg *c, const struct cfg_directive *d)
{
    char buf[96];
    const char *s;

    switch (d->type) {
    case CFG_T_BOOL:
        return cfg_xstrdup(*CFG_CAT(c, d->off, bool) ? "yes" : "no");
    case CFG_T_INT:
        snprintf(buf, sizeof(buf), "%d", *CFG_CAT(c, d->off, int));
        return cfg_xstrdup(buf);
    case CFG_T_OCTAL:
        snprintf(buf, sizeof(buf), "%o", (unsigned)*CFG_CAT(c, d->off, int));
        return cfg_xstrdup(buf);
    case CFG_T_SIZE:
        snprintf(buf, sizeof(buf), "%llu", (unsigned long long)*CFG_CAT(c, d->off, uint64_t));
        return cfg_xstrdup(buf);
    case CFG_T_DURATION:
        snprintf(buf, sizeof(buf), "%llu",
                 (unsigned long long)(*CFG_CAT(c, d->off, uint64_t) / d->unit_ms));
        return cfg_xstrdup(buf);
    case CFG_T_ENUM:
        return cfg_xstrdup(d->names[*CFG_CAT(c, d->off, int)]);
    case CFG_T_RATIO:
        snprintf(buf, sizeof(buf), "%g", *CFG_CAT(c, d->off, double));
        return cfg_xstrdup(buf);
    case CFG_T_STRING:
        s = *CFG_CAT(c, d->off, char *);
        return cfg_xstrdup(s != NULL ? s : "");
    case CFG_T_OBL: { /* as Redis 7.0 CONFIG GET: "normal H S T slave H S T pubsub H S T" */
        const struct cfg_obl *l = CFG_CAT(c, d->off, struct cfg_obl);
        static const char *const shown[] = {"normal", "slave", "pubsub"};
        char out[256];
        size_t at = 0;
        for (int k = 0; k < CFG_OBL_CLASSES; k++)
            at += (size_t)snprintf(out + at, sizeof(out) - at, "%s%s %llu %llu %llu",
                                   k ? " " : "", shown[k], (unsigned long long)l[k].hard_bytes,
                                   (unsigned long long)l[k].soft_bytes,
                                   (unsigned long long)l[k].soft_seconds);
        return cfg_xstrdup(out);
    }
    case CFG_T_HOSTPORT: {
        const char *h = *CFG_CAT(c, d->off, char *);
        size_t len = strlen(h) + 16;
        char *out = cfg_xrealloc(NULL, len);
        /* brackets also keep a host that starts with '[' ("[[x]:1") */
        snprintf(out, len, strchr(h, ':') != NULL || h[0] == '[' ? "[%s]:%d" : "%s:%d", h,
                 *CFG_CAT(c, d->off2, int));
        return out;
    }
    case CFG_T_LIST:
    default: {
        char *const *v = *CFG_CAT(c, d->off, char **);
        size_t n = *CFG_CAT(c, d->off2, size_t), len = 0;
        char *out;
        for (size_t i = 0; i < n; i++)
            len += strlen(v[i]) + 1;
        out = cfg_xrealloc(NULL, len + 1);
        out[0] = '\0';
        for (size_t i = 0, at = 0; i < n; i++)
            at += (size_t)sprintf(out + at, i ? " %s" : "%s", v[i]);
        return out;
    }
    }
}

/* ---- error text --------------------------------------------------------- */

/* "debug, verbose, notice, warning" for an ENUM row. */
static void
cfg_enum_list(const struct cfg_directive *d, char *out, size_t outlen)
{
    size_t at = 0;

    out[0] = '\0';
    for (int i = 0; d->names[i] != NULL && at < outlen; i++)
        at += (size_t)snprintf(out + at, outlen - at, "%s%s", i ? ", " : "", d->names[i]);
}

/* Fixed texts per enum cfg_verr; RANGE and ENUM are formatted below. */
static const char *const cfg_redis_text[] = {
    [CFG_V_ARITY] = "wrong number of arguments",
    [CFG_V_INT] = "argument couldn't be parsed into an integer",
    [CFG_V_OCTAL] = "argument couldn't be parsed as an octal number",
    [CFG_V_BOOL] = "argument must be 'yes' or 'no'",
    [CFG_V_SIZE] = "argument must be a memory value",
    [CFG_V_DURATION] = "argument must be a duration (an integer with an "
                       "optional unit ms or s)",
    [CFG_V_UNIT] = "argument must be a whole number of seconds",
    [CFG_V_HOSTPORT] = "argument must be host:port or [ipv6]:port",
    [CFG_V_RATIO] = "argument must be a decimal number",
    [CFG_V_OBL_ARITY] = "Wrong number of arguments in buffer limit configuration.",
    [CFG_V_OBL_CLASS] = "Invalid client class specified in buffer limit configuration.",
    [CFG_V_OBL_VALUE] = "Error in hard, soft or soft_seconds setting in buffer limit "
                        "configuration.",
};
static const char *const cfg_file_rule[] = {
    [CFG_V_INT] = "an integer",
    [CFG_V_OCTAL] = "an octal number like 700",
    [CFG_V_BOOL] = "yes or no",
    [CFG_V_SIZE] = "a size: digits with an optional unit b k kb m mb g gb",
    [CFG_V_DURATION] = "a duration: digits with an optional unit ms or s",
    [CFG_V_UNIT] = "a whole number of seconds",
    [CFG_V_HOSTPORT] = "host:port or [ipv6]:port with port 1..65535",
    [CFG_V_RATIO] = "a decimal number like 0.01",
    [CFG_V_OBL_ARITY] = "groups of <class> <hard> <soft> <soft-seconds>",
    [CFG_V_OBL_CLASS] = "groups whose class is normal, replica (slave) or pubsub",
    [CFG_V_OBL_VALUE] = "groups of <class> <hard bytes> <soft bytes> <soft seconds >= 0>",
};

/*
 * Reason for refusing argv[0] (argc values) for d. redis: the text Redis
 * 7.0.15 puts after "CONFIG SET failed (...) - "; else the reason after
 * "file:line: ", which names the directive, the rule and the value.
 */
static void
cfg_reason(const struct cfg_directive *d, enum cfg_verr e, bool redis, int argc,
           const char *const *argv, char *err, size_t errlen)
{
    const char *v = argc > 0 ? argv[0] : "";
    const char *unit = d->type == CFG_T_SIZE       ? " bytes"
                       : d->type != CFG_T_DURATION ? ""
                       : d->unit_ms == 1           ? " ms"
                                                   : " s";
    char lo[32], hi[32], names[128];

    snprintf(lo, sizeof(lo), d->type == CFG_T_OCTAL ? "%llo" : "%lld", d->min);
    snprintf(hi, sizeof(hi), d->type == CFG_T_OCTAL ? "%llo" : "%lld", d->max);
    if (d->type == CFG_T_RATIO) {
        snprintf(lo, sizeof(lo), "%g", (double)d->min / 1e6);
        snprintf(hi, sizeof(hi), "%g", (double)d->max / 1e6);
    }
    if (d->type == CFG_T_ENUM)
        cfg_enum_list(d, names, sizeof(names));
    if (e == CFG_V_RANGE && redis)
        snprintf(err, errlen, "argument must be between %s and %s inclusive", lo, hi);
    else if (e == CFG_V_RANGE)
        snprintf(err, errlen, "'%s' must be between %s and %s%s, got %.64s", d->name, lo, hi,
                 unit, v);
    else if (e == CFG_V_ENUM && redis)
        snprintf(err, errlen, "argument(s) must be one of the following: %s", names);
    else if (e == CFG_V_ENUM)
        snprintf(err, errlen, "'%s' must be one of %s, got '%.64s'", d->name, names, v);
    else if (redis)
        snprintf(err, errlen, "%s", cfg_redis_text[e]);
    else if (e == CFG_V_ARITY && d->type == CFG_T_OBL)
        snprintf(err, errlen, "'%s' needs <class> <hard> <soft> <soft-seconds>", d->name);
    else if (e == CFG_V_ARITY && d->type == CFG_T_LIST)
        snprintf(err, errlen, "'%s' needs at least one argument (\"\" for none)", d->name);
    else if (e == CFG_V_ARITY)
        snprintf(err, errlen, "'%s' takes exactly one argument, got %d", d->name, argc);
    else
        snprintf(err, errlen, "'%s' must be %s%s, got '%.64s'", d->name, cfg_file_rule[e],
                 e != CFG_V_DURATION ? ""
                 : d->unit_ms == 1   ? " (bare number = ms)"
                                     : " (bare number = s)",
                 v);
}

/* ---- reading files ------------------------------------------------------ */

/* State of one cfg_load_*() / cfg_apply_args() call. */
struct cfg_ctx {
    struct cfg *c;                     /* borrowed: the config being filled */
    char *err;                         /* borrowed: caller's error buffer */
    size_t errlen;                     /* bytes in err */
    bool err_full;                     /* err already has its "where: " prefix */
    int depth;                         /* files being read (open[0..depth)) */
    char *open[CFG_INCLUDE_DEPTH_MAX]; /* owned realpath()s of those files */
};

static int cfg_read_file(struct cfg_ctx *x, const char *path, bool top);

/* Resolve path against basedir and read it, or every match of a glob. */
static int
cfg_include(struct cfg_ctx *x, const char *path, const char *basedir)
{
    char *full;
    int rc = CFG_OK;

    if (path[0] != '/' && basedir != NULL && basedir[0] != '\0') {
        size_t len = strlen(basedir) + strlen(path) + 2;
        full = cfg_xrealloc(NULL, len);
        snprintf(full, len, "%s/%s", basedir, path);
    } else {
        full = cfg_xstrdup(path);
    }
    if (strpbrk(full, "*?[") != NULL) {
        glob_t g;
        int grc = glob(full, 0, NULL, &g);
        if (grc == 0) {
            for (size_t i = 0; i < g.gl_pathc && rc == CFG_OK; i++)
                rc = cfg_read_file(x, g.gl_pathv[i], false);
        }
        if (grc != 0 && grc != GLOB_NOMATCH) {
            snprintf(x->err, x->errlen, "cannot expand include '%s'", full);
            rc = CFG_ERR;
        }
        globfree(&g);
    } else {
        rc = cfg_read_file(x, full, false);
    }
    free(full);
    return rc;
}

/* Execute one split line (or command-line group); reason in x->err. */
static int
cfg_exec(struct cfg_ctx *x, int argc, char **argv, const size_t *lens, const char *basedir)
{
    const struct cfg_directive *d;
    enum cfg_verr e;

    for (int i = 0; i < argc; i++) {
        if (strlen(argv[i]) != lens[i]) {
            snprintf(x->err, x->errlen,
                     "argument %d of '%.64s' contains a "
                     "NUL byte, which is not allowed",
                     i, argv[0]);
            return CFG_ERR;
        }
    }
    if (strcasecmp(argv[0], "include") == 0) {
        if (argc != 2) {
            snprintf(x->err, x->errlen, "'include' takes exactly one argument, got %d", argc - 1);
            return CFG_ERR;
        }
        return cfg_include(x, argv[1], basedir);
    }
    d = cfg_lookup(argv[0]);
    if (d == NULL) {
        snprintf(x->err, x->errlen,
                 "unknown directive '%.64s' (bulwark --help "
                 "lists them)",
                 argv[0]);
        return CFG_ERR;
    }
    e = cfg_value_set(x->c, d, argc - 1, (const char *const *)argv + 1);
    if (e != CFG_V_OK) {
        cfg_reason(d, e, false, argc - 1, (const char *const *)argv + 1, x->err, x->errlen);
        return CFG_ERR;
    }
    if (x->c->upstream_db != 0) {
        snprintf(x->err, x->errlen,
                 "'upstream-db' is retired: every client starts in database 0 "
                 "and SELECTs its own, as with Redis (redis://host:port/N); "
                 "remove the line");
        x->c->upstream_db = 0;
        return CFG_ERR;
    }
    return CFG_OK;
}

/*
 * Prefix the reason in x->err with "name:line: ", or with
 * "(command line):name: " when line is 0, unless it has its prefix already.
 */
static void
cfg_err_where(struct cfg_ctx *x, const char *name, long line)
{
    char *reason;

    if (x->err_full)
        return;
    reason = cfg_xstrdup(x->err);
    if (line > 0)
        snprintf(x->err, x->errlen, "%s:%ld: %s", name, line, reason);
    else
        snprintf(x->err, x->errlen, "(command line):%s: %s", name, reason);
    free(reason);
    x->err_full = true;
}

/* Parse text (modified in place); name for errors, basedir for includes. */
static int
cfg_parse_text(struct cfg_ctx *x, char *text, const char *name, const char *basedir)
{
    long lineno = 0;
    char *line = text, *next;

    for (; line != NULL; line = next) {
        char **argv, *end;
        size_t *lens;
        int argc, rc;

        lineno++;
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        while (*line != '\0' && strchr(" \t\r\n", *line) != NULL)
            line++;
        end = line + strlen(line);
        while (end > line && strchr(" \t\r\n", end[-1]) != NULL)
            *--end = '\0';
        if (line[0] == '#' || line[0] == '\0')
            continue;
        argc = cfg_split_line(line, &argv, &lens);
        if (argc == 0)
            continue; /* white space the trim keeps (\v, \f): as Redis */
        if (argc < 0) {
            snprintf(x->err, x->errlen,
                     "unbalanced quotes (a closing quote "
                     "must be followed by a space or the end of the line)");
            rc = CFG_ERR;
        } else {
            rc = cfg_exec(x, argc, argv, lens, basedir);
            cfg_free_words(argv, (size_t)argc);
            free(lens);
        }
        if (rc != CFG_OK) {
            cfg_err_where(x, name, lineno);
            return CFG_ERR;
        }
    }
    return CFG_OK;
}

/* Read a whole stream into a NUL-terminated heap string; NULL on error. */
static char *
cfg_slurp(FILE *f)
{
    size_t len = 0, cap = 4096, n;
    char *buf = cfg_xrealloc(NULL, cap);

    while ((n = fread(buf + len, 1, cap - len - 1, f)) > 0) {
        len += n;
        if (cap - len - 1 == 0)
            buf = cfg_xrealloc(buf, cap *= 2);
    }
    buf[len] = '\0';
    if (ferror(f)) { /* a directory opens, then reads fail with EISDIR */
        int saved = errno;
        free(buf);
        errno = saved;
        return NULL;
    }
    return buf;
}

/* Read and parse one file; top = the file named by the caller. */
static int
cfg_read_file(struct cfg_ctx *x, const char *path, bool top)
{
    char *real, *text, *dir, *slash;
    FILE *f;
    int rc;

    if (x->depth >= CFG_INCLUDE_DEPTH_MAX) {
        snprintf(x->err, x->errlen, "includes nested deeper than %d files",
                 CFG_INCLUDE_DEPTH_MAX);
        return CFG_ERR;
    }
    f = fopen(path, "r");
    real = f != NULL ? realpath(path, NULL) : NULL;
    text = real != NULL ? cfg_slurp(f) : NULL;
    if (text == NULL) {
        if (top)
            snprintf(x->err, x->errlen, "%s: cannot open: %s", path, strerror(errno));
        else
            snprintf(x->err, x->errlen, "cannot open include file '%s': %s", path,
                     strerror(errno));
        x->err_full = top;
        if (f != NULL)
            fclose(f);
        free(real);
        return CFG_ERR;
    }
    fclose(f);
    for (int i = 0; i < x->depth; i++) {
        if (strcmp(x->open[i], real) == 0) {
            snprintf(x->err, x->errlen, "include loop: '%s' is already being read", path);
            free(real);
            free(text);
            return CFG_ERR;
        }
    }
    dir = cfg_xstrdup(path);
    slash = strrchr(dir, '/');
    if (slash == dir)
        dir[1] = '\0'; /* "/x.conf": the root */
    else if (slash != NULL)
        *slash = '\0';
    x->open[x->depth++] = real;
    rc = cfg_parse_text(x, text, path, slash != NULL ? dir : NULL);
    free(x->open[--x->depth]);
    free(dir);
    free(text);
    return rc;
}

/* ---- public API --------------------------------------------------------- */

void
cfg_init(struct cfg *c)
{
    memset(c, 0, sizeof(*c));
    for (size_t i = 0; i < CFG_TABLE_LEN; i++) {
        const struct cfg_directive *d = &cfg_table[i];
        CFG_CHECK(d->def == NULL || cfg_value_set(c, d, 1, &d->def) == CFG_V_OK, d->name);
    }
}

void
cfg_deinit(struct cfg *c)
{
    for (size_t i = 0; i < CFG_TABLE_LEN; i++)
        cfg_value_free(c, &cfg_table[i]);
    cfg_free_words(c->overrides, c->override_count);
    memset(c, 0, sizeof(*c));
}

int
cfg_load_file(struct cfg *c, const char *path, char *err, size_t errlen)
{
    struct cfg_ctx x = {.c = c, .err = err, .errlen = errlen};

    err[0] = '\0';
    return cfg_read_file(&x, path, true);
}

int
cfg_load_string(struct cfg *c, const char *text, const char *name, char *err, size_t errlen)
{
    struct cfg_ctx x = {.c = c, .err = err, .errlen = errlen};
    char *copy = cfg_xstrdup(text);
    int rc;

    err[0] = '\0';
    rc = cfg_parse_text(&x, copy, name, NULL);
    free(copy);
    return rc;
}

/* Apply "--name args..." groups without recording them. */
static int
cfg_apply_words(struct cfg *c, int argc, char *const *argv, char *err, size_t errlen)
{
    struct cfg_ctx x = {.c = c, .err = err, .errlen = errlen};

    err[0] = '\0';
    for (int i = 0, j; i < argc; i = j) {
        char **group;
        size_t *lens;
        int n, rc;

        if (strncmp(argv[i], "--", 2) != 0) {
            snprintf(err, errlen,
                     "(command line):%s: an argument must follow "
                     "a --directive",
                     argv[i]);
            return CFG_ERR;
        }
        for (j = i + 1; j < argc && strncmp(argv[j], "--", 2) != 0; j++)
            ;
        n = j - i;
        group = cfg_xrealloc(NULL, (size_t)n * sizeof(*group));
        lens = cfg_xrealloc(NULL, (size_t)n * sizeof(*lens));
        for (int k = 0; k < n; k++) {
            group[k] = argv[i + k] + (k == 0 ? 2 : 0);
            lens[k] = strlen(group[k]);
        }
        rc = cfg_exec(&x, n, group, lens, NULL);
        free(group);
        free(lens);
        if (rc != CFG_OK) {
            cfg_err_where(&x, argv[i], 0);
            return CFG_ERR;
        }
    }
    return CFG_OK;
}

int
cfg_apply_args(struct cfg *c, int argc, char **argv, char *err, size_t errlen)
{
    if (cfg_apply_words(c, argc, argv, err, errlen) != CFG_OK)
        return CFG_ERR;
    c->overrides =
        cfg_xrealloc(c->overrides, (c->override_count + (size_t)argc) * sizeof(*c->overrides));
    for (int i = 0; i < argc; i++)
        c->overrides[c->override_count++] = cfg_xstrdup(argv[i]);
    return CFG_OK;
}

bool
cfg_is_own(const char *name)
{
    return cfg_lookup(name) != NULL;
}

bool
cfg_is_shared(const char *name)
{
    const struct cfg_directive *d = cfg_lookup(name);
    return d != NULL && (d->flags & CFG_F_SHARED);
}

int
cfg_set(struct cfg *c, const char *name, const char *value, char *err, size_t errlen)
{
    const struct cfg_directive *d = cfg_lookup(name);
    enum cfg_verr e;

    err[0] = '\0';
    if (d == NULL) {
        snprintf(err, errlen, "Unknown option");
        return CFG_ERR;
    }
    if (!(d->flags & CFG_F_RUNTIME)) {
        snprintf(err, errlen, "can't set immutable config");
        return CFG_ERR;
    }
    if (d->flags & CFG_F_APPEND) { /* CONFIG SET replaces the whole list */
        struct cfg tmp;
        memset(&tmp, 0, sizeof(tmp));
        e = cfg_value_set(&tmp, d, 1, &value);
        if (e == CFG_V_OK) {
            cfg_value_free(c, d);
            *CFG_AT(c, d->off, char **) = *CFG_AT(&tmp, d->off, char **);
            *CFG_AT(c, d->off2, size_t) = *CFG_AT(&tmp, d->off2, size_t);
        }
    } else {
        e = cfg_value_set(c, d, 1, &value);
    }
    if (e != CFG_V_OK) {
        cfg_reason(d, e, true, 1, &value, err, errlen);
        return CFG_ERR;
    }
    return CFG_OK;
}

bool
cfg_is_same(const struct cfg *c, const char *name, const char *value)
{
    const struct cfg_directive *d = cfg_lookup(name);
    struct cfg tmp;
    bool same = false;
    if (d == NULL)
        return false;
    cfg_init(&tmp);
    if (cfg_value_set(&tmp, d, 1, &value) == CFG_V_OK) {
        char *was = cfg_value_format(c, d), *now = cfg_value_format(&tmp, d);
        same = strcmp(was, now) == 0;
        free(was);
        free(now);
    }
    cfg_deinit(&tmp);
    return same;
}

size_t
cfg_get(const struct cfg *c, const char *pattern, cfg_emit_fn *emit, void *ud)
{
    size_t count = 0, plen = strlen(pattern);
    bool exact = strpbrk(pattern, "[*?") == NULL;

    for (size_t i = 0; i < CFG_TABLE_LEN; i++) {
        const struct cfg_directive *d = &cfg_table[i];
        char *v;

        if (exact ? strcasecmp(pattern, d->name) != 0
                  : !cfg_glob_match(pattern, plen, d->name, strlen(d->name), true))
            continue;
        v = cfg_value_format(c, d);
        emit(ud, exact ? pattern : d->name, v);
        free(v);
        count++;
    }
    return count;
}

int
cfg_reload(struct cfg *live, const char *path, char *err, size_t errlen)
{
    struct cfg fresh;
    size_t at = 0;

    cfg_init(&fresh);
    if (cfg_load_file(&fresh, path, err, errlen) != CFG_OK ||
        cfg_apply_words(&fresh, (int)live->override_count, live->overrides, err, errlen) !=
            CFG_OK) {
        cfg_deinit(&fresh);
        return CFG_ERR;
    }
    err[0] = '\0';
    for (size_t i = 0; i < CFG_TABLE_LEN; i++) {
        const struct cfg_directive *d = &cfg_table[i];
        char *was = cfg_value_format(live, d), *now = cfg_value_format(&fresh, d);
        /* The text form is lossless: list words never contain spaces. */
        if (strcmp(was, now) != 0 && (d->flags & CFG_F_RUNTIME)) {
            const char *text = now;
            CFG_CHECK(cfg_value_set(live, d, 1, &text) == CFG_V_OK, d->name);
        } else if (strcmp(was, now) != 0 && at < errlen) {
            at += (size_t)snprintf(err + at, errlen - at, "%s%s",
                                   at ? ", " : "restart required to apply: ", d->name);
        }
        free(was);
        free(now);
    }
    cfg_deinit(&fresh);
    return err[0] != '\0' ? CFG_RELOAD_PARTIAL : CFG_OK;
}

/* The value syntax of d for --help, with its bounds. */
static void
cfg_syntax(const struct cfg_directive *d, char *out, size_t outlen)
{
    static const char *const syntax[] = {[CFG_T_BOOL] = "yes|no",
                                         [CFG_T_INT] = "integer",
                                         [CFG_T_OCTAL] = "octal",
                                         [CFG_T_SIZE] = "bytes",
                                         [CFG_T_DURATION] = "",
                                         [CFG_T_ENUM] = "name",
                                         [CFG_T_STRING] = "string",
                                         [CFG_T_LIST] = "word ...",
                                         [CFG_T_RATIO] = "number",
                                         [CFG_T_HOSTPORT] = "host:port",
                                         [CFG_T_OBL] = "class hard soft soft-seconds ..."};

    if (d->type == CFG_T_INT)
        snprintf(out, outlen, "integer %lld..%lld", d->min, d->max);
    else if (d->type == CFG_T_OCTAL)
        snprintf(out, outlen, "octal %llo..%llo", d->min, d->max);
    else if (d->type == CFG_T_SIZE)
        snprintf(out, outlen, "bytes >= %lld, unit b k kb m mb g gb", d->min);
    else if (d->type == CFG_T_DURATION)
        snprintf(out, outlen, "%lld..%lld%s, unit ms or s", d->min, d->max,
                 d->unit_ms == 1 ? "ms" : "s");
    else
        snprintf(out, outlen, "%s", syntax[d->type]);
}

void
cfg_print_help(FILE *out)
{
    char syntax[96];

    fprintf(out, "Directives: config file lines, --name on the command line, "
                 "CONFIG GET, and CONFIG SET where marked runtime.\n\n");
    for (size_t i = 0; i < CFG_TABLE_LEN; i++) {
        const struct cfg_directive *d = &cfg_table[i];
        cfg_syntax(d, syntax, sizeof(syntax));
        fprintf(out, "  %s <%s>  (default %s%s)\n      %s\n", d->name, syntax,
                d->def != NULL ? d->def : "\"\"", (d->flags & CFG_F_RUNTIME) ? ", runtime" : "",
                d->help);
    }
}
