/*
 * bind.c: Binder, which maps a call's (args, kwargs) onto the function's
 * parameters the way the interpreter does, so that f(1), f(x=1) and f() with
 * a default of 1 all produce the same (name, value) pairs and so the same
 * cache key.
 *
 * Built once per decorated function from its code object (argument counts,
 * names, *args and **kwargs flags); defaults are read at each bind because
 * __defaults__ may be reassigned.  The output follows signature order:
 * positional parameters, *args (always, as a tuple), keyword-only
 * parameters, **kwargs (always, as a dict), with the ignored names dropped.
 * That is exactly inspect.signature(f).bind(...) + apply_defaults(), which
 * the tests compare against, without its cost.
 */
#include "native.h"

typedef struct {
    PyObject_HEAD
    PyObject *func;
    PyObject *qualname;   /* for error messages */
    PyObject *names;      /* tuple: positional, keyword-only, [*args], [**kwargs] */
    char *ignored;        /* per entry of names: 1 = drop from the output */
    Py_ssize_t npos;      /* co_argcount (positional-only included) */
    Py_ssize_t nposonly;  /* co_posonlyargcount */
    Py_ssize_t nkwonly;   /* co_kwonlyargcount */
    Py_ssize_t ivarargs;  /* index in names of *args, or -1 */
    Py_ssize_t ivarkw;    /* index in names of **kwargs, or -1 */
} Binder;

/* Code flags (Include/cpython/code.h); stable since Python 2. */
#define FLAG_VARARGS 0x04
#define FLAG_VARKEYWORDS 0x08

static Py_ssize_t code_int(PyObject *code, const char *attr)
{
    PyObject *v = PyObject_GetAttrString(code, attr);
    if (!v)
        return -1;
    Py_ssize_t n = PyLong_AsSsize_t(v);
    Py_DECREF(v);
    return n;
}

static int mark_ignored(Binder *b, PyObject *ignore)
{
    Py_ssize_t n = PyTuple_GET_SIZE(b->names);
    b->ignored = PyMem_Calloc((size_t)n + 1, 1);
    if (!b->ignored) {
        PyErr_NoMemory();
        return -1;
    }
    if (!ignore)
        return 0;
    PyObject *seq = PySequence_Fast(ignore, "ignore must be a sequence of parameter names");
    if (!seq)
        return -1;
    int rc = 0;
    for (Py_ssize_t i = 0; i < PySequence_Fast_GET_SIZE(seq) && rc == 0; i++) {
        PyObject *want = PySequence_Fast_GET_ITEM(seq, i);
        Py_ssize_t j = 0;
        for (; j < n; j++) {
            int eq = PyObject_RichCompareBool(PyTuple_GET_ITEM(b->names, j), want, Py_EQ);
            if (eq < 0)
                rc = -1;
            if (eq)
                break;
        }
        if (rc == 0 && j == n) {
            PyErr_Format(PyExc_ValueError, "ignore: %R has no parameter %R", b->qualname, want);
            rc = -1;
        } else if (rc == 0) {
            b->ignored[j] = 1;
        }
    }
    Py_DECREF(seq);
    return rc;
}

static int read_code(Binder *b, PyObject *code)
{
    Py_ssize_t flags = code_int(code, "co_flags");
    b->npos = code_int(code, "co_argcount");
    b->nposonly = code_int(code, "co_posonlyargcount");
    b->nkwonly = code_int(code, "co_kwonlyargcount");
    if (flags < 0 || b->npos < 0 || b->nposonly < 0 || b->nkwonly < 0)
        return PyErr_Occurred() ? -1 : (PyErr_SetString(PyExc_ValueError, "bad code object"), -1);
    Py_ssize_t n = b->npos + b->nkwonly;
    b->ivarargs = (flags & FLAG_VARARGS) ? n++ : -1;
    b->ivarkw = (flags & FLAG_VARKEYWORDS) ? n++ : -1;
    PyObject *varnames = PyObject_GetAttrString(code, "co_varnames");
    if (!varnames)
        return -1;
    if (!PyTuple_Check(varnames) || PyTuple_GET_SIZE(varnames) < n) {
        Py_DECREF(varnames);
        PyErr_SetString(PyExc_ValueError, "code object has fewer names than parameters");
        return -1;
    }
    b->names = PyTuple_GetSlice(varnames, 0, n);
    Py_DECREF(varnames);
    return b->names ? 0 : -1;
}

static PyObject *binder_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"func", "ignore", NULL};
    PyObject *func, *ignore = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O|O:Binder", kwlist, &func, &ignore))
        return NULL;
    if (!PyFunction_Check(func)) {
        PyErr_Format(PyExc_TypeError, "Binder needs a Python function, got %.200s",
                     Py_TYPE(func)->tp_name);
        return NULL;
    }
    Binder *b = (Binder *)type->tp_alloc(type, 0);
    if (!b)
        return NULL;
    Py_INCREF(func);
    b->func = func;
    b->qualname = PyObject_GetAttrString(func, "__qualname__");
    if (!b->qualname || read_code(b, PyFunction_GET_CODE(func)) < 0 ||
        mark_ignored(b, ignore) < 0) {
        Py_DECREF(b);
        return NULL;
    }
    return (PyObject *)b;
}

