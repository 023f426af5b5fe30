/* hireply: hiredis reply objects from blocks kept for reuse (see hireply.h). */
#include "proxy/hireply.h"

#include <stdbool.h>
#include <stddef.h>
#include <string.h>

#include <hiredis/hiredis.h>

#include "proxy/util.h"

/* One reply object and, for a short string, its bytes. */
struct hireply_obj {
    bool pooled;  /* HIREPLY_INLINE bytes of room: kept when freed */
    redisReply r; /* what hiredis and the callbacks see */
    char str[];   /* the string (pooled: HIREPLY_INLINE + 1 bytes) */
};

#define HIREPLY_OBJ_SIZE (sizeof(struct hireply_obj) + HIREPLY_INLINE + 1)
static _Thread_local struct bw_pool hireply_pool = BW_POOL(HIREPLY_OBJ_SIZE, 8192);

/* A zeroed object of type with room for a string of len bytes. */
static redisReply *
hireply_new(int type, size_t len)
{
    struct hireply_obj *o;
    bool pooled = len <= HIREPLY_INLINE;
    if (pooled)
        o = bw_pool_get(&hireply_pool);
    else
        o = bw_malloc(sizeof(*o) + len + 1);
    o->pooled = pooled;
    memset(&o->r, 0, sizeof(o->r));
    o->r.type = type;
    return &o->r;
}

static struct hireply_obj *
hireply_of(redisReply *r)
{
    return (struct hireply_obj *)((char *)r - offsetof(struct hireply_obj, r));
}

/* Put r in its parent's element vector, as hiredis's own functions do. */
static void *
hireply_link(const redisReadTask *task, redisReply *r)
{
    if (task->parent != NULL) {
        redisReply *parent = task->parent->obj;
        BW_ASSERT(parent->type == REDIS_REPLY_ARRAY);
        parent->element[task->idx] = r;
    }
    return r;
}

static void *
hireply_string(const redisReadTask *task, char *str, size_t len)
{
    redisReply *r = hireply_new(task->type, len);
    r->str = hireply_of(r)->str;
    memcpy(r->str, str, len);
    r->str[len] = '\0';
    r->len = len;
    return hireply_link(task, r);
}

static void *
hireply_array(const redisReadTask *task, int elements)
{
    redisReply *r = hireply_new(REDIS_REPLY_ARRAY, 0);
    if (elements > 0)
        r->element = bw_calloc((size_t)elements, sizeof(*r->element));
    r->elements = elements > 0 ? (size_t)elements : 0;
    return hireply_link(task, r);
}

static void *
hireply_integer(const redisReadTask *task, long long value)
{
    redisReply *r = hireply_new(REDIS_REPLY_INTEGER, 0);
    r->integer = value;
    return hireply_link(task, r);
}

static void *
hireply_nil(const redisReadTask *task)
{
    return hireply_link(task, hireply_new(REDIS_REPLY_NIL, 0));
}

static void
hireply_free_object(void *p)
{
    redisReply *r = p;
    if (r == NULL)
        return;
    if (r->type == REDIS_REPLY_ARRAY) {
        for (size_t i = 0; i < r->elements; i++)
            hireply_free_object(r->element[i]);
        bw_free(r->element);
    }
    struct hireply_obj *o = hireply_of(r);
    if (o->pooled)
        bw_pool_put(&hireply_pool, o);
    else
        bw_free(o);
}

redisReplyObjectFunctions hireply_fns = {
    .createString = hireply_string,
    .createArray = hireply_array,
    .createInteger = hireply_integer,
    .createNil = hireply_nil,
    .freeObject = hireply_free_object,
};

void
hireply_cache_free_all(void)
{
    bw_pool_drain(&hireply_pool);
}
