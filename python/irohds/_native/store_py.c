/*
 * store_py.c: Store, the Python face of the read-only store reader
 * (src/store/store.h opened with IROHDS_STORE_READONLY).
 *
 * This is tier 1 of the call path: a hit here is an LMDB read plus an mmap
 * of the blob, with no round trip to the daemon (DESIGN.md: a round trip
 * alone costs ~60 us).  lookup() is on that path, so its record dict is
 * built with pre-made key strings.
 *
 * open_result() reads a small blob (<= 64 KiB) into memory and re-hashes it.
 * A larger one is mapped, not read: it takes a shared flock() on the blob first: the
 * daemon's gc skips blobs that are locked, so a mapped result is never
 * evicted from under a process using it.  A blob that is being evicted (the
 * lock is refused) or was unlinked before we locked it counts as gone.
 *
 * The GIL stays held: every call is short, and store.h handles are used by
 * one thread at a time.
 */
#include "native.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "store/store.h"

typedef struct {
    PyObject_HEAD
    irohds_store *s;
    PyObject *dir;
} Store;

enum { F_BLOB, F_SIZE, F_FILES_SIZE, F_SERIALIZER, F_SECONDS, F_CREATED, F_LAST_USED, F_FUNC,
       F_NS, F_NFILES, F_PRODUCER, F_REMOTE, F_COUNT };
static const char *const field_names[F_COUNT] = {
    "blob", "size", "files_size", "serializer", "compute_seconds",
    "created_us", "last_used_us", "func", "ns", "nfiles", "producer", "remote",
};
static PyObject *field_keys[F_COUNT];

static int make_field_keys(void)
{
    for (int i = 0; i < F_COUNT; i++)
        if (!field_keys[i] && !(field_keys[i] = PyUnicode_InternFromString(field_names[i])))
            return -1;
    return 0;
}

static PyObject *store_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"store_dir", NULL};
    PyObject *dir;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&:Store", kwlist, PyUnicode_FSConverter, &dir))
        return NULL;
    if (make_field_keys() < 0) {
        Py_DECREF(dir);
        return NULL;
    }
    irohds_store *s = NULL;
    int rc = irohds_store_open(&s, PyBytes_AS_STRING(dir), IROHDS_STORE_READONLY);
    if (rc < 0) {
        irohds_module_raise_errno(rc, PyBytes_AS_STRING(dir));
        Py_DECREF(dir);
        return NULL;
    }
    Store *st = (Store *)type->tp_alloc(type, 0);
    if (!st) {
        irohds_store_close(s);
        Py_DECREF(dir);
        return NULL;
    }
    st->s = s;
    st->dir = dir;
    return (PyObject *)st;
}

static void store_dealloc(Store *st)
{
    if (st->s)
        irohds_store_close(st->s);
    Py_XDECREF(st->dir);
    Py_TYPE(st)->tp_free((PyObject *)st);
}

static int get_open(Store *st)
{
    if (st->s)
        return 0;
    PyErr_SetString(PyExc_ValueError, "Store is closed");
    return -1;
}

static int set_field(PyObject *d, int f, PyObject *v)
{
    if (!v)
        return -1;
    int rc = PyDict_SetItem(d, field_keys[f], v);
    Py_DECREF(v);
    return rc;
}

