/*
 * test_postcard: the postcard reader and writer against the examples of the
 * postcard wire-format spec (testdata/postcard/wire_format_examples.json):
 * unsigned and zigzag varints both ways, and which non-canonical varints a
 * decoder must accept or refuse.  Then the reader's bounds: truncation,
 * sticky errors, hostile sequence lengths, bools and options.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vectors.h"
#include "wire/postcard.h"

static void test_vectors(const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/postcard/wire_format_examples.json", dir);
    json_object *root = json_object_from_file(path);
    CHECK(root != NULL, "cannot read %s", path);
    if (!root)
        return;
    json_object *arr;
    int n = 0;

    json_object_object_get_ex(root, "unsigned_u16", &arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++, n++) {
        json_object *c = json_object_array_get_idx(arr, i);
        uint64_t v = (uint64_t)jint(c, "value");
        uint8_t want[16], got[16];
        size_t wn = unhex(jstr(c, "varint_hex"), want, sizeof want);
        irohds_pc_writer w;
        irohds_pc_writer_init(&w, got, sizeof got);
        irohds_pc_write_varint(&w, v);
        CHECK(w.err == 0 && w.len == wn && memcmp(got, want, wn) == 0, "encode u16 %llu",
              (unsigned long long)v);
        CHECK(irohds_pc_varint_size(v) == wn, "varint_size %llu", (unsigned long long)v);
        irohds_pc_reader r;
        irohds_pc_reader_init(&r, want, wn);
        uint16_t d = irohds_pc_read_u16(&r);
        CHECK(irohds_pc_finish(&r) == 0 && d == v, "decode u16 %llu", (unsigned long long)v);
    }

    json_object_object_get_ex(root, "signed_i16_zigzag", &arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++, n++) {
        json_object *c = json_object_array_get_idx(arr, i);
        int64_t v = jint(c, "value");
        uint8_t want[16], got[16];
        size_t wn = unhex(jstr(c, "varint_hex"), want, sizeof want);
        irohds_pc_writer w;
        irohds_pc_writer_init(&w, got, sizeof got);
        irohds_pc_write_i64(&w, v);
        CHECK(w.err == 0 && w.len == wn && memcmp(got, want, wn) == 0, "encode i16 %lld",
              (long long)v);
        irohds_pc_reader r;
        irohds_pc_reader_init(&r, want, wn);
        CHECK(irohds_pc_read_i64(&r) == v && irohds_pc_finish(&r) == 0, "decode i16 %lld",
              (long long)v);
    }

    json_object_object_get_ex(root, "canonicalization_u16", &arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++, n++) {
        json_object *c = json_object_array_get_idx(arr, i);
        json_object *acc;
        json_object_object_get_ex(c, "accepted", &acc);
        bool accepted = json_object_get_boolean(acc);
        uint8_t in[16];
        size_t len = unhex(jstr(c, "encoded_hex"), in, sizeof in);
        irohds_pc_reader r;
        irohds_pc_reader_init(&r, in, len);
        uint16_t d = irohds_pc_read_u16(&r);
        if (accepted)
            CHECK(r.err == 0 && d == (uint64_t)jint(c, "value"), "accept %s",
                  jstr(c, "encoded_hex"));
        else
            CHECK(r.err == -EOVERFLOW, "refuse %s (err %d)", jstr(c, "encoded_hex"), r.err);
    }
    CHECK(n >= 20, "only %d vector cases", n);
    json_object_put(root);
}

static void test_bounds(void)
{
    /* u64 limits: 10 bytes max, 10th byte only bit 63. */
    const uint8_t max64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, max64, sizeof max64);
    CHECK(irohds_pc_read_u64(&r) == UINT64_MAX && irohds_pc_finish(&r) == 0, "u64 max");
    const uint8_t over64[] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02};
    irohds_pc_reader_init(&r, over64, sizeof over64);
    irohds_pc_read_u64(&r);
    CHECK(r.err == -EOVERFLOW, "u64 overflow in 10th byte");
    const uint8_t long64[] = {0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0};
    irohds_pc_reader_init(&r, long64, sizeof long64);
    irohds_pc_read_u64(&r);
    CHECK(r.err == -EOVERFLOW, "u64 of 11 bytes");
    const uint8_t u32over[] = {0xff, 0xff, 0xff, 0xff, 0x1f};
    irohds_pc_reader_init(&r, u32over, sizeof u32over);
    irohds_pc_read_u32(&r);
    CHECK(r.err == -EOVERFLOW, "u32 over range");

    /* Truncation, and the error sticks. */
    const uint8_t trunc[] = {0x80};
    irohds_pc_reader_init(&r, trunc, 1);
    irohds_pc_read_u64(&r);
    CHECK(r.err == -EPROTO, "truncated varint");
    CHECK(irohds_pc_read_u8(&r) == 0 && r.err == -EPROTO, "sticky error");
    CHECK(irohds_pc_read_raw(&r, 0) == NULL, "raw after error");

    /* Bytes: length past the end, over max. */
    const uint8_t bytes[] = {0x05, 'a', 'b'};
    size_t len;
    irohds_pc_reader_init(&r, bytes, sizeof bytes);
    CHECK(irohds_pc_read_bytes(&r, 100, &len) == NULL && r.err == -EPROTO, "bytes past end");
    const uint8_t bytes2[] = {0x02, 'a', 'b'};
    irohds_pc_reader_init(&r, bytes2, sizeof bytes2);
    CHECK(irohds_pc_read_bytes(&r, 1, &len) == NULL && r.err == -EOVERFLOW, "bytes over max");
    irohds_pc_reader_init(&r, bytes2, sizeof bytes2);
    const uint8_t *p = irohds_pc_read_bytes(&r, 2, &len);
    CHECK(p && len == 2 && memcmp(p, "ab", 2) == 0 && irohds_pc_finish(&r) == 0, "bytes ok");

    /* A sequence count the remaining bytes cannot hold. */
    const uint8_t seq[] = {0xff, 0xff, 0x03, 1, 2, 3};
    irohds_pc_reader_init(&r, seq, sizeof seq);
    CHECK(irohds_pc_read_seq_len(&r, 1u << 20, 32) == 0 && r.err == -EPROTO, "hostile count");
    irohds_pc_reader_init(&r, seq, sizeof seq);
    CHECK(irohds_pc_read_seq_len(&r, 100, 1) == 0 && r.err == -EOVERFLOW, "count over max");

    /* bool/option: only 00 and 01. */
    const uint8_t b2[] = {2};
    irohds_pc_reader_init(&r, b2, 1);
    irohds_pc_read_bool(&r);
    CHECK(r.err == -EPROTO, "bool 2");
    irohds_pc_reader_init(&r, b2, 1);
    irohds_pc_read_option(&r);
    CHECK(r.err == -EPROTO, "option tag 2");

    /* Trailing bytes make finish fail. */
    const uint8_t two[] = {1, 1};
    irohds_pc_reader_init(&r, two, 2);
    irohds_pc_read_u8(&r);
    CHECK(irohds_pc_finish(&r) == -EPROTO, "trailing byte");

    /* f64 is 8 bytes little-endian: 1.0 = 3ff0000000000000. */
    uint8_t fb[8];
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, fb, sizeof fb);
    irohds_pc_write_f64(&w, 1.0);
    const uint8_t one[] = {0, 0, 0, 0, 0, 0, 0xf0, 0x3f};
    CHECK(memcmp(fb, one, 8) == 0, "f64 1.0 bytes");
    irohds_pc_reader_init(&r, fb, 8);
    CHECK(irohds_pc_read_f64(&r) == 1.0, "f64 round trip");

    /* Writer overflow: err set, len keeps counting. */
    uint8_t small[2];
    irohds_pc_writer_init(&w, small, sizeof small);
    irohds_pc_write_bytes(&w, "abc", 3);
    CHECK(w.err == -ENOBUFS && w.len == 4, "writer overflow (len %zu)", w.len);
    irohds_pc_writer_init(&w, NULL, 0);
    irohds_pc_write_varint(&w, 300);
    CHECK(w.len == 2, "sizing writer");

    /* varint_peek for stream framing. */
    uint64_t v;
    const uint8_t pk[] = {0xac, 0x02, 0x99};
    CHECK(irohds_pc_varint_peek(pk, 1, &v) == 0, "peek needs more");
    CHECK(irohds_pc_varint_peek(pk, 3, &v) == 2 && v == 300, "peek 300");
    CHECK(irohds_pc_varint_peek(long64, sizeof long64, &v) == -EOVERFLOW, "peek overlong");
}

int main(int argc, char **argv)
{
    const char *dir = argc > 1 ? argv[1] : "../shared/testdata";
    test_vectors(dir);
    test_bounds();
    return check_summary();
}
