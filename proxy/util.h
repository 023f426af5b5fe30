/*
 * util: allocation that never returns NULL, monotonic time, BW_ASSERT.
 * Pure: no libevent, no hiredis. Every module may include it.
 */
#ifndef BW_UTIL_H
#define BW_UTIL_H

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
