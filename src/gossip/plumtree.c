/*
 * gossip/plumtree.c: PlumTree broadcast (Leitão, Pereira, Rodrigues,
 * "Epidemic Broadcast Trees", SRDS 2007) for one topic, with the behaviour
 * of iroh-gossip's proto/plumtree.rs.  Each neighbour is eager (gets the
 * content) or lazy (gets the id in a batched IHave).  Every neighbour
 * starts eager; a duplicate prunes the link it came over (Prune makes both
 * ends lazy), which leaves a spanning tree; an IHave for an id not received
 * within graft_timeout_1 grafts the announcer back (Graft asks for the
 * content and makes the link eager), then the next announcer every
 * graft_timeout_2; and a content that arrives optimization_threshold
 * rounds later than an IHave promised swaps the eager link for the lazy
 * one.
 *
 * Tables, all fixed at topic creation:
 *   seen     ring of message ids in arrival order (FIFO = expiry order,
 *            since every id is kept message_id_retention), with the content
 *            of the newer ones kept message_cache_retention for grafts and
 *            under cache_max_bytes; full, it forgets the oldest id early.
 *   missing  pool of ids announced but not received, each with up to
 *            GOSSIP_MAX_ANN announcers and its graft deadline; two FIFO
 *            lists (first and second timeout) order the deadlines, since
 *            each list is filled with a constant delay.
 *   queues   per lazy neighbour, IHaves waiting for the dispatch timer,
 *            at most one frame's worth (a full queue is sent at once).
 * Both id tables are found through a gossip_index, keyed by a secret.
 *
 * Our differences from iroh: a Neighbors-scope broadcast goes to every
 * neighbour (iroh: only eager ones); an id is delivered at most once
 * whatever its scope; Prune, Graft and IHave from a peer that is not a
 * neighbour change no link; broadcasting content already seen is refused
 * (-EALREADY) rather than sent again (which would prune our own links).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip_int.h"
#include "hash/blake3.h"

/* ------------------------------------------------------------------ index */

static uint64_t fmix64(uint64_t k)
{
    k ^= k >> 33;
    k *= 0xff51afd7ed558ccdull;
    k ^= k >> 33;
    k *= 0xc4ceb9fe1a85ec53ull;
    k ^= k >> 33;
    return k;
}

static uint32_t ix_hash(const gossip_index *ix, const uint8_t *id)
{
    uint64_t h = ix->k0;
    for (int i = 0; i < 4; i++) {
        uint64_t w;
        memcpy(&w, id + 8 * i, 8);
        h = fmix64(h ^ w);
    }
    return (uint32_t)fmix64(h ^ ix->k1);
}

static int ix_init(gossip_index *ix, size_t n, uint64_t k0, uint64_t k1, const void *base,
                   size_t stride)
{
    size_t cap = 1;
    while (cap < 2 * n)
        cap <<= 1;
    ix->e = calloc(cap, sizeof *ix->e);
    ix->mask = cap - 1;
    ix->k0 = k0;
    ix->k1 = k1;
    ix->base = base;
    ix->stride = stride;
    return ix->e ? 0 : -ENOMEM;
}

static bool ix_match(const gossip_index *ix, size_t i, uint32_t h, const uint8_t *id)
{
    const gossip_id *k = (const gossip_id *)(ix->base + (ix->e[i].val - 1) * ix->stride);
    return ix->e[i].h == h && gossip_id_eq(k, id);
}

static uint32_t ix_find(const gossip_index *ix, const uint8_t *id)
{
    uint32_t h = ix_hash(ix, id);
    for (size_t i = h & ix->mask; ix->e[i].val; i = (i + 1) & ix->mask)
        if (ix_match(ix, i, h, id))
            return ix->e[i].val;
    return 0;
}

/* The caller keeps at most half the slots full, so a free one exists. */
static void ix_insert(gossip_index *ix, const uint8_t *id, uint32_t val)
{
    uint32_t h = ix_hash(ix, id);
    size_t i = h & ix->mask;
    while (ix->e[i].val)
        i = (i + 1) & ix->mask;
    ix->e[i].val = val;
    ix->e[i].h = h;
}

