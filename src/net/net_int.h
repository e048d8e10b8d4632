/*
 * net_int.h: what the files of src/net share.  Not an API: net.h is.
 *
 *   udp.c      the socket: options, recvmmsg + GRO in, GSO + sendmmsg out
 *   tls.c      GnuTLS with raw Ed25519 keys; the peer key check
 *   cidmap.c   connection id -> connection, for routing datagrams
 *   stream.c   streams: send buffers kept until acknowledged, held reads
 *   conn.c     one QUIC connection: ngtcp2 callbacks, read, write, timer
 *   endpoint.c the endpoint: routing, accept, the write scheduler, libuv glue
 */
#ifndef IROHDS_NET_INT_H
#define IROHDS_NET_INT_H

#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2.h>
#include <ngtcp2/ngtcp2_crypto.h>

#include "net/net.h"

#define NET_SCID_LEN 16             /* length of every connection id we issue */
#define NET_MAX_CIDS 16             /* ids of ours a connection has at once */
#define NET_MAX_TOKENS 8            /* the peer's reset tokens we watch for */
#define NET_CHUNK_SIZE (64 * 1024)  /* send buffers and held reads */
#define NET_UNSENT_MAX (1u << 20)   /* bytes written but not yet packetized, per stream */
#define NET_POOL_MAX 128            /* spare chunks kept: a stream's default cap (8 MiB) */

/* ------------------------------------------------------------------ udp */

#define NET_RX_BATCH 16          /* datagrams per recvmmsg */
#define NET_RX_BUF 65536         /* per datagram: a GRO batch is at most 64 KiB */
#define NET_TX_MSGS 64           /* messages per sendmmsg */
#define NET_TX_BUF (1 << 20)     /* bytes of packets queued before a send */
#define NET_GSO_MAX_SEGS 64      /* UDP_MAX_SEGMENTS on older kernels */
#define NET_GSO_MAX_BYTES 65000  /* below 64 KiB minus IPv6 + UDP headers */

typedef struct net_txmsg {
    struct sockaddr_storage to;
    socklen_t tolen;
    size_t off, len;  /* in txbuf */
    size_t seg;       /* segment size: every segment but the last is this long */
    unsigned nseg;
    bool sealed;      /* the last segment was short: nothing more can join */
} net_txmsg;

typedef struct net_udp {
    int fd;
    int family;
    bool gso, gro;
    uint8_t *rxbuf;
    struct mmsghdr rxmsg[NET_RX_BATCH];
    struct iovec rxiov[NET_RX_BATCH];
    struct sockaddr_storage rxaddr[NET_RX_BATCH];
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } rxctl[NET_RX_BATCH];
    uint8_t *txbuf;
    size_t txlen;
    net_txmsg txmsg[NET_TX_MSGS];
    size_t ntx, txdone;
    uint64_t rx_datagrams, rx_bytes, rx_syscalls;
    uint64_t tx_datagrams, tx_bytes, tx_syscalls;
} net_udp;

typedef void (*net_udp_recv_fn)(void *ctx, const uint8_t *data, size_t len,
                                const struct sockaddr *from, socklen_t fromlen);

int net_udp_open(net_udp *u, const struct sockaddr *addr, unsigned flags);
void net_udp_close(net_udp *u);
/* One recvmmsg; fn for each datagram (GRO batches split).  Returns the
 * number of datagrams, 0 when there was nothing, or -errno. */
int net_udp_recv(net_udp *u, net_udp_recv_fn fn, void *ctx);
/* Room for a packet of up to need bytes at the end of the queue, or NULL
 * when the queue is full (flush first). */
uint8_t *net_udp_tx_space(net_udp *u, size_t need);
/* Queue the len bytes just written at net_udp_tx_space(). */
void net_udp_tx_push(net_udp *u, size_t len, const struct sockaddr *to, socklen_t tolen);
/* Send what is queued: 0 when all went, -EAGAIN when the socket is full
 * (the rest stays queued). */
int net_udp_tx_flush(net_udp *u);
/* Send one datagram now, outside the queue (resets, version negotiation). */
void net_udp_send_one(net_udp *u, const uint8_t *data, size_t len, const struct sockaddr *to,
                      socklen_t tolen);

/* ------------------------------------------------------------------ tls */

/*
 * What the TLS callbacks of one connection need.  ref comes first: GnuTLS
 * holds a pointer to it (ngtcp2_crypto finds the connection through it),
 * and the verify callback finds the rest from the same pointer.
 */
