/*
 * fetch.c: downloading a result from peers, verified as it arrives.
 *
 * A fetch gets every blob of one result: the result blob and the blobs of
 * its FileRef files.  Each blob is cut into segments, runs of whole 16 KiB
 * chunk groups; a segment is asked of one provider as an iroh-blobs Get of
 * its chunk range (docs/blobs.md), and its response goes through a bao
 * decoder (blobs/), which releases data only after it verified against the
 * blob's BLAKE3 root.  Verified data is written at its offset in a file in
 * store/tmp; verified parent nodes are written into the outboard as they
 * pass, so the finished blob is placed in the store without hashing it
 * again (irohds_store_ingest_verified).
 *
 * Large blobs are split into MAX_SPLIT segments, spread over the providers
 * (the least loaded takes the next), so one download pulls from several at
 * once, and over several streams even from one provider: one QUIC stream
 * here tops out well below what the link carries (measured: ~250 MB/s for one
 * stream, ~370 MB/s for four, between two namespaces on this machine).
 * A segment whose provider fails (connection lost, stream reset, nothing
 * received for STALL_US, or one byte that fails verification) keeps what it
 * verified and goes on from there with another provider: that is the
 * resume.  A provider that sent bad bytes is cut off (connection closed)
 * and never asked for that blob again; one that merely failed is not asked
 * again within this fetch.  When no provider is left the fetch fails and the
 * node lets a local process compute.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/node_int.h"

#define MAX_FETCH_PROVIDERS 16
#define MAX_SPLIT 4
#define SPLIT_MIN (16u << 20)           /* blobs below this come from one provider */
#define STALL_US (3LL * 1000000)        /* a segment this long without data has failed */
#define GROUP_LEN ((uint64_t)IROHDS_BLOBS_CHUNK_LEN << IROHDS_BAO_GROUP_LOG)
#define CLOSE_BAD_DATA 0x10             /* our close code for a provider that lied */
#define MAX_BAD 1024                    /* (peer, blob) pairs remembered */
#define WRITE_BATCH (1u << 20)          /* verified bytes gathered before one pwrite */

typedef struct fpeer {
    int kind; /* NODE_CONN_FETCH: first, see node.c */
    struct fpeer *next;
    irohds_net_conn *conn;
    uint8_t id[32];
    bool established;
} fpeer;

struct dl;

typedef struct seg {
    struct seg *next;
    struct fetch *f;
    struct dl *dl;
    uint64_t start, end; /* bytes of the blob still to get; start is group aligned */
    uint64_t got;        /* verified bytes from start, contiguous */
    fpeer *fp;           /* NULL: not assigned */
    int prov;            /* index into the fetch's providers, -1 if none */
    int64_t sid;         /* -1: no stream yet */
    irohds_bao_decoder *dec;
    int64_t last_data_us, started_us;
    uint64_t rx;         /* response bytes received on this stream */
    bool complete;
    /* Verified data not yet written: a segment's bytes arrive in order, so
     * they are gathered and written 1 MiB at a time, not a group (16 KiB,
     * one syscall) at a time. */
    uint8_t *wbuf;
    size_t wlen;
    uint64_t woff;
} seg;

typedef struct dl {
    uint8_t hash[32];
    uint64_t size;
    int fd;
    char path[PATH_MAX];
    uint8_t *ob;
    uint64_t oblen;
    uint64_t verified;
    int write_err; /* writing the tmp file failed: the fetch fails (not the provider) */
    bool present; /* already in the store: nothing to download */
} dl;

typedef struct fetch {
    struct fetch *next;
    irohds_node *n;
    fetch_result r;
    dl *dls; /* [0] the result blob, then one per file */
    unsigned ndl;
    seg *segs;
    uint8_t prov[MAX_FETCH_PROVIDERS][32];
    bool prov_failed[MAX_FETCH_PROVIDERS];
    uint64_t prov_rx[MAX_FETCH_PROVIDERS]; /* response bytes from each, this fetch */
    unsigned nprov;
    int64_t started_us;
    bool storing, over;
    int rc;
    uv_work_t work;
} fetch;

