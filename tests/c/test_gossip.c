/*
 * test_gossip: the iroh-gossip codec and state machine.
 *
 * Codec: no encoded vectors of iroh-gossip exist, so every expected byte
 * string below is written by hand from the layout rules in
 * testdata/iroh-gossip/wire_layout.json (enum = varint variant index, then
 * the body; struct fields in order; Option = 00 | 01 + value; bytes and
 * Vec = varint length then items; [u8; 32] raw; u16 varint), each with the
 * derivation beside it.  They must decode to the right fields and re-encode
 * to the same bytes; damaged forms must be refused.
 *
 * State machine: single-node unit checks, then a simulated network (a
 * virtual clock, per-link latency, optional loss as retransmission delay,
 * crashes) of 60 nodes driven only through the public API.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "gossip/gossip.h"
#include "hash/blake3.h"
#include "util/util.h"

/* Three peer ids, 32 bytes each: aa.., bb.., cc.. */
#define ID_A "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
#define ID_B "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
#define ID_C "cccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccccc"
static uint8_t id_a[32], id_b[32], id_c[32];

/* BLAKE3("hello"), read from testdata/iroh-blobs/hash_and_ticket.json. */
static char hello_hash_hex[65];

static size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex) / 2;
    if (n > cap || irohds_hex_decode(hex, out, n) != 0) {
        printf("bad hex in test: %s\n", hex);
        abort();
    }
    return n;
}

/* Concatenate hex pieces (NULL-terminated list) into one string. */
static const char *hexcat(char *buf, size_t cap, ...)
{
    va_list ap;
    va_start(ap, cap);
    buf[0] = 0;
    for (const char *p; (p = va_arg(ap, const char *));)
        if (strlen(buf) + strlen(p) < cap)
            strcat(buf, p);
    va_end(ap);
    return buf;
}
#define HEX(...) hexcat((char[8192]){0}, 8192, __VA_ARGS__, (const char *)NULL)

static bool load_hello_hash(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/iroh-blobs/hash_and_ticket.json", dir);
    json_object *root = json_object_from_file(path), *h, *v;
    if (!root || !json_object_object_get_ex(root, "blake3_hello", &h) ||
        !json_object_object_get_ex(h, "hash_hex", &v)) {
        json_object_put(root);
        return false;
    }
    snprintf(hello_hash_hex, sizeof hello_hash_hex, "%s", json_object_get_string(v));
    json_object_put(root);
    return strlen(hello_hash_hex) == 64;
}

/* Decode hex, check it re-encodes identically; returns the decode result
 * and leaves the message in *m (which points into *buf). */
static int decode_hex(const char *hex, irohds_gossip_msg *m, uint8_t *buf, size_t *n)
{
    *n = unhex(hex, buf, 8192);
    return irohds_gossip_decode(m, buf, *n);
}

static void check_roundtrip(const char *what, const irohds_gossip_msg *m, const uint8_t *want,
                            size_t n)
{
    uint8_t out[8192];
    size_t len;
    int err = irohds_gossip_encode(m, out, sizeof out, &len);
    CHECK(err == 0 && len == n && memcmp(out, want, n) == 0, "%s re-encodes identically", what);
    /* Every strict prefix is truncated, every extension has trailing bytes. */
    bool all_refused = true;
    irohds_gossip_msg *t = malloc(sizeof *t);
    for (size_t k = 0; k < n; k++)
        if (irohds_gossip_decode(t, want, k) == 0)
            all_refused = false;
    CHECK(all_refused, "%s: every truncation refused", what);
    memcpy(out, want, n);
    out[n] = 0;
    CHECK(irohds_gossip_decode(t, out, n + 1) == -EPROTO, "%s: trailing byte refused", what);
    free(t);
}

static irohds_gossip_msg *M;
static uint8_t B[8192];

