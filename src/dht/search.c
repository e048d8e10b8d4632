/*
 * dht/search.c: iterative lookups (BEP 5 find_node / get_peers, BEP 44
 * get) and the store that follows for announce_peer and put.
 *
 * A search keeps the DHT_SEARCH_CANDS candidates closest to its target,
 * closest first, each new, in flight, replied or failed.  It keeps alpha
 * queries in flight among the k closest candidates that have not failed,
 * and is over when those k have all replied (or nothing is left to ask).
 * Every reply adds the nodes it names.  A node that answers with another id
 * than the one we were told of is moved to where its real id belongs (ids
 * change: BEP 42); one that answers with an item that does not verify
 * counts as failed.  Routers are asked without a known id: they sort last,
 * so they are only used while better candidates are few.
 *
 * Then announce and put send their store to the k closest that gave a write
 * token (and, with enforce_node_id, whose id fits their ip: BEP 42), and
 * report how many accepted.  A search never runs longer than
 * search_timeout_ms; a store never waits longer than one rpc timeout.
 *
 * Immutable gets stop at the first value whose SHA-1 is the target.
 * Mutable gets run to the end and report each newer verified version.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dht/dht_int.h"

#define MAX_REPORTED_PEERS 1024 /* remembered per search, to report each once */
#define NODES_PER_REPLY 32

static void step(irohds_dht *d, dht_search *s);
static void finish(irohds_dht *d, dht_search *s);
static void emit_item(irohds_dht *d, dht_search *s, const irohds_dht_item *it);
static void report_fresh(irohds_dht *d, dht_search *s, irohds_dht_addr *fresh, size_t n);

dht_search *search_find(irohds_dht *d, uint32_t handle)
{
    for (size_t i = 0; i < d->ns; i++)
        if (d->s[i]->handle == handle)
            return d->s[i];
    return NULL;
}

int search_new(irohds_dht *d, int kind, const uint8_t target[IROHDS_DHT_ID_LEN], bool internal,
               dht_search **out)
{
    if (d->ns >= d->cfg.max_searches)
        return -ENOSPC;
    dht_search *s = calloc(1, sizeof *s);
    if (!s)
        return -ENOMEM;
    do {
        s->handle = ++d->next_handle;
    } while (s->handle == 0 || search_find(d, s->handle));
    s->kind = (uint8_t)kind;
    s->internal = internal;
    memcpy(s->target, target, IROHDS_DHT_ID_LEN);
    s->started = d->now;
    s->best_seq = s->seen_seq = -1;
    d->s[d->ns++] = s;
    *out = s;
    return 0;
}

void search_remove(irohds_dht *d, dht_search *s)
{
    for (size_t i = 0; i < d->ns; i++) {
        if (d->s[i] == s) {
            d->s[i] = d->s[--d->ns];
            break;
        }
    }
    if (d->self_lookup == s->handle)
        d->self_lookup = 0;
    free(s->v);
    free(s->peers);
    free(s);
}

/* ========================================================= candidates */

static int cand_by_addr(const dht_search *s, const irohds_dht_addr *a)
{
    for (unsigned i = 0; i < s->n; i++)
        if (irohds_dht_addr_eq(&s->c[i].addr, a))
            return (int)i;
    return -1;
}

/* A candidate already at c's address gives way to c only if it was not
 * asked yet and c is closer (a stale id from our table must not hide the
 * node's current one); an address never holds two places. */
static bool addr_taken(dht_search *s, const dht_cand *c)
{
    for (unsigned i = 0; i < s->n; i++) {
        dht_cand *o = &s->c[i];
        if (!irohds_dht_addr_eq(&c->addr, &o->addr))
            continue;
        if (o->state != C_NEW || !c->id_known ||
            (o->id_known && dht_id_closer(s->target, c->id, o->id) >= 0))
            return true;
        memmove(&s->c[i], &s->c[i + 1], (s->n - i - 1) * sizeof s->c[0]);
        s->n--;
        return false;
    }
    return false;
}

