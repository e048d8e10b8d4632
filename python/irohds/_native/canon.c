/*
 * canon.c: the canonical encoding of call arguments (docs/keys.md is the
 * normative description; keep the two in step).
 *
 * A cache key must be the same for the same value on every machine, so the
 * encoding never uses hash(), id() or dict iteration order: every value is a
 * one-byte type tag followed by length-prefixed content, dicts and sets are
 * written in the sorted order of their encoded items, and floats are IEEE
 * bits with one NaN.  Tags plus lengths make it injective: two different
 * values of the supported types never encode to the same bytes.
 *
 * Only exact types are encoded natively.  A subclass (an IntEnum, a
 * defaultdict...) or an unknown type goes to the caller's fallback(obj) ->
 * bytes, tagged with the type's module.qualname, so the subclass never
 * collides with its base.
 *
 * The encoder streams: bytes go through a small buffer into a BLAKE3 hasher,
 * and a numpy array's data is fed straight from its buffer (no copy unless
 * it is not C-contiguous or is big-endian).  Only the items of dicts and
 * sets are encoded into memory first, because they have to be sorted.
 *
 * numpy and pathlib are looked up in sys.modules, never imported: an object
 * of theirs can only exist once they are loaded.
 */
#include "native.h"

#include <math.h>
#include <string.h>

#include "hash/blake3.h"

enum {
    TAG_NONE = 0x00,
    TAG_FALSE = 0x01,
    TAG_TRUE = 0x02,
    TAG_INT = 0x03,
    TAG_FLOAT = 0x04,
    TAG_COMPLEX = 0x05,
    TAG_STR = 0x06,
    TAG_BYTES = 0x07,
    TAG_BYTEARRAY = 0x08,
    TAG_TUPLE = 0x09,
    TAG_LIST = 0x0a,
    TAG_DICT = 0x0b,
    TAG_SET = 0x0c,
    TAG_FROZENSET = 0x0d,
    TAG_DATACLASS = 0x0e,
    TAG_PATH = 0x0f,
    TAG_NDARRAY = 0x10,
    TAG_FALLBACK = 0x11,
};

#define CANONICAL_NAN 0x7ff8000000000000ull
#define STREAM_BUF 512

/*
 * Where encoded bytes go: into the hasher through buf (hash mode), or
 * appended to mem (memory mode, for canonical() and for sorting).
 */
typedef struct {
    irohds_blake3_hasher *h;
    uint8_t *mem;
    size_t mlen, mcap;
    PyObject *fallback;
    size_t blen;
    uint8_t buf[STREAM_BUF];
} enc;

static void enc_init(enc *e, irohds_blake3_hasher *h, PyObject *fallback)
{
    e->h = h;
    e->mem = NULL;
    e->mlen = e->mcap = 0;
    e->fallback = fallback;
    e->blen = 0;
}

static void enc_free(enc *e)
{
    PyMem_Free(e->mem);
    e->mem = NULL;
}

static void flush(enc *e)
{
    if (e->blen) {
        irohds_blake3_hasher_update(e->h, e->buf, e->blen);
        e->blen = 0;
    }
}

static int put(enc *e, const void *p, size_t n)
{
    if (e->h) {
        if (e->blen + n <= STREAM_BUF) {
            memcpy(e->buf + e->blen, p, n);
            e->blen += n;
            return 0;
        }
        flush(e);
        if (n >= STREAM_BUF) {
            if (n > IROHDS_NATIVE_NOGIL_BYTES) {
                Py_BEGIN_ALLOW_THREADS
                irohds_blake3_hasher_update(e->h, p, n);
                Py_END_ALLOW_THREADS
            } else {
                irohds_blake3_hasher_update(e->h, p, n);
            }
        } else {
            memcpy(e->buf, p, n);
            e->blen = n;
        }
        return 0;
    }
    if (e->mlen + n > e->mcap) {
        size_t cap = e->mcap ? e->mcap * 2 : 256;
        while (cap < e->mlen + n)
            cap *= 2;
        uint8_t *m = PyMem_Realloc(e->mem, cap);
        if (!m) {
            PyErr_NoMemory();
            return -1;
        }
        e->mem = m;
        e->mcap = cap;
    }
    memcpy(e->mem + e->mlen, p, n);
    e->mlen += n;
    return 0;
}

