/*
 * gossip/hyparview.c: HyParView membership (Leitão, Pereira, Rodrigues,
 * DSN 2007) for one topic, with the behaviour of iroh-gossip's
 * proto/hyparview.rs: a peer that joins is taken into the contact's active
 * view and introduced by ForwardJoin random walks; a node that learns of a
 * new peer answers with a Neighbor request rather than adding it outright
 * (so an unreachable peer never enters the active view); a Neighbor is a
 * request unless one of ours to that peer is pending, in which case it is
 * the reply; a failed neighbour is replaced from the passive view (High
 * priority when the active view is empty, else Low, which may be refused);
 * a Shuffle every shuffle_interval refreshes the passive views.
 *
 * Our differences from iroh, each to keep state bounded or the caller's
 * connections tidy: bootstrap peers are also kept as passive spares; the
 * peers a topic knows are one fixed array of records (active, passive, or
 * only asked), so pending requests to peers in no view are capped at twice
 * the active capacity; a shuffle reply to an origin that is not a
 * neighbour is followed by a DISCONNECT; a removed neighbour's pending
 * request is dropped with it.
 *
 * Records are found by linear scan: a topic holds at most
 * 3 * active + passive of them (45 with the defaults).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip_int.h"

enum reason { R_CLOSED, R_DISC_ALIVE, R_DISC_DEAD, R_RANDOM };

static const irohds_gossip_data no_data = {NULL, 0};

int gossip_hv_init(irohds_gossip *g, gossip_topic *t)
{
    const irohds_gossip_config *c = &g->cfg;
    t->n_slots = 3 * (size_t)c->active_view_capacity + c->passive_view_capacity;
    t->peers = calloc(t->n_slots, sizeof *t->peers);
    t->scratch = calloc(t->n_slots, sizeof *t->scratch);
    t->shuffle_at = g->now + c->shuffle_interval_ms;
    return t->peers && t->scratch ? 0 : -ENOMEM;
}

void gossip_hv_free(gossip_topic *t)
{
    for (size_t i = 0; t->peers && i < t->n_slots; i++) {
        free(t->peers[i].data);
        free(t->peers[i].q);
    }
    free(t->peers);
    free(t->scratch);
    t->peers = NULL;
    t->scratch = NULL;
}

static bool in_use(const gossip_peer *p)
{
    return p->view != GOSSIP_FREE || p->pending;
}

gossip_peer *gossip_hv_find(gossip_topic *t, const uint8_t *id)
{
    for (size_t i = 0; i < t->n_slots; i++)
        if (in_use(&t->peers[i]) && gossip_id_eq(&t->peers[i].id, id))
            return &t->peers[i];
    return NULL;
}

gossip_peer *gossip_hv_active(gossip_topic *t, const uint8_t *id)
{
    gossip_peer *p = gossip_hv_find(t, id);
    return p && p->view == GOSSIP_ACTIVE ? p : NULL;
}

/* A record in no view and with no request out is given back. */
static void release(gossip_peer *p)
{
    if (in_use(p))
        return;
    free(p->data);
    free(p->q);
    memset(p, 0, sizeof *p);
}

static void clear_pending(gossip_peer *p)
{
    p->pending = false;
    release(p);
}

static gossip_peer *slot_new(gossip_topic *t, const uint8_t *id)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        gossip_peer *p = &t->peers[i];
        if (!in_use(p)) {
            memcpy(p->id.b, id, IROHDS_GOSSIP_ID_LEN);
            return p;
        }
    }
    t->st.dropped_bounds++;
    return NULL;
}

/* A record for a peer we are about to ask, which may be in no view:
 * those are capped at twice the active capacity. */