/* Linear-probing delete: shift later entries of the run back into the
 * hole unless their home slot lies after it. */
static void ix_remove(gossip_index *ix, const uint8_t *id)
{
    uint32_t h = ix_hash(ix, id);
    size_t i = h & ix->mask;
    while (ix->e[i].val && !ix_match(ix, i, h, id))
        i = (i + 1) & ix->mask;
    if (!ix->e[i].val)
        return;
    for (size_t j = i;;) {
        ix->e[i].val = 0;
        for (;;) {
            j = (j + 1) & ix->mask;
            if (!ix->e[j].val)
                return;
            size_t k = ix->e[j].h & ix->mask;
            bool stays = i <= j ? (i < k && k <= j) : (i < k || k <= j);
            if (!stays)
                break;
        }
        ix->e[i] = ix->e[j];
        i = j;
    }
}

/* ------------------------------------------------------------------- seen */

static gossip_seen *seen_at(const gossip_topic *t, uint64_t seq, size_t cap)
{
    return &t->seen[seq % cap];
}

static gossip_seen *seen_find(gossip_topic *t, const uint8_t *id)
{
    uint32_t v = ix_find(&t->seen_ix, id);
    return v ? &t->seen[v - 1] : NULL;
}

static void uncache(gossip_topic *t, gossip_seen *e)
{
    if (!e->content)
        return;
    t->st.cached_bytes -= e->len;
    t->st.cached_messages--;
    free(e->content);
    e->content = NULL;
}

static void seen_drop_oldest(irohds_gossip *g, gossip_topic *t)
{
    gossip_seen *e = seen_at(t, t->seen_first, g->cfg.seen_capacity);
    ix_remove(&t->seen_ix, e->id.b);
    uncache(t, e);
    t->seen_first++;
    t->seen_count--;
    if (t->cache_first < t->seen_first)
        t->cache_first = t->seen_first;
}

static gossip_seen *seen_insert(irohds_gossip *g, gossip_topic *t, const uint8_t *id)
{
    size_t cap = g->cfg.seen_capacity;
    if (t->seen_count == cap) {
        t->st.dropped_bounds++;
        seen_drop_oldest(g, t);
    }
    uint64_t seq = t->seen_first + t->seen_count;
    gossip_seen *e = seen_at(t, seq, cap);
    memset(e, 0, sizeof *e);
    memcpy(e->id.b, id, IROHDS_GOSSIP_ID_LEN);
    e->at = g->now;
    ix_insert(&t->seen_ix, id, (uint32_t)(seq % cap) + 1);
    t->seen_count++;
    return e;
}

/* The application refused the content with this id (irohds_gossip_forget):
 * out of the index, its content freed, its slot left without an id (so
 * that expiring it removes nothing) until the ring passes it. */
int gossip_pt_forget(gossip_topic *t, const uint8_t *id)
{
    gossip_seen *e = seen_find(t, id);
    if (!e)
        return -ENOENT;
    ix_remove(&t->seen_ix, id);
    uncache(t, e);
    memset(e->id.b, 0, IROHDS_GOSSIP_ID_LEN);
    return 0;
}

/* Free the content of the oldest cached entry; false when none is left. */
static bool uncache_oldest(irohds_gossip *g, gossip_topic *t)
{
    for (; t->cache_first < t->seen_first + t->seen_count; t->cache_first++) {
        gossip_seen *e = seen_at(t, t->cache_first, g->cfg.seen_capacity);
        if (e->content) {
            uncache(t, e);
            t->cache_first++;
            return true;
        }
    }
    return false;
}

/* Keep content for grafts.  Only the newest entry is ever given content
 * (so everything before cache_first stays without); over cache_max_bytes
 * the oldest cached content goes first. */
static void cache_put(irohds_gossip *g, gossip_topic *t, gossip_seen *e, const irohds_gossip_msg *m,
                      uint16_t round)
{
    e->round = round;
    if (e != seen_at(t, t->seen_first + t->seen_count - 1, g->cfg.seen_capacity) ||
        m->content_len > g->cfg.cache_max_bytes)
        return;
    while (t->st.cached_bytes + m->content_len > g->cfg.cache_max_bytes && uncache_oldest(g, t))
        t->st.dropped_bounds++;
    e->content = malloc(m->content_len ? m->content_len : 1);
    if (!e->content)
        return;
    memcpy(e->content, m->content, m->content_len);
    e->len = m->content_len;
    t->st.cached_bytes += e->len;
    t->st.cached_messages++;
}

