/*
 * dht/krpc.c: KRPC messages (BEP 5, with BEP 32 "nodes6"/"want", BEP 42
 * "ip", BEP 43 "ro" and BEP 44 get/put) and the compact address formats.
 *
 * One struct, irohds_dht_msg, is every message: the decoder fills the
 * fields whose keys are present and checks their types and fixed lengths;
 * the encoder writes the present ones in sorted key order (the bencode
 * writer refuses anything else).  What a method requires is left to the
 * node (query.c), which answers a missing argument with error 203 rather
 * than dropping it.  Unknown keys are ignored, as BEP 5 asks for forward
 * compatibility.  The decoder's node array lives on the stack: a datagram
 * costs no allocation.
 */
#include <errno.h>
#include <string.h>

#include "dht/dht.h"

#define MSG_NODES 512
#define MSG_DEPTH 16

/* ========================================================== addresses */

static const uint8_t v4_mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int irohds_dht_addr_from_sockaddr(irohds_dht_addr *a, const struct sockaddr *sa, socklen_t len)
{
    memset(a, 0, sizeof *a);
    if (sa && sa->sa_family == AF_INET && len >= (socklen_t)sizeof(struct sockaddr_in)) {
        const struct sockaddr_in *s = (const struct sockaddr_in *)sa;
        a->family = AF_INET;
        memcpy(a->ip, &s->sin_addr, 4);
        a->port = ntohs(s->sin_port);
        return 0;
    }
    if (sa && sa->sa_family == AF_INET6 && len >= (socklen_t)sizeof(struct sockaddr_in6)) {
        const struct sockaddr_in6 *s = (const struct sockaddr_in6 *)sa;
        const uint8_t *ip = s->sin6_addr.s6_addr;
        a->port = ntohs(s->sin6_port);
        if (memcmp(ip, v4_mapped, 12) == 0) {
            a->family = AF_INET;
            memcpy(a->ip, ip + 12, 4);
        } else {
            a->family = AF_INET6;
            memcpy(a->ip, ip, 16);
        }
        return 0;
    }
    return -EAFNOSUPPORT;
}

socklen_t irohds_dht_addr_to_sockaddr(const irohds_dht_addr *a, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof *ss);
    if (a->family == AF_INET) {
        struct sockaddr_in *s = (struct sockaddr_in *)ss;
        s->sin_family = AF_INET;
        s->sin_port = htons(a->port);
        memcpy(&s->sin_addr, a->ip, 4);
        return sizeof *s;
    }
    struct sockaddr_in6 *s = (struct sockaddr_in6 *)ss;
    s->sin6_family = AF_INET6;
    s->sin6_port = htons(a->port);
    memcpy(&s->sin6_addr, a->ip, 16);
    return sizeof *s;
}

static size_t ip_len(sa_family_t family)
{
    return family == AF_INET ? 4 : 16;
}

bool irohds_dht_addr_eq(const irohds_dht_addr *a, const irohds_dht_addr *b)
{
    return a->family == b->family && a->port == b->port &&
           memcmp(a->ip, b->ip, ip_len(a->family)) == 0;
}

size_t irohds_dht_addr_compact(const irohds_dht_addr *a, uint8_t *out)
{
    size_t n = ip_len(a->family);
    memcpy(out, a->ip, n);
    out[n] = (uint8_t)(a->port >> 8);
    out[n + 1] = (uint8_t)a->port;
    return n + 2;
}

bool irohds_dht_addr_parse(irohds_dht_addr *a, const uint8_t *p, size_t len)
{
    memset(a, 0, sizeof *a);
    if (len != 6 && len != 18)
        return false;
    a->family = len == 6 ? AF_INET : AF_INET6;
    memcpy(a->ip, p, len - 2);
    a->port = (uint16_t)(p[len - 2] << 8 | p[len - 1]);
    return true;
}

