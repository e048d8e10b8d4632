/*
 * gossip/gossip_int.h: private to src/gossip (gossip.h is the API).
 *
 * The instance, the per-topic state and the calls hyparview.c, plumtree.c
 * and gossip.c make into each other.  gossip.c owns the instance (topics,
 * action queue, PRNG, per-peer budgets); hyparview.c the peer records of a
 * topic (active and passive views, pending neighbour requests); plumtree.c
 * the broadcast tables (seen ids with the content cache, missing ids with
 * their graft timers, lazy IHave queues).
 *
 * Time: every entry point stores its now in g->now before doing anything,
 * so the internals read the clock from there.  Timers are deadlines kept in
 * the structures they belong to; next_deadline takes the minimum.
 */
#ifndef IROHDS_GOSSIP_INT_H
#define IROHDS_GOSSIP_INT_H

#include "gossip/gossip.h"

typedef struct gossip_id {
    uint8_t b[IROHDS_GOSSIP_ID_LEN];
} gossip_id;

static inline bool gossip_id_eq(const gossip_id *a, const uint8_t *b)
{
    for (size_t i = 0; i < IROHDS_GOSSIP_ID_LEN; i++)
        if (a->b[i] != b[i])
            return false;
    return true;
}

/* An open-addressing (linear probing) map from a 32-byte id to a nonzero
 * u32.  The ids live in the owner's array (id first in each element, at
 * base + (val - 1) * stride); the slots keep the value and the hash.  The
 * hash is keyed by a secret from the instance's PRNG, so peers cannot pick
 * ids that collide.  Used by plumtree.c for its two id tables. */
typedef struct gossip_index {
    struct gossip_slot {
        uint32_t val; /* 0 = empty */
        uint32_t h;
    } *e;
    size_t mask;
    uint64_t k0, k1;
    const uint8_t *base;
    size_t stride;
} gossip_index;

/* A queued IHave announcement. */
typedef struct gossip_ann {
    gossip_id id;
    uint16_t round;
} gossip_ann;

enum { GOSSIP_FREE = 0, GOSSIP_PASSIVE = 1, GOSSIP_ACTIVE = 2 };

/* A peer one topic knows: in a view, or asked to be a neighbour. */
typedef struct gossip_peer {
    gossip_id id;
    uint8_t view;       /* GOSSIP_FREE / _PASSIVE / _ACTIVE */
    bool pending;       /* our Neighbor awaits an answer until pending_at */
    bool alive_disc;    /* sent Disconnect { alive }: stays passive when its connection closes */
    bool lazy;          /* PlumTree: gets IHaves (lazy) rather than content (eager) */
    uint64_t pending_at;
    uint8_t *data;      /* its PeerData (has_data), malloc'd */
    size_t data_len;
    bool has_data;
    gossip_ann *q;      /* PlumTree lazy queue (active peers), malloc'd on first use */
    size_t q_len;
} gossip_peer;

/* A message id seen, with its content while it is cached. */
typedef struct gossip_seen {
    gossip_id id;
    uint64_t at;
    uint8_t *content; /* NULL when not (or no longer) cached */
    size_t len;
    uint16_t round;   /* the round we forward it with */
    uint8_t flags;
} gossip_seen;
enum { SEEN_SWARM = 1, SEEN_DELIVERED = 2 };

#define GOSSIP_MAX_ANN 8 /* announcers kept per missing id */
#define GOSSIP_NIL UINT32_MAX

/* An id announced by IHave and not received yet. */
typedef struct gossip_missing {
    gossip_id id;
    uint64_t graft_at;
    uint32_t prev, next; /* in timer list `list` (1 or 2), or the free list */
    uint8_t list;        /* 0 free, 1 first graft timeout, 2 second */
    uint8_t n_ann;
    struct {
        gossip_id peer;
        uint16_t round;
    } ann[GOSSIP_MAX_ANN];
} gossip_missing;

typedef struct gossip_list {
    uint32_t head, tail;
} gossip_list;

#define GOSSIP_BUDGET_SLOTS 64
typedef struct gossip_budget {
    gossip_id peer;
    bool used;
    uint64_t window; /* start of the current second */
    uint64_t msgs, bytes;
} gossip_budget;

