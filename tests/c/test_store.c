/*
 * test_store: the result store, end to end on a real directory.
 *
 * Expected hashes come from shared/testdata/blake3 (hand-copied below);
 * expected sizes (blob + outboard) are worked out by hand from the bao
 * layout: ceil(len / 16 KiB) groups, groups - 1 parents of 64 bytes.
 * Processes are forked for readers and for the crash test (an LMDB
 * environment must not be opened twice in one process, nor used across a
 * fork), so the parent closes its handle before forking.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "check.h"

#include "hash/bao.h"
#include "store/store.h"
#include "store/store_int.h"



static char root[64], store_dir[128], staging[128], files_dir[128];

/* ------------------------------------------------------------- helpers */

static uint64_t rng_state = 88172645463325252ull;
static uint64_t rnd(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static void fill(uint8_t *buf, size_t len, uint64_t seed)
{
    uint64_t x = seed * 0x9e3779b97f4a7c15ull + 1;
    for (size_t i = 0; i < len; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        buf[i] = (uint8_t)x;
    }
}

static void make_key(uint8_t key[32], uint64_t a, uint64_t b)
{
    memset(key, 0, 32);
    memcpy(key, &a, 8);
    memcpy(key + 8, &b, 8);
    key[31] = 0x5a;
}

/* Write len bytes of pattern seed to staging/<name>; returns an O_RDONLY fd. */
static int stage(const char *name, size_t len, uint64_t seed, bool unlink_it)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", staging, name);
    uint8_t *buf = malloc(len ? len : 1);
    fill(buf, len, seed);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0 || irohds_write_all(fd, buf, len) != 0) {
        perror("stage");
        exit(2);
    }
    free(buf);
    if (unlink_it)
        unlink(path);
    return fd;
}

/* Stage and ingest seed's bytes; 0 or the error. */
static int ingest(irohds_store *s, size_t len, uint64_t seed, bool unlink_it, uint8_t hash[32])
{
    char name[64];
    snprintf(name, sizeof name, "in-%d-%llu", (int)getpid(), (unsigned long long)rnd());
    int fd = stage(name, len, seed, unlink_it);
    uint64_t size = 0;
    int rc = irohds_store_ingest_fd(s, fd, hash, &size);
    close(fd);
    if (!unlink_it) {
        char path[512];
        snprintf(path, sizeof path, "%s/%s", staging, name);
        unlink(path);
    }
    if (!rc && size != len)
        return -EIO;
    return rc;
}

static irohds_record make_rec(const uint8_t blob[32], uint64_t size, const char *func)
{
    irohds_record r;
    memset(&r, 0, sizeof r);
    memcpy(r.blob, blob, 32);
    r.size = size;
    r.serializer = IROHDS_SER_PICKLE5;
    r.compute_seconds = 1.5;
    snprintf(r.func, sizeof r.func, "%s", func);
    snprintf(r.ns, sizeof r.ns, "default");
    return r;
}

/* ingest + put: returns put's result */
static int put_simple(irohds_store *s, const uint8_t key[32], size_t len, uint64_t seed,
                      const char *func, int64_t last_used, uint8_t blob_out[32])
{
    uint8_t h[32];
    int rc = ingest(s, len, seed, false, h);
    if (rc)
        return rc;
    irohds_record r = make_rec(h, len, func);
    r.created_us = last_used;
    r.last_used_us = last_used;
    if (blob_out)
        memcpy(blob_out, h, 32);
    return irohds_store_put(s, key, &r, NULL, 0);
}

static bool exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

static bool blob_exists(irohds_store *s, const uint8_t h[32], bool ob)
{
    char p[PATH_MAX];
    irohds_store_blob_path(s, h, ob, p, sizeof p);
    return exists(p);
}

static irohds_store *open_w(void)
{
    irohds_store *s = NULL;
    int rc = irohds_store_open(&s, store_dir, 0);
    if (rc) {
        printf("FAIL open writer: %s\n", strerror(-rc));
        exit(2);
    }
    irohds_store_set_files_dir(s, files_dir);
    return s;
}

static void wipe(void)
{
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s && mkdir -p %s", store_dir, files_dir, staging);
    if (system(cmd) != 0)
        exit(2);
}

/* ------------------------------------------------------- consistency */

struct seen {
    uint8_t (*h)[32];
    size_t n;
    int bad;
};

static void seen_add(struct seen *z, const uint8_t *h)
{
    for (size_t i = 0; i < z->n; i++)
        if (!memcmp(z->h[i], h, 32))
            return;
    z->h = realloc(z->h, (z->n + 1) * 32);
    memcpy(z->h[z->n++], h, 32);
}

static bool seen_has(const struct seen *z, const uint8_t *h)
{
    for (size_t i = 0; i < z->n; i++)
        if (!memcmp(z->h[i], h, 32))
            return true;
    return false;
}

static irohds_store *g_store;

static int each_check(void *ctx, const uint8_t key[32], const irohds_record *rec)
{
    struct seen *z = ctx;
    (void)key;
    int rc = irohds_store_verify_blob(g_store, rec->blob);
    if (rc) {
        z->bad++;
        printf("  entry points at a bad blob (%s)\n", strerror(-rc));
    }
    seen_add(z, rec->blob);
    if (rec->nfiles) {
        irohds_file *f = calloc(rec->nfiles, sizeof *f);
        uint32_t n;
        if (irohds_store_files(g_store, key, f, rec->nfiles, &n) || n != rec->nfiles)
            z->bad++;
        for (uint32_t i = 0; i < n; i++) {
            if (irohds_store_verify_blob(g_store, f[i].blob))
                z->bad++;
            seen_add(z, f[i].blob);
        }
        free(f);
    }
    return 0;
}

/*
 * Every entry's blobs verify; every blob file is referenced; every outboard
 * has its blob; tmp/ is empty; stats' bytes equal the files on disk.
 */