static int put_byte(enc *e, uint8_t b)
{
    return put(e, &b, 1);
}

/* Unsigned LEB128: 7 bits per byte, low group first, high bit = more. */
static int put_uvarint(enc *e, uint64_t v)
{
    uint8_t b[10];
    size_t n = 0;
    do {
        b[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v)
            b[n] |= 0x80;
        n++;
    } while (v);
    return put(e, b, n);
}

static int put_lp(enc *e, const void *p, size_t n)
{
    if (put_uvarint(e, n) < 0)
        return -1;
    return put(e, p, n);
}

static int put_tag_lp(enc *e, uint8_t tag, const void *p, size_t n)
{
    if (put_byte(e, tag) < 0)
        return -1;
    return put_lp(e, p, n);
}

static int put_f64(enc *e, double d)
{
    uint64_t bits = CANONICAL_NAN;
    if (!isnan(d))
        memcpy(&bits, &d, 8);
    uint8_t b[8];
    for (int i = 0; i < 8; i++)
        b[i] = (uint8_t)(bits >> (8 * i));
    return put(e, b, 8);
}

static int encode(enc *e, PyObject *o);

/* ----------------------------------------------------------- scalars */

/* int: two's complement, little-endian, L = bit_length(|n|) / 8 + 1 bytes. */
static int encode_int(enc *e, PyObject *o)
{
    int overflow;
    long long v = PyLong_AsLongLongAndOverflow(o, &overflow);
    if (v == -1 && PyErr_Occurred())
        return -1;
    if (!overflow) {
        unsigned long long mag = v < 0 ? 0ull - (unsigned long long)v : (unsigned long long)v;
        int bits = mag ? 64 - __builtin_clzll(mag) : 0;
        size_t len = (size_t)bits / 8 + 1;
        uint8_t b[9];
        for (size_t i = 0; i < len; i++)
            b[i] = i < 8 ? (uint8_t)((unsigned long long)v >> (8 * i)) : (v < 0 ? 0xff : 0x00);
        return put_tag_lp(e, TAG_INT, b, len);
    }
    /* Beyond 64 bits: rare, so the public int methods are fast enough. */
    PyObject *nbits = PyObject_CallMethod(o, "bit_length", NULL);
    if (!nbits)
        return -1;
    Py_ssize_t bits = PyLong_AsSsize_t(nbits);
    Py_DECREF(nbits);
    if (bits < 0)
        return -1;
    PyObject *meth = PyObject_GetAttrString(o, "to_bytes");
    if (!meth)
        return -1;
    PyObject *args = Py_BuildValue("(ns)", bits / 8 + 1, "little");
    PyObject *kw = Py_BuildValue("{s:O}", "signed", Py_True);
    PyObject *raw = args && kw ? PyObject_Call(meth, args, kw) : NULL;
    Py_DECREF(meth);
    Py_XDECREF(args);
    Py_XDECREF(kw);
    if (!raw)
        return -1;
    int rc = put_tag_lp(e, TAG_INT, PyBytes_AS_STRING(raw), (size_t)PyBytes_GET_SIZE(raw));
    Py_DECREF(raw);
    return rc;
}