typedef struct bad_blob {
    struct bad_blob *next;
    uint8_t peer[32], blob[32];
} bad_blob;

static void schedule(irohds_node *n, fetch *f);
static void finish(irohds_node *n, fetch *f, int rc);

/* ------------------------------------------------------------- helpers */

bool fetch_is_bad(irohds_node *n, const uint8_t peer[32], const uint8_t blob[32])
{
    for (bad_blob *b = n->bad; b; b = b->next)
        if (!memcmp(b->peer, peer, 32) && !memcmp(b->blob, blob, 32))
            return true;
    return false;
}

static void mark_bad(irohds_node *n, const uint8_t peer[32], const uint8_t blob[32])
{
    if (fetch_is_bad(n, peer, blob))
        return;
    unsigned count = 0;
    bad_blob **last = &n->bad;
    for (bad_blob **pp = &n->bad; *pp; pp = &(*pp)->next, count++)
        last = pp;
    if (count >= MAX_BAD && *last) { /* forget the oldest */
        free(*last);
        *last = NULL;
    }
    bad_blob *b = calloc(1, sizeof(*b));
    if (!b)
        return;
    memcpy(b->peer, peer, 32);
    memcpy(b->blob, blob, 32);
    b->next = n->bad;
    n->bad = b;
}

static fetch *fetch_find(irohds_node *n, const uint8_t key[32])
{
    for (fetch *f = n->fetches; f; f = f->next)
        if (!memcmp(f->r.key, key, 32) && !f->over)
            return f;
    return NULL;
}

bool fetch_progress(irohds_node *n, const uint8_t key[32], uint64_t *done, uint64_t *total)
{
    fetch *f = fetch_find(n, key);
    if (!f)
        return false;
    *done = *total = 0;
    for (unsigned i = 0; i < f->ndl; i++) {
        *total += f->dls[i].size;
        *done += f->dls[i].present ? f->dls[i].size : f->dls[i].verified;
    }
    return true;
}

/* --------------------------------------------------------- provider conns */

static fpeer *fpeer_get(irohds_node *n, const uint8_t id[32])
{
    for (fpeer *fp = n->fpeers; fp; fp = fp->next)
        if (fp->conn && !memcmp(fp->id, id, 32))
            return fp;
    fpeer *fp = calloc(1, sizeof(*fp));
    if (!fp)
        return NULL;
    fp->kind = NODE_CONN_FETCH;
    memcpy(fp->id, id, 32);
    fp->conn = node_dial(n, id, IROHDS_BLOBS_ALPN, fp);
    if (!fp->conn) {
        free(fp);
        return NULL;
    }
    fp->next = n->fpeers;
    n->fpeers = fp;
    return fp;
}

static void fpeer_free(irohds_node *n, fpeer *fp)
{
    for (fpeer **pp = &n->fpeers; *pp; pp = &(*pp)->next)
        if (*pp == fp) {
            *pp = fp->next;
            break;
        }
    free(fp);
}

/* --------------------------------------------------------------- segments */

static int pwrite_all(int fd, const uint8_t *data, size_t len, uint64_t off)
{
    for (size_t done = 0; done < len;) {
        ssize_t w = pwrite(fd, data + done, len - done, (off_t)(off + done));
        if (w < 0)
            return -errno;
        done += (size_t)w;
    }
    return 0;
}

/* Write what the segment gathered. */
static int seg_flush(seg *s)
{
    if (!s->wlen)
        return 0;
    int rc = pwrite_all(s->dl->fd, s->wbuf, s->wlen, s->woff);
    s->woff += s->wlen;
    s->wlen = 0;
    if (rc && !s->dl->write_err)
        s->dl->write_err = rc;
    return rc;
}

