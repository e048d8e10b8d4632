/*
 * mdns: LAN discovery with iroh's mDNS records, as an I/O-free state machine.
 *
 * We advertise what iroh's mDNS address lookup (the swarm-discovery crate)
 * advertises, so iroh nodes and irohds nodes see each other:
 *
 *   _irohv1._udp.local.        PTR  <b32>._irohv1._udp.local.
 *   <b32>._irohv1._udp.local.  SRV  0 0 <port> <b32>.local.
 *   <b32>._irohv1._udp.local.  TXT  "relay=<url>" "ns=<namespaces>" ...
 *   <b32>.local.               A / AAAA, one per address
 *
 * where <b32> is the node id (Ed25519 public key) in RFC 4648 base32, lower
 * case, no padding (52 characters).  PTR, SRV and TXT go in the answer
 * section and A/AAAA in the additional section: that is where
 * swarm-discovery looks for them.  The TXT record adds to iroh's `relay=`
 * the namespaces this node serves (`ns=`, comma-separated, ',' and '%'
 * escaped as %2C and %25; `ns1=` .. `ns3=` continue a list too long for one
 * string).  docs/discovery-records.md has the records byte by byte and the
 * reasons for each deviation from RFC 6762.
 *
 * The host owns the sockets and the clock (jech/dht style).  It joins
 * 224.0.0.251 and ff02::fb on port 5353 and then:
 *
 *     m = irohds_mdns_new(&cfg);                      // cfg.now_ms = now
 *     loop:
 *       on datagram: irohds_mdns_receive(m, now, buf, len, &from);
 *       deadline = irohds_mdns_periodic(m, now);       // after any call
 *       while (irohds_mdns_next_packet(m, &pkt)) send pkt.data to
 *           pkt.unicast ? pkt.to : the group (224.0.0.251 / ff02::fb : 5353);
 *       while (irohds_mdns_next_event(m, &ev)) act on ev;
 *       sleep until deadline or the next datagram
 *     irohds_mdns_goodbye(m, now); send the packets; irohds_mdns_free(m);
 *
 * Times are milliseconds on any monotonic clock.  Randomness (response
 * jitter, query ids) comes from cfg.seed, so a run is reproducible.
 *
 * Behaviour (RFC 6762 where it fits, swarm-discovery's cadence in spirit):
 *   - at start and after every change of addresses, port or namespaces:
 *     two announcements one second apart; no probing (names derive from
 *     our public key and cannot clash);
 *   - queries for PTR _irohv1._udp.local. 20-120 ms after start, then after
 *     1, 2, 4, ... s up to cfg.query_max_ms; plus refresh queries for known
 *     peers at 80/85/90/95 % of their lifetime (RFC 6762 §5.2), carrying
 *     known answers (peers with more than half their lifetime left);
 *   - answers to queries for our names after 20-120 ms, multicast no more
 *     than once a second; QU questions get a unicast answer when we
 *     multicast within the last quarter TTL; legacy queries (source port
 *     not 5353) get a unicast answer echoing id and questions, TTL <= 10 s;
 *     a browse query listing our PTR with at least half its TTL is not
 *     answered (known-answer suppression);
 *   - a response naming an instance with an SRV and an address is a
 *     sighting: PEER_SEEN when the peer is new or its addresses, port,
 *     relay or namespaces changed; it lives for the smallest TTL of the
 *     records used, or IROHDS_MDNS_COMPAT_TTL_S when that is 0
 *     (swarm-discovery sends TTL 0 and ages peers itself); PEER_GONE when
 *     that runs out;
 *   - a PTR for an instance with TTL 0 is a goodbye: PEER_GONE one second
 *     later (RFC 6762 §10.1) unless the peer shows up again;
 *   - our own packets (multicast loops back) are recognised and ignored:
 *     responses by our instance and host names, queries by the random id we
 *     put in them (RFC 6762 §18.1 asks for 0; responders must ignore it);
 *   - other services' traffic (avahi, printers, ...) parses and is ignored;
 *     malformed packets are dropped and counted.
 *
 * mDNS is unauthenticated: a sighting says "someone on the LAN claims this
 * id at these addresses".  Trust an id only after the QUIC handshake proves
 * it (raw public key TLS).
 *
 * Ownership: irohds_mdns_new copies cfg (and what it points to); the
 * instance owns its queues; packets and events are copied out to the
 * caller's structs.  Not thread-safe: one thread drives it.
 * Errors are negative errno values (-EINVAL, -EMSGSIZE, -ENOMEM, -EPROTO).
 */
#ifndef IROHDS_MDNS_H
#define IROHDS_MDNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dns/dns.h"

#define IROHDS_MDNS_PORT 5353
#define IROHDS_MDNS_PKT_MAX 1440    /* every packet we send fits IPv6 in a 1500 MTU */
#define IROHDS_MDNS_ADDRS_MAX 8     /* our addresses, and a peer's */
#define IROHDS_MDNS_NS_MAX 32       /* namespaces advertised / kept per peer */
#define IROHDS_MDNS_NS_LEN_MAX 127  /* bytes of one namespace name */
#define IROHDS_MDNS_NS_BYTES 1024   /* all namespace names of a peer */
#define IROHDS_MDNS_PEERS_MAX 256
#define IROHDS_MDNS_TTL_S 120       /* default TTL of our records */
#define IROHDS_MDNS_QUERY_MAX_MS 60000
#define IROHDS_MDNS_COMPAT_TTL_S 20 /* lifetime of a TTL-0 (swarm-discovery) sighting */

