/*
 * mdns.c: the mDNS state machine (see mdns.h for the behaviour).
 *
 * State is a handful of timestamps (next query, next announcement, a
 * pending answer, the last multicast), the peer table and two queues.
 * Every input (a datagram, a change of what we advertise, the clock) does
 * its work at once and leaves packets and events in the queues; periodic()
 * does what came due and says when it next must run.
 *
 * Answers to multicast queries wait 20-120 ms (RFC 6762 §6: the PTR is
 * shared, others may answer too) and queries that arrive meanwhile fold
 * into the same answer; an announcement sent meanwhile stands in for it.
 * Nothing of ours is multicast twice within a second, except the second
 * announcement, which RFC 6762 §8.3 wants exactly one second after the
 * first.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "mdns/mdns_int.h"

#define ANNOUNCEMENTS 2
#define GOODBYE_GRACE_MS 1000
#define TTL_CAP_S 4500 /* a peer's claimed TTL beyond this is cut to it */
#define OWN_QID_MS 10000

static const unsigned ADVERTISED = REC_PTR | REC_SRV | REC_TXT;

/* ---------------------------------------------------------------- queues */

static void queue_packet(irohds_mdns *m, const irohds_mdns_packet *pkt)
{
    if (m->pkt_count == PKT_QUEUE) {
        m->stats.packets_dropped++;
        return;
    }
    m->pkts[(m->pkt_head + m->pkt_count++) % PKT_QUEUE] = *pkt;
}

bool irohds_mdns_next_packet(irohds_mdns *m, irohds_mdns_packet *out)
{
    if (m->pkt_count == 0)
        return false;
    *out = m->pkts[m->pkt_head];
    m->pkt_head = (m->pkt_head + 1) % PKT_QUEUE;
    m->pkt_count--;
    return true;
}

static void emit(irohds_mdns *m, enum irohds_mdns_event_kind kind, bool goodbye,
                 const irohds_mdns_peer *peer)
{
    if (m->ev_count == EVENT_QUEUE) {
        m->stats.events_dropped++;
        return;
    }
    irohds_mdns_event *e = &m->events[(m->ev_head + m->ev_count++) % EVENT_QUEUE];
    e->kind = kind;
    e->goodbye = goodbye;
    e->peer = *peer;
}

bool irohds_mdns_next_event(irohds_mdns *m, irohds_mdns_event *out)
{
    if (m->ev_count == 0)
        return false;
    *out = m->events[m->ev_head];
    m->ev_head = (m->ev_head + 1) % EVENT_QUEUE;
    m->ev_count--;
    return true;
}

const char *irohds_mdns_peer_ns(const irohds_mdns_peer *p, size_t i, size_t *len)
{
    if (i >= p->n_ns)
        return NULL;
    *len = p->ns_len[i];
    return p->ns_buf + p->ns_off[i];
}

const irohds_mdns_stats *irohds_mdns_get_stats(const irohds_mdns *m)
{
    return &m->stats;
}

/* ---------------------------------------------------------------- peers */

static peer_entry *peer_find(irohds_mdns *m, const uint8_t id[32])
{
    for (size_t i = 0; i < IROHDS_MDNS_PEERS_MAX; i++)
        if (m->peers[i].used && memcmp(m->peers[i].info.id, id, 32) == 0)
            return &m->peers[i];
    return NULL;
}

static peer_entry *peer_alloc(irohds_mdns *m)
{
    for (size_t i = 0; i < IROHDS_MDNS_PEERS_MAX; i++)
        if (!m->peers[i].used) {
            memset(&m->peers[i], 0, sizeof m->peers[i]);
            m->peers[i].used = true;
            return &m->peers[i];
        }
    return NULL;
}

