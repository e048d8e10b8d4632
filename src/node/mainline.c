/*
 * mainline.c: the node on the BitTorrent mainline DHT (dht/: BEP 5, 42, 44),
 * for three things:
 *
 *   address records  every node publishes where it can be reached as iroh
 *                    does (pkarr: a BEP 44 mutable item under its own key,
 *                    no salt, seq = µs time, v = a DNS packet of _iroh TXT
 *                    records with addr=), at start and every 30 minutes
 *                    (items live 2 h on the storing nodes), and again after
 *                    5 s, 10 s ... 5 min while no node took it;
 *   resolving ids    a peer known only by its node id (a bootstrap_peers
 *                    entry without an address, a provider whose HAVE arrived
 *                    through others) is looked up the same way; bootstrap
 *                    peers still without an address again after 5 s, 10 s
 *                    ... up to every 5 min;
 *   rendezvous       every namespace has an info-hash, SHA-1 of its gossip
 *                    topic id; a node announces its QUIC port there and looks
 *                    up the others (get_peers), at join and every 10 minutes,
 *                    and while it has no neighbour in the namespace after 1,
 *                    2, 4 ... up to 30 s.
 *                    get_peers gives addresses without ids: each is dialled
 *                    once "by address" (the QUIC handshake proves whatever
 *                    key it holds), and the id learnt is asked to let us into
 *                    the namespace's gossip.
 *
 * The DHT has its own UDP socket (dht_listen), so the QUIC socket stays
 * QUIC's.  The routing table is saved in <data dir>/dht.nodes every ten
 * minutes and at stop, and reused at start with the same DHT node id.
 * Bootstrap routers are dht_bootstrap from config, else the public ones.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <sodium.h>

#include "dht/dht.h"
#include "dns/dns.h"
#include "node/node_int.h"

#define PUBLISH_EVERY_US (30LL * 60 * 1000000)
#define PUBLISH_RETRY_MIN_US (5LL * 1000000) /* a record no node took: again after 5 s, */
#define PUBLISH_RETRY_MAX_US (5LL * 60 * 1000000) /* doubling up to 5 min */
#define RENDEZVOUS_EVERY_US (10LL * 60 * 1000000)
#define RENDEZVOUS_LONELY_MIN_US (1LL * 1000000) /* alone in a namespace: again after 1 s, */
#define RENDEZVOUS_LONELY_MAX_US (30LL * 1000000) /* doubling up to 30 s */
#define SAVE_EVERY_US (10LL * 60 * 1000000)
#define RESOLVE_AGAIN_US (60LL * 1000000) /* one lookup per id per minute */
#define BOOT_RESOLVE_MIN_US (5LL * 1000000) /* bootstrap peers still without an address: */
#define BOOT_RESOLVE_MAX_US (5LL * 60 * 1000000) /* looked up again after 5 s, doubling */
#define MAX_SEARCHES 48
#define MAX_PROBES 32
#define PKARR_TTL 30

static const char *const PUBLIC_ROUTERS[] = {
    "router.bittorrent.com", "6881", "dht.transmissionbt.com", "6881",
    "router.utorrent.com",   "6881", "dht.libtorrent.org",     "25401",
};

enum search_kind { S_PUBLISH = 1, S_RESOLVE, S_RENDEZVOUS };

typedef struct dht_search {
    uint32_t handle;
    enum search_kind kind;
    uint8_t id[32]; /* S_RESOLVE: the node id */
    char ns[IROHDS_NS_MAX]; /* S_RENDEZVOUS */
} dht_search;

/* A connection dialled by address only, to learn who is there. */
typedef struct dht_probe {
    int kind; /* NODE_CONN_PROBE: first, see node.c */
    struct dht_probe *next;
    irohds_net_conn *conn;
    char ns[IROHDS_NS_MAX];
} dht_probe;

