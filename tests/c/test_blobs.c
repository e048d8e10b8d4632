/*
 * test_blobs: chunk range sets and the iroh-blobs request wire format.
 *
 * Expected values come from outside this code base:
 *  - iroh-blobs/range_spec_wire_format.json: RangeSpec and ChunkRangesSeq
 *    bytes, each built here from the case's Rust constructor (read by hand:
 *    chunks(1..3) is [1, 3), chunks(..64) is [0, 64), ...), both ways; the
 *    tuple counts of ChunkRangesSeq::from_ranges; the constructor
 *    definitions (root, all, verified_size, GetManyRequest);
 *  - iroh-blobs/request_wire_format.json: whole Get requests both ways;
 *  - bao/bao_tree_cases.json: bao-tree's truncate_ranges and
 *    full_chunk_groups cases;
 *  - iroh-blobs tests range_spec_overflow_returns_none and
 *    range_spec_seq_overflow_rejected (inputs written out here by hand).
 * Then malformed requests: every truncation, trailing bytes, hostile
 * counts, zero-width spans, bad discriminants; and the range-set rules.
 *
 * Usage: test_blobs TESTDATA_DIR.  Prints "N passed, M failed".
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vectors.h"

#include "blobs/blobs.h"

#define OPEN IROHDS_BLOBS_OPEN

static json_object *load(const char *dir, const char *file)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    json_object *root = json_object_from_file(path);
    CHECK(root != NULL, "cannot read %s", path);
    return root;
}

/* A set from (start, end) pairs; end OPEN for "..". */
static irohds_blobs_ranges set_of(int n, const uint64_t *pairs)
{
    irohds_blobs_ranges rs;
    irohds_blobs_ranges_empty(&rs);
    for (int i = 0; i < n; i++)
        irohds_blobs_ranges_add(&rs, pairs[2 * i], pairs[2 * i + 1]);
    return rs;
}

static size_t encode_ranges(const irohds_blobs_ranges *rs, uint8_t *buf, size_t cap)
{
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, buf, cap);
    irohds_blobs_ranges_encode(&w, rs);
    return w.err ? (size_t)-1 : w.len;
}

static size_t encode_seq(const irohds_blobs_seq *seq, uint8_t *buf, size_t cap)
{
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, buf, cap);
    irohds_blobs_seq_encode(&w, seq);
    return w.err ? (size_t)-1 : w.len;
}

static int decode_ranges(const uint8_t *buf, size_t len, irohds_blobs_ranges *rs)
{
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, buf, len);
    irohds_blobs_ranges_decode(&r, rs);
    return irohds_pc_finish(&r);
}

static int decode_seq(const uint8_t *buf, size_t len, irohds_blobs_seq *seq)
{
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, buf, len);
    irohds_blobs_seq_decode(&r, seq);
    return irohds_pc_finish(&r);
}

static bool seq_equal(const irohds_blobs_seq *a, const irohds_blobs_seq *b)
{
    if (a->n != b->n)
        return false;
    for (uint32_t i = 0; i < a->n; i++)
        if (a->index[i] != b->index[i] || !irohds_blobs_ranges_equal(&a->ranges[i], &b->ranges[i]))
            return false;
    return true;
}

/* ------------------------------------------------------ RangeSpec cases */

/* The constructors of range_spec_cases, by case name. */
static bool range_spec_case(const char *name, irohds_blobs_ranges *rs)
{
    if (!strcmp(name, "empty"))
        irohds_blobs_ranges_empty(rs); /* RangeSpec::EMPTY */
    else if (!strcmp(name, "all"))
        irohds_blobs_ranges_all(rs); /* RangeSpec::all() */
    else if (!strcmp(name, "from_64"))
        irohds_blobs_ranges_from(rs, 64); /* chunks(64..) */
    else if (!strcmp(name, "from_10000"))
        irohds_blobs_ranges_from(rs, 10000); /* chunks(10000..) */
    else if (!strcmp(name, "until_64"))
        irohds_blobs_ranges_single(rs, 0, 64); /* chunks(..64) */
    else if (!strcmp(name, "1_3_and_9_13"))
        *rs = set_of(2, (uint64_t[]){1, 3, 9, 13}); /* chunks(1..3) | chunks(9..13) */
    else
        return false;
    return true;
}

