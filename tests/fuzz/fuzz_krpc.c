/*
 * fuzz_krpc: the KRPC decoder and a whole DHT node of src/dht on arbitrary
 * bytes.
 *
 * First the input as one datagram: what decodes must encode, and decode
 * again to the same fields.  Then the input as a script for a fresh node
 * (fixed seed, small tables), a sequence of steps [op][len hi][len lo][len
 * bytes]:
 *   op % 5 == 0  a datagram from peer A
 *   op % 5 == 1  the datagram made a reply to the node's last query: its t
 *                replaced by that query's, sent from the address queried
 *                (so search, routing and vote code sees hostile replies)
 *   op % 5 == 2  the datagram from A carrying the last write token the
 *                node gave A (so announce_peer and put get past the token)
 *   op % 5 == 3  start a search (kind from the first byte of the body)
 *   op % 5 == 4  let time pass (body[0] x 250 ms) and run periodic
 * Everything the node queues is drained after each step.  The node must
 * never crash, leak, or trip a sanitizer; its queues stay bounded.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <sodium.h>

#include "dht/dht.h"

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc, (void)argv;
    return sodium_init() < 0;
}

static bool bytes_eq(const uint8_t *a, size_t al, const uint8_t *b, size_t bl)
{
    if (!a || !b)
        return !a && !b;
    return al == bl && memcmp(a, b, al) == 0;
}

static bool fixed_eq(const uint8_t *a, const uint8_t *b, size_t n)
{
    return bytes_eq(a, a ? n : 0, b, b ? n : 0);
}

static bool msg_eq(const irohds_dht_msg *a, const irohds_dht_msg *b)
{
    bool ok = a->y == b->y && bytes_eq(a->t, a->t_len, b->t, b->t_len) &&
              bytes_eq(a->version, a->version_len, b->version, b->version_len) &&
              bytes_eq(a->ip, a->ip_len, b->ip, b->ip_len) && a->ro == b->ro &&
              a->method == b->method && fixed_eq(a->id, b->id, 20) &&
              fixed_eq(a->target, b->target, 20) && fixed_eq(a->info_hash, b->info_hash, 20) &&
              bytes_eq(a->token, a->token_len, b->token, b->token_len) &&
              a->has_port == b->has_port && a->port == b->port &&
              a->implied_port == b->implied_port && a->want_n4 == b->want_n4 &&
              a->want_n6 == b->want_n6 && bytes_eq(a->value, a->value_len, b->value, b->value_len) &&
              fixed_eq(a->k, b->k, 32) && fixed_eq(a->sig, b->sig, 64) &&
              bytes_eq(a->salt, a->salt_len, b->salt, b->salt_len) && a->has_seq == b->has_seq &&
              a->seq == b->seq && a->has_cas == b->has_cas && a->cas == b->cas &&
              bytes_eq(a->nodes, a->nodes_len, b->nodes, b->nodes_len) &&
              bytes_eq(a->nodes6, a->nodes6_len, b->nodes6, b->nodes6_len) &&
              a->has_values == b->has_values && a->n_values == b->n_values &&
              a->err_code == b->err_code && bytes_eq(a->err_msg, a->err_msg_len, b->err_msg, b->err_msg_len);
    if (a->method == IROHDS_DHT_M_OTHER)
        ok = ok && bytes_eq(a->q, a->q_len, b->q, b->q_len);
    for (size_t i = 0; ok && i < a->n_values; i++)
        ok = bytes_eq(a->values[i], a->values_len[i], b->values[i], b->values_len[i]);
    return ok;
}

static void round_trip(const uint8_t *data, size_t size)
{
    static irohds_dht_msg m, again;
    if (irohds_dht_msg_decode(&m, data, size) != 0)
        return;
    size_t cap = size + 64, len;
    uint8_t *buf = malloc(cap);
    if (irohds_dht_msg_encode(&m, buf, cap, &len) != 0 || len > size)
        __builtin_trap();
    if (irohds_dht_msg_decode(&again, buf, len) != 0 || !msg_eq(&m, &again))
        __builtin_trap();
    free(buf);
}

/* ---------------------------------------------------------- the node */

typedef struct script {
    irohds_dht *d;
    uint64_t now;
    struct sockaddr_in peer, router;
    uint8_t last_t[64];          /* t of the node's last query ... */
    size_t last_t_len;
    struct sockaddr_storage last_to; /* ... and where it went */
    socklen_t last_tolen;
    uint8_t token[32];           /* the last token the node gave peer A */
    size_t token_len;
} script;

static void deliver(script *s, const void *buf, size_t len, const struct sockaddr *from,
                    socklen_t fromlen)
{
    irohds_dht_receive(s->d, s->now, buf, len, from, fromlen);
}

