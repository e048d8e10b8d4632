/*
 * cidmap.c: connection id -> connection.  Every datagram is routed by its
 * destination connection id, so this is on the hot path: a chained hash
 * table keyed with SipHash (crypto_shorthash).  Most ids are ours and
 * random, but a client picks the first one the server sees, and a keyed
 * hash keeps a hostile client from piling its ids into one bucket.
 */
#include <errno.h>
#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "net/net_int.h"

struct net_cident {
    net_cident *next;
    irohds_net_conn *conn;
    uint8_t len;
    uint8_t cid[NGTCP2_MAX_CIDLEN];
};

int net_cidmap_init(net_cidmap *m)
{
    m->nbuckets = 64;
    m->count = 0;
    m->buckets = calloc(m->nbuckets, sizeof *m->buckets);
    if (!m->buckets)
        return -ENOMEM;
    randombytes_buf(m->key, sizeof m->key);
    return 0;
}

void net_cidmap_free(net_cidmap *m)
{
    for (size_t i = 0; i < m->nbuckets; i++) {
        net_cident *e = m->buckets[i];
        while (e) {
            net_cident *next = e->next;
            free(e);
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = NULL;
}

static size_t bucket_of(const net_cidmap *m, const uint8_t *cid, size_t len, size_t nbuckets)
{
    uint8_t h[crypto_shorthash_BYTES];
    crypto_shorthash(h, cid, len, m->key);
    uint64_t v;
    memcpy(&v, h, sizeof v);
    return (size_t)(v & (nbuckets - 1));
}

static void grow(net_cidmap *m)
{
    size_t n = m->nbuckets * 2;
    net_cident **b = calloc(n, sizeof *b);
    if (!b)
        return; /* stay at the current size: slower, still correct */
    for (size_t i = 0; i < m->nbuckets; i++) {
        net_cident *e = m->buckets[i];
        while (e) {
            net_cident *next = e->next;
            size_t j = bucket_of(m, e->cid, e->len, n);
            e->next = b[j];
            b[j] = e;
            e = next;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->nbuckets = n;
}

static net_cident **find(const net_cidmap *m, const uint8_t *cid, size_t len)
{
    net_cident **p = &m->buckets[bucket_of(m, cid, len, m->nbuckets)];
    for (; *p; p = &(*p)->next)
        if ((*p)->len == len && memcmp((*p)->cid, cid, len) == 0)
            return p;
    return p;
}

int net_cidmap_put(net_cidmap *m, const uint8_t *cid, size_t len, irohds_net_conn *c)
{
    if (len > NGTCP2_MAX_CIDLEN)
        return -EINVAL;
    net_cident **p = find(m, cid, len);
    if (*p)
        return -EEXIST;
    net_cident *e = malloc(sizeof *e);
    if (!e)
        return -ENOMEM;
    e->next = NULL;
    e->conn = c;
    e->len = (uint8_t)len;
    memcpy(e->cid, cid, len);
    *p = e;
    if (++m->count > m->nbuckets)
        grow(m);
    return 0;
}

irohds_net_conn *net_cidmap_get(const net_cidmap *m, const uint8_t *cid, size_t len)
{
    if (len > NGTCP2_MAX_CIDLEN)
        return NULL;
    net_cident *e = *find(m, cid, len);
    return e ? e->conn : NULL;
}

void net_cidmap_del(net_cidmap *m, const uint8_t *cid, size_t len)
{
    if (len > NGTCP2_MAX_CIDLEN)
        return;
    net_cident **p = find(m, cid, len);
    if (!*p)
        return;
    net_cident *e = *p;
    *p = e->next;
    free(e);
    m->count--;
}
