/*
 * blobs/bao_stream.c: bao verified streaming with chunk groups, as
 * bao-tree encodes a range request (iroh-blobs' response body).
 *
 * Both sides walk the same tree in pre-order with an explicit stack (a
 * "walk"), so neither recursion nor the whole blob is ever needed.  Each
 * subtree the walk pops is classified from the request alone:
 *
 *   SKIP    no requested chunk under it: nothing is sent;
 *   DATA    a single chunk, or a subtree of one group or less that is
 *           wholly requested: its bytes are sent as they are;
 *   PARENT  a subtree of more than one group: its 64-byte node, which the
 *           outboard holds, then its children;
 *   INNER   a partly requested subtree inside a group: its node, which the
 *           outboard does not hold (the encoder hashes the group for it),
 *           then its children.
 *
 * "Requested" follows bao-tree: the request is first truncated to the blob
 * (irohds_blobs_ranges_truncate), and a subtree on the right edge of the
 * tree also answers for everything past the end, which is how a request
 * beyond the last chunk comes to select it.  bao-tree's recursive encoder
 * (encode_selected_rec) decides the same way: a parent is sent unless its
 * subtree is empty, or wholly selected and no larger than a group.
 *
 * The decoder checks each node against the chaining value its parent gave
 * (the root hash for the top), hashing leaves with the SIMD subtree hash;
 * an item that arrives in pieces is assembled in one group-sized buffer,
 * and one that arrives whole is checked where it lies.
 */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "blobs/blobs.h"
#include "hash/blake3.h"

#define CHUNK IROHDS_BLOBS_CHUNK_LEN

enum { SKIP, DATA, PARENT, INNER, HEADER };

static uint64_t group_len(unsigned group_log)
{
    return (uint64_t)CHUNK << group_log;
}

/* Bytes in the left subtree of a subtree of len > CHUNK bytes: BLAKE3's
 * split, the largest power-of-two number of chunks leaving some on the right. */
static uint64_t left_len(uint64_t len)
{
    uint64_t chunks_but_last = (len - 1) / CHUNK;
    return ((uint64_t)1 << (63 - __builtin_clzll(chunks_but_last))) * CHUNK;
}

static bool is_root(const irohds_bao_walk *w, const irohds_bao_node *n)
{
    return n->start == 0 && n->len == w->size;
}

/* ------------------------------------------------------------ selection */

/* Some requested chunk in [lo, hi)?  hi == OPEN: no upper bound. */
static bool sel_meets(const irohds_blobs_ranges *s, uint64_t lo, uint64_t hi)
{
    for (uint32_t i = 0; i < s->n; i++) {
        const irohds_blobs_range *r = &s->r[i];
        if ((hi == IROHDS_BLOBS_OPEN || r->start < hi) &&
            (r->end == IROHDS_BLOBS_OPEN || r->end > lo))
            return true;
    }
    return false;
}

/* Every chunk of [lo, hi) requested?  (Sets are canonical: one range.) */
static bool sel_covers(const irohds_blobs_ranges *s, uint64_t lo, uint64_t hi)
{
    for (uint32_t i = 0; i < s->n; i++) {
        const irohds_blobs_range *r = &s->r[i];
        if (r->start <= lo &&
            (r->end == IROHDS_BLOBS_OPEN || (hi != IROHDS_BLOBS_OPEN && r->end >= hi)))
            return true;
    }
    return false;
}

static int classify(const irohds_bao_walk *w, const irohds_bao_node *n, bool *full)
{
    uint64_t lo = n->start / CHUNK;
    uint64_t end = n->start + n->len;
    uint64_t hi = end == w->size ? IROHDS_BLOBS_OPEN : end / CHUNK;
    *full = false;
    if (!sel_meets(&w->sel, lo, hi))
        return SKIP;
    *full = sel_covers(&w->sel, lo, hi);
    if (n->len <= CHUNK)
        return DATA;
    if (n->len > group_len(w->group_log))
        return PARENT;
    return *full ? DATA : INNER;
}

/* ----------------------------------------------------------------- walk */

static void walk_init(irohds_bao_walk *w, uint64_t size, const irohds_blobs_ranges *ranges,
                      unsigned group_log, const uint8_t root[32])
{
    w->size = size;
    w->group_log = group_log;
    irohds_blobs_ranges_truncate(ranges, size, &w->sel);
    w->depth = 1;
    w->stack[0] = (irohds_bao_node){.start = 0, .len = size, .ob_off = 0};
    if (root)
        memcpy(w->stack[0].cv, root, 32);
}

