/*
 * Unit tests of proxy/stages.c, the request path's stage table, without a
 * socket (issue #12: "stages with fakes"). Linked with the real pure and
 * reply-queue modules: the built-in command table (command.c), the request
 * parser (resp.c, so requests are parsed from wire bytes as client.c does),
 * sessions (session.c), reply slots (slots.c), encoders, cmdstats, stats and
 * the cluster key slot (cluster.c). Every feature module stages.c calls is a
 * fake in this file: gate, hot-key cache, batcher, local commands, forward,
 * cluster forward and router, pinned-session stage, writes, CLIENT TRACKING.
 * Each fake appends one word to a trace ("gate_read:get") and does what the
 * scenario set in `fk` says (answer, take, pass); the tests assert the trace
 * and the bytes in the session's output (what a client would read).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <event2/buffer.h>
#include <event2/event.h>

#include "proxy/batch.h"
#include "proxy/cfwd.h"
#include "proxy/cluster.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/ctrack.h"
#include "proxy/forward.h"
#include "proxy/gate.h"
#include "proxy/hotkey.h"
#include "proxy/keyspace.h"
#include "proxy/local.h"
#include "proxy/pinned.h"
#include "proxy/pinstage.h"
#include "proxy/proxy.h"
#include "proxy/resp.h"
#include "proxy/router.h"
#include "proxy/session.h"
#include "proxy/slots.h"
#include "proxy/stages.h"
#include "proxy/tracking.h"
#include "proxy/util.h"
#include "proxy/writes.h"

/* ---- the trace ------------------------------------------------------------ */

static char trace_buf[4096];
static size_t trace_len;

/* Append one word (printf-style) to the trace, space-separated. */
static void __attribute__((format(printf, 1, 2))) tr(const char *fmt, ...)
{
    va_list ap;
    if (trace_len > 0 && trace_len < sizeof(trace_buf) - 1)
        trace_buf[trace_len++] = ' ';
    va_start(ap, fmt);
    int n = vsnprintf(trace_buf + trace_len, sizeof(trace_buf) - trace_len, fmt, ap);
    va_end(ap);
    assert_true(n >= 0 && (size_t)n < sizeof(trace_buf) - trace_len);
    trace_len += (size_t)n;
}

static void
trace_clear(void)
{
    trace_len = 0;
    trace_buf[0] = '\0';
}

/* ---- what the fakes do (set per scenario, reset by setup) ---------------- */

static struct {
    bool gate_answers;      /* gate_read: every key absent, nil replied */
    const char *gate_rest;  /* gate_read of an MGET: the keys that may exist ("101"), or NULL */
    bool hot_answers;       /* hotkey_get: answered from the hot cache */
    bool local_answers;     /* local_dispatch: bulwark answers it */
    bool pin_sets_aside;    /* pinstage_handle: bulwark answers in between (false) */
    bool refused_takes;     /* pinstage_handle_refused: answered */
    bool defer_multi;       /* pinstage_defer_multi: MULTI waits for its first command */
    bool deferred_takes;    /* pinstage_deferred_multi: taken */
    bool may_pin;           /* pinstage_may_pin */
    bool must_wait;         /* pinstage_must_wait */
    bool must_queue;        /* pinstage_must_queue */
    bool switches_proto;    /* pinstage_switches_proto */
    bool batch_busy;        /* batch_client_busy */
    const char *jitter_to;  /* writes_jitter: the rewritten request, or NULL */
    bool router;            /* router_active: in front of a Redis Cluster */
    struct batch *router_b; /* router_batch's answer */
    bool tracking;          /* tracking_any */
} fk;

/* Bytes the forward fakes were handed (the last forward). */
static char fwd_bytes[1024];
static size_t fwd_len;
static int nforwards;

static void
fwd_record(const char *cmd, size_t len)
{
    assert_true(len < sizeof(fwd_bytes));
    memcpy(fwd_bytes, cmd, len);
    fwd_bytes[len] = '\0';
    fwd_len = len;
    nforwards++;
}

/* Batchers and a pinned session are opaque to stages.c: any distinct address does. */
static char batch_a_obj, batch_b_obj, pinned_obj, hotkey_obj, gate_rule_obj;
#define BATCH_A ((struct batch *)&batch_a_obj)
#define BATCH_B ((struct batch *)&batch_b_obj)
#define FAKE_PIN ((struct pinned *)&pinned_obj)

static const char *
batch_name(const struct batch *b)
{
    return b == BATCH_A ? "A" : b == BATCH_B ? "B" : "?";
}

/* argv[i] as "%.*s" arguments. */
#define ARG(req, i) (int)(req)->argv[i].len, (req)->argv[i].ptr

/* ---- fakes: batcher (batch.c) --------------------------------------------- */

void
batch_get(struct batch *b, struct session *s, const char *key, size_t len)
{
    (void)s;
    tr("batch_get:%s:%.*s", batch_name(b), (int)len, key);
}

void
batch_mget(struct batch *b, struct session *s, const struct resp_request *req, const bool *fetch)
{
    (void)s;
    char flags[64];
    if (fetch == NULL) {
        snprintf(flags, sizeof(flags), "all");
    } else {
        int n = 0;
        for (; n < req->argc - 1 && n < 63; n++)
            flags[n] = fetch[n] ? '1' : '0';
        flags[n] = '\0';
    }
    tr("batch_mget:%s:%s", batch_name(b), flags);
}

void
batch_before_forward(struct batch *b, struct session *s)
{
    (void)s;
    tr("batch_before_forward:%s", batch_name(b));
}

