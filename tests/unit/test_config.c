/*
 * Unit tests of config/config.c: defaults, every value type and unit,
 * quoting, include, every error text, command-line overrides, CONFIG GET/SET,
 * the glob matcher (vectors checked against redis-server 7.0.15), reload,
 * and the sample config/bulwark.conf (run from the repository root).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "config/config.h"

#define SAMPLE_PATH "config/bulwark.conf"
#define ERRLEN 512
#define MAX_PAIRS 64

/* CONFIG GET pairs collected by collect(). */
struct pairs {
    size_t n;                   /* pairs collected */
    char name[MAX_PAIRS][64];   /* names as emitted */
    char value[MAX_PAIRS][256]; /* values as emitted */
};

static void
collect(void *ud, const char *name, const char *value)
{
    struct pairs *p = ud;

    assert_true(p->n < MAX_PAIRS);
    snprintf(p->name[p->n], sizeof(p->name[0]), "%s", name);
    snprintf(p->value[p->n], sizeof(p->value[0]), "%s", value);
    p->n++;
}

/* The CONFIG GET value of one directive (exactly one must match). */
static const char *
get1(const struct cfg *c, const char *name)
{
    static struct pairs p;

    p.n = 0;
    assert_int_equal(cfg_get(c, name, collect, &p), 1);
    return p.value[0];
}

/* Load text as "t.conf" into a fresh config, which must succeed. */
static void
load_ok(struct cfg *c, const char *text)
{
    char err[ERRLEN] = "";
    int rc;

    cfg_init(c);
    rc = cfg_load_string(c, text, "t.conf", err, sizeof(err));
    if (rc != CFG_OK)
        fail_msg("load failed: %s", err);
}

/* Loading text must fail with exactly want. */
static void
load_err(const char *text, const char *want)
{
    struct cfg c;
    char err[ERRLEN] = "";

    cfg_init(&c);
    assert_int_equal(cfg_load_string(&c, text, "t.conf", err, sizeof(err)), CFG_ERR);
    assert_string_equal(err, want);
    cfg_deinit(&c);
}

/* Loading text must succeed and CONFIG GET name must answer want. */
static void
load_get(const char *text, const char *name, const char *want)
{
    struct cfg c;

    load_ok(&c, text);
    assert_string_equal(get1(&c, name), want);
    cfg_deinit(&c);
}

/* ---- defaults ----------------------------------------------------------- */

static void
test_defaults(void **state)
{
    struct cfg c;

    (void)state;
    cfg_init(&c);
    assert_int_equal(c.bind_count, 1);
    assert_string_equal(c.bind[0], "127.0.0.1");
    assert_int_equal(c.port, 6380);
    assert_null(c.unixsocket);
    assert_int_equal(c.unixsocketperm, 0);
    assert_int_equal(c.maxclients, 10000);
    assert_int_equal(c.timeout, 0);
    assert_int_equal(c.tcp_keepalive, 300);
    assert_int_equal(c.tcp_backlog, 511);
    assert_true(c.proto_max_bulk_len == 512ull * 1024 * 1024);
    assert_true(c.client_query_buffer_limit == 1024ull * 1024 * 1024);
    assert_int_equal(c.client_max_pending, 10000);
    assert_null(c.requirepass);
    assert_string_equal(c.upstream_host, "127.0.0.1");
    assert_int_equal(c.upstream_port, 6379);
    assert_null(c.upstream_password);
    assert_null(c.upstream_user);
    assert_int_equal(c.upstream_db, 0);
    assert_int_equal(c.upstream_connections, 1);
    assert_int_equal(c.upstream_connect_timeout_ms, 1000);
    assert_int_equal(c.upstream_timeout_ms, 5000);
    assert_int_equal(c.upstream_retry_max_ms, 1000);
    assert_int_equal(c.deny_commands_count, 2);
    assert_string_equal(c.deny_commands[0], "SHUTDOWN");
    assert_string_equal(c.deny_commands[1], "DEBUG");
    assert_int_equal(c.loglevel, 2);
    assert_null(c.logfile);
    assert_false(c.daemonize);
    assert_null(c.pidfile);
    assert_int_equal(c.shutdown_timeout_ms, 10000);
    assert_int_equal(c.override_count, 0);
    cfg_deinit(&c);
    cfg_deinit(&c); /* deinit leaves a zeroed struct: a second one is safe */
}

/* ---- the sample file ---------------------------------------------------- */

static void
test_sample_loads_to_defaults(void **state)
{
    struct cfg def, sample;
    struct pairs a = {0}, b = {0};
    char err[ERRLEN];

    (void)state;
    cfg_init(&def);
    cfg_init(&sample);
    if (cfg_load_file(&sample, SAMPLE_PATH, err, sizeof(err)) != CFG_OK)
        fail_msg("%s (run from the repository root)", err);
    cfg_get(&def, "*", collect, &a);
    cfg_get(&sample, "*", collect, &b);
    assert_int_equal(a.n, b.n);
    for (size_t i = 0; i < a.n; i++) {
        assert_string_equal(a.name[i], b.name[i]);
        if (strcmp(a.value[i], b.value[i]) != 0)
            fail_msg("%s: sample gives '%s', default is '%s'", a.name[i], b.value[i], a.value[i]);
    }
    assert_int_equal(sample.port, 6380);
    assert_null(sample.logfile);
    cfg_deinit(&def);
    cfg_deinit(&sample);
}

/* True if some line of text starts with "name " or "# name ". */
static bool
mentions(const char *text, const char *name)
{
    size_t n = strlen(name);

    for (const char *l = text; l != NULL; l = strchr(l, '\n'), l = l ? l + 1 : l) {
        const char *p = strncmp(l, "# ", 2) == 0 ? l + 2 : l;
        if (strncmp(p, name, n) == 0 && p[n] == ' ')
            return true;
    }
    return false;
}

static void
test_sample_mentions_every_directive(void **state)
{
    struct cfg c;
    struct pairs p = {0};
    char text[32768];
    FILE *f = fopen(SAMPLE_PATH, "r");
    size_t len;

    (void)state;
    assert_non_null(f);
    len = fread(text, 1, sizeof(text) - 1, f);
    fclose(f);
    assert_true(len < sizeof(text) - 1);
    text[len] = '\0';
    cfg_init(&c);
    assert_true(cfg_get(&c, "*", collect, &p) >= 26);
    for (size_t i = 0; i < p.n; i++) {
        if (!mentions(text, p.name[i]))
            fail_msg("directive '%s' is missing from %s", p.name[i], SAMPLE_PATH);
    }
    assert_false(mentions(text, "no-such-directive"));
    cfg_deinit(&c);
}

/* ---- value types -------------------------------------------------------- */