static gossip_peer *slot_for_request(irohds_gossip *g, gossip_topic *t, const uint8_t *id)
{
    gossip_peer *p = gossip_hv_find(t, id);
    if (p)
        return p;
    size_t asked = 0;
    for (size_t i = 0; i < t->n_slots; i++)
        asked += t->peers[i].pending && t->peers[i].view == GOSSIP_FREE;
    if (asked >= 2 * (size_t)g->cfg.active_view_capacity) {
        t->st.dropped_bounds++;
        return NULL;
    }
    return slot_new(t, id);
}

static irohds_gossip_data data_of(const gossip_peer *p)
{
    return p->has_data ? (irohds_gossip_data){p->data, p->data_len} : no_data;
}

static irohds_gossip_data my_data(const irohds_gossip *g)
{
    return (irohds_gossip_data){g->me_data, g->me_data_len};
}

/* iroh's insert_peer_info: keep Some(data), announce it when it is new. */
static void set_data(irohds_gossip *g, gossip_topic *t, gossip_peer *p, const irohds_gossip_data *d)
{
    if (!d->ptr)
        return;
    if (d->len > IROHDS_GOSSIP_MAX_PEER_DATA) {
        t->st.dropped_bounds++;
        return;
    }
    if (p->has_data && p->data_len == d->len && memcmp(p->data, d->ptr, d->len) == 0)
        return;
    uint8_t *copy = malloc(d->len ? d->len : 1);
    if (!copy)
        return;
    memcpy(copy, d->ptr, d->len);
    free(p->data);
    p->data = copy;
    p->data_len = d->len;
    p->has_data = true;
    if (d->len)
        gossip_emit(g, IROHDS_GOSSIP_ACT_PEER_DATA, t, &p->id, d->ptr, d->len);
}

/* Records in view (and not pending, if asked), other than skip1/skip2,
 * into t->scratch; returns how many. */
static size_t collect(gossip_topic *t, uint8_t view, const gossip_id *skip1,
                      const gossip_id *skip2, bool skip_pending)
{
    size_t n = 0;
    for (size_t i = 0; i < t->n_slots; i++) {
        gossip_peer *p = &t->peers[i];
        if (p->view != view || (skip_pending && p->pending) ||
            (skip1 && gossip_id_eq(skip1, p->id.b)) || (skip2 && gossip_id_eq(skip2, p->id.b)))
            continue;
        t->scratch[n++] = p;
    }
    return n;
}

static gossip_peer *pick(irohds_gossip *g, gossip_topic *t, uint8_t view, const gossip_id *skip1,
                         const gossip_id *skip2, bool skip_pending)
{
    size_t n = collect(t, view, skip1, skip2, skip_pending);
    return n ? t->scratch[gossip_rand_below(g, n)] : NULL;
}

/* Up to max random records of view (not skip) appended to m->nodes. */
static void sample_into(irohds_gossip *g, gossip_topic *t, uint8_t view, const gossip_id *skip,
                        size_t max, irohds_gossip_msg *m)
{
    size_t n = collect(t, view, skip, NULL, false);
    for (size_t i = 0; i < n && i < max && m->n_nodes < IROHDS_GOSSIP_MAX_NODES; i++) {
        size_t j = i + gossip_rand_below(g, n - i);
        gossip_peer *p = t->scratch[j];
        t->scratch[j] = t->scratch[i];
        m->nodes[m->n_nodes++] = (irohds_gossip_peer_info){p->id.b, data_of(p)};
    }
}

/* Send a Shuffle or ShuffleReply, dropping nodes from the end until the
 * frame fits (PeerData can make eight nodes too big for one frame). */
static void send_nodes(irohds_gossip *g, gossip_topic *t, const gossip_id *to, irohds_gossip_msg *m)
{
    while (gossip_send(g, t, to, m) == -EMSGSIZE && m->n_nodes > 0)
        m->n_nodes--;
}

