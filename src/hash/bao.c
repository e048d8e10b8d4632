/*
 * hash/bao.c: bao outboards with chunk groups (the iroh-blobs / bao-tree
 * pre-order layout), their root hash, and verification.
 *
 * The tree is the BLAKE3 tree itself, cut at chunk-group level: a group is a
 * complete subtree of 2^group_log chunks, its CV is an ordinary non-root
 * BLAKE3 subtree CV, and the outboard keeps the parents above the groups,
 * each as left CV || right CV, in pre-order (a parent's slot comes before
 * its children's).  So an outboard is (groups - 1) * 64 bytes.
 *
 * Speed: nearly all the work is hashing the groups.  Aligned runs of up to
 * MAX_BATCH_GROUPS groups are hashed together by irohds_blake3_subtree_cvs,
 * which keeps every SIMD lane busy, including the parents inside the groups.
 * The parents above the groups (one per 16 KiB) are cheap enough one at a
 * time.  Verification recomputes the same tree and compares every stored
 * parent and the root: a node verifies exactly when it equals the recomputed
 * one, and this needs no scratch memory.
 */
#include <errno.h>

#include "hash/bao.h"
#include "hash/blake3_impl.h"

#define CHUNK_LEN IROHDS_BLAKE3_CHUNK_LEN
#define MAX_BATCH_GROUPS 64

/* Where parents go: written to out, or compared with expect. */
typedef struct {
    uint8_t *out;
    const uint8_t *expect;
    uint64_t pos;
    bool bad;
} sink_t;

static void sink_parent(sink_t *s, uint64_t slot, const uint8_t left[32],
                        const uint8_t right[32])
{
    if (s->out) {
        memcpy(s->out + slot, left, 32);
        memcpy(s->out + slot + 32, right, 32);
    } else if (memcmp(s->expect + slot, left, 32) || memcmp(s->expect + slot + 32, right, 32)) {
        s->bad = true;
    }
}

static void merge(sink_t *s, uint64_t slot, const uint8_t l[32], const uint8_t r[32],
                  bool is_root, uint8_t cv[32])
{
    sink_parent(s, slot, l, r);
    irohds_blake3_parent_cv(l, r, is_root, cv);
}

/* Pre-order parents over n (a power of two) group CVs. */
static void tree_over_cvs(const uint8_t *cvs, size_t n, bool is_root, sink_t *s,
                          uint8_t cv[32])
{
    if (n == 1) {
        memcpy(cv, cvs, 32);
        return;
    }
    uint64_t slot = s->pos;
    s->pos += 64;
    uint8_t l[32], r[32];
    tree_over_cvs(cvs, n / 2, false, s, l);
    tree_over_cvs(cvs + 32 * (n / 2), n / 2, false, s, r);
    merge(s, slot, l, r, is_root, cv);
}

static bool is_pow2(uint64_t x)
{
    return x && !(x & (x - 1));
}

static void tree(const uint8_t *data, uint64_t len, uint64_t chunk_start, unsigned group_log,
                 bool is_root, sink_t *s, uint8_t cv[32])
{
    uint64_t group_bytes = (uint64_t)CHUNK_LEN << group_log;
    if (len <= group_bytes) {
        irohds_blake3_subtree_cv(data, (size_t)len, chunk_start, is_root, cv);
        return;
    }
    uint64_t groups = len / group_bytes;
    if (len % group_bytes == 0 && is_pow2(groups) && groups <= MAX_BATCH_GROUPS) {
        uint8_t cvs[MAX_BATCH_GROUPS * 32];
        irohds_blake3_subtree_cvs(data, (size_t)groups, group_log, chunk_start, cvs);
        tree_over_cvs(cvs, (size_t)groups, is_root, s, cv);
        return;
    }
    /* BLAKE3's split: the largest power-of-two number of chunks that leaves
     * at least one chunk on the right.  It is a whole number of groups. */
    uint64_t chunks_but_last = (len - 1) / CHUNK_LEN;
    uint64_t left = ((uint64_t)1 << (63 - __builtin_clzll(chunks_but_last))) * CHUNK_LEN;
    uint64_t slot = s->pos;
    s->pos += 64;
    uint8_t l[32], r[32];
    tree(data, left, chunk_start, group_log, false, s, l);
    tree(data + left, len - left, chunk_start + left / CHUNK_LEN, group_log, false, s, r);
    merge(s, slot, l, r, is_root, cv);
}

uint64_t irohds_bao_outboard_size(uint64_t content_len, unsigned group_log)
{
    uint64_t group_bytes = (uint64_t)CHUNK_LEN << group_log;
    if (content_len <= group_bytes)
        return 0;
    uint64_t groups = (content_len + group_bytes - 1) / group_bytes;
    return (groups - 1) * 64;
}

void irohds_bao_outboard(const uint8_t *data, uint64_t len, unsigned group_log,
                         uint8_t *outboard, uint8_t root[32])
{
    sink_t s = {.out = outboard};
    tree(data, len, 0, group_log, true, &s, root);
}

int irohds_bao_verify(const uint8_t *data, uint64_t len, unsigned group_log,
                      const uint8_t *outboard, uint64_t outboard_len, const uint8_t root[32])
{
    if (outboard_len != irohds_bao_outboard_size(len, group_log))
        return -EBADMSG;
    sink_t s = {.expect = outboard};
    uint8_t got[32];
    tree(data, len, 0, group_log, true, &s, got);
    if (s.bad || memcmp(got, root, 32) != 0)
        return -EBADMSG;
    return 0;
}