/* Insert in distance order (unknown ids last), once per id and address;
 * the farthest falls off a full list. */
static void cand_insert(dht_search *s, const dht_cand *c)
{
    for (unsigned i = 0; i < s->n; i++)
        if (c->id_known && s->c[i].id_known && dht_id_eq(c->id, s->c[i].id))
            return;
    if (addr_taken(s, c))
        return;
    unsigned pos = s->n;
    if (c->id_known) {
        pos = 0;
        while (pos < s->n && s->c[pos].id_known &&
               dht_id_closer(s->target, s->c[pos].id, c->id) <= 0)
            pos++;
    }
    if (pos >= DHT_SEARCH_CANDS)
        return;
    if (s->n == DHT_SEARCH_CANDS)
        s->n--;
    memmove(&s->c[pos + 1], &s->c[pos], (s->n - pos) * sizeof s->c[0]);
    s->c[pos] = *c;
    s->n++;
}

static void cand_add_node(irohds_dht *d, dht_search *s, const irohds_dht_node *n)
{
    if (dht_id_eq(n->id, d->id) || n->addr.family != d->cfg.family || !dht_addr_usable(&n->addr))
        return;
    bool ok = dht_id_ok(n->id, &n->addr);
    if (!ok && d->cfg.enforce_node_id)
        return;
    dht_cand c = {.id_known = true, .addr = n->addr, .id_ok = ok};
    memcpy(c.id, n->id, IROHDS_DHT_ID_LEN);
    cand_insert(s, &c);
}

/* A candidate answered with an id we did not know for it: move it to its
 * place.  Returns its new index, or -1 if it is dropped (a duplicate,
 * refused by BEP 42 enforcement, or too far for the list). */
static int learn_id(irohds_dht *d, dht_search *s, unsigned i, const uint8_t *id)
{
    dht_cand c = s->c[i];
    memmove(&s->c[i], &s->c[i + 1], (s->n - i - 1) * sizeof s->c[0]);
    s->n--;
    memcpy(c.id, id, IROHDS_DHT_ID_LEN);
    c.id_known = true;
    c.id_ok = dht_id_ok(id, &c.addr);
    if ((!c.id_ok && d->cfg.enforce_node_id) || dht_id_eq(id, d->id))
        return -1;
    cand_insert(s, &c);
    return cand_by_addr(s, &c.addr);
}

/*
 * What our own storage holds for the target counts as a first answer: others
 * stored it here because we are one of the k nodes closest to it, and
 * nobody else we ask may have it (in a DHT of k nodes or fewer, what the
 * others announce or put is stored on everyone but its author).  Peers are
 * reported, a mutable item is a first version (newer ones found later are
 * reported too), an immutable one ends the search before any query.  false
 * when the search is over (and freed).  libtorrent's searches skip their own
 * storage; jech/dht's get_peers does this.
 */
static bool local_answer(irohds_dht *d, dht_search *s)
{
    if (s->internal)
        return true;
    if (s->kind == SK_GET_PEERS || s->kind == SK_ANNOUNCE) {
        unsigned max = d->cfg.max_peers;
        irohds_dht_addr *fresh = malloc(max * sizeof *fresh);
        if (fresh)
            report_fresh(d, s, fresh, st_peers(d, s->target, fresh, max));
        return true;
    }
    const dht_stored *st = st_get(d, s->target);
    if (!st)
        return true;
    if (s->kind == SK_GET_IMM && !st->is_mutable) {
        irohds_dht_item it = {.v = st->v, .v_len = st->v_len};
        emit_item(d, s, &it);
        s->replies++; /* we answered: DONE says 0, not -ENETUNREACH */
        finish(d, s);
        return false;
    }
    if (s->kind == SK_GET_MUT && st->is_mutable && !memcmp(st->k, s->k, IROHDS_DHT_KEY_LEN) &&
        (!s->has_seq || st->seq > s->seq)) {
        irohds_dht_item it = {.v = st->v, .v_len = st->v_len, .is_mutable = true,
                              .seq = st->seq, .salt = s->salt, .salt_len = s->salt_len};
        memcpy(it.k, st->k, IROHDS_DHT_KEY_LEN);
        memcpy(it.sig, st->sig, IROHDS_DHT_SIG_LEN);
        if (irohds_dht_item_check(&it) == 0) { /* checked when stored; cheap to be sure */
            s->found = true;
            s->best_seq = st->seq;
            emit_item(d, s, &it);
        }
    }
    return true;
}

