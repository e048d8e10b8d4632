/*
 * fuzz_dns: the DNS reader, writer, base32 and pkarr on arbitrary bytes.
 *
 * Whatever the input: no read past it (ASan), no undefined behaviour
 * (UBSan), no hang (pointer chains).  A message that checks out is written
 * again by our writer and must read back as the same questions and records
 * (names equal ignoring case, decoded rdata equal).  The same bytes are
 * tried as base32 text in each alphabet (what decodes must encode back to
 * the same text, ignoring case), as a pkarr packet (one that verifies, a
 * signed seed, must not verify with a bit flipped), and, when they are a
 * DNS message of at most 1000
 * bytes, signed with a fixed key: that packet must open and its iroh
 * records must read.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "dns/dns.h"

static uint8_t sk[64], pk[32];

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    uint8_t seed[32] = {7};
    if (sodium_init() < 0)
        return 1;
    crypto_sign_seed_keypair(pk, sk, seed);
    return 0;
}

static bool rr_same(const irohds_dns_rr *a, const irohds_dns_rr *b)
{
    if (!irohds_dns_name_eq(&a->name, &b->name) || a->type != b->type ||
        a->rclass != b->rclass || a->cache_flush != b->cache_flush || a->ttl != b->ttl ||
        a->section != b->section)
        return false;
    switch (a->type) {
    case IROHDS_DNS_A:
        return memcmp(a->u.a, b->u.a, 4) == 0;
    case IROHDS_DNS_AAAA:
        return memcmp(a->u.aaaa, b->u.aaaa, 16) == 0;
    case IROHDS_DNS_PTR:
        return irohds_dns_name_eq(&a->u.ptr, &b->u.ptr);
    case IROHDS_DNS_SRV:
        return a->u.srv.priority == b->u.srv.priority && a->u.srv.weight == b->u.srv.weight &&
               a->u.srv.port == b->u.srv.port &&
               irohds_dns_name_eq(&a->u.srv.target, &b->u.srv.target);
    default:
        return a->rdlen == b->rdlen && memcmp(a->rdata, b->rdata, a->rdlen) == 0;
    }
}

/* Read msg, write it again, read both side by side. */
static void round_trip(const uint8_t *msg, size_t len)
{
    static uint8_t out[1 << 20];
    irohds_dns_reader r, r2;
    irohds_dns_writer w;
    irohds_dns_question q, q2;
    irohds_dns_rr rr, rr2;
    irohds_dns_reader_init(&r, msg, len);
    irohds_dns_writer_init(&w, out, sizeof out, r.id, r.flags);
    while (irohds_dns_read_question(&r, &q) == 1)
        irohds_dns_write_question(&w, &q.name, q.type,
                                  (uint16_t)(q.qclass | (q.qu ? IROHDS_DNS_QU : 0)));
    while (irohds_dns_read_rr(&r, &rr) == 1)
        irohds_dns_write_rr(&w, rr.section, &rr);
    size_t olen;
    if (irohds_dns_writer_finish(&w, &olen) != 0 || irohds_dns_check(out, olen) != 0)
        __builtin_trap();
    irohds_dns_reader_init(&r, msg, len);
    irohds_dns_reader_init(&r2, out, olen);
    if (memcmp(r.count, r2.count, sizeof r.count) != 0 || r.id != r2.id || r.flags != r2.flags)
        __builtin_trap();
    while (irohds_dns_read_question(&r, &q) == 1) {
        if (irohds_dns_read_question(&r2, &q2) != 1 || !irohds_dns_name_eq(&q.name, &q2.name) ||
            q.type != q2.type || q.qclass != q2.qclass || q.qu != q2.qu)
            __builtin_trap();
    }
    while (irohds_dns_read_rr(&r, &rr) == 1)
        if (irohds_dns_read_rr(&r2, &rr2) != 1 || !rr_same(&rr, &rr2))
            __builtin_trap();
    if (irohds_dns_read_rr(&r2, &rr2) != 0)
        __builtin_trap();
}

