/*
 * leases: single flight for misses.  When several processes miss on the same
 * key at once, exactly one computes it (it holds the lease) and the others
 * wait for its result instead of computing it again.
 *
 * An I/O-free state machine in the jech/dht manner: the server hands it
 * events (a GET for a key that is not stored, a PUT, a RELEASE, a closed
 * connection) and it answers through the emit callback with what to send to
 * whom.  Connections are opaque 64-bit ids chosen by the caller.
 *
 *   GET, key free              -> GRANT(lease) to the requester
 *   GET, key leased            -> WAIT to the requester, queued FIFO
 *   PUT stored (stored())      -> HIT to every waiter; the lease ends
 *   RELEASE / holder closes /
 *   PUT failed                 -> GRANT(new lease) to the first waiter
 *   waiter closes              -> it leaves the queue
 *
 * Once a PUT is under way (begin_put) the lease no longer follows the
 * holder's connection: a client that sends its result and exits at once
 * must not hand the lease to a waiter while the daemon stores that result.
 *
 * Lease ids are never 0 (0 means "no lease" on the wire) and never reused.
 */
#ifndef IROHDS_DAEMON_LEASES_H
#define IROHDS_DAEMON_LEASES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum irohds_lease_kind {
    IROHDS_LEASE_GRANT = 1, /* send LEASE(key, lease): you compute it */
    IROHDS_LEASE_WAIT,      /* send WAIT(key): someone else computes it */
    IROHDS_LEASE_HIT,       /* send HIT(key, ...) from the store: it is done */
} irohds_lease_kind;

typedef struct irohds_lease_event {
    irohds_lease_kind kind;
    uint64_t conn;   /* connection to answer */
    uint32_t req_id; /* the GET being answered */
    uint8_t key[32];
    uint64_t lease; /* GRANT only */
} irohds_lease_event;

typedef void (*irohds_lease_emit_fn)(void *ctx, const irohds_lease_event *ev);

typedef struct irohds_leases irohds_leases;

/* The table calls emit for every answer, synchronously, from inside the call
 * that caused it.  emit must not call back into the table. */
int irohds_leases_init(irohds_leases **out, irohds_lease_emit_fn emit, void *ctx);
void irohds_leases_free(irohds_leases *l);

/* A GET (from conn, request req_id) for a key that is not stored: emits
 * GRANT or WAIT.  -ENOMEM. */
int irohds_leases_get(irohds_leases *l, const uint8_t key[32], uint64_t conn, uint32_t req_id);

/*
 * Take the lease on key for holder without a GET and without emitting
 * anything: the daemon itself holds a key this way while it downloads the
 * result from a peer or waits for a peer that claimed it.  GETs that arrive
 * meanwhile WAIT as usual; stored() answers them, release() hands the lease
 * to the first of them.  0 and *lease, or -EBUSY when the key is leased.
 */
int irohds_leases_acquire(irohds_leases *l, const uint8_t key[32], uint64_t holder,
                          uint64_t *lease);

typedef void (*irohds_lease_waiter_fn)(void *ctx, uint64_t conn, uint32_t req_id);
/* Call fn for every waiter of key, in queue order (progress reports).  fn
 * must not call back into the table. */
void irohds_leases_foreach_waiter(const irohds_leases *l, const uint8_t key[32],
                                  irohds_lease_waiter_fn fn, void *ctx);

/* Does lease currently hold key?  0, or -ESTALE. */
int irohds_leases_check(irohds_leases *l, const uint8_t key[32], uint64_t lease);

/* A PUT under this lease has started: detach it from its connection.  0 or -ESTALE. */
int irohds_leases_begin_put(irohds_leases *l, const uint8_t key[32], uint64_t lease);

/* A PUT under this lease failed: the next waiter gets the lease.  0 or -ESTALE. */
int irohds_leases_put_failed(irohds_leases *l, const uint8_t key[32], uint64_t lease);

/*
 * A result for key is now stored (under lease, or unleased with lease 0):
 * every waiter gets HIT.  If lease is the holder's, the entry ends; an
 * unleased put leaves a current holder holding (its own PUT will replace).
 */
void irohds_leases_stored(irohds_leases *l, const uint8_t key[32], uint64_t lease);

/* The holder gives the lease back unused: next waiter gets it.
 * 0, -ESTALE (not the holder), -EBUSY (its PUT is under way). */
int irohds_leases_release(irohds_leases *l, const uint8_t key[32], uint64_t lease);

/* conn closed: its waits vanish, the leases it holds (not putting) pass on. */
void irohds_leases_drop_conn(irohds_leases *l, uint64_t conn);

/* Is key leased or waited for?  (gc must not evict it.) */
bool irohds_leases_busy(const irohds_leases *l, const uint8_t key[32]);

/* Keys currently leased. */
size_t irohds_leases_count(const irohds_leases *l);

#endif
