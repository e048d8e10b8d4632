/*
 * dht/routing.c: the routing table (BEP 5): buckets of k = 8 nodes, split
 * only around our own id.
 *
 * Layout as libtorrent has it: bucket i (i < nb - 1) holds the nodes that
 * share exactly i leading bits with us, the last bucket every node sharing
 * nb - 1 bits or more.  Only the last bucket ever splits (its far half
 * stays, the near half becomes the new last), which is "split the bucket
 * that contains our id" without storing ranges.
 *
 * Node states (BEP 5): good = answered one of our queries in the last
 * 15 min, or answered once and queried us in the last 15 min; bad = 3
 * queries in a row unanswered; questionable otherwise.  A full bucket
 * takes a new node only in place of a bad one; otherwise the newcomer waits
 * in the bucket's replacement list and its least recently heard
 * questionable node is pinged, so a dead one turns bad and is replaced.
 * Nodes only named in others' replies are pinged first (when their bucket
 * has room) and join when they answer: a node list cannot fill our table
 * with addresses that never spoke to us.
 *
 * BEP 42: a non-local node whose id does not fit its ip is counted; with
 * enforce_node_id it is refused, otherwise it may take a free slot but
 * never pushes anyone out.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht_int.h"

#define PING_SPACING_MS 60000ull      /* between liveness pings of one node */
#define PINGS_PER_TICK 8              /* liveness pings per maintenance pass */
#define REFRESH_MS (15 * 60 * 1000ull) /* BEP 5: refresh a bucket idle 15 min */

#define FIRST_BUCKETS 8                /* allocated at first; doubled on splits */

int rt_init(rt_table *rt, const uint8_t self[IROHDS_DHT_ID_LEN])
{
    memset(rt, 0, sizeof *rt);
    rt->b = calloc(FIRST_BUCKETS, sizeof *rt->b);
    if (!rt->b)
        return -ENOMEM;
    rt->cap = FIRST_BUCKETS;
    memcpy(rt->self, self, IROHDS_DHT_ID_LEN);
    rt->nb = 1;
    return 0;
}

void rt_free(rt_table *rt)
{
    free(rt->b);
    rt->b = NULL;
}

/* Empty again, split around another id (the buckets stay allocated). */
static void rt_reset(rt_table *rt, const uint8_t self[IROHDS_DHT_ID_LEN])
{
    memset(rt->b, 0, rt->nb * sizeof *rt->b);
    memcpy(rt->self, self, IROHDS_DHT_ID_LEN);
    rt->nb = 1;
}

static unsigned bucket_of(const rt_table *rt, const uint8_t *id)
{
    unsigned cpl = dht_id_cpl(rt->self, id);
    return cpl < rt->nb - 1 ? cpl : rt->nb - 1;
}

int rt_state(const rt_node *n, uint64_t now)
{
    if (n->fails >= DHT_BAD_FAILS)
        return RT_BAD;
    if (n->last_reply && now + 1 - n->last_reply < DHT_GOOD_MS)
        return RT_GOOD;
    if (n->last_reply && n->last_query && now + 1 - n->last_query < DHT_GOOD_MS)
        return RT_GOOD;
    return RT_QUESTIONABLE;
}

static rt_node *find_in(rt_node *arr, unsigned n, const uint8_t *id)
{
    for (unsigned i = 0; i < n; i++)
        if (dht_id_eq(arr[i].id, id))
            return &arr[i];
    return NULL;
}

rt_node *rt_find(rt_table *rt, const uint8_t *id)
{
    rt_bucket *b = &rt->b[bucket_of(rt, id)];
    return find_in(b->n, b->count, id);
}

/* Times are stored +1 so that 0 can mean "never" on any clock. */
static void touch(rt_node *n, int how, uint64_t now)
{
    if (how == RT_REPLIED) {
        n->last_reply = now + 1;
        n->replied_ever = true;
        n->fails = 0;
    } else {
        n->last_query = now + 1;
    }
}

static void remove_at(rt_node *arr, unsigned *n, unsigned i)
{
    memmove(&arr[i], &arr[i + 1], (*n - i - 1) * sizeof arr[0]);
    (*n)--;
}

/* Newest last; the oldest leaves when full. */
static void repl_add(rt_bucket *b, const rt_node *n)
{
    rt_node *old = find_in(b->repl, b->nrepl, n->id);
    if (old)
        remove_at(b->repl, &b->nrepl, (unsigned)(old - b->repl));
    if (b->nrepl == IROHDS_DHT_K)
        remove_at(b->repl, &b->nrepl, 0);
    b->repl[b->nrepl++] = *n;
}

static bool splittable(const rt_table *rt, unsigned bi)
{
    return bi == rt->nb - 1 && rt->nb < DHT_MAX_BUCKETS;
}