size_t irohds_dht_nodes_parse(const uint8_t *p, size_t len, sa_family_t family,
                              irohds_dht_node *out, size_t max)
{
    size_t each = IROHDS_DHT_ID_LEN + ip_len(family) + 2;
    if (!p || len % each)
        return 0;
    size_t n = 0;
    for (size_t off = 0; off < len && n < max; off += each, n++) {
        memcpy(out[n].id, p + off, IROHDS_DHT_ID_LEN);
        irohds_dht_addr_parse(&out[n].addr, p + off + IROHDS_DHT_ID_LEN, each - IROHDS_DHT_ID_LEN);
    }
    return n;
}

/* ============================================================ methods */

static const char *const method_names[] = {
    [IROHDS_DHT_M_PING] = "ping",
    [IROHDS_DHT_M_FIND_NODE] = "find_node",
    [IROHDS_DHT_M_GET_PEERS] = "get_peers",
    [IROHDS_DHT_M_ANNOUNCE_PEER] = "announce_peer",
    [IROHDS_DHT_M_GET] = "get",
    [IROHDS_DHT_M_PUT] = "put",
};

const char *irohds_dht_method_name(irohds_dht_method m)
{
    if (m <= IROHDS_DHT_M_NONE || m >= IROHDS_DHT_M_OTHER)
        return NULL;
    return method_names[m];
}

static irohds_dht_method method_of(const uint8_t *q, size_t len)
{
    for (int m = IROHDS_DHT_M_PING; m < IROHDS_DHT_M_OTHER; m++) {
        const char *name = method_names[m];
        if (strlen(name) == len && memcmp(name, q, len) == 0)
            return (irohds_dht_method)m;
    }
    return IROHDS_DHT_M_OTHER;
}

/* ============================================================ decoder */

/* Optional string under key: absent is fine; present it must be a string
 * of exactly want bytes (want 0: any length up to max). */
static int opt_str(const irohds_benc *d, int dict, const char *key, size_t want, size_t max,
                   const uint8_t **s, size_t *len)
{
    int i = irohds_benc_dict_get(d, dict, key);
    if (i < 0)
        return 0;
    const irohds_benc_node *nd = &d->nodes[i];
    if (nd->type != IROHDS_BENC_STR || (want && nd->slen != want) || (!want && nd->slen > max))
        return -EPROTO;
    *s = nd->s;
    if (len)
        *len = nd->slen;
    return 0;
}

static int opt_int(const irohds_benc *d, int dict, const char *key, bool *has, int64_t *v)
{
    int i = irohds_benc_dict_get(d, dict, key);
    if (i < 0)
        return 0;
    if (d->nodes[i].type != IROHDS_BENC_INT)
        return -EPROTO;
    *v = d->nodes[i].i;
    if (has)
        *has = true;
    return 0;
}

static int opt_flag(const irohds_benc *d, int dict, const char *key, bool *flag)
{
    int64_t v = 0;
    int rc = opt_int(d, dict, key, NULL, &v);
    *flag = v != 0;
    return rc;
}

/* BEP 44 "v": any one value, kept as its encoding. */
static void opt_value(const irohds_benc *d, int dict, irohds_dht_msg *m)
{
    int i = irohds_benc_dict_get(d, dict, "v");
    if (i >= 0) {
        m->value = d->buf + d->nodes[i].off;
        m->value_len = d->nodes[i].len;
    }
}

static int dec_want(const irohds_benc *d, int dict, irohds_dht_msg *m)
{
    int l = irohds_benc_dict_get(d, dict, "want");
    if (l < 0)
        return 0;
    if (d->nodes[l].type != IROHDS_BENC_LIST)
        return -EPROTO;
    uint32_t i = (uint32_t)l + 1;
    for (uint32_t c = 0; c < d->nodes[l].count; c++, i = d->nodes[i].next) {
        const irohds_benc_node *e = &d->nodes[i];
        if (e->type != IROHDS_BENC_STR || e->slen != 2)
            continue;
        m->want_n4 |= memcmp(e->s, "n4", 2) == 0;
        m->want_n6 |= memcmp(e->s, "n6", 2) == 0;
    }
    return 0;
}

