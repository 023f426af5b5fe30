/*
 * Unit tests for proxy/command: the built-in Redis 7.0 table, lookup, arity,
 * error replies (byte-exact, captured from redis-server 7.0.15) and keys.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/command.h"
#include "proxy/util.h"

/* Most arguments a test request has. */
#define T_MAX_ARGS 64

/* A request split from a test line: words separated by one space, '' is an
 * empty argument. */
struct t_req {
    char buf[1024];               /* the words, NUL-separated */
    const char *argv[T_MAX_ARGS]; /* into buf */
    size_t argvlen[T_MAX_ARGS];   /* bytes of each word */
    int argc;                     /* words */
};

static void
t_split(struct t_req *r, const char *line)
{
    char *p, *save = NULL;

    BW_ASSERT(strlen(line) < sizeof(r->buf));
    strcpy(r->buf, line);
    r->argc = 0;
    for (p = strtok_r(r->buf, " ", &save); p != NULL; p = strtok_r(NULL, " ", &save)) {
        BW_ASSERT(r->argc < T_MAX_ARGS);
        if (strcmp(p, "''") == 0)
            *p = '\0';
        r->argv[r->argc] = p;
        r->argvlen[r->argc] = strlen(p);
        r->argc++;
    }
}

static int
t_setup(void **state)
{
    *state = cmd_table_builtin();
    return 0;
}

static int
t_teardown(void **state)
{
    cmd_table_free(*state);
    return 0;
}

/* "name" and "container|sub": the entry a stage's rule table names. */
static void
test_lookup_path(void **state)
{
    struct cmd_table *t = *state;
    assert_ptr_equal(cmd_lookup_path(t, "get"), cmd_lookup(t, "get", 3));
    const struct cmd_info *sub = cmd_lookup_path(t, "config|get");
    assert_non_null(sub);
    assert_string_equal(sub->fullname, "config|get");
    assert_null(cmd_lookup_path(t, "config|nosuch"));
    assert_null(cmd_lookup_path(t, "get|x"));      /* not a container */
    assert_null(cmd_lookup_path(t, "nosuch|get")); /* no container */
    assert_null(cmd_lookup_path(t, "nosuch"));
}

static const struct cmd_info *
t_get(void **state, const char *name)
{
    const struct cmd_info *c = cmd_lookup(*state, name, strlen(name));

    assert_non_null(c);
    return c;
}

static const struct cmd_info *
t_get_sub(void **state, const char *parent, const char *name)
{
    const struct cmd_info *p = t_get(state, parent);

    assert_non_null(p->subcommands);
    const struct cmd_info *c = cmd_lookup(p->subcommands, name, strlen(name));
    assert_non_null(c);
    return c;
}

static void
t_spec(const struct cmd_info *c, int arity, uint32_t flags, int first, int last, int step)
{
    assert_int_equal(c->arity, arity);
    assert_int_equal(c->flags, flags);
    assert_int_equal(c->first_key, first);
    assert_int_equal(c->last_key, last);
    assert_int_equal(c->key_step, step);
}

/* ---- the built-in table ------------------------------------------------- */

static void
test_builtin_size(void **state)
{
    const struct cmd_table *t = *state;

    /* redis-server 7.0.15: COMMAND COUNT is 240. */
    assert_true(cmd_count(t) >= 200);
    assert_int_equal(cmd_count(t), 240);
    assert_int_equal(cmd_count(t_get(state, "config")->subcommands), 5);
    assert_int_equal(cmd_count(t_get(state, "client")->subcommands), 16);
    assert_int_equal(cmd_count(t_get(state, "cluster")->subcommands), 27);
    assert_int_equal(cmd_count(t_get(state, "object")->subcommands), 5);
    assert_int_equal(cmd_count(t_get(state, "xinfo")->subcommands), 4);
    assert_null(t_get(state, "get")->subcommands);
}

