/*
 * gossip: iroh-gossip (ALPN "/iroh-gossip/1") as an I/O-free core.
 * HyParView keeps each topic's membership (a small active view of
 * neighbours, a larger passive view of spares); PlumTree broadcasts over it
 * (content pushed eagerly along a spanning tree, message ids lazily to the
 * other neighbours, the tree repaired by grafts).  docs/gossip.md describes
 * the wire format with byte examples, the events and the parameters.
 *
 * Two halves, one header:
 *
 *   - The codec (wire.c): topic::Message = Swarm(hyparview) | Gossip
 *     (plumtree) in postcard, the u32 big-endian length framing with its
 *     StreamHeader, a streaming frame reader, and the AddrInfo that iroh
 *     puts inside PeerData.  Decoded messages point into the caller's
 *     buffer: they live as long as it does.  Every decoder is bounds
 *     checked and refuses unknown variants, bad tags, trailing bytes and
 *     a Gossip whose id is not BLAKE3(content).
 *
 *   - The state machine (gossip.c, hyparview.c, plumtree.c): one instance
 *     per node, many topics, in the manner of jech/dht: the caller hands in
 *     events with the current time (milliseconds on any monotonic clock)
 *     and drains actions (send this frame, close that stream, deliver this
 *     content) from a queue; irohds_gossip_next_deadline() says when to
 *     call irohds_gossip_timeout() next.  No sockets, no clock, no globals;
 *     randomness comes from a PRNG seeded at init, so runs are repeatable.
 *     Every table is bounded (views, message caches, queues) and every
 *     peer has a per-topic budget: a flood is dropped and counted.
 *
 * Errors are negative errno values.  Peer ids and topic ids are 32 bytes
 * (a peer id is the node's Ed25519 public key, as iroh puts it on the wire).
 */
#ifndef IROHDS_GOSSIP_H
#define IROHDS_GOSSIP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define IROHDS_GOSSIP_ALPN "/iroh-gossip/1"
#define IROHDS_GOSSIP_ID_LEN 32
/* Largest frame body (postcard) read or written: iroh's DEFAULT_MAX_MESSAGE_SIZE. */
#define IROHDS_GOSSIP_MAX_MESSAGE_SIZE 4096
#define IROHDS_GOSSIP_MIN_MESSAGE_SIZE 512 /* iroh's MIN_MAX_MESSAGE_SIZE */
#define IROHDS_GOSSIP_FRAME_HEADER 4       /* u32 big-endian body length */
/* Entries one decoded message can hold.  Every PeerInfo or IHave is at least
 * 33 bytes, so no frame of IROHDS_GOSSIP_MAX_MESSAGE_SIZE can carry more. */
#define IROHDS_GOSSIP_MAX_NODES 128
#define IROHDS_GOSSIP_MAX_IHAVE 128
/* PeerData kept for a peer (ours and others'); longer PeerData is ignored. */
#define IROHDS_GOSSIP_MAX_PEER_DATA 1024
/* AddrInfo bounds */
#define IROHDS_GOSSIP_MAX_ADDRS 16
#define IROHDS_GOSSIP_MAX_URL 256

/* ================================================================ codec */

/*
 * Message kinds.  The Swarm kinds equal their hyparview::Message variant
 * index; a Gossip kind minus IROHDS_GOSSIP_GOSSIP is its plumtree::Message
 * index.
 */
typedef enum irohds_gossip_kind {
    IROHDS_GOSSIP_JOIN = 0,          /* Join(Option<PeerData>) */
    IROHDS_GOSSIP_FORWARD_JOIN = 1,  /* ForwardJoin { peer: PeerInfo, ttl } */
    IROHDS_GOSSIP_SHUFFLE = 2,       /* Shuffle { origin, nodes, ttl } */
    IROHDS_GOSSIP_SHUFFLE_REPLY = 3, /* ShuffleReply { nodes } */
    IROHDS_GOSSIP_NEIGHBOR = 4,      /* Neighbor { priority, data } */
    IROHDS_GOSSIP_DISCONNECT = 5,    /* Disconnect { alive, _respond } */
    IROHDS_GOSSIP_GOSSIP = 16,       /* Gossip { id, content, scope } */
    IROHDS_GOSSIP_PRUNE = 17,        /* Prune */
    IROHDS_GOSSIP_GRAFT = 18,        /* Graft { id: Option, round } */
    IROHDS_GOSSIP_IHAVE = 19,        /* IHave(Vec<{ id, round }>) */
} irohds_gossip_kind;

