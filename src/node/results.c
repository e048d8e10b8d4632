/*
 * results.c: what the peers of a namespace say about results, and what this
 * node says (docs/protocol.md): HAVE ("I hold K"), QUERY ("who holds K?"),
 * CLAIM ("I am computing K").  From that it decides, on a miss, whether to
 * fetch, to wait for a peer, or to let a local process compute.
 *
 * Tables (all bounded):
 *   providers  key -> up to RESULTS_PER_KEY results (a result: what its
 *              producer signed, blob, size, cost, files), each with up to
 *              NODE_PROVIDERS peers that said they hold it.  Several, so a
 *              producer announcing a blob nobody can fetch (a liar, or one
 *              gone) cannot hide another's result: a miss tries the newest
 *              it has providers for, then the next
 *   claims     key -> the latest live claim of a peer computing it
 *   misses     keys a local GET is waiting on, with their state:
 *                QUERY  asked the namespace, waiting NODE_QUERY_TIMEOUT_MS
 *                       for a HAVE or a CLAIM
 *                FETCH  a download runs (fetch.c)
 *                WAIT   a peer's claim is worth waiting for
 *              and, once over, the outcome handed to the server from the
 *              loop (never from inside the call that caused it)
 *   my claims  keys a local process computes: re-claimed every 30 s until
 *              the result is announced or the lease is given back
 *
 * Every message is checked in the same order: decode, budgets (per
 * delivering neighbour and per signer, before any crypto: check_budgets says
 * which is charged when), verify (signatures, namespace, clock).  What fails
 * is dropped and counted, never acted on.
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "hash/blake3.h"
#include "ipc/ipc.h"
#include "node/node_int.h"

typedef struct prov_entry {
    struct prov_entry *next;
    fetch_result r; /* r.files: malloc'd names (r.nfiles of them), when files_known */
    bool files_known;
    uint8_t providers[NODE_PROVIDERS][32];
    unsigned nprov;
    int64_t updated_us;
} prov_entry;

typedef struct claim_entry {
    struct claim_entry *next;
    uint8_t key[32];
    uint8_t claimer[32];
    int64_t timestamp_us, expires_us, expected_done_us;
    double expected_s, figure;
} claim_entry;

#define RESULTS_PER_KEY 4 /* results (blob, producer) kept per key */

enum miss_state { MISS_QUERY = 1, MISS_FETCH, MISS_WAIT, MISS_OVER };

typedef struct miss {
    struct miss *next;
    uint8_t key[32];
    char ns[IROHDS_NS_MAX];
    char func[IROHDS_FUNC_MAX];
    enum miss_state state;
    int64_t deadline_us;
    bool resolving; /* waiting for providers' addresses from the DHT */
    enum irohds_node_outcome outcome; /* MISS_OVER */
    uint8_t tried[RESULTS_PER_KEY][32]; /* blobs fetched for it, the last one running */
    unsigned ntried;
} miss;

typedef struct my_claim {
    struct my_claim *next;
    uint8_t key[32];
    char ns[IROHDS_NS_MAX];
    int64_t started_us, last_sent_us;
    double expected_s;
} my_claim;


/* -------------------------------------------------------------- tables */

static size_t prov_bucket(const uint8_t key[32])
{
    return ((size_t)key[0] | (size_t)key[1] << 8) % 4096;
}

/* The entry of key's result with this blob and producer. */
static prov_entry *prov_find(irohds_node *n, const uint8_t key[32], const uint8_t blob[32],
                             const uint8_t producer[32])
{
    for (prov_entry *e = n->prov[prov_bucket(key)]; e; e = e->next)
        if (!memcmp(e->r.key, key, 32) && !memcmp(e->r.blob, blob, 32) &&
            !memcmp(e->r.producer, producer, 32))
            return e;
    return NULL;
}

static void prov_free(prov_entry *e)
{
    free(e->r.files);
    free(e);
}

static void prov_remove(irohds_node *n, prov_entry *dead)
{
    for (prov_entry **pp = &n->prov[prov_bucket(dead->r.key)]; *pp; pp = &(*pp)->next)
        if (*pp == dead) {
            *pp = dead->next;
            prov_free(dead);
            n->nprov--;
            return;
        }
}

static void prov_evict_oldest(irohds_node *n)
{
    prov_entry *old = NULL;
    for (size_t b = 0; b < 4096; b++)
        for (prov_entry *e = n->prov[b]; e; e = e->next)
            if (!old || e->updated_us < old->updated_us)
                old = e;
    if (old)
        prov_remove(n, old);
}

/* Room for one more result of key: false when it already has
 * RESULTS_PER_KEY results all created after created_us, else true (the
 * oldest of a full set removed). */
static bool prov_room_for(irohds_node *n, const uint8_t key[32], int64_t created_us)
{
    prov_entry *oldest = NULL;
    unsigned count = 0;
    for (prov_entry *e = n->prov[prov_bucket(key)]; e; e = e->next)
        if (!memcmp(e->r.key, key, 32)) {
            count++;
            if (!oldest || e->r.created_us < oldest->r.created_us)
                oldest = e;
        }
    if (count < RESULTS_PER_KEY)
        return true;
    if (created_us <= oldest->r.created_us)
        return false;
    prov_remove(n, oldest);
    return true;
}

static size_t claim_bucket(const uint8_t key[32])
{
    return ((size_t)key[0] | (size_t)key[1] << 8) % 1024;
}

static claim_entry *claim_find(irohds_node *n, const uint8_t key[32])
{
    for (claim_entry *c = n->claims[claim_bucket(key)]; c; c = c->next)
        if (!memcmp(c->key, key, 32))
            return c;
    return NULL;
}

