/*
 * gossip/wire.c: the iroh-gossip wire format (see gossip.h and
 * docs/gossip.md).  Everything here is plain postcard over the reader and
 * writer of wire/postcard.h; this file only knows the variant and field
 * order of iroh-gossip's types (testdata/iroh-gossip/wire_layout.json).
 *
 * Decoders never allocate: a decoded message is a set of pointers into the
 * caller's buffer plus fixed arrays sized so that anything a maximal frame
 * can hold fits.  Sequence counts are checked against the bytes left before
 * a single item is read, so a hostile count costs nothing.
 *
 * Nothing here depends on the state machine, so the fuzz target links this
 * file alone.
 */
#include <errno.h>
#include <string.h>

#include "gossip/gossip.h"
#include "hash/blake3.h"
#include "wire/postcard.h"

#define PEER_INFO_MIN 33 /* id + None */
#define IHAVE_MIN 33     /* id + one-byte round */
#define SOCKADDR_MIN 6   /* tag + 4 ip bytes + one-byte port */

enum { TOPIC_SWARM = 0, TOPIC_GOSSIP = 1 };

/* ---------------------------------------------------------------- decode */

static void read_data(irohds_pc_reader *r, irohds_gossip_data *d)
{
    if (irohds_pc_read_option(r)) {
        d->ptr = irohds_pc_read_bytes(r, r->len, &d->len);
        return;
    }
    d->ptr = NULL;
    d->len = 0;
}

static void read_peer_info(irohds_pc_reader *r, irohds_gossip_peer_info *p)
{
    p->id = irohds_pc_read_raw(r, IROHDS_GOSSIP_ID_LEN);
    read_data(r, &p->data);
}

static void read_nodes(irohds_pc_reader *r, irohds_gossip_msg *m)
{
    m->n_nodes = irohds_pc_read_seq_len(r, IROHDS_GOSSIP_MAX_NODES, PEER_INFO_MIN);
    for (size_t i = 0; i < m->n_nodes && !r->err; i++)
        read_peer_info(r, &m->nodes[i]);
}

static void read_swarm(irohds_pc_reader *r, irohds_gossip_msg *m)
{
    uint32_t v = irohds_pc_read_variant(r);
    m->kind = (irohds_gossip_kind)v;
    switch (v) {
    case IROHDS_GOSSIP_JOIN:
        read_data(r, &m->peer.data);
        break;
    case IROHDS_GOSSIP_FORWARD_JOIN:
        read_peer_info(r, &m->peer);
        m->ttl = irohds_pc_read_u16(r);
        break;
    case IROHDS_GOSSIP_SHUFFLE:
        m->origin = irohds_pc_read_raw(r, IROHDS_GOSSIP_ID_LEN);
        read_nodes(r, m);
        m->ttl = irohds_pc_read_u16(r);
        break;
    case IROHDS_GOSSIP_SHUFFLE_REPLY:
        read_nodes(r, m);
        break;
    case IROHDS_GOSSIP_NEIGHBOR: {
        uint32_t p = irohds_pc_read_variant(r);
        if (p > IROHDS_GOSSIP_LOW)
            irohds_pc_fail(r, -EPROTO);
        m->priority = (irohds_gossip_priority)p;
        read_data(r, &m->peer.data);
        break;
    }
    case IROHDS_GOSSIP_DISCONNECT:
        m->alive = irohds_pc_read_bool(r);
        m->respond = irohds_pc_read_bool(r);
        break;
    default:
        irohds_pc_fail(r, -EPROTO);
    }
}

static void read_gossip_body(irohds_pc_reader *r, irohds_gossip_msg *m)
{
    m->id = irohds_pc_read_raw(r, IROHDS_GOSSIP_ID_LEN);
    m->content = irohds_pc_read_bytes(r, r->len, &m->content_len);
    uint32_t s = irohds_pc_read_variant(r);
    if (s == IROHDS_GOSSIP_SCOPE_SWARM)
        m->round = irohds_pc_read_u16(r);
    else if (s != IROHDS_GOSSIP_SCOPE_NEIGHBORS)
        irohds_pc_fail(r, -EPROTO);
    m->scope = (irohds_gossip_scope)s;
}

