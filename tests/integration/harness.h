/*
 * harness: integration-test support. Starts redis-server and bulwark on free
 * loopback ports in a private temp dir, guards each test binary with a
 * watchdog, and talks raw RESP over sockets to compare servers byte for byte.
 */
#ifndef BW_HARNESS_H
#define BW_HARNESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include <hiredis/hiredis.h>

/*
 * Environment:
 *   BULWARK_BIN      absolute path of the daemon under test (set by
 *                    `make integration`). Unset: harness_subject_start()
 *                    starts a second redis-server instead (redis-vs-redis),
 *                    and harness_bulwark_start() skips the calling test.
 *   BULWARK_ATTACH   host:port of a running bulwark (under a debugger, say):
 *                    used instead of starting one. Tests that need special
 *                    bulwark arguments are skipped.
 *   REDIS_ATTACH     host:port of a running redis-server used as the upstream
 *                    (harness_redis_start()) instead of starting one. The
 *                    reference server of differential tests is always private.
 *   HARNESS_KEEP_TMP set to keep the temp dir (logs) after the run.
 *   HARNESS_WATCHDOG_S overrides the watchdog of harness_init().
 */

/* Default deadline of one read or of a server start/stop, in milliseconds. */
#define HARNESS_TIMEOUT_MS 10000

/* Default watchdog of one test binary, in seconds. */
#define HARNESS_WATCHDOG_S 120

/* A NULL-terminated argument list for the *_start() functions. */
#define HARNESS_ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

/* What a struct harness_server runs. */
enum harness_kind {
    HARNESS_REDIS,   /* redis-server */
    HARNESS_BULWARK, /* $BULWARK_BIN */
};

/* One server process started by the harness, or one attached to. */
struct harness_server {
    enum harness_kind kind; /* what runs there */
    bool attached;          /* named by *_ATTACH: never started nor stopped */
    pid_t pid;              /* child pid; 0 when attached or not running */
    char host[64];          /* address clients connect to, "127.0.0.1" */
    int port;               /* TCP port, fixed for the life of the struct */
    int upstream_port;      /* bulwark started by us: its upstream's port */
    char log_path[512];     /* the server's --logfile */
    char out_path[512];     /* the child's stdout and stderr (sanitizers) */
    char **argv;            /* owned: full argv, NULL-terminated, for restart */
};

/* A growable byte buffer; zero-initialise ({0}) before first use. */
struct harness_buf {
    char *data; /* owned; NUL-terminated for convenience, may hold NULs */
    size_t len; /* bytes used, excluding the terminating NUL */
    size_t cap; /* bytes allocated */
};

/* How reading from a struct harness_conn ended. */
enum harness_read {
    HARNESS_READ_REPLY,   /* one complete RESP reply */
    HARNESS_READ_EOF,     /* the peer closed (FIN or RST) */
    HARNESS_READ_TIMEOUT, /* the deadline passed first */
    HARNESS_READ_BAD,     /* bytes that are not RESP (hiredis reader error) */
};

/* One raw client connection with a deadline-aware reader. */
struct harness_conn {
    int fd;                /* owned socket, TCP_NODELAY, non-blocking */
    struct harness_buf in; /* received bytes from absolute offset in_base */
    size_t in_base;        /* absolute stream offset of in.data[0] */
    size_t in_done;        /* absolute offset up to which replies were returned */
    void *reader;          /* owned struct reply_scan (proxy/reply.c, RESP2 and RESP3):
                          finds where each reply ends */
    size_t scanned;        /* absolute offset up to which bytes were scanned */
    bool eof;              /* the peer closed its side */
    bool write_closed;     /* a send failed with EPIPE/ECONNRESET */
};

/* One request script replayed against a server (see harness_same_replies). */
struct harness_script {
    const char *bytes;         /* borrowed request bytes */
    size_t len;                /* length of bytes */
    size_t nreplies;           /* replies to read after sending */
    size_t chunk;              /* 0: one write; else writes of chunk bytes */
    unsigned flags;            /* HARNESS_PROBE / HARNESS_EXPECT_EOF */
    const char *const *labels; /* borrowed, optional: one label per reply */
};

/*
 * After the replies, send "PING\r\n" and record whether the server answers
 * it (and what) or has closed the connection. Do not use on scripts that
 * leave a request incomplete: the probe would be swallowed.
 */
#define HARNESS_PROBE 0x1u
/* After the replies, read until EOF and record any further bytes. */
#define HARNESS_EXPECT_EOF 0x2u

/*
 * Set up the harness for this test binary: ignore SIGPIPE, create the temp
 * dir (mkdtemp under $TMPDIR or /tmp), register its removal and the killing
 * of leftover children at exit, and arm a watchdog of watchdog_s seconds
 * (0: HARNESS_WATCHDOG_S) that kills every child and exits with status 124.
 * Call first in main(). Idempotent.
 */
void harness_init(unsigned watchdog_s);

