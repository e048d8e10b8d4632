/*
 * bench/blake3_bench.c: single-core BLAKE3 and bao-outboard throughput.
 *
 *   blake3_bench mem [RUNS]      1 MiB input in memory, each implementation:
 *                                RUNS samples (default 301) of hashing it 8
 *                                times; prints the median in GiB/s.
 *   blake3_bench file PATH [N]   the whole file read into memory first (so
 *                                the page cache / tmpfs is not measured),
 *                                hashed N times (default 3) per
 *                                implementation; median GiB/s and the hash
 *                                (for comparison with b3sum).
 *   blake3_bench outboard [MB]   bao outboard (16 KiB groups) + root of an
 *                                MB-megabyte buffer (default 100), best
 *                                implementation, median of 5, in seconds.
 *
 * Output lines are "key value..." for bench/bench_blake3.sh to parse:
 *   mem <impl> <GiB/s>, file <impl> <GiB/s> <hex>, outboard <seconds> <GiB/s>.
 * Runs on the calling thread only; nothing here starts threads.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hash/bao.h"
#include "hash/blake3.h"
#include "timing.h"

static const double GIB = 1024.0 * 1024.0 * 1024.0;
static volatile uint8_t sink; /* keeps the hashes from being optimized away */

static int bench_mem(int runs)
{
    const size_t len = 1 << 20, per_sample = 8;
    uint8_t *buf = malloc(len), out[32];
    double *t = malloc(sizeof *t * (size_t)runs);
    if (!buf || !t)
        return 1;
    fill(buf, len);
    for (int impl = 0; impl <= (int)irohds_blake3_best_impl(); impl++) {
        irohds_blake3_set_impl((irohds_blake3_impl)impl);
        for (int w = 0; w < 20; w++)
            irohds_blake3(buf, len, out);
        for (int r = 0; r < runs; r++) {
            double t0 = now();
            for (size_t k = 0; k < per_sample; k++) {
                irohds_blake3(buf, len, out);
                sink ^= out[0];
            }
            t[r] = (now() - t0) / per_sample;
        }
        printf("mem %s %.3f\n", irohds_blake3_impl_name((irohds_blake3_impl)impl),
               len / median(t, (size_t)runs) / GIB);
        fflush(stdout);
    }
    free(t);
    free(buf);
    return 0;
}

static int bench_file(const char *path, int runs)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        perror(path);
        return 1;
    }
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    uint8_t *buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        fprintf(stderr, "%s: read failed\n", path);
        fclose(f);
        return 1;
    }
    fclose(f);
    double t[64];
    if (runs > 64)
        runs = 64;
    for (int impl = 0; impl <= (int)irohds_blake3_best_impl(); impl++) {
        irohds_blake3_set_impl((irohds_blake3_impl)impl);
        uint8_t out[32];
        for (int r = 0; r < runs; r++) {
            double t0 = now();
            irohds_blake3(buf, (size_t)sz, out);
            t[r] = now() - t0;
        }
        printf("file %s %.3f ", irohds_blake3_impl_name((irohds_blake3_impl)impl),
               (double)sz / median(t, (size_t)runs) / GIB);
        for (int i = 0; i < 32; i++)
            printf("%02x", out[i]);
        printf("\n");
        fflush(stdout);
    }
    free(buf);
    return 0;
}

static int bench_outboard(size_t mb)
{
    size_t len = mb * 1000 * 1000;
    uint8_t *buf = malloc(len), root[32];
    uint8_t *ob = malloc(irohds_bao_outboard_size(len, IROHDS_BAO_GROUP_LOG) + 1);
    if (!buf || !ob)
        return 1;
    fill(buf, len);
    double t[5];
    for (int r = 0; r < 5; r++) {
        double t0 = now();
        irohds_bao_outboard(buf, len, IROHDS_BAO_GROUP_LOG, ob, root);
        t[r] = now() - t0;
        sink ^= root[0];
    }
    double m = median(t, 5);
    printf("outboard %.4f %.3f\n", m, (double)len / m / GIB);
    free(ob);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc >= 2 && strcmp(argv[1], "mem") == 0)
        return bench_mem(argc > 2 ? atoi(argv[2]) : 301);
    if (argc >= 3 && strcmp(argv[1], "file") == 0)
        return bench_file(argv[2], argc > 3 ? atoi(argv[3]) : 3);
    if (argc >= 2 && strcmp(argv[1], "outboard") == 0)
        return bench_outboard(argc > 2 ? (size_t)atol(argv[2]) : 100);
    fprintf(stderr, "usage: %s mem [RUNS] | file PATH [RUNS] | outboard [MB]\n", argv[0]);
    return 2;
}
