"""Function identity: the bytes that say "this is the same function" on every machine.

A cache key is BLAKE3(identity || canonical(bound arguments)) (the second
half is C: _native.call_key).  This module builds the first half.  The
identity must change when the result could change, and must not change for
edits that cannot change the result, or across machines:

  * the function's normalized AST: ``ast.parse`` of its dedented source, with
    decorators and docstrings removed, dumped without line/column attributes
    (comments, blank lines, formatting and line numbers do not count);
  * its defaults, keyword-only defaults and closure cell values;
  * module-level constants it reads by name (None/bool/int/float/str/
    bytes and tuples/frozensets of those): ``THRESHOLD = 0.5`` is an input;
  * every function *and class* of the user's own code it references, found by
    resolving the names and module-attribute chains of its AST against its
    globals, transitively (a visited set breaks cycles).  "User code" means a
    module with a source file outside the standard library and outside any
    ``site-packages``/``dist-packages`` directory.  A class counts by its whole
    normalized source (its methods are what a call runs);
  * ``module.qualname`` (also the name ``irohds.evict`` takes), ``ns``,
    ``version`` and the Python minor version.

Never an absolute path, a line number or an ``id()``: the same file in two
directories gives the same identity.

When the source is unavailable or unreliable (lambdas, interactive sessions,
``exec``'d code) the code object stands in: ``co_code``, constants and names,
recursively through nested code objects.  That form is still free of paths
and line numbers but does change with a docstring edit.

The identity is computed lazily (on the first call, once every module-level
helper exists) and cached by the caller per function object.
"""
from __future__ import annotations

import ast
import inspect
import os
import pickle
import sys
import sysconfig
import textwrap
import threading
import types
import warnings
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

Encoder = Callable[[Any], bytes]

IDENTITY_SCHEMA = "irohds-identity-1"

_PLAIN_SCALARS = (type(None), bool, int, float, str, bytes)


def function_name(func: Callable[..., Any]) -> str:
    """The function's portable name, "module.qualname" (used by evict and ls)."""
    module = getattr(func, "__module__", None) or "?"
    qualname = getattr(func, "__qualname__", None) or getattr(func, "__name__", "?")
    return f"{module}.{qualname}"


# ------------------------------------------------------------ pickle fallback

class KeyWarning(UserWarning):
    """An argument had no canonical encoding and was keyed by its pickle."""


_warned_types: Set[str] = set()
_warned_lock = threading.Lock()


def _type_name(obj: Any) -> str:
    cls = type(obj)
    return f"{cls.__module__}.{cls.__qualname__}"


def pickle_fallback(obj: Any) -> bytes:
    """Key bytes for a value with no canonical encoding: its type's qualified
    name plus its pickle (protocol 4).  Warns once per type, since a pickle is
    not guaranteed to be the same for equal values (sets inside objects,
    caches, memo ids...), so such arguments may miss more than needed.

    A FileRef is keyed by its name and the result it belongs to, silently."""
    from irohds._fileref import FileRef  # late: _fileref does not depend on us

    if isinstance(obj, FileRef):
        return b"irohds.FileRef\0" + obj._key_material()
    tname = _type_name(obj)
    with _warned_lock:
        first = tname not in _warned_types
        _warned_types.add(tname)
    if first:
        warnings.warn(
            f"irohds: {tname} has no canonical encoding; keying it by its pickle, "
            "which may differ for equal values (register a stable form or pass "
            "something simpler)", KeyWarning, stacklevel=4)
    return tname.encode() + b"\0" + pickle.dumps(obj, protocol=4)


def default_encoder(obj: Any) -> bytes:
    """_native.canonical with the pickle fallback."""
    from irohds import _native

    return _native.canonical(obj, pickle_fallback)


# --------------------------------------------------------------- user code

def _excluded_roots() -> Tuple[str, ...]:
    roots = set()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            roots.add(os.path.realpath(path))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib",
                                                f"python{sys.version_info[0]}.{sys.version_info[1]}")))
    return tuple(sorted(roots))


_EXCLUDED = _excluded_roots()
_user_module_cache: Dict[str, bool] = {}


def is_user_module(module_name: Optional[str]) -> bool:
    """True for a module of the user's own code: it has a source file, not in
    the standard library nor in site-packages/dist-packages, and is not
    irohds itself."""
    if not module_name:
        return False
    cached = _user_module_cache.get(module_name)
    if cached is not None:
        return cached
    result = _judge_module(module_name)
    _user_module_cache[module_name] = result
    return result