static bool peer_info_eq(const irohds_mdns_peer *a, const irohds_mdns_peer *b)
{
    if (a->port != b->port || a->n_addrs != b->n_addrs || a->n_ns != b->n_ns ||
        strcmp(a->relay, b->relay) != 0)
        return false;
    for (size_t i = 0; i < a->n_addrs; i++)
        if (!irohds_dns_addr_eq(&a->addrs[i], &b->addrs[i]))
            return false;
    for (size_t i = 0; i < a->n_ns; i++)
        if (a->ns_len[i] != b->ns_len[i] ||
            memcmp(a->ns_buf + a->ns_off[i], b->ns_buf + b->ns_off[i], a->ns_len[i]) != 0)
            return false;
    return true;
}

/* RFC 6762 §5.2: refresh at 80, 85, 90, 95 % of the lifetime, + 0-2 %.
 * Stages already past (the host was late) are skipped, so the deadline
 * handed back is never in the past. */
static void schedule_refresh(irohds_mdns *m, peer_entry *p, int64_t now_ms)
{
    for (; p->refresh_stage < 4; p->refresh_stage++) {
        int64_t jitter = (int64_t)(mdns_random(m) % (uint64_t)(p->life_ms / 50 + 1));
        p->refresh_ms = p->seen_ms + p->life_ms * (80 + 5 * p->refresh_stage) / 100 + jitter;
        if (p->refresh_ms > now_ms)
            return;
    }
    p->refresh_ms = INT64_MAX;
}

static void apply_goodbye(peer_entry *p, int64_t now_ms)
{
    if (!p || p->goodbye)
        return;
    p->goodbye = true;
    p->expires_ms = now_ms + GOODBYE_GRACE_MS;
    p->refresh_ms = INT64_MAX;
}

static void apply_sighting(irohds_mdns *m, const sighting *s, int64_t now_ms)
{
    peer_entry *p = peer_find(m, s->id);
    if (s->goodbye) {
        apply_goodbye(p, now_ms);
        return;
    }
    if (s->n_srv == 0 || s->info.n_addrs == 0)
        return;
    bool fresh = p == NULL;
    if (fresh && !(p = peer_alloc(m))) {
        m->stats.peers_full++;
        return;
    }
    irohds_mdns_peer info = s->info;
    info.port = s->srv[0].port;
    if (!s->have_txt && !fresh) { /* no TXT this time: keep what we had */
        memcpy(info.relay, p->info.relay, sizeof info.relay);
        info.n_ns = p->info.n_ns;
        memcpy(info.ns_off, p->info.ns_off, sizeof info.ns_off);
        memcpy(info.ns_len, p->info.ns_len, sizeof info.ns_len);
        memcpy(info.ns_buf, p->info.ns_buf, sizeof info.ns_buf);
    }
    bool changed = fresh || !peer_info_eq(&info, &p->info);
    uint32_t ttl = s->min_ttl == 0 ? IROHDS_MDNS_COMPAT_TTL_S
                                   : s->min_ttl < TTL_CAP_S ? s->min_ttl : TTL_CAP_S;
    p->info = info;
    p->goodbye = false;
    p->seen_ms = now_ms;
    p->life_ms = (int64_t)ttl * 1000;
    p->expires_ms = now_ms + p->life_ms;
    p->refresh_stage = 0;
    schedule_refresh(m, p, now_ms);
    if (changed)
        emit(m, IROHDS_MDNS_PEER_SEEN, false, &p->info);
}

static void expire_peers(irohds_mdns *m, int64_t now_ms)
{
    for (size_t i = 0; i < IROHDS_MDNS_PEERS_MAX; i++) {
        peer_entry *p = &m->peers[i];
        if (p->used && now_ms >= p->expires_ms) {
            emit(m, IROHDS_MDNS_PEER_GONE, p->goodbye, &p->info);
            p->used = false;
        }
    }
}

/* ---------------------------------------------------------------- sending */

static void send_multicast(irohds_mdns *m, int64_t now_ms, unsigned answers, uint32_t ttl)
{
    irohds_mdns_packet pkt;
    unsigned additional = (answers & (REC_PTR | REC_SRV)) ? REC_ADDR : 0;
    if (mdns_build_response(m, &pkt, answers, additional, ttl, ttl != 0) != 0) {
        m->stats.packets_dropped++;
        return;
    }
    queue_packet(m, &pkt);
    m->stats.responses_sent++;
    m->last_multicast_ms = now_ms;
    m->n_removed = 0;
}

