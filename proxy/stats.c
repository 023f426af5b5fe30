/* stats: worker counters and the ops/sec sampler. */
#include "proxy/stats.h"

#include <string.h>
#include <sys/time.h>

#include <event2/event.h>

#include "proxy/util.h"

void
stats_init(struct stats *s)
{
    memset(s, 0, sizeof(*s));
    s->start_ms = bw_now_ms();
    s->ops_last_ms = s->start_ms;
}

void
stats_reset(struct stats *s)
{
    uint64_t connected = s->connected_clients, start = s->start_ms;
    stats_init(s);
    s->connected_clients = connected;
    s->start_ms = start;
}

void
stats_sample(struct stats *s, uint64_t now_ms)
{
    uint64_t dt = now_ms - s->ops_last_ms;
    if (dt == 0)
        return;
    uint64_t ops = s->total_commands - s->ops_last_count;
    s->ops_samples[s->ops_idx] = ops * 1000 / dt;
    s->ops_idx = (s->ops_idx + 1) % STATS_OPS_SAMPLES;
    s->ops_last_ms = now_ms;
    s->ops_last_count = s->total_commands;
}

uint64_t
stats_ops_per_sec(const struct stats *s)
{
    uint64_t sum = 0;
    for (int i = 0; i < STATS_OPS_SAMPLES; i++)
        sum += s->ops_samples[i];
    return sum / STATS_OPS_SAMPLES;
}

uint64_t
stats_loop_us(struct event_base *base)
{
    struct timeval tv;
    if (event_base_gettimeofday_cached(base, &tv) != 0)
        (void)gettimeofday(&tv, NULL);
    return (uint64_t)tv.tv_sec * 1000000u + (uint64_t)tv.tv_usec;
}
