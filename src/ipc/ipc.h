/*
 * ipc: the protocol between Python processes (or the CLI) and the daemon,
 * over a Unix stream socket.  docs/ipc.md is the normative description.
 *
 * Only what needs the daemon crosses it: misses (a lease to compute, or wait
 * for whoever holds it), puts, evictions, info, gc, join.  A local hit never
 * does (see store.h).  Large values never cross as bytes: a put passes the
 * result file's descriptor with SCM_RIGHTS.
 *
 * Frame:  u32 LE body length (<= IROHDS_IPC_MAX_FRAME)
 *         body = u8 version | u8 type | u16 LE 0 | u32 LE request id | fields
 * fields: repeated (u8 tag | u32 LE length | bytes), each tag at most once.
 *         Unknown tags are skipped (forward compatible); a frame with a
 *         field that runs past the body, a repeated tag or a wrong-sized
 *         fixed field is malformed.
 *
 * The codec is I/O-free: bytes in, a message out (and the reverse), so it is
 * unit-tested and fuzzed without sockets.  client.c adds a small blocking
 * client used by the Python extension and the CLI.
 */
#ifndef IROHDS_IPC_H
#define IROHDS_IPC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IROHDS_IPC_VERSION 1
#define IROHDS_IPC_MAX_FRAME (1u << 20) /* 1 MiB body */
#define IROHDS_IPC_HEADER 12            /* length + version/type/pad/id */

typedef enum irohds_ipc_type {
    /* requests (client -> daemon) */
    IROHDS_IPC_HELLO = 1,   /* -> HELLO: versions, data dir, node id */
    IROHDS_IPC_GET = 2,     /* key, func, ns -> HIT | LEASE | WAIT (then HIT | LEASE) */
    IROHDS_IPC_PUT = 3,     /* key, lease, meta, fd [, staging] -> OK (hash, size) */
    IROHDS_IPC_RELEASE = 4, /* key, lease: give a lease back without a result -> OK */
    IROHDS_IPC_EVICT = 5,   /* func -> OK (count) */
    IROHDS_IPC_INFO = 6,    /* -> OK (text = JSON) */
    IROHDS_IPC_GC = 7,      /* -> OK (count = bytes freed) */
    IROHDS_IPC_JOIN = 8,    /* ns -> OK */
    IROHDS_IPC_CORRUPT = 9, /* hash: a reader found a blob that fails its hash -> OK */
    IROHDS_IPC_STOP = 10,   /* -> OK, then the daemon exits */
    IROHDS_IPC_EXPLAIN = 11, /* key, func, ns -> OK (text = JSON: hit / fetch / compute / wait, why) */
    IROHDS_IPC_PEERS = 12,   /* -> OK (text = JSON: known peers per namespace) */
    /* replies (daemon -> client) */
    IROHDS_IPC_OK = 64,
    IROHDS_IPC_ERROR = 65, /* code (negative errno), text */
    IROHDS_IPC_HIT = 66,   /* key, hash, size, serializer, seconds, func, ns, node, flags */
    IROHDS_IPC_LEASE = 67, /* key, lease: you compute it */
    IROHDS_IPC_WAIT = 68,  /* key, flags: someone else computes or fetches it; HIT or LEASE follows */
    IROHDS_IPC_PROGRESS = 69, /* key, size, count: bytes of a download so far (during a WAIT) */
} irohds_ipc_type;

/* Field tags.  Fixed-size fields must have exactly that size. */
enum irohds_ipc_tag {
    IROHDS_TAG_KEY = 1,        /* 32 bytes */
    IROHDS_TAG_HASH = 2,       /* 32 bytes */
    IROHDS_TAG_LEASE = 3,      /* u64 LE */
    IROHDS_TAG_SIZE = 4,       /* u64 LE */
    IROHDS_TAG_COUNT = 5,      /* u64 LE */
    IROHDS_TAG_SECONDS = 6,    /* f64 LE (IEEE 754) */
    IROHDS_TAG_SERIALIZER = 7, /* u32 LE */
    IROHDS_TAG_CODE = 8,       /* i32 LE, negative errno */
    IROHDS_TAG_FUNC = 9,       /* UTF-8, < IROHDS_FUNC_MAX */
    IROHDS_TAG_NS = 10,        /* UTF-8, < IROHDS_NS_MAX */
    IROHDS_TAG_TEXT = 11,      /* UTF-8, error message or JSON */
    IROHDS_TAG_STAGING = 12,   /* UTF-8, staging dir name (one path component) */
    IROHDS_TAG_FLAGS = 13,     /* u32 LE */
    IROHDS_TAG_FD = 14,        /* 0 bytes: a descriptor travels with this frame */
    IROHDS_TAG_PATH = 15,      /* UTF-8, HELLO reply: the daemon's data dir */
    IROHDS_TAG_NODE = 16,      /* 32 bytes: node id (HELLO: the daemon's; HIT: the producer's) */
    IROHDS_TAG_PID = 17,       /* u32 LE, HELLO reply: the daemon's pid */
};
#define IROHDS_IPC_TAG_LIMIT 32 /* tags >= this are never known (present is 32 bits) */

