/*
 * proto.c: the codec and the signature checks of the irohds gossip messages
 * (proto.h, docs/protocol.md).
 *
 * One set of put_* functions writes every encoding: the messages and the
 * result record the producer signs (the file-list digest hashes the same
 * list encoding piece by piece, since a list may be any length).  Signed
 * bytes are built in a `signable`: the length-prefixed context string (the
 * domain separation: "irohds/v1/result", ".../have", ...) followed by what
 * put_* writes.  Signing and verifying both go through it, so the two can
 * never disagree about what was signed.
 *
 * The decoder reads the fields, checks each against its rule, then encodes
 * what it read and compares with the input: equal bytes prove the input was
 * canonical (a non-minimal varint can only make it longer or different), so
 * the signed bytes are exactly the received bytes.
 *
 * This file needs only wire/postcard and libsodium (Ed25519, BLAKE2b), so the
 * fuzz target can build it alone.
 */
#include "proto/proto.h"

#include <errno.h>
#include <math.h>
#include <string.h>

#include <sodium.h>

#include "wire/postcard.h"

#define CTX_RESULT "irohds/v1/result"
#define CTX_HAVE "irohds/v1/have"
#define CTX_QUERY "irohds/v1/query"
#define CTX_CLAIM "irohds/v1/claim"
#define CTX_FILES "irohds/v1/files"
#define CTX_MAX 32

/* Smallest encoded file: 1-byte name length, 1-byte name, hash, 1-byte size. */
#define FILE_MIN_ENC (1 + 1 + IROHDS_PROTO_HASH_LEN + 1)

/* ------------------------------------------------------------ text rules */

/* Length of the UTF-8 sequence at s[0..n) (1..4), or 0 when invalid:
 * overlong forms, surrogates and code points past U+10FFFF are refused. */
static size_t utf8_seq(const uint8_t *s, size_t n)
{
    uint8_t c = s[0];
    size_t len;
    uint32_t cp, min;
    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf) {
        len = 2, cp = c & 0x1f, min = 0x80;
    } else if (c >= 0xe0 && c <= 0xef) {
        len = 3, cp = c & 0x0f, min = 0x800;
    } else if (c >= 0xf0 && c <= 0xf4) {
        len = 4, cp = c & 0x07, min = 0x10000;
    } else {
        return 0;
    }
    if (len > n)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xc0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
        return 0;
    return len;
}

