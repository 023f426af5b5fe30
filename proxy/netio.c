/* netio: buffered non-blocking socket I/O at Redis's syscall cost (see netio.h). */
#include "proxy/netio.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/util.h"

struct netio {
    struct event_base *base; /* borrowed */
    evutil_socket_t fd;      /* the socket (owned) */
    struct evbuffer *in;     /* bytes read, not consumed by the owner (owned) */
    struct evbuffer *out;    /* bytes queued, not written yet (owned) */
    struct event *rev;       /* EV_READ|EV_PERSIST, armed while reading (owned) */
    struct event *wev;       /* EV_WRITE|EV_PERSIST, armed only while connecting or after a
                                 partial write (owned) */
    struct event *flush_ev;  /* zero-timeout: writes the output at the end of the turn (owned) */
    netio_read_fn *read_fn;  /* the owner's callbacks (may be NULL) */
    netio_write_fn *write_fn;
    netio_event_fn *event_fn;
    void *arg;                     /* their argument (borrowed) */
    bool read_on;                  /* the owner wants reading */
    bool reading;                  /* rev is armed */
    bool read_dead;                /* EOF or an error: never read again */
    bool write_on;                 /* the owner lets the output be written */
    bool write_armed;              /* wev is armed */
    bool write_dead;               /* a write failed: the output is never written */
    bool flush_pending;            /* flush_ev is active; in netio_flushq */
    bool flush_after_read;         /* write every pending output after a read of this one */
    TAILQ_ENTRY(netio) flush_link; /* in netio_flushq while flush_pending */
    bool connecting;               /* netio_connect() in progress */
    int connect_errno;      /* connect()'s own result, delivered from wev (-1: ask SO_ERROR) */
    size_t want;            /* bytes the owner's pending item still needs (netio_set_want) */
    size_t last_read;       /* bytes the last read event added to in */
    uintptr_t contig_end;   /* where the next byte of the item netio_set_want made
                                 contiguous goes (compared only, never dereferenced) */
    uintptr_t contig_limit; /* the end of that chain's room */
    bool abortive;          /* netio_free() resets the connection (netio_set_abortive) */
    bool shut_wr;           /* netio_shutdown_write(): SHUT_WR once the output is written */
};

/* Most unread input netio_free() discards before closing, bytes. */
#define NETIO_DISCARD_BYTES (64 * 1024 * 1024)

/* Connections whose output is to be written at the end of the turn. */
static TAILQ_HEAD(netio_list, netio) netio_flushq = TAILQ_HEAD_INITIALIZER(netio_flushq);

static void netio_read_cb(evutil_socket_t fd, short what, void *arg);
static void netio_write_cb(evutil_socket_t fd, short what, void *arg);
static void netio_flush_cb(evutil_socket_t fd, short what, void *arg);

/* Arm or disarm the read event to match what is wanted. */
static void
netio_update_read(struct netio *n)
{
    bool want = n->read_on && !n->read_dead && !n->connecting;
    if (want == n->reading)
        return;
    n->reading = want;
    if (want)
        BW_ASSERT(event_add(n->rev, NULL) == 0);
    else
        event_del(n->rev);
}

/* Output was added: write it at the end of this loop turn. */
static void
netio_schedule_flush(struct netio *n)
{
    if (n->flush_pending || n->write_armed || n->connecting || !n->write_on || n->write_dead)
        return;
    n->flush_pending = true;
    TAILQ_INSERT_TAIL(&netio_flushq, n, flush_link);
    event_active(n->flush_ev, EV_TIMEOUT, 0);
}

/* The end-of-turn write of n is not wanted (done now, or never). */
static void
netio_unschedule_flush(struct netio *n)
{
    if (!n->flush_pending)
        return;
    event_del(n->flush_ev);
    n->flush_pending = false;
    TAILQ_REMOVE(&netio_flushq, n, flush_link);
}

static void
netio_out_cb(struct evbuffer *buf, const struct evbuffer_cb_info *info, void *arg)
{
    (void)buf;
    if (info->n_added > 0)
        netio_schedule_flush(arg);
}