static void announce(irohds_mdns *m, int64_t now_ms)
{
    send_multicast(m, now_ms, ADVERTISED, m->ttl_s);
    m->announce_left--;
    m->next_announce_ms = now_ms + 1000;
    if (m->response_ms >= 0 && !(m->response_mask & ~(ADVERTISED | REC_ADDR)))
        m->response_ms = -1; /* the announcement answers it */
}

static void send_goodbye(irohds_mdns *m, int64_t now_ms)
{
    irohds_mdns_packet pkt;
    if (m->n_addrs == 0)
        return;
    if (mdns_build_response(m, &pkt, ADVERTISED | REC_ADDR, 0, 0, false) == 0) {
        queue_packet(m, &pkt);
        m->stats.responses_sent++;
    }
    m->last_multicast_ms = now_ms;
}

static void remember_qid(irohds_mdns *m, uint16_t qid, int64_t now_ms)
{
    m->own_qid[m->own_qid_next] = qid;
    m->own_qid_ms[m->own_qid_next] = now_ms;
    m->own_qid_next = (m->own_qid_next + 1) % OWN_QIDS;
}

static bool is_own_qid(const irohds_mdns *m, uint16_t qid, int64_t now_ms)
{
    for (int i = 0; i < OWN_QIDS; i++)
        if (qid != 0 && m->own_qid[i] == qid && now_ms - m->own_qid_ms[i] < OWN_QID_MS)
            return true;
    return false;
}

static void send_query(irohds_mdns *m, int64_t now_ms)
{
    irohds_mdns_packet pkt;
    uint16_t qid = (uint16_t)(mdns_random(m) % 0xffff + 1);
    if (mdns_build_query(m, &pkt, qid, now_ms) != 0) {
        m->stats.packets_dropped++;
        return;
    }
    queue_packet(m, &pkt);
    remember_qid(m, qid, now_ms);
    m->stats.queries_sent++;
}

/* A query is due by the backoff schedule or because peers need refreshing;
 * one query serves both. */
static void query_if_due(irohds_mdns *m, int64_t now_ms)
{
    bool refresh = false;
    for (size_t i = 0; i < IROHDS_MDNS_PEERS_MAX; i++)
        refresh |= m->peers[i].used && now_ms >= m->peers[i].refresh_ms;
    bool scheduled = now_ms >= m->next_query_ms;
    if (!scheduled && !refresh)
        return;
    send_query(m, now_ms);
    for (size_t i = 0; i < IROHDS_MDNS_PEERS_MAX; i++) {
        peer_entry *p = &m->peers[i];
        if (p->used && now_ms >= p->refresh_ms) {
            p->refresh_stage++;
            schedule_refresh(m, p, now_ms);
        }
    }
    if (scheduled) {
        m->next_query_ms = now_ms + m->query_interval_ms;
        m->query_interval_ms = m->query_interval_ms * 2 < m->query_max_ms
                                   ? m->query_interval_ms * 2
                                   : m->query_max_ms;
    }
}

static int64_t next_deadline(const irohds_mdns *m)
{
    int64_t t = m->next_query_ms;
    if (m->announce_left > 0 && m->next_announce_ms < t)
        t = m->next_announce_ms;
    if (m->response_ms >= 0 && m->response_ms < t)
        t = m->response_ms;
    for (size_t i = 0; i < IROHDS_MDNS_PEERS_MAX; i++) {
        const peer_entry *p = &m->peers[i];
        if (p->used && p->refresh_ms < t)
            t = p->refresh_ms;
        if (p->used && p->expires_ms < t)
            t = p->expires_ms;
    }
    return t;
}