/* The function's globals can reach back to the Binder (through the memo
 * wrapper's slow path), so the Binder takes part in cycle collection. */
static int binder_traverse(Binder *b, visitproc visit, void *arg)
{
    Py_VISIT(b->func);
    return 0;
}

static int binder_clear(Binder *b)
{
    Py_CLEAR(b->func);
    return 0;
}

static void binder_dealloc(Binder *b)
{
    PyObject_GC_UnTrack(b);
    binder_clear(b);
    Py_XDECREF(b->qualname);
    Py_XDECREF(b->names);
    PyMem_Free(b->ignored);
    Py_TYPE(b)->tp_free((PyObject *)b);
}

/* ------------------------------------------------------------ binding */

static Py_ssize_t find_param(Binder *b, PyObject *key)
{
    Py_ssize_t n = b->npos + b->nkwonly;
    /* Keyword names are usually the interned names themselves. */
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyTuple_GET_ITEM(b->names, i) == key)
            return i;
    for (Py_ssize_t i = 0; i < n; i++)
        if (PyUnicode_Compare(PyTuple_GET_ITEM(b->names, i), key) == 0)
            return i;
    return -1;
}

static int too_many_positional(Binder *b, Py_ssize_t given, PyObject *defaults)
{
    Py_ssize_t ndef = defaults ? PyTuple_GET_SIZE(defaults) : 0;
    if (ndef)
        PyErr_Format(PyExc_TypeError, "%U() takes from %zd to %zd positional arguments but %zd were given",
                     b->qualname, b->npos - ndef, b->npos, given);
    else
        PyErr_Format(PyExc_TypeError, "%U() takes %zd positional argument%s but %zd were given",
                     b->qualname, b->npos, b->npos == 1 ? "" : "s", given);
    return -1;
}

/* Place one keyword argument into slots or the **kwargs dict. */
static int place_keyword(Binder *b, PyObject **slots, PyObject *extra, PyObject *k, PyObject *v)
{
    if (!PyUnicode_Check(k)) {
        PyErr_Format(PyExc_TypeError, "%U() keywords must be strings", b->qualname);
        return -1;
    }
    Py_ssize_t i = find_param(b, k);
    if (i >= 0 && i < b->nposonly)
        i = -2; /* positional-only: may only land in **kwargs */
    if (i >= 0) {
        if (slots[i]) {
            PyErr_Format(PyExc_TypeError, "%U() got multiple values for argument '%U'", b->qualname, k);
            return -1;
        }
        slots[i] = v;
        return 0;
    }
    if (extra)
        return PyDict_SetItem(extra, k, v);
    if (i == -2)
        PyErr_Format(PyExc_TypeError,
                     "%U() got some positional-only arguments passed as keyword arguments: '%U'",
                     b->qualname, k);
    else
        PyErr_Format(PyExc_TypeError, "%U() got an unexpected keyword argument '%U'", b->qualname, k);
    return -1;
}

/* Apply __defaults__ and __kwdefaults__ to the empty slots; TypeError if one is still missing. */
static int apply_defaults(Binder *b, PyObject **slots)
{
    PyObject *defaults = PyFunction_GET_DEFAULTS(b->func);
    PyObject *kwdefaults = PyFunction_GET_KW_DEFAULTS(b->func);
    Py_ssize_t ndef = defaults ? PyTuple_GET_SIZE(defaults) : 0;
    for (Py_ssize_t i = 0; i < b->npos; i++) {
        if (!slots[i] && i >= b->npos - ndef)
            slots[i] = PyTuple_GET_ITEM(defaults, i - (b->npos - ndef));
        if (!slots[i]) {
            PyErr_Format(PyExc_TypeError, "%U() missing required positional argument: '%U'",
                         b->qualname, PyTuple_GET_ITEM(b->names, i));
            return -1;
        }
    }
    for (Py_ssize_t i = b->npos; i < b->npos + b->nkwonly; i++) {
        PyObject *name = PyTuple_GET_ITEM(b->names, i);
        if (!slots[i] && kwdefaults && PyDict_Check(kwdefaults))
            slots[i] = PyDict_GetItemWithError(kwdefaults, name);
        if (!slots[i]) {
            if (!PyErr_Occurred())
                PyErr_Format(PyExc_TypeError, "%U() missing required keyword-only argument: '%U'",
                             b->qualname, name);
            return -1;
        }
    }
    return 0;
}