static void claim_remove(irohds_node *n, const uint8_t key[32])
{
    for (claim_entry **pp = &n->claims[claim_bucket(key)]; *pp; pp = &(*pp)->next)
        if (!memcmp((*pp)->key, key, 32)) {
            claim_entry *dead = *pp;
            *pp = dead->next;
            free(dead);
            n->nclaims--;
            return;
        }
}

static claim_entry *claim_live(irohds_node *n, const uint8_t key[32], int64_t now)
{
    claim_entry *c = claim_find(n, key);
    if (c && c->expires_us <= now) {
        claim_remove(n, key);
        return NULL;
    }
    return c;
}

static miss *miss_find(irohds_node *n, const uint8_t key[32])
{
    for (miss *m = n->misses; m; m = m->next)
        if (!memcmp(m->key, key, 32))
            return m;
    return NULL;
}

static my_claim *my_claim_find(irohds_node *n, const uint8_t key[32])
{
    for (my_claim *c = n->my_claims; c; c = c->next)
        if (!memcmp(c->key, key, 32))
            return c;
    return NULL;
}

/* --------------------------------------------------------- broadcasting */

int results_broadcast(irohds_node *n, node_ns *ns, const uint8_t *msg, size_t len)
{
    int rc = irohds_gossip_broadcast(n->gossip, node_now_ms(), ns->topic, msg, len,
                                     IROHDS_GOSSIP_SCOPE_SWARM);
    if (rc < 0)
        IROHDS_DEBUG("node: broadcast in %s failed: %s", ns->name, strerror(-rc));
    node_gossip_pump(n);
    return rc;
}

/* The FileRef files of a stored result, as proto wants them.  files and
 * names are malloc'd into *out / *store_files (free both). */
static int stored_files(irohds_node *n, const uint8_t key[32], const irohds_record *rec,
                        irohds_proto_file **out, irohds_file **store_files)
{
    *out = NULL;
    *store_files = NULL;
    if (!rec->nfiles)
        return 0;
    irohds_file *sf = calloc(rec->nfiles, sizeof(*sf));
    irohds_proto_file *pf = calloc(rec->nfiles, sizeof(*pf));
    uint32_t got = 0;
    if (!sf || !pf || irohds_store_files(n->store, key, sf, rec->nfiles, &got) != 0 ||
        got != rec->nfiles) {
        free(sf);
        free(pf);
        return -EIO;
    }
    for (uint32_t i = 0; i < got; i++) {
        pf[i].name.p = sf[i].name;
        pf[i].name.len = strlen(sf[i].name);
        memcpy(pf[i].blob, sf[i].blob, 32);
        pf[i].size = sf[i].size;
    }
    *out = pf;
    *store_files = sf;
    return 0;
}

/* What func took here last: a small direct-mapped table, so a claim can say
 * when it expects to be done. */
static double *func_slot(irohds_node *n, const char *func, bool *match)
{
    uint64_t h = 1469598103934665603ull;
    for (const char *p = func; *p; p++)
        h = (h ^ (uint8_t)*p) * 1099511628211ull;
    size_t i = (size_t)(h % NODE_FUNC_TIMES);
    *match = !strcmp(n->func_times[i].func, func);
    if (!*match)
        snprintf(n->func_times[i].func, sizeof n->func_times[i].func, "%s", func);
    return &n->func_times[i].seconds;
}

static void note_func_time(irohds_node *n, const char *func, double seconds)
{
    bool match;
    double *slot = func_slot(n, func, &match);
    *slot = seconds > 0 && isfinite(seconds) ? seconds : 0;
}

static double func_time(irohds_node *n, const char *func)
{
    bool match;
    double *slot = func_slot(n, func, &match);
    if (!match)
        *slot = 0;
    return *slot;
}

/* HAVE for a stored result, with us as the provider.  We sign the result
 * ourselves when we produced it; a result from a peer goes out with its
 * producer's signature as stored.  Returns the broadcast's result. */
static int announce_stored(irohds_node *n, const uint8_t key[32], const irohds_record *rec)
{
    node_ns *ns = node_ns_find(n, rec->ns);
    if (!ns) {
        if (irohds_node_join(n, rec->ns) != 0)
            return -ENOENT;
        ns = node_ns_find(n, rec->ns);
    }
    bool ours = rec->origin == IROHDS_ORIGIN_LOCAL || !memcmp(rec->producer, n->id, 32);
    static const uint8_t zero[64];
    if (!ours && !memcmp(rec->producer_sig, zero, 64))
        return -ENOKEY; /* no producer signature kept: nothing we may pass on */
    irohds_proto_file *pf;
    irohds_file *sf;
    if (stored_files(n, key, rec, &pf, &sf) != 0)
        return -EIO;
    irohds_proto_have h;
    memset(&h, 0, sizeof h);
    irohds_proto_result *r = &h.result;
    r->ns.p = rec->ns;
    r->ns.len = strlen(rec->ns);
    memcpy(r->key, key, 32);
    memcpy(r->blob, rec->blob, 32);
    r->size = rec->size;
    r->serializer = rec->serializer;
    r->compute_seconds = rec->compute_seconds;
    r->figure = rec->figure > 0 ? rec->figure : irohds_node_figure(n);
    r->created_us = rec->created_us;
    r->func.p = rec->func;
    r->func.len = strlen(rec->func);
    int rc = 0;
    if (ours) {
        rc = irohds_proto_sign_result(&h, pf, rec->nfiles, n->sk);
    } else {
        memcpy(r->producer, rec->producer, 32);
        memcpy(h.producer_sig, rec->producer_sig, 64);
        r->nfiles = rec->nfiles;
        r->files_size = rec->files_size;
        rc = irohds_proto_files_digest(pf, rec->nfiles, r->files_digest);
    }
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    size_t len = 0;
    h.timestamp_us = irohds_now_us();
    if (!rc)
        rc = irohds_proto_encode_have(&h, rec->nfiles ? pf : NULL, n->sk, buf, sizeof buf, &len);
    free(pf);
    free(sf);
    if (rc) {
        IROHDS_WARN("node: cannot announce a result of %s: %s", rec->func, strerror(-rc));
        return rc;
    }
    return results_broadcast(n, ns, buf, len);
}