static int on_data(void *ctx, uint64_t off, const uint8_t *data, size_t len)
{
    seg *s = ctx;
    dl *d = s->dl;
    if (!s->wbuf && !(s->wbuf = malloc(WRITE_BATCH)))
        return pwrite_all(d->fd, data, len, off);
    if (off != s->woff + s->wlen || s->wlen + len > WRITE_BATCH) {
        int rc = seg_flush(s);
        if (rc)
            return rc;
        s->woff = off;
    }
    if (len >= WRITE_BATCH) {
        int rc = pwrite_all(d->fd, data, len, off);
        if (rc)
            return rc;
        s->woff = off + len;
    } else {
        memcpy(s->wbuf + s->wlen, data, len);
        s->wlen += len;
    }
    /* Pre-order delivers a segment's bytes left to right. */
    if (off + len > s->start + s->got)
        s->got = off + len - s->start;
    d->verified += len;
    s->last_data_us = irohds_now_us();
    return 0;
}

static int on_parent(void *ctx, uint64_t ob_off, const uint8_t pair[64])
{
    seg *s = ctx;
    dl *d = s->dl;
    if (ob_off > d->oblen || d->oblen - ob_off < 64)
        return -EBADMSG; /* a tree shape that is not this blob's size */
    memcpy(d->ob + ob_off, pair, 64);
    return 0;
}

static void seg_detach(irohds_node *n, seg *s)
{
    (void)n;
    seg_flush(s); /* what verified is good, whoever sent it */
    free(s->wbuf);
    s->wbuf = NULL;
    if (s->dec) {
        irohds_bao_decoder_free(s->dec);
        free(s->dec);
        s->dec = NULL;
    }
    s->fp = NULL;
    s->sid = -1;
}

/* Count what this segment's stream brought from its provider. */
static void seg_measure(irohds_node *n, seg *s)
{
    (void)n;
    if (s->prov >= 0)
        s->f->prov_rx[s->prov] += s->rx;
    s->rx = 0;
}

/* What the fetch showed of each provider's link: all it sent, over the
 * fetch's time (its streams ran side by side, so no single stream's rate
 * says what the link carries). */
static void fetch_measure(irohds_node *n, fetch *f)
{
    double secs = (double)(irohds_now_us() - f->started_us) / 1e6;
    for (unsigned i = 0; i < f->nprov; i++) {
        node_peer *p = f->prov_rx[i] ? node_peer_find(n, f->prov[i]) : NULL;
        if (p)
            irohds_coren_link_add_transfer(&p->link, f->prov_rx[i], secs);
    }
}

/*
 * The segment's provider failed it.  Keep what verified; the rest is asked
 * of another provider (by the next schedule()).  bad: it sent bytes that
 * failed verification.
 */
static void seg_reset(irohds_node *n, seg *s, bool bad, const char *why)
{
    fetch *f = s->f;
    if (s->prov >= 0) {
        char hex[17];
        irohds_hex_encode(f->prov[s->prov], 8, hex);
        IROHDS_INFO("node: provider %s failed a download of %s (%s); %llu of %llu bytes kept", hex,
                    f->r.func, why, (unsigned long long)s->got,
                    (unsigned long long)(s->end - s->start));
        f->prov_failed[s->prov] = true;
        if (bad) {
            mark_bad(n, f->prov[s->prov], s->dl->hash);
            if (s->fp && s->fp->conn)
                irohds_net_conn_close(s->fp->conn, CLOSE_BAD_DATA, "blob failed verification");
        }
    }
    seg_measure(n, s);
    if (s->fp && s->fp->conn && s->sid >= 0 && !bad) {
        irohds_net_stream_stop_sending(s->fp->conn, s->sid, 0);
        irohds_net_stream_reset(s->fp->conn, s->sid, 0);
    }
    seg_detach(n, s);
    /* Go on from the last whole group that verified. */
    uint64_t resume = s->start + s->got / GROUP_LEN * GROUP_LEN;
    if (resume > s->end)
        resume = s->end;
    s->start = resume;
    s->got = 0;
    s->prov = -1;
}

static void seg_fail(irohds_node *n, seg *s, bool bad, const char *why)
{
    seg_reset(n, s, bad, why);
    schedule(n, s->f);
}

static void seg_complete(irohds_node *n, seg *s)
{
    seg_measure(n, s);
    seg_detach(n, s);
    s->complete = true;
    s->got = s->end - s->start;
    fetch *f = s->f;
    for (seg *x = f->segs; x; x = x->next)
        if (!x->complete)
            return;
    finish(n, f, 0);
}

