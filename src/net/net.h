/*
 * net: the QUIC transport.  One UDP socket per endpoint, QUIC v1 (ngtcp2),
 * TLS 1.3 with RFC 7250 raw Ed25519 public keys on both sides (GnuTLS), the
 * way iroh authenticates: the node id *is* the peer's TLS key, so a
 * connection to a node id either reaches that node or fails.
 *
 * An endpoint is driven by the caller's uv_loop_t (a uv_poll on the socket,
 * one timer per connection, a prepare handle that flushes writes before the
 * loop blocks).  There are no threads.  It owns every connection made on it;
 * a connection owns its streams.
 *
 * Conventions (libuv style):
 *   - Errors are negative errno values; 0 is success.
 *   - Every connection returned by irohds_net_connect() or passed to the
 *     accepted callback gets exactly one closed callback, whatever ends it
 *     (either side closing, a timeout, a TLS failure, the endpoint being
 *     freed).  After closed returns the irohds_net_conn pointer is dead.
 *     Connections refused before they were accepted are never shown.
 *   - Every stream the app has seen (opened, or reported by stream_opened /
 *     recv) gets exactly one stream_closed callback, before the connection's
 *     closed callback if the connection goes first.
 *   - Callbacks may call any function here.  A closed callback never comes
 *     from inside irohds_net_conn_close(); irohds_net_endpoint_free() called
 *     from a callback takes effect when the callback returns.
 *   - Strings and buffers passed in are copied; pointers passed to callbacks
 *     are valid only during the callback.
 */
#ifndef IROHDS_NET_H
#define IROHDS_NET_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <uv.h>

#define IROHDS_NET_ID_LEN 32          /* node id = Ed25519 public key */
#define IROHDS_NET_SK_LEN 64          /* libsodium secret key: seed || pk */
#define IROHDS_NET_SPKI_LEN 44        /* 12-byte Ed25519 SPKI prefix || key */
#define IROHDS_NET_SERVER_NAME_LEN 66 /* 52 base32 chars + ".iroh.invalid" + NUL */
#define IROHDS_NET_ALPN_MAX 255
#define IROHDS_NET_MAX_ALPNS 16
#define IROHDS_NET_REASON_MAX 256

typedef struct irohds_net_endpoint irohds_net_endpoint;
typedef struct irohds_net_conn irohds_net_conn;

/* ------------------------------------------------------------ callbacks */

/*
 * Why a connection ended.  err is 0 when an application closed it
 * (irohds_net_conn_close on this side: remote false; on the peer: remote
 * true), else one of:
 *   -ETIMEDOUT     idle timeout, or the handshake did not finish in time
 *   -EKEYREJECTED  the server's key is not the node id we dialed
 *   -ENOPROTOOPT   no common ALPN (refused by the server)
 *   -ECONNREFUSED  the peer refused the handshake (a TLS alert)
 *   -ECONNRESET    stateless reset, or the peer closed with a transport error
 *   -EPROTONOSUPPORT  the peer speaks no QUIC version we do
 *   -EPROTO        the peer broke the protocol (we closed with an error)
 *   -ECANCELED     the endpoint was freed
 *   -ENOMEM
 * code is the application error code when app_code is true, else the QUIC
 * transport error code.  reason is the peer's reason phrase (remote) or ours.
 */
typedef struct irohds_net_close_info {
    int err;
    bool remote;
    bool app_code;
    uint64_t code;
    char reason[IROHDS_NET_REASON_MAX];
} irohds_net_close_info;

/*
 * All optional except closed.  sptr is the stream's user pointer (NULL until
 * set with irohds_net_stream_open or irohds_net_stream_set_user_ptr).
 */
