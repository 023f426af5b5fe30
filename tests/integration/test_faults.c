/*
 * test_faults: what clients see when the upstream fails under pipelined GET/SET
 * load (issue #18 item 1): every request gets a reply, no reply carries a
 * wrong value, bulwark stays alive and keys written on Redis afterwards read back.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include <hiredis/read.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* ---- (a) the small repro: GET batching with nothing listening upstream --- */

/* Pairs of (GET k, SET k v) each connection pipelines in one write. */
#define REPRO_PAIRS 16
/* Times the connections send the pipeline while nothing listens. */
#define REPRO_ROUNDS 5
/* Deadline of all the replies of one connection, ms. */
#define REPRO_REPLY_MS 5000
/* Deadline of the recovery once Redis listens again, ms. */
#define REPRO_RECOVER_MS 5000

/* The pipeline: 16 x (GET k, SET k v) in one write. */
static void
repro_send(struct harness_conn *c)
{
    struct harness_buf req = {0};
    for (int i = 0; i < REPRO_PAIRS; i++)
        harness_buf_puts(&req, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n"
                               "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    harness_conn_send(c, req.data, req.len, 0);
    harness_buf_free(&req);
}

/* Replies read from c within REPRO_REPLY_MS, at most want. */
static int
repro_read(struct harness_conn *c, int want)
{
    struct harness_buf got = {0};
    uint64_t deadline = bw_now_ms() + REPRO_REPLY_MS;
    int n = 0;
    while (n < want) {
        uint64_t now = bw_now_ms();
        int ms = now >= deadline ? 0 : (int)(deadline - now);
        harness_buf_reset(&got);
        if (harness_conn_read_reply(c, ms, &got) != HARNESS_READ_REPLY)
            break;
        n++;
    }
    harness_buf_free(&got);
    return n;
}

/* True when b answers "INFO proxy" on a fresh connection within 3 s. */
static bool
answers_info(const struct harness_server *b)
{
    struct harness_conn *c = harness_conn_open_addr(b->host, b->port);
    if (c == NULL)
        return false;
    struct harness_buf got = {0};
    harness_conn_send_str(c, "INFO proxy\r\n");
    bool ok = harness_conn_read_reply(c, 3000, &got) == HARNESS_READ_REPLY && got.data[0] == '$';
    harness_buf_free(&got);
    harness_conn_close(c);
    return ok;
}

/*
 * On c, "SET k <value>" until it answers +OK (errors allowed while the link
 * comes back) within REPRO_RECOVER_MS, then "GET k" must read value.
 */
static bool
repro_recovered(struct harness_conn *c, const char *value)
{
    char set[96], want[96];
    snprintf(set, sizeof(set), "SET k %s\r\n", value);
    snprintf(want, sizeof(want), "$%zu\r\n%s\r\n", strlen(value), value);
    uint64_t deadline = bw_now_ms() + REPRO_RECOVER_MS;
    struct harness_buf got = {0};
    bool ok = false;
    while (!ok && bw_now_ms() < deadline) {
        harness_buf_reset(&got);
        harness_conn_send_str(c, set);
        if (harness_conn_read_reply(c, REPRO_RECOVER_MS, &got) != HARNESS_READ_REPLY)
            break;
        ok = strcmp(got.data, "+OK\r\n") == 0;
        if (!ok)
            usleep(20 * 1000);
    }
    harness_buf_free(&got);
    return ok && harness_conn_roundtrip(c, "GET k\r\n", want);
}

static void
repro_run(int nconns)
{
    struct harness_server *r = harness_redis_start(NULL);
    harness_redis_kill(r); /* its port now has nothing listening */
    struct harness_server *b = harness_bulwark_start(r->port, NULL);
    struct harness_conn **cs = bw_calloc((size_t)nconns, sizeof(*cs));
    for (int i = 0; i < nconns; i++)
        cs[i] = harness_conn_open(b);
    int replies = 0;
    for (int round = 0; round < REPRO_ROUNDS; round++) {
        for (int i = 0; i < nconns; i++)
            repro_send(cs[i]);
        for (int i = 0; i < nconns; i++)
            replies += repro_read(cs[i], 2 * REPRO_PAIRS);
    }
    bool alive = answers_info(b);
    fprintf(stderr,
            "no upstream, %d connection(s) x %d rounds x %d requests: %d replies; INFO %s\n",
            nconns, REPRO_ROUNDS, 2 * REPRO_PAIRS, replies, alive ? "answered" : "NOT answered");
    assert_int_equal(replies, REPRO_ROUNDS * nconns * 2 * REPRO_PAIRS);
    assert_true(alive);

    harness_redis_restart(r); /* on the same port */
    int recovered = 0;
    for (int i = 0; i < nconns; i++) {
        char value[32];
        snprintf(value, sizeof(value), "v%d", i);
        recovered += repro_recovered(cs[i], value);
    }
    fprintf(stderr, "after Redis came back: %d of %d connections read their own write; INFO %s\n",
            recovered, nconns, answers_info(b) ? "answered" : "NOT answered");
    assert_int_equal(recovered, nconns);
    /* The same pipeline again, now answered in full and in order. */
    struct harness_buf got = {0};
    for (int i = 0; i < nconns; i++) {
        repro_send(cs[i]);
        for (int j = 0; j < 2 * REPRO_PAIRS; j++) {
            harness_buf_reset(&got);
            assert_int_equal(harness_conn_read_reply(cs[i], REPRO_REPLY_MS, &got),
                             HARNESS_READ_REPLY);
            char last[32]; /* connections run one after the other */
            snprintf(last, sizeof(last), "$2\r\nv%d\r\n", nconns - 1);
            const char *want = j % 2 ? "+OK\r\n" : i == 0 && j == 0 ? last : "$1\r\nv\r\n";
            assert_string_equal(got.data, want);
        }
    }
    struct harness_conn *fresh = harness_conn_open(b);
    assert_true(harness_conn_roundtrip(fresh, "GET k\r\n", "$1\r\nv\r\n"));
    harness_conn_close(fresh);
    harness_buf_free(&got);
    for (int i = 0; i < nconns; i++)
        harness_conn_close(cs[i]);
    bw_free(cs);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

static void
test_batch_no_upstream_one_conn(void **state)
{
    (void)state;
    repro_run(1);
}

static void
test_batch_no_upstream_eight_conns(void **state)
{
    (void)state;
    repro_run(8);
}


/* ---- (b) the fault suite: 50 pipelining clients with an exact checker ----- */

#define LOAD_CLIENTS 50         /* connections of the load */
#define LOAD_DEPTH 16           /* requests per pipeline */
#define LOAD_KEYS 8             /* keys each client owns */
#define LOAD_MAX_SEQ (1u << 20) /* SETs per client at most (bitmap size) */
#define LOAD_HANG_MS 8000       /* a pipeline unanswered this long is a hang */
#define LOAD_NOTES 8            /* violations described in full */
#define UPSTREAM_TIMEOUT_MS 300 /* --upstream-timeout of the suite */
#define DIRECT_CHECKS 200       /* direct write + read pairs after each fault */
#define DATASET_KEYS 2000       /* extra keys of a new dataset */
#define DATASET_READS 500       /* of which read through bulwark after the restart */

/* One request of a pipeline, as the checker needs it. */
struct load_op {
    bool set;     /* SET (else GET) */
    int key;      /* 0..LOAD_KEYS-1: the client's key */
    uint64_t seq; /* SET: the sequence number its value carries */
};

/* One client connection of the load: one pipeline in flight at a time. */
struct load_client {
    int id;                         /* 0..LOAD_CLIENTS-1 */
    int fd;                         /* owned non-blocking socket, -1 when dead */
    redisReader *reader;            /* owned reply parser */
    struct harness_buf out;         /* bytes not yet written */
    size_t out_off;                 /* written prefix of out */
    struct load_op ops[LOAD_DEPTH]; /* the pipeline in flight */
    int nops;                       /* requests in flight (0: idle) */
    int nreplies;                   /* of which answered */
    uint64_t sent_ms;               /* monotonic time of the last progress */
    uint64_t next_seq;              /* next SET sequence number */
    int64_t ok_seq[LOAD_KEYS];      /* last SET answered +OK; -1: none */
    uint8_t *uncertain;             /* owned bitmap: SETs answered with an error */
    unsigned rng;                   /* rand_r state */
};

/* The load and its checker; the thread owns the clients while it runs. */
struct load {
    struct harness_server *bulwark; /* borrowed */
    struct load_client clients[LOAD_CLIENTS];
    pthread_t thread;
    atomic_bool stop;               /* main: end the thread */
    atomic_bool pause_req;          /* main: send no new pipelines */
    atomic_bool paused;             /* thread: no pipeline in flight while pause_req */
    atomic_uint_fast64_t replies;   /* replies checked */
    atomic_uint_fast64_t errors;    /* error replies (allowed during a fault) */
    atomic_uint_fast64_t clean;     /* pipelines completed since the last error */
    atomic_uint_fast64_t pipelines; /* pipelines completed */
    atomic_uint_fast64_t wrong;     /* replies with a wrong value or type */
    atomic_uint_fast64_t hangs;     /* pipelines unanswered for LOAD_HANG_MS */
    atomic_uint_fast64_t closed;    /* connections bulwark closed */
    pthread_mutex_t notes_lock;
    char notes[LOAD_NOTES][256]; /* the first violations, described */
    int nnotes;
};

static void load_note(struct load *ld, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
load_note(struct load *ld, const char *fmt, ...)
{
    pthread_mutex_lock(&ld->notes_lock);
    if (ld->nnotes < LOAD_NOTES) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(ld->notes[ld->nnotes++], sizeof(ld->notes[0]), fmt, ap);
        va_end(ap);
    }
    pthread_mutex_unlock(&ld->notes_lock);
}

/* The value client c writes to its key k with sequence number seq. */
static int
load_value(char *buf, size_t len, int c, int k, uint64_t seq)
{
    return snprintf(buf, len, "v:%d:%d:%llu:%s", c, k, (unsigned long long)seq,
                    "padding-padding-padding");
}

static void
load_client_drop(struct load *ld, struct load_client *cl, const char *why)
{
    if (cl->fd < 0)
        return;
    close(cl->fd);
    cl->fd = -1;
    atomic_fetch_add(&ld->closed, 1);
    load_note(ld, "client %d: %s with %d of %d replies in", cl->id, why, cl->nreplies, cl->nops);
}

static void
load_client_open(struct load *ld, struct load_client *cl)
{
    struct harness_conn *hc = harness_conn_open(ld->bulwark);
    cl->fd = hc->fd; /* take the socket over; the harness reader is not used */
    hc->fd = -1;
    harness_conn_close(hc);
    cl->reader = redisReaderCreate();
    cl->uncertain = bw_calloc(LOAD_MAX_SEQ / 8, 1);
    for (int k = 0; k < LOAD_KEYS; k++)
        cl->ok_seq[k] = -1;
    cl->rng = (unsigned)cl->id * 2654435761u + 1;
}

/* Queue the next pipeline of cl: random GETs and SETs of its own keys. */
static void
load_client_send(struct load_client *cl)
{
    char key[32], val[96];
    harness_buf_reset(&cl->out);
    cl->out_off = 0;
    for (int i = 0; i < LOAD_DEPTH; i++) {
        struct load_op *op = &cl->ops[i];
        op->key = rand_r(&cl->rng) % LOAD_KEYS;
        op->set = rand_r(&cl->rng) % 2 && cl->next_seq < LOAD_MAX_SEQ;
        snprintf(key, sizeof(key), "f:%d:%d", cl->id, op->key);
        if (op->set) {
            op->seq = cl->next_seq++;
            load_value(val, sizeof(val), cl->id, op->key, op->seq);
            harness_buf_argv(&cl->out, 3, (const char *const[]){"SET", key, val}, NULL);
        } else {
            harness_buf_argv(&cl->out, 2, (const char *const[]){"GET", key}, NULL);
        }
    }
    cl->nops = LOAD_DEPTH;
    cl->nreplies = 0;
    cl->sent_ms = bw_now_ms();
}

static bool
load_uncertain(const struct load_client *cl, uint64_t seq)
{
    return seq < LOAD_MAX_SEQ && (cl->uncertain[seq / 8] >> (seq % 8)) & 1;
}

/* Check the GET reply r of op against what cl knows of its key. */
static void
load_check_get(struct load *ld, struct load_client *cl, const struct load_op *op,
               const redisReply *r)
{
    int64_t ok = cl->ok_seq[op->key];
    if (r->type == REDIS_REPLY_NIL) {
        if (ok >= 0) {
            atomic_fetch_add(&ld->wrong, 1);
            load_note(ld, "client %d: GET f:%d:%d read nil after SET #%lld was answered +OK",
                      cl->id, cl->id, op->key, (long long)ok);
        }
        return;
    }
    int c = -1, k = -1;
    unsigned long long seq = 0;
    if (r->type != REDIS_REPLY_STRING || sscanf(r->str, "v:%d:%d:%llu:", &c, &k, &seq) != 3 ||
        c != cl->id || k != op->key || !((int64_t)seq == ok || load_uncertain(cl, seq))) {
        atomic_fetch_add(&ld->wrong, 1);
        load_note(ld, "client %d: GET f:%d:%d read \"%.80s\" (type %d); last +OK was SET #%lld",
                  cl->id, cl->id, op->key, r->type == REDIS_REPLY_STRING ? r->str : "", r->type,
                  (long long)ok);
    }
}

/* Check reply r of the next request of cl's pipeline and update the model. */
static void
load_check(struct load *ld, struct load_client *cl, const redisReply *r)
{
    const struct load_op *op = &cl->ops[cl->nreplies++];
    atomic_fetch_add(&ld->replies, 1);
    if (r->type == REDIS_REPLY_ERROR) {
        atomic_fetch_add(&ld->errors, 1);
        atomic_store(&ld->clean, 0);
        if (op->set)
            cl->uncertain[op->seq / 8] |= (uint8_t)(1u << (op->seq % 8));
        return;
    }
    if (!op->set) {
        load_check_get(ld, cl, op, r);
    } else if (r->type == REDIS_REPLY_STATUS && strcmp(r->str, "OK") == 0) {
        cl->ok_seq[op->key] = (int64_t)op->seq;
    } else {
        atomic_fetch_add(&ld->wrong, 1);
        load_note(ld, "client %d: SET f:%d:%d answered type %d \"%.60s\"", cl->id, cl->id,
                  op->key, r->type, r->type == REDIS_REPLY_STATUS ? r->str : "");
    }
}

/* Read what bulwark sent cl and check every complete reply. */
static void
load_client_read(struct load *ld, struct load_client *cl)
{
    char buf[16384];
    ssize_t n = read(cl->fd, buf, sizeof(buf));
    if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR)) {
        load_client_drop(ld, cl, n == 0 ? "closed by bulwark" : strerror(errno));
        return;
    }
    if (n < 0)
        return;
    redisReaderFeed(cl->reader, buf, (size_t)n);
    for (;;) {
        void *rep = NULL;
        if (redisReaderGetReply(cl->reader, &rep) != REDIS_OK) {
            load_client_drop(ld, cl, "protocol error");
            return;
        }
        if (rep == NULL)
            return;
        if (cl->nreplies >= cl->nops) {
            atomic_fetch_add(&ld->wrong, 1);
            load_note(ld, "client %d: a reply nothing asked for", cl->id);
        } else {
            load_check(ld, cl, rep);
        }
        freeReplyObject(rep);
        cl->sent_ms = bw_now_ms();
        if (cl->nreplies == cl->nops) {
            cl->nops = 0;
            atomic_fetch_add(&ld->pipelines, 1);
            atomic_fetch_add(&ld->clean, 1);
        }
    }
}