static void test_range_spec_vectors(json_object *root)
{
    json_object *arr = jget(root, "range_spec_cases");
    CHECK(arr && json_object_array_length(arr) == 6, "range_spec_cases: 6 expected");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        const char *name = jstr(c, "name");
        irohds_blobs_ranges want, got;
        uint8_t exp[64], buf[64];
        size_t en = unhex(jstr(c, "hex"), exp, sizeof exp);
        CHECK(range_spec_case(name, &want), "unknown RangeSpec case %s", name);
        size_t n = encode_ranges(&want, buf, sizeof buf);
        CHECK(n == en && memcmp(buf, exp, n) == 0, "RangeSpec %s encode", name);
        CHECK(decode_ranges(exp, en, &got) == 0 && irohds_blobs_ranges_equal(&got, &want),
              "RangeSpec %s decode", name);
    }
}

/* ------------------------------------------------- ChunkRangesSeq cases */

static bool seq_case(const char *name, irohds_blobs_seq *seq)
{
    irohds_blobs_ranges l[5];
    if (!strcmp(name, "empty"))
        return irohds_blobs_seq_from_ranges(seq, NULL, 0, false) == 0;
    if (!strcmp(name, "all")) { /* [(0, all)] */
        irohds_blobs_ranges_all(&l[0]);
        return irohds_blobs_seq_from_ranges(seq, l, 1, true) == 0;
    }
    if (!strcmp(name, "two_blobs")) { /* from_ranges([chunks(1..3), chunks(7..13)]) */
        irohds_blobs_ranges_single(&l[0], 1, 3);
        irohds_blobs_ranges_single(&l[1], 7, 13);
        return irohds_blobs_seq_from_ranges(seq, l, 2, false) == 0;
    }
    if (!strcmp(name, "infinite")) { /* from_ranges_infinite([e, e, e, 7.., all]) */
        for (int i = 0; i < 3; i++)
            irohds_blobs_ranges_empty(&l[i]);
        irohds_blobs_ranges_from(&l[3], 7);
        irohds_blobs_ranges_all(&l[4]);
        return irohds_blobs_seq_from_ranges(seq, l, 5, true) == 0;
    }
    return false;
}

static void test_seq_vectors(json_object *root)
{
    json_object *arr = jget(root, "chunk_ranges_seq_cases");
    CHECK(arr && json_object_array_length(arr) == 4, "chunk_ranges_seq_cases: 4 expected");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        const char *name = jstr(c, "name");
        irohds_blobs_seq want, got;
        uint8_t exp[64], buf[64];
        size_t en = unhex(jstr(c, "hex"), exp, sizeof exp);
        CHECK(seq_case(name, &want), "unknown ChunkRangesSeq case %s", name);
        size_t n = encode_seq(&want, buf, sizeof buf);
        CHECK(n == en && memcmp(buf, exp, n) == 0, "ChunkRangesSeq %s encode", name);
        CHECK(decode_seq(exp, en, &got) == 0 && seq_equal(&got, &want),
              "ChunkRangesSeq %s decode", name);
    }
    /* what the two_blobs and infinite sequences give each blob, by hand */
    irohds_blobs_seq s;
    irohds_blobs_ranges r13, r713, from7, all;
    irohds_blobs_ranges_single(&r13, 1, 3);
    irohds_blobs_ranges_single(&r713, 7, 13);
    irohds_blobs_ranges_from(&from7, 7);
    irohds_blobs_ranges_all(&all);
    seq_case("two_blobs", &s);
    CHECK(irohds_blobs_ranges_equal(irohds_blobs_seq_get(&s, 0), &r13) &&
              irohds_blobs_ranges_equal(irohds_blobs_seq_get(&s, 1), &r713) &&
              irohds_blobs_ranges_is_empty(irohds_blobs_seq_get(&s, 2)) &&
              irohds_blobs_ranges_is_empty(irohds_blobs_seq_get(&s, 1000)),
          "two_blobs per blob");
    seq_case("infinite", &s);
    CHECK(irohds_blobs_ranges_is_empty(irohds_blobs_seq_get(&s, 0)) &&
              irohds_blobs_ranges_is_empty(irohds_blobs_seq_get(&s, 2)) &&
              irohds_blobs_ranges_equal(irohds_blobs_seq_get(&s, 3), &from7) &&
              irohds_blobs_ranges_equal(irohds_blobs_seq_get(&s, 4), &all) &&
              irohds_blobs_ranges_equal(irohds_blobs_seq_get(&s, UINT64_MAX), &all),
          "infinite per blob");
}