static void
test_builtin_entries(void **state)
{
    t_spec(t_get(state, "get"), 2, CMD_READONLY | CMD_FAST, 1, 1, 1);
    t_spec(t_get(state, "set"), -3, CMD_WRITE | CMD_DENYOOM, 1, 1, 1);
    t_spec(t_get(state, "mset"), -3, CMD_WRITE | CMD_DENYOOM, 1, -1, 2);
    t_spec(t_get(state, "mget"), -2, CMD_READONLY | CMD_FAST, 1, -1, 1);
    t_spec(t_get(state, "del"), -2, CMD_WRITE, 1, -1, 1);
    t_spec(t_get(state, "blpop"), -3, CMD_WRITE | CMD_NOSCRIPT | CMD_BLOCKING, 1, -2, 1);
    t_spec(t_get(state, "ping"), -1, CMD_FAST, 0, 0, 0);
    t_spec(t_get(state, "hello"), -1,
           CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | CMD_FAST | CMD_NO_AUTH | CMD_ALLOW_BUSY, 0, 0,
           0);
    t_spec(t_get(state, "eval"), -3,
           CMD_NOSCRIPT | CMD_STALE | CMD_SKIP_MONITOR | CMD_NO_MANDATORY_KEYS | CMD_MOVABLEKEYS,
           0, 0, 0);
    t_spec(t_get(state, "zunionstore"), -4, CMD_WRITE | CMD_DENYOOM | CMD_MOVABLEKEYS, 1, 1, 1);
    t_spec(t_get(state, "exec"), 1, CMD_NOSCRIPT | CMD_LOADING | CMD_STALE | CMD_SKIP_SLOWLOG, 0,
           0, 0);
    t_spec(t_get(state, "config"), -2, 0, 0, 0, 0);
    assert_int_equal(t_get(state, "get")->keys_kind, CMD_KEYS_RANGE);
    assert_int_equal(t_get(state, "eval")->keys_kind, CMD_KEYS_EVAL);
    assert_int_equal(t_get(state, "xreadgroup")->keys_kind, CMD_KEYS_XREADGROUP);
    assert_int_equal(t_get(state, "get")->policy, 0);
    assert_null(t_get(state, "get")->extra);
    assert_null(t_get(state, "get")->parent);
    assert_string_equal(t_get(state, "get")->fullname, "get");
}

static void
test_builtin_subcommands(void **state)
{
    const struct cmd_info *cfg = t_get(state, "config");
    const struct cmd_info *c = t_get_sub(state, "config", "get");
    const uint32_t admin = CMD_ADMIN | CMD_NOSCRIPT | CMD_LOADING | CMD_STALE;

    t_spec(c, -3, admin, 0, 0, 0);
    assert_string_equal(c->name, "get");
    assert_string_equal(c->fullname, "config|get");
    assert_ptr_equal(c->parent, cfg);
    t_spec(t_get_sub(state, "config", "set"), -4, admin, 0, 0, 0);
    t_spec(t_get_sub(state, "config", "help"), 2, CMD_LOADING | CMD_STALE, 0, 0, 0);
    t_spec(t_get_sub(state, "client", "setname"), 3, CMD_NOSCRIPT | CMD_LOADING | CMD_STALE, 0, 0,
           0);
    t_spec(t_get_sub(state, "object", "encoding"), 3, CMD_READONLY, 2, 2, 1);
    t_spec(t_get_sub(state, "xinfo", "stream"), -3, CMD_READONLY, 2, 2, 1);
    t_spec(t_get_sub(state, "memory", "usage"), -3, CMD_READONLY, 2, 2, 1);
    assert_string_equal(t_get_sub(state, "command", "getkeys")->fullname, "command|getkeys");
}

/* Every entry: lowercase name, fullname, parent links, sane key spec. */
static void
t_check_entry(const struct cmd_info *c, void *ud)
{
    int *seen = ud;

    (*seen)++;
    assert_int_equal(strlen(c->name), c->name_len);
    for (size_t i = 0; i < c->name_len; i++)
        assert_false(c->name[i] >= 'A' && c->name[i] <= 'Z');
    assert_true(c->arity != 0);
    assert_true(c->first_key >= 0 && c->key_step >= 0);
    if (c->parent != NULL) {
        char full[128];
        snprintf(full, sizeof(full), "%s|%s", c->parent->name, c->name);
        assert_string_equal(c->fullname, full);
    } else {
        assert_string_equal(c->fullname, c->name);
    }
    if (c->subcommands != NULL)
        cmd_table_foreach(c->subcommands, t_check_entry, ud);
}

static void
test_builtin_foreach(void **state)
{
    int seen = 0;

    cmd_table_foreach(*state, t_check_entry, &seen);
    /* 240 commands and 126 subcommands in redis-server 7.0.15. */
    assert_int_equal(seen, 240 + 126);
}

/* ---- lookup ------------------------------------------------------------- */

static void
test_lookup_case_and_binary(void **state)
{
    const struct cmd_table *t = *state;
    const struct cmd_info *get = t_get(state, "get");

    assert_ptr_equal(cmd_lookup(t, "GET", 3), get);
    assert_ptr_equal(cmd_lookup(t, "gEt", 3), get);
    assert_ptr_equal(cmd_lookup(t, "getx", 3), get); /* length bounds it */
    assert_null(cmd_lookup(t, "get\0", 4));          /* as Redis: unknown */
    assert_null(cmd_lookup(t, "ge", 2));
    assert_null(cmd_lookup(t, "gett", 4));
    assert_null(cmd_lookup(t, "", 0));
    assert_null(cmd_lookup(t, "g\xc5t", 3));
    assert_non_null(cmd_lookup(t, "ZUNIONSTORE", 11));
    assert_non_null(cmd_lookup(t, "Bitfield_RO", 11));
}

static const struct cmd_info *
t_argv(void **state, const char *line, int *argc)
{
    struct t_req r;

    t_split(&r, line);
    *argc = r.argc;
    return cmd_lookup_argv(*state, r.argc, r.argv, r.argvlen);
}

