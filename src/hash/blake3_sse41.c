/*
 * hash/blake3_sse41.c: hash_many over 4 lanes with SSE4.1 intrinsics.
 *
 * Each 128-bit register holds one state word of 4 independent inputs, so
 * the G function runs unchanged on 4 chunks (or 4 parents) at once.  The
 * message is brought into that word-per-register layout with 4x4 transposes
 * of the blocks as loaded; the CVs are transposed back for the output.
 * Rotations by 16 and 8 are byte shuffles (cheaper than two shifts and an or).
 * Compiled with -msse4.1; only called after CPUID says it is safe.
 */
#include <immintrin.h>

#include "hash/blake3_impl.h"

typedef __m128i V;

static inline V add(V a, V b) { return _mm_add_epi32(a, b); }
static inline V xor(V a, V b) { return _mm_xor_si128(a, b); }
static inline V set1(uint32_t x) { return _mm_set1_epi32((int)x); }

static inline V rot16(V x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi8(13, 12, 15, 14, 9, 8, 11, 10, 5, 4, 7, 6, 1, 0, 3, 2));
}
static inline V rot12(V x) { return _mm_or_si128(_mm_srli_epi32(x, 12), _mm_slli_epi32(x, 20)); }
static inline V rot8(V x)
{
    return _mm_shuffle_epi8(x, _mm_set_epi8(12, 15, 14, 13, 8, 11, 10, 9, 4, 7, 6, 5, 0, 3, 2, 1));
}
static inline V rot7(V x) { return _mm_or_si128(_mm_srli_epi32(x, 7), _mm_slli_epi32(x, 25)); }

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

/* r[i] holds words 0..3 of row i; afterwards r[j] holds word j of rows 0..3. */
static inline void transpose4(V r[4])
{
    V t0 = _mm_unpacklo_epi32(r[0], r[1]), t1 = _mm_unpackhi_epi32(r[0], r[1]);
    V t2 = _mm_unpacklo_epi32(r[2], r[3]), t3 = _mm_unpackhi_epi32(r[2], r[3]);
    r[0] = _mm_unpacklo_epi64(t0, t2);
    r[1] = _mm_unpackhi_epi64(t0, t2);
    r[2] = _mm_unpacklo_epi64(t1, t3);
    r[3] = _mm_unpackhi_epi64(t1, t3);
}

static inline void load_msg(const uint8_t *const *in, size_t off, V m[16])
{
    for (int q = 0; q < 4; q++) {
        V *r = m + 4 * q;
        for (int i = 0; i < 4; i++)
            r[i] = _mm_loadu_si128((const V *)(in[i] + off + 16 * q));
        transpose4(r);
    }
}

static void hash4(const uint8_t *const *in, size_t blocks, const uint32_t key[8],
                  uint64_t counter, bool inc, uint8_t flags, uint8_t flags_start,
                  uint8_t flags_end, uint8_t *out)
{
    V h[8], m[16], v[16];
    for (int i = 0; i < 8; i++)
        h[i] = set1(key[i]);
    uint32_t lo[4], hi[4];
    for (int i = 0; i < 4; i++) {
        uint64_t c = counter + (inc ? (uint64_t)i : 0);
        lo[i] = (uint32_t)c;
        hi[i] = (uint32_t)(c >> 32);
    }
    V clo = _mm_loadu_si128((const V *)lo), chi = _mm_loadu_si128((const V *)hi);
    for (size_t b = 0; b < blocks; b++) {
        uint8_t f = flags;
        if (b == 0)
            f |= flags_start;
        if (b + 1 == blocks)
            f |= flags_end;
        load_msg(in, 64 * b, m);
        /* Lanes read 4 streams 1 KiB apart; hint each a few blocks ahead
         * so the hardware prefetcher's stream limit is not what we wait on. */
        for (int i = 0; i < 4; i++)
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
    transpose4(h);
    transpose4(h + 4);
    for (int i = 0; i < 4; i++) {
        _mm_storeu_si128((V *)(out + 32 * i), h[i]);
        _mm_storeu_si128((V *)(out + 32 * i + 16), h[4 + i]);
    }
}

void irohds_blake3_hash_many_sse41(const uint8_t *const *inputs, size_t num_inputs,
                                   size_t blocks, const uint32_t key[8], uint64_t counter,
                                   bool increment_counter, uint8_t flags, uint8_t flags_start,
                                   uint8_t flags_end, uint8_t *out)
{
    while (num_inputs >= 4) {
        hash4(inputs, blocks, key, counter, increment_counter, flags, flags_start, flags_end,
              out);
        if (increment_counter)
            counter += 4;
        inputs += 4;
        num_inputs -= 4;
        out += 4 * 32;
    }
    irohds_blake3_hash_many_portable(inputs, num_inputs, blocks, key, counter,
                                     increment_counter, flags, flags_start, flags_end, out);
}