static void test_canonicalization(json_object *root)
{
    json_object *canon = jget(root, "canonicalization_cases");
    json_object *arr = canon ? jget(canon, "cases") : NULL;
    CHECK(arr && json_object_array_length(arr) == 3, "canonicalization_cases: 3 expected");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        json_object *list = jget(c, "ranges_chunks");
        size_t n = json_object_array_length(list);
        irohds_blobs_ranges l[8];
        for (size_t k = 0; k < n && k < 8; k++) {
            json_object *p = json_object_array_get_idx(list, k);
            irohds_blobs_ranges_single(&l[k],
                                       (uint64_t)json_object_get_int64(json_object_array_get_idx(p, 0)),
                                       (uint64_t)json_object_get_int64(json_object_array_get_idx(p, 1)));
        }
        irohds_blobs_seq seq, back;
        CHECK(irohds_blobs_seq_from_ranges(&seq, l, n, false) == 0, "from_ranges case %zu", i);
        CHECK((int64_t)seq.n == json_object_get_int64(jget(c, "expected_tuple_count")),
              "from_ranges case %zu: %u tuples", i, seq.n);
        /* range_spec_seq_roundtrip_cases: every blob gets its set back,
         * also through the wire */
        uint8_t buf[128];
        size_t len = encode_seq(&seq, buf, sizeof buf);
        CHECK(decode_seq(buf, len, &back) == 0 && seq_equal(&back, &seq), "roundtrip %zu", i);
        for (size_t k = 0; k < n; k++)
            CHECK(irohds_blobs_ranges_equal(irohds_blobs_seq_get(&back, k), &l[k]),
                  "case %zu blob %zu", i, k);
    }
}

/* constructor_definitions, written out as bytes by hand. */
static void test_constructors(void)
{
    irohds_blobs_seq seq, got;
    irohds_blobs_ranges l[1];
    uint8_t buf[64];
    /* root() = [(0, all), (1, empty)] = from_ranges([all]) */
    irohds_blobs_ranges_all(&l[0]);
    irohds_blobs_seq_from_ranges(&seq, l, 1, false);
    size_t n = encode_seq(&seq, buf, sizeof buf);
    CHECK(n == 6 && !memcmp(buf, "\x02\x00\x01\x00\x01\x00", 6), "root()");
    /* verified_size() = [(0, last_chunk), (1, empty)], last_chunk = u64::MAX.. */
    irohds_blobs_ranges_from(&l[0], UINT64_MAX);
    irohds_blobs_seq_from_ranges(&seq, l, 1, false);
    n = encode_seq(&seq, buf, sizeof buf);
    static const uint8_t vs[] = {0x02, 0x00, 0x01, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xff, 0xff, 0xff, 0x01, 0x01, 0x00};
    CHECK(n == sizeof vs && !memcmp(buf, vs, n), "verified_size()");
    CHECK(decode_seq(vs, sizeof vs, &got) == 0 && seq_equal(&got, &seq) &&
              irohds_blobs_seq_get(&got, 0)->r[0].start == UINT64_MAX,
          "verified_size() decode");
    /* GetManyRequest::from_iter(3 hashes): [(0, all), (3, empty)] */
    static const uint8_t gm[] = {0x02, 0x00, 0x01, 0x00, 0x03, 0x00};
    CHECK(decode_seq(gm, sizeof gm, &got) == 0 && got.n == 2 && got.index[1] == 3 &&
              irohds_blobs_ranges_is_all(irohds_blobs_seq_get(&got, 2)) &&
              irohds_blobs_ranges_is_empty(irohds_blobs_seq_get(&got, 3)),
          "GetManyRequest ranges");
}

