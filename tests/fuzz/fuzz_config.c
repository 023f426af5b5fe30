/*
 * fuzz_config: libFuzzer target for the config parser (config/config.c and
 * config/syntax.c). The input is a config file's text; the target aborts if
 * an error lacks "name:line: reason" with a real line, if a bad line changed
 * anything, or if a config that loads does not survive CONFIG GET -> text ->
 * load unchanged. Build: see the fuzz rule in the Makefile.
 *
 * include: an input is read from memory (cfg_load_string) unless it has an
 * "include" line; then it is written to fuzz.conf in a private temp dir and
 * read with cfg_load_file(), so relative includes resolve there, among the
 * files LLVMFuzzerInitialize() wrote (fuzz_files). Inputs with an include
 * path that has a '/' are skipped: the fuzzer reads no file outside that dir
 * (removed at exit; a crash leaves it). Loops and depth are the parser's own
 * business: it refuses a file already being read and nesting deeper than
 * CFG_INCLUDE_DEPTH_MAX, which the d00 -> d01 -> ... -> d16 chain reaches.
 * FUZZ_VERBOSE=1 ./build/fuzz/fuzz_config <input> prints what each load gave.
 */
#include <ftw.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "config/config.h"
#include "config/syntax.h"
#include "proxy/util.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Name of an input read from memory, in its errors. */
#define FUZZ_NAME "fuzz"
#define FUZZ_ERRLEN 1024

/* A file an input may include. */
struct fuzz_file {
    char name[16]; /* in the temp dir */
    char text[64]; /* its content */
};

/* The files written by LLVMFuzzerInitialize(), then d00..d16. */
static struct fuzz_file fuzz_files[5 + CFG_INCLUDE_DEPTH_MAX + 1] = {
    {"good.conf", "port 7000\ndeny-commands \"FLUSHALL KEYS\"\n"},
    {"bad.conf", "# fails on line 3\nmaxclients 5\nport x\n"},
    {"self.conf", "timeout 9\ninclude self.conf\n"},
    {"chain.conf", "include good.conf\n\nloglevel debug\n"},
    {"list.conf", "ttl-jitter-exclude a*\nttl-jitter-exclude \"b c\"\n"},
};

static char fuzz_dir[64];   /* the temp dir; "" before it is made */
static char fuzz_path[128]; /* fuzz_dir/fuzz.conf */
static bool fuzz_verbose;   /* FUZZ_VERBOSE set: print each outcome */

/* ---- set-up -------------------------------------------------------------- */

static void
fuzz_write(const char *name, const char *text, size_t len)
{
    char path[128];
    FILE *f;

    snprintf(path, sizeof(path), "%s/%s", fuzz_dir, name);
    f = fopen(path, "w");
    BW_ASSERT(f != NULL);
    BW_ASSERT(fwrite(text, 1, len, f) == len);
    BW_ASSERT(fclose(f) == 0);
}

static int
fuzz_rm(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void
fuzz_cleanup(void)
{
    if (fuzz_dir[0] != '\0')
        nftw(fuzz_dir, fuzz_rm, 8, FTW_DEPTH | FTW_PHYS);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    const char *tmp = getenv("TMPDIR");

    (void)argc;
    (void)argv;
    fuzz_verbose = getenv("FUZZ_VERBOSE") != NULL;
    snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/bulwark-fuzz-config.XXXXXX",
             tmp != NULL && strlen(tmp) < 24 ? tmp : "/tmp");
    BW_ASSERT(mkdtemp(fuzz_dir) != NULL);
    atexit(fuzz_cleanup);
    snprintf(fuzz_path, sizeof(fuzz_path), "%s/fuzz.conf", fuzz_dir);
    /* d00 includes d01 ... d16: deeper than CFG_INCLUDE_DEPTH_MAX */
    for (int i = 0; i <= CFG_INCLUDE_DEPTH_MAX; i++) {
        struct fuzz_file *f = &fuzz_files[5 + i];
        snprintf(f->name, sizeof(f->name), "d%02d.conf", i);
        snprintf(f->text, sizeof(f->text), "include d%02d.conf\n", i + 1);
    }
    for (size_t i = 0; i < BW_ARRAY_LEN(fuzz_files); i++)
        fuzz_write(fuzz_files[i].name, fuzz_files[i].text, strlen(fuzz_files[i].text));
    return 0;
}

/* ---- the input's lines ------------------------------------------------- */

