"""A tiny stand-in for irohds-daemon that speaks the frames of docs/ipc.md.

For what the real daemon cannot produce yet (WAIT with FETCH, PROGRESS,
EXPLAIN answers).  Written from docs/ipc.md, not from the C code, so a test
against it also checks that the client follows the document:

    frame = u32 body_length | body                  (little-endian)
    body  = u8 version (1) | u8 type | u16 0 | u32 request_id | field*
    field = u8 tag | u32 length | bytes

It listens on the data dir's socket path, answers HELLO itself and hands
every other request to ``handler(conn, msg)``, which sends whatever frames
the test wants with ``conn.send(type, id, fields)``.  Each connection is
served by its own thread; ``requests`` records every request received.
"""
from __future__ import annotations

import os
import socket
import struct
import threading
from typing import Any, Callable, Dict, List, Optional

# message types and field tags (docs/ipc.md)
HELLO, GET, PUT, RELEASE, INFO, EXPLAIN, PEERS = 1, 2, 3, 4, 6, 11, 12
OK, ERROR, HIT, LEASE, WAIT, PROGRESS = 64, 65, 66, 67, 68, 69
KEY, HASH, T_LEASE, SIZE, COUNT, SECONDS, SERIALIZER, CODE = 1, 2, 3, 4, 5, 6, 7, 8
FUNC, NS, TEXT, FLAGS, FD, PATH, NODE, PID = 9, 10, 11, 13, 14, 15, 16, 17
WAIT_FETCH, WAIT_PEER, HIT_REMOTE = 1, 2, 1

FIXED = {KEY: 32, HASH: 32, T_LEASE: 8, SIZE: 8, COUNT: 8, SECONDS: 8, SERIALIZER: 4,
         CODE: 4, FLAGS: 4, NODE: 32, PID: 4}


def u64(v: int) -> bytes:
    return struct.pack("<Q", v)


def u32(v: int) -> bytes:
    return struct.pack("<I", v)


def i32(v: int) -> bytes:
    return struct.pack("<i", v)


def f64(v: float) -> bytes:
    return struct.pack("<d", v)


def frame(mtype: int, rid: int, fields: Dict[int, bytes]) -> bytes:
    body = struct.pack("<BBHI", 1, mtype, 0, rid)
    for tag in sorted(fields):
        body += struct.pack("<BI", tag, len(fields[tag])) + fields[tag]
    return struct.pack("<I", len(body)) + body


class Msg:
    def __init__(self, mtype: int, rid: int, fields: Dict[int, bytes]) -> None:
        self.type, self.id, self.fields = mtype, rid, fields

    def text(self, tag: int) -> str:
        return self.fields[tag].decode()


def parse_body(body: bytes) -> Msg:
    version, mtype, reserved, rid = struct.unpack_from("<BBHI", body)
    assert version == 1 and reserved == 0, "client sent a bad header"
    fields: Dict[int, bytes] = {}
    off = 8
    while off < len(body):
        tag, n = struct.unpack_from("<BI", body, off)
        off += 5
        fields[tag] = body[off:off + n]
        assert len(fields[tag]) == n, "field runs past the body"
        if tag in FIXED:
            assert n == FIXED[tag], f"tag {tag} has {n} bytes"
        off += n
    return Msg(mtype, rid, fields)


class Conn:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.buf = b""
        self.closed = threading.Event()

    def send(self, mtype: int, rid: int, fields: Optional[Dict[int, bytes]] = None) -> bool:
        """Send one frame; False when the client has gone."""
        try:
            self.sock.sendall(frame(mtype, rid, fields or {}))
            return True
        except OSError:
            self.closed.set()
            return False

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self) -> Optional[Msg]:
        while True:
            if len(self.buf) >= 4:
                (n,) = struct.unpack_from("<I", self.buf)
                if len(self.buf) >= 4 + n:
                    body, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return parse_body(body)
            # a PUT's descriptor arrives as SCM_RIGHTS: take it and close it
            data, fds, _, _ = socket.recv_fds(self.sock, 65536, 4)
            for fd in fds:
                os.close(fd)
            if not data:
                self.closed.set()
                return None
            self.buf += data


Handler = Callable[[Conn, Msg], None]


class FakeDaemon:
    """Serve socket_path until stop(); node is the id HELLO reports."""

    def __init__(self, socket_path: str, handler: Handler, node: bytes = b"\x07" * 32) -> None:
        self.path = socket_path
        self.handler = handler
        self.node = node
        self.requests: List[Msg] = []
        self.conns: List[Conn] = []
        os.makedirs(os.path.dirname(socket_path), mode=0o700, exist_ok=True)
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self.lsock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.lsock.bind(socket_path)
        self.lsock.listen(16)
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while True:
            try:
                sock, _ = self.lsock.accept()
            except OSError:
                return
            conn = Conn(sock)
            self.conns.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: Conn) -> None:
        try:
            while True:
                msg = conn.recv()
                if msg is None:
                    return
                self.requests.append(msg)
                if msg.type == HELLO:
                    conn.send(HELLO, msg.id, {TEXT: b"irohds-daemon fake", PATH: b"/nowhere",
                                              NODE: self.node, PID: u32(os.getpid())})
                else:
                    self.handler(conn, msg)
        except OSError:
            conn.closed.set()
        finally:
            conn.sock.close()

    def stop(self) -> None:
        self.lsock.close()
        for conn in self.conns:
            try:
                conn.sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        try:
            os.unlink(self.path)
        except OSError:
            pass


def error(conn: Conn, msg: Msg, code: int, text: str) -> None:
    conn.send(ERROR, msg.id, {CODE: i32(code), TEXT: text.encode()})


def hit_fields(key: bytes, blob: bytes, size: int, producer: bytes, remote: bool,
               func: str = "m.f", ns: str = "default") -> Dict[int, bytes]:
    return {KEY: key, HASH: blob, SIZE: u64(size), SERIALIZER: u32(1), SECONDS: f64(2.0),
            FUNC: func.encode(), NS: ns.encode(), NODE: producer,
            FLAGS: u32(HIT_REMOTE if remote else 0)}


def progress_fields(key: bytes, done: int, total: int) -> Dict[int, bytes]:
    return {KEY: key, SIZE: u64(total), COUNT: u64(done)}
