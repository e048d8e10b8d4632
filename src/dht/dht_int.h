/*
 * dht/dht_int.h: private to src/dht (dht.h is the API).
 *
 * Who owns what:
 *   dht.c      the instance: PRNG, clock, the rpc table (our queries in
 *              flight), the outbound and event queues, per-source budgets,
 *              external-ip votes, periodic, receive, persistence
 *   query.c    answers to others' queries
 *   routing.c  the routing table (k-buckets split around our id)
 *   search.c   iterative lookups and their store phase
 *   storage.c  what we store for others: peers, BEP 44 items, tokens
 *   item.c     BEP 44 items; nodeid.c BEP 42; krpc.c, bencode.c, sha1.c
 *
 * Time: every entry point stores its now in d->now first; internals read
 * the clock from there.
 */
#ifndef IROHDS_DHT_INT_H
#define IROHDS_DHT_INT_H

#include "dht/dht.h"

/* ---------------------------------------------------------------- sha1 */

typedef struct dht_sha1_ctx {
    uint32_t h[5];
    uint64_t total;
    uint8_t buf[64];
    size_t fill;
} dht_sha1_ctx;

void dht_sha1_init(dht_sha1_ctx *c);
void dht_sha1_update(dht_sha1_ctx *c, const void *data, size_t len);
void dht_sha1_final(dht_sha1_ctx *c, uint8_t out[20]);

/* ----------------------------------------------------------------- ids */

/* Common prefix length of two ids in bits (160 when equal). */
unsigned dht_id_cpl(const uint8_t *a, const uint8_t *b);
/* <0 if a is closer to target than b (XOR metric), 0 if equal, >0. */
int dht_id_closer(const uint8_t *target, const uint8_t *a, const uint8_t *b);
bool dht_id_eq(const uint8_t *a, const uint8_t *b);

/* Our id is allowed for ip, or ip is local; else the node is "wrong". */
bool dht_id_ok(const uint8_t *id, const irohds_dht_addr *a);
/* An address a node list may name: a unicast, non-zero ip and port. */
bool dht_addr_usable(const irohds_dht_addr *a);

/* ---------------------------------------------------------------- PRNG */

typedef struct dht_rng {
    uint8_t key[32];
    uint64_t counter;
    uint8_t pool[64];
    size_t avail;
} dht_rng;

void dht_rng_bytes(dht_rng *r, void *out, size_t n);
uint32_t dht_rng_below(dht_rng *r, uint32_t n); /* uniform in [0, n), n > 0 */

/* ------------------------------------------------------------- routing */

#define DHT_GOOD_MS (15 * 60 * 1000ull) /* BEP 5: good if replied within 15 min */
#define DHT_BAD_FAILS 3                 /* unanswered queries in a row */
#define DHT_MAX_BUCKETS 160

typedef struct rt_node {
    uint8_t id[IROHDS_DHT_ID_LEN];
    irohds_dht_addr addr;
    uint64_t last_reply; /* times + 1 (0: never): it last answered us */
    uint64_t last_query; /* it last sent us a query */
    uint64_t pinged_at;  /* our last liveness ping */
    uint8_t fails;       /* queries unanswered in a row */
    bool replied_ever;   /* in this run or a saved one */
    bool id_ok;          /* BEP 42: the id fits the ip (or the ip is local) */
} rt_node;

typedef struct rt_bucket {
    rt_node n[IROHDS_DHT_K];
    unsigned count;
    rt_node repl[IROHDS_DHT_K]; /* replacements, newest last */
    unsigned nrepl;
    uint64_t changed; /* a node joined or answered */
} rt_bucket;

/* Bucket i < nb - 1 holds the ids sharing exactly i leading bits with
 * ours; the last one all that share nb - 1 or more (it is the one split).
 * The array grows on splits (cap, at most DHT_MAX_BUCKETS): a table
 * typically has some 20 buckets, not 160. */
