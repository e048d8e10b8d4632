/*
 * store/gc.c: last-used times, eviction, sweeping and crash recovery.
 *
 * Readers cannot write LMDB, so they append fixed 48-byte records to
 * touch.log (one write() each, O_APPEND: records from many processes never
 * interleave); the writer folds them in before it evicts.
 *
 * Eviction walks the lru order oldest first.  Each candidate is removed in a
 * nested transaction so it can be undone when one of the blobs it would free
 * turns out to be flock()ed by a reader; the exclusive locks taken for that
 * check are held until the blobs are unlinked after the commit.
 *
 * The sweep deletes blob files nothing references.  During normal running it
 * spares young files (an ingest on the daemon's worker thread may have just
 * produced one for a put still to come); at recovery, before any ingest
 * runs, it spares nothing.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

/* ------------------------------------------------------------- touches */

/* FNV-1a over a version tag and the record: rejects torn or zeroed tails. */
static uint64_t touch_check(const uint8_t *rec)
{
    static const char tag[] = "irohds touch v1";
    uint64_t h = 0xcbf29ce484222325u;
    for (size_t i = 0; i < sizeof tag - 1; i++)
        h = (h ^ (uint8_t)tag[i]) * 0x100000001b3u;
    for (size_t i = 0; i < 40; i++)
        h = (h ^ rec[i]) * 0x100000001b3u;
    return h;
}

int irohds_store_touch(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN])
{
    if (s->touch_fd < 0) {
        char path[PATH_MAX];
        store_subpath(s, "touch.log", path, sizeof path);
        s->touch_fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (s->touch_fd < 0)
            return -errno;
    }
    uint8_t rec[STORE_TOUCH_REC];
    memcpy(rec, key, IROHDS_KEY_LEN);
    store_put64(rec + 32, (uint64_t)irohds_now_us());
    store_put64(rec + 40, touch_check(rec));
    ssize_t w = write(s->touch_fd, rec, sizeof rec);
    return w == (ssize_t)sizeof rec ? 0 : w < 0 ? -errno : -EIO;
}

static int apply_one(irohds_store *s, MDB_txn *txn, const uint8_t *key, int64_t t)
{
    MDB_val k = {IROHDS_KEY_LEN, (void *)key}, v;
    int rc = mdb_get(txn, s->results, &k, &v);
    if (rc)
        return rc == MDB_NOTFOUND ? 0 : store_err(rc); /* removed since: fine */
    irohds_record rec;
    if (store_rec_decode(v.mv_data, v.mv_size, &rec) || t <= rec.last_used_us)
        return 0;
    uint8_t lk[STORE_LRU_KEY], buf[STORE_REC_MAX];
    store_lru_key(lk, rec.last_used_us, key);
    MDB_val l = {STORE_LRU_KEY, lk}, empty = {0, ""};
    rc = mdb_del(txn, s->lru, &l, NULL);
    if (rc && rc != MDB_NOTFOUND)
        return store_err(rc);
    rec.last_used_us = t;
    store_lru_key(lk, t, key);
    if ((rc = mdb_put(txn, s->lru, &l, &empty, 0)) != 0)
        return store_err(rc);
    v.mv_size = store_rec_encode(&rec, buf);
    v.mv_data = buf;
    return store_err(mdb_put(txn, s->results, &k, &v, 0));
}

/* Apply the records in fd from *off to its end; *off advances. */
static int apply_from(irohds_store *s, int fd, off_t *off)
{
    enum { BATCH = 4096 };
    uint8_t *buf = malloc(BATCH * STORE_TOUCH_REC);
    if (!buf)
        return -ENOMEM;
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc) {
        free(buf);
        return store_err(rc);
    }
    for (;;) {
        ssize_t r = pread(fd, buf, BATCH * STORE_TOUCH_REC, *off);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            rc = -errno;
            break;
        }
        size_t n = (size_t)r / STORE_TOUCH_REC;
        if (n == 0)
            break; /* end, or a torn record at the tail: it goes with the truncate */
        for (size_t i = 0; i < n && !rc; i++) {
            const uint8_t *rec = buf + i * STORE_TOUCH_REC;
            if (store_get64(rec + 40) == touch_check(rec))
                rc = apply_one(s, txn, rec, (int64_t)store_get64(rec + 32));
        }
        *off += (off_t)(n * STORE_TOUCH_REC);
        if (rc)
            break;
    }
    free(buf);
    if (rc) {
        mdb_txn_abort(txn);
        return rc;
    }
    return store_err(mdb_txn_commit(txn));
}

