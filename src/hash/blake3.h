/*
 * hash/blake3: BLAKE3 in all four modes (hash, keyed_hash, derive_key, XOF),
 * written from the BLAKE3 paper and spec.  The compression function has a
 * portable C version and SIMD "hash many chunks at once" versions (SSE4.1,
 * AVX2, AVX-512) picked at run time from CPUID; the tree logic is shared.
 *
 * The subtree functions at the bottom are what bao (hash/bao.h) needs: the
 * chaining value of a run of chunks that starts at a given chunk index, and
 * the merge of two chaining values into a parent.
 */
#ifndef IROHDS_BLAKE3_H
#define IROHDS_BLAKE3_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IROHDS_BLAKE3_KEY_LEN 32
#define IROHDS_BLAKE3_OUT_LEN 32
#define IROHDS_BLAKE3_BLOCK_LEN 64
#define IROHDS_BLAKE3_CHUNK_LEN 1024
#define IROHDS_BLAKE3_MAX_DEPTH 54

typedef struct {
    uint32_t cv[8];
    uint64_t chunk_counter;
    uint8_t buf[IROHDS_BLAKE3_BLOCK_LEN];
    uint8_t buf_len;
    uint8_t blocks_compressed;
    uint8_t flags;
} irohds_blake3_chunk_state;

typedef struct {
    uint32_t key[8];
    irohds_blake3_chunk_state chunk;
    uint8_t cv_stack_len;
    uint8_t cv_stack[(IROHDS_BLAKE3_MAX_DEPTH + 1) * IROHDS_BLAKE3_OUT_LEN];
} irohds_blake3_hasher;

void irohds_blake3_hasher_init(irohds_blake3_hasher *h);
void irohds_blake3_hasher_init_keyed(irohds_blake3_hasher *h,
                                     const uint8_t key[IROHDS_BLAKE3_KEY_LEN]);
void irohds_blake3_hasher_init_derive_key(irohds_blake3_hasher *h, const char *context);
void irohds_blake3_hasher_init_derive_key_raw(irohds_blake3_hasher *h,
                                              const void *context, size_t context_len);
void irohds_blake3_hasher_update(irohds_blake3_hasher *h, const void *input, size_t len);
/* Any out_len; the first 32 bytes are "the hash". Does not change *h. */
void irohds_blake3_hasher_finalize(const irohds_blake3_hasher *h, uint8_t *out, size_t out_len);
/* Extended output starting at byte offset seek. */
void irohds_blake3_hasher_finalize_seek(const irohds_blake3_hasher *h, uint64_t seek,
                                        uint8_t *out, size_t out_len);
void irohds_blake3_hasher_reset(irohds_blake3_hasher *h);

/* One-shot hash of a buffer. */
void irohds_blake3(const void *input, size_t len, uint8_t out[IROHDS_BLAKE3_OUT_LEN]);

/* ------------------------------------------------ implementation choice */

typedef enum {
    IROHDS_BLAKE3_PORTABLE = 0,
    IROHDS_BLAKE3_SSE41 = 1,
    IROHDS_BLAKE3_AVX2 = 2,
    IROHDS_BLAKE3_AVX512 = 3,
} irohds_blake3_impl;

/* The best implementation this CPU supports (decided once, from CPUID). */
irohds_blake3_impl irohds_blake3_best_impl(void);
/* Force an implementation (tests, benchmarks).  -ENOTSUP if the CPU lacks it. */
int irohds_blake3_set_impl(irohds_blake3_impl impl);
irohds_blake3_impl irohds_blake3_get_impl(void);
const char *irohds_blake3_impl_name(irohds_blake3_impl impl);

/* ------------------------------------------------------ subtrees (bao) */

/*
 * Chaining value of the subtree holding input[0..len), which starts at chunk
 * index chunk_start.  len must be a power of two number of chunks times 1024,
 * or any length for the last (rightmost) subtree of the input.  is_root:
 * finalize as the root of the whole tree (only when this subtree is the
 * whole input).
 */
void irohds_blake3_subtree_cv(const uint8_t *input, size_t len, uint64_t chunk_start,
                              bool is_root, uint8_t out[IROHDS_BLAKE3_OUT_LEN]);

/* Parent node of two chaining values; is_root for the top node. */
void irohds_blake3_parent_cv(const uint8_t left[IROHDS_BLAKE3_OUT_LEN],
                             const uint8_t right[IROHDS_BLAKE3_OUT_LEN], bool is_root,
                             uint8_t out[IROHDS_BLAKE3_OUT_LEN]);

#endif
