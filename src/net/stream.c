/*
 * stream.c: streams of one connection.
 *
 * Sending: ngtcp2 does not copy stream data; it keeps pointers into our
 * buffers to retransmit from, and says when bytes are acknowledged.  So a
 * write copies into the stream's send buffer (a list of 64 KiB chunks that
 * never move) and the chunks are released when the peer has acknowledged
 * them.  What a peer that never reads can make us hold is bounded twice:
 * per stream (stream_send_cap) and per connection (conn_send_cap); a write
 * past either takes what fits and the writable callback says when the
 * buffer drained to half.  A third limit keeps what is written but not yet
 * in packets short (NET_UNSENT_MAX): ngtcp2 copies it into packets later,
 * and data still in cache costs the sender ~15% less CPU per byte.  Chunks are recycled through a per-endpoint pool:
 * fresh pages cost ~2 us per 4 KiB to fault in, more than the copy.
 *
 * Receiving: data is handed to the app straight from ngtcp2's buffer and
 * flow-control credit goes back when the callback returns.  A paused stream
 * holds what arrives instead (bounded by the receive window, since no
 * credit goes back) and the loop delivers it on resume.
 *
 * Streams with bytes to send sit in the connection's send queue; the write
 * loop (conn.c) takes them round robin.  Stream ids map to streams through
 * a small chained table.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

/* ----------------------------------------------------------------- pool */

net_chunk *net_chunk_get(net_pool *pool)
{
    net_chunk *ch = pool->free;
    if (ch) {
        pool->free = ch->next;
        pool->n--;
    } else {
        ch = malloc(sizeof *ch);
        if (!ch)
            return NULL;
    }
    ch->next = NULL;
    ch->len = 0;
    return ch;
}

void net_chunk_put(net_pool *pool, net_chunk *ch)
{
    if (pool->n >= NET_POOL_MAX) {
        free(ch);
        return;
    }
    ch->next = pool->free;
    pool->free = ch;
    pool->n++;
}

void net_pool_free(net_pool *pool)
{
    while (pool->free) {
        net_chunk *ch = pool->free;
        pool->free = ch->next;
        free(ch);
    }
    pool->n = 0;
}

static void chunks_put(net_pool *pool, net_chunk *ch)
{
    while (ch) {
        net_chunk *next = ch->next;
        net_chunk_put(pool, ch);
        ch = next;
    }
}

/* ---------------------------------------------------------- send buffer */

/* Copy what fits of data (the pool permitting); returns how much. */
static size_t sendbuf_append(net_sendbuf *b, net_pool *pool, const uint8_t *data, size_t len)
{
    size_t done = 0;
    while (done < len) {
        if (!b->tail || b->tail->len == NET_CHUNK_SIZE) {
            net_chunk *ch = net_chunk_get(pool);
            if (!ch)
                break;
            if (b->tail) {
                b->tail->next = ch;
            } else {
                b->head = b->cur = ch;
                b->base = b->cur_base = b->written;
            }
            b->tail = ch;
        }
        size_t n = NET_CHUNK_SIZE - b->tail->len;
        if (n > len - done)
            n = len - done;
        memcpy(b->tail->data + b->tail->len, data + done, n);
        b->tail->len += n;
        done += n;
    }
    b->written += done;
    return done;
}

size_t net_sendbuf_vecs(const net_sendbuf *b, ngtcp2_vec *v, size_t max)
{
    size_t n = 0;
    const net_chunk *ch = b->cur;
    size_t pos = ch ? (size_t)(b->sent - b->cur_base) : 0;
    for (; ch && n < max; ch = ch->next, pos = 0) {
        if (pos < ch->len) {
            v[n].base = (uint8_t *)ch->data + pos;
            v[n].len = ch->len - pos;
            n++;
        }
    }
    return n;
}

void net_sendbuf_advance(net_sendbuf *b, size_t n)
{
    b->sent += n;
    while (b->cur && b->cur->next && b->sent - b->cur_base >= b->cur->len) {
        b->cur_base += b->cur->len;
        b->cur = b->cur->next;
    }
}

void net_sendbuf_ack(net_sendbuf *b, net_pool *pool, uint64_t n)
{
    b->acked += n;
    while (b->head && b->head != b->tail && b->base + b->head->len <= b->acked) {
        net_chunk *ch = b->head;
        b->head = ch->next;
        if (b->cur == ch) {
            b->cur = ch->next;
            b->cur_base = b->base + ch->len;
        }
        b->base += ch->len;
        net_chunk_put(pool, ch);
    }
}

static size_t sendbuf_held(const net_sendbuf *b)
{
    return (size_t)(b->written - b->acked);
}

/* ---------------------------------------------------------- hold buffer */

