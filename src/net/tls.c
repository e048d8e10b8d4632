/*
 * tls.c: TLS 1.3 with RFC 7250 raw public keys, as iroh does it.
 *
 * The "certificate" each side presents is a bare SubjectPublicKeyInfo: the
 * fixed 12-byte Ed25519 prefix followed by the node id.  The CertificateVerify
 * signature proves the peer holds that key, so after the handshake the SPKI
 * *is* the peer's identity.  The client refuses a server whose key is not
 * the node id it dialed; the server requires a client key but accepts any
 * (the app sees it as the remote node id).
 *
 * Policy, in the priority string: TLS 1.3 only, raw public keys only,
 * Ed25519 signatures only, AES-128-GCM first and the server's order wins
 * (ChaCha20 is ~8x slower on this hardware; iroh requires AES-128-GCM
 * anyway), X25519 then P-256, and no middlebox compatibility mode (QUIC
 * forbids it).  One credentials object and one parsed priority per
 * endpoint; one session per connection.
 */
#include <errno.h>
#include <gnutls/abstract.h>
#include <gnutls/gnutls.h>
#include <ngtcp2/ngtcp2_crypto_gnutls.h>
#include <stdio.h>
#include <string.h>

#include "net/net_int.h"
#include "util/util.h"

static const char PRIORITY[] =
    "NORMAL:-VERS-ALL:+VERS-TLS1.3:"
    "-CIPHER-ALL:+AES-128-GCM:+AES-256-GCM:+CHACHA20-POLY1305:"
    "-GROUP-ALL:+GROUP-X25519:+GROUP-SECP256R1:"
    "-CTYPE-ALL:+CTYPE-CLI-RAWPK:+CTYPE-SRV-RAWPK:"
    "-SIGN-ALL:+SIGN-EDDSA-ED25519:"
    "%DISABLE_TLS13_COMPAT_MODE:%SERVER_PRECEDENCE";

static const uint8_t SPKI_PREFIX[12] = {0x30, 0x2a, 0x30, 0x05, 0x06, 0x03,
                                        0x2b, 0x65, 0x70, 0x03, 0x21, 0x00};

void irohds_net_spki(const uint8_t id[IROHDS_NET_ID_LEN], uint8_t out[IROHDS_NET_SPKI_LEN])
{
    memcpy(out, SPKI_PREFIX, sizeof SPKI_PREFIX);
    memcpy(out + sizeof SPKI_PREFIX, id, IROHDS_NET_ID_LEN);
}

/* RFC 4648 base32hex, lower case, no padding (data-encoding's BASE32_DNSSEC). */
void irohds_net_server_name(const uint8_t id[IROHDS_NET_ID_LEN],
                            char out[IROHDS_NET_SERVER_NAME_LEN])
{
    static const char alphabet[] = "0123456789abcdefghijklmnopqrstuv";
    uint32_t acc = 0;
    int bits = 0;
    size_t n = 0;
    for (size_t i = 0; i < IROHDS_NET_ID_LEN; i++) {
        acc = (acc << 8) | id[i];
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out[n++] = alphabet[(acc >> bits) & 31];
        }
    }
    if (bits > 0)
        out[n++] = alphabet[(acc << (5 - bits)) & 31];
    memcpy(out + n, ".iroh.invalid", sizeof ".iroh.invalid");
}

static int import_key(gnutls_certificate_credentials_t cred, const uint8_t sk[IROHDS_NET_SK_LEN])
{
    gnutls_datum_t pk = {(unsigned char *)sk + 32, 32}, seed = {(unsigned char *)sk, 32};
    gnutls_privkey_t priv = NULL;
    gnutls_pubkey_t pub = NULL;
    gnutls_pcert_st pcert;
    int r = gnutls_privkey_init(&priv);
    if (r == 0)
        r = gnutls_privkey_import_ecc_raw(priv, GNUTLS_ECC_CURVE_ED25519, &pk, NULL, &seed);
    if (r == 0)
        r = gnutls_pubkey_init(&pub);
    if (r == 0)
        r = gnutls_pubkey_import_ecc_raw(pub, GNUTLS_ECC_CURVE_ED25519, &pk, NULL);
    if (r == 0) {
        r = gnutls_pcert_import_rawpk(&pcert, pub, 0); /* pcert owns pub from here */
        if (r == 0)
            pub = NULL;
    }
    if (r == 0) {
        r = gnutls_certificate_set_key(cred, NULL, 0, &pcert, 1, priv); /* cred owns both */
        if (r == 0)
            return 0;
        gnutls_pcert_deinit(&pcert);
    }
    IROHDS_ERROR("net: cannot load the node key into GnuTLS: %s", gnutls_strerror(r));
    if (pub)
        gnutls_pubkey_deinit(pub);
    if (priv)
        gnutls_privkey_deinit(priv);
    return -EINVAL;
}