static int check_consistent(irohds_store *s)
{
    struct seen z = {0};
    g_store = s;
    irohds_store_foreach(s, each_check, &z);
    int bad = z.bad;
    uint64_t disk = 0;
    char path[600];
    snprintf(path, sizeof path, "%s/blobs", store_dir);
    DIR *d = opendir(path);
    struct dirent *e, *f;
    while (d && (e = readdir(d))) {
        if (e->d_name[0] == '.')
            continue;
        char sub[900];
        snprintf(sub, sizeof sub, "%s/%s", path, e->d_name);
        DIR *d2 = opendir(sub);
        while (d2 && (f = readdir(d2))) {
            if (f->d_name[0] == '.')
                continue;
            uint8_t h[32];
            char hex[65], fp[1300];
            snprintf(hex, sizeof hex, "%.64s", f->d_name);
            snprintf(fp, sizeof fp, "%s/%s", sub, f->d_name);
            struct stat st;
            stat(fp, &st);
            disk += (uint64_t)st.st_size;
            if (irohds_hex_decode(hex, h, 32)) {
                printf("  stray file %s\n", f->d_name);
                bad++;
            } else if (strlen(f->d_name) == 64 && !seen_has(&z, h)) {
                printf("  unreferenced blob %s\n", f->d_name);
                bad++;
            } else if (strlen(f->d_name) == 69 && !blob_exists(s, h, false)) {
                printf("  outboard without blob %s\n", f->d_name);
                bad++;
            }
        }
        if (d2)
            closedir(d2);
    }
    if (d)
        closedir(d);
    snprintf(path, sizeof path, "%s/tmp", store_dir);
    d = opendir(path);
    while (d && (e = readdir(d)))
        if (e->d_name[0] != '.') {
            printf("  tmp leftover %s\n", e->d_name);
            bad++;
        }
    if (d)
        closedir(d);
    uint64_t entries, bytes;
    irohds_store_stats(s, &entries, &bytes);
    if (bytes != disk) {
        printf("  stats bytes %llu != %llu on disk\n", (unsigned long long)bytes,
               (unsigned long long)disk);
        bad++;
    }
    free(z.h);
    return bad;
}

/* ------------------------------------------------------------- tests */

static void test_missing_store(void)
{
    irohds_store *s;
    CHECK(irohds_store_open(&s, "/nonexistent/irohds/store", IROHDS_STORE_READONLY) == -ENOENT,
          "reader on a missing store");
}

static void test_ingest(void)
{
    wipe();
    irohds_store *s = open_w();
    /* the BLAKE3 vector input: bytes i % 251 */
    static const char *want102400 =
        "bc3e3d41a1146b069abffad3c0d44860cf664390afce4d9661f7902e7943e085";
    uint8_t *buf = malloc(102400);
    for (int i = 0; i < 102400; i++)
        buf[i] = (uint8_t)(i % 251);
    char path[256];
    snprintf(path, sizeof path, "%s/vec", staging);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    irohds_write_all(fd, buf, 102400);
    uint8_t h[32];
    uint64_t size;
    char hex[65];
    CHECK(irohds_store_ingest_fd(s, fd, h, &size) == 0 && size == 102400, "ingest_fd");
    irohds_hex_encode(h, 32, hex);
    CHECK(!strcmp(hex, want102400), "hash %s", hex);
    char bp[PATH_MAX], op[PATH_MAX];
    irohds_store_blob_path(s, h, false, bp, sizeof bp);
    irohds_store_blob_path(s, h, true, op, sizeof op);
    char want_bp[PATH_MAX];
    snprintf(want_bp, sizeof want_bp, "%s/blobs/bc/%s", store_dir, want102400);
    CHECK(!strcmp(bp, want_bp), "blob path %s", bp);
    struct stat st, st2;
    CHECK(stat(bp, &st) == 0 && (st.st_mode & 0777) == 0444, "blob mode %o", st.st_mode & 0777);
    fstat(fd, &st2);
    CHECK(st.st_ino == st2.st_ino, "named staging file was hard-linked, not copied");
    /* 102400 bytes = 7 groups of 16 KiB -> 6 parents * 64 = 384 bytes */
    CHECK(stat(op, &st) == 0 && st.st_size == 384 && (st.st_mode & 0777) == 0444,
          "outboard size %lld", (long long)st.st_size);
    char *ob;
    size_t oblen;
    if (irohds_read_file(op, 1 << 20, &ob, &oblen) == 0) {
        CHECK(irohds_bao_verify(buf, 102400, IROHDS_BAO_GROUP_LOG, (uint8_t *)ob, oblen, h) == 0,
              "outboard verifies");
        free(ob);
    }
    close(fd);
    unlink(path);

    /* dedupe: the same bytes again, via an unlinked file this time */
    fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    irohds_write_all(fd, buf, 102400);
    unlink(path);
    uint8_t h2[32];
    CHECK(irohds_store_ingest_fd(s, fd, h2, &size) == 0 && !memcmp(h, h2, 32), "dedupe");
    close(fd);

    /* an unlinked file cannot be linked: it is copied */
    fd = stage("gone", 5000, 7, true);
    CHECK(irohds_store_ingest_fd(s, fd, h2, &size) == 0 && size == 5000, "ingest unlinked");
    irohds_store_blob_path(s, h2, false, bp, sizeof bp);
    fstat(fd, &st2);
    CHECK(stat(bp, &st) == 0 && st.st_ino != st2.st_ino && st.st_size == 5000 &&
              (st.st_mode & 0777) == 0444,
          "copied blob");
    /* 5000 bytes: one group, empty outboard: no file */
    irohds_store_blob_path(s, h2, true, op, sizeof op);
    CHECK(!exists(op), "one-group outboard is not written");
    CHECK(irohds_store_verify_blob(s, h2) == 0, "verify a one-group blob");
    close(fd);

    /* empty blob: the vector hash of no bytes */
    fd = stage("empty", 0, 0, false);
    CHECK(irohds_store_ingest_fd(s, fd, h2, &size) == 0 && size == 0, "ingest empty");
    irohds_hex_encode(h2, 32, hex);
    CHECK(!strcmp(hex, "af1349b9f5f9a1a6a0404dea36dcc9499bcb25c9adc112b7cc9a93cae41f3262"),
          "empty hash %s", hex);
    close(fd);
    snprintf(path, sizeof path, "%s/empty", staging);
    unlink(path);

    /* ingest_path copies or links, never moves */
    fd = stage("bypath", 1024, 0, false);
    close(fd);
    snprintf(path, sizeof path, "%s/bypath", staging);
    CHECK(irohds_store_ingest_path(s, path, h2, &size) == 0 && exists(path), "ingest_path");
    CHECK(irohds_store_ingest_path(s, "/nonexistent/x", h2, &size) == -ENOENT, "missing path");
    unlink(path);
    fd = open(staging, O_RDONLY | O_DIRECTORY);
    CHECK(irohds_store_ingest_fd(s, fd, h2, &size) == -EINVAL, "a directory is refused");
    close(fd);
    free(buf);
    irohds_store_close(s);
}