void search_begin(irohds_dht *d, dht_search *s)
{
    if (!local_answer(d, s))
        return;
    irohds_dht_node seeds[2 * IROHDS_DHT_K];
    size_t n = rt_closest(&d->rt, d->now, s->target, seeds, 2 * IROHDS_DHT_K);
    for (size_t i = 0; i < n; i++)
        cand_add_node(d, s, &seeds[i]);
    for (size_t i = 0; s->n < IROHDS_DHT_K && i < d->n_routers; i++) {
        dht_cand c = {.addr = d->routers[i]};
        cand_insert(s, &c);
    }
    step(d, s);
}

/* ============================================================ queries */

static void send_lookup(irohds_dht *d, dht_search *s, dht_cand *c)
{
    irohds_dht_msg q = {0};
    int kind;
    if (s->kind == SK_FIND_NODE) {
        q.method = IROHDS_DHT_M_FIND_NODE, q.target = s->target, kind = RPC_FIND_NODE;
    } else if (s->kind == SK_GET_PEERS || s->kind == SK_ANNOUNCE) {
        q.method = IROHDS_DHT_M_GET_PEERS, q.info_hash = s->target, kind = RPC_GET_PEERS;
    } else {
        q.method = IROHDS_DHT_M_GET, q.target = s->target, kind = RPC_GET;
        /* ask for newer than what we have: older holders answer with seq only */
        q.has_seq = s->has_seq || (s->kind == SK_PUT && s->is_mutable);
        q.seq = s->seq;
    }
    if (dht_query(d, kind, &c->addr, c->id_known ? c->id : NULL, s->handle, &q) == 0)
        c->state = C_INFLIGHT;
}

static int send_store(irohds_dht *d, dht_search *s, const dht_cand *c)
{
    irohds_dht_msg q = {.token = c->token, .token_len = c->token_len};
    if (s->kind == SK_ANNOUNCE) {
        q.method = IROHDS_DHT_M_ANNOUNCE_PEER;
        q.info_hash = s->target;
        q.has_port = true;
        q.port = s->port;
        q.implied_port = s->implied_port;
        return dht_query(d, RPC_ANNOUNCE, &c->addr, c->id, s->handle, &q);
    }
    q.method = IROHDS_DHT_M_PUT;
    q.value = s->v;
    q.value_len = s->v_len;
    if (s->is_mutable) {
        q.k = s->k;
        q.sig = s->sig;
        q.has_seq = true;
        q.seq = s->seq;
        q.salt = s->salt_len ? s->salt : NULL;
        q.salt_len = s->salt_len;
        /* BEP 44: cas only to nodes that returned the item */
        q.has_cas = s->has_cas && c->has_item;
        q.cas = s->cas;
    }
    return dht_query(d, RPC_PUT, &c->addr, c->id, s->handle, &q);
}

/* ============================================================= events */

static void finish(irohds_dht *d, dht_search *s)
{
    if (!s->internal) {
        irohds_dht_event ev = {.type = IROHDS_DHT_EV_DONE, .handle = s->handle};
        memcpy(ev.target, s->target, IROHDS_DHT_ID_LEN);
        irohds_dht_node *nodes = malloc(IROHDS_DHT_K * sizeof *nodes);
        for (unsigned i = 0; nodes && i < s->n && ev.n_nodes < IROHDS_DHT_K; i++) {
            if (s->c[i].state != C_REPLIED)
                continue;
            memcpy(nodes[ev.n_nodes].id, s->c[i].id, IROHDS_DHT_ID_LEN);
            nodes[ev.n_nodes++].addr = s->c[i].addr;
        }
        ev.nodes = nodes;
        ev.status = s->timed_out ? -ETIMEDOUT : s->replies ? 0 : -ENETUNREACH;
        dht_event(d, &ev, nodes);
    }
    search_remove(d, s);
}

