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
 *
 * More seeds: SIM_SEEDS=80 SIM_LOSS=0.05 runs the scenario for seeds 3..79
 * at that loss; SIM_DEBUG=1 prints each broadcast's duplicates, grafts and
 * prunes, and any node the overlay does not reach.
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

/* The worked examples of docs/gossip.md, through the frame reader. */
static void test_doc_examples(void)
{
    irohds_gossip_frame_reader *r = malloc(sizeof *r);
    irohds_gossip_frame_reader_init(r, 0);
    uint8_t in[128];
    size_t n = unhex(HEX("0000000d" "00" "00" "01" "09" "0001000a000001a01f",
                         "0000002a" "01" "00", hello_hash_hex, "0568656c6c6f" "0003"),
                     in, sizeof in);
    const uint8_t *f;
    size_t fl;
    ssize_t k = irohds_gossip_frame_reader_feed(r, in, n, &f, &fl);
    CHECK(k == 17 && f && irohds_gossip_decode(M, f, fl) == 0 && M->kind == IROHDS_GOSSIP_JOIN,
          "doc: Join frame");
    irohds_gossip_addr_info a;
    CHECK(irohds_gossip_addr_info_decode(&a, M->peer.data.ptr, M->peer.data.len) == 0 &&
              !a.relay_url && a.n_addrs == 1 && memcmp(a.addrs[0].ip, "\x0a\0\0\x01", 4) == 0 &&
              a.addrs[0].port == 4000, "doc: its PeerData is AddrInfo 10.0.0.1:4000");
    k = irohds_gossip_frame_reader_feed(r, in + 17, n - 17, &f, &fl);
    CHECK(k == 46 && f && irohds_gossip_decode(M, f, fl) == 0 &&
              M->kind == IROHDS_GOSSIP_GOSSIP && M->round == 3 && M->content_len == 5,
          "doc: Gossip frame, round 3");
    free(r);
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
    test_doc_examples();
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
    irohds_gossip *a = NULL, *b = NULL;
    CHECK(irohds_gossip_init(&a, ida, NULL, SEED) == 0, "init a");
    CHECK(irohds_gossip_init(&b, idb, NULL, SEED + 1) == 0, "init b");
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

    /* b forgets it (its application refused that delivery): the same frame
     * is delivered again, and is a duplicate after that */
    uint8_t hello_id[32];
    irohds_blake3("hello", 5, hello_id);
    CHECK(irohds_gossip_forget(b, 5, topic, hello_id) == 0, "forget");
    CHECK(irohds_gossip_forget(b, 5, topic, hello_id) == -ENOENT, "forgotten already");
    irohds_gossip_handle_frame(b, 5, topic, ida, frame + 4, flen - 4);
    drain(b, d, IROHDS_GOSSIP_PRUNE);
    CHECK(d->n[IROHDS_GOSSIP_ACT_DELIVER] == 1 && d->content_len == 5, "delivered again");
    irohds_gossip_handle_frame(b, 6, topic, ida, frame + 4, flen - 4);
    drain(b, d, IROHDS_GOSSIP_PRUNE);
    CHECK(d->n[IROHDS_GOSSIP_ACT_DELIVER] == 0, "and only once more");

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

/* A flooding peer: frames over its budget are dropped and counted, every
 * table stays within its bound, and an honest neighbour still gets through. */
/* A Gossip frame body carrying content (its id computed). */
static size_t gossip_body(const char *content, uint8_t id[32], uint8_t *buf, size_t cap)
{
    static irohds_gossip_msg m;
    memset(&m, 0, sizeof m);
    irohds_blake3(content, strlen(content), id);
    m.kind = IROHDS_GOSSIP_GOSSIP;
    m.id = id;
    m.content = (const uint8_t *)content;
    m.content_len = strlen(content);
    m.scope = IROHDS_GOSSIP_SCOPE_SWARM;
    size_t len = 0;
    return irohds_gossip_encode(&m, buf, cap, &len) == 0 ? len : 0;
}

/* A forgotten id's slot, when the ring passes it, must not take the id's
 * new entry out of the index with it. */
static void test_forget_ring(void)
{
    uint8_t me[32], peer[32], topic[32] = {9}, id[32], other[32];
    node_id(5, me);
    node_id(6, peer);
    irohds_gossip_config c;
    irohds_gossip_config_default(&c);
    c.seen_capacity = 16;
    irohds_gossip *g = NULL;
    CHECK(irohds_gossip_init(&g, me, &c, SEED) == 0, "init with 16 ids remembered");
    CHECK(irohds_gossip_join(g, 0, topic, NULL, 0) == 0, "join");
    drained *d = malloc(sizeof *d);
    uint8_t body[256];
    size_t hl = gossip_body("forget me", id, body, sizeof body);
    irohds_gossip_handle_frame(g, 1, topic, peer, body, hl);
    drain(g, d, IROHDS_GOSSIP_GOSSIP);
    CHECK(d->n[IROHDS_GOSSIP_ACT_DELIVER] == 1, "delivered");
    CHECK(irohds_gossip_forget(g, 1, topic, id) == 0, "forgotten");
    irohds_gossip_handle_frame(g, 2, topic, peer, body, hl);
    drain(g, d, IROHDS_GOSSIP_GOSSIP);
    CHECK(d->n[IROHDS_GOSSIP_ACT_DELIVER] == 1, "delivered again");
    for (int i = 0; i < 15; i++) { /* 15 more ids: the forgotten slot is the oldest, dropped */
        char text[32];
        snprintf(text, sizeof text, "filler %d", i);
        size_t fl = gossip_body(text, other, body, sizeof body);
        irohds_gossip_handle_frame(g, 3, topic, peer, body, fl);
        drain(g, d, IROHDS_GOSSIP_GOSSIP);
    }
    hl = gossip_body("forget me", id, body, sizeof body);
    irohds_gossip_handle_frame(g, 4, topic, peer, body, hl);
    drain(g, d, IROHDS_GOSSIP_GOSSIP);
    CHECK(d->n[IROHDS_GOSSIP_ACT_DELIVER] == 0, "still known after the old slot went");
    free(d);
    irohds_gossip_free(g);
}

static size_t encode_body(irohds_gossip_msg *m, uint8_t *buf, size_t cap)
{
    size_t len;
    return irohds_gossip_encode(m, buf, cap, &len) == 0 ? len : 0;
}

static int drain_count(irohds_gossip *g, const uint8_t *from, int *from_hits)
{
    irohds_gossip_action a;
    int n = 0;
    while (irohds_gossip_poll(g, &a)) {
        n++;
        if (a.type == IROHDS_GOSSIP_ACT_DELIVER && memcmp(a.peer, from, 32) == 0)
            (*from_hits)++;
    }
    return n;
}

static void test_flood(void)
{
    uint8_t me[32], honest[32], flooder[32], topic[32] = {1};
    node_id(100, me);
    node_id(101, honest);
    node_id(102, flooder);
    irohds_gossip *g;
    irohds_gossip_config c;
    irohds_gossip_config_default(&c);
    irohds_gossip_init(&g, me, &c, SEED);
    irohds_gossip_join(g, 0, topic, NULL, 0);
    irohds_gossip_msg *m = malloc(sizeof *m);
    uint8_t *body = malloc(8192);
    memset(m, 0, sizeof *m);
    m->kind = IROHDS_GOSSIP_JOIN;
    size_t n = encode_body(m, body, 8192);
    irohds_gossip_handle_frame(g, 0, topic, honest, body, n);
    irohds_gossip_handle_frame(g, 0, topic, flooder, body, n);
    int honest_hits = 0, flood_hits = 0;
    drain_count(g, honest, &honest_hits);

    /* 10 s: the flooder sends 6000 fresh 2000-byte messages a second, the
     * honest peer 10 */
    uint8_t content[2000];
    uint8_t id[32];
    int refused = 0;
    for (int k = 0; k < 60000; k++) {
        uint64_t now = 1 + (uint64_t)k / 6;
        memset(content, 0x33, sizeof content);
        memcpy(content, &k, sizeof k);
        irohds_blake3(content, sizeof content, id);
        memset(m, 0, sizeof *m);
        m->kind = IROHDS_GOSSIP_GOSSIP;
        m->id = id;
        m->content = content;
        m->content_len = sizeof content;
        n = encode_body(m, body, 8192);
        refused += irohds_gossip_handle_frame(g, now, topic, flooder, body, n) == -EAGAIN;
        drain_count(g, flooder, &flood_hits);
        if (k % 600 == 0) {
            content[1999] = 0x77; /* the honest peer's messages differ */
            irohds_blake3(content, sizeof content, id);
            n = encode_body(m, body, 8192);
            irohds_gossip_handle_frame(g, now, topic, honest, body, n);
            drain_count(g, honest, &honest_hits);
        }
    }
    irohds_gossip_stats st;
    irohds_gossip_stats_get(g, topic, &st);
    printf("flood: %d delivered from the flooder, %d refused; seen %zu, cached %zu bytes\n",
           flood_hits, refused, st.seen_ids, st.cached_bytes);
    CHECK(flood_hits <= 11 * (int)c.peer_msgs_per_sec && refused >= 60000 - 11 * 2000 &&
              st.dropped_budget == (uint64_t)refused, "flooder held to its budget");
    CHECK(honest_hits == 100, "every honest message delivered during the flood (%d)", honest_hits);
    CHECK(st.seen_ids <= c.seen_capacity && st.cached_bytes <= c.cache_max_bytes &&
              st.dropped_bounds > 0, "seen ids and cache stay within bounds");

    /* IHaves for 116 unknown ids a frame: the missing table is bounded */
    for (int k = 0; k < 3000; k++) {
        memset(m, 0, sizeof *m);
        m->kind = IROHDS_GOSSIP_IHAVE;
        m->n_ihave = 116;
        uint8_t ids[116][32];
        for (int j = 0; j < 116; j++) {
            int x = k * 116 + j;
            irohds_blake3(&x, sizeof x, ids[j]);
            m->ihave[j] = (irohds_gossip_ihave){ids[j], 1};
        }
        n = encode_body(m, body, 8192);
        irohds_gossip_handle_frame(g, 20000 + (uint64_t)k, topic, flooder, body, n);
        drain_count(g, flooder, &flood_hits);
    }
    irohds_gossip_stats_get(g, topic, &st);
    CHECK(st.missing <= c.missing_capacity, "missing ids bounded (%zu)", st.missing);

    /* Shuffles full of strangers and ForwardJoins for strangers: views and
     * requests stay bounded */
    for (int k = 0; k < 2000; k++) {
        memset(m, 0, sizeof *m);
        uint8_t ids[100][32];
        for (int j = 0; j < 100; j++) {
            int x = 1000000 + k * 100 + j;
            irohds_blake3(&x, sizeof x, ids[j]);
        }
        if (k % 2) {
            m->kind = IROHDS_GOSSIP_SHUFFLE;
            m->origin = flooder;
            m->n_nodes = 100;
            for (int j = 0; j < 100; j++)
                m->nodes[j].id = ids[j];
        } else {
            m->kind = IROHDS_GOSSIP_FORWARD_JOIN;
            m->peer.id = ids[0];
        }
        n = encode_body(m, body, 8192);
        irohds_gossip_handle_frame(g, 30000 + (uint64_t)k, topic, flooder, body, n);
        drain_count(g, flooder, &flood_hits);
    }
    irohds_gossip_stats_get(g, topic, &st);
    CHECK(st.active <= 5 && st.passive <= 30, "views bounded (%zu, %zu)", st.active, st.passive);
    irohds_gossip_free(g);

    /* a caller that never drains: the queue stops at queue_max_actions */
    c.queue_max_actions = 100;
    irohds_gossip_init(&g, me, &c, SEED);
    irohds_gossip_join(g, 0, topic, NULL, 0);
    memset(m, 0, sizeof *m);
    m->kind = IROHDS_GOSSIP_JOIN;
    for (int k = 0; k < 1000; k++) {
        uint8_t peer[32];
        irohds_blake3(&k, sizeof k, peer);
        n = encode_body(m, body, 8192);
        irohds_gossip_handle_frame(g, 1, topic, peer, body, n);
    }
    int queued = drain_count(g, flooder, &flood_hits);
    irohds_gossip_stats_get(g, topic, &st);
    CHECK(queued == 100 && st.dropped_actions > 0, "undrained queue bounded (%d)", queued);
    irohds_gossip_free(g);
    free(body);
    free(m);
}

/* ============================================================ simulation */

/*
 * Nodes are instances of the real state machine; the network is a heap of
 * timed events.  A SEND becomes a frame delivered after the link's latency
 * (5-40 ms, fixed per pair); with loss, a frame is lost and retransmitted
 * 200 ms later, as QUIC would, and frames on one link keep their order.  A
 * frame to a crashed node is dropped and its sender told, after a dial
 * timeout, that the peer is gone; a crash is also noticed by the crashed
 * node's neighbours after 50-500 ms.  Time only moves when the next event or
 * the next deadline of some node is due.
 */
#define SIM_N 60
#define SIM_TOPICS 2
#define SIM_MSGS 64

enum { EV_FRAME, EV_CLOSED };

typedef struct sim_ev {
    uint64_t at, seq;
    int kind, src, dst, topic;
    uint8_t *body;
    size_t len;
} sim_ev;

typedef struct sim_node {
    irohds_gossip *g;
    uint8_t id[32];
    uint8_t pd[64];
    size_t pd_len;
    bool alive, member[SIM_TOPICS];
    uint64_t deadline;
    uint8_t delivered[SIM_TOPICS][SIM_MSGS];
} sim_node;

typedef struct sim {
    sim_node node[SIM_N];
    sim_ev *heap;
    size_t n_ev, cap_ev;
    uint64_t seq, now, rng;
    uint64_t link_at[SIM_N][SIM_N];
    double loss;
    uint8_t topic[SIM_TOPICS][32];
    int view_over, bad_peer_data, wrong_topic, enoent, bad_frame, bad_send, budget;
    char tag[32];
} sim;

static uint64_t sim_rand(sim *s)
{
    s->rng ^= s->rng << 13;
    s->rng ^= s->rng >> 7;
    s->rng ^= s->rng << 17;
    return s->rng;
}

static bool ev_before(const sim_ev *a, const sim_ev *b)
{
    return a->at < b->at || (a->at == b->at && a->seq < b->seq);
}

static void ev_push(sim *s, sim_ev e)
{
    if (s->n_ev == s->cap_ev) {
        s->cap_ev = s->cap_ev ? 2 * s->cap_ev : 1024;
        s->heap = realloc(s->heap, s->cap_ev * sizeof *s->heap);
    }
    e.seq = s->seq++;
    size_t i = s->n_ev++;
    for (; i && ev_before(&e, &s->heap[(i - 1) / 2]); i = (i - 1) / 2)
        s->heap[i] = s->heap[(i - 1) / 2];
    s->heap[i] = e;
}

static sim_ev ev_pop(sim *s)
{
    sim_ev top = s->heap[0], last = s->heap[--s->n_ev];
    size_t i = 0;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= s->n_ev)
            break;
        if (c + 1 < s->n_ev && ev_before(&s->heap[c + 1], &s->heap[c]))
            c++;
        if (!ev_before(&s->heap[c], &last))
            break;
        s->heap[i] = s->heap[c];
        i = c;
    }
    if (s->n_ev)
        s->heap[i] = last;
    return top;
}

