/*
 * fuzz_proto: the irohds message decoder and verifier on arbitrary bytes.
 * Whatever the input: no read past it (ASan), no undefined behaviour
 * (UBSan), and whatever decodes re-encodes to the very same bytes (the
 * decoder takes canonical input only).  Verification runs on what decodes,
 * against its own namespace and timestamp, so the signature paths run too
 * and may answer only "valid" (the signed seeds) or -EBADMSG.  The same
 * bytes are also tried as a stand-alone file list.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "proto/proto.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return sodium_init() < 0;
}

static void message(const uint8_t *data, size_t size)
{
    static irohds_proto_msg m;
    if (irohds_proto_decode(&m, data, size) != 0)
        return;
    irohds_proto_str ns;
    int64_t ts;
    switch (m.kind) {
    case IROHDS_PROTO_HAVE: ns = m.have.result.ns, ts = m.have.timestamp_us; break;
    case IROHDS_PROTO_QUERY: ns = m.query.ns, ts = m.query.timestamp_us; break;
    default:
        ns = m.claim.ns, ts = m.claim.timestamp_us;
        irohds_proto_claim_expires_us(&m.claim);
        break;
    }
    int rc = irohds_proto_verify(&m, ns.p, ns.len, ts, NULL);
    if (rc != 0 && rc != -EBADMSG)
        __builtin_trap();
    if (m.kind == IROHDS_PROTO_HAVE && m.have.files_inline)
        irohds_proto_have_check_files(&m.have, m.files, m.have.result.nfiles);
}

static void file_list(const uint8_t *data, size_t size)
{
    static irohds_proto_file files[256];
    static uint8_t again[1 << 16];
    uint32_t n;
    if (irohds_proto_decode_files(data, size, files, 256, &n) != 0)
        return;
    size_t len;
    if (irohds_proto_encode_files(files, n, again, sizeof again, &len) != 0 || len != size ||
        memcmp(again, data, size) != 0)
        __builtin_trap();
    uint8_t digest[32];
    if (irohds_proto_files_digest(files, n, digest) != 0)
        __builtin_trap();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    message(data, size);
    file_list(data, size);
    return 0;
}
