"""A real daemon fed malformed, truncated, oversized and out-of-order IPC frames
over raw sockets.  What each case must get comes from docs/ipc.md (the
normative spec), not from the daemon's output: an ERROR reply or a closed
connection, never a crash or a hang, and afterwards the daemon still answers
and the store still holds what it held."""
from __future__ import annotations

import errno
import os
import pickle
import socket
import struct
import time
from typing import List, Optional, Tuple


from irohds import _native


HELLO, GET, PUT, RELEASE = 1, 2, 3, 4
OK, ERROR, LEASE = 64, 65, 67
T_KEY, T_LEASE, T_CODE, T_FUNC, T_FD = 1, 3, 8, 9, 14


def field(tag: int, value: bytes) -> bytes:
    return struct.pack("<BI", tag, len(value)) + value


def frame(ftype: int, fields: bytes = b"", req_id: int = 1, version: int = 1) -> bytes:
    body = struct.pack("<BBHI", version, ftype, 0, req_id) + fields
    return struct.pack("<I", len(body)) + body


def connect(path: str) -> socket.socket:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    # Blocking connect, as the real client does: a non-blocking one fails with
    # EAGAIN while the daemon's listen backlog is full instead of waiting.
    s.connect(path)
    s.settimeout(5)
    return s


def read_frame(s: socket.socket) -> Optional[Tuple[int, int, dict]]:
    """One reply frame as (type, id, {tag: bytes}), or None when the daemon
    closed the connection."""
    def exact(n: int) -> Optional[bytes]:
        buf = b""
        while len(buf) < n:
            chunk = s.recv(n - len(buf))
            if not chunk:
                return None
            buf += chunk
        return buf
    head = exact(4)
    if head is None:
        return None
    (length,) = struct.unpack("<I", head)
    body = exact(length)
    assert body is not None, "daemon closed in the middle of a frame"
    version, ftype, _pad, req_id = struct.unpack_from("<BBHI", body)
    assert version == 1
    fields, off = {}, 8
    while off < len(body):
        tag, flen = struct.unpack_from("<BI", body, off)
        fields[tag] = body[off + 5: off + 5 + flen]
        off += 5 + flen
    return ftype, req_id, fields


def error_code(fields: dict) -> int:
    return struct.unpack("<i", fields[T_CODE])[0]


def closed(s: socket.socket) -> bool:
    try:
        return s.recv(1) == b""
    except ConnectionResetError:
        return True


def put_one(path: str, tmp_path) -> Tuple[bytes, bytes, int]:
    """Store one result through the real client; returns (key, blob, size)."""
    c = _native.Client(path)
    key = os.urandom(32)
    kind, lease = c.get(key, "bad.input", "default")
    assert kind == "lease"
    data = pickle.dumps({"kept": True}, protocol=5)
    fd = os.open(tmp_path / "res", os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _native.write_result(fd, data, [])
        blob, size = c.put(key, lease, fd, _native.SER_PICKLE5, 1.0, "bad.input", "default")
    finally:
        os.close(fd)
        c.close()
    return key, blob, size


def assert_daemon_healthy(path: str, key: bytes, blob: bytes, size: int) -> None:
    c = _native.Client(path, 5.0)
    assert c.hello()["pid"] > 0
    kind, rec = c.get(key, "bad.input", "default")
    assert kind == "hit" and rec["blob"] == blob
    c.close()
    st = _native.Store(_native.paths()["store_dir"])
    pk, bufs = st.open_result(blob, size)
    assert pickle.loads(pk, buffers=bufs) == {"kept": True}


def test_wrong_version_gets_error_then_close(sock):
    s = connect(sock)
    s.sendall(frame(HELLO, version=2))
    reply = read_frame(s)
    assert reply is not None and reply[0] == ERROR
    assert error_code(reply[2]) == -errno.EPROTONOSUPPORT
    assert closed(s)


def test_oversized_length_is_closed_without_reply(sock):
    s = connect(sock)
    s.sendall(struct.pack("<I", (1 << 20) + 1))  # one byte over the 1 MiB limit
    assert closed(s)
    s = connect(sock)
    s.sendall(struct.pack("<I", 0xFFFFFFFF))
    assert closed(s)


def test_malformed_fields_get_error_then_close(sock):
    cases: List[bytes] = [
        frame(GET, field(T_KEY, b"\x00" * 31)),                        # KEY must be 32 bytes
        frame(GET, field(T_KEY, b"\x00" * 32) + field(T_KEY, b"\x01" * 32)),  # repeated tag
        frame(GET, struct.pack("<BI", T_FUNC, 100) + b"m.f"),          # field runs past the body
        struct.pack("<I", 4) + b"\x01\x01\x00\x00",                    # body shorter than a header
    ]
    for bad in cases:
        s = connect(sock)
        s.sendall(bad)
        reply = read_frame(s)
        assert reply is not None and reply[0] == ERROR, bad.hex()
        assert reply[1] == 0  # malformed frames are answered with request id 0
        assert closed(s), bad.hex()


def test_unknown_type_and_out_of_order_requests_keep_the_connection(sock):
    s = connect(sock)
    key = os.urandom(32)
    s.sendall(frame(42, req_id=5))  # unknown request type
    ftype, rid, fields = read_frame(s)
    assert (ftype, rid, error_code(fields)) == (ERROR, 5, -errno.EOPNOTSUPP)
    # RELEASE of a lease nobody was given
    s.sendall(frame(RELEASE, field(T_KEY, key) + field(T_LEASE, struct.pack("<Q", 12345)), 6))
    ftype, rid, fields = read_frame(s)
    assert (ftype, rid, error_code(fields)) == (ERROR, 6, -errno.ESTALE)
    # PUT that announces a descriptor but sends none
    s.sendall(frame(PUT, field(T_KEY, key) + field(T_FUNC, b"m.f") + field(T_FD, b""), 7))
    ftype, rid, fields = read_frame(s)
    assert (ftype, rid, error_code(fields)) == (ERROR, 7, -errno.EBADF)
    # GET without its KEY
    s.sendall(frame(GET, field(T_FUNC, b"m.f"), 8))
    ftype, rid, fields = read_frame(s)
    assert (ftype, rid, error_code(fields)) == (ERROR, 8, -errno.EINVAL)
    # still the same connection, still served
    s.sendall(frame(HELLO, req_id=9))
    ftype, rid, _ = read_frame(s)
    assert (ftype, rid) == (HELLO, 9)


def test_garbage_truncation_and_stalls_leave_daemon_and_store_intact(sock, tmp_path):
    key, blob, size = put_one(sock, tmp_path)
    rng = __import__("random").Random(1234)
    for _ in range(200):  # random bytes, random lengths
        s = connect(sock)
        s.sendall(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 300))))
        s.close()
    for cut in range(1, 40):  # every truncation of a valid GET, then hang up
        s = connect(sock)
        s.sendall(frame(GET, field(T_KEY, key) + field(T_FUNC, b"bad.input"))[:cut])
        s.close()
    stalled = connect(sock)  # half a frame, then silence: must not block others
    stalled.sendall(frame(HELLO)[:7])
    t0 = time.monotonic()
    assert_daemon_healthy(sock, key, blob, size)
    assert time.monotonic() - t0 < 5
    stalled.close()
