/*
 * local.c: LAN discovery over multicast DNS (mdns/, RFC 6762), the records
 * iroh's local discovery uses (_irohv1._udp.local) plus the namespaces this
 * node serves.  This file is the mDNS core's host: the socket, the timer,
 * and what a sighting means for the node.
 *
 * The sockets: UDP 0.0.0.0:5353 and [::]:5353 (v6 only), with SO_REUSEADDR
 * and SO_REUSEPORT, so they share the port with any other responder on the
 * host (avahi); members of 224.0.0.251 and ff02::fb on every interface that
 * is up (loopback aside); multicast sent from the first such interface,
 * TTL / hop limit 255 (RFC 6762 §11), loop on (other daemons on this host
 * hear us; the core drops our own packets).  Group packets go out on both
 * families; a unicast answer on the socket of its destination's family.
 * The IPv6 socket is optional: a host without IPv6 speaks mDNS over IPv4.
 *
 * A sighting of a peer (its node id, addresses, QUIC port, namespaces) puts
 * its addresses in the address book (source "mdns") and, for every
 * namespace both of us serve, asks it to let us into that namespace's
 * gossip.  mDNS is unauthenticated; the QUIC handshake then proves the id.
 */
#include <errno.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>

#include "node/node_int.h"

typedef struct node_mdns {
    irohds_mdns *m;
    int fd, fd6; /* fd6 is -1 without IPv6 */
    uv_poll_t poll, poll6;
    uv_timer_t timer;
    irohds_node *n;
    int handles; /* still to close */
} node_mdns;

/* 224.0.0.251:5353 */
static struct sockaddr_in group_addr(void)
{
    struct sockaddr_in g = {.sin_family = AF_INET};
    g.sin_port = htons(IROHDS_MDNS_PORT);
    g.sin_addr.s_addr = htonl(0xe00000fbu); /* 224.0.0.251 */
    return g;
}

/* [ff02::fb]:5353 */
static struct sockaddr_in6 group6_addr(void)
{
    struct sockaddr_in6 g = {.sin6_family = AF_INET6};
    g.sin6_port = htons(IROHDS_MDNS_PORT);
    inet_pton(AF_INET6, "ff02::fb", &g.sin6_addr);
    return g;
}

void node_dns_addr_of(const struct sockaddr_storage *ss, irohds_dns_addr *a)
{
    bool v6;
    memset(a, 0, sizeof(*a));
    node_sockaddr_split(ss, &v6, a->ip, &a->port);
    a->family = v6 ? 6 : 4;
}

static void from_dns_addr(const irohds_dns_addr *a, uint16_t port, struct sockaddr_storage *ss)
{
    node_sockaddr_make(ss, a->family == 6, a->ip, port);
}

/* A packet to the groups (both families) or to one address. */
static void send_pkt(node_mdns *md, const irohds_mdns_packet *pkt)
{
    if (pkt->unicast) {
        struct sockaddr_storage to;
        from_dns_addr(&pkt->to, pkt->to.port, &to);
        int fd = to.ss_family == AF_INET ? md->fd : md->fd6;
        if (fd >= 0)
            sendto(fd, pkt->data, pkt->len, 0, (struct sockaddr *)&to,
                   to.ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                           : sizeof(struct sockaddr_in6));
        return;
    }
    struct sockaddr_in g = group_addr();
    sendto(md->fd, pkt->data, pkt->len, 0, (struct sockaddr *)&g, sizeof g);
    if (md->fd6 >= 0) {
        struct sockaddr_in6 g6 = group6_addr();
        sendto(md->fd6, pkt->data, pkt->len, 0, (struct sockaddr *)&g6, sizeof g6);
    }
}

/* ff02::fb on every IPv6-capable interface that is up; the first one also
 * carries our multicast sends.  Returns how many were joined. */
static int join_groups6(int fd)
{
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return 0;
    int joined = 0;
    unsigned last = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET6 ||
            (i->ifa_flags & IFF_LOOPBACK) || !(i->ifa_flags & IFF_UP))
            continue;
        unsigned idx = if_nametoindex(i->ifa_name);
        if (!idx || idx == last)
            continue; /* one join per interface, whatever its addresses */
        last = idx;
        struct ipv6_mreq mr = {.ipv6mr_interface = idx};
        inet_pton(AF_INET6, "ff02::fb", &mr.ipv6mr_multiaddr);
        if (setsockopt(fd, IPPROTO_IPV6, IPV6_JOIN_GROUP, &mr, sizeof mr) != 0)
            continue;
        if (joined++ == 0)
            setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_IF, &idx, sizeof idx);
    }
    freeifaddrs(ifs);
    return joined;
}

