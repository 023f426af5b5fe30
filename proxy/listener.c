/* listener: listening sockets, accept and maxclients. */
#include "proxy/listener.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <fcntl.h>
#include <unistd.h>

#include <event2/event.h>
#include <event2/listener.h>

#include "proxy/client.h"
#include "proxy/log.h"
#include "proxy/proxy.h"
#include "proxy/util.h"

/* Redis's reply to a connection over maxclients (networking.c acceptCommonHandler). */
static const char listener_maxclients_err[] = "-ERR max number of clients reached\r\n";

#define LISTENER_MAX 17 /* up to 16 bind addresses and the unix socket */

struct listener {
    struct proxy *px;                         /* borrowed */
    struct event *resume_ev;                  /* re-enables accepting after EMFILE (owned) */
    struct evconnlistener *evl[LISTENER_MAX]; /* owned */
    int nevl;                                 /* entries in evl */
    char *unix_path;                          /* unix socket file (owned), NULL if none */
    int spare_fd;                             /* /dev/null kept open (owned), -1 if none:
                                                  closed to accept and refuse one
                                                  connection when out of descriptors */
};

/* Format a socket address as Redis does: "ip:port" ("[ip]:port" is not used by Redis). */
static void
listener_format_addr(const struct sockaddr *sa, char *out, size_t outlen)
{
    char ip[INET6_ADDRSTRLEN] = "?";
    int port = 0;
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &in->sin_addr, ip, sizeof(ip));
        port = ntohs(in->sin_port);
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &in6->sin6_addr, ip, sizeof(ip));
        port = ntohs(in6->sin6_port);
    }
    snprintf(out, outlen, "%s:%d", ip, port);
}

static void
listener_accept_cb(struct evconnlistener *evl, evutil_socket_t fd, struct sockaddr *sa, int salen,
                   void *arg)
{
    struct listener *l = arg;
    struct proxy *px = l->px;
    char addr[64], laddr[64];
    struct sockaddr_storage local;
    socklen_t llen = sizeof(local);
    bool is_unix = sa->sa_family == AF_UNIX;
    (void)evl;
    (void)salen;

    if (px->shutting_down || px->stats.connected_clients >= (uint64_t)px->cfg.maxclients) {
        const char *err = listener_maxclients_err;
        px->stats.rejected_connections++;
        if (write(fd, err, sizeof(listener_maxclients_err) - 1) < 0)
            log_debug("maxclients reply not written: %s", strerror(errno));
        evutil_closesocket(fd);
        return;
    }
    if (is_unix) {
        snprintf(addr, sizeof(addr), "%s:0", l->unix_path);
        snprintf(laddr, sizeof(laddr), "%s:0", l->unix_path);
    } else {
        int one = 1, idle = px->cfg.tcp_keepalive;
        listener_format_addr(sa, addr, sizeof(addr));
        if (getsockname(fd, (struct sockaddr *)&local, &llen) == 0)
            listener_format_addr((struct sockaddr *)&local, laddr, sizeof(laddr));
        else
            snprintf(laddr, sizeof(laddr), "?:0");
        (void)setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        if (idle > 0) {
            (void)setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &one, sizeof(one));
            (void)setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof(idle));
        }
    }
    client_accept(px, fd, addr, laddr, is_unix);
}

static void
listener_resume_cb(evutil_socket_t fd, short what, void *arg)
{
    struct listener *l = arg;
    (void)fd;
    (void)what;
    for (int i = 0; i < l->nevl; i++)
        evconnlistener_enable(l->evl[i]);
}

/*
 * Out of descriptors: give the spare one back, accept the pending
 * connection, answer it Redis's maxclients error, close it, take the spare
 * again (the reserve-descriptor trick of libev/nginx). True when one was
 * refused so; false when there was no spare or nothing to accept.
 */
static bool
listener_refuse_one(struct listener *l, evutil_socket_t lfd)
{
    if (l->spare_fd < 0)
        return false;
    close(l->spare_fd);
    int fd = accept(lfd, NULL, NULL);
    if (fd >= 0) {
        l->px->stats.rejected_connections++;
        if (write(fd, listener_maxclients_err, sizeof(listener_maxclients_err) - 1) < 0)
            log_debug("maxclients reply not written: %s", strerror(errno));
        close(fd);
    }
    l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    return fd >= 0;
}

/*
 * accept() failed. Out of file descriptors (EMFILE/ENFILE) the connection
 * is refused with -ERR max number of clients reached through the spare
 * descriptor; without one the pending connection stays readable, so
 * accepting would spin: stop for 100 ms and try again. Warnings at most
 * once a second.
 */
