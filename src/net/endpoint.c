/*
 * endpoint.c: the endpoint, the only part that talks to libuv.
 *
 * One UDP socket (udp.c) polled with uv_poll, one timer per connection
 * (conn.c), and a prepare handle that runs pending work just before the
 * loop blocks, so writes the app makes from anywhere go out in the same
 * loop iteration, batched.
 *
 * Routing: each datagram's destination connection id (ours are
 * NET_SCID_LEN bytes, so short headers parse) is looked up in the cid map.
 * Unknown ids: a long-header Initial may start a connection (ngtcp2_accept
 * judges it) if we serve any ALPN; an unsupported version gets a Version
 * Negotiation packet; a short header gets a stateless reset, whose token is
 * derived from the node key, so a restarted node (same key) can tell its
 * old peers their connections are gone.  Anything else is dropped and
 * counted.  Resets and version negotiation are rate-limited and never
 * larger than what provoked them.
 *
 * Writing: connections with something to do wait in a FIFO service queue.
 * Each turn a connection is serviced (held reads, writable callbacks, a
 * requested close) and writes one burst; if it has more, it goes to the
 * back.  Packets collect in the socket's batch and go out when it fills or
 * the queue empties.  When the socket is full we stop and wait for POLLOUT.
 *
 * Re-entrancy: app callbacks may call anything, including
 * irohds_net_endpoint_free; entry points count themselves (busy) and the
 * free happens when the outermost one returns.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"
#include "util/util.h"

#define RX_BATCHES_PER_WAKEUP 8   /* then let the rest of the loop run */
#define RESETS_PER_SECOND 100     /* stateless resets + version negotiations */
#define LOOPBACK_PAYLOAD 65000 /* lo's MTU is 65536: fewer, larger packets */
#define QUIC_LONG_HEADER_BIT 0x80 /* first byte: Header Form (RFC 9000 17.2) */

uint64_t net_now(void)
{
    return uv_hrtime();
}

/* ------------------------------------------------------------- config */

void irohds_net_config_defaults(irohds_net_config *c)
{
    if (!c->idle_timeout_ms)
        c->idle_timeout_ms = 30000;
    if (!c->handshake_timeout_ms)
        c->handshake_timeout_ms = 10000;
    if (!c->initial_rtt_us)
        c->initial_rtt_us = 10000;
    if (!c->stream_window)
        c->stream_window = 16u << 20;
    if (!c->conn_window)
        c->conn_window = 32u << 20;
    if (!c->stream_send_cap)
        c->stream_send_cap = 8u << 20;
    if (!c->conn_send_cap)
        c->conn_send_cap = 32u << 20;
    if (!c->max_streams_bidi)
        c->max_streams_bidi = 128;
    if (!c->max_streams_uni)
        c->max_streams_uni = 128;
    if (!c->max_conns)
        c->max_conns = 4096;
    if (!c->cc)
        c->cc = IROHDS_NET_CC_BBR; /* measured: see docs/transport.md */
}

/* ------------------------------------------------------------ addresses */

int irohds_net_parse_addr(const char *s, struct sockaddr_storage *out)
{
    char host[INET6_ADDRSTRLEN + 2];
    const char *port;
    memset(out, 0, sizeof *out);
    if (!s)
        return -EINVAL;
    if (s[0] == '[') {
        const char *end = strchr(s, ']');
        if (!end || end[1] != ':' || (size_t)(end - s - 1) >= sizeof host)
            return -EINVAL;
        memcpy(host, s + 1, (size_t)(end - s - 1));
        host[end - s - 1] = '\0';
        port = end + 2;
    } else {
        const char *colon = strrchr(s, ':');
        if (!colon || (size_t)(colon - s) >= sizeof host)
            return -EINVAL;
        memcpy(host, s, (size_t)(colon - s));
        host[colon - s] = '\0';
        port = colon + 1;
    }
    char *endp;
    unsigned long p = strtoul(port, &endp, 10);
    if (*port == '\0' || *endp != '\0' || p > 65535)
        return -EINVAL;
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (s[0] != '[' && inet_pton(AF_INET, host, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)p);
        return 0;
    }
    if (s[0] == '[' && inet_pton(AF_INET6, host, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)p);
        return 0;
    }
    return -EINVAL;
}