/* Send the Get for the segment's remaining range on a new stream. */
static int seg_request(irohds_node *n, seg *s)
{
    (void)n;
    dl *d = s->dl;
    irohds_blobs_ranges rs;
    uint64_t c0 = s->start / IROHDS_BLOBS_CHUNK_LEN;
    if (s->end >= d->size)
        irohds_blobs_ranges_from(&rs, c0); /* to the end: the last chunk proves the size */
    else
        irohds_blobs_ranges_single(&rs, c0, s->end / IROHDS_BLOBS_CHUNK_LEN);
    irohds_blobs_get get;
    memcpy(get.hash, d->hash, 32);
    if (irohds_blobs_seq_from_ranges(&get.ranges, &rs, 1, false) != 0)
        return -EINVAL;
    uint8_t req[256];
    size_t len;
    if (irohds_blobs_get_encode(&get, req, sizeof req, &len) != 0)
        return -EINVAL;
    s->dec = malloc(sizeof(*s->dec));
    if (!s->dec)
        return -ENOMEM;
    irohds_bao_sink sink = {.on_data = on_data, .on_parent = on_parent, .ctx = s};
    int rc = irohds_bao_decoder_init(s->dec, d->hash, &rs, IROHDS_BAO_GROUP_LOG, &sink);
    if (!rc)
        rc = irohds_net_stream_open(s->fp->conn, true, NULL, &s->sid);
    if (!rc) {
        ssize_t w = irohds_net_stream_write(s->fp->conn, s->sid, req, len, true);
        rc = w == (ssize_t)len ? 0 : -EIO;
    }
    if (rc) {
        free(s->dec);
        s->dec = NULL;
        s->sid = -1;
        return rc;
    }
    s->started_us = s->last_data_us = irohds_now_us();
    s->rx = 0;
    return 0;
}

/* The usable provider with the fewest segments on it (ties: the order the
 * decision gave, best first). */
static int pick_provider(irohds_node *n, fetch *f, const dl *d)
{
    unsigned load[MAX_FETCH_PROVIDERS] = {0};
    for (seg *s = f->segs; s; s = s->next)
        if (s->prov >= 0 && !s->complete)
            load[s->prov]++;
    int best = -1;
    for (unsigned i = 0; i < f->nprov; i++) {
        if (f->prov_failed[i] || fetch_is_bad(n, f->prov[i], d->hash))
            continue;
        if (best < 0 || load[i] < load[best])
            best = (int)i;
    }
    return best;
}

static void schedule(irohds_node *n, fetch *f)
{
    if (f->over || f->storing)
        return;
    bool active = false;
    for (seg *s = f->segs; s; s = s->next) {
        if (s->complete)
            continue;
        if (s->start >= s->end && s->end) { /* nothing left of it */
            s->complete = true;
            continue;
        }
        while (s->prov < 0) {
            int p = pick_provider(n, f, s->dl);
            if (p < 0)
                break;
            fpeer *fp = fpeer_get(n, f->prov[p]);
            if (!fp) {
                f->prov_failed[p] = true; /* no address, or the dial failed at once */
                continue;
            }
            s->prov = p;
            s->fp = fp;
            s->last_data_us = irohds_now_us();
        }
        if (s->prov < 0)
            continue;
        active = true;
        if (s->fp->established && s->sid < 0 && seg_request(n, s) != 0)
            seg_fail(n, s, false, "cannot send the request");
    }
    bool all_done = true;
    for (seg *s = f->segs; s; s = s->next)
        all_done &= s->complete;
    if (all_done)
        finish(n, f, 0);
    else if (!active && !f->over)
        finish(n, f, -EHOSTUNREACH);
}

/* ------------------------------------------------------------- storing */

static void store_work(uv_work_t *req)
{
    fetch *f = req->data;
    for (unsigned i = 0; i < f->ndl && !f->rc; i++) {
        dl *d = &f->dls[i];
        if (d->present)
            continue;
        f->rc = irohds_store_ingest_verified(f->n->store, d->fd, d->hash, d->size, d->ob,
                                             d->oblen, IROHDS_INGEST_REFETCHABLE);
    }
}