int net_holdbuf_add(net_holdbuf *h, net_pool *pool, const uint8_t *data, size_t len)
{
    while (len > 0) {
        if (!h->tail || h->tail->len == NET_CHUNK_SIZE) {
            net_chunk *ch = net_chunk_get(pool);
            if (!ch)
                return -ENOMEM;
            if (h->tail)
                h->tail->next = ch;
            else
                h->head = ch;
            h->tail = ch;
        }
        size_t n = NET_CHUNK_SIZE - h->tail->len;
        if (n > len)
            n = len;
        memcpy(h->tail->data + h->tail->len, data, n);
        h->tail->len += n;
        h->len += n;
        data += n;
        len -= n;
    }
    return 0;
}

static void holdbuf_clear(net_holdbuf *h, net_pool *pool)
{
    chunks_put(pool, h->head);
    memset(h, 0, sizeof *h);
}

static void finish_zombie(irohds_net_conn *c, net_stream *s)
{
    if (!s->zombie || s->hold.head || s->hold.fin)
        return;
    if (c->visible && s->seen && c->ep->cb.stream_closed)
        c->ep->cb.stream_closed(c, s->id, s->user_ptr, s->close_err, s->close_code);
    net_stream_delete(c, s);
}

void net_stream_drop_held(irohds_net_conn *c, net_stream *s)
{
    /* ngtcp2 counted these bytes against the connection window; they will
     * never be consumed, so the credit goes back here. */
    if (s->hold.len)
        ngtcp2_conn_extend_max_offset(c->qc, s->hold.len);
    holdbuf_clear(&s->hold, &c->ep->pool);
    finish_zombie(c, s);
}

void net_stream_closed(irohds_net_conn *c, net_stream *s, int err, uint64_t code)
{
    s->zombie = true;
    s->wr_shut = true;
    s->close_err = err;
    s->close_code = code;
    net_stream_sendq_remove(c, s);
    finish_zombie(c, s);
}

/* --------------------------------------------------------------- table */

static size_t slot(int64_t id, size_t nbuckets)
{
    return (size_t)(((uint64_t)id * 0x9e3779b97f4a7c15ull) >> 32) & (nbuckets - 1);
}

static void table_grow(irohds_net_conn *c)
{
    size_t n = c->nbuckets ? c->nbuckets * 2 : 16;
    net_stream **t = calloc(n, sizeof *t);
    if (!t)
        return; /* longer chains, still correct */
    for (size_t i = 0; i < c->nbuckets; i++) {
        net_stream *s = c->streams[i];
        while (s) {
            net_stream *next = s->hnext;
            size_t j = slot(s->id, n);
            s->hnext = t[j];
            t[j] = s;
            s = next;
        }
    }
    free(c->streams);
    c->streams = t;
    c->nbuckets = n;
}

net_stream *net_stream_get(const irohds_net_conn *c, int64_t id)
{
    if (!c->nbuckets)
        return NULL;
    for (net_stream *s = c->streams[slot(id, c->nbuckets)]; s; s = s->hnext)
        if (s->id == id)
            return s;
    return NULL;
}

net_stream *net_stream_new(irohds_net_conn *c, int64_t id, void *user_ptr)
{
    if (c->nstreams >= c->nbuckets)
        table_grow(c);
    if (!c->nbuckets)
        return NULL;
    net_stream *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    s->id = id;
    s->user_ptr = user_ptr;
    bool local = ngtcp2_conn_is_local_stream(c->qc, id);
    if (!ngtcp2_is_bidi_stream(id)) {
        s->wr_shut = !local;
        s->rd_shut = local;
    }
    size_t i = slot(id, c->nbuckets);
    s->hnext = c->streams[i];
    c->streams[i] = s;
    c->nstreams++;
    return s;
}

void net_stream_delete(irohds_net_conn *c, net_stream *s)
{
    net_stream **p = &c->streams[slot(s->id, c->nbuckets)];
    while (*p != s)
        p = &(*p)->hnext;
    *p = s->hnext;
    c->nstreams--;
    net_stream_sendq_remove(c, s);
    if (s->want_writable)
        c->n_want_writable--;
    c->buffered -= sendbuf_held(&s->sb);
    chunks_put(&c->ep->pool, s->sb.head);
    holdbuf_clear(&s->hold, &c->ep->pool);
    free(s);
}

/* ----------------------------------------------------------- send queue */

void net_stream_sendq_add(irohds_net_conn *c, net_stream *s)
{
    if (s->in_sendq)
        return;
    s->in_sendq = true;
    s->qnext = NULL;
    s->qprev = c->sendq_tail;
    if (c->sendq_tail)
        c->sendq_tail->qnext = s;
    else
        c->sendq_head = s;
    c->sendq_tail = s;
}

