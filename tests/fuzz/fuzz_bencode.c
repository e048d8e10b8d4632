/*
 * fuzz_bencode: the strict bencode decoder of src/dht on arbitrary bytes.
 * Whatever the input: no read past it (ASan), no undefined behaviour
 * (UBSan), a tree whose spans and skips are consistent, and whatever
 * decodes re-encodes to the very same bytes (the decoder takes the
 * canonical form only, and canonical bencode is unique).  Smaller node and
 * depth limits must refuse with their own errors, never crash.
 */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht.h"

#define CAP 4096

static irohds_benc_node nodes[CAP];

/* Every node's span lies inside its parent's and next skips forward. */
static void check_tree(const irohds_benc *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const irohds_benc_node *nd = &d->nodes[i];
        if ((size_t)nd->off + nd->len > d->len || nd->next <= i || nd->next > d->n)
            __builtin_trap();
        if (nd->type == IROHDS_BENC_STR && (nd->s < d->buf || nd->s + nd->slen > d->buf + d->len))
            __builtin_trap();
        if (nd->type == IROHDS_BENC_DICT) {
            uint32_t k = (uint32_t)i + 1;
            for (uint32_t c = 0; c < nd->count; c++) {
                char key[8] = {0};
                const irohds_benc_node *kn = &d->nodes[k];
                if (kn->type != IROHDS_BENC_STR)
                    __builtin_trap();
                memcpy(key, kn->s, kn->slen < 7 ? kn->slen : 7);
                if (kn->slen < 7 && strlen(key) == kn->slen &&
                    irohds_benc_dict_get(d, (int)i, key) != (int)k + 1)
                    __builtin_trap(); /* every short key is found where it is */
                k = d->nodes[k + 1].next;
            }
            if (k != nd->next)
                __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    irohds_benc d;
    int rc = irohds_benc_decode(&d, data, size, nodes, CAP, IROHDS_BENC_MAX_DEPTH);
    if (rc == 0) {
        check_tree(&d);
        uint8_t *out = malloc(size);
        irohds_benc_writer w;
        irohds_benc_writer_init(&w, out, size);
        irohds_benc_node_encode(&w, &d, 0);
        if (w.err || w.len != size || memcmp(out, data, size) != 0)
            __builtin_trap();
        free(out);
    } else if (rc != -EBADMSG && rc != -EOVERFLOW && rc != -E2BIG && rc != -ELOOP) {
        __builtin_trap();
    }
    int small = irohds_benc_decode(&d, data, size, nodes, 8, 3);
    if (small == 0 && rc != 0)
        __builtin_trap(); /* tighter limits never accept more */
    return 0;
}
