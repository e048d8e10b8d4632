/*
 * blobs: the I/O-free core of the iroh-blobs transfer protocol (ALPN
 * "/iroh-bytes/4"), as far as irohds needs it to serve and fetch single
 * blobs: chunk range sets, the request wire format, and bao verified
 * streaming with chunk groups (16 KiB in iroh).
 *
 * Nothing here touches a socket, a file or a clock.  The provider side pulls
 * response bytes out of an encoder that reads blob and outboard through a
 * callback; the consumer side pushes received bytes, in pieces of any size,
 * into a decoder that verifies them against the root hash and hands out only
 * verified data and verified outboard nodes.  docs/blobs.md describes the
 * wire formats with a worked example.
 *
 * Conventions: errors are negative errno values.  Every struct is owned by
 * the caller (stack, heap or embedded), holds no heap memory, and may be
 * copied; the only pointer kept is the decoder's sink context, which the
 * caller keeps alive.  The *_free functions only clear.
 * Sizes are bounded: a range set holds at most IROHDS_BLOBS_MAX_RANGES
 * ranges, a sequence IROHDS_BLOBS_MAX_SEQ entries, and an encoder or decoder
 * about one chunk group of buffer.
 */
#ifndef IROHDS_BLOBS_H
#define IROHDS_BLOBS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wire/postcard.h"

#define IROHDS_BLOBS_ALPN "/iroh-bytes/4"
#define IROHDS_BLOBS_CHUNK_LEN 1024
#define IROHDS_BLOBS_MAX_RANGES 64
#define IROHDS_BLOBS_MAX_SEQ 8
#define IROHDS_BLOBS_OPEN UINT64_MAX /* range end meaning "to the end" */

/* ------------------------------------------------------ chunk range sets */

/*
 * A set of 1 KiB BLAKE3 chunks: sorted, disjoint, non-adjacent half-open
 * ranges [start, end).  end == IROHDS_BLOBS_OPEN means "and everything
 * after"; only the last range may be open.  An open range may start at
 * UINT64_MAX: that is iroh's "last chunk" (verified size) request.  A closed
 * range ending at exactly UINT64_MAX cannot be represented and is read as
 * open (no blob has a chunk UINT64_MAX, so nothing a response carries
 * changes).
 */
typedef struct {
    uint64_t start, end;
} irohds_blobs_range;

typedef struct {
    uint32_t n;
    irohds_blobs_range r[IROHDS_BLOBS_MAX_RANGES];
} irohds_blobs_ranges;

void irohds_blobs_ranges_empty(irohds_blobs_ranges *rs);
void irohds_blobs_ranges_all(irohds_blobs_ranges *rs);
/* Chunks start.. (start may be UINT64_MAX: the last chunk). */
void irohds_blobs_ranges_from(irohds_blobs_ranges *rs, uint64_t start);
/* Chunks [start, end); empty when start >= end and end is not OPEN. */
void irohds_blobs_ranges_single(irohds_blobs_ranges *rs, uint64_t start, uint64_t end);
/*
 * Append [start, end) after the last range (an empty interval is a no-op;
 * one touching the last range is merged into it).  -EINVAL if it starts
 * before the last range's end or the last range is open; -EOVERFLOW when
 * the set is full.
 */
int irohds_blobs_ranges_add(irohds_blobs_ranges *rs, uint64_t start, uint64_t end);
bool irohds_blobs_ranges_is_empty(const irohds_blobs_ranges *rs);
bool irohds_blobs_ranges_is_all(const irohds_blobs_ranges *rs);
bool irohds_blobs_ranges_contains(const irohds_blobs_ranges *rs, uint64_t chunk);
bool irohds_blobs_ranges_equal(const irohds_blobs_ranges *a, const irohds_blobs_ranges *b);

/*
 * bao-tree's canonical form of a request for a blob of size bytes
 * (truncate_ranges): a request reaching past the end is a request for the
 * last chunk, and a selection that ends with the last chunk becomes open.
 * Encoder and decoder apply it themselves; out may be in.
 */