static struct netio *
netio_alloc(struct event_base *base, evutil_socket_t fd, netio_read_fn *read_fn,
            netio_write_fn *write_fn, netio_event_fn *event_fn, void *arg)
{
    struct netio *n = bw_calloc(1, sizeof(*n));
    n->base = base;
    n->fd = fd;
    n->in = evbuffer_new();
    n->out = evbuffer_new();
    n->rev = event_new(base, fd, EV_READ | EV_PERSIST, netio_read_cb, n);
    n->wev = event_new(base, fd, EV_WRITE | EV_PERSIST, netio_write_cb, n);
    n->flush_ev = event_new(base, -1, 0, netio_flush_cb, n);
    BW_ASSERT(n->in != NULL && n->out != NULL && n->rev != NULL && n->wev != NULL &&
              n->flush_ev != NULL);
    BW_ASSERT(evbuffer_add_cb(n->out, netio_out_cb, n) != NULL);
    n->read_on = n->write_on = true;
    n->connect_errno = -1;
    netio_setcb(n, read_fn, write_fn, event_fn, arg);
    return n;
}

struct netio *
netio_new(struct event_base *base, evutil_socket_t fd, netio_read_fn *read_fn,
          netio_write_fn *write_fn, netio_event_fn *event_fn, void *arg)
{
    evutil_make_socket_nonblocking(fd);
    struct netio *n = netio_alloc(base, fd, read_fn, write_fn, event_fn, arg);
    netio_update_read(n);
    return n;
}