static void read_ihaves(irohds_pc_reader *r, irohds_gossip_msg *m)
{
    m->n_ihave = irohds_pc_read_seq_len(r, IROHDS_GOSSIP_MAX_IHAVE, IHAVE_MIN);
    for (size_t i = 0; i < m->n_ihave && !r->err; i++) {
        m->ihave[i].id = irohds_pc_read_raw(r, IROHDS_GOSSIP_ID_LEN);
        m->ihave[i].round = irohds_pc_read_u16(r);
    }
}

static void read_plumtree(irohds_pc_reader *r, irohds_gossip_msg *m)
{
    uint32_t v = irohds_pc_read_variant(r);
    m->kind = (irohds_gossip_kind)(IROHDS_GOSSIP_GOSSIP + (v & 0xff));
    switch (v) {
    case 0:
        read_gossip_body(r, m);
        break;
    case 1: /* Prune */
        break;
    case 2:
        if (irohds_pc_read_option(r))
            m->id = irohds_pc_read_raw(r, IROHDS_GOSSIP_ID_LEN);
        m->round = irohds_pc_read_u16(r);
        break;
    case 3:
        read_ihaves(r, m);
        break;
    default:
        irohds_pc_fail(r, -EPROTO);
    }
}

static bool id_matches(const irohds_gossip_msg *m)
{
    uint8_t h[IROHDS_BLAKE3_OUT_LEN];
    irohds_blake3(m->content, m->content_len, h);
    return memcmp(h, m->id, sizeof h) == 0;
}

int irohds_gossip_decode(irohds_gossip_msg *m, const void *buf, size_t len)
{
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, buf, len);
    memset(m, 0, sizeof *m);
    uint32_t top = irohds_pc_read_variant(&r);
    if (top == TOPIC_SWARM)
        read_swarm(&r, m);
    else if (top == TOPIC_GOSSIP)
        read_plumtree(&r, m);
    else
        irohds_pc_fail(&r, -EPROTO);
    int err = irohds_pc_finish(&r);
    if (!err && m->kind == IROHDS_GOSSIP_GOSSIP && !id_matches(m))
        err = -EBADMSG;
    if (err)
        memset(m, 0, sizeof *m);
    return err;
}

/* ---------------------------------------------------------------- encode */

static void write_data(irohds_pc_writer *w, const irohds_gossip_data *d)
{
    irohds_pc_write_bool(w, d->ptr != NULL);
    if (d->ptr)
        irohds_pc_write_bytes(w, d->ptr, d->len);
}

static void write_nodes(irohds_pc_writer *w, const irohds_gossip_msg *m)
{
    irohds_pc_write_varint(w, m->n_nodes);
    for (size_t i = 0; i < m->n_nodes; i++) {
        irohds_pc_write_raw(w, m->nodes[i].id, IROHDS_GOSSIP_ID_LEN);
        write_data(w, &m->nodes[i].data);
    }
}

static void write_swarm(irohds_pc_writer *w, const irohds_gossip_msg *m)
{
    irohds_pc_write_varint(w, TOPIC_SWARM);
    irohds_pc_write_varint(w, (uint64_t)m->kind);
    switch (m->kind) {
    case IROHDS_GOSSIP_JOIN:
        write_data(w, &m->peer.data);
        break;
    case IROHDS_GOSSIP_FORWARD_JOIN:
        irohds_pc_write_raw(w, m->peer.id, IROHDS_GOSSIP_ID_LEN);
        write_data(w, &m->peer.data);
        irohds_pc_write_varint(w, m->ttl);
        break;
    case IROHDS_GOSSIP_SHUFFLE:
        irohds_pc_write_raw(w, m->origin, IROHDS_GOSSIP_ID_LEN);
        write_nodes(w, m);
        irohds_pc_write_varint(w, m->ttl);
        break;
    case IROHDS_GOSSIP_SHUFFLE_REPLY:
        write_nodes(w, m);
        break;
    case IROHDS_GOSSIP_NEIGHBOR:
        irohds_pc_write_varint(w, m->priority);
        write_data(w, &m->peer.data);
        break;
    default: /* DISCONNECT */
        irohds_pc_write_bool(w, m->alive);
        irohds_pc_write_bool(w, m->respond);
    }
}