typedef struct node_dht {
    irohds_dht *d;
    int fd;
    uv_poll_t poll;
    uv_timer_t timer;
    irohds_node *n;
    int handles;
    dht_search searches[MAX_SEARCHES];
    dht_probe *probes;
    unsigned nprobes;
    int64_t next_publish_us, next_save_us;
    int64_t publish_retry_us; /* the wait after a publish no node took */
    int64_t next_boot_resolve_us, boot_resolve_every_us;
    struct {
        uint8_t id[32];
        int64_t at;
    } resolved[64]; /* recent lookups, one slot per id hash */
    uv_getaddrinfo_t gai[4];
    int gai_pending;
    bool stopping;
    uint16_t port;
} node_dht;

/* The last of the handles and lookups to finish frees it (after stop). */
static void dh_unref(node_dht *dh)
{
    if (--dh->handles == 0) {
        irohds_node *n = dh->n;
        close(dh->fd);
        irohds_dht_free(dh->d);
        free(dh);
        node_unref(n);
    }
}

/* ------------------------------------------------------------- searches */

static dht_search *search_slot(node_dht *dh)
{
    for (unsigned i = 0; i < MAX_SEARCHES; i++)
        if (!dh->searches[i].handle)
            return &dh->searches[i];
    return NULL;
}

static dht_search *search_of(node_dht *dh, uint32_t handle)
{
    for (unsigned i = 0; i < MAX_SEARCHES; i++)
        if (dh->searches[i].handle == handle)
            return &dh->searches[i];
    return NULL;
}

static void publish(node_dht *dh)
{
    irohds_node *n = dh->n;
    struct sockaddr_storage own[IROHDS_PKARR_ADDRS_MAX];
    int na = node_own_addrs(n, own, IROHDS_PKARR_ADDRS_MAX);
    irohds_pkarr_info info;
    memset(&info, 0, sizeof info);
    for (int i = 0; i < na; i++)
        node_dns_addr_of(&own[i], &info.addrs[info.n_addrs++]);
    uint8_t pkt[1200], v[1024];
    size_t len;
    irohds_pkarr_bep44 b;
    if (irohds_pkarr_build(n->sk, (uint64_t)irohds_now_us(), &info, PKARR_TTL, pkt, sizeof pkt,
                           &len) != 0 ||
        irohds_pkarr_to_bep44(pkt, len, &b) != 0)
        return;
    /* BEP 44's v is the bencoded value: the DNS packet as a byte string. */
    int hl = snprintf((char *)v, sizeof v, "%zu:", b.v_len);
    if (hl < 0 || (size_t)hl + b.v_len > sizeof v)
        return;
    memcpy(v + hl, b.v, b.v_len);
    irohds_dht_item it = {.v = v, .v_len = (size_t)hl + b.v_len, .is_mutable = true,
                          .seq = b.seq};
    memcpy(it.k, b.k, 32);
    memcpy(it.sig, b.sig, 64);
    dht_search *s = search_slot(dh);
    if (s && irohds_dht_put(dh->d, node_now_ms(), &it, false, 0, &s->handle) == 0)
        s->kind = S_PUBLISH;
}

static void resolve(node_dht *dh, const uint8_t id[32], bool again)
{
    irohds_node *n = dh->n;
    if (!memcmp(id, n->id, 32))
        return;
    int64_t now = irohds_now_us();
    size_t slot = ((size_t)id[4] | (size_t)id[5] << 8) % 64;
    if (!again && !memcmp(dh->resolved[slot].id, id, 32) &&
        now - dh->resolved[slot].at < RESOLVE_AGAIN_US)
        return;
    memcpy(dh->resolved[slot].id, id, 32);
    dh->resolved[slot].at = now;
    dht_search *s = search_slot(dh);
    if (s && irohds_dht_get_mutable(dh->d, node_now_ms(), id, NULL, 0, false, 0, &s->handle) == 0) {
        s->kind = S_RESOLVE;
        memcpy(s->id, id, 32);
    }
}

void node_dht_resolve(irohds_node *n, const uint8_t id[32])
{
    if (n->dht)
        resolve(n->dht, id, false);
}

