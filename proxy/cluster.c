/*
 * cluster: hash slots, the upstream slot map (CLUSTER SLOTS / SHARDS),
 * MOVED/ASK parsing, and bulwark's CLUSTER answers as a one-node cluster.
 * Pure: libc, proxy/reply.h, proxy/util.h. The contract is in cluster.h.
 */
#include "proxy/cluster.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "proxy/reply.h"
#include "proxy/util.h"

/* The slot map: nodes in the order the reply first named them. */
struct cluster_map {
    struct cluster_node *nodes;   /* owned: nnodes used of cap */
    size_t nnodes;                /* nodes in use */
    size_t cap;                   /* nodes allocated */
    int16_t slots[CLUSTER_SLOTS]; /* index of the master serving each slot,
                                     -1 unassigned */
};

/* ---- hash slots ------------------------------------------------------- */

/*
 * CRC-16/XMODEM one byte at a time without a table: with x the top byte of
 * the CRC xored with the data byte, folded once (x ^= x >> 4), the
 * polynomial x^16 + x^12 + x^5 + 1 contributes x << 12, x << 5 and x. The
 * unit test checks it against the bitwise definition for every byte.
 */
uint16_t
cluster_crc16(const char *buf, size_t len)
{
    const unsigned char *p = (const unsigned char *)buf;
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        uint16_t x = (uint16_t)((crc >> 8) ^ p[i]);
        x ^= (uint16_t)(x >> 4);
        crc = (uint16_t)((crc << 8) ^ (x << 12) ^ (x << 5) ^ x);
    }
    return crc;
}

unsigned
cluster_keyslot(const char *key, size_t len)
{
    const char *open = len > 0 ? memchr(key, '{', len) : NULL;

    if (open != NULL) {
        size_t rest = len - (size_t)(open - key) - 1;
        const char *close = rest > 0 ? memchr(open + 1, '}', rest) : NULL;

        if (close != NULL && close > open + 1)
            return cluster_crc16(open + 1, (size_t)(close - open - 1)) & (CLUSTER_SLOTS - 1);
    }
    return cluster_crc16(key, len) & (CLUSTER_SLOTS - 1);
}

/* ---- node ids ----------------------------------------------------------- */

