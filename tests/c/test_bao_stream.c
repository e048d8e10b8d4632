/*
 * test_bao_stream: the bao stream encoder and decoder (blobs/blobs.h).
 *
 * Where expected bytes come from:
 *  - bao/test_vectors_chunk_groups_16k.json (16 KiB groups): the whole-blob
 *    encoding (compared by its BLAKE3, as the file gives it), its length,
 *    the prefixed outboard, and the slices whose bao-tree response is the
 *    same as the bao branch's: a slice that starts on a group and ends on
 *    one or at the end.  (Elsewhere the two differ: the unreleased bao
 *    branch sends a partly selected group whole, bao-tree sends its
 *    chunk-level parents and the selected chunks.)
 *  - bao/test_vectors.json (1 KiB chunks, group_log 0): every encoding and
 *    every slice, including slices past the end, since bao-tree is
 *    compatible with bao for block size 0 and a single range.
 *  - A reference encoder written here from bao-tree's recursive one
 *    (rec.rs encode_selected_rec, truncate_ranges, and range_collections'
 *    RangeSetRef::split), working on the whole blob and a flat boundary
 *    list; it is checked against both vector files first, then the
 *    streaming encoder (outboard + callbacks, iterative) must produce its
 *    bytes exactly for random sizes and ranges.
 *  - bao_tree_cases.json sub_chunk_group_query: one leaf item.
 * The decoder must accept what the encoder sends under any fragmentation,
 * release exactly the blob's bytes, rebuild the outboard irohds_bao_outboard
 * makes, and fail on every listed corruption, on flipped bytes anywhere
 * (before releasing a wrong byte), on truncation and on extra bytes.
 *
 * Usage: test_bao_stream TESTDATA_DIR.  Prints "N passed, M failed".
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vectors.h"

#include "blobs/blobs.h"
#include "hash/bao.h"
#include "hash/blake3.h"

#define OPEN IROHDS_BLOBS_OPEN
#define G4 4

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static uint64_t rnd_below(uint64_t n)
{
    return n ? rnd() % n : 0;
}

static uint8_t *random_bytes(size_t len)
{
    uint8_t *b = malloc(len + 1);
    for (size_t i = 0; i < len; i++)
        b[i] = (uint8_t)(rnd() >> 32);
    return b;
}

typedef struct {
    uint8_t *data, *ob, root[32];
    uint64_t size, ob_len;
} blob_t;

static blob_t make_blob(uint8_t *data, uint64_t size, unsigned g)
{
    blob_t b = {.data = data, .size = size, .ob_len = irohds_bao_outboard_size(size, g)};
    b.ob = malloc(b.ob_len + 1);
    irohds_bao_outboard(data, size, g, b.ob, b.root);
    return b;
}

static void free_blob(blob_t *b)
{
    free(b->data);
    free(b->ob);
}

/* ------------------------------------------------- reference encoder */

/*
 * bao-tree's recursive encoder, on a boundary list b[0..n) (strictly
 * increasing; ranges [b0, b1), [b2, b3)..., an odd n leaves the last open).
 */
static const uint64_t zero_boundary[1] = {0};

typedef struct {
    const uint64_t *b;
    size_t n;
} bset;

/* range_collections split: left agrees below at, right at and above. */
static void ref_split(bset s, uint64_t at, bset *l, bset *r)
{
    size_t i = 0;
    while (i < s.n && s.b[i] < at)
        i++;
    bool found = i < s.n && s.b[i] == at;
    l->b = s.b;
    l->n = i;
    if (i % 2 == 0) {
        r->b = s.b + i;
        r->n = s.n - i;
    } else if (found) {
        r->b = s.b + i + 1;
        r->n = s.n - i - 1;
    } else {
        r->b = s.b + i - 1;
        r->n = s.n - i + 1;
    }
}

/* bao-tree split_inner: a single interval covering the node becomes "all". */
static void ref_split_inner(bset s, uint64_t start, uint64_t mid, bset *l, bset *r)
{
    ref_split(s, mid, l, r);
    if (l->n == 1 && l->b[0] <= start)
        *l = (bset){zero_boundary, 1};
    if (r->n == 1 && r->b[0] <= mid)
        *r = (bset){zero_boundary, 1};
}