bool
batch_client_busy(const struct batch *b, const struct session *s)
{
    (void)b;
    (void)s;
    return fk.batch_busy;
}

/* ---- fakes: gate (gate.c) ------------------------------------------------- */

void
gate_apply(struct cmd_table *t)
{
    static const char *const gated[] = {"get", "mget", "exists"};
    tr("gate_apply");
    for (size_t i = 0; i < BW_ARRAY_LEN(gated); i++) {
        struct cmd_info *ci = cmd_lookup_mut(t, gated[i], strlen(gated[i]));
        if (ci != NULL)
            ci->gate = &gate_rule_obj;
    }
}

bool
gate_read(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
          struct gate_mget **mget_rest)
{
    tr("gate_read:%s%s", ci->fullname, mget_rest != NULL ? "+rest" : "");
    if (fk.gate_answers) {
        session_reply_nil(s);
        return true;
    }
    if (mget_rest != NULL && fk.gate_rest != NULL) {
        int nkeys = req->argc - 1;
        assert_int_equal((int)strlen(fk.gate_rest), nkeys);
        struct gate_mget *m = bw_malloc(sizeof(*m) + (size_t)nkeys * sizeof(bool));
        m->nkeys = nkeys;
        for (int i = 0; i < nkeys; i++)
            m->present[i] = fk.gate_rest[i] == '1';
        *mget_rest = m; /* the stage table owns it from here */
    }
    return false;
}

/* ---- fakes: hot-key cache (hotkey.c) -------------------------------------- */

bool
hotkey_get(struct hotkey *hk, struct session *s, const char *key, size_t len)
{
    assert_ptr_equal(hk, (struct hotkey *)&hotkey_obj); /* the session's keyspace's */
    tr("hotkey_get:%.*s", (int)len, key);
    if (!fk.hot_answers)
        return false;
    session_reply_bulk(s, "hot", 3);
    return true;
}

/* ---- fakes: local commands (local.c) -------------------------------------- */

/* The commands the fake marks LOCAL_HANDLER (local.c's table has more). */
static const char *const local_names[] = {"ping",           "auth",       "info",
                                          "client|setname", "config|get", "config|set"};

void
local_apply_policies(struct proxy *px, struct cmd_table *t)
{
    (void)px;
    tr("local_apply_policies");
    for (size_t i = 0; i < BW_ARRAY_LEN(local_names); i++) {
        struct cmd_info *ci = cmd_lookup_path(t, local_names[i]);
        assert_non_null(ci);
        ci->policy = LOCAL_HANDLER;
    }
}

bool
local_dispatch(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    (void)req;
    tr("local_dispatch:%s", ci->fullname);
    if (fk.local_answers)
        session_reply_status(s, "LOCAL");
    return fk.local_answers;
}

void
local_bulwark(struct session *s, const struct resp_request *req)
{
    if (req->argc >= 2)
        tr("local_bulwark:%.*s", ARG(req, 1));
    else
        tr("local_bulwark");
    session_reply_status(s, "BULWARK");
}

/* ---- fakes: forward (forward.c, cfwd.c) ----------------------------------- */

void
fwd_send(struct session *s, const char *cmd, size_t len, slot_filter_fn *filter, void *data)
{
    (void)s;
    assert_null(filter);
    assert_null(data);
    tr("fwd_send");
    fwd_record(cmd, len);
}

void
fwd_request(struct session *s, const struct resp_request *req, slot_filter_fn *filter, void *data)
{
    (void)s;
    assert_null(filter);
    assert_null(data);
    tr("fwd_request:%.*s", ARG(req, 0));
    if (req->raw != NULL)
        fwd_record(req->raw, req->raw_len);
    else
        fwd_record("(inline)", 8);
}

void
fwd_encode(const struct resp_request *req, struct evbuffer *out)
{
    tr("fwd_encode");
    evbuffer_add_printf(out, "*%d\r\n", req->argc);
    for (int i = 0; i < req->argc; i++)
        evbuffer_add_printf(out, "$%zu\r\n%.*s\r\n", req->argv[i].len, ARG(req, i));
}

void
cfwd_apply(struct cmd_table *t)
{
    (void)t;
    tr("cfwd_apply");
}

void
cfwd_request(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
             const char *cmd, size_t len)
{
    (void)s;
    (void)req;
    tr("cfwd_request:%s", ci->fullname);
    fwd_record(cmd, len);
}

/* ---- fakes: cluster router (router.c) ------------------------------------- */

bool
router_active(const struct proxy *px)
{
    (void)px;
    return fk.router;
}

struct batch *
router_batch(struct proxy *px, unsigned slot, uint64_t client_id, int proto)
{
    (void)px;
    (void)client_id;
    (void)proto;
    tr("router_batch:%u", slot);
    return fk.router_b;
}

/* ---- fakes: pinned-session stage (pinstage.c) ----------------------------- */

/* The session starters of this fake (pinned_needed() knows some forty). */
static bool
fake_pins(const struct resp_request *req)
{
    static const char *const names[] = {"multi", "watch", "blpop", "brpop", "subscribe", "eval"};
    for (size_t i = 0; i < BW_ARRAY_LEN(names); i++)
        if (resp_arg_is(&req->argv[0], names[i]))
            return true;
    return false;
}

bool
pinstage_handle(struct session *s, const struct resp_request *req, struct pinned **keep)
{
    tr("pinstage_handle:%.*s", ARG(req, 0));
    assert_ptr_equal(s->pin, FAKE_PIN);
    *keep = NULL;
    if (!fk.pin_sets_aside)
        return true; /* to the dedicated connection */
    *keep = s->pin;  /* as pinstage.c: the session set aside while bulwark answers */
    s->pin = NULL;
    return false;
}

