"""Binder against inspect.signature(f).bind(...) + apply_defaults(), the
reference for how Python binds a call, over many signatures and calls."""
from __future__ import annotations

import inspect

import pytest

from irohds import _native


def f0(): pass
def f1(a): pass
def f2(a, b=2): pass
def f3(a, /, b, *, c, d=4): pass
def f4(*args): pass
def f5(**kw): pass
def f6(a, *args, b=1, **kw): pass
def f7(a, b=2, /, c=3, *args, d, e=5, **kw): pass
def f8(x, /, **kw): pass
def f9(self, data, *, flag=False): pass
def f10(a=1, b=2, c=3): pass
def f11(*, a, b=[1]): pass  # noqa: B006 (the default object itself must come through)


def f12(a, b):
    x = 1  # a local after the parameters: must not become one
    return x


CALLS = [
    (f0, [((), {})]),
    (f1, [((1,), {}), ((), {"a": 1})]),
    (f2, [((1,), {}), ((1, 3), {}), ((), {"a": 1, "b": 5}), ((1,), {"b": 5})]),
    (f3, [((1, 2), {"c": 3}), ((1,), {"b": 2, "c": 3, "d": 9})]),
    (f4, [((), {}), ((1, 2, 3), {})]),
    (f5, [((), {}), ((), {"z": 1, "a": 2})]),
    (f6, [((1,), {}), ((1, 2, 3), {"b": 4, "q": 5}), ((), {"a": 1, "zz": 2})]),
    (f7, [((1,), {"d": 4}), ((1, 2, 3, 4, 5), {"d": 6, "e": 7, "f": 8}), ((1,), {"c": 0, "d": 1})]),
    (f8, [((1,), {}), ((1,), {"x": 2, "y": 3})]),
    (f9, [((object(), [1]), {}), ((1,), {"data": 2, "flag": True})]),
    (f10, [((), {}), ((), {"c": 30}), ((10, 20), {})]),
    (f11, [((), {"a": 1})]),
    (f12, [((1, 2), {}), ((), {"b": 1, "a": 2})]),
]


def reference(func, args, kwargs, ignore=()):
    ba = inspect.signature(func).bind(*args, **kwargs)
    ba.apply_defaults()
    return tuple((k, v) for k, v in ba.arguments.items() if k not in ignore)


@pytest.mark.parametrize("func, calls", CALLS, ids=[c[0].__name__ for c in CALLS])
def test_matches_inspect(func, calls):
    b = _native.Binder(func)
    for args, kwargs in calls:
        got = b.bind(args, kwargs or None)
        want = reference(func, args, kwargs)
        assert got == want, (args, kwargs)
        # same objects, not equal copies (defaults included)
        for (gk, gv), (wk, wv) in zip(got, want):
            assert gk == wk
            if not isinstance(wv, (tuple, dict)):
                assert gv is wv


BAD = [
    (f1, (), {}),
    (f1, (1, 2), {}),
    (f1, (1,), {"a": 2}),
    (f1, (), {"b": 1}),
    (f2, (), {"b": 1}),
    (f3, (1, 2), {}),
    (f3, (), {"a": 1, "b": 2, "c": 3}),
    (f4, (), {"x": 1}),
    (f5, (1,), {}),
    (f10, (1, 2, 3, 4), {}),
    (f11, (1,), {"a": 1}),
    (f11, (), {}),
]


@pytest.mark.parametrize("func, args, kwargs", BAD)
def test_type_errors_like_python(func, args, kwargs):
    with pytest.raises(TypeError):
        inspect.signature(func).bind(*args, **kwargs)
    with pytest.raises(TypeError):
        func(*args, **kwargs)
    with pytest.raises(TypeError):
        _native.Binder(func).bind(args, kwargs or None)


def test_positional_only_name_goes_to_kwargs():
    # f8(1, x=2): x is positional-only, so the keyword lands in **kw
    got = _native.Binder(f8).bind((1,), {"x": 2})
    assert got == (("x", 1), ("kw", {"x": 2}))
    assert got == reference(f8, (1,), {"x": 2})


def test_ignore_drops_names():
    b = _native.Binder(f7, ["c", "kw"])
    args, kwargs = (1, 2, 3, 4), {"d": 6, "extra": 1}
    assert b.bind(args, kwargs) == reference(f7, args, kwargs, ignore=("c", "kw"))
    with pytest.raises(ValueError):
        _native.Binder(f7, ["nope"])


def test_defaults_read_at_call_time():
    def g(a, b=1):
        pass
    b = _native.Binder(g)
    assert b.bind((0,), None) == (("a", 0), ("b", 1))
    g.__defaults__ = (7,)
    assert b.bind((0,), None) == (("a", 0), ("b", 7))


def test_same_pairs_positional_or_keyword():
    b = _native.Binder(f2)
    assert b.bind((1,), None) == b.bind((), {"a": 1}) == b.bind((1, 2), None) == b.bind((), {"b": 2, "a": 1})


def test_needs_a_function():
    with pytest.raises(TypeError):
        _native.Binder(len)
