/*
 * dht: a BitTorrent mainline DHT node (BEP 5, 32, 42, 43, 44) as an I/O-free
 * core, in the manner of jech/dht.  The daemon uses it to find the peers of
 * a namespace (get_peers / announce_peer on an info-hash) and to publish and
 * resolve pkarr address records (BEP 44 mutable items, no salt, target
 * SHA-1(public key)).  docs/dht.md lists what we implement, the parameters
 * and how the daemon drives it.
 *
 * The library never touches a socket or a clock.  The caller hands in each
 * UDP datagram with the time (irohds_dht_receive) and calls
 * irohds_dht_periodic when the deadline it returned comes; both only queue
 * work: datagrams to send (irohds_dht_next_packet) and events for searches
 * the caller started (irohds_dht_next_event).  Randomness comes from a
 * ChaCha20 stream keyed by a seed the caller draws once (randombytes_buf),
 * so a run with a fixed seed and clock is repeatable.  One instance speaks
 * one address family (libtorrent does the same, one node per socket): run
 * two for IPv4 and IPv6.
 *
 * Four parts, one header:
 *   - bencode: a strict, bounded decoder into a flat tree that points into
 *     the input, and a writer that refuses dict keys out of order.
 *   - KRPC: one struct for every message we know, decode and encode, and
 *     compact node/peer info.
 *   - helpers: SHA-1, CRC32C, BEP 42 node ids, BEP 44 items.
 *   - the node: routing table, answers to queries, searches, storage.
 *
 * Errors are negative errno values.  Node ids are 20 bytes.  Times are
 * milliseconds on any monotonic clock (uint64_t now_ms); a time older than
 * one passed in before counts as that one (the core's clock never goes
 * back, so a caller may read its clock once per turn).
 */
#ifndef IROHDS_DHT_H
#define IROHDS_DHT_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define IROHDS_DHT_ID_LEN 20
#define IROHDS_DHT_K 8           /* bucket size and replication factor */
#define IROHDS_DHT_KEY_LEN 32    /* Ed25519 public key */
#define IROHDS_DHT_SIG_LEN 64    /* Ed25519 signature */
#define IROHDS_DHT_MAX_V 1000    /* bencoded BEP 44 "v", bytes */
#define IROHDS_DHT_MAX_SALT 64   /* BEP 44 salt, bytes */
#define IROHDS_DHT_MAX_PACKET 4096 /* longer datagrams are dropped unread */
#define IROHDS_DHT_MAX_TID 32    /* longer transaction ids are refused */
#define IROHDS_DHT_TOKEN_MAX 32  /* longer write tokens from others are refused */

/* ============================================================= bencode */

typedef enum irohds_benc_type {
    IROHDS_BENC_INT = 1,
    IROHDS_BENC_STR,
    IROHDS_BENC_LIST,
    IROHDS_BENC_DICT,
} irohds_benc_type;

/*
 * One decoded value.  The nodes of a decode are the values in pre-order; a
 * list's elements follow it, a dict's key (a STR node) and value alternate
 * after it.  next skips a whole subtree, so a walk over a container's
 * children is i = idx + 1, then i = nodes[i].next.
 */
typedef struct irohds_benc_node {
    irohds_benc_type type;
    uint32_t off, len; /* the value's encoding is buf[off, off + len) */
    uint32_t next;     /* index of the first node after this subtree */
    uint32_t count;    /* LIST: elements; DICT: key/value pairs */
    int64_t i;         /* INT */
    const uint8_t *s;  /* STR: the bytes, inside the input */
    size_t slen;
} irohds_benc_node;

typedef struct irohds_benc {
    const uint8_t *buf;
    size_t len;
    irohds_benc_node *nodes; /* the caller's array */
    size_t n, cap;
} irohds_benc;

#define IROHDS_BENC_MAX_DEPTH 32

