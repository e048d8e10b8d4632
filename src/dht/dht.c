/*
 * dht/dht.c: the node instance: what comes in (receive), what goes out
 * (the datagram and event queues), our queries in flight, time (periodic),
 * budgets, BEP 42 votes and persistence.  The protocol work is elsewhere:
 * query.c answers, routing.c keeps the table, search.c runs lookups,
 * storage.c keeps what others stored.
 *
 * Queries in flight live in a table of max_rpcs slots; a transaction id is
 * the slot (2 bytes) and 4 random bytes, and a reply counts only if it
 * comes from the address the query went to with the exact id: a blind
 * spoofer has to guess 32 bits.  A reply that matches nothing is dropped
 * and counted, never answered.
 *
 * Budgets, per source ip (a keyed hash table of src_slots entries, the
 * stalest of 8 probed entries evicted): queries in packets per second,
 * replies in bytes per second; plus a global query budget.  Replies to our
 * own queries are not rate limited: we asked for them.
 *
 * BEP 42: the "ip" field of replies is a vote on our external address;
 * DHT_VOTE_QUORUM distinct voters agreeing make it ours (an event).  With
 * follow_external_ip our id is then re-derived from it if it does not fit,
 * and the table re-sorted around the new id.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dht/dht_int.h"

#define TICK_MS 1000ull
#define HEARD_PER_TICK 32
#define BOOTSTRAP_MIN_MS 5000ull
#define BOOTSTRAP_MAX_MS (5 * 60 * 1000ull)
#define SELF_LOOKUP_MS (15 * 60 * 1000ull)
#define SAVE_MAGIC "IRDH"
#define SAVE_HEADER 28 /* magic 4, version 1, family 1, id 20, count 2 */

/* ============================================================ config */

void irohds_dht_config_default(irohds_dht_config *c)
{
    memset(c, 0, sizeof *c);
    c->family = AF_INET;
    c->follow_external_ip = true;
    c->alpha = 3;
    c->max_searches = 32;
    c->rpc_timeout_ms = 2000;
    c->search_timeout_ms = 60000;
    c->max_rpcs = 1024;
    c->max_torrents = 2000;
    c->max_peers = 100;
    c->peer_ttl_ms = 2 * 3600 * 1000ull;
    c->max_items = 1000;
    c->item_ttl_ms = 2 * 3600 * 1000ull;
    c->max_values_reply = 32;
    c->token_rotate_ms = 5 * 60 * 1000ull;
    c->src_rate = 20;
    c->src_burst = 100;
    c->src_bytes_rate = 8192;
    c->src_bytes_burst = 32768;
    c->global_rate = 1000;
    c->global_burst = 2000;
    c->src_slots = 1024;
    c->max_queue = 4096;
    c->max_events = 4096;
}

static bool config_ok(const irohds_dht_config *c)
{
    return (c->family == AF_INET || c->family == AF_INET6) && c->alpha >= 1 && c->alpha <= 8 &&
           c->max_searches >= 1 && c->max_searches <= 4096 && c->rpc_timeout_ms >= 1 &&
           c->search_timeout_ms >= c->rpc_timeout_ms && c->max_rpcs >= 1 &&
           c->max_rpcs <= 65535 && c->max_torrents >= 1 && c->max_peers >= 1 &&
           c->max_items >= 1 && c->max_values_reply <= IROHDS_DHT_MAX_VALUES &&
           c->token_rotate_ms >= 1 && c->src_rate >= 1 && c->src_burst >= 1 &&
           c->src_bytes_rate >= 1 && c->src_bytes_burst >= 1 && c->global_rate >= 1 &&
           c->global_burst >= 1 && c->src_burst <= 1000000 && c->src_bytes_burst <= 100000000 &&
           c->global_burst <= 1000000 && c->src_rate <= 1000000 && c->src_bytes_rate <= 100000000 &&
           c->global_rate <= 1000000 && c->max_queue >= 1 && c->max_events >= 1 &&
           c->src_slots >= 8 && c->src_slots <= (1u << 20);
}

/* ============================================================== PRNG */

