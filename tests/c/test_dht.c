/*
 * test_dht: the DHT core of src/dht, in three layers.
 *
 *   1. Vectors: SHA-1 (the FIPS 180 examples), CRC32C (its check value),
 *      BEP 42 node ids (testdata/krpc/bep42_node_id_vectors.json), BEP 44
 *      signed buffers, signatures and targets (testdata/bep44, and the
 *      signable examples of testdata/pkarr), the BEP 5 packets decoded into
 *      fields and re-encoded byte for byte (testdata/krpc).
 *   2. One node and hand-made packets: answers, tokens and their expiry,
 *      announce and implied_port, BEP 44 put/get with every error code,
 *      rate limits under a flood, reply sizes, malformed and unsolicited
 *      packets, storage bounds, expiry.
 *   3. A simulated network (tests/c/test_dht.c's own: packets with random
 *      latency on a virtual clock) of 60 nodes, half of which learn their
 *      BEP 42 id from the others' votes: bootstrap from one router, exact
 *      k-closest lookups, announce/get_peers, immutable and mutable items
 *      with and without salt, seq and cas errors, a read-only node, routing
 *      table persistence; then 24 IPv6 nodes.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "dht/dht.h"
#include "util/util.h"

#define T0 1000000ull /* virtual ms at start */
#define MIN (60 * 1000ull)

static const char *testdata;

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    if (n > cap || irohds_hex_decode(hex, out, n) != 0)
        return (size_t)-1;
    return n;
}

static json_object *load(const char *file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", testdata, file);
    json_object *root = json_object_from_file(path);
    CHECK(root != NULL, "cannot read %s", path);
    return root;
}

static const char *jstr(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) && json_object_get_type(v) == json_type_string
               ? json_object_get_string(v)
               : NULL;
}

static int64_t jint(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_int64(v) : -1;
}

/* ============================================================ vectors */

static void test_sha1(void)
{
    static const struct {
        const char *msg;
        const char *hex;
    } fips[] = {
        {"abc", "a9993e364706816aba3e25717850c26c9cd0d89d"},
        {"", "da39a3ee5e6b4b0d3255bfef95601890afd80709"},
        {"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq",
         "84983e441c3bd26ebaae4aa1f95129e5e54670f1"},
        {"abcdefghbcdefghicdefghijdefghijkefghijklfghijklmghijklmnhijklmnoijklmnopjklmnopqklmnopqrlmnopqrsmnopqrstnopqrstu",
         "a49b2446a02c645bf419f995b67091253a04a259"},
    };
    for (size_t i = 0; i < sizeof fips / sizeof fips[0]; i++) {
        uint8_t h[20];
        char hex[41];
        irohds_dht_sha1(fips[i].msg, strlen(fips[i].msg), h);
        irohds_hex_encode(h, 20, hex);
        CHECK(strcmp(hex, fips[i].hex) == 0, "sha1(%s) = %s", fips[i].msg, hex);
    }
    char *million = malloc(1000000);
    memset(million, 'a', 1000000);
    uint8_t h[20];
    char hex[41];
    irohds_dht_sha1(million, 1000000, h);
    irohds_hex_encode(h, 20, hex);
    CHECK(strcmp(hex, "34aa973cd4c4daa4f61eeb2bdbad27316534016f") == 0, "sha1(a x 1e6) = %s", hex);
    free(million);
    CHECK(irohds_dht_crc32c("123456789", 9) == 0xe3069283u, "crc32c check value");
}

static void test_bep42(void)
{
    json_object *root = load("krpc/bep42_node_id_vectors.json"), *cases;
    if (!root)
        return;
    json_object_object_get_ex(root, "cases", &cases);
    CHECK(json_object_array_length(cases) == 5, "5 BEP 42 rows");
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        uint8_t ip[4], id[20], gen[20], other[20];
        CHECK(inet_pton(AF_INET, jstr(c, "ip"), ip) == 1, "ip");
        CHECK(unhex(jstr(c, "node_id_hex"), id, 20) == 20, "id");
        uint8_t rand = (uint8_t)jint(c, "rand");
        CHECK(irohds_dht_id_matches_ip(id, AF_INET, ip), "row %zu: the BEP's id fits its ip", i);
        /* same random middle: the whole id comes out; other middle: the
         * 21 prefix bits and the last byte still do */
        irohds_dht_id_from_ip(gen, AF_INET, ip, rand, id);
        CHECK(memcmp(gen, id, 20) == 0, "row %zu: generated id", i);
        uint8_t noise[20];
        memset(noise, 0x5a, 20);
        irohds_dht_id_from_ip(other, AF_INET, ip, rand, noise);
        CHECK(other[0] == id[0] && other[1] == id[1] && (other[2] & 0xf8) == (id[2] & 0xf8) &&
                  other[19] == id[19],
              "row %zu: prefix and last byte", i);
        id[1] ^= 0x01;
        CHECK(!irohds_dht_id_matches_ip(id, AF_INET, ip), "row %zu: a flipped bit fails", i);
        id[1] ^= 0x01;
        id[19] ^= 0x01; /* r is part of the hash input */
        CHECK(!irohds_dht_id_matches_ip(id, AF_INET, ip), "row %zu: another r fails", i);
    }
    json_object_put(root);
    uint8_t ip[16];
    const char *local[] = {"10.1.2.3", "172.16.0.1", "172.31.255.255", "192.168.1.1",
                           "169.254.0.1", "127.0.0.1"};
    for (size_t i = 0; i < 6; i++) {
        inet_pton(AF_INET, local[i], ip);
        CHECK(irohds_dht_ip_is_local(AF_INET, ip), "%s is local", local[i]);
    }
    const char *global[] = {"172.32.0.1", "8.8.8.8", "192.169.0.1", "11.0.0.1"};
    for (size_t i = 0; i < 4; i++) {
        inet_pton(AF_INET, global[i], ip);
        CHECK(!irohds_dht_ip_is_local(AF_INET, ip), "%s is not local", global[i]);
    }
    inet_pton(AF_INET6, "::1", ip);
    CHECK(irohds_dht_ip_is_local(AF_INET6, ip), "::1 local");
    inet_pton(AF_INET6, "fd00::1", ip);
    CHECK(irohds_dht_ip_is_local(AF_INET6, ip), "fd00::1 local");
    inet_pton(AF_INET6, "2001:db8::1", ip);
    CHECK(!irohds_dht_ip_is_local(AF_INET6, ip), "2001:db8::1 not local");
    uint8_t r[20] = {0}, id6[20];
    irohds_dht_id_from_ip(id6, AF_INET6, ip, 0x2b, r);
    CHECK(irohds_dht_id_matches_ip(id6, AF_INET6, ip), "IPv6 id round trip");
}

static void test_bep44(void)
{
    json_object *root = load("bep44/test_vectors.json"), *cases;
    if (!root)
        return;
    json_object_object_get_ex(root, "cases", &cases);
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        const char *name = jstr(c, "name");
        uint8_t v[64], target[20], got[20], salt[64];
        size_t vlen = unhex(jstr(c, "value_bencoded_hex"), v, sizeof v);
        unhex(jstr(c, "target_id"), target, 20);
        irohds_dht_item it = {.v = v, .v_len = vlen};
        if (!jstr(c, "public_key")) {
            irohds_dht_item_target(&it, got);
            CHECK(memcmp(got, target, 20) == 0, "%s: immutable target", name);
            CHECK(irohds_dht_item_check(&it) == 0, "%s: check", name);
            continue;
        }
        it.is_mutable = true;
        it.seq = jint(c, "seq");
        if (jstr(c, "salt_hex")) {
            it.salt_len = unhex(jstr(c, "salt_hex"), salt, sizeof salt);
            it.salt = salt;
        }
        unhex(jstr(c, "public_key"), it.k, 32);
        unhex(jstr(c, "signature"), it.sig, 64);
        uint8_t want[256], buf[256];
        size_t wlen = unhex(jstr(c, "signed_buffer_hex"), want, sizeof want);
        size_t n = irohds_dht_item_signable(it.salt, it.salt_len, it.seq, v, vlen, buf, sizeof buf);
        CHECK(n == wlen && memcmp(buf, want, n) == 0, "%s: signed buffer", name);
        irohds_dht_item_target(&it, got);
        CHECK(memcmp(got, target, 20) == 0, "%s: target", name);
        CHECK(irohds_dht_item_check(&it) == 0, "%s: signature verifies", name);
        it.sig[7] ^= 1;
        CHECK(irohds_dht_item_check(&it) == -EBADMSG, "%s: a flipped bit does not", name);
        it.sig[7] ^= 1;
        it.seq++;
        CHECK(irohds_dht_item_check(&it) == -EBADMSG, "%s: nor another seq", name);
    }
    json_object_put(root);

    root = load("pkarr/signed_packet_format.json");
    if (!root)
        return;
    json_object *signable, *ex;
    json_object_object_get_ex(root, "signable", &signable);
    json_object_object_get_ex(signable, "examples", &ex);
    for (size_t i = 0; i < json_object_array_length(ex); i++) {
        json_object *c = json_object_array_get_idx(ex, i);
        const char *val = jstr(c, "value_ascii"), *salt = jstr(c, "salt_ascii");
        char v[64];
        snprintf(v, sizeof v, "%zu:%s", strlen(val), val);
        uint8_t want[128], buf[128];
        size_t wlen = unhex(jstr(c, "signable_hex"), want, sizeof want);
        size_t n = irohds_dht_item_signable((const uint8_t *)salt, salt ? strlen(salt) : 0,
                                            jint(c, "seq"), (uint8_t *)v, strlen(v), buf,
                                            sizeof buf);
        CHECK(n == wlen && memcmp(buf, want, n) == 0, "pkarr signable %zu", i);
    }
    json_object_put(root);

    /* our own signatures, and the size rules */
    uint8_t pk[32], sk[64], seed[32] = {7};
    crypto_sign_seed_keypair(pk, sk, seed);
    irohds_dht_item it = {.v = (const uint8_t *)"5:hello", .v_len = 7, .seq = 3};
    CHECK(irohds_dht_item_sign(&it, sk) == 0 && memcmp(it.k, pk, 32) == 0 &&
              irohds_dht_item_check(&it) == 0,
          "sign then check");
    uint8_t big[1100];
    memcpy(big, "1000:", 5);
    memset(big + 5, 'x', 1000);
    irohds_dht_item b = {.v = big, .v_len = 1005};
    CHECK(irohds_dht_item_check(&b) == -EMSGSIZE, "v of 1005 bytes");
    b.v_len = 4;
    CHECK(irohds_dht_item_check(&b) == -EINVAL, "v not bencode");
    uint8_t salt[65] = {0};
    it.salt = salt, it.salt_len = 65;
    CHECK(irohds_dht_item_check(&it) == -ENAMETOOLONG, "salt of 65");
    it.salt_len = 0, it.seq = -1;
    CHECK(irohds_dht_item_sign(&it, sk) == -EINVAL, "negative seq");
}

