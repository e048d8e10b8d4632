/*
 * test_mdns: mDNS instances on a simulated multicast medium with a virtual
 * clock.
 *
 * The medium delivers every multicast packet to every running instance,
 * the sender included (multicast loopback), 1 ms later, and unicast
 * packets to the instance with that address or, for other ports, to an
 * "outside" inbox the test reads.  The clock jumps from deadline to
 * deadline.  The test itself plays other hosts by injecting hand-built
 * packets: a plain querier, a legacy resolver, avahi announcing a printer,
 * a swarm-discovery (iroh) node, and garbage.
 *
 * Expected values come from the RFCs (delays, intervals, TTL rules) and
 * from the record layout written out by hand, not from the code's output.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "check.h"
#include "mdns/mdns.h"

#define NODES 6
#define FLIGHT 256
#define LOG 4096
#define EVLOG 256

typedef struct flight {
    int64_t at;
    int from; /* node index, or -1 for the test */
    irohds_mdns_packet pkt;
} flight;

typedef struct sent {
    int64_t at;
    int from;
    bool unicast, response;
    irohds_dns_addr to;
    size_t len;
    uint8_t data[IROHDS_MDNS_PKT_MAX];
} sent;

typedef struct node {
    irohds_mdns *m;
    bool up;
    uint8_t pk[32], sk[64];
    irohds_dns_addr ip;
    int64_t deadline;
    size_t nev;
    irohds_mdns_event ev[EVLOG];
    int64_t ev_at[EVLOG];
} node;

typedef struct sim {
    int64_t now;
    node n[NODES];
    flight fl[FLIGHT];
    size_t nfl;
    sent log[LOG];
    size_t nlog;
    sent outside[64]; /* unicast to ports other than 5353 */
    size_t noutside;
} sim;

static sim S;

static irohds_dns_addr ip4(int a, int b, int c, int d, uint16_t port)
{
    irohds_dns_addr x = {.family = 4, .ip = {(uint8_t)a, (uint8_t)b, (uint8_t)c, (uint8_t)d},
                         .port = port};
    return x;
}

static void keypair(int seed, uint8_t pk[32], uint8_t sk[64])
{
    uint8_t s[32];
    memset(s, seed, sizeof s);
    crypto_sign_seed_keypair(pk, sk, s);
}

static void sim_reset(void)
{
    for (int i = 0; i < NODES; i++)
        irohds_mdns_free(S.n[i].m);
    memset(&S, 0, sizeof S);
}

/* Node i: key from seed i+1, address 10.0.0.(i+1), QUIC port 4000+i. */
static void node_start(int i, const char *const *ns, size_t n_ns, const char *relay, uint32_t ttl)
{
    node *x = &S.n[i];
    keypair(i + 1, x->pk, x->sk);
    x->ip = ip4(10, 0, 0, i + 1, IROHDS_MDNS_PORT);
    irohds_dns_addr a = ip4(10, 0, 0, i + 1, 0);
    irohds_mdns_cfg cfg = {.port = (uint16_t)(4000 + i), .addrs = &a, .n_addrs = 1, .ns = ns,
                           .n_ns = n_ns, .relay = relay, .ttl_s = ttl,
                           .seed = 0x1234567ULL * (uint64_t)(i + 1), .now_ms = S.now};
    memcpy(cfg.id, x->pk, 32);
    x->m = irohds_mdns_new(&cfg);
    CHECK(x->m != NULL, "node %d start", i);
    x->up = true;
    x->deadline = S.now;
}

static void push(int from, const irohds_mdns_packet *pkt)
{
    CHECK(S.nfl < FLIGHT, "medium full");
    if (S.nfl == FLIGHT)
        return;
    S.fl[S.nfl++] = (flight){.at = S.now + 1, .from = from, .pkt = *pkt};
    if (S.nlog < LOG) {
        sent *l = &S.log[S.nlog++];
        l->at = S.now, l->from = from, l->unicast = pkt->unicast, l->to = pkt->to;
        l->len = pkt->len;
        l->response = pkt->len > 2 && (pkt->data[2] & 0x80);
        memcpy(l->data, pkt->data, pkt->len);
    }
}

static void drain(int i)
{
    node *x = &S.n[i];
    irohds_mdns_packet pkt;
    irohds_mdns_event ev;
    x->deadline = irohds_mdns_periodic(x->m, S.now);
    CHECK(x->deadline > S.now, "node %d: deadline %lld not after now %lld", i,
          (long long)x->deadline, (long long)S.now);
    while (irohds_mdns_next_packet(x->m, &pkt))
        push(i, &pkt);
    while (irohds_mdns_next_event(x->m, &ev)) {
        CHECK(x->nev < EVLOG, "event log full");
        if (x->nev < EVLOG) {
            x->ev_at[x->nev] = S.now;
            x->ev[x->nev++] = ev;
        }
    }
}

static irohds_dns_addr source_of(int from)
{
    return from >= 0 ? S.n[from].ip : ip4(10, 0, 0, 99, IROHDS_MDNS_PORT);
}

static void deliver(const flight *f)
{
    irohds_dns_addr src = source_of(f->from);
    if (f->pkt.unicast && f->pkt.to.port != IROHDS_MDNS_PORT) {
        if (S.noutside < 64) {
            sent *o = &S.outside[S.noutside++];
            o->at = S.now, o->from = f->from, o->to = f->pkt.to, o->len = f->pkt.len;
            memcpy(o->data, f->pkt.data, f->pkt.len);
        }
        return;
    }
    for (int i = 0; i < NODES; i++) {
        node *x = &S.n[i];
        if (!x->up)
            continue;
        if (f->pkt.unicast && !irohds_dns_addr_eq(&f->pkt.to, &x->ip))
            continue;
        irohds_mdns_receive(x->m, S.now, f->pkt.data, f->pkt.len, &src);
        drain(i);
    }
}

