/*
 * server.c: the daemon's event loop (see server.h and docs/ipc.md).
 *
 * Connections are raw non-blocking fds watched with uv_poll_t and read with
 * recvmsg/written with sendmsg, not uv_pipe_t: a PUT carries the result
 * file's descriptor as SCM_RIGHTS, and libuv's ipc pipes only hand over
 * socket handles.  Received descriptors queue per connection and are claimed
 * in order by the frames that carry the FD tag.
 *
 * Fairness: each connection has an input buffer of at most one maximum
 * frame and an output cap; reads and writes never block, so a client that
 * stalls mid-frame or stops reading costs only its own buffers (and is
 * dropped once over the output cap).  While one connection's PUT is being
 * ingested on the thread pool, that connection's later frames wait (replies
 * stay in order) and every other connection is served.
 *
 * Threading: ingest (hashing, copying files into blobs/) runs on a libuv
 * worker because it only touches files; every LMDB transaction (lookup, put,
 * evict, gc) stays on the loop thread, so the store writer is single-threaded.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <uv.h>

#include "daemon/leases.h"
#include "daemon/nodekey.h"
#include "daemon/server.h"
#include "ipc/ipc.h"
#include "node/node.h"
#include "store/store.h"

#define MAX_CONNS 1024
#define MAX_PENDING_FDS 4         /* descriptors received but not yet claimed by a frame */
#define IN_START 16384            /* input buffer grows from here... */
#define IN_CAP (IROHDS_IPC_MAX_FRAME + 4) /* ...to exactly one maximum frame */
#define OUT_CAP (4u * IN_CAP)     /* a client this far behind on reading is dropped */
#define MAX_NAMESPACES 256
#define MAX_STAGED_FILES 100000
#define MAX_STAGING_DEPTH 64
#define TICK_MS 60000
#define STAGING_MAX_AGE_S (24L * 3600)

typedef struct server server;

typedef struct conn {
    struct conn *prev, *next;
    server *srv;
    uint64_t id;
    int fd;
    uv_poll_t poll;
    int events; /* what poll is started with, -1 = stopped */
    uint8_t *in;
    size_t in_len, in_cap;
    uint8_t *out;
    size_t out_len, out_cap;
    int fds[MAX_PENDING_FDS];
    int nfds;
    int refs;        /* the poll handle + PUT jobs in flight */
    bool closing;    /* no more I/O; freed when refs drops to 0 */
    bool busy;       /* a PUT is being stored: later frames wait */
    bool close_when_flushed;
} conn;

struct server {
    uv_loop_t loop;
    irohds_paths paths;
    irohds_config cfg;
    irohds_nodekey key;
    irohds_store *store;
    irohds_leases *leases;
    int lock_fd, listen_fd;
    uv_poll_t listen_poll;
    uv_timer_t tick;
    uv_signal_t sigterm, sigint;
    conn *conns;
    unsigned nconns;
    uint64_t next_conn_id;
    uint64_t started_ns;
    uint64_t refused_log_ns;
    bool stopping;
    unsigned nns;
    char ns[MAX_NAMESPACES][IROHDS_NS_MAX];
    irohds_node *node;        /* the peer-to-peer side; NULL with listen = "off" */
    struct daemon_lease *dleases; /* keys the daemon itself holds (downloads) */
};

/* A key whose lease the daemon holds while the node gets it from peers. */
typedef struct daemon_lease {
    struct daemon_lease *next;
    uint8_t key[32];
    uint64_t lease;
    char ns[IROHDS_NS_MAX];
    char func[IROHDS_FUNC_MAX];
} daemon_lease;

typedef struct put_job {
    uv_work_t req;
    conn *c;
    uint32_t req_id;
    uint8_t key[32];
    uint64_t lease;
    int fd;
    irohds_record rec;
    char staging[256];
    /* filled by the worker */
    int rc;
    char err[2 * IROHDS_NAME_MAX];
    irohds_file *files;
    uint32_t nfiles, files_cap;
} put_job;

static void conn_close(conn *c);
static void conn_process(conn *c);

/* ------------------------------------------------------------ output */

static void conn_update_poll(conn *c);

static void conn_flush(conn *c)
{
    size_t off = 0;
    while (off < c->out_len) {
        ssize_t n = send(c->fd, c->out + off, c->out_len - off, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0) {
            off += (size_t)n;
            continue;
        }
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        /* The peer is gone: whatever it was owed is moot. */
        c->out_len = 0;
        conn_close(c);
        return;
    }
    memmove(c->out, c->out + off, c->out_len - off);
    c->out_len -= off;
    if (c->out_len == 0 && c->close_when_flushed) {
        conn_close(c);
        return;
    }
    conn_update_poll(c);
}

static void conn_send(conn *c, irohds_ipc_msg *m)
{
    if (c->closing)
        return;
    uint8_t frame[4096];
    uint8_t *buf = frame;
    int n = irohds_ipc_encode(m, frame, sizeof(frame));
    if (n == -ENOBUFS) {
        buf = malloc(IN_CAP);
        n = buf ? irohds_ipc_encode(m, buf, IN_CAP) : -ENOMEM;
    }
    if (n < 0) {
        IROHDS_ERROR("cannot encode %s reply: %s", irohds_ipc_type_name(m->type), strerror(-n));
    } else if (c->out_len + (size_t)n > OUT_CAP) {
        IROHDS_WARN("connection %llu stopped reading its replies; dropped",
                    (unsigned long long)c->id);
        c->out_len = 0;
        conn_close(c);
    } else {
        if (c->out_len + (size_t)n > c->out_cap) {
            size_t cap = c->out_cap ? c->out_cap : 4096;
            while (cap < c->out_len + (size_t)n)
                cap *= 2;
            uint8_t *p = realloc(c->out, cap);
            if (!p) {
                conn_close(c);
                goto out;
            }
            c->out = p;
            c->out_cap = cap;
        }
        memcpy(c->out + c->out_len, buf, (size_t)n);
        c->out_len += (size_t)n;
        conn_flush(c);
    }
out:
    if (buf != frame)
        free(buf);
}