/* Bootstrap peers given by node id alone and still without an address:
 * their record may not have been published when we first looked (every
 * machine started at once with one config), so look again, with a backoff. */
static void resolve_bootstrap_peers(node_dht *dh, int64_t now_us)
{
    irohds_node *n = dh->n;
    if (now_us < dh->next_boot_resolve_us)
        return;
    dh->next_boot_resolve_us = now_us + dh->boot_resolve_every_us;
    dh->boot_resolve_every_us *= 2;
    if (dh->boot_resolve_every_us > BOOT_RESOLVE_MAX_US)
        dh->boot_resolve_every_us = BOOT_RESOLVE_MAX_US;
    for (size_t b = 0; b < 1024; b++)
        for (node_peer *p = n->peers[b]; p; p = p->next)
            if ((p->sources & NODE_SRC_BOOTSTRAP) && !p->naddrs)
                resolve(dh, p->id, true);
}

static void ns_info_hash(const node_ns *ns, uint8_t out[IROHDS_DHT_ID_LEN])
{
    irohds_dht_mutable_target(ns->topic, NULL, 0, out); /* SHA-1 of the topic id */
}

static void rendezvous(node_dht *dh, node_ns *ns)
{
    uint8_t ih[IROHDS_DHT_ID_LEN];
    ns_info_hash(ns, ih);
    dht_search *s = search_slot(dh);
    if (s && dh->port &&
        irohds_dht_announce(dh->d, node_now_ms(), ih, dh->port, false, &s->handle) == 0) {
        s->kind = S_RENDEZVOUS;
        snprintf(s->ns, sizeof s->ns, "%s", ns->name);
    }
    if (ns->neighbors) {
        ns->rendezvous_every_us = RENDEZVOUS_LONELY_MIN_US;
        ns->rendezvous_at_us = irohds_now_us() + RENDEZVOUS_EVERY_US;
        return;
    }
    if (ns->rendezvous_every_us < RENDEZVOUS_LONELY_MIN_US)
        ns->rendezvous_every_us = RENDEZVOUS_LONELY_MIN_US;
    ns->rendezvous_at_us = irohds_now_us() + ns->rendezvous_every_us;
    ns->rendezvous_every_us *= 2;
    if (ns->rendezvous_every_us > RENDEZVOUS_LONELY_MAX_US)
        ns->rendezvous_every_us = RENDEZVOUS_LONELY_MAX_US;
}

/* --------------------------------------------------------------- probes */

static bool is_own_addr(irohds_node *n, const struct sockaddr_storage *ss)
{
    struct sockaddr_storage own[8];
    int na = n->ep ? irohds_net_endpoint_addrs(n->ep, own, 8) : 0;
    for (int i = 0; i < na; i++)
        if (own[i].ss_family == ss->ss_family && own[i].ss_family == AF_INET &&
            !memcmp(&own[i], ss, sizeof(struct sockaddr_in)))
            return true;
    return false;
}

static bool known_addr(irohds_node *n, const struct sockaddr_storage *ss)
{
    for (size_t b = 0; b < 1024; b++)
        for (node_peer *p = n->peers[b]; p; p = p->next)
            for (unsigned i = 0; i < p->naddrs; i++)
                if (p->addrs[i].ss_family == AF_INET && ss->ss_family == AF_INET &&
                    !memcmp(&p->addrs[i], ss, sizeof(struct sockaddr_in)))
                    return true;
    return false;
}

static void probe_free(node_dht *dh, dht_probe *pr)
{
    for (dht_probe **pp = &dh->probes; *pp; pp = &(*pp)->next)
        if (*pp == pr) {
            *pp = pr->next;
            dh->nprobes--;
            break;
        }
    free(pr);
}

