/* keyspace: per-database batchers and hot-key caches (see keyspace.h). */
#include "proxy/keyspace.h"

#include <string.h>

#include "proxy/batch.h"
#include "proxy/hotkey.h"
#include "proxy/proxy.h"
#include "proxy/session.h"
#include "proxy/upstream.h"
#include "proxy/util.h"

static struct keyspace *
keyspace_new(struct proxy *px, int db)
{
    struct keyspace *ks = bw_calloc(1, sizeof(*ks));
    ks->db = db;
    ks->nbatches = BW_MAX(px->cfg.upstream_connections, 1);
    ks->batches = bw_calloc(2 * (size_t)ks->nbatches, sizeof(*ks->batches));
    for (int i = 0; i < ks->nbatches; i++) /* RESP3 ones: on first use */
        ks->batches[i] = batch_new(px, upstream_pick(px->pool, (uint64_t)i, 2), db);
    ks->hotkey = hotkey_new(px, db);
    return ks;
}

struct keyspace *
keyspace_get(struct proxy *px, int db)
{
    BW_ASSERT(db >= 0);
    if ((size_t)db >= px->nkeyspaces) {
        size_t n = BW_MAX((size_t)db + 1, px->nkeyspaces * 2);
        px->keyspaces = bw_realloc(px->keyspaces, n * sizeof(*px->keyspaces));
        memset(px->keyspaces + px->nkeyspaces, 0, (n - px->nkeyspaces) * sizeof(*px->keyspaces));
        px->nkeyspaces = n;
    }
    if (px->keyspaces[db] == NULL)
        px->keyspaces[db] = keyspace_new(px, db);
    return px->keyspaces[db];
}

void
keyspace_free_all(struct proxy *px)
{
    /* hot caches first: their held GETs go to the batchers, sent below */
    for (size_t i = 0; i < px->nkeyspaces; i++)
        if (px->keyspaces[i] != NULL) {
            hotkey_free(px->keyspaces[i]->hotkey);
            px->keyspaces[i]->hotkey = NULL;
        }
    for (size_t i = 0; i < px->nkeyspaces; i++) {
        struct keyspace *ks = px->keyspaces[i];
        if (ks == NULL)
            continue;
        for (int j = 0; j < 2 * ks->nbatches; j++)
            batch_free(ks->batches[j]);
        bw_free(ks->batches);
        bw_free(ks);
    }
    bw_free(px->keyspaces);
    px->keyspaces = NULL;
    px->nkeyspaces = 0;
}

struct batch *
keyspace_batch(struct proxy *px, struct keyspace *ks, uint64_t client_id, int proto)
{
    int i = (int)(client_id % (uint64_t)ks->nbatches);
    if (proto != 3)
        return ks->batches[i];
    struct batch **b = &ks->batches[ks->nbatches + i];
    if (*b == NULL)
        *b = batch_new(px, upstream_pick(px->pool, (uint64_t)i, 3), ks->db);
    return *b;
}

void
keyspace_key_changed(void *arg, const char *key, size_t len)
{
    struct proxy *px = arg;
    for (size_t i = 0; i < px->nkeyspaces; i++)
        if (px->keyspaces[i] != NULL)
            hotkey_invalidate(px->keyspaces[i]->hotkey, key, len);
}

void
keyspace_flushed(void *arg)
{
    struct proxy *px = arg;
    for (size_t i = 0; i < px->nkeyspaces; i++)
        if (px->keyspaces[i] != NULL)
            hotkey_flush(px->keyspaces[i]->hotkey);
}

void
keyspace_watch_flushed(struct proxy *px, const struct watch *w)
{
    for (size_t i = 0; i < px->nkeyspaces; i++)
        if (px->keyspaces[i] != NULL)
            hotkey_watch_flushed(px->keyspaces[i]->hotkey, w);
}

void
keyspace_slots_moved(struct proxy *px, const uint8_t *changed)
{
    for (size_t i = 0; i < px->nkeyspaces; i++)
        if (px->keyspaces[i] != NULL)
            hotkey_slots_moved(px->keyspaces[i]->hotkey, changed);
}

void
keyspace_swapped(struct proxy *px, int a, int b)
{
    if ((size_t)a < px->nkeyspaces && px->keyspaces[a] != NULL)
        hotkey_flush(px->keyspaces[a]->hotkey);
    if ((size_t)b < px->nkeyspaces && px->keyspaces[b] != NULL)
        hotkey_flush(px->keyspaces[b]->hotkey);
}

void
keyspace_cron(struct proxy *px, uint64_t now_ms)
{
    for (size_t i = 0; i < px->nkeyspaces; i++)
        if (px->keyspaces[i] != NULL)
            hotkey_cron(px->keyspaces[i]->hotkey, now_ms);
}

void
keyspace_info_hotkeys(struct proxy *px, struct evbuffer *out)
{
    struct hotkey **hks = bw_calloc(px->nkeyspaces + 1, sizeof(*hks));
    size_t n = 0;
    for (size_t i = 0; i < px->nkeyspaces; i++)
        if (px->keyspaces[i] != NULL && px->keyspaces[i]->hotkey != NULL)
            hks[n++] = px->keyspaces[i]->hotkey;
    hotkey_info(hks, n, out);
    bw_free(hks);
}

void
keyspace_select(struct session *s, int db)
{
    /* A batched GET still pending in the old database's batcher goes out
     * first: nothing the client sends later may overtake it. */
    if (s->batch != NULL)
        batch_before_forward(s->batch, s);
    if (s->up == NULL)
        s->up = upstream_pick(s->px->pool, s->id, s->proto);
    s->db = db;
    s->ks = keyspace_get(s->px, db);
    s->batch = keyspace_batch(s->px, s->ks, s->id, s->proto);
}

void
keyspace_set_proto(struct session *s, int proto)
{
    if (s->proto == proto)
        return;
    /* The shared connection and batcher of the other protocol: nothing of
     * this client is due on the old ones (the HELLO was held until then),
     * so nothing it sends later overtakes them. */
    if (s->batch != NULL)
        batch_before_forward(s->batch, s);
    s->proto = proto;
    s->q.proto = proto;
    s->up = upstream_pick(s->px->pool, s->id, proto);
    s->batch = keyspace_batch(s->px, s->ks, s->id, proto);
}