/* Valid UTF-8 with no control characters (C0, DEL; so no NUL either). */
static bool text_ok(const char *p, size_t n)
{
    const uint8_t *s = (const uint8_t *)p;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x20 || s[i] == 0x7f)
            return false;
        size_t k = utf8_seq(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

/* A safe relative file name: text, 1..1023 bytes, components separated by
 * single '/', none empty, ".", ".." or longer than 255 bytes. */
static bool name_ok(irohds_proto_str name)
{
    if (name.len == 0 || name.len > IROHDS_PROTO_NAME_MAX || !name.p ||
        !text_ok(name.p, name.len))
        return false;
    size_t start = 0;
    for (size_t i = 0; i <= name.len; i++) {
        if (i < name.len && name.p[i] != '/')
            continue;
        size_t clen = i - start;
        const char *c = name.p + start;
        if (clen == 0 || clen > 255 || (clen == 1 && c[0] == '.') ||
            (clen == 2 && c[0] == '.' && c[1] == '.'))
            return false;
        start = i + 1;
    }
    return true;
}

static bool ns_ok(irohds_proto_str ns)
{
    return ns.len <= IROHDS_PROTO_NS_MAX && (ns.len == 0 || (ns.p && text_ok(ns.p, ns.len)));
}

static bool func_ok(irohds_proto_str f)
{
    return f.len >= 1 && f.len <= IROHDS_PROTO_FUNC_MAX && f.p && text_ok(f.p, f.len);
}

/* compute seconds and figures: finite, not negative */
static bool amount_ok(double v)
{
    return isfinite(v) && v >= 0;
}

static bool time_ok(int64_t t)
{
    return t >= 0;
}

static bool files_ok(const irohds_proto_file *files, uint32_t n)
{
    if (n && !files)
        return false;
    for (uint32_t i = 0; i < n; i++) {
        if (!name_ok(files[i].name))
            return false;
        for (uint32_t j = 0; j < i; j++)
            if (files[j].name.len == files[i].name.len &&
                memcmp(files[j].name.p, files[i].name.p, files[i].name.len) == 0)
                return false; /* two files by one name */
    }
    return true;
}

/* Sum of the sizes, false on overflow. */
static bool files_total(const irohds_proto_file *files, uint32_t n, uint64_t *total)
{
    uint64_t t = 0;
    for (uint32_t i = 0; i < n; i++) {
        if (files[i].size > UINT64_MAX - t)
            return false;
        t += files[i].size;
    }
    *total = t;
    return true;
}

static bool result_ok(const irohds_proto_result *r)
{
    return ns_ok(r->ns) && func_ok(r->func) && amount_ok(r->compute_seconds) &&
           amount_ok(r->figure) && time_ok(r->created_us);
}

static bool query_ok(const irohds_proto_query *q)
{
    return ns_ok(q->ns) && time_ok(q->timestamp_us);
}

static bool claim_ok(const irohds_proto_claim *c)
{
    return ns_ok(c->ns) && time_ok(c->started_us) && time_ok(c->expected_done_us) &&
           time_ok(c->timestamp_us) && amount_ok(c->expected_seconds) &&
           amount_ok(c->figure) && c->started_us <= c->timestamp_us &&
           (c->expected_done_us == 0 || c->expected_done_us >= c->started_us);
}

/* ------------------------------------------------------------- encoding */

static void put_str(irohds_pc_writer *w, irohds_proto_str s)
{
    irohds_pc_write_bytes(w, s.p, s.len);
}

static void put_head(irohds_pc_writer *w, uint32_t kind)
{
    irohds_pc_write_u8(w, IROHDS_PROTO_VERSION);
    irohds_pc_write_varint(w, kind);
}

static void put_result(irohds_pc_writer *w, const irohds_proto_result *r)
{
    put_str(w, r->ns);
    irohds_pc_write_raw(w, r->key, IROHDS_PROTO_HASH_LEN);
    irohds_pc_write_raw(w, r->blob, IROHDS_PROTO_HASH_LEN);
    irohds_pc_write_varint(w, r->size);
    irohds_pc_write_varint(w, r->serializer);
    irohds_pc_write_f64(w, r->compute_seconds);
    irohds_pc_write_f64(w, r->figure);
    irohds_pc_write_raw(w, r->producer, IROHDS_PROTO_ID_LEN);
    irohds_pc_write_varint(w, (uint64_t)r->created_us);
    put_str(w, r->func);
    irohds_pc_write_varint(w, r->nfiles);
    irohds_pc_write_varint(w, r->files_size);
    irohds_pc_write_raw(w, r->files_digest, IROHDS_PROTO_HASH_LEN);
}

static void put_files(irohds_pc_writer *w, const irohds_proto_file *files, uint32_t n)
{
    irohds_pc_write_varint(w, n);
    for (uint32_t i = 0; i < n; i++) {
        put_str(w, files[i].name);
        irohds_pc_write_raw(w, files[i].blob, IROHDS_PROTO_HASH_LEN);
        irohds_pc_write_varint(w, files[i].size);
    }
}

/* A HAVE up to (not including) the provider's signature. */
static void put_have_unsigned(irohds_pc_writer *w, const irohds_proto_have *h,
                              const irohds_proto_file *files)
{
    put_head(w, IROHDS_PROTO_HAVE);
    put_result(w, &h->result);
    irohds_pc_write_raw(w, h->producer_sig, IROHDS_PROTO_SIG_LEN);
    irohds_pc_write_bool(w, h->files_inline);
    if (h->files_inline)
        put_files(w, files, h->result.nfiles);
    irohds_pc_write_raw(w, h->provider, IROHDS_PROTO_ID_LEN);
    irohds_pc_write_varint(w, (uint64_t)h->timestamp_us);
}

static void put_query_unsigned(irohds_pc_writer *w, const irohds_proto_query *q)
{
    put_head(w, IROHDS_PROTO_QUERY);
    put_str(w, q->ns);
    irohds_pc_write_raw(w, q->key, IROHDS_PROTO_HASH_LEN);
    irohds_pc_write_raw(w, q->asker, IROHDS_PROTO_ID_LEN);
    irohds_pc_write_varint(w, q->nonce);
    irohds_pc_write_varint(w, (uint64_t)q->timestamp_us);
}

static void put_claim_unsigned(irohds_pc_writer *w, const irohds_proto_claim *c)
{
    put_head(w, IROHDS_PROTO_CLAIM);
    put_str(w, c->ns);
    irohds_pc_write_raw(w, c->key, IROHDS_PROTO_HASH_LEN);
    irohds_pc_write_raw(w, c->claimer, IROHDS_PROTO_ID_LEN);
    irohds_pc_write_varint(w, (uint64_t)c->started_us);
    irohds_pc_write_varint(w, (uint64_t)c->expected_done_us);
    irohds_pc_write_f64(w, c->expected_seconds);
    irohds_pc_write_f64(w, c->figure);
    irohds_pc_write_varint(w, (uint64_t)c->timestamp_us);
}

/* ------------------------------------------------------------- signing */

/* Context string (postcard str) followed by the bytes put_* writes. */
typedef struct signable {
    uint8_t buf[1 + CTX_MAX + IROHDS_PROTO_MAX_MSG];
    irohds_pc_writer w;
    size_t ctx_len; /* bytes of the context prefix */
} signable;

static void signable_init(signable *s, const char *ctx)
{
    irohds_pc_writer_init(&s->w, s->buf, sizeof s->buf);
    irohds_pc_write_bytes(&s->w, ctx, strlen(ctx));
    s->ctx_len = s->w.len;
}

static int signable_sign(const signable *s, const uint8_t sk[IROHDS_PROTO_SK_LEN],
                         uint8_t sig[IROHDS_PROTO_SIG_LEN])
{
    if (s->w.err)
        return -EMSGSIZE;
    return crypto_sign_detached(sig, NULL, s->buf, s->w.len, sk) == 0 ? 0 : -EINVAL;
}

static int signable_verify(const signable *s, const uint8_t pk[IROHDS_PROTO_ID_LEN],
                           const uint8_t sig[IROHDS_PROTO_SIG_LEN])
{
    if (s->w.err)
        return -EBADMSG;
    return crypto_sign_verify_detached(sig, s->buf, s->w.len, pk) == 0 ? 0 : -EBADMSG;
}

/* The message bytes in s (after the context) plus sig, into buf. */
static int signable_emit(const signable *s, const uint8_t sig[IROHDS_PROTO_SIG_LEN], void *buf,
                         size_t cap, size_t *len)
{
    size_t body = s->w.len - s->ctx_len;
    *len = body + IROHDS_PROTO_SIG_LEN;
    if (*len > IROHDS_PROTO_MAX_MSG)
        return -EMSGSIZE;
    if (*len > cap || !buf)
        return -ENOBUFS;
    memcpy(buf, s->buf + s->ctx_len, body);
    memcpy((uint8_t *)buf + body, sig, IROHDS_PROTO_SIG_LEN);
    return 0;
}

static const uint8_t *pk_of(const uint8_t sk[IROHDS_PROTO_SK_LEN])
{
    return sk + 32;
}

int irohds_proto_files_digest(const irohds_proto_file *files, uint32_t n,
                              uint8_t out[IROHDS_PROTO_HASH_LEN])
{
    if (!files_ok(files, n))
        return -EINVAL;
    crypto_generichash_state st;
    uint8_t chunk[32]; /* the context string and a varint, or one varint */
    irohds_pc_writer w;
    crypto_generichash_init(&st, NULL, 0, IROHDS_PROTO_HASH_LEN);
    irohds_pc_writer_init(&w, chunk, sizeof chunk);
    irohds_pc_write_bytes(&w, CTX_FILES, strlen(CTX_FILES));
    irohds_pc_write_varint(&w, n);
    crypto_generichash_update(&st, chunk, w.len);
    for (uint32_t i = 0; i < n; i++) {
        /* Name and hash straight from the caller's memory; only the
         * varints go through the small buffer. */
        irohds_pc_writer_init(&w, chunk, sizeof chunk);
        irohds_pc_write_varint(&w, files[i].name.len);
        crypto_generichash_update(&st, chunk, w.len);
        crypto_generichash_update(&st, (const uint8_t *)files[i].name.p, files[i].name.len);
        crypto_generichash_update(&st, files[i].blob, IROHDS_PROTO_HASH_LEN);
        irohds_pc_writer_init(&w, chunk, sizeof chunk);
        irohds_pc_write_varint(&w, files[i].size);
        crypto_generichash_update(&st, chunk, w.len);
    }
    crypto_generichash_final(&st, out, IROHDS_PROTO_HASH_LEN);
    return 0;
}

int irohds_proto_sign_result(irohds_proto_have *h, const irohds_proto_file *files, uint32_t n,
                             const uint8_t producer_sk[IROHDS_PROTO_SK_LEN])
{
    irohds_proto_result *r = &h->result;
    int rc = irohds_proto_files_digest(files, n, r->files_digest);
    if (rc)
        return rc;
    if (!files_total(files, n, &r->files_size) || !result_ok(r))
        return -EINVAL;
    r->nfiles = n;
    memcpy(r->producer, pk_of(producer_sk), IROHDS_PROTO_ID_LEN);
    signable s;
    signable_init(&s, CTX_RESULT);
    put_result(&s.w, r);
    return signable_sign(&s, producer_sk, h->producer_sig);
}

int irohds_proto_have_check_files(const irohds_proto_have *h, const irohds_proto_file *files,
                                  uint32_t n)
{
    const irohds_proto_result *r = &h->result;
    uint64_t total;
    uint8_t digest[IROHDS_PROTO_HASH_LEN];
    if (n != r->nfiles || !files_total(files, n, &total) || total != r->files_size)
        return -EBADMSG;
    if (irohds_proto_files_digest(files, n, digest) != 0)
        return -EBADMSG;
    return sodium_memcmp(digest, r->files_digest, sizeof digest) == 0 ? 0 : -EBADMSG;
}

/* Would the HAVE with its list inline fit a message? */
static bool files_fit_inline(const irohds_proto_have *h, const irohds_proto_file *files)
{
    if (h->result.nfiles > IROHDS_PROTO_FILES_INLINE_MAX)
        return false;
    irohds_proto_have with = *h;
    with.files_inline = true;
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, NULL, 0); /* counts only */
    put_have_unsigned(&w, &with, files);
    return w.len + IROHDS_PROTO_SIG_LEN <= IROHDS_PROTO_MAX_MSG;
}

