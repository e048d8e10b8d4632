/*
 * hash/blake3_portable.c: the BLAKE3 compression function in plain C.
 *
 * Used for single blocks everywhere (partial chunks, parent chains, the
 * root/XOF output) and as the whole implementation on CPUs without SIMD.
 * Written straight from the spec: 16-word state, 7 rounds of the G mixing
 * function on columns then diagonals, the message read through the
 * precomputed schedule instead of being permuted between rounds.
 */
#include "hash/blake3_impl.h"

static inline uint32_t rotr32(uint32_t w, unsigned c)
{
    return (w >> c) | (w << (32 - c));
}

static inline void g(uint32_t v[16], int a, int b, int c, int d, uint32_t x, uint32_t y)
{
    v[a] = v[a] + v[b] + x;
    v[d] = rotr32(v[d] ^ v[a], 16);
    v[c] = v[c] + v[d];
    v[b] = rotr32(v[b] ^ v[c], 12);
    v[a] = v[a] + v[b] + y;
    v[d] = rotr32(v[d] ^ v[a], 8);
    v[c] = v[c] + v[d];
    v[b] = rotr32(v[b] ^ v[c], 7);
}

static inline void round_fn(uint32_t v[16], const uint32_t m[16], int r)
{
    const uint8_t *s = B3_MSG_SCHEDULE[r];
    g(v, 0, 4, 8, 12, m[s[0]], m[s[1]]);
    g(v, 1, 5, 9, 13, m[s[2]], m[s[3]]);
    g(v, 2, 6, 10, 14, m[s[4]], m[s[5]]);
    g(v, 3, 7, 11, 15, m[s[6]], m[s[7]]);
    g(v, 0, 5, 10, 15, m[s[8]], m[s[9]]);
    g(v, 1, 6, 11, 12, m[s[10]], m[s[11]]);
    g(v, 2, 7, 8, 13, m[s[12]], m[s[13]]);
    g(v, 3, 4, 9, 14, m[s[14]], m[s[15]]);
}

/* Runs the 7 rounds; v holds the full 16-word state afterwards. */
static void compress_core(uint32_t v[16], const uint32_t cv[8], const uint8_t block[64],
                          uint8_t block_len, uint64_t counter, uint8_t flags)
{
    uint32_t m[16];
    for (int i = 0; i < 16; i++)
        m[i] = b3_load32(block + 4 * i);
    for (int i = 0; i < 8; i++)
        v[i] = cv[i];
    for (int i = 0; i < 4; i++)
        v[8 + i] = B3_IV[i];
    v[12] = (uint32_t)counter;
    v[13] = (uint32_t)(counter >> 32);
    v[14] = block_len;
    v[15] = flags;
    for (int r = 0; r < 7; r++)
        round_fn(v, m, r);
}

void irohds_blake3_compress_in_place_portable(uint32_t cv[8], const uint8_t block[64],
                                              uint8_t block_len, uint64_t counter,
                                              uint8_t flags)
{
    uint32_t v[16];
    compress_core(v, cv, block, block_len, counter, flags);
    for (int i = 0; i < 8; i++)
        cv[i] = v[i] ^ v[i + 8];
}

void irohds_blake3_compress_xof_portable(const uint32_t cv[8], const uint8_t block[64],
                                         uint8_t block_len, uint64_t counter, uint8_t flags,
                                         uint8_t out[64])
{
    uint32_t v[16];
    compress_core(v, cv, block, block_len, counter, flags);
    for (int i = 0; i < 8; i++) {
        b3_store32(out + 4 * i, v[i] ^ v[i + 8]);
        b3_store32(out + 32 + 4 * i, v[i + 8] ^ cv[i]);
    }
}

void irohds_blake3_hash_many_portable(const uint8_t *const *inputs, size_t num_inputs,
                                      size_t blocks, const uint32_t key[8], uint64_t counter,
                                      bool increment_counter, uint8_t flags,
                                      uint8_t flags_start, uint8_t flags_end, uint8_t *out)
{
    for (size_t i = 0; i < num_inputs; i++) {
        uint32_t cv[8];
        memcpy(cv, key, sizeof cv);
        for (size_t b = 0; b < blocks; b++) {
            uint8_t f = flags;
            if (b == 0)
                f |= flags_start;
            if (b + 1 == blocks)
                f |= flags_end;
            irohds_blake3_compress_in_place_portable(cv, inputs[i] + 64 * b, 64, counter, f);
        }
        b3_store_cv(out + 32 * i, cv);
        if (increment_counter)
            counter++;
    }
}
