/*
 * node.c: the node's lifecycle and its glue to the QUIC endpoint (see
 * node.h, node_int.h).
 *
 * One endpoint serves two ALPNs: gossip ("/iroh-gossip/1", glink.c) and
 * blobs ("/iroh-bytes/4": provide.c when a peer opened the connection,
 * fetch.c when we did).  Each connection's user pointer leads to a struct
 * whose first member says which of those it is, so the endpoint's callbacks
 * here only dispatch.  Two timers drive the I/O-free cores: one follows the
 * gossip core's next deadline, one ticks every NODE_TICK_MS for everything
 * with coarse deadlines (query windows, claims, stalled downloads).
 *
 * The address book maps node ids to socket addresses (from config, from
 * gossip PeerData, from connections they made to us) and keeps the link
 * estimates coren decides with (RTT from QUIC, bandwidth from transfers).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <sodium.h>

#include "node/node_int.h"

static const char *const ALPNS[] = {IROHDS_BLOBS_ALPN, IROHDS_GOSSIP_ALPN};

uint64_t node_now_ms(void)
{
    return irohds_monotonic_ns() / 1000000u;
}

/* ------------------------------------------------------------ peers */

static size_t peer_bucket(const uint8_t id[32])
{
    return ((size_t)id[0] | (size_t)id[1] << 8) % 1024;
}

node_peer *node_peer_find(irohds_node *n, const uint8_t id[32])
{
    for (node_peer *p = n->peers[peer_bucket(id)]; p; p = p->next)
        if (!memcmp(p->id, id, 32))
            return p;
    return NULL;
}

/* Forget the peer least recently heard of that config did not name. */
static void peer_evict_one(irohds_node *n)
{
    node_peer **victim = NULL;
    for (size_t b = 0; b < 1024; b++)
        for (node_peer **pp = &n->peers[b]; *pp; pp = &(*pp)->next)
            if (!((*pp)->sources & NODE_SRC_BOOTSTRAP) &&
                (!victim || (*pp)->last_seen_us < (*victim)->last_seen_us))
                victim = pp;
    if (!victim)
        return;
    node_peer *dead = *victim;
    *victim = dead->next;
    free(dead);
    n->npeers--;
}

node_peer *node_peer_get(irohds_node *n, const uint8_t id[32])
{
    node_peer *p = node_peer_find(n, id);
    if (p)
        return p;
    if (n->npeers >= NODE_MAX_PEERS)
        peer_evict_one(n);
    p = calloc(1, sizeof(*p));
    if (!p)
        return NULL;
    memcpy(p->id, id, 32);
    irohds_coren_link_init(&p->link);
    p->last_seen_us = irohds_now_us();
    size_t b = peer_bucket(id);
    p->next = n->peers[b];
    n->peers[b] = p;
    n->npeers++;
    return p;
}

static bool same_addr(const struct sockaddr_storage *a, const struct sockaddr *b)
{
    if (a->ss_family != b->sa_family)
        return false;
    if (b->sa_family == AF_INET) {
        const struct sockaddr_in *x = (const void *)a, *y = (const void *)b;
        return x->sin_port == y->sin_port && x->sin_addr.s_addr == y->sin_addr.s_addr;
    }
    const struct sockaddr_in6 *x = (const void *)a, *y = (const void *)b;
    return x->sin6_port == y->sin6_port && !memcmp(&x->sin6_addr, &y->sin6_addr, 16);
}

void node_sockaddr_make(struct sockaddr_storage *ss, bool v6, const uint8_t *ip, uint16_t port)
{
    memset(ss, 0, sizeof(*ss));
    if (v6) {
        struct sockaddr_in6 *s6 = (void *)ss;
        s6->sin6_family = AF_INET6;
        memcpy(&s6->sin6_addr, ip, 16);
        s6->sin6_port = htons(port);
    } else {
        struct sockaddr_in *s4 = (void *)ss;
        s4->sin_family = AF_INET;
        memcpy(&s4->sin_addr, ip, 4);
        s4->sin_port = htons(port);
    }
}

void node_sockaddr_split(const struct sockaddr_storage *ss, bool *v6, uint8_t ip[16],
                         uint16_t *port)
{
    memset(ip, 0, 16);
    *v6 = ss->ss_family == AF_INET6;
    if (*v6) {
        const struct sockaddr_in6 *s6 = (const void *)ss;
        memcpy(ip, &s6->sin6_addr, 16);
        *port = ntohs(s6->sin6_port);
    } else {
        const struct sockaddr_in *s4 = (const void *)ss;
        memcpy(ip, &s4->sin_addr, 4);
        *port = ntohs(s4->sin_port);
    }
}

