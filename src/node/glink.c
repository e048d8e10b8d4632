/*
 * glink.c: gossip over QUIC, the way iroh-gossip lays it out
 * (docs/gossip.md): one connection per peer pair with ALPN "/iroh-gossip/1",
 * and on it one unidirectional stream per topic and direction, which starts
 * with a StreamHeader frame naming the topic; every later frame is a u32
 * big-endian length and a postcard message.
 *
 * The gossip core (gossip/) decides what to send to whom; this file turns
 * its actions into streams and bytes, and the bytes peers send into its
 * events.  A SEND to a peer we have no connection to dials it (addresses from
 * the address book); frames wait in the topic's queue until the connection
 * is up and the stream open.  A peer we cannot reach, or whose last gossip
 * connection closed, is reported to the core as disconnected: HyParView then
 * replaces it from its passive view.
 *
 * Memory per link is bounded (LINK_QUEUE_MAX bytes waiting): gossip
 * tolerates loss, so a peer that stops reading loses frames, not our memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "node/node_int.h"

#define LINK_QUEUE_MAX (4u << 20)

typedef struct gout {
    uint8_t topic[32];
    int64_t sid; /* -1 until the stream is opened */
    uint8_t *q;  /* header + frames not yet taken by the stream */
    size_t qlen, qcap;
    bool fin;    /* finish the stream once the queue is written */
    bool done;   /* finished: nothing more goes on this stream */
} gout;

typedef struct gin {
    struct gin *next;
    int64_t sid;
    bool have_topic;
    bool failed;
    uint8_t topic[32];
    irohds_gossip_frame_reader rd;
} gin;

typedef struct glink {
    int kind; /* NODE_CONN_GOSSIP: first, see node.c */
    struct glink *next;
    irohds_net_conn *conn;
    uint8_t peer[32];
    bool established;
    gout *outs;
    unsigned nouts;
    gin *ins;
    size_t queued;
} glink;

/* ------------------------------------------------------------ links */

static glink *link_new(irohds_node *n, const uint8_t peer[32])
{
    glink *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->kind = NODE_CONN_GOSSIP;
    memcpy(g->peer, peer, 32);
    g->next = n->glinks;
    n->glinks = g;
    return g;
}