static int encode_str(enc *e, PyObject *o)
{
    Py_ssize_t n;
    const char *s = PyUnicode_AsUTF8AndSize(o, &n);
    if (s)
        return put_tag_lp(e, TAG_STR, s, (size_t)n);
    /* Lone surrogates have no UTF-8: encode them as 3-byte sequences
     * (surrogatepass) so every str still has exactly one encoding. */
    if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
        return -1;
    PyErr_Clear();
    PyObject *b = PyUnicode_AsEncodedString(o, "utf-8", "surrogatepass");
    if (!b)
        return -1;
    int rc = put_tag_lp(e, TAG_STR, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return rc;
}

/* "module.qualname" of a type, as UTF-8 into a new bytes object. */
static PyObject *type_name(PyTypeObject *t)
{
    PyObject *mod = PyObject_GetAttrString((PyObject *)t, "__module__");
    if (!mod)
        return NULL;
    PyObject *qual = PyObject_GetAttrString((PyObject *)t, "__qualname__");
    if (!qual) {
        Py_DECREF(mod);
        return NULL;
    }
    PyObject *full = PyUnicode_FromFormat("%S.%S", mod, qual);
    Py_DECREF(mod);
    Py_DECREF(qual);
    if (!full)
        return NULL;
    PyObject *b = PyUnicode_AsEncodedString(full, "utf-8", "surrogatepass");
    Py_DECREF(full);
    return b;
}

static int put_type_name(enc *e, PyTypeObject *t)
{
    PyObject *name = type_name(t);
    if (!name)
        return -1;
    int rc = put_lp(e, PyBytes_AS_STRING(name), (size_t)PyBytes_GET_SIZE(name));
    Py_DECREF(name);
    return rc;
}

static int encode_fallback(enc *e, PyObject *o)
{
    if (!e->fallback || e->fallback == Py_None) {
        PyErr_Format(PyExc_TypeError, "irohds: no canonical encoding for %.200s and no fallback",
                     Py_TYPE(o)->tp_name);
        return -1;
    }
    PyObject *b = PyObject_CallOneArg(e->fallback, o);
    if (!b)
        return -1;
    if (!PyBytes_Check(b)) {
        PyErr_Format(PyExc_TypeError, "irohds: fallback returned %.200s, not bytes",
                     Py_TYPE(b)->tp_name);
        Py_DECREF(b);
        return -1;
    }
    int rc = -1;
    if (put_byte(e, TAG_FALLBACK) == 0 && put_type_name(e, Py_TYPE(o)) == 0)
        rc = put_lp(e, PyBytes_AS_STRING(b), (size_t)PyBytes_GET_SIZE(b));
    Py_DECREF(b);
    return rc;
}

/* -------------------------------------------------------- containers */

static int encode_seq(enc *e, uint8_t tag, PyObject *o)
{
    /* Hold a reference to each item: a fallback may run Python code that
     * shrinks the list under us. */
    Py_ssize_t n = PySequence_Fast_GET_SIZE(o);
    if (put_byte(e, tag) < 0 || put_uvarint(e, (uint64_t)n) < 0)
        return -1;
    for (Py_ssize_t i = 0; i < n; i++) {
        if (i >= PySequence_Fast_GET_SIZE(o)) {
            PyErr_SetString(PyExc_RuntimeError, "irohds: list changed size while being hashed");
            return -1;
        }
        PyObject *item = PySequence_Fast_GET_ITEM(o, i);
        Py_INCREF(item);
        int rc = encode(e, item);
        Py_DECREF(item);
        if (rc < 0)
            return -1;
    }
    return 0;
}

/* One encoded item of a dict or set, for sorting. */
typedef struct {
    size_t off, len;       /* in the shared memory encoder */
    const uint8_t *p;      /* filled once the encoder stops growing */
    PyObject *value;       /* dict value (borrowed from the snapshot) */
    size_t voff, vlen;     /* value bytes, only when keys tie */
    const uint8_t *vp;
} item;

static int span_cmp(const uint8_t *a, size_t an, const uint8_t *b, size_t bn)
{
    int c = memcmp(a, b, an < bn ? an : bn);
    if (c)
        return c;
    return an < bn ? -1 : an > bn;
}

static int item_cmp(const void *pa, const void *pb)
{
    const item *a = pa, *b = pb;
    int c = span_cmp(a->p, a->len, b->p, b->len);
    if (c || !a->vp)
        return c;
    return span_cmp(a->vp, a->vlen, b->vp, b->vlen);
}

/* Encode objs[0..n) into mem, one item each, and sort by encoded bytes. */
static int encode_sorted(enc *sub, PyObject **objs, item *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        items[i].off = sub->mlen;
        if (encode(sub, objs[i]) < 0)
            return -1;
        items[i].len = sub->mlen - items[i].off;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        items[i].p = sub->mem + items[i].off;
    qsort(items, (size_t)n, sizeof *items, item_cmp);
    return 0;
}

/* Snapshot a dict or set into new references (a fallback may mutate it). */
static PyObject **snapshot(PyObject *o, Py_ssize_t *n, PyObject ***values)
{
    Py_ssize_t cap = PyDict_Check(o) ? PyDict_GET_SIZE(o) : PySet_GET_SIZE(o);
    PyObject **keys = PyMem_Calloc((size_t)cap + 1, sizeof *keys);
    PyObject **vals = values ? PyMem_Calloc((size_t)cap + 1, sizeof *vals) : NULL;
    if (!keys || (values && !vals)) {
        PyMem_Free(keys);
        PyMem_Free(vals);
        PyErr_NoMemory();
        return NULL;
    }
    Py_ssize_t i = 0;
    if (values) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (i < cap && PyDict_Next(o, &pos, &k, &v)) {
            Py_INCREF(k);
            Py_INCREF(v);
            keys[i] = k;
            vals[i] = v;
            i++;
        }
        *values = vals;
    } else {
        /* Set iteration runs no Python code for the built-in set types. */
        PyObject *it = PyObject_GetIter(o), *k;
        if (!it) {
            PyMem_Free(keys);
            return NULL;
        }
        while (i < cap && (k = PyIter_Next(it)))
            keys[i++] = k;
        Py_DECREF(it);
        if (PyErr_Occurred()) {
            while (i > 0)
                Py_DECREF(keys[--i]);
            PyMem_Free(keys);
            return NULL;
        }
    }
    *n = i;
    return keys;
}