/*
 * Decode exactly one value that fills all of buf, into the caller's nodes
 * array (cap entries); node 0 is the top value.  Only the canonical form is
 * accepted, as BEP 5 peers expect: dict keys strictly ascending as raw
 * bytes (no duplicates), no leading zeros in integers or lengths, no "-0",
 * no empty integer, integers within int64.  The decode keeps pointers into
 * buf: it lives as long as buf does.
 *   -EBADMSG  malformed, truncated, trailing bytes or not canonical
 *   -EOVERFLOW an integer or a length does not fit
 *   -E2BIG    more than cap values
 *   -ELOOP    containers nested deeper than max_depth (<= IROHDS_BENC_MAX_DEPTH)
 */
int irohds_benc_decode(irohds_benc *d, const void *buf, size_t len, irohds_benc_node *nodes,
                       size_t cap, unsigned max_depth);

/* The index of the value under key in the dict at index dict, or -1 (also
 * when dict is not a dict). */
int irohds_benc_dict_get(const irohds_benc *d, int dict, const char *key);
/* The same, typed: false when absent or of another type. */
bool irohds_benc_dict_str(const irohds_benc *d, int dict, const char *key, const uint8_t **s,
                          size_t *len);
bool irohds_benc_dict_int(const irohds_benc *d, int dict, const char *key, int64_t *v);

/*
 * The writer: a bounded buffer, a sticky error, and the dicts it is inside.
 * Keys must be written in strictly ascending order (raw bytes) and each
 * followed by exactly one value: anything else sets err = -EINVAL.  A
 * buffer too small sets err = -ENOBUFS, but len keeps counting, so it ends
 * as the size the encoding needs.
 */
typedef struct irohds_benc_writer {
    uint8_t *buf;
    size_t cap, len;
    int err;
    unsigned depth;
    struct irohds_benc_level {
        bool dict;
        bool want_value; /* a key was written, its value not yet */
        bool has_key;
        size_t key_off, key_len; /* the last key, inside buf */
    } lv[IROHDS_BENC_MAX_DEPTH];
} irohds_benc_writer;

void irohds_benc_writer_init(irohds_benc_writer *w, void *buf, size_t cap);
void irohds_benc_int(irohds_benc_writer *w, int64_t v);
void irohds_benc_str(irohds_benc_writer *w, const void *s, size_t len);
void irohds_benc_cstr(irohds_benc_writer *w, const char *s);
void irohds_benc_list(irohds_benc_writer *w);
void irohds_benc_dict(irohds_benc_writer *w);
void irohds_benc_end(irohds_benc_writer *w);
void irohds_benc_key(irohds_benc_writer *w, const char *key);
/* An already encoded value, copied verbatim (a BEP 44 "v"). */
void irohds_benc_raw(irohds_benc_writer *w, const void *enc, size_t len);
/* Re-encode the decoded value at idx (what a strict decode accepted comes
 * out byte for byte the same). */
void irohds_benc_node_encode(irohds_benc_writer *w, const irohds_benc *d, int idx);

/* ================================================================ KRPC */

/* An address in the compact form the DHT carries: IPv4 (4 bytes used) or
 * IPv6, and a port, in host order. */
typedef struct irohds_dht_addr {
    sa_family_t family; /* AF_INET or AF_INET6 */
    uint16_t port;
    uint8_t ip[16];
} irohds_dht_addr;

/* A node as compact node info carries it. */
typedef struct irohds_dht_node {
    uint8_t id[IROHDS_DHT_ID_LEN];
    irohds_dht_addr addr;
} irohds_dht_node;

int irohds_dht_addr_from_sockaddr(irohds_dht_addr *a, const struct sockaddr *sa, socklen_t len);
socklen_t irohds_dht_addr_to_sockaddr(const irohds_dht_addr *a, struct sockaddr_storage *ss);
bool irohds_dht_addr_eq(const irohds_dht_addr *a, const irohds_dht_addr *b);

/* Compact peer info: 6 bytes (IPv4) or 18 (IPv6), address then port, both
 * big-endian.  compact writes and returns 6 or 18; parse takes exactly 6 or
 * 18 bytes. */
