/*
 * mdns_int.h: the state shared by the mdns files (not an API).
 *
 *   mdns.c      the state machine: schedule, queries in, peers, queues
 *   records.c   our records: names, the TXT record, the packets we send
 *   sighting.c  reading others' responses into sightings
 */
#ifndef IROHDS_MDNS_INT_H
#define IROHDS_MDNS_INT_H

#include "mdns/mdns.h"

#define PKT_QUEUE 16
#define EVENT_QUEUE 64
#define OWN_QIDS 4
#define NS_STRINGS 4 /* ns=, ns1=, ns2=, ns3= */

/* Which of our records a packet carries (in one section). */
enum {
    REC_PTR = 1,  /* _irohv1._udp.local PTR <instance> */
    REC_SRV = 2,  /* <instance> SRV */
    REC_TXT = 4,  /* <instance> TXT */
    REC_ADDR = 8, /* <host> A / AAAA */
    REC_ENUM = 16 /* _services._dns-sd._udp.local PTR _irohv1._udp.local */
};

typedef struct peer_entry {
    bool used, goodbye;
    irohds_mdns_peer info;
    int64_t seen_ms, life_ms, expires_ms;
    int64_t refresh_ms; /* next refresh query; INT64_MAX when done */
    int refresh_stage;  /* refresh queries sent for this sighting */
} peer_entry;

/* What one response says about one instance. */
#define SIGHT_MAX 8
#define SIGHT_SRV_MAX 4
typedef struct sighting {
    uint8_t id[32];
    bool goodbye, have_txt;
    uint32_t min_ttl;
    unsigned n_srv;
    struct {
        irohds_dns_name target;
        uint16_t port;
        uint32_t ttl;
    } srv[SIGHT_SRV_MAX];
    irohds_mdns_peer info; /* addrs, relay, ns */
    uint8_t ns_len[NS_STRINGS];
    bool ns_seen[NS_STRINGS];
    char ns_raw[NS_STRINGS][256];
} sighting;

struct irohds_mdns {
    uint8_t id[32];
    uint16_t port;
    uint32_t ttl_s, query_max_ms;
    char relay[IROHDS_PKARR_RELAY_MAX + 1];
    irohds_dns_name svc, inst, host, enum_name;

    size_t n_addrs, n_removed;
    irohds_dns_addr addrs[IROHDS_MDNS_ADDRS_MAX];
    irohds_dns_addr removed[IROHDS_MDNS_ADDRS_MAX]; /* announced once with TTL 0 */
    uint8_t txt[NS_STRINGS * 256 + 256];
    size_t txt_len;

    uint64_t rng;
    int64_t next_query_ms;
    uint32_t query_interval_ms;
    int announce_left;
    int64_t next_announce_ms;
    int64_t response_ms; /* pending multicast answer, -1 none */
    unsigned response_mask;
    int64_t last_multicast_ms;
    uint16_t own_qid[OWN_QIDS];
    int64_t own_qid_ms[OWN_QIDS];
    unsigned own_qid_next;

    peer_entry peers[IROHDS_MDNS_PEERS_MAX];
    irohds_mdns_packet pkts[PKT_QUEUE];
    unsigned pkt_head, pkt_count;
    irohds_mdns_event events[EVENT_QUEUE];
    unsigned ev_head, ev_count;
    sighting sights[SIGHT_MAX];
    unsigned n_sights;
    irohds_mdns_stats stats;
};

/* records.c */
int mdns_names_init(irohds_mdns *m);
int mdns_txt_build(irohds_mdns *m, const char *const *ns, size_t n_ns);
uint64_t mdns_random(irohds_mdns *m);
/* A packet of our records: `answers` and `additional` are REC_ masks,
 * every record with the given ttl; removed addresses (TTL 0) ride along
 * in the additional section when with_removed. */
int mdns_build_response(irohds_mdns *m, irohds_mdns_packet *pkt, unsigned answers,
                        unsigned additional, uint32_t ttl, bool with_removed);
/* A legacy unicast answer: the query's id and questions, TTL <= 10 s. */
int mdns_build_legacy(irohds_mdns *m, irohds_mdns_packet *pkt, uint16_t id,
                      const irohds_dns_question *qs, size_t nq, unsigned answers);
/* Our browse query with known answers (peers with > half their life left). */
int mdns_build_query(irohds_mdns *m, irohds_mdns_packet *pkt, uint16_t qid, int64_t now_ms);

/* sighting.c: fills m->sights from a response; *own when it names us.
 * 0 or -EPROTO. */
int mdns_read_sightings(irohds_mdns *m, const uint8_t *buf, size_t len, bool *own);

#endif