static void fetch_free(irohds_node *n, fetch *f)
{
    for (fetch **pp = &n->fetches; *pp; pp = &(*pp)->next)
        if (*pp == f) {
            *pp = f->next;
            break;
        }
    while (f->segs) {
        seg *s = f->segs;
        f->segs = s->next;
        seg_detach(n, s);
        free(s);
    }
    for (unsigned i = 0; i < f->ndl; i++) {
        dl *d = &f->dls[i];
        if (d->fd >= 0)
            close(d->fd);
        if (d->path[0])
            unlink(d->path); /* placed: the blob has its own name now */
        free(d->ob);
    }
    free(f->dls);
    free(f->r.files);
    free(f);
}

static void store_done(uv_work_t *req, int status)
{
    fetch *f = req->data;
    irohds_node *n = f->n;
    int rc = status < 0 ? status : f->rc;
    if (!rc && !n->stopping) {
        irohds_record rec;
        memset(&rec, 0, sizeof rec);
        memcpy(rec.blob, f->r.blob, 32);
        rec.size = f->r.size;
        rec.serializer = f->r.serializer;
        rec.compute_seconds = f->r.compute_seconds;
        rec.created_us = f->r.created_us;
        memcpy(rec.producer, f->r.producer, 32);
        rec.origin = IROHDS_ORIGIN_REMOTE;
        rec.figure = f->r.figure;
        memcpy(rec.producer_sig, f->r.producer_sig, 64);
        snprintf(rec.func, sizeof rec.func, "%s", f->r.func);
        snprintf(rec.ns, sizeof rec.ns, "%s", f->r.ns);
        rc = irohds_store_put(n->store, f->r.key, &rec, f->r.files, f->r.nfiles);
        if (!rc && f->r.nfiles)
            rc = irohds_store_link_files(n->store, f->r.key);
    }
    uint8_t key[32];
    memcpy(key, f->r.key, 32);
    uint64_t total = 0;
    for (unsigned i = 0; i < f->ndl; i++)
        total += f->dls[i].size;
    double secs = (double)(irohds_now_us() - f->started_us) / 1e6;
    if (rc)
        IROHDS_WARN("node: a downloaded result of %s could not be stored: %s", f->r.func,
                    strerror(-rc));
    else
        IROHDS_INFO("node: stored a result of %s from peers: %llu bytes in %.3f s (%.1f MB/s)",
                    f->r.func, (unsigned long long)total, secs,
                    secs > 0 ? (double)total / secs / 1e6 : 0.0);
    fetch_free(n, f);
    if (n->stopping)
        node_unref(n);
    else
        results_fetch_done(n, key, rc);
}

/* Over: store it (rc 0), or report the failure, from the loop. */
static void finish(irohds_node *n, fetch *f, int rc)
{
    if (f->over || f->storing)
        return;
    if (rc == 0) {
        for (seg *s = f->segs; s; s = s->next)
            seg_flush(s);
        for (unsigned i = 0; i < f->ndl && !rc; i++)
            if (f->dls[i].write_err)
                rc = f->dls[i].write_err; /* e.g. the disk is full */
            else if (!f->dls[i].present && f->dls[i].verified < f->dls[i].size)
                rc = -EIO; /* cannot happen if the segments covered the blob */
    }
    fetch_measure(n, f);
    if (rc == 0) {
        IROHDS_DEBUG("node: all bytes of a result of %s verified after %.3f s; storing",
                     f->r.func, (double)(irohds_now_us() - f->started_us) / 1e6);
        f->storing = true;
        f->work.data = f;
        if (uv_queue_work(n->loop, &f->work, store_work, store_done) == 0)
            return;
        f->storing = false;
        rc = -ENOMEM;
    }
    f->over = true;
    f->rc = rc;
    IROHDS_INFO("node: download of a result of %s failed: %s", f->r.func, strerror(-rc));
    node_kick(n); /* fetch_tick reaps it and tells results.c, outside this call */
}