size_t irohds_dht_addr_compact(const irohds_dht_addr *a, uint8_t *out);
bool irohds_dht_addr_parse(irohds_dht_addr *a, const uint8_t *p, size_t len);
/* Compact node info: 26 bytes per IPv4 node ("nodes"), 38 per IPv6 node
 * ("nodes6").  Parses up to max nodes of family from p; a length that is
 * not a multiple of the entry size yields none.  Returns how many. */
size_t irohds_dht_nodes_parse(const uint8_t *p, size_t len, sa_family_t family,
                              irohds_dht_node *out, size_t max);

typedef enum irohds_dht_method {
    IROHDS_DHT_M_NONE = 0, /* a response or an error */
    IROHDS_DHT_M_PING,
    IROHDS_DHT_M_FIND_NODE,
    IROHDS_DHT_M_GET_PEERS,
    IROHDS_DHT_M_ANNOUNCE_PEER,
    IROHDS_DHT_M_GET, /* BEP 44 */
    IROHDS_DHT_M_PUT,
    IROHDS_DHT_M_OTHER, /* a query whose method we do not know (q, q_len) */
} irohds_dht_method;

/* Values kept from one get_peers response; more are ignored. */
#define IROHDS_DHT_MAX_VALUES 128

/*
 * A KRPC message, decoded or to encode.  Pointers refer to the decoded
 * datagram (or, to encode, to whatever the caller holds); NULL means the
 * key is absent.  Which fields count depends on y: a query's arguments
 * ("a"), a response's fields ("r"), or an error's code and text.
 */
typedef struct irohds_dht_msg {
    char y;                 /* 'q', 'r' or 'e' */
    const uint8_t *t;       /* transaction id, at most IROHDS_DHT_MAX_TID bytes */
    size_t t_len;
    const uint8_t *version; /* top-level "v": client version */
    size_t version_len;
    const uint8_t *ip;      /* top-level "ip" (BEP 42): compact addr, 6 or 18 */
    size_t ip_len;
    bool ro;                /* top-level "ro": 1 (BEP 43 read-only sender) */
    /* query */
    irohds_dht_method method;
    const uint8_t *q; /* the method name as sent */
    size_t q_len;
    /* query arguments and response fields */
    const uint8_t *id;        /* 20 bytes; required in "a" and "r" */
    const uint8_t *target;    /* find_node, get: 20 bytes */
    const uint8_t *info_hash; /* get_peers, announce_peer: 20 bytes */
    const uint8_t *token;     /* announce_peer, put; get_peers/get responses */
    size_t token_len;
    bool has_port;
    int64_t port;
    bool implied_port; /* "implied_port": 1 */
    bool want_n4, want_n6; /* "want" (BEP 32): which lists the sender wants */
    const uint8_t *value; /* BEP 44 "v": one whole bencoded value */
    size_t value_len;
    const uint8_t *k;   /* 32 bytes */
    const uint8_t *sig; /* 64 bytes */
    const uint8_t *salt;
    size_t salt_len;
    bool has_seq, has_cas;
    int64_t seq, cas;
    /* response only */
    const uint8_t *nodes; /* compact node info, raw (not checked here) */
    size_t nodes_len;
    const uint8_t *nodes6;
    size_t nodes6_len;
    bool has_interval, has_num; /* BEP 51 sample_infohashes: "interval" (s), */
    int64_t interval, num;      /* "num" (info-hashes stored) and "samples" */
    const uint8_t *samples;     /* (20 bytes each; raw, not checked here) */
    size_t samples_len;
    bool has_values; /* "values" present (maybe empty) */
    size_t n_values; /* each is compact peer info, normally 6 or 18 bytes */
    const uint8_t *values[IROHDS_DHT_MAX_VALUES];
    size_t values_len[IROHDS_DHT_MAX_VALUES];
    /* error */
    int64_t err_code;
    const uint8_t *err_msg;
    size_t err_msg_len;
} irohds_dht_msg;

