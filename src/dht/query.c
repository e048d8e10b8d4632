/*
 * dht/query.c: our answers to others' queries: ping, find_node, get_peers,
 * announce_peer (BEP 5), get and put (BEP 44), sample_infohashes (BEP 51).
 *
 * Every reply carries the requester's address in "ip" (BEP 42) and our
 * client version in "v".  get_peers and get always return the k closest
 * nodes we know as well as a write token, as libtorrent does, so that a
 * search converges whether or not we hold anything.  A missing or wrong
 * argument gets error 203 (BEP 5), an unknown method 204, unless it names a
 * target or info_hash: then it is answered like find_node, as libtorrent
 * does for forward compatibility.  put checks in the order libtorrent does
 * (size 205, salt 207, token, signature 206, cas 301, seq 302).
 *
 * No amplification: a get_peers reply holds at most max_values_reply peers
 * (32 by default: ~550 bytes for a ~95-byte query), and every reply first
 * takes its size from the destination's byte budget (dht.c): a spoofed
 * flood makes us send at most that budget to its victim.
 */
#include <string.h>

#include "dht/dht_int.h"

#define SAMPLES_MAX 20          /* info-hashes in a BEP 51 reply (libtorrent's number) */
#define SAMPLES_INTERVAL 21600  /* s: BEP 51's maximum, libtorrent's default */

typedef struct reply {
    irohds_dht_msg r;
    uint8_t ip[18];
    uint8_t nodes[IROHDS_DHT_K * 38];
    uint8_t token[DHT_TOKEN_LEN];
    uint8_t values[IROHDS_DHT_MAX_VALUES][18];
    uint8_t samples[SAMPLES_MAX * IROHDS_DHT_ID_LEN];
} reply;

static void send_msg(irohds_dht *d, const irohds_dht_msg *r, const irohds_dht_addr *to)
{
    uint8_t buf[IROHDS_DHT_MAX_PACKET];
    size_t len;
    if (irohds_dht_msg_encode(r, buf, sizeof buf, &len) != 0)
        return;
    if (!dht_reply_budget(d, to, len)) {
        d->stats.dropped_rate++;
        return;
    }
    dht_send(d, to, buf, len);
}

static void send_error(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from,
                       int code, const char *text)
{
    uint8_t ip[18];
    irohds_dht_msg e = {.y = 'e', .t = m->t, .t_len = m->t_len, .err_code = code,
                        .err_msg = (const uint8_t *)text, .err_msg_len = strlen(text),
                        .version = (const uint8_t *)DHT_VERSION, .version_len = 4, .ip = ip};
    e.ip_len = irohds_dht_addr_compact(from, ip);
    d->stats.errors_sent++;
    send_msg(d, &e, from);
}

static void reply_init(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from,
                       reply *rp)
{
    memset(&rp->r, 0, sizeof rp->r);
    rp->r.y = 'r';
    rp->r.t = m->t;
    rp->r.t_len = m->t_len;
    rp->r.id = d->id;
    rp->r.version = (const uint8_t *)DHT_VERSION;
    rp->r.version_len = 4;
    rp->r.ip = rp->ip;
    rp->r.ip_len = irohds_dht_addr_compact(from, rp->ip);
}

/* The k closest nodes to target we know (good ones first), the requester
 * left out, as "nodes" or "nodes6" by our family. */
static void reply_nodes(irohds_dht *d, reply *rp, const uint8_t *target, const uint8_t *asker)
{
    irohds_dht_node ns[IROHDS_DHT_K + 1];
    size_t n = rt_closest(&d->rt, d->now, target, ns, IROHDS_DHT_K + 1);
    size_t len = 0, count = 0;
    for (size_t i = 0; i < n && count < IROHDS_DHT_K; i++) {
        if (dht_id_eq(ns[i].id, asker))
            continue;
        memcpy(rp->nodes + len, ns[i].id, IROHDS_DHT_ID_LEN);
        len += IROHDS_DHT_ID_LEN;
        len += irohds_dht_addr_compact(&ns[i].addr, rp->nodes + len);
        count++;
    }
    if (d->cfg.family == AF_INET)
        rp->r.nodes = rp->nodes, rp->r.nodes_len = len;
    else
        rp->r.nodes6 = rp->nodes, rp->r.nodes6_len = len;
}

static void reply_token(irohds_dht *d, reply *rp, const irohds_dht_addr *from,
                        const uint8_t *target)
{
    st_token(d, from, target, rp->token);
    rp->r.token = rp->token;
    rp->r.token_len = DHT_TOKEN_LEN;
}

static void answer_get_peers(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from,
                             reply *rp)
{
    irohds_dht_addr peers[IROHDS_DHT_MAX_VALUES];
    reply_token(d, rp, from, m->info_hash);
    reply_nodes(d, rp, m->info_hash, m->id);
    size_t n = st_peers(d, m->info_hash, peers, d->cfg.max_values_reply);
    for (size_t i = 0; i < n; i++) {
        rp->r.values_len[i] = irohds_dht_addr_compact(&peers[i], rp->values[i]);
        rp->r.values[i] = rp->values[i];
    }
    rp->r.n_values = n;
    rp->r.has_values = n > 0;
    send_msg(d, &rp->r, from);
}

static void answer_announce(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from,
                            reply *rp)
{
    if (!m->token || (!m->has_port && !m->implied_port)) {
        send_error(d, m, from, 203, "missing token or port");
        return;
    }
    if (!st_token_ok(d, from, m->info_hash, m->token, m->token_len)) {
        d->stats.tokens_rejected++;
        send_error(d, m, from, 203, "bad token");
        return;
    }
    int64_t port = m->implied_port ? from->port : m->port;
    if (port <= 0 || port > 65535) {
        send_error(d, m, from, 203, "bad port");
        return;
    }
    irohds_dht_addr peer = *from;
    peer.port = (uint16_t)port;
    st_announce(d, m->info_hash, &peer);
    send_msg(d, &rp->r, from);
}

