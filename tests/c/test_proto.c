/*
 * test_proto: the irohds gossip messages (src/proto, docs/protocol.md).
 *
 * The byte layouts are checked against bytes written out by hand from
 * docs/protocol.md (the "Worked examples"), not against the encoder's own
 * output; signatures, which cannot be written by hand, are checked by
 * verifying them over hand-written signed bytes with the public keys that
 * testdata/pkarr/keys.json gives for the seeds 00x32 and 2a x32.  Then round
 * trips, every way a signature check must fail, the clock window, malformed
 * input, the topic id (against b3sum), claim expiry and the rate limiter.
 */
#include <errno.h>
#include <json-c/json.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "proto/proto.h"
#include "util/util.h"

#define T50 (1LL << 50) /* 2^50 µs, varint 80 80 80 80 80 80 80 02 */

static uint8_t sk_a[64], sk_b[64]; /* seeds 00x32 and 2a x32 */
static uint8_t pk_a[32], pk_b[32]; /* their public keys as keys.json gives them */

/* ------------------------------------------------------ hand-built bytes */

typedef struct hand {
    uint8_t b[8192];
    size_t n;
} hand;

static void h_hex(hand *h, const char *hex)
{
    for (const char *p = hex; *p;) {
        if (*p == ' ') {
            p++;
            continue;
        }
        unsigned v;
        sscanf(p, "%2x", &v);
        h->b[h->n++] = (uint8_t)v;
        p += 2;
    }
}

static void h_rep(hand *h, uint8_t v, size_t n)
{
    memset(h->b + h->n, v, n);
    h->n += n;
}

static void h_raw(hand *h, const void *p, size_t n)
{
    memcpy(h->b + h->n, p, n);
    h->n += n;
}

static void h_text(hand *h, const char *s)
{
    h_raw(h, s, strlen(s));
}

/* ------------------------------------------------------------- fixtures */

static void load_keys(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/pkarr/keys.json", dir);
    json_object *root = json_object_from_file(path), *s2p, *cases;
    CHECK(root != NULL, "cannot read %s", path);
    if (!root)
        exit(1);
    json_object_object_get_ex(root, "seed_to_public_key", &s2p);
    json_object_object_get_ex(s2p, "cases", &cases);
    CHECK(json_object_array_length(cases) == 2, "two seed cases");
    for (size_t i = 0; i < 2; i++) {
        json_object *c = json_object_array_get_idx(cases, i), *v;
        uint8_t seed[32], pk[32], mine[32];
        json_object_object_get_ex(c, "seed_hex", &v);
        irohds_hex_decode(json_object_get_string(v), seed, 32);
        json_object_object_get_ex(c, "public_key_hex", &v);
        irohds_hex_decode(json_object_get_string(v), pk, 32);
        uint8_t *sk = seed[0] == 0 ? sk_a : sk_b;
        crypto_sign_seed_keypair(mine, sk, seed);
        CHECK(memcmp(mine, pk, 32) == 0, "libsodium's public key of seed %02x", seed[0]);
        memcpy(seed[0] == 0 ? pk_a : pk_b, pk, 32);
    }
    json_object_put(root);
}

static const irohds_proto_file one_file = {{"a.bin", 5}, {0}, 5};

static irohds_proto_file the_file(void)
{
    irohds_proto_file f = one_file;
    memset(f.blob, 0x33, 32);
    return f;
}

/* The HAVE of docs/protocol.md's worked example, signed and encoded. */
static size_t example_have(irohds_proto_have *h, uint8_t *buf, size_t cap)
{
    memset(h, 0, sizeof *h);
    irohds_proto_result *r = &h->result;
    r->ns = (irohds_proto_str){"lab", 3};
    memset(r->key, 0x11, 32);
    memset(r->blob, 0x22, 32);
    r->size = 300;
    r->serializer = 1;
    r->compute_seconds = 1.5;
    r->figure = 2.0;
    r->created_us = T50;
    r->func = (irohds_proto_str){"m.f", 3};
    irohds_proto_file f = the_file();
    int rc = irohds_proto_sign_result(h, &f, 1, sk_a);
    CHECK(rc == 0, "sign_result: %d", rc);
    h->timestamp_us = T50 + 1;
    size_t len = 0;
    rc = irohds_proto_encode_have(h, &f, sk_b, buf, cap, &len);
    CHECK(rc == 0, "encode_have: %d", rc);
    return len;
}

static size_t example_query(irohds_proto_query *q, uint8_t *buf, size_t cap)
{
    memset(q, 0, sizeof *q);
    q->ns = (irohds_proto_str){"", 0};
    memset(q->key, 0x11, 32);
    q->nonce = 16384;
    q->timestamp_us = T50;
    size_t len = 0;
    int rc = irohds_proto_encode_query(q, sk_b, buf, cap, &len);
    CHECK(rc == 0, "encode_query: %d", rc);
    return len;
}

static size_t example_claim(irohds_proto_claim *c, uint8_t *buf, size_t cap)
{
    memset(c, 0, sizeof *c);
    c->ns = (irohds_proto_str){"lab", 3};
    memset(c->key, 0x11, 32);
    c->started_us = T50;
    c->expected_done_us = T50 + (1LL << 21);
    c->expected_seconds = 2.0;
    c->figure = 0.5;
    c->timestamp_us = T50 + (1LL << 14);
    size_t len = 0;
    int rc = irohds_proto_encode_claim(c, sk_a, buf, cap, &len);
    CHECK(rc == 0, "encode_claim: %d", rc);
    return len;
}

