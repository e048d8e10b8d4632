/*
 * result.c: the result container (docs/results.md is normative).
 *
 * A result is stored as pickle protocol 5 with its out-of-band buffers
 * (numpy arrays' bytes) kept outside the pickle stream:
 *
 *   header   "IRDSRES1" | u32 nbuf | u32 flags (0) | u64 pickle off | u64 pickle len
 *            | nbuf x (u64 off, u64 len)                 all little-endian
 *   pickle   right after the header
 *   buffers  each at a 64-byte aligned offset, in order
 *
 * Aligned buffers make the arrays that pickle.loads(..., buffers=...)
 * rebuilds aligned views of the file: a hit on a 100 MB array maps the blob
 * and copies nothing (DESIGN.md: ~5 us instead of ~60 ms in-band).
 *
 * Reading maps the blob read-only into a small exporter object
 * (ResultMapping) and hands out memoryviews onto it; the mapping, and the
 * shared flock() that keeps gc away from the blob, last until the last view
 * (and so the last array built on one) is gone.  Every offset and length is
 * bounds-checked: a blob may come from a peer.
 */
#include "native.h"
#include "store/store.h"

#include <errno.h>
#include <limits.h>
#include <string.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>

#include "hash/blake3.h"

#define MAGIC "IRDSRES1"
#define HEADER_FIXED 32
#define ENTRY_SIZE 16
#define ALIGN 64
#define MAX_BUFFERS (1u << 20) /* far above any real pickle; bounds the header */

typedef struct {
    uint64_t off, len;
} span;