static void send_neighbor(irohds_gossip *g, gossip_topic *t, gossip_peer *p,
                          irohds_gossip_priority prio)
{
    if (p->pending)
        return;
    p->pending = true;
    p->pending_at = g->now + g->cfg.neighbor_request_timeout_ms;
    irohds_gossip_msg *m = gossip_tx(g, IROHDS_GOSSIP_NEIGHBOR);
    m->priority = prio;
    m->peer.data = my_data(g);
    gossip_send(g, t, &p->id, m);
}

static void send_shuffle_reply(irohds_gossip *g, gossip_topic *t, const gossip_id *to, size_t len)
{
    irohds_gossip_msg *m = gossip_tx(g, IROHDS_GOSSIP_SHUFFLE_REPLY);
    m->n_nodes = 0;
    sample_into(g, t, GOSSIP_PASSIVE, to, len, m);
    if (m->n_nodes < len)
        sample_into(g, t, GOSSIP_ACTIVE, to, len - m->n_nodes, m);
    send_nodes(g, t, to, m);
}

/* A ShuffleReply so the peer is not left without contacts, then
 * Disconnect, then the end of our stream to it. */
static void send_disconnect(irohds_gossip *g, gossip_topic *t, const gossip_id *to, bool alive)
{
    send_shuffle_reply(g, t, to,
                       g->cfg.shuffle_active_view_count + g->cfg.shuffle_passive_view_count);
    irohds_gossip_msg *m = gossip_tx(g, IROHDS_GOSSIP_DISCONNECT);
    m->alive = alive;
    gossip_send(g, t, to, m);
    gossip_disconnect(g, t, to);
}

static void evict_random_passive(irohds_gossip *g, gossip_topic *t)
{
    gossip_peer *q = pick(g, t, GOSSIP_PASSIVE, NULL, NULL, false);
    if (!q)
        return;
    q->view = GOSSIP_FREE;
    q->alive_disc = false;
    t->n_passive--;
    release(q);
}

static void add_passive(irohds_gossip *g, gossip_topic *t, const uint8_t *id,
                        const irohds_gossip_data *d)
{
    if (gossip_is_me(g, id))
        return;
    gossip_peer *p = gossip_hv_find(t, id);
    if (p) {
        set_data(g, t, p, d);
        if (p->view != GOSSIP_FREE)
            return;
    }
    if (t->n_passive >= g->cfg.passive_view_capacity)
        evict_random_passive(g, t);
    if (!p) {
        p = slot_new(t, id);
        if (!p)
            return;
        set_data(g, t, p, d);
    }
    p->view = GOSSIP_PASSIVE;
    t->n_passive++;
}

static void refill(irohds_gossip *g, gossip_topic *t, const gossip_id *skip)
{
    size_t asked = 0;
    for (size_t i = 0; i < t->n_slots; i++)
        asked += t->peers[i].pending && t->peers[i].view != GOSSIP_ACTIVE;
    if (t->n_active + asked >= g->cfg.active_view_capacity)
        return;
    gossip_peer *q = pick(g, t, GOSSIP_PASSIVE, skip, NULL, true);
    if (q)
        send_neighbor(g, t, q, t->n_active == 0 ? IROHDS_GOSSIP_HIGH : IROHDS_GOSSIP_LOW);
}

/* Take p out of the active view (no refill: see remove_active). */
static void remove_active_by(irohds_gossip *g, gossip_topic *t, gossip_peer *p, enum reason why)
{
    gossip_id id = p->id;
    p->view = GOSSIP_FREE;
    p->pending = false;
    t->n_active--;
    gossip_pt_neighbor_down(g, t, p);
    gossip_emit(g, IROHDS_GOSSIP_ACT_NEIGHBOR_DOWN, t, &id, NULL, 0);
    if (why == R_RANDOM)
        send_disconnect(g, t, &id, true);
    else
        gossip_disconnect(g, t, &id);
    bool keep = why == R_CLOSED ? p->alive_disc : why != R_DISC_DEAD;
    if (keep) {
        if (t->n_passive >= g->cfg.passive_view_capacity)
            evict_random_passive(g, t);
        p->view = GOSSIP_PASSIVE;
        t->n_passive++;
        p->alive_disc = why != R_CLOSED;
    } else {
        p->alive_disc = false;
        release(p);
    }
}

