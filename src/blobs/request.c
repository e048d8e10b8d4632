/*
 * blobs/request.c: chunk range sets and the iroh-blobs request wire format.
 *
 * A range set is a short sorted array of [start, end) pairs rather than
 * bao-tree's flat boundary list; the two are the same thing (boundaries
 * s0 e0 s1 e1 ..., an odd count meaning the last range is open), and the
 * places that follow bao-tree rule for rule (truncation, the RangeSpec span
 * widths) read the set as that boundary list through boundary().  Sets stay
 * canonical (no empty or touching ranges) so that equal sets are equal
 * arrays and "covers" can look at one range at a time.
 *
 * Decoding is strict where iroh's own encoder is: a zero-width span after
 * the first would encode an empty or touching range, and a zero index delta
 * after the first entry a duplicate index; iroh never writes either, so we
 * refuse them rather than guess at a meaning.
 */
#include <errno.h>
#include <string.h>

#include "blobs/blobs.h"

/* --------------------------------------------------------- range sets */

void irohds_blobs_ranges_empty(irohds_blobs_ranges *rs)
{
    rs->n = 0;
}

void irohds_blobs_ranges_all(irohds_blobs_ranges *rs)
{
    irohds_blobs_ranges_from(rs, 0);
}

void irohds_blobs_ranges_from(irohds_blobs_ranges *rs, uint64_t start)
{
    rs->n = 1;
    rs->r[0].start = start;
    rs->r[0].end = IROHDS_BLOBS_OPEN;
}

void irohds_blobs_ranges_single(irohds_blobs_ranges *rs, uint64_t start, uint64_t end)
{
    rs->n = 0;
    irohds_blobs_ranges_add(rs, start, end);
}

int irohds_blobs_ranges_add(irohds_blobs_ranges *rs, uint64_t start, uint64_t end)
{
    if (start >= end && end != IROHDS_BLOBS_OPEN)
        return 0;
    if (rs->n > 0) {
        irohds_blobs_range *last = &rs->r[rs->n - 1];
        if (last->end == IROHDS_BLOBS_OPEN || start < last->end)
            return -EINVAL;
        if (start == last->end) {
            last->end = end;
            return 0;
        }
    }
    if (rs->n == IROHDS_BLOBS_MAX_RANGES)
        return -EOVERFLOW;
    rs->r[rs->n].start = start;
    rs->r[rs->n].end = end;
    rs->n++;
    return 0;
}

bool irohds_blobs_ranges_is_empty(const irohds_blobs_ranges *rs)
{
    return rs->n == 0;
}

bool irohds_blobs_ranges_is_all(const irohds_blobs_ranges *rs)
{
    return rs->n == 1 && rs->r[0].start == 0 && rs->r[0].end == IROHDS_BLOBS_OPEN;
}

bool irohds_blobs_ranges_contains(const irohds_blobs_ranges *rs, uint64_t chunk)
{
    for (uint32_t i = 0; i < rs->n; i++) {
        const irohds_blobs_range *r = &rs->r[i];
        if (chunk >= r->start && (r->end == IROHDS_BLOBS_OPEN || chunk < r->end))
            return true;
    }
    return false;
}

bool irohds_blobs_ranges_equal(const irohds_blobs_ranges *a, const irohds_blobs_ranges *b)
{
    return a->n == b->n && memcmp(a->r, b->r, a->n * sizeof a->r[0]) == 0;
}

/* The set as bao-tree's boundary list: how many, and the k-th. */
static uint32_t boundaries(const irohds_blobs_ranges *rs)
{
    if (rs->n == 0)
        return 0;
    return 2 * rs->n - (rs->r[rs->n - 1].end == IROHDS_BLOBS_OPEN);
}

static uint64_t boundary(const irohds_blobs_ranges *rs, uint32_t k)
{
    return k % 2 ? rs->r[k / 2].end : rs->r[k / 2].start;
}

/* Keep the first `keep` boundaries (an odd count leaves the last open). */
static void keep_boundaries(const irohds_blobs_ranges *in, uint32_t keep, irohds_blobs_ranges *out)
{
    if (out != in)
        memcpy(out->r, in->r, (keep + 1) / 2 * sizeof in->r[0]);
    out->n = (keep + 1) / 2;
    if (keep % 2)
        out->r[out->n - 1].end = IROHDS_BLOBS_OPEN;
}

static uint64_t chunks_of(uint64_t size)
{
    return size / IROHDS_BLOBS_CHUNK_LEN + (size % IROHDS_BLOBS_CHUNK_LEN != 0);
}

/*
 * bao-tree's truncated_len, case for case: find the last chunk lc among the
 * boundaries and keep what decides the selection up to it, turning a range
 * that contains lc or lies past it into an open one.
 */