static void test_put_lookup(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t key[32], h[32], other[32];
    make_key(key, 1, 1);
    CHECK(ingest(s, 30000, 11, false, h) == 0, "ingest");
    irohds_record r = make_rec(h, 30000, "mod.func");
    r.compute_seconds = 12.25;
    r.created_us = 1700000000000001ll;
    r.last_used_us = 1700000000000002ll;
    memset(r.producer, 0xa7, 32);
    r.origin = IROHDS_ORIGIN_REMOTE;
    CHECK(irohds_store_put(s, key, &r, NULL, 0) == 0, "put");
    irohds_record got;
    memset(&got, 0x55, sizeof got);
    CHECK(irohds_store_lookup(s, key, &got) == 0, "lookup");
    CHECK(!memcmp(got.blob, h, 32) && got.size == 30000 && got.files_size == 0 &&
              got.serializer == IROHDS_SER_PICKLE5 && got.nfiles == 0 &&
              got.compute_seconds == 12.25 && got.created_us == 1700000000000001ll &&
              got.last_used_us == 1700000000000002ll && !strcmp(got.func, "mod.func") &&
              !strcmp(got.ns, "default") && got.producer[0] == 0xa7 && got.producer[31] == 0xa7 &&
              got.origin == IROHDS_ORIGIN_REMOTE,
          "record round trip");
    make_key(other, 9, 9);
    CHECK(irohds_store_lookup(s, other, &got) == -ENOENT, "lookup miss");

    /* times default to now */
    int64_t before = irohds_now_us();
    r.created_us = r.last_used_us = 0;
    CHECK(irohds_store_put(s, other, &r, NULL, 0) == 0, "put 2");
    irohds_store_lookup(s, other, &got);
    CHECK(got.created_us >= before && got.created_us <= irohds_now_us() &&
              got.last_used_us == got.created_us,
          "default times");

    /* refusals */
    uint8_t missing[32];
    memset(missing, 0xee, 32);
    irohds_record bad = make_rec(missing, 10, "f");
    CHECK(irohds_store_put(s, key, &bad, NULL, 0) == -ENOENT, "blob not ingested");
    bad = make_rec(h, 29999, "f");
    CHECK(irohds_store_put(s, key, &bad, NULL, 0) == -EINVAL, "wrong size");
    irohds_file f[2];
    memset(f, 0, sizeof f);
    memcpy(f[0].blob, h, 32);
    f[0].size = 30000;
    f[1] = f[0];
    snprintf(f[0].name, sizeof f[0].name, "../escape");
    r = make_rec(h, 30000, "f");
    CHECK(irohds_store_put(s, key, &r, f, 1) == -EINVAL, "unsafe file name");
    snprintf(f[0].name, sizeof f[0].name, "same");
    snprintf(f[1].name, sizeof f[1].name, "same");
    CHECK(irohds_store_put(s, key, &r, f, 2) == -EINVAL, "duplicate file names");
    /* the refused puts changed nothing */
    irohds_store_lookup(s, key, &got);
    CHECK(got.size == 30000 && !strcmp(got.func, "mod.func"), "old record intact");
    CHECK(check_consistent(s) == 0, "consistent");

    uint64_t entries, bytes;
    irohds_store_stats(s, &entries, &bytes);
    /* 30000 bytes: 2 groups, 1 parent */
    CHECK(entries == 2 && bytes == 30000 + 64, "stats %llu %llu", (unsigned long long)entries,
          (unsigned long long)bytes);
    irohds_store_close(s);
}

/*
 * Record bytes laid out by hand from docs/store.md: the first layout (88
 * fixed bytes, no producer) must still decode, as producer 0s / local; the
 * current one (128) carries producer and origin; a fixed length below 88 or
 * strings past the end are refused.
 */
