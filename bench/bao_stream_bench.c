/*
 * bench/bao_stream_bench.c: throughput of the bao stream encoder and
 * decoder (blobs/blobs.h) for a whole-blob transfer of a blob in memory,
 * one core, against raw BLAKE3 of the same buffer in the same run.  BLAKE3
 * is the anchor because a receiver cannot verify faster than it hashes.
 *
 *   bao_stream_bench [MB] [RUNS]      defaults: 256 MiB, 5 runs
 *
 * Each figure is the median of RUNS:
 *   blake3        irohds_blake3 of the whole blob (best implementation);
 *   encode        the provider pulls the response in 64 KiB pieces (a send
 *                 buffer's worth); blob and outboard are read by memcpy;
 *   decode 64K    the response fed in 64 KiB pieces (groups straddle pieces,
 *                 so some are assembled first), every parent and group
 *                 verified, a sink that keeps nothing;
 *   decode 1200   the same in 1200-byte pieces, a QUIC datagram's payload:
 *                 every group is assembled from pieces;
 *   decode+copy   64 KiB pieces, the sink copying data and outboard pairs
 *                 to their places in destination buffers (a download).
 * Destination buffers are touched before timing (first-touch page faults
 * would be measured otherwise, see bench/README.md).
 *
 * Output: "<name> <MB/s> <ratio>" per line, MB = 10^6 bytes of blob per
 * second, ratio = figure / blake3 (1.00: as fast as hashing).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "blobs/blobs.h"
#include "hash/bao.h"
#include "hash/blake3.h"
#include "timing.h"

#define PIECE (64 * 1024)

typedef struct {
    const uint8_t *data, *ob;
    uint8_t *data_out, *ob_out;
} blob_t;

static int read_mem(void *ctx, int which, uint64_t off, uint8_t *buf, size_t len)
{
    const blob_t *b = ctx;
    memcpy(buf, (which == IROHDS_BAO_DATA ? b->data : b->ob) + off, len);
    return 0;
}

static int copy_data(void *ctx, uint64_t off, const uint8_t *p, size_t len)
{
    memcpy(((blob_t *)ctx)->data_out + off, p, len);
    return 0;
}

static int copy_parent(void *ctx, uint64_t off, const uint8_t pair[64])
{
    memcpy(((blob_t *)ctx)->ob_out + off, pair, 64);
    return 0;
}

static volatile uint8_t sink_byte; /* keeps results observable */

static double time_blake3(const uint8_t *data, size_t len)
{
    uint8_t out[32];
    double t0 = now();
    irohds_blake3(data, len, out);
    sink_byte ^= out[0];
    return now() - t0;
}

/* Pull the whole response through a 64 KiB buffer; stream (if not NULL)
 * keeps a copy for the decode runs (copied outside the timing). */
static double time_encode(blob_t *b, uint64_t size, uint8_t *stream)
{
    static irohds_bao_encoder enc;
    static uint8_t piece[PIECE];
    irohds_blobs_ranges all;
    irohds_blobs_ranges_all(&all);
    irohds_bao_encoder_init(&enc, size, &all, IROHDS_BAO_GROUP_LOG);
    double spent = 0;
    uint64_t off = 0;
    while (!irohds_bao_encoder_done(&enc)) {
        size_t n;
        double t0 = now();
        if (irohds_bao_encoder_pull(&enc, piece, sizeof piece, &n, read_mem, b) != 0)
            return -1;
        spent += now() - t0;
        if (stream)
            memcpy(stream + off, piece, n);
        off += n;
        sink_byte ^= piece[0];
    }
    return spent;
}

static double time_decode(blob_t *b, const uint8_t root[32], const uint8_t *stream,
                          uint64_t len, size_t piece, bool copy)
{
    static irohds_bao_decoder dec;
    irohds_blobs_ranges all;
    irohds_blobs_ranges_all(&all);
    irohds_bao_sink sink = {copy ? copy_data : NULL, copy ? copy_parent : NULL, b};
    irohds_bao_decoder_init(&dec, root, &all, IROHDS_BAO_GROUP_LOG, &sink);
    double t0 = now();
    for (uint64_t off = 0; off < len; off += piece) {
        size_t k = len - off < piece ? (size_t)(len - off) : piece;
        if (irohds_bao_decoder_feed(&dec, stream + off, k) != 0)
            return -1;
    }
    double t = now() - t0;
    return irohds_bao_decoder_finish(&dec) == 0 ? t : -1;
}

static void report(const char *name, double mbs, double anchor)
{
    printf("%s %.0f %.2f\n", name, mbs, mbs / anchor);
    fflush(stdout);
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? (size_t)atol(argv[1]) : 256;
    int runs = argc > 2 ? atoi(argv[2]) : 5;
    if (mb == 0 || runs < 1 || runs > 99) {
        fprintf(stderr, "usage: %s [MB] [RUNS (1-99)]\n", argv[0]);
        return 2;
    }
    uint64_t size = (uint64_t)mb << 20;
    uint64_t ob_len = irohds_bao_outboard_size(size, IROHDS_BAO_GROUP_LOG);
    uint64_t enc_len = 8 + size + ob_len;
    uint8_t *data = malloc(size), *ob = malloc(ob_len), *stream = malloc(enc_len);
    uint8_t *data_out = malloc(size), *ob_out = malloc(ob_len), root[32];
    if (!data || !ob || !stream || !data_out || !ob_out)
        return 1;
    fill(data, size);
    memset(data_out, 0, size);
    memset(ob_out, 0, ob_len);
    irohds_bao_outboard(data, size, IROHDS_BAO_GROUP_LOG, ob, root);
    blob_t b = {data, ob, data_out, ob_out};
    if (time_encode(&b, size, stream) < 0)
        return 1;

    double t[5][99];
    for (int r = 0; r < runs; r++) { /* interleaved, so drift hits all alike */
        t[0][r] = time_blake3(data, size);
        t[1][r] = time_encode(&b, size, NULL);
        t[2][r] = time_decode(&b, root, stream, enc_len, PIECE, false);
        t[3][r] = time_decode(&b, root, stream, enc_len, 1200, false);
        t[4][r] = time_decode(&b, root, stream, enc_len, PIECE, true);
        for (int k = 0; k < 5; k++)
            if (t[k][r] < 0) {
                fprintf(stderr, "bao_stream_bench: run %d of figure %d failed\n", r, k);
                return 1;
            }
    }
    if (memcmp(data_out, data, size) != 0 || memcmp(ob_out, ob, ob_len) != 0) {
        fprintf(stderr, "bao_stream_bench: the decoded copy differs\n");
        return 1;
    }
    static const char *names[5] = {"blake3", "encode", "decode_64k", "decode_1200",
                                   "decode_copy_64k"};
    double anchor = (double)size / median(t[0], (size_t)runs) / 1e6;
    printf("# %zu MiB, %s, median of %d; MB/s and ratio to blake3\n", mb,
           irohds_blake3_impl_name(irohds_blake3_get_impl()), runs);
    for (int k = 0; k < 5; k++)
        report(names[k], (double)size / median(t[k], (size_t)runs) / 1e6, anchor);
    free(data);
    free(ob);
    free(stream);
    free(data_out);
    free(ob_out);
    return 0;
}