/* The result part of the example HAVE, by hand (docs/protocol.md). */
static void hand_result(hand *h)
{
    h_hex(h, "03 6c 61 62");
    h_rep(h, 0x11, 32);
    h_rep(h, 0x22, 32);
    h_hex(h, "ac 02 01 00 00 00 00 00 00 f8 3f 00 00 00 00 00 00 00 40");
    h_raw(h, pk_a, 32);
    h_hex(h, "80 80 80 80 80 80 80 02 03 6d 2e 66 01 05");
    h_hex(h, "2cb9a1509394f953625ea7e0b609c28f0f6776ee133595410725a2d1a5a4162b");
}

static bool sig_ok(const uint8_t *sig, const hand *signed_bytes, const uint8_t pk[32])
{
    return crypto_sign_verify_detached(sig, signed_bytes->b, signed_bytes->n, pk) == 0;
}

/* ------------------------------------------------------- byte layouts */

static void test_have_layout(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    irohds_proto_have h;
    size_t len = example_have(&h, buf, sizeof buf);

    hand want = {0}, result = {0};
    hand_result(&result);
    h_hex(&want, "01 01");
    h_raw(&want, result.b, result.n);
    size_t psig_at = want.n;
    h_rep(&want, 0, 64); /* producer_sig: checked below */
    h_hex(&want, "01 01 05 61 2e 62 69 6e");
    h_rep(&want, 0x33, 32);
    h_hex(&want, "05");
    h_raw(&want, pk_b, 32);
    h_hex(&want, "81 80 80 80 80 80 80 02");
    size_t vsig_at = want.n;
    h_rep(&want, 0, 64);

    CHECK(len == want.n, "HAVE length %zu, by hand %zu", len, want.n);
    if (len != want.n)
        return;
    CHECK(memcmp(buf, want.b, psig_at) == 0, "HAVE bytes before producer_sig");
    CHECK(memcmp(buf + psig_at + 64, want.b + psig_at + 64, vsig_at - psig_at - 64) == 0,
          "HAVE bytes between the signatures");

    hand signed_result = {0};
    h_hex(&signed_result, "10");
    h_text(&signed_result, "irohds/v1/result");
    h_raw(&signed_result, result.b, result.n);
    CHECK(sig_ok(buf + psig_at, &signed_result, pk_a), "producer_sig: A over the result");

    hand signed_have = {0};
    h_hex(&signed_have, "0e");
    h_text(&signed_have, "irohds/v1/have");
    h_raw(&signed_have, buf, vsig_at);
    CHECK(sig_ok(buf + vsig_at, &signed_have, pk_b), "provider_sig: B over the message");

    uint8_t digest[32], want_digest[32];
    irohds_proto_file f = the_file();
    irohds_proto_files_digest(&f, 1, digest);
    irohds_hex_decode("2cb9a1509394f953625ea7e0b609c28f0f6776ee133595410725a2d1a5a4162b",
                      want_digest, 32);
    CHECK(memcmp(digest, want_digest, 32) == 0, "files digest (hashlib.blake2b)");
    irohds_proto_files_digest(NULL, 0, digest);
    irohds_hex_decode("213c64d9819e5818a204305c7146a6cb8ff6bf0f42875284c4e1aa69632796e5",
                      want_digest, 32);
    CHECK(memcmp(digest, want_digest, 32) == 0, "empty list digest (hashlib.blake2b)");
}

static void test_query_layout(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    irohds_proto_query q;
    size_t len = example_query(&q, buf, sizeof buf);
    hand want = {0};
    h_hex(&want, "01 02 00");
    h_rep(&want, 0x11, 32);
    h_raw(&want, pk_b, 32);
    h_hex(&want, "80 80 01 80 80 80 80 80 80 80 02");
    CHECK(len == want.n + 64, "QUERY length %zu", len);
    CHECK(memcmp(buf, want.b, want.n) == 0, "QUERY bytes");
    hand sb = {0};
    h_hex(&sb, "0f");
    h_text(&sb, "irohds/v1/query");
    h_raw(&sb, want.b, want.n);
    CHECK(sig_ok(buf + want.n, &sb, pk_b), "QUERY sig: B");
}

static void test_claim_layout(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    irohds_proto_claim c;
    size_t len = example_claim(&c, buf, sizeof buf);
    hand want = {0};
    h_hex(&want, "01 03 03 6c 61 62");
    h_rep(&want, 0x11, 32);
    h_raw(&want, pk_a, 32);
    h_hex(&want, "80 80 80 80 80 80 80 02 80 80 80 81 80 80 80 02");
    h_hex(&want, "00 00 00 00 00 00 00 40 00 00 00 00 00 00 e0 3f");
    h_hex(&want, "80 80 81 80 80 80 80 02");
    CHECK(len == want.n + 64, "CLAIM length %zu", len);
    CHECK(memcmp(buf, want.b, want.n) == 0, "CLAIM bytes");
    hand sb = {0};
    h_hex(&sb, "0f");
    h_text(&sb, "irohds/v1/claim");
    h_raw(&sb, want.b, want.n);
    CHECK(sig_ok(buf + want.n, &sb, pk_a), "CLAIM sig: A");
}