/* ------------------------------------------------------- whole requests */

static void test_request_vectors(json_object *root)
{
    json_object *arr = jget(root, "cases");
    CHECK(arr && json_object_array_length(arr) == 2, "request cases: 2 expected");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        const char *name = jstr(c, "name");
        irohds_blobs_get want, got;
        irohds_blobs_ranges all;
        irohds_blobs_ranges_all(&all);
        memset(want.hash, 0xda, 32);
        bool blob = !strcmp(name, "get_blob"); /* GetRequest::blob: from_ranges([all]) */
        CHECK(blob || !strcmp(name, "get_all"), "unknown request case %s", name);
        irohds_blobs_seq_from_ranges(&want.ranges, &all, 1, !blob);
        uint8_t exp[128], buf[128];
        size_t en = unhex(jstr(c, "hex"), exp, sizeof exp), n;
        CHECK(irohds_blobs_get_encode(&want, buf, sizeof buf, &n) == 0 && n == en &&
                  memcmp(buf, exp, n) == 0,
              "%s encode", name);
        CHECK(irohds_blobs_request_decode(exp, en, &got) == 0 && !memcmp(got.hash, want.hash, 32) &&
                  seq_equal(&got.ranges, &want.ranges),
              "%s decode", name);
        bool children;
        const irohds_blobs_ranges *rr = irohds_blobs_get_root_ranges(&got, &children);
        CHECK(irohds_blobs_ranges_is_all(rr) && children == !blob, "%s root ranges", name);
        CHECK(irohds_blobs_get_encode(&want, buf, n - 1, &n) == -ENOBUFS && n == en,
              "%s encode into a short buffer", name);
        /* malformed: every truncation, and a trailing byte */
        for (size_t k = 0; k < en; k++)
            CHECK(irohds_blobs_request_decode(exp, k, &got) == -EPROTO, "%s cut at %zu", name, k);
        exp[en] = 0;
        CHECK(irohds_blobs_request_decode(exp, en + 1, &got) == -EPROTO, "%s trailing byte", name);
    }
}

/* A request: kind byte, optional 32-byte hash, then body. */
static size_t request(uint8_t *buf, uint8_t kind, bool hash, const char *body, size_t n)
{
    uint8_t *p = buf;
    *p++ = kind;
    if (hash) {
        memset(p, 0x11, 32);
        p += 32;
    }
    memcpy(p, body, n);
    return (size_t)(p + n - buf);
}