static void
load_client_write(struct load_client *cl)
{
    while (cl->out_off < cl->out.len) {
        ssize_t n = write(cl->fd, cl->out.data + cl->out_off, cl->out.len - cl->out_off);
        if (n <= 0)
            return; /* EAGAIN, or an error the read side reports */
        cl->out_off += (size_t)n;
    }
}

/* One turn: start pipelines, poll, read, write; detect hangs. */
static void
load_turn(struct load *ld)
{
    struct pollfd pfd[LOAD_CLIENTS];
    bool pausing = atomic_load(&ld->pause_req);
    bool idle = true;
    uint64_t now = bw_now_ms();
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        struct load_client *cl = &ld->clients[i];
        pfd[i] = (struct pollfd){.fd = cl->fd, .events = POLLIN};
        if (cl->fd < 0)
            continue;
        if (cl->nops == 0 && !pausing)
            load_client_send(cl);
        if (cl->nops > 0) {
            idle = false;
            if (now > cl->sent_ms + LOAD_HANG_MS) {
                atomic_fetch_add(&ld->hangs, 1);
                load_client_drop(ld, cl, "no reply for 8 s (hang)");
                continue;
            }
        }
        if (cl->out_off < cl->out.len)
            pfd[i].events |= POLLOUT;
    }
    atomic_store(&ld->paused, pausing && idle);
    if (poll(pfd, LOAD_CLIENTS, 20) <= 0)
        return;
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        struct load_client *cl = &ld->clients[i];
        if (cl->fd >= 0 && (pfd[i].revents & POLLOUT))
            load_client_write(cl);
        if (cl->fd >= 0 && (pfd[i].revents & (POLLIN | POLLHUP | POLLERR)))
            load_client_read(ld, cl);
    }
}