def _judge_module(module_name: str) -> bool:
    if module_name == "irohds" or module_name.startswith("irohds."):
        return False
    module = sys.modules.get(module_name)
    if module is None:
        return False
    path = getattr(module, "__file__", None)
    if not path:
        # __main__ of an interactive session has no file but is user code.
        return module_name == "__main__"
    real = os.path.realpath(path)
    parts = real.split(os.sep)
    if "site-packages" in parts or "dist-packages" in parts:
        return False
    return not any(real == root or real.startswith(root + os.sep) for root in _EXCLUDED)


def _unwrap(obj: Any) -> Any:
    """The user's function behind a decorator (functools.wraps, irohds.memo)."""
    seen = 0
    while seen < 100:
        inner = getattr(obj, "__wrapped__", None)
        if inner is None or not callable(inner) or isinstance(obj, type):
            return obj
        obj = inner
        seen += 1
    return obj


def _is_plain_constant(value: Any, depth: int = 0) -> bool:
    """None/bool/int/float/str/bytes, or a tuple/frozenset of those (exact
    types: no enums, no named tuples such as sys.version_info)."""
    if type(value) in _PLAIN_SCALARS:
        return not isinstance(value, (str, bytes)) or len(value) <= 65536
    if type(value) in (tuple, frozenset) and depth < 4 and len(value) <= 1024:
        return all(_is_plain_constant(v, depth + 1) for v in value)
    return False


# ------------------------------------------------------------ normalized AST

class _StripDocstrings(ast.NodeTransformer):
    """Drop the docstring of every function, class and module body."""

    def _strip(self, node: Any) -> Any:
        self.generic_visit(node)
        body = node.body
        if (body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant)
                and isinstance(body[0].value.value, str)):
            node.body = body[1:] or [ast.Pass()]
        return node

    visit_FunctionDef = _strip
    visit_AsyncFunctionDef = _strip
    visit_ClassDef = _strip


_DEF_NODES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)


def _parse_definition(obj: Any) -> Optional[ast.AST]:
    """The normalized AST node of a function or class, or None when its source
    cannot be trusted (lambda, no source, source that is not its definition)."""
    name = getattr(obj, "__name__", "")
    if name == "<lambda>":
        return None
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError, IndentationError, SyntaxError):
        return None
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], _DEF_NODES):
        return None
    node = tree.body[0]
    if node.name != name:
        return None
    node.decorator_list = []
    return _StripDocstrings().visit(node)


def _dump(node: ast.AST) -> str:
    return ast.dump(node, annotate_fields=True, include_attributes=False)


def _referenced_chains(node: ast.AST) -> List[Tuple[str, ...]]:
    """Every loaded name and dotted attribute chain (a.b.c -> ('a','b','c'))."""
    chains: List[Tuple[str, ...]] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            chains.append((sub.id,))
        elif isinstance(sub, ast.Attribute):
            parts: List[str] = [sub.attr]
            base: ast.AST = sub.value
            while isinstance(base, ast.Attribute):
                parts.append(base.attr)
                base = base.value
            if isinstance(base, ast.Name):
                parts.append(base.id)
                chains.append(tuple(reversed(parts)))
    return chains


# ------------------------------------------------------------ code fallback

def _code_form(code: types.CodeType) -> Tuple[Any, ...]:
    """A line-number-free, path-free description of a code object."""
    consts = tuple(_const_form(c) for c in code.co_consts)
    return ("code", code.co_code, consts, tuple(code.co_names), tuple(code.co_varnames),
            code.co_argcount, code.co_kwonlyargcount, code.co_flags)


def _const_form(const: Any) -> Any:
    if isinstance(const, types.CodeType):
        return _code_form(const)
    if isinstance(const, frozenset):  # its repr order depends on the hash seed
        return ("frozenset", tuple(sorted(repr(c) for c in const)))
    return ("const", type(const).__name__, repr(const))


def _code_names(code: types.CodeType) -> List[Tuple[str, ...]]:
    names: List[Tuple[str, ...]] = [(n,) for n in code.co_names]
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_code_names(const))
    return names


# ---------------------------------------------------------------- the walk

