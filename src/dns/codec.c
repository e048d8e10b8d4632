/*
 * codec.c: the DNS message reader and writer (RFC 1035 §4).
 *
 * The reader is a cursor, not a tree: each call decodes one question or one
 * record into a caller-owned struct, so a whole message costs no memory and
 * a caller that needs two passes (mDNS: names first, then addresses) just
 * walks twice.  Validation happens while walking; irohds_dns_check() is a
 * walk that keeps nothing.
 *
 * Compression pointers are followed only backwards: a pointer must land
 * before the first byte of the run of labels that led to it.  Encoders only
 * ever point at names written earlier, so real messages pass, and the jump
 * targets strictly decrease, so no crafted chain can loop.
 *
 * The writer compresses a name against every label position it has written
 * (up to IROHDS_DNS_CTAB_MAX of them, within the 14-bit pointer range) and
 * takes the longest suffix that matches, ignoring ASCII case.
 */
#include <errno.h>
#include <string.h>

#include "dns/dns.h"

static uint16_t get16(const uint8_t *p)
{
    return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* ---------------------------------------------------------------- names */

int irohds_dns_read_name(const uint8_t *msg, size_t len, size_t *off, irohds_dns_name *out)
{
    size_t pos = *off, limit = *off, end = 0;
    bool jumped = false;
    out->len = 0;
    for (;;) {
        if (pos >= len)
            return -EPROTO;
        uint8_t c = msg[pos];
        if ((c & 0xc0) == 0xc0) {
            if (pos + 1 >= len)
                return -EPROTO;
            size_t target = (size_t)(c & 0x3f) << 8 | msg[pos + 1];
            if (target >= limit || target < IROHDS_DNS_HEADER_LEN)
                return -EPROTO;
            if (!jumped)
                end = pos + 2;
            jumped = true;
            pos = limit = target;
            continue;
        }
        if (c & 0xc0) /* 0x40 and 0x80: extended label types, obsolete */
            return -EPROTO;
        if ((size_t)out->len + 1 + c > IROHDS_DNS_NAME_MAX || pos + 1 + c > len)
            return -EPROTO;
        memcpy(out->wire + out->len, msg + pos, 1 + (size_t)c);
        out->len = (uint8_t)(out->len + 1 + c);
        pos += 1 + (size_t)c;
        if (c == 0)
            break;
    }
    *off = jumped ? end : pos;
    return 0;
}

static uint8_t lower(uint8_t c)
{
    return c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
}

static bool bytes_eq_nocase(const uint8_t *a, const uint8_t *b, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (lower(a[i]) != lower(b[i]))
            return false;
    return true;
}

bool irohds_dns_name_eq(const irohds_dns_name *a, const irohds_dns_name *b)
{
    return a->len == b->len && bytes_eq_nocase(a->wire, b->wire, a->len);
}

/* ---------------------------------------------------------------- reader */

int irohds_dns_reader_init(irohds_dns_reader *r, const uint8_t *msg, size_t len)
{
    memset(r, 0, sizeof *r);
    r->msg = msg;
    r->len = len;
    if (len < IROHDS_DNS_HEADER_LEN)
        return r->err = -EPROTO;
    r->id = get16(msg);
    r->flags = get16(msg + 2);
    for (int i = 0; i < 4; i++)
        r->count[i] = get16(msg + 4 + 2 * i);
    /* A question takes at least 5 bytes (root name, type, class), a record
     * at least 11: counts the rest of the message cannot hold are lies. */
    size_t need = (size_t)r->count[0] * 5 +
                  ((size_t)r->count[1] + r->count[2] + r->count[3]) * 11;
    if (need > len - IROHDS_DNS_HEADER_LEN)
        return r->err = -EPROTO;
    r->off = IROHDS_DNS_HEADER_LEN;
    r->section = IROHDS_DNS_QUESTION;
    r->left = r->count[0];
    return 0;
}

/* Move to the next section that still has entries; false at the end. */
static bool next_section(irohds_dns_reader *r)
{
    while (r->left == 0) {
        if (r->section == IROHDS_DNS_ADDITIONAL)
            return false;
        r->section++;
        r->left = r->count[r->section];
    }
    return true;
}

int irohds_dns_read_question(irohds_dns_reader *r, irohds_dns_question *q)
{
    if (r->err)
        return r->err;
    if (r->section != IROHDS_DNS_QUESTION || r->left == 0)
        return 0;
    int rc = irohds_dns_read_name(r->msg, r->len, &r->off, &q->name);
    if (rc == 0 && r->off + 4 > r->len)
        rc = -EPROTO;
    if (rc)
        return r->err = rc;
    q->type = get16(r->msg + r->off);
    uint16_t qclass = get16(r->msg + r->off + 2);
    q->qu = (qclass & IROHDS_DNS_QU) != 0;
    q->qclass = qclass & (uint16_t)~IROHDS_DNS_QU;
    r->off += 4;
    r->left--;
    return 1;
}

/* A name in rdata must end exactly where the rdata ends. */
static int rdata_name(const uint8_t *msg, size_t rd_end, size_t off, irohds_dns_name *out)
{
    int rc = irohds_dns_read_name(msg, rd_end, &off, out);
    if (rc)
        return rc;
    return off == rd_end ? 0 : -EPROTO;
}

static int txt_check(const uint8_t *p, size_t n)
{
    for (size_t i = 0; i < n; i += 1 + (size_t)p[i])
        if (i + 1 + p[i] > n)
            return -EPROTO;
    return 0;
}

static int decode_rdata(const irohds_dns_reader *r, size_t rd, irohds_dns_rr *rr)
{
    size_t rd_end = rd + rr->rdlen;
    switch (rr->type) {
    case IROHDS_DNS_A:
        if (rr->rdlen != 4)
            return -EPROTO;
        memcpy(rr->u.a, r->msg + rd, 4);
        return 0;
    case IROHDS_DNS_AAAA:
        if (rr->rdlen != 16)
            return -EPROTO;
        memcpy(rr->u.aaaa, r->msg + rd, 16);
        return 0;
    case IROHDS_DNS_PTR:
        return rdata_name(r->msg, rd_end, rd, &rr->u.ptr);
    case IROHDS_DNS_SRV:
        if (rr->rdlen < 7)
            return -EPROTO;
        rr->u.srv.priority = get16(r->msg + rd);
        rr->u.srv.weight = get16(r->msg + rd + 2);
        rr->u.srv.port = get16(r->msg + rd + 4);
        return rdata_name(r->msg, rd_end, rd + 6, &rr->u.srv.target);
    case IROHDS_DNS_TXT:
        return txt_check(rr->rdata, rr->rdlen);
    default:
        return 0;
    }
}

static int read_rr(irohds_dns_reader *r, irohds_dns_rr *rr)
{
    int rc = irohds_dns_read_name(r->msg, r->len, &r->off, &rr->name);
    if (rc)
        return rc;
    if (r->off + 10 > r->len)
        return -EPROTO;
    const uint8_t *h = r->msg + r->off;
    rr->type = get16(h);
    uint16_t rclass = get16(h + 2);
    rr->cache_flush = rr->type != IROHDS_DNS_OPT && (rclass & IROHDS_DNS_CACHE_FLUSH);
    rr->rclass = rr->type == IROHDS_DNS_OPT ? rclass : rclass & (uint16_t)~IROHDS_DNS_CACHE_FLUSH;
    rr->ttl = get32(h + 4);
    rr->rdlen = get16(h + 8);
    size_t rd = r->off + 10;
    if (rd + rr->rdlen > r->len)
        return -EPROTO;
    rr->rdata = r->msg + rd;
    rr->section = (enum irohds_dns_section)r->section;
    rc = decode_rdata(r, rd, rr);
    if (rc)
        return rc;
    r->off = rd + rr->rdlen;
    r->left--;
    return 0;
}

int irohds_dns_read_rr(irohds_dns_reader *r, irohds_dns_rr *rr)
{
    if (r->err)
        return r->err;
    irohds_dns_question q;
    int rc;
    while (r->section == IROHDS_DNS_QUESTION && r->left > 0)
        if ((rc = irohds_dns_read_question(r, &q)) < 0)
            return rc;
    if (!next_section(r))
        return r->off == r->len ? 0 : (r->err = -EPROTO);
    rc = read_rr(r, rr);
    return rc ? (r->err = rc) : 1;
}

int irohds_dns_check(const uint8_t *msg, size_t len)
{
    irohds_dns_reader r;
    irohds_dns_rr rr;
    int rc = irohds_dns_reader_init(&r, msg, len);
    while (rc == 0 && (rc = irohds_dns_read_rr(&r, &rr)) == 1)
        rc = 0;
    return rc;
}

int irohds_dns_txt_next(const irohds_dns_rr *rr, size_t *pos, const uint8_t **s, size_t *slen)
{
    if (*pos >= rr->rdlen)
        return 0;
    size_t n = rr->rdata[*pos];
    if (*pos + 1 + n > rr->rdlen)
        return -EPROTO;
    *s = rr->rdata + *pos + 1;
    *slen = n;
    *pos += 1 + n;
    return 1;
}

int irohds_dns_txt_append(uint8_t *buf, size_t cap, size_t *len, const void *s, size_t slen)
{
    if (slen > 255 || *len + 1 + slen > 65535)
        return -EMSGSIZE;
    if (*len + 1 + slen > cap)
        return -ENOBUFS;
    buf[*len] = (uint8_t)slen;
    if (slen)
        memcpy(buf + *len + 1, s, slen);
    *len += 1 + slen;
    return 0;
}

/* ---------------------------------------------------------------- writer */

static void put(irohds_dns_writer *w, const void *p, size_t n)
{
    if (w->err)
        return;
    if (n > w->cap - w->len) {
        w->err = -ENOBUFS;
        return;
    }
    memcpy(w->buf + w->len, p, n);
    w->len += n;
}

static void put16(irohds_dns_writer *w, uint16_t v)
{
    uint8_t b[2] = {(uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 2);
}

static void put32(irohds_dns_writer *w, uint32_t v)
{
    uint8_t b[4] = {(uint8_t)(v >> 24), (uint8_t)(v >> 16), (uint8_t)(v >> 8), (uint8_t)v};
    put(w, b, 4);
}

void irohds_dns_writer_init(irohds_dns_writer *w, uint8_t *buf, size_t cap, uint16_t id,
                            uint16_t flags)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
    put16(w, id);
    put16(w, flags);
    uint8_t zero[8] = {0};
    put(w, zero, sizeof zero);
}

/* Does the name written at offset e equal the suffix s of s_len bytes? */
static bool written_name_is(const irohds_dns_writer *w, uint16_t e, const uint8_t *s, size_t s_len)
{
    if (lower(w->buf[e]) != lower(s[0]))
        return false; /* cheap filter: first label length differs */
    irohds_dns_name n;
    size_t off = e;
    if (irohds_dns_read_name(w->buf, w->len, &off, &n) != 0)
        return false;
    return n.len == s_len && bytes_eq_nocase(n.wire, s, s_len);
}

static int find_suffix(const irohds_dns_writer *w, const uint8_t *s, size_t s_len)
{
    for (unsigned i = 0; i < w->nctab; i++)
        if (written_name_is(w, w->ctab[i], s, s_len))
            return w->ctab[i];
    return -1;
}

static void remember_label(irohds_dns_writer *w, size_t off)
{
    if (off < 0x4000 && w->nctab < IROHDS_DNS_CTAB_MAX)
        w->ctab[w->nctab++] = (uint16_t)off;
}

static void write_name(irohds_dns_writer *w, const irohds_dns_name *n, bool compress)
{
    size_t pos = 0;
    while (n->wire[pos] != 0 && !w->err) {
        int at = compress ? find_suffix(w, n->wire + pos, n->len - pos) : -1;
        if (at >= 0) {
            put16(w, (uint16_t)(0xc000 | at));
            return;
        }
        size_t l = n->wire[pos];
        if (pos + 1 + l >= n->len) { /* labels must end with the root within len */
            w->err = -EINVAL;
            return;
        }
        remember_label(w, w->len);
        put(w, n->wire + pos, 1 + l);
        pos += 1 + l;
    }
    put(w, "", 1);
}

static bool enter_section(irohds_dns_writer *w, unsigned section)
{
    if (w->err)
        return false;
    if (section < w->section || section > IROHDS_DNS_ADDITIONAL || w->count[section] == 0xffff) {
        w->err = -EINVAL;
        return false;
    }
    w->section = section;
    return true;
}

void irohds_dns_write_question(irohds_dns_writer *w, const irohds_dns_name *name, uint16_t type,
                               uint16_t qclass)
{
    if (!enter_section(w, IROHDS_DNS_QUESTION))
        return;
    write_name(w, name, true);
    put16(w, type);
    put16(w, qclass);
    if (!w->err)
        w->count[IROHDS_DNS_QUESTION]++;
}

static void write_rdata(irohds_dns_writer *w, const irohds_dns_rr *rr)
{
    switch (rr->type) {
    case IROHDS_DNS_A:
        put(w, rr->u.a, 4);
        break;
    case IROHDS_DNS_AAAA:
        put(w, rr->u.aaaa, 16);
        break;
    case IROHDS_DNS_PTR:
        write_name(w, &rr->u.ptr, true);
        break;
    case IROHDS_DNS_SRV:
        put16(w, rr->u.srv.priority);
        put16(w, rr->u.srv.weight);
        put16(w, rr->u.srv.port);
        write_name(w, &rr->u.srv.target, false);
        break;
    default:
        put(w, rr->rdata, rr->rdlen);
        break;
    }
}

void irohds_dns_write_rr(irohds_dns_writer *w, enum irohds_dns_section section,
                         const irohds_dns_rr *rr)
{
    if (section == IROHDS_DNS_QUESTION && !w->err)
        w->err = -EINVAL;
    if (!enter_section(w, section))
        return;
    write_name(w, &rr->name, true);
    put16(w, rr->type);
    put16(w, (uint16_t)(rr->rclass | (rr->cache_flush ? IROHDS_DNS_CACHE_FLUSH : 0)));
    put32(w, rr->ttl);
    size_t at = w->len;
    put16(w, 0);
    write_rdata(w, rr);
    if (w->err)
        return;
    size_t rdlen = w->len - at - 2;
    if (rdlen > 0xffff) {
        w->err = -EMSGSIZE;
        return;
    }
    w->buf[at] = (uint8_t)(rdlen >> 8);
    w->buf[at + 1] = (uint8_t)rdlen;
    w->count[section]++;
}

int irohds_dns_writer_finish(irohds_dns_writer *w, size_t *len)
{
    if (w->err)
        return w->err;
    for (int i = 0; i < 4; i++) {
        w->buf[4 + 2 * i] = (uint8_t)(w->count[i] >> 8);
        w->buf[5 + 2 * i] = (uint8_t)w->count[i];
    }
    *len = w->len;
    return 0;
}