static void test_krpc_vectors(void)
{
    json_object *root = load("krpc/bep5_examples.json"), *cases;
    if (!root)
        return;
    json_object_object_get_ex(root, "cases", &cases);
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        const char *name = jstr(c, "name");
        uint8_t in[512], out[512];
        size_t len = unhex(jstr(c, "bencoded_hex"), in, sizeof in), olen;
        irohds_dht_msg m;
        CHECK(irohds_dht_msg_decode(&m, in, len) == 0, "%s decodes", name);
        CHECK(m.t_len == 2 && memcmp(m.t, "aa", 2) == 0, "%s: t", name);
        CHECK(irohds_dht_msg_encode(&m, out, sizeof out, &olen) == 0 && olen == len &&
                  memcmp(out, in, len) == 0,
              "%s: re-encodes byte for byte", name);
        if (strcmp(name, "ping_query") == 0)
            CHECK(m.y == 'q' && m.method == IROHDS_DHT_M_PING &&
                      memcmp(m.id, "abcdefghij0123456789", 20) == 0,
                  "ping fields");
        if (strcmp(name, "get_peers_response_values") == 0)
            CHECK(m.y == 'r' && m.n_values == 2 && m.values_len[0] == 6 &&
                      memcmp(m.values[1], "idhtnm", 6) == 0 && m.token_len == 8,
                  "values fields");
        if (strcmp(name, "announce_peer_query") == 0)
            CHECK(m.method == IROHDS_DHT_M_ANNOUNCE_PEER && m.implied_port && m.has_port &&
                      m.port == 6881 && memcmp(m.token, "aoeusnth", 8) == 0 &&
                      memcmp(m.info_hash, "mnopqrstuvwxyz123456", 20) == 0,
                  "announce fields");
        if (strcmp(name, "find_node_response") == 0) {
            irohds_dht_node ns[4];
            CHECK(m.nodes_len == 9 && irohds_dht_nodes_parse(m.nodes, m.nodes_len, AF_INET, ns, 4) == 0,
                  "the 9-byte placeholder is no node list");
        }
        if (strcmp(name, "error_generic") == 0)
            CHECK(m.y == 'e' && m.err_code == 201 && m.err_msg_len == 23, "error fields");
    }
    json_object_put(root);

    /* fields outside BEP 5: sorted on the way out, read back */
    uint8_t id[20] = {1}, k[32] = {2}, sig[64] = {3}, buf[512];
    irohds_dht_msg q = {.y = 'q', .t = (const uint8_t *)"xy", .t_len = 2, .method = IROHDS_DHT_M_PUT,
                        .id = id, .k = k, .sig = sig, .has_seq = true, .seq = 9, .has_cas = true,
                        .cas = 8, .salt = (const uint8_t *)"s", .salt_len = 1,
                        .token = (const uint8_t *)"tok", .token_len = 3,
                        .value = (const uint8_t *)"li1ee", .value_len = 5, .ro = true,
                        .want_n4 = true, .want_n6 = true},
                   m;
    size_t len;
    CHECK(irohds_dht_msg_encode(&q, buf, sizeof buf, &len) == 0, "encode put");
    CHECK(irohds_dht_msg_decode(&m, buf, len) == 0 && m.method == IROHDS_DHT_M_PUT && m.seq == 9 &&
              m.cas == 8 && m.salt_len == 1 && m.value_len == 5 && !memcmp(m.value, "li1ee", 5) &&
              m.ro && m.want_n4 && m.want_n6 && !memcmp(m.k, k, 32) && !memcmp(m.sig, sig, 64),
          "put round trip");
    static const char *bad[] = {
        "d1:t2:aa1:y1:qe",                                  /* query without q, a */
        "d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",           /* short id */
        "d1:rd2:id20:abcdefghij0123456789e1:y1:re",         /* no t */
        "d1:rd2:id20:abcdefghij0123456789e1:t2:aa1:y1:xe",  /* y = x */
        "d1:eli201ee1:t2:aa1:y1:ee",                        /* error without text */
        "d1:ad2:id20:abcdefghij01234567896:target3:abce1:q9:find_node1:t2:aa1:y1:qe",
        "d1:rd2:id20:abcdefghij01234567896:valuesli1eee1:t2:aa1:y1:re", /* value not a string */
        "li1ee",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        CHECK(irohds_dht_msg_decode(&m, bad[i], strlen(bad[i])) != 0, "refused: %s", bad[i]);
}

/* ============================================================ one node */

static struct sockaddr_in v4(const char *ip, uint16_t port)
{
    struct sockaddr_in s = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, ip, &s.sin_addr);
    return s;
}

static irohds_dht *node_with(const irohds_dht_config *c)
{
    irohds_dht *d;
    int rc = irohds_dht_new(&d, c);
    CHECK(rc == 0, "new: %d", rc);
    return d;
}

static const uint8_t asker[20] = {0xaa, 0xbb}; /* the id ask() sends by default */
static uint8_t reply_buf[IROHDS_DHT_MAX_PACKET];
static size_t reply_len;

/* Send q from `from`; return how many datagrams came back; the last one is
 * decoded into *r (pointing into reply_buf). */
static int ask(irohds_dht *d, uint64_t now, const struct sockaddr_in *from, irohds_dht_msg *q,
               irohds_dht_msg *r)
{
    uint8_t buf[IROHDS_DHT_MAX_PACKET];
    size_t len;
    q->y = 'q';
    if (!q->t)
        q->t = (const uint8_t *)"tt", q->t_len = 2;
    if (!q->id)
        q->id = asker;
    CHECK(irohds_dht_msg_encode(q, buf, sizeof buf, &len) == 0, "encode query");
    irohds_dht_receive(d, now, buf, len, (const struct sockaddr *)from, sizeof *from);
    int n = 0;
    irohds_dht_packet p;
    while (irohds_dht_next_packet(d, &p)) {
        if (n == 0 || p.len) {
            memcpy(reply_buf, p.buf, p.len);
            reply_len = p.len;
        }
        n++;
    }
    memset(r, 0, sizeof *r);
    if (n)
        CHECK(irohds_dht_msg_decode(r, reply_buf, reply_len) == 0, "reply decodes");
    return n;
}

static int drain_packets(irohds_dht *d)
{
    int n = 0;
    irohds_dht_packet p;
    while (irohds_dht_next_packet(d, &p))
        n++;
    return n;
}

/* The node's next datagram, decoded (valid until the next call). */
static uint8_t query_buf[IROHDS_DHT_MAX_PACKET];
static bool next_query(irohds_dht *d, irohds_dht_msg *q, irohds_dht_addr *to)
{
    irohds_dht_packet p;
    if (!irohds_dht_next_packet(d, &p))
        return false;
    memcpy(query_buf, p.buf, p.len);
    irohds_dht_addr_from_sockaddr(to, (const struct sockaddr *)&p.to, p.tolen);
    return irohds_dht_msg_decode(q, query_buf, p.len) == 0;
}

/* Answer q with r (t copied) as if from `from`. */
static void answer(irohds_dht *d, uint64_t now, const irohds_dht_msg *q, const irohds_dht_addr *from,
                   irohds_dht_msg *r)
{
    uint8_t buf[IROHDS_DHT_MAX_PACKET];
    size_t len;
    struct sockaddr_storage ss;
    socklen_t sl = irohds_dht_addr_to_sockaddr(from, &ss);
    r->t = q->t;
    r->t_len = q->t_len;
    CHECK(irohds_dht_msg_encode(r, buf, sizeof buf, &len) == 0, "encode answer");
    irohds_dht_receive(d, now, buf, len, (const struct sockaddr *)&ss, sl);
}

static int count_events(irohds_dht *d, irohds_dht_event_type type, irohds_dht_event *last)
{
    int n = 0;
    irohds_dht_event e;
    while (irohds_dht_next_event(d, &e)) {
        if (e.type == type) {
            n++;
            if (last)
                *last = e; /* pointers are stale: scalars only */
        }
    }
    return n;
}

static void test_answers(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    c.has_external = true;
    inet_pton(AF_INET, "84.124.73.14", c.external_ip);
    irohds_dht *d = node_with(&c);
    CHECK(irohds_dht_id_matches_ip(irohds_dht_id(d), AF_INET, c.external_ip), "BEP 42 own id");
    irohds_dht_periodic(d, T0);
    drain_packets(d);

    struct sockaddr_in a = v4("50.1.2.3", 4000);
    irohds_dht_msg q = {.method = IROHDS_DHT_M_PING}, r;
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'r' && memcmp(r.id, irohds_dht_id(d), 20) == 0 &&
              r.t_len == 2 && memcmp(r.t, "tt", 2) == 0,
          "ping answered");
    uint8_t want_ip[6] = {50, 1, 2, 3, 4000 >> 8, 4000 & 0xff};
    CHECK(r.ip_len == 6 && memcmp(r.ip, want_ip, 6) == 0, "BEP 42 ip field");
    CHECK(r.version_len == 4 && memcmp(r.version, "IR", 2) == 0, "client version");

    q = (irohds_dht_msg){.method = IROHDS_DHT_M_FIND_NODE};
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'e' && r.err_code == 203, "find_node without target");
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_OTHER, .q = (const uint8_t *)"vote", .q_len = 4};
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'e' && r.err_code == 204, "unknown method");
    uint8_t tgt[20] = {9};
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_OTHER, .q = (const uint8_t *)"sample_infohashes",
                         .q_len = 17, .target = tgt};
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'r' && r.nodes, "unknown method with a target");
    CHECK(r.has_interval && r.interval == 21600 && r.has_num && r.num == 0 && r.samples &&
              r.samples_len == 0,
          "BEP 51 sample_infohashes: interval, num and (empty) samples");

    /* the asker (a ping and find_node) is in the table now, but not told of itself */
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_FIND_NODE, .target = tgt};
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'r' && r.nodes_len == 0, "asker left out");
    /* another asker sees nothing yet: the first one never answered a query
     * of ours; the node pings it, and once it answers it is handed out */
    uint8_t other[20] = {0x11};
    struct sockaddr_in b = v4("60.1.2.3", 5000);
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_FIND_NODE, .target = tgt, .id = other};
    CHECK(ask(d, T0, &b, &q, &r) == 1 && r.nodes_len == 0, "unconfirmed node not handed out");
    irohds_dht_periodic(d, T0 + 1000);
    irohds_dht_addr aa, to;
    irohds_dht_addr_from_sockaddr(&aa, (const struct sockaddr *)&a, sizeof a);
    irohds_dht_msg pq;
    bool pinged = false;
    while (!pinged && next_query(d, &pq, &to))
        pinged = pq.method == IROHDS_DHT_M_PING && irohds_dht_addr_eq(&to, &aa);
    CHECK(pinged, "the unconfirmed node is pinged");
    irohds_dht_msg pong = {.y = 'r', .id = asker};
    answer(d, T0 + 1010, &pq, &aa, &pong);
    drain_packets(d);
    CHECK(ask(d, T0 + 1020, &b, &q, &r) == 1 && r.nodes_len == 26 && !memcmp(r.nodes, asker, 20),
          "confirmed node handed out: %zu", r.nodes_len);

    /* read-only askers are not taken into the table */
    uint8_t ro_id[20] = {0x22};
    struct sockaddr_in ro = v4("61.1.2.3", 5000);
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_PING, .id = ro_id, .ro = true};
    ask(d, T0 + 1020, &ro, &q, &r);
    irohds_dht_stats st;
    irohds_dht_stats_get(d, &st);
    CHECK(st.nodes_good == 1 && st.nodes_questionable == 1, "ro node not in table (%zu + %zu)",
          st.nodes_good, st.nodes_questionable);
    irohds_dht_free(d);
}