/* ----------------------------------------------------------- round trips */

static bool str_is(irohds_proto_str s, const char *want)
{
    return s.len == strlen(want) && memcmp(s.p, want, s.len) == 0;
}

static void test_round_trips(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    irohds_proto_msg m;
    irohds_proto_have h;
    size_t len = example_have(&h, buf, sizeof buf);
    CHECK(irohds_proto_decode(&m, buf, len) == 0, "decode HAVE");
    const irohds_proto_result *r = &m.have.result;
    CHECK(m.kind == IROHDS_PROTO_HAVE && str_is(r->ns, "lab") && str_is(r->func, "m.f") &&
              r->size == 300 && r->serializer == 1 && r->compute_seconds == 1.5 &&
              r->figure == 2.0 && r->created_us == T50 && r->nfiles == 1 &&
              r->files_size == 5 && memcmp(r->producer, pk_a, 32) == 0 &&
              memcmp(m.have.provider, pk_b, 32) == 0 && m.have.timestamp_us == T50 + 1 &&
              m.have.files_inline && str_is(m.files[0].name, "a.bin") && m.files[0].size == 5,
          "HAVE fields back");
    CHECK((const uint8_t *)r->ns.p >= buf && (const uint8_t *)r->ns.p < buf + len,
          "strings point into the input");
    CHECK(irohds_proto_verify(&m, "lab", 3, T50, NULL) == 0, "HAVE verifies");

    irohds_proto_query q;
    len = example_query(&q, buf, sizeof buf);
    CHECK(irohds_proto_decode(&m, buf, len) == 0 && m.kind == IROHDS_PROTO_QUERY &&
              m.query.nonce == 16384 && m.query.ns.len == 0 &&
              memcmp(m.query.asker, pk_b, 32) == 0,
          "QUERY fields back");
    CHECK(irohds_proto_verify(&m, "", 0, T50, NULL) == 0, "QUERY verifies");

    irohds_proto_claim c;
    len = example_claim(&c, buf, sizeof buf);
    CHECK(irohds_proto_decode(&m, buf, len) == 0 && m.kind == IROHDS_PROTO_CLAIM &&
              m.claim.expected_done_us == T50 + (1LL << 21) &&
              m.claim.expected_seconds == 2.0 && m.claim.figure == 0.5 &&
              memcmp(m.claim.claimer, pk_a, 32) == 0,
          "CLAIM fields back");
    CHECK(irohds_proto_verify(&m, "lab", 3, T50, NULL) == 0, "CLAIM verifies");
}

/* A HAVE whose list cannot travel inline: the fetcher gets it apart. */
static void test_files_apart(uint32_t nfiles, size_t name_len)
{
    static irohds_proto_file files[200];
    static char names[200][1024];
    for (uint32_t i = 0; i < nfiles; i++) {
        /* "d<i>" then x's, a '/' every 100 bytes (components <= 255) */
        int k = snprintf(names[i], sizeof names[i], "d%u", i);
        for (size_t j = (size_t)k; j < name_len; j++)
            names[i][j] = j % 100 == 50 && j + 1 < name_len ? '/' : 'x';
        names[i][name_len > (size_t)k ? name_len : (size_t)k] = 0;
        files[i].name = (irohds_proto_str){names[i], strlen(names[i])};
        memset(files[i].blob, (int)i, 32);
        files[i].size = 1000 + i;
    }
    irohds_proto_have h;
    memset(&h, 0, sizeof h);
    h.result.func = (irohds_proto_str){"m.g", 3};
    h.timestamp_us = T50;
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    size_t len;
    CHECK(irohds_proto_sign_result(&h, files, nfiles, sk_a) == 0, "sign %u files", nfiles);
    CHECK(irohds_proto_encode_have(&h, files, sk_a, buf, sizeof buf, &len) == 0,
          "encode with %u files of %zu bytes", nfiles, name_len);
    CHECK(!h.files_inline && len < 1000, "list left out (%zu bytes)", len);
    irohds_proto_msg m;
    CHECK(irohds_proto_decode(&m, buf, len) == 0 && !m.have.files_inline &&
              m.have.result.nfiles == nfiles,
          "decode");
    CHECK(irohds_proto_verify(&m, "", 0, T50, NULL) == 0, "verifies without its list");

    static uint8_t list[200 * 1100];
    size_t list_len;
    CHECK(irohds_proto_encode_files(files, nfiles, list, sizeof list, &list_len) == 0,
          "encode list");
    static irohds_proto_file got[200];
    uint32_t n;
    int rc = irohds_proto_decode_files(list, list_len, got, 200, &n);
    CHECK(rc == 0 && n == nfiles, "decode list: %d", rc);
    if (rc)
        return;
    CHECK(irohds_proto_have_check_files(&m.have, got, n) == 0, "list matches the HAVE");
    got[n - 1].size++;
    CHECK(irohds_proto_have_check_files(&m.have, got, n) == -EBADMSG, "altered size refused");
    got[n - 1].size--;
    got[0].blob[0] ^= 1;
    CHECK(irohds_proto_have_check_files(&m.have, got, n) == -EBADMSG, "altered hash refused");
    got[0].blob[0] ^= 1;
    CHECK(irohds_proto_have_check_files(&m.have, got, n - 1) == -EBADMSG, "short list refused");
    CHECK(irohds_proto_decode_files(list, list_len, got, nfiles - 1, &n) == -ENOBUFS,
          "decode_files: -ENOBUFS over max");
}

