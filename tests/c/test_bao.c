/*
 * tests/c/test_bao.c: bao outboards with chunk groups against the vectors.
 *
 * Expected values come from outside this code base:
 *  - bao/test_vectors_chunk_groups_16k.json (bao's chunk_groups branch,
 *    16 KiB groups = group_log 4): root hash, outboard (bao's outboard
 *    encoding = 8-byte LE size + our prefix-less outboard, compared by its
 *    BLAKE3 as the file gives it), combined encoding (size + parents and
 *    group data interleaved in pre-order, rebuilt here from our outboard, so
 *    it checks the pre-order layout too), outboard length;
 *  - bao/test_vectors.json (released bao, 1 KiB chunks = group_log 0): the
 *    same checks, which pins down the tree shape at the finest grain;
 *  - bao/bao_tree_cases.json layout facts that apply to outboards: the root
 *    is plain BLAKE3 for every group size, outboard = pairs * 64 bytes.
 * Then verify(): accepts a good outboard, rejects the corruption offsets the
 * vectors list, any flipped outboard byte, flipped data bytes all over, and
 * a wrong outboard length.
 *
 * Usage: test_bao TESTDATA_DIR.  Prints "N passed, M failed".
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "vectors.h"

#include "hash/bao.h"
#include "hash/blake3.h"

static void put_le64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

/* Combined encoding from data + pre-order outboard: a subtree of more than
 * one group is its parent node, then its left and right subtrees. */
static void encode_rec(const uint8_t *data, uint64_t len, uint64_t group_bytes,
                       const uint8_t *ob, size_t *ob_pos, uint8_t *out, size_t *out_pos)
{
    if (len <= group_bytes) {
        memcpy(out + *out_pos, data, len);
        *out_pos += len;
        return;
    }
    memcpy(out + *out_pos, ob + *ob_pos, 64);
    *out_pos += 64;
    *ob_pos += 64;
    uint64_t chunks_but_last = (len - 1) / 1024, left = 1024;
    while (left * 2 <= chunks_but_last * 1024)
        left *= 2;
    encode_rec(data, left, group_bytes, ob, ob_pos, out, out_pos);
    encode_rec(data + left, len - left, group_bytes, ob, ob_pos, out, out_pos);
}

static void flip_checks(const char *tag, uint8_t *data, uint64_t len, unsigned glog,
                        uint8_t *ob, uint64_t oblen, const uint8_t root[32],
                        json_object *ocorr, json_object *icorr)
{
    CHECK(irohds_bao_verify(data, len, glog, ob, oblen, root) == 0, "%s: verify good", tag);
    /* Offsets from the vectors are into bao's prefixed outboard; offsets
     * below 8 hit the size prefix, which our outboard does not have. */
    for (size_t i = 0; ocorr && i < json_object_array_length(ocorr); i++) {
        int64_t off = json_object_get_int64(json_object_array_get_idx(ocorr, i)) - 8;
        if (off < 0)
            continue;
        ob[off] ^= 1;
        CHECK(irohds_bao_verify(data, len, glog, ob, oblen, root) == -EBADMSG,
              "%s: outboard corruption at %lld accepted", tag, (long long)off);
        ob[off] ^= 1;
    }
    for (size_t i = 0; icorr && i < json_object_array_length(icorr); i++) {
        int64_t off = json_object_get_int64(json_object_array_get_idx(icorr, i));
        data[off] ^= 1;
        CHECK(irohds_bao_verify(data, len, glog, ob, oblen, root) == -EBADMSG,
              "%s: input corruption at %lld accepted", tag, (long long)off);
        data[off] ^= 1;
    }
}