/* ------------------------------------------------------------- starting */

static int dl_init(irohds_node *n, dl *d, const uint8_t hash[32], uint64_t size)
{
    memcpy(d->hash, hash, 32);
    d->size = size;
    d->fd = -1;
    int bfd;
    uint64_t have;
    if (irohds_store_open_blob(n->store, hash, &bfd, &have) == 0) {
        close(bfd);
        if (have == size) {
            d->present = true; /* deduplicated: another result shares this blob */
            return 0;
        }
    }
    d->oblen = irohds_bao_outboard_size(size, IROHDS_BAO_GROUP_LOG);
    if (d->oblen && !(d->ob = calloc(1, d->oblen)))
        return -ENOMEM;
    int rc = irohds_store_tmp_file(n->store, &d->fd, d->path, sizeof d->path);
    if (rc)
        return rc;
    if (ftruncate(d->fd, (off_t)size) != 0)
        return -errno;
    return 0;
}

static int add_segments(fetch *f, dl *d, unsigned nprov)
{
    if (d->present)
        return 0;
    uint64_t groups = d->size ? (d->size + GROUP_LEN - 1) / GROUP_LEN : 1;
    (void)nprov;
    unsigned k = d->size >= SPLIT_MIN ? MAX_SPLIT : 1;
    if (k > groups)
        k = (unsigned)groups;
    for (unsigned i = 0; i < k; i++) {
        seg *s = calloc(1, sizeof(*s));
        if (!s)
            return -ENOMEM;
        s->f = f;
        s->dl = d;
        s->start = groups * i / k * GROUP_LEN;
        s->end = i + 1 == k ? d->size : groups * (i + 1) / k * GROUP_LEN;
        s->prov = -1;
        s->sid = -1;
        s->next = f->segs;
        f->segs = s;
    }
    return 0;
}

int fetch_start(irohds_node *n, const fetch_result *r, const uint8_t (*providers)[32],
                unsigned nprov)
{
    if (fetch_find(n, r->key))
        return -EALREADY;
    if (!nprov)
        return -EHOSTUNREACH;
    fetch *f = calloc(1, sizeof(*f));
    if (!f)
        return -ENOMEM;
    f->n = n;
    f->r = *r;
    f->r.files = NULL;
    f->started_us = irohds_now_us();
    f->next = n->fetches;
    n->fetches = f;
    int rc = 0;
    if (r->nfiles) {
        f->r.files = malloc(r->nfiles * sizeof(*r->files));
        if (!f->r.files)
            rc = -ENOMEM;
        else
            memcpy(f->r.files, r->files, r->nfiles * sizeof(*r->files));
    }
    f->ndl = 1 + r->nfiles;
    f->dls = rc ? NULL : calloc(f->ndl, sizeof(*f->dls));
    if (!rc && !f->dls)
        rc = -ENOMEM;
    for (unsigned i = 0; i < MAX_FETCH_PROVIDERS && i < nprov; i++)
        memcpy(f->prov[f->nprov++], providers[i], 32);
    for (unsigned i = 0; !rc && i < f->ndl; i++) {
        f->dls[i].fd = -1;
        rc = dl_init(n, &f->dls[i], i ? f->r.files[i - 1].blob : r->blob,
                     i ? f->r.files[i - 1].size : r->size);
        if (!rc)
            rc = add_segments(f, &f->dls[i], f->nprov);
    }
    if (rc) {
        f->ndl = f->dls ? f->ndl : 0;
        fetch_free(n, f);
        return rc;
    }
    schedule(n, f);
    return 0;
}

void fetch_add_provider(irohds_node *n, const uint8_t key[32], const uint8_t provider[32])
{
    fetch *f = fetch_find(n, key);
    if (!f || f->nprov >= MAX_FETCH_PROVIDERS || !memcmp(provider, n->id, 32))
        return;
    for (unsigned i = 0; i < f->nprov; i++)
        if (!memcmp(f->prov[i], provider, 32))
            return;
    memcpy(f->prov[f->nprov++], provider, 32);
    schedule(n, f); /* a segment waiting for a provider can go on */
}

