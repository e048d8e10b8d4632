/*
 * hash/blake3_avx512.c: hash_many over 16 lanes with AVX-512F intrinsics.
 *
 * One 512-bit register per state word of 16 independent inputs; AVX-512 has
 * a native 32-bit rotate, so G needs no shuffles.  Each input's 64-byte block
 * is one load; a 16x16 transpose (unpack 32, unpack 64 inside 128-bit lanes,
 * then two rounds of 128-bit lane shuffles) gives word-per-register form.
 * The 8 output CV registers go back through the same transpose (the other 8
 * rows are don't-care) and the low 256 bits of each row are stored.
 * Leftover inputs go to the AVX2 version.
 */
#include <immintrin.h>

#include "hash/blake3_impl.h"

typedef __m512i V;

static inline V add(V a, V b) { return _mm512_add_epi32(a, b); }
static inline V xor(V a, V b) { return _mm512_xor_si512(a, b); }
static inline V set1(uint32_t x) { return _mm512_set1_epi32((int)x); }

static inline void g(V v[16], int a, int b, int c, int d, V x, V y)
{
    v[a] = add(add(v[a], v[b]), x);
    v[d] = _mm512_ror_epi32(xor(v[d], v[a]), 16);
    v[c] = add(v[c], v[d]);
    v[b] = _mm512_ror_epi32(xor(v[b], v[c]), 12);
    v[a] = add(add(v[a], v[b]), y);
    v[d] = _mm512_ror_epi32(xor(v[d], v[a]), 8);
    v[c] = add(v[c], v[d]);
    v[b] = _mm512_ror_epi32(xor(v[b], v[c]), 7);
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

/* r[i] holds words 0..15 of row i; afterwards r[j] holds word j of rows 0..15. */
static inline void transpose16(V r[16])
{
    V a[16];
    /* Per group of 4 rows, a 4x4 transpose inside each 128-bit lane L:
     * a[4g+k] lane L = word 4L+k of rows 4g..4g+3. */
    for (int grp = 0; grp < 4; grp++) {
        V *x = r + 4 * grp;
        V t0 = _mm512_unpacklo_epi32(x[0], x[1]), t1 = _mm512_unpackhi_epi32(x[0], x[1]);
        V t2 = _mm512_unpacklo_epi32(x[2], x[3]), t3 = _mm512_unpackhi_epi32(x[2], x[3]);
        a[4 * grp + 0] = _mm512_unpacklo_epi64(t0, t2);
        a[4 * grp + 1] = _mm512_unpackhi_epi64(t0, t2);
        a[4 * grp + 2] = _mm512_unpacklo_epi64(t1, t3);
        a[4 * grp + 3] = _mm512_unpackhi_epi64(t1, t3);
    }
    /* Then a 4x4 transpose of 128-bit lanes across the groups: word 4L+k
     * gathers lane L of a[k], a[4+k], a[8+k], a[12+k]. */
    for (int k = 0; k < 4; k++) {
        V a0 = a[k], a1 = a[4 + k], a2 = a[8 + k], a3 = a[12 + k];
        V b0 = _mm512_shuffle_i32x4(a0, a1, 0x44); /* a0L0 a0L1 a1L0 a1L1 */
        V b1 = _mm512_shuffle_i32x4(a0, a1, 0xEE); /* a0L2 a0L3 a1L2 a1L3 */
        V b2 = _mm512_shuffle_i32x4(a2, a3, 0x44);
        V b3 = _mm512_shuffle_i32x4(a2, a3, 0xEE);
        r[0 + k] = _mm512_shuffle_i32x4(b0, b2, 0x88);  /* lane 0 of a0..a3 */
        r[4 + k] = _mm512_shuffle_i32x4(b0, b2, 0xDD);  /* lane 1 */
        r[8 + k] = _mm512_shuffle_i32x4(b1, b3, 0x88);  /* lane 2 */
        r[12 + k] = _mm512_shuffle_i32x4(b1, b3, 0xDD); /* lane 3 */
    }
}

static void hash16(const uint8_t *const *in, size_t blocks, const uint32_t key[8],
                   uint64_t counter, bool inc, uint8_t flags, uint8_t flags_start,
                   uint8_t flags_end, uint8_t *out)
{
    V h[16], m[16], v[16];
    for (int i = 0; i < 8; i++)
        h[i] = set1(key[i]);
    uint32_t lo[16], hi[16];
    for (int i = 0; i < 16; i++) {
        uint64_t c = counter + (inc ? (uint64_t)i : 0);
        lo[i] = (uint32_t)c;
        hi[i] = (uint32_t)(c >> 32);
    }
    V clo = _mm512_loadu_si512(lo), chi = _mm512_loadu_si512(hi);
    for (size_t b = 0; b < blocks; b++) {
        uint8_t f = flags;
        if (b == 0)
            f |= flags_start;
        if (b + 1 == blocks)
            f |= flags_end;
        for (int i = 0; i < 16; i++)
            m[i] = _mm512_loadu_si512(in[i] + 64 * b);
        /* Lanes read 16 streams 1 KiB apart; hint each a few blocks ahead
         * so the hardware prefetcher's stream limit is not what we wait on. */
        for (int i = 0; i < 16; i++)
            _mm_prefetch((const char *)(in[i] + 64 * b + 256), _MM_HINT_T0);
        transpose16(m);
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
    for (int i = 8; i < 16; i++)
        h[i] = _mm512_setzero_si512();
    transpose16(h);
    for (int i = 0; i < 16; i++)
        _mm256_storeu_si256((__m256i *)(out + 32 * i), _mm512_castsi512_si256(h[i]));
}

void irohds_blake3_hash_many_avx512(const uint8_t *const *inputs, size_t num_inputs,
                                    size_t blocks, const uint32_t key[8], uint64_t counter,
                                    bool increment_counter, uint8_t flags,
                                    uint8_t flags_start, uint8_t flags_end, uint8_t *out)
{
    while (num_inputs >= 16) {
        hash16(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end,
               out);
        if (increment_counter)
            counter += 16;
        inputs += 16;
        num_inputs -= 16;
        out += 16 * 32;
    }
    irohds_blake3_hash_many_avx2(inputs, num_inputs, blocks, key, counter, increment_counter,
                                 flags, flags_start, flags_end, out);
}