static void put_le(uint8_t *p, uint64_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void test_record_layouts(void)
{
    uint8_t b[256];
    memset(b, 0, sizeof b);
    b[0] = 1;
    put_le(b + 2, 88, 2);  /* fixed part */
    put_le(b + 4, 3, 2);   /* func "m.f" */
    put_le(b + 6, 2, 2);   /* ns "ns" */
    memset(b + 8, 0x11, 32);
    put_le(b + 40, 5000, 8);
    put_le(b + 56, 1, 4);
    put_le(b + 64, 0x4014000000000000ull, 8); /* 5.0 */
    memcpy(b + 88, "m.fns", 5);
    irohds_record r;
    memset(&r, 0x55, sizeof r);
    CHECK(store_rec_decode(b, 93, &r) == 0 && r.size == 5000 && r.compute_seconds == 5.0 &&
              !strcmp(r.func, "m.f") && !strcmp(r.ns, "ns") && r.producer[0] == 0 &&
              r.producer[31] == 0 && r.origin == IROHDS_ORIGIN_LOCAL,
          "first (88-byte) layout decodes as local, producer unknown");

    put_le(b + 2, 128, 2);
    memset(b + 88, 0xcd, 32);
    put_le(b + 120, 1, 4);
    memcpy(b + 128, "m.fns", 5);
    CHECK(store_rec_decode(b, 133, &r) == 0 && r.producer[0] == 0xcd && r.producer[31] == 0xcd &&
              r.origin == IROHDS_ORIGIN_REMOTE && !strcmp(r.func, "m.f") && r.figure == 0 &&
              r.producer_sig[0] == 0,
          "second (128-byte) layout: no figure, no signature");

    put_le(b + 2, 200, 2);
    put_le(b + 128, 0x3ff8000000000000ull, 8); /* 1.5 */
    memset(b + 136, 0x5a, 64);
    memcpy(b + 200, "m.fns", 5);
    CHECK(store_rec_decode(b, 205, &r) == 0 && r.producer[0] == 0xcd && r.figure == 1.5 &&
              r.producer_sig[0] == 0x5a && r.producer_sig[63] == 0x5a && !strcmp(r.ns, "ns"),
          "200-byte layout");
    uint8_t enc[STORE_REC_MAX];
    CHECK(store_rec_encode(&r, enc) == 205 && memcmp(enc, b, 205) == 0,
          "encoder writes the documented 200-byte layout");
    CHECK(store_rec_decode(b, 204, &r) == -EBADMSG, "strings past the end");
    put_le(b + 2, 87, 2);
    CHECK(store_rec_decode(b, 205, &r) == -EBADMSG, "fixed part under 88");
}

/* A downloaded blob: written into a store tmp file, verified by the caller
 * (here: hash and outboard computed independently by hash/bao), placed
 * without a copy; wrong sizes refused. */
static void test_ingest_verified(void)
{
    wipe();
    irohds_store *s = open_w();
    size_t len = 100000;
    uint8_t *data = malloc(len);
    fill(data, len, 77);
    uint64_t oblen = irohds_bao_outboard_size(len, IROHDS_BAO_GROUP_LOG);
    uint8_t *ob = malloc(oblen), root[32];
    irohds_bao_outboard(data, len, IROHDS_BAO_GROUP_LOG, ob, root);
    int fd;
    char path[512];
    CHECK(irohds_store_tmp_file(s, &fd, path, sizeof path) == 0, "tmp file");
    CHECK(strstr(path, "/store/tmp/") != NULL, "tmp file under store/tmp: %s", path);
    CHECK(irohds_write_all(fd, data, len) == 0, "write");
    CHECK(irohds_store_ingest_verified(s, fd, root, len, ob, oblen - 64, 0) == -EINVAL,
          "short outboard refused");
    CHECK(irohds_store_ingest_verified(s, fd, root, len + 1, ob, oblen, 0) == -EINVAL,
          "size that is not the file's refused");
    CHECK(irohds_store_ingest_verified(s, fd, root, len, ob, oblen, IROHDS_INGEST_REFETCHABLE) == 0,
          "ingest_verified");
    struct stat a, b;
    char blob[512];
    irohds_store_blob_path(s, root, false, blob, sizeof blob);
    CHECK(fstat(fd, &a) == 0 && stat(blob, &b) == 0 && a.st_ino == b.st_ino,
          "linked, not copied");
    close(fd);
    unlink(path);
    CHECK(irohds_store_verify_blob(s, root) == 0, "placed blob and outboard verify");
    uint8_t key[32];
    make_key(key, 5, 5);
    irohds_record r = make_rec(root, len, "m.dl");
    r.origin = IROHDS_ORIGIN_REMOTE;
    CHECK(irohds_store_put(s, key, &r, NULL, 0) == 0, "put of the downloaded blob");
    CHECK(check_consistent(s) == 0, "consistent");
    free(data);
    free(ob);
    irohds_store_close(s);
}

static void test_refcounts_and_replace(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t a[32], b[32], h[32], h2[32];
    make_key(a, 2, 1);
    make_key(b, 2, 2);
    CHECK(put_simple(s, a, 50000, 21, "m.f", 0, h) == 0, "put a");
    CHECK(put_simple(s, b, 50000, 21, "m.f", 0, h2) == 0 && !memcmp(h, h2, 32), "put b same");
    uint64_t entries, bytes;
    irohds_store_stats(s, &entries, &bytes);
    /* stored once: 50000 + 3 parents (4 groups) * 64 */
    CHECK(entries == 2 && bytes == 50000 + 192, "dedupe stats %llu", (unsigned long long)bytes);
    CHECK(irohds_store_remove(s, a) == 0, "remove a");
    CHECK(irohds_store_remove(s, a) == -ENOENT, "remove a again");
    irohds_record got;
    CHECK(blob_exists(s, h, false) && irohds_store_lookup(s, b, &got) == 0, "b keeps the blob");
    CHECK(irohds_store_remove(s, b) == 0, "remove b");
    CHECK(!blob_exists(s, h, false) && !blob_exists(s, h, true), "last ref removes blob+outboard");
    irohds_store_stats(s, &entries, &bytes);
    CHECK(entries == 0 && bytes == 0, "empty stats");

    /* replacing a record frees the old blob, keeps a shared one */
    CHECK(put_simple(s, a, 1000, 31, "m.f", 0, h) == 0, "put a v1");
    CHECK(put_simple(s, a, 2000, 32, "m.f", 0, h2) == 0, "put a v2");
    CHECK(!blob_exists(s, h, false) && blob_exists(s, h2, false), "replaced blob deleted");
    CHECK(put_simple(s, a, 2000, 32, "m.f", 0, h2) == 0 && blob_exists(s, h2, false),
          "same blob re-put keeps it");
    irohds_store_lookup(s, a, &got);
    CHECK(got.size == 2000, "replaced record");
    CHECK(check_consistent(s) == 0, "consistent");
    irohds_store_close(s);
}

static bool in_use_first(void *ctx, const uint8_t key[32], const irohds_record *rec)
{
    (void)rec;
    return !memcmp(ctx, key, 32);
}

static void test_lru_gc(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t k[5][32], h[5][32];
    /* 20000 bytes: 2 groups -> 64-byte outboard; 20064 on disk each */
    for (int i = 0; i < 3; i++) {
        make_key(k[i], 3, (uint64_t)i);
        CHECK(put_simple(s, k[i], 20000, 40 + (uint64_t)i, "m.f", 1000 * (i + 1), h[i]) == 0,
              "put %d", i);
    }
    /* touching the oldest makes the middle one the eviction victim */
    CHECK(irohds_store_touch(s, k[0]) == 0, "touch");
    uint64_t freed = 0;
    CHECK(irohds_store_gc(s, 3 * 20064 - 1, NULL, NULL, &freed) == 0, "gc");
    irohds_record got;
    CHECK(freed == 20064, "freed %llu", (unsigned long long)freed);
    CHECK(irohds_store_lookup(s, k[1], &got) == -ENOENT, "middle evicted");
    CHECK(irohds_store_lookup(s, k[0], &got) == 0 && got.last_used_us > 1000000, "touched kept");
    CHECK(irohds_store_lookup(s, k[2], &got) == 0, "newest kept");
    CHECK(!blob_exists(s, h[1], false), "evicted blob deleted");
    char tl[256];
    struct stat st;
    snprintf(tl, sizeof tl, "%s/touch.log", store_dir);
    CHECK(stat(tl, &st) == 0 && st.st_size == 0, "touch.log truncated");

    /* a torn record at the tail of touch.log is ignored */
    int fd = open(tl, O_WRONLY | O_APPEND);
    write(fd, "garbage-garbage-garbage-garbage-garbage-garbage!", 48);
    write(fd, "torn", 4);
    close(fd);
    CHECK(irohds_store_apply_touches(s) == 0, "apply garbage");
    CHECK(irohds_store_lookup(s, k[2], &got) == 0 && got.last_used_us == 3000, "garbage ignored");

    /* in_use and flock are respected */
    wipe();
    irohds_store_close(s);
    s = open_w();
    for (int i = 0; i < 5; i++) {
        make_key(k[i], 4, (uint64_t)i);
        CHECK(put_simple(s, k[i], 20000, 50 + (uint64_t)i, "m.f", 10 + i, h[i]) == 0, "put");
    }
    int bfd;
    uint64_t bsize;
    CHECK(irohds_store_open_blob(s, h[1], &bfd, &bsize) == 0 && bsize == 20000, "open_blob");
    CHECK(flock(bfd, LOCK_SH) == 0, "flock");
    freed = 0;
    CHECK(irohds_store_gc(s, 3 * 20064, in_use_first, k[0], &freed) == 0, "gc limited");
    CHECK(freed == 2 * 20064, "freed %llu", (unsigned long long)freed);
    bool present[5];
    for (int i = 0; i < 5; i++)
        present[i] = irohds_store_lookup(s, k[i], &got) == 0;
    CHECK(present[0] && present[1] && !present[2] && !present[3] && present[4],
          "in_use and flocked kept, next two oldest evicted: %d%d%d%d%d", present[0], present[1],
          present[2], present[3], present[4]);
    CHECK(blob_exists(s, h[1], false), "flocked blob still there");
    uint64_t entries, bytes;
    irohds_store_stats(s, &entries, &bytes);
    CHECK(entries == 3 && bytes == 3 * 20064, "stats after gc %llu", (unsigned long long)bytes);
    flock(bfd, LOCK_UN);
    close(bfd);
    CHECK(irohds_store_gc(s, 3 * 20064, NULL, NULL, &freed) == 0 && freed == 0, "at the limit");
    CHECK(irohds_store_gc(s, 0, NULL, NULL, &freed) == 0 && freed == 0, "0 = unlimited");
    CHECK(irohds_store_gc(s, 1, NULL, NULL, &freed) == 0 && freed == 3 * 20064, "evict all");
    irohds_store_stats(s, &entries, &bytes);
    CHECK(entries == 0 && bytes == 0, "empty");
    CHECK(check_consistent(s) == 0, "consistent");
    irohds_store_close(s);
}

static void test_mmap_survives_removal(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t k[32], h[32];
    make_key(k, 5, 0);
    CHECK(put_simple(s, k, 70000, 77, "m.f", 0, h) == 0, "put");
    int fd;
    uint64_t size;
    CHECK(irohds_store_open_blob(s, h, &fd, &size) == 0, "open_blob");
    uint8_t *map = mmap(NULL, size, PROT_READ, MAP_SHARED, fd, 0);
    close(fd);
    CHECK(irohds_store_remove(s, k) == 0 && !blob_exists(s, h, false), "removed");
    uint8_t *want = malloc(70000);
    fill(want, 70000, 77);
    CHECK(map != MAP_FAILED && !memcmp(map, want, 70000), "mapping still reads the bytes");
    munmap(map, size);
    free(want);
    irohds_store_close(s);
}

static void test_verify_drop(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t p[32], q[32], hp[32], hq[32];
    make_key(p, 6, 1);
    make_key(q, 6, 2);
    CHECK(put_simple(s, p, 40000, 61, "m.f", 0, hp) == 0, "put p");
    CHECK(ingest(s, 1000, 62, false, hq) == 0, "ingest q");
    irohds_record r = make_rec(hq, 1000, "m.g");
    irohds_file f;
    memset(&f, 0, sizeof f);
    snprintf(f.name, sizeof f.name, "data.bin");
    memcpy(f.blob, hp, 32);
    f.size = 40000;
    CHECK(irohds_store_put(s, q, &r, &f, 1) == 0, "put q with p's blob as a file");
    CHECK(irohds_store_verify_blob(s, hp) == 0, "verify good");

    /* a missing outboard of good bytes is rewritten */
    char op[PATH_MAX], bp[PATH_MAX];
    irohds_store_blob_path(s, hp, true, op, sizeof op);
    unlink(op);
    CHECK(irohds_store_verify_blob(s, hp) == 0 && exists(op), "outboard rewritten");

    irohds_store_blob_path(s, hp, false, bp, sizeof bp);
    chmod(bp, 0644);
    int fd = open(bp, O_WRONLY);
    CHECK(pwrite(fd, "X", 1, 20000) == 1, "corrupt");
    close(fd);
    CHECK(irohds_store_verify_blob(s, hp) == -EBADMSG, "verify corrupt");
    CHECK(irohds_store_verify_blob(s, hq) == 0, "other blob fine");
    uint8_t none[32] = {1};
    CHECK(irohds_store_verify_blob(s, none) == -ENOENT, "verify missing");
    uint64_t n = 0;
    CHECK(irohds_store_drop_blob(s, hp, &n) == 0 && n == 2, "drop_blob n=%llu",
          (unsigned long long)n);
    irohds_record got;
    CHECK(irohds_store_lookup(s, p, &got) == -ENOENT && irohds_store_lookup(s, q, &got) == -ENOENT,
          "both users dropped");
    CHECK(!blob_exists(s, hp, false) && !blob_exists(s, hq, false), "blobs deleted");
    CHECK(check_consistent(s) == 0, "consistent");
    irohds_store_close(s);
}

static void test_files(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t k[32], hr[32], ha[32], hb[32];
    make_key(k, 7, 1);
    CHECK(ingest(s, 100, 71, false, hr) == 0 && ingest(s, 3000, 72, false, ha) == 0 &&
              ingest(s, 40000, 73, false, hb) == 0,
          "ingest");
    irohds_file f[2];
    memset(f, 0, sizeof f);
    snprintf(f[0].name, sizeof f[0].name, "a.txt");
    memcpy(f[0].blob, ha, 32);
    f[0].size = 3000;
    snprintf(f[1].name, sizeof f[1].name, "sub/dir/b.bin");
    memcpy(f[1].blob, hb, 32);
    f[1].size = 40000;
    irohds_record r = make_rec(hr, 100, "m.files");
    CHECK(irohds_store_put(s, k, &r, f, 2) == 0, "put with files");
    irohds_record got;
    irohds_store_lookup(s, k, &got);
    CHECK(got.nfiles == 2 && got.files_size == 43000, "nfiles %u files_size %llu", got.nfiles,
          (unsigned long long)got.files_size);
    irohds_file out[2];
    uint32_t n = 0;
    CHECK(irohds_store_files(s, k, out, 2, &n) == 0 && n == 2 && !strcmp(out[0].name, "a.txt") &&
              !strcmp(out[1].name, "sub/dir/b.bin") && !memcmp(out[1].blob, hb, 32) &&
              out[1].size == 40000,
          "files");
    CHECK(irohds_store_files(s, k, out, 1, &n) == -ENOBUFS && n == 1, "files -ENOBUFS");
    CHECK(irohds_store_link_files(s, k) == 0, "link_files");
    char hex[65], path[512];
    irohds_hex_encode(k, 32, hex);
    snprintf(path, sizeof path, "%s/%s/sub/dir/b.bin", files_dir, hex);
    char bp[PATH_MAX];
    irohds_store_blob_path(s, hb, false, bp, sizeof bp);
    struct stat st, st2;
    CHECK(stat(path, &st) == 0 && stat(bp, &st2) == 0 && st.st_ino == st2.st_ino,
          "file is a hard link to its blob");
    char *data;
    size_t len;
    snprintf(path, sizeof path, "%s/%s/a.txt", files_dir, hex);
    uint8_t want[3000];
    fill(want, 3000, 72);
    CHECK(irohds_read_file(path, 1 << 20, &data, &len) == 0 && len == 3000 &&
              !memcmp(data, want, 3000),
          "file content");
    free(data);
    CHECK(irohds_store_link_files(s, k) == 0, "link_files again");
    uint8_t k2[32];
    make_key(k2, 7, 2);
    CHECK(irohds_store_link_files(s, k2) == -ENOENT, "link_files of a missing key");
    CHECK(check_consistent(s) == 0, "consistent");
    CHECK(irohds_store_remove(s, k) == 0, "remove");
    snprintf(path, sizeof path, "%s/%s", files_dir, hex);
    CHECK(!exists(path), "files dir removed with the result");
    CHECK(!blob_exists(s, ha, false) && !blob_exists(s, hb, false), "file blobs removed");

    /* evict_func removes its results and their files dirs, nothing else */
    uint8_t e[4][32], h[32];
    for (int i = 0; i < 4; i++) {
        make_key(e[i], 8, (uint64_t)i);
        CHECK(put_simple(s, e[i], 500, 80 + (uint64_t)i, i < 3 ? "m.f" : "m.g", 0, h) == 0, "put");
    }
    CHECK(ingest(s, 3000, 72, false, ha) == 0, "re-ingest");
    r = make_rec(h, 500, "m.f"); /* e[3]'s blob, with a file */
    CHECK(irohds_store_put(s, k, &r, f, 1) == 0 && irohds_store_link_files(s, k) == 0, "put k");
    uint64_t cnt = 0;
    CHECK(irohds_store_evict_func(s, "m.f", &cnt) == 0 && cnt == 4, "evict_func n=%llu",
          (unsigned long long)cnt);
    CHECK(!exists(path), "files dir removed by evict_func");
    CHECK(irohds_store_lookup(s, e[3], &got) == 0, "other function kept");
    CHECK(irohds_store_evict_func(s, "nothing", &cnt) == 0 && cnt == 0, "evict nothing");
    CHECK(check_consistent(s) == 0, "consistent");
    irohds_store_close(s);
}

static void test_recover_leftovers(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t m[32], nk[32], hm[32], hn[32];
    make_key(m, 9, 1);
    make_key(nk, 9, 2);
    CHECK(put_simple(s, m, 3000, 91, "m.f", 0, hm) == 0 && put_simple(s, nk, 40000, 92, "m.f", 0, hn) == 0,
          "puts");
    char p[PATH_MAX];
    irohds_store_blob_path(s, hm, false, p, sizeof p);
    unlink(p); /* an index entry whose blob vanished */
    irohds_store_blob_path(s, hn, true, p, sizeof p);
    unlink(p); /* a lost outboard */
    char junk[512];
    snprintf(junk, sizeof junk, "%s/blobs/ab", store_dir);
    mkdir(junk, 0700);
    snprintf(junk, sizeof junk, "%s/blobs/ab/ab%062d", store_dir, 0);
    close(open(junk, O_WRONLY | O_CREAT, 0444)); /* orphan blob */
    snprintf(junk, sizeof junk, "%s/blobs/ab/cd%062d.obao", store_dir, 0);
    close(open(junk, O_WRONLY | O_CREAT, 0444)); /* orphan outboard */
    snprintf(junk, sizeof junk, "%s/tmp/123.4", store_dir);
    close(open(junk, O_WRONLY | O_CREAT, 0600));
    snprintf(junk, sizeof junk, "%s/%064d/x", files_dir, 7);
    irohds_mkdirs(junk, 0700);
    snprintf(junk, sizeof junk, "%s/.tmp-half", files_dir);
    irohds_mkdirs(junk, 0700);
    CHECK(irohds_store_recover(s) == 0, "recover");
    irohds_record got;
    CHECK(irohds_store_lookup(s, m, &got) == -ENOENT, "entry without blob dropped");
    CHECK(irohds_store_lookup(s, nk, &got) == 0 && blob_exists(s, hn, true), "outboard restored");
    snprintf(junk, sizeof junk, "%s/%064d", files_dir, 7);
    CHECK(!exists(junk), "files dir of a missing result removed");
    snprintf(junk, sizeof junk, "%s/.tmp-half", files_dir);
    CHECK(!exists(junk), "half-built files dir removed");
    CHECK(check_consistent(s) == 0, "consistent after recover");
    irohds_store_close(s);
}

/* ------------------------------------------------- readers in processes */

static void read_all(int fd, void *buf, size_t n)
{
    uint8_t *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r <= 0)
            exit(3);
        p += r;
        n -= (size_t)r;
    }
}

