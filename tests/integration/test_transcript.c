/*
 * test_transcript: the differential acceptance test. The same requests go to
 * bulwark (in front of redis-A) and to a reference redis-B; every reply must
 * be byte-for-byte the same, as a Redis 7 client would see it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* The servers shared by every test of this binary. */
static struct {
    struct harness_server *upstream; /* redis-A, behind bulwark */
    struct harness_server *subject;  /* bulwark (or a second redis) */
    struct harness_server *ref;      /* redis-B, the reference */
} env;

/*
 * The recorded transcript, one request per line in redis-cli syntax
 * ("quotes", \xHH escapes), sent as multibulk. Every request gets exactly
 * one reply. Only deterministic commands: no TIME, RANDOMKEY, INFO, SCAN,
 * client ids, and no SMEMBERS/HGETALL of hashtable-encoded values, whose
 * order depends on each server's random hash seed.
 */
static const char *const transcript[] = {
    /* strings: status, bulk, nil, empty bulk, integers */
    "SET k1 v1",
    "GET k1",
    "GET nokey",
    "SET k1 v2 XX",
    "SET k1 v3 NX",
    "GET k1",
    "SET k2 \"\"",
    "GET k2",
    "STRLEN k2",
    "STRLEN k1",
    "STRLEN nokey",
    "APPEND k1 tail",
    "APPEND newapp x",
    "GET k1",
    "GETRANGE k1 0 2",
    "GETRANGE k1 -3 -1",
    "GETRANGE k1 10 20",
    "GETRANGE nokey 0 -1",
    "SETRANGE k1 1 ZZ",
    "SETRANGE pad 5 x",
    "GET pad",
    "MSET m1 a m2 b m3 c",
    "MGET m1 m2 nokey m3",
    "MGET nokey1 nokey2",
    "MSETNX m1 x m4 y",
    "MSETNX m5 x m6 y",
    "MGET m4 m5 m6",
    "SETNX m1 z",
    "SETNX m7 z",
    "GETSET m7 w",
    "GETDEL m7",
    "GETDEL m7",
    "GETEX m1",
    "GETEX nokey",
    "SET ex v EX 100",
    "GET ex",
    "SETEX se 100 v",
    "GET se",
    "PSETEX pse 100000 v",
    "GET pse",
    "SET cnt 10",
    "INCR cnt",
    "INCRBY cnt 5",
    "DECR cnt",
    "DECRBY cnt 3",
    "INCRBY cnt -100",
    "INCR newcnt",
    "GET cnt",
    "INCRBYFLOAT fl 1.5",
    "INCRBYFLOAT fl 0.25",
    "INCRBYFLOAT fl -3e2",
    "GET fl",
    /* errors: not an integer, overflow, syntax, arity, unknown, float */
    "INCR k1",
    "INCRBY cnt abc",
    "INCRBY cnt 9223372036854775808",
    "SET big 9223372036854775807",
    "INCR big",
    "DECRBY big -1",
    "SET neg -9223372036854775808",
    "DECR neg",
    "INCRBYFLOAT k1 1",
    "SET k1 v EX 0",
    "SET k1 v EX abc",
    "SET k1 v XX NX",
    "SET k1 v PX",
    "SET k1 v EX 100 KEEPTTL",
    "SET k1",
    "GET",
    "GET a b",
    "STRLEN",
    "MGET",
    "FOOBAR a b",
    "FOOBAR",
    "\"\"",
    "GeT k1",
    "get k1",
    /* empty and binary keys and values */
    "SET \"\" empty-key-value",
    "GET \"\"",
    "EXISTS \"\"",
    "STRLEN \"\"",
    "SET \"bin\\x00key\\r\\n\" \"bin\\x00val\\r\\n\\x01\\xff\"",
    "GET \"bin\\x00key\\r\\n\"",
    "STRLEN \"bin\\x00key\\r\\n\"",
    "EXISTS \"bin\\x00key\\r\\n\" \"bin\\x00key\"",
    "GET \"bin\\x00key\"",
    "APPEND \"bin\\x00key\\r\\n\" \"\\x00\"",
    "GET \"bin\\x00key\\r\\n\"",
    "SET \"\\r\\n\" \"\\r\\n\"",
    "GET \"\\r\\n\"",
    "SET \"*1\\r\\n$4\\r\\nPING\\r\\n\" injected",
    "GET \"*1\\r\\n$4\\r\\nPING\\r\\n\"",
    "SET utf8 \"\\xe2\\x9c\\x93 ok\"",
    "GET utf8",
    "DEL \"\"",
    "GET \"\"",
    /* keys */
    "EXISTS k1 k2 nokey k1",
    "TYPE k1",
    "TYPE nokey",
    "DEL m1 m2 nokey",
    "EXISTS m1",
    "RENAME m3 m3new",
    "GET m3new",
    "RENAME nokey x",
    "RENAMENX m3new m4",
    "RENAMENX m3new m9",
    "COPY m9 m10",
    "COPY m9 m10",
    "GET m10",
    "EXPIRE m10 100000",
    "TTL m10",
    "PERSIST m10",
    "TTL m10",
    "TTL nokey",
    "EXPIRE nokey 100",
    "EXPIRE m10 abc",
    "TOUCH m9 m10 nokey",
    "UNLINK m9 nokey",
    "OBJECT ENCODING cnt",
    "OBJECT ENCODING k1",
    "OBJECT ENCODING nokey",
    "OBJECT FOO",
    "KEYS m3new",
    "KEYS nomatch*",
    /* lists */
    "RPUSH l a b c",
    "LPUSH l z",
    "LRANGE l 0 -1",
    "LLEN l",
    "LINDEX l 1",
    "LINDEX l 99",
    "LSET l 0 Z",
    "LSET l 99 x",
    "LSET nokey 0 x",
    "LINSERT l BEFORE b bb",
    "LINSERT l AFTER nope x",
    "LPOS l b",
    "LPOS l nope",
    "LPOS l b RANK 0",
    "LRANGE l 0 -1",
    "LREM l 0 bb",
    "LPOP l",
    "RPOP l",
    "LPOP l 5",
    "LPOP l",
    "LPOP nokey",
    "LPOP nokey 2",
    "RPUSH l2 1 2 3 4 5",
    "LTRIM l2 1 3",
    "LRANGE l2 0 -1",
    "LRANGE nokey 0 -1",
    "LMOVE l2 l3 LEFT RIGHT",
    "LRANGE l3 0 -1",
    "LMPOP 1 nokey LEFT",
    "LMPOP 2 nokey l2 RIGHT COUNT 2",
    "RPUSHX nokey a",
    "LLEN nokey",
    "LPUSH k1 x",
    "LRANGE k1 0 -1",
    "GET l3",
    "SORT l3",
    /* hashes (small: listpack keeps insertion order) */
    "HSET h f1 v1 f2 v2 f3 v3",
    "HGET h f1",
    "HGET h nofield",
    "HGET nokey f",
    "HMGET h f1 nofield f3",
    "HMGET nokey a b",
    "HGETALL h",
    "HGETALL nokey",
    "HLEN h",
    "HEXISTS h f2",
    "HEXISTS nokey f",
    "HDEL h f2 nofield",
    "HKEYS h",
    "HVALS h",
    "HINCRBY h n 5",
    "HINCRBY h f1 1",
    "HINCRBYFLOAT h fl 2.5",
    "HSETNX h f1 x",
    "HSTRLEN h f1",
    "HSET h",
    "HSET h f",
    "HGET k1 f",
    "HGETALL h",
    /* sets: intsets are ordered, string sets only through SORT ALPHA */
    "SADD si 3 1 2",
    "SMEMBERS si",
    "SADD ss b a c",
    "SCARD ss",
    "SISMEMBER ss a",
    "SISMEMBER ss z",
    "SMISMEMBER ss a z",
    "SMISMEMBER nokey a",
    "SMEMBERS nokey",
    "SORT ss ALPHA",
    "SREM ss a z",
    "SORT ss ALPHA",
    "SINTERCARD 2 si ss",
    "SINTERCARD 1 nokey",
    "SINTERSTORE sdst si si",
    "SMEMBERS sdst",
    "SMOVE si ss 1",
    "SORT ss ALPHA",
    "SRANDMEMBER nokey 5",
    "SPOP nokey",
    "SPOP nokey 2",
    "SADD k1 x",
    /* sorted sets */
    "ZADD z 1 one 2 two 3 three",
    "ZRANGE z 0 -1 WITHSCORES",
    "ZREVRANGE z 0 1",
    "ZSCORE z two",
    "ZSCORE z nope",
    "ZSCORE nokey m",
    "ZMSCORE z one nope",
    "ZMSCORE nokey a b",
    "ZINCRBY z 2.5 one",
    "ZRANK z one",
    "ZREVRANK z one",
    "ZRANK z nope",
    "ZCARD z",
    "ZCOUNT z 2 3",
    "ZRANGEBYSCORE z (1 +inf WITHSCORES LIMIT 0 2",
    "ZADD zl 0 a 0 b 0 c",
    "ZRANGEBYLEX zl [b +",
    "ZREM z two nope",
    "ZPOPMIN z",
    "ZPOPMAX nokey",
    "ZADD z abc m",
    "ZADD z NX XX 1 m",
    "ZADD z 1",
    "ZRANGESTORE zdst z 0 -1",
    "ZUNIONSTORE zu 2 z zl WEIGHTS 2 1",
    "ZRANGE zu 0 -1 WITHSCORES",
    "ZRANDMEMBER nokey 5",
    "ZSCORE k1 x",
    /* streams: nested arrays, nil arrays inside arrays */
    "XADD st 1-1 f v",
    "XADD st 1-2 a 1 b 2",
    "XADD st 2-0 x y",
    "XADD st 1-0 f v",
    "XLEN st",
    "XRANGE st - +",
    "XRANGE st 1-2 + COUNT 1",
    "XREVRANGE st + - COUNT 2",
    "XRANGE nokey - +",
    "XREAD STREAMS st 0",
    "XREAD COUNT 1 STREAMS st nokey 0 0",
    "XREAD STREAMS nokey 0",
    "XGROUP CREATE st g 0",
    "XREADGROUP GROUP g c COUNT 10 STREAMS st >",
    "XPENDING st g",
    "XACK st g 1-1 1-2 2-0",
    "XPENDING st g",
    "XDEL st 1-1",
    "XTRIM st MAXLEN 1",
    "XRANGE st - +",
    "XADD st badid f v",
    "XLEN nokey",
    /* bitmaps and HyperLogLog */
    "SETBIT bm 7 1",
    "SETBIT bm 100 1",
    "GETBIT bm 7",
    "GETBIT bm 8",
    "BITCOUNT bm",
    "BITPOS bm 1",
    "BITPOS nokey 1",
    "SETBIT bm 7 2",
    "GET bm",
    "BITOP AND bdst bm bm",
    "STRLEN bdst",
    "PFADD hll a b c d",
    "PFADD hll a",
    "PFCOUNT hll",
    /* answered by bulwark itself */
    "PING",
    "PING \"hi there\"",
    "PING a b",
    "ECHO \"hello world\"",
    "ECHO \"\"",
    "ECHO",
    "ECHO a b",
    "SELECT 0",
    "SELECT abc",
    "SELECT",
    "ping",
    "EcHo x",
    "COMMAND INFO get",
    "COMMAND INFO nosuchcmd",
    /* both sides hold exactly the keys written above */
    "DEL k1 k2 ex se pse",
    "EXISTS k1 k2 ex",
    "DBSIZE",
};

