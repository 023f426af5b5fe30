/* util: allocation wrappers, monotonic time and the assertion handler. */
#include "proxy/util.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

void
bw_assert_fail(const char *cond, const char *file, int line)
{
    fprintf(stderr, "bulwark: assertion failed: %s (%s:%d)\n", cond, file, line);
    abort();
}

static void
bw_oom(size_t size)
{
    fprintf(stderr, "bulwark: out of memory allocating %zu bytes\n", size);
    abort();
}

void *
bw_malloc(size_t size)
{
    void *p = malloc(size ? size : 1);
    if (p == NULL)
        bw_oom(size);
    return p;
}

void *
bw_calloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        bw_oom(nmemb * size);
    return p;
}

void *
bw_realloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size ? size : 1);
    if (p == NULL)
        bw_oom(size);
    return p;
}

char *
bw_strdup(const char *s)
{
    return bw_strndup(s, strlen(s));
}

char *
bw_strndup(const char *s, size_t n)
{
    char *p = bw_malloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void
bw_free(void *ptr)
{
    free(ptr);
}

void *
bw_pool_get(struct bw_pool *p)
{
    void *b = p->free;
    if (b == NULL)
        return bw_malloc(p->size);
    memcpy(&p->free, b, sizeof(void *));
    p->n--;
    return b;
}

void
bw_pool_put(struct bw_pool *p, void *b)
{
    if (p->closed || p->n >= p->max) {
        bw_free(b);
        return;
    }
    memcpy(b, &p->free, sizeof(void *));
    p->free = b;
    p->n++;
}

void
bw_pool_drain(struct bw_pool *p)
{
    p->closed = true;
    while (p->free != NULL)
        bw_free(bw_pool_get(p));
}

static uint64_t
bw_clock_us(clockid_t id)
{
    struct timespec ts;
    BW_ASSERT(clock_gettime(id, &ts) == 0);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

uint64_t
bw_now_us(void)
{
    return bw_clock_us(CLOCK_MONOTONIC);
}

uint64_t
bw_now_ms(void)
{
    return bw_clock_us(CLOCK_MONOTONIC) / 1000u;
}

uint64_t
bw_wall_ms(void)
{
    return bw_clock_us(CLOCK_REALTIME) / 1000u;
}

int
bw_fd_fit_clients(int clients, int reserve)
{
    struct rlimit rl;
    rlim_t want = (rlim_t)clients + (rlim_t)reserve;
    if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur >= want)
        return clients;
    struct rlimit up = {want, rl.rlim_max > want ? rl.rlim_max : want};
    if (setrlimit(RLIMIT_NOFILE, &up) == 0)
        return clients;
    up.rlim_cur = up.rlim_max = rl.rlim_max; /* as much as allowed */
    if (rl.rlim_max > rl.rlim_cur && setrlimit(RLIMIT_NOFILE, &up) == 0)
        rl.rlim_cur = rl.rlim_max;
    if (rl.rlim_cur >= want)
        return clients;
    return rl.rlim_cur > (rlim_t)reserve + 1 ? (int)(rl.rlim_cur - (rlim_t)reserve) : 1;
}

bool
bw_string2ll(const char *s, size_t slen, long long *out)
{
    size_t i = 0;
    bool negative = false;
    uint64_t v;

    if (slen == 0 || slen >= BW_LONG_STR_SIZE)
        return false;
    if (slen == 1 && s[0] == '0') {
        *out = 0;
        return true;
    }
    if (s[0] == '-') {
        negative = true;
        if (++i == slen)
            return false;
    }
    if (s[i] < '1' || s[i] > '9')
        return false;
    v = (uint64_t)(s[i++] - '0');
    for (; i < slen && s[i] >= '0' && s[i] <= '9'; i++) {
        uint64_t d = (uint64_t)(s[i] - '0');
        if (v > UINT64_MAX / 10 || v * 10 > UINT64_MAX - d)
            return false;
        v = v * 10 + d;
    }
    if (i < slen)
        return false;
    if (negative) {
        if (v > (uint64_t)INT64_MAX + 1)
            return false;
        *out = v == (uint64_t)INT64_MAX + 1 ? INT64_MIN : -(long long)v;
    } else {
        if (v > (uint64_t)INT64_MAX)
            return false;
        *out = (long long)v;
    }
    return true;
}