int net_tls_init(net_tls *t, const uint8_t sk[IROHDS_NET_SK_LEN])
{
    memset(t, 0, sizeof *t);
    if (gnutls_certificate_allocate_credentials(&t->cred) < 0)
        return -ENOMEM;
    int r = import_key(t->cred, sk);
    if (r < 0) {
        net_tls_free(t);
        return r;
    }
    const char *where = NULL;
    if (gnutls_priority_init(&t->prio, PRIORITY, &where) < 0) {
        IROHDS_ERROR("net: GnuTLS refuses the priority string at '%s'", where ? where : "?");
        net_tls_free(t);
        return -EINVAL;
    }
    return 0;
}

void net_tls_free(net_tls *t)
{
    if (t->prio)
        gnutls_priority_deinit(t->prio);
    if (t->cred)
        gnutls_certificate_free_credentials(t->cred);
    memset(t, 0, sizeof *t);
}

static int refuse(net_tls_peer *p, int err, const char *why)
{
    p->verify_err = err;
    snprintf(p->why, sizeof p->why, "%.150s", why);
    return GNUTLS_E_CERTIFICATE_ERROR;
}

/* Called by GnuTLS as soon as the peer's certificate arrives. */
static int verify_peer(gnutls_session_t s)
{
    net_tls_peer *p = gnutls_session_get_ptr(s);
    if (gnutls_certificate_type_get2(s, GNUTLS_CTYPE_PEERS) != GNUTLS_CRT_RAWPK)
        return refuse(p, -EKEYREJECTED, "peer did not present a raw public key");
    unsigned n = 0;
    const gnutls_datum_t *certs = gnutls_certificate_get_peers(s, &n);
    if (!certs || n != 1)
        return refuse(p, -EKEYREJECTED, "peer must present exactly one key");
    if (certs[0].size != IROHDS_NET_SPKI_LEN ||
        memcmp(certs[0].data, SPKI_PREFIX, sizeof SPKI_PREFIX) != 0)
        return refuse(p, -EKEYREJECTED, "peer key is not an Ed25519 SPKI");
    memcpy(p->spki, certs[0].data, IROHDS_NET_SPKI_LEN);
    p->have_spki = true;
    const uint8_t *key = p->spki + sizeof SPKI_PREFIX;
    if (p->client && !p->any_id && memcmp(key, p->expected, IROHDS_NET_ID_LEN) != 0) {
        char got[65], want[65], why[150];
        irohds_hex_encode(key, IROHDS_NET_ID_LEN, got);
        irohds_hex_encode(p->expected, IROHDS_NET_ID_LEN, want);
        snprintf(why, sizeof why, "server key %.16s... is not the node id dialed %.16s...", got,
                 want);
        return refuse(p, -EKEYREJECTED, why);
    }
    return 0;
}

int net_tls_session(net_tls *t, net_tls_peer *peer, const gnutls_datum_t *alpns, size_t n,
                    const char *sni, gnutls_session_t *out)
{
    unsigned flags = GNUTLS_ENABLE_RAWPK | GNUTLS_NO_END_OF_EARLY_DATA | GNUTLS_NO_TICKETS;
    gnutls_session_t s;
    if (gnutls_init(&s, flags | (peer->client ? GNUTLS_CLIENT : GNUTLS_SERVER)) < 0)
        return -ENOMEM;
    int r = peer->client ? ngtcp2_crypto_gnutls_configure_client_session(s)
                         : ngtcp2_crypto_gnutls_configure_server_session(s);
    if (r == 0)
        r = gnutls_priority_set(s, t->prio);
    if (r == 0)
        r = gnutls_credentials_set(s, GNUTLS_CRD_CERTIFICATE, t->cred);
    if (r == 0)
        r = gnutls_alpn_set_protocols(s, alpns, (unsigned)n, GNUTLS_ALPN_MANDATORY);
    if (r == 0 && sni)
        r = gnutls_server_name_set(s, GNUTLS_NAME_DNS, sni, strlen(sni));
    if (r != 0) {
        gnutls_deinit(s);
        return -EINVAL;
    }
    if (!peer->client)
        gnutls_certificate_server_set_request(s, GNUTLS_CERT_REQUIRE);
    gnutls_session_set_verify_function(s, verify_peer);
    gnutls_session_set_ptr(s, &peer->ref);
    *out = s;
    return 0;
}

int net_tls_alpn(gnutls_session_t s, char *out, size_t cap)
{
    gnutls_datum_t p = {NULL, 0};
    if (gnutls_alpn_get_selected_protocol(s, &p) != 0 || p.size == 0 || p.size >= cap)
        return -ENOPROTOOPT;
    memcpy(out, p.data, p.size);
    out[p.size] = '\0';
    return 0;
}
