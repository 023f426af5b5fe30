/*
 * forward: requests to the shared upstream connection (see forward.h).
 */
#include "proxy/forward.h"

#include <string.h>

#include <event2/buffer.h>

#include "proxy/batch.h"
#include "proxy/ctrack.h"
#include "proxy/encode.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/session.h"
#include "proxy/upstream.h"
#include "proxy/util.h"

/* Replies up to this many bytes are copied to the client's output, not moved. */
#define FWD_COPY_MAX 1024

void
fwd_slot_reply(struct slot *s, struct evbuffer *reply, size_t len, const char *err)
{
    struct slotq *q = s->q;
    if (q == NULL) { /* orphaned: the client is gone (filter and hook told) */
        slot_free(s);
        return;
    }
    struct session *owner = q->owner;
    struct evbuffer *out = slot_output(s);
    slot_filter_fn *filter = s->filter;
    s->filter = NULL;
    if (q->drop) { /* closing for its output limit: the reply is dropped */
        if (filter != NULL)
            filter(NULL, NULL, 0, NULL, NULL, s->filter_data);
    } else if (filter != NULL) {
        filter(owner, reply, len, err, out, s->filter_data);
    } else if (reply != NULL && len <= FWD_COPY_MAX) {
        /* a short reply is copied: moving it split chains at twice the cost */
        evbuffer_add(out, evbuffer_pullup(reply, (ev_ssize_t)len), len);
        evbuffer_drain(reply, len);
    } else if (reply != NULL) {
        evbuffer_remove_buffer(reply, out, len);
    } else {
        evbuffer_add(out, err, strlen(err));
    }
    if (reply == NULL)
        owner->px->stats.upstream_errors++;
    slot_ready(s); /* a write's invalidations follow its reply (ctrack's hook) */
}

/* Upstream reply (or failure) for the slot in privdata. */
static void
fwd_reply_cb(void *privdata, struct evbuffer *reply, size_t len, const char *err)
{
    fwd_slot_reply(privdata, reply, len, err);
}

void
fwd_send(struct session *s, const char *cmd, size_t len, slot_filter_fn *filter, void *data)
{
    const char *err;
    if (s->batch != NULL)
        batch_before_forward(s->batch, s);
    struct slot *slot = slot_new(&s->q, SLOT_PLAIN);
    slot->filter = filter;
    slot->filter_data = data;
    ctrack_attach(s, slot);
    s->px->stats.forwarded++;
    int rc;
    if (cmd == s->move_raw) { /* the big request at the head of the input: moved */
        rc = upstream_send_db_move(s->up, s->db, s->move_src, len, fwd_reply_cb, slot, &err);
        s->moved = rc == BW_OK;
    } else {
        rc = upstream_send_db(s->up, s->db, cmd, len, fwd_reply_cb, slot, &err);
    }
    if (rc != BW_OK)
        fwd_reply_cb(slot, NULL, 0, err);
}

void
fwd_encode(const struct resp_request *req, struct evbuffer *out)
{
    enc_array_len(out, (size_t)req->argc);
    for (int i = 0; i < req->argc; i++)
        enc_bulk(out, req->argv[i].ptr, req->argv[i].len);
}

void
fwd_request(struct session *s, const struct resp_request *req, slot_filter_fn *filter, void *data)
{
    if (req->raw != NULL) {
        fwd_send(s, req->raw, req->raw_len, filter, data);
        return;
    }
    struct evbuffer *tmp = evbuffer_new();
    fwd_encode(req, tmp);
    size_t len = evbuffer_get_length(tmp);
    fwd_send(s, (const char *)evbuffer_pullup(tmp, -1), len, filter, data);
    evbuffer_free(tmp);
}