typedef struct net_tls_peer {
    ngtcp2_crypto_conn_ref ref;
    bool client;
    uint8_t expected[IROHDS_NET_ID_LEN]; /* client: the node id we dialed */
    bool any_id;                         /* client: dialed by address only (any key) */
    bool have_spki;
    uint8_t spki[IROHDS_NET_SPKI_LEN];
    int verify_err;                      /* why the peer's key was refused */
    char why[160];
} net_tls_peer;

typedef struct net_tls {
    gnutls_certificate_credentials_t cred;
    gnutls_priority_t prio;
} net_tls;

int net_tls_init(net_tls *t, const uint8_t sk[IROHDS_NET_SK_LEN]);
void net_tls_free(net_tls *t);
/* A session for one connection; alpns are offered (client) or served. */
int net_tls_session(net_tls *t, net_tls_peer *peer, const gnutls_datum_t *alpns, size_t n,
                    const char *sni, gnutls_session_t *out);
/* The negotiated ALPN into out (NUL-terminated); -ENOPROTOOPT if none. */
int net_tls_alpn(gnutls_session_t s, char *out, size_t cap);

/* -------------------------------------------------------------- cid map */

typedef struct net_cident net_cident;

typedef struct net_cidmap {
    net_cident **buckets;
    size_t nbuckets, count;
    uint8_t key[16]; /* SipHash key: peers choose some ids, so keep them guessing */
} net_cidmap;

int net_cidmap_init(net_cidmap *m);
void net_cidmap_free(net_cidmap *m);
int net_cidmap_put(net_cidmap *m, const uint8_t *cid, size_t len, irohds_net_conn *c);
irohds_net_conn *net_cidmap_get(const net_cidmap *m, const uint8_t *cid, size_t len);
void net_cidmap_del(net_cidmap *m, const uint8_t *cid, size_t len);

/* -------------------------------------------------------------- streams */

typedef struct net_chunk {
    struct net_chunk *next;
    size_t len;
    uint8_t data[NET_CHUNK_SIZE];
} net_chunk;

typedef struct net_pool {
    net_chunk *free;
    size_t n;
} net_pool;

/*
 * A send buffer: the bytes [acked, written) of a stream in a list of
 * chunks; [acked, sent) are with ngtcp2 (which may retransmit from them, so
 * they stay put until acknowledged), [sent, written) wait their turn.
 */
typedef struct net_sendbuf {
    net_chunk *head, *tail;
    uint64_t base;          /* stream offset of head->data[0] */
    net_chunk *cur;         /* the chunk holding offset `sent` */
    uint64_t cur_base;      /* stream offset of cur->data[0] */
    uint64_t acked, sent, written;
} net_sendbuf;

/* Reads held while the app has paused a stream. */
typedef struct net_holdbuf {
    net_chunk *head, *tail;
    size_t len;
    bool fin;
} net_holdbuf;

typedef struct net_stream {
    int64_t id;
    void *user_ptr;
    struct net_stream *hnext;          /* stream table chain */
    struct net_stream *qnext, *qprev;  /* the connection's send queue */
    bool in_sendq;
    bool fin_wanted, fin_sent;
    bool wr_shut;        /* no more writes: reset, STOP_SENDING, or not ours */
    bool rd_shut;        /* no more reads: stop_sending, or ours to send only */
    bool want_writable;  /* a write was cut short */
    bool paused;
    bool seen;           /* the app knows it: stream_closed is owed */
    bool deliver;        /* held reads to hand over from the loop */
    bool zombie;         /* closed in ngtcp2, but held reads remain */
    int close_err;       /* for stream_closed, once a zombie is drained */
    uint64_t close_code;
    net_sendbuf sb;
    net_holdbuf hold;
} net_stream;

net_stream *net_stream_new(irohds_net_conn *c, int64_t id, void *user_ptr);
net_stream *net_stream_get(const irohds_net_conn *c, int64_t id);
/* Free the stream (buffers back to the pool) and forget it. */
void net_stream_delete(irohds_net_conn *c, net_stream *s);
/* ngtcp2 closed the stream: tell the app and delete it, or, while reads are
 * held, keep it until they are delivered. */