static void
listener_error_cb(struct evconnlistener *evl, void *arg)
{
    struct listener *l = arg;
    static uint64_t last_warn_ms;
    int err = EVUTIL_SOCKET_ERROR();
    uint64_t now = bw_now_ms();
    if (now - last_warn_ms >= 1000) {
        log_warn("accept on fd %d failed: %s%s", (int)evconnlistener_get_fd(evl),
                 evutil_socket_error_to_string(err),
                 err == EMFILE || err == ENFILE ? ": refusing with max number of clients reached"
                                                : "");
        last_warn_ms = now;
    }
    if ((err == EMFILE || err == ENFILE) && listener_refuse_one(l, evconnlistener_get_fd(evl)))
        return;
    if (err == EMFILE || err == ENFILE || err == ENOBUFS || err == ENOMEM) {
        struct timeval tv = {0, 100 * 1000};
        for (int i = 0; i < l->nevl; i++)
            evconnlistener_disable(l->evl[i]);
        evtimer_add(l->resume_ev, &tv);
    }
}

static bool
listener_add(struct listener *l, const struct sockaddr *sa, socklen_t salen, const char *what,
             char *err, size_t errlen)
{
    unsigned flags = LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE | LEV_OPT_CLOSE_ON_EXEC;
    if (l->nevl >= LISTENER_MAX) {
        snprintf(err, errlen, "too many listening addresses (at most %d)", LISTENER_MAX - 1);
        return false;
    }
    struct evconnlistener *evl = evconnlistener_new_bind(l->px->base, listener_accept_cb, l,
                                                         flags, l->px->cfg.tcp_backlog, sa,
                                                         (int)salen);
    if (evl == NULL) {
        snprintf(err, errlen, "cannot listen on %s: %s", what, strerror(errno));
        return false;
    }
    evconnlistener_set_error_cb(evl, listener_error_cb);
    l->evl[l->nevl++] = evl;
    return true;
}

static bool
listener_add_tcp(struct listener *l, const char *host, int port, char *err, size_t errlen)
{
    struct addrinfo hints, *res = NULL, *ai;
    char portstr[16], what[300];
    memset(&hints, 0, sizeof(hints));
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
    snprintf(portstr, sizeof(portstr), "%d", port);
    const char *h = host[0] == '-' ? host + 1 : host; /* "-::1": optional, as Redis */
    int rc = getaddrinfo(strcmp(h, "*") == 0 ? NULL : h, portstr, &hints, &res);
    if (rc != 0) {
        snprintf(err, errlen, "cannot listen on %s:%d: %s", host, port, gai_strerror(rc));
        return host[0] == '-';
    }
    for (ai = res; ai != NULL; ai = ai->ai_next) {
        snprintf(what, sizeof(what), "%s:%d", h, port);
        if (!listener_add(l, ai->ai_addr, ai->ai_addrlen, what, err, errlen) && host[0] != '-') {
            freeaddrinfo(res);
            return false;
        }
    }
    freeaddrinfo(res);
    return true;
}

static bool
listener_add_unix(struct listener *l, const char *path, int perm, char *err, size_t errlen)
{
    struct sockaddr_un sun;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        snprintf(err, errlen, "unixsocket path too long: %s", path);
        return false;
    }
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    memcpy(sun.sun_path, path, strlen(path));
    (void)unlink(path);
    if (!listener_add(l, (struct sockaddr *)&sun, sizeof(sun), path, err, errlen))
        return false;
    l->unix_path = bw_strdup(path);
    if (perm != 0 && chmod(path, (mode_t)perm) != 0)
        log_warn("chmod %o %s failed: %s", perm, path, strerror(errno));
    return true;
}

struct listener *
listener_new(struct proxy *px, char *err, size_t errlen)
{
    struct listener *l = bw_calloc(1, sizeof(*l));
    const struct cfg *cfg = &px->cfg;
    l->px = px;
    l->spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (l->spare_fd < 0)
        log_warn("cannot open /dev/null for the spare descriptor: %s", strerror(errno));
    l->resume_ev = evtimer_new(px->base, listener_resume_cb, l);
    BW_ASSERT(l->resume_ev != NULL);
    for (size_t i = 0; cfg->port != 0 && i < cfg->bind_count; i++) {
        if (!listener_add_tcp(l, cfg->bind[i], cfg->port, err, errlen)) {
            listener_free(l);
            return NULL;
        }
    }
    if (cfg->unixsocket != NULL && cfg->unixsocket[0] != '\0' &&
        !listener_add_unix(l, cfg->unixsocket, cfg->unixsocketperm, err, errlen)) {
        listener_free(l);
        return NULL;
    }
    if (l->nevl == 0) {
        snprintf(err, errlen, "nothing to listen on: set port (and bind) or unixsocket");
        listener_free(l);
        return NULL;
    }
    return l;
}

void
listener_free(struct listener *l)
{
    if (l == NULL)
        return;
    for (int i = 0; i < l->nevl; i++)
        evconnlistener_free(l->evl[i]);
    if (l->unix_path != NULL) {
        (void)unlink(l->unix_path);
        bw_free(l->unix_path);
    }
    if (l->resume_ev != NULL)
        event_free(l->resume_ev);
    if (l->spare_fd >= 0)
        close(l->spare_fd);
    bw_free(l);
}
