/*
 * main: command line, start-up and shutdown order, signals, the event loop.
 * Start: config → log → daemonize/pidfile → event base → command table →
 * upstream pool → listener → loop. Stop (SIGTERM/SIGINT): stop accepting,
 * let in-flight requests finish (bounded by shutdown-timeout), free all.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <event2/event.h>

#include "config/config.h"
#include "proxy/batch.h"
#include "proxy/client.h"
#include "proxy/cfwd.h"
#include "proxy/hireply.h"
#include "proxy/ctrack.h"
#include "proxy/gate.h"
#include "proxy/router.h"
#include "proxy/stages.h"
#include "proxy/cmdstats.h"
#include "proxy/command.h"
#include "proxy/inflight.h"
#include "proxy/keyspace.h"
#include "proxy/listener.h"
#include "proxy/local.h"
#include "proxy/log.h"
#include "proxy/metrics.h"
#include "proxy/netio.h"
#include "proxy/proxy.h"
#include "proxy/tracking.h"
#include "proxy/upstream.h"
#include "proxy/util.h"
#include "proxy/watch.h"

#define MAIN_CRON_MS 100

static struct event *main_sig_term, *main_sig_int, *main_sig_hup;
static uint64_t main_shutdown_deadline_ms;
static unsigned main_cron_ticks;

static void
main_usage(FILE *out)
{
    fprintf(out, "Usage: bulwark [config-file] [--directive value ...]\n"
                 "       bulwark --test-config config-file [--directive value ...]\n"
                 "       bulwark [config-file] --config-get directive\n"
                 "       bulwark --version | --help\n\n"
                 "Examples:\n"
                 "       bulwark config/bulwark.conf\n"
                 "       bulwark config/bulwark.conf --port 7000 --upstream 127.0.0.1:6379\n\n");
    cfg_print_help(out);
}

static void
main_libevent_log(int severity, const char *msg)
{
    if (severity >= EVENT_LOG_WARN)
        log_warn("libevent: %s", msg);
    else
        log_debug("libevent: %s", msg);
}

static void
main_on_commands(struct proxy *px, struct cmd_table *t)
{
    cmdstats_assign_table(&px->cmdstats, t);
    stages_set_command_table(px, t, true);
    router_probe(px); /* a Redis Cluster node? */
}

static void
main_reap_cb(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    client_reap(arg);
}

static void
main_begin_shutdown(struct proxy *px, const char *why)
{
    if (px->shutting_down) {
        log_warn("%s again: exiting now", why);
        event_base_loopbreak(px->base);
        return;
    }
    log_notice("%s: shutting down (in flight: %llu)", why,
               (unsigned long long)upstream_pool_inflight(px->pool));
    px->shutting_down = true;
    main_shutdown_deadline_ms = bw_now_ms() + px->cfg.shutdown_timeout_ms;
    listener_free(px->listener);
    px->listener = NULL;
    client_shutdown_all(px);
}

static void
main_signal_cb(evutil_socket_t sig, short what, void *arg)
{
    struct proxy *px = arg;
    (void)what;
    if (sig == SIGHUP) {
        char err[512];
        if (px->config_path == NULL) {
            log_notice("SIGHUP: no config file to reload");
            return;
        }
        int rc = cfg_reload(&px->cfg, px->config_path, err, sizeof(err));
        if (rc == CFG_ERR) {
            log_warn("SIGHUP: reload failed, configuration unchanged: %s", err);
            return;
        }
        log_current_level = (enum log_level)px->cfg.loglevel;
        log_notice("SIGHUP: reloaded %s", px->config_path);
        if (rc == CFG_RELOAD_PARTIAL)
            log_warn("SIGHUP: %s", err);
        return;
    }
    main_begin_shutdown(px, sig == SIGTERM ? "SIGTERM" : "SIGINT");
}

