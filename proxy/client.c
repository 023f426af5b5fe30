/*
 * client: one client connection — its socket and buffers, the request
 * parser, back-pressure, output limits, and the connection's life cycle.
 * Parsed requests go through the stage table (stages.h); replies come back
 * through the session's reply slots (slots.h) into the output, written at
 * the end of the loop turn (netio.h). Flow diagram in client.h.
 */
#include "proxy/client.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/queue.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/cmdstats.h"
#include "proxy/ctrack.h"
#include "proxy/keyspace.h"
#include "proxy/log.h"
#include "proxy/netio.h"
#include "proxy/pinned.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/session.h"
#include "proxy/stages.h"
#include "proxy/stats.h"
#include "proxy/upstream.h"
#include "proxy/util.h"

/* States of a client connection. */
enum client_state {
    CLIENT_ACTIVE = 0, /* reading and answering requests */
    CLIENT_DRAINING,   /* QUIT, protocol error or shutdown: reads nothing more,
                          closes when every reply is written */
    CLIENT_CLOSED      /* socket dead; waiting in proxy.reaped to be freed */
};

struct client {
    struct session s;           /* what the request path sees (first: client_of()) */
    TAILQ_ENTRY(client) link;   /* in proxy.reaped once closed */
    enum client_state state;    /* see enum client_state */
    struct netio *io;           /* the socket and its buffers (owned, closes fd on free) */
    struct resp_parser *parser; /* request parser (owned) */
    size_t need;                /* input bytes needed before parsing again */
    bool paused;                /* reading stopped by back-pressure */
    bool eof;                   /* the client closed its side: nothing more is read;
                                      replies go straight to the socket (client_eof_push) */
    bool close_asap;            /* passed client-output-buffer-limit: closed from
                                      resume_ev on the next loop turn, no reply kept */
    uint64_t obl_soft_since_ms; /* when the held bytes reached the soft limit, monotonic
                                      ms; 0 = below it */
    bool in_process;            /* inside client_process_input() */
    struct event *resume_ev;    /* zero-timeout event that resumes input processing on
                                      the next loop turn (owned): completions never re-enter
                                      client_process_input() from another module's loop */
    uint64_t last_ms;           /* last read or write, monotonic ms */
};

static void client_process_input(struct client *c);
static void client_schedule_input(struct client *c);
static void client_check_output(struct client *c);
static void client_eof_push(struct client *c);
static void client_eof_check(struct client *c);
static bool client_query_buffer_over(struct client *c);
static void client_io_stats(const struct session *s, struct session_io *io);

static struct client *
client_of(const struct session *s)
{
    return (struct client *)((char *)s - offsetof(struct client, s));
}

/* ---- what the request path asks of the connection (session_ops) ---------- */

static void
client_maybe_finish(struct client *c)
{
    if (c->state == CLIENT_DRAINING && c->s.q.n == 0 &&
        evbuffer_get_length(netio_output(c->io)) == 0)
        client_close(c);
}

static void
client_maybe_resume(struct client *c)
{
    if (!c->paused || c->state != CLIENT_ACTIVE)
        return;
    uint64_t max = (uint64_t)c->s.px->cfg.client_max_pending;
    if (c->s.q.n > max / 2 ||
        evbuffer_get_length(netio_output(c->io)) > CLIENT_OUTPUT_PAUSE_BYTES / 2)
        return;
    c->paused = false;
    if (!c->eof)
        netio_enable_read(c->io, true);
    client_schedule_input(c);
}

/*
 * Replies moved to the output (slots.h): what waited for them goes on — a
 * half-closed client's replies are pushed, a draining one may close, held
 * input may be parsed again, back-pressure may lift.
 */
static void
client_flushed(struct session *s)
{
    struct client *c = client_of(s);
    if (c->eof) {
        client_eof_push(c); /* may close c */
        if (c->state == CLIENT_CLOSED)
            return;
        client_schedule_input(c); /* what is left of its input, then close (its
                                     session's slot may be the one left) */
    }
    client_maybe_finish(c);
    if (c->state != CLIENT_ACTIVE)
        return;
    if ((s->hold == SESSION_HOLD_DRAIN && s->q.n == 0) ||
        (s->hold == SESSION_HOLD_BATCH && s->q.nbatched == 0 && s->q.nheld == 0)) {
        s->hold = SESSION_RUN; /* what it waited for is answered */
        client_schedule_input(c);
    }
    client_maybe_resume(c);
}

