/*
 * dht/bencode.c: bencode, strictly.
 *
 * The decoder fills a flat array of nodes in pre-order (the caller's array,
 * so a datagram costs no allocation) that point into the input.  It takes
 * only the canonical form: that is what BEP 5 peers send, what BEP 44
 * signatures are computed over (a value that re-encodes differently would
 * not verify elsewhere), and it makes "decode, re-encode, compare" an exact
 * check, which the fuzz target relies on.  Every bound is explicit: the
 * node count (cap), the nesting (max_depth, recursion depth with it), and
 * lengths against what is left of the input.
 *
 * The writer has a sticky error and knows which dicts it is inside, so it
 * can refuse a key out of order or a key without its value: a KRPC encoder
 * that forgets the sort order fails its tests rather than peers.
 */
#include <errno.h>
#include <string.h>

#include "dht/dht.h"

/* ============================================================ decoder */

typedef struct dec {
    const uint8_t *p;
    size_t len, pos;
    irohds_benc_node *nodes;
    size_t n, cap;
    unsigned max_depth;
} dec;

static int dec_value(dec *st, unsigned depth);

static bool is_digit(uint8_t c)
{
    return c >= '0' && c <= '9';
}

/* Digits up to the terminator: no sign, no leading zero (but "0"), at
 * least one digit, value <= limit. */
static int dec_digits(dec *st, uint8_t term, uint64_t limit, uint64_t *out)
{
    size_t start = st->pos;
    uint64_t v = 0;
    while (st->pos < st->len && is_digit(st->p[st->pos])) {
        unsigned dgt = (unsigned)(st->p[st->pos] - '0');
        if (v > (limit - dgt) / 10)
            return -EOVERFLOW;
        v = v * 10 + dgt;
        st->pos++;
    }
    size_t ndig = st->pos - start;
    if (ndig == 0 || st->pos >= st->len || st->p[st->pos] != term)
        return -EBADMSG;
    if (ndig > 1 && st->p[start] == '0')
        return -EBADMSG;
    st->pos++;
    *out = v;
    return 0;
}

static int new_node(dec *st, irohds_benc_type type, size_t off)
{
    if (st->n >= st->cap)
        return -E2BIG;
    irohds_benc_node *nd = &st->nodes[st->n];
    memset(nd, 0, sizeof *nd);
    nd->type = type;
    nd->off = (uint32_t)off;
    return (int)st->n++;
}

static void close_node(dec *st, int idx)
{
    irohds_benc_node *nd = &st->nodes[idx];
    nd->len = (uint32_t)(st->pos - nd->off);
    nd->next = (uint32_t)st->n;
}

static int dec_int(dec *st)
{
    size_t off = st->pos++; /* 'i' */
    int idx = new_node(st, IROHDS_BENC_INT, off);
    if (idx < 0)
        return idx;
    bool neg = st->pos < st->len && st->p[st->pos] == '-';
    st->pos += neg;
    uint64_t v;
    int rc = dec_digits(st, 'e', neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, &v);
    if (rc)
        return rc;
    if (neg && v == 0)
        return -EBADMSG; /* "-0" */
    st->nodes[idx].i = neg ? (int64_t)(0 - v) : (int64_t)v;
    close_node(st, idx);
    return 0;
}

static int dec_str(dec *st)
{
    size_t off = st->pos;
    int idx = new_node(st, IROHDS_BENC_STR, off);
    if (idx < 0)
        return idx;
    uint64_t n;
    int rc = dec_digits(st, ':', UINT32_MAX, &n);
    if (rc)
        return rc;
    if (n > st->len - st->pos)
        return -EBADMSG;
    st->nodes[idx].s = st->p + st->pos;
    st->nodes[idx].slen = (size_t)n;
    st->pos += (size_t)n;
    close_node(st, idx);
    return 0;
}

/* Raw-byte order of two strings, as BEP 3 sorts dict keys. */
static int key_cmp(const uint8_t *a, size_t alen, const uint8_t *b, size_t blen)
{
    int c = memcmp(a, b, alen < blen ? alen : blen);
    if (c)
        return c;
    return (alen > blen) - (alen < blen);
}

