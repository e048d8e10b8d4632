"""The canonical encoding (docs/keys.md) and call_key.

Expected bytes are derived by hand from docs/keys.md, not printed from the
code; the call_key oracle is an independent Python re-implementation of the
spec hashed with the `blake3` PyPI package.
"""
from __future__ import annotations

import dataclasses
import enum
import os
import pathlib
import pickle
import struct
import subprocess
import sys
import textwrap

import pytest

from irohds import _native

import blake3 as blake3_pkg  # independent oracle (PyPI), installed by scripts/deps.sh


def fb(obj):
    return b"PICKLED" + pickle.dumps(obj, protocol=4)


def enc(obj):
    return _native.canonical(obj, fb)


def h(s: str) -> bytes:
    return bytes.fromhex(s.replace(" ", ""))


# ------------------------------------------------------ hand-derived bytes

@pytest.mark.parametrize("value, expected", [
    (None, "00"),
    (False, "01"),
    (True, "02"),
    (0, "03 01 00"),
    (1, "03 01 01"),
    (-1, "03 01 ff"),
    (127, "03 01 7f"),
    (128, "03 02 80 00"),
    (255, "03 02 ff 00"),
    (-129, "03 02 7f ff"),
    (1.0, "04 00 00 00 00 00 00 f0 3f"),
    (-0.0, "04 00 00 00 00 00 00 00 80"),
    (float("nan"), "04 00 00 00 00 00 00 f8 7f"),
    (complex(1.0, -0.0), "05 00 00 00 00 00 00 f0 3f 00 00 00 00 00 00 00 80"),
    ("a", "06 01 61"),
    ("\u00e9", "06 02 c3 a9"),
    ("\ud800", "06 03 ed a0 80"),
    (b"", "07 00"),
    (bytearray(b"ab"), "08 02 61 62"),
    ((1, "a"), "09 02 03 01 01 06 01 61"),
    ([1, "a"], "0a 02 03 01 01 06 01 61"),
    ((), "09 00"),
    ({"b": 1, "a": None}, "0b 02 06 01 61 00 06 01 62 03 01 01"),
    ({2, 1}, "0c 02 03 01 01 03 01 02"),
    (frozenset({2, 1}), "0d 02 03 01 01 03 01 02"),
    ("x" * 200, "06 c8 01" + "78" * 200),
])
def test_hand_derived_bytes(value, expected):
    assert enc(value) == h(expected)


def test_big_ints():
    # L = bit_length // 8 + 1, two's complement little-endian
    n = 2 ** 100
    assert enc(n) == h("03 0d") + bytes(12) + b"\x10"
    assert enc(-n) == h("03 0d") + bytes(12) + b"\xf0"
    assert enc(2 ** 63) == h("03 09 00 00 00 00 00 00 00 80 00")
    assert enc(-2 ** 63) == h("03 09 00 00 00 00 00 00 00 80 ff")


def test_numpy_array_bytes():
    np = pytest.importorskip("numpy")
    assert enc(np.array([1, 2], dtype="<i2")) == h("10 03 3c 69 32 01 02 04 01 00 02 00")
    # a scalar is its 0-d array
    assert enc(np.float64(1.0)) == h("10 03 3c 66 38 00 08 00 00 00 00 00 00 f0 3f")


@dataclasses.dataclass
class Point:
    x: int
    y: str = "a"


def test_dataclass_bytes():
    name = (__name__ + ".Point").encode()
    expected = (b"\x0e" + bytes([len(name)]) + name + b"\x02"
                + h("06 01 78 03 01 01") + h("06 01 79 06 01 61"))
    assert enc(Point(1)) == expected


def test_path_bytes():
    assert enc(pathlib.PurePosixPath("a/b")) == h("0f 00 03 61 2f 62")
    assert enc(pathlib.Path("a/b")) == h("0f 00 03 61 2f 62")
    assert enc(pathlib.PureWindowsPath("a\\b")) == h("0f 01 03 61 2f 62")