/* Peers of ns's info-hash: addresses of QUIC endpoints, ids unknown. */
static void on_peers(node_dht *dh, const dht_search *s, const irohds_dht_addr *peers, size_t np)
{
    irohds_node *n = dh->n;
    node_ns *ns = node_ns_find(n, s->ns);
    for (size_t i = 0; i < np && ns; i++) {
        struct sockaddr_storage ss;
        if (!irohds_dht_addr_to_sockaddr(&peers[i], &ss) || is_own_addr(n, &ss))
            continue;
        if (known_addr(n, &ss)) {
            /* A peer we know: ask it straight (its id is in the book). */
            for (size_t b = 0; b < 1024; b++)
                for (node_peer *p = n->peers[b]; p; p = p->next)
                    for (unsigned k = 0; k < p->naddrs; k++)
                        if (!memcmp(&p->addrs[k], &ss, sizeof(struct sockaddr_in)))
                            node_ns_join_peer(n, ns, p);
            continue;
        }
        if (dh->nprobes >= MAX_PROBES)
            break;
        dht_probe *pr = calloc(1, sizeof(*pr));
        if (!pr)
            break;
        pr->kind = NODE_CONN_PROBE;
        snprintf(pr->ns, sizeof pr->ns, "%s", ns->name);
        if (irohds_net_connect(n->ep, NULL, (const struct sockaddr *)&ss, IROHDS_GOSSIP_ALPN, 0, pr,
                               &pr->conn) != 0) {
            free(pr);
            continue;
        }
        pr->next = dh->probes;
        dh->probes = pr;
        dh->nprobes++;
    }
}

/* A probe reached someone: that key is the peer's id. */
void node_dht_probe_connected(irohds_node *n, dht_probe *pr)
{
    irohds_net_conn_info info;
    irohds_net_conn_info_get(pr->conn, &info);
    irohds_net_conn_close(pr->conn, 0, "learnt your id");
    if (!info.remote_id_known || !memcmp(info.remote_id, n->id, 32))
        return;
    node_peer *p = node_peer_get(n, info.remote_id);
    node_ns *ns = node_ns_find(n, pr->ns);
    if (!p || !ns)
        return;
    p->sources |= NODE_SRC_DHT;
    p->last_seen_us = irohds_now_us();
    node_peer_add_addr(p, (const struct sockaddr *)&info.remote_addr);
    node_ns_join_peer(n, ns, p);
}

void node_dht_probe_closed(irohds_node *n, dht_probe *pr)
{
    if (n->dht)
        probe_free(n->dht, pr);
    else
        free(pr);
}

/* An address record found for a node id. */
static void on_item(node_dht *dh, const dht_search *s, const irohds_dht_item *it)
{
    irohds_node *n = dh->n;
    /* v is "<len>:<dns packet>" */
    const uint8_t *colon = memchr(it->v, ':', it->v_len < 8 ? it->v_len : 8);
    if (!colon)
        return;
    irohds_pkarr_bep44 b = {.k = it->k, .sig = it->sig, .seq = it->seq, .v = colon + 1,
                            .v_len = it->v_len - (size_t)(colon + 1 - it->v)};
    uint8_t pkt[1200];
    size_t len;
    irohds_pkarr_packet pp;
    irohds_pkarr_info info;
    if (irohds_pkarr_from_bep44(&b, pkt, sizeof pkt, &len) != 0 ||
        irohds_pkarr_open(&pp, pkt, len) != 0 || memcmp(pp.key, s->id, 32) != 0 ||
        irohds_pkarr_info_from_packet(&pp, &info) != 0 || !info.n_addrs)
        return;
    node_peer *p = node_peer_get(n, s->id);
    if (!p)
        return;
    p->sources |= NODE_SRC_DHT;
    for (size_t i = info.n_addrs; i-- > 0;) {
        struct sockaddr_storage ss;
        node_sockaddr_make(&ss, info.addrs[i].family == 6, info.addrs[i].ip, info.addrs[i].port);
        node_peer_add_addr(p, (const struct sockaddr *)&ss);
    }
    char hex[17];
    irohds_hex_encode(s->id, 8, hex);
    IROHDS_INFO("node: resolved %s through the DHT (%zu address%s)", hex, info.n_addrs,
                info.n_addrs == 1 ? "" : "es");
    node_peer_resolved(n, p);
}

