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
#include <sys/socket.h>
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
    bool fin, opened, reset, closed;
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

static side *side_of(irohds_net_conn *c)
{
    return irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
}

/* ------------------------------------------------------------- callbacks */

static void on_accepted(irohds_net_conn *c)
{
    side *s = side_of(c);
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
    s->bytes += len;
    if (s->keep)
        srec_add(r, data, len);
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
    CHECK(!r->closed, "stream %lld closed twice", (long long)sid);
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
    return check_summary();
}

static void on_writable(irohds_net_conn *c, int64_t sid, void *sptr)
{
    (void)sid;
    (void)sptr;
    side_of(c)->writable++;
}
