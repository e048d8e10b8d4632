/*
 * module.c: the irohds._native module object, plus the small functions that
 * have no better home: BLAKE3 over Python buffers, the implementation list,
 * paths() and config() (util.h decides them, so the daemon, the CLI and
 * Python never disagree), and the errno -> exception mapping every other
 * file uses.
 *
 * Single-phase init with static types: see native.h for why.
 */
#include "native.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <unistd.h>
#include <string.h>

#include "hash/blake3.h"
#include "store/store.h"
#include "util/util.h"

/* Longest BLAKE3 output we hand out in one call: the XOF can go on forever,
 * but no caller needs more and this bounds a bytes allocation. */
#define MAX_OUT_LEN (1 << 24)

PyObject *irohds_module_raise_errno(int neg_errno, const char *what)
{
    int e = neg_errno < 0 ? -neg_errno : neg_errno;
    PyObject *exc = PyExc_OSError;
    if (e == ETIMEDOUT)
        exc = PyExc_TimeoutError;
    errno = e;
    if (what)
        return PyErr_SetFromErrnoWithFilename(exc, what);
    return PyErr_SetFromErrno(exc);
}

int irohds_module_get_hash32(PyObject *obj, uint8_t out[32], const char *what)
{
    Py_buffer b;
    if (PyObject_GetBuffer(obj, &b, PyBUF_SIMPLE) < 0)
        return -1;
    if (b.len != 32) {
        PyBuffer_Release(&b);
        PyErr_Format(PyExc_ValueError, "%s must be 32 bytes, got %zd", what, b.len);
        return -1;
    }
    memcpy(out, b.buf, 32);
    PyBuffer_Release(&b);
    return 0;
}

/* -------------------------------------------------------------- BLAKE3 */

static int impl_from_name(PyObject *name, irohds_blake3_impl *out)
{
    if (!PyUnicode_Check(name)) {
        PyErr_SetString(PyExc_TypeError, "impl must be a str");
        return -1;
    }
    for (int i = IROHDS_BLAKE3_PORTABLE; i <= IROHDS_BLAKE3_AVX512; i++) {
        if (PyUnicode_CompareWithASCIIString(name, irohds_blake3_impl_name(i)) == 0) {
            *out = (irohds_blake3_impl)i;
            return 0;
        }
    }
    PyErr_Format(PyExc_ValueError, "unknown BLAKE3 implementation %R", name);
    return -1;
}

static PyObject *new_out(Py_ssize_t length)
{
    if (length < 1 || length > MAX_OUT_LEN) {
        PyErr_Format(PyExc_ValueError, "length must be in 1..%d", MAX_OUT_LEN);
        return NULL;
    }
    return PyBytes_FromStringAndSize(NULL, length);
}

/* Feed a contiguous buffer, dropping the GIL when the input is large. */
static void update_buffer(irohds_blake3_hasher *h, const Py_buffer *b, int allow_threads)
{
    if (allow_threads && b->len > IROHDS_NATIVE_NOGIL_BYTES) {
        Py_BEGIN_ALLOW_THREADS
        irohds_blake3_hasher_update(h, b->buf, (size_t)b->len);
        Py_END_ALLOW_THREADS
    } else {
        irohds_blake3_hasher_update(h, b->buf, (size_t)b->len);
    }
}

/* Shared tail of the three hash functions: update with data, finalize. */
static PyObject *finish(irohds_blake3_hasher *h, PyObject *data, Py_ssize_t length,
                        int allow_threads)
{
    Py_buffer b;
    if (PyObject_GetBuffer(data, &b, PyBUF_C_CONTIGUOUS) < 0)
        return NULL;
    PyObject *out = new_out(length);
    if (out) {
        update_buffer(h, &b, allow_threads);
        irohds_blake3_hasher_finalize(h, (uint8_t *)PyBytes_AS_STRING(out), (size_t)length);
    }
    PyBuffer_Release(&b);
    return out;
}

static PyObject *py_blake3(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"data", "length", "impl", NULL};
    PyObject *data, *impl = Py_None;
    Py_ssize_t length = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|$nO:blake3", kwlist, &data, &length, &impl))
        return NULL;
    irohds_blake3_hasher h;
    irohds_blake3_hasher_init(&h);
    if (impl == Py_None)
        return finish(&h, data, length, 1);

    /* A forced implementation is process-global state: keep the GIL for the
     * whole hash so no other thread hashes with it meanwhile. */
    irohds_blake3_impl want, old = irohds_blake3_get_impl();
    if (impl_from_name(impl, &want) < 0)
        return NULL;
    if (irohds_blake3_set_impl(want) < 0) {
        PyErr_Format(PyExc_ValueError, "this CPU cannot run BLAKE3 implementation %R", impl);
        return NULL;
    }
    PyObject *out = finish(&h, data, length, 0);
    irohds_blake3_set_impl(old);
    return out;
}