static void test_tokens(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    irohds_dht *d = node_with(&c);
    irohds_dht_periodic(d, T0);
    drain_packets(d);
    uint8_t ih[20] = {0x42};
    struct sockaddr_in a = v4("50.1.2.3", 4000), other = v4("50.1.2.4", 4000);
    irohds_dht_msg q = {.method = IROHDS_DHT_M_GET_PEERS, .info_hash = ih}, r;
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.token_len == 8 && !r.has_values, "token, no values");
    uint8_t tok[8];
    memcpy(tok, r.token, 8);

    q = (irohds_dht_msg){.method = IROHDS_DHT_M_ANNOUNCE_PEER, .info_hash = ih, .has_port = true,
                         .port = 7000, .token = tok, .token_len = 8};
    CHECK(ask(d, T0, &other, &q, &r) == 1 && r.y == 'e' && r.err_code == 203,
          "token of another ip refused");
    uint8_t ih2[20] = {0x43};
    q.info_hash = ih2;
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'e' && r.err_code == 203,
          "token of another info-hash refused");
    q.info_hash = ih;
    q.token_len = 7;
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'e', "short token refused");
    q.token_len = 8;
    CHECK(ask(d, T0 + 4 * MIN, &a, &q, &r) == 1 && r.y == 'r', "announce accepted");

    q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET_PEERS, .info_hash = ih};
    CHECK(ask(d, T0 + 4 * MIN, &other, &q, &r) == 1 && r.n_values == 1, "one peer stored");
    uint8_t want[6] = {50, 1, 2, 3, 7000 >> 8, 7000 & 0xff};
    CHECK(r.values_len[0] == 6 && memcmp(r.values[0], want, 6) == 0, "its address and port");

    /* implied_port: the source port wins over "port" */
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_ANNOUNCE_PEER, .info_hash = ih, .has_port = true,
                         .port = 9, .implied_port = true, .token = tok, .token_len = 8};
    CHECK(ask(d, T0 + 4 * MIN, &a, &q, &r) == 1 && r.y == 'r', "implied_port announce");
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET_PEERS, .info_hash = ih};
    ask(d, T0 + 4 * MIN, &other, &q, &r);
    bool has4000 = false, has9 = false;
    for (size_t i = 0; i < r.n_values; i++) {
        has4000 |= r.values[i][4] == (4000 >> 8) && r.values[i][5] == (4000 & 0xff);
        has9 |= r.values[i][4] == 0 && r.values[i][5] == 9;
    }
    CHECK(r.n_values == 2 && has4000 && !has9, "source port stored");

    /* the secret rotates every 5 min; the previous one is still accepted */
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_ANNOUNCE_PEER, .info_hash = ih, .has_port = true,
                         .port = 7000, .token = tok, .token_len = 8};
    irohds_dht_periodic(d, T0 + 5 * MIN + 1);
    drain_packets(d);
    CHECK(ask(d, T0 + 6 * MIN, &a, &q, &r) == 1 && r.y == 'r', "token after one rotation");
    irohds_dht_periodic(d, T0 + 10 * MIN + 2);
    drain_packets(d);
    CHECK(ask(d, T0 + 11 * MIN, &a, &q, &r) == 1 && r.y == 'e' && r.err_code == 203,
          "token after two rotations refused");
    irohds_dht_stats st;
    irohds_dht_stats_get(d, &st);
    CHECK(st.tokens_rejected == 4, "tokens rejected: %llu", (unsigned long long)st.tokens_rejected);

    /* peers expire 2 h after their last announce (T0 + 6 min) */
    irohds_dht_periodic(d, T0 + 6 * MIN + 2 * 60 * MIN - 1000);
    drain_packets(d);
    irohds_dht_stats_get(d, &st);
    CHECK(st.peers == 1, "the implied-port entry (T0 + 4 min) went first: %zu", st.peers);
    irohds_dht_periodic(d, T0 + 6 * MIN + 2 * 60 * MIN + 61000);
    drain_packets(d);
    irohds_dht_stats_get(d, &st);
    CHECK(st.peers == 0 && st.torrents == 0, "peers expired: %zu", st.peers);
    irohds_dht_free(d);
}

/* get a token for target from a, then send q (a put) with it */
static int put_with_token(irohds_dht *d, uint64_t now, const struct sockaddr_in *a,
                          const uint8_t *target, irohds_dht_msg *q, irohds_dht_msg *r)
{
    irohds_dht_msg g = {.method = IROHDS_DHT_M_GET, .target = target}, gr;
    ask(d, now, a, &g, &gr);
    uint8_t tok[8];
    memcpy(tok, gr.token, 8);
    q->method = IROHDS_DHT_M_PUT;
    q->token = tok;
    q->token_len = 8;
    return ask(d, now, a, q, r);
}

static void test_items(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    irohds_dht *d = node_with(&c);
    irohds_dht_periodic(d, T0);
    drain_packets(d);
    struct sockaddr_in a = v4("50.1.2.3", 4000);
    irohds_dht_msg q, r;

    /* immutable: target = SHA-1(v) */
    const char *v = "12:Hello World!";
    uint8_t target[20];
    irohds_dht_sha1(v, strlen(v), target);
    q = (irohds_dht_msg){.value = (const uint8_t *)v, .value_len = strlen(v)};
    CHECK(put_with_token(d, T0, &a, target, &q, &r) == 1 && r.y == 'r', "immutable put");
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET, .target = target};
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.value_len == strlen(v) && !memcmp(r.value, v, r.value_len) &&
              !r.k,
          "immutable get");

    /* the BEP's own mutable vectors (signed with its expanded key) */
    json_object *root = load("bep44/test_vectors.json"), *cases;
    if (root) {
        json_object_object_get_ex(root, "cases", &cases);
        for (size_t i = 0; i < 2; i++) {
            json_object *cs = json_object_array_get_idx(cases, i);
            uint8_t k[32], sig[64], salt[16], tg[20];
            unhex(jstr(cs, "public_key"), k, 32);
            unhex(jstr(cs, "signature"), sig, 64);
            unhex(jstr(cs, "target_id"), tg, 20);
            size_t slen = jstr(cs, "salt_hex") ? unhex(jstr(cs, "salt_hex"), salt, 16) : 0;
            q = (irohds_dht_msg){.value = (const uint8_t *)v, .value_len = strlen(v), .k = k,
                                 .sig = sig, .has_seq = true, .seq = 1,
                                 .salt = slen ? salt : NULL, .salt_len = slen};
            CHECK(put_with_token(d, T0, &a, tg, &q, &r) == 1 && r.y == 'r', "vector %zu put", i);
            q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET, .target = tg};
            CHECK(ask(d, T0, &a, &q, &r) == 1 && r.has_seq && r.seq == 1 && r.k && !memcmp(r.k, k, 32) &&
                      r.sig && !memcmp(r.sig, sig, 64) && r.value_len == strlen(v),
                  "vector %zu get", i);
        }
        json_object_put(root);
    }

    /* our key: seq, cas and the error codes */
    uint8_t pk[32], sk[64], seed[32] = {1};
    crypto_sign_seed_keypair(pk, sk, seed);
    uint8_t tg[20];
    irohds_dht_mutable_target(pk, NULL, 0, tg);
    irohds_dht_item it = {.v = (const uint8_t *)"3:one", .v_len = 5, .seq = 5};
    irohds_dht_item_sign(&it, sk);
#define PUT_ITEM(item, cas_on, cas_v)                                                           \
    (q = (irohds_dht_msg){.value = (item).v, .value_len = (item).v_len, .k = (item).k,         \
                          .sig = (item).sig, .has_seq = true, .seq = (item).seq,               \
                          .has_cas = (cas_on), .cas = (cas_v)},                                \
     put_with_token(d, T0, &a, tg, &q, &r))
    CHECK(PUT_ITEM(it, true, 77) == 1 && r.y == 'r', "first put: cas ignored without an item");
    irohds_dht_item it6 = {.v = (const uint8_t *)"3:six", .v_len = 5, .seq = 6};
    irohds_dht_item_sign(&it6, sk);
    CHECK(PUT_ITEM(it6, true, 4) == 1 && r.y == 'e' && r.err_code == 301, "cas mismatch 301");
    irohds_dht_item it4 = {.v = (const uint8_t *)"4:four", .v_len = 6, .seq = 4};
    irohds_dht_item_sign(&it4, sk);
    CHECK(PUT_ITEM(it4, false, 0) == 1 && r.y == 'e' && r.err_code == 302, "older seq 302");
    irohds_dht_item it5b = {.v = (const uint8_t *)"3:two", .v_len = 5, .seq = 5};
    irohds_dht_item_sign(&it5b, sk);
    CHECK(PUT_ITEM(it5b, false, 0) == 1 && r.y == 'e' && r.err_code == 302,
          "same seq, other value 302");
    CHECK(PUT_ITEM(it, false, 0) == 1 && r.y == 'r', "same seq, same value: refresh");
    CHECK(PUT_ITEM(it6, true, 5) == 1 && r.y == 'r', "cas match");
    irohds_dht_item bad = it6;
    bad.sig[0] ^= 1;
    bad.seq = 7;
    CHECK(PUT_ITEM(bad, false, 0) == 1 && r.y == 'e' && r.err_code == 206, "bad signature 206");
#undef PUT_ITEM
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET, .target = tg, .has_seq = true, .seq = 6};
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.has_seq && r.seq == 6 && !r.value && !r.k && !r.sig,
          "get with seq 6: seq only");
    q.seq = 5;
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.seq == 6 && r.value_len == 5 && !memcmp(r.value, "3:six", 5),
          "get with seq 5: the item");

    /* sizes and shapes */
    static uint8_t big[1010];
    memcpy(big, "1001:", 5);
    memset(big + 5, 'x', 1001);
    uint8_t bt[20];
    irohds_dht_sha1(big, 1006, bt);
    q = (irohds_dht_msg){.value = big, .value_len = 1006};
    CHECK(put_with_token(d, T0, &a, bt, &q, &r) == 1 && r.err_code == 205, "v too big 205");
    uint8_t salt[65] = {0};
    q = (irohds_dht_msg){.value = it.v, .value_len = it.v_len, .k = it.k, .sig = it.sig,
                         .has_seq = true, .seq = 9, .salt = salt, .salt_len = 65};
    CHECK(put_with_token(d, T0, &a, tg, &q, &r) == 1 && r.err_code == 207, "salt too big 207");
    q = (irohds_dht_msg){.value = it.v, .value_len = it.v_len, .k = it.k, .has_seq = true, .seq = 9};
    CHECK(put_with_token(d, T0, &a, tg, &q, &r) == 1 && r.err_code == 203, "k without sig 203");
    uint8_t wrong[8] = {0};
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_PUT, .value = (const uint8_t *)v,
                         .value_len = strlen(v), .token = wrong, .token_len = 8};
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.err_code == 203, "put with a bad token 203");

    irohds_dht_stats st;
    irohds_dht_stats_get(d, &st);
    CHECK(st.items == 4, "4 items stored: %zu", st.items);
    irohds_dht_periodic(d, T0 + 2 * 60 * MIN + 61000);
    drain_packets(d);
    irohds_dht_stats_get(d, &st);
    CHECK(st.items == 0, "items expired after 2 h: %zu", st.items);
    irohds_dht_free(d);
}

