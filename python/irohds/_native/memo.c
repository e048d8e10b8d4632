/*
 * memo.c: Memo, the object @irohds.memo returns: tier 0 of the call path.
 *
 * A call whose arguments are all of a few exact immutable types (str, int,
 * float, bool, None, bytes, or tuples of those) is answered from an
 * in-process dict keyed by the arguments themselves, the way
 * functools.lru_cache's C wrapper does, and through vectorcall (PEP 590) so
 * a hit allocates at most the key tuple.  Anything else, and every tier-0
 * miss, goes to slow_path(args, kwargs_or_None): the Python side's portable
 * key, the store, the daemon.
 *
 * Python's dict equality is looser than the cache key: 1 == 1.0 == True and
 * 0.0 == -0.0 hash alike.  So an entry keeps the key object it was stored
 * under, and a hit also requires every argument (and tuple item, one level
 * down) to have the same type, and floats the same bits.  A mismatch is a
 * miss; the slow path, whose key is type-tagged, sorts it out.
 *
 * kwargs are part of the key in the order given (f(a=1, b=2) and
 * f(b=2, a=1) are two tier-0 entries with one portable key behind them).
 * When the dict reaches maxsize it is cleared: tier 0 is a hot-set cache in
 * front of the store, not the store, so an LRU's bookkeeping buys little.
 *
 * Results are remembered only when slow_path returned (exceptions
 * propagate, nothing is stored).  All dict work holds the GIL.
 */
#include "native.h"

#include <string.h>

#include "structmember.h"

typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    PyObject *func;
    PyObject *slow_path;
    PyObject *cache;        /* key -> (stored key, result) */
    PyObject *dict;         /* __dict__: __name__, __doc__, .bypass ... */
    PyObject *weakreflist;
    Py_ssize_t maxsize;     /* < 0: unbounded, 0: tier 0 off */
    Py_ssize_t hits, misses;
} Memo;

/* Separates positional args from kwargs in a key, so f(("x",), 1) and
 * f(x=1) cannot meet.  Unique object, never passed by anyone. */
static PyObject *kwmark;

int irohds_memo_init_module(void)
{
    if (!kwmark)
        kwmark = PyBaseObject_Type.tp_alloc(&PyBaseObject_Type, 0);
    return kwmark ? 0 : -1;
}

/* ----------------------------------------------------------- the key */

static inline int scalar_ok(PyTypeObject *t)
{
    return t == &PyUnicode_Type || t == &PyLong_Type || t == &PyFloat_Type || t == &PyBool_Type ||
           t == Py_TYPE(Py_None) || t == &PyBytes_Type;
}

static int arg_ok(PyObject *o)
{
    PyTypeObject *t = Py_TYPE(o);
    if (scalar_ok(t))
        return 1;
    if (t != &PyTuple_Type)
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(o); i++)
        if (!scalar_ok(Py_TYPE(PyTuple_GET_ITEM(o, i))))
            return 0;
    return 1;
}

/* The dict key for a call: the lone argument itself when that is not a
 * tuple (no allocation, like lru_cache), else a flat tuple. */
static PyObject *make_key(PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nkw == 0 && nargs == 1 && !PyTuple_CheckExact(args[0])) {
        Py_INCREF(args[0]);
        return args[0];
    }
    PyObject *key = PyTuple_New(nargs + (nkw ? 1 + 2 * nkw : 0));
    if (!key)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(key, i, args[i]);
    }
    if (nkw) {
        Py_INCREF(kwmark);
        PyTuple_SET_ITEM(key, nargs, kwmark);
        for (Py_ssize_t i = 0; i < nkw; i++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, i), *value = args[nargs + i];
            Py_INCREF(name);
            Py_INCREF(value);
            PyTuple_SET_ITEM(key, nargs + 1 + 2 * i, name);
            PyTuple_SET_ITEM(key, nargs + 2 + 2 * i, value);
        }
    }
    return key;
}

/* Equal values already; same type and, for floats, same bits (-0.0). */
static inline int same_scalar(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (Py_TYPE(a) != Py_TYPE(b))
        return 0;
    if (Py_TYPE(a) == &PyFloat_Type) {
        double x = PyFloat_AS_DOUBLE(a), y = PyFloat_AS_DOUBLE(b);
        return memcmp(&x, &y, sizeof x) == 0;
    }
    return 1;
}

static int same_item(PyObject *a, PyObject *b)
{
    if (a == b)
        return 1;
    if (Py_TYPE(a) != &PyTuple_Type)
        return same_scalar(a, b);
    if (Py_TYPE(b) != &PyTuple_Type)
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(a); i++)
        if (!same_scalar(PyTuple_GET_ITEM(a, i), PyTuple_GET_ITEM(b, i)))
            return 0;
    return 1;
}

/* stored == key already holds (the dict found it); compare types. */
static int same_types(PyObject *stored, PyObject *key)
{
    if (stored == key)
        return 1;
    if (Py_TYPE(key) != &PyTuple_Type)
        return same_scalar(stored, key);
    if (Py_TYPE(stored) != &PyTuple_Type)
        return 0;
    for (Py_ssize_t i = 0; i < PyTuple_GET_SIZE(key); i++)
        if (!same_item(PyTuple_GET_ITEM(stored, i), PyTuple_GET_ITEM(key, i)))
            return 0;
    return 1;
}