static void test_swarm_messages(void)
{
    size_t n;
    /* Join(None): topic Swarm 00, Join 00, None 00 */
    CHECK(decode_hex("000000", M, B, &n) == 0 && M->kind == IROHDS_GOSSIP_JOIN &&
              M->peer.data.ptr == NULL, "Join(None)");
    check_roundtrip("Join(None)", M, B, n);

    /* Join(Some(PeerData [1,2,3])): 00 00, Some 01, len 03, 010203 */
    CHECK(decode_hex("0000" "01" "03" "010203", M, B, &n) == 0 && M->kind == IROHDS_GOSSIP_JOIN &&
              M->peer.data.len == 3 && memcmp(M->peer.data.ptr, "\1\2\3", 3) == 0,
          "Join(Some)");
    check_roundtrip("Join(Some)", M, B, n);

    /* ForwardJoin { PeerInfo { A, None }, ttl 6 }: 00 01, A, 00, 06 */
    CHECK(decode_hex(HEX("0001", ID_A, "00", "06"), M, B, &n) == 0 &&
              M->kind == IROHDS_GOSSIP_FORWARD_JOIN && memcmp(M->peer.id, id_a, 32) == 0 &&
              M->peer.data.ptr == NULL && M->ttl == 6, "ForwardJoin");
    check_roundtrip("ForwardJoin", M, B, n);

    /* ttl 300 = 0b10_0101100: low 7 bits 0x2c | 0x80 = ac, then 300 >> 7 = 02 */
    CHECK(decode_hex(HEX("0001", ID_A, "01", "02", "abcd", "ac02"), M, B, &n) == 0 &&
              M->ttl == 300 && M->peer.data.len == 2 && M->peer.data.ptr[0] == 0xab,
          "ForwardJoin with data, ttl 300");
    check_roundtrip("ForwardJoin ttl 300", M, B, n);

    /* Shuffle { origin B, nodes [ {A, None}, {C, Some([ee])} ], ttl 6 }:
     * 00 02, B, count 02, A 00, C 01 01 ee, 06 */
    CHECK(decode_hex(HEX("0002", ID_B, "02", ID_A, "00", ID_C, "0101ee", "06"), M, B, &n) == 0 &&
              M->kind == IROHDS_GOSSIP_SHUFFLE && memcmp(M->origin, id_b, 32) == 0 &&
              M->n_nodes == 2 && memcmp(M->nodes[0].id, id_a, 32) == 0 &&
              M->nodes[0].data.ptr == NULL && memcmp(M->nodes[1].id, id_c, 32) == 0 &&
              M->nodes[1].data.len == 1 && M->nodes[1].data.ptr[0] == 0xee && M->ttl == 6,
          "Shuffle");
    check_roundtrip("Shuffle", M, B, n);

    /* ShuffleReply { [] }: 00 03 00;  { [ {A, None} ] }: 00 03 01 A 00 */
    CHECK(decode_hex("000300", M, B, &n) == 0 && M->kind == IROHDS_GOSSIP_SHUFFLE_REPLY &&
              M->n_nodes == 0, "ShuffleReply([])");
    check_roundtrip("ShuffleReply([])", M, B, n);
    CHECK(decode_hex(HEX("000301", ID_A, "00"), M, B, &n) == 0 && M->n_nodes == 1,
          "ShuffleReply([A])");
    check_roundtrip("ShuffleReply([A])", M, B, n);

    /* Neighbor { High 00, None 00 };  Neighbor { Low 01, Some 01 len 01 ff } */
    CHECK(decode_hex("00040000", M, B, &n) == 0 && M->kind == IROHDS_GOSSIP_NEIGHBOR &&
              M->priority == IROHDS_GOSSIP_HIGH && !M->peer.data.ptr, "Neighbor(High)");
    check_roundtrip("Neighbor(High)", M, B, n);
    CHECK(decode_hex("0004010101ff", M, B, &n) == 0 && M->priority == IROHDS_GOSSIP_LOW &&
              M->peer.data.len == 1, "Neighbor(Low, data)");
    check_roundtrip("Neighbor(Low)", M, B, n);

    /* Disconnect { alive true 01, _respond false 00 } */
    CHECK(decode_hex("00050100", M, B, &n) == 0 && M->kind == IROHDS_GOSSIP_DISCONNECT &&
              M->alive && !M->respond, "Disconnect");
    check_roundtrip("Disconnect", M, B, n);
}