typedef struct irohds_net_callbacks {
    /* A peer connected to us: handshake done, its key verified, ALPN one of
     * ours.  To refuse it, call irohds_net_conn_close here. */
    void (*accepted)(irohds_net_conn *c);
    /* Our irohds_net_connect finished its handshake. */
    void (*connected)(irohds_net_conn *c);
    /* The connection is over; see the conventions above. */
    void (*closed)(irohds_net_conn *c, const irohds_net_close_info *why);
    /* The peer opened stream sid (its first frame arrived). */
    void (*stream_opened)(irohds_net_conn *c, int64_t sid);
    /* In-order stream data; len may be 0 when fin (data is never NULL, so
     * memcpy(dst, data, len) is safe).  Flow-control credit is returned
     * when this returns, unless reads are paused. */
    void (*recv)(irohds_net_conn *c, int64_t sid, void *sptr, const uint8_t *data, size_t len,
                 bool fin);
    /* A write that was cut short (or refused) can go on: the send buffer
     * drained to half of what cut it short. */
    void (*writable)(irohds_net_conn *c, int64_t sid, void *sptr);
    /* The peer abandoned its side of the stream (RESET_STREAM). */
    void (*stream_reset)(irohds_net_conn *c, int64_t sid, void *sptr, uint64_t code);
    /* Both directions are finished.  err 0: cleanly (all data acknowledged
     * and received); -ECONNRESET: reset by either side (code is the
     * application code; STOP_SENDING from the peer ends here too);
     * -ECONNABORTED: the connection ended first. */
    void (*stream_closed)(irohds_net_conn *c, int64_t sid, void *sptr, int err, uint64_t code);
} irohds_net_callbacks;

/* --------------------------------------------------------------- config */

enum {
    IROHDS_NET_NO_GSO = 1u << 0,   /* do not coalesce sends with UDP_SEGMENT */
    IROHDS_NET_NO_GRO = 1u << 1,   /* do not ask for UDP_GRO on receive */
    IROHDS_NET_SEND_SNI = 1u << 2, /* send base32dnssec(id).iroh.invalid as
                                      SNI, as iroh <= 1.0.3 did */
};

enum { IROHDS_NET_CC_DEFAULT = 0, IROHDS_NET_CC_RENO, IROHDS_NET_CC_CUBIC, IROHDS_NET_CC_BBR,
       IROHDS_NET_CC_BBR2 };

/* Zero means "default" for every number.  irohds_net_config_defaults fills
 * the defaults in so they can be read. */
typedef struct irohds_net_config {
    const uint8_t *secret_key;     /* IROHDS_NET_SK_LEN bytes (required) */
    const char *listen;            /* "host:port", "[v6]:port"; default "[::]:0"
                                      (dual-stack; "0.0.0.0:0" if no IPv6) */
    const char *const *alpns;      /* ALPNs served; none: accept nothing */
    size_t n_alpns;
    const irohds_net_callbacks *cb; /* required (closed at least) */
    void *user_ptr;
    uint64_t idle_timeout_ms;      /* 30000 */
    uint64_t handshake_timeout_ms; /* 10000 */
    uint64_t keep_alive_ms;        /* PING after this much quiet; default off */
    uint64_t initial_rtt_us;       /* when nothing is known of a peer: 10000 */
    uint64_t stream_window;        /* receive window per stream: 16 MiB */
    uint64_t conn_window;          /* receive window per connection: 32 MiB */
    size_t stream_send_cap;        /* unacknowledged bytes buffered per stream: 8 MiB */
    size_t conn_send_cap;          /* ... per connection: 32 MiB */
    uint32_t max_streams_bidi;     /* concurrent streams a peer may open: 128 */
    uint32_t max_streams_uni;      /* 128 */
    uint32_t max_conns;            /* live connections, both directions: 4096 */
    size_t max_udp_payload;        /* 0: 1452 with PMTUD, larger to loopback */
    int cc;                        /* IROHDS_NET_CC_*; default BBR (transport.md) */
    unsigned flags;                /* IROHDS_NET_NO_GSO | ... */
} irohds_net_config;

void irohds_net_config_defaults(irohds_net_config *cfg);

/* ------------------------------------------------------------- endpoint */

/*
 * Bind the socket and start serving.  -EINVAL (bad config or address),
 * -EADDRINUSE and other socket errors, -ENOMEM.
 */
int irohds_net_endpoint_init(uv_loop_t *loop, const irohds_net_config *cfg,
                             irohds_net_endpoint **out);