static PyObject *py_blake3_keyed(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"key", "data", "length", NULL};
    PyObject *key, *data;
    Py_ssize_t length = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|$n:blake3_keyed", kwlist, &key, &data, &length))
        return NULL;
    uint8_t k[IROHDS_BLAKE3_KEY_LEN];
    if (irohds_module_get_hash32(key, k, "key") < 0)
        return NULL;
    irohds_blake3_hasher h;
    irohds_blake3_hasher_init_keyed(&h, k);
    return finish(&h, data, length, 1);
}

static PyObject *py_blake3_derive_key(PyObject *self, PyObject *args, PyObject *kw)
{
    (void)self;
    static char *kwlist[] = {"context", "material", "length", NULL};
    PyObject *context, *material;
    Py_ssize_t length = 32;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "UO|$n:blake3_derive_key", kwlist, &context,
                                     &material, &length))
        return NULL;
    Py_ssize_t clen;
    const char *c = PyUnicode_AsUTF8AndSize(context, &clen);
    if (!c)
        return NULL;
    irohds_blake3_hasher h;
    irohds_blake3_hasher_init_derive_key_raw(&h, c, (size_t)clen);
    return finish(&h, material, length, 1);
}

static PyObject *py_blake3_impls(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    PyObject *list = PyList_New(0);
    if (!list)
        return NULL;
    /* Probe by trying each one: set_impl is the only place that knows what
     * the CPU offers.  The enum is ordered worst to best. */
    irohds_blake3_impl old = irohds_blake3_get_impl();
    for (int i = IROHDS_BLAKE3_PORTABLE; i <= IROHDS_BLAKE3_AVX512; i++) {
        if (irohds_blake3_set_impl((irohds_blake3_impl)i) < 0)
            continue;
        PyObject *s = PyUnicode_FromString(irohds_blake3_impl_name((irohds_blake3_impl)i));
        if (!s || PyList_Append(list, s) < 0) {
            Py_XDECREF(s);
            Py_DECREF(list);
            irohds_blake3_set_impl(old);
            return NULL;
        }
        Py_DECREF(s);
    }
    irohds_blake3_set_impl(old);
    return list;
}

/* ------------------------------------------------------- paths, config */

static int set_str(PyObject *d, const char *k, const char *v)
{
    PyObject *s = PyUnicode_DecodeFSDefault(v);
    if (!s)
        return -1;
    int rc = PyDict_SetItemString(d, k, s);
    Py_DECREF(s);
    return rc;
}

static int set_obj(PyObject *d, const char *k, PyObject *v)
{
    if (!v)
        return -1;
    int rc = PyDict_SetItemString(d, k, v);
    Py_DECREF(v);
    return rc;
}