int irohds_proto_encode_have(irohds_proto_have *h, const irohds_proto_file *files,
                             const uint8_t provider_sk[IROHDS_PROTO_SK_LEN], void *buf,
                             size_t cap, size_t *len)
{
    *len = 0;
    if (!result_ok(&h->result) || !time_ok(h->timestamp_us) ||
        irohds_proto_have_check_files(h, files, h->result.nfiles) != 0)
        return -EINVAL;
    memcpy(h->provider, pk_of(provider_sk), IROHDS_PROTO_ID_LEN);
    h->files_inline = files_fit_inline(h, files);
    signable s;
    signable_init(&s, CTX_HAVE);
    put_have_unsigned(&s.w, h, files);
    int rc = signable_sign(&s, provider_sk, h->provider_sig);
    return rc ? rc : signable_emit(&s, h->provider_sig, buf, cap, len);
}

int irohds_proto_encode_query(irohds_proto_query *q, const uint8_t sk[IROHDS_PROTO_SK_LEN],
                              void *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (!query_ok(q))
        return -EINVAL;
    memcpy(q->asker, pk_of(sk), IROHDS_PROTO_ID_LEN);
    signable s;
    signable_init(&s, CTX_QUERY);
    put_query_unsigned(&s.w, q);
    int rc = signable_sign(&s, sk, q->sig);
    return rc ? rc : signable_emit(&s, q->sig, buf, cap, len);
}

