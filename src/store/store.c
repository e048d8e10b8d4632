/*
 * store/store.c: the LMDB index: opening, the read path, put and remove.
 *
 * The read path is the hit path of every Python call that misses its
 * in-process table, so it is built for that: DBI handles are opened once at
 * open, and one read transaction is kept for the life of the handle and only
 * reset/renewed around each lookup (a renew is a store into this process's
 * reader slot; no allocation, no syscall).  MDB_NOTLS ties that transaction
 * to the handle rather than to a thread.
 *
 * Writes are single LMDB transactions that keep results, files, refs and lru
 * consistent with each other.  Blob files are deleted only after the
 * transaction that dropped their last reference has committed, so a crash
 * can leave an unreferenced blob behind (recover() removes it) but never an
 * index entry without its blob.
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

#define MAP_SIZE (32ull << 30) /* virtual; the file grows only as data does */
#define MAX_READERS 1024
#define FORMAT_VERSION 1

/* ------------------------------------------------------------- helpers */

int store_err(int rc)
{
    if (rc > 0)
        return -rc; /* LMDB passes errno values through */
    switch (rc) {
    case 0:
        return 0;
    case MDB_NOTFOUND:
        return -ENOENT;
    case MDB_MAP_FULL:
        return -ENOSPC;
    case MDB_READERS_FULL:
    case MDB_MAP_RESIZED:
        return -EAGAIN;
    case MDB_BAD_VALSIZE:
        return -EINVAL;
    default:
        return -EIO; /* corrupted, version mismatch, ... */
    }
}

int store_writable(const irohds_store *s)
{
    return s->flags & IROHDS_STORE_READONLY ? -EROFS : 0;
}

int store_blobs_push(store_blobs *l, const uint8_t hash[IROHDS_HASH_LEN], uint64_t size)
{
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 8;
        struct store_blob *v = realloc(l->v, cap * sizeof *v);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v[l->n].hash, hash, IROHDS_HASH_LEN);
    l->v[l->n].size = size;
    l->v[l->n].lock_fd = -1;
    l->n++;
    return 0;
}

void store_blobs_free(store_blobs *l)
{
    for (size_t i = 0; i < l->n; i++)
        if (l->v[i].lock_fd >= 0)
            close(l->v[i].lock_fd);
    free(l->v);
    memset(l, 0, sizeof *l);
}

void store_subpath(const irohds_store *s, const char *name, char *buf, size_t len)
{
    snprintf(buf, len, "%s/%s", s->dir, name);
}

/* ----------------------------------------------------------- encodings */

static void put16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}
static uint16_t get16(const uint8_t *p) { return (uint16_t)(p[0] | p[1] << 8); }
static void put32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}
static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
void store_put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> 8 * i);
}
uint64_t store_get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = v << 8 | p[i];
    return v;
}

size_t store_rec_encode(const irohds_record *r, uint8_t *out)
{
    size_t fl = strnlen(r->func, IROHDS_FUNC_MAX - 1), nl = strnlen(r->ns, IROHDS_NS_MAX - 1);
    uint64_t secs;
    memcpy(&secs, &r->compute_seconds, 8);
    out[0] = STORE_REC_VERSION;
    out[1] = 0;
    put16(out + 2, STORE_REC_FIXED);
    put16(out + 4, (uint16_t)fl);
    put16(out + 6, (uint16_t)nl);
    memcpy(out + 8, r->blob, 32);
    store_put64(out + 40, r->size);
    store_put64(out + 48, r->files_size);
    put32(out + 56, r->serializer);
    put32(out + 60, r->nfiles);
    store_put64(out + 64, secs);
    store_put64(out + 72, (uint64_t)r->created_us);
    store_put64(out + 80, (uint64_t)r->last_used_us);
    memcpy(out + 88, r->producer, 32);
    put32(out + 120, r->origin);
    put32(out + 124, 0);
    uint64_t fig;
    memcpy(&fig, &r->figure, 8);
    store_put64(out + 128, fig);
    memcpy(out + 136, r->producer_sig, 64);
    memcpy(out + STORE_REC_FIXED, r->func, fl);
    memcpy(out + STORE_REC_FIXED + fl, r->ns, nl);
    return STORE_REC_FIXED + fl + nl;
}

