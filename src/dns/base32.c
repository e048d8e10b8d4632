/*
 * base32.c: RFC 4648 base32 and base32hex, and z-base-32, without padding.
 *
 * All three read the input as one big-endian bit string cut into 5-bit
 * groups; only the 32-symbol alphabet differs.  iroh names its mDNS
 * instances in base32 (lower case), its TLS server names in base32hex
 * ("BASE32_DNSSEC") and pkarr keys in z-base-32, all without padding.
 *
 * Decoding is strict so that each value has one text form: no padding, no
 * length that leaves a partial byte of 5 or more bits (len mod 8 of 1, 3
 * or 6), and the bits left over after the last whole byte must be zero.
 * Letters are accepted in either case.
 */
#include <errno.h>

#include "dns/dns.h"

static const char *const alphabets[] = {
    [IROHDS_B32_RFC4648] = "abcdefghijklmnopqrstuvwxyz234567",
    [IROHDS_B32_HEX] = "0123456789abcdefghijklmnopqrstuv",
    [IROHDS_B32_Z] = "ybndrfg8ejkmcpqxot1uwisza345h769",
};

size_t irohds_dns_b32_len(size_t n)
{
    return (n * 8 + 4) / 5;
}

int irohds_dns_b32_encode(enum irohds_dns_b32 alphabet, const uint8_t *in, size_t n, char *out,
                          size_t cap)
{
    const char *a = alphabets[alphabet];
    size_t len = irohds_dns_b32_len(n);
    if (len + 1 > cap)
        return -ENOBUFS;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        acc = acc << 8 | in[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[k++] = a[(acc >> bits) & 31];
        }
    }
    if (bits)
        out[k++] = a[(acc << (5 - bits)) & 31];
    out[k] = '\0';
    return (int)k;
}

static int symbol_value(const char *a, char c)
{
    if (c >= 'A' && c <= 'Z')
        c = (char)(c + 32);
    for (int v = 0; v < 32; v++)
        if (a[v] == c)
            return v;
    return -1;
}

int irohds_dns_b32_decode(enum irohds_dns_b32 alphabet, const char *in, size_t n, uint8_t *out,
                          size_t cap)
{
    const char *a = alphabets[alphabet];
    size_t r = n % 8;
    if (r == 1 || r == 3 || r == 6)
        return -EINVAL;
    if (n * 5 / 8 > cap)
        return -ENOBUFS;
    uint32_t acc = 0;
    unsigned bits = 0;
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int v = symbol_value(a, in[i]);
        if (v < 0)
            return -EINVAL;
        acc = acc << 5 | (uint32_t)v;
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out[k++] = (uint8_t)(acc >> bits);
        }
    }
    if (acc & ((1u << bits) - 1))
        return -EINVAL;
    return (int)k;
}