static void *
load_main(void *arg)
{
    struct load *ld = arg;
    while (!atomic_load(&ld->stop))
        load_turn(ld);
    return NULL;
}

static struct load *
load_start(struct harness_server *b)
{
    struct load *ld = bw_calloc(1, sizeof(*ld));
    ld->bulwark = b;
    pthread_mutex_init(&ld->notes_lock, NULL);
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        ld->clients[i].id = i;
        load_client_open(ld, &ld->clients[i]);
    }
    assert_int_equal(pthread_create(&ld->thread, NULL, load_main, ld), 0);
    return ld;
}

/* Stop the thread and free the load; prints the violations seen. */
static void
load_stop(struct load *ld)
{
    atomic_store(&ld->stop, true);
    pthread_join(ld->thread, NULL);
    for (int i = 0; i < ld->nnotes; i++)
        fprintf(stderr, "  violation: %s\n", ld->notes[i]);
    for (int i = 0; i < LOAD_CLIENTS; i++) {
        struct load_client *cl = &ld->clients[i];
        if (cl->fd >= 0)
            close(cl->fd);
        redisReaderFree(cl->reader);
        harness_buf_free(&cl->out);
        bw_free(cl->uncertain);
    }
    pthread_mutex_destroy(&ld->notes_lock);
    bw_free(ld);
}

