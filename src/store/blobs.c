/*
 * store/blobs.c: the blob files: ingest, verify, delete.
 *
 * Ingest maps the file once and computes the BLAKE3 root and the bao
 * outboard from that mapping in one pass.  The bytes then reach blobs/ by
 * the cheapest safe route: a hard link of the caller's file when it still
 * has a name on this file system (no copy at all), else a copy into tmp/ and
 * a rename.  Either way a blob appears under its final name only whole, and
 * its outboard appears before it.
 *
 * Nothing in this file touches LMDB: the daemon runs ingest on a worker
 * thread while its loop thread keeps using the index through the same
 * handle.  Only fields fixed at open (dir, flags) are read here.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store_int.h"

void irohds_store_blob_path(const irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN],
                            bool outboard, char *buf, size_t len)
{
    char hex[2 * IROHDS_HASH_LEN + 1];
    irohds_hex_encode(hash, IROHDS_HASH_LEN, hex);
    snprintf(buf, len, "%s/blobs/%.2s/%s%s", s->dir, hex, hex, outboard ? ".obao" : "");
}

int irohds_store_open_blob(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN], int *fd,
                           uint64_t *size)
{
    char path[PATH_MAX];
    irohds_store_blob_path(s, hash, false, path, sizeof path);
    int f = open(path, O_RDONLY | O_CLOEXEC);
    if (f < 0)
        return -errno;
    struct stat st;
    if (fstat(f, &st) != 0) {
        int e = -errno;
        close(f);
        return e;
    }
    *fd = f;
    *size = (uint64_t)st.st_size;
    return 0;
}

/* ------------------------------------------------------------- hashing */

/* Map fd read-only (an empty file maps to NULL). */
static int map_fd(int fd, const uint8_t **data, uint64_t *len)
{
    struct stat st;
    if (fstat(fd, &st) != 0)
        return -errno;
    if (!S_ISREG(st.st_mode))
        return -EINVAL;
    *len = (uint64_t)st.st_size;
    *data = NULL;
    if (*len == 0)
        return 0;
    void *p = mmap(NULL, *len, PROT_READ, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED)
        return -errno;
    madvise(p, *len, MADV_SEQUENTIAL);
    *data = p;
    return 0;
}

static void unmap(const uint8_t *data, uint64_t len)
{
    if (data)
        munmap((void *)data, len);
}

/* Root hash and outboard of data, in one pass. *ob is malloc'd. */
static int hash_with_outboard(const uint8_t *data, uint64_t len, uint8_t hash[IROHDS_HASH_LEN],
                              uint8_t **ob, uint64_t *oblen)
{
    *oblen = irohds_bao_outboard_size(len, IROHDS_BAO_GROUP_LOG);
    *ob = malloc(*oblen ? *oblen : 1);
    if (!*ob)
        return -ENOMEM;
    irohds_bao_outboard(data, len, IROHDS_BAO_GROUP_LOG, *ob, hash);
    return 0;
}

/* ------------------------------------------------------------- placing */

static atomic_uint tmp_counter;

/* Write bytes to a fresh file in tmp/, then rename it to dest: readers see
 * the whole file or none.  Mode 0444: blobs are never modified in place. */
static int place_bytes(const irohds_store *s, const uint8_t *buf, uint64_t len, const char *dest,
                       bool sync)
{
    char tmp[PATH_MAX];
    snprintf(tmp, sizeof tmp, "%s/tmp/%d.%u", s->dir, (int)getpid(),
             atomic_fetch_add(&tmp_counter, 1));
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = irohds_write_all(fd, buf, len);
    if (!rc && sync && fdatasync(fd) != 0)
        rc = -errno;
    if (!rc && fchmod(fd, 0444) != 0)
        rc = -errno;
    if (close(fd) != 0 && !rc)
        rc = -errno;
    if (!rc && rename(tmp, dest) != 0)
        rc = -errno;
    if (rc)
        unlink(tmp);
    return rc;
}

/* Give the caller's file a second name in blobs/: no bytes copied.  Works
 * when the file still has a name on this file system. */
static int link_fd(int fd, const char *dest, bool sync)
{
    if (fchmod(fd, 0444) != 0)
        return -errno;
    if (sync && fdatasync(fd) != 0)
        return -errno;
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
    return linkat(AT_FDCWD, proc, AT_FDCWD, dest, AT_SYMLINK_FOLLOW) == 0 ? 0 : -errno;
}