/* The acceptance transcript is at least 200 requests long. */
_Static_assert(BW_ARRAY_LEN(transcript) >= 200, "transcript too short");

static int
group_setup(void **state)
{
    (void)state;
    env.upstream = harness_redis_start(NULL);
    env.subject = harness_subject_start(env.upstream->port, NULL);
    env.ref = harness_reference_start(NULL);
    return 0;
}

/* Last: bulwark exits 0 on SIGTERM after all of the above (no crash, no leak).
 */
static void
test_clean_shutdown(void **state)
{
    (void)state;
    struct harness_server *s = env.subject;
    env.subject = NULL;
    harness_bulwark_stop(s);
}

static int
group_teardown(void **state)
{
    (void)state;
    harness_bulwark_stop(env.subject);
    harness_redis_stop(env.ref);
    harness_redis_stop(env.upstream);
    return 0;
}

/* FLUSHALL through the subject and on the reference: both start empty. */
static void
flush_both(void)
{
    const struct harness_server *s[2] = {env.ref, env.subject};
    for (int i = 0; i < 2; i++) {
        struct harness_conn *c = harness_conn_open(s[i]);
        assert_true(harness_conn_roundtrip(c, "FLUSHALL\r\n", "+OK\r\n"));
        harness_conn_close(c);
    }
}

