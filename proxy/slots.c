/*
 * slots: a connection's reply FIFO (see slots.h).
 */
#include "proxy/slots.h"

#include <string.h>

#include <event2/buffer.h>

#include "proxy/stats.h"
#include "proxy/util.h"

/*
 * Freed slots are kept for reuse: one pipelined GET makes one slot, and
 * malloc/free per request showed in profiles. Bounded, per thread.
 */
static _Thread_local struct bw_pool slot_pool = BW_POOL(sizeof(struct slot), 4096);

/* A zeroed slot, from the pool. */
static struct slot *
slot_alloc(void)
{
    struct slot *s = bw_pool_get(&slot_pool);
    memset(s, 0, sizeof(*s));
    return s;
}

static void
slot_release(struct slot *s)
{
    if (s->buf != NULL)
        evbuffer_free(s->buf);
    bw_pool_put(&slot_pool, s);
}

void
slot_free(struct slot *s)
{
    if (s->filter != NULL) {
        s->filter(NULL, NULL, 0, NULL, NULL, s->filter_data);
        s->filter = NULL;
    }
    if (s->hook != NULL)
        s->hook(NULL, s->hook_arg, false);
    slot_release(s);
}

void
slot_cache_free_all(void)
{
    bw_pool_drain(&slot_pool); /* slots freed later (batches, upstream) are freed */
}

void
slotq_init(struct slotq *q, struct evbuffer *out, struct session *owner,
           const struct slotq_ops *ops, struct cmdstats *cs, struct event_base *base)
{
    memset(q, 0, sizeof(*q));
    TAILQ_INIT(&q->head);
    q->proto = 2;
    q->out = out;
    q->owner = owner;
    q->ops = ops;
    q->cs = cs;
    q->base = base;
}

struct slot *
slot_new(struct slotq *q, enum slot_kind kind)
{
    struct slot *s = slot_alloc();
    s->q = q;
    cmdstats_slot(q->cs, &s->req);
    TAILQ_INSERT_TAIL(&q->head, s, link);
    q->n++;
    s->muted = q->mute;
    if (kind == SLOT_BATCHED) {
        s->batched = true;
        q->nbatched++;
    }
    return s;
}

struct slot *
slot_new_detached(slot_fn *fn, void *data)
{
    struct slot *s = slot_alloc();
    s->fn = fn;
    s->fn_data = data;
    return s;
}

void
slot_mark_held(struct slot *s)
{
    s->held = true;
    s->q->nheld++;
}

/* Parked bytes of q: every change to a parked slot's buf. */
static void
slotq_count_parked(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct slotq *q = arg;
    (void)buf;
    q->parked_bytes += info->n_added;
    q->parked_bytes -= BW_MIN(info->n_deleted, q->parked_bytes);
    if (info->n_added > 0)
        q->ops->grew(q->owner);
}

struct evbuffer *
slot_output(struct slot *s)
{
    struct slotq *q = s->q;
    if (s->muted) { /* written and dropped */
        if (s->buf == NULL)
            s->buf = evbuffer_new();
        BW_ASSERT(s->buf != NULL);
        return s->buf;
    }
    if (TAILQ_FIRST(&q->head) == s)
        return q->out;
    if (s->buf == NULL) {
        s->buf = evbuffer_new();
        BW_ASSERT(s->buf != NULL);
        BW_ASSERT(evbuffer_add_cb(s->buf, slotq_count_parked, q) != NULL);
    }
    return s->buf;
}

bool
slot_is_head(const struct slot *s)
{
    return TAILQ_FIRST(&s->q->head) == s;
}

bool
slot_is_tail(const struct slot *s)
{
    return TAILQ_LAST(&s->q->head, slot_list) == s;
}

struct evbuffer *
slotq_target(struct slotq *q)
{
    if (TAILQ_EMPTY(&q->head) && !q->mute)
        return q->out;
    struct slot *s = slot_new(q, SLOT_PLAIN);
    s->ready = true;
    return slot_output(s);
}

void
slotq_flush(struct slotq *q)
{
    struct slot *s;
    while ((s = TAILQ_FIRST(&q->head)) != NULL && s->ready) {
        if (s->buf != NULL && !s->muted)
            evbuffer_add_buffer(q->out, s->buf);
        cmdstats_done(q->cs, &s->req, stats_loop_us(q->base));
        TAILQ_REMOVE(&q->head, s, link);
        q->n--;
        slot_release(s);
    }
    /* a slot still being written (a pinned session's stream) that is the
     * head now: what it parked goes out, it writes to the output from here */
    if (s != NULL && s->buf != NULL && !s->muted && evbuffer_get_length(s->buf) > 0)
        evbuffer_add_buffer(q->out, s->buf);
    q->ops->flushed(q->owner);
}

void
slot_ready(struct slot *s)
{
    s->ready = true;
    if (s->hook != NULL) {
        slot_hook_fn *hook = s->hook;
        s->hook = NULL;
        hook(s->q->owner, s->hook_arg, true);
    }
    slotq_flush(s->q);
}

/* A whole RESP2 null for a RESP3 queue: RESP3's (Redis never sends "$-1" to one). */
static bool
slot_is_resp2_null(const char *data, size_t len)
{
    return len == 5 && (data[0] == '$' || data[0] == '*') && memcmp(data + 1, "-1\r\n", 4) == 0;
}

/*
 * Complete s with len bytes: copied from data, or moved from the head of
 * src when src is not NULL (whole chains change hands).
 */
static void
slot_complete(struct slot *s, const char *data, struct evbuffer *src, size_t len)
{
    if (s->fn != NULL) {
        s->fn(s->fn_data,
              src != NULL ? (const char *)evbuffer_pullup(src, (ev_ssize_t)len) : data, len);
        slot_free(s);
        return;
    }
    struct slotq *q = s->q;
    if (q == NULL) {
        slot_free(s);
        return;
    }
    if (s->batched)
        q->nbatched--;
    if (s->held)
        q->nheld--;
    s->batched = s->held = false;
    char head[5];
    if (src != NULL && q->proto == 3 && len == 5 && evbuffer_copyout(src, head, 5) == 5 &&
        slot_is_resp2_null(head, 5)) {
        evbuffer_drain(src, 5);
        src = NULL;
        data = head;
    }
    if (src == NULL && q->proto == 3 && slot_is_resp2_null(data, len)) {
        data = "_\r\n";
        len = 3;
    }
    if (q->drop)
        ; /* closing for its output limit: the reply is dropped */
    else if (src != NULL)
        evbuffer_remove_buffer(src, slot_output(s), len);
    else
        evbuffer_add(slot_output(s), data, len);
    slot_ready(s);
}

void
slot_finish(struct slot *s, const char *data, size_t len)
{
    slot_complete(s, data, NULL, len);
}

void
slot_finish_move(struct slot *s, struct evbuffer *src, size_t len)
{
    slot_complete(s, NULL, src, len);
}

void
slotq_orphan(struct slotq *q)
{
    struct slot *s;
    while ((s = TAILQ_FIRST(&q->head)) != NULL) {
        TAILQ_REMOVE(&q->head, s, link);
        if (s->ready) {
            slot_release(s);
        } else {
            s->q = NULL;          /* orphan: whoever completes it frees it */
            if (s->buf != NULL) { /* its parked bytes count for nobody now */
                evbuffer_free(s->buf);
                s->buf = NULL;
            }
        }
    }
    q->n = q->nbatched = q->nheld = 0;
}