static int64_t next_time(void)
{
    int64_t t = INT64_MAX;
    for (int i = 0; i < NODES; i++)
        if (S.n[i].up && S.n[i].deadline < t)
            t = S.n[i].deadline;
    for (size_t k = 0; k < S.nfl; k++)
        if (S.fl[k].at < t)
            t = S.fl[k].at;
    return t;
}

static void run_until(int64_t end)
{
    for (;;) {
        int64_t t = next_time();
        if (t > end)
            break;
        if (t > S.now)
            S.now = t;
        for (size_t k = 0; k < S.nfl;) {
            if (S.fl[k].at <= S.now) {
                flight f = S.fl[k];
                S.fl[k] = S.fl[--S.nfl];
                deliver(&f);
            } else {
                k++;
            }
        }
        for (int i = 0; i < NODES; i++)
            if (S.n[i].up && S.n[i].deadline <= S.now)
                drain(i);
    }
    S.now = end;
}

/* The test sends a packet as host 10.0.0.99 (port given). */
static void inject(const uint8_t *buf, size_t len, uint16_t port)
{
    irohds_mdns_packet pkt = {.len = len};
    memcpy(pkt.data, buf, len);
    S.fl[S.nfl++] = (flight){.at = S.now + 1, .from = -1, .pkt = pkt};
    S.fl[S.nfl - 1].from = -1;
    if (port != IROHDS_MDNS_PORT) { /* deliver ourselves with the odd source port */
        S.nfl--;
        S.now++;
        irohds_dns_addr src = ip4(10, 0, 0, 99, port);
        for (int i = 0; i < NODES; i++)
            if (S.n[i].up) {
                irohds_mdns_receive(S.n[i].m, S.now, buf, len, &src);
                drain(i);
            }
    }
}

/* ------------------------------------------------------------ helpers */

static const irohds_mdns_event *find_event(int i, enum irohds_mdns_event_kind kind,
                                           const uint8_t id[32], int64_t *at)
{
    for (size_t k = 0; k < S.n[i].nev; k++)
        if (S.n[i].ev[k].kind == kind && memcmp(S.n[i].ev[k].peer.id, id, 32) == 0) {
            if (at)
                *at = S.n[i].ev_at[k];
            return &S.n[i].ev[k];
        }
    return NULL;
}

static size_t count_events(int i, enum irohds_mdns_event_kind kind, const uint8_t id[32])
{
    size_t c = 0;
    for (size_t k = 0; k < S.n[i].nev; k++)
        c += S.n[i].ev[k].kind == kind && memcmp(S.n[i].ev[k].peer.id, id, 32) == 0;
    return c;
}

static bool has_ns(const irohds_mdns_peer *p, const char *ns)
{
    for (size_t i = 0; i < p->n_ns; i++) {
        size_t l;
        const char *s = irohds_mdns_peer_ns(p, i, &l);
        if (l == strlen(ns) && memcmp(s, ns, l) == 0)
            return true;
    }
    return false;
}

/* Sent packets of node `from` (-2: any) after t0: responses or queries. */
static size_t count_sent(int from, bool response, int64_t t0, int64_t t1)
{
    size_t c = 0;
    for (size_t k = 0; k < S.nlog; k++)
        c += (from == -2 || S.log[k].from == from) && S.log[k].response == response &&
             S.log[k].at >= t0 && S.log[k].at < t1;
    return c;
}

static const sent *first_sent(int from, bool response, int64_t t0)
{
    for (size_t k = 0; k < S.nlog; k++)
        if (S.log[k].from == from && S.log[k].response == response && S.log[k].at >= t0)
            return &S.log[k];
    return NULL;
}

static void b32_of(const uint8_t id[32], char out[64])
{
    irohds_dns_b32_encode(IROHDS_B32_RFC4648, id, 32, out, 64);
}

/* A browse query for _irohv1._udp.local as the test host; optional known
 * answer (the PTR to `ka` with TTL ka_ttl), QU bit, id. */
static size_t browse_query(uint8_t *buf, uint16_t id, bool qu, const uint8_t *ka, uint32_t ka_ttl)
{
    irohds_dns_writer w;
    irohds_dns_name svc;
    irohds_dns_name_from_text(&svc, "_irohv1._udp.local");
    irohds_dns_writer_init(&w, buf, 1500, id, 0);
    irohds_dns_write_question(&w, &svc, IROHDS_DNS_PTR, (uint16_t)(1 | (qu ? 0x8000 : 0)));
    if (ka) {
        char b32[64];
        b32_of(ka, b32);
        irohds_dns_rr rr = {.name = svc, .type = IROHDS_DNS_PTR, .rclass = 1, .ttl = ka_ttl};
        irohds_dns_name_prepend(&rr.u.ptr, b32, 52, &svc);
        irohds_dns_write_rr(&w, IROHDS_DNS_ANSWER, &rr);
    }
    size_t len = 0;
    irohds_dns_writer_finish(&w, &len);
    return len;
}

/* ------------------------------------------------------------ scenarios */

static const char *const NS_A[] = {"alpha", "shared"};
static const char *const NS_B[] = {"beta", "shared"};