void irohds_blobs_ranges_truncate(const irohds_blobs_ranges *in, uint64_t size,
                                  irohds_blobs_ranges *out);
/*
 * The chunks of a size-byte blob that a response to `in` carries: the
 * truncated set clipped to the blob, all closed.  (A 0-byte blob counts as
 * one empty chunk.)  out may be in.
 */
void irohds_blobs_ranges_clip(const irohds_blobs_ranges *in, uint64_t size,
                              irohds_blobs_ranges *out);
/* Only the whole chunk groups of 2^group_log chunks in `in`.  out may be in. */
void irohds_blobs_ranges_full_groups(const irohds_blobs_ranges *in, unsigned group_log,
                                     irohds_blobs_ranges *out);

/* ---------------------------------------------------------- wire format */

/*
 * ChunkRangesSeq: ranges for blob 0 (a hash sequence's root or a single
 * blob), 1, 2... of a request.  Entry i applies from blob index[i] up to the
 * next entry's index; the last entry applies to every later blob; blobs
 * before index[0] get nothing.  Indices strictly increase.
 */
typedef struct {
    uint32_t n;
    uint64_t index[IROHDS_BLOBS_MAX_SEQ];
    irohds_blobs_ranges ranges[IROHDS_BLOBS_MAX_SEQ];
} irohds_blobs_seq;

/*
 * iroh's ChunkRangesSeq::from_ranges (infinite = false: the blobs after the
 * list get nothing) and from_ranges_infinite (the last set repeats): blob k
 * gets list[k]; runs of equal sets share one entry.  -EOVERFLOW if that
 * takes more than IROHDS_BLOBS_MAX_SEQ entries.
 */
int irohds_blobs_seq_from_ranges(irohds_blobs_seq *seq, const irohds_blobs_ranges *list,
                                 size_t n, bool infinite);
/* The ranges of blob k: a pointer into seq, or to a static empty set. */
const irohds_blobs_ranges *irohds_blobs_seq_get(const irohds_blobs_seq *seq, uint64_t k);

/* RangeSpec: postcard Vec<u64> of span widths, the first span deselected. */
void irohds_blobs_ranges_encode(irohds_pc_writer *w, const irohds_blobs_ranges *rs);
/* Returns r->err afterwards: -EPROTO (truncated, or a zero-width span after
 * the first: empty or touching ranges), -EOVERFLOW (sum past 2^64, more than
 * IROHDS_BLOBS_MAX_RANGES ranges). */
int irohds_blobs_ranges_decode(irohds_pc_reader *r, irohds_blobs_ranges *rs);
/* ChunkRangesSeq: postcard Vec<(u64 index delta, RangeSpec)>. */
void irohds_blobs_seq_encode(irohds_pc_writer *w, const irohds_blobs_seq *seq);
/* As ranges_decode; also -EPROTO for a zero delta after the first entry,
 * -EOVERFLOW for indices past 2^64 or more than IROHDS_BLOBS_MAX_SEQ. */
int irohds_blobs_seq_decode(irohds_pc_reader *r, irohds_blobs_seq *seq);

/* Request enum discriminants (one byte on the wire). */
enum {
    IROHDS_BLOBS_REQ_GET = 0,
    IROHDS_BLOBS_REQ_OBSERVE = 1,
    IROHDS_BLOBS_REQ_PUSH = 8,
    IROHDS_BLOBS_REQ_GET_MANY = 9,
};

/* GetRequest { hash: [u8; 32], ranges: ChunkRangesSeq }. */
typedef struct {
    uint8_t hash[32];
    irohds_blobs_seq ranges;
} irohds_blobs_get;

/* The whole request as written on the stream: 00, hash, ranges.  -ENOBUFS
 * if cap is too small (*len is then the size needed). */
int irohds_blobs_get_encode(const irohds_blobs_get *get, uint8_t *buf, size_t cap, size_t *len);
/*
 * Decode a whole request (the bytes the requester wrote before finishing
 * its side).  0: a Get, in *get.  -ENOTSUP: a well-formed Observe, Push or
 * GetMany, which irohds does not serve.  -EPROTO: truncated, trailing bytes,
 * a reserved (2-7) or unknown discriminant, malformed ranges.  -EOVERFLOW:
 * integer overflow or a limit above.  *get is undefined after an error.
 */