static void finish_store(irohds_dht *d, dht_search *s)
{
    irohds_dht_event ev = {.type = IROHDS_DHT_EV_STORED, .handle = s->handle};
    memcpy(ev.target, s->target, IROHDS_DHT_ID_LEN);
    for (unsigned i = 0; i < s->n; i++) {
        ev.n_ok += s->c[i].store == ST_OK;
        ev.n_failed += s->c[i].store == ST_FAILED;
    }
    ev.error = s->last_error;
    ev.seen_seq = s->seen_seq;
    if (!s->internal)
        dht_event(d, &ev, NULL);
    finish(d, s);
}

static bool store_pending(const dht_search *s)
{
    for (unsigned i = 0; i < s->n; i++)
        if (s->c[i].store == ST_SENT)
            return true;
    return false;
}

static void finish_lookup(irohds_dht *d, dht_search *s)
{
    if (s->kind != SK_ANNOUNCE && s->kind != SK_PUT) {
        finish(d, s);
        return;
    }
    s->storing = true;
    unsigned chosen = 0;
    for (unsigned i = 0; i < s->n && chosen < IROHDS_DHT_K; i++) {
        dht_cand *c = &s->c[i];
        if (c->state != C_REPLIED || c->token_len == 0 || (d->cfg.enforce_node_id && !c->id_ok))
            continue;
        c->store = send_store(d, s, c) == 0 ? ST_SENT : ST_FAILED;
        chosen++;
    }
    if (!store_pending(s))
        finish_store(d, s);
}

static void emit_item(irohds_dht *d, dht_search *s, const irohds_dht_item *it)
{
    uint8_t *mem = malloc(it->v_len + it->salt_len + 1);
    if (!mem) {
        d->stats.dropped_queue++;
        return;
    }
    irohds_dht_event ev = {.type = IROHDS_DHT_EV_ITEM, .handle = s->handle, .item = *it};
    memcpy(ev.target, s->target, IROHDS_DHT_ID_LEN);
    memcpy(mem, it->v, it->v_len);
    if (it->salt_len)
        memcpy(mem + it->v_len, it->salt, it->salt_len);
    ev.item.v = mem;
    ev.item.salt = it->salt_len ? mem + it->v_len : NULL;
    dht_event(d, &ev, mem);
}

static bool peer_seen(dht_search *s, const irohds_dht_addr *a)
{
    for (size_t i = 0; i < s->n_peers; i++)
        if (irohds_dht_addr_eq(&s->peers[i], a))
            return true;
    if (s->n_peers == s->cap_peers && s->cap_peers < MAX_REPORTED_PEERS) {
        size_t cap = s->cap_peers ? 2 * s->cap_peers : 32;
        irohds_dht_addr *p = realloc(s->peers, cap * sizeof *p);
        if (p)
            s->peers = p, s->cap_peers = cap;
    }
    if (s->n_peers < s->cap_peers)
        s->peers[s->n_peers++] = *a;
    return false;
}

/* Report the peers of fresh[0, n) not reported before (fresh is taken). */
static void report_fresh(irohds_dht *d, dht_search *s, irohds_dht_addr *fresh, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        if (dht_addr_usable(&fresh[i]) && !peer_seen(s, &fresh[i]))
            fresh[kept++] = fresh[i];
    if (kept == 0) {
        free(fresh);
        return;
    }
    irohds_dht_event ev = {.type = IROHDS_DHT_EV_PEERS, .handle = s->handle};
    memcpy(ev.target, s->target, IROHDS_DHT_ID_LEN);
    ev.n_peers = kept;
    ev.peers = fresh;
    dht_event(d, &ev, fresh);
}

