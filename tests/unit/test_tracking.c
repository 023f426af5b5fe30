/*
 * Unit tests of proxy/tracking: CLIENT TRACKING / CACHING / GETREDIR /
 * TRACKINGINFO replies and every invalidation message, byte for byte as
 * observed from redis-server 7.0.15 (raw sockets, RESP2 and RESP3), plus the
 * table's counters, eviction and BCAST batching.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/tracking.h"
#include "proxy/util.h"

#define T_PEERS 512
#define T_LOG 65536

/* The fake client layer: who exists, its protocol and pub/sub state, and
 * every message sent, as "to:bytes" records in one log. */
struct t_env {
    bool exists[T_PEERS]; /* client id -> connected */
    int resp[T_PEERS];    /* 2 or 3 */
    bool pubsub[T_PEERS]; /* subscribed to something */
    char log[T_LOG];      /* records "<id>:<bytes>|" */
    size_t loglen;        /* bytes in log */
    unsigned sends;       /* send calls */
};

static struct t_env env;

static bool
t_lookup(void *arg, uint64_t id, struct tracking_peer *out)
{
    struct t_env *e = arg;
    if (id >= T_PEERS || !e->exists[id])
        return false;
    out->resp = e->resp[id];
    out->pubsub = e->pubsub[id];
    return true;
}

static void
t_send(void *arg, uint64_t to, const char *bytes, size_t len)
{
    struct t_env *e = arg;
    int n = snprintf(e->log + e->loglen, T_LOG - e->loglen, "%llu:", (unsigned long long)to);
    assert_true(n > 0 && e->loglen + (size_t)n + len + 1 < T_LOG);
    e->loglen += (size_t)n;
    memcpy(e->log + e->loglen, bytes, len);
    e->loglen += len;
    e->log[e->loglen++] = '|';
    e->sends++;
}

/* A fresh module and environment; ids 1..40 exist, RESP2, not subscribed. */
static struct tracking *
t_new(void)
{
    memset(&env, 0, sizeof(env));
    for (int i = 1; i < T_PEERS; i++) {
        env.exists[i] = i <= 40 || (i >= 250 && i <= 300);
        env.resp[i] = 2;
    }
    return tracking_new(t_lookup, t_send, &env);
}

/* The log since the last call (then cleared). */
static void
t_expect_log(const char *want)
{
    assert_int_equal(env.loglen, strlen(want));
    assert_memory_equal(env.log, want, env.loglen);
    env.loglen = 0;
}

/*
 * Run "client <words>" for id in protocol resp and compare the reply.
 * Words are separated by single spaces; "''" stands for an empty argument.
 */
static void
t_cmd(struct tracking *t, uint64_t id, int resp, const char *words, const char *want)
{
    char buf[512];
    struct tracking_arg argv[32];
    int argc = 0;
    snprintf(buf, sizeof(buf), "client %s", words);
    for (char *p = buf, *sp; p != NULL; p = sp) {
        sp = strchr(p, ' ');
        if (sp != NULL)
            *sp++ = '\0';
        argv[argc].ptr = p;
        argv[argc].len = strcmp(p, "''") == 0 ? 0 : strlen(p);
        argc++;
    }
    char *reply = NULL;
    size_t len = 0;
    assert_true(tracking_command(t, id, resp, argc, argv, &reply, &len));
    if (len != strlen(want) || memcmp(reply, want, len) != 0)
        fail_msg("client %s:\n got  %.*s\n want %s", words, (int)len, reply, want);
    bw_free(reply);
}

static void
t_read(struct tracking *t, uint64_t id, const char *key)
{
    struct tracking_arg k = {key, strlen(key)};
    tracking_remember_keys(t, id, &k, 1);
    tracking_after_command(t, id, false, false);
}

static void
t_change(struct tracking *t, const char *key, uint64_t writer)
{
    tracking_key_changed(t, key, strlen(key), writer);
}

#define ERR_NOREDIR "-ERR The client ID you want redirect to does not exist\r\n"
#define ERR_SYNTAX "-ERR syntax error\r\n"
#define ERR_CACHING_OFF                                                                         \
    "-ERR CLIENT CACHING can be called only when the client is in tracking mode with OPTIN or " \
    "OPTOUT mode enabled\r\n"
#define ERR_CACHING_YES \
    "-ERR CLIENT CACHING YES is only valid when tracking is enabled in OPTIN mode.\r\n"
#define ERR_CACHING_NO \
    "-ERR CLIENT CACHING NO is only valid when tracking is enabled in OPTOUT mode.\r\n"
#define ERR_BCAST_SWITCH                                                                           \
    "-ERR You can't switch BCAST mode on/off before disabling tracking for this client, and then " \
    "re-enabling it with a different mode.\r\n"
#define ERR_OPT_SWITCH                                                                        \
    "-ERR You can't switch OPTIN/OPTOUT mode before disabling tracking for this client, and " \
    "then re-enabling it with a different mode.\r\n"
#define OVERLAP_END ". Prefixes for a single client must not overlap.\r\n"
#define INFO_OFF \
    "*6\r\n$5\r\nflags\r\n*1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n"