void irohds_blobs_ranges_truncate(const irohds_blobs_ranges *in, uint64_t size,
                                  irohds_blobs_ranges *out)
{
    uint64_t chunks = chunks_of(size);
    uint64_t lc = chunks ? chunks - 1 : 0;
    uint32_t nb = boundaries(in), i = 0;
    while (i < nb && boundary(in, i) < lc)
        i++;
    uint32_t keep;
    if (i < nb && boundary(in, i) == lc)           /* lc is a boundary */
        keep = i % 2 == 0 || i + 1 == nb ? i + 1 : i;
    else if (i % 2 == 0)                            /* lc in a gap */
        keep = i == nb ? i : i + 1;
    else                                            /* lc inside a range */
        keep = i;
    keep_boundaries(in, keep, out);
}

void irohds_blobs_ranges_clip(const irohds_blobs_ranges *in, uint64_t size,
                              irohds_blobs_ranges *out)
{
    uint64_t chunks = chunks_of(size);
    uint64_t end = chunks ? chunks : 1; /* a 0-byte blob is one empty chunk */
    irohds_blobs_ranges t;
    irohds_blobs_ranges_truncate(in, size, &t);
    out->n = 0;
    for (uint32_t i = 0; i < t.n; i++) {
        uint64_t s = t.r[i].start, e = t.r[i].end;
        if (s >= end) /* a request past the end: the last chunk */
            s = end - 1;
        irohds_blobs_ranges_add(out, s, e < end ? e : end);
    }
}

void irohds_blobs_ranges_full_groups(const irohds_blobs_ranges *in, unsigned group_log,
                                     irohds_blobs_ranges *out)
{
    uint64_t g = (uint64_t)1 << group_log;
    irohds_blobs_ranges t = *in;
    out->n = 0;
    for (uint32_t i = 0; i < t.n; i++) {
        uint64_t s = t.r[i].start, e = t.r[i].end;
        if (s > UINT64_MAX - (g - 1))
            continue; /* no whole group starts in it */
        s = (s + g - 1) & ~(g - 1);
        if (e != IROHDS_BLOBS_OPEN)
            e &= ~(g - 1);
        irohds_blobs_ranges_add(out, s, e);
    }
}

/* ------------------------------------------------------------ sequences */

static const irohds_blobs_ranges no_ranges;

int irohds_blobs_seq_from_ranges(irohds_blobs_seq *seq, const irohds_blobs_ranges *list,
                                 size_t n, bool infinite)
{
    seq->n = 0;
    const irohds_blobs_ranges *prev = &no_ranges;
    for (size_t k = 0; k <= n; k++) {
        const irohds_blobs_ranges *cur = k < n ? &list[k] : &no_ranges;
        if (k == n && (infinite || prev->n == 0))
            break;
        if (irohds_blobs_ranges_equal(cur, prev))
            continue;
        if (seq->n == IROHDS_BLOBS_MAX_SEQ)
            return -EOVERFLOW;
        seq->index[seq->n] = k;
        seq->ranges[seq->n] = *cur;
        seq->n++;
        prev = cur;
    }
    return 0;
}

const irohds_blobs_ranges *irohds_blobs_seq_get(const irohds_blobs_seq *seq, uint64_t k)
{
    const irohds_blobs_ranges *found = &no_ranges;
    for (uint32_t i = 0; i < seq->n && seq->index[i] <= k; i++)
        found = &seq->ranges[i];
    return found;
}

/* ------------------------------------------------------- RangeSpec wire */

/* pos plus the next delta of a list (span widths, index deltas): only the
 * first may be 0, a later 0 would repeat a boundary or an index. */
static uint64_t read_delta(irohds_pc_reader *r, uint64_t pos, size_t k)
{
    uint64_t delta = irohds_pc_read_u64(r);
    if (k > 0 && delta == 0)
        irohds_pc_fail(r, -EPROTO);
    else if (delta > UINT64_MAX - pos)
        irohds_pc_fail(r, -EOVERFLOW);
    return r->err ? pos : pos + delta;
}

void irohds_blobs_ranges_encode(irohds_pc_writer *w, const irohds_blobs_ranges *rs)
{
    uint32_t nb = boundaries(rs);
    irohds_pc_write_varint(w, nb);
    uint64_t prev = 0;
    for (uint32_t k = 0; k < nb; k++) {
        uint64_t b = boundary(rs, k);
        irohds_pc_write_varint(w, b - prev);
        prev = b;
    }
}

int irohds_blobs_ranges_decode(irohds_pc_reader *r, irohds_blobs_ranges *rs)
{
    size_t nb = irohds_pc_read_seq_len(r, 2 * IROHDS_BLOBS_MAX_RANGES, 1);
    uint64_t pos = 0;
    rs->n = 0;
    for (size_t k = 0; k < nb && !r->err; k++) {
        pos = read_delta(r, pos, k);
        if (k % 2 == 0)
            rs->r[rs->n++] = (irohds_blobs_range){pos, IROHDS_BLOBS_OPEN};
        else
            rs->r[rs->n - 1].end = pos;
    }
    if (r->err)
        rs->n = 0;
    return r->err;
}