static void test_malformed(void)
{
    uint8_t buf[600] = {0};
    irohds_blobs_get get;
    irohds_blobs_ranges rs;
    irohds_blobs_seq seq;
    size_t n;

    CHECK(irohds_blobs_request_decode(buf, 0, &get) == -EPROTO, "empty request");
    /* reserved and unknown discriminants */
    for (int kind = 2; kind < 8; kind++) {
        n = request(buf, (uint8_t)kind, false, "", 0);
        CHECK(irohds_blobs_request_decode(buf, n, &get) == -EPROTO, "slot %d", kind);
    }
    uint8_t bad_kinds[] = {10, 0x7f, 0x80, 0xff};
    for (size_t i = 0; i < sizeof bad_kinds; i++) {
        n = request(buf, bad_kinds[i], true, "\x02\x00\x01\x00\x01\x00", 6);
        CHECK(irohds_blobs_request_decode(buf, n, &get) == -EPROTO, "kind %u", bad_kinds[i]);
    }
    /* well-formed requests irohds does not serve */
    n = request(buf, IROHDS_BLOBS_REQ_OBSERVE, true, "\x01\x00", 2);
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -ENOTSUP, "observe");
    CHECK(irohds_blobs_request_decode(buf, n - 1, &get) == -EPROTO, "observe cut");
    n = request(buf, IROHDS_BLOBS_REQ_GET_MANY, false,
                "\x02" "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
                "\x02\x00\x01\x00\x02\x00", 71);
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -ENOTSUP, "get_many");
    CHECK(irohds_blobs_request_decode(buf, n + 1, &get) == -EPROTO, "get_many trailing");
    buf[1] = 0x7f; /* 127 hashes in 70 bytes */
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -EPROTO, "get_many hash count");
    /* push: 08, varint length 38, a GetRequest, then the pushed data */
    buf[0] = IROHDS_BLOBS_REQ_PUSH;
    buf[1] = 38;
    memset(buf + 2, 0x11, 32);
    memcpy(buf + 34, "\x02\x00\x01\x00\x01\x00", 6);
    buf[40] = 'x';
    CHECK(irohds_blobs_request_decode(buf, 41, &get) == -ENOTSUP, "push");
    CHECK(irohds_blobs_request_decode(buf, 39, &get) == -EPROTO, "push cut");
    buf[1] = 39; /* the framed body would hold a trailing byte */
    CHECK(irohds_blobs_request_decode(buf, 41, &get) == -EPROTO, "push long body");
    buf[1] = 37; /* ... or a truncated GetRequest */
    CHECK(irohds_blobs_request_decode(buf, 41, &get) == -EPROTO, "push short body");

    /* huge counts: a seq or span count far beyond the bytes */
    n = request(buf, 0, true, "\xff\xff\xff\xff\x0f", 5);
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -EOVERFLOW, "huge seq count");
    n = request(buf, 0, true, "\x01\x00\xff\xff\x03", 5);
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -EOVERFLOW, "huge span count");
    n = request(buf, 0, true, "\x01\x00\x81\x01\x01", 5);
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -EOVERFLOW, "129 spans (> 2 * 64)");
    n = request(buf, 0, true, "\x01\x00\x20\x01", 4);
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -EPROTO, "32 spans in 1 byte");
    n = request(buf, 0, true, "\x09", 1);
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -EOVERFLOW, "9 seq entries (> 8)");
    n = request(buf, 0, true, "\x80\x80\x80\x80\x80\x80\x80\x80\x80\x80\x01", 11);
    CHECK(irohds_blobs_request_decode(buf, n, &get) == -EOVERFLOW, "11-byte varint");

    /* ranges that are not sorted, disjoint and non-empty: zero widths */
    static const char *zero_width[] = {"\x02\x00\x00", "\x03\x01\x02\x00", "\x04\x01\x00\x01\x01",
                                       "\x04\x01\x02\x00\x04"};
    for (size_t i = 0; i < 4; i++) {
        size_t k = 1 + (size_t)zero_width[i][0];
        CHECK(decode_ranges((const uint8_t *)zero_width[i], k, &rs) == -EPROTO,
              "zero-width span %zu", i);
    }
    /* range_spec_overflow_returns_none: [u64::MAX, 1] */
    static const uint8_t ovf[] = {0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                  0xff, 0xff, 0xff, 0x01, 0x01};
    CHECK(decode_ranges(ovf, sizeof ovf, &rs) == -EOVERFLOW, "RangeSpec overflow");
    /* range_spec_seq_overflow_rejected: [(u64::MAX, all), (1, all)] */
    static const uint8_t sovf[] = {0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                   0xff, 0xff, 0x01, 0x01, 0x00, 0x01, 0x01, 0x00};
    CHECK(decode_seq(sovf, sizeof sovf, &seq) == -EOVERFLOW, "ChunkRangesSeq overflow");
    CHECK(decode_seq((const uint8_t *)"\x02\x00\x01\x00\x00\x00", 6, &seq) == -EPROTO,
          "zero index delta");
    /* a closed range ending at 2^64 - 1 reads as open (documented) */
    static const uint8_t to_max[] = {0x02, 0x05, 0xfa, 0xff, 0xff, 0xff, 0xff,
                                     0xff, 0xff, 0xff, 0xff, 0x01};
    CHECK(decode_ranges(to_max, sizeof to_max, &rs) == 0 && rs.n == 1 && rs.r[0].start == 5 &&
              rs.r[0].end == OPEN,
          "range to 2^64 - 1");
    /* postcard's non-canonical varints are accepted, written canonically */
    CHECK(decode_ranges((const uint8_t *)"\x01\x80\x00", 3, &rs) == 0 &&
              irohds_blobs_ranges_is_all(&rs),
          "non-canonical varint");
}