static int sim_index(const sim *s, const uint8_t *id)
{
    for (int i = 0; i < SIM_N; i++)
        if (memcmp(s->node[i].id, id, 32) == 0)
            return i;
    return -1;
}

static int sim_topic(const sim *s, const uint8_t *topic)
{
    for (int t = 0; t < SIM_TOPICS; t++)
        if (memcmp(s->topic[t], topic, 32) == 0)
            return t;
    return -1;
}

static uint64_t latency(int i, int j)
{
    int a = i < j ? i : j, b = i < j ? j : i;
    return 5 + (uint64_t)(a * 131 + b * 71) % 36;
}

static void sim_send(sim *s, int i, const irohds_gossip_action *a)
{
    int j = sim_index(s, a->peer), t = sim_topic(s, a->topic);
    uint32_t blen = a->len >= 4 ? (uint32_t)a->data[0] << 24 | a->data[1] << 16 |
                                      a->data[2] << 8 | a->data[3]
                                : 0;
    if (j < 0 || t < 0 || a->len < 4 || blen != a->len - 4 || blen >= 4096) {
        s->bad_send++;
        return;
    }
    uint64_t at = s->now + latency(i, j);
    while (s->loss > 0 && (double)(sim_rand(s) % 10000) < s->loss * 10000)
        at += 200;
    if (at < s->link_at[i][j])
        at = s->link_at[i][j];
    s->link_at[i][j] = at;
    sim_ev e = {.at = at, .kind = EV_FRAME, .src = i, .dst = j, .topic = t, .len = blen};
    e.body = malloc(blen ? blen : 1);
    memcpy(e.body, a->data + 4, blen);
    ev_push(s, e);
}