static void ref_rec(const uint8_t *data, uint64_t len, uint64_t start_chunk, bool is_root, bset q,
                    unsigned min_level, uint8_t *out, size_t *pos, uint8_t cv[32])
{
    if (len <= 1024) {
        if (q.n) {
            memcpy(out + *pos, data, len);
            *pos += len;
        }
        irohds_blake3_subtree_cv(data, len, start_chunk, is_root, cv);
        return;
    }
    uint64_t chunks = (len + 1023) / 1024, pow2 = 1;
    while (pow2 < chunks)
        pow2 *= 2;
    unsigned level = (unsigned)__builtin_ctzll(pow2) - 1;
    uint64_t mid = pow2 / 2;
    bset l, r;
    ref_split_inner(q, start_chunk, start_chunk + mid, &l, &r);
    bool full = q.n == 1 && q.b[0] == 0;
    bool emit_parent = q.n && (!full || level >= min_level);
    size_t at = *pos;
    if (emit_parent)
        *pos += 64;
    uint8_t left[32], right[32];
    ref_rec(data, mid * 1024, start_chunk, false, l, min_level, out, pos, left);
    ref_rec(data + mid * 1024, len - mid * 1024, start_chunk + mid, false, r, min_level, out, pos,
            right);
    if (emit_parent) {
        memcpy(out + at, left, 32);
        memcpy(out + at + 32, right, 32);
    }
    irohds_blake3_parent_cv(left, right, is_root, cv);
}

/* bao-tree truncated_len. */
static size_t ref_truncated_len(bset s, uint64_t size)
{
    uint64_t chunks = (size + 1023) / 1024;
    uint64_t lc = chunks ? chunks - 1 : 0;
    size_t i = 0;
    while (i < s.n && s.b[i] < lc)
        i++;
    if (i < s.n && s.b[i] == lc)
        return i % 2 == 0 ? i + 1 : (s.n == i + 1 ? i + 1 : i);
    if (i % 2 == 0)
        return s.n == i ? i : i + 1;
    return i;
}

/* size header + encode_ranges_reference(data, truncate_ranges(q, size)). */
static uint8_t *ref_encode(const uint8_t *data, uint64_t size, bset q, unsigned min_level,
                           size_t *len)
{
    uint64_t chunks = (size + 1023) / 1024;
    uint8_t *out = malloc(8 + size + 128 * (chunks + 1));
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(size >> (8 * i));
    q.n = ref_truncated_len(q, size);
    size_t pos = 8;
    uint8_t cv[32];
    ref_rec(data, size, 0, true, q, min_level, out, &pos, cv);
    *len = pos;
    return out;
}

/* The same set as boundaries and as an irohds range set. */
typedef struct {
    uint64_t b[2 * IROHDS_BLOBS_MAX_RANGES];
    size_t n;
    irohds_blobs_ranges rs;
} query_t;

static query_t query(size_t n, const uint64_t *b)
{
    query_t q = {.n = n};
    if (n)
        memcpy(q.b, b, n * sizeof *b);
    irohds_blobs_ranges_empty(&q.rs);
    for (size_t i = 0; i < n; i += 2)
        irohds_blobs_ranges_add(&q.rs, b[i], i + 1 < n ? b[i + 1] : OPEN);
    return q;
}

static bset bset_of(const query_t *q)
{
    return (bset){q->b, q->n};
}

/* --------------------------------------------------- encoder plumbing */

typedef struct {
    const blob_t *blob;
    int fail_after; /* fail the read after this many calls (-1: never) */
} source_t;

static int src_read(void *ctx, int which, uint64_t off, uint8_t *buf, size_t len)
{
    source_t *s = ctx;
    if (s->fail_after == 0)
        return -EIO;
    if (s->fail_after > 0)
        s->fail_after--;
    const uint8_t *base = which == IROHDS_BAO_DATA ? s->blob->data : s->blob->ob;
    uint64_t lim = which == IROHDS_BAO_DATA ? s->blob->size : s->blob->ob_len;
    if (off > lim || len > lim - off)
        return -ERANGE;
    memcpy(buf, base + off, len);
    return 0;
}

/* Pull a whole response with random output buffer sizes (cap_max > 0) or
 * one big buffer (cap_max 0). */
static uint8_t *encode(const blob_t *blob, const irohds_blobs_ranges *rs, unsigned g,
                       size_t cap_max, size_t *len)
{
    irohds_bao_encoder *enc = malloc(sizeof *enc);
    source_t src = {.blob = blob, .fail_after = -1};
    uint8_t *out = NULL;
    *len = 0;
    if (irohds_bao_encoder_init(enc, blob->size, rs, g) != 0)
        goto done;
    uint64_t total = irohds_bao_encoder_total(enc);
    out = malloc(total + 1);
    while (!irohds_bao_encoder_done(enc) && *len < total) {
        size_t cap = cap_max ? 1 + rnd_below(cap_max) : total - *len;
        if (cap > total - *len + 1)
            cap = total - *len + 1; /* one more than needed: must stop at the end */
        size_t n;
        if (irohds_bao_encoder_pull(enc, out + *len, cap, &n, src_read, &src) != 0 ||
            (n < cap && *len + n != total))
            break;
        *len += n;
    }
done:
    free(enc);
    return out;
}