static void
client_grew(struct session *s)
{
    client_check_output(client_of(s));
}

static const struct slotq_ops client_slotq_ops = {
    .flushed = client_flushed,
    .grew = client_grew,
};

static void
client_op_close_after_reply(struct session *s)
{
    client_close_after_reply(client_of(s));
}

static void
client_op_close(struct session *s)
{
    client_close(client_of(s));
}

static void
client_op_resume(struct session *s)
{
    client_schedule_input(client_of(s));
}

/* Reply bytes bulwark holds for c: its output and the parked ready replies. */
static size_t
client_held_bytes(const struct client *c)
{
    return evbuffer_get_length(netio_output(c->io)) + c->s.q.parked_bytes;
}

static size_t
client_op_held_bytes(const struct session *s)
{
    return client_held_bytes(client_of(s));
}

static const struct session_ops client_session_ops = {
    .close_after_reply = client_op_close_after_reply,
    .close = client_op_close,
    .resume = client_op_resume,
    .io_stats = client_io_stats,
    .held_bytes = client_op_held_bytes,
};

void
client_close_after_reply(struct client *c)
{
    if (c->state == CLIENT_CLOSED)
        return;
    if (c->state == CLIENT_ACTIVE) {
        c->state = CLIENT_DRAINING;
        netio_enable_read(c->io, false);
    }
    slotq_flush(&c->s.q);
}

/* ---- input ------------------------------------------------------------------ */

/* Send the parser's protocol error after earlier replies, then close. */
static void
client_protocol_error(struct client *c)
{
    char peek[68];
    const char *err = resp_parser_error(c->parser);
    struct evbuffer *in = netio_input(c->io);
    size_t n = BW_MIN(evbuffer_get_length(in), 64);
    log_sanitize((const char *)evbuffer_pullup(in, (ev_ssize_t)n), n, peek, sizeof(peek));
    log_verbose("client id=%llu addr=%s: %.*s; input: '%s'", (unsigned long long)c->s.id,
                c->s.addr, (int)strcspn(err + 1, "\r\n"), err + 1, peek);
    c->s.px->stats.protocol_errors++;
    session_reply_raw(&c->s, err, strlen(err));
    client_close_after_reply(c);
}

/* True when the client must not be read further for now. */
static bool
client_should_pause(struct client *c)
{
    return c->close_asap || c->s.q.n >= (uint64_t)c->s.px->cfg.client_max_pending ||
           evbuffer_get_length(netio_output(c->io)) > CLIENT_OUTPUT_PAUSE_BYTES;
}

/*
 * How many input bytes to parse at once: all avail, except when a big
 * request is complete in the first chain (netio_set_want put it there):
 * then that chain alone, so evbuffer_pullup() copies nothing and bytes
 * that arrived after it (in a chain of their own) are parsed next round.
 */
static size_t
client_parse_span(const struct client *c, struct evbuffer *in, size_t avail)
{
    struct evbuffer_iovec first;
    if (c->need <= NETIO_BIG_BYTES || evbuffer_peek(in, -1, NULL, &first, 1) <= 1)
        return avail;
    return first.iov_len >= c->need ? first.iov_len : avail;
}

/*
 * Run one parsed request (its bytes at buf + off … in the input). A big
 * request's bytes go to the head of the input first, so that forwarding it
 * moves them instead of copying; *drained counts what left the input.
 */
static void
client_run(struct client *c, const struct resp_request *req, const char *buf, size_t *drained)
{
    struct evbuffer *in = netio_input(c->io);
    if (req->raw != NULL && req->raw_len > NETIO_BIG_BYTES) {
        evbuffer_drain(in, (size_t)(req->raw - buf) - *drained);
        *drained = (size_t)(req->raw - buf);
        c->s.move_raw = req->raw;
    }
    uint64_t now_us = stats_loop_us(c->s.px->base); /* cached: no clock read */
    cmdstats_begin(&c->s.px->cmdstats, now_us);
    stages_run(&c->s, req);
    cmdstats_end(&c->s.px->cmdstats, now_us);
    if (c->s.moved) /* its bytes left the input (buf stays valid: the upstream's now) */
        *drained += req->raw_len;
    c->s.move_raw = NULL;
    c->s.moved = false;
}