static void test_file_lists(void)
{
    test_files_apart(100, 8);  /* more than 64 files */
    test_files_apart(4, 1000); /* few, but too long for one message */

    uint8_t list[256];
    size_t len;
    irohds_proto_file f = the_file();
    irohds_proto_encode_files(&f, 1, list, sizeof list, &len);
    irohds_proto_file got[2];
    uint32_t n;
    list[len] = 0;
    CHECK(irohds_proto_decode_files(list, len + 1, got, 2, &n) == -EPROTO, "trailing byte");
    CHECK(irohds_proto_decode_files(list, len - 1, got, 2, &n) == -EPROTO, "truncated list");
    uint8_t padded[256] = {0x81, 0x00}; /* n = 1 as a two-byte varint */
    memcpy(padded + 2, list + 1, len - 1);
    CHECK(irohds_proto_decode_files(padded, len + 1, got, 2, &n) == -EPROTO,
          "non-canonical count");
    CHECK(irohds_proto_encode_files(&f, 1, list, 3, &len) == -ENOBUFS && len > 3,
          "encode_files: -ENOBUFS, needed size reported");
}

/* -------------------------------------------------- signatures refused */

static int decode_verify(const uint8_t *buf, size_t len, const char *ns, int64_t now)
{
    irohds_proto_msg m;
    int rc = irohds_proto_decode(&m, buf, len);
    return rc ? rc : irohds_proto_verify(&m, ns, strlen(ns), now, NULL);
}

/* Every single-bit change anywhere is refused, by decode or by verify. */
static void test_every_bit(const char *what, const uint8_t *buf, size_t len, const char *ns)
{
    uint8_t t[IROHDS_PROTO_MAX_MSG];
    int accepted = 0;
    for (size_t i = 0; i < len; i++) {
        for (int bit = 0; bit < 8; bit += 3) {
            memcpy(t, buf, len);
            t[i] ^= (uint8_t)(1u << bit);
            if (decode_verify(t, len, ns, T50) == 0) {
                accepted++;
                printf("  %s: flipped bit %d of byte %zu accepted\n", what, bit, i);
            }
        }
    }
    CHECK(accepted == 0, "%s: %d tampered copies accepted", what, accepted);
}

static void test_tampering(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    irohds_proto_have h;
    irohds_proto_query q;
    irohds_proto_claim c;
    size_t len = example_have(&h, buf, sizeof buf);
    test_every_bit("HAVE", buf, len, "lab");
    len = example_query(&q, buf, sizeof buf);
    test_every_bit("QUERY", buf, len, "");
    len = example_claim(&c, buf, sizeof buf);
    test_every_bit("CLAIM", buf, len, "lab");
}

static void test_wrong_signers(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    irohds_proto_have h;
    irohds_proto_file f = the_file();
    size_t len;
    example_have(&h, buf, sizeof buf);

    /* A provider relays A's result unchanged: fine, whoever provides it. */
    irohds_proto_have relay = h;
    CHECK(irohds_proto_encode_have(&relay, &f, sk_a, buf, sizeof buf, &len) == 0 &&
              decode_verify(buf, len, "lab", T50) == 0,
          "relayed result verifies");

    /* Provider B names B as producer of A's result. */
    irohds_proto_have lie = h;
    memcpy(lie.result.producer, pk_b, 32);
    irohds_proto_encode_have(&lie, &f, sk_b, buf, sizeof buf, &len);
    CHECK(decode_verify(buf, len, "lab", T50) == -EBADMSG, "wrong producer refused");

    /* Provider B changes what the producer said (size, cost, key, blob). */
    lie = h;
    lie.result.size = 301;
    irohds_proto_encode_have(&lie, &f, sk_b, buf, sizeof buf, &len);
    CHECK(decode_verify(buf, len, "lab", T50) == -EBADMSG, "altered size refused");
    lie = h;
    lie.result.compute_seconds = 1000;
    irohds_proto_encode_have(&lie, &f, sk_b, buf, sizeof buf, &len);
    CHECK(decode_verify(buf, len, "lab", T50) == -EBADMSG, "altered compute time refused");
    lie = h;
    lie.result.key[5] ^= 1;
    irohds_proto_encode_have(&lie, &f, sk_b, buf, sizeof buf, &len);
    CHECK(decode_verify(buf, len, "lab", T50) == -EBADMSG, "result moved to another key");

    /* A message naming B as provider, signed by A. */
    irohds_proto_msg m;
    len = example_have(&h, buf, sizeof buf);
    irohds_proto_decode(&m, buf, len);
    memcpy(m.have.provider, pk_a, 32);
    CHECK(irohds_proto_verify(&m, "lab", 3, T50, NULL) == -EBADMSG, "wrong provider refused");

    /* A producer signature from a key that is not the producer's. */
    irohds_proto_have other = h;
    irohds_proto_sign_result(&other, &f, 1, sk_b);
    memcpy(h.producer_sig, other.producer_sig, 64);
    irohds_proto_encode_have(&h, &f, sk_b, buf, sizeof buf, &len);
    CHECK(decode_verify(buf, len, "lab", T50) == -EBADMSG, "producer sig by another key");

    /* A QUERY and a CLAIM signed by someone other than who they name. */
    irohds_proto_query q;
    len = example_query(&q, buf, sizeof buf);
    irohds_proto_decode(&m, buf, len);
    memcpy(m.query.asker, pk_a, 32);
    CHECK(irohds_proto_verify(&m, "", 0, T50, NULL) == -EBADMSG, "wrong asker refused");
    irohds_proto_claim c;
    len = example_claim(&c, buf, sizeof buf);
    irohds_proto_decode(&m, buf, len);
    memcpy(m.claim.claimer, pk_b, 32);
    CHECK(irohds_proto_verify(&m, "lab", 3, T50, NULL) == -EBADMSG, "wrong claimer refused");
    irohds_proto_decode(&m, buf, len);
    m.claim.expected_done_us += 1000000;
    CHECK(irohds_proto_verify(&m, "lab", 3, T50, NULL) == -EBADMSG, "moved T refused");
}

