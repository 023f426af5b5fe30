/*
 * harness: start redis-server and bulwark on free loopback ports in a private
 * temp dir, a per-binary watchdog, raw RESP connections with deadlines, and
 * the byte-for-byte differential comparison of two servers.
 */
#include "tests/integration/harness.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <time.h>
#include <unistd.h>

#include <setjmp.h>
#include <cmocka.h>


#include "proxy/reply.h"
#include "proxy/util.h"

/* Children that may still run; the watchdog and atexit kill them. */
#define HARNESS_MAX_CHILDREN 64
/* Start attempts when the chosen port was taken meanwhile. */
#define HARNESS_START_TRIES 3
/*
 * How long the subject gets to close a connection the reference closed at
 * the same point: closing after the reply flush takes milliseconds.
 */
#define HARNESS_CLOSE_MS 3000
/* Bytes of one recv(). */
#define HARNESS_RECV_BYTES (256 * 1024)

/* Process-wide harness state (one test binary). */
static struct {
    bool ready;                           /* harness_init() ran */
    char tmpdir[256];                     /* private temp dir, "" when none */
    pid_t children[HARNESS_MAX_CHILDREN]; /* running children, 0 = free */
    bool fallback_noted;                  /* the redis-vs-redis notice was printed */
    unsigned bad_stops;                   /* bulwark stops that failed (exit != 0) */
} hs;

/* ---- small helpers ----------------------------------------------------- */

static void
harness_sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
        ;
}

static int
remaining_ms(uint64_t deadline_ms)
{
    uint64_t now = bw_now_ms();
    return now >= deadline_ms ? 0 : (int)(deadline_ms - now);
}

static void
child_track(pid_t pid)
{
    for (size_t i = 0; i < HARNESS_MAX_CHILDREN; i++) {
        if (hs.children[i] == 0) {
            hs.children[i] = pid;
            return;
        }
    }
    fail_msg("harness: more than %d children", HARNESS_MAX_CHILDREN);
}

static void
child_untrack(pid_t pid)
{
    for (size_t i = 0; i < HARNESS_MAX_CHILDREN; i++) {
        if (hs.children[i] == pid)
            hs.children[i] = 0;
    }
}

static int
rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

/* Kill every child still running (TERM, then KILL after a short grace). */
static void
children_reap_all(void)
{
    for (size_t i = 0; i < HARNESS_MAX_CHILDREN; i++) {
        if (hs.children[i] > 0)
            kill(hs.children[i], SIGTERM);
    }
    uint64_t deadline = bw_now_ms() + 2000;
    for (size_t i = 0; i < HARNESS_MAX_CHILDREN; i++) {
        pid_t pid = hs.children[i];
        if (pid <= 0)
            continue;
        while (waitpid(pid, NULL, WNOHANG) == 0) {
            if (remaining_ms(deadline) == 0) {
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                break;
            }
            harness_sleep_ms(10);
        }
        hs.children[i] = 0;
    }
}