static void test_discovery(void)
{
    sim_reset();
    node_start(0, NS_A, 2, NULL, 0);
    run_until(300);
    node_start(1, NS_B, 2, NULL, 0);
    run_until(700);
    node_start(2, NULL, 0, "https://relay.example./", 0);
    run_until(2000);
    for (int i = 0; i < 3; i++) {
        for (int j = 0; j < 3; j++) {
            int64_t at;
            const irohds_mdns_event *e = find_event(i, IROHDS_MDNS_PEER_SEEN, S.n[j].pk, &at);
            if (i == j) {
                CHECK(e == NULL, "node %d saw itself", i);
                continue;
            }
            CHECK(e != NULL, "node %d did not see node %d", i, j);
            if (!e)
                continue;
            int64_t later = j > i ? j : i;
            int64_t start = later == 0 ? 0 : later == 1 ? 300 : 700;
            CHECK(at - start <= 1200, "node %d saw %d %lld ms after the later start", i, j,
                  (long long)(at - start));
            const irohds_mdns_peer *p = &e->peer;
            irohds_dns_addr want = ip4(10, 0, 0, j + 1, (uint16_t)(4000 + j));
            CHECK(p->n_addrs == 1 && irohds_dns_addr_eq(&p->addrs[0], &want) &&
                      p->port == 4000 + j,
                  "node %d's view of %d: addrs", i, j);
            if (j == 0)
                CHECK(p->n_ns == 2 && has_ns(p, "alpha") && has_ns(p, "shared"), "ns of A");
            if (j == 1)
                CHECK(p->n_ns == 2 && has_ns(p, "beta") && has_ns(p, "shared"), "ns of B");
            if (j == 2)
                CHECK(p->n_ns == 0 && strcmp(p->relay, "https://relay.example./") == 0,
                      "C: relay, no ns");
            CHECK(count_events(i, IROHDS_MDNS_PEER_SEEN, S.n[j].pk) == 1,
                  "node %d: one SEEN for %d (repeats are not events)", i, j);
        }
    }
    /* every node heard its own packets and ignored them */
    for (int i = 0; i < 3; i++)
        CHECK(irohds_mdns_get_stats(S.n[i].m)->own > 0, "node %d own", i);
}

static void test_cadence_alone(void)
{
    sim_reset();
    node_start(0, NS_A, 2, NULL, 0);
    run_until(130000);
    /* announcements: at 0 and 1000 (RFC 6762 §8.3), nothing else: a node
     * does not answer its own queries */
    CHECK(count_sent(0, true, 0, 130000) == 2, "two announcements, got %zu",
          count_sent(0, true, 0, 130000));
    const sent *a1 = first_sent(0, true, 0), *a2 = a1 ? first_sent(0, true, a1->at + 1) : NULL;
    CHECK(a1 && a1->at == 0 && a2 && a2->at == 1000, "announced at 0 and 1000");
    /* queries: first 20-120 ms in, then 1, 2, 4, ..., 32 s, then 60 s */
    int64_t t[12];
    size_t nq = 0;
    for (size_t k = 0; k < S.nlog && nq < 12; k++)
        if (!S.log[k].response)
            t[nq++] = S.log[k].at;
    CHECK(nq == 8, "eight queries in 130 s, got %zu", nq);
    CHECK(nq > 0 && t[0] >= 20 && t[0] <= 120, "first query at %lld", nq ? (long long)t[0] : -1);
    static const int64_t gaps[] = {1000, 2000, 4000, 8000, 16000, 32000, 60000};
    for (size_t k = 1; k < nq && k < 8; k++)
        CHECK(t[k] - t[k - 1] == gaps[k - 1], "gap %zu: %lld", k, (long long)(t[k] - t[k - 1]));
    const irohds_mdns_stats *st = irohds_mdns_get_stats(S.n[0].m);
    CHECK(st->own == st->queries_sent + st->responses_sent, "all own packets recognised");
    CHECK(S.n[0].nev == 0, "no events alone");
}

/* The announcement of node A, checked against the layout written out by
 * hand (docs/discovery-records.md). */
static void test_record_layout(void)
{
    sim_reset();
    static const char *const ns[] = {"a,b%c", ""};
    node_start(0, ns, 2, "https://r./", 0);
    run_until(10);
    const sent *a = first_sent(0, true, 0);
    CHECK(a != NULL, "announcement");
    if (!a)
        return;
    char b32[64];
    b32_of(S.n[0].pk, b32);
    uint8_t want[512];
    size_t n = 0;
    memcpy(want, "\x00\x00\x84\x00\x00\x00\x00\x03\x00\x00\x00\x01", 12), n = 12;
    /* 12: PTR _irohv1._udp.local -> <b32> + ptr(12), TTL 120 */
    memcpy(want + n, "\x07_irohv1\x04_udp\x05local\x00", 20), n += 20;
    memcpy(want + n, "\x00\x0c\x00\x01\x00\x00\x00\x78\x00\x37", 10), n += 10;
    size_t inst = n; /* 42 */
    want[n++] = 52;
    memcpy(want + n, b32, 52), n += 52;
    want[n++] = 0xc0, want[n++] = 12;
    /* 97: SRV ptr(42) 0 0 4000 <b32>.local written whole */
    want[n++] = 0xc0, want[n++] = (uint8_t)inst;
    memcpy(want + n, "\x00\x21\x00\x01\x00\x00\x00\x78\x00\x42", 10), n += 10;
    memcpy(want + n, "\x00\x00\x00\x00\x0f\xa0", 6), n += 6;
    size_t host = n;
    want[n++] = 52;
    memcpy(want + n, b32, 52), n += 52;
    memcpy(want + n, "\x05local\x00", 7), n += 7;
    /* TXT ptr(42): "relay=https://r./" "ns=a%2Cb%25c," */
    want[n++] = 0xc0, want[n++] = (uint8_t)inst;
    static const char s1[] = "relay=https://r./", s2[] = "ns=a%2Cb%25c,";
    memcpy(want + n, "\x00\x10\x00\x01\x00\x00\x00\x78\x00", 9), n += 9;
    want[n++] = (uint8_t)(1 + strlen(s1) + 1 + strlen(s2));
    want[n++] = (uint8_t)strlen(s1);
    memcpy(want + n, s1, strlen(s1)), n += strlen(s1);
    want[n++] = (uint8_t)strlen(s2);
    memcpy(want + n, s2, strlen(s2)), n += strlen(s2);
    /* additional: A ptr(host) 10.0.0.1 */
    want[n++] = 0xc0, want[n++] = (uint8_t)host;
    memcpy(want + n, "\x00\x01\x00\x01\x00\x00\x00\x78\x00\x04\x0a\x00\x00\x01", 14), n += 14;
    CHECK(a->len == n && memcmp(a->data, want, n) == 0, "announcement bytes (len %zu, want %zu)",
          a->len, n);
    CHECK(!a->unicast, "multicast");
    /* and what a peer makes of it: the escaped names come back */
    node_start(1, NULL, 0, NULL, 0);
    run_until(3000);
    const irohds_mdns_event *e = find_event(1, IROHDS_MDNS_PEER_SEEN, S.n[0].pk, NULL);
    CHECK(e && e->peer.n_ns == 2 && has_ns(&e->peer, "a,b%c") && has_ns(&e->peer, ""),
          "escaped namespaces round trip");
}