/* Drain the node: remember its last query and the last token it gave A. */
static void drain(script *s)
{
    irohds_dht_packet p;
    static irohds_dht_msg m;
    while (irohds_dht_next_packet(s->d, &p)) {
        if (irohds_dht_msg_decode(&m, p.buf, p.len) != 0)
            __builtin_trap(); /* the node only sends what it can read */
        if (m.y == 'q') {
            memcpy(s->last_t, m.t, m.t_len);
            s->last_t_len = m.t_len;
            s->last_to = p.to;
            s->last_tolen = p.tolen;
        } else if (m.token && m.token_len <= sizeof s->token) {
            memcpy(s->token, m.token, m.token_len);
            s->token_len = m.token_len;
        }
    }
    irohds_dht_event ev;
    while (irohds_dht_next_event(s->d, &ev))
        ;
}

/* Re-encode the datagram with t or token replaced; false if it does not
 * decode. */
static bool splice(const uint8_t *data, size_t len, bool as_reply, script *s, uint8_t *out,
                   size_t cap, size_t *olen)
{
    static irohds_dht_msg m;
    if (irohds_dht_msg_decode(&m, data, len) != 0)
        return false;
    if (as_reply) {
        m.t = s->last_t;
        m.t_len = s->last_t_len;
    } else {
        m.token = s->token;
        m.token_len = s->token_len;
    }
    return irohds_dht_msg_encode(&m, out, cap, olen) == 0;
}

static void start_search(script *s, uint8_t kind)
{
    static const uint8_t sk[64] = {1, 2, 3}; /* not a real key: put is refused */
    uint8_t target[32] = {kind, 0x5a}; /* an id, or the key of a mutable get */
    uint32_t h;
    switch (kind % 6) {
    case 0: irohds_dht_find_node(s->d, s->now, target, &h); break;
    case 1: irohds_dht_get_peers(s->d, s->now, target, &h); break;
    case 2: irohds_dht_announce(s->d, s->now, target, 6881, kind & 8, &h); break;
    case 3: irohds_dht_get_immutable(s->d, s->now, target, &h); break;
    case 4: irohds_dht_get_mutable(s->d, s->now, target, NULL, 0, kind & 8, 1, &h); break;
    default: {
        irohds_dht_item it = {.v = (const uint8_t *)"i1e", .v_len = 3};
        if (kind & 8) {
            it.is_mutable = true;
            irohds_dht_item_sign(&it, sk);
        }
        irohds_dht_put(s->d, s->now, &it, kind & 16, 0, &h);
    }
    }
}

static void step(script *s, uint8_t op, const uint8_t *body, size_t len)
{
    uint8_t buf[IROHDS_DHT_MAX_PACKET + 256];
    size_t blen;
    switch (op % 5) {
    case 0:
        deliver(s, body, len, (struct sockaddr *)&s->peer, sizeof s->peer);
        break;
    case 1:
        if (s->last_t_len && splice(body, len, true, s, buf, sizeof buf, &blen))
            deliver(s, buf, blen, (struct sockaddr *)&s->last_to, s->last_tolen);
        break;
    case 2:
        if (s->token_len && splice(body, len, false, s, buf, sizeof buf, &blen))
            deliver(s, buf, blen, (struct sockaddr *)&s->peer, sizeof s->peer);
        break;
    case 3:
        start_search(s, len ? body[0] : 0);
        break;
    default:
        s->now += 250ull * (len ? body[0] : 1);
        irohds_dht_periodic(s->d, s->now);
        break;
    }
    drain(s);
}

static void run_script(const uint8_t *data, size_t size)
{
    script s = {.now = 1000000};
    irohds_dht_config c;
    irohds_dht_config_default(&c);
    c.max_rpcs = 32;
    c.max_searches = 4;
    c.max_torrents = 8;
    c.max_peers = 8;
    c.max_items = 8;
    c.max_queue = 256;
    c.max_events = 64;
    c.src_slots = 16;
    c.seed[0] = 7;
    if (irohds_dht_new(&s.d, &c) != 0)
        __builtin_trap();
    s.peer = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(4000)};
    s.router = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons(6881)};
    inet_pton(AF_INET, "50.1.2.3", &s.peer.sin_addr);
    inet_pton(AF_INET, "60.1.2.3", &s.router.sin_addr);
    irohds_dht_add_router(s.d, (struct sockaddr *)&s.router, sizeof s.router);
    irohds_dht_periodic(s.d, s.now);
    drain(&s);
    size_t pos = 0;
    while (pos + 3 <= size) {
        uint8_t op = data[pos];
        size_t len = (size_t)data[pos + 1] << 8 | data[pos + 2];
        pos += 3;
        if (len > size - pos)
            len = size - pos;
        step(&s, op, data + pos, len);
        pos += len;
    }
    irohds_dht_stats st;
    irohds_dht_stats_get(s.d, &st);
    if (st.torrents > c.max_torrents || st.items > c.max_items || st.searches > c.max_searches ||
        st.rpcs_in_flight > c.max_rpcs)
        __builtin_trap();
    irohds_dht_free(s.d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    round_trip(data, size);
    run_script(data, size);
    return 0;
}
