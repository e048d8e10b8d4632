/*
 * proto: the irohds messages that travel as gossip content, one gossip topic
 * per namespace.  The normative description (byte layouts, signed bytes,
 * validity rules, timing) is docs/protocol.md; this header is the C API.
 *
 *   HAVE   "provider P holds result K": the result record, signed by its
 *          producer (who computed it), and the whole message signed by the
 *          provider (who sends it and will serve the blobs).
 *   QUERY  "who has K?", signed by the asker; answered with HAVEs.
 *   CLAIM  "I am computing K, expected done at T", signed by the claimer and
 *          re-sent while the computation runs.
 *
 * The core is I/O-free (the jech/dht style): bytes, keys and the current time
 * in; bytes, verdicts and deadlines out.  Every message starts with a version
 * byte (1) and a varint kind, then postcard fields (wire/postcard.h).
 *
 * Decoding is bounds-checked and refuses anything not in canonical form
 * (minimal varints, nothing trailing), so each message has exactly one
 * encoding: gossip's id (BLAKE3 of the content) then names a message, not one
 * of its spellings, and the bytes that were signed are the bytes received.
 * A decoded message points into its input (strings) and holds copies of the
 * fixed-size fields: keep the input alive while the strings are used.
 * Decoding checks form only; irohds_proto_verify checks signatures, the
 * namespace and the clock.
 *
 * Secret keys are libsodium's 64-byte Ed25519 form (seed || public key,
 * daemon/nodekey.h); node ids are the 32-byte public keys.
 *
 * Errors are negative errno values:
 *   -EPROTO           malformed (truncated, trailing bytes, non-canonical,
 *                     a string or number out of its rules)
 *   -EPROTONOSUPPORT  another version, or a kind this version does not know
 *   -EMSGSIZE         longer than IROHDS_PROTO_MAX_MSG
 *   -EBADMSG          a signature or the file list does not check out
 *   -EXDEV            a message for another namespace than the topic's
 *   -ESTALE           timestamp too far in the past or the future
 *   -EINVAL           (encoding) fields that break the rules
 *   -ENOBUFS          (encoding) buffer too small; *len says how much is needed
 */
#ifndef IROHDS_PROTO_H
#define IROHDS_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define IROHDS_PROTO_VERSION 1
/* A whole message, so it fits a gossip frame (4096 bytes) with room for
 * PlumTree's envelope. */
#define IROHDS_PROTO_MAX_MSG 3584
#define IROHDS_PROTO_ID_LEN 32   /* node id = Ed25519 public key */
#define IROHDS_PROTO_SK_LEN 64   /* libsodium secret key: seed || public key */
#define IROHDS_PROTO_SIG_LEN 64
#define IROHDS_PROTO_HASH_LEN 32 /* cache keys, blob hashes, digests */
#define IROHDS_PROTO_NS_MAX 127  /* bytes; "" is the global namespace */
#define IROHDS_PROTO_FUNC_MAX 255
#define IROHDS_PROTO_NAME_MAX 1023
/* A HAVE carries a result's file list only up to this many files (and only
 * when the message stays within IROHDS_PROTO_MAX_MSG). */
#define IROHDS_PROTO_FILES_INLINE_MAX 64

/* Defaults of irohds_proto_policy. */
#define IROHDS_PROTO_MAX_AGE_US (300LL * 1000000)
#define IROHDS_PROTO_MAX_SKEW_US (60LL * 1000000)

/* Claim timing (docs/protocol.md "Claims"). */
#define IROHDS_PROTO_CLAIM_REFRESH_US (30LL * 1000000) /* claimer re-sends this often */
#define IROHDS_PROTO_CLAIM_SILENCE_US (90LL * 1000000) /* dead after this long unheard */
#define IROHDS_PROTO_CLAIM_GRACE_US (60LL * 1000000)   /* live this long past its T */

enum irohds_proto_kind {
    IROHDS_PROTO_HAVE = 1,
    IROHDS_PROTO_QUERY = 2,
    IROHDS_PROTO_CLAIM = 3,
};

/* A string on the wire: UTF-8, no control characters, no NUL terminator. */
typedef struct irohds_proto_str {
    const char *p;
    size_t len;
} irohds_proto_str;

/* One FileRef file of a result: a safe relative name (docs/protocol.md). */
typedef struct irohds_proto_file {
    irohds_proto_str name;
    uint8_t blob[IROHDS_PROTO_HASH_LEN];
    uint64_t size;
} irohds_proto_file;