/* Every argument error of CLIENT TRACKING, in Redis's order of checks. */
static void
test_tracking_errors(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    t_cmd(t, 3, 2, "tracking",
          "-ERR wrong number of arguments for 'client|tracking' command\r\n");
    t_cmd(t, 3, 2, "tracking maybe", ERR_SYNTAX);
    t_cmd(t, 3, 2, "tracking on redirect", ERR_SYNTAX);
    t_cmd(t, 3, 2, "tracking on redirect abc",
          "-ERR value is not an integer or out of range\r\n");
    t_cmd(t, 3, 2, "tracking on redirect 01", "-ERR value is not an integer or out of range\r\n");
    t_cmd(t, 3, 2, "tracking on redirect -0", "-ERR value is not an integer or out of range\r\n");
    t_cmd(t, 3, 2, "tracking on redirect +5", "-ERR value is not an integer or out of range\r\n");
    t_cmd(t, 3, 2, "tracking on redirect 99999999999999999999",
          "-ERR value is not an integer or out of range\r\n");
    t_cmd(t, 3, 2, "tracking on redirect -9223372036854775808", ERR_NOREDIR);
    t_cmd(t, 3, 2, "tracking on redirect 9223372036854775807", ERR_NOREDIR);
    t_cmd(t, 3, 2, "tracking on redirect 999999", ERR_NOREDIR);
    t_cmd(t, 3, 2, "tracking on redirect 0", ERR_NOREDIR);
    t_cmd(t, 3, 2, "tracking on redirect -5", ERR_NOREDIR);
    t_cmd(t, 3, 2, "tracking off redirect 999999", ERR_NOREDIR);
    t_cmd(t, 3, 2, "tracking on redirect 5 redirect 5",
          "-ERR A client can only redirect to a single other client\r\n");
    t_cmd(t, 3, 2, "tracking on prefix a",
          "-ERR PREFIX option requires BCAST mode to be enabled\r\n");
    t_cmd(t, 3, 2, "tracking on prefix", ERR_SYNTAX);
    t_cmd(t, 3, 2, "tracking on foo", ERR_SYNTAX);
    t_cmd(t, 3, 2, "tracking maybe foo", ERR_SYNTAX);
    t_cmd(t, 3, 2, "tracking maybe bcast", ERR_SYNTAX);
    t_cmd(t, 3, 2, "tracking maybe prefix a", ERR_SYNTAX);
    t_cmd(t, 3, 2, "tracking on bcast optin",
          "-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n");
    t_cmd(t, 3, 2, "tracking on optin optout",
          "-ERR You can't specify both OPTIN mode and OPTOUT mode\r\n");
    t_cmd(t, 3, 2, "tracking on bcast optin optout",
          "-ERR OPTIN and OPTOUT are not compatible with BCAST\r\n");
    t_cmd(t, 3, 2, "caching yes", ERR_CACHING_OFF);
    t_cmd(t, 3, 2, "caching maybe", ERR_CACHING_OFF);
    t_cmd(t, 3, 2, "caching", "-ERR wrong number of arguments for 'client|caching' command\r\n");
    t_cmd(t, 3, 2, "getredir x",
          "-ERR wrong number of arguments for 'client|getredir' command\r\n");
    t_cmd(t, 3, 2, "trackinginfo x",
          "-ERR wrong number of arguments for 'client|trackinginfo' command\r\n");
    t_cmd(t, 3, 2, "getredir", ":-1\r\n");
    t_cmd(t, 3, 2, "trackinginfo", INFO_OFF);
    /* nothing of the failed commands stuck */
    struct tracking_counts n;
    tracking_counts(t, &n);
    assert_int_equal(n.clients, 0);
    assert_int_equal(n.prefixes, 0);
    /* other CLIENT subcommands are not the module's */
    struct tracking_arg a[2] = {{"client", 6}, {"list", 4}};
    char *reply = NULL;
    size_t len = 0;
    assert_false(tracking_command(t, 3, 2, 2, a, &reply, &len));
    tracking_free(t);
}

/* Mode switches, CACHING and TRACKINGINFO flag lists (RESP2). */
static void
test_modes_caching_trackinginfo(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    t_cmd(t, 3, 2, "tracking on", "+OK\r\n");
    t_cmd(t, 3, 2, "caching yes", ERR_CACHING_YES);
    t_cmd(t, 3, 2, "caching no", ERR_CACHING_NO);
    t_cmd(t, 3, 2, "caching maybe", ERR_SYNTAX);
    t_cmd(t, 3, 2, "tracking on bcast", ERR_BCAST_SWITCH);
    t_cmd(t, 3, 2, "tracking on optin", "+OK\r\n");
    t_cmd(t, 3, 2, "caching yes", "+OK\r\n");
    t_cmd(t, 3, 2, "trackinginfo",
          "*6\r\n$5\r\nflags\r\n*3\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n"
          "$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n");
    t_cmd(t, 3, 2, "caching no", ERR_CACHING_NO);
    t_cmd(t, 3, 2, "tracking on optout", ERR_OPT_SWITCH);
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    t_cmd(t, 3, 2, "tracking on optout noloop redirect 5", "+OK\r\n");
    t_cmd(t, 3, 2, "tracking on optin", ERR_OPT_SWITCH);
    t_cmd(t, 3, 2, "caching no", "+OK\r\n");
    t_cmd(t, 3, 2, "trackinginfo",
          "*6\r\n$5\r\nflags\r\n*4\r\n$2\r\non\r\n$6\r\noptout\r\n$10\r\ncaching-no\r\n"
          "$6\r\nnoloop\r\n$8\r\nredirect\r\n:5\r\n$8\r\nprefixes\r\n*0\r\n");
    t_cmd(t, 3, 2, "getredir", ":5\r\n");
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    t_cmd(t, 3, 2, "getredir", ":-1\r\n");
    t_cmd(t, 3, 2, "tracking on", "+OK\r\n");
    t_cmd(t, 3, 2, "getredir", ":0\r\n");
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    t_cmd(t, 3, 2, "tracking on bcast prefix FOO prefix BAR", "+OK\r\n");
    t_cmd(t, 3, 2, "tracking on optin", ERR_BCAST_SWITCH);
    t_cmd(t, 3, 2, "tracking ON BCAST PREFIX k NOLOOP REDIRECT 5", "+OK\r\n");
    t_cmd(
        t, 3, 2, "trackinginfo",
        "*6\r\n$5\r\nflags\r\n*3\r\n$2\r\non\r\n$5\r\nbcast\r\n$6\r\nnoloop\r\n"
        "$8\r\nredirect\r\n:5\r\n$8\r\nprefixes\r\n*3\r\n$3\r\nBAR\r\n$3\r\nFOO\r\n$1\r\nk\r\n");
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    /* RESP3: a map, and the flags as a set */
    t_cmd(
        t, 3, 3, "trackinginfo",
        "%3\r\n$5\r\nflags\r\n~1\r\n$3\r\noff\r\n$8\r\nredirect\r\n:-1\r\n$8\r\nprefixes\r\n*0\r\n");
    t_cmd(t, 3, 3, "tracking on optin redirect 5", "+OK\r\n");
    t_cmd(t, 3, 3, "caching yes", "+OK\r\n");
    t_cmd(t, 3, 3, "trackinginfo",
          "%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n"
          "$8\r\nredirect\r\n:5\r\n$8\r\nprefixes\r\n*0\r\n");
    t_cmd(t, 3, 3, "tracking off", "+OK\r\n");
    t_cmd(t, 3, 3, "tracking on bcast prefix b prefix a", "+OK\r\n");
    t_cmd(t, 3, 3, "trackinginfo",
          "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n"
          "$8\r\nprefixes\r\n*2\r\n$1\r\na\r\n$1\r\nb\r\n");
    tracking_free(t);
}