static void
harness_atexit(void)
{
    children_reap_all();
    if (hs.tmpdir[0] == '\0')
        return;
    if (getenv("HARNESS_KEEP_TMP") != NULL) {
        fprintf(stderr, "harness: kept %s\n", hs.tmpdir);
        return;
    }
    nftw(hs.tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Only async-signal-safe calls: kill children, remove the dir, exit 124. */
static void
watchdog_fire(int sig)
{
    static const char msg[] = "harness: watchdog expired, killing children and failing\n";
    (void)sig;
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
    for (size_t i = 0; i < HARNESS_MAX_CHILDREN; i++) {
        if (hs.children[i] > 0)
            kill(hs.children[i], SIGKILL);
    }
    if (hs.tmpdir[0] != '\0' && getenv("HARNESS_KEEP_TMP") == NULL) {
        pid_t pid = fork();
        if (pid == 0) {
            static char rm[] = "rm", rf[] = "-rf";
            char *const argv[] = {rm, rf, hs.tmpdir, NULL};
            execv("/bin/rm", argv);
            _exit(127);
        }
        if (pid > 0)
            waitpid(pid, NULL, 0);
    }
    _exit(124);
}

void
harness_init(unsigned watchdog_s)
{
    if (hs.ready)
        return;
    hs.ready = true;
    signal(SIGPIPE, SIG_IGN);

    const char *base = getenv("TMPDIR");
    if (base == NULL || base[0] == '\0')
        base = "/tmp";
    snprintf(hs.tmpdir, sizeof(hs.tmpdir), "%s/bulwark-test.XXXXXX", base);
    if (mkdtemp(hs.tmpdir) == NULL) {
        fprintf(stderr, "harness: mkdtemp %s: %s\n", hs.tmpdir, strerror(errno));
        exit(1);
    }
    atexit(harness_atexit);

    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = watchdog_fire;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGALRM, &sa, NULL);
    const char *env_s = getenv("HARNESS_WATCHDOG_S");
    if (env_s != NULL && atoi(env_s) > 0)
        watchdog_s = (unsigned)atoi(env_s);
    alarm(watchdog_s ? watchdog_s : HARNESS_WATCHDOG_S);
}

int
harness_finish(int rc)
{
    if (rc == 0 && hs.bad_stops > 0) {
        fprintf(stderr, "harness: %u bulwark stop(s) failed outside a test\n", hs.bad_stops);
        return 1;
    }
    return rc;
}

const char *
harness_tmpdir(void)
{
    if (!hs.ready)
        harness_init(0);
    return hs.tmpdir;
}

int
harness_free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fail_msg("harness: socket: %s", strerror(errno));
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    sin.sin_port = 0;
    socklen_t len = sizeof(sin);
    if (bind(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0 ||
        getsockname(fd, (struct sockaddr *)&sin, &len) != 0) {
        int e = errno;
        close(fd);
        fail_msg("harness: bind/getsockname: %s", strerror(e));
    }
    close(fd);
    return ntohs(sin.sin_port);
}

bool
harness_have_bulwark(void)
{
    const char *bin = getenv("BULWARK_BIN");
    const char *att = getenv("BULWARK_ATTACH");
    return (bin != NULL && bin[0] != '\0') || (att != NULL && att[0] != '\0');
}

/* ---- byte buffers ------------------------------------------------------ */

static void
buf_reserve(struct harness_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    b->data = bw_realloc(b->data, cap);
    b->cap = cap;
}

void
harness_buf_append(struct harness_buf *b, const void *p, size_t n)
{
    buf_reserve(b, n);
    if (n > 0)
        memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void
harness_buf_puts(struct harness_buf *b, const char *s)
{
    harness_buf_append(b, s, strlen(s));
}

void
harness_buf_printf(struct harness_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    BW_ASSERT(n >= 0);
    buf_reserve(b, (size_t)n);
    va_start(ap, fmt);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

void
harness_buf_reset(struct harness_buf *b)
{
    b->len = 0;
    if (b->data != NULL)
        b->data[0] = '\0';
}

void
harness_buf_free(struct harness_buf *b)
{
    bw_free(b->data);
    memset(b, 0, sizeof(*b));
}

void
harness_buf_argv(struct harness_buf *b, int argc, const char *const *argv, const size_t *lens)
{
    harness_buf_printf(b, "*%d\r\n", argc);
    for (int i = 0; i < argc; i++) {
        size_t n = lens ? lens[i] : strlen(argv[i]);
        harness_buf_printf(b, "$%zu\r\n", n);
        harness_buf_append(b, argv[i], n);
        harness_buf_append(b, "\r\n", 2);
    }
}

static int
hex_val(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/*
 * One argument of a double-quoted string starting after the quote; returns
 * the position after the closing quote, or NULL when unbalanced. Same rules
 * as Redis's sdssplitargs().
 */
static const char *
split_dquoted(const char *p, struct harness_buf *arg)
{
    for (;;) {
        if (*p == '\0')
            return NULL;
        if (p[0] == '\\' && p[1] == 'x' && hex_val(p[2]) >= 0 && hex_val(p[3]) >= 0) {
            char c = (char)(hex_val(p[2]) * 16 + hex_val(p[3]));
            harness_buf_append(arg, &c, 1);
            p += 4;
        } else if (p[0] == '\\' && p[1] != '\0') {
            char c = p[1];
            switch (c) {
            case 'n':
                c = '\n';
                break;
            case 'r':
                c = '\r';
                break;
            case 't':
                c = '\t';
                break;
            case 'b':
                c = '\b';
                break;
            case 'a':
                c = '\a';
                break;
            default:
                break;
            }
            harness_buf_append(arg, &c, 1);
            p += 2;
        } else if (*p == '"') {
            p++;
            return (*p == '\0' || isspace((unsigned char)*p)) ? p : NULL;
        } else {
            harness_buf_append(arg, p, 1);
            p++;
        }
    }
}

/* As split_dquoted() for 'single quotes', where only \' is an escape. */
static const char *
split_squoted(const char *p, struct harness_buf *arg)
{
    for (;;) {
        if (*p == '\0')
            return NULL;
        if (p[0] == '\\' && p[1] == '\'') {
            harness_buf_append(arg, "'", 1);
            p += 2;
        } else if (*p == '\'') {
            p++;
            return (*p == '\0' || isspace((unsigned char)*p)) ? p : NULL;
        } else {
            harness_buf_append(arg, p, 1);
            p++;
        }
    }
}

int
harness_buf_command(struct harness_buf *b, const char *line)
{
    struct harness_buf args = {0}; /* arguments, back to back */
    size_t lens[256];
    int argc = 0;
    const char *p = line;

    for (;;) {
        while (*p != '\0' && isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        if (argc == (int)BW_ARRAY_LEN(lens))
            fail_msg("harness: too many arguments in: %s", line);
        size_t start = args.len;
        while (p != NULL && *p != '\0' && !isspace((unsigned char)*p)) {
            if (*p == '"')
                p = split_dquoted(p + 1, &args);
            else if (*p == '\'')
                p = split_squoted(p + 1, &args);
            else
                harness_buf_append(&args, p++, 1);
        }
        if (p == NULL)
            fail_msg("harness: unbalanced quotes in: %s", line);
        lens[argc++] = args.len - start;
    }
    harness_buf_printf(b, "*%d\r\n", argc);
    size_t off = 0;
    for (int i = 0; i < argc; i++) {
        harness_buf_printf(b, "$%zu\r\n", lens[i]);
        harness_buf_append(b, args.data + off, lens[i]);
        harness_buf_append(b, "\r\n", 2);
        off += lens[i];
    }
    harness_buf_free(&args);
    return argc;
}

void
harness_buf_escape(struct harness_buf *b, const void *p, size_t n, size_t max)
{
    const unsigned char *s = p;
    size_t shown = n < max ? n : max;
    for (size_t i = 0; i < shown; i++) {
        unsigned char c = s[i];
        switch (c) {
        case '\r':
            harness_buf_puts(b, "\\r");
            break;
        case '\n':
            harness_buf_puts(b, "\\n");
            break;
        case '\t':
            harness_buf_puts(b, "\\t");
            break;
        case '\\':
            harness_buf_puts(b, "\\\\");
            break;
        case '"':
            harness_buf_puts(b, "\\\"");
            break;
        default:
            if (isprint(c))
                harness_buf_append(b, &c, 1);
            else
                harness_buf_printf(b, "\\x%02x", c);
        }
    }
    if (shown < n)
        harness_buf_printf(b, "...(%zu more)", n - shown);
}

/* ---- raw connections --------------------------------------------------- */

struct harness_conn *
harness_conn_open_addr(const char *host, int port)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        fail_msg("harness: socket: %s", strerror(errno));
    struct sockaddr_in sin;
    memset(&sin, 0, sizeof(sin));
    sin.sin_family = AF_INET;
    sin.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, host, &sin.sin_addr) != 1)
        fail_msg("harness: bad IPv4 address %s", host);
    if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)) != 0) {
        close(fd);
        return NULL;
    }
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0)
        fail_msg("harness: fcntl: %s", strerror(errno));

    struct harness_conn *c = bw_calloc(1, sizeof(*c));
    c->fd = fd;
    c->reader = bw_calloc(1, sizeof(struct reply_scan));
    reply_scan_reset(c->reader);
    c->scanned = 0;
    return c;
}

