/*
 * fuzz_quic: arbitrary datagrams into a live QUIC endpoint (src/net), down
 * the path every received datagram takes: version and connection ids
 * (ngtcp2_pkt_decode_version_cid), the connection table, Initial
 * acceptance, version negotiation, stateless resets, and ngtcp2 itself for
 * whatever is routed to a connection.  The QUIC payload parsers are
 * ngtcp2's; what is ours is the routing around them, and a datagram that
 * the routing mishandles can abort the process (a Version Negotiation
 * packet with a 21-byte id once did, through ngtcp2_cid_init's assertion).
 *
 * The input is cut into datagrams: each is a 2-byte little-endian length,
 * then that many bytes (the rest, if short).  All come from one loopback
 * address, a socket of this process that is never read, so whatever the
 * endpoint answers stays on loopback and is dropped once its buffer fills.
 * After each input the loop runs once, so answers and timers run too.
 * Connections made by Initial-shaped inputs are bounded by max_conns.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sodium.h>
#include <uv.h>

#include "net/net.h"
#include "net/net_int.h"

static uv_loop_t loop;
static irohds_net_endpoint *ep;
static struct sockaddr_in from = {.sin_family = AF_INET};

static void on_closed(irohds_net_conn *c, const irohds_net_close_info *why)
{
    (void)c, (void)why;
}

static const irohds_net_callbacks CB = {.closed = on_closed};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    if (sodium_init() < 0 || uv_loop_init(&loop) != 0)
        return 1;
    static uint8_t sk[IROHDS_NET_SK_LEN], pk[crypto_sign_PUBLICKEYBYTES];
    uint8_t seed[crypto_sign_SEEDBYTES] = {7};
    crypto_sign_seed_keypair(pk, sk, seed);
    static const char *const alpns[] = {"/iroh-bytes/4"};
    irohds_net_config cfg;
    irohds_net_config_defaults(&cfg);
    cfg.secret_key = sk;
    cfg.listen = "127.0.0.1:0";
    cfg.alpns = alpns;
    cfg.n_alpns = 1;
    cfg.cb = &CB;
    cfg.max_conns = 8;
    if (irohds_net_endpoint_init(&loop, &cfg, &ep) != 0)
        return 1;
    /* The sender: a bound socket nobody reads, so replies go nowhere else. */
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    from.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t fl = sizeof from;
    if (fd < 0 || bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        getsockname(fd, (struct sockaddr *)&from, &fl) != 0)
        return 1;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    while (size >= 2) {
        size_t len = (size_t)data[0] | (size_t)data[1] << 8;
        data += 2, size -= 2;
        if (len > size)
            len = size;
        net_ep_feed(ep, data, len, (const struct sockaddr *)&from, sizeof from);
        data += len, size -= len;
    }
    uv_run(&loop, UV_RUN_NOWAIT);
    return 0;
}