void irohds_net_addr_str(const struct sockaddr *sa, char *buf, size_t len)
{
    char host[INET6_ADDRSTRLEN];
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)sa;
        inet_ntop(AF_INET, &v4->sin_addr, host, sizeof host);
        snprintf(buf, len, "%s:%u", host, ntohs(v4->sin_port));
    } else if (sa->sa_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)sa;
        inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof host);
        snprintf(buf, len, "[%s]:%u", host, ntohs(v6->sin6_port));
    } else {
        snprintf(buf, len, "?");
    }
}

static socklen_t addr_len(const struct sockaddr *a)
{
    return a->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
}

void net_addr_unmap(const struct sockaddr *addr, struct sockaddr_storage *out)
{
    memset(out, 0, sizeof *out);
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
    if (addr->sa_family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&v6->sin6_addr)) {
        struct sockaddr_in *v4 = (struct sockaddr_in *)out;
        v4->sin_family = AF_INET;
        v4->sin_port = v6->sin6_port;
        memcpy(&v4->sin_addr, &v6->sin6_addr.s6_addr[12], 4);
        return;
    }
    memcpy(out, addr, addr_len(addr));
}

/* addr as our socket needs it: IPv4 peers IPv4-mapped on a dual-stack socket. */
static int socket_form(const irohds_net_endpoint *ep, const struct sockaddr *addr,
                       struct sockaddr_storage *out, socklen_t *len)
{
    net_addr_unmap(addr, out);
    if (out->ss_family == AF_INET && ep->udp.family == AF_INET6) {
        struct sockaddr_in v4;
        memcpy(&v4, out, sizeof v4);
        struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
        memset(out, 0, sizeof *out);
        v6->sin6_family = AF_INET6;
        v6->sin6_port = v4.sin_port;
        v6->sin6_addr.s6_addr[10] = v6->sin6_addr.s6_addr[11] = 0xff;
        memcpy(&v6->sin6_addr.s6_addr[12], &v4.sin_addr, 4);
    } else if (out->ss_family != ep->udp.family) {
        return -EAFNOSUPPORT;
    }
    *len = addr_len((const struct sockaddr *)out);
    return 0;
}

static bool is_loopback(const struct sockaddr *addr)
{
    struct sockaddr_storage a;
    net_addr_unmap(addr, &a);
    if (a.ss_family == AF_INET)
        return (ntohl(((struct sockaddr_in *)&a)->sin_addr.s_addr) >> 24) == 127;
    return a.ss_family == AF_INET6 && IN6_IS_ADDR_LOOPBACK(&((struct sockaddr_in6 *)&a)->sin6_addr);
}

size_t net_ep_payload_size(const irohds_net_endpoint *ep, const struct sockaddr *addr)
{
    if (ep->cfg.max_udp_payload)
        return ep->cfg.max_udp_payload;
    return is_loopback(addr) ? LOOPBACK_PAYLOAD : NGTCP2_MAX_PMTUD_UDP_PAYLOAD_SIZE;
}

void net_ep_path(irohds_net_endpoint *ep, ngtcp2_path *path, const struct sockaddr *remote,
                 socklen_t remote_len)
{
    path->local.addr = (struct sockaddr *)&ep->local;
    path->local.addrlen = ep->local_len;
    path->remote.addr = (struct sockaddr *)remote;
    path->remote.addrlen = remote_len;
    path->user_data = NULL;
}

/* ------------------------------------------------------------ RTT memory */

static bool same_addr(const struct sockaddr *a, const struct sockaddr_storage *b)
{
    struct sockaddr_storage ua;
    net_addr_unmap(a, &ua);
    return ua.ss_family == b->ss_family &&
           memcmp(&ua, b, addr_len((const struct sockaddr *)b)) == 0;
}

uint64_t net_ep_remembered_rtt(irohds_net_endpoint *ep, const struct sockaddr *addr)
{
    for (size_t i = 0; i < NET_RTT_SLOTS; i++) {
        if (ep->rtt[i].rtt && same_addr(addr, &ep->rtt[i].addr)) {
            ep->rtt[i].used = uv_now(ep->loop);
            return ep->rtt[i].rtt;
        }
    }
    return 0;
}

