/*
 * client_py.c: Client, the Python face of the blocking daemon client
 * (src/ipc/ipc.h, docs/ipc.md).
 *
 * Only misses, puts and administration reach the daemon; a hit never does.
 * Every blocking call releases the GIL, and a per-client lock keeps two
 * threads from interleaving frames on one socket (the lock is taken with the
 * GIL released, so a thread waiting for it never blocks the interpreter).
 *
 * Replies are matched to requests by id: after a TimeoutError the late reply
 * still arrives, and the next call skips it instead of taking it for its own.
 *
 * Errors: ConnectionError (daemon gone or never there), TimeoutError,
 * OSError(errno, text) for an ERROR reply, ValueError for a malformed or
 * unexpected reply.
 */
#include "native.h"

#include <errno.h>
#include <string.h>
#include <time.h>

#include "ipc/ipc.h"
#include "util/util.h"

/* A put waits for the daemon to hash and store the whole result. */
#define PUT_TIMEOUT_MIN_MS 60000
/* While WAITing on another process's lease, wake this often for signals. */
#define WAIT_SLICE_MS 200

typedef struct {
    PyObject_HEAD
    irohds_ipc_client *c; /* NULL once closed */
    PyThread_type_lock lock;
    int timeout_ms;
    PyObject *path;
} Client;

/* ------------------------------------------------------------- errors */

static PyObject *raise_rc(int rc)
{
    int e = -rc;
    if (e == ETIMEDOUT)
        return PyErr_Format(PyExc_TimeoutError, "irohds daemon did not answer in time");
    if (e == EPROTO || e == EMSGSIZE || e == EPROTONOSUPPORT || e == EBADMSG)
        return PyErr_Format(PyExc_ValueError, "malformed reply from the irohds daemon (%s)", strerror(e));
    if (e == ECONNRESET || e == EPIPE || e == ENOTCONN || e == ECONNREFUSED || e == ENOENT ||
        e == ECONNABORTED || e == EBADF) {
        PyObject *args = Py_BuildValue("(is)", e, "irohds daemon is not reachable");
        if (args) {
            PyErr_SetObject(PyExc_ConnectionError, args);
            Py_DECREF(args);
        }
        return NULL;
    }
    return irohds_module_raise_errno(rc, NULL);
}

static PyObject *raise_error_reply(const irohds_ipc_msg *m)
{
    int code = IROHDS_IPC_HAS(m, IROHDS_TAG_CODE) ? -m->code : EIO;
    PyObject *text = IROHDS_IPC_HAS(m, IROHDS_TAG_TEXT)
                         ? PyUnicode_DecodeUTF8(m->text.ptr, m->text.len, "replace")
                         : PyUnicode_FromString(strerror(code));
    if (!text)
        return NULL;
    PyObject *args = Py_BuildValue("(iN)", code, text);
    if (args) {
        PyErr_SetObject(PyExc_OSError, args);
        Py_DECREF(args);
    }
    return NULL;
}

static PyObject *unexpected(const irohds_ipc_msg *m)
{
    return PyErr_Format(PyExc_ValueError, "unexpected reply type %d from the irohds daemon", m->type);
}

/* ------------------------------------------------------------ locking */

static int take(Client *cl)
{
    if (!PyThread_acquire_lock(cl->lock, NOWAIT_LOCK)) {
        Py_BEGIN_ALLOW_THREADS
        PyThread_acquire_lock(cl->lock, WAIT_LOCK);
        Py_END_ALLOW_THREADS
    }
    if (cl->c)
        return 0;
    PyThread_release_lock(cl->lock);
    PyErr_SetString(PyExc_ValueError, "Client is closed");
    return -1;
}

static void give(Client *cl)
{
    PyThread_release_lock(cl->lock);
}

