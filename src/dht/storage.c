/*
 * dht/storage.c: what we keep for others: peers announced on info-hashes
 * (BEP 5), BEP 44 items, and the write tokens that guard both.
 *
 * Tokens: the first 8 bytes of SHA-1(secret || requester ip || target).
 * The secret rotates every token_rotate_ms (5 min) and the previous one is
 * still accepted, so a token lives 5 to 10 min, as BEP 5 describes.  Tying
 * it to the target too (libtorrent does) means a token from one get_peers
 * writes that info-hash only.
 *
 * Bounds: at most max_torrents info-hashes of at most max_peers peers each
 * (and 8 per ip in one info-hash, so one host cannot fill it with ports),
 * at most max_items items.  A full table evicts its stalest entry; peers
 * expire peer_ttl_ms after their last announce, items item_ttl_ms after
 * their last put.  Lookups are binary searches over sorted pointer arrays;
 * a torrent's peers are kept oldest first, so refresh = move to the end
 * and expiry = cut a prefix.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dht/dht_int.h"

#define EXPIRE_EVERY_MS 60000ull
#define PEERS_PER_IP 8

int st_init(irohds_dht *d)
{
    dht_storage *st = &d->st;
    st->t = calloc(d->cfg.max_torrents, sizeof *st->t);
    st->it = calloc(d->cfg.max_items, sizeof *st->it);
    if (!st->t || !st->it)
        return -ENOMEM;
    dht_rng_bytes(&d->rng, st->secret, sizeof st->secret);
    st->rotated = d->now;
    st->expired = d->now;
    return 0;
}

static void torrent_free(dht_torrent *t)
{
    if (t)
        free(t->p);
    free(t);
}

void st_free(dht_storage *st)
{
    for (size_t i = 0; i < st->nt; i++)
        torrent_free(st->t[i]);
    for (size_t i = 0; i < st->ni; i++)
        free(st->it[i]);
    free(st->t);
    free(st->it);
}

/* ============================================================= tokens */

static void token_with(const irohds_dht *d, const uint8_t secret[16], const irohds_dht_addr *a,
                       const uint8_t *target, uint8_t out[DHT_TOKEN_LEN])
{
    dht_sha1_ctx c;
    uint8_t h[20];
    dht_sha1_init(&c);
    dht_sha1_update(&c, secret, 16);
    dht_sha1_update(&c, a->ip, dht_ip_len(d));
    dht_sha1_update(&c, target, IROHDS_DHT_ID_LEN);
    dht_sha1_final(&c, h);
    memcpy(out, h, DHT_TOKEN_LEN);
}

void st_token(const irohds_dht *d, const irohds_dht_addr *a, const uint8_t *target,
              uint8_t out[DHT_TOKEN_LEN])
{
    token_with(d, d->st.secret[0], a, target, out);
}

bool st_token_ok(const irohds_dht *d, const irohds_dht_addr *a, const uint8_t *target,
                 const uint8_t *tok, size_t len)
{
    if (!tok || len != DHT_TOKEN_LEN)
        return false;
    for (int i = 0; i < 2; i++) {
        uint8_t want[DHT_TOKEN_LEN];
        token_with(d, d->st.secret[i], a, target, want);
        if (sodium_memcmp(want, tok, DHT_TOKEN_LEN) == 0)
            return true;
    }
    return false;
}

/* ============================================================== peers */

/* The id a sorted array is ordered by, at index i: a torrent's info-hash
 * or an item's target. */
typedef const uint8_t *(*id_at_fn)(const dht_storage *st, size_t i);

static const uint8_t *torrent_id(const dht_storage *st, size_t i) { return st->t[i]->ih; }
static const uint8_t *item_id(const dht_storage *st, size_t i) { return st->it[i]->target; }

/* Binary search over the n sorted records id_at names: the index of id, or
 * where it would go (*found false).  One search serves both arrays. */
static size_t sorted_pos(const dht_storage *st, size_t n, id_at_fn id_at, const uint8_t *id,
                         bool *found)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = memcmp(id_at(st, mid), id, IROHDS_DHT_ID_LEN);
        if (c == 0) {
            *found = true;
            return mid;
        }
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    *found = false;
    return lo;
}

static size_t torrent_pos(const dht_storage *st, const uint8_t *ih, bool *found)
{
    return sorted_pos(st, st->nt, torrent_id, ih, found);
}

static void torrent_remove(dht_storage *st, size_t i)
{
    torrent_free(st->t[i]);
    memmove(&st->t[i], &st->t[i + 1], (st->nt - i - 1) * sizeof st->t[0]);
    st->nt--;
}