/*
 * Close every connection (CONNECTION_CLOSE with code 0, closed callbacks
 * with -ECANCELED), then the socket and handles.  The memory is released
 * from libuv close callbacks: run the loop once more before destroying it.
 */
void irohds_net_endpoint_free(irohds_net_endpoint *ep);

/* Our node id (IROHDS_NET_ID_LEN bytes). */
const uint8_t *irohds_net_endpoint_id(const irohds_net_endpoint *ep);
void *irohds_net_endpoint_user_ptr(const irohds_net_endpoint *ep);

/* The bound address, with its port (a wildcard address stays wildcard). */
int irohds_net_endpoint_local_addr(const irohds_net_endpoint *ep, struct sockaddr_storage *out);

/*
 * Addresses peers can use: the bound one, or when it is a wildcard, every
 * address of an up interface of the socket's families, all with the bound
 * port.  Returns how many were written (at most max) or -errno.
 */
int irohds_net_endpoint_addrs(const irohds_net_endpoint *ep, struct sockaddr_storage *out,
                              size_t max);

typedef struct irohds_net_endpoint_stats {
    uint64_t rx_datagrams, rx_bytes, rx_syscalls;
    uint64_t tx_datagrams, tx_bytes, tx_syscalls;
    uint64_t rx_dropped;       /* undecodable, for no connection, or refused */
    uint64_t handshakes_failed; /* incoming, before they were accepted */
    uint64_t stateless_resets_sent, version_negotiations_sent;
    uint32_t conns;            /* live (not yet closed) connections */
    uint64_t cids_mapped;      /* connection ids routed to a connection (0 with none) */
    bool gso, gro;             /* in use now (GSO turns off if the kernel refuses) */
} irohds_net_endpoint_stats;

void irohds_net_endpoint_stats_get(const irohds_net_endpoint *ep, irohds_net_endpoint_stats *out);

/* ---------------------------------------------------------- connections */

/*
 * Dial node_id at addr, offering one ALPN.  node_id NULL: dial the address
 * whoever holds it (discovery found an address but no id: a DHT peer list);
 * the handshake still proves a key, which then is the connection's remote
 * id (conn_info), known from the connected callback on.  initial_rtt_us is what the
 * caller knows of the peer's RTT (0: what this endpoint last measured to
 * addr, else config.initial_rtt_us).  Returns 0 with *out set; connected or
 * closed follows.  -EINVAL (bad ALPN), -EAFNOSUPPORT (an IPv6 peer on an
 * IPv4 socket), -EMFILE (max_conns), -ECANCELED (the endpoint is being
 * freed), -ENOMEM.
 */
int irohds_net_connect(irohds_net_endpoint *ep, const uint8_t node_id[IROHDS_NET_ID_LEN],
                       const struct sockaddr *addr, const char *alpn, uint64_t initial_rtt_us,
                       void *user_ptr, irohds_net_conn **out);

/* A live (not closing) connection to node_id with that ALPN (NULL: any), in
 * either direction, or NULL.  Prefers an established one over one still
 * handshaking. */
irohds_net_conn *irohds_net_find(irohds_net_endpoint *ep, const uint8_t node_id[IROHDS_NET_ID_LEN],
                                 const char *alpn);

/*
 * Close with an application error code and reason (CONNECTION_CLOSE); data
 * not yet acknowledged is dropped.  The closed callback follows from the
 * loop (err 0).  -ENOTCONN if it is already closing.
 */
int irohds_net_conn_close(irohds_net_conn *c, uint64_t code, const char *reason);

/* Send a PING after ms of quiet so the idle timeout never fires (0: off). */
int irohds_net_conn_set_keep_alive(irohds_net_conn *c, uint64_t ms);

void *irohds_net_conn_user_ptr(const irohds_net_conn *c);
void irohds_net_conn_set_user_ptr(irohds_net_conn *c, void *ptr);
irohds_net_endpoint *irohds_net_conn_endpoint(const irohds_net_conn *c);