static void expire(irohds_gossip *g, gossip_topic *t)
{
    const irohds_gossip_config *c = &g->cfg;
    while (t->seen_count &&
           seen_at(t, t->seen_first, c->seen_capacity)->at + c->message_id_retention_ms <= g->now)
        seen_drop_oldest(g, t);
    for (; t->cache_first < t->seen_first + t->seen_count; t->cache_first++) {
        gossip_seen *e = seen_at(t, t->cache_first, c->seen_capacity);
        if (e->at + c->message_cache_retention_ms > g->now)
            break;
        uncache(t, e);
    }
}

/* ---------------------------------------------------------------- missing */

static void list_unlink(gossip_topic *t, uint32_t i)
{
    gossip_missing *m = &t->missing[i];
    gossip_list *l = &t->graft[m->list - 1];
    if (m->prev != GOSSIP_NIL)
        t->missing[m->prev].next = m->next;
    else
        l->head = m->next;
    if (m->next != GOSSIP_NIL)
        t->missing[m->next].prev = m->prev;
    else
        l->tail = m->prev;
    m->list = 0;
}

static void list_push(gossip_topic *t, uint32_t i, uint8_t which, uint64_t at)
{
    gossip_missing *m = &t->missing[i];
    gossip_list *l = &t->graft[which - 1];
    m->list = which;
    m->graft_at = at;
    m->next = GOSSIP_NIL;
    m->prev = l->tail;
    if (l->tail != GOSSIP_NIL)
        t->missing[l->tail].next = i;
    else
        l->head = i;
    l->tail = i;
}

static uint32_t missing_find(gossip_topic *t, const uint8_t *id)
{
    uint32_t v = ix_find(&t->missing_ix, id);
    return v ? v - 1 : GOSSIP_NIL;
}

static uint32_t missing_new(irohds_gossip *g, gossip_topic *t, const uint8_t *id)
{
    uint32_t i = t->missing_free;
    if (i == GOSSIP_NIL) {
        t->st.dropped_bounds++;
        return GOSSIP_NIL;
    }
    gossip_missing *m = &t->missing[i];
    t->missing_free = m->next;
    memset(m, 0, sizeof *m);
    memcpy(m->id.b, id, IROHDS_GOSSIP_ID_LEN);
    ix_insert(&t->missing_ix, id, i + 1);
    list_push(t, i, 1, g->now + g->cfg.graft_timeout_1_ms);
    t->n_missing++;
    return i;
}

static void missing_release(gossip_topic *t, uint32_t i)
{
    gossip_missing *m = &t->missing[i];
    if (m->list)
        list_unlink(t, i);
    ix_remove(&t->missing_ix, m->id.b);
    m->next = t->missing_free;
    t->missing_free = i;
    t->n_missing--;
}

static void add_announcer(gossip_missing *m, const gossip_id *peer, uint16_t round)
{
    for (size_t i = 0; i < m->n_ann; i++)
        if (gossip_id_eq(&m->ann[i].peer, peer->b))
            return;
    if (m->n_ann < GOSSIP_MAX_ANN) {
        m->ann[m->n_ann].peer = *peer;
        m->ann[m->n_ann].round = round;
        m->n_ann++;
    }
}

/* ----------------------------------------------------------- life cycle */