/*
 * Parse and run the requests in len bytes at buf, as far as allowed. Returns
 * the parser's last outcome; *off: bytes parsed, *drained: of them, bytes
 * already drained from the input.
 */
static int
client_parse_run(struct client *c, const char *buf, size_t len, size_t *off, size_t *drained)
{
    const struct cfg *cfg = &c->s.px->cfg;
    int rc = RESP_OK;
    while (c->state == CLIENT_ACTIVE && *off < len && !client_should_pause(c)) {
        struct resp_request req;
        size_t used = 0;
        resp_parser_set_limits(c->parser, cfg->proto_max_bulk_len);
        resp_parser_set_authenticated(c->parser, c->s.authenticated);
        rc = resp_parse(c->parser, buf + *off, len - *off, &used, &req);
        c->s.pins_req = NULL; /* a new request (maybe at the same address) */
        if (rc == RESP_OK && stages_hold(&c->s, &req) != SESSION_RUN) {
            /* it waits, unparsed, in the input (SESSION_HOLD_* says until when) */
            resp_parser_reset(c->parser);
            c->need = 0;
            break;
        }
        *off += used;
        if (rc != RESP_OK)
            break;
        client_run(c, &req, buf, drained);
    }
    return rc;
}

/*
 * A client that closed its side: every request it sent is answered — no
 * slot due, or only its session's, with nothing due on it or blocked (a
 * blocking command or a subscription waits for what can no longer come:
 * Redis frees a client that read 0 too).
 */
static bool
client_eof_answered(const struct client *c)
{
    const struct session *s = &c->s;
    if (s->q.n == 0)
        return true;
    return s->pin != NULL && s->q.n == 1 && s->pin_slot != NULL && pinned_answered(s->pin);
}

/* Parse and handle what the input buffer holds, as far as allowed. */
static void
client_process_input(struct client *c)
{
    struct evbuffer *in = netio_input(c->io);
    if (c->s.hold == SESSION_HOLD_POOL)
        return; /* held until the pool wakes us */
    c->in_process = true;
    while (c->state == CLIENT_ACTIVE) {
        size_t avail = evbuffer_get_length(in);
        if (avail == 0 || avail < c->need)
            break;
        if (client_should_pause(c)) {
            c->paused = true;
            netio_enable_read(c->io, false);
            break;
        }
        size_t len = client_parse_span(c, in, avail);
        const char *buf = (const char *)evbuffer_pullup(in, (ev_ssize_t)len);
        size_t off = 0, drained = 0;
        int rc = client_parse_run(c, buf, len, &off, &drained);
        evbuffer_drain(in, off - drained);
        if (c->s.hold != SESSION_RUN)
            break;
        if (rc == RESP_ERR) {
            client_protocol_error(c);
            break;
        }
        c->need = rc == RESP_AGAIN ? resp_parser_need(c->parser) : 0;
        if (rc == RESP_AGAIN && len == avail)
            break;
    }
    c->in_process = false;
    if (c->state == CLIENT_ACTIVE) { /* a big bulk pending: read it into place */
        size_t have = evbuffer_get_length(in);
        netio_set_want(c->io, c->need > have ? c->need - have : 0, true);
    }
    if (c->state == CLIENT_ACTIVE && client_query_buffer_over(c))
        return;
    if (c->eof && c->state == CLIENT_ACTIVE && !c->close_asap &&
        ((c->s.hold == SESSION_RUN && evbuffer_get_length(in) == 0) ||
         c->s.hold == SESSION_HOLD_IDLE))
        client_eof_check(c);
}

/*
 * c closed its side and every request it sent has gone its way — then its
 * session shuts its connection too, and Redis, reading EOF there, answers
 * what it would and closes it (pinned_shutdown) — or the next waits for its
 * session (SESSION_HOLD_IDLE): closed once what went is answered (a
 * blocking command is then given PINNED_BLOCK_GRACE_MS, and taken as
 * blocked, what waits behind it never running, as with Redis).
 */
