/*
 * Unit tests of proxy/cluster: CRC16 and hash slots against a real
 * redis-server 7.0.15's CLUSTER KEYSLOT, the one-node CLUSTER answers against
 * bytes captured from a real one-node cluster, the slot map read from a real
 * 3-master/3-replica cluster's CLUSTER SLOTS and SHARDS (RESP2 and RESP3),
 * hostile replies, and MOVED/ASK lines.
 *
 * How the references were captured: redis-server --cluster-enabled yes
 * --save '' --appendonly no on a loopback port, CLUSTER ADDSLOTSRANGE 0
 * 16383, cluster_state:ok, then each CLUSTER subcommand sent as RESP over a
 * plain socket (python3), before and after HELLO 3, the raw reply bytes kept;
 * the variants come from CONFIG SET cluster-announce-ip 127.0.0.1, then
 * cluster-announce-hostname bulwark.local, then
 * cluster-preferred-endpoint-type hostname, then cluster-announce-hostname ""
 * on that same node. REF_ID, REF_PORT and REF_BUS are that node's id, port
 * and bus port (the values that differ from node to node); the tests give
 * bulwark the same three, so the bytes must be equal as they are. The
 * 6-node replies come from tests/cluster-lib.sh's cluster_start.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "proxy/cluster.h"
#include "proxy/reply.h"
#include "proxy/util.h"

#define REF_ID "6698f7984ff3c8a344a97c7d9e2cad24a9283a43"
#define REF_PORT "26047"
#define REF_BUS "36047"

/* ---- CRC16 and hash slots ------------------------------------------------ */

/* CRC-16/XMODEM by its definition, one bit at a time. */
static uint16_t
crc16_bitwise(const unsigned char *p, size_t len)
{
    uint16_t crc = 0;

    for (size_t i = 0; i < len; i++) {
        crc ^= (uint16_t)(p[i] << 8);
        for (int b = 0; b < 8; b++)
            crc = (uint16_t)(crc & 0x8000 ? (crc << 1) ^ 0x1021 : crc << 1);
    }
    return crc;
}

static void
test_crc16(void **state)
{
    (void)state;
    unsigned char buf[64];

    /* The check value of CRC-16/XMODEM, also in Redis's src/crc16.c. */
    assert_int_equal(cluster_crc16("123456789", 9), 0x31c3);
    assert_int_equal(cluster_crc16("", 0), 0);
    /* Every byte: the table Redis's crc16.c holds is crc16 of {i}. */
    for (int i = 0; i < 256; i++) {
        buf[0] = (unsigned char)i;
        assert_int_equal(cluster_crc16((const char *)buf, 1), crc16_bitwise(buf, 1));
    }
    srand(16);
    for (int round = 0; round < 2000; round++) {
        size_t len = (size_t)(rand() % (int)sizeof(buf));

        for (size_t i = 0; i < len; i++)
            buf[i] = (unsigned char)rand();
        assert_int_equal(cluster_crc16((const char *)buf, len), crc16_bitwise(buf, len));
    }
}

/* CLUSTER KEYSLOT of a real redis-server 7.0.15 for each key. */
static const struct {
    const char *key;
    size_t len;
    unsigned slot;
} keyslot_refs[] = {
    {"", 0, 0},
    {"foo", 3, 12182},
    {"bar", 3, 5061},
    {"a", 1, 15495},
    {"123456789", 9, 12739},
    {"{user1000}.following", 20, 3443},
    {"{user1000}.followers", 20, 3443},
    {"foo{}{bar}", 10, 8363},    /* empty first tag: the whole key */
    {"foo{{bar}}zap", 13, 4015}, /* tag "{bar" */
    {"foo{bar}{zap}", 13, 5061}, /* tag "bar" */
    {"{}x", 3, 10595},           /* empty tag: the whole key */
    {"{a}{b}", 6, 15495},        /* first tag only: "a" */
    {"a{", 2, 14311},            /* no '}' */
    {"a}", 2, 5921},             /* no '{' */
    {"}a{b}", 5, 3300},          /* '}' before the '{' ignored: "b" */
    {"{", 1, 4092},
    {"}", 1, 12090},
    {"{}", 2, 15257},
    {"{{}}", 4, 4092}, /* tag "{" */
    {"a{b", 3, 13340},
    {"caf\xc3\xa9", 5, 5735},                 /* UTF-8 "café" */
    {"\xe9\x94\xae{\xe5\x80\xbc}", 8, 13838}, /* UTF-8 tag */
    {"\xf0\x9f\x98\x80", 4, 2959},            /* one emoji */
    {"\x00\xff\r\n", 4, 6261},                /* NUL, 0xff, CRLF */
    {"a\0b", 3, 8383},
    {"user:{42}:name", 14, 8000},
    {"{42}", 4, 8000},
    {"42", 2, 8000},
};

static void
test_keyslot_real(void **state)
{
    (void)state;
    for (size_t i = 0; i < BW_ARRAY_LEN(keyslot_refs); i++)
        assert_int_equal(cluster_keyslot(keyslot_refs[i].key, keyslot_refs[i].len),
                         keyslot_refs[i].slot);

    /* Long keys: 1000 'x' (slot 3195) and "{x}" + 100 'y' (16287). */
    char big[1000];
    memset(big, 'x', sizeof(big));
    assert_int_equal(cluster_keyslot(big, sizeof(big)), 3195);
    memset(big, 'y', 103);
    memcpy(big, "{x}", 3);
    assert_int_equal(cluster_keyslot(big, 103), 16287);
    assert_int_equal(cluster_keyslot(NULL, 0), 0);
}

static void
test_keyslot_tags(void **state)
{
    (void)state;
    char key[64], tag[16];

    srand(7);
    for (int round = 0; round < 1000; round++) {
        size_t tlen = 1 + (size_t)(rand() % 10);

        for (size_t i = 0; i < tlen; i++)
            tag[i] = (char)('a' + rand() % 26);
        int n = snprintf(key, sizeof(key), "pre{%.*s}post{z}", (int)tlen, tag);
        assert_int_equal(cluster_keyslot(key, (size_t)n), cluster_keyslot(tag, tlen));
        assert_true(cluster_keyslot(key, (size_t)n) < CLUSTER_SLOTS);
    }
}

/* ---- node ids ------------------------------------------------------------ */

static void
test_node_id(void **state)
{
    (void)state;
    char a[CLUSTER_NAMELEN + 1], b[CLUSTER_NAMELEN + 1], c[CLUSTER_NAMELEN + 1];

    cluster_node_id("127.0.0.1:6380", 14, a);
    cluster_node_id("127.0.0.1:6380", 14, b);
    cluster_node_id("127.0.0.1:6381", 14, c);
    assert_string_equal(a, b);
    assert_string_not_equal(a, c);
    assert_int_equal(strlen(a), CLUSTER_NAMELEN);
    assert_int_equal(strspn(a, "0123456789abcdef"), CLUSTER_NAMELEN);
    cluster_node_id("", 0, b);
    assert_int_equal(strspn(b, "0123456789abcdef"), CLUSTER_NAMELEN);
    assert_string_not_equal(a, b);
    /* No two of 2000 seeds collide, and no id repeats a 16-digit block. */
    static char ids[2000][CLUSTER_NAMELEN + 1];
    for (int i = 0; i < 2000; i++) {
        char seed[16];
        int n = snprintf(seed, sizeof(seed), "%d", i);

        cluster_node_id(seed, (size_t)n, ids[i]);
        assert_memory_not_equal(ids[i], ids[i] + 16, 16);
        for (int j = 0; j < i; j++)
            assert_string_not_equal(ids[i], ids[j]);
    }
}

/* ---- one-node answers: references ----------------------------------------- */

/* lone SLOTS RESP2 */
static const char ref_lone_slots_2[] = "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$0\r\n\r\n:" REF_PORT
                                       "\r\n$40\r\n" REF_ID "\r\n*0\r\n";
/* lone SHARDS RESP2 */
static const char ref_lone_shards_2[] =
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$0\r\n\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* lone NODES RESP2 */
static const char ref_lone_nodes_2[] = "$94\r\n" REF_ID " :" REF_PORT "@" REF_BUS
                                       " myself,master - 0 0 0 "
                                       "connected 0-16383\n\r\n";