static PyObject *py_paths(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    irohds_paths p;
    int rc = irohds_paths_init(&p);
    if (rc < 0)
        return irohds_module_raise_errno(rc, NULL);
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (set_str(d, "data_dir", p.data_dir) < 0 || set_str(d, "config_path", p.config_path) < 0 ||
        set_str(d, "key_path", p.key_path) < 0 || set_str(d, "store_dir", p.store_dir) < 0 ||
        set_str(d, "staging_dir", p.staging_dir) < 0 || set_str(d, "files_dir", p.files_dir) < 0 ||
        set_str(d, "run_dir", p.run_dir) < 0 || set_str(d, "log_path", p.log_path) < 0 ||
        set_str(d, "lock_path", p.lock_path) < 0 ||
        set_str(d, "socket_path", p.socket_path) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static const char *log_level_name(int level)
{
    switch (level) {
    case IROHDS_LOG_ERROR: return "error";
    case IROHDS_LOG_WARN: return "warn";
    case IROHDS_LOG_DEBUG: return "debug";
    default: return "info";
    }
}

static PyObject *str_list(unsigned n, const char *first, size_t stride)
{
    PyObject *l = PyList_New(n);
    if (!l)
        return NULL;
    for (unsigned i = 0; i < n; i++) {
        PyObject *s = PyUnicode_FromString(first + (size_t)i * stride);
        if (!s) {
            Py_DECREF(l);
            return NULL;
        }
        PyList_SET_ITEM(l, i, s);
    }
    return l;
}

/* {ns: [node id hex, ...]} from the [namespace.<ns>] trusted lists. */
static PyObject *ns_trust_dict(const irohds_config *c)
{
    PyObject *d = PyDict_New();
    for (unsigned i = 0; d && i < c->n_ns_trusted; i++) {
        PyObject *ns = PyUnicode_DecodeUTF8(c->ns_trusted[i].ns, (Py_ssize_t)strlen(c->ns_trusted[i].ns),
                                            "replace");
        PyObject *id = PyUnicode_FromString(c->ns_trusted[i].id);
        PyObject *list = ns ? PyDict_GetItemWithError(d, ns) : NULL; /* borrowed */
        int rc = -1;
        if (ns && id && !PyErr_Occurred()) {
            if (list)
                rc = PyList_Append(list, id);
            else if ((list = PyList_New(0))) {
                rc = PyList_Append(list, id) < 0 ? -1 : PyDict_SetItem(d, ns, list);
                Py_DECREF(list);
            }
        }
        Py_XDECREF(ns);
        Py_XDECREF(id);
        if (rc < 0)
            Py_CLEAR(d);
    }
    return d;
}

static PyObject *config_dict(const irohds_config *c)
{
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    if (set_obj(d, "size_limit", PyLong_FromUnsignedLongLong(c->size_limit)) < 0 ||
        set_obj(d, "cheap_warning_seconds", PyFloat_FromDouble(c->cheap_warning_seconds)) < 0 ||
        set_obj(d, "sync", PyBool_FromLong(c->sync)) < 0 ||
        set_obj(d, "log_level", PyUnicode_FromString(log_level_name(c->log_level))) < 0 ||
        set_obj(d, "listen", PyUnicode_FromString(c->listen)) < 0 ||
        set_obj(d, "bootstrap_peers", str_list(c->n_bootstrap, c->bootstrap_peers[0],
                                               sizeof c->bootstrap_peers[0])) < 0 ||
        set_obj(d, "trusted", str_list(c->n_trusted, c->trusted[0], sizeof c->trusted[0])) < 0 ||
        set_obj(d, "namespace_trusted", ns_trust_dict(c)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *py_config(PyObject *self, PyObject *unused)
{
    (void)self;
    (void)unused;
    irohds_paths p;
    int rc = irohds_paths_init(&p);
    if (rc < 0)
        return irohds_module_raise_errno(rc, NULL);
    /* ~60 KiB with the per-namespace trust lists: not for a thread's stack */
    irohds_config *c = PyMem_Malloc(sizeof *c);
    if (!c)
        return PyErr_NoMemory();
    char err[256] = "";
    irohds_config_defaults(c);
    rc = irohds_config_load(c, p.config_path, err, sizeof err);
    PyObject *out;
    if (rc == -EINVAL)
        out = PyErr_Format(PyExc_ValueError, "%s: %s", p.config_path, err);
    else if (rc < 0)
        out = irohds_module_raise_errno(rc, p.config_path);
    else
        out = config_dict(c);
    PyMem_Free(c);
    return out;
}

/* ------------------------------------------------- identity cache entry */

/* read_identity_entry(dir, fingerprint, magic) -> identity bytes or None.
 * The persistent identity cache's reader (python/irohds/_identity.py): the
 * file <dir>/<hex fingerprint> holds magic + BLAKE3(identity) + identity.
 * None when it is absent, unreadable, over 1 MiB, short, or fails its hash. */
#define IDENTITY_ENTRY_MAX (1 << 20)

static PyObject *py_read_identity_entry(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3 || !PyBytes_Check(args[1]) || PyBytes_GET_SIZE(args[1]) > 64 ||
        !PyBytes_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError,
                        "read_identity_entry(dir: str, fingerprint: bytes, magic: bytes)");
        return NULL;
    }
    PyObject *dir = NULL;
    if (!PyUnicode_FSConverter(args[0], &dir))
        return NULL;
    const uint8_t *fp = (const uint8_t *)PyBytes_AS_STRING(args[1]);
    Py_ssize_t fplen = PyBytes_GET_SIZE(args[1]);
    const char *magic = PyBytes_AS_STRING(args[2]);
    size_t mlen = (size_t)PyBytes_GET_SIZE(args[2]);
    char path[PATH_MAX];
    size_t dlen = (size_t)PyBytes_GET_SIZE(dir);
    if (dlen + 1 + 2 * (size_t)fplen + 1 > sizeof path) {
        Py_DECREF(dir);
        Py_RETURN_NONE;
    }
    memcpy(path, PyBytes_AS_STRING(dir), dlen);
    Py_DECREF(dir);
    path[dlen++] = '/';
    static const char hexd[] = "0123456789abcdef";
    for (Py_ssize_t i = 0; i < fplen; i++) {
        path[dlen++] = hexd[fp[i] >> 4];
        path[dlen++] = hexd[fp[i] & 15];
    }
    path[dlen] = '\0';
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        Py_RETURN_NONE;
    char small[4096];
    char *buf = small;
    size_t cap = sizeof small, n = 0;
    for (;;) {
        if (n == cap) {
            if (cap >= IDENTITY_ENTRY_MAX + 1)
                break;
            size_t ncap = cap * 4 > IDENTITY_ENTRY_MAX + 1 ? IDENTITY_ENTRY_MAX + 1 : cap * 4;
            char *nb = buf == small ? malloc(ncap) : realloc(buf, ncap);
            if (!nb) {
                n = 0;
                break;
            }
            if (buf == small)
                memcpy(nb, small, n);
            buf = nb;
            cap = ncap;
        }
        ssize_t r = read(fd, buf + n, cap - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            if (r < 0)
                n = 0;
            break;
        }
        n += (size_t)r;
    }
    close(fd);
    PyObject *out = NULL;
    if (n <= IDENTITY_ENTRY_MAX && n >= mlen + 32 && memcmp(buf, magic, mlen) == 0) {
        uint8_t h[32];
        irohds_blake3_hasher hh;
        irohds_blake3_hasher_init(&hh);
        irohds_blake3_hasher_update(&hh, buf + mlen + 32, n - mlen - 32);
        irohds_blake3_hasher_finalize(&hh, h, 32);
        if (memcmp(h, buf + mlen, 32) == 0)
            out = PyBytes_FromStringAndSize(buf + mlen + 32, (Py_ssize_t)(n - mlen - 32));
        else
            { Py_INCREF(Py_None); out = Py_None; }
    } else {
        { Py_INCREF(Py_None); out = Py_None; }
    }
    if (buf != small)
        free(buf);
    return out;
}

/* --------------------------------------------------------------- module */

static PyMethodDef methods[] = {
    {"blake3", (PyCFunction)(void (*)(void))py_blake3, METH_VARARGS | METH_KEYWORDS,
     "blake3(data, *, length=32, impl=None) -> bytes"},
    {"blake3_keyed", (PyCFunction)(void (*)(void))py_blake3_keyed, METH_VARARGS | METH_KEYWORDS,
     "blake3_keyed(key, data, *, length=32) -> bytes"},
    {"blake3_derive_key", (PyCFunction)(void (*)(void))py_blake3_derive_key,
     METH_VARARGS | METH_KEYWORDS, "blake3_derive_key(context, material, *, length=32) -> bytes"},
    {"blake3_impls", py_blake3_impls, METH_NOARGS, "BLAKE3 implementations this CPU runs, best last"},
    {"canonical", (PyCFunction)(void (*)(void))irohds_canon_canonical, METH_FASTCALL,
     "canonical(obj, fallback) -> bytes (docs/keys.md)"},
    {"call_key", (PyCFunction)(void (*)(void))irohds_canon_call_key, METH_FASTCALL,
     "call_key(identity, bound, fallback) -> 32-byte key"},
    {"write_result", (PyCFunction)(void (*)(void))irohds_result_write, METH_FASTCALL,
     "write_result(fd, pickled, buffers) -> bytes written (docs/results.md)"},
    {"read_result", irohds_result_read, METH_O,
     "read_result(data) -> (pickle memoryview, [buffer memoryviews])"},
    {"map_result", (PyCFunction)(void (*)(void))irohds_result_map, METH_FASTCALL,
     "map_result(fd, size, blob=None) -> (pickle, [buffers]) on a shared read-only mapping"},
    {"read_identity_entry", (PyCFunction)(void (*)(void))py_read_identity_entry, METH_FASTCALL,
     "read_identity_entry(dir, fingerprint, magic) -> identity bytes or None"},
    {"paths", py_paths, METH_NOARGS, "the irohds paths (util.h) as a dict"},
    {"config", py_config, METH_NOARGS, "config.toml as a dict"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT, "irohds._native",
    "irohds._native: hashing, canonical keys, tier 0, store reader, result container, IPC client",
    -1, methods, NULL, NULL, NULL, NULL,
};

static int add_type(PyObject *m, PyTypeObject *t, const char *name)
{
    if (PyType_Ready(t) < 0)
        return -1;
    Py_INCREF(t);
    if (PyModule_AddObject(m, name, (PyObject *)t) < 0) {
        Py_DECREF(t);
        return -1;
    }
    return 0;
}

PyMODINIT_FUNC PyInit__native(void)
{
    if (irohds_memo_init_module() < 0)
        return NULL;
    PyObject *m = PyModule_Create(&module_def);
    if (!m)
        return NULL;
    if (add_type(m, &irohds_bind_type, "Binder") < 0 || add_type(m, &irohds_memo_type, "Memo") < 0 ||
        add_type(m, &irohds_result_mapping_type, "ResultMapping") < 0 ||
        add_type(m, &irohds_store_py_type, "Store") < 0 ||
        add_type(m, &irohds_client_py_type, "Client") < 0 ||
        PyModule_AddIntConstant(m, "SER_PICKLE5", IROHDS_SER_PICKLE5) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