static PyObject *record_dict(const irohds_record *r)
{
    /* Sized for every field at once: growing a dict past 10 entries costs a
     * resize, which is a measurable part of a tier-1 hit. */
    PyObject *d = _PyDict_NewPresized(F_COUNT);
    if (!d)
        return NULL;
    if (set_field(d, F_BLOB, PyBytes_FromStringAndSize((const char *)r->blob, IROHDS_HASH_LEN)) < 0 ||
        set_field(d, F_SIZE, PyLong_FromUnsignedLongLong(r->size)) < 0 ||
        set_field(d, F_FILES_SIZE, PyLong_FromUnsignedLongLong(r->files_size)) < 0 ||
        set_field(d, F_SERIALIZER, PyLong_FromUnsignedLong(r->serializer)) < 0 ||
        set_field(d, F_SECONDS, PyFloat_FromDouble(r->compute_seconds)) < 0 ||
        set_field(d, F_CREATED, PyLong_FromLongLong(r->created_us)) < 0 ||
        set_field(d, F_LAST_USED, PyLong_FromLongLong(r->last_used_us)) < 0 ||
        set_field(d, F_FUNC, PyUnicode_DecodeUTF8(r->func, (Py_ssize_t)strnlen(r->func, sizeof r->func), "replace")) < 0 ||
        set_field(d, F_NS, PyUnicode_DecodeUTF8(r->ns, (Py_ssize_t)strnlen(r->ns, sizeof r->ns), "replace")) < 0 ||
        set_field(d, F_NFILES, PyLong_FromUnsignedLong(r->nfiles)) < 0 ||
        set_field(d, F_PRODUCER, PyBytes_FromStringAndSize((const char *)r->producer, IROHDS_HASH_LEN)) < 0 ||
        /* Fail safe: any origin but "computed here" counts as remote, which the
         * Python side loads with plain pickle only from a trusted producer. */
        set_field(d, F_REMOTE, PyBool_FromLong(r->origin != IROHDS_ORIGIN_LOCAL)) < 0) {
        Py_DECREF(d);
        return NULL;
    }
    return d;
}

static PyObject *store_lookup(Store *st, PyObject *keyobj)
{
    uint8_t key[IROHDS_KEY_LEN];
    if (get_open(st) < 0 || irohds_module_get_hash32(keyobj, key, "key") < 0)
        return NULL;
    irohds_record rec;
    int rc = irohds_store_lookup(st->s, key, &rec);
    if (rc == -ENOENT)
        Py_RETURN_NONE;
    if (rc < 0)
        return irohds_module_raise_errno(rc, NULL);
    return record_dict(&rec);
}

static PyObject *file_tuple(const irohds_file *f)
{
    return Py_BuildValue("(Ny#K)",
                         PyUnicode_DecodeFSDefaultAndSize(f->name, (Py_ssize_t)strnlen(f->name, sizeof f->name)),
                         (const char *)f->blob, (Py_ssize_t)IROHDS_HASH_LEN,
                         (unsigned long long)f->size);
}

static PyObject *store_files(Store *st, PyObject *keyobj)
{
    uint8_t key[IROHDS_KEY_LEN];
    if (get_open(st) < 0 || irohds_module_get_hash32(keyobj, key, "key") < 0)
        return NULL;
    irohds_record rec;
    int rc = irohds_store_lookup(st->s, key, &rec);
    if (rc == -ENOENT)
        return PyList_New(0);
    if (rc < 0)
        return irohds_module_raise_errno(rc, NULL);
    /* The record says how many files there are: size the array once. */
    uint32_t max = rec.nfiles ? rec.nfiles : 1, n = 0;
    irohds_file *files = PyMem_Calloc(max, sizeof *files);
    if (!files)
        return PyErr_NoMemory();
    PyObject *list = NULL;
    rc = irohds_store_files(st->s, key, files, max, &n);
    if (rc < 0 && rc != -ENOENT) {
        irohds_module_raise_errno(rc, NULL);
    } else if ((list = PyList_New(0))) {
        for (uint32_t i = 0; rc == 0 && i < n && i < max; i++) {
            PyObject *t = file_tuple(&files[i]);
            if (!t || PyList_Append(list, t) < 0) {
                Py_XDECREF(t);
                Py_CLEAR(list);
                break;
            }
            Py_DECREF(t);
        }
    }
    PyMem_Free(files);
    return list;
}

