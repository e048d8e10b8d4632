/*
 * udp.c: the endpoint's one UDP socket, with batched I/O.
 *
 * Per-datagram system calls cap QUIC at a few hundred MB/s here (DESIGN.md:
 * sendmmsg ~240 MB/s, GSO ~400, GSO+GRO ~800), so both directions batch:
 *
 *   in:  recvmmsg of up to NET_RX_BATCH datagrams, each buffer big enough
 *        for a UDP_GRO batch (the kernel glues consecutive same-size
 *        datagrams of one flow together and says the segment size in a
 *        cmsg); we split them again before handing them up.
 *   out: packets are appended to one buffer; consecutive packets of the same
 *        size to the same address become one message sent with UDP_SEGMENT
 *        (GSO: the kernel cuts it up), up to 64 segments or ~64 KiB; a short
 *        packet may end a message.  Messages go out with sendmmsg.
 *
 * If the kernel refuses GSO on send (EIO: no checksum offload on the
 * device, EINVAL), GSO is switched off for good and that message goes out
 * one datagram at a time.  A datagram the kernel will not take (EMSGSIZE
 * for a path MTU probe, an unreachable network) is dropped: to QUIC it is a
 * lost packet.  DF is set (IP_PMTUDISC_PROBE) so MTU probes are honest.
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/udp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "net/net_int.h"
#include "util/util.h"

#define SOCK_BUF (4 << 20) /* capped by net.core.[rw]mem_max */

static bool is_wildcard6(const struct sockaddr *a)
{
    const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)a;
    return a->sa_family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&s->sin6_addr);
}

static void set_int(int fd, int level, int name, int v)
{
    (void)setsockopt(fd, level, name, &v, sizeof v); /* best effort */
}

static void set_options(net_udp *u, const struct sockaddr *addr, unsigned flags)
{
    set_int(u->fd, SOL_SOCKET, SO_RCVBUF, SOCK_BUF);
    set_int(u->fd, SOL_SOCKET, SO_SNDBUF, SOCK_BUF);
    if (u->family == AF_INET6) {
        set_int(u->fd, IPPROTO_IPV6, IPV6_MTU_DISCOVER, IPV6_PMTUDISC_PROBE);
        if (is_wildcard6(addr))
            set_int(u->fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
    } else {
        set_int(u->fd, IPPROTO_IP, IP_MTU_DISCOVER, IP_PMTUDISC_PROBE);
    }
    int one = 1;
    if (!(flags & IROHDS_NET_NO_GRO))
        u->gro = setsockopt(u->fd, SOL_UDP, UDP_GRO, &one, sizeof one) == 0;
    int seg = 0;
    socklen_t sl = sizeof seg;
    if (!(flags & IROHDS_NET_NO_GSO))
        u->gso = getsockopt(u->fd, SOL_UDP, UDP_SEGMENT, &seg, &sl) == 0;
}

static void setup_rx(net_udp *u)
{
    for (size_t i = 0; i < NET_RX_BATCH; i++) {
        u->rxiov[i].iov_base = u->rxbuf + i * NET_RX_BUF;
        u->rxiov[i].iov_len = NET_RX_BUF;
        struct msghdr *h = &u->rxmsg[i].msg_hdr;
        memset(h, 0, sizeof *h);
        h->msg_iov = &u->rxiov[i];
        h->msg_iovlen = 1;
        h->msg_name = &u->rxaddr[i];
    }
}

int net_udp_open(net_udp *u, const struct sockaddr *addr, unsigned flags)
{
    memset(u, 0, sizeof *u);
    u->family = addr->sa_family;
    u->fd = socket(u->family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, IPPROTO_UDP);
    if (u->fd < 0)
        return -errno;
    if (u->family == AF_INET6)
        set_int(u->fd, IPPROTO_IPV6, IPV6_V6ONLY, is_wildcard6(addr) ? 0 : 1);
    socklen_t len = u->family == AF_INET6 ? sizeof(struct sockaddr_in6)
                                          : sizeof(struct sockaddr_in);
    if (bind(u->fd, addr, len) != 0) {
        int e = -errno;
        close(u->fd);
        u->fd = -1;
        return e;
    }
    set_options(u, addr, flags);
    u->rxbuf = malloc((size_t)NET_RX_BATCH * NET_RX_BUF);
    u->txbuf = malloc(NET_TX_BUF);
    if (!u->rxbuf || !u->txbuf) {
        net_udp_close(u);
        return -ENOMEM;
    }
    setup_rx(u);
    return 0;
}

void net_udp_close(net_udp *u)
{
    if (u->fd >= 0)
        close(u->fd);
    u->fd = -1;
    free(u->rxbuf);
    free(u->txbuf);
    u->rxbuf = u->txbuf = NULL;
}

static size_t gro_segment(struct msghdr *h, size_t len)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(h); c; c = CMSG_NXTHDR(h, c)) {
        if (c->cmsg_level == SOL_UDP && c->cmsg_type == UDP_GRO) {
            int seg;
            memcpy(&seg, CMSG_DATA(c), sizeof seg);
            if (seg > 0 && (size_t)seg < len)
                return (size_t)seg;
        }
    }
    return len;
}