static void remove_active(irohds_gossip *g, gossip_topic *t, gossip_peer *p, enum reason why)
{
    gossip_id id = p->id;
    remove_active_by(g, t, p, why);
    refill(g, t, &id);
}

/* Returns false when a Low request finds the view full. */
static bool add_active(irohds_gossip *g, gossip_topic *t, const uint8_t *id,
                       const irohds_gossip_data *d, irohds_gossip_priority prio, bool reply)
{
    gossip_peer *p = gossip_hv_find(t, id);
    if (p && p->view == GOSSIP_ACTIVE) {
        set_data(g, t, p, d);
        if (reply)
            send_neighbor(g, t, p, prio);
        return true;
    }
    if (t->n_active >= g->cfg.active_view_capacity) {
        if (prio == IROHDS_GOSSIP_LOW) {
            if (p)
                set_data(g, t, p, d);
            return false;
        }
        remove_active_by(g, t, pick(g, t, GOSSIP_ACTIVE, NULL, NULL, false), R_RANDOM);
    }
    p = gossip_hv_find(t, id); /* the eviction may have moved records */
    if (!p && !(p = slot_new(t, id)))
        return false;
    if (p->view == GOSSIP_PASSIVE)
        t->n_passive--;
    p->view = GOSSIP_ACTIVE;
    t->n_active++;
    set_data(g, t, p, d);
    gossip_pt_neighbor_up(p);
    gossip_emit(g, IROHDS_GOSSIP_ACT_NEIGHBOR_UP, t, &p->id, NULL, 0);
    if (reply)
        send_neighbor(g, t, p, prio);
    return true;
}

/* ------------------------------------------------------------- messages */

static void on_join(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                    const irohds_gossip_msg *m)
{
    /* A Join voids a request of ours to the peer: it restarted, or our
     * request crossed its Join, and either way would not be answered. */
    gossip_peer *p = gossip_hv_find(t, from->b);
    if (p)
        clear_pending(p);
    if (!add_active(g, t, from->b, &m->peer.data, IROHDS_GOSSIP_HIGH, true))
        return;
    irohds_gossip_msg *fj = gossip_tx(g, IROHDS_GOSSIP_FORWARD_JOIN);
    fj->peer = (irohds_gossip_peer_info){from->b, m->peer.data};
    fj->ttl = g->cfg.active_random_walk_length;
    size_t len;
    if (irohds_gossip_frame_encode(fj, g->cfg.max_message_size, g->frame, sizeof g->frame, &len))
        return;
    size_t n = collect(t, GOSSIP_ACTIVE, from, NULL, false);
    for (size_t i = 0; i < n; i++)
        gossip_send_frame(g, t, &t->scratch[i]->id, g->frame, len, false);
}

static void on_forward_join(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                            const irohds_gossip_msg *m)
{
    const uint8_t *id = m->peer.id;
    if (gossip_is_me(g, id))
        return;
    gossip_peer *p = gossip_hv_find(t, id);
    if (p && p->view == GOSSIP_ACTIVE) {
        set_data(g, t, p, &m->peer.data);
        send_neighbor(g, t, p, IROHDS_GOSSIP_HIGH);
        return;
    }
    if (m->ttl == 0 || t->n_active <= 1) {
        /* The walk ends here: ask the peer (it joins our active view once
         * it answers). */
        p = slot_for_request(g, t, id);
        if (p) {
            set_data(g, t, p, &m->peer.data);
            send_neighbor(g, t, p, IROHDS_GOSSIP_HIGH);
        }
        return;
    }
    if (m->ttl == g->cfg.passive_random_walk_length)
        add_passive(g, t, id, &m->peer.data);
    p = gossip_hv_find(t, id);
    if (p && p->pending)
        return;
    gossip_peer *next = pick(g, t, GOSSIP_ACTIVE, from, NULL, false);
    if (!next)
        return;
    irohds_gossip_msg *fj = gossip_tx(g, IROHDS_GOSSIP_FORWARD_JOIN);
    fj->peer = m->peer;
    fj->ttl = (uint16_t)(m->ttl - 1);
    gossip_send(g, t, &next->id, fj);
}