/* Encode every transcript line as multibulk into b. */
static void
transcript_encode(struct harness_buf *b)
{
    for (size_t i = 0; i < BW_ARRAY_LEN(transcript); i++)
        harness_buf_command(b, transcript[i]);
}

/* One request, one reply, like an unpipelined client; all mismatches shown. */
static void
test_transcript_one_by_one(void **state)
{
    (void)state;
    flush_both();
    struct harness_conn *ref = harness_conn_open(env.ref);
    struct harness_conn *sub = harness_conn_open(env.subject);
    struct harness_buf req = {0};
    size_t bad = 0;

    for (size_t i = 0; i < BW_ARRAY_LEN(transcript); i++) {
        harness_buf_reset(&req);
        harness_buf_command(&req, transcript[i]);
        struct harness_script sc = {
            .bytes = req.data,
            .len = req.len,
            .nreplies = 1,
            .labels = &transcript[i],
        };
        if (!harness_same_replies_on(ref, sub, &sc))
            bad++;
    }
    /* The connection is still usable on both sides. */
    struct harness_script probe = {.bytes = "", .flags = HARNESS_PROBE};
    assert_true(harness_same_replies_on(ref, sub, &probe));
    harness_buf_free(&req);
    harness_conn_close(ref);
    harness_conn_close(sub);
    if (bad > 0)
        fail_msg("%zu of %zu transcript replies differ", bad, BW_ARRAY_LEN(transcript));
}

