/*
 * mkstore: test helper that writes one result into a store through the
 * store writer API (src/store/store.h), so the Python tests of the
 * read-only Store (tests/python/test_native_store.py) need no daemon.
 *
 *   mkstore [--producer HEX] [--origin N] STORE_DIR KEY_HEX RESULT_FILE FUNC NS [NAME=FILE ...]
 *
 * Ingests RESULT_FILE (and each FileRef FILE under NAME), records KEY ->
 * result with serializer PICKLE5 and 1.5 compute seconds, and prints
 * "<blob hex> <size>" on stdout.  Exit status 1 on any error.
 *
 * --producer sets the record's producer node id (64 hex; default all zero)
 * and --origin its origin (0 computed here, 1 downloaded from a peer; any
 * other number is written as given): a result "from a peer" as the daemon
 * will store one, for the tests of trusted and restricted loading.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "store/store.h"
#include "util/util.h"

#define MAX_FILES 16

static int fail(const char *what, int rc)
{
    fprintf(stderr, "mkstore: %s: %s\n", what, strerror(-rc));
    return 1;
}

static int usage(void)
{
    fprintf(stderr, "usage: mkstore [--producer HEX] [--origin N] STORE_DIR KEY_HEX RESULT_FILE "
                    "FUNC NS [NAME=FILE ...]\n");
    return 2;
}

int main(int argc, char **argv)
{
    static irohds_record rec;
    static irohds_file files[MAX_FILES];
    while (argc > 2 && !strncmp(argv[1], "--", 2)) {
        if (!strcmp(argv[1], "--producer")) {
            if (strlen(argv[2]) != 2 * IROHDS_HASH_LEN ||
                irohds_hex_decode(argv[2], rec.producer, sizeof rec.producer) < 0)
                return fail("producer", -22);
        } else if (!strcmp(argv[1], "--origin")) {
            rec.origin = (uint32_t)strtoul(argv[2], NULL, 10);
        } else {
            return usage();
        }
        argc -= 2;
        argv += 2;
    }
    if (argc < 6 || argc - 6 > MAX_FILES)
        return usage();
    uint8_t key[IROHDS_KEY_LEN];
    if (strlen(argv[2]) != 2 * IROHDS_KEY_LEN || irohds_hex_decode(argv[2], key, sizeof key) < 0)
        return fail("key", -22);
    irohds_store *s;
    int rc = irohds_store_open(&s, argv[1], 0);
    if (rc < 0)
        return fail("open", rc);
    rc = irohds_store_ingest_path(s, argv[3], rec.blob, &rec.size);
    if (rc < 0)
        return fail("ingest", rc);
    rec.serializer = IROHDS_SER_PICKLE5;
    rec.compute_seconds = 1.5;
    snprintf(rec.func, sizeof rec.func, "%s", argv[4]);
    snprintf(rec.ns, sizeof rec.ns, "%s", argv[5]);
    uint32_t n = 0;
    for (int i = 6; i < argc; i++, n++) {
        char *eq = strchr(argv[i], '=');
        if (!eq)
            return fail("NAME=FILE", -22);
        snprintf(files[n].name, sizeof files[n].name, "%.*s", (int)(eq - argv[i]), argv[i]);
        rc = irohds_store_ingest_path(s, eq + 1, files[n].blob, &files[n].size);
        if (rc < 0)
            return fail("ingest file", rc);
        rec.files_size += files[n].size;
    }
    rec.nfiles = n;
    rc = irohds_store_put(s, key, &rec, files, n);
    if (rc < 0)
        return fail("put", rc);
    char hex[2 * IROHDS_HASH_LEN + 1];
    irohds_hex_encode(rec.blob, IROHDS_HASH_LEN, hex);
    printf("%s %llu\n", hex, (unsigned long long)rec.size);
    irohds_store_close(s);
    return 0;
}