int irohds_blobs_request_decode(const uint8_t *buf, size_t len, irohds_blobs_get *get);
/*
 * The ranges to serve for a Get of a single blob: those of blob 0.  iroh
 * answers requests for later blobs only when blob 0 is a hash sequence;
 * irohds serves single blobs, so *children (may be NULL) only reports that
 * some were asked for.
 */
const irohds_blobs_ranges *irohds_blobs_get_root_ranges(const irohds_blobs_get *get,
                                                        bool *children);

/* ------------------------------------------------------ bao streaming */

/*
 * A response to a Get, per blob: the blob size as 8 bytes little-endian,
 * then bao-tree's pre-order encoding of the requested ranges: 64-byte parent
 * nodes (left CV, right CV) and leaf data.  The tree is the BLAKE3 tree cut
 * at chunk groups of 2^group_log chunks (4 in iroh): parents above the
 * groups come from the outboard (hash/bao.h layout); a whole selected group
 * is sent as plain data; a partly selected group is sent as its chunk-level
 * parents over the selected chunks, then those chunks (whole selected
 * subtrees inside a group are sent as plain data too).
 */
#define IROHDS_BAO_HEADER_LEN 8
#define IROHDS_BAO_MAX_GROUP_LOG 4
#define IROHDS_BAO_MAX_GROUP_LEN (IROHDS_BLOBS_CHUNK_LEN << IROHDS_BAO_MAX_GROUP_LOG)
#define IROHDS_BAO_MAX_SIZE ((uint64_t)1 << 62) /* larger blobs are refused */
#define IROHDS_BAO_MAX_DEPTH 64

/* Response bytes (header included) for a blob of size bytes and ranges;
 * 0 for a group_log or size the encoder refuses. */
uint64_t irohds_bao_encoded_len(uint64_t size, const irohds_blobs_ranges *ranges,
                                unsigned group_log);

/* Internal traversal state shared by encoder and decoder. */
typedef struct {
    uint64_t start, len; /* bytes of the blob under this subtree */
    uint64_t ob_off;     /* outboard offset of its pair, if above the groups */
    uint8_t cv[32];      /* decoder: the chaining value it must have */
} irohds_bao_node;

typedef struct {
    uint64_t size;
    unsigned group_log;
    uint32_t depth;
    irohds_blobs_ranges sel; /* the request, truncated to size */
    irohds_bao_node stack[IROHDS_BAO_MAX_DEPTH];
} irohds_bao_walk;

/* ------------------------------------------------------------- encoder */

enum { IROHDS_BAO_DATA = 0, IROHDS_BAO_OUTBOARD = 1 };

/*
 * pread-like source of the blob (which = IROHDS_BAO_DATA) and of its
 * pre-order outboard (IROHDS_BAO_OUTBOARD, as irohds_bao_outboard writes
 * it): fill buf with exactly len bytes from offset; 0 or a negative errno.
 */
typedef int (*irohds_bao_read_fn)(void *ctx, int which, uint64_t offset, uint8_t *buf,
                                  size_t len);

typedef struct {
    irohds_bao_walk walk;
    uint64_t total, sent;
    int err;
    bool pend_in_group;    /* pending bytes are in group[], else in pair[] */
    uint32_t pend_off, pend_len;
    uint64_t group_start;  /* blob offset of the group in group[], or UINT64_MAX */
    uint8_t pair[64];
    uint8_t group[IROHDS_BAO_MAX_GROUP_LEN];
} irohds_bao_encoder;

/*
 * Start the response for a blob of size bytes to a request for `ranges`
 * (copied).  -EINVAL for group_log > IROHDS_BAO_MAX_GROUP_LOG or size >
 * IROHDS_BAO_MAX_SIZE.  Whole selected groups are read straight into the
 * caller's buffer when they fit and are never hashed; only partly selected
 * groups are read into the encoder and hashed for their inner parents.
 * The encoder does not verify what it reads (the store did when it wrote).
 */