static int open_socket6(void)
{
    int fd = socket(AF_INET6, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, hops = 255;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    struct sockaddr_in6 any = {.sin6_family = AF_INET6, .sin6_port = htons(IROHDS_MDNS_PORT)};
    if (bind(fd, (struct sockaddr *)&any, sizeof any) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_HOPS, &hops, sizeof hops);
    setsockopt(fd, IPPROTO_IPV6, IPV6_MULTICAST_LOOP, &one, sizeof one);
    if (join_groups6(fd) == 0) {
        close(fd);
        return -ENETDOWN;
    }
    return fd;
}

/* Join 224.0.0.251 on every IPv4 interface with an address; the first one
 * also carries our multicast sends.  Returns how many were joined. */
static int join_groups(int fd)
{
    struct ifaddrs *ifs;
    if (getifaddrs(&ifs) != 0)
        return 0;
    int joined = 0;
    for (struct ifaddrs *i = ifs; i; i = i->ifa_next) {
        if (!i->ifa_addr || i->ifa_addr->sa_family != AF_INET || (i->ifa_flags & IFF_LOOPBACK) ||
            !(i->ifa_flags & IFF_UP))
            continue;
        struct ip_mreqn mr = {0};
        mr.imr_multiaddr.s_addr = htonl(0xe00000fbu);
        mr.imr_address = ((struct sockaddr_in *)i->ifa_addr)->sin_addr;
        mr.imr_ifindex = (int)if_nametoindex(i->ifa_name);
        if (setsockopt(fd, IPPROTO_IP, IP_ADD_MEMBERSHIP, &mr, sizeof mr) != 0)
            continue;
        if (joined++ == 0)
            setsockopt(fd, IPPROTO_IP, IP_MULTICAST_IF, &mr, sizeof mr);
    }
    freeifaddrs(ifs);
    return joined;
}

static int open_socket(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    int one = 1, ttl = 255;
    unsigned char loop = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    struct sockaddr_in any = {.sin_family = AF_INET, .sin_port = htons(IROHDS_MDNS_PORT)};
    if (bind(fd, (struct sockaddr *)&any, sizeof any) != 0) {
        int e = -errno;
        close(fd);
        return e;
    }
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_TTL, &ttl, sizeof ttl);
    setsockopt(fd, IPPROTO_IP, IP_MULTICAST_LOOP, &loop, sizeof loop);
    if (join_groups(fd) == 0) {
        close(fd);
        return -ENETDOWN; /* no interface to speak mDNS on */
    }
    return fd;
}

/* ------------------------------------------------------------ events */

static void on_peer_seen(irohds_node *n, const irohds_mdns_peer *mp)
{
    if (!memcmp(mp->id, n->id, 32))
        return;
    node_peer *p = node_peer_get(n, mp->id);
    if (!p)
        return;
    p->sources |= NODE_SRC_MDNS;
    p->last_seen_us = irohds_now_us();
    for (size_t i = mp->n_addrs; i-- > 0;) {
        struct sockaddr_storage ss;
        from_dns_addr(&mp->addrs[i], mp->port, &ss);
        node_peer_add_addr(p, (const struct sockaddr *)&ss);
    }
    for (size_t i = 0; i < mp->n_ns; i++) {
        size_t len;
        const char *name = irohds_mdns_peer_ns(mp, i, &len);
        char buf[IROHDS_NS_MAX];
        if (!name || len >= sizeof buf)
            continue;
        memcpy(buf, name, len);
        buf[len] = 0;
        node_ns *ns = node_ns_find(n, buf);
        if (ns)
            node_ns_join_peer(n, ns, p); /* a LAN peer of this namespace: join through it */
    }
}

static void pump(node_mdns *md);

static void on_timer(uv_timer_t *t)
{
    pump(t->data);
}

/* Run the core, send what it queued, act on its events, re-arm the timer. */
static void pump(node_mdns *md)
{
    irohds_node *n = md->n;
    int64_t now = (int64_t)node_now_ms();
    int64_t next = irohds_mdns_periodic(md->m, now);
    irohds_mdns_packet pkt;
    while (irohds_mdns_next_packet(md->m, &pkt))
        send_pkt(md, &pkt);
    irohds_mdns_event ev;
    while (irohds_mdns_next_event(md->m, &ev))
        if (ev.kind == IROHDS_MDNS_PEER_SEEN)
            on_peer_seen(n, &ev.peer);
    node_gossip_pump(n);
    uv_timer_start(&md->timer, on_timer, next > now ? (uint64_t)(next - now) : 0, 0);
}

static void on_readable(uv_poll_t *h, int status, int events)
{
    node_mdns *md = h->data;
    (void)events;
    if (status < 0)
        return;
    int fd = h == &md->poll ? md->fd : md->fd6;
    uint8_t buf[9000];
    for (int i = 0; i < 64; i++) {
        struct sockaddr_storage from;
        socklen_t fl = sizeof from;
        ssize_t r = recvfrom(fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl);
        if (r < 0)
            break;
        irohds_dns_addr a;
        node_dns_addr_of(&from, &a);
        irohds_mdns_receive(md->m, (int64_t)node_now_ms(), buf, (size_t)r, &a);
    }
    pump(md);
}