static void test_multi_reader(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t k0[32];
    make_key(k0, 10, 0);
    put_simple(s, k0, 100, 1000, "m.f", 0, NULL);
    irohds_store_close(s);

    int p2c[2], c2p[2];
    if (pipe(p2c) || pipe(c2p))
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        irohds_store *r;
        int bad = 0;
        if (irohds_store_open(&r, store_dir, IROHDS_STORE_READONLY))
            _exit(10);
        write(c2p[1], "R", 1);
        uint8_t key[32], miss[32];
        make_key(miss, 99, 99);
        irohds_record rec, got;
        bad += irohds_store_put(r, miss, &rec, NULL, 0) != -EROFS;
        for (;;) {
            read_all(p2c[0], key, 32);
            if (key[0] == 0xff)
                break;
            uint64_t i;
            memcpy(&i, key + 8, 8);
            bad += irohds_store_lookup(r, miss, &got) != -ENOENT;
            if (irohds_store_lookup(r, key, &got) != 0 || got.size != 1000 + i) {
                bad++;
                continue;
            }
            int fd;
            uint64_t size;
            uint8_t *want = malloc(got.size), *have = malloc(got.size);
            fill(want, got.size, 1000 + i);
            if (irohds_store_open_blob(r, got.blob, &fd, &size) ||
                pread(fd, have, got.size, 0) != (ssize_t)got.size || memcmp(want, have, got.size))
                bad++;
            close(fd);
            free(want);
            free(have);
            bad += irohds_store_touch(r, key) != 0;
        }
        irohds_store_close(r);
        write(c2p[1], &bad, sizeof bad);
        _exit(0);
    }
    char c;
    read_all(c2p[0], &c, 1);
    s = open_w();
    int64_t t0 = irohds_now_us();
    for (uint64_t i = 0; i < 200; i++) {
        uint8_t key[32];
        make_key(key, 10, i);
        if (put_simple(s, key, 1000 + i, 1000 + i, "m.f", 0, NULL))
            CHECK(0, "put %llu", (unsigned long long)i);
        write(p2c[1], key, 32);
    }
    uint8_t end[32];
    memset(end, 0xff, 32);
    write(p2c[1], end, 32);
    int bad = -1;
    read_all(c2p[0], &bad, sizeof bad);
    int status;
    waitpid(pid, &status, 0);
    CHECK(bad == 0 && WIFEXITED(status) && WEXITSTATUS(status) == 0,
          "reader process saw every committed put (%d bad)", bad);
    CHECK(irohds_store_apply_touches(s) == 0, "apply reader touches");
    int touched = 0;
    for (uint64_t i = 0; i < 200; i++) {
        uint8_t key[32];
        irohds_record got;
        make_key(key, 10, i);
        if (irohds_store_lookup(s, key, &got) == 0 && got.last_used_us > got.created_us &&
            got.last_used_us >= t0)
            touched++;
    }
    CHECK(touched == 200, "reader touches folded in: %d of 200", touched);
    irohds_store_close(s);
    close(p2c[0]);
    close(p2c[1]);
    close(c2p[0]);
    close(c2p[1]);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Numbers for the report: a fresh process's open + first lookup, and warm
 * lookups on a kept handle. */