/* ChaCha20 keyed by the seed, one 64-byte block per counter value. */
void dht_rng_bytes(dht_rng *r, void *out, size_t n)
{
    uint8_t *p = out;
    while (n) {
        if (r->avail == 0) {
            uint8_t nonce[crypto_stream_chacha20_ietf_NONCEBYTES] = {0};
            for (int i = 0; i < 8; i++)
                nonce[i] = (uint8_t)(r->counter >> (8 * i));
            r->counter++;
            crypto_stream_chacha20_ietf(r->pool, sizeof r->pool, nonce, r->key);
            r->avail = sizeof r->pool;
        }
        size_t take = n < r->avail ? n : r->avail;
        memcpy(p, r->pool + sizeof r->pool - r->avail, take);
        r->avail -= take, p += take, n -= take;
    }
}

uint32_t dht_rng_below(dht_rng *r, uint32_t n)
{
    uint32_t limit = UINT32_MAX - UINT32_MAX % n, x;
    do
        dht_rng_bytes(r, &x, sizeof x);
    while (x >= limit);
    return x % n;
}

size_t dht_ip_len(const irohds_dht *d)
{
    return d->cfg.family == AF_INET ? 4 : 16;
}

/* ======================================================== new / free */

/* A fresh id: BEP 42 for a non-local ip, else random. */
static void make_id(irohds_dht *d, const uint8_t *ip)
{
    uint8_t r[IROHDS_DHT_ID_LEN + 1];
    dht_rng_bytes(&d->rng, r, sizeof r);
    if (ip && !irohds_dht_ip_is_local(d->cfg.family, ip))
        irohds_dht_id_from_ip(d->id, d->cfg.family, ip, r[IROHDS_DHT_ID_LEN], r);
    else
        memcpy(d->id, r, IROHDS_DHT_ID_LEN);
}

static int alloc_tables(irohds_dht *d)
{
    if (rt_init(&d->rt, d->id))
        return -ENOMEM;
    d->rpc = calloc(d->cfg.max_rpcs, sizeof *d->rpc);
    d->s = calloc(d->cfg.max_searches, sizeof *d->s);
    d->src = calloc(d->cfg.src_slots, sizeof *d->src);
    d->outq = calloc(d->cfg.max_queue, sizeof *d->outq);
    d->evq = calloc(d->cfg.max_events, sizeof *d->evq);
    if (!d->rpc || !d->s || !d->src || !d->outq || !d->evq)
        return -ENOMEM;
    return st_init(d);
}

int irohds_dht_new(irohds_dht **out, const irohds_dht_config *cfg)
{
    *out = NULL;
    if (sodium_init() < 0)
        return -EIO;
    irohds_dht_config c;
    if (cfg) {
        c = *cfg;
    } else {
        irohds_dht_config_default(&c);
        randombytes_buf(c.seed, sizeof c.seed);
    }
    if (!config_ok(&c))
        return -EINVAL;
    irohds_dht *d = calloc(1, sizeof *d);
    if (!d)
        return -ENOMEM;
    d->cfg = c;
    memcpy(d->rng.key, c.seed, sizeof d->rng.key);
    if (c.has_id)
        memcpy(d->id, c.id, IROHDS_DHT_ID_LEN);
    else
        make_id(d, c.has_external ? c.external_ip : NULL);
    d->has_external = c.has_external;
    memcpy(d->external, c.external_ip, sizeof d->external);
    dht_rng_bytes(&d->rng, d->src_key, sizeof d->src_key);
    d->global.milli = (int64_t)c.global_burst * 1000;
    d->bootstrap_wait = BOOTSTRAP_MIN_MS;
    d->heard_budget = HEARD_PER_TICK;
    int rc = alloc_tables(d);
    if (rc) {
        irohds_dht_free(d);
        return rc;
    }
    *out = d;
    return 0;
}

void irohds_dht_free(irohds_dht *d)
{
    if (!d)
        return;
    while (d->ns)
        search_remove(d, d->s[d->ns - 1]);
    st_free(&d->st);
    rt_free(&d->rt);
    for (size_t i = 0; d->outq && i < d->out_n; i++)
        free(d->outq[(d->out_head + i) % d->cfg.max_queue].buf);
    for (size_t i = 0; d->evq && i < d->ev_n; i++)
        free(d->evq[(d->ev_head + i) % d->cfg.max_events].mem);
    free(d->out_cur);
    free(d->ev_cur);
    free(d->rpc);
    free(d->s);
    free(d->src);
    free(d->outq);
    free(d->evq);
    free(d);
}

