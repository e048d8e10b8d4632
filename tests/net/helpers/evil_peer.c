/*
 * evil_peer: a hostile irohds peer, for tests/net/test_hostile.py.
 *
 * It is built from the project's own libraries (net for QUIC, gossip for
 * iroh-gossip, proto for the signed HAVE / QUERY / CLAIM, blobs and hash for
 * iroh-blobs responses), so everything it sends is exactly as valid as it
 * chooses: a well-formed message with one wrong signature, a blob response
 * whose tree is right and whose data is not, and so on.  It joins one
 * namespace's gossip topic through one bootstrap peer, waits until it has a
 * neighbour there, misbehaves in one way (the mode) for a while, then prints
 * what it did as one line of JSON on stdout and exits.
 *
 *   evil_peer --key FILE id                      print the node id of FILE's seed
 *   evil_peer --key FILE --listen ADDR --bootstrap ID@HOST:PORT --ns NS
 *             --mode MODE [options]
 *
 * FILE holds a 32-byte Ed25519 seed (the daemon's node.key format).  Modes:
 *
 *   bad-producer-sig  HAVEs for --cache-key whose producer signature is wrong
 *                     (the provider signature over the message is valid)
 *   bad-provider-sig  HAVEs with a valid producer signature and a provider
 *                     signature that does not hold: every other one has its
 *                     last byte flipped, the others name the bootstrap peer
 *                     as provider while another key signed
 *   wrong-ns          correctly signed HAVEs for namespace --other-ns, sent
 *                     on this namespace's topic
 *   stale             correctly signed HAVEs stamped --stale-s seconds ago
 *   flood             valid signed QUERY, HAVE and CLAIM messages for random
 *                     keys, --rate per second in all (--claim-life S: the
 *                     claims expire S seconds after they are sent, by a T
 *                     in the past (0: dead on arrival); --signers N:
 *                     signed in turn by N keys made up for it, not ours;
 *                     --kinds claim (or any of query,have,claim): only those)
 *   serve-good        a correctly signed HAVE for --cache-key with us as
 *                     producer and provider, and the blob (--blob FILE, or
 *                     --size random bytes) served correctly: the control
 *   serve-corrupt     the same, but the blob is served with one byte of each
 *                     16 KiB group flipped (the bao tree itself is right, so
 *                     the data is what fails verification).  --relay: do not
 *                     produce a result; wait for an honest HAVE of
 *                     --cache-key and announce that result (its producer's
 *                     signature intact) as its provider instead, serving
 *                     --blob (its real bytes, flipped) or random bytes.
 *                     --cache-key may be given up to 8 times: each key is
 *                     announced with the same blob
 *   serve-stall       as serve-good, but a Get is answered with nothing at
 *                     all (the stream stays open): a provider that hangs
 *   garbage           malformed gossip frames, oversized frames, streams of
 *                     random bytes, gossip content that is not a message,
 *                     Shuffles full of made-up peers, bad iroh-blobs
 *                     requests, and random UDP datagrams at the bootstrap
 *                     peer's QUIC port, --rate items per second
 *
 * --only-bootstrap: gossip with the bootstrap peer alone (refuse others'
 * connections, send them nothing), so everything we send reaches the rest of
 * the namespace relayed by that one peer.
 *
 * Defaults: --rate 5 (500 for flood, 50 for garbage); --duration 10 s of
 * misbehaving, counted from the first neighbour (or from --wait-neighbor s,
 * 10, without one); SIGTERM ends the run early, report included.
 *
 * HAVEs of the first modes are sent --rate times a second, each
 * with a fresh timestamp, so each is a new gossip message.  With --blob they
 * name that blob, and it is served correctly to whoever asks: the one flaw
 * is then the only reason not to use the announcement.  The JSON line
 * says what was sent ("sent": counts by kind), what was served ("gets":
 * Get requests for our blob, by requester), and how many neighbours we had.
 *
 * Nothing here is installed; meson builds it beside the tests
 * (build/release/tests/net/evil_peer) and netlab.py finds it there or at
 * $IROHDS_EVIL_PEER.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "blobs/blobs.h"
#include "gossip/gossip.h"
#include "hash/bao.h"
#include "hash/blake3.h"
#include "net/net.h"
#include "proto/proto.h"
#include "util/util.h"

enum mode {
    M_BAD_PRODUCER_SIG,
    M_BAD_PROVIDER_SIG,
    M_WRONG_NS,
    M_STALE,
    M_FLOOD,
    M_SERVE_GOOD,
    M_SERVE_CORRUPT,
    M_GARBAGE,
    M_SERVE_STALL,
};

static const char *const MODE_NAMES[] = {
    "bad-producer-sig", "bad-provider-sig", "wrong-ns", "stale",
    "flood",            "serve-good",       "serve-corrupt", "garbage",
    "serve-stall",
};

enum { K_GOSSIP = 1, K_SERVE, K_JUNK };

enum counter {
    C_HAVE_BAD_PRODUCER,
    C_HAVE_BAD_PROVIDER,
    C_HAVE_FORGED_PROVIDER,
    C_HAVE_WRONG_NS,
    C_HAVE_STALE,
    C_HAVE,
    C_QUERY,
    C_CLAIM,
    C_GARBAGE_FRAME,
    C_OVERSIZED_FRAME,
    C_RANDOM_STREAM,
    C_RANDOM_BIDI,
    C_GARBAGE_CONTENT,
    C_BOGUS_SHUFFLE,
    C_BAD_BLOB_REQUEST,
    C_UDP_JUNK,
    C_STREAM_REFUSED,
    C_BROADCAST_FAILED,
    C_NCOUNTERS,
};

static const char *const COUNTER_NAMES[] = {
    "have_bad_producer_sig", "have_bad_provider_sig", "have_forged_provider",
    "have_wrong_ns",         "have_stale",            "have",
    "query",                 "claim",                 "garbage_frame",
    "oversized_frame",       "random_stream",         "random_bidi_stream",
    "garbage_content",       "bogus_shuffle",         "bad_blob_request",
    "udp_junk",              "stream_refused",        "broadcast_failed",
};

#define TICK_MS 10 /* a flood at an even pace, not in bursts */
#define REQ_MAX 8192
#define MAX_BOOK 64
#define MAX_GETTERS 16
#define MAX_KEYS 8

typedef struct gin {
    struct gin *next;
    int64_t sid;
    bool failed;
    bool have_header;
    irohds_gossip_frame_reader rd;
} gin;

/* A gossip connection: one topic, so one outgoing stream. */
typedef struct glink {
    int kind;
    struct glink *next;
    irohds_net_conn *conn;
    uint8_t peer[32];
    bool established;
    int64_t out_sid;
    bool need_header;
    uint8_t *q;
    size_t qlen, qcap;
    gin *ins;
} glink;

typedef struct bstream {
    struct bstream *next;
    int64_t sid;
    uint8_t req[REQ_MAX];
    size_t reqlen;
    uint8_t *resp;
    size_t rlen, roff;
    bool responding, done;
} bstream;

/* A blobs connection: one a peer opened to us (K_SERVE), or one we opened to
 * the bootstrap peer to send it bad requests (K_JUNK). */
typedef struct bconn {
    int kind;
    struct bconn *next;
    irohds_net_conn *conn;
    uint8_t peer[32];
    bool established;
    bstream *streams;
} bconn;

