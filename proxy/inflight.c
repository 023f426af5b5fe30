/* inflight: writes through bulwark in flight, by key (see inflight.h). */
#include "proxy/inflight.h"

#include <string.h>

#include <xxhash.h>

#include "proxy/util.h"

struct inflight_entry {
    struct inflight_entry *next; /* bucket chain */
    uint64_t writer;             /* bulwark client id */
    bool seen;                   /* the watch named the key since */
    size_t len;                  /* bytes of key */
    char key[];                  /* the key, not NUL-terminated */
};

struct inflight {
    struct inflight_entry **buckets; /* owned chains, nbuckets (a power of two) */
    size_t nbuckets;
    size_t n; /* entries */
};

struct inflight *
inflight_new(void)
{
    struct inflight *f = bw_calloc(1, sizeof(*f));
    f->nbuckets = 64;
    f->buckets = bw_calloc(f->nbuckets, sizeof(*f->buckets));
    return f;
}

void
inflight_free(struct inflight *f)
{
    if (f == NULL)
        return;
    for (size_t i = 0; i < f->nbuckets; i++)
        while (f->buckets[i] != NULL) {
            struct inflight_entry *e = f->buckets[i];
            f->buckets[i] = e->next;
            bw_free(e);
        }
    bw_free(f->buckets);
    bw_free(f);
}

static struct inflight_entry **
inflight_bucket(struct inflight *f, const char *key, size_t len)
{
    return &f->buckets[XXH3_64bits(key, len) & (f->nbuckets - 1)];
}

static void
inflight_grow(struct inflight *f)
{
    size_t n = f->nbuckets * 2;
    struct inflight_entry **b = bw_calloc(n, sizeof(*b));
    for (size_t i = 0; i < f->nbuckets; i++)
        while (f->buckets[i] != NULL) {
            struct inflight_entry *e = f->buckets[i];
            f->buckets[i] = e->next;
            struct inflight_entry **to = &b[XXH3_64bits(e->key, e->len) & (n - 1)];
            e->next = *to;
            *to = e;
        }
    bw_free(f->buckets);
    f->buckets = b;
    f->nbuckets = n;
}

void
inflight_add(struct inflight *f, const char *key, size_t len, uint64_t writer)
{
    if (f->n + 1 > f->nbuckets)
        inflight_grow(f);
    struct inflight_entry *e = bw_malloc(sizeof(*e) + len);
    e->writer = writer;
    e->seen = false;
    e->len = len;
    memcpy(e->key, key, len);
    struct inflight_entry **b = inflight_bucket(f, key, len);
    e->next = *b; /* newest first: an echo goes to the latest write */
    *b = e;
    f->n++;
}

uint64_t
inflight_echo(struct inflight *f, const char *key, size_t len)
{
    uint64_t writer = 0;
    for (struct inflight_entry *e = *inflight_bucket(f, key, len); e != NULL; e = e->next)
        if (e->len == len && memcmp(e->key, key, len) == 0) {
            if (writer == 0)
                writer = e->writer;
            e->seen = true;
        }
    return writer;
}

bool
inflight_done(struct inflight *f, const char *key, size_t len, uint64_t writer)
{
    for (struct inflight_entry **p = inflight_bucket(f, key, len); *p != NULL; p = &(*p)->next) {
        struct inflight_entry *e = *p;
        if (e->writer == writer && e->len == len && memcmp(e->key, key, len) == 0) {
            bool seen = e->seen;
            *p = e->next;
            bw_free(e);
            f->n--;
            return seen;
        }
    }
    return false;
}

size_t
inflight_count(const struct inflight *f)
{
    return f->n;
}