typedef enum irohds_gossip_priority {
    IROHDS_GOSSIP_HIGH = 0,
    IROHDS_GOSSIP_LOW = 1,
} irohds_gossip_priority;

/* DeliveryScope on the wire (Swarm carries the round); Scope in broadcast(). */
typedef enum irohds_gossip_scope {
    IROHDS_GOSSIP_SCOPE_SWARM = 0,
    IROHDS_GOSSIP_SCOPE_NEIGHBORS = 1,
} irohds_gossip_scope;

/* Option<PeerData>: ptr == NULL is None (len 0 with a ptr is Some(empty)). */
typedef struct irohds_gossip_data {
    const uint8_t *ptr;
    size_t len;
} irohds_gossip_data;

typedef struct irohds_gossip_peer_info {
    const uint8_t *id; /* 32 bytes */
    irohds_gossip_data data;
} irohds_gossip_peer_info;

typedef struct irohds_gossip_ihave {
    const uint8_t *id; /* 32 bytes */
    uint16_t round;
} irohds_gossip_ihave;

/*
 * One topic::Message.  Which fields count depends on kind; the rest are
 * zero after decode and ignored by encode.  Pointers refer to the decoded
 * buffer (or, to encode, to whatever the caller holds).
 */
typedef struct irohds_gossip_msg {
    irohds_gossip_kind kind;
    irohds_gossip_peer_info peer;    /* FORWARD_JOIN; JOIN and NEIGHBOR use peer.data */
    uint16_t ttl;                    /* FORWARD_JOIN, SHUFFLE */
    const uint8_t *origin;           /* SHUFFLE */
    irohds_gossip_priority priority; /* NEIGHBOR */
    bool alive, respond;             /* DISCONNECT */
    const uint8_t *id;               /* GOSSIP; GRAFT (NULL = None) */
    const uint8_t *content;          /* GOSSIP */
    size_t content_len;
    irohds_gossip_scope scope; /* GOSSIP */
    uint16_t round;            /* GOSSIP with SCOPE_SWARM, GRAFT */
    size_t n_nodes;            /* SHUFFLE, SHUFFLE_REPLY */
    irohds_gossip_peer_info nodes[IROHDS_GOSSIP_MAX_NODES];
    size_t n_ihave; /* IHAVE */
    irohds_gossip_ihave ihave[IROHDS_GOSSIP_MAX_IHAVE];
} irohds_gossip_msg;

/*
 * Decode one frame body.  0, or -EPROTO (truncated, trailing bytes, bad
 * bool/option tag, unknown variant), -EOVERFLOW (a varint or count out of
 * range), -EBADMSG (Gossip id != BLAKE3(content)).  On error *m is zeroed.
 */
int irohds_gossip_decode(irohds_gossip_msg *m, const void *buf, size_t len);

/* Encode *m into buf (no length prefix).  *len gets the size the encoding
 * needs, also when it does not fit (-ENOBUFS).  -EINVAL for a bad kind or
 * count. */
int irohds_gossip_encode(const irohds_gossip_msg *m, void *buf, size_t cap, size_t *len);

/* Encode *m as one frame (u32 big-endian length + body).  -EMSGSIZE when
 * the body is not smaller than max_body (iroh's writer refuses that too). */
int irohds_gossip_frame_encode(const irohds_gossip_msg *m, size_t max_body, void *buf,
                               size_t cap, size_t *len);

/* The first frame of a topic stream: StreamHeader { topic_id }: 36 bytes. */
#define IROHDS_GOSSIP_STREAM_HEADER_LEN (IROHDS_GOSSIP_FRAME_HEADER + IROHDS_GOSSIP_ID_LEN)
void irohds_gossip_stream_header(uint8_t out[IROHDS_GOSSIP_STREAM_HEADER_LEN],
                                 const uint8_t topic[IROHDS_GOSSIP_ID_LEN]);