/* What the parser will see on each line of an input. */
struct fuzz_lines {
    size_t count; /* lines, as the parser numbers them */
    bool include; /* some line is an include */
    bool escape;  /* some include path has a '/' (or a NUL) */
};

/* Start of line n (1-based) of text, which has that many lines. */
static const char *
fuzz_line_start(const char *text, long n)
{
    for (long i = 1; i < n; i++)
        text = strchr(text, '\n') + 1;
    return text;
}

/* The line at p trimmed as the parser trims it; *len its length. */
static const char *
fuzz_line(const char *p, size_t *len)
{
    const char *e = p + strcspn(p, "\n");

    while (p < e && strchr(" \t\r", *p) != NULL)
        p++;
    while (e > p && strchr(" \t\r", e[-1]) != NULL)
        e--;
    *len = (size_t)(e - p);
    return p;
}

/* Is the line at p an include directive (split as the parser splits it)? */
static bool
fuzz_is_include(const char *p, bool *escape)
{
    size_t len, *lens;
    p = fuzz_line(p, &len);
    char *line = bw_strndup(p, len), **argv;
    int argc = cfg_split_line(line, &argv, &lens);
    bool inc = argc >= 1 && strcasecmp(argv[0], "include") == 0;

    if (inc && argc == 2 && (strchr(argv[1], '/') != NULL || strlen(argv[1]) != lens[1]))
        *escape = true;
    if (argc >= 0) {
        cfg_free_words(argv, (size_t)argc);
        free(lens);
    }
    bw_free(line);
    return inc;
}

static struct fuzz_lines
fuzz_scan_lines(const char *text)
{
    struct fuzz_lines l = {0, false, false};
    const char *p = text;

    for (;;) {
        l.count++;
        l.include |= fuzz_is_include(p, &l.escape);
        p = strchr(p, '\n');
        if (p == NULL)
            return l;
        p++;
    }
}

/* ---- loading and comparing ----------------------------------------------- */

/* Load text into a fresh c, from memory or (files) through fuzz.conf. */
static int
fuzz_load(struct cfg *c, const char *text, bool files, char *err)
{
    cfg_init(c);
    if (!files)
        return cfg_load_string(c, text, FUZZ_NAME, err, FUZZ_ERRLEN);
    fuzz_write("fuzz.conf", text, strlen(text));
    return cfg_load_file(c, fuzz_path, err, FUZZ_ERRLEN);
}

/* CONFIG GET * as "name\0value\0" pairs. */
struct fuzz_dump {
    char *s;    /* owned */
    size_t len; /* bytes used */
    size_t cap; /* bytes allocated */
};

static void
fuzz_bytes(struct fuzz_dump *d, const char *s, size_t n)
{
    if (d->len + n > d->cap) {
        d->cap = (d->len + n) * 2 + 256;
        d->s = bw_realloc(d->s, d->cap);
    }
    memcpy(d->s + d->len, s, n);
    d->len += n;
}

/* Append s and its NUL. */
static void
fuzz_put(struct fuzz_dump *d, const char *s)
{
    fuzz_bytes(d, s, strlen(s) + 1);
}

static void
fuzz_emit(void *ud, const char *name, const char *value)
{
    fuzz_put(ud, name);
    fuzz_put(ud, value);
}

static struct fuzz_dump
fuzz_dump(const struct cfg *c)
{
    struct fuzz_dump d = {NULL, 0, 0};

    BW_ASSERT(cfg_get(c, "*", fuzz_emit, &d) > 0);
    return d;
}

static void
fuzz_same(const struct fuzz_dump *a, const struct fuzz_dump *b)
{
    BW_ASSERT(a->len == b->len && memcmp(a->s, b->s, a->len) == 0);
}

/* ---- the properties ---------------------------------------------------- */

/* The lines of an included file's text, if name is one of fuzz_files. */
static const char *
fuzz_file_text(const char *name, size_t namelen)
{
    size_t dl = strlen(fuzz_dir);

    if (namelen <= dl + 1 || strncmp(name, fuzz_dir, dl) != 0 || name[dl] != '/')
        return NULL;
    for (size_t i = 0; i < BW_ARRAY_LEN(fuzz_files); i++) {
        if (strlen(fuzz_files[i].name) == namelen - dl - 1 &&
            strncmp(fuzz_files[i].name, name + dl + 1, namelen - dl - 1) == 0)
            return fuzz_files[i].text;
    }
    return NULL;
}