/* Wait (bounded) until the load has no pipeline in flight and sends none. */
static void
load_pause(struct load *ld)
{
    atomic_store(&ld->pause_req, true);
    uint64_t t0 = bw_now_ms();
    while (!atomic_load(&ld->paused)) {
        assert_true(bw_now_ms() - t0 < LOAD_HANG_MS + 2000);
        usleep(5 * 1000);
    }
}

static void
load_resume(struct load *ld)
{
    atomic_store(&ld->paused, false);
    atomic_store(&ld->pause_req, false);
}

/* Wait (bounded) until at least n more pipelines completed. */
static bool
load_wait_pipelines(struct load *ld, uint64_t n, int timeout_ms)
{
    uint64_t want = atomic_load(&ld->pipelines) + n, t0 = bw_now_ms();
    while (atomic_load(&ld->pipelines) < want) {
        if (bw_now_ms() - t0 > (uint64_t)timeout_ms)
            return false;
        usleep(5 * 1000);
    }
    return true;
}

/* Recovered: 2 pipelines per client in a row without any error, within 10 s. */
static bool
load_wait_recovered(struct load *ld, uint64_t *ms)
{
    uint64_t t0 = bw_now_ms();
    while (atomic_load(&ld->clean) < 2 * LOAD_CLIENTS) {
        if (bw_now_ms() - t0 > 10000 || atomic_load(&ld->closed) > 0)
            return false;
        usleep(5 * 1000);
    }
    *ms = bw_now_ms() - t0;
    return true;
}