int store_rec_decode(const void *data, size_t n, irohds_record *r)
{
    const uint8_t *p = data;
    if (n < STORE_REC_FIXED_V1 || p[0] != STORE_REC_VERSION)
        return -EBADMSG;
    /* The fixed part only grows: 88 bytes in the first layout, 128 with the
     * producer and origin, 200 with the figure and the producer's signature;
     * a later layout may append more. */
    size_t fixed = get16(p + 2), fl = get16(p + 4), nl = get16(p + 6);
    if (fixed < STORE_REC_FIXED_V1 || fl >= IROHDS_FUNC_MAX || nl >= IROHDS_NS_MAX ||
        fixed + fl + nl > n)
        return -EBADMSG;
    uint64_t secs = store_get64(p + 64);
    memcpy(r->blob, p + 8, 32);
    r->size = store_get64(p + 40);
    r->files_size = store_get64(p + 48);
    r->serializer = get32(p + 56);
    r->nfiles = get32(p + 60);
    memcpy(&r->compute_seconds, &secs, 8);
    r->created_us = (int64_t)store_get64(p + 72);
    r->last_used_us = (int64_t)store_get64(p + 80);
    memset(r->producer, 0, 32);
    r->origin = IROHDS_ORIGIN_LOCAL;
    r->figure = 0;
    memset(r->producer_sig, 0, 64);
    if (fixed >= STORE_REC_FIXED_V2) {
        memcpy(r->producer, p + 88, 32);
        r->origin = get32(p + 120);
    }
    if (fixed >= STORE_REC_FIXED) {
        uint64_t fig = store_get64(p + 128);
        memcpy(&r->figure, &fig, 8);
        memcpy(r->producer_sig, p + 136, 64);
    }
    memcpy(r->func, p + fixed, fl);
    r->func[fl] = '\0';
    memcpy(r->ns, p + fixed + fl, nl);
    r->ns[nl] = '\0';
    return 0;
}

void store_lru_key(uint8_t out[STORE_LRU_KEY], int64_t t, const uint8_t *key)
{
    /* big-endian and sign-flipped, so memcmp order is time order */
    uint64_t u = (uint64_t)t ^ (1ull << 63);
    for (int i = 0; i < 8; i++)
        out[i] = (uint8_t)(u >> (56 - 8 * i));
    memcpy(out + 8, key, IROHDS_KEY_LEN);
}

static void file_key(uint8_t out[STORE_FILE_KEY], const uint8_t *key, uint32_t i)
{
    memcpy(out, key, IROHDS_KEY_LEN);
    out[32] = (uint8_t)(i >> 24);
    out[33] = (uint8_t)(i >> 16);
    out[34] = (uint8_t)(i >> 8);
    out[35] = (uint8_t)i;
}

static size_t file_encode(const irohds_file *f, uint8_t *out)
{
    size_t nl = strnlen(f->name, IROHDS_NAME_MAX - 1);
    out[0] = 1;
    out[1] = 0;
    put16(out + 2, (uint16_t)nl);
    put32(out + 4, 0);
    memcpy(out + 8, f->blob, 32);
    store_put64(out + 40, f->size);
    memcpy(out + STORE_FILE_FIXED, f->name, nl);
    return STORE_FILE_FIXED + nl;
}

static int file_decode(const void *data, size_t n, irohds_file *f)
{
    const uint8_t *p = data;
    if (n < STORE_FILE_FIXED || p[0] != 1)
        return -EBADMSG;
    size_t nl = get16(p + 2);
    if (nl >= IROHDS_NAME_MAX || STORE_FILE_FIXED + nl > n)
        return -EBADMSG;
    memcpy(f->blob, p + 8, 32);
    f->size = store_get64(p + 40);
    memcpy(f->name, p + STORE_FILE_FIXED, nl);
    f->name[nl] = '\0';
    return 0;
}

/* ---------------------------------------------------------------- open */

static int open_dbis(irohds_store *s, bool create)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, create ? 0 : MDB_RDONLY, &txn);
    if (rc)
        return store_err(rc);
    unsigned f = create ? MDB_CREATE : 0;
    const struct {
        const char *name;
        MDB_dbi *dbi;
    } dbs[] = {{"results", &s->results}, {"files", &s->files}, {"refs", &s->refs},
               {"lru", &s->lru},         {"meta", &s->meta}};
    for (size_t i = 0; i < sizeof dbs / sizeof dbs[0] && !rc; i++)
        rc = mdb_dbi_open(txn, dbs[i].name, f, dbs[i].dbi);
    /* The on-disk format version: refuse a store written by a newer layout. */
    MDB_val k = {6, "format"}, v;
    if (!rc) {
        rc = mdb_get(txn, s->meta, &k, &v);
        uint8_t buf[4];
        if (rc == MDB_NOTFOUND && create) {
            put32(buf, FORMAT_VERSION);
            v.mv_size = 4;
            v.mv_data = buf;
            rc = mdb_put(txn, s->meta, &k, &v, 0);
        } else if (rc == 0 && (v.mv_size != 4 || get32(v.mv_data) != FORMAT_VERSION)) {
            mdb_txn_abort(txn);
            return -EPROTONOSUPPORT;
        }
    }
    if (rc) {
        mdb_txn_abort(txn);
        return store_err(rc);
    }
    /* Committing (even read-only) makes the DBI handles usable afterwards. */
    return store_err(mdb_txn_commit(txn));
}

