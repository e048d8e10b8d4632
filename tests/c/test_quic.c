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
    bool multi;         /* many connections share it: stream ids repeat */
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

/* A connection with a side of its own as user pointer reports there. */
static side *side_of(irohds_net_conn *c)
{
    side *s = irohds_net_conn_user_ptr(c);
    return s ? s : irohds_net_endpoint_user_ptr(irohds_net_conn_endpoint(c));
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
    test_echo("127.0.0.1");
    test_echo("::1");
    test_uni();
    test_many_streams();
    test_many_conns();
    test_alpn_refused();
    test_close_codes();
    test_idle();
    test_dead_port();
    return check_summary();
}

static void on_writable(irohds_net_conn *c, int64_t sid, void *sptr)
{
    (void)sid;
    (void)sptr;
    side_of(c)->writable++;
}