void
pinstage_resume(struct session *s, struct pinned *keep)
{
    tr("pinstage_resume");
    assert_ptr_equal(keep, FAKE_PIN);
    assert_null(s->pin);
    s->pin = keep;
}

void
pinstage_request(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    (void)s;
    tr("pinstage_request:%s", ci != NULL ? ci->fullname : "?");
    (void)req;
}

bool
pinstage_handle_refused(struct session *s, const struct resp_request *req)
{
    tr("pinstage_handle_refused:%.*s", ARG(req, 0));
    if (fk.refused_takes)
        session_reply_error(s, "EXECABORT Transaction discarded because of previous errors.");
    return fk.refused_takes;
}

bool
pinstage_pins(struct session *s, const struct resp_request *req)
{
    (void)s;
    return fake_pins(req);
}

bool
pinstage_may_pin(const struct session *s, const struct resp_request *req)
{
    (void)s;
    (void)req;
    return fk.may_pin;
}

bool
pinstage_switches_proto(const struct session *s, const struct resp_request *req)
{
    (void)s;
    (void)req;
    return fk.switches_proto;
}

bool
pinstage_must_wait(const struct session *s, const struct resp_request *req)
{
    (void)s;
    (void)req;
    return fk.must_wait;
}

bool
pinstage_must_queue(struct session *s, const struct resp_request *req)
{
    (void)s;
    (void)req;
    return fk.must_queue;
}

void
pinstage_queue(struct session *s)
{
    tr("pinstage_queue");
    s->hold = SESSION_HOLD_POOL;
}

bool
pinstage_defer_multi(struct session *s, const struct resp_request *req)
{
    (void)s;
    tr("pinstage_defer_multi:%.*s", ARG(req, 0));
    return fk.defer_multi;
}

bool
pinstage_deferred_multi(struct session *s, const struct resp_request *req, struct pinned **keep)
{
    (void)s;
    tr("pinstage_deferred_multi:%.*s", ARG(req, 0));
    *keep = NULL;
    return fk.deferred_takes;
}

/* ---- fakes: writes (writes.c) --------------------------------------------- */

void
writes_apply(struct cmd_table *t)
{
    (void)t;
    tr("writes_apply");
}

void
writes_note(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
            bool shared)
{
    (void)s;
    (void)req;
    tr("writes_note:%s:%s", ci->fullname, shared ? "shared" : "pinned");
}

bool
writes_jitter(struct session *s, const struct cmd_info *ci, const struct resp_request *req,
              char **out, size_t *outlen)
{
    (void)s;
    (void)ci;
    (void)req;
    tr("writes_jitter");
    if (fk.jitter_to == NULL)
        return false;
    *outlen = strlen(fk.jitter_to);
    *out = bw_strndup(fk.jitter_to, *outlen); /* stages.c frees it (bw_free) */
    return true;
}

/* ---- fakes: CLIENT TRACKING (ctrack.c, tracking.c) ------------------------ */

bool
tracking_any(const struct tracking *t)
{
    (void)t;
    return fk.tracking;
}

bool
tracking_client_flags(const struct tracking *t, uint64_t id, char *flags, int64_t *redir)
{
    (void)t;
    (void)id;
    (void)flags;
    (void)redir;
    return false;
}

void
ctrack_begin(struct session *s)
{
    (void)s;
    tr("ctrack_begin");
}

void
ctrack_read(struct session *s, const struct cmd_info *ci, const struct resp_request *req)
{
    (void)s;
    (void)req;
    tr("ctrack_read:%s", ci->fullname);
}

void
ctrack_end(struct session *s, bool was_client_cmd)
{
    (void)s;
    tr("ctrack_end:%s", was_client_cmd ? "client" : "other");
}

void
ctrack_discard(struct session *s)
{
    (void)s;
    tr("ctrack_discard");
}

/* ---- fakes: pinned connection state (pinned.c, used by session.c) --------- */

bool
pinned_blocked(const struct pinned *p)
{
    (void)p;
    return false;
}

bool
pinned_in_multi(const struct pinned *p)
{
    (void)p;
    return false;
}

int64_t
pinned_subscriptions(const struct pinned *p)
{
    (void)p;
    return 0;
}

/* ---- a session without a socket ------------------------------------------ */

static struct proxy px;
static struct keyspace ks;
static struct session sess;
static struct evbuffer *out;
static struct resp_parser *parser;
static char wire[1024];         /* the bytes the last request was parsed from */
static struct resp_request req; /* the last request (views into wire) */

static void
q_flushed(struct session *s)
{
    (void)s;
}

static const struct slotq_ops qops = {.flushed = q_flushed, .grew = q_flushed};

static void
s_close(struct session *s)
{
    (void)s;
    fail_msg("the stage table closed the session");
}

static void
s_resume(struct session *s)
{
    (void)s;
}

static void
s_io_stats(const struct session *s, struct session_io *io)
{
    (void)s;
    memset(io, 0, sizeof(*io));
}

static size_t
s_held_bytes(const struct session *s)
{
    (void)s;
    return 0;
}

static const struct session_ops sops = {.close_after_reply = s_close,
                                        .close = s_close,
                                        .resume = s_resume,
                                        .io_stats = s_io_stats,
                                        .held_bytes = s_held_bytes};