const uint8_t *irohds_dht_id(const irohds_dht *d)
{
    return d->id;
}

/* ============================================================= clock */

/* Time never goes back inside the node.  A caller that reads its clock once
 * per turn and starts a search with a fresher reading than the one it then
 * hands to periodic (the daemon did) would otherwise make now - started
 * wrap around: every search begun that turn timed out at once. */
void dht_clock(irohds_dht *d, uint64_t now_ms)
{
    if (now_ms > d->now)
        d->now = now_ms;
}

/* ============================================================ queues */

int dht_send(irohds_dht *d, const irohds_dht_addr *to, const uint8_t *buf, size_t len)
{
    if (d->out_n == d->cfg.max_queue) {
        d->stats.dropped_queue++;
        return -ENOBUFS;
    }
    uint8_t *copy = malloc(len);
    if (!copy) {
        d->stats.dropped_queue++;
        return -ENOBUFS;
    }
    memcpy(copy, buf, len);
    dht_out *o = &d->outq[(d->out_head + d->out_n++) % d->cfg.max_queue];
    o->buf = copy;
    o->len = len;
    o->to = *to;
    d->stats.packets_out++;
    d->stats.bytes_out += len;
    return 0;
}

bool irohds_dht_next_packet(irohds_dht *d, irohds_dht_packet *p)
{
    free(d->out_cur);
    d->out_cur = NULL;
    if (d->out_n == 0)
        return false;
    dht_out *o = &d->outq[d->out_head];
    d->out_head = (d->out_head + 1) % d->cfg.max_queue;
    d->out_n--;
    d->out_cur = o->buf;
    p->buf = o->buf;
    p->len = o->len;
    p->tolen = irohds_dht_addr_to_sockaddr(&o->to, &p->to);
    return true;
}

void dht_event(irohds_dht *d, const irohds_dht_event *ev, void *mem)
{
    if (d->ev_n == d->cfg.max_events) {
        d->stats.dropped_queue++;
        free(mem);
        return;
    }
    dht_ev *e = &d->evq[(d->ev_head + d->ev_n++) % d->cfg.max_events];
    e->ev = *ev;
    e->mem = mem;
}

void dht_event_drop(irohds_dht *d, uint32_t handle)
{
    for (size_t i = 0; i < d->ev_n; i++) {
        dht_ev *e = &d->evq[(d->ev_head + i) % d->cfg.max_events];
        if (e->ev.type != 0 && e->ev.handle == handle) {
            free(e->mem);
            e->mem = NULL;
            e->ev.type = 0;
        }
    }
}

bool irohds_dht_next_event(irohds_dht *d, irohds_dht_event *ev)
{
    free(d->ev_cur);
    d->ev_cur = NULL;
    while (d->ev_n) {
        dht_ev *e = &d->evq[d->ev_head];
        d->ev_head = (d->ev_head + 1) % d->cfg.max_events;
        d->ev_n--;
        if (e->ev.type == 0)
            continue; /* dropped by cancel */
        d->ev_cur = e->mem;
        *ev = e->ev;
        return true;
    }
    return false;
}

/* ============================================================== rpcs */

static dht_rpc *rpc_slot(irohds_dht *d)
{
    for (size_t i = 0; i < d->cfg.max_rpcs; i++)
        if (!d->rpc[i].used)
            return &d->rpc[i];
    return NULL;
}

