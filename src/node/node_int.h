/*
 * node_int.h: the node's internal state, shared by its files:
 *
 *   node.c     lifecycle, the endpoint's callbacks (dispatched by ALPN),
 *              namespaces, the address book, timers, PEERS / addresses JSON
 *   glink.c    gossip over QUIC: a uni stream per (peer, topic), frames in
 *              and out, the gossip core's actions carried out
 *   results.c  what peers say (HAVE, QUERY, CLAIM): providers and claims
 *              tables, our own announcements and claims, misses and the
 *              fetch-or-compute decision, EXPLAIN
 *   provide.c  the iroh-blobs server: a Get answered from the store's files
 *   fetch.c    downloads: one verified blob download from one or several
 *              providers at once, resumed elsewhere when a provider fails
 *
 * Not an API: only node/ includes it.
 */
#ifndef IROHDS_NODE_INT_H
#define IROHDS_NODE_INT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#include "blobs/blobs.h"
#include "coren/coren.h"
#include "gossip/gossip.h"
#include "hash/bao.h"
#include "mdns/mdns.h"
#include "net/net.h"
#include "node/node.h"
#include "proto/proto.h"

#define NODE_MAX_NS 256         /* namespaces joined (the server's limit too) */
#define NODE_MAX_PEERS 4096     /* address book entries */
#define NODE_PEER_ADDRS 8       /* addresses kept per peer */
#define NODE_MAX_PROVIDED 65536 /* results peers announced, remembered */
#define NODE_PROVIDERS 8        /* providers remembered per result */
#define NODE_MAX_CLAIMS 4096    /* live claims of peers remembered */
#define NODE_TICK_MS 100        /* housekeeping: deadlines, stalls, claims */
#define NODE_QUERY_TIMEOUT_MS 300 /* a miss waits this long for answers */
#define NODE_RESOLVE_TIMEOUT_US (3LL * 1000000) /* ... and this long for providers' addresses */
#define NODE_JOIN_GRACE_MS 2000 /* a topic still joining counts as having peers */
#define NODE_GOSSIP_KEEPALIVE_MS 5000
#define NODE_REJOIN_MIN_US (1LL * 1000000)  /* a topic with no neighbour asks again after 1 s, */
#define NODE_REJOIN_MAX_US (30LL * 1000000) /* doubling up to 30 s */
#define NODE_ANSWER_EVERY_US (5LL * 1000000) /* answer a query for one key this often */
#define NODE_ANSWERED 256
#define NODE_FUNC_TIMES 256
#define NODE_FIGURE_UNKNOWN 0.0

/* Why a gossip message was dropped (counted, shown in PEERS JSON). */
enum node_drop {
    NODE_DROP_RATE = 0,   /* over the neighbour's or the signer's budget */
    NODE_DROP_MALFORMED,  /* not a message of ours (decode), or an unknown topic */
    NODE_DROP_SIGNATURE,  /* a signature or the file list does not hold */
    NODE_DROP_NAMESPACE,  /* another namespace than the topic's */
    NODE_DROP_STALE,      /* timestamp outside the clock window */
    NODE_DROP_KINDS,
};

/* What a connection's user pointer points at starts with one of these. */
enum node_conn_kind {
    NODE_CONN_GOSSIP = 1, /* /iroh-gossip/1, either direction (struct glink) */
    NODE_CONN_SERVE,      /* /iroh-bytes/4 a peer opened to us (struct pconn) */
    NODE_CONN_FETCH,      /* /iroh-bytes/4 we opened to a provider (struct fpeer) */
    NODE_CONN_PROBE,      /* dialled by address to learn the id there (mainline.c) */
};

/* How we learnt of a peer (bits). */
enum {
    NODE_SRC_BOOTSTRAP = 1, /* config.toml bootstrap_peers */
    NODE_SRC_GOSSIP = 2,    /* PeerData from gossip */
    NODE_SRC_INCOMING = 4,  /* it connected to us */
    NODE_SRC_DHT = 8,       /* (discovery, a later milestone) */
    NODE_SRC_MDNS = 16,
};

typedef struct node_peer {
    struct node_peer *next; /* hash chain */
    uint8_t id[32];
    struct sockaddr_storage addrs[NODE_PEER_ADDRS];
    unsigned naddrs;
    unsigned sources;
    irohds_coren_link link;
    int64_t last_seen_us;
    uint8_t ns_bits[NODE_MAX_NS / 8]; /* namespaces in whose active view it is */
} node_peer;

typedef struct node_ns {
    char name[IROHDS_NS_MAX];
    uint8_t topic[32];
    unsigned neighbors;
    int64_t joined_us;
    bool has_bootstrap; /* joined with peers to contact */
    int64_t rejoin_at_us; /* alone: when to ask known peers again */
    int64_t rendezvous_at_us; /* next DHT announce + lookup of the namespace */
    int64_t rendezvous_every_us;
    int64_t rejoin_every_us;
} node_ns;

struct glink;
struct pconn;
struct fetch;
struct miss;
struct prov_entry;
struct claim_entry;
struct my_claim;

