/* netio: big reads straight into an evbuffer (see netio.h). */
#include "proxy/netio.h"

#include <unistd.h>

#include <event2/buffer.h>

#include "proxy/util.h"

size_t
netio_read_big(struct evbuffer *buf, evutil_socket_t fd, size_t want, size_t max_read)
{
    size_t total = 0;
    evbuffer_unfreeze(buf, 0); /* bufferevent_socket keeps the end of its input frozen */
    while (total < want) {
        struct evbuffer_iovec v;
        size_t ask = BW_MIN(want - total, max_read);
        if (evbuffer_reserve_space(buf, (ev_ssize_t)ask, &v, 1) < 1)
            break;
        ssize_t n = read(fd, v.iov_base, BW_MIN(v.iov_len, ask));
        if (n <= 0)
            break;
        v.iov_len = (size_t)n;
        evbuffer_commit_space(buf, &v, 1);
        total += (size_t)n;
    }
    evbuffer_freeze(buf, 0);
    return total;
}
