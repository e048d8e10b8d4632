/*
 * fuzz_gossip: the iroh-gossip codec and state machine on arbitrary bytes.
 *
 * Codec: the whole input as one frame body, as an AddrInfo, and through the
 * streaming frame reader in uneven pieces.  What decodes must re-encode to
 * bytes that decode again and re-encode identically (the decoder accepts
 * non-canonical varints, so the first re-encoding may differ from the
 * input, the second may not).
 *
 * State machine: a fresh instance (small tables, so the bounds are reached)
 * joins a topic, then the input is a script of events: frames from one of
 * five peers (ourselves included), time steps, lost connections,
 * broadcasts.  After every event the actions are drained and checked: each
 * SEND a well-formed frame under the size limit, views and tables within
 * their bounds.
 */
#include <stdlib.h>
#include <string.h>

#include "gossip/gossip.h"

#define REQUIRE(c)                                                                         \
    do {                                                                                   \
        if (!(c))                                                                          \
            __builtin_trap();                                                              \
    } while (0)

static irohds_gossip_msg m1, m2;
static uint8_t out1[8192], out2[8192];

static void codec(const uint8_t *in, size_t size)
{
    size_t n1, n2;
    if (irohds_gossip_decode(&m1, in, size) == 0) {
        REQUIRE(irohds_gossip_encode(&m1, out1, sizeof out1, &n1) == 0 && n1 <= size);
        REQUIRE(irohds_gossip_decode(&m2, out1, n1) == 0);
        REQUIRE(irohds_gossip_encode(&m2, out2, sizeof out2, &n2) == 0);
        REQUIRE(n1 == n2 && memcmp(out1, out2, n1) == 0);
    }
    irohds_gossip_addr_info a, b;
    if (irohds_gossip_addr_info_decode(&a, in, size) == 0) {
        REQUIRE(irohds_gossip_addr_info_encode(&a, out1, sizeof out1, &n1) == 0);
        REQUIRE(irohds_gossip_addr_info_decode(&b, out1, n1) == 0);
        REQUIRE(irohds_gossip_addr_info_encode(&b, out2, sizeof out2, &n2) == 0);
        REQUIRE(n1 == n2 && memcmp(out1, out2, n1) == 0);
    }
    static irohds_gossip_frame_reader r;
    irohds_gossip_frame_reader_init(&r, 0);
    for (size_t off = 0, step = 1; off < size; step = step % 7 + 1) {
        const uint8_t *f;
        size_t fl, k = size - off < step ? size - off : step;
        ssize_t used = irohds_gossip_frame_reader_feed(&r, in + off, k, &f, &fl);
        if (used < 0)
            break;
        REQUIRE((size_t)used <= k && (!f || fl <= IROHDS_GOSSIP_MAX_MESSAGE_SIZE));
        off += (size_t)used;
        if (f)
            irohds_gossip_decode(&m1, f, fl);
    }
}

static uint8_t peers[5][32];
static const uint8_t topic[32] = {0x70};

static void drain(irohds_gossip *g, const irohds_gossip_config *c)
{
    irohds_gossip_action a;
    while (irohds_gossip_poll(g, &a)) {
        if (a.type == IROHDS_GOSSIP_ACT_SEND) {
            REQUIRE(a.len >= 4);
            size_t body = (size_t)a.data[0] << 24 | a.data[1] << 16 | a.data[2] << 8 | a.data[3];
            REQUIRE(body == a.len - 4 && body < c->max_message_size);
            REQUIRE(irohds_gossip_decode(&m2, a.data + 4, body) == 0);
            REQUIRE(memcmp(a.peer, peers[0], 32) != 0);
        }
    }
    irohds_gossip_stats st;
    if (irohds_gossip_stats_get(g, topic, &st) != 0)
        return; /* after quit */
    REQUIRE(st.active <= c->active_view_capacity && st.passive <= c->passive_view_capacity);
    REQUIRE(st.seen_ids <= c->seen_capacity && st.missing <= c->missing_capacity);
    REQUIRE(st.cached_bytes <= c->cache_max_bytes);
}

static void machine(const uint8_t *in, size_t size)
{
    irohds_gossip_config c;
    irohds_gossip_config_default(&c);
    c.active_view_capacity = 3;
    c.passive_view_capacity = 4;
    c.seen_capacity = 16;
    c.missing_capacity = 8;
    c.cache_max_bytes = 4096;
    c.max_message_size = 1024;
    c.peer_msgs_per_sec = 64;
    irohds_gossip *g;
    for (int i = 0; i < 5; i++)
        memset(peers[i], 0x10 * (i + 1), 32);
    if (irohds_gossip_init(&g, peers[0], &c, size) != 0)
        return;
    irohds_gossip_peer boot = {{0}, NULL, 0};
    memcpy(boot.id, peers[1], 32);
    irohds_gossip_join(g, 0, topic, &boot, 1);
    drain(g, &c);
    uint64_t now = 0;
    for (size_t off = 0; off + 3 <= size;) {
        uint8_t op = in[off];
        size_t len = (size_t)in[off + 1] << 8 | in[off + 2];
        off += 3;
        if (len > size - off)
            len = size - off;
        const uint8_t *from = peers[op % 5];
        switch ((op >> 3) % 4) {
        case 0:
        case 1:
            irohds_gossip_handle_frame(g, now, topic, from, in + off, len);
            off += len;
            break;
        case 2:
            now += (uint64_t)len * 7;
            irohds_gossip_timeout(g, now);
            REQUIRE(irohds_gossip_next_deadline(g, now) >= now);
            break;
        default:
            if (op & 0x80) {
                irohds_gossip_peer_disconnected(g, now, from);
            } else {
                irohds_gossip_broadcast(g, now, topic, in + off, len,
                                        (irohds_gossip_scope)(op >> 6 & 1));
                off += len;
            }
        }
        drain(g, &c);
    }
    irohds_gossip_quit(g, now, topic);
    drain(g, &c);
    irohds_gossip_free(g);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* Copy into an exact-size heap buffer so ASan sees any overread. */
    uint8_t *in = malloc(size ? size : 1);
    if (!in)
        return 0;
    if (size)
        memcpy(in, data, size);
    codec(in, size);
    machine(in, size);
    free(in);
    return 0;
}
