"""Result (de)serialization: pickle protocol 5 with out-of-band buffers.

A result is written as one container file (docs/results.md, written by C:
_native.write_result): the pickle stream, then every large buffer the pickler
hands out of band (numpy arrays, PickleBuffer objects) 64-byte aligned.  The
file is created in the data dir's staging area (``<staging>/put-<random>``,
O_RDWR) and its descriptor passed to the daemon with the PUT, so the bytes
are written once and never cross the socket.

Loading maps the stored blob read-only (_native.Store.open_result) and
unpickles with ``buffers=`` the views into that mapping: a numpy array in a
result comes back as a read-only array over the mapped blob, with no copy,
in microseconds whatever its size.  The mapping lives as long as any array
that uses it.  FileRefs inside the result are bound, while unpickling, to
the result's materialized files dir ``<files>/<hex key>/``.

A result downloaded from a peer is loaded by load_remote: with plain pickle
when its producer is trusted, else with the restricted unpickler
(_restricted: plain data only, the same zero-copy buffers), and in both
cases its FileRefs must stay inside their files dir.
"""
from __future__ import annotations

import os
import pickle
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, List, Tuple

from irohds import _native
from irohds._fileref import _BIND, _REMOTE


def create_put_file(staging_root: str) -> Tuple[int, str]:
    """A fresh file for a result container: (fd opened O_RDWR, its path)."""
    os.makedirs(staging_root, mode=0o700, exist_ok=True)
    path = os.path.join(staging_root, "put-" + os.urandom(16).hex())
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0)
    return os.open(path, flags, 0o600), path


def dump(value: Any, fd: int) -> int:
    """Serialize value into the open file fd; returns the bytes written.
    Raises whatever pickle raises for a value it cannot serialize."""
    buffers: List[pickle.PickleBuffer] = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    views = []
    for buf in buffers:
        try:
            views.append(buf.raw())
        except BufferError:  # not contiguous: one copy, still out of band
            views.append(memoryview(bytes(buf)))
    return _native.write_result(fd, data, views)


def load(store: Any, blob: bytes, size: int, files_dir: str) -> Any:
    """Unpickle a stored result from its read-only mapping.

    ValueError('corrupt ...') from open_result means the blob failed its hash
    or the container is malformed; FileNotFoundError that it was evicted."""
    data, buffers = store.open_result(blob, size)
    token = _BIND.set(files_dir)  # what bound_to() does, without a generator per hit
    try:
        return pickle.loads(data, buffers=buffers)
    finally:
        _BIND.reset(token)


def load_remote(store: Any, blob: bytes, size: int, files_dir: str, trusted: bool) -> Any:
    """load() for a result from a peer.  Untrusted: _restricted.Refused when
    the stream holds anything but plain data (nothing of it has run)."""
    data, buffers = store.open_result(blob, size)
    token, remote = _BIND.set(files_dir), _REMOTE.set(True)
    try:
        if trusted:
            return pickle.loads(data, buffers=buffers)
        from irohds import _restricted

        return _restricted.loads(data, buffers)
    finally:
        _REMOTE.reset(remote)
        _BIND.reset(token)


def files_dir_for(files_root: str, key: bytes) -> str:
    """Where the daemon materializes the FileRef files of the result for key."""
    return os.path.join(files_root, key.hex())