/* Prefix overlap checks, the double reply quirk, the empty prefix. */
static void
test_prefix_overlaps(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    t_cmd(t, 3, 2, "tracking on bcast prefix FOOBAR prefix FOO",
          "-ERR Prefix 'FOOBAR' overlaps with another provided prefix 'FOO'" OVERLAP_END);
    t_cmd(t, 3, 2, "tracking on bcast prefix FOO prefix FOOBAR",
          "-ERR Prefix 'FOO' overlaps with another provided prefix 'FOOBAR'" OVERLAP_END);
    t_cmd(t, 3, 2, "tracking on bcast prefix a prefix a",
          "-ERR Prefix 'a' overlaps with another provided prefix 'a'" OVERLAP_END);
    t_cmd(t, 3, 2, "tracking on bcast prefix '' prefix a",
          "-ERR Prefix '' overlaps with another provided prefix 'a'" OVERLAP_END);
    t_cmd(t, 3, 2, "trackinginfo", INFO_OFF);
    t_cmd(t, 3, 2, "tracking on bcast prefix FOO prefix BAR", "+OK\r\n");
    t_cmd(t, 3, 2, "tracking on bcast prefix FO",
          "-ERR Prefix 'FO' overlaps with an existing prefix 'FOO'" OVERLAP_END);
    t_cmd(t, 3, 2, "tracking on bcast prefix BARB",
          "-ERR Prefix 'BARB' overlaps with an existing prefix 'BAR'" OVERLAP_END);
    t_cmd(t, 3, 2, "tracking on bcast prefix FOO",
          "-ERR Prefix 'FOO' overlaps with an existing prefix 'FOO'" OVERLAP_END);
    t_cmd(t, 3, 2, "tracking on bcast prefix ZED", "+OK\r\n");
    t_cmd(t, 3, 2, "trackinginfo",
          "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n"
          "$8\r\nprefixes\r\n*3\r\n$3\r\nBAR\r\n$3\r\nFOO\r\n$3\r\nZED\r\n");
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    /* Redis 7.0: an overlap found at the second given prefix or later
     * replies the error, then enables tracking anyway and replies +OK. */
    t_cmd(t, 3, 2, "tracking on bcast prefix x prefix a prefix ab",
          "-ERR Prefix 'a' overlaps with another provided prefix 'ab'" OVERLAP_END "+OK\r\n");
    t_cmd(t, 3, 2, "trackinginfo",
          "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n"
          "$8\r\nprefixes\r\n*3\r\n$1\r\na\r\n$2\r\nab\r\n$1\r\nx\r\n");
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    t_cmd(t, 3, 2, "tracking on bcast prefix x prefix x",
          "-ERR Prefix 'x' overlaps with another provided prefix 'x'" OVERLAP_END);
    t_cmd(t, 3, 2, "tracking on bcast", "+OK\r\n");
    t_cmd(t, 3, 2, "trackinginfo",
          "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n"
          "$8\r\nprefixes\r\n*1\r\n$0\r\n\r\n");
    t_cmd(t, 3, 2, "tracking on bcast prefix q",
          "-ERR Prefix 'q' overlaps with an existing prefix ''" OVERLAP_END);
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    /* Plain BCAST again while BCAST with prefixes adds the empty prefix. */
    t_cmd(t, 3, 2, "tracking on bcast prefix q", "+OK\r\n");
    t_cmd(t, 3, 2, "tracking on bcast", "+OK\r\n");
    t_cmd(t, 3, 3, "trackinginfo",
          "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\nbcast\r\n$8\r\nredirect\r\n:0\r\n"
          "$8\r\nprefixes\r\n*2\r\n$0\r\n\r\n$1\r\nq\r\n");
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    /* %s in the error: a prefix stops at its NUL; CR/LF become spaces. */
    struct tracking_arg a[7] = {{"client", 6}, {"tracking", 8}, {"on", 2},    {"bcast", 5},
                                {"prefix", 6}, {"a\0b", 3},     {"prefix", 6}};
    struct tracking_arg argv[8];
    memcpy(argv, a, sizeof(a));
    argv[7] = (struct tracking_arg){"a", 1};
    char *reply;
    size_t len;
    assert_true(tracking_command(t, 3, 2, 8, argv, &reply, &len));
    const char *want = "-ERR Prefix 'a' overlaps with another provided prefix 'a'" OVERLAP_END;
    assert_int_equal(len, strlen(want));
    assert_memory_equal(reply, want, len);
    bw_free(reply);
    argv[5] = (struct tracking_arg){"a\r\nb", 4};
    argv[7] = (struct tracking_arg){"a\r", 2};
    assert_true(tracking_command(t, 3, 2, 8, argv, &reply, &len));
    want = "-ERR Prefix 'a  b' overlaps with another provided prefix 'a '" OVERLAP_END;
    assert_int_equal(len, strlen(want));
    assert_memory_equal(reply, want, len);
    bw_free(reply);
    tracking_free(t);
}

