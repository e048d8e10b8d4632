/*
 * nodekey: this machine's identity, an Ed25519 key pair.  The node id other
 * peers know us by is the 64-hex public key.  Only the 32-byte seed is
 * stored (paths.key_path, mode 0600); the pair is derived from it.
 */
#ifndef IROHDS_DAEMON_NODEKEY_H
#define IROHDS_DAEMON_NODEKEY_H

#include <stdbool.h>
#include <stdint.h>

#define IROHDS_NODEKEY_SEED 32

typedef struct irohds_nodekey {
    uint8_t pk[32]; /* public key = node id */
    uint8_t sk[64]; /* libsodium secret key (seed || pk) */
    char id[65];    /* hex of pk */
} irohds_nodekey;

/*
 * Load the key at path; when it is absent and create is true, make one.
 * Creation is atomic (written under a temporary name, then link()ed into
 * place), so two daemons starting at once end up with the same key.
 * -ENOENT (absent, create false), -EINVAL (not 32 bytes), other -errno.
 */
int irohds_nodekey_load(irohds_nodekey *k, const char *path, bool create);

/* Wipe the secret from memory. */
void irohds_nodekey_wipe(irohds_nodekey *k);

#endif