static void test_vector_file(const char *dir, const char *file, unsigned glog)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/bao/%s", dir, file);
    json_object *root = json_object_from_file(path);
    CHECK(root != NULL, "cannot read %s", path);
    if (!root)
        return;
    uint64_t group_bytes = (uint64_t)1024 << glog;

    json_object *arr;
    json_object_object_get_ex(root, "hash", &arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        size_t len = (size_t)jint(c, "input_len");
        uint8_t exp[32], got[32], *in = bao_input(len);
        unhex32(jstr(c, "bao_hash"), exp);
        uint8_t *ob = malloc(irohds_bao_outboard_size(len, glog) + 1);
        irohds_bao_outboard(in, len, glog, ob, got);
        CHECK(memcmp(got, exp, 32) == 0, "%s hash len %zu", file, len);
        free(ob);
        free(in);
    }

    json_object_object_get_ex(root, "outboard", &arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        size_t len = (size_t)jint(c, "input_len");
        uint64_t out_len = (uint64_t)jint(c, "output_len");
        uint64_t oblen = irohds_bao_outboard_size(len, glog);
        CHECK(oblen + 8 == out_len, "%s outboard_size(%zu) = %llu, vector says %llu + 8", file,
              len, (unsigned long long)oblen, (unsigned long long)(out_len - 8));
        uint8_t *in = bao_input(len);
        uint8_t *enc = malloc(oblen + 8);
        uint8_t root_hash[32], exp_root[32], exp_enc[32], got_enc[32];
        put_le64(enc, len);
        irohds_bao_outboard(in, len, glog, enc + 8, root_hash);
        unhex32(jstr(c, "bao_hash"), exp_root);
        unhex32(jstr(c, "encoded_blake3"), exp_enc);
        CHECK(memcmp(root_hash, exp_root, 32) == 0, "%s outboard root len %zu", file, len);
        irohds_blake3(enc, oblen + 8, got_enc);
        CHECK(memcmp(got_enc, exp_enc, 32) == 0, "%s outboard bytes len %zu", file, len);
        json_object *oc, *ic;
        json_object_object_get_ex(c, "outboard_corruptions", &oc);
        json_object_object_get_ex(c, "input_corruptions", &ic);
        char tag[128];
        snprintf(tag, sizeof tag, "%s len %zu", file, len);
        flip_checks(tag, in, len, glog, enc + 8, oblen, root_hash, oc, ic);
        free(enc);
        free(in);
    }

    json_object_object_get_ex(root, "encode", &arr);
    for (size_t i = 0; i < json_object_array_length(arr); i++) {
        json_object *c = json_object_array_get_idx(arr, i);
        size_t len = (size_t)jint(c, "input_len");
        uint64_t out_len = (uint64_t)jint(c, "output_len");
        uint64_t oblen = irohds_bao_outboard_size(len, glog);
        CHECK(8 + oblen + len == out_len, "%s encode length len %zu", file, len);
        uint8_t *in = bao_input(len), *ob = malloc(oblen + 1), *enc = malloc(8 + oblen + len);
        uint8_t root_hash[32], exp_enc[32], got_enc[32];
        irohds_bao_outboard(in, len, glog, ob, root_hash);
        put_le64(enc, len);
        size_t ob_pos = 0, pos = 8;
        encode_rec(in, len, group_bytes, ob, &ob_pos, enc, &pos);
        CHECK(ob_pos == oblen && pos == 8 + oblen + len, "%s encode consumed len %zu", file,
              len);
        unhex32(jstr(c, "encoded_blake3"), exp_enc);
        irohds_blake3(enc, pos, got_enc);
        CHECK(memcmp(got_enc, exp_enc, 32) == 0, "%s encoded bytes len %zu", file, len);
        free(enc);
        free(ob);
        free(in);
    }
    json_object_put(root);
}

/* bao_tree_cases.json layout facts: root = plain BLAKE3 for every group
 * size (32 KiB of make_test_data, and a 1-byte input); outboard bytes =
 * (groups - 1) pairs * 64. */