void net_ep_remember_rtt(irohds_net_endpoint *ep, const struct sockaddr *addr, uint64_t rtt)
{
    net_rtt_slot *victim = &ep->rtt[0];
    for (size_t i = 0; i < NET_RTT_SLOTS; i++) {
        net_rtt_slot *s = &ep->rtt[i];
        if (s->rtt && same_addr(addr, &s->addr)) {
            victim = s;
            break;
        }
        if (s->used < victim->used)
            victim = s;
    }
    net_addr_unmap(addr, &victim->addr);
    victim->rtt = rtt;
    victim->used = uv_now(ep->loop);
}

/* ------------------------------------------------------------ scheduling */

void net_ep_schedule(irohds_net_endpoint *ep, irohds_net_conn *c)
{
    if (c->queued || !net_conn_live(c))
        return;
    c->queued = true;
    c->qnext = NULL;
    if (ep->qtail)
        ep->qtail->qnext = c;
    else
        ep->qhead = c;
    ep->qtail = c;
}

static irohds_net_conn *queue_pop(irohds_net_endpoint *ep)
{
    irohds_net_conn *c = ep->qhead;
    ep->qhead = c->qnext;
    if (!ep->qhead)
        ep->qtail = NULL;
    c->queued = false;
    c->qnext = NULL;
    return c;
}

void net_ep_unlink(irohds_net_endpoint *ep, irohds_net_conn *c)
{
    if (c->queued) {
        irohds_net_conn **p = &ep->qhead, *prev = NULL;
        while (*p != c) {
            prev = *p;
            p = &(*p)->qnext;
        }
        *p = c->qnext;
        if (ep->qtail == c)
            ep->qtail = prev;
        c->queued = false;
    }
    if (c->prev)
        c->prev->next = c->next;
    else
        ep->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
}

static void on_poll(uv_poll_t *h, int status, int events);

static void wait_writable(irohds_net_endpoint *ep, bool on)
{
    ep->tx_blocked = on;
    uv_poll_start(&ep->poll, on ? UV_READABLE | UV_WRITABLE : UV_READABLE, on_poll);
}

void net_ep_run(irohds_net_endpoint *ep)
{
    while (ep->qhead && !ep->tx_blocked) {
        irohds_net_conn *c = queue_pop(ep);
        net_conn_service(c);
        int r = net_conn_write(c, net_now());
        if (r != 0)
            net_ep_schedule(ep, c);
        if (r == -EAGAIN)
            wait_writable(ep, true);
    }
    if (!ep->tx_blocked && net_udp_tx_flush(&ep->udp) == -EAGAIN)
        wait_writable(ep, true);
}

/* ------------------------------------------------------------ the socket */

static bool reset_budget(irohds_net_endpoint *ep)
{
    uint64_t now = uv_now(ep->loop);
    if (now - ep->reset_window >= 1000) {
        ep->reset_window = now;
        ep->resets_in_window = 0;
    }
    return ep->resets_in_window++ < RESETS_PER_SECOND;
}

static void send_version_negotiation(irohds_net_endpoint *ep, const ngtcp2_version_cid *vc,
                                     size_t len, const struct sockaddr *to, socklen_t tolen)
{
    /* Only for datagrams the size of an Initial: smaller ones could make
     * us an amplifier. */
    if (len < NGTCP2_MAX_UDP_PAYLOAD_SIZE || !reset_budget(ep))
        return;
    uint8_t buf[256];
    uint32_t v1 = NGTCP2_PROTO_VER_V1;
    uint8_t r;
    randombytes_buf(&r, 1);
    ngtcp2_ssize n = ngtcp2_pkt_write_version_negotiation(buf, sizeof buf, r, vc->scid,
                                                          vc->scidlen, vc->dcid, vc->dcidlen,
                                                          &v1, 1);
    if (n > 0) {
        net_udp_send_one(&ep->udp, buf, (size_t)n, to, tolen);
        ep->vn_sent++;
    }
}

