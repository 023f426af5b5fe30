/*
 * syntax: the text rules of the config module — allocation that aborts,
 * Redis's number rules, redis.conf line splitting. Pure: libc only.
 */
#ifndef BW_CFG_SYNTAX_H
#define BW_CFG_SYNTAX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* realloc/strndup/strdup that print the size and abort on failure. */
void *cfg_xrealloc(void *ptr, size_t size);
char *cfg_xstrndup(const char *s, size_t n);
char *cfg_xstrdup(const char *s);

/*
 * Redis util.c string2ll: optional '-', digits, no '+', no leading zeros,
 * no spaces; false when s is not such a number or overflows long long.
 */
bool cfg_string2ll(const char *s, long long *out);

/*
 * Redis util.c memtoull: digits then an optional unit (b, k, kb, m, mb, g,
 * gb; case-insensitive; k = 1000, kb = 1024), no sign. An empty digit part
 * is 0 and a digit overflow saturates; an overflow by the unit is false.
 */
bool cfg_memtoull(const char *p, uint64_t *out);

/* Free n words (each, then the array); v may be NULL when n is 0. */
void cfg_free_words(char **v, size_t n);

/*
 * Split one config line as Redis's sdssplitargs: words separated by
 * whitespace, "double quotes" with \n \r \t \b \a \\ \" \xHH escapes,
 * 'single quotes' with \'. Returns the word count with *argvp (owned
 * NUL-terminated copies, free each and the array) and *lensp (their
 * lengths, owned), or -1 on unbalanced quotes (nothing allocated).
 */
int cfg_split_line(const char *p, char ***argvp, size_t **lensp);

#endif
