/*
 * hash/blake3.c: the BLAKE3 tree, in all four modes, over the compression
 * functions of blake3_portable.c and the SIMD hash_many of blake3_dispatch.c.
 *
 * Shape (from the spec): the input is cut into 1 KiB chunks; each chunk is
 * hashed with its index as counter; chunk CVs are merged pairwise into parent
 * nodes, the left subtree of any node holding the largest power-of-two number
 * of chunks that leaves at least one chunk on the right.
 *
 * Two ways through the tree, giving the same bytes:
 *  - small or unaligned input goes through the chunk state (one block at a
 *    time) and the CV stack, which merges completed subtrees lazily: a pair is
 *    merged only once a later chunk proves it is not the root;
 *  - whenever update() holds more than one chunk it hashes the largest
 *    aligned power-of-two subtree "wide": chunks `degree` at a time through
 *    hash_many, then the parents of those CVs `degree` at a time too, so all
 *    SIMD lanes stay busy except in the last log2(degree) levels.  The subtree
 *    comes back as its two top CVs, pushed on the stack like any others.
 */
#include "hash/blake3_impl.h"

#define CHUNK_LEN IROHDS_BLAKE3_CHUNK_LEN

/* The input of a compression whose output is not consumed yet: a chunk's
 * last block or a parent block.  Kept unevaluated so the root can be
 * compressed with the ROOT flag and any output counter (XOF). */
typedef struct {
    uint32_t cv[8];
    uint8_t block[64];
    uint8_t block_len;
    uint64_t counter;
    uint8_t flags;
} output_t;

static void output_cv(const output_t *o, uint8_t out[32])
{
    uint32_t cv[8];
    memcpy(cv, o->cv, sizeof cv);
    irohds_blake3_compress_in_place_portable(cv, o->block, o->block_len, o->counter, o->flags);
    b3_store_cv(out, cv);
}

static void output_root_bytes(const output_t *o, uint64_t seek, uint8_t *out, size_t len)
{
    uint64_t block_counter = seek / 64;
    size_t skip = (size_t)(seek % 64);
    uint8_t buf[64];
    while (len > 0) {
        irohds_blake3_compress_xof_portable(o->cv, o->block, o->block_len, block_counter,
                                            o->flags | B3_ROOT, buf);
        size_t take = 64 - skip;
        if (take > len)
            take = len;
        memcpy(out, buf + skip, take);
        out += take;
        len -= take;
        skip = 0;
        block_counter++;
    }
}

static output_t parent_output(const uint8_t block[64], const uint32_t key[8], uint8_t flags)
{
    output_t o;
    memcpy(o.cv, key, sizeof o.cv);
    memcpy(o.block, block, 64);
    o.block_len = 64;
    o.counter = 0;
    o.flags = flags | B3_PARENT;
    return o;
}

/* ------------------------------------------------------------ chunk state */

static void chunk_init(irohds_blake3_chunk_state *s, const uint32_t key[8], uint64_t counter,
                       uint8_t flags)
{
    memcpy(s->cv, key, sizeof s->cv);
    s->chunk_counter = counter;
    s->buf_len = 0;
    s->blocks_compressed = 0;
    s->flags = flags;
}

static size_t chunk_len(const irohds_blake3_chunk_state *s)
{
    return (size_t)s->blocks_compressed * 64 + s->buf_len;
}

static uint8_t chunk_start_flag(const irohds_blake3_chunk_state *s)
{
    return s->blocks_compressed == 0 ? B3_CHUNK_START : 0;
}

/* Caller keeps the total within one chunk.  The last block always stays in
 * buf, because only the next byte tells whether it ends the chunk. */
static void chunk_update(irohds_blake3_chunk_state *s, const uint8_t *in, size_t len)
{
    while (len > 0) {
        if (s->buf_len == 64) {
            irohds_blake3_compress_in_place_portable(s->cv, s->buf, 64, s->chunk_counter,
                                                     s->flags | chunk_start_flag(s));
            s->blocks_compressed++;
            s->buf_len = 0;
        }
        if (s->buf_len == 0) {
            while (len > 64) {
                irohds_blake3_compress_in_place_portable(s->cv, in, 64, s->chunk_counter,
                                                         s->flags | chunk_start_flag(s));
                s->blocks_compressed++;
                in += 64;
                len -= 64;
            }
        }
        size_t take = 64 - s->buf_len;
        if (take > len)
            take = len;
        memcpy(s->buf + s->buf_len, in, take);
        s->buf_len += (uint8_t)take;
        in += take;
        len -= take;
    }
}