static void test_flood(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    irohds_dht *d = node_with(&c);
    irohds_dht_periodic(d, T0);
    drain_packets(d);
    struct sockaddr_in a = v4("50.1.2.3", 4000);
    irohds_dht_msg q = {.y = 'q', .t = (const uint8_t *)"tt", .t_len = 2,
                        .method = IROHDS_DHT_M_PING, .id = (const uint8_t *)"abcdefghij0123456789"};
    uint8_t buf[128];
    size_t len;
    irohds_dht_msg_encode(&q, buf, sizeof buf, &len);
    for (int i = 0; i < 1000; i++)
        irohds_dht_receive(d, T0, buf, len, (const struct sockaddr *)&a, sizeof a);
    CHECK(drain_packets(d) == 100, "burst of 100 answered");
    for (int i = 0; i < 1000; i++)
        irohds_dht_receive(d, T0 + 1000, buf, len, (const struct sockaddr *)&a, sizeof a);
    CHECK(drain_packets(d) == 20, "then 20 per second");
    struct sockaddr_in b = v4("50.1.2.4", 4000);
    irohds_dht_receive(d, T0 + 1000, buf, len, (const struct sockaddr *)&b, sizeof b);
    CHECK(drain_packets(d) == 1, "another source is answered");
    irohds_dht_stats st;
    irohds_dht_stats_get(d, &st);
    CHECK(st.dropped_rate == 1880, "dropped %llu", (unsigned long long)st.dropped_rate);

    /* many sources: the global budget (burst 2000) holds */
    int answered = 0;
    for (int i = 0; i < 5000; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "70.%d.%d.1", i / 250, i % 250);
        struct sockaddr_in s = v4(ip, 4000);
        irohds_dht_receive(d, T0 + 2000, buf, len, (const struct sockaddr *)&s, sizeof s);
        answered += drain_packets(d);
    }
    CHECK(answered <= 2000 + 20 && answered >= 1900, "global budget: %d answered", answered);
    irohds_dht_free(d);

    /* the byte budget: big replies to one destination stop at 32 KiB/burst */
    irohds_dht_config_default(&c);
    c.src_rate = 100000;
    c.src_burst = 100000;
    d = node_with(&c);
    irohds_dht_periodic(d, T0);
    drain_packets(d);
    static uint8_t v[1000];
    memcpy(v, "995:", 4);
    memset(v + 4, 'v', 995);
    uint8_t tg[20];
    irohds_dht_sha1(v, 999, tg);
    irohds_dht_msg r;
    q = (irohds_dht_msg){.value = v, .value_len = 999};
    CHECK(put_with_token(d, T0, &a, tg, &q, &r) == 1 && r.y == 'r', "big item stored");
    struct sockaddr_in victim = v4("90.9.9.9", 1);
    q = (irohds_dht_msg){.y = 'q', .t = (const uint8_t *)"tt", .t_len = 2, .method = IROHDS_DHT_M_GET,
                         .id = (const uint8_t *)"abcdefghij0123456789", .target = tg};
    irohds_dht_msg_encode(&q, buf, sizeof buf, &len);
    size_t bytes = 0;
    for (int i = 0; i < 200; i++) {
        irohds_dht_receive(d, T0 + 10, buf, len, (const struct sockaddr *)&victim, sizeof victim);
        irohds_dht_packet p;
        while (irohds_dht_next_packet(d, &p))
            bytes += p.len;
    }
    CHECK(bytes <= 32768 && bytes > 30000, "%zu bytes to one destination", bytes);
    irohds_dht_free(d);
}

static void test_bad_input(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    irohds_dht *d = node_with(&c);
    irohds_dht_periodic(d, T0);
    drain_packets(d);
    struct sockaddr_in a = v4("50.1.2.3", 4000);
    const char *junk[] = {
        "",
        "hello",
        "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:q",  /* truncated */
        "d1:ad2:id19:abcdefghij012345678e1:q4:ping1:t2:aa1:y1:qe",  /* short id */
        "li1ei2ee",
        "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:xe", /* y = x */
        "d1:t2:aa1:y1:q1:q4:ping1:ad2:id20:abcdefghij0123456789ee", /* unsorted */
    };
    for (size_t i = 0; i < sizeof junk / sizeof junk[0]; i++)
        irohds_dht_receive(d, T0, junk[i], strlen(junk[i]), (const struct sockaddr *)&a, sizeof a);
    CHECK(drain_packets(d) == 0, "junk gets no answer");
    const char *resp = "d1:rd2:id20:mnopqrstuvwxyz123456e1:t6:abcdef1:y1:re";
    irohds_dht_receive(d, T0, resp, strlen(resp), (const struct sockaddr *)&a, sizeof a);
    static uint8_t huge[5000];
    memset(huge, 'd', sizeof huge);
    irohds_dht_receive(d, T0, huge, sizeof huge, (const struct sockaddr *)&a, sizeof a);
    struct sockaddr_in zero = v4("50.1.2.3", 0);
    const char *ping = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    irohds_dht_receive(d, T0, ping, strlen(ping), (const struct sockaddr *)&zero, sizeof zero);
    CHECK(drain_packets(d) == 0, "nor does an unsolicited reply, an oversized one, port 0");
    struct sockaddr_in6 s6 = {.sin6_family = AF_INET6, .sin6_port = htons(1)};
    CHECK(irohds_dht_receive(d, T0, ping, strlen(ping), (const struct sockaddr *)&s6, sizeof s6) ==
              -EAFNOSUPPORT,
          "IPv6 source on an IPv4 node");
    irohds_dht_stats st;
    irohds_dht_stats_get(d, &st);
    CHECK(st.dropped_malformed == 8 && st.dropped_unsolicited == 1 && st.dropped_oversize == 1,
          "counted: malformed %llu unsolicited %llu oversize %llu",
          (unsigned long long)st.dropped_malformed, (unsigned long long)st.dropped_unsolicited,
          (unsigned long long)st.dropped_oversize);
    CHECK(st.nodes_good + st.nodes_questionable == 0, "no node learnt from junk");
    irohds_dht_free(d);
}

static void test_bounds(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    c.max_torrents = 10;
    c.max_peers = 20;
    c.max_items = 5;
    c.global_burst = 100000;
    irohds_dht *d = node_with(&c);
    irohds_dht_periodic(d, T0);
    drain_packets(d);
    irohds_dht_msg q, r;
    /* 50 info-hashes: at most 10 kept */
    for (int i = 0; i < 50; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "40.0.%d.1", i);
        struct sockaddr_in a = v4(ip, 1000);
        uint8_t ih[20] = {(uint8_t)i, 1};
        q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET_PEERS, .info_hash = ih};
        ask(d, T0 + (uint64_t)i, &a, &q, &r);
        uint8_t tok[8];
        memcpy(tok, r.token, 8);
        q = (irohds_dht_msg){.method = IROHDS_DHT_M_ANNOUNCE_PEER, .info_hash = ih,
                             .has_port = true, .port = 1000, .token = tok, .token_len = 8};
        ask(d, T0 + (uint64_t)i, &a, &q, &r);
    }
    irohds_dht_stats st;
    irohds_dht_stats_get(d, &st);
    CHECK(st.torrents == 10 && st.peers == 10, "torrents %zu peers %zu", st.torrents, st.peers);
    /* the 10 newest survive */
    uint8_t newest[20] = {49, 1}, oldest[20] = {0, 1};
    struct sockaddr_in x = v4("41.0.0.1", 1);
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET_PEERS, .info_hash = newest};
    CHECK(ask(d, T0 + 100, &x, &q, &r) == 1 && r.n_values == 1, "newest kept");
    q.info_hash = oldest;
    CHECK(ask(d, T0 + 100, &x, &q, &r) == 1 && r.n_values == 0, "oldest evicted");

    /* one info-hash, 40 hosts: 20 kept; one host, many ports: 8 kept */
    uint8_t ih[20] = {0xee};
    for (int i = 0; i < 40; i++) {
        char ip[32];
        snprintf(ip, sizeof ip, "42.0.%d.1", i);
        struct sockaddr_in a = v4(ip, 1000);
        q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET_PEERS, .info_hash = ih};
        ask(d, T0 + 200, &a, &q, &r);
        uint8_t tok[8];
        memcpy(tok, r.token, 8);
        q = (irohds_dht_msg){.method = IROHDS_DHT_M_ANNOUNCE_PEER, .info_hash = ih, .implied_port = true,
                             .token = tok, .token_len = 8};
        ask(d, T0 + 200, &a, &q, &r);
    }
    for (int i = 0; i < 30; i++) {
        struct sockaddr_in a = v4("43.0.0.1", (uint16_t)(2000 + i));
        q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET_PEERS, .info_hash = ih};
        ask(d, T0 + 300, &a, &q, &r);
        uint8_t tok[8];
        memcpy(tok, r.token, 8);
        q = (irohds_dht_msg){.method = IROHDS_DHT_M_ANNOUNCE_PEER, .info_hash = ih, .implied_port = true,
                             .token = tok, .token_len = 8};
        ask(d, T0 + 300, &a, &q, &r);
    }
    q = (irohds_dht_msg){.method = IROHDS_DHT_M_GET_PEERS, .info_hash = ih};
    size_t qlen = 0;
    {
        uint8_t tmp[256];
        irohds_dht_msg qq = q;
        qq.y = 'q', qq.t = (const uint8_t *)"tt", qq.t_len = 2,
        qq.id = (const uint8_t *)"abcdefghij0123456789";
        irohds_dht_msg_encode(&qq, tmp, sizeof tmp, &qlen);
    }
    CHECK(ask(d, T0 + 400, &x, &q, &r) == 1 && r.n_values == 20, "20 peers: %zu", r.n_values);
    size_t same = 0;
    for (size_t i = 0; i < r.n_values; i++)
        same += r.values[i][0] == 43;
    CHECK(same == 8, "8 from one host: %zu", same);
    CHECK(reply_len <= 8 * qlen, "reply %zu bytes for a %zu-byte query", reply_len, qlen);

    /* items: at most 5 */
    for (int i = 0; i < 12; i++) {
        char v[16];
        snprintf(v, sizeof v, "i%de", i);
        uint8_t tg[20];
        irohds_dht_sha1(v, strlen(v), tg);
        struct sockaddr_in a = v4("44.0.0.1", 1);
        q = (irohds_dht_msg){.value = (const uint8_t *)v, .value_len = strlen(v)};
        put_with_token(d, T0 + 500 + (uint64_t)i, &a, tg, &q, &r);
    }
    irohds_dht_stats_get(d, &st);
    CHECK(st.items == 5, "items %zu", st.items);
    irohds_dht_free(d);
}

/* ===================================================== scripted peers */

/* A search answered by hand: forged items are not reported, spoofed
 * replies are ignored, peers are reported once each. */
