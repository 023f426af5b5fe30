/*
 * jitter: TTL jitter against cache avalanche. Finds the TTL of a write the
 * way Redis 7.0.15 parses it (t_string.c, expire.c), draws the extra TTL,
 * and re-encodes the request. Pure: no I/O besides getrandom(2) at seeding.
 */
#include "proxy/jitter.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "config/config.h"
#include "proxy/util.h"

/* Option flags of SET and GETEX, named as in Redis's t_string.c. */
enum jitter_flag {
    JITTER_F_NX = 1 << 0,      /* SET NX: only if absent (lock pattern) */
    JITTER_F_XX = 1 << 1,      /* SET XX: only if present */
    JITTER_F_GET = 1 << 2,     /* SET GET: reply with the old value */
    JITTER_F_KEEPTTL = 1 << 3, /* SET KEEPTTL: keep the current TTL */
    JITTER_F_PERSIST = 1 << 4, /* GETEX PERSIST: drop the TTL */
    JITTER_F_EX = 1 << 5,      /* relative seconds */
    JITTER_F_PX = 1 << 6,      /* relative milliseconds */
    JITTER_F_EXAT = 1 << 7,    /* absolute unix seconds */
    JITTER_F_PXAT = 1 << 8,    /* absolute unix milliseconds */
};

#define JITTER_F_EXPIRY (JITTER_F_EX | JITTER_F_PX | JITTER_F_EXAT | JITTER_F_PXAT)

/* Where a request carries its TTL and how to express it in ms. */
struct jitter_plan {
    int ttl_index;       /* argv index of the TTL argument */
    int unit_index;      /* argv index of the unit word, -1 if none */
    bool seconds;        /* the TTL is in seconds (else ms) */
    bool absolute;       /* the TTL is a unix timestamp (else relative) */
    const char *ms_name; /* static: argv[0] in ms form, NULL to keep */
    const char *ms_word; /* static: unit word in ms form, NULL to keep */
};

/* An expiry option word of SET/GETEX and what it means. */
struct jitter_word {
    const char *word;    /* static: option, matched case-insensitively */
    int flag;            /* enum jitter_flag bit */
    bool seconds;        /* value in seconds */
    bool absolute;       /* value is a unix timestamp */
    const char *ms_word; /* static: the same option in ms, NULL if it is */
};

static const struct jitter_word jitter_words[] = {
    {"EX", JITTER_F_EX, true, false, "PX"},
    {"PX", JITTER_F_PX, false, false, NULL},
    {"EXAT", JITTER_F_EXAT, true, true, "PXAT"},
    {"PXAT", JITTER_F_PXAT, false, true, NULL},
};

/* ---- random numbers ------------------------------------------------------ */

/* splitmix64 (Steele, Lea, Flood 2014), used only to expand seeds. */
static uint64_t
jitter_splitmix64(uint64_t *x)
{
    uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));

    z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
    z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
    return z ^ (z >> 31);
}

static uint64_t
jitter_rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

void
jitter_rng_seed(struct jitter_rng *r, uint64_t seed)
{
    uint64_t x = seed;
    size_t i;

    if (seed == 0) {
        ssize_t n = getrandom(r->s, sizeof(r->s), GRND_NONBLOCK);

        if (n == (ssize_t)sizeof(r->s) && (r->s[0] | r->s[1] | r->s[2] | r->s[3]) != 0)
            return;
        x = bw_now_us() ^ (bw_wall_ms() << 20) ^ ((uint64_t)getpid() << 42);
    }
    for (i = 0; i < BW_ARRAY_LEN(r->s); i++)
        r->s[i] = jitter_splitmix64(&x);
}

uint64_t
jitter_rng_next(struct jitter_rng *r)
{
    uint64_t *s = r->s;
    uint64_t result = jitter_rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;

    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = jitter_rotl(s[3], 45);
    return result;
}

uint64_t
jitter_rng_below(struct jitter_rng *r, uint64_t bound_inclusive)
{
    uint64_t range, threshold, x;

    if (bound_inclusive == UINT64_MAX)
        return jitter_rng_next(r);
    range = bound_inclusive + 1;
    threshold = (0 - range) % range; /* 2^64 mod range */
    do {
        x = jitter_rng_next(r);
    } while (x < threshold);
    return x % range;
}

/* ---- request parsing ----------------------------------------------------- */

/* a equals word, ASCII case-insensitively (Redis compares with strcasecmp). */
static bool
jitter_arg_is(const struct jitter_arg *a, const char *word)
{
    size_t i, n = strlen(word);

    if (a->len != n)
        return false;
    for (i = 0; i < n; i++) {
        unsigned char c = (unsigned char)a->ptr[i];

        if (c >= 'a' && c <= 'z')
            c = (unsigned char)(c - 'a' + 'A');
        if (c != (unsigned char)word[i])
            return false;
    }
    return true;
}