int irohds_store_open(irohds_store **out, const char *store_dir, unsigned flags)
{
    bool ro = flags & IROHDS_STORE_READONLY;
    char index[PATH_MAX];
    if (strlen(store_dir) >= sizeof ((irohds_store *)0)->dir)
        return -ENAMETOOLONG;
    snprintf(index, sizeof index, "%s/index", store_dir);
    /* A reader creates nothing: with no store yet mdb_env_open fails with
     * ENOENT, and every lookup is a miss. */
    if (!ro) {
        const char *subs[] = {"index", "blobs", "tmp"};
        for (size_t i = 0; i < 3; i++) {
            char p[PATH_MAX + 16];
            snprintf(p, sizeof p, "%s/%s", store_dir, subs[i]);
            int rc = irohds_mkdirs(p, 0700);
            if (rc)
                return rc;
        }
    }
    irohds_store *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    snprintf(s->dir, sizeof s->dir, "%s", store_dir);
    s->flags = flags;
    s->touch_fd = -1;
    int rc = mdb_env_create(&s->env);
    if (rc) {
        free(s);
        return store_err(rc);
    }
    mdb_env_set_maxdbs(s->env, 8);
    mdb_env_set_maxreaders(s->env, MAX_READERS);
    if (!ro)
        mdb_env_set_mapsize(s->env, MAP_SIZE);
    unsigned ef = MDB_NOTLS | MDB_NORDAHEAD;
    if (ro)
        ef |= MDB_RDONLY;
    else if (!(flags & IROHDS_STORE_SYNC))
        ef |= MDB_NOSYNC; /* sync=false: speed over power-loss durability */
    rc = store_err(mdb_env_open(s->env, index, ef, 0600));
    if (!rc)
        rc = open_dbis(s, !ro);
    if (!rc)
        rc = store_err(mdb_txn_begin(s->env, NULL, MDB_RDONLY, &s->rtxn));
    if (rc) {
        mdb_env_close(s->env);
        free(s);
        return rc;
    }
    mdb_txn_reset(s->rtxn);
    *out = s;
    return 0;
}

void irohds_store_close(irohds_store *s)
{
    if (!s)
        return;
    if (s->rtxn)
        mdb_txn_abort(s->rtxn);
    mdb_env_close(s->env);
    if (s->touch_fd >= 0)
        close(s->touch_fd);
    free(s);
}

int irohds_store_set_files_dir(irohds_store *s, const char *files_dir)
{
    size_t n = strlen(files_dir);
    if (n >= sizeof s->files_dir)
        return -ENAMETOOLONG;
    memcpy(s->files_dir, files_dir, n + 1);
    return 0;
}

/* -------------------------------------------------------- read path */

/* Renew the kept read transaction; a writer that grew the map makes us
 * remap first (MDB_MAP_RESIZED). */
int store_rtxn_renew(irohds_store *s)
{
    int rc = mdb_txn_renew(s->rtxn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_renew(s->rtxn);
    }
    return store_err(rc);
}

/* A separate read transaction, for callers that call back into the store. */
int store_read_begin(irohds_store *s, MDB_txn **txn)
{
    int rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    if (rc == MDB_MAP_RESIZED) {
        mdb_env_set_mapsize(s->env, 0);
        rc = mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn);
    }
    return store_err(rc);
}

int irohds_store_lookup(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN], irohds_record *rec)
{
    int rc = store_rtxn_renew(s);
    if (rc)
        return rc;
    MDB_val k = {IROHDS_KEY_LEN, (void *)key}, v;
    rc = mdb_get(s->rtxn, s->results, &k, &v);
    /* decode before the reset: v points into the map only while it lasts */
    rc = rc ? store_err(rc) : store_rec_decode(v.mv_data, v.mv_size, rec);
    mdb_txn_reset(s->rtxn);
    return rc;
}

/* Visit the files of key in txn: fn(ctx, index, file) for each. */
static int each_file(irohds_store *s, MDB_txn *txn, const uint8_t *key,
                     int (*fn)(void *, uint32_t, const irohds_file *), void *ctx)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->files, &c);
    if (rc)
        return store_err(rc);
    uint8_t fk[STORE_FILE_KEY];
    file_key(fk, key, 0);
    MDB_val k = {STORE_FILE_KEY, fk}, v;
    irohds_file *f = malloc(sizeof *f);
    if (!f) {
        mdb_cursor_close(c);
        return -ENOMEM;
    }
    uint32_t i = 0;
    for (rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE); rc == 0;
         rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) {
        if (k.mv_size != STORE_FILE_KEY || memcmp(k.mv_data, key, IROHDS_KEY_LEN))
            break;
        if ((rc = file_decode(v.mv_data, v.mv_size, f)) != 0 || (rc = fn(ctx, i++, f)) != 0)
            break;
    }
    free(f);
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND ? 0 : rc > 0 || rc < -30000 ? store_err(rc) : rc;
}

struct files_out {
    irohds_file *files;
    uint32_t max, n;
};

static int collect_file(void *ctx, uint32_t i, const irohds_file *f)
{
    struct files_out *o = ctx;
    (void)i;
    if (o->n == o->max)
        return -ENOBUFS;
    o->files[o->n++] = *f;
    return 0;
}