struct harness_conn *
harness_conn_open(const struct harness_server *s)
{
    struct harness_conn *c = harness_conn_open_addr(s->host, s->port);
    if (c == NULL)
        fail_msg("harness: connect to %s: %s", harness_server_name(s), strerror(errno));
    return c;
}

void
harness_conn_close(struct harness_conn *c)
{
    if (c == NULL)
        return;
    close(c->fd);
    bw_free(c->reader);
    harness_buf_free(&c->in);
    bw_free(c);
}

/*
 * Receive what is available, waiting up to timeout_ms for the first byte.
 * Returns 1 when bytes arrived, 0 at EOF (or reset), -1 on timeout.
 */
static int
conn_fill(struct harness_conn *c, int timeout_ms)
{
    if (c->eof)
        return 0;
    struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
    int rc = poll(&pfd, 1, timeout_ms);
    if (rc < 0 && errno != EINTR)
        fail_msg("harness: poll: %s", strerror(errno));
    if (rc <= 0)
        return -1;
    buf_reserve(&c->in, HARNESS_RECV_BYTES);
    ssize_t n = recv(c->fd, c->in.data + c->in.len, HARNESS_RECV_BYTES, 0);
    if (n < 0 && (errno == EAGAIN || errno == EINTR))
        return 1;
    if (n < 0 && errno != ECONNRESET)
        fail_msg("harness: recv: %s", strerror(errno));
    if (n <= 0) {
        c->eof = true;
        return 0;
    }
    c->in.len += (size_t)n;
    c->in.data[c->in.len] = '\0';
    return 1;
}

/* Append the not yet returned bytes [in_done, upto) to out and consume them. */
static void
conn_take(struct harness_conn *c, size_t upto, struct harness_buf *out)
{
    size_t from = c->in_done - c->in_base;
    size_t to = upto - c->in_base;
    if (out != NULL)
        harness_buf_append(out, c->in.data + from, to - from);
    c->in_done = upto;
    if (c->scanned < upto) { /* taken unscanned (EOF, garbage): scan afresh after */
        c->scanned = upto;
        reply_scan_reset(c->reader);
    }
    size_t dead = c->in_done - c->in_base;
    if (dead > 65536 && dead * 2 > c->in.len) {
        memmove(c->in.data, c->in.data + dead, c->in.len - dead);
        c->in.len -= dead;
        c->in_base += dead;
    }
}

void
harness_conn_send(struct harness_conn *c, const void *p, size_t n, size_t chunk)
{
    const char *s = p;
    size_t off = 0;
    uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;

    while (off < n && !c->write_closed) {
        size_t want = n - off;
        if (chunk > 0 && want > chunk)
            want = chunk;
        ssize_t w = send(c->fd, s + off, want, MSG_NOSIGNAL);
        if (w > 0) {
            off += (size_t)w;
            deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
            continue;
        }
        if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
            c->write_closed = true;
            break;
        }
        if (w < 0 && errno != EAGAIN && errno != EINTR)
            fail_msg("harness: send: %s", strerror(errno));
        /* Full: wait for room, keeping replies flowing meanwhile. */
        struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
        if (!c->eof)
            pfd.events |= POLLIN;
        int left = remaining_ms(deadline);
        if (left == 0)
            fail_msg("harness: send stalled for %d ms at byte %zu of %zu", HARNESS_TIMEOUT_MS,
                     off, n);
        if (poll(&pfd, 1, left) > 0 && (pfd.revents & POLLIN))
            conn_fill(c, 0);
    }
}

