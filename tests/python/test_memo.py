"""@irohds.memo in one process, against a real daemon (auto-started per test).

Computation is counted with a list the function appends to; "served from the
store" is told apart from tier 0 by clearing the in-process tables
(f.cache_clear()) first.
"""
from __future__ import annotations

import asyncio
import inspect
import re
import warnings
from typing import Any, List

import numpy as np
import pytest

import irohds


def test_bound_forms_are_one_call() -> None:
    calls: List[Any] = []

    @irohds.memo
    def f(x, y=2):
        calls.append((x, y))
        return x * 10 + y

    assert f(1) == 12
    assert f(x=1) == 12
    assert f(1, 2) == 12
    assert f(1, y=2) == 12
    f.cache_clear()
    assert f(y=2, x=1) == 12  # from the store now
    assert calls == [(1, 2)]
    assert f(2) == 22
    assert calls == [(1, 2), (2, 2)]


def test_bad_arguments_raise_like_python() -> None:
    @irohds.memo
    def f(x):
        return x

    with pytest.raises(TypeError):
        f(1, 2)
    with pytest.raises(TypeError):
        f(z=1)


def test_keyword_order_is_irrelevant() -> None:
    calls: List[Any] = []

    @irohds.memo
    def f(**opts):
        calls.append(opts)
        return sorted(opts.items())

    assert f(a=1, b=2) == [("a", 1), ("b", 2)]
    f.cache_clear()
    assert f(b=2, a=1) == [("a", 1), ("b", 2)]
    assert len(calls) == 1


def test_dict_and_set_order_is_irrelevant() -> None:
    calls: List[Any] = []

    @irohds.memo
    def f(d, s):
        calls.append(1)
        return sum(d.values()) + sum(s)

    d1 = {"a": 1, "b": 2, "c": 3}
    d2 = {"c": 3, "a": 1, "b": 2}
    s1 = {1, 2, 3, 1000, 77}
    s2 = set()
    for v in (77, 1000, 3, 2, 1):
        s2.add(v)
    assert f(d1, s1) == 6 + 1083
    assert f(d2, s2) == 6 + 1083
    assert len(calls) == 1
    assert f({"a": 1, "b": 2, "c": 4}, s1) == 7 + 1083
    assert len(calls) == 2


def test_async_def() -> None:
    calls: List[int] = []

    @irohds.memo
    async def f(x):
        calls.append(x)
        await asyncio.sleep(0)
        return x * 3

    assert inspect.iscoroutinefunction(f)
    assert asyncio.run(f(4)) == 12
    assert asyncio.run(f(x=4)) == 12
    f.cache_clear()
    assert asyncio.run(f(4)) == 12
    assert calls == [4]


def test_generators_are_refused() -> None:
    def gen():
        yield 1

    async def agen():
        yield 1

    with pytest.raises(TypeError, match="generator"):
        irohds.memo(gen)
    with pytest.raises(TypeError, match="generator"):
        irohds.memo(ns="x")(agen)


def test_exceptions_propagate_and_nothing_is_cached() -> None:
    calls: List[int] = []

    @irohds.memo
    def f(x):
        calls.append(x)
        if len(calls) == 1:
            raise KeyError("first time fails")
        return x

    with pytest.raises(KeyError):
        f(5)
    assert f(5) == 5  # the lease was released: this call computes again
    assert calls == [5, 5]


def test_bypass_and_refresh(tmp_path) -> None:
    counter = tmp_path / "n"

    @irohds.memo
    def f():
        n = int(counter.read_text()) + 1 if counter.exists() else 1
        counter.write_text(str(n))
        return n

    assert f() == 1
    assert f() == 1
    assert f.bypass() == 2           # computes, does not write
    f.cache_clear()
    assert f() == 1                  # the store still has the first result
    assert f.refresh() == 3          # computes and overwrites
    f.cache_clear()
    assert f() == 3
    assert f.__wrapped__() == 4      # the plain function


def test_evict_clears_store_and_memory() -> None:
    calls: List[int] = []

    @irohds.memo
    def f(x):
        calls.append(x)
        return x

    f(1)
    f(2)
    assert irohds.evict(irohds.function_name(f.__wrapped__)) == 2
    f(1)  # tier 0 was cleared too
    assert calls == [1, 2, 1]