/* splitmix64's finalizer (Steele, Lea, Flood, OOPSLA 2014). */
static uint64_t
cluster_mix64(uint64_t z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

void
cluster_node_id(const char *seed, size_t seed_len, char out[CLUSTER_NAMELEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = (const unsigned char *)seed;
    size_t pos = 0;

    for (uint64_t k = 1; pos < CLUSTER_NAMELEN; k++) {
        uint64_t h = 0xcbf29ce484222325ull ^ cluster_mix64(k); /* FNV-1a-64 */

        for (size_t i = 0; i < seed_len; i++)
            h = (h ^ p[i]) * 0x100000001b3ull;
        h = cluster_mix64(h ^ seed_len);
        for (int b = 60; b >= 0 && pos < CLUSTER_NAMELEN; b -= 4)
            out[pos++] = hex[(h >> b) & 0xf];
    }
    out[CLUSTER_NAMELEN] = '\0';
}

/* ---- output buffer and RESP writing ------------------------------------ */

static void
out_put(struct cluster_out *o, const void *p, size_t n)
{
    if (o->cap - o->len < n) {
        size_t cap = BW_MAX(BW_MAX(o->cap * 2, (size_t)256), o->len + n);

        o->buf = bw_realloc(o->buf, cap);
        o->cap = cap;
    }
    if (n > 0)
        memcpy(o->buf + o->len, p, n);
    o->len += n;
}

static void
out_str(struct cluster_out *o, const char *s)
{
    out_put(o, s, strlen(s));
}

/* "<type><n>\r\n": an aggregate header, or a bulk's length line. */
static void
out_head(struct cluster_out *o, char type, uint64_t n)
{
    char line[32];
    int w = snprintf(line, sizeof(line), "%c%llu\r\n", type, (unsigned long long)n);

    out_put(o, line, (size_t)w);
}

static void
out_int(struct cluster_out *o, int64_t v)
{
    char line[32];
    int w = snprintf(line, sizeof(line), ":%lld\r\n", (long long)v);

    out_put(o, line, (size_t)w);
}

static void
out_bulk(struct cluster_out *o, const char *p, size_t n)
{
    out_head(o, '$', n);
    out_put(o, p, n);
    out_put(o, "\r\n", 2);
}

static void
out_bulk_str(struct cluster_out *o, const char *s)
{
    out_bulk(o, s, strlen(s));
}

/* A map of pairs entries: RESP3 '%', RESP2 a flat array (addReplyMapLen). */
static void
out_map(struct cluster_out *o, int proto, size_t pairs)
{
    if (proto >= 3)
        out_head(o, '%', pairs);
    else
        out_head(o, '*', pairs * 2);
}

/* Text as addReplyVerbatim(..., "txt"): RESP3 "=<n+4>\r\ntxt:...", RESP2 bulk. */
static void
out_text(struct cluster_out *o, int proto, const char *p, size_t n)
{
    if (proto < 3) {
        out_bulk(o, p, n);
        return;
    }
    out_head(o, '=', n + 4);
    out_put(o, "txt:", 4);
    out_put(o, p, n);
    out_put(o, "\r\n", 2);
}

void
cluster_out_deinit(struct cluster_out *o)
{
    bw_free(o->buf);
    memset(o, 0, sizeof(*o));
}

/* ---- bulwark as a one-node cluster ------------------------------------- */

void
cluster_self_init(struct cluster_self *s, const char *ip, int port, const char *seed,
                  size_t seed_len)
{
    memset(s, 0, sizeof(*s));
    s->ip = ip;
    s->port = port;
    s->bus_port = port <= 65535 - 10000 ? port + 10000 : 0;
    cluster_node_id(seed, seed_len, s->id);
}

static bool
self_has_hostname(const struct cluster_self *s)
{
    return s->hostname != NULL && s->hostname[0] != '\0';
}

/* getPreferredEndpoint(): the ip, or the hostname ("?" when none). */
static const char *
self_endpoint(const struct cluster_self *s)
{
    if (!s->prefer_hostname)
        return s->ip;
    return self_has_hostname(s) ? s->hostname : "?";
}

void
cluster_reply_info(struct cluster_out *o, const struct cluster_self *s, int proto)
{
    struct cluster_out t = {0};
    char line[160];

    out_str(&t, "cluster_state:ok\r\n"
                "cluster_slots_assigned:16384\r\n"
                "cluster_slots_ok:16384\r\n"
                "cluster_slots_pfail:0\r\n"
                "cluster_slots_fail:0\r\n"
                "cluster_known_nodes:1\r\n"
                "cluster_size:1\r\n");
    int w = snprintf(line, sizeof(line),
                     "cluster_current_epoch:%llu\r\ncluster_my_epoch:%llu\r\n",
                     (unsigned long long)s->current_epoch, (unsigned long long)s->config_epoch);
    out_put(&t, line, (size_t)w);
    out_str(&t, "cluster_stats_messages_sent:0\r\n"
                "cluster_stats_messages_received:0\r\n"
                "total_cluster_links_buffer_limit_exceeded:0\r\n");
    out_text(o, proto, t.buf, t.len);
    cluster_out_deinit(&t);
}

void
cluster_reply_nodes(struct cluster_out *o, const struct cluster_self *s, int proto)
{
    struct cluster_out t = {0};
    char line[64];

    out_put(&t, s->id, CLUSTER_NAMELEN);
    out_str(&t, " ");
    out_str(&t, s->ip);
    int w = snprintf(line, sizeof(line), ":%d@%d", s->port, s->bus_port);
    out_put(&t, line, (size_t)w);
    if (self_has_hostname(s)) {
        out_str(&t, ",");
        out_str(&t, s->hostname);
    }
    w = snprintf(line, sizeof(line), " myself,master - 0 0 %llu connected 0-16383\n",
                 (unsigned long long)s->config_epoch);
    out_put(&t, line, (size_t)w);
    out_text(o, proto, t.buf, t.len);
    cluster_out_deinit(&t);
}

/* addNodeToNodeReply(): endpoint, port, id, then the other endpoints. */
void
cluster_reply_slots(struct cluster_out *o, const struct cluster_self *s, int proto)
{
    bool meta_hostname = !s->prefer_hostname && self_has_hostname(s);

    out_str(o, "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n");
    out_bulk_str(o, self_endpoint(s));
    out_int(o, s->port);
    out_bulk(o, s->id, CLUSTER_NAMELEN);
    out_map(o, proto, (s->prefer_hostname ? 1 : 0) + (meta_hostname ? 1 : 0));
    if (s->prefer_hostname) {
        out_bulk_str(o, "ip");
        out_bulk_str(o, s->ip);
    }
    if (meta_hostname) {
        out_bulk_str(o, "hostname");
        out_bulk_str(o, s->hostname);
    }
}

/* clusterReplyShards() / addNodeDetailsToShardReply() for the one node. */
void
cluster_reply_shards(struct cluster_out *o, const struct cluster_self *s, int proto)
{
    out_str(o, "*1\r\n");
    out_map(o, proto, 2);
    out_bulk_str(o, "slots");
    out_str(o, "*2\r\n:0\r\n:16383\r\n");
    out_bulk_str(o, "nodes");
    out_str(o, "*1\r\n");
    out_map(o, proto, self_has_hostname(s) ? 8 : 7);
    out_bulk_str(o, "id");
    out_bulk(o, s->id, CLUSTER_NAMELEN);
    out_bulk_str(o, "port");
    out_int(o, s->port);
    out_bulk_str(o, "ip");
    out_bulk_str(o, s->ip);
    out_bulk_str(o, "endpoint");
    out_bulk_str(o, self_endpoint(s));
    if (self_has_hostname(s)) {
        out_bulk_str(o, "hostname");
        out_bulk_str(o, s->hostname);
    }
    out_bulk_str(o, "role");
    out_bulk_str(o, "master");
    out_bulk_str(o, "replication-offset");
    out_int(o, 0);
    out_bulk_str(o, "health");
    out_bulk_str(o, "online");
}

void
cluster_reply_myid(struct cluster_out *o, const struct cluster_self *s)
{
    out_bulk(o, s->id, CLUSTER_NAMELEN);
}

void
cluster_reply_keyslot(struct cluster_out *o, const char *key, size_t len)
{
    out_int(o, cluster_keyslot(key, len));
}

/* ---- CLUSTER <subcommand> ---------------------------------------------- */

/* What cluster_command() does with a subcommand. */
enum cluster_sub_kind {
    SUB_UNSERVED = 0, /* Redis has it, bulwark does not answer it */
    SUB_INFO,
    SUB_NODES,
    SUB_SLOTS,
    SUB_SHARDS,
    SUB_MYID,
    SUB_KEYSLOT
};

/* One CLUSTER subcommand of Redis 7.0.15 (src/commands.c). */
struct cluster_sub {
    const char *name; /* lowercase, as in the 'cluster|<name>' error */
    int arity;        /* Redis's: n exactly n arguments, -n at least n */
    enum cluster_sub_kind kind;
};

static const struct cluster_sub cluster_subs[] = {
    {"addslots", -3, SUB_UNSERVED},
    {"addslotsrange", -4, SUB_UNSERVED},
    {"bumpepoch", 2, SUB_UNSERVED},
    {"count-failure-reports", 3, SUB_UNSERVED},
    {"countkeysinslot", 3, SUB_UNSERVED},
    {"delslots", -3, SUB_UNSERVED},
    {"delslotsrange", -4, SUB_UNSERVED},
    {"failover", -2, SUB_UNSERVED},
    {"flushslots", 2, SUB_UNSERVED},
    {"forget", 3, SUB_UNSERVED},
    {"getkeysinslot", 4, SUB_UNSERVED},
    {"help", 2, SUB_UNSERVED},
    {"info", 2, SUB_INFO},
    {"keyslot", 3, SUB_KEYSLOT},
    {"links", 2, SUB_UNSERVED},
    {"meet", -4, SUB_UNSERVED},
    {"myid", 2, SUB_MYID},
    {"nodes", 2, SUB_NODES},
    {"replicas", 3, SUB_UNSERVED},
    {"replicate", 3, SUB_UNSERVED},
    {"reset", -2, SUB_UNSERVED},
    {"saveconfig", 2, SUB_UNSERVED},
    {"set-config-epoch", 3, SUB_UNSERVED},
    {"setslot", -4, SUB_UNSERVED},
    {"shards", 2, SUB_SHARDS},
    {"slaves", 3, SUB_UNSERVED},
    {"slots", 2, SUB_SLOTS},
};

static const struct cluster_sub *
cluster_sub_lookup(const char *name, size_t len)
{
    for (size_t i = 0; i < BW_ARRAY_LEN(cluster_subs); i++) {
        const struct cluster_sub *s = &cluster_subs[i];

        if (strlen(s->name) == len && strncasecmp(s->name, name, len) == 0)
            return s;
    }
    return NULL;
}

/* commandCheckExistence(): "%.128s" of the name (so cut at a NUL too), then
 * CR and LF mapped to spaces over the whole message. */
static void
out_unknown_sub(struct cluster_out *o, const char *cmd, size_t cmdlen, const char *sub,
                size_t sublen)
{
    const char *nul = memchr(sub, '\0', BW_MIN(sublen, (size_t)128));
    size_t n = nul != NULL ? (size_t)(nul - sub) : BW_MIN(sublen, (size_t)128);

    out_str(o, "-ERR unknown subcommand '");
    for (size_t i = 0; i < n; i++) {
        char ch = sub[i] == '\r' || sub[i] == '\n' ? ' ' : sub[i];

        out_put(o, &ch, 1);
    }
    out_str(o, "'. Try ");
    for (size_t i = 0; i < cmdlen && cmd[i] != '\0'; i++) {
        char ch = cmd[i] >= 'a' && cmd[i] <= 'z' ? (char)(cmd[i] - 'a' + 'A') : cmd[i];

        out_put(o, ch == '\r' || ch == '\n' ? " " : &ch, 1);
    }
    out_str(o, " HELP.\r\n");
}

int
cluster_command(struct cluster_out *o, const struct cluster_self *s, int proto, int argc,
                const char *const *argv, const size_t *argvlen)
{
    BW_ASSERT(argc >= 1);
    if (argc == 1) {
        out_str(o, "-ERR wrong number of arguments for 'cluster' command\r\n");
        return CLUSTER_CMD_DONE;
    }
    const struct cluster_sub *sub = cluster_sub_lookup(argv[1], argvlen[1]);
    if (sub == NULL) {
        out_unknown_sub(o, argv[0], argvlen[0], argv[1], argvlen[1]);
        return CLUSTER_CMD_DONE;
    }
    if ((sub->arity > 0 && argc != sub->arity) || argc < -sub->arity) {
        out_str(o, "-ERR wrong number of arguments for 'cluster|");
        out_str(o, sub->name);
        out_str(o, "' command\r\n");
        return CLUSTER_CMD_DONE;
    }
    switch (sub->kind) {
    case SUB_INFO:
        cluster_reply_info(o, s, proto);
        break;
    case SUB_NODES:
        cluster_reply_nodes(o, s, proto);
        break;
    case SUB_SLOTS:
        cluster_reply_slots(o, s, proto);
        break;
    case SUB_SHARDS:
        cluster_reply_shards(o, s, proto);
        break;
    case SUB_MYID:
        cluster_reply_myid(o, s);
        break;
    case SUB_KEYSLOT:
        cluster_reply_keyslot(o, argv[2], argvlen[2]);
        break;
    case SUB_UNSERVED:
        return CLUSTER_CMD_UNSERVED;
    }
    return CLUSTER_CMD_DONE;
}

/* ---- redirections ------------------------------------------------------- */

/* Digits only, 1..maxdigits of them, value <= max. */
static bool
parse_uint(const char *p, size_t n, size_t maxdigits, unsigned long max, unsigned long *v)
{
    unsigned long x = 0;

    if (n == 0 || n > maxdigits)
        return false;
    for (size_t i = 0; i < n; i++) {
        if (p[i] < '0' || p[i] > '9')
            return false;
        x = x * 10 + (unsigned long)(p[i] - '0');
    }
    *v = x;
    return x <= max;
}

/* A host is kept only if it is short enough and has no space, control
 * byte or NUL (it ends up in C strings and log lines). */
static bool
host_ok(const char *p, size_t n)
{
    if (n > CLUSTER_HOST_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)p[i] <= ' ' || p[i] == 0x7f)
            return false;
    return true;
}

int
cluster_parse_redirect(const char *s, size_t len, struct cluster_redirect *r)
{
    unsigned long v;

    if (len > 0 && s[0] == '-')
        s++, len--;
    if (len >= 2 && s[len - 2] == '\r' && s[len - 1] == '\n')
        len -= 2;
    if (len >= 6 && memcmp(s, "MOVED ", 6) == 0)
        r->ask = false, s += 6, len -= 6;
    else if (len >= 4 && memcmp(s, "ASK ", 4) == 0)
        r->ask = true, s += 4, len -= 4;
    else
        return BW_ERR;
    const char *sp = memchr(s, ' ', len);
    if (sp == NULL || !parse_uint(s, (size_t)(sp - s), 5, CLUSTER_SLOTS - 1, &v))
        return BW_ERR;
    r->slot = (unsigned)v;
    len -= (size_t)(sp + 1 - s);
    s = sp + 1;
    const char *colon = memrchr(s, ':', len);
    if (colon == NULL || !parse_uint(colon + 1, len - (size_t)(colon + 1 - s), 5, 65535, &v) ||
        v == 0)
        return BW_ERR;
    r->port = (int)v;
    size_t hlen = (size_t)(colon - s);
    if (hlen >= 2 && s[0] == '[' && s[hlen - 1] == ']')
        s++, hlen -= 2;
    if (!host_ok(s, hlen))
        return BW_ERR;
    memcpy(r->host, s, hlen);
    r->host[hlen] = '\0';
    return BW_OK;
}

/* ---- slot map: basics ---------------------------------------------------- */

struct cluster_map *
cluster_map_new(void)
{
    struct cluster_map *m = bw_calloc(1, sizeof(*m));

    memset(m->slots, 0xff, sizeof(m->slots)); /* every int16_t -1 */
    return m;
}

void
cluster_map_free(struct cluster_map *m)
{
    if (m == NULL)
        return;
    bw_free(m->nodes);
    bw_free(m);
}

size_t
cluster_map_node_count(const struct cluster_map *m)
{
    return m->nnodes;
}

const struct cluster_node *
cluster_map_node(const struct cluster_map *m, size_t i)
{
    BW_ASSERT(i < m->nnodes);
    return &m->nodes[i];
}

int
cluster_map_slot_node(const struct cluster_map *m, unsigned slot)
{
    BW_ASSERT(slot < CLUSTER_SLOTS);
    return m->slots[slot];
}

int
cluster_map_next_master(const struct cluster_map *m, int after)
{
    for (size_t i = after < 0 ? 0 : (size_t)after + 1; i < m->nnodes; i++)
        if (!m->nodes[i].replica)
            return (int)i;
    return -1;
}

int
cluster_map_find(const struct cluster_map *m, const char *host, int port)
{
    for (size_t i = 0; i < m->nnodes; i++)
        if (m->nodes[i].port == port && strcasecmp(m->nodes[i].host, host) == 0)
            return (int)i;
    return -1;
}

size_t
cluster_map_slots_assigned(const struct cluster_map *m)
{
    size_t n = 0;

    for (size_t i = 0; i < CLUSTER_SLOTS; i++)
        n += m->slots[i] >= 0;
    return n;
}

bool
cluster_map_covered(const struct cluster_map *m)
{
    return cluster_map_slots_assigned(m) == CLUSTER_SLOTS;
}

/* Append a copy of n; the caller checked the node limit. Returns its index. */
static int
map_append(struct cluster_map *m, const struct cluster_node *n)
{
    if (m->nnodes == m->cap) {
        m->cap = BW_MAX(m->cap * 2, (size_t)8);
        m->nodes = bw_realloc(m->nodes, m->cap * sizeof(*m->nodes));
    }
    m->nodes[m->nnodes] = *n;
    return (int)m->nnodes++;
}

int
cluster_map_move_slot(struct cluster_map *m, unsigned slot, const char *host, int port)
{
    size_t hlen = strlen(host);

    if (slot >= CLUSTER_SLOTS || port < 1 || port > 65535 || hlen == 0 || !host_ok(host, hlen))
        return -1;
    int i = cluster_map_find(m, host, port);
    if (i < 0) {
        struct cluster_node n = {.port = port, .master = -1};

        if (m->nnodes >= CLUSTER_MAP_MAX_NODES)
            return -1;
        memcpy(n.host, host, hlen + 1);
        i = map_append(m, &n);
    }
    m->nodes[i].replica = false;
    m->nodes[i].master = -1;
    m->slots[slot] = (int16_t)i;
    return i;
}

/* ---- slot map: reading replies ------------------------------------------ */

/* Where the parse of one reply stands; errors are formatted into err. */
struct map_parse {
    struct cluster_map *m;  /* the map being built (owned by the parse) */
    const char *asked_host; /* borrowed: fallback endpoint, may be NULL */
    char *err;              /* borrowed: the caller's error buffer */
    size_t errlen;          /* bytes at err */
};

/* Format the reason into p->err; returns BW_ERR (-1, also "no index"). */
static int map_fail(struct map_parse *p, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static int
map_fail(struct map_parse *p, const char *fmt, ...)
{
    va_list ap;

    if (p->errlen > 0) {
        va_start(ap, fmt);
        vsnprintf(p->err, p->errlen, fmt, ap);
        va_end(ap);
    }
    return BW_ERR;
}

static bool
is_str(const struct reply_node *n)
{
    return n != NULL && (n->type == '$' || n->type == '+') && !n->nil;
}

static bool
is_int(const struct reply_node *n)
{
    return n != NULL && n->type == ':';
}

/* An array, or a RESP3 map (its elems are key, value, key, value ...). */
static bool
is_list(const struct reply_node *n)
{
    return n != NULL && (n->type == '*' || n->type == '%') && !n->nil;
}

/* The value of key in a map or flat array of pairs, or NULL. */
static const struct reply_node *
pairs_get(const struct reply_node *n, const char *key)
{
    for (size_t i = 0; i + 1 < n->nelems; i += 2)
        if (reply_node_is(&n->elems[i], key))
            return &n->elems[i + 1];
    return NULL;
}

/* Copy the first usable of endpoint, ip (either may be NULL or not a
 * string) and p->asked_host into out: non-empty and not "?". */
static int
pick_host(struct map_parse *p, char *out, const struct reply_node *endpoint,
          const struct reply_node *ip)
{
    const struct reply_node *cand[2] = {endpoint, ip};

    for (size_t i = 0; i < 2; i++) {
        const struct reply_node *c = cand[i];

        if (!is_str(c) || c->len == 0 || (c->len == 1 && c->str[0] == '?'))
            continue;
        if (!host_ok(c->str, c->len))
            return map_fail(p, "bad node host '%.*s'", (int)BW_MIN(c->len, 64), c->str);
        memcpy(out, c->str, c->len);
        out[c->len] = '\0';
        return BW_OK;
    }
    if (p->asked_host == NULL || p->asked_host[0] == '\0' ||
        !host_ok(p->asked_host, strlen(p->asked_host)))
        return map_fail(p, "a node has no usable endpoint");
    strcpy(out, p->asked_host);
    return BW_OK;
}

/* Copy a node id: 40 hex digits (lowercased), or refuse. */
static int
pick_id(struct map_parse *p, char *out, const struct reply_node *id)
{
    if (!is_str(id) || id->len != CLUSTER_NAMELEN)
        return map_fail(p, "a node id is not %d hex digits", CLUSTER_NAMELEN);
    for (size_t i = 0; i < CLUSTER_NAMELEN; i++) {
        char ch = id->str[i];

        if (ch >= 'A' && ch <= 'F')
            ch = (char)(ch - 'A' + 'a');
        if (!((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')))
            return map_fail(p, "a node id is not %d hex digits", CLUSTER_NAMELEN);
        out[i] = ch;
    }
    out[CLUSTER_NAMELEN] = '\0';
    return BW_OK;
}

static int
pick_port(struct map_parse *p, int *out, const struct reply_node *port)
{
    if (!is_int(port) || port->integer < 1 || port->integer > 65535)
        return map_fail(p, "a node port is not 1..65535");
    *out = (int)port->integer;
    return BW_OK;
}

/* The index of the node n names (same id, or same host:port when either
 * has no id), or -1. */
static int
map_same_node(const struct cluster_map *m, const struct cluster_node *n)
{
    for (size_t i = 0; i < m->nnodes; i++) {
        const struct cluster_node *o = &m->nodes[i];

        if (n->id[0] != '\0' && o->id[0] != '\0') {
            if (strcmp(n->id, o->id) == 0)
                return (int)i;
        } else if (o->port == n->port && strcasecmp(o->host, n->host) == 0) {
            return (int)i;
        }
    }
    return -1;
}

/* Add n (or find it again: a master named by several ranges); a node must
 * keep its address, role and master. Returns its index, or BW_ERR (-1, no
 * index) with p->err set. */
static int
map_add(struct map_parse *p, const struct cluster_node *n)
{
    struct cluster_map *m = p->m;
    int i = map_same_node(m, n);

    if (i < 0) {
        if (cluster_map_find(m, n->host, n->port) >= 0)
            return map_fail(p, "two nodes at %s:%d", n->host, n->port);
        if (m->nnodes >= CLUSTER_MAP_MAX_NODES)
            return map_fail(p, "more than %d nodes", CLUSTER_MAP_MAX_NODES);
        return map_append(m, n);
    }
    const struct cluster_node *o = &m->nodes[i];
    if (o->port != n->port || strcasecmp(o->host, n->host) != 0)
        return map_fail(p, "node %s at two addresses", n->id);
    if (o->replica != n->replica || o->master != n->master)
        return map_fail(p, "node %s:%d has two roles or masters", n->host, n->port);
    return i;
}

/* Give slots start..end to master index mi. */
static int
map_assign(struct map_parse *p, int64_t start, int64_t end, int mi)
{
    if (start < 0 || end >= CLUSTER_SLOTS || start > end)
        return map_fail(p, "bad slot range %lld-%lld", (long long)start, (long long)end);
    for (int64_t s = start; s <= end; s++) {
        if (p->m->slots[s] >= 0)
            return map_fail(p, "slot %lld is given twice", (long long)s);
        p->m->slots[s] = (int16_t)mi;
    }
    return BW_OK;
}

/* Parse whole reply bytes; refuse anything but one array. */
static struct reply_node *
map_parse_root(struct map_parse *p, const char *buf, size_t len)
{
    struct reply_node *root = reply_parse(buf, len);

    if (root == NULL) {
        map_fail(p, "not one complete RESP reply");
        return NULL;
    }
    if (!is_list(root) || root->type != '*') {
        if (root->type == '-' || root->type == '!')
            map_fail(p, "error reply: %.*s", (int)BW_MIN(root->len, 128), root->str);
        else
            map_fail(p, "reply is not an array");
        reply_node_free(root);
        return NULL;
    }
    return root;
}

/* Move the map built in tmp into m; tmp is freed. */
static void
map_take(struct cluster_map *m, struct cluster_map *tmp)
{
    bw_free(m->nodes);
    memcpy(m, tmp, sizeof(*m));
    bw_free(tmp);
}

/* ---- CLUSTER SLOTS ------------------------------------------------------- */

/* One [endpoint, port, id?, metadata?] entry into the map; master is the
 * index of the range's master for a replica, -1 for the master itself. */
static int
slots_node(struct map_parse *p, const struct reply_node *e, int master)
{
    struct cluster_node n = {.master = master, .replica = master >= 0};
    const struct reply_node *meta = e->nelems >= 4 ? &e->elems[3] : NULL;
    const struct reply_node *ip = NULL;

    if (meta != NULL && is_list(meta))
        ip = pairs_get(meta, "ip");
    if (pick_host(p, n.host, &e->elems[0], ip) != BW_OK ||
        pick_port(p, &n.port, &e->elems[1]) != BW_OK)
        return -1;
    if (e->nelems >= 3 && pick_id(p, n.id, &e->elems[2]) != BW_OK)
        return -1;
    return map_add(p, &n);
}

/* One [start, end, master, replica ...] range. */
static int
slots_range(struct map_parse *p, const struct reply_node *r)
{
    if (!is_list(r) || r->type != '*' || r->nelems < 3)
        return map_fail(p, "a slot range is not [start, end, master, ...]");
    if (!is_int(&r->elems[0]) || !is_int(&r->elems[1]))
        return map_fail(p, "a slot range has no integer bounds");
    for (size_t i = 2; i < r->nelems; i++) {
        const struct reply_node *e = &r->elems[i];

        if (!is_list(e) || e->type != '*' || e->nelems < 2)
            return map_fail(p, "a node entry is not [endpoint, port, ...]");
    }
    int mi = slots_node(p, &r->elems[2], -1);
    if (mi < 0)
        return BW_ERR;
    for (size_t i = 3; i < r->nelems; i++)
        if (slots_node(p, &r->elems[i], mi) < 0)
            return BW_ERR;
    return map_assign(p, r->elems[0].integer, r->elems[1].integer, mi);
}

/*
 * Parse a whole reply into a new map, one top-level element at a time with
 * one_fn; m takes the new map only when every element parsed.
 */
static int
map_parse_reply(struct cluster_map *m, const char *buf, size_t len, const char *asked_host,
                char *err, size_t errlen,
                int (*one_fn)(struct map_parse *p, const struct reply_node *r))
{
    struct map_parse p = {cluster_map_new(), asked_host, err, errlen};
    struct reply_node *root = map_parse_root(&p, buf, len);
    int rc = root != NULL ? BW_OK : BW_ERR;

    for (size_t i = 0; rc == BW_OK && i < root->nelems; i++)
        rc = one_fn(&p, &root->elems[i]);
    reply_node_free(root);
    if (rc != BW_OK) {
        cluster_map_free(p.m);
        return BW_ERR;
    }
    map_take(m, p.m);
    return BW_OK;
}

int
cluster_map_parse_slots(struct cluster_map *m, const char *buf, size_t len,
                        const char *asked_host, char *err, size_t errlen)
{
    return map_parse_reply(m, buf, len, asked_host, err, errlen, slots_range);
}

/* ---- CLUSTER SHARDS ------------------------------------------------------ */

/* One node's map into *n (not added); *master: its role is "master". */
static int
shards_node(struct map_parse *p, const struct reply_node *e, struct cluster_node *n, bool *master)
{
    const struct reply_node *role, *health, *port;

    if (!is_list(e) || e->nelems % 2 != 0)
        return map_fail(p, "a shard node is not a map");
    memset(n, 0, sizeof(*n));
    n->master = -1;
    port = pairs_get(e, "port");
    if (port == NULL && pairs_get(e, "tls-port") != NULL)
        return map_fail(p, "a node has only a tls-port");
    if (pick_id(p, n->id, pairs_get(e, "id")) != BW_OK || pick_port(p, &n->port, port) != BW_OK ||
        pick_host(p, n->host, pairs_get(e, "endpoint"), pairs_get(e, "ip")) != BW_OK)
        return BW_ERR;
    role = pairs_get(e, "role");
    if (role == NULL || !(reply_node_is(role, "master") || reply_node_is(role, "replica")))
        return map_fail(p, "a node role is not master or replica");
    *master = reply_node_is(role, "master");
    health = pairs_get(e, "health");
    if (health != NULL && reply_node_is(health, "fail"))
        n->health = CLUSTER_FAIL;
    else if (health != NULL && reply_node_is(health, "loading"))
        n->health = CLUSTER_LOADING;
    return BW_OK;
}

/* The position in nodes of the shard's slot owner: the first master not
 * failed, else the first master; -1 when there is no master. */
static int
shards_owner(struct map_parse *p, const struct reply_node *nodes, int *owner)
{
    struct cluster_node n;
    int first = -1, healthy = -1;
    bool master;

    for (size_t i = 0; i < nodes->nelems; i++) {
        if (shards_node(p, &nodes->elems[i], &n, &master) != BW_OK)
            return BW_ERR;
        if (master && first < 0)
            first = (int)i;
        if (master && healthy < 0 && n.health != CLUSTER_FAIL)
            healthy = (int)i;
    }
    *owner = healthy >= 0 ? healthy : first;
    return *owner >= 0 ? BW_OK : map_fail(p, "a shard has no master");
}

/* One shard: its owner first, then the others, then its slots. */
static int
shards_one(struct map_parse *p, const struct reply_node *sh)
{
    const struct reply_node *slots, *nodes;
    struct cluster_node n;
    bool master;
    int owner, mi;

    if (!is_list(sh) || sh->nelems % 2 != 0)
        return map_fail(p, "a shard is not a map");
    slots = pairs_get(sh, "slots");
    nodes = pairs_get(sh, "nodes");
    if (!is_list(slots) || slots->type != '*' || slots->nelems % 2 != 0 || !is_list(nodes) ||
        nodes->type != '*')
        return map_fail(p, "a shard has no slots pairs or no nodes");
    if (shards_owner(p, nodes, &owner) != BW_OK ||
        shards_node(p, &nodes->elems[owner], &n, &master) != BW_OK || (mi = map_add(p, &n)) < 0)
        return BW_ERR;
    for (size_t i = 0; i < nodes->nelems; i++) {
        if (i == (size_t)owner)
            continue;
        if (shards_node(p, &nodes->elems[i], &n, &master) != BW_OK)
            return BW_ERR;
        n.replica = !master;
        n.master = master ? -1 : mi;
        if (map_add(p, &n) < 0)
            return BW_ERR;
    }
    for (size_t i = 0; i < slots->nelems; i += 2) {
        const struct reply_node *a = &slots->elems[i], *b = &slots->elems[i + 1];

        if (!is_int(a) || !is_int(b))
            return map_fail(p, "a shard slot is not an integer");
        if (map_assign(p, a->integer, b->integer, mi) != BW_OK)
            return BW_ERR;
    }
    return BW_OK;
}

int
cluster_map_parse_shards(struct cluster_map *m, const char *buf, size_t len,
                         const char *asked_host, char *err, size_t errlen)
{
    return map_parse_reply(m, buf, len, asked_host, err, errlen, shards_one);
}