int gossip_pt_init(irohds_gossip *g, gossip_topic *t)
{
    const irohds_gossip_config *c = &g->cfg;
    t->seen = calloc(c->seen_capacity, sizeof *t->seen);
    t->seen_cap = c->seen_capacity;
    t->missing = calloc(c->missing_capacity, sizeof *t->missing);
    if (!t->seen || !t->missing)
        return -ENOMEM;
    if (ix_init(&t->seen_ix, c->seen_capacity, g->hk0, g->hk1, t->seen, sizeof *t->seen) ||
        ix_init(&t->missing_ix, c->missing_capacity, g->hk1, g->hk0, t->missing,
                sizeof *t->missing))
        return -ENOMEM;
    for (size_t i = 0; i < c->missing_capacity; i++)
        t->missing[i].next = i + 1 < c->missing_capacity ? (uint32_t)(i + 1) : GOSSIP_NIL;
    t->missing_free = 0;
    t->graft[0] = t->graft[1] = (gossip_list){GOSSIP_NIL, GOSSIP_NIL};
    t->evict_at = g->now + c->cache_evict_interval_ms;
    return 0;
}

void gossip_pt_free(gossip_topic *t)
{
    for (size_t i = 0; t->seen && i < t->seen_cap; i++)
        free(t->seen[i].content);
    free(t->seen);
    free(t->missing);
    free(t->seen_ix.e);
    free(t->missing_ix.e);
    t->seen = NULL;
    t->missing = NULL;
}

/* ------------------------------------------------------------------ push */

static irohds_gossip_msg *gossip_msg(irohds_gossip *g, const uint8_t *id, const void *content,
                                     size_t len, irohds_gossip_scope scope, uint16_t round)
{
    irohds_gossip_msg *m = gossip_tx(g, IROHDS_GOSSIP_GOSSIP);
    m->id = id;
    m->content = content;
    m->content_len = len;
    m->scope = scope;
    m->round = round;
    return m;
}

/* Content to every active peer, eager ones only unless all. */
static void push(irohds_gossip *g, gossip_topic *t, const irohds_gossip_msg *m,
                 const gossip_id *except, bool all)
{
    size_t len;
    if (irohds_gossip_frame_encode(m, g->cfg.max_message_size, g->frame, sizeof g->frame, &len))
        return;
    for (size_t i = 0; i < t->n_slots; i++) {
        gossip_peer *p = &t->peers[i];
        if (p->view == GOSSIP_ACTIVE && (all || !p->lazy) &&
            !(except && gossip_id_eq(except, p->id.b)))
            gossip_send_frame(g, t, &p->id, g->frame, len, false);
    }
}

static void flush(irohds_gossip *g, gossip_topic *t, gossip_peer *p)
{
    irohds_gossip_msg *m = gossip_tx(g, IROHDS_GOSSIP_IHAVE);
    for (size_t i = 0; i < p->q_len; i++)
        m->ihave[i] = (irohds_gossip_ihave){p->q[i].id.b, p->q[i].round};
    m->n_ihave = p->q_len;
    p->q_len = 0;
    gossip_send(g, t, &p->id, m);
}

/* Queue an IHave for every lazy neighbour; a full queue goes out now. */
static void lazy_push(irohds_gossip *g, gossip_topic *t, const uint8_t *id, uint16_t round,
                      const gossip_id *except)
{
    for (size_t i = 0; i < t->n_slots; i++) {
        gossip_peer *p = &t->peers[i];
        if (p->view != GOSSIP_ACTIVE || !p->lazy || (except && gossip_id_eq(except, p->id.b)))
            continue;
        if (!p->q && !(p->q = malloc(g->chunk_len * sizeof *p->q)))
            continue;
        memcpy(p->q[p->q_len].id.b, id, IROHDS_GOSSIP_ID_LEN);
        p->q[p->q_len++].round = round;
        if (p->q_len == g->chunk_len)
            flush(g, t, p);
    }
    if (!t->dispatch_at)
        t->dispatch_at = g->now + g->cfg.dispatch_timeout_ms;
}

int gossip_pt_broadcast(irohds_gossip *g, gossip_topic *t, const void *content, size_t len,
                        irohds_gossip_scope scope)
{
    uint8_t id[IROHDS_GOSSIP_ID_LEN];
    irohds_blake3(content, len, id);
    irohds_gossip_msg *m = gossip_msg(g, id, content, len, scope, 0);
    if (scope == IROHDS_GOSSIP_SCOPE_NEIGHBORS) {
        push(g, t, m, NULL, true);
        return 0;
    }
    gossip_seen *e = seen_find(t, id);
    if (e && (e->flags & SEEN_SWARM))
        return -EALREADY;
    if (!e)
        e = seen_insert(g, t, id);
    e->flags |= SEEN_SWARM | SEEN_DELIVERED;
    cache_put(g, t, e, m, 0);
    push(g, t, m, NULL, false);
    lazy_push(g, t, id, 0, NULL);
    return 0;
}