void
harness_conn_send_str(struct harness_conn *c, const char *s)
{
    harness_conn_send(c, s, strlen(s), 0);
}

enum harness_read
harness_conn_read_reply(struct harness_conn *c, int timeout_ms, struct harness_buf *out)
{
    struct reply_scan *r = c->reader;
    uint64_t deadline = bw_now_ms() + (uint64_t)timeout_ms;

    for (;;) {
        size_t end = c->in_base + c->in.len, used = 0;
        int rc = REPLY_AGAIN;
        if (c->scanned < end)
            rc = reply_scan_feed(r, c->in.data + (c->scanned - c->in_base), end - c->scanned,
                                 &used);
        if (rc == REPLY_ERR) {
            conn_take(c, end, out);
            c->scanned = end;
            reply_scan_reset(r);
            return HARNESS_READ_BAD;
        }
        c->scanned += used;
        if (rc == REPLY_DONE) {
            reply_scan_reset(r);
            conn_take(c, c->scanned, out);
            return HARNESS_READ_REPLY;
        }
        if (c->eof) {
            conn_take(c, end, out);
            return HARNESS_READ_EOF;
        }
        int left = remaining_ms(deadline);
        if (left == 0 || conn_fill(c, left) < 0) {
            /* Show the partial reply but keep it for a later read. */
            if (out != NULL)
                harness_buf_append(out, c->in.data + (c->in_done - c->in_base), end - c->in_done);
            return HARNESS_READ_TIMEOUT;
        }
    }
}

enum harness_read
harness_conn_read_eof(struct harness_conn *c, int timeout_ms, struct harness_buf *extra)
{
    uint64_t deadline = bw_now_ms() + (uint64_t)timeout_ms;
    for (;;) {
        conn_take(c, c->in_base + c->in.len, extra);
        if (c->eof)
            return HARNESS_READ_EOF;
        int left = remaining_ms(deadline);
        if (left == 0 || conn_fill(c, left) < 0)
            return HARNESS_READ_TIMEOUT;
    }
}

static const char *
read_name(enum harness_read r)
{
    switch (r) {
    case HARNESS_READ_REPLY:
        return "reply";
    case HARNESS_READ_EOF:
        return "connection closed";
    case HARNESS_READ_TIMEOUT:
        return "timeout";
    case HARNESS_READ_BAD:
        return "not RESP";
    }
    return "?";
}

bool
harness_conn_pipeline(struct harness_conn *c, const char *req, const char *const *expect,
                      size_t n)
{
    harness_conn_send_str(c, req);
    for (size_t i = 0; i < n; i++) {
        struct harness_buf got = {0};
        enum harness_read r = harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, &got);
        bool ok = r == HARNESS_READ_REPLY && got.len == strlen(expect[i]) &&
                  memcmp(got.data, expect[i], got.len) == 0;
        if (!ok) {
            struct harness_buf msg = {0};
            harness_buf_puts(&msg, "harness: request \"");
            harness_buf_escape(&msg, req, strlen(req), 200);
            harness_buf_printf(&msg, "\"\n  reply %zu of %zu expected \"", i + 1, n);
            harness_buf_escape(&msg, expect[i], strlen(expect[i]), 400);
            harness_buf_printf(&msg, "\"\n  got (%s) \"", read_name(r));
            harness_buf_escape(&msg, got.data, got.len, 400);
            harness_buf_puts(&msg, "\"\n");
            fputs(msg.data, stderr);
            harness_buf_free(&msg);
        }
        harness_buf_free(&got);
        if (!ok)
            return false;
    }
    return true;
}

bool
harness_conn_roundtrip(struct harness_conn *c, const char *req, const char *expect)
{
    return harness_conn_pipeline(c, req, &expect, 1);
}

/* ---- servers ----------------------------------------------------------- */

const char *
harness_server_name(const struct harness_server *s)
{
    static char names[4][96]; /* a few names per message */
    static unsigned next;
    char *n = names[next++ % 4];
    snprintf(n, sizeof(names[0]), "%s%s %s:%d", s->kind == HARNESS_BULWARK ? "bulwark" : "redis",
             s->attached ? " (attached)" : "", s->host, s->port);
    return n;
}

static void
print_file_tail(const char *path, int max_lines)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return;
    /* Two passes: count lines, then print the last max_lines. */
    long lines = 0;
    int ch;
    while ((ch = fgetc(f)) != EOF)
        lines += ch == '\n';
    rewind(f);
    long skip = lines > max_lines ? lines - max_lines : 0;
    fprintf(stderr, "---- tail of %s\n", path);
    while (skip > 0 && (ch = fgetc(f)) != EOF)
        skip -= ch == '\n';
    char line[1024];
    while (fgets(line, sizeof(line), f) != NULL)
        fputs(line, stderr);
    fprintf(stderr, "---- end of %s\n", path);
    fclose(f);
}

void
harness_print_log_tail(const struct harness_server *s, int max_lines)
{
    if (s->attached)
        return;
    print_file_tail(s->log_path, max_lines);
    print_file_tail(s->out_path, max_lines);
}

static bool
file_contains(const char *path, const char *needle)
{
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return false;
    char line[1024];
    bool found = false;
    while (!found && fgets(line, sizeof(line), f) != NULL)
        found = strstr(line, needle) != NULL;
    fclose(f);
    return found;
}