int irohds_store_files(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN], irohds_file *files,
                       uint32_t max, uint32_t *n)
{
    struct files_out o = {files, max, 0};
    int rc = store_rtxn_renew(s);
    if (rc)
        return rc;
    rc = each_file(s, s->rtxn, key, collect_file, &o);
    mdb_txn_reset(s->rtxn);
    *n = o.n;
    return rc;
}

int irohds_store_foreach(irohds_store *s, irohds_store_each_fn fn, void *ctx)
{
    MDB_txn *txn;
    int rc = store_read_begin(s, &txn);
    if (rc)
        return rc;
    MDB_cursor *c;
    if ((rc = mdb_cursor_open(txn, s->results, &c)) != 0) {
        mdb_txn_abort(txn);
        return store_err(rc);
    }
    irohds_record *rec = malloc(sizeof *rec);
    MDB_val k, v;
    int ret = rec ? 0 : -ENOMEM;
    while (!ret && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        if (k.mv_size != IROHDS_KEY_LEN || store_rec_decode(v.mv_data, v.mv_size, rec))
            continue; /* not ours to interpret; recover() does not touch it either */
        ret = fn(ctx, k.mv_data, rec);
    }
    if (!ret && rc != MDB_NOTFOUND)
        ret = store_err(rc);
    free(rec);
    mdb_cursor_close(c);
    mdb_txn_abort(txn);
    return ret;
}

uint64_t store_disk_bytes(uint64_t size)
{
    return size + irohds_bao_outboard_size(size, IROHDS_BAO_GROUP_LOG);
}

