/*
 * dht/sha1.c: SHA-1 (FIPS 180-4 §6.1) and CRC32C, the two hashes the DHT
 * needs.  SHA-1 names things (BEP 44 targets, our write tokens); CRC32C
 * ties node ids to ip addresses (BEP 42).
 *
 * Our own ~100 lines rather than GnuTLS: the DHT core stays free of any
 * library but libsodium, so a fuzz target compiles it alone, and the hashes
 * here see at most a few KiB per datagram, where speed does not matter.
 * SHA-1 is tested against the FIPS 180 examples, CRC32C against its check
 * value and the BEP 42 vectors.
 */
#include <string.h>

#include "dht/dht_int.h"

static uint32_t rol(uint32_t x, unsigned n)
{
    return (x << n) | (x >> (32 - n));
}

static uint32_t load_be32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* One 64-byte block (FIPS 180-4 §6.1.2). */
static void sha1_block(uint32_t h[5], const uint8_t *p)
{
    uint32_t w[80];
    for (int t = 0; t < 16; t++)
        w[t] = load_be32(p + 4 * t);
    for (int t = 16; t < 80; t++)
        w[t] = rol(w[t - 3] ^ w[t - 8] ^ w[t - 14] ^ w[t - 16], 1);
    uint32_t a = h[0], b = h[1], c = h[2], d = h[3], e = h[4];
    for (int t = 0; t < 80; t++) {
        uint32_t f, k;
        if (t < 20)
            f = (b & c) | (~b & d), k = 0x5a827999;
        else if (t < 40)
            f = b ^ c ^ d, k = 0x6ed9eba1;
        else if (t < 60)
            f = (b & c) | (b & d) | (c & d), k = 0x8f1bbcdc;
        else
            f = b ^ c ^ d, k = 0xca62c1d6;
        uint32_t tmp = rol(a, 5) + f + e + k + w[t];
        e = d, d = c, c = rol(b, 30), b = a, a = tmp;
    }
    h[0] += a, h[1] += b, h[2] += c, h[3] += d, h[4] += e;
}

void dht_sha1_init(dht_sha1_ctx *c)
{
    static const uint32_t h0[5] = {0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0};
    memcpy(c->h, h0, sizeof h0);
    c->total = 0;
    c->fill = 0;
}

void dht_sha1_update(dht_sha1_ctx *c, const void *data, size_t len)
{
    const uint8_t *p = data;
    c->total += len;
    if (c->fill) {
        size_t n = 64 - c->fill < len ? 64 - c->fill : len;
        memcpy(c->buf + c->fill, p, n);
        c->fill += n, p += n, len -= n;
        if (c->fill < 64)
            return;
        sha1_block(c->h, c->buf);
        c->fill = 0;
    }
    for (; len >= 64; p += 64, len -= 64)
        sha1_block(c->h, p);
    if (len)
        memcpy(c->buf, p, len);
    c->fill = len;
}

/* Padding (§5.1.1): 0x80, zeros, the bit length as a 64-bit big-endian. */
void dht_sha1_final(dht_sha1_ctx *c, uint8_t out[20])
{
    uint64_t bits = c->total * 8;
    uint8_t pad[72] = {0x80};
    size_t n = (c->fill < 56 ? 56 : 120) - c->fill;
    for (int i = 0; i < 8; i++)
        pad[n + i] = (uint8_t)(bits >> (56 - 8 * i));
    dht_sha1_update(c, pad, n + 8);
    for (int i = 0; i < 5; i++) {
        out[4 * i] = (uint8_t)(c->h[i] >> 24);
        out[4 * i + 1] = (uint8_t)(c->h[i] >> 16);
        out[4 * i + 2] = (uint8_t)(c->h[i] >> 8);
        out[4 * i + 3] = (uint8_t)c->h[i];
    }
}

void irohds_dht_sha1(const void *data, size_t len, uint8_t out[20])
{
    dht_sha1_ctx c;
    dht_sha1_init(&c);
    dht_sha1_update(&c, data, len);
    dht_sha1_final(&c, out);
}

/* CRC32C: reflected polynomial 0x82f63b78, initial and final xor ~0.  Bit
 * by bit: BEP 42 hashes 4 or 8 bytes, a table would be wasted. */
uint32_t irohds_dht_crc32c(const void *data, size_t len)
{
    const uint8_t *p = data;
    uint32_t crc = 0xffffffff;
    for (size_t i = 0; i < len; i++) {
        crc ^= p[i];
        for (int b = 0; b < 8; b++)
            crc = (crc >> 1) ^ (0x82f63b78 & (0u - (crc & 1)));
    }
    return ~crc;
}