/* --------------------------------------------------- decoder plumbing */

typedef struct {
    const blob_t *truth;
    uint8_t *data, *ob; /* rebuilt blob and outboard */
    uint64_t released, leaves;
    bool bad;        /* released data that is not the blob */
    bool bad_parent; /* a pair placed where the blob's outboard has another */
    int fail_data; /* make on_data fail after this many calls (-1: never) */
} sink_t;

static int on_data(void *ctx, uint64_t off, const uint8_t *p, size_t len)
{
    sink_t *s = ctx;
    if (s->fail_data == 0)
        return -ENOSPC;
    if (s->fail_data > 0)
        s->fail_data--;
    if (off > s->truth->size || len > s->truth->size - off ||
        memcmp(p, s->truth->data + off, len) != 0) {
        s->bad = true;
        return 0;
    }
    memcpy(s->data + off, p, len);
    s->released += len;
    s->leaves++;
    return 0;
}

static int on_parent(void *ctx, uint64_t off, const uint8_t pair[64])
{
    sink_t *s = ctx;
    if (off > s->truth->ob_len || 64 > s->truth->ob_len - off ||
        memcmp(pair, s->truth->ob + off, 64) != 0) {
        s->bad_parent = true;
        return 0;
    }
    memcpy(s->ob + off, pair, 64);
    return 0;
}

static sink_t new_sink(const blob_t *truth)
{
    sink_t s = {.truth = truth, .fail_data = -1};
    s.data = malloc(truth->size + 1);
    s.ob = malloc(truth->ob_len + 1);
    memset(s.data, 0xee, truth->size);
    memset(s.ob, 0xee, truth->ob_len);
    return s;
}

static void free_sink(sink_t *s)
{
    free(s->data);
    free(s->ob);
}

enum { FRAG_WHOLE, FRAG_BYTES, FRAG_RANDOM };

typedef struct {
    int err; /* first error of feed or finish */
    bool done, size_verified;
    uint64_t verified;
} result_t;

/* Feed stream to a fresh decoder in pieces, then finish. */
static result_t decode(const uint8_t root[32], const irohds_blobs_ranges *rs, unsigned g,
                       const uint8_t *stream, size_t len, int frag, sink_t *sink)
{
    irohds_bao_decoder *dec = malloc(sizeof *dec);
    irohds_bao_sink cb = {on_data, on_parent, sink};
    result_t res = {0};
    res.err = irohds_bao_decoder_init(dec, root, rs, g, &cb);
    size_t off = 0;
    while (!res.err && off < len) {
        size_t k = frag == FRAG_WHOLE ? len - off : frag == FRAG_BYTES ? 1 : 1 + rnd_below(rnd() % 4 ? 100 : 40000);
        if (k > len - off)
            k = len - off;
        res.err = irohds_bao_decoder_feed(dec, stream + off, k);
        off += k;
    }
    if (!res.err)
        res.err = irohds_bao_decoder_feed(dec, NULL, 0); /* a no-op */
    res.done = irohds_bao_decoder_done(dec);
    if (!res.err)
        res.err = irohds_bao_decoder_finish(dec);
    res.size_verified = irohds_bao_decoder_size_verified(dec);
    res.verified = irohds_bao_decoder_verified_bytes(dec);
    free(dec);
    return res;
}

/* Bytes of the blob a response to rs carries: its clipped chunks. */
static uint64_t carried_bytes(const irohds_blobs_ranges *rs, uint64_t size)
{
    irohds_blobs_ranges c;
    irohds_blobs_ranges_clip(rs, size, &c);
    uint64_t n = 0;
    for (uint32_t i = 0; i < c.n; i++) {
        uint64_t s = c.r[i].start * 1024, e = c.r[i].end * 1024;
        n += (e < size ? e : size) - s;
    }
    return n;
}

static bool carries_last_chunk(const irohds_blobs_ranges *rs, uint64_t size)
{
    irohds_blobs_ranges c;
    irohds_blobs_ranges_clip(rs, size, &c);
    uint64_t chunks = (size + 1023) / 1024;
    return irohds_blobs_ranges_contains(&c, chunks ? chunks - 1 : 0);
}

/* ---------------------------------------------------------- vectors */

/* Flip each listed offset of stream: the decoder must fail and release
 * nothing wrong. */
