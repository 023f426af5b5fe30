/*
 * test_script: Lua scripts and Redis's Lua debugger through bulwark. A busy
 * script holds no other client hostage (they get Redis's own -BUSY, then
 * service after SCRIPT KILL), a script longer than upstream-timeout is not
 * turned into "timed out" while a hung upstream still is, and SCRIPT DEBUG
 * gets a connection of its own that no one else ever hears from and that is
 * closed, never reused, when the debugging client leaves.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "proxy/util.h"
#include "tests/integration/harness.h"

/* Send a script that keeps Redis busy for about secs seconds (read-only:
 * SCRIPT KILL can stop it). */
static void
send_busy_script(struct harness_conn *c, int secs)
{
    char body[128];
    snprintf(body, sizeof(body),
             "local t=redis.call('time')[1] while redis.call('time')[1]-t < %d do end", secs);
    const char *const argv[] = {"EVAL", body, "0"};
    struct harness_buf req = {0};
    harness_buf_argv(&req, 3, argv, NULL);
    harness_conn_send(c, req.data, req.len, 0);
    harness_buf_free(&req);
}

static const char busy_reply[] =
    "-BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.\r\n";

/* One request on c and its reply, whatever it is, into out (reset first). */
static enum harness_read
ask(struct harness_conn *c, const char *req, int timeout_ms, struct harness_buf *out)
{
    harness_buf_reset(out);
    harness_conn_send_str(c, req);
    return harness_conn_read_reply(c, timeout_ms, out);
}

/* Redis is free again: a direct PING answers PONG within a few seconds. */
static void
wait_not_busy(const struct harness_server *r)
{
    struct harness_buf got = {0};
    for (int i = 0; i < 100; i++) {
        struct harness_conn *d = harness_conn_open(r);
        enum harness_read rc = ask(d, "PING\r\n", 5000, &got);
        harness_conn_close(d);
        if (rc == HARNESS_READ_REPLY && strcmp(got.data, "+PONG\r\n") == 0)
            break;
        usleep(100 * 1000);
    }
    assert_string_equal(got.data, "+PONG\r\n");
    harness_buf_free(&got);
}

/*
 * A busy script sent by one client; another client of the same (single)
 * shared upstream connection gets exactly what a direct client of Redis gets
 * meanwhile (-BUSY once busy-reply-threshold passed, PING included), SCRIPT
 * KILL through bulwark stops it, and service resumes.
 */