static void settle_two(void)
{
    sim_reset();
    node_start(0, NS_A, 2, NULL, 0);
    node_start(1, NS_B, 2, NULL, 0);
    run_until(5000);
    CHECK(find_event(0, IROHDS_MDNS_PEER_SEEN, S.n[1].pk, NULL) != NULL, "A sees B");
    CHECK(find_event(1, IROHDS_MDNS_PEER_SEEN, S.n[0].pk, NULL) != NULL, "B sees A");
}

static void test_answers(void)
{
    uint8_t q[1500];
    settle_two();
    /* a plain multicast query: both answer within 20-120 ms (+1 ms medium) */
    int64_t t0 = S.now + 1;
    inject(q, browse_query(q, 0, false, NULL, 0), IROHDS_MDNS_PORT);
    run_until(t0 + 150);
    for (int i = 0; i < 2; i++) {
        const sent *r = first_sent(i, true, t0);
        CHECK(r && r->at - t0 >= 20 && r->at - t0 <= 120 && !r->unicast,
              "node %d answered after %lld ms", i, r ? (long long)(r->at - t0) : -1LL);
    }
    /* a second query 200 ms later: no second multicast within a second */
    const sent *r0 = first_sent(0, true, t0);
    int64_t first = r0 ? r0->at : t0;
    run_until(t0 + 200);
    inject(q, browse_query(q, 0, false, NULL, 0), IROHDS_MDNS_PORT);
    run_until(first + 999);
    CHECK(count_sent(0, true, first + 1, first + 999) == 0, "rate limit");
    run_until(first + 1200);
    CHECK(count_sent(0, true, first + 1000, first + 1200) == 1, "answered at the 1 s mark");

    /* known-answer suppression: A's PTR with TTL 60 (= half of 120) */
    run_until(S.now + 2000);
    t0 = S.now + 1;
    inject(q, browse_query(q, 0, false, S.n[0].pk, 60), IROHDS_MDNS_PORT);
    run_until(t0 + 1500);
    CHECK(count_sent(0, true, t0, t0 + 1500) == 0, "A suppressed by its known answer");
    CHECK(count_sent(1, true, t0, t0 + 1500) == 1, "B still answers");
    t0 = S.now + 1;
    inject(q, browse_query(q, 0, false, S.n[0].pk, 59), IROHDS_MDNS_PORT);
    run_until(t0 + 1500);
    CHECK(count_sent(0, true, t0, t0 + 1500) == 1, "TTL 59 < half: A answers");

    /* QU right after a multicast: unicast answer; long after: multicast */
    t0 = S.now + 1;
    inject(q, browse_query(q, 0, true, NULL, 0), IROHDS_MDNS_PORT);
    run_until(t0 + 200);
    const sent *u = first_sent(0, true, t0);
    irohds_dns_addr test_host = ip4(10, 0, 0, 99, IROHDS_MDNS_PORT);
    CHECK(u && u->unicast && irohds_dns_addr_eq(&u->to, &test_host) && u->at == t0,
          "QU: unicast at once");
    run_until(62000); /* A last multicast at ~31 s (answering B's query), next at ~63 s */
    int64_t last = 0;
    for (size_t k = 0; k < S.nlog; k++)
        if (S.log[k].from == 0 && S.log[k].response && !S.log[k].unicast)
            last = S.log[k].at;
    if (S.now - last > 30000) {
        t0 = S.now + 1;
        inject(q, browse_query(q, 0, true, NULL, 0), IROHDS_MDNS_PORT);
        run_until(t0 + 200);
        u = first_sent(0, true, t0);
        CHECK(u && !u->unicast, "QU long after a multicast: multicast");
    } else {
        CHECK(0, "A multicast at %lld, expected quiet", (long long)last);
    }
}

static void test_legacy(void)
{
    uint8_t q[1500];
    settle_two();
    size_t len = browse_query(q, 0x1234, false, NULL, 0);
    inject(q, len, 40000);
    run_until(S.now + 5);
    CHECK(S.noutside == 2, "two legacy answers, got %zu", S.noutside);
    irohds_dns_addr to = ip4(10, 0, 0, 99, 40000);
    for (size_t k = 0; k < S.noutside; k++) {
        const sent *o = &S.outside[k];
        irohds_dns_reader r;
        irohds_dns_question qq;
        irohds_dns_rr rr;
        CHECK(irohds_dns_addr_eq(&o->to, &to), "to the querier's port");
        CHECK(irohds_dns_reader_init(&r, o->data, o->len) == 0 && r.id == 0x1234 &&
                  r.flags == 0x8400 && r.count[0] == 1,
              "id and question echoed");
        CHECK(irohds_dns_read_question(&r, &qq) == 1 && qq.type == IROHDS_DNS_PTR, "question");
        int recs = 0, srv = 0;
        while (irohds_dns_read_rr(&r, &rr) == 1) {
            recs++;
            CHECK(rr.ttl <= 10 && !rr.cache_flush, "legacy TTL %u", rr.ttl);
            if (rr.type == IROHDS_DNS_SRV)
                srv = rr.u.srv.port;
        }
        CHECK(recs == 4 && (srv == 4000 || srv == 4001), "PTR SRV TXT A, srv port %d", srv);
    }
}