static PyObject *store_blob_path(Store *st, PyObject *blobobj)
{
    uint8_t blob[IROHDS_HASH_LEN];
    if (get_open(st) < 0 || irohds_module_get_hash32(blobobj, blob, "blob") < 0)
        return NULL;
    char path[PATH_MAX];
    irohds_store_blob_path(st->s, blob, false, path, sizeof path);
    return PyUnicode_DecodeFSDefault(path);
}

/* Lock the blob for the mapping's life; -ENOENT if it is going away. */
static int lock_blob(int fd)
{
    if (flock(fd, LOCK_SH | LOCK_NB) < 0)
        return errno == EWOULDBLOCK ? -ENOENT : -errno;
    struct stat sb;
    if (fstat(fd, &sb) < 0)
        return -errno;
    return sb.st_nlink == 0 ? -ENOENT : 0;
}

static PyObject *store_open_result(Store *st, PyObject *const *args, Py_ssize_t nargs)
{
    uint8_t blob[IROHDS_HASH_LEN];
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "open_result(blob, size) takes 2 arguments");
        return NULL;
    }
    if (get_open(st) < 0 || irohds_module_get_hash32(args[0], blob, "blob") < 0)
        return NULL;
    unsigned long long want = PyLong_AsUnsignedLongLong(args[1]);
    if (want == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    int fd = -1;
    uint64_t size = 0;
    int rc = irohds_store_open_blob(st->s, blob, &fd, &size);
    if (rc == 0 && size != want) {
        close(fd);
        return PyErr_Format(PyExc_ValueError, "corrupt blob: %llu bytes on disk, %llu recorded",
                            (unsigned long long)size, want);
    }
    if (rc == 0 && size <= IROHDS_NATIVE_NOGIL_BYTES) {
        PyObject *small = irohds_result_read_small(fd, size, blob);
        close(fd);
        return small;
    }
    if (rc == 0 && (rc = lock_blob(fd)) < 0)
        close(fd);
    if (rc < 0) {
        char path[PATH_MAX];
        irohds_store_blob_path(st->s, blob, false, path, sizeof path);
        return irohds_module_raise_errno(rc, path);
    }
    PyObject *out = irohds_result_open_fd(fd, size, blob);
    if (!out)
        close(fd);
    return out;
}

static PyObject *store_touch(Store *st, PyObject *keyobj)
{
    uint8_t key[IROHDS_KEY_LEN];
    if (get_open(st) < 0 || irohds_module_get_hash32(keyobj, key, "key") < 0)
        return NULL;
    int rc = irohds_store_touch(st->s, key);
    if (rc < 0)
        return irohds_module_raise_errno(rc, NULL);
    Py_RETURN_NONE;
}

static PyObject *store_close(Store *st, PyObject *unused)
{
    (void)unused;
    if (st->s) {
        irohds_store_close(st->s);
        st->s = NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *store_repr(Store *st)
{
    return PyUnicode_FromFormat("<irohds Store %R%s>", st->dir, st->s ? "" : " closed");
}

static PyMethodDef store_methods[] = {
    {"lookup", (PyCFunction)store_lookup, METH_O, "lookup(key) -> record dict or None"},
    {"files", (PyCFunction)store_files, METH_O, "files(key) -> [(name, blob, size)]"},
    {"blob_path", (PyCFunction)store_blob_path, METH_O, "blob_path(blob) -> str"},
    {"open_result", (PyCFunction)(void (*)(void))store_open_result, METH_FASTCALL,
     "open_result(blob, size) -> (pickle view, [buffer views]) on a shared read-only mapping"},
    {"touch", (PyCFunction)store_touch, METH_O, "touch(key): record a use"},
    {"close", (PyCFunction)store_close, METH_NOARGS, "close the store"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject irohds_store_py_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "irohds._native.Store",
    .tp_basicsize = sizeof(Store),
    .tp_dealloc = (destructor)store_dealloc,
    .tp_repr = (reprfunc)store_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Store(store_dir): read-only view of the local store (see _native.pyi)",
    .tp_methods = store_methods,
    .tp_new = store_new,
};
