/*
 * dns: the I/O-free DNS pieces discovery needs.
 *
 *   - a DNS message codec (RFC 1035): a reader that walks a message record
 *     by record and a writer with name compression.  The mDNS bits ride
 *     along: the QU bit of a question's class, the cache-flush bit of a
 *     record's class (RFC 6762 §5.4, §10.2).
 *   - base32 in three alphabets: RFC 4648 base32 (iroh's mDNS instance
 *     label), base32hex (iroh's TLS server name) and z-base-32 (pkarr keys).
 *   - pkarr signed packets, the record iroh publishes to the mainline DHT
 *     and to pkarr relays: <32 key><64 sig><8 BE timestamp µs><DNS packet>,
 *     with iroh's `_iroh` TXT address records inside (docs/discovery-records.md).
 *
 * Hostile input is the normal case.  The reader never reads past the
 * message, refuses header counts the message cannot hold, follows
 * compression pointers only backwards (each jump lands before the start of
 * the labels that led to it, so no pointer chain can loop), keeps names
 * within 255 bytes and labels within 63, checks the rdata of A, AAAA, PTR,
 * SRV and TXT records against their type and bounds-checks (but does not
 * interpret) every other type's rdata.  Nothing may trail the last record.
 *
 * Nothing here allocates.  Decoded records point into the message they were
 * read from (rdata, TXT strings): keep the message alive while they are used.
 * Names are copied out, uncompressed, into irohds_dns_name.
 *
 * Errors are negative errno values:
 *   -EPROTO    malformed input (bad compression, truncation, rdata that does
 *              not fit its type, counts the message cannot hold, trailing bytes)
 *   -EMSGSIZE  longer than a format allows (pkarr packet > 1104 bytes, DNS
 *              part > 1000, a name > 255 bytes, a TXT string > 255)
 *   -ENOBUFS   output buffer too small
 *   -EINVAL    bad arguments (text that does not encode, a key that is not
 *              a valid Ed25519 point, records written out of section order)
 *   -EBADMSG   a pkarr signature that does not verify
 */
#ifndef IROHDS_DNS_H
#define IROHDS_DNS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* ------------------------------------------------------------- messages */

#define IROHDS_DNS_NAME_MAX 255  /* wire bytes of a name, root included */
#define IROHDS_DNS_LABEL_MAX 63
#define IROHDS_DNS_HEADER_LEN 12

enum irohds_dns_type {
    IROHDS_DNS_A = 1,
    IROHDS_DNS_NS = 2,
    IROHDS_DNS_CNAME = 5,
    IROHDS_DNS_PTR = 12,
    IROHDS_DNS_TXT = 16,
    IROHDS_DNS_AAAA = 28,
    IROHDS_DNS_SRV = 33,
    IROHDS_DNS_OPT = 41,
    IROHDS_DNS_ANY = 255,
};

#define IROHDS_DNS_CLASS_IN 1
#define IROHDS_DNS_CLASS_ANY 255
/* Top bit of a question's class: unicast response wanted (mDNS QU). */
#define IROHDS_DNS_QU 0x8000
/* Top bit of a record's class: cache flush (mDNS unique record). */
#define IROHDS_DNS_CACHE_FLUSH 0x8000

/* Header flag bits (the second 16-bit word). */
#define IROHDS_DNS_QR 0x8000
#define IROHDS_DNS_OPCODE_MASK 0x7800
#define IROHDS_DNS_AA 0x0400
#define IROHDS_DNS_TC 0x0200
#define IROHDS_DNS_RCODE_MASK 0x000f

enum irohds_dns_section {
    IROHDS_DNS_QUESTION = 0,
    IROHDS_DNS_ANSWER = 1,
    IROHDS_DNS_AUTHORITY = 2,
    IROHDS_DNS_ADDITIONAL = 3,
};

/* A name in uncompressed wire form: length-prefixed labels ending with the
 * root's zero byte.  len counts all of it (1 for the root). */
typedef struct irohds_dns_name {
    uint8_t len;
    uint8_t wire[IROHDS_DNS_NAME_MAX];
} irohds_dns_name;

typedef struct irohds_dns_question {
    irohds_dns_name name;
    uint16_t type;
    uint16_t qclass; /* without the QU bit */
    bool qu;
} irohds_dns_question;

