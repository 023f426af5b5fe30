/*
 * util: allocation that never returns NULL, monotonic time, BW_ASSERT.
 * Pure: no libevent, no hiredis. Every module may include it.
 */
#ifndef BW_UTIL_H
#define BW_UTIL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define BW_OK 0
#define BW_ERR -1

#define BW_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))
#define BW_MIN(a, b) ((a) < (b) ? (a) : (b))
#define BW_MAX(a, b) ((a) > (b) ? (a) : (b))

/*
 * Abort with file:line and the failed condition. Never compiled out; the
 * condition must have no side effects.
 */
#define BW_ASSERT(cond)                                \
    do {                                               \
        if (!(cond))                                   \
            bw_assert_fail(#cond, __FILE__, __LINE__); \
    } while (0)

void bw_assert_fail(const char *cond, const char *file, int line) __attribute__((noreturn));

/*
 * Allocation wrappers. Out of memory is a bug here (every buffer and queue
 * has a configured limit), so they print the size to stderr and abort
 * instead of returning NULL. bw_free(NULL) is a no-op.
 */
void *bw_malloc(size_t size);
void *bw_calloc(size_t nmemb, size_t size);
void *bw_realloc(void *ptr, size_t size);
char *bw_strdup(const char *s);
char *bw_strndup(const char *s, size_t n);
void bw_free(void *ptr);

/*
 * A pool of same-size blocks kept for reuse: objects made and freed per
 * request (reply slots, batch entries, hiredis reply objects) cost malloc
 * and free hundreds of instructions each once glibc's per-thread cache is
 * exhausted by a batch. At most max blocks are kept; after
 * bw_pool_drain() (at shutdown) blocks put back are freed. Declare one per
 * thread: static _Thread_local struct bw_pool p = BW_POOL(size, max);
 */
struct bw_pool {
    void *free;  /* kept blocks, each linked through its first bytes */
    size_t n;    /* blocks kept */
    size_t size; /* bytes of a block, >= sizeof(void *) */
    size_t max;  /* most blocks kept */
    bool closed; /* drained: bw_pool_put frees */
};
#define BW_POOL(size, max)            \
    {                                 \
        NULL, 0, (size), (max), false \
    }

/* A block of p->size bytes, contents undefined (never NULL: aborts on OOM). */
void *bw_pool_get(struct bw_pool *p);

/* Give block b (from bw_pool_get(p), or bw_malloc(p->size)) back. */
void bw_pool_put(struct bw_pool *p, void *b);

/* Free the kept blocks; blocks put back later are freed. */
void bw_pool_drain(struct bw_pool *p);

/*
 * Redis 7.0.15 util.c string2ll(): optional '-', then "0" alone or a digit
 * 1-9 followed by digits; no '+', spaces or leading zeros; fewer than
 * BW_LONG_STR_SIZE characters; must fit a long long. Returns true and sets
 * *out. (Requests' lengths by Redis's rules; replies' lengths fast.)
 */
#define BW_LONG_STR_SIZE 21
bool bw_string2ll(const char *s, size_t slen, long long *out);

/* Monotonic clock (CLOCK_MONOTONIC): microseconds and milliseconds. */
uint64_t bw_now_us(void);
uint64_t bw_now_ms(void);

/* Wall clock (CLOCK_REALTIME) in milliseconds since the epoch. */
uint64_t bw_wall_ms(void);

/*
 * As Redis 7.0 adjustOpenFilesLimit(): make RLIMIT_NOFILE cover clients +
 * reserve descriptors, raising the soft limit (to the hard limit at most)
 * when it is lower. Returns clients when the limit in force covers them,
 * else how many fit beside the reserve (at least 1).
 */
int bw_fd_fit_clients(int clients, int reserve);

#endif