static void report_peers(irohds_dht *d, dht_search *s, const irohds_dht_msg *m)
{
    if (!m->n_values || s->internal)
        return;
    irohds_dht_addr *fresh = malloc(m->n_values * sizeof *fresh);
    if (!fresh)
        return;
    size_t n = 0;
    for (size_t i = 0; i < m->n_values; i++)
        if (irohds_dht_addr_parse(&fresh[n], m->values[i], m->values_len[i]))
            n++;
    report_fresh(d, s, fresh, n);
}

/* ============================================================ replies */

/* BEP 44 fields of a get reply for a mutable item.  A value that does not
 * verify makes the candidate failed. */
static void absorb_mutable(irohds_dht *d, dht_search *s, dht_cand *c, const irohds_dht_msg *m)
{
    irohds_dht_item it = {.v = m->value, .v_len = m->value_len, .is_mutable = true,
                          .seq = m->seq, .salt = s->salt, .salt_len = s->salt_len};
    bool has_value = m->value && m->k && m->sig && m->has_seq;
    if (has_value) {
        memcpy(it.k, m->k, IROHDS_DHT_KEY_LEN);
        memcpy(it.sig, m->sig, IROHDS_DHT_SIG_LEN);
        if (memcmp(m->k, s->k, IROHDS_DHT_KEY_LEN) != 0 || irohds_dht_item_check(&it) != 0) {
            c->state = C_FAILED;
            return;
        }
    }
    if (m->has_seq) {
        c->has_item = true;
        c->item_seq = m->seq;
        if (m->seq > s->seen_seq)
            s->seen_seq = m->seq;
    }
    if (!has_value || s->kind != SK_GET_MUT || s->internal)
        return;
    if ((!s->found || m->seq > s->best_seq) && (!s->has_seq || m->seq > s->seq)) {
        s->found = true;
        s->best_seq = m->seq;
        emit_item(d, s, &it);
    }
}

/* What a lookup reply carries besides nodes.  false: the search is over
 * (and freed). */
static bool absorb(irohds_dht *d, dht_search *s, dht_cand *c, const irohds_dht_msg *m)
{
    switch (s->kind) {
    case SK_GET_PEERS:
    case SK_ANNOUNCE:
        report_peers(d, s, m);
        return true;
    case SK_GET_IMM: {
        uint8_t h[IROHDS_DHT_ID_LEN];
        if (!m->value)
            return true;
        irohds_dht_sha1(m->value, m->value_len, h);
        if (!dht_id_eq(h, s->target)) {
            c->state = C_FAILED;
            return true;
        }
        irohds_dht_item it = {.v = m->value, .v_len = m->value_len};
        emit_item(d, s, &it);
        finish(d, s);
        return false;
    }
    case SK_GET_MUT:
        absorb_mutable(d, s, c, m);
        return true;
    case SK_PUT:
        if (s->is_mutable)
            absorb_mutable(d, s, c, m);
        return true;
    default:
        return true;
    }
}

static void add_nodes(irohds_dht *d, dht_search *s, const irohds_dht_msg *m)
{
    irohds_dht_node ns[NODES_PER_REPLY];
    bool v4 = d->cfg.family == AF_INET;
    size_t n = irohds_dht_nodes_parse(v4 ? m->nodes : m->nodes6, v4 ? m->nodes_len : m->nodes6_len,
                                      d->cfg.family, ns, NODES_PER_REPLY);
    for (size_t i = 0; i < n; i++)
        cand_add_node(d, s, &ns[i]);
}