static void test_scripted(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    irohds_dht *d = node_with(&c);
    struct sockaddr_in fs = v4("55.5.5.5", 6881);
    irohds_dht_addr f, n1 = {.family = AF_INET, .port = 6881, .ip = {55, 5, 5, 6}}, to;
    irohds_dht_addr_from_sockaddr(&f, (const struct sockaddr *)&fs, sizeof fs);
    irohds_dht_add_router(d, (const struct sockaddr *)&fs, sizeof fs);

    json_object *root = load("bep44/test_vectors.json"), *cases;
    if (!root)
        return;
    json_object_object_get_ex(root, "cases", &cases);
    json_object *cs = json_object_array_get_idx(cases, 0);
    uint8_t k[32], sig[64], tg[20];
    unhex(jstr(cs, "public_key"), k, 32);
    unhex(jstr(cs, "signature"), sig, 64);
    unhex(jstr(cs, "target_id"), tg, 20);
    json_object_put(root);
    const char *v = "12:Hello World!";

    uint32_t h;
    CHECK(irohds_dht_get_mutable(d, T0, k, NULL, 0, false, 0, &h) == 0, "get_mutable");
    irohds_dht_msg q;
    CHECK(next_query(d, &q, &to) && irohds_dht_addr_eq(&to, &f) && q.method == IROHDS_DHT_M_GET &&
              memcmp(q.target, tg, 20) == 0 && !q.has_seq,
          "get sent to the router");
    /* a spoofed answer (right t, wrong source) changes nothing */
    uint8_t fid[20] = {0xf0}, n1id[20] = {0xf1}, nodes[38], bad[64];
    memcpy(nodes, n1id, 20);
    irohds_dht_addr_compact(&n1, nodes + 20);
    memcpy(bad, sig, 64);
    bad[10] ^= 4;
    irohds_dht_msg forged = {.y = 'r', .id = fid, .k = k, .sig = bad, .has_seq = true, .seq = 1,
                             .value = (const uint8_t *)v, .value_len = strlen(v),
                             .token = (const uint8_t *)"tok", .token_len = 3, .nodes = nodes,
                             .nodes_len = 26};
    irohds_dht_addr spoof = f;
    spoof.port++;
    answer(d, T0 + 5, &q, &spoof, &forged);
    irohds_dht_stats st;
    irohds_dht_stats_get(d, &st);
    CHECK(st.dropped_unsolicited == 1 && st.rpcs_in_flight == 1, "spoofed reply dropped");
    /* the router answers with a forged signature and names n1 */
    answer(d, T0 + 10, &q, &f, &forged);
    CHECK(count_events(d, IROHDS_DHT_EV_ITEM, NULL) == 0, "forged item not reported");
    CHECK(next_query(d, &q, &to) && irohds_dht_addr_eq(&to, &n1) && q.method == IROHDS_DHT_M_GET,
          "n1 asked next");
    /* n1 answers with the real item */
    irohds_dht_msg good = {.y = 'r', .id = n1id, .k = k, .sig = sig, .has_seq = true, .seq = 1,
                           .value = (const uint8_t *)v, .value_len = strlen(v),
                           .token = (const uint8_t *)"tok", .token_len = 3};
    answer(d, T0 + 20, &q, &n1, &good);
    irohds_dht_event ev;
    int items = 0, done = 0;
    while (irohds_dht_next_event(d, &ev)) {
        if (ev.type == IROHDS_DHT_EV_ITEM) {
            items++;
            CHECK(ev.item.seq == 1 && ev.item.v_len == strlen(v) &&
                      memcmp(ev.item.v, v, ev.item.v_len) == 0 && memcmp(ev.item.k, k, 32) == 0,
                  "the real item");
        }
        if (ev.type == IROHDS_DHT_EV_DONE) {
            done++;
            CHECK(ev.status == 0 && ev.n_nodes == 1 && memcmp(ev.nodes[0].id, n1id, 20) == 0,
                  "done: only n1 counts (%zu nodes)", ev.n_nodes);
        }
    }
    CHECK(items == 1 && done == 1, "one item, then done: %d %d", items, done);

    /* immutable: a value that does not hash to the target is not reported */
    uint8_t itg[20];
    irohds_dht_sha1(v, strlen(v), itg);
    CHECK(irohds_dht_get_immutable(d, T0 + 100, itg, &h) == 0, "get_immutable");
    while (next_query(d, &q, &to) && !(q.method == IROHDS_DHT_M_GET && irohds_dht_addr_eq(&to, &n1)))
        ;
    irohds_dht_msg wrongv = {.y = 'r', .id = n1id, .value = (const uint8_t *)"3:abc", .value_len = 5};
    answer(d, T0 + 110, &q, &n1, &wrongv);
    CHECK(count_events(d, IROHDS_DHT_EV_ITEM, NULL) == 0, "wrong immutable value not reported");
    irohds_dht_free(d);

    /* get_peers: valid values reported once each, junk values skipped */
    d = node_with(&c);
    irohds_dht_add_router(d, (const struct sockaddr *)&fs, sizeof fs);
    uint8_t ih[20] = {3};
    CHECK(irohds_dht_get_peers(d, T0, ih, &h) == 0, "get_peers");
    CHECK(next_query(d, &q, &to) && q.method == IROHDS_DHT_M_GET_PEERS, "get_peers sent");
    irohds_dht_msg pr = {.y = 'r', .id = fid, .token = (const uint8_t *)"t", .token_len = 1,
                         .has_values = true, .n_values = 4, .nodes = nodes, .nodes_len = 26};
    uint8_t p1[6] = {1, 2, 3, 4, 0, 80}, p0[6] = {1, 2, 3, 4, 0, 0}, p5[5] = {1, 2, 3, 4, 5};
    pr.values[0] = p1, pr.values_len[0] = 6;
    pr.values[1] = p1, pr.values_len[1] = 6;
    pr.values[2] = p0, pr.values_len[2] = 6; /* port 0 */
    pr.values[3] = p5, pr.values_len[3] = 5; /* not compact peer info */
    answer(d, T0 + 10, &q, &f, &pr);
    size_t n_peers = 0;
    int peer_events = 0;
    while (irohds_dht_next_event(d, &ev)) {
        if (ev.type == IROHDS_DHT_EV_PEERS) {
            peer_events++;
            n_peers = ev.n_peers;
            CHECK(ev.peers[0].port == 80 && memcmp(ev.peers[0].ip, p1, 4) == 0, "the peer");
        }
    }
    CHECK(peer_events == 1 && n_peers == 1, "one peer reported: %d events, %zu peers", peer_events,
          n_peers);
    /* cancel while n1 is asked: no DONE afterwards */
    CHECK(irohds_dht_cancel(d, h) == 0 && irohds_dht_cancel(d, h) == -ENOENT, "cancel");
    irohds_dht_periodic(d, T0 + 10 * MIN);
    CHECK(count_events(d, IROHDS_DHT_EV_DONE, NULL) == 0, "no event after cancel");
    irohds_dht_free(d);
}

/* ========================================================= simulation */

typedef struct evrec {
    int node;
    irohds_dht_event_type type;
    uint32_t handle;
    size_t n_peers;
    irohds_dht_addr peers[64];
    uint8_t v[IROHDS_DHT_MAX_V];
    size_t v_len;
    int64_t seq;
    unsigned n_ok, n_failed;
    int error;
    int64_t seen_seq;
    size_t n_nodes;
    irohds_dht_node nodes[IROHDS_DHT_K];
    int status;
    bool id_changed;
} evrec;

typedef struct pkt {
    uint64_t at, order;
    int to;
    struct sockaddr_storage from;
    size_t len;
    uint8_t *buf;
} pkt;

typedef struct simnode {
    irohds_dht *d;
    struct sockaddr_storage addr;
    socklen_t alen;
    uint64_t deadline;
} simnode;

typedef struct net {
    simnode n[80];
    int nn;
    pkt *heap;
    size_t hn, hcap;
    uint64_t order, now;
    uint64_t rng;
    evrec *ev;
    size_t nev, evcap;
    size_t lost;
} net;

static uint32_t net_rand(net *nt)
{
    nt->rng ^= nt->rng << 13, nt->rng ^= nt->rng >> 7, nt->rng ^= nt->rng << 17;
    return (uint32_t)(nt->rng >> 11);
}

static bool pkt_before(const pkt *a, const pkt *b)
{
    return a->at < b->at || (a->at == b->at && a->order < b->order);
}

static void heap_push(net *nt, pkt p)
{
    if (nt->hn == nt->hcap) {
        nt->hcap = nt->hcap ? 2 * nt->hcap : 1024;
        nt->heap = realloc(nt->heap, nt->hcap * sizeof *nt->heap);
    }
    size_t i = nt->hn++;
    nt->heap[i] = p;
    while (i && pkt_before(&nt->heap[i], &nt->heap[(i - 1) / 2])) {
        pkt t = nt->heap[i];
        nt->heap[i] = nt->heap[(i - 1) / 2];
        nt->heap[(i - 1) / 2] = t;
        i = (i - 1) / 2;
    }
}

static pkt heap_pop(net *nt)
{
    pkt top = nt->heap[0];
    nt->heap[0] = nt->heap[--nt->hn];
    size_t i = 0;
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        if (l < nt->hn && pkt_before(&nt->heap[l], &nt->heap[m]))
            m = l;
        if (r < nt->hn && pkt_before(&nt->heap[r], &nt->heap[m]))
            m = r;
        if (m == i)
            break;
        pkt t = nt->heap[i];
        nt->heap[i] = nt->heap[m];
        nt->heap[m] = t;
        i = m;
    }
    return top;
}

static int node_at(net *nt, const struct sockaddr_storage *a)
{
    irohds_dht_addr x, y;
    irohds_dht_addr_from_sockaddr(&x, (const struct sockaddr *)a, sizeof *a);
    for (int i = 0; i < nt->nn; i++) {
        irohds_dht_addr_from_sockaddr(&y, (const struct sockaddr *)&nt->n[i].addr, nt->n[i].alen);
        if (nt->n[i].d && irohds_dht_addr_eq(&x, &y))
            return i;
    }
    return -1;
}

static void record(net *nt, int node, const irohds_dht_event *e)
{
    if (nt->nev == nt->evcap) {
        nt->evcap = nt->evcap ? 2 * nt->evcap : 256;
        nt->ev = realloc(nt->ev, nt->evcap * sizeof *nt->ev);
    }
    evrec *r = &nt->ev[nt->nev++];
    memset(r, 0, sizeof *r);
    r->node = node;
    r->type = e->type;
    r->handle = e->handle;
    r->n_peers = e->n_peers < 64 ? e->n_peers : 64;
    if (r->n_peers)
        memcpy(r->peers, e->peers, r->n_peers * sizeof r->peers[0]);
    if (e->type == IROHDS_DHT_EV_ITEM) {
        r->v_len = e->item.v_len;
        memcpy(r->v, e->item.v, e->item.v_len);
        r->seq = e->item.seq;
    }
    r->n_ok = e->n_ok, r->n_failed = e->n_failed, r->error = e->error, r->seen_seq = e->seen_seq;
    r->n_nodes = e->n_nodes;
    if (e->n_nodes)
        memcpy(r->nodes, e->nodes, e->n_nodes * sizeof r->nodes[0]);
    r->status = e->status;
    r->id_changed = e->id_changed;
}

/* Move a node's datagrams into the network (10-60 ms each) and its events
 * into the log; refresh its deadline. */
static void drain(net *nt, int i)
{
    simnode *s = &nt->n[i];
    irohds_dht_packet p;
    while (irohds_dht_next_packet(s->d, &p)) {
        int to = node_at(nt, &p.to);
        if (to < 0) {
            nt->lost++;
            continue;
        }
        pkt q = {.at = nt->now + 10 + net_rand(nt) % 51, .order = nt->order++, .to = to,
                 .from = s->addr, .len = p.len, .buf = malloc(p.len)};
        memcpy(q.buf, p.buf, p.len);
        heap_push(nt, q);
    }
    irohds_dht_event e;
    while (irohds_dht_next_event(s->d, &e))
        record(nt, i, &e);
    s->deadline = irohds_dht_next_deadline(s->d);
}

static void net_step(net *nt, uint64_t limit)
{
    uint64_t t = nt->hn ? nt->heap[0].at : UINT64_MAX;
    for (int i = 0; i < nt->nn; i++)
        if (nt->n[i].d && nt->n[i].deadline < t)
            t = nt->n[i].deadline;
    if (t > limit) {
        nt->now = limit;
        return;
    }
    if (t > nt->now)
        nt->now = t;
    while (nt->hn && nt->heap[0].at <= nt->now) {
        pkt p = heap_pop(nt);
        simnode *s = &nt->n[p.to];
        if (s->d) {
            irohds_dht_receive(s->d, nt->now, p.buf, p.len, (struct sockaddr *)&p.from, sizeof p.from);
            drain(nt, p.to);
        }
        free(p.buf);
    }
    for (int i = 0; i < nt->nn; i++) {
        if (nt->n[i].d && nt->n[i].deadline <= nt->now) {
            irohds_dht_periodic(nt->n[i].d, nt->now);
            drain(nt, i);
        }
    }
}

static void net_run(net *nt, uint64_t ms)
{
    uint64_t end = nt->now + ms;
    while (nt->now < end)
        net_step(nt, end);
}