static PyObject *make_pairs(Binder *b, PyObject **slots)
{
    Py_ssize_t n = PyTuple_GET_SIZE(b->names), kept = 0;
    for (Py_ssize_t i = 0; i < n; i++)
        kept += !b->ignored[i];
    PyObject *out = PyTuple_New(kept);
    if (!out)
        return NULL;
    /* names order is positional, kw-only, *args, **kwargs; the output is
     * positional, *args, kw-only, **kwargs (signature order). */
    Py_ssize_t order[4][2] = {
        {0, b->npos},
        {b->ivarargs, b->ivarargs < 0 ? b->ivarargs : b->ivarargs + 1},
        {b->npos, b->npos + b->nkwonly},
        {b->ivarkw, b->ivarkw < 0 ? b->ivarkw : b->ivarkw + 1},
    };
    Py_ssize_t j = 0;
    for (int r = 0; r < 4; r++) {
        for (Py_ssize_t i = order[r][0]; i < order[r][1]; i++) {
            if (b->ignored[i])
                continue;
            PyObject *pair = PyTuple_Pack(2, PyTuple_GET_ITEM(b->names, i), slots[i]);
            if (!pair) {
                Py_DECREF(out);
                return NULL;
            }
            PyTuple_SET_ITEM(out, j++, pair);
        }
    }
    return out;
}

/* slots hold borrowed references except *args and **kwargs, which bind() owns. */
static PyObject *bind_into(Binder *b, PyObject *args, PyObject *kwargs, PyObject **slots)
{
    Py_ssize_t nargs = PyTuple_GET_SIZE(args);
    Py_ssize_t ncopy = nargs < b->npos ? nargs : b->npos;
    for (Py_ssize_t i = 0; i < ncopy; i++)
        slots[i] = PyTuple_GET_ITEM(args, i);
    if (nargs > b->npos && b->ivarargs < 0)
        return too_many_positional(b, nargs, PyFunction_GET_DEFAULTS(b->func)), NULL;
    if (b->ivarargs >= 0) {
        slots[b->ivarargs] = PyTuple_GetSlice(args, ncopy, nargs);
        if (!slots[b->ivarargs])
            return NULL;
    }
    if (b->ivarkw >= 0 && !(slots[b->ivarkw] = PyDict_New()))
        return NULL;
    PyObject *extra = b->ivarkw >= 0 ? slots[b->ivarkw] : NULL;
    if (kwargs) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        while (PyDict_Next(kwargs, &pos, &k, &v))
            if (place_keyword(b, slots, extra, k, v) < 0)
                return NULL;
    }
    if (apply_defaults(b, slots) < 0)
        return NULL;
    return make_pairs(b, slots);
}

static PyObject *binder_bind(Binder *b, PyObject *const *argv, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2 || !PyTuple_Check(argv[0]) ||
        (nargs == 2 && argv[1] != Py_None && !PyDict_Check(argv[1]))) {
        PyErr_SetString(PyExc_TypeError, "bind(args: tuple, kwargs: dict | None)");
        return NULL;
    }
    if (!b->func) {
        PyErr_SetString(PyExc_RuntimeError, "Binder was cleared");
        return NULL;
    }
    PyObject *kwargs = nargs == 2 && argv[1] != Py_None ? argv[1] : NULL;
    Py_ssize_t n = PyTuple_GET_SIZE(b->names);
    PyObject *small[16];
    PyObject **slots = n <= 16 ? small : PyMem_Malloc((size_t)n * sizeof *slots);
    if (!slots)
        return PyErr_NoMemory();
    for (Py_ssize_t i = 0; i < n; i++)
        slots[i] = NULL;
    PyObject *out = bind_into(b, argv[0], kwargs, slots);
    if (b->ivarargs >= 0)
        Py_XDECREF(slots[b->ivarargs]);
    if (b->ivarkw >= 0)
        Py_XDECREF(slots[b->ivarkw]);
    if (slots != small)
        PyMem_Free(slots);
    return out;
}

static PyObject *binder_repr(Binder *b)
{
    return PyUnicode_FromFormat("<irohds Binder for %U%R>", b->qualname, b->names);
}

static PyObject *binder_get_names(Binder *b, void *closure)
{
    (void)closure;
    Py_INCREF(b->names);
    return b->names;
}

static PyMethodDef binder_methods[] = {
    {"bind", (PyCFunction)(void (*)(void))binder_bind, METH_FASTCALL,
     "bind(args, kwargs) -> ((name, value), ...) in signature order"},
    {NULL, NULL, 0, NULL},
};

static PyGetSetDef binder_getset[] = {
    {"names", (getter)binder_get_names, NULL, "parameter names (code object order)", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

PyTypeObject irohds_bind_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "irohds._native.Binder",
    .tp_basicsize = sizeof(Binder),
    .tp_dealloc = (destructor)binder_dealloc,
    .tp_repr = (reprfunc)binder_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)binder_traverse,
    .tp_clear = (inquiry)binder_clear,
    .tp_doc = "Binder(func, ignore=()): binds calls like Python does (see _native.pyi)",
    .tp_methods = binder_methods,
    .tp_getset = binder_getset,
    .tp_new = binder_new,
};