void irohds_node_announce(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN],
                          const irohds_record *rec)
{
    irohds_node_unclaim(n, key);
    if (rec->origin == IROHDS_ORIGIN_LOCAL)
        note_func_time(n, rec->func, rec->compute_seconds);
    announce_stored(n, key, rec);
}

static void send_query(irohds_node *n, node_ns *ns, const uint8_t key[32])
{
    irohds_proto_query q;
    memset(&q, 0, sizeof q);
    q.ns.p = ns->name;
    q.ns.len = strlen(ns->name);
    memcpy(q.key, key, 32);
    randombytes_buf(&q.nonce, sizeof q.nonce);
    q.timestamp_us = irohds_now_us();
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    size_t len;
    if (irohds_proto_encode_query(&q, n->sk, buf, sizeof buf, &len) == 0)
        results_broadcast(n, ns, buf, len);
}

static void send_claim(irohds_node *n, my_claim *c)
{
    node_ns *ns = node_ns_find(n, c->ns);
    if (!ns)
        return;
    irohds_proto_claim cl;
    memset(&cl, 0, sizeof cl);
    cl.ns.p = ns->name;
    cl.ns.len = strlen(ns->name);
    memcpy(cl.key, c->key, 32);
    cl.started_us = c->started_us;
    cl.expected_seconds = c->expected_s;
    cl.expected_done_us = c->expected_s > 0 ? c->started_us + (int64_t)(c->expected_s * 1e6) : 0;
    cl.figure = irohds_node_figure(n);
    cl.timestamp_us = irohds_now_us();
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    size_t len;
    if (irohds_proto_encode_claim(&cl, n->sk, buf, sizeof buf, &len) == 0) {
        results_broadcast(n, ns, buf, len);
        c->last_sent_us = cl.timestamp_us;
    }
}

void irohds_node_claim(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN], const char *ns,
                       const char *func)
{
    double expected_s = func_time(n, func ? func : "");
    if (my_claim_find(n, key))
        return;
    if (!node_ns_find(n, ns) && irohds_node_join(n, ns) != 0)
        return;
    my_claim *c = calloc(1, sizeof(*c));
    if (!c)
        return;
    memcpy(c->key, key, 32);
    snprintf(c->ns, sizeof c->ns, "%s", ns);
    c->started_us = irohds_now_us();
    c->expected_s = expected_s > 0 && isfinite(expected_s) ? expected_s : 0;
    c->next = n->my_claims;
    n->my_claims = c;
    send_claim(n, c);
}

void irohds_node_unclaim(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN])
{
    for (my_claim **pp = &n->my_claims; *pp; pp = &(*pp)->next)
        if (!memcmp((*pp)->key, key, 32)) {
            my_claim *dead = *pp;
            *pp = dead->next;
            free(dead);
            return;
        }
}

/* ------------------------------------------------------------ deciding */

typedef struct candidates {
    unsigned n;
    unsigned unresolved; /* providers whose address is being looked up */
    uint8_t ids[NODE_PROVIDERS][32];
    irohds_coren_link links[NODE_PROVIDERS];
} candidates;

/* Providers worth asking: not us, not caught sending bad bytes of this blob,
 * with an address to dial. */
static void gather(irohds_node *n, const prov_entry *pe, candidates *c)
{
    c->n = 0;
    c->unresolved = 0;
    for (unsigned i = 0; pe && i < pe->nprov; i++) {
        const uint8_t *id = pe->providers[i];
        node_peer *p = node_peer_find(n, id);
        if (!memcmp(id, n->id, 32) || fetch_is_bad(n, id, pe->r.blob))
            continue;
        if (!p || !p->naddrs) {
            /* Known only by its id (its HAVE came through others): look its
             * address up, if we can. */
            if (n->dht) {
                node_dht_resolve(n, id);
                c->unresolved++;
            }
            continue;
        }
        memcpy(c->ids[c->n], id, 32);
        c->links[c->n] = p->link;
        c->links[c->n].connected = irohds_net_find(n->ep, id, IROHDS_BLOBS_ALPN) != NULL;
        c->n++;
    }
}

static void claim_for_coren(irohds_node *n, const claim_entry *ce, irohds_coren_claim *cc)
{
    memset(cc, 0, sizeof(*cc));
    cc->expected_done_us = ce->expected_done_us;
    cc->expires_us = ce->expires_us;
    cc->expected_seconds = ce->expected_s;
    cc->figure = ce->figure;
    node_peer *p = node_peer_find(n, ce->claimer);
    if (p)
        cc->link = p->link;
    else
        irohds_coren_link_init(&cc->link);
}

static bool miss_tried(const miss *m, const uint8_t blob[32])
{
    for (unsigned i = 0; m && i < m->ntried; i++)
        if (!memcmp(m->tried[i], blob, 32))
            return true;
    return false;
}

/* Which of key's results to fetch: the newest of namespace ns (any when
 * NULL) with a provider worth asking (candidates in *c) that m has not tried
 * already; NULL if none.  A result announced in another namespace is never
 * used: its producer signed it for that one, and namespaces do not mix. */