#define PUSH_HDR ">2\r\n$10\r\ninvalidate\r\n"
#define MSG_HDR "*3\r\n$7\r\nmessage\r\n$20\r\n__redis__:invalidate\r\n"

/* Default mode, RESP3 client: one push per key; own writes too. */
static void
test_default_mode_push(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    env.resp[3] = 3;
    t_cmd(t, 3, 3, "tracking on", "+OK\r\n");
    t_read(t, 3, "key1");
    t_change(t, "key1", 9);
    t_expect_log("3:" PUSH_HDR "*1\r\n$4\r\nkey1\r\n|");
    t_change(t, "key1", 9); /* dropped after the first change */
    t_expect_log("");
    struct tracking_arg mget[2] = {{"k1", 2}, {"k2", 2}};
    tracking_remember_keys(t, 3, mget, 2);
    /* MSET k1 x k2 y zz 1: one message per tracked key, in change order */
    t_change(t, "k1", 9);
    t_change(t, "k2", 9);
    t_change(t, "zz", 9);
    t_expect_log("3:" PUSH_HDR "*1\r\n$2\r\nk1\r\n|3:" PUSH_HDR "*1\r\n$2\r\nk2\r\n|");
    /* its own write: told too, after its command (7.0.15: "+OK" then the
     * push; MSET k2 1 k1 2: +OK, then k2's push, then k1's) */
    t_read(t, 3, "key1");
    t_change(t, "key1", 3);
    t_expect_log("");
    tracking_after_command(t, 3, false, false);
    t_expect_log("3:" PUSH_HDR "*1\r\n$4\r\nkey1\r\n|");
    tracking_remember_keys(t, 3, mget, 2);
    t_change(t, "k2", 3);
    t_change(t, "k1", 3);
    t_expect_log("");
    tracking_after_command(t, 3, false, false);
    t_expect_log("3:" PUSH_HDR "*1\r\n$2\r\nk2\r\n|3:" PUSH_HDR "*1\r\n$2\r\nk1\r\n|");
    /* NOLOOP: not for its own change, but for others' */
    t_cmd(t, 3, 3, "tracking on noloop", "+OK\r\n");
    t_read(t, 3, "key1");
    t_change(t, "key1", 3);
    t_expect_log("");
    t_read(t, 3, "key1");
    t_change(t, "key1", TRACKING_WRITER_NONE);
    t_expect_log("3:" PUSH_HDR "*1\r\n$4\r\nkey1\r\n|");
    /* a RESP2 client without REDIRECT gets nothing; the key still leaves */
    t_cmd(t, 4, 2, "tracking on", "+OK\r\n");
    t_read(t, 4, "k4");
    t_change(t, "k4", 9);
    t_expect_log("");
    struct tracking_counts n;
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 0);
    /* binary key names */
    struct tracking_arg bin = {"a\0\r\nb", 5};
    tracking_remember_keys(t, 3, &bin, 1);
    tracking_key_changed(t, bin.ptr, bin.len, 9);
    const char want[] = "3:" PUSH_HDR "*1\r\n$5\r\na\0\r\nb\r\n|";
    assert_int_equal(env.loglen, sizeof(want) - 1);
    assert_memory_equal(env.log, want, sizeof(want) - 1);
    env.loglen = 0;
    tracking_free(t);
}

/* REDIRECT: RESP2 pub/sub messages, RESP3 targets, flush nulls. */
static void
test_redirect_forms(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    env.pubsub[7] = true; /* subscribed to __redis__:invalidate */
    t_cmd(t, 8, 2, "tracking on redirect 7", "+OK\r\n");
    t_read(t, 8, "key1");
    t_change(t, "key1", 2);
    t_expect_log("7:" MSG_HDR "*1\r\n$4\r\nkey1\r\n|");
    tracking_flushed(t, TRACKING_WRITER_NONE);
    t_expect_log("7:" MSG_HDR "$-1\r\n|");
    t_cmd(t, 8, 2, "tracking off", "+OK\r\n");
    /* a RESP3 tracking client redirecting to a RESP2 subscriber: its own
     * null (_) inside the RESP2 message, as Redis 7.0 sends it */
    env.resp[6] = 3;
    t_cmd(t, 6, 3, "tracking on redirect 7", "+OK\r\n");
    tracking_flushed(t, TRACKING_WRITER_NONE);
    t_expect_log("7:" MSG_HDR "_\r\n|");
    t_read(t, 6, "key1");
    t_change(t, "key1", 2);
    t_expect_log("7:" MSG_HDR "*1\r\n$4\r\nkey1\r\n|");
    t_cmd(t, 6, 3, "tracking off", "+OK\r\n");
    /* to a RESP2 client that is not subscribed: nothing */
    t_cmd(t, 6, 3, "tracking on redirect 10", "+OK\r\n");
    t_read(t, 6, "key1");
    t_change(t, "key1", 2);
    t_expect_log("");
    t_cmd(t, 6, 3, "tracking off", "+OK\r\n");
    /* subscribed to any other channel is enough */
    env.pubsub[11] = true;
    t_cmd(t, 6, 3, "tracking on redirect 11", "+OK\r\n");
    t_read(t, 6, "key1");
    t_change(t, "key1", 2);
    t_expect_log("11:" MSG_HDR "*1\r\n$4\r\nkey1\r\n|");
    t_cmd(t, 6, 3, "tracking off", "+OK\r\n");
    /* a RESP2 tracking client redirecting to a RESP3 client, subscribed or
     * not: a push, and the RESP2 null on flush */
    env.resp[12] = 3;
    t_cmd(t, 8, 2, "tracking on redirect 12", "+OK\r\n");
    t_read(t, 8, "key1");
    t_change(t, "key1", 2);
    t_expect_log("12:" PUSH_HDR "*1\r\n$4\r\nkey1\r\n|");
    tracking_flushed(t, TRACKING_WRITER_NONE);
    t_expect_log("12:" PUSH_HDR "$-1\r\n|");
    /* several clients redirecting to one: one message each */
    t_cmd(t, 8, 2, "tracking on redirect 7", "+OK\r\n");
    t_cmd(t, 9, 2, "tracking on redirect 7", "+OK\r\n");
    t_read(t, 8, "key1{t}");
    t_read(t, 9, "key2{t}");
    t_change(t, "key1{t}", 2);
    t_change(t, "key2{t}", 2);
    t_expect_log("7:" MSG_HDR "*1\r\n$7\r\nkey1{t}\r\n|7:" MSG_HDR "*1\r\n$7\r\nkey2{t}\r\n|");
    tracking_free(t);
}

