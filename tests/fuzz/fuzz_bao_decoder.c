/*
 * fuzz_bao_decoder: the bao stream decoder on hostile responses.
 *
 * The blobs are fixed and known (sizes at chunk and group edges, the same
 * bytes every run), so the decoder's root is fixed too.  Input layout:
 *   [0]  mode: bit 0 raw stream / patched true response; bits 1-3 the blob;
 *        bits 4-6 group_log (0-4)
 *   [1..3] the requested ranges (kind, chunk, width)
 *   [4]  seed for cutting the stream into pieces (1 byte to 16 KiB)
 *   rest raw mode: the response bytes.  Patched mode: 4-byte patches on
 *        the true response (24-bit offset, then a byte to xor in; 0 cuts
 *        the stream there).
 * Whatever happens, every byte released must be the blob's own, the stream
 * never reads outside its buffers (ASan), and the unpatched true response
 * must decode completely with the size verified when it reaches the end.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "blobs/blobs.h"
#include "hash/bao.h"

#define MAX_BLOB 20000
static const uint64_t blob_sizes[] = {0, 1, 1024, 1025, 5000, 16384, 16385, 20000};

static uint8_t blob[MAX_BLOB];

typedef struct {
    bool ready;
    uint8_t root[32];
    uint8_t *ob;
    uint64_t ob_len;
} prepared_t;

static prepared_t prepared[8][IROHDS_BAO_MAX_GROUP_LOG + 1];

static prepared_t *prepare(unsigned which, unsigned g)
{
    static bool blob_ready;
    if (!blob_ready) {
        for (size_t i = 0; i < MAX_BLOB; i++)
            blob[i] = (uint8_t)(i * 131 + (i >> 10));
        blob_ready = true;
    }
    prepared_t *p = &prepared[which][g];
    if (!p->ready) {
        p->ob_len = irohds_bao_outboard_size(blob_sizes[which], g);
        p->ob = malloc(p->ob_len + 1);
        irohds_bao_outboard(blob, blob_sizes[which], g, p->ob, p->root);
        p->ready = true;
    }
    return p;
}

typedef struct {
    uint64_t size;
    const prepared_t *prep;
    irohds_bao_decoder *dec;
    unsigned g;
} ctx_t;

static int src_read(void *ctx, int which, uint64_t off, uint8_t *buf, size_t len)
{
    const ctx_t *c = ctx;
    if (which == IROHDS_BAO_DATA)
        memcpy(buf, blob + off, len);
    else
        memcpy(buf, c->prep->ob + off, len);
    return 0;
}

static int on_data(void *ctx, uint64_t off, const uint8_t *p, size_t len)
{
    const ctx_t *c = ctx;
    if (off > c->size || len > c->size - off || memcmp(p, blob + off, len) != 0)
        __builtin_trap();
    return 0;
}

/* A pair's offset is only as good as the claimed size, but it must lie in
 * the outboard of that size. */
static int on_parent(void *ctx, uint64_t off, const uint8_t pair[64])
{
    const ctx_t *c = ctx;
    uint64_t claimed;
    (void)pair;
    if (!irohds_bao_decoder_size(c->dec, &claimed) ||
        off + 64 > irohds_bao_outboard_size(claimed, c->g))
        __builtin_trap();
    return 0;
}

static void pick_ranges(const uint8_t *in, irohds_blobs_ranges *rs)
{
    uint64_t c = in[1] % 40, w = 1 + in[2] % 20;
    switch (in[0] % 5) {
    case 0: irohds_blobs_ranges_all(rs); break;
    case 1: irohds_blobs_ranges_from(rs, c); break;
    case 2: irohds_blobs_ranges_single(rs, c, c + w); break;
    case 3: irohds_blobs_ranges_from(rs, UINT64_MAX); break;
    default:
        irohds_blobs_ranges_single(rs, c, c + w);
        irohds_blobs_ranges_add(rs, c + w + 1 + in[2] % 7, c + 2 * w + 9);
        break;
    }
}

static uint8_t *true_response(ctx_t *c, const irohds_blobs_ranges *rs, size_t *len)
{
    static irohds_bao_encoder enc;
    if (irohds_bao_encoder_init(&enc, c->size, rs, c->g) != 0)
        __builtin_trap();
    *len = (size_t)irohds_bao_encoder_total(&enc);
    uint8_t *out = malloc(*len + 1);
    size_t n;
    if (irohds_bao_encoder_pull(&enc, out, *len, &n, src_read, c) != 0 || n != *len ||
        !irohds_bao_encoder_done(&enc))
        __builtin_trap();
    return out;
}

/* Apply 4-byte patches; returns the (maybe cut) length, *patched if any. */
static size_t patch(uint8_t *s, size_t len, const uint8_t *p, size_t n, bool *patched)
{
    *patched = false;
    for (size_t i = 0; i + 4 <= n; i += 4) {
        size_t off = ((size_t)p[i] | (size_t)p[i + 1] << 8 | (size_t)p[i + 2] << 16) % (len + 1);
        if (p[i + 3] == 0) {
            *patched |= off < len;
            len = off;
        } else if (off < len) {
            s[off] ^= p[i + 3];
            *patched = true;
        }
    }
    return len;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static irohds_bao_decoder dec;
    if (size < 5)
        return 0;
    unsigned which = (data[0] >> 1) % 8, g = (data[0] >> 4) % (IROHDS_BAO_MAX_GROUP_LOG + 1);
    ctx_t c = {.size = blob_sizes[which], .prep = prepare(which, g), .dec = &dec, .g = g};
    irohds_blobs_ranges rs;
    pick_ranges(data + 1, &rs);

    uint8_t *stream;
    size_t len;
    bool patched = true;
    if (data[0] & 1) {
        len = size - 5;
        stream = malloc(len + 1);
        memcpy(stream, data + 5, len);
    } else {
        stream = true_response(&c, &rs, &len);
        len = patch(stream, len, data + 5, size - 5, &patched);
    }

    irohds_bao_sink sink = {on_data, on_parent, &c};
    if (irohds_bao_decoder_init(&dec, c.prep->root, &rs, g, &sink) != 0)
        __builtin_trap();
    uint64_t seed = data[4] * 0x9E3779B97F4A7C15ull + 1;
    int err = 0;
    for (size_t off = 0; off < len && !err;) {
        seed ^= seed << 13, seed ^= seed >> 7, seed ^= seed << 17;
        size_t k = 1 + (size_t)(seed % (seed & 1 ? 17 : 16384));
        if (k > len - off)
            k = len - off;
        err = irohds_bao_decoder_feed(&dec, stream + off, k);
        off += k;
    }
    if (!err)
        err = irohds_bao_decoder_finish(&dec);
    uint64_t claimed;
    if (!patched && (err || !irohds_bao_decoder_done(&dec)))
        __builtin_trap(); /* the true response must decode */
    if (irohds_bao_decoder_size_verified(&dec) &&
        (!irohds_bao_decoder_size(&dec, &claimed) || claimed != c.size))
        __builtin_trap(); /* a verified size is the real one */
    free(stream);
    return 0;
}