static output_t chunk_output(const irohds_blake3_chunk_state *s)
{
    output_t o;
    memcpy(o.cv, s->cv, sizeof o.cv);
    memset(o.block, 0, sizeof o.block);
    memcpy(o.block, s->buf, s->buf_len);
    o.block_len = s->buf_len;
    o.counter = s->chunk_counter;
    o.flags = s->flags | chunk_start_flag(s) | B3_CHUNK_END;
    return o;
}

/* --------------------------------------------------------- wide subtrees */

static uint64_t round_down_pow2(uint64_t x)
{
    return (uint64_t)1 << (63 - __builtin_clzll(x | 1));
}

/* Bytes in the left subtree of a len-byte input, len > CHUNK_LEN. */
static size_t left_len(size_t len)
{
    size_t chunks_but_last = (len - 1) / CHUNK_LEN;
    return (size_t)round_down_pow2(chunks_but_last) * CHUNK_LEN;
}

/* CVs of the chunks of input (at most degree chunks, last may be partial). */
static size_t chunks_parallel(const uint8_t *input, size_t len, const uint32_t key[8],
                              uint64_t counter, uint8_t flags, uint8_t *out)
{
    const uint8_t *ptrs[B3_MAX_SIMD_DEGREE];
    size_t n = 0, off = 0;
    while (len - off >= CHUNK_LEN) {
        ptrs[n++] = input + off;
        off += CHUNK_LEN;
    }
    irohds_blake3_hash_many(ptrs, n, CHUNK_LEN / 64, key, counter, true, flags, B3_CHUNK_START,
                            B3_CHUNK_END, out);
    if (off < len) {
        irohds_blake3_chunk_state s;
        chunk_init(&s, key, counter + n, flags);
        chunk_update(&s, input + off, len - off);
        output_t o = chunk_output(&s);
        output_cv(&o, out + 32 * n);
        n++;
    }
    return n;
}

/* Merge adjacent pairs of n CVs; an odd last CV moves up unchanged. */
static size_t parents_parallel(const uint8_t *cvs, size_t n, const uint32_t key[8],
                               uint8_t flags, uint8_t *out)
{
    const uint8_t *ptrs[B3_MAX_SIMD_DEGREE];
    size_t pairs = n / 2;
    for (size_t i = 0; i < pairs; i++)
        ptrs[i] = cvs + 64 * i;
    irohds_blake3_hash_many(ptrs, pairs, 1, key, 0, false, flags | B3_PARENT, 0, 0, out);
    if (n % 2) {
        memcpy(out + 32 * pairs, cvs + 32 * (n - 1), 32);
        return pairs + 1;
    }
    return pairs;
}

/*
 * CVs of a subtree of len > 0 bytes at chunk index counter, reduced only to
 * `degree` nodes (or fewer) so the caller's next parent level is still one
 * full hash_many call.  The left half always yields exactly `degree` CVs (it
 * holds a power of two >= degree chunks), an even number, so pairing the
 * concatenation never joins a left node with a right one.
 */
static size_t subtree_wide(const uint8_t *input, size_t len, const uint32_t key[8],
                           uint64_t counter, uint8_t flags, size_t degree, uint8_t *out)
{
    if (len <= degree * CHUNK_LEN)
        return chunks_parallel(input, len, key, counter, flags, out);
    size_t ll = left_len(len);
    uint8_t cvs[2 * B3_MAX_SIMD_DEGREE * 32];
    size_t nl = subtree_wide(input, ll, key, counter, flags, degree, cvs);
    size_t nr = subtree_wide(input + ll, len - ll, key, counter + ll / CHUNK_LEN, flags, degree,
                             cvs + 32 * nl);
    return parents_parallel(cvs, nl + nr, key, flags, out);
}

static size_t wide_degree(void)
{
    size_t d = irohds_blake3_simd_degree();
    return d < 2 ? 2 : d; /* >= 2 keeps the left half's CV count even */
}

/* The two children of the top node of a subtree of len > CHUNK_LEN bytes. */
static void subtree_to_parent_block(const uint8_t *input, size_t len, const uint32_t key[8],
                                    uint64_t counter, uint8_t flags, uint8_t block[64])
{
    uint8_t cvs[B3_MAX_SIMD_DEGREE * 32], tmp[B3_MAX_SIMD_DEGREE * 32];
    size_t n = subtree_wide(input, len, key, counter, flags, wide_degree(), cvs);
    while (n > 2) {
        n = parents_parallel(cvs, n, key, flags, tmp);
        memcpy(cvs, tmp, 32 * n);
    }
    memcpy(block, cvs, 64);
}

/* ---------------------------------------------------------------- hasher */

static void hasher_init_base(irohds_blake3_hasher *h, const uint32_t key[8], uint8_t flags)
{
    memcpy(h->key, key, sizeof h->key);
    chunk_init(&h->chunk, key, 0, flags);
    h->cv_stack_len = 0;
}