static void
test_int_and_bool(void **state)
{
    struct cfg c;

    (void)state;
    load_ok(&c, "port 0\nmaxclients 1000000\ntimeout 2147483647\n"
                "daemonize YES\nupstream-databases 15\nupstream-db 0\n");
    assert_int_equal(c.port, 0);
    assert_int_equal(c.maxclients, 1000000);
    assert_int_equal(c.timeout, 2147483647);
    assert_true(c.daemonize);
    assert_int_equal(c.upstream_databases, 15);
    assert_int_equal(c.upstream_db, 0);
    cfg_deinit(&c);
    /* issue #14: clients SELECT their database; upstream-db is retired */
    load_err("upstream-db 15",
             "t.conf:1: 'upstream-db' is retired: every client starts in database 0 and "
             "SELECTs its own, as with Redis (redis://host:port/N); remove the line");
    load_get("daemonize yes\ndaemonize No", "daemonize", "no");
    /* Redis's string2ll: no leading zeros, no '+', no "-0", no spaces */
    load_err("port 007", "t.conf:1: 'port' must be an integer, got '007'");
    load_err("port +1", "t.conf:1: 'port' must be an integer, got '+1'");
    load_err("port -0", "t.conf:1: 'port' must be an integer, got '-0'");
    load_err("port \" 1\"", "t.conf:1: 'port' must be an integer, got ' 1'");
    load_err("port 1.0", "t.conf:1: 'port' must be an integer, got '1.0'");
    load_err("maxclients 99999999999999999999", "t.conf:1: 'maxclients' must be an integer, got "
                                                "'99999999999999999999'");
    load_err("port 70000", "t.conf:1: 'port' must be between 0 and 65535, got 70000");
    load_err("port -1", "t.conf:1: 'port' must be between 0 and 65535, got -1");
    load_err("maxclients 0", "t.conf:1: 'maxclients' must be between 1 and 1000000, got 0");
    load_err("upstream-connections 65",
             "t.conf:1: 'upstream-connections' must be between 1 and 64, got 65");
    load_err("daemonize maybe", "t.conf:1: 'daemonize' must be yes or no, got 'maybe'");
    load_err("daemonize 1", "t.conf:1: 'daemonize' must be yes or no, got '1'");
}

static void
test_octal(void **state)
{
    struct cfg c;

    (void)state;
    load_ok(&c, "unixsocketperm 770");
    assert_int_equal(c.unixsocketperm, 0770);
    assert_string_equal(get1(&c, "unixsocketperm"), "770");
    cfg_deinit(&c);
    load_get("unixsocketperm 0777", "unixsocketperm", "777");
    load_err("unixsocketperm 999", "t.conf:1: 'unixsocketperm' must be an "
                                   "octal number like 700, got '999'");
    load_err("unixsocketperm 1777",
             "t.conf:1: 'unixsocketperm' must be between 0 and 777, got 1777");
}

static void
test_sizes(void **state)
{
    struct cfg c;
    static const struct {
        const char *text;
        uint64_t bytes;
    } ok[] = {
        {"1048576", 1048576}, {"1048576b", 1048576}, {"1048576B", 1048576}, {"1mb", 1048576},
        {"1MB", 1048576},     {"1Mb", 1048576},      {"2m", 2000000},       {"2M", 2000000},
        {"1025kb", 1049600},  {"1049k", 1049000},    {"1gb", 1073741824},   {"3g", 3000000000ull},
    };

    (void)state;
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        char text[128];
        snprintf(text, sizeof(text), "proto-max-bulk-len %s", ok[i].text);
        load_ok(&c, text);
        if (c.proto_max_bulk_len != ok[i].bytes)
            fail_msg("%s gave %llu", ok[i].text, (unsigned long long)c.proto_max_bulk_len);
        cfg_deinit(&c);
    }
    load_get("client-query-buffer-limit 9223372036854775807", "client-query-buffer-limit",
             "9223372036854775807");
    load_get("proto-max-bulk-len 2mb", "proto-max-bulk-len", "2097152");
#define SIZE_RULE "must be a size: digits with an optional unit b k kb m mb g gb"
    load_err("proto-max-bulk-len 1x", "t.conf:1: 'proto-max-bulk-len' " SIZE_RULE ", got '1x'");
    load_err("proto-max-bulk-len -1mb",
             "t.conf:1: 'proto-max-bulk-len' " SIZE_RULE ", got '-1mb'");
    load_err("proto-max-bulk-len +1mb",
             "t.conf:1: 'proto-max-bulk-len' " SIZE_RULE ", got '+1mb'");
    load_err("proto-max-bulk-len 1.5mb",
             "t.conf:1: 'proto-max-bulk-len' " SIZE_RULE ", got '1.5mb'");
    load_err("proto-max-bulk-len \" 1mb\"",
             "t.conf:1: 'proto-max-bulk-len' " SIZE_RULE ", got ' 1mb'");
    load_err("proto-max-bulk-len 1kib",
             "t.conf:1: 'proto-max-bulk-len' " SIZE_RULE ", got '1kib'");
    /* overflow through the unit is a syntax error in Redis's memtoull ... */
    load_err("proto-max-bulk-len 99999999999gb",
             "t.conf:1: 'proto-max-bulk-len' " SIZE_RULE ", got '99999999999gb'");
    /* ... but through the digits it saturates and fails the range check */
    load_err("proto-max-bulk-len 99999999999999999999",
             "t.conf:1: 'proto-max-bulk-len' must be between 1048576 and "
             "9223372036854775807 bytes, got 99999999999999999999");
    load_err("proto-max-bulk-len 9223372036854775808",
             "t.conf:1: 'proto-max-bulk-len' must be between 1048576 and "
             "9223372036854775807 bytes, got 9223372036854775808");
    load_err("proto-max-bulk-len 1000",
             "t.conf:1: 'proto-max-bulk-len' must be between 1048576 and "
             "9223372036854775807 bytes, got 1000");
    /* an empty digit part is 0 in Redis (CONFIG SET maxmemory kb is OK) */
    load_err("proto-max-bulk-len kb",
             "t.conf:1: 'proto-max-bulk-len' must be between 1048576 and "
             "9223372036854775807 bytes, got kb");
}