/* ------------------------------------------------- ChunkRangesSeq wire */

void irohds_blobs_seq_encode(irohds_pc_writer *w, const irohds_blobs_seq *seq)
{
    irohds_pc_write_varint(w, seq->n);
    uint64_t prev = 0;
    for (uint32_t i = 0; i < seq->n; i++) {
        irohds_pc_write_varint(w, seq->index[i] - prev);
        irohds_blobs_ranges_encode(w, &seq->ranges[i]);
        prev = seq->index[i];
    }
}

int irohds_blobs_seq_decode(irohds_pc_reader *r, irohds_blobs_seq *seq)
{
    /* an entry is at least a delta byte and a RangeSpec length byte */
    size_t n = irohds_pc_read_seq_len(r, IROHDS_BLOBS_MAX_SEQ, 2);
    uint64_t index = 0;
    seq->n = 0;
    for (size_t i = 0; i < n && !r->err; i++) {
        index = read_delta(r, index, i);
        seq->index[i] = index;
        irohds_blobs_ranges_decode(r, &seq->ranges[i]);
        seq->n++;
    }
    if (r->err)
        seq->n = 0;
    return r->err;
}

/* ------------------------------------------------------------- requests */

int irohds_blobs_get_encode(const irohds_blobs_get *get, uint8_t *buf, size_t cap, size_t *len)
{
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, buf, cap);
    irohds_pc_write_u8(&w, IROHDS_BLOBS_REQ_GET);
    irohds_pc_write_raw(&w, get->hash, sizeof get->hash);
    irohds_blobs_seq_encode(&w, &get->ranges);
    *len = w.len;
    return w.err;
}

static void read_get(irohds_pc_reader *r, irohds_blobs_get *get)
{
    const uint8_t *hash = irohds_pc_read_raw(r, sizeof get->hash);
    if (hash)
        memcpy(get->hash, hash, sizeof get->hash);
    irohds_blobs_seq_decode(r, &get->ranges);
}

/* GetManyRequest { hashes: Vec<[u8; 32]>, ranges }, parsed to refuse it. */
static void skip_get_many(irohds_pc_reader *r, irohds_blobs_get *scratch)
{
    size_t n = irohds_pc_read_seq_len(r, SIZE_MAX, 32);
    irohds_pc_read_raw(r, n * 32);
    irohds_blobs_seq_decode(r, &scratch->ranges);
}

/* ObserveRequest { hash, ranges: RangeSpec }, parsed to refuse it. */
static void skip_observe(irohds_pc_reader *r, irohds_blobs_get *scratch)
{
    irohds_pc_read_raw(r, 32);
    irohds_blobs_ranges_decode(r, &scratch->ranges.ranges[0]);
}

/* Push is 08, varint length, PushRequest (= GetRequest), then the data. */
static int check_push(irohds_pc_reader *r, irohds_blobs_get *scratch)
{
    uint64_t n = irohds_pc_read_u64(r);
    const uint8_t *body = n <= irohds_pc_remaining(r) ? irohds_pc_read_raw(r, (size_t)n) : NULL;
    if (!body)
        return r->err ? r->err : -EPROTO;
    irohds_pc_reader inner;
    irohds_pc_reader_init(&inner, body, (size_t)n);
    read_get(&inner, scratch);
    int err = irohds_pc_finish(&inner);
    return err ? err : -ENOTSUP;
}

int irohds_blobs_request_decode(const uint8_t *buf, size_t len, irohds_blobs_get *get)
{
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, buf, len);
    uint8_t kind = irohds_pc_read_u8(&r);
    if (r.err)
        return r.err;
    switch (kind) {
    case IROHDS_BLOBS_REQ_GET:
        read_get(&r, get);
        return irohds_pc_finish(&r);
    case IROHDS_BLOBS_REQ_PUSH:
        return check_push(&r, get);
    case IROHDS_BLOBS_REQ_GET_MANY:
        skip_get_many(&r, get);
        break;
    case IROHDS_BLOBS_REQ_OBSERVE:
        skip_observe(&r, get);
        break;
    default:
        return -EPROTO; /* reserved slots 2-7 (iroh refuses them too), unknown */
    }
    int err = irohds_pc_finish(&r);
    return err ? err : -ENOTSUP;
}

/* Some entry with chunks applies to a blob after blob 0. */
static bool wants_children(const irohds_blobs_seq *seq)
{
    for (uint32_t i = 0; i < seq->n; i++) {
        uint64_t next = i + 1 < seq->n ? seq->index[i + 1] : UINT64_MAX;
        if (seq->ranges[i].n > 0 && next > 1)
            return true;
    }
    return false;
}

const irohds_blobs_ranges *irohds_blobs_get_root_ranges(const irohds_blobs_get *get,
                                                        bool *children)
{
    if (children)
        *children = wants_children(&get->ranges);
    return irohds_blobs_seq_get(&get->ranges, 0);
}
