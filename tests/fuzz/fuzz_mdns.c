/*
 * fuzz_mdns: an mDNS instance fed arbitrary datagrams.
 *
 * One long-lived instance (so peers, pending answers and schedules pile up
 * across inputs as on a busy LAN) receives each input as a datagram; the
 * first byte picks the source port (5353 or a legacy port) and how far the
 * clock moves before periodic() runs.  Whatever comes in: no memory error,
 * no undefined behaviour, the deadline lies in the future, every packet we
 * emit is a well-formed DNS message that fits IROHDS_MDNS_PKT_MAX, and
 * every event's peer is within its bounds.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <sodium.h>

#include "mdns/mdns.h"

static irohds_mdns *m;
static int64_t now;

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    uint8_t pk[32], sk[64], seed[32] = {1};
    if (sodium_init() < 0)
        return 1;
    crypto_sign_seed_keypair(pk, sk, seed);
    static const char *const ns[] = {"alpha", "a,b%c", ""};
    irohds_dns_addr a[2] = {{.family = 4, .ip = {10, 0, 0, 1}},
                            {.family = 6, .ip = {0xfe, 0x80, [15] = 1}}};
    irohds_mdns_cfg cfg = {.port = 4433, .addrs = a, .n_addrs = 2, .ns = ns, .n_ns = 3,
                           .relay = "https://relay.example./", .ttl_s = 10, .seed = 42};
    memcpy(cfg.id, pk, 32);
    m = irohds_mdns_new(&cfg);
    return m == NULL;
}

static void drain(void)
{
    irohds_mdns_packet pkt;
    irohds_mdns_event ev;
    while (irohds_mdns_next_packet(m, &pkt))
        if (pkt.len > IROHDS_MDNS_PKT_MAX || irohds_dns_check(pkt.data, pkt.len) != 0)
            __builtin_trap();
    while (irohds_mdns_next_event(m, &ev)) {
        const irohds_mdns_peer *p = &ev.peer;
        if (p->n_addrs > IROHDS_MDNS_ADDRS_MAX || p->n_ns > IROHDS_MDNS_NS_MAX ||
            memchr(p->relay, 0, sizeof p->relay) == NULL)
            __builtin_trap();
        for (size_t i = 0; i < p->n_ns; i++) {
            size_t len;
            const char *s = irohds_mdns_peer_ns(p, i, &len);
            if (!s || s + len > p->ns_buf + sizeof p->ns_buf)
                __builtin_trap();
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    irohds_dns_addr from = {.family = 4, .ip = {10, 0, 0, 9},
                            .port = (data[0] & 1) ? 40000 : IROHDS_MDNS_PORT};
    now += (data[0] >> 1) * 50; /* up to 6.35 s per input */
    irohds_mdns_receive(m, now, data + 1, size - 1, &from);
    drain();
    int64_t d = irohds_mdns_periodic(m, now);
    if (d <= now)
        __builtin_trap();
    drain();
    return 0;
}