static void test_namespace_and_clock(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    irohds_proto_have h;
    irohds_proto_msg m;
    size_t len = example_have(&h, buf, sizeof buf);
    irohds_proto_decode(&m, buf, len);
    CHECK(irohds_proto_verify(&m, "lab2", 4, T50, NULL) == -EXDEV, "another namespace");
    CHECK(irohds_proto_verify(&m, "", 0, T50, NULL) == -EXDEV, "the global namespace");
    CHECK(irohds_proto_verify(&m, "LAB", 3, T50, NULL) == -EXDEV, "case matters");

    int64_t ts = T50 + 1, s = 1000000;
    CHECK(irohds_proto_verify(&m, "lab", 3, ts + 300 * s, NULL) == 0, "300 s old: fine");
    CHECK(irohds_proto_verify(&m, "lab", 3, ts + 300 * s + 1, NULL) == -ESTALE, "too old");
    CHECK(irohds_proto_verify(&m, "lab", 3, ts - 60 * s, NULL) == 0, "60 s ahead: fine");
    CHECK(irohds_proto_verify(&m, "lab", 3, ts - 60 * s - 1, NULL) == -ESTALE,
          "too far in the future");
    irohds_proto_policy strict = {5 * s, 1 * s};
    CHECK(irohds_proto_verify(&m, "lab", 3, ts + 6 * s, &strict) == -ESTALE, "policy: age");
    CHECK(irohds_proto_verify(&m, "lab", 3, ts - 2 * s, &strict) == -ESTALE, "policy: skew");
    CHECK(irohds_proto_verify(&m, "lab", 3, ts + 4 * s, &strict) == 0, "policy: inside");
    irohds_proto_policy none = {-5, -5};
    CHECK(irohds_proto_verify(&m, "lab", 3, ts, &none) == 0 &&
              irohds_proto_verify(&m, "lab", 3, ts + 1, &none) == -ESTALE,
          "negative policy: an exact clock only");
    CHECK(irohds_proto_verify(&m, "lab", 3, INT64_MIN, NULL) == -ESTALE &&
              irohds_proto_verify(&m, "lab", 3, INT64_MAX, NULL) == -ESTALE,
          "absurd clocks: refused, no overflow");

    irohds_proto_query q;
    len = example_query(&q, buf, sizeof buf);
    irohds_proto_decode(&m, buf, len);
    CHECK(irohds_proto_verify(&m, "lab", 3, T50, NULL) == -EXDEV, "QUERY for global on lab");
    CHECK(irohds_proto_verify(&m, "", 0, T50 + 3600 * s, NULL) == -ESTALE, "old QUERY");
    irohds_proto_claim c;
    len = example_claim(&c, buf, sizeof buf);
    irohds_proto_decode(&m, buf, len);
    CHECK(irohds_proto_verify(&m, "lab", 3, T50 - 3600 * s, NULL) == -ESTALE, "future CLAIM");
}

/* --------------------------------------------------------- malformed */

/* The example HAVE by hand with parts swapped out (signatures zero:
 * decoding looks at form only). */
typedef struct have_parts {
    const char *ns_hex, *size_hex, *compute_hex, *func_hex, *counts_hex, *files_hex;
} have_parts;

static size_t hand_have(const have_parts *p, uint8_t *out)
{
    hand h = {0};
    h_hex(&h, "01 01");
    h_hex(&h, p->ns_hex ? p->ns_hex : "03 6c 61 62");
    h_rep(&h, 0x11, 32);
    h_rep(&h, 0x22, 32);
    h_hex(&h, p->size_hex ? p->size_hex : "ac 02");
    h_hex(&h, "01");
    h_hex(&h, p->compute_hex ? p->compute_hex : "00 00 00 00 00 00 f8 3f");
    h_hex(&h, "00 00 00 00 00 00 00 40");
    h_raw(&h, pk_a, 32);
    h_hex(&h, "80 80 80 80 80 80 80 02");
    h_hex(&h, p->func_hex ? p->func_hex : "03 6d 2e 66");
    h_hex(&h, p->counts_hex ? p->counts_hex : "01 05");
    h_rep(&h, 0x44, 32);
    h_rep(&h, 0, 64);
    if (p->files_hex)
        h_hex(&h, p->files_hex);
    else {
        h_hex(&h, "01 01 05 61 2e 62 69 6e");
        h_rep(&h, 0x33, 32);
        h_hex(&h, "05");
    }
    h_raw(&h, pk_b, 32);
    h_hex(&h, "81 80 80 80 80 80 80 02");
    h_rep(&h, 0, 64);
    memcpy(out, h.b, h.n);
    return h.n;
}