/* -------------------------------------------------------------- calls */

static PyObject *call_slow(Memo *m, PyObject *const *args, Py_ssize_t nargs, PyObject *kwnames)
{
    PyObject *targs = PyTuple_New(nargs);
    if (!targs)
        return NULL;
    for (Py_ssize_t i = 0; i < nargs; i++) {
        Py_INCREF(args[i]);
        PyTuple_SET_ITEM(targs, i, args[i]);
    }
    PyObject *kwargs = Py_None;
    Py_INCREF(kwargs);
    Py_ssize_t nkw = kwnames ? PyTuple_GET_SIZE(kwnames) : 0;
    if (nkw) {
        Py_SETREF(kwargs, PyDict_New());
        for (Py_ssize_t i = 0; kwargs && i < nkw; i++)
            if (PyDict_SetItem(kwargs, PyTuple_GET_ITEM(kwnames, i), args[nargs + i]) < 0)
                Py_CLEAR(kwargs);
    }
    PyObject *result = NULL;
    if (kwargs) {
        PyObject *stack[2] = {targs, kwargs};
        result = PyObject_Vectorcall(m->slow_path, stack, 2, NULL);
        Py_DECREF(kwargs);
    }
    Py_DECREF(targs);
    return result;
}

static int remember(Memo *m, PyObject *key, PyObject *result)
{
    if (m->maxsize > 0 && PyDict_GET_SIZE(m->cache) >= m->maxsize)
        PyDict_Clear(m->cache);
    PyObject *entry = PyTuple_Pack(2, key, result);
    if (!entry)
        return -1;
    int rc = PyDict_SetItem(m->cache, key, entry);
    Py_DECREF(entry);
    return rc;
}