static void test_gossip_messages(void)
{
    size_t n;
    /* Gossip { id = BLAKE3("hello"), content "hello" (05 68656c6c6f), Swarm 00 round 00 }
     * behind topic Gossip 01, plumtree Gossip 00 */
    const char *hello = "68656c6c6f";
    CHECK(decode_hex(HEX("0100", hello_hash_hex, "05", hello, "0000"), M, B, &n) == 0 &&
              M->kind == IROHDS_GOSSIP_GOSSIP && M->content_len == 5 &&
              memcmp(M->content, "hello", 5) == 0 && M->scope == IROHDS_GOSSIP_SCOPE_SWARM &&
              M->round == 0, "Gossip(Swarm(0))");
    check_roundtrip("Gossip(Swarm(0))", M, B, n);
    /* round 200 = 0xc8: c8 | 80 = c8, 200 >> 7 = 01 */
    CHECK(decode_hex(HEX("0100", hello_hash_hex, "05", hello, "00c801"), M, B, &n) == 0 &&
              M->round == 200, "Gossip(Swarm(200))");
    check_roundtrip("Gossip(Swarm(200))", M, B, n);
    /* Neighbors scope: variant 01, no body */
    CHECK(decode_hex(HEX("0100", hello_hash_hex, "05", hello, "01"), M, B, &n) == 0 &&
              M->scope == IROHDS_GOSSIP_SCOPE_NEIGHBORS, "Gossip(Neighbors)");
    check_roundtrip("Gossip(Neighbors)", M, B, n);

    /* Prune: 01 01 */
    CHECK(decode_hex("0101", M, B, &n) == 0 && M->kind == IROHDS_GOSSIP_PRUNE, "Prune");
    check_roundtrip("Prune", M, B, n);

    /* Graft { None 00, round 03 };  Graft { Some 01 A, round 128 = 80 01 } */
    CHECK(decode_hex("01020003", M, B, &n) == 0 && M->kind == IROHDS_GOSSIP_GRAFT && !M->id &&
              M->round == 3, "Graft(None)");
    check_roundtrip("Graft(None)", M, B, n);
    CHECK(decode_hex(HEX("010201", ID_A, "8001"), M, B, &n) == 0 && M->id &&
              memcmp(M->id, id_a, 32) == 0 && M->round == 128, "Graft(Some)");
    check_roundtrip("Graft(Some)", M, B, n);

    /* IHave([ {A, 1}, {B, 2} ]): 01 03, count 02, A 01, B 02 */
    CHECK(decode_hex(HEX("010302", ID_A, "01", ID_B, "02"), M, B, &n) == 0 &&
              M->kind == IROHDS_GOSSIP_IHAVE && M->n_ihave == 2 &&
              memcmp(M->ihave[1].id, id_b, 32) == 0 && M->ihave[1].round == 2, "IHave");
    check_roundtrip("IHave", M, B, n);
    CHECK(decode_hex("010300", M, B, &n) == 0 && M->n_ihave == 0, "IHave([])");
    check_roundtrip("IHave([])", M, B, n);
}

static int decode_str(const char *hex)
{
    size_t n;
    return decode_hex(hex, M, B, &n);
}

static void test_malformed(void)
{
    const char *hello = "68656c6c6f";
    CHECK(decode_str("") == -EPROTO, "empty frame");
    CHECK(decode_str("02") == -EPROTO, "unknown topic::Message variant 2");
    CHECK(decode_str("0006") == -EPROTO, "unknown hyparview variant 6");
    CHECK(decode_str("0104") == -EPROTO, "unknown plumtree variant 4");
    CHECK(decode_str("00040200") == -EPROTO, "unknown Priority 2");
    CHECK(decode_str(HEX("0100", hello_hash_hex, "05", hello, "02")) == -EPROTO,
          "unknown DeliveryScope 2");
    CHECK(decode_str("8080808010") == -EOVERFLOW, "variant index beyond u32");
    CHECK(decode_str("000002") == -EPROTO, "Option tag 2");
    CHECK(decode_str("01020203") == -EPROTO, "Graft Option tag 2");
    CHECK(decode_str("00050200") == -EPROTO, "bool 2 (alive)");
    CHECK(decode_str("00050002") == -EPROTO, "bool 2 (_respond)");
    CHECK(decode_str(HEX("0001", ID_A, "00", "ffff07")) == -EOVERFLOW, "ttl beyond u16");
    CHECK(decode_str("0101" "00") == -EPROTO, "Prune with a trailing byte");
    /* hostile counts: 129 nodes (81 01) is over the bound; 100 (64) with no
     * bytes behind cannot be there; 2^32-1 IHaves */
    CHECK(decode_str(HEX("00038101", ID_A, "00")) == -EOVERFLOW, "129 nodes");
    CHECK(decode_str(HEX("000364", ID_A, "00")) == -EPROTO, "100 nodes in 33 bytes");
    CHECK(decode_str("0103ffffffff0f") == -EOVERFLOW, "2^32-1 IHaves");
    CHECK(decode_str("0000" "01" "ffffffffffffffffff01") == -EOVERFLOW, "PeerData length 2^64-1");
    CHECK(decode_str(HEX("0100", hello_hash_hex, "06", hello, "0000")) == -EPROTO,
          "content length past the end");
    /* id != BLAKE3(content): one bit of the id flipped, then the content */
    char bad[65];
    memcpy(bad, hello_hash_hex, 65);
    bad[0] = bad[0] == '0' ? '1' : '0';
    CHECK(decode_str(HEX("0100", bad, "05", hello, "0000")) == -EBADMSG, "id != BLAKE3(content)");
    CHECK(decode_str(HEX("0100", hello_hash_hex, "05", "68656c6c6e", "0000")) == -EBADMSG,
          "content changed under its id");
    CHECK(M->kind == 0 && M->content == NULL, "failed decode leaves a zeroed message");
}