static void on_event(node_dht *dh, const irohds_dht_event *ev)
{
    dht_search *s = search_of(dh, ev->handle);
    if (ev->type == IROHDS_DHT_EV_EXTERNAL) {
        IROHDS_INFO("node: DHT nodes see us at an external address%s",
                    ev->id_changed ? " (new BEP 42 node id)" : "");
        return;
    }
    if (!s)
        return;
    switch (ev->type) {
    case IROHDS_DHT_EV_PEERS:
        if (s->kind == S_RENDEZVOUS)
            on_peers(dh, s, ev->peers, ev->n_peers);
        break;
    case IROHDS_DHT_EV_ITEM:
        if (s->kind == S_RESOLVE && ev->item.is_mutable)
            on_item(dh, s, &ev->item);
        break;
    case IROHDS_DHT_EV_STORED:
        if (s->kind == S_PUBLISH && ev->n_ok == 0) {
            /* Nobody answered yet (routers still down, no network): do not
             * wait for the half-hourly republish. */
            if (dh->publish_retry_us < PUBLISH_RETRY_MIN_US)
                dh->publish_retry_us = PUBLISH_RETRY_MIN_US;
            dh->next_publish_us = irohds_now_us() + dh->publish_retry_us;
            dh->publish_retry_us *= 2;
            if (dh->publish_retry_us > PUBLISH_RETRY_MAX_US)
                dh->publish_retry_us = PUBLISH_RETRY_MAX_US;
        } else if (s->kind == S_PUBLISH) {
            dh->publish_retry_us = PUBLISH_RETRY_MIN_US;
        }
        IROHDS_DEBUG("node: DHT %s stored on %u node%s (%u failed)",
                     s->kind == S_PUBLISH ? "address record" : "announce", ev->n_ok,
                     ev->n_ok == 1 ? "" : "s", ev->n_failed);
        break;
    case IROHDS_DHT_EV_DONE:
        memset(s, 0, sizeof(*s));
        break;
    default:
        break;
    }
}

/* ----------------------------------------------------------------- I/O */

static void pump(node_dht *dh);

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

static void save_table(node_dht *dh)
{
    uint8_t buf[1 << 16];
    size_t len;
    if (irohds_dht_save_nodes(dh->d, buf, sizeof buf, &len) != 0)
        return;
    char path[PATH_MAX + 32], tmp[PATH_MAX + 40];
    snprintf(path, sizeof path, "%s/dht.nodes", dh->n->paths.data_dir);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return;
    int rc = irohds_write_all(fd, buf, len);
    close(fd);
    if (rc == 0)
        rename(tmp, path);
    else
        unlink(tmp);
}

/* Periodic work, then send what the core queued, then events. */
static void pump(node_dht *dh)
{
    irohds_node *n = dh->n;
    uint64_t now = node_now_ms();
    int64_t now_us = irohds_now_us();
    if (now_us >= dh->next_publish_us) {
        dh->next_publish_us = now_us + PUBLISH_EVERY_US; /* the STORED event may bring it nearer */
        publish(dh);
    }
    for (unsigned i = 0; i < n->nns; i++)
        if (now_us >= n->ns[i].rendezvous_at_us)
            rendezvous(dh, &n->ns[i]);
    resolve_bootstrap_peers(dh, now_us);
    if (now_us >= dh->next_save_us) {
        dh->next_save_us = now_us + SAVE_EVERY_US;
        save_table(dh);
    }
    uint64_t next = irohds_dht_periodic(dh->d, now);
    irohds_dht_packet pkt;
    while (irohds_dht_next_packet(dh->d, &pkt))
        sendto(dh->fd, pkt.buf, pkt.len, 0, (struct sockaddr *)&pkt.to, pkt.tolen);
    irohds_dht_event ev;
    while (irohds_dht_next_event(dh->d, &ev))
        on_event(dh, &ev);
    next = irohds_dht_next_deadline(dh->d);
    uint64_t wait = next > now ? next - now : 0;
    if (wait > 1000)
        wait = 1000; /* our own schedule (publish, rendezvous) is checked every second */
    node_gossip_pump(n);
    uv_timer_start(&dh->timer, on_timer, wait, 0);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    node_dht *dh = h->data;
    (void)events;
    if (status < 0)
        return;
    uint8_t buf[IROHDS_DHT_MAX_PACKET + 1];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(dh->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            break;
        irohds_dht_receive(dh->d, node_now_ms(), buf, (size_t)r, (struct sockaddr *)&from, fl);
    }
    pump(dh);
}

