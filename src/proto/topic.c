/*
 * topic.c: the gossip topic of a namespace (proto.h).
 *
 * BLAKE3 in derive_key mode, context "irohds gossip topic v1", over the
 * namespace's UTF-8 bytes.  derive_key rather than a plain hash so the topic
 * id can never collide with any other BLAKE3 value irohds computes (cache
 * keys, blob hashes): the context string is the domain separation, and the
 * "v1" lets a later protocol move to fresh topics.  Kept out of proto.c so
 * the codec (and its fuzz target) need no BLAKE3.
 */
#include "proto/proto.h"

#include "hash/blake3.h"

void irohds_proto_topic(const char *ns, size_t ns_len, uint8_t topic[32])
{
    irohds_blake3_hasher h;
    irohds_blake3_hasher_init_derive_key(&h, "irohds gossip topic v1");
    irohds_blake3_hasher_update(&h, ns, ns_len);
    irohds_blake3_hasher_finalize(&h, topic, 32);
}