struct irohds_node {
    uv_loop_t *loop;
    irohds_node_callbacks cb;
    irohds_store *store;
    irohds_paths paths;
    irohds_config cfg;
    uint8_t sk[64];
    uint8_t id[32];
    char id_hex[65];
    irohds_net_endpoint *ep;
    irohds_gossip *gossip;
    uv_timer_t gossip_timer;
    uv_timer_t tick;
    uv_idle_t kick;        /* runs deferred work once per loop turn */
    bool kick_active;
    uint64_t ticks;
    bool stopping;
    int handles_open; /* while stopping: close callbacks still to come */

    /* namespaces */
    node_ns ns[NODE_MAX_NS];
    unsigned nns;

    /* address book: chained hash on the id's first bytes */
    node_peer *peers[1024];
    unsigned npeers;

    /* gossip links (glink.c) */
    struct glink *glinks;

    /* blob server (provide.c) */
    struct pconn *pconns;
    uint64_t served_bytes, served_streams;

    /* results.c */
    struct prov_entry *prov[4096];
    unsigned nprov;
    struct claim_entry *claims[1024];
    unsigned nclaims;
    struct miss *misses;
    struct my_claim *my_claims;
    irohds_proto_limiter limit_hop;    /* per delivering neighbour, before verify */
    irohds_proto_limiter limit_signer; /* per signer, after verify */
    uint64_t dropped_msgs;              /* all of dropped[] */
    uint64_t dropped[NODE_DROP_KINDS];  /* by enum node_drop */
    uint64_t gossip_streams_dropped;    /* gossip streams cut for a bad frame (glink.c) */
    struct {
        uint8_t key[32];
        int64_t at;
    } answered[NODE_ANSWERED]; /* keys whose QUERY we answered lately */
    struct {
        char func[IROHDS_FUNC_MAX];
        double seconds;
    } func_times[NODE_FUNC_TIMES]; /* what a function took here last */

    /* fetch.c */
    struct fetch *fetches;
    struct fpeer *fpeers;
    struct bad_blob *bad; /* (peer, blob) pairs that failed verification */

    /* discovery: local.c (mDNS), mainline.c (DHT) */
    struct node_mdns *mdns;
    struct node_dht *dht;

    /* coren */
    irohds_coren_probe probe;
    bool probe_ready;
    uv_work_t probe_req;
    bool probe_running;
};

/* ------------------------------------------------------------ node.c */

uint64_t node_now_ms(void); /* monotonic, for gossip */
/* An IP (4 bytes, or 16 with v6) and port as a socket address, and back. */
void node_sockaddr_make(struct sockaddr_storage *ss, bool v6, const uint8_t *ip, uint16_t port);
void node_sockaddr_split(const struct sockaddr_storage *ss, bool *v6, uint8_t ip[16],
                         uint16_t *port);
node_peer *node_peer_find(irohds_node *n, const uint8_t id[32]);
/* Find or add (evicting the stalest non-bootstrap peer when full); NULL on ENOMEM. */
node_peer *node_peer_get(irohds_node *n, const uint8_t id[32]);
void node_peer_add_addr(node_peer *p, const struct sockaddr *sa);
node_ns *node_ns_find(irohds_node *n, const char *name);
node_ns *node_ns_by_topic(irohds_node *n, const uint8_t topic[32]);
unsigned node_ns_index(irohds_node *n, const node_ns *ns);
/* Feed a connection's smoothed RTT into its peer's link estimate. */
void node_note_rtt(irohds_node *n, irohds_net_conn *c);
/* Dial peer for alpn at its first address; NULL when it has none. */
irohds_net_conn *node_dial(irohds_node *n, const uint8_t id[32], const char *alpn, void *uptr);
/* While stopping: one of the things stop() waits for is done; the last frees the node. */
void node_unref(irohds_node *n);
/* Schedule node_kick_run for the next loop turn. */
void node_kick(irohds_node *n);
/* Re-arm the gossip timer after anything fed the gossip core. */
void node_gossip_pump(irohds_node *n);
/* Ask peer p to let us into ns's gossip topic (a Join to it). */
void node_ns_join_peer(irohds_node *n, node_ns *ns, node_peer *p);
/* Our reachable addresses (loopback only when there is nothing else). */
int node_own_addrs(irohds_node *n, struct sockaddr_storage *out, size_t max);
/* PeerData of ours (postcard AddrInfo) into buf; returns its length or -errno. */
int node_own_peer_data(irohds_node *n, uint8_t *buf, size_t cap);

/* ------------------------------------------------------------ local.c */

int node_mdns_start(irohds_node *n);
/* A socket address as the DNS code holds one (mDNS and pkarr records). */
void node_dns_addr_of(const struct sockaddr_storage *ss, irohds_dns_addr *a);
void node_mdns_namespaces_changed(irohds_node *n);
/* Goodbye and close; true when there was something to close (one
 * node_unref follows from its close callbacks). */
bool node_mdns_stop(irohds_node *n);

/* --------------------------------------------------------- mainline.c */

struct dht_probe;
int node_dht_start(irohds_node *n);
bool node_dht_stop(irohds_node *n); /* like node_mdns_stop */
/* Look up a node id's address record (at most once a minute per id);
 * node_peer_resolved follows when found. */