/*
 * A resource record.  rdata/rdlen always give the raw rdata inside the
 * message (for a record to write: the rdata of TXT and unknown types).
 * The union holds the decoded rdata of A, AAAA, PTR and SRV; TXT strings
 * are walked with irohds_dns_txt_next.
 */
typedef struct irohds_dns_rr {
    irohds_dns_name name;
    uint16_t type;
    uint16_t rclass;  /* without the cache-flush bit (OPT: the raw field) */
    bool cache_flush;
    uint32_t ttl;
    const uint8_t *rdata;
    uint16_t rdlen;
    enum irohds_dns_section section; /* set by the reader */
    union {
        uint8_t a[4];
        uint8_t aaaa[16];
        irohds_dns_name ptr;
        struct {
            uint16_t priority, weight, port;
            irohds_dns_name target;
        } srv;
    } u;
} irohds_dns_rr;

/* Read a possibly compressed name from msg at *off; on success *off is just
 * past the name's bytes at that place (after its root or first pointer). */
int irohds_dns_read_name(const uint8_t *msg, size_t len, size_t *off, irohds_dns_name *out);

/*
 * The reader: init checks the header and that the counts fit the message;
 * read_question yields the questions (1 per call, 0 when none is left);
 * read_rr yields the records of the three other sections (1 per call, 0 at
 * the end, where it also checks that nothing trails), skipping questions not
 * read.  Any error is final.
 */
typedef struct irohds_dns_reader {
    const uint8_t *msg;
    size_t len, off;
    uint16_t id, flags;
    uint16_t count[4]; /* questions, answers, authority, additional */
    unsigned section;  /* current section */
    unsigned left;     /* entries left in it */
    int err;
} irohds_dns_reader;

int irohds_dns_reader_init(irohds_dns_reader *r, const uint8_t *msg, size_t len);
int irohds_dns_read_question(irohds_dns_reader *r, irohds_dns_question *q);
int irohds_dns_read_rr(irohds_dns_reader *r, irohds_dns_rr *rr);

/* Walk a whole message: 0 when every part is well-formed. */
int irohds_dns_check(const uint8_t *msg, size_t len);

/* The next character-string of a TXT record: 1 with *s, *slen set and *pos
 * advanced, 0 at the end (start with *pos = 0).  Bounds were checked by the
 * reader; a hand-made rr is checked here too (-EPROTO). */
int irohds_dns_txt_next(const irohds_dns_rr *rr, size_t *pos, const uint8_t **s, size_t *slen);

/* Append one character-string (<= 255 bytes) to TXT rdata being built in
 * buf (at most 65535 bytes); *len grows. */
int irohds_dns_txt_append(uint8_t *buf, size_t cap, size_t *len, const void *s, size_t slen);

/*
 * The writer.  Sections must be written in order (questions, answers,
 * authority, additional).  Names of records and of PTR rdata are
 * compressed; SRV targets are written whole (RFC 2782; some parsers refuse
 * compressed ones) but later names may point into them.  Errors are sticky:
 * write everything, then check finish, which patches the header counts.
 */
#define IROHDS_DNS_CTAB_MAX 64
typedef struct irohds_dns_writer {
    uint8_t *buf;
    size_t cap, len;
    int err;
    uint16_t count[4];
    unsigned section;
    uint16_t ctab[IROHDS_DNS_CTAB_MAX]; /* offsets of labels written out */
    unsigned nctab;
} irohds_dns_writer;

void irohds_dns_writer_init(irohds_dns_writer *w, uint8_t *buf, size_t cap, uint16_t id,
                            uint16_t flags);
/* qclass may carry IROHDS_DNS_QU. */
void irohds_dns_write_question(irohds_dns_writer *w, const irohds_dns_name *name, uint16_t type,
                               uint16_t qclass);
/* Writes rr->name, type, rclass (| cache-flush), ttl and rdata: from the
 * union for A, AAAA, PTR, SRV; from rdata/rdlen for any other type. */
void irohds_dns_write_rr(irohds_dns_writer *w, enum irohds_dns_section section,
                         const irohds_dns_rr *rr);
int irohds_dns_writer_finish(irohds_dns_writer *w, size_t *len);

/* ---------------------------------------------------------------- names */

/* "a.b.c" or "a.b.c." (root: "" or "."); "\." and "\\" escape, "\DDD" is a
 * decimal byte.  -EINVAL for empty labels, labels > 63, names > 255. */