struct netio *
netio_connect(struct event_base *base, const struct sockaddr *sa, int salen,
              netio_read_fn *read_fn, netio_write_fn *write_fn, netio_event_fn *event_fn,
              void *arg)
{
    int fd = socket(sa->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return NULL;
    struct netio *n = netio_alloc(base, fd, read_fn, write_fn, event_fn, arg);
    n->connecting = true;
    int rc = connect(fd, sa, (socklen_t)salen);
    if (rc == 0 || errno != EINPROGRESS) {
        /* done or failed at once (loopback): told from wev on the next turn */
        n->connect_errno = rc == 0 ? 0 : errno;
        event_active(n->wev, EV_WRITE, 0);
    } else {
        n->write_armed = true;
        BW_ASSERT(event_add(n->wev, NULL) == 0);
    }
    return n;
}

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23 /* Linux 5.14; older kernels answer EINVAL, ignored */
#endif

/*
 * A big bulk is read into fresh memory, and faulting it in page by page
 * cost more than copying the data: 512 MB took 0.20 s of 4 KB page faults
 * on this VM, 0.16 s populated in one call per read. (Huge pages,
 * MADV_HUGEPAGE, made it 0.04 s when the kernel had them at hand and up to
 * 1.1 s when it had to compact memory first: not used.) Advice only:
 * errors are ignored.
 */

static bool netio_mem_is_warm(const void *p);

/*
 * Fault in the pages [p, p + len) is about to be written to, in one call;
 * not in a kept block handed out again (netio_mem_take), whose pages are
 * resident already (the call cost 150 us per 4 MB for nothing).
 */
static void
netio_populate(void *p, size_t len)
{
    if (netio_mem_is_warm(p))
        return;
    const uintptr_t page = 4096;
    uintptr_t start = (uintptr_t)p & ~(page - 1), end = ((uintptr_t)p + len) & ~(page - 1);
    if (end > start)
        (void)madvise((void *)start, end - start, MADV_POPULATE_WRITE);
}

/* Drop up to NETIO_DISCARD_BYTES of unread input (TCP's MSG_TRUNC: no copy). */
static void
netio_discard_input(evutil_socket_t fd)
{
    static char sink[64 * 1024]; /* never written for TCP; a unix socket copies into it */
    for (size_t i = 0; i < NETIO_DISCARD_BYTES / sizeof(sink); i++)
        if (recv(fd, sink, sizeof(sink), MSG_DONTWAIT | MSG_TRUNC) <= 0)
            break;
}

void
netio_free(struct netio *n)
{
    if (n == NULL)
        return;
    netio_unschedule_flush(n);
    event_free(n->rev);
    event_free(n->wev);
    event_free(n->flush_ev);
    evbuffer_free(n->in);
    evbuffer_free(n->out);
    if (n->fd >= 0) {
        /* Bytes the peer sent that were never read would make close() send
         * RST, which destroys what the peer has not read yet of ours: drop
         * them first (TCP discards with MSG_TRUNC; one call, bounded). */
        struct linger rst = {1, 0};
        if (n->abortive)
            (void)setsockopt(n->fd, SOL_SOCKET, SO_LINGER, &rst, sizeof(rst));
        else if (!n->read_dead)
            netio_discard_input(n->fd);
        evutil_closesocket(n->fd);
    }
    bw_free(n);
}

void
netio_set_abortive(struct netio *n)
{
    n->abortive = true;
}

void
netio_shutdown_write(struct netio *n)
{
    if (n->shut_wr || n->write_dead)
        return;
    n->shut_wr = true;
    if (!n->connecting && !n->write_armed)
        netio_schedule_flush(n);
}

void
netio_setcb(struct netio *n, netio_read_fn *read_fn, netio_write_fn *write_fn,
            netio_event_fn *event_fn, void *arg)
{
    n->read_fn = read_fn;
    n->write_fn = write_fn;
    n->event_fn = event_fn;
    n->arg = arg;
}

struct evbuffer *
netio_input(const struct netio *n)
{
    return n->in;
}

struct evbuffer *
netio_output(const struct netio *n)
{
    return n->out;
}

size_t
netio_last_read(const struct netio *n)
{
    return n->last_read;
}

evutil_socket_t
netio_fd(const struct netio *n)
{
    return n->fd;
}

void
netio_enable_read(struct netio *n, bool on)
{
    n->read_on = on;
    netio_update_read(n);
}

void
netio_enable_write(struct netio *n, bool on)
{
    n->write_on = on;
    if (on) {
        if (evbuffer_get_length(n->out) > 0)
            netio_schedule_flush(n);
        return;
    }
    if (n->write_armed && !n->connecting) {
        event_del(n->wev);
        n->write_armed = false;
    }
    netio_unschedule_flush(n);
}

/* An error: nothing is read or written any more; the owner is told. */
static void
netio_fail(struct netio *n)
{
    int err = errno;
    n->read_dead = n->write_dead = true;
    netio_update_read(n);
    netio_unschedule_flush(n);
    if (n->write_armed) {
        event_del(n->wev);
        n->write_armed = false;
    }
    if (n->event_fn != NULL) {
        errno = err;
        n->event_fn(n, NETIO_ERROR, n->arg);
    }
}

void
netio_set_want(struct netio *n, size_t want, bool contiguous)
{
    n->want = want;
    if (!contiguous || want <= NETIO_BIG_BYTES)
        return;
    /* Still in the chain made below, with room for the rest? (Asking
     * evbuffer_reserve_space would allocate a chain of want bytes when not.) */
    size_t avail = evbuffer_get_length(n->in);
    struct evbuffer_iovec data, room;
    if (avail > 0 && evbuffer_peek(n->in, -1, NULL, &data, 1) == 1 &&
        (uintptr_t)data.iov_base + data.iov_len == n->contig_end &&
        n->contig_limit - n->contig_end >= want)
        return;
    /* No: one chain for the data and the rest of the item (a copy of the
     * bytes read so far, usually a header and the first read's worth). */
    struct evbuffer *tmp = evbuffer_new();
    BW_ASSERT(tmp != NULL);
    evbuffer_remove_buffer(n->in, tmp, avail);
    if (evbuffer_reserve_space(n->in, (ev_ssize_t)(avail + want), &room, 1) != 1) {
        evbuffer_add_buffer(n->in, tmp); /* no memory for it now: read in pieces */
        evbuffer_free(tmp);
        return;
    }
    BW_ASSERT(evbuffer_copyout(tmp, room.iov_base, avail) == (ev_ssize_t)avail);
    n->contig_end = (uintptr_t)room.iov_base + avail;
    n->contig_limit = (uintptr_t)room.iov_base + room.iov_len;
    room.iov_len = avail;
    evbuffer_commit_space(n->in, &room, 1);
    evbuffer_free(tmp);
}

/*
 * One read of up to ask bytes into the input (one vector: the chain's
 * room is used before a new chain is made). Returns read()'s result.
 */
static ssize_t
netio_read_once(struct netio *n, size_t ask)
{
    struct evbuffer_iovec v;
    if (evbuffer_reserve_space(n->in, (ev_ssize_t)ask, &v, 1) < 1) {
        errno = ENOMEM;
        return -1;
    }
    ask = BW_MIN(v.iov_len, ask);
    if (n->want > NETIO_BIG_BYTES)
        netio_populate(v.iov_base, ask); /* only what this read may fill: RSS follows the data */
    ssize_t r = read(n->fd, v.iov_base, ask);
    if (r > 0 && (uintptr_t)v.iov_base == n->contig_end)
        n->contig_end += (size_t)r;
    if (r > 0) {
        v.iov_len = (size_t)r;
        evbuffer_commit_space(n->in, &v, 1);
    }
    return r;
}

static void
netio_read_cb(evutil_socket_t fd, short what, void *arg)
{
    struct netio *n = arg;
    size_t total = 0;
    ssize_t r;
    (void)fd;
    (void)what;
    if (n->want > NETIO_BIG_BYTES) {
        /* a big bulk: take everything that has arrived, up to its end */
        do {
            r = netio_read_once(n, BW_MIN(n->want, NETIO_BIG_READ_BYTES));
            if (r > 0) {
                total += (size_t)r;
                n->want -= BW_MIN((size_t)r, n->want);
            }
        } while (r > 0 && n->want > 0);
    } else {
        r = netio_read_once(n, BW_MAX(n->want, NETIO_READ_BYTES));
        if (r > 0) {
            total = (size_t)r;
            n->want -= BW_MIN((size_t)r, n->want);
        }
    }
    n->last_read = total;
    if (total > 0) { /* an EOF or error after bytes is seen on the next event */
        bool flush = n->flush_after_read; /* (read_fn may free n) */
        if (n->read_fn != NULL)
            n->read_fn(n, n->arg);
        if (flush)
            netio_flush_pending();
        return;
    }
    if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        return;
    if (r < 0) {
        netio_fail(n);
        return;
    }
    n->read_dead = true; /* EOF */
    netio_update_read(n);
    if (n->event_fn != NULL)
        n->event_fn(n, NETIO_EOF, n->arg);
}

/*
 * One writev of the output. Returns 1 when the output is now empty, 0 when
 * bytes are left (socket full), -1 after an error (errno set).
 */
static int
netio_write_once(struct netio *n)
{
    if (evbuffer_get_length(n->out) == 0)
        return 1;
    int w = evbuffer_write(n->out, n->fd);
    if (w < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
        return -1;
    return evbuffer_get_length(n->out) == 0;
}

/* Write once; arm the write event if bytes are left, tell the owner when empty. */
static void
netio_write_step(struct netio *n)
{
    int rc = netio_write_once(n);
    if (rc < 0) {
        netio_fail(n);
        return;
    }
    if (rc == 0) {
        if (!n->write_armed) {
            n->write_armed = true;
            BW_ASSERT(event_add(n->wev, NULL) == 0);
        }
        return;
    }
    if (n->write_armed) {
        n->write_armed = false;
        event_del(n->wev);
    }
    if (n->shut_wr && !n->write_dead) { /* the output is out: the peer reads our EOF */
        n->write_dead = true;
        (void)shutdown(n->fd, SHUT_WR);
    }
    if (n->write_fn != NULL)
        n->write_fn(n, n->arg);
}

static void
netio_flush_cb(evutil_socket_t fd, short what, void *arg)
{
    struct netio *n = arg;
    (void)fd;
    (void)what;
    n->flush_pending = false;
    TAILQ_REMOVE(&netio_flushq, n, flush_link);
    if (n->write_on && !n->write_dead && !n->connecting && !n->write_armed)
        netio_write_step(n);
}

/* The connect finished: SO_ERROR (or connect()'s own error) says how. */
static void
netio_connected(struct netio *n)
{
    int err = n->connect_errno;
    socklen_t len = sizeof(err);
    if (err < 0 && getsockopt(n->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0)
        err = errno;
    n->connecting = false;
    if (n->write_armed) {
        n->write_armed = false;
        event_del(n->wev);
    }
    if (err != 0) {
        errno = err;
        netio_fail(n);
        return;
    }
    netio_update_read(n);
    if (n->event_fn != NULL)
        n->event_fn(n, NETIO_CONNECTED, n->arg);
    if (evbuffer_get_length(n->out) > 0 || n->shut_wr)
        netio_schedule_flush(n);
}

static void
netio_write_cb(evutil_socket_t fd, short what, void *arg)
{
    struct netio *n = arg;
    (void)fd;
    (void)what;
    if (n->connecting) {
        netio_connected(n);
        return;
    }
    if (n->write_on && !n->write_dead)
        netio_write_step(n);
}

void
netio_flush_pending(void)
{
    struct netio *n;
    while ((n = TAILQ_FIRST(&netio_flushq)) != NULL) {
        netio_unschedule_flush(n);
        if (n->write_on && !n->write_dead && !n->connecting && !n->write_armed)
            netio_write_step(n);
    }
}

void
netio_set_flush_after_read(struct netio *n)
{
    n->flush_after_read = true;
}

ssize_t
netio_write_now(struct netio *n)
{
    if (n->write_dead || n->connecting)
        return n->write_dead ? -1 : (ssize_t)evbuffer_get_length(n->out);
    for (;;) {
        size_t before = evbuffer_get_length(n->out);
        int rc = netio_write_once(n);
        if (rc < 0) {
            n->write_dead = true;
            return -1;
        }
        if (rc == 1 || evbuffer_get_length(n->out) == before)
            return (ssize_t)evbuffer_get_length(n->out);
    }
}

/* ---- libevent's allocator: big blocks kept for reuse ---------------------- */

#define NETIO_MEM_HDR 16                 /* capacity header; keeps malloc's alignment */
#define NETIO_MEM_BIG (1u << 20)         /* blocks this big or more are kept when freed */
#define NETIO_MEM_SLOTS 8                /* at most this many blocks kept */
#define NETIO_MEM_KEEP_MS 2000           /* a kept block unused this long is released */
#define NETIO_MEM_MAX_BYTES (2ull << 30) /* most bytes kept (allocated, not all touched) */

/* A freed big block, kept. */
struct netio_mem_kept {
    char *raw;         /* the malloc'd block, header first (owned) */
    size_t size;       /* its capacity, bytes after the header */
    uint64_t since_ms; /* when it was freed, monotonic ms */
};

static struct netio_mem_kept netio_kept[NETIO_MEM_SLOTS];
static size_t netio_nkept;      /* entries in netio_kept */
static size_t netio_kept_bytes; /* their capacities summed */
static pthread_mutex_t netio_mem_lock = PTHREAD_MUTEX_INITIALIZER;
static _Thread_local uintptr_t netio_warm_lo, netio_warm_hi; /* the block last handed out
                                                                 again by netio_mem_take */

static bool
netio_mem_is_warm(const void *p)
{
    return (uintptr_t)p >= netio_warm_lo && (uintptr_t)p < netio_warm_hi;
}

/* Take the smallest kept block of at least size (and at most twice it), or NULL. */
static char *
netio_mem_take(size_t size, size_t *cap)
{
    size_t best = SIZE_MAX, at = 0;
    pthread_mutex_lock(&netio_mem_lock);
    for (size_t i = 0; i < netio_nkept; i++)
        if (netio_kept[i].size >= size && netio_kept[i].size / 2 <= size &&
            netio_kept[i].size < best) {
            best = netio_kept[i].size;
            at = i;
        }
    char *raw = NULL;
    if (best != SIZE_MAX) {
        raw = netio_kept[at].raw;
        *cap = best;
        netio_warm_lo = (uintptr_t)raw;
        netio_warm_hi = (uintptr_t)raw + NETIO_MEM_HDR + best;
        netio_kept_bytes -= best;
        netio_kept[at] = netio_kept[--netio_nkept];
    }
    pthread_mutex_unlock(&netio_mem_lock);
    return raw;
}

/*
 * libevent's buffer chains are powers of two (the chain header included):
 * a client read takes a 16 KB chain and gives it back once parsed, a reply
 * output a 1-4 KB one once written. Through malloc each cost about 1,000
 * instructions (a size too big for its per-thread cache): freed chains of
 * 512 B to 64 KB are kept per size instead, up to NETIO_MEM_CLASS_BYTES each.
 */
#define NETIO_MEM_CLASS_MIN 9              /* 512 bytes */
#define NETIO_MEM_CLASS_MAX 16             /* 64 KB */
#define NETIO_MEM_CLASS_BYTES (4ull << 20) /* kept per size */
#define NETIO_MEM_NCLASS (NETIO_MEM_CLASS_MAX - NETIO_MEM_CLASS_MIN + 1)
static _Thread_local char *netio_class_free[NETIO_MEM_NCLASS]; /* raw blocks, linked
                                                                  through their data */
static _Thread_local size_t netio_class_bytes[NETIO_MEM_NCLASS];

/* The size class of a block of size bytes, or -1. */
static int
netio_mem_class(size_t size)
{
    if (size < (1u << NETIO_MEM_CLASS_MIN) || size > (1u << NETIO_MEM_CLASS_MAX) ||
        (size & (size - 1)) != 0)
        return -1;
    return __builtin_ctzll(size) - NETIO_MEM_CLASS_MIN;
}

/* Free every kept block of the size classes. */
static void
netio_mem_class_drain(void)
{
    for (int c = 0; c < NETIO_MEM_NCLASS; c++) {
        while (netio_class_free[c] != NULL) {
            char *raw = netio_class_free[c];
            memcpy(&netio_class_free[c], raw + NETIO_MEM_HDR, sizeof(char *));
            free(raw);
        }
        netio_class_bytes[c] = 0;
    }
}

static void *
netio_mem_malloc(size_t size)
{
    size_t cap = size;
    int c = netio_mem_class(size);
    if (c >= 0 && netio_class_free[c] != NULL) {
        char *raw = netio_class_free[c];
        memcpy(&netio_class_free[c], raw + NETIO_MEM_HDR, sizeof(char *));
        netio_class_bytes[c] -= size;
        return raw + NETIO_MEM_HDR; /* (its header holds size already) */
    }
    char *raw = size >= NETIO_MEM_BIG ? netio_mem_take(size, &cap) : NULL;
    if (raw == NULL && (raw = malloc(size + NETIO_MEM_HDR)) == NULL)
        return NULL;
    memcpy(raw, &cap, sizeof(cap));
    return raw + NETIO_MEM_HDR;
}

static void
netio_mem_free(void *p)
{
    if (p == NULL)
        return;
    char *raw = (char *)p - NETIO_MEM_HDR, *drop = NULL;
    size_t size;
    memcpy(&size, raw, sizeof(size));
    int c = netio_mem_class(size);
    if (c >= 0 && netio_class_bytes[c] + size <= NETIO_MEM_CLASS_BYTES) {
        memcpy(p, &netio_class_free[c], sizeof(char *));
        netio_class_free[c] = raw;
        netio_class_bytes[c] += size;
        return;
    }
    if (size < NETIO_MEM_BIG) {
        free(raw);
        return;
    }
    pthread_mutex_lock(&netio_mem_lock);
    if (netio_kept_bytes + size > NETIO_MEM_MAX_BYTES) {
        drop = raw;
    } else {
        if (netio_nkept == NETIO_MEM_SLOTS) { /* the oldest goes */
            size_t old = 0;
            for (size_t i = 1; i < netio_nkept; i++)
                if (netio_kept[i].since_ms < netio_kept[old].since_ms)
                    old = i;
            drop = netio_kept[old].raw;
            netio_kept_bytes -= netio_kept[old].size;
            netio_kept[old] = netio_kept[--netio_nkept];
        }
        netio_kept[netio_nkept++] = (struct netio_mem_kept){raw, size, bw_now_ms()};
        netio_kept_bytes += size;
    }
    pthread_mutex_unlock(&netio_mem_lock);
    free(drop);
}

static void *
netio_mem_realloc(void *p, size_t size)
{
    if (p == NULL)
        return netio_mem_malloc(size);
    char *raw = (char *)p - NETIO_MEM_HDR;
    size_t cap;
    memcpy(&cap, raw, sizeof(cap));
    if (size <= cap && (cap < NETIO_MEM_BIG || size >= cap / 2))
        return p;
    void *q = netio_mem_malloc(size);
    if (q == NULL)
        return NULL;
    memcpy(q, p, BW_MIN(cap, size));
    netio_mem_free(p);
    return q;
}

void
netio_mem_init(void)
{
    event_set_mem_functions(netio_mem_malloc, netio_mem_realloc, netio_mem_free);
}

void
netio_mem_cron(uint64_t now_ms, bool all)
{
    char *drop[NETIO_MEM_SLOTS];
    size_t ndrop = 0;
    pthread_mutex_lock(&netio_mem_lock);
    for (size_t i = 0; i < netio_nkept;) {
        if (all || now_ms - netio_kept[i].since_ms >= NETIO_MEM_KEEP_MS) {
            drop[ndrop++] = netio_kept[i].raw;
            netio_kept_bytes -= netio_kept[i].size;
            netio_kept[i] = netio_kept[--netio_nkept];
        } else {
            i++;
        }
    }
    pthread_mutex_unlock(&netio_mem_lock);
    for (size_t i = 0; i < ndrop; i++)
        free(drop[i]);
    if (all)
        netio_mem_class_drain();
}