typedef struct evil {
    uv_loop_t loop;
    irohds_net_endpoint *ep;
    irohds_gossip *gossip;
    uv_timer_t gossip_timer, tick, end;
    uv_signal_t sigterm;
    uint8_t sk[64], id[32];
    enum mode mode;
    char ns[IROHDS_PROTO_NS_MAX + 1], other_ns[IROHDS_PROTO_NS_MAX + 1];
    char func[IROHDS_PROTO_FUNC_MAX + 1];
    uint8_t topic[32];
    uint8_t boot_id[32];
    struct sockaddr_storage boot_addr, listen_addr;
    uint8_t cache_key[32]; /* the first --cache-key: the target of every mode that has one */
    uint8_t keys[MAX_KEYS][32]; /* serve modes announce all of them, one blob for all */
    unsigned nkeys;
    bool have_cache_key;
    double rate, duration_s, stale_s, compute_s, wait_neighbor_s;
    bool relay, only_bootstrap;
    double claim_life_s; /* < 0: claims as an honest claimer makes them */
    unsigned flood_kinds; /* bits: 1 query, 2 have, 4 claim */
    uint8_t (*signers)[64]; /* flood --signers: keys made up to sign with */
    unsigned nsigners;
    double credit;
    unsigned neighbors, max_neighbors;
    int64_t first_neighbor_us, started_us, acting_since_us;
    bool acting;
    uint64_t count[C_NCOUNTERS];
    uint64_t delivered, rounds;
    /* address book (PeerData and the bootstrap peer) */
    struct {
        uint8_t id[32];
        struct sockaddr_storage addr;
    } book[MAX_BOOK];
    unsigned nbook;
    glink *links;
    bconn *bconns;
    bconn *junk; /* our blobs connection to the bootstrap peer (garbage) */
    int udp_fd;
    /* the blob we announce and serve */
    uint8_t *blob, *served, *outboard;
    uint64_t blob_size, ob_len;
    uint8_t blob_hash[32];
    bool have_blob;
    /* serve-corrupt --relay: the honest result we re-announce */
    irohds_proto_have relayed;
    char relayed_ns[IROHDS_PROTO_NS_MAX + 1], relayed_func[IROHDS_PROTO_FUNC_MAX + 1];
    bool have_relayed;
    /* who asked us for our blob */
    struct {
        uint8_t id[32];
        uint64_t gets;
    } getters[MAX_GETTERS];
    unsigned ngetters;
    uint64_t gets_total, gets_other, bytes_served;
} evil;

static evil E;

static uint64_t now_ms(void)
{
    return irohds_monotonic_ns() / 1000000u;
}

static void gossip_pump(void);

/* ------------------------------------------------------- address book */

