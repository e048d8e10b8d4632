"""Memo, the tier-0 wrapper: what it serves, what it sends to the slow path,
its wrapper attributes, method binding, GC, and its hit cost next to
functools.lru_cache's C wrapper."""
from __future__ import annotations

import gc
import inspect
import pickle
import weakref

import pytest

from irohds import _native


class Recorder:
    """A slow path that records its calls and computes func(*args, **kwargs)."""

    def __init__(self, func):
        self.func = func
        self.calls = []

    def __call__(self, args, kwargs):
        self.calls.append((args, kwargs))
        return self.func(*args, **(kwargs or {}))


def make(func, maxsize=4096):
    rec = Recorder(func)
    return _native.Memo(func, rec, maxsize), rec


def ident(*args, **kwargs):
    return (args, kwargs)


def test_hit_and_miss_counts():
    m, rec = make(ident)
    assert m(1, "a") == ((1, "a"), {})
    assert m(1, "a") == ((1, "a"), {})
    assert len(rec.calls) == 1
    assert rec.calls[0] == ((1, "a"), None)
    assert m.cache_info() == (1, 1, 1)
    m.cache_clear()
    assert m.cache_info() == (0, 0, 0)
    m(1, "a")
    assert len(rec.calls) == 2


def test_result_object_is_returned_as_is():
    m, _ = make(lambda x: [x])
    first = m(3)
    assert m(3) is first


@pytest.mark.parametrize("a, b", [
    (1, 1.0), (1, True), (0, False), (0.0, -0.0), (1.0, True),
    ((1, 2), (1.0, 2)), ((0.0,), (-0.0,)), (("a", 1), ("a", True)),
])
def test_equal_values_of_other_types_miss(a, b):
    m, rec = make(lambda x: repr(x))
    assert m(a) == repr(a)
    assert m(b) == repr(b)
    assert len(rec.calls) == 2
    # and each is right when called again (the entry was replaced)
    assert m(a) == repr(a)
    assert m(b) == repr(b)


def test_kwargs_are_part_of_the_key():
    m, rec = make(ident)
    assert m(1, y=2) == ((1,), {"y": 2})
    assert m(1, y=2) == ((1,), {"y": 2})
    assert len(rec.calls) == 1
    assert rec.calls[0] == ((1,), {"y": 2})
    m(y=2, x=1)
    m(x=1, y=2)  # another order: a tier-0 miss, the slow path decides
    assert len(rec.calls) == 3
    # a positional tuple that looks like kwnames must not collide
    assert m(("y",), 2) == ((("y",), 2), {})
    assert m(y=2) == ((), {"y": 2})


def test_single_tuple_arg_does_not_meet_multi_args():
    m, rec = make(ident)
    assert m((1, 2)) == (((1, 2),), {})
    assert m(1, 2) == ((1, 2), {})
    assert m(()) == (((),), {})
    assert m() == ((), {})
    assert len(rec.calls) == 4


@pytest.mark.parametrize("arg", [[1], {"a": 1}, {1}, (1, [2]), ((1,),), object(), 1j,
                                 bytearray(b"x"), frozenset({1})])
def test_other_types_always_take_the_slow_path(arg):
    m, rec = make(lambda x: 42)
    assert m(arg) == 42
    assert m(arg) == 42
    assert len(rec.calls) == 2
    assert m.cache_info()[2] == 0


def test_subclass_of_allowed_type_takes_slow_path():
    class MyInt(int):
        pass
    m, rec = make(lambda x: x)
    m(MyInt(1))
    m(MyInt(1))
    assert len(rec.calls) == 2


def test_exceptions_propagate_and_are_not_remembered():
    n = {"calls": 0}

    def boom(x):
        n["calls"] += 1
        raise KeyError(x)
    m, _ = make(boom)
    for _ in range(2):
        with pytest.raises(KeyError):
            m(1)
    assert n["calls"] == 2
    assert m.cache_info()[2] == 0


def test_maxsize_clears_when_full_and_zero_disables():
    m, rec = make(lambda x: x, maxsize=3)
    for i in range(3):
        m(i)
    assert m.cache_info()[2] == 3
    m(99)
    assert m.cache_info()[2] == 1
    m0, rec0 = make(lambda x: x, maxsize=0)
    m0(1)
    m0(1)
    assert len(rec0.calls) == 2
    mu, _ = make(lambda x: x, maxsize=None)
    for i in range(5000):
        mu(i)
    assert mu.cache_info()[2] == 5000


def documented(a: int, b: str = "x") -> str:
    """Docstring of documented."""
    return b * a


def test_wrapper_attributes():
    documented.extra = "kept"
    m, _ = make(documented)
    assert m.__wrapped__ is documented
    assert m.__name__ == "documented"
    assert m.__qualname__ == "documented"
    assert m.__doc__ == "Docstring of documented."
    assert m.__module__ == __name__
    assert m.extra == "kept"
    assert inspect.signature(m) == inspect.signature(documented)
    m.bypass = "attached"
    assert m.__dict__["bypass"] == "attached"
    assert "documented" in repr(m)


class Thing:
    def __init__(self, k):
        self.k = k

    def __repr__(self):
        return f"Thing({self.k})"


def test_methods_bind_self():
    def method(self, x):
        return (self.k, x)
    m, rec = make(method)
    Thing.m = m
    try:
        t = Thing(5)
        assert t.m(1) == (5, 1)
        assert t.m(1) == (5, 1)  # self is not a tier-0 type: slow path each time
        assert len(rec.calls) == 2
        assert rec.calls[0][0][0] is t
        assert Thing.m is m
    finally:
        del Thing.m


def test_gc_collects_cycles():
    def f(x):
        return x
    m, rec = make(f)
    f.me = m  # cycle: m -> f -> f.__dict__ -> m
    m(1)
    r = weakref.ref(m)
    del m, f, rec
    gc.collect()
    assert r() is None


def test_pickles_by_reference():
    global picklable
    picklable, _ = make(documented)
    picklable.__qualname__ = "picklable"
    assert pickle.loads(pickle.dumps(picklable)) is picklable


def test_subclass_keeps_behaviour():
    class Sub(_native.Memo):
        def extra(self):
            return "extra"
    rec = Recorder(ident)
    s = Sub(ident, rec, 10)
    assert s(1) == s(1)
    assert len(rec.calls) == 1
    assert s.extra() == "extra"
