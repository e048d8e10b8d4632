/*
 * postcard.c: see postcard.h.  Varints are decoded against the maximum
 * encoded length of their type (u16: 3 bytes, u32: 5, u64: 10), the limit
 * the postcard spec sets, then range-checked; that is what makes "ffff03"
 * a u16 and "ffff07" an error.
 */
#include "wire/postcard.h"

#include <errno.h>
#include <string.h>

void irohds_pc_reader_init(irohds_pc_reader *r, const void *buf, size_t len)
{
    r->buf = buf;
    r->len = buf ? len : 0;
    r->off = 0;
    r->err = 0;
}

void irohds_pc_fail(irohds_pc_reader *r, int err)
{
    if (!r->err)
        r->err = err;
}

int irohds_pc_finish(const irohds_pc_reader *r)
{
    if (r->err)
        return r->err;
    return r->off == r->len ? 0 : -EPROTO;
}

const uint8_t *irohds_pc_read_raw(irohds_pc_reader *r, size_t n)
{
    if (r->err)
        return NULL;
    if (n > r->len - r->off) {
        r->err = -EPROTO;
        return NULL;
    }
    const uint8_t *p = r->buf + r->off;
    r->off += n;
    return p;
}

uint8_t irohds_pc_read_u8(irohds_pc_reader *r)
{
    const uint8_t *p = irohds_pc_read_raw(r, 1);
    return p ? *p : 0;
}

bool irohds_pc_read_bool(irohds_pc_reader *r)
{
    uint8_t b = irohds_pc_read_u8(r);
    if (b > 1)
        irohds_pc_fail(r, -EPROTO);
    return b == 1 && !r->err;
}

/* LEB128 of at most max_bytes bytes, value at most max_value. */
static uint64_t read_varint(irohds_pc_reader *r, unsigned max_bytes, uint64_t max_value)
{
    if (r->err)
        return 0;
    uint64_t v = 0;
    for (unsigned i = 0; i < max_bytes; i++) {
        if (r->off >= r->len) {
            r->err = -EPROTO;
            return 0;
        }
        uint8_t b = r->buf[r->off++];
        uint64_t bits = (uint64_t)(b & 0x7f);
        unsigned shift = 7 * i;
        /* The 10th byte of a u64 carries only bit 63. */
        if (shift == 63 && bits > 1) {
            r->err = -EOVERFLOW;
            return 0;
        }
        v |= bits << shift;
        if (!(b & 0x80)) {
            if (v > max_value) {
                r->err = -EOVERFLOW;
                return 0;
            }
            return v;
        }
    }
    r->err = -EOVERFLOW; /* longer than the type allows */
    return 0;
}

uint16_t irohds_pc_read_u16(irohds_pc_reader *r)
{
    return (uint16_t)read_varint(r, 3, UINT16_MAX);
}

uint32_t irohds_pc_read_u32(irohds_pc_reader *r)
{
    return (uint32_t)read_varint(r, 5, UINT32_MAX);
}

uint64_t irohds_pc_read_u64(irohds_pc_reader *r)
{
    return read_varint(r, 10, UINT64_MAX);
}

int64_t irohds_pc_read_i64(irohds_pc_reader *r)
{
    uint64_t z = irohds_pc_read_u64(r);
    return (int64_t)(z >> 1) ^ -(int64_t)(z & 1);
}

double irohds_pc_read_f64(irohds_pc_reader *r)
{
    const uint8_t *p = irohds_pc_read_raw(r, 8);
    if (!p)
        return 0;
    uint64_t u = 0;
    for (int i = 7; i >= 0; i--)
        u = (u << 8) | p[i];
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

const uint8_t *irohds_pc_read_bytes(irohds_pc_reader *r, size_t max, size_t *len)
{
    uint64_t n = irohds_pc_read_u64(r);
    *len = 0;
    if (r->err)
        return NULL;
    if (n > max) {
        r->err = -EOVERFLOW;
        return NULL;
    }
    const uint8_t *p = irohds_pc_read_raw(r, (size_t)n);
    if (p)
        *len = (size_t)n;
    return p;
}

size_t irohds_pc_read_seq_len(irohds_pc_reader *r, size_t max, size_t min_item)
{
    uint64_t n = irohds_pc_read_u64(r);
    if (r->err)
        return 0;
    if (n > max) {
        r->err = -EOVERFLOW;
        return 0;
    }
    if (min_item && n > (r->len - r->off) / min_item) {
        r->err = -EPROTO;
        return 0;
    }
    return (size_t)n;
}

bool irohds_pc_read_option(irohds_pc_reader *r)
{
    return irohds_pc_read_bool(r);
}

uint32_t irohds_pc_read_variant(irohds_pc_reader *r)
{
    return irohds_pc_read_u32(r);
}

/* ---------------------------------------------------------------- writer */

void irohds_pc_writer_init(irohds_pc_writer *w, void *buf, size_t cap)
{
    w->buf = buf;
    w->cap = buf ? cap : 0;
    w->len = 0;
    w->err = 0;
}

void irohds_pc_write_raw(irohds_pc_writer *w, const void *p, size_t n)
{
    if (!w->err && n <= w->cap - w->len) {
        if (n)
            memcpy(w->buf + w->len, p, n);
    } else {
        w->err = -ENOBUFS;
    }
    w->len += n;
}

void irohds_pc_write_u8(irohds_pc_writer *w, uint8_t v)
{
    irohds_pc_write_raw(w, &v, 1);
}

void irohds_pc_write_bool(irohds_pc_writer *w, bool v)
{
    irohds_pc_write_u8(w, v ? 1 : 0);
}

size_t irohds_pc_varint_size(uint64_t v)
{
    size_t n = 1;
    while (v >= 0x80) {
        v >>= 7;
        n++;
    }
    return n;
}

void irohds_pc_write_varint(irohds_pc_writer *w, uint64_t v)
{
    uint8_t tmp[10];
    size_t n = 0;
    while (v >= 0x80) {
        tmp[n++] = (uint8_t)(v | 0x80);
        v >>= 7;
    }
    tmp[n++] = (uint8_t)v;
    irohds_pc_write_raw(w, tmp, n);
}

void irohds_pc_write_i64(irohds_pc_writer *w, int64_t v)
{
    irohds_pc_write_varint(w, ((uint64_t)v << 1) ^ (uint64_t)(v >> 63));
}

void irohds_pc_write_f64(irohds_pc_writer *w, double v)
{
    uint64_t u;
    memcpy(&u, &v, sizeof u);
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(u >> (8 * i));
    irohds_pc_write_raw(w, b, 8);
}

void irohds_pc_write_bytes(irohds_pc_writer *w, const void *p, size_t n)
{
    irohds_pc_write_varint(w, n);
    irohds_pc_write_raw(w, p, n);
}

int irohds_pc_varint_peek(const uint8_t *buf, size_t len, uint64_t *v)
{
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, buf, len < 10 ? len : 10);
    uint64_t x = irohds_pc_read_u64(&r);
    if (r.err == -EOVERFLOW)
        return -EOVERFLOW;
    if (r.err)
        return len < 10 ? 0 : -EOVERFLOW;
    *v = x;
    return (int)r.off;
}