static void drop_snapshot(PyObject **objs, Py_ssize_t n)
{
    if (!objs)
        return;
    for (Py_ssize_t i = 0; i < n; i++)
        Py_XDECREF(objs[i]);
    PyMem_Free(objs);
}

static int encode_set(enc *e, uint8_t tag, PyObject *o)
{
    Py_ssize_t n;
    PyObject **objs = snapshot(o, &n, NULL);
    if (!objs)
        return -1;
    item *items = PyMem_Calloc((size_t)n + 1, sizeof *items);
    enc sub;
    enc_init(&sub, NULL, e->fallback);
    int rc = -1;
    if (!items) {
        PyErr_NoMemory();
    } else if (encode_sorted(&sub, objs, items, n) == 0 && put_byte(e, tag) == 0 &&
               put_uvarint(e, (uint64_t)n) == 0) {
        /* Equal encodings of distinct elements (possible only through a
         * fallback) are identical bytes, so their order cannot matter. */
        rc = 0;
        for (Py_ssize_t i = 0; i < n && rc == 0; i++)
            rc = put(e, items[i].p, items[i].len);
    }
    enc_free(&sub);
    PyMem_Free(items);
    drop_snapshot(objs, n);
    return rc;
}

static int has_key_ties(const item *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 1; i < n; i++)
        if (span_cmp(items[i - 1].p, items[i - 1].len, items[i].p, items[i].len) == 0)
            return 1;
    return 0;
}

/*
 * Distinct keys can encode the same only through a fallback (two objects
 * that pickle alike).  Then the order would depend on dict order, so the
 * values are encoded too and break the tie.
 */
static int break_ties(enc *vsub, item *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        items[i].voff = vsub->mlen;
        if (encode(vsub, items[i].value) < 0)
            return -1;
        items[i].vlen = vsub->mlen - items[i].voff;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        items[i].vp = vsub->mem + items[i].voff;
    qsort(items, (size_t)n, sizeof *items, item_cmp);
    return 0;
}

static int emit_dict_items(enc *e, const item *items, Py_ssize_t n)
{
    for (Py_ssize_t i = 0; i < n; i++) {
        if (put(e, items[i].p, items[i].len) < 0)
            return -1;
        int rc = items[i].vp ? put(e, items[i].vp, items[i].vlen) : encode(e, items[i].value);
        if (rc < 0)
            return -1;
    }
    return 0;
}