static void
test_durations(void **state)
{
    struct cfg c;

    (void)state;
    load_ok(&c, "upstream-timeout 250\nupstream-connect-timeout 2s\n"
                "upstream-retry-max 30ms\nshutdown-timeout 3\n");
    assert_int_equal(c.upstream_timeout_ms, 250);
    assert_int_equal(c.upstream_connect_timeout_ms, 2000);
    assert_int_equal(c.upstream_retry_max_ms, 30);
    assert_int_equal(c.shutdown_timeout_ms, 3000);
    assert_string_equal(get1(&c, "upstream-connect-timeout"), "2000");
    assert_string_equal(get1(&c, "shutdown-timeout"), "3");
    cfg_deinit(&c);
    load_get("upstream-timeout 1S", "upstream-timeout", "1000");
    load_get("upstream-timeout 7MS", "upstream-timeout", "7");
    load_get("shutdown-timeout 2000ms", "shutdown-timeout", "2");
    load_get("shutdown-timeout 0", "shutdown-timeout", "0");
#define MS_RULE                                                                \
    "must be a duration: digits with an optional unit ms or s (bare number = " \
    "ms)"
    load_err("upstream-timeout 5x", "t.conf:1: 'upstream-timeout' " MS_RULE ", got '5x'");
    load_err("upstream-timeout 1.5s", "t.conf:1: 'upstream-timeout' " MS_RULE ", got '1.5s'");
    load_err("upstream-timeout -1", "t.conf:1: 'upstream-timeout' " MS_RULE ", got '-1'");
    load_err("upstream-timeout ms", "t.conf:1: 'upstream-timeout' " MS_RULE ", got 'ms'");
    load_err("upstream-timeout 1m", "t.conf:1: 'upstream-timeout' " MS_RULE ", got '1m'");
    load_err("upstream-timeout \"\"", "t.conf:1: 'upstream-timeout' " MS_RULE ", got ''");
    load_err("shutdown-timeout 1x",
             "t.conf:1: 'shutdown-timeout' must be a duration: "
             "digits with an optional unit ms or s (bare number = s), got '1x'");
    load_err("upstream-timeout 0",
             "t.conf:1: 'upstream-timeout' must be between 1 and 3600000 ms, got 0");
    load_err("upstream-timeout 3601s", "t.conf:1: 'upstream-timeout' must be "
                                       "between 1 and 3600000 ms, got 3601s");
    load_err("shutdown-timeout 1500ms",
             "t.conf:1: 'shutdown-timeout' must be a whole number of seconds, "
             "got '1500ms'");
    load_err("upstream-timeout 99999999999999999999s",
             "t.conf:1: 'upstream-timeout' " MS_RULE ", got '99999999999999999999s'");
}

static void
test_enum_string_list_hostport(void **state)
{
    struct cfg c;

    (void)state;
    load_ok(&c, "loglevel DEBUG\nrequirepass \"s3 cret\"\nlogfile /tmp/b.log\n"
                "bind 10.0.0.1 \"::1  -::2\"\ndeny-commands flushall\n"
                "upstream [::1]:6390\nupstream-user u\nupstream-password \"\"\n");
    assert_int_equal(c.loglevel, 0);
    assert_string_equal(c.requirepass, "s3 cret");
    assert_string_equal(c.logfile, "/tmp/b.log");
    assert_null(c.upstream_password);
    assert_int_equal(c.bind_count, 3);
    assert_string_equal(c.bind[1], "::1");
    assert_string_equal(c.bind[2], "-::2");
    assert_int_equal(c.deny_commands_count, 1); /* a list line replaces */
    assert_string_equal(c.deny_commands[0], "flushall");
    assert_string_equal(c.upstream_host, "::1");
    assert_int_equal(c.upstream_port, 6390);
    assert_string_equal(get1(&c, "upstream"), "[::1]:6390");
    assert_string_equal(get1(&c, "loglevel"), "debug");
    assert_string_equal(get1(&c, "bind"), "10.0.0.1 ::1 -::2");
    cfg_deinit(&c);
    load_ok(&c, "bind \"\"\ndeny-commands \"\"\nrequirepass x\nrequirepass \"\"");
    assert_int_equal(c.bind_count, 0);
    assert_int_equal(c.deny_commands_count, 0);
    assert_null(c.requirepass);
    assert_string_equal(get1(&c, "bind"), "");
    cfg_deinit(&c);
    load_get("upstream redis.local:7000", "upstream", "redis.local:7000");
    load_get("loglevel warning\nloglevel Verbose", "loglevel", "verbose");
    load_err("loglevel loud", "t.conf:1: 'loglevel' must be one of debug, "
                              "verbose, notice, warning, got 'loud'");
    load_err("bind", "t.conf:1: 'bind' needs at least one argument (\"\" for none)");
#define HP_RULE "must be host:port or [ipv6]:port with port 1..65535"
    static const char *const bad[] = {"localhost", "::1:6379",  "host:0", "host:65536",
                                      ":6379",     "[::1]6379", "[::1]:", "host:abc",
                                      "[]:6379",   "host:",     "[::1"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        char text[64], want[160];
        snprintf(text, sizeof(text), "upstream %s", bad[i]);
        snprintf(want, sizeof(want), "t.conf:1: 'upstream' " HP_RULE ", got '%s'", bad[i]);
        load_err(text, want);
    }
}

/* ---- syntax ------------------------------------------------------------- */

static void
test_quoting(void **state)
{
    struct cfg c;

    (void)state;
    load_ok(&c, "requirepass \"a\\x41\\x4a\\n\\r\\t\\\"\\\\\\q\\b\\a\"");
    assert_string_equal(c.requirepass, "aAJ\n\r\t\"\\q\b\a");
    cfg_deinit(&c);
    load_get("requirepass 'it\\'s \"x\" \\n'", "requirepass", "it's \"x\" \\n");
    load_get("requirepass foo\"bar baz\"", "requirepass", "foobar baz");
    load_get("requirepass foo'bar baz'", "requirepass", "foobar baz");
    load_get("requirepass \"\\x4\"", "requirepass", "x4"); /* not two hex digits */
    load_get("requirepass \"\\xZZ\"", "requirepass", "xZZ");
    load_get("requirepass a#b", "requirepass", "a#b");
    load_get("requirepass \"a b\"\t ", "requirepass", "a b");
    load_get("  \t requirepass   spaced  \t", "requirepass", "spaced");
    load_get("PoRt 7000", "port", "7000");
    load_get("", "port", "6380");
    load_get("\n\n# only comments\n   # indented comment\n", "port", "6380");
    load_get("port 1\r\nport 2\r\n", "port", "2"); /* CRLF; later lines win */
    load_get("port 3", "port", "3");               /* no final newline */
#define UNBALANCED                                                           \
    "unbalanced quotes (a closing quote must be followed by a space or the " \
    "end of the line)"
    load_err("port \"6380", "t.conf:1: " UNBALANCED);
    load_err("port '6380", "t.conf:1: " UNBALANCED);
    load_err("port \"6380\"x", "t.conf:1: " UNBALANCED);
    load_err("port '6380'x", "t.conf:1: " UNBALANCED);
    load_err("requirepass \"ends with backslash\\\"", "t.conf:1: " UNBALANCED);
    load_err("requirepass \"a\\x00b\"", "t.conf:1: argument 1 of 'requirepass' "
                                        "contains a NUL byte, which is not allowed");
    /* no comments after a directive, as in Redis */
    load_err("port 6380 # the port", "t.conf:1: 'port' takes exactly one argument, got 4");
    load_err("port", "t.conf:1: 'port' takes exactly one argument, got 0");
    load_err("nope 1", "t.conf:1: unknown directive 'nope' (bulwark --help lists them)");
    load_err("maxmemory 1gb",
             "t.conf:1: unknown directive 'maxmemory' (bulwark --help lists them)");
    load_err("# c\n\nport 1\r\n  \n port x\nport 2",
             "t.conf:5: 'port' must be an integer, got 'x'");
}