static void send_stateless_reset(irohds_net_endpoint *ep, const ngtcp2_version_cid *vc,
                                 size_t len, const struct sockaddr *to, socklen_t tolen)
{
    /* Smaller than the packet that provoked it (two endpoints cannot loop)
     * and no shorter than 1 + 5 random + 16 token bytes. */
    if (len < 1 + NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN + 1 ||
        !reset_budget(ep))
        return;
    size_t size = len - 1 < 64 ? len - 1 : 64;
    if (vc->dcidlen > NGTCP2_MAX_CIDLEN) /* a short header's is ours, NET_SCID_LEN */
        return;
    ngtcp2_cid cid;
    ngtcp2_cid_init(&cid, vc->dcid, vc->dcidlen);
    uint8_t token[NGTCP2_STATELESS_RESET_TOKENLEN], rnd[64], buf[64];
    if (ngtcp2_crypto_generate_stateless_reset_token(token, ep->reset_secret,
                                                     sizeof ep->reset_secret, &cid) != 0)
        return;
    size_t randlen = size - 1 - NGTCP2_STATELESS_RESET_TOKENLEN;
    randombytes_buf(rnd, randlen);
    ngtcp2_ssize n = ngtcp2_pkt_write_stateless_reset(buf, size, token, rnd, randlen);
    if (n > 0) {
        net_udp_send_one(&ep->udp, buf, (size_t)n, to, tolen);
        ep->resets_sent++;
    }
}

static void accept_initial(irohds_net_endpoint *ep, const uint8_t *data, size_t len,
                           const struct sockaddr *from, socklen_t fromlen, uint64_t now)
{
    ngtcp2_pkt_hd hd;
    irohds_net_conn *c;
    if (ep->n_alpns == 0 || ep->nconns >= ep->cfg.max_conns || ep->freeing ||
        ngtcp2_accept(&hd, data, len) != 0 ||
        net_conn_new_server(ep, &hd, from, fromlen, &c) != 0) {
        ep->rx_dropped++;
        return;
    }
    net_conn_read(c, data, len, from, fromlen, now);
}

static void on_datagram(void *ctx, const uint8_t *data, size_t len, const struct sockaddr *from,
                        socklen_t fromlen)
{
    irohds_net_endpoint *ep = ctx;
    ngtcp2_version_cid vc;
    int r = ngtcp2_pkt_decode_version_cid(&vc, data, len, NET_SCID_LEN);
    if (r == NGTCP2_ERR_VERSION_NEGOTIATION) {
        send_version_negotiation(ep, &vc, len, from, fromlen);
        ep->rx_dropped++;
        return;
    }
    if (r != 0) {
        ep->rx_dropped++;
        return;
    }
    irohds_net_conn *c = net_cidmap_get(&ep->cids, vc.dcid, vc.dcidlen);
    if (c) {
        net_conn_read(c, data, len, from, fromlen, ep->rx_now);
    } else if (vc.version) {
        accept_initial(ep, data, len, from, fromlen, ep->rx_now);
    } else if (data[0] & QUIC_LONG_HEADER_BIT) {
        /* Version 0 in a long header: a Version Negotiation packet for no
         * connection of ours.  Dropped unanswered: RFC 9000 6.1 forbids a
         * VN for a VN, and a stateless reset answers short headers only.
         * (Its ids are unchecked, up to 255 bytes: taken for a short
         * header, one such datagram reached ngtcp2_cid_init's assertion.) */
        ep->rx_dropped++;
    } else if (len >= NGTCP2_MIN_STATELESS_RESET_RANDLEN + NGTCP2_STATELESS_RESET_TOKENLEN + 1 &&
               (c = net_cidmap_get(&ep->tokens, data + len - NGTCP2_STATELESS_RESET_TOKENLEN,
                                   NGTCP2_STATELESS_RESET_TOKENLEN)) != NULL) {
        net_conn_stateless_reset(c);
    } else {
        ep->rx_dropped++;
        send_stateless_reset(ep, &vc, len, from, fromlen);
    }
}

void net_ep_feed(irohds_net_endpoint *ep, const uint8_t *data, size_t len,
                 const struct sockaddr *from, socklen_t fromlen)
{
    if (len == 0)
        return; /* as net_udp_recv: ngtcp2 asserts a datagram has a byte */
    net_ep_enter(ep);
    ep->rx_now = net_now();
    on_datagram(ep, data, len, from, fromlen);
    net_ep_leave(ep);
}

