/*
 * provide.c: the iroh-blobs server ("/iroh-bytes/4", docs/blobs.md).  A peer
 * opens a bidi stream, writes one Get request and finishes its side; we
 * answer with the blob's size and the bao encoding of the ranges it asked
 * for, read from the store's blob file and outboard as the stream takes them.
 *
 * Nothing is held in memory but one 256 KiB window per stream (plus what the
 * transport keeps until acknowledged, capped per stream): the encoder reads
 * with pread as the stream drains, so serving a 1 GiB blob to several peers
 * costs a few MiB.  Any blob in the store is served to anyone who names its
 * hash (content addressing: the hash is the capability, as in iroh).
 *
 * Errors reset the stream with iroh-blobs' codes: 1 (a request we do not
 * serve), 2 (a request over our limits: its size, or more ranges than we
 * take), 3 (a malformed request, no such blob, or a read error).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "node/node_int.h"

#define REQ_MAX 4096        /* a Get of one blob is ~40 bytes; iroh allows 1 MiB */
#define WINDOW (256u << 10) /* encoder output waiting for the stream */

enum { ERR_PERMISSION = 1, ERR_LIMIT = 2, ERR_INTERNAL = 3 };

typedef struct pstream {
    struct pstream *next;
    int64_t sid;
    uint8_t req[REQ_MAX];
    size_t reqlen;
    bool responding, finished, failed;
    int blob_fd, ob_fd;
    irohds_bao_encoder *enc;
    uint8_t *buf;
    size_t boff, blen;
} pstream;

typedef struct pconn {
    int kind; /* NODE_CONN_SERVE: first, see node.c */
    struct pconn *next;
    irohds_net_conn *conn;
    pstream *streams;
} pconn;

static void stream_free(pstream *s)
{
    if (s->blob_fd >= 0)
        close(s->blob_fd);
    if (s->ob_fd >= 0)
        close(s->ob_fd);
    free(s->enc);
    free(s->buf);
    free(s);
}

static pstream *stream_find(pconn *p, int64_t sid, bool create)
{
    for (pstream *s = p->streams; s; s = s->next)
        if (s->sid == sid)
            return s;
    if (!create)
        return NULL;
    pstream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->sid = sid;
    s->blob_fd = s->ob_fd = -1;
    s->next = p->streams;
    p->streams = s;
    return s;
}

static void stream_fail(pconn *p, pstream *s, uint64_t code)
{
    s->failed = true;
    irohds_net_stream_reset(p->conn, s->sid, code);
    irohds_net_stream_stop_sending(p->conn, s->sid, code);
}

static int read_fn(void *ctx, int which, uint64_t off, uint8_t *buf, size_t len)
{
    pstream *s = ctx;
    int fd = which == IROHDS_BAO_DATA ? s->blob_fd : s->ob_fd;
    while (len) {
        ssize_t r = pread(fd, buf, len, (off_t)off);
        if (r < 0)
            return -errno;
        if (r == 0)
            return -EIO; /* the file is shorter than its size said */
        buf += r;
        len -= (size_t)r;
        off += (uint64_t)r;
    }
    return 0;
}

/* Move encoder output into the stream until it pushes back or is done. */
static void pump(irohds_node *n, pconn *p, pstream *s)
{
    while (s->responding && !s->finished && !s->failed) {
        if (s->boff < s->blen) {
            ssize_t w = irohds_net_stream_write(p->conn, s->sid, s->buf + s->boff,
                                                s->blen - s->boff, false);
            if (w < 0) {
                s->failed = true; /* the peer stopped reading (STOP_SENDING) */
                return;
            }
            s->boff += (size_t)w;
            n->served_bytes += (uint64_t)w;
            if (s->boff < s->blen)
                return; /* writable() brings us back */
        }
        if (irohds_bao_encoder_done(s->enc)) {
            irohds_net_stream_write(p->conn, s->sid, NULL, 0, true);
            s->finished = true;
            return;
        }
        size_t got = 0;
        int rc = irohds_bao_encoder_pull(s->enc, s->buf, WINDOW, &got, read_fn, s);
        if (rc) {
            IROHDS_WARN("node: serving a blob failed: %s", strerror(-rc));
            stream_fail(p, s, ERR_INTERNAL);
            return;
        }
        s->boff = 0;
        s->blen = got;
    }
}