static void link_free(irohds_node *n, glink *g)
{
    for (glink **pp = &n->glinks; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    for (unsigned i = 0; i < g->nouts; i++)
        free(g->outs[i].q);
    free(g->outs);
    while (g->ins) {
        gin *in = g->ins;
        g->ins = in->next;
        free(in);
    }
    free(g);
}

/* The link to send to peer on: an established one if any, else one that is
 * connecting; with create, dial when there is none. */
static glink *link_for(irohds_node *n, const uint8_t peer[32], bool create)
{
    glink *best = NULL;
    for (glink *g = n->glinks; g; g = g->next)
        if (g->conn && !memcmp(g->peer, peer, 32) && (!best || (g->established && !best->established)))
            best = g;
    if (best || !create)
        return best;
    glink *g = link_new(n, peer);
    if (!g)
        return NULL;
    g->conn = node_dial(n, peer, IROHDS_GOSSIP_ALPN, g);
    if (!g->conn) {
        link_free(n, g);
        return NULL;
    }
    return g;
}

static bool peer_has_link(irohds_node *n, const uint8_t peer[32])
{
    for (glink *g = n->glinks; g; g = g->next)
        if (g->conn && !memcmp(g->peer, peer, 32))
            return true;
    return false;
}

/* ------------------------------------------------------------ sending */

static gout *out_for(glink *g, const uint8_t topic[32], bool create)
{
    for (unsigned i = 0; i < g->nouts; i++)
        if (!memcmp(g->outs[i].topic, topic, 32) && !g->outs[i].done)
            return &g->outs[i];
    if (!create)
        return NULL;
    gout *o = realloc(g->outs, (g->nouts + 1) * sizeof(*o));
    if (!o)
        return NULL;
    g->outs = o;
    gout *out = &g->outs[g->nouts++];
    memset(out, 0, sizeof(*out));
    memcpy(out->topic, topic, 32);
    out->sid = -1;
    return out;
}

static int out_append(glink *g, gout *out, const uint8_t *p, size_t len)
{
    if (g->queued + len > LINK_QUEUE_MAX)
        return -ENOBUFS;
    if (out->qlen + len > out->qcap) {
        size_t cap = out->qcap ? out->qcap : 4096;
        while (cap < out->qlen + len)
            cap *= 2;
        uint8_t *q = realloc(out->q, cap);
        if (!q)
            return -ENOMEM;
        out->q = q;
        out->qcap = cap;
    }
    memcpy(out->q + out->qlen, p, len);
    out->qlen += len;
    g->queued += len;
    return 0;
}

/* Write what the stream takes; open it first (with its StreamHeader). */
static void out_flush(glink *g, gout *out)
{
    if (!g->established || out->done)
        return;
    if (out->sid < 0) {
        if (irohds_net_stream_open(g->conn, false, NULL, &out->sid) != 0) {
            out->sid = -1; /* the peer's stream limit: retried on the next send */
            return;
        }
    }
    if (out->qlen || out->fin) {
        ssize_t w = irohds_net_stream_write(g->conn, out->sid, out->q, out->qlen, out->fin);
        if (w < 0) {
            g->queued -= out->qlen;
            out->qlen = 0;
            out->done = true; /* reset or stopped by the peer */
            return;
        }
        memmove(out->q, out->q + w, out->qlen - (size_t)w);
        out->qlen -= (size_t)w;
        g->queued -= (size_t)w;
        if (out->fin && !out->qlen)
            out->done = true;
    }
}

static void link_flush_all(glink *g)
{
    for (unsigned i = 0; i < g->nouts; i++)
        out_flush(g, &g->outs[i]);
}

static void do_send(irohds_node *n, const irohds_gossip_action *a)
{
    glink *g = link_for(n, a->peer, true);
    if (!g) {
        /* No address, or the dial failed at once: the core must know. */
        irohds_gossip_peer_disconnected(n->gossip, node_now_ms(), a->peer);
        return;
    }
    gout *out = out_for(g, a->topic, false);
    if (!out) {
        out = out_for(g, a->topic, true);
        uint8_t hdr[IROHDS_GOSSIP_STREAM_HEADER_LEN];
        irohds_gossip_stream_header(hdr, a->topic);
        if (!out || out_append(g, out, hdr, sizeof hdr) != 0)
            return;
    }
    if (out_append(g, out, a->data, a->len) != 0) {
        IROHDS_DEBUG("node: gossip queue to a peer is full; frame dropped");
        return;
    }
    if (a->last)
        out->fin = true;
    out_flush(g, out);
}

static void do_disconnect(irohds_node *n, const irohds_gossip_action *a)
{
    glink *g = link_for(n, a->peer, false);
    if (!g)
        return;
    gout *out = out_for(g, a->topic, false);
    if (out) {
        out->fin = true;
        out_flush(g, out);
    }
    /* No topic needs the peer: stop keeping the connection alive, so the
     * idle timeout closes it once the last frames are through. */
    if (a->conn_idle)
        irohds_net_conn_set_keep_alive(g->conn, 0);
}

static void do_neighbor(irohds_node *n, const irohds_gossip_action *a, bool up)
{
    node_ns *ns = node_ns_by_topic(n, a->topic);
    node_peer *p = node_peer_get(n, a->peer);
    if (!ns || !p)
        return;
    unsigned i = node_ns_index(n, ns);
    bool was = p->ns_bits[i / 8] & (1u << (i % 8));
    if (up && !was) {
        p->ns_bits[i / 8] |= (uint8_t)(1u << (i % 8));
        ns->neighbors++;
        p->last_seen_us = irohds_now_us();
        IROHDS_DEBUG("node: neighbor up in %s (%u now)", ns->name, ns->neighbors);
        results_neighbor_up(n, ns);
    } else if (!up && was) {
        p->ns_bits[i / 8] &= (uint8_t)~(1u << (i % 8));
        ns->neighbors--;
    }
}

static void do_peer_data(irohds_node *n, const irohds_gossip_action *a)
{
    if (!memcmp(a->peer, n->id, 32))
        return;
    irohds_gossip_addr_info ai;
    if (irohds_gossip_addr_info_decode(&ai, a->data, a->len) != 0)
        return;
    node_peer *p = node_peer_get(n, a->peer);
    if (!p)
        return;
    p->sources |= NODE_SRC_GOSSIP;
    for (size_t i = ai.n_addrs; i-- > 0;) {
        struct sockaddr_storage ss;
        node_sockaddr_make(&ss, ai.addrs[i].v6, ai.addrs[i].ip, ai.addrs[i].port);
        /* Keep an address that already worked (a connection) in front. */
        if (!p->naddrs || (p->sources & NODE_SRC_INCOMING) == 0)
            node_peer_add_addr(p, (const struct sockaddr *)&ss);
    }
}

void glink_drain(irohds_node *n)
{
    if (!n->gossip)
        return;
    irohds_gossip_action a;
    while (irohds_gossip_poll(n->gossip, &a)) {
        switch (a.type) {
        case IROHDS_GOSSIP_ACT_SEND:
            do_send(n, &a);
            break;
        case IROHDS_GOSSIP_ACT_DISCONNECT:
            do_disconnect(n, &a);
            break;
        case IROHDS_GOSSIP_ACT_DELIVER:
            results_deliver(n, a.topic, a.peer, a.data, a.len);
            break;
        case IROHDS_GOSSIP_ACT_NEIGHBOR_UP:
            do_neighbor(n, &a, true);
            break;
        case IROHDS_GOSSIP_ACT_NEIGHBOR_DOWN:
            do_neighbor(n, &a, false);
            break;
        case IROHDS_GOSSIP_ACT_PEER_DATA:
            do_peer_data(n, &a);
            break;
        }
    }
}

/* ---------------------------------------------------- endpoint events */

void glink_accepted(irohds_node *n, irohds_net_conn *c)
{
    irohds_net_conn_info info;
    irohds_net_conn_info_get(c, &info);
    glink *g = link_new(n, info.remote_id);
    if (!g) {
        irohds_net_conn_close(c, 0, "out of memory");
        return;
    }
    g->conn = c;
    g->established = true;
    irohds_net_conn_set_user_ptr(c, g);
    irohds_net_conn_set_keep_alive(c, NODE_GOSSIP_KEEPALIVE_MS);
}

void glink_connected(irohds_node *n, glink *g)
{
    (void)n;
    g->established = true;
    irohds_net_conn_set_keep_alive(g->conn, NODE_GOSSIP_KEEPALIVE_MS);
    link_flush_all(g);
}

void glink_closed(irohds_node *n, glink *g)
{
    uint8_t peer[32];
    memcpy(peer, g->peer, 32);
    g->conn = NULL;
    link_free(n, g);
    if (!n->stopping && n->gossip && !peer_has_link(n, peer))
        irohds_gossip_peer_disconnected(n->gossip, node_now_ms(), peer);
}

void glink_stream_opened(irohds_node *n, glink *g, int64_t sid)
{
    (void)n;
    gin *in = calloc(1, sizeof(*in));
    if (!in) {
        irohds_net_stream_stop_sending(g->conn, sid, 0);
        return;
    }
    in->sid = sid;
    irohds_gossip_frame_reader_init(&in->rd, 0);
    in->next = g->ins;
    g->ins = in;
}

static gin *in_find(glink *g, int64_t sid)
{
    for (gin *in = g->ins; in; in = in->next)
        if (in->sid == sid)
            return in;
    return NULL;
}

static void in_remove(glink *g, int64_t sid)
{
    for (gin **pp = &g->ins; *pp; pp = &(*pp)->next)
        if ((*pp)->sid == sid) {
            gin *dead = *pp;
            *pp = dead->next;
            free(dead);
            return;
        }
}

/* One whole frame from the peer's stream. */
static int in_frame(irohds_node *n, glink *g, gin *in, const uint8_t *body, size_t len)
{
    if (!in->have_topic) {
        if (irohds_gossip_stream_header_decode(body, len, in->topic) != 0)
            return -EPROTO;
        in->have_topic = true;
        return 0;
    }
    int rc = irohds_gossip_handle_frame(n->gossip, node_now_ms(), in->topic, g->peer, body, len);
    return rc == -EAGAIN ? 0 : rc; /* over budget: that frame is dropped, the stream stays */
}

void glink_recv(irohds_node *n, glink *g, int64_t sid, const uint8_t *data, size_t len, bool fin)
{
    gin *in = in_find(g, sid);
    if (!in || in->failed)
        return;
    while (len) {
        const uint8_t *frame;
        size_t flen;
        ssize_t used = irohds_gossip_frame_reader_feed(&in->rd, data, len, &frame, &flen);
        int rc = used < 0 ? (int)used : 0;
        if (!rc && frame)
            rc = in_frame(n, g, in, frame, flen);
        if (rc) {
            IROHDS_DEBUG("node: gossip stream from a peer dropped (%s)", strerror(-rc));
            n->gossip_streams_dropped++;
            in->failed = true;
            irohds_net_stream_stop_sending(g->conn, sid, 0);
            return;
        }
        data += used;
        len -= (size_t)used;
    }
    if (fin)
        in_remove(g, sid);
}

void glink_writable(irohds_node *n, glink *g, int64_t sid)
{
    (void)n;
    for (unsigned i = 0; i < g->nouts; i++)
        if (g->outs[i].sid == sid)
            out_flush(g, &g->outs[i]);
}

void glink_stream_closed(irohds_node *n, glink *g, int64_t sid)
{
    (void)n;
    in_remove(g, sid);
    for (unsigned i = 0; i < g->nouts; i++)
        if (g->outs[i].sid == sid) {
            g->queued -= g->outs[i].qlen;
            free(g->outs[i].q);
            g->outs[i] = g->outs[--g->nouts];
            break;
        }
}

void glink_sample_rtt(irohds_node *n)
{
    for (glink *g = n->glinks; g; g = g->next)
        if (g->conn && g->established)
            node_note_rtt(n, g->conn);
}

void glink_free_all(irohds_node *n)
{
    while (n->glinks) {
        glink *g = n->glinks;
        if (g->conn)
            irohds_net_conn_set_user_ptr(g->conn, NULL);
        link_free(n, g);
    }
}