void net_stream_closed(irohds_net_conn *c, net_stream *s, int err, uint64_t code);
/* The peer reset its side: drop held reads (crediting them back). */
void net_stream_drop_held(irohds_net_conn *c, net_stream *s);
void net_stream_sendq_add(irohds_net_conn *c, net_stream *s);
void net_stream_sendq_remove(irohds_net_conn *c, net_stream *s);
/* Up to max vectors over [sent, written); returns how many. */
size_t net_sendbuf_vecs(const net_sendbuf *b, ngtcp2_vec *v, size_t max);
void net_sendbuf_advance(net_sendbuf *b, size_t n);
/* [acked, acked + n) acknowledged: release whole chunks below. */
void net_sendbuf_ack(net_sendbuf *b, net_pool *pool, uint64_t n);
int net_holdbuf_add(net_holdbuf *h, net_pool *pool, const uint8_t *data, size_t len);
/* Hand held reads of every stream marked `deliver` to the app. */
void net_streams_deliver(irohds_net_conn *c);
/* Writable callbacks for streams whose buffers drained. */
void net_streams_notify_writable(irohds_net_conn *c);
/* stream_closed(-ECONNABORTED) for every stream, then free them all. */
void net_streams_abort_all(irohds_net_conn *c);
/* Give credit back for n bytes of sid the app consumed. */
void net_stream_consumed(irohds_net_conn *c, int64_t sid, size_t n);

net_chunk *net_chunk_get(net_pool *pool);
void net_chunk_put(net_pool *pool, net_chunk *ch);
void net_pool_free(net_pool *pool);

/* ----------------------------------------------------------- connection */

enum { NET_CONN_HANDSHAKE, NET_CONN_OPEN, NET_CONN_CLOSING, NET_CONN_DRAINING, NET_CONN_DEAD };

struct irohds_net_conn {
    net_tls_peer peer;   /* first: see net_tls_peer */
    irohds_net_endpoint *ep;
    ngtcp2_conn *qc;
    gnutls_session_t tls;
    uv_timer_t timer;
    uint64_t timer_due;  /* loop ms the timer is armed for, 0 = stopped */
    int state;
    bool client;
    bool visible;        /* the app has it: closed will be called */
    bool queued;         /* in the endpoint's service queue */
    bool drained;        /* a send buffer a writer waits on moved (sent or acked) */
    bool deliver;        /* some stream has held reads to deliver */
    bool in_timer;       /* inside its own timer callback */
    bool close_requested;
    bool close_app;      /* the requested close carries an application code */
    bool got_reset;      /* a stateless reset ended it */
    int close_err;       /* for the closed callback of a requested close */
    uint64_t close_code;
    char close_reason[IROHDS_NET_REASON_MAX];
    void *user_ptr;
    char alpn[IROHDS_NET_ALPN_MAX + 1];
    uint8_t remote_id[IROHDS_NET_ID_LEN];
    bool remote_id_known;
    struct sockaddr_storage remote;  /* first address, as the socket sees it (v4 mapped on v6) */
    uint64_t initial_rtt;            /* ns */
    ngtcp2_cid cids[NET_MAX_CIDS];   /* ours, in the endpoint's cid map */
    size_t ncids;
    ngtcp2_cid odcid;                /* server: the client's first DCID, also mapped */
    bool odcid_mapped;               /* odcid is in the table (it may be empty: an
                                        Initial with a token may carry a 0-byte DCID) */
    uint8_t tokens[NET_MAX_TOKENS][NGTCP2_STATELESS_RESET_TOKENLEN]; /* in ep->tokens */
    size_t ntokens;
    net_stream **streams;            /* table by id */
    size_t nbuckets, nstreams;
    net_stream *sendq_head, *sendq_tail;
    size_t buffered;                 /* send buffer bytes, all streams */
    unsigned n_want_writable;
    uint64_t stream_bytes_sent, stream_bytes_recv;
    uint64_t bytes_sent, bytes_recv, pkts_sent, pkts_recv;
    uint8_t *close_pkt;              /* resent while closing */
    size_t close_pkt_len;
    unsigned closing_rx;
    struct irohds_net_conn *prev, *next; /* all connections of the endpoint */
    struct irohds_net_conn *qnext;       /* service queue */
};

int net_conn_new_client(irohds_net_endpoint *ep, const uint8_t id[IROHDS_NET_ID_LEN],
                        const struct sockaddr *to, socklen_t tolen, const char *alpn,
                        uint64_t initial_rtt, void *user_ptr, irohds_net_conn **out);
int net_conn_new_server(irohds_net_endpoint *ep, const ngtcp2_pkt_hd *hd,
                        const struct sockaddr *from, socklen_t fromlen, irohds_net_conn **out);