class Color(enum.IntEnum):
    RED = 1


class Opaque:
    """No canonical form: goes to the fallback."""
    def __init__(self, v):
        self.v = v


class StrSub(str):
    pass


def test_fallback_bytes_and_subclasses():
    name = f"{__name__}.Color".encode()
    body = fb(Color.RED)
    assert enc(Color.RED) == b"\x11" + bytes([len(name)]) + name + bytes([len(body)]) + body
    assert enc(Color.RED) != enc(1)

    assert enc(StrSub("a")) != enc("a")
    assert enc(StrSub("a")).startswith(b"\x11")


def test_fallback_must_return_bytes():
    with pytest.raises(TypeError):
        _native.canonical(object(), lambda o: "not bytes")
    with pytest.raises(ZeroDivisionError):
        _native.canonical(object(), lambda o: 1 / 0)


# ------------------------------------------------------------- properties

def test_int_float_bool_are_distinct():
    values = [1, 1.0, True, "1", b"1", (1,), [1], 0, 0.0, -0.0, False, None, 1 + 0j]
    encodings = [enc(v) for v in values]
    assert len(set(encodings)) == len(values)


def test_dict_and_set_order_independence():
    a = {"x": 1, "y": [1, 2], 3: "z", (1, 2): None}
    b = {}
    for k in reversed(list(a)):
        b[k] = a[k]
    assert list(a) != list(b)
    assert enc(a) == enc(b)
    assert enc({5, 3, "q", (1,)}) == enc({(1,), "q", 3, 5})


def test_set_order_independent_of_hash_seed():
    code = textwrap.dedent("""
        import sys
        from irohds import _native
        v = {"alpha", "beta", "gamma", "delta", "epsilon", frozenset({"a", "b", "c"})}
        d = {s: len(s) for s in sorted(x for x in v if isinstance(x, str))}
        sys.stdout.write(_native.canonical((v, d), None).hex())
    """)
    outs = set()
    for seed in ("1", "2", "3", "4"):
        env = dict(os.environ, PYTHONHASHSEED=seed)
        outs.add(subprocess.run([sys.executable, "-c", code], env=env, check=True,
                                capture_output=True, text=True).stdout)
    assert len(outs) == 1