static prov_entry *pick_result(irohds_node *n, const uint8_t key[32], const char *ns,
                               const miss *m, candidates *c)
{
    prov_entry *best = NULL;
    candidates tmp;
    unsigned unresolved = 0; /* over every result: any may be worth the wait */
    c->n = 0;
    for (prov_entry *e = n->prov[prov_bucket(key)]; e; e = e->next) {
        if (memcmp(e->r.key, key, 32) != 0 || miss_tried(m, e->r.blob) ||
            (ns && strcmp(e->r.ns, ns) != 0))
            continue;
        if (e->r.nfiles && !e->files_known)
            continue; /* a file list that did not fit the HAVE: cannot fetch (docs/protocol.md) */
        gather(n, e, &tmp);
        unresolved += tmp.unresolved;
        if (tmp.n && (!best || e->r.created_us > best->r.created_us)) {
            best = e;
            *c = tmp;
        }
    }
    c->unresolved = unresolved;
    return best;
}

/* The decision for key of namespace ns now (for miss mi, or NULL); false
 * when nothing is known (no provider we can use, no live claim). */
static bool decide(irohds_node *n, const uint8_t key[32], const char *ns, const miss *mi,
                   candidates *c, prov_entry **pe_out, irohds_coren_decision *d)
{
    int64_t now = irohds_now_us();
    prov_entry *pe = pick_result(n, key, ns, mi, c);
    claim_entry *ce = claim_live(n, key, now);
    if (!c->n && !ce)
        return false;
    irohds_coren_claim cc;
    if (ce)
        claim_for_coren(n, ce, &cc);
    irohds_coren_miss m = {
        .producer_seconds = pe ? pe->r.compute_seconds : (ce ? ce->expected_s : 0),
        .producer_figure = pe ? pe->r.figure : (ce ? ce->figure : 0),
        .size = 0,
        .providers = c->links,
        .nproviders = c->n,
        .claim = ce ? &cc : NULL,
        .local_figure = irohds_node_figure(n),
        .now_us = now,
    };
    if (pe) {
        m.size = pe->r.size;
        for (uint32_t i = 0; i < pe->r.nfiles; i++)
            m.size += pe->r.files[i].size;
    }
    irohds_coren_decide(&m, d);
    *pe_out = pe;
    return true;
}

/* ---------------------------------------------------------------- misses */

static void miss_over(irohds_node *n, miss *m, enum irohds_node_outcome out)
{
    m->state = MISS_OVER;
    m->outcome = out;
    node_kick(n);
}

static bool ns_has_peers(const node_ns *ns, int64_t now)
{
    if (ns->neighbors)
        return true;
    /* Still joining through bootstrap peers: worth the short wait. */
    return ns->has_bootstrap && now - ns->joined_us < (int64_t)NODE_JOIN_GRACE_MS * 1000;
}

/* Start a fetch from the chosen provider first, then the others. */
static int start_fetch(irohds_node *n, prov_entry *pe, const candidates *c, int first)
{
    uint8_t order[NODE_PROVIDERS][32];
    unsigned k = 0;
    if (first >= 0)
        memcpy(order[k++], c->ids[first], 32);
    for (unsigned i = 0; i < c->n; i++)
        if ((int)i != first)
            memcpy(order[k++], c->ids[i], 32);
    return fetch_start(n, &pe->r, (const uint8_t(*)[32])order, k);
}

/*
 * Move a miss on with what is known now.  Returns the new state; MISS_OVER
 * with m->outcome set when it is decided without a peer.
 */
static enum miss_state miss_advance(irohds_node *n, miss *m)
{
    int64_t now = irohds_now_us();
    candidates c;
    prov_entry *pe = NULL;
    irohds_coren_decision d;
    if (decide(n, m->key, m->ns, m, &c, &pe, &d)) {
        if (d.action == IROHDS_COREN_FETCH && pe && m->ntried < RESULTS_PER_KEY) {
            int rc = start_fetch(n, pe, &c, d.provider);
            if (rc == 0)
                memcpy(m->tried[m->ntried++], pe->r.blob, 32);
            if (rc == 0 || rc == -EALREADY) {
                IROHDS_INFO("node: fetching a result of %s: %s", m->func, d.why);
                return m->state = MISS_FETCH;
            }
        } else if (d.action == IROHDS_COREN_WAIT) {
            IROHDS_INFO("node: waiting for a peer computing %s: %s", m->func, d.why);
            m->deadline_us = d.decide_again_us > now ? d.decide_again_us : now + 1000000;
            return m->state = MISS_WAIT;
        }
        IROHDS_INFO("node: computing %s here: %s", m->func, d.why);
        m->outcome = IROHDS_NODE_GIVE_UP;
        return m->state = MISS_OVER;
    }
    if (c.unresolved && m->state != MISS_WAIT) {
        /* Providers exist, but only their ids: wait for the DHT to give their
         * addresses (results_peer_resolved), a few seconds at most. */
        if (m->state != MISS_QUERY || !m->resolving) {
            m->resolving = true;
            m->deadline_us = now + NODE_RESOLVE_TIMEOUT_US;
        }
        if (now < m->deadline_us)
            return m->state = MISS_QUERY;
    }
    if (m->state == 0) { /* new: ask the namespace first, if anyone is there */
        node_ns *ns = node_ns_find(n, m->ns);
        if (ns && ns_has_peers(ns, now)) {
            send_query(n, ns, m->key);
            /* Still joining: the query goes out again when a neighbour comes
             * (results_neighbor_up), so wait for that as long as the join may
             * take, then the usual window. */
            int64_t window = (int64_t)NODE_QUERY_TIMEOUT_MS * 1000;
            int64_t joined = ns->joined_us + (int64_t)NODE_JOIN_GRACE_MS * 1000;
            m->deadline_us = ns->neighbors || joined < now + window ? now + window : joined;
            return m->state = MISS_QUERY;
        }
    }
    if (m->state == MISS_QUERY && now < m->deadline_us)
        return MISS_QUERY;
    m->outcome = IROHDS_NODE_GIVE_UP;
    return m->state = MISS_OVER;
}