static PyObject *memo_vectorcall(PyObject *self, PyObject *const *args, size_t nargsf,
                                 PyObject *kwnames)
{
    Memo *m = (Memo *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    Py_ssize_t ntotal = nargs + (kwnames ? PyTuple_GET_SIZE(kwnames) : 0);
    if (!m->cache) {
        PyErr_SetString(PyExc_RuntimeError, "irohds memo wrapper was cleared");
        return NULL;
    }
    PyObject *key = NULL;
    int eligible = m->maxsize != 0;
    for (Py_ssize_t i = 0; eligible && i < ntotal; i++)
        eligible = arg_ok(args[i]);
    if (eligible) {
        key = make_key(args, nargs, kwnames);
        if (!key)
            return NULL;
        PyObject *entry = PyDict_GetItemWithError(m->cache, key);
        if (entry && same_types(PyTuple_GET_ITEM(entry, 0), key)) {
            PyObject *result = PyTuple_GET_ITEM(entry, 1);
            Py_INCREF(result);
            Py_DECREF(key);
            m->hits++;
            return result;
        }
        if (!entry && PyErr_Occurred()) {
            Py_DECREF(key);
            return NULL;
        }
    }
    m->misses++;
    PyObject *result = call_slow(m, args, nargs, kwnames);
    if (result && key && m->cache && remember(m, key, result) < 0)
        Py_CLEAR(result);
    Py_XDECREF(key);
    return result;
}

/* ---------------------------------------------------------- lifecycle */

/* Copy what functools.update_wrapper copies, so help(), inspect and
 * pickling by reference see the wrapped function. */
static int copy_wrapper_attrs(Memo *m)
{
    static const char *const names[] = {"__module__", "__name__", "__qualname__", "__doc__",
                                        "__annotations__", NULL};
    for (int i = 0; names[i]; i++) {
        PyObject *v = PyObject_GetAttrString(m->func, names[i]);
        if (!v) {
            if (!PyErr_ExceptionMatches(PyExc_AttributeError))
                return -1;
            PyErr_Clear();
            continue;
        }
        int rc = PyDict_SetItemString(m->dict, names[i], v);
        Py_DECREF(v);
        if (rc < 0)
            return -1;
    }
    PyObject *fdict = PyObject_GetAttrString(m->func, "__dict__");
    if (!fdict) {
        PyErr_Clear();
        return 0;
    }
    int rc = PyDict_Check(fdict) ? PyDict_Update(m->dict, fdict) : 0;
    Py_DECREF(fdict);
    return rc;
}

/*
 * The Python side subclasses Memo (irohds._memo.MemoFunction).  Before 3.12
 * a class statement's type does not inherit Py_TPFLAGS_HAVE_VECTORCALL, so
 * every call would build an args tuple and kwargs dict before reaching
 * memo_vectorcall.  Give such a subclass the flag the way 3.12 does: only
 * while it has not overridden __call__.
 */
static void inherit_vectorcall(PyTypeObject *type)
{
#if PY_VERSION_HEX < 0x030C0000
    if (type != &irohds_memo_type && type->tp_call == PyVectorcall_Call &&
        type->tp_vectorcall_offset == irohds_memo_type.tp_vectorcall_offset)
        type->tp_flags |= Py_TPFLAGS_HAVE_VECTORCALL;
#else
    (void)type;
#endif
}

static PyObject *memo_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"func", "slow_path", "maxsize", NULL};
    PyObject *func, *slow, *maxsize = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OO|O:Memo", kwlist, &func, &slow, &maxsize))
        return NULL;
    if (!PyCallable_Check(func) || !PyCallable_Check(slow)) {
        PyErr_SetString(PyExc_TypeError, "Memo(func, slow_path): both must be callable");
        return NULL;
    }
    Py_ssize_t max = 4096;
    if (maxsize == Py_None)
        max = -1;
    else if (maxsize && (max = PyLong_AsSsize_t(maxsize)) == -1 && PyErr_Occurred())
        return NULL;
    inherit_vectorcall(type);
    Memo *m = (Memo *)type->tp_alloc(type, 0);
    if (!m)
        return NULL;
    m->vectorcall = memo_vectorcall;
    Py_INCREF(func);
    m->func = func;
    Py_INCREF(slow);
    m->slow_path = slow;
    m->maxsize = max < 0 ? -1 : max;
    m->cache = PyDict_New();
    m->dict = PyDict_New();
    if (!m->cache || !m->dict || copy_wrapper_attrs(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return (PyObject *)m;
}

static int memo_traverse(Memo *m, visitproc visit, void *arg)
{
    Py_VISIT(m->func);
    Py_VISIT(m->slow_path);
    Py_VISIT(m->cache);
    Py_VISIT(m->dict);
    return 0;
}

static int memo_clear(Memo *m)
{
    Py_CLEAR(m->func);
    Py_CLEAR(m->slow_path);
    Py_CLEAR(m->cache);
    Py_CLEAR(m->dict);
    return 0;
}

static void memo_dealloc(Memo *m)
{
    PyObject_GC_UnTrack(m);
    if (m->weakreflist)
        PyObject_ClearWeakRefs((PyObject *)m);
    memo_clear(m);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

/* ------------------------------------------------------------ methods */

static PyObject *memo_cache_clear(Memo *m, PyObject *unused)
{
    (void)unused;
    if (m->cache)
        PyDict_Clear(m->cache);
    m->hits = m->misses = 0;
    Py_RETURN_NONE;
}

static PyObject *memo_cache_info(Memo *m, PyObject *unused)
{
    (void)unused;
    return Py_BuildValue("(nnn)", m->hits, m->misses, m->cache ? PyDict_GET_SIZE(m->cache) : 0);
}

/* Pickle by reference, as for a plain function: module.qualname. */
static PyObject *memo_reduce(Memo *m, PyObject *unused)
{
    (void)unused;
    PyObject *q = m->dict ? PyDict_GetItemString(m->dict, "__qualname__") : NULL;
    if (!q) {
        PyErr_SetString(PyExc_TypeError, "cannot pickle a memo wrapper without __qualname__");
        return NULL;
    }
    Py_INCREF(q);
    return q;
}

static PyObject *memo_descr_get(PyObject *self, PyObject *obj, PyObject *type)
{
    (void)type;
    if (obj == NULL || obj == Py_None) {
        Py_INCREF(self);
        return self;
    }
    return PyMethod_New(self, obj);
}

static PyObject *memo_repr(Memo *m)
{
    return PyUnicode_FromFormat("<irohds.memo %R>", m->func ? m->func : Py_None);
}

static PyMethodDef memo_methods[] = {
    {"cache_clear", (PyCFunction)memo_cache_clear, METH_NOARGS, "empty tier 0 and reset its counters"},
    {"cache_info", (PyCFunction)memo_cache_info, METH_NOARGS, "(hits, misses, currsize) of tier 0"},
    {"__reduce__", (PyCFunction)memo_reduce, METH_NOARGS, "pickle by reference"},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef memo_members[] = {
    {"__wrapped__", T_OBJECT, offsetof(Memo, func), READONLY, "the decorated function"},
    {NULL, 0, 0, 0, NULL},
};

static PyGetSetDef memo_getset[] = {
    {"__dict__", PyObject_GenericGetDict, PyObject_GenericSetDict, NULL, NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject irohds_memo_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "irohds._native.Memo",
    .tp_basicsize = sizeof(Memo),
    .tp_dealloc = (destructor)memo_dealloc,
    .tp_vectorcall_offset = offsetof(Memo, vectorcall),
    .tp_repr = (reprfunc)memo_repr,
    .tp_call = PyVectorcall_Call,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL |
                Py_TPFLAGS_METHOD_DESCRIPTOR,
    .tp_doc = "Memo(func, slow_path, maxsize=4096): the tier-0 memo wrapper (see _native.pyi)",
    .tp_traverse = (traverseproc)memo_traverse,
    .tp_clear = (inquiry)memo_clear,
    .tp_weaklistoffset = offsetof(Memo, weakreflist),
    .tp_methods = memo_methods,
    .tp_members = memo_members,
    .tp_getset = memo_getset,
    .tp_descr_get = memo_descr_get,
    .tp_dictoffset = offsetof(Memo, dict),
    .tp_new = memo_new,
};