/* The whole transcript in one write: replies must come back in order. */
static void
test_transcript_pipelined(void **state)
{
    (void)state;
    flush_both();
    struct harness_buf req = {0};
    transcript_encode(&req);
    struct harness_script sc = {
        .bytes = req.data,
        .len = req.len,
        .nreplies = BW_ARRAY_LEN(transcript),
        .flags = HARNESS_PROBE,
        .labels = transcript,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
    harness_buf_free(&req);
}

/* n mixed commands (local, absent, forwarded, errors) in one write. */
static void
deep_pipeline(size_t n)
{
    flush_both();
    struct harness_buf req = {0};
    char line[64];
    for (size_t i = 0; i < n; i++) {
        switch (i % 8) {
        case 0:
            snprintf(line, sizeof(line), "SET key:%zu val:%zu", i, i);
            harness_buf_command(&req, line);
            break;
        case 1:
            harness_buf_printf(&req, "GET key:%zu\r\n", i - 1);
            break;
        case 2:
            harness_buf_puts(&req, "INCR ctr\r\n");
            break;
        case 3:
            harness_buf_printf(&req, "GET absent:%zu\r\n", i);
            break;
        case 4:
            harness_buf_puts(&req, "PING\r\n");
            break;
        case 5:
            harness_buf_printf(&req, "MGET key:%zu absent:%zu key:%zu\r\n", i - 5, i, i + 3);
            break;
        case 6:
            harness_buf_printf(&req, "EXISTS key:%zu absent:%zu\r\n", i - 6, i);
            break;
        default:
            harness_buf_printf(&req, "LPUSH list %zu\r\n", i);
            break;
        }
    }
    struct harness_script sc = {
        .bytes = req.data,
        .len = req.len,
        .nreplies = n,
        .flags = HARNESS_PROBE,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
    harness_buf_free(&req);
}

static void
test_pipeline_1000(void **state)
{
    (void)state;
    deep_pipeline(1000);
}

static void
test_pipeline_10000(void **state)
{
    (void)state;
    deep_pipeline(10000);
}

/* Inline commands, as typed in telnet: quotes, escapes, blank lines. */
static const char inline_script[] = "PING\r\n"
                                    "SET a b\r\n"
                                    "GET a\r\n"
                                    "SET \"a b\" 'c d'\r\n"
                                    "GET \"a b\"\r\n"
                                    "SET esc \"\\x41\\n\"\r\n"
                                    "GET esc\r\n"
                                    "STRLEN esc\r\n"
                                    "ECHO 'it\\'s'\r\n"
                                    "ECHO \"tab\\there\"\r\n"
                                    "   PING   \r\n"
                                    "\r\n"
                                    "PING\n"
                                    "SET\ttabbed\tvalue\r\n"
                                    "GET tabbed\r\n"
                                    "MGET a \"a b\" nokey\r\n"
                                    "GET\r\n"
                                    "FOO bar 'baz qux'\r\n"
                                    "get a\r\n"
                                    "SET \"\" empty\r\n"
                                    "GET \"\"\r\n"
                                    "*2\r\n$3\r\nGET\r\n$1\r\na\r\n"
                                    "GET a\r\n";
/* Replies of inline_script: one per line but the empty one. */
#define INLINE_REPLIES 22

static void
test_inline_commands(void **state)
{
    (void)state;
    flush_both();
    struct harness_script sc = {
        .bytes = inline_script,
        .len = sizeof(inline_script) - 1,
        .nreplies = INLINE_REPLIES,
        .flags = HARNESS_PROBE,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
    /* Again one byte per write. */
    sc.chunk = 1;
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
}

/* A 16 MB value with every byte value in it: SET, GET, STRLEN, GETRANGE. */
static void
test_big_value_16mb(void **state)
{
    (void)state;
    flush_both();
    size_t n = 16u * 1024 * 1024;
    char *val = bw_malloc(n);
    for (size_t i = 0; i < n; i++)
        val[i] = (char)((i * 7 + 13) & 0xff);
    const char *argv[] = {"SET", "big16", val};
    size_t lens[] = {3, 5, n};
    struct harness_buf req = {0};
    harness_buf_argv(&req, 3, argv, lens);
    harness_buf_puts(&req, "*2\r\n$3\r\nGET\r\n$5\r\nbig16\r\n");
    size_t set_get_len = req.len;
    harness_buf_puts(&req, "STRLEN big16\r\n");
    harness_buf_puts(&req, "GETRANGE big16 16777200 -1\r\n");
    harness_buf_puts(&req, "APPEND big16 x\r\n");
    harness_buf_puts(&req, "DEL big16\r\n");
    harness_buf_puts(&req, "GET big16\r\n");
    struct harness_script sc = {
        .bytes = req.data,
        .len = req.len,
        .nreplies = 7,
        .flags = HARNESS_PROBE,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));

    /* The GET reply really carries the 16 MB (not just equal on both). */
    struct harness_conn *c = harness_conn_open(env.subject);
    struct harness_buf got = {0};
    harness_conn_send(c, req.data, set_get_len, 0);
    assert_true(harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, NULL) == HARNESS_READ_REPLY);
    assert_true(harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, &got) == HARNESS_READ_REPLY);
    const char *hdr = "$16777216\r\n";
    assert_int_equal(got.len, strlen(hdr) + n + 2);
    assert_memory_equal(got.data, hdr, strlen(hdr));
    assert_memory_equal(got.data + strlen(hdr), val, n);
    harness_conn_close(c);
    harness_buf_free(&got);
    harness_buf_free(&req);
    bw_free(val);
}