static int decode_parts(const have_parts *p)
{
    uint8_t buf[8192];
    size_t len = hand_have(p, buf);
    irohds_proto_msg m;
    return irohds_proto_decode(&m, buf, len);
}

static void test_malformed(void)
{
    have_parts ok = {0};
    CHECK(decode_parts(&ok) == 0, "hand-built HAVE decodes (form only)");

    have_parts p = {0};
    p.size_hex = "ac 82 00"; /* 300 with a padding byte */
    CHECK(decode_parts(&p) == -EPROTO, "non-canonical varint");
    p = ok, p.ns_hex = "03 6c 0a 62";
    CHECK(decode_parts(&p) == -EPROTO, "control character in ns");
    p = ok, p.ns_hex = "02 c0 af";
    CHECK(decode_parts(&p) == -EPROTO, "overlong UTF-8 in ns");
    p = ok, p.ns_hex = "03 ed a0 80";
    CHECK(decode_parts(&p) == -EPROTO, "surrogate in ns");
    p = ok, p.ns_hex = "04 f4 90 80 80";
    CHECK(decode_parts(&p) == -EPROTO, "code point past U+10FFFF");
    p = ok, p.ns_hex = "02 e2 82";
    CHECK(decode_parts(&p) == -EPROTO, "truncated UTF-8");
    p = ok, p.ns_hex = "06 c3 a9 f0 9f 98 80";
    CHECK(decode_parts(&p) == 0, "two- and four-byte UTF-8 in ns");
    p = ok, p.func_hex = "00";
    CHECK(decode_parts(&p) == -EPROTO, "empty func");
    p = ok, p.compute_hex = "00 00 00 00 00 00 f8 7f"; /* NaN */
    CHECK(decode_parts(&p) == -EPROTO, "NaN compute time");
    p = ok, p.compute_hex = "00 00 00 00 00 00 f0 bf"; /* -1.0 */
    CHECK(decode_parts(&p) == -EPROTO, "negative compute time");
    p = ok, p.counts_hex = "02 05";
    CHECK(decode_parts(&p) == -EPROTO, "nfiles disagrees with the list");
    p = ok, p.counts_hex = "01 06";
    CHECK(decode_parts(&p) == -EPROTO, "files_size disagrees with the list");
    p = ok, p.files_hex = "02";
    CHECK(decode_parts(&p) == -EPROTO, "option tag 2");
    p = ok, p.files_hex = "00";
    CHECK(decode_parts(&p) == 0, "list left out: fine");

    static const char *bad_names[] = {
        "04 2e 2e 2f 78",          /* ../x */
        "02 2f 78",                /* /x */
        "04 61 2f 2f 62",          /* a//b */
        "01 2e",                   /* . */
        "02 61 2f",                /* a/ */
        "03 61 00 62",             /* NUL inside */
        "00",                      /* empty */
    };
    for (size_t i = 0; i < sizeof bad_names / sizeof *bad_names; i++) {
        char files[512];
        snprintf(files, sizeof files,
                 "01 01 %s 33333333333333333333333333333333"
                 "33333333333333333333333333333333 05",
                 bad_names[i]);
        p = ok, p.files_hex = files;
        CHECK(decode_parts(&p) == -EPROTO, "unsafe file name %s", bad_names[i]);
    }
    char two[1024];
    snprintf(two, sizeof two, "01 02 %s %s 02 %s %s 03", "01 61",
             "3333333333333333333333333333333333333333333333333333333333333333", "01 61",
             "3333333333333333333333333333333333333333333333333333333333333333");
    p = ok, p.counts_hex = "02 05", p.files_hex = two;
    CHECK(decode_parts(&p) == -EPROTO, "two files by one name");

    uint8_t buf[8192];
    size_t len = hand_have(&ok, buf);
    irohds_proto_msg m;
    int bad = 0;
    for (size_t i = 0; i < len; i++)
        bad += irohds_proto_decode(&m, buf, i) == 0;
    CHECK(bad == 0, "%d truncations decoded", bad);
    buf[len] = 0;
    CHECK(irohds_proto_decode(&m, buf, len + 1) == -EPROTO, "trailing byte");
    buf[0] = 2;
    CHECK(irohds_proto_decode(&m, buf, len) == -EPROTONOSUPPORT, "version 2");
    buf[0] = 1, buf[1] = 4;
    CHECK(irohds_proto_decode(&m, buf, len) == -EPROTONOSUPPORT, "kind 4");
    buf[1] = 0;
    CHECK(irohds_proto_decode(&m, buf, len) == -EPROTONOSUPPORT, "kind 0");
    buf[1] = 1;
    static uint8_t big[IROHDS_PROTO_MAX_MSG + 1];
    CHECK(irohds_proto_decode(&m, big, sizeof big) == -EMSGSIZE, "over 3584 bytes");
    CHECK(irohds_proto_decode(&m, buf, 0) == -EPROTO, "empty");

    /* CLAIM rules: started <= timestamp, T = 0 or >= started. */
    irohds_proto_claim c;
    example_claim(&c, buf, sizeof buf);
    c.expected_done_us = c.started_us - 1;
    CHECK(irohds_proto_encode_claim(&c, sk_a, buf, sizeof buf, &len) == -EINVAL,
          "T before started");
    c.expected_done_us = 0;
    CHECK(irohds_proto_encode_claim(&c, sk_a, buf, sizeof buf, &len) == 0, "T unknown");
    c.started_us = c.timestamp_us + 1;
    CHECK(irohds_proto_encode_claim(&c, sk_a, buf, sizeof buf, &len) == -EINVAL,
          "started after timestamp");
}

