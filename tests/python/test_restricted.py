"""The restricted unpickler (irohds._restricted) on its own: plain data and
numpy load as plain pickle would load them (arrays still zero-copy views of
the mapped container); every hostile pickle in attacks.py is refused and
runs nothing.  Each payload is first shown to be live: plain pickle, in a
subprocess, does create the sentinel file (or crashes, for the numpy one)."""
from __future__ import annotations

import contextlib
import copyreg
import os
import pickle
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any, Iterator, List

import numpy as np
import pytest

import attacks
from irohds import FileRef, _native, _restricted
from irohds._fileref import _BIND, _REMOTE

HERE = Path(__file__).resolve().parent


def roundtrip(value: Any, tmp_path: Path) -> Any:
    """value through a real result container and the restricted loader."""
    buffers: List[pickle.PickleBuffer] = []
    data = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    path = tmp_path / "container"
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _native.write_result(fd, data, [b.raw() for b in buffers])
        pk, views = _native.map_result(fd, os.fstat(fd).st_size)
    finally:
        os.close(fd)
    return _restricted.loads(pk, views)


PLAIN = [
    None, True, False, 0, -7, 2**200, 1.5, float("inf"), 1 + 2j, "", "text é", b"", b"\x00bytes",
    bytearray(b"mutable"), (), (1, (2, "x")), [], [1, [2, [3]]], {}, {"a": {1: [2.5]}, (1, 2): None},
    set(), {1, "a", (2,)}, frozenset({3, 4}), [b"x" * 100_000] * 3,
]
NUMPY = [
    np.arange(10.0), np.arange(24).reshape(2, 3, 4), np.asfortranarray(np.ones((3, 4))),
    np.arange(12).reshape(3, 4)[:, ::2], np.array(3.0), np.empty((0, 5)), np.array([1, 2], ">i4"),
    np.array(["a", "bcd"]), np.array([b"x", b"yz"]), np.array([True, False]),
    np.array(["2020-01-01", "2021-06-30"], dtype="M8[ns]"), np.array([1, 2], dtype="m8[s]"),
    np.array([(1, 2.0, "x")], dtype=[("a", "i4"), ("b", "f8"), ("c", "U3")]),
    np.zeros(2, dtype=np.dtype([("a", "u1"), ("b", "<i4")], align=True)),
    np.zeros(2, dtype="(2,3)f4"), np.array([1 + 1j], dtype="c8"), np.array([1.5], "f2"),
    np.array([1, "x", None, [2, 3], {"k": (1,)}], dtype=object),
    np.zeros(2, dtype=[("n", "f8"), ("o", "O")]),
]
SCALARS = [np.float64(2.5), np.int8(-3), np.uint64(2**63), np.bool_(True), np.str_("s"),
           np.bytes_(b"b"), np.complex64(1 + 2j), np.datetime64("2020-01-01", "ns"),
           np.timedelta64(5, "s"), np.float16(0.5)]
DTYPES = [np.dtype("f8"), np.dtype(">i2"), np.dtype("U7"), np.dtype("O"), np.dtype("V0"),
          np.dtype([("a", "O"), ("b", "(2,)f8")]), np.dtype("M8[us]"), np.dtype("M8"),
          np.dtype("m8[10ns]"), np.dtype("f8", metadata={"unit": "m"}),
          np.dtype([(("title", "a"), "f4"), ("b", "M8[D]")]),
          np.dtype({"names": ["x"], "formats": ["i4"], "offsets": [4], "itemsize": 12}),
          np.dtype([("a", "u1"), ("b", "<i4")], align=True)]


@pytest.mark.parametrize("value", PLAIN, ids=lambda v: type(v).__name__)
def test_plain_data_loads_as_pickle_would(value: Any, tmp_path: Path) -> None:
    got = roundtrip(value, tmp_path)
    assert got == value and type(got) is type(value)


@pytest.mark.parametrize("arr", NUMPY, ids=lambda a: str(a.dtype))
def test_numpy_arrays(arr: np.ndarray, tmp_path: Path) -> None:
    got = roundtrip(arr, tmp_path)
    assert type(got) is np.ndarray
    assert got.dtype == arr.dtype and got.shape == arr.shape and got.dtype.flags == arr.dtype.flags
    if arr.dtype.hasobject:
        assert got.tolist() == arr.tolist()
    else:
        assert np.array_equal(got, arr)
        assert got.flags.f_contiguous == arr.flags.f_contiguous or arr.ndim < 2