int64_t irohds_mdns_periodic(irohds_mdns *m, int64_t now_ms)
{
    expire_peers(m, now_ms);
    if (m->announce_left > 0 && now_ms >= m->next_announce_ms)
        announce(m, now_ms);
    if (m->response_ms >= 0 && now_ms >= m->response_ms) {
        send_multicast(m, now_ms, m->response_mask, m->ttl_s);
        m->response_ms = -1;
        m->response_mask = 0;
    }
    query_if_due(m, now_ms);
    return next_deadline(m);
}

/* ---------------------------------------------------------------- queries */

/* Which of our records a question asks for (REC_ mask). */
static unsigned question_wants(const irohds_mdns *m, const irohds_dns_question *q)
{
    bool any = q->type == IROHDS_DNS_ANY;
    if (q->qclass != IROHDS_DNS_CLASS_IN && q->qclass != IROHDS_DNS_CLASS_ANY)
        return 0;
    if ((any || q->type == IROHDS_DNS_PTR) && irohds_dns_name_eq(&q->name, &m->svc))
        return ADVERTISED;
    if ((any || q->type == IROHDS_DNS_SRV || q->type == IROHDS_DNS_TXT) &&
        irohds_dns_name_eq(&q->name, &m->inst))
        return REC_SRV | REC_TXT;
    if ((any || q->type == IROHDS_DNS_A || q->type == IROHDS_DNS_AAAA) &&
        irohds_dns_name_eq(&q->name, &m->host))
        return REC_ADDR;
    if ((any || q->type == IROHDS_DNS_PTR) && irohds_dns_name_eq(&q->name, &m->enum_name))
        return REC_ENUM;
    return 0;
}

/* Does the query's answer section already hold our PTR with at least half
 * its TTL (RFC 6762 §7.1)? */
static bool known_answer(const irohds_mdns *m, irohds_dns_reader *r)
{
    irohds_dns_rr rr;
    while (irohds_dns_read_rr(r, &rr) == 1)
        if (rr.section == IROHDS_DNS_ANSWER && rr.type == IROHDS_DNS_PTR &&
            irohds_dns_name_eq(&rr.name, &m->svc) && irohds_dns_name_eq(&rr.u.ptr, &m->inst) &&
            rr.ttl >= m->ttl_s / 2)
            return true;
    return false;
}

typedef struct query_info {
    unsigned browse, other; /* REC_ masks from browse and other questions */
    bool qu;
    size_t nq;
    irohds_dns_question qs[4]; /* matched questions, for a legacy answer */
} query_info;

static void read_questions(const irohds_mdns *m, irohds_dns_reader *r, query_info *qi)
{
    irohds_dns_question q;
    memset(qi, 0, sizeof *qi);
    while (irohds_dns_read_question(r, &q) == 1) {
        unsigned w = question_wants(m, &q);
        if (!w)
            continue;
        if (w == ADVERTISED)
            qi->browse = w;
        else
            qi->other |= w;
        qi->qu |= q.qu;
        if (qi->nq < 4)
            qi->qs[qi->nq++] = q;
    }
}

static void answer_unicast(irohds_mdns *m, irohds_mdns_packet *pkt, const irohds_dns_addr *to)
{
    pkt->unicast = true;
    pkt->to = *to;
    queue_packet(m, pkt);
    m->stats.responses_sent++;
}