int irohds_proto_encode_claim(irohds_proto_claim *c, const uint8_t sk[IROHDS_PROTO_SK_LEN],
                              void *buf, size_t cap, size_t *len)
{
    *len = 0;
    if (!claim_ok(c))
        return -EINVAL;
    memcpy(c->claimer, pk_of(sk), IROHDS_PROTO_ID_LEN);
    signable s;
    signable_init(&s, CTX_CLAIM);
    put_claim_unsigned(&s.w, c);
    int rc = signable_sign(&s, sk, c->sig);
    return rc ? rc : signable_emit(&s, c->sig, buf, cap, len);
}

int irohds_proto_encode_files(const irohds_proto_file *files, uint32_t n, void *buf, size_t cap,
                              size_t *len)
{
    *len = 0;
    if (!files_ok(files, n))
        return -EINVAL;
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, buf, cap);
    put_files(&w, files, n);
    *len = w.len;
    return w.err ? -ENOBUFS : 0;
}

/* ------------------------------------------------------------- decoding */

static void get_fixed(irohds_pc_reader *r, uint8_t *out, size_t n)
{
    const uint8_t *p = irohds_pc_read_raw(r, n);
    if (p)
        memcpy(out, p, n);
    else
        memset(out, 0, n);
}

static irohds_proto_str get_str(irohds_pc_reader *r, size_t max)
{
    irohds_proto_str s;
    s.p = (const char *)irohds_pc_read_bytes(r, max, &s.len);
    return s;
}