/* Pop subtrees until one that is sent; SKIP when the walk is over. */
static int walk_next(irohds_bao_walk *w, irohds_bao_node *out)
{
    while (w->depth > 0) {
        bool full;
        *out = w->stack[--w->depth];
        int kind = classify(w, out, &full);
        if (kind != SKIP)
            return kind;
    }
    return SKIP;
}

/* Queue the children of parent n (pair = their CVs), the left one on top.
 * Outboard offsets: the left child's pair follows n's, the right child's
 * follows the left subtree's (one pair per group in it, less one). */
static void walk_split(irohds_bao_walk *w, const irohds_bao_node *n, const uint8_t pair[64])
{
    uint64_t ll = left_len(n->len);
    assert(w->depth + 2 <= IROHDS_BAO_MAX_DEPTH);
    irohds_bao_node *r = &w->stack[w->depth++];
    irohds_bao_node *l = &w->stack[w->depth++];
    r->start = n->start + ll;
    r->len = n->len - ll;
    r->ob_off = n->ob_off + 64 * (ll / group_len(w->group_log));
    memcpy(r->cv, pair + 32, 32);
    l->start = n->start;
    l->len = ll;
    l->ob_off = n->ob_off + 64;
    memcpy(l->cv, pair, 32);
}

/* Response bytes under n, without walking wholly requested subtrees. */
static uint64_t subtree_len(const irohds_bao_walk *w, const irohds_bao_node *n)
{
    bool full;
    int kind = classify(w, n, &full);
    if (kind == SKIP)
        return 0;
    if (kind == DATA)
        return n->len;
    uint64_t g = group_len(w->group_log);
    if (kind == PARENT && full)
        return n->len + 64 * ((n->len + g - 1) / g - 1);
    uint64_t ll = left_len(n->len);
    irohds_bao_node l = {.start = n->start, .len = ll};
    irohds_bao_node r = {.start = n->start + ll, .len = n->len - ll};
    return 64 + subtree_len(w, &l) + subtree_len(w, &r);
}

uint64_t irohds_bao_encoded_len(uint64_t size, const irohds_blobs_ranges *ranges,
                                unsigned group_log)
{
    if (group_log > IROHDS_BAO_MAX_GROUP_LOG || size > IROHDS_BAO_MAX_SIZE)
        return 0;
    irohds_bao_walk w;
    walk_init(&w, size, ranges, group_log, NULL);
    return IROHDS_BAO_HEADER_LEN + subtree_len(&w, &w.stack[0]);
}

/* -------------------------------------------------------------- encoder */

int irohds_bao_encoder_init(irohds_bao_encoder *enc, uint64_t size,
                            const irohds_blobs_ranges *ranges, unsigned group_log)
{
    if (group_log > IROHDS_BAO_MAX_GROUP_LOG || size > IROHDS_BAO_MAX_SIZE)
        return -EINVAL;
    walk_init(&enc->walk, size, ranges, group_log, NULL);
    enc->total = IROHDS_BAO_HEADER_LEN + subtree_len(&enc->walk, &enc->walk.stack[0]);
    enc->sent = 0;
    enc->err = 0;
    enc->group_start = UINT64_MAX;
    for (int i = 0; i < IROHDS_BAO_HEADER_LEN; i++)
        enc->pair[i] = (uint8_t)(size >> (8 * i));
    enc->pend_in_group = false;
    enc->pend_off = 0;
    enc->pend_len = IROHDS_BAO_HEADER_LEN;
    return 0;
}

static void pend(irohds_bao_encoder *enc, bool in_group, uint64_t off, uint64_t len)
{
    enc->pend_in_group = in_group;
    enc->pend_off = (uint32_t)off;
    enc->pend_len = (uint32_t)len;
}

/* Have the group holding n in group[] (read once per partly sent group). */
static int load_group(irohds_bao_encoder *enc, const irohds_bao_node *n, irohds_bao_read_fn read,
                      void *ctx)
{
    uint64_t g = group_len(enc->walk.group_log);
    uint64_t start = n->start - n->start % g;
    if (enc->group_start == start)
        return 0;
    uint64_t len = enc->walk.size - start < g ? enc->walk.size - start : g;
    int err = read(ctx, IROHDS_BAO_DATA, start, enc->group, (size_t)len);
    enc->group_start = err ? UINT64_MAX : start;
    return err;
}

static bool in_loaded_group(const irohds_bao_encoder *enc, const irohds_bao_node *n)
{
    return enc->group_start != UINT64_MAX && n->start >= enc->group_start &&
           n->start + n->len <= enc->group_start + group_len(enc->walk.group_log);
}