static void book_add(const uint8_t id[32], const struct sockaddr *sa)
{
    unsigned i;
    for (i = 0; i < E.nbook; i++)
        if (!memcmp(E.book[i].id, id, 32))
            break;
    if (i == E.nbook) {
        if (E.nbook == MAX_BOOK)
            return;
        E.nbook++;
    }
    memcpy(E.book[i].id, id, 32);
    memset(&E.book[i].addr, 0, sizeof E.book[i].addr);
    memcpy(&E.book[i].addr, sa,
           sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
}

static const struct sockaddr *book_find(const uint8_t id[32])
{
    for (unsigned i = 0; i < E.nbook; i++)
        if (!memcmp(E.book[i].id, id, 32))
            return (const struct sockaddr *)&E.book[i].addr;
    return NULL;
}

static int addr_info_of(const struct sockaddr_storage *ss, uint8_t *buf, size_t cap)
{
    irohds_gossip_addr_info ai = {0};
    if (ss->ss_family == AF_INET) {
        const struct sockaddr_in *s4 = (const void *)ss;
        memcpy(ai.addrs[0].ip, &s4->sin_addr, 4);
        ai.addrs[0].port = ntohs(s4->sin_port);
    } else {
        const struct sockaddr_in6 *s6 = (const void *)ss;
        ai.addrs[0].v6 = true;
        memcpy(ai.addrs[0].ip, &s6->sin6_addr, 16);
        ai.addrs[0].port = ntohs(s6->sin6_port);
    }
    ai.n_addrs = 1;
    size_t len;
    int rc = irohds_gossip_addr_info_encode(&ai, buf, cap, &len);
    return rc ? rc : (int)len;
}

/* ------------------------------------------------------- gossip links */

static glink *link_new(const uint8_t peer[32], irohds_net_conn *c)
{
    glink *g = calloc(1, sizeof(*g));
    if (!g)
        return NULL;
    g->kind = K_GOSSIP;
    memcpy(g->peer, peer, 32);
    g->conn = c;
    g->out_sid = -1;
    g->need_header = true;
    g->next = E.links;
    E.links = g;
    return g;
}

static void link_free(glink *g)
{
    for (glink **pp = &E.links; *pp; pp = &(*pp)->next)
        if (*pp == g) {
            *pp = g->next;
            break;
        }
    while (g->ins) {
        gin *in = g->ins;
        g->ins = in->next;
        free(in);
    }
    free(g->q);
    free(g);
}

static glink *link_for(const uint8_t peer[32], bool create)
{
    glink *best = NULL;
    for (glink *g = E.links; g; g = g->next)
        if (g->conn && !memcmp(g->peer, peer, 32) &&
            (!best || (g->established && !best->established)))
            best = g;
    if (best || !create)
        return best;
    const struct sockaddr *sa = book_find(peer);
    if (!sa)
        return NULL;
    glink *g = link_new(peer, NULL);
    if (!g)
        return NULL;
    if (irohds_net_connect(E.ep, peer, sa, IROHDS_GOSSIP_ALPN, 0, g, &g->conn) != 0) {
        link_free(g);
        return NULL;
    }
    return g;
}

static int q_append(glink *g, const void *p, size_t len)
{
    if (g->qlen + len > (8u << 20))
        return -ENOBUFS;
    if (g->qlen + len > g->qcap) {
        size_t cap = g->qcap ? g->qcap : 4096;
        while (cap < g->qlen + len)
            cap *= 2;
        uint8_t *q = realloc(g->q, cap);
        if (!q)
            return -ENOMEM;
        g->q = q;
        g->qcap = cap;
    }
    memcpy(g->q + g->qlen, p, len);
    g->qlen += len;
    return 0;
}

static void link_flush(glink *g)
{
    if (!g->established || !g->conn)
        return;
    if (g->out_sid < 0 && irohds_net_stream_open(g->conn, false, NULL, &g->out_sid) != 0) {
        g->out_sid = -1;
        return;
    }
    if (!g->qlen)
        return;
    ssize_t w = irohds_net_stream_write(g->conn, g->out_sid, g->q, g->qlen, false);
    if (w < 0) { /* the peer stopped our stream: start a new one, header first */
        g->out_sid = -1;
        g->qlen = 0;
        g->need_header = true;
        return;
    }
    memmove(g->q, g->q + w, g->qlen - (size_t)w);
    g->qlen -= (size_t)w;
}

static void do_send(const irohds_gossip_action *a)
{
    glink *g = E.only_bootstrap && memcmp(a->peer, E.boot_id, 32) ? NULL : link_for(a->peer, true);
    if (!g) {
        irohds_gossip_peer_disconnected(E.gossip, now_ms(), a->peer);
        return;
    }
    if (g->need_header) {
        uint8_t hdr[IROHDS_GOSSIP_STREAM_HEADER_LEN];
        irohds_gossip_stream_header(hdr, E.topic);
        if (q_append(g, hdr, sizeof hdr) != 0)
            return;
        g->need_header = false;
    }
    q_append(g, a->data, a->len);
    link_flush(g);
}

/* ------------------------------------------------------- what we hear */

static void send_have_for_key(unsigned k);

static bool serving(void)
{
    return E.mode == M_SERVE_GOOD || E.mode == M_SERVE_CORRUPT || E.mode == M_SERVE_STALL;
}

static int key_index(const uint8_t key[32])
{
    for (unsigned i = 0; i < E.nkeys; i++)
        if (!memcmp(E.keys[i], key, 32))
            return (int)i;
    return -1;
}

static int make_blob(const char *path, uint64_t size);

/* Relaying without the real bytes: random ones of the announced size, served
 * under the announced hash (they fail at the first parent or group). */
static void fake_blob(const uint8_t hash[32], uint64_t size)
{
    if (make_blob(NULL, size) == 0)
        memcpy(E.blob_hash, hash, 32);
}

static void on_deliver(const uint8_t *content, size_t len)
{
    E.delivered++;
    irohds_proto_msg *m = malloc(sizeof(*m));
    if (!m)
        return;
    if (irohds_proto_decode(m, content, len) == 0 &&
        irohds_proto_verify(m, E.ns, strlen(E.ns), irohds_now_us(), NULL) == 0) {
        int k = m->kind == IROHDS_PROTO_QUERY ? key_index(m->query.key) : -1;
        if (k >= 0 && serving() && E.acting)
            send_have_for_key((unsigned)k); /* answer at once, as an honest holder would */
        if (m->kind == IROHDS_PROTO_HAVE && E.relay && !E.have_relayed && E.have_cache_key &&
            !memcmp(m->have.result.key, E.cache_key, 32) && !m->have.result.nfiles &&
            memcmp(m->have.provider, E.id, 32) != 0) {
            E.relayed = m->have;
            size_t nl = m->have.result.ns.len, fl = m->have.result.func.len;
            memcpy(E.relayed_ns, m->have.result.ns.p, nl);
            E.relayed_ns[nl] = 0;
            memcpy(E.relayed_func, m->have.result.func.p, fl);
            E.relayed_func[fl] = 0;
            E.relayed.result.ns.p = E.relayed_ns;
            E.relayed.result.func.p = E.relayed_func;
            E.have_relayed = true;
            if (!E.have_blob)
                fake_blob(m->have.result.blob, m->have.result.size);
            char hex[17];
            irohds_hex_encode(m->have.provider, 8, hex);
            IROHDS_INFO("evil: heard %s's HAVE for the target key: relaying it", hex);
        }
    }
    free(m);
}

static void drain(void)
{
    irohds_gossip_action a;
    while (irohds_gossip_poll(E.gossip, &a)) {
        switch (a.type) {
        case IROHDS_GOSSIP_ACT_SEND:
            do_send(&a);
            break;
        case IROHDS_GOSSIP_ACT_DISCONNECT:
            break; /* we keep our streams: a hostile peer does not tidy up */
        case IROHDS_GOSSIP_ACT_DELIVER:
            on_deliver(a.data, a.len);
            break;
        case IROHDS_GOSSIP_ACT_NEIGHBOR_UP:
            E.neighbors++;
            if (E.neighbors > E.max_neighbors)
                E.max_neighbors = E.neighbors;
            if (!E.first_neighbor_us)
                E.first_neighbor_us = irohds_now_us();
            IROHDS_INFO("evil: neighbour up (%u)", E.neighbors);
            break;
        case IROHDS_GOSSIP_ACT_NEIGHBOR_DOWN:
            if (E.neighbors)
                E.neighbors--;
            IROHDS_INFO("evil: neighbour down (%u)", E.neighbors);
            break;
        case IROHDS_GOSSIP_ACT_PEER_DATA: {
            irohds_gossip_addr_info ai;
            if (irohds_gossip_addr_info_decode(&ai, a.data, a.len) == 0 && ai.n_addrs &&
                !ai.addrs[0].v6) {
                struct sockaddr_in s4 = {.sin_family = AF_INET,
                                         .sin_port = htons(ai.addrs[0].port)};
                memcpy(&s4.sin_addr, ai.addrs[0].ip, 4);
                book_add(a.peer, (const struct sockaddr *)&s4);
            }
            break;
        }
        }
    }
}

static void on_gossip_timer(uv_timer_t *t)
{
    (void)t;
    irohds_gossip_timeout(E.gossip, now_ms());
    gossip_pump();
}

static void gossip_pump(void)
{
    drain();
    uint64_t now = now_ms();
    uint64_t next = irohds_gossip_next_deadline(E.gossip, now);
    if (next == UINT64_MAX)
        uv_timer_stop(&E.gossip_timer);
    else
        uv_timer_start(&E.gossip_timer, on_gossip_timer, next > now ? next - now : 0, 0);
}

static void broadcast(const uint8_t *msg, size_t len)
{
    if (irohds_gossip_broadcast(E.gossip, now_ms(), E.topic, msg, len,
                                IROHDS_GOSSIP_SCOPE_SWARM) != 0)
        E.count[C_BROADCAST_FAILED]++;
    gossip_pump();
}

/* ----------------------------------------------------------- messages */

static void fill_result(irohds_proto_have *h, const char *ns, const uint8_t key[32],
                        const uint8_t blob[32], uint64_t size)
{
    memset(h, 0, sizeof(*h));
    irohds_proto_result *r = &h->result;
    r->ns.p = ns;
    r->ns.len = strlen(ns);
    memcpy(r->key, key, 32);
    memcpy(r->blob, blob, 32);
    r->size = size;
    r->serializer = 1;
    r->compute_seconds = E.compute_s;
    r->figure = 1.0;
    r->created_us = irohds_now_us();
    r->func.p = E.func;
    r->func.len = strlen(E.func);
}

enum tamper { T_NONE, T_PRODUCER_SIG, T_PROVIDER_SIG, T_FORGED_PROVIDER };

/* A HAVE signed by us as producer and provider, then spoiled as asked. */
static int make_have_as(const uint8_t sk_[64], const char *ns, const uint8_t key[32],
                        const uint8_t blob[32], uint64_t size, int64_t ts, enum tamper t,
                        uint8_t *buf, size_t *len)
{
    irohds_proto_have h;
    fill_result(&h, ns, key, blob, size);
    int rc = irohds_proto_sign_result(&h, NULL, 0, sk_);
    if (rc)
        return rc;
    if (t == T_PRODUCER_SIG)
        h.producer_sig[7] ^= 0x01; /* then signed over by the provider: that one holds */
    h.timestamp_us = ts;
    if (t != T_FORGED_PROVIDER) {
        rc = irohds_proto_encode_have(&h, NULL, sk_, buf, IROHDS_PROTO_MAX_MSG, len);
        if (!rc && t == T_PROVIDER_SIG)
            buf[*len - 1] ^= 0x80;
        return rc;
    }
    /* Signed with a throwaway key, then the provider field rewritten to the
     * bootstrap peer's id: a HAVE in an honest node's name. */
    uint8_t pk[32], sk[64];
    crypto_sign_keypair(pk, sk);
    rc = irohds_proto_encode_have(&h, NULL, sk, buf, IROHDS_PROTO_MAX_MSG, len);
    uint8_t *at = rc ? NULL : memmem(buf, *len, pk, 32);
    if (!at)
        return rc ? rc : -EINVAL;
    memcpy(at, E.boot_id, 32);
    return 0;
}

static int make_have(const char *ns, const uint8_t key[32], const uint8_t blob[32],
                     uint64_t size, int64_t ts, enum tamper t, uint8_t *buf, size_t *len)
{
    return make_have_as(E.sk, ns, key, blob, size, ts, t, buf, len);
}

static void send_tampered(void)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG], blob[32];
    uint64_t size = 4096;
    size_t len;
    randombytes_buf(blob, sizeof blob);
    if (E.have_blob) { /* the real result's blob, served well: only the flaw is wrong */
        memcpy(blob, E.blob_hash, 32);
        size = E.blob_size;
    }
    int64_t now = irohds_now_us();
    int rc = -EINVAL;
    enum counter c = C_HAVE;
    switch (E.mode) {
    case M_BAD_PRODUCER_SIG:
        rc = make_have(E.ns, E.cache_key, blob, size, now, T_PRODUCER_SIG, buf, &len);
        c = C_HAVE_BAD_PRODUCER;
        break;
    case M_BAD_PROVIDER_SIG: {
        bool forge = E.count[C_HAVE_BAD_PROVIDER] > E.count[C_HAVE_FORGED_PROVIDER];
        rc = make_have(E.ns, E.cache_key, blob, size, now,
                       forge ? T_FORGED_PROVIDER : T_PROVIDER_SIG, buf, &len);
        c = forge ? C_HAVE_FORGED_PROVIDER : C_HAVE_BAD_PROVIDER;
        break;
    }
    case M_WRONG_NS:
        rc = make_have(E.other_ns, E.cache_key, blob, size, now, T_NONE, buf, &len);
        c = C_HAVE_WRONG_NS;
        break;
    case M_STALE:
        rc = make_have(E.ns, E.cache_key, blob, size, now - (int64_t)(E.stale_s * 1e6), T_NONE,
                       buf, &len);
        c = C_HAVE_STALE;
        break;
    default:
        return;
    }
    if (rc) {
        IROHDS_ERROR("evil: cannot build a message: %s", strerror(-rc));
        return;
    }
    broadcast(buf, len);
    E.count[c]++;
}