static void sim_drain(sim *s, int i)
{
    sim_node *n = &s->node[i];
    irohds_gossip_action a;
    uint8_t nb[16][32];
    while (irohds_gossip_poll(n->g, &a)) {
        int t = sim_topic(s, a.topic), j = sim_index(s, a.peer);
        switch (a.type) {
        case IROHDS_GOSSIP_ACT_SEND:
            sim_send(s, i, &a);
            break;
        case IROHDS_GOSSIP_ACT_DELIVER:
            if (t < 0 || a.len < 5 || a.data[0] != t) {
                s->wrong_topic++;
                break;
            }
            uint32_t k;
            memcpy(&k, a.data + 1, 4);
            if (k < SIM_MSGS && n->delivered[t][k] < 255)
                n->delivered[t][k]++;
            break;
        case IROHDS_GOSSIP_ACT_NEIGHBOR_UP:
            if (irohds_gossip_neighbors(n->g, a.topic, nb, 16) > 5)
                s->view_over++;
            break;
        case IROHDS_GOSSIP_ACT_PEER_DATA:
            if (j < 0 || a.len != s->node[j].pd_len || memcmp(a.data, s->node[j].pd, a.len) != 0)
                s->bad_peer_data++;
            break;
        default:
            break;
        }
    }
    n->deadline = irohds_gossip_next_deadline(n->g, s->now);
}