static evrec *find_ev(net *nt, int node, uint32_t handle, irohds_dht_event_type type, size_t from)
{
    for (size_t i = from; i < nt->nev; i++)
        if (nt->ev[i].node == node && nt->ev[i].handle == handle && nt->ev[i].type == type)
            return &nt->ev[i];
    return NULL;
}

/* Run until the search's DONE event (at most 2 virtual minutes). */
static evrec *wait_done(net *nt, int node, uint32_t handle)
{
    uint64_t end = nt->now + 2 * MIN;
    drain(nt, node);
    while (nt->now < end) {
        evrec *e = find_ev(nt, node, handle, IROHDS_DHT_EV_DONE, 0);
        if (e)
            return e;
        net_step(nt, end);
    }
    return find_ev(nt, node, handle, IROHDS_DHT_EV_DONE, 0);
}

static void sim_addr(net *nt, int i, sa_family_t family)
{
    simnode *s = &nt->n[i];
    memset(&s->addr, 0, sizeof s->addr);
    if (family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&s->addr;
        a->sin_family = AF_INET;
        a->sin_port = htons(6881);
        uint8_t ip[4] = {(uint8_t)(30 + i), (uint8_t)(i * 7), (uint8_t)(i * 13), (uint8_t)(i + 1)};
        memcpy(&a->sin_addr, ip, 4);
        s->alen = sizeof *a;
    } else {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&s->addr;
        a->sin6_family = AF_INET6;
        a->sin6_port = htons(6881);
        uint8_t ip[16] = {0x20, 0x01, 0x0d, 0xb8, (uint8_t)i, (uint8_t)(i * 3), 0, (uint8_t)(i * 11)};
        ip[15] = (uint8_t)(i + 1);
        memcpy(&a->sin6_addr, ip, 16);
        s->alen = sizeof *a;
    }
}

static const uint8_t *sim_ip(const simnode *s)
{
    if (s->addr.ss_family == AF_INET)
        return (const uint8_t *)&((const struct sockaddr_in *)&s->addr)->sin_addr;
    return ((const struct sockaddr_in6 *)&s->addr)->sin6_addr.s6_addr;
}

static void sim_config(irohds_dht_config *c, sa_family_t family, int i, bool knows_ip,
                       const simnode *s)
{
    irohds_dht_config_default(c);
    c->family = family;
    c->max_rpcs = 256;
    memset(c->seed, 0, sizeof c->seed);
    c->seed[0] = (uint8_t)i;
    c->seed[1] = (uint8_t)family;
    c->has_external = knows_ip;
    memcpy(c->external_ip, sim_ip(s), family == AF_INET ? 4 : 16);
}

/* Node i joins, knowing its ip or not, with node 0 as its router. */
static void sim_add(net *nt, int i, sa_family_t family, bool knows_ip, bool read_only)
{
    irohds_dht_config c;
    sim_addr(nt, i, family);
    sim_config(&c, family, i, knows_ip, &nt->n[i]);
    c.read_only = read_only;
    nt->n[i].d = node_with(&c);
    if (i != 0)
        irohds_dht_add_router(nt->n[i].d, (struct sockaddr *)&nt->n[0].addr, nt->n[0].alen);
    irohds_dht_periodic(nt->n[i].d, nt->now);
    drain(nt, i);
    if (i >= nt->nn)
        nt->nn = i + 1;
}

static void net_free(net *nt)
{
    for (int i = 0; i < nt->nn; i++)
        irohds_dht_free(nt->n[i].d);
    while (nt->hn)
        free(heap_pop(nt).buf);
    free(nt->heap);
    free(nt->ev);
}

/* The k ids closest to target among the nodes a lookup can find: not the
 * searcher, not the router (node 0: routers never enter routing tables),
 * not the read-only node. */
static size_t true_closest(net *nt, const uint8_t *target, int skip, int ro,
                           uint8_t out[IROHDS_DHT_K][20])
{
    size_t n = 0;
    for (int i = 1; i < nt->nn; i++) {
        if (!nt->n[i].d || i == skip || i == ro)
            continue;
        const uint8_t *id = irohds_dht_id(nt->n[i].d);
        size_t pos = n;
        while (pos > 0) {
            int c = 0;
            for (int b = 0; b < 20 && !c; b++)
                c = (id[b] ^ target[b]) - (out[pos - 1][b] ^ target[b]);
            if (c >= 0)
                break;
            pos--;
        }
        if (pos >= IROHDS_DHT_K)
            continue;
        size_t keep = n < IROHDS_DHT_K ? n : IROHDS_DHT_K - 1;
        memmove(out[pos + 1], out[pos], (keep - pos) * 20);
        memcpy(out[pos], id, 20);
        if (n < IROHDS_DHT_K)
            n++;
    }
    return n;
}

static bool same_set(uint8_t want[IROHDS_DHT_K][20], size_t n, const evrec *e)
{
    if (e->n_nodes != n)
        return false;
    for (size_t i = 0; i < n; i++) {
        bool hit = false;
        for (size_t j = 0; j < e->n_nodes; j++)
            hit |= memcmp(want[i], e->nodes[j].id, 20) == 0;
        if (!hit)
            return false;
    }
    return true;
}

static void check_lookups(net *nt, int from, int ro, int count, const char *what)
{
    int exact = 0;
    for (int t = 0; t < count; t++) {
        uint8_t target[20], want[IROHDS_DHT_K][20];
        for (int b = 0; b < 20; b++)
            target[b] = (uint8_t)net_rand(nt);
        uint32_t h;
        CHECK(irohds_dht_find_node(nt->n[from].d, nt->now, target, &h) == 0, "find_node");
        evrec *e = wait_done(nt, from, h);
        size_t n = true_closest(nt, target, from, ro, want);
        exact += e && e->status == 0 && same_set(want, n, e);
        if (getenv("DHT_DEBUG") && !(e && same_set(want, n, e))) {
            for (size_t w = 0; w < n; w++) {
                bool hit = false;
                for (size_t j = 0; e && j < e->n_nodes; j++)
                    hit |= memcmp(want[w], e->nodes[j].id, 20) == 0;
                int holders = 0, who = -1;
                for (int i = 0; i < nt->nn; i++) {
                    if (!nt->n[i].d) continue;
                    if (!memcmp(irohds_dht_id(nt->n[i].d), want[w], 20)) who = i;
                    static irohds_dht_node ns[1280];
                    size_t k = irohds_dht_nodes_get(nt->n[i].d, NULL, ns, 1280);
                    for (size_t j = 0; j < k; j++) holders += !memcmp(ns[j].id, want[w], 20);
                }
                printf("  want[%zu] node %d %s, in %d tables\n", w, who, hit ? "found" : "MISSING", holders);
            }
            printf("  got %zu nodes status %d\n", e ? e->n_nodes : 0, e ? e->status : 99);
            for (size_t w = 0; w < n; w++) {
                int who = -1;
                for (int i = 0; i < nt->nn; i++)
                    if (nt->n[i].d && !memcmp(irohds_dht_id(nt->n[i].d), want[w], 20)) who = i;
                irohds_dht_node ans[9];
                size_t k = irohds_dht_nodes_get(nt->n[who].d, target, ans, 9);
                printf("  node %d answers:", who);
                for (size_t j = 0; j < k; j++) {
                    int x = -1;
                    for (int i = 0; i < nt->nn; i++)
                        if (nt->n[i].d && !memcmp(irohds_dht_id(nt->n[i].d), ans[j].id, 20)) x = i;
                    printf(" %d", x);
                }
                irohds_dht_stats st; irohds_dht_stats_get(nt->n[who].d, &st);
                printf("  (good %zu q %zu bad %zu repl %zu)\n", st.nodes_good, st.nodes_questionable, st.nodes_bad, st.replacements);
            }
        }
    }
    CHECK(exact == count, "%s: %d of %d lookups found exactly the k closest", what, exact, count);
}

static void check_tables(net *nt, int first, int ro, const char *what)
{
    int healthy = 0, live = 0;
    for (int i = first; i < nt->nn; i++) {
        if (!nt->n[i].d || i == ro)
            continue;
        irohds_dht_stats st;
        irohds_dht_stats_get(nt->n[i].d, &st);
        live++;
        healthy += st.nodes_good >= IROHDS_DHT_K;
    }
    CHECK(healthy == live, "%s: %d of %d nodes have >= k good nodes", what, healthy, live);
}

static void sim_peers(net *nt)
{
    uint8_t ih[20];
    irohds_dht_sha1("namespace", 9, ih);
    uint32_t h;
    CHECK(irohds_dht_announce(nt->n[5].d, nt->now, ih, 7000, false, &h) == 0, "announce");
    evrec *done = wait_done(nt, 5, h);
    evrec *stored = find_ev(nt, 5, h, IROHDS_DHT_EV_STORED, 0);
    CHECK(done && stored && stored->n_ok == IROHDS_DHT_K && stored->n_failed == 0,
          "announce stored on %u nodes", stored ? stored->n_ok : 0);
    CHECK(irohds_dht_announce(nt->n[6].d, nt->now, ih, 7001, true, &h) == 0, "announce implied");
    wait_done(nt, 6, h);
    size_t mark = nt->nev;
    CHECK(irohds_dht_get_peers(nt->n[40].d, nt->now, ih, &h) == 0, "get_peers");
    done = wait_done(nt, 40, h);
    bool found5 = false, found6 = false;
    for (size_t i = mark; i < nt->nev; i++) {
        evrec *e = &nt->ev[i];
        if (e->node != 40 || e->handle != h || e->type != IROHDS_DHT_EV_PEERS)
            continue;
        for (size_t j = 0; j < e->n_peers; j++) {
            found5 |= memcmp(e->peers[j].ip, sim_ip(&nt->n[5]), 4) == 0 && e->peers[j].port == 7000;
            found6 |= memcmp(e->peers[j].ip, sim_ip(&nt->n[6]), 4) == 0 && e->peers[j].port == 6881;
        }
    }
    CHECK(done && done->status == 0 && found5 && found6, "peers found: %d %d", found5, found6);
}

static evrec *sim_put(net *nt, int node, const irohds_dht_item *it, bool has_cas, int64_t cas)
{
    uint32_t h;
    CHECK(irohds_dht_put(nt->n[node].d, nt->now, it, has_cas, cas, &h) == 0, "put");
    wait_done(nt, node, h);
    return find_ev(nt, node, h, IROHDS_DHT_EV_STORED, 0);
}

/* The last ITEM of a mutable get (or NULL). */
static evrec *sim_get_mutable(net *nt, int node, const uint8_t *k, const char *salt)
{
    uint32_t h;
    size_t mark = nt->nev;
    CHECK(irohds_dht_get_mutable(nt->n[node].d, nt->now, k, (const uint8_t *)salt,
                                 salt ? strlen(salt) : 0, false, 0, &h) == 0,
          "get_mutable");
    evrec *done = wait_done(nt, node, h);
    CHECK(done && done->status == 0, "get_mutable done");
    evrec *last = NULL;
    for (size_t i = mark; i < nt->nev; i++)
        if (nt->ev[i].node == node && nt->ev[i].handle == h && nt->ev[i].type == IROHDS_DHT_EV_ITEM)
            last = &nt->ev[i];
    return last;
}