/* ---- faults ----------------------------------------------------------- */

/* The Redis of a suite run: AOF on, so a kill -9 loses no acknowledged write. */
struct fault_env {
    struct harness_server *redis;   /* upstream */
    struct harness_server *bulwark; /* in front of it */
    struct load *load;              /* running load */
    char aof_dir[64];               /* --appenddirname, private to this run */
    int dataset_gen;                /* datasets loaded so far */
    const char *fault;              /* the fault being applied */
    int failed;                     /* checks failed so far (the suite goes on) */
};

/* Record a failed check; the suite applies the other faults before failing. */
static void
fault_failed(struct fault_env *fe, const char *what)
{
    fe->failed++;
    fprintf(stderr, "  FAILED after %s: %s\n", fe->fault, what);
}

static const char *const *
fault_redis_args(const struct fault_env *fe)
{
    static const char *args[8];
    args[0] = "--appendonly";
    args[1] = "yes";
    args[2] = "--appendfsync";
    args[3] = "always";
    args[4] = "--appenddirname";
    args[5] = fe->aof_dir;
    args[6] = NULL;
    return args;
}

/* True when the process of s has exited (a zombie) or is gone. */
static bool
process_exited(const struct harness_server *s)
{
    char path[64], stat[256];
    snprintf(path, sizeof(path), "/proc/%d/stat", (int)s->pid);
    FILE *f = fopen(path, "r");
    if (f == NULL)
        return true;
    size_t n = fread(stat, 1, sizeof(stat) - 1, f);
    fclose(f);
    stat[n] = '\0';
    const char *paren = strrchr(stat, ')');
    return paren == NULL || paren[1] == '\0' || paren[2] == 'Z';
}

/*
 * True when b answers INFO within 3 s on a fresh connection; otherwise says
 * whether it died (and shows its log and sanitizer output) or is deaf.
 */
static bool
fault_info_answers(const struct harness_server *b)
{
    if (answers_info(b))
        return true;
    bool dead = !b->attached && process_exited(b);
    fprintf(stderr, "  bulwark %s\n",
            dead ? "EXITED (crash):" : "is alive but does not answer INFO");
    if (dead)
        harness_print_log_tail(b, 40);
    return false;
}