static uint32_t flags_of(enum miss_state st)
{
    return st == MISS_FETCH ? IROHDS_IPC_WAIT_FETCH : st == MISS_WAIT ? IROHDS_IPC_WAIT_PEER : 0;
}

enum irohds_node_miss_action irohds_node_miss(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN],
                                              const char *ns, const char *func,
                                              uint32_t *wait_flags)
{
    *wait_flags = 0;
    if (n->stopping || !ns || !*ns)
        return IROHDS_NODE_COMPUTE;
    if (!node_ns_find(n, ns))
        irohds_node_join(n, ns);
    miss *m = miss_find(n, key);
    if (m) { /* the server asks again only after the last one ended */
        *wait_flags = flags_of(m->state);
        return IROHDS_NODE_PENDING;
    }
    m = calloc(1, sizeof(*m));
    if (!m)
        return IROHDS_NODE_COMPUTE;
    memcpy(m->key, key, 32);
    snprintf(m->ns, sizeof m->ns, "%s", ns);
    snprintf(m->func, sizeof m->func, "%s", func ? func : "?");
    if (miss_advance(n, m) == MISS_OVER) {
        free(m);
        return IROHDS_NODE_COMPUTE;
    }
    m->next = n->misses;
    n->misses = m;
    *wait_flags = flags_of(m->state);
    return IROHDS_NODE_PENDING;
}

void results_neighbor_up(irohds_node *n, node_ns *ns)
{
    int64_t window = irohds_now_us() + (int64_t)NODE_QUERY_TIMEOUT_MS * 1000;
    for (miss *m = n->misses; m; m = m->next)
        if (m->state == MISS_QUERY && !strcmp(m->ns, ns->name)) {
            send_query(n, ns, m->key);
            if (m->deadline_us < window)
                m->deadline_us = window; /* a full window for the new neighbour's answer */
        }
    for (my_claim *c = n->my_claims; c; c = c->next)
        if (!strcmp(c->ns, ns->name))
            send_claim(n, c);
}

uint32_t irohds_node_wait_flags(const irohds_node *n, const uint8_t key[IROHDS_KEY_LEN])
{
    for (const miss *m = n->misses; m; m = m->next)
        if (!memcmp(m->key, key, 32))
            return flags_of(m->state);
    return 0;
}

/* Something new about key (a HAVE, a CLAIM): a miss waiting on it moves. */
static void miss_poke(irohds_node *n, const uint8_t key[32])
{
    miss *m = miss_find(n, key);
    if (!m || m->state == MISS_OVER || m->state == MISS_FETCH)
        return;
    if (miss_advance(n, m) == MISS_OVER)
        node_kick(n);
}

void results_peer_resolved(irohds_node *n, const uint8_t id[32])
{
    (void)id; /* any waiting miss may have had it as a provider: all look again */
    for (miss *m = n->misses; m; m = m->next)
        if (m->state == MISS_QUERY)
            miss_poke(n, m->key);
}

void results_fetch_done(irohds_node *n, const uint8_t key[32], int rc)
{
    miss *m = miss_find(n, key);
    if (rc == 0) {
        irohds_record rec;
        if (irohds_store_lookup(n->store, key, &rec) == 0)
            announce_stored(n, key, &rec); /* we hold it now: one more provider */
        if (m)
            miss_over(n, m, IROHDS_NODE_STORED);
        return;
    }
    if (!m || m->state != MISS_FETCH)
        return;
    /* Every provider of that blob failed (each was tried, and resumed from
     * where the last one stopped).  Another result of the key may still be
     * fetched, or a claim waited for; else compute here rather than try the
     * same peers again.  No new query: decide with what is known. */
    m->state = MISS_QUERY;
    m->deadline_us = 0;
    if (miss_advance(n, m) == MISS_OVER)
        node_kick(n);
}

void results_kick(irohds_node *n)
{
    /* Hand over finished misses; the callback may start new ones. */
    miss *over = NULL;
    for (miss **pp = &n->misses; *pp;) {
        if ((*pp)->state == MISS_OVER) {
            miss *m = *pp;
            *pp = m->next;
            m->next = over;
            over = m;
        } else {
            pp = &(*pp)->next;
        }
    }
    while (over) {
        miss *m = over;
        over = m->next;
        if (n->cb.resolved)
            n->cb.resolved(n->cb.ctx, m->key, m->outcome);
        free(m);
    }
}

void results_tick(irohds_node *n, int64_t now)
{
    for (miss *m = n->misses; m; m = m->next) {
        if ((m->state == MISS_QUERY || m->state == MISS_WAIT) && now >= m->deadline_us) {
            if (m->state == MISS_WAIT)
                m->state = MISS_QUERY; /* decide again; no new query */
            if (miss_advance(n, m) == MISS_OVER)
                node_kick(n);
        }
        if (m->state == MISS_FETCH && n->cb.progress) {
            uint64_t done, total;
            if (fetch_progress(n, m->key, &done, &total))
                n->cb.progress(n->cb.ctx, m->key, done, total);
        }
    }
    for (my_claim **pp = &n->my_claims; *pp;) {
        my_claim *c = *pp;
        if (now - c->last_sent_us < IROHDS_PROTO_CLAIM_REFRESH_US) {
            pp = &c->next;
        } else if (n->cb.leased && !n->cb.leased(n->cb.ctx, c->key)) {
            *pp = c->next; /* nobody here computes it any more: let the claim lapse */
            free(c);
        } else {
            send_claim(n, c);
            pp = &c->next;
        }
    }
}