static void write_plumtree(irohds_pc_writer *w, const irohds_gossip_msg *m)
{
    irohds_pc_write_varint(w, TOPIC_GOSSIP);
    irohds_pc_write_varint(w, (uint64_t)(m->kind - IROHDS_GOSSIP_GOSSIP));
    switch (m->kind) {
    case IROHDS_GOSSIP_GOSSIP:
        irohds_pc_write_raw(w, m->id, IROHDS_GOSSIP_ID_LEN);
        irohds_pc_write_bytes(w, m->content, m->content_len);
        irohds_pc_write_varint(w, m->scope);
        if (m->scope == IROHDS_GOSSIP_SCOPE_SWARM)
            irohds_pc_write_varint(w, m->round);
        break;
    case IROHDS_GOSSIP_GRAFT:
        irohds_pc_write_bool(w, m->id != NULL);
        if (m->id)
            irohds_pc_write_raw(w, m->id, IROHDS_GOSSIP_ID_LEN);
        irohds_pc_write_varint(w, m->round);
        break;
    case IROHDS_GOSSIP_IHAVE:
        irohds_pc_write_varint(w, m->n_ihave);
        for (size_t i = 0; i < m->n_ihave; i++) {
            irohds_pc_write_raw(w, m->ihave[i].id, IROHDS_GOSSIP_ID_LEN);
            irohds_pc_write_varint(w, m->ihave[i].round);
        }
        break;
    default: /* PRUNE */
        break;
    }
}

static bool encodable(const irohds_gossip_msg *m)
{
    switch (m->kind) {
    case IROHDS_GOSSIP_JOIN:
    case IROHDS_GOSSIP_DISCONNECT:
    case IROHDS_GOSSIP_PRUNE:
    case IROHDS_GOSSIP_GRAFT:
        return true;
    case IROHDS_GOSSIP_FORWARD_JOIN:
        return m->peer.id != NULL;
    case IROHDS_GOSSIP_SHUFFLE:
        return m->origin && m->n_nodes <= IROHDS_GOSSIP_MAX_NODES;
    case IROHDS_GOSSIP_SHUFFLE_REPLY:
        return m->n_nodes <= IROHDS_GOSSIP_MAX_NODES;
    case IROHDS_GOSSIP_NEIGHBOR:
        return m->priority == IROHDS_GOSSIP_HIGH || m->priority == IROHDS_GOSSIP_LOW;
    case IROHDS_GOSSIP_GOSSIP:
        return m->id && (m->content || !m->content_len) &&
               (m->scope == IROHDS_GOSSIP_SCOPE_SWARM || m->scope == IROHDS_GOSSIP_SCOPE_NEIGHBORS);
    case IROHDS_GOSSIP_IHAVE:
        return m->n_ihave <= IROHDS_GOSSIP_MAX_IHAVE;
    }
    return false;
}

int irohds_gossip_encode(const irohds_gossip_msg *m, void *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (!encodable(m))
        return -EINVAL;
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, buf, cap);
    if (m->kind >= IROHDS_GOSSIP_GOSSIP)
        write_plumtree(&w, m);
    else
        write_swarm(&w, m);
    *len = w.len;
    return w.err;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

int irohds_gossip_frame_encode(const irohds_gossip_msg *m, size_t max_body, void *buf,
                               size_t cap, size_t *len)
{
    size_t body;
    uint8_t *p = buf;
    *len = 0;
    if (cap < IROHDS_GOSSIP_FRAME_HEADER)
        return -ENOBUFS;
    int err = irohds_gossip_encode(m, p + IROHDS_GOSSIP_FRAME_HEADER,
                                   cap - IROHDS_GOSSIP_FRAME_HEADER, &body);
    if (err == -EINVAL)
        return err;
    if (body >= max_body || body > UINT32_MAX)
        return -EMSGSIZE;
    if (err)
        return err;
    put_be32(p, (uint32_t)body);
    *len = IROHDS_GOSSIP_FRAME_HEADER + body;
    return 0;
}

