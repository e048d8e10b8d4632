/*
 * records.c: the records we advertise and the packets that carry them.
 *
 * Everything we send is built fresh from the current state (id, port,
 * addresses, TXT) each time, so there is no cached packet to go stale.
 * The TXT record is the one piece prepared ahead, when the namespaces or
 * the relay change, because its size decides whether a change is accepted.
 *
 * No record carries the cache-flush bit, though RFC 6762 §10.2 asks for it
 * on unique records: swarm-discovery parses with hickory-proto without its
 * mDNS feature, where class 0x8001 is not IN and the record is dropped.
 */
#include <errno.h>
#include <string.h>

#include "mdns/mdns_int.h"

uint64_t mdns_random(irohds_mdns *m)
{
    /* splitmix64 */
    uint64_t z = (m->rng += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

int mdns_names_init(irohds_mdns *m)
{
    char b32[64];
    irohds_dns_name local;
    int n = irohds_dns_b32_encode(IROHDS_B32_RFC4648, m->id, 32, b32, sizeof b32);
    if (irohds_dns_name_from_text(&m->svc, "_irohv1._udp.local") != 0 ||
        irohds_dns_name_from_text(&m->enum_name, "_services._dns-sd._udp.local") != 0 ||
        irohds_dns_name_from_text(&local, "local") != 0 ||
        irohds_dns_name_prepend(&m->inst, b32, (size_t)n, &m->svc) != 0 ||
        irohds_dns_name_prepend(&m->host, b32, (size_t)n, &local) != 0)
        return -EINVAL;
    return 0;
}

/* ------------------------------------------------------------ the TXT */

/* One namespace name, ',' and '%' escaped; -EMSGSIZE past cap. */
static int ns_escape(const char *ns, char *out, size_t cap)
{
    size_t k = 0;
    for (const char *p = ns; *p; p++) {
        const char *e = *p == ',' ? "%2C" : *p == '%' ? "%25" : NULL;
        size_t n = e ? 3 : 1;
        if (k + n > cap)
            return -EMSGSIZE;
        memcpy(out + k, e ? e : p, n);
        k += n;
    }
    return (int)k;
}

/* Append the namespace strings: "ns=a,b", then "ns1=..." when full. */
static int txt_put_ns(uint8_t *rd, size_t cap, size_t *rdlen, const char *const *ns, size_t n_ns)
{
    static const char *const keys[NS_STRINGS] = {"ns=", "ns1=", "ns2=", "ns3="};
    char s[256];
    size_t k = 0;
    int key = -1;
    for (size_t i = 0; i < n_ns; i++) {
        char e[256];
        int el = ns_escape(ns[i], e, sizeof e);
        if (el < 0 || strlen(ns[i]) > IROHDS_MDNS_NS_LEN_MAX)
            return -EMSGSIZE;
        if (key >= 0 && k + 1 + (size_t)el <= 255) {
            s[k++] = ',';
        } else {
            if (key >= 0 && irohds_dns_txt_append(rd, cap, rdlen, s, k) != 0)
                return -EMSGSIZE;
            if (++key == NS_STRINGS)
                return -EMSGSIZE;
            k = strlen(keys[key]);
            memcpy(s, keys[key], k);
            if (k + (size_t)el > 255)
                return -EMSGSIZE;
        }
        memcpy(s + k, e, (size_t)el);
        k += (size_t)el;
    }
    return key >= 0 ? irohds_dns_txt_append(rd, cap, rdlen, s, k) : 0;
}

int mdns_txt_build(irohds_mdns *m, const char *const *ns, size_t n_ns)
{
    uint8_t rd[sizeof m->txt];
    size_t rdlen = 0;
    if (n_ns > IROHDS_MDNS_NS_MAX)
        return -EMSGSIZE;
    if (m->relay[0]) {
        char s[256] = "relay=";
        size_t rl = strlen(m->relay);
        memcpy(s + 6, m->relay, rl);
        irohds_dns_txt_append(rd, sizeof rd, &rdlen, s, 6 + rl);
    }
    if (txt_put_ns(rd, sizeof rd, &rdlen, ns, n_ns) != 0)
        return -EMSGSIZE;
    if (rdlen == 0) /* RFC 6763 §6.1: an empty TXT record is one empty string */
        rd[rdlen++] = 0;
    memcpy(m->txt, rd, rdlen);
    m->txt_len = rdlen;
    return 0;
}

/* -------------------------------------------------------------- records */

static void put_addr(irohds_dns_writer *w, const irohds_mdns *m, enum irohds_dns_section sec,
                     const irohds_dns_addr *a, uint32_t ttl)
{
    irohds_dns_rr rr = {.name = m->host, .rclass = IROHDS_DNS_CLASS_IN, .ttl = ttl};
    rr.type = a->family == 4 ? IROHDS_DNS_A : IROHDS_DNS_AAAA;
    memcpy(a->family == 4 ? rr.u.a : rr.u.aaaa, a->ip, a->family == 4 ? 4 : 16);
    irohds_dns_write_rr(w, sec, &rr);
}

static void put_records(irohds_dns_writer *w, const irohds_mdns *m, enum irohds_dns_section sec,
                        unsigned mask, uint32_t ttl)
{
    irohds_dns_rr rr = {.rclass = IROHDS_DNS_CLASS_IN, .ttl = ttl};
    if (mask & REC_ENUM) {
        rr.name = m->enum_name, rr.type = IROHDS_DNS_PTR, rr.u.ptr = m->svc;
        irohds_dns_write_rr(w, sec, &rr);
    }
    if (mask & REC_PTR) {
        rr.name = m->svc, rr.type = IROHDS_DNS_PTR, rr.u.ptr = m->inst;
        irohds_dns_write_rr(w, sec, &rr);
    }
    if (mask & REC_SRV) {
        rr.name = m->inst, rr.type = IROHDS_DNS_SRV;
        rr.u.srv.priority = 0, rr.u.srv.weight = 0, rr.u.srv.port = m->port;
        rr.u.srv.target = m->host;
        irohds_dns_write_rr(w, sec, &rr);
    }
    if (mask & REC_TXT) {
        rr.name = m->inst, rr.type = IROHDS_DNS_TXT;
        rr.rdata = m->txt, rr.rdlen = (uint16_t)m->txt_len;
        irohds_dns_write_rr(w, sec, &rr);
    }
    if (mask & REC_ADDR)
        for (size_t i = 0; i < m->n_addrs; i++)
            put_addr(w, m, sec, &m->addrs[i], ttl);
}

static int finish(irohds_dns_writer *w, irohds_mdns_packet *pkt)
{
    int rc = irohds_dns_writer_finish(w, &pkt->len);
    return rc == -ENOBUFS ? -EMSGSIZE : rc;
}

int mdns_build_response(irohds_mdns *m, irohds_mdns_packet *pkt, unsigned answers,
                        unsigned additional, uint32_t ttl, bool with_removed)
{
    irohds_dns_writer w;
    memset(pkt, 0, offsetof(irohds_mdns_packet, data));
    irohds_dns_writer_init(&w, pkt->data, sizeof pkt->data, 0, IROHDS_DNS_QR | IROHDS_DNS_AA);
    put_records(&w, m, IROHDS_DNS_ANSWER, answers, ttl);
    put_records(&w, m, IROHDS_DNS_ADDITIONAL, additional & ~answers, ttl);
    for (size_t i = 0; with_removed && i < m->n_removed; i++)
        put_addr(&w, m, IROHDS_DNS_ADDITIONAL, &m->removed[i], 0);
    return finish(&w, pkt);
}

int mdns_build_legacy(irohds_mdns *m, irohds_mdns_packet *pkt, uint16_t id,
                      const irohds_dns_question *qs, size_t nq, unsigned answers)
{
    irohds_dns_writer w;
    uint32_t ttl = m->ttl_s < 10 ? m->ttl_s : 10;
    memset(pkt, 0, offsetof(irohds_mdns_packet, data));
    irohds_dns_writer_init(&w, pkt->data, sizeof pkt->data, id, IROHDS_DNS_QR | IROHDS_DNS_AA);
    for (size_t i = 0; i < nq; i++)
        irohds_dns_write_question(&w, &qs[i].name, qs[i].type, qs[i].qclass);
    put_records(&w, m, IROHDS_DNS_ANSWER, answers, ttl);
    if (answers & (REC_PTR | REC_SRV))
        put_records(&w, m, IROHDS_DNS_ADDITIONAL, REC_ADDR & ~answers, ttl);
    return finish(&w, pkt);
}

/* A known answer takes at most: pointer 2, fixed 10, label 1 + 52,
 * pointer 2. */
#define KNOWN_ANSWER_MAX 67

int mdns_build_query(irohds_mdns *m, irohds_mdns_packet *pkt, uint16_t qid, int64_t now_ms)
{
    irohds_dns_writer w;
    memset(pkt, 0, offsetof(irohds_mdns_packet, data));
    irohds_dns_writer_init(&w, pkt->data, sizeof pkt->data, qid, 0);
    irohds_dns_write_question(&w, &m->svc, IROHDS_DNS_PTR, IROHDS_DNS_CLASS_IN);
    for (size_t i = 0; i < IROHDS_MDNS_PEERS_MAX; i++) {
        const peer_entry *p = &m->peers[i];
        int64_t left = p->expires_ms - now_ms;
        if (!p->used || p->goodbye || left * 2 <= p->life_ms)
            continue;
        if (w.len + KNOWN_ANSWER_MAX > sizeof pkt->data)
            break; /* the rest will answer; RFC 6762 §7.2 would go on in a TC packet */
        char b32[64];
        int n = irohds_dns_b32_encode(IROHDS_B32_RFC4648, p->info.id, 32, b32, sizeof b32);
        irohds_dns_rr rr = {.name = m->svc, .type = IROHDS_DNS_PTR,
                            .rclass = IROHDS_DNS_CLASS_IN, .ttl = (uint32_t)(left / 1000)};
        irohds_dns_name_prepend(&rr.u.ptr, b32, (size_t)n, &m->svc);
        irohds_dns_write_rr(&w, IROHDS_DNS_ANSWER, &rr);
    }
    return finish(&w, pkt);
}