/* ---------------------------------------------------------- receiving */

static void copy_str(char *dst, size_t cap, irohds_proto_str s)
{
    size_t len = s.len < cap - 1 ? s.len : cap - 1;
    memcpy(dst, s.p, len);
    dst[len] = 0;
}

static void fill_result(fetch_result *fr, const irohds_proto_have *h)
{
    const irohds_proto_result *r = &h->result;
    memcpy(fr->key, r->key, 32);
    copy_str(fr->ns, sizeof fr->ns, r->ns);
    copy_str(fr->func, sizeof fr->func, r->func);
    memcpy(fr->blob, r->blob, 32);
    fr->size = r->size;
    fr->serializer = r->serializer;
    fr->compute_seconds = r->compute_seconds;
    fr->figure = r->figure;
    memcpy(fr->producer, r->producer, 32);
    memcpy(fr->producer_sig, h->producer_sig, 64);
    fr->created_us = r->created_us;
    fr->nfiles = r->nfiles;
}

/* A HAVE's file list into store file entries (names copied). */
static irohds_file *copy_files(const irohds_proto_msg *m)
{
    uint32_t nf = m->have.result.nfiles;
    irohds_file *f = calloc(nf ? nf : 1, sizeof(*f));
    if (!f)
        return NULL;
    for (uint32_t i = 0; i < nf; i++) {
        copy_str(f[i].name, sizeof f[i].name, m->files[i].name);
        memcpy(f[i].blob, m->files[i].blob, 32);
        f[i].size = m->files[i].size;
    }
    return f;
}

static void on_have(irohds_node *n, const irohds_proto_msg *m)
{
    const irohds_proto_have *h = &m->have;
    const uint8_t *key = h->result.key;
    /* Another blob or producer for the same key (another producer, a forced
     * recompute) is another result: kept beside the others, the newest first
     * when fetching (pick_result). */
    prov_entry *e = prov_find(n, key, h->result.blob, h->result.producer);
    if (!e) {
        if (!prov_room_for(n, key, h->result.created_us))
            return;
        if (n->nprov >= NODE_MAX_PROVIDED)
            prov_evict_oldest(n);
        e = calloc(1, sizeof(*e));
        if (!e)
            return;
        fill_result(&e->r, h);
        size_t b = prov_bucket(key);
        e->next = n->prov[b];
        n->prov[b] = e;
        n->nprov++;
    }
    if (!e->files_known && (h->files_inline || !h->result.nfiles)) {
        e->r.files = copy_files(m);
        e->files_known = e->r.files != NULL;
    }
    e->updated_us = irohds_now_us();
    unsigned i;
    for (i = 0; i < e->nprov; i++)
        if (!memcmp(e->providers[i], h->provider, 32))
            break;
    if (i == e->nprov) {
        if (e->nprov == NODE_PROVIDERS) /* full: the newest replaces the oldest */
            memmove(e->providers[0], e->providers[1], (NODE_PROVIDERS - 1) * 32), i = NODE_PROVIDERS - 1;
        else
            e->nprov++;
        memcpy(e->providers[i], h->provider, 32);
    }
    claim_entry *ce = claim_find(n, key);
    if (ce && !memcmp(ce->claimer, h->result.producer, 32))
        claim_remove(n, key); /* its claimer is done (anyone else's HAVE may not be fetchable) */
    miss *mi = miss_find(n, key);
    if (mi && mi->state == MISS_FETCH && mi->ntried &&
        !memcmp(mi->tried[mi->ntried - 1], e->r.blob, 32))
        fetch_add_provider(n, key, h->provider); /* one more provider of the blob being fetched */
    miss_poke(n, key);
}

/* One answer per key per NODE_ANSWER_EVERY_US: a query heard through
 * several neighbours, or repeated by several askers, costs one HAVE. */
static bool recently_answered(irohds_node *n, const uint8_t key[32], int64_t now)
{
    size_t slot = ((size_t)key[2] | (size_t)key[3] << 8) % NODE_ANSWERED;
    if (!memcmp(n->answered[slot].key, key, 32) && now - n->answered[slot].at < NODE_ANSWER_EVERY_US)
        return true;
    memcpy(n->answered[slot].key, key, 32);
    n->answered[slot].at = now;
    return false;
}

static void on_query(irohds_node *n, const irohds_proto_query *q)
{
    irohds_record rec;
    if (irohds_store_lookup(n->store, q->key, &rec) != 0)
        return;
    if (strlen(rec.ns) != q->ns.len || memcmp(rec.ns, q->ns.p, q->ns.len) != 0)
        return; /* held, but in another namespace: not this topic's business */
    if (recently_answered(n, q->key, irohds_now_us()))
        return;
    announce_stored(n, q->key, &rec);
}

/* Drop every claim that has expired.  Claims are otherwise dropped only when
 * their key is looked up, so a full table would keep dead ones for ever. */
static void claims_sweep(irohds_node *n, int64_t now)
{
    for (size_t b = 0; b < 1024; b++)
        for (claim_entry **pp = &n->claims[b]; *pp;) {
            if ((*pp)->expires_us <= now) {
                claim_entry *dead = *pp;
                *pp = dead->next;
                free(dead);
                n->nclaims--;
            } else {
                pp = &(*pp)->next;
            }
        }
}

