"""BLAKE3 bindings against the official vectors (shared/testdata) and the
`blake3` PyPI package as an independent oracle, on every implementation."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from irohds import _native

import blake3 as blake3_pkg  # independent oracle (PyPI), installed by scripts/deps.sh

VECTORS = Path(__file__).resolve().parents[3] / "shared" / "testdata" / "blake3" / "test_vectors.json"


def vector_input(n: int) -> bytes:
    return bytes(i % 251 for i in range(n))


@pytest.fixture(scope="module")
def vectors():
    if not VECTORS.exists():
        pytest.skip("shared testdata not present")
    return json.loads(VECTORS.read_text())


def test_impls_listed_portable_first():
    impls = _native.blake3_impls()
    assert impls[0] == "portable"
    assert set(impls) <= {"portable", "sse41", "avx2", "avx512"}
    with pytest.raises(ValueError):
        _native.blake3(b"", impl="nonsense")


def test_official_vectors_every_impl(vectors):
    key = vectors["key"].encode()
    ctx = vectors["context_string"]
    for case in vectors["cases"]:
        data = vector_input(case["input_len"])
        n = len(bytes.fromhex(case["hash"]))
        for impl in _native.blake3_impls():
            assert _native.blake3(data, length=n, impl=impl).hex() == case["hash"]
        assert _native.blake3_keyed(key, data, length=n).hex() == case["keyed_hash"]
        assert _native.blake3_derive_key(ctx, data, length=n).hex() == case["derive_key"]


@pytest.mark.parametrize("size", [0, 1, 1023, 1024, 1025, 64 * 1024, 64 * 1024 + 1, 3_000_000])
def test_against_blake3_package(size):
    data = os.urandom(size)
    assert _native.blake3(data) == blake3_pkg.blake3(data).digest()
    assert _native.blake3(memoryview(data)) == blake3_pkg.blake3(data).digest()
    key = bytes(range(32))
    assert _native.blake3_keyed(key, data) == blake3_pkg.blake3(data, key=key).digest()
    assert (_native.blake3_derive_key("irohds test", data, length=64)
            == blake3_pkg.blake3(data, derive_key_context="irohds test").digest(length=64))


def test_numpy_buffers_and_errors():
    np = pytest.importorskip("numpy")
    a = np.arange(100000, dtype=np.float64)
    assert _native.blake3(a) == blake3_pkg.blake3(a.tobytes()).digest()
    with pytest.raises((BufferError, ValueError, TypeError)):
        _native.blake3(a[::2])  # not contiguous
    with pytest.raises(ValueError):
        _native.blake3_keyed(b"short", b"")
    with pytest.raises(ValueError):
        _native.blake3(b"", length=0)