static bool grow(rt_table *rt)
{
    unsigned cap = 2 * rt->cap < DHT_MAX_BUCKETS ? 2 * rt->cap : DHT_MAX_BUCKETS;
    rt_bucket *b = realloc(rt->b, cap * sizeof *b);
    if (!b)
        return false;
    rt->b = b;
    rt->cap = cap;
    return true;
}

/* Move what belongs nearer to us from the last bucket into a new one.
 * false: out of memory (the table stays as it was). */
static bool split_last(rt_table *rt)
{
    if (rt->nb == rt->cap && !grow(rt))
        return false;
    unsigned bi = rt->nb - 1;
    rt_bucket *old = &rt->b[bi], *nw = &rt->b[bi + 1];
    memset(nw, 0, sizeof *nw);
    nw->changed = old->changed;
    rt->nb++;
    for (unsigned i = 0; i < old->count;) {
        if (dht_id_cpl(rt->self, old->n[i].id) > bi) {
            nw->n[nw->count++] = old->n[i];
            remove_at(old->n, &old->count, i);
        } else {
            i++;
        }
    }
    for (unsigned i = 0; i < old->nrepl;) {
        if (dht_id_cpl(rt->self, old->repl[i].id) > bi) {
            nw->repl[nw->nrepl++] = old->repl[i];
            remove_at(old->repl, &old->nrepl, i);
        } else {
            i++;
        }
    }
    return true;
}

static int ping(irohds_dht *d, rt_node *n)
{
    irohds_dht_msg q = {.method = IROHDS_DHT_M_PING};
    n->pinged_at = d->now + 1;
    return dht_query(d, RPC_PING, &n->addr, n->id, 0, &q);
}

/* The questionable node heard from longest ago, if it was not pinged in
 * the last minute. */
static void ping_stalest(irohds_dht *d, rt_bucket *b)
{
    rt_node *pick = NULL;
    for (unsigned i = 0; i < b->count; i++) {
        rt_node *n = &b->n[i];
        if (rt_state(n, d->now) != RT_QUESTIONABLE)
            continue;
        if (n->pinged_at && d->now + 1 - n->pinged_at < PING_SPACING_MS)
            continue;
        uint64_t heard = n->last_reply > n->last_query ? n->last_reply : n->last_query;
        uint64_t best = pick ? (pick->last_reply > pick->last_query ? pick->last_reply
                                                                     : pick->last_query)
                             : UINT64_MAX;
        if (heard < best)
            pick = n;
    }
    if (pick)
        ping(d, pick);
}

static int find_bad(const rt_bucket *b, uint64_t now)
{
    for (unsigned i = 0; i < b->count; i++)
        if (rt_state(&b->n[i], now) == RT_BAD)
            return (int)i;
    return -1;
}

/* Same id, other address: keep the old one unless it is bad (nobody takes
 * over a live node's id by claiming it). */
static void update_known(irohds_dht *d, rt_bucket *b, rt_node *n, const irohds_dht_addr *a,
                         int how)
{
    if (!irohds_dht_addr_eq(&n->addr, a)) {
        if (rt_state(n, d->now) != RT_BAD)
            return;
        n->addr = *a;
        n->fails = 0;
    }
    touch(n, how, d->now);
    if (how == RT_REPLIED)
        b->changed = d->now;
}

/* Put a node that spoke to us where it belongs: its entry, a free slot (after
 * splits), a bad node's slot, or the replacement list (pinging the stalest
 * questionable node so a dead one makes way). */
static void place(irohds_dht *d, const rt_node *fresh, int how)
{
    rt_table *rt = &d->rt;
    for (;;) {
        unsigned bi = bucket_of(rt, fresh->id);
        rt_bucket *b = &rt->b[bi];
        rt_node *n = find_in(b->n, b->count, fresh->id);
        if (n) {
            update_known(d, b, n, &fresh->addr, how);
            return;
        }
        rt_node *old = find_in(b->repl, b->nrepl, fresh->id);
        if (b->count < IROHDS_DHT_K) {
            if (old)
                remove_at(b->repl, &b->nrepl, (unsigned)(old - b->repl));
            b->n[b->count++] = *fresh;
            b->changed = d->now;
            return;
        }
        if (splittable(rt, bi) && split_last(rt))
            continue;
        int bad = find_bad(b, d->now);
        if (fresh->id_ok && bad >= 0) {
            b->n[bad] = *fresh;
            b->changed = d->now;
        } else {
            if (fresh->id_ok)
                repl_add(b, fresh);
            ping_stalest(d, b);
        }
        return;
    }
}

void rt_seen(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a, int how)
{
    if (dht_id_eq(id, d->rt.self) || !dht_addr_usable(a))
        return;
    bool ok = dht_id_ok(id, a);
    if (!ok) {
        d->stats.bep42_mismatch++;
        if (d->cfg.enforce_node_id)
            return;
    }
    rt_node fresh = {.addr = *a, .id_ok = ok};
    memcpy(fresh.id, id, IROHDS_DHT_ID_LEN);
    touch(&fresh, how, d->now);
    place(d, &fresh, how);
}