static void measure(void)
{
    wipe();
    irohds_store *s = open_w();
    uint8_t k[32];
    for (uint64_t i = 0; i < 1000; i++) {
        make_key(k, 11, i);
        put_simple(s, k, 64, i, "bench.f", 0, NULL);
    }
    irohds_store_close(s);
    make_key(k, 11, 500);
    enum { RUNS = 30 };
    uint64_t cold[RUNS];
    for (int run = 0; run < RUNS; run++) {
        int pp[2];
        if (pipe(pp))
            exit(2);
        pid_t pid = fork();
        if (pid == 0) {
            irohds_record rec;
            irohds_store *r;
            uint64_t t = irohds_monotonic_ns();
            int rc = irohds_store_open(&r, store_dir, IROHDS_STORE_READONLY);
            if (!rc)
                rc = irohds_store_lookup(r, k, &rec);
            t = irohds_monotonic_ns() - t;
            if (rc)
                t = 0;
            write(pp[1], &t, sizeof t);
            _exit(0);
        }
        read_all(pp[0], &cold[run], sizeof cold[run]);
        waitpid(pid, NULL, 0);
        close(pp[0]);
        close(pp[1]);
    }
    qsort(cold, RUNS, sizeof cold[0], cmp_u64);
    CHECK(cold[0] > 0, "fresh-process open+lookup worked");
    printf("measure: fresh process open(READONLY)+lookup: median %.1f us, min %.1f, max %.1f (%d runs)\n",
           cold[RUNS / 2] / 1e3, cold[0] / 1e3, cold[RUNS - 1] / 1e3, RUNS);

    int pp[2];
    if (pipe(pp))
        exit(2);
    pid_t pid = fork();
    if (pid == 0) {
        irohds_store *r;
        irohds_record rec;
        uint8_t miss[32];
        make_key(miss, 12, 1);
        double res[3] = {0};
        if (irohds_store_open(&r, store_dir, IROHDS_STORE_READONLY) == 0) {
            enum { N = 1000000 };
            uint64_t t = irohds_monotonic_ns();
            int bad = 0;
            for (int i = 0; i < N; i++)
                bad |= irohds_store_lookup(r, k, &rec);
            res[0] = bad ? -1 : (double)(irohds_monotonic_ns() - t) / N;
            t = irohds_monotonic_ns();
            for (int i = 0; i < N; i++)
                bad |= irohds_store_lookup(r, miss, &rec) != -ENOENT;
            res[1] = bad ? -1 : (double)(irohds_monotonic_ns() - t) / N;
            t = irohds_monotonic_ns();
            for (int i = 0; i < 100000; i++)
                irohds_store_touch(r, k);
            res[2] = (double)(irohds_monotonic_ns() - t) / 100000;
            irohds_store_close(r);
        }
        write(pp[1], res, sizeof res);
        _exit(0);
    }
    double res[3];
    read_all(pp[0], res, sizeof res);
    waitpid(pid, NULL, 0);
    close(pp[0]);
    close(pp[1]);
    CHECK(res[0] > 0 && res[1] > 0, "warm lookups worked");
    printf("measure: warm lookup hit %.0f ns, miss %.0f ns, touch %.0f ns\n", res[0], res[1],
           res[2]);

    /* ingest + put throughput, for the record */
    s = open_w();
    uint64_t t = irohds_monotonic_ns();
    for (uint64_t i = 0; i < 200; i++) {
        make_key(k, 13, i);
        put_simple(s, k, 4096, 5000 + i, "bench.g", 0, NULL);
    }
    printf("measure: stage+ingest+put of 4 KiB (no sync): %.1f us each\n",
           (irohds_monotonic_ns() - t) / 200 / 1e3);
    uint8_t h[32];
    int fd = stage("big", 64 << 20, 1, false);
    t = irohds_monotonic_ns();
    uint64_t size;
    irohds_store_ingest_fd(s, fd, h, &size);
    printf("measure: ingest_fd of 64 MiB (linked, hash+outboard): %.1f ms\n",
           (irohds_monotonic_ns() - t) / 1e6);
    close(fd);
    fd = stage("big2", 64 << 20, 2, true);
    t = irohds_monotonic_ns();
    irohds_store_ingest_fd(s, fd, h, &size);
    printf("measure: ingest_fd of 64 MiB (unlinked, copied): %.1f ms\n",
           (irohds_monotonic_ns() - t) / 1e6);
    close(fd);
    char path[256];
    snprintf(path, sizeof path, "%s/big", staging);
    unlink(path);
    irohds_store_close(s);
}

