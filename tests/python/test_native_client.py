"""Client against a real daemon (conftest's IROHDS_HOME per test; the daemon
binary is conftest.DAEMON, IROHDS_TEST_DAEMON overrides it): hello, the
GET -> LEASE / WAIT -> HIT protocol, put with fd passing, release, evict,
info, gc, join, stop, and the documented exceptions."""
from __future__ import annotations

import json
import os
import pickle
import threading
import time

import pytest

from irohds import _native

from conftest import DAEMON

import blake3 as blake3_pkg  # independent oracle (PyPI), installed by scripts/deps.sh

pytestmark = pytest.mark.skipif(not os.path.exists(DAEMON), reason="irohds-daemon not built")


def result_file(tmp_path, value, name="res"):
    path = tmp_path / name
    buffers = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    _native.write_result(fd, data, buffers)
    return fd, path


def test_no_daemon_is_connection_error(home):
    with pytest.raises(ConnectionError):
        _native.Client(str(home / "nothing.sock"), 1.0)


def test_hello(sock, home):
    c = _native.Client(sock)
    h = c.hello()
    assert isinstance(h["pid"], int) and h["pid"] > 0
    assert os.path.realpath(h["data_dir"]) == os.path.realpath(str(home))
    assert len(h["node"]) == 64
    c.close()
    c.close()
    with pytest.raises(ValueError):
        c.hello()


def test_a_daemon_with_no_peers_leases_a_miss_at_once(sock):
    """Alone in its namespace (conftest's config: no discovery, no bootstrap
    peers), the daemon has nobody to ask, so a miss is leased without a
    network wait.  Each GET once waited 3 s (the DHT address-lookup window,
    entered on an uninitialised count of providers being resolved); 20 of
    them in well under the time of one such wait shows none does."""
    c = _native.Client(sock)
    try:
        c.get(os.urandom(32), "mod.f", "default")  # the first joins the namespace
        t = time.monotonic()
        for _ in range(20):
            kind, _lease = c.get(os.urandom(32), "mod.f", "default", timeout=30)
            assert kind == "lease"
        assert time.monotonic() - t < 2.0
    finally:
        c.close()


def test_lease_put_hit(sock, tmp_path):
    a, b = _native.Client(sock), _native.Client(sock)
    key = os.urandom(32)
    kind, lease = a.get(key, "mod.f", "default")
    assert kind == "lease" and isinstance(lease, int)

    got = {}

    def waiter():
        got["r"] = b.get(key, "mod.f", "default", timeout=20)
    t = threading.Thread(target=waiter)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()  # b is WAITing while a holds the lease (GIL released)

    fd, path = result_file(tmp_path, {"v": 42})
    try:
        blob, size = a.put(key, lease, fd, _native.SER_PICKLE5, 2.5, "mod.f", "default")
    finally:
        os.close(fd)
    assert blob == blake3_pkg.blake3(path.read_bytes()).digest()
    assert size == path.stat().st_size
    t.join(20)
    kind, rec = got["r"]
    assert kind == "hit"
    assert rec["blob"] == blob and rec["size"] == size
    assert rec["serializer"] == _native.SER_PICKLE5
    assert rec["func"] == "mod.f"

    # tier 1 sees it with no daemon round trip
    st = _native.Store(_native.paths()["store_dir"])
    pk, bufs = st.open_result(blob, size)
    assert pickle.loads(pk, buffers=bufs) == {"v": 42}

    assert a.get(key, "mod.f", "default")[0] == "hit"
    kind, lease2 = a.get(key, "mod.f", "default", force=True)
    assert kind == "lease"
    a.release(key, lease2)
    assert a.evict("mod.f") == 1
    assert st.lookup(key) is None  # each lookup reads the current index


def test_wait_timeout_gives_up_its_place(sock):
    """A GET that times out while queued closes its connection: left open, the
    daemon would later promote the dead request to lease holder, and every
    other caller of the key would wait for a computation nobody runs."""
    a, b = _native.Client(sock), _native.Client(sock)
    key = os.urandom(32)
    kind, lease = a.get(key, "m.g", "default")
    assert kind == "lease"
    t0 = time.monotonic()
    with pytest.raises(TimeoutError):
        b.get(key, "m.g", "default", timeout=0.3)
    assert 0.25 < time.monotonic() - t0 < 5
    assert b.closed and not a.closed
    with pytest.raises(ValueError, match="closed"):
        b.hello()
    a.release(key, lease)
    # nobody else is queued: the next caller gets the lease at once
    kind, _ = _native.Client(sock).get(key, "m.g", "default", timeout=5)
    assert kind == "lease"


def test_release_hands_lease_over(sock):
    a, b = _native.Client(sock), _native.Client(sock)
    key = os.urandom(32)
    _, lease = a.get(key, "m.h", "default")
    out = {}
    t = threading.Thread(target=lambda: out.update(r=b.get(key, "m.h", "default", timeout=20)))
    t.start()
    time.sleep(0.2)
    a.release(key, lease)
    t.join(20)
    assert out["r"][0] == "lease"


def test_admin_calls(sock):
    c = _native.Client(sock)
    info = json.loads(c.info())
    assert isinstance(info, dict)
    assert isinstance(c.gc(), int)
    assert c.join("lab") is None
    assert c.evict("nothing.here") == 0
    c.corrupt(bytes(32))


def test_error_reply_is_oserror(sock, tmp_path):
    c = _native.Client(sock)
    fd, _ = result_file(tmp_path, 1)
    try:
        with pytest.raises(OSError) as ei:
            c.put(os.urandom(32), 12345, fd, _native.SER_PICKLE5, 1.0, "m.f", "default")
    finally:
        os.close(fd)
    assert not isinstance(ei.value, (ConnectionError, TimeoutError))
    assert ei.value.errno is not None


def test_stop_then_connection_error(sock):
    c = _native.Client(sock)
    c.stop()
    time.sleep(0.3)
    with pytest.raises(ConnectionError):
        c.hello()