/* ---------------------------------------------------------- exchange */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Receive the next frame answering request id (GIL released). */
static int recv_for(irohds_ipc_client *c, uint32_t id, irohds_ipc_msg *reply, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        int left = deadline < 0 ? -1 : (int)(deadline - now_ms());
        if (deadline >= 0 && left < 0)
            left = 0;
        int rc = irohds_ipc_recv(c, reply, left);
        if (rc < 0)
            return rc;
        if (reply->id == id)
            return 0;
    }
}

/* Send req and wait for its reply, GIL released; the lock must be held. */
static int exchange(Client *cl, irohds_ipc_msg *req, int fd, irohds_ipc_msg *reply, int timeout_ms)
{
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = irohds_ipc_send(cl->c, req, fd);
    if (rc >= 0)
        rc = recv_for(cl->c, req->id, reply, timeout_ms);
    Py_END_ALLOW_THREADS
    return rc < 0 ? rc : 0;
}

/* One request, one reply that must be OK (or ERROR).  Lock held on return 0. */
static int simple_call(Client *cl, irohds_ipc_msg *req, int fd, irohds_ipc_msg *reply, int timeout_ms)
{
    if (take(cl) < 0)
        return -1;
    int rc = exchange(cl, req, fd, reply, timeout_ms);
    if (rc < 0) {
        give(cl);
        raise_rc(rc);
        return -1;
    }
    if (reply->type == IROHDS_IPC_ERROR) {
        give(cl);
        raise_error_reply(reply);
        return -1;
    }
    if (reply->type != IROHDS_IPC_OK) {
        give(cl);
        unexpected(reply);
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------ message parts */

static int set_key(irohds_ipc_msg *m, int tag, PyObject *obj, const char *what)
{
    uint8_t *dst = tag == IROHDS_TAG_KEY ? m->key : m->hash;
    if (irohds_module_get_hash32(obj, dst, what) < 0)
        return -1;
    m->present |= 1u << tag;
    return 0;
}

static int set_text(irohds_ipc_msg *m, int tag, PyObject *obj)
{
    const char *s = PyUnicode_AsUTF8(obj);
    if (!s)
        return -1;
    irohds_ipc_set_str(m, tag, s);
    return 0;
}

static PyObject *str_of(irohds_ipc_str s)
{
    return PyUnicode_DecodeUTF8(s.ptr, s.len, "replace");
}

static const char *node_hex(const uint8_t node[32], char *hex)
{
    irohds_hex_encode(node, 32, hex);
    return hex;
}

/* Every field present in m, by name (hello, hit records). */
static PyObject *msg_dict(const irohds_ipc_msg *m)
{
    char hex[65];
    PyObject *d = PyDict_New();
    if (!d)
        return NULL;
    struct {
        int tag;
        const char *name;
        PyObject *v;
    } f[] = {
        {IROHDS_TAG_KEY, "key", NULL},          {IROHDS_TAG_HASH, "blob", NULL},
        {IROHDS_TAG_LEASE, "lease", NULL}, {IROHDS_TAG_SIZE, "size", NULL},
        {IROHDS_TAG_COUNT, "count", NULL}, {IROHDS_TAG_SECONDS, "compute_seconds", NULL},
        {IROHDS_TAG_SERIALIZER, "serializer", NULL}, {IROHDS_TAG_FUNC, "func", NULL},
        {IROHDS_TAG_NS, "ns", NULL}, {IROHDS_TAG_TEXT, "text", NULL},
        {IROHDS_TAG_FLAGS, "flags", NULL}, {IROHDS_TAG_PATH, "data_dir", NULL},
        {IROHDS_TAG_NODE, "node", NULL}, {IROHDS_TAG_PID, "pid", NULL},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (!IROHDS_IPC_HAS(m, f[i].tag))
            continue;
        PyObject *v;
        switch (f[i].tag) {
        case IROHDS_TAG_KEY: v = PyBytes_FromStringAndSize((const char *)m->key, 32); break;
        case IROHDS_TAG_HASH: v = PyBytes_FromStringAndSize((const char *)m->hash, 32); break;
        case IROHDS_TAG_LEASE: v = PyLong_FromUnsignedLongLong(m->lease); break;
        case IROHDS_TAG_SIZE: v = PyLong_FromUnsignedLongLong(m->size); break;
        case IROHDS_TAG_COUNT: v = PyLong_FromUnsignedLongLong(m->count); break;
        case IROHDS_TAG_SECONDS: v = PyFloat_FromDouble(m->seconds); break;
        case IROHDS_TAG_SERIALIZER: v = PyLong_FromUnsignedLong(m->serializer); break;
        case IROHDS_TAG_FLAGS: v = PyLong_FromUnsignedLong(m->flags); break;
        case IROHDS_TAG_FUNC: v = str_of(m->func); break;
        case IROHDS_TAG_NS: v = str_of(m->ns); break;
        case IROHDS_TAG_PATH: v = PyUnicode_DecodeFSDefaultAndSize(m->path.ptr, m->path.len); break;
        case IROHDS_TAG_NODE: v = PyUnicode_FromFormat("%s", node_hex(m->node, hex)); break;
        case IROHDS_TAG_PID: v = PyLong_FromUnsignedLong(m->pid); break;
        default: v = str_of(m->text); break;
        }
        if (!v || PyDict_SetItemString(d, f[i].name, v) < 0) {
            Py_XDECREF(v);
            Py_DECREF(d);
            return NULL;
        }
        Py_DECREF(v);
    }
    return d;
}

static int timeout_arg(PyObject *obj, int dflt, int *out)
{
    if (!obj || obj == Py_None) {
        *out = dflt;
        return 0;
    }
    double t = PyFloat_AsDouble(obj);
    if (t == -1.0 && PyErr_Occurred())
        return -1;
    if (!(t >= 0) || t > 1e6) {
        PyErr_SetString(PyExc_ValueError, "timeout must be between 0 and 1e6 seconds");
        return -1;
    }
    *out = (int)(t * 1000 + 0.999); /* round up: never wait less than asked */
    return 0;
}

/* --------------------------------------------------------- lifecycle */

static PyObject *client_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"socket_path", "timeout", NULL};
    PyObject *path, *tobj = NULL;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "O&|O:Client", kwlist, PyUnicode_FSConverter, &path, &tobj))
        return NULL;
    Client *cl = (Client *)type->tp_alloc(type, 0);
    if (!cl) {
        Py_DECREF(path);
        return NULL;
    }
    cl->path = path;
    if (timeout_arg(tobj, 5000, &cl->timeout_ms) < 0 || !(cl->lock = PyThread_allocate_lock())) {
        if (!PyErr_Occurred())
            PyErr_NoMemory();
        Py_DECREF(cl);
        return NULL;
    }
    /* The client struct holds a 1 MiB frame buffer: heap, not the object. */
    irohds_ipc_client *c = PyMem_RawMalloc(sizeof *c);
    if (!c) {
        Py_DECREF(cl);
        return PyErr_NoMemory();
    }
    int rc;
    Py_BEGIN_ALLOW_THREADS
    rc = irohds_ipc_connect(c, PyBytes_AS_STRING(path));
    Py_END_ALLOW_THREADS
    if (rc < 0) {
        PyMem_RawFree(c);
        Py_DECREF(cl);
        return raise_rc(rc);
    }
    cl->c = c;
    return (PyObject *)cl;
}