static void on_shuffle(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                       const irohds_gossip_msg *m)
{
    if (m->ttl == 0 || t->n_active <= 1) {
        for (size_t i = 0; i < m->n_nodes; i++)
            add_passive(g, t, m->nodes[i].id, &m->nodes[i].data);
        if (gossip_is_me(g, m->origin))
            return;
        gossip_id origin;
        memcpy(origin.b, m->origin, IROHDS_GOSSIP_ID_LEN);
        send_shuffle_reply(g, t, &origin, m->n_nodes);
        if (!gossip_hv_active(t, origin.b))
            gossip_disconnect(g, t, &origin);
        return;
    }
    gossip_id origin;
    memcpy(origin.b, m->origin, IROHDS_GOSSIP_ID_LEN);
    gossip_peer *next = pick(g, t, GOSSIP_ACTIVE, &origin, from, false);
    if (!next)
        return;
    irohds_gossip_msg *fw = &g->tx;
    memcpy(fw, m, sizeof *fw);
    fw->ttl = (uint16_t)(m->ttl - 1);
    gossip_send(g, t, &next->id, fw);
}

static void on_shuffle_reply(irohds_gossip *g, gossip_topic *t, const irohds_gossip_msg *m)
{
    for (size_t i = 0; i < m->n_nodes; i++)
        add_passive(g, t, m->nodes[i].id, &m->nodes[i].data);
    refill(g, t, NULL);
}

/* Returns true when it refused the peer (and so disconnected it). */
static bool on_neighbor(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                        const irohds_gossip_msg *m)
{
    gossip_peer *p = gossip_hv_find(t, from->b);
    bool is_reply = p && p->pending;
    if (p)
        clear_pending(p);
    if (add_active(g, t, from->b, &m->peer.data, m->priority, !is_reply))
        return false;
    send_disconnect(g, t, from, true);
    return true;
}

static void on_disconnect(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                          const irohds_gossip_msg *m)
{
    gossip_peer *p = gossip_hv_find(t, from->b);
    if (!p)
        return;
    if (p->view == GOSSIP_ACTIVE) {
        remove_active(g, t, p, m->alive ? R_DISC_ALIVE : R_DISC_DEAD);
        return;
    }
    if (m->alive && p->view == GOSSIP_PASSIVE)
        p->alive_disc = true;
    clear_pending(p);
}

void gossip_hv_handle(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                      const irohds_gossip_msg *m)
{
    bool closed = false;
    switch (m->kind) {
    case IROHDS_GOSSIP_JOIN:
        on_join(g, t, from, m);
        break;
    case IROHDS_GOSSIP_FORWARD_JOIN:
        on_forward_join(g, t, from, m);
        break;
    case IROHDS_GOSSIP_SHUFFLE:
        on_shuffle(g, t, from, m);
        break;
    case IROHDS_GOSSIP_SHUFFLE_REPLY:
        on_shuffle_reply(g, t, m);
        break;
    case IROHDS_GOSSIP_NEIGHBOR:
        closed = on_neighbor(g, t, from, m);
        break;
    default:
        on_disconnect(g, t, from, m);
        return;
    }
    /* iroh drops a connection a non-neighbour used once (a forwarded join,
     * a shuffle reply): nothing else would close it. */
    if (!closed && !gossip_hv_active(t, from->b))
        gossip_disconnect(g, t, from);
}