/*
 * Decode one datagram (strict bencode, at most 512 values, nesting at most
 * 16).  Checks the envelope (t, y, and q/a, r or e), that "id" is 20 bytes
 * and that every known key present has its type and, where fixed, its
 * length; unknown keys are ignored.  Which keys a method needs is the
 * node's business (it answers 203 when one is missing).  0, or a bencode
 * error, or -EPROTO; on error *m is zeroed.
 */
int irohds_dht_msg_decode(irohds_dht_msg *m, const void *buf, size_t len);
/* Encode *m, keys sorted.  *len gets the size needed even when it does not
 * fit (-ENOBUFS); -EINVAL for a bad y or method. */
int irohds_dht_msg_encode(const irohds_dht_msg *m, void *buf, size_t cap, size_t *len);
/* The method name of a known method ("ping" ...), or NULL. */
const char *irohds_dht_method_name(irohds_dht_method m);

/* ============================================================= helpers */

void irohds_dht_sha1(const void *data, size_t len, uint8_t out[20]);
/* CRC32C (Castagnoli), as BEP 42 uses it. */
uint32_t irohds_dht_crc32c(const void *data, size_t len);

/* BEP 42.  ip: 4 or 16 bytes in network order (family says which). */
/* Is ip exempt from the node-id rule (loopback, private, link-local)? */
bool irohds_dht_ip_is_local(sa_family_t family, const uint8_t *ip);
/* A node id valid for ip: the first 21 bits from CRC32C of the masked ip
 * with r = rand & 7, the last byte rand, the rest from random (20 bytes). */
void irohds_dht_id_from_ip(uint8_t id[IROHDS_DHT_ID_LEN], sa_family_t family, const uint8_t *ip,
                           uint8_t rand, const uint8_t random[IROHDS_DHT_ID_LEN]);
/* Does id obey the rule for ip?  (Local ips are not exempted here.) */
bool irohds_dht_id_matches_ip(const uint8_t id[IROHDS_DHT_ID_LEN], sa_family_t family,
                              const uint8_t *ip);

/*
 * A BEP 44 item.  Immutable: only v.  Mutable: k, sig, seq, and an optional
 * salt (salt_len 0 means none; an empty salt is the same as none).  v is the
 * bencoded value, verbatim.  Pointers are the owner's.
 */
typedef struct irohds_dht_item {
    const uint8_t *v;
    size_t v_len;
    bool is_mutable;
    uint8_t k[IROHDS_DHT_KEY_LEN];
    uint8_t sig[IROHDS_DHT_SIG_LEN];
    int64_t seq;
    const uint8_t *salt;
    size_t salt_len;
} irohds_dht_item;

/* The bytes a mutable item signs: [4:salt<len>:<salt>]3:seqi<seq>e1:v<v>.
 * Returns the length, written only if it fits cap. */
size_t irohds_dht_item_signable(const uint8_t *salt, size_t salt_len, int64_t seq,
                                const uint8_t *v, size_t v_len, uint8_t *out, size_t cap);
/* The target: SHA-1(k || salt) for a mutable item, SHA-1(v) otherwise. */
void irohds_dht_item_target(const irohds_dht_item *it, uint8_t out[IROHDS_DHT_ID_LEN]);
void irohds_dht_mutable_target(const uint8_t k[IROHDS_DHT_KEY_LEN], const uint8_t *salt,
                               size_t salt_len, uint8_t out[IROHDS_DHT_ID_LEN]);
/* Sign a mutable item: sets k and sig from sk, libsodium's 64-byte secret
 * key (seed || public key).  -EINVAL if the item fails item_check's size
 * rules. */
int irohds_dht_item_sign(irohds_dht_item *it, const uint8_t sk[64]);
/*
 * Check an item as a storing node must: v one canonical bencoded value of
 * at most IROHDS_DHT_MAX_V bytes (-EMSGSIZE if longer or empty, -EINVAL if
 * not bencode), salt at most IROHDS_DHT_MAX_SALT (-ENAMETOOLONG), seq >= 0
 * and a valid signature for a mutable one (-EBADMSG).
 */
int irohds_dht_item_check(const irohds_dht_item *it);