int store_sum_refs(irohds_store *s, MDB_txn *txn, uint64_t *bytes)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->refs, &c);
    if (rc)
        return store_err(rc);
    MDB_val k, v;
    uint64_t total = 0;
    while ((rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
        if (v.mv_size >= STORE_REF_VAL)
            total += store_disk_bytes(store_get64((const uint8_t *)v.mv_data + 8));
    mdb_cursor_close(c);
    *bytes = total;
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

int irohds_store_stats(irohds_store *s, uint64_t *entries, uint64_t *bytes)
{
    int rc = store_rtxn_renew(s);
    if (rc)
        return rc;
    MDB_stat st;
    rc = store_err(mdb_stat(s->rtxn, s->results, &st));
    if (!rc)
        rc = store_sum_refs(s, s->rtxn, bytes);
    if (!rc)
        *entries = st.ms_entries;
    mdb_txn_reset(s->rtxn);
    return rc;
}

/* ------------------------------------------------------------- refs */

int store_ref_add(irohds_store *s, MDB_txn *txn, const uint8_t hash[IROHDS_HASH_LEN],
                  uint64_t size)
{
    MDB_val k = {IROHDS_HASH_LEN, (void *)hash}, v;
    uint8_t buf[STORE_REF_VAL];
    int rc = mdb_get(txn, s->refs, &k, &v);
    if (rc == 0 && v.mv_size == STORE_REF_VAL) {
        memcpy(buf, v.mv_data, STORE_REF_VAL);
        if (store_get64(buf + 8) != size)
            return -EINVAL;
        store_put64(buf, store_get64(buf) + 1);
    } else if (rc == MDB_NOTFOUND) {
        /* First reference: the blob must really be there, whole. */
        char path[PATH_MAX];
        struct stat st;
        irohds_store_blob_path(s, hash, false, path, sizeof path);
        if (stat(path, &st) != 0)
            return -errno;
        if ((uint64_t)st.st_size != size)
            return -EINVAL;
        store_put64(buf, 1);
        store_put64(buf + 8, size);
    } else {
        return rc ? store_err(rc) : -EBADMSG;
    }
    v.mv_size = STORE_REF_VAL;
    v.mv_data = buf;
    return store_err(mdb_put(txn, s->refs, &k, &v, 0));
}

static int ref_drop(irohds_store *s, MDB_txn *txn, const uint8_t hash[IROHDS_HASH_LEN],
                    store_blobs *dead)
{
    MDB_val k = {IROHDS_HASH_LEN, (void *)hash}, v;
    int rc = mdb_get(txn, s->refs, &k, &v);
    if (rc == MDB_NOTFOUND)
        return 0; /* already gone: nothing to count down (recover rebuilds refs) */
    if (rc)
        return store_err(rc);
    uint8_t buf[STORE_REF_VAL] = {0};
    memcpy(buf, v.mv_data, v.mv_size < STORE_REF_VAL ? v.mv_size : STORE_REF_VAL);
    uint64_t n = store_get64(buf);
    if (n <= 1) {
        if ((rc = mdb_del(txn, s->refs, &k, NULL)) != 0)
            return store_err(rc);
        return dead ? store_blobs_push(dead, hash, store_get64(buf + 8)) : 0;
    }
    store_put64(buf, n - 1);
    v.mv_size = STORE_REF_VAL;
    v.mv_data = buf;
    return store_err(mdb_put(txn, s->refs, &k, &v, 0));
}

/* -------------------------------------------------------- put / remove */

struct drop_ctx {
    irohds_store *s;
    MDB_txn *txn;
    store_blobs *dead;
};

static int drop_file_ref(void *ctx, uint32_t i, const irohds_file *f)
{
    struct drop_ctx *d = ctx;
    (void)i;
    return ref_drop(d->s, d->txn, f->blob, d->dead);
}

static int delete_file_entries(irohds_store *s, MDB_txn *txn, const uint8_t *key)
{
    MDB_cursor *c;
    int rc = mdb_cursor_open(txn, s->files, &c);
    if (rc)
        return store_err(rc);
    uint8_t fk[STORE_FILE_KEY];
    file_key(fk, key, 0);
    /* Re-seek after each delete rather than trust cursor state across it. */
    for (;;) {
        MDB_val k = {STORE_FILE_KEY, fk}, v;
        rc = mdb_cursor_get(c, &k, &v, MDB_SET_RANGE);
        if (rc || k.mv_size != STORE_FILE_KEY || memcmp(k.mv_data, key, IROHDS_KEY_LEN))
            break;
        if ((rc = mdb_cursor_del(c, 0)) != 0)
            break;
    }
    mdb_cursor_close(c);
    return rc == MDB_NOTFOUND || rc == 0 ? 0 : store_err(rc);
}

/* Remove key's record, lru entry, files and references; -ENOENT if absent.
 * Blobs whose last reference went are appended to dead. */
int store_remove_in_txn(irohds_store *s, MDB_txn *txn, const uint8_t key[IROHDS_KEY_LEN],
                        store_blobs *dead)
{
    MDB_val k = {IROHDS_KEY_LEN, (void *)key}, v;
    int rc = mdb_get(txn, s->results, &k, &v);
    if (rc)
        return store_err(rc);
    irohds_record rec;
    if (store_rec_decode(v.mv_data, v.mv_size, &rec) == 0) {
        uint8_t lk[STORE_LRU_KEY];
        store_lru_key(lk, rec.last_used_us, key);
        MDB_val l = {STORE_LRU_KEY, lk};
        rc = mdb_del(txn, s->lru, &l, NULL);
        if (rc && rc != MDB_NOTFOUND)
            return store_err(rc);
        if ((rc = ref_drop(s, txn, rec.blob, dead)) != 0)
            return rc;
    }
    struct drop_ctx d = {s, txn, dead};
    if ((rc = each_file(s, txn, key, drop_file_ref, &d)) != 0)
        return rc;
    if ((rc = delete_file_entries(s, txn, key)) != 0)
        return rc;
    return store_err(mdb_del(txn, s->results, &k, NULL));
}

/* Keep in dead only blobs that have no reference left at the end of txn. */
static int filter_dead(irohds_store *s, MDB_txn *txn, store_blobs *dead)
{
    size_t o = 0;
    for (size_t i = 0; i < dead->n; i++) {
        MDB_val k = {IROHDS_HASH_LEN, dead->v[i].hash}, v;
        int rc = mdb_get(txn, s->refs, &k, &v);
        if (rc && rc != MDB_NOTFOUND)
            return store_err(rc);
        bool dup = false;
        for (size_t j = 0; j < o && !dup; j++)
            dup = !memcmp(dead->v[j].hash, dead->v[i].hash, IROHDS_HASH_LEN);
        if (rc == MDB_NOTFOUND && !dup)
            dead->v[o++] = dead->v[i];
        else if (dead->v[i].lock_fd >= 0)
            close(dead->v[i].lock_fd);
    }
    dead->n = o;
    return 0;
}

static int cmp_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int check_put_args(const irohds_record *rec, const irohds_file *files, uint32_t nfiles)
{
    if (strnlen(rec->func, IROHDS_FUNC_MAX) == IROHDS_FUNC_MAX ||
        strnlen(rec->ns, IROHDS_NS_MAX) == IROHDS_NS_MAX)
        return -EINVAL;
    if (nfiles == 0)
        return 0;
    const char **names = malloc(nfiles * sizeof *names);
    if (!names)
        return -ENOMEM;
    int rc = 0;
    for (uint32_t i = 0; i < nfiles && !rc; i++) {
        names[i] = files[i].name;
        if (!irohds_name_is_safe(files[i].name))
            rc = -EINVAL;
    }
    /* Two files of one result cannot share a name (or link_files collides). */
    if (!rc) {
        qsort(names, nfiles, sizeof *names, cmp_name);
        for (uint32_t i = 1; i < nfiles && !rc; i++)
            if (!strcmp(names[i - 1], names[i]))
                rc = -EINVAL;
    }
    free(names);
    return rc;
}

static int put_in_txn(irohds_store *s, MDB_txn *txn, const uint8_t *key, const irohds_record *r,
                      const irohds_file *files, uint32_t nfiles, store_blobs *dead, bool *replaced)
{
    /* New references first: a blob shared with the old record never hits 0. */
    int rc = store_ref_add(s, txn, r->blob, r->size);
    for (uint32_t i = 0; i < nfiles && !rc; i++)
        rc = store_ref_add(s, txn, files[i].blob, files[i].size);
    if (rc)
        return rc;
    rc = store_remove_in_txn(s, txn, key, dead);
    *replaced = rc == 0;
    if (rc && rc != -ENOENT)
        return rc;
    uint8_t buf[STORE_REC_MAX];
    MDB_val k = {IROHDS_KEY_LEN, (void *)key}, v = {store_rec_encode(r, buf), buf};
    if ((rc = mdb_put(txn, s->results, &k, &v, 0)) != 0)
        return store_err(rc);
    uint8_t lk[STORE_LRU_KEY];
    store_lru_key(lk, r->last_used_us, key);
    MDB_val l = {STORE_LRU_KEY, lk}, empty = {0, ""};
    if ((rc = mdb_put(txn, s->lru, &l, &empty, 0)) != 0)
        return store_err(rc);
    uint8_t *fbuf = malloc(STORE_FILE_FIXED + IROHDS_NAME_MAX);
    if (!fbuf)
        return -ENOMEM;
    for (uint32_t i = 0; i < nfiles && !rc; i++) {
        uint8_t fk[STORE_FILE_KEY];
        file_key(fk, key, i);
        MDB_val a = {STORE_FILE_KEY, fk}, b = {file_encode(&files[i], fbuf), fbuf};
        rc = store_err(mdb_put(txn, s->files, &a, &b, 0));
    }
    free(fbuf);
    return rc ? rc : filter_dead(s, txn, dead);
}

int irohds_store_put(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN], const irohds_record *rec,
                     const irohds_file *files, uint32_t nfiles)
{
    int rc = store_writable(s);
    if (rc || (rc = check_put_args(rec, files, nfiles)) != 0)
        return rc;
    irohds_record r = *rec;
    r.nfiles = nfiles;
    r.files_size = 0;
    for (uint32_t i = 0; i < nfiles; i++)
        r.files_size += files[i].size;
    if (r.created_us == 0)
        r.created_us = irohds_now_us();
    if (r.last_used_us == 0)
        r.last_used_us = r.created_us;
    MDB_txn *txn;
    if ((rc = mdb_txn_begin(s->env, NULL, 0, &txn)) != 0)
        return store_err(rc);
    store_blobs dead = {0};
    bool replaced = false;
    rc = put_in_txn(s, txn, key, &r, files, nfiles, &dead, &replaced);
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = store_err(mdb_txn_commit(txn));
    if (!rc) {
        store_delete_blobs(s, &dead);
        if (replaced)
            store_delete_files_dir(s, key); /* its links may name other blobs now */
    }
    store_blobs_free(&dead);
    return rc;
}

/* Remove keys[0..n) in one transaction, then their blobs and files dirs. */
static int remove_keys(irohds_store *s, const uint8_t (*keys)[IROHDS_KEY_LEN], size_t n,
                       store_blobs *extra_dead)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return store_err(rc);
    store_blobs dead = {0};
    for (size_t i = 0; i < n && !rc; i++)
        rc = store_remove_in_txn(s, txn, keys[i], &dead);
    if (!rc)
        rc = filter_dead(s, txn, &dead);
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = store_err(mdb_txn_commit(txn));
    if (!rc) {
        store_delete_blobs(s, &dead);
        if (extra_dead)
            store_delete_blobs(s, extra_dead);
        for (size_t i = 0; i < n; i++)
            store_delete_files_dir(s, keys[i]);
    }
    store_blobs_free(&dead);
    return rc;
}

