/*
 * gossip/gossip.c: the instance: topics, the action queue, the PRNG, the
 * per-peer budgets, and the entry points of gossip.h, which route each
 * event to the topic's HyParView (hyparview.c) or PlumTree (plumtree.c)
 * half.  This is iroh-gossip's proto::state and proto::topic in one file.
 *
 * Actions go to a singly linked FIFO of malloc'd items, each carrying its
 * bytes; poll() hands the oldest out and frees it at the next poll.  The
 * queue is bounded in items and bytes: a caller that stops draining loses
 * actions (counted), the instance does not grow.
 *
 * Budgets: a topic remembers, for the GOSSIP_BUDGET_SLOTS peers it heard
 * from most recently, how many frames and bytes each sent in the current
 * second; over cfg.peer_msgs_per_sec or cfg.peer_bytes_per_sec a frame is
 * dropped before it is decoded.  The tables behind it are bounded on their
 * own, so the budget is about fairness (one peer cannot crowd out the
 * others' messages) and about CPU, not the last line for memory.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip_int.h"
#include "hash/blake3.h"
#include "wire/postcard.h"

void irohds_gossip_config_default(irohds_gossip_config *c)
{
    *c = (irohds_gossip_config){
        .active_view_capacity = 5,
        .passive_view_capacity = 30,
        .active_random_walk_length = 6,
        .passive_random_walk_length = 3,
        .shuffle_random_walk_length = 6,
        .shuffle_active_view_count = 3,
        .shuffle_passive_view_count = 4,
        .shuffle_interval_ms = 60000,
        .neighbor_request_timeout_ms = 500,
        .graft_timeout_1_ms = 80,
        .graft_timeout_2_ms = 40,
        .dispatch_timeout_ms = 5,
        .optimization_threshold = 7,
        .message_cache_retention_ms = 30000,
        .message_id_retention_ms = 90000,
        .cache_evict_interval_ms = 1000,
        .max_message_size = IROHDS_GOSSIP_MAX_MESSAGE_SIZE,
        .max_topics = 64,
        .seen_capacity = 8192,
        .cache_max_bytes = 8u << 20,
        .missing_capacity = 1024,
        .peer_msgs_per_sec = 2000,
        .peer_bytes_per_sec = 4u << 20,
        .queue_max_actions = 65536,
        .queue_max_bytes = 64u << 20,
    };
}

static bool config_ok(const irohds_gossip_config *c)
{
    return c->active_view_capacity >= 1 && c->active_view_capacity <= 64 &&
           c->passive_view_capacity >= 1 && c->passive_view_capacity <= 1024 &&
           c->shuffle_active_view_count + c->shuffle_passive_view_count < IROHDS_GOSSIP_MAX_NODES &&
           c->max_message_size >= IROHDS_GOSSIP_MIN_MESSAGE_SIZE &&
           c->max_message_size <= IROHDS_GOSSIP_MAX_MESSAGE_SIZE && c->max_topics >= 1 &&
           c->max_topics <= 4096 && c->seen_capacity >= 16 && c->seen_capacity <= (1u << 24) &&
           c->missing_capacity >= 1 && c->missing_capacity <= (1u << 20) &&
           c->message_id_retention_ms >= c->message_cache_retention_ms &&
           c->cache_evict_interval_ms >= 1 && c->shuffle_interval_ms >= 1 &&
           c->graft_timeout_1_ms >= 1 && c->graft_timeout_2_ms >= 1 &&
           c->queue_max_actions >= 1 && c->peer_msgs_per_sec >= 1;
}

/* ------------------------------------------------------------------- PRNG */