/* The node of an inner subtree: the CVs of its two halves. */
static void inner_pair(irohds_bao_encoder *enc, const irohds_bao_node *n)
{
    uint64_t ll = left_len(n->len);
    const uint8_t *p = enc->group + (n->start - enc->group_start);
    irohds_blake3_subtree_cv(p, (size_t)ll, n->start / CHUNK, false, enc->pair);
    irohds_blake3_subtree_cv(p + ll, (size_t)(n->len - ll), (n->start + ll) / CHUNK, false,
                             enc->pair + 32);
}

/* Data of n: straight into dst when it fits (*direct = bytes written). */
static int data_item(irohds_bao_encoder *enc, const irohds_bao_node *n, uint8_t *dst,
                     size_t room, size_t *direct, irohds_bao_read_fn read, void *ctx)
{
    if (in_loaded_group(enc, n)) {
        pend(enc, true, n->start - enc->group_start, n->len);
        return 0;
    }
    if (n->len <= room) {
        int err = read(ctx, IROHDS_BAO_DATA, n->start, dst, (size_t)n->len);
        *direct = err ? 0 : (size_t)n->len;
        return err;
    }
    enc->group_start = UINT64_MAX;
    pend(enc, true, 0, n->len);
    return read(ctx, IROHDS_BAO_DATA, n->start, enc->group, (size_t)n->len);
}

/* Start the next item of the response. */
static int next_item(irohds_bao_encoder *enc, uint8_t *dst, size_t room, size_t *direct,
                     irohds_bao_read_fn read, void *ctx)
{
    irohds_bao_node n;
    int err = 0;
    *direct = 0;
    switch (walk_next(&enc->walk, &n)) {
    case PARENT:
        err = read(ctx, IROHDS_BAO_OUTBOARD, n.ob_off, enc->pair, 64);
        walk_split(&enc->walk, &n, enc->pair);
        pend(enc, false, 0, 64);
        return err;
    case INNER:
        err = load_group(enc, &n, read, ctx);
        if (!err)
            inner_pair(enc, &n);
        walk_split(&enc->walk, &n, enc->pair);
        pend(enc, false, 0, 64);
        return err;
    case DATA:
        return data_item(enc, &n, dst, room, direct, read, ctx);
    default:
        return -EIO; /* cannot happen: total counts exactly these items */
    }
}

int irohds_bao_encoder_pull(irohds_bao_encoder *enc, uint8_t *out, size_t cap, size_t *n,
                            irohds_bao_read_fn read, void *ctx)
{
    size_t done = 0;
    while (!enc->err && done < cap && enc->sent < enc->total) {
        if (enc->pend_len == 0) {
            size_t direct;
            enc->err = next_item(enc, out + done, cap - done, &direct, read, ctx);
            done += direct;
            enc->sent += direct;
            continue;
        }
        const uint8_t *src = enc->pend_in_group ? enc->group : enc->pair;
        size_t k = enc->pend_len < cap - done ? enc->pend_len : cap - done;
        memcpy(out + done, src + enc->pend_off, k);
        enc->pend_off += (uint32_t)k;
        enc->pend_len -= (uint32_t)k;
        done += k;
        enc->sent += k;
    }
    *n = done;
    return enc->err;
}

bool irohds_bao_encoder_done(const irohds_bao_encoder *enc)
{
    return !enc->err && enc->sent == enc->total;
}

uint64_t irohds_bao_encoder_total(const irohds_bao_encoder *enc)
{
    return enc->total;
}

void irohds_bao_encoder_free(irohds_bao_encoder *enc)
{
    enc->total = enc->sent = 0;
    enc->walk.depth = 0;
}

/* -------------------------------------------------------------- decoder */

int irohds_bao_decoder_init(irohds_bao_decoder *dec, const uint8_t root[32],
                            const irohds_blobs_ranges *ranges, unsigned group_log,
                            const irohds_bao_sink *sink)
{
    if (group_log > IROHDS_BAO_MAX_GROUP_LOG)
        return -EINVAL;
    dec->walk.group_log = group_log;
    dec->walk.depth = 0;
    dec->walk.sel = *ranges; /* truncated once the size is known */
    dec->sink = sink ? *sink : (irohds_bao_sink){0};
    memcpy(dec->root, root, 32);
    dec->err = 0;
    dec->have_size = dec->size_verified = dec->done = false;
    dec->expected = dec->verified = 0;
    dec->cur_kind = HEADER;
    dec->cur_need = IROHDS_BAO_HEADER_LEN;
    dec->fill = 0;
    return 0;
}

static void fail(irohds_bao_decoder *dec, int err)
{
    if (!dec->err)
        dec->err = err;
}