int irohds_store_remove(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN])
{
    int rc = store_writable(s);
    return rc ? rc : remove_keys(s, (const uint8_t(*)[IROHDS_KEY_LEN])key, 1, NULL);
}

/* A growable list of keys. */
struct keys {
    uint8_t (*v)[IROHDS_KEY_LEN];
    size_t n, cap;
};

static int keys_push(struct keys *l, const uint8_t *key)
{
    for (size_t i = 0; i < l->n; i++)
        if (!memcmp(l->v[i], key, IROHDS_KEY_LEN))
            return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? 2 * l->cap : 16;
        void *v = realloc(l->v, cap * IROHDS_KEY_LEN);
        if (!v)
            return -ENOMEM;
        l->v = v;
        l->cap = cap;
    }
    memcpy(l->v[l->n++], key, IROHDS_KEY_LEN);
    return 0;
}

struct func_match {
    const char *func;
    struct keys keys;
};

static int match_func(void *ctx, const uint8_t key[IROHDS_KEY_LEN], const irohds_record *rec)
{
    struct func_match *m = ctx;
    return strcmp(rec->func, m->func) ? 0 : keys_push(&m->keys, key);
}

int irohds_store_evict_func(irohds_store *s, const char *func, uint64_t *n)
{
    int rc = store_writable(s);
    if (rc)
        return rc;
    /* A full scan: evicting a function is rare; an index on func would
     * cost every put. */
    struct func_match m = {func, {0}};
    rc = irohds_store_foreach(s, match_func, &m);
    if (!rc && m.keys.n)
        rc = remove_keys(s, (const uint8_t(*)[IROHDS_KEY_LEN])m.keys.v, m.keys.n, NULL);
    if (n)
        *n = rc ? 0 : m.keys.n;
    free(m.keys.v);
    return rc;
}