static void send_have_for_key(unsigned k)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG];
    size_t len;
    int rc;
    if (E.relay) {
        if (!E.have_relayed || k)
            return;
        irohds_proto_have h = E.relayed;
        h.timestamp_us = irohds_now_us();
        rc = irohds_proto_encode_have(&h, NULL, E.sk, buf, sizeof buf, &len);
    } else {
        rc = make_have(E.ns, E.keys[k], E.blob_hash, E.blob_size, irohds_now_us(), T_NONE, buf,
                       &len);
    }
    if (rc) {
        IROHDS_ERROR("evil: cannot build our HAVE: %s", strerror(-rc));
        return;
    }
    broadcast(buf, len);
    E.count[C_HAVE]++;
}

static void flood_one(uint64_t i)
{
    uint8_t buf[IROHDS_PROTO_MAX_MSG], key[32], blob[32];
    const uint8_t *sk = E.nsigners ? E.signers[(i / 3) % E.nsigners] : E.sk;
    size_t len;
    randombytes_buf(key, sizeof key);
    int64_t now = irohds_now_us();
    int rc;
    enum counter c;
    unsigned kinds[3], nk = 0;
    for (unsigned k = 0; k < 3; k++)
        if (E.flood_kinds & (1u << k))
            kinds[nk++] = k;
    switch (kinds[i % nk]) {
    case 0: {
        irohds_proto_query q = {.ns = {E.ns, strlen(E.ns)}, .timestamp_us = now};
        memcpy(q.key, key, 32);
        randombytes_buf(&q.nonce, sizeof q.nonce);
        rc = irohds_proto_encode_query(&q, sk, buf, sizeof buf, &len);
        c = C_QUERY;
        break;
    }
    case 1:
        randombytes_buf(blob, sizeof blob);
        rc = make_have_as(sk, E.ns, key, blob, 1u << 20, now, T_NONE, buf, &len);
        c = C_HAVE;
        break;
    default: {
        irohds_proto_claim cl = {.ns = {E.ns, strlen(E.ns)}, .timestamp_us = now};
        memcpy(cl.key, key, 32);
        /* expires = min(now + 90 s, T + 60 s): a T of now - 60 s + life */
        int64_t life = (int64_t)(E.claim_life_s * 1e6), minute = 60LL * 1000000;
        cl.expected_done_us = E.claim_life_s < 0 ? now + minute : now - minute + life;
        cl.started_us = cl.expected_done_us - minute;
        cl.expected_seconds = 60;
        cl.figure = 1.0;
        rc = irohds_proto_encode_claim(&cl, sk, buf, sizeof buf, &len);
        c = C_CLAIM;
        break;
    }
    }
    if (!rc) {
        broadcast(buf, len);
        E.count[c]++;
    }
}

/* ------------------------------------------------------------- garbage */

static void random_bytes(uint8_t *p, size_t n)
{
    randombytes_buf(p, n);
}

/* A uni stream on our gossip link to the bootstrap peer, written once
 * (with fin) and forgotten. */
static void junk_uni(const uint8_t *data, size_t len, enum counter c)
{
    glink *g = link_for(E.boot_id, false);
    if (!g || !g->established)
        return;
    int64_t sid;
    if (irohds_net_stream_open(g->conn, false, NULL, &sid) != 0) {
        E.count[C_STREAM_REFUSED]++;
        return;
    }
    irohds_net_stream_write(g->conn, sid, data, len, true);
    E.count[c]++;
}

static void garbage_gossip(uint64_t i)
{
    uint8_t buf[IROHDS_GOSSIP_STREAM_HEADER_LEN + 4 + 4096];
    irohds_gossip_stream_header(buf, E.topic);
    size_t off = IROHDS_GOSSIP_STREAM_HEADER_LEN;
    switch (i % 6) {
    case 0: { /* a frame of random bytes after a valid header */
        size_t n = 1 + randombytes_uniform(2000);
        buf[off] = (uint8_t)(n >> 24), buf[off + 1] = (uint8_t)(n >> 16);
        buf[off + 2] = (uint8_t)(n >> 8), buf[off + 3] = (uint8_t)n;
        random_bytes(buf + off + 4, n);
        junk_uni(buf, off + 4 + n, C_GARBAGE_FRAME);
        break;
    }
    case 1: { /* a frame announcing more than any frame may hold */
        uint32_t n = 4097 + randombytes_uniform(1u << 30);
        buf[off] = (uint8_t)(n >> 24), buf[off + 1] = (uint8_t)(n >> 16);
        buf[off + 2] = (uint8_t)(n >> 8), buf[off + 3] = (uint8_t)n;
        random_bytes(buf + off + 4, 1000);
        junk_uni(buf, off + 4 + 1000, C_OVERSIZED_FRAME);
        break;
    }
    case 2: { /* random bytes from the first byte on (no header) */
        size_t n = 1 + randombytes_uniform(3000);
        random_bytes(buf, n);
        junk_uni(buf, n, C_RANDOM_STREAM);
        break;
    }
    case 3: { /* a bidi stream of random bytes on the gossip connection */
        glink *g = link_for(E.boot_id, false);
        int64_t sid;
        if (!g || !g->established)
            break;
        if (irohds_net_stream_open(g->conn, true, NULL, &sid) != 0) {
            E.count[C_STREAM_REFUSED]++;
            break;
        }
        size_t n = 1 + randombytes_uniform(3000);
        random_bytes(buf, n);
        irohds_net_stream_write(g->conn, sid, buf, n, true);
        E.count[C_RANDOM_BIDI]++;
        break;
    }
    case 4: { /* gossip content that is no irohds message */
        size_t n = 1 + randombytes_uniform(3000);
        random_bytes(buf, n);
        if (n > 1 && (i / 6) % 2)
            buf[0] = IROHDS_PROTO_VERSION, buf[1] = IROHDS_PROTO_HAVE; /* looks like a HAVE */
        broadcast(buf, n);
        E.count[C_GARBAGE_CONTENT]++;
        break;
    }
    default: { /* a Shuffle of made-up peers at made-up addresses */
        static uint8_t ids[32][32], data[32][64];
        irohds_gossip_msg m;
        memset(&m, 0, sizeof m);
        m.kind = IROHDS_GOSSIP_SHUFFLE;
        m.origin = E.id;
        m.ttl = 6;
        m.n_nodes = 32;
        for (unsigned k = 0; k < 32; k++) {
            random_bytes(ids[k], 32);
            uint16_t port = (uint16_t)(20000 + randombytes_uniform(40000));
            struct sockaddr_in s4 = {.sin_family = AF_INET, .sin_port = htons(port)};
            const struct sockaddr_in *b = (const void *)&E.boot_addr;
            s4.sin_addr.s_addr = (b->sin_addr.s_addr & htonl(0xffffff00)) |
                                 htonl(100 + randombytes_uniform(100)); /* nobody there */
            int dl = addr_info_of((const struct sockaddr_storage *)&s4, data[k], sizeof data[k]);
            m.nodes[k].id = ids[k];
            m.nodes[k].data.ptr = dl > 0 ? data[k] : NULL;
            m.nodes[k].data.len = dl > 0 ? (size_t)dl : 0;
        }
        size_t len;
        if (irohds_gossip_frame_encode(&m, 4096, buf + off, sizeof buf - off, &len) == 0)
            junk_uni(buf, off + len, C_BOGUS_SHUFFLE);
        break;
    }
    }
}