static void test_encode_refusals(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    irohds_proto_have h;
    irohds_proto_file f = the_file();
    size_t len;
    example_have(&h, buf, sizeof buf);
    irohds_proto_have bad = h;
    bad.result.figure = NAN;
    CHECK(irohds_proto_sign_result(&bad, &f, 1, sk_a) == -EINVAL, "NaN figure");
    bad = h, bad.result.compute_seconds = INFINITY;
    CHECK(irohds_proto_encode_have(&bad, &f, sk_b, buf, sizeof buf, &len) == -EINVAL,
          "infinite compute time");
    bad = h, bad.result.ns = (irohds_proto_str){"a\nb", 3};
    CHECK(irohds_proto_encode_have(&bad, &f, sk_b, buf, sizeof buf, &len) == -EINVAL,
          "newline in ns");
    char long_ns[129];
    memset(long_ns, 'n', 128);
    bad = h, bad.result.ns = (irohds_proto_str){long_ns, 128};
    CHECK(irohds_proto_encode_have(&bad, &f, sk_b, buf, sizeof buf, &len) == -EINVAL,
          "128-byte ns");
    bad = h, bad.result.ns = (irohds_proto_str){long_ns, 127};
    CHECK(irohds_proto_sign_result(&bad, &f, 1, sk_a) == 0 &&
              irohds_proto_encode_have(&bad, &f, sk_b, buf, sizeof buf, &len) == 0,
          "127-byte ns");
    char long_func[257];
    memset(long_func, 'f', 256);
    bad = h, bad.result.func = (irohds_proto_str){long_func, 256};
    CHECK(irohds_proto_sign_result(&bad, &f, 1, sk_a) == -EINVAL, "256-byte func");
    bad = h, bad.result.func = (irohds_proto_str){long_func, 255};
    CHECK(irohds_proto_sign_result(&bad, &f, 1, sk_a) == 0, "255-byte func");
    irohds_proto_file other = f;
    other.size = 6;
    CHECK(irohds_proto_encode_have(&h, &other, sk_b, buf, sizeof buf, &len) == -EINVAL,
          "a list the producer did not sign");
    CHECK(irohds_proto_encode_have(&h, &f, sk_b, buf, 100, &len) == -ENOBUFS && len > 100,
          "small buffer: -ENOBUFS and the size needed");
    irohds_proto_file dup[2] = {f, f};
    CHECK(irohds_proto_sign_result(&bad, dup, 2, sk_a) == -EINVAL, "repeated file name");
}

/* proto's file-name rule is never looser than the store's. */
static void test_name_rule(void)
{
    static const char *names[] = {
        "a", "a/b", "dir/file.parquet", "é/ü", "../a", "a/..", "a/./b", ".", "..", "/a",
        "a//b", "a/", "", "a\nb", "a\x7f", ".hidden", "a..b", "...", "\xc0\xaf",
    };
    for (size_t i = 0; i < sizeof names / sizeof *names; i++) {
        irohds_proto_file f = the_file();
        f.name = (irohds_proto_str){names[i], strlen(names[i])};
        size_t len;
        uint8_t buf[256];
        bool proto_ok = irohds_proto_encode_files(&f, 1, buf, sizeof buf, &len) == 0;
        CHECK(!proto_ok || irohds_name_is_safe(names[i]), "'%s' passes proto, not the store",
              names[i]);
    }
    char name[1100];
    memset(name, 'a', sizeof name);
    for (size_t i = 100; i < 1100; i += 100)
        name[i] = '/';
    irohds_proto_file f = the_file();
    uint8_t buf[2048];
    size_t len;
    f.name = (irohds_proto_str){name, 1023};
    CHECK(irohds_proto_encode_files(&f, 1, buf, sizeof buf, &len) == 0, "1023-byte name");
    f.name = (irohds_proto_str){name, 1024};
    CHECK(irohds_proto_encode_files(&f, 1, buf, sizeof buf, &len) == -EINVAL,
          "1024-byte name");
    memset(name, 'a', 300);
    f.name = (irohds_proto_str){name, 256};
    CHECK(irohds_proto_encode_files(&f, 1, buf, sizeof buf, &len) == -EINVAL,
          "256-byte component");
    f.name = (irohds_proto_str){name, 255};
    CHECK(irohds_proto_encode_files(&f, 1, buf, sizeof buf, &len) == 0, "255-byte component");
}

/* ------------------------------------------------- topic, claims, limits */

