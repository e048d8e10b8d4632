/*
 * pkarr.c: pkarr signed packets and iroh's `_iroh` TXT records in them.
 *
 * A signed packet is <32 key><64 sig><8 BE timestamp µs><DNS packet>; the
 * signature covers the BEP 44 encoding "3:seqi<ts>e1:v<len>:<dns>", so the
 * same bytes are a BEP 44 mutable item with seq = timestamp, v = the DNS
 * packet and no salt.  That is how iroh publishes to the mainline DHT and
 * to pkarr relays; docs/discovery-records.md has the layout byte by byte.
 *
 * Inside, iroh writes one TXT record per attribute, all named
 * _iroh.<z32 key> (pkarr names are relative to the key), TTL 30 s:
 * relay=<url> first, then addr=<ip:port> per address.  Reading is lenient
 * where iroh would be strict (iroh refuses a record set with an unknown
 * key; we skip the key) and accepts the space-separated addr list iroh's
 * docs describe besides the one-address-per-record form its code writes.
 *
 * The secret key is libsodium's 64-byte form (seed || public key).
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "dns/dns.h"

void irohds_pkarr_z32_encode(const uint8_t key[IROHDS_PKARR_KEY_LEN], char out[53])
{
    irohds_dns_b32_encode(IROHDS_B32_Z, key, IROHDS_PKARR_KEY_LEN, out, 53);
}

int irohds_pkarr_z32_decode(const char *text, size_t n, uint8_t key[IROHDS_PKARR_KEY_LEN])
{
    if (n != IROHDS_PKARR_Z32_LEN ||
        irohds_dns_b32_decode(IROHDS_B32_Z, text, n, key, IROHDS_PKARR_KEY_LEN) !=
            IROHDS_PKARR_KEY_LEN)
        return -EINVAL;
    return crypto_core_ed25519_is_valid_point(key) ? 0 : -EINVAL;
}

int irohds_pkarr_signable(uint64_t ts_us, const uint8_t *v, size_t vlen, uint8_t *out, size_t cap)
{
    char head[64];
    int h = snprintf(head, sizeof head, "3:seqi%llue1:v%zu:", (unsigned long long)ts_us, vlen);
    if (h < 0 || (size_t)h + vlen > cap || (size_t)h + vlen > INT_MAX)
        return -ENOBUFS;
    memcpy(out, head, (size_t)h);
    if (vlen)
        memcpy(out + h, v, vlen);
    return h + (int)vlen;
}

int irohds_pkarr_normalize_name(const char *origin, const char *name, char *out, size_t cap)
{
    size_t n = strlen(name), o = strlen(origin);
    if (n > 0 && name[n - 1] == '.')
        n--;
    const char *last = name + n;
    while (last > name && last[-1] != '.')
        last--;
    size_t lastlen = (size_t)(name + n - last);
    int k;
    if (lastlen == o && memcmp(last, origin, o) == 0)
        k = snprintf(out, cap, "%.*s", (int)n, name);
    else if (lastlen == 0 || (lastlen == 1 && *last == '@'))
        k = snprintf(out, cap, "%s", origin);
    else
        k = snprintf(out, cap, "%.*s.%s", (int)n, name, origin);
    return k < 0 || (size_t)k >= cap ? -ENOBUFS : k;
}

/* --------------------------------------------------------- the packet */

static void put_be64(uint8_t *p, uint64_t v)
{
    for (int i = 7; i >= 0; i--, v >>= 8)
        p[i] = (uint8_t)v;
}

static uint64_t get_be64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v = v << 8 | p[i];
    return v;
}

int irohds_pkarr_sign(const uint8_t sk[IROHDS_PKARR_SK_LEN], uint64_t ts_us, const uint8_t *dns,
                      size_t dns_len, uint8_t *out, size_t cap, size_t *len)
{
    uint8_t signable[64 + IROHDS_PKARR_DNS_MAX];
    if (dns_len > IROHDS_PKARR_DNS_MAX)
        return -EMSGSIZE;
    if (ts_us > INT64_MAX)
        return -EINVAL;
    if (cap < IROHDS_PKARR_HEADER_LEN + dns_len)
        return -ENOBUFS;
    int s = irohds_pkarr_signable(ts_us, dns, dns_len, signable, sizeof signable);
    memcpy(out, sk + 32, IROHDS_PKARR_KEY_LEN);
    crypto_sign_detached(out + 32, NULL, signable, (size_t)s, sk);
    put_be64(out + 96, ts_us);
    if (dns_len)
        memcpy(out + IROHDS_PKARR_HEADER_LEN, dns, dns_len);
    *len = IROHDS_PKARR_HEADER_LEN + dns_len;
    return 0;
}