static int encode_dict(enc *e, PyObject *o)
{
    Py_ssize_t n;
    PyObject **vals = NULL;
    PyObject **keys = snapshot(o, &n, &vals);
    if (!keys)
        return -1;
    item *items = PyMem_Calloc((size_t)n + 1, sizeof *items);
    enc sub, vsub;
    enc_init(&sub, NULL, e->fallback);
    enc_init(&vsub, NULL, e->fallback);
    int rc = -1;
    if (!items) {
        PyErr_NoMemory();
        goto done;
    }
    /* items[i].value must follow its key through the sort. */
    for (Py_ssize_t i = 0; i < n; i++)
        items[i].value = vals[i];
    for (Py_ssize_t i = 0; i < n; i++) {
        items[i].off = sub.mlen;
        if (encode(&sub, keys[i]) < 0)
            goto done;
        items[i].len = sub.mlen - items[i].off;
    }
    for (Py_ssize_t i = 0; i < n; i++)
        items[i].p = sub.mem + items[i].off;
    qsort(items, (size_t)n, sizeof *items, item_cmp);
    if (has_key_ties(items, n) && break_ties(&vsub, items, n) < 0)
        goto done;
    if (put_byte(e, TAG_DICT) < 0 || put_uvarint(e, (uint64_t)n) < 0)
        goto done;
    rc = emit_dict_items(e, items, n);
done:
    enc_free(&sub);
    enc_free(&vsub);
    PyMem_Free(items);
    drop_snapshot(keys, n);
    drop_snapshot(vals, n);
    return rc;
}

/* -------------------------------------------------- dataclass, paths */

static PyObject *dataclass_fields_fn; /* dataclasses.fields, once seen */

static int is_dataclass_type(PyTypeObject *t)
{
    PyObject *f = PyObject_GetAttrString((PyObject *)t, "__dataclass_fields__");
    if (!f) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError))
            return -1;
        PyErr_Clear();
        return 0;
    }
    int yes = PyDict_Check(f);
    Py_DECREF(f);
    return yes;
}

static int encode_dataclass(enc *e, PyObject *o)
{
    if (!dataclass_fields_fn) {
        PyObject *mod = PyImport_ImportModule("dataclasses");
        if (!mod)
            return -1;
        dataclass_fields_fn = PyObject_GetAttrString(mod, "fields");
        Py_DECREF(mod);
        if (!dataclass_fields_fn)
            return -1;
    }
    /* fields() leaves out ClassVar and InitVar pseudo-fields, in order. */
    PyObject *fields = PyObject_CallOneArg(dataclass_fields_fn, o);
    if (!fields)
        return -1;
    PyObject *seq = PySequence_Fast(fields, "dataclasses.fields() must return a sequence");
    Py_DECREF(fields);
    if (!seq)
        return -1;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    int rc = -1;
    if (put_byte(e, TAG_DATACLASS) < 0 || put_type_name(e, Py_TYPE(o)) < 0 ||
        put_uvarint(e, (uint64_t)n) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *name = PyObject_GetAttrString(PySequence_Fast_GET_ITEM(seq, i), "name");
        if (!name)
            goto done;
        PyObject *value = PyUnicode_Check(name) ? PyObject_GetAttr(o, name) : NULL;
        int r = value ? encode(e, name) : -1;
        if (r == 0)
            r = encode(e, value);
        Py_DECREF(name);
        Py_XDECREF(value);
        if (r < 0) {
            if (!PyErr_Occurred())
                PyErr_SetString(PyExc_TypeError, "irohds: dataclass field name is not a str");
            goto done;
        }
    }
    rc = 0;
done:
    Py_DECREF(seq);
    return rc;
}

/* --------------------------------------------------------------- numpy */

static PyObject *np_ndarray, *np_memmap, *np_generic, *np_ascontig, *np_asarray;

/* Cache numpy's types the first time it is seen loaded; 1 when available. */
static int numpy_loaded(void)
{
    if (np_ndarray)
        return 1;
    PyObject *name = PyUnicode_FromString("numpy");
    if (!name)
        return -1;
    PyObject *np = PyImport_GetModule(name);
    Py_DECREF(name);
    if (!np)
        return PyErr_Occurred() ? -1 : 0;
    np_ndarray = PyObject_GetAttrString(np, "ndarray");
    np_memmap = PyObject_GetAttrString(np, "memmap");
    np_generic = PyObject_GetAttrString(np, "generic");
    np_ascontig = PyObject_GetAttrString(np, "ascontiguousarray");
    np_asarray = PyObject_GetAttrString(np, "asarray");
    Py_DECREF(np);
    if (!np_ndarray || !np_memmap || !np_generic || !np_ascontig || !np_asarray) {
        Py_CLEAR(np_ndarray);
        return -1;
    }
    return 1;
}