typedef struct irohds_net_conn_info {
    uint8_t remote_id[IROHDS_NET_ID_LEN]; /* zero until known on the server side */
    bool remote_id_known;
    bool is_client;
    bool established;           /* handshake complete */
    struct sockaddr_storage remote_addr; /* IPv4 peers as AF_INET */
    char alpn[IROHDS_NET_ALPN_MAX + 1];
    const char *cipher;         /* e.g. "AES-128-GCM"; "" before the handshake */
    uint64_t srtt_us, min_rtt_us, latest_rtt_us, rttvar_us;
    uint64_t cwnd, bytes_in_flight;
    uint64_t delivery_rate;     /* bytes/s, ngtcp2's estimate */
    uint64_t bytes_sent, bytes_recv; /* UDP payload bytes */
    uint64_t pkts_sent, pkts_recv;
    uint64_t stream_bytes_sent; /* stream bytes the peer acknowledged */
    uint64_t stream_bytes_recv; /* stream bytes delivered to recv */
    size_t send_buffered;       /* bytes waiting in send buffers */
    size_t max_udp_payload;     /* current path's */
} irohds_net_conn_info;

int irohds_net_conn_info_get(irohds_net_conn *c, irohds_net_conn_info *out);

/* The peer's certificate as TLS saw it (the 44-byte SPKI); -ENOTCONN before
 * the peer presented one. */
int irohds_net_conn_peer_spki(irohds_net_conn *c, uint8_t out[IROHDS_NET_SPKI_LEN]);

/* -------------------------------------------------------------- streams */

/*
 * Open a stream (bidi, or uni = send only).  Only once connected.
 * -ENOTCONN (handshaking or closing), -EAGAIN (the peer's stream limit:
 * try again after one of ours closes).
 */
int irohds_net_stream_open(irohds_net_conn *c, bool bidi, void *sptr, int64_t *sid);

int irohds_net_stream_set_user_ptr(irohds_net_conn *c, int64_t sid, void *sptr);

/*
 * Copy up to len bytes into the stream's send buffer; returns how many were
 * taken: fewer when the per-stream or per-connection cap of unacknowledged
 * bytes is reached, or when 1 MiB already waits to go into packets (the
 * writable callback says when to go on).  fin ends the stream once all of
 * len was taken (len 0 with fin: just end it).  The bytes are sent from the
 * loop.  -ENOENT (no such stream), -EPIPE (already finished, reset, or the
 * peer sent STOP_SENDING), -EINVAL (the peer's uni stream), -ENOTCONN.
 */
ssize_t irohds_net_stream_write(irohds_net_conn *c, int64_t sid, const void *data, size_t len,
                                bool fin);

/* Abandon sending (RESET_STREAM with code); buffered data is dropped. */
int irohds_net_stream_reset(irohds_net_conn *c, int64_t sid, uint64_t code);

/* Abandon receiving (STOP_SENDING with code); no more recv for sid. */
int irohds_net_stream_stop_sending(irohds_net_conn *c, int64_t sid, uint64_t code);

/*
 * Backpressure for reads: while paused, arriving data is held (at most the
 * stream's receive window, since no credit goes back) and recv is not
 * called for sid; the peer stalls once the window is used up.  Resuming
 * delivers what was held, from the loop.
 */
int irohds_net_stream_set_read_paused(irohds_net_conn *c, int64_t sid, bool paused);

/* ------------------------------------------------------------- helpers */

/* The SPKI a node presents: the 12-byte Ed25519 prefix, then the key. */
void irohds_net_spki(const uint8_t id[IROHDS_NET_ID_LEN], uint8_t out[IROHDS_NET_SPKI_LEN]);

/* iroh's synthetic TLS server name: base32dnssec(id) + ".iroh.invalid". */
void irohds_net_server_name(const uint8_t id[IROHDS_NET_ID_LEN],
                            char out[IROHDS_NET_SERVER_NAME_LEN]);

/* "1.2.3.4:5" or "[::1]:5": numeric hosts only (no DNS here). */
int irohds_net_parse_addr(const char *s, struct sockaddr_storage *out);

/* "1.2.3.4:5" / "[::1]:5" into buf (at least 64 bytes). */
void irohds_net_addr_str(const struct sockaddr *sa, char *buf, size_t len);

#endif