static void handle_query(irohds_mdns *m, int64_t now_ms, irohds_dns_reader *r,
                         const irohds_dns_addr *from)
{
    query_info qi;
    irohds_mdns_packet pkt;
    if (is_own_qid(m, r->id, now_ms)) {
        m->stats.own++;
        return;
    }
    read_questions(m, r, &qi);
    if (qi.browse && known_answer(m, r))
        qi.browse = 0;
    unsigned mask = qi.browse | qi.other;
    if (!mask || m->n_addrs == 0) {
        m->stats.foreign += !mask;
        return;
    }
    if (from->port != IROHDS_MDNS_PORT) { /* legacy unicast (RFC 6762 §6.7) */
        if (mdns_build_legacy(m, &pkt, r->id, qi.qs, qi.nq, mask) == 0)
            answer_unicast(m, &pkt, from);
        return;
    }
    if (qi.qu && now_ms - m->last_multicast_ms < (int64_t)m->ttl_s * 250) { /* RFC 6762 §5.4 */
        unsigned additional = (mask & (REC_PTR | REC_SRV)) ? REC_ADDR : 0;
        if (mdns_build_response(m, &pkt, mask, additional, m->ttl_s, false) == 0)
            answer_unicast(m, &pkt, from);
        return;
    }
    if (m->response_ms < 0) {
        int64_t at = now_ms + 20 + (int64_t)(mdns_random(m) % 101);
        m->response_ms = at > m->last_multicast_ms + 1000 ? at : m->last_multicast_ms + 1000;
    }
    m->response_mask |= mask;
}

/* ---------------------------------------------------------------- input */

static void handle_response(irohds_mdns *m, int64_t now_ms, const uint8_t *buf, size_t len)
{
    bool own;
    if (mdns_read_sightings(m, buf, len, &own) != 0)
        return; /* cannot happen: the message was checked */
    if (m->n_sights == 0) {
        if (own)
            m->stats.own++;
        else
            m->stats.foreign++;
    }
    for (unsigned i = 0; i < m->n_sights; i++)
        apply_sighting(m, &m->sights[i], now_ms);
}

int irohds_mdns_receive(irohds_mdns *m, int64_t now_ms, const uint8_t *buf, size_t len,
                        const irohds_dns_addr *from)
{
    irohds_dns_reader r;
    m->stats.received++;
    if (irohds_dns_check(buf, len) != 0) {
        m->stats.malformed++;
        return -EPROTO;
    }
    irohds_dns_reader_init(&r, buf, len);
    bool response = r.flags & IROHDS_DNS_QR;
    /* RFC 6762 §18: other opcodes and rcodes are ignored, and so are
     * responses not from port 5353 (§6). */
    if ((r.flags & IROHDS_DNS_OPCODE_MASK) ||
        (response && ((r.flags & IROHDS_DNS_RCODE_MASK) || from->port != IROHDS_MDNS_PORT))) {
        m->stats.foreign++;
        return 0;
    }
    if (response)
        handle_response(m, now_ms, buf, len);
    else
        handle_query(m, now_ms, &r, from);
    return 0;
}

/* ---------------------------------------------------------------- setup */

static int check_addrs(const irohds_dns_addr *addrs, size_t n)
{
    if (n > IROHDS_MDNS_ADDRS_MAX)
        return -EMSGSIZE;
    for (size_t i = 0; i < n; i++)
        if (addrs[i].family != 4 && addrs[i].family != 6)
            return -EINVAL;
    return 0;
}

/* Would our largest packet fit?  (Every record set, removed addresses.) */
static int check_fits(irohds_mdns *m)
{
    irohds_mdns_packet pkt;
    return mdns_build_response(m, &pkt, ADVERTISED | REC_ENUM, REC_ADDR, m->ttl_s, true);
}

static void start_announcing(irohds_mdns *m, int64_t now_ms)
{
    if (m->n_addrs == 0)
        return;
    m->announce_left = ANNOUNCEMENTS;
    m->next_announce_ms = now_ms;
}

