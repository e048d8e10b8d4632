/*
 * store/store_int.h: private to src/store (not an API; store.h is).
 *
 * The handle, the on-disk record encodings and the helpers that store.c
 * (index), blobs.c (blob files) and gc.c (eviction, recovery, touches) share.
 * The encodings are described byte by byte in docs/store.md.
 */
#ifndef IROHDS_STORE_INT_H
#define IROHDS_STORE_INT_H

#include <lmdb.h>

#include "hash/bao.h"
#include "store/store.h"

struct irohds_store {
    /* 256 short of PATH_MAX so every path built under them fits */
    char dir[PATH_MAX - 256];
    char files_dir[PATH_MAX - 256]; /* "" until irohds_store_set_files_dir */
    unsigned flags;
    MDB_env *env;
    MDB_dbi results, files, refs, lru, meta;
    MDB_txn *rtxn; /* the reused read transaction, kept reset between calls */
    int touch_fd;  /* touch.log, opened on first touch */
};

/* results value: fixed part, then func bytes, then ns bytes (no NULs) */
#define STORE_REC_VERSION 1
#define STORE_REC_FIXED 200 /* 88 in the first layout, 128 in the second; both still read */
#define STORE_REC_FIXED_V2 128
#define STORE_REC_FIXED_V1 88
#define STORE_REC_MAX (STORE_REC_FIXED + IROHDS_FUNC_MAX + IROHDS_NS_MAX)
/* files key: cache key ‖ u32 big-endian index; value: fixed part + name */
#define STORE_FILE_KEY 36
#define STORE_FILE_FIXED 48
/* lru key: u64 big-endian (last_used_us + 2^63) ‖ cache key */
#define STORE_LRU_KEY 40
/* refs value: u64 count, u64 blob size (little-endian) */
#define STORE_REF_VAL 16
/* touch.log record: key, i64 time, u64 check */
#define STORE_TOUCH_REC 48

/* Unreferenced blobs and tmp files younger than this are left to gc: they
 * may belong to an ingest still running on another thread. */
#define STORE_GC_GRACE_US (10 * 60 * 1000000ll)

/* A growable list of blobs (hash + size) to delete after a commit. */
typedef struct store_blobs {
    struct store_blob {
        uint8_t hash[IROHDS_HASH_LEN];
        uint64_t size;
        int lock_fd; /* -1, or an fd holding LOCK_EX until the unlink */
    } *v;
    size_t n, cap;
} store_blobs;

int store_blobs_push(store_blobs *l, const uint8_t hash[IROHDS_HASH_LEN], uint64_t size);
void store_blobs_free(store_blobs *l);

int store_err(int mdb_rc);
int store_writable(const irohds_store *s);

/* encodings */
size_t store_rec_encode(const irohds_record *r, uint8_t *out);
int store_rec_decode(const void *p, size_t n, irohds_record *r);
void store_lru_key(uint8_t out[STORE_LRU_KEY], int64_t last_used_us, const uint8_t *key);
uint64_t store_get64(const uint8_t *p);
void store_put64(uint8_t *p, uint64_t v);

/* index operations inside a write transaction */
int store_ref_add(irohds_store *s, MDB_txn *txn, const uint8_t hash[IROHDS_HASH_LEN],
                  uint64_t size);
int store_remove_in_txn(irohds_store *s, MDB_txn *txn, const uint8_t key[IROHDS_KEY_LEN],
                        store_blobs *dead);
int store_read_begin(irohds_store *s, MDB_txn **txn);
int store_rtxn_renew(irohds_store *s);
int store_sum_refs(irohds_store *s, MDB_txn *txn, uint64_t *bytes);
int store_repair_index(irohds_store *s, uint64_t *dropped);

/* files */
void store_subpath(const irohds_store *s, const char *name, char *buf, size_t len);
void store_delete_blobs(irohds_store *s, store_blobs *dead);
void store_delete_files_dir(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN]);
int store_blob_lock(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN], int *fd);
int store_write_outboard(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN],
                         const uint8_t *data, uint64_t len);
uint64_t store_disk_bytes(uint64_t size);

#endif