/* BEP 44 fields shared by put arguments and get responses. */
static int dec_item_fields(const irohds_benc *d, int dict, irohds_dht_msg *m)
{
    int rc = 0;
    rc = rc ? rc : opt_str(d, dict, "k", IROHDS_DHT_KEY_LEN, 0, &m->k, NULL);
    rc = rc ? rc : opt_str(d, dict, "sig", IROHDS_DHT_SIG_LEN, 0, &m->sig, NULL);
    rc = rc ? rc : opt_int(d, dict, "seq", &m->has_seq, &m->seq);
    rc = rc ? rc : opt_str(d, dict, "token", 0, IROHDS_DHT_TOKEN_MAX, &m->token, &m->token_len);
    opt_value(d, dict, m);
    return rc;
}

static int dec_args(const irohds_benc *d, int a, irohds_dht_msg *m)
{
    if (a < 0 || d->nodes[a].type != IROHDS_BENC_DICT)
        return -EPROTO;
    int rc = opt_str(d, a, "id", IROHDS_DHT_ID_LEN, 0, &m->id, NULL);
    if (rc || !m->id)
        return -EPROTO;
    rc = dec_item_fields(d, a, m);
    rc = rc ? rc : opt_str(d, a, "target", IROHDS_DHT_ID_LEN, 0, &m->target, NULL);
    rc = rc ? rc : opt_str(d, a, "info_hash", IROHDS_DHT_ID_LEN, 0, &m->info_hash, NULL);
    rc = rc ? rc : opt_int(d, a, "port", &m->has_port, &m->port);
    rc = rc ? rc : opt_flag(d, a, "implied_port", &m->implied_port);
    rc = rc ? rc : opt_str(d, a, "salt", 0, SIZE_MAX, &m->salt, &m->salt_len);
    rc = rc ? rc : opt_int(d, a, "cas", &m->has_cas, &m->cas);
    rc = rc ? rc : dec_want(d, a, m);
    return rc;
}

static int dec_values(const irohds_benc *d, int r, irohds_dht_msg *m)
{
    int l = irohds_benc_dict_get(d, r, "values");
    if (l < 0)
        return 0;
    if (d->nodes[l].type != IROHDS_BENC_LIST)
        return -EPROTO;
    m->has_values = true;
    uint32_t i = (uint32_t)l + 1;
    for (uint32_t c = 0; c < d->nodes[l].count; c++, i = d->nodes[i].next) {
        if (d->nodes[i].type != IROHDS_BENC_STR)
            return -EPROTO;
        if (m->n_values < IROHDS_DHT_MAX_VALUES) {
            m->values[m->n_values] = d->nodes[i].s;
            m->values_len[m->n_values++] = d->nodes[i].slen;
        }
    }
    return 0;
}

static int dec_resp(const irohds_benc *d, int r, irohds_dht_msg *m)
{
    if (r < 0 || d->nodes[r].type != IROHDS_BENC_DICT)
        return -EPROTO;
    int rc = opt_str(d, r, "id", IROHDS_DHT_ID_LEN, 0, &m->id, NULL);
    if (rc || !m->id)
        return -EPROTO;
    rc = dec_item_fields(d, r, m);
    rc = rc ? rc : opt_str(d, r, "nodes", 0, SIZE_MAX, &m->nodes, &m->nodes_len);
    rc = rc ? rc : opt_str(d, r, "nodes6", 0, SIZE_MAX, &m->nodes6, &m->nodes6_len);
    rc = rc ? rc : dec_values(d, r, m);
    rc = rc ? rc : opt_int(d, r, "interval", &m->has_interval, &m->interval);
    rc = rc ? rc : opt_int(d, r, "num", &m->has_num, &m->num);
    rc = rc ? rc : opt_str(d, r, "samples", 0, SIZE_MAX, &m->samples, &m->samples_len);
    return rc;
}