/* A datagram for this connection. */
void net_conn_read(irohds_net_conn *c, const uint8_t *data, size_t len,
                   const struct sockaddr *from, socklen_t fromlen, uint64_t now);
/* Deliveries, notifications and a requested close: what waits for the loop. */
void net_conn_service(irohds_net_conn *c);
/* Write up to one burst into the endpoint's queue.  Returns 1 if the
 * connection has more to send right now, 0 if not, -EAGAIN if the socket
 * is full. */
int net_conn_write(irohds_net_conn *c, uint64_t now);
/* A stateless reset with one of this connection's tokens arrived. */
void net_conn_stateless_reset(irohds_net_conn *c);
/* Close with code 0 and report -ECANCELED (the endpoint is going away). */
void net_conn_cancel(irohds_net_conn *c);
/* Release everything, now; memory goes when the timer handle has closed. */
void net_conn_delete(irohds_net_conn *c);
bool net_conn_live(const irohds_net_conn *c);

/* ------------------------------------------------------------- endpoint */

#define NET_RTT_SLOTS 64

typedef struct net_rtt_slot {
    struct sockaddr_storage addr;
    uint64_t rtt;   /* ns */
    uint64_t used;  /* loop ms */
} net_rtt_slot;

struct irohds_net_endpoint {
    uv_loop_t *loop;
    uv_poll_t poll;
    uv_prepare_t prepare;
    net_udp udp;
    struct sockaddr_storage local;
    socklen_t local_len;
    irohds_net_config cfg;
    irohds_net_callbacks cb;
    gnutls_datum_t alpns[IROHDS_NET_MAX_ALPNS];
    size_t n_alpns;
    uint8_t id[IROHDS_NET_ID_LEN];
    uint8_t reset_secret[32];   /* stateless reset tokens: from the node key */
    net_tls tls;
    net_cidmap cids;
    net_cidmap tokens;          /* peers' stateless reset tokens -> connection */
    net_pool pool;
    irohds_net_conn *conns;
    uint32_t nconns;            /* live ones */
    irohds_net_conn *qhead, *qtail;
    net_rtt_slot rtt[NET_RTT_SLOTS];
    uint64_t rx_now;            /* timestamp of the batch being read */
    uint64_t rx_dropped, handshakes_failed, resets_sent, vn_sent;
    uint64_t reset_window;      /* loop ms the current reset budget started */
    unsigned resets_in_window;
    unsigned busy;              /* inside a libuv callback of ours */
    bool free_requested;
    bool freeing;
    bool tx_blocked;            /* the socket is full: waiting for POLLOUT */
    unsigned handles_open;
};

/* Queue c for service and writing from the loop. */
void net_ep_schedule(irohds_net_endpoint *ep, irohds_net_conn *c);
/* Run the service queue and flush the socket. */
void net_ep_run(irohds_net_endpoint *ep);
void net_ep_enter(irohds_net_endpoint *ep);
void net_ep_leave(irohds_net_endpoint *ep);
/* A connection's memory is gone (its timer handle closed). */
void net_ep_handle_closed(irohds_net_endpoint *ep);
uint64_t net_ep_remembered_rtt(irohds_net_endpoint *ep, const struct sockaddr *addr);
void net_ep_remember_rtt(irohds_net_endpoint *ep, const struct sockaddr *addr, uint64_t rtt);
/* The path of a connection to/from addr on this endpoint. */
void net_ep_path(irohds_net_endpoint *ep, ngtcp2_path *path, const struct sockaddr *remote,
                 socklen_t remote_len);
/* Take a deleted connection off the endpoint's lists. */
void net_ep_unlink(irohds_net_endpoint *ep, irohds_net_conn *c);
/* The largest UDP payload to send to addr. */
size_t net_ep_payload_size(const irohds_net_endpoint *ep, const struct sockaddr *addr);
/* addr as the app sees it: IPv4-mapped IPv6 as AF_INET. */
void net_addr_unmap(const struct sockaddr *addr, struct sockaddr_storage *out);
uint64_t net_now(void); /* ngtcp2 timestamps: monotonic ns */
/* Take one datagram as if the socket had received it from `from`: what the
 * receive path does for each (tests/fuzz/fuzz_quic.c feeds it). */
void net_ep_feed(irohds_net_endpoint *ep, const uint8_t *data, size_t len,
                 const struct sockaddr *from, socklen_t fromlen);

#endif