/* ================================================================ node */

typedef struct irohds_dht irohds_dht;

typedef struct irohds_dht_config {
    sa_family_t family;        /* AF_INET (default) or AF_INET6 */
    bool has_id;               /* use id as given */
    uint8_t id[IROHDS_DHT_ID_LEN];
    bool has_external;         /* our external address is known: without */
    uint8_t external_ip[16];   /* has_id the id is derived from it (BEP 42) */
    uint8_t seed[32];          /* the PRNG key: draw it with randombytes_buf */
    bool read_only;            /* BEP 43: answer nothing, send "ro": 1 */
    bool enforce_node_id;      /* BEP 42: no non-local node with a wrong id in
                                  the table, searches or stores (default off,
                                  as libtorrent) */
    bool follow_external_ip;   /* take a new BEP 42 id when >= 5 nodes agree
                                  on another external ip (default on) */
    /* searches */
    unsigned alpha;             /* 3: queries in flight per search (1..8) */
    unsigned max_searches;      /* 32 running at once */
    uint64_t rpc_timeout_ms;    /* 2000: a query unanswered this long failed */
    uint64_t search_timeout_ms; /* 60000: a search stops after this long */
    unsigned max_rpcs;          /* 1024 queries in flight in all */
    /* storage */
    unsigned max_torrents;        /* 2000 info-hashes */
    unsigned max_peers;           /* 100 peers per info-hash */
    uint64_t peer_ttl_ms;         /* 2 h after its last announce */
    unsigned max_items;           /* 1000 BEP 44 items */
    uint64_t item_ttl_ms;         /* 2 h after the last put */
    unsigned max_values_reply;    /* 32 peers in one get_peers reply */
    uint64_t token_rotate_ms;     /* 5 min; tokens live 1-2 periods */
    /* good citizenship */
    unsigned src_rate;            /* 20 packets/s per source ip ... */
    unsigned src_burst;           /* ... with a burst of 100 */
    unsigned src_bytes_rate;      /* 8 KiB/s of replies per destination ip ... */
    unsigned src_bytes_burst;     /* ... with a burst of 32 KiB */
    unsigned global_rate;         /* 1000 queries/s answered in all ... */
    unsigned global_burst;        /* ... with a burst of 2000 */
    unsigned src_slots;           /* 1024 source ips tracked (8..1048576) */
    size_t max_queue;             /* 4096 unsent datagrams */
    size_t max_events;            /* 4096 undrained events */
} irohds_dht_config;

void irohds_dht_config_default(irohds_dht_config *c);

/* cfg NULL: the defaults with a seed from randombytes_buf.  -EINVAL for a
 * config out of range, -ENOMEM, -EIO if sodium_init() fails. */
int irohds_dht_new(irohds_dht **out, const irohds_dht_config *cfg);
void irohds_dht_free(irohds_dht *d);
/* Our current node id (BEP 42 may change it: see IROHDS_DHT_EV_EXTERNAL). */
const uint8_t *irohds_dht_id(const irohds_dht *d);

/* A bootstrap router (copied; at most 16).  Routers seed searches while the
 * routing table is poor; they are never put in the table.  -EAFNOSUPPORT
 * for another family, -ENOSPC. */
int irohds_dht_add_router(irohds_dht *d, const struct sockaddr *sa, socklen_t len);
/* Ping a node we heard of elsewhere (a BitTorrent PORT message, a config
 * line): if it answers it joins the routing table.  -EAFNOSUPPORT, -EBUSY
 * (max_rpcs queries in flight), -ENOBUFS (the send queue is full). */
int irohds_dht_ping(irohds_dht *d, uint64_t now_ms, const struct sockaddr *sa, socklen_t len);

/*
 * One datagram received from `from`.  Answers, search progress and table
 * updates are queued.  Bad input is never an error for the caller: it is
 * dropped and counted (see stats).  Returns 0, or -EAFNOSUPPORT when from
 * is not of the instance's family.  buf is not kept.
 */