void net_stream_sendq_remove(irohds_net_conn *c, net_stream *s)
{
    if (!s->in_sendq)
        return;
    if (s->qprev)
        s->qprev->qnext = s->qnext;
    else
        c->sendq_head = s->qnext;
    if (s->qnext)
        s->qnext->qprev = s->qprev;
    else
        c->sendq_tail = s->qprev;
    s->in_sendq = false;
    s->qnext = s->qprev = NULL;
}

/* ------------------------------------------------------- loop-side work */

void net_stream_consumed(irohds_net_conn *c, int64_t sid, size_t n)
{
    if (n == 0)
        return;
    ngtcp2_conn_extend_max_stream_offset(c->qc, sid, n);
    ngtcp2_conn_extend_max_offset(c->qc, n);
}

static bool usable(const irohds_net_conn *c)
{
    return c->state == NET_CONN_OPEN && c->visible && !c->close_requested;
}

/* Hand over held chunks until the stream is paused again or empty. */
static void deliver_held(irohds_net_conn *c, net_stream *s)
{
    static const uint8_t none[1]; /* data of a held FIN alone: never NULL */
    net_holdbuf *h = &s->hold;
    while (!s->paused && !s->rd_shut && (h->head || h->fin) && usable(c)) {
        net_chunk *ch = h->head;
        size_t len = ch ? ch->len : 0;
        if (ch) {
            h->head = ch->next;
            if (!h->head)
                h->tail = NULL;
            h->len -= len;
        }
        bool fin = h->fin && !h->head;
        if (fin)
            h->fin = false;
        c->stream_bytes_recv += len;
        s->seen = true;
        if (c->ep->cb.recv)
            c->ep->cb.recv(c, s->id, s->user_ptr, ch ? ch->data : none, len, fin);
        net_stream_consumed(c, s->id, len);
        if (ch)
            net_chunk_put(&c->ep->pool, ch);
    }
    finish_zombie(c, s);
}

/* Streams matching want, by id: callbacks may add or remove streams, so the
 * table is not walked while they run. */
static size_t collect(const irohds_net_conn *c, int64_t *ids, size_t max,
                      bool (*want)(const irohds_net_conn *, const net_stream *))
{
    size_t n = 0;
    for (size_t i = 0; i < c->nbuckets && n < max; i++)
        for (net_stream *s = c->streams[i]; s && n < max; s = s->hnext)
            if (want(c, s))
                ids[n++] = s->id;
    return n;
}

static bool wants_delivery(const irohds_net_conn *c, const net_stream *s)
{
    (void)c;
    return s->deliver;
}

void net_streams_deliver(irohds_net_conn *c)
{
    int64_t ids[64];
    c->deliver = false;
    size_t n = collect(c, ids, 64, wants_delivery);
    if (n == 64) {
        c->deliver = true; /* more next time round */
        net_ep_schedule(c->ep, c);
    }
    for (size_t i = 0; i < n && usable(c); i++) {
        net_stream *s = net_stream_get(c, ids[i]);
        if (!s)
            continue;
        s->deliver = false;
        deliver_held(c, s);
    }
}

/* A cut-short writer whose buffer drained to half of what cut it short. */
static bool writable_now(const irohds_net_conn *c, const net_stream *s)
{
    return s->want_writable &&
           (s->wr_shut || (sendbuf_held(&s->sb) <= c->ep->cfg.stream_send_cap / 2 &&
                           c->buffered <= c->ep->cfg.conn_send_cap / 2 &&
                           s->sb.written - s->sb.sent <= NET_UNSENT_MAX / 2));
}

void net_streams_notify_writable(irohds_net_conn *c)
{
    int64_t ids[64];
    c->drained = false;
    if (!c->n_want_writable)
        return;
    size_t n = collect(c, ids, 64, writable_now);
    if (n == 64) {
        c->drained = true; /* more next time round */
        net_ep_schedule(c->ep, c);
    }
    for (size_t i = 0; i < n && usable(c); i++) {
        net_stream *s = net_stream_get(c, ids[i]);
        if (!s || !writable_now(c, s))
            continue;
        s->want_writable = false;
        c->n_want_writable--;
        if (c->ep->cb.writable)
            c->ep->cb.writable(c, s->id, s->user_ptr);
    }
}

void net_streams_abort_all(irohds_net_conn *c)
{
    for (size_t i = 0; i < c->nbuckets; i++) {
        while (c->streams[i]) {
            net_stream *s = c->streams[i];
            if (c->visible && s->seen && c->ep->cb.stream_closed)
                c->ep->cb.stream_closed(c, s->id, s->user_ptr, -ECONNABORTED, 0);
            net_stream_delete(c, s);
        }
    }
    free(c->streams);
    c->streams = NULL;
    c->nbuckets = 0;
}

/* ------------------------------------------------------------------ API */