int irohds_store_apply_touches(irohds_store *s)
{
    int rc = store_writable(s);
    if (rc)
        return rc;
    char path[PATH_MAX];
    store_subpath(s, "touch.log", path, sizeof path);
    int fd = open(path, O_RDWR | O_CLOEXEC);
    if (fd < 0)
        return errno == ENOENT ? 0 : -errno;
    off_t off = 0;
    struct stat st;
    /* Catch up with appends made while we worked, then truncate.  A record
     * appended between the last fstat and the truncate is lost: that costs
     * one result a slightly older last-used time, nothing more. */
    for (int round = 0; round < 4 && !rc; round++) {
        rc = apply_from(s, fd, &off);
        if (!rc && fstat(fd, &st) != 0)
            rc = -errno;
        if (!rc && st.st_size < off + STORE_TOUCH_REC)
            break;
    }
    if (!rc && ftruncate(fd, 0) != 0)
        rc = -errno;
    close(fd);
    return rc;
}

/* ------------------------------------------------------------- evict */

static int seek_next(irohds_store *s, MDB_txn *txn, uint8_t resume[STORE_LRU_KEY], bool first)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->lru, &c);
    if (rc)
        return rc;
    MDB_val k = {STORE_LRU_KEY, resume}, v;
    rc = mdb_cursor_get(c, &k, &v, first ? MDB_FIRST : MDB_SET_RANGE);
    if (!rc && !first && k.mv_size == STORE_LRU_KEY && !memcmp(k.mv_data, resume, STORE_LRU_KEY))
        rc = mdb_cursor_get(c, &k, &v, MDB_NEXT); /* the one we skipped last time */
    if (!rc) {
        if (k.mv_size == STORE_LRU_KEY)
            memcpy(resume, k.mv_data, STORE_LRU_KEY);
        else
            rc = mdb_cursor_del(c, 0) == 0 ? -EAGAIN : EIO; /* not ours: drop, look again */
    }
    mdb_cursor_close(c);
    return rc;
}

/* Try to remove one candidate; 1 if skipped because a blob is locked. */
static int evict_one(irohds_store *s, MDB_txn *txn, const uint8_t *key, store_blobs *dead,
                     uint64_t *freed)
{
    MDB_txn *child;
    int rc = mdb_txn_begin(s->env, txn, 0, &child);
    if (rc)
        return store_err(rc);
    store_blobs cand = {0};
    rc = store_remove_in_txn(s, child, key, &cand);
    for (size_t i = 0; i < cand.n && !rc; i++) {
        rc = store_blob_lock(s, cand.v[i].hash, &cand.v[i].lock_fd);
        if (rc == -EWOULDBLOCK)
            rc = 1;
    }
    if (rc) {
        mdb_txn_abort(child);
        store_blobs_free(&cand);
        return rc;
    }
    if ((rc = mdb_txn_commit(child)) != 0) {
        store_blobs_free(&cand);
        return store_err(rc);
    }
    for (size_t i = 0; i < cand.n && !rc; i++) {
        rc = store_blobs_push(dead, cand.v[i].hash, cand.v[i].size);
        if (!rc) {
            dead->v[dead->n - 1].lock_fd = cand.v[i].lock_fd; /* now dead's to close */
            cand.v[i].lock_fd = -1;
            *freed += store_disk_bytes(cand.v[i].size);
        }
    }
    store_blobs_free(&cand);
    return rc;
}

