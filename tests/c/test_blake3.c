/*
 * tests/c/test_blake3.c: BLAKE3 against independent expected values.
 *
 * 1. Every case of the official test_vectors.json (hash, keyed_hash,
 *    derive_key, full extended output), on every implementation this CPU
 *    supports, with the input fed in one update and in odd-sized pieces.
 * 2. Agreement with the b3sum binary (hash, --keyed, --derive-key, --length)
 *    on pseudo-random inputs of sizes around every block, chunk and subtree
 *    boundary, again on every implementation and both feeding patterns.
 * 3. XOF seek consistency and the bao subtree helpers (subtree_cv,
 *    parent_cv) rebuilding the plain hash.
 *
 * Usage: test_blake3 TESTDATA_DIR.  One line per failure, then
 * "N passed, M failed"; exit status 1 on any failure.
 */
#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"

#include "hash/blake3.h"




static int unhex(const char *hex, uint8_t *out, size_t cap)
{
    size_t n = strlen(hex);
    if (n % 2 || n / 2 > cap)
        return -1;
    for (size_t i = 0; i < n / 2; i++) {
        unsigned v;
        if (sscanf(hex + 2 * i, "%2x", &v) != 1)
            return -1;
        out[i] = (uint8_t)v;
    }
    return (int)(n / 2);
}

static void tohex(const uint8_t *b, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", b[i]);
}

/* ------------------------------------------------------- feeding styles */

enum mode { M_HASH, M_KEYED, M_DERIVE };
static const char *mode_name[] = {"hash", "keyed_hash", "derive_key"};

static void init_mode(irohds_blake3_hasher *h, enum mode m, const uint8_t key[32],
                      const char *context)
{
    if (m == M_HASH)
        irohds_blake3_hasher_init(h);
    else if (m == M_KEYED)
        irohds_blake3_hasher_init_keyed(h, key);
    else
        irohds_blake3_hasher_init_derive_key(h, context);
}

/* Odd piece sizes, so updates start and end inside blocks and chunks and
 * sometimes span many chunks (which takes the wide SIMD path). */
static const size_t pieces[] = {1, 63, 64, 65, 7, 1023, 1024, 1025, 3, 4097, 17, 65537, 200000};

static void feed(irohds_blake3_hasher *h, const uint8_t *in, size_t len, int split)
{
    if (!split) {
        irohds_blake3_hasher_update(h, in, len);
        return;
    }
    size_t off = 0, i = 0;
    while (off < len) {
        size_t take = pieces[i++ % (sizeof pieces / sizeof pieces[0])];
        if (take > len - off)
            take = len - off;
        irohds_blake3_hasher_update(h, in + off, take);
        off += take;
    }
}

static void fill_vector_input(uint8_t *buf, size_t len)
{
    for (size_t i = 0; i < len; i++)
        buf[i] = (uint8_t)(i % 251);
}

/* ------------------------------------------------------ official vectors */

static void test_vectors(const char *dir, int nimpl)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/blake3/test_vectors.json", dir);
    json_object *root = json_object_from_file(path);
    CHECK(root != NULL, "cannot read %s", path);
    if (!root)
        return;
    json_object *jkey, *jctx, *jcases;
    json_object_object_get_ex(root, "key", &jkey);
    json_object_object_get_ex(root, "context_string", &jctx);
    json_object_object_get_ex(root, "cases", &jcases);
    const char *ctx = json_object_get_string(jctx);
    uint8_t key[32];
    memcpy(key, json_object_get_string(jkey), 32);
    size_t ncases = json_object_array_length(jcases);
    CHECK(ncases >= 30, "only %zu vector cases", ncases);

    for (int impl = 0; impl < nimpl; impl++) {
        irohds_blake3_set_impl((irohds_blake3_impl)impl);
        const char *iname = irohds_blake3_impl_name((irohds_blake3_impl)impl);
        for (size_t c = 0; c < ncases; c++) {
            json_object *jc = json_object_array_get_idx(jcases, c);
            json_object *jlen;
            json_object_object_get_ex(jc, "input_len", &jlen);
            size_t len = (size_t)json_object_get_int64(jlen);
            uint8_t *in = malloc(len + 1);
            fill_vector_input(in, len);
            for (int m = 0; m < 3; m++) {
                json_object *jexp;
                json_object_object_get_ex(jc, mode_name[m], &jexp);
                uint8_t exp[512], got[512];
                int elen = unhex(json_object_get_string(jexp), exp, sizeof exp);
                for (int split = 0; split < 2; split++) {
                    irohds_blake3_hasher h;
                    init_mode(&h, (enum mode)m, key, ctx);
                    feed(&h, in, len, split);
                    irohds_blake3_hasher_finalize(&h, got, (size_t)elen);
                    CHECK(memcmp(got, exp, (size_t)elen) == 0,
                          "vector %s len %zu %s split=%d (%d bytes)", iname, len, mode_name[m],
                          split, elen);
                    /* The default 32-byte output is a prefix of the XOF. */
                    irohds_blake3_hasher_finalize(&h, got, 32);
                    CHECK(memcmp(got, exp, 32) == 0, "vector %s len %zu %s 32-byte", iname,
                          len, mode_name[m]);
                }
            }
            if (len <= 200000) {
                uint8_t got[32], exp[512];
                json_object *jexp;
                json_object_object_get_ex(jc, "hash", &jexp);
                unhex(json_object_get_string(jexp), exp, sizeof exp);
                irohds_blake3(in, len, got);
                CHECK(memcmp(got, exp, 32) == 0, "one-shot %s len %zu", iname, len);
            }
            free(in);
        }
    }
    json_object_put(root);
}