static void put_u32(uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static void put_u64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

static uint32_t get_u32(const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 3; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t get_u64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static uint64_t align_up(uint64_t v)
{
    return (v + ALIGN - 1) & ~(uint64_t)(ALIGN - 1);
}

/* -------------------------------------------------------------- parse */

static int malformed(const char *why)
{
    PyErr_Format(PyExc_ValueError, "corrupt result container: %s", why);
    return -1;
}

/* Check the whole layout of p[0..size); *bufs is PyMem-allocated. */
static int parse(const uint8_t *p, uint64_t size, span *pickle, span **bufs, uint32_t *nbuf)
{
    *bufs = NULL;
    if (size < HEADER_FIXED)
        return malformed("shorter than its header");
    if (memcmp(p, MAGIC, 8) != 0)
        return malformed("bad magic");
    uint32_t n = get_u32(p + 8);
    if (get_u32(p + 12) != 0)
        return malformed("unknown flags");
    if (n > MAX_BUFFERS || n > (size - HEADER_FIXED) / ENTRY_SIZE)
        return malformed("buffer table runs past the end");
    uint64_t header = HEADER_FIXED + (uint64_t)n * ENTRY_SIZE;
    pickle->off = get_u64(p + 16);
    pickle->len = get_u64(p + 24);
    if (pickle->off != header || pickle->len > size - header)
        return malformed("pickle out of bounds");
    span *b = PyMem_Calloc((size_t)n + 1, sizeof *b);
    if (!b) {
        PyErr_NoMemory();
        return -1;
    }
    uint64_t end = header + pickle->len;
    for (uint32_t i = 0; i < n; i++) {
        b[i].off = get_u64(p + HEADER_FIXED + (size_t)i * ENTRY_SIZE);
        b[i].len = get_u64(p + HEADER_FIXED + (size_t)i * ENTRY_SIZE + 8);
        if (b[i].off % ALIGN || b[i].off < end || b[i].off > size || b[i].len > size - b[i].off) {
            PyMem_Free(b);
            return malformed("buffer out of bounds or unaligned");
        }
        end = b[i].off + b[i].len;
    }
    *bufs = b;
    *nbuf = n;
    return 0;
}

/* (pickle view, [buffer views]) as slices of base, a 1-D byte memoryview. */
static PyObject *views(PyObject *base, span pickle, const span *bufs, uint32_t nbuf)
{
    PyObject *list = PyList_New(nbuf);
    if (!list)
        return NULL;
    for (uint32_t i = 0; i < nbuf; i++) {
        PyObject *v = PySequence_GetSlice(base, (Py_ssize_t)bufs[i].off,
                                          (Py_ssize_t)(bufs[i].off + bufs[i].len));
        if (!v) {
            Py_DECREF(list);
            return NULL;
        }
        PyList_SET_ITEM(list, i, v);
    }
    PyObject *pv = PySequence_GetSlice(base, (Py_ssize_t)pickle.off,
                                       (Py_ssize_t)(pickle.off + pickle.len));
    if (!pv) {
        Py_DECREF(list);
        return NULL;
    }
    PyObject *out = PyTuple_Pack(2, pv, list);
    Py_DECREF(pv);
    Py_DECREF(list);
    return out;
}

/* -------------------------------------------------------------- write */

/* writev all of iov[0..n), advancing over short writes; GIL released. */
static int writev_all(int fd, struct iovec *iov, int n, uint64_t *written)
{
    int rc = 0;
    Py_BEGIN_ALLOW_THREADS
    while (n > 0) {
        ssize_t w = writev(fd, iov, n < IOV_MAX ? n : IOV_MAX);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            rc = -errno;
            break;
        }
        *written += (uint64_t)w;
        while (n > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            n--;
        }
        if (n > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    Py_END_ALLOW_THREADS
    return rc;
}

static const uint8_t zeros[ALIGN];

/* Lay out header + iovecs for pickle and buffers (already acquired). */
static int build_iov(uint8_t *hdr, size_t hlen, const Py_buffer *pk, const Py_buffer *bufs,
                     uint32_t n, struct iovec *iov)
{
    memcpy(hdr, MAGIC, 8);
    put_u32(hdr + 8, n);
    put_u32(hdr + 12, 0);
    put_u64(hdr + 16, hlen);
    put_u64(hdr + 24, (uint64_t)pk->len);
    int k = 0;
    iov[k++] = (struct iovec){hdr, hlen};
    iov[k++] = (struct iovec){pk->buf, (size_t)pk->len};
    uint64_t end = hlen + (uint64_t)pk->len;
    for (uint32_t i = 0; i < n; i++) {
        uint64_t off = align_up(end);
        if (off > end)
            iov[k++] = (struct iovec){(void *)zeros, (size_t)(off - end)};
        iov[k++] = (struct iovec){bufs[i].buf, (size_t)bufs[i].len};
        put_u64(hdr + HEADER_FIXED + (size_t)i * ENTRY_SIZE, off);
        put_u64(hdr + HEADER_FIXED + (size_t)i * ENTRY_SIZE + 8, (uint64_t)bufs[i].len);
        end = off + (uint64_t)bufs[i].len;
    }
    return k;
}

static Py_ssize_t acquire_all(PyObject *seq, Py_buffer *bufs)
{
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    for (Py_ssize_t i = 0; i < n; i++) {
        /* Any contiguity: an F-ordered array's PickleBuffer is stored as is
         * and numpy rebuilds it in F order. */
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, i), &bufs[i], PyBUF_ANY_CONTIGUOUS) < 0) {
            while (i > 0)
                PyBuffer_Release(&bufs[--i]);
            return -1;
        }
    }
    return n;
}

PyObject *irohds_result_write(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "write_result(fd, pickled, buffers) takes 3 arguments");
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(args[0]);
    if (fd < 0)
        return NULL;
    PyObject *seq = PySequence_Fast(args[2], "buffers must be a sequence");
    if (!seq)
        return NULL;
    Py_ssize_t n = PySequence_Fast_GET_SIZE(seq);
    if ((size_t)n > MAX_BUFFERS) {
        Py_DECREF(seq);
        return PyErr_Format(PyExc_ValueError, "too many buffers (%zd)", n);
    }
    size_t hlen = HEADER_FIXED + (size_t)n * ENTRY_SIZE;
    Py_buffer pk, *bufs = PyMem_Calloc((size_t)n + 1, sizeof *bufs);
    struct iovec *iov = PyMem_Calloc(2 * (size_t)n + 2, sizeof *iov);
    uint8_t *hdr = PyMem_Malloc(hlen);
    PyObject *out = NULL;
    if (!bufs || !iov || !hdr) {
        PyErr_NoMemory();
    } else if (PyObject_GetBuffer(args[1], &pk, PyBUF_ANY_CONTIGUOUS) == 0) {
        if (acquire_all(seq, bufs) == n) {
            int k = build_iov(hdr, hlen, &pk, bufs, (uint32_t)n, iov);
            uint64_t written = 0;
            int rc = writev_all(fd, iov, k, &written);
            out = rc < 0 ? irohds_module_raise_errno(rc, NULL) : PyLong_FromUnsignedLongLong(written);
            for (Py_ssize_t i = 0; i < n; i++)
                PyBuffer_Release(&bufs[i]);
        }
        PyBuffer_Release(&pk);
    }
    PyMem_Free(bufs);
    PyMem_Free(iov);
    PyMem_Free(hdr);
    Py_DECREF(seq);
    return out;
}