void search_reply(irohds_dht *d, dht_rpc *r, const irohds_dht_msg *m)
{
    dht_search *s = search_find(d, r->search);
    int i = s ? cand_by_addr(s, &r->to) : -1;
    if (i < 0)
        return;
    dht_cand *c = &s->c[i];
    if (r->kind == RPC_ANNOUNCE || r->kind == RPC_PUT) {
        if (s->storing && c->store == ST_SENT) {
            c->store = ST_OK;
            step(d, s);
        }
        return;
    }
    if (s->storing || c->state != C_INFLIGHT)
        return;
    /* A reply matched by t and source is the truth about who is at that
     * address (a router, or a node that took a new id): file it there. */
    if ((!c->id_known || !dht_id_eq(c->id, m->id)) &&
        (i = learn_id(d, s, (unsigned)i, m->id)) < 0) {
        step(d, s);
        return;
    }
    c = &s->c[i];
    c->state = C_REPLIED;
    s->replies++;
    if (m->token && m->token_len <= IROHDS_DHT_TOKEN_MAX) {
        memcpy(c->token, m->token, m->token_len);
        c->token_len = (uint8_t)m->token_len;
    }
    if (!absorb(d, s, c, m))
        return;
    add_nodes(d, s, m);
    step(d, s);
}

static void cand_failed(irohds_dht *d, dht_rpc *r, int code)
{
    dht_search *s = search_find(d, r->search);
    int i = s ? cand_by_addr(s, &r->to) : -1;
    if (i < 0)
        return;
    dht_cand *c = &s->c[i];
    if (r->kind == RPC_ANNOUNCE || r->kind == RPC_PUT) {
        if (!s->storing || c->store != ST_SENT)
            return;
        c->store = ST_FAILED;
        if (code)
            s->last_error = code;
    } else {
        if (s->storing || c->state != C_INFLIGHT)
            return;
        c->state = C_FAILED;
    }
    step(d, s);
}

void search_error(irohds_dht *d, dht_rpc *r, const irohds_dht_msg *m)
{
    int64_t code = m->err_code;
    cand_failed(d, r, code > 0 && code < 1000000 ? (int)code : 201);
}

void search_timeout(irohds_dht *d, dht_rpc *r)
{
    cand_failed(d, r, 0);
}

/* ============================================================== steps */

static void step(irohds_dht *d, dht_search *s)
{
    if (s->storing) {
        if (!store_pending(s))
            finish_store(d, s);
        return;
    }
    unsigned in_flight = 0, considered = 0;
    bool pending = false;
    for (unsigned i = 0; i < s->n; i++)
        in_flight += s->c[i].state == C_INFLIGHT;
    for (unsigned i = 0; i < s->n && considered < IROHDS_DHT_K; i++) {
        dht_cand *c = &s->c[i];
        if (c->state == C_FAILED)
            continue;
        considered++;
        if (c->state == C_NEW && in_flight < d->cfg.alpha) {
            send_lookup(d, s, c);
            in_flight += c->state == C_INFLIGHT;
        }
        pending |= c->state == C_NEW || c->state == C_INFLIGHT;
    }
    if (!pending)
        finish_lookup(d, s);
}

static void time_out(irohds_dht *d, dht_search *s)
{
    s->timed_out = true;
    for (unsigned i = 0; i < s->n; i++)
        if (s->c[i].state == C_NEW || s->c[i].state == C_INFLIGHT)
            s->c[i].state = C_FAILED;
    finish_lookup(d, s);
}

void search_periodic(irohds_dht *d)
{
    /* backwards: a search that ends swaps the last one into its place */
    for (size_t i = d->ns; i > 0; i--) {
        dht_search *s = d->s[i - 1];
        if (!s->storing && d->now - s->started >= d->cfg.search_timeout_ms)
            time_out(d, s);
        else
            step(d, s);
    }
}

uint64_t search_deadline(const irohds_dht *d)
{
    uint64_t t = UINT64_MAX;
    for (size_t i = 0; i < d->ns; i++) {
        const dht_search *s = d->s[i];
        if (!s->storing && s->started + d->cfg.search_timeout_ms < t)
            t = s->started + d->cfg.search_timeout_ms;
    }
    return t;
}

/* ================================================================ API */

static int start(irohds_dht *d, uint64_t now, int kind, const uint8_t *target, uint32_t *handle,
                 dht_search **out)
{
    dht_clock(d, now);
    int rc = search_new(d, kind, target, false, out);
    if (rc == 0 && handle)
        *handle = (*out)->handle;
    return rc;
}

