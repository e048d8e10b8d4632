/*
 * fuzz_blobs_request: iroh-blobs requests and range specs from arbitrary
 * bytes.  Whatever the input, no read may leave the buffer (ASan), and
 * whatever decodes must be canonical (sorted, disjoint, non-touching
 * ranges, only the last open; strictly increasing indices) and must survive
 * encode -> decode unchanged.  The range-set operations run on what was
 * decoded, with a size taken from the input, and must keep sets canonical.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "blobs/blobs.h"

static void check_canonical(const irohds_blobs_ranges *rs)
{
    if (rs->n > IROHDS_BLOBS_MAX_RANGES)
        __builtin_trap();
    for (uint32_t i = 0; i < rs->n; i++) {
        const irohds_blobs_range *r = &rs->r[i];
        bool open = r->end == IROHDS_BLOBS_OPEN;
        if ((!open && r->start >= r->end) || (open && i + 1 != rs->n))
            __builtin_trap();
        if (i > 0 && r->start <= rs->r[i - 1].end)
            __builtin_trap();
    }
}

static void check_seq(const irohds_blobs_seq *seq)
{
    for (uint32_t i = 0; i < seq->n; i++) {
        if (i > 0 && seq->index[i] <= seq->index[i - 1])
            __builtin_trap();
        check_canonical(&seq->ranges[i]);
    }
}

static void range_ops(const irohds_blobs_ranges *rs, uint64_t size)
{
    irohds_blobs_ranges out;
    irohds_blobs_ranges_truncate(rs, size, &out);
    check_canonical(&out);
    irohds_blobs_ranges_clip(rs, size, &out);
    check_canonical(&out);
    if (out.n && out.r[out.n - 1].end == IROHDS_BLOBS_OPEN)
        __builtin_trap(); /* clipped sets are closed */
    irohds_blobs_ranges_full_groups(rs, (unsigned)(size % 5), &out);
    check_canonical(&out);
}

static void roundtrip_get(const irohds_blobs_get *get)
{
    static uint8_t buf[1 << 16];
    static irohds_blobs_get again;
    size_t len;
    if (irohds_blobs_get_encode(get, buf, sizeof buf, &len) != 0)
        __builtin_trap();
    if (irohds_blobs_request_decode(buf, len, &again) != 0)
        __builtin_trap();
    if (memcmp(again.hash, get->hash, 32) != 0 || again.ranges.n != get->ranges.n)
        __builtin_trap();
    for (uint32_t i = 0; i < get->ranges.n; i++)
        if (again.ranges.index[i] != get->ranges.index[i] ||
            !irohds_blobs_ranges_equal(&again.ranges.ranges[i], &get->ranges.ranges[i]))
            __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static irohds_blobs_get get;
    int err = irohds_blobs_request_decode(data, size, &get);
    if (err != 0 && err != -EPROTO && err != -EOVERFLOW && err != -ENOTSUP)
        __builtin_trap();
    if (err == 0) {
        check_seq(&get.ranges);
        roundtrip_get(&get);
        bool children;
        range_ops(irohds_blobs_get_root_ranges(&get, &children), size * 997);
    }

    /* the input as a bare RangeSpec */
    irohds_blobs_ranges rs;
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, data, size);
    if (irohds_blobs_ranges_decode(&r, &rs) == 0) {
        check_canonical(&rs);
        uint64_t bytes = 0;
        memcpy(&bytes, data, size < 8 ? size : 8);
        range_ops(&rs, bytes >> (bytes & 63));
    }
    return 0;
}