static void close_client(Client *cl)
{
    if (cl->c) {
        irohds_ipc_close(cl->c);
        PyMem_RawFree(cl->c);
        cl->c = NULL;
    }
}

static void client_dealloc(Client *cl)
{
    close_client(cl);
    if (cl->lock)
        PyThread_free_lock(cl->lock);
    Py_XDECREF(cl->path);
    Py_TYPE(cl)->tp_free((PyObject *)cl);
}

static PyObject *client_close(Client *cl, PyObject *unused)
{
    (void)unused;
    if (take(cl) == 0) {
        close_client(cl);
        give(cl);
    }
    PyErr_Clear(); /* closing twice is fine */
    Py_RETURN_NONE;
}

/* ----------------------------------------------------------- requests */

static PyObject *client_hello(Client *cl, PyObject *unused)
{
    (void)unused;
    irohds_ipc_msg req, reply;
    irohds_ipc_msg_init(&req, IROHDS_IPC_HELLO);
    if (take(cl) < 0)
        return NULL;
    int rc = exchange(cl, &req, -1, &reply, cl->timeout_ms);
    PyObject *out;
    if (rc < 0)
        out = raise_rc(rc);
    else if (reply.type == IROHDS_IPC_ERROR)
        out = raise_error_reply(&reply);
    else if (reply.type != IROHDS_IPC_HELLO && reply.type != IROHDS_IPC_OK)
        out = unexpected(&reply);
    else
        out = msg_dict(&reply);
    give(cl);
    return out;
}