void irohds_gossip_stream_header(uint8_t out[IROHDS_GOSSIP_STREAM_HEADER_LEN],
                                 const uint8_t topic[IROHDS_GOSSIP_ID_LEN])
{
    put_be32(out, IROHDS_GOSSIP_ID_LEN);
    memcpy(out + IROHDS_GOSSIP_FRAME_HEADER, topic, IROHDS_GOSSIP_ID_LEN);
}

int irohds_gossip_stream_header_decode(const void *body, size_t len,
                                       uint8_t topic[IROHDS_GOSSIP_ID_LEN])
{
    if (len != IROHDS_GOSSIP_ID_LEN)
        return -EPROTO;
    memcpy(topic, body, IROHDS_GOSSIP_ID_LEN);
    return 0;
}

/* ---------------------------------------------------------- frame reader */

void irohds_gossip_frame_reader_init(irohds_gossip_frame_reader *r, size_t max)
{
    r->max = (max == 0 || max > IROHDS_GOSSIP_MAX_MESSAGE_SIZE) ? IROHDS_GOSSIP_MAX_MESSAGE_SIZE
                                                                : max;
    r->hdr_len = 0;
    r->body_len = 0;
    r->have = 0;
    r->err = 0;
}

/* Take header bytes; 0 or -EMSGSIZE once the length is known and too big. */
static size_t take_header(irohds_gossip_frame_reader *r, const uint8_t *p, size_t n)
{
    size_t k = IROHDS_GOSSIP_FRAME_HEADER - r->hdr_len;
    if (k > n)
        k = n;
    memcpy(r->hdr + r->hdr_len, p, k);
    r->hdr_len += k;
    if (r->hdr_len == IROHDS_GOSSIP_FRAME_HEADER) {
        r->body_len = (size_t)r->hdr[0] << 24 | (size_t)r->hdr[1] << 16 |
                      (size_t)r->hdr[2] << 8 | r->hdr[3];
        r->have = 0;
        if (r->body_len > r->max)
            r->err = -EMSGSIZE;
    }
    return k;
}

ssize_t irohds_gossip_frame_reader_feed(irohds_gossip_frame_reader *r, const void *p, size_t n,
                                        const uint8_t **frame, size_t *frame_len)
{
    const uint8_t *in = p;
    size_t used = 0;
    *frame = NULL;
    *frame_len = 0;
    if (!r->err && r->hdr_len < IROHDS_GOSSIP_FRAME_HEADER)
        used = take_header(r, in, n);
    if (r->err)
        return r->err;
    if (r->hdr_len < IROHDS_GOSSIP_FRAME_HEADER)
        return (ssize_t)used;
    size_t k = r->body_len - r->have;
    if (k > n - used)
        k = n - used;
    memcpy(r->body + r->have, in + used, k);
    r->have += k;
    used += k;
    if (r->have == r->body_len) {
        *frame = r->body;
        *frame_len = r->body_len;
        r->hdr_len = 0;
    }
    return (ssize_t)used;
}

/* -------------------------------------------------------------- AddrInfo */

int irohds_gossip_sockaddr_cmp(const irohds_gossip_sockaddr *a, const irohds_gossip_sockaddr *b)
{
    if (a->v6 != b->v6)
        return a->v6 ? 1 : -1;
    int c = memcmp(a->ip, b->ip, a->v6 ? 16 : 4);
    if (c)
        return c < 0 ? -1 : 1;
    return a->port < b->port ? -1 : a->port > b->port;
}

/* Insertion sort (at most IROHDS_GOSSIP_MAX_ADDRS) and drop duplicates. */
static size_t sort_addrs(irohds_gossip_sockaddr *v, size_t n)
{
    for (size_t i = 1; i < n; i++) {
        irohds_gossip_sockaddr x = v[i];
        size_t j = i;
        for (; j > 0 && irohds_gossip_sockaddr_cmp(&v[j - 1], &x) > 0; j--)
            v[j] = v[j - 1];
        v[j] = x;
    }
    size_t out = 0;
    for (size_t i = 0; i < n; i++)
        if (out == 0 || irohds_gossip_sockaddr_cmp(&v[out - 1], &v[i]) != 0)
            v[out++] = v[i];
    return out;
}