static void evict_stalest_torrent(dht_storage *st)
{
    size_t pick = 0;
    for (size_t i = 1; i < st->nt; i++)
        if (st->t[i]->newest < st->t[pick]->newest)
            pick = i;
    torrent_remove(st, pick);
}

static dht_torrent *torrent_get(irohds_dht *d, const uint8_t *ih)
{
    dht_storage *st = &d->st;
    bool found;
    size_t pos = torrent_pos(st, ih, &found);
    if (found)
        return st->t[pos];
    if (st->nt == d->cfg.max_torrents) {
        evict_stalest_torrent(st);
        pos = torrent_pos(st, ih, &found);
    }
    dht_torrent *t = calloc(1, sizeof *t);
    if (t)
        t->p = calloc(d->cfg.max_peers, sizeof *t->p);
    if (!t || !t->p) {
        torrent_free(t);
        return NULL;
    }
    memcpy(t->ih, ih, IROHDS_DHT_ID_LEN);
    memmove(&st->t[pos + 1], &st->t[pos], (st->nt - pos) * sizeof st->t[0]);
    st->t[pos] = t;
    st->nt++;
    return t;
}

static void peer_remove(dht_torrent *t, unsigned i)
{
    memmove(&t->p[i], &t->p[i + 1], (t->n - i - 1) * sizeof t->p[0]);
    t->n--;
}

/* The entry to drop for a newcomer from a: a's oldest when a has its share
 * already, else the oldest overall when full, else none (-1). */
static int peer_victim(const dht_torrent *t, const irohds_dht_addr *a, unsigned max, size_t iplen)
{
    int first_same = -1;
    unsigned same = 0;
    for (unsigned i = 0; i < t->n; i++) {
        if (memcmp(t->p[i].addr.ip, a->ip, iplen) == 0) {
            if (first_same < 0)
                first_same = (int)i;
            same++;
        }
    }
    if (same >= PEERS_PER_IP)
        return first_same;
    return t->n == max ? 0 : -1;
}

void st_announce(irohds_dht *d, const uint8_t *ih, const irohds_dht_addr *peer)
{
    dht_torrent *t = torrent_get(d, ih);
    if (!t)
        return;
    for (unsigned i = 0; i < t->n; i++) {
        if (irohds_dht_addr_eq(&t->p[i].addr, peer)) {
            peer_remove(t, i);
            break;
        }
    }
    int victim = peer_victim(t, peer, d->cfg.max_peers, dht_ip_len(d));
    if (victim >= 0)
        peer_remove(t, (unsigned)victim);
    t->p[t->n].addr = *peer;
    t->p[t->n++].at = d->now;
    t->newest = d->now;
}

size_t st_peers(const irohds_dht *d, const uint8_t *ih, irohds_dht_addr *out, size_t max)
{
    bool found;
    size_t pos = torrent_pos(&d->st, ih, &found);
    if (!found)
        return 0;
    const dht_torrent *t = d->st.t[pos];
    size_t n = 0;
    for (unsigned i = t->n; i > 0 && n < max; i--)
        out[n++] = t->p[i - 1].addr;
    return n;
}

size_t st_sample(irohds_dht *d, uint8_t *out, size_t max)
{
    const dht_storage *st = &d->st;
    size_t n = st->nt < max ? st->nt : max;
    size_t start = st->nt > n ? dht_rng_below(&d->rng, (uint32_t)st->nt) : 0;
    for (size_t i = 0; i < n; i++)
        memcpy(out + i * IROHDS_DHT_ID_LEN, st->t[(start + i) % st->nt]->ih, IROHDS_DHT_ID_LEN);
    return n;
}

size_t st_peer_count(const dht_storage *st)
{
    size_t n = 0;
    for (size_t i = 0; i < st->nt; i++)
        n += st->t[i]->n;
    return n;
}

/* ============================================================== items */

static size_t item_pos(const dht_storage *st, const uint8_t *target, bool *found)
{
    return sorted_pos(st, st->ni, item_id, target, found);
}

const dht_stored *st_get(const irohds_dht *d, const uint8_t *target)
{
    bool found;
    size_t pos = item_pos(&d->st, target, &found);
    return found ? d->st.it[pos] : NULL;
}

static void item_remove(dht_storage *st, size_t i)
{
    free(st->it[i]);
    memmove(&st->it[i], &st->it[i + 1], (st->ni - i - 1) * sizeof st->it[0]);
    st->ni--;
}

