/*
 * conn.c: one QUIC connection, glued to ngtcp2.
 *
 * ngtcp2 does the protocol; this file feeds it datagrams, pulls packets out
 * of it, runs its timer, and turns its callbacks into ours.  The rules that
 * shape the code:
 *
 *   - ngtcp2 may not be re-entered from its own callbacks, so anything an
 *     app callback asks for that needs a packet written (a close, held reads
 *     to deliver, writable notifications) is recorded and done when the
 *     endpoint services the connection from the loop.  Stream data is the
 *     exception: recv is called straight from ngtcp2's callback, because
 *     the bytes live in ngtcp2's buffer only for that long.
 *   - A connection's life: HANDSHAKE -> OPEN -> CLOSING (we sent
 *     CONNECTION_CLOSE; it is resent if the peer keeps talking) or DRAINING
 *     (the peer closed) for three PTOs, or straight to DEAD (idle or
 *     handshake timeout: nothing to say).  The app's closed callback comes
 *     once, on leaving HANDSHAKE/OPEN; after it the app has no handle on the
 *     connection, which lives on only to absorb late packets.
 *   - Writing is done in bursts of at most one send quantum (ngtcp2's pacing
 *     unit, capped at 64 packets); the endpoint goes round the connections
 *     so one busy peer cannot starve the others.  Within a connection,
 *     streams with data take turns packet by packet.
 */
#include <errno.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"
#include "util/util.h"

#define MAX_BURST 64
#define STREAM_VECS 4

static void on_timer(uv_timer_t *t);

static bool usable(const irohds_net_conn *c)
{
    return c->state == NET_CONN_OPEN && c->visible && !c->close_requested;
}

bool net_conn_live(const irohds_net_conn *c)
{
    return c->state == NET_CONN_HANDSHAKE || c->state == NET_CONN_OPEN;
}

/* ------------------------------------------------------- connection ids */

static int issue_cid(irohds_net_conn *c, ngtcp2_cid *cid, uint8_t *token)
{
    if (c->ncids == NET_MAX_CIDS)
        return -ENOSPC;
    int r;
    do {
        randombytes_buf(cid->data, NET_SCID_LEN);
        cid->datalen = NET_SCID_LEN;
        r = net_cidmap_put(&c->ep->cids, cid->data, cid->datalen, c);
    } while (r == -EEXIST);
    if (r < 0)
        return r;
    c->cids[c->ncids++] = *cid;
    if (token && ngtcp2_crypto_generate_stateless_reset_token(
                     token, c->ep->reset_secret, sizeof c->ep->reset_secret, cid) != 0)
        return -EIO;
    return 0;
}

static void forget_cid(irohds_net_conn *c, const ngtcp2_cid *cid)
{
    for (size_t i = 0; i < c->ncids; i++) {
        if (ngtcp2_cid_eq(&c->cids[i], cid)) {
            net_cidmap_del(&c->ep->cids, cid->data, cid->datalen);
            c->cids[i] = c->cids[--c->ncids];
            return;
        }
    }
}

/* Stateless reset tokens of the peer's ids we use: a reset arrives with an
 * id we cannot route, so the endpoint finds the connection by its token. */
static void watch_token(irohds_net_conn *c, const uint8_t *token)
{
    if (c->ntokens == NET_MAX_TOKENS ||
        net_cidmap_put(&c->ep->tokens, token, NGTCP2_STATELESS_RESET_TOKENLEN, c) != 0)
        return;
    memcpy(c->tokens[c->ntokens++], token, NGTCP2_STATELESS_RESET_TOKENLEN);
}

static void unwatch_token(irohds_net_conn *c, const uint8_t *token)
{
    for (size_t i = 0; i < c->ntokens; i++) {
        if (memcmp(c->tokens[i], token, NGTCP2_STATELESS_RESET_TOKENLEN) == 0) {
            net_cidmap_del(&c->ep->tokens, token, NGTCP2_STATELESS_RESET_TOKENLEN);
            memmove(c->tokens[i], c->tokens[--c->ntokens], NGTCP2_STATELESS_RESET_TOKENLEN);
            return;
        }
    }
}

/* ------------------------------------------------------ ngtcp2 callbacks */

static ngtcp2_conn *get_conn(ngtcp2_crypto_conn_ref *ref)
{
    return ((irohds_net_conn *)ref->user_data)->qc;
}

static void on_rand(uint8_t *dest, size_t len, const ngtcp2_rand_ctx *ctx)
{
    (void)ctx;
    randombytes_buf(dest, len);
}

