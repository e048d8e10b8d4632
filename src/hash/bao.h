/*
 * hash/bao: bao verified-streaming trees over BLAKE3, with chunk groups.
 *
 * iroh-blobs cuts the BLAKE3 tree at 16 KiB chunk groups (group_log = 4:
 * 2^4 chunks of 1 KiB): leaves are groups, and only the parent nodes above
 * them are kept.  The outboard is those parents, 64 bytes each (left CV then
 * right CV), in pre-order, with no length prefix (the bao-tree layout; bao's
 * own outboard files prepend an 8-byte little-endian length).  A blob of one
 * group or less has an empty outboard.  The root hash is the ordinary BLAKE3
 * hash of the whole content.
 *
 * The store writes an outboard beside each blob when it is stored; the
 * transfer code (a later issue) uses it to stream and verify ranges.
 */
#ifndef IROHDS_BAO_H
#define IROHDS_BAO_H

#include <stddef.h>
#include <stdint.h>

#define IROHDS_BAO_GROUP_LOG 4 /* 16 KiB chunk groups, as iroh-blobs */

/* Number of bytes in the outboard of a content_len-byte blob. */
uint64_t irohds_bao_outboard_size(uint64_t content_len, unsigned group_log);

/*
 * Compute the root hash and the outboard of data[0..len) in one pass.
 * outboard must hold irohds_bao_outboard_size(len, group_log) bytes.
 */
void irohds_bao_outboard(const uint8_t *data, uint64_t len, unsigned group_log,
                         uint8_t *outboard, uint8_t root[32]);

/*
 * Check data against an outboard and a root hash.  Returns 0 when every
 * node verifies, -EBADMSG otherwise.
 */
int irohds_bao_verify(const uint8_t *data, uint64_t len, unsigned group_log,
                      const uint8_t *outboard, uint64_t outboard_len, const uint8_t root[32]);

#endif
