/*
 * leases.c: the single-flight table (see leases.h for the transitions).
 *
 * A chained hash table keyed by the cache key (keys are BLAKE3 outputs, so
 * their first bytes are already uniformly spread and serve as the hash),
 * each entry holding its lease and a FIFO of waiters.  Entries exist only
 * while someone computes a key, so the table stays small (one per in-flight
 * computation) and a closed connection is handled by a full scan.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/leases.h"

#define NBUCKETS 1024

typedef struct waiter {
    struct waiter *next;
    uint64_t conn;
    uint32_t req_id;
} waiter;

typedef struct entry {
    struct entry *next; /* bucket chain */
    uint8_t key[32];
    uint64_t lease;
    uint64_t holder; /* conn of the holder */
    bool putting;    /* a PUT under this lease is being stored */
    waiter *head, *tail;
} entry;

struct irohds_leases {
    entry *buckets[NBUCKETS];
    size_t count;
    uint64_t next_lease;
    irohds_lease_emit_fn emit;
    void *ctx;
};

static size_t bucket_of(const uint8_t key[32])
{
    return ((size_t)key[0] | (size_t)key[1] << 8) % NBUCKETS;
}

static entry **find_slot(irohds_leases *l, const uint8_t key[32])
{
    entry **pp = &l->buckets[bucket_of(key)];
    while (*pp && memcmp((*pp)->key, key, 32) != 0)
        pp = &(*pp)->next;
    return pp;
}

static void emit(irohds_leases *l, irohds_lease_kind kind, const entry *e, uint64_t conn,
                 uint32_t req_id)
{
    irohds_lease_event ev = {.kind = kind, .conn = conn, .req_id = req_id};
    memcpy(ev.key, e->key, 32);
    if (kind == IROHDS_LEASE_GRANT)
        ev.lease = e->lease;
    l->emit(l->ctx, &ev);
}

int irohds_leases_init(irohds_leases **out, irohds_lease_emit_fn fn, void *ctx)
{
    irohds_leases *l = calloc(1, sizeof(*l));
    if (!l)
        return -ENOMEM;
    l->next_lease = 1;
    l->emit = fn;
    l->ctx = ctx;
    *out = l;
    return 0;
}

static void free_entry(entry *e)
{
    while (e->head) {
        waiter *w = e->head;
        e->head = w->next;
        free(w);
    }
    free(e);
}

void irohds_leases_free(irohds_leases *l)
{
    if (!l)
        return;
    for (size_t b = 0; b < NBUCKETS; b++) {
        while (l->buckets[b]) {
            entry *e = l->buckets[b];
            l->buckets[b] = e->next;
            free_entry(e);
        }
    }
    free(l);
}

int irohds_leases_get(irohds_leases *l, const uint8_t key[32], uint64_t conn, uint32_t req_id)
{
    entry **pp = find_slot(l, key);
    if (*pp) {
        waiter *w = calloc(1, sizeof(*w));
        if (!w)
            return -ENOMEM;
        w->conn = conn;
        w->req_id = req_id;
        if ((*pp)->tail)
            (*pp)->tail->next = w;
        else
            (*pp)->head = w;
        (*pp)->tail = w;
        emit(l, IROHDS_LEASE_WAIT, *pp, conn, req_id);
        return 0;
    }
    entry *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    memcpy(e->key, key, 32);
    e->lease = l->next_lease++;
    e->holder = conn;
    *pp = e;
    l->count++;
    emit(l, IROHDS_LEASE_GRANT, e, conn, req_id);
    return 0;
}

int irohds_leases_acquire(irohds_leases *l, const uint8_t key[32], uint64_t holder,
                          uint64_t *lease)
{
    entry **pp = find_slot(l, key);
    if (*pp)
        return -EBUSY;
    entry *e = calloc(1, sizeof(*e));
    if (!e)
        return -ENOMEM;
    memcpy(e->key, key, 32);
    e->lease = l->next_lease++;
    e->holder = holder;
    *pp = e;
    l->count++;
    *lease = e->lease;
    return 0;
}