struct blob_match {
    irohds_store *s;
    MDB_txn *txn;
    const uint8_t *hash;
    const uint8_t *key; /* the result whose files are being looked at */
    struct keys keys;
};

static int file_uses(void *ctx, uint32_t i, const irohds_file *f)
{
    struct blob_match *m = ctx;
    (void)i;
    return memcmp(f->blob, m->hash, IROHDS_HASH_LEN) ? 0 : keys_push(&m->keys, m->key);
}

static int match_blob(void *ctx, const uint8_t key[IROHDS_KEY_LEN], const irohds_record *rec)
{
    struct blob_match *m = ctx;
    if (!memcmp(rec->blob, m->hash, IROHDS_HASH_LEN))
        return keys_push(&m->keys, key);
    if (rec->nfiles == 0)
        return 0;
    m->key = key;
    return each_file(m->s, m->txn, key, file_uses, m);
}

int irohds_store_drop_blob(irohds_store *s, const uint8_t hash[IROHDS_HASH_LEN], uint64_t *n)
{
    int rc = store_writable(s);
    if (rc)
        return rc;
    struct blob_match m = {s, NULL, hash, NULL, {0}};
    if ((rc = store_read_begin(s, &m.txn)) != 0)
        return rc;
    rc = irohds_store_foreach(s, match_blob, &m);
    mdb_txn_abort(m.txn);
    /* The bytes are bad: the file goes even if the index never knew it. */
    store_blobs bad = {0};
    if (!rc)
        rc = store_blobs_push(&bad, hash, 0);
    if (!rc)
        rc = remove_keys(s, (const uint8_t(*)[IROHDS_KEY_LEN])m.keys.v, m.keys.n, &bad);
    if (n)
        *n = rc ? 0 : m.keys.n;
    store_blobs_free(&bad);
    free(m.keys.v);
    return rc;
}

/* --------------------------------------------------------- link_files */

struct link_ctx {
    irohds_store *s;
    int dirfd;
};

/* mkdir -p the parent directories of rel under dirfd. */
static int make_parents(int dirfd, const char *rel)
{
    char buf[IROHDS_NAME_MAX];
    snprintf(buf, sizeof buf, "%s", rel);
    for (char *p = strchr(buf, '/'); p; p = strchr(p + 1, '/')) {
        *p = '\0';
        if (mkdirat(dirfd, buf, 0700) != 0 && errno != EEXIST)
            return -errno;
        *p = '/';
    }
    return 0;
}

static int link_one(void *ctx, uint32_t i, const irohds_file *f)
{
    struct link_ctx *l = ctx;
    (void)i;
    if (!irohds_name_is_safe(f->name))
        return -EINVAL; /* checked at put; the index is not trusted blindly */
    char blob[PATH_MAX];
    irohds_store_blob_path(l->s, f->blob, false, blob, sizeof blob);
    int rc = make_parents(l->dirfd, f->name);
    if (rc)
        return rc;
    return linkat(AT_FDCWD, blob, l->dirfd, f->name, 0) == 0 ? 0 : -errno;
}

int irohds_store_link_files(irohds_store *s, const uint8_t key[IROHDS_KEY_LEN])
{
    if (!s->files_dir[0])
        return -EINVAL;
    char hex[2 * IROHDS_KEY_LEN + 1], final[PATH_MAX + 80], tmp[PATH_MAX + 128];
    irohds_hex_encode(key, IROHDS_KEY_LEN, hex);
    snprintf(final, sizeof final, "%s/%s", s->files_dir, hex);
    if (access(final, F_OK) == 0)
        return 0; /* already materialized (put removes stale ones) */
    static unsigned counter;
    snprintf(tmp, sizeof tmp, "%s/.tmp-%s-%d-%u", s->files_dir, hex, (int)getpid(), counter++);
    int rc = irohds_mkdirs(s->files_dir, 0700);
    if (rc)
        return rc;
    if (mkdir(tmp, 0700) != 0)
        return -errno;
    struct link_ctx l = {s, open(tmp, O_RDONLY | O_DIRECTORY | O_CLOEXEC)};
    if (l.dirfd < 0)
        rc = -errno;
    if (!rc && (rc = store_rtxn_renew(s)) == 0) {
        MDB_val k = {IROHDS_KEY_LEN, (void *)key}, v;
        rc = store_err(mdb_get(s->rtxn, s->results, &k, &v));
        if (!rc)
            rc = each_file(s, s->rtxn, key, link_one, &l);
        mdb_txn_reset(s->rtxn);
    }
    if (l.dirfd >= 0)
        close(l.dirfd);
    /* Built aside and renamed: a files dir is complete or absent. */
    if (!rc && rename(tmp, final) != 0)
        rc = errno == EEXIST || errno == ENOTEMPTY ? 0 : -errno;
    if (access(tmp, F_OK) == 0)
        irohds_rmtree_at(AT_FDCWD, tmp);
    return rc;
}