static void test_topic(void)
{
    uint8_t t[32], want[32];
    /* printf 'lab' | b3sum --derive-key "irohds gossip topic v1" */
    irohds_proto_topic("lab", 3, t);
    irohds_hex_decode("0ab0ae1d839ebf89e2698f2a8b6b4e15bad54417464be62f00cde8b3e6dc30be", want,
                      32);
    CHECK(memcmp(t, want, 32) == 0, "topic of \"lab\" (b3sum)");
    irohds_proto_topic("", 0, t);
    irohds_hex_decode("6603a825e3f19466a9ba130989ed5a65a856fa23a5039c5191992ebdc4cb06d1", want,
                      32);
    CHECK(memcmp(t, want, 32) == 0, "topic of the global namespace (b3sum)");
}

static void test_claim_expiry(void)
{
    int64_t s = 1000000;
    irohds_proto_claim c = {0};
    c.timestamp_us = 1000 * s;
    c.expected_done_us = 0;
    CHECK(irohds_proto_claim_expires_us(&c) == 1090 * s, "T unknown: 90 s after last heard");
    c.expected_done_us = 1010 * s;
    CHECK(irohds_proto_claim_expires_us(&c) == 1070 * s, "T soon: T + 60 s");
    c.expected_done_us = 5000 * s;
    CHECK(irohds_proto_claim_expires_us(&c) == 1090 * s, "T far: silence decides");
    c.timestamp_us = INT64_MAX - 1, c.expected_done_us = INT64_MAX;
    CHECK(irohds_proto_claim_expires_us(&c) == INT64_MAX, "saturates");
}

static void test_limiter(void)
{
    static irohds_proto_limiter l;
    uint8_t p1[32] = {1}, p2[32] = {2};
    int64_t s = 1000000, t = 100 * s;
    irohds_proto_limiter_init(&l, 2.0, 3.0);
    int ok = 0;
    for (int i = 0; i < 10; i++)
        ok += irohds_proto_limiter_allow(&l, p1, t, 1);
    CHECK(ok == 3, "burst of 3, got %d", ok);
    CHECK(irohds_proto_limiter_allow(&l, p2, t, 1), "another peer has its own bucket");
    CHECK(!irohds_proto_limiter_allow(&l, p1, t - 10 * s, 1), "clock backwards: no refill");
    CHECK(!irohds_proto_limiter_allow(&l, p1, t + s / 4, 1), "0.5 token after 250 ms");
    CHECK(irohds_proto_limiter_allow(&l, p1, t + s / 2, 1), "1 token after 500 ms");
    ok = 0;
    for (int i = 0; i < 10; i++)
        ok += irohds_proto_limiter_allow(&l, p1, t + 100 * s, 1);
    CHECK(ok == 3, "refill stops at the burst, got %d", ok);
    CHECK(!irohds_proto_limiter_allow(&l, p2, t, NAN), "NaN cost refused");
    CHECK(!irohds_proto_limiter_allow(&l, p2, t, 4), "cost over the burst");

    /* A flood of made-up ids mints no tokens and frees no drained bucket. */
    irohds_proto_limiter_init(&l, 1.0, 2.0);
    uint8_t flood[32] = {0};
    while (irohds_proto_limiter_allow(&l, p1, t, 1))
        ;
    int fresh = 0;
    for (unsigned i = 0; i < 5000; i++) {
        memcpy(flood, &i, sizeof i);
        flood[4] = 0xee;
        fresh += irohds_proto_limiter_allow(&l, flood, t, 2);
    }
    CHECK(fresh == IROHDS_PROTO_LIMITER_SLOTS - 1, "5000 new ids got %d bursts, not one per id",
          fresh);
    CHECK(!irohds_proto_limiter_allow(&l, p1, t, 1), "the drained peer is still drained");
    /* Once the flood stops, buckets refill and newcomers get in again. */
    uint8_t late[32] = {7, 7, 7};
    CHECK(irohds_proto_limiter_allow(&l, late, t + 2 * s, 2), "newcomer after the flood");
    CHECK(irohds_proto_limiter_allow(&l, p1, t + 2 * s, 1), "p1 refilled too");

    /* would_allow looks without taking. */
    irohds_proto_limiter_init(&l, 1.0, 2.0);
    CHECK(irohds_proto_limiter_would_allow(&l, p1, t, 2), "an unknown peer would get a bucket");
    CHECK(!irohds_proto_limiter_would_allow(&l, p1, t, 3), "but not more than the burst");
    for (int i = 0; i < 5; i++)
        CHECK(irohds_proto_limiter_would_allow(&l, p1, t, 1), "looking takes nothing");
    CHECK(irohds_proto_limiter_allow(&l, p1, t, 1) && irohds_proto_limiter_allow(&l, p1, t, 1),
          "the whole burst is still there");
    CHECK(!irohds_proto_limiter_would_allow(&l, p1, t, 1), "drained");
    CHECK(irohds_proto_limiter_would_allow(&l, p1, t + s, 1), "refilled after 1 s");
    CHECK(!irohds_proto_limiter_would_allow(&l, p1, t, NAN), "NaN cost");
}

int main(int argc, char **argv)
{
    if (sodium_init() < 0)
        return 1;
    load_keys(argc > 1 ? argv[1] : "../shared/testdata");
    test_have_layout();
    test_query_layout();
    test_claim_layout();
    test_round_trips();
    test_file_lists();
    test_tampering();
    test_wrong_signers();
    test_namespace_and_clock();
    test_malformed();
    test_encode_refusals();
    test_name_rule();
    test_topic();
    test_claim_expiry();
    test_limiter();
    return check_summary();
}