/* What the producer says about a result, and signs. */
typedef struct irohds_proto_result {
    irohds_proto_str ns;
    uint8_t key[IROHDS_PROTO_HASH_LEN];
    uint8_t blob[IROHDS_PROTO_HASH_LEN]; /* BLAKE3 of the result blob */
    uint64_t size;                       /* bytes in the result blob */
    uint32_t serializer;                 /* store.h enum irohds_serializer */
    double compute_seconds;              /* the producer's time; 0 = not measured */
    double figure;                       /* producer's capability figure (coren); 0 = unknown */
    uint8_t producer[IROHDS_PROTO_ID_LEN];
    int64_t created_us;
    irohds_proto_str func;               /* "module.qualname" */
    uint32_t nfiles;
    uint64_t files_size;
    uint8_t files_digest[IROHDS_PROTO_HASH_LEN]; /* irohds_proto_files_digest */
} irohds_proto_result;

typedef struct irohds_proto_have {
    irohds_proto_result result;
    uint8_t producer_sig[IROHDS_PROTO_SIG_LEN];
    bool files_inline; /* decoded: the list is in irohds_proto_msg.files */
    uint8_t provider[IROHDS_PROTO_ID_LEN];
    int64_t timestamp_us;
    uint8_t provider_sig[IROHDS_PROTO_SIG_LEN];
} irohds_proto_have;

typedef struct irohds_proto_query {
    irohds_proto_str ns;
    uint8_t key[IROHDS_PROTO_HASH_LEN];
    uint8_t asker[IROHDS_PROTO_ID_LEN];
    uint64_t nonce;
    int64_t timestamp_us;
    uint8_t sig[IROHDS_PROTO_SIG_LEN];
} irohds_proto_query;

typedef struct irohds_proto_claim {
    irohds_proto_str ns;
    uint8_t key[IROHDS_PROTO_HASH_LEN];
    uint8_t claimer[IROHDS_PROTO_ID_LEN];
    int64_t started_us;
    int64_t expected_done_us; /* T; 0 = unknown */
    double expected_seconds;  /* on the claimer; 0 = unknown */
    double figure;            /* claimer's capability figure; 0 = unknown */
    int64_t timestamp_us;
    uint8_t sig[IROHDS_PROTO_SIG_LEN];
} irohds_proto_claim;

typedef struct irohds_proto_msg {
    uint32_t kind; /* enum irohds_proto_kind */
    union {
        irohds_proto_have have;
        irohds_proto_query query;
        irohds_proto_claim claim;
    };
    /* A decoded HAVE's files, when have.files_inline (result.nfiles of them). */
    irohds_proto_file files[IROHDS_PROTO_FILES_INLINE_MAX];
} irohds_proto_msg;

/* ------------------------------------------------------------- decoding */

/* Decode one message (form only; see irohds_proto_verify).  *m points into buf. */
int irohds_proto_decode(irohds_proto_msg *m, const void *buf, size_t len);

typedef struct irohds_proto_policy {
    int64_t max_age_us;  /* refuse timestamps older than now - this */
    int64_t max_skew_us; /* refuse timestamps newer than now + this */
} irohds_proto_policy;

/*
 * Check a decoded message received on the topic of namespace ns: it names
 * that namespace, its timestamp is within the policy's window around now_us
 * (policy NULL = the defaults above), an inline file list matches the
 * producer's digest, and the signatures hold (a HAVE's two: the producer's
 * over the result, the provider's over the message).
 */
int irohds_proto_verify(const irohds_proto_msg *m, const char *ns, size_t ns_len, int64_t now_us,
                        const irohds_proto_policy *policy);

/* ------------------------------------------------------------- encoding */

/*
 * Sign h->result as its producer: sets result.producer (from sk),
 * result.nfiles, files_size and files_digest from files[0..n), and
 * producer_sig.  A provider relaying someone else's result does not call
 * this; it keeps the producer's fields and signature as received.
 */
int irohds_proto_sign_result(irohds_proto_have *h, const irohds_proto_file *files, uint32_t n,
                             const uint8_t producer_sk[IROHDS_PROTO_SK_LEN]);