static void reply_error(conn *c, uint32_t id, int code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void reply_error(conn *c, uint32_t id, int code, const char *fmt, ...)
{
    char text[2 * IROHDS_NAME_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(text, sizeof(text), fmt, ap);
    va_end(ap);
    irohds_ipc_msg m;
    irohds_ipc_msg_init(&m, IROHDS_IPC_ERROR);
    m.id = id;
    m.code = code;
    m.present |= 1u << IROHDS_TAG_CODE;
    irohds_ipc_set_str(&m, IROHDS_TAG_TEXT, text);
    conn_send(c, &m);
}

static void reply_ok(conn *c, uint32_t id, const uint64_t *count)
{
    irohds_ipc_msg m;
    irohds_ipc_msg_init(&m, IROHDS_IPC_OK);
    m.id = id;
    if (count) {
        m.count = *count;
        m.present |= 1u << IROHDS_TAG_COUNT;
    }
    conn_send(c, &m);
}

static void send_hit(conn *c, uint32_t id, const uint8_t key[32], const irohds_record *rec)
{
    irohds_ipc_msg m;
    irohds_ipc_msg_init(&m, IROHDS_IPC_HIT);
    m.id = id;
    memcpy(m.key, key, 32);
    memcpy(m.hash, rec->blob, 32);
    m.size = rec->size;
    m.serializer = rec->serializer;
    m.seconds = rec->compute_seconds;
    memcpy(m.node, rec->producer, 32);
    m.flags = rec->origin == IROHDS_ORIGIN_REMOTE ? IROHDS_IPC_HIT_REMOTE : 0;
    m.present |= (1u << IROHDS_TAG_KEY) | (1u << IROHDS_TAG_HASH) | (1u << IROHDS_TAG_SIZE) |
                 (1u << IROHDS_TAG_SERIALIZER) | (1u << IROHDS_TAG_SECONDS) |
                 (1u << IROHDS_TAG_NODE) | (1u << IROHDS_TAG_FLAGS);
    irohds_ipc_set_str(&m, IROHDS_TAG_FUNC, rec->func);
    irohds_ipc_set_str(&m, IROHDS_TAG_NS, rec->ns);
    conn_send(c, &m);
}

/* ------------------------------------------------------------ leases */

static conn *find_conn(server *s, uint64_t id)
{
    for (conn *c = s->conns; c; c = c->next)
        if (c->id == id)
            return c;
    return NULL;
}

/* The lease table's answers become frames here. */
static void on_lease_event(void *ctx, const irohds_lease_event *ev)
{
    server *s = ctx;
    conn *c = find_conn(s, ev->conn);
    if (!c || c->closing)
        return;
    irohds_ipc_msg m;
    if (ev->kind == IROHDS_LEASE_HIT) {
        irohds_record rec;
        int rc = irohds_store_lookup(s->store, ev->key, &rec);
        if (rc == 0)
            send_hit(c, ev->req_id, ev->key, &rec);
        else
            reply_error(c, ev->req_id, rc, "result stored then gone: %s", strerror(-rc));
        return;
    }
    irohds_ipc_msg_init(&m, ev->kind == IROHDS_LEASE_GRANT ? IROHDS_IPC_LEASE : IROHDS_IPC_WAIT);
    m.id = ev->req_id;
    memcpy(m.key, ev->key, 32);
    m.present |= 1u << IROHDS_TAG_KEY;
    if (ev->kind == IROHDS_LEASE_GRANT) {
        m.lease = ev->lease;
        m.present |= 1u << IROHDS_TAG_LEASE;
    } else if (s->node) {
        m.flags = irohds_node_wait_flags(s->node, ev->key);
        m.present |= 1u << IROHDS_TAG_FLAGS;
    }
    conn_send(c, &m);
}

/* ------------------------------------------------------------- peers */

static daemon_lease *dlease_take(server *s, const uint8_t key[32])
{
    for (daemon_lease **pp = &s->dleases; *pp; pp = &(*pp)->next)
        if (!memcmp((*pp)->key, key, 32)) {
            daemon_lease *d = *pp;
            *pp = d->next;
            return d;
        }
    return NULL;
}

/* The node is done with a key the daemon held for it. */
static void on_node_resolved(void *ctx, const uint8_t key[IROHDS_KEY_LEN],
                             enum irohds_node_outcome out)
{
    server *s = ctx;
    daemon_lease *d = dlease_take(s, key);
    if (!d)
        return;
    if (out == IROHDS_NODE_STORED) {
        irohds_leases_stored(s->leases, key, d->lease); /* HIT to every waiter */
    } else {
        /* Hand the key to the first waiter, who computes it (and so the
         * namespace hears a claim). */
        irohds_leases_release(s->leases, key, d->lease);
        if (s->node && irohds_leases_busy(s->leases, key))
            irohds_node_claim(s->node, key, d->ns, d->func);
    }
    free(d);
}

typedef struct progress_ctx {
    server *s;
    irohds_ipc_msg m;
} progress_ctx;

static void send_progress(void *ctx, uint64_t conn_id, uint32_t req_id)
{
    progress_ctx *p = ctx;
    conn *c = find_conn(p->s, conn_id);
    if (!c || c->closing)
        return;
    p->m.id = req_id; /* a PROGRESS answers the GET that waits */
    conn_send(c, &p->m);
}

static void on_node_progress(void *ctx, const uint8_t key[IROHDS_KEY_LEN], uint64_t done,
                             uint64_t total)
{
    progress_ctx p = {.s = ctx};
    irohds_ipc_msg_init(&p.m, IROHDS_IPC_PROGRESS);
    memcpy(p.m.key, key, 32);
    p.m.size = total;
    p.m.count = done;
    p.m.present |= (1u << IROHDS_TAG_KEY) | (1u << IROHDS_TAG_SIZE) | (1u << IROHDS_TAG_COUNT);
    irohds_leases_foreach_waiter(p.s->leases, key, send_progress, &p);
}

static bool on_node_leased(void *ctx, const uint8_t key[IROHDS_KEY_LEN])
{
    server *s = ctx;
    return irohds_leases_busy(s->leases, key);
}

static bool key_in_use(void *ctx, const uint8_t key[IROHDS_KEY_LEN], const irohds_record *rec)
{
    (void)rec;
    server *s = ctx;
    return irohds_leases_busy(s->leases, key);
}

/* ------------------------------------------------------- store upkeep */

static void apply_touches(server *s)
{
    int rc = irohds_store_apply_touches(s->store);
    if (rc < 0)
        IROHDS_WARN("folding touch.log: %s", strerror(-rc));
}

static int run_gc(server *s, uint64_t limit, uint64_t *freed)
{
    apply_touches(s);
    *freed = 0;
    int rc = irohds_store_gc(s->store, limit, key_in_use, s, freed);
    if (rc < 0)
        IROHDS_WARN("gc: %s", strerror(-rc));
    else if (*freed)
        IROHDS_INFO("gc freed %llu bytes", (unsigned long long)*freed);
    return rc;
}

static void maybe_gc(server *s)
{
    uint64_t entries, bytes, freed;
    if (s->cfg.size_limit == 0 || irohds_store_stats(s->store, &entries, &bytes) < 0)
        return;
    if (bytes > s->cfg.size_limit)
        run_gc(s, s->cfg.size_limit, &freed);
}

int irohds_server_sweep_staging(const char *staging_dir, long max_age_s)
{
    DIR *d = opendir(staging_dir);
    if (!d)
        return errno == ENOENT ? 0 : -errno;
    time_t cutoff = time(NULL) - max_age_s;
    int removed = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL) {
        struct stat st;
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        if (fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW) < 0)
            continue;
        if (st.st_mtime < cutoff && irohds_rmtree_at(dirfd(d), de->d_name) == 0)
            removed++;
    }
    closedir(d);
    return removed;
}