void irohds_blake3_hasher_init(irohds_blake3_hasher *h)
{
    hasher_init_base(h, B3_IV, 0);
}

void irohds_blake3_hasher_init_keyed(irohds_blake3_hasher *h,
                                     const uint8_t key[IROHDS_BLAKE3_KEY_LEN])
{
    uint32_t k[8];
    b3_load_key(k, key);
    hasher_init_base(h, k, B3_KEYED_HASH);
}

void irohds_blake3_hasher_init_derive_key_raw(irohds_blake3_hasher *h, const void *context,
                                              size_t context_len)
{
    irohds_blake3_hasher ctx;
    hasher_init_base(&ctx, B3_IV, B3_DERIVE_KEY_CONTEXT);
    irohds_blake3_hasher_update(&ctx, context, context_len);
    uint8_t ctx_key[32];
    irohds_blake3_hasher_finalize(&ctx, ctx_key, sizeof ctx_key);
    uint32_t k[8];
    b3_load_key(k, ctx_key);
    hasher_init_base(h, k, B3_DERIVE_KEY_MATERIAL);
}

void irohds_blake3_hasher_init_derive_key(irohds_blake3_hasher *h, const char *context)
{
    irohds_blake3_hasher_init_derive_key_raw(h, context, strlen(context));
}

void irohds_blake3_hasher_reset(irohds_blake3_hasher *h)
{
    chunk_init(&h->chunk, h->key, 0, h->chunk.flags);
    h->cv_stack_len = 0;
}

/* Merge until the stack holds one CV per 1 bit of total_chunks: the
 * completed subtrees to the left of chunk total_chunks. */
static void merge_stack(irohds_blake3_hasher *h, uint64_t total_chunks)
{
    size_t want = (size_t)__builtin_popcountll(total_chunks);
    while (h->cv_stack_len > want) {
        uint8_t *left = h->cv_stack + 32 * (h->cv_stack_len - 2); /* left || right */
        output_t o = parent_output(left, h->key, h->chunk.flags);
        output_cv(&o, left);
        h->cv_stack_len--;
    }
}

static void push_cv(irohds_blake3_hasher *h, const uint8_t cv[32], uint64_t chunk_counter)
{
    merge_stack(h, chunk_counter);
    memcpy(h->cv_stack + 32 * h->cv_stack_len, cv, 32);
    h->cv_stack_len++;
}

void irohds_blake3_hasher_update(irohds_blake3_hasher *h, const void *input, size_t len)
{
    const uint8_t *in = input;
    irohds_blake3_chunk_state *c = &h->chunk;

    if (chunk_len(c) > 0) {
        size_t take = CHUNK_LEN - chunk_len(c);
        if (take > len)
            take = len;
        chunk_update(c, in, take);
        in += take;
        len -= take;
        if (len == 0)
            return; /* the chunk may still be the last one */
        uint8_t cv[32];
        output_t o = chunk_output(c);
        output_cv(&o, cv);
        push_cv(h, cv, c->chunk_counter);
        chunk_init(c, h->key, c->chunk_counter + 1, c->flags);
    }

    while (len > CHUNK_LEN) {
        uint64_t counter = c->chunk_counter;
        /* Largest power-of-two subtree that fits and starts on a multiple
         * of its own size (the tree's left subtrees are aligned). */
        uint64_t sub = round_down_pow2(len);
        while ((sub / CHUNK_LEN - 1) & counter)
            sub /= 2;
        if (sub <= CHUNK_LEN) {
            irohds_blake3_chunk_state one;
            chunk_init(&one, h->key, counter, c->flags);
            chunk_update(&one, in, CHUNK_LEN);
            uint8_t cv[32];
            output_t o = chunk_output(&one);
            output_cv(&o, cv);
            push_cv(h, cv, counter);
        } else {
            uint8_t block[64];
            subtree_to_parent_block(in, (size_t)sub, h->key, counter, c->flags, block);
            push_cv(h, block, counter);
            push_cv(h, block + 32, counter + sub / CHUNK_LEN / 2);
        }
        c->chunk_counter += sub / CHUNK_LEN;
        in += sub;
        len -= (size_t)sub;
    }

    if (len > 0) {
        chunk_update(c, in, len);
        /* More input follows the stack, so no pair on it can be the root:
         * merge now, which is what final_output() relies on. */
        merge_stack(h, c->chunk_counter);
    }
}