/* A REDIRECT client shared by the writer and others: the writer's own
 * messages come after the others' (7.0.15, a=12 b=13 c=14 -> sub 7). */
static void
test_own_changes_held_until_after_command(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    env.pubsub[7] = true;
    env.resp[14] = 3;
    t_cmd(t, 12, 2, "tracking on redirect 7", "+OK\r\n");
    t_cmd(t, 13, 2, "tracking on redirect 7", "+OK\r\n");
    struct tracking_arg mget[2] = {{"k1", 2}, {"k2", 2}};
    tracking_remember_keys(t, 12, mget, 2);
    tracking_remember_keys(t, 13, mget, 2);
    /* a: MSET k1 1 k2 2 */
    t_change(t, "k1", 12);
    t_change(t, "k2", 12);
    tracking_after_command(t, 12, false, false);
    t_expect_log("7:" MSG_HDR "*1\r\n$2\r\nk1\r\n|7:" MSG_HDR "*1\r\n$2\r\nk2\r\n|"
                 "7:" MSG_HDR "*1\r\n$2\r\nk1\r\n|7:" MSG_HDR "*1\r\n$2\r\nk2\r\n|");
    /* c (RESP3) joins; a: FLUSHALL -> b's null, c's, then a's */
    t_cmd(t, 14, 3, "tracking on redirect 7", "+OK\r\n");
    tracking_flushed(t, 12);
    t_expect_log("7:" MSG_HDR "$-1\r\n|7:" MSG_HDR "_\r\n|");
    tracking_after_command(t, 12, false, false);
    t_expect_log("7:" MSG_HDR "$-1\r\n|");
    /* another client's after_command does not release a's */
    tracking_remember_keys(t, 12, mget, 1);
    t_change(t, "k1", 12);
    tracking_after_command(t, 13, false, false);
    t_expect_log("");
    tracking_after_command(t, 12, false, false);
    t_expect_log("7:" MSG_HDR "*1\r\n$2\r\nk1\r\n|");
    /* a closing with messages held: dropped */
    tracking_remember_keys(t, 12, mget, 1);
    t_change(t, "k1", 12);
    env.exists[12] = false;
    tracking_client_gone(t, 12);
    tracking_after_command(t, 12, false, false);
    t_expect_log("");
    /* a write by a client that is not tracking the key: nothing held */
    tracking_remember_keys(t, 13, mget, 1);
    t_change(t, "k1", 14);
    t_expect_log("7:" MSG_HDR "*1\r\n$2\r\nk1\r\n|");
    tracking_free(t);
}

/* Clients of one key are told in the byte order of their little-endian ids
 * (Redis's rax of ids): 7.0.15 with X = 3072 (0xc00) redirecting to a gone
 * client and Y = 3071 (0xbff) redirecting to X sent X its broken notice
 * first, then Y's invalidation. Here X = 256, Y = 255. */
static void
test_clients_of_a_key_in_rax_order(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    env.resp[256] = 3;
    t_cmd(t, 256, 3, "tracking on redirect 300", "+OK\r\n");
    t_cmd(t, 255, 2, "tracking on redirect 256", "+OK\r\n");
    t_read(t, 256, "kk");
    t_read(t, 255, "kk");
    env.exists[300] = false;
    t_change(t, "kk", 2);
    t_expect_log("256:>2\r\n$21\r\ntracking-redir-broken\r\n:300\r\n|256:" PUSH_HDR
                 "*1\r\n$2\r\nkk\r\n|");
    tracking_free(t);
}

/* The redirect client gone: tracking-redir-broken at every delivery. */
static void
test_broken_redirect(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    env.resp[3] = 3;
    env.pubsub[7] = true;
    t_cmd(t, 3, 3, "tracking on redirect 13", "+OK\r\n");
    t_read(t, 3, "key1");
    env.exists[13] = false;
    t_change(t, "key1", 2);
    t_expect_log("3:>2\r\n$21\r\ntracking-redir-broken\r\n:13\r\n|");
    t_cmd(t, 3, 3, "trackinginfo",
          "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n"
          ":13\r\n$8\r\nprefixes\r\n*0\r\n");
    t_read(t, 3, "key1");
    t_change(t, "key1", 2);
    t_expect_log("3:>2\r\n$21\r\ntracking-redir-broken\r\n:13\r\n|");
    tracking_flushed(t, TRACKING_WRITER_NONE);
    t_expect_log("3:>2\r\n$21\r\ntracking-redir-broken\r\n:13\r\n|");
    t_cmd(t, 3, 3, "getredir", ":13\r\n");
    /* re-enabling clears the flag */
    t_cmd(t, 3, 3, "tracking on redirect 7", "+OK\r\n");
    t_cmd(
        t, 3, 3, "trackinginfo",
        "%3\r\n$5\r\nflags\r\n~1\r\n$2\r\non\r\n$8\r\nredirect\r\n:7\r\n$8\r\nprefixes\r\n*0\r\n");
    /* RESP2: flagged, nothing sent */
    env.exists[14] = true;
    t_cmd(t, 4, 2, "tracking on redirect 14", "+OK\r\n");
    env.exists[14] = false;
    t_read(t, 4, "k");
    t_change(t, "k", 2);
    t_expect_log("");
    t_cmd(t, 4, 2, "trackinginfo",
          "*6\r\n$5\r\nflags\r\n*2\r\n$2\r\non\r\n$15\r\nbroken_redirect\r\n$8\r\nredirect\r\n"
          ":14\r\n$8\r\nprefixes\r\n*0\r\n");
    tracking_free(t);
}