static void on_tick(uv_timer_t *t)
{
    server *s = t->data;
    apply_touches(s);
    int stale = 0;
    irohds_store_reader_check(s->store, &stale);
    if (stale)
        IROHDS_INFO("freed %d LMDB reader slots of dead processes", stale);
    int n = irohds_server_sweep_staging(s->paths.staging_dir, STAGING_MAX_AGE_S);
    if (n > 0)
        IROHDS_INFO("removed %d abandoned staging dirs", n);
    maybe_gc(s);
}

/* --------------------------------------------------------- namespaces */

static void load_namespaces(server *s)
{
    char path[PATH_MAX + 16], *text;
    size_t len;
    snprintf(path, sizeof(path), "%s/namespaces", s->paths.data_dir);
    if (irohds_read_file(path, 1 << 20, &text, &len) < 0)
        return;
    for (char *line = strtok(text, "\n"); line && s->nns < MAX_NAMESPACES;
         line = strtok(NULL, "\n")) {
        if (line[0] && strlen(line) < IROHDS_NS_MAX)
            snprintf(s->ns[s->nns++], IROHDS_NS_MAX, "%s", line);
    }
    free(text);
}

/* Rewrite the namespaces file atomically (temp file + rename). */
static int save_namespaces(server *s)
{
    char path[PATH_MAX + 16], tmp[PATH_MAX + 32];
    snprintf(path, sizeof(path), "%s/namespaces", s->paths.data_dir);
    snprintf(tmp, sizeof(tmp), "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    int rc = 0;
    for (unsigned i = 0; i < s->nns && rc == 0; i++) {
        rc = irohds_write_all(fd, s->ns[i], strlen(s->ns[i]));
        if (rc == 0)
            rc = irohds_write_all(fd, "\n", 1);
    }
    if (rc == 0 && fsync(fd) < 0)
        rc = -errno;
    close(fd);
    if (rc == 0 && rename(tmp, path) < 0)
        rc = -errno;
    if (rc < 0)
        unlink(tmp);
    return rc;
}

/* Remember a namespace this node serves (persisted in <data dir>/namespaces).
 * 1 when it is new, 0 when already known, negative errno on failure. */
static int add_namespace(server *s, const char *ns)
{
    for (unsigned i = 0; i < s->nns; i++)
        if (!strcmp(s->ns[i], ns))
            return 0;
    if (s->nns == MAX_NAMESPACES)
        return -ENOSPC;
    snprintf(s->ns[s->nns++], IROHDS_NS_MAX, "%s", ns);
    int rc = save_namespaces(s);
    if (rc < 0) {
        s->nns--;
        return rc;
    }
    IROHDS_INFO("serving namespace %s", ns);
    if (s->node)
        irohds_node_join(s->node, ns);
    return 1;
}

/* ------------------------------------------------------------- INFO */

static void handle_info(server *s, conn *c, const irohds_ipc_msg *m)
{
    uint64_t entries = 0, bytes = 0;
    irohds_store_stats(s->store, &entries, &bytes);
    irohds_jbuf b = {0};
    irohds_jbuf_put(&b, "{\"node_id\": ", 12);
    irohds_jbuf_str(&b, s->key.id);
    irohds_jbuf_put(&b, ", \"data_dir\": ", 14);
    irohds_jbuf_str(&b, s->paths.data_dir);
    irohds_jbuf_put(&b, ", \"socket\": ", 12);
    irohds_jbuf_str(&b, s->paths.socket_path);
    irohds_jbuf_printf(&b, ", \"pid\": %ld, \"running\": true, \"version\": \"%s\", \"store_bytes\": %llu, "
                "\"entries\": %llu",
            (long)getpid(), IROHDS_VERSION_STRING, (unsigned long long)bytes,
            (unsigned long long)entries);
    irohds_jbuf_printf(&b, ", \"size_limit\": %llu, \"uptime_s\": %.0f, \"leases\": %zu, \"connections\": %u",
            (unsigned long long)s->cfg.size_limit,
            (double)(irohds_monotonic_ns() - s->started_ns) / 1e9,
            irohds_leases_count(s->leases), s->nconns);
    irohds_jbuf_puts(&b, ", \"addresses\": ");
    char *addrs = s->node ? irohds_node_addresses_json(s->node) : NULL;
    irohds_jbuf_puts(&b, addrs ? addrs : "[]");
    free(addrs);
    irohds_jbuf_put(&b, ", \"namespaces\": [", 17);
    for (unsigned i = 0; i < s->nns; i++) {
        if (i)
            irohds_jbuf_put(&b, ", ", 2);
        irohds_jbuf_str(&b, s->ns[i]);
    }
    irohds_jbuf_put(&b, "]}", 2);
    if (!b.p) {
        reply_error(c, m->id, -ENOMEM, "out of memory");
        return;
    }
    irohds_ipc_msg r;
    irohds_ipc_msg_init(&r, IROHDS_IPC_OK);
    r.id = m->id;
    irohds_ipc_set_strn(&r, IROHDS_TAG_TEXT, b.p, (uint32_t)b.len);
    conn_send(c, &r);
    free(b.p);
}

/* ------------------------------------------------------------- PUT */

static int add_file(put_job *j, const char *rel, const uint8_t hash[32], uint64_t size)
{
    if (j->nfiles == MAX_STAGED_FILES)
        return -E2BIG;
    if (j->nfiles == j->files_cap) {
        uint32_t cap = j->files_cap ? j->files_cap * 2 : 8;
        irohds_file *f = realloc(j->files, cap * sizeof(*f));
        if (!f)
            return -ENOMEM;
        j->files = f;
        j->files_cap = cap;
    }
    size_t len = strlen(rel);
    if (len >= sizeof(j->files[0].name))
        return -ENAMETOOLONG;
    irohds_file *f = &j->files[j->nfiles++];
    memset(f, 0, sizeof(*f));
    memcpy(f->name, rel, len + 1);
    memcpy(f->blob, hash, 32);
    f->size = size;
    return 0;
}

/* Worker thread: ingest every file under dirfd, refusing anything that is
 * not a plain file or directory with a safe name.  rel is dir's path so far. */
static int walk_staging(put_job *j, irohds_store *st, int dir, const char *rel, int depth)
{
    if (depth > MAX_STAGING_DEPTH) {
        snprintf(j->err, sizeof(j->err), "staging: %s: nested too deep", rel);
        return -ELOOP;
    }
    int dfd = dup(dir);
    DIR *d = dfd >= 0 ? fdopendir(dfd) : NULL;
    if (!d) {
        if (dfd >= 0)
            close(dfd);
        snprintf(j->err, sizeof(j->err), "staging: %s: %s", rel[0] ? rel : ".", strerror(errno));
        return -errno;
    }
    int rc = 0;
    struct dirent *de;
    while (rc == 0 && (de = readdir(d)) != NULL) {
        if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
            continue;
        char sub[IROHDS_NAME_MAX + 256];
        int n = snprintf(sub, sizeof(sub), "%s%s%s", rel, rel[0] ? "/" : "", de->d_name);
        if (n < 0 || (size_t)n >= sizeof(sub) || !irohds_name_is_safe(sub)) {
            snprintf(j->err, sizeof(j->err), "staging: unsafe name %.*s", IROHDS_NAME_MAX, sub);
            rc = -EINVAL;
            break;
        }
        struct stat sb;
        if (fstatat(dirfd(d), de->d_name, &sb, AT_SYMLINK_NOFOLLOW) < 0) {
            rc = -errno;
            snprintf(j->err, sizeof(j->err), "staging: %s: %s", sub, strerror(errno));
            break;
        }
        if (S_ISDIR(sb.st_mode)) {
            int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
            if (fd < 0) {
                rc = -errno;
                snprintf(j->err, sizeof(j->err), "staging: %s: %s", sub, strerror(errno));
                break;
            }
            rc = walk_staging(j, st, fd, sub, depth + 1);
            close(fd);
        } else if (S_ISREG(sb.st_mode)) {
            /* O_NOFOLLOW + fstat: a file swapped for a symlink after the
             * fstatat above is still refused. */
            int fd = openat(dirfd(d), de->d_name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
            struct stat fsb;
            if (fd < 0 || fstat(fd, &fsb) < 0 || !S_ISREG(fsb.st_mode)) {
                rc = fd < 0 ? -errno : -EINVAL;
                snprintf(j->err, sizeof(j->err), "staging: %s: not a regular file", sub);
                if (fd >= 0)
                    close(fd);
                break;
            }
            uint8_t hash[32];
            uint64_t size;
            rc = irohds_store_ingest_fd(st, fd, hash, &size);
            close(fd);
            if (rc == 0)
                rc = add_file(j, sub, hash, size);
            if (rc < 0)
                snprintf(j->err, sizeof(j->err), "staging: %s: %s", sub, strerror(-rc));
        } else {
            snprintf(j->err, sizeof(j->err), "staging: %s: %s", sub,
                     S_ISLNK(sb.st_mode) ? "symlinks are refused"
                                         : "not a regular file or directory");
            rc = -EINVAL;
        }
    }
    closedir(d);
    return rc;
}

static void put_work(uv_work_t *req)
{
    put_job *j = req->data;
    irohds_store *st = j->c->srv->store;
    j->rc = irohds_store_ingest_fd(st, j->fd, j->rec.blob, &j->rec.size);
    close(j->fd);
    j->fd = -1;
    if (j->rc < 0) {
        snprintf(j->err, sizeof(j->err), "ingest of the result file: %s", strerror(-j->rc));
        return;
    }
    if (!j->staging[0])
        return;
    char path[PATH_MAX + 256];
    snprintf(path, sizeof(path), "%s/%s", j->c->srv->paths.staging_dir, j->staging);
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (fd < 0) {
        j->rc = -errno;
        snprintf(j->err, sizeof(j->err), "staging dir %s: %s", j->staging, strerror(errno));
        return;
    }
    j->rc = walk_staging(j, st, fd, "", 0);
    close(fd);
    for (uint32_t i = 0; j->rc == 0 && i < j->nfiles; i++)
        j->rec.files_size += j->files[i].size;
    j->rec.nfiles = j->nfiles;
}

static void conn_unref(conn *c);

static void put_done(uv_work_t *req, int status)
{
    put_job *j = req->data;
    conn *c = j->c;
    server *s = c->srv;
    int rc = status < 0 ? status : j->rc;
    if (rc == 0) {
        rc = irohds_store_put(s->store, j->key, &j->rec, j->files, j->nfiles);
        if (rc < 0)
            snprintf(j->err, sizeof(j->err), "store put: %s", strerror(-rc));
    }
    if (rc == 0 && j->nfiles) {
        rc = irohds_store_link_files(s->store, j->key);
        if (rc < 0)
            snprintf(j->err, sizeof(j->err), "linking files: %s", strerror(-rc));
    }
    if (rc == 0 && j->staging[0]) {
        int dfd = open(s->paths.staging_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (dfd >= 0) {
            irohds_rmtree_at(dfd, j->staging);
            close(dfd);
        }
    }
    if (rc < 0) {
        IROHDS_WARN("put of %s failed: %s", j->rec.func, j->err);
        reply_error(c, j->req_id, rc, "%s", j->err[0] ? j->err : strerror(-rc));
        if (j->lease)
            irohds_leases_put_failed(s->leases, j->key, j->lease);
        if (s->node && !irohds_leases_busy(s->leases, j->key))
            irohds_node_unclaim(s->node, j->key);
    } else {
        irohds_ipc_msg m;
        irohds_ipc_msg_init(&m, IROHDS_IPC_OK);
        m.id = j->req_id;
        memcpy(m.hash, j->rec.blob, 32);
        m.size = j->rec.size;
        m.present |= (1u << IROHDS_TAG_HASH) | (1u << IROHDS_TAG_SIZE);
        conn_send(c, &m);
        irohds_leases_stored(s->leases, j->key, j->lease);
        if (s->node) {
            irohds_record stored;
            if (irohds_store_lookup(s->store, j->key, &stored) == 0)
                irohds_node_announce(s->node, j->key, &stored);
        }
        /* A namespace this node holds results of is one it serves, as if joined. */
        if (j->rec.ns[0] && !strchr(j->rec.ns, '\n') && add_namespace(s, j->rec.ns) < 0)
            IROHDS_WARN("could not record namespace %s", j->rec.ns);
        maybe_gc(s);
    }
    free(j->files);
    free(j);
    c->busy = false;
    if (!c->closing)
        conn_process(c);
    conn_unref(c);
}

/* Claim the oldest descriptor received on this connection. */
static int take_fd(conn *c)
{
    if (c->nfds == 0)
        return -1;
    int fd = c->fds[0];
    memmove(c->fds, c->fds + 1, (size_t)(--c->nfds) * sizeof(int));
    return fd;
}

static void handle_put(server *s, conn *c, const irohds_ipc_msg *m)
{
    int fd = IROHDS_IPC_HAS(m, IROHDS_TAG_FD) ? take_fd(c) : -1;
    const char *why = NULL;
    int code = -EINVAL;
    if (!IROHDS_IPC_HAS(m, IROHDS_TAG_KEY) || !IROHDS_IPC_HAS(m, IROHDS_TAG_FUNC))
        why = "PUT needs key and func";
    else if (fd < 0)
        why = "PUT needs a result file descriptor (FD tag + SCM_RIGHTS)", code = -EBADF;
    else if (IROHDS_IPC_HAS(m, IROHDS_TAG_SECONDS) && !(m->seconds >= 0 && isfinite(m->seconds)))
        why = "seconds must be a finite number >= 0";
    else if (m->staging.len && (memchr(m->staging.ptr, '/', m->staging.len) ||
                                (m->staging.len <= 2 && m->staging.ptr[0] == '.' &&
                                 (m->staging.len == 1 || m->staging.ptr[1] == '.'))))
        why = "staging must be one path component";
    else if (m->lease && irohds_leases_check(s->leases, m->key, m->lease) < 0)
        why = "lease is not valid for this key (released, superseded or unknown)", code = -ESTALE;
    if (why) {
        if (fd >= 0)
            close(fd);
        reply_error(c, m->id, code, "%s", why);
        return;
    }
    put_job *j = calloc(1, sizeof(*j));
    if (!j) {
        close(fd);
        reply_error(c, m->id, -ENOMEM, "out of memory");
        return;
    }
    j->c = c;
    j->req_id = m->id;
    memcpy(j->key, m->key, 32);
    j->lease = m->lease;
    j->fd = fd;
    j->rec.serializer = IROHDS_IPC_HAS(m, IROHDS_TAG_SERIALIZER) ? m->serializer
                                                                  : IROHDS_SER_PICKLE5;
    j->rec.compute_seconds = IROHDS_IPC_HAS(m, IROHDS_TAG_SECONDS) ? m->seconds : 0;
    memcpy(j->rec.producer, s->key.pk, 32); /* computed by a process of this machine */
    j->rec.origin = IROHDS_ORIGIN_LOCAL;
    irohds_ipc_str_copy(m->func, j->rec.func, sizeof(j->rec.func));
    if (IROHDS_IPC_HAS(m, IROHDS_TAG_NS))
        irohds_ipc_str_copy(m->ns, j->rec.ns, sizeof(j->rec.ns));
    if (m->staging.len)
        irohds_ipc_str_copy(m->staging, j->staging, sizeof(j->staging));
    if (j->lease)
        irohds_leases_begin_put(s->leases, j->key, j->lease);
    j->req.data = j;
    int rc = uv_queue_work(&s->loop, &j->req, put_work, put_done);
    if (rc < 0) {
        close(fd);
        free(j);
        if (m->lease)
            irohds_leases_put_failed(s->leases, m->key, m->lease);
        reply_error(c, m->id, rc, "cannot queue the put: %s", uv_strerror(rc));
        return;
    }
    c->busy = true;
    c->refs++;
}

/* ---------------------------------------------------------- requests */

static void server_shutdown(server *s);

static void handle_hello(server *s, conn *c, const irohds_ipc_msg *m)
{
    irohds_ipc_msg r;
    irohds_ipc_msg_init(&r, IROHDS_IPC_HELLO);
    r.id = m->id;
    irohds_ipc_set_str(&r, IROHDS_TAG_TEXT, "irohds-daemon " IROHDS_VERSION_STRING);
    irohds_ipc_set_str(&r, IROHDS_TAG_PATH, s->paths.data_dir);
    memcpy(r.node, s->key.pk, 32);
    r.pid = (uint32_t)getpid();
    r.present |= (1u << IROHDS_TAG_NODE) | (1u << IROHDS_TAG_PID);
    conn_send(c, &r);
}

static void handle_get(server *s, conn *c, const irohds_ipc_msg *m)
{
    if (!IROHDS_IPC_HAS(m, IROHDS_TAG_KEY)) {
        reply_error(c, m->id, -EINVAL, "GET needs a key");
        return;
    }
    bool force = IROHDS_IPC_HAS(m, IROHDS_TAG_FLAGS) && (m->flags & IROHDS_IPC_FLAG_FORCE);
    irohds_record rec;
    int rc = force ? -ENOENT : irohds_store_lookup(s->store, m->key, &rec);
    if (rc == 0) {
        send_hit(c, m->id, m->key, &rec);
        return;
    }
    if (rc != -ENOENT) {
        reply_error(c, m->id, rc, "store lookup: %s", strerror(-rc));
        return;
    }
    char ns[IROHDS_NS_MAX] = "", func[IROHDS_FUNC_MAX] = "";
    if (IROHDS_IPC_HAS(m, IROHDS_TAG_NS))
        irohds_ipc_str_copy(m->ns, ns, sizeof ns);
    if (IROHDS_IPC_HAS(m, IROHDS_TAG_FUNC))
        irohds_ipc_str_copy(m->func, func, sizeof func);
    /* Nobody here computes it yet: maybe a peer has it, or computes it. */
    if (s->node && !force && ns[0] && !irohds_leases_busy(s->leases, m->key)) {
        uint32_t flags;
        if (irohds_node_miss(s->node, m->key, ns, func, &flags) == IROHDS_NODE_PENDING) {
            daemon_lease *d = calloc(1, sizeof(*d));
            if (d && irohds_leases_acquire(s->leases, m->key, 0, &d->lease) == 0) {
                memcpy(d->key, m->key, 32);
                snprintf(d->ns, sizeof d->ns, "%s", ns);
                snprintf(d->func, sizeof d->func, "%s", func);
                d->next = s->dleases;
                s->dleases = d;
            } else {
                free(d);
            }
        }
    }
    bool first = !irohds_leases_busy(s->leases, m->key);
    rc = irohds_leases_get(s->leases, m->key, c->id, m->id);
    if (rc < 0)
        reply_error(c, m->id, rc, "lease table: %s", strerror(-rc));
    else if (first && s->node && ns[0])
        irohds_node_claim(s->node, m->key, ns, func); /* this client computes it */
}

static void handle_release(server *s, conn *c, const irohds_ipc_msg *m)
{
    if (!IROHDS_IPC_HAS(m, IROHDS_TAG_KEY) || !IROHDS_IPC_HAS(m, IROHDS_TAG_LEASE)) {
        reply_error(c, m->id, -EINVAL, "RELEASE needs key and lease");
        return;
    }
    int rc = irohds_leases_release(s->leases, m->key, m->lease);
    if (rc < 0)
        reply_error(c, m->id, rc, rc == -EBUSY ? "a PUT under this lease is being stored"
                                               : "not the holder of this lease");
    else
        reply_ok(c, m->id, NULL);
    if (rc == 0 && s->node && !irohds_leases_busy(s->leases, m->key))
        irohds_node_unclaim(s->node, m->key);
}

static void handle_evict(server *s, conn *c, const irohds_ipc_msg *m)
{
    char func[IROHDS_FUNC_MAX];
    if (!IROHDS_IPC_HAS(m, IROHDS_TAG_FUNC) || m->func.len == 0 ||
        irohds_ipc_str_copy(m->func, func, sizeof(func)) < 0) {
        reply_error(c, m->id, -EINVAL, "EVICT needs func");
        return;
    }
    uint64_t n = 0;
    int rc = irohds_store_evict_func(s->store, func, &n);
    if (rc < 0)
        reply_error(c, m->id, rc, "evict: %s", strerror(-rc));
    else
        reply_ok(c, m->id, &n);
}

static void handle_gc(server *s, conn *c, const irohds_ipc_msg *m)
{
    uint64_t freed = 0;
    int rc = run_gc(s, s->cfg.size_limit ? s->cfg.size_limit : UINT64_MAX, &freed);
    if (rc < 0)
        reply_error(c, m->id, rc, "gc: %s", strerror(-rc));
    else
        reply_ok(c, m->id, &freed);
}

static void handle_join(server *s, conn *c, const irohds_ipc_msg *m)
{
    char ns[IROHDS_NS_MAX];
    if (!IROHDS_IPC_HAS(m, IROHDS_TAG_NS) || m->ns.len == 0 ||
        memchr(m->ns.ptr, '\n', m->ns.len) || irohds_ipc_str_copy(m->ns, ns, sizeof(ns)) < 0) {
        reply_error(c, m->id, -EINVAL, "JOIN needs a namespace (one line)");
        return;
    }
    int rc = add_namespace(s, ns);
    if (rc == -ENOSPC)
        reply_error(c, m->id, rc, "at most %d namespaces", MAX_NAMESPACES);
    else if (rc < 0)
        reply_error(c, m->id, rc, "saving namespaces: %s", strerror(-rc));
    else
        reply_ok(c, m->id, NULL);
}

static void handle_corrupt(server *s, conn *c, const irohds_ipc_msg *m)
{
    if (!IROHDS_IPC_HAS(m, IROHDS_TAG_HASH)) {
        reply_error(c, m->id, -EINVAL, "CORRUPT needs a hash");
        return;
    }
    /* A client's word is not enough to delete data: check it ourselves. */
    uint64_t n = 0;
    int rc = irohds_store_verify_blob(s->store, m->hash);
    if (rc == -EBADMSG) {
        char hex[65];
        irohds_hex_encode(m->hash, 32, hex);
        rc = irohds_store_drop_blob(s->store, m->hash, &n);
        IROHDS_WARN("blob %s is corrupt: dropped %llu results", hex, (unsigned long long)n);
    } else if (rc == -ENOENT) {
        rc = 0;
    }
    if (rc < 0)
        reply_error(c, m->id, rc, "verify: %s", strerror(-rc));
    else
        reply_ok(c, m->id, &n);
}

static void reply_text(conn *c, uint32_t id, char *json)
{
    if (!json) {
        reply_error(c, id, -ENOMEM, "out of memory");
        return;
    }
    irohds_ipc_msg r;
    irohds_ipc_msg_init(&r, IROHDS_IPC_OK);
    r.id = id;
    irohds_ipc_set_strn(&r, IROHDS_TAG_TEXT, json, (uint32_t)strlen(json));
    conn_send(c, &r);
    free(json);
}

static void handle_explain(server *s, conn *c, const irohds_ipc_msg *m)
{
    if (!IROHDS_IPC_HAS(m, IROHDS_TAG_KEY)) {
        reply_error(c, m->id, -EINVAL, "EXPLAIN needs a key");
        return;
    }
    char ns[IROHDS_NS_MAX] = "";
    if (IROHDS_IPC_HAS(m, IROHDS_TAG_NS))
        irohds_ipc_str_copy(m->ns, ns, sizeof ns);
    if (s->node) {
        reply_text(c, m->id, irohds_node_explain(s->node, m->key, ns));
        return;
    }
    irohds_record rec;
    irohds_jbuf b = {0};
    irohds_jbuf_puts(&b, "{\"key\": ");
    irohds_jbuf_hex(&b, m->key, 32);
    if (irohds_store_lookup(s->store, m->key, &rec) == 0)
        irohds_jbuf_puts(&b, ", \"decision\": \"hit\", \"reason\": \"stored on this machine\"}");
    else
        irohds_jbuf_puts(&b, ", \"decision\": \"compute\", \"reason\": \"networking is off "
                             "(listen = \\\"off\\\")\", \"providers\": [], \"claim\": null}");
    reply_text(c, m->id, b.p);
}

static void handle_peers(server *s, conn *c, const irohds_ipc_msg *m)
{
    bool text = IROHDS_IPC_HAS(m, IROHDS_TAG_FLAGS) && (m->flags & IROHDS_IPC_PEERS_TEXT);
    if (s->node) {
        reply_text(c, m->id, text ? irohds_node_peers_text(s->node)
                                  : irohds_node_peers_json(s->node));
        return;
    }
    if (text) {
        reply_text(c, m->id, strdup("networking is off (listen = \"off\" in config.toml)\n"));
        return;
    }
    irohds_jbuf b = {0};
    irohds_jbuf_puts(&b, "{\"node_id\": ");
    irohds_jbuf_str(&b, s->key.id);
    irohds_jbuf_puts(&b, ", \"addresses\": [], \"namespaces\": {}, \"known\": []}");
    reply_text(c, m->id, b.p);
}

static void handle(server *s, conn *c, const irohds_ipc_msg *m)
{
    IROHDS_DEBUG("conn %llu: %s id %u", (unsigned long long)c->id, irohds_ipc_type_name(m->type),
                 m->id);
    switch (m->type) {
    case IROHDS_IPC_HELLO:
        handle_hello(s, c, m);
        break;
    case IROHDS_IPC_GET:
        handle_get(s, c, m);
        break;
    case IROHDS_IPC_PUT:
        handle_put(s, c, m);
        return; /* claims its own fd */
    case IROHDS_IPC_RELEASE:
        handle_release(s, c, m);
        break;
    case IROHDS_IPC_EVICT:
        handle_evict(s, c, m);
        break;
    case IROHDS_IPC_INFO:
        handle_info(s, c, m);
        break;
    case IROHDS_IPC_GC:
        handle_gc(s, c, m);
        break;
    case IROHDS_IPC_JOIN:
        handle_join(s, c, m);
        break;
    case IROHDS_IPC_CORRUPT:
        handle_corrupt(s, c, m);
        break;
    case IROHDS_IPC_EXPLAIN:
        handle_explain(s, c, m);
        break;
    case IROHDS_IPC_PEERS:
        handle_peers(s, c, m);
        break;
    case IROHDS_IPC_STOP:
        IROHDS_INFO("stop requested");
        reply_ok(c, m->id, NULL);
        server_shutdown(s);
        return;
    default:
        reply_error(c, m->id, -EOPNOTSUPP, "unknown request type %d", m->type);
        break;
    }
    /* A descriptor sent with a frame that does not use one is not kept. */
    if (IROHDS_IPC_HAS(m, IROHDS_TAG_FD)) {
        int fd = take_fd(c);
        if (fd >= 0)
            close(fd);
    }
}

/* ------------------------------------------------------- connections */

static void on_conn_closed(uv_handle_t *h)
{
    conn *c = h->data;
    close(c->fd);
    c->fd = -1;
    conn_unref(c);
}

static void conn_unref(conn *c)
{
    if (--c->refs > 0)
        return;
    free(c->in);
    free(c->out);
    free(c);
}

static void conn_close(conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    server *s = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nconns--;
    while (c->nfds)
        close(take_fd(c));
    irohds_leases_drop_conn(s->leases, c->id);
    uv_poll_stop(&c->poll);
    uv_close((uv_handle_t *)&c->poll, on_conn_closed);
}

static void on_conn_io(uv_poll_t *h, int status, int events);

static void conn_update_poll(conn *c)
{
    if (c->closing)
        return;
    int ev = 0;
    if (!c->busy && !c->close_when_flushed && c->in_len < IN_CAP)
        ev |= UV_READABLE;
    if (c->out_len)
        ev |= UV_WRITABLE;
    if (ev == c->events)
        return;
    c->events = ev;
    if (ev)
        uv_poll_start(&c->poll, ev, on_conn_io);
    else
        uv_poll_stop(&c->poll);
}

/* Decode and handle every complete frame buffered (until a PUT makes us wait). */
static void conn_process(conn *c)
{
    size_t off = 0;
    while (!c->closing && !c->busy && !c->close_when_flushed) {
        irohds_ipc_msg m;
        int n = irohds_ipc_decode(c->in + off, c->in_len - off, &m);
        if (n == 0)
            break;
        if (n < 0) {
            IROHDS_WARN("connection %llu: bad frame (%s); closing", (unsigned long long)c->id,
                        strerror(-n));
            if (n == -EMSGSIZE) { /* it may be streaming a megabyte at us: no reply */
                conn_close(c);
                return;
            }
            reply_error(c, 0, n, "malformed frame: %s", strerror(-n));
            c->close_when_flushed = true;
            if (!c->closing && c->out_len == 0)
                conn_close(c);
            break;
        }
        handle(c->srv, c, &m);
        off += (size_t)n;
    }
    if (c->closing)
        return;
    /* Strings of a PUT in flight were copied into its job, so compacting is safe. */
    memmove(c->in, c->in + off, c->in_len - off);
    c->in_len -= off;
    conn_update_poll(c);
}

static int conn_read(conn *c)
{
    if (c->in_len == c->in_cap) {
        size_t cap = c->in_cap * 2 > IN_CAP ? IN_CAP : c->in_cap * 2;
        uint8_t *p = realloc(c->in, cap);
        if (!p)
            return -ENOMEM;
        c->in = p;
        c->in_cap = cap;
    }
    union {
        struct cmsghdr hdr;
        char space[CMSG_SPACE(sizeof(int) * MAX_PENDING_FDS)];
    } ctl;
    struct iovec iov = {.iov_base = c->in + c->in_len, .iov_len = c->in_cap - c->in_len};
    struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = ctl.space,
                        .msg_controllen = sizeof(ctl.space)};
    ssize_t n;
    do
        n = recvmsg(c->fd, &mh, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
    while (n < 0 && errno == EINTR);
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -errno;
    int rc = 0;
    for (struct cmsghdr *cm = CMSG_FIRSTHDR(&mh); cm; cm = CMSG_NXTHDR(&mh, cm)) {
        if (cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS)
            continue;
        size_t k = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
        for (size_t i = 0; i < k; i++) {
            int fd;
            memcpy(&fd, CMSG_DATA(cm) + i * sizeof(int), sizeof(int));
            if (c->nfds < MAX_PENDING_FDS)
                c->fds[c->nfds++] = fd;
            else {
                close(fd);
                rc = -EMFILE; /* hoarding descriptors: a broken or hostile client */
            }
        }
    }
    if (mh.msg_flags & MSG_CTRUNC)
        rc = -EMFILE;
    if (rc < 0)
        return rc;
    if (n == 0)
        return -ECONNRESET;
    c->in_len += (size_t)n;
    return 1;
}

static void on_conn_io(uv_poll_t *h, int status, int events)
{
    conn *c = h->data;
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (events & UV_WRITABLE) {
        conn_flush(c);
        if (c->closing)
            return;
    }
    if (events & UV_READABLE) {
        int rc = conn_read(c);
        if (rc < 0) {
            if (rc != -ECONNRESET)
                IROHDS_WARN("connection %llu: %s", (unsigned long long)c->id, strerror(-rc));
            conn_close(c);
            return;
        }
        if (rc > 0)
            conn_process(c);
    }
}

static void on_accept(uv_poll_t *h, int status, int events)
{
    (void)events;
    server *s = h->data;
    if (status < 0 || s->stopping)
        return;
    for (;;) {
        int fd = accept4(s->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                IROHDS_WARN("accept: %s", strerror(errno));
            return;
        }
        struct ucred cr;
        socklen_t crlen = sizeof(cr);
        /* The socket is 0600 in a 0700 dir; this also guards a misconfigured dir. */
        if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &crlen) < 0 ||
            (cr.uid != geteuid() && cr.uid != 0)) {
            close(fd);
            continue;
        }
        if (s->nconns >= MAX_CONNS) {
            uint64_t now = irohds_monotonic_ns();
            if (now - s->refused_log_ns > 10000000000ull) { /* one line per 10 s, not per attempt */
                IROHDS_WARN("%d connections open: refusing more", MAX_CONNS);
                s->refused_log_ns = now;
            }
            close(fd);
            continue;
        }
        conn *c = calloc(1, sizeof(*c));
        uint8_t *in = malloc(IN_START);
        if (!c || !in || uv_poll_init(&s->loop, &c->poll, fd) < 0) {
            free(c);
            free(in);
            close(fd);
            continue;
        }
        c->srv = s;
        c->fd = fd;
        c->id = ++s->next_conn_id;
        c->in = in;
        c->in_cap = IN_START;
        c->refs = 1;
        c->events = -1;
        c->poll.data = c;
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        s->nconns++;
        conn_update_poll(c);
    }
}

/* ------------------------------------------------------------ lifecycle */

static void server_shutdown(server *s)
{
    if (s->stopping)
        return;
    s->stopping = true;
    IROHDS_INFO("shutting down");
    uv_poll_stop(&s->listen_poll);
    uv_close((uv_handle_t *)&s->listen_poll, NULL);
    /* Unlink while we still hold the lock, so we never remove a successor's socket. */
    unlink(s->paths.socket_path);
    while (s->conns) {
        conn *c = s->conns;
        if (c->out_len)
            conn_flush(c); /* the STOP reply, typically */
        conn_close(c);
    }
    irohds_node_stop(s->node); /* answers the daemon's own leases GIVE_UP first */
    s->node = NULL;
    uv_timer_stop(&s->tick);
    uv_close((uv_handle_t *)&s->tick, NULL);
    uv_close((uv_handle_t *)&s->sigterm, NULL);
    uv_close((uv_handle_t *)&s->sigint, NULL);
}

static void on_signal(uv_signal_t *h, int signum)
{
    IROHDS_INFO("signal %d", signum);
    server_shutdown(h->data);
}

int irohds_server_lock(const irohds_paths *paths)
{
    int fd = open(paths->lock_path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return -errno;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno == EWOULDBLOCK ? -EWOULDBLOCK : -errno;
        close(fd);
        return e;
    }
    return fd;
}

static int bind_socket(server *s)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", s->paths.socket_path);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    unlink(s->paths.socket_path); /* stale: we hold the lock, so no daemon owns it */
    mode_t old = umask(0177);     /* born 0600: no window where others could connect */
    int rc = bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    umask(old);
    if (rc < 0 || chmod(s->paths.socket_path, 0600) < 0 || listen(fd, 128) < 0) {
        rc = -errno;
        close(fd);
        return rc;
    }
    s->listen_fd = fd;
    return 0;
}