/* After WAIT: wait for HIT or LEASE in slices, so Ctrl-C still works; the
 * PROGRESS frames of a download in between are skipped. */
static int wait_for_turn(Client *cl, uint32_t id, irohds_ipc_msg *reply, int timeout_ms)
{
    int64_t deadline = timeout_ms < 0 ? -1 : now_ms() + timeout_ms;
    for (;;) {
        int slice = WAIT_SLICE_MS;
        if (deadline >= 0 && deadline - now_ms() < slice)
            slice = (int)(deadline - now_ms() > 0 ? deadline - now_ms() : 0);
        int rc;
        Py_BEGIN_ALLOW_THREADS
        rc = recv_for(cl->c, id, reply, slice);
        Py_END_ALLOW_THREADS
        if (rc == 0 && (reply->type == IROHDS_IPC_WAIT || reply->type == IROHDS_IPC_PROGRESS))
            continue; /* PROGRESS: bytes of the daemon's download so far (docs/ipc.md) */
        if (rc != -ETIMEDOUT || (deadline >= 0 && now_ms() >= deadline))
            return rc;
        if (PyErr_CheckSignals() < 0)
            return -EINTR;
    }
}

static PyObject *get_result(const irohds_ipc_msg *reply)
{
    if (reply->type == IROHDS_IPC_HIT) {
        PyObject *rec = msg_dict(reply);
        return rec ? Py_BuildValue("(sN)", "hit", rec) : NULL;
    }
    if (reply->type == IROHDS_IPC_LEASE)
        return Py_BuildValue("(sK)", "lease", (unsigned long long)reply->lease);
    if (reply->type == IROHDS_IPC_ERROR)
        return raise_error_reply(reply);
    return unexpected(reply);
}

static PyObject *client_get(Client *cl, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"key", "func", "ns", "force", "timeout", NULL};
    PyObject *key, *func, *ns, *tobj = Py_None;
    int force = 0, wait_ms;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OUU|pO:get", kwlist, &key, &func, &ns, &force, &tobj))
        return NULL;
    irohds_ipc_msg req, reply;
    irohds_ipc_msg_init(&req, IROHDS_IPC_GET);
    if (timeout_arg(tobj, -1, &wait_ms) < 0 || set_key(&req, IROHDS_TAG_KEY, key, "key") < 0 ||
        set_text(&req, IROHDS_TAG_FUNC, func) < 0 || set_text(&req, IROHDS_TAG_NS, ns) < 0)
        return NULL;
    req.flags = force ? IROHDS_IPC_FLAG_FORCE : 0;
    req.present |= 1u << IROHDS_TAG_FLAGS;
    if (take(cl) < 0)
        return NULL;
    int rc = exchange(cl, &req, -1, &reply, cl->timeout_ms);
    if (rc == 0 && reply.type == IROHDS_IPC_WAIT)
        rc = wait_for_turn(cl, req.id, &reply, wait_ms);
    PyObject *out = rc == -EINTR ? NULL : rc < 0 ? raise_rc(rc) : get_result(&reply);
    give(cl);
    return out;
}