static void on_claim(irohds_node *n, const irohds_proto_claim *cl)
{
    if (irohds_store_lookup(n->store, cl->key, &(irohds_record){0}) == 0)
        return; /* we have it: a claim changes nothing here */
    claim_entry *c = claim_find(n, cl->key);
    if (c && c->timestamp_us >= cl->timestamp_us)
        return;
    int64_t now = irohds_now_us();
    if (irohds_proto_claim_expires_us(cl) <= now) { /* dead on arrival */
        if (c)
            claim_remove(n, cl->key); /* and the newest word on that key */
        return;
    }
    if (!c) {
        if (n->nclaims >= NODE_MAX_CLAIMS)
            claims_sweep(n, now);
        if (n->nclaims >= NODE_MAX_CLAIMS)
            return;
        c = calloc(1, sizeof(*c));
        if (!c)
            return;
        memcpy(c->key, cl->key, 32);
        size_t b = claim_bucket(cl->key);
        c->next = n->claims[b];
        n->claims[b] = c;
        n->nclaims++;
    }
    memcpy(c->claimer, cl->claimer, 32);
    c->timestamp_us = cl->timestamp_us;
    c->expires_us = irohds_proto_claim_expires_us(cl);
    c->expected_done_us = cl->expected_done_us;
    c->expected_s = cl->expected_seconds;
    c->figure = cl->figure;
    miss_poke(n, cl->key);
}

static void count_drop(irohds_node *n, int rc)
{
    enum node_drop why = rc == -EAGAIN    ? NODE_DROP_RATE
                         : rc == -EBADMSG ? NODE_DROP_SIGNATURE
                         : rc == -EXDEV   ? NODE_DROP_NAMESPACE
                         : rc == -ESTALE  ? NODE_DROP_STALE
                                          : NODE_DROP_MALFORMED;
    n->dropped[why]++;
    n->dropped_msgs++;
}

static const uint8_t *signer_of(const irohds_proto_msg *m)
{
    return m->kind == IROHDS_PROTO_HAVE    ? m->have.provider
           : m->kind == IROHDS_PROTO_QUERY ? m->query.asker
                                           : m->claim.claimer;
}

/*
 * Budgets, before any crypto is spent on a message (decoding is cheap and
 * bounded):
 *   - a neighbour's own message (signer = the neighbour, whose id its QUIC
 *     connection proved) is charged to it as the signer, at once;
 *   - a message it relays for someone else is dropped if that signer is
 *     already over budget (looking only: a forged signer id spends nobody's
 *     tokens), else charged to the neighbour as a relay, and to the signer
 *     once its signature held.
 * So a flood that honest neighbours relay (gossip relays before anyone
 * verifies) costs their relay budget, never the budget of what they say
 * themselves, and a single flooding signer is dropped without even that.
 * *relay_refused: dropped for the relay's budget, not for the message.
 */
static int check_budgets(irohds_node *n, const uint8_t *signer, const uint8_t hop[32],
                         int64_t now, bool *relay_refused)
{
    if (!memcmp(signer, hop, 32))
        return irohds_proto_limiter_allow(&n->limit_signer, signer, now, 1) ? 0 : -EAGAIN;
    if (!irohds_proto_limiter_would_allow(&n->limit_signer, signer, now, 1))
        return -EAGAIN;
    if (!irohds_proto_limiter_allow(&n->limit_hop, hop, now, 1)) {
        *relay_refused = true;
        return -EAGAIN;
    }
    return 0;
}

void results_deliver(irohds_node *n, const uint8_t topic[32], const uint8_t hop[32],
                     const uint8_t *content, size_t len)
{
    node_ns *ns = node_ns_by_topic(n, topic);
    int64_t now = irohds_now_us();
    if (!ns) {
        count_drop(n, -ENOENT);
        return;
    }
    irohds_proto_msg *m = malloc(sizeof(*m));
    if (!m)
        return;
    int rc = irohds_proto_decode(m, content, len);
    const uint8_t *signer = rc ? NULL : signer_of(m);
    bool relay_refused = false;
    if (!rc)
        rc = check_budgets(n, signer, hop, now, &relay_refused);
    if (!rc)
        rc = irohds_proto_verify(m, ns->name, strlen(ns->name), now, NULL);
    if (!rc && memcmp(signer, hop, 32) != 0 &&
        !irohds_proto_limiter_allow(&n->limit_signer, signer, now, 1))
        rc = -EAGAIN;
    if (rc) {
        count_drop(n, rc);
        char sh[17] = "?", hh[17];
        if (signer)
            irohds_hex_encode(signer, 8, sh);
        irohds_hex_encode(hop, 8, hh);
        IROHDS_DEBUG("node: dropped a message in %s from %s via %s: %s", ns->name, sh, hh,
                     strerror(-rc));
        free(m);
        if (relay_refused) {
            /* Refused for the way it came, not for what it is: let gossip
             * take it again from another neighbour (an IHave, a graft), or
             * a relay that keeps its budget spent could silence anyone
             * whose messages it passes on first. */
            uint8_t id[32];
            irohds_blake3(content, len, id);
            irohds_gossip_forget(n->gossip, node_now_ms(), topic, id);
        }
        return;
    }
    if (memcmp(signer, n->id, 32) != 0) {
        switch (m->kind) {
        case IROHDS_PROTO_HAVE:
            on_have(n, m);
            break;
        case IROHDS_PROTO_QUERY:
            on_query(n, &m->query);
            break;
        case IROHDS_PROTO_CLAIM:
            on_claim(n, &m->claim);
            break;
        }
    }
    free(m);
}

/* ------------------------------------------------------------ explain */

