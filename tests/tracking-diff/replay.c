/*
 * replay: drive proxy/tracking from a script on stdin, print every message
 * it sends and every CLIENT reply, for tests/tracking-diff/diff.py (which
 * runs the same script against a real redis-server and compares).
 *
 * Script lines (ids are Redis's client ids, below 2^22):
 *   new <id> <resp> <pubsub 0|1>      a client connected
 *   gone <id>                         it closed
 *   cmd <id> <arg>...                 CLIENT <arg>... (hex args: see below)
 *   read <id> <key>...                a read command of these keys
 *   write <id> <key>...               a write of these keys (id 0: none)
 *   flush <id>                        FLUSHALL by id (0: none)
 *   turn                              end of an event-loop turn
 * Every argument is hex-encoded bytes ("-" for the empty string).
 * Output: "reply <id> <hex>" and "send <id> <hex>" lines, "turn" after each
 * turn, "counts <clients> <keys> <items> <prefixes>" at the end.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/tracking.h"
#include "proxy/util.h"

#define MAX_ID (1 << 22)
#define MAX_ARGS 64

static bool live[MAX_ID];
static int resp[MAX_ID];
static bool pubsub[MAX_ID];

static bool
lookup(void *arg, uint64_t id, struct tracking_peer *out)
{
    (void)arg;
    if (id >= MAX_ID || !live[id])
        return false;
    out->resp = resp[id];
    out->pubsub = pubsub[id];
    return true;
}

static void
hexprint(const char *tag, uint64_t id, const char *p, size_t n)
{
    printf("%s %llu ", tag, (unsigned long long)id);
    for (size_t i = 0; i < n; i++)
        printf("%02x", (unsigned char)p[i]);
    printf("\n");
}

static void
sendfn(void *arg, uint64_t to, const char *bytes, size_t len)
{
    (void)arg;
    hexprint("send", to, bytes, len);
}

/* Decode hex word w in place; "-" is empty. */
static struct tracking_arg
unhex(char *w)
{
    size_t n = strcmp(w, "-") == 0 ? 0 : strlen(w) / 2;
    for (size_t i = 0; i < n; i++) {
        unsigned v;
        sscanf(w + 2 * i, "%2x", &v);
        w[i] = (char)v;
    }
    return (struct tracking_arg){w, n};
}

int
main(void)
{
    struct tracking *t = tracking_new(lookup, sendfn, NULL);
    char line[65536];
    while (fgets(line, sizeof(line), stdin) != NULL) {
        char *w[MAX_ARGS + 2];
        int n = 0;
        for (char *tok = strtok(line, " \n"); tok != NULL && n < MAX_ARGS + 2;
             tok = strtok(NULL, " \n"))
            w[n++] = tok;
        if (n == 0)
            continue;
        uint64_t id = n > 1 ? strtoull(w[1], NULL, 10) : 0;
        if (id >= MAX_ID) {
            fprintf(stderr, "replay: client id %llu too large\n", (unsigned long long)id);
            return 1;
        }
        if (strcmp(w[0], "new") == 0) {
            live[id] = true;
            resp[id] = atoi(w[2]);
            pubsub[id] = atoi(w[3]) != 0;
        } else if (strcmp(w[0], "gone") == 0) {
            live[id] = false;
            tracking_client_gone(t, id);
        } else if (strcmp(w[0], "cmd") == 0) {
            struct tracking_arg argv[MAX_ARGS + 1];
            argv[0] = (struct tracking_arg){"client", 6};
            for (int i = 2; i < n; i++)
                argv[i - 1] = unhex(w[i]);
            char *reply;
            size_t len;
            if (tracking_command(t, id, resp[id], n - 1, argv, &reply, &len)) {
                hexprint("reply", id, reply, len);
                bw_free(reply);
            }
            tracking_after_command(t, id, false, true);
        } else if (strcmp(w[0], "read") == 0) {
            struct tracking_arg keys[MAX_ARGS];
            for (int i = 2; i < n; i++)
                keys[i - 2] = unhex(w[i]);
            tracking_remember_keys(t, id, keys, (size_t)(n - 2));
            tracking_after_command(t, id, false, false);
        } else if (strcmp(w[0], "write") == 0) {
            for (int i = 2; i < n; i++) {
                struct tracking_arg k = unhex(w[i]);
                tracking_key_changed(t, k.ptr, k.len, id);
            }
            if (id != 0)
                tracking_after_command(t, id, false, false);
        } else if (strcmp(w[0], "flush") == 0) {
            tracking_flushed(t, id);
            if (id != 0)
                tracking_after_command(t, id, false, false);
        } else if (strcmp(w[0], "turn") == 0) {
            tracking_bcast_flush(t);
            printf("turn\n");
        }
        fflush(stdout);
    }
    struct tracking_counts c;
    tracking_counts(t, &c);
    printf("counts %llu %llu %llu %llu\n", (unsigned long long)c.clients,
           (unsigned long long)c.keys, (unsigned long long)c.items,
           (unsigned long long)c.prefixes);
    tracking_free(t);
    return 0;
}