/* Parse wire bytes (one whole request) with the real parser into req. */
static const struct resp_request *
parse_wire(const char *bytes)
{
    size_t len = strlen(bytes), consumed = 0;
    assert_true(len < sizeof(wire));
    memcpy(wire, bytes, len + 1);
    resp_parser_reset(parser);
    assert_int_equal(resp_parse(parser, wire, len, &consumed, &req), RESP_OK);
    assert_int_equal(consumed, len);
    return &req;
}

/* The multibulk request of the space-separated words in line. */
static const struct resp_request *
mk(const char *line)
{
    char buf[1024], words[512];
    const char *w[32];
    int argc = 0;
    snprintf(words, sizeof(words), "%s", line);
    for (char *p = strtok(words, " "); p != NULL; p = strtok(NULL, " ")) {
        assert_true(argc < 32);
        w[argc++] = p;
    }
    int n = snprintf(buf, sizeof(buf), "*%d\r\n", argc);
    for (int i = 0; i < argc; i++)
        n += snprintf(buf + n, sizeof(buf) - (size_t)n, "$%zu\r\n%s\r\n", strlen(w[i]), w[i]);
    assert_true((size_t)n < sizeof(buf));
    return parse_wire(buf);
}

/* Run one multibulk request through the table. */
static void
run(const char *line)
{
    stages_run(&sess, mk(line));
}

/* Run one inline request ("SET k v\r\n"), raw NULL as the parser gives it. */
static void
run_inline(const char *line)
{
    const struct resp_request *r = parse_wire(line);
    assert_null(r->raw);
    stages_run(&sess, r);
}

/* What the client has read so far. */
static const char *
output(void)
{
    static char buf[2048];
    size_t n = evbuffer_get_length(out);
    assert_true(n < sizeof(buf));
    evbuffer_copyout(out, buf, n);
    buf[n] = '\0';
    return buf;
}

static void
output_clear(void)
{
    evbuffer_drain(out, evbuffer_get_length(out));
}

/* The session, made again (requirepass / deny-commands set by the test first). */
static void
session_fresh(void)
{
    session_deinit(&sess);
    memset(&sess, 0, sizeof(sess));
    session_init(&sess, &px, &sops, &qops, out, "127.0.0.1:50000", "127.0.0.1:6380", false);
    sess.ks = &ks;
    sess.batch = BATCH_A;
}

static int
setup(void **state)
{
    (void)state;
    memset(&px, 0, sizeof(px));
    memset(&fk, 0, sizeof(fk));
    fk.may_pin = true;
    fk.local_answers = true;
    px.base = event_base_new();
    TAILQ_INIT(&px.sessions);
    px.next_client_id = 1;
    px.cfg.batch_max_keys = 128;
    cmdstats_init(&px.cmdstats);
    struct cmd_table *t = cmd_table_builtin();
    cmdstats_assign_table(&px.cmdstats, t);
    stages_set_command_table(&px, t, true);
    ks.db = 0;
    ks.hotkey = (struct hotkey *)&hotkey_obj;
    out = evbuffer_new();
    parser = resp_parser_new();
    memset(&sess, 0, sizeof(sess));
    session_init(&sess, &px, &sops, &qops, out, "127.0.0.1:50000", "127.0.0.1:6380", false);
    sess.ks = &ks;
    sess.batch = BATCH_A;
    trace_clear();
    fwd_len = 0;
    fwd_bytes[0] = '\0';
    nforwards = 0;
    return 0;
}

static int
teardown(void **state)
{
    (void)state;
    sess.pin = NULL;
    session_deinit(&sess);
    session_index_free(&px);
    resp_parser_free(parser);
    evbuffer_free(out);
    cmd_table_free(px.cmds);
    cmdstats_deinit(&px.cmdstats);
    event_base_free(px.base);
    return 0;
}

static int
group_teardown(void **state)
{
    (void)state;
    slot_cache_free_all();
    return 0;
}

/* ---- admission: Redis's errors, AUTH, deny-commands ---------------------- */

static void
test_unknown_command_is_redis_error(void **state)
{
    (void)state;
    run("FOO a b");
    assert_string_equal(output(),
                        "-ERR unknown command 'FOO', with args beginning with: 'a' 'b' \r\n");
    assert_string_equal(trace_buf, ""); /* no stage after admission, nothing forwarded */
    assert_int_equal(nforwards, 0);
    assert_string_equal(sess.last_cmd, "NULL");

    output_clear();
    run("CONFIG NOSUCH");
    assert_string_equal(output(), "-ERR unknown subcommand 'NOSUCH'. Try CONFIG HELP.\r\n");
    assert_string_equal(trace_buf, "");
}

/* Only the built-in table (COMMAND not learned yet): an unknown command goes to Redis. */
static void
test_unknown_command_forwarded_before_table_learned(void **state)
{
    (void)state;
    px.cmds_learned = false;
    run("FOO a");
    assert_string_equal(output(), "");
    assert_string_equal(trace_buf, "fwd_request:FOO");
    assert_string_equal(fwd_bytes, "*2\r\n$3\r\nFOO\r\n$1\r\na\r\n");

    /* not authenticated: Redis's error, nothing forwarded */
    trace_clear();
    sess.authenticated = false;
    run("FOO a");
    assert_string_equal(output(),
                        "-ERR unknown command 'FOO', with args beginning with: 'a' \r\n");
    assert_string_equal(trace_buf, "");
    assert_int_equal(nforwards, 1);
}

