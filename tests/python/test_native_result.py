"""The result container (docs/results.md): write_result, read_result and
map_result, pickle protocol 5 with out-of-band buffers, bounds checks, and
the zero-copy property (arrays are read-only views of the mapped file)."""
from __future__ import annotations

import os
import pickle
import struct
import tempfile

import pytest

from irohds import _native

np = pytest.importorskip("numpy")
blake3_pkg = pytest.importorskip("blake3")


def dump(value):
    buffers = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    return data, buffers


def write_file(value, path):
    data, buffers = dump(value)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        n = _native.write_result(fd, data, buffers)
    finally:
        os.close(fd)
    return n


def test_layout_by_hand(tmp_path):
    path = tmp_path / "r"
    n = write_file(b"", path)  # bytes pickle in-band: no buffers
    raw = path.read_bytes()
    assert n == len(raw)
    pk = pickle.dumps(b"", protocol=5)
    assert raw[:8] == b"IRDSRES1"
    assert struct.unpack_from("<IIQQ", raw, 8) == (0, 0, 32, len(pk))
    assert raw[32:] == pk

    arr = np.arange(5, dtype="<u1")
    path2 = tmp_path / "r2"
    write_file(arr, path2)
    raw = path2.read_bytes()
    nbuf, flags, poff, plen = struct.unpack_from("<IIQQ", raw, 8)
    assert (nbuf, flags, poff) == (1, 0, 48)
    off, ln = struct.unpack_from("<QQ", raw, 32)
    assert off % 64 == 0 and off >= poff + plen and off - (poff + plen) < 64
    assert ln == 5 and raw[off:off + 5] == bytes(range(5))
    assert len(raw) == off + 5
    assert raw[poff + plen:off] == bytes(off - poff - plen)  # zero padding


def test_roundtrip_through_read_result(tmp_path):
    value = {"a": np.arange(1000.0), "b": [np.ones((3, 4), order="F"), "text"], "c": 7}
    path = tmp_path / "r"
    write_file(value, path)
    pk, bufs = _native.read_result(path.read_bytes())
    got = pickle.loads(pk, buffers=bufs)
    assert np.array_equal(got["a"], value["a"])
    assert np.array_equal(got["b"][0], value["b"][0])
    assert got["b"][0].flags.f_contiguous
    assert got["b"][1] == "text" and got["c"] == 7


def test_zero_copy_from_mapping(tmp_path):
    arr = np.random.default_rng(0).random((256, 256))
    path = tmp_path / "r"
    size = write_file({"x": arr}, path)
    with open(path, "rb") as f:
        pk, bufs = _native.map_result(f.fileno(), size)
    # the caller's fd is closed; the mapping keeps its own
    got = pickle.loads(pk, buffers=bufs)["x"]
    assert np.array_equal(got, arr)
    assert not got.flags.writeable
    with pytest.raises(ValueError):
        got[0, 0] = 1.0
    base = got
    while not isinstance(base, memoryview):
        base = base.base
    assert type(base.obj).__name__ == "ResultMapping"
    assert np.shares_memory(got, np.frombuffer(bufs[0], dtype=np.float64).reshape(256, 256))
    assert got.ctypes.data % 64 == 0  # buffers are 64-byte aligned in a page-aligned map
    del pk, bufs
    assert got.sum() == arr.sum()  # mapping still alive through the array


def test_mapping_outlives_file_and_holds_shared_lock(tmp_path):
    import fcntl
    path = tmp_path / "r"
    size = write_file(np.arange(10), path)
    fd = os.open(path, os.O_RDONLY)
    pk, bufs = _native.map_result(fd, size)
    os.close(fd)
    other = os.open(path, os.O_RDONLY)
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # what gc tries
        arr = pickle.loads(pk, buffers=bufs)
        del pk, bufs
        os.unlink(path)
        assert list(arr) == list(range(10))
        del arr
        import gc
        gc.collect()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)  # lock gone with the last view
    finally:
        os.close(other)


def test_hash_check_on_small_blobs(tmp_path):
    path = tmp_path / "r"
    size = write_file([1, 2, 3], path)
    good = blake3_pkg.blake3(path.read_bytes()).digest()
    with open(path, "rb") as f:
        pk, _ = _native.map_result(f.fileno(), size, good)
        assert pickle.loads(pk) == [1, 2, 3]
        with pytest.raises(ValueError, match="corrupt"):
            _native.map_result(f.fileno(), size, bytes(32))
        with pytest.raises(ValueError, match="corrupt"):
            _native.map_result(f.fileno(), size + 1)


def good_container():
    data, bufs = dump([np.arange(4, dtype="<i8"), np.arange(3, dtype="<i2")])
    with tempfile.TemporaryFile() as f:
        _native.write_result(f.fileno(), data, bufs)
        f.seek(0)
        return bytearray(f.read())


def corrupt(raw, off, fmt, value):
    raw = bytearray(raw)
    struct.pack_into(fmt, raw, off, value)
    return bytes(raw)


@pytest.mark.parametrize("mutate", [
    lambda r: r[:31],
    lambda r: b"XRDSRES1" + r[8:],
    lambda r: corrupt(r, 8, "<I", 1000),           # nbuf: table past the end
    lambda r: corrupt(r, 8, "<I", 0xFFFFFFFF),
    lambda r: corrupt(r, 12, "<I", 1),             # unknown flag
    lambda r: corrupt(r, 16, "<Q", 40),            # pickle not right after the header
    lambda r: corrupt(r, 24, "<Q", 1 << 62),       # pickle length past the end
    lambda r: corrupt(r, 32, "<Q", 65),            # unaligned buffer
    lambda r: corrupt(r, 32, "<Q", 0),             # buffer over the header
    lambda r: corrupt(r, 40, "<Q", 1 << 63),       # buffer length past the end
    lambda r: corrupt(r, 48, "<Q", (1 << 64) - 64),  # offset near 2^64 (overflow)
    lambda r: r[:-1],                              # last buffer truncated
])
def test_malformed_containers_are_refused(mutate):
    raw = bytes(good_container())
    pk, bufs = _native.read_result(raw)
    assert len(bufs) == 2
    with pytest.raises(ValueError):
        _native.read_result(mutate(raw))


def test_read_result_accepts_any_buffer():
    raw = good_container()
    as_array = np.frombuffer(bytes(raw) + bytes(8 - len(raw) % 8), dtype=np.float64)[: len(raw) // 8]
    pk1, _ = _native.read_result(memoryview(bytes(raw)))
    pk2, _ = _native.read_result(raw)
    assert bytes(pk1) == bytes(pk2)
    with pytest.raises(ValueError):
        _native.read_result(as_array)  # float view truncated: not the same bytes


def test_many_buffers_and_empty_ones(tmp_path):
    value = [np.arange(i, dtype=np.uint8) for i in range(0, 200)]
    path = tmp_path / "r"
    size = write_file(value, path)
    with open(path, "rb") as f:
        pk, bufs = _native.map_result(f.fileno(), size)
    got = pickle.loads(pk, buffers=bufs)
    assert all(np.array_equal(a, b) for a, b in zip(got, value))


def test_large_write_returns_size(tmp_path):
    arr = np.ones(3 * 1024 * 1024 // 8)
    path = tmp_path / "r"
    n = write_file(arr, path)
    assert n == os.path.getsize(path) > arr.nbytes