/* --------------------------------------------------------------- read */

static PyObject *byte_view(PyObject *obj)
{
    PyObject *mv = PyMemoryView_FromObject(obj);
    if (!mv)
        return NULL;
    Py_buffer *b = PyMemoryView_GET_BUFFER(mv);
    if (b->ndim == 1 && b->itemsize == 1 && (!b->format || strcmp(b->format, "B") == 0))
        return mv;
    PyObject *cast = PyObject_CallMethod(mv, "cast", "s", "B");
    Py_DECREF(mv);
    return cast;
}

PyObject *irohds_result_read(PyObject *self, PyObject *data)
{
    (void)self;
    PyObject *base = byte_view(data);
    if (!base)
        return NULL;
    Py_buffer *b = PyMemoryView_GET_BUFFER(base);
    span pickle, *bufs;
    uint32_t n;
    PyObject *out = NULL;
    if (parse(b->buf, (uint64_t)b->len, &pickle, &bufs, &n) == 0) {
        out = views(base, pickle, bufs, n);
        PyMem_Free(bufs);
    }
    Py_DECREF(base);
    return out;
}

/* ------------------------------------------------------- the mapping */

typedef struct {
    PyObject_HEAD
    void *addr;
    size_t size;
    int fd; /* holds the shared flock; closed with the mapping */
} Mapping;

static int mapping_getbuffer(Mapping *m, Py_buffer *view, int flags)
{
    return PyBuffer_FillInfo(view, (PyObject *)m, m->addr, (Py_ssize_t)m->size, 1, flags);
}

static void mapping_dealloc(Mapping *m)
{
    if (m->addr)
        munmap(m->addr, m->size);
    if (m->fd >= 0)
        close(m->fd);
    Py_TYPE(m)->tp_free((PyObject *)m);
}

static PyObject *mapping_repr(Mapping *m)
{
    return PyUnicode_FromFormat("<irohds ResultMapping %zu bytes fd %d>", m->size, m->fd);
}

static PyBufferProcs mapping_as_buffer = {
    .bf_getbuffer = (getbufferproc)mapping_getbuffer,
};

PyTypeObject irohds_result_mapping_type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "irohds._native.ResultMapping",
    .tp_basicsize = sizeof(Mapping),
    .tp_dealloc = (destructor)mapping_dealloc,
    .tp_repr = (reprfunc)mapping_repr,
    .tp_as_buffer = &mapping_as_buffer,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "a read-only mapping of a result blob; unmapped when its last view goes",
};