static void test_goodbye_and_expiry(void)
{
    settle_two();
    /* B leaves politely */
    int64_t t0 = S.now;
    irohds_mdns_goodbye(S.n[1].m, S.now);
    drain(1);
    S.n[1].up = false;
    run_until(t0 + 2000);
    int64_t at;
    const irohds_mdns_event *e = find_event(0, IROHDS_MDNS_PEER_GONE, S.n[1].pk, &at);
    CHECK(e && e->goodbye && at - t0 >= 1000 && at - t0 <= 1010, "goodbye: gone after %lld",
          e ? (long long)(at - t0) : -1LL);

    /* C joins, A sees it, then C vanishes without a word */
    node_start(2, NULL, 0, NULL, 30);
    run_until(S.now + 3000);
    CHECK(find_event(0, IROHDS_MDNS_PEER_SEEN, S.n[2].pk, NULL) != NULL, "A sees C");
    int64_t last_c = 0;
    for (size_t k = 0; k < S.nlog; k++)
        if (S.log[k].from == 2 && S.log[k].response)
            last_c = S.log[k].at;
    S.n[2].up = false;
    int64_t queries_before = (int64_t)irohds_mdns_get_stats(S.n[0].m)->queries_sent;
    run_until(last_c + 40000);
    e = find_event(0, IROHDS_MDNS_PEER_GONE, S.n[2].pk, &at);
    CHECK(e && !e->goodbye, "C expired");
    /* C's records had TTL 30: gone 30 s after the last response A heard */
    CHECK(e && at - (last_c + 1) == 30000, "expired %lld ms after the last sighting",
          e ? (long long)(at - last_c - 1) : -1LL);
    int64_t refreshes = (int64_t)irohds_mdns_get_stats(S.n[0].m)->queries_sent - queries_before;
    CHECK(refreshes >= 4, "refresh queries at 80..95 %%: %lld", (long long)refreshes);
    CHECK(find_event(0, IROHDS_MDNS_PEER_GONE, S.n[2].pk, NULL) == e &&
              count_events(0, IROHDS_MDNS_PEER_GONE, S.n[2].pk) == 1,
          "one GONE");
}

static void test_refresh_keeps_alive(void)
{
    sim_reset();
    node_start(0, NS_A, 2, NULL, 10);
    node_start(1, NS_B, 2, NULL, 10);
    run_until(120000); /* twelve lifetimes of 10 s */
    CHECK(count_events(0, IROHDS_MDNS_PEER_GONE, S.n[1].pk) == 0, "refreshed peers stay");
    CHECK(count_events(1, IROHDS_MDNS_PEER_GONE, S.n[0].pk) == 0, "both ways");
    CHECK(count_events(0, IROHDS_MDNS_PEER_SEEN, S.n[1].pk) == 1, "and are not re-announced");
}

/* A host that wakes up late (suspend, a stalled loop) gets one catch-up
 * query and a deadline in the future, not a burst of overdue work. */
static void test_late_host(void)
{
    settle_two();
    S.n[0].up = false; /* A is not driven for 110 s: three refresh stages pass */
    run_until(S.now + 110000);
    uint64_t q0 = irohds_mdns_get_stats(S.n[0].m)->queries_sent;
    int64_t late = S.now;
    int64_t d = irohds_mdns_periodic(S.n[0].m, late);
    CHECK(d > late, "deadline after a late wake-up");
    CHECK(irohds_mdns_get_stats(S.n[0].m)->queries_sent == q0 + 1, "one catch-up query");
    irohds_mdns_packet pkt;
    while (irohds_mdns_next_packet(S.n[0].m, &pkt))
        ;
    /* B's records (TTL 120) were last heard > 95 s ago but are not expired */
    CHECK(count_events(0, IROHDS_MDNS_PEER_GONE, S.n[1].pk) == 0, "B not expired yet");
    d = irohds_mdns_periodic(S.n[0].m, late + 30000);
    irohds_mdns_event ev;
    bool gone = false;
    while (irohds_mdns_next_event(S.n[0].m, &ev))
        gone |= ev.kind == IROHDS_MDNS_PEER_GONE;
    CHECK(gone && d > late + 30000, "expired when its time came, deadline ahead");
}