/* ------------------------------------------------------------ crash test */

/* The child: ingest + put (+ some removes and files) until killed.  Reports
 * 'P'+key after each put returns, 'R'+key before each remove starts. */
static void crash_child(int out, int round)
{
    irohds_store *s;
    unsigned flags = round % 2 ? IROHDS_STORE_SYNC : 0;
    if (irohds_store_open(&s, store_dir, flags))
        _exit(20);
    irohds_store_set_files_dir(s, files_dir);
    rng_state ^= (uint64_t)getpid() * 0x9e3779b97f4a7c15ull;
    for (uint64_t i = 0;; i++) {
        uint8_t key[32], h[32], hf[32];
        make_key(key, 100 + (uint64_t)round, i);
        size_t len = (size_t)(rnd() % 200000);
        uint64_t seed = i % 5 == 0 ? 424242 : rnd(); /* some shared content */
        if (i % 5 == 0)
            len = 33333;
        if (ingest(s, len, seed, i % 3 == 0, h))
            _exit(21);
        irohds_record r = make_rec(h, len, "crash.f");
        irohds_file f;
        uint32_t nf = 0;
        if (i % 4 == 0) {
            size_t fl = (size_t)(rnd() % 50000);
            if (ingest(s, fl, rnd(), false, hf))
                _exit(22);
            memset(&f, 0, sizeof f);
            snprintf(f.name, sizeof f.name, "out/f%llu.dat", (unsigned long long)i);
            memcpy(f.blob, hf, 32);
            f.size = fl;
            nf = 1;
        }
        if (irohds_store_put(s, key, &r, &f, nf))
            _exit(23);
        if (nf)
            irohds_store_link_files(s, key);
        uint8_t msg[33] = {'P'};
        memcpy(msg + 1, key, 32);
        write(out, msg, sizeof msg);
        if (i % 7 == 6) {
            make_key(key, 100 + (uint64_t)round, i - 3);
            msg[0] = 'R';
            memcpy(msg + 1, key, 32);
            write(out, msg, sizeof msg);
            irohds_store_remove(s, key);
        }
    }
}