enum { IROHDS_IPC_FLAG_FORCE = 1 }; /* GET: recompute even if stored (forced recompute) */
enum {
    IROHDS_IPC_WAIT_FETCH = 1, /* WAIT: the daemon downloads it from a peer (PROGRESS follows) */
    IROHDS_IPC_WAIT_PEER = 2,  /* WAIT: a peer claimed it and is computing it */
};
enum { IROHDS_IPC_HIT_REMOTE = 1 }; /* HIT: the result was downloaded from a peer */
enum { IROHDS_IPC_PEERS_TEXT = 1 }; /* PEERS: a table for people instead of JSON */

/* A byte string inside the decoded frame (not NUL-terminated, not owned). */
typedef struct {
    const char *ptr;
    uint32_t len;
} irohds_ipc_str;

typedef struct irohds_ipc_msg {
    uint8_t type;
    uint32_t id;
    uint32_t present; /* bit (1 << tag) set for each field present */
    uint8_t key[32];
    uint8_t hash[32];
    uint64_t lease, size, count;
    double seconds;
    uint32_t serializer, flags;
    int32_t code;
    irohds_ipc_str func, ns, text, staging, path;
    uint8_t node[32];
    uint32_t pid;
} irohds_ipc_msg;

#define IROHDS_IPC_HAS(m, tag) (((m)->present >> (tag)) & 1u)

/*
 * Encode *m (only the fields whose bits are set in m->present) into buf.
 * Returns the frame length, or -ENOBUFS if cap is too small, -EINVAL for a
 * field that breaks a limit.
 */
int irohds_ipc_encode(const irohds_ipc_msg *m, uint8_t *buf, size_t cap);

/*
 * Decode one frame from the start of buf[0..len).  Returns the number of
 * bytes consumed (> 0) with *m filled (strings point into buf), 0 when more
 * bytes are needed, or a negative errno for a malformed frame:
 * -EMSGSIZE (length over the limit), -EPROTONOSUPPORT (version), -EPROTO.
 */
int irohds_ipc_decode(const uint8_t *buf, size_t len, irohds_ipc_msg *m);

/* ------------------------------------------------------- blocking client */

typedef struct irohds_ipc_client {
    int fd;
    uint32_t next_id;
    uint8_t buf[IROHDS_IPC_MAX_FRAME + IROHDS_IPC_HEADER]; /* last reply lives here */
    size_t buf_len, buf_off;
} irohds_ipc_client;

/* Connect to the daemon socket (no HELLO sent).  -ENOENT / -ECONNREFUSED when no daemon. */
int irohds_ipc_connect(irohds_ipc_client *c, const char *socket_path);
void irohds_ipc_close(irohds_ipc_client *c);

/* Send one frame; m->id is assigned.  fd >= 0 is passed with SCM_RIGHTS. */
int irohds_ipc_send(irohds_ipc_client *c, irohds_ipc_msg *m, int fd);

/*
 * Receive one frame (blocks; timeout_ms < 0 waits forever).  Strings in *m
 * point into c->buf and stay valid until the next receive.  -ETIMEDOUT,
 * -ECONNRESET when the daemon closed the connection, -EPROTO for garbage.
 */
int irohds_ipc_recv(irohds_ipc_client *c, irohds_ipc_msg *m, int timeout_ms);

/* Send a request and receive its reply (skipping nothing: one reply). */
int irohds_ipc_call(irohds_ipc_client *c, irohds_ipc_msg *req, int fd, irohds_ipc_msg *reply,
                    int timeout_ms);

/* Helpers to fill a message. */
void irohds_ipc_msg_init(irohds_ipc_msg *m, irohds_ipc_type type);
void irohds_ipc_set_str(irohds_ipc_msg *m, int tag, const char *s);
/* Same with an explicit length (s need not be NUL-terminated). */
void irohds_ipc_set_strn(irohds_ipc_msg *m, int tag, const char *s, uint32_t len);

/* Copy a decoded string into dst (NUL-terminated); -ENAMETOOLONG if it does not fit. */
int irohds_ipc_str_copy(irohds_ipc_str s, char *dst, size_t cap);

/* Name of a message type for logs ("GET", "?" when unknown). */
const char *irohds_ipc_type_name(int type);

#endif