/*
 * Parse a TTL Redis would accept as a positive integer: string2ll syntax
 * (Redis util.c) - digits only, no sign, no leading zero, at most LLONG_MAX.
 */
static bool
jitter_parse_ttl(const struct jitter_arg *a, uint64_t *value)
{
    uint64_t v = 0;
    size_t i;

    if (a->len == 0 || a->len > 19 || a->ptr[0] < '1' || a->ptr[0] > '9')
        return false;
    for (i = 0; i < a->len; i++) {
        if (a->ptr[i] < '0' || a->ptr[i] > '9')
            return false;
        v = v * 10 + (uint64_t)(a->ptr[i] - '0'); /* 19 digits fit */
    }
    if (v > (uint64_t)INT64_MAX) /* out of range for Redis too */
        return false;
    *value = v;
    return true;
}

/*
 * Handle one expiry word of SET/GETEX at argv[j]: the rules of Redis
 * 7.0.15 parseExtendedStringArgumentsOrReply(), except that a repeated
 * expiry option is refused (Redis keeps the last). Returns false when the
 * request is not one we rewrite.
 */
static bool
jitter_parse_expiry(int argc, int j, const struct jitter_word *w, int *flags,
                    struct jitter_plan *p)
{
    int conflict = JITTER_F_KEEPTTL | JITTER_F_PERSIST | JITTER_F_EXPIRY;

    if ((*flags & conflict) != 0 || j + 1 >= argc)
        return false;
    *flags |= w->flag;
    p->ttl_index = j + 1;
    p->unit_index = j;
    p->seconds = w->seconds;
    p->absolute = w->absolute;
    p->ms_word = w->ms_word;
    return true;
}

/*
 * Parse the options of SET (is_set) or GETEX from argv[first]. Fills p for
 * the expiry found, if any, and the flags seen. Returns false on anything
 * Redis would reject and on a repeated expiry option.
 */
static bool
jitter_parse_string_opts(int argc, const struct jitter_arg *argv, int first, bool is_set,
                         int *flags, struct jitter_plan *p)
{
    int j;
    size_t w;

    for (j = first; j < argc; j++) {
        const struct jitter_arg *a = &argv[j];

        for (w = 0; w < BW_ARRAY_LEN(jitter_words); w++)
            if (jitter_arg_is(a, jitter_words[w].word))
                break;
        if (w < BW_ARRAY_LEN(jitter_words)) {
            if (!jitter_parse_expiry(argc, j, &jitter_words[w], flags, p))
                return false;
            j++;
        } else if (is_set && jitter_arg_is(a, "NX") && !(*flags & JITTER_F_XX)) {
            *flags |= JITTER_F_NX;
        } else if (is_set && jitter_arg_is(a, "XX") && !(*flags & JITTER_F_NX)) {
            *flags |= JITTER_F_XX;
        } else if (is_set && jitter_arg_is(a, "GET")) {
            *flags |= JITTER_F_GET;
        } else if (is_set && jitter_arg_is(a, "KEEPTTL") && !(*flags & JITTER_F_EXPIRY)) {
            *flags |= JITTER_F_KEEPTTL;
        } else if (!is_set && jitter_arg_is(a, "PERSIST") && !(*flags & JITTER_F_EXPIRY)) {
            *flags |= JITTER_F_PERSIST;
        } else {
            return false;
        }
    }
    return true;
}

/*
 * Options of EXPIRE and friends from argv[3]: NX, XX, GT, LT, any case and
 * repeatable; NX with XX/GT/LT, or GT with LT, is an error (Redis 7.0.15
 * expire.c parseExtendedExpireArgumentsOrReply).
 */
static bool
jitter_parse_expire_opts(int argc, const struct jitter_arg *argv)
{
    bool nx = false, xx = false, gt = false, lt = false;
    int j;

    for (j = 3; j < argc; j++) {
        if (jitter_arg_is(&argv[j], "NX"))
            nx = true;
        else if (jitter_arg_is(&argv[j], "XX"))
            xx = true;
        else if (jitter_arg_is(&argv[j], "GT"))
            gt = true;
        else if (jitter_arg_is(&argv[j], "LT"))
            lt = true;
        else
            return false;
    }
    return !(nx && (xx || gt || lt)) && !(gt && lt);
}

/* SET key value [options]: jittered unless NX or an opted-out form. */
static bool
jitter_plan_set(const struct jitter_opts *o, int argc, const struct jitter_arg *argv,
                struct jitter_plan *p)
{
    int flags = 0;