static void sim_event(sim *s, sim_ev *e)
{
    sim_node *d = &s->node[e->dst];
    if (!d->alive) {
        if (e->kind == EV_FRAME && s->node[e->src].alive) /* the dial fails */
            ev_push(s, (sim_ev){.at = s->now + 300, .kind = EV_CLOSED, .src = e->dst,
                                .dst = e->src});
    } else if (e->kind == EV_FRAME) {
        int r = irohds_gossip_handle_frame(d->g, s->now, s->topic[e->topic], s->node[e->src].id,
                                           e->body, e->len);
        s->enoent += r == -ENOENT;
        s->budget += r == -EAGAIN;
        s->bad_frame += r < 0 && r != -ENOENT && r != -EAGAIN;
        sim_drain(s, e->dst);
    } else {
        irohds_gossip_peer_disconnected(d->g, s->now, s->node[e->src].id);
        sim_drain(s, e->dst);
    }
    free(e->body);
}

static void sim_run_until(sim *s, uint64_t until)
{
    for (;;) {
        int next = -1;
        for (int i = 0; i < SIM_N; i++)
            if (s->node[i].alive && (next < 0 || s->node[i].deadline < s->node[next].deadline))
                next = i;
        uint64_t tn = next >= 0 ? s->node[next].deadline : UINT64_MAX;
        uint64_t te = s->n_ev ? s->heap[0].at : UINT64_MAX;
        uint64_t t = te <= tn ? te : tn;
        if (t > until)
            break;
        if (t > s->now)
            s->now = t;
        if (te <= tn) {
            sim_ev e = ev_pop(s);
            sim_event(s, &e);
        } else {
            irohds_gossip_timeout(s->node[next].g, s->now);
            sim_drain(s, next);
        }
    }
    s->now = until;
}