static void on_router(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
    node_dht *dh = req->data;
    dh->gai_pending--;
    if (dh->stopping) {
        uv_freeaddrinfo(res);
        dh_unref(dh);
        return;
    }
    for (struct addrinfo *a = status == 0 ? res : NULL; a; a = a->ai_next)
        if (a->ai_family == AF_INET) {
            irohds_dht_add_router(dh->d, a->ai_addr, a->ai_addrlen);
            break;
        }
    uv_freeaddrinfo(res);
    pump(dh);
}

static void add_routers(node_dht *dh)
{
    irohds_node *n = dh->n;
    if (n->cfg.dht_bootstrap_set) {
        for (unsigned i = 0; i < n->cfg.n_dht_bootstrap; i++) {
            struct sockaddr_storage ss;
            if (irohds_net_parse_addr(n->cfg.dht_bootstrap[i], &ss) == 0)
                irohds_dht_add_router(dh->d, (struct sockaddr *)&ss,
                                      ss.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                                              : sizeof(struct sockaddr_in6));
            else
                IROHDS_WARN("node: dht_bootstrap \"%s\" is not an ip:port", n->cfg.dht_bootstrap[i]);
        }
        return;
    }
    struct addrinfo hints = {.ai_family = AF_INET, .ai_socktype = SOCK_DGRAM};
    for (unsigned i = 0; i < 4; i++) {
        dh->gai[i].data = dh;
        if (uv_getaddrinfo(n->loop, &dh->gai[i], on_router, PUBLIC_ROUTERS[2 * i],
                           PUBLIC_ROUTERS[2 * i + 1], &hints) == 0)
            dh->gai_pending++;
    }
}