/* Decode a StreamHeader frame body (exactly 32 bytes). */
int irohds_gossip_stream_header_decode(const void *body, size_t len,
                                       uint8_t topic[IROHDS_GOSSIP_ID_LEN]);

/*
 * Streaming frame reader: feed bytes as they arrive.  feed() consumes up to
 * n bytes and returns how many, stopping after a complete frame, which it
 * points *frame at (valid until the next feed; *frame is NULL while a frame
 * is incomplete).  A length above max is refused with -EMSGSIZE, and the
 * reader stays failed: the stream must be dropped.
 */
typedef struct irohds_gossip_frame_reader {
    size_t max;
    uint8_t hdr[IROHDS_GOSSIP_FRAME_HEADER];
    size_t hdr_len;
    size_t body_len, have;
    int err;
    uint8_t body[IROHDS_GOSSIP_MAX_MESSAGE_SIZE];
} irohds_gossip_frame_reader;

/* max: at most IROHDS_GOSSIP_MAX_MESSAGE_SIZE (0 means that). */
void irohds_gossip_frame_reader_init(irohds_gossip_frame_reader *r, size_t max);
ssize_t irohds_gossip_frame_reader_feed(irohds_gossip_frame_reader *r, const void *p, size_t n,
                                        const uint8_t **frame, size_t *frame_len);

/*
 * AddrInfo, what iroh-gossip's net layer puts in PeerData:
 * { relay_url: Option<String>, direct_addresses: BTreeSet<SocketAddr> },
 * SocketAddr = V4([u8;4], port) | V6([u8;16], port).  Decoding accepts any
 * order (as serde's BTreeSet does) and leaves addrs sorted and without
 * duplicates; encoding sorts a copy.  Empty PeerData decodes as the
 * default (no relay, no addresses), as iroh does.
 */
typedef struct irohds_gossip_sockaddr {
    bool v6;
    uint8_t ip[16]; /* 4 bytes used when !v6 */
    uint16_t port;
} irohds_gossip_sockaddr;

typedef struct irohds_gossip_addr_info {
    const char *relay_url; /* NULL = None; UTF-8, not NUL-terminated */
    size_t relay_url_len;
    size_t n_addrs;
    irohds_gossip_sockaddr addrs[IROHDS_GOSSIP_MAX_ADDRS];
} irohds_gossip_addr_info;

int irohds_gossip_addr_info_decode(irohds_gossip_addr_info *a, const void *buf, size_t len);
int irohds_gossip_addr_info_encode(const irohds_gossip_addr_info *a, void *buf, size_t cap,
                                   size_t *len);
/* Rust's Ord on SocketAddr: V4 before V6, then ip bytes, then port. */
int irohds_gossip_sockaddr_cmp(const irohds_gossip_sockaddr *a, const irohds_gossip_sockaddr *b);

/* ======================================================== state machine */

typedef struct irohds_gossip_config {
    /* HyParView (defaults from the paper, as iroh-gossip uses them) */
    unsigned active_view_capacity;        /* 5 */
    unsigned passive_view_capacity;       /* 30 */
    uint16_t active_random_walk_length;   /* 6 */
    uint16_t passive_random_walk_length;  /* 3 */
    uint16_t shuffle_random_walk_length;  /* 6 */
    unsigned shuffle_active_view_count;   /* 3 */
    unsigned shuffle_passive_view_count;  /* 4 */
    uint64_t shuffle_interval_ms;         /* 60000 */
    uint64_t neighbor_request_timeout_ms; /* 500 */
    /* PlumTree */
    uint64_t graft_timeout_1_ms;         /* 80 */
    uint64_t graft_timeout_2_ms;         /* 40 */
    uint64_t dispatch_timeout_ms;        /* 5: IHave batching */
    uint16_t optimization_threshold;     /* 7 rounds */
    uint64_t message_cache_retention_ms; /* 30000 */
    uint64_t message_id_retention_ms;    /* 90000 */
    uint64_t cache_evict_interval_ms;    /* 1000 */
    /* bounds (ours) */
    size_t max_message_size;    /* 4096: largest frame body */
    unsigned max_topics;        /* 64 */
    size_t seen_capacity;       /* 16384 message ids remembered per topic */
    size_t cache_max_bytes;     /* 8 MiB of content kept for grafts, per topic */
    size_t missing_capacity;    /* 1024 ids announced but not yet received, per topic */
    unsigned peer_msgs_per_sec; /* 2000 frames a peer may send us per topic and second */
    size_t peer_bytes_per_sec;  /* 4 MiB the same */
    size_t queue_max_actions;   /* 65536 undrained actions */
    size_t queue_max_bytes;     /* 64 MiB of undrained action bytes */
} irohds_gossip_config;