static void
argv_free(char **argv)
{
    if (argv == NULL)
        return;
    for (char **a = argv; *a != NULL; a++)
        bw_free(*a);
    bw_free(argv);
}

/* Build the full argv: fixed (NULL-terminated) then extra (may be NULL). */
static char **
argv_build(const char *const *fixed, const char *const *extra)
{
    size_t n = 0, m = 0;
    while (fixed[n] != NULL)
        n++;
    while (extra != NULL && extra[m] != NULL)
        m++;
    char **argv = bw_calloc(n + m + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        argv[i] = bw_strdup(fixed[i]);
    for (size_t i = 0; i < m; i++)
        argv[n + i] = bw_strdup(extra[i]);
    return argv;
}

/* Close every descriptor from fd up (in a child, before exec). */
static void
harness_close_from(int fd)
{
    struct rlimit rl;
    int max = getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < 1048576 ? (int)rl.rlim_cur
                                                                          : 1048576;
    for (int i = fd; i < max; i++)
        close(i);
}

static void
server_exec(struct harness_server *s)
{
    pid_t pid = fork();
    if (pid < 0)
        fail_msg("harness: fork: %s", strerror(errno));
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        int null = open("/dev/null", O_RDONLY);
        int out = open(s->out_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (null < 0 || out < 0 || dup2(null, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0)
            _exit(126);
        /* The server inherits none of our sockets: a connection a test
         * closes must reach its peer, and descriptor counts stay its own. */
        harness_close_from(3);
        execvp(s->argv[0], s->argv);
        fprintf(stderr, "harness: exec %s: %s\n", s->argv[0], strerror(errno));
        _exit(127);
    }
    s->pid = pid;
    child_track(pid);
}

/*
 * Wait until s answers PING (any reply) or exits. Returns 0 when ready,
 * 1 when the child exited because its port was taken, and fails the test
 * on any other exit or at the deadline.
 */
static int
server_wait_ready(struct harness_server *s)
{
    uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        int status;
        if (waitpid(s->pid, &status, WNOHANG) == s->pid) {
            child_untrack(s->pid);
            s->pid = 0;
            if (file_contains(s->log_path, "in use") || file_contains(s->out_path, "in use"))
                return 1;
            harness_print_log_tail(s, 30);
            fail_msg("harness: %s exited during start-up (status 0x%x)", harness_server_name(s),
                     status);
        }
        struct harness_conn *c = harness_conn_open_addr(s->host, s->port);
        if (c != NULL) {
            harness_conn_send_str(c, "PING\r\n");
            enum harness_read r = harness_conn_read_reply(c, 1000, NULL);
            harness_conn_close(c);
            if (r == HARNESS_READ_REPLY)
                return 0;
        }
        if (remaining_ms(deadline) == 0) {
            kill(s->pid, SIGKILL);
            harness_print_log_tail(s, 30);
            fail_msg("harness: %s did not answer PING within %d ms", harness_server_name(s),
                     HARNESS_TIMEOUT_MS);
        }
        harness_sleep_ms(10);
    }
}

/* Set s->log_path, s->out_path and s->argv for s->port. */
static void
server_argv(struct harness_server *s, const char *const *extra)
{
    const char *tmp = harness_tmpdir();
    const char *name = s->kind == HARNESS_BULWARK ? "bulwark" : "redis";
    char port[16], upstream[32];

    snprintf(port, sizeof(port), "%d", s->port);
    snprintf(s->log_path, sizeof(s->log_path), "%s/%s-%d.log", tmp, name, s->port);
    snprintf(s->out_path, sizeof(s->out_path), "%s/%s-%d.out", tmp, name, s->port);
    argv_free(s->argv);
    if (s->kind == HARNESS_REDIS) {
        const char *fixed[] = {"redis-server", "--port",    port,        "--bind",
                               "127.0.0.1",    "--save",    "",          "--appendonly",
                               "no",           "--dir",     tmp,         "--daemonize",
                               "no",           "--logfile", s->log_path, NULL};
        s->argv = argv_build(fixed, extra);
    } else {
        snprintf(upstream, sizeof(upstream), "127.0.0.1:%d", s->upstream_port);
        const char *fixed[] =
            {getenv("BULWARK_BIN"), "--port", port,        "--upstream", upstream,
             "--loglevel",          "notice", "--logfile", s->log_path,  NULL};
        s->argv = argv_build(fixed, extra);
    }
}

/* Start s on a free port (a few tries if the port is taken meanwhile). */
static void
server_launch(struct harness_server *s, const char *const *extra)
{
    for (int attempt = 1;; attempt++) {
        s->port = harness_free_port();
        server_argv(s, extra);
        server_exec(s);
        if (server_wait_ready(s) == 0)
            return;
        if (attempt == HARNESS_START_TRIES)
            fail_msg("harness: %s: port taken %d times, giving up", harness_server_name(s),
                     attempt);
    }
}

/* A server struct for an attached "host:port" from env var, or NULL. */
static struct harness_server *
server_attach(enum harness_kind kind, const char *var)
{
    const char *v = getenv(var);
    if (v == NULL || v[0] == '\0')
        return NULL;
    struct harness_server *s = bw_calloc(1, sizeof(*s));
    s->kind = kind;
    s->attached = true;
    const char *colon = strrchr(v, ':');
    if (colon == NULL || (size_t)(colon - v) >= sizeof(s->host) || atoi(colon + 1) <= 0)
        fail_msg("harness: %s must be host:port, not \"%s\"", var, v);
    memcpy(s->host, v, (size_t)(colon - v));
    s->port = atoi(colon + 1);
    return s;
}

static struct harness_server *
server_new(enum harness_kind kind)
{
    if (!hs.ready)
        harness_init(0);
    struct harness_server *s = bw_calloc(1, sizeof(*s));
    s->kind = kind;
    snprintf(s->host, sizeof(s->host), "127.0.0.1");
    return s;
}

struct harness_server *
harness_reference_start(const char *const *args)
{
    struct harness_server *s = server_new(HARNESS_REDIS);
    server_launch(s, args);
    return s;
}

struct harness_server *
harness_redis_start(const char *const *args)
{
    if (args == NULL || args[0] == NULL) {
        struct harness_server *s = server_attach(HARNESS_REDIS, "REDIS_ATTACH");
        if (s != NULL)
            return s;
    }
    return harness_reference_start(args);
}

struct harness_server *
harness_bulwark_start(int upstream_port, const char *const *args)
{
    struct harness_server *s = server_attach(HARNESS_BULWARK, "BULWARK_ATTACH");
    if (s != NULL) {
        if (args != NULL && args[0] != NULL) {
            bw_free(s);
            fprintf(stderr,
                    "harness: BULWARK_ATTACH set but this test needs "
                    "bulwark started with %s ...: skipped\n",
                    args[0]);
            skip();
        }
        return s;
    }
    const char *bin = getenv("BULWARK_BIN");
    if (bin == NULL || bin[0] == '\0') {
        fprintf(stderr, "harness: BULWARK_BIN unset: skipped\n");
        skip();
    }
    s = server_new(HARNESS_BULWARK);
    s->upstream_port = upstream_port;
    server_launch(s, args);
    return s;
}

struct harness_server *
harness_subject_start(int upstream_port, const char *const *args)
{
    if (harness_have_bulwark())
        return harness_bulwark_start(upstream_port, args);
    if (!hs.fallback_noted) {
        hs.fallback_noted = true;
        fprintf(stderr, "harness: BULWARK_BIN unset: the subject is a second "
                        "redis-server (redis-vs-redis)\n");
    }
    return harness_reference_start(args);
}

/*
 * SIGTERM s and reap it within HARNESS_TIMEOUT_MS (then SIGKILL). Returns
 * the wait status; *killed tells whether SIGKILL was needed.
 */
static int
server_terminate(struct harness_server *s, int sig, bool *killed)
{
    int status = 0;
    *killed = false;
    kill(s->pid, sig);
    uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        pid_t r = waitpid(s->pid, &status, WNOHANG);
        if (r == s->pid || (r < 0 && errno != EINTR))
            break;
        if (remaining_ms(deadline) == 0) {
            *killed = true;
            kill(s->pid, SIGKILL);
            waitpid(s->pid, &status, 0);
            break;
        }
        harness_sleep_ms(5);
    }
    child_untrack(s->pid);
    s->pid = 0;
    return status;
}

