/*
 * native.h: the map of the irohds._native extension (internal, not installed).
 *
 * The extension is one shared object built from one file per concept:
 *
 *   module.c     module init, BLAKE3 functions, paths(), config(), errors
 *   canon.c      canonical encoding of arguments, streamed into BLAKE3
 *   bind.c       Binder: a call's args -> (name, value) pairs like Python
 *   memo.c       Memo: the tier-0 wrapper type (vectorcall, in-process dict)
 *   result.c     the result container (write_result/read_result) and the
 *                read-only mapping object the returned memoryviews live on
 *   store_py.c   Store: the read-only store reader (src/store/store.h)
 *   client_py.c  Client: the blocking daemon client (src/ipc/ipc.h)
 *
 * Types are static (single-phase init): the tier-0 hit path then needs no
 * module-state lookup, and the extension is never loaded twice in one
 * interpreter anyway.  Each file exports its type and helpers under an
 * irohds_<file>_ prefix declared here; everything else is static.
 */
#ifndef IROHDS_NATIVE_H
#define IROHDS_NATIVE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <stddef.h>
#include <stdint.h>

/* Hash inputs above this size are hashed with the GIL released: below it the
 * release/reacquire costs more than it lets other threads gain. */
#define IROHDS_NATIVE_NOGIL_BYTES (64 * 1024)

/* ------------------------------------------------------------ module.c */

/* Raise the Python exception for a negative errno (OSError subclass chosen
 * by errno, like PyErr_SetFromErrno).  Returns NULL for `return` chaining. */
PyObject *irohds_module_raise_errno(int neg_errno, const char *what);

/* Fill out[len] from a 32-byte bytes-like argument; -1 with TypeError/ValueError. */
int irohds_module_get_hash32(PyObject *obj, uint8_t out[32], const char *what);

/* -------------------------------------------------------------- canon.c */

PyObject *irohds_canon_canonical(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *irohds_canon_call_key(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/* --------------------------------------------------------------- bind.c */

extern PyTypeObject irohds_bind_type;

/* --------------------------------------------------------------- memo.c */

extern PyTypeObject irohds_memo_type;
int irohds_memo_init_module(void); /* the kwargs marker object */

/* ------------------------------------------------------------- result.c */

extern PyTypeObject irohds_result_mapping_type;

PyObject *irohds_result_write(PyObject *self, PyObject *const *args, Py_ssize_t nargs);
PyObject *irohds_result_read(PyObject *self, PyObject *data);
PyObject *irohds_result_map(PyObject *self, PyObject *const *args, Py_ssize_t nargs);

/*
 * Map fd (size bytes, already flock()ed by the caller) and parse it.  On
 * success the mapping object owns fd (closes it when the last view goes) and
 * the (pickle, [buffers]) tuple is returned.  On failure fd is left open for
 * the caller to close.  expect_hash, when non-NULL, is checked for blobs up
 * to IROHDS_NATIVE_NOGIL_BYTES.
 */
PyObject *irohds_result_open_fd(int fd, uint64_t size, const uint8_t *expect_hash);

/* Read (not map) a small result of size <= IROHDS_NATIVE_NOGIL_BYTES from fd,
 * check its hash when expect_hash is given, parse it.  fd stays the caller's. */
PyObject *irohds_result_read_small(int fd, uint64_t size, const uint8_t *expect_hash);

/* ----------------------------------------------------------- store_py.c */

extern PyTypeObject irohds_store_py_type;

/* ---------------------------------------------------------- client_py.c */

extern PyTypeObject irohds_client_py_type;

#endif