static void test_crash_storm(void)
{
    wipe();
    struct {
        uint8_t key[32];
        bool maybe_removed;
    } *committed = NULL;
    size_t ncommitted = 0;
    int total_rounds = 8;
    for (int round = 0; round < total_rounds; round++) {
        int pp[2];
        if (pipe(pp))
            exit(2);
        pid_t pid = fork();
        if (pid == 0) {
            close(pp[0]);
            crash_child(pp[1], round);
        }
        close(pp[1]);
        struct timespec ts = {0, (long)(30 + rnd() % 300) * 1000000L};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        int status;
        waitpid(pid, &status, 0);
        CHECK(WIFSIGNALED(status), "round %d: child died on its own (exit %d)", round,
              WIFEXITED(status) ? WEXITSTATUS(status) : -1);
        uint8_t msg[33];
        ssize_t r;
        size_t puts = 0;
        while ((r = read(pp[0], msg, sizeof msg)) == (ssize_t)sizeof msg) {
            if (msg[0] == 'P') {
                committed = realloc(committed, (ncommitted + 1) * sizeof *committed);
                memcpy(committed[ncommitted].key, msg + 1, 32);
                committed[ncommitted++].maybe_removed = false;
                puts++;
            } else {
                for (size_t i = 0; i < ncommitted; i++)
                    if (!memcmp(committed[i].key, msg + 1, 32))
                        committed[i].maybe_removed = true;
            }
        }
        close(pp[0]);
        irohds_store *s = open_w();
        CHECK(irohds_store_recover(s) == 0, "round %d: recover", round);
        size_t missing = 0;
        for (size_t i = 0; i < ncommitted; i++) {
            irohds_record got;
            int rc = irohds_store_lookup(s, committed[i].key, &got);
            if (rc == -ENOENT && committed[i].maybe_removed)
                continue;
            if (rc || irohds_store_verify_blob(s, got.blob))
                missing++;
        }
        CHECK(missing == 0, "round %d: %zu committed keys missing or corrupt", round, missing);
        int bad = check_consistent(s);
        CHECK(bad == 0, "round %d: %d inconsistencies after recover", round, bad);
        uint64_t entries, bytes;
        irohds_store_stats(s, &entries, &bytes);
        printf("crash round %d (%s): killed after %zu puts; store has %llu entries\n", round,
               round % 2 ? "sync" : "nosync", puts, (unsigned long long)entries);
        irohds_store_close(s);
    }
    free(committed);
}

/* A reader process killed while it holds an LMDB reader slot (every Python
 * process that ever looked something up holds one) leaves the slot behind;
 * reader_check must free it, or old pages stay pinned and the index grows. */
static void test_reader_check(void)
{
    wipe();
    irohds_store *w = open_w();
    uint8_t key[32], h[32];
    make_key(key, 77, 1);
    CHECK(put_simple(w, key, 1000, 5, "m.rc", 0, h) == 0, "put for reader check");
    int pipefd[2];
    CHECK(pipe(pipefd) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {
        irohds_store *r;
        irohds_record rec;
        int ok = irohds_store_open(&r, store_dir, IROHDS_STORE_READONLY) == 0 &&
                 irohds_store_lookup(r, key, &rec) == 0;
        char c = ok ? 'y' : 'n';
        if (write(pipefd[1], &c, 1) != 1)
            _exit(3);
        pause(); /* killed here, slot still held */
        _exit(0);
    }
    char c = 0;
    CHECK(read(pipefd[0], &c, 1) == 1 && c == 'y', "child reader looked up the key");
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    close(pipefd[0]);
    close(pipefd[1]);
    int stale = -1;
    CHECK(irohds_store_reader_check(w, &stale) == 0 && stale == 1,
          "reader_check freed the dead reader's slot (stale=%d)", stale);
    CHECK(irohds_store_reader_check(w, &stale) == 0 && stale == 0, "and only once (stale=%d)",
          stale);
    irohds_store_close(w);
}

int main(int argc, char **argv)
{
    (void)argc;
    (void)argv;
    snprintf(root, sizeof root, "/tmp/test_store.XXXXXX");
    if (!mkdtemp(root)) {
        perror("mkdtemp");
        return 2;
    }
    snprintf(store_dir, sizeof store_dir, "%s/store", root);
    snprintf(staging, sizeof staging, "%s/staging", root);
    snprintf(files_dir, sizeof files_dir, "%s/files", root);
    irohds_log_set_level(IROHDS_LOG_ERROR);
    test_missing_store();
    test_ingest();
    test_put_lookup();
    test_record_layouts();
    test_ingest_verified();
    test_refcounts_and_replace();
    test_lru_gc();
    test_mmap_survives_removal();
    test_verify_drop();
    test_files();
    test_recover_leftovers();
    test_multi_reader();
    test_crash_storm();
    test_reader_check();
    measure();
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf %s", root);
    if (system(cmd) != 0)
        printf("warning: could not remove %s\n", root);
    return check_summary();
}