int dht_query(irohds_dht *d, int kind, const irohds_dht_addr *to, const uint8_t *id,
              uint32_t search, irohds_dht_msg *q)
{
    dht_rpc *r = d->n_rpc < d->cfg.max_rpcs ? rpc_slot(d) : NULL;
    if (!r)
        return -EBUSY;
    size_t slot = (size_t)(r - d->rpc);
    r->tid[0] = (uint8_t)(slot >> 8);
    r->tid[1] = (uint8_t)slot;
    dht_rng_bytes(&d->rng, r->tid + 2, DHT_TID_LEN - 2);
    q->y = 'q';
    q->t = r->tid;
    q->t_len = DHT_TID_LEN;
    q->id = d->id;
    q->version = (const uint8_t *)DHT_VERSION;
    q->version_len = 4;
    q->ro = d->cfg.read_only;
    uint8_t buf[IROHDS_DHT_MAX_PACKET];
    size_t len;
    int rc = irohds_dht_msg_encode(q, buf, sizeof buf, &len);
    if (rc == 0)
        rc = dht_send(d, to, buf, len);
    if (rc)
        return rc;
    r->used = true;
    r->kind = (uint8_t)kind;
    r->to = *to;
    r->id_known = id != NULL;
    if (id)
        memcpy(r->id, id, IROHDS_DHT_ID_LEN);
    r->search = search;
    r->deadline = d->now + d->cfg.rpc_timeout_ms;
    d->n_rpc++;
    return 0;
}

bool dht_rpc_pending(const irohds_dht *d, const irohds_dht_addr *to)
{
    for (size_t i = 0; i < d->cfg.max_rpcs; i++)
        if (d->rpc[i].used && irohds_dht_addr_eq(&d->rpc[i].to, to))
            return true;
    return false;
}

static dht_rpc *rpc_match(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from)
{
    if (m->t_len != DHT_TID_LEN)
        return NULL;
    size_t slot = (size_t)m->t[0] << 8 | m->t[1];
    if (slot >= d->cfg.max_rpcs)
        return NULL;
    dht_rpc *r = &d->rpc[slot];
    if (!r->used || memcmp(r->tid, m->t, DHT_TID_LEN) != 0 || !irohds_dht_addr_eq(&r->to, from))
        return NULL;
    return r;
}

static void rpc_done(irohds_dht *d, dht_rpc *r)
{
    r->used = false;
    d->n_rpc--;
}

static void expire_rpcs(irohds_dht *d)
{
    for (size_t i = 0; i < d->cfg.max_rpcs; i++) {
        dht_rpc *r = &d->rpc[i];
        if (!r->used || r->deadline > d->now)
            continue;
        d->stats.rpc_timeouts++;
        if (r->id_known)
            rt_failed(d, r->id, &r->to);
        if (r->search)
            search_timeout(d, r);
        rpc_done(d, r);
    }
}

/* =========================================================== budgets */

/* Token bucket in thousandths: refill rate per second, up to burst. */
static bool take(dht_bucket *b, uint64_t now, unsigned rate, unsigned burst, uint64_t amount)
{
    int64_t cap = (int64_t)burst * 1000;
    uint64_t elapsed = now > b->at ? now - b->at : 0;
    int64_t add = elapsed > 1000000000ull ? cap : (int64_t)(elapsed * rate);
    b->milli = b->milli + add > cap ? cap : b->milli + add;
    b->at = now;
    int64_t need = (int64_t)amount * 1000;
    if (b->milli < need)
        return false;
    b->milli -= need;
    return true;
}

static dht_src *src_get(irohds_dht *d, const irohds_dht_addr *a)
{
    size_t n = dht_ip_len(d);
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, a->ip, n, d->src_key);
    size_t slots = d->cfg.src_slots;
    size_t base = ((size_t)h[0] | (size_t)h[1] << 8 | (size_t)h[2] << 16) % slots;
    dht_src *victim = NULL;
    for (size_t i = 0; i < 8; i++) {
        dht_src *e = &d->src[(base + i) % slots];
        if (e->used && memcmp(e->ip, a->ip, n) == 0) {
            e->last = d->now;
            return e;
        }
        if (!victim || (victim->used && (!e->used || e->last < victim->last)))
            victim = e;
    }
    memset(victim, 0, sizeof *victim);
    victim->used = true;
    memcpy(victim->ip, a->ip, n);
    victim->last = d->now;
    victim->pkts = (dht_bucket){(int64_t)d->cfg.src_burst * 1000, d->now};
    victim->bytes = (dht_bucket){(int64_t)d->cfg.src_bytes_burst * 1000, d->now};
    return victim;
}

bool dht_reply_budget(irohds_dht *d, const irohds_dht_addr *a, size_t len)
{
    dht_src *s = src_get(d, a);
    return take(&s->bytes, d->now, d->cfg.src_bytes_rate, d->cfg.src_bytes_burst, len);
}