static bool has_size(const char *path, uint64_t size)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

static int place_blob(const irohds_store *s, int fd, const uint8_t *data, uint64_t len,
                      const uint8_t *hash, const uint8_t *ob, uint64_t oblen, bool sync)
{
    char blob[PATH_MAX], obp[PATH_MAX], dir[PATH_MAX];
    irohds_store_blob_path(s, hash, false, blob, sizeof blob);
    irohds_store_blob_path(s, hash, true, obp, sizeof obp);
    snprintf(dir, sizeof dir, "%s", blob);
    *strrchr(dir, '/') = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return -errno;
    /* A blob of one 16 KiB group or less has an empty outboard: no file at
     * all (a file create costs more than the whole rest of a small ingest). */
    bool have_blob = has_size(blob, len), have_ob = oblen == 0 || has_size(obp, oblen);
    if (have_blob && have_ob) {
        /* Dedupe: stored already.  The chmod refreshes its ctime, so gc's
         * sweep (which spares young files) leaves it alone until our put. */
        chmod(blob, 0444);
        return 0;
    }
    int rc = 0;
    /* outboard first: a blob under its name always has its outboard */
    if (!have_ob)
        rc = place_bytes(s, ob, oblen, obp, sync);
    if (!rc && !have_blob) {
        rc = link_fd(fd, blob, sync);
        if (rc == -EEXIST && has_size(blob, len))
            rc = 0; /* placed meanwhile by another ingest of the same bytes */
        else if (rc)
            rc = place_bytes(s, data, len, blob, sync); /* unlinked file, other fs, bad old copy */
    }
    if (!rc && sync)
        rc = irohds_fsync_dir(dir);
    return rc;
}

int irohds_store_ingest_fd(irohds_store *s, int fd, uint8_t hash[IROHDS_HASH_LEN], uint64_t *size)
{
    int rc = store_writable(s);
    if (rc)
        return rc;
    const uint8_t *data;
    uint64_t len, oblen;
    uint8_t h[IROHDS_HASH_LEN], *ob = NULL;
    if ((rc = map_fd(fd, &data, &len)) != 0)
        return rc;
    rc = hash_with_outboard(data, len, h, &ob, &oblen);
    if (!rc)
        rc = place_blob(s, fd, data, len, h, ob, oblen, s->flags & IROHDS_STORE_SYNC);
    unmap(data, len);
    free(ob);
    if (!rc) {
        memcpy(hash, h, IROHDS_HASH_LEN);
        *size = len;
    }
    return rc;
}

int irohds_store_tmp_file(irohds_store *s, int *fd, char *path, size_t cap)
{
    int rc = store_writable(s);
    if (rc)
        return rc;
    int n = snprintf(path, cap, "%s/tmp/dl.%d.%u", s->dir, (int)getpid(),
                     atomic_fetch_add(&tmp_counter, 1));
    if (n < 0 || (size_t)n >= cap)
        return -ENAMETOOLONG;
    int f = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (f < 0)
        return -errno;
    *fd = f;
    return 0;
}

int irohds_store_ingest_verified(irohds_store *s, int fd, const uint8_t hash[IROHDS_HASH_LEN],
                                 uint64_t size, const uint8_t *outboard, uint64_t outboard_len,
                                 unsigned flags)
{
    int rc = store_writable(s);
    if (rc)
        return rc;
    if (outboard_len != irohds_bao_outboard_size(size, IROHDS_BAO_GROUP_LOG))
        return -EINVAL;
    const uint8_t *data;
    uint64_t len;
    if ((rc = map_fd(fd, &data, &len)) != 0)
        return rc;
    /* A small blob whose bytes a crash lost is caught by its readers, which
     * re-hash every blob up to IROHDS_STORE_SMALL_BLOB on each read, and
     * fetched again; a larger one is mapped unchecked, so it must be on disk
     * before the record that points at it is. */
    bool sync = (s->flags & IROHDS_STORE_SYNC) && !((flags & IROHDS_INGEST_REFETCHABLE) &&
                                                    size <= IROHDS_STORE_SMALL_BLOB);
    if (len != size)
        rc = -EINVAL;
    else
        rc = place_blob(s, fd, data, len, hash, outboard, outboard_len, sync);
    unmap(data, len);
    return rc;
}