/* Length of the UTF-8 sequence starting at p (n bytes left), 0 if invalid. */
static size_t utf8_seq(const uint8_t *p, size_t n)
{
    uint32_t c = p[0];
    if (c < 0x80)
        return 1;
    size_t len = (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (len == 0 || len > n)
        return 0;
    static const uint32_t min[] = {0, 0, 0x80, 0x800, 0x10000};
    c &= 0x7fu >> len;
    for (size_t i = 1; i < len; i++) {
        if ((p[i] & 0xc0) != 0x80)
            return 0;
        c = c << 6 | (p[i] & 0x3f);
    }
    if (c < min[len] || c > 0x10ffff || (c >= 0xd800 && c <= 0xdfff))
        return 0;
    return len;
}

static bool utf8_valid(const uint8_t *p, size_t n)
{
    while (n) {
        size_t k = utf8_seq(p, n);
        if (!k)
            return false;
        p += k;
        n -= k;
    }
    return true;
}

static void read_sockaddr(irohds_pc_reader *r, irohds_gossip_sockaddr *a)
{
    uint32_t v = irohds_pc_read_variant(r);
    if (v > 1) {
        irohds_pc_fail(r, -EPROTO);
        return;
    }
    a->v6 = v == 1;
    const uint8_t *ip = irohds_pc_read_raw(r, a->v6 ? 16 : 4);
    if (ip)
        memcpy(a->ip, ip, a->v6 ? 16 : 4);
    a->port = irohds_pc_read_u16(r);
}

int irohds_gossip_addr_info_decode(irohds_gossip_addr_info *a, const void *buf, size_t len)
{
    memset(a, 0, sizeof *a);
    if (len == 0)
        return 0;
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, buf, len);
    if (irohds_pc_read_option(&r)) {
        const uint8_t *u = irohds_pc_read_bytes(&r, IROHDS_GOSSIP_MAX_URL, &a->relay_url_len);
        if (u && !utf8_valid(u, a->relay_url_len))
            irohds_pc_fail(&r, -EPROTO);
        a->relay_url = (const char *)u;
    }
    a->n_addrs = irohds_pc_read_seq_len(&r, IROHDS_GOSSIP_MAX_ADDRS, SOCKADDR_MIN);
    for (size_t i = 0; i < a->n_addrs && !r.err; i++)
        read_sockaddr(&r, &a->addrs[i]);
    int err = irohds_pc_finish(&r);
    if (err) {
        memset(a, 0, sizeof *a);
        return err;
    }
    a->n_addrs = sort_addrs(a->addrs, a->n_addrs);
    return 0;
}

int irohds_gossip_addr_info_encode(const irohds_gossip_addr_info *a, void *buf, size_t cap,
                                   size_t *len)
{
    *len = 0;
    if (a->n_addrs > IROHDS_GOSSIP_MAX_ADDRS || a->relay_url_len > IROHDS_GOSSIP_MAX_URL ||
        (a->relay_url && !utf8_valid((const uint8_t *)a->relay_url, a->relay_url_len)))
        return -EINVAL;
    irohds_gossip_sockaddr v[IROHDS_GOSSIP_MAX_ADDRS];
    memcpy(v, a->addrs, a->n_addrs * sizeof v[0]);
    size_t n = sort_addrs(v, a->n_addrs);
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, buf, cap);
    irohds_pc_write_bool(&w, a->relay_url != NULL);
    if (a->relay_url)
        irohds_pc_write_bytes(&w, a->relay_url, a->relay_url_len);
    irohds_pc_write_varint(&w, n);
    for (size_t i = 0; i < n; i++) {
        irohds_pc_write_varint(&w, v[i].v6);
        irohds_pc_write_raw(&w, v[i].ip, v[i].v6 ? 16 : 4);
        irohds_pc_write_varint(&w, v[i].port);
    }
    *len = w.len;
    return w.err;
}