void node_dht_resolve(irohds_node *n, const uint8_t id[32]);
void node_dht_namespace_joined(irohds_node *n, node_ns *ns);
void node_dht_probe_connected(irohds_node *n, struct dht_probe *pr);
void node_dht_probe_closed(irohds_node *n, struct dht_probe *pr);
uint16_t node_dht_port(irohds_node *n);
/* "dht": {...} for PEERS JSON: port, table and traffic (null when off). */
void node_dht_json(irohds_node *n, irohds_jbuf *b);
/* A peer's addresses just became known (node.c): join through it if it is a
 * bootstrap peer, and let waiting misses look again. */
void node_peer_resolved(irohds_node *n, node_peer *p);

/* ------------------------------------------------------------ glink.c */

void glink_accepted(irohds_node *n, irohds_net_conn *c);
void glink_connected(irohds_node *n, struct glink *g);
void glink_closed(irohds_node *n, struct glink *g);
void glink_stream_opened(irohds_node *n, struct glink *g, int64_t sid);
void glink_recv(irohds_node *n, struct glink *g, int64_t sid, const uint8_t *data, size_t len,
                bool fin);
void glink_writable(irohds_node *n, struct glink *g, int64_t sid);
void glink_stream_closed(irohds_node *n, struct glink *g, int64_t sid);
/* Carry out the gossip core's queued actions. */
void glink_drain(irohds_node *n);
void glink_free_all(irohds_node *n);
void glink_sample_rtt(irohds_node *n);

/* ---------------------------------------------------------- results.c */

/* A DELIVER action: content of a gossip broadcast on topic, from neighbour hop. */
void results_deliver(irohds_node *n, const uint8_t topic[32], const uint8_t hop[32],
                     const uint8_t *content, size_t len);
void results_tick(irohds_node *n, int64_t now_us);
/* A provider's address became known: misses that could not use it look again. */
void results_peer_resolved(irohds_node *n, const uint8_t id[32]);
/* ns gained a neighbour: queries sent into an empty view go out again. */
void results_neighbor_up(irohds_node *n, node_ns *ns);
void results_kick(irohds_node *n); /* deferred resolutions */
/* A fetch ended (fetch.c): stored, or every provider failed. */
void results_fetch_done(irohds_node *n, const uint8_t key[32], int rc);
void results_free_all(irohds_node *n);
/* A broadcast of our own message on ns's topic. */
int results_broadcast(irohds_node *n, node_ns *ns, const uint8_t *msg, size_t len);

/* ---------------------------------------------------------- provide.c */

void provide_accepted(irohds_node *n, irohds_net_conn *c);
void provide_closed(irohds_node *n, struct pconn *p);
void provide_recv(irohds_node *n, struct pconn *p, int64_t sid, const uint8_t *data, size_t len,
                  bool fin);
void provide_writable(irohds_node *n, struct pconn *p, int64_t sid);
void provide_stream_closed(irohds_node *n, struct pconn *p, int64_t sid);
void provide_free_all(irohds_node *n);

/* ------------------------------------------------------------ fetch.c */

/* What a fetch needs to know of the result (copied). */
typedef struct fetch_result {
    uint8_t key[32];
    char ns[IROHDS_NS_MAX];
    char func[IROHDS_FUNC_MAX];
    uint8_t blob[32];
    uint64_t size;
    uint32_t serializer;
    double compute_seconds, figure;
    uint8_t producer[32];
    uint8_t producer_sig[64];
    int64_t created_us;
    uint32_t nfiles;
    irohds_file *files; /* nfiles of them (malloc'd, owned by the fetch) */
} fetch_result;

/*
 * Download the result's blob (and its FileRef files) from the providers
 * given (in order of preference), verify, store, record.  Calls
 * results_fetch_done(key, 0 or -errno) from the loop when over (never from
 * inside this call).  -EALREADY when key is being fetched.
 */
int fetch_start(irohds_node *n, const fetch_result *r, const uint8_t (*providers)[32],
                unsigned nprov);
/* Another provider for a running fetch (a HAVE that arrived meanwhile). */
void fetch_add_provider(irohds_node *n, const uint8_t key[32], const uint8_t provider[32]);
/* Bytes done and total of a running fetch (false if none). */
bool fetch_progress(irohds_node *n, const uint8_t key[32], uint64_t *done, uint64_t *total);
bool fetch_is_bad(irohds_node *n, const uint8_t peer[32], const uint8_t blob[32]);
void fetch_connected(irohds_node *n, struct fpeer *fp);
void fetch_conn_closed(irohds_node *n, struct fpeer *fp, const irohds_net_close_info *why);
void fetch_recv(irohds_node *n, struct fpeer *fp, int64_t sid, const uint8_t *data, size_t len,
                bool fin);
void fetch_stream_closed(irohds_node *n, struct fpeer *fp, int64_t sid, int err);
void fetch_tick(irohds_node *n, int64_t now_us);
/* Frees every fetch but those storing; returns how many are (each calls
 * node_unref when done, once the node is stopping). */
unsigned fetch_free_all(irohds_node *n);

#endif