static PyObject *client_put(Client *cl, PyObject *args, PyObject *kw)
{
    static char *kwlist[] = {"key", "lease", "fd", "serializer", "seconds", "func", "ns", "staging", NULL};
    PyObject *key, *func, *ns, *staging = Py_None;
    unsigned long long lease;
    int fd;
    unsigned int serializer;
    double seconds;
    if (!PyArg_ParseTupleAndKeywords(args, kw, "OKiIdUU|O:put", kwlist, &key, &lease, &fd,
                                     &serializer, &seconds, &func, &ns, &staging))
        return NULL;
    irohds_ipc_msg req, reply;
    irohds_ipc_msg_init(&req, IROHDS_IPC_PUT);
    if (set_key(&req, IROHDS_TAG_KEY, key, "key") < 0 || set_text(&req, IROHDS_TAG_FUNC, func) < 0 ||
        set_text(&req, IROHDS_TAG_NS, ns) < 0 ||
        (staging != Py_None && set_text(&req, IROHDS_TAG_STAGING, staging) < 0))
        return NULL;
    req.lease = lease;
    req.serializer = serializer;
    req.seconds = seconds;
    req.present |= (1u << IROHDS_TAG_LEASE) | (1u << IROHDS_TAG_SERIALIZER) |
                   (1u << IROHDS_TAG_SECONDS) | (1u << IROHDS_TAG_FD);
    int t = cl->timeout_ms > PUT_TIMEOUT_MIN_MS / 10 ? cl->timeout_ms * 10 : PUT_TIMEOUT_MIN_MS;
    if (simple_call(cl, &req, fd, &reply, t) < 0)
        return NULL;
    PyObject *out;
    if (!IROHDS_IPC_HAS(&reply, IROHDS_TAG_HASH) || !IROHDS_IPC_HAS(&reply, IROHDS_TAG_SIZE))
        out = PyErr_Format(PyExc_ValueError, "PUT reply without hash and size");
    else
        out = Py_BuildValue("(y#K)", (const char *)reply.hash, (Py_ssize_t)32,
                            (unsigned long long)reply.size);
    give(cl);
    return out;
}

/* Requests answered by a bare OK, optionally with a count or text. */
enum { WANT_NONE, WANT_COUNT, WANT_TEXT };

static PyObject *ok_call(Client *cl, irohds_ipc_msg *req, int want)
{
    irohds_ipc_msg reply;
    if (simple_call(cl, req, -1, &reply, cl->timeout_ms) < 0)
        return NULL;
    PyObject *out;
    if (want == WANT_COUNT)
        out = PyLong_FromUnsignedLongLong(IROHDS_IPC_HAS(&reply, IROHDS_TAG_COUNT) ? reply.count : 0);
    else if (want == WANT_TEXT)
        out = IROHDS_IPC_HAS(&reply, IROHDS_TAG_TEXT) ? str_of(reply.text) : PyUnicode_FromString("");
    else
        out = (Py_INCREF(Py_None), Py_None);
    give(cl);
    return out;
}

static PyObject *client_release(Client *cl, PyObject *const *args, Py_ssize_t nargs)
{
    irohds_ipc_msg req;
    irohds_ipc_msg_init(&req, IROHDS_IPC_RELEASE);
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "release(key, lease) takes 2 arguments");
        return NULL;
    }
    if (set_key(&req, IROHDS_TAG_KEY, args[0], "key") < 0)
        return NULL;
    req.lease = PyLong_AsUnsignedLongLong(args[1]);
    if (PyErr_Occurred())
        return NULL;
    req.present |= 1u << IROHDS_TAG_LEASE;
    return ok_call(cl, &req, WANT_NONE);
}