typedef struct rt_table {
    uint8_t self[IROHDS_DHT_ID_LEN];
    unsigned nb, cap;
    rt_bucket *b;
} rt_table;

enum { RT_QUERIED = 1, RT_REPLIED = 2 };
enum { RT_GOOD, RT_QUESTIONABLE, RT_BAD };

typedef struct irohds_dht irohds_dht;

int rt_init(rt_table *rt, const uint8_t self[IROHDS_DHT_ID_LEN]); /* 0 or -ENOMEM */
void rt_free(rt_table *rt);
int rt_state(const rt_node *n, uint64_t now);
rt_node *rt_find(rt_table *rt, const uint8_t *id);
/* A node sent us a query (RT_QUERIED) or answered one (RT_REPLIED). */
void rt_seen(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a, int how);
/* A node named in a reply: pinged when its bucket has room. */
void rt_heard(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a);
/* A query to a failed (timed out). */
void rt_failed(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a);
/* The node at a answered with another id: id is no longer there (bad). */
void rt_gone(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a);
/* Up to max nodes closest to target: good ones, then questionable ones
 * that answered us once.  Returns how many. */
size_t rt_closest(const rt_table *rt, uint64_t now, const uint8_t *target, irohds_dht_node *out,
                  size_t max);
/* Liveness pings, replacement of bad nodes, refresh of stale buckets. */
void rt_maintain(irohds_dht *d);
/* Our id changed: the same nodes, split around the new id. */
void rt_rebuild(irohds_dht *d, const uint8_t new_id[IROHDS_DHT_ID_LEN]);
/* Insert a node restored from disk (not confirmed in this run). */
void rt_restore(irohds_dht *d, const irohds_dht_node *n);
void rt_count(const rt_table *rt, uint64_t now, size_t *good, size_t *q, size_t *bad,
              size_t *repl);
/* The nodes that are not bad and answered us once, in table order.
 * Returns how many. */
size_t rt_nodes(const rt_table *rt, uint64_t now, irohds_dht_node *out, size_t max);

/* ----------------------------------------------------------------- rpc */

enum rpc_kind { RPC_PING, RPC_FIND_NODE, RPC_GET_PEERS, RPC_ANNOUNCE, RPC_GET, RPC_PUT };

#define DHT_TID_LEN 6 /* 2 bytes of rpc slot, 4 random */

/* A query of ours awaiting its answer. */
typedef struct dht_rpc {
    bool used;
    uint8_t kind;
    uint8_t tid[DHT_TID_LEN];
    irohds_dht_addr to;
    bool id_known;
    uint8_t id[IROHDS_DHT_ID_LEN];
    uint32_t search; /* 0: none (a ping, a refresh) */
    uint64_t deadline;
} dht_rpc;

/* Send a query (q: its method and arguments; t, id and the envelope are
 * filled here).  id: the node's id if known.  -EBUSY when max_rpcs queries
 * are in flight, -ENOBUFS when the queue is full. */
int dht_query(irohds_dht *d, int kind, const irohds_dht_addr *to, const uint8_t *id,
              uint32_t search, irohds_dht_msg *q);
/* Is a query to this address already in flight? */
bool dht_rpc_pending(const irohds_dht *d, const irohds_dht_addr *to);
/* Queue a datagram for to (copied).  -ENOBUFS when the queue is full. */
int dht_send(irohds_dht *d, const irohds_dht_addr *to, const uint8_t *buf, size_t len);
/* Queue an event; mem (malloc'd, may be NULL) is freed with it. */
void dht_event(irohds_dht *d, const irohds_dht_event *ev, void *mem);
/* Forget the queued events of a search (cancelled). */
void dht_event_drop(irohds_dht *d, uint32_t handle);
/* d->now = max(d->now, now_ms): the core's clock never goes back. */
void dht_clock(irohds_dht *d, uint64_t now_ms);
/* May we send len bytes of reply to a (per-destination byte budget)? */
bool dht_reply_budget(irohds_dht *d, const irohds_dht_addr *a, size_t len);

/* -------------------------------------------------------------- search */