int net_udp_recv(net_udp *u, net_udp_recv_fn fn, void *ctx)
{
    for (size_t i = 0; i < NET_RX_BATCH; i++) {
        struct msghdr *h = &u->rxmsg[i].msg_hdr;
        h->msg_namelen = sizeof u->rxaddr[i];
        h->msg_control = u->gro ? u->rxctl[i].buf : NULL;
        h->msg_controllen = u->gro ? sizeof u->rxctl[i].buf : 0;
        h->msg_flags = 0;
    }
    int n = recvmmsg(u->fd, u->rxmsg, NET_RX_BATCH, 0, NULL);
    u->rx_syscalls++;
    if (n < 0)
        return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR ? 0 : -errno;
    for (int i = 0; i < n; i++) {
        struct msghdr *h = &u->rxmsg[i].msg_hdr;
        size_t len = u->rxmsg[i].msg_len;
        if (h->msg_flags & MSG_TRUNC)
            continue;
        const uint8_t *buf = u->rxiov[i].iov_base;
        size_t seg = gro_segment(h, len);
        for (size_t off = 0; off < len; off += seg) {
            size_t l = len - off < seg ? len - off : seg;
            u->rx_datagrams++;
            u->rx_bytes += l;
            fn(ctx, buf + off, l, h->msg_name, h->msg_namelen);
        }
    }
    return n;
}

uint8_t *net_udp_tx_space(net_udp *u, size_t need)
{
    if (u->ntx == NET_TX_MSGS || NET_TX_BUF - u->txlen < need)
        return NULL;
    return u->txbuf + u->txlen;
}

static bool joins(const net_udp *u, const net_txmsg *m, size_t len, const struct sockaddr *to,
                  socklen_t tolen)
{
    return u->gso && !m->sealed && len <= m->seg && m->nseg < NET_GSO_MAX_SEGS &&
           m->len + len <= NET_GSO_MAX_BYTES && m->tolen == tolen && memcmp(&m->to, to, tolen) == 0;
}

void net_udp_tx_push(net_udp *u, size_t len, const struct sockaddr *to, socklen_t tolen)
{
    net_txmsg *m = u->ntx > u->txdone ? &u->txmsg[u->ntx - 1] : NULL;
    if (m && joins(u, m, len, to, tolen)) {
        m->len += len;
        m->nseg++;
        m->sealed = len < m->seg;
    } else {
        m = &u->txmsg[u->ntx++];
        memcpy(&m->to, to, tolen);
        m->tolen = tolen;
        m->off = u->txlen;
        m->len = m->seg = len;
        m->nseg = 1;
        m->sealed = false;
    }
    u->txlen += len;
}

void net_udp_send_one(net_udp *u, const uint8_t *data, size_t len, const struct sockaddr *to,
                      socklen_t tolen)
{
    u->tx_syscalls++;
    if (sendto(u->fd, data, len, 0, to, tolen) == (ssize_t)len) {
        u->tx_datagrams++;
        u->tx_bytes += len;
    }
}

typedef union {
    char buf[CMSG_SPACE(sizeof(uint16_t))];
    struct cmsghdr align;
} segctl;

static void build_msg(net_udp *u, net_txmsg *m, struct mmsghdr *mm, struct iovec *iov,
                      segctl *ctl)
{
    iov->iov_base = u->txbuf + m->off;
    iov->iov_len = m->len;
    struct msghdr *h = &mm->msg_hdr;
    memset(h, 0, sizeof *h);
    h->msg_name = &m->to;
    h->msg_namelen = m->tolen;
    h->msg_iov = iov;
    h->msg_iovlen = 1;
    if (m->nseg > 1) {
        h->msg_control = ctl->buf;
        h->msg_controllen = sizeof ctl->buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(h);
        c->cmsg_level = SOL_UDP;
        c->cmsg_type = UDP_SEGMENT;
        c->cmsg_len = CMSG_LEN(sizeof(uint16_t));
        uint16_t seg = (uint16_t)m->seg;
        memcpy(CMSG_DATA(c), &seg, sizeof seg);
    }
}

/* The kernel refused GSO: never again, and send this message piece by piece. */
static void send_unsegmented(net_udp *u, const net_txmsg *m)
{
    if (u->gso)
        IROHDS_WARN("net: the kernel refused UDP GSO (%s); sending datagram by datagram",
                    strerror(errno));
    u->gso = false;
    for (size_t off = 0; off < m->len; off += m->seg) {
        size_t l = m->len - off < m->seg ? m->len - off : m->seg;
        net_udp_send_one(u, u->txbuf + m->off + off, l, (const struct sockaddr *)&m->to,
                         m->tolen);
    }
}

int net_udp_tx_flush(net_udp *u)
{
    struct mmsghdr mm[NET_TX_MSGS];
    struct iovec iov[NET_TX_MSGS];
    segctl ctl[NET_TX_MSGS];
    while (u->txdone < u->ntx) {
        size_t k = u->ntx - u->txdone;
        for (size_t i = 0; i < k; i++)
            build_msg(u, &u->txmsg[u->txdone + i], &mm[i], &iov[i], &ctl[i]);
        int r = sendmmsg(u->fd, mm, (unsigned)k, 0);
        u->tx_syscalls++;
        if (r > 0) {
            for (int i = 0; i < r; i++) {
                u->tx_datagrams += u->txmsg[u->txdone + (size_t)i].nseg;
                u->tx_bytes += u->txmsg[u->txdone + (size_t)i].len;
            }
            u->txdone += (size_t)r;
            continue;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)
            return -EAGAIN;
        const net_txmsg *m = &u->txmsg[u->txdone++];
        if ((errno == EIO || errno == EINVAL) && m->nseg > 1)
            send_unsegmented(u, m);
        /* else: dropped; QUIC sees a lost packet */
    }
    u->ntx = u->txdone = u->txlen = 0;
    return 0;
}
