/*
 * log: leveled logging in redis-server's line format
 * ("pid:role dd Mon yyyy hh:mm:ss.mmm <mark> message"), to stderr or a file.
 */
#ifndef BW_LOG_H
#define BW_LOG_H

#include <stdbool.h>
#include <stddef.h>

enum log_level {
    LOG_LEVEL_DEBUG = 0,   /* per-request detail */
    LOG_LEVEL_VERBOSE = 1, /* connection open/close */
    LOG_LEVEL_NOTICE = 2,  /* start, stop, upstream state changes */
    LOG_LEVEL_WARNING = 3  /* something the operator should look at */
};

/* The level in force; messages below it are not formatted. */
extern enum log_level log_current_level;

/*
 * Open the log. path NULL or "" logs to stderr. Returns 0, or -1 when the
 * file cannot be opened for append (errno set); the previous target is kept.
 */
int log_init(enum log_level level, const char *path);

/* Close a log file opened by log_init(); later messages go to stderr. */
void log_deinit(void);

/* Parse "debug" | "verbose" | "notice" | "warning" (case-insensitive). */
bool log_level_parse(const char *name, enum log_level *out);

/* Format and write one line; use the macros, which check the level first. */
void log_write(enum log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_at(lvl, ...)                   \
    do {                                   \
        if ((lvl) >= log_current_level)    \
            log_write((lvl), __VA_ARGS__); \
    } while (0)
#define log_debug(...) log_at(LOG_LEVEL_DEBUG, __VA_ARGS__)
#define log_verbose(...) log_at(LOG_LEVEL_VERBOSE, __VA_ARGS__)
#define log_notice(...) log_at(LOG_LEVEL_NOTICE, __VA_ARGS__)
#define log_warn(...) log_at(LOG_LEVEL_WARNING, __VA_ARGS__)

/*
 * Render at most 64 bytes of client data for a log line into out
 * (outlen >= 68): non-printable bytes become '.', "..." marks a cut.
 */
void log_sanitize(const char *data, size_t len, char *out, size_t outlen);

#endif