/* Everything before the loop starts.  Returns 0, 1 (another daemon runs), or -errno. */
static int server_open(server *s, unsigned flags)
{
    char err[256];
    int rc = irohds_paths_create_dirs(&s->paths);
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: cannot create %s: %s\n", s->paths.data_dir, strerror(-rc));
        return rc;
    }
    irohds_config_defaults(&s->cfg);
    rc = irohds_config_load(&s->cfg, s->paths.config_path, err, sizeof(err));
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: %s: %s\n", s->paths.config_path, err);
        return rc;
    }
    irohds_log_set_level(s->cfg.log_level);
    rc = irohds_nodekey_load(&s->key, s->paths.key_path, true);
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: node key %s: %s\n", s->paths.key_path, strerror(-rc));
        return rc;
    }
    s->lock_fd = irohds_server_lock(&s->paths);
    if (s->lock_fd == -EWOULDBLOCK) {
        if (!(flags & IROHDS_SERVER_DETACHED))
            fprintf(stderr, "irohds-daemon: already running (lock %s held)\n",
                    s->paths.lock_path);
        return 1;
    }
    if (s->lock_fd < 0) {
        fprintf(stderr, "irohds-daemon: lock %s: %s\n", s->paths.lock_path, strerror(-s->lock_fd));
        return s->lock_fd;
    }
    rc = irohds_store_open(&s->store, s->paths.store_dir, s->cfg.sync ? IROHDS_STORE_SYNC : 0);
    if (rc == 0)
        rc = irohds_store_set_files_dir(s->store, s->paths.files_dir);
    if (rc == 0)
        rc = irohds_store_recover(s->store);
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: store %s: %s\n", s->paths.store_dir, strerror(-rc));
        return rc;
    }
    rc = irohds_leases_init(&s->leases, on_lease_event, s);
    if (rc < 0)
        return rc;
    load_namespaces(s);
    rc = bind_socket(s);
    if (rc < 0) {
        fprintf(stderr, "irohds-daemon: socket %s: %s\n", s->paths.socket_path, strerror(-rc));
        return rc;
    }
    return 0;
}

