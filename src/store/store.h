/*
 * store: the local result store.
 *
 * Blobs are files named by their BLAKE3 hash under store/blobs/<first 2 hex>/,
 * each with its bao outboard (<hex>.obao, 16 KiB groups) beside it, written
 * when the blob is ingested.  An LMDB environment in store/index/ maps a
 * cache key (32 bytes) to a result record, and keeps the bookkeeping that
 * makes eviction and gc safe:
 *
 *   results : cache key -> record (blob hash, size, serializer, function,
 *             namespace, compute seconds, created, last used, file count)
 *   files   : (cache key, index) -> one FileRef file of that result
 *             (a range per key; names up to 1023 bytes do not fit a dupsort value)
 *   refs    : blob hash -> reference count (a blob shared by results is
 *             stored once and deleted when its last reference goes)
 *   lru     : (last used, cache key) -> nothing, the eviction order
 *
 * One writer (the daemon) and many readers (every Python process, read-only,
 * straight from LMDB and mmap: a local hit never talks to the daemon).
 *
 * Crash safety: a blob is written to store/tmp, hashed, made read-only and
 * linked into place (fdatasync first when sync is on) before the LMDB
 * transaction that references it commits.  So an index entry never points at
 * a missing or partial blob, whatever moment the daemon is killed; a blob
 * with no reference left behind by a crash is removed by
 * irohds_store_recover() at the next start.
 *
 * Last-used times: readers cannot write LMDB, so a reader appends
 * (key, time) records to store/touch.log with O_APPEND; the daemon folds them
 * into the index (irohds_store_apply_touches) before it evicts anything.
 *
 * All functions return 0 or a negative errno.  A store handle is used by one
 * thread at a time, with one exception: irohds_store_ingest_fd/_path touch
 * only files (never LMDB, never mutable handle state), so the daemon may run
 * them on a worker thread while its loop thread uses the same handle for
 * anything else.  Do not open one store twice in one process (an LMDB rule),
 * and do not use a handle in a child after fork().
 *
 * On-disk layout and record encodings: docs/store.md.
 */
#ifndef IROHDS_STORE_H
#define IROHDS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/util.h"

#define IROHDS_KEY_LEN 32
#define IROHDS_HASH_LEN 32
#define IROHDS_FUNC_MAX 256 /* "module.qualname" incl. NUL */
#define IROHDS_NS_MAX 128

/* How a result blob is to be read back. */
enum irohds_serializer {
    IROHDS_SER_PICKLE5 = 1, /* irohds result container: pickle 5 + out-of-band buffers */
};

/* Where a stored result came from.  A result from a peer is loaded with
 * plain pickle only when its producer is trusted (docs/security.md). */
enum irohds_origin {
    IROHDS_ORIGIN_LOCAL = 0,  /* computed by a process on this machine */
    IROHDS_ORIGIN_REMOTE = 1, /* downloaded from a peer (verified against its hash) */
};

typedef struct irohds_record {
    uint8_t blob[IROHDS_HASH_LEN]; /* BLAKE3 of the result blob */
    uint64_t size;                 /* bytes in the result blob */
    uint64_t files_size;           /* bytes in all its FileRef files */
    uint32_t serializer;           /* enum irohds_serializer */
    uint32_t nfiles;               /* FileRef files attached */
    double compute_seconds;        /* how long the producer took */
    int64_t created_us;            /* unix time, µs */
    int64_t last_used_us;
    uint8_t producer[IROHDS_HASH_LEN]; /* node id of the machine that computed it (0s: unknown) */
    uint32_t origin;                   /* enum irohds_origin */
    double figure;                     /* the producer's capability figure (coren); 0 unknown */
    /* The producer's Ed25519 signature over the result as it announced it
     * (docs/protocol.md), kept so this node can pass the result on to
     * others with the producer's word intact; all zero when none. */
    uint8_t producer_sig[64];
    char func[IROHDS_FUNC_MAX];
    char ns[IROHDS_NS_MAX];
} irohds_record;