/* ------------------------------------------------------------- events */

void fetch_connected(irohds_node *n, fpeer *fp)
{
    fp->established = true;
    for (fetch *f = n->fetches; f; f = f->next)
        schedule(n, f);
}

static seg *seg_of(irohds_node *n, fpeer *fp, int64_t sid)
{
    for (fetch *f = n->fetches; f; f = f->next)
        for (seg *s = f->segs; s; s = s->next)
            if (s->fp == fp && s->sid == sid)
                return s;
    return NULL;
}

void fetch_recv(irohds_node *n, fpeer *fp, int64_t sid, const uint8_t *data, size_t len, bool fin)
{
    seg *s = seg_of(n, fp, sid);
    if (!s || !s->dec)
        return;
    s->rx += len;
    int rc = irohds_bao_decoder_feed(s->dec, data, len);
    uint64_t claimed;
    if (!rc && irohds_bao_decoder_size(s->dec, &claimed) && claimed != s->dl->size)
        rc = -EBADMSG; /* not the size its producer signed */
    if (!rc && fin)
        rc = irohds_bao_decoder_finish(s->dec);
    if (rc == -EBADMSG) {
        seg_fail(n, s, true, "bytes that fail verification");
        return;
    }
    if (rc) {
        seg_fail(n, s, false, strerror(-rc));
        return;
    }
    if (irohds_bao_decoder_done(s->dec))
        seg_complete(n, s);
    else if (fin)
        seg_fail(n, s, false, "response ended early");
}

void fetch_stream_closed(irohds_node *n, fpeer *fp, int64_t sid, int err)
{
    seg *s = seg_of(n, fp, sid);
    if (s && !s->complete)
        seg_fail(n, s, false, err ? "stream reset" : "stream closed early");
}

void fetch_conn_closed(irohds_node *n, fpeer *fp, const irohds_net_close_info *why)
{
    /* Every segment on this connection loses its provider first, then each
     * fetch looks for others: no schedule() may see a segment still bound to
     * the dead connection. */
    fp->conn = NULL;
    const char *reason = why->err ? strerror(-why->err) : "connection closed";
    for (fetch *f = n->fetches; f; f = f->next)
        for (seg *s = f->segs; s; s = s->next)
            if (s->fp == fp && !s->complete)
                seg_reset(n, s, false, reason);
    fpeer_free(n, fp);
    for (fetch *f = n->fetches; f; f = f->next)
        schedule(n, f);
}

void fetch_tick(irohds_node *n, int64_t now)
{
    for (fetch *f = n->fetches, *next; f; f = next) {
        next = f->next;
        if (f->over) { /* failed: tell results.c, outside any fetch call */
            uint8_t key[32];
            int rc = f->rc;
            memcpy(key, f->r.key, 32);
            fetch_free(n, f);
            results_fetch_done(n, key, rc);
            next = n->fetches; /* the list may have changed */
            continue;
        }
        for (seg *s = f->segs; s; s = s->next)
            if (s->prov >= 0 && !s->complete && now - s->last_data_us > STALL_US) {
                if (s->fp && s->fp->conn)
                    irohds_net_conn_close(s->fp->conn, 0, "stalled");
                else
                    seg_fail(n, s, false, "stalled");
                break; /* the close fails this and other segments; look again next tick */
            }
    }
}

unsigned fetch_free_all(irohds_node *n)
{
    /* A fetch whose blobs are being placed on the thread pool is freed by
     * store_done, which then releases the node (see irohds_node_stop). */
    unsigned storing = 0;
    for (fetch *f = n->fetches, *next; f; f = next) {
        next = f->next;
        if (f->storing)
            storing++;
        else
            fetch_free(n, f);
    }
    while (n->fpeers) {
        fpeer *fp = n->fpeers;
        if (fp->conn)
            irohds_net_conn_set_user_ptr(fp->conn, NULL);
        fpeer_free(n, fp);
    }
    while (n->bad) {
        bad_blob *b = n->bad;
        n->bad = b->next;
        free(b);
    }
    return storing;
}