static void sim_init(sim *s, uint64_t seed, double loss)
{
    memset(s, 0, sizeof *s);
    s->rng = seed * 2654435761u + 1;
    s->loss = loss;
    snprintf(s->tag, sizeof s->tag, "seed %llu loss %.2f", (unsigned long long)seed, loss);
    irohds_blake3("topic a", 7, s->topic[0]);
    irohds_blake3("topic b", 7, s->topic[1]);
    for (int i = 0; i < SIM_N; i++) {
        sim_node *n = &s->node[i];
        node_id(i, n->id);
        irohds_gossip_init(&n->g, n->id, NULL, seed * 1000 + (uint64_t)i);
        irohds_gossip_addr_info a = {.n_addrs = 1};
        a.addrs[0] = (irohds_gossip_sockaddr){.ip = {10, 0, 0, (uint8_t)i}, .port = (uint16_t)(4000 + i)};
        irohds_gossip_addr_info_encode(&a, n->pd, sizeof n->pd, &n->pd_len);
        irohds_gossip_set_peer_data(n->g, n->pd, n->pd_len);
        n->alive = true;
        n->deadline = UINT64_MAX;
    }
}

static void sim_free(sim *s)
{
    for (int i = 0; i < SIM_N; i++)
        irohds_gossip_free(s->node[i].g);
    while (s->n_ev) {
        sim_ev e = ev_pop(s);
        free(e.body);
    }
    free(s->heap);
}

/* Node i joins topic t through one random earlier member. */
static void sim_join(sim *s, int i, int t)
{
    int members[SIM_N], n = 0;
    for (int j = 0; j < i; j++)
        if (s->node[j].member[t] && s->node[j].alive)
            members[n++] = j;
    irohds_gossip_peer boot = {{0}, NULL, 0};
    if (n) {
        int j = members[sim_rand(s) % n];
        memcpy(boot.id, s->node[j].id, 32);
        boot.data = s->node[j].pd;
        boot.data_len = s->node[j].pd_len;
    }
    irohds_gossip_join(s->node[i].g, s->now, s->topic[t], &boot, n ? 1 : 0);
    s->node[i].member[t] = true;
    sim_drain(s, i);
}

static size_t sim_neighbors(sim *s, int i, int t, int *out)
{
    uint8_t nb[16][32];
    size_t n = irohds_gossip_neighbors(s->node[i].g, s->topic[t], nb, 16);
    size_t k = 0;
    for (size_t j = 0; j < n && j < 16; j++) {
        int x = sim_index(s, nb[j]);
        if (x >= 0)
            out[k++] = x;
    }
    return k;
}

/* Every live member's active view <= 5, and the views (as undirected
 * edges between live nodes) connect all live members. */