typedef struct gossip_topic {
    gossip_id id;
    bool used;
    /* HyParView: peer records (hyparview.c) */
    gossip_peer *peers;
    gossip_peer **scratch; /* n_slots pointers for random picks */
    size_t n_slots, n_active, n_passive;
    uint64_t shuffle_at;
    /* PlumTree (plumtree.c) */
    gossip_seen *seen;        /* ring in insertion order */
    size_t seen_cap;
    uint64_t seen_first;      /* sequence number of the oldest entry */
    size_t seen_count;
    uint64_t cache_first;     /* no entry before this sequence number holds content */
    gossip_index seen_ix;
    gossip_missing *missing;  /* pool */
    uint32_t missing_free;
    size_t n_missing;
    gossip_list graft[2];     /* timer lists for the first and second graft timeout */
    gossip_index missing_ix;
    uint64_t dispatch_at;     /* 0: no lazy push queued */
    uint64_t evict_at;
    gossip_budget budget[GOSSIP_BUDGET_SLOTS];
    irohds_gossip_stats st;
} gossip_topic;

typedef struct gossip_act {
    struct gossip_act *next;
    irohds_gossip_action a;
    uint8_t data[];
} gossip_act;

struct irohds_gossip {
    gossip_id me;
    irohds_gossip_config cfg;
    uint64_t now;
    uint8_t *me_data; /* NULL: none */
    size_t me_data_len;
    uint64_t rng[4];
    uint64_t hk0, hk1;        /* index hash keys */
    size_t chunk_len;         /* IHaves per frame */
    gossip_topic *topics;     /* cfg.max_topics */
    gossip_act *q_head, *q_tail, *popped;
    size_t q_count, q_bytes;
    uint64_t dropped_actions;
    irohds_gossip_msg rx, tx; /* decoded input; message being built */
    uint8_t frame[IROHDS_GOSSIP_FRAME_HEADER + IROHDS_GOSSIP_MAX_MESSAGE_SIZE];
};

/* gossip.c */
uint64_t gossip_rand(irohds_gossip *g);
size_t gossip_rand_below(irohds_gossip *g, size_t n);
irohds_gossip_msg *gossip_tx(irohds_gossip *g, irohds_gossip_kind kind);
int gossip_send(irohds_gossip *g, gossip_topic *t, const gossip_id *to, const irohds_gossip_msg *m);
void gossip_send_frame(irohds_gossip *g, gossip_topic *t, const gossip_id *to, const uint8_t *frame,
                       size_t len, bool last);
void gossip_emit(irohds_gossip *g, irohds_gossip_action_type type, const gossip_topic *t,
                 const gossip_id *peer, const void *data, size_t len);
void gossip_disconnect(irohds_gossip *g, gossip_topic *t, const gossip_id *peer);
void gossip_deliver(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                    const irohds_gossip_msg *m);
static inline bool gossip_is_me(const irohds_gossip *g, const uint8_t *id)
{
    return gossip_id_eq(&g->me, id);
}

/* hyparview.c */
int gossip_hv_init(irohds_gossip *g, gossip_topic *t);
void gossip_hv_free(gossip_topic *t);
gossip_peer *gossip_hv_find(gossip_topic *t, const uint8_t *id);
gossip_peer *gossip_hv_active(gossip_topic *t, const uint8_t *id);
void gossip_hv_join(irohds_gossip *g, gossip_topic *t, const irohds_gossip_peer *peers, size_t n);
void gossip_hv_quit(irohds_gossip *g, gossip_topic *t);
void gossip_hv_handle(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                      const irohds_gossip_msg *m);
void gossip_hv_closed(irohds_gossip *g, gossip_topic *t, const uint8_t *peer);
void gossip_hv_timers(irohds_gossip *g, gossip_topic *t);
uint64_t gossip_hv_deadline(const gossip_topic *t);

/* plumtree.c */
int gossip_pt_init(irohds_gossip *g, gossip_topic *t);
void gossip_pt_free(gossip_topic *t);
int gossip_pt_broadcast(irohds_gossip *g, gossip_topic *t, const void *content, size_t len,
                        irohds_gossip_scope scope);
void gossip_pt_handle(irohds_gossip *g, gossip_topic *t, const gossip_id *from,
                      const irohds_gossip_msg *m);
int gossip_pt_forget(gossip_topic *t, const uint8_t *id);
void gossip_pt_neighbor_up(gossip_peer *p);
void gossip_pt_neighbor_down(irohds_gossip *g, gossip_topic *t, gossip_peer *p);
void gossip_pt_peer_gone(irohds_gossip *g, gossip_topic *t, const uint8_t *peer);
void gossip_pt_timers(irohds_gossip *g, gossip_topic *t);
uint64_t gossip_pt_deadline(const gossip_topic *t);

#endif
