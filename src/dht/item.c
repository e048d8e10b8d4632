/*
 * dht/item.c: BEP 44 items: what a mutable item signs, where an item lives
 * (its target), signing with libsodium, and the checks a storing node makes
 * before it keeps one.
 *
 * The signed bytes are built from the verbatim encoding of v, never from a
 * re-encoding (BEP 44: decoding and re-encoding is not an identity in
 * general); our decoder only accepts canonical bencode anyway, so the two
 * agree for whatever we store.  pkarr is the case without salt: seq is its
 * timestamp in microseconds and v the DNS packet as a byte string.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include <sodium.h>

#include "dht/dht_int.h"

/* Largest signable: salt prefix, seq, v header, v. */
#define SIGNABLE_MAX (IROHDS_DHT_MAX_V + IROHDS_DHT_MAX_SALT + 64)

static size_t append(uint8_t *out, size_t cap, size_t at, const void *p, size_t n)
{
    if (at + n <= cap)
        memcpy(out + at, p, n);
    return at + n;
}

size_t irohds_dht_item_signable(const uint8_t *salt, size_t salt_len, int64_t seq,
                                const uint8_t *v, size_t v_len, uint8_t *out, size_t cap)
{
    char head[48];
    size_t at = 0;
    if (salt_len) {
        int n = snprintf(head, sizeof head, "4:salt%zu:", salt_len);
        at = append(out, cap, at, head, (size_t)n);
        at = append(out, cap, at, salt, salt_len);
    }
    int n = snprintf(head, sizeof head, "3:seqi%" PRId64 "e1:v", seq);
    at = append(out, cap, at, head, (size_t)n);
    return append(out, cap, at, v, v_len);
}

void irohds_dht_mutable_target(const uint8_t k[IROHDS_DHT_KEY_LEN], const uint8_t *salt,
                               size_t salt_len, uint8_t out[IROHDS_DHT_ID_LEN])
{
    dht_sha1_ctx c;
    dht_sha1_init(&c);
    dht_sha1_update(&c, k, IROHDS_DHT_KEY_LEN);
    if (salt_len)
        dht_sha1_update(&c, salt, salt_len);
    dht_sha1_final(&c, out);
}

void irohds_dht_item_target(const irohds_dht_item *it, uint8_t out[IROHDS_DHT_ID_LEN])
{
    if (it->is_mutable)
        irohds_dht_mutable_target(it->k, it->salt, it->salt_len, out);
    else
        irohds_dht_sha1(it->v, it->v_len, out);
}

/* v is one canonical bencoded value, not too long. */
static int check_value(const uint8_t *v, size_t len)
{
    irohds_benc_node nodes[512];
    irohds_benc d;
    if (!v || len == 0 || len > IROHDS_DHT_MAX_V)
        return -EMSGSIZE;
    if (irohds_benc_decode(&d, v, len, nodes, 512, IROHDS_BENC_MAX_DEPTH) != 0)
        return -EINVAL;
    return 0;
}

static int check_sizes(const irohds_dht_item *it)
{
    int rc = check_value(it->v, it->v_len);
    if (rc)
        return rc;
    if (it->salt_len > IROHDS_DHT_MAX_SALT)
        return -ENAMETOOLONG;
    if (it->is_mutable && it->seq < 0)
        return -EBADMSG;
    return 0;
}

int irohds_dht_item_sign(irohds_dht_item *it, const uint8_t sk[64])
{
    uint8_t buf[SIGNABLE_MAX];
    it->is_mutable = true;
    if (check_sizes(it))
        return -EINVAL;
    size_t n = irohds_dht_item_signable(it->salt, it->salt_len, it->seq, it->v, it->v_len, buf,
                                        sizeof buf);
    memcpy(it->k, sk + 32, IROHDS_DHT_KEY_LEN);
    crypto_sign_detached(it->sig, NULL, buf, n, sk);
    return 0;
}

int irohds_dht_item_check(const irohds_dht_item *it)
{
    int rc = check_sizes(it);
    if (rc || !it->is_mutable)
        return rc;
    uint8_t buf[SIGNABLE_MAX];
    size_t n = irohds_dht_item_signable(it->salt, it->salt_len, it->seq, it->v, it->v_len, buf,
                                        sizeof buf);
    if (crypto_sign_verify_detached(it->sig, buf, n, it->k) != 0)
        return -EBADMSG;
    return 0;
}