static int dec_dict_entry(dec *st, unsigned depth, int prev_key)
{
    if (!is_digit(st->p[st->pos]))
        return -EBADMSG; /* keys are strings */
    int key = (int)st->n;
    int rc = dec_str(st);
    if (rc)
        return rc;
    if (prev_key >= 0) {
        const irohds_benc_node *a = &st->nodes[prev_key], *b = &st->nodes[key];
        if (key_cmp(a->s, a->slen, b->s, b->slen) >= 0)
            return -EBADMSG; /* unsorted or duplicate */
    }
    if (st->pos >= st->len)
        return -EBADMSG;
    return dec_value(st, depth);
}

static int dec_container(dec *st, irohds_benc_type type, unsigned depth)
{
    if (depth >= st->max_depth)
        return -ELOOP;
    size_t off = st->pos++; /* 'l' or 'd' */
    int idx = new_node(st, type, off);
    if (idx < 0)
        return idx;
    int prev_key = -1;
    uint32_t count = 0;
    for (;;) {
        if (st->pos >= st->len)
            return -EBADMSG;
        if (st->p[st->pos] == 'e')
            break;
        int first = (int)st->n;
        int rc = type == IROHDS_BENC_DICT ? dec_dict_entry(st, depth + 1, prev_key)
                                          : dec_value(st, depth + 1);
        if (rc)
            return rc;
        prev_key = first;
        count++;
    }
    st->pos++;
    st->nodes[idx].count = count;
    close_node(st, idx);
    return 0;
}

static int dec_value(dec *st, unsigned depth)
{
    uint8_t c = st->p[st->pos];
    if (c == 'i')
        return dec_int(st);
    if (c == 'l')
        return dec_container(st, IROHDS_BENC_LIST, depth);
    if (c == 'd')
        return dec_container(st, IROHDS_BENC_DICT, depth);
    if (is_digit(c))
        return dec_str(st);
    return -EBADMSG;
}

int irohds_benc_decode(irohds_benc *d, const void *buf, size_t len, irohds_benc_node *nodes,
                       size_t cap, unsigned max_depth)
{
    memset(d, 0, sizeof *d);
    if (max_depth > IROHDS_BENC_MAX_DEPTH)
        max_depth = IROHDS_BENC_MAX_DEPTH;
    if (len == 0 || len > UINT32_MAX)
        return -EBADMSG;
    dec st = {.p = buf, .len = len, .nodes = nodes, .cap = cap, .max_depth = max_depth};
    int rc = dec_value(&st, 0);
    if (rc == 0 && st.pos != len)
        rc = -EBADMSG; /* trailing bytes */
    if (rc)
        return rc;
    d->buf = buf;
    d->len = len;
    d->nodes = nodes;
    d->n = st.n;
    d->cap = cap;
    return 0;
}

int irohds_benc_dict_get(const irohds_benc *d, int dict, const char *key)
{
    if (dict < 0 || (size_t)dict >= d->n || d->nodes[dict].type != IROHDS_BENC_DICT)
        return -1;
    size_t klen = strlen(key);
    uint32_t i = (uint32_t)dict + 1;
    for (uint32_t pair = 0; pair < d->nodes[dict].count; pair++) {
        const irohds_benc_node *k = &d->nodes[i];
        int c = key_cmp(k->s, k->slen, (const uint8_t *)key, klen);
        if (c == 0)
            return (int)i + 1;
        if (c > 0)
            return -1; /* keys are sorted: it is not there */
        i = d->nodes[i + 1].next;
    }
    return -1;
}

bool irohds_benc_dict_str(const irohds_benc *d, int dict, const char *key, const uint8_t **s,
                          size_t *len)
{
    int i = irohds_benc_dict_get(d, dict, key);
    if (i < 0 || d->nodes[i].type != IROHDS_BENC_STR)
        return false;
    *s = d->nodes[i].s;
    *len = d->nodes[i].slen;
    return true;
}

bool irohds_benc_dict_int(const irohds_benc *d, int dict, const char *key, int64_t *v)
{
    int i = irohds_benc_dict_get(d, dict, key);
    if (i < 0 || d->nodes[i].type != IROHDS_BENC_INT)
        return false;
    *v = d->nodes[i].i;
    return true;
}

/* ============================================================= writer */

void irohds_benc_writer_init(irohds_benc_writer *w, void *buf, size_t cap)
{
    memset(w, 0, sizeof *w);
    w->buf = buf;
    w->cap = cap;
}

static void put(irohds_benc_writer *w, const void *p, size_t n)
{
    if (n && w->len + n <= w->cap)
        memcpy(w->buf + w->len, p, n);
    else if (n)
        w->err = w->err ? w->err : -ENOBUFS;
    w->len += n;
}

