/*
 * sighting.c: what another node's response says about it.
 *
 * Two passes over the records of all sections, as swarm-discovery reads
 * them but without caring which section a record sits in: the first finds
 * instances of _irohv1._udp.local (a PTR to one, its SRV records and its
 * TXT), the second collects the A/AAAA records whose names are the SRV
 * targets, each with that SRV's port.  Records of other services, other
 * classes and other types fall through both passes untouched.
 *
 * Addresses with TTL 0 are removals when the SRV has a real TTL, and plain
 * addresses when the SRV has TTL 0 too (swarm-discovery writes TTL 0
 * everywhere and ages peers itself).
 *
 * An instance label must be the base32 of a valid Ed25519 key, else the
 * instance is not iroh's and is skipped.  Our own instance is skipped too
 * (and noted): multicast loops our packets back to us.
 */
#include <errno.h>
#include <string.h>

#include <sodium.h>

#include "mdns/mdns_int.h"

static bool instance_id(const irohds_mdns *m, const irohds_dns_name *name, uint8_t id[32])
{
    const uint8_t *label;
    size_t len;
    irohds_dns_name rest;
    if (!irohds_dns_name_first(name, &label, &len, &rest) || !irohds_dns_name_eq(&rest, &m->svc))
        return false;
    return len == IROHDS_PKARR_Z32_LEN &&
           irohds_dns_b32_decode(IROHDS_B32_RFC4648, (const char *)label, len, id, 32) == 32 &&
           crypto_core_ed25519_is_valid_point(id);
}

static sighting *sighting_for(irohds_mdns *m, const uint8_t id[32])
{
    for (unsigned i = 0; i < m->n_sights; i++)
        if (memcmp(m->sights[i].id, id, 32) == 0)
            return &m->sights[i];
    if (m->n_sights == SIGHT_MAX)
        return NULL;
    sighting *s = &m->sights[m->n_sights++];
    memset(s, 0, sizeof *s);
    memcpy(s->id, id, 32);
    memcpy(s->info.id, id, 32);
    s->min_ttl = UINT32_MAX;
    return s;
}

/* ------------------------------------------------------------ namespaces */

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if ((c | 32) >= 'a' && (c | 32) <= 'f')
        return (c | 32) - 'a' + 10;
    return -1;
}

/* One list element, %XX unescaped, appended to p; malformed ones skipped. */
static void ns_add(irohds_mdns_peer *p, const char *v, size_t n)
{
    char out[IROHDS_MDNS_NS_LEN_MAX];
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        int c = (unsigned char)v[i];
        if (c == '%') {
            int hi = i + 2 < n ? hexval(v[i + 1]) : -1, lo = hi >= 0 ? hexval(v[i + 2]) : -1;
            if (lo < 0)
                return;
            c = hi << 4 | lo;
            i += 2;
        }
        if (k == sizeof out)
            return;
        out[k++] = (char)c;
    }
    size_t used = p->n_ns ? p->ns_off[p->n_ns - 1] + p->ns_len[p->n_ns - 1] : 0;
    if (p->n_ns == IROHDS_MDNS_NS_MAX || used + k > sizeof p->ns_buf)
        return;
    memcpy(p->ns_buf + used, out, k);
    p->ns_off[p->n_ns] = (uint16_t)used;
    p->ns_len[p->n_ns] = (uint8_t)k;
    p->n_ns++;
}

static void ns_decode(irohds_mdns_peer *p, const char *v, size_t n)
{
    size_t start = 0;
    for (size_t i = 0; i <= n; i++)
        if (i == n || v[i] == ',') {
            ns_add(p, v + start, i - start);
            start = i + 1;
        }
}

/* ------------------------------------------------------------ TXT */

static bool key_is(const uint8_t *k, size_t klen, const char *want)
{
    if (klen != strlen(want))
        return false;
    for (size_t i = 0; i < klen; i++) { /* keys are case-insensitive (RFC 6763 §6.4) */
        uint8_t c = k[i] >= 'A' && k[i] <= 'Z' ? (uint8_t)(k[i] + 32) : k[i];
        if (c != (uint8_t)want[i])
            return false;
    }
    return true;
}

static void take_string(sighting *s, const uint8_t *p, size_t n)
{
    static const char *const ns_keys[NS_STRINGS] = {"ns", "ns1", "ns2", "ns3"};
    const uint8_t *eq = memchr(p, '=', n);
    if (!eq)
        return;
    size_t klen = (size_t)(eq - p), vlen = n - klen - 1;
    if (key_is(p, klen, "relay")) {
        if (!s->info.relay[0] && vlen <= IROHDS_PKARR_RELAY_MAX) {
            memcpy(s->info.relay, eq + 1, vlen);
            s->info.relay[vlen] = '\0';
        }
        return;
    }
    for (int i = 0; i < NS_STRINGS; i++)
        if (key_is(p, klen, ns_keys[i]) && !s->ns_seen[i]) {
            s->ns_seen[i] = true;
            s->ns_len[i] = (uint8_t)vlen;
            memcpy(s->ns_raw[i], eq + 1, vlen);
        }
}