/* BCAST: one message per prefix per flush, keys sorted and deduplicated. */
static void
test_bcast_batching(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    env.pubsub[7] = true;
    t_cmd(t, 3, 2, "tracking on bcast redirect 7 prefix b: prefix a:", "+OK\r\n");
    /* MULTI INCR a:2 a:1 b:1 c:1 a:10 a:1 EXEC */
    const char *keys[] = {"a:2", "a:1", "b:1", "c:1", "a:10", "a:1"};
    for (size_t i = 0; i < 6; i++)
        t_change(t, keys[i], 2);
    t_expect_log("");
    tracking_bcast_flush(t);
    t_expect_log("7:" MSG_HDR "*3\r\n$3\r\na:1\r\n$4\r\na:10\r\n$3\r\na:2\r\n|"
                 "7:" MSG_HDR "*1\r\n$3\r\nb:1\r\n|");
    tracking_bcast_flush(t);
    t_expect_log("");
    t_change(t, "b:z", 2);
    t_change(t, "b:a", 2);
    t_change(t, "b:ab", 2);
    tracking_bcast_flush(t);
    t_expect_log("7:" MSG_HDR "*3\r\n$3\r\nb:a\r\n$4\r\nb:ab\r\n$3\r\nb:z\r\n|");
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    /* overlapping "" and q (plain BCAST added ""): two messages */
    env.resp[4] = 3;
    t_cmd(t, 4, 3, "tracking on bcast prefix q", "+OK\r\n");
    t_cmd(t, 4, 3, "tracking on bcast", "+OK\r\n");
    t_change(t, "qx", 2);
    tracking_bcast_flush(t);
    t_expect_log("4:" PUSH_HDR "*1\r\n$2\r\nqx\r\n|4:" PUSH_HDR "*1\r\n$2\r\nqx\r\n|");
    t_change(t, "zz", 2);
    tracking_bcast_flush(t);
    t_expect_log("4:" PUSH_HDR "*1\r\n$2\r\nzz\r\n|");
    t_cmd(t, 4, 3, "tracking off", "+OK\r\n");
    /* NOLOOP: keys it changed last are left out; nothing when none left */
    t_cmd(t, 5, 2, "tracking on bcast redirect 7 noloop", "+OK\r\n");
    t_change(t, "otherkey1", 9);
    t_change(t, "loopkey", 5);
    t_change(t, "otherkey2", 9);
    tracking_bcast_flush(t);
    t_expect_log("7:" MSG_HDR "*2\r\n$9\r\notherkey1\r\n$9\r\notherkey2\r\n|");
    t_change(t, "loopkey", 5);
    tracking_bcast_flush(t);
    t_expect_log("");
    t_change(t, "x", 5);
    t_change(t, "x", 9); /* the last writer counts */
    t_change(t, "y", 9);
    t_change(t, "y", 5);
    tracking_bcast_flush(t);
    t_expect_log("7:" MSG_HDR "*1\r\n$1\r\nx\r\n|");
    /* the prefix goes with its last client; queued keys with it */
    t_change(t, "z", 9);
    t_cmd(t, 5, 2, "tracking off", "+OK\r\n");
    tracking_bcast_flush(t);
    t_expect_log("");
    struct tracking_counts n;
    tracking_counts(t, &n);
    assert_int_equal(n.prefixes, 0);
    tracking_free(t);
}

/* Off and on again (same id): keys read before still count (7.0.15 sent
 * the push); a key changed while off is gone for good. */
static void
test_off_on_keeps_old_keys(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    env.resp[3] = 3;
    t_cmd(t, 3, 3, "tracking on", "+OK\r\n");
    t_read(t, 3, "old");
    t_cmd(t, 3, 3, "tracking off", "+OK\r\n");
    t_cmd(t, 3, 3, "tracking on", "+OK\r\n");
    t_change(t, "old", 2);
    t_expect_log("3:" PUSH_HDR "*1\r\n$3\r\nold\r\n|");
    t_read(t, 3, "old2");
    t_cmd(t, 3, 3, "tracking off", "+OK\r\n");
    t_change(t, "old2", 2);
    t_expect_log("");
    t_cmd(t, 3, 3, "tracking on", "+OK\r\n");
    t_change(t, "old2", 2);
    t_expect_log("");
    tracking_free(t);
}

/* After switching to BCAST, keys read before are not sent (stale ids). */
static void
test_switch_to_bcast_drops_old_keys(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    env.resp[3] = 3;
    t_cmd(t, 3, 3, "tracking on", "+OK\r\n");
    t_read(t, 3, "key1");
    t_cmd(t, 3, 3, "tracking off", "+OK\r\n");
    t_cmd(t, 3, 3, "tracking on bcast", "+OK\r\n");
    t_change(t, "key1", 2);
    t_expect_log("");
    tracking_bcast_flush(t);
    t_expect_log("3:" PUSH_HDR "*1\r\n$4\r\nkey1\r\n|");
    /* BCAST clients remember no keys */
    t_read(t, 3, "key2");
    struct tracking_counts n;
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 0);
    tracking_free(t);
}