static bool sim_overlay_ok(sim *s, int t, int *max_view)
{
    int adj[SIM_N][SIM_N] = {{0}}, seen[SIM_N] = {0}, stack[SIM_N], sp = 0, members = 0, first = -1;
    *max_view = 0;
    for (int i = 0; i < SIM_N; i++) {
        if (!s->node[i].alive || !s->node[i].member[t])
            continue;
        members++;
        first = first < 0 ? i : first;
        int nb[16];
        size_t n = sim_neighbors(s, i, t, nb);
        *max_view = (int)n > *max_view ? (int)n : *max_view;
        for (size_t k = 0; k < n; k++)
            if (s->node[nb[k]].alive && s->node[nb[k]].member[t])
                adj[i][nb[k]] = adj[nb[k]][i] = 1;
    }
    int reached = 0;
    if (first >= 0) {
        stack[sp++] = first;
        seen[first] = 1;
    }
    while (sp) {
        int i = stack[--sp];
        reached++;
        for (int j = 0; j < SIM_N; j++)
            if (adj[i][j] && !seen[j]) {
                seen[j] = 1;
                stack[sp++] = j;
            }
    }
    if (reached != members && getenv("SIM_DEBUG")) {
        for (int i = 0; i < SIM_N; i++) {
            irohds_gossip_stats st;
            if (s->node[i].alive && s->node[i].member[t] && !seen[i] &&
                !irohds_gossip_stats_get(s->node[i].g, s->topic[t], &st))
                printf("unreached node %d: active %zu passive %zu\n", i, st.active, st.passive);
        }
    }
    return reached == members && *max_view <= 5;
}

/* Mean active view size of the live members of t; the smallest in *min. */
static double sim_view_sizes(sim *s, int t, int *min)
{
    int sum = 0, n = 0;
    *min = 99;
    for (int i = 0; i < SIM_N; i++)
        if (s->node[i].alive && s->node[i].member[t]) {
            int nb[16];
            int k = (int)sim_neighbors(s, i, t, nb);
            sum += k;
            n++;
            *min = k < *min ? k : *min;
        }
    return n ? (double)sum / n : 0;
}

static uint64_t sim_duplicates(sim *s, int t)
{
    uint64_t d = 0;
    irohds_gossip_stats st;
    for (int i = 0; i < SIM_N; i++)
        if (s->node[i].alive && s->node[i].member[t] &&
            irohds_gossip_stats_get(s->node[i].g, s->topic[t], &st) == 0)
            d += st.duplicates;
    return d;
}

/* Duplicates plain flooding would cause now: every node forwards to all
 * neighbours but the one it heard from, so sum(deg) - (n - 1) copies
 * travel and n - 1 of them are first receipts. */
static int sim_flood_dups(sim *s, int t)
{
    int sum = 0, n = 0;
    for (int i = 0; i < SIM_N; i++)
        if (s->node[i].alive && s->node[i].member[t]) {
            int nb[16];
            sum += (int)sim_neighbors(s, i, t, nb);
            n++;
        }
    return sum - 2 * (n - 1);
}

static int sim_random_member(sim *s, int t)
{
    for (;;) {
        int i = (int)(sim_rand(s) % SIM_N);
        if (s->node[i].alive && s->node[i].member[t])
            return i;
    }
}

/* Broadcast message k on t from a random member; let it settle; return the
 * duplicates it caused. */
static uint64_t sim_broadcast(sim *s, int t, int k, uint64_t settle)
{
    int from = sim_random_member(s, t);
    uint8_t content[700];
    size_t len = 16 + (size_t)(k * 37) % 600;
    memset(content, 0x5a, len);
    content[0] = (uint8_t)t;
    uint32_t kk = (uint32_t)k;
    memcpy(content + 1, &kk, 4);
    uint64_t before = sim_duplicates(s, t);
    uint64_t gr0 = 0, pr0 = 0, gr1 = 0, pr1 = 0;
    irohds_gossip_stats st;
    for (int i = 0; i < SIM_N; i++)
        if (s->node[i].alive && s->node[i].member[t] && !irohds_gossip_stats_get(s->node[i].g, s->topic[t], &st))
            gr0 += st.grafts, pr0 += st.prunes;
    irohds_gossip_broadcast(s->node[from].g, s->now, s->topic[t], content, len,
                            IROHDS_GOSSIP_SCOPE_SWARM);
    s->node[from].delivered[t][k] = 1; /* the origin has it */
    sim_drain(s, from);
    sim_run_until(s, s->now + settle);
    for (int i = 0; i < SIM_N; i++)
        if (s->node[i].alive && s->node[i].member[t] && !irohds_gossip_stats_get(s->node[i].g, s->topic[t], &st))
            gr1 += st.grafts, pr1 += st.prunes;
    if (getenv("SIM_DEBUG"))
        printf("bcast t%d k%d from %d: dups %llu grafts %llu prunes %llu\n", t, k, from,
               (unsigned long long)(sim_duplicates(s, t) - before), (unsigned long long)(gr1 - gr0),
               (unsigned long long)(pr1 - pr0));
    return sim_duplicates(s, t) - before;
}