/* ---------------------------------------------------------------- b3sum */

static uint64_t rng_state = 0x9E3779B97F4A7C15ull;

static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* Runs b3sum on path with extra args; key (32 bytes) is piped in for --keyed. */
static int b3sum(const char *args, const char *path, const uint8_t *key, uint8_t *out,
                 size_t out_len)
{
    char cmd[8192];
    if (key) {
        char kf[] = "/tmp/irohds_b3key_XXXXXX";
        int fd = mkstemp(kf);
        if (fd < 0 || write(fd, key, 32) != 32)
            return -1;
        close(fd);
        snprintf(cmd, sizeof cmd, "b3sum --no-names --no-mmap %s '%s' < '%s'", args, path, kf);
        FILE *p = popen(cmd, "r");
        char line[8192] = "";
        int ok = p && fgets(line, sizeof line, p) != NULL;
        if (p)
            pclose(p);
        unlink(kf);
        line[strcspn(line, "\n")] = 0;
        return ok && unhex(line, out, out_len) == (int)out_len ? 0 : -1;
    }
    snprintf(cmd, sizeof cmd, "b3sum --no-names --no-mmap %s '%s'", args, path);
    FILE *p = popen(cmd, "r");
    char line[8192] = "";
    int ok = p && fgets(line, sizeof line, p) != NULL;
    if (p)
        pclose(p);
    line[strcspn(line, "\n")] = 0;
    return ok && unhex(line, out, out_len) == (int)out_len ? 0 : -1;
}

static void test_b3sum(int nimpl)
{
    size_t sizes[64] = {0, 1, 63, 64, 65, 1023, 1024, 1025, 2048, 3072, 4096 + 1, 16383,
                        16384, 16385, 31 * 1024, 65536, 65536 + 1023, (1u << 20) + 17,
                        9 * (1u << 20) + 12345};
    size_t nsizes = 19;
    while (nsizes < 27)
        sizes[nsizes++] = (size_t)(rnd() % (3u << 20));
    size_t maxlen = 0;
    for (size_t i = 0; i < nsizes; i++)
        if (sizes[i] > maxlen)
            maxlen = sizes[i];
    uint8_t *buf = malloc(maxlen + 1);
    for (size_t i = 0; i < maxlen; i++)
        buf[i] = (uint8_t)rnd();
    uint8_t key[32];
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)rnd();
    const char *ctx = "irohds test 2024-01-01 derive";

    char path[] = "/tmp/irohds_b3test_XXXXXX";
    int fd = mkstemp(path);
    CHECK(fd >= 0, "mkstemp");
    if (fd < 0) {
        free(buf);
        return;
    }
    close(fd);
    for (size_t s = 0; s < nsizes; s++) {
        size_t len = sizes[s];
        FILE *f = fopen(path, "wb");
        CHECK(f && fwrite(buf, 1, len, f) == len, "writing %zu bytes", len);
        if (f)
            fclose(f);
        uint8_t exp[3][32], exp_long[300];
        char args[256];
        int rc = b3sum("", path, NULL, exp[M_HASH], 32);
        rc |= b3sum("--keyed", path, key, exp[M_KEYED], 32);
        snprintf(args, sizeof args, "--derive-key '%s'", ctx);
        rc |= b3sum(args, path, NULL, exp[M_DERIVE], 32);
        rc |= b3sum("--length 300", path, NULL, exp_long, 300);
        CHECK(rc == 0, "b3sum failed on %zu bytes", len);
        if (rc)
            continue;
        for (int impl = 0; impl < nimpl; impl++) {
            irohds_blake3_set_impl((irohds_blake3_impl)impl);
            const char *iname = irohds_blake3_impl_name((irohds_blake3_impl)impl);
            for (int m = 0; m < 3; m++) {
                for (int split = 0; split < 2; split++) {
                    irohds_blake3_hasher h;
                    init_mode(&h, (enum mode)m, key, ctx);
                    feed(&h, buf, len, split);
                    uint8_t got[32];
                    irohds_blake3_hasher_finalize(&h, got, 32);
                    char gh[65], eh[65];
                    tohex(got, 32, gh);
                    tohex(exp[m], 32, eh);
                    CHECK(memcmp(got, exp[m], 32) == 0, "b3sum %s %s len %zu split=%d: %s != %s",
                          iname, mode_name[m], len, split, gh, eh);
                }
            }
            irohds_blake3_hasher h;
            irohds_blake3_hasher_init(&h);
            feed(&h, buf, len, 1);
            uint8_t got[300];
            irohds_blake3_hasher_finalize(&h, got, 300);
            CHECK(memcmp(got, exp_long, 300) == 0, "b3sum --length 300 %s len %zu", iname, len);
        }
    }
    unlink(path);
    free(buf);
}

