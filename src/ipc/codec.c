/*
 * codec.c: the IPC frame encoder and decoder (docs/ipc.md is the spec).
 *
 * I/O-free on purpose: the daemon's event loop, the blocking client, the
 * unit tests and the fuzzer all feed it plain byte buffers.  The decoder
 * treats its input as hostile: every length is checked against what is left
 * before it is used, so it never reads past len whatever the bytes say, and
 * a frame is either fully valid or rejected (no half-filled message is ever
 * acted on).  Strings are not copied: they point into the caller's buffer.
 */
#include <errno.h>
#include <limits.h>
#include <string.h>

#include "ipc/ipc.h"
#include "store/store.h" /* IROHDS_FUNC_MAX, IROHDS_NS_MAX (constants only) */

#define BODY_FIXED 8 /* version, type, pad, request id */
#define FIELD_HDR 5  /* tag, length */
#define STAGING_MAX 255 /* one path component (NAME_MAX) */

/* ---------------------------------------------------------- byte access */

static void put_u32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put_u64(uint8_t *p, uint64_t v)
{
    put_u32(p, (uint32_t)v);
    put_u32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get_u32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get_u64(const uint8_t *p)
{
    return (uint64_t)get_u32(p) | (uint64_t)get_u32(p + 4) << 32;
}

/* ------------------------------------------------------------ field table */

/* What each known tag holds: its fixed size, or -1 for a string. */
enum { VAR = -1 };

static int tag_size(int tag)
{
    switch (tag) {
    case IROHDS_TAG_KEY:
    case IROHDS_TAG_HASH:
    case IROHDS_TAG_NODE:
        return 32;
    case IROHDS_TAG_LEASE:
    case IROHDS_TAG_SIZE:
    case IROHDS_TAG_COUNT:
    case IROHDS_TAG_SECONDS:
        return 8;
    case IROHDS_TAG_SERIALIZER:
    case IROHDS_TAG_CODE:
    case IROHDS_TAG_FLAGS:
    case IROHDS_TAG_PID:
        return 4;
    case IROHDS_TAG_FD:
        return 0;
    case IROHDS_TAG_FUNC:
    case IROHDS_TAG_NS:
    case IROHDS_TAG_TEXT:
    case IROHDS_TAG_STAGING:
    case IROHDS_TAG_PATH:
        return VAR;
    default:
        return -2; /* unknown */
    }
}

/* Longest allowed string for a tag (bytes, no NUL counted). */
static uint32_t str_max(int tag)
{
    switch (tag) {
    case IROHDS_TAG_FUNC:
        return IROHDS_FUNC_MAX - 1;
    case IROHDS_TAG_NS:
        return IROHDS_NS_MAX - 1;
    case IROHDS_TAG_STAGING:
        return STAGING_MAX;
    case IROHDS_TAG_PATH:
        return PATH_MAX - 1;
    default:
        return IROHDS_IPC_MAX_FRAME;
    }
}

static irohds_ipc_str *str_slot(irohds_ipc_msg *m, int tag)
{
    switch (tag) {
    case IROHDS_TAG_FUNC:
        return &m->func;
    case IROHDS_TAG_NS:
        return &m->ns;
    case IROHDS_TAG_TEXT:
        return &m->text;
    case IROHDS_TAG_STAGING:
        return &m->staging;
    case IROHDS_TAG_PATH:
        return &m->path;
    default:
        return NULL;
    }
}

/* The fixed-size fields, as their little-endian wire bytes. */
static void fixed_encode(const irohds_ipc_msg *m, int tag, uint8_t *out)
{
    uint64_t bits;
    switch (tag) {
    case IROHDS_TAG_KEY:
        memcpy(out, m->key, 32);
        break;
    case IROHDS_TAG_HASH:
        memcpy(out, m->hash, 32);
        break;
    case IROHDS_TAG_NODE:
        memcpy(out, m->node, 32);
        break;
    case IROHDS_TAG_LEASE:
        put_u64(out, m->lease);
        break;
    case IROHDS_TAG_SIZE:
        put_u64(out, m->size);
        break;
    case IROHDS_TAG_COUNT:
        put_u64(out, m->count);
        break;
    case IROHDS_TAG_SECONDS:
        memcpy(&bits, &m->seconds, 8);
        put_u64(out, bits);
        break;
    case IROHDS_TAG_SERIALIZER:
        put_u32(out, m->serializer);
        break;
    case IROHDS_TAG_CODE:
        put_u32(out, (uint32_t)m->code);
        break;
    case IROHDS_TAG_FLAGS:
        put_u32(out, m->flags);
        break;
    case IROHDS_TAG_PID:
        put_u32(out, m->pid);
        break;
    default:
        break;
    }
}

static void fixed_decode(irohds_ipc_msg *m, int tag, const uint8_t *in)
{
    uint64_t bits;
    switch (tag) {
    case IROHDS_TAG_KEY:
        memcpy(m->key, in, 32);
        break;
    case IROHDS_TAG_HASH:
        memcpy(m->hash, in, 32);
        break;
    case IROHDS_TAG_NODE:
        memcpy(m->node, in, 32);
        break;
    case IROHDS_TAG_LEASE:
        m->lease = get_u64(in);
        break;
    case IROHDS_TAG_SIZE:
        m->size = get_u64(in);
        break;
    case IROHDS_TAG_COUNT:
        m->count = get_u64(in);
        break;
    case IROHDS_TAG_SECONDS:
        bits = get_u64(in);
        memcpy(&m->seconds, &bits, 8);
        break;
    case IROHDS_TAG_SERIALIZER:
        m->serializer = get_u32(in);
        break;
    case IROHDS_TAG_CODE:
        m->code = (int32_t)get_u32(in);
        break;
    case IROHDS_TAG_FLAGS:
        m->flags = get_u32(in);
        break;
    case IROHDS_TAG_PID:
        m->pid = get_u32(in);
        break;
    default:
        break;
    }
}

/* -------------------------------------------------------------- encoder */

int irohds_ipc_encode(const irohds_ipc_msg *m, uint8_t *buf, size_t cap)
{
    size_t body = BODY_FIXED;
    if (m->present & 1u) /* tag 0 is not a field */
        return -EINVAL;
    for (int tag = 1; tag < IROHDS_IPC_TAG_LIMIT; tag++) {
        if (!IROHDS_IPC_HAS(m, tag))
            continue;
        int sz = tag_size(tag);
        if (sz == -2)
            return -EINVAL;
        if (sz == VAR) {
            const irohds_ipc_str *s = str_slot((irohds_ipc_msg *)m, tag);
            if (s->len > str_max(tag) || (s->len && (!s->ptr || memchr(s->ptr, 0, s->len))))
                return -EINVAL;
            sz = (int)s->len;
        }
        body += FIELD_HDR + (size_t)sz;
        if (body > IROHDS_IPC_MAX_FRAME)
            return -EMSGSIZE;
    }
    if (cap < 4 + body)
        return -ENOBUFS;

    put_u32(buf, (uint32_t)body);
    buf[4] = IROHDS_IPC_VERSION;
    buf[5] = m->type;
    buf[6] = buf[7] = 0;
    put_u32(buf + 8, m->id);
    uint8_t *p = buf + IROHDS_IPC_HEADER;
    for (int tag = 1; tag < IROHDS_IPC_TAG_LIMIT; tag++) {
        if (!IROHDS_IPC_HAS(m, tag))
            continue;
        int sz = tag_size(tag);
        *p = (uint8_t)tag;
        if (sz == VAR) {
            const irohds_ipc_str *s = str_slot((irohds_ipc_msg *)m, tag);
            put_u32(p + 1, s->len);
            if (s->len)
                memcpy(p + FIELD_HDR, s->ptr, s->len);
            p += FIELD_HDR + s->len;
        } else {
            put_u32(p + 1, (uint32_t)sz);
            fixed_encode(m, tag, p + FIELD_HDR);
            p += FIELD_HDR + (size_t)sz;
        }
    }
    return (int)(4 + body);
}

/* -------------------------------------------------------------- decoder */

int irohds_ipc_decode(const uint8_t *buf, size_t len, irohds_ipc_msg *m)
{
    if (len < 4)
        return 0;
    uint32_t body = get_u32(buf);
    /* Judge the length and version as soon as they are visible, so a peer
     * announcing a frame we will never accept is refused before we buffer it. */
    if (body > IROHDS_IPC_MAX_FRAME)
        return -EMSGSIZE;
    if (len >= 5 && buf[4] != IROHDS_IPC_VERSION)
        return -EPROTONOSUPPORT;
    if (body < BODY_FIXED)
        return -EPROTO;
    if (len - 4 < body)
        return 0;

    memset(m, 0, sizeof(*m));
    m->type = buf[5];
    if (buf[6] || buf[7])
        return -EPROTO;
    m->id = get_u32(buf + 8);

    const uint8_t *p = buf + IROHDS_IPC_HEADER;
    size_t left = body - BODY_FIXED;
    while (left > 0) {
        if (left < FIELD_HDR)
            return -EPROTO;
        int tag = p[0];
        uint32_t flen = get_u32(p + 1);
        p += FIELD_HDR;
        left -= FIELD_HDR;
        if (flen > left)
            return -EPROTO;
        int sz = tag_size(tag);
        if (sz != -2) { /* known tag */
            if (IROHDS_IPC_HAS(m, tag))
                return -EPROTO;
            if (sz == VAR) {
                if (flen > str_max(tag) || (flen && memchr(p, 0, flen)))
                    return -EPROTO;
                irohds_ipc_str *s = str_slot(m, tag);
                s->ptr = (const char *)p;
                s->len = flen;
            } else {
                if (flen != (uint32_t)sz)
                    return -EPROTO;
                fixed_decode(m, tag, p);
            }
            m->present |= 1u << tag;
        }
        p += flen;
        left -= flen;
    }
    return (int)(4 + body);
}

/* -------------------------------------------------------------- helpers */

void irohds_ipc_msg_init(irohds_ipc_msg *m, irohds_ipc_type type)
{
    memset(m, 0, sizeof(*m));
    m->type = (uint8_t)type;
}

void irohds_ipc_set_strn(irohds_ipc_msg *m, int tag, const char *s, uint32_t len)
{
    irohds_ipc_str *slot = str_slot(m, tag);
    if (!slot)
        return;
    slot->ptr = s;
    slot->len = len;
    m->present |= 1u << tag;
}

void irohds_ipc_set_str(irohds_ipc_msg *m, int tag, const char *s)
{
    size_t n = s ? strlen(s) : 0;
    irohds_ipc_set_strn(m, tag, s ? s : "", n > UINT32_MAX ? UINT32_MAX : (uint32_t)n);
}

int irohds_ipc_str_copy(irohds_ipc_str s, char *dst, size_t cap)
{
    if (cap == 0 || s.len >= cap)
        return -ENAMETOOLONG;
    if (s.len)
        memcpy(dst, s.ptr, s.len);
    dst[s.len] = 0;
    return 0;
}

const char *irohds_ipc_type_name(int type)
{
    static const char *const req[] = {"?",    "HELLO", "GET",  "PUT",     "RELEASE", "EVICT", "INFO",
                                      "GC",   "JOIN",  "CORRUPT", "STOP", "EXPLAIN", "PEERS"};
    static const char *const rep[] = {"OK", "ERROR", "HIT", "LEASE", "WAIT", "PROGRESS"};
    if (type >= 1 && type <= IROHDS_IPC_PEERS)
        return req[type];
    if (type >= IROHDS_IPC_OK && type <= IROHDS_IPC_PROGRESS)
        return rep[type - IROHDS_IPC_OK];
    return "?";
}