@pytest.mark.parametrize("scalar", SCALARS, ids=lambda s: type(s).__name__)
def test_numpy_scalars(scalar: Any, tmp_path: Path) -> None:
    got = roundtrip(scalar, tmp_path)
    assert type(got) is type(scalar) and got == scalar


@pytest.mark.parametrize("dt", DTYPES, ids=str)
def test_numpy_dtypes(dt: np.dtype, tmp_path: Path) -> None:
    got = roundtrip(dt, tmp_path)
    assert got == dt and got.flags == dt.flags and got.itemsize == dt.itemsize


def test_arrays_stay_zero_copy_views_of_the_mapping(tmp_path: Path) -> None:
    big = np.arange(2_000_000, dtype=np.float64)  # 16 MB: mapped, not read
    got = roundtrip({"a": big, "meta": [1, 2]}, tmp_path)["a"]
    assert np.array_equal(got, big) and not got.flags.writeable
    base = got
    while not isinstance(base, memoryview):
        base = base.base
    assert type(base.obj).__name__ == "ResultMapping"


def test_shared_and_recursive_references(tmp_path: Path) -> None:
    inner = [1, 2]
    loop: List[Any] = [inner, inner]
    loop.append(loop)
    got = roundtrip(loop, tmp_path)
    assert got[0] is got[1] and got[2] is got


# ------------------------------------------------------------------ attacks

def plain_pickle_in_subprocess(payload: bytes, extension: bool = False) -> subprocess.CompletedProcess:
    """pickle.loads(payload) in a fresh interpreter (attacks.py importable)."""
    code = textwrap.dedent(f"""
        import copyreg, os, pickle, sys, time
        import attacks
        if {extension!r}:
            copyreg.add_extension(os.system.__module__, "system", attacks.EXT_CODE)
        class Loader(pickle.Unpickler):
            def persistent_load(self, pid):  # what a careless persistent_load does
                return os.system(pid)
        import io
        try:
            Loader(io.BytesIO(sys.stdin.buffer.read())).load()
        except Exception as exc:
            print(type(exc).__name__, exc)
        time.sleep(0.3)  # Popen touches the file from a child process
    """)
    env = dict(os.environ, PYTHONPATH=str(HERE))
    return subprocess.run([sys.executable, "-c", code], input=payload, env=env,
                          capture_output=True, timeout=60)


PAYLOAD_NAMES = sorted(attacks.payloads("/x"))


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_payload_is_live_with_plain_pickle(name: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    payload = attacks.payloads(str(sentinel))[name]
    proc = plain_pickle_in_subprocess(payload, extension=name == "copyreg-extension")
    assert sentinel.exists(), f"payload {name} is a dud: {proc.stdout!r} {proc.stderr!r}"


@contextlib.contextmanager
def os_system_extension() -> Iterator[None]:
    """copyreg's extension registry maps attacks.EXT_CODE to os.system, as a
    careless library might: the restricted unpickler must still refuse it.
    (Registered only around the load: pickle.dumps would use it too.)"""
    copyreg.add_extension(os.system.__module__, "system", attacks.EXT_CODE)
    try:
        yield
    finally:
        copyreg.remove_extension(os.system.__module__, "system", attacks.EXT_CODE)


@pytest.mark.parametrize("name", PAYLOAD_NAMES)
def test_restricted_refuses_and_runs_nothing(name: str, tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    payload = attacks.payloads(str(sentinel))[name]
    with os_system_extension(), pytest.raises(_restricted.Refused) as info:
        _restricted.loads(payload, [])
    assert not sentinel.exists()
    assert info.value.what  # names what was refused
    if name in ("os.system", "nested-in-list", "nested-in-dict-key", "numpy-object-array"):
        assert info.value.what == f"global {os.system.__module__}.system"
    if name == "getattr-chain":
        assert info.value.what == "global builtins.getattr"


def test_numpy_pointer_array_crashes_plain_pickle_not_restricted() -> None:
    """Only numpy's own globals, yet plain pickle builds an object array from
    raw bytes: reading its element dereferences a pointer the sender chose."""
    payload = attacks.numpy_pointer_array()
    code = ("import pickle, sys; a = pickle.loads(sys.stdin.buffer.read()); "
            "print('built', a.dtype, a.dtype.flags, flush=True); print(repr(a[0]))")
    proc = subprocess.run([sys.executable, "-c", code], input=payload, capture_output=True,
                          timeout=60)
    assert b"built object 0" in proc.stdout and proc.returncode < 0  # killed by a signal
    with pytest.raises(_restricted.Refused, match="not numpy's own"):
        _restricted.loads(payload, [])


def fuzz(loader: str, seed: int, count: int) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(HERE / "numpy_fuzz.py"), loader, str(seed),
                           str(count)], capture_output=True, text=True, timeout=600,
                          env=dict(os.environ, PYTHONPATH=str(HERE)))