static bool query_budget(irohds_dht *d, const irohds_dht_addr *a)
{
    dht_src *s = src_get(d, a);
    return take(&s->pkts, d->now, d->cfg.src_rate, d->cfg.src_burst, 1) &&
           take(&d->global, d->now, d->cfg.global_rate, d->cfg.global_burst, 1);
}

/* ============================================================= votes */

static void adopt_external(irohds_dht *d, const uint8_t *ip)
{
    size_t n = dht_ip_len(d);
    if (d->has_external && memcmp(d->external, ip, n) == 0)
        return;
    d->has_external = true;
    memcpy(d->external, ip, n);
    irohds_dht_event ev = {.type = IROHDS_DHT_EV_EXTERNAL};
    ev.external.family = d->cfg.family;
    memcpy(ev.external.ip, ip, n);
    if (d->cfg.follow_external_ip && !irohds_dht_ip_is_local(d->cfg.family, ip) &&
        !irohds_dht_id_matches_ip(d->id, d->cfg.family, ip)) {
        make_id(d, ip);
        rt_rebuild(d, d->id);
        ev.id_changed = true;
    }
    dht_event(d, &ev, NULL);
}

static void vote(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from)
{
    irohds_dht_addr ext;
    size_t n = dht_ip_len(d);
    if (!m->ip || !irohds_dht_addr_parse(&ext, m->ip, m->ip_len) || ext.family != d->cfg.family)
        return;
    for (size_t i = 0; i < d->n_voters; i++)
        if (memcmp(d->voters[i], from->ip, n) == 0)
            return;
    memcpy(d->voters[d->n_voters++], from->ip, n);
    struct dht_vote *v = NULL;
    for (size_t i = 0; i < DHT_VOTES && !v; i++)
        if (d->votes[i].count && memcmp(d->votes[i].ip, ext.ip, n) == 0)
            v = &d->votes[i];
    for (size_t i = 0; i < DHT_VOTES && !v; i++)
        if (d->votes[i].count == 0)
            v = &d->votes[i];
    if (v) {
        memcpy(v->ip, ext.ip, n);
        v->count++;
    }
    if ((v && v->count >= DHT_VOTE_QUORUM) || d->n_voters == DHT_VOTERS) {
        if (v && v->count >= DHT_VOTE_QUORUM)
            adopt_external(d, ext.ip);
        memset(d->votes, 0, sizeof d->votes);
        d->n_voters = 0;
    }
}

/* =========================================================== receive */

static bool is_router(const irohds_dht *d, const irohds_dht_addr *a)
{
    for (size_t i = 0; i < d->n_routers; i++)
        if (irohds_dht_addr_eq(&d->routers[i], a))
            return true;
    return false;
}

static void on_query(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from)
{
    if (!query_budget(d, from)) {
        d->stats.dropped_rate++;
        return;
    }
    d->stats.queries_in++;
    if (d->cfg.read_only)
        return;
    if (!m->ro && !is_router(d, from))
        rt_seen(d, m->id, from, RT_QUERIED);
    dht_answer(d, m, from);
}

/* Nodes a reply names may join the table (routing.c pings them first). */
static void heard_nodes(irohds_dht *d, const irohds_dht_msg *m)
{
    irohds_dht_node ns[32];
    bool v4 = d->cfg.family == AF_INET;
    size_t n = irohds_dht_nodes_parse(v4 ? m->nodes : m->nodes6, v4 ? m->nodes_len : m->nodes6_len,
                                      d->cfg.family, ns, 32);
    for (size_t i = 0; i < n; i++)
        rt_heard(d, ns[i].id, &ns[i].addr);
}

static void on_reply(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from)
{
    dht_rpc *r = rpc_match(d, m, from);
    if (!r) {
        d->stats.dropped_unsolicited++;
        return;
    }
    if (m->y == 'e') {
        d->stats.errors_in++;
        if (r->search)
            search_error(d, r, m);
        rpc_done(d, r);
        return;
    }
    d->stats.replies_in++;
    if (r->id_known && !dht_id_eq(r->id, m->id))
        rt_gone(d, r->id, from); /* that address now answers with another id */
    if (!is_router(d, from))
        rt_seen(d, m->id, from, RT_REPLIED);
    vote(d, m, from);
    if (r->search)
        search_reply(d, r, m);
    heard_nodes(d, m); /* after the search: a node it asks is not pinged too */
    rpc_done(d, r);
}