/* A time: a u64 varint that fits int64_t. */
static int64_t get_time(irohds_pc_reader *r)
{
    uint64_t t = irohds_pc_read_u64(r);
    if (t > INT64_MAX) {
        irohds_pc_fail(r, -EPROTO);
        return 0;
    }
    return (int64_t)t;
}

static void get_result(irohds_pc_reader *r, irohds_proto_result *res)
{
    res->ns = get_str(r, IROHDS_PROTO_NS_MAX);
    get_fixed(r, res->key, IROHDS_PROTO_HASH_LEN);
    get_fixed(r, res->blob, IROHDS_PROTO_HASH_LEN);
    res->size = irohds_pc_read_u64(r);
    res->serializer = irohds_pc_read_u32(r);
    res->compute_seconds = irohds_pc_read_f64(r);
    res->figure = irohds_pc_read_f64(r);
    get_fixed(r, res->producer, IROHDS_PROTO_ID_LEN);
    res->created_us = get_time(r);
    res->func = get_str(r, IROHDS_PROTO_FUNC_MAX);
    res->nfiles = irohds_pc_read_u32(r);
    res->files_size = irohds_pc_read_u64(r);
    get_fixed(r, res->files_digest, IROHDS_PROTO_HASH_LEN);
    if (!r->err && !result_ok(res))
        irohds_pc_fail(r, -EPROTO);
}

/* A file list of at most max entries (more: -ENOBUFS). */
static uint32_t get_files(irohds_pc_reader *r, irohds_proto_file *files, uint32_t max)
{
    size_t n = irohds_pc_read_seq_len(r, UINT32_MAX, FILE_MIN_ENC);
    if (r->err)
        return 0;
    if (n > max) {
        irohds_pc_fail(r, -ENOBUFS);
        return 0;
    }
    for (size_t i = 0; i < n && !r->err; i++) {
        files[i].name = get_str(r, IROHDS_PROTO_NAME_MAX);
        get_fixed(r, files[i].blob, IROHDS_PROTO_HASH_LEN);
        files[i].size = irohds_pc_read_u64(r);
    }
    if (!r->err && !files_ok(files, (uint32_t)n))
        irohds_pc_fail(r, -EPROTO);
    return (uint32_t)n;
}

static void get_have(irohds_pc_reader *r, irohds_proto_msg *m)
{
    irohds_proto_have *h = &m->have;
    get_result(r, &h->result);
    get_fixed(r, h->producer_sig, IROHDS_PROTO_SIG_LEN);
    h->files_inline = irohds_pc_read_option(r);
    if (h->files_inline) {
        uint32_t n = get_files(r, m->files, IROHDS_PROTO_FILES_INLINE_MAX);
        uint64_t total;
        /* Form only: the list is the one the result counts (the digest is
         * verify's business). */
        if (!r->err && (n != h->result.nfiles || !files_total(m->files, n, &total) ||
                        total != h->result.files_size))
            irohds_pc_fail(r, -EPROTO);
    }
    get_fixed(r, h->provider, IROHDS_PROTO_ID_LEN);
    h->timestamp_us = get_time(r);
    get_fixed(r, h->provider_sig, IROHDS_PROTO_SIG_LEN);
}