int irohds_dns_name_from_text(irohds_dns_name *n, const char *text);
/* Dotted text without the trailing dot ("." for the root); '.', '\\' and
 * bytes outside 0x21..0x7e escaped as above.  Returns the length. */
int irohds_dns_name_to_text(const irohds_dns_name *n, char *out, size_t cap);
/* Equal ignoring ASCII case. */
bool irohds_dns_name_eq(const irohds_dns_name *a, const irohds_dns_name *b);
/* out = label . suffix (label 1..63 bytes). */
int irohds_dns_name_prepend(irohds_dns_name *out, const void *label, size_t len,
                            const irohds_dns_name *suffix);
/* The first label of n (false for the root); rest, if not NULL, gets the
 * name without it. */
bool irohds_dns_name_first(const irohds_dns_name *n, const uint8_t **label, size_t *len,
                           irohds_dns_name *rest);

/* ---------------------------------------------------------- addresses */

/* An IP socket address; for IPv4 the first 4 bytes of ip are used. */
typedef struct irohds_dns_addr {
    uint8_t family; /* 4 or 6 */
    uint8_t ip[16];
    uint16_t port;
} irohds_dns_addr;

#define IROHDS_DNS_ADDR_TEXT_MAX 48 /* "[" 39 "]:" 5, NUL */

/* "a.b.c.d:port" or "[v6]:port" (RFC 5952 text, as Rust's SocketAddr). */
int irohds_dns_addr_format(const irohds_dns_addr *a, char *out, size_t cap);
/* The same forms back (exactly n bytes of s). */
int irohds_dns_addr_parse(irohds_dns_addr *a, const char *s, size_t n);
bool irohds_dns_addr_eq(const irohds_dns_addr *a, const irohds_dns_addr *b);

/* --------------------------------------------------------------- base32 */

enum irohds_dns_b32 {
    IROHDS_B32_RFC4648, /* a-z 2-7 (written lower case) */
    IROHDS_B32_HEX,     /* 0-9 a-v, RFC 4648 §7 (iroh's BASE32_DNSSEC) */
    IROHDS_B32_Z,       /* z-base-32, ybndrfg8ejkmcpqxot1uwisza345h769 */
};

/* Characters for n bytes (no padding): ceil(8n/5). */
size_t irohds_dns_b32_len(size_t n);
/* Lower case, no padding, NUL-terminated; returns the length. */
int irohds_dns_b32_encode(enum irohds_dns_b32 alphabet, const uint8_t *in, size_t n, char *out,
                          size_t cap);
/* Either case, no padding; -EINVAL for other characters, impossible lengths
 * and non-zero leftover bits.  Returns the byte count. */
int irohds_dns_b32_decode(enum irohds_dns_b32 alphabet, const char *in, size_t n, uint8_t *out,
                          size_t cap);

/* ---------------------------------------------------------------- pkarr */

#define IROHDS_PKARR_KEY_LEN 32
#define IROHDS_PKARR_SIG_LEN 64
#define IROHDS_PKARR_SK_LEN 64  /* libsodium Ed25519 secret key: seed || public key */
#define IROHDS_PKARR_HEADER_LEN 104
#define IROHDS_PKARR_DNS_MAX 1000
#define IROHDS_PKARR_MAX 1104
#define IROHDS_PKARR_Z32_LEN 52
#define IROHDS_PKARR_TTL 30     /* iroh's default for its TXT records */
#define IROHDS_PKARR_ADDRS_MAX 16
#define IROHDS_PKARR_RELAY_MAX 249 /* "relay=" + this fills a TXT string */

/* z-base-32 text of a public key (52 characters + NUL into out[53]). */
void irohds_pkarr_z32_encode(const uint8_t key[IROHDS_PKARR_KEY_LEN], char out[53]);
/* A z-base-32 key: exactly 52 characters that decode to a valid Ed25519
 * point (-EINVAL otherwise). */
int irohds_pkarr_z32_decode(const char *text, size_t n, uint8_t key[IROHDS_PKARR_KEY_LEN]);

/* The BEP 44 bytes a pkarr packet signs: "3:seqi<ts>e1:v<len>:<v>".
 * Returns the length, or -ENOBUFS (nothing written) when cap is short. */
int irohds_pkarr_signable(uint64_t ts_us, const uint8_t *v, size_t vlen, uint8_t *out, size_t cap);

/* pkarr/iroh name normalization relative to origin (a z32 key): "." "@" ""
 * and "@." become origin; names ending in origin stay; others get
 * "." origin appended; a trailing dot is dropped first. */
