"""Function identity (irohds._identity): what changes a key and what must not.

Each case writes two versions of a user module as text into separate dirs,
loads each under the same module name and compares the identities of the
same function.  The expected relation (equal / different) comes from the
rules in docs/api.md, not from the code's output.  No daemon is needed.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from irohds._identity import function_identity, function_name, identity_manifest

BASE = '''
import math

SCALE = 3


def helper(x):
    return x * SCALE


class Model:
    def predict(self, x):
        return helper(x) + 1


def f(x, y=2):
    """Add things."""
    # a comment
    return helper(x) + Model().predict(y) + math.floor(x)
'''

_counter = 0


def load(tmp: Path, source: str, modname: str = "umod") -> ModuleType:
    """Import source as module modname from a fresh dir (replacing any earlier one)."""
    global _counter
    _counter += 1
    d = tmp / f"v{_counter}"
    d.mkdir()
    path = d / f"{modname}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module


def ident(module: ModuleType, name: str = "f", ns: str = "default", version: Any = None) -> bytes:
    return function_identity(getattr(module, name), ns, version)


@pytest.fixture(autouse=True)
def _forget_modules():
    yield
    for name in ("umod", "umod2", "uhelp"):
        sys.modules.pop(name, None)


def test_same_source_in_two_directories_is_the_same(tmp_path: Path) -> None:
    assert ident(load(tmp_path, BASE)) == ident(load(tmp_path, BASE))


@pytest.mark.parametrize("edit", [
    ("# a comment", "# another comment entirely"),
    ('"""Add things."""', '"""A different docstring."""'),
    ('"""Add things."""\n', ''),
    ("return helper(x) + Model().predict(y) + math.floor(x)",
     "return (helper(x) +\n            Model().predict(y)   +   math.floor(x))  # spaced"),
    ("def f(x, y=2):", "\n\n\ndef f(x,  y = 2):"),
    ("def helper(x):\n    return", "def helper(x):\n    '''helper doc'''\n\n    return"),
])
def test_cosmetic_edits_keep_the_identity(tmp_path: Path, edit: tuple) -> None:
    old, new = edit
    assert old in BASE
    assert ident(load(tmp_path, BASE)) == ident(load(tmp_path, BASE.replace(old, new)))


@pytest.mark.parametrize("edit", [
    ("return x * SCALE", "return x * SCALE + 0"),               # helper body
    ("return helper(x) + 1", "return helper(x) + 2"),           # method of a used class
    ("SCALE = 3", "SCALE = 4"),                                 # module constant it reads
    ("def f(x, y=2):", "def f(x, y=3):"),                       # default
    ("math.floor(x)", "math.ceil(x)"),                          # own body
])
def test_semantic_edits_change_the_identity(tmp_path: Path, edit: tuple) -> None:
    old, new = edit
    assert old in BASE
    assert ident(load(tmp_path, BASE)) != ident(load(tmp_path, BASE.replace(old, new)))


def test_unrelated_edit_elsewhere_in_the_module_keeps_it(tmp_path: Path) -> None:
    extra = BASE + "\n\ndef unrelated():\n    return 42\n"
    changed = BASE + "\n\ndef unrelated():\n    return 43\n"
    assert ident(load(tmp_path, extra)) == ident(load(tmp_path, changed))


def test_helper_in_another_user_module_is_followed(tmp_path: Path) -> None:
    main = "import uhelp\n\ndef f(x):\n    return uhelp.g(x)\n"
    load(tmp_path, "def g(x):\n    return x + 1\n", "uhelp")
    first = ident(load(tmp_path, main))
    load(tmp_path, "def g(x):\n    return x + 2\n", "uhelp")
    second = ident(load(tmp_path, main))
    assert first != second


def test_transitive_helpers_and_recursion(tmp_path: Path) -> None:
    src = ("def a(x):\n    return b(x) if x else 0\n\n"
           "def b(x):\n    return a(x - 1) + 1\n\n"
           "def f(x):\n    return a(x)\n")
    m1 = load(tmp_path, src)
    names = [name for name, _ in identity_manifest(m1.f, "default", None)["helpers"]]
    assert names == ["umod.a", "umod.b"]
    m2 = load(tmp_path, src.replace("+ 1", "+ 2"))
    assert ident(m1) != ident(m2)


def test_library_functions_are_not_hashed(tmp_path: Path) -> None:
    m = load(tmp_path, "import json\n\ndef f(x):\n    return json.dumps(x)\n")
    assert identity_manifest(m.f, "default", None)["helpers"] == ()


def test_closure_values_count(tmp_path: Path) -> None:
    src = ("def make(k):\n    def f(x):\n        return x * k\n    return f\n"
           "f2 = make(2)\nf3 = make(3)\nf2b = make(2)\n")
    m = load(tmp_path, src)
    assert ident(m, "f2") != ident(m, "f3")
    assert ident(m, "f2") == ident(m, "f2b")


def test_kwonly_defaults_count(tmp_path: Path) -> None:
    src = "def f(x, *, scale=1.0):\n    return x * scale\n"
    a = ident(load(tmp_path, src))
    assert a != ident(load(tmp_path, src.replace("1.0", "2.0")))


def test_name_ns_and_version_count(tmp_path: Path) -> None:
    m = load(tmp_path, BASE)
    base = ident(m)
    assert base != ident(m, ns="lab")
    assert base != ident(m, version=2)
    assert ident(m, version=2) == ident(m, version=2)
    # the same code under another module name is another function
    assert base != ident(load(tmp_path, BASE, "umod2"))
    assert function_name(m.f) == "umod.f"


def test_decorators_do_not_count(tmp_path: Path) -> None:
    plain = "import functools\n\ndef f(x):\n    return x\n"
    decorated = "import functools\n\n@functools.lru_cache(maxsize=None)\ndef f(x):\n    return x\n"
    a = load(tmp_path, plain)
    b = load(tmp_path, decorated)
    assert function_identity(a.f, "default", None) == \
        function_identity(b.f.__wrapped__, "default", None)


def test_lambda_uses_the_code_object(tmp_path: Path) -> None:
    m = load(tmp_path, "g = lambda x: x + 1\nh = lambda x: x + 2\ng2 = lambda x: x + 1\n")
    manifest = identity_manifest(m.g, "default", None)
    assert manifest["notes"], "a lambda must say it fell back to the code object"
    assert ident(m, "g") != ident(m, "h")
    # g and g2: same code, same name "umod.<lambda>": same identity
    assert ident(m, "g") == ident(m, "g2")


def test_no_absolute_path_or_line_number_in_identity(tmp_path: Path) -> None:
    m = load(tmp_path, "\n" * 17 + BASE)
    identity = ident(m)
    assert str(tmp_path).encode() not in identity
    assert ident(m) == ident(load(tmp_path, BASE))  # line 18 vs line 1


def test_identity_is_stable_across_processes(tmp_path: Path) -> None:
    """Hash randomization (PYTHONHASHSEED) must not leak into the identity."""
    import subprocess

    d = tmp_path / "p"
    d.mkdir()
    (d / "umodp.py").write_text(textwrap.dedent(BASE) + "\ndef s(x):\n    return x in {'a', 'b', 'c'}\n")
    code = ("import umodp\nfrom irohds._identity import function_identity\n"
            "print(function_identity(umodp.s, 'default', None).hex())")
    outs = {subprocess.run([sys.executable, "-c", code], cwd=d, capture_output=True, text=True,
                           env=dict(os.environ, PYTHONHASHSEED=str(seed),
                                    PYTHONPATH=os.pathsep.join(
                                        filter(None, [str(d), os.environ.get("PYTHONPATH")]))),
                           check=True).stdout for seed in (1, 2, 3)}
    assert len(outs) == 1


# ------------------------------------------------------ persistent identity cache

def _load_at(path: Path, modname: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(modname, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[modname] = module
    spec.loader.exec_module(module)
    return module


HELPED = '''
import uhelp

LIMIT = 4


def f(x):
    return uhelp.scale(x) + LIMIT
'''


def test_identity_cache_skips_source_when_code_is_unchanged(tmp_path: Path) -> None:
    from irohds import _identity

    cache = str(tmp_path / "identity")
    src = tmp_path / "src"
    src.mkdir()
    sys.path.insert(0, str(src))
    try:
        (src / "uhelp.py").write_text("def scale(x):\n    return x * 2\n")
        (src / "umod.py").write_text(HELPED)
        first = _load_at(src / "umod.py", "umod")
        before = _identity._AST_PARSES
        a = _identity.cached_identity(first.f, "default", None, cache)
        assert _identity._AST_PARSES > before
        assert a == function_identity(first.f, "default", None)
        # a "new process": the modules imported afresh from the same files
        sys.modules.pop("uhelp", None)
        again = _load_at(src / "umod.py", "umod")
        assert again.f is not first.f
        before = _identity._AST_PARSES
        assert _identity.cached_identity(again.f, "default", None, cache) == a
        assert _identity._AST_PARSES == before, "unchanged code must not parse source"
        # other ns / version: other cache entries
        assert _identity.cached_identity(again.f, "other", None, cache) != a
        # a helper edit in another module invalidates the entry
        (src / "uhelp.py").write_text("def scale(x):\n    return x * 3\n")
        sys.modules.pop("uhelp", None)
        edited = _load_at(src / "umod.py", "umod")
        before = _identity._AST_PARSES
        b = _identity.cached_identity(edited.f, "default", None, cache)
        assert _identity._AST_PARSES > before
        assert b != a and b == function_identity(edited.f, "default", None)
        # a module constant the function reads is part of the fingerprint by value
        edited.LIMIT = 5
        c = _identity.cached_identity(edited.f, "default", None, cache)
        assert c != b and c == function_identity(edited.f, "default", None)
    finally:
        sys.path.remove(str(src))
        sys.modules.pop("uhelp", None)


def test_identity_cache_corrupt_entry_is_a_miss(tmp_path: Path) -> None:
    from irohds import _identity

    cache = tmp_path / "identity"
    m = load(tmp_path, BASE)
    a = _identity.cached_identity(m.f, "default", None, str(cache))
    (entry,) = list(cache.iterdir())
    entry.write_bytes(entry.read_bytes()[:-1] + b"X")
    before = _identity._AST_PARSES
    assert _identity.cached_identity(m.f, "default", None, str(cache)) == a
    assert _identity._AST_PARSES > before
    entry.write_bytes(b"IRID1\n")  # short
    assert _identity.cached_identity(m.f, "default", None, str(cache)) == a


def test_identity_cache_across_processes(home: Path, usercode: Path) -> None:
    from conftest import run_py, write

    write(usercode / "cmod.py", """
        import irohds

        @irohds.memo
        def sq(x):
            return x * x
    """)
    code = """
        import cmod
        from irohds import _identity
        assert cmod.sq(3) == 9
        print(_identity._AST_PARSES)
    """
    assert int(run_py(code, usercode).stdout.split()[-1]) > 0
    assert int(run_py(code, usercode).stdout.split()[-1]) == 0
    assert any((home / "identity").iterdir())