static int evict(irohds_store *s, uint64_t limit, irohds_store_in_use_fn in_use, void *ctx,
                 uint64_t *freed)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return store_err(rc);
    uint64_t total = 0, gone = 0;
    store_blobs dead = {0};
    uint8_t (*removed)[IROHDS_KEY_LEN] = NULL;
    size_t nremoved = 0;
    uint8_t resume[STORE_LRU_KEY] = {0};
    rc = store_sum_refs(s, txn, &total);
    for (bool first = true; !rc && total > limit + gone; first = false) {
        rc = seek_next(s, txn, resume, first);
        if (rc == -EAGAIN) {
            rc = 0;
            continue;
        }
        if (rc) {
            rc = rc == MDB_NOTFOUND ? 0 : store_err(rc);
            break; /* everything left is in use */
        }
        const uint8_t *key = resume + 8;
        MDB_val k = {IROHDS_KEY_LEN, (void *)key}, v;
        irohds_record rec;
        rc = mdb_get(txn, s->results, &k, &v);
        if (rc == MDB_NOTFOUND) { /* an lru entry left without its result */
            MDB_val l = {STORE_LRU_KEY, resume};
            rc = store_err(mdb_del(txn, s->lru, &l, NULL));
            continue;
        }
        if (rc || store_rec_decode(v.mv_data, v.mv_size, &rec)) {
            rc = rc ? store_err(rc) : 0;
            continue;
        }
        if (in_use && in_use(ctx, key, &rec))
            continue;
        rc = evict_one(s, txn, key, &dead, &gone);
        if (rc == 1) {
            rc = 0;
            continue;
        }
        if (!rc) {
            void *r = realloc(removed, (nremoved + 1) * IROHDS_KEY_LEN);
            if (!r) {
                rc = -ENOMEM;
                break;
            }
            removed = r;
            memcpy(removed[nremoved++], key, IROHDS_KEY_LEN);
        }
    }
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = store_err(mdb_txn_commit(txn));
    if (!rc) {
        store_delete_blobs(s, &dead);
        for (size_t i = 0; i < nremoved; i++)
            store_delete_files_dir(s, removed[i]);
        *freed += gone;
    }
    store_blobs_free(&dead);
    free(removed);
    return rc;
}

/* ------------------------------------------------------------- sweeping */

static bool old_enough(const struct stat *st, int64_t grace_us)
{
    int64_t age = irohds_now_us() - ((int64_t)st->st_ctim.tv_sec * 1000000 +
                                     st->st_ctim.tv_nsec / 1000);
    return grace_us <= 0 || age >= grace_us;
}

/* One blobs/xx directory: delete what nothing references. */
static void sweep_subdir(irohds_store *s, int dfd, int64_t grace_us, bool fix_outboards,
                         uint64_t *freed)
{
    DIR *d = fdopendir(dfd);
    if (!d) {
        close(dfd);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        size_t n = strlen(e->d_name);
        char hex[2 * IROHDS_HASH_LEN + 1];
        uint8_t hash[IROHDS_HASH_LEN];
        bool is_ob = n == 69 && !strcmp(e->d_name + 64, ".obao");
        if ((n != 64 && !is_ob))
            continue; /* not a name we make: not ours to delete */
        memcpy(hex, e->d_name, 64);
        hex[64] = '\0';
        struct stat st;
        if (irohds_hex_decode(hex, hash, sizeof hash) || fstatat(dirfd(d), e->d_name, &st, 0))
            continue;
        if (is_ob) {
            /* an outboard whose blob is gone (crash between the two unlinks) */
            if (faccessat(dirfd(d), hex, F_OK, 0) != 0 && old_enough(&st, grace_us))
                unlinkat(dirfd(d), e->d_name, 0);
            continue;
        }
        MDB_val k = {IROHDS_HASH_LEN, hash}, v;
        if (mdb_get(s->rtxn, s->refs, &k, &v) == 0) {
            char obp[PATH_MAX];
            irohds_store_blob_path(s, hash, true, obp, sizeof obp);
            if (fix_outboards && access(obp, F_OK) != 0)
                irohds_store_verify_blob(s, hash); /* rewrites a missing outboard */
            continue;
        }
        int lock_fd;
        if (!old_enough(&st, grace_us) || store_blob_lock(s, hash, &lock_fd) != 0)
            continue; /* young (an ingest for a coming put) or in use */
        char ob[80];
        snprintf(ob, sizeof ob, "%s.obao", hex);
        if (unlinkat(dirfd(d), e->d_name, 0) == 0)
            *freed += store_disk_bytes((uint64_t)st.st_size);
        unlinkat(dirfd(d), ob, 0);
        if (lock_fd >= 0)
            close(lock_fd);
    }
    closedir(d);
}