static void check_corruptions(const char *tag, const blob_t *b, const irohds_blobs_ranges *rs,
                              unsigned g, uint8_t *stream, size_t len, json_object *list)
{
    size_t n = list ? json_object_array_length(list) : 0;
    CHECK(n > 0, "%s: no corruptions listed", tag);
    for (size_t i = 0; i < n; i++) {
        int64_t off = json_object_get_int64(json_object_array_get_idx(list, i));
        CHECK(off >= 0 && (size_t)off < len, "%s: corruption offset %lld", tag, (long long)off);
        if (off < 0 || (size_t)off >= len)
            continue;
        stream[off] ^= 1;
        sink_t s = new_sink(b);
        result_t r = decode(b->root, rs, g, stream, len, FRAG_RANDOM, &s);
        CHECK(r.err == -EBADMSG && !r.done && !s.bad && (!s.bad_parent || off < 8),
              "%s: corruption at %lld accepted", tag, (long long)off);
        free_sink(&s);
        stream[off] ^= 1;
    }
}

/* The vector's outboard and input corruptions, made in the provider's
 * outboard (offsets past bao's 8-byte prefix) or blob: the response carries
 * them and the decoder must fail. */
static void check_source_corruptions(const char *tag, blob_t *b, unsigned g, json_object *list,
                                     bool outboard)
{
    irohds_blobs_ranges all;
    irohds_blobs_ranges_all(&all);
    for (size_t i = 0; list && i < json_object_array_length(list); i++) {
        int64_t off = json_object_get_int64(json_object_array_get_idx(list, i)) - (outboard ? 8 : 0);
        uint8_t *p = outboard ? b->ob : b->data;
        if (off < 0)
            continue; /* bao's size prefix: not in our outboard */
        p[off] ^= 1;
        size_t n;
        uint8_t *enc = encode(b, &all, g, 0, &n);
        p[off] ^= 1;
        sink_t s = new_sink(b);
        result_t r = decode(b->root, &all, g, enc, n, FRAG_RANDOM, &s);
        CHECK(r.err == -EBADMSG && !r.done && !s.bad && !s.bad_parent,
              "%s: %s corruption at %lld accepted", tag, outboard ? "outboard" : "input",
              (long long)off);
        free_sink(&s);
        free(enc);
    }
}

/* Encode the whole blob; compare with the vector, decode it back. */
static void check_encode_case(const char *file, json_object *c, json_object *ob_case, unsigned g)
{
    size_t len = (size_t)jint(c, "input_len"), n, rn;
    char tag[96];
    snprintf(tag, sizeof tag, "%s encode %zu", file, len);
    CHECK(!ob_case || (size_t)jint(ob_case, "input_len") == len, "%s: outboard case", tag);
    blob_t b = make_blob(bao_input(len), len, g);
    irohds_blobs_ranges all;
    irohds_blobs_ranges_all(&all);
    uint8_t want[32], got[32];
    unhex32(jstr(c, "encoded_blake3"), want);

    uint8_t *enc = encode(&b, &all, g, 3000, &n);
    irohds_blake3(enc, n, got);
    CHECK(n == (size_t)jint(c, "output_len") && !memcmp(got, want, 32), "%s: bytes", tag);
    CHECK(n == 8 + len + b.ob_len && irohds_bao_encoded_len(len, &all, g) == n, "%s: length", tag);
    uint8_t *ref = ref_encode(b.data, len, (bset){zero_boundary, 1}, g, &rn);
    irohds_blake3(ref, rn, got);
    CHECK(rn == n && !memcmp(got, want, 32), "%s: reference encoder", tag);
    free(ref);

    for (int frag = FRAG_WHOLE; frag <= FRAG_RANDOM; frag++) {
        sink_t s = new_sink(&b);
        result_t r = decode(b.root, &all, g, enc, n, frag, &s);
        CHECK(r.err == 0 && r.done && r.size_verified && r.verified == len && !s.bad &&
                  !s.bad_parent &&
                  !memcmp(s.data, b.data, len) && !memcmp(s.ob, b.ob, b.ob_len),
              "%s: decode (fragmentation %d)", tag, frag);
        if (frag == FRAG_RANDOM && ob_case) { /* the rebuilt outboard, bao's prefixed form */
            uint8_t *pre = malloc(8 + b.ob_len);
            memcpy(pre, enc, 8);
            memcpy(pre + 8, s.ob, b.ob_len);
            irohds_blake3(pre, 8 + b.ob_len, got);
            unhex32(jstr(ob_case, "encoded_blake3"), want);
            CHECK(!memcmp(got, want, 32), "%s: rebuilt outboard", tag);
            free(pre);
        }
        free_sink(&s);
    }
    check_corruptions(tag, &b, &all, g, enc, n, jget(c, "corruptions"));
    if (ob_case) {
        check_source_corruptions(tag, &b, g, jget(ob_case, "outboard_corruptions"), true);
        check_source_corruptions(tag, &b, g, jget(ob_case, "input_corruptions"), false);
    }
    free(enc);
    free_blob(&b);
}