static void test_encode_bounds(void)
{
    uint8_t out[64];
    size_t len;
    memset(M, 0, sizeof *M);
    M->kind = IROHDS_GOSSIP_SHUFFLE_REPLY;
    M->n_nodes = IROHDS_GOSSIP_MAX_NODES + 1;
    CHECK(irohds_gossip_encode(M, out, sizeof out, &len) == -EINVAL, "too many nodes");
    M->kind = (irohds_gossip_kind)7;
    CHECK(irohds_gossip_encode(M, out, sizeof out, &len) == -EINVAL, "bad kind");
    M->kind = IROHDS_GOSSIP_GRAFT;
    M->id = id_a;
    M->round = 1;
    CHECK(irohds_gossip_encode(M, out, 10, &len) == -ENOBUFS && len == 36, "ENOBUFS sizes");
    /* Prune as a frame: u32 BE length 00000002, then 01 01 */
    M->kind = IROHDS_GOSSIP_PRUNE;
    CHECK(irohds_gossip_frame_encode(M, 4096, out, sizeof out, &len) == 0 && len == 6 &&
              memcmp(out, "\0\0\0\2\1\1", 6) == 0, "Prune frame");
    CHECK(irohds_gossip_frame_encode(M, 2, out, sizeof out, &len) == -EMSGSIZE,
          "a body of max_body bytes is refused");
    /* StreamHeader { topic A }: length 00000020, then the 32 bytes */
    uint8_t hdr[IROHDS_GOSSIP_STREAM_HEADER_LEN], want[36], topic[32];
    irohds_gossip_stream_header(hdr, id_a);
    unhex(HEX("00000020", ID_A), want, sizeof want);
    CHECK(memcmp(hdr, want, 36) == 0, "StreamHeader frame");
    CHECK(irohds_gossip_stream_header_decode(hdr + 4, 32, topic) == 0 &&
              memcmp(topic, id_a, 32) == 0, "StreamHeader decode");
    CHECK(irohds_gossip_stream_header_decode(hdr + 4, 31, topic) == -EPROTO, "short StreamHeader");
}

