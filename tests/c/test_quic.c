/*
 * test_quic: the QUIC transport over real sockets on 127.0.0.1 and ::1.
 *
 * Every test builds endpoints on its own uv loop and drives it until a
 * condition holds or a deadline passes (a hang is a failure, not a stuck
 * test).  Keys come from the seeds 00x32 and 2ax32, whose public keys the
 * testdata gives independently (pkarr/keys.json), so "the right key was
 * presented" is checked against bytes this code did not compute.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <json-c/json.h>
#include <netinet/in.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "net/net.h"
#include "util/util.h"

#define ALPN_BYTES "/iroh-bytes/4"
#define ALPN_GOSSIP "/iroh-gossip/1"
#define MAX_STREAMS 512

static const char *testdata;

/* ------------------------------------------------------------- testdata */

static json_object *load_json(const char *rel)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", testdata, rel);
    json_object *o = json_object_from_file(path);
    CHECK(o != NULL, "cannot read %s", path);
    return o;
}

static const char *jstr(json_object *o, const char *k)
{
    json_object *v;
    return json_object_object_get_ex(o, k, &v) ? json_object_get_string(v) : "";
}

/* The public key keys.json gives for a seed (hex), into pk. */
static bool testdata_pk(const char *seed_hex, uint8_t pk[32])
{
    json_object *root = load_json("pkarr/keys.json"), *s2p, *cases;
    bool ok = false;
    if (root && json_object_object_get_ex(root, "seed_to_public_key", &s2p) &&
        json_object_object_get_ex(s2p, "cases", &cases)) {
        for (size_t i = 0; i < json_object_array_length(cases); i++) {
            json_object *c = json_object_array_get_idx(cases, i);
            if (strcmp(jstr(c, "seed_hex"), seed_hex) == 0)
                ok = irohds_hex_decode(jstr(c, "public_key_hex"), pk, 32) == 0;
        }
    }
    json_object_put(root);
    return ok;
}

/* ------------------------------------------------------------------ keys */

typedef struct key {
    uint8_t sk[64];
    uint8_t pk[32];
} key;

static key key_from_seed(uint8_t fill)
{
    key k;
    uint8_t seed[32];
    memset(seed, fill, sizeof seed);
    crypto_sign_seed_keypair(k.pk, k.sk, seed);
    return k;
}

static key key_random(void)
{
    key k;
    crypto_sign_keypair(k.pk, k.sk);
    return k;
}

/* --------------------------------------------------------------- streams */

typedef struct srec {
    int64_t sid;
    uint8_t *buf;
    size_t len, cap;
    bool fin, opened, reset, closed, paused;
    bool null_data; /* recv was given a NULL data pointer */
    uint64_t reset_code, closed_code;
    int closed_err;
} srec;

/* What one side saw; the endpoint's user pointer. */
typedef struct side {
    const char *name;
    irohds_net_endpoint *ep;
    int accepted, connected, closed, writable;
    irohds_net_conn *conn; /* the last connection accepted or connected */
    irohds_net_close_info why;
    bool echo;          /* write back what arrives on bidi streams */
    bool keep;          /* keep received bytes */
    bool refuse;        /* close connections in accepted */
    bool free_in_cb;    /* free the endpoint from the closed callback */
    bool multi;         /* many connections share it: stream ids repeat */
    bool hash;          /* hash what arrives (rx_hash) */
    bool pause;         /* pause each stream's reads at its first data */
    crypto_generichash_state rx_hash;
    struct pump *pump;  /* writes more when writable */
    struct side *give[4]; /* per-connection sides for accepted connections */
    size_t ngive;
    srec streams[MAX_STREAMS];
    size_t nstreams;
    uint64_t bytes;     /* stream bytes received */
} side;

static srec *rec(side *s, int64_t sid)
{
    for (size_t i = 0; i < s->nstreams; i++)
        if (s->streams[i].sid == sid)
            return &s->streams[i];
    if (s->nstreams == MAX_STREAMS)
        return &s->streams[0];
    srec *r = &s->streams[s->nstreams++];
    memset(r, 0, sizeof *r);
    r->sid = sid;
    return r;
}

static void srec_add(srec *r, const uint8_t *data, size_t len)
{
    if (len == 0)
        return; /* r->buf may still be NULL: memcpy to NULL is undefined even for 0 */
    if (r->len + len > r->cap) {
        r->cap = (r->len + len) * 2;
        r->buf = realloc(r->buf, r->cap);
    }
    memcpy(r->buf + r->len, data, len);
    r->len += len;
}

static void side_reset(side *s)
{
    for (size_t i = 0; i < s->nstreams; i++)
        free(s->streams[i].buf);
    memset(s, 0, sizeof *s);
}

/* A connection with a side of its own as user pointer reports there. */
static side *side_of(irohds_net_conn *c)
{
    side *s = irohds_net_conn_user_ptr(c);
    return s ? s : irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
}

/* --------------------------------------------------------------- pumps */

/* A deterministic byte stream (splitmix64 of the word index), written as
 * fast as the stream takes it, hashed as it goes. */
#define STAGE (256 * 1024)

typedef struct pump {
    uint64_t total, sent;
    int64_t sid;
    uint64_t stage_at; /* stream offset of stage[0] */
    size_t stage_len;
    uint8_t stage[STAGE];
    crypto_generichash_state hash;
    size_t max_buffered; /* the most the connection held unacknowledged */
} pump;