typedef struct irohds_file {
    char name[IROHDS_NAME_MAX]; /* relative, checked by irohds_name_is_safe */
    uint8_t blob[IROHDS_HASH_LEN];
    uint64_t size;
} irohds_file;

typedef struct irohds_store irohds_store;

enum {
    IROHDS_STORE_READONLY = 1, /* a client: LMDB MDB_RDONLY, no writes */
    IROHDS_STORE_SYNC = 2,     /* writer: fdatasync blobs before they are referenced */
};

/* Open the store under store_dir (paths->store_dir).  A writer creates it. */
int irohds_store_open(irohds_store **out, const char *store_dir, unsigned flags);
void irohds_store_close(irohds_store *s);

/* ------------------------------------------------------------- readers */

/* 0 and *rec filled when key is stored; -ENOENT when not. */
int irohds_store_lookup(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN], irohds_record *rec);

/* The FileRef files of a result, in put order: up to max entries into files,
 * *n = how many were written; -ENOBUFS when the result has more than max
 * (rec.nfiles says how many). */
int irohds_store_files(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN], irohds_file *files,
                       uint32_t max, uint32_t *n);

/* Path of a blob (or of its outboard when outboard is true). */
void irohds_store_blob_path(const irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN],
                            bool outboard, char *buf, size_t len);

/* Open a blob read-only (O_CLOEXEC); *size from fstat. */
int irohds_store_open_blob(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN], int *fd,
                           uint64_t *size);

/* Append a last-used record for key to touch.log (readers and writer). */
int irohds_store_touch(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN]);

typedef int (*irohds_store_each_fn)(void *ctx, const uint8_t key[IROHDS_KEY_LEN],
                                    const irohds_record *rec);
/* Call fn for every result (stops early when fn returns nonzero, and returns that).
 * fn runs in its own read snapshot and may call the store's other functions. */
int irohds_store_foreach(irohds_store *s, irohds_store_each_fn fn, void *ctx);

/* Entries and bytes (result blobs + files + outboards) currently stored. */
int irohds_store_stats(irohds_store *s, uint64_t *entries, uint64_t *bytes);

/* ------------------------------------------------------------- writer */

/*
 * Take ownership of the bytes of an open file (fd, any position): hash it,
 * write its outboard, make it read-only and link it into blobs/ under its
 * hash.  The caller may close fd afterwards.  If the blob is already stored
 * nothing is written.  *hash and *size describe the blob.
 */
int irohds_store_ingest_fd(irohds_store *s, int fd, uint8_t hash[IROHDS_HASH_LEN], uint64_t *size);

/*
 * A new empty file in store/tmp/ (read-write, mode 0600, O_CLOEXEC) for
 * bytes that are to become a blob, e.g. a download: *fd, and its path in
 * path[0..cap).  ingest_verified then links it into place, no copy.  A file
 * left behind is removed by gc once untouched for ten minutes, and by
 * recover at the next start.
 */
int irohds_store_tmp_file(irohds_store *s, int *fd, char *path, size_t cap);

/*
 * Place a blob the caller has already verified against hash (a bao
 * download checks every chunk group before it is written), with the
 * outboard it verified on the way, without hashing it again.  fd holds
 * exactly size bytes; outboard holds irohds_bao_outboard_size(size, 4)
 * bytes (NULL when that is 0).  -EINVAL when the sizes disagree.  As with
 * ingest_fd, the file gets a second name when it has one on the store's
 * file system (irohds_store_tmp_file) and the caller may close fd.
 * Worker-thread safe like ingest_fd.
 */
int irohds_store_ingest_verified(irohds_store *s, int fd, const uint8_t hash[IROHDS_HASH_LEN],
                                 uint64_t size, const uint8_t *outboard, uint64_t outboard_len,
                                 unsigned flags);

/*
 * Blobs up to this size are re-hashed by every reader on every read
 * (python/irohds/_native/result.c), so a corrupt or torn small blob never
 * reaches a caller.
 */
#define IROHDS_STORE_SMALL_BLOB (64 * 1024)