static void test_frame_reader(void)
{
    irohds_gossip_frame_reader *r = malloc(sizeof *r);
    irohds_gossip_frame_reader_init(r, 0);
    /* three frames: Prune (2 bytes), an empty body, Disconnect (4 bytes) */
    uint8_t in[64];
    size_t n = unhex("00000002" "0101" "00000000" "00000004" "00050100", in, sizeof in);
    size_t lens[3], got = 0;
    uint8_t first[8];
    for (size_t i = 0; i < n;) {
        const uint8_t *f;
        size_t fl;
        ssize_t k = irohds_gossip_frame_reader_feed(r, in + i, 1, &f, &fl); /* a byte at a time */
        CHECK(k == 1, "one byte consumed");
        i += 1;
        if (f && got < 3) {
            if (got == 0)
                memcpy(first, f, fl);
            lens[got++] = fl;
        }
    }
    CHECK(got == 3 && lens[0] == 2 && lens[1] == 0 && lens[2] == 4 &&
              memcmp(first, "\1\1", 2) == 0, "frames reassembled from single bytes");
    /* all at once: stops after each frame */
    irohds_gossip_frame_reader_init(r, 0);
    const uint8_t *f;
    size_t fl;
    ssize_t k = irohds_gossip_frame_reader_feed(r, in, n, &f, &fl);
    CHECK(k == 6 && f && fl == 2, "feed stops after the first frame");
    /* 4097 is over the limit; 4096 is not */
    irohds_gossip_frame_reader_init(r, 0);
    k = irohds_gossip_frame_reader_feed(r, "\0\0\x10\x01", 4, &f, &fl);
    CHECK(k == -EMSGSIZE, "length 4097 refused");
    k = irohds_gossip_frame_reader_feed(r, "\0", 1, &f, &fl);
    CHECK(k == -EMSGSIZE, "reader stays failed");
    irohds_gossip_frame_reader_init(r, 0);
    k = irohds_gossip_frame_reader_feed(r, "\0\0\x10\x00", 4, &f, &fl);
    CHECK(k == 4 && !f, "length 4096 accepted");
    irohds_gossip_frame_reader_init(r, 512);
    k = irohds_gossip_frame_reader_feed(r, "\xff\xff\xff\xff", 4, &f, &fl);
    CHECK(k == -EMSGSIZE, "length 2^32-1 refused");
    free(r);
}

static void test_addr_info(void)
{
    irohds_gossip_addr_info a;
    uint8_t in[1024], out[1024];
    size_t n, len;
    /* { relay_url None 00, [ V4 00 01020304 port 443 = bb 03 ] }, count 01 */
    n = unhex("00" "01" "00" "01020304" "bb03", in, sizeof in);
    CHECK(irohds_gossip_addr_info_decode(&a, in, n) == 0 && !a.relay_url && a.n_addrs == 1 &&
              !a.addrs[0].v6 && memcmp(a.addrs[0].ip, "\1\2\3\4", 4) == 0 &&
              a.addrs[0].port == 443, "AddrInfo v4");
    CHECK(irohds_gossip_addr_info_encode(&a, out, sizeof out, &len) == 0 && len == n &&
              memcmp(out, in, n) == 0, "AddrInfo v4 re-encodes");
    /* { Some "https://r.x/" (0c + ascii), [ V4 10.0.0.1:1, V6 ::1 port 5 ] } */
    n = unhex("01" "0c" "68747470733a2f2f722e782f" "02" "00" "0a000001" "01"
              "01" "00000000000000000000000000000001" "05", in, sizeof in);
    CHECK(irohds_gossip_addr_info_decode(&a, in, n) == 0 && a.relay_url_len == 12 &&
              memcmp(a.relay_url, "https://r.x/", 12) == 0 && a.n_addrs == 2 && a.addrs[1].v6 &&
              a.addrs[1].ip[15] == 1 && a.addrs[1].port == 5, "AddrInfo relay + v4 + v6");
    CHECK(irohds_gossip_addr_info_encode(&a, out, sizeof out, &len) == 0 && len == n &&
              memcmp(out, in, n) == 0, "AddrInfo relay re-encodes");
    /* Unsorted, with a duplicate: [V6 ::1:5, V4 1.2.3.4:80, V4 1.2.3.4:8, V4 1.2.3.3:9999,
     * V4 1.2.3.4:8] decodes to the BTreeSet order 1.2.3.3:9999, 1.2.3.4:8,
     * 1.2.3.4:80, [::1]:5.  Ports: 80 = 50, 8 = 08, 9999 = 0x270f -> 8f 4e. */
    n = unhex("00" "05" "01" "00000000000000000000000000000001" "05"
              "00" "01020304" "50" "00" "01020304" "08" "00" "01020303" "8f4e"
              "00" "01020304" "08", in, sizeof in);
    CHECK(irohds_gossip_addr_info_decode(&a, in, n) == 0 && a.n_addrs == 4, "unsorted set");
    n = unhex("00" "04" "00" "01020303" "8f4e" "00" "01020304" "08" "00" "01020304" "50"
              "01" "00000000000000000000000000000001" "05", in, sizeof in);
    CHECK(irohds_gossip_addr_info_encode(&a, out, sizeof out, &len) == 0 && len == n &&
              memcmp(out, in, n) == 0, "set encodes in Ord order");
    CHECK(irohds_gossip_addr_info_decode(&a, NULL, 0) == 0 && !a.relay_url && a.n_addrs == 0,
          "empty PeerData is the default AddrInfo");
    /* refusals: 17 addresses, a 257-byte url, bad UTF-8, bad tag, trailing */
    n = unhex("00" "11", in, sizeof in);
    for (int i = 0; i < 17; i++)
        n += unhex("000102030401", in + n, sizeof in - n);
    CHECK(irohds_gossip_addr_info_decode(&a, in, n) == -EOVERFLOW, "17 addresses");
    n = unhex("01" "8102", in, sizeof in);
    memset(in + n, 'a', 257);
    in[n + 257] = 0;
    CHECK(irohds_gossip_addr_info_decode(&a, in, n + 258) == -EOVERFLOW, "url of 257 bytes");
    CHECK(irohds_gossip_addr_info_decode(&a, (const uint8_t *)"\1\2\xc0\x80\0", 5) == -EPROTO,
          "overlong UTF-8");
    CHECK(irohds_gossip_addr_info_decode(&a, (const uint8_t *)"\1\3\xed\xa0\x80\0", 6) == -EPROTO,
          "UTF-16 surrogate in UTF-8");
    CHECK(irohds_gossip_addr_info_decode(&a, (const uint8_t *)"\0\1\2\1\2\3\4\5", 8) == -EPROTO,
          "SocketAddr variant 2");
    CHECK(irohds_gossip_addr_info_decode(&a, (const uint8_t *)"\0\0\0", 3) == -EPROTO,
          "trailing byte");
}