static void
test_busy_script_does_not_hold_others(void **state)
{
    (void)state;
    struct harness_server *r = harness_redis_start(HARNESS_ARGS("--busy-reply-threshold", "200"));
    struct harness_server *b =
        harness_bulwark_start(r->port, HARNESS_ARGS("--upstream-connections", "1"));
    struct harness_conn *other = harness_conn_open(b), *direct = harness_conn_open(r);
    struct harness_buf got = {0}, want = {0};
    assert_true(harness_conn_roundtrip(other, "SET busykey v\r\n", "+OK\r\n"));

    struct harness_conn *runner = harness_conn_open(b);
    send_busy_script(runner, 3);
    usleep(400 * 1000); /* past the 200 ms threshold */
    static const char *const reqs[] = {"GET busykey\r\n", "PING\r\n", "SET busykey w\r\n"};
    for (size_t i = 0; i < BW_ARRAY_LEN(reqs); i++) {
        assert_int_equal(ask(direct, reqs[i], 2000, &want), HARNESS_READ_REPLY);
        assert_string_equal(want.data, busy_reply);
        /* before: queued behind the script on the shared connection */
        assert_int_equal(ask(other, reqs[i], 2000, &got), HARNESS_READ_REPLY);
        assert_string_equal(got.data, want.data);
    }
    assert_true(harness_conn_roundtrip(other, "SCRIPT KILL\r\n", "+OK\r\n"));
    harness_buf_reset(&got);
    assert_int_equal(harness_conn_read_reply(runner, 5000, &got), HARNESS_READ_REPLY);
    assert_non_null(strstr(got.data, "killed by user"));
    assert_true(harness_conn_roundtrip(other, "GET busykey\r\n", "$1\r\nv\r\n"));
    assert_true(harness_conn_roundtrip(other, "PING\r\n", "+PONG\r\n"));
    /* the script's connection went back to the pool and serves the next one */
    assert_true(harness_conn_roundtrip(runner,
                                       "EVAL \"return redis.call('get','busykey')\" 0\r\n",
                                       "$1\r\nv\r\n"));
    assert_true(harness_conn_roundtrip(runner, "EVAL \"return 7\" 0\r\n", ":7\r\n"));
    assert_true(harness_info_ll(b, "upstream", "upstream_timeouts") == 0);
    harness_conn_close(runner);
    harness_conn_close(other);
    harness_conn_close(direct);
    harness_buf_free(&got);
    harness_buf_free(&want);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

/*
 * upstream-timeout 1 s, busy-reply-threshold 1.5 s (set through bulwark, so
 * bulwark reads it again): a request sent while a script runs gets -BUSY at
 * 1.5 s, not "timed out" at 1 s. With the upstream stopped (SIGSTOP) during
 * a script, the same request still fails within threshold + timeout.
 */
static void
test_long_script_vs_upstream_timeout(void **state)
{
    (void)state;
    struct harness_server *r = harness_redis_start(NULL);
    struct harness_server *b =
        harness_bulwark_start(r->port, HARNESS_ARGS("--upstream-connections", "1",
                                                    "--upstream-timeout", "1000"));
    struct harness_conn *other = harness_conn_open(b);
    struct harness_buf got = {0};
    assert_true(
        harness_conn_roundtrip(other, "CONFIG SET busy-reply-threshold 1500\r\n", "+OK\r\n"));
    assert_true(harness_conn_roundtrip(other, "SET slowkey v\r\n", "+OK\r\n"));
    usleep(100 * 1000); /* bulwark's CONFIG GET after the SET is answered */

    struct harness_conn *runner = harness_conn_open(b);
    send_busy_script(runner, 3);
    usleep(100 * 1000);
    uint64_t t0 = bw_now_ms();
    assert_int_equal(ask(other, "GET slowkey\r\n", 4000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, busy_reply);
    assert_true(bw_now_ms() - t0 >= 1000); /* Redis's own answer, at its threshold */
    assert_true(harness_conn_roundtrip(other, "SCRIPT KILL\r\n", "+OK\r\n"));
    harness_buf_reset(&got);
    assert_int_equal(harness_conn_read_reply(runner, 5000, &got), HARNESS_READ_REPLY);
    assert_non_null(strstr(got.data, "killed by user"));
    assert_true(harness_conn_roundtrip(other, "GET slowkey\r\n", "$1\r\nv\r\n"));

    /* a hung upstream during a script: still a prompt error for others */
    send_busy_script(runner, 2);
    usleep(100 * 1000);
    assert_int_equal(kill(r->pid, SIGSTOP), 0);
    t0 = bw_now_ms();
    assert_int_equal(ask(other, "GET slowkey\r\n", 6000, &got), HARNESS_READ_REPLY);
    uint64_t waited = bw_now_ms() - t0;
    assert_int_equal(kill(r->pid, SIGCONT), 0);
    assert_non_null(strstr(got.data, "timed out after 1000 ms"));
    assert_true(waited <= 3500);
    /* the script's caller waits as Redis lets it: the result once it ends */
    harness_buf_reset(&got);
    assert_int_equal(harness_conn_read_reply(runner, 10000, &got), HARNESS_READ_REPLY);
    assert_string_equal(got.data, "$-1\r\n");
    wait_not_busy(r);
    harness_conn_close(runner);
    harness_conn_close(other);
    harness_buf_free(&got);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

/* SET/GET through c n times: true when every reply is exactly Redis's. */
static bool
plain_traffic(struct harness_conn *c, int n)
{
    for (int i = 0; i < n; i++) {
        char req[96], want[64];
        snprintf(req, sizeof(req), "SET dbg:other:%d val%d\r\nGET dbg:other:%d\r\n", i, i, i);
        int vlen = snprintf(NULL, 0, "val%d", i);
        snprintf(want, sizeof(want), "$%d\r\nval%d\r\n", vlen, i);
        const char *const expect[] = {"+OK\r\n", want};
        if (!harness_conn_pipeline(c, req, expect, 2))
            return false;
    }
    return true;
}

/*
 * SCRIPT DEBUG YES|SYNC driven with raw RESP as redis-cli --ldb does, while
 * another client of the same single shared connection works: it never gets
 * a debugger reply; the debugger answers only its client; when that client
 * leaves, its dedicated connection is closed (not pooled), Redis is free
 * again (SYNC), and everything is normal.
 */
static void
debug_session(const char *mode)
{
    struct harness_server *r = harness_redis_start(NULL);
    struct harness_server *b =
        harness_bulwark_start(r->port, HARNESS_ARGS("--upstream-connections", "1"));
    struct harness_conn *other = harness_conn_open(b);
    struct harness_buf got = {0}, req = {0};
    assert_true(plain_traffic(other, 5));

    struct harness_conn *dbg = harness_conn_open(b);
    harness_buf_printf(&req, "SCRIPT DEBUG %s\r\n", mode);
    assert_true(harness_conn_roundtrip(dbg, req.data, "+OK\r\n")); /* (inline, as typed) */
    harness_buf_reset(&req);
    harness_buf_command(&req, "EVAL \"redis.call('set','dbgkey','1')\\nreturn 5\" 0");
    harness_conn_send(dbg, req.data, req.len, 0);
    assert_int_equal(harness_conn_read_reply(dbg, 5000, &got), HARNESS_READ_REPLY);
    assert_non_null(strstr(got.data, "Stopped at 1"));
    if (strcmp(mode, "YES") == 0) /* a forked debugger: Redis serves everyone meanwhile */
        assert_true(plain_traffic(other, 50));
    harness_buf_reset(&req);
    harness_buf_command(&req, "s");
    harness_conn_send(dbg, req.data, req.len, 0);
    harness_buf_reset(&got);
    assert_int_equal(harness_conn_read_reply(dbg, 5000, &got), HARNESS_READ_REPLY);
    assert_non_null(strstr(got.data, "<redis> set dbgkey 1"));
    assert_int_equal(harness_info_ll(b, "proxy", "pinned_connections"), 1);
    harness_conn_close(dbg); /* leaves mid-session */

    assert_true(plain_traffic(other, 50)); /* SYNC: Redis is free again */
    for (int i = 0; i < 100 && harness_info_ll(b, "proxy", "pinned_connections") != 0; i++)
        usleep(20 * 1000);
    assert_int_equal(harness_info_ll(b, "proxy", "pinned_connections"), 0); /* closed, not idle */
    /* nothing of the session is left on Redis's side */
    struct harness_conn *d = harness_conn_open(r);
    assert_int_equal(ask(d, "CLIENT LIST\r\n", 5000, &got), HARNESS_READ_REPLY);
    assert_null(strstr(got.data, "cmd=script"));
    assert_null(strstr(got.data, "cmd=eval"));
    harness_conn_close(d);
    /* the next session gets a fresh connection that answers it, not a debugger */
    static const char *const tx[] = {"+OK\r\n", "+QUEUED\r\n", "*1\r\n:1\r\n"};
    assert_true(harness_conn_pipeline(other, "MULTI\r\nINCR dbg:tx\r\nEXEC\r\n", tx, 3));
    assert_true(harness_conn_roundtrip(other, "EVAL \"return 3\" 0\r\n", ":3\r\n"));
    assert_true(plain_traffic(other, 5));
    harness_conn_close(other);
    harness_buf_free(&got);
    harness_buf_free(&req);
    harness_bulwark_stop(b);
    harness_redis_stop(r);
}

static void
test_script_debug_yes_is_isolated(void **state)
{
    (void)state;
    debug_session("YES");
}

static void
test_script_debug_sync_is_isolated(void **state)
{
    (void)state;
    debug_session("SYNC");
}

int
main(void)
{
    harness_init(0);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_busy_script_does_not_hold_others),
        cmocka_unit_test(test_long_script_vs_upstream_timeout),
        cmocka_unit_test(test_script_debug_yes_is_isolated),
        cmocka_unit_test(test_script_debug_sync_is_isolated),
    };
    return harness_finish(cmocka_run_group_tests(tests, NULL, NULL));
}