static void advance(irohds_bao_decoder *dec)
{
    int kind = walk_next(&dec->walk, &dec->cur);
    if (kind == SKIP) {
        dec->done = true;
        return;
    }
    dec->cur_kind = kind;
    dec->cur_need = kind == DATA ? (uint32_t)dec->cur.len : 64;
}

static void take_header(irohds_bao_decoder *dec, const uint8_t *p)
{
    uint64_t size = 0;
    for (int i = IROHDS_BAO_HEADER_LEN - 1; i >= 0; i--)
        size = size << 8 | p[i];
    if (size > IROHDS_BAO_MAX_SIZE) {
        fail(dec, -EBADMSG);
        return;
    }
    walk_init(&dec->walk, size, &dec->walk.sel, dec->walk.group_log, dec->root);
    dec->have_size = true;
    dec->expected = IROHDS_BAO_HEADER_LEN + subtree_len(&dec->walk, &dec->walk.stack[0]);
    advance(dec);
}

static void take_parent(irohds_bao_decoder *dec, const uint8_t *p)
{
    uint8_t cv[32];
    irohds_blake3_parent_cv(p, p + 32, is_root(&dec->walk, &dec->cur), cv);
    if (memcmp(cv, dec->cur.cv, 32) != 0) {
        fail(dec, -EBADMSG);
        return;
    }
    if (dec->cur_kind == PARENT && dec->sink.on_parent) {
        int err = dec->sink.on_parent(dec->sink.ctx, dec->cur.ob_off, p);
        if (err < 0) {
            fail(dec, err);
            return;
        }
    }
    walk_split(&dec->walk, &dec->cur, p);
    advance(dec);
}

static void take_data(irohds_bao_decoder *dec, const uint8_t *p)
{
    const irohds_bao_node *n = &dec->cur;
    uint8_t cv[32];
    irohds_blake3_subtree_cv(p, (size_t)n->len, n->start / CHUNK, is_root(&dec->walk, n), cv);
    if (memcmp(cv, n->cv, 32) != 0) {
        fail(dec, -EBADMSG);
        return;
    }
    if (dec->sink.on_data) {
        int err = dec->sink.on_data(dec->sink.ctx, n->start, p, (size_t)n->len);
        if (err < 0) {
            fail(dec, err);
            return;
        }
    }
    dec->verified += n->len;
    if (n->start + n->len == dec->walk.size)
        dec->size_verified = true;
    advance(dec);
}

/* The current item is complete at p. */
static void take(irohds_bao_decoder *dec, const uint8_t *p)
{
    switch (dec->cur_kind) {
    case HEADER:
        take_header(dec, p);
        break;
    case DATA:
        take_data(dec, p);
        break;
    default:
        take_parent(dec, p);
        break;
    }
}

int irohds_bao_decoder_feed(irohds_bao_decoder *dec, const uint8_t *buf, size_t len)
{
    while (!dec->err) {
        if (dec->done) {
            if (len)
                fail(dec, -EBADMSG); /* more than the request allows */
            break;
        }
        size_t need = dec->cur_need;
        if (dec->fill == 0 && len >= need) { /* whole: check it in place */
            take(dec, len ? buf : dec->buf); /* (an empty blob's leaf: need 0) */
            buf += need;
            len -= need;
            continue;
        }
        if (len == 0)
            break;
        size_t k = need - dec->fill < len ? need - dec->fill : len;
        memcpy(dec->buf + dec->fill, buf, k);
        dec->fill += (uint32_t)k;
        buf += k;
        len -= k;
        if (dec->fill == need) {
            dec->fill = 0;
            take(dec, dec->buf);
        }
    }
    return dec->err;
}

int irohds_bao_decoder_finish(irohds_bao_decoder *dec)
{
    if (!dec->done)
        fail(dec, -EBADMSG); /* the stream ended early */
    return dec->err;
}

bool irohds_bao_decoder_done(const irohds_bao_decoder *dec)
{
    return dec->done && !dec->err;
}

bool irohds_bao_decoder_size(const irohds_bao_decoder *dec, uint64_t *size)
{
    if (dec->have_size)
        *size = dec->walk.size;
    return dec->have_size;
}

bool irohds_bao_decoder_size_verified(const irohds_bao_decoder *dec)
{
    return dec->size_verified;
}

uint64_t irohds_bao_decoder_verified_bytes(const irohds_bao_decoder *dec)
{
    return dec->verified;
}

uint64_t irohds_bao_decoder_expected_len(const irohds_bao_decoder *dec)
{
    return dec->expected;
}

void irohds_bao_decoder_free(irohds_bao_decoder *dec)
{
    dec->walk.depth = 0;
    dec->fill = 0;
    dec->done = false;
    dec->err = -EINVAL;
}