irohds_mdns *irohds_mdns_new(const irohds_mdns_cfg *cfg)
{
    size_t rl = cfg->relay ? strlen(cfg->relay) : 0;
    if (rl > IROHDS_PKARR_RELAY_MAX || check_addrs(cfg->addrs, cfg->n_addrs) != 0 ||
        (cfg->query_max_ms && cfg->query_max_ms < 1000)) {
        errno = EINVAL;
        return NULL;
    }
    irohds_mdns *m = calloc(1, sizeof *m);
    if (!m) {
        errno = ENOMEM;
        return NULL;
    }
    memcpy(m->id, cfg->id, 32);
    m->port = cfg->port;
    m->ttl_s = cfg->ttl_s ? cfg->ttl_s : IROHDS_MDNS_TTL_S;
    m->query_max_ms = cfg->query_max_ms ? cfg->query_max_ms : IROHDS_MDNS_QUERY_MAX_MS;
    if (rl)
        memcpy(m->relay, cfg->relay, rl);
    m->n_addrs = cfg->n_addrs;
    for (size_t i = 0; i < cfg->n_addrs; i++)
        m->addrs[i] = cfg->addrs[i], m->addrs[i].port = 0; /* the SRV carries the port */
    m->rng = cfg->seed;
    if (mdns_names_init(m) != 0 || mdns_txt_build(m, cfg->ns, cfg->n_ns) != 0 ||
        check_fits(m) != 0) {
        free(m);
        errno = EINVAL;
        return NULL;
    }
    m->response_ms = -1;
    m->last_multicast_ms = cfg->now_ms - 3600 * 1000;
    m->query_interval_ms = 1000;
    m->next_query_ms = cfg->now_ms + 20 + (int64_t)(mdns_random(m) % 101);
    start_announcing(m, cfg->now_ms);
    return m;
}

void irohds_mdns_free(irohds_mdns *m)
{
    free(m);
}

void irohds_mdns_goodbye(irohds_mdns *m, int64_t now_ms)
{
    send_goodbye(m, now_ms);
    m->n_addrs = 0;
    m->n_removed = 0;
    m->announce_left = 0;
    m->response_ms = -1;
    m->response_mask = 0;
}

static void note_removed(irohds_mdns *m, const irohds_dns_addr *addrs, size_t n)
{
    m->n_removed = 0;
    for (size_t i = 0; i < m->n_addrs; i++) {
        bool kept = false;
        for (size_t k = 0; k < n; k++)
            kept |= irohds_dns_addr_eq(&m->addrs[i], &addrs[k]);
        if (!kept)
            m->removed[m->n_removed++] = m->addrs[i];
    }
}

int irohds_mdns_set_addrs(irohds_mdns *m, int64_t now_ms, uint16_t port,
                          const irohds_dns_addr *addrs, size_t n)
{
    int rc = check_addrs(addrs, n);
    if (rc)
        return rc;
    if (n == 0) {
        irohds_mdns_goodbye(m, now_ms);
        m->port = port;
        return 0;
    }
    irohds_dns_addr old[IROHDS_MDNS_ADDRS_MAX], old_removed[IROHDS_MDNS_ADDRS_MAX];
    size_t old_n = m->n_addrs, old_n_removed = m->n_removed;
    uint16_t old_port = m->port;
    memcpy(old, m->addrs, sizeof old);
    memcpy(old_removed, m->removed, sizeof old_removed);
    irohds_dns_addr clean[IROHDS_MDNS_ADDRS_MAX];
    for (size_t i = 0; i < n; i++)
        clean[i] = addrs[i], clean[i].port = 0; /* the SRV carries the port */
    note_removed(m, clean, n);
    memcpy(m->addrs, clean, n * sizeof *clean);
    m->n_addrs = n;
    m->port = port;
    if ((rc = check_fits(m)) != 0) {
        memcpy(m->addrs, old, sizeof old);
        memcpy(m->removed, old_removed, sizeof old_removed);
        m->n_addrs = old_n, m->n_removed = old_n_removed, m->port = old_port;
        return rc;
    }
    start_announcing(m, now_ms);
    return 0;
}

int irohds_mdns_set_ns(irohds_mdns *m, int64_t now_ms, const char *const *ns, size_t n)
{
    uint8_t txt[sizeof m->txt];
    size_t txt_len = m->txt_len;
    memcpy(txt, m->txt, sizeof txt);
    int rc = mdns_txt_build(m, ns, n);
    if (rc == 0 && (rc = check_fits(m)) != 0)
        rc = -EMSGSIZE;
    if (rc) {
        memcpy(m->txt, txt, sizeof txt);
        m->txt_len = txt_len;
        return rc;
    }
    start_announcing(m, now_ms);
    return 0;
}