int irohds_pkarr_verify(irohds_pkarr_packet *p, const uint8_t *pkt, size_t len)
{
    uint8_t signable[64 + IROHDS_PKARR_DNS_MAX];
    if (len < IROHDS_PKARR_HEADER_LEN)
        return -EPROTO;
    if (len > IROHDS_PKARR_MAX)
        return -EMSGSIZE;
    memcpy(p->key, pkt, IROHDS_PKARR_KEY_LEN);
    memcpy(p->sig, pkt + 32, IROHDS_PKARR_SIG_LEN);
    p->ts_us = get_be64(pkt + 96);
    p->dns = pkt + IROHDS_PKARR_HEADER_LEN;
    p->dns_len = len - IROHDS_PKARR_HEADER_LEN;
    if (!crypto_core_ed25519_is_valid_point(p->key))
        return -EINVAL;
    int s = irohds_pkarr_signable(p->ts_us, p->dns, p->dns_len, signable, sizeof signable);
    if (crypto_sign_verify_detached(p->sig, signable, (size_t)s, p->key) != 0)
        return -EBADMSG;
    return 0;
}

int irohds_pkarr_open(irohds_pkarr_packet *p, const uint8_t *pkt, size_t len)
{
    int rc = irohds_pkarr_verify(p, pkt, len);
    return rc ? rc : irohds_dns_check(p->dns, p->dns_len);
}

bool irohds_pkarr_more_recent(const irohds_pkarr_packet *a, const irohds_pkarr_packet *b)
{
    if (a->ts_us != b->ts_us)
        return a->ts_us > b->ts_us;
    size_t n = a->dns_len < b->dns_len ? a->dns_len : b->dns_len;
    int c = n ? memcmp(a->dns, b->dns, n) : 0;
    return c != 0 ? c > 0 : a->dns_len > b->dns_len;
}

int irohds_pkarr_to_bep44(const uint8_t *pkt, size_t len, irohds_pkarr_bep44 *out)
{
    irohds_pkarr_packet p;
    int rc = irohds_pkarr_verify(&p, pkt, len);
    if (rc)
        return rc;
    if (p.ts_us > INT64_MAX)
        return -EPROTO;
    out->k = pkt;
    out->sig = pkt + 32;
    out->seq = (int64_t)p.ts_us;
    out->v = p.dns;
    out->v_len = p.dns_len;
    return 0;
}

int irohds_pkarr_from_bep44(const irohds_pkarr_bep44 *in, uint8_t *out, size_t cap, size_t *len)
{
    if (in->seq < 0)
        return -EPROTO;
    if (in->v_len > IROHDS_PKARR_DNS_MAX)
        return -EMSGSIZE;
    if (cap < IROHDS_PKARR_HEADER_LEN + in->v_len)
        return -ENOBUFS;
    memcpy(out, in->k, IROHDS_PKARR_KEY_LEN);
    memcpy(out + 32, in->sig, IROHDS_PKARR_SIG_LEN);
    put_be64(out + 96, (uint64_t)in->seq);
    if (in->v_len)
        memcpy(out + IROHDS_PKARR_HEADER_LEN, in->v, in->v_len);
    irohds_pkarr_packet p;
    int rc = irohds_pkarr_open(&p, out, IROHDS_PKARR_HEADER_LEN + in->v_len);
    if (rc == 0)
        *len = IROHDS_PKARR_HEADER_LEN + in->v_len;
    return rc;
}

/* ------------------------------------------------------ iroh's records */

/* _iroh.<z32 key>[.origin] */
static int iroh_name(const uint8_t key[32], const char *origin, irohds_dns_name *n)
{
    char z32[53], text[IROHDS_DNS_NAME_MAX + 64];
    irohds_pkarr_z32_encode(key, z32);
    if (origin && *origin)
        snprintf(text, sizeof text, "_iroh.%s.%s", z32, origin);
    else
        snprintf(text, sizeof text, "_iroh.%s", z32);
    return irohds_dns_name_from_text(n, text);
}

static void add_txt(irohds_dns_writer *w, const irohds_dns_name *name, uint32_t ttl,
                    const char *key, const char *value, size_t vlen)
{
    uint8_t s[256], rdata[256];
    size_t klen = strlen(key), rdlen = 0;
    if (klen + 1 + vlen > 255) {
        w->err = w->err ? w->err : -EMSGSIZE;
        return;
    }
    memcpy(s, key, klen);
    s[klen] = '=';
    memcpy(s + klen + 1, value, vlen);
    irohds_dns_txt_append(rdata, sizeof rdata, &rdlen, s, klen + 1 + vlen);
    irohds_dns_rr rr = {.name = *name, .type = IROHDS_DNS_TXT, .rclass = IROHDS_DNS_CLASS_IN,
                        .ttl = ttl, .rdata = rdata, .rdlen = (uint16_t)rdlen};
    irohds_dns_write_rr(w, IROHDS_DNS_ANSWER, &rr);
}

