/*
 * hash/blake3_impl.h: internals shared by the BLAKE3 files (not an API).
 *
 * The constants come from the BLAKE3 paper.  The split of work is:
 *   blake3_portable.c  one compression in plain C, and a portable hash_many;
 *   blake3_sse41.c / _avx2.c / _avx512.c  hash_many over 4 / 8 / 16 lanes,
 *       each compiled with its own -m flag so the rest of the library stays
 *       runnable on any x86-64 CPU;
 *   blake3_dispatch.c  picks the widest hash_many the CPU (and OS) supports;
 *   blake3.c  the tree: chunk states, the CV stack, wide subtree hashing.
 *
 * hash_many is the only SIMD entry point: it compresses n independent inputs
 * of the same number of whole blocks (n chunks, or n parent nodes) and writes
 * n chaining values.  All the speed comes from keeping its lanes full.
 */
#ifndef IROHDS_BLAKE3_IMPL_H
#define IROHDS_BLAKE3_IMPL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "hash/blake3.h"

enum {
    B3_CHUNK_START = 1 << 0,
    B3_CHUNK_END = 1 << 1,
    B3_PARENT = 1 << 2,
    B3_ROOT = 1 << 3,
    B3_KEYED_HASH = 1 << 4,
    B3_DERIVE_KEY_CONTEXT = 1 << 5,
    B3_DERIVE_KEY_MATERIAL = 1 << 6,
};

/* Widest hash_many we have (AVX-512); sizes the tree code's stack buffers. */
#define B3_MAX_SIMD_DEGREE 16

static const uint32_t B3_IV[8] = {0x6A09E667u, 0xBB67AE85u, 0x3C6EF372u, 0xA54FF53Au,
                                  0x510E527Fu, 0x9B05688Cu, 0x1F83D9ABu, 0x5BE0CD19u};

/*
 * Message word order of each of the 7 rounds: row r is the spec's
 * permutation (2,6,3,10,7,0,4,13,1,11,12,5,9,14,15,8) applied r times.
 * Indexing the original words through this table saves permuting the
 * message between rounds (in SIMD code that would be 16 register moves).
 */
static const uint8_t B3_MSG_SCHEDULE[7][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8},
    {3, 4, 10, 12, 13, 2, 7, 14, 6, 5, 9, 0, 11, 15, 8, 1},
    {10, 7, 12, 9, 14, 3, 13, 15, 4, 0, 11, 2, 5, 8, 1, 6},
    {12, 13, 9, 11, 15, 10, 14, 8, 7, 2, 5, 3, 0, 1, 6, 4},
    {9, 14, 11, 5, 8, 12, 15, 1, 13, 3, 0, 10, 2, 6, 4, 7},
    {11, 15, 5, 0, 1, 9, 8, 6, 14, 10, 2, 12, 3, 4, 7, 13},
};

static inline uint32_t b3_load32(const uint8_t *p)
{
    uint32_t w;
    memcpy(&w, p, 4); /* BLAKE3 is little-endian; so is every x86 */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap32(w);
#endif
    return w;
}

static inline void b3_store32(uint8_t *p, uint32_t w)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    w = __builtin_bswap32(w);
#endif
    memcpy(p, &w, 4);
}

static inline void b3_load_key(uint32_t key[8], const uint8_t bytes[32])
{
    for (int i = 0; i < 8; i++)
        key[i] = b3_load32(bytes + 4 * i);
}

static inline void b3_store_cv(uint8_t out[32], const uint32_t cv[8])
{
    for (int i = 0; i < 8; i++)
        b3_store32(out + 4 * i, cv[i]);
}

/* ---------------------------------------------------------- portable */

/* cv <- first half of compress(cv, block, counter, block_len, flags). */
void irohds_blake3_compress_in_place_portable(uint32_t cv[8], const uint8_t block[64],
                                              uint8_t block_len, uint64_t counter,
                                              uint8_t flags);
/* All 64 output bytes (second half xor'd with cv), for the root / XOF. */
void irohds_blake3_compress_xof_portable(const uint32_t cv[8], const uint8_t block[64],
                                         uint8_t block_len, uint64_t counter, uint8_t flags,
                                         uint8_t out[64]);

/*
 * Compress num_inputs inputs of `blocks` full 64-byte blocks each, all
 * starting from key.  Input i gets counter + i when increment_counter (chunks)
 * or counter (parents).  The first block gets flags | flags_start, the last
 * flags | flags_end.  Writes num_inputs 32-byte CVs to out, in order.
 */
typedef void irohds_blake3_hash_many_fn(const uint8_t *const *inputs, size_t num_inputs,
                                        size_t blocks, const uint32_t key[8], uint64_t counter,
                                        bool increment_counter, uint8_t flags,
                                        uint8_t flags_start, uint8_t flags_end, uint8_t *out);

irohds_blake3_hash_many_fn irohds_blake3_hash_many_portable;
#if defined(IROHDS_B3_X86)
irohds_blake3_hash_many_fn irohds_blake3_hash_many_sse41;
irohds_blake3_hash_many_fn irohds_blake3_hash_many_avx2;
irohds_blake3_hash_many_fn irohds_blake3_hash_many_avx512;
#endif

/* ---------------------------------------------------------- dispatch */

/* hash_many of the selected implementation. */
irohds_blake3_hash_many_fn irohds_blake3_hash_many;
/* Lanes of the selected implementation's hash_many (1, 4, 8 or 16). */
size_t irohds_blake3_simd_degree(void);

/* ---------------------------------------------------------- tree (bao) */

/*
 * CVs (non-root) of n consecutive complete subtrees of 2^log_chunks chunks
 * each, the first starting at chunk index chunk_start (a multiple of
 * 2^log_chunks).  Hashes level by level so every hash_many call is full;
 * this is what bao's chunk-group leaves use.
 */
void irohds_blake3_subtree_cvs(const uint8_t *input, size_t n, unsigned log_chunks,
                               uint64_t chunk_start, uint8_t *out);

#endif