static void
test_lookup_argv(void **state)
{
    const struct cmd_info *cfg = t_get(state, "config");
    int argc;

    assert_ptr_equal(t_argv(state, "CONFIG GET maxmemory", &argc),
                     t_get_sub(state, "config", "get"));
    assert_ptr_equal(t_argv(state, "config Get", &argc), t_get_sub(state, "config", "get"));
    assert_false(cmd_is_unknown_sub(t_argv(state, "config get", &argc), argc));
    assert_ptr_equal(t_argv(state, "config", &argc), cfg);
    assert_false(cmd_is_unknown_sub(cfg, argc));
    assert_ptr_equal(t_argv(state, "config nope x", &argc), cfg);
    assert_true(cmd_is_unknown_sub(cfg, argc));
    assert_ptr_equal(t_argv(state, "get a", &argc), t_get(state, "get"));
    assert_false(cmd_is_unknown_sub(t_get(state, "get"), argc));
    assert_ptr_equal(t_argv(state, "get config", &argc), t_get(state, "get"));
    assert_null(t_argv(state, "nosuch a", &argc));
    assert_false(cmd_is_unknown_sub(NULL, 2));
    assert_null(cmd_lookup_argv(*state, 0, NULL, NULL));

    /* "config get\0" is no subcommand, as in Redis. */
    const char *argv[] = {"config", "get\0", "x"};
    const size_t argvlen[] = {6, 4, 1};
    assert_ptr_equal(cmd_lookup_argv(*state, 3, argv, argvlen), cfg);
}

static void
test_table_add_replace_grow(void **state)
{
    struct cmd_table *t = cmd_table_new();
    char name[32];
    int marker = 7;

    (void)state;
    assert_int_equal(cmd_count(t), 0);
    assert_null(cmd_lookup(t, "get", 3));
    struct cmd_info *get = cmd_table_add(t, "GET", 3, 2, CMD_READONLY, 1, 1, 1);
    assert_string_equal(get->name, "get");
    cmd_info_set_policy(get, 3);
    get->extra = &marker;
    cmd_info_add_sub(get, "get|x", 5, 2, 0, 0, 0, 0);
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(name, sizeof(name), "Cmd%d", i);
        cmd_table_add(t, name, (size_t)n, -1, 0, 0, 0, 0);
    }
    assert_int_equal(cmd_count(t), 1001);
    for (int i = 0; i < 1000; i++) {
        int n = snprintf(name, sizeof(name), "CMD%d", i);
        const struct cmd_info *c = cmd_lookup(t, name, (size_t)n);
        assert_non_null(c);
        assert_int_equal(c->name_len, (size_t)n);
    }
    assert_int_equal(get->policy, 3);
    assert_ptr_equal(cmd_lookup(get->subcommands, "X", 1)->parent, get);
    assert_string_equal(cmd_lookup(get->subcommands, "x", 1)->fullname, "get|x");

    /* Replacing keeps the address and resets bulwark's fields. */
    struct cmd_info *again = cmd_table_add(t, "get", 3, -2, CMD_WRITE, 0, 0, 0);
    assert_ptr_equal(again, get);
    assert_int_equal(cmd_count(t), 1001);
    assert_int_equal(again->arity, -2);
    assert_int_equal(again->flags, CMD_WRITE);
    assert_int_equal(again->policy, 0);
    assert_null(again->extra);
    assert_null(again->subcommands);
    assert_ptr_equal(cmd_lookup_mut(t, "Get", 3), get);

    /* Names learned from an upstream get their key parser too. */
    assert_int_equal(cmd_table_add(t, "SORT", 4, -2, CMD_MOVABLEKEYS, 1, 1, 1)->keys_kind,
                     CMD_KEYS_SORT);
    assert_int_equal(cmd_table_add(t, "mod.x", 5, -2, CMD_MOVABLEKEYS, 0, 0, 0)->keys_kind,
                     CMD_KEYS_UNKNOWN);
    cmd_table_free(t);
    cmd_table_free(NULL);
}

static void
test_flag_parse(void **state)
{
    (void)state;
    assert_int_equal(cmd_flag_parse("write", 5), CMD_WRITE);
    assert_int_equal(cmd_flag_parse("WRITE", 5), CMD_WRITE);
    assert_int_equal(cmd_flag_parse("readonly", 8), CMD_READONLY);
    assert_int_equal(cmd_flag_parse("denyoom", 7), CMD_DENYOOM);
    assert_int_equal(cmd_flag_parse("no_mandatory_keys", 17), CMD_NO_MANDATORY_KEYS);
    assert_int_equal(cmd_flag_parse("movablekeys", 11), CMD_MOVABLEKEYS);
    assert_int_equal(cmd_flag_parse("allow_busy", 10), CMD_ALLOW_BUSY);
    assert_int_equal(cmd_flag_parse("no_async_loading", 16), CMD_NO_ASYNC_LOADING);
    assert_int_equal(cmd_flag_parse("may_replicate", 13), CMD_MAY_REPLICATE);
    assert_int_equal(cmd_flag_parse("writex", 5), CMD_WRITE);
    assert_int_equal(cmd_flag_parse("writ", 4), 0);
    assert_int_equal(cmd_flag_parse("@read", 5), 0);
    assert_int_equal(cmd_flag_parse("", 0), 0);
}