void irohds_leases_foreach_waiter(const irohds_leases *l, const uint8_t key[32],
                                  irohds_lease_waiter_fn fn, void *ctx)
{
    const entry *e = l->buckets[bucket_of(key)];
    while (e && memcmp(e->key, key, 32) != 0)
        e = e->next;
    for (const waiter *w = e ? e->head : NULL; w; w = w->next)
        fn(ctx, w->conn, w->req_id);
}

static entry *find_held(irohds_leases *l, const uint8_t key[32], uint64_t lease)
{
    entry *e = *find_slot(l, key);
    return e && lease != 0 && e->lease == lease ? e : NULL;
}

int irohds_leases_check(irohds_leases *l, const uint8_t key[32], uint64_t lease)
{
    return find_held(l, key, lease) ? 0 : -ESTALE;
}

int irohds_leases_begin_put(irohds_leases *l, const uint8_t key[32], uint64_t lease)
{
    entry *e = find_held(l, key, lease);
    if (!e)
        return -ESTALE;
    e->putting = true;
    return 0;
}

/* The lease at *pp ends without a result: the first waiter takes it over, or
 * the entry goes when nobody waits. */
static void hand_over(irohds_leases *l, entry **pp)
{
    entry *e = *pp;
    waiter *w = e->head;
    if (!w) {
        *pp = e->next;
        l->count--;
        free(e);
        return;
    }
    e->head = w->next;
    if (!e->head)
        e->tail = NULL;
    e->lease = l->next_lease++;
    e->holder = w->conn;
    e->putting = false;
    emit(l, IROHDS_LEASE_GRANT, e, w->conn, w->req_id);
    free(w);
}

int irohds_leases_put_failed(irohds_leases *l, const uint8_t key[32], uint64_t lease)
{
    entry **pp = find_slot(l, key);
    if (!*pp || lease == 0 || (*pp)->lease != lease)
        return -ESTALE;
    hand_over(l, pp);
    return 0;
}

int irohds_leases_release(irohds_leases *l, const uint8_t key[32], uint64_t lease)
{
    entry **pp = find_slot(l, key);
    if (!*pp || lease == 0 || (*pp)->lease != lease)
        return -ESTALE;
    if ((*pp)->putting)
        return -EBUSY;
    hand_over(l, pp);
    return 0;
}

void irohds_leases_stored(irohds_leases *l, const uint8_t key[32], uint64_t lease)
{
    entry **pp = find_slot(l, key);
    entry *e = *pp;
    if (!e)
        return;
    /* Unlink the waiters first: emit may cause the caller to queue new GETs
     * (it must not call us, but stay safe against a re-entrant table walk). */
    waiter *w = e->head;
    e->head = e->tail = NULL;
    bool ends = lease != 0 && e->lease == lease;
    if (ends) {
        *pp = e->next;
        l->count--;
    }
    while (w) {
        waiter *next = w->next;
        emit(l, IROHDS_LEASE_HIT, e, w->conn, w->req_id);
        free(w);
        w = next;
    }
    if (ends)
        free(e);
}

void irohds_leases_drop_conn(irohds_leases *l, uint64_t conn)
{
    for (size_t b = 0; b < NBUCKETS; b++) {
        entry **pp = &l->buckets[b];
        while (*pp) {
            entry *e = *pp;
            /* Remove this connection's waits, keeping FIFO order of the rest. */
            waiter **wp = &e->head;
            e->tail = NULL;
            while (*wp) {
                if ((*wp)->conn == conn) {
                    waiter *dead = *wp;
                    *wp = dead->next;
                    free(dead);
                } else {
                    e->tail = *wp;
                    wp = &(*wp)->next;
                }
            }
            if (e->holder == conn && !e->putting) {
                hand_over(l, pp);
                if (*pp != e) /* entry freed: *pp is already the next one */
                    continue;
            }
            pp = &e->next;
        }
    }
}

bool irohds_leases_busy(const irohds_leases *l, const uint8_t key[32])
{
    const entry *e = l->buckets[bucket_of(key)];
    while (e && memcmp(e->key, key, 32) != 0)
        e = e->next;
    return e != NULL;
}

size_t irohds_leases_count(const irohds_leases *l)
{
    return l->count;
}