void rt_heard(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a)
{
    rt_table *rt = &d->rt;
    if (d->heard_budget == 0 || dht_id_eq(id, rt->self) || !dht_addr_usable(a))
        return;
    if (d->cfg.enforce_node_id && !dht_id_ok(id, a))
        return;
    unsigned bi = bucket_of(rt, id);
    rt_bucket *b = &rt->b[bi];
    if (find_in(b->n, b->count, id) || (b->count == IROHDS_DHT_K && !splittable(rt, bi)))
        return;
    if (dht_rpc_pending(d, a))
        return;
    irohds_dht_msg q = {.method = IROHDS_DHT_M_PING};
    if (dht_query(d, RPC_PING, a, id, 0, &q) == 0)
        d->heard_budget--;
}

static void add_fails(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a, unsigned by)
{
    rt_bucket *b = &d->rt.b[bucket_of(&d->rt, id)];
    rt_node *n = find_in(b->n, b->count, id);
    if (!n || !irohds_dht_addr_eq(&n->addr, a))
        return;
    n->fails = (uint8_t)(n->fails + by < UINT8_MAX ? n->fails + by : UINT8_MAX);
    if (rt_state(n, d->now) == RT_BAD && b->nrepl) {
        *n = b->repl[--b->nrepl];
        b->changed = d->now;
    }
}

void rt_failed(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a)
{
    add_fails(d, id, a, 1);
}

void rt_gone(irohds_dht *d, const uint8_t *id, const irohds_dht_addr *a)
{
    add_fails(d, id, a, DHT_BAD_FAILS);
}

/* Insert sorted by distance into out[0, *n) (capacity max). */
static void closest_insert(const uint8_t *target, const rt_node *nd, irohds_dht_node *out,
                           size_t *n, size_t max)
{
    size_t pos = *n;
    while (pos > 0 && dht_id_closer(target, nd->id, out[pos - 1].id) < 0)
        pos--;
    if (pos >= max)
        return;
    size_t keep = *n < max ? *n : max - 1;
    memmove(&out[pos + 1], &out[pos], (keep - pos) * sizeof out[0]);
    memcpy(out[pos].id, nd->id, IROHDS_DHT_ID_LEN);
    out[pos].addr = nd->addr;
    if (*n < max)
        (*n)++;
}

/* Nodes we may hand out or save: not bad, and they answered us once (in
 * this run or the saved one): a spoofed query alone never gets an address
 * into others' lookups, as libtorrent hands out confirmed nodes only. */
static bool proven(const rt_node *n, uint64_t now)
{
    return n->replied_ever && rt_state(n, now) != RT_BAD;
}

static size_t closest_of(const rt_table *rt, uint64_t now, const uint8_t *target, int want,
                         irohds_dht_node *out, size_t max)
{
    size_t n = 0;
    for (unsigned bi = 0; bi < rt->nb; bi++) {
        const rt_bucket *b = &rt->b[bi];
        for (unsigned i = 0; i < b->count; i++)
            if (proven(&b->n[i], now) && rt_state(&b->n[i], now) == want)
                closest_insert(target, &b->n[i], out, &n, max);
    }
    return n;
}

size_t rt_closest(const rt_table *rt, uint64_t now, const uint8_t *target, irohds_dht_node *out,
                  size_t max)
{
    size_t n = closest_of(rt, now, target, RT_GOOD, out, max);
    if (n < max)
        n += closest_of(rt, now, target, RT_QUESTIONABLE, out + n, max - n);
    return n;
}

/* A random id in bucket bi: our first bi bits, bit bi flipped (unless it is
 * the last bucket), the rest random. */
static void random_in_bucket(irohds_dht *d, unsigned bi, uint8_t out[IROHDS_DHT_ID_LEN])
{
    uint8_t r[IROHDS_DHT_ID_LEN];
    dht_rng_bytes(&d->rng, r, sizeof r);
    unsigned fixed = bi < d->rt.nb - 1 ? bi + 1 : bi;
    for (unsigned bit = 0; bit < 160; bit++) {
        uint8_t m = (uint8_t)(0x80 >> (bit % 8));
        uint8_t src = bit < fixed ? d->rt.self[bit / 8] : r[bit / 8];
        if (bit == bi && bi < d->rt.nb - 1)
            src ^= m;
        out[bit / 8] = (uint8_t)((out[bit / 8] & ~m) | (src & m));
    }
}

/* BEP 5: a bucket nothing happened in for 15 min gets a find_node for a
 * random id in its range, sent to one of its nodes. */