/* BEP 44 get: token, nodes, and the item if we hold it; a mutable item not
 * newer than the asker's seq comes as its seq alone. */
static void answer_get(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from,
                       reply *rp)
{
    reply_token(d, rp, from, m->target);
    reply_nodes(d, rp, m->target, m->id);
    const dht_stored *s = st_get(d, m->target);
    if (s && !s->is_mutable) {
        rp->r.value = s->v;
        rp->r.value_len = s->v_len;
    } else if (s) {
        rp->r.has_seq = true;
        rp->r.seq = s->seq;
        if (!m->has_seq || s->seq > m->seq) {
            rp->r.k = s->k;
            rp->r.sig = s->sig;
            rp->r.value = s->v;
            rp->r.value_len = s->v_len;
        }
    }
    send_msg(d, &rp->r, from);
}

/* The checks of a put before its token: 0 or an error sent. */
static int put_shape(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from)
{
    if (!m->token || !m->value) {
        send_error(d, m, from, 203, "missing token or v");
        return -1;
    }
    if (m->value_len > IROHDS_DHT_MAX_V) {
        send_error(d, m, from, 205, "message (v field) too big");
        return -1;
    }
    if (m->salt_len > IROHDS_DHT_MAX_SALT) {
        send_error(d, m, from, 207, "salt (salt field) too big");
        return -1;
    }
    bool any = m->k || m->sig || m->has_seq, all = m->k && m->sig && m->has_seq;
    if (any != all || (all && m->seq < 0)) {
        send_error(d, m, from, 203, "incomplete mutable item or negative seq");
        return -1;
    }
    return 0;
}

static void answer_put(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from,
                       reply *rp)
{
    if (put_shape(d, m, from))
        return;
    irohds_dht_item it = {.v = m->value, .v_len = m->value_len, .is_mutable = m->k != NULL,
                          .seq = m->seq, .salt = m->salt, .salt_len = m->salt_len};
    if (it.is_mutable) {
        memcpy(it.k, m->k, IROHDS_DHT_KEY_LEN);
        memcpy(it.sig, m->sig, IROHDS_DHT_SIG_LEN);
    }
    uint8_t target[IROHDS_DHT_ID_LEN];
    irohds_dht_item_target(&it, target);
    if (!st_token_ok(d, from, target, m->token, m->token_len)) {
        d->stats.tokens_rejected++;
        send_error(d, m, from, 203, "bad token");
        return;
    }
    if (irohds_dht_item_check(&it) != 0) {
        send_error(d, m, from, 206, "invalid signature");
        return;
    }
    int rc = st_put(d, &it, target, m->has_cas, m->cas);
    if (rc == 301)
        send_error(d, m, from, 301, "CAS mismatch, re-read value and try again");
    else if (rc == 302)
        send_error(d, m, from, 302, "sequence number less than current");
    else if (rc)
        send_error(d, m, from, 202, "server error");
    else
        send_msg(d, &rp->r, from);
}

/* BEP 51 sample_infohashes: the closest nodes as find_node, plus how many
 * info-hashes we store and up to 20 of them.  libtorrent takes a reply
 * without interval, num and samples for a failed query. */
static void answer_sample(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from,
                          reply *rp, const uint8_t *target)
{
    reply_nodes(d, rp, target, m->id);
    rp->r.has_interval = true;
    rp->r.interval = SAMPLES_INTERVAL;
    rp->r.has_num = true;
    rp->r.num = (int64_t)d->st.nt;
    rp->r.samples = rp->samples;
    rp->r.samples_len = st_sample(d, rp->samples, SAMPLES_MAX) * IROHDS_DHT_ID_LEN;
    send_msg(d, &rp->r, from);
}

static bool is_sample_infohashes(const irohds_dht_msg *m)
{
    return m->method == IROHDS_DHT_M_OTHER && m->q_len == 17 &&
           memcmp(m->q, "sample_infohashes", 17) == 0;
}

void dht_answer(irohds_dht *d, const irohds_dht_msg *m, const irohds_dht_addr *from)
{
    reply rp;
    reply_init(d, m, from, &rp);
    const uint8_t *target = m->target;
    if (!target && m->method == IROHDS_DHT_M_OTHER)
        target = m->info_hash;
    switch (m->method) {
    case IROHDS_DHT_M_PING:
        send_msg(d, &rp.r, from);
        return;
    case IROHDS_DHT_M_GET_PEERS:
        if (m->info_hash)
            answer_get_peers(d, m, from, &rp);
        else
            send_error(d, m, from, 203, "missing info_hash");
        return;
    case IROHDS_DHT_M_ANNOUNCE_PEER:
        if (m->info_hash)
            answer_announce(d, m, from, &rp);
        else
            send_error(d, m, from, 203, "missing info_hash");
        return;
    case IROHDS_DHT_M_GET:
        if (m->target)
            answer_get(d, m, from, &rp);
        else
            send_error(d, m, from, 203, "missing target");
        return;
    case IROHDS_DHT_M_PUT:
        answer_put(d, m, from, &rp);
        return;
    default: /* find_node, and unknown methods that name a target */
        if (target && is_sample_infohashes(m)) {
            answer_sample(d, m, from, &rp, target);
        } else if (target) {
            reply_nodes(d, &rp, target, m->id);
            send_msg(d, &rp.r, from);
        } else {
            send_error(d, m, from, m->method == IROHDS_DHT_M_FIND_NODE ? 203 : 204,
                       m->method == IROHDS_DHT_M_FIND_NODE ? "missing target" : "method unknown");
        }
        return;
    }
}