static void garbage_blobs(uint64_t i)
{
    if (!E.junk) {
        bconn *b = calloc(1, sizeof(*b));
        if (!b)
            return;
        b->kind = K_JUNK;
        memcpy(b->peer, E.boot_id, 32);
        if (irohds_net_connect(E.ep, E.boot_id, (const struct sockaddr *)&E.boot_addr,
                               IROHDS_BLOBS_ALPN, 0, b, &b->conn) != 0) {
            free(b);
            return;
        }
        E.junk = b;
        return;
    }
    if (!E.junk->established)
        return;
    uint8_t req[REQ_MAX * 2];
    size_t n;
    switch (i % 4) {
    case 0: /* random bytes */
        n = 1 + randombytes_uniform(200);
        random_bytes(req, n);
        break;
    case 1: /* larger than any request may be */
        n = sizeof req;
        random_bytes(req, n);
        req[0] = IROHDS_BLOBS_REQ_GET;
        break;
    case 2: { /* a valid Get of a blob nobody has */
        irohds_blobs_get get;
        irohds_blobs_ranges rs;
        irohds_blobs_ranges_all(&rs);
        random_bytes(get.hash, 32);
        irohds_blobs_seq_from_ranges(&get.ranges, &rs, 1, false);
        if (irohds_blobs_get_encode(&get, req, sizeof req, &n) != 0)
            return;
        break;
    }
    default: /* a Get cut short */
        req[0] = IROHDS_BLOBS_REQ_GET;
        random_bytes(req + 1, 20);
        n = 21;
        break;
    }
    int64_t sid;
    if (irohds_net_stream_open(E.junk->conn, true, NULL, &sid) != 0) {
        E.count[C_STREAM_REFUSED]++;
        return;
    }
    irohds_net_stream_write(E.junk->conn, sid, req, n, true);
    E.count[C_BAD_BLOB_REQUEST]++;
}

static void garbage_udp(uint64_t i)
{
    if (E.udp_fd < 0)
        return;
    uint8_t pkt[1400];
    size_t n = 1 + randombytes_uniform(sizeof pkt);
    random_bytes(pkt, n);
    if (i % 2 && n > 30) { /* looks like a QUIC v1 Initial */
        pkt[0] = 0xc0 | (pkt[0] & 0x0f);
        pkt[1] = 0, pkt[2] = 0, pkt[3] = 0, pkt[4] = 1;
        pkt[5] = 8;
    }
    socklen_t sl = E.boot_addr.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                    : sizeof(struct sockaddr_in6);
    if (sendto(E.udp_fd, pkt, n, MSG_DONTWAIT, (const struct sockaddr *)&E.boot_addr, sl) > 0)
        E.count[C_UDP_JUNK]++;
}

static void garbage_one(uint64_t i)
{
    switch (i % 3) {
    case 0:
        garbage_gossip(i / 3);
        break;
    case 1:
        garbage_blobs(i / 3);
        break;
    default:
        garbage_udp(i / 3);
        break;
    }
}

/* -------------------------------------------------------- blob server */

static void getter_count(const uint8_t id[32])
{
    for (unsigned i = 0; i < E.ngetters; i++)
        if (!memcmp(E.getters[i].id, id, 32)) {
            E.getters[i].gets++;
            return;
        }
    if (E.ngetters < MAX_GETTERS) {
        memcpy(E.getters[E.ngetters].id, id, 32);
        E.getters[E.ngetters++].gets = 1;
    }
}

static int read_mem(void *ctx, int which, uint64_t off, uint8_t *buf, size_t len)
{
    (void)ctx;
    const uint8_t *src = which == IROHDS_BAO_DATA ? E.served : E.outboard;
    uint64_t have = which == IROHDS_BAO_DATA ? E.blob_size : E.ob_len;
    if (off > have || have - off < len)
        return -EIO;
    memcpy(buf, src + off, len);
    return 0;
}

static void bstream_pump(bconn *b, bstream *s)
{
    while (s->responding && !s->done) {
        if (s->roff == s->rlen) {
            irohds_net_stream_write(b->conn, s->sid, NULL, 0, true);
            s->done = true;
            return;
        }
        ssize_t w = irohds_net_stream_write(b->conn, s->sid, s->resp + s->roff, s->rlen - s->roff,
                                            false);
        if (w <= 0) {
            if (w < 0)
                s->done = true; /* the requester gave up on us */
            return;
        }
        s->roff += (size_t)w;
        E.bytes_served += (uint64_t)w;
    }
}

static void respond(bconn *b, bstream *s)
{
    irohds_blobs_get get;
    if (irohds_blobs_request_decode(s->req, s->reqlen, &get) != 0 || !E.have_blob ||
        memcmp(get.hash, E.blob_hash, 32) != 0) {
        E.gets_other++;
        irohds_net_stream_reset(b->conn, s->sid, 3);
        s->done = true;
        return;
    }
    E.gets_total++;
    getter_count(b->peer);
    if (E.mode == M_SERVE_STALL) {
        s->responding = s->done = true; /* and never a byte */
        return;
    }
    const irohds_blobs_ranges *rs = irohds_blobs_get_root_ranges(&get, NULL);
    irohds_bao_encoder *enc = malloc(sizeof(*enc));
    uint64_t total = irohds_bao_encoded_len(E.blob_size, rs, IROHDS_BAO_GROUP_LOG);
    s->resp = total ? malloc(total) : NULL;
    size_t got = 0;
    if (!enc || !s->resp ||
        irohds_bao_encoder_init(enc, E.blob_size, rs, IROHDS_BAO_GROUP_LOG) != 0 ||
        irohds_bao_encoder_pull(enc, s->resp, total, &got, read_mem, NULL) != 0) {
        free(enc);
        irohds_net_stream_reset(b->conn, s->sid, 3);
        s->done = true;
        return;
    }
    free(enc);
    s->rlen = got;
    s->responding = true;
    char hex[17];
    irohds_hex_encode(b->peer, 8, hex);
    IROHDS_INFO("evil: Get %llu from %s: serving %zu bytes%s", (unsigned long long)E.gets_total,
                hex, got, E.mode == M_SERVE_CORRUPT ? " (corrupt)" : "");
    bstream_pump(b, s);
}