void
harness_redis_stop(struct harness_server *s)
{
    if (s == NULL)
        return;
    if (s->attached || s->pid == 0) {
        argv_free(s->argv);
        bw_free(s);
        return;
    }
    bool killed;
    int status = server_terminate(s, SIGTERM, &killed);
    bool clean = !killed && WIFEXITED(status) && WEXITSTATUS(status) == 0;
    if (!clean) {
        fprintf(stderr, "harness: %s %s (status 0x%x: %s %d)\n", harness_server_name(s),
                killed ? "ignored SIGTERM and was killed" : "did not exit 0", status,
                WIFSIGNALED(status) ? "signal" : "exit code",
                WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        harness_print_log_tail(s, 40);
    }
    bool must = s->kind == HARNESS_BULWARK;
    char name[96];
    snprintf(name, sizeof(name), "%s", harness_server_name(s));
    argv_free(s->argv);
    bw_free(s);
    if (!clean && must) {
        hs.bad_stops++;
        fail_msg("harness: %s did not exit 0 on SIGTERM", name);
    }
}

void
harness_bulwark_stop(struct harness_server *s)
{
    harness_redis_stop(s);
}

struct harness_trio harness_env;

int
harness_trio_setup(void **state)
{
    (void)state;
    harness_env.upstream = harness_redis_start(NULL);
    harness_env.bulwark = harness_bulwark_start(harness_env.upstream->port, NULL);
    harness_env.ref = harness_reference_start(NULL);
    return 0;
}

int
harness_trio_teardown(void **state)
{
    (void)state;
    harness_bulwark_stop(harness_env.bulwark);
    harness_redis_stop(harness_env.upstream);
    harness_redis_stop(harness_env.ref);
    return 0;
}

void
harness_redis_kill(struct harness_server *s)
{
    if (s->attached) {
        fprintf(stderr, "harness: cannot kill attached %s: skipped\n", harness_server_name(s));
        skip();
    }
    if (s->pid != 0) {
        bool killed;
        server_terminate(s, SIGKILL, &killed);
    }
}

void
harness_redis_restart(struct harness_server *s)
{
    if (s->attached) {
        fprintf(stderr, "harness: cannot restart attached %s: skipped\n", harness_server_name(s));
        skip();
    }
    if (s->pid != 0) {
        bool killed;
        server_terminate(s, SIGTERM, &killed);
    }
    /* Same port: retry while the old socket lingers. */
    uint64_t deadline = bw_now_ms() + HARNESS_TIMEOUT_MS;
    for (;;) {
        server_exec(s);
        if (server_wait_ready(s) == 0)
            return;
        if (remaining_ms(deadline) == 0)
            fail_msg("harness: %s: port still taken on restart", harness_server_name(s));
        harness_sleep_ms(50);
    }
}

redisContext *
harness_redis_connect(const struct harness_server *s)
{
    struct timeval tv = {HARNESS_TIMEOUT_MS / 1000, 0};
    redisContext *ctx = redisConnectWithTimeout(s->host, s->port, tv);
    if (ctx == NULL || ctx->err) {
        fail_msg("harness: redisConnect %s: %s", harness_server_name(s),
                 ctx ? ctx->errstr : "out of memory");
    }
    if (redisSetTimeout(ctx, tv) != REDIS_OK)
        fail_msg("harness: redisSetTimeout: %s", ctx->errstr);
    return ctx;
}

/* ---- differential comparison ------------------------------------------- */

/* What one server answered to a script. */
struct side {
    struct harness_buf raw;  /* all complete replies, back to back */
    size_t *ends;            /* owned: end offset in raw of each reply */
    size_t n;                /* complete replies read */
    enum harness_read fin;   /* how it ended: probe answer, EOF, timeout... */
    struct harness_buf tail; /* bytes of the probe answer / after the replies */
    bool checked;            /* fin/tail describe something worth comparing */
};

static void
side_free(struct side *sd)
{
    harness_buf_free(&sd->raw);
    harness_buf_free(&sd->tail);
    bw_free(sd->ends);
}

/*
 * Send sc on c and read up to limit replies, then the final state:
 * an early stop, the probe answer or EOF as sc->flags ask. Reads from
 * reply index quick_from on (and the final one) wait only HARNESS_CLOSE_MS.
 */
static void
side_run(struct harness_conn *c, const struct harness_script *sc, size_t limit, size_t quick_from,
         struct side *sd)
{
    memset(sd, 0, sizeof(*sd));
    sd->ends = bw_calloc(limit + 1, sizeof(size_t));
    harness_conn_send(c, sc->bytes, sc->len, sc->chunk);
    int tail_ms = quick_from <= limit ? HARNESS_CLOSE_MS : HARNESS_TIMEOUT_MS;
    while (sd->n < limit) {
        int ms = sd->n >= quick_from ? HARNESS_CLOSE_MS : HARNESS_TIMEOUT_MS;
        enum harness_read r = harness_conn_read_reply(c, ms, &sd->tail);
        if (r != HARNESS_READ_REPLY) {
            sd->fin = r;
            sd->checked = true;
            return;
        }
        harness_buf_append(&sd->raw, sd->tail.data, sd->tail.len);
        harness_buf_reset(&sd->tail);
        sd->ends[sd->n++] = sd->raw.len;
    }
    sd->checked = true;
    if (sc->flags & HARNESS_PROBE) {
        harness_conn_send_str(c, "PING\r\n");
        sd->fin = harness_conn_read_reply(c, tail_ms, &sd->tail);
    } else if (sc->flags & HARNESS_EXPECT_EOF) {
        sd->fin = harness_conn_read_eof(c, tail_ms, &sd->tail);
    } else {
        sd->fin = HARNESS_READ_REPLY;
        sd->checked = false;
    }
}

/* Append one reply (or state) of a side, escaped, to msg. */
static void
describe(struct harness_buf *msg, const char *who, const char *data, size_t len,
         const char *state)
{
    harness_buf_printf(msg, "  %-9s ", who);
    if (state != NULL)
        harness_buf_printf(msg, "<%s> ", state);
    harness_buf_puts(msg, "\"");
    harness_buf_escape(msg, data, len, 300);
    harness_buf_puts(msg, "\"\n");
}

static size_t
first_diff(const char *a, size_t alen, const char *b, size_t blen)
{
    size_t i = 0;
    while (i < alen && i < blen && a[i] == b[i])
        i++;
    return i;
}

/* Print the first difference of two sides; false when there is one. */
static bool
sides_compare(const struct side *a, const struct side *b, const struct harness_script *sc,
              const char *an, const char *bn)
{
    struct harness_buf msg = {0};
    size_t common = a->n < b->n ? a->n : b->n;
    for (size_t i = 0; i < common; i++) {
        size_t as = i ? a->ends[i - 1] : 0, bs = i ? b->ends[i - 1] : 0;
        size_t al = a->ends[i] - as, bl = b->ends[i] - bs;
        if (al == bl && memcmp(a->raw.data + as, b->raw.data + bs, al) == 0)
            continue;
        harness_buf_printf(&msg, "MISMATCH at reply #%zu of %zu", i, sc->nreplies);
        if (sc->labels != NULL)
            harness_buf_printf(&msg, " (%s)", sc->labels[i]);
        harness_buf_printf(&msg, ", first difference at byte %zu:\n",
                           first_diff(a->raw.data + as, al, b->raw.data + bs, bl));
        describe(&msg, an, a->raw.data + as, al, NULL);
        describe(&msg, bn, b->raw.data + bs, bl, NULL);
        goto differ;
    }
    if (a->n != b->n || a->fin != b->fin ||
        (a->checked &&
         (a->tail.len != b->tail.len || memcmp(a->tail.data, b->tail.data, a->tail.len)))) {
        harness_buf_printf(&msg, "MISMATCH after %zu equal replies of %zu", common, sc->nreplies);
        if (sc->labels != NULL && common < sc->nreplies)
            harness_buf_printf(&msg, " (next: %s)", sc->labels[common]);
        harness_buf_puts(&msg, ":\n");
        const struct side *sd[2] = {a, b};
        const char *nm[2] = {an, bn};
        for (int k = 0; k < 2; k++) {
            if (sd[k]->n > common) {
                size_t s = common ? sd[k]->ends[common - 1] : 0;
                describe(&msg, nm[k], sd[k]->raw.data + s, sd[k]->ends[common] - s, "reply");
            } else {
                describe(&msg, nm[k], sd[k]->tail.data, sd[k]->tail.len,
                         sd[k]->n == sc->nreplies && sd[k]->fin == HARNESS_READ_REPLY
                             ? "probe answered"
                             : read_name(sd[k]->fin));
            }
        }
        goto differ;
    }
    return true;

differ:
    if (sc->labels == NULL) {
        harness_buf_puts(&msg, "  request bytes: \"");
        harness_buf_escape(&msg, sc->bytes, sc->len, 400);
        harness_buf_puts(&msg, "\"\n");
    }
    fputs(msg.data, stderr);
    harness_buf_free(&msg);
    return false;
}

bool
harness_same_replies_on(struct harness_conn *ref, struct harness_conn *sub,
                        const struct harness_script *sc)
{
    struct side a, b;
    side_run(ref, sc, sc->nreplies, SIZE_MAX, &a);
    /*
     * A reference that stopped early (closed, stuck) after n replies: the
     * subject must give the same n replies and then stop the same way, so
     * read at most one more from it; where the reference closed, the
     * subject must close promptly too.
     */
    size_t limit = a.n < sc->nreplies ? a.n + 1 : sc->nreplies;
    size_t quick_from = a.fin == HARNESS_READ_EOF ? a.n : SIZE_MAX;
    side_run(sub, sc, limit, quick_from, &b);
    bool same = sides_compare(&a, &b, sc, "reference", "subject");
    side_free(&a);
    side_free(&b);
    return same;
}

bool
harness_same_replies(const struct harness_server *ref, const struct harness_server *sub,
                     const struct harness_script *sc)
{
    struct harness_conn *a = harness_conn_open(ref);
    struct harness_conn *b = harness_conn_open(sub);
    bool same = harness_same_replies_on(a, b, sc);
    harness_conn_close(a);
    harness_conn_close(b);
    return same;
}

bool
harness_same(const struct harness_server *ref, const struct harness_server *sub,
             const char *bytes, size_t nreplies)
{
    struct harness_script sc = {
        .bytes = bytes,
        .len = strlen(bytes),
        .nreplies = nreplies,
        .flags = HARNESS_PROBE,
    };
    return harness_same_replies(ref, sub, &sc);
}

/* ---- INFO fields ---------------------------------------------------------- */

void
harness_wait_gate(const struct harness_server *b)
{
    char v[64] = "";
    uint64_t t0 = bw_now_ms();
    while (!harness_info_field(b, "bloom", "bloom_state", v, sizeof(v)) ||
           strcmp(v, "active") != 0) {
        if (bw_now_ms() - t0 > 20000)
            fail_msg("%s: bloom_state is \"%s\", not active, after 20 s", harness_server_name(b),
                     v);
        usleep(10 * 1000);
    }
}

bool
harness_info_field(const struct harness_server *s, const char *section, const char *name,
                   char *out, size_t outlen)
{
    char want[128];
    bool found = false;
    redisContext *c = harness_redis_connect(s);
    redisReply *r = redisCommand(c, "INFO %s", section);
    assert_non_null(r);
    assert_int_equal(r->type, REDIS_REPLY_STRING);
    snprintf(want, sizeof(want), "\n%s:", name);
    const char *p = strstr(r->str, want);
    if (p == NULL && strncmp(r->str, want + 1, strlen(want + 1)) == 0)
        p = r->str - 1; /* the first line of the reply */
    if (p != NULL) {
        p += strlen(want);
        snprintf(out, outlen, "%.*s", (int)strcspn(p, "\r\n"), p);
        found = true;
    }
    freeReplyObject(r);
    redisFree(c);
    return found;
}

long long
harness_info_ll(const struct harness_server *s, const char *section, const char *name)
{
    char v[128];
    return harness_info_field(s, section, name, v, sizeof(v)) ? atoll(v) : -1;
}

long long
harness_command_calls(const struct harness_server *s, const char *cmd)
{
    char name[96], v[256];
    snprintf(name, sizeof(name), "cmdstat_%s", cmd);
    if (!harness_info_field(s, "commandstats", name, v, sizeof(v)))
        return 0;
    return strncmp(v, "calls=", 6) == 0 ? atoll(v + 6) : 0;
}