int irohds_store_ingest_path(irohds_store *s, const char *path, uint8_t hash[IROHDS_HASH_LEN],
                             uint64_t *size)
{
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -errno;
    int rc = irohds_store_ingest_fd(s, fd, hash, size);
    close(fd);
    return rc;
}

/* ------------------------------------------------------------- verify */

int irohds_store_verify_blob(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN])
{
    int fd;
    uint64_t size, len, oblen;
    int rc = irohds_store_open_blob(s, hash, &fd, &size);
    if (rc)
        return rc;
    const uint8_t *data;
    uint8_t h[IROHDS_HASH_LEN], *ob = NULL;
    rc = map_fd(fd, &data, &len);
    if (!rc)
        rc = hash_with_outboard(data, len, h, &ob, &oblen);
    if (!rc && memcmp(h, hash, IROHDS_HASH_LEN) != 0)
        rc = -EBADMSG;
    if (!rc) {
        /* Good bytes, but the outboard must match them too (transfers trust it). */
        char obp[PATH_MAX], *have = NULL;
        size_t havelen = 0;
        irohds_store_blob_path(s, hash, true, obp, sizeof obp);
        int r = irohds_read_file(obp, oblen, &have, &havelen);
        if (r == -ENOENT && oblen == 0)
            r = 0; /* empty outboards are not stored */
        if (r || havelen != oblen || (oblen && memcmp(have, ob, oblen) != 0))
            rc = store_writable(s) ? -EBADMSG
                                   : place_bytes(s, ob, oblen, obp, s->flags & IROHDS_STORE_SYNC);
        free(have);
    }
    unmap(data, len);
    free(ob);
    close(fd);
    return rc;
}

int store_write_outboard(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN],
                         const uint8_t *data, uint64_t len)
{
    uint8_t h[IROHDS_HASH_LEN], *ob;
    uint64_t oblen;
    char obp[PATH_MAX];
    int rc = hash_with_outboard(data, len, h, &ob, &oblen);
    if (rc)
        return rc;
    irohds_store_blob_path(s, hash, true, obp, sizeof obp);
    rc = memcmp(h, hash, IROHDS_HASH_LEN) ? -EBADMSG
                                          : place_bytes(s, ob, oblen, obp, s->flags & IROHDS_STORE_SYNC);
    free(ob);
    return rc;
}

/* ------------------------------------------------------------- delete */

/* Blob first, outboard second: a leftover outboard is harmless and swept. */
void store_delete_blobs(irohds_store *s, store_blobs *dead)
{
    for (size_t i = 0; i < dead->n; i++) {
        char path[PATH_MAX];
        irohds_store_blob_path(s, dead->v[i].hash, false, path, sizeof path);
        unlink(path);
        irohds_store_blob_path(s, dead->v[i].hash, true, path, sizeof path);
        unlink(path);
        if (dead->v[i].lock_fd >= 0) {
            close(dead->v[i].lock_fd);
            dead->v[i].lock_fd = -1;
        }
    }
}

void store_delete_files_dir(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN])
{
    if (!s->files_dir[0])
        return;
    char hex[2 * IROHDS_KEY_LEN + 1], path[PATH_MAX];
    irohds_hex_encode(key, IROHDS_KEY_LEN, hex);
    snprintf(path, sizeof path, "%s/%s", s->files_dir, hex);
    irohds_rmtree_at(AT_FDCWD, path);
}

/*
 * Readers flock(LOCK_SH) the blobs they are using.  Taking LOCK_EX without
 * blocking tells whether anyone does; the lock is kept (in *fd) until the
 * blob is unlinked, so no reader can take its lock in between.
 * -EWOULDBLOCK when in use; 0 with *fd = -1 when the blob is already gone.
 */
int store_blob_lock(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN], int *fd)
{
    char path[PATH_MAX];
    irohds_store_blob_path(s, hash, false, path, sizeof path);
    *fd = open(path, O_RDONLY | O_CLOEXEC);
    if (*fd < 0)
        return errno == ENOENT ? 0 : -errno;
    if (flock(*fd, LOCK_EX | LOCK_NB) != 0) {
        int e = errno;
        close(*fd);
        *fd = -1;
        return e == EWOULDBLOCK ? -EWOULDBLOCK : -e;
    }
    return 0;
}
