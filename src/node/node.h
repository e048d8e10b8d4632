/*
 * node: this daemon as a peer.  It owns the QUIC endpoint (net/), the gossip
 * instance (gossip/) with one topic per namespace, the address book, what
 * peers announced (providers and claims, proto/), the blob server and the
 * downloads (blobs/), and the fetch-or-compute decision (coren/).  The
 * daemon's IPC side (daemon/server.c) talks to it through this header only;
 * it never touches a socket of its own.
 *
 * How a miss flows (docs/protocol.md has the messages, docs/ipc.md the
 * client's view):
 *
 *   server: GET for K, not stored, not leased
 *     -> irohds_node_miss(K)
 *          COMPUTE: nobody can give K to us faster than computing it: the
 *                   server grants the client the lease (and the node
 *                   claims K to the namespace while the lease is held)
 *          PENDING: the node works on it (a query for providers, a
 *                   download, or waiting for a peer's claim); the server
 *                   takes K's lease on the daemon's behalf and the client
 *                   WAITs.  Later the node calls resolved(K, STORED) (the
 *                   result is in the store: answer the waiters) or
 *                   resolved(K, GIVE_UP) (hand the lease to the first
 *                   waiter: it computes).
 *
 * Everything runs on the daemon's loop thread; blob ingest goes to the
 * libuv thread pool, as the server's own PUTs do.
 */
#ifndef IROHDS_NODE_H
#define IROHDS_NODE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "store/store.h"
#include "util/util.h"

typedef struct irohds_node irohds_node;

enum irohds_node_outcome {
    IROHDS_NODE_STORED = 1,  /* the result is in the store now */
    IROHDS_NODE_GIVE_UP = 2, /* no peer can give it: someone here computes it */
};

typedef struct irohds_node_callbacks {
    /* A PENDING miss is over (see above).  Called from the loop. */
    void (*resolved)(void *ctx, const uint8_t key[IROHDS_KEY_LEN], enum irohds_node_outcome out);
    /* Bytes of a download so far, at most about ten times a second per key. */
    void (*progress)(void *ctx, const uint8_t key[IROHDS_KEY_LEN], uint64_t done,
                     uint64_t total);
    /* Is key's lease still held by someone here?  (claims stop when not) */
    bool (*leased)(void *ctx, const uint8_t key[IROHDS_KEY_LEN]);
    void *ctx;
} irohds_node_callbacks;

typedef struct irohds_node_options {
    const irohds_config *cfg; /* listen, bootstrap_peers; copied */
    const irohds_paths *paths;
    const uint8_t *secret_key; /* 64 bytes: libsodium seed || pk */
    irohds_store *store;       /* the daemon's writer handle (not owned) */
    irohds_node_callbacks cb;
} irohds_node_options;

/*
 * Bind the endpoint, join the namespaces already known (join() adds more),
 * start the capability probe on the thread pool.  -EADDRINUSE and other
 * errors from the socket; the caller may run without a node then.
 */
int irohds_node_start(uv_loop_t *loop, const irohds_node_options *opt, irohds_node **out);

/* Close every connection and stop.  Pending misses are resolved GIVE_UP
 * first (so no waiter is left hanging).  Frees from libuv close callbacks:
 * run the loop once more afterwards. */
void irohds_node_stop(irohds_node *n);

/* Start gossiping in namespace ns (idempotent).  -ENOSPC past the limit. */
int irohds_node_join(irohds_node *n, const char *ns);

enum irohds_node_miss_action {
    IROHDS_NODE_COMPUTE = 0,
    IROHDS_NODE_PENDING = 1,
};

/* What a miss on key (in namespace ns, of function func) turns into; see the
 * top of this file.  *wait_flags gets IROHDS_IPC_WAIT_* for PENDING. */
enum irohds_node_miss_action irohds_node_miss(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN],
                                              const char *ns, const char *func,
                                              uint32_t *wait_flags);

/* IROHDS_IPC_WAIT_* for a key the node is working on (0 if none): what a
 * GET that queues behind the daemon's lease is told. */
uint32_t irohds_node_wait_flags(const irohds_node *n, const uint8_t key[IROHDS_KEY_LEN]);

/* A client of this machine holds key's lease (computes func for it): tell
 * the namespace, and re-tell it every 30 s while callbacks.leased(key) says
 * the lease is still held, until announce() or unclaim().  The expected
 * time is what func took here last (unknown before its first result). */
void irohds_node_claim(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN], const char *ns,
                       const char *func);
/* The lease ended without a result: stop claiming. */
void irohds_node_unclaim(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN]);

/* A result was stored here by a local PUT: announce it to its namespace. */
void irohds_node_announce(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN],
                          const irohds_record *rec);

/* This machine's capability figure (coren); 0 until the probe finished. */
double irohds_node_figure(const irohds_node *n);

/* EXPLAIN: what a miss on key would do now, as JSON (docs/ipc.md) in a
 * malloc'd string.  NULL on ENOMEM. */
char *irohds_node_explain(irohds_node *n, const uint8_t key[IROHDS_KEY_LEN], const char *ns);

/* PEERS: known peers per namespace, as JSON (docs/ipc.md), malloc'd. */
char *irohds_node_peers_json(irohds_node *n);

/* The same as a table for people (irohds-daemon peers), malloc'd. */
char *irohds_node_peers_text(irohds_node *n);

/* For INFO: "addresses": [...] as a JSON array in a malloc'd string. */
char *irohds_node_addresses_json(irohds_node *n);

#endif