    if (argc < 3 || !jitter_parse_string_opts(argc, argv, 3, true, &flags, p))
        return false;
    if (!(flags & JITTER_F_EXPIRY) || (flags & JITTER_F_NX))
        return false;
    return !p->absolute || o->absolute;
}

/* GETEX key [options]: only with o->expire (and o->absolute for EXAT/PXAT). */
static bool
jitter_plan_getex(const struct jitter_opts *o, int argc, const struct jitter_arg *argv,
                  struct jitter_plan *p)
{
    int flags = 0;

    if (!o->expire || argc < 2 || !jitter_parse_string_opts(argc, argv, 2, false, &flags, p))
        return false;
    if (!(flags & JITTER_F_EXPIRY))
        return false;
    return !p->absolute || o->absolute;
}

/* Commands whose TTL is argv[2]. */
struct jitter_cmd {
    const char *name;    /* static: command name, any case */
    int argc_min;        /* fewest arguments, name included */
    int argc_max;        /* most arguments (the SETEX pair takes exactly 4) */
    bool seconds;        /* TTL in seconds */
    bool absolute;       /* TTL is a unix timestamp */
    bool needs_expire;   /* only with o->expire */
    const char *ms_name; /* static: the ms form of the command, or NULL */
};

static const struct jitter_cmd jitter_cmds[] = {
    {"SETEX", 4, 4, true, false, false, "PSETEX"},
    {"PSETEX", 4, 4, false, false, false, NULL},
    {"EXPIRE", 3, 7, true, false, true, "PEXPIRE"},
    {"PEXPIRE", 3, 7, false, false, true, NULL},
    {"EXPIREAT", 3, 7, true, true, true, "PEXPIREAT"},
    {"PEXPIREAT", 3, 7, false, true, true, NULL},
};

/* SETEX, PSETEX and the EXPIRE family. */
static bool
jitter_plan_cmd(const struct jitter_opts *o, const struct jitter_cmd *c, int argc,
                const struct jitter_arg *argv, struct jitter_plan *p)
{
    /* EXPIREAT/PEXPIREAT: ttl-jitter-absolute alone opts in (the rule). */
    if (argc < c->argc_min || (c->absolute ? !o->absolute : (c->needs_expire && !o->expire)))
        return false;
    if (c->needs_expire ? !jitter_parse_expire_opts(argc, argv) : argc > c->argc_max)
        return false;
    p->ttl_index = 2;
    p->unit_index = -1;
    p->seconds = c->seconds;
    p->absolute = c->absolute;
    p->ms_name = c->ms_name;
    p->ms_word = NULL;
    return true;
}

/* Find the TTL of argv and whether o lets it be jittered. */
static bool
jitter_plan(const struct jitter_opts *o, int argc, const struct jitter_arg *argv,
            struct jitter_plan *p)
{
    size_t i;

    p->ms_name = NULL;
    p->ms_word = NULL;
    if (argc < 1)
        return false;
    if (jitter_arg_is(&argv[0], "SET"))
        return jitter_plan_set(o, argc, argv, p);
    if (jitter_arg_is(&argv[0], "GETEX"))
        return jitter_plan_getex(o, argc, argv, p);
    for (i = 0; i < BW_ARRAY_LEN(jitter_cmds); i++)
        if (jitter_arg_is(&argv[0], jitter_cmds[i].name))
            return jitter_plan_cmd(o, &jitter_cmds[i], argc, argv, p);
    return false;
}

/* ---- sizing and drawing -------------------------------------------------- */

/* The key argv[1] matches one of the exclude globs. */
static bool
jitter_excluded(const struct jitter_opts *o, const struct jitter_arg *key)
{
    size_t i;

    for (i = 0; i < o->exclude_count; i++) {
        const char *g = o->exclude[i];

        if (cfg_glob_match(g, strlen(g), key->ptr, key->len, false))
            return true;
    }
    return false;
}

/* min(floor(rel_ms * percent / 100), max_ms), without overflow. */
static uint64_t
jitter_span_ms(const struct jitter_opts *o, uint64_t rel_ms)
{
    uint64_t q = rel_ms / 100, rem = rel_ms % 100, span, extra;

    if (o->percent != 0 && q > UINT64_MAX / o->percent)
        return o->max_ms;
    span = q * o->percent;
    extra = rem * o->percent / 100; /* rem < 100: no overflow */
    if (span > UINT64_MAX - extra)
        return o->max_ms;
    return BW_MIN(span + extra, o->max_ms);
}

