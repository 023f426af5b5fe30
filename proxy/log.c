/* log: leveled log lines to stderr or a file, redis-server's format. */
#include "proxy/log.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

enum log_level log_current_level = LOG_LEVEL_NOTICE;
static FILE *log_file; /* owned; NULL means stderr */

int
log_init(enum log_level level, const char *path)
{
    log_current_level = level;
    if (path == NULL || path[0] == '\0') {
        log_deinit();
        return 0;
    }
    FILE *f = fopen(path, "a");
    if (f == NULL)
        return -1;
    log_deinit();
    log_file = f;
    return 0;
}

void
log_deinit(void)
{
    if (log_file != NULL)
        fclose(log_file);
    log_file = NULL;
}

bool
log_level_parse(const char *name, enum log_level *out)
{
    static const char *names[] = {"debug", "verbose", "notice", "warning"};
    for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        if (strcasecmp(name, names[i]) == 0) {
            *out = (enum log_level)i;
            return true;
        }
    }
    return false;
}

void
log_write(enum log_level level, const char *fmt, ...)
{
    static const char marks[] = ".-*#";
    char msg[1024], stamp[64];
    struct timeval tv;
    struct tm tm;
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    gettimeofday(&tv, NULL);
    localtime_r(&tv.tv_sec, &tm);
    size_t n = strftime(stamp, sizeof(stamp), "%d %b %Y %H:%M:%S.", &tm);
    snprintf(stamp + n, sizeof(stamp) - n, "%03d", (int)(tv.tv_usec / 1000));
    FILE *out = log_file != NULL ? log_file : stderr;
    fprintf(out, "%d:P %s %c %s\n", (int)getpid(), stamp, marks[level], msg);
    fflush(out);
}

void
log_sanitize(const char *data, size_t len, char *out, size_t outlen)
{
    size_t n = len > 64 ? 64 : len, o = 0;
    if (outlen < 68) {
        if (outlen > 0)
            out[0] = '\0';
        return;
    }
    for (size_t i = 0; i < n; i++)
        out[o++] = isprint((unsigned char)data[i]) ? data[i] : '.';
    if (len > 64) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}
