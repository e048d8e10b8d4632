/*
 * dht/nodeid.c: node ids: the XOR metric, and BEP 42, which ties an id to
 * the node's external ip so that nobody can park eight nodes next to an
 * info-hash of their choosing.
 *
 * BEP 42: the first 21 bits of the id are the first 21 bits of
 * CRC32C((ip & mask) | r << 29) (IPv4; IPv6 hashes the high 64 bits with
 * its own mask and r << 61), r the low 3 bits of the id's last byte.  The
 * BEP's sample code (and its vectors, and libtorrent) hash 4 bytes for IPv4
 * and 8 for IPv6: so do we.  Local addresses are exempt, as in the BEP and
 * libtorrent: the check says "fine" for them.
 */
#include <string.h>

#include "dht/dht_int.h"

unsigned dht_id_cpl(const uint8_t *a, const uint8_t *b)
{
    for (unsigned i = 0; i < IROHDS_DHT_ID_LEN; i++) {
        uint8_t x = a[i] ^ b[i];
        if (x) {
            unsigned n = 0;
            while (!(x & 0x80))
                x <<= 1, n++;
            return i * 8 + n;
        }
    }
    return 160;
}

int dht_id_closer(const uint8_t *target, const uint8_t *a, const uint8_t *b)
{
    for (unsigned i = 0; i < IROHDS_DHT_ID_LEN; i++) {
        uint8_t da = a[i] ^ target[i], db = b[i] ^ target[i];
        if (da != db)
            return da < db ? -1 : 1;
    }
    return 0;
}

bool dht_id_eq(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, IROHDS_DHT_ID_LEN) == 0;
}

bool irohds_dht_ip_is_local(sa_family_t family, const uint8_t *ip)
{
    if (family == AF_INET) {
        return ip[0] == 10 || ip[0] == 127 || (ip[0] == 172 && (ip[1] & 0xf0) == 16) ||
               (ip[0] == 192 && ip[1] == 168) || (ip[0] == 169 && ip[1] == 254);
    }
    static const uint8_t loop6[16] = {[15] = 1};
    return memcmp(ip, loop6, 16) == 0 || (ip[0] == 0xfe && (ip[1] & 0xc0) == 0x80) /* fe80::/10 */
           || (ip[0] & 0xfe) == 0xfc;                                              /* fc00::/7 */
}

static uint32_t bep42_crc(sa_family_t family, const uint8_t *ip, uint8_t r)
{
    static const uint8_t v4_mask[4] = {0x03, 0x0f, 0x3f, 0xff};
    static const uint8_t v6_mask[8] = {0x01, 0x03, 0x07, 0x0f, 0x1f, 0x3f, 0x7f, 0xff};
    const uint8_t *mask = family == AF_INET ? v4_mask : v6_mask;
    size_t n = family == AF_INET ? 4 : 8;
    uint8_t b[8];
    for (size_t i = 0; i < n; i++)
        b[i] = ip[i] & mask[i];
    b[0] |= (uint8_t)((r & 7) << 5);
    return irohds_dht_crc32c(b, n);
}

void irohds_dht_id_from_ip(uint8_t id[IROHDS_DHT_ID_LEN], sa_family_t family, const uint8_t *ip,
                           uint8_t rand, const uint8_t random[IROHDS_DHT_ID_LEN])
{
    uint32_t crc = bep42_crc(family, ip, rand & 7);
    memcpy(id, random, IROHDS_DHT_ID_LEN);
    id[0] = (uint8_t)(crc >> 24);
    id[1] = (uint8_t)(crc >> 16);
    id[2] = (uint8_t)(((crc >> 8) & 0xf8) | (random[2] & 7));
    id[19] = rand;
}

bool irohds_dht_id_matches_ip(const uint8_t id[IROHDS_DHT_ID_LEN], sa_family_t family,
                              const uint8_t *ip)
{
    uint32_t crc = bep42_crc(family, ip, id[19] & 7);
    return id[0] == (uint8_t)(crc >> 24) && id[1] == (uint8_t)(crc >> 16) &&
           (id[2] & 0xf8) == ((crc >> 8) & 0xf8);
}

bool dht_id_ok(const uint8_t *id, const irohds_dht_addr *a)
{
    return irohds_dht_ip_is_local(a->family, a->ip) || irohds_dht_id_matches_ip(id, a->family, a->ip);
}

bool dht_addr_usable(const irohds_dht_addr *a)
{
    if (a->port == 0)
        return false;
    if (a->family == AF_INET)
        return a->ip[0] != 0 && a->ip[0] < 224; /* not 0/8, multicast or class E */
    static const uint8_t zero[16];
    return a->family == AF_INET6 && a->ip[0] != 0xff && memcmp(a->ip, zero, 16) != 0;
}