static int lookup(irohds_net_conn *c, int64_t sid, net_stream **out)
{
    if (!usable(c))
        return -ENOTCONN;
    *out = net_stream_get(c, sid);
    return *out ? 0 : -ENOENT;
}

int irohds_net_stream_open(irohds_net_conn *c, bool bidi, void *sptr, int64_t *sid)
{
    if (!usable(c))
        return -ENOTCONN;
    int64_t id;
    int r = bidi ? ngtcp2_conn_open_bidi_stream(c->qc, &id, NULL)
                 : ngtcp2_conn_open_uni_stream(c->qc, &id, NULL);
    if (r == NGTCP2_ERR_STREAM_ID_BLOCKED)
        return -EAGAIN;
    if (r != 0)
        return -ENOMEM;
    net_stream *s = net_stream_new(c, id, sptr);
    if (!s) {
        ngtcp2_conn_shutdown_stream(c->qc, id, 0);
        return -ENOMEM;
    }
    s->seen = true;
    ngtcp2_conn_set_stream_user_data(c->qc, id, s);
    *sid = id;
    return 0;
}

int irohds_net_stream_set_user_ptr(irohds_net_conn *c, int64_t sid, void *sptr)
{
    net_stream *s;
    int r = lookup(c, sid, &s);
    if (r == 0)
        s->user_ptr = sptr;
    return r;
}

static size_t below(size_t have, size_t cap)
{
    return have < cap ? cap - have : 0;
}

/* What a write may take: under the stream's cap, the connection's cap, and
 * NET_UNSENT_MAX not yet packetized (so the bytes are still in cache when
 * ngtcp2 copies them into packets; the caps bound what is in flight). */
static size_t room(const irohds_net_conn *c, const net_stream *s)
{
    size_t r = below(sendbuf_held(&s->sb), c->ep->cfg.stream_send_cap);
    size_t cr = below(c->buffered, c->ep->cfg.conn_send_cap);
    size_t ur = below((size_t)(s->sb.written - s->sb.sent), NET_UNSENT_MAX);
    r = r < cr ? r : cr;
    return r < ur ? r : ur;
}

ssize_t irohds_net_stream_write(irohds_net_conn *c, int64_t sid, const void *data, size_t len,
                                bool fin)
{
    net_stream *s;
    int r = lookup(c, sid, &s);
    if (r < 0)
        return r;
    if (!ngtcp2_is_bidi_stream(sid) && !ngtcp2_conn_is_local_stream(c->qc, sid))
        return -EINVAL;
    if (s->wr_shut || s->fin_wanted)
        return -EPIPE;
    size_t n = len < room(c, s) ? len : room(c, s);
    n = sendbuf_append(&s->sb, &c->ep->pool, data, n);
    if (n == 0 && len > 0 && room(c, s) > 0)
        return -ENOMEM;
    c->buffered += n;
    if (n < len && !s->want_writable) {
        s->want_writable = true;
        c->n_want_writable++;
    }
    if (n == len && fin)
        s->fin_wanted = true;
    if (n > 0 || s->fin_wanted) {
        net_stream_sendq_add(c, s);
        net_ep_schedule(c->ep, c);
    }
    return (ssize_t)n;
}

int irohds_net_stream_reset(irohds_net_conn *c, int64_t sid, uint64_t code)
{
    net_stream *s;
    int r = lookup(c, sid, &s);
    if (r < 0)
        return r;
    if (s->wr_shut)
        return -EPIPE;
    /* The buffer stays until the stream closes: ngtcp2 may still hold
     * pointers into it for packets in flight. */
    s->wr_shut = true;
    net_stream_sendq_remove(c, s);
    ngtcp2_conn_shutdown_stream_write(c->qc, sid, code);
    net_ep_schedule(c->ep, c);
    return 0;
}

int irohds_net_stream_stop_sending(irohds_net_conn *c, int64_t sid, uint64_t code)
{
    net_stream *s;
    int r = lookup(c, sid, &s);
    if (r < 0)
        return r;
    if (s->rd_shut)
        return -EPIPE;
    s->rd_shut = true;
    if (!s->zombie) {
        ngtcp2_conn_shutdown_stream_read(c->qc, sid, code);
        net_ep_schedule(c->ep, c);
    }
    net_stream_drop_held(c, s); /* may delete a zombie */
    return 0;
}

int irohds_net_stream_set_read_paused(irohds_net_conn *c, int64_t sid, bool paused)
{
    net_stream *s;
    int r = lookup(c, sid, &s);
    if (r < 0)
        return r;
    s->paused = paused;
    if (!paused && (s->hold.head || s->hold.fin)) {
        s->deliver = true;
        c->deliver = true;
        net_ep_schedule(c->ep, c);
    }
    return 0;
}