/* OPTIN / OPTOUT with CACHING: next command only, MULTI, CLIENT commands. */
static void
test_optin_optout_caching(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    struct tracking_counts n;
    env.resp[3] = 3;
    t_cmd(t, 3, 3, "tracking on optin", "+OK\r\n");
    t_read(t, 3, "k0"); /* no CACHING yes: not remembered */
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 0);
    t_cmd(t, 3, 3, "caching yes", "+OK\r\n");
    tracking_after_command(t, 3, false, true);
    /* CLIENT ID between: a CLIENT command keeps the flag (resetClient) */
    tracking_after_command(t, 3, false, true);
    t_read(t, 3, "k1");
    t_read(t, 3, "k2"); /* flag gone after k1's command */
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 1);
    /* CACHING yes then PING: gone */
    t_cmd(t, 3, 3, "caching yes", "+OK\r\n");
    tracking_after_command(t, 3, false, true);
    tracking_after_command(t, 3, false, false);
    t_cmd(t, 3, 3, "trackinginfo",
          "%3\r\n$5\r\nflags\r\n~2\r\n$2\r\non\r\n$5\r\noptin\r\n$8\r\nredirect\r\n:0\r\n"
          "$8\r\nprefixes\r\n*0\r\n");
    /* re-enabling keeps CACHING (enableTracking does not clear it) */
    t_cmd(t, 3, 3, "caching yes", "+OK\r\n");
    t_cmd(t, 3, 3, "tracking on optin", "+OK\r\n");
    t_cmd(t, 3, 3, "trackinginfo",
          "%3\r\n$5\r\nflags\r\n~3\r\n$2\r\non\r\n$5\r\noptin\r\n$11\r\ncaching-yes\r\n"
          "$8\r\nredirect\r\n:0\r\n$8\r\nprefixes\r\n*0\r\n");
    /* CACHING yes, MULTI, GET m2, GET m3, EXEC: both remembered */
    tracking_after_command(t, 3, true, false); /* MULTI */
    tracking_after_command(t, 3, true, false); /* GET m2 queued */
    tracking_after_command(t, 3, true, false); /* GET m3 queued */
    struct tracking_arg m[2] = {{"m2", 2}, {"m3", 2}};
    tracking_remember_keys(t, 3, &m[0], 1); /* run by EXEC */
    tracking_remember_keys(t, 3, &m[1], 1);
    tracking_after_command(t, 3, false, false); /* EXEC */
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 3);
    t_read(t, 3, "m4");
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 3);
    t_cmd(t, 3, 3, "tracking off", "+OK\r\n");
    /* OPTOUT: remembered unless CACHING no */
    t_cmd(t, 3, 3, "tracking on optout", "+OK\r\n");
    t_read(t, 3, "o1");
    t_cmd(t, 3, 3, "caching no", "+OK\r\n");
    tracking_after_command(t, 3, false, true);
    t_read(t, 3, "o2");
    t_read(t, 3, "o3");
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 5);
    t_change(t, "o2", 9);
    t_expect_log("");
    t_change(t, "o3", 9);
    t_expect_log("3:" PUSH_HDR "*1\r\n$2\r\no3\r\n|");
    tracking_free(t);
}

/* INFO counters through the sequence run against Redis 7.0.15. */
static void
test_counts(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    struct tracking_counts n;
    env.resp[3] = 3;
    t_cmd(t, 3, 3, "tracking on", "+OK\r\n");
    struct tracking_arg mget[3] = {{"k1", 2}, {"k2", 2}, {"k1", 2}};
    tracking_remember_keys(t, 3, mget, 3);
    t_read(t, 3, "k1");
    tracking_counts(t, &n);
    assert_int_equal(n.clients, 1);
    assert_int_equal(n.keys, 2);
    assert_int_equal(n.items, 2);
    t_cmd(t, 3, 3, "tracking off", "+OK\r\n");
    tracking_counts(t, &n);
    assert_int_equal(n.clients, 0);
    assert_int_equal(n.keys, 2); /* lazy: ids stay */
    assert_int_equal(n.items, 2);
    t_cmd(t, 3, 3, "tracking on noloop", "+OK\r\n");
    t_read(t, 3, "k1");
    t_change(t, "k3", 4);
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 2);
    assert_int_equal(n.items, 2);
    t_change(t, "k1", 3);
    t_expect_log("");
    /* a NOLOOP writer's own change keeps its read (it may have read again
     * since it sent the write): still counted, and told of the next change */
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 2);
    assert_int_equal(n.items, 2);
    t_change(t, "k1", 4);
    t_expect_log("3:" PUSH_HDR "*1\r\n$2\r\nk1\r\n|");
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 1);
    assert_int_equal(n.items, 1);
    t_cmd(t, 5, 2, "tracking on bcast prefix a prefix b", "+OK\r\n");
    tracking_counts(t, &n);
    assert_int_equal(n.clients, 2);
    assert_int_equal(n.prefixes, 2);
    t_cmd(t, 6, 2, "tracking on bcast prefix a", "+OK\r\n");
    tracking_counts(t, &n);
    assert_int_equal(n.clients, 3);
    assert_int_equal(n.prefixes, 2);
    tracking_client_gone(t, 5);
    tracking_counts(t, &n);
    assert_int_equal(n.clients, 2);
    assert_int_equal(n.prefixes, 1);
    /* a key changed after its reader left: nothing sent, the key goes */
    t_read(t, 4, "gone"); /* 4 is not tracking: nothing */
    t_cmd(t, 4, 2, "tracking on", "+OK\r\n");
    t_read(t, 4, "gone");
    tracking_client_gone(t, 4);
    env.exists[4] = false;
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 2);
    t_change(t, "gone", 2);
    t_expect_log("");
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 1);
    assert_int_equal(n.items, 1);
    tracking_free(t);
}