static void
test_wrong_arity_is_redis_error(void **state)
{
    (void)state;
    run("GET");
    assert_string_equal(output(), "-ERR wrong number of arguments for 'get' command\r\n");
    output_clear();
    run("SET k");
    assert_string_equal(output(), "-ERR wrong number of arguments for 'set' command\r\n");
    output_clear();
    run("CONFIG GET");
    assert_string_equal(output(), "-ERR wrong number of arguments for 'config|get' command\r\n");
    assert_string_equal(trace_buf, "");
    assert_int_equal(nforwards, 0);
    assert_string_equal(sess.last_cmd, "config|get");
}

static void
test_noauth_when_requirepass_set(void **state)
{
    (void)state;
    px.cfg.requirepass = (char *)"secret";
    session_fresh();
    assert_false(sess.authenticated);
    run("GET k");
    assert_string_equal(output(), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(trace_buf, "");
    output_clear();
    run("BULWARK HOTKEYS"); /* bulwark's own command: the same error, before any stage */
    assert_string_equal(output(), "-NOAUTH Authentication required.\r\n");
    assert_string_equal(trace_buf, "");
    output_clear();
    run("AUTH secret"); /* no_auth: passes admission (local.c answers it) */
    assert_string_equal(trace_buf, "writes_note:auth:shared local_dispatch:auth");
    assert_string_equal(output(), "+LOCAL\r\n");
    assert_int_equal(nforwards, 0);
    px.cfg.requirepass = NULL;
}

static void
test_deny_commands_except_config(void **state)
{
    (void)state;
    char *deny[] = {(char *)"FLUSHALL", (char *)"config"};
    px.cfg.deny_commands = deny;
    px.cfg.deny_commands_count = 2;
    run("flushall");
    assert_string_equal(output(),
                        "-ERR command 'flushall' is disabled in bulwark (deny-commands)\r\n");
    assert_string_equal(trace_buf, "");
    assert_int_equal(nforwards, 0);

    /* CONFIG SET is how deny-commands itself is changed: never denied */
    output_clear();
    run("CONFIG SET deny-commands x");
    assert_string_equal(trace_buf, "writes_note:config|set:shared local_dispatch:config|set");
    assert_string_equal(output(), "+LOCAL\r\n");

    /* denied although the built-in table does not know it (COMMAND not learned) */
    char *deny2[] = {(char *)"foo", (char *)"bulwark"};
    px.cfg.deny_commands = deny2;
    px.cmds_learned = false;
    output_clear();
    trace_clear();
    run("FOO a");
    assert_string_equal(output(),
                        "-ERR command 'FOO' is disabled in bulwark (deny-commands)\r\n");
    assert_int_equal(nforwards, 0);
    output_clear();
    run("BULWARK HOTKEYS"); /* bulwark's own command can be denied too */
    assert_string_equal(output(),
                        "-ERR command 'BULWARK' is disabled in bulwark (deny-commands)\r\n");
    assert_string_equal(trace_buf, "");
    px.cmds_learned = true;
    px.cfg.deny_commands = NULL;
    px.cfg.deny_commands_count = 0;
}

/* ---- GET: writes, gate, hot cache, batcher ------------------------------- */

static void
test_get_stage_order_batcher_takes_it(void **state)
{
    (void)state;
    run("GET k");
    assert_string_equal(trace_buf,
                        "writes_note:get:shared gate_read:get hotkey_get:k batch_get:A:k");
    assert_int_equal(nforwards, 0);
    assert_string_equal(output(), "");
    assert_string_equal(sess.last_cmd, "get");
}

static void
test_get_gate_answers_skips_hot_and_batcher(void **state)
{
    (void)state;
    fk.gate_answers = true;
    run("GET k");
    assert_string_equal(trace_buf, "writes_note:get:shared gate_read:get");
    assert_string_equal(output(), "$-1\r\n");
    assert_int_equal(nforwards, 0);
}

static void
test_get_hot_cache_answers_skips_batcher(void **state)
{
    (void)state;
    fk.hot_answers = true;
    run("GET k");
    assert_string_equal(trace_buf, "writes_note:get:shared gate_read:get hotkey_get:k");
    assert_string_equal(output(), "$3\r\nhot\r\n");
}

static void
test_get_forwarded_without_batching(void **state)
{
    (void)state;
    px.cfg.batch_max_keys = 0;
    run("GET k");
    /* GET is LOCAL_FORWARD: local_dispatch is not asked */
    assert_string_equal(trace_buf, "writes_note:get:shared gate_read:get hotkey_get:k "
                                   "writes_jitter fwd_request:GET");
    assert_string_equal(fwd_bytes, "*2\r\n$3\r\nGET\r\n$1\r\nk\r\n");

    /* no batcher on the session (none made yet): forwarded too */
    trace_clear();
    px.cfg.batch_max_keys = 128;
    sess.batch = NULL;
    run("GET k");
    assert_string_equal(trace_buf, "writes_note:get:shared gate_read:get hotkey_get:k "
                                   "writes_jitter fwd_request:GET");
    assert_int_equal(nforwards, 2);
}

/* ---- SET: writes, then forward (TTL jitter) ------------------------------ */

static void
test_set_notes_write_before_forward(void **state)
{
    (void)state;
    run("SET k v");
    assert_string_equal(trace_buf, "writes_note:set:shared writes_jitter fwd_request:SET");
    assert_string_equal(fwd_bytes, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    assert_string_equal(output(), "");
}

static void
test_set_jitter_forwards_rewritten_bytes(void **state)
{
    (void)state;
    static const char rewritten[] =
        "*5\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n$2\r\nEX\r\n$3\r\n107\r\n";
    fk.jitter_to = rewritten;
    run("SET k v EX 100");
    assert_string_equal(trace_buf, "writes_note:set:shared writes_jitter fwd_send");
    assert_string_equal(fwd_bytes, rewritten);
    assert_int_equal(fwd_len, strlen(rewritten));
}

/* ---- MGET ------------------------------------------------------------------ */

static void
test_mget_to_batcher_with_gate_rest(void **state)
{
    (void)state;
    px.cfg.batch_mget = true;
    run("MGET a b c");
    assert_string_equal(trace_buf, "writes_note:mget:shared gate_read:mget+rest "
                                   "batch_mget:A:all");
    /* the gate knows b absent: a and c are the batcher's to fetch */
    trace_clear();
    fk.gate_rest = "101";
    run("MGET a b c");
    assert_string_equal(trace_buf, "writes_note:mget:shared gate_read:mget+rest "
                                   "batch_mget:A:101");
    assert_int_equal(nforwards, 0);
}

static void
test_mget_forwarded_without_batch_mget(void **state)
{
    (void)state;
    run("MGET a b");
    /* no +rest: the gate answers all or nothing */
    assert_string_equal(trace_buf, "writes_note:mget:shared gate_read:mget writes_jitter "
                                   "fwd_request:MGET");
    /* batch-mget on but batch-max-keys 0: no batcher either */
    trace_clear();
    px.cfg.batch_mget = true;
    px.cfg.batch_max_keys = 0;
    run("MGET a b");
    assert_string_equal(trace_buf, "writes_note:mget:shared gate_read:mget writes_jitter "
                                   "fwd_request:MGET");
}

/* ---- pinned sessions -------------------------------------------------------- */

static void
test_session_start_goes_to_pinstage_request(void **state)
{
    (void)state;
    run("MULTI");
    assert_string_equal(trace_buf, "pinstage_defer_multi:MULTI pinstage_request:multi");
    trace_clear();
    run("BLPOP l 0");
    assert_string_equal(trace_buf, "pinstage_defer_multi:BLPOP pinstage_request:blpop");
    assert_int_equal(nforwards, 0);

    /* in front of a cluster, MULTI waits for its first command (it names the node) */
    trace_clear();
    fk.defer_multi = true;
    run("MULTI");
    assert_string_equal(trace_buf, "pinstage_defer_multi:MULTI");

    /* may not pin (e.g. no dedicated connection allowed): the shared path */
    trace_clear();
    fk.defer_multi = false;
    fk.may_pin = false;
    run("BLPOP l 0");
    assert_string_equal(trace_buf, "writes_note:blpop:shared writes_jitter fwd_request:BLPOP");
}

static void
test_pinned_client_goes_to_pinstage_handle(void **state)
{
    (void)state;
    sess.pin = FAKE_PIN;
    run("GET k");
    assert_string_equal(trace_buf, "pinstage_handle:GET");
    trace_clear();
    run("FOO x"); /* no admission in front of the session: Redis answers */
    assert_string_equal(trace_buf, "pinstage_handle:FOO");
    trace_clear();
    run("BULWARK HOTKEYS"); /* bulwark's stage is skipped for a pinned client */
    assert_string_equal(trace_buf, "pinstage_handle:BULWARK");
    assert_string_equal(output(), "");
    assert_int_equal(nforwards, 0);
    assert_ptr_equal(sess.pin, FAKE_PIN);
}

static void
test_pinned_set_aside_runs_rest_then_resumes(void **state)
{
    (void)state;
    sess.pin = FAKE_PIN;
    fk.pin_sets_aside = true;
    run("CLIENT SETNAME x");
    assert_string_equal(trace_buf, "pinstage_handle:CLIENT writes_note:client|setname:shared "
                                   "local_dispatch:client|setname pinstage_resume");
    assert_string_equal(output(), "+LOCAL\r\n");
    assert_ptr_equal(sess.pin, FAKE_PIN);

    /* what admission refuses in between is answered, and the session resumes */
    trace_clear();
    output_clear();
    run("NOSUCH");
    assert_string_equal(trace_buf, "pinstage_handle:NOSUCH pinstage_resume");
    assert_string_equal(output(),
                        "-ERR unknown command 'NOSUCH', with args beginning with: \r\n");
    assert_ptr_equal(sess.pin, FAKE_PIN);
}

/* A MULTI (answered +OK by bulwark) waiting for its first command in front of a cluster. */
static void
test_deferred_multi_first_command(void **state)
{
    (void)state;
    sess.cl_multi = true;
    fk.deferred_takes = true;
    run("SET k v");
    assert_string_equal(trace_buf, "pinstage_deferred_multi:SET");
    trace_clear();
    fk.deferred_takes = false; /* not taken: the request goes on */
    run("PING");
    assert_string_equal(trace_buf, "pinstage_deferred_multi:PING writes_note:ping:shared "
                                   "local_dispatch:ping");
    sess.cl_multi = false;
    assert_string_equal(output(), "+LOCAL\r\n");
}

static void
test_bulwark_command_reaches_local_bulwark(void **state)
{
    (void)state;
    run("bulwark HOTKEYS 5");
    assert_string_equal(trace_buf, "local_bulwark:HOTKEYS");
    assert_string_equal(output(), "+BULWARK\r\n");
    assert_int_equal(nforwards, 0);
}

static void
test_refused_transaction_routes_to_handle_refused(void **state)
{
    (void)state;
    sess.multi_refused = true;
    fk.refused_takes = true;
    run("SET k v");
    assert_string_equal(trace_buf, "pinstage_handle_refused:SET");
    assert_string_equal(output(),
                        "-EXECABORT Transaction discarded because of previous errors.\r\n");
    assert_int_equal(nforwards, 0);
    /* BULWARK inside the failed transaction is the transaction's too */
    trace_clear();
    run("BULWARK HOTKEYS");
    assert_string_equal(trace_buf, "pinstage_handle_refused:BULWARK");

    /* not taken (WATCH refused, then a request outside MULTI): the table goes on */
    trace_clear();
    sess.multi_refused = false;
    sess.watch_refused = true;
    fk.refused_takes = false;
    run("SET k v");
    assert_string_equal(trace_buf, "pinstage_handle_refused:SET writes_note:set:shared "
                                   "writes_jitter fwd_request:SET");
}

/* ---- holds ----------------------------------------------------------------- */

static void
test_hold_behind_held_gets(void **state)
{
    (void)state;
    struct slot *held = slot_new(&sess.q, SLOT_BATCHED);
    slot_mark_held(held);
    assert_int_equal(sess.q.nheld, 1);

    assert_int_equal(stages_hold(&sess, mk("SET k v")), SESSION_HOLD_BATCH);
    assert_int_equal(sess.hold, SESSION_HOLD_BATCH);
    sess.hold = SESSION_RUN;
    assert_int_equal(stages_hold(&sess, mk("GET k")), SESSION_RUN); /* may run ahead */
    assert_int_equal(stages_hold(&sess, mk("get k")), SESSION_RUN);
    assert_int_equal(stages_hold(&sess, mk("GET k x")), SESSION_HOLD_BATCH); /* not a plain GET */
    sess.hold = SESSION_RUN;
    assert_int_equal(stages_hold(&sess, mk("MGET a b")), SESSION_HOLD_BATCH);
    sess.hold = SESSION_RUN;

    slot_finish(held, "$1\r\nv\r\n", 7);
    assert_int_equal(sess.q.nheld, 0);
    assert_int_equal(stages_hold(&sess, mk("SET k v")), SESSION_RUN);
    assert_string_equal(output(), "$1\r\nv\r\n");
    assert_string_equal(trace_buf, ""); /* holding runs no stage */
    assert_int_equal(px.stats.total_commands, 0);
}

static void
test_hold_batcher_busy_and_sessions(void **state)
{
    (void)state;
    fk.batch_busy = true; /* mget mode: the batcher has the client's GETs */
    assert_int_equal(stages_hold(&sess, mk("DEL k")), SESSION_HOLD_BATCH);
    sess.hold = SESSION_RUN;
    assert_int_equal(stages_hold(&sess, mk("GET k")), SESSION_RUN);
    fk.batch_busy = false;

    /* a session starts while replies are due: drain first */
    struct slot *due = slot_new(&sess.q, SLOT_PLAIN);
    assert_int_equal(stages_hold(&sess, mk("MULTI")), SESSION_HOLD_DRAIN);
    sess.hold = SESSION_RUN;
    assert_int_equal(stages_hold(&sess, mk("SET k v")), SESSION_RUN);
    fk.switches_proto = true;
    assert_int_equal(stages_hold(&sess, mk("HELLO 3")), SESSION_HOLD_DRAIN);
    sess.hold = SESSION_RUN;
    fk.switches_proto = false;
    slot_finish(due, "+OK\r\n", 5);
    assert_int_equal(stages_hold(&sess, mk("MULTI")), SESSION_RUN);

    /* pinned: bulwark's answer waits until the session is idle */
    sess.pin = FAKE_PIN;
    fk.must_wait = true;
    assert_int_equal(stages_hold(&sess, mk("CLIENT ID")), SESSION_HOLD_IDLE);
    sess.hold = SESSION_RUN;
    sess.pin = NULL;
    fk.must_wait = false;

    /* every dedicated connection taken: queued */
    fk.must_queue = true;
    assert_int_equal(stages_hold(&sess, mk("MULTI")), SESSION_HOLD_POOL);
    assert_string_equal(trace_buf, "pinstage_queue");
    sess.hold = SESSION_RUN;
}

/* ---- command table ------------------------------------------------------- */

static void
test_set_command_table_marks_rules(void **state)
{
    (void)state;
    struct cmd_table *t = cmd_table_builtin();
    stages_set_command_table(&px, t, false);
    assert_string_equal(trace_buf, "local_apply_policies gate_apply writes_apply cfwd_apply");
    assert_ptr_equal(px.cmds, t); /* the old one freed (valgrind / asan) */
    assert_false(px.cmds_learned);
    const struct cmd_info *get = cmd_lookup(t, "get", 3), *mget = cmd_lookup(t, "MGET", 4),
                          *set = cmd_lookup(t, "set", 3), *getex = cmd_lookup(t, "getex", 5);
    assert_int_equal(get->rules & (CMD_RULE_GET | CMD_RULE_MGET), CMD_RULE_GET);
    assert_int_equal(mget->rules & (CMD_RULE_GET | CMD_RULE_MGET), CMD_RULE_MGET);
    assert_int_equal(set->rules & (CMD_RULE_GET | CMD_RULE_MGET), 0);
    assert_int_equal(getex->rules & (CMD_RULE_GET | CMD_RULE_MGET), 0);
    assert_int_equal(cmd_lookup(t, "ping", 4)->policy, LOCAL_HANDLER);
    assert_non_null(get->gate);
}

/* ---- counters --------------------------------------------------------------- */

static void
test_total_commands_once_per_request(void **state)
{
    (void)state;
    run("FOO");             /* admission: unknown */
    run("GET");             /* admission: arity */
    run("BULWARK HOTKEYS"); /* bulwark */
    run("GET k");           /* batcher */
    fk.gate_answers = true;
    run("GET k"); /* gate */
    fk.gate_answers = false;
    run("SET k v"); /* forward */
    run("PING");    /* local */
    run("MULTI");   /* pin start */
    sess.pin = FAKE_PIN;
    run("SET k v"); /* pinned */
    fk.pin_sets_aside = true;
    run("CLIENT SETNAME x"); /* pinned, set aside, local, resumed */
    sess.pin = NULL;
    sess.multi_refused = true;
    fk.refused_takes = true;
    run("EXEC"); /* refused */
    assert_int_equal(px.stats.total_commands, 11);
    assert_int_equal(sess.commands, 11);
    (void)stages_hold(&sess, mk("GET k")); /* holding counts nothing */
    assert_int_equal(px.stats.total_commands, 11);
}

/* ---- CLIENT TRACKING around the table ------------------------------------- */

static void
test_tracking_hooks_around_the_table(void **state)
{
    (void)state;
    fk.tracking = true;
    run("GET k");
    /* the read is remembered once its reply has its place (after the gate and
     * the hot cache took the watch in) */
    assert_string_equal(trace_buf, "ctrack_begin writes_note:get:shared gate_read:get "
                                   "hotkey_get:k batch_get:A:k ctrack_read:get ctrack_end:other");
    trace_clear();
    run("client setname x");
    assert_string_equal(trace_buf, "ctrack_begin writes_note:client|setname:shared "
                                   "local_dispatch:client|setname ctrack_read:client|setname "
                                   "ctrack_end:client");
    trace_clear();
    run("GET"); /* answered by admission: ctrack_end still runs */
    assert_string_equal(trace_buf, "ctrack_begin ctrack_end:other");
}

/* ---- in front of a Redis Cluster ------------------------------------------ */

static void
test_cluster_get_batched_per_master(void **state)
{
    (void)state;
    fk.router = true;
    fk.router_b = BATCH_B;
    run("GET foo");
    /* the hot cache first (not hot here), then the batcher of foo's master
     * (slot 12182) */
    assert_int_equal(cluster_keyslot("foo", 3), 12182);
    assert_string_equal(trace_buf, "writes_note:get:shared gate_read:get hotkey_get:foo "
                                   "router_batch:12182 batch_before_forward:A batch_get:B:foo");
    assert_ptr_equal(sess.batch, BATCH_B);
    trace_clear();
    run("GET foo"); /* the same batcher: nothing to flush */
    assert_string_equal(trace_buf, "writes_note:get:shared gate_read:get hotkey_get:foo "
                                   "router_batch:12182 batch_get:B:foo");

    /* a hot key: answered by the hot cache in front of a cluster too */
    trace_clear();
    fk.hot_answers = true;
    run("GET foo");
    assert_string_equal(trace_buf, "writes_note:get:shared gate_read:get hotkey_get:foo");
    fk.hot_answers = false;

    /* an unassigned slot: forwarded */
    trace_clear();
    fk.router_b = NULL;
    run("GET foo");
    assert_string_equal(trace_buf, "writes_note:get:shared gate_read:get hotkey_get:foo "
                                   "router_batch:12182 writes_jitter cfwd_request:get");
    assert_string_equal(fwd_bytes, "*2\r\n$3\r\nGET\r\n$3\r\nfoo\r\n");
}

static void
test_cluster_forward_bytes(void **state)
{
    (void)state;
    fk.router = true;
    run("SET k v");
    assert_string_equal(trace_buf, "writes_note:set:shared writes_jitter cfwd_request:set");
    assert_string_equal(fwd_bytes, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    /* inline: encoded as multibulk first */
    trace_clear();
    run_inline("SET k v\r\n");
    assert_string_equal(trace_buf,
                        "writes_note:set:shared writes_jitter fwd_encode cfwd_request:set");
    assert_string_equal(fwd_bytes, "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n");
    /* jittered: the rewritten bytes, not encoded */
    trace_clear();
    fk.jitter_to = "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nJ\r\n";
    run_inline("SET k v\r\n");
    assert_string_equal(trace_buf, "writes_note:set:shared writes_jitter cfwd_request:set");
    assert_string_equal(fwd_bytes, fk.jitter_to);
}

int
main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_unknown_command_is_redis_error),
        T(test_unknown_command_forwarded_before_table_learned),
        T(test_wrong_arity_is_redis_error),
        T(test_noauth_when_requirepass_set),
        T(test_deny_commands_except_config),
        T(test_get_stage_order_batcher_takes_it),
        T(test_get_gate_answers_skips_hot_and_batcher),
        T(test_get_hot_cache_answers_skips_batcher),
        T(test_get_forwarded_without_batching),
        T(test_set_notes_write_before_forward),
        T(test_set_jitter_forwards_rewritten_bytes),
        T(test_mget_to_batcher_with_gate_rest),
        T(test_mget_forwarded_without_batch_mget),
        T(test_session_start_goes_to_pinstage_request),
        T(test_pinned_client_goes_to_pinstage_handle),
        T(test_pinned_set_aside_runs_rest_then_resumes),
        T(test_deferred_multi_first_command),
        T(test_bulwark_command_reaches_local_bulwark),
        T(test_refused_transaction_routes_to_handle_refused),
        T(test_hold_behind_held_gets),
        T(test_hold_batcher_busy_and_sessions),
        T(test_set_command_table_marks_rules),
        T(test_total_commands_once_per_request),
        T(test_tracking_hooks_around_the_table),
        T(test_cluster_get_batched_per_master),
        T(test_cluster_forward_bytes),
    };
#undef T
    return cmocka_run_group_tests(tests, NULL, group_teardown);
}