static void readable(irohds_net_endpoint *ep)
{
    for (int i = 0; i < RX_BATCHES_PER_WAKEUP && !ep->free_requested; i++) {
        ep->rx_now = net_now(); /* one timestamp per batch */
        int n = net_udp_recv(&ep->udp, on_datagram, ep);
        if (n <= 0)
            break;
        net_ep_run(ep);
    }
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    irohds_net_endpoint *ep = h->data;
    net_ep_enter(ep);
    if (status == 0 && (events & UV_WRITABLE) && net_udp_tx_flush(&ep->udp) == 0)
        wait_writable(ep, false);
    if (status < 0 || (events & UV_READABLE))
        readable(ep);
    net_ep_leave(ep);
}

static void on_prepare(uv_prepare_t *h)
{
    irohds_net_endpoint *ep = h->data;
    net_ep_enter(ep);
    net_ep_leave(ep);
}

/* ------------------------------------------------------------- lifetime */

static void free_now(irohds_net_endpoint *ep);

void net_ep_enter(irohds_net_endpoint *ep)
{
    ep->busy++;
}

void net_ep_leave(irohds_net_endpoint *ep)
{
    if (ep->busy == 1 && !ep->freeing)
        net_ep_run(ep);
    if (--ep->busy == 0 && ep->free_requested && !ep->freeing)
        free_now(ep);
}

void net_ep_handle_closed(irohds_net_endpoint *ep)
{
    if (--ep->handles_open == 0 && ep->freeing)
        free(ep);
}

static void on_handle_closed(uv_handle_t *h)
{
    net_ep_handle_closed(h->data);
}

static int copy_alpns(irohds_net_endpoint *ep, const irohds_net_config *cfg)
{
    if (cfg->n_alpns > IROHDS_NET_MAX_ALPNS)
        return -EINVAL;
    for (size_t i = 0; i < cfg->n_alpns; i++) {
        size_t len = cfg->alpns[i] ? strlen(cfg->alpns[i]) : 0;
        if (len == 0 || len > IROHDS_NET_ALPN_MAX)
            return -EINVAL;
        ep->alpns[i].data = (unsigned char *)strdup(cfg->alpns[i]);
        if (!ep->alpns[i].data)
            return -ENOMEM;
        ep->alpns[i].size = (unsigned)len;
        ep->n_alpns = i + 1;
    }
    return 0;
}

/* The node key: the pair must be consistent, the stateless reset secret
 * comes from it. */
static int load_key(irohds_net_endpoint *ep, const uint8_t *sk)
{
    uint8_t pk[crypto_sign_PUBLICKEYBYTES], sk2[crypto_sign_SECRETKEYBYTES];
    crypto_sign_seed_keypair(pk, sk2, sk);
    sodium_memzero(sk2, sizeof sk2);
    if (memcmp(pk, sk + 32, sizeof pk) != 0)
        return -EINVAL;
    memcpy(ep->id, pk, sizeof pk);
    static const char label[] = "irohds-net stateless reset v1";
    crypto_generichash(ep->reset_secret, sizeof ep->reset_secret, (const uint8_t *)label,
                       sizeof label - 1, sk, 32);
    return net_tls_init(&ep->tls, sk);
}

static int open_socket(irohds_net_endpoint *ep)
{
    struct sockaddr_storage addr;
    const char *listen = ep->cfg.listen ? ep->cfg.listen : "[::]:0";
    int r = irohds_net_parse_addr(listen, &addr);
    if (r < 0)
        return r;
    r = net_udp_open(&ep->udp, (struct sockaddr *)&addr, ep->cfg.flags);
    if (r == -EAFNOSUPPORT && !ep->cfg.listen) {
        irohds_net_parse_addr("0.0.0.0:0", &addr);
        r = net_udp_open(&ep->udp, (struct sockaddr *)&addr, ep->cfg.flags);
    }
    if (r < 0)
        return r;
    ep->local_len = sizeof ep->local;
    if (getsockname(ep->udp.fd, (struct sockaddr *)&ep->local, &ep->local_len) != 0)
        return -errno;
    return 0;
}