/* A sync connection to bulwark; when refused, says why (crash) and fails. */
static redisContext *
fault_connect(const struct harness_server *b)
{
    struct timeval tv = {HARNESS_TIMEOUT_MS / 1000, 0};
    redisContext *c = redisConnectWithTimeout(b->host, b->port, tv);
    if (c == NULL || c->err) {
        fprintf(stderr, "  cannot connect to bulwark: %s\n", c ? c->errstr : "out of memory");
        redisFree(c);
        fault_info_answers(b);
        fail_msg("bulwark refuses connections");
    }
    assert_int_equal(redisSetTimeout(c, tv), REDIS_OK);
    return c;
}

/* Wait (bounded, polling) until the load has seen at least one more error. */
static void
fault_wait_errors(struct load *ld, uint64_t before)
{
    uint64_t t0 = bw_now_ms();
    while (atomic_load(&ld->errors) == before && bw_now_ms() - t0 < 3000)
        usleep(2 * 1000);
}

static void
fault_kill9(struct fault_env *fe)
{
    uint64_t before = atomic_load(&fe->load->errors);
    harness_redis_kill(fe->redis);
    fault_wait_errors(fe->load, before); /* clients saw the outage */
    harness_redis_restart(fe->redis);
}

static void
fault_sigstop(struct fault_env *fe)
{
    assert_int_equal(kill(fe->redis->pid, SIGSTOP), 0);
    usleep(2 * UPSTREAM_TIMEOUT_MS * 1000); /* the fault is this long a stop */
    assert_int_equal(kill(fe->redis->pid, SIGCONT), 0);
}

static void
fault_client_kill(struct fault_env *fe)
{
    redisContext *d = harness_redis_connect(fe->redis);
    redisReply *r = redisCommand(d, "CLIENT KILL TYPE normal");
    assert_non_null(r);
    fprintf(stderr, "  CLIENT KILL TYPE normal killed %lld connection(s)\n", r->integer);
    freeReplyObject(r);
    redisFree(d);
}

/* What reads through bulwark of keys known to exist returned. */
struct read_tally {
    int nil;    /* nil: the key exists, so a failure */
    int wrong;  /* another value or type: a failure */
    int errors; /* error replies, retried (allowed while the link comes back) */
    int reads;  /* keys read */
};

/*
 * GET key through bc until a reply that is not an error (at most 5 s), and
 * tally it against want: what a user who retries on errors reads.
 */
static void
read_through(redisContext *bc, const char *key, const char *want, struct read_tally *t)
{
    uint64_t t0 = bw_now_ms();
    t->reads++;
    for (;;) {
        redisReply *r = redisCommand(bc, "GET %s", key);
        assert_non_null(r);
        bool err = r->type == REDIS_REPLY_ERROR;
        if (!err) {
            t->nil += r->type == REDIS_REPLY_NIL;
            t->wrong += r->type != REDIS_REPLY_NIL &&
                        (r->type != REDIS_REPLY_STRING || strcmp(r->str, want) != 0);
        }
        freeReplyObject(r);
        if (!err)
            return;
        t->errors++;
        assert_true(bw_now_ms() - t0 < 5000);
        usleep(10 * 1000);
    }
}

/*
 * Restart Redis with another dataset: kill -9 under load, write the new
 * dataset into the AOF with a helper redis-server, restart; the load then
 * knows the new values of its keys (about half of them exist, changed).
 */