int irohds_dht_receive(irohds_dht *d, uint64_t now_ms, const void *buf, size_t len,
                       const struct sockaddr *from, socklen_t fromlen)
{
    irohds_dht_addr a;
    irohds_dht_msg m;
    dht_clock(d, now_ms);
    if (irohds_dht_addr_from_sockaddr(&a, from, fromlen) || a.family != d->cfg.family)
        return -EAFNOSUPPORT;
    d->stats.packets_in++;
    d->stats.bytes_in += len;
    if (len > IROHDS_DHT_MAX_PACKET) {
        d->stats.dropped_oversize++;
        return 0;
    }
    if (!dht_addr_usable(&a) || irohds_dht_msg_decode(&m, buf, len) != 0) {
        d->stats.dropped_malformed++;
        return 0;
    }
    if (m.y == 'q')
        on_query(d, &m, &a);
    else
        on_reply(d, &m, &a);
    return 0;
}

/* ========================================================== periodic */

void dht_self_lookup(irohds_dht *d)
{
    dht_search *s;
    if (search_new(d, SK_FIND_NODE, d->id, true, &s) != 0)
        return;
    d->self_lookup = s->handle;
    search_begin(d, s);
}

/* Look ourselves up: at once and with a growing backoff while the table
 * has fewer than k good nodes, every 15 min once it is healthy. */
static void upkeep(irohds_dht *d)
{
    size_t good, q, bad, repl;
    rt_count(&d->rt, d->now, &good, &q, &bad, &repl);
    if (good >= IROHDS_DHT_K)
        d->bootstrap_wait = BOOTSTRAP_MIN_MS;
    if (d->self_lookup || d->now < d->self_lookup_at || (good + q == 0 && d->n_routers == 0))
        return;
    dht_self_lookup(d);
    if (good < IROHDS_DHT_K) {
        d->self_lookup_at = d->now + d->bootstrap_wait;
        d->bootstrap_wait = 2 * d->bootstrap_wait < BOOTSTRAP_MAX_MS ? 2 * d->bootstrap_wait
                                                                      : BOOTSTRAP_MAX_MS;
    } else {
        d->self_lookup_at = d->now + SELF_LOOKUP_MS;
    }
}

uint64_t irohds_dht_periodic(irohds_dht *d, uint64_t now_ms)
{
    dht_clock(d, now_ms);
    expire_rpcs(d);
    search_periodic(d);
    if (d->now >= d->next_tick) {
        d->next_tick = d->now + TICK_MS;
        d->heard_budget = HEARD_PER_TICK;
        st_periodic(d);
        rt_maintain(d);
        upkeep(d);
    }
    return irohds_dht_next_deadline(d);
}

uint64_t irohds_dht_next_deadline(const irohds_dht *d)
{
    uint64_t t = d->next_tick;
    for (size_t i = 0; i < d->cfg.max_rpcs; i++)
        if (d->rpc[i].used && d->rpc[i].deadline < t)
            t = d->rpc[i].deadline;
    uint64_t s = search_deadline(d);
    return s < t ? s : t;
}

/* ====================================================== nodes, pings */

int irohds_dht_add_router(irohds_dht *d, const struct sockaddr *sa, socklen_t len)
{
    irohds_dht_addr a;
    if (irohds_dht_addr_from_sockaddr(&a, sa, len) || a.family != d->cfg.family)
        return -EAFNOSUPPORT;
    if (is_router(d, &a))
        return 0;
    if (d->n_routers == DHT_MAX_ROUTERS)
        return -ENOSPC;
    d->routers[d->n_routers++] = a;
    return 0;
}

int irohds_dht_ping(irohds_dht *d, uint64_t now_ms, const struct sockaddr *sa, socklen_t len)
{
    irohds_dht_addr a;
    dht_clock(d, now_ms);
    if (irohds_dht_addr_from_sockaddr(&a, sa, len) || a.family != d->cfg.family)
        return -EAFNOSUPPORT;
    irohds_dht_msg q = {.method = IROHDS_DHT_M_PING};
    return dht_query(d, RPC_PING, &a, NULL, 0, &q);
}