/* lone INFO RESP2 */
static const char ref_lone_info_2[] =
    "$312\r\ncluster_state:ok\r\ncluster_slots_assigned:16384\r\n"
    "cluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n"
    "cluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:0\r\n"
    "cluster_my_epoch:0\r\ncluster_stats_messages_sent:0\r\n"
    "cluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n"
    "\r\n";
/* lone MYID RESP2 */
static const char ref_lone_myid_2[] = "$40\r\n" REF_ID "\r\n";
/* lone SLOTS RESP3 */
static const char ref_lone_slots_3[] = "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$0\r\n\r\n:" REF_PORT
                                       "\r\n$40\r\n" REF_ID "\r\n%0\r\n";
/* lone SHARDS RESP3 */
static const char ref_lone_shards_3[] =
    "*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%7\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$0\r\n\r\n$8\r\nendpoint\r\n$0\r\n\r\n$4\r\nrole\r\n$6\r\nmaster\r\n"
    "$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* lone NODES RESP3 */
static const char ref_lone_nodes_3[] = "=98\r\n"
                                       "txt:" REF_ID " :" REF_PORT "@" REF_BUS
                                       " myself,master - 0 0 0 "
                                       "connected 0-16383\n\r\n";
/* lone INFO RESP3 */
static const char ref_lone_info_3[] =
    "=316\r\ntxt:cluster_state:ok\r\ncluster_slots_assigned:16384\r\n"
    "cluster_slots_ok:16384\r\ncluster_slots_pfail:0\r\ncluster_slots_fail:0\r\n"
    "cluster_known_nodes:1\r\ncluster_size:1\r\ncluster_current_epoch:0\r\n"
    "cluster_my_epoch:0\r\ncluster_stats_messages_sent:0\r\n"
    "cluster_stats_messages_received:0\r\ntotal_cluster_links_buffer_limit_exceeded:0\r\n"
    "\r\n";