/*
 * The exit status of main(): rc (cmocka_run_group_tests()'s result), or 1
 * when rc is 0 but a server stop failed outside a test (cmocka 1.1 does not
 * count failed group teardowns). Use: return harness_finish(cmocka_run...).
 */
int harness_finish(int rc);

/* The private temp dir of this binary (harness_init() first). */
const char *harness_tmpdir(void);

/*
 * A currently free loopback TCP port: binds 127.0.0.1:0, reads the port
 * back and closes. Fails the test when no socket can be bound.
 */
int harness_free_port(void);

/* True when $BULWARK_BIN or $BULWARK_ATTACH names a daemon to test. */
bool harness_have_bulwark(void);

/*
 * Start a private redis-server on a free port with --bind 127.0.0.1
 * --save "" --appendonly no --dir <tmp> --daemonize no
 * --logfile <tmp>/redis-<port>.log followed by args (NULL-terminated, may
 * be NULL; see HARNESS_ARGS), and wait until it answers PING (any reply,
 * NOAUTH included) within HARNESS_TIMEOUT_MS. With REDIS_ATTACH set and no
 * args, returns the attached server instead. Fails the test on error.
 * The caller owns the result: harness_redis_stop().
 */
struct harness_server *harness_redis_start(const char *const *args);

/* As harness_redis_start() but never attached: the differential reference. */
struct harness_server *harness_reference_start(const char *const *args);

/*
 * Stop the server (SIGTERM; SIGKILL and a test failure after
 * HARNESS_TIMEOUT_MS), reap it and free s. For bulwark, an exit status
 * other than 0 (crash, sanitizer report, leak) fails the test after printing
 * the tail of its log and output. Attached servers are only freed.
 * NULL is a no-op.
 */
void harness_redis_stop(struct harness_server *s);

/*
 * Kill the server with SIGKILL (a crash, as the proxy sees it) and reap it;
 * s stays valid for harness_redis_restart(). Skips the test when attached.
 */
void harness_redis_kill(struct harness_server *s);

/*
 * Stop the server if it runs and start it again with the same arguments on
 * the same port; waits until it answers PING. Skips the test when attached.
 */
void harness_redis_restart(struct harness_server *s);

/*
 * Start $BULWARK_BIN with --port <free> --upstream 127.0.0.1:<upstream_port>
 * --loglevel notice --logfile <tmp>/bulwark-<port>.log followed by args
 * (NULL-terminated, may be NULL), and wait until it answers PING.
 * With BULWARK_ATTACH set, returns the attached daemon (and skips the test
 * when args are given). Without either, skips the test.
 * The caller owns the result: harness_bulwark_stop().
 */
struct harness_server *harness_bulwark_start(int upstream_port, const char *const *args);

/*
 * The server under test of a differential test: bulwark (as
 * harness_bulwark_start()) when there is one, else a second private
 * redis-server started with args, which must then be valid for redis too.
 */
struct harness_server *harness_subject_start(int upstream_port, const char *const *args);

/* Same as harness_redis_stop(); reads better for bulwark. */
void harness_bulwark_stop(struct harness_server *s);

/*
 * The usual group of a comparison test: an upstream redis-server, bulwark in
 * front of it with its default arguments, and a reference redis-server.
 */
struct harness_trio {
    struct harness_server *upstream; /* bulwark's redis-server */
    struct harness_server *bulwark;  /* the subject */
    struct harness_server *ref;      /* a redis-server to compare with */
};

/* The trio of the test program, started and stopped by the two below. */
extern struct harness_trio harness_env;

/* cmocka group setup and teardown: start / stop harness_env's three. */
int harness_trio_setup(void **state);
int harness_trio_teardown(void **state);


/* A short name for messages: "bulwark:PORT" or "redis:PORT". */
const char *harness_server_name(const struct harness_server *s);

/* Print the last max_lines lines of the server's log and output to stderr. */
void harness_print_log_tail(const struct harness_server *s, int max_lines);

/*
 * A sync hiredis connection to s (connect timeout HARNESS_TIMEOUT_MS, and
 * the same read timeout). Fails the test when it cannot connect. The caller
 * owns the result: redisFree().
 */
redisContext *harness_redis_connect(const struct harness_server *s);

/*
 * The value of field name in s's "INFO section" (name without the colon),
 * copied into out (outlen bytes); false when the field is absent. Fails the
 * test when INFO does not answer with a bulk string.
 */
bool harness_info_field(const struct harness_server *s, const char *section, const char *name,
                        char *out, size_t outlen);

/* harness_info_field() as a number; -1 when the field is absent. */
long long harness_info_ll(const struct harness_server *s, const char *section, const char *name);

/*
 * Calls of cmd (lowercase, e.g. "get") on s since its last CONFIG RESETSTAT,
 * from INFO commandstats; 0 when it was never called.
 */
long long harness_command_calls(const struct harness_server *s, const char *cmd);

/* ---- byte buffers and RESP encoding ------------------------------------ */