size_t irohds_dht_nodes_get(const irohds_dht *d, const uint8_t *target, irohds_dht_node *out,
                            size_t max)
{
    if (target)
        return rt_closest(&d->rt, d->now, target, out, max);
    return rt_nodes(&d->rt, d->now, out, max);
}

void irohds_dht_stats_get(const irohds_dht *d, irohds_dht_stats *st)
{
    *st = d->stats;
    rt_count(&d->rt, d->now, &st->nodes_good, &st->nodes_questionable, &st->nodes_bad,
             &st->replacements);
    st->buckets = d->rt.nb;
    st->torrents = d->st.nt;
    st->peers = st_peer_count(&d->st);
    st->items = d->st.ni;
    st->searches = d->ns;
    st->rpcs_in_flight = d->n_rpc;
}

/* ======================================================= persistence */

static size_t node_size(sa_family_t family)
{
    return family == AF_INET ? 26 : 38;
}

int irohds_dht_save_nodes(const irohds_dht *d, void *buf, size_t cap, size_t *len)
{
    size_t max = DHT_MAX_BUCKETS * IROHDS_DHT_K;
    irohds_dht_node *ns = malloc(max * sizeof *ns);
    if (!ns)
        return -ENOMEM;
    size_t n = rt_nodes(&d->rt, d->now, ns, max), each = node_size(d->cfg.family);
    *len = SAVE_HEADER + n * each;
    if (*len > cap) {
        free(ns);
        return -ENOBUFS;
    }
    uint8_t *p = buf;
    memcpy(p, SAVE_MAGIC, 4);
    p[4] = 1;
    p[5] = d->cfg.family == AF_INET ? 4 : 6;
    memcpy(p + 6, d->id, IROHDS_DHT_ID_LEN);
    p[26] = (uint8_t)(n >> 8);
    p[27] = (uint8_t)n;
    p += SAVE_HEADER;
    for (size_t i = 0; i < n; i++, p += each) {
        memcpy(p, ns[i].id, IROHDS_DHT_ID_LEN);
        irohds_dht_addr_compact(&ns[i].addr, p + IROHDS_DHT_ID_LEN);
    }
    free(ns);
    return 0;
}

/* The header of a saved blob: its family, and its node count matching
 * the length exactly. */
static int saved_header(const uint8_t *p, size_t len, sa_family_t *family, size_t *count)
{
    if (len < SAVE_HEADER || memcmp(p, SAVE_MAGIC, 4) != 0 || p[4] != 1 || (p[5] != 4 && p[5] != 6))
        return -EBADMSG;
    *family = p[5] == 4 ? AF_INET : AF_INET6;
    *count = (size_t)p[26] << 8 | p[27];
    if (len != SAVE_HEADER + *count * node_size(*family))
        return -EBADMSG;
    return 0;
}

int irohds_dht_saved_id(const void *buf, size_t len, uint8_t id[IROHDS_DHT_ID_LEN])
{
    sa_family_t family;
    size_t count;
    int rc = saved_header(buf, len, &family, &count);
    if (rc == 0)
        memcpy(id, (const uint8_t *)buf + 6, IROHDS_DHT_ID_LEN);
    return rc;
}

int irohds_dht_load_nodes(irohds_dht *d, uint64_t now_ms, const void *buf, size_t len,
                          uint8_t saved_id[IROHDS_DHT_ID_LEN])
{
    const uint8_t *p = buf;
    sa_family_t family;
    size_t count;
    dht_clock(d, now_ms);
    int rc = saved_header(p, len, &family, &count);
    if (rc)
        return rc;
    if (family != d->cfg.family)
        return -EAFNOSUPPORT;
    if (saved_id)
        memcpy(saved_id, p + 6, IROHDS_DHT_ID_LEN);
    size_t each = node_size(family);
    for (size_t i = 0; i < count; i++) {
        irohds_dht_node n;
        irohds_dht_nodes_parse(p + SAVE_HEADER + i * each, each, family, &n, 1);
        rt_restore(d, &n);
    }
    d->self_lookup_at = d->now;
    return 0;
}