enum {
    /* ingest_verified: the bytes can be fetched again (a download), so a
     * small blob (<= IROHDS_STORE_SMALL_BLOB) skips fdatasync even with
     * IROHDS_STORE_SYNC: if a crash tears it, readers see the bad hash, drop
     * it and the daemon fetches it again. */
    IROHDS_INGEST_REFETCHABLE = 1,
};

/* Same for a file given by path (it is copied or linked, never moved). */
int irohds_store_ingest_path(irohds_store *s, const char *path, uint8_t hash[IROHDS_HASH_LEN],
                             uint64_t *size);

/*
 * Record a result: key -> *rec, plus its files.  The blobs must have been
 * ingested: -ENOENT when one is not in blobs/ (it may have been evicted
 * between ingest and put: ingest again), -EINVAL when a size disagrees with
 * the blob or a file name is unsafe or repeated.  Replaces an older record
 * for the same key (forced recompute).  Sets rec's created/last used times
 * when they are 0; nfiles and files_size are taken from files.
 */
int irohds_store_put(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN], const irohds_record *rec,
                     const irohds_file *files, uint32_t nfiles);

/* Remove one result (and blobs nothing else references). -ENOENT if absent. */
int irohds_store_remove(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN]);

/* Remove every result of a function ("module.qualname"); *n = how many. */
int irohds_store_evict_func(irohds_store *s, const char *func, uint64_t *n);

/* Fold touch.log into the index's last-used times and truncate it. */
int irohds_store_apply_touches(irohds_store *s);

/* Is this result in use right now?  (The daemon answers: leases, readers.) */
typedef bool (*irohds_store_in_use_fn)(void *ctx, const uint8_t key[IROHDS_KEY_LEN],
                                       const irohds_record *rec);

/*
 * Evict least recently used results until the store holds at most
 * limit_bytes (0: no limit, evict nothing), skipping results for which
 * in_use says true and any blob a process holds a shared flock() on.  Folds
 * touch.log in first.  Then delete unreferenced blobs and tmp files older
 * than ten minutes (younger ones may belong to an ingest still running).
 * *freed = bytes removed.  in_use must not call back into the store.
 */
int irohds_store_gc(irohds_store *s, uint64_t limit_bytes, irohds_store_in_use_fn in_use,
                    void *ctx, uint64_t *freed);

/*
 * Re-hash a stored blob and compare with its name.  -EBADMSG when the bytes
 * are corrupt (the caller then drops the results that use it).  A missing or
 * wrong outboard of good bytes is rewritten (writer) or -EBADMSG (reader).
 */
int irohds_store_verify_blob(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN]);

/* Drop every result whose blob or files include hash, then delete the blob. */
int irohds_store_drop_blob(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN], uint64_t *n);

/*
 * At daemon start, before any ingest: delete store/tmp leftovers, index
 * entries whose blob file is missing or short, blobs with no reference,
 * files dirs of results that are gone; rebuild refs and lru from the
 * results; rewrite missing outboards; clear stale LMDB readers.
 */
int irohds_store_recover(irohds_store *s);

/*
 * Free the LMDB reader slots of processes that died holding one (a killed
 * Python process).  A stale slot pins old pages, so the index would grow
 * without bound; the daemon calls this on its periodic tick.  *stale = how
 * many were freed (may be NULL).
 */
int irohds_store_reader_check(irohds_store *s, int *stale);

/* ------------------------------------------------------------- files dir */

/*
 * Where FileRef files are materialized (paths->files_dir).  Until this is
 * set, link_files fails with -EINVAL and nothing deletes files dirs.
 */
int irohds_store_set_files_dir(irohds_store *s, const char *files_dir);

/*
 * Make <files_dir>/<64-hex key>/<name> hard links to the blobs of key's
 * FileRef files (subdirectories created; names re-checked with
 * irohds_name_is_safe).  The dir is built aside and renamed, so it is either
 * complete or absent; 0 if it already exists.  remove, evict_func, gc,
 * drop_blob and a replacing put delete it.
 */
int irohds_store_link_files(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN]);

#endif