/* Commands bulwark answers itself, QUIT last: +OK, then the close. */
static void
test_local_commands_and_quit(void **state)
{
    (void)state;
    static const char script[] = "PING\r\n"
                                 "*2\r\n$4\r\nPING\r\n$5\r\nhello\r\n"
                                 "*2\r\n$4\r\nECHO\r\n$6\r\nx\r\ny\x00z\r\n"
                                 "SELECT 0\r\n"
                                 "*2\r\n$6\r\nSELECT\r\n$1\r\n0\r\n"
                                 "PING a b\r\n"
                                 "ECHO\r\n"
                                 "SELECT 0 1\r\n"
                                 "CLIENT SETNAME transcript\r\n"
                                 "CLIENT GETNAME\r\n"
                                 "QUIT\r\n";
    struct harness_script sc = {
        .bytes = script,
        .len = sizeof(script) - 1,
        .nreplies = 11,
        .flags = HARNESS_EXPECT_EOF,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
}

/* CLIENT ID (the integer) or CLIENT INFO's addr= of the connection c. */
static long long
conn_id(struct harness_conn *c)
{
    struct harness_buf r = {0};
    harness_conn_send_str(c, "CLIENT ID\r\n");
    assert_int_equal(harness_conn_read_reply(c, 5000, &r), HARNESS_READ_REPLY);
    assert_true(r.len > 1 && r.data[0] == ':');
    long long id = strtoll(r.data + 1, NULL, 10);
    harness_buf_free(&r);
    return id;
}

static void
conn_addr(struct harness_conn *c, char *addr, size_t size)
{
    struct harness_buf r = {0};
    harness_conn_send_str(c, "CLIENT INFO\r\n");
    assert_int_equal(harness_conn_read_reply(c, 5000, &r), HARNESS_READ_REPLY);
    harness_buf_append(&r, "", 1);
    const char *p = strstr(r.data, " addr=");
    assert_non_null(p);
    size_t n = strcspn(p + 6, " ");
    assert_true(n < size);
    memcpy(addr, p + 6, n);
    addr[n] = '\0';
    harness_buf_free(&r);
}

/* CLIENT KILL on s: by ID another client, by address (old form) another,
 * then itself with SKIPME no: the reply, then the close, as Redis does. */
static void
client_kill_on(const struct harness_server *s)
{
    struct harness_conn *a = harness_conn_open(s), *b = harness_conn_open(s);
    char req[128], addr[64];
    snprintf(req, sizeof(req), "CLIENT KILL ID %lld\r\n", conn_id(b));
    assert_true(harness_conn_roundtrip(a, req, ":1\r\n"));
    assert_int_equal(harness_conn_read_eof(b, 3000, NULL), HARNESS_READ_EOF);
    harness_conn_close(b);
    b = harness_conn_open(s);
    conn_addr(b, addr, sizeof(addr));
    snprintf(req, sizeof(req), "CLIENT KILL %s\r\n", addr);
    assert_true(harness_conn_roundtrip(a, req, "+OK\r\n"));
    assert_int_equal(harness_conn_read_eof(b, 3000, NULL), HARNESS_READ_EOF);
    assert_true(harness_conn_roundtrip(a, req, "-ERR No such client\r\n"));
    snprintf(req, sizeof(req), "CLIENT KILL ID %lld SKIPME no\r\n", conn_id(a));
    assert_true(harness_conn_roundtrip(a, req, ":1\r\n"));
    assert_int_equal(harness_conn_read_eof(a, 3000, NULL), HARNESS_READ_EOF);
    harness_conn_close(a);
    harness_conn_close(b);
}

static void
test_client_kill(void **state)
{
    (void)state;
    assert_true(harness_same(env.ref, env.subject,
                             "CLIENT KILL ID 0\r\nCLIENT KILL ID x\r\nCLIENT KILL TYPE foo\r\n"
                             "CLIENT KILL 1.2.3.4:5\r\nCLIENT KILL bogus 1\r\n"
                             "CLIENT KILL ID 99999999\r\nCLIENT KILL ID 99999999 TYPE\r\n"
                             "CLIENT KILL TYPE normal SKIPME maybe\r\nCLIENT KILL\r\n"
                             "CLIENT KILL TYPE master\r\n",
                             10));
    client_kill_on(env.ref);
    client_kill_on(env.subject);
}

/* Requests pipelined after QUIT are neither answered nor executed. */
static void
test_quit_discards_rest(void **state)
{
    (void)state;
    flush_both();
    static const char script[] = "SET before 1\r\nQUIT\r\nSET after 1\r\nPING\r\n";
    struct harness_script sc = {
        .bytes = script,
        .len = sizeof(script) - 1,
        .nreplies = 2,
        .flags = HARNESS_EXPECT_EOF,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
    /* QUIT with an argument (arity -1) still quits. */
    assert_true(harness_same(env.ref, env.subject, "QUIT now\r\n", 1));
    assert_true(harness_same(env.ref, env.subject, "GET before\r\nGET after\r\n", 2));
}

/* One raw request of the split pipeline. */
struct raw_req {
    const char *bytes; /* request bytes, may hold NULs */
    size_t len;        /* length of bytes */
};

#define RAW(s)           \
    {                    \
        s, sizeof(s) - 1 \
    }

/*
 * The split pipeline: mixed multibulk and inline requests, one reply each,
 * answered locally, from absence, and upstream.
 */
static const struct raw_req split_cmds[] = {
    RAW("*3\r\n$3\r\nSET\r\n$3\r\ns:a\r\n$1\r\n1\r\n"),
    RAW("*2\r\n$3\r\nGET\r\n$3\r\ns:a\r\n"),
    RAW("INCR s:n\r\n"),
    RAW("PING\r\n"),
    RAW("*4\r\n$4\r\nMGET\r\n$3\r\ns:a\r\n$5\r\nnokey\r\n$3\r\ns:n\r\n"),
    RAW("*4\r\n$4\r\nHSET\r\n$3\r\ns:h\r\n$1\r\nf\r\n$1\r\nv\r\n"),
    RAW("HGETALL s:h\r\n"),
    RAW("*2\r\n$4\r\nECHO\r\n$4\r\nx\r\ny\r\n"),
    RAW("SET s:b \"q q\"\r\n"),
    RAW("*2\r\n$3\r\nGET\r\n$3\r\ns:b\r\n"),
    RAW("*4\r\n$5\r\nLPUSH\r\n$3\r\ns:l\r\n$1\r\na\r\n$1\r\nb\r\n"),
    RAW("LTRIM s:l 0 3\r\n"),
    RAW("*4\r\n$6\r\nLRANGE\r\n$3\r\ns:l\r\n$1\r\n0\r\n$2\r\n-1\r\n"),
    RAW("*2\r\n$3\r\nGET\r\n$7\r\nabsent!\r\n"),
    RAW("EXISTS s:a nokey\r\n"),
    RAW("*3\r\n$6\r\nFOOBAR\r\n$1\r\nx\r\n$0\r\n\r\n"),
    RAW("*1\r\n$3\r\nGET\r\n"),
    RAW("*3\r\n$3\r\nSET\r\n$4\r\nb\x00\r\n\r\n$3\r\n\r\n\x00\r\n"),
    RAW("*2\r\n$3\r\nGET\r\n$4\r\nb\x00\r\n\r\n"),
    RAW("   PING   \r\n"),
    RAW("*3\r\n$6\r\nINCRBY\r\n$3\r\ns:n\r\n$2\r\n10\r\n"),
};

#define NSPLIT BW_ARRAY_LEN(split_cmds)

/* Raw bytes of the split pipeline and the end offset of each request. */
static void
split_encode(struct harness_buf *b, size_t *ends)
{
    for (size_t i = 0; i < NSPLIT; i++) {
        harness_buf_append(b, split_cmds[i].bytes, split_cmds[i].len);
        ends[i] = b->len;
    }
}

/* Send [0,k), read the replies it completes, send [k,n), read the rest. */
static void
split_run(struct harness_conn *c, const struct harness_buf *req, const size_t *ends, size_t k,
          struct harness_buf *out)
{
    size_t done = 0;
    while (done < NSPLIT && ends[done] <= k)
        done++;
    harness_conn_send(c, req->data, k, 0);
    for (size_t i = 0; i < done; i++)
        assert_int_equal(harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, out), HARNESS_READ_REPLY);
    harness_conn_send(c, req->data + k, req->len - k, 0);
    for (size_t i = done; i < NSPLIT; i++)
        assert_int_equal(harness_conn_read_reply(c, HARNESS_TIMEOUT_MS, out), HARNESS_READ_REPLY);
}

static void
test_split_at_every_offset(void **state)
{
    (void)state;
    flush_both();
    size_t ends[NSPLIT];
    struct harness_buf req = {0}, a = {0}, b = {0};
    split_encode(&req, ends);
    struct harness_conn *ref = harness_conn_open(env.ref);
    struct harness_conn *sub = harness_conn_open(env.subject);

    for (size_t k = 1; k < req.len; k++) {
        harness_buf_reset(&a);
        harness_buf_reset(&b);
        split_run(ref, &req, ends, k, &a);
        split_run(sub, &req, ends, k, &b);
        if (a.len == b.len && memcmp(a.data, b.data, a.len) == 0)
            continue;
        struct harness_buf msg = {0};
        harness_buf_printf(&msg, "split at byte %zu of %zu:\n  reference \"", k, req.len);
        harness_buf_escape(&msg, a.data, a.len, 600);
        harness_buf_puts(&msg, "\"\n  subject   \"");
        harness_buf_escape(&msg, b.data, b.len, 600);
        harness_buf_puts(&msg, "\"\n");
        fputs(msg.data, stderr);
        harness_buf_free(&msg);
        fail_msg("replies differ when the pipeline is split at byte %zu", k);
    }
    harness_conn_close(ref);
    harness_conn_close(sub);
    harness_buf_free(&req);
    harness_buf_free(&a);
    harness_buf_free(&b);
}

/* The same pipeline one byte per write. */
static void
test_byte_by_byte(void **state)
{
    (void)state;
    flush_both();
    size_t ends[NSPLIT];
    struct harness_buf req = {0};
    split_encode(&req, ends);
    struct harness_script sc = {
        .bytes = req.data,
        .len = req.len,
        .nreplies = NSPLIT,
        .chunk = 1,
        .flags = HARNESS_PROBE,
    };
    assert_true(harness_same_replies(env.ref, env.subject, &sc));
    harness_buf_free(&req);
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transcript_one_by_one),
        cmocka_unit_test(test_transcript_pipelined),
        cmocka_unit_test(test_pipeline_1000),
        cmocka_unit_test(test_pipeline_10000),
        cmocka_unit_test(test_inline_commands),
        cmocka_unit_test(test_big_value_16mb),
        cmocka_unit_test(test_local_commands_and_quit),
        cmocka_unit_test(test_quit_discards_rest),
        cmocka_unit_test(test_client_kill),
        cmocka_unit_test(test_split_at_every_offset),
        cmocka_unit_test(test_byte_by_byte),
        cmocka_unit_test(test_clean_shutdown),
    };
    return harness_finish(cmocka_run_group_tests(tests, group_setup, group_teardown));
}