static void test_changes(void)
{
    settle_two();
    irohds_dns_addr na[2] = {ip4(10, 0, 1, 2, 0), ip4(10, 0, 0, 2, 0)};
    int64_t t0 = S.now;
    CHECK(irohds_mdns_set_addrs(S.n[1].m, S.now, 4444, na, 1) == 0, "set_addrs");
    drain(1);
    run_until(t0 + 50);
    int64_t at;
    const irohds_mdns_event *e = NULL;
    for (size_t k = 0; k < S.n[0].nev; k++)
        if (S.n[0].ev[k].kind == IROHDS_MDNS_PEER_SEEN && S.n[0].ev_at[k] > t0)
            e = &S.n[0].ev[k];
    irohds_dns_addr want = ip4(10, 0, 1, 2, 4444);
    CHECK(e && e->peer.n_addrs == 1 && irohds_dns_addr_eq(&e->peer.addrs[0], &want) &&
              e->peer.port == 4444,
          "new address and port seen");
    /* the announcement said goodbye to 10.0.0.2 with TTL 0 */
    const sent *ann = first_sent(1, true, t0);
    bool gone = false;
    if (ann) {
        irohds_dns_reader r;
        irohds_dns_rr rr;
        irohds_dns_reader_init(&r, ann->data, ann->len);
        while (irohds_dns_read_rr(&r, &rr) == 1)
            gone |= rr.type == IROHDS_DNS_A && rr.ttl == 0 && memcmp(rr.u.a, "\x0a\0\0\x02", 4) == 0;
    }
    CHECK(gone, "old address announced with TTL 0");

    static const char *const ns2[] = {"gamma"};
    t0 = S.now;
    CHECK(irohds_mdns_set_ns(S.n[1].m, S.now, ns2, 1) == 0, "set_ns");
    drain(1);
    run_until(t0 + 50);
    e = NULL;
    for (size_t k = 0; k < S.n[0].nev; k++)
        if (S.n[0].ev[k].kind == IROHDS_MDNS_PEER_SEEN && S.n[0].ev_at[k] > t0)
            e = &S.n[0].ev[k];
    CHECK(e && e->peer.n_ns == 1 && has_ns(&e->peer, "gamma"), "new namespaces seen");

    /* limits: 33 namespaces, a name of 128 bytes, too many bytes in all */
    const char *many[40];
    char names[40][128];
    for (int i = 0; i < 40; i++) {
        snprintf(names[i], sizeof names[i], "namespace-number-%02d", i);
        many[i] = names[i];
    }
    CHECK(irohds_mdns_set_ns(S.n[1].m, S.now, many, 33) == -EMSGSIZE, "33 namespaces");
    CHECK(irohds_mdns_set_ns(S.n[1].m, S.now, many, 32) == 0, "32 short namespaces");
    char long_name[129];
    memset(long_name, 'x', 128);
    long_name[128] = '\0';
    const char *one[] = {long_name};
    CHECK(irohds_mdns_set_ns(S.n[1].m, S.now, one, 1) == -EMSGSIZE, "128-byte name");
    long_name[127] = '\0';
    CHECK(irohds_mdns_set_ns(S.n[1].m, S.now, one, 1) == 0, "127-byte name");
    for (int i = 0; i < 12; i++) {
        memset(names[i], 'a' + i, 120);
        names[i][120] = '\0';
    }
    CHECK(irohds_mdns_set_ns(S.n[1].m, S.now, many, 12) == -EMSGSIZE, "12 x 120 bytes");
    /* 8 x 120 fill ns, ns1, ns2, ns3 (two per string) and still fit a packet */
    CHECK(irohds_mdns_set_ns(S.n[1].m, S.now, many, 8) == 0, "8 x 120 bytes");
    drain(1);
    t0 = S.now;
    run_until(t0 + 50);
    e = NULL;
    for (size_t k = 0; k < S.n[0].nev; k++)
        if (S.n[0].ev[k].kind == IROHDS_MDNS_PEER_SEEN && S.n[0].ev_at[k] > t0)
            e = &S.n[0].ev[k];
    CHECK(e && e->peer.n_ns == 8 && has_ns(&e->peer, names[7]), "continued list read back");
    /* the old value stays after a refused change */
    CHECK(irohds_mdns_set_ns(S.n[1].m, S.now, many, 33) == -EMSGSIZE, "refused");
    irohds_dns_addr nine[9];
    for (int i = 0; i < 9; i++)
        nine[i] = ip4(10, 0, 2, i, 0);
    CHECK(irohds_mdns_set_addrs(S.n[1].m, S.now, 1, nine, 9) == -EMSGSIZE, "9 addresses");
    nine[0].family = 5;
    CHECK(irohds_mdns_set_addrs(S.n[1].m, S.now, 1, nine, 1) == -EINVAL, "bad family");
    /* no addresses: a goodbye */
    t0 = S.now;
    CHECK(irohds_mdns_set_addrs(S.n[1].m, S.now, 1, NULL, 0) == 0, "no addresses");
    drain(1);
    run_until(t0 + 1100);
    e = find_event(0, IROHDS_MDNS_PEER_GONE, S.n[1].pk, &at);
    CHECK(e && e->goodbye, "withdrawn addresses: goodbye");
}

