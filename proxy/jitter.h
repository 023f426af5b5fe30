/*
 * jitter: TTL jitter against cache avalanche. Rewrites the TTL of a cache
 * write (SET EX/PX, SETEX, PSETEX; opt-in EXPIRE family and absolute
 * expiries) to a uniformly drawn, never shorter value. Pure: no I/O.
 */
#ifndef BW_JITTER_H
#define BW_JITTER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/*
 * Largest TTL or timestamp, in milliseconds, that a rewrite may produce:
 * 2^62 ms (about 146 million years). Redis 7.0.15 rejects a relative TTL
 * whose expiry overflows its clock (measured: PX is accepted up to
 * LLONG_MAX - now_ms, EX up to (LLONG_MAX - now_ms) / 1000, EXAT up to
 * LLONG_MAX / 1000, PXAT and PEXPIREAT up to LLONG_MAX), so every value at
 * or below this bound is accepted by every form for any plausible server
 * clock, whatever the skew between our clock and the server's. A rewrite
 * that could exceed it is not made.
 */
#define JITTER_TTL_MAX_MS (UINT64_C(1) << 62)

/* Room for the decimal digits of any uint64_t value. */
#define JITTER_TTL_BUF 24

/* What to jitter and by how much; filled from the config, read only here. */
struct jitter_opts {
    unsigned percent;           /* extra TTL up to ttl * percent / 100; 0 disables */
    uint64_t max_ms;            /* cap on the extra TTL, ms; 0 disables */
    uint64_t min_ttl_ms;        /* relative TTLs below this (ms) are left alone */
    bool expire;                /* also EXPIRE, PEXPIRE, GETEX EX/PX (and with
                            absolute: EXPIREAT, PEXPIREAT, GETEX EXAT/PXAT) */
    bool absolute;              /* also absolute expiries (EXAT, PXAT, ...AT) */
    bool keep_unit;             /* draw whole seconds for seconds TTLs instead of
                            converting to ms (keeps the command name and
                            unit word, e.g. for ACLs naming SETEX only) */
    const char *const *exclude; /* borrowed: key globs never jittered, Redis
                                   KEYS syntax, case-sensitive; may be NULL */
    size_t exclude_count;       /* entries in exclude */
};

/* xoshiro256** state; one per worker thread, not shared. */
struct jitter_rng {
    uint64_t s[4]; /* generator state, never all zero */
};

/* One request argument: a view into the request, like the parser's resp_arg. */
struct jitter_arg {
    const char *ptr; /* borrowed: argument bytes, not NUL-terminated */
    size_t len;      /* bytes at ptr */
};

/* The rewrite to apply; the caller re-encodes the request (jitter_encode). */
struct jitter_result {
    bool rewritten;               /* false: send the request exactly as received */
    const char *cmd_name;         /* static replacement for argv[0] ("PSETEX",
                              "PEXPIRE", "PEXPIREAT"), or NULL to keep it */
    int ttl_index;                /* argv index of the TTL argument, -1 if none */
    int unit_index;               /* argv index of the unit word to replace, or -1 */
    const char *unit_word;        /* static replacement unit word ("PX", "PXAT"),
                              NULL when unit_index is -1 */
    char ttl_buf[JITTER_TTL_BUF]; /* the new TTL digits, NUL-terminated */
    size_t ttl_len;               /* digits in ttl_buf */
    uint64_t added_ms;            /* extra TTL added, ms (for INFO) */
};

/*
 * Seed r. seed != 0 gives a fixed sequence (tests); seed 0 takes 32 bytes
 * from getrandom(2) (GRND_NONBLOCK), falling back to the clocks and the pid
 * mixed through splitmix64 if that fails, since this randomness spreads
 * load and protects no secret. Expanded with splitmix64 as recommended by
 * the xoshiro authors (Blackman & Vigna, prng.di.unimi.it).
 */
void jitter_rng_seed(struct jitter_rng *r, uint64_t seed);

/* Next 64 random bits (xoshiro256**, Blackman & Vigna 2018). */
uint64_t jitter_rng_next(struct jitter_rng *r);

/*
 * Uniform integer in [0, bound_inclusive], without modulo bias: draws below
 * 2^64 mod (bound + 1) are rejected (OpenBSD arc4random_uniform), at most
 * half of the draws for the worst bound, almost none for small bounds.
 */
uint64_t jitter_rng_below(struct jitter_rng *r, uint64_t bound_inclusive);

/*
 * Decide whether and how to jitter the request argv[0..argc-1] (argv[0] is
 * the command name, any case). now_ms is the wall clock in ms since the
 * epoch, used only to size an absolute expiry. Always fills *out; returns
 * out->rewritten.
 *
 * Jittered: SET key value EX|PX n (any option order and case, with XX or
 * GET), SETEX, PSETEX; with o->expire also EXPIRE/PEXPIRE (NX/XX/GT/LT
 * kept) and GETEX EX/PX; with o->absolute also SET EXAT/PXAT, and with both
 * EXPIREAT/PEXPIREAT and GETEX EXAT/PXAT (absolute-time rate-limit windows
 * stay exact unless both are on). The relative TTL t (for an absolute
 * expiry: timestamp - now_ms) gets d uniform in [0, min(t * percent / 100,
 * max_ms)] ms added; a seconds TTL is sent in ms (EX->PX, EXAT->PXAT,
 * SETEX->PSETEX, EXPIRE->PEXPIRE, EXPIREAT->PEXPIREAT) unless o->keep_unit,
 * in which case d is whole seconds. The reply Redis sends is unchanged.
 *
 * Left alone: SET with NX (locks), KEEPTTL, PERSIST, TTLs below
 * o->min_ttl_ms, absolute expiries not in the future, keys matching an
 * exclude glob, a TTL that is not a canonical positive integer (Redis
 * string2ll syntax: no sign, no leading zero, no spaces, fits in int64),
 * results above JITTER_TTL_MAX_MS, d = 0, and every request that Redis
 * 7.0.15 would reject (arity, syntax error, conflicting options) or where
 * an expiry option repeats (Redis accepts SET k v EX abc EX 10 and uses the
 * last; not worth modelling) - Redis's own error then reaches the client.
 * Never makes a request Redis would reject out of one it would accept.
 */
bool jitter_rewrite(const struct jitter_opts *o, struct jitter_rng *r, uint64_t now_ms, int argc,
                    const struct jitter_arg *argv, struct jitter_result *out);

/*
 * Encode argv with res applied (res may be NULL or not rewritten: the
 * request as given) as a RESP multibulk "*<argc>\r\n$<len>\r\n<arg>\r\n...".
 * Returns the bytes needed; writes them to out only when out != NULL and
 * outlen >= that size (call with out NULL to size the buffer). No NUL is
 * appended.
 */
size_t jitter_encode(int argc, const struct jitter_arg *argv, const struct jitter_result *res,
                     char *out, size_t outlen);

#endif