/* ---------------------------------------------------------- range sets */

static void test_range_rules(void)
{
    irohds_blobs_ranges rs;
    irohds_blobs_ranges_empty(&rs);
    CHECK(irohds_blobs_ranges_add(&rs, 5, 10) == 0, "add");
    CHECK(irohds_blobs_ranges_add(&rs, 3, 4) == -EINVAL, "add unsorted");
    CHECK(irohds_blobs_ranges_add(&rs, 9, 12) == -EINVAL, "add overlapping");
    CHECK(irohds_blobs_ranges_add(&rs, 10, 12) == 0 && rs.n == 1 && rs.r[0].end == 12,
          "add touching merges");
    CHECK(irohds_blobs_ranges_add(&rs, 20, 20) == 0 && rs.n == 1, "add empty");
    CHECK(irohds_blobs_ranges_add(&rs, 20, OPEN) == 0 && rs.n == 2, "add open");
    CHECK(irohds_blobs_ranges_add(&rs, 30, 40) == -EINVAL, "add after open");
    CHECK(irohds_blobs_ranges_contains(&rs, 5) && irohds_blobs_ranges_contains(&rs, 11) &&
              !irohds_blobs_ranges_contains(&rs, 12) && !irohds_blobs_ranges_contains(&rs, 4) &&
              irohds_blobs_ranges_contains(&rs, UINT64_MAX),
          "contains");
    irohds_blobs_ranges_empty(&rs);
    int err = 0;
    for (uint64_t i = 0; i < IROHDS_BLOBS_MAX_RANGES + 1 && !err; i++)
        err = irohds_blobs_ranges_add(&rs, 2 * i, 2 * i + 1);
    CHECK(err == -EOVERFLOW && rs.n == IROHDS_BLOBS_MAX_RANGES, "add to a full set");
    irohds_blobs_ranges_single(&rs, 7, 7);
    CHECK(irohds_blobs_ranges_is_empty(&rs), "single empty");
    irohds_blobs_ranges_single(&rs, 0, OPEN);
    CHECK(irohds_blobs_ranges_is_all(&rs), "single all");
    irohds_blobs_ranges_from(&rs, UINT64_MAX);
    CHECK(!irohds_blobs_ranges_is_empty(&rs) && !irohds_blobs_ranges_contains(&rs, 5),
          "last chunk request");
}

/* [[a, b], ...] with null for unbounded, as bao_tree_cases.json writes them. */
static irohds_blobs_ranges json_set(json_object *arr)
{
    irohds_blobs_ranges rs;
    irohds_blobs_ranges_empty(&rs);
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *p = json_object_array_get_idx(arr, i);
        json_object *a = json_object_array_get_idx(p, 0), *b = json_object_array_get_idx(p, 1);
        irohds_blobs_ranges_add(&rs, a ? (uint64_t)json_object_get_int64(a) : 0,
                                b ? (uint64_t)json_object_get_int64(b) : OPEN);
    }
    return rs;
}

