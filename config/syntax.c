/*
 * syntax: the text rules under config.c — allocation that aborts, Redis's
 * string2ll and memtoull number rules, redis.conf line splitting (sds.c
 * sdssplitargs) and Redis's glob matcher (util.c stringmatchlen).
 */
#include "config/syntax.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config/config.h"

/* ---- allocation: out of memory is a bug (STYLE.md), so abort ---------- */

void *
cfg_xrealloc(void *ptr, size_t size)
{
    void *p = realloc(ptr, size == 0 ? 1 : size);

    if (p == NULL) {
        fprintf(stderr, "config: out of memory allocating %zu bytes\n", size);
        abort();
    }
    return p;
}

char *
cfg_xstrndup(const char *s, size_t n)
{
    char *p = cfg_xrealloc(NULL, n + 1);

    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *
cfg_xstrdup(const char *s)
{
    return cfg_xstrndup(s, strlen(s));
}

/* Redis util.c string2ll: optional '-', digits, no '+', no leading zeros. */
bool
cfg_string2ll(const char *s, long long *out)
{
    const char *d = s[0] == '-' ? s + 1 : s;

    if (strcmp(s, "0") == 0) {
        *out = 0;
        return true;
    }
    if (d[0] < '1' || d[0] > '9' || d[strspn(d, "0123456789")] != '\0')
        return false;
    errno = 0;
    *out = strtoll(s, NULL, 10);
    return errno == 0;
}

/*
 * Redis util.c memtoull: digits then an optional unit; no sign. As Redis,
 * an empty digit part is 0 and a digit overflow saturates (caught by the
 * range check), while overflow by the unit is a syntax error.
 */
bool
cfg_memtoull(const char *p, uint64_t *out)
{
    static const struct {
        const char *unit;
        uint64_t mul;
    } units[] = {{"", 1},        {"b", 1},        {"k", 1000},       {"kb", 1024},
                 {"m", 1000000}, {"mb", 1048576}, {"g", 1000000000}, {"gb", 1073741824}};
    const char *u = p;
    uint64_t val = 0, mul = 0;

    while (*u >= '0' && *u <= '9')
        u++;
    for (size_t i = 0; i < sizeof(units) / sizeof(units[0]); i++) {
        if (strcasecmp(u, units[i].unit) == 0)
            mul = units[i].mul;
    }
    if (mul == 0 || u - p >= 128)
        return false;
    for (const char *d = p; d < u; d++) {
        unsigned dig = (unsigned)(*d - '0');
        val = val > (UINT64_MAX - dig) / 10 ? UINT64_MAX : val * 10 + dig;
    }
    if (val > UINT64_MAX / mul)
        return false;
    *out = val * mul;
    return true;
}

/* ---- line splitting (Redis sds.c sdssplitargs) ----------------------------
 */

static int
cfg_hexval(char ch)
{
    if (!isxdigit((unsigned char)ch))
        return -1;
    return ch <= '9' ? ch - '0' : tolower((unsigned char)ch) - 'a' + 10;
}

/*
 * Copy the rest of a double-quoted (q '"') or single-quoted argument part
 * from *pp to out + *len, unescaping; *pp ends past the closing quote.
 * Returns -1 when the quote is not closed or not followed by a space.
 */
static int
cfg_split_quoted(const char **pp, char q, char *out, size_t *len)
{
    static const char from[] = "nrtba", to[] = "\n\r\t\b\a";
    const char *p = *pp;

    for (;; p++) {
        if (*p == '\0')
            return -1;
        if (q == '"' && p[0] == '\\' && p[1] == 'x' && cfg_hexval(p[2]) >= 0 &&
            cfg_hexval(p[3]) >= 0) {
            out[(*len)++] = (char)(cfg_hexval(p[2]) * 16 + cfg_hexval(p[3]));
            p += 3;
        } else if (q == '"' && p[0] == '\\' && p[1] != '\0') {
            const char *m = strchr(from, p[1]);
            out[(*len)++] = m != NULL ? to[m - from] : p[1];
            p++;
        } else if (q == '\'' && p[0] == '\\' && p[1] == '\'') {
            out[(*len)++] = '\'';
            p++;
        } else if (*p == q) {
            if (p[1] != '\0' && !isspace((unsigned char)p[1]))
                return -1;
            *pp = p + 1;
            return 0;
        } else {
            out[(*len)++] = *p;
        }
    }
}

/*
 * Split a line into arguments. Returns the count and sets *argvp and
 * *lensp (both owned by the caller), or -1 on unbalanced quotes. An
 * argument is never longer than the line, which sizes its buffer.
 */
void
cfg_free_words(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

int
cfg_split_line(const char *p, char ***argvp, size_t **lensp)
{
    size_t linelen = strlen(p), *lens = NULL;
    char **argv = NULL;
    int argc = 0;

    for (;;) {
        char *tok;
        size_t len = 0;

        while (*p != '\0' && isspace((unsigned char)*p))
            p++;
        if (*p == '\0')
            break;
        tok = cfg_xrealloc(NULL, linelen + 1);
        while (*p != '\0' && strchr(" \n\r\t", *p) == NULL) {
            char ch = *p++;
            if (ch != '"' && ch != '\'') {
                tok[len++] = ch;
            } else if (cfg_split_quoted(&p, ch, tok, &len) != 0) {
                free(tok);
                cfg_free_words(argv, (size_t)argc);
                free(lens);
                return -1;
            } else {
                break; /* a closing quote ends the word (sdssplitargs), even before \v or \f */
            }
        }
        tok = cfg_xrealloc(tok, len + 1); /* words of a long line: no line-sized copies */
        tok[len] = '\0';
        argv = cfg_xrealloc(argv, (size_t)(argc + 1) * sizeof(*argv));
        lens = cfg_xrealloc(lens, (size_t)(argc + 1) * sizeof(*lens));
        argv[argc] = tok;
        lens[argc++] = len;
    }
    *argvp = argv;
    *lensp = lens;
    return argc;
}

/* One "[...]" class at *pp against ch; advances the pattern past it. */
static bool
cfg_glob_class(const char **pp, size_t *plenp, unsigned char ch, bool nocase)
{
    const char *p = *pp + 1;
    size_t plen = *plenp - 1;
    bool not = plen > 0 && p[0] == '^', match = false;

    if (not ) {
        p++;
        plen--;
    }
    for (;; p++, plen--) {
        if (plen >= 2 && p[0] == '\\') {
            p++;
            plen--;
            match |= (unsigned char)p[0] == ch;
        } else if (plen > 0 && p[0] == ']') {
            break;
        } else if (plen == 0) {
            p--; /* unclosed: stay on the last byte, as Redis */
            plen++;
            break;
        } else if (plen >= 3 && p[1] == '-') {
            int lo = (unsigned char)p[0], hi = (unsigned char)p[2], x = ch;
            if (lo > hi) {
                int t = lo;
                lo = hi;
                hi = t;
            }
            if (nocase) {
                lo = tolower(lo);
                hi = tolower(hi);
                x = tolower(x);
            }
            p += 2;
            plen -= 2;
            match |= x >= lo && x <= hi;
        } else {
            match |= nocase ? tolower((unsigned char)p[0]) == tolower(ch)
                            : (unsigned char)p[0] == ch;
        }
    }
    *pp = p;
    *plenp = plen;
    return not ? !match : match;
}

/* Redis util.c stringmatchlen_impl, bounds-checked. */
static bool
cfg_glob_impl(const char *p, size_t plen, const char *s, size_t slen, bool nocase, bool *skip)
{
    while (plen > 0 && slen > 0) {
        unsigned char pc = (unsigned char)p[0], sc = (unsigned char)s[0];

        if (pc == '*') {
            while (plen >= 2 && p[1] == '*') {
                p++;
                plen--;
            }
            if (plen == 1)
                return true;
            for (; slen > 0; s++, slen--) {
                if (cfg_glob_impl(p + 1, plen - 1, s, slen, nocase, skip))
                    return true;
                if (*skip)
                    return false;
            }
            *skip = true;
            return false;
        } else if (pc == '[') {
            if (!cfg_glob_class(&p, &plen, sc, nocase))
                return false;
        } else if (pc != '?') {
            if (pc == '\\' && plen >= 2) {
                p++;
                plen--;
                pc = (unsigned char)p[0];
            }
            if (nocase ? tolower(pc) != tolower(sc) : pc != sc)
                return false;
        }
        s++;
        slen--;
        p++;
        plen--;
        if (slen == 0) {
            while (plen > 0 && *p == '*') {
                p++;
                plen--;
            }
        }
    }
    return plen == 0 && slen == 0;
}

bool
cfg_glob_match(const char *pattern, size_t plen, const char *s, size_t slen, bool nocase)
{
    bool skip = false;

    return cfg_glob_impl(pattern, plen, s, slen, nocase, &skip);
}