void irohds_gossip_config_default(irohds_gossip_config *c);

/* A bootstrap peer: its id and, optionally, its PeerData (data == NULL: none). */
typedef struct irohds_gossip_peer {
    uint8_t id[IROHDS_GOSSIP_ID_LEN];
    const uint8_t *data;
    size_t data_len;
} irohds_gossip_peer;

typedef enum irohds_gossip_action_type {
    /* Write data (one whole frame) on our uni stream for (peer, topic),
     * opening stream and connection first if needed (a new stream starts
     * with irohds_gossip_stream_header).  last: the frame is a Disconnect;
     * finish the stream after it. */
    IROHDS_GOSSIP_ACT_SEND = 1,
    /* This topic is done with peer: finish our stream for (peer, topic).
     * conn_idle: no joined topic uses the peer any more, so the connection
     * may close too. */
    IROHDS_GOSSIP_ACT_DISCONNECT,
    /* Content broadcast on topic, received from peer (the previous hop,
     * not the origin), with its scope and (SCOPE_SWARM) round.  Each
     * message id is delivered at most once. */
    IROHDS_GOSSIP_ACT_DELIVER,
    IROHDS_GOSSIP_ACT_NEIGHBOR_UP,   /* peer joined topic's active view */
    IROHDS_GOSSIP_ACT_NEIGHBOR_DOWN, /* peer left it */
    /* New PeerData (postcard AddrInfo in iroh's net layer) for peer: how to
     * dial it.  topic is the topic it was learnt on. */
    IROHDS_GOSSIP_ACT_PEER_DATA,
} irohds_gossip_action_type;

typedef struct irohds_gossip_action {
    irohds_gossip_action_type type;
    uint8_t topic[IROHDS_GOSSIP_ID_LEN];
    uint8_t peer[IROHDS_GOSSIP_ID_LEN];
    const uint8_t *data; /* SEND: frame; DELIVER: content; PEER_DATA: PeerData */
    size_t len;
    bool last;      /* SEND */
    bool conn_idle; /* DISCONNECT */
    irohds_gossip_scope scope;
    uint16_t round;
} irohds_gossip_action;

typedef struct irohds_gossip_stats {
    size_t active, passive;             /* view sizes now */
    size_t seen_ids, cached_messages;   /* PlumTree tables now */
    size_t cached_bytes, missing;
    uint64_t delivered;                 /* DELIVER actions */
    uint64_t duplicates;                /* Gossip received for an id already seen */
    uint64_t grafts, prunes;            /* tree repairs we asked for */
    uint64_t frames_received, frames_sent;
    uint64_t dropped_invalid;           /* frames that failed to decode */
    uint64_t dropped_budget;            /* frames over a peer's budget */
    uint64_t dropped_bounds;            /* entries refused or evicted early by a table bound */
    uint64_t dropped_actions;           /* actions lost to a full queue (whole instance) */
} irohds_gossip_stats;

typedef struct irohds_gossip irohds_gossip;

/* me: our peer id.  cfg NULL: defaults.  seed: the PRNG seed.
 * -EINVAL for a config out of range, -ENOMEM. */
