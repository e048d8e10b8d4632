/*
 * fuzz_ipc: libFuzzer target for the IPC decoder, the one parser the daemon
 * runs on bytes from any local process.  Besides "no crash, no read past
 * len" (ASan/UBSan check that), it asserts the codec's own contract: a
 * decoded frame re-encodes to a frame that decodes to the same message, and
 * decode never claims more bytes than it was given.
 */
#include <assert.h>
#include <stdlib.h>
#include <string.h>

#include "ipc/ipc.h"

static int same_str(irohds_ipc_str a, irohds_ipc_str b)
{
    return a.len == b.len && (a.len == 0 || memcmp(a.ptr, b.ptr, a.len) == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy into an exact-size heap buffer so ASan sees any overread. */
    uint8_t *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    size_t off = 0;
    static uint8_t out[IROHDS_IPC_MAX_FRAME + 4];
    while (off < size) {
        irohds_ipc_msg m, m2;
        int n = irohds_ipc_decode(in + off, size - off, &m);
        if (n <= 0)
            break;
        assert((size_t)n <= size - off);
        int e = irohds_ipc_encode(&m, out, sizeof(out));
        assert(e > 0 && e <= n); /* unknown fields are dropped, never added */
        int d = irohds_ipc_decode(out, (size_t)e, &m2);
        assert(d == e);
        assert(m2.type == m.type && m2.id == m.id && m2.present == m.present);
        assert(!memcmp(m2.key, m.key, 32) && !memcmp(m2.hash, m.hash, 32));
        assert(m2.lease == m.lease && m2.size == m.size && m2.count == m.count);
        assert(m2.flags == m.flags && m2.code == m.code && m2.pid == m.pid);
        assert(same_str(m.func, m2.func) && same_str(m.ns, m2.ns) && same_str(m.text, m2.text));
        assert(same_str(m.staging, m2.staging) && same_str(m.path, m2.path));
        off += (size_t)n;
    }
    free(in);
    return 0;
}