/* The peer-to-peer side, unless config says listen = "off".  A node that
 * cannot start (port taken) leaves a daemon that serves this machine. */
static void start_node(server *s)
{
    if (!strcmp(s->cfg.listen, "off"))
        return;
    irohds_node_options opt = {
        .cfg = &s->cfg,
        .paths = &s->paths,
        .secret_key = s->key.sk,
        .store = s->store,
        .cb = {.resolved = on_node_resolved,
               .progress = on_node_progress,
               .leased = on_node_leased,
               .ctx = s},
    };
    int rc = irohds_node_start(&s->loop, &opt, &s->node);
    if (rc < 0) {
        IROHDS_ERROR("peer-to-peer off: %s", strerror(-rc));
        s->node = NULL;
        return;
    }
    for (unsigned i = 0; i < s->nns; i++)
        irohds_node_join(s->node, s->ns[i]);
}

int irohds_server_run(const irohds_paths *paths, unsigned flags)
{
    server *s = calloc(1, sizeof(*s));
    if (!s) {
        fprintf(stderr, "irohds-daemon: out of memory\n");
        return 1;
    }
    s->paths = *paths;
    s->lock_fd = s->listen_fd = -1;
    s->started_ns = irohds_monotonic_ns();
    signal(SIGPIPE, SIG_IGN);
    int rc = server_open(s, flags);
    int status = 1;
    if (rc == 1) {
        status = flags & IROHDS_SERVER_DETACHED ? 0 : 1;
        goto out;
    }
    if (rc < 0)
        goto out;
    uv_loop_init(&s->loop);
    uv_poll_init(&s->loop, &s->listen_poll, s->listen_fd);
    s->listen_poll.data = s;
    uv_poll_start(&s->listen_poll, UV_READABLE, on_accept);
    uv_timer_init(&s->loop, &s->tick);
    s->tick.data = s;
    uv_timer_start(&s->tick, on_tick, TICK_MS, TICK_MS);
    uv_signal_init(&s->loop, &s->sigterm);
    uv_signal_init(&s->loop, &s->sigint);
    s->sigterm.data = s->sigint.data = s;
    uv_signal_start(&s->sigterm, on_signal, SIGTERM);
    uv_signal_start(&s->sigint, on_signal, SIGINT);
    irohds_server_sweep_staging(s->paths.staging_dir, STAGING_MAX_AGE_S);
    start_node(s);
    IROHDS_INFO("irohds-daemon %s pid %ld node %s listening on %s", IROHDS_VERSION_STRING,
                (long)getpid(), s->key.id, s->paths.socket_path);
    uv_run(&s->loop, UV_RUN_DEFAULT); /* returns once shutdown closed every handle
                                         and in-flight PUTs finished */
    uv_loop_close(&s->loop);
    status = 0;
    IROHDS_INFO("stopped");
out:
    if (s->listen_fd >= 0)
        close(s->listen_fd);
    irohds_leases_free(s->leases);
    if (s->store)
        irohds_store_close(s->store);
    irohds_nodekey_wipe(&s->key);
    if (s->lock_fd >= 0)
        close(s->lock_fd); /* last: the lock is released only when we are done */
    free(s);
    return status;
}