/* ------------------------------------------------------------- messages */

static void send_prune(irohds_gossip *g, gossip_topic *t, gossip_peer *p)
{
    p->lazy = true;
    t->st.prunes++;
    gossip_send(g, t, &p->id, gossip_tx(g, IROHDS_GOSSIP_PRUNE));
}

static void send_graft(irohds_gossip *g, gossip_topic *t, const gossip_id *to, const uint8_t *id,
                       uint16_t round)
{
    irohds_gossip_msg *m = gossip_tx(g, IROHDS_GOSSIP_GRAFT);
    m->id = id;
    m->round = round;
    t->st.grafts++;
    gossip_send(g, t, to, m);
}

/* The content came `round` hops from its origin while an IHave promised it
 * in far fewer: take the announcer's link into the tree, prune the
 * sender's. */
static void optimize(irohds_gossip *g, gossip_topic *t, const gossip_id *sender, uint16_t round,
                     const gossip_missing *m)
{
    size_t best = 0;
    for (size_t i = 1; i < m->n_ann; i++)
        if (m->ann[i].round < m->ann[best].round)
            best = i;
    if (!m->n_ann || m->ann[best].round >= round ||
        round - m->ann[best].round < g->cfg.optimization_threshold)
        return;
    gossip_peer *a = gossip_hv_active(t, m->ann[best].peer.b);
    if (a && a->lazy) {
        a->lazy = false;
        send_graft(g, t, &a->id, NULL, m->ann[best].round);
    }
    gossip_peer *s = gossip_hv_active(t, sender->b);
    if (s)
        send_prune(g, t, s);
}

static void on_swarm_gossip(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                            const irohds_gossip_msg *m, gossip_seen *e)
{
    if (e && (e->flags & SEEN_SWARM)) {
        t->st.duplicates++;
        gossip_peer *p = gossip_hv_active(t, from->b);
        if (p)
            send_prune(g, t, p);
        return;
    }
    if (!e)
        e = seen_insert(g, t, m->id);
    bool deliver = !(e->flags & SEEN_DELIVERED);
    e->flags |= SEEN_SWARM | SEEN_DELIVERED;
    uint16_t round = m->round == UINT16_MAX ? m->round : (uint16_t)(m->round + 1);
    cache_put(g, t, e, m, round);
    push(g, t, gossip_msg(g, m->id, m->content, m->content_len, m->scope, round), from, false);
    lazy_push(g, t, m->id, round, from);
    uint32_t mi = missing_find(t, m->id);
    if (mi != GOSSIP_NIL) {
        optimize(g, t, from, round, &t->missing[mi]);
        missing_release(t, mi);
    }
    if (deliver)
        gossip_deliver(g, t, from, m);
}

static void on_gossip(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                      const irohds_gossip_msg *m)
{
    gossip_seen *e = seen_find(t, m->id);
    if (m->scope == IROHDS_GOSSIP_SCOPE_SWARM) {
        on_swarm_gossip(g, t, from, m, e);
        return;
    }
    if (e && (e->flags & SEEN_DELIVERED)) {
        t->st.duplicates++;
        return;
    }
    if (!e)
        e = seen_insert(g, t, m->id);
    e->flags |= SEEN_DELIVERED;
    gossip_deliver(g, t, from, m);
}

static void on_graft(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                     const irohds_gossip_msg *m)
{
    gossip_peer *p = gossip_hv_active(t, from->b);
    if (p)
        p->lazy = false;
    gossip_seen *e = m->id ? seen_find(t, m->id) : NULL;
    if (e && e->content) {
        irohds_gossip_msg *r = gossip_msg(g, e->id.b, e->content, e->len,
                                          IROHDS_GOSSIP_SCOPE_SWARM, e->round);
        gossip_send(g, t, from, r);
    }
}