/* Messages [k0, k1) of t: delivered exactly once at every live member,
 * never at a non-member.  Returns the number of failures. */
static int sim_check_delivery(sim *s, int t, int k0, int k1)
{
    int bad = 0;
    for (int i = 0; i < SIM_N; i++)
        for (int k = k0; k < k1; k++) {
            int want = s->node[i].member[t] ? 1 : 0;
            if (s->node[i].alive && s->node[i].delivered[t][k] != want) {
                bad++;
                if (getenv("SIM_DEBUG"))
                    printf("node %d topic %d msg %d delivered %d\n", i, t, k,
                           s->node[i].delivered[t][k]);
            }
        }
    return bad;
}

static void sim_kill(sim *s, int i)
{
    s->node[i].alive = false;
    for (int j = 0; j < SIM_N; j++) {
        if (!s->node[j].alive)
            continue;
        for (int t = 0; t < SIM_TOPICS; t++) {
            int nb[16];
            size_t n = s->node[j].member[t] ? sim_neighbors(s, j, t, nb) : 0;
            for (size_t k = 0; k < n; k++)
                if (nb[k] == i) {
                    ev_push(s, (sim_ev){.at = s->now + 50 + sim_rand(s) % 450,
                                        .kind = EV_CLOSED, .src = i, .dst = j});
                    t = SIM_TOPICS;
                    break;
                }
        }
    }
}

/* Every node joins topic a, the even ones topic b too, 20 ms apart. */
static void sim_phase_join(sim *s)
{
    int max_view;
    for (int i = 0; i < SIM_N; i++) {
        sim_run_until(s, (uint64_t)i * 20);
        sim_join(s, i, 0);
        if (i % 2 == 0)
            sim_join(s, i, 1);
    }
    sim_run_until(s, 10000);
    CHECK(sim_overlay_ok(s, 0, &max_view), "%s: topic a connected, views <= 5 (max %d)", s->tag,
          max_view);
    CHECK(sim_overlay_ok(s, 1, &max_view), "%s: topic b connected, views <= 5 (max %d)", s->tag,
          max_view);
}

/* 24 broadcasts on a and 8 on b, each delivered once; the tree gets pruned. */
static void sim_phase_broadcast(sim *s)
{
    int flood = sim_flood_dups(s, 0), max_view;
    uint64_t dups[24], late = 0;
    for (int k = 0; k < 24; k++) {
        dups[k] = sim_broadcast(s, 0, k, 500);
        if (k % 3 == 0)
            sim_broadcast(s, 1, k / 3, 500);
        if (k >= 12)
            late += dups[k];
    }
    sim_run_until(s, s->now + 3000);
    printf("%s: duplicates per broadcast: first %llu, mean of the last 12 %.2f; flooding: %d\n",
           s->tag, (unsigned long long)dups[0], (double)late / 12, flood);
    CHECK(sim_check_delivery(s, 0, 0, 24) == 0, "%s: 24 broadcasts on a, each delivered once "
          "at every node (%d misses)", s->tag, sim_check_delivery(s, 0, 0, 24));
    CHECK(sim_check_delivery(s, 1, 0, 8) == 0, "%s: 8 broadcasts on b, delivered once at the "
          "even nodes only (%d misses)", s->tag, sim_check_delivery(s, 1, 0, 8));
    /* With every link eager the first broadcast floods.  Once pruned, the
     * eager links form a spanning tree, and a duplicate costs a repair: a
     * node whose eager path is slower than a lazy neighbour's IHave by more
     * than graft_timeout_1 (80 ms) grafts that neighbour, and gets the
     * content twice (the graft reply, and its own forward to the neighbour
     * it just made eager; the later copy prunes).  With 5-40 ms links and a
     * different origin each time that is a few nodes per broadcast:
     * measured over 78 seeds, 6% of flooding on average, 16% at worst.
     * With 10% of frames held back 200 ms every held-back eager hop loses
     * to the 80 ms timeout: 26% on average, 32% at worst.  Bounds: 20% and
     * 40% of flooding, over the last 12 broadcasts. */
    double bound = s->loss > 0 ? 0.4 : 0.2;
    CHECK(dups[0] * 2 >= (uint64_t)flood, "%s: the first broadcast floods (%llu of %d)", s->tag,
          (unsigned long long)dups[0], flood);
    CHECK((double)late / 12 <= bound * flood, "%s: pruned tree: mean duplicates %.2f <= %.0f%% "
          "of flooding (%d)", s->tag, (double)late / 12, bound * 100, flood);
    CHECK(sim_overlay_ok(s, 0, &max_view), "%s: after broadcasts topic a connected (max %d)",
          s->tag, max_view);
}