typedef struct irohds_mdns_cfg {
    uint8_t id[32];               /* our node id */
    uint16_t port;                /* our QUIC port, advertised in the SRV record */
    const irohds_dns_addr *addrs; /* our IPs (ports ignored); none: we only listen */
    size_t n_addrs;
    const char *const *ns;        /* namespaces we serve (UTF-8, <= 127 bytes each) */
    size_t n_ns;
    const char *relay;            /* relay URL for iroh's relay= attribute, or NULL */
    uint32_t ttl_s;               /* 0: IROHDS_MDNS_TTL_S */
    uint32_t query_max_ms;        /* 0: IROHDS_MDNS_QUERY_MAX_MS; at least 1000 */
    uint64_t seed;                /* randomness; give each instance its own */
    int64_t now_ms;               /* the time of creation */
} irohds_mdns_cfg;

typedef struct irohds_mdns irohds_mdns;

/* NULL with errno set: EINVAL (a field out of range, a record set that does
 * not fit a packet), ENOMEM. */
irohds_mdns *irohds_mdns_new(const irohds_mdns_cfg *cfg);
void irohds_mdns_free(irohds_mdns *m);

/* A datagram from the mDNS socket (from: its source address and port).
 * 0 when used or ignored, -EPROTO when malformed (dropped). */
int irohds_mdns_receive(irohds_mdns *m, int64_t now_ms, const uint8_t *buf, size_t len,
                        const irohds_dns_addr *from);

/* Do what is due; returns the time the instance next wants to run. */
int64_t irohds_mdns_periodic(irohds_mdns *m, int64_t now_ms);

/* Change what we advertise; re-announces.  Removed addresses are announced
 * with TTL 0.  No address: a goodbye, then silence until addresses return.
 * -EINVAL / -EMSGSIZE leave the old values in place. */
int irohds_mdns_set_addrs(irohds_mdns *m, int64_t now_ms, uint16_t port,
                          const irohds_dns_addr *addrs, size_t n);
int irohds_mdns_set_ns(irohds_mdns *m, int64_t now_ms, const char *const *ns, size_t n);

/* Queue goodbye packets (all our records with TTL 0) and stop advertising. */
void irohds_mdns_goodbye(irohds_mdns *m, int64_t now_ms);

/* ------------------------------------------------------------ output */

typedef struct irohds_mdns_packet {
    bool unicast;       /* false: to the group, port 5353 */
    irohds_dns_addr to; /* unicast destination */
    size_t len;
    uint8_t data[IROHDS_MDNS_PKT_MAX];
} irohds_mdns_packet;

/* The oldest queued packet; false when none.  At most 16 wait: drain after
 * every call (overflow drops the newest, counted in stats). */
bool irohds_mdns_next_packet(irohds_mdns *m, irohds_mdns_packet *out);

/* A peer as last seen.  Namespace i is ns_buf + ns_off[i], ns_len[i]
 * bytes (irohds_mdns_peer_ns); n_ns == 0 for a node that serves none, like
 * a plain iroh node. */
typedef struct irohds_mdns_peer {
    uint8_t id[32];
    uint16_t port; /* of its first SRV record */
    size_t n_addrs;
    irohds_dns_addr addrs[IROHDS_MDNS_ADDRS_MAX];
    char relay[IROHDS_PKARR_RELAY_MAX + 1];
    size_t n_ns;
    uint16_t ns_off[IROHDS_MDNS_NS_MAX];
    uint8_t ns_len[IROHDS_MDNS_NS_MAX];
    char ns_buf[IROHDS_MDNS_NS_BYTES];
} irohds_mdns_peer;

enum irohds_mdns_event_kind {
    IROHDS_MDNS_PEER_SEEN = 1, /* new, or its addresses/port/relay/namespaces changed */
    IROHDS_MDNS_PEER_GONE = 2, /* goodbye received, or its lifetime ran out */
};

typedef struct irohds_mdns_event {
    enum irohds_mdns_event_kind kind;
    bool goodbye; /* GONE: the peer said goodbye */
    irohds_mdns_peer peer;
} irohds_mdns_event;

/* The oldest queued event; false when none (at most 64 wait). */
bool irohds_mdns_next_event(irohds_mdns *m, irohds_mdns_event *out);

/* Namespace i of a peer (not NUL-terminated), NULL past the end. */
const char *irohds_mdns_peer_ns(const irohds_mdns_peer *p, size_t i, size_t *len);

typedef struct irohds_mdns_stats {
    uint64_t received, malformed, own, foreign; /* foreign: nothing for us in it */
    uint64_t queries_sent, responses_sent;
    uint64_t packets_dropped, events_dropped, peers_full;
} irohds_mdns_stats;

const irohds_mdns_stats *irohds_mdns_get_stats(const irohds_mdns *m);

#endif