static void test_codec(const char *dir)
{
    unhex(ID_A, id_a, 32);
    unhex(ID_B, id_b, 32);
    unhex(ID_C, id_c, 32);
    CHECK(load_hello_hash(dir), "BLAKE3(\"hello\") from testdata");
    M = malloc(sizeof *M);
    test_swarm_messages();
    test_gossip_messages();
    test_malformed();
    test_encode_bounds();
    test_frame_reader();
    test_addr_info();
    free(M);
}

/* ============================================================ unit checks */

static const uint64_t SEED = 42;

static void node_id(int i, uint8_t id[32])
{
    char name[32];
    snprintf(name, sizeof name, "node %d", i);
    irohds_blake3(name, strlen(name), id);
}

/* Drain g's actions; count each type; keep the last SEND of kind `want`
 * (decoded into *last, its frame copied to lastbuf). */
typedef struct drained {
    int n[8];
    int sends_of[32];
    uint8_t to[32];
    uint8_t frame[IROHDS_GOSSIP_FRAME_HEADER + IROHDS_GOSSIP_MAX_MESSAGE_SIZE];
    size_t frame_len;
    uint8_t content[IROHDS_GOSSIP_MAX_MESSAGE_SIZE];
    size_t content_len;
} drained;

static void drain(irohds_gossip *g, drained *d, irohds_gossip_kind want)
{
    memset(d, 0, sizeof *d);
    irohds_gossip_action a;
    static irohds_gossip_msg m;
    while (irohds_gossip_poll(g, &a)) {
        d->n[a.type]++;
        if (a.type == IROHDS_GOSSIP_ACT_SEND &&
            irohds_gossip_decode(&m, a.data + 4, a.len - 4) == 0) {
            d->sends_of[m.kind]++;
            if (m.kind == want) {
                memcpy(d->to, a.peer, 32);
                memcpy(d->frame, a.data, a.len);
                d->frame_len = a.len;
            }
        }
        if (a.type == IROHDS_GOSSIP_ACT_DELIVER) {
            memcpy(d->content, a.data, a.len);
            d->content_len = a.len;
        }
    }
}

/* Hand every SEND of a to b and of b to a until both are quiet. */
static int ferry(irohds_gossip *a, const uint8_t *ida, irohds_gossip *b, const uint8_t *idb,
                 const uint8_t *topic, uint64_t now, int *ups)
{
    int moved = 0;
    for (int round = 0; round < 20; round++) {
        int n = 0;
        irohds_gossip *from[2] = {a, b}, *to[2] = {b, a};
        const uint8_t *fid[2] = {ida, idb};
        for (int k = 0; k < 2; k++) {
            irohds_gossip_action act;
            uint8_t buf[8][4200];
            size_t lens[8];
            int m = 0;
            while (irohds_gossip_poll(from[k], &act)) {
                if (act.type == IROHDS_GOSSIP_ACT_NEIGHBOR_UP)
                    (*ups)++;
                if (act.type == IROHDS_GOSSIP_ACT_SEND && m < 8) {
                    memcpy(buf[m], act.data, act.len);
                    lens[m++] = act.len;
                }
            }
            for (int j = 0; j < m; j++)
                irohds_gossip_handle_frame(to[k], now, topic, fid[k], buf[j] + 4, lens[j] - 4);
            n += m;
        }
        moved += n;
        if (!n)
            return moved;
    }
    return -1;
}