int irohds_dht_receive(irohds_dht *d, uint64_t now_ms, const void *buf, size_t len,
                       const struct sockaddr *from, socklen_t fromlen);
/* Run the timers due at now (query timeouts, searches, table upkeep, token
 * rotation, expiry).  Returns the next deadline, as next_deadline. */
uint64_t irohds_dht_periodic(irohds_dht *d, uint64_t now_ms);
/* When to call periodic next (absolute, ms).  Changes after receive and
 * after starting a search: ask again after each call. */
uint64_t irohds_dht_next_deadline(const irohds_dht *d);

/* A datagram to send.  buf is owned by the instance and valid until the
 * next call of next_packet or free. */
typedef struct irohds_dht_packet {
    const uint8_t *buf;
    size_t len;
    struct sockaddr_storage to;
    socklen_t tolen;
} irohds_dht_packet;
bool irohds_dht_next_packet(irohds_dht *d, irohds_dht_packet *p);

/* ------------------------------------------------------------ searches */

/*
 * A search is an iterative lookup of the k nodes closest to a target
 * (alpha queries in flight, closest first), then, for announce and put, a
 * store on those of them that gave a write token.  Each start returns a
 * handle (nonzero) in *handle; its events carry it, and IROHDS_DHT_EV_DONE
 * is always its last.  -ENOSPC past max_searches.
 */
int irohds_dht_find_node(irohds_dht *d, uint64_t now_ms, const uint8_t target[IROHDS_DHT_ID_LEN],
                         uint32_t *handle);
int irohds_dht_get_peers(irohds_dht *d, uint64_t now_ms,
                         const uint8_t info_hash[IROHDS_DHT_ID_LEN], uint32_t *handle);
/* get_peers, then announce_peer with port (nonzero: -EINVAL); with
 * implied_port the storing nodes take the source port of our datagrams
 * instead (BEP 5, for a port behind a NAT).  Peers found on the way are
 * reported too. */
int irohds_dht_announce(irohds_dht *d, uint64_t now_ms, const uint8_t info_hash[IROHDS_DHT_ID_LEN],
                        uint16_t port, bool implied_port, uint32_t *handle);
/* Immutable item under target: done at the first value whose SHA-1 is the
 * target. */
int irohds_dht_get_immutable(irohds_dht *d, uint64_t now_ms, const uint8_t target[IROHDS_DHT_ID_LEN],
                             uint32_t *handle);
/* Mutable item of key k with salt: every newer valid version found is
 * reported (each with a higher seq); has_seq asks nodes to send only items
 * newer than seq.  -ENAMETOOLONG for a salt too long. */
int irohds_dht_get_mutable(irohds_dht *d, uint64_t now_ms, const uint8_t k[IROHDS_DHT_KEY_LEN],
                           const uint8_t *salt, size_t salt_len, bool has_seq, int64_t seq,
                           uint32_t *handle);
/* Store an item (copied; a mutable one signed, see item_sign): a get to
 * find the closest nodes and their tokens, then put.  has_cas: send cas to
 * the nodes that returned a current item (BEP 44).  item_check errors. */
int irohds_dht_put(irohds_dht *d, uint64_t now_ms, const irohds_dht_item *item, bool has_cas,
                   int64_t cas, uint32_t *handle);
/* Stop a search; no more events for it (not even DONE).  -ENOENT. */
int irohds_dht_cancel(irohds_dht *d, uint32_t handle);

typedef enum irohds_dht_event_type {
    /* Peers for the search's info-hash (get_peers, announce), each new to
     * this search. */
    IROHDS_DHT_EV_PEERS = 1,
    /* A verified item (get_immutable, get_mutable; a mutable one newer than
     * any reported before for the search). */
    IROHDS_DHT_EV_ITEM,
    /* The store phase of announce or put is over: n_ok nodes accepted it,
     * n_failed did not (error or timeout); error is the last KRPC error
     * code received (301 cas mismatch, 302 older seq, ...), 0 if none;
     * seen_seq the highest seq a node reported for the item (-1: none). */
    IROHDS_DHT_EV_STORED,
    /* The search is over.  nodes: the (at most k) closest nodes that
     * answered.  status: 0, -ETIMEDOUT (search_timeout_ms ran out) or
     * -ENETUNREACH (no node answered at all). */
    IROHDS_DHT_EV_DONE,
    /* Nodes agree we have another external ip (ip, in external); if our id
     * did not match it and follow_external_ip is set, the node took a new
     * BEP 42 id (id_changed; irohds_dht_id gives it) and rebuilt its table. */
    IROHDS_DHT_EV_EXTERNAL,
} irohds_dht_event_type;