/* lone MYID RESP3 */
static const char ref_lone_myid_3[] = "$40\r\n" REF_ID "\r\n";
/* ip SLOTS RESP2 */
static const char ref_ip_slots_2[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:" REF_PORT "\r\n$40\r\n" REF_ID
    "\r\n*0\r\n";
/* ip SHARDS RESP2 */
static const char ref_ip_shards_2[] =
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
    "$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* ip NODES RESP2 */
static const char ref_ip_nodes_2[] = "$103\r\n" REF_ID " 127.0.0.1:" REF_PORT "@" REF_BUS
                                     " myself,master - 0 0 0 "
                                     "connected 0-16383\n\r\n";
/* ip SLOTS RESP3 */
static const char ref_ip_slots_3[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:" REF_PORT "\r\n$40\r\n" REF_ID
    "\r\n%0\r\n";
/* ip SHARDS RESP3 */
static const char ref_ip_shards_3[] =
    "*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%7\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n"
    "$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* ip NODES RESP3 */
static const char ref_ip_nodes_3[] = "=107\r\n"
                                     "txt:" REF_ID " 127.0.0.1:" REF_PORT "@" REF_BUS
                                     " myself,master - 0 0 0 "
                                     "connected 0-16383\n\r\n";
/* host SLOTS RESP2 */
static const char ref_host_slots_2[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:" REF_PORT "\r\n$40\r\n" REF_ID
    "\r\n*2\r\n$8\r\nhostname\r\n$13\r\n"
    "bulwark.local\r\n";
/* host SHARDS RESP2 */
static const char ref_host_shards_2[] =
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*16\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$8\r\n"
    "hostname\r\n$13\r\nbulwark.local\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* host NODES RESP2 */
static const char ref_host_nodes_2[] = "$117\r\n" REF_ID " 127.0.0.1:" REF_PORT "@" REF_BUS
                                       ",bulwark.local myself,master - 0 0 0 "
                                       "connected 0-16383\n\r\n";
/* host SLOTS RESP3 */
static const char ref_host_slots_3[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:" REF_PORT "\r\n$40\r\n" REF_ID
    "\r\n%1\r\n$8\r\nhostname\r\n$13\r\n"
    "bulwark.local\r\n";
/* host SHARDS RESP3 */
static const char ref_host_shards_3[] =
    "*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%8\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$8\r\n"
    "hostname\r\n$13\r\nbulwark.local\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* host NODES RESP3 */
static const char ref_host_nodes_3[] = "=121\r\n"
                                       "txt:" REF_ID " 127.0.0.1:" REF_PORT "@" REF_BUS
                                       ",bulwark.local myself,master - 0 0 0 "
                                       "connected 0-16383\n\r\n";
/* phost SLOTS RESP2 */
static const char ref_phost_slots_2[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$13\r\nbulwark.local\r\n:" REF_PORT "\r\n$40\r\n" REF_ID
    "\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n";
/* phost SHARDS RESP2 */
static const char ref_phost_shards_2[] =
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*16\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$13\r\nbulwark.local\r\n$8\r\n"
    "hostname\r\n$13\r\nbulwark.local\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* phost NODES RESP2 */
static const char ref_phost_nodes_2[] = "$117\r\n" REF_ID " 127.0.0.1:" REF_PORT "@" REF_BUS
                                        ",bulwark.local myself,master - 0 0 0 "
                                        "connected 0-16383\n\r\n";
/* phost SLOTS RESP3 */
static const char ref_phost_slots_3[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$13\r\nbulwark.local\r\n:" REF_PORT "\r\n$40\r\n" REF_ID
    "\r\n%1\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n";
/* phost SHARDS RESP3 */
static const char ref_phost_shards_3[] =
    "*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%8\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$13\r\nbulwark.local\r\n$8\r\n"
    "hostname\r\n$13\r\nbulwark.local\r\n$4\r\nrole\r\n$6\r\nmaster\r\n$18\r\n"
    "replication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* phost NODES RESP3 */
static const char ref_phost_nodes_3[] = "=121\r\n"
                                        "txt:" REF_ID " 127.0.0.1:" REF_PORT "@" REF_BUS
                                        ",bulwark.local myself,master - 0 0 0 "
                                        "connected 0-16383\n\r\n";
/* pnohost SLOTS RESP2 */
static const char ref_pnohost_slots_2[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$1\r\n?\r\n:" REF_PORT "\r\n$40\r\n" REF_ID
    "\r\n*2\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n";
/* pnohost SHARDS RESP2 */
static const char ref_pnohost_shards_2[] =
    "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n*14\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n$6\r\n"
    "master\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* pnohost NODES RESP2 */
static const char ref_pnohost_nodes_2[] = "$103\r\n" REF_ID " 127.0.0.1:" REF_PORT "@" REF_BUS
                                          " myself,master - 0 0 0 "
                                          "connected 0-16383\n\r\n";
/* pnohost SLOTS RESP3 */
static const char ref_pnohost_slots_3[] =
    "*1\r\n*3\r\n:0\r\n:16383\r\n*4\r\n$1\r\n?\r\n:" REF_PORT "\r\n$40\r\n" REF_ID
    "\r\n%1\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n";
/* pnohost SHARDS RESP3 */
static const char ref_pnohost_shards_3[] =
    "*1\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n$5\r\nnodes\r\n*1\r\n%7\r\n$2\r\n"
    "id\r\n$40\r\n" REF_ID "\r\n$4\r\nport\r\n:" REF_PORT "\r\n"
    "$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$1\r\n?\r\n$4\r\nrole\r\n$6\r\n"
    "master\r\n$18\r\nreplication-offset\r\n:0\r\n$6\r\nhealth\r\n$6\r\nonline\r\n";
/* pnohost NODES RESP3 */
static const char ref_pnohost_nodes_3[] = "=107\r\n"
                                          "txt:" REF_ID " 127.0.0.1:" REF_PORT "@" REF_BUS
                                          " myself,master - 0 0 0 "
                                          "connected 0-16383\n\r\n";

/* ---- a real 3-master, 3-replica cluster (tests/cluster-lib.sh), its replies ---- */

static const char real_slots_2[] =
    "*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:22477\r\n$40\r\n"
    "45a20eb3ee643226fc19e9d7dbedd3a061d08243\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":22529\r\n$40\r\n4f455fe91e66c06621b246c0c191aa06cef769e8\r\n*0\r\n*4\r\n:5461\r\n"
    ":10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:22329\r\n$40\r\n"
    "e56117bc2290379a3a0d060286a96b59bc728ebc\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":20083\r\n$40\r\n32b0bdcb4c87f2a9d760efb3562972fe7419c9c6\r\n*0\r\n*4\r\n:10923\r\n"
    ":16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:22560\r\n$40\r\n"
    "cc3f6d6b9957c3a21e608695db1b0fe5403be411\r\n*0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":20503\r\n$40\r\ncd8a660c3f565795874a0499969929e972cb8dbd\r\n*0\r\n";
static const char real_slots_3[] =
    "*3\r\n*4\r\n:0\r\n:5460\r\n*4\r\n$9\r\n127.0.0.1\r\n:22477\r\n$40\r\n"
    "45a20eb3ee643226fc19e9d7dbedd3a061d08243\r\n%0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":22529\r\n$40\r\n4f455fe91e66c06621b246c0c191aa06cef769e8\r\n%0\r\n*4\r\n:5461\r\n"
    ":10922\r\n*4\r\n$9\r\n127.0.0.1\r\n:22329\r\n$40\r\n"
    "e56117bc2290379a3a0d060286a96b59bc728ebc\r\n%0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":20083\r\n$40\r\n32b0bdcb4c87f2a9d760efb3562972fe7419c9c6\r\n%0\r\n*4\r\n:10923\r\n"
    ":16383\r\n*4\r\n$9\r\n127.0.0.1\r\n:22560\r\n$40\r\n"
    "cc3f6d6b9957c3a21e608695db1b0fe5403be411\r\n%0\r\n*4\r\n$9\r\n127.0.0.1\r\n"
    ":20503\r\n$40\r\ncd8a660c3f565795874a0499969929e972cb8dbd\r\n%0\r\n";
static const char real_shards_2[] =
    "*3\r\n*4\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n*14\r\n"
    "$2\r\nid\r\n$40\r\ne56117bc2290379a3a0d060286a96b59bc728ebc\r\n$4\r\nport\r\n"
    ":22329\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n"
    "role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\n"
    "online\r\n*14\r\n$2\r\nid\r\n$40\r\n32b0bdcb4c87f2a9d760efb3562972fe7419c9c6\r\n"
    "$4\r\nport\r\n:20083\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n"
    "127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:28\r\n"
    "$6\r\nhealth\r\n$6\r\nonline\r\n*4\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n"
    "$5\r\nnodes\r\n*2\r\n*14\r\n$2\r\nid\r\n$40\r\n"
    "cc3f6d6b9957c3a21e608695db1b0fe5403be411\r\n$4\r\nport\r\n:22560\r\n$2\r\nip\r\n"
    "$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n"
    "master\r\n$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\nonline\r\n"
    "*14\r\n$2\r\nid\r\n$40\r\ncd8a660c3f565795874a0499969929e972cb8dbd\r\n$4\r\nport\r\n"
    ":20503\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n"
    "role\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:14\r\n$6\r\nhealth\r\n$6\r\n"
    "online\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n*14\r\n"
    "$2\r\nid\r\n$40\r\n45a20eb3ee643226fc19e9d7dbedd3a061d08243\r\n$4\r\nport\r\n"
    ":22477\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n"
    "role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:28\r\n$6\r\nhealth\r\n$6\r\n"
    "online\r\n*14\r\n$2\r\nid\r\n$40\r\n4f455fe91e66c06621b246c0c191aa06cef769e8\r\n"
    "$4\r\nport\r\n:22529\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n"
    "127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:14\r\n"
    "$6\r\nhealth\r\n$6\r\nonline\r\n";
static const char real_shards_3[] =
    "*3\r\n%2\r\n$5\r\nslots\r\n*2\r\n:5461\r\n:10922\r\n$5\r\nnodes\r\n*2\r\n%7\r\n"
    "$2\r\nid\r\n$40\r\ne56117bc2290379a3a0d060286a96b59bc728ebc\r\n$4\r\nport\r\n"
    ":22329\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n"
    "role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:42\r\n$6\r\nhealth\r\n$6\r\n"
    "online\r\n%7\r\n$2\r\nid\r\n$40\r\n32b0bdcb4c87f2a9d760efb3562972fe7419c9c6\r\n"
    "$4\r\nport\r\n:20083\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n"
    "127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:42\r\n"
    "$6\r\nhealth\r\n$6\r\nonline\r\n%2\r\n$5\r\nslots\r\n*2\r\n:10923\r\n:16383\r\n"
    "$5\r\nnodes\r\n*2\r\n%7\r\n$2\r\nid\r\n$40\r\n"
    "cc3f6d6b9957c3a21e608695db1b0fe5403be411\r\n$4\r\nport\r\n:22560\r\n$2\r\nip\r\n"
    "$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\nrole\r\n$6\r\n"
    "master\r\n$18\r\nreplication-offset\r\n:42\r\n$6\r\nhealth\r\n$6\r\nonline\r\n%7\r\n"
    "$2\r\nid\r\n$40\r\ncd8a660c3f565795874a0499969929e972cb8dbd\r\n$4\r\nport\r\n"
    ":20503\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n"
    "role\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:42\r\n$6\r\nhealth\r\n$6\r\n"
    "online\r\n%2\r\n$5\r\nslots\r\n*2\r\n:0\r\n:5460\r\n$5\r\nnodes\r\n*2\r\n%7\r\n"
    "$2\r\nid\r\n$40\r\n45a20eb3ee643226fc19e9d7dbedd3a061d08243\r\n$4\r\nport\r\n"
    ":22477\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n127.0.0.1\r\n$4\r\n"
    "role\r\n$6\r\nmaster\r\n$18\r\nreplication-offset\r\n:42\r\n$6\r\nhealth\r\n$6\r\n"
    "online\r\n%7\r\n$2\r\nid\r\n$40\r\n4f455fe91e66c06621b246c0c191aa06cef769e8\r\n"
    "$4\r\nport\r\n:22529\r\n$2\r\nip\r\n$9\r\n127.0.0.1\r\n$8\r\nendpoint\r\n$9\r\n"
    "127.0.0.1\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$18\r\nreplication-offset\r\n:42\r\n"
    "$6\r\nhealth\r\n$6\r\nonline\r\n";

/* One variant of the reference node: what was announced, and its bytes. */
struct ref_variant {
    const char *name;
    const char *ip;                              /* cluster-announce-ip in effect ("" none) */
    const char *hostname;                        /* cluster-announce-hostname, NULL none */
    bool prefer_hostname;                        /* cluster-preferred-endpoint-type hostname */
    const char *slots[2], *shards[2], *nodes[2]; /* RESP2, RESP3 */
};

static const struct ref_variant ref_variants[] = {
    {"lone",
     "",
     NULL,
     false,
     {ref_lone_slots_2, ref_lone_slots_3},
     {ref_lone_shards_2, ref_lone_shards_3},
     {ref_lone_nodes_2, ref_lone_nodes_3}},
    {"ip",
     "127.0.0.1",
     NULL,
     false,
     {ref_ip_slots_2, ref_ip_slots_3},
     {ref_ip_shards_2, ref_ip_shards_3},
     {ref_ip_nodes_2, ref_ip_nodes_3}},
    {"host",
     "127.0.0.1",
     "bulwark.local",
     false,
     {ref_host_slots_2, ref_host_slots_3},
     {ref_host_shards_2, ref_host_shards_3},
     {ref_host_nodes_2, ref_host_nodes_3}},
    {"phost",
     "127.0.0.1",
     "bulwark.local",
     true,
     {ref_phost_slots_2, ref_phost_slots_3},
     {ref_phost_shards_2, ref_phost_shards_3},
     {ref_phost_nodes_2, ref_phost_nodes_3}},
    {"pnohost",
     "127.0.0.1",
     "",
     true,
     {ref_pnohost_slots_2, ref_pnohost_slots_3},
     {ref_pnohost_shards_2, ref_pnohost_shards_3},
     {ref_pnohost_nodes_2, ref_pnohost_nodes_3}},
};

/* The reference node as a struct cluster_self. */
static void
ref_self(struct cluster_self *s, const struct ref_variant *v)
{
    cluster_self_init(s, v->ip, atoi(REF_PORT), "unused", 6);
    memcpy(s->id, REF_ID, CLUSTER_NAMELEN + 1);
    assert_int_equal(s->bus_port, atoi(REF_BUS)); /* port + 10000 */
    s->hostname = v->hostname;
    s->prefer_hostname = v->prefer_hostname;
}

typedef void reply_fn(struct cluster_out *o, const struct cluster_self *s, int proto);

/* fn's bytes for s in proto equal want, exactly. */
static void
assert_reply(reply_fn *fn, const struct cluster_self *s, int proto, const char *want,
             const char *what)
{
    struct cluster_out o = {0};

    fn(&o, s, proto);
    if (o.len != strlen(want) || memcmp(o.buf, want, o.len) != 0) {
        fprintf(stderr, "%s RESP%d:\n got  %.*s\n want %s\n", what, proto, (int)o.len, o.buf,
                want);
        fail();
    }
    cluster_out_deinit(&o);
}

static void
test_reply_exact(void **state)
{
    (void)state;
    struct cluster_self s;

    for (size_t i = 0; i < BW_ARRAY_LEN(ref_variants); i++) {
        const struct ref_variant *v = &ref_variants[i];

        ref_self(&s, v);
        for (int p = 0; p < 2; p++) {
            assert_reply(cluster_reply_slots, &s, p + 2, v->slots[p], v->name);
            assert_reply(cluster_reply_shards, &s, p + 2, v->shards[p], v->name);
            assert_reply(cluster_reply_nodes, &s, p + 2, v->nodes[p], v->name);
            /* INFO does not depend on the endpoint. */
            assert_reply(cluster_reply_info, &s, p + 2,
                         p == 0 ? ref_lone_info_2 : ref_lone_info_3, "info");
        }
        struct cluster_out o = {0};
        cluster_reply_myid(&o, &s);
        assert_int_equal(o.len, strlen(ref_lone_myid_2));
        assert_memory_equal(o.buf, ref_lone_myid_2, o.len);
        assert_string_equal(ref_lone_myid_2, ref_lone_myid_3);
        cluster_out_deinit(&o);
    }
}

/* INFO cluster of the reference node: "$30\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n". */
static void
test_info_section(void **state)
{
    (void)state;
    static const char ref[] = "$30\r\n# Cluster\r\ncluster_enabled:1\r\n\r\n";

    assert_int_equal(strlen(CLUSTER_INFO_SECTION), 30);
    assert_memory_equal(ref + 5, CLUSTER_INFO_SECTION, strlen(CLUSTER_INFO_SECTION));
}

/* One whole reply parsed; aborts the test when it is not. */
static struct reply_node *
parse_whole(const struct cluster_out *o)
{
    struct reply_node *n = reply_parse(o->buf, o->len);

    assert_non_null(n);
    return n;
}

/* The text of an INFO/NODES reply: a bulk (RESP2) or verbatim "txt:" (RESP3). */
static void
assert_text(const struct reply_node *n, int proto, const char *want)
{
    if (proto == 2) {
        assert_int_equal(n->type, '$');
        assert_int_equal(n->len, strlen(want));
        assert_memory_equal(n->str, want, n->len);
    } else {
        assert_int_equal(n->type, '=');
        assert_int_equal(n->len, strlen(want) + 4);
        assert_memory_equal(n->str, "txt:", 4);
        assert_memory_equal(n->str + 4, want, n->len - 4);
    }
}

/* Other values than the reference's: lengths follow, epochs show, and the
 * answers read back as a map of one master owning every slot. */
static void
test_reply_values(void **state)
{
    (void)state;
    struct cluster_self s;
    char nodes_line[256];

    cluster_self_init(&s, "10.1.2.3", 7000, "10.1.2.3:7000", 13);
    s.current_epoch = 5;
    s.config_epoch = 7;
    assert_int_equal(s.bus_port, 17000);
    snprintf(nodes_line, sizeof(nodes_line),
             "%s 10.1.2.3:7000@17000 myself,master - 0 0 7 connected 0-16383\n", s.id);
    for (int proto = 2; proto <= 3; proto++) {
        struct cluster_out o = {0};

        cluster_reply_nodes(&o, &s, proto);
        struct reply_node *n = parse_whole(&o);
        assert_text(n, proto, nodes_line);
        reply_node_free(n);

        o.len = 0;
        cluster_reply_info(&o, &s, proto);
        n = parse_whole(&o);
        assert_non_null(strstr(n->str, "cluster_current_epoch:5\r\ncluster_my_epoch:7\r\n"));
        reply_node_free(n);

        o.len = 0;
        cluster_reply_slots(&o, &s, proto);
        struct cluster_map *m = cluster_map_new();
        char err[128];
        assert_int_equal(cluster_map_parse_slots(m, o.buf, o.len, NULL, err, sizeof(err)), BW_OK);
        assert_int_equal(cluster_map_node_count(m), 1);
        assert_string_equal(cluster_map_node(m, 0)->host, "10.1.2.3");
        assert_int_equal(cluster_map_node(m, 0)->port, 7000);
        assert_string_equal(cluster_map_node(m, 0)->id, s.id);
        assert_true(cluster_map_covered(m));

        o.len = 0;
        cluster_reply_shards(&o, &s, proto);
        assert_int_equal(cluster_map_parse_shards(m, o.buf, o.len, NULL, err, sizeof(err)),
                         BW_OK);
        assert_int_equal(cluster_map_node_count(m), 1);
        assert_string_equal(cluster_map_node(m, 0)->id, s.id);
        assert_false(cluster_map_node(m, 0)->replica);
        assert_true(cluster_map_covered(m));
        cluster_map_free(m);
        cluster_out_deinit(&o);
    }
    /* A port above 55535 has no default bus port. */
    cluster_self_init(&s, "", 60000, "x", 1);
    assert_int_equal(s.bus_port, 0);
}

/* ---- CLUSTER <subcommand> ---------------------------------------------------- */

/* Run cluster_command on the n words (lengths by strlen unless lens). */
static int
run_cmd(struct cluster_out *o, const struct cluster_self *s, int proto, int n,
        const char *const *words, const size_t *lens)
{
    size_t l[8];

    for (int i = 0; i < n; i++)
        l[i] = lens != NULL ? lens[i] : strlen(words[i]);
    o->len = 0;
    return cluster_command(o, s, proto, n, words, l);
}

/* Requests and the exact replies of redis-server 7.0.15 to them. */
static const struct {
    int argc;
    const char *argv[4];
    size_t lens[4]; /* 0: strlen */
    const char *reply;
} cmd_refs[] = {
    {1, {"cluster"}, {0}, "-ERR wrong number of arguments for 'cluster' command\r\n"},
    {2, {"cluster", "FOO"}, {0}, "-ERR unknown subcommand 'FOO'. Try CLUSTER HELP.\r\n"},
    {4,
     {"cluster", "FOO", "bar", "baz"},
     {0},
     "-ERR unknown subcommand 'FOO'. Try CLUSTER HELP.\r\n"},
    {2, {"cluster", "a\r\nb"}, {0}, "-ERR unknown subcommand 'a  b'. Try CLUSTER HELP.\r\n"},
    {2, {"cluster", "a\0b"}, {0, 3}, "-ERR unknown subcommand 'a'. Try CLUSTER HELP.\r\n"},
    {2, {"cluster", ""}, {0}, "-ERR unknown subcommand ''. Try CLUSTER HELP.\r\n"},
    {3,
     {"CluSter", "Info", "x"},
     {0},
     "-ERR wrong number of arguments for 'cluster|info' command\r\n"},
    {3,
     {"cluster", "SLOTS", "x"},
     {0},
     "-ERR wrong number of arguments for 'cluster|slots' command\r\n"},
    {3,
     {"cluster", "shards", "x"},
     {0},
     "-ERR wrong number of arguments for 'cluster|shards' command\r\n"},
    {3,
     {"cluster", "nodes", "x"},
     {0},
     "-ERR wrong number of arguments for 'cluster|nodes' command\r\n"},
    {3,
     {"cluster", "myid", "x"},
     {0},
     "-ERR wrong number of arguments for 'cluster|myid' command\r\n"},
    {2,
     {"cluster", "keyslot"},
     {0},
     "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
    {4,
     {"cluster", "keyslot", "a", "b"},
     {0},
     "-ERR wrong number of arguments for 'cluster|keyslot' command\r\n"},
    {2,
     {"cluster", "countkeysinslot"},
     {0},
     "-ERR wrong number of arguments for 'cluster|countkeysinslot' command\r\n"},
    {3,
     {"cluster", "help", "x"},
     {0},
     "-ERR wrong number of arguments for 'cluster|help' command\r\n"},
    {3, {"cluster", "keyslot", "foo"}, {0}, ":12182\r\n"},
    {3, {"cluster", "KEYSLOT", "{user1000}.following"}, {0}, ":3443\r\n"},
    {3, {"cluster", "keyslot", "a\0b"}, {0, 0, 3}, ":8383\r\n"},
};

static void
test_command_refs(void **state)
{
    (void)state;
    struct cluster_self s;
    struct cluster_out o = {0};

    ref_self(&s, &ref_variants[1]);
    for (size_t i = 0; i < BW_ARRAY_LEN(cmd_refs); i++) {
        size_t lens[4];

        for (int j = 0; j < cmd_refs[i].argc; j++)
            lens[j] = cmd_refs[i].lens[j] ? cmd_refs[i].lens[j] : strlen(cmd_refs[i].argv[j]);
        for (int proto = 2; proto <= 3; proto++) {
            assert_int_equal(run_cmd(&o, &s, proto, cmd_refs[i].argc, cmd_refs[i].argv, lens),
                             CLUSTER_CMD_DONE);
            assert_int_equal(o.len, strlen(cmd_refs[i].reply));
            assert_memory_equal(o.buf, cmd_refs[i].reply, o.len);
        }
    }
    /* A subcommand name is cut at 128 bytes. */
    char longname[200], want[256];
    memset(longname, 'x', sizeof(longname));
    const char *w[2] = {"cluster", longname};
    size_t l[2] = {7, sizeof(longname)};
    snprintf(want, sizeof(want), "-ERR unknown subcommand '%.128s'. Try CLUSTER HELP.\r\n",
             longname);
    assert_int_equal(run_cmd(&o, &s, 2, 2, w, l), CLUSTER_CMD_DONE);
    assert_int_equal(o.len, strlen(want));
    assert_memory_equal(o.buf, want, o.len);
    cluster_out_deinit(&o);
}

static void
test_command_answers(void **state)
{
    (void)state;
    struct cluster_self s;
    struct cluster_out o = {0};
    static const struct {
        const char *sub; /* as a client might spell it */
        reply_fn *fn;    /* the answer; NULL: MYID */
    } answers[] = {
        {"info", cluster_reply_info},
        {"NODES", cluster_reply_nodes},
        {"Slots", cluster_reply_slots},
        {"shards", cluster_reply_shards},
        {"myid", NULL},
    };

    ref_self(&s, &ref_variants[2]);
    for (int proto = 2; proto <= 3; proto++) {
        for (size_t i = 0; i < BW_ARRAY_LEN(answers); i++) {
            const char *w[2] = {"CLUSTER", answers[i].sub};
            struct cluster_out want = {0};

            assert_int_equal(run_cmd(&o, &s, proto, 2, w, NULL), CLUSTER_CMD_DONE);
            if (answers[i].fn != NULL)
                answers[i].fn(&want, &s, proto);
            else
                cluster_reply_myid(&want, &s);
            assert_int_equal(o.len, want.len);
            assert_memory_equal(o.buf, want.buf, o.len);
            cluster_out_deinit(&want);
        }
    }
    /* Subcommands Redis has and bulwark leaves to its caller: nothing
     * appended. */
    static const char *const unserved[][3] = {
        {"cluster", "countkeysinslot", "1"}, {"cluster", "help", NULL},
        {"cluster", "addslots", "1"},        {"cluster", "getkeysinslot", "1"},
        {"cluster", "links", NULL},          {"cluster", "REPLICAS", "x"},
    };
    for (size_t i = 0; i < BW_ARRAY_LEN(unserved); i++) {
        int argc = unserved[i][2] != NULL ? 3 : 2;

        if (strcmp(unserved[i][1], "getkeysinslot") == 0) {
            const char *w[4] = {"cluster", "getkeysinslot", "1", "10"};
            assert_int_equal(run_cmd(&o, &s, 2, 4, w, NULL), CLUSTER_CMD_UNSERVED);
        } else {
            assert_int_equal(run_cmd(&o, &s, 2, argc, unserved[i], NULL), CLUSTER_CMD_UNSERVED);
        }
        assert_int_equal(o.len, 0);
    }
    cluster_out_deinit(&o);
}



#define M1 "45a20eb3ee643226fc19e9d7dbedd3a061d08243" /* 22477, 0-5460 */
#define M2 "e56117bc2290379a3a0d060286a96b59bc728ebc" /* 22329, 5461-10922 */
#define M3 "cc3f6d6b9957c3a21e608695db1b0fe5403be411" /* 22560, 10923-16383 */

/* The node of m with id, asserted present. */
static int
node_by_id(const struct cluster_map *m, const char *id)
{
    for (size_t i = 0; i < cluster_map_node_count(m); i++)
        if (strcmp(cluster_map_node(m, i)->id, id) == 0)
            return (int)i;
    fail_msg("no node %s", id);
    return -1;
}

/* m is the captured cluster: three masters, each with its replica. */
static void
assert_real_map(const struct cluster_map *m)
{
    static const struct {
        const char *master;
        int mport;
        const char *replica;
        int rport;
        unsigned first, last;
    } want[] = {
        {M1, 22477, "4f455fe91e66c06621b246c0c191aa06cef769e8", 22529, 0, 5460},
        {M2, 22329, "32b0bdcb4c87f2a9d760efb3562972fe7419c9c6", 20083, 5461, 10922},
        {M3, 22560, "cd8a660c3f565795874a0499969929e972cb8dbd", 20503, 10923, 16383},
    };

    assert_int_equal(cluster_map_node_count(m), 6);
    assert_true(cluster_map_covered(m));
    assert_int_equal(cluster_map_slots_assigned(m), CLUSTER_SLOTS);
    for (size_t i = 0; i < BW_ARRAY_LEN(want); i++) {
        int mi = node_by_id(m, want[i].master), ri = node_by_id(m, want[i].replica);
        const struct cluster_node *mn = cluster_map_node(m, (size_t)mi);
        const struct cluster_node *rn = cluster_map_node(m, (size_t)ri);

        assert_string_equal(mn->host, "127.0.0.1");
        assert_int_equal(mn->port, want[i].mport);
        assert_false(mn->replica);
        assert_int_equal(mn->master, -1);
        assert_int_equal(mn->health, CLUSTER_ONLINE);
        assert_int_equal(rn->port, want[i].rport);
        assert_true(rn->replica);
        assert_int_equal(rn->master, mi);
        assert_int_equal(cluster_map_slot_node(m, want[i].first), mi);
        assert_int_equal(cluster_map_slot_node(m, want[i].last), mi);
        assert_int_equal(cluster_map_find(m, "127.0.0.1", want[i].mport), mi);
    }
    /* foo: the real cluster answered GET foo with -MOVED 12182 127.0.0.1:22560. */
    int foo = cluster_map_slot_node(m, cluster_keyslot("foo", 3));
    assert_int_equal(cluster_map_node(m, (size_t)foo)->port, 22560);
    /* Exactly the three masters, each once. */
    int n = 0;
    for (int i = cluster_map_next_master(m, -1); i >= 0; i = cluster_map_next_master(m, i)) {
        assert_false(cluster_map_node(m, (size_t)i)->replica);
        n++;
    }
    assert_int_equal(n, 3);
}

static void
test_map_real(void **state)
{
    (void)state;
    struct cluster_map *m = cluster_map_new();
    char err[128] = "";

    assert_int_equal(cluster_map_node_count(m), 0);
    assert_false(cluster_map_covered(m));
    assert_int_equal(cluster_map_slot_node(m, 0), -1);
    assert_int_equal(cluster_map_next_master(m, -1), -1);
    assert_int_equal(cluster_map_parse_slots(m, real_slots_2, strlen(real_slots_2), NULL, err,
                                             sizeof(err)),
                     BW_OK);
    assert_real_map(m);
    /* SLOTS keeps the reply's order: master, its replica, next master ... */
    assert_string_equal(cluster_map_node(m, 0)->id, M1);
    assert_int_equal(cluster_map_node(m, 1)->master, 0);
    assert_int_equal(cluster_map_parse_slots(m, real_slots_3, strlen(real_slots_3), NULL, err,
                                             sizeof(err)),
                     BW_OK);
    assert_real_map(m);
    assert_int_equal(cluster_map_parse_shards(m, real_shards_2, strlen(real_shards_2), NULL, err,
                                              sizeof(err)),
                     BW_OK);
    assert_real_map(m);
    assert_int_equal(cluster_map_parse_shards(m, real_shards_3, strlen(real_shards_3), NULL, err,
                                              sizeof(err)),
                     BW_OK);
    assert_real_map(m);
    cluster_map_free(m);
    cluster_map_free(NULL);
}

/* The one-node references read as upstream replies: Redis's own lone node
 * sends an empty ip, and with the hostname preferred but unset, "?". */
static void
test_map_endpoints(void **state)
{
    (void)state;
    struct cluster_map *m = cluster_map_new();
    char err[128] = "";

    assert_int_equal(cluster_map_parse_slots(m, ref_lone_slots_2, strlen(ref_lone_slots_2), NULL,
                                             err, sizeof(err)),
                     BW_ERR);
    assert_non_null(strstr(err, "no usable endpoint"));
    assert_int_equal(cluster_map_parse_slots(m, ref_lone_slots_3, strlen(ref_lone_slots_3),
                                             "10.0.0.9", err, sizeof(err)),
                     BW_OK);
    assert_string_equal(cluster_map_node(m, 0)->host, "10.0.0.9");
    assert_string_equal(cluster_map_node(m, 0)->id, REF_ID);
    assert_int_equal(cluster_map_node(m, 0)->port, atoi(REF_PORT));
    assert_true(cluster_map_covered(m));
    assert_int_equal(cluster_map_parse_shards(m, ref_lone_shards_2, strlen(ref_lone_shards_2),
                                              "seed.example", err, sizeof(err)),
                     BW_OK);
    assert_string_equal(cluster_map_node(m, 0)->host, "seed.example");
    /* "?" falls back to the metadata's ip (SLOTS) or "ip" (SHARDS). */
    assert_int_equal(cluster_map_parse_slots(m, ref_pnohost_slots_2, strlen(ref_pnohost_slots_2),
                                             NULL, err, sizeof(err)),
                     BW_OK);
    assert_string_equal(cluster_map_node(m, 0)->host, "127.0.0.1");
    assert_int_equal(cluster_map_parse_slots(m, ref_pnohost_slots_3, strlen(ref_pnohost_slots_3),
                                             NULL, err, sizeof(err)),
                     BW_OK);
    assert_string_equal(cluster_map_node(m, 0)->host, "127.0.0.1");
    assert_int_equal(cluster_map_parse_shards(m, ref_pnohost_shards_3,
                                              strlen(ref_pnohost_shards_3), NULL, err,
                                              sizeof(err)),
                     BW_OK);
    assert_string_equal(cluster_map_node(m, 0)->host, "127.0.0.1");
    /* A preferred hostname is used as it is. */
    assert_int_equal(cluster_map_parse_slots(m, ref_phost_slots_2, strlen(ref_phost_slots_2),
                                             NULL, err, sizeof(err)),
                     BW_OK);
    assert_string_equal(cluster_map_node(m, 0)->host, "bulwark.local");
    assert_int_equal(cluster_map_parse_shards(m, ref_phost_shards_3, strlen(ref_phost_shards_3),
                                              NULL, err, sizeof(err)),
                     BW_OK);
    assert_string_equal(cluster_map_node(m, 0)->host, "bulwark.local");
    cluster_map_free(m);
}

/* ---- hostile replies ------------------------------------------------------- */

/* Whatever m holds is consistent: owners are masters, replicas follow
 * masters, hosts are non-empty. */
static void
assert_map_sane(const struct cluster_map *m)
{
    size_t n = cluster_map_node_count(m);

    for (size_t i = 0; i < n; i++) {
        const struct cluster_node *x = cluster_map_node(m, i);

        assert_true(x->host[0] != '\0');
        assert_true(x->port >= 1 && x->port <= 65535);
        if (x->replica) {
            assert_true(x->master >= 0 && (size_t)x->master < n);
            assert_false(cluster_map_node(m, (size_t)x->master)->replica);
        } else {
            assert_int_equal(x->master, -1);
        }
    }
    for (unsigned s = 0; s < CLUSTER_SLOTS; s++) {
        int o = cluster_map_slot_node(m, s);

        assert_true(o >= -1 && o < (int)n);
        if (o >= 0)
            assert_false(cluster_map_node(m, (size_t)o)->replica);
    }
}

typedef int parse_fn(struct cluster_map *m, const char *buf, size_t len, const char *asked,
                     char *err, size_t errlen);

/* Every prefix fails and leaves m as it was; every one-byte change either
 * fails likewise or gives a consistent map. */
static void
hostile_around(parse_fn *parse, const char *good)
{
    size_t len = strlen(good);
    char *buf = malloc(len);
    char err[128];
    struct cluster_map *m = cluster_map_new();
    static const char repl[] = {'0', '9', '-', '*', '%', '$', ':', '\0', 'x', '_', '\n'};

    assert_int_equal(parse(m, good, len, NULL, err, sizeof(err)), BW_OK);
    for (size_t cut = 0; cut < len; cut++) {
        memcpy(buf, good, cut);
        err[0] = '\0';
        assert_int_equal(parse(m, buf, cut, NULL, err, sizeof(err)), BW_ERR);
        assert_true(err[0] != '\0');
        assert_real_map(m);
    }
    for (size_t at = 0; at < len; at++) {
        for (size_t r = 0; r < sizeof(repl); r++) {
            struct cluster_map *t = cluster_map_new();

            memcpy(buf, good, len);
            buf[at] = repl[r];
            if (parse(t, buf, len, "h", err, sizeof(err)) == BW_OK)
                assert_map_sane(t);
            cluster_map_free(t);
        }
    }
    cluster_map_free(m);
    free(buf);
}

static void
test_map_hostile_real(void **state)
{
    (void)state;
    hostile_around(cluster_map_parse_slots, real_slots_2);
    hostile_around(cluster_map_parse_slots, real_slots_3);
    hostile_around(cluster_map_parse_shards, real_shards_2);
    hostile_around(cluster_map_parse_shards, real_shards_3);
}

#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccc"
/* A node entry [host, port]; host one character. */
#define NODE(host, port) "*2\r\n$1\r\n" #host "\r\n:" #port "\r\n"
#define SNODE(id, port, role, health)                           \
    "*10\r\n$2\r\nid\r\n$40\r\n" id "\r\n$4\r\nport\r\n:" #port \
    "\r\n$8\r\nendpoint\r\n$1\r\nh\r\n"                         \
    "$4\r\nrole\r\n$" role "\r\n$6\r\nhealth\r\n$" health "\r\n"

/* Crafted replies, each refused with a reason containing want. */
static const struct {
    bool shards;
    const char *reply;
    const char *want;
} bad_replies[] = {
    {false, "-CLUSTERDOWN Hash slot not served\r\n", "error reply: CLUSTERDOWN"},
    {false, "-ERR This instance has cluster support disabled\r\n", "cluster support disabled"},
    {false, ":1\r\n", "not an array"},
    {false, "*1\r\n", "not one complete"},
    {false, "*1000000\r\n*0\r\n", "not one complete"},
    {false, "*1\r\n*3\r\n:0\r\n:16384\r\n*2\r\n$1\r\na\r\n:1\r\n", "bad slot range 0-16384"},
    {false, "*1\r\n*3\r\n:-1\r\n:3\r\n*2\r\n$1\r\na\r\n:1\r\n", "bad slot range"},
    {false, "*1\r\n*3\r\n:5\r\n:4\r\n*2\r\n$1\r\na\r\n:1\r\n", "bad slot range 5-4"},
    {false, "*2\r\n*3\r\n:0\r\n:10\r\n" NODE(a, 1) "*3\r\n:5\r\n:20\r\n" NODE(b, 1),
     "slot 5 is given twice"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:0\r\n", "port"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n:70000\r\n", "port"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$1\r\na\r\n$4\r\n6379\r\n", "port"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\na\r\n:1\r\n$3\r\nxyz\r\n", "hex"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\na\r\n:1\r\n$41\r\n" ID_A "x\r\n", "hex"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$3\r\na b\r\n:1\r\n", "bad node host"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n$0\r\n\r\n:1\r\n", "no usable endpoint"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*2\r\n_\r\n:1\r\n", "no usable endpoint"},
    {false, "*1\r\n*2\r\n:0\r\n:1\r\n", "not [start, end, master"},
    {false, "*1\r\n*3\r\n$1\r\n0\r\n:1\r\n" NODE(a, 1), "no integer bounds"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n*1\r\n$1\r\na\r\n", "not [endpoint, port"},
    {false, "*1\r\n*3\r\n:0\r\n:1\r\n:5\r\n", "not [endpoint, port"},
    {false, "*2\r\n*4\r\n:0\r\n:1\r\n" NODE(a, 1) NODE(b, 2) "*3\r\n:2\r\n:3\r\n" NODE(b, 2),
     "two roles"},
    {false,
     "*2\r\n*4\r\n:0\r\n:1\r\n" NODE(a, 1) NODE(b, 2) "*4\r\n:2\r\n:3\r\n" NODE(c, 3) NODE(b, 2),
     "two roles"},
    {false,
     "*2\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\na\r\n:1\r\n$40\r\n" ID_A "\r\n"
     "*3\r\n:2\r\n:3\r\n*3\r\n$1\r\na\r\n:1\r\n$40\r\n" ID_B "\r\n",
     "two nodes at a:1"},
    {false,
     "*2\r\n*3\r\n:0\r\n:1\r\n*3\r\n$1\r\na\r\n:1\r\n$40\r\n" ID_A "\r\n"
     "*3\r\n:2\r\n:3\r\n*3\r\n$1\r\nb\r\n:1\r\n$40\r\n" ID_A "\r\n",
     "at two addresses"},
    {true,
     "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n$5\r\nnodes\r\n*1\r\n" SNODE(ID_A, 1,
                                                                                "7\r\nreplica",
                                                                                "6\r\nonline"),
     "no master"},
    {true, "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*0\r\n", "no master"},
    {true,
     "*1\r\n*4\r\n$5\r\nslots\r\n*1\r\n:0\r\n$5\r\nnodes\r\n*1\r\n" SNODE(ID_A, 1, "6\r\nmaster",
                                                                          "6\r\nonline"),
     "no slots pairs"},
    {true, "*1\r\n*2\r\n$5\r\nslots\r\n*0\r\n", "no slots pairs or no nodes"},
    {true, "*1\r\n*3\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n", "not a map"},
    {true,
     "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n$1\r\n0\r\n:1\r\n$5\r\nnodes\r\n*1\r\n" SNODE(
         ID_A, 1, "6\r\nmaster", "6\r\nonline"),
     "not an integer"},
    {true,
     "*1\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:1\r\n$5\r\nnodes\r\n*1\r\n" SNODE(ID_A, 1,
                                                                                "4\r\nboss",
                                                                                "6\r\nonline"),
     "role"},
    {true,
     "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n*6\r\n$2\r\nid\r\n$40\r\n" ID_A
     "\r\n$8\r\ntls-port\r\n:1\r\n$2\r\nip\r\n$1\r\nh\r\n",
     "only a tls-port"},
    {true,
     "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n*4\r\n$2\r\nid\r\n$40\r\n" ID_A
     "\r\n$4\r\nport\r\n:1\r\n",
     "no usable endpoint"},
    {true, "*1\r\n*4\r\n$5\r\nslots\r\n*0\r\n$5\r\nnodes\r\n*1\r\n*2\r\n$4\r\nport\r\n:1\r\n",
     "hex"},
    {true,
     "*2\r\n*4\r\n$5\r\nslots\r\n*2\r\n:0\r\n:9\r\n$5\r\nnodes\r\n*1\r\n" SNODE(
         ID_A, 1, "6\r\nmaster",
         "6\r\nonline") "*4\r\n$5\r\nslots\r\n*2\r\n:9\r\n:10\r\n$5\r\nnodes\r\n*1\r\n" SNODE(ID_B,
                                                                                              2,
                                                                                              "6\r\nmaster",
                                                                                              "6\r\nonline"),
     "slot 9 is given twice"},
};

static void
test_map_bad_replies(void **state)
{
    (void)state;
    struct cluster_map *m = cluster_map_new();
    char err[128];

    assert_int_equal(cluster_map_parse_slots(m, real_slots_2, strlen(real_slots_2), NULL, err,
                                             sizeof(err)),
                     BW_OK);
    for (size_t i = 0; i < BW_ARRAY_LEN(bad_replies); i++) {
        parse_fn *parse = bad_replies[i].shards ? cluster_map_parse_shards
                                                : cluster_map_parse_slots;

        err[0] = '\0';
        assert_int_equal(parse(m, bad_replies[i].reply, strlen(bad_replies[i].reply), NULL, err,
                               sizeof(err)),
                         BW_ERR);
        if (strstr(err, bad_replies[i].want) == NULL)
            fail_msg("case %zu: '%s' does not say '%s'", i, err, bad_replies[i].want);
        assert_real_map(m); /* unchanged */
    }
    /* A short error buffer is filled and terminated; none at all is fine. */
    char tiny[4];
    assert_int_equal(cluster_map_parse_slots(m, ":1\r\n", 4, NULL, tiny, sizeof(tiny)), BW_ERR);
    assert_int_equal(strlen(tiny), 3);
    assert_int_equal(cluster_map_parse_slots(m, ":1\r\n", 4, NULL, NULL, 0), BW_ERR);
    cluster_map_free(m);
}

/* Shapes Redis 7.0 may send that are not errors. */
static void
test_map_good_odd(void **state)
{
    (void)state;
    struct cluster_map *m = cluster_map_new();
    char err[128] = "";

    /* No range at all: an empty map. */
    assert_int_equal(cluster_map_parse_slots(m, "*0\r\n", 4, NULL, err, sizeof(err)), BW_OK);
    assert_int_equal(cluster_map_node_count(m), 0);
    assert_int_equal(cluster_map_slots_assigned(m), 0);
    /* Pre-4.0 entries (no id), a master with two ranges (its replica
     * named in each), a gap of unassigned slots. */
    static const char ok[] = "*2\r\n*4\r\n:0\r\n:99\r\n" NODE(a, 1)
        NODE(b, 2) "*4\r\n:200\r\n:299\r\n" NODE(a, 1) NODE(b, 2);
    assert_int_equal(cluster_map_parse_slots(m, ok, strlen(ok), NULL, err, sizeof(err)), BW_OK);
    assert_int_equal(cluster_map_node_count(m), 2);
    assert_int_equal(cluster_map_slots_assigned(m), 200);
    assert_false(cluster_map_covered(m));
    assert_int_equal(cluster_map_slot_node(m, 150), -1);
    assert_int_equal(cluster_map_slot_node(m, 250), 0);
    assert_string_equal(cluster_map_node(m, 0)->id, "");
    assert_int_equal(cluster_map_node(m, 1)->master, 0);
    assert_map_sane(m);
    /* A status string as endpoint, RESP3 null endpoint with a metadata ip,
     * uppercase hex ids (kept lowercase). */
    static const char odd[] = "*1\r\n*4\r\n:0\r\n:16383\r\n*3\r\n+a\r\n:1\r\n$40\r\n"
                              "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\r\n"
                              "*4\r\n_\r\n:2\r\n$40\r\n" ID_B "\r\n%1\r\n$2\r\nip\r\n$1\r\nz\r\n";
    assert_int_equal(cluster_map_parse_slots(m, odd, strlen(odd), NULL, err, sizeof(err)), BW_OK);
    assert_string_equal(cluster_map_node(m, 0)->host, "a");
    assert_string_equal(cluster_map_node(m, 0)->id, ID_A);
    assert_string_equal(cluster_map_node(m, 1)->host, "z");
    assert_true(cluster_map_covered(m));
    /* SHARDS as a 7.2-style shard after a failover: the failed master keeps
     * its role, the promoted one owns the slots; fields in any order,
     * unknown fields skipped. */
    static const char fo[] =
        "*1\r\n%2\r\n$5\r\nnodes\r\n*3\r\n" SNODE(ID_A, 1, "6\r\nmaster", "4\r\nfail") SNODE(
            ID_B, 2, "6\r\nmaster",
            "6\r\nonline") "%5\r\n$4\r\nrole\r\n$7\r\nreplica\r\n$4\r\nport\r\n:3\r\n$2\r\nip\r\n$1\r\nr\r\n"
                           "$6\r\nhealth\r\n$7\r\nloading\r\n$2\r\nid\r\n$40\r\n" ID_C "\r\n"
                           "$5\r\nslots\r\n*2\r\n:0\r\n:16383\r\n";
    assert_int_equal(cluster_map_parse_shards(m, fo, strlen(fo), NULL, err, sizeof(err)), BW_OK);
    assert_int_equal(cluster_map_node_count(m), 3);
    int b = node_by_id(m, ID_B), a = node_by_id(m, ID_A);
    int c = node_by_id(m, ID_C);
    assert_int_equal(cluster_map_slot_node(m, 0), b);
    assert_int_equal(cluster_map_node(m, (size_t)a)->health, CLUSTER_FAIL);
    assert_false(cluster_map_node(m, (size_t)a)->replica);
    assert_int_equal(cluster_map_node(m, (size_t)c)->master, b);
    assert_int_equal(cluster_map_node(m, (size_t)c)->health, CLUSTER_LOADING);
    assert_string_equal(cluster_map_node(m, (size_t)c)->host, "r");
    assert_map_sane(m);
    cluster_map_free(m);
}

/* ---- MOVED / ASK ----------------------------------------------------------- */

static void
test_redirect(void **state)
{
    (void)state;
    struct cluster_redirect r;
    static const struct {
        const char *line;
        bool ask;
        unsigned slot;
        const char *host;
        int port;
    } good[] = {
        {"-MOVED 12182 127.0.0.1:22560\r\n", false, 12182, "127.0.0.1", 22560}, /* captured */
        {"-MOVED 3999 127.0.0.1:6381", false, 3999, "127.0.0.1", 6381},
        {"MOVED 0 h:1", false, 0, "h", 1},
        {"-ASK 16383 redis-3.example:65535\r\n", true, 16383, "redis-3.example", 65535},
        {"-MOVED 1 ::1:6379\r\n", false, 1, "::1", 6379},
        {"-MOVED 1 [::1]:6379\r\n", false, 1, "::1", 6379},
        {"-MOVED 1 fe80::1:2:3:7000", false, 1, "fe80::1:2:3", 7000},
        {"-MOVED 1 :6379\r\n", false, 1, "", 6379},
        {"-MOVED 1 ?:6379\r\n", false, 1, "?", 6379},
    };
    static const char *const bad[] = {
        "",
        "-",
        "-MOVED",
        "-MOVED ",
        "-MOVED 1",
        "-MOVED 1 ",
        "-MOVED 1 a",
        "-MOVED 1 a:",
        "-MOVED 16384 a:1",
        "-MOVED -1 a:1",
        "-MOVED +1 a:1",
        "-MOVED 1 a:0",
        "-MOVED 1 a:65536",
        "-MOVED 1 a:1x",
        "-MOVED 1 a b:1",
        "-MOVED  1 a:1",
        "-MOVE 1 a:1",
        "-moved 1 a:1",
        "-ASKING 1 a:1",
        "-MOVED 000001 a:1",
        "-MOVED 1 a:000001",
        "-ERR MOVED 1 a:1",
        "-MOVED 1 a:1\r\nX",
        "-MOVED 1 a\tb:1",
    };

    for (size_t i = 0; i < BW_ARRAY_LEN(good); i++) {
        memset(&r, 0x55, sizeof(r));
        assert_int_equal(cluster_parse_redirect(good[i].line, strlen(good[i].line), &r), BW_OK);
        assert_int_equal(r.ask, good[i].ask);
        assert_int_equal(r.slot, good[i].slot);
        assert_string_equal(r.host, good[i].host);
        assert_int_equal(r.port, good[i].port);
    }
    for (size_t i = 0; i < BW_ARRAY_LEN(bad); i++)
        if (cluster_parse_redirect(bad[i], strlen(bad[i]), &r) != BW_ERR)
            fail_msg("accepted '%s'", bad[i]);
    /* A host one byte too long. */
    char line[CLUSTER_HOST_MAX + 32];
    int n = snprintf(line, sizeof(line), "-MOVED 1 %0*d:1", CLUSTER_HOST_MAX + 1, 0);
    assert_int_equal(cluster_parse_redirect(line, (size_t)n, &r), BW_ERR);
    n = snprintf(line, sizeof(line), "-MOVED 1 %0*d:1", CLUSTER_HOST_MAX, 0);
    assert_int_equal(cluster_parse_redirect(line, (size_t)n, &r), BW_OK);
    assert_int_equal(strlen(r.host), CLUSTER_HOST_MAX);
}

static void
test_move_slot(void **state)
{
    (void)state;
    struct cluster_map *m = cluster_map_new();
    char err[128];

    assert_int_equal(cluster_map_parse_slots(m, real_slots_2, strlen(real_slots_2), NULL, err,
                                             sizeof(err)),
                     BW_OK);
    /* To a known master. */
    int m3 = node_by_id(m, M3);
    assert_int_equal(cluster_map_move_slot(m, 0, "127.0.0.1", 22560), m3);
    assert_int_equal(cluster_map_slot_node(m, 0), m3);
    /* To a replica (a failover's MOVED): it becomes a master. */
    int r = cluster_map_find(m, "127.0.0.1", 22529);
    assert_true(cluster_map_node(m, (size_t)r)->replica);
    assert_int_equal(cluster_map_move_slot(m, 1, "127.0.0.1", 22529), r);
    assert_false(cluster_map_node(m, (size_t)r)->replica);
    assert_int_equal(cluster_map_node(m, (size_t)r)->master, -1);
    /* To a new node: appended, no id. */
    assert_int_equal(cluster_map_move_slot(m, 2, "NEW.example", 7000), 6);
    assert_int_equal(cluster_map_find(m, "new.EXAMPLE", 7000), 6);
    assert_string_equal(cluster_map_node(m, 6)->id, "");
    assert_int_equal(cluster_map_slot_node(m, 2), 6);
    assert_map_sane(m);
    /* Out of range: nothing changes. */
    assert_int_equal(cluster_map_move_slot(m, CLUSTER_SLOTS, "a", 1), -1);
    assert_int_equal(cluster_map_move_slot(m, 3, "", 1), -1);
    assert_int_equal(cluster_map_move_slot(m, 3, "a b", 1), -1);
    assert_int_equal(cluster_map_move_slot(m, 3, "a", 0), -1);
    assert_int_equal(cluster_map_move_slot(m, 3, "a", 65536), -1);
    assert_int_equal(cluster_map_node_count(m), 7);
    assert_true(cluster_map_covered(m));
    cluster_map_free(m);
}

int
main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_crc16),           cmocka_unit_test(test_keyslot_real),
        cmocka_unit_test(test_keyslot_tags),    cmocka_unit_test(test_node_id),
        cmocka_unit_test(test_reply_exact),     cmocka_unit_test(test_reply_values),
        cmocka_unit_test(test_info_section),    cmocka_unit_test(test_command_refs),
        cmocka_unit_test(test_command_answers), cmocka_unit_test(test_map_real),
        cmocka_unit_test(test_map_endpoints),   cmocka_unit_test(test_map_hostile_real),
        cmocka_unit_test(test_map_bad_replies), cmocka_unit_test(test_map_good_odd),
        cmocka_unit_test(test_redirect),        cmocka_unit_test(test_move_slot),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