static void
client_eof_check(struct client *c)
{
    if (c->s.pin != NULL && c->s.hold == SESSION_RUN)
        pinned_shutdown(c->s.pin); /* its last request is sent */
    if (client_eof_answered(c)) {
        /* every request it sent before closing its side is answered */
        log_verbose("client id=%llu addr=%s closed its side: closing",
                    (unsigned long long)c->s.id, c->s.addr);
        client_eof_push(c);
        client_close(c);
    } else if (c->s.pin != NULL && pinned_blocked(c->s.pin)) {
        struct timeval tv = {0, PINNED_BLOCK_GRACE_MS * 1000};
        event_add(c->resume_ev, &tv); /* then blocked for good: look again */
    }
}

/*
 * client-query-buffer-limit, as Redis 7.0 readQueryFromClient(): only the
 * bytes not parsed yet count (Redis moves complete arguments out of its
 * query buffer into argv; bulwark keeps them in place to forward the
 * request as it came). Over the limit: logged as Redis logs it, closed.
 */
static bool
client_query_buffer_over(struct client *c)
{
    struct evbuffer *in = netio_input(c->io);
    size_t avail = evbuffer_get_length(in), parsed = resp_parser_parsed(c->parser);
    size_t unparsed = avail - BW_MIN(parsed, avail);
    if (unparsed <= c->s.px->cfg.client_query_buffer_limit)
        return false;
    char info[512], peek[68];
    struct evbuffer_ptr at;
    evbuffer_ptr_set(in, &at, parsed, EVBUFFER_PTR_SET);
    char head[64];
    ev_ssize_t n = evbuffer_copyout_from(in, &at, head, sizeof(head));
    log_sanitize(head, n > 0 ? (size_t)n : 0, peek, sizeof(peek));
    session_info_line(&c->s, info, sizeof(info));
    log_warn("Closing client that reached max query buffer length: %s (qbuf initial bytes: "
             "\"%s\")",
             info, peek);
    client_close(c);
    return true;
}

/*
 * Resume parsing c's input on the next loop turn. Every completion path
 * (an upstream reply, a batch answered or failed, a lease woken, a pinned
 * session ended) calls this instead of client_process_input(): those run
 * inside another module's loop (batch_flush walking its keys, the upstream
 * FIFO), which c's next requests must not re-enter (redis blocked.c resumes
 * blocked clients from a queue in the same way).
 */
static void
client_schedule_input(struct client *c)
{
    if (c->state == CLIENT_ACTIVE)
        event_active(c->resume_ev, EV_TIMEOUT, 0);
}

static void
client_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct client *c = arg;
    (void)fd;
    (void)what;
    if (c->close_asap) {
        client_close(c);
        return;
    }
    if (c->state == CLIENT_ACTIVE && !c->paused && !c->in_process && c->s.hold == SESSION_RUN)
        client_process_input(c);
    else if (c->eof && c->state == CLIENT_ACTIVE && !c->in_process && !c->close_asap &&
             c->s.hold == SESSION_HOLD_IDLE)
        client_eof_check(c); /* behind a blocking command: blocked for good? */
}

/* ---- socket callbacks ----------------------------------------------------- */

static void
client_read_cb(struct netio *io, void *arg)
{
    struct client *c = arg;
    c->last_ms = bw_now_ms();
    c->s.px->input_seq++; /* watch_sync(): bytes read after the watch was last drained */
    c->s.px->stats.net_input_bytes += netio_last_read(io);
    if (client_query_buffer_over(c)) /* after each read, before parsing, as Redis checks */
        return;
    client_process_input(c);
}

static void
client_write_cb(struct netio *io, void *arg)
{
    struct client *c = arg;
    (void)io;
    c->last_ms = bw_now_ms();
    client_maybe_finish(c);
    if (c->state == CLIENT_ACTIVE)
        client_maybe_resume(c);
}