/* 1 if the dtype has a canonical form here: no objects, no named fields. */
static int dtype_is_plain(PyObject *dtype)
{
    PyObject *hasobj = PyObject_GetAttrString(dtype, "hasobject");
    if (!hasobj)
        return -1;
    int obj = PyObject_IsTrue(hasobj);
    Py_DECREF(hasobj);
    if (obj)
        return obj < 0 ? -1 : 0;
    PyObject *fields = PyObject_GetAttrString(dtype, "fields");
    if (!fields)
        return -1;
    int plain = fields == Py_None;
    Py_DECREF(fields);
    return plain;
}

/* Array in little-endian byte order (a new reference). */
static PyObject *little_endian(PyObject *arr, PyObject *dtype, PyObject **dstr)
{
    if (PyUnicode_READ_CHAR(*dstr, 0) != '>') {
        Py_INCREF(arr);
        return arr;
    }
    PyObject *le = PyObject_CallMethod(dtype, "newbyteorder", "s", "<");
    if (!le)
        return NULL;
    PyObject *conv = PyObject_CallMethod(arr, "astype", "O", le);
    Py_DECREF(le);
    if (!conv)
        return NULL;
    PyObject *cdt = PyObject_GetAttrString(conv, "dtype");
    PyObject *s = cdt ? PyObject_GetAttrString(cdt, "str") : NULL;
    Py_XDECREF(cdt);
    if (!s) {
        Py_DECREF(conv);
        return NULL;
    }
    Py_SETREF(*dstr, s);
    return conv;
}

/* The array's bytes in C order: its own buffer when it has one, else a copy. */
static int array_bytes(PyObject *arr, Py_buffer *b, PyObject **keep)
{
    *keep = NULL;
    if (PyObject_GetBuffer(arr, b, PyBUF_C_CONTIGUOUS) == 0)
        return 0;
    PyErr_Clear();
    PyObject *c = PyObject_CallOneArg(np_ascontig, arr);
    if (!c)
        return -1;
    if (PyObject_GetBuffer(c, b, PyBUF_C_CONTIGUOUS) == 0) {
        *keep = c;
        return 0;
    }
    /* Some dtypes (datetime64) export no buffer at all: tobytes() is C order. */
    PyErr_Clear();
    PyObject *raw = PyObject_CallMethod(c, "tobytes", NULL);
    Py_DECREF(c);
    if (!raw)
        return -1;
    if (PyObject_GetBuffer(raw, b, PyBUF_SIMPLE) < 0) {
        Py_DECREF(raw);
        return -1;
    }
    *keep = raw;
    return 0;
}

static int encode_array_body(enc *e, PyObject *arr, PyObject *dstr)
{
    PyObject *shape = PyObject_GetAttrString(arr, "shape");
    if (!shape)
        return -1;
    int rc = -1;
    Py_buffer b;
    PyObject *keep = NULL;
    Py_ssize_t ds;
    const char *d = PyUnicode_AsUTF8AndSize(dstr, &ds);
    if (!d || !PyTuple_Check(shape) || put_byte(e, TAG_NDARRAY) < 0 || put_lp(e, d, (size_t)ds) < 0 ||
        put_uvarint(e, (uint64_t)PyTuple_GET_SIZE(shape)) < 0)
        goto done;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(shape); i++) {
        Py_ssize_t dim = PyLong_AsSsize_t(PyTuple_GET_ITEM(shape, i));
        if (dim < 0 || put_uvarint(e, (uint64_t)dim) < 0)
            goto done;
    }
    if (array_bytes(arr, &b, &keep) < 0)
        goto done;
    rc = put_lp(e, b.buf, (size_t)b.len);
    PyBuffer_Release(&b);
    Py_XDECREF(keep);
done:
    Py_DECREF(shape);
    return rc;
}