/* Append p[0..n) to b, growing it (aborts on out of memory). */
void harness_buf_append(struct harness_buf *b, const void *p, size_t n);
/* Append the NUL-terminated s to b. */
void harness_buf_puts(struct harness_buf *b, const char *s);
/* Append printf-formatted text to b. */
void harness_buf_printf(struct harness_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* Empty b, keeping its memory. */
void harness_buf_reset(struct harness_buf *b);
/* Free b's memory and zero it. */
void harness_buf_free(struct harness_buf *b);

/* Append a multibulk request of argc arguments (lens may be NULL: strlen). */
void harness_buf_argv(struct harness_buf *b, int argc, const char *const *argv,
                      const size_t *lens);

/*
 * Append line as a multibulk request, its arguments split as redis-cli and
 * Redis's inline parser do: whitespace separates, "double quotes" take
 * \n \r \t \b \a \\ \" and \xHH escapes, 'single quotes' take \'.
 * Returns the number of arguments; fails the test on unbalanced quotes.
 */
int harness_buf_command(struct harness_buf *b, const char *line);

/*
 * Append the printable, escaped form of p[0..n) to b: \r \n \t \\ \" and
 * \xHH for other non-printables; at most max input bytes, then "...(N more)".
 */
void harness_buf_escape(struct harness_buf *b, const void *p, size_t n, size_t max);

/* ---- raw connections --------------------------------------------------- */

/* Connect to s over TCP. Fails the test on error. Caller owns the result. */
struct harness_conn *harness_conn_open(const struct harness_server *s);

/* As harness_conn_open() for host:port; NULL (no failure) when refused. */
struct harness_conn *harness_conn_open_addr(const char *host, int port);

/* Close and free c. NULL is a no-op. */
void harness_conn_close(struct harness_conn *c);

/*
 * Send p[0..n): in one write when chunk is 0, else in writes of at most
 * chunk bytes each. Incoming bytes are buffered meanwhile, so a server that
 * answers while we write never deadlocks us. A peer that closes stops the
 * sending quietly (c->write_closed); a write that cannot progress within
 * HARNESS_TIMEOUT_MS fails the test.
 */
void harness_conn_send(struct harness_conn *c, const void *p, size_t n, size_t chunk);

/* harness_conn_send() of a NUL-terminated string in one write. */
void harness_conn_send_str(struct harness_conn *c, const char *s);

/*
 * Read exactly one complete RESP reply within timeout_ms and append its raw
 * bytes to out (hiredis's redisReader only finds the boundary). Returns
 * HARNESS_READ_REPLY, or HARNESS_READ_EOF / _TIMEOUT / _BAD with the
 * incomplete or unparsable bytes appended to out.
 */
enum harness_read harness_conn_read_reply(struct harness_conn *c, int timeout_ms,
                                          struct harness_buf *out);

/*
 * Read until the peer closes, within timeout_ms; every byte received
 * meanwhile (buffered ones included) is appended to extra (may be NULL).
 * Returns HARNESS_READ_EOF or HARNESS_READ_TIMEOUT.
 */
enum harness_read harness_conn_read_eof(struct harness_conn *c, int timeout_ms,
                                        struct harness_buf *extra);

/*
 * Send req (one write) and read one reply; true when its raw bytes equal
 * expect. On mismatch prints both, escaped, to stderr.
 */
bool harness_conn_roundtrip(struct harness_conn *c, const char *req, const char *expect);

/*
 * Send req (one write, any number of requests) and read n replies; true
 * when reply i's raw bytes equal expect[i] for every i. On the first
 * mismatch prints it (escaped) to stderr and stops reading.
 */
bool harness_conn_pipeline(struct harness_conn *c, const char *req, const char *const *expect,
                           size_t n);

/*
 * Wait (20 s at most, else the test fails) until bulwark b's gate is closed
 * (INFO bloom: bloom_state:active), so reads of absent keys are answered by it.
 */
void harness_wait_gate(const struct harness_server *b);

/* ---- differential comparison ------------------------------------------- */

/*
 * Replay sc on ref and on sub (already open connections, in that order):
 * send, read sc->nreplies replies from each, then apply sc->flags. Compares
 * every reply byte for byte and the final state (answered probe, closed,
 * timed out). Where the reference closed the connection, the subject gets
 * HARNESS_CLOSE_MS (3 s) to close too. Returns true when equal; otherwise
 * prints the first mismatch (reply index, label, both replies escaped, the
 * first differing byte) to stderr and returns false.
 */
bool harness_same_replies_on(struct harness_conn *ref, struct harness_conn *sub,
                             const struct harness_script *sc);

/* harness_same_replies_on() on fresh connections, closed afterwards. */
bool harness_same_replies(const struct harness_server *ref, const struct harness_server *sub,
                          const struct harness_script *sc);

/*
 * Convenience: a script of the NUL-terminated bytes, nreplies replies,
 * one write, HARNESS_PROBE; fresh connections.
 */
bool harness_same(const struct harness_server *ref, const struct harness_server *sub,
                  const char *bytes, size_t nreplies);

#endif
