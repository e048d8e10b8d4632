/*
 * hash/blake3_avx2.c: hash_many over 8 lanes with AVX2 intrinsics.
 *
 * Same layout as the SSE4.1 version, twice as wide: each 256-bit register
 * holds one state word of 8 independent inputs.  A block is loaded as two
 * 32-byte halves per input and put in word-per-register form with an 8x8
 * transpose (unpack 32, unpack 64, then swap 128-bit halves).  Leftover
 * inputs (fewer than 8) go to the SSE4.1 version, which any AVX2 CPU has.
 * Compiled with -mavx2; only called after CPUID/XGETBV say it is safe.
 */
#include <immintrin.h>

#include "hash/blake3_impl.h"

typedef __m256i V;

static inline V add(V a, V b) { return _mm256_add_epi32(a, b); }
static inline V xor(V a, V b) { return _mm256_xor_si256(a, b); }
static inline V set1(uint32_t x) { return _mm256_set1_epi32((int)x); }

static inline V rot16(V x)
{
    return _mm256_shuffle_epi8(x, _mm256_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0,
                                                  3, 2, 13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7,
                                                  6, 1, 0, 3, 2));
}
static inline V rot12(V x)
{
    return _mm256_or_si256(_mm256_srli_epi32(x, 12), _mm256_slli_epi32(x, 20));
}
static inline V rot8(V x)
{
    return _mm256_shuffle_epi8(x, _mm256_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3,
                                                  2, 1, 12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6,
                                                  5, 0, 3, 2, 1));
}
static inline V rot7(V x)
{
    return _mm256_or_si256(_mm256_srli_epi32(x, 7), _mm256_slli_epi32(x, 25));
}

static inline void g(V v[16], int a, int b, int c, int d, V x, V y)
{
    v[a] = add(add(v[a], v[b]), x);
    v[d] = rot16(xor(v[d], v[a]));
    v[c] = add(v[c], v[d]);
    v[b] = rot12(xor(v[b], v[c]));
    v[a] = add(add(v[a], v[b]), y);
    v[d] = rot8(xor(v[d], v[a]));
    v[c] = add(v[c], v[d]);
    v[b] = rot7(xor(v[b], v[c]));
}

static inline void round_fn(V v[16], const V m[16], int r)
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

/* r[i] holds words 0..7 of row i; afterwards r[j] holds word j of rows 0..7. */
static inline void transpose8(V r[8])
{
    V t0 = _mm256_unpacklo_epi32(r[0], r[1]), t1 = _mm256_unpackhi_epi32(r[0], r[1]);
    V t2 = _mm256_unpacklo_epi32(r[2], r[3]), t3 = _mm256_unpackhi_epi32(r[2], r[3]);
    V t4 = _mm256_unpacklo_epi32(r[4], r[5]), t5 = _mm256_unpackhi_epi32(r[4], r[5]);
    V t6 = _mm256_unpacklo_epi32(r[6], r[7]), t7 = _mm256_unpackhi_epi32(r[6], r[7]);
    /* u0: word 0 of rows 0-3 | word 4 of rows 0-3, and so on */
    V u0 = _mm256_unpacklo_epi64(t0, t2), u1 = _mm256_unpackhi_epi64(t0, t2);
    V u2 = _mm256_unpacklo_epi64(t1, t3), u3 = _mm256_unpackhi_epi64(t1, t3);
    V u4 = _mm256_unpacklo_epi64(t4, t6), u5 = _mm256_unpackhi_epi64(t4, t6);
    V u6 = _mm256_unpacklo_epi64(t5, t7), u7 = _mm256_unpackhi_epi64(t5, t7);
    r[0] = _mm256_permute2x128_si256(u0, u4, 0x20);
    r[4] = _mm256_permute2x128_si256(u0, u4, 0x31);
    r[1] = _mm256_permute2x128_si256(u1, u5, 0x20);
    r[5] = _mm256_permute2x128_si256(u1, u5, 0x31);
    r[2] = _mm256_permute2x128_si256(u2, u6, 0x20);
    r[6] = _mm256_permute2x128_si256(u2, u6, 0x31);
    r[3] = _mm256_permute2x128_si256(u3, u7, 0x20);
    r[7] = _mm256_permute2x128_si256(u3, u7, 0x31);
}

static inline void load_msg(const uint8_t *const *in, size_t off, V m[16])
{
    for (int half = 0; half < 2; half++) {
        V *r = m + 8 * half;
        for (int i = 0; i < 8; i++)
            r[i] = _mm256_loadu_si256((const V *)(in[i] + off + 32 * half));
        transpose8(r);
    }
}

static void hash8(const uint8_t *const *in, size_t blocks, const uint32_t key[8],
                  uint64_t counter, bool inc, uint8_t flags, uint8_t flags_start,
                  uint8_t flags_end, uint8_t *out)
{
    V h[8], m[16], v[16];
    for (int i = 0; i < 8; i++)
        h[i] = set1(key[i]);
    uint32_t lo[8], hi[8];
    for (int i = 0; i < 8; i++) {
        uint64_t c = counter + (inc ? (uint64_t)i : 0);
        lo[i] = (uint32_t)c;
        hi[i] = (uint32_t)(c >> 32);
    }
    V clo = _mm256_loadu_si256((const V *)lo), chi = _mm256_loadu_si256((const V *)hi);
    for (size_t b = 0; b < blocks; b++) {
        uint8_t f = flags;
        if (b == 0)
            f |= flags_start;
        if (b + 1 == blocks)
            f |= flags_end;
        load_msg(in, 64 * b, m);
        /* Lanes read 8 streams 1 KiB apart; hint each a few blocks ahead
         * so the hardware prefetcher's stream limit is not what we wait on. */
        for (int i = 0; i < 8; i++)
            _mm_prefetch((const char *)(in[i] + 64 * b + 256), _MM_HINT_T0);
        for (int i = 0; i < 8; i++)
            v[i] = h[i];
        for (int i = 0; i < 4; i++)
            v[8 + i] = set1(B3_IV[i]);
        v[12] = clo;
        v[13] = chi;
        v[14] = set1(64);
        v[15] = set1(f);
        for (int r = 0; r < 7; r++)
            round_fn(v, m, r);
        for (int i = 0; i < 8; i++)
            h[i] = xor(v[i], v[i + 8]);
    }
    transpose8(h);
    for (int i = 0; i < 8; i++)
        _mm256_storeu_si256((V *)(out + 32 * i), h[i]);
}

void irohds_blake3_hash_many_avx2(const uint8_t *const *inputs, size_t num_inputs,
                                  size_t blocks, const uint32_t key[8], uint64_t counter,
                                  bool increment_counter, uint8_t flags, uint8_t flags_start,
                                  uint8_t flags_end, uint8_t *out)
{
    while (num_inputs >= 8) {
        hash8(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end,
              out);
        if (increment_counter)
            counter += 8;
        inputs += 8;
        num_inputs -= 8;
        out += 8 * 32;
    }
    irohds_blake3_hash_many_sse41(inputs, num_inputs, blocks, key, counter, increment_counter,
                                  flags, flags_start, flags_end, out);
}