/* bao's slice(start, len) as chunks: every chunk the bytes touch, at
 * least the one holding start. */
static query_t slice_query(uint64_t start, uint64_t len)
{
    uint64_t c0 = start / 1024, c1 = (start + len + 1023) / 1024;
    if (c1 <= c0)
        c1 = c0 + 1;
    return query(2, (uint64_t[]){c0, c1});
}

static int check_slice(const char *file, const blob_t *b, json_object *sl, unsigned g,
                       bool must_match)
{
    uint64_t start = (uint64_t)jint(sl, "start"), len = (uint64_t)jint(sl, "len");
    query_t q = slice_query(start, len);
    uint64_t chunks = (b->size + 1023) / 1024, group = 1u << g;
    uint64_t c0 = q.b[0], c1 = q.b[1];
    /* same bytes as bao's chunk_groups branch only on whole groups */
    bool same = must_match || (c0 % group == 0 && c0 < chunks && (c1 % group == 0 || c1 >= chunks));
    char tag[128];
    snprintf(tag, sizeof tag, "%s slice size %llu at %llu+%llu", file,
             (unsigned long long)b->size, (unsigned long long)start, (unsigned long long)len);
    size_t n, rn;
    uint8_t *enc = encode(b, &q.rs, g, 5000, &n);
    uint8_t *ref = ref_encode(b->data, b->size, bset_of(&q), g, &rn);
    CHECK(n == rn && !memcmp(enc, ref, n), "%s: encoder != reference", tag);
    CHECK(irohds_bao_encoded_len(b->size, &q.rs, g) == n, "%s: encoded_len", tag);
    if (same) {
        uint8_t want[32], got[32];
        unhex32(jstr(sl, "output_blake3"), want);
        irohds_blake3(ref, rn, got);
        CHECK(rn == (size_t)jint(sl, "output_len") && !memcmp(got, want, 32),
              "%s: reference != vector", tag);
        irohds_blake3(enc, n, got);
        CHECK(n == (size_t)jint(sl, "output_len") && !memcmp(got, want, 32),
              "%s: encoder != vector", tag);
    }
    sink_t s = new_sink(b);
    result_t r = decode(b->root, &q.rs, g, enc, n, FRAG_RANDOM, &s);
    CHECK(r.err == 0 && r.done && !s.bad && !s.bad_parent &&
              r.verified == carried_bytes(&q.rs, b->size) &&
              r.size_verified == carries_last_chunk(&q.rs, b->size),
          "%s: decode", tag);
    free_sink(&s);
    if (same)
        check_corruptions(tag, b, &q.rs, g, enc, n, jget(sl, "corruptions"));
    free(ref);
    free(enc);
    return same;
}

static void test_vector_file(const char *dir, const char *file, unsigned g)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bao/%s", dir, file);
    json_object *root = json_object_from_file(path);
    CHECK(root != NULL, "cannot read %s", path);
    if (!root)
        return;
    json_object *enc = jget(root, "encode"), *ob = jget(root, "outboard");
    for (size_t i = 0; enc && i < json_object_array_length(enc); i++)
        check_encode_case(file, json_object_array_get_idx(enc, i),
                          ob ? json_object_array_get_idx(ob, i) : NULL, g);
    json_object *slices = jget(root, "slice");
    int matched = 0, total = 0;
    for (size_t i = 0; slices && i < json_object_array_length(slices); i++) {
        json_object *c = json_object_array_get_idx(slices, i);
        size_t len = (size_t)jint(c, "input_len");
        blob_t b = make_blob(bao_input(len), len, g);
        json_object *list = jget(c, "slices");
        for (size_t k = 0; list && k < json_object_array_length(list); k++, total++)
            matched += check_slice(file, &b, json_object_array_get_idx(list, k), g, g == 0);
        free_blob(&b);
    }
    printf("%s: %d of %d slices compared byte for byte with the vectors\n", file, matched, total);
    CHECK(total > 0 && matched > 0, "%s: no slices", file);
    json_object_put(root);
}

/* bao_tree_cases.json sub_chunk_group_query: 32 KiB, chunks 16..24: one
 * leaf in the response (half of the second group, under its inner parent). */