def test_numpy_is_not_imported():
    code = textwrap.dedent("""
        import sys, pathlib, dataclasses
        from irohds import _native
        _native.canonical((1, 2.0, "x", [None], {"a": b""}, pathlib.Path("p")), lambda o: b"")
        _native.call_key(b"id", (("x", 1),), lambda o: b"")
        print("numpy" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    assert out.stdout.strip() == "False"


def test_recursion_error():
    a: list = []
    a.append(a)
    with pytest.raises(RecursionError):
        enc(a)


def test_arrays_made_differently():
    np = pytest.importorskip("numpy")
    a = np.arange(12, dtype=np.float64).reshape(3, 4)
    f = np.asfortranarray(a)
    assert not f.flags.c_contiguous
    assert enc(f) == enc(a)
    assert enc(a[:, ::2]) == enc(np.ascontiguousarray(a[:, ::2]))
    assert enc(a.astype(">f8")) == enc(a)
    assert enc(a.astype(np.float32)) != enc(a)
    assert enc(a.reshape(4, 3)) != enc(a)
    assert enc(a.reshape(12)) != enc(a)
    assert enc(np.zeros(0)) != enc(np.zeros((0, 1)))


def test_array_exotic_dtypes():
    np = pytest.importorskip("numpy")
    obj = np.array([1, "a"], dtype=object)
    assert enc(obj).startswith(b"\x11")
    rec = np.zeros(2, dtype=[("a", "i4"), ("b", "f8")])
    assert enc(rec).startswith(b"\x11")
    dt = np.array(["2020-01-01"], dtype="datetime64[D]")
    assert enc(dt).startswith(b"\x10")
    assert enc(dt) != enc(dt.astype("datetime64[s]"))


# -------------------------------------------- independent oracle for keys

def _uvarint(n: int) -> bytes:
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def _lp(b: bytes) -> bytes:
    return _uvarint(len(b)) + b


def _f64(x: float) -> bytes:
    if x != x:
        return bytes.fromhex("000000000000f87f")
    return struct.pack("<d", x)


def spec(v) -> bytes:
    """docs/keys.md in Python (no numpy, paths or dataclasses needed here)."""
    t = type(v)
    if v is None:
        return b"\x00"
    if t is bool:
        return b"\x02" if v else b"\x01"
    if t is int:
        n = abs(v).bit_length() // 8 + 1
        return b"\x03" + _lp(v.to_bytes(n, "little", signed=True))
    if t is float:
        return b"\x04" + _f64(v)
    if t is complex:
        return b"\x05" + _f64(v.real) + _f64(v.imag)
    if t is str:
        return b"\x06" + _lp(v.encode("utf-8", "surrogatepass"))
    if t is bytes:
        return b"\x07" + _lp(v)
    if t is bytearray:
        return b"\x08" + _lp(bytes(v))
    if t is tuple:
        return b"\x09" + _uvarint(len(v)) + b"".join(spec(x) for x in v)
    if t is list:
        return b"\x0a" + _uvarint(len(v)) + b"".join(spec(x) for x in v)
    if t is dict:
        items = sorted((spec(k), spec(x)) for k, x in v.items())
        return b"\x0b" + _uvarint(len(v)) + b"".join(k + x for k, x in items)
    if t in (set, frozenset):
        tag = b"\x0c" if t is set else b"\x0d"
        return tag + _uvarint(len(v)) + b"".join(sorted(spec(x) for x in v))
    name = f"{t.__module__}.{t.__qualname__}".encode()
    return b"\x11" + _lp(name) + _lp(fb(v))


SAMPLES = [
    (("x", 1), ("y", 2)),
    (("a", 1.5), ("b", -0.0), ("c", float("inf")), ("d", True)),
    (("s", "h\u00e9llo \U0001F600"), ("b", b"\x00" * 300), ("n", -(2 ** 200))),
    (("args", (1, 2, [3, {4, 5}])), ("kw", {"z": 1, "a": {"q": (None,)}})),
    (("big", list(range(1000))),),
    (("o", Opaque(3)), ("p", [Opaque("x")])),
    (("c", 3 - 4j), ("fs", frozenset({"x", "y", ("z", 1)}))),
]


@pytest.mark.parametrize("bound", SAMPLES)
def test_call_key_matches_oracle(bound):
    identity = b"irohds-test-identity\x00v1"
    expected = blake3_pkg.blake3(identity + spec(bound)).digest()
    assert _native.call_key(identity, bound, fb) == expected
    assert _native.canonical(bound, fb) == spec(bound)


def test_call_key_streams_arrays():
    np = pytest.importorskip("numpy")
    a = np.random.default_rng(1).random((512, 300))  # > 64 KiB: hashed with the GIL released
    f = np.asfortranarray(a)
    bound = (("a", a), ("k", 3))
    key = _native.call_key(b"id", bound, fb)
    assert key == _native.call_key(b"id", (("a", f), ("k", 3)), fb)
    expected = blake3_pkg.blake3(b"id" + _native.canonical(bound, fb)).digest()
    assert key == expected
    dstr = b"<f8"
    head = (b"\x09\x02\x09\x02" + spec("a") + b"\x10" + _lp(dstr) + b"\x02"
            + _uvarint(512) + _uvarint(300) + _uvarint(a.nbytes))
    assert _native.canonical(bound, fb).startswith(head)
    b = a.copy()
    b[511, 299] += 1
    assert _native.call_key(b"id", (("a", b), ("k", 3)), fb) != key


def test_call_key_distinguishes_identity():
    assert _native.call_key(b"f1", (("x", 1),), fb) != _native.call_key(b"f2", (("x", 1),), fb)
    assert len(_native.call_key(b"", (), fb)) == 32