static output_t final_output(const irohds_blake3_hasher *h)
{
    if (h->cv_stack_len == 0)
        return chunk_output(&h->chunk);
    output_t o;
    size_t rem;
    if (chunk_len(&h->chunk) > 0) {
        o = chunk_output(&h->chunk);
        rem = h->cv_stack_len;
    } else {
        /* Input ended on a wide subtree: its top pair is the last entry. */
        o = parent_output(h->cv_stack + 32 * (h->cv_stack_len - 2), h->key, h->chunk.flags);
        rem = h->cv_stack_len - 2u;
    }
    while (rem > 0) {
        rem--;
        uint8_t block[64];
        memcpy(block, h->cv_stack + 32 * rem, 32);
        output_cv(&o, block + 32);
        o = parent_output(block, h->key, h->chunk.flags);
    }
    return o;
}

void irohds_blake3_hasher_finalize_seek(const irohds_blake3_hasher *h, uint64_t seek,
                                        uint8_t *out, size_t out_len)
{
    output_t o = final_output(h);
    output_root_bytes(&o, seek, out, out_len);
}

void irohds_blake3_hasher_finalize(const irohds_blake3_hasher *h, uint8_t *out, size_t out_len)
{
    irohds_blake3_hasher_finalize_seek(h, 0, out, out_len);
}

void irohds_blake3(const void *input, size_t len, uint8_t out[IROHDS_BLAKE3_OUT_LEN])
{
    irohds_blake3_hasher h;
    irohds_blake3_hasher_init(&h);
    irohds_blake3_hasher_update(&h, input, len);
    irohds_blake3_hasher_finalize(&h, out, IROHDS_BLAKE3_OUT_LEN);
}

/* -------------------------------------------------------------- subtrees */

void irohds_blake3_subtree_cv(const uint8_t *input, size_t len, uint64_t chunk_start,
                              bool is_root, uint8_t out[IROHDS_BLAKE3_OUT_LEN])
{
    output_t o;
    if (len <= CHUNK_LEN) {
        irohds_blake3_chunk_state s;
        chunk_init(&s, B3_IV, chunk_start, 0);
        chunk_update(&s, input, len);
        o = chunk_output(&s);
    } else {
        uint8_t block[64];
        subtree_to_parent_block(input, len, B3_IV, chunk_start, 0, block);
        o = parent_output(block, B3_IV, 0);
    }
    if (is_root)
        output_root_bytes(&o, 0, out, 32);
    else
        output_cv(&o, out);
}

void irohds_blake3_parent_cv(const uint8_t left[IROHDS_BLAKE3_OUT_LEN],
                             const uint8_t right[IROHDS_BLAKE3_OUT_LEN], bool is_root,
                             uint8_t out[IROHDS_BLAKE3_OUT_LEN])
{
    uint8_t block[64];
    memcpy(block, left, 32);
    memcpy(block + 32, right, 32);
    output_t o = parent_output(block, B3_IV, 0);
    if (is_root)
        output_root_bytes(&o, 0, out, 32);
    else
        output_cv(&o, out);
}

/* Chunks per batch: 256 KiB of input, two 8 KiB CV buffers on the stack. */
#define BATCH_CHUNKS 256

void irohds_blake3_subtree_cvs(const uint8_t *input, size_t n, unsigned log_chunks,
                               uint64_t chunk_start, uint8_t *out)
{
    size_t sub_chunks = (size_t)1 << log_chunks;
    if (sub_chunks > BATCH_CHUNKS) {
        for (size_t i = 0; i < n; i++)
            irohds_blake3_subtree_cv(input + i * sub_chunks * CHUNK_LEN,
                                     sub_chunks * CHUNK_LEN, chunk_start + i * sub_chunks,
                                     false, out + 32 * i);
        return;
    }
    const uint8_t *ptrs[BATCH_CHUNKS];
    uint8_t bufs[2][BATCH_CHUNKS * 32];
    size_t per_batch = BATCH_CHUNKS / sub_chunks;
    while (n > 0) {
        size_t k = n < per_batch ? n : per_batch;
        size_t m = k * sub_chunks;
        for (size_t i = 0; i < m; i++)
            ptrs[i] = input + i * CHUNK_LEN;
        irohds_blake3_hash_many(ptrs, m, CHUNK_LEN / 64, B3_IV, chunk_start, true, 0,
                                B3_CHUNK_START, B3_CHUNK_END, bufs[0]);
        int cur = 0;
        for (unsigned level = 0; level < log_chunks; level++) {
            m /= 2;
            for (size_t i = 0; i < m; i++)
                ptrs[i] = bufs[cur] + 64 * i;
            irohds_blake3_hash_many(ptrs, m, 1, B3_IV, 0, false, B3_PARENT, 0, 0,
                                    bufs[cur ^ 1]);
            cur ^= 1;
        }
        memcpy(out, bufs[cur], 32 * k);
        out += 32 * k;
        input += k * sub_chunks * CHUNK_LEN;
        chunk_start += k * sub_chunks;
        n -= k;
    }
}