/* ---------------------------------------------------- other inputs */

void gossip_hv_join(irohds_gossip *g, gossip_topic *t, const irohds_gossip_peer *peers, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        if (gossip_is_me(g, peers[i].id))
            continue;
        irohds_gossip_data d = {peers[i].data, peers[i].data_len};
        add_passive(g, t, peers[i].id, &d);
        irohds_gossip_msg *m = gossip_tx(g, IROHDS_GOSSIP_JOIN);
        m->peer.data = my_data(g);
        gossip_id to;
        memcpy(to.b, peers[i].id, IROHDS_GOSSIP_ID_LEN);
        gossip_send(g, t, &to, m);
    }
}

void gossip_hv_quit(irohds_gossip *g, gossip_topic *t)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        gossip_peer *p = &t->peers[i];
        bool asked_only = p->pending && p->view == GOSSIP_FREE;
        p->pending = false; /* the records go with the topic (gossip_hv_free) */
        if (asked_only)
            gossip_disconnect(g, t, &p->id);
    }
    for (size_t i = 0; i < t->n_slots; i++) {
        gossip_peer *p = &t->peers[i];
        if (p->view != GOSSIP_ACTIVE)
            continue;
        p->view = GOSSIP_FREE;
        t->n_active--;
        gossip_pt_neighbor_down(g, t, p);
        gossip_emit(g, IROHDS_GOSSIP_ACT_NEIGHBOR_DOWN, t, &p->id, NULL, 0);
        send_disconnect(g, t, &p->id, false);
    }
}

void gossip_hv_closed(irohds_gossip *g, gossip_topic *t, const uint8_t *peer)
{
    gossip_peer *p = gossip_hv_find(t, peer);
    if (!p)
        return;
    if (p->view == GOSSIP_ACTIVE) {
        remove_active(g, t, p, R_CLOSED);
        return;
    }
    if (p->view == GOSSIP_PASSIVE) {
        if (p->alive_disc) {
            p->alive_disc = false;
        } else {
            p->view = GOSSIP_FREE;
            t->n_passive--;
        }
    }
    clear_pending(p);
}

void gossip_hv_timers(irohds_gossip *g, gossip_topic *t)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        gossip_peer *p = &t->peers[i];
        if (!p->pending || p->pending_at > g->now)
            continue;
        /* No answer: a request means the peer is gone; a reply (the peer
         * is active) needs nothing more. */
        if (p->view == GOSSIP_PASSIVE) {
            p->view = GOSSIP_FREE;
            p->alive_disc = false;
            t->n_passive--;
        }
        clear_pending(p);
        refill(g, t, NULL);
    }
    if (g->now >= t->shuffle_at) {
        t->shuffle_at = g->now + g->cfg.shuffle_interval_ms;
        gossip_peer *node = pick(g, t, GOSSIP_ACTIVE, NULL, NULL, false);
        if (!node)
            return;
        irohds_gossip_msg *m = gossip_tx(g, IROHDS_GOSSIP_SHUFFLE);
        m->origin = g->me.b;
        m->ttl = g->cfg.shuffle_random_walk_length;
        m->n_nodes = 1;
        m->nodes[0] = (irohds_gossip_peer_info){g->me.b, my_data(g)};
        gossip_id to = node->id;
        sample_into(g, t, GOSSIP_ACTIVE, &to, g->cfg.shuffle_active_view_count, m);
        sample_into(g, t, GOSSIP_PASSIVE, &to, g->cfg.shuffle_passive_view_count, m);
        send_nodes(g, t, &to, m);
    }
}

uint64_t gossip_hv_deadline(const gossip_topic *t)
{
    uint64_t d = t->shuffle_at;
    for (size_t i = 0; i < t->n_slots; i++)
        if (t->peers[i].pending && t->peers[i].pending_at < d)
            d = t->peers[i].pending_at;
    return d;
}