static void
client_event_cb(struct netio *io, short what, void *arg)
{
    struct client *c = arg;
    (void)io;
    if ((what & NETIO_EOF) && c->state != CLIENT_CLOSED && !c->eof) {
        /*
         * Read returned 0. Redis 7.0 (readQueryFromClient) frees the client
         * then, its unsent output dropped; the requests it read before have
         * run, and their replies went out as far as the socket took them.
         * bulwark answers the requests read before the EOF as their replies
         * arrive, each written straight to the socket, and closes once all
         * are out, or at the first reply the socket does not take whole (a
         * half-closed client that does not read is freed, holding nothing).
         */
        log_verbose("client id=%llu addr=%s closed its side", (unsigned long long)c->s.id,
                    c->s.addr);
        c->eof = true;
        netio_enable_read(c->io, false);
        client_eof_push(c);
        if (c->state == CLIENT_DRAINING)
            client_maybe_finish(c);
        else if (c->state == CLIENT_ACTIVE && !c->in_process && c->s.q.n == 0 &&
                 evbuffer_get_length(netio_input(c->io)) == 0 && c->s.hold == SESSION_RUN &&
                 !c->close_asap)
            client_close(c); /* nothing read is unanswered: freed now, as Redis frees a
                                client that read 0 (a connection accepted later in this
                                loop turn no longer finds it counted against maxclients) */
        else if (c->state == CLIENT_ACTIVE && !c->in_process)
            client_schedule_input(c);
    } else if (what & (NETIO_EOF | NETIO_ERROR)) {
        log_verbose("client id=%llu addr=%s connection error", (unsigned long long)c->s.id,
                    c->s.addr);
        client_close(c);
    }
}

static void
client_count_output(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    struct client *c = arg;
    (void)buf;
    c->s.px->stats.net_output_bytes += info->n_added;
    client_check_output(c);
}

/*
 * After EOF: write c's output to the socket now; what the socket does not
 * take is dropped and c closed, as Redis frees a client that read 0.
 */
static void
client_eof_push(struct client *c)
{
    struct evbuffer *out = netio_output(c->io);
    if (c->state == CLIENT_CLOSED)
        return;
    if (netio_write_now(c->io) == 0)
        return;
    log_verbose("client id=%llu addr=%s closed its side and does not read: %zu bytes of "
                "replies dropped",
                (unsigned long long)c->s.id, c->s.addr, evbuffer_get_length(out));
    client_close(c);
}

/* ---- output limits -------------------------------------------------------- */

/*
 * Called on every change of c's output: over its client-output-buffer-limit
 * (session_output_over), c is closed on the next loop turn (Redis's "close
 * ASAP"; never inside the evbuffer or upstream callback that grew it), and
 * nothing more is kept for it meanwhile.
 */
static void
client_check_output(struct client *c)
{
    if (c->state == CLIENT_CLOSED || c->close_asap ||
        !session_output_over(&c->s, client_held_bytes(c), &c->obl_soft_since_ms))
        return;
    char info[512];
    session_info_line(&c->s, info, sizeof(info));
    log_warn("Client %s scheduled to be closed ASAP for overcoming of output buffer limits.",
             info);
    c->s.px->stats.client_output_limit_closed++;
    c->close_asap = true;
    c->s.q.drop = true;
    netio_enable_read(c->io, false);
    event_active(c->resume_ev, EV_TIMEOUT, 0);
}

/* ---- life cycle ----------------------------------------------------------- */

void
client_accept(struct proxy *px, evutil_socket_t fd, const char *addr, const char *laddr,
              bool is_unix)
{
    struct client *c = bw_calloc(1, sizeof(*c));
    c->last_ms = bw_now_ms();
    c->parser = resp_parser_new();
    /* reads 16 KB at a time, big bulks straight into place; replies are
     * written at the end of the loop turn (netio.h) */
    c->io = netio_new(px->base, fd, client_read_cb, client_write_cb, client_event_cb, c);
    session_init(&c->s, px, &client_session_ops, &client_slotq_ops, netio_output(c->io), addr,
                 laddr, is_unix);
    c->s.move_src = netio_input(c->io);
    keyspace_select(&c->s, 0);
    c->resume_ev = event_new(px->base, -1, 0, client_resume_cb, c);
    BW_ASSERT(c->resume_ev != NULL);
    evbuffer_add_cb(netio_output(c->io), client_count_output, c);
    px->stats.connected_clients++;
    px->stats.total_connections++;
    log_verbose("accepted client id=%llu addr=%s", (unsigned long long)c->s.id, c->s.addr);
}