static bstream *bstream_find(bconn *b, int64_t sid, bool create)
{
    for (bstream *s = b->streams; s; s = s->next)
        if (s->sid == sid)
            return s;
    if (!create)
        return NULL;
    bstream *s = calloc(1, sizeof(*s));
    if (!s)
        return NULL;
    s->sid = sid;
    s->next = b->streams;
    b->streams = s;
    return s;
}

static void bconn_free(bconn *b)
{
    for (bconn **pp = &E.bconns; *pp; pp = &(*pp)->next)
        if (*pp == b) {
            *pp = b->next;
            break;
        }
    if (E.junk == b)
        E.junk = NULL;
    while (b->streams) {
        bstream *s = b->streams;
        b->streams = s->next;
        free(s->resp);
        free(s);
    }
    free(b);
}

/* --------------------------------------------------------- net events */

static int kind_of(irohds_net_conn *c)
{
    const int *k = irohds_net_conn_user_ptr(c);
    return k ? *k : 0;
}

static void on_accepted(irohds_net_conn *c)
{
    irohds_net_conn_info info;
    irohds_net_conn_info_get(c, &info);
    book_add(info.remote_id, (const struct sockaddr *)&info.remote_addr);
    if (!strcmp(info.alpn, IROHDS_GOSSIP_ALPN)) {
        if (E.only_bootstrap && memcmp(info.remote_id, E.boot_id, 32) != 0) {
            irohds_net_conn_close(c, 0, "only talking to my bootstrap peer");
            return;
        }
        glink *g = link_new(info.remote_id, c);
        if (!g) {
            irohds_net_conn_close(c, 0, "oom");
            return;
        }
        g->established = true;
        irohds_net_conn_set_user_ptr(c, g);
        irohds_net_conn_set_keep_alive(c, 5000);
    } else {
        bconn *b = calloc(1, sizeof(*b));
        if (!b) {
            irohds_net_conn_close(c, 0, "oom");
            return;
        }
        b->kind = K_SERVE;
        b->conn = c;
        b->established = true;
        memcpy(b->peer, info.remote_id, 32);
        b->next = E.bconns;
        E.bconns = b;
        irohds_net_conn_set_user_ptr(c, b);
    }
    gossip_pump();
}

static void on_connected(irohds_net_conn *c)
{
    int k = kind_of(c);
    if (k == K_GOSSIP) {
        glink *g = irohds_net_conn_user_ptr(c);
        g->established = true;
        irohds_net_conn_set_keep_alive(c, 5000);
        link_flush(g);
    } else if (k == K_JUNK) {
        ((bconn *)irohds_net_conn_user_ptr(c))->established = true;
    }
    gossip_pump();
}

static void on_closed(irohds_net_conn *c, const irohds_net_close_info *why)
{
    (void)why;
    int k = kind_of(c);
    if (k == K_GOSSIP) {
        glink *g = irohds_net_conn_user_ptr(c);
        uint8_t peer[32];
        memcpy(peer, g->peer, 32);
        link_free(g);
        if (E.gossip && !link_for(peer, false))
            irohds_gossip_peer_disconnected(E.gossip, now_ms(), peer);
    } else if (k == K_SERVE || k == K_JUNK) {
        bconn_free(irohds_net_conn_user_ptr(c)); /* (E.junk is not on E.bconns) */
    }
    if (E.gossip)
        gossip_pump();
}

static void on_stream_opened(irohds_net_conn *c, int64_t sid)
{
    if (kind_of(c) != K_GOSSIP)
        return;
    glink *g = irohds_net_conn_user_ptr(c);
    gin *in = calloc(1, sizeof(*in));
    if (!in)
        return;
    in->sid = sid;
    irohds_gossip_frame_reader_init(&in->rd, 0);
    in->next = g->ins;
    g->ins = in;
}

static void gossip_recv(glink *g, int64_t sid, const uint8_t *data, size_t len)
{
    gin *in = NULL;
    for (gin *x = g->ins; x; x = x->next)
        if (x->sid == sid)
            in = x;
    if (!in || in->failed)
        return;
    while (len) {
        const uint8_t *frame;
        size_t flen;
        ssize_t used = irohds_gossip_frame_reader_feed(&in->rd, data, len, &frame, &flen);
        if (used < 0) {
            in->failed = true;
            return;
        }
        if (frame) {
            if (!in->have_header)
                in->have_header = true; /* the StreamHeader: one topic, ours */
            else
                irohds_gossip_handle_frame(E.gossip, now_ms(), E.topic, g->peer, frame, flen);
        }
        data += used;
        len -= (size_t)used;
    }
    gossip_pump();
}

static void on_recv(irohds_net_conn *c, int64_t sid, void *sptr, const uint8_t *data, size_t len,
                    bool fin)
{
    (void)sptr;
    int k = kind_of(c);
    if (k == K_GOSSIP) {
        gossip_recv(irohds_net_conn_user_ptr(c), sid, data, len);
    } else if (k == K_SERVE) {
        bconn *b = irohds_net_conn_user_ptr(c);
        bstream *s = bstream_find(b, sid, true);
        if (!s || s->responding || s->done)
            return;
        if (len > REQ_MAX - s->reqlen) {
            irohds_net_stream_reset(c, sid, 2);
            s->done = true;
            return;
        }
        memcpy(s->req + s->reqlen, data, len);
        s->reqlen += len;
        if (fin)
            respond(b, s);
    }
}

static void on_writable(irohds_net_conn *c, int64_t sid, void *sptr)
{
    (void)sptr;
    int k = kind_of(c);
    if (k == K_GOSSIP) {
        link_flush(irohds_net_conn_user_ptr(c));
    } else if (k == K_SERVE) {
        bconn *b = irohds_net_conn_user_ptr(c);
        bstream *s = bstream_find(b, sid, false);
        if (s)
            bstream_pump(b, s);
    }
}

static void on_stream_closed(irohds_net_conn *c, int64_t sid, void *sptr, int err, uint64_t code)
{
    (void)sptr, (void)err, (void)code;
    int k = kind_of(c);
    if (k == K_GOSSIP) {
        glink *g = irohds_net_conn_user_ptr(c);
        for (gin **pp = &g->ins; *pp; pp = &(*pp)->next)
            if ((*pp)->sid == sid) {
                gin *dead = *pp;
                *pp = dead->next;
                free(dead);
                break;
            }
        if (sid == g->out_sid) {
            g->out_sid = -1;
            g->qlen = 0;
            g->need_header = true;
        }
    } else if (k == K_SERVE) {
        bconn *b = irohds_net_conn_user_ptr(c);
        for (bstream **pp = &b->streams; *pp; pp = &(*pp)->next)
            if ((*pp)->sid == sid) {
                bstream *dead = *pp;
                *pp = dead->next;
                free(dead->resp);
                free(dead);
                break;
            }
    }
}

static const irohds_net_callbacks NET_CB = {
    .accepted = on_accepted,
    .connected = on_connected,
    .closed = on_closed,
    .stream_opened = on_stream_opened,
    .recv = on_recv,
    .writable = on_writable,
    .stream_closed = on_stream_closed,
};

/* ---------------------------------------------------------------- run */

static void join_topic(void)
{
    uint8_t pd[64];
    int pdl = addr_info_of(&E.boot_addr, pd, sizeof pd);
    irohds_gossip_peer boot;
    memcpy(boot.id, E.boot_id, 32);
    boot.data = pdl > 0 ? pd : NULL;
    boot.data_len = pdl > 0 ? (size_t)pdl : 0;
    irohds_gossip_join(E.gossip, now_ms(), E.topic, &boot, 1);
    gossip_pump();
}