static int encode_array(enc *e, PyObject *arr)
{
    PyObject *dtype = PyObject_GetAttrString(arr, "dtype");
    if (!dtype)
        return -1;
    int plain = dtype_is_plain(dtype);
    if (plain <= 0) {
        Py_DECREF(dtype);
        return plain < 0 ? -1 : encode_fallback(e, arr);
    }
    int rc = -1;
    PyObject *dstr = PyObject_GetAttrString(dtype, "str");
    PyObject *le = dstr && PyUnicode_Check(dstr) && PyUnicode_GET_LENGTH(dstr) > 0
                       ? little_endian(arr, dtype, &dstr)
                       : NULL;
    if (le)
        rc = encode_array_body(e, le, dstr);
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "irohds: numpy dtype.str is not a str");
    Py_XDECREF(le);
    Py_XDECREF(dstr);
    Py_DECREF(dtype);
    return rc;
}

/* 1 when o was a numpy array or scalar and has been encoded, 0 if not numpy. */
static int encode_numpy_if(enc *e, PyObject *o)
{
    int loaded = numpy_loaded();
    if (loaded <= 0)
        return loaded;
    PyTypeObject *t = Py_TYPE(o);
    if ((PyObject *)t == np_ndarray || (PyObject *)t == np_memmap)
        return encode_array(e, o) < 0 ? -1 : 1;
    /* numpy's own scalar types are static types named "numpy.*"; a scalar
     * is encoded as the 0-d array it converts to. */
    if (strncmp(t->tp_name, "numpy.", 6) == 0 && PyObject_TypeCheck(o, (PyTypeObject *)np_generic)) {
        PyObject *arr = PyObject_CallOneArg(np_asarray, o);
        if (!arr)
            return -1;
        int rc = encode_array(e, arr);
        Py_DECREF(arr);
        return rc < 0 ? -1 : 1;
    }
    return 0;
}

/* ------------------------------------------------------------- pathlib */

static PyObject *pl_pure, *pl_windows;

static int pathlib_loaded(void)
{
    if (pl_pure)
        return 1;
    PyObject *name = PyUnicode_FromString("pathlib");
    if (!name)
        return -1;
    PyObject *pl = PyImport_GetModule(name);
    Py_DECREF(name);
    if (!pl)
        return PyErr_Occurred() ? -1 : 0;
    pl_windows = PyObject_GetAttrString(pl, "PureWindowsPath");
    pl_pure = pl_windows ? PyObject_GetAttrString(pl, "PurePath") : NULL;
    Py_DECREF(pl);
    return pl_pure ? 1 : -1;
}

/* 1 when o was a PurePath and has been encoded, 0 if not a path. */
static int encode_path_obj(enc *e, PyObject *o)
{
    int loaded = pathlib_loaded();
    if (loaded <= 0)
        return loaded;
    int is = PyObject_IsInstance(o, pl_pure);
    if (is <= 0)
        return is;
    int win = PyObject_IsInstance(o, pl_windows);
    if (win < 0)
        return -1;
    PyObject *posix = PyObject_CallMethod(o, "as_posix", NULL);
    if (!posix)
        return -1;
    int rc = -1;
    Py_ssize_t n;
    const char *s = PyUnicode_Check(posix) ? PyUnicode_AsUTF8AndSize(posix, &n) : NULL;
    if (s && put_byte(e, TAG_PATH) == 0 && put_byte(e, win ? 1 : 0) == 0)
        rc = put_lp(e, s, (size_t)n);
    else if (!PyErr_Occurred())
        PyErr_SetString(PyExc_TypeError, "irohds: as_posix() did not return a str");
    Py_DECREF(posix);
    return rc < 0 ? -1 : 1;
}

/* ------------------------------------------------------------ dispatch */

static int encode_other(enc *e, PyObject *o)
{
    int r = encode_numpy_if(e, o);
    if (r == 0)
        r = encode_path_obj(e, o);
    if (r == 0) {
        r = is_dataclass_type(Py_TYPE(o));
        if (r == 1) {
            if (Py_EnterRecursiveCall(" while hashing arguments (irohds)"))
                return -1;
            r = encode_dataclass(e, o) < 0 ? -1 : 1;
            Py_LeaveRecursiveCall();
        }
    }
    if (r == 0)
        return encode_fallback(e, o);
    return r < 0 ? -1 : 0;
}