static void on_ihave(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                     const irohds_gossip_msg *m)
{
    for (size_t i = 0; i < m->n_ihave; i++) {
        const uint8_t *id = m->ihave[i].id;
        if (seen_find(t, id))
            continue;
        uint32_t mi = missing_find(t, id);
        if (mi == GOSSIP_NIL)
            mi = missing_new(g, t, id);
        if (mi != GOSSIP_NIL)
            add_announcer(&t->missing[mi], from, m->ihave[i].round);
    }
}

void gossip_pt_handle(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                      const irohds_gossip_msg *m)
{
    gossip_peer *p;
    switch (m->kind) {
    case IROHDS_GOSSIP_GOSSIP:
        on_gossip(g, t, from, m);
        break;
    case IROHDS_GOSSIP_PRUNE:
        if ((p = gossip_hv_active(t, from->b)))
            p->lazy = true;
        break;
    case IROHDS_GOSSIP_GRAFT:
        on_graft(g, t, from, m);
        break;
    default:
        on_ihave(g, t, from, m);
    }
}

/* -------------------------------------------------- neighbours, timers */

void gossip_pt_neighbor_up(gossip_peer *p)
{
    p->lazy = false;
    p->q_len = 0;
}

/* Forget what peer announced: it cannot answer a graft any more. */
void gossip_pt_peer_gone(irohds_gossip *g, gossip_topic *t, const uint8_t *peer)
{
    for (uint32_t i = 0; t->n_missing && i < g->cfg.missing_capacity; i++) {
        gossip_missing *m = &t->missing[i];
        if (!m->list)
            continue;
        size_t k = 0;
        for (size_t j = 0; j < m->n_ann; j++)
            if (!gossip_id_eq(&m->ann[j].peer, peer))
                m->ann[k++] = m->ann[j];
        m->n_ann = (uint8_t)k;
        if (!k)
            missing_release(t, i);
    }
}

void gossip_pt_neighbor_down(irohds_gossip *g, gossip_topic *t, gossip_peer *p)
{
    free(p->q);
    p->q = NULL;
    p->q_len = 0;
    gossip_pt_peer_gone(g, t, p->id.b);
}

/* Graft the next announcer of m (and wait graft_timeout_2 for it), or give
 * the id up when none is left. */
static void graft_due(irohds_gossip *g, gossip_topic *t, uint32_t i)
{
    gossip_missing *m = &t->missing[i];
    list_unlink(t, i);
    if (!m->n_ann) {
        missing_release(t, i);
        return;
    }
    gossip_id peer = m->ann[0].peer;
    uint16_t round = m->ann[0].round;
    memmove(&m->ann[0], &m->ann[1], (size_t)(m->n_ann - 1) * sizeof m->ann[0]);
    m->n_ann--;
    gossip_peer *p = gossip_hv_active(t, peer.b);
    if (p)
        p->lazy = false;
    list_push(t, i, 2, g->now + g->cfg.graft_timeout_2_ms);
    send_graft(g, t, &peer, m->id.b, round);
}

void gossip_pt_timers(irohds_gossip *g, gossip_topic *t)
{
    for (int l = 0; l < 2; l++)
        while (t->graft[l].head != GOSSIP_NIL && t->missing[t->graft[l].head].graft_at <= g->now)
            graft_due(g, t, t->graft[l].head);
    if (t->dispatch_at && t->dispatch_at <= g->now) {
        t->dispatch_at = 0;
        for (size_t i = 0; i < t->n_slots; i++)
            if (t->peers[i].view == GOSSIP_ACTIVE && t->peers[i].q_len)
                flush(g, t, &t->peers[i]);
    }
    if (t->evict_at <= g->now) {
        t->evict_at = g->now + g->cfg.cache_evict_interval_ms;
        expire(g, t);
    }
}

uint64_t gossip_pt_deadline(const gossip_topic *t)
{
    uint64_t d = t->evict_at;
    if (t->dispatch_at && t->dispatch_at < d)
        d = t->dispatch_at;
    for (int l = 0; l < 2; l++)
        if (t->graft[l].head != GOSSIP_NIL && t->missing[t->graft[l].head].graft_at < d)
            d = t->missing[t->graft[l].head].graft_at;
    return d;
}