/* Flush: the null to every tracking client, BCAST ones included. */
static void
test_flush(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    struct tracking_counts n;
    env.resp[3] = 3;
    env.resp[5] = 3;
    env.pubsub[7] = true;
    t_cmd(t, 5, 3, "tracking on bcast", "+OK\r\n");
    t_cmd(t, 3, 3, "tracking on", "+OK\r\n");
    t_cmd(t, 4, 2, "tracking on redirect 7", "+OK\r\n");
    t_cmd(t, 6, 2, "tracking on", "+OK\r\n"); /* RESP2, no redirect: nothing */
    t_read(t, 3, "key1");
    t_read(t, 4, "key2");
    t_change(t, "pending", 2);
    tracking_flushed(t, TRACKING_WRITER_NONE);
    t_expect_log("3:" PUSH_HDR "_\r\n|7:" MSG_HDR "$-1\r\n|5:" PUSH_HDR "_\r\n|");
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 0);
    assert_int_equal(n.items, 0);
    assert_int_equal(n.clients, 4);
    /* the BCAST key queued before the flush still goes out (7.0.15: MULTI,
     * SET a, FLUSHALL, EXEC gives a BCAST client the null, then [a]) */
    tracking_bcast_flush(t);
    t_expect_log("5:" PUSH_HDR "*1\r\n$7\r\npending\r\n|");
    /* a flush with nothing tracked still sends the null */
    tracking_flushed(t, TRACKING_WRITER_NONE);
    t_expect_log("3:" PUSH_HDR "_\r\n|7:" MSG_HDR "$-1\r\n|5:" PUSH_HDR "_\r\n|");
    tracking_free(t);
}

/* tracking-table-max-keys: random eviction, each evicted key invalidated. */
static void
test_limit_evicts(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    struct tracking_counts n;
    env.pubsub[7] = true;
    t_cmd(t, 3, 2, "tracking on redirect 7 noloop", "+OK\r\n");
    char key[16];
    for (int i = 0; i < 250; i++) {
        snprintf(key, sizeof(key), "key%d", i);
        t_read(t, 3, key);
    }
    tracking_limit(t, 0, TRACKING_WRITER_NONE); /* 0: no limit */
    tracking_limit(t, 1000, TRACKING_WRITER_NONE);
    assert_int_equal(env.sends, 0);
    /* effort 100 per call, then 200: 249 evictions in two calls */
    tracking_limit(t, 1, TRACKING_WRITER_NONE);
    assert_int_equal(env.sends, 100);
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 150);
    tracking_limit(t, 1, TRACKING_WRITER_NONE);
    assert_int_equal(env.sends, 249);
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 1);
    assert_int_equal(n.items, 1);
    /* every message names one key, each key once */
    size_t msgs = 0;
    for (char *p = env.log; (p = strstr(p, "$20\r\n__redis__:invalidate\r\n*1\r\n")) != NULL; p++)
        msgs++;
    assert_int_equal(msgs, 249);
    env.loglen = 0;
    /* the current client in NOLOOP is not told of its own evictions */
    t_read(t, 3, "another");
    env.sends = 0;
    tracking_limit(t, 1, 3);
    assert_int_equal(env.sends, 0);
    tracking_counts(t, &n);
    assert_int_equal(n.keys, 1);
    /* no tracking client: no eviction */
    t_cmd(t, 3, 2, "tracking off", "+OK\r\n");
    t_read(t, 3, "x");
    tracking_limit(t, 0, TRACKING_WRITER_NONE);
    tracking_free(t);
}

/* Many clients on one key (the client table grows): one push each, in id order. */
static void
test_many_clients(void **state)
{
    (void)state;
    struct tracking *t = t_new();
    struct tracking_counts n;
    for (uint64_t id = 40; id >= 1; id--) {
        env.resp[id] = 3;
        t_cmd(t, id, 3, "tracking on", "+OK\r\n");
        t_read(t, id, "k");
    }
    tracking_counts(t, &n);
    assert_int_equal(n.clients, 40);
    assert_int_equal(n.keys, 1);
    assert_int_equal(n.items, 40);
    t_change(t, "k", TRACKING_WRITER_NONE);
    assert_int_equal(env.sends, 40);
    assert_memory_equal(env.log, "1:" PUSH_HDR, strlen("1:" PUSH_HDR));
    for (uint64_t id = 1; id <= 40; id++) {
        assert_true(tracking_is_on(t, id));
        tracking_client_gone(t, id);
    }
    assert_false(tracking_any(t));
    tracking_free(t);
}

/* The two encodings, as the helpers give them to the integration. */
static void
test_encode(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0, cap = 0;
    struct tracking_arg keys[2] = {{"a", 1}, {"", 0}};
    tracking_encode(&buf, &len, &cap, true, keys, 2, false, 3);
    tracking_encode(&buf, &len, &cap, false, NULL, 0, true, 2);
    tracking_encode(&buf, &len, &cap, false, keys, 0, false, 2);
    const char *want = PUSH_HDR "*2\r\n$1\r\na\r\n$0\r\n\r\n" MSG_HDR "$-1\r\n" MSG_HDR "*0\r\n";
    assert_int_equal(len, strlen(want));
    assert_memory_equal(buf, want, len);
    bw_free(buf);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_tracking_errors),
        cmocka_unit_test(test_modes_caching_trackinginfo),
        cmocka_unit_test(test_prefix_overlaps),
        cmocka_unit_test(test_default_mode_push),
        cmocka_unit_test(test_redirect_forms),
        cmocka_unit_test(test_own_changes_held_until_after_command),
        cmocka_unit_test(test_broken_redirect),
        cmocka_unit_test(test_clients_of_a_key_in_rax_order),
        cmocka_unit_test(test_bcast_batching),
        cmocka_unit_test(test_off_on_keeps_old_keys),
        cmocka_unit_test(test_switch_to_bcast_drops_old_keys),
        cmocka_unit_test(test_optin_optout_caching),
        cmocka_unit_test(test_counts),
        cmocka_unit_test(test_flush),
        cmocka_unit_test(test_limit_evicts),
        cmocka_unit_test(test_many_clients),
        cmocka_unit_test(test_encode),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