class _Walker:
    """Collects the identity components of a function and its helpers."""

    def __init__(self, encode: Encoder) -> None:
        self.encode = encode
        self.visited: Set[int] = set()  # id()s, only to stop cycles: never in the key
        self.helpers: Dict[str, Any] = {}
        self.constants: Dict[str, bytes] = {}
        self.notes: List[str] = []

    def function_part(self, func: Any) -> Tuple[Any, ...]:
        """(code form, defaults, kwdefaults, closure) of func; records its helpers."""
        self.visited.add(id(func))
        node = _parse_definition(func)
        if node is not None:
            code: Any = ("ast", _dump(node))
            chains = _referenced_chains(node)
        else:
            code = _code_form(func.__code__)
            chains = _code_names(func.__code__)
            self.notes.append(f"{function_name(func)}: no reliable source, code object used")
        defaults = tuple(self.encode_value(v) for v in (func.__defaults__ or ()))
        kwdefaults = tuple(sorted((k, self.encode_value(v))
                                  for k, v in (func.__kwdefaults__ or {}).items()))
        closure = []
        for name, cell in zip(func.__code__.co_freevars, func.__closure__ or ()):
            try:
                value = cell.cell_contents
            except ValueError:  # empty cell: a name assigned after the def
                closure.append((name, b"<empty>"))
                continue
            closure.append((name, self.encode_value(value)))
        self.follow(func.__globals__, chains)
        return (code, defaults, kwdefaults, tuple(closure))

    def encode_value(self, value: Any) -> bytes:
        """A default or closure value.  Functions and classes of user code count
        by their code (nested ones inline, module-level ones as helpers);
        anything else by its canonical encoding."""
        if isinstance(value, types.ModuleType):
            return self.encode(("module", value.__name__))
        if callable(value) and not isinstance(value, type):
            value = _unwrap(value)
        if isinstance(value, (types.FunctionType, type)):
            name = function_name(value)
            if id(value) in self.visited or not is_user_module(value.__module__):
                return self.encode(("ref", name))
            if "<" in value.__qualname__:  # <locals> or <lambda>: not reachable by name
                if isinstance(value, type):
                    self.visited.add(id(value))
                    return self.encode(("class", name, self.class_part(value)))
                return self.encode(("function", name, self.function_part(value)))
            self.add_helper(value)
            return self.encode(("ref", name))
        return self.encode(value)

    def add_helper(self, obj: Any) -> None:
        """Record a module-level function or class of user code, once."""
        if id(obj) in self.visited or not is_user_module(getattr(obj, "__module__", None)):
            return
        self.visited.add(id(obj))
        name = function_name(obj)
        if isinstance(obj, type):
            self.helpers[name] = ("class", self.class_part(obj))
        else:
            self.helpers[name] = ("function", self.function_part(obj))

    def class_part(self, cls: type) -> Any:
        node = _parse_definition(cls)
        if node is not None:
            module = sys.modules.get(cls.__module__)
            self.follow(vars(module) if module else {}, _referenced_chains(node))
            return ("ast", _dump(node))
        self.notes.append(f"{function_name(cls)}: no reliable source, method code objects used")
        methods = []
        for attr, value in sorted(vars(cls).items()):
            func = value.__func__ if isinstance(value, (staticmethod, classmethod)) else value
            if isinstance(func, types.FunctionType) and id(func) not in self.visited:
                methods.append((attr, self.function_part(func)))
        return ("methods", tuple(methods))

    def follow(self, namespace: Dict[str, Any], chains: Iterable[Tuple[str, ...]]) -> None:
        """Resolve names and module-attribute chains against a module namespace."""
        for chain in chains:
            if chain[0] not in namespace:
                continue  # a local, a builtin, or not defined (yet)
            obj = namespace[chain[0]]
            used = 1
            while used < len(chain) and isinstance(obj, types.ModuleType):
                if not hasattr(obj, chain[used]):
                    break
                obj = getattr(obj, chain[used])
                used += 1
            self.consider(".".join(chain[:used]), obj)

    def consider(self, label: str, obj: Any) -> None:
        if callable(obj) and not isinstance(obj, type):
            obj = _unwrap(obj)
        if isinstance(obj, (types.FunctionType, type)):
            self.add_helper(obj)
        elif _is_plain_constant(obj):
            self.constants[label] = self.encode(obj)


def identity_manifest(func: Callable[..., Any], ns: str, version: Any,
                      encode: Optional[Encoder] = None) -> Dict[str, Any]:
    """Everything the identity is made of, readable (for debugging why two
    machines disagree on a key)."""
    walker = _Walker(encode or default_encoder)
    func = _unwrap(func)
    name = function_name(func)
    main = walker.function_part(func)
    return {
        "schema": IDENTITY_SCHEMA,
        "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
        "name": name,
        "ns": ns,
        "version": walker.encode(version),
        "function": main,
        "helpers": tuple(sorted(walker.helpers.items())),
        "constants": tuple(sorted(walker.constants.items())),
        "notes": tuple(walker.notes),
    }


def function_identity(func: Callable[..., Any], ns: str, version: Any,
                      encode: Optional[Encoder] = None) -> bytes:
    """The identity bytes: the canonical encoding of the manifest (minus notes)."""
    encode = encode or default_encoder
    manifest = identity_manifest(func, ns, version, encode)
    manifest.pop("notes")
    return encode(tuple(sorted(manifest.items())))