static void
fault_dataset(struct fault_env *fe)
{
    char cmd[600], key[32], val[96];
    int gen = ++fe->dataset_gen;
    harness_redis_kill(fe->redis);
    load_pause(fe->load);
    snprintf(cmd, sizeof(cmd), "rm -rf '%s/%s'", harness_tmpdir(), fe->aof_dir);
    assert_int_equal(system(cmd), 0);
    struct harness_server *h = harness_reference_start(fault_redis_args(fe));
    redisContext *d = harness_redis_connect(h);
    int queued = 0;
    for (int c = 0; c < LOAD_CLIENTS; c++) {
        struct load_client *cl = &fe->load->clients[c];
        memset(cl->uncertain, 0, LOAD_MAX_SEQ / 8);
        for (int k = 0; k < LOAD_KEYS; k++) {
            cl->ok_seq[k] = -1;
            if ((c + k + gen) % 2)
                continue;
            cl->ok_seq[k] = (int64_t)cl->next_seq++;
            snprintf(key, sizeof(key), "f:%d:%d", c, k);
            load_value(val, sizeof(val), c, k, (uint64_t)cl->ok_seq[k]);
            redisAppendCommand(d, "SET %s %s", key, val);
            queued++;
        }
    }
    for (int i = 0; i < DATASET_KEYS; i++, queued++)
        redisAppendCommand(d, "SET ds:%d:%d d%d", gen, i, i);
    for (int i = 0; i < queued; i++) {
        redisReply *r = NULL;
        assert_int_equal(redisGetReply(d, (void **)&r), REDIS_OK);
        freeReplyObject(r);
    }
    redisFree(d);
    harness_redis_stop(h); /* SIGTERM: the AOF is complete */
    harness_redis_restart(fe->redis);
    load_resume(fe->load);
    /* The new dataset's keys read through bulwark at once: never nil. */
    redisContext *bc = fault_connect(fe->bulwark);
    struct read_tally t = {0};
    for (int i = 0; i < DATASET_READS; i++) {
        snprintf(key, sizeof(key), "ds:%d:%d", gen, i);
        snprintf(val, sizeof(val), "d%d", i);
        read_through(bc, key, val, &t);
    }
    redisFree(bc);
    fprintf(stderr,
            "  new dataset's keys read at once through bulwark: %d nil, %d wrong of %d "
            "(%d errors retried)\n",
            t.nil, t.wrong, t.reads, t.errors);
    if (t.nil + t.wrong > 0)
        fault_failed(fe, "keys of the new dataset read nil or wrong through bulwark");
}

/*
 * DIRECT_CHECKS keys written directly on Redis, each read through bulwark
 * as the very next request: never nil, never another value. Returns errors.
 */
static int
fault_direct_checks(struct fault_env *fe, const char *tag)
{
    redisContext *d = harness_redis_connect(fe->redis);
    redisContext *bc = fault_connect(fe->bulwark);
    struct read_tally t = {0};
    for (int i = 0; i < DIRECT_CHECKS; i++) {
        char key[64], want[32];
        snprintf(key, sizeof(key), "dk:%s:%d", tag, i);
        snprintf(want, sizeof(want), "x%d", i);
        redisReply *w = redisCommand(d, "SET %s %s", key, want);
        assert_non_null(w);
        assert_int_equal(w->type, REDIS_REPLY_STATUS);
        freeReplyObject(w);
        read_through(bc, key, want, &t);
    }
    redisFree(d);
    redisFree(bc);
    fprintf(stderr,
            "  direct writes read at once through bulwark: %d nil, %d wrong of %d (%d "
            "errors retried)\n",
            t.nil, t.wrong, t.reads, t.errors);
    if (t.nil + t.wrong > 0)
        fault_failed(fe, "keys written directly on Redis read nil or wrong through bulwark");
    return t.errors;
}

/* One fault of the suite. */
struct fault {
    const char *name;
    void (*apply)(struct fault_env *fe);
};

static const struct fault faults[] = {
    {"kill -9 + restart", fault_kill9},
    {"SIGSTOP 2 x upstream-timeout", fault_sigstop},
    {"CLIENT KILL TYPE normal", fault_client_kill},
    {"restart with another dataset", fault_dataset},
};

/* Apply one fault under load and check what the clients saw. */
static void
fault_run(struct fault_env *fe, const struct fault *f, const char *mode, int idx)
{
    struct load *ld = fe->load;
    assert_true(load_wait_pipelines(ld, 4 * LOAD_CLIENTS, 10000)); /* under load */
    uint64_t e0 = atomic_load(&ld->errors), r0 = atomic_load(&ld->replies);
    fe->fault = f->name;
    f->apply(fe);
    atomic_store(&ld->clean, 0); /* recovery counts from here */
    bool alive = fault_info_answers(fe->bulwark);
    uint64_t ms = 0;
    bool recovered = alive && load_wait_recovered(ld, &ms);
    fprintf(stderr,
            "[%s] %s: INFO %s; %s in %llu ms; %llu replies, %llu errors, %llu wrong, "
            "%llu hangs, %llu closed so far\n",
            mode, f->name, alive ? "answered" : "NOT answered",
            recovered ? "recovered" : "NOT recovered", (unsigned long long)ms,
            (unsigned long long)(atomic_load(&ld->replies) - r0),
            (unsigned long long)(atomic_load(&ld->errors) - e0),
            (unsigned long long)atomic_load(&ld->wrong),
            (unsigned long long)atomic_load(&ld->hangs),
            (unsigned long long)atomic_load(&ld->closed));
    assert_true(alive); /* a dead or deaf bulwark: nothing more to learn */
    if (atomic_load(&ld->closed) > 0)
        fail_msg("%llu of %d clients hung or were closed: the rest of the suite cannot run",
                 (unsigned long long)atomic_load(&ld->closed), LOAD_CLIENTS);
    if (!recovered)
        fault_failed(fe, "the load did not run 2 pipelines per client without error within 10 s");
    char tag[32];
    snprintf(tag, sizeof(tag), "%d", idx);
    fault_direct_checks(fe, tag);
    assert_true(fault_info_answers(fe->bulwark));
}