static void test_layout_facts(void)
{
    size_t len = 32768;
    uint8_t *in = malloc(len);
    for (size_t i = 0; i < len; i++)
        in[i] = (uint8_t)(i / 1024); /* make_test_data */
    uint8_t exp[32];
    irohds_blake3(in, len, exp);
    for (unsigned g = 0; g <= 4; g++) {
        uint64_t oblen = irohds_bao_outboard_size(len, g);
        uint64_t groups = len / (1024u << g);
        CHECK(oblen == (groups - 1) * 64, "outboard_size(32768, %u) = %llu", g,
              (unsigned long long)oblen);
        uint8_t *ob = malloc(oblen + 1), root[32];
        irohds_bao_outboard(in, len, g, ob, root);
        CHECK(memcmp(root, exp, 32) == 0, "root is BLAKE3 at group_log %u", g);
        CHECK(irohds_bao_verify(in, len, g, ob, oblen, exp) == 0, "verify group_log %u", g);
        free(ob);
    }
    uint8_t one = 7, root[32], dummy[1];
    irohds_blake3(&one, 1, exp);
    for (unsigned g = 1; g <= 3; g++) {
        CHECK(irohds_bao_outboard_size(1, g) == 0, "1-byte outboard empty (g=%u)", g);
        irohds_bao_outboard(&one, 1, g, dummy, root);
        CHECK(memcmp(root, exp, 32) == 0, "1-byte root at group_log %u", g);
    }
    CHECK(irohds_bao_outboard_size(0, 4) == 0 && irohds_bao_outboard_size(16384, 4) == 0 &&
              irohds_bao_outboard_size(16385, 4) == 64,
          "outboard_size at the first group boundary");
    free(in);
}

/* Sizes well past the vectors: consistency with plain BLAKE3, a flip in
 * every outboard byte, data flips spread over the input, length mismatch. */
static void test_large(void)
{
    static const size_t sizes[] = {100 * 16384, 100 * 16384 + 5, 64 * 16384, 1000003};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        size_t len = sizes[s];
        uint8_t *in = malloc(len);
        uint64_t x = 88172645463325252ull + s;
        for (size_t i = 0; i < len; i++) {
            x ^= x << 13, x ^= x >> 7, x ^= x << 17;
            in[i] = (uint8_t)x;
        }
        uint64_t oblen = irohds_bao_outboard_size(len, IROHDS_BAO_GROUP_LOG);
        uint8_t *ob = malloc(oblen), root[32], exp[32];
        irohds_bao_outboard(in, len, IROHDS_BAO_GROUP_LOG, ob, root);
        irohds_blake3(in, len, exp);
        CHECK(memcmp(root, exp, 32) == 0, "large root len %zu", len);
        int bad = 0;
        for (uint64_t i = 0; i < oblen; i += (s == 0 ? 1 : 61)) {
            ob[i] ^= 0x80;
            bad += irohds_bao_verify(in, len, IROHDS_BAO_GROUP_LOG, ob, oblen, root) != -EBADMSG;
            ob[i] ^= 0x80;
        }
        CHECK(bad == 0, "len %zu: %d outboard flips accepted", len, bad);
        bad = 0;
        for (size_t i = 0; i < len; i += 4099) {
            in[i] ^= 1;
            bad += irohds_bao_verify(in, len, IROHDS_BAO_GROUP_LOG, ob, oblen, root) != -EBADMSG;
            in[i] ^= 1;
        }
        in[len - 1] ^= 1;
        bad += irohds_bao_verify(in, len, IROHDS_BAO_GROUP_LOG, ob, oblen, root) != -EBADMSG;
        in[len - 1] ^= 1;
        CHECK(bad == 0, "len %zu: %d data flips accepted", len, bad);
        root[31] ^= 1;
        CHECK(irohds_bao_verify(in, len, IROHDS_BAO_GROUP_LOG, ob, oblen, root) == -EBADMSG,
              "len %zu: wrong root accepted", len);
        root[31] ^= 1;
        CHECK(irohds_bao_verify(in, len, IROHDS_BAO_GROUP_LOG, ob, oblen - 64, root) == -EBADMSG,
              "len %zu: short outboard accepted", len);
        CHECK(irohds_bao_verify(in, len, IROHDS_BAO_GROUP_LOG, ob, oblen, root) == 0,
              "len %zu: verify good", len);
        free(ob);
        free(in);
    }
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TESTDATA_DIR\n", argv[0]);
        return 2;
    }
    /* Every implementation, since bao has its own batched subtree path. */
    for (int impl = 0; impl <= (int)irohds_blake3_best_impl(); impl++) {
        irohds_blake3_set_impl((irohds_blake3_impl)impl);
        test_vector_file(argv[1], "test_vectors_chunk_groups_16k.json", 4);
        test_vector_file(argv[1], "test_vectors.json", 0);
        test_layout_facts();
    }
    irohds_blake3_set_impl(irohds_blake3_best_impl());
    test_large();
    return check_summary();
}