static void
main_cron_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *px = arg;
    uint64_t now = bw_now_ms();
    (void)fd;
    (void)what;
    stats_sample(&px->stats, now);
    upstream_pool_cron(px->pool, now);
    watch_cron(px->watch, now);
    keyspace_cron(px, now);
    router_cron(px, now);
    tracking_limit(px->tracking, (uint64_t)px->cfg.tracking_table_max_keys, TRACKING_WRITER_NONE);
    netio_mem_cron(now, false);
    if (++main_cron_ticks % (1000 / MAIN_CRON_MS) == 0)
        client_cron(px, now);
    if (px->shutting_down) {
        bool idle = TAILQ_EMPTY(&px->sessions) && upstream_pool_inflight(px->pool) == 0;
        if (idle || now >= main_shutdown_deadline_ms) {
            if (!idle)
                log_warn("shutdown-timeout reached with requests in flight");
            event_base_loopbreak(px->base);
        }
    }
}

/* Parse the command line into px->cfg; exits on --help/--version/errors. */
static void
main_configure(struct proxy *px, int argc, char **argv, bool *test_only, const char **get)
{
    char err[1024];
    int i = 1;
    *test_only = false;
    *get = NULL;
    if (argc > 1 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        main_usage(stdout);
        exit(0);
    }
    if (argc > 1 && (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-v") == 0)) {
        printf("bulwark 0.1.0\n");
        exit(0);
    }
    if (argc > 1 && strcmp(argv[1], "--test-config") == 0) {
        *test_only = true;
        i = 2;
        if (argc < 3) {
            fprintf(stderr, "bulwark: --test-config needs a config file\n");
            exit(1);
        }
    }
    cfg_init(&px->cfg);
    if (i < argc && strncmp(argv[i], "--", 2) != 0) {
        px->config_path = argv[i];
        if (cfg_load_file(&px->cfg, argv[i], err, sizeof(err)) != 0) {
            fprintf(stderr, "bulwark: %s\n", err);
            exit(1);
        }
        i++;
    }
    /* --config-get NAME is ours, not a directive: take it out before cfg sees argv. */
    int n = 0;
    char **rest = bw_calloc((size_t)argc + 1, sizeof(char *));
    for (int j = i; j < argc; j++) {
        if (strcmp(argv[j], "--config-get") == 0 && j + 1 < argc)
            *get = argv[++j];
        else
            rest[n++] = argv[j];
    }
    int rc = cfg_apply_args(&px->cfg, n, rest, err, sizeof(err));
    bw_free(rest);
    if (rc != 0) {
        fprintf(stderr, "bulwark: %s\n", err);
        exit(1);
    }
}

static void
main_print_value(void *ud, const char *name, const char *value)
{
    (void)ud;
    (void)name;
    printf("%s\n", value);
}

/* Detach as redis-server does: fork, setsid, stdio to /dev/null. */
static void
main_daemonize(void)
{
    pid_t pid = fork();
    if (pid < 0) {
        fprintf(stderr, "bulwark: fork: %s\n", strerror(errno));
        exit(1);
    }
    if (pid > 0)
        exit(0);
    setsid();
    int fd = open("/dev/null", O_RDWR);
    if (fd >= 0) {
        dup2(fd, STDIN_FILENO);
        dup2(fd, STDOUT_FILENO);
        dup2(fd, STDERR_FILENO);
        if (fd > STDERR_FILENO)
            close(fd);
    }
}

static void
main_write_pidfile(const char *path)
{
    FILE *f = fopen(path, "w");
    if (f == NULL) {
        log_warn("cannot write pidfile %s: %s", path, strerror(errno));
        return;
    }
    fprintf(f, "%d\n", (int)getpid());
    fclose(f);
}

static void
main_add_signal(struct proxy *px, struct event **ev, int sig)
{
    *ev = evsignal_new(px->base, sig, main_signal_cb, px);
    BW_ASSERT(*ev != NULL && evsignal_add(*ev, NULL) == 0);
}

/*
 * As Redis's adjustOpenFilesLimit: raise RLIMIT_NOFILE to cover maxclients
 * plus bulwark's own descriptors (listeners, log, the shared upstream and
 * watch connections: 32 + upstream-connections + 2, Redis's reserve of 32)
 * plus upstream-pinned-max (a dedicated connection is a descriptor of its
 * own, beside its client's); if the system refuses, lower maxclients to
 * what fits, with a warning.
 */
static void
main_adjust_open_files(struct cfg *cfg)
{
    int fit = bw_fd_fit_clients(cfg->maxclients, local_fd_reserve(cfg));
    if (fit < cfg->maxclients) {
        log_warn("open files limit too low: maxclients lowered from %d to %d", cfg->maxclients,
                 fit);
        cfg->maxclients = fit;
    }
}

/* BCAST: the keys changed this loop turn, one message per prefix (Redis: beforeSleep). */
static void
main_tracking_cb(evutil_socket_t fd, short what, void *arg)
{
    struct proxy *px = arg;
    (void)fd;
    (void)what;
    tracking_bcast_flush(px->tracking);
}

/* The keyspace watch named a key: hot caches and tracking clients drop it. */
static void
main_watch_key(void *arg, const char *key, size_t len)
{
    struct proxy *px = arg;
    keyspace_key_changed(px, key, len);
    ctrack_key_changed(px, key, len, ctrack_echo_writer(px, key, len));
}

/* Cluster slots have new masters: the hot caches drop what the old ones' watches guarded. */
static void
main_slots_moved(struct proxy *px, const uint8_t *changed)
{
    keyspace_slots_moved(px, changed);
}

/*
 * The watch saw a flush, or was lost: every hot cache and tracked key goes
 * (in front of a cluster, the hot-cache entries of that master's keys);
 * tracking clients were told already when told: a flush's late echo.
 */
static void
main_watch_flush(void *arg, const struct watch *w, bool told)
{
    struct proxy *px = arg;
    px->watch_flushes++;
    if (router_active(px)) /* a cluster: what that master's watch guarded */
        keyspace_watch_flushed(px, w);
    else
        keyspace_flushed(px);
    if (!told)
        tracking_flushed(px->tracking,
                         px->trk_flushes > 0 ? px->trk_flush_writer : TRACKING_WRITER_NONE);
}

static void
main_cleanup(struct proxy *px)
{
    listener_free(px->listener);
    metrics_free(px->metrics);
    px->metrics = NULL;
    client_free_all(px);
    keyspace_free_all(px); /* held GETs go to the batchers, then batches are sent */
    tracking_free(px->tracking);
    inflight_free(px->trk_writes);
    if (px->tracking_ev != NULL)
        event_free(px->tracking_ev);
    router_free(px);
    upstream_pool_free(px->pool);
    watch_free(px->watch);
    batch_cache_free_all(); /* every batch is answered by now */
    hireply_cache_free_all();
    event_free(main_sig_term);
    event_free(main_sig_int);
    event_free(main_sig_hup);
    event_free(px->cron_ev);
    event_free(px->reap_ev);
    cmd_table_free(px->cmds);
    cmdstats_deinit(&px->cmdstats);
    if (px->cfg.pidfile != NULL && px->cfg.pidfile[0] != '\0')
        (void)unlink(px->cfg.pidfile);
    cfg_deinit(&px->cfg);
    event_base_free(px->base);
    libevent_global_shutdown();
    netio_mem_cron(0, true);
}

/* The event loop, the proxy's lists and counters, the built-in command table, cron, signals. */
static void
main_init_loop(struct proxy *px)
{
    event_set_log_callback(main_libevent_log);
    /* Precise timers (timerfd): batch-window and deadlines are in µs; the
     * default epoll timeout would round a 100 µs window up to 1 ms or more. */
    struct event_config *ecfg = event_config_new();
    BW_ASSERT(ecfg != NULL);
    event_config_set_flag(ecfg, EVENT_BASE_FLAG_PRECISE_TIMER);
    px->base = event_base_new_with_config(ecfg);
    event_config_free(ecfg);
    BW_ASSERT(px->base != NULL);
    TAILQ_INIT(&px->sessions);
    TAILQ_INIT(&px->reaped);
    px->next_client_id = 1;
    px->on_batch_nil = gate_batch_nil;           /* the gate counts the nils the batcher reads */
    px->on_batch_redirect = cfwd_batch_redirect; /* a cluster's MOVED/ASK to a batched GET */
    px->on_slots_moved = main_slots_moved;       /* a cluster slot's new master */
    snprintf(px->upstream_version, sizeof(px->upstream_version), "7.0.0");
    px->databases = px->cfg.upstream_databases > 0 ? px->cfg.upstream_databases : 16;
    stats_init(&px->stats);
    cmdstats_init(&px->cmdstats);
    jitter_rng_seed(&px->jitter_rng, 0);
    struct cmd_table *builtin = cmd_table_builtin();
    cmdstats_assign_table(&px->cmdstats, builtin);
    stages_set_command_table(px, builtin, false);
    px->reap_ev = event_new(px->base, -1, 0, main_reap_cb, px);
    px->cron_ev = event_new(px->base, -1, EV_PERSIST, main_cron_cb, px);
    struct timeval tick = {0, MAIN_CRON_MS * 1000};
    BW_ASSERT(px->reap_ev != NULL && px->cron_ev != NULL && evtimer_add(px->cron_ev, &tick) == 0);
    main_add_signal(px, &main_sig_term, SIGTERM);
    main_add_signal(px, &main_sig_int, SIGINT);
    main_add_signal(px, &main_sig_hup, SIGHUP);
}

int
main(int argc, char **argv)
{
    static struct proxy px;
    bool test_only;
    const char *get;
    char err[512];

    netio_mem_init(); /* before any libevent allocation */
    signal(SIGPIPE, SIG_IGN);
    main_configure(&px, argc, argv, &test_only, &get);
    if (get != NULL) {
        size_t n = cfg_get(&px.cfg, get, main_print_value, NULL);
        cfg_deinit(&px.cfg);
        return n > 0 ? 0 : 1;
    }
    if (test_only) {
        printf("bulwark: configuration is OK\n");
        cfg_deinit(&px.cfg);
        return 0;
    }
    if (log_init((enum log_level)px.cfg.loglevel, px.cfg.logfile) != 0) {
        fprintf(stderr, "bulwark: cannot open logfile %s: %s\n", px.cfg.logfile, strerror(errno));
        return 1;
    }
    main_adjust_open_files(&px.cfg);
    if (px.cfg.daemonize)
        main_daemonize();
    if (px.cfg.pidfile != NULL && px.cfg.pidfile[0] != '\0')
        main_write_pidfile(px.cfg.pidfile);

    main_init_loop(&px);
    px.pool = upstream_pool_new(&px, main_on_commands);
    px.watch = watch_new(&px);
    px.tracking = tracking_new(ctrack_lookup, ctrack_send, &px);
    px.tracking_ev = event_new(px.base, -1, 0, main_tracking_cb, &px);
    BW_ASSERT(px.tracking_ev != NULL);
    watch_set_listener(px.watch, main_watch_key, main_watch_flush, &px);
    (void)keyspace_get(&px, 0); /* every client starts in database 0 */
    px.listener = listener_new(&px, err, sizeof(err));
    if (px.listener != NULL && px.cfg.metrics_port > 0)
        px.metrics = metrics_new(&px, err, sizeof(err));
    if (px.listener == NULL || (px.cfg.metrics_port > 0 && px.metrics == NULL)) {
        log_warn("%s", err);
        main_cleanup(&px);
        log_deinit();
        return 1;
    }
    log_notice("bulwark 0.1.0 ready: port %d, upstream %s:%d, pid %d", px.cfg.port,
               px.cfg.upstream_host, px.cfg.upstream_port, (int)getpid());
    event_base_dispatch(px.base);
    main_cleanup(&px);
    log_notice("bulwark stopped");
    log_deinit();
    return 0;
}
