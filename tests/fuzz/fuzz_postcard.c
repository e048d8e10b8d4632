/*
 * fuzz_postcard: every reader on arbitrary bytes.  The first byte picks a
 * sequence of reads; whatever the input, no read may run past the buffer
 * (ASan) and a reader that failed must keep failing.
 */
#include <stddef.h>
#include <stdint.h>

#include "wire/postcard.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, data, size);
    size_t len;
    while (!r.err && irohds_pc_remaining(&r)) {
        switch (irohds_pc_read_u8(&r) % 9) {
        case 0: irohds_pc_read_u16(&r); break;
        case 1: irohds_pc_read_u32(&r); break;
        case 2: irohds_pc_read_u64(&r); break;
        case 3: irohds_pc_read_i64(&r); break;
        case 4: irohds_pc_read_bool(&r); break;
        case 5: irohds_pc_read_bytes(&r, 1u << 20, &len); break;
        case 6: irohds_pc_read_seq_len(&r, 1000, 4); break;
        case 7: irohds_pc_read_f64(&r); break;
        default: irohds_pc_read_raw(&r, 32); break;
        }
    }
    if (r.err && irohds_pc_read_u8(&r) != 0)
        __builtin_trap();
    uint64_t v;
    irohds_pc_varint_peek(data, size, &v);
    return 0;
}