static int start_plain(irohds_dht *d, uint64_t now, int kind, const uint8_t *target,
                       uint32_t *handle)
{
    dht_search *s;
    int rc = start(d, now, kind, target, handle, &s);
    if (rc == 0)
        search_begin(d, s);
    return rc;
}

int irohds_dht_find_node(irohds_dht *d, uint64_t now_ms, const uint8_t target[IROHDS_DHT_ID_LEN],
                         uint32_t *handle)
{
    return start_plain(d, now_ms, SK_FIND_NODE, target, handle);
}

int irohds_dht_get_peers(irohds_dht *d, uint64_t now_ms,
                         const uint8_t info_hash[IROHDS_DHT_ID_LEN], uint32_t *handle)
{
    return start_plain(d, now_ms, SK_GET_PEERS, info_hash, handle);
}

int irohds_dht_get_immutable(irohds_dht *d, uint64_t now_ms, const uint8_t target[IROHDS_DHT_ID_LEN],
                             uint32_t *handle)
{
    return start_plain(d, now_ms, SK_GET_IMM, target, handle);
}

int irohds_dht_announce(irohds_dht *d, uint64_t now_ms, const uint8_t info_hash[IROHDS_DHT_ID_LEN],
                        uint16_t port, bool implied_port, uint32_t *handle)
{
    dht_search *s;
    if (port == 0)
        return -EINVAL;
    int rc = start(d, now_ms, SK_ANNOUNCE, info_hash, handle, &s);
    if (rc)
        return rc;
    s->port = port;
    s->implied_port = implied_port;
    search_begin(d, s);
    return 0;
}

int irohds_dht_get_mutable(irohds_dht *d, uint64_t now_ms, const uint8_t k[IROHDS_DHT_KEY_LEN],
                           const uint8_t *salt, size_t salt_len, bool has_seq, int64_t seq,
                           uint32_t *handle)
{
    uint8_t target[IROHDS_DHT_ID_LEN];
    dht_search *s;
    if (salt_len > IROHDS_DHT_MAX_SALT)
        return -ENAMETOOLONG;
    irohds_dht_mutable_target(k, salt, salt_len, target);
    int rc = start(d, now_ms, SK_GET_MUT, target, handle, &s);
    if (rc)
        return rc;
    memcpy(s->k, k, IROHDS_DHT_KEY_LEN);
    if (salt_len)
        memcpy(s->salt, salt, salt_len);
    s->salt_len = salt_len;
    s->has_seq = has_seq;
    s->seq = seq;
    search_begin(d, s);
    return 0;
}

int irohds_dht_put(irohds_dht *d, uint64_t now_ms, const irohds_dht_item *item, bool has_cas,
                   int64_t cas, uint32_t *handle)
{
    uint8_t target[IROHDS_DHT_ID_LEN];
    dht_search *s;
    int rc = irohds_dht_item_check(item);
    if (rc)
        return rc;
    irohds_dht_item_target(item, target);
    uint8_t *v = malloc(item->v_len);
    if (!v)
        return -ENOMEM;
    rc = start(d, now_ms, SK_PUT, target, handle, &s);
    if (rc) {
        free(v);
        return rc;
    }
    memcpy(v, item->v, item->v_len);
    s->v = v;
    s->v_len = item->v_len;
    s->is_mutable = item->is_mutable;
    if (item->is_mutable) {
        memcpy(s->k, item->k, IROHDS_DHT_KEY_LEN);
        memcpy(s->sig, item->sig, IROHDS_DHT_SIG_LEN);
        s->seq = item->seq;
        if (item->salt_len)
            memcpy(s->salt, item->salt, item->salt_len);
        s->salt_len = item->salt_len;
        s->has_cas = has_cas;
        s->cas = cas;
    }
    search_begin(d, s);
    return 0;
}

int irohds_dht_cancel(irohds_dht *d, uint32_t handle)
{
    dht_search *s = search_find(d, handle);
    if (!s || s->internal)
        return -ENOENT;
    search_remove(d, s);
    dht_event_drop(d, handle);
    return 0;
}