int irohds_pkarr_normalize_name(const char *origin, const char *name, char *out, size_t cap);

/* A signed packet's parts; dns points into the packet. */
typedef struct irohds_pkarr_packet {
    uint8_t key[IROHDS_PKARR_KEY_LEN];
    uint8_t sig[IROHDS_PKARR_SIG_LEN];
    uint64_t ts_us;
    const uint8_t *dns;
    size_t dns_len;
} irohds_pkarr_packet;

/* Sign dns (<= 1000 bytes) with sk at ts_us (<= INT64_MAX, the BEP 44 seq
 * limit) into out: the whole packet. */
int irohds_pkarr_sign(const uint8_t sk[IROHDS_PKARR_SK_LEN], uint64_t ts_us, const uint8_t *dns,
                      size_t dns_len, uint8_t *out, size_t cap, size_t *len);
/* Layout, sizes (104..1104 bytes), key validity and signature; fills *p.
 * Does not look at the DNS part. */
int irohds_pkarr_verify(irohds_pkarr_packet *p, const uint8_t *pkt, size_t len);
/* verify, then the DNS part must be a well-formed message. */
int irohds_pkarr_open(irohds_pkarr_packet *p, const uint8_t *pkt, size_t len);
/* iroh's rule: newer timestamp wins; on a tie the byte-wise larger DNS
 * packet (a shorter prefix loses). */
bool irohds_pkarr_more_recent(const irohds_pkarr_packet *a, const irohds_pkarr_packet *b);

/*
 * BEP 44 view of a packet, for the DHT: k = key, seq = timestamp, sig, and
 * v = the DNS packet (a bencoded byte string on the wire); no salt; the
 * target is SHA-1(k).  All pointers point into the packet (to_bep44) or
 * are the caller's (from_bep44).
 */
typedef struct irohds_pkarr_bep44 {
    const uint8_t *k;   /* 32 bytes */
    const uint8_t *sig; /* 64 bytes */
    int64_t seq;
    const uint8_t *v;
    size_t v_len;
} irohds_pkarr_bep44;

/* Verifies the packet, then gives its BEP 44 fields. */
int irohds_pkarr_to_bep44(const uint8_t *pkt, size_t len, irohds_pkarr_bep44 *out);
/* Assembles a packet from BEP 44 fields (as a DHT get returned them) and
 * verifies it (open: the value must be a DNS message). */
int irohds_pkarr_from_bep44(const irohds_pkarr_bep44 *in, uint8_t *out, size_t cap, size_t *len);

/* What iroh publishes about an endpoint: a relay URL and IP addresses. */
typedef struct irohds_pkarr_info {
    char relay[IROHDS_PKARR_RELAY_MAX + 1]; /* "" when none */
    size_t n_addrs;
    irohds_dns_addr addrs[IROHDS_PKARR_ADDRS_MAX];
} irohds_pkarr_info;

/*
 * Build iroh's record for info, signed: TXT records named _iroh.<z32 key>,
 * ttl each, `relay=<url>` first (if any), then one `addr=<ip:port>` per
 * address, in one DNS response (id 0, flags QR) with compressed names.
 * -EMSGSIZE when the DNS part would pass 1000 bytes.
 */
int irohds_pkarr_build(const uint8_t sk[IROHDS_PKARR_SK_LEN], uint64_t ts_us,
                       const irohds_pkarr_info *info, uint32_t ttl, uint8_t *out, size_t cap,
                       size_t *len);

/*
 * Extract an endpoint's info from a DNS message: TXT records of any section
 * named _iroh.<z32 of id>[.<origin>] (origin NULL or "" for a pkarr packet,
 * e.g. "dns.iroh.link" for a DNS lookup); other names and types are
 * ignored.  Each record is one attribute, its character-strings joined:
 * relay=<url> (the first kept), addr=<ip:port> (several may share a record,
 * separated by spaces; non-IP addresses skipped; at most
 * IROHDS_PKARR_ADDRS_MAX kept), anything else ignored.
 */
int irohds_pkarr_info_from_dns(const uint8_t *dns, size_t len, const uint8_t id[32],
                               const char *origin, irohds_pkarr_info *info);
/* The same for an opened packet (its own key, no origin). */
int irohds_pkarr_info_from_packet(const irohds_pkarr_packet *p, irohds_pkarr_info *info);

#endif