/* Crash 20% of the nodes, let the survivors repair, broadcast again. */
static void sim_phase_crash(sim *s)
{
    int max_view, min_view;
    /* three shuffle rounds (60 s apart) first fill the passive views the
     * repair draws on */
    sim_run_until(s, s->now + 180000);
    for (int killed = 0; killed < SIM_N / 5;) {
        int i = (int)(sim_rand(s) % SIM_N);
        if (s->node[i].alive) {
            sim_kill(s, i);
            killed++;
        }
    }
    sim_run_until(s, s->now + 15000);
    double mean_view = sim_view_sizes(s, 0, &min_view);
    /* The crashes cost the survivors about one neighbour each (mean view
     * 4.6 -> 3.1 with no repair); refilling from the passive views brings
     * it back to 4.4-4.7 (over 240 seeds and loss rates, never below 4.38),
     * short of 5 only where Low requests meet full views. */
    CHECK(mean_view >= 4.0 && min_view >= 1, "%s: views refilled after crashes (mean %.2f, "
          "min %d)", s->tag, mean_view, min_view);
    CHECK(sim_overlay_ok(s, 0, &max_view), "%s: after crashes topic a connected, views <= 5 "
          "(max %d)", s->tag, max_view);
    CHECK(sim_overlay_ok(s, 1, &max_view), "%s: after crashes topic b connected (max %d)", s->tag,
          max_view);
    for (int k = 24; k < 36; k++) {
        sim_broadcast(s, 0, k, 500);
        if (k % 3 == 0)
            sim_broadcast(s, 1, k / 3, 500);
    }
    sim_run_until(s, s->now + 3000);
    CHECK(sim_check_delivery(s, 0, 24, 36) == 0, "%s: after crashes every survivor delivers "
          "each broadcast once (%d misses)", s->tag, sim_check_delivery(s, 0, 24, 36));
    CHECK(sim_check_delivery(s, 1, 8, 12) == 0, "%s: and on b (%d misses)", s->tag,
          sim_check_delivery(s, 1, 8, 12));
}

/* Four members leave topic a gracefully: the rest stay connected and keep
 * delivering; the leavers get nothing more. */
static void sim_phase_leave(sim *s)
{
    int max_view;
    for (int left = 0; left < 4; left++) {
        int i = sim_random_member(s, 0);
        irohds_gossip_quit(s->node[i].g, s->now, s->topic[0]);
        s->node[i].member[0] = false;
        sim_drain(s, i);
    }
    sim_run_until(s, s->now + 5000);
    CHECK(sim_overlay_ok(s, 0, &max_view), "%s: after leaves topic a connected (max %d)", s->tag,
          max_view);
    for (int k = 36; k < 42; k++)
        sim_broadcast(s, 0, k, 500);
    sim_run_until(s, s->now + 3000);
    CHECK(sim_check_delivery(s, 0, 36, 42) == 0, "%s: after leaves each broadcast delivered once "
          "at every member, never at a leaver (%d misses)", s->tag,
          sim_check_delivery(s, 0, 36, 42));
}

static void sim_scenario(uint64_t seed, double loss)
{
    sim *s = malloc(sizeof *s);
    sim_init(s, seed, loss);
    sim_phase_join(s);
    sim_phase_broadcast(s);
    sim_phase_crash(s);
    CHECK(s->view_over == 0, "%s: no active view ever above 5 (%d)", s->tag, s->view_over);
    CHECK(s->wrong_topic == 0, "%s: no content delivered on the wrong topic", s->tag);
    CHECK(s->enoent == 0, "%s: no frame for a topic its receiver did not join (%d)", s->tag,
          s->enoent);
    CHECK(s->budget == 0, "%s: no honest frame over budget (%d)", s->tag, s->budget);
    sim_phase_leave(s);
    CHECK(s->bad_frame == 0 && s->bad_send == 0, "%s: every frame well formed (%d, %d)", s->tag,
          s->bad_frame, s->bad_send);
    CHECK(s->bad_peer_data == 0, "%s: PEER_DATA always the peer's own AddrInfo (%d)", s->tag,
          s->bad_peer_data);
    sim_free(s);
    free(s);
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../shared/testdata";
    test_codec(dir);
    test_two_nodes();
    test_forget_ring();
    test_flood();
    sim_scenario(1, 0);
    sim_scenario(2, 0.1);
    for (int k = 3; getenv("SIM_SEEDS") && k < atoi(getenv("SIM_SEEDS")); k++)
        sim_scenario((uint64_t)k, getenv("SIM_LOSS") ? atof(getenv("SIM_LOSS")) : 0);
    return check_summary();
}
