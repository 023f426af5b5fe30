/*
 * test_cmdstats: the per-command counters, the log-linear histogram (bins,
 * percentiles, exact counts at powers of two), stat ids across command
 * tables, the request hooks, and Redis's commandstats/latencystats lines.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "proxy/cmdstats.h"
#include "proxy/command.h"

static struct cmdstats cs; /* large: static */

static void
test_bins_bound_their_values(void **state)
{
    (void)state;
    for (uint64_t v = 0; v < 200000; v++) {
        size_t b = cmdstats_hist_bin(v);
        assert_true(b < CMDSTATS_BINS);
        assert_true(v <= cmdstats_hist_upper(b));
        if (b > 0)
            assert_true(v > cmdstats_hist_upper(b - 1));
    }
    /* upper bounds strictly grow, and a bin's width is within 12.5% of its values */
    for (size_t b = 1; b < CMDSTATS_BINS; b++) {
        uint64_t lo = cmdstats_hist_upper(b - 1), hi = cmdstats_hist_upper(b);
        assert_true(hi > lo);
        if (lo >= 8)
            assert_true((hi - lo) * 8 <= lo + 1);
    }
}

static void
test_powers_of_two_are_bounds(void **state)
{
    (void)state;
    for (int k = 0; k <= 32; k++) {
        uint64_t p = (uint64_t)1 << k;
        assert_int_equal(cmdstats_hist_upper(cmdstats_hist_bin(p)), p);
    }
    /* beyond the range: the last bin */
    assert_int_equal(cmdstats_hist_bin(UINT64_MAX), CMDSTATS_BINS - 1);
    assert_int_equal(cmdstats_hist_bin(((uint64_t)1 << 40) + 5), CMDSTATS_BINS - 1);
}

static void
test_percentiles_and_counts(void **state)
{
    static struct cmdstats_hist h;
    (void)state;
    memset(&h, 0, sizeof(h));
    assert_int_equal(cmdstats_hist_percentile(&h, 50), 0);
    for (uint64_t v = 1; v <= 1000; v++)
        cmdstats_hist_add(&h, v);
    assert_int_equal(h.count, 1000);
    assert_int_equal(h.sum, 500500);
    uint64_t p50 = cmdstats_hist_percentile(&h, 50), p99 = cmdstats_hist_percentile(&h, 99);
    assert_true(p50 >= 500 && p50 <= 500 + 500 / 8);
    assert_true(p99 >= 990 && p99 <= 990 + 990 / 8);
    assert_int_equal(cmdstats_hist_percentile(&h, 100), 1024);
    assert_int_equal(cmdstats_hist_count_le(&h, 512), 512);
    assert_int_equal(cmdstats_hist_count_le(&h, 8), 8);
    assert_int_equal(cmdstats_hist_count_le(&h, 1u << 20), 1000);
    assert_int_equal(cmdstats_hist_count_le(&h, 0), 0);
}

static void
test_ids_survive_a_new_table(void **state)
{
    (void)state;
    cmdstats_init(&cs);
    struct cmd_table *a = cmd_table_builtin(), *b = cmd_table_builtin();
    cmdstats_assign_table(&cs, a);
    uint32_t n = cs.ncmds;
    const struct cmd_info *get = cmd_lookup(a, "get", 3);
    const struct cmd_info *config = cmd_lookup(a, "config", 6);
    const struct cmd_info *cget = cmd_lookup(config->subcommands, "get", 3);
    assert_true(get->stat_id > 0);
    assert_true(cget->stat_id > 0 && cget->stat_id != get->stat_id);
    assert_string_equal(cs.cmds[get->stat_id].name, "get");
    assert_string_equal(cs.cmds[cget->stat_id].name, "config|get");
    cmdstats_assign_table(&cs, b); /* the learned table: same names, same ids */
    assert_int_equal(cs.ncmds, n);
    assert_int_equal(cmd_lookup(b, "get", 3)->stat_id, get->stat_id);
    assert_int_equal(cmdstats_intern(&cs, "get"), get->stat_id);
    cmd_table_free(a);
    cmd_table_free(b);
    cmdstats_deinit(&cs);
}

