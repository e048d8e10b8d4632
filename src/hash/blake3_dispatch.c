/*
 * hash/blake3_dispatch.c: choose the hash_many implementation at run time.
 *
 * The SIMD files are compiled with -msse4.1 / -mavx2 / -mavx512f, so calling
 * one on a CPU without the feature would fault: CPUID says what the CPU has,
 * and XGETBV says whether the OS saves the wide registers on context switch
 * (AVX needs the YMM state enabled, AVX-512 also the opmask and ZMM states).
 * The choice is made once; tests and benchmarks may force a narrower one.
 * It is a relaxed atomic so a concurrent set_impl is not a data race; any
 * implementation gives the same bytes, so the ordering does not matter.
 */
#include <errno.h>
#include <stdatomic.h>

#include "hash/blake3_impl.h"

#if defined(IROHDS_B3_X86)
#include <cpuid.h>

static uint64_t xgetbv0(void)
{
    uint32_t lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((uint64_t)hi << 32) | lo;
}

static irohds_blake3_impl detect(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return IROHDS_BLAKE3_PORTABLE;
    bool sse41 = c & (1u << 19);
    bool osxsave = c & (1u << 27);
    bool avx = c & (1u << 28);
    irohds_blake3_impl best = sse41 ? IROHDS_BLAKE3_SSE41 : IROHDS_BLAKE3_PORTABLE;
    if (!(osxsave && avx))
        return best;
    uint64_t xcr0 = xgetbv0();
    if ((xcr0 & 0x6) != 0x6) /* SSE and AVX state */
        return best;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return best;
    if (b & (1u << 5))
        best = IROHDS_BLAKE3_AVX2;
    else
        return best;
    bool avx512f = b & (1u << 16), avx512vl = b & (1u << 31);
    if (avx512f && avx512vl && (xcr0 & 0xE6) == 0xE6) /* + opmask, ZMM_Hi256, Hi16_ZMM */
        best = IROHDS_BLAKE3_AVX512;
    return best;
}
#else
static irohds_blake3_impl detect(void)
{
    return IROHDS_BLAKE3_PORTABLE;
}
#endif

/* -1 = not decided yet. */
static atomic_int best_impl = -1;
static atomic_int cur_impl = -1;

irohds_blake3_impl irohds_blake3_best_impl(void)
{
    int b = atomic_load_explicit(&best_impl, memory_order_relaxed);
    if (b < 0) {
        b = (int)detect();
        atomic_store_explicit(&best_impl, b, memory_order_relaxed);
    }
    return (irohds_blake3_impl)b;
}

irohds_blake3_impl irohds_blake3_get_impl(void)
{
    int c = atomic_load_explicit(&cur_impl, memory_order_relaxed);
    if (c < 0) {
        c = (int)irohds_blake3_best_impl();
        atomic_store_explicit(&cur_impl, c, memory_order_relaxed);
    }
    return (irohds_blake3_impl)c;
}

int irohds_blake3_set_impl(irohds_blake3_impl impl)
{
    if ((int)impl < 0 || impl > irohds_blake3_best_impl())
        return -ENOTSUP;
    atomic_store_explicit(&cur_impl, (int)impl, memory_order_relaxed);
    return 0;
}

const char *irohds_blake3_impl_name(irohds_blake3_impl impl)
{
    switch (impl) {
    case IROHDS_BLAKE3_PORTABLE: return "portable";
    case IROHDS_BLAKE3_SSE41: return "sse41";
    case IROHDS_BLAKE3_AVX2: return "avx2";
    case IROHDS_BLAKE3_AVX512: return "avx512";
    }
    return "unknown";
}

size_t irohds_blake3_simd_degree(void)
{
    switch (irohds_blake3_get_impl()) {
    case IROHDS_BLAKE3_SSE41: return 4;
    case IROHDS_BLAKE3_AVX2: return 8;
    case IROHDS_BLAKE3_AVX512: return 16;
    default: return 1;
    }
}

void irohds_blake3_hash_many(const uint8_t *const *inputs, size_t num_inputs, size_t blocks,
                             const uint32_t key[8], uint64_t counter, bool increment_counter,
                             uint8_t flags, uint8_t flags_start, uint8_t flags_end,
                             uint8_t *out)
{
    irohds_blake3_hash_many_fn *fn = irohds_blake3_hash_many_portable;
#if defined(IROHDS_B3_X86)
    switch (irohds_blake3_get_impl()) {
    case IROHDS_BLAKE3_SSE41: fn = irohds_blake3_hash_many_sse41; break;
    case IROHDS_BLAKE3_AVX2: fn = irohds_blake3_hash_many_avx2; break;
    case IROHDS_BLAKE3_AVX512: fn = irohds_blake3_hash_many_avx512; break;
    default: break;
    }
#endif
    fn(inputs, num_inputs, blocks, key, counter, increment_counter, flags, flags_start,
       flags_end, out);
}