/* xoshiro256**, seeded through splitmix64. */
static uint64_t splitmix64(uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static uint64_t rotl(uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

uint64_t gossip_rand(irohds_gossip *g)
{
    uint64_t *s = g->rng;
    uint64_t r = rotl(s[1] * 5, 7) * 9, t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return r;
}

size_t gossip_rand_below(irohds_gossip *g, size_t n)
{
    return n ? (size_t)(gossip_rand(g) % n) : 0;
}

/* ---------------------------------------------------------------- actions */

static bool same_id(const uint8_t *a, const uint8_t *b)
{
    return memcmp(a, b, IROHDS_GOSSIP_ID_LEN) == 0;
}

static gossip_act *queue_item(irohds_gossip *g, irohds_gossip_action_type type,
                              const gossip_topic *t, const gossip_id *peer, size_t len)
{
    if (g->q_count >= g->cfg.queue_max_actions || len > g->cfg.queue_max_bytes - g->q_bytes) {
        g->dropped_actions++;
        return NULL;
    }
    gossip_act *it = malloc(sizeof *it + len);
    if (!it) {
        g->dropped_actions++;
        return NULL;
    }
    memset(&it->a, 0, sizeof it->a);
    it->next = NULL;
    it->a.type = type;
    if (t)
        memcpy(it->a.topic, t->id.b, IROHDS_GOSSIP_ID_LEN);
    if (peer)
        memcpy(it->a.peer, peer->b, IROHDS_GOSSIP_ID_LEN);
    it->a.data = it->data;
    it->a.len = len;
    if (g->q_tail)
        g->q_tail->next = it;
    else
        g->q_head = it;
    g->q_tail = it;
    g->q_count++;
    g->q_bytes += len;
    return it;
}

void gossip_emit(irohds_gossip *g, irohds_gossip_action_type type, const gossip_topic *t,
                 const gossip_id *peer, const void *data, size_t len)
{
    gossip_act *it = queue_item(g, type, t, peer, len);
    if (it && len)
        memcpy(it->data, data, len);
}

void gossip_send_frame(irohds_gossip *g, gossip_topic *t, const gossip_id *to, const uint8_t *frame,
                       size_t len, bool last)
{
    if (gossip_is_me(g, to->b))
        return;
    gossip_act *it = queue_item(g, IROHDS_GOSSIP_ACT_SEND, t, to, len);
    if (!it)
        return;
    memcpy(it->data, frame, len);
    it->a.last = last;
    t->st.frames_sent++;
}

int gossip_send(irohds_gossip *g, gossip_topic *t, const gossip_id *to, const irohds_gossip_msg *m)
{
    size_t len;
    int err = irohds_gossip_frame_encode(m, g->cfg.max_message_size, g->frame, sizeof g->frame,
                                         &len);
    if (err)
        return err;
    gossip_send_frame(g, t, to, g->frame, len, m->kind == IROHDS_GOSSIP_DISCONNECT);
    return 0;
}

irohds_gossip_msg *gossip_tx(irohds_gossip *g, irohds_gossip_kind kind)
{
    irohds_gossip_msg *m = &g->tx;
    memset(m, 0, offsetof(irohds_gossip_msg, nodes));
    m->n_ihave = 0;
    m->kind = kind;
    return m;
}

/* Whether any topic still has peer as a neighbour or a request out to it. */
static bool peer_in_use(irohds_gossip *g, const uint8_t *peer)
{
    for (unsigned i = 0; i < g->cfg.max_topics; i++) {
        gossip_topic *t = &g->topics[i];
        gossip_peer *p = t->used ? gossip_hv_find(t, peer) : NULL;
        if (p && (p->view == GOSSIP_ACTIVE || p->pending))
            return true;
    }
    return false;
}

void gossip_disconnect(irohds_gossip *g, gossip_topic *t, const gossip_id *peer)
{
    gossip_act *it = queue_item(g, IROHDS_GOSSIP_ACT_DISCONNECT, t, peer, 0);
    if (it)
        it->a.conn_idle = !peer_in_use(g, peer->b);
}

void gossip_deliver(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                    const irohds_gossip_msg *m)
{
    gossip_act *it = queue_item(g, IROHDS_GOSSIP_ACT_DELIVER, t, from, m->content_len);
    if (!it)
        return;
    if (m->content_len)
        memcpy(it->data, m->content, m->content_len);
    it->a.scope = m->scope;
    it->a.round = m->round;
    t->st.delivered++;
}

bool irohds_gossip_poll(irohds_gossip *g, irohds_gossip_action *a)
{
    free(g->popped);
    g->popped = g->q_head;
    if (!g->popped)
        return false;
    g->q_head = g->popped->next;
    if (!g->q_head)
        g->q_tail = NULL;
    g->q_count--;
    g->q_bytes -= g->popped->a.len;
    *a = g->popped->a;
    return true;
}

/* ------------------------------------------------------------- instance */

int irohds_gossip_init(irohds_gossip **out, const uint8_t me[IROHDS_GOSSIP_ID_LEN],
                       const irohds_gossip_config *cfg, uint64_t seed)
{
    irohds_gossip_config def;
    if (!cfg) {
        irohds_gossip_config_default(&def);
        cfg = &def;
    }
    *out = NULL;
    if (!config_ok(cfg))
        return -EINVAL;
    irohds_gossip *g = calloc(1, sizeof *g);
    if (!g)
        return -ENOMEM;
    g->topics = calloc(cfg->max_topics, sizeof *g->topics);
    if (!g->topics) {
        free(g);
        return -ENOMEM;
    }
    memcpy(g->me.b, me, IROHDS_GOSSIP_ID_LEN);
    g->cfg = *cfg;
    for (int i = 0; i < 4; i++)
        g->rng[i] = splitmix64(&seed);
    g->hk0 = gossip_rand(g);
    g->hk1 = gossip_rand(g);
    /* IHaves per frame as iroh counts them: what is left of a frame after
     * the topic header (33), the discriminant and the length (3), at 35
     * bytes (id + a 3-byte round) each. */
    g->chunk_len = (cfg->max_message_size - 33 - 3) / 35;
    if (g->chunk_len > IROHDS_GOSSIP_MAX_IHAVE)
        g->chunk_len = IROHDS_GOSSIP_MAX_IHAVE;
    *out = g;
    return 0;
}

static void topic_free(gossip_topic *t)
{
    gossip_pt_free(t);
    gossip_hv_free(t);
    memset(t, 0, sizeof *t);
}

void irohds_gossip_free(irohds_gossip *g)
{
    if (!g)
        return;
    for (unsigned i = 0; i < g->cfg.max_topics; i++)
        if (g->topics[i].used)
            topic_free(&g->topics[i]);
    free(g->topics);
    while (g->q_head) {
        gossip_act *next = g->q_head->next;
        free(g->q_head);
        g->q_head = next;
    }
    free(g->popped);
    free(g->me_data);
    free(g);
}

int irohds_gossip_set_peer_data(irohds_gossip *g, const void *data, size_t len)
{
    if (len > IROHDS_GOSSIP_MAX_PEER_DATA)
        return -EMSGSIZE;
    uint8_t *copy = malloc(len ? len : 1);
    if (!copy)
        return -ENOMEM;
    if (len)
        memcpy(copy, data, len);
    free(g->me_data);
    g->me_data = copy;
    g->me_data_len = len;
    return 0;
}

static gossip_topic *topic_find(const irohds_gossip *g, const uint8_t *id)
{
    for (unsigned i = 0; i < g->cfg.max_topics; i++)
        if (g->topics[i].used && same_id(g->topics[i].id.b, id))
            return &g->topics[i];
    return NULL;
}

static int topic_new(irohds_gossip *g, const uint8_t *id, gossip_topic **out)
{
    gossip_topic *t = NULL;
    for (unsigned i = 0; i < g->cfg.max_topics && !t; i++)
        if (!g->topics[i].used)
            t = &g->topics[i];
    if (!t)
        return -ENOSPC;
    memset(t, 0, sizeof *t);
    memcpy(t->id.b, id, IROHDS_GOSSIP_ID_LEN);
    t->used = true;
    int err = gossip_hv_init(g, t);
    if (!err)
        err = gossip_pt_init(g, t);
    if (err) {
        topic_free(t);
        return err;
    }
    *out = t;
    return 0;
}

/* Every entry point starts here: take the time, run what is due. */
static void advance(irohds_gossip *g, uint64_t now)
{
    if (now > g->now)
        g->now = now;
    for (unsigned i = 0; i < g->cfg.max_topics; i++) {
        gossip_topic *t = &g->topics[i];
        if (t->used) {
            gossip_hv_timers(g, t);
            gossip_pt_timers(g, t);
        }
    }
}

void irohds_gossip_timeout(irohds_gossip *g, uint64_t now)
{
    advance(g, now);
}

uint64_t irohds_gossip_next_deadline(const irohds_gossip *g, uint64_t now)
{
    uint64_t d = UINT64_MAX;
    for (unsigned i = 0; i < g->cfg.max_topics; i++) {
        const gossip_topic *t = &g->topics[i];
        if (!t->used)
            continue;
        uint64_t h = gossip_hv_deadline(t), p = gossip_pt_deadline(t);
        d = h < d ? h : d;
        d = p < d ? p : d;
    }
    return d < now ? now : d;
}

int irohds_gossip_join(irohds_gossip *g, uint64_t now, const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                       const irohds_gossip_peer *peers, size_t n)
{
    advance(g, now);
    gossip_topic *t = topic_find(g, topic);
    if (!t) {
        int err = topic_new(g, topic, &t);
        if (err)
            return err;
    }
    gossip_hv_join(g, t, peers, n);
    return 0;
}

int irohds_gossip_quit(irohds_gossip *g, uint64_t now, const uint8_t topic[IROHDS_GOSSIP_ID_LEN])
{
    advance(g, now);
    gossip_topic *t = topic_find(g, topic);
    if (!t)
        return -ENOENT;
    gossip_hv_quit(g, t);
    topic_free(t);
    return 0;
}

int irohds_gossip_forget(irohds_gossip *g, uint64_t now, const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                         const uint8_t id[IROHDS_GOSSIP_ID_LEN])
{
    advance(g, now);
    gossip_topic *t = topic_find(g, topic);
    return t ? gossip_pt_forget(t, id) : -ENOENT;
}

size_t irohds_gossip_max_content(const irohds_gossip *g)
{
    /* Gossip frame body: 2 discriminants, id, varint length, content,
     * scope with a round of up to 3 bytes; it must stay below the max. */
    size_t fixed = 2 + IROHDS_GOSSIP_ID_LEN + 1 + 3;
    size_t n = g->cfg.max_message_size - 1 - fixed;
    while (n + fixed + irohds_pc_varint_size(n) > g->cfg.max_message_size - 1)
        n--;
    return n;
}

int irohds_gossip_broadcast(irohds_gossip *g, uint64_t now,
                            const uint8_t topic[IROHDS_GOSSIP_ID_LEN], const void *content,
                            size_t len, irohds_gossip_scope scope)
{
    advance(g, now);
    gossip_topic *t = topic_find(g, topic);
    if (!t)
        return -ENOENT;
    if (len > irohds_gossip_max_content(g))
        return -EMSGSIZE;
    if (scope != IROHDS_GOSSIP_SCOPE_SWARM && scope != IROHDS_GOSSIP_SCOPE_NEIGHBORS)
        return -EINVAL;
    return gossip_pt_broadcast(g, t, content, len, scope);
}

/* Count a frame against from's budget; false when over it. */
static bool budget_take(irohds_gossip *g, gossip_topic *t, const uint8_t *from, size_t bytes)
{
    gossip_budget *b = NULL, *oldest = &t->budget[0];
    for (size_t i = 0; i < GOSSIP_BUDGET_SLOTS && !b; i++) {
        gossip_budget *s = &t->budget[i];
        if (s->used && same_id(s->peer.b, from))
            b = s;
        else if (!s->used || (oldest->used && s->window < oldest->window))
            oldest = s;
    }
    if (!b) {
        b = oldest;
        memcpy(b->peer.b, from, IROHDS_GOSSIP_ID_LEN);
        b->used = true;
        b->window = g->now;
        b->msgs = b->bytes = 0;
    }
    if (g->now - b->window >= 1000) {
        b->window = g->now;
        b->msgs = b->bytes = 0;
    }
    b->msgs++;
    b->bytes += bytes;
    return b->msgs <= g->cfg.peer_msgs_per_sec && b->bytes <= g->cfg.peer_bytes_per_sec;
}

static bool is_swarm(irohds_gossip_kind k)
{
    return k <= IROHDS_GOSSIP_DISCONNECT;
}

static int dispatch(irohds_gossip *g, gossip_topic *t, const uint8_t *from,
                    const irohds_gossip_msg *m)
{
    gossip_id peer;
    if (gossip_is_me(g, from))
        return -EINVAL;
    memcpy(peer.b, from, IROHDS_GOSSIP_ID_LEN);
    t->st.frames_received++;
    if (is_swarm(m->kind))
        gossip_hv_handle(g, t, &peer, m);
    else
        gossip_pt_handle(g, t, &peer, m);
    return 0;
}

int irohds_gossip_handle_frame(irohds_gossip *g, uint64_t now,
                               const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                               const uint8_t from[IROHDS_GOSSIP_ID_LEN], const void *body,
                               size_t len)
{
    advance(g, now);
    gossip_topic *t = topic_find(g, topic);
    if (!t)
        return -ENOENT;
    if (!budget_take(g, t, from, len)) {
        t->st.dropped_budget++;
        return -EAGAIN;
    }
    if (len > g->cfg.max_message_size) {
        t->st.dropped_invalid++;
        return -EMSGSIZE;
    }
    int err = irohds_gossip_decode(&g->rx, body, len);
    if (err) {
        t->st.dropped_invalid++;
        return err;
    }
    return dispatch(g, t, from, &g->rx);
}

int irohds_gossip_handle_msg(irohds_gossip *g, uint64_t now,
                             const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                             const uint8_t from[IROHDS_GOSSIP_ID_LEN], const irohds_gossip_msg *m)
{
    advance(g, now);
    gossip_topic *t = topic_find(g, topic);
    if (!t)
        return -ENOENT;
    size_t len;
    int err = irohds_gossip_encode(m, NULL, 0, &len);
    if (err == -EINVAL) {
        t->st.dropped_invalid++;
        return err;
    }
    if (!budget_take(g, t, from, len)) {
        t->st.dropped_budget++;
        return -EAGAIN;
    }
    if (m->kind == IROHDS_GOSSIP_GOSSIP) {
        uint8_t h[IROHDS_BLAKE3_OUT_LEN];
        irohds_blake3(m->content, m->content_len, h);
        if (!same_id(h, m->id)) {
            t->st.dropped_invalid++;
            return -EBADMSG;
        }
    }
    return dispatch(g, t, from, m);
}

void irohds_gossip_peer_disconnected(irohds_gossip *g, uint64_t now,
                                     const uint8_t peer[IROHDS_GOSSIP_ID_LEN])
{
    advance(g, now);
    for (unsigned i = 0; i < g->cfg.max_topics; i++) {
        gossip_topic *t = &g->topics[i];
        if (t->used) {
            gossip_hv_closed(g, t, peer);
            gossip_pt_peer_gone(g, t, peer);
        }
    }
}

size_t irohds_gossip_neighbors(const irohds_gossip *g, const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                               uint8_t (*out)[IROHDS_GOSSIP_ID_LEN], size_t max)
{
    gossip_topic *t = topic_find(g, topic);
    size_t n = 0;
    for (size_t i = 0; t && i < t->n_slots; i++) {
        if (t->peers[i].view != GOSSIP_ACTIVE)
            continue;
        if (n < max)
            memcpy(out[n], t->peers[i].id.b, IROHDS_GOSSIP_ID_LEN);
        n++;
    }
    return n;
}

int irohds_gossip_stats_get(const irohds_gossip *g, const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                            irohds_gossip_stats *st)
{
    gossip_topic *t = topic_find(g, topic);
    if (!t)
        return -ENOENT;
    *st = t->st;
    st->active = t->n_active;
    st->passive = t->n_passive;
    st->seen_ids = t->seen_count;
    st->missing = t->n_missing;
    st->dropped_actions = g->dropped_actions;
    return 0;
}