static int encode_container(enc *e, PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    if (Py_EnterRecursiveCall(" while hashing arguments (irohds)"))
        return -1;
    int rc;
    if (t == &PyTuple_Type)
        rc = encode_seq(e, TAG_TUPLE, o);
    else if (t == &PyList_Type)
        rc = encode_seq(e, TAG_LIST, o);
    else if (t == &PyDict_Type)
        rc = encode_dict(e, o);
    else if (t == &PySet_Type)
        rc = encode_set(e, TAG_SET, o);
    else
        rc = encode_set(e, TAG_FROZENSET, o);
    Py_LeaveRecursiveCall();
    return rc;
}

static int encode(enc *e, PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    if (o == Py_None)
        return put_byte(e, TAG_NONE);
    if (t == &PyBool_Type)
        return put_byte(e, o == Py_True ? TAG_TRUE : TAG_FALSE);
    if (t == &PyLong_Type)
        return encode_int(e, o);
    if (t == &PyUnicode_Type)
        return encode_str(e, o);
    if (t == &PyFloat_Type)
        return put_byte(e, TAG_FLOAT) < 0 ? -1 : put_f64(e, PyFloat_AS_DOUBLE(o));
    if (t == &PyBytes_Type)
        return put_tag_lp(e, TAG_BYTES, PyBytes_AS_STRING(o), (size_t)PyBytes_GET_SIZE(o));
    if (t == &PyByteArray_Type)
        return put_tag_lp(e, TAG_BYTEARRAY, PyByteArray_AS_STRING(o),
                          (size_t)PyByteArray_GET_SIZE(o));
    if (t == &PyComplex_Type) {
        Py_complex c = PyComplex_AsCComplex(o);
        if (put_byte(e, TAG_COMPLEX) < 0 || put_f64(e, c.real) < 0)
            return -1;
        return put_f64(e, c.imag);
    }
    if (t == &PyTuple_Type || t == &PyList_Type || t == &PyDict_Type || t == &PySet_Type ||
        t == &PyFrozenSet_Type)
        return encode_container(e, o);
    return encode_other(e, o);
}

/* -------------------------------------------------------------- entry */

PyObject *irohds_canon_canonical(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "canonical(obj, fallback) takes 2 arguments");
        return NULL;
    }
    enc e;
    enc_init(&e, NULL, args[1]);
    PyObject *out = NULL;
    if (encode(&e, args[0]) == 0)
        out = PyBytes_FromStringAndSize((const char *)e.mem, (Py_ssize_t)e.mlen);
    enc_free(&e);
    return out;
}

PyObject *irohds_canon_call_key(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "call_key(identity, bound, fallback) takes 3 arguments");
        return NULL;
    }
    Py_buffer id;
    if (PyObject_GetBuffer(args[0], &id, PyBUF_SIMPLE) < 0)
        return NULL;
    /* The key is defined over the tuple of pairs; accept any sequence. */
    PyObject *bound = PyTuple_CheckExact(args[1]) ? (Py_INCREF(args[1]), args[1])
                                                   : PySequence_Tuple(args[1]);
    if (!bound) {
        PyBuffer_Release(&id);
        return NULL;
    }
    irohds_blake3_hasher h;
    irohds_blake3_hasher_init(&h);
    irohds_blake3_hasher_update(&h, id.buf, (size_t)id.len);
    PyBuffer_Release(&id);
    enc e;
    enc_init(&e, &h, args[2]);
    PyObject *out = NULL;
    if (encode(&e, bound) == 0) {
        flush(&e);
        out = PyBytes_FromStringAndSize(NULL, IROHDS_BLAKE3_OUT_LEN);
        if (out)
            irohds_blake3_hasher_finalize(&h, (uint8_t *)PyBytes_AS_STRING(out),
                                          IROHDS_BLAKE3_OUT_LEN);
    }
    enc_free(&e);
    Py_DECREF(bound);
    return out;
}