static void take_txt(sighting *s, const irohds_dns_rr *rr)
{
    size_t pos = 0, n;
    const uint8_t *p;
    s->have_txt = true;
    while (irohds_dns_txt_next(rr, &pos, &p, &n) == 1)
        take_string(s, p, n);
}

/* ------------------------------------------------------------ passes */

static void take_instance_record(irohds_mdns *m, const irohds_dns_rr *rr, bool *own)
{
    uint8_t id[32];
    const irohds_dns_name *inst = rr->type == IROHDS_DNS_PTR ? &rr->u.ptr : &rr->name;
    if (rr->type == IROHDS_DNS_PTR && !irohds_dns_name_eq(&rr->name, &m->svc))
        return;
    if (!instance_id(m, inst, id))
        return;
    if (memcmp(id, m->id, 32) == 0) {
        *own = true;
        return;
    }
    sighting *s = sighting_for(m, id);
    if (!s)
        return;
    if (rr->type == IROHDS_DNS_PTR) {
        s->goodbye |= rr->ttl == 0;
    } else if (rr->type == IROHDS_DNS_SRV) {
        if (s->n_srv < SIGHT_SRV_MAX) {
            s->srv[s->n_srv].target = rr->u.srv.target;
            s->srv[s->n_srv].ttl = rr->ttl;
            s->srv[s->n_srv++].port = rr->u.srv.port;
            s->min_ttl = rr->ttl < s->min_ttl ? rr->ttl : s->min_ttl;
        }
    } else {
        take_txt(s, rr);
    }
}

static void add_addr(sighting *s, const irohds_dns_rr *rr, uint16_t port)
{
    irohds_dns_addr a = {.family = rr->type == IROHDS_DNS_A ? 4 : 6, .port = port};
    memcpy(a.ip, rr->type == IROHDS_DNS_A ? rr->u.a : rr->u.aaaa, a.family == 4 ? 4 : 16);
    for (size_t i = 0; i < s->info.n_addrs; i++)
        if (irohds_dns_addr_eq(&s->info.addrs[i], &a))
            return;
    if (s->info.n_addrs == IROHDS_MDNS_ADDRS_MAX)
        return;
    s->info.addrs[s->info.n_addrs++] = a;
    s->min_ttl = rr->ttl < s->min_ttl ? rr->ttl : s->min_ttl;
}

/* An address with TTL 0 next to an SRV with a real TTL is a goodbye for
 * that address (we announce removed addresses so): not in the set.  Next to
 * an SRV with TTL 0 it is swarm-discovery's way of writing any address. */
static void take_address_record(irohds_mdns *m, const irohds_dns_rr *rr)
{
    for (unsigned i = 0; i < m->n_sights; i++) {
        sighting *s = &m->sights[i];
        for (unsigned k = 0; k < s->n_srv; k++)
            if (irohds_dns_name_eq(&rr->name, &s->srv[k].target) &&
                (rr->ttl > 0 || s->srv[k].ttl == 0))
                add_addr(s, rr, s->srv[k].port);
    }
}

static int pass(irohds_mdns *m, const uint8_t *buf, size_t len, bool addresses, bool *own)
{
    irohds_dns_reader r;
    irohds_dns_rr rr;
    int rc = irohds_dns_reader_init(&r, buf, len);
    while (rc == 0 && (rc = irohds_dns_read_rr(&r, &rr)) == 1) {
        rc = 0;
        if (rr.rclass != IROHDS_DNS_CLASS_IN)
            continue;
        bool addr = rr.type == IROHDS_DNS_A || rr.type == IROHDS_DNS_AAAA;
        bool inst = rr.type == IROHDS_DNS_PTR || rr.type == IROHDS_DNS_SRV ||
                    rr.type == IROHDS_DNS_TXT;
        if (addresses && addr)
            take_address_record(m, &rr);
        else if (!addresses && inst)
            take_instance_record(m, &rr, own);
    }
    return rc;
}

int mdns_read_sightings(irohds_mdns *m, const uint8_t *buf, size_t len, bool *own)
{
    m->n_sights = 0;
    *own = false;
    int rc = pass(m, buf, len, false, own);
    if (rc == 0 && m->n_sights)
        rc = pass(m, buf, len, true, own);
    for (unsigned i = 0; rc == 0 && i < m->n_sights; i++)
        for (int k = 0; k < NS_STRINGS; k++)
            if (m->sights[i].ns_seen[k])
                ns_decode(&m->sights[i].info, m->sights[i].ns_raw[k],
                               m->sights[i].ns_len[k]);
    return rc;
}