/* The suite running, torn down by fault_teardown() when a test fails. */
static struct fault_env *running;

static int
fault_teardown(void **state)
{
    (void)state;
    if (running == NULL)
        return 0;
    if (running->load != NULL)
        load_stop(running->load);
    harness_redis_kill(running->bulwark); /* a failed test: its exit status is moot */
    harness_redis_kill(running->redis);
    harness_redis_stop(running->bulwark);
    harness_redis_stop(running->redis);
    running = NULL;
    return 0;
}

/* The whole suite against bulwark started with args (mode names it). */
static void
fault_suite(const char *mode, const char *const *args)
{
    static int runs;
    static struct fault_env fe; /* static: the teardown may see it after a failure */
    memset(&fe, 0, sizeof(fe));
    snprintf(fe.aof_dir, sizeof(fe.aof_dir), "aof-%d-%d", (int)getpid(), ++runs);
    fe.redis = harness_redis_start(fault_redis_args(&fe));
    fe.bulwark = harness_bulwark_start(fe.redis->port, args);
    running = &fe;
    fe.load = load_start(fe.bulwark);
    for (size_t i = 0; i < BW_ARRAY_LEN(faults); i++)
        fault_run(&fe, &faults[i], mode, (int)i);
    assert_true(load_wait_pipelines(fe.load, 4 * LOAD_CLIENTS, 10000));
    struct load *ld = fe.load;
    uint64_t wrong = atomic_load(&ld->wrong), hangs = atomic_load(&ld->hangs),
             closed = atomic_load(&ld->closed);
    fprintf(stderr,
            "[%s] total: %llu replies (%llu errors), %llu wrong, %llu hangs, %llu "
            "connections closed\n",
            mode, (unsigned long long)atomic_load(&ld->replies),
            (unsigned long long)atomic_load(&ld->errors), (unsigned long long)wrong,
            (unsigned long long)hangs, (unsigned long long)closed);
    load_stop(ld);
    fe.load = NULL;
    assert_int_equal(wrong, 0);
    assert_int_equal(hangs, 0);
    assert_int_equal(closed, 0);
    assert_int_equal(fe.failed, 0);
    running = NULL;
    harness_bulwark_stop(fe.bulwark);
    harness_redis_stop(fe.redis);
}

#define FAULT_TIMEOUT "--upstream-timeout", "300ms"

static void
test_faults_default(void **state)
{
    (void)state;
    fault_suite("default", HARNESS_ARGS(FAULT_TIMEOUT));
}

static void
test_faults_batch_pipeline(void **state)
{
    (void)state;
    fault_suite("batch-mode pipeline", HARNESS_ARGS(FAULT_TIMEOUT, "--batch-mode", "pipeline"));
}

static void
test_faults_batch_mget(void **state)
{
    (void)state;
    fault_suite("batch-mode mget", HARNESS_ARGS(FAULT_TIMEOUT, "--batch-mode", "mget"));
}

/* Batching off: the issue says it avoids item 1 (and it checks the checker). */
static void
test_faults_no_batch(void **state)
{
    (void)state;
    fault_suite("batch-max-keys 0", HARNESS_ARGS(FAULT_TIMEOUT, "--batch-max-keys", "0"));
}

static void
test_faults_hotkeys(void **state)
{
    (void)state;
    fault_suite("hotkey-threshold 5", HARNESS_ARGS(FAULT_TIMEOUT, "--hotkey-threshold", "5"));
}

int
main(void)
{
    harness_init(400);
    if (getenv("TEST_FILTER") != NULL) /* one test by name: TEST_FILTER=test_faults_default */
        cmocka_set_test_filter(getenv("TEST_FILTER"));
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_batch_no_upstream_one_conn),
        cmocka_unit_test(test_batch_no_upstream_eight_conns),
        cmocka_unit_test_teardown(test_faults_default, fault_teardown),
        cmocka_unit_test_teardown(test_faults_batch_pipeline, fault_teardown),
        cmocka_unit_test_teardown(test_faults_batch_mget, fault_teardown),
        cmocka_unit_test_teardown(test_faults_hotkeys, fault_teardown),
        cmocka_unit_test_teardown(test_faults_no_batch, fault_teardown),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