static void get_query(irohds_pc_reader *r, irohds_proto_query *q)
{
    q->ns = get_str(r, IROHDS_PROTO_NS_MAX);
    get_fixed(r, q->key, IROHDS_PROTO_HASH_LEN);
    get_fixed(r, q->asker, IROHDS_PROTO_ID_LEN);
    q->nonce = irohds_pc_read_u64(r);
    q->timestamp_us = get_time(r);
    get_fixed(r, q->sig, IROHDS_PROTO_SIG_LEN);
    if (!r->err && !query_ok(q))
        irohds_pc_fail(r, -EPROTO);
}

static void get_claim(irohds_pc_reader *r, irohds_proto_claim *c)
{
    c->ns = get_str(r, IROHDS_PROTO_NS_MAX);
    get_fixed(r, c->key, IROHDS_PROTO_HASH_LEN);
    get_fixed(r, c->claimer, IROHDS_PROTO_ID_LEN);
    c->started_us = get_time(r);
    c->expected_done_us = get_time(r);
    c->expected_seconds = irohds_pc_read_f64(r);
    c->figure = irohds_pc_read_f64(r);
    c->timestamp_us = get_time(r);
    get_fixed(r, c->sig, IROHDS_PROTO_SIG_LEN);
    if (!r->err && !claim_ok(c))
        irohds_pc_fail(r, -EPROTO);
}

/* Encode m whole (signatures included) into w. */
static void put_msg(irohds_pc_writer *w, const irohds_proto_msg *m)
{
    switch (m->kind) {
    case IROHDS_PROTO_HAVE:
        put_have_unsigned(w, &m->have, m->files);
        irohds_pc_write_raw(w, m->have.provider_sig, IROHDS_PROTO_SIG_LEN);
        break;
    case IROHDS_PROTO_QUERY:
        put_query_unsigned(w, &m->query);
        irohds_pc_write_raw(w, m->query.sig, IROHDS_PROTO_SIG_LEN);
        break;
    default:
        put_claim_unsigned(w, &m->claim);
        irohds_pc_write_raw(w, m->claim.sig, IROHDS_PROTO_SIG_LEN);
        break;
    }
}

static bool is_canonical(const irohds_proto_msg *m, const void *buf, size_t len)
{
    uint8_t again[IROHDS_PROTO_MAX_MSG];
    irohds_pc_writer w;
    irohds_pc_writer_init(&w, again, sizeof again);
    put_msg(&w, m);
    return !w.err && w.len == len && memcmp(again, buf, len) == 0;
}

int irohds_proto_decode(irohds_proto_msg *m, const void *buf, size_t len)
{
    memset(m, 0, sizeof *m);
    if (len > IROHDS_PROTO_MAX_MSG)
        return -EMSGSIZE;
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, buf, len);
    uint8_t version = irohds_pc_read_u8(&r);
    if (!r.err && version != IROHDS_PROTO_VERSION)
        return -EPROTONOSUPPORT; /* whatever follows is another layout */
    m->kind = irohds_pc_read_variant(&r);
    if (r.err)
        return -EPROTO;
    switch (m->kind) {
    case IROHDS_PROTO_HAVE: get_have(&r, m); break;
    case IROHDS_PROTO_QUERY: get_query(&r, &m->query); break;
    case IROHDS_PROTO_CLAIM: get_claim(&r, &m->claim); break;
    default: return -EPROTONOSUPPORT;
    }
    if (irohds_pc_finish(&r) != 0 || !is_canonical(m, buf, len))
        return -EPROTO;
    return 0;
}

int irohds_proto_decode_files(const void *buf, size_t len, irohds_proto_file *files,
                              uint32_t max, uint32_t *n)
{
    irohds_pc_reader r;
    irohds_pc_reader_init(&r, buf, len);
    *n = get_files(&r, files, max);
    if (r.err == -ENOBUFS)
        return -ENOBUFS;
    if (irohds_pc_finish(&r) != 0) {
        *n = 0;
        return -EPROTO;
    }
    /* Canonical, as messages are: re-encoding gives the same length
     * (names and hashes are copied verbatim, so only varints can differ). */
    size_t again;
    irohds_proto_encode_files(files, *n, NULL, 0, &again);
    if (again != len) {
        *n = 0;
        return -EPROTO;
    }
    return 0;
}