static void report_and_stop(void);

static void on_tick(uv_timer_t *t)
{
    (void)t;
    int64_t now = irohds_now_us();
    if (!E.acting) {
        bool waited_enough = now - E.started_us > (int64_t)(E.wait_neighbor_s * 1e6);
        if (!E.neighbors && !waited_enough) {
            if ((now - E.started_us) / 1000 % 2000 < TICK_MS)
                join_topic(); /* ask again every 2 s until someone lets us in */
            return;
        }
        E.acting = true;
        E.acting_since_us = now;
        IROHDS_INFO("evil: %s from now on (%u neighbour%s)", MODE_NAMES[E.mode], E.neighbors,
                    E.neighbors == 1 ? "" : "s");
    }
    if (now - E.acting_since_us >= (int64_t)(E.duration_s * 1e6)) {
        report_and_stop();
        return;
    }
    if (!E.neighbors && now / 1000 % 2000 < TICK_MS)
        join_topic();
    E.credit += E.rate * TICK_MS / 1000.0;
    while (E.credit >= 1) {
        E.credit -= 1;
        uint64_t i = E.rounds++;
        switch (E.mode) {
        case M_FLOOD:
            flood_one(i);
            break;
        case M_GARBAGE:
            garbage_one(i);
            break;
        case M_SERVE_GOOD:
        case M_SERVE_CORRUPT:
        case M_SERVE_STALL:
            send_have_for_key((unsigned)(i % E.nkeys));
            break;
        default:
            send_tampered();
            break;
        }
    }
    gossip_pump();
}

static void report_and_stop(void)
{
    static bool reported;
    if (reported)
        return;
    reported = true;
    irohds_jbuf b = {0};
    irohds_jbuf_puts(&b, "{\"id\": ");
    irohds_jbuf_hex(&b, E.id, 32);
    irohds_jbuf_printf(&b, ", \"mode\": \"%s\", \"acting\": %s, \"max_neighbors\": %u, "
                           "\"neighbors\": %u, \"delivered\": %llu, \"sent\": {",
                       MODE_NAMES[E.mode], E.acting ? "true" : "false", E.max_neighbors,
                       E.neighbors, (unsigned long long)E.delivered);
    bool first = true;
    for (int i = 0; i < C_NCOUNTERS; i++) {
        if (!E.count[i])
            continue;
        irohds_jbuf_printf(&b, "%s\"%s\": %llu", first ? "" : ", ", COUNTER_NAMES[i],
                           (unsigned long long)E.count[i]);
        first = false;
    }
    irohds_jbuf_printf(&b, "}, \"gets\": %llu, \"gets_other\": %llu, \"bytes_served\": %llu, "
                           "\"gets_by\": {",
                       (unsigned long long)E.gets_total, (unsigned long long)E.gets_other,
                       (unsigned long long)E.bytes_served);
    for (unsigned i = 0; i < E.ngetters; i++) {
        char hex[65];
        irohds_hex_encode(E.getters[i].id, 32, hex);
        irohds_jbuf_printf(&b, "%s\"%s\": %llu", i ? ", " : "", hex,
                           (unsigned long long)E.getters[i].gets);
    }
    irohds_jbuf_puts(&b, "}");
    if (E.have_blob) {
        irohds_jbuf_puts(&b, ", \"blob\": ");
        irohds_jbuf_hex(&b, E.blob_hash, 32);
    }
    irohds_jbuf_puts(&b, "}\n");
    if (b.p)
        fputs(b.p, stdout);
    fflush(stdout);
    free(b.p);
    uv_timer_stop(&E.tick);
    uv_timer_stop(&E.gossip_timer);
    uv_stop(&E.loop);
}

static void on_end(uv_timer_t *t)
{
    (void)t;
    report_and_stop();
}

static void on_sigterm(uv_signal_t *s, int sig)
{
    (void)s, (void)sig;
    report_and_stop();
}

/* The blob of serve-good / serve-corrupt: FILE's bytes or random ones, with
 * its outboard, and the copy we serve (one byte of each group flipped when
 * corrupt). */
static int make_blob(const char *path, uint64_t size)
{
    if (path) {
        char *p;
        size_t n;
        int rc = irohds_read_file(path, (size_t)1 << 30, &p, &n);
        if (rc)
            return rc;
        E.blob = (uint8_t *)p;
        E.blob_size = n;
    } else {
        E.blob = malloc(size ? size : 1);
        if (!E.blob)
            return -ENOMEM;
        randombytes_buf(E.blob, size);
        E.blob_size = size;
    }
    E.ob_len = irohds_bao_outboard_size(E.blob_size, IROHDS_BAO_GROUP_LOG);
    E.outboard = malloc(E.ob_len ? E.ob_len : 1);
    E.served = malloc(E.blob_size ? E.blob_size : 1);
    if (!E.outboard || !E.served)
        return -ENOMEM;
    irohds_bao_outboard(E.blob, E.blob_size, IROHDS_BAO_GROUP_LOG, E.outboard, E.blob_hash);
    memcpy(E.served, E.blob, E.blob_size);
    if (E.mode == M_SERVE_CORRUPT) {
        uint64_t group = (uint64_t)IROHDS_BLOBS_CHUNK_LEN << IROHDS_BAO_GROUP_LOG;
        for (uint64_t off = 0; off < E.blob_size; off += group) {
            uint64_t at = off + (E.blob_size - off < group ? (E.blob_size - off) / 2 : group / 2);
            E.served[at] ^= 0x5a;
        }
    }
    E.have_blob = true;
    return 0;
}

static int load_key(const char *path)
{
    char *p;
    size_t n;
    int rc = irohds_read_file(path, 4096, &p, &n);
    if (rc)
        return rc;
    if (n != 32) {
        free(p);
        return -EINVAL;
    }
    crypto_sign_seed_keypair(E.id, E.sk, (const uint8_t *)p);
    sodium_memzero(p, n);
    free(p);
    return 0;
}

static int parse_peer(const char *spec)
{
    const char *at = strchr(spec, '@');
    char hex[65];
    if (!at || at - spec != 64)
        return -EINVAL;
    memcpy(hex, spec, 64);
    hex[64] = 0;
    if (irohds_hex_decode(hex, E.boot_id, 32) != 0)
        return -EINVAL;
    return irohds_net_parse_addr(at + 1, &E.boot_addr);
}