/* Newest first: the address that last worked or was last told is tried first. */
void node_peer_add_addr(node_peer *p, const struct sockaddr *sa)
{
    if (sa->sa_family != AF_INET && sa->sa_family != AF_INET6)
        return;
    unsigned i;
    for (i = 0; i < p->naddrs; i++)
        if (same_addr(&p->addrs[i], sa))
            break;
    if (i == p->naddrs && p->naddrs < NODE_PEER_ADDRS)
        p->naddrs++;
    if (i == NODE_PEER_ADDRS)
        i = NODE_PEER_ADDRS - 1;
    memmove(&p->addrs[1], &p->addrs[0], i * sizeof(p->addrs[0]));
    memset(&p->addrs[0], 0, sizeof(p->addrs[0]));
    memcpy(&p->addrs[0], sa,
           sa->sa_family == AF_INET ? sizeof(struct sockaddr_in) : sizeof(struct sockaddr_in6));
}

irohds_net_conn *node_dial(irohds_node *n, const uint8_t id[32], const char *alpn, void *uptr)
{
    node_peer *p = node_peer_find(n, id);
    if (!p || !p->naddrs || !n->ep)
        return NULL;
    uint64_t rtt_us = p->link.rtt_samples ? (uint64_t)(p->link.rtt_s * 1e6) : 0;
    irohds_net_conn *c = NULL;
    for (unsigned i = 0; i < p->naddrs && !c; i++)
        if (irohds_net_connect(n->ep, id, (const struct sockaddr *)&p->addrs[i], alpn, rtt_us,
                               uptr, &c) != 0)
            c = NULL;
    return c;
}

/* ------------------------------------------------------- namespaces */

node_ns *node_ns_find(irohds_node *n, const char *name)
{
    for (unsigned i = 0; i < n->nns; i++)
        if (!strcmp(n->ns[i].name, name))
            return &n->ns[i];
    return NULL;
}

node_ns *node_ns_by_topic(irohds_node *n, const uint8_t topic[32])
{
    for (unsigned i = 0; i < n->nns; i++)
        if (!memcmp(n->ns[i].topic, topic, 32))
            return &n->ns[i];
    return NULL;
}

unsigned node_ns_index(irohds_node *n, const node_ns *ns)
{
    return (unsigned)(ns - n->ns);
}

/* PeerData (iroh-gossip's AddrInfo) for the addresses we know of a peer. */
static int peer_data_of(const node_peer *p, uint8_t *buf, size_t cap)
{
    irohds_gossip_addr_info ai = {0};
    for (unsigned i = 0; i < p->naddrs && ai.n_addrs < IROHDS_GOSSIP_MAX_ADDRS; i++) {
        irohds_gossip_sockaddr *g = &ai.addrs[ai.n_addrs++];
        node_sockaddr_split(&p->addrs[i], &g->v6, g->ip, &g->port);
    }
    size_t len;
    int rc = irohds_gossip_addr_info_encode(&ai, buf, cap, &len);
    return rc ? rc : (int)len;
}