static void sim_items(net *nt)
{
    /* immutable */
    const char *v = "12:Hello World!";
    irohds_dht_item im = {.v = (const uint8_t *)v, .v_len = strlen(v)};
    evrec *st = sim_put(nt, 7, &im, false, 0);
    CHECK(st && st->n_ok == IROHDS_DHT_K, "immutable put on %u", st ? st->n_ok : 0);
    uint8_t tg[20];
    irohds_dht_item_target(&im, tg);
    uint32_t h;
    CHECK(irohds_dht_get_immutable(nt->n[33].d, nt->now, tg, &h) == 0, "get_immutable");
    wait_done(nt, 33, h);
    evrec *it = find_ev(nt, 33, h, IROHDS_DHT_EV_ITEM, 0);
    CHECK(it && it->v_len == strlen(v) && memcmp(it->v, v, it->v_len) == 0, "immutable found");

    /* mutable, no salt (pkarr's case): seq 1, then 2; old seq and stale cas
     * refused.  One publisher, as with pkarr: a publisher does not store its
     * own put, so another one would find it without the item and rightly
     * (BEP 44) send it no cas. */
    uint8_t pk[32], sk[64], seed[32] = {42};
    crypto_sign_seed_keypair(pk, sk, seed);
    irohds_dht_item m1 = {.v = (const uint8_t *)"5:first", .v_len = 7, .seq = 1};
    irohds_dht_item_sign(&m1, sk);
    st = sim_put(nt, 8, &m1, false, 0);
    CHECK(st && st->n_ok == IROHDS_DHT_K, "mutable put seq 1 on %u", st ? st->n_ok : 0);
    it = sim_get_mutable(nt, 44, pk, NULL);
    CHECK(it && it->seq == 1 && it->v_len == 7 && !memcmp(it->v, "5:first", 7), "seq 1 found");
    irohds_dht_item m2 = {.v = (const uint8_t *)"6:second", .v_len = 8, .seq = 2};
    irohds_dht_item_sign(&m2, sk);
    st = sim_put(nt, 8, &m2, true, 1);
    CHECK(st && st->n_ok == IROHDS_DHT_K && st->seen_seq == 1, "seq 2 with cas 1 on %u",
          st ? st->n_ok : 0);
    it = sim_get_mutable(nt, 45, pk, NULL);
    CHECK(it && it->seq == 2 && it->v_len == 8 && !memcmp(it->v, "6:second", 8), "seq 2 found");
    st = sim_put(nt, 8, &m1, false, 0);
    CHECK(st && st->n_ok == 0 && st->n_failed > 0 && st->error == 302 && st->seen_seq == 2,
          "old seq refused: ok %u err %d", st ? st->n_ok : 99, st ? st->error : 0);
    irohds_dht_item m3 = {.v = (const uint8_t *)"5:third", .v_len = 7, .seq = 3};
    irohds_dht_item_sign(&m3, sk);
    st = sim_put(nt, 8, &m3, true, 1);
    CHECK(st && st->n_ok == 0 && st->error == 301, "stale cas refused: ok %u err %d",
          st ? st->n_ok : 99, st ? st->error : 0);
    it = sim_get_mutable(nt, 46, pk, NULL);
    CHECK(it && it->seq == 2, "still seq 2");

    /* with a salt: another target, the same key */
    irohds_dht_item ms = {.v = (const uint8_t *)"4:salt", .v_len = 6, .seq = 1,
                          .salt = (const uint8_t *)"foobar", .salt_len = 6};
    irohds_dht_item_sign(&ms, sk);
    st = sim_put(nt, 12, &ms, false, 0);
    CHECK(st && st->n_ok == IROHDS_DHT_K, "salted put on %u", st ? st->n_ok : 0);
    it = sim_get_mutable(nt, 47, pk, "foobar");
    CHECK(it && it->seq == 1 && it->v_len == 6 && !memcmp(it->v, "4:salt", 6), "salted found");
    it = sim_get_mutable(nt, 47, pk, "other");
    CHECK(it == NULL, "another salt finds nothing");
}

static void sim_persistence(net *nt, int from, int slot)
{
    static uint8_t blob[65536];
    size_t len;
    irohds_dht *d = nt->n[from].d;
    CHECK(irohds_dht_save_nodes(d, blob, 10, &len) == -ENOBUFS && len > 28, "size asked");
    CHECK(irohds_dht_save_nodes(d, blob, sizeof blob, &len) == 0, "saved");
    uint8_t id[20];
    CHECK(irohds_dht_saved_id(blob, len, id) == 0 && memcmp(id, irohds_dht_id(d), 20) == 0,
          "saved id");
    blob[len - 1] ^= 0;
    CHECK(irohds_dht_saved_id(blob, len - 1, id) == -EBADMSG, "truncated blob refused");

    /* the daemon's restart: the saved id and nodes give the same table */
    irohds_dht_config c;
    sim_addr(nt, slot, AF_INET);
    sim_config(&c, AF_INET, slot, true, &nt->n[slot]);
    c.has_id = true;
    memcpy(c.id, id, 20);
    irohds_dht *same = node_with(&c);
    CHECK(irohds_dht_load_nodes(same, nt->now, blob, len, NULL) == 0, "loaded");
    static irohds_dht_node a[1280], b[1280];
    size_t na = irohds_dht_nodes_get(d, NULL, a, 1280), nb = irohds_dht_nodes_get(same, NULL, b, 1280);
    size_t hits = 0;
    for (size_t i = 0; i < na; i++)
        for (size_t j = 0; j < nb; j++)
            hits += memcmp(a[i].id, b[j].id, 20) == 0 && irohds_dht_addr_eq(&a[i].addr, &b[j].addr);
    CHECK(na > IROHDS_DHT_K && na == nb && hits == na, "restored %zu of %zu nodes", hits, na);
    static uint8_t blob2[65536];
    size_t len2;
    CHECK(irohds_dht_save_nodes(same, blob2, sizeof blob2, &len2) == 0 && len2 == len,
          "saved again: %zu bytes, was %zu", len2, len);
    irohds_dht_free(same);

    /* a new node (its own id) at another address, seeded only from the blob */
    c.has_id = false;
    irohds_dht *fresh = node_with(&c);
    CHECK(irohds_dht_load_nodes(fresh, nt->now, blob, len, id) == 0, "loaded");
    irohds_dht_stats st;
    irohds_dht_stats_get(fresh, &st);
    CHECK(st.nodes_questionable >= IROHDS_DHT_K && st.nodes_good == 0,
          "restored nodes are not confirmed yet: %zu", st.nodes_questionable);
    nt->n[slot].d = fresh;
    if (slot >= nt->nn)
        nt->nn = slot + 1;
    irohds_dht_periodic(fresh, nt->now);
    drain(nt, slot);
    net_run(nt, 60000);
    irohds_dht_stats_get(fresh, &st);
    CHECK(st.nodes_good >= IROHDS_DHT_K, "restored node bootstrapped: %zu good", st.nodes_good);
    uint8_t bad[40] = "IRDH";
    CHECK(irohds_dht_load_nodes(fresh, nt->now, bad, sizeof bad, NULL) == -EBADMSG, "bad blob");
}

static void sim_read_only(net *nt, int ro)
{
    sim_add(nt, ro, AF_INET, true, true);
    net_run(nt, 60000);
    int holders = 0;
    for (int i = 0; i < nt->nn; i++) {
        if (!nt->n[i].d || i == ro)
            continue;
        static irohds_dht_node ns[1280];
        size_t n = irohds_dht_nodes_get(nt->n[i].d, NULL, ns, 1280);
        for (size_t j = 0; j < n; j++)
            holders += memcmp(ns[j].id, irohds_dht_id(nt->n[ro].d), 20) == 0;
    }
    CHECK(holders == 0, "read-only node in %d tables", holders);
    irohds_dht_stats st;
    irohds_dht_stats_get(nt->n[ro].d, &st);
    CHECK(st.nodes_good >= IROHDS_DHT_K, "read-only node knows %zu good nodes", st.nodes_good);
    uint8_t ih[20];
    irohds_dht_sha1("namespace", 9, ih);
    uint32_t h;
    size_t mark = nt->nev;
    irohds_dht_get_peers(nt->n[ro].d, nt->now, ih, &h);
    wait_done(nt, ro, h);
    evrec *p = find_ev(nt, ro, h, IROHDS_DHT_EV_PEERS, mark);
    CHECK(p && p->n_peers >= 1, "read-only node finds peers");
}

/* A hostile source floods node `victim` with pings and junk in one
 * instant: it answers at most its source budget, counts the rest, and
 * still finds the k closest nodes afterwards. */
static void sim_flood(net *nt, int victim)
{
    struct sockaddr_in evil = v4("99.9.9.9", 1);
    irohds_dht *d = nt->n[victim].d;
    irohds_dht_stats before, after;
    irohds_dht_stats_get(d, &before);
    const char *ping = "d1:ad2:id20:abcdefghij0123456789e1:q4:ping1:t2:aa1:y1:qe";
    size_t lost = nt->lost;
    for (int i = 0; i < 3000; i++) {
        irohds_dht_receive(d, nt->now, ping, strlen(ping), (struct sockaddr *)&evil, sizeof evil);
        uint8_t junk[64];
        for (size_t j = 0; j < sizeof junk; j++)
            junk[j] = (uint8_t)net_rand(nt);
        irohds_dht_receive(d, nt->now, junk, 1 + i % 64, (struct sockaddr *)&evil, sizeof evil);
    }
    drain(nt, victim);
    irohds_dht_stats_get(d, &after);
    size_t answered = nt->lost - lost; /* replies to an address outside the network */
    CHECK(answered == 100, "flood: %zu answers to the attacker", answered);
    CHECK(after.dropped_rate - before.dropped_rate == 2900 &&
              after.dropped_malformed - before.dropped_malformed == 3000,
          "flood counted: rate %llu malformed %llu",
          (unsigned long long)(after.dropped_rate - before.dropped_rate),
          (unsigned long long)(after.dropped_malformed - before.dropped_malformed));
    nt->lost = lost;
    check_lookups(nt, victim, -1, 5, "after the flood");
}

static void test_sim_v4(void)
{
    enum { N = 60, RO = 61, RESTORED = 62 };
    net *nt = calloc(1, sizeof *nt);
    nt->rng = 0x9e3779b97f4a7c15ull;
    nt->now = T0;
    /* even nodes know their ip; odd ones learn it from the "ip" votes */
    for (int i = 0; i < N; i++)
        sim_add(nt, i, AF_INET, i % 2 == 0, false);
    net_run(nt, 3 * MIN);
    check_tables(nt, 0, -1, "IPv4 bootstrap");
    int match = 0, changed = 0;
    for (int i = 0; i < N; i++)
        match += irohds_dht_id_matches_ip(irohds_dht_id(nt->n[i].d), AF_INET, sim_ip(&nt->n[i]));
    for (size_t i = 0; i < nt->nev; i++)
        changed += nt->ev[i].type == IROHDS_DHT_EV_EXTERNAL && nt->ev[i].id_changed;
    CHECK(match == N && changed == N / 2, "BEP 42 ids: %d fit, %d changed by votes", match, changed);
    /* no settling time: stale ids of the nodes that changed theirs are fine */
    check_lookups(nt, 17, -1, 20, "IPv4");
    sim_peers(nt);
    sim_items(nt);
    sim_flood(nt, 20);
    sim_read_only(nt, RO);
    sim_persistence(nt, 12, RESTORED);
    irohds_dht_stats st;
    uint64_t unsolicited = 0, malformed = 0;
    for (int i = 0; i < nt->nn; i++) {
        if (!nt->n[i].d || i == 20)
            continue;
        irohds_dht_stats_get(nt->n[i].d, &st);
        unsolicited += st.dropped_unsolicited;
        malformed += st.dropped_malformed;
    }
    CHECK(malformed == 0 && nt->lost == 0, "malformed %llu, lost %zu", (unsigned long long)malformed,
          nt->lost);
    printf("sim v4: %d nodes, %zu events, %llu late replies\n", nt->nn, nt->nev,
           (unsigned long long)unsolicited);
    net_free(nt);
    free(nt);
}