static void test_sub_group_query(void)
{
    uint8_t *data = malloc(32768);
    for (size_t i = 0; i < 32768; i++)
        data[i] = (uint8_t)(i / 1024); /* make_test_data */
    blob_t b = make_blob(data, 32768, G4);
    irohds_blobs_ranges rs;
    irohds_blobs_ranges_single(&rs, 16, 24);
    size_t n;
    uint8_t *enc = encode(&b, &rs, G4, 0, &n);
    sink_t s = new_sink(&b);
    result_t r = decode(b.root, &rs, G4, enc, n, FRAG_WHOLE, &s);
    /* root pair, the group's inner pair, then 8 KiB of data */
    CHECK(r.err == 0 && r.done && s.leaves == 1 && s.released == 8192 && n == 8 + 64 + 64 + 8192,
          "sub chunk group query: %llu leaves, %zu bytes", (unsigned long long)s.leaves, n);
    free_sink(&s);
    free(enc);
    free_blob(&b);
}

/* ------------------------------------------------------- random cases */

/* A random strictly increasing boundary list over [0, limit). */
static query_t random_query(uint64_t chunks)
{
    uint64_t b[12];
    size_t n = 0;
    uint64_t limit = chunks + 40, pos = rnd_below(3) ? 0 : rnd_below(limit);
    switch (rnd_below(9)) {
    case 0: /* all */
        return query(1, (uint64_t[]){0});
    case 1: /* from a chunk, maybe past the end */
        return query(1, (uint64_t[]){rnd_below(limit)});
    case 2: /* iroh's last_chunk */
        return query(1, (uint64_t[]){UINT64_MAX});
    case 3: /* nothing */
        return query(0, NULL);
    case 4: /* whole groups */
        return query(2, (uint64_t[]){16 * rnd_below(chunks / 16 + 1), 16 * (chunks / 16 + 2)});
    case 5: { /* up to the last chunk exactly */
        uint64_t end = chunks ? chunks : 1;
        return query(2, (uint64_t[]){rnd_below(end), end});
    }
    default: /* several ranges */
        n = 1 + rnd_below(12);
        for (size_t i = 0; i < n; i++) {
            pos += 1 + rnd_below(rnd_below(2) ? 4 : limit / 4 + 1);
            b[i] = pos;
        }
        if (rnd_below(2))
            b[0] = 0;
        return query(n, b);
    }
}

/* Flip sampled bytes of a good stream: decoding must fail (or, for the
 * size header when the last chunk is not asked for, leave the size
 * unverified) and must never release a wrong byte.  Outboard pairs may land
 * elsewhere only under a flipped size, which never gets verified. */
static void flip_checks(const char *tag, const blob_t *b, const query_t *q, uint8_t *stream,
                        size_t n, int samples)
{
    for (int i = 0; i < samples && n > 0; i++) {
        size_t pos = i < 2 ? (size_t)(i == 0 ? 0 : 7) : rnd_below(n);
        uint8_t mask = (uint8_t)(1u << rnd_below(8));
        stream[pos] ^= mask;
        sink_t s = new_sink(b);
        result_t r = decode(b->root, &q->rs, G4, stream, n, FRAG_RANDOM, &s);
        bool ok = r.err == -EBADMSG && !r.done;
        if (pos < 8 && r.err == 0)
            ok = !r.size_verified; /* bao: an unproven size */
        CHECK(ok && !s.bad && (!s.bad_parent || (pos < 8 && !r.size_verified)),
              "%s: flip at %zu: err %d done %d", tag, pos, r.err, r.done);
        free_sink(&s);
        stream[pos] ^= mask;
    }
}

static void truncation_checks(const char *tag, const blob_t *b, const query_t *q,
                              const uint8_t *stream, size_t n, int samples)
{
    for (int i = 0; i < samples && n > 0; i++) {
        size_t cut = i == 0 ? n - 1 : rnd_below(n);
        sink_t s = new_sink(b);
        result_t r = decode(b->root, &q->rs, G4, stream, cut, FRAG_RANDOM, &s);
        CHECK(r.err == -EBADMSG && !r.done && !s.bad && !s.bad_parent, "%s: cut at %zu", tag,
              cut);
        free_sink(&s);
    }
    uint8_t *longer = malloc(n + 1);
    memcpy(longer, stream, n);
    longer[n] = 0;
    sink_t s = new_sink(b);
    result_t r = decode(b->root, &q->rs, G4, longer, n + 1, FRAG_RANDOM, &s);
    CHECK(r.err == -EBADMSG && !s.bad, "%s: one byte too many", tag);
    free_sink(&s);
    free(longer);
}

