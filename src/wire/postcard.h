/*
 * wire/postcard: the postcard 1.x encoding (serde's compact binary format,
 * https://postcard.jamesmunns.com/wire-format), which every iroh protocol we
 * speak uses: iroh-blobs requests, iroh-gossip messages, and our own gossip
 * payloads (docs/protocol.md).
 *
 * The rules, in short: unsigned integers wider than a byte are LEB128
 * varints (7 bits a byte, low first, high bit = more); signed ones are
 * zigzagged first; u8 is one raw byte; bool is 00/01; Option is 00 or 01 +
 * value; byte strings, strings and sequences are a varint length then the
 * items; fixed arrays ([u8; 32]) and structs are their members in order with
 * no length; enums are a varint(u32) variant index then the body.
 *
 * A reader never reads past its buffer.  The first error sticks: every later
 * read returns the same error and yields zeros, so a decoder may read a whole
 * struct and check r->err once at the end.  A writer likewise records
 * -ENOBUFS when its buffer is full and ignores further writes (len keeps
 * counting, so a caller can size a buffer with a NULL/0 writer).
 *
 * Decoders accept the non-canonical varints postcard accepts (excess 0x80
 * continuation bytes within the type's maximum length) and refuse longer
 * ones or values out of the type's range (-EOVERFLOW).
 */
#ifndef IROHDS_WIRE_POSTCARD_H
#define IROHDS_WIRE_POSTCARD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct irohds_pc_reader {
    const uint8_t *buf;
    size_t len;
    size_t off;
    int err; /* 0, -EPROTO (truncated / bad bool or tag), -EOVERFLOW (varint) */
} irohds_pc_reader;

void irohds_pc_reader_init(irohds_pc_reader *r, const void *buf, size_t len);
static inline size_t irohds_pc_remaining(const irohds_pc_reader *r)
{
    return r->err ? 0 : r->len - r->off;
}

uint8_t irohds_pc_read_u8(irohds_pc_reader *r);
bool irohds_pc_read_bool(irohds_pc_reader *r);
uint16_t irohds_pc_read_u16(irohds_pc_reader *r);
uint32_t irohds_pc_read_u32(irohds_pc_reader *r);
uint64_t irohds_pc_read_u64(irohds_pc_reader *r);
int64_t irohds_pc_read_i64(irohds_pc_reader *r);
/* IEEE 754 little-endian, 8 bytes (postcard's f64; not a varint). */
double irohds_pc_read_f64(irohds_pc_reader *r);
/* n raw bytes (a fixed array such as [u8; 32]); NULL on error. */
const uint8_t *irohds_pc_read_raw(irohds_pc_reader *r, size_t n);
/* A length-prefixed byte string of at most max bytes (longer: -EOVERFLOW);
 * *len is set, the result points into the buffer; NULL on error. */
const uint8_t *irohds_pc_read_bytes(irohds_pc_reader *r, size_t max, size_t *len);
/* A sequence length, refused when larger than max or than the bytes left
 * could hold at min_item bytes an item (so a hostile count cannot make the
 * caller allocate for items that are not there). */
size_t irohds_pc_read_seq_len(irohds_pc_reader *r, size_t max, size_t min_item);
/* Option tag: 0 = None, 1 = Some; anything else sets -EPROTO. */
bool irohds_pc_read_option(irohds_pc_reader *r);
/* Enum variant index (a u32 varint). */
uint32_t irohds_pc_read_variant(irohds_pc_reader *r);
/* Set the reader's error (first one wins), e.g. for an unknown variant. */
void irohds_pc_fail(irohds_pc_reader *r, int err);
/* 0 when no error and every byte was consumed; else the error or -EPROTO. */
int irohds_pc_finish(const irohds_pc_reader *r);

typedef struct irohds_pc_writer {
    uint8_t *buf;
    size_t cap;
    size_t len; /* bytes the encoding needs so far (may exceed cap) */
    int err;    /* -ENOBUFS once a write did not fit */
} irohds_pc_writer;

void irohds_pc_writer_init(irohds_pc_writer *w, void *buf, size_t cap);
void irohds_pc_write_u8(irohds_pc_writer *w, uint8_t v);
void irohds_pc_write_bool(irohds_pc_writer *w, bool v);
void irohds_pc_write_varint(irohds_pc_writer *w, uint64_t v); /* u16/u32/u64/usize */
void irohds_pc_write_i64(irohds_pc_writer *w, int64_t v);     /* zigzag varint */
void irohds_pc_write_f64(irohds_pc_writer *w, double v);
void irohds_pc_write_raw(irohds_pc_writer *w, const void *p, size_t n);
void irohds_pc_write_bytes(irohds_pc_writer *w, const void *p, size_t n); /* length + bytes */

/* Bytes a varint of v takes (1..10). */
size_t irohds_pc_varint_size(uint64_t v);

/*
 * Decode one u64 varint from buf[0..len) into *v: returns the bytes used,
 * 0 when buf ends inside the varint (more bytes needed), or -EOVERFLOW.
 * For stream framing (iroh's length prefixes) where input arrives in pieces.
 */
int irohds_pc_varint_peek(const uint8_t *buf, size_t len, uint64_t *v);

#endif