/* avahi announcing a printer, queries for other services, garbage. */
static void test_foreign_traffic(void)
{
    uint8_t buf[1500];
    settle_two();
    size_t nev0 = S.n[0].nev, sent0 = S.nlog;
    irohds_dns_writer w;
    irohds_dns_name ptr, inst, host;
    irohds_dns_name_from_text(&ptr, "_ipp._tcp.local");
    irohds_dns_name_from_text(&inst, "Office Printer._ipp._tcp.local");
    irohds_dns_name_from_text(&host, "printer.local");
    irohds_dns_writer_init(&w, buf, sizeof buf, 0, 0x8400);
    irohds_dns_rr rr = {.name = ptr, .type = IROHDS_DNS_PTR, .rclass = 1, .ttl = 4500,
                        .u.ptr = inst};
    irohds_dns_write_rr(&w, IROHDS_DNS_ANSWER, &rr);
    rr = (irohds_dns_rr){.name = inst, .type = IROHDS_DNS_SRV, .rclass = 1, .cache_flush = true,
                         .ttl = 120, .u.srv = {0, 0, 631, host}};
    irohds_dns_write_rr(&w, IROHDS_DNS_ANSWER, &rr);
    uint8_t txt[64];
    size_t tl = 0;
    irohds_dns_txt_append(txt, sizeof txt, &tl, "txtvers=1", 9);
    rr = (irohds_dns_rr){.name = inst, .type = IROHDS_DNS_TXT, .rclass = 1, .cache_flush = true,
                         .ttl = 4500, .rdata = txt, .rdlen = (uint16_t)tl};
    irohds_dns_write_rr(&w, IROHDS_DNS_ANSWER, &rr);
    rr = (irohds_dns_rr){.name = host, .type = IROHDS_DNS_A, .rclass = 1, .cache_flush = true,
                         .ttl = 120, .u.a = {10, 0, 0, 50}};
    irohds_dns_write_rr(&w, IROHDS_DNS_ADDITIONAL, &rr);
    size_t len;
    irohds_dns_writer_finish(&w, &len);
    uint64_t foreign0 = irohds_mdns_get_stats(S.n[0].m)->foreign;
    inject(buf, len, IROHDS_MDNS_PORT);
    /* a query for printers */
    irohds_dns_writer_init(&w, buf, sizeof buf, 0, 0);
    irohds_dns_write_question(&w, &ptr, IROHDS_DNS_PTR, 1);
    irohds_dns_writer_finish(&w, &len);
    inject(buf, len, IROHDS_MDNS_PORT);
    run_until(S.now + 500);
    CHECK(S.n[0].nev == nev0, "no events from avahi");
    CHECK(irohds_mdns_get_stats(S.n[0].m)->foreign == foreign0 + 2, "counted foreign");
    bool answered = false;
    for (size_t k = sent0; k < S.nlog; k++)
        answered |= S.log[k].response;
    CHECK(!answered, "no answer to a printer query");

    /* a service enumeration query is answered with our service type */
    irohds_dns_name en;
    irohds_dns_name_from_text(&en, "_services._dns-sd._udp.local");
    irohds_dns_writer_init(&w, buf, sizeof buf, 0, 0);
    irohds_dns_write_question(&w, &en, IROHDS_DNS_PTR, 1);
    irohds_dns_writer_finish(&w, &len);
    int64_t t0 = S.now + 1;
    inject(buf, len, IROHDS_MDNS_PORT);
    run_until(t0 + 1200);
    const sent *r = first_sent(0, true, t0);
    CHECK(r != NULL, "enumeration answered");
    if (!r)
        return;
    bool enum_ok = false;
    {
        irohds_dns_reader rd;
        irohds_dns_name svc;
        irohds_dns_name_from_text(&svc, "_irohv1._udp.local");
        irohds_dns_reader_init(&rd, r->data, r->len);
        while (irohds_dns_read_rr(&rd, &rr) == 1)
            enum_ok |= rr.type == IROHDS_DNS_PTR && irohds_dns_name_eq(&rr.name, &en) &&
                       irohds_dns_name_eq(&rr.u.ptr, &svc);
    }
    CHECK(enum_ok, "service type enumeration");

    /* garbage, truncations, a response from the wrong port */
    uint64_t bad0 = irohds_mdns_get_stats(S.n[0].m)->malformed;
    irohds_dns_addr from = ip4(10, 0, 0, 99, IROHDS_MDNS_PORT);
    size_t nbad = 0;
    for (size_t cut = 0; cut < r->len; cut += 5, nbad++)
        CHECK(irohds_mdns_receive(S.n[0].m, S.now, r->data, cut, &from) == -EPROTO, "cut %zu",
              cut);
    uint8_t junk[300];
    for (int i = 0; i < 300; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    CHECK(irohds_mdns_receive(S.n[0].m, S.now, junk, sizeof junk, &from) == -EPROTO, "junk");
    nbad++;
    CHECK(irohds_mdns_get_stats(S.n[0].m)->malformed == bad0 + nbad, "malformed counted");
    /* B's announcement replayed from port 1234 is not a response to us */
    const sent *ann = first_sent(1, true, 0);
    irohds_dns_addr odd = ip4(10, 0, 0, 2, 1234);
    uint64_t f0 = irohds_mdns_get_stats(S.n[0].m)->foreign;
    CHECK(ann && irohds_mdns_receive(S.n[0].m, S.now, ann->data, ann->len, &odd) == 0 &&
              irohds_mdns_get_stats(S.n[0].m)->foreign == f0 + 1,
          "response from port 1234 ignored");
    CHECK(S.n[0].nev == nev0, "still no events");
}

/* An iroh node as swarm-discovery announces it: SRV and TXT in answers
 * with TTL 0, A in additionals with TTL 0, no PTR. */
static size_t swarm_discovery_response(uint8_t *buf, const uint8_t id[32], bool with_txt)
{
    char b32[64];
    b32_of(id, b32);
    irohds_dns_name svc, inst, local, target;
    irohds_dns_name_from_text(&svc, "_irohv1._udp.local");
    irohds_dns_name_from_text(&local, "local");
    irohds_dns_name_prepend(&inst, b32, 52, &svc);
    irohds_dns_name_prepend(&target, b32, 52, &local);
    irohds_dns_writer w;
    irohds_dns_writer_init(&w, buf, 1500, 0, 0x8400);
    irohds_dns_rr rr = {.name = inst, .type = IROHDS_DNS_SRV, .rclass = 1, .ttl = 0,
                        .u.srv = {0, 0, 11111, target}};
    irohds_dns_write_rr(&w, IROHDS_DNS_ANSWER, &rr);
    if (with_txt) {
        uint8_t txt[128];
        size_t tl = 0;
        irohds_dns_txt_append(txt, sizeof txt, &tl, "relay=https://euw1-1.relay.iroh.network./",
                              41);
        irohds_dns_txt_append(txt, sizeof txt, &tl, "user-data=foobar", 16);
        rr = (irohds_dns_rr){.name = inst, .type = IROHDS_DNS_TXT, .rclass = 1, .ttl = 0,
                             .rdata = txt, .rdlen = (uint16_t)tl};
        irohds_dns_write_rr(&w, IROHDS_DNS_ANSWER, &rr);
    }
    rr = (irohds_dns_rr){.name = target, .type = IROHDS_DNS_A, .rclass = 1, .ttl = 0,
                         .u.a = {192, 168, 1, 77}};
    irohds_dns_write_rr(&w, IROHDS_DNS_ADDITIONAL, &rr);
    size_t len = 0;
    irohds_dns_writer_finish(&w, &len);
    return len;
}

static void test_iroh_node(void)
{
    uint8_t buf[1500], pk[32], sk[64];
    settle_two();
    keypair(77, pk, sk);
    int64_t t0 = S.now;
    inject(buf, swarm_discovery_response(buf, pk, true), IROHDS_MDNS_PORT);
    run_until(t0 + 10);
    const irohds_mdns_event *e = find_event(0, IROHDS_MDNS_PEER_SEEN, pk, NULL);
    irohds_dns_addr want = ip4(192, 168, 1, 77, 11111);
    CHECK(e && e->peer.n_addrs == 1 && irohds_dns_addr_eq(&e->peer.addrs[0], &want) &&
              e->peer.n_ns == 0 &&
              strcmp(e->peer.relay, "https://euw1-1.relay.iroh.network./") == 0,
          "iroh node seen");
    /* TTL 0 is not a goodbye here; without a PTR goodbye it lives 20 s */
    run_until(t0 + 10000);
    inject(buf, swarm_discovery_response(buf, pk, false), IROHDS_MDNS_PORT); /* TXT-less */
    int64_t seen = S.now + 1; /* delivered 1 ms later */
    run_until(seen + 19990);
    CHECK(count_events(0, IROHDS_MDNS_PEER_GONE, pk) == 0, "alive through its compat lifetime");
    CHECK(count_events(0, IROHDS_MDNS_PEER_SEEN, pk) == 1, "TXT-less repeat keeps the relay");
    run_until(seen + 20010);
    int64_t at;
    e = find_event(0, IROHDS_MDNS_PEER_GONE, pk, &at);
    CHECK(e && !e->goodbye && at == seen + 20000, "iroh node expired after 20 s");
    CHECK(e && strcmp(e->peer.relay, "https://euw1-1.relay.iroh.network./") == 0,
          "GONE carries the last view");

    /* a label that is not a key: "x" * 52 decodes, but not to a point */
    uint8_t bogus[32];
    char b32[64];
    memset(b32, 'a', 52);
    b32[52] = '\0';
    CHECK(irohds_dns_b32_decode(IROHDS_B32_RFC4648, b32, 52, bogus, 32) == 32, "aaaa... decodes");
    size_t nev = S.n[0].nev;
    inject(buf, swarm_discovery_response(buf, bogus, true), IROHDS_MDNS_PORT);
    run_until(S.now + 10);
    CHECK(S.n[0].nev == nev, "no peer for a non-key label");
}

/* 256 peers fill the table; the 257th is refused and counted. */
static void test_peer_table(void)
{
    uint8_t buf[1500], pk[32], sk[64];
    sim_reset();
    node_start(0, NULL, 0, NULL, 0);
    run_until(10);
    for (int i = 0; i < IROHDS_MDNS_PEERS_MAX + 1; i++) {
        uint8_t seed[32] = {0};
        seed[0] = (uint8_t)i, seed[1] = (uint8_t)(i >> 8), seed[2] = 0xaa;
        crypto_sign_seed_keypair(pk, sk, seed);
        size_t len = swarm_discovery_response(buf, pk, false);
        irohds_dns_addr from = ip4(10, 0, 0, 99, IROHDS_MDNS_PORT);
        irohds_mdns_receive(S.n[0].m, S.now, buf, len, &from);
        drain(0);
    }
    CHECK(irohds_mdns_get_stats(S.n[0].m)->peers_full == 1, "257th refused");
    CHECK(S.n[0].nev == IROHDS_MDNS_PEERS_MAX, "256 SEEN, got %zu", S.n[0].nev);
    /* the known-answer list of the next query is bounded by the packet */
    run_until(S.now + 1500);
    const sent *q = NULL;
    for (size_t k = 0; k < S.nlog; k++)
        if (!S.log[k].response)
            q = &S.log[k];
    CHECK(q && q->len <= IROHDS_MDNS_PKT_MAX && irohds_dns_check(q->data, q->len) == 0,
          "query with known answers fits");
    irohds_dns_reader r;
    CHECK(q && irohds_dns_reader_init(&r, q->data, q->len) == 0 && r.count[1] > 10,
          "known answers included: %u", q ? r.count[1] : 0);
}

static void test_bad_config(void)
{
    irohds_mdns_cfg cfg = {.port = 1};
    irohds_dns_addr a = ip4(1, 2, 3, 4, 0);
    char relay[300];
    memset(relay, 'r', 299);
    relay[299] = '\0';
    cfg.relay = relay;
    CHECK(irohds_mdns_new(&cfg) == NULL && errno == EINVAL, "relay too long");
    cfg.relay = NULL;
    cfg.query_max_ms = 999;
    CHECK(irohds_mdns_new(&cfg) == NULL && errno == EINVAL, "query_max_ms < 1000");
    cfg.query_max_ms = 0;
    a.family = 0;
    cfg.addrs = &a, cfg.n_addrs = 1;
    CHECK(irohds_mdns_new(&cfg) == NULL && errno == EINVAL, "address family");
    a.family = 4;
    irohds_mdns *m = irohds_mdns_new(&cfg);
    CHECK(m != NULL, "minimal config");
    irohds_mdns_free(m);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    test_discovery();
    test_cadence_alone();
    test_record_layout();
    test_answers();
    test_legacy();
    test_goodbye_and_expiry();
    test_refresh_keeps_alive();
    test_late_host();
    test_changes();
    test_foreign_traffic();
    test_iroh_node();
    test_peer_table();
    test_bad_config();
    sim_reset();
    return check_summary();
}