/*
 * err is "name:line: reason" with a reason, and line is a line of the file
 * named that has a directive on it. Returns the line when name is the input
 * itself (top), else 0.
 */
static long
fuzz_check_error(const char *err, const char *top, const char *text)
{
    const char *colon = strchr(err, ':'), *file_text, *p;
    char *end;
    size_t len;
    long line, lines = 1;

    /* names here hold no ':' (fuzz_dir is mkdtemp's) */
    BW_ASSERT(colon != NULL && colon > err);
    line = strtol(colon + 1, &end, 10);
    BW_ASSERT(end > colon + 1 && end[0] == ':' && end[1] == ' ' && end[2] != '\0');
    if ((size_t)(colon - err) == strlen(top) && strncmp(err, top, strlen(top)) == 0) {
        file_text = text;
    } else {
        file_text = fuzz_file_text(err, (size_t)(colon - err));
        BW_ASSERT(file_text != NULL);
    }
    for (p = file_text; (p = strchr(p, '\n')) != NULL; p++)
        lines++;
    BW_ASSERT(line >= 1 && line <= lines);
    p = fuzz_line(fuzz_line_start(file_text, line), &len);
    BW_ASSERT(len > 0 && p[0] != '#');
    return file_text == text ? line : 0;
}

/* CONFIG GET's text of every directive, loaded back, is the same config. */
static void
fuzz_check_roundtrip(const struct cfg *c)
{
    struct fuzz_dump d = fuzz_dump(c), d2, text = {NULL, 0, 0};
    char err[FUZZ_ERRLEN], hex[8];
    struct cfg c2;

    for (size_t at = 0; at < d.len;) {
        const char *name = d.s + at, *value = name + strlen(name) + 1;
        BW_ASSERT(cfg_is_same(c, name, value));
        fuzz_bytes(&text, name, strlen(name));
        fuzz_bytes(&text, " \"", 2);
        for (const char *v = value; *v != '\0'; v++) {
            snprintf(hex, sizeof(hex), "\\x%02x", (unsigned char)*v);
            fuzz_bytes(&text, hex, 4);
        }
        fuzz_bytes(&text, "\"\n", 2);
        at = (size_t)(value - d.s) + strlen(value) + 1;
    }
    fuzz_bytes(&text, "", 1);
    BW_ASSERT(fuzz_load(&c2, text.s, false, err) == CFG_OK);
    d2 = fuzz_dump(&c2);
    fuzz_same(&d, &d2);
    cfg_deinit(&c2);
    bw_free(d.s);
    bw_free(d2.s);
    bw_free(text.s);
}

/*
 * The input failed at its line `line` (not an include): the lines before it
 * load, to the same config as the failed load left (a bad line changes
 * nothing).
 */
static void
fuzz_check_prefix(const struct cfg *failed, const char *text, long line, bool files)
{
    const char *p = fuzz_line_start(text, line);
    char *prefix, err[FUZZ_ERRLEN];
    struct fuzz_dump a, b;
    struct cfg c;

    prefix = bw_strndup(text, (size_t)(p - text));
    BW_ASSERT(fuzz_load(&c, prefix, files, err) == CFG_OK);
    a = fuzz_dump(failed);
    b = fuzz_dump(&c);
    fuzz_same(&a, &b);
    cfg_deinit(&c);
    bw_free(prefix);
    bw_free(a.s);
    bw_free(b.s);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text, err[FUZZ_ERRLEN];
    struct fuzz_lines lines;
    struct cfg c;
    int rc;

    if (size > 16384)
        return 0;
    /* The parser reads text up to its first NUL, a file too. */
    text = bw_strndup((const char *)data, size);
    lines = fuzz_scan_lines(text);
    if (lines.escape) {
        bw_free(text);
        return 0;
    }
    rc = fuzz_load(&c, text, lines.include, err);
    if (fuzz_verbose)
        fprintf(stderr, "fuzz_config: %s%s\n",
                rc == CFG_OK ? "ok" : "error: ", rc == CFG_OK ? "" : err);
    if (rc == CFG_OK) {
        fuzz_check_roundtrip(&c);
    } else {
        bool esc = false;
        long line;

        BW_ASSERT(rc == CFG_ERR);
        line = fuzz_check_error(err, lines.include ? fuzz_path : FUZZ_NAME, text);
        if (line > 0 && !fuzz_is_include(fuzz_line_start(text, line), &esc))
            fuzz_check_prefix(&c, text, line, lines.include);
    }
    cfg_deinit(&c);
    bw_free(text);
    return 0;
}
