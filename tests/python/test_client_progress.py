"""Client.get while the daemon downloads: WAIT(FETCH), any number of
PROGRESS frames (docs/ipc.md), then HIT or LEASE.  A stand-in daemon on a
Unix socket sends exactly that sequence, so the test does not depend on a
download being slow enough to produce PROGRESS."""
from __future__ import annotations

import os
import socket
import struct
import tempfile
import threading

from irohds import _native

WAIT, PROGRESS, LEASE = 68, 69, 67
TAG_KEY, TAG_LEASE, TAG_SIZE, TAG_COUNT, TAG_FLAGS = 1, 3, 4, 5, 13


def frame(mtype: int, req_id: int, fields) -> bytes:
    body = struct.pack("<BBHI", 1, mtype, 0, req_id)
    for tag, value in fields:
        body += struct.pack("<BI", tag, len(value)) + value
    return struct.pack("<I", len(body)) + body


def read_frame(conn: socket.socket) -> bytes:
    buf = b""
    while len(buf) < 4:
        buf += conn.recv(4 - len(buf))
    (n,) = struct.unpack("<I", buf)
    body = b""
    while len(body) < n:
        body += conn.recv(n - len(body))
    return body


def test_progress_frames_during_a_wait_are_skipped() -> None:
    key = os.urandom(32)
    with tempfile.TemporaryDirectory(prefix="irp-") as d:
        path = os.path.join(d, "s")
        srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        srv.bind(path)
        srv.listen(1)

        def daemon() -> None:
            conn, _ = srv.accept()
            with conn:
                body = read_frame(conn)
                _, mtype, _, req_id = struct.unpack_from("<BBHI", body)
                assert mtype == 2  # GET
                conn.sendall(frame(WAIT, req_id, [(TAG_KEY, key),
                                                  (TAG_FLAGS, struct.pack("<I", 1))]))
                for done in (0, 1 << 20, 2 << 20):
                    conn.sendall(frame(PROGRESS, req_id, [
                        (TAG_KEY, key), (TAG_SIZE, struct.pack("<Q", 4 << 20)),
                        (TAG_COUNT, struct.pack("<Q", done))]))
                conn.sendall(frame(LEASE, req_id, [(TAG_KEY, key),
                                                   (TAG_LEASE, struct.pack("<Q", 77))]))
                conn.recv(1)  # until the client closes

        t = threading.Thread(target=daemon, daemon=True)
        t.start()
        c = _native.Client(path)
        try:
            assert c.get(key, "m.f", "lab", timeout=10) == ("lease", 77)
        finally:
            c.close()
            t.join(5)
            srv.close()