def test_fuzzed_numpy_pickles_crash_pickle_not_restricted() -> None:
    """numpy_fuzz.py: plain pickle dies (a signal) within a few hundred
    perturbed numpy pickles; the restricted unpickler loads the well-formed
    ones among 20 000 and refuses the rest, without a crash."""
    assert fuzz("pickle", 1, 500).returncode < 0
    for seed in (1, 2):
        proc = fuzz("restricted", seed, 10_000)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert int(proc.stdout.split()[1]) > 2000  # the accepted path was exercised


def test_numpy_overlapping_object_field_is_refused() -> None:
    payload = attacks.numpy_overlapping_fields()
    assert pickle.loads(payload).names == ("a", "b")  # plain pickle builds it
    with pytest.raises(_restricted.Refused, match="overlapping object fields"):
        _restricted.loads(payload, [])


@pytest.mark.parametrize("kind", ["dict", "list", "tuple"])
def test_build_on_plain_objects_is_refused(kind: str) -> None:
    with pytest.raises(_restricted.Refused, match=f"BUILD on {kind}"):
        _restricted.loads(attacks.build_on(kind), [])


def test_numpy_calls_only_as_numpy_writes_them() -> None:
    from pickle import PROTO, REDUCE, STOP, TUPLE1, TUPLE3, BININT1, SHORT_BINBYTES, NEWTRUE

    g = attacks._g
    s = attacks._s
    cases = {
        # ndarray called directly (a view over any buffer, any strides)
        "REDUCE on type": g("numpy", "ndarray") + BININT1 + b"\x02" + TUPLE1 + REDUCE,
        # _reconstruct asked for a large array instead of numpy's empty one
        "_reconstruct other than": g("numpy._core.multiarray", "_reconstruct")
        + g("numpy", "ndarray") + BININT1 + b"\x09" + TUPLE1 + SHORT_BINBYTES + b"\x01b"
        + TUPLE3 + REDUCE,
        # a dtype spec that is not numpy's short type string
        "numpy.dtype": g("numpy", "dtype") + s("f8,i4") + NEWTRUE + NEWTRUE + TUPLE3 + REDUCE,
        # a scalar with a dtype that was never rebuilt (checked) by this load
        "not rebuilt": g("numpy._core.multiarray", "scalar") + g("numpy", "dtype") + s("f8")
        + NEWTRUE + NEWTRUE + TUPLE3 + REDUCE + SHORT_BINBYTES + b"\x08" + b"\x00" * 8
        + attacks.TUPLE2 + REDUCE,
    }
    for why, body in cases.items():
        with pytest.raises(_restricted.Refused, match=why):
            _restricted.loads(PROTO + b"\x04" + body + STOP, [])


def test_bytearray_is_no_memory_bomb() -> None:
    payload = pickle.dumps(attacks.Reduce(bytearray, 10**12), protocol=5)
    with pytest.raises(_restricted.Refused, match="bytearray"):
        _restricted.loads(payload, [])


def test_refused_global_is_not_imported() -> None:
    """A refused global is not even imported (importing runs module code)."""
    name = "irohds_test_never_imported_module"
    payload = attacks._g(name, "x") + b"."
    with pytest.raises(_restricted.Refused, match=name):
        _restricted.loads(b"\x80\x04" + payload, [])
    assert name not in sys.modules


def test_fileref_names_from_peers(tmp_path: Path) -> None:
    """A peer's FileRef binds to files/<key>/ and may not lead out of it:
    not by '..' (refused by name) nor through a symlink in that dir."""
    files_dir = tmp_path / "files" / ("ab" * 32)
    (files_dir / "out").mkdir(parents=True)
    (files_dir / "out" / "f.txt").write_text("ok")
    os.symlink("/etc", files_dir / "link")

    def load(name: str) -> Any:
        payload = (b"\x80\x04" + attacks._g("irohds._fileref", "FileRef") + attacks._s(name)
                   + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)
        token, remote = _BIND.set(str(files_dir)), _REMOTE.set(True)
        try:
            return _restricted.loads(payload, [])
        finally:
            _REMOTE.reset(remote)
            _BIND.reset(token)

    ref = load("out/f.txt")
    assert isinstance(ref, FileRef) and Path(ref.path).read_text() == "ok"
    for bad in ("../../../etc/passwd", "/etc/passwd", "out/../../x", "link/passwd"):
        with pytest.raises(_restricted.Refused, match="FileRef"):
            load(bad)