static void
test_arity(void **state)
{
    const struct cmd_info *get = t_get(state, "get");
    const struct cmd_info *set = t_get(state, "set");
    const struct cmd_info *cget = t_get_sub(state, "config", "get");
    const struct cmd_info *setname = t_get_sub(state, "client", "setname");

    assert_false(cmd_arity_ok(get, 1));
    assert_true(cmd_arity_ok(get, 2));
    assert_false(cmd_arity_ok(get, 3));
    assert_false(cmd_arity_ok(set, 2));
    assert_true(cmd_arity_ok(set, 3));
    assert_true(cmd_arity_ok(set, 9));
    assert_false(cmd_arity_ok(cget, 2)); /* CONFIG GET */
    assert_true(cmd_arity_ok(cget, 3));
    assert_true(cmd_arity_ok(cget, 5));
    assert_false(cmd_arity_ok(setname, 2));
    assert_true(cmd_arity_ok(setname, 3));
    assert_false(cmd_arity_ok(setname, 4));
    assert_true(cmd_arity_ok(t_get(state, "ping"), 1));
}

/* ---- error replies: byte-exact captures from redis-server 7.0.15 -------- */

static void
t_err_eq(char *buf, size_t n, const char *want, size_t wantlen)
{
    assert_int_equal(n, wantlen);
    assert_memory_equal(buf, want, wantlen);
    assert_int_equal(buf[n], '\0');
}

#define T_ERR_EQ(buf, n, lit) t_err_eq((buf), (n), (lit), sizeof(lit) - 1)

static void
test_arity_error(void **state)
{
    char buf[CMD_ERROR_MAX];
    size_t n;

    n = cmd_arity_error(t_get(state, "get"), buf, sizeof(buf));
    T_ERR_EQ(buf, n, "-ERR wrong number of arguments for 'get' command\r\n");
    n = cmd_arity_error(t_get_sub(state, "config", "get"), buf, sizeof(buf));
    T_ERR_EQ(buf, n, "-ERR wrong number of arguments for 'config|get' command\r\n");
    n = cmd_arity_error(t_get_sub(state, "client", "setname"), buf, sizeof(buf));
    T_ERR_EQ(buf, n, "-ERR wrong number of arguments for 'client|setname' command\r\n");
    n = cmd_arity_error(t_get(state, "config"), buf, sizeof(buf));
    T_ERR_EQ(buf, n, "-ERR wrong number of arguments for 'config' command\r\n");
    n = cmd_arity_error(t_get_sub(state, "memory", "usage"), buf, sizeof(buf));
    T_ERR_EQ(buf, n, "-ERR wrong number of arguments for 'memory|usage' command\r\n");

    /* Truncates like snprintf, returns the full length. */
    memset(buf, 'z', sizeof(buf));
    n = cmd_arity_error(t_get(state, "get"), buf, 10);
    assert_int_equal(n, 50);
    assert_string_equal(buf, "-ERR wron");
    assert_int_equal(buf[10], 'z');
    assert_int_equal(cmd_arity_error(t_get(state, "get"), NULL, 0), 50);
}

static size_t
t_sub_err(void **state, const char *container, const char *sub, size_t sublen, char *buf)
{
    return cmd_unknown_subcommand_error(t_get(state, container), sub, sublen, buf, CMD_ERROR_MAX);
}