static void fail(irohds_benc_writer *w)
{
    w->err = -EINVAL;
}

/* A value is about to be written: inside a dict it must follow a key. */
static void begin_value(irohds_benc_writer *w)
{
    if (w->depth == 0)
        return;
    struct irohds_benc_level *l = &w->lv[w->depth - 1];
    if (l->dict && !l->want_value)
        fail(w);
    l->want_value = false;
}

static void put_decimal(irohds_benc_writer *w, uint64_t v)
{
    char tmp[24];
    size_t n = sizeof tmp;
    do {
        tmp[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(w, tmp + n, sizeof tmp - n);
}

void irohds_benc_int(irohds_benc_writer *w, int64_t v)
{
    begin_value(w);
    put(w, "i", 1);
    if (v < 0) {
        put(w, "-", 1);
        put_decimal(w, (uint64_t)0 - (uint64_t)v);
    } else {
        put_decimal(w, (uint64_t)v);
    }
    put(w, "e", 1);
}

static void put_string(irohds_benc_writer *w, const void *s, size_t len)
{
    put_decimal(w, len);
    put(w, ":", 1);
    put(w, s, len);
}

void irohds_benc_str(irohds_benc_writer *w, const void *s, size_t len)
{
    begin_value(w);
    put_string(w, s, len);
}

void irohds_benc_cstr(irohds_benc_writer *w, const char *s)
{
    irohds_benc_str(w, s, strlen(s));
}

static void open_container(irohds_benc_writer *w, bool dict)
{
    begin_value(w);
    if (w->depth >= IROHDS_BENC_MAX_DEPTH) {
        fail(w);
        return;
    }
    put(w, dict ? "d" : "l", 1);
    struct irohds_benc_level *l = &w->lv[w->depth++];
    memset(l, 0, sizeof *l);
    l->dict = dict;
}

void irohds_benc_list(irohds_benc_writer *w)
{
    open_container(w, false);
}

void irohds_benc_dict(irohds_benc_writer *w)
{
    open_container(w, true);
}

void irohds_benc_end(irohds_benc_writer *w)
{
    if (w->depth == 0 || w->lv[w->depth - 1].want_value) {
        fail(w);
        return;
    }
    w->depth--;
    put(w, "e", 1);
}

/* A key of klen bytes: after the previous key of this dict, compared in
 * the buffer (skipped once the buffer overflowed: err is set anyway). */
static void put_key(irohds_benc_writer *w, const uint8_t *key, size_t klen)
{
    if (w->depth == 0 || !w->lv[w->depth - 1].dict || w->lv[w->depth - 1].want_value) {
        fail(w);
        return;
    }
    struct irohds_benc_level *l = &w->lv[w->depth - 1];
    if (l->has_key && l->key_off + l->key_len <= w->cap && w->len <= w->cap) {
        if (key_cmp(w->buf + l->key_off, l->key_len, key, klen) >= 0)
            fail(w);
    }
    put_decimal(w, klen);
    put(w, ":", 1);
    l->key_off = w->len;
    l->key_len = klen;
    l->has_key = true;
    l->want_value = true;
    put(w, key, klen);
}

void irohds_benc_key(irohds_benc_writer *w, const char *key)
{
    put_key(w, (const uint8_t *)key, strlen(key));
}

void irohds_benc_raw(irohds_benc_writer *w, const void *enc, size_t len)
{
    begin_value(w);
    put(w, enc, len);
}

void irohds_benc_node_encode(irohds_benc_writer *w, const irohds_benc *d, int idx)
{
    const irohds_benc_node *nd = &d->nodes[idx];
    switch (nd->type) {
    case IROHDS_BENC_INT:
        irohds_benc_int(w, nd->i);
        return;
    case IROHDS_BENC_STR:
        irohds_benc_str(w, nd->s, nd->slen);
        return;
    case IROHDS_BENC_LIST:
    case IROHDS_BENC_DICT:
        break;
    }
    bool dict = nd->type == IROHDS_BENC_DICT;
    open_container(w, dict);
    uint32_t i = (uint32_t)idx + 1;
    for (uint32_t c = 0; c < nd->count; c++) {
        if (dict) {
            put_key(w, d->nodes[i].s, d->nodes[i].slen);
            i++;
        }
        irohds_benc_node_encode(w, d, (int)i);
        i = d->nodes[i].next;
    }
    irohds_benc_end(w);
}