static int sweep_blobs(irohds_store *s, int64_t grace_us, bool fix_outboards, uint64_t *freed)
{
    char path[PATH_MAX];
    store_subpath(s, "blobs", path, sizeof path);
    DIR *d = opendir(path);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int rc = store_rtxn_renew(s);
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        if (strlen(e->d_name) != 2 || e->d_name[0] == '.')
            continue;
        int fd = openat(dirfd(d), e->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
        if (fd >= 0)
            sweep_subdir(s, fd, grace_us, fix_outboards, freed);
    }
    if (!rc)
        mdb_txn_reset(s->rtxn);
    closedir(d);
    return rc;
}

/* tmp/ holds only files being written; old ones are leftovers of a crash. */
static void sweep_tmp(irohds_store *s, int64_t grace_us)
{
    char path[PATH_MAX];
    store_subpath(s, "tmp", path, sizeof path);
    DIR *d = opendir(path);
    if (!d)
        return;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        struct stat st;
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") &&
            fstatat(dirfd(d), e->d_name, &st, AT_SYMLINK_NOFOLLOW) == 0 && old_enough(&st, grace_us))
            irohds_rmtree_at(dirfd(d), e->d_name);
    }
    closedir(d);
}

/* files/: dirs of results that no longer exist, and half-built ones. */
static int sweep_files(irohds_store *s)
{
    if (!s->files_dir[0])
        return 0;
    DIR *d = opendir(s->files_dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    int rc = store_rtxn_renew(s);
    struct dirent *e;
    while (!rc && (e = readdir(d)) != NULL) {
        uint8_t key[IROHDS_KEY_LEN];
        if (!strncmp(e->d_name, ".tmp-", 5)) {
            irohds_rmtree_at(dirfd(d), e->d_name);
        } else if (irohds_hex_decode(e->d_name, key, sizeof key) == 0) {
            MDB_val k = {IROHDS_KEY_LEN, key}, v;
            if (mdb_get(s->rtxn, s->results, &k, &v) == MDB_NOTFOUND)
                irohds_rmtree_at(dirfd(d), e->d_name);
        }
    }
    if (!rc)
        mdb_txn_reset(s->rtxn);
    closedir(d);
    return rc;
}

int irohds_store_gc(irohds_store *s, uint64_t limit_bytes, irohds_store_in_use_fn in_use,
                    void *ctx, uint64_t *freed)
{
    uint64_t f = 0;
    int rc = irohds_store_apply_touches(s);
    if (!rc && limit_bytes)
        rc = evict(s, limit_bytes, in_use, ctx, &f);
    if (!rc)
        rc = sweep_blobs(s, STORE_GC_GRACE_US, false, &f);
    if (!rc)
        sweep_tmp(s, STORE_GC_GRACE_US);
    if (freed)
        *freed = f;
    return rc;
}

int irohds_store_reader_check(irohds_store *s, int *stale)
{
    int dead = 0;
    int rc = mdb_reader_check(s->env, &dead);
    if (stale)
        *stale = dead;
    return rc ? -EIO : 0;
}

int irohds_store_recover(irohds_store *s)
{
    int rc = store_writable(s);
    if (rc)
        return rc;
    int stale = 0;
    irohds_store_reader_check(s, &stale);
    if (stale)
        IROHDS_INFO("store: cleared %d stale LMDB reader slots", stale);
    sweep_tmp(s, 0);
    uint64_t dropped = 0, freed = 0;
    if ((rc = store_repair_index(s, &dropped)) != 0)
        return rc;
    if (dropped)
        IROHDS_WARN("store: dropped %llu results whose blobs were missing or short",
                    (unsigned long long)dropped);
    if ((rc = sweep_blobs(s, 0, true, &freed)) != 0)
        return rc;
    if (freed)
        IROHDS_INFO("store: removed %llu bytes of unreferenced blobs", (unsigned long long)freed);
    return sweep_files(s);
}