static void
test_unknown_subcommand_error(void **state)
{
    char buf[CMD_ERROR_MAX], want[CMD_ERROR_MAX], x[200];
    size_t n;

    n = t_sub_err(state, "config", "foo", 3, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'foo'. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "config", "FooBar", 6, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'FooBar'. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "object", "foo", 3, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'foo'. Try OBJECT HELP.\r\n");
    n = t_sub_err(state, "xinfo", "foo", 3, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'foo'. Try XINFO HELP.\r\n");
    n = t_sub_err(state, "command", "foo", 3, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'foo'. Try COMMAND HELP.\r\n");
    n = t_sub_err(state, "config", "a\r\nb", 4, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'a  b'. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "config", "a\rb\nc", 5, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'a b c'. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "config", "a'b", 3, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'a'b'. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "config", "get\0", 4, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'get'. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "config", "ab\0c", 4, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand 'ab'. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "config", "\0abc", 4, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand ''. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "config", "", 0, buf);
    T_ERR_EQ(buf, n, "-ERR unknown subcommand ''. Try CONFIG HELP.\r\n");
    n = t_sub_err(state, "config", "a\tb\x01\x7f\xc3\xbf", 8, buf);
    T_ERR_EQ(buf, n,
             "-ERR unknown subcommand 'a\tb\x01\x7f\xc3\xbf'. Try CONFIG "
             "HELP.\r\n");

    /* 200, 128 and 127 x's: cut at 128. */
    memset(x, 'x', sizeof(x));
    snprintf(want, sizeof(want), "-ERR unknown subcommand '%.128s'. Try CLIENT HELP.\r\n", x);
    n = t_sub_err(state, "client", x, 200, buf);
    t_err_eq(buf, n, want, strlen(want));
    n = t_sub_err(state, "client", x, 128, buf);
    t_err_eq(buf, n, want, strlen(want));
    snprintf(want, sizeof(want), "-ERR unknown subcommand '%.127s'. Try CLIENT HELP.\r\n", x);
    n = t_sub_err(state, "client", x, 127, buf);
    t_err_eq(buf, n, want, strlen(want));
}

static size_t
t_cmd_err(int argc, const char *const *argv, const size_t *argvlen, char *buf)
{
    return cmd_unknown_command_error(argc, argv, argvlen, buf, CMD_ERROR_MAX);
}

static size_t
t_cmd_err_line(const char *line, char *buf)
{
    struct t_req r;

    t_split(&r, line);
    return t_cmd_err(r.argc, r.argv, r.argvlen, buf);
}

static void
test_unknown_command_error_short(void **state)
{
    char buf[CMD_ERROR_MAX];
    size_t n;

    (void)state;
    n = t_cmd_err_line("foo", buf);
    T_ERR_EQ(buf, n,
             "-ERR unknown command 'foo', with args beginning with: "
             "\r\n");
    n = t_cmd_err_line("foo a", buf);
    T_ERR_EQ(buf, n,
             "-ERR unknown command 'foo', with args beginning with: "
             "'a' \r\n");
    n = t_cmd_err_line("foo a b", buf);
    T_ERR_EQ(buf, n,
             "-ERR unknown command 'foo', with args beginning with: "
             "'a' 'b' \r\n");
    n = t_cmd_err_line("FOO a b c d e", buf);
    T_ERR_EQ(buf, n,
             "-ERR unknown command 'FOO', with args beginning with: "
             "'a' 'b' 'c' 'd' 'e' \r\n");
    n = t_cmd_err_line("'' a", buf);
    T_ERR_EQ(buf, n,
             "-ERR unknown command '', with args beginning with: "
             "'a' \r\n");
    n = t_cmd_err_line("foo '' b", buf);
    T_ERR_EQ(buf, n,
             "-ERR unknown command 'foo', with args beginning with: "
             "'' 'b' \r\n");
}

static void
test_unknown_command_error_bytes(void **state)
{
    char buf[CMD_ERROR_MAX];
    size_t n;

    (void)state;
    {
        const char *argv[] = {"foo", "a\r\nb"};
        const size_t len[] = {3, 4};
        n = t_cmd_err(2, argv, len, buf);
        T_ERR_EQ(buf, n,
                 "-ERR unknown command 'foo', with args beginning "
                 "with: 'a  b' \r\n");
    }
    {
        const char *argv[] = {"a\r\nb"};
        const size_t len[] = {4};
        n = t_cmd_err(1, argv, len, buf);
        T_ERR_EQ(buf, n,
                 "-ERR unknown command 'a  b', with args beginning "
                 "with: \r\n");
    }
    {
        const char *argv[] = {"foo", "a\0b"};
        const size_t len[] = {3, 3};
        n = t_cmd_err(2, argv, len, buf);
        T_ERR_EQ(buf, n,
                 "-ERR unknown command 'foo', with args beginning "
                 "with: 'a' \r\n");
    }
    {
        const char *argv[] = {"foo", "\0abc", "b"};
        const size_t len[] = {3, 4, 1};
        n = t_cmd_err(3, argv, len, buf);
        T_ERR_EQ(buf, n,
                 "-ERR unknown command 'foo', with args beginning "
                 "with: '' 'b' \r\n");
    }
    {
        const char *argv[] = {"get\0", "a"};
        const size_t len[] = {4, 1};
        n = t_cmd_err(2, argv, len, buf);
        T_ERR_EQ(buf, n,
                 "-ERR unknown command 'get', with args beginning "
                 "with: 'a' \r\n");
    }
    {
        const char *argv[] = {"foo", "a b", "c'd", "\xc3\xa9"};
        const size_t len[] = {3, 3, 3, 2};
        n = t_cmd_err(4, argv, len, buf);
        T_ERR_EQ(buf, n,
                 "-ERR unknown command 'foo', with args beginning "
                 "with: 'a b' 'c'd' '\xc3\xa9' \r\n");
    }
    {
        const char *argv[] = {"foo", "a\tb\x01\x7f\xc3\xbf"};
        const size_t len[] = {3, 8};
        n = t_cmd_err(2, argv, len, buf);
        T_ERR_EQ(buf, n,
                 "-ERR unknown command 'foo', with args beginning "
                 "with: 'a\tb\x01\x7f\xc3\xbf' \r\n");
    }
}

/* Long names and arguments: the cuts redis-server 7.0.15 made. */
static void
test_unknown_command_error_long(void **state)
{
    static const char prefix[] = "-ERR unknown command 'foo', with args beginning with: ";
    char buf[CMD_ERROR_MAX], want[CMD_ERROR_MAX], x[201], y[101];
    const char *argv[T_MAX_ARGS];
    size_t len[T_MAX_ARGS], n;

    (void)state;
    memset(x, 'x', 200);
    x[200] = '\0';
    memset(y, 'y', 100);
    y[100] = '\0';

    /* A 200-byte name is cut to 128. */
    argv[0] = "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
              "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
              "ffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff"
              "ffffffff";
    len[0] = 200;
    argv[1] = "a";
    len[1] = 1;
    n = t_cmd_err(2, argv, len, buf);
    snprintf(want, sizeof(want),
             "-ERR unknown command '%.128s', with args beginning with: 'a' "
             "\r\n",
             argv[0]);
    t_err_eq(buf, n, want, strlen(want));

    /* One 200-byte argument: 128 of it. */
    argv[0] = "foo";
    len[0] = 3;
    argv[1] = x;
    len[1] = 200;
    n = t_cmd_err(2, argv, len, buf);
    snprintf(want, sizeof(want), "%s'%.128s' \r\n", prefix, x);
    t_err_eq(buf, n, want, strlen(want));

    /* 40 arguments of 100 y's: the first whole, 25 of the second. */
    for (int i = 1; i <= 40; i++) {
        argv[i] = y;
        len[i] = 100;
    }
    n = t_cmd_err(41, argv, len, buf);
    snprintf(want, sizeof(want), "%s'%s' '%.25s' \r\n", prefix, y, y);
    t_err_eq(buf, n, want, strlen(want));

    /* 124 x's leave room for 1 byte of the next ("'a' "); 125 for none. */
    argv[1] = x;
    len[1] = 124;
    argv[2] = "abc";
    len[2] = 3;
    argv[3] = "d";
    len[3] = 1;
    n = t_cmd_err(4, argv, len, buf);
    snprintf(want, sizeof(want), "%s'%.124s' 'a' \r\n", prefix, x);
    t_err_eq(buf, n, want, strlen(want));
    len[1] = 125;
    n = t_cmd_err(4, argv, len, buf);
    snprintf(want, sizeof(want), "%s'%.125s' \r\n", prefix, x);
    t_err_eq(buf, n, want, strlen(want));
}

static void
test_unknown_command_error_many(void **state)
{
    char buf[CMD_ERROR_MAX];
    size_t n;

    (void)state;
    n = t_cmd_err_line("foo a0 a1 a2 a3 a4 a5 a6 a7 a8 a9 a10 a11 a12 a13 a14 "
                       "a15 a16 a17 a18 a19 a20 a21 a22 a23 a24 a25 a26 a27 "
                       "a28 a29 a30 a31 a32 a33 a34 a35 a36 a37 a38 a39",
                       buf);
    T_ERR_EQ(buf, n,
             "-ERR unknown command 'foo', with args beginning with: 'a0' 'a1' "
             "'a2' 'a3' 'a4' 'a5' 'a6' 'a7' 'a8' 'a9' 'a10' 'a11' 'a12' 'a13' "
             "'a14' 'a15' 'a16' 'a17' 'a18' 'a19' 'a20' 'a21' 'a22' \r\n");

    /* The longest reply fits CMD_ERROR_MAX; a small buffer truncates. */
    assert_true(n < CMD_ERROR_MAX);
    char small[8];
    size_t m = cmd_unknown_command_error(1, (const char *const[]){"foo"}, (const size_t[]){3},
                                         small, sizeof(small));
    assert_int_equal(m, 56);
    assert_string_equal(small, "-ERR un");
}

/* ---- key extraction ----------------------------------------------------- */

/* Keys of line, checked against want (-1 ends it), or -1 when want is NULL. */
static void
t_keys(void **state, const char *line, const int *want)
{
    struct t_req r;
    int out[T_MAX_ARGS], n, nwant = 0;
    const struct cmd_info *c;

    t_split(&r, line);
    c = cmd_lookup_argv(*state, r.argc, r.argv, r.argvlen);
    assert_non_null(c);
    n = cmd_get_keys(c, r.argc, r.argv, r.argvlen, out, T_MAX_ARGS);
    if (want == NULL) {
        if (n != -1)
            fail_msg("%s: %d keys, want -1", line, n);
        return;
    }
    while (want[nwant] >= 0)
        nwant++;
    if (n != nwant)
        fail_msg("%s: %d keys, want %d", line, n, nwant);
    for (int i = 0; i < n; i++) {
        if (out[i] != want[i])
            fail_msg("%s: key %d at %d, want %d", line, i, out[i], want[i]);
    }
}

#define KEYS(line, ...) t_keys(state, (line), (const int[]){__VA_ARGS__, -1})
#define NOKEYS(line) t_keys(state, (line), (const int[]){-1})
#define BAD(line) t_keys(state, (line), NULL)

static void
test_keys_range(void **state)
{
    KEYS("get a", 1);
    KEYS("SET a b EX 10", 1);
    KEYS("mget a b c", 1, 2, 3);
    KEYS("mset a 1 b 2", 1, 3);
    BAD("mset a 1 b"); /* Redis: wrong number of arguments for 'mset' */
    BAD("msetnx a 1 b");
    KEYS("blpop a b 0", 1, 2);
    KEYS("bitop and d a b", 2, 3, 4);
    KEYS("object encoding k", 2);
    KEYS("xinfo stream k full", 2);
    KEYS("memory usage k", 2);
    NOKEYS("ping");
    NOKEYS("config get maxmemory");
    NOKEYS("config nope");
    BAD("get");
    BAD("get a b");
    BAD("config get");
    KEYS("georadius_ro k 1 2 3 m", 1);

    /* A short output array still reports the full count. */
    struct t_req r;
    int out[2] = {-5, -5};
    t_split(&r, "mget a b c");
    assert_int_equal(cmd_get_keys(t_get(state, "mget"), r.argc, r.argv, r.argvlen, out, 1), 3);
    assert_int_equal(out[0], 1);
    assert_int_equal(out[1], -5);
}

static void
test_keys_eval(void **state)
{
    NOKEYS("eval s 0");
    NOKEYS("eval s 0 a");
    KEYS("eval s 2 a b c", 3, 4);
    KEYS("EVALSHA s 1 a", 3);
    KEYS("eval_ro s 1 a x", 3);
    KEYS("evalsha_ro s 2 a b", 3, 4);
    KEYS("fcall f 1 a b", 3);
    NOKEYS("fcall_ro f 0 a");
    BAD("eval s 3 a b"); /* Number of keys can't be greater than ... */
    BAD("eval s 1");
    BAD("eval s -1 a"); /* Number of keys can't be negative */
    BAD("eval s x a");  /* value is not an integer or out of range */
    BAD("eval s 2x a b");
    BAD("eval s 02 a b");
    BAD("eval s +1 a");
    BAD("eval s -0 a");
    BAD("eval s '' a");
    BAD("eval s 99999999999999999999 a");
    BAD("fcall f 2 a");
}

static void
test_keys_numkeys(void **state)
{
    KEYS("zunionstore d 2 a b", 1, 3, 4);
    KEYS("zunionstore d 2 a b weights 1 2", 1, 3, 4);
    KEYS("ZINTERSTORE d 1 a", 1, 3);
    KEYS("zdiffstore d 2 a b", 1, 3, 4);
    BAD("zunionstore d 3 a b");
    BAD("zunionstore d 0 a");
    BAD("zunionstore d x a");
    BAD("zunionstore d 02 a b");
    KEYS("zunion 2 a b", 2, 3);
    KEYS("zunion 2 a b withscores", 2, 3);
    KEYS("zinter 1 a", 2);
    KEYS("zdiff 2 a b", 2, 3);
    KEYS("zintercard 2 a b limit 1", 2, 3);
    KEYS("sintercard 2 a b", 2, 3);
    KEYS("sintercard 1 a limit 0", 2);
    BAD("zunion 3 a b");
    BAD("zunion 0 a");
    BAD("zintercard 0 a"); /* at least 1 input key is needed */
    BAD("zintercard 3 a b");
    BAD("sintercard 2 a");
}

static void
test_keys_mpop(void **state)
{
    KEYS("lmpop 2 a b left", 2, 3);
    KEYS("lmpop 1 a left count 2", 2);
    KEYS("zmpop 2 a b min", 2, 3);
    KEYS("blmpop 0 2 a b left", 3, 4);
    KEYS("blmpop 1.5 1 a right", 3);
    KEYS("bzmpop 0 1 a max", 3);
    BAD("lmpop 3 a b left"); /* Redis: syntax error (no LEFT|RIGHT left) */
    BAD("lmpop 2 a b");
    BAD("lmpop 0 a left"); /* numkeys should be greater than 0 */
    BAD("lmpop 02 a left");
    BAD("blmpop 0 3 a b left");
    BAD("bzmpop 0 9 a max");
}

static void
test_keys_xread(void **state)
{
    KEYS("xread streams a 0", 2);
    KEYS("XREAD COUNT 1 STREAMS a b 0 0", 4, 5);
    KEYS("xread block 0 streams a b 0 0", 4, 5);
    KEYS("xread count 1 block 2 streams streams streams 0 0", 6, 7);
    KEYS("xread streams streams 0", 2);
    KEYS("xreadgroup group g c streams a 0", 5);
    KEYS("xreadgroup group g c count 1 streams a b 0 0", 7, 8);
    KEYS("xreadgroup group g c noack streams a 0", 6);
    KEYS("xreadgroup noack group g c streams a >", 6);
    BAD("xread streams a b 0"); /* Unbalanced XREAD list */
    BAD("xread streams a 0 streams b 1");
    BAD("xread count 1 a b"); /* syntax error */
    BAD("xread bogus streams a 0");
    BAD("xread group g c streams a 0"); /* GROUP only for XREADGROUP */
    BAD("xread noack streams a 0");
    BAD("xread count 1 block 2");              /* no STREAMS */
    BAD("xreadgroup count 1 streams a b 0 0"); /* Missing GROUP option */
    BAD("xreadgroup group g c streams a b 0");
}

static void
test_keys_sort(void **state)
{
    KEYS("sort a", 1);
    KEYS("sort a store d", 1, 3);
    KEYS("sort a by x store d", 1, 5);
    KEYS("SORT a STORE d LIMIT 0 1", 1, 3);
    KEYS("sort a store d store e", 1, 5); /* the last STORE wins */
    KEYS("sort a get store store d", 1, 5);
    KEYS("sort a by store store d", 1, 5);
    KEYS("sort a limit 0 1 store d", 1, 6);
    KEYS("sort a asc desc alpha", 1);
    KEYS("sort_ro a by x get y limit 0 1 asc", 1);
    KEYS("sort_ro a", 1);
    BAD("sort a store"); /* syntax error */
    BAD("sort a foo");
    BAD("sort a limit 0");
    BAD("sort_ro a store d");
}

static void
test_keys_migrate(void **state)
{
    KEYS("migrate h p k 0 1", 3);
    KEYS("migrate h p '' 0 1", 3);
    KEYS("migrate h p '' 0 1 keys a b", 7, 8);
    KEYS("MIGRATE h p '' 0 1 COPY REPLACE KEYS a b", 9, 10);
    KEYS("migrate h p '' 0 1 auth pw keys a", 9);
    KEYS("migrate h p '' 0 1 auth2 u pw keys a", 10);
    KEYS("migrate h p '' 0 1 auth keys keys a", 9);
    KEYS("migrate h p k 0 1 copy", 3);
    NOKEYS("migrate h p '' 0 1 keys");
    BAD("migrate h p k 0 1 keys a b"); /* key argument must be empty */
    BAD("migrate h p '' 0 1 bogus keys a");
    BAD("migrate h p '' 0 1 auth");
    BAD("migrate h p '' 0 1 auth2 u");
}

static void
test_keys_georadius(void **state)
{
    KEYS("georadius k 1 2 3 m", 1);
    KEYS("georadius k 1 2 3 m store d", 1, 7);
    KEYS("georadius k 1 2 3 m storedist d", 1, 7);
    KEYS("georadius k 1 2 3 m store d storedist e", 1, 9);
    KEYS("georadius k 1 2 3 m count 1 any asc store d", 1, 11);
    KEYS("georadius k 1 2 3 m withdist withhash withcoord desc", 1);
    KEYS("georadiusbymember k m 3 km store d", 1, 6);
    KEYS("GEORADIUSBYMEMBER k m 3 km STOREDIST d", 1, 6);
    KEYS("georadiusbymember k m 3 km", 1);
    BAD("georadius k 1 2 3 m store");
    BAD("georadius k 1 2 3 m bogus");
    BAD("georadius k 1 2 3 m count");
    BAD("georadiusbymember k m 3 km storedist");
}

static void
test_keys_unknown_movable(void **state)
{
    struct cmd_table *t = cmd_table_new();
    const char *argv[] = {"mod.x", "a", "b"};
    const size_t len[] = {5, 1, 1};
    int out[4];
    const struct cmd_info *c = cmd_table_add(t, "mod.x", 5, -2, CMD_MOVABLEKEYS, 1, 1, 1);

    (void)state;
    assert_int_equal(cmd_get_keys(c, 3, argv, len, out, 4), -1);
    cmd_table_free(t);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_builtin_size),
        cmocka_unit_test(test_builtin_entries),
        cmocka_unit_test(test_builtin_subcommands),
        cmocka_unit_test(test_builtin_foreach),
        cmocka_unit_test(test_lookup_case_and_binary),
        cmocka_unit_test(test_lookup_argv),
        cmocka_unit_test(test_table_add_replace_grow),
        cmocka_unit_test(test_flag_parse),
        cmocka_unit_test(test_lookup_path),
        cmocka_unit_test(test_arity),
        cmocka_unit_test(test_arity_error),
        cmocka_unit_test(test_unknown_subcommand_error),
        cmocka_unit_test(test_unknown_command_error_short),
        cmocka_unit_test(test_unknown_command_error_bytes),
        cmocka_unit_test(test_unknown_command_error_long),
        cmocka_unit_test(test_unknown_command_error_many),
        cmocka_unit_test(test_keys_range),
        cmocka_unit_test(test_keys_eval),
        cmocka_unit_test(test_keys_numkeys),
        cmocka_unit_test(test_keys_mpop),
        cmocka_unit_test(test_keys_xread),
        cmocka_unit_test(test_keys_sort),
        cmocka_unit_test(test_keys_migrate),
        cmocka_unit_test(test_keys_georadius),
        cmocka_unit_test(test_keys_unknown_movable),
    };

    return cmocka_run_group_tests(tests, t_setup, t_teardown);
}