static void usage(void)
{
    fprintf(stderr,
            "usage: evil_peer --key FILE id\n"
            "       evil_peer --key FILE --listen ADDR --bootstrap ID@HOST:PORT --ns NS\n"
            "                 --mode MODE [--cache-key HEX] [--duration S] [--rate N]\n"
            "                 [--other-ns NS] [--stale-s S] [--func NAME] [--compute-s S]\n"
            "                 [--blob FILE | --size N] [--relay] [--claim-life S]\n"
            "                 [--wait-neighbor S] [--only-bootstrap] [--signers N]\n"
            "                 [--kinds query,have,claim] [--verbose]\n"
            "modes: bad-producer-sig bad-provider-sig wrong-ns stale flood serve-good\n"
            "       serve-corrupt serve-stall garbage\n"
            "(the top of evil_peer.c says what each does)\n");
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option opts[] = {
        {"key", required_argument, 0, 'k'},       {"listen", required_argument, 0, 'l'},
        {"bootstrap", required_argument, 0, 'b'}, {"ns", required_argument, 0, 'n'},
        {"mode", required_argument, 0, 'm'},      {"cache-key", required_argument, 0, 'c'},
        {"duration", required_argument, 0, 'd'},  {"rate", required_argument, 0, 'r'},
        {"other-ns", required_argument, 0, 'o'},  {"stale-s", required_argument, 0, 's'},
        {"func", required_argument, 0, 'f'},      {"compute-s", required_argument, 0, 'C'},
        {"blob", required_argument, 0, 'B'},      {"size", required_argument, 0, 'S'},
        {"relay", no_argument, 0, 'R'},           {"claim-life", required_argument, 0, 'X'},
        {"wait-neighbor", required_argument, 0, 'w'}, {"verbose", no_argument, 0, 'v'},
        {"only-bootstrap", no_argument, 0, 'O'}, {"signers", required_argument, 0, 'N'},
        {"kinds", required_argument, 0, 'K'},
        {0, 0, 0, 0},
    };
    const char *key = NULL, *listen = NULL, *boot = NULL, *mode = NULL, *blob = NULL;
    uint64_t size = 100000;
    E.duration_s = 10;
    E.rate = -1;
    E.stale_s = 3600;
    E.compute_s = 30;
    E.wait_neighbor_s = 10;
    E.udp_fd = -1;
    E.flood_kinds = 7;
    E.claim_life_s = -1;
    snprintf(E.ns, sizeof E.ns, "lab");
    snprintf(E.other_ns, sizeof E.other_ns, "elsewhere");
    snprintf(E.func, sizeof E.func, "m_lab.work");
    int verbose = 0, o;
    while ((o = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (o) {
        case 'k': key = optarg; break;
        case 'l': listen = optarg; break;
        case 'b': boot = optarg; break;
        case 'n': snprintf(E.ns, sizeof E.ns, "%s", optarg); break;
        case 'm': mode = optarg; break;
        case 'c':
            if (E.nkeys == MAX_KEYS || strlen(optarg) != 64 ||
                irohds_hex_decode(optarg, E.keys[E.nkeys], 32) != 0)
                usage();
            memcpy(E.cache_key, E.keys[0], 32);
            E.nkeys++;
            E.have_cache_key = true;
            break;
        case 'd': E.duration_s = atof(optarg); break;
        case 'r': E.rate = atof(optarg); break;
        case 'o': snprintf(E.other_ns, sizeof E.other_ns, "%s", optarg); break;
        case 's': E.stale_s = atof(optarg); break;
        case 'f': snprintf(E.func, sizeof E.func, "%s", optarg); break;
        case 'C': E.compute_s = atof(optarg); break;
        case 'B': blob = optarg; break;
        case 'S': size = strtoull(optarg, NULL, 10); break;
        case 'R': E.relay = true; break;
        case 'X': E.claim_life_s = atof(optarg); break;
        case 'w': E.wait_neighbor_s = atof(optarg); break;
        case 'v': verbose = 1; break;
        case 'O': E.only_bootstrap = true; break;
        case 'N': E.nsigners = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'K':
            E.flood_kinds = (strstr(optarg, "query") ? 1u : 0) | (strstr(optarg, "have") ? 2u : 0) |
                            (strstr(optarg, "claim") ? 4u : 0);
            if (!E.flood_kinds)
                usage();
            break;
        default: usage();
        }
    }
    if (sodium_init() < 0 || !key)
        usage();
    irohds_log_set_level(verbose ? IROHDS_LOG_DEBUG : IROHDS_LOG_INFO);
    int rc = load_key(key);
    if (rc) {
        fprintf(stderr, "evil_peer: %s: %s (a 32-byte seed expected)\n", key, strerror(-rc));
        return 1;
    }
    if (optind < argc && !strcmp(argv[optind], "id")) {
        char hex[65];
        irohds_hex_encode(E.id, 32, hex);
        printf("%s\n", hex);
        return 0;
    }
    if (!listen || !boot || !mode || parse_peer(boot) != 0 ||
        irohds_net_parse_addr(listen, &E.listen_addr) != 0)
        usage();
    int m;
    for (m = 0; m <= M_SERVE_STALL; m++)
        if (!strcmp(mode, MODE_NAMES[m]))
            break;
    if (m > M_SERVE_STALL)
        usage();
    E.mode = (enum mode)m;
    if (E.rate < 0)
        E.rate = E.mode == M_FLOOD ? 500 : E.mode == M_GARBAGE ? 50 : 5;
    bool needs_key = E.mode != M_FLOOD && E.mode != M_GARBAGE;
    if (needs_key && !E.have_cache_key) {
        fprintf(stderr, "evil_peer: --mode %s needs --cache-key\n", mode);
        return 2;
    }
    if ((serving() && !E.relay) || blob) {
        rc = make_blob(blob, size);
        if (rc) {
            fprintf(stderr, "evil_peer: cannot load the blob: %s\n", strerror(-rc));
            return 1;
        }
    }
    if (E.nsigners) {
        E.signers = calloc(E.nsigners, sizeof(*E.signers));
        if (!E.signers)
            return 1;
        for (unsigned i = 0; i < E.nsigners; i++) {
            uint8_t pk[32];
            crypto_sign_keypair(pk, E.signers[i]);
        }
    }
    irohds_proto_topic(E.ns, strlen(E.ns), E.topic);
    book_add(E.boot_id, (const struct sockaddr *)&E.boot_addr);

    uv_loop_init(&E.loop);
    static const char *const alpns[] = {IROHDS_GOSSIP_ALPN, IROHDS_BLOBS_ALPN};
    irohds_net_config nc;
    memset(&nc, 0, sizeof nc);
    irohds_net_config_defaults(&nc);
    nc.secret_key = E.sk;
    nc.listen = listen;
    nc.alpns = alpns;
    nc.n_alpns = 2;
    nc.cb = &NET_CB;
    rc = irohds_net_endpoint_init(&E.loop, &nc, &E.ep);
    if (rc) {
        fprintf(stderr, "evil_peer: cannot listen on %s: %s\n", listen, strerror(-rc));
        return 1;
    }
    uint64_t seed;
    randombytes_buf(&seed, sizeof seed);
    if (irohds_gossip_init(&E.gossip, E.id, NULL, seed) != 0)
        return 1;
    uint8_t pd[64];
    int pdl = addr_info_of(&E.listen_addr, pd, sizeof pd);
    if (pdl > 0)
        irohds_gossip_set_peer_data(E.gossip, pd, (size_t)pdl);
    if (E.mode == M_GARBAGE) {
        E.udp_fd = socket(E.boot_addr.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    }
    uv_timer_init(&E.loop, &E.gossip_timer);
    uv_timer_init(&E.loop, &E.tick);
    uv_timer_init(&E.loop, &E.end);
    uv_signal_init(&E.loop, &E.sigterm);
    uv_signal_start(&E.sigterm, on_sigterm, SIGTERM);
    E.started_us = irohds_now_us();
    char hex[65];
    irohds_hex_encode(E.id, 32, hex);
    IROHDS_INFO("evil: %s@%s, mode %s, joining %s through %.16s", hex, listen, mode, E.ns, boot);
    join_topic();
    uv_timer_start(&E.tick, on_tick, TICK_MS, TICK_MS);
    /* a backstop: the tick ends the run --duration after we started acting */
    uv_timer_start(&E.end, on_end, (uint64_t)((E.duration_s + E.wait_neighbor_s + 5) * 1000), 0);
    uv_run(&E.loop, UV_RUN_DEFAULT);
    return 0; /* the OS closes the socket; peers see our silence */
}