static void random_case(const blob_t *b, const query_t *q, int samples)
{
    char tag[160];
    int off = snprintf(tag, sizeof tag, "size %llu ranges", (unsigned long long)b->size);
    for (size_t i = 0; i < q->n && off < 150; i++)
        off += snprintf(tag + off, sizeof tag - (size_t)off, " %llu", (unsigned long long)q->b[i]);
    size_t n, rn;
    uint8_t *enc = encode(b, &q->rs, G4, rnd_below(2) ? 70000 : 300, &n);
    uint8_t *ref = ref_encode(b->data, b->size, bset_of(q), G4, &rn);
    CHECK(n == rn && !memcmp(enc, ref, n), "%s: encoder != reference (%zu vs %zu)", tag, n, rn);
    CHECK(irohds_bao_encoded_len(b->size, &q->rs, G4) == n, "%s: encoded_len", tag);
    free(ref);
    int frag = b->size <= (1 << 20) && rnd_below(3) == 0 ? FRAG_BYTES : FRAG_RANDOM;
    sink_t s = new_sink(b);
    result_t r = decode(b->root, &q->rs, G4, enc, n, frag, &s);
    bool all = irohds_blobs_ranges_is_all(&q->rs);
    CHECK(r.err == 0 && r.done && !s.bad && !s.bad_parent &&
              r.verified == carried_bytes(&q->rs, b->size) &&
              r.size_verified == carries_last_chunk(&q->rs, b->size),
          "%s: decode (err %d)", tag, r.err);
    CHECK(!all || (!memcmp(s.data, b->data, b->size) && !memcmp(s.ob, b->ob, b->ob_len)),
          "%s: whole blob and outboard rebuilt", tag);
    free_sink(&s);
    flip_checks(tag, b, q, enc, n, samples);
    truncation_checks(tag, b, q, enc, n, samples / 2 + 1);
    free(enc);
}

static void test_random(void)
{
    static const uint64_t sizes[] = {0,     1,     1023,  1024,          1025,
                                     16383, 16384, 16385, 32768,         (1 << 20) + 7,
                                     5 * (1 << 20) + 12345};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        uint64_t size = sizes[i];
        blob_t b = make_blob(random_bytes(size), size, G4);
        int cases = size > (1 << 20) ? 10 : 30;
        for (int k = 0; k < cases; k++) {
            query_t q = random_query((size + 1023) / 1024);
            random_case(&b, &q, size > (1 << 20) ? 6 : 14);
        }
        free_blob(&b);
    }
}

/* ------------------------------------------------------------- resume */

/*
 * A download of the whole blob breaks off; a second decoder asks another
 * provider for the rest, from the first missing group (or from a chunk
 * inside a group); together they give the exact blob and outboard.
 */
static void resume_case(const blob_t *b, bool from_chunk)
{
    irohds_blobs_ranges all, rest;
    irohds_blobs_ranges_all(&all);
    size_t n;
    uint8_t *first = encode(b, &all, G4, 0, &n);
    size_t cut = 8 + rnd_below(n - 8);
    sink_t s = new_sink(b);
    result_t r = decode(b->root, &all, G4, first, cut, FRAG_RANDOM, &s);
    CHECK(r.err == -EBADMSG && !r.done && !s.bad && !s.bad_parent,
          "resume: first transfer cut at %zu", cut);
    /* all requested data arrives in order, whole groups at a time */
    uint64_t have = s.released;
    CHECK(have % 16384 == 0 && r.verified == have, "resume: %llu bytes verified",
          (unsigned long long)have);
    uint64_t from = have / 1024;
    if (from_chunk && have > 0)
        from -= 1 + rnd_below(15); /* overlap into the last group: sent with inner parents */
    irohds_blobs_ranges_from(&rest, from);
    size_t m;
    uint8_t *second = encode(b, &rest, G4, 0, &m);
    r = decode(b->root, &rest, G4, second, m, FRAG_RANDOM, &s);
    CHECK(r.err == 0 && r.done && r.size_verified && !s.bad && !s.bad_parent,
          "resume: second transfer");
    CHECK(!memcmp(s.data, b->data, b->size) && !memcmp(s.ob, b->ob, b->ob_len),
          "resume from chunk %llu: blob and outboard joined", (unsigned long long)from);
    free_sink(&s);
    free(second);
    free(first);
}

static void test_resume(void)
{
    static const uint64_t sizes[] = {16385, (1 << 20) + 7, 5 * (1 << 20) + 12345};
    for (size_t i = 0; i < 3; i++) {
        blob_t b = make_blob(random_bytes(sizes[i]), sizes[i], G4);
        for (int k = 0; k < 6; k++)
            resume_case(&b, k % 2);
        free_blob(&b);
    }
}

/* --------------------------------------------------------- edge cases */