static int start_handles(irohds_net_endpoint *ep)
{
    int r = uv_poll_init(ep->loop, &ep->poll, ep->udp.fd);
    if (r < 0)
        return r;
    ep->poll.data = ep;
    ep->handles_open++;
    uv_prepare_init(ep->loop, &ep->prepare);
    ep->prepare.data = ep;
    ep->handles_open++;
    uv_prepare_start(&ep->prepare, on_prepare);
    uv_unref((uv_handle_t *)&ep->prepare);
    return uv_poll_start(&ep->poll, UV_READABLE, on_poll);
}

int irohds_net_endpoint_init(uv_loop_t *loop, const irohds_net_config *cfg,
                             irohds_net_endpoint **out)
{
    if (!loop || !cfg || !cfg->secret_key || !cfg->cb || !cfg->cb->closed ||
        (cfg->n_alpns && !cfg->alpns))
        return -EINVAL;
    if (sodium_init() < 0)
        return -EIO;
    irohds_net_endpoint *ep = calloc(1, sizeof *ep);
    if (!ep)
        return -ENOMEM;
    ep->loop = loop;
    ep->udp.fd = -1;
    ep->cfg = *cfg;
    irohds_net_config_defaults(&ep->cfg);
    ep->cb = *cfg->cb;
    ep->cfg.cb = &ep->cb;
    int r = copy_alpns(ep, cfg);
    ep->cfg.alpns = NULL;
    ep->cfg.n_alpns = ep->n_alpns;
    ep->cfg.secret_key = NULL;
    if (r == 0)
        r = load_key(ep, cfg->secret_key);
    if (r == 0)
        r = net_cidmap_init(&ep->cids);
    if (r == 0)
        r = net_cidmap_init(&ep->tokens);
    if (r == 0)
        r = open_socket(ep);
    ep->cfg.listen = NULL;
    if (r == 0)
        r = start_handles(ep);
    if (r < 0) {
        free_now(ep);
        return r;
    }
    *out = ep;
    return 0;
}

static void free_now(irohds_net_endpoint *ep)
{
    ep->freeing = true;
    while (ep->conns)
        net_conn_cancel(ep->conns);
    if (ep->handles_open) {
        uv_close((uv_handle_t *)&ep->poll, on_handle_closed);
        uv_close((uv_handle_t *)&ep->prepare, on_handle_closed);
    }
    net_udp_close(&ep->udp); /* safe right after uv_close of the poll handle */
    net_tls_free(&ep->tls);
    if (ep->cids.buckets)
        net_cidmap_free(&ep->cids);
    if (ep->tokens.buckets)
        net_cidmap_free(&ep->tokens);
    net_pool_free(&ep->pool);
    for (size_t i = 0; i < ep->n_alpns; i++)
        free(ep->alpns[i].data);
    ep->n_alpns = 0;
    sodium_memzero(ep->reset_secret, sizeof ep->reset_secret);
    if (ep->handles_open == 0)
        free(ep);
}

void irohds_net_endpoint_free(irohds_net_endpoint *ep)
{
    if (!ep || ep->freeing)
        return;
    if (ep->busy) {
        ep->free_requested = true;
        return;
    }
    free_now(ep);
}

/* ------------------------------------------------------------ accessors */

const uint8_t *irohds_net_endpoint_id(const irohds_net_endpoint *ep)
{
    return ep->id;
}

void *irohds_net_endpoint_user_ptr(const irohds_net_endpoint *ep)
{
    return ep->cfg.user_ptr;
}

int irohds_net_endpoint_local_addr(const irohds_net_endpoint *ep, struct sockaddr_storage *out)
{
    net_addr_unmap((const struct sockaddr *)&ep->local, out);
    return 0;
}

static bool is_wildcard(const struct sockaddr_storage *a)
{
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr == htonl(INADDR_ANY);
    return IN6_IS_ADDR_UNSPECIFIED(&((const struct sockaddr_in6 *)a)->sin6_addr);
}