static void test_bao_tree_cases(json_object *root)
{
    json_object *t = jget(root, "truncate_ranges_cases");
    json_object *arr = t ? jget(t, "cases") : NULL;
    CHECK(arr && json_object_array_length(arr) == 17, "truncate cases: 17 expected");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        irohds_blobs_ranges in = json_set(jget(c, "ranges")), want = json_set(jget(c, "expected"));
        irohds_blobs_ranges got;
        uint64_t size = (uint64_t)json_object_get_int64(jget(c, "size"));
        irohds_blobs_ranges_truncate(&in, size, &got);
        CHECK(irohds_blobs_ranges_equal(&got, &want), "truncate case %zu", i);
        irohds_blobs_ranges_truncate(&in, size, &in); /* in place */
        CHECK(irohds_blobs_ranges_equal(&in, &want), "truncate case %zu in place", i);
    }
    t = jget(root, "full_chunk_groups_block_size_4");
    arr = t ? jget(t, "cases") : NULL;
    CHECK(arr && json_object_array_length(arr) == 4, "full groups cases: 4 expected");
    for (size_t i = 0; arr && i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        irohds_blobs_ranges in = json_set(jget(c, "input")), want = json_set(jget(c, "expected"));
        irohds_blobs_ranges_full_groups(&in, 4, &in);
        CHECK(irohds_blobs_ranges_equal(&in, &want), "full_chunk_groups case %zu", i);
    }
}

/* clip: what a response carries, by hand from bao-tree's rules. */
static void test_clip(void)
{
    irohds_blobs_ranges in, got, want;
    irohds_blobs_ranges_from(&in, 99); /* past the end of 31 chunks: the last */
    irohds_blobs_ranges_clip(&in, 31744, &got);
    irohds_blobs_ranges_single(&want, 30, 31);
    CHECK(irohds_blobs_ranges_equal(&got, &want), "clip past the end");
    in = set_of(2, (uint64_t[]){0, 29, 1000, OPEN});
    irohds_blobs_ranges_clip(&in, 31744, &got);
    want = set_of(2, (uint64_t[]){0, 29, 30, 31});
    CHECK(irohds_blobs_ranges_equal(&got, &want), "clip with a hole before the last chunk");
    irohds_blobs_ranges_clip(&in, 31744 - 1023, &got); /* 31 chunks, last one 1 byte */
    CHECK(irohds_blobs_ranges_equal(&got, &want), "clip, short last chunk");
    irohds_blobs_ranges_all(&in);
    irohds_blobs_ranges_clip(&in, 0, &got);
    irohds_blobs_ranges_single(&want, 0, 1);
    CHECK(irohds_blobs_ranges_equal(&got, &want), "clip empty blob");
    irohds_blobs_ranges_single(&in, 2, 5);
    irohds_blobs_ranges_clip(&in, 100 * 1024, &got);
    CHECK(irohds_blobs_ranges_equal(&got, &in), "clip inside");
    irohds_blobs_ranges_empty(&in);
    irohds_blobs_ranges_clip(&in, 100 * 1024, &got);
    CHECK(irohds_blobs_ranges_is_empty(&got), "clip nothing");
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TESTDATA_DIR\n", argv[0]);
        return 2;
    }
    json_object *spec = load(argv[1], "iroh-blobs/range_spec_wire_format.json");
    json_object *req = load(argv[1], "iroh-blobs/request_wire_format.json");
    json_object *tree = load(argv[1], "bao/bao_tree_cases.json");
    if (spec) {
        test_range_spec_vectors(spec);
        test_seq_vectors(spec);
        test_canonicalization(spec);
    }
    if (req)
        test_request_vectors(req);
    if (tree)
        test_bao_tree_cases(tree);
    test_constructors();
    test_malformed();
    test_range_rules();
    test_clip();
    json_object_put(spec);
    json_object_put(req);
    json_object_put(tree);
    return check_summary();
}