int irohds_gossip_init(irohds_gossip **out, const uint8_t me[IROHDS_GOSSIP_ID_LEN],
                       const irohds_gossip_config *cfg, uint64_t seed);
void irohds_gossip_free(irohds_gossip *g);

/* Our PeerData (copied), sent in Join, Neighbor and Shuffle.  -EMSGSIZE
 * above IROHDS_GOSSIP_MAX_PEER_DATA. */
int irohds_gossip_set_peer_data(irohds_gossip *g, const void *data, size_t len);

/*
 * Events.  Each first runs the timers due at now.  All copy what they
 * need; the caller keeps ownership of its buffers.
 */

/* Join topic (creating its state) and send Join to each bootstrap peer,
 * which is also kept as a spare in the passive view.  No peers: wait to
 * be joined.  -ENOSPC past max_topics. */
int irohds_gossip_join(irohds_gossip *g, uint64_t now, const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                       const irohds_gossip_peer *peers, size_t n);
/* Leave topic: Disconnect every neighbour, drop the state.  -ENOENT. */
int irohds_gossip_quit(irohds_gossip *g, uint64_t now, const uint8_t topic[IROHDS_GOSSIP_ID_LEN]);
/* Broadcast content (not delivered to ourselves).  -ENOENT, -EMSGSIZE when
 * the Gossip frame would exceed max_message_size (see max_content). */
int irohds_gossip_broadcast(irohds_gossip *g, uint64_t now,
                            const uint8_t topic[IROHDS_GOSSIP_ID_LEN], const void *content,
                            size_t len, irohds_gossip_scope scope);
size_t irohds_gossip_max_content(const irohds_gossip *g);
/* A frame body read from peer from on its stream for topic.  -ENOENT (not
 * joined: drop the stream), a decode error (drop the stream), -EAGAIN
 * (over the peer's budget: dropped), else 0. */
int irohds_gossip_handle_frame(irohds_gossip *g, uint64_t now,
                               const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                               const uint8_t from[IROHDS_GOSSIP_ID_LEN], const void *body,
                               size_t len);
/* The same for an already decoded message: m must be as
 * irohds_gossip_decode leaves it (every pointer valid for its kind); its
 * Gossip id is checked again. */
int irohds_gossip_handle_msg(irohds_gossip *g, uint64_t now,
                             const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                             const uint8_t from[IROHDS_GOSSIP_ID_LEN], const irohds_gossip_msg *m);
/*
 * Forget that the content with this id arrived on topic (its cached copy
 * too): a copy or an IHave that comes later is handled as new, and
 * delivered.  For an application that refused a delivery for the way it
 * came (the neighbour that relayed it was over its budget) rather than for
 * what it is, so that the content can still arrive through another
 * neighbour.  -ENOENT when topic or id is unknown.
 */
int irohds_gossip_forget(irohds_gossip *g, uint64_t now, const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                         const uint8_t id[IROHDS_GOSSIP_ID_LEN]);
/* The connection to peer is gone (closed, failed to dial, timed out). */
void irohds_gossip_peer_disconnected(irohds_gossip *g, uint64_t now,
                                     const uint8_t peer[IROHDS_GOSSIP_ID_LEN]);
/* Run the timers due at now. */
void irohds_gossip_timeout(irohds_gossip *g, uint64_t now);
/* When to call irohds_gossip_timeout next: an absolute time >= now, or
 * UINT64_MAX with no topic joined. */
uint64_t irohds_gossip_next_deadline(const irohds_gossip *g, uint64_t now);

/* Pop the oldest action into *a; false when none.  a->data stays valid
 * until the next poll or free. */
bool irohds_gossip_poll(irohds_gossip *g, irohds_gossip_action *a);

/* The active view of topic into out (at most max ids); returns its size.
 * 0 for a topic not joined. */
size_t irohds_gossip_neighbors(const irohds_gossip *g, const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                               uint8_t (*out)[IROHDS_GOSSIP_ID_LEN], size_t max);
int irohds_gossip_stats_get(const irohds_gossip *g, const uint8_t topic[IROHDS_GOSSIP_ID_LEN],
                            irohds_gossip_stats *st);

#endif