static int open_outboard(irohds_node *n, const uint8_t hash[32], uint64_t size)
{
    if (irohds_bao_outboard_size(size, IROHDS_BAO_GROUP_LOG) == 0)
        return -1; /* one group or less: no outboard, nothing to read */
    char path[PATH_MAX];
    irohds_store_blob_path(n->store, hash, true, path, sizeof path);
    return open(path, O_RDONLY | O_CLOEXEC);
}

/* The request is complete (the peer finished its side): start answering. */
static void start_response(irohds_node *n, pconn *p, pstream *s)
{
    irohds_blobs_get get;
    int rc = irohds_blobs_request_decode(s->req, s->reqlen, &get);
    if (rc) {
        /* Observe/Push/GetMany: not served; past our limits (e.g. more than
         * IROHDS_BLOBS_MAX_RANGES ranges): 2; malformed: 3. */
        stream_fail(p, s, rc == -ENOTSUP ? ERR_PERMISSION : rc == -EOVERFLOW ? ERR_LIMIT
                                                                             : ERR_INTERNAL);
        return;
    }
    uint64_t size;
    if (irohds_store_open_blob(n->store, get.hash, &s->blob_fd, &size) != 0) {
        stream_fail(p, s, ERR_INTERNAL); /* not here (any more) */
        return;
    }
    s->ob_fd = open_outboard(n, get.hash, size);
    bool need_ob = irohds_bao_outboard_size(size, IROHDS_BAO_GROUP_LOG) != 0;
    s->enc = malloc(sizeof(*s->enc));
    s->buf = malloc(WINDOW);
    if ((need_ob && s->ob_fd < 0) || !s->enc || !s->buf ||
        irohds_bao_encoder_init(s->enc, size, irohds_blobs_get_root_ranges(&get, NULL),
                                IROHDS_BAO_GROUP_LOG) != 0) {
        stream_fail(p, s, ERR_INTERNAL);
        return;
    }
    s->responding = true;
    n->served_streams++;
    pump(n, p, s);
}

void provide_accepted(irohds_node *n, irohds_net_conn *c)
{
    pconn *p = calloc(1, sizeof(*p));
    if (!p) {
        irohds_net_conn_close(c, 0, "out of memory");
        return;
    }
    p->kind = NODE_CONN_SERVE;
    p->conn = c;
    p->next = n->pconns;
    n->pconns = p;
    irohds_net_conn_set_user_ptr(c, p);
}

void provide_recv(irohds_node *n, pconn *p, int64_t sid, const uint8_t *data, size_t len,
                  bool fin)
{
    pstream *s = stream_find(p, sid, true);
    if (!s) {
        irohds_net_stream_stop_sending(p->conn, sid, ERR_INTERNAL);
        return;
    }
    if (s->responding || s->failed)
        return; /* nothing is expected after the request */
    if (len > REQ_MAX - s->reqlen) {
        stream_fail(p, s, ERR_LIMIT);
        return;
    }
    memcpy(s->req + s->reqlen, data, len);
    s->reqlen += len;
    if (fin)
        start_response(n, p, s);
}

void provide_writable(irohds_node *n, pconn *p, int64_t sid)
{
    pstream *s = stream_find(p, sid, false);
    if (s)
        pump(n, p, s);
}

void provide_stream_closed(irohds_node *n, pconn *p, int64_t sid)
{
    (void)n;
    for (pstream **pp = &p->streams; *pp; pp = &(*pp)->next)
        if ((*pp)->sid == sid) {
            pstream *dead = *pp;
            *pp = dead->next;
            stream_free(dead);
            return;
        }
}

static void pconn_free(irohds_node *n, pconn *p)
{
    for (pconn **pp = &n->pconns; *pp; pp = &(*pp)->next)
        if (*pp == p) {
            *pp = p->next;
            break;
        }
    while (p->streams) {
        pstream *s = p->streams;
        p->streams = s->next;
        stream_free(s);
    }
    free(p);
}

void provide_closed(irohds_node *n, pconn *p)
{
    pconn_free(n, p);
}

void provide_free_all(irohds_node *n)
{
    while (n->pconns) {
        pconn *p = n->pconns;
        irohds_net_conn_set_user_ptr(p->conn, NULL);
        pconn_free(n, p);
    }
}