int irohds_bao_encoder_init(irohds_bao_encoder *enc, uint64_t size,
                            const irohds_blobs_ranges *ranges, unsigned group_log);
/*
 * Write the next bytes of the response into out[0..cap), *n of them; *n <
 * cap only at the end.  Returns 0, or the first error of read (it sticks).
 */
int irohds_bao_encoder_pull(irohds_bao_encoder *enc, uint8_t *out, size_t cap, size_t *n,
                            irohds_bao_read_fn read, void *ctx);
bool irohds_bao_encoder_done(const irohds_bao_encoder *enc);
/* Total response length (irohds_bao_encoded_len), known from init. */
uint64_t irohds_bao_encoder_total(const irohds_bao_encoder *enc);
void irohds_bao_encoder_free(irohds_bao_encoder *enc);

/* ------------------------------------------------------------- decoder */

/*
 * Where verified output goes.  on_data gets blob bytes [offset, offset+len)
 * once they match the tree: data is bound to its offset by the hashes, so
 * it is right whatever the size header said.  on_parent gets each verified
 * parent node above the groups with its byte offset in the blob's outboard,
 * so writing pair there builds the outboard without hashing again; but that
 * offset follows the tree shape of the size the header claims, and a lying
 * header can shift it while the pair still verifies.  Keep outboard writes
 * only once irohds_bao_decoder_size_verified() (or when the size is known
 * from elsewhere and equals the header's).  Pointers are valid during the
 * call only.  A negative return stops the decoder with that value.  Either
 * callback may be NULL.
 */
typedef struct {
    int (*on_data)(void *ctx, uint64_t offset, const uint8_t *data, size_t len);
    int (*on_parent)(void *ctx, uint64_t outboard_offset, const uint8_t pair[64]);
    void *ctx;
} irohds_bao_sink;

typedef struct {
    irohds_bao_walk walk;
    irohds_bao_sink sink;
    uint8_t root[32];
    int err;
    bool have_size, size_verified, done;
    uint64_t expected, verified;
    irohds_bao_node cur;   /* item being received */
    int cur_kind;
    uint32_t cur_need, fill;
    uint8_t buf[IROHDS_BAO_MAX_GROUP_LEN]; /* a fragmented item, assembled */
} irohds_bao_decoder;

/*
 * Decode the response to a request for `ranges` (copied) of the blob with
 * BLAKE3 hash root.  -EINVAL for group_log > IROHDS_BAO_MAX_GROUP_LOG.
 */
int irohds_bao_decoder_init(irohds_bao_decoder *dec, const uint8_t root[32],
                            const irohds_blobs_ranges *ranges, unsigned group_log,
                            const irohds_bao_sink *sink);
/*
 * Feed the next len bytes of the response (any split, even 1 byte at a
 * time).  Every parent and leaf is checked before anything under it is
 * released.  Returns 0, -EBADMSG on the first mismatch, on a size above
 * IROHDS_BAO_MAX_SIZE or on bytes past the end of the response, or a sink
 * error; after an error every call returns it again.
 */
int irohds_bao_decoder_feed(irohds_bao_decoder *dec, const uint8_t *buf, size_t len);
/* The stream ended: 0 if the response was complete, else -EBADMSG (sticks). */
int irohds_bao_decoder_finish(irohds_bao_decoder *dec);
bool irohds_bao_decoder_done(const irohds_bao_decoder *dec);
/*
 * The size the provider claimed, once the header arrived (false before).
 * It is proven only when size_verified: the leaf holding the last byte has
 * verified (bao's rule), which happens when the ranges reach the last chunk.
 */
bool irohds_bao_decoder_size(const irohds_bao_decoder *dec, uint64_t *size);
bool irohds_bao_decoder_size_verified(const irohds_bao_decoder *dec);
/* Blob bytes released so far. */
uint64_t irohds_bao_decoder_verified_bytes(const irohds_bao_decoder *dec);
/* Response length the header implies (0 before the header). */
uint64_t irohds_bao_decoder_expected_len(const irohds_bao_decoder *dec);
void irohds_bao_decoder_free(irohds_bao_decoder *dec);

#endif