/* ------------------------------------------------------------ verifying */

static bool same_ns(irohds_proto_str a, const char *ns, size_t ns_len)
{
    return a.len == ns_len && (ns_len == 0 || memcmp(a.p, ns, ns_len) == 0);
}

/* A policy bound; a negative one counts as 0. */
static uint64_t bound(int64_t us)
{
    return us > 0 ? (uint64_t)us : 0;
}

static int check_time(int64_t ts, int64_t now_us, const irohds_proto_policy *p)
{
    /* Differences taken as unsigned: exact for any two int64 in order. */
    if (ts < now_us && (uint64_t)now_us - (uint64_t)ts > bound(p->max_age_us))
        return -ESTALE;
    if (ts > now_us && (uint64_t)ts - (uint64_t)now_us > bound(p->max_skew_us))
        return -ESTALE;
    return 0;
}

static int verify_have(const irohds_proto_msg *m)
{
    const irohds_proto_have *h = &m->have;
    if (h->files_inline && irohds_proto_have_check_files(h, m->files, h->result.nfiles) != 0)
        return -EBADMSG;
    signable s;
    signable_init(&s, CTX_RESULT);
    put_result(&s.w, &h->result);
    int rc = signable_verify(&s, h->result.producer, h->producer_sig);
    if (rc)
        return rc;
    signable_init(&s, CTX_HAVE);
    put_have_unsigned(&s.w, h, m->files);
    return signable_verify(&s, h->provider, h->provider_sig);
}

static int verify_query(const irohds_proto_query *q)
{
    signable s;
    signable_init(&s, CTX_QUERY);
    put_query_unsigned(&s.w, q);
    return signable_verify(&s, q->asker, q->sig);
}

static int verify_claim(const irohds_proto_claim *c)
{
    signable s;
    signable_init(&s, CTX_CLAIM);
    put_claim_unsigned(&s.w, c);
    return signable_verify(&s, c->claimer, c->sig);
}

int irohds_proto_verify(const irohds_proto_msg *m, const char *ns, size_t ns_len, int64_t now_us,
                        const irohds_proto_policy *policy)
{
    static const irohds_proto_policy defaults = {IROHDS_PROTO_MAX_AGE_US,
                                                 IROHDS_PROTO_MAX_SKEW_US};
    const irohds_proto_policy *p = policy ? policy : &defaults;
    irohds_proto_str msg_ns;
    int64_t ts;
    switch (m->kind) {
    case IROHDS_PROTO_HAVE: msg_ns = m->have.result.ns, ts = m->have.timestamp_us; break;
    case IROHDS_PROTO_QUERY: msg_ns = m->query.ns, ts = m->query.timestamp_us; break;
    case IROHDS_PROTO_CLAIM: msg_ns = m->claim.ns, ts = m->claim.timestamp_us; break;
    default: return -EPROTONOSUPPORT;
    }
    if (!same_ns(msg_ns, ns, ns_len))
        return -EXDEV;
    int rc = check_time(ts, now_us, p);
    if (rc)
        return rc;
    switch (m->kind) {
    case IROHDS_PROTO_HAVE: return verify_have(m);
    case IROHDS_PROTO_QUERY: return verify_query(&m->query);
    default: return verify_claim(&m->claim);
    }
}

/* ---------------------------------------------------------------- claims */

static int64_t add_sat(int64_t t, int64_t d)
{
    return t > INT64_MAX - d ? INT64_MAX : t + d;
}

int64_t irohds_proto_claim_expires_us(const irohds_proto_claim *c)
{
    int64_t silent = add_sat(c->timestamp_us, IROHDS_PROTO_CLAIM_SILENCE_US);
    if (c->expected_done_us == 0)
        return silent;
    int64_t late = add_sat(c->expected_done_us, IROHDS_PROTO_CLAIM_GRACE_US);
    return late < silent ? late : silent;
}