static void test_sim_v6(void)
{
    enum { N = 24 };
    net *nt = calloc(1, sizeof *nt);
    nt->rng = 0x1234567887654321ull;
    nt->now = T0;
    for (int i = 0; i < N; i++)
        sim_add(nt, i, AF_INET6, true, false);
    net_run(nt, 3 * MIN);
    check_tables(nt, 0, -1, "IPv6 bootstrap");
    check_lookups(nt, 3, -1, 10, "IPv6");
    uint8_t ih[20] = {6, 6, 6};
    uint32_t h;
    irohds_dht_announce(nt->n[4].d, nt->now, ih, 9000, false, &h);
    wait_done(nt, 4, h);
    size_t mark = nt->nev;
    irohds_dht_get_peers(nt->n[20].d, nt->now, ih, &h);
    wait_done(nt, 20, h);
    evrec *p = find_ev(nt, 20, h, IROHDS_DHT_EV_PEERS, mark);
    CHECK(p && p->n_peers == 1 && p->peers[0].family == AF_INET6 && p->peers[0].port == 9000 &&
              memcmp(p->peers[0].ip, sim_ip(&nt->n[4]), 16) == 0,
          "IPv6 peer found");
    net_free(nt);
    free(nt);
}

/* BEP 51: num counts the info-hashes stored, samples are up to 20 distinct
 * ones of them (libtorrent drops a reply without these keys). */
static void test_samples(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    irohds_dht *d = node_with(&c);
    struct sockaddr_in a = v4("50.1.2.3", 4000);
    enum { N = 25 };
    uint8_t ihs[N][20];
    for (int i = 0; i < N; i++) {
        memset(ihs[i], 0, 20);
        ihs[i][0] = (uint8_t)(7 * i + 1);
        ihs[i][19] = (uint8_t)i;
        irohds_dht_msg q = {.method = IROHDS_DHT_M_GET_PEERS, .info_hash = ihs[i]}, r;
        ask(d, T0, &a, &q, &r);
        uint8_t tok[IROHDS_DHT_TOKEN_MAX];
        size_t tl = r.token_len;
        memcpy(tok, r.token, tl);
        q = (irohds_dht_msg){.method = IROHDS_DHT_M_ANNOUNCE_PEER, .info_hash = ihs[i],
                             .token = tok, .token_len = tl, .has_port = true, .port = 1000 + i};
        CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'r', "samples: announce %d", i);
    }
    uint8_t tgt[20] = {1};
    irohds_dht_msg q = {.method = IROHDS_DHT_M_OTHER, .q = (const uint8_t *)"sample_infohashes",
                        .q_len = 17, .target = tgt},
                   r;
    CHECK(ask(d, T0, &a, &q, &r) == 1 && r.y == 'r' && r.has_num && r.num == N &&
              r.samples_len == 20 * 20,
          "samples: num %lld, %zu bytes of samples", (long long)r.num, r.samples_len);
    int known = 0, dup = 0;
    for (size_t i = 0; i < r.samples_len / 20; i++) {
        for (int k = 0; k < N; k++)
            known += memcmp(r.samples + 20 * i, ihs[k], 20) == 0;
        for (size_t j = 0; j < i; j++)
            dup += memcmp(r.samples + 20 * i, r.samples + 20 * j, 20) == 0;
    }
    CHECK(known == 20 && dup == 0, "samples: %d stored, %d repeated", known, dup);
    irohds_dht_free(d);
}

/*
 * The caller's clock read once per turn: a search started with a fresher
 * reading than the one periodic then gets (the daemon's pump did that) must
 * not time out at once.  Before the core clamped its clock, now - started
 * wrapped around and every search begun in that turn ended -ETIMEDOUT.
 */
static void test_clock_backwards(void)
{
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    irohds_dht *d = node_with(&c);
    struct sockaddr_in r = v4("10.1.1.1", 6881);
    irohds_dht_add_router(d, (struct sockaddr *)&r, sizeof r);
    uint8_t ih[20] = {7};
    uint32_t h;
    CHECK(irohds_dht_get_peers(d, T0 + 1000, ih, &h) == 0, "clock: get_peers");
    irohds_dht_periodic(d, T0 + 999); /* read before the search started */
    irohds_dht_event ev;
    bool done = false;
    drain_packets(d);
    while (irohds_dht_next_event(d, &ev))
        done |= ev.type == IROHDS_DHT_EV_DONE && ev.handle == h;
    CHECK(!done, "clock: a search is not over 1 ms before it began");
    /* and it still ends after search_timeout_ms of the larger clock */
    irohds_dht_periodic(d, T0 + 1000 + c.search_timeout_ms);
    while (irohds_dht_next_event(d, &ev))
        if (ev.type == IROHDS_DHT_EV_DONE && ev.handle == h)
            done = ev.status == -ETIMEDOUT || ev.status == -ENETUNREACH;
    CHECK(done, "clock: the search ends by its timeout");
    irohds_dht_free(d);
}

/* The peers of ih a PEERS event of (node, handle) after mark reported:
 * is ip:port among them? */
static bool sim_found_peer(net *nt, size_t mark, int node, uint32_t h, const uint8_t *ip,
                           uint16_t port)
{
    for (size_t i = mark; i < nt->nev; i++) {
        evrec *e = &nt->ev[i];
        if (e->node != node || e->handle != h || e->type != IROHDS_DHT_EV_PEERS)
            continue;
        for (size_t j = 0; j < e->n_peers; j++)
            if (memcmp(e->peers[j].ip, ip, 4) == 0 && e->peers[j].port == port)
                return true;
    }
    return false;
}

/*
 * A DHT of two nodes, each pinging the other (no routers).  Whatever one
 * announces or puts is stored on the other alone, so a search has to read
 * its own node's storage to find it (libtorrent's does not; jech/dht's
 * get_peers does): announces, mutable and immutable items.  The same
 * holds in any DHT where the searcher is one of the k nodes closest to the
 * target, it only shows first here.
 */
static void test_sim_two_nodes(void)
{
    net *nt = calloc(1, sizeof *nt);
    nt->rng = 0x5eed5eed5eed5eedull;
    nt->now = T0;
    for (int i = 0; i < 2; i++) {
        irohds_dht_config c;
        sim_addr(nt, i, AF_INET);
        sim_config(&c, AF_INET, 100 + i, true, &nt->n[i]);
        nt->n[i].d = node_with(&c);
        nt->nn = i + 1;
    }
    irohds_dht_ping(nt->n[1].d, nt->now, (struct sockaddr *)&nt->n[0].addr, nt->n[0].alen);
    drain(nt, 1);
    net_run(nt, 10000);
    irohds_dht_stats st;
    irohds_dht_stats_get(nt->n[0].d, &st);
    CHECK(st.nodes_good == 1, "two nodes: 0 holds 1 (%zu good)", st.nodes_good);

    uint8_t ih[20];
    irohds_dht_sha1("two", 3, ih);
    uint32_t h;
    CHECK(irohds_dht_announce(nt->n[0].d, nt->now, ih, 1000, false, &h) == 0, "announce 0");
    evrec *done = wait_done(nt, 0, h);
    evrec *stored = find_ev(nt, 0, h, IROHDS_DHT_EV_STORED, 0);
    CHECK(done && stored && stored->n_ok == 1, "0's announce stored on 1");
    CHECK(irohds_dht_announce(nt->n[1].d, nt->now, ih, 1001, false, &h) == 0, "announce 1");
    wait_done(nt, 1, h);
    /* 1's announce (stored on 0 only) is found by 0's get_peers and by 0's
     * next announce, and 0's by 1 */
    size_t mark = nt->nev;
    CHECK(irohds_dht_get_peers(nt->n[0].d, nt->now, ih, &h) == 0, "get_peers 0");
    done = wait_done(nt, 0, h);
    CHECK(done && sim_found_peer(nt, mark, 0, h, sim_ip(&nt->n[1]), 1001),
          "two nodes: 0 finds the peer 1 announced");
    mark = nt->nev;
    CHECK(irohds_dht_announce(nt->n[0].d, nt->now, ih, 1000, false, &h) == 0, "announce 0 again");
    wait_done(nt, 0, h);
    CHECK(sim_found_peer(nt, mark, 0, h, sim_ip(&nt->n[1]), 1001),
          "two nodes: 0's announce reports 1's peer");
    mark = nt->nev;
    CHECK(irohds_dht_get_peers(nt->n[1].d, nt->now, ih, &h) == 0, "get_peers 1");
    wait_done(nt, 1, h);
    CHECK(sim_found_peer(nt, mark, 1, h, sim_ip(&nt->n[0]), 1000),
          "two nodes: 1 finds the peer 0 announced");

    /* a mutable item put by 0 lives on 1 only: 1 gets it */
    uint8_t pk[32], sk[64], seed[32] = {2, 2};
    crypto_sign_seed_keypair(pk, sk, seed);
    const char *v = "5:two-1";
    irohds_dht_item it = {.v = (const uint8_t *)v, .v_len = strlen(v), .is_mutable = true,
                          .seq = 3};
    CHECK(irohds_dht_item_sign(&it, sk) == 0, "sign");
    stored = sim_put(nt, 0, &it, false, 0);
    CHECK(stored && stored->n_ok == 1, "two nodes: mutable put stored on 1");
    evrec *got = sim_get_mutable(nt, 1, pk, NULL);
    CHECK(got && got->seq == 3 && got->v_len == it.v_len && !memcmp(got->v, v, it.v_len),
          "two nodes: 1 gets the mutable item from its own storage");
    /* asked with seq 3: nothing newer here, so nothing reported */
    mark = nt->nev;
    CHECK(irohds_dht_get_mutable(nt->n[1].d, nt->now, pk, NULL, 0, true, 3, &h) == 0, "get seq");
    wait_done(nt, 1, h);
    CHECK(!find_ev(nt, 1, h, IROHDS_DHT_EV_ITEM, mark), "two nodes: seq 3 is not newer than 3");

    /* an immutable one too, and the search is over at once */
    const char *iv = "9:two-imm-1";
    irohds_dht_item im = {.v = (const uint8_t *)iv, .v_len = strlen(iv)};
    stored = sim_put(nt, 0, &im, false, 0);
    CHECK(stored && stored->n_ok == 1, "two nodes: immutable put stored on 1");
    uint8_t tg[20];
    irohds_dht_item_target(&im, tg);
    mark = nt->nev;
    irohds_dht_stats_get(nt->n[1].d, &st);
    uint64_t sent = st.packets_out;
    CHECK(irohds_dht_get_immutable(nt->n[1].d, nt->now, tg, &h) == 0, "get_immutable 1");
    done = wait_done(nt, 1, h);
    evrec *item = find_ev(nt, 1, h, IROHDS_DHT_EV_ITEM, mark);
    irohds_dht_stats_get(nt->n[1].d, &st);
    CHECK(done && item && item->v_len == im.v_len && !memcmp(item->v, iv, im.v_len),
          "two nodes: 1 gets the immutable item from its own storage");
    CHECK(st.packets_out == sent, "two nodes: a local immutable hit asks nobody (%llu sent)",
          (unsigned long long)(st.packets_out - sent));
    net_free(nt);
    free(nt);
}

int main(int argc, char **argv)
{
    testdata = argc > 1 ? argv[1] : "../shared/testdata";
    if (sodium_init() < 0)
        return 1;
    test_sha1();
    test_bep42();
    test_bep44();
    test_krpc_vectors();
    test_answers();
    test_tokens();
    test_items();
    test_flood();
    test_bad_input();
    test_bounds();
    test_scripted();
    test_sim_v4();
    test_sim_v6();
    test_sim_two_nodes();
    test_clock_backwards();
    test_samples();
    return check_summary();
}