#define DHT_SEARCH_CANDS 32

enum search_kind { SK_FIND_NODE, SK_GET_PEERS, SK_ANNOUNCE, SK_GET_IMM, SK_GET_MUT, SK_PUT };
enum cand_state { C_NEW, C_INFLIGHT, C_REPLIED, C_FAILED };
enum store_state { ST_NONE, ST_SENT, ST_OK, ST_FAILED };

typedef struct dht_cand {
    uint8_t id[IROHDS_DHT_ID_LEN];
    bool id_known; /* routers and restored seeds are queried without */
    irohds_dht_addr addr;
    uint8_t state, store;
    bool id_ok;
    bool has_item; /* it returned the item (or its seq) */
    int64_t item_seq;
    uint8_t token_len;
    uint8_t token[IROHDS_DHT_TOKEN_MAX];
} dht_cand;

typedef struct dht_search {
    uint32_t handle;
    uint8_t kind;
    bool internal; /* ours (bootstrap, refresh): no events */
    bool storing;  /* in the store phase */
    uint8_t target[IROHDS_DHT_ID_LEN];
    uint64_t started;
    dht_cand c[DHT_SEARCH_CANDS]; /* closest first */
    unsigned n;
    unsigned replies;
    uint16_t port; /* announce */
    bool implied_port;
    bool timed_out;
    /* get_mutable, put */
    uint8_t k[IROHDS_DHT_KEY_LEN];
    uint8_t salt[IROHDS_DHT_MAX_SALT];
    size_t salt_len;
    bool has_seq;
    int64_t seq;
    /* put: the item (v owned) */
    uint8_t *v;
    size_t v_len;
    bool is_mutable;
    uint8_t sig[IROHDS_DHT_SIG_LEN];
    bool has_cas;
    int64_t cas;
    /* results */
    bool found;
    int64_t best_seq, seen_seq;
    int last_error;
    irohds_dht_addr *peers; /* peers reported so far (deduplication) */
    size_t n_peers, cap_peers;
} dht_search;

dht_search *search_find(irohds_dht *d, uint32_t handle);
/* Start a search of kind on target (s->... filled by the caller after). */
int search_new(irohds_dht *d, int kind, const uint8_t target[IROHDS_DHT_ID_LEN], bool internal,
               dht_search **out);
/* Seed it from the table and routers and send the first queries. */
void search_begin(irohds_dht *d, dht_search *s);
void search_reply(irohds_dht *d, dht_rpc *r, const irohds_dht_msg *m);
void search_error(irohds_dht *d, dht_rpc *r, const irohds_dht_msg *m);
void search_timeout(irohds_dht *d, dht_rpc *r);
/* Stop searches that ran out of time; step the others. */
void search_periodic(irohds_dht *d);
void search_remove(irohds_dht *d, dht_search *s);
uint64_t search_deadline(const irohds_dht *d);

/* ------------------------------------------------------------- storage */

#define DHT_TOKEN_LEN 8

typedef struct dht_peer {
    irohds_dht_addr addr;
    uint64_t at;
} dht_peer;

typedef struct dht_torrent {
    uint8_t ih[IROHDS_DHT_ID_LEN];
    dht_peer *p;
    unsigned n;
    uint64_t newest;
} dht_torrent;

typedef struct dht_stored {
    uint8_t target[IROHDS_DHT_ID_LEN];
    bool is_mutable;
    uint8_t k[IROHDS_DHT_KEY_LEN];
    uint8_t sig[IROHDS_DHT_SIG_LEN];
    int64_t seq;
    uint8_t salt[IROHDS_DHT_MAX_SALT];
    size_t salt_len;
    size_t v_len;
    uint64_t at;
    uint8_t v[];
} dht_stored;

typedef struct dht_storage {
    dht_torrent **t; /* sorted by info-hash */
    size_t nt;
    dht_stored **it; /* sorted by target */
    size_t ni;
    uint8_t secret[2][16]; /* current, previous */
    uint64_t rotated, expired;
} dht_storage;