/* An event.  Pointers are owned by the instance and valid until the next
 * call of next_event or free. */
typedef struct irohds_dht_event {
    irohds_dht_event_type type;
    uint32_t handle;
    uint8_t target[IROHDS_DHT_ID_LEN];
    size_t n_peers; /* PEERS */
    const irohds_dht_addr *peers;
    irohds_dht_item item; /* ITEM */
    unsigned n_ok, n_failed; /* STORED */
    int error;
    int64_t seen_seq;
    size_t n_nodes; /* DONE */
    const irohds_dht_node *nodes;
    int status;
    irohds_dht_addr external; /* EXTERNAL (port 0) */
    bool id_changed;
} irohds_dht_event;
bool irohds_dht_next_event(irohds_dht *d, irohds_dht_event *ev);

/* --------------------------------------------------------- persistence */

/*
 * The routing table's live nodes as a compact blob for the data dir:
 * "IRDH", version 1, family (4 or 6), our id (20), count (u16 BE), then
 * count compact node infos.  *len gets the size needed even when it does
 * not fit (-ENOBUFS).
 */
int irohds_dht_save_nodes(const irohds_dht *d, void *buf, size_t cap, size_t *len);
/* Restore a saved blob: its nodes join the table as not yet confirmed and
 * seed the bootstrap.  -EBADMSG for a damaged blob, -EAFNOSUPPORT for
 * another family.  saved_id gets the id the blob was saved with (NULL: not
 * wanted) so the daemon can keep its id across restarts. */
int irohds_dht_load_nodes(irohds_dht *d, uint64_t now_ms, const void *buf, size_t len,
                          uint8_t saved_id[IROHDS_DHT_ID_LEN]);
/* Read only the id of a saved blob (to pass as config.id).  -EBADMSG. */
int irohds_dht_saved_id(const void *buf, size_t len, uint8_t id[IROHDS_DHT_ID_LEN]);

/* ---------------------------------------------------------- inspection */

typedef struct irohds_dht_stats {
    size_t nodes_good, nodes_questionable, nodes_bad, buckets, replacements;
    size_t torrents, peers, items;
    size_t searches, rpcs_in_flight;
    uint64_t packets_in, packets_out, bytes_in, bytes_out;
    uint64_t queries_in, replies_in, errors_in;
    uint64_t errors_sent;          /* KRPC errors we answered with */
    uint64_t dropped_malformed;    /* not a KRPC message we can read */
    uint64_t dropped_oversize;     /* longer than IROHDS_DHT_MAX_PACKET */
    uint64_t dropped_unsolicited;  /* a reply with no query of ours (spoofed, late) */
    uint64_t dropped_rate;         /* over a source's or the global budget */
    uint64_t dropped_queue;        /* datagrams or events lost to a full queue */
    uint64_t tokens_rejected;      /* announce/put with a bad or stale token */
    uint64_t bep42_mismatch;       /* non-local nodes whose id does not match their ip */
    uint64_t rpc_timeouts;
} irohds_dht_stats;
void irohds_dht_stats_get(const irohds_dht *d, irohds_dht_stats *st);

/* The routing table's nodes that are not bad and have answered us (in
 * this run or before a save): good ones closest to target first, then
 * questionable ones (or all in table order when target is NULL).  Returns
 * how many, at most max. */
size_t irohds_dht_nodes_get(const irohds_dht *d, const uint8_t *target, irohds_dht_node *out,
                            size_t max);

#endif