static void test_two_nodes(void)
{
    uint8_t ida[32], idb[32], topic[32] = {7};
    node_id(1, ida);
    node_id(2, idb);
    irohds_gossip *a, *b;
    CHECK(irohds_gossip_init(&a, ida, NULL, SEED) == 0 && irohds_gossip_init(&b, idb, NULL, SEED + 1) == 0,
          "init");
    uint8_t pd[] = {0, 1, 0, 127, 0, 0, 1, 0x90, 0x03};
    CHECK(irohds_gossip_set_peer_data(a, pd, sizeof pd) == 0, "set peer data");
    CHECK(irohds_gossip_join(b, 0, topic, NULL, 0) == 0, "b waits");
    irohds_gossip_peer boot = {{0}, NULL, 0};
    memcpy(boot.id, idb, 32);
    CHECK(irohds_gossip_join(a, 0, topic, &boot, 1) == 0, "a joins via b");
    int ups = 0;
    int moved = ferry(a, ida, b, idb, topic, 1, &ups);
    CHECK(moved == 3, "join, neighbor request, neighbor reply (%d)", moved);
    CHECK(ups == 2, "NEIGHBOR_UP on both sides (%d)", ups);
    uint8_t nb[8][32];
    CHECK(irohds_gossip_neighbors(a, topic, nb, 8) == 1 && memcmp(nb[0], idb, 32) == 0 &&
              irohds_gossip_neighbors(b, topic, nb, 8) == 1 && memcmp(nb[0], ida, 32) == 0,
          "each is the other's neighbour");

    /* a broadcasts: b delivers once; the same frame again is a duplicate
     * and b prunes a */
    drained *d = malloc(sizeof *d);
    CHECK(irohds_gossip_broadcast(a, 2, topic, "hello", 5, IROHDS_GOSSIP_SCOPE_SWARM) == 0,
          "broadcast");
    CHECK(irohds_gossip_broadcast(a, 2, topic, "hello", 5, IROHDS_GOSSIP_SCOPE_SWARM) == -EALREADY,
          "the same content twice is refused");
    drain(a, d, IROHDS_GOSSIP_GOSSIP);
    CHECK(d->sends_of[IROHDS_GOSSIP_GOSSIP] == 1 && memcmp(d->to, idb, 32) == 0,
          "content pushed to the eager neighbour");
    uint8_t frame[64];
    size_t flen = d->frame_len;
    memcpy(frame, d->frame, flen);
    irohds_gossip_handle_frame(b, 3, topic, ida, frame + 4, flen - 4);
    drain(b, d, IROHDS_GOSSIP_PRUNE);
    CHECK(d->n[IROHDS_GOSSIP_ACT_DELIVER] == 1 && d->content_len == 5 &&
              memcmp(d->content, "hello", 5) == 0, "b delivers hello");
    irohds_gossip_handle_frame(b, 4, topic, ida, frame + 4, flen - 4);
    drain(b, d, IROHDS_GOSSIP_PRUNE);
    CHECK(d->n[IROHDS_GOSSIP_ACT_DELIVER] == 0 && d->sends_of[IROHDS_GOSSIP_PRUNE] == 1,
          "duplicate: no delivery, Prune back");
    irohds_gossip_stats st;
    CHECK(irohds_gossip_stats_get(b, topic, &st) == 0 && st.duplicates == 1 && st.delivered == 1,
          "stats count the duplicate");

    /* b hears an IHave from a for an id it lacks: after graft_timeout_1 (80 ms)
     * it sends Graft { Some(id) } to a */
    uint8_t ihave[64], hid[32];
    irohds_blake3("later", 5, hid);
    size_t n = 0;
    ihave[n++] = 1;
    ihave[n++] = 3;
    ihave[n++] = 1;
    memcpy(ihave + n, hid, 32);
    n += 32;
    ihave[n++] = 2;
    CHECK(irohds_gossip_handle_frame(b, 10, topic, ida, ihave, n) == 0, "IHave accepted");
    CHECK(irohds_gossip_next_deadline(b, 10) == 90, "graft due 80 ms later (%llu)",
          (unsigned long long)irohds_gossip_next_deadline(b, 10));
    irohds_gossip_timeout(b, 89);
    drain(b, d, IROHDS_GOSSIP_GRAFT);
    CHECK(d->sends_of[IROHDS_GOSSIP_GRAFT] == 0, "no graft before the deadline");
    irohds_gossip_timeout(b, 90);
    drain(b, d, IROHDS_GOSSIP_GRAFT);
    CHECK(d->sends_of[IROHDS_GOSSIP_GRAFT] == 1 && memcmp(d->to, ida, 32) == 0,
          "Graft sent to the announcer");
    irohds_gossip_msg *gm = malloc(sizeof *gm);
    CHECK(irohds_gossip_decode(gm, d->frame + 4, d->frame_len - 4) == 0 && gm->id &&
              memcmp(gm->id, hid, 32) == 0 && gm->round == 2, "Graft names the id and round");
    /* a answers a graft for hello from its cache */
    irohds_gossip_handle_frame(a, 91, topic, idb, d->frame + 4, d->frame_len - 4);
    drain(a, d, IROHDS_GOSSIP_GOSSIP);
    CHECK(d->sends_of[IROHDS_GOSSIP_GOSSIP] == 0, "nothing cached for an unknown id");
    uint8_t graft[64];
    n = 0;
    graft[n++] = 1;
    graft[n++] = 2;
    graft[n++] = 1;
    irohds_blake3("hello", 5, graft + n);
    n += 32;
    graft[n++] = 0;
    irohds_gossip_handle_frame(a, 92, topic, idb, graft, n);
    drain(a, d, IROHDS_GOSSIP_GOSSIP);
    CHECK(d->sends_of[IROHDS_GOSSIP_GOSSIP] == 1, "Graft answered from the cache");

    /* errors */
    uint8_t other[32] = {9};
    CHECK(irohds_gossip_handle_frame(a, 93, other, idb, graft, n) == -ENOENT, "unknown topic");
    CHECK(irohds_gossip_handle_frame(a, 93, topic, idb, "\x02", 1) == -EPROTO, "bad frame");
    CHECK(irohds_gossip_stats_get(a, topic, &st) == 0 && st.dropped_invalid == 1,
          "bad frame counted");
    char big[5000] = {0};
    CHECK(irohds_gossip_broadcast(a, 93, topic, big, irohds_gossip_max_content(a) + 1,
                                  IROHDS_GOSSIP_SCOPE_SWARM) == -EMSGSIZE, "content too big");
    CHECK(irohds_gossip_broadcast(a, 93, topic, big, irohds_gossip_max_content(a),
                                  IROHDS_GOSSIP_SCOPE_SWARM) == 0, "max content fits");
    drain(a, d, IROHDS_GOSSIP_GOSSIP);
    /* 01 00, id, len 4055 (2 bytes), content, Swarm 00, round 00: 4093 < 4096,
     * and still < 4096 with a 3-byte round */
    CHECK(d->frame_len == 4 + 4093, "largest Gossip frame body 4093 (%zu)", d->frame_len - 4);

    /* quit: NEIGHBOR_DOWN, then ShuffleReply, Disconnect (last), DISCONNECT */
    CHECK(irohds_gossip_quit(a, 100, topic) == 0, "quit");
    drain(a, d, IROHDS_GOSSIP_DISCONNECT);
    CHECK(d->n[IROHDS_GOSSIP_ACT_NEIGHBOR_DOWN] == 1 && d->sends_of[IROHDS_GOSSIP_DISCONNECT] == 1 &&
              d->n[IROHDS_GOSSIP_ACT_DISCONNECT] == 1, "quit disconnects the neighbour");
    CHECK(irohds_gossip_quit(a, 100, topic) == -ENOENT, "quit twice");
    CHECK(irohds_gossip_next_deadline(a, 100) == UINT64_MAX, "no topic, no deadline");
    free(gm);
    free(d);
    irohds_gossip_free(a);
    irohds_gossip_free(b);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../shared/testdata";
    test_codec(dir);
    test_two_nodes();
    return check_summary();
}