int st_init(irohds_dht *d);
void st_free(dht_storage *st);
void st_token(const irohds_dht *d, const irohds_dht_addr *a, const uint8_t *target,
              uint8_t out[DHT_TOKEN_LEN]);
bool st_token_ok(const irohds_dht *d, const irohds_dht_addr *a, const uint8_t *target,
                 const uint8_t *tok, size_t len);
void st_announce(irohds_dht *d, const uint8_t *ih, const irohds_dht_addr *peer);
/* Up to max peers of ih, newest first.  Returns how many. */
size_t st_peers(const irohds_dht *d, const uint8_t *ih, irohds_dht_addr *out, size_t max);
/* Up to max stored info-hashes (20 bytes each), consecutive from a random
 * one (BEP 51 samples); returns how many. */
size_t st_sample(irohds_dht *d, uint8_t *out, size_t max);
/* Store a checked item: 0, or the BEP 44 error code (301, 302). */
int st_put(irohds_dht *d, const irohds_dht_item *it, const uint8_t target[IROHDS_DHT_ID_LEN],
           bool has_cas, int64_t cas);
const dht_stored *st_get(const irohds_dht *d, const uint8_t *target);
/* Token rotation and expiry. */
void st_periodic(irohds_dht *d);
size_t st_peer_count(const dht_storage *st);

/* --------------------------------------------------------------- query */

/* Answer a query from `from` (already rate-checked). */
void dht_answer(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from);

/* ------------------------------------------------------------ instance */

#define DHT_MAX_ROUTERS 16
#define DHT_VOTES 8
#define DHT_VOTERS 32
#define DHT_VOTE_QUORUM 5
#define DHT_VERSION "IR\x00\x01" /* our "v": client IR, version 0.1 */

typedef struct dht_bucket {
    int64_t milli; /* tokens x 1000 */
    uint64_t at;
} dht_bucket;

typedef struct dht_src {
    bool used;
    uint8_t ip[16];
    uint64_t last;
    dht_bucket pkts, bytes;
} dht_src;

typedef struct dht_out {
    uint8_t *buf;
    size_t len;
    irohds_dht_addr to;
} dht_out;

typedef struct dht_ev {
    irohds_dht_event ev;
    void *mem;
} dht_ev;

struct irohds_dht {
    irohds_dht_config cfg;
    uint8_t id[IROHDS_DHT_ID_LEN];
    uint64_t now;
    dht_rng rng;
    rt_table rt;
    dht_rpc *rpc; /* cfg.max_rpcs slots */
    size_t n_rpc;
    dht_search **s;
    size_t ns;
    uint32_t next_handle;
    dht_storage st;
    irohds_dht_addr routers[DHT_MAX_ROUTERS];
    size_t n_routers;
    /* budgets */
    dht_src *src;
    uint8_t src_key[16];
    dht_bucket global;
    /* queues */
    dht_out *outq;
    size_t out_head, out_n;
    uint8_t *out_cur;
    dht_ev *evq;
    size_t ev_head, ev_n;
    void *ev_cur;
    /* timers */
    uint64_t next_tick;     /* housekeeping, once a second */
    uint64_t self_lookup_at; /* next lookup of our own id */
    uint64_t bootstrap_wait; /* backoff while the table stays poor */
    uint32_t self_lookup;   /* handle of the running one, or 0 */
    unsigned heard_budget;  /* pings of nodes named in replies, per tick */
    /* BEP 42 votes on our external ip */
    struct dht_vote {
        uint8_t ip[16];
        unsigned count;
    } votes[DHT_VOTES];
    uint8_t voters[DHT_VOTERS][16];
    size_t n_voters;
    bool has_external;
    uint8_t external[16];
    irohds_dht_stats stats;
};

size_t dht_ip_len(const irohds_dht *d);
/* Start a lookup of our own id (bootstrap and neighbourhood upkeep). */
void dht_self_lookup(irohds_dht *d);

#endif
