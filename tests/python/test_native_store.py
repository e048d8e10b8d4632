"""The read-only Store over a store written by the store writer API
(tests/python/helpers/mkstore.c, built as build/<dir>/python/irohds-mkstore).

No daemon: this is tier 1 on its own (lookup, files, open_result's mapping,
hash check and shared lock, touch)."""
from __future__ import annotations

import fcntl
import gc
import os
import pickle
from pathlib import Path

import pytest

from irohds import _native
from storeutil import MKSTORE, ORIGIN_REMOTE, put, write_container

np = pytest.importorskip("numpy")
blake3_pkg = pytest.importorskip("blake3")

pytestmark = pytest.mark.skipif(MKSTORE is None, reason="irohds-mkstore not built")


@pytest.fixture
def store_dir(tmp_path):
    return tmp_path / "store"


def test_missing_store_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        _native.Store(str(tmp_path / "nope"))


def test_lookup_and_open_result(tmp_path, store_dir):
    value = {"arr": np.arange(100_000, dtype=np.float64), "s": "hello"}
    res = tmp_path / "res"
    size = write_container(value, res)
    key = bytes(range(32))
    blob, stored_size = put(store_dir, key, res, func="pkg.mod.f", ns="lab")
    assert stored_size == size
    assert blob == blake3_pkg.blake3(res.read_bytes()).digest()

    st = _native.Store(str(store_dir))
    assert st.lookup(bytes(32)) is None
    rec = st.lookup(key)
    assert rec["blob"] == blob and rec["size"] == size
    assert rec["serializer"] == _native.SER_PICKLE5
    assert rec["compute_seconds"] == 1.5
    assert rec["func"] == "pkg.mod.f" and rec["ns"] == "lab"
    assert rec["nfiles"] == 0 and rec["files_size"] == 0
    assert rec["created_us"] > 0
    assert st.files(key) == []
    path = st.blob_path(blob)
    assert Path(path).read_bytes() == res.read_bytes()
    assert blob.hex() in path

    pk, bufs = st.open_result(blob, size)
    got = pickle.loads(pk, buffers=bufs)
    assert got["s"] == "hello"
    assert np.array_equal(got["arr"], value["arr"])
    assert not got["arr"].flags.writeable
    base = got["arr"]
    while not isinstance(base, memoryview):
        base = base.base
    assert type(base.obj).__name__ == "ResultMapping"

    # the blob is share-locked while mapped: gc's exclusive try fails
    fd = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        del pk, bufs, got, base
        gc.collect()
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)
    st.close()
    with pytest.raises(ValueError):
        st.lookup(key)


def test_files(tmp_path, store_dir):
    res = tmp_path / "res"
    size = write_container("r", res)
    (tmp_path / "a.txt").write_bytes(b"alpha")
    (tmp_path / "b.bin").write_bytes(b"b" * 5000)
    key = b"\x01" * 32
    put(store_dir, key, res, files=[("out/a.txt", tmp_path / "a.txt"), ("b.bin", tmp_path / "b.bin")])
    st = _native.Store(str(store_dir))
    rec = st.lookup(key)
    assert rec["nfiles"] == 2 and rec["files_size"] == 5005 and rec["size"] == size
    files = sorted(st.files(key))
    assert files == [
        ("b.bin", blake3_pkg.blake3(b"b" * 5000).digest(), 5000),
        ("out/a.txt", blake3_pkg.blake3(b"alpha").digest(), 5),
    ]


def test_corrupt_small_blob_is_refused(tmp_path, store_dir):
    res = tmp_path / "res"
    size = write_container([1, 2, 3], res)
    key = b"\x02" * 32
    blob, _ = put(store_dir, key, res)
    st = _native.Store(str(store_dir))
    path = st.blob_path(blob)
    os.chmod(path, 0o600)
    raw = bytearray(Path(path).read_bytes())
    raw[-2] ^= 0xFF
    Path(path).write_bytes(bytes(raw))
    with pytest.raises(ValueError, match="corrupt"):
        st.open_result(blob, size)
    with pytest.raises(ValueError, match="corrupt"):
        st.open_result(blob, size + 1)  # recorded size differs


def test_missing_blob_is_file_not_found(tmp_path, store_dir):
    res = tmp_path / "res"
    size = write_container("x", res)
    blob, _ = put(store_dir, b"\x03" * 32, res)
    st = _native.Store(str(store_dir))
    os.unlink(st.blob_path(blob))
    with pytest.raises(FileNotFoundError):
        st.open_result(blob, size)


def test_touch_appends_to_log(tmp_path, store_dir):
    res = tmp_path / "res"
    write_container("x", res)
    key = b"\x04" * 32
    put(store_dir, key, res)
    st = _native.Store(str(store_dir))
    log = store_dir / "touch.log"
    before = log.stat().st_size if log.exists() else 0
    st.touch(key)
    st.touch(key)
    assert log.stat().st_size > before


def test_bad_key_lengths(tmp_path, store_dir):
    res = tmp_path / "res"
    write_container("x", res)
    put(store_dir, b"\x05" * 32, res)
    st = _native.Store(str(store_dir))
    with pytest.raises(ValueError):
        st.lookup(b"short")
    with pytest.raises(TypeError):
        st.lookup("not bytes")


def test_producer_and_origin(tmp_path, store_dir):
    """lookup() says who computed a result and whether it came from a peer;
    an origin this reader does not know counts as remote (fail safe)."""
    res = tmp_path / "res"
    write_container("x", res)
    producer = bytes(range(100, 132))
    put(store_dir, b"\x06" * 32, res)
    put(store_dir, b"\x07" * 32, res, producer=producer, origin=ORIGIN_REMOTE)
    put(store_dir, b"\x08" * 32, res, producer=producer, origin=7)
    st = _native.Store(str(store_dir))
    local = st.lookup(b"\x06" * 32)
    assert local["producer"] == bytes(32) and local["remote"] is False
    remote = st.lookup(b"\x07" * 32)
    assert remote["producer"] == producer and remote["remote"] is True
    assert st.lookup(b"\x08" * 32)["remote"] is True