static int dec_error(const irohds_benc *d, int e, irohds_dht_msg *m)
{
    if (e < 0 || d->nodes[e].type != IROHDS_BENC_LIST || d->nodes[e].count < 2)
        return -EPROTO;
    const irohds_benc_node *code = &d->nodes[e + 1];
    const irohds_benc_node *text = &d->nodes[code->next];
    if (code->type != IROHDS_BENC_INT || text->type != IROHDS_BENC_STR)
        return -EPROTO;
    m->err_code = code->i;
    m->err_msg = text->s;
    m->err_msg_len = text->slen;
    return 0;
}

/* Top level: t, y, and the optional v, ip, ro. */
static int dec_envelope(const irohds_benc *d, irohds_dht_msg *m)
{
    const uint8_t *y;
    size_t ylen;
    if (d->nodes[0].type != IROHDS_BENC_DICT)
        return -EPROTO;
    if (!irohds_benc_dict_str(d, 0, "t", &m->t, &m->t_len) || m->t_len > IROHDS_DHT_MAX_TID)
        return -EPROTO;
    if (!irohds_benc_dict_str(d, 0, "y", &y, &ylen) || ylen != 1)
        return -EPROTO;
    m->y = (char)y[0];
    int rc = opt_str(d, 0, "v", 0, SIZE_MAX, &m->version, &m->version_len);
    rc = rc ? rc : opt_flag(d, 0, "ro", &m->ro);
    const uint8_t *ip;
    size_t iplen;
    if (irohds_benc_dict_str(d, 0, "ip", &ip, &iplen) && (iplen == 6 || iplen == 18))
        m->ip = ip, m->ip_len = iplen;
    return rc;
}

static int dec_msg(const irohds_benc *d, irohds_dht_msg *m)
{
    int rc = dec_envelope(d, m);
    if (rc)
        return rc;
    switch (m->y) {
    case 'q':
        if (!irohds_benc_dict_str(d, 0, "q", &m->q, &m->q_len))
            return -EPROTO;
        m->method = method_of(m->q, m->q_len);
        return dec_args(d, irohds_benc_dict_get(d, 0, "a"), m);
    case 'r':
        return dec_resp(d, irohds_benc_dict_get(d, 0, "r"), m);
    case 'e':
        return dec_error(d, irohds_benc_dict_get(d, 0, "e"), m);
    default:
        return -EPROTO;
    }
}

int irohds_dht_msg_decode(irohds_dht_msg *m, const void *buf, size_t len)
{
    irohds_benc_node nodes[MSG_NODES];
    irohds_benc d;
    memset(m, 0, sizeof *m);
    int rc = irohds_benc_decode(&d, buf, len, nodes, MSG_NODES, MSG_DEPTH);
    if (rc == 0)
        rc = dec_msg(&d, m);
    if (rc)
        memset(m, 0, sizeof *m);
    return rc;
}

/* ============================================================ encoder */

static void kstr(irohds_benc_writer *w, const char *key, const uint8_t *s, size_t len)
{
    if (s) {
        irohds_benc_key(w, key);
        irohds_benc_str(w, s, len);
    }
}

static void kint(irohds_benc_writer *w, const char *key, bool has, int64_t v)
{
    if (has) {
        irohds_benc_key(w, key);
        irohds_benc_int(w, v);
    }
}

static void kvalue(irohds_benc_writer *w, const irohds_dht_msg *m)
{
    if (m->value) {
        irohds_benc_key(w, "v");
        irohds_benc_raw(w, m->value, m->value_len);
    }
}

static void enc_want(irohds_benc_writer *w, const irohds_dht_msg *m)
{
    if (!m->want_n4 && !m->want_n6)
        return;
    irohds_benc_key(w, "want");
    irohds_benc_list(w);
    if (m->want_n4)
        irohds_benc_str(w, "n4", 2);
    if (m->want_n6)
        irohds_benc_str(w, "n6", 2);
    irohds_benc_end(w);
}