int irohds_pkarr_build(const uint8_t sk[IROHDS_PKARR_SK_LEN], uint64_t ts_us,
                       const irohds_pkarr_info *info, uint32_t ttl, uint8_t *out, size_t cap,
                       size_t *len)
{
    uint8_t dns[IROHDS_PKARR_DNS_MAX + 256];
    irohds_dns_name name;
    irohds_dns_writer w;
    if (info->n_addrs > IROHDS_PKARR_ADDRS_MAX || iroh_name(sk + 32, NULL, &name) != 0)
        return -EINVAL;
    irohds_dns_writer_init(&w, dns, sizeof dns, 0, IROHDS_DNS_QR);
    if (info->relay[0])
        add_txt(&w, &name, ttl, "relay", info->relay, strnlen(info->relay, sizeof info->relay));
    for (size_t i = 0; i < info->n_addrs; i++) {
        char a[IROHDS_DNS_ADDR_TEXT_MAX];
        int n = irohds_dns_addr_format(&info->addrs[i], a, sizeof a);
        if (n < 0)
            return -EINVAL;
        add_txt(&w, &name, ttl, "addr", a, (size_t)n);
    }
    size_t dns_len;
    int rc = irohds_dns_writer_finish(&w, &dns_len);
    if (rc == -ENOBUFS)
        rc = -EMSGSIZE;
    return rc ? rc : irohds_pkarr_sign(sk, ts_us, dns, dns_len, out, cap, len);
}

/* One addr= value: one or more socket addresses separated by spaces. */
static void take_addrs(irohds_pkarr_info *info, const char *v, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t j = i;
        while (j < n && v[j] != ' ')
            j++;
        irohds_dns_addr a;
        if (j > i && info->n_addrs < IROHDS_PKARR_ADDRS_MAX &&
            irohds_dns_addr_parse(&a, v + i, j - i) == 0)
            info->addrs[info->n_addrs++] = a;
        i = j + 1;
    }
}

static void take_attr(irohds_pkarr_info *info, const char *s, size_t n)
{
    const char *eq = memchr(s, '=', n);
    if (!eq)
        return;
    size_t klen = (size_t)(eq - s), vlen = n - klen - 1;
    if (klen == 5 && memcmp(s, "relay", 5) == 0) {
        if (!info->relay[0] && vlen <= IROHDS_PKARR_RELAY_MAX) {
            memcpy(info->relay, eq + 1, vlen);
            info->relay[vlen] = '\0';
        }
    } else if (klen == 4 && memcmp(s, "addr", 4) == 0) {
        take_addrs(info, eq + 1, vlen);
    }
}

/* A TXT record's strings joined into one attribute (iroh reads it so);
 * longer than any attribute we take, it is skipped. */
static void take_record(irohds_pkarr_info *info, const irohds_dns_rr *rr)
{
    char attr[1024];
    size_t pos = 0, n = 0, slen;
    const uint8_t *s;
    while (irohds_dns_txt_next(rr, &pos, &s, &slen) == 1) {
        if (n + slen > sizeof attr)
            return;
        memcpy(attr + n, s, slen);
        n += slen;
    }
    take_attr(info, attr, n);
}

int irohds_pkarr_info_from_dns(const uint8_t *dns, size_t len, const uint8_t id[32],
                               const char *origin, irohds_pkarr_info *info)
{
    irohds_dns_name want;
    irohds_dns_reader r;
    irohds_dns_rr rr;
    memset(info, 0, sizeof *info);
    if (iroh_name(id, origin, &want) != 0)
        return -EINVAL;
    int rc = irohds_dns_reader_init(&r, dns, len);
    while (rc == 0 && (rc = irohds_dns_read_rr(&r, &rr)) == 1) {
        rc = 0;
        if (rr.type == IROHDS_DNS_TXT && rr.rclass == IROHDS_DNS_CLASS_IN &&
            irohds_dns_name_eq(&rr.name, &want))
            take_record(info, &rr);
    }
    return rc;
}

int irohds_pkarr_info_from_packet(const irohds_pkarr_packet *p, irohds_pkarr_info *info)
{
    return irohds_pkarr_info_from_dns(p->dns, p->dns_len, p->key, NULL, info);
}