static void
test_intern_full_gives_unknown(void **state)
{
    char name[32];
    (void)state;
    cmdstats_init(&cs);
    for (int i = 0; i < CMDSTATS_MAX + 10; i++) {
        snprintf(name, sizeof(name), "cmd%d", i);
        uint32_t id = cmdstats_intern(&cs, name);
        assert_true(i < CMDSTATS_MAX - 1 ? id == (uint32_t)i + 1 : id == 0);
    }
    char longname[100];
    memset(longname, 'x', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    assert_int_equal(cmdstats_intern(&cs, longname), 0);
    cmdstats_deinit(&cs);
}

/* A request answered at once, one through a slot, one pinned, one with two slots. */
static void
test_hooks(void **state)
{
    struct cmdstats_req slot1, slot2, pinslot;
    struct cmd_info get = {.stat_id = 0};
    (void)state;
    cmdstats_init(&cs);
    get.stat_id = cmdstats_intern(&cs, "get");

    cmdstats_begin(&cs, 1000); /* answered locally before handling returned */
    cmdstats_command(&cs, &get);
    cmdstats_answered(&cs, CMDSTATS_BY_GATE);
    cmdstats_answered(&cs, CMDSTATS_BY_UPSTREAM); /* the first stage wins */
    cmdstats_end(&cs, 1000);
    assert_int_equal(cs.cmds[get.stat_id].calls[CMDSTATS_BY_GATE], 1);
    assert_int_equal(cs.cmds[get.stat_id].lat->count, 1);
    assert_int_equal(cs.cmds[get.stat_id].lat->sum, 0);

    cmdstats_begin(&cs, 2000); /* forwarded: timed when its slot is flushed */
    cmdstats_command(&cs, &get);
    cmdstats_slot(&cs, &slot1);
    cmdstats_slot(&cs, &slot2); /* a second slot of the same request: not timed */
    cmdstats_answered(&cs, CMDSTATS_BY_UPSTREAM);
    cmdstats_end(&cs, 2000);
    assert_int_equal(cs.cmds[get.stat_id].lat->count, 1);
    cmdstats_done(&cs, &slot1, 2300);
    cmdstats_done(&cs, &slot2, 2400);
    assert_int_equal(cs.cmds[get.stat_id].calls[CMDSTATS_BY_UPSTREAM], 1);
    assert_int_equal(cs.cmds[get.stat_id].lat->count, 2);
    assert_int_equal(cs.cmds[get.stat_id].lat->sum, 300);

    cmdstats_begin(&cs, 3000); /* unknown command, starts a pinned session */
    cmdstats_slot(&cs, &pinslot);
    cmdstats_pinned(&cs);
    cmdstats_end(&cs, 3000);
    cmdstats_done(&cs, &pinslot, 9000);
    assert_int_equal(cs.cmds[0].calls[CMDSTATS_BY_PINNED], 1);
    assert_null(cs.cmds[0].lat);

    cmdstats_begin(&cs, 4000); /* a clock that went back: 0, not a huge value */
    cmdstats_command(&cs, &get);
    cmdstats_end(&cs, 3000);
    assert_int_equal(cs.cmds[get.stat_id].lat->sum, 300);
    assert_int_equal(cmdstats_calls(&cs, get.stat_id), 3);

    cmdstats_reset(&cs);
    assert_int_equal(cmdstats_calls(&cs, get.stat_id), 0);
    assert_int_equal(cs.cmds[get.stat_id].lat->count, 0);
    assert_int_equal(cmdstats_intern(&cs, "get"), get.stat_id); /* ids kept */
    cmdstats_deinit(&cs);
}

static void
test_redis_lines(void **state)
{
    char line[256];
    struct cmd_info get = {.stat_id = 0};
    (void)state;
    cmdstats_init(&cs);
    get.stat_id = cmdstats_intern(&cs, "get");
    assert_false(cmdstats_format_commandstat(&cs, get.stat_id, line, sizeof(line)));
    assert_false(cmdstats_format_latencystat(&cs, get.stat_id, line, sizeof(line)));
    for (int i = 0; i < 4; i++) {
        cmdstats_begin(&cs, 100);
        cmdstats_command(&cs, &get);
        cmdstats_end(&cs, 100 + (uint64_t)i); /* 0, 1, 2, 3 µs */
    }
    assert_true(cmdstats_format_commandstat(&cs, get.stat_id, line, sizeof(line)));
    assert_string_equal(line, "cmdstat_get:calls=4,usec=6,usec_per_call=1.50,rejected_calls=0,"
                              "failed_calls=0");
    assert_true(cmdstats_format_latencystat(&cs, get.stat_id, line, sizeof(line)));
    assert_string_equal(line, "latency_percentiles_usec_get:p50=1.000,p99=3.000,p99.9=3.000");
    cmdstats_deinit(&cs);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bins_bound_their_values),
        cmocka_unit_test(test_powers_of_two_are_bounds),
        cmocka_unit_test(test_percentiles_and_counts),
        cmocka_unit_test(test_ids_survive_a_new_table),
        cmocka_unit_test(test_intern_full_gives_unknown),
        cmocka_unit_test(test_hooks),
        cmocka_unit_test(test_redis_lines),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