static void refresh(irohds_dht *d, unsigned bi)
{
    rt_bucket *b = &d->rt.b[bi];
    b->changed = d->now;
    if (b->count == 0)
        return;
    rt_node *n = &b->n[dht_rng_below(&d->rng, b->count)];
    uint8_t target[IROHDS_DHT_ID_LEN];
    random_in_bucket(d, bi, target);
    irohds_dht_msg q = {.method = IROHDS_DHT_M_FIND_NODE, .target = target};
    dht_query(d, RPC_FIND_NODE, &n->addr, n->id, 0, &q);
}

static void maintain_bucket(irohds_dht *d, unsigned bi, unsigned *pings)
{
    rt_bucket *b = &d->rt.b[bi];
    for (unsigned i = 0; i < b->count; i++) {
        rt_node *n = &b->n[i];
        int st = rt_state(n, d->now);
        if (st == RT_BAD && b->nrepl) {
            *n = b->repl[--b->nrepl];
            b->changed = d->now;
        } else if (st == RT_QUESTIONABLE && *pings &&
                   (!n->pinged_at || d->now + 1 - n->pinged_at >= PING_SPACING_MS)) {
            if (ping(d, n) == 0)
                (*pings)--;
        }
    }
    if (d->now - b->changed >= REFRESH_MS)
        refresh(d, bi);
}

void rt_maintain(irohds_dht *d)
{
    unsigned pings = PINGS_PER_TICK;
    for (unsigned bi = 0; bi < d->rt.nb; bi++)
        maintain_bucket(d, bi, &pings);
}

/* Place a node without pings or replacements of live nodes (restore,
 * rebuild): a free slot, else a split, else the replacement list. */
static void insert_quiet(rt_table *rt, const rt_node *n)
{
    if (dht_id_eq(n->id, rt->self))
        return;
    for (;;) {
        unsigned bi = bucket_of(rt, n->id);
        rt_bucket *b = &rt->b[bi];
        if (find_in(b->n, b->count, n->id))
            return;
        if (b->count < IROHDS_DHT_K) {
            b->n[b->count++] = *n;
            return;
        }
        if (!splittable(rt, bi) || !split_last(rt)) {
            repl_add(b, n);
            return;
        }
    }
}

void rt_restore(irohds_dht *d, const irohds_dht_node *n)
{
    if (!dht_addr_usable(&n->addr) || n->addr.family != d->cfg.family)
        return;
    bool ok = dht_id_ok(n->id, &n->addr);
    if (!ok && d->cfg.enforce_node_id)
        return;
    rt_node nd = {.addr = n->addr, .replied_ever = true, .id_ok = ok};
    memcpy(nd.id, n->id, IROHDS_DHT_ID_LEN);
    insert_quiet(&d->rt, &nd);
}

void rt_rebuild(irohds_dht *d, const uint8_t new_id[IROHDS_DHT_ID_LEN])
{
    rt_table *rt = &d->rt;
    size_t total = 0, k = 0;
    for (unsigned bi = 0; bi < rt->nb; bi++)
        total += rt->b[bi].count + rt->b[bi].nrepl;
    rt_node *all = malloc((total ? total : 1) * sizeof *all);
    if (!all) {
        rt_reset(rt, new_id); /* out of memory: start over empty */
        return;
    }
    for (unsigned bi = 0; bi < rt->nb; bi++) {
        rt_bucket *b = &rt->b[bi];
        memcpy(all + k, b->n, b->count * sizeof *all), k += b->count;
        memcpy(all + k, b->repl, b->nrepl * sizeof *all), k += b->nrepl;
    }
    rt_reset(rt, new_id);
    for (size_t i = 0; i < k; i++)
        insert_quiet(rt, &all[i]);
    free(all);
}

void rt_count(const rt_table *rt, uint64_t now, size_t *good, size_t *q, size_t *bad,
              size_t *repl)
{
    *good = *q = *bad = *repl = 0;
    for (unsigned bi = 0; bi < rt->nb; bi++) {
        const rt_bucket *b = &rt->b[bi];
        *repl += b->nrepl;
        for (unsigned i = 0; i < b->count; i++) {
            int st = rt_state(&b->n[i], now);
            *(st == RT_GOOD ? good : st == RT_BAD ? bad : q) += 1;
        }
    }
}

size_t rt_nodes(const rt_table *rt, uint64_t now, irohds_dht_node *out, size_t max)
{
    size_t n = 0;
    for (unsigned bi = 0; bi < rt->nb; bi++) {
        const rt_bucket *b = &rt->b[bi];
        for (unsigned i = 0; i < b->count && n < max; i++) {
            if (!proven(&b->n[i], now))
                continue;
            memcpy(out[n].id, b->n[i].id, IROHDS_DHT_ID_LEN);
            out[n++].addr = b->n[i].addr;
        }
    }
    return n;
}