static int on_new_cid(ngtcp2_conn *qc, ngtcp2_cid *cid, uint8_t *token, size_t cidlen, void *user)
{
    (void)qc;
    (void)cidlen; /* always NET_SCID_LEN: the length of our first id */
    return issue_cid(user, cid, token) == 0 ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int on_remove_cid(ngtcp2_conn *qc, const ngtcp2_cid *cid, void *user)
{
    (void)qc;
    forget_cid(user, cid);
    return 0;
}

/* Close from the loop (ngtcp2 cannot be re-entered here). */
static void request_close(irohds_net_conn *c, int err, bool app, uint64_t code, const char *why)
{
    if (c->close_requested)
        return;
    c->close_requested = true;
    c->close_err = err;
    c->close_app = app;
    c->close_code = code;
    snprintf(c->close_reason, sizeof c->close_reason, "%s", why);
    net_ep_schedule(c->ep, c);
}

/* Handshake done: learn the ALPN and the peer, and tell the app. */
static int on_handshake_completed(ngtcp2_conn *qc, void *user)
{
    (void)qc;
    irohds_net_conn *c = user;
    if (net_tls_alpn(c->tls, c->alpn, sizeof c->alpn) != 0) {
        request_close(c, -ENOPROTOOPT, false, NGTCP2_CRYPTO_ERROR | 120, "no ALPN negotiated");
        return 0;
    }
    if (!c->client && !c->peer.have_spki) {
        request_close(c, -EKEYREJECTED, false, NGTCP2_CRYPTO_ERROR | 42, "no client key");
        return 0;
    }
    if (!c->client || c->peer.any_id) { /* the key it proved is its id */
        memcpy(c->remote_id, c->peer.spki + IROHDS_NET_SPKI_LEN - IROHDS_NET_ID_LEN,
               IROHDS_NET_ID_LEN);
        c->remote_id_known = true;
    }
    c->state = NET_CONN_OPEN;
    c->visible = true;
    void (*cb)(irohds_net_conn *) = c->client ? c->ep->cb.connected : c->ep->cb.accepted;
    if (cb)
        cb(c);
    return 0;
}

/* Our stream struct for sid; the peer's streams get one on first sight. */
static net_stream *stream_for(irohds_net_conn *c, int64_t sid, void *sdata)
{
    if (sdata)
        return sdata;
    net_stream *s = net_stream_new(c, sid, NULL);
    if (!s)
        return NULL;
    ngtcp2_conn_set_stream_user_data(c->qc, sid, s);
    if (usable(c) && c->ep->cb.stream_opened) {
        s->seen = true;
        c->ep->cb.stream_opened(c, sid);
    }
    return s;
}

static int on_stream_open(ngtcp2_conn *qc, int64_t sid, void *user)
{
    (void)qc;
    return stream_for(user, sid, NULL) ? 0 : NGTCP2_ERR_CALLBACK_FAILURE;
}

static int on_recv_stream_data(ngtcp2_conn *qc, uint32_t flags, int64_t sid, uint64_t offset,
                               const uint8_t *data, size_t len, void *user, void *sdata)
{
    (void)qc;
    (void)offset;
    irohds_net_conn *c = user;
    net_stream *s = stream_for(c, sid, sdata);
    if (!s)
        return NGTCP2_ERR_CALLBACK_FAILURE;
    bool fin = flags & NGTCP2_STREAM_DATA_FLAG_FIN;
    static const uint8_t none[1];
    if (!data)
        data = none; /* ngtcp2's FIN without data: recv promises a valid pointer */
    if (s->rd_shut || !usable(c)) {
        net_stream_consumed(c, sid, len);
        return 0;
    }
    if (s->paused || s->hold.head || s->hold.fin) {
        if (net_holdbuf_add(&s->hold, &c->ep->pool, data, len) != 0)
            return NGTCP2_ERR_CALLBACK_FAILURE;
        s->hold.fin |= fin;
        return 0;
    }
    c->stream_bytes_recv += len;
    s->seen = true;
    if (c->ep->cb.recv)
        c->ep->cb.recv(c, sid, s->user_ptr, data, len, fin);
    net_stream_consumed(c, sid, len);
    return 0;
}

static int on_acked(ngtcp2_conn *qc, int64_t sid, uint64_t offset, uint64_t len, void *user,
                    void *sdata)
{
    (void)qc;
    (void)sid;
    (void)offset;
    irohds_net_conn *c = user;
    net_stream *s = sdata;
    if (!s)
        return 0;
    net_sendbuf_ack(&s->sb, &c->ep->pool, len);
    c->buffered -= len;
    c->stream_bytes_sent += len;
    if (c->n_want_writable && !c->drained) {
        c->drained = true;
        net_ep_schedule(c->ep, c);
    }
    return 0;
}

static int on_stream_close(ngtcp2_conn *qc, uint32_t flags, int64_t sid, uint64_t code,
                           void *user, void *sdata)
{
    irohds_net_conn *c = user;
    if (!ngtcp2_conn_is_local_stream(qc, sid)) {
        if (ngtcp2_is_bidi_stream(sid))
            ngtcp2_conn_extend_max_streams_bidi(qc, 1);
        else
            ngtcp2_conn_extend_max_streams_uni(qc, 1);
    }
    if (!sdata)
        return 0;
    bool coded = flags & NGTCP2_STREAM_CLOSE_FLAG_APP_ERROR_CODE_SET;
    net_stream_closed(c, sdata, coded ? -ECONNRESET : 0, coded ? code : 0);
    return 0;
}

static int on_stream_reset(ngtcp2_conn *qc, int64_t sid, uint64_t final_size, uint64_t code,
                           void *user, void *sdata)
{
    (void)qc;
    (void)final_size;
    irohds_net_conn *c = user;
    net_stream *s = sdata;
    if (!s)
        return 0;
    s->rd_shut = true;
    net_stream_drop_held(c, s);
    if (usable(c) && c->ep->cb.stream_reset) {
        s->seen = true;
        c->ep->cb.stream_reset(c, sid, s->user_ptr, code);
    }
    return 0;
}

static int on_extend_max_stream_data(ngtcp2_conn *qc, int64_t sid, uint64_t max_data,
                                     void *user, void *sdata)
{
    (void)qc;
    (void)sid;
    (void)max_data;
    irohds_net_conn *c = user;
    net_stream *s = sdata;
    if (s && !s->wr_shut && (s->sb.sent < s->sb.written || (s->fin_wanted && !s->fin_sent))) {
        net_stream_sendq_add(c, s);
        net_ep_schedule(c->ep, c);
    }
    return 0;
}

static int on_dcid_status(ngtcp2_conn *qc, int type, uint64_t seq, const ngtcp2_cid *cid,
                          const uint8_t *token, void *user)
{
    (void)qc;
    (void)seq;
    (void)cid;
    if (token && type == NGTCP2_CONNECTION_ID_STATUS_TYPE_ACTIVATE)
        watch_token(user, token);
    else if (token)
        unwatch_token(user, token);
    return 0;
}

static int on_stateless_reset(ngtcp2_conn *qc, const ngtcp2_pkt_stateless_reset *sr, void *user)
{
    (void)qc;
    (void)sr;
    ((irohds_net_conn *)user)->got_reset = true;
    return 0;
}

static const ngtcp2_callbacks CALLBACKS = {
    .client_initial = ngtcp2_crypto_client_initial_cb,
    .recv_client_initial = ngtcp2_crypto_recv_client_initial_cb,
    .recv_crypto_data = ngtcp2_crypto_recv_crypto_data_cb,
    .handshake_completed = on_handshake_completed,
    .encrypt = ngtcp2_crypto_encrypt_cb,
    .decrypt = ngtcp2_crypto_decrypt_cb,
    .hp_mask = ngtcp2_crypto_hp_mask_cb,
    .recv_stream_data = on_recv_stream_data,
    .acked_stream_data_offset = on_acked,
    .stream_open = on_stream_open,
    .stream_close = on_stream_close,
    .recv_stateless_reset = on_stateless_reset,
    .recv_retry = ngtcp2_crypto_recv_retry_cb,
    .rand = on_rand,
    .get_new_connection_id = on_new_cid,
    .remove_connection_id = on_remove_cid,
    .update_key = ngtcp2_crypto_update_key_cb,
    .stream_reset = on_stream_reset,
    .extend_max_stream_data = on_extend_max_stream_data,
    .dcid_status = on_dcid_status,
    .delete_crypto_aead_ctx = ngtcp2_crypto_delete_crypto_aead_ctx_cb,
    .delete_crypto_cipher_ctx = ngtcp2_crypto_delete_crypto_cipher_ctx_cb,
    .get_path_challenge_data = ngtcp2_crypto_get_path_challenge_data_cb,
    .version_negotiation = ngtcp2_crypto_version_negotiation_cb,
};

/* ------------------------------------------------------------- creation */

static ngtcp2_cc_algo cc_algo(int cc)
{
    switch (cc) {
    case IROHDS_NET_CC_RENO:
        return NGTCP2_CC_ALGO_RENO;
    case IROHDS_NET_CC_CUBIC:
        return NGTCP2_CC_ALGO_CUBIC;
    case IROHDS_NET_CC_BBR2:
        return NGTCP2_CC_ALGO_BBR2;
    default:
        return NGTCP2_CC_ALGO_BBR;
    }
}

static void fill_settings(irohds_net_conn *c, ngtcp2_settings *s, uint64_t now)
{
    const irohds_net_config *cfg = &c->ep->cfg;
    ngtcp2_settings_default(s);
    s->initial_ts = now;
    s->initial_rtt = c->initial_rtt;
    s->cc_algo = cc_algo(cfg->cc);
    s->handshake_timeout = cfg->handshake_timeout_ms * NGTCP2_MILLISECONDS;
    size_t payload = net_ep_payload_size(c->ep, (const struct sockaddr *)&c->remote);
    s->max_tx_udp_payload_size = payload;
    /* Above what PMTUD probes for, the size is known (loopback, or set by
     * the caller): use it as is. */
    s->no_tx_udp_payload_size_shaping = payload > NGTCP2_MAX_PMTUD_UDP_PAYLOAD_SIZE;
    s->no_pmtud = s->no_tx_udp_payload_size_shaping;
}

static void fill_params(irohds_net_conn *c, ngtcp2_transport_params *p)
{
    const irohds_net_config *cfg = &c->ep->cfg;
    ngtcp2_transport_params_default(p);
    p->initial_max_stream_data_bidi_local = cfg->stream_window;
    p->initial_max_stream_data_bidi_remote = cfg->stream_window;
    p->initial_max_stream_data_uni = cfg->stream_window;
    p->initial_max_data = cfg->conn_window;
    p->initial_max_streams_bidi = cfg->max_streams_bidi;
    p->initial_max_streams_uni = cfg->max_streams_uni;
    p->max_idle_timeout = cfg->idle_timeout_ms * NGTCP2_MILLISECONDS;
    p->active_connection_id_limit = 4;
}

static irohds_net_conn *conn_alloc(irohds_net_endpoint *ep, bool client,
                                   const struct sockaddr *remote, socklen_t remote_len)
{
    irohds_net_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->peer.ref.get_conn = get_conn;
    c->peer.ref.user_data = c;
    c->peer.client = client;
    c->ep = ep;
    c->client = client;
    c->state = NET_CONN_HANDSHAKE;
    memcpy(&c->remote, remote, remote_len);
    return c;
}

/* Undo a half-built connection (no handle yet, so this is synchronous). */
static void conn_discard(irohds_net_conn *c)
{
    while (c->ncids)
        forget_cid(c, &c->cids[0]);
    while (c->ntokens)
        unwatch_token(c, c->tokens[0]);
    if (c->odcid_mapped)
        net_cidmap_del(&c->ep->cids, c->odcid.data, c->odcid.datalen);
    if (c->qc)
        ngtcp2_conn_del(c->qc);
    if (c->tls)
        gnutls_deinit(c->tls);
    free(c);
}

/* The handle and the lists: from here on the connection is the endpoint's. */
static void conn_attach(irohds_net_conn *c)
{
    irohds_net_endpoint *ep = c->ep;
    uv_timer_init(ep->loop, &c->timer);
    c->timer.data = c;
    ep->handles_open++;
    c->next = ep->conns;
    if (ep->conns)
        ep->conns->prev = c;
    ep->conns = c;
    ep->nconns++;
    if (ep->cfg.keep_alive_ms)
        ngtcp2_conn_set_keep_alive_timeout(c->qc, ep->cfg.keep_alive_ms * NGTCP2_MILLISECONDS);
    ngtcp2_conn_set_tls_native_handle(c->qc, c->tls);
    net_ep_schedule(ep, c);
}

int net_conn_new_client(irohds_net_endpoint *ep, const uint8_t id[IROHDS_NET_ID_LEN],
                        const struct sockaddr *to, socklen_t tolen, const char *alpn,
                        uint64_t initial_rtt, void *user_ptr, irohds_net_conn **out)
{
    irohds_net_conn *c = conn_alloc(ep, true, to, tolen);
    if (!c)
        return -ENOMEM;
    c->user_ptr = user_ptr;
    c->initial_rtt = initial_rtt;
    c->peer.any_id = id == NULL;
    if (id) {
        memcpy(c->peer.expected, id, IROHDS_NET_ID_LEN);
        memcpy(c->remote_id, id, IROHDS_NET_ID_LEN);
        c->remote_id_known = true;
    }
    snprintf(c->alpn, sizeof c->alpn, "%s", alpn); /* what we offer, until negotiated */
    char sni[IROHDS_NET_SERVER_NAME_LEN];
    if (id)
        irohds_net_server_name(id, sni);
    gnutls_datum_t offer = {(unsigned char *)c->alpn, (unsigned)strlen(c->alpn)};
    int r = net_tls_session(&ep->tls, &c->peer, &offer, 1,
                            (id && (ep->cfg.flags & IROHDS_NET_SEND_SNI)) ? sni : NULL, &c->tls);
    ngtcp2_cid dcid = {.datalen = NET_SCID_LEN}, scid;
    randombytes_buf(dcid.data, dcid.datalen);
    if (r == 0)
        r = issue_cid(c, &scid, NULL);
    if (r == 0) {
        uint64_t now = net_now();
        ngtcp2_settings st;
        ngtcp2_transport_params tp;
        ngtcp2_path path;
        fill_settings(c, &st, now);
        fill_params(c, &tp);
        net_ep_path(ep, &path, to, tolen);
        r = ngtcp2_conn_client_new(&c->qc, &dcid, &scid, &path, NGTCP2_PROTO_VER_V1, &CALLBACKS,
                                   &st, &tp, NULL, c) == 0 ? 0 : -ENOMEM;
    }
    if (r < 0) {
        conn_discard(c);
        return r;
    }
    c->visible = true;
    conn_attach(c);
    *out = c;
    return 0;
}

int net_conn_new_server(irohds_net_endpoint *ep, const ngtcp2_pkt_hd *hd,
                        const struct sockaddr *from, socklen_t fromlen, irohds_net_conn **out)
{
    irohds_net_conn *c = conn_alloc(ep, false, from, fromlen);
    if (!c)
        return -ENOMEM;
    uint64_t rtt = net_ep_remembered_rtt(ep, from);
    c->initial_rtt = rtt ? rtt : ep->cfg.initial_rtt_us * NGTCP2_MICROSECONDS;
    int r = net_tls_session(&ep->tls, &c->peer, ep->alpns, ep->n_alpns, NULL, &c->tls);
    ngtcp2_cid scid;
    ngtcp2_transport_params tp;
    fill_params(c, &tp);
    if (r == 0)
        r = issue_cid(c, &scid, tp.stateless_reset_token);
    if (r == 0)
        r = net_cidmap_put(&ep->cids, hd->dcid.data, hd->dcid.datalen, c);
    if (r == 0) {
        c->odcid = hd->dcid;
        c->odcid_mapped = true; /* not datalen != 0: a 0-byte id left a freed conn mapped */
        tp.original_dcid = hd->dcid;
        tp.stateless_reset_token_present = 1;
        ngtcp2_settings st;
        ngtcp2_path path;
        fill_settings(c, &st, net_now());
        net_ep_path(ep, &path, from, fromlen);
        r = ngtcp2_conn_server_new(&c->qc, &hd->scid, &scid, &path, hd->version, &CALLBACKS,
                                   &st, &tp, NULL, c) == 0 ? 0 : -ENOMEM;
    }
    if (r < 0) {
        conn_discard(c);
        return r;
    }
    conn_attach(c);
    *out = c;
    return 0;
}

/* ------------------------------------------------------------- the end */

static void remember_rtt(irohds_net_conn *c)
{
    ngtcp2_conn_stat st;
    ngtcp2_conn_get_conn_stat(c->qc, &st);
    if (st.first_rtt_sample_ts != UINT64_MAX)
        net_ep_remember_rtt(c->ep, (const struct sockaddr *)&c->remote, st.smoothed_rtt);
}

/* Leave HANDSHAKE/OPEN for state; the app hears about it here, once. */
static void terminate(irohds_net_conn *c, int state, const irohds_net_close_info *why)
{
    irohds_net_endpoint *ep = c->ep;
    if (!net_conn_live(c))
        return;
    remember_rtt(c);
    c->state = state;
    ep->nconns--;
    bool visible = c->visible;
    net_streams_abort_all(c);
    c->visible = false;
    if (visible)
        ep->cb.closed(c, why);
    else if (!c->client)
        ep->handshakes_failed++;
}

static void set_why(irohds_net_close_info *why, int err, bool remote, bool app, uint64_t code,
                    const char *reason)
{
    memset(why, 0, sizeof *why);
    why->err = err;
    why->remote = remote;
    why->app_code = app;
    why->code = code;
    snprintf(why->reason, sizeof why->reason, "%s", reason);
}

/* Three PTOs of CLOSING or DRAINING, then the connection is deleted. */
static void linger(irohds_net_conn *c)
{
    uint64_t ms = 3 * ngtcp2_conn_get_pto(c->qc) / NGTCP2_MILLISECONDS + 1;
    c->timer_due = 0;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* Write CONNECTION_CLOSE (kept, to resend while closing), then CLOSING. */
static void close_with(irohds_net_conn *c, const ngtcp2_connection_close_error *cc,
                       const irohds_net_close_info *why)
{
    uint8_t buf[NGTCP2_MAX_UDP_PAYLOAD_SIZE];
    ngtcp2_path_storage ps;
    ngtcp2_path_storage_zero(&ps);
    ngtcp2_ssize n = ngtcp2_conn_write_connection_close(c->qc, &ps.path, NULL, buf, sizeof buf,
                                                        cc, net_now());
    if (n > 0 && (c->close_pkt = malloc((size_t)n)) != NULL) {
        memcpy(c->close_pkt, buf, (size_t)n);
        c->close_pkt_len = (size_t)n;
        net_udp_send_one(&c->ep->udp, buf, (size_t)n, ps.path.remote.addr,
                         ps.path.remote.addrlen);
    }
    terminate(c, NET_CONN_CLOSING, why);
    linger(c);
}

static void fail_liberr(irohds_net_conn *c, int liberr)
{
    ngtcp2_connection_close_error cc;
    ngtcp2_connection_close_error_set_transport_error_liberr(&cc, liberr, NULL, 0);
    irohds_net_close_info why;
    set_why(&why, liberr == NGTCP2_ERR_NOMEM ? -ENOMEM : -EPROTO, false, false, cc.error_code,
            ngtcp2_strerror(liberr));
    close_with(c, &cc, &why);
}

/* Our TLS stack gave up: the peer's key (verify_peer) or anything else. */
static void fail_tls(irohds_net_conn *c)
{
    uint8_t alert = ngtcp2_conn_get_tls_alert(c->qc);
    ngtcp2_connection_close_error cc;
    ngtcp2_connection_close_error_set_transport_error_tls_alert(&cc, alert, NULL, 0);
    irohds_net_close_info why;
    if (c->peer.verify_err) {
        set_why(&why, c->peer.verify_err, false, false, cc.error_code, c->peer.why);
    } else {
        char reason[128];
        snprintf(reason, sizeof reason, "TLS handshake failed: %s",
                 gnutls_alert_get_name((gnutls_alert_description_t)alert));
        set_why(&why, alert == GNUTLS_A_NO_APPLICATION_PROTOCOL ? -ENOPROTOOPT : -EPROTO, false,
                false, cc.error_code, reason);
    }
    close_with(c, &cc, &why);
}

/* The peer's CONNECTION_CLOSE, in our terms. */
static void describe_remote(irohds_net_conn *c, irohds_net_close_info *why)
{
    ngtcp2_connection_close_error cc;
    ngtcp2_conn_get_connection_close_error(c->qc, &cc);
    char reason[IROHDS_NET_REASON_MAX];
    snprintf(reason, sizeof reason, "%.*s", (int)cc.reasonlen, cc.reason ? (char *)cc.reason : "");
    if (cc.type == NGTCP2_CONNECTION_CLOSE_ERROR_CODE_TYPE_APPLICATION) {
        set_why(why, 0, true, true, cc.error_code, reason);
        return;
    }
    uint64_t code = cc.error_code;
    char text[IROHDS_NET_REASON_MAX];
    int err;
    if (code == NGTCP2_NO_ERROR) {
        err = 0;
        snprintf(text, sizeof text, "%s", reason);
    } else if ((code & ~(uint64_t)0xff) == NGTCP2_CRYPTO_ERROR) {
        unsigned alert = (unsigned)(code & 0xff);
        err = alert == GNUTLS_A_NO_APPLICATION_PROTOCOL ? -ENOPROTOOPT : -ECONNREFUSED;
        snprintf(text, sizeof text, "peer refused the handshake: TLS alert %s",
                 gnutls_alert_get_name((gnutls_alert_description_t)alert));
    } else {
        err = code == NGTCP2_CONNECTION_REFUSED ? -ECONNREFUSED : -ECONNRESET;
        snprintf(text, sizeof text, "peer closed with transport error 0x%llx %.160s",
                 (unsigned long long)code, reason);
    }
    set_why(why, err, true, false, code, text);
}

static void drain(irohds_net_conn *c)
{
    irohds_net_close_info why;
    if (c->got_reset)
        set_why(&why, -ECONNRESET, true, false, 0, "stateless reset from the peer");
    else
        describe_remote(c, &why);
    terminate(c, NET_CONN_DRAINING, &why);
    linger(c);
}

/* Gone without a word (timeouts, packets to drop): delete now. */
static void vanish(irohds_net_conn *c, int err, const char *reason)
{
    irohds_net_close_info why;
    set_why(&why, err, false, false, 0, reason);
    terminate(c, NET_CONN_DEAD, &why);
    net_conn_delete(c);
}

static void do_requested_close(irohds_net_conn *c)
{
    ngtcp2_connection_close_error cc;
    const uint8_t *r = (const uint8_t *)c->close_reason;
    size_t rl = strlen(c->close_reason);
    if (c->close_app)
        ngtcp2_connection_close_error_set_application_error(&cc, c->close_code, r, rl);
    else
        ngtcp2_connection_close_error_set_transport_error(&cc, c->close_code, r, rl);
    irohds_net_close_info why;
    set_why(&why, c->close_err, false, c->close_app, c->close_code, c->close_reason);
    close_with(c, &cc, &why);
}

void net_conn_stateless_reset(irohds_net_conn *c)
{
    if (!net_conn_live(c))
        return;
    c->got_reset = true;
    drain(c);
}

void net_conn_cancel(irohds_net_conn *c)
{
    if (net_conn_live(c)) {
        ngtcp2_connection_close_error cc;
        static const char reason[] = "endpoint closed";
        ngtcp2_connection_close_error_set_application_error(&cc, 0, (const uint8_t *)reason,
                                                            sizeof reason - 1);
        irohds_net_close_info why;
        set_why(&why, -ECANCELED, false, true, 0, reason);
        close_with(c, &cc, &why);
    }
    net_conn_delete(c);
}

static void on_timer_closed(uv_handle_t *h)
{
    irohds_net_conn *c = h->data;
    irohds_net_endpoint *ep = c->ep;
    free(c);
    net_ep_handle_closed(ep);
}

void net_conn_delete(irohds_net_conn *c)
{
    irohds_net_endpoint *ep = c->ep;
    if (net_conn_live(c)) {
        irohds_net_close_info why;
        set_why(&why, -ECANCELED, false, false, 0, "deleted");
        terminate(c, NET_CONN_DEAD, &why);
    }
    c->state = NET_CONN_DEAD;
    net_streams_abort_all(c);
    while (c->ncids)
        forget_cid(c, &c->cids[0]);
    while (c->ntokens)
        unwatch_token(c, c->tokens[0]);
    if (c->odcid_mapped)
        net_cidmap_del(&ep->cids, c->odcid.data, c->odcid.datalen);
    net_ep_unlink(ep, c);
    ngtcp2_conn_del(c->qc);
    gnutls_deinit(c->tls);
    free(c->close_pkt);
    c->qc = NULL;
    c->tls = NULL;
    c->close_pkt = NULL;
    uv_close((uv_handle_t *)&c->timer, on_timer_closed);
}

/* ----------------------------------------------------------- read/timer */

static void resend_close(irohds_net_conn *c, const struct sockaddr *to, socklen_t tolen)
{
    /* Answer a talkative peer, but less and less: on the 1st, 2nd, 4th,
     * 8th... packet. */
    c->closing_rx++;
    if (c->close_pkt && (c->closing_rx & (c->closing_rx - 1)) == 0)
        net_udp_send_one(&c->ep->udp, c->close_pkt, c->close_pkt_len, to, tolen);
}

void net_conn_read(irohds_net_conn *c, const uint8_t *data, size_t len,
                   const struct sockaddr *from, socklen_t fromlen, uint64_t now)
{
    if (c->state == NET_CONN_CLOSING)
        resend_close(c, from, fromlen);
    if (!net_conn_live(c))
        return;
    ngtcp2_path path;
    net_ep_path(c->ep, &path, from, fromlen);
    ngtcp2_pkt_info pi = {0};
    c->pkts_recv++;
    c->bytes_recv += len;
    int r = ngtcp2_conn_read_pkt(c->qc, &path, &pi, data, len, now);
    if (r == 0) {
        net_ep_schedule(c->ep, c);
    } else if (r == NGTCP2_ERR_DRAINING) {
        drain(c);
    } else if (r == NGTCP2_ERR_RECV_VERSION_NEGOTIATION) {
        vanish(c, -EPROTONOSUPPORT, "the peer speaks no QUIC version we do");
    } else if (r == NGTCP2_ERR_DROP_CONN || r == NGTCP2_ERR_RETRY) {
        vanish(c, -EPROTO, "dropped by QUIC");
    } else if (r == NGTCP2_ERR_CRYPTO) {
        fail_tls(c);
    } else {
        fail_liberr(c, r);
    }
}

static void on_timer(uv_timer_t *t)
{
    irohds_net_conn *c = t->data;
    irohds_net_endpoint *ep = c->ep;
    net_ep_enter(ep);
    c->timer_due = 0;
    if (!net_conn_live(c)) {
        net_conn_delete(c); /* the end of CLOSING / DRAINING */
    } else {
        c->in_timer = true;
        int r = ngtcp2_conn_handle_expiry(c->qc, net_now());
        if (r == NGTCP2_ERR_IDLE_CLOSE)
            vanish(c, -ETIMEDOUT, "idle timeout");
        else if (r == NGTCP2_ERR_HANDSHAKE_TIMEOUT)
            vanish(c, -ETIMEDOUT, "handshake timeout");
        else if (r != 0)
            fail_liberr(c, r);
        else
            net_conn_write(c, net_now()); /* whatever expired wants sending */
        c->in_timer = false;
    }
    net_ep_leave(ep);
}

/* Arm the timer for ngtcp2's next deadline (libuv counts milliseconds). */
static void arm_timer(irohds_net_conn *c, uint64_t now)
{
    ngtcp2_tstamp exp = ngtcp2_conn_get_expiry(c->qc);
    if (exp == UINT64_MAX) {
        uv_timer_stop(&c->timer);
        c->timer_due = 0;
        return;
    }
    uint64_t ms = exp > now ? (exp - now + NGTCP2_MILLISECONDS - 1) / NGTCP2_MILLISECONDS : 0;
    if (ms == 0 && c->in_timer)
        ms = 1; /* a 0 ms timer restarted from its own callback runs again at once, forever */
    uint64_t due = uv_now(c->ep->loop) + ms + 1; /* +1: 0 means stopped */
    if (due == c->timer_due)
        return;
    c->timer_due = due;
    uv_timer_start(&c->timer, on_timer, ms, 0);
}

/* ---------------------------------------------------------------- write */

/* Account n bytes of s handed to ngtcp2 (fin with them if fin). */
static void stream_sent(irohds_net_conn *c, net_stream *s, size_t n, bool fin)
{
    net_sendbuf_advance(&s->sb, n);
    if (s->want_writable && !c->drained) {
        c->drained = true;
        net_ep_schedule(c->ep, c);
    }
    if (fin)
        s->fin_sent = true;
    net_stream_sendq_remove(c, s);
    if (s->sb.sent < s->sb.written || (s->fin_wanted && !s->fin_sent))
        net_stream_sendq_add(c, s); /* to the back: streams take turns */
}

static bool wants_to_send(const net_stream *s)
{
    return !s->wr_shut && (s->sb.sent < s->sb.written || (s->fin_wanted && !s->fin_sent));
}

/* One packet: stream data from the send queue, packed with MORE until full,
 * plus whatever ngtcp2 has of its own (ACKs, flow control, retransmits). */
static ngtcp2_ssize write_packet(irohds_net_conn *c, ngtcp2_path *path, uint8_t *buf,
                                 size_t cap, uint64_t now)
{
    for (;;) {
        net_stream *s = c->state == NET_CONN_OPEN ? c->sendq_head : NULL;
        if (s && !wants_to_send(s)) {
            net_stream_sendq_remove(c, s);
            continue;
        }
        ngtcp2_vec v[STREAM_VECS];
        size_t nv = 0, total = 0;
        uint32_t flags = NGTCP2_WRITE_STREAM_FLAG_NONE;
        if (s) {
            nv = net_sendbuf_vecs(&s->sb, v, STREAM_VECS);
            for (size_t i = 0; i < nv; i++)
                total += v[i].len;
            flags = NGTCP2_WRITE_STREAM_FLAG_MORE;
            if (s->fin_wanted && s->sb.sent + total == s->sb.written)
                flags |= NGTCP2_WRITE_STREAM_FLAG_FIN;
        }
        ngtcp2_ssize nd = -1;
        ngtcp2_ssize n = ngtcp2_conn_writev_stream(c->qc, path, NULL, buf, cap, &nd, flags,
                                                   s ? s->id : -1, v, nv, now);
        if (s && nd >= 0)
            stream_sent(c, s, (size_t)nd, (flags & NGTCP2_WRITE_STREAM_FLAG_FIN) &&
                                              (size_t)nd == total);
        if (n == NGTCP2_ERR_WRITE_MORE)
            continue;
        if (n == NGTCP2_ERR_STREAM_DATA_BLOCKED) {
            net_stream_sendq_remove(c, s); /* back on extend_max_stream_data */
            continue;
        }
        if (n == NGTCP2_ERR_STREAM_SHUT_WR || n == NGTCP2_ERR_STREAM_NOT_FOUND) {
            s->wr_shut = true; /* e.g. the peer sent STOP_SENDING */
            net_stream_sendq_remove(c, s);
            if (s->want_writable) { /* let the writer see -EPIPE */
                c->drained = true;
                net_ep_schedule(c->ep, c);
            }
            continue;
        }
        return n;
    }
}

static size_t burst_size(irohds_net_conn *c, size_t pkt)
{
    size_t n = ngtcp2_conn_get_send_quantum(c->qc) / pkt;
    return n < 1 ? 1 : n > MAX_BURST ? MAX_BURST : n;
}

int net_conn_write(irohds_net_conn *c, uint64_t now)
{
    if (!net_conn_live(c))
        return 0;
    net_udp *u = &c->ep->udp;
    size_t cap = ngtcp2_conn_get_max_tx_udp_payload_size(c->qc);
    size_t burst = burst_size(c, ngtcp2_conn_get_path_max_tx_udp_payload_size(c->qc));
    size_t i;
    int more = 0;
    for (i = 0; i < burst; i++) {
        uint8_t *buf = net_udp_tx_space(u, cap);
        if (!buf) {
            if (net_udp_tx_flush(u) == -EAGAIN) {
                more = -EAGAIN;
                break;
            }
            buf = net_udp_tx_space(u, cap);
        }
        ngtcp2_path_storage ps;
        ngtcp2_path_storage_zero(&ps);
        ngtcp2_ssize n = write_packet(c, &ps.path, buf, cap, now);
        if (n < 0) {
            fail_liberr(c, (int)n);
            return 0;
        }
        if (n == 0)
            break;
        net_udp_tx_push(u, (size_t)n, ps.path.remote.addr, ps.path.remote.addrlen);
        c->pkts_sent++;
        c->bytes_sent += (uint64_t)n;
    }
    if (i == burst)
        more = 1;
    ngtcp2_conn_update_pkt_tx_time(c->qc, now);
    arm_timer(c, now);
    return more;
}

/* ------------------------------------------------------------ servicing */

void net_conn_service(irohds_net_conn *c)
{
    if (!net_conn_live(c))
        return;
    if (c->deliver && !c->close_requested)
        net_streams_deliver(c);
    if (c->drained && !c->close_requested)
        net_streams_notify_writable(c);
    if (c->close_requested)
        do_requested_close(c);
}

/* ------------------------------------------------------------------ API */

int irohds_net_conn_close(irohds_net_conn *c, uint64_t code, const char *reason)
{
    if (!net_conn_live(c) || c->close_requested)
        return -ENOTCONN;
    request_close(c, 0, true, code, reason ? reason : "");
    return 0;
}

int irohds_net_conn_set_keep_alive(irohds_net_conn *c, uint64_t ms)
{
    if (!net_conn_live(c))
        return -ENOTCONN;
    ngtcp2_conn_set_keep_alive_timeout(c->qc, ms * NGTCP2_MILLISECONDS);
    net_ep_schedule(c->ep, c);
    return 0;
}

void *irohds_net_conn_user_ptr(const irohds_net_conn *c)
{
    return c->user_ptr;
}

void irohds_net_conn_set_user_ptr(irohds_net_conn *c, void *ptr)
{
    c->user_ptr = ptr;
}

irohds_net_endpoint *irohds_net_conn_endpoint(const irohds_net_conn *c)
{
    return c->ep;
}

int irohds_net_conn_info_get(irohds_net_conn *c, irohds_net_conn_info *o)
{
    memset(o, 0, sizeof *o);
    if (!c->qc)
        return -ENOTCONN;
    memcpy(o->remote_id, c->remote_id, IROHDS_NET_ID_LEN);
    o->remote_id_known = c->remote_id_known;
    o->is_client = c->client;
    o->established = ngtcp2_conn_get_handshake_completed(c->qc);
    const ngtcp2_path *p = ngtcp2_conn_get_path(c->qc);
    net_addr_unmap(p->remote.addr, &o->remote_addr);
    snprintf(o->alpn, sizeof o->alpn, "%s", c->alpn);
    const char *cipher = o->established ? gnutls_cipher_get_name(gnutls_cipher_get(c->tls)) : NULL;
    o->cipher = cipher ? cipher : "";
    ngtcp2_conn_stat st;
    ngtcp2_conn_get_conn_stat(c->qc, &st);
    o->srtt_us = st.smoothed_rtt / NGTCP2_MICROSECONDS;
    o->min_rtt_us = st.min_rtt == UINT64_MAX ? 0 : st.min_rtt / NGTCP2_MICROSECONDS;
    o->latest_rtt_us = st.latest_rtt / NGTCP2_MICROSECONDS;
    o->rttvar_us = st.rttvar / NGTCP2_MICROSECONDS;
    o->cwnd = st.cwnd;
    o->bytes_in_flight = st.bytes_in_flight;
    o->delivery_rate = st.delivery_rate_sec;
    o->bytes_sent = c->bytes_sent;
    o->bytes_recv = c->bytes_recv;
    o->pkts_sent = c->pkts_sent;
    o->pkts_recv = c->pkts_recv;
    o->stream_bytes_sent = c->stream_bytes_sent;
    o->stream_bytes_recv = c->stream_bytes_recv;
    o->send_buffered = c->buffered;
    o->max_udp_payload = ngtcp2_conn_get_path_max_tx_udp_payload_size(c->qc);
    return 0;
}

int irohds_net_conn_peer_spki(irohds_net_conn *c, uint8_t out[IROHDS_NET_SPKI_LEN])
{
    if (!c->peer.have_spki)
        return -ENOTCONN;
    memcpy(out, c->peer.spki, IROHDS_NET_SPKI_LEN);
    return 0;
}