static void enc_args(irohds_benc_writer *w, const irohds_dht_msg *m)
{
    irohds_benc_dict(w);
    kint(w, "cas", m->has_cas, m->cas);
    kstr(w, "id", m->id, IROHDS_DHT_ID_LEN);
    kint(w, "implied_port", m->implied_port, 1);
    kstr(w, "info_hash", m->info_hash, IROHDS_DHT_ID_LEN);
    kstr(w, "k", m->k, IROHDS_DHT_KEY_LEN);
    kint(w, "port", m->has_port, m->port);
    kstr(w, "salt", m->salt, m->salt_len);
    kint(w, "seq", m->has_seq, m->seq);
    kstr(w, "sig", m->sig, IROHDS_DHT_SIG_LEN);
    kstr(w, "target", m->target, IROHDS_DHT_ID_LEN);
    kstr(w, "token", m->token, m->token_len);
    kvalue(w, m);
    enc_want(w, m);
    irohds_benc_end(w);
}

static void enc_values(irohds_benc_writer *w, const irohds_dht_msg *m)
{
    if (!m->has_values)
        return;
    irohds_benc_key(w, "values");
    irohds_benc_list(w);
    for (size_t i = 0; i < m->n_values; i++)
        irohds_benc_str(w, m->values[i], m->values_len[i]);
    irohds_benc_end(w);
}

static void enc_resp(irohds_benc_writer *w, const irohds_dht_msg *m)
{
    irohds_benc_dict(w);
    kstr(w, "id", m->id, IROHDS_DHT_ID_LEN);
    kint(w, "interval", m->has_interval, m->interval);
    kstr(w, "k", m->k, IROHDS_DHT_KEY_LEN);
    kstr(w, "nodes", m->nodes, m->nodes_len);
    kstr(w, "nodes6", m->nodes6, m->nodes6_len);
    kint(w, "num", m->has_num, m->num);
    kstr(w, "samples", m->samples, m->samples_len);
    kint(w, "seq", m->has_seq, m->seq);
    kstr(w, "sig", m->sig, IROHDS_DHT_SIG_LEN);
    kstr(w, "token", m->token, m->token_len);
    kvalue(w, m);
    enc_values(w, m);
    irohds_benc_end(w);
}

static void enc_error(irohds_benc_writer *w, const irohds_dht_msg *m)
{
    irohds_benc_key(w, "e");
    irohds_benc_list(w);
    irohds_benc_int(w, m->err_code);
    irohds_benc_str(w, m->err_msg ? m->err_msg : (const uint8_t *)"", m->err_msg_len);
    irohds_benc_end(w);
}

static int enc_query_name(irohds_benc_writer *w, const irohds_dht_msg *m)
{
    const char *name = irohds_dht_method_name(m->method);
    irohds_benc_key(w, "q");
    if (name)
        irohds_benc_cstr(w, name);
    else if (m->method == IROHDS_DHT_M_OTHER && m->q)
        irohds_benc_str(w, m->q, m->q_len);
    else
        return -EINVAL;
    return 0;
}

int irohds_dht_msg_encode(const irohds_dht_msg *m, void *buf, size_t cap, size_t *len)
{
    irohds_benc_writer w;
    irohds_benc_writer_init(&w, buf, cap);
    *len = 0;
    if ((m->y != 'q' && m->y != 'r' && m->y != 'e') || (m->y != 'e' && !m->id))
        return -EINVAL;
    irohds_benc_dict(&w);
    if (m->y == 'q') {
        irohds_benc_key(&w, "a");
        enc_args(&w, m);
    }
    if (m->y == 'e')
        enc_error(&w, m);
    kstr(&w, "ip", m->ip, m->ip_len);
    if (m->y == 'q' && enc_query_name(&w, m))
        return -EINVAL;
    if (m->y == 'r') {
        irohds_benc_key(&w, "r");
        enc_resp(&w, m);
    }
    kint(&w, "ro", m->ro, 1);
    kstr(&w, "t", m->t ? m->t : (const uint8_t *)"", m->t_len);
    kstr(&w, "v", m->version, m->version_len);
    irohds_benc_key(&w, "y");
    irohds_benc_str(&w, &m->y, 1);
    irohds_benc_end(&w);
    *len = w.len;
    return w.err;
}