static void names(const uint8_t *msg, size_t len)
{
    irohds_dns_reader r;
    irohds_dns_rr rr;
    char text[1100];
    irohds_dns_reader_init(&r, msg, len);
    while (irohds_dns_read_rr(&r, &rr) == 1) {
        irohds_dns_name back;
        /* text and back is the same name */
        if (irohds_dns_name_to_text(&rr.name, text, sizeof text) < 0 ||
            irohds_dns_name_from_text(&back, text) != 0 || !irohds_dns_name_eq(&back, &rr.name))
            __builtin_trap();
        if (rr.type == IROHDS_DNS_TXT) {
            size_t pos = 0, sl;
            const uint8_t *s;
            int rc;
            while ((rc = irohds_dns_txt_next(&rr, &pos, &s, &sl)) == 1)
                ;
            if (rc != 0)
                __builtin_trap();
        }
    }
}

static void base32(const uint8_t *data, size_t size)
{
    uint8_t bytes[4096];
    char text[8192];
    if (size > 4096)
        return;
    for (int a = IROHDS_B32_RFC4648; a <= IROHDS_B32_Z; a++) {
        int n = irohds_dns_b32_decode((enum irohds_dns_b32)a, (const char *)data, size, bytes,
                                      sizeof bytes);
        if (n < 0)
            continue;
        int t = irohds_dns_b32_encode((enum irohds_dns_b32)a, bytes, (size_t)n, text, sizeof text);
        if (t != (int)size)
            __builtin_trap();
        for (size_t i = 0; i < size; i++) {
            char c = (char)data[i];
            if ((c >= 'A' && c <= 'Z' ? c + 32 : c) != text[i])
                __builtin_trap();
        }
    }
}

static void pkarr(const uint8_t *data, size_t size)
{
    irohds_pkarr_packet p;
    irohds_pkarr_info info;
    uint8_t pkt[IROHDS_PKARR_MAX];
    size_t len;
    /* what verifies (a signed seed) stops verifying with any bit flipped */
    if (size >= 104 && size <= IROHDS_PKARR_MAX && irohds_pkarr_verify(&p, data, size) == 0) {
        memcpy(pkt, data, size);
        size_t at = (size_t)data[size - 1] * 7919 % size;
        pkt[at] ^= (uint8_t)(1u << (data[0] & 7));
        if (irohds_pkarr_verify(&p, pkt, size) == 0)
            __builtin_trap();
    }
    irohds_pkarr_info_from_dns(data, size, pk, NULL, &info);
    irohds_pkarr_info_from_dns(data, size, pk, "dns.iroh.link", &info);
    if (size > IROHDS_PKARR_DNS_MAX || irohds_dns_check(data, size) != 0)
        return;
    if (irohds_pkarr_sign(sk, size, data, size, pkt, sizeof pkt, &len) != 0 ||
        irohds_pkarr_open(&p, pkt, len) != 0 || irohds_pkarr_info_from_packet(&p, &info) != 0)
        __builtin_trap();
    for (size_t i = 0; i < info.n_addrs; i++) {
        char t[IROHDS_DNS_ADDR_TEXT_MAX];
        irohds_dns_addr back;
        int n = irohds_dns_addr_format(&info.addrs[i], t, sizeof t);
        if (n < 0 || irohds_dns_addr_parse(&back, t, (size_t)n) != 0 ||
            !irohds_dns_addr_eq(&back, &info.addrs[i]))
            __builtin_trap();
    }
}

static void text_forms(const uint8_t *data, size_t size)
{
    char s[512];
    irohds_dns_addr a;
    irohds_dns_name n;
    if (size >= sizeof s)
        return;
    memcpy(s, data, size);
    s[size] = '\0';
    irohds_dns_addr_parse(&a, s, size);
    if (irohds_dns_name_from_text(&n, s) == 0 && (n.len == 0 || n.wire[n.len - 1] != 0))
        __builtin_trap();
    char out[600];
    irohds_pkarr_normalize_name("ed4mn3aoazuf1ahpy9rz1nyswhukbj5483ryefwkue7fbp3egkzo", s, out,
                                sizeof out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (irohds_dns_check(data, size) == 0) {
        round_trip(data, size);
        names(data, size);
    }
    base32(data, size);
    pkarr(data, size);
    text_forms(data, size);
    return 0;
}