static void test_errors(void)
{
    blob_t b = make_blob(random_bytes(100000), 100000, G4);
    irohds_blobs_ranges all;
    irohds_blobs_ranges_all(&all);
    irohds_bao_encoder *enc = malloc(sizeof *enc);
    irohds_bao_decoder *dec = malloc(sizeof *dec);
    CHECK(irohds_bao_encoder_init(enc, 100, &all, 5) == -EINVAL, "encoder group_log 5");
    CHECK(irohds_bao_encoder_init(enc, IROHDS_BAO_MAX_SIZE + 1, &all, G4) == -EINVAL,
          "encoder huge size");
    CHECK(irohds_bao_decoder_init(dec, b.root, &all, 5, NULL) == -EINVAL, "decoder group_log 5");

    /* a failing read sticks; the bytes it was to fill are not counted */
    source_t src = {.blob = &b, .fail_after = 3};
    uint8_t out[20000];
    size_t n;
    int err = 0;
    irohds_bao_encoder_init(enc, b.size, &all, G4);
    for (int i = 0; i < 100 && !err; i++)
        err = irohds_bao_encoder_pull(enc, out, sizeof out, &n, src_read, &src);
    /* reads: root pair, left pair, left-left pair, then group 0 straight
     * into out: that one fails, after the header and three pairs */
    CHECK(err == -EIO && !irohds_bao_encoder_done(enc) && n == 8 + 3 * 64, "read error (%zu)",
          n);
    src.fail_after = -1;
    CHECK(irohds_bao_encoder_pull(enc, out, sizeof out, &n, src_read, &src) == -EIO && n == 0,
          "read error sticks");

    /* a size above the limit, in the header */
    uint8_t hdr[8] = {0, 0, 0, 0, 0, 0, 0, 0x41};
    irohds_bao_decoder_init(dec, b.root, &all, G4, NULL);
    CHECK(irohds_bao_decoder_feed(dec, hdr, 8) == -EBADMSG, "huge size header");

    /* a sink error stops the decoder, and sticks */
    uint8_t *stream = encode(&b, &all, G4, 0, &n);
    sink_t s = new_sink(&b);
    s.fail_data = 2;
    irohds_bao_sink cb = {on_data, on_parent, &s};
    irohds_bao_decoder_init(dec, b.root, &all, G4, &cb);
    uint64_t size = 0;
    CHECK(!irohds_bao_decoder_size(dec, &size) && irohds_bao_decoder_expected_len(dec) == 0,
          "no size before the header");
    CHECK(irohds_bao_decoder_feed(dec, stream, 8) == 0 && irohds_bao_decoder_size(dec, &size) &&
              size == b.size && irohds_bao_decoder_expected_len(dec) == n &&
              !irohds_bao_decoder_size_verified(dec),
          "size known, not verified, after the header");
    CHECK(irohds_bao_decoder_feed(dec, stream + 8, n - 8) == -ENOSPC && s.leaves == 2,
          "sink error");
    CHECK(irohds_bao_decoder_feed(dec, stream, 1) == -ENOSPC &&
              irohds_bao_decoder_finish(dec) == -ENOSPC,
          "sink error sticks");
    free_sink(&s);

    /* a 1-byte blob, no sink: verified, done */
    blob_t one = make_blob(random_bytes(1), 1, G4);
    uint8_t *st1 = encode(&one, &all, G4, 0, &n);
    irohds_bao_decoder_init(dec, one.root, &all, G4, NULL);
    CHECK(n == 9 && irohds_bao_decoder_feed(dec, st1, n) == 0 && irohds_bao_decoder_done(dec) &&
              irohds_bao_decoder_size_verified(dec) && irohds_bao_decoder_verified_bytes(dec) == 1,
          "1-byte blob without a sink");
    /* the wrong root */
    uint8_t bad_root[32];
    memcpy(bad_root, one.root, 32);
    bad_root[31] ^= 0x80;
    irohds_bao_decoder_init(dec, bad_root, &all, G4, NULL);
    CHECK(irohds_bao_decoder_feed(dec, st1, n) == -EBADMSG, "wrong root");
    free(st1);
    free_blob(&one);

    /* an empty request: the size header and nothing else */
    irohds_blobs_ranges none;
    irohds_blobs_ranges_empty(&none);
    uint8_t *st0 = encode(&b, &none, G4, 0, &n);
    irohds_bao_decoder_init(dec, b.root, &none, G4, NULL);
    CHECK(n == 8 && irohds_bao_decoder_feed(dec, st0, n) == 0 && irohds_bao_decoder_done(dec) &&
              !irohds_bao_decoder_size_verified(dec),
          "empty request");
    free(st0);
    free(stream);
    free(enc);
    free(dec);
    free_blob(&b);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TESTDATA_DIR\n", argv[0]);
        return 2;
    }
    test_vector_file(argv[1], "test_vectors.json", 0);
    test_vector_file(argv[1], "test_vectors_chunk_groups_16k.json", G4);
    test_sub_group_query();
    test_errors();
    test_random();
    test_resume();
    return check_summary();
}