/*
 * Encode a HAVE sent by the holder of provider_sk: sets h->provider,
 * h->files_inline and h->provider_sig (h->timestamp_us is the caller's).
 * files[0..result.nfiles) is the whole list (NULL when there are none); it is
 * carried when it fits, and must match result.files_digest (-EINVAL if not).
 */
int irohds_proto_encode_have(irohds_proto_have *h, const irohds_proto_file *files,
                             const uint8_t provider_sk[IROHDS_PROTO_SK_LEN], void *buf,
                             size_t cap, size_t *len);

/* Encode a QUERY / CLAIM; sets the asker / claimer (from sk) and the signature. */
int irohds_proto_encode_query(irohds_proto_query *q, const uint8_t sk[IROHDS_PROTO_SK_LEN],
                              void *buf, size_t cap, size_t *len);
int irohds_proto_encode_claim(irohds_proto_claim *c, const uint8_t sk[IROHDS_PROTO_SK_LEN],
                              void *buf, size_t cap, size_t *len);

/* ------------------------------------------------------------ file lists */

/* The digest the producer signs: BLAKE2b-256 of the list's encoding
 * (docs/protocol.md).  -EINVAL when a name breaks the rules. */
int irohds_proto_files_digest(const irohds_proto_file *files, uint32_t n,
                              uint8_t out[IROHDS_PROTO_HASH_LEN]);

/* A whole file list on its own (what a provider sends when a HAVE could not
 * carry it): the same encoding as in a HAVE, any length. */
int irohds_proto_encode_files(const irohds_proto_file *files, uint32_t n, void *buf, size_t cap,
                              size_t *len);
/* Decode such a list into files[0..max); *n = count; -ENOBUFS when it holds
 * more than max.  Names point into buf. */
int irohds_proto_decode_files(const void *buf, size_t len, irohds_proto_file *files,
                              uint32_t max, uint32_t *n);

/* Does files[0..n) belong to the verified HAVE h?  (count, total size and
 * the producer-signed digest); 0 or -EBADMSG. */
int irohds_proto_have_check_files(const irohds_proto_have *h, const irohds_proto_file *files,
                                  uint32_t n);

/* ---------------------------------------------------------------- claims */

/* When a claim stops being live unless re-sent or overtaken by a HAVE:
 * min(timestamp + SILENCE, T + GRACE when T is known). */
int64_t irohds_proto_claim_expires_us(const irohds_proto_claim *c);

/* ----------------------------------------------------------------- topic */

/* The gossip topic of a namespace: BLAKE3 derive_key with the context
 * "irohds gossip topic v1" over the namespace's bytes ("" = global). */
void irohds_proto_topic(const char *ns, size_t ns_len, uint8_t topic[32]);

/* ----------------------------------------------------------- rate limits */

/*
 * Per-peer token buckets: each peer may spend `burst` at once and earns
 * `rate` per second.  A fixed table of IROHDS_PROTO_LIMITER_SLOTS peers; when
 * it is full, a new peer takes over the fullest bucket it probes, tokens and
 * all (an idle peer loses nothing by being forgotten, and new ids cannot mint
 * tokens: a flood from made-up ids gets at most what the table refills).
 * Count a message against its signer only after it verified (else anyone
 * could spend an honest peer's budget), and against the gossip neighbour
 * that delivered it before verifying (a second limiter).
 */
#define IROHDS_PROTO_LIMITER_SLOTS 256

typedef struct irohds_proto_limiter {
    double rate;  /* tokens per second */
    double burst; /* bucket size */
    struct {
        uint8_t peer[IROHDS_PROTO_ID_LEN];
        bool used;
        double tokens;
        int64_t last_us;
    } slot[IROHDS_PROTO_LIMITER_SLOTS];
} irohds_proto_limiter;

void irohds_proto_limiter_init(irohds_proto_limiter *l, double rate, double burst);
/* Take cost tokens from peer's bucket at time now_us: true = allowed. */
bool irohds_proto_limiter_allow(irohds_proto_limiter *l, const uint8_t peer[IROHDS_PROTO_ID_LEN],
                                int64_t now_us, double cost);
/* Would allow() say yes now?  Changes nothing.  For a cheap look at a
 * message's claimed signer before verifying it: a signer already over budget
 * is dropped without spending crypto on it or charging anyone else. */
bool irohds_proto_limiter_would_allow(const irohds_proto_limiter *l,
                                      const uint8_t peer[IROHDS_PROTO_ID_LEN], int64_t now_us,
                                      double cost);

#endif