/* --------------------------------------------------------- XOF and bao */

static void test_xof_seek(void)
{
    uint8_t in[5000];
    for (size_t i = 0; i < sizeof in; i++)
        in[i] = (uint8_t)(i * 7);
    irohds_blake3_hasher h;
    irohds_blake3_hasher_init(&h);
    irohds_blake3_hasher_update(&h, in, sizeof in);
    uint8_t full[2048];
    irohds_blake3_hasher_finalize(&h, full, sizeof full);
    static const uint64_t seeks[] = {0, 1, 31, 32, 63, 64, 65, 127, 500, 1024, 1999};
    static const size_t lens[] = {0, 1, 5, 32, 63, 64, 65, 48};
    for (size_t i = 0; i < sizeof seeks / sizeof seeks[0]; i++)
        for (size_t j = 0; j < sizeof lens / sizeof lens[0]; j++) {
            if (seeks[i] + lens[j] > sizeof full)
                continue;
            uint8_t got[80];
            irohds_blake3_hasher_finalize_seek(&h, seeks[i], got, lens[j]);
            CHECK(memcmp(got, full + seeks[i], lens[j]) == 0, "seek %" PRIu64 " len %zu",
                  seeks[i], lens[j]);
        }
    /* finalize does not change the state: more input still works. */
    irohds_blake3_hasher_update(&h, in, 10);
    uint8_t a[32], b[32];
    irohds_blake3_hasher_finalize(&h, a, 32);
    irohds_blake3_hasher g;
    irohds_blake3_hasher_init(&g);
    irohds_blake3_hasher_update(&g, in, sizeof in);
    irohds_blake3_hasher_update(&g, in, 10);
    irohds_blake3_hasher_finalize(&g, b, 32);
    CHECK(memcmp(a, b, 32) == 0, "update after finalize");
    irohds_blake3_hasher_reset(&g);
    irohds_blake3_hasher_finalize(&g, a, 32);
    irohds_blake3(NULL, 0, b);
    CHECK(memcmp(a, b, 32) == 0, "reset gives the empty hash");
}

static void test_subtrees(int nimpl)
{
    size_t len = 5 * 16384 + 999;
    uint8_t *in = malloc(len);
    for (size_t i = 0; i < len; i++)
        in[i] = (uint8_t)(i ^ (i >> 9));
    static const size_t lens[] = {0, 1, 1024, 1025, 2048, 4096, 16384, 16385, 65536, 81919,
                                  5 * 16384 + 999};
    for (int impl = 0; impl < nimpl; impl++) {
        irohds_blake3_set_impl((irohds_blake3_impl)impl);
        for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
            size_t n = lens[k];
            uint8_t exp[32], got[32];
            irohds_blake3(in, n, exp);
            irohds_blake3_subtree_cv(in, n, 0, true, got);
            CHECK(memcmp(got, exp, 32) == 0, "subtree_cv root len %zu impl %d", n, impl);
            if (n <= 1024)
                continue;
            /* Rebuild the root from the BLAKE3 split: left = largest
             * power-of-two number of chunks leaving one on the right. */
            size_t chunks_but_last = (n - 1) / 1024, left = 1024;
            while (left * 2 <= chunks_but_last * 1024)
                left *= 2;
            uint8_t l[32], r[32];
            irohds_blake3_subtree_cv(in, left, 0, false, l);
            irohds_blake3_subtree_cv(in + left, n - left, left / 1024, false, r);
            irohds_blake3_parent_cv(l, r, true, got);
            CHECK(memcmp(got, exp, 32) == 0, "parent of subtrees len %zu impl %d", n, impl);
            irohds_blake3_parent_cv(l, r, false, got);
            CHECK(memcmp(got, exp, 32) != 0, "non-root parent differs len %zu", n);
        }
    }
    free(in);
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s TESTDATA_DIR\n", argv[0]);
        return 2;
    }
    int nimpl = (int)irohds_blake3_best_impl() + 1;
    printf("implementations: ");
    for (int i = 0; i < nimpl; i++)
        printf("%s ", irohds_blake3_impl_name((irohds_blake3_impl)i));
    printf("\n");
    CHECK(irohds_blake3_set_impl((irohds_blake3_impl)99) == -ENOTSUP, "set_impl(99)");

    test_vectors(argv[1], nimpl);
    test_xof_seek();
    test_subtrees(nimpl);
    test_b3sum(nimpl);

    irohds_blake3_set_impl(irohds_blake3_best_impl());
    return check_summary();
}