static dht_stored *item_make(const irohds_dht_item *it, const uint8_t *target, uint64_t now)
{
    dht_stored *s = calloc(1, sizeof *s + it->v_len);
    if (!s)
        return NULL;
    memcpy(s->target, target, IROHDS_DHT_ID_LEN);
    s->is_mutable = it->is_mutable;
    if (it->is_mutable) {
        memcpy(s->k, it->k, IROHDS_DHT_KEY_LEN);
        memcpy(s->sig, it->sig, IROHDS_DHT_SIG_LEN);
        s->seq = it->seq;
        if (it->salt_len)
            memcpy(s->salt, it->salt, it->salt_len);
        s->salt_len = it->salt_len;
    }
    memcpy(s->v, it->v, it->v_len);
    s->v_len = it->v_len;
    s->at = now;
    return s;
}

/* BEP 44 ordering: cas must match the stored seq; a lower seq is refused;
 * an equal seq only refreshes the same value. */
static int mutable_rule(const dht_stored *old, const irohds_dht_item *it, bool has_cas,
                        int64_t cas)
{
    if (has_cas && cas != old->seq)
        return 301;
    if (it->seq < old->seq)
        return 302;
    if (it->seq == old->seq &&
        (it->v_len != old->v_len || memcmp(it->v, old->v, it->v_len) != 0))
        return 302;
    return 0;
}

/* A put on a target we hold: 0 (refreshed or replaced) or an error code. */
static int item_update(irohds_dht *d, size_t pos, const irohds_dht_item *it, bool has_cas,
                       int64_t cas)
{
    dht_stored *old = d->st.it[pos];
    if (old->is_mutable && it->is_mutable) {
        int rc = mutable_rule(old, it, has_cas, cas);
        if (rc)
            return rc;
    }
    if (old->is_mutable == it->is_mutable && (!it->is_mutable || it->seq == old->seq)) {
        old->at = d->now; /* the same item again: BEP 44 resets its timeout */
        return 0;
    }
    dht_stored *nw = item_make(it, old->target, d->now);
    if (!nw)
        return 202;
    free(old);
    d->st.it[pos] = nw;
    return 0;
}

int st_put(irohds_dht *d, const irohds_dht_item *it, const uint8_t target[IROHDS_DHT_ID_LEN],
           bool has_cas, int64_t cas)
{
    dht_storage *st = &d->st;
    bool found;
    size_t pos = item_pos(st, target, &found);
    if (found)
        return item_update(d, pos, it, has_cas, cas);
    if (st->ni == d->cfg.max_items) {
        size_t pick = 0;
        for (size_t i = 1; i < st->ni; i++)
            if (st->it[i]->at < st->it[pick]->at)
                pick = i;
        item_remove(st, pick);
        pos = item_pos(st, target, &found);
    }
    dht_stored *nw = item_make(it, target, d->now);
    if (!nw)
        return 202;
    memmove(&st->it[pos + 1], &st->it[pos], (st->ni - pos) * sizeof st->it[0]);
    st->it[pos] = nw;
    st->ni++;
    return 0;
}

/* ============================================================= upkeep */

static void expire_peers(irohds_dht *d)
{
    dht_storage *st = &d->st;
    uint64_t ttl = d->cfg.peer_ttl_ms;
    for (size_t i = st->nt; i > 0; i--) {
        dht_torrent *t = st->t[i - 1];
        unsigned keep = 0;
        while (keep < t->n && d->now - t->p[keep].at >= ttl)
            keep++;
        memmove(t->p, t->p + keep, (t->n - keep) * sizeof t->p[0]);
        t->n -= keep;
        if (t->n == 0)
            torrent_remove(st, i - 1);
    }
}

static void expire_items(irohds_dht *d)
{
    dht_storage *st = &d->st;
    for (size_t i = st->ni; i > 0; i--)
        if (d->now - st->it[i - 1]->at >= d->cfg.item_ttl_ms)
            item_remove(st, i - 1);
}

void st_periodic(irohds_dht *d)
{
    dht_storage *st = &d->st;
    if (d->now - st->rotated >= d->cfg.token_rotate_ms) {
        memcpy(st->secret[1], st->secret[0], sizeof st->secret[0]);
        dht_rng_bytes(&d->rng, st->secret[0], sizeof st->secret[0]);
        st->rotated = d->now;
    }
    if (d->now - st->expired >= EXPIRE_EVERY_MS) {
        expire_peers(d);
        expire_items(d);
        st->expired = d->now;
    }
}