int irohds_net_endpoint_addrs(const irohds_net_endpoint *ep, struct sockaddr_storage *out,
                              size_t max)
{
    if (!is_wildcard(&ep->local)) {
        if (max == 0)
            return 0;
        net_addr_unmap((const struct sockaddr *)&ep->local, out);
        return 1;
    }
    uv_interface_address_t *ifs;
    int n;
    int r = uv_interface_addresses(&ifs, &n);
    if (r < 0)
        return r;
    uint16_t port = ((const struct sockaddr_in *)&ep->local)->sin_port; /* same offset in v6 */
    bool dual = ep->udp.family == AF_INET6;
    size_t k = 0;
    for (int i = 0; i < n && k < max; i++) {
        int fam = ifs[i].address.address4.sin_family;
        if (fam != AF_INET && !(fam == AF_INET6 && dual))
            continue;
        memset(&out[k], 0, sizeof out[k]);
        if (fam == AF_INET) {
            memcpy(&out[k], &ifs[i].address.address4, sizeof(struct sockaddr_in));
            ((struct sockaddr_in *)&out[k])->sin_port = port;
        } else {
            memcpy(&out[k], &ifs[i].address.address6, sizeof(struct sockaddr_in6));
            ((struct sockaddr_in6 *)&out[k])->sin6_port = port;
        }
        k++;
    }
    uv_free_interface_addresses(ifs, n);
    return (int)k;
}

void irohds_net_endpoint_stats_get(const irohds_net_endpoint *ep, irohds_net_endpoint_stats *o)
{
    memset(o, 0, sizeof *o);
    o->rx_datagrams = ep->udp.rx_datagrams;
    o->rx_bytes = ep->udp.rx_bytes;
    o->rx_syscalls = ep->udp.rx_syscalls;
    o->tx_datagrams = ep->udp.tx_datagrams;
    o->tx_bytes = ep->udp.tx_bytes;
    o->tx_syscalls = ep->udp.tx_syscalls;
    o->rx_dropped = ep->rx_dropped;
    o->handshakes_failed = ep->handshakes_failed;
    o->stateless_resets_sent = ep->resets_sent;
    o->version_negotiations_sent = ep->vn_sent;
    o->conns = ep->nconns;
    o->cids_mapped = ep->cids.count;
    o->gso = ep->udp.gso;
    o->gro = ep->udp.gro;
}

/* ---------------------------------------------------------- connections */

int irohds_net_connect(irohds_net_endpoint *ep, const uint8_t node_id[IROHDS_NET_ID_LEN],
                       const struct sockaddr *addr, const char *alpn, uint64_t initial_rtt_us,
                       void *user_ptr, irohds_net_conn **out)
{
    if (ep->freeing || ep->free_requested)
        return -ECANCELED;
    if (!alpn || strlen(alpn) == 0 || strlen(alpn) > IROHDS_NET_ALPN_MAX || !addr)
        return -EINVAL;
    if (ep->nconns >= ep->cfg.max_conns)
        return -EMFILE;
    struct sockaddr_storage to;
    socklen_t tolen;
    int r = socket_form(ep, addr, &to, &tolen);
    if (r < 0)
        return r;
    uint64_t rtt = initial_rtt_us * NGTCP2_MICROSECONDS;
    if (!rtt)
        rtt = net_ep_remembered_rtt(ep, addr);
    if (!rtt)
        rtt = ep->cfg.initial_rtt_us * NGTCP2_MICROSECONDS;
    return net_conn_new_client(ep, node_id, (struct sockaddr *)&to, tolen, alpn, rtt, user_ptr,
                               out);
}

irohds_net_conn *irohds_net_find(irohds_net_endpoint *ep, const uint8_t node_id[IROHDS_NET_ID_LEN],
                                 const char *alpn)
{
    irohds_net_conn *handshaking = NULL;
    for (irohds_net_conn *c = ep->conns; c; c = c->next) {
        if (!net_conn_live(c) || !c->visible || c->close_requested || !c->remote_id_known ||
            memcmp(c->remote_id, node_id, IROHDS_NET_ID_LEN) != 0 ||
            (alpn && strcmp(c->alpn, alpn) != 0))
            continue;
        if (c->state == NET_CONN_OPEN)
            return c;
        handshaking = c;
    }
    return handshaking;
}