static int check_hash(const void *addr, uint64_t size, const uint8_t *expect)
{
    uint8_t got[IROHDS_BLAKE3_OUT_LEN];
    irohds_blake3(addr, (size_t)size, got);
    if (memcmp(got, expect, sizeof got) == 0)
        return 0;
    char hex[2 * IROHDS_BLAKE3_OUT_LEN + 1];
    for (int i = 0; i < IROHDS_BLAKE3_OUT_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", expect[i]);
    PyErr_Format(PyExc_ValueError, "corrupt blob %s: its bytes do not match its hash", hex);
    return -1;
}

PyObject *irohds_result_open_fd(int fd, uint64_t size, const uint8_t *expect_hash)
{
    if (size < HEADER_FIXED || size > (uint64_t)PY_SSIZE_T_MAX)
        return malformed("size out of range"), NULL;
    void *addr = mmap(NULL, (size_t)size, PROT_READ, MAP_SHARED, fd, 0);
    if (addr == MAP_FAILED)
        return irohds_module_raise_errno(-errno, NULL);
    span pickle, *bufs = NULL;
    uint32_t n;
    if ((expect_hash && size <= IROHDS_NATIVE_NOGIL_BYTES && check_hash(addr, size, expect_hash) < 0) ||
        parse(addr, size, &pickle, &bufs, &n) < 0) {
        munmap(addr, (size_t)size);
        return NULL;
    }
    Mapping *m = PyObject_New(Mapping, &irohds_result_mapping_type);
    if (!m) {
        munmap(addr, (size_t)size);
        PyMem_Free(bufs);
        return NULL;
    }
    m->addr = addr;
    m->size = (size_t)size;
    m->fd = -1; /* not ours until everything below worked */
    PyObject *out = NULL, *base = PyMemoryView_FromObject((PyObject *)m);
    if (base) {
        out = views(base, pickle, bufs, n);
        Py_DECREF(base);
    }
    PyMem_Free(bufs);
    if (out)
        m->fd = fd;
    Py_DECREF(m);
    return out;
}

/*
 * A small result (up to IROHDS_NATIVE_NOGIL_BYTES) is read into a bytes
 * object instead of mapped: open + fstat + pread + close is about half the
 * system calls of flock + mmap + munmap, and a copy holds no lock, so gc has
 * nothing to wait for.  The hash is always checked: small blobs are cheap to
 * re-hash, and this is what catches a corrupted store file on a hit.
 */
/* The store counts on this check to catch torn small blobs it did not sync
 * (IROHDS_INGEST_REFETCHABLE, store/store.h). */
_Static_assert(IROHDS_NATIVE_NOGIL_BYTES >= IROHDS_STORE_SMALL_BLOB,
               "readers must re-hash every blob the store may leave unsynced");

PyObject *irohds_result_read_small(int fd, uint64_t size, const uint8_t *expect_hash)
{
    if (size < HEADER_FIXED || size > IROHDS_NATIVE_NOGIL_BYTES)
        return malformed("size out of range"), NULL;
    PyObject *bytes = PyBytes_FromStringAndSize(NULL, (Py_ssize_t)size);
    if (!bytes)
        return NULL;
    char *p = PyBytes_AS_STRING(bytes);
    size_t got = 0;
    while (got < size) {
        ssize_t r = pread(fd, p + got, (size_t)size - got, (off_t)got);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            Py_DECREF(bytes);
            if (r == 0)
                return malformed("blob shorter than its record"), NULL;
            return irohds_module_raise_errno(-errno, NULL);
        }
        got += (size_t)r;
    }
    PyObject *out = NULL;
    if (!expect_hash || check_hash(p, size, expect_hash) == 0)
        out = irohds_result_read(NULL, bytes);
    Py_DECREF(bytes);
    return out;
}

/*
 * map_result(fd, size, blob=None): open_result for a descriptor the caller
 * already has (a blob fd passed over the socket, a file a test wrote).  The
 * fd is duplicated, so the caller keeps and closes its own.
 */
PyObject *irohds_result_map(PyObject *self, PyObject *const *args, Py_ssize_t nargs)
{
    (void)self;
    if (nargs < 2 || nargs > 3) {
        PyErr_SetString(PyExc_TypeError, "map_result(fd, size, blob=None)");
        return NULL;
    }
    int fd = PyObject_AsFileDescriptor(args[0]);
    if (fd < 0)
        return NULL;
    unsigned long long size = PyLong_AsUnsignedLongLong(args[1]);
    if (size == (unsigned long long)-1 && PyErr_Occurred())
        return NULL;
    uint8_t hash[IROHDS_BLAKE3_OUT_LEN];
    const uint8_t *expect = NULL;
    if (nargs == 3 && args[2] != Py_None) {
        if (irohds_module_get_hash32(args[2], hash, "blob") < 0)
            return NULL;
        expect = hash;
    }
    int dfd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (dfd < 0)
        return irohds_module_raise_errno(-errno, NULL);
    struct stat sb;
    int rc = fstat(dfd, &sb) < 0 || flock(dfd, LOCK_SH | LOCK_NB) < 0 ? -errno : 0;
    if (rc == 0 && (uint64_t)sb.st_size != size) {
        close(dfd);
        return PyErr_Format(PyExc_ValueError, "corrupt result: %lld bytes, expected %llu",
                            (long long)sb.st_size, size);
    }
    if (rc < 0) {
        close(dfd);
        return irohds_module_raise_errno(rc, NULL);
    }
    PyObject *out = irohds_result_open_fd(dfd, size, expect);
    if (!out)
        close(dfd);
    return out;
}