char *irohds_node_explain(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN], const char *ns)
{
    irohds_jbuf b = {0};
    irohds_jbuf_puts(&b, "{\"key\": ");
    irohds_jbuf_hex(&b, key, 32);
    irohds_record rec;
    if (irohds_store_lookup(n->store, key, &rec) == 0) {
        irohds_jbuf_printf(&b, ", \"decision\": \"hit\", \"reason\": \"stored on this machine "
                               "(%s)\", \"size\": %llu, \"producer\": ",
                           rec.origin == IROHDS_ORIGIN_REMOTE ? "downloaded from a peer"
                                                              : "computed here",
                           (unsigned long long)rec.size);
        irohds_jbuf_hex(&b, rec.producer, 32);
        irohds_jbuf_puts(&b, "}");
        return b.p;
    }
    candidates c;
    prov_entry *pe = NULL;
    irohds_coren_decision d;
    miss *m = miss_find(n, key);
    if (!decide(n, key, ns, NULL, &c, &pe, &d)) {
        node_ns *nsp = ns ? node_ns_find(n, ns) : NULL;
        irohds_jbuf_printf(&b, ", \"decision\": \"%s\", \"reason\": ",
                           m && m->state == MISS_QUERY ? "wait" : "compute");
        char why[256];
        snprintf(why, sizeof why, "no peer of namespace %s has announced this result (%u peer%s "
                                  "connected; a miss asks them first)",
                 ns ? ns : "?", nsp ? nsp->neighbors : 0, nsp && nsp->neighbors == 1 ? "" : "s");
        irohds_jbuf_str(&b, why);
        irohds_jbuf_puts(&b, ", \"local_compute_s\": null, \"download_s\": null, \"wait_s\": null, "
                             "\"providers\": [], \"claim\": null");
        irohds_jbuf_puts(&b, ", \"our_capability\": ");
        irohds_jbuf_num(&b, irohds_node_figure(n));
        irohds_jbuf_puts(&b, "}");
        return b.p;
    }
    static const char *const names[] = {"compute", "fetch", "wait"};
    irohds_jbuf_printf(&b, ", \"decision\": \"%s\", \"reason\": ", names[d.action]);
    irohds_jbuf_str(&b, d.why);
    irohds_jbuf_puts(&b, ", \"local_compute_s\": ");
    irohds_jbuf_num(&b, d.compute_s);
    irohds_jbuf_puts(&b, ", \"download_s\": ");
    irohds_jbuf_num(&b, d.fetch_s);
    irohds_jbuf_puts(&b, ", \"wait_s\": ");
    irohds_jbuf_num(&b, d.wait_s);
    if (pe) {
        uint64_t size = pe->r.size;
        for (uint32_t i = 0; i < pe->r.nfiles; i++)
            size += pe->r.files[i].size;
        irohds_jbuf_printf(&b, ", \"size\": %llu, \"producer\": ", (unsigned long long)size);
        irohds_jbuf_hex(&b, pe->r.producer, 32);
        irohds_jbuf_puts(&b, ", \"producer_seconds\": ");
        irohds_jbuf_num(&b, pe->r.compute_seconds);
        irohds_jbuf_puts(&b, ", \"producer_capability\": ");
        irohds_jbuf_num(&b, pe->r.figure);
    }
    irohds_jbuf_puts(&b, ", \"our_capability\": ");
    irohds_jbuf_num(&b, irohds_node_figure(n));
    irohds_jbuf_puts(&b, ", \"providers\": [");
    for (unsigned i = 0; i < c.n; i++) {
        irohds_jbuf_puts(&b, i ? ", {\"node\": " : "{\"node\": ");
        irohds_jbuf_hex(&b, c.ids[i], 32);
        irohds_jbuf_printf(&b, ", \"connected\": %s, \"measured\": %s, \"rtt_ms\": ",
                           c.links[i].connected ? "true" : "false",
                           c.links[i].bw_samples ? "true" : "false");
        irohds_jbuf_num(&b, irohds_coren_link_est_rtt(&c.links[i]) * 1e3);
        irohds_jbuf_puts(&b, ", \"bytes_per_s\": ");
        irohds_jbuf_num(&b, irohds_coren_link_est_bw(&c.links[i]));
        irohds_jbuf_puts(&b, ", \"download_s\": ");
        irohds_jbuf_num(&b, irohds_coren_link_est_download(&c.links[i], pe ? pe->r.size : 0));
        irohds_jbuf_puts(&b, "}");
    }
    irohds_jbuf_puts(&b, "], \"claim\": ");
    claim_entry *ce = claim_live(n, key, irohds_now_us());
    if (ce) {
        irohds_jbuf_puts(&b, "{\"node\": ");
        irohds_jbuf_hex(&b, ce->claimer, 32);
        irohds_jbuf_puts(&b, ", \"expected_done_in_s\": ");
        irohds_jbuf_num(&b, ce->expected_done_us
                                ? (double)(ce->expected_done_us - irohds_now_us()) / 1e6
                                : (0.0 / 0.0));
        irohds_jbuf_puts(&b, "}");
    } else {
        irohds_jbuf_puts(&b, "null");
    }
    irohds_jbuf_puts(&b, "}");
    return b.p;
}

/* --------------------------------------------------------------- stop */

void results_free_all(irohds_node *n)
{
    for (miss *m = n->misses; m; m = m->next)
        if (m->state != MISS_OVER)
            miss_over(n, m, IROHDS_NODE_GIVE_UP);
    results_kick(n);
    while (n->my_claims) {
        my_claim *c = n->my_claims;
        n->my_claims = c->next;
        free(c);
    }
    for (size_t b = 0; b < 4096; b++)
        while (n->prov[b]) {
            prov_entry *e = n->prov[b];
            n->prov[b] = e->next;
            prov_free(e);
        }
    n->nprov = 0;
    for (size_t b = 0; b < 1024; b++)
        while (n->claims[b]) {
            claim_entry *c = n->claims[b];
            n->claims[b] = c->next;
            free(c);
        }
    n->nclaims = 0;
}