/*
 * Size and draw the jitter for plan p; fill out. The expiry in ms, e, and
 * its relative size t decide; a draw is made only when the largest result
 * stays within JITTER_TTL_MAX_MS, so the draw is never clipped.
 */
static bool
jitter_apply(const struct jitter_opts *o, struct jitter_rng *r, uint64_t now_ms,
             const struct jitter_arg *ttl, const struct jitter_plan *p, struct jitter_result *out)
{
    uint64_t v, e_ms, t_ms, step, steps, d, nv;
    bool whole_seconds = p->seconds && o->keep_unit;

    if (!jitter_parse_ttl(ttl, &v) || v > JITTER_TTL_MAX_MS / (p->seconds ? 1000 : 1))
        return false;
    e_ms = p->seconds ? v * 1000 : v;
    if (p->absolute && e_ms <= now_ms)
        return false;
    t_ms = p->absolute ? e_ms - now_ms : e_ms;
    if (t_ms < o->min_ttl_ms)
        return false;
    step = whole_seconds ? 1000 : 1;
    steps = jitter_span_ms(o, t_ms) / step;
    if (steps == 0 || steps > (JITTER_TTL_MAX_MS - e_ms) / step)
        return false;
    d = jitter_rng_below(r, steps);
    if (d == 0)
        return false;
    nv = whole_seconds ? v + d : e_ms + d;
    out->added_ms = d * step;
    out->ttl_index = p->ttl_index;
    if (p->seconds && !whole_seconds) {
        out->cmd_name = p->ms_name;
        out->unit_word = p->ms_word;
        out->unit_index = p->ms_word != NULL ? p->unit_index : -1;
    }
    out->ttl_len = (size_t)snprintf(out->ttl_buf, sizeof(out->ttl_buf), "%" PRIu64, nv);
    out->rewritten = true;
    return true;
}

bool
jitter_rewrite(const struct jitter_opts *o, struct jitter_rng *r, uint64_t now_ms, int argc,
               const struct jitter_arg *argv, struct jitter_result *out)
{
    struct jitter_plan p;

    memset(out, 0, sizeof(*out));
    out->ttl_index = -1;
    out->unit_index = -1;
    if (o->percent == 0 || o->max_ms == 0 || !jitter_plan(o, argc, argv, &p))
        return false;
    if (jitter_excluded(o, &argv[1]))
        return false;
    return jitter_apply(o, r, now_ms, &argv[p.ttl_index], &p, out);
}

/* ---- encoding ------------------------------------------------------------ */

/* Append "<prefix><n>\r\n" at out + off (if out) and return the new offset. */
static size_t
jitter_put_header(char *out, size_t off, char prefix, uint64_t n)
{
    char buf[32];
    int len = snprintf(buf, sizeof(buf), "%c%" PRIu64 "\r\n", prefix, n);

    BW_ASSERT(len > 0 && (size_t)len < sizeof(buf));
    if (out != NULL)
        memcpy(out + off, buf, (size_t)len);
    return off + (size_t)len;
}

/* Append one bulk string "$<len>\r\n<bytes>\r\n". */
static size_t
jitter_put_bulk(char *out, size_t off, const char *ptr, size_t len)
{
    off = jitter_put_header(out, off, '$', len);
    if (out != NULL) {
        if (len > 0)
            memcpy(out + off, ptr, len);
        memcpy(out + off + len, "\r\n", 2);
    }
    return off + len + 2;
}

/* Encode argv with res applied into out (or only measure when out NULL). */
static size_t
jitter_put_request(int argc, const struct jitter_arg *argv, const struct jitter_result *res,
                   char *out)
{
    bool rw = res != NULL && res->rewritten;
    size_t off = jitter_put_header(out, 0, '*', (uint64_t)argc);
    int i;

    for (i = 0; i < argc; i++) {
        const char *ptr = argv[i].ptr;
        size_t len = argv[i].len;

        if (rw && i == 0 && res->cmd_name != NULL) {
            ptr = res->cmd_name;
            len = strlen(ptr);
        } else if (rw && i == res->unit_index && res->unit_word != NULL) {
            ptr = res->unit_word;
            len = strlen(ptr);
        } else if (rw && i == res->ttl_index) {
            ptr = res->ttl_buf;
            len = res->ttl_len;
        }
        off = jitter_put_bulk(out, off, ptr, len);
    }
    return off;
}

size_t
jitter_encode(int argc, const struct jitter_arg *argv, const struct jitter_result *res, char *out,
              size_t outlen)
{
    size_t need;

    BW_ASSERT(argc >= 0);
    need = jitter_put_request(argc, argv, res, NULL);
    if (out != NULL && outlen >= need)
        jitter_put_request(argc, argv, res, out);
    return need;
}
