/* cmdstats: per-command counters and log-linear latency histograms. */
#include "proxy/cmdstats.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "proxy/command.h"
#include "proxy/util.h"

const char *const cmdstats_by_names[CMDSTATS_BY_N] = {
    "local", "gate", "hotcache", "batch", "upstream", "pinned",
};

void
cmdstats_init(struct cmdstats *cs)
{
    memset(cs, 0, sizeof(*cs));
    snprintf(cs->cmds[0].name, sizeof(cs->cmds[0].name), "unknown");
    cs->ncmds = 1;
    cs->cur_by = CMDSTATS_BY_N;
}

void
cmdstats_deinit(struct cmdstats *cs)
{
    for (uint32_t i = 0; i < cs->ncmds; i++) {
        bw_free(cs->cmds[i].lat);
        cs->cmds[i].lat = NULL;
    }
}

void
cmdstats_reset(struct cmdstats *cs)
{
    for (uint32_t i = 0; i < cs->ncmds; i++) {
        memset(cs->cmds[i].calls, 0, sizeof(cs->cmds[i].calls));
        if (cs->cmds[i].lat != NULL)
            memset(cs->cmds[i].lat, 0, sizeof(*cs->cmds[i].lat));
    }
    memset(&cs->upstream_rtt, 0, sizeof(cs->upstream_rtt));
    memset(&cs->batch_keys, 0, sizeof(cs->batch_keys));
}

uint32_t
cmdstats_intern(struct cmdstats *cs, const char *name)
{
    for (uint32_t i = 1; i < cs->ncmds; i++)
        if (strcmp(cs->cmds[i].name, name) == 0)
            return i;
    if (cs->ncmds >= CMDSTATS_MAX || strlen(name) >= sizeof(cs->cmds[0].name))
        return 0;
    snprintf(cs->cmds[cs->ncmds].name, sizeof(cs->cmds[0].name), "%s", name);
    return cs->ncmds++;
}

/* Walk state of cmdstats_assign_table. */
struct cmdstats_walk {
    struct cmdstats *cs; /* borrowed */
    struct cmd_table *t; /* the table walked (borrowed, mutable) */
};

static void
cmdstats_assign_one(const struct cmd_info *c, void *ud)
{
    struct cmdstats_walk *w = ud;
    struct cmd_info *m = cmd_lookup_mut(w->t, c->name, c->name_len);
    if (m == NULL)
        return;
    m->stat_id = cmdstats_intern(w->cs, m->fullname);
    if (m->subcommands != NULL) {
        struct cmdstats_walk sub = {w->cs, m->subcommands};
        cmd_table_foreach(m->subcommands, cmdstats_assign_one, &sub);
    }
}

void
cmdstats_assign_table(struct cmdstats *cs, struct cmd_table *t)
{
    struct cmdstats_walk w = {cs, t};
    cmd_table_foreach(t, cmdstats_assign_one, &w);
}

uint64_t
cmdstats_hist_upper(size_t i)
{
    if (i <= 8)
        return i;
    size_t k = i - 9;
    int shift = (int)(k / 8);
    uint64_t sub = k % 8;
    return (8 + sub + 1) << shift;
}

uint64_t
cmdstats_hist_percentile(const struct cmdstats_hist *h, double p)
{
    if (h->count == 0)
        return 0;
    uint64_t rank = (uint64_t)ceil(p / 100.0 * (double)h->count);
    if (rank < 1)
        rank = 1;
    uint64_t seen = 0;
    for (size_t i = 0; i < CMDSTATS_BINS; i++) {
        seen += h->bins[i];
        if (seen >= rank)
            return cmdstats_hist_upper(i);
    }
    return cmdstats_hist_upper(CMDSTATS_BINS - 1);
}

uint64_t
cmdstats_hist_count_le(const struct cmdstats_hist *h, uint64_t le)
{
    uint64_t n = 0;
    for (size_t i = 0; i < CMDSTATS_BINS && cmdstats_hist_upper(i) <= le; i++)
        n += h->bins[i];
    return n;
}

void
cmdstats_record(struct cmdstats *cs, const struct cmdstats_req *r, uint64_t now_us)
{
    struct cmdstats_cmd *c = &cs->cmds[r->id];
    if (c->lat == NULL)
        c->lat = bw_calloc(1, sizeof(*c->lat)); /* once per command name */
    cmdstats_hist_add(c->lat, now_us > r->start_us ? now_us - r->start_us : 0);
}

void
cmdstats_command(struct cmdstats *cs, const struct cmd_info *ci)
{
    cs->cur.id = ci != NULL ? ci->stat_id : 0;
}

void
cmdstats_end(struct cmdstats *cs, uint64_t now_us)
{
    enum cmdstats_by by = cs->cur_by == CMDSTATS_BY_N ? CMDSTATS_BY_LOCAL : cs->cur_by;
    cs->cmds[cs->cur.id].calls[by]++;
    if (!cs->cur_slotted && cs->cur.timed)
        cmdstats_record(cs, &cs->cur, now_us); /* answered before handling returned */
    cs->cur_slot = NULL;
}

uint64_t
cmdstats_calls(const struct cmdstats *cs, uint32_t id)
{
    uint64_t n = 0;
    for (int b = 0; b < CMDSTATS_BY_N; b++)
        n += cs->cmds[id].calls[b];
    return n;
}

bool
cmdstats_format_commandstat(const struct cmdstats *cs, uint32_t id, char *out, size_t size)
{
    uint64_t calls = cmdstats_calls(cs, id);
    if (id >= cs->ncmds || calls == 0)
        return false;
    const struct cmdstats_hist *h = cs->cmds[id].lat;
    uint64_t usec = h != NULL ? h->sum : 0, timed = h != NULL ? h->count : 0;
    snprintf(out, size,
             "cmdstat_%s:calls=%llu,usec=%llu,usec_per_call=%.2f,rejected_calls=0,"
             "failed_calls=0",
             cs->cmds[id].name, (unsigned long long)calls, (unsigned long long)usec,
             timed > 0 ? (double)usec / (double)timed : 0.0);
    return true;
}

bool
cmdstats_format_latencystat(const struct cmdstats *cs, uint32_t id, char *out, size_t size)
{
    const struct cmdstats_hist *h = id < cs->ncmds ? cs->cmds[id].lat : NULL;
    if (h == NULL || h->count == 0)
        return false;
    snprintf(out, size, "latency_percentiles_usec_%s:p50=%.3f,p99=%.3f,p99.9=%.3f",
             cs->cmds[id].name, (double)cmdstats_hist_percentile(h, 50.0),
             (double)cmdstats_hist_percentile(h, 99.0),
             (double)cmdstats_hist_percentile(h, 99.9));
    return true;
}