/* ---- include ------------------------------------------------------------ */

static char tmpdir[64];

static void
write_file(const char *rel, const char *text)
{
    char path[256];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    (void)sb;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static int
setup_tmpdir(void **state)
{
    char sub[128];

    (void)state;
    snprintf(tmpdir, sizeof(tmpdir), "/tmp/bw_test_config_XXXXXX");
    if (mkdtemp(tmpdir) == NULL)
        return -1;
    snprintf(sub, sizeof(sub), "%s/sub", tmpdir);
    if (mkdir(sub, 0700) != 0)
        return -1;
    snprintf(sub, sizeof(sub), "%s/conf.d", tmpdir);
    return mkdir(sub, 0700);
}

static int
teardown_tmpdir(void **state)
{
    (void)state;
    return nftw(tmpdir, rm_entry, 8, FTW_DEPTH | FTW_PHYS);
}

/* Load tmpdir/rel; returns the rc, err filled. */
static int
load_tmp(struct cfg *c, const char *rel, char *err)
{
    char path[256];

    snprintf(path, sizeof(path), "%s/%s", tmpdir, rel);
    cfg_init(c);
    return cfg_load_file(c, path, err, ERRLEN);
}

static void
test_include(void **state)
{
    struct cfg c;
    char err[ERRLEN];

    (void)state;
    /* relative to the including file's directory, at any depth */
    write_file("main.conf", "port 1\ninclude sub/a.conf\ntimeout 3\n");
    write_file("sub/a.conf", "port 2\ntimeout 2\ninclude b.conf\n");
    write_file("sub/b.conf", "maxclients 77\n");
    assert_int_equal(load_tmp(&c, "main.conf", err), CFG_OK);
    assert_int_equal(c.port, 2);        /* included after port 1 */
    assert_int_equal(c.timeout, 3);     /* main's later line wins */
    assert_int_equal(c.maxclients, 77); /* sub/b.conf, not ./b.conf */
    cfg_deinit(&c);
    /* glob: alphabetical order; no match is no error */
    write_file("conf.d/20-b.conf", "port 20\n");
    write_file("conf.d/10-a.conf", "port 10\ntimeout 10\n");
    write_file("glob.conf", "include conf.d/*.conf\ninclude nothing/*.conf\n");
    assert_int_equal(load_tmp(&c, "glob.conf", err), CFG_OK);
    assert_int_equal(c.port, 20);
    assert_int_equal(c.timeout, 10);
    cfg_deinit(&c);
    /* the same file twice in a row is not a loop */
    write_file("twice.conf", "include sub/b.conf\ninclude sub/b.conf\n");
    assert_int_equal(load_tmp(&c, "twice.conf", err), CFG_OK);
    cfg_deinit(&c);
}

static void
test_include_errors(void **state)
{
    struct cfg c;
    char err[ERRLEN], want[ERRLEN];

    (void)state;
    write_file("bad.conf", "port 1\n\ninclude sub/bad2.conf\n");
    write_file("sub/bad2.conf", "# x\nport 99999\n");
    assert_int_equal(load_tmp(&c, "bad.conf", err), CFG_ERR);
    snprintf(want, sizeof(want),
             "%s/sub/bad2.conf:2: 'port' must be between 0 "
             "and 65535, got 99999",
             tmpdir);
    assert_string_equal(err, want);
    cfg_deinit(&c);

    write_file("missing.conf", "include nope.conf\n");
    assert_int_equal(load_tmp(&c, "missing.conf", err), CFG_ERR);
    snprintf(want, sizeof(want),
             "%s/missing.conf:1: cannot open include file "
             "'%s/nope.conf': No such file or directory",
             tmpdir, tmpdir);
    assert_string_equal(err, want);
    cfg_deinit(&c);

    write_file("loop1.conf", "port 1\ninclude loop2.conf\n");
    write_file("loop2.conf", "include loop1.conf\n");
    assert_int_equal(load_tmp(&c, "loop1.conf", err), CFG_ERR);
    snprintf(want, sizeof(want),
             "%s/loop2.conf:1: include loop: '%s/loop1.conf' "
             "is already being read",
             tmpdir, tmpdir);
    assert_string_equal(err, want);
    cfg_deinit(&c);

    write_file("self.conf", "include ./self.conf\n");
    assert_int_equal(load_tmp(&c, "self.conf", err), CFG_ERR);
    assert_non_null(strstr(err, "self.conf:1: include loop: "));
    cfg_deinit(&c);

    write_file("dir.conf", "include conf.d\n");
    assert_int_equal(load_tmp(&c, "dir.conf", err), CFG_ERR);
    snprintf(want, sizeof(want),
             "%s/dir.conf:1: cannot open include file "
             "'%s/conf.d': Is a directory",
             tmpdir, tmpdir);
    assert_string_equal(err, want);
    cfg_deinit(&c);

    load_err("include", "t.conf:1: 'include' takes exactly one argument, got 0");
    load_err("include a b", "t.conf:1: 'include' takes exactly one argument, got 2");

    assert_int_equal(load_tmp(&c, "no-such.conf", err), CFG_ERR);
    snprintf(want, sizeof(want),
             "%s/no-such.conf: cannot open: No such file "
             "or directory",
             tmpdir);
    assert_string_equal(err, want);
    cfg_deinit(&c);
}

static void
test_include_depth(void **state)
{
    struct cfg c;
    char err[ERRLEN], name[32], text[64], want[ERRLEN];

    (void)state;
    /* d0 .. d16: seventeen files, each including the next */
    for (int i = 0; i <= CFG_INCLUDE_DEPTH_MAX; i++) {
        snprintf(name, sizeof(name), "d%d.conf", i);
        if (i < CFG_INCLUDE_DEPTH_MAX)
            snprintf(text, sizeof(text), "include d%d.conf\n", i + 1);
        else
            snprintf(text, sizeof(text), "port 16\n");
        write_file(name, text);
    }
    assert_int_equal(load_tmp(&c, "d1.conf", err), CFG_OK); /* 16 deep */
    assert_int_equal(c.port, 16);
    cfg_deinit(&c);
    assert_int_equal(load_tmp(&c, "d0.conf", err), CFG_ERR); /* 17 deep */
    snprintf(want, sizeof(want), "%s/d15.conf:1: includes nested deeper than 16 files", tmpdir);
    assert_string_equal(err, want);
    cfg_deinit(&c);
}

/* ---- command line ------------------------------------------------------- */

/* Words of spec split on '|' ("" words allowed), as a writable argv. */
struct words {
    char buf[256];  /* the words, NUL-separated */
    char *argv[16]; /* pointers into buf */
    int argc;       /* words */
};

static struct words *
words(struct words *w, const char *spec)
{
    snprintf(w->buf, sizeof(w->buf), "%s", spec);
    w->argc = 0;
    if (spec[0] == '\0')
        return w;
    for (char *p = w->buf;; p++) {
        w->argv[w->argc++] = p;
        p += strcspn(p, "|");
        if (*p == '\0')
            return w;
        *p = '\0';
    }
}

static void
args_err(const char *spec, const char *want)
{
    struct cfg c;
    struct words w;
    char err[ERRLEN];

    cfg_init(&c);
    words(&w, spec);
    assert_int_equal(cfg_apply_args(&c, w.argc, w.argv, err, sizeof(err)), CFG_ERR);
    assert_string_equal(err, want);
    assert_int_equal(c.override_count, 0);
    cfg_deinit(&c);
}

static void
test_args(void **state)
{
    struct cfg c;
    char err[ERRLEN];
    struct words w;
    char **argv = words(&w, "--port|7000|--deny-commands|FLUSHALL KEYS|--requirepass"
                            "||--BIND|10.0.0.1|::1|--timeout|-0")
                      ->argv;

    (void)state;
    load_ok(&c, "port 1\ndeny-commands A B C\nrequirepass pw\ntimeout 5\n");
    assert_int_equal(w.argc, 11);
    assert_int_equal(cfg_apply_args(&c, 9, argv, err, sizeof(err)), CFG_OK);
    assert_int_equal(c.port, 7000);
    assert_int_equal(c.deny_commands_count, 2); /* replaced, not appended */
    assert_string_equal(c.deny_commands[0], "FLUSHALL");
    assert_string_equal(c.deny_commands[1], "KEYS");
    assert_null(c.requirepass);
    assert_int_equal(c.bind_count, 2);
    assert_string_equal(c.bind[1], "::1");
    assert_int_equal(c.timeout, 5);
    assert_int_equal(c.override_count, 9);
    assert_string_equal(c.overrides[3], "FLUSHALL KEYS");
    /* a failing call changes nothing recorded; "-0" is an argument */
    assert_int_equal(cfg_apply_args(&c, 2, argv + 9, err, sizeof(err)), CFG_ERR);
    assert_string_equal(err, "(command line):--timeout: 'timeout' must be an integer, got '-0'");
    assert_int_equal(c.override_count, 9);
    assert_int_equal(cfg_apply_args(&c, 0, NULL, err, sizeof(err)), CFG_OK);
    cfg_deinit(&c);

    args_err("--port|70000",
             "(command line):--port: 'port' must be between 0 and 65535, got 70000");
    args_err("7000|--port|1", "(command line):7000: an argument must follow a --directive");
    args_err("--nope|1", "(command line):--nope: unknown directive 'nope' "
                         "(bulwark --help lists them)");
    args_err("--port|--timeout|1",
             "(command line):--port: 'port' takes exactly one argument, got 0");
    args_err("--timeout|-1", "(command line):--timeout: 'timeout' must be "
                             "between 0 and 2147483647, got -1");
    args_err("--include|/nonexistent/x.conf",
             "(command line):--include: cannot open include file "
             "'/nonexistent/x.conf': No such file or directory");
}

static void
test_args_include(void **state)
{
    struct cfg c;
    char err[ERRLEN], spec[256];
    struct words w;

    (void)state;
    write_file("inc.conf", "port 4242\ntimeout 1\n");
    snprintf(spec, sizeof(spec), "--include|%s/inc.conf|--timeout|8", tmpdir);
    cfg_init(&c);
    words(&w, spec);
    assert_int_equal(cfg_apply_args(&c, w.argc, w.argv, err, sizeof(err)), CFG_OK);
    assert_int_equal(c.port, 4242);
    assert_int_equal(c.timeout, 8);
    cfg_deinit(&c);
}

/* ---- CONFIG SET / GET ---------------------------------------------------- */

/* cfg_set must fail with exactly want and leave the value as CONFIG GET had it.
 */
static void
set_err(struct cfg *c, const char *name, const char *value, const char *want)
{
    char err[ERRLEN], before[256];

    snprintf(before, sizeof(before), "%s", get1(c, name));
    assert_int_equal(cfg_set(c, name, value, err, sizeof(err)), CFG_ERR);
    assert_string_equal(err, want);
    assert_string_equal(get1(c, name), before);
}

static void
test_set(void **state)
{
    struct cfg c;
    char err[ERRLEN];

    (void)state;
    cfg_init(&c);
    assert_int_equal(cfg_set(&c, "maxclients", "42", err, sizeof(err)), CFG_OK);
    assert_int_equal(c.maxclients, 42);
    assert_string_equal(err, "");
    assert_int_equal(cfg_set(&c, "MAXCLIENTS", "43", err, sizeof(err)), CFG_OK);
    assert_int_equal(c.maxclients, 43);
    assert_int_equal(cfg_set(&c, "proto-max-bulk-len", "1mb", err, sizeof(err)), CFG_OK);
    assert_int_equal(c.proto_max_bulk_len, 1048576);
    assert_int_equal(cfg_set(&c, "loglevel", "WARNING", err, sizeof(err)), CFG_OK);
    assert_int_equal(c.loglevel, 3);
    assert_int_equal(cfg_set(&c, "upstream-timeout", "2s", err, sizeof(err)), CFG_OK);
    assert_int_equal(c.upstream_timeout_ms, 2000);
    assert_int_equal(cfg_set(&c, "deny-commands", " FLUSHALL  KEYS ", err, sizeof(err)), CFG_OK);
    assert_string_equal(get1(&c, "deny-commands"), "FLUSHALL KEYS");
    assert_int_equal(cfg_set(&c, "deny-commands", "", err, sizeof(err)), CFG_OK);
    assert_int_equal(c.deny_commands_count, 0);
    assert_int_equal(cfg_set(&c, "requirepass", "p w", err, sizeof(err)), CFG_OK);
    assert_string_equal(c.requirepass, "p w");
    assert_int_equal(cfg_set(&c, "requirepass", "", err, sizeof(err)), CFG_OK);
    assert_null(c.requirepass);

    /* the texts of redis-server 7.0.15 for the same kinds of mistake */
    set_err(&c, "maxclients", "abc", "argument couldn't be parsed into an integer");
    set_err(&c, "maxclients", "007", "argument couldn't be parsed into an integer");
    set_err(&c, "maxclients", "99999999999999999999",
            "argument couldn't be parsed into an integer");
    set_err(&c, "maxclients", "0", "argument must be between 1 and 1000000 inclusive");
    set_err(&c, "timeout", "-1", "argument must be between 0 and 2147483647 inclusive");
    set_err(&c, "tcp-keepalive", "-1", "argument must be between 0 and 2147483647 inclusive");
    set_err(&c, "proto-max-bulk-len", "1x", "argument must be a memory value");
    set_err(&c, "proto-max-bulk-len", "1.5mb", "argument must be a memory value");
    set_err(&c, "proto-max-bulk-len", "1000",
            "argument must be between 1048576 and 9223372036854775807 inclusive");
    set_err(&c, "client-query-buffer-limit", "99999999999999999999",
            "argument must be between 1048576 and 9223372036854775807 inclusive");
    set_err(&c, "loglevel", "foo",
            "argument(s) must be one of the following: "
            "debug, verbose, notice, warning");
    set_err(&c, "upstream-timeout", "5x",
            "argument must be a duration (an integer with an optional unit ms "
            "or s)");
    set_err(&c, "upstream-timeout", "0", "argument must be between 1 and 3600000 inclusive");
    set_err(&c, "daemonize", "yes", "can't set immutable config");
    set_err(&c, "daemonize", "maybe", "can't set immutable config");
    set_err(&c, "port", "7000", "can't set immutable config");
    set_err(&c, "unixsocketperm", "777", "can't set immutable config");
    set_err(&c, "upstream", "h:1", "can't set immutable config");
    assert_int_equal(cfg_set(&c, "maxmemory", "1", err, sizeof(err)), CFG_ERR);
    assert_string_equal(err, "Unknown option");
    cfg_deinit(&c);
}

static void
test_get(void **state)
{
    struct cfg c;
    struct pairs p = {0};

    (void)state;
    load_ok(&c, "bind 127.0.0.1 -::1\nunixsocketperm 700\nupstream [::1]:6390\n"
                "daemonize yes\nunixsocket /tmp/b.sock\n");
    /* exact names are answered under the name as asked, as Redis 7.0 */
    assert_int_equal(cfg_get(&c, "PORT", collect, &p), 1);
    assert_string_equal(p.name[0], "PORT");
    assert_string_equal(p.value[0], "6380");
    p.n = 0;
    assert_int_equal(cfg_get(&c, "*TIMEOUT*", collect, &p), 4);
    assert_string_equal(p.name[0], "timeout");
    assert_string_equal(p.name[1], "upstream-connect-timeout");
    assert_string_equal(p.value[1], "1000");
    assert_string_equal(p.name[2], "upstream-timeout");
    assert_string_equal(p.name[3], "shutdown-timeout");
    assert_string_equal(p.value[3], "10");
    p.n = 0;
    assert_int_equal(cfg_get(&c, "[pt]or?", collect, &p), 1);
    assert_string_equal(p.name[0], "port");
    assert_int_equal(cfg_get(&c, "maxmemory", collect, &p), 0);
    assert_int_equal(cfg_get(&c, "port*x", collect, &p), 0);
    assert_int_equal(cfg_get(&c, "", collect, &p), 0);
    p.n = 0;
    assert_int_equal(
        cfg_get(&c, "*", collect, &p),
        60); /* + upstream-databases, metrics-port, metrics-bind, client-output-buffer-limit, tracking-table-max-keys, upstream-cluster, cluster-refresh-interval */
    assert_string_equal(get1(&c, "upstream-cluster"), "auto");
    assert_string_equal(get1(&c, "cluster-refresh-interval"), "10000");
    assert_string_equal(get1(&c, "bind"), "127.0.0.1 -::1");
    assert_string_equal(get1(&c, "unixsocketperm"), "700");
    assert_string_equal(get1(&c, "unixsocket"), "/tmp/b.sock");
    assert_string_equal(get1(&c, "upstream"), "[::1]:6390");
    assert_string_equal(get1(&c, "daemonize"), "yes");
    assert_string_equal(get1(&c, "requirepass"), "");
    assert_string_equal(get1(&c, "logfile"), "");
    assert_string_equal(get1(&c, "proto-max-bulk-len"), "536870912");
    assert_string_equal(get1(&c, "client-query-buffer-limit"), "1073741824");
    assert_string_equal(get1(&c, "deny-commands"), "SHUTDOWN DEBUG");
    assert_string_equal(get1(&c, "loglevel"), "notice");
    assert_true(cfg_is_own("Upstream-Timeout"));
    assert_false(cfg_is_own("maxmemory"));
    assert_false(cfg_is_own("include"));
    cfg_deinit(&c);
}

/* ---- glob ---------------------------------------------------------------- */

/* Keys stored in redis-server 7.0.15 to record the vectors below. */
static const char *const glob_keys[] = {"hello", "hallo", "hxllo", "hllo", "heeeello", "h[llo",
                                        "h]llo", "a*b",   "a?b",   "ab",   "a\\b",     "Hello",
                                        "x-y",   "x^y",   "x_y",   "x]y",  "x\\y",     "aXb",
                                        "ab*",   "abc",   "[",     "]",    "-",        "^"};

/* Pattern -> the keys KEYS answered, space-separated (case-sensitive). */
static const struct {
    const char *pattern;
    const char *matches;
} glob_vectors[] = {
    {"h?llo", "hxllo hallo hello h[llo h]llo"},
    {"h*llo", "heeeello hllo hxllo hallo hello h[llo h]llo"},
    {"h[ae]llo", "hallo hello"},
    {"h[^e]llo", "hxllo hallo h[llo h]llo"},
    {"h[a-b]llo", "hallo"},
    {"h[b-a]llo", "hallo"},
    {"h[\\]]llo", "h]llo"},
    {"h\\[llo", "h[llo"},
    {"a\\*b", "a*b"},
    {"a\\?b", "a?b"},
    {"a\\\\b", "a\\b"},
    {"\\", ""},
    {"x[a-]y", ""},
    {"x[-a]y", "x-y"},
    {"x[^]y", "x_y x-y x^y x\\y x]y"},
    {"x[]y", ""},
    {"x[", ""},
    {"[", ""},
    {"h[", ""},
    {"h[l", ""},
    {"x[\\", ""},
    {"x[^a", ""},
    {"H*", "Hello"},
    {"h*", "heeeello hllo hxllo hallo hello h[llo h]llo"},
    {"*o", "heeeello hllo hxllo hallo Hello hello h[llo h]llo"},
    {"**o", "heeeello hllo hxllo hallo Hello hello h[llo h]llo"},
    {"a*", "ab* a\\b abc a?b ab aXb a*b"},
    {"a*b*", "ab* a\\b abc a?b ab aXb a*b"},
    {"?", "] ^ - ["},
    {"??", "ab"},
    {"[[]", "["},
    {"[\\[]", "["},
    {"]", "]"},
    {"[]]", ""},
    {"x[]]y", ""},
    {"x[^]]y", ""},
    {"ab\\", ""},
    {"h[a-e-l]llo", "hallo hello"},
    {"x[z-a]y", ""},
};

static bool
in_list(const char *list, const char *key)
{
    size_t n = strlen(key);

    for (const char *p = list; *p != '\0'; p += strcspn(p, " "), p += *p == ' ') {
        if (strcspn(p, " ") == n && strncmp(p, key, n) == 0)
            return true;
    }
    return false;
}

static void
test_glob_vectors(void **state)
{
    (void)state;
    for (size_t v = 0; v < sizeof(glob_vectors) / sizeof(glob_vectors[0]); v++) {
        const char *pat = glob_vectors[v].pattern;
        for (size_t k = 0; k < sizeof(glob_keys) / sizeof(glob_keys[0]); k++) {
            const char *key = glob_keys[k];
            bool want = in_list(glob_vectors[v].matches, key);
            if (cfg_glob_match(pat, strlen(pat), key, strlen(key), false) != want)
                fail_msg("pattern '%s' key '%s': want %d", pat, key, want);
        }
    }
}

static void
test_glob_misc(void **state)
{
    (void)state;
    assert_true(cfg_glob_match("H*", 2, "hello", 5, true));
    assert_true(cfg_glob_match("[A-Z]ELLO", 9, "hello", 5, true));
    assert_true(cfg_glob_match("[a-z]ello", 9, "Hello", 5, true));
    assert_false(cfg_glob_match("[a-z]ello", 9, "Hello", 5, false));
    /* PSUBSCRIBE * gets no message published to "" in redis 7.0.15 */
    assert_false(cfg_glob_match("*", 1, "", 0, false));
    assert_true(cfg_glob_match("a*", 2, "a", 1, false));
    assert_true(cfg_glob_match("", 0, "", 0, false));
    assert_false(cfg_glob_match("", 0, "a", 1, false));
    /* lengths, not NULs, bound both strings */
    assert_true(cfg_glob_match("a*c", 3, "abc\0zzz", 3, false));
    assert_true(cfg_glob_match("a\0b", 3, "a\0b", 3, false));
    assert_false(cfg_glob_match("abcdef", 3, "abc", 2, false));
    /* many stars against a long non-matching string finishes at once */
    assert_false(cfg_glob_match("a*a*a*a*a*a*a*a*a*a*a*a*a*a*a*b", 31,
                                "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
                                60, false));
}

/* ---- reload ------------------------------------------------------------- */

static void
test_reload(void **state)
{
    struct cfg c;
    char err[ERRLEN], path[256];
    struct words w;

    (void)state;
    snprintf(path, sizeof(path), "%s/reload.conf", tmpdir);
    write_file("reload.conf", "maxclients 100\nport 7000\n");
    cfg_init(&c);
    assert_int_equal(cfg_load_file(&c, path, err, sizeof(err)), CFG_OK);
    words(&w, "--timeout|9");
    assert_int_equal(cfg_apply_args(&c, w.argc, w.argv, err, sizeof(err)), CFG_OK);
    assert_int_equal(cfg_set(&c, "maxclients", "42", err, sizeof(err)), CFG_OK);

    write_file("reload.conf", "maxclients 500\nport 7001\ntimeout 5\nloglevel debug\n"
                              "deny-commands KEYS\nbind 0.0.0.0\n");
    assert_int_equal(cfg_reload(&c, path, err, sizeof(err)), CFG_RELOAD_PARTIAL);
    assert_string_equal(err, "restart required to apply: bind, port");
    assert_int_equal(c.maxclients, 500); /* the file's value replaces CONFIG SET's */
    assert_int_equal(c.port, 7000);      /* not runtime: kept */
    assert_string_equal(c.bind[0], "127.0.0.1");
    assert_int_equal(c.timeout, 9); /* command line still wins */
    assert_int_equal(c.loglevel, 0);
    assert_int_equal(c.deny_commands_count, 1);
    assert_string_equal(c.deny_commands[0], "KEYS");
    assert_int_equal(c.override_count, 2);

    write_file("reload.conf", "maxclients 0\n");
    assert_int_equal(cfg_reload(&c, path, err, sizeof(err)), CFG_ERR);
    char want[ERRLEN];
    snprintf(want, sizeof(want), "%s:1: 'maxclients' must be between 1 and 1000000, got 0", path);
    assert_string_equal(err, want);
    assert_int_equal(c.maxclients, 500);

    /* a removed line falls back to the default */
    write_file("reload.conf", "port 7000\n");
    assert_int_equal(cfg_reload(&c, path, err, sizeof(err)), CFG_OK);
    assert_string_equal(err, "");
    assert_int_equal(c.maxclients, 10000);
    assert_int_equal(c.deny_commands_count, 2);
    assert_int_equal(c.loglevel, 2);
    assert_int_equal(c.timeout, 9);

    snprintf(path, sizeof(path), "%s/gone.conf", tmpdir);
    assert_int_equal(cfg_reload(&c, path, err, sizeof(err)), CFG_ERR);
    assert_non_null(strstr(err, "gone.conf: cannot open: No such file or directory"));
    cfg_deinit(&c);
}

/* ---- help --------------------------------------------------------------- */

static void
test_help(void **state)
{
    struct cfg c;
    struct pairs p = {0};
    char *text = NULL, line[128];
    size_t len = 0;
    FILE *f = open_memstream(&text, &len);

    (void)state;
    assert_non_null(f);
    cfg_print_help(f);
    fclose(f);
    cfg_init(&c);
    cfg_get(&c, "*", collect, &p);
    for (size_t i = 0; i < p.n; i++) {
        snprintf(line, sizeof(line), "\n  %s <", p.name[i]);
        if (strstr(text, line) == NULL)
            fail_msg("--help lacks '%s'", p.name[i]);
    }
    assert_non_null(strstr(text, "  port <integer 0..65535>  (default 6380)\n"));
    assert_non_null(
        strstr(text, "  maxclients <integer 1..1000000>  (default 10000, runtime)\n"));
    assert_non_null(strstr(text, "  requirepass <string>  (default \"\", runtime)\n"));
    free(text);
    cfg_deinit(&c);
}

/* ttl-jitter-exclude: repeated lines add globs; CONFIG SET replaces them. */
static void
test_append_list(void **state)
{
    struct cfg c;
    char err[256];
    (void)state;
    cfg_init(&c);
    assert_int_equal(cfg_load_string(&c,
                                     "ttl-jitter-exclude lock:*\n"
                                     "ttl-jitter-exclude \"rate:*\" tmp:?\n",
                                     "t.conf", err, sizeof(err)),
                     0);
    assert_int_equal(c.ttl_jitter_exclude_count, 3);
    assert_string_equal(c.ttl_jitter_exclude[0], "lock:*");
    assert_string_equal(c.ttl_jitter_exclude[2], "tmp:?");
    assert_int_equal(cfg_set(&c, "ttl-jitter-exclude", "only:*", err, sizeof(err)), 0);
    assert_int_equal(c.ttl_jitter_exclude_count, 1);
    assert_string_equal(c.ttl_jitter_exclude[0], "only:*");
    /* bind keeps Redis's rule: the last line wins. */
    assert_int_equal(cfg_load_string(&c, "bind 1.2.3.4\nbind 5.6.7.8\n", "t.conf", err,
                                     sizeof(err)),
                     0);
    assert_int_equal(c.bind_count, 1);
    assert_string_equal(c.bind[0], "5.6.7.8");
    cfg_deinit(&c);
}

/*
 * Found by tests/fuzz/fuzz_config.c: a line of white space the trim keeps
 * (\v, \f) split into no words, and the parser read the directive name of
 * an empty argv (NULL dereference). Redis skips such lines; so do we.
 */
static void
test_blank_line_of_vt_ff(void **state)
{
    struct cfg c;

    (void)state;
    load_ok(&c, "port 7000\n\v\n\f \t\n \v\f\r\nmaxclients 5\n");
    assert_int_equal(c.port, 7000);
    assert_int_equal(c.maxclients, 5);
    cfg_deinit(&c);
    load_err("\v\nport x", "t.conf:2: 'port' must be an integer, got 'x'");
}

/* A closing quote ends its word even when \v or \f follows (Redis's
 * sdssplitargs): "FLUSHALL"\fKEYS is two words, not one. */
static void
test_closing_quote_ends_word(void **state)
{
    struct cfg c;

    (void)state;
    load_ok(&c, "deny-commands \"FLUSHALL\"\fKEYS 'DEBUG'\vSHUTDOWN\n");
    assert_int_equal(c.deny_commands_count, 4);
    assert_string_equal(c.deny_commands[0], "FLUSHALL");
    assert_string_equal(c.deny_commands[1], "KEYS");
    assert_string_equal(c.deny_commands[2], "DEBUG");
    assert_string_equal(c.deny_commands[3], "SHUTDOWN");
    cfg_deinit(&c);
}

/*
 * Found by tests/fuzz/fuzz_config.c (round trip): "upstream [[x]:1" has the
 * host "[x", which CONFIG GET showed as "[x:1", a value no parser takes back
 * (cfg_is_same() false, a reload could not re-apply it). It keeps brackets.
 */
static void
test_hostport_bracket_host_round_trip(void **state)
{
    struct cfg c;

    (void)state;
    load_ok(&c, "upstream [[x]:1\n");
    assert_string_equal(c.upstream_host, "[x");
    assert_string_equal(get1(&c, "upstream"), "[[x]:1");
    assert_true(cfg_is_same(&c, "upstream", "[[x]:1"));
    cfg_deinit(&c);
    load_get("upstream [[x]:1\nupstream [[x]:1\n", "upstream", "[[x]:1");
}

/* client-output-buffer-limit: Redis 7.0.15's syntax, defaults, errors and CONFIG GET form. */
static void
test_output_buffer_limit(void **state)
{
    struct cfg c;
    char err[256];
    (void)state;
    cfg_init(&c);
    assert_string_equal(get1(&c, "client-output-buffer-limit"),
                        "normal 1073741824 268435456 60 slave 268435456 67108864 60 "
                        "pubsub 33554432 8388608 60");
    assert_true(cfg_is_shared("client-output-buffer-limit"));
    assert_false(cfg_is_shared("maxclients"));
    /* CONFIG SET of one class leaves the others, as Redis */
    assert_int_equal(cfg_set(&c, "client-output-buffer-limit", "normal 256mb 0 0", err,
                             sizeof(err)),
                     CFG_OK);
    assert_int_equal(c.client_obl[CFG_OBL_NORMAL].hard_bytes, 256ull << 20);
    assert_int_equal(c.client_obl[CFG_OBL_PUBSUB].soft_seconds, 60);
    assert_int_equal(cfg_set(&c, "client-output-buffer-limit", "", err, sizeof(err)), CFG_OK);
    assert_int_equal(cfg_set(&c, "client-output-buffer-limit", "SLAVE 1mb 1 5 PubSub 1mb 256kb 1",
                             err, sizeof(err)),
                     CFG_OK);
    assert_string_equal(get1(&c, "client-output-buffer-limit"),
                        "normal 268435456 0 0 slave 1048576 1 5 pubsub 1048576 262144 1");
    /* Redis 7.0.15's errors, value unchanged */
    assert_int_equal(cfg_set(&c, "client-output-buffer-limit", "normal 256mb 0", err,
                             sizeof(err)),
                     CFG_ERR);
    assert_string_equal(err, "Wrong number of arguments in buffer limit configuration.");
    assert_int_equal(cfg_set(&c, "client-output-buffer-limit", "master 1 1 1", err, sizeof(err)),
                     CFG_ERR);
    assert_string_equal(err, "Invalid client class specified in buffer limit configuration.");
    assert_int_equal(cfg_set(&c, "client-output-buffer-limit", "normal 1 1 -1", err, sizeof(err)),
                     CFG_ERR);
    assert_string_equal(err, "Error in hard, soft or soft_seconds setting in buffer limit "
                             "configuration.");
    assert_int_equal(cfg_set(&c, "client-output-buffer-limit", "normal 0 0 0 normal x 1 1", err,
                             sizeof(err)),
                     CFG_ERR);
    assert_int_equal(c.client_obl[CFG_OBL_NORMAL].hard_bytes, 256ull << 20);
    cfg_deinit(&c);
    /* file lines (one class each) and the command line, as redis-server */
    load_ok(&c, "client-output-buffer-limit normal 64mb 0 0\n"
                "client-output-buffer-limit pubsub 1mb 256kb 1\n");
    assert_int_equal(c.client_obl[CFG_OBL_NORMAL].hard_bytes, 64ull << 20);
    assert_int_equal(c.client_obl[CFG_OBL_PUBSUB].soft_bytes, 256ull << 10);
    char w0[] = "--client-output-buffer-limit", w1[] = "normal 32mb 16mb 10";
    char *argv[] = {w0, w1};
    assert_int_equal(cfg_apply_args(&c, 2, argv, err, sizeof(err)), CFG_OK);
    assert_int_equal(c.client_obl[CFG_OBL_NORMAL].soft_seconds, 10);
    assert_int_equal(c.client_obl[CFG_OBL_PUBSUB].hard_bytes, 1ull << 20);
    cfg_deinit(&c);
    cfg_init(&c);
    assert_int_not_equal(cfg_load_string(&c, "client-output-buffer-limit normal 1 2\n", "t.conf",
                                         err, sizeof(err)),
                         CFG_OK);
    assert_non_null(strstr(err, "t.conf:1:"));
    cfg_deinit(&c);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_sample_loads_to_defaults),
        cmocka_unit_test(test_sample_mentions_every_directive),
        cmocka_unit_test(test_int_and_bool),
        cmocka_unit_test(test_octal),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_enum_string_list_hostport),
        cmocka_unit_test(test_quoting),
        cmocka_unit_test(test_include),
        cmocka_unit_test(test_include_errors),
        cmocka_unit_test(test_include_depth),
        cmocka_unit_test(test_args),
        cmocka_unit_test(test_args_include),
        cmocka_unit_test(test_set),
        cmocka_unit_test(test_get),
        cmocka_unit_test(test_output_buffer_limit),
        cmocka_unit_test(test_append_list),
        cmocka_unit_test(test_glob_vectors),
        cmocka_unit_test(test_glob_misc),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_help),
        cmocka_unit_test(test_blank_line_of_vt_ff),
        cmocka_unit_test(test_closing_quote_ends_word),
        cmocka_unit_test(test_hostport_bracket_host_round_trip),
    };

    return cmocka_run_group_tests(tests, setup_tmpdir, teardown_tmpdir);
}