static PyObject *text_call(Client *cl, irohds_ipc_type type, int tag, PyObject *arg, int want)
{
    irohds_ipc_msg req;
    irohds_ipc_msg_init(&req, type);
    if (!PyUnicode_Check(arg)) {
        PyErr_SetString(PyExc_TypeError, "expected a str");
        return NULL;
    }
    if (set_text(&req, tag, arg) < 0)
        return NULL;
    return ok_call(cl, &req, want);
}

static PyObject *client_evict(Client *cl, PyObject *func)
{
    return text_call(cl, IROHDS_IPC_EVICT, IROHDS_TAG_FUNC, func, WANT_COUNT);
}

static PyObject *client_join(Client *cl, PyObject *ns)
{
    return text_call(cl, IROHDS_IPC_JOIN, IROHDS_TAG_NS, ns, WANT_NONE);
}

static PyObject *bare_call(Client *cl, irohds_ipc_type type, int want)
{
    irohds_ipc_msg req;
    irohds_ipc_msg_init(&req, type);
    return ok_call(cl, &req, want);
}

static PyObject *client_info(Client *cl, PyObject *unused)
{
    (void)unused;
    return bare_call(cl, IROHDS_IPC_INFO, WANT_TEXT);
}

static PyObject *client_gc(Client *cl, PyObject *unused)
{
    (void)unused;
    return bare_call(cl, IROHDS_IPC_GC, WANT_COUNT);
}

static PyObject *client_stop(Client *cl, PyObject *unused)
{
    (void)unused;
    return bare_call(cl, IROHDS_IPC_STOP, WANT_NONE);
}

static PyObject *client_corrupt(Client *cl, PyObject *blob)
{
    irohds_ipc_msg req;
    irohds_ipc_msg_init(&req, IROHDS_IPC_CORRUPT);
    if (set_key(&req, IROHDS_TAG_HASH, blob, "blob") < 0)
        return NULL;
    return ok_call(cl, &req, WANT_NONE);
}

static PyObject *client_repr(Client *cl)
{
    return PyUnicode_FromFormat("<irohds Client %R%s>", cl->path, cl->c ? "" : " closed");
}

static PyMethodDef client_methods[] = {
    {"hello", (PyCFunction)client_hello, METH_NOARGS, "hello() -> dict of the daemon's HELLO fields"},
    {"get", (PyCFunction)(void (*)(void))client_get, METH_VARARGS | METH_KEYWORDS,
     "get(key, func, ns, force=False, timeout=None) -> ('hit', record) | ('lease', id)"},
    {"put", (PyCFunction)(void (*)(void))client_put, METH_VARARGS | METH_KEYWORDS,
     "put(key, lease, fd, serializer, seconds, func, ns, staging=None) -> (blob, size)"},
    {"release", (PyCFunction)(void (*)(void))client_release, METH_FASTCALL, "release(key, lease)"},
    {"evict", (PyCFunction)client_evict, METH_O, "evict(func) -> results removed"},
    {"info", (PyCFunction)client_info, METH_NOARGS, "info() -> JSON text"},
    {"gc", (PyCFunction)client_gc, METH_NOARGS, "gc() -> bytes freed"},
    {"join", (PyCFunction)client_join, METH_O, "join(ns)"},
    {"corrupt", (PyCFunction)client_corrupt, METH_O, "corrupt(blob): report a blob failing its hash"},
    {"stop", (PyCFunction)client_stop, METH_NOARGS, "stop the daemon"},
    {"close", (PyCFunction)client_close, METH_NOARGS, "close the connection"},
    {NULL, NULL, 0, NULL},
};

PyTypeObject irohds_client_py_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "irohds._native.Client",
    .tp_basicsize = sizeof(Client),
    .tp_dealloc = (destructor)client_dealloc,
    .tp_repr = (reprfunc)client_repr,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Client(socket_path, timeout=5.0): blocking daemon client (see _native.pyi)",
    .tp_methods = client_methods,
    .tp_new = client_new,
};