/* ------------------------------------------------------------ lifecycle */

/* What we advertise: our reachable addresses and QUIC port, our namespaces. */
static int fill_cfg(irohds_node *n, irohds_mdns_cfg *cfg, irohds_dns_addr *addrs,
                    const char **names)
{
    struct sockaddr_storage own[IROHDS_MDNS_ADDRS_MAX];
    int na = node_own_addrs(n, own, IROHDS_MDNS_ADDRS_MAX);
    memset(cfg, 0, sizeof(*cfg));
    memcpy(cfg->id, n->id, 32);
    for (int i = 0; i < na; i++)
        node_dns_addr_of(&own[i], &addrs[i]);
    cfg->port = na > 0 ? addrs[0].port : 0;
    cfg->addrs = addrs;
    cfg->n_addrs = na > 0 ? (size_t)na : 0;
    size_t k = 0;
    for (unsigned i = 0; i < n->nns && k < IROHDS_MDNS_NS_MAX; i++)
        names[k++] = n->ns[i].name;
    cfg->ns = names;
    cfg->n_ns = k;
    return 0;
}

int node_mdns_start(irohds_node *n)
{
    int fd = open_socket();
    if (fd < 0) {
        IROHDS_WARN("node: mDNS off: %s", strerror(-fd));
        return fd;
    }
    node_mdns *md = calloc(1, sizeof(*md));
    if (!md) {
        close(fd);
        return -ENOMEM;
    }
    irohds_mdns_cfg cfg;
    irohds_dns_addr addrs[IROHDS_MDNS_ADDRS_MAX];
    const char *names[IROHDS_MDNS_NS_MAX];
    fill_cfg(n, &cfg, addrs, names);
    randombytes_buf(&cfg.seed, sizeof cfg.seed);
    cfg.now_ms = (int64_t)node_now_ms();
    md->m = irohds_mdns_new(&cfg);
    if (!md->m) {
        int e = -errno;
        close(fd);
        free(md);
        return e;
    }
    md->fd = fd;
    md->fd6 = open_socket6();
    md->n = n;
    uv_poll_init(n->loop, &md->poll, fd);
    md->poll.data = md;
    uv_poll_start(&md->poll, UV_READABLE, on_readable);
    if (md->fd6 >= 0) {
        uv_poll_init(n->loop, &md->poll6, md->fd6);
        md->poll6.data = md;
        uv_poll_start(&md->poll6, UV_READABLE, on_readable);
    }
    uv_timer_init(n->loop, &md->timer);
    md->timer.data = md;
    n->mdns = md;
    pump(md);
    IROHDS_INFO("node: mDNS on (_irohv1._udp.local over IPv4%s, %zu address%s)",
                md->fd6 >= 0 ? " and IPv6" : "", cfg.n_addrs, cfg.n_addrs == 1 ? "" : "es");
    return 0;
}

void node_mdns_namespaces_changed(irohds_node *n)
{
    node_mdns *md = n->mdns;
    if (!md)
        return;
    const char *names[IROHDS_MDNS_NS_MAX];
    size_t k = 0;
    for (unsigned i = 0; i < n->nns && k < IROHDS_MDNS_NS_MAX; i++)
        names[k++] = n->ns[i].name;
    irohds_mdns_set_ns(md->m, (int64_t)node_now_ms(), names, k);
    pump(md);
}

static void on_closed(uv_handle_t *h)
{
    node_mdns *md = h->data;
    if (--md->handles == 0) {
        irohds_node *n = md->n;
        close(md->fd);
        if (md->fd6 >= 0)
            close(md->fd6);
        irohds_mdns_free(md->m);
        free(md);
        node_unref(n);
    }
}

/* Say goodbye on the LAN and close; one node_unref when done. */
bool node_mdns_stop(irohds_node *n)
{
    node_mdns *md = n->mdns;
    if (!md)
        return false;
    n->mdns = NULL;
    irohds_mdns_goodbye(md->m, (int64_t)node_now_ms());
    irohds_mdns_packet pkt;
    while (irohds_mdns_next_packet(md->m, &pkt))
        if (!pkt.unicast)
            send_pkt(md, &pkt);
    md->handles = 2 + (md->fd6 >= 0);
    uv_poll_stop(&md->poll);
    uv_timer_stop(&md->timer);
    uv_close((uv_handle_t *)&md->poll, on_closed);
    uv_close((uv_handle_t *)&md->timer, on_closed);
    if (md->fd6 >= 0) {
        uv_poll_stop(&md->poll6);
        uv_close((uv_handle_t *)&md->poll6, on_closed);
    }
    return true;
}