static uint64_t splitmix64(uint64_t x)
{
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static void pump_stage(pump *p)
{
    p->stage_at = p->sent;
    p->stage_len = p->total - p->sent < STAGE ? (size_t)(p->total - p->sent) : STAGE;
    for (size_t i = 0; i < p->stage_len; i += 8) {
        uint64_t w = splitmix64((p->stage_at + i) / 8);
        memcpy(p->stage + i, &w, p->stage_len - i < 8 ? p->stage_len - i : 8);
    }
    crypto_generichash_update(&p->hash, p->stage, p->stage_len);
}

static void pump_init(pump *p, uint64_t total)
{
    memset(p, 0, sizeof *p);
    p->total = total;
    p->sid = -1;
    crypto_generichash_init(&p->hash, NULL, 0, 32);
}

static void pump_run(pump *p, irohds_net_conn *c)
{
    while (p->sent < p->total) {
        if (p->sent == p->stage_at + p->stage_len)
            pump_stage(p);
        size_t off = (size_t)(p->sent - p->stage_at);
        bool last = p->stage_at + p->stage_len == p->total;
        ssize_t n = irohds_net_stream_write(c, p->sid, p->stage + off, p->stage_len - off, last);
        if (n <= 0)
            break;
        p->sent += (uint64_t)n;
        irohds_net_conn_info info;
        irohds_net_conn_info_get(c, &info);
        if (info.send_buffered > p->max_buffered)
            p->max_buffered = info.send_buffered;
        if ((size_t)n < p->stage_len - off)
            break;
    }
}

static void pump_start(pump *p, irohds_net_conn *c)
{
    int r = irohds_net_stream_open(c, true, NULL, &p->sid);
    CHECK(r == 0, "pump: open %s", strerror(-r));
    pump_run(p, c);
}

/* ------------------------------------------------------------- callbacks */

static void on_accepted(irohds_net_conn *c)
{
    side *s = side_of(c);
    if (s->ngive) {
        irohds_net_conn_set_user_ptr(c, s->give[0]);
        memmove(s->give, s->give + 1, --s->ngive * sizeof s->give[0]);
        s = side_of(c);
    }
    s->accepted++;
    s->conn = c;
    if (s->refuse)
        irohds_net_conn_close(c, 7, "not today");
}

static void on_connected(irohds_net_conn *c)
{
    side *s = side_of(c);
    s->connected++;
    s->conn = c;
}

static void on_closed(irohds_net_conn *c, const irohds_net_close_info *why)
{
    side *s = side_of(c);
    s->closed++;
    s->why = *why;
    if (s->conn == c)
        s->conn = NULL;
    if (s->free_in_cb) {
        irohds_net_endpoint_free(s->ep);
        s->ep = NULL;
    }
}

static void on_stream_opened(irohds_net_conn *c, int64_t sid)
{
    rec(side_of(c), sid)->opened = true;
}

static void on_recv(irohds_net_conn *c, int64_t sid, void *sptr, const uint8_t *data, size_t len,
                    bool fin)
{
    (void)sptr;
    side *s = side_of(c);
    srec *r = rec(s, sid);
    if (!data)
        r->null_data = true;
    s->bytes += len;
    if (s->keep)
        srec_add(r, data, len);
    if (s->hash && len)
        crypto_generichash_update(&s->rx_hash, data, len);
    if (s->pause && !r->paused) {
        r->paused = true;
        CHECK(irohds_net_stream_set_read_paused(c, sid, true) == 0, "pause");
    }
    r->fin |= fin;
    if (s->echo && (sid & 2) == 0) {
        ssize_t n = irohds_net_stream_write(c, sid, data, len, fin);
        CHECK(n == (ssize_t)len, "%s: echo wrote %zd of %zu", s->name, n, len);
    }
}

static void on_writable(irohds_net_conn *c, int64_t sid, void *sptr);

static void on_stream_reset(irohds_net_conn *c, int64_t sid, void *sptr, uint64_t code)
{
    (void)sptr;
    srec *r = rec(side_of(c), sid);
    r->reset = true;
    r->reset_code = code;
}

static void on_stream_closed(irohds_net_conn *c, int64_t sid, void *sptr, int err, uint64_t code)
{
    (void)sptr;
    srec *r = rec(side_of(c), sid);
    CHECK(!r->closed || side_of(c)->multi, "stream %lld closed twice", (long long)sid);
    r->closed = true;
    r->closed_err = err;
    r->closed_code = code;
}

static const irohds_net_callbacks CB = {
    .accepted = on_accepted,
    .connected = on_connected,
    .closed = on_closed,
    .stream_opened = on_stream_opened,
    .recv = on_recv,
    .writable = on_writable,
    .stream_reset = on_stream_reset,
    .stream_closed = on_stream_closed,
};

/* --------------------------------------------------------------- driving */

static void on_deadline(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Run the loop until done(arg) or ms pass; true if done. */
static bool run_until(uv_loop_t *loop, bool (*done)(void *), void *arg, uint64_t ms)
{
    bool expired = false;
    uv_timer_t t;
    uv_update_time(loop); /* the deadline counts from now, not the last iteration */
    uv_timer_init(loop, &t);
    t.data = &expired;
    uv_timer_start(&t, on_deadline, ms, 0);
    while (!done(arg) && !expired)
        uv_run(loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(loop, UV_RUN_NOWAIT);
    return done(arg);
}

static bool never(void *arg)
{
    (void)arg;
    return false;
}

static void run_for(uv_loop_t *loop, uint64_t ms)
{
    run_until(loop, never, NULL, ms);
}

static bool int_positive(void *arg)
{
    return *(int *)arg > 0;
}

static void on_walk_close(uv_handle_t *h, void *arg)
{
    (void)arg;
    if (!uv_is_closing(h))
        uv_close(h, NULL);
}

/* Everything must already be freed: anything left open is a leak. */
static void loop_done(uv_loop_t *loop)
{
    uv_run(loop, UV_RUN_NOWAIT);
    int r = uv_loop_close(loop);
    CHECK(r == 0, "handles left open on the loop");
    if (r != 0) {
        uv_walk(loop, on_walk_close, NULL);
        uv_run(loop, UV_RUN_DEFAULT);
        uv_loop_close(loop);
    }
}

static irohds_net_endpoint *endpoint(uv_loop_t *loop, side *s, const key *k, const char *listen,
                                     irohds_net_config *cfg_in)
{
    irohds_net_config cfg = cfg_in ? *cfg_in : (irohds_net_config){0};
    static const char *const alpns[] = {ALPN_BYTES, ALPN_GOSSIP};
    cfg.secret_key = k->sk;
    cfg.listen = listen;
    if (!cfg_in || !cfg_in->alpns) {
        cfg.alpns = alpns;
        cfg.n_alpns = 2;
    }
    cfg.cb = &CB;
    cfg.user_ptr = s;
    int r = irohds_net_endpoint_init(loop, &cfg, &s->ep);
    CHECK(r == 0, "%s: endpoint_init %s: %s", s->name, listen ? listen : "default", strerror(-r));
    return r == 0 ? s->ep : NULL;
}

static struct sockaddr_storage addr_of(irohds_net_endpoint *ep, const char *host)
{
    struct sockaddr_storage a, local;
    irohds_net_endpoint_local_addr(ep, &local);
    char s[80];
    uint16_t port = ntohs(((struct sockaddr_in *)&local)->sin_port);
    snprintf(s, sizeof s, strchr(host, ':') ? "[%s]:%u" : "%s:%u", host, port);
    irohds_net_parse_addr(s, &a);
    return a;
}

typedef struct pair {
    uv_loop_t loop;
    side srv, cli;
    key ks, kc;
} pair;

static bool both_up(void *arg)
{
    pair *p = arg;
    return (p->cli.connected && p->srv.accepted) || p->cli.closed || p->srv.closed;
}

/* Server (seed 00) and client (seed 2a) endpoints, client connected. */
static bool pair_up(pair *p, const char *host, irohds_net_config *scfg, irohds_net_config *ccfg)
{
    memset(p, 0, sizeof *p);
    uv_loop_init(&p->loop);
    p->srv.name = "server";
    p->cli.name = "client";
    p->ks = key_from_seed(0x00);
    p->kc = key_from_seed(0x2a);
    const char *listen = strchr(host, ':') ? "[::1]:0" : "127.0.0.1:0";
    if (!endpoint(&p->loop, &p->srv, &p->ks, listen, scfg) ||
        !endpoint(&p->loop, &p->cli, &p->kc, listen, ccfg))
        return false;
    struct sockaddr_storage to = addr_of(p->srv.ep, host);
    irohds_net_conn *c;
    int r = irohds_net_connect(p->cli.ep, p->ks.pk, (struct sockaddr *)&to, ALPN_BYTES, 0, NULL,
                               &c);
    CHECK(r == 0, "connect: %s", strerror(-r));
    bool ok = run_until(&p->loop, both_up, p, 5000) && p->cli.connected && p->srv.accepted;
    CHECK(ok, "handshake did not finish (client closed %d: %s)", p->cli.closed, p->cli.why.reason);
    return ok;
}

static void pair_down(pair *p)
{
    irohds_net_endpoint_free(p->cli.ep);
    irohds_net_endpoint_free(p->srv.ep);
    loop_done(&p->loop);
    side_reset(&p->srv);
    side_reset(&p->cli);
}

/* ------------------------------------------------------ helpers / vectors */

static void test_vectors(void)
{
    json_object *root = load_json("tls/ed25519_spki.json"), *cases, *prefix, *name;
    if (!root)
        return;
    json_object_object_get_ex(root, "cases", &cases);
    json_object_object_get_ex(root, "ed25519_spki_prefix", &prefix);
    uint8_t want_prefix[12];
    CHECK(irohds_hex_decode(jstr(prefix, "hex"), want_prefix, 12) == 0, "prefix hex");
    for (size_t i = 0; i < json_object_array_length(cases); i++) {
        json_object *c = json_object_array_get_idx(cases, i);
        uint8_t pk[32], want[44], got[44];
        CHECK(irohds_hex_decode(jstr(c, "public_key_hex"), pk, 32) == 0, "pk hex");
        CHECK(irohds_hex_decode(jstr(c, "spki_hex"), want, 44) == 0, "spki hex");
        irohds_net_spki(pk, got);
        CHECK(memcmp(got, want, 44) == 0, "spki of %s", jstr(c, "name"));
        CHECK(memcmp(want, want_prefix, 12) == 0, "prefix rule for %s", jstr(c, "name"));
    }
    json_object_object_get_ex(root, "iroh_tls_server_name", &name);
    json_object *ex;
    json_object_object_get_ex(name, "example", &ex);
    key k = key_from_seed(0);
    char sn[IROHDS_NET_SERVER_NAME_LEN];
    irohds_net_server_name(k.pk, sn);
    CHECK(strcmp(sn, jstr(ex, "server_name")) == 0, "server name %s", sn);
    json_object_put(root);

    struct sockaddr_storage a;
    char buf[80];
    CHECK(irohds_net_parse_addr("127.0.0.1:4433", &a) == 0 && a.ss_family == AF_INET, "v4");
    irohds_net_addr_str((struct sockaddr *)&a, buf, sizeof buf);
    CHECK(strcmp(buf, "127.0.0.1:4433") == 0, "v4 round trip %s", buf);
    CHECK(irohds_net_parse_addr("[::1]:0", &a) == 0 && a.ss_family == AF_INET6, "v6");
    irohds_net_addr_str((struct sockaddr *)&a, buf, sizeof buf);
    CHECK(strcmp(buf, "[::1]:0") == 0, "v6 round trip %s", buf);
    CHECK(irohds_net_parse_addr("::1:5", &a) == -EINVAL, "bare v6 refused");
    CHECK(irohds_net_parse_addr("1.2.3.4:70000", &a) == -EINVAL, "port range");
    CHECK(irohds_net_parse_addr("example.com:1", &a) == -EINVAL, "no DNS");
    CHECK(irohds_net_parse_addr("1.2.3.4", &a) == -EINVAL, "port required");
}

/* ---------------------------------------------------------------- tests */

static void check_identities(pair *p)
{
    uint8_t pk0[32], pk2a[32];
    CHECK(testdata_pk("0000000000000000000000000000000000000000000000000000000000000000", pk0),
          "keys.json: seed 00");
    CHECK(testdata_pk("2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a2a", pk2a),
          "keys.json: seed 2a");
    CHECK(memcmp(irohds_net_endpoint_id(p->srv.ep), pk0, 32) == 0, "server id = keys.json");
    irohds_net_conn_info ci, si;
    CHECK(irohds_net_conn_info_get(p->cli.conn, &ci) == 0, "client info");
    CHECK(irohds_net_conn_info_get(p->srv.conn, &si) == 0, "server info");
    CHECK(ci.remote_id_known && memcmp(ci.remote_id, pk0, 32) == 0, "client sees server key");
    CHECK(si.remote_id_known && memcmp(si.remote_id, pk2a, 32) == 0, "server sees client key");
    CHECK(strcmp(ci.alpn, ALPN_BYTES) == 0 && strcmp(si.alpn, ALPN_BYTES) == 0, "alpn %s/%s",
          ci.alpn, si.alpn);
    CHECK(strcmp(ci.cipher, "AES-128-GCM") == 0, "cipher %s", ci.cipher);
    CHECK(ci.is_client && !si.is_client && ci.established && si.established, "roles");
    /* The bytes TLS saw: prefix (from the testdata rule) || the testdata key. */
    uint8_t spki[44], prefix[12];
    CHECK(irohds_hex_decode("302a300506032b6570032100", prefix, 12) == 0, "prefix");
    CHECK(irohds_net_conn_peer_spki(p->cli.conn, spki) == 0, "client peer spki");
    CHECK(memcmp(spki, prefix, 12) == 0 && memcmp(spki + 12, pk0, 32) == 0, "server SPKI bytes");
    CHECK(irohds_net_conn_peer_spki(p->srv.conn, spki) == 0, "server peer spki");
    CHECK(memcmp(spki, prefix, 12) == 0 && memcmp(spki + 12, pk2a, 32) == 0, "client SPKI bytes");
}

static void test_handshake(void)
{
    pair p;
    if (pair_up(&p, "127.0.0.1", NULL, NULL))
        check_identities(&p);
    CHECK(irohds_net_find(p.cli.ep, p.ks.pk, ALPN_BYTES) == p.cli.conn, "find client side");
    CHECK(irohds_net_find(p.srv.ep, p.kc.pk, ALPN_BYTES) == p.srv.conn, "find server side");
    CHECK(irohds_net_find(p.cli.ep, p.ks.pk, ALPN_GOSSIP) == NULL, "find: other alpn");
    /* The other direction: the server dials the client's endpoint. */
    struct sockaddr_storage to = addr_of(p.cli.ep, "127.0.0.1");
    irohds_net_conn *c;
    int before = p.cli.accepted;
    CHECK(irohds_net_connect(p.srv.ep, p.kc.pk, (struct sockaddr *)&to, ALPN_GOSSIP, 0, NULL,
                             &c) == 0, "reverse connect");
    CHECK(run_until(&p.loop, int_positive, &p.srv.connected, 3000), "reverse connected");
    CHECK(p.cli.accepted == before + 1, "client endpoint accepted");
    irohds_net_conn_info info;
    irohds_net_conn_info_get(c, &info);
    CHECK(memcmp(info.remote_id, p.kc.pk, 32) == 0 && strcmp(info.alpn, ALPN_GOSSIP) == 0,
          "reverse identity");
    pair_down(&p);
}

static bool cli_closed(void *arg)
{
    return ((pair *)arg)->cli.closed > 0;
}

static void test_wrong_id(void)
{
    pair p;
    memset(&p, 0, sizeof p);
    uv_loop_init(&p.loop);
    p.srv.name = "server";
    p.cli.name = "client";
    p.ks = key_from_seed(0x00);
    p.kc = key_from_seed(0x2a);
    endpoint(&p.loop, &p.srv, &p.ks, "127.0.0.1:0", NULL);
    endpoint(&p.loop, &p.cli, &p.kc, "127.0.0.1:0", NULL);
    struct sockaddr_storage to = addr_of(p.srv.ep, "127.0.0.1");
    key other = key_random();
    irohds_net_conn *c;
    CHECK(irohds_net_connect(p.cli.ep, other.pk, (struct sockaddr *)&to, ALPN_BYTES, 0, NULL,
                             &c) == 0, "connect");
    CHECK(run_until(&p.loop, cli_closed, &p, 3000), "wrong id: client closed");
    CHECK(p.cli.connected == 0 && p.srv.accepted == 0, "nobody saw a connection");
    CHECK(p.cli.why.err == -EKEYREJECTED, "wrong id err %d (%s)", p.cli.why.err, p.cli.why.reason);
    CHECK(strstr(p.cli.why.reason, "not the node id") != NULL, "says so: %s", p.cli.why.reason);
    run_for(&p.loop, 50);
    irohds_net_endpoint_stats st;
    irohds_net_endpoint_stats_get(p.srv.ep, &st);
    CHECK(st.handshakes_failed == 1 && st.conns == 0, "server counted the failure (%llu, %u)",
          (unsigned long long)st.handshakes_failed, st.conns);
    pair_down(&p);
}

/* Dialled by address only (node_id NULL, as after a DHT peer lookup): the
 * handshake succeeds whoever holds the key, and the key the server proved
 * (seed 00: its public key is in testdata/pkarr/keys.json, checked by
 * test_vectors) becomes the connection's remote id. */
static void test_any_id(void)
{
    pair p;
    memset(&p, 0, sizeof p);
    uv_loop_init(&p.loop);
    p.srv.name = "server";
    p.cli.name = "client";
    p.ks = key_from_seed(0x00);
    p.kc = key_from_seed(0x2a);
    endpoint(&p.loop, &p.srv, &p.ks, "127.0.0.1:0", NULL);
    endpoint(&p.loop, &p.cli, &p.kc, "127.0.0.1:0", NULL);
    struct sockaddr_storage to = addr_of(p.srv.ep, "127.0.0.1");
    irohds_net_conn *c;
    CHECK(irohds_net_connect(p.cli.ep, NULL, (struct sockaddr *)&to, ALPN_BYTES, 0, NULL, &c) == 0,
          "connect by address only");
    irohds_net_conn_info info;
    CHECK(irohds_net_conn_info_get(c, &info) == 0 && !info.remote_id_known,
          "id unknown before the handshake");
    CHECK(run_until(&p.loop, int_positive, &p.cli.connected, 3000), "connected");
    CHECK(irohds_net_conn_info_get(c, &info) == 0 && info.remote_id_known &&
              memcmp(info.remote_id, p.ks.pk, 32) == 0,
          "the remote id is the key the server proved");
    CHECK(irohds_net_find(p.cli.ep, p.ks.pk, ALPN_BYTES) == c, "found by the id learnt");
    pair_down(&p);
}

static int64_t open_write(irohds_net_conn *c, bool bidi, const void *data, size_t len, bool fin)
{
    int64_t sid = -1;
    int r = irohds_net_stream_open(c, bidi, NULL, &sid);
    CHECK(r == 0, "stream_open: %s", strerror(-r));
    if (r == 0) {
        ssize_t n = irohds_net_stream_write(c, sid, data, len, fin);
        CHECK(n == (ssize_t)len, "write %zd of %zu", n, len);
    }
    return sid;
}

typedef struct wait_stream {
    side *s;
    int64_t sid;
} wait_stream;

static bool stream_fin(void *arg)
{
    wait_stream *w = arg;
    return rec(w->s, w->sid)->fin;
}

static bool stream_closed(void *arg)
{
    wait_stream *w = arg;
    return rec(w->s, w->sid)->closed;
}

static void test_echo(const char *host)
{
    pair p;
    if (!pair_up(&p, host, NULL, NULL)) {
        pair_down(&p);
        return;
    }
    p.srv.echo = p.srv.keep = p.cli.keep = true;
    static const char msg[] = "hello, quic";
    int64_t sid = open_write(p.cli.conn, true, msg, sizeof msg - 1, true);
    wait_stream w = {&p.cli, sid};
    CHECK(run_until(&p.loop, stream_fin, &w, 3000), "%s: echo came back", host);
    srec *r = rec(&p.cli, sid);
    CHECK(r->len == sizeof msg - 1 && memcmp(r->buf, msg, r->len) == 0, "%s: echo bytes", host);
    CHECK(rec(&p.srv, sid)->opened && rec(&p.srv, sid)->fin, "%s: server saw open and fin", host);
    CHECK(run_until(&p.loop, stream_closed, &w, 3000), "%s: stream closed", host);
    CHECK(r->closed_err == 0, "%s: stream closed cleanly (%d)", host, r->closed_err);
    wait_stream ws = {&p.srv, sid};
    CHECK(run_until(&p.loop, stream_closed, &ws, 3000) && rec(&p.srv, sid)->closed_err == 0,
          "%s: server stream closed cleanly", host);
    CHECK(irohds_net_stream_write(p.cli.conn, sid, "x", 1, false) == -ENOENT, "closed stream");
    irohds_net_conn_info info;
    irohds_net_conn_info_get(p.cli.conn, &info);
    struct sockaddr_storage want = addr_of(p.srv.ep, host);
    CHECK(info.remote_addr.ss_family == want.ss_family &&
              memcmp(&info.remote_addr, &want, want.ss_family == AF_INET
                                                       ? sizeof(struct sockaddr_in)
                                                       : sizeof(struct sockaddr_in6)) == 0,
          "%s: remote address", host);
    CHECK(info.srtt_us > 0 && info.srtt_us < 50000 && info.cwnd > 0, "%s: rtt %llu us", host,
          (unsigned long long)info.srtt_us);
    CHECK(info.stream_bytes_sent == sizeof msg - 1 && info.stream_bytes_recv == sizeof msg - 1,
          "%s: stream byte counts", host);
    pair_down(&p);
}

static void test_uni(void)
{
    pair p;
    if (!pair_up(&p, "127.0.0.1", NULL, NULL)) {
        pair_down(&p);
        return;
    }
    p.srv.keep = p.cli.keep = true;
    size_t len = 300000;
    uint8_t *data = malloc(len);
    randombytes_buf(data, len);
    int64_t sid = open_write(p.cli.conn, false, data, len, true);
    CHECK((sid & 3) == 2, "client uni id %lld", (long long)sid);
    wait_stream w = {&p.srv, sid};
    CHECK(run_until(&p.loop, stream_fin, &w, 3000), "uni arrived");
    srec *r = rec(&p.srv, sid);
    CHECK(r->len == len && memcmp(r->buf, data, len) == 0, "uni bytes");
    CHECK(irohds_net_stream_write(p.srv.conn, sid, "x", 1, false) == -EINVAL, "peer's uni");
    int64_t back = open_write(p.srv.conn, false, "back", 4, true);
    CHECK((back & 3) == 3, "server uni id %lld", (long long)back);
    wait_stream wb = {&p.cli, back};
    CHECK(run_until(&p.loop, stream_fin, &wb, 3000) && rec(&p.cli, back)->len == 4, "uni back");
    free(data);
    pair_down(&p);
}

static bool all_fin(void *arg)
{
    side *s = arg;
    size_t n = 0;
    for (size_t i = 0; i < s->nstreams; i++)
        n += s->streams[i].fin;
    return n == 100;
}

static void test_many_streams(void)
{
    pair p;
    if (!pair_up(&p, "127.0.0.1", NULL, NULL)) {
        pair_down(&p);
        return;
    }
    p.srv.echo = p.cli.keep = true;
    uint8_t buf[10000];
    int64_t sids[100];
    for (int i = 0; i < 100; i++) {
        memset(buf, i, sizeof buf);
        sids[i] = open_write(p.cli.conn, true, buf, sizeof buf, true);
    }
    CHECK(run_until(&p.loop, all_fin, &p.cli, 10000), "100 streams echoed");
    int good = 0;
    for (int i = 0; i < 100; i++) {
        srec *r = rec(&p.cli, sids[i]);
        memset(buf, i, sizeof buf);
        good += r->len == sizeof buf && memcmp(r->buf, buf, sizeof buf) == 0;
    }
    CHECK(good == 100, "%d of 100 streams intact", good);
    pair_down(&p);
}

/* 50 connections from 5 endpoints (10 each) to one server, all at once. */
#define NCONN 50

typedef struct many {
    side conns[NCONN];
    int64_t sids[NCONN];
    int done;
} many;

static bool many_done(void *arg)
{
    many *m = arg;
    int n = 0;
    for (int i = 0; i < NCONN; i++)
        n += m->conns[i].closed || (m->conns[i].connected && rec(&m->conns[i], 0)->fin);
    return n == NCONN;
}

static bool many_connected(void *arg)
{
    many *m = arg;
    int n = 0;
    for (int i = 0; i < NCONN; i++)
        n += m->conns[i].connected || m->conns[i].closed;
    return n == NCONN;
}

static void test_many_conns(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    static many m;
    static side srv, cli[5];
    memset(&m, 0, sizeof m);
    memset(&srv, 0, sizeof srv);
    memset(cli, 0, sizeof cli);
    srv.name = "server";
    srv.echo = srv.multi = true;
    key ks = key_from_seed(0);
    endpoint(&loop, &srv, &ks, "127.0.0.1:0", NULL);
    struct sockaddr_storage to = addr_of(srv.ep, "127.0.0.1");
    irohds_net_conn *conns[NCONN];
    for (int e = 0; e < 5; e++) {
        key k = key_random();
        cli[e].name = "client";
        endpoint(&loop, &cli[e], &k, "127.0.0.1:0", NULL);
        for (int i = 0; i < 10; i++) {
            side *cs = &m.conns[e * 10 + i];
            cs->name = "conn";
            cs->keep = true;
            int r = irohds_net_connect(cli[e].ep, ks.pk, (struct sockaddr *)&to, ALPN_BYTES, 0, cs,
                                       &conns[e * 10 + i]);
            CHECK(r == 0, "connect %d: %s", e * 10 + i, strerror(-r));
        }
    }
    CHECK(run_until(&loop, many_connected, &m, 10000), "50 handshakes");
    uint8_t buf[65536];
    for (int i = 0; i < NCONN; i++) {
        memset(buf, i, sizeof buf);
        if (m.conns[i].connected)
            open_write(conns[i], true, buf, sizeof buf, true);
    }
    irohds_net_endpoint_stats st;
    irohds_net_endpoint_stats_get(srv.ep, &st);
    CHECK(st.conns == NCONN && srv.accepted == NCONN, "server has %u (%d accepted)", st.conns,
          srv.accepted);
    CHECK(run_until(&loop, many_done, &m, 10000), "50 echoes");
    int good = 0;
    for (int i = 0; i < NCONN; i++) {
        srec *r = rec(&m.conns[i], 0);
        memset(buf, i, sizeof buf);
        good += m.conns[i].closed == 0 && r->len == sizeof buf && memcmp(r->buf, buf, r->len) == 0;
        side_reset(&m.conns[i]);
    }
    CHECK(good == NCONN, "%d of 50 connections echoed intact", good);
    for (int e = 0; e < 5; e++) {
        irohds_net_endpoint_free(cli[e].ep);
        side_reset(&cli[e]);
    }
    irohds_net_endpoint_free(srv.ep);
    loop_done(&loop);
    side_reset(&srv);
}

static void test_alpn_refused(void)
{
    pair p;
    memset(&p, 0, sizeof p);
    uv_loop_init(&p.loop);
    p.srv.name = "server";
    p.cli.name = "client";
    p.ks = key_from_seed(0);
    p.kc = key_from_seed(0x2a);
    endpoint(&p.loop, &p.srv, &p.ks, "127.0.0.1:0", NULL);
    endpoint(&p.loop, &p.cli, &p.kc, "127.0.0.1:0", NULL);
    struct sockaddr_storage to = addr_of(p.srv.ep, "127.0.0.1");
    irohds_net_conn *c;
    CHECK(irohds_net_connect(p.cli.ep, p.ks.pk, (struct sockaddr *)&to, "/not-served/1", 0, NULL,
                             &c) == 0, "connect");
    CHECK(run_until(&p.loop, cli_closed, &p, 3000), "unknown alpn: closed");
    CHECK(p.cli.why.err == -ENOPROTOOPT && p.cli.why.remote, "err %d remote %d (%s)",
          p.cli.why.err, p.cli.why.remote, p.cli.why.reason);
    CHECK(p.srv.accepted == 0 && p.cli.connected == 0, "not accepted");
    CHECK(irohds_net_connect(p.cli.ep, p.ks.pk, (struct sockaddr *)&to, "", 0, NULL, &c) == -EINVAL,
          "empty alpn");
    pair_down(&p);
}

static bool both_closed(void *arg)
{
    pair *p = arg;
    return p->srv.closed > 0 && p->cli.closed > 0;
}

static void test_close_codes(void)
{
    pair p;
    if (pair_up(&p, "127.0.0.1", NULL, NULL)) {
        irohds_net_conn *c = p.cli.conn;
        CHECK(irohds_net_conn_close(c, 42, "bye now") == 0, "close");
        CHECK(irohds_net_conn_close(c, 43, "again") == -ENOTCONN, "close twice");
        CHECK(p.cli.closed == 0, "no closed callback from inside close");
        CHECK(run_until(&p.loop, both_closed, &p, 3000), "both closed");
        CHECK(p.cli.why.err == 0 && !p.cli.why.remote && p.cli.why.app_code &&
                  p.cli.why.code == 42, "client's own close");
        CHECK(p.srv.why.err == 0 && p.srv.why.remote && p.srv.why.app_code &&
                  p.srv.why.code == 42 && strcmp(p.srv.why.reason, "bye now") == 0,
              "server got code %llu reason '%s'", (unsigned long long)p.srv.why.code,
              p.srv.why.reason);
        CHECK(p.cli.closed == 1 && p.srv.closed == 1, "once each");
    }
    pair_down(&p);
    /* Refused in the accepted callback. */
    irohds_net_config scfg = {0};
    memset(&p, 0, sizeof p);
    uv_loop_init(&p.loop);
    p.srv.name = "server";
    p.cli.name = "client";
    p.srv.refuse = true;
    p.ks = key_from_seed(0);
    p.kc = key_from_seed(0x2a);
    endpoint(&p.loop, &p.srv, &p.ks, "127.0.0.1:0", &scfg);
    endpoint(&p.loop, &p.cli, &p.kc, "127.0.0.1:0", NULL);
    struct sockaddr_storage to = addr_of(p.srv.ep, "127.0.0.1");
    irohds_net_conn *c;
    irohds_net_connect(p.cli.ep, p.ks.pk, (struct sockaddr *)&to, ALPN_BYTES, 0, NULL, &c);
    CHECK(run_until(&p.loop, cli_closed, &p, 3000), "refused: client closed");
    CHECK(p.cli.why.remote && p.cli.why.code == 7 && strcmp(p.cli.why.reason, "not today") == 0,
          "refusal code %llu '%s'", (unsigned long long)p.cli.why.code, p.cli.why.reason);
    CHECK(p.srv.closed == 1 && p.srv.why.err == 0 && !p.srv.why.remote, "server closed once");
    pair_down(&p);
}

static void test_idle(void)
{
    irohds_net_config cfg = {.idle_timeout_ms = 200};
    pair p;
    if (pair_up(&p, "127.0.0.1", &cfg, &cfg)) {
        uint64_t t0 = uv_now(&p.loop);
        CHECK(run_until(&p.loop, both_closed, &p, 3000), "idle timeout fired");
        uint64_t dt = uv_now(&p.loop) - t0;
        CHECK(dt >= 150 && dt < 1500, "after %llu ms", (unsigned long long)dt);
        CHECK(p.cli.why.err == -ETIMEDOUT && p.srv.why.err == -ETIMEDOUT, "ETIMEDOUT (%s/%s)",
              p.cli.why.reason, p.srv.why.reason);
    }
    pair_down(&p);
    /* Keep-alive keeps it up. */
    irohds_net_config kcfg = {.idle_timeout_ms = 200, .keep_alive_ms = 50};
    if (pair_up(&p, "127.0.0.1", &cfg, &kcfg)) {
        run_for(&p.loop, 800);
        CHECK(p.cli.closed == 0 && p.srv.closed == 0, "keep-alive: still up");
        CHECK(irohds_net_conn_set_keep_alive(p.cli.conn, 0) == 0, "keep-alive off");
        CHECK(run_until(&p.loop, both_closed, &p, 3000), "then idle");
    }
    pair_down(&p);
}

static void test_dead_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    pair p;
    memset(&p, 0, sizeof p);
    uv_loop_init(&p.loop);
    p.cli.name = "client";
    p.kc = key_from_seed(0x2a);
    irohds_net_config cfg = {.handshake_timeout_ms = 300};
    endpoint(&p.loop, &p.cli, &p.kc, "127.0.0.1:0", &cfg);
    key k = key_from_seed(0);
    irohds_net_conn *c;
    uint64_t t0 = uv_now(&p.loop);
    CHECK(irohds_net_connect(p.cli.ep, k.pk, (struct sockaddr *)&a, ALPN_BYTES, 0, NULL, &c) == 0,
          "connect");
    CHECK(run_until(&p.loop, cli_closed, &p, 3000), "dead port: closed");
    uint64_t dt = uv_now(&p.loop) - t0;
    CHECK(p.cli.why.err == -ETIMEDOUT && strstr(p.cli.why.reason, "handshake"), "err %d %s",
          p.cli.why.err, p.cli.why.reason);
    CHECK(dt >= 250 && dt < 1500, "after %llu ms", (unsigned long long)dt);
    CHECK(p.cli.closed == 1, "closed once");
    irohds_net_endpoint_stats st;
    irohds_net_endpoint_stats_get(p.cli.ep, &st);
    CHECK(st.conns == 0, "no connection left");
    irohds_net_endpoint_free(p.cli.ep);
    loop_done(&p.loop);
    side_reset(&p.cli);
}

/* --------------------------------------------------------------- flows */

typedef struct flow {
    side *rx;
    pump *tx;
    int64_t sid;
} flow;

static bool flow_done(void *arg)
{
    flow *f = arg;
    return rec(f->rx, f->tx->sid)->fin || f->rx->closed;
}

static bool hashes_match(side *rx, pump *tx)
{
    uint8_t a[32], b[32];
    crypto_generichash_final(&rx->rx_hash, a, 32);
    crypto_generichash_final(&tx->hash, b, 32);
    return memcmp(a, b, 32) == 0;
}

/* ------------------------------------------------------------- hostile */

static void send_raw(int fd, const struct sockaddr_storage *to, const uint8_t *data, size_t len)
{
    socklen_t tl = to->ss_family == AF_INET ? sizeof(struct sockaddr_in)
                                             : sizeof(struct sockaddr_in6);
    CHECK(sendto(fd, data, len, 0, (const struct sockaddr *)to, tl) == (ssize_t)len, "sendto");
}

static size_t long_header(uint8_t *b, size_t len, uint32_t version, uint8_t dcidlen)
{
    randombytes_buf(b, len);
    b[0] = 0xc0; /* long header, fixed bit, Initial */
    b[1] = (uint8_t)(version >> 24);
    b[2] = (uint8_t)(version >> 16);
    b[3] = (uint8_t)(version >> 8);
    b[4] = (uint8_t)version;
    b[5] = dcidlen;
    return len;
}

static void garbage_to(int fd, const struct sockaddr_storage *to)
{
    uint8_t b[2000];
    b[0] = 0;
    send_raw(fd, to, b, 1);
    for (int i = 0; i < 300; i++) {
        uint32_t r = randombytes_uniform(5);
        size_t len = 1 + randombytes_uniform(sizeof b - 1);
        randombytes_buf(b, len);
        if (r == 0)
            b[0] &= 0x7f; /* short header */
        else if (r == 1 && len >= 7)
            long_header(b, len, 1, (uint8_t)randombytes_uniform(21));
        else if (r == 2 && len >= 7)
            long_header(b, len, randombytes_random(), (uint8_t)randombytes_uniform(256));
        send_raw(fd, to, b, len);
    }
    /* Initial-sized ones that ngtcp2_accept takes: a connection is made,
     * fails to decrypt, and goes. */
    for (int i = 0; i < 20; i++)
        send_raw(fd, to, b, long_header(b, 1200, 1, 8));
}

/* A connected client/server pair on loopback (the server echoes) and a raw
 * UDP socket aimed at the server, for tests that throw datagrams at it.
 * False (and nothing to undo) if the pair did not come up. */
static bool attacked_pair(pair *p, int *fd, struct sockaddr_storage *srv)
{
    if (!pair_up(p, "127.0.0.1", NULL, NULL)) {
        pair_down(p);
        return false;
    }
    p->srv.echo = p->cli.keep = true;
    *fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    *srv = addr_of(p->srv.ep, "127.0.0.1");
    return true;
}

/* The pair's connection still works: a stream comes back echoed. */
static void check_still_echoes(pair *p, const char *what)
{
    int64_t sid = open_write(p->cli.conn, true, "still here", 10, true);
    wait_stream w = {&p->cli, sid};
    CHECK(run_until(&p->loop, stream_fin, &w, 3000) && rec(&p->cli, sid)->len == 10, "%s", what);
}

/* A Version Negotiation packet (long header, version 0) for no connection
 * of ours: ngtcp2 hands back its connection ids unchecked, up to 255 bytes
 * (RFC 9000 17.2.1 leaves their length open for other versions).  It was
 * taken for a short header and answered with a stateless reset, and a
 * destination id over 20 bytes hit ngtcp2's assertion: one datagram
 * aborted the daemon (found when the hostile-path proxy's corruption made
 * one).  It must be dropped, unanswered (RFC 9000 6.1: never a VN for a VN;
 * a stateless reset answers short headers only). */
static void test_version_negotiation_for_nobody(void)
{
    pair p;
    int fd;
    struct sockaddr_storage srv;
    if (!attacked_pair(&p, &fd, &srv))
        return;
    irohds_net_endpoint_stats before, after;
    irohds_net_endpoint_stats_get(p.srv.ep, &before);
    static const uint8_t dcidlens[] = {0, 8, 20, 21, 64, 255};
    uint8_t b[1200];
    for (size_t i = 0; i < sizeof dcidlens; i++) {
        size_t len = long_header(b, sizeof b, 0, dcidlens[i]);
        b[6 + dcidlens[i]] = 8; /* a source id ngtcp2 can take */
        send_raw(fd, &srv, b, len);
        send_raw(fd, &srv, b, 6 + dcidlens[i] + 1 + 8 + 30); /* and a short one */
    }
    run_for(&p.loop, 200);
    uint8_t reply[1500];
    CHECK(recv(fd, reply, sizeof reply, 0) < 0, "no answer to a Version Negotiation packet");
    close(fd);
    irohds_net_endpoint_stats_get(p.srv.ep, &after);
    CHECK(after.stateless_resets_sent == before.stateless_resets_sent &&
              after.version_negotiations_sent == before.version_negotiations_sent,
          "no reset, no VN sent (%llu, %llu)",
          (unsigned long long)(after.stateless_resets_sent - before.stateless_resets_sent),
          (unsigned long long)(after.version_negotiations_sent - before.version_negotiations_sent));
    CHECK(after.rx_dropped >= before.rx_dropped + 2 * sizeof dcidlens, "dropped");
    check_still_echoes(&p, "echo after the VN packets");
    pair_down(&p);
}

/* An Initial that carries a token may have a 0-byte destination id
 * (ngtcp2_accept takes it; RFC 9000 7.2 asks 8 bytes of a first Initial
 * only).  The server mapped that empty id to the new connection but took
 * "length 0" for "not mapped" when the connection went, so the table kept a
 * freed connection: the next long-header packet with an empty id was read
 * through it (use after free; found by fuzz_quic).  The table must be back
 * to what it was once the connection has gone, and the next such packet
 * harmless. */
static void test_initial_with_empty_dcid(void)
{
    pair p;
    int fd;
    struct sockaddr_storage srv;
    if (!attacked_pair(&p, &fd, &srv))
        return;
    irohds_net_endpoint_stats before, after;
    irohds_net_endpoint_stats_get(p.srv.ep, &before);
    uint8_t b[1200];
    randombytes_buf(b, sizeof b);
    long_header(b, sizeof b, 1, 0); /* Initial, v1, DCID length 0 */
    size_t off = 6;
    b[off++] = 8; /* SCID length, then 8 bytes */
    off += 8;
    b[off++] = 16; /* token length (1-byte varint), then 16 bytes */
    off += 16;
    size_t rest = sizeof b - off - 2;
    b[off++] = (uint8_t)(0x40 | rest >> 8); /* Length, 2-byte varint */
    b[off++] = (uint8_t)rest;
    for (int round = 0; round < 3; round++) {
        send_raw(fd, &srv, b, sizeof b);
        run_for(&p.loop, 200);
        irohds_net_endpoint_stats_get(p.srv.ep, &after);
        CHECK(after.conns == before.conns && after.cids_mapped == before.cids_mapped,
              "round %d: the failed connection left nothing behind (%u conns, %llu ids, "
              "were %u, %llu)", round, after.conns, (unsigned long long)after.cids_mapped,
              before.conns, (unsigned long long)before.cids_mapped);
    }
    close(fd);
    check_still_echoes(&p, "echo after the empty-id Initials");
    pair_down(&p);
}

static void test_garbage(void)
{
    pair p;
    int fd;
    struct sockaddr_storage srv;
    if (!attacked_pair(&p, &fd, &srv))
        return;
    struct sockaddr_storage cli = addr_of(p.cli.ep, "127.0.0.1");
    garbage_to(fd, &srv);
    garbage_to(fd, &cli);
    /* An unknown version, Initial-sized: version negotiation comes back. */
    uint8_t b[1200], vn[1500];
    send_raw(fd, &srv, b, long_header(b, sizeof b, 0x1a2a3a4a, 8));
    run_for(&p.loop, 200);
    bool got_vn = false;
    ssize_t n;
    while ((n = recv(fd, vn, sizeof vn, 0)) > 0) {
        if (n >= 7 && (vn[0] & 0x80) && vn[1] == 0 && vn[2] == 0 && vn[3] == 0 && vn[4] == 0) {
            size_t off = 5 + 1 + vn[5];
            off += 1 + (off < (size_t)n ? vn[off] : 0);
            for (; off + 4 <= (size_t)n; off += 4)
                got_vn |= vn[off] == 0 && vn[off + 1] == 0 && vn[off + 2] == 0 && vn[off + 3] == 1;
        }
    }
    CHECK(got_vn, "version negotiation offers v1");
    close(fd);
    CHECK(p.cli.closed == 0 && p.srv.closed == 0, "connection survived");
    check_still_echoes(&p, "echo after garbage");
    irohds_net_endpoint_stats st;
    irohds_net_endpoint_stats_get(p.srv.ep, &st);
    CHECK(st.rx_dropped > 100, "dropped %llu", (unsigned long long)st.rx_dropped);
    CHECK(st.conns == 1 && p.srv.accepted == 1, "no stray connections (%u)", st.conns);
    CHECK(st.version_negotiations_sent >= 1, "vn sent");
    pair_down(&p);
}

/* A "server" that only answers version negotiation: the client gives up. */
static void test_version_negotiation(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    pair p;
    memset(&p, 0, sizeof p);
    uv_loop_init(&p.loop);
    p.cli.name = "client";
    p.kc = key_from_seed(0x2a);
    endpoint(&p.loop, &p.cli, &p.kc, "127.0.0.1:0", NULL);
    key k = key_from_seed(0);
    irohds_net_conn *c;
    irohds_net_connect(p.cli.ep, k.pk, (struct sockaddr *)&a, ALPN_BYTES, 0, NULL, &c);
    uint8_t in[2048], out[128];
    struct sockaddr_storage from;
    bool answered = false;
    for (int i = 0; i < 100 && !p.cli.closed; i++) {
        run_for(&p.loop, 10);
        socklen_t fl = sizeof from;
        ssize_t n = recvfrom(fd, in, sizeof in, 0, (struct sockaddr *)&from, &fl);
        if (n < 7 || !(in[0] & 0x80) || answered)
            continue;
        size_t dl = in[5], sl = in[6 + dl], o = 0;
        out[o++] = 0x80 | 0x3f;
        memset(out + o, 0, 4); /* version 0: version negotiation */
        o += 4;
        out[o++] = (uint8_t)sl;
        memcpy(out + o, in + 7 + dl, sl);
        o += sl;
        out[o++] = (uint8_t)dl;
        memcpy(out + o, in + 6, dl);
        o += dl;
        static const uint8_t other[4] = {0x1a, 0x2a, 0x3a, 0x4a}; /* nothing we speak */
        memcpy(out + o, other, 4);
        o += 4;
        sendto(fd, out, o, 0, (struct sockaddr *)&from, fl);
        answered = true;
    }
    CHECK(answered && run_until(&p.loop, cli_closed, &p, 3000), "client gave up");
    CHECK(p.cli.why.err == -EPROTONOSUPPORT, "err %d (%s)", p.cli.why.err, p.cli.why.reason);
    close(fd);
    irohds_net_endpoint_free(p.cli.ep);
    loop_done(&p.loop);
    side_reset(&p.cli);
}

/* iroh <= 1.0.3 sent base32dnssec(id).iroh.invalid as SNI; we may too. */
static void test_sni(void)
{
    irohds_net_config ccfg = {.flags = IROHDS_NET_SEND_SNI};
    pair p;
    if (pair_up(&p, "127.0.0.1", NULL, &ccfg))
        check_identities(&p);
    pair_down(&p);
}

/*
 * A hostile path: a UDP proxy between client and server that drops 3%,
 * duplicates 2%, flips a bit in 2% and delays 2% of the datagrams behind
 * the next one (reordering), both ways.  A transfer through it must arrive
 * intact: loss recovery, duplicate and corrupt packet handling.
 */
typedef struct proxy {
    uv_poll_t poll;
    int fd;
    struct sockaddr_storage client, server;
    bool have_client;
    uint8_t held[2048];
    size_t held_len;
    struct sockaddr_storage held_to;
    uint64_t dropped, duplicated, corrupted, reordered, forwarded;
} proxy;

static void proxy_send(proxy *px, const uint8_t *d, size_t n, const struct sockaddr_storage *to)
{
    sendto(px->fd, d, n, 0, (const struct sockaddr *)to, sizeof(struct sockaddr_in));
    px->forwarded++;
}

static void proxy_forward(proxy *px, uint8_t *d, size_t n, const struct sockaddr_storage *to)
{
    uint32_t r = randombytes_uniform(100);
    if (r < 3) {
        px->dropped++;
        return;
    }
    if (r < 5) {
        d[randombytes_uniform((uint32_t)n)] ^= (uint8_t)(1u << randombytes_uniform(8));
        px->corrupted++;
    } else if (r < 7 && !px->held_len && n <= sizeof px->held) {
        memcpy(px->held, d, n);
        px->held_len = n;
        px->held_to = *to;
        px->reordered++;
        return;
    }
    proxy_send(px, d, n, to);
    if (r >= 7 && r < 9) {
        proxy_send(px, d, n, to);
        px->duplicated++;
    }
    if (px->held_len) {
        proxy_send(px, px->held, px->held_len, &px->held_to);
        px->held_len = 0;
    }
}

static void proxy_readable(uv_poll_t *h, int status, int events)
{
    (void)status;
    (void)events;
    proxy *px = h->data;
    uint8_t buf[2048];
    struct sockaddr_storage from;
    socklen_t fl = sizeof from;
    ssize_t n;
    while ((n = recvfrom(px->fd, buf, sizeof buf, 0, (struct sockaddr *)&from, &fl)) > 0) {
        bool from_server = memcmp(&from, &px->server, sizeof(struct sockaddr_in)) == 0;
        if (!from_server && !px->have_client) {
            px->client = from;
            px->have_client = true;
        }
        proxy_forward(px, buf, (size_t)n, from_server ? &px->client : &px->server);
        fl = sizeof from;
    }
}

static void test_hostile_path(void)
{
    pair p;
    memset(&p, 0, sizeof p);
    uv_loop_init(&p.loop);
    p.srv.name = "server";
    p.cli.name = "client";
    p.ks = key_from_seed(0);
    p.kc = key_from_seed(0x2a);
    irohds_net_config cfg = {.max_udp_payload = 1452};
    endpoint(&p.loop, &p.srv, &p.ks, "127.0.0.1:0", &cfg);
    endpoint(&p.loop, &p.cli, &p.kc, "127.0.0.1:0", &cfg);
    static proxy px;
    memset(&px, 0, sizeof px);
    px.fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in pa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t pl = sizeof pa;
    bind(px.fd, (struct sockaddr *)&pa, sizeof pa);
    getsockname(px.fd, (struct sockaddr *)&pa, &pl);
    int big = 4 << 20;
    setsockopt(px.fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
    px.server = addr_of(p.srv.ep, "127.0.0.1");
    uv_poll_init(&p.loop, &px.poll, px.fd);
    px.poll.data = &px;
    uv_poll_start(&px.poll, UV_READABLE, proxy_readable);
    irohds_net_conn *c;
    irohds_net_connect(p.cli.ep, p.ks.pk, (struct sockaddr *)&pa, ALPN_BYTES, 0, NULL, &c);
    CHECK(run_until(&p.loop, both_up, &p, 10000) && p.cli.connected, "handshake through the proxy");
    if (p.cli.connected) {
        static pump tx;
        pump_init(&tx, 16u << 20);
        p.srv.hash = true;
        crypto_generichash_init(&p.srv.rx_hash, NULL, 0, 32);
        p.cli.pump = &tx;
        pump_start(&tx, p.cli.conn);
        flow f = {&p.srv, &tx, tx.sid};
        CHECK(run_until(&p.loop, flow_done, &f, 60000) && p.srv.bytes == (16u << 20),
              "16 MiB through the hostile path (%llu)", (unsigned long long)p.srv.bytes);
        CHECK(hashes_match(&p.srv, &tx), "intact");
        CHECK(p.cli.closed == 0 && p.srv.closed == 0, "connection survived");
    }
    printf("hostile path: %llu forwarded, %llu dropped, %llu duplicated, %llu corrupted, "
           "%llu reordered\n",
           (unsigned long long)px.forwarded, (unsigned long long)px.dropped,
           (unsigned long long)px.duplicated, (unsigned long long)px.corrupted,
           (unsigned long long)px.reordered);
    CHECK(px.dropped > 10 && px.corrupted > 10 && px.reordered > 10, "the path was hostile");
    uv_close((uv_handle_t *)&px.poll, NULL);
    close(px.fd);
    pair_down(&p);
}

/* ------------------------------------------------------------- restart */

static uint16_t free_port(void)
{
    int fd = socket(AF_INET, SOCK_DGRAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t al = sizeof a;
    bind(fd, (struct sockaddr *)&a, sizeof a);
    getsockname(fd, (struct sockaddr *)&a, &al);
    close(fd);
    return ntohs(a.sin_port);
}

/* A server in a child process, until it is killed. */
static pid_t serve_in_child(const char *listen)
{
    int pfd[2];
    if (pipe(pfd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        close(pfd[0]);
        uv_loop_t loop;
        uv_loop_init(&loop);
        static side srv;
        srv.name = "child";
        srv.echo = true;
        key k = key_from_seed(0);
        if (!endpoint(&loop, &srv, &k, listen, NULL))
            _exit(1);
        if (write(pfd[1], "x", 1) != 1)
            _exit(1);
        uv_run(&loop, UV_RUN_DEFAULT);
        _exit(0);
    }
    close(pfd[1]);
    char x;
    CHECK(read(pfd[0], &x, 1) == 1, "child server up");
    close(pfd[0]);
    return pid;
}

static void test_restart(void)
{
    char listen[64];
    snprintf(listen, sizeof listen, "127.0.0.1:%u", free_port());
    pid_t pid = serve_in_child(listen);
    if (pid <= 0)
        return;
    pair p;
    memset(&p, 0, sizeof p);
    uv_loop_init(&p.loop);
    p.cli.name = "client";
    p.cli.keep = p.cli.multi = true;
    p.ks = key_from_seed(0);
    p.kc = key_from_seed(0x2a);
    endpoint(&p.loop, &p.cli, &p.kc, "127.0.0.1:0", NULL);
    struct sockaddr_storage to;
    irohds_net_parse_addr(listen, &to);
    irohds_net_conn *c;
    irohds_net_connect(p.cli.ep, p.ks.pk, (struct sockaddr *)&to, ALPN_BYTES, 0, NULL, &c);
    CHECK(run_until(&p.loop, int_positive, &p.cli.connected, 3000), "connected to child");
    int64_t sid = open_write(c, true, "one", 3, true);
    wait_stream w = {&p.cli, sid};
    CHECK(run_until(&p.loop, stream_fin, &w, 3000), "echo from child");
    /* Crash: no CONNECTION_CLOSE.  The same key comes back on the same port. */
    kill(pid, SIGKILL);
    waitpid(pid, NULL, 0);
    p.srv.name = "server";
    p.srv.echo = true;
    CHECK(endpoint(&p.loop, &p.srv, &p.ks, listen, NULL) != NULL, "restarted on %s", listen);
    uint64_t t0 = uv_now(&p.loop);
    open_write(c, true, "two", 3, true);
    CHECK(run_until(&p.loop, cli_closed, &p, 3000), "old connection ended");
    CHECK(p.cli.why.err == -ECONNRESET && strstr(p.cli.why.reason, "stateless reset"),
          "by stateless reset: %d %s", p.cli.why.err, p.cli.why.reason);
    CHECK(uv_now(&p.loop) - t0 < 1000, "promptly (%llu ms)",
          (unsigned long long)(uv_now(&p.loop) - t0));
    irohds_net_endpoint_stats st;
    irohds_net_endpoint_stats_get(p.srv.ep, &st);
    CHECK(st.stateless_resets_sent >= 1, "reset sent");
    CHECK(irohds_net_find(p.cli.ep, p.ks.pk, ALPN_BYTES) == NULL, "nothing to reuse");
    static side again;
    memset(&again, 0, sizeof again);
    again.name = "again";
    again.keep = true;
    irohds_net_connect(p.cli.ep, p.ks.pk, (struct sockaddr *)&to, ALPN_BYTES, 0, &again, &c);
    CHECK(run_until(&p.loop, int_positive, &again.connected, 3000), "connected again");
    sid = open_write(c, true, "three", 5, true);
    wait_stream w2 = {&again, sid};
    CHECK(run_until(&p.loop, stream_fin, &w2, 3000) && rec(&again, sid)->len == 5,
          "echo from the restarted node");
    pair_down(&p);
    side_reset(&again);
}

static void test_dual_stack(void)
{
    uv_loop_t loop;
    uv_loop_init(&loop);
    static side srv, c4, c6;
    memset(&srv, 0, sizeof srv);
    memset(&c4, 0, sizeof c4);
    memset(&c6, 0, sizeof c6);
    srv.name = "server";
    srv.echo = srv.multi = true;
    c4.name = "v4";
    c6.name = "v6";
    c4.keep = c6.keep = true;
    key ks = key_from_seed(0), k4 = key_random(), k6 = key_random();
    endpoint(&loop, &srv, &ks, NULL, NULL); /* default: [::]:0 */
    endpoint(&loop, &c4, &k4, "127.0.0.1:0", NULL);
    endpoint(&loop, &c6, &k6, "[::1]:0", NULL);
    struct sockaddr_storage local;
    irohds_net_endpoint_local_addr(srv.ep, &local);
    CHECK(local.ss_family == AF_INET6, "default listen is IPv6 (dual-stack)");
    struct sockaddr_storage a4 = addr_of(srv.ep, "127.0.0.1"), a6 = addr_of(srv.ep, "::1");
    irohds_net_conn *x4, *x6;
    irohds_net_connect(c4.ep, ks.pk, (struct sockaddr *)&a4, ALPN_BYTES, 0, NULL, &x4);
    irohds_net_connect(c6.ep, ks.pk, (struct sockaddr *)&a6, ALPN_BYTES, 0, NULL, &x6);
    CHECK(irohds_net_connect(c4.ep, ks.pk, (struct sockaddr *)&a6, ALPN_BYTES, 0, NULL, &x6) ==
              -EAFNOSUPPORT, "v6 peer from a v4 socket");
    CHECK(run_until(&loop, int_positive, &c4.connected, 3000) &&
              run_until(&loop, int_positive, &c6.connected, 3000),
          "both families connected");
    int64_t s4 = open_write(x4, true, "four", 4, true), s6 = open_write(x6, true, "six", 3, true);
    wait_stream w4 = {&c4, s4}, w6 = {&c6, s6};
    CHECK(run_until(&loop, stream_fin, &w4, 3000) && run_until(&loop, stream_fin, &w6, 3000),
          "echo over both");
    irohds_net_conn *sc = irohds_net_find(srv.ep, k4.pk, ALPN_BYTES);
    irohds_net_conn_info info;
    CHECK(sc && irohds_net_conn_info_get(sc, &info) == 0 && info.remote_addr.ss_family == AF_INET,
          "IPv4 peer reported as AF_INET");
    /* Bulk from the dual-stack socket to the IPv4 peer: GSO to a mapped address. */
    static pump tx;
    static side down;
    memset(&down, 0, sizeof down);
    down.name = "down";
    pump_init(&tx, 32u << 20);
    down.pump = &tx;
    c4.hash = true;
    crypto_generichash_init(&c4.rx_hash, NULL, 0, 32);
    if (sc) {
        irohds_net_conn_set_user_ptr(sc, &down);
        pump_start(&tx, sc);
    }
    flow f = {&c4, &tx, tx.sid};
    CHECK(run_until(&loop, flow_done, &f, 30000) && c4.bytes == (32u << 20) + 4,
          "32 MiB to the IPv4 peer (%llu)", (unsigned long long)c4.bytes);
    CHECK(hashes_match(&c4, &tx), "intact");
    struct sockaddr_storage addrs[64];
    int n = irohds_net_endpoint_addrs(srv.ep, addrs, 64);
    bool has4 = false, has6 = false;
    for (int i = 0; i < n; i++) {
        char buf[80];
        irohds_net_addr_str((struct sockaddr *)&addrs[i], buf, sizeof buf);
        has4 |= strncmp(buf, "127.0.0.1:", 10) == 0;
        has6 |= strncmp(buf, "[::1]:", 6) == 0;
    }
    CHECK(n > 0 && has4 && has6, "addrs lists both loopbacks (%d)", n);
    irohds_net_endpoint_free(c4.ep);
    irohds_net_endpoint_free(c6.ep);
    irohds_net_endpoint_free(srv.ep);
    loop_done(&loop);
    side_reset(&srv);
    side_reset(&c4);
    side_reset(&c6);
}

typedef struct wait_bytes {
    side *s;
    int64_t sid;
    size_t len;
} wait_bytes;

static bool stream_has(void *arg)
{
    wait_bytes *w = arg;
    return rec(w->s, w->sid)->len >= w->len;
}

static bool stream_reset_seen(void *arg)
{
    wait_stream *w = arg;
    return rec(w->s, w->sid)->reset;
}

static void test_reset_stop(void)
{
    pair p;
    if (!pair_up(&p, "127.0.0.1", NULL, NULL)) {
        pair_down(&p);
        return;
    }
    p.srv.keep = p.cli.keep = true;
    uint8_t buf[1000] = {1};
    /* Client abandons its side: the server hears the code. */
    int64_t sid = open_write(p.cli.conn, true, buf, sizeof buf, false);
    wait_bytes wb = {&p.srv, sid, sizeof buf};
    CHECK(run_until(&p.loop, stream_has, &wb, 3000), "data before the reset");
    CHECK(irohds_net_stream_reset(p.cli.conn, sid, 9) == 0, "reset");
    CHECK(irohds_net_stream_write(p.cli.conn, sid, buf, 1, false) == -EPIPE, "write after reset");
    wait_stream ws = {&p.srv, sid};
    CHECK(run_until(&p.loop, stream_reset_seen, &ws, 3000) && rec(&p.srv, sid)->reset_code == 9,
          "server saw reset code 9");
    /* Server stops reading a stream: the client's writes end, with the code. */
    int64_t sid2 = open_write(p.cli.conn, true, buf, sizeof buf, false);
    wait_bytes wb2 = {&p.srv, sid2, sizeof buf};
    CHECK(run_until(&p.loop, stream_has, &wb2, 3000), "data before stop_sending");
    CHECK(irohds_net_stream_stop_sending(p.srv.conn, sid2, 11) == 0, "stop_sending");
    CHECK(irohds_net_stream_stop_sending(p.srv.conn, sid2, 11) == -EPIPE, "stop twice");
    ssize_t n = 0;
    for (int i = 0; i < 50 && n >= 0; i++) {
        n = irohds_net_stream_write(p.cli.conn, sid2, buf, sizeof buf, false);
        run_for(&p.loop, 10);
    }
    CHECK(n == -EPIPE, "client writes fail after STOP_SENDING (%zd)", n);
    CHECK(irohds_net_stream_write(p.srv.conn, sid2, NULL, 0, true) == 0, "server fin");
    wait_stream wc = {&p.cli, sid2};
    CHECK(run_until(&p.loop, stream_closed, &wc, 3000), "client stream closed");
    CHECK(rec(&p.cli, sid2)->closed_err == -ECONNRESET && rec(&p.cli, sid2)->closed_code == 11,
          "closed with code 11 (%d, %llu)", rec(&p.cli, sid2)->closed_err,
          (unsigned long long)rec(&p.cli, sid2)->closed_code);
    pair_down(&p);
}

/*
 * A FIN that comes alone, after the data (iroh-blobs' requester writes its
 * request, then finishes the stream: often two packets).  recv gets len 0
 * with fin, and a valid data pointer: receivers copy with memcpy(dst, data,
 * len), and memcpy from NULL is undefined even for 0 bytes (UBSan stopped
 * the daemon on exactly this when a real iroh node fetched from it).  Both
 * paths: delivered at once, and held while reads are paused.
 */
static void test_empty_fin(void)
{
    for (int paused = 0; paused < 2; paused++) {
        pair p;
        if (!pair_up(&p, "127.0.0.1", NULL, NULL)) {
            pair_down(&p);
            return;
        }
        p.srv.keep = true;
        p.srv.pause = paused;
        uint8_t buf[100] = {7};
        int64_t sid = open_write(p.cli.conn, true, buf, sizeof buf, false);
        wait_bytes wb = {&p.srv, sid, sizeof buf};
        CHECK(run_until(&p.loop, stream_has, &wb, 3000), "data before the fin");
        CHECK(irohds_net_stream_write(p.cli.conn, sid, NULL, 0, true) == 0, "fin alone");
        if (paused) {
            run_for(&p.loop, 50); /* the fin arrives and is held */
            CHECK(!rec(&p.srv, sid)->fin, "no fin delivered while paused");
            CHECK(irohds_net_stream_set_read_paused(p.srv.conn, sid, false) == 0, "resume");
        }
        wait_stream ws = {&p.srv, sid};
        CHECK(run_until(&p.loop, stream_fin, &ws, 3000), "fin delivered (paused %d)", paused);
        CHECK(rec(&p.srv, sid)->len == sizeof buf, "all data, once");
        CHECK(!rec(&p.srv, sid)->null_data, "recv never gets a NULL data pointer (paused %d)",
              paused);
        pair_down(&p);
    }
}

static void test_free_in_callback(void)
{
    pair p;
    if (pair_up(&p, "127.0.0.1", NULL, NULL)) {
        int64_t sid = open_write(p.cli.conn, true, "x", 1, false);
        (void)sid;
        p.cli.free_in_cb = true;
        irohds_net_conn_close(p.cli.conn, 0, "done");
        CHECK(run_until(&p.loop, cli_closed, &p, 3000) && p.cli.ep == NULL, "freed in closed");
        CHECK(rec(&p.cli, sid)->closed && rec(&p.cli, sid)->closed_err == -ECONNABORTED,
              "stream aborted before the connection closed");
        CHECK(run_until(&p.loop, int_positive, &p.srv.closed, 3000), "server heard");
    }
    pair_down(&p);
}

/* ------------------------------------------------------------- volume */

static void test_transfer(const char *host, uint64_t total, size_t payload, unsigned flags)
{
    irohds_net_config cfg = {.max_udp_payload = payload, .flags = flags};
    pair p;
    if (!pair_up(&p, host, &cfg, &cfg)) {
        pair_down(&p);
        return;
    }
    static pump tx;
    pump_init(&tx, total);
    p.srv.hash = true;
    crypto_generichash_init(&p.srv.rx_hash, NULL, 0, 32);
    p.cli.pump = &tx;
    uint64_t t0 = uv_hrtime();
    pump_start(&tx, p.cli.conn);
    flow f = {&p.srv, &tx, tx.sid};
    CHECK(run_until(&p.loop, flow_done, &f, 120000), "transfer finished");
    double secs = (double)(uv_hrtime() - t0) / 1e9;
    CHECK(p.srv.bytes == total, "received %llu of %llu", (unsigned long long)p.srv.bytes,
          (unsigned long long)total);
    CHECK(hashes_match(&p.srv, &tx), "BLAKE2b of the received bytes matches");
    CHECK(tx.max_buffered <= (8u << 20), "sender held at most %zu", tx.max_buffered);
    irohds_net_endpoint_stats st;
    irohds_net_endpoint_stats_get(p.cli.ep, &st);
    CHECK(st.gso == !(flags & IROHDS_NET_NO_GSO) && st.gro == !(flags & IROHDS_NET_NO_GRO),
          "gso %d gro %d as configured", st.gso, st.gro);
    double per_call = (double)st.tx_datagrams / (double)st.tx_syscalls;
    if (payload && payload < 2000)
        CHECK(per_call > 8, "batched sends: %.1f datagrams per system call", per_call);
    printf("transfer over %s, %zu-byte datagrams%s: %llu MiB in %.2f s (%.0f MB/s, this build), "
           "%.1f datagrams per send call\n",
           host, payload ? payload : (size_t)65000, flags ? ", no GSO/GRO" : "",
           (unsigned long long)(total >> 20), secs, (double)total / secs / 1e6, per_call);
    pair_down(&p);
}

/*
 * One receiver, two connections.  A's reads are paused from its first
 * byte, B keeps going: B must finish while A is stalled (its speed beside
 * A against alone is printed), A's sender must stay within its caps, and A
 * must finish once resumed.
 */
static double flow_alone(uint64_t total)
{
    pair p;
    double rate = 0;
    if (pair_up(&p, "127.0.0.1", NULL, NULL)) {
        static pump tx;
        pump_init(&tx, total);
        p.cli.pump = &tx;
        uint64_t t0 = uv_hrtime();
        pump_start(&tx, p.cli.conn);
        flow f = {&p.srv, &tx, tx.sid};
        if (run_until(&p.loop, flow_done, &f, 60000))
            rate = (double)total / ((double)(uv_hrtime() - t0) / 1e9);
    }
    pair_down(&p);
    return rate;
}

static void test_fairness(void)
{
    const uint64_t total = 96u << 20;
    double solo = flow_alone(total);
    uv_loop_t loop;
    uv_loop_init(&loop);
    static side srv, cli, ra, rb, ta, tb;
    static pump pa, pb;
    memset(&srv, 0, sizeof srv);
    memset(&cli, 0, sizeof cli);
    memset(&ra, 0, sizeof ra);
    memset(&rb, 0, sizeof rb);
    memset(&ta, 0, sizeof ta);
    memset(&tb, 0, sizeof tb);
    srv.name = cli.name = "endpoint";
    ra.name = "A";
    rb.name = "B";
    ra.pause = true;
    ra.hash = rb.hash = true;
    crypto_generichash_init(&ra.rx_hash, NULL, 0, 32);
    crypto_generichash_init(&rb.rx_hash, NULL, 0, 32);
    srv.give[0] = &ra;
    srv.give[1] = &rb;
    srv.ngive = 2;
    key ks = key_from_seed(0), kc = key_from_seed(0x2a);
    endpoint(&loop, &srv, &ks, "127.0.0.1:0", NULL);
    endpoint(&loop, &cli, &kc, "127.0.0.1:0", NULL);
    struct sockaddr_storage to = addr_of(srv.ep, "127.0.0.1");
    irohds_net_conn *ca, *cb;
    ta.name = "tA";
    tb.name = "tB";
    irohds_net_connect(cli.ep, ks.pk, (struct sockaddr *)&to, ALPN_BYTES, 0, &ta, &ca);
    CHECK(run_until(&loop, int_positive, &ra.accepted, 3000), "A up");
    irohds_net_connect(cli.ep, ks.pk, (struct sockaddr *)&to, ALPN_BYTES, 0, &tb, &cb);
    CHECK(run_until(&loop, int_positive, &rb.accepted, 3000), "B up");
    pump_init(&pa, total);
    pump_init(&pb, total);
    ta.pump = &pa;
    tb.pump = &pb;
    pump_start(&pa, ca);
    run_for(&loop, 300); /* A fills its windows and buffers, then stalls */
    uint64_t a_stalled = ra.bytes;
    uint64_t t0 = uv_hrtime();
    pump_start(&pb, cb);
    flow fb = {&rb, &pb, pb.sid};
    CHECK(run_until(&loop, flow_done, &fb, 60000), "B finished while A is paused");
    double rate = (double)total / ((double)(uv_hrtime() - t0) / 1e9);
    CHECK(hashes_match(&rb, &pb), "B intact");
    CHECK(ra.bytes == a_stalled, "A delivered nothing while paused");
    /* How fast B ran beside A is printed, not asserted: speed is measured in
     * bench/ (a loaded 2-core machine makes any bound here flaky); what must
     * hold is that B finished at all while A's reader was stalled. */
    CHECK(pa.max_buffered <= (8u << 20), "A's sender held %zu (cap 8 MiB)", pa.max_buffered);
    CHECK(pa.sent <= (8u << 20) + (16u << 20) + STAGE, "A's writer was held back at %llu",
          (unsigned long long)pa.sent);
    printf("fairness: B %.0f MB/s beside paused A (alone %.0f MB/s); A stalled at %llu MiB\n",
           rate / 1e6, solo / 1e6, (unsigned long long)(pa.sent >> 20));
    irohds_net_conn *sa = irohds_net_find(srv.ep, kc.pk, ALPN_BYTES);
    irohds_net_conn *sb = NULL;
    for (int i = 0; i < 2; i++) /* find returns either; A is the one with user ptr ra */
        sb = sa && irohds_net_conn_user_ptr(sa) == &ra ? sa : NULL;
    (void)sb;
    CHECK(ra.conn != NULL, "A still open");
    if (ra.conn)
        irohds_net_stream_set_read_paused(ra.conn, pa.sid, false);
    flow fa = {&ra, &pa, pa.sid};
    CHECK(run_until(&loop, flow_done, &fa, 60000) && ra.bytes == total, "A finished on resume");
    CHECK(hashes_match(&ra, &pa), "A intact");
    irohds_net_endpoint_free(cli.ep);
    irohds_net_endpoint_free(srv.ep);
    loop_done(&loop);
}

/* Small caps: writes are cut at the stream cap, then at the connection cap,
 * and the sender never holds more while the receiver does not read. */
static void test_send_caps(void)
{
    irohds_net_config ccfg = {.stream_send_cap = 1u << 20, .conn_send_cap = 3u << 19};
    irohds_net_config scfg = {.stream_window = 256u << 10, .conn_window = 512u << 10};
    pair p;
    if (!pair_up(&p, "127.0.0.1", &scfg, &ccfg)) {
        pair_down(&p);
        return;
    }
    p.srv.pause = true;
    size_t big = 4u << 20;
    uint8_t *buf = calloc(1, big);
    int64_t s1, s2;
    irohds_net_stream_open(p.cli.conn, true, NULL, &s1);
    irohds_net_stream_open(p.cli.conn, true, NULL, &s2);
    CHECK(irohds_net_stream_write(p.cli.conn, s1, buf, big, false) == (1 << 20), "stream cap");
    CHECK(irohds_net_stream_write(p.cli.conn, s2, buf, big, false) == (1 << 19), "conn cap");
    CHECK(irohds_net_stream_write(p.cli.conn, s1, buf, big, false) == 0, "full");
    size_t most = 0;
    for (int i = 0; i < 30; i++) {
        run_for(&p.loop, 10);
        irohds_net_stream_write(p.cli.conn, s1, buf, big, false);
        irohds_net_stream_write(p.cli.conn, s2, buf, big, false);
        irohds_net_conn_info info;
        irohds_net_conn_info_get(p.cli.conn, &info);
        if (info.send_buffered > most)
            most = info.send_buffered;
    }
    CHECK(most <= (3u << 19), "sender held at most %zu", most);
    CHECK(p.srv.bytes <= (512u << 10), "receiver delivered %llu within its window",
          (unsigned long long)p.srv.bytes);
    free(buf);
    pair_down(&p);
}

/* Entry */

int main(int argc, char **argv)
{
    testdata = argc > 1 ? argv[1] : "../shared/testdata";
    if (sodium_init() < 0)
        return 1;
    irohds_log_set_level(IROHDS_LOG_WARN);
    test_vectors();
    test_handshake();
    test_wrong_id();
    test_any_id();
    test_echo("127.0.0.1");
    test_echo("::1");
    test_uni();
    test_many_streams();
    test_many_conns();
    test_alpn_refused();
    test_close_codes();
    test_idle();
    test_dead_port();
    test_garbage();
    test_version_negotiation_for_nobody();
    test_initial_with_empty_dcid();
    test_version_negotiation();
    test_sni();
    test_hostile_path();
    test_restart();
    test_dual_stack();
    test_reset_stop();
    test_empty_fin();
    test_free_in_callback();
    test_send_caps();
    test_fairness();
    test_transfer("127.0.0.1", 256u << 20, 0, 0);
    test_transfer("::1", 32u << 20, 0, 0);
    test_transfer("127.0.0.1", 64u << 20, 1452, 0);
    test_transfer("::1", 32u << 20, 1452, 0);
    test_transfer("127.0.0.1", 32u << 20, 1452, IROHDS_NET_NO_GSO | IROHDS_NET_NO_GRO);
    return check_summary();
}

static void on_writable(irohds_net_conn *c, int64_t sid, void *sptr)
{
    (void)sid;
    (void)sptr;
    side *s = side_of(c);
    s->writable++;
    if (s->pump)
        pump_run(s->pump, c);
}