static bool is_loopback(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return (ntohl(((const struct sockaddr_in *)a)->sin_addr.s_addr) >> 24) == 127;
    return a->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LOOPBACK(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* fe80::/10: usable only with the interface it belongs to, which no peer
 * learns from an address record; not advertised. */
static bool is_link_local6(const struct sockaddr_storage *a)
{
    return a->ss_family == AF_INET6 &&
           IN6_IS_ADDR_LINKLOCAL(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

/* The addresses other machines can reach us at: the endpoint's, without
 * loopback ones unless there is nothing else (a daemon bound to 127.0.0.1). */
int node_own_addrs(irohds_node *n, struct sockaddr_storage *out, size_t max)
{
    struct sockaddr_storage all[NODE_PEER_ADDRS];
    int na = n->ep ? irohds_net_endpoint_addrs(n->ep, all, NODE_PEER_ADDRS) : 0;
    size_t k = 0;
    for (int i = 0; i < na && k < max; i++)
        if (!is_loopback(&all[i]) && !is_link_local6(&all[i]))
            out[k++] = all[i];
    for (int i = 0; i < na && k == 0 && (size_t)i < max; i++)
        out[i] = all[i], k = (size_t)i + 1;
    return (int)k;
}

int node_own_peer_data(irohds_node *n, uint8_t *buf, size_t cap)
{
    node_peer me = {0};
    struct sockaddr_storage addrs[NODE_PEER_ADDRS];
    int na = node_own_addrs(n, addrs, NODE_PEER_ADDRS);
    for (int i = na - 1; i >= 0; i--) /* add_addr puts each first: keep their order */
        node_peer_add_addr(&me, (const struct sockaddr *)&addrs[i]);
    return peer_data_of(&me, buf, cap);
}

/*
 * Ask peers to let us into ns's topic: every bootstrap peer with an address,
 * and (rejoining after being alone) every other peer we have heard of,
 * since a peer that is not in the topic just drops the request.
 */
static size_t send_joins(irohds_node *n, node_ns *ns, bool everyone)
{
    irohds_gossip_peer boots[IROHDS_MAX_BOOTSTRAP];
    uint8_t data[IROHDS_MAX_BOOTSTRAP][512];
    size_t nb = 0;
    for (size_t b = 0; b < 1024; b++)
        for (node_peer *p = n->peers[b]; p; p = p->next) {
            if (!p->naddrs || nb == IROHDS_MAX_BOOTSTRAP)
                continue;
            if (!everyone && !(p->sources & NODE_SRC_BOOTSTRAP))
                continue;
            /* A peer we only know because it connected to us (an iroh client
             * fetching a blob) serves no namespace we know of: not dialled. */
            if (p->sources == NODE_SRC_INCOMING)
                continue;
            int len = peer_data_of(p, data[nb], sizeof data[nb]);
            memcpy(boots[nb].id, p->id, 32);
            boots[nb].data = len > 0 ? data[nb] : NULL;
            boots[nb].data_len = len > 0 ? (size_t)len : 0;
            nb++;
        }
    if (nb || !everyone)
        irohds_gossip_join(n->gossip, node_now_ms(), ns->topic, boots, nb);
    return nb;
}

void node_peer_resolved(irohds_node *n, node_peer *p)
{
    if (p->sources & NODE_SRC_BOOTSTRAP)
        for (unsigned i = 0; i < n->nns; i++)
            node_ns_join_peer(n, &n->ns[i], p);
    results_peer_resolved(n, p->id);
}

void node_ns_join_peer(irohds_node *n, node_ns *ns, node_peer *p)
{
    uint8_t data[512];
    int len = peer_data_of(p, data, sizeof data);
    irohds_gossip_peer gp;
    memcpy(gp.id, p->id, 32);
    gp.data = len > 0 ? data : NULL;
    gp.data_len = len > 0 ? (size_t)len : 0;
    irohds_gossip_join(n->gossip, node_now_ms(), ns->topic, &gp, 1);
    node_gossip_pump(n);
}

int irohds_node_join(irohds_node *n, const char *name)
{
    if (!name || !*name || strlen(name) >= IROHDS_NS_MAX)
        return -EINVAL;
    if (node_ns_find(n, name))
        return 0;
    if (n->nns >= NODE_MAX_NS)
        return -ENOSPC;
    node_ns *ns = &n->ns[n->nns];
    memset(ns, 0, sizeof(*ns));
    snprintf(ns->name, sizeof ns->name, "%s", name);
    irohds_proto_topic(name, strlen(name), ns->topic);
    ns->joined_us = irohds_now_us();
    ns->rejoin_every_us = NODE_REJOIN_MIN_US;
    ns->rejoin_at_us = ns->joined_us + ns->rejoin_every_us;
    n->nns++;
    size_t nb = send_joins(n, ns, false);
    ns->has_bootstrap = nb > 0;
    IROHDS_INFO("node: joined namespace %s (%zu bootstrap peer%s)", name, nb, nb == 1 ? "" : "s");
    node_mdns_namespaces_changed(n); /* tell the LAN we serve it now */
    node_dht_namespace_joined(n, ns); /* and the DHT */
    node_gossip_pump(n);
    return 0;
}

/* A topic with no neighbour asks the peers it knows again, backing off. */
static void rejoin_lonely(irohds_node *n, int64_t now)
{
    for (unsigned i = 0; i < n->nns; i++) {
        node_ns *ns = &n->ns[i];
        if (ns->neighbors) {
            ns->rejoin_every_us = NODE_REJOIN_MIN_US;
            ns->rejoin_at_us = now + ns->rejoin_every_us;
            continue;
        }
        if (now < ns->rejoin_at_us)
            continue;
        send_joins(n, ns, true);
        ns->rejoin_every_us *= 2;
        if (ns->rejoin_every_us > NODE_REJOIN_MAX_US)
            ns->rejoin_every_us = NODE_REJOIN_MAX_US;
        ns->rejoin_at_us = now + ns->rejoin_every_us;
    }
}

/* ----------------------------------------------------------- timers */

static void on_gossip_timer(uv_timer_t *t);

void node_gossip_pump(irohds_node *n)
{
    if (n->stopping)
        return;
    glink_drain(n);
    uint64_t now = node_now_ms();
    uint64_t next = irohds_gossip_next_deadline(n->gossip, now);
    if (next == UINT64_MAX) {
        uv_timer_stop(&n->gossip_timer);
        return;
    }
    uv_timer_start(&n->gossip_timer, on_gossip_timer, next > now ? next - now : 0, 0);
}

static void on_gossip_timer(uv_timer_t *t)
{
    irohds_node *n = t->data;
    irohds_gossip_timeout(n->gossip, node_now_ms());
    node_gossip_pump(n);
}

static void on_tick(uv_timer_t *t)
{
    irohds_node *n = t->data;
    int64_t now = irohds_now_us();
    if (++n->ticks % (1000 / NODE_TICK_MS) == 0)
        glink_sample_rtt(n); /* once a second: RTT of the live gossip links */
    rejoin_lonely(n, now);
    results_tick(n, now);
    fetch_tick(n, now);
    node_gossip_pump(n);
}

static void on_kick(uv_idle_t *h)
{
    irohds_node *n = h->data;
    uv_idle_stop(h);
    n->kick_active = false;
    fetch_tick(n, irohds_now_us()); /* reaps failed fetches */
    results_kick(n);
    node_gossip_pump(n);
}

void node_kick(irohds_node *n)
{
    if (!n->kick_active && !n->stopping) {
        n->kick_active = true;
        uv_idle_start(&n->kick, on_kick);
    }
}

/* ------------------------------------------------------------ probe */

static void probe_work(uv_work_t *req)
{
    irohds_node *n = req->data;
    char path[PATH_MAX + 16];
    snprintf(path, sizeof path, "%s/capability", n->paths.data_dir);
    bool measured = false;
    if (irohds_coren_probe_get(&n->probe, path, irohds_now_us(), &measured) == 0)
        n->probe_ready = true;
}

void node_unref(irohds_node *n)
{
    if (--n->handles_open == 0)
        free(n);
}

static void probe_done(uv_work_t *req, int status)
{
    irohds_node *n = req->data;
    (void)status;
    n->probe_running = false;
    if (n->stopping) { /* stop() counted us among what it waits for */
        node_unref(n);
        return;
    }
    if (n->probe_ready)
        IROHDS_INFO("node: capability figure %.2f (%s, %u cores)", n->probe.figure,
                    n->probe.cpu_model, n->probe.cores_online);
}

double irohds_node_figure(const irohds_node *n)
{
    return n->probe_ready ? n->probe.figure : NODE_FIGURE_UNKNOWN;
}

/* --------------------------------------------------- endpoint glue */

static int conn_kind(irohds_net_conn *c)
{
    const int *kind = irohds_net_conn_user_ptr(c);
    return kind ? *kind : 0;
}

static void on_accepted(irohds_net_conn *c)
{
    irohds_node *n = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    irohds_net_conn_info info;
    irohds_net_conn_info_get(c, &info);
    node_peer *p = node_peer_get(n, info.remote_id);
    if (p) {
        p->sources |= NODE_SRC_INCOMING;
        p->last_seen_us = irohds_now_us();
        /* Where it reached us from is where it can be reached (no NAT between
         * peers of a LAN; behind NAT gossip PeerData corrects it). */
        if (!p->naddrs)
            node_peer_add_addr(p, (const struct sockaddr *)&info.remote_addr);
    }
    if (!strcmp(info.alpn, IROHDS_GOSSIP_ALPN))
        glink_accepted(n, c);
    else if (!strcmp(info.alpn, IROHDS_BLOBS_ALPN))
        provide_accepted(n, c);
    else
        irohds_net_conn_close(c, 0, "no such protocol");
    node_gossip_pump(n);
}

static void on_connected(irohds_net_conn *c)
{
    irohds_node *n = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    irohds_net_conn_info info;
    irohds_net_conn_info_get(c, &info);
    node_peer *p = node_peer_find(n, info.remote_id);
    if (p) {
        p->last_seen_us = irohds_now_us();
        node_peer_add_addr(p, (const struct sockaddr *)&info.remote_addr); /* it worked: first */
    }
    switch (conn_kind(c)) {
    case NODE_CONN_GOSSIP:
        glink_connected(n, irohds_net_conn_user_ptr(c));
        break;
    case NODE_CONN_FETCH:
        fetch_connected(n, irohds_net_conn_user_ptr(c));
        break;
    case NODE_CONN_PROBE:
        node_dht_probe_connected(n, irohds_net_conn_user_ptr(c));
        break;
    default:
        break;
    }
    node_gossip_pump(n);
}

/* Remember the RTT a connection measured, for the next dial and for coren. */
void node_note_rtt(irohds_node *n, irohds_net_conn *c)
{
    irohds_net_conn_info info;
    if (irohds_net_conn_info_get(c, &info) != 0 || !info.remote_id_known || !info.srtt_us)
        return;
    node_peer *p = node_peer_find(n, info.remote_id);
    if (p && info.established)
        irohds_coren_link_add_rtt(&p->link, (double)info.srtt_us / 1e6);
}

static void on_closed(irohds_net_conn *c, const irohds_net_close_info *why)
{
    irohds_node *n = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    node_note_rtt(n, c);
    switch (conn_kind(c)) {
    case NODE_CONN_GOSSIP:
        glink_closed(n, irohds_net_conn_user_ptr(c));
        break;
    case NODE_CONN_SERVE:
        provide_closed(n, irohds_net_conn_user_ptr(c));
        break;
    case NODE_CONN_FETCH:
        fetch_conn_closed(n, irohds_net_conn_user_ptr(c), why);
        break;
    case NODE_CONN_PROBE:
        node_dht_probe_closed(n, irohds_net_conn_user_ptr(c));
        break;
    default:
        break;
    }
    node_gossip_pump(n);
}

static void on_stream_opened(irohds_net_conn *c, int64_t sid)
{
    irohds_node *n = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    if (conn_kind(c) == NODE_CONN_GOSSIP)
        glink_stream_opened(n, irohds_net_conn_user_ptr(c), sid);
}

static void on_recv(irohds_net_conn *c, int64_t sid, void *sptr, const uint8_t *data, size_t len,
                    bool fin)
{
    (void)sptr;
    irohds_node *n = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    switch (conn_kind(c)) {
    case NODE_CONN_GOSSIP:
        glink_recv(n, irohds_net_conn_user_ptr(c), sid, data, len, fin);
        node_gossip_pump(n);
        break;
    case NODE_CONN_SERVE:
        provide_recv(n, irohds_net_conn_user_ptr(c), sid, data, len, fin);
        break;
    case NODE_CONN_FETCH:
        fetch_recv(n, irohds_net_conn_user_ptr(c), sid, data, len, fin);
        break;
    default:
        break;
    }
}

static void on_writable(irohds_net_conn *c, int64_t sid, void *sptr)
{
    (void)sptr;
    irohds_node *n = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    if (conn_kind(c) == NODE_CONN_GOSSIP)
        glink_writable(n, irohds_net_conn_user_ptr(c), sid);
    else if (conn_kind(c) == NODE_CONN_SERVE)
        provide_writable(n, irohds_net_conn_user_ptr(c), sid);
}

static void on_stream_closed(irohds_net_conn *c, int64_t sid, void *sptr, int err, uint64_t code)
{
    (void)sptr;
    (void)code;
    irohds_node *n = irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
    switch (conn_kind(c)) {
    case NODE_CONN_GOSSIP:
        glink_stream_closed(n, irohds_net_conn_user_ptr(c), sid);
        break;
    case NODE_CONN_SERVE:
        provide_stream_closed(n, irohds_net_conn_user_ptr(c), sid);
        break;
    case NODE_CONN_FETCH:
        fetch_stream_closed(n, irohds_net_conn_user_ptr(c), sid, err);
        break;
    default:
        break;
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

/* ------------------------------------------------------- lifecycle */

/* "id@host:port" or "id" (the id alone needs discovery, a later step). */
static void add_bootstrap(irohds_node *n, const char *spec)
{
    uint8_t id[32];
    const char *at = strchr(spec, '@');
    size_t idlen = at ? (size_t)(at - spec) : strlen(spec);
    char hex[65];
    if (idlen != 64) {
        IROHDS_WARN("node: bootstrap peer \"%s\" is not <64-hex node id>[@host:port]", spec);
        return;
    }
    memcpy(hex, spec, 64);
    hex[64] = 0;
    if (irohds_hex_decode(hex, id, 32) != 0) {
        IROHDS_WARN("node: bootstrap peer \"%s\": bad node id", spec);
        return;
    }
    if (!memcmp(id, n->id, 32))
        return; /* ourselves (one config shared by all machines) */
    node_peer *p = node_peer_get(n, id);
    if (!p)
        return;
    p->sources |= NODE_SRC_BOOTSTRAP;
    if (at) {
        struct sockaddr_storage sa;
        if (irohds_net_parse_addr(at + 1, &sa) == 0)
            node_peer_add_addr(p, (const struct sockaddr *)&sa);
        else
            IROHDS_WARN("node: bootstrap peer \"%s\": bad address", spec);
    }
}

int irohds_node_start(uv_loop_t *loop, const irohds_node_options *opt, irohds_node **out)
{
    irohds_node *n = calloc(1, sizeof(*n));
    if (!n)
        return -ENOMEM;
    n->loop = loop;
    n->cb = opt->cb;
    n->store = opt->store;
    n->paths = *opt->paths;
    n->cfg = *opt->cfg;
    memcpy(n->sk, opt->secret_key, 64);
    memcpy(n->id, opt->secret_key + 32, 32);
    irohds_hex_encode(n->id, 32, n->id_hex);
    irohds_proto_limiter_init(&n->limit_hop, 200, 2000);
    irohds_proto_limiter_init(&n->limit_signer, 50, 500);

    irohds_net_config nc;
    memset(&nc, 0, sizeof nc); /* defaults() fills only the zero fields */
    irohds_net_config_defaults(&nc);
    nc.secret_key = n->sk;
    nc.listen = n->cfg.listen[0] ? n->cfg.listen : NULL;
    nc.alpns = ALPNS;
    nc.n_alpns = 2;
    nc.cb = &NET_CB;
    nc.user_ptr = n;
    /* BBR v2, not the transport's BBR default: a 1 GiB download between two
     * namespaces here ran at ~200 MB/s with BBR, 320-390 MB/s with BBR2 and
     * 100-450 MB/s with CUBIC (bench/bench_transfer.py); BBR's bandwidth
     * samples suffer from the receiver's bursts of verify-and-write work. */
    nc.cc = IROHDS_NET_CC_BBR2;
    int rc = irohds_net_endpoint_init(loop, &nc, &n->ep);
    char fallback[sizeof n->cfg.listen];
    const char *colon = strrchr(n->cfg.listen, ':');
    if (rc == -EADDRINUSE && colon) {
        /* Another daemon (another data dir) has the port: take any port
         * rather than no network; peers that were told the port need the
         * new address (irohds-daemon info prints it). */
        snprintf(fallback, sizeof fallback, "%.*s:0", (int)(colon - n->cfg.listen), n->cfg.listen);
        IROHDS_WARN("node: %s is in use; listening on an ephemeral port instead", n->cfg.listen);
        nc.listen = fallback;
        rc = irohds_net_endpoint_init(loop, &nc, &n->ep);
    }
    if (rc < 0) {
        IROHDS_ERROR("node: cannot listen on %s: %s", n->cfg.listen, strerror(-rc));
        free(n);
        return rc;
    }
    uint64_t seed;
    randombytes_buf(&seed, sizeof seed);
    rc = irohds_gossip_init(&n->gossip, n->id, NULL, seed);
    if (rc < 0) {
        irohds_net_endpoint_free(n->ep);
        free(n);
        return rc;
    }
    uint8_t pd[IROHDS_GOSSIP_MAX_PEER_DATA];
    int pdl = node_own_peer_data(n, pd, sizeof pd);
    if (pdl > 0)
        irohds_gossip_set_peer_data(n->gossip, pd, (size_t)pdl);

    uv_timer_init(loop, &n->gossip_timer);
    n->gossip_timer.data = n;
    uv_timer_init(loop, &n->tick);
    n->tick.data = n;
    uv_timer_start(&n->tick, on_tick, NODE_TICK_MS, NODE_TICK_MS);
    uv_idle_init(loop, &n->kick);
    n->kick.data = n;

    for (unsigned i = 0; i < n->cfg.n_bootstrap; i++)
        add_bootstrap(n, n->cfg.bootstrap_peers[i]);

    n->probe_req.data = n;
    if (uv_queue_work(loop, &n->probe_req, probe_work, probe_done) == 0)
        n->probe_running = true;
    if (n->cfg.mdns)
        node_mdns_start(n); /* failing leaves the node without LAN discovery, nothing more */
    if (n->cfg.dht)
        node_dht_start(n); /* also resolves bootstrap peers given by id alone */

    struct sockaddr_storage addrs[8];
    int na = node_own_addrs(n, addrs, 8);
    for (int i = 0; i < na; i++) {
        char a[80];
        irohds_net_addr_str((const struct sockaddr *)&addrs[i], a, sizeof a);
        IROHDS_INFO("node: %s@%s", n->id_hex, a);
    }
    *out = n;
    return 0;
}

static void on_handle_closed(uv_handle_t *h)
{
    node_unref(h->data);
}

void irohds_node_stop(irohds_node *n)
{
    if (!n)
        return;
    results_free_all(n); /* resolves pending misses GIVE_UP first */
    n->stopping = true;
    unsigned storing = fetch_free_all(n);
    storing += node_mdns_stop(n) ? 1 : 0;
    storing += node_dht_stop(n) ? 1 : 0;
    provide_free_all(n);
    glink_free_all(n);
    irohds_net_endpoint_free(n->ep);
    n->ep = NULL;
    irohds_gossip_free(n->gossip);
    n->gossip = NULL;
    for (size_t b = 0; b < 1024; b++)
        while (n->peers[b]) {
            node_peer *p = n->peers[b];
            n->peers[b] = p->next;
            free(p);
        }
    sodium_memzero(n->sk, sizeof n->sk);
    /* A probe still queued or running calls probe_done (cancelled or not);
     * the node is freed after it too. */
    n->handles_open = 3 + (n->probe_running ? 1 : 0) + storing;
    if (n->probe_running)
        uv_cancel((uv_req_t *)&n->probe_req);
    uv_close((uv_handle_t *)&n->gossip_timer, on_handle_closed);
    uv_close((uv_handle_t *)&n->tick, on_handle_closed);
    uv_close((uv_handle_t *)&n->kick, on_handle_closed);
}

/* ------------------------------------------------------------- JSON */

static void addr_list_json(irohds_jbuf *b, const struct sockaddr_storage *addrs, unsigned na)
{
    irohds_jbuf_puts(b, "[");
    for (unsigned i = 0; i < na; i++) {
        char a[80];
        irohds_net_addr_str((const struct sockaddr *)&addrs[i], a, sizeof a);
        if (i)
            irohds_jbuf_puts(b, ", ");
        irohds_jbuf_str(b, a);
    }
    irohds_jbuf_puts(b, "]");
}

char *irohds_node_addresses_json(irohds_node *n)
{
    struct sockaddr_storage addrs[NODE_PEER_ADDRS];
    int na = node_own_addrs(n, addrs, NODE_PEER_ADDRS);
    irohds_jbuf b = {0};
    addr_list_json(&b, addrs, na > 0 ? (unsigned)na : 0);
    return b.p;
}

static const char *source_name(unsigned sources)
{
    if (sources & NODE_SRC_BOOTSTRAP)
        return "bootstrap";
    if (sources & NODE_SRC_DHT)
        return "dht";
    if (sources & NODE_SRC_MDNS)
        return "mdns";
    if (sources & NODE_SRC_GOSSIP)
        return "gossip";
    return "incoming";
}

/* Gossip with p is up: a connection past its handshake. */
static bool gossip_connected(irohds_node *n, const node_peer *p)
{
    irohds_net_conn *c = irohds_net_find(n->ep, p->id, IROHDS_GOSSIP_ALPN);
    irohds_net_conn_info info;
    return c && irohds_net_conn_info_get(c, &info) == 0 && info.established;
}

static void peer_json(irohds_node *n, irohds_jbuf *b, const node_peer *p)
{
    irohds_jbuf_puts(b, "{\"node\": ");
    irohds_jbuf_hex(b, p->id, 32);
    irohds_jbuf_puts(b, ", \"addresses\": ");
    addr_list_json(b, p->addrs, p->naddrs);
    irohds_jbuf_printf(b, ", \"source\": \"%s\", \"connected\": %s, \"rtt_ms\": ",
                       source_name(p->sources), gossip_connected(n, p) ? "true" : "false");
    irohds_jbuf_num(b, p->link.rtt_samples ? p->link.rtt_s * 1e3 : (0.0 / 0.0));
    irohds_jbuf_puts(b, ", \"bytes_per_s\": ");
    irohds_jbuf_num(b, p->link.bw_samples ? p->link.bw : (0.0 / 0.0));
    irohds_jbuf_puts(b, "}");
}

/* "dropped_messages" and "dropped" of PEERS JSON (docs/ipc.md). */
static void dropped_json(irohds_node *n, irohds_jbuf *b)
{
    uint64_t frames = 0;
    for (unsigned i = 0; i < n->nns; i++) {
        irohds_gossip_stats st;
        if (irohds_gossip_stats_get(n->gossip, n->ns[i].topic, &st) == 0)
            frames += st.dropped_invalid + st.dropped_budget;
    }
    irohds_jbuf_printf(b, ", \"dropped_messages\": %llu, \"dropped\": {\"rate_limited\": %llu, "
                          "\"malformed\": %llu, \"bad_signature\": %llu, \"wrong_namespace\": %llu, "
                          "\"stale\": %llu, \"gossip_frames\": %llu, \"gossip_streams\": %llu}",
                       (unsigned long long)n->dropped_msgs,
                       (unsigned long long)n->dropped[NODE_DROP_RATE],
                       (unsigned long long)n->dropped[NODE_DROP_MALFORMED],
                       (unsigned long long)n->dropped[NODE_DROP_SIGNATURE],
                       (unsigned long long)n->dropped[NODE_DROP_NAMESPACE],
                       (unsigned long long)n->dropped[NODE_DROP_STALE], (unsigned long long)frames,
                       (unsigned long long)n->gossip_streams_dropped);
}

char *irohds_node_peers_json(irohds_node *n)
{
    irohds_jbuf b = {0};
    irohds_jbuf_puts(&b, "{\"node_id\": ");
    irohds_jbuf_str(&b, n->id_hex);
    dropped_json(n, &b);
    irohds_jbuf_puts(&b, ", \"addresses\": ");
    char *addrs = irohds_node_addresses_json(n);
    irohds_jbuf_puts(&b, addrs ? addrs : "[]");
    free(addrs);
    irohds_jbuf_puts(&b, ", \"namespaces\": {");
    for (unsigned i = 0; i < n->nns; i++) {
        if (i)
            irohds_jbuf_puts(&b, ", ");
        irohds_jbuf_str(&b, n->ns[i].name);
        irohds_jbuf_puts(&b, ": [");
        bool first = true;
        for (size_t k = 0; k < 1024; k++)
            for (node_peer *p = n->peers[k]; p; p = p->next) {
                if (!(p->ns_bits[i / 8] & (1u << (i % 8))))
                    continue;
                if (!first)
                    irohds_jbuf_puts(&b, ", ");
                first = false;
                peer_json(n, &b, p);
            }
        irohds_jbuf_puts(&b, "]");
    }
    irohds_jbuf_puts(&b, "}, \"dht\": ");
    node_dht_json(n, &b);
    irohds_jbuf_printf(&b, ", \"mdns\": %s, \"known\": [", n->mdns ? "true" : "false");
    bool first = true;
    for (size_t k = 0; k < 1024; k++)
        for (node_peer *p = n->peers[k]; p; p = p->next) {
            if (!first)
                irohds_jbuf_puts(&b, ", ");
            first = false;
            peer_json(n, &b, p);
        }
    irohds_jbuf_puts(&b, "]}");
    return b.p;
}

static void peer_line(irohds_node *n, irohds_jbuf *b, const char *ns, const node_peer *p)
{
    char id[17], addr[80] = "-", rtt[32] = "-";
    irohds_hex_encode(p->id, 8, id);
    if (p->naddrs)
        irohds_net_addr_str((const struct sockaddr *)&p->addrs[0], addr, sizeof addr);
    if (p->link.rtt_samples)
        snprintf(rtt, sizeof rtt, "%.2f ms", p->link.rtt_s * 1e3);
    irohds_jbuf_printf(b, "%-16s %-16s %-9s %-9s %-24s %s\n", ns, id, source_name(p->sources),
                       gossip_connected(n, p) ? "connected" : "-",
                       addr, rtt);
}

char *irohds_node_peers_text(irohds_node *n)
{
    irohds_jbuf b = {0};
    irohds_jbuf_printf(&b, "%-16s %-16s %-9s %-9s %-24s %s\n", "NAMESPACE", "NODE", "FOUND BY",
                       "GOSSIP", "ADDRESS", "RTT");
    bool any = false;
    for (unsigned i = 0; i < n->nns; i++)
        for (size_t k = 0; k < 1024; k++)
            for (node_peer *p = n->peers[k]; p; p = p->next)
                if (p->ns_bits[i / 8] & (1u << (i % 8))) {
                    peer_line(n, &b, n->ns[i].name, p);
                    any = true;
                }
    for (size_t k = 0; k < 1024; k++)
        for (node_peer *p = n->peers[k]; p; p = p->next) {
            bool in_ns = false;
            for (unsigned i = 0; i < sizeof p->ns_bits; i++)
                in_ns |= p->ns_bits[i] != 0;
            if (!in_ns) {
                peer_line(n, &b, "(none)", p);
                any = true;
            }
        }
    if (!any)
        irohds_jbuf_puts(&b, "(no peers known yet: bootstrap_peers in config.toml, or discovery)\n");
    return b.p;
}