def test_methods_with_ignore_self() -> None:
    calls: List[int] = []

    class Model:
        def __init__(self, tag):
            self.tag = tag

        @irohds.memo(ignore=["self"])
        def score(self, x):
            calls.append(x)
            return x + 1

    assert Model("a").score(1) == 2
    assert Model("b").score(1) == 2
    Model.score.cache_clear()
    assert Model("c").score(x=1) == 2
    assert calls == [1]


def test_ignore_must_name_parameters() -> None:
    with pytest.raises(ValueError):
        @irohds.memo(ignore=["nope"])
        def f(x):
            return x


def test_cheap_call_warns_once() -> None:
    @irohds.memo
    def f(x):
        return x

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for i in range(4):
            f(i)
    cheap = [w for w in caught if issubclass(w.category, irohds.CheapCallWarning)]
    assert len(cheap) == 1
    assert "cheap" in str(cheap[0].message)


class Opaque:
    def __init__(self, v):
        self.v = v


def test_pickle_fallback_warns_once_per_type() -> None:
    calls: List[int] = []

    @irohds.memo
    def f(o):
        calls.append(o.v)
        return o.v

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert f(Opaque(1)) == 1
        assert f(Opaque(2)) == 2
        assert f(Opaque(1)) == 1  # a new object, equal pickle: same key
    keyw = [w for w in caught if issubclass(w.category, irohds.KeyWarning)]
    assert len(keyw) == 1
    assert "Opaque" in str(keyw[0].message)
    assert calls == [1, 2]


def _mapped_ranges(path_fragment: str) -> List[tuple]:
    ranges = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            if path_fragment in line:
                lo, hi = (int(v, 16) for v in line.split()[0].split("-"))
                ranges.append((lo, hi))
    return ranges


def test_numpy_result_is_a_readonly_view_of_the_mapped_blob(home) -> None:
    @irohds.memo
    def f(n):
        return {"a": np.arange(n, dtype=np.float64), "tag": "x"}

    first = f(1 << 16)
    f.cache_clear()
    second = f(1 << 16)
    for result in (first, second):
        arr = result["a"]
        assert not arr.flags.writeable
        np.testing.assert_array_equal(arr, np.arange(1 << 16, dtype=np.float64))
        with pytest.raises(ValueError):
            arr[0] = 1.0
        # zero copy: the array's bytes lie inside a read-only mapping of a blob
        blobs = _mapped_ranges(str(home / "store" / "blobs"))
        addr = arr.__array_interface__["data"][0]
        assert any(lo <= addr and addr + arr.nbytes <= hi for lo, hi in blobs), \
            "the array is not inside a mapping of the store's blob"


def test_info_and_join(home) -> None:
    from conftest import stop_daemon

    @irohds.memo(ns="lab-b")
    def f(x):
        return x

    f(1)  # storing a result in a namespace means serving it, as if joined
    irohds.join("lab-a")
    info = irohds.info()
    assert info["data_dir"] == str(home)
    assert len(info["node_id"]) == 64 and int(info["node_id"], 16) >= 0
    assert info["entries"] == 1
    assert {"lab-a", "lab-b"} <= set(info["namespaces"])
    stop_daemon(str(home))  # both are remembered across a restart
    assert {"lab-a", "lab-b"} <= set(irohds.info()["namespaces"])


def test_disable_env(usercode) -> None:
    from conftest import run_py, write

    write(usercode / "m_dis.py", """
        import irohds
        calls = []
        @irohds.memo
        def f(x):
            calls.append(x)
            return x
    """)
    out = run_py("""
        import os, m_dis
        print(m_dis.f(1), m_dis.f(1), len(m_dis.calls))
        print(os.path.exists(os.path.join(os.environ["IROHDS_HOME"], "store")))
    """, usercode, IROHDS_DISABLE="1").stdout.split()
    assert out == ["1", "1", "2", "False"]


def test_version_salt_changes_key() -> None:
    calls: List[int] = []

    def body(x):
        calls.append(x)
        return x

    a = irohds.memo(version=1)(body)
    b = irohds.memo(version=2)(body)
    a(1)
    b(1)
    assert calls == [1, 1]
    assert re.match(r"^[\w.<>]+body$", irohds.function_name(body))