void
client_close(struct client *c)
{
    struct proxy *px = c->s.px;
    if (c->state == CLIENT_CLOSED)
        return;
    c->state = CLIENT_CLOSED;
    ctrack_session_gone(&c->s);
    if (c->close_asap) /* over its output limit: what the kernel still holds for it goes too */
        netio_set_abortive(c->io);
    netio_enable_read(c->io, false);
    netio_enable_write(c->io, false);
    netio_setcb(c->io, NULL, NULL, NULL, NULL);
    event_del(c->resume_ev);
    upstream_pinned_wait_cancel(c->s.pin_waiter); /* leave the queue */
    c->s.pin_waiter = NULL;
    if (c->s.pin != NULL) { /* closes the connection: a blocked command gets nothing */
        pinned_free(c->s.pin);
        c->s.pin = NULL;
        if (c->s.pin_slot != NULL)       /* (NULL while bulwark answers in between) */
            c->s.pin_slot->ready = true; /* freed below, nothing refers to it */
        c->s.pin_slot = NULL;
    }
    session_deinit(&c->s); /* pending replies orphaned: their completions free them */
    TAILQ_INSERT_TAIL(&px->reaped, c, link);
    px->stats.connected_clients--;
    event_active(px->reap_ev, EV_TIMEOUT, 0);
}

void
client_reap(struct proxy *px)
{
    struct client *c;
    while ((c = TAILQ_FIRST(&px->reaped)) != NULL) {
        TAILQ_REMOVE(&px->reaped, c, link);
        netio_free(c->io);
        event_free(c->resume_ev);
        resp_parser_free(c->parser);
        bw_free(c);
    }
}

void
client_cron(struct proxy *px, uint64_t now_ms)
{
    int timeout = px->cfg.timeout;
    struct session *s, *next;
    if (timeout <= 0)
        return;
    for (s = TAILQ_FIRST(&px->sessions); s != NULL; s = next) {
        next = TAILQ_NEXT(s, link);
        struct client *c = client_of(s);
        /* as Redis: not blocked, subscribed or MONITOR; in MULTI or WATCHing, yes */
        bool idle = s->q.n == 0 || (s->pin != NULL && s->q.n == 1 && s->pin_slot != NULL &&
                                    pinned_times_out(s->pin));
        if (idle && s->hold != SESSION_HOLD_POOL &&
            now_ms - c->last_ms > (uint64_t)timeout * 1000) {
            log_verbose("closing idle client id=%llu addr=%s", (unsigned long long)s->id,
                        s->addr);
            client_close(c);
        }
    }
}

void
client_shutdown_all(struct proxy *px)
{
    struct session *s, *next;
    for (s = TAILQ_FIRST(&px->sessions); s != NULL; s = next) {
        next = TAILQ_NEXT(s, link);
        struct client *c = client_of(s);
        if (s->pin != NULL && pinned_blocked(s->pin) && s->q.n == 1) {
            /* blocked (BLPOP 0) or subscribed: nothing is due that the
             * shutdown-timeout could wait for */
            log_verbose("shutdown: closing blocked client id=%llu addr=%s",
                        (unsigned long long)s->id, s->addr);
            client_eof_push(c); /* its earlier replies, as far as the socket takes them */
            client_close(c);
            continue;
        }
        if (c->state == CLIENT_ACTIVE) {
            c->state = CLIENT_DRAINING;
            netio_enable_read(c->io, false);
        }
        client_maybe_finish(c);
    }
}

void
client_free_all(struct proxy *px)
{
    while (!TAILQ_EMPTY(&px->sessions))
        client_close(client_of(TAILQ_FIRST(&px->sessions)));
    client_reap(px);
    session_index_free(px);
    slot_cache_free_all(); /* slots freed later (batches, upstream) are freed */
}

/* ---- CLIENT LIST ------------------------------------------------------------ */

/* CLIENT LIST's figures of the socket behind s. */
static void
client_io_stats(const struct session *s, struct session_io *io)
{
    const struct client *c = client_of(s);
    io->fd = (int)netio_fd(c->io);
    io->qbuf = evbuffer_get_length(netio_input(c->io));
    io->omem = evbuffer_get_length(netio_output(c->io));
    io->idle_ms = bw_now_ms() - c->last_ms;
}