/* ------------------------------------------------------------- repair */

static bool blob_ok(irohds_store *s, const uint8_t *hash, uint64_t size)
{
    char path[PATH_MAX];
    struct stat st;
    irohds_store_blob_path(s, hash, false, path, sizeof path);
    return stat(path, &st) == 0 && S_ISREG(st.st_mode) && (uint64_t)st.st_size == size;
}

/* Pass 1: results whose blob or files are missing, short or undecodable,
 * and file entries that belong to no result. */
static int find_broken(irohds_store *s, MDB_txn *txn, struct keys *bad, struct keys *orphan_files)
{
    MDB_cursor *c;
    MDB_val k, v;
    irohds_record rec;
    int rc = mdb_cursor_open(txn, s->results, &c);
    while (!rc && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
        if (k.mv_size != IROHDS_KEY_LEN || store_rec_decode(v.mv_data, v.mv_size, &rec) ||
            !blob_ok(s, rec.blob, rec.size))
            rc = k.mv_size == IROHDS_KEY_LEN ? keys_push(bad, k.mv_data) : mdb_cursor_del(c, 0);
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return store_err(rc);
    irohds_file *f = malloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    rc = mdb_cursor_open(txn, s->files, &c);
    while (!rc && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        MDB_val rk = {IROHDS_KEY_LEN, k.mv_data}, rv;
        if (k.mv_size != STORE_FILE_KEY || mdb_get(txn, s->results, &rk, &rv) != 0)
            rc = k.mv_size == STORE_FILE_KEY ? keys_push(orphan_files, k.mv_data)
                                             : mdb_cursor_del(c, 0);
        else if (file_decode(v.mv_data, v.mv_size, f) || !blob_ok(s, f->blob, f->size))
            rc = keys_push(bad, k.mv_data);
    }
    mdb_cursor_close(c);
    free(f);
    return rc == MDB_NOTFOUND ? 0 : store_err(rc);
}

/* Pass 2: rebuild refs and lru from the surviving results and files. */
static int rebuild(irohds_store *s, MDB_txn *txn)
{
    int rc = mdb_drop(txn, s->refs, 0);
    if (!rc)
        rc = mdb_drop(txn, s->lru, 0);
    if (rc)
        return store_err(rc);
    MDB_cursor *c;
    MDB_val k, v, empty = {0, ""};
    irohds_record rec;
    rc = mdb_cursor_open(txn, s->results, &c);
    while (!rc && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0) {
        uint8_t lk[STORE_LRU_KEY];
        if (store_rec_decode(v.mv_data, v.mv_size, &rec)) {
            rc = -EBADMSG; /* pass 1 removed those */
            break;
        }
        store_lru_key(lk, rec.last_used_us, k.mv_data);
        MDB_val l = {STORE_LRU_KEY, lk};
        rc = store_ref_add(s, txn, rec.blob, rec.size);
        if (!rc)
            rc = mdb_put(txn, s->lru, &l, &empty, 0);
    }
    mdb_cursor_close(c);
    if (rc != MDB_NOTFOUND)
        return rc < 0 && rc > -30000 ? rc : store_err(rc);
    irohds_file *f = malloc(sizeof *f);
    if (!f)
        return -ENOMEM;
    rc = mdb_cursor_open(txn, s->files, &c);
    while (!rc && (rc = mdb_cursor_get(c, &k, &v, MDB_NEXT)) == 0)
        if ((rc = file_decode(v.mv_data, v.mv_size, f)) == 0)
            rc = store_ref_add(s, txn, f->blob, f->size);
    mdb_cursor_close(c);
    free(f);
    return rc == MDB_NOTFOUND ? 0 : rc < 0 && rc > -30000 ? rc : store_err(rc);
}

int store_repair_index(irohds_store *s, uint64_t *dropped)
{
    MDB_txn *txn;
    int rc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (rc)
        return store_err(rc);
    struct keys bad = {0}, orphan_files = {0};
    store_blobs dead = {0};
    rc = find_broken(s, txn, &bad, &orphan_files);
    for (size_t i = 0; i < bad.n && !rc; i++)
        rc = store_remove_in_txn(s, txn, bad.v[i], &dead);
    for (size_t i = 0; i < orphan_files.n && !rc; i++)
        rc = delete_file_entries(s, txn, orphan_files.v[i]);
    if (!rc)
        rc = rebuild(s, txn);
    if (rc)
        mdb_txn_abort(txn);
    else
        rc = store_err(mdb_txn_commit(txn));
    /* Blobs of dropped results are left to the sweep that follows: it knows
     * which ones nothing references any more. */
    for (size_t i = 0; i < bad.n && !rc; i++)
        store_delete_files_dir(s, bad.v[i]);
    *dropped = rc ? 0 : bad.n;
    store_blobs_free(&dead);
    free(bad.v);
    free(orphan_files.v);
    return rc;
}