static int open_socket(const char *listen, uint16_t *port)
{
    struct sockaddr_storage ss;
    if (irohds_net_parse_addr(listen, &ss) != 0 || ss.ss_family != AF_INET)
        return -EINVAL; /* IPv4 only for now */
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (bind(fd, (struct sockaddr *)&ss, sizeof(struct sockaddr_in)) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    struct sockaddr_in got;
    socklen_t gl = sizeof got;
    getsockname(fd, (struct sockaddr *)&got, &gl);
    *port = ntohs(got.sin_port);
    return fd;
}

/* Our QUIC port: what rendezvous announces. */
static uint16_t quic_port(irohds_node *n)
{
    struct sockaddr_storage ss;
    if (irohds_net_endpoint_local_addr(n->ep, &ss) != 0)
        return 0;
    return ntohs(ss.ss_family == AF_INET ? ((struct sockaddr_in *)&ss)->sin_port
                                         : ((struct sockaddr_in6 *)&ss)->sin6_port);
}

int node_dht_start(irohds_node *n)
{
    uint16_t dport = 0;
    int fd = open_socket(n->cfg.dht_listen, &dport);
    if (fd < 0) {
        IROHDS_WARN("node: DHT off: cannot bind %s: %s", n->cfg.dht_listen, strerror(-fd));
        return fd;
    }
    node_dht *dh = calloc(1, sizeof(*dh));
    if (!dh) {
        close(fd);
        return -ENOMEM;
    }
    irohds_dht_config cfg;
    irohds_dht_config_default(&cfg);
    randombytes_buf(cfg.seed, sizeof cfg.seed);
    char path[PATH_MAX + 32], *saved = NULL;
    size_t saved_len = 0;
    snprintf(path, sizeof path, "%s/dht.nodes", n->paths.data_dir);
    if (irohds_read_file(path, 1 << 16, &saved, &saved_len) == 0 &&
        irohds_dht_saved_id(saved, saved_len, cfg.id) == 0)
        cfg.has_id = true; /* the same DHT id as last time: others' tables still hold it */
    int rc = irohds_dht_new(&dh->d, &cfg);
    if (rc < 0) {
        free(saved);
        close(fd);
        free(dh);
        return rc;
    }
    if (saved)
        irohds_dht_load_nodes(dh->d, node_now_ms(), saved, saved_len, NULL);
    free(saved);
    dh->fd = fd;
    dh->n = n;
    dh->port = quic_port(n);
    dh->next_publish_us = irohds_now_us() + 1000000; /* once some nodes answered */
    dh->next_save_us = irohds_now_us() + SAVE_EVERY_US;
    dh->boot_resolve_every_us = BOOT_RESOLVE_MIN_US;
    dh->next_boot_resolve_us = irohds_now_us() + BOOT_RESOLVE_MIN_US; /* node.c asks at start */
    n->dht = dh;
    add_routers(dh);
    uv_poll_init(n->loop, &dh->poll, fd);
    dh->poll.data = dh;
    uv_poll_start(&dh->poll, UV_READABLE, on_readable);
    uv_timer_init(n->loop, &dh->timer);
    dh->timer.data = dh;
    IROHDS_INFO("node: DHT on 0.0.0.0:%u (%s routers)", dport,
                n->cfg.dht_bootstrap_set ? "configured" : "public");
    pump(dh);
    return 0;
}

void node_dht_json(irohds_node *n, irohds_jbuf *b)
{
    if (!n->dht) {
        irohds_jbuf_puts(b, "null");
        return;
    }
    irohds_dht_stats st;
    irohds_dht_stats_get(n->dht->d, &st);
    irohds_jbuf_printf(b, "{\"port\": %u, \"nodes_good\": %zu, \"nodes_questionable\": %zu, "
                          "\"items\": %zu, \"torrents\": %zu, \"packets_in\": %llu, "
                          "\"packets_out\": %llu, \"bytes_in\": %llu, \"bytes_out\": %llu, "
                          "\"dropped\": %llu}",
                       node_dht_port(n), st.nodes_good, st.nodes_questionable, st.items, st.torrents,
                       (unsigned long long)st.packets_in, (unsigned long long)st.packets_out,
                       (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
                       (unsigned long long)(st.dropped_malformed + st.dropped_oversize +
                                            st.dropped_unsolicited + st.dropped_rate));
}

uint16_t node_dht_port(irohds_node *n)
{
    if (!n->dht)
        return 0;
    struct sockaddr_in got;
    socklen_t gl = sizeof got;
    if (getsockname(n->dht->fd, (struct sockaddr *)&got, &gl) != 0)
        return 0;
    return ntohs(got.sin_port);
}

void node_dht_namespace_joined(irohds_node *n, node_ns *ns)
{
    ns->rendezvous_at_us = irohds_now_us(); /* at the next pump */
    if (n->dht)
        pump(n->dht);
}

static void on_closed(uv_handle_t *h)
{
    dh_unref(h->data);
}

bool node_dht_stop(irohds_node *n)
{
    node_dht *dh = n->dht;
    if (!dh)
        return false;
    n->dht = NULL;
    dh->stopping = true;
    save_table(dh);
    /* Router lookups still running call on_router, cancelled or not. */
    for (int i = 0; i < 4; i++)
        uv_cancel((uv_req_t *)&dh->gai[i]);
    while (dh->probes) {
        dht_probe *pr = dh->probes;
        dh->probes = pr->next;
        if (pr->conn)
            irohds_net_conn_set_user_ptr(pr->conn, NULL);
        free(pr);
    }
    dh->handles = 2 + dh->gai_pending;
    uv_poll_stop(&dh->poll);
    uv_timer_stop(&dh->timer);
    uv_close((uv_handle_t *)&dh->poll, on_closed);
    uv_close((uv_handle_t *)&dh->timer, on_closed);
    return true;
}
