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
helper exists) and cached by the caller per function object, and across
processes by cached_identity(): a fingerprint of the code objects, values
and source files involved, taken without reading source, maps to the
identity bytes in <data dir>/identity/ (see "persistent identity cache"
below and docs/api.md).  ast, inspect and tokenize are imported only when
source is parsed.
"""
from __future__ import annotations

import marshal
import os
import sys
import threading
import types

from irohds import _native
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

if TYPE_CHECKING:
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
        import warnings

        warnings.warn(
            f"irohds: {tname} has no canonical encoding; keying it by its pickle, "
            "which may differ for equal values (register a stable form or pass "
            "something simpler)", KeyWarning, stacklevel=4)
    import pickle

    return tname.encode() + b"\0" + pickle.dumps(obj, protocol=4)


def default_encoder(obj: Any) -> bytes:
    """_native.canonical with the pickle fallback."""
    return _native.canonical(obj, pickle_fallback)


# --------------------------------------------------------------- user code

def _excluded_roots() -> Tuple[str, ...]:
    import sysconfig

    roots = set()
    for name in ("stdlib", "platstdlib", "purelib", "platlib"):
        path = sysconfig.get_paths().get(name)
        if path:
            roots.add(os.path.realpath(path))
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        roots.add(os.path.realpath(os.path.join(prefix, "lib",
                                                f"python{sys.version_info[0]}.{sys.version_info[1]}")))
    return tuple(sorted(roots))


_EXCLUDED: Optional[Tuple[str, ...]] = None  # computed on first use (sysconfig is slow)
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
    global _EXCLUDED
    if _EXCLUDED is None:
        _EXCLUDED = _excluded_roots()
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

_strip_docstrings: Any = None
_AST_PARSES = 0  # how many sources this process parsed (tests: the identity cache works)


def _docstring_stripper() -> Any:
    """A NodeTransformer dropping the docstring of every function, class and
    module body (built on first use: importing ast costs ~2 ms)."""
    global _strip_docstrings
    if _strip_docstrings is None:
        import ast

        class _StripDocstrings(ast.NodeTransformer):
            def _strip(self, node: Any) -> Any:
                self.generic_visit(node)
                body = node.body
                if (body and isinstance(body[0], ast.Expr)
                        and isinstance(body[0].value, ast.Constant)
                        and isinstance(body[0].value.value, str)):
                    node.body = body[1:] or [ast.Pass()]
                return node

            visit_FunctionDef = _strip
            visit_AsyncFunctionDef = _strip
            visit_ClassDef = _strip

        _strip_docstrings = _StripDocstrings
    return _strip_docstrings()


def _parse_definition(obj: Any) -> Any:
    """The normalized AST node of a function or class, or None when its source
    cannot be trusted (lambda, no source, source that is not its definition)."""
    name = getattr(obj, "__name__", "")
    if name == "<lambda>":
        return None
    import ast
    import inspect
    import textwrap

    global _AST_PARSES
    _AST_PARSES += 1
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError, IndentationError, SyntaxError):
        return None
    try:
        tree = ast.parse(textwrap.dedent(source))
    except SyntaxError:
        return None
    if len(tree.body) != 1 or not isinstance(tree.body[0], (ast.FunctionDef, ast.AsyncFunctionDef,
                                                             ast.ClassDef)):
        return None
    node = tree.body[0]
    if node.name != name:
        return None
    node.decorator_list = []
    return _docstring_stripper().visit(node)


def _dump(node: Any) -> str:
    import ast

    return ast.dump(node, annotate_fields=True, include_attributes=False)


def _referenced_chains(node: Any) -> List[Tuple[str, ...]]:
    """Every loaded name and dotted attribute chain (a.b.c -> ('a','b','c'))."""
    import ast

    chains: List[Tuple[str, ...]] = []
    for sub in ast.walk(node):
        if isinstance(sub, ast.Name) and isinstance(sub.ctx, ast.Load):
            chains.append((sub.id,))
        elif isinstance(sub, ast.Attribute):
            parts: List[str] = [sub.attr]
            base: Any = sub.value
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


# ------------------------------------------------------ persistent identity cache
#
# Computing the identity parses source (inspect.getsource + ast: 1-2 ms per
# process).  A process whose code did not change reuses the identity a
# previous process computed: the *fingerprint* below covers everything the
# identity can depend on, without reading source, and maps to the identity
# bytes in <data dir>/identity/<hex fingerprint>.
#
# The fingerprint is BLAKE3 of the canonical encoding of:
#   * FINGERPRINT_SCHEMA (bumped with IDENTITY_SCHEMA or the walk below),
#     the Python minor version, ns, version;
#   * for the function and every user-code function reached from it:
#     its name, marshal.dumps of its code object (bytecode, constants,
#     names, docstring, line and column tables: any edit that can change its
#     AST changes this), its defaults, keyword defaults and closure values
#     (encoded as the identity encodes them) and its annotations;
#   * the (mtime, size, inode) of the source file of each of those, and of
#     each module a reached class lives in (a class's body is not kept at
#     run time, so its file stands in for it);
#   * names read by that code (co_names, nested code included) resolved
#     against its globals, and against modules so found, up to three
#     attributes deep (a superset of the AST's chains): user functions and
#     classes are walked; plain constants are included by value;
#   * for a class: its bases, its attributes (functions walked, plain
#     constants by value), and, of its module's globals, the plain
#     constants by value and the files of the user modules they come from.
#
# A fingerprint is a local cache key only (co_filename makes it path
# dependent; the identity it maps to is not).  A false miss recomputes the
# same identity; the walk is a superset of what the identity reads so that a
# change that alters the identity alters the fingerprint.

FINGERPRINT_SCHEMA = "irohds-idcache-1/" + IDENTITY_SCHEMA
_CACHE_MAGIC = b"IRID1\n"
_CACHE_READ_MAX = 1 << 20  # an entry is magic + BLAKE3(identity) + identity (C reader: same limit)
_IDENT_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.")


class _Fingerprinter:
    def __init__(self, encode: Encoder) -> None:
        self.encode = encode
        self.parts: List[Any] = []
        self.visited: Set[int] = set()
        self.files: Dict[str, Any] = {}

    def file(self, path: Optional[str]) -> None:
        if not path or path in self.files:
            return
        try:
            st = os.stat(path)
            self.files[path] = (st.st_mtime_ns, st.st_size, st.st_ino)
        except (OSError, ValueError):
            self.files[path] = None

    def value(self, value: Any) -> bytes:
        """Mirror of _Walker.encode_value: user functions/classes are walked."""
        if isinstance(value, types.ModuleType):
            return self.encode(("module", value.__name__))
        if callable(value) and not isinstance(value, type):
            value = _unwrap(value)
        if isinstance(value, (types.FunctionType, type)):
            self.consider(value)
            return self.encode(("ref", function_name(value)))
        return self.encode(value)

    def consider(self, obj: Any, label: str = "") -> None:
        if callable(obj) and not isinstance(obj, type):
            obj = _unwrap(obj)
        if isinstance(obj, types.FunctionType):
            if id(obj) not in self.visited and is_user_module(obj.__module__):
                self.function(obj)
        elif isinstance(obj, type):
            if id(obj) not in self.visited and is_user_module(obj.__module__):
                self.klass(obj)
        elif label and _is_plain_constant(obj):
            self.parts.append(("const", label, self.encode(obj)))

    def function(self, func: Any) -> None:
        self.visited.add(id(func))
        code = func.__code__
        self.file(code.co_filename)
        closure = []
        for name, cell in zip(code.co_freevars, func.__closure__ or ()):
            try:
                closure.append((name, self.value(cell.cell_contents)))
            except ValueError:
                closure.append((name, b"<empty>"))
        self.parts.append(("function", function_name(func), marshal.dumps(code),
                           tuple(self.value(v) for v in (func.__defaults__ or ())),
                           tuple(sorted((k, self.value(v))
                                        for k, v in (func.__kwdefaults__ or {}).items())),
                           tuple(closure)))
        names: Set[str] = set()
        _collect_names(code, names)
        namespace = func.__globals__
        self.annotations(namespace, getattr(func, "__annotations__", None), names)
        self.names(namespace, names)

    def annotations(self, namespace: Dict[str, Any], annotations: Any,
                    names: Set[str]) -> None:
        """Annotations are in the AST (string ones too, as parsed there)."""
        if not annotations:
            return
        for value in annotations.values():
            if isinstance(value, str):
                cleaned = "".join(c if c in _IDENT_CHARS else " " for c in value)
                for token in cleaned.split():
                    names.update(p for p in token.split(".") if p)
            else:
                self.consider(value, "")

    def names(self, namespace: Dict[str, Any], names: Set[str]) -> None:
        ordered = sorted(names)
        for name in ordered:
            if name in namespace:
                self.resolved(name, namespace[name], ordered, 1)

    def resolved(self, label: str, obj: Any, names: List[str], depth: int) -> None:
        if isinstance(obj, types.ModuleType):
            if depth >= 4:
                return
            attrs = vars(obj)
            for name in names:
                if name in attrs:
                    self.resolved(label + "." + name, attrs[name], names, depth + 1)
            return
        self.consider(obj, label)

    def klass(self, cls: type) -> None:
        self.visited.add(id(cls))
        module = sys.modules.get(cls.__module__)
        self.file(getattr(module, "__file__", None))
        attrs = []
        for attr, value in sorted(vars(cls).items()):
            if isinstance(value, (staticmethod, classmethod)):
                value = value.__func__
            if isinstance(value, property):
                for accessor in (value.fget, value.fset, value.fdel):
                    if accessor is not None:
                        self.consider(accessor)
                continue
            if isinstance(value, (types.FunctionType, type)):
                self.consider(value)
            elif _is_plain_constant(value):
                attrs.append((attr, self.encode(value)))
        bases = []
        for base in cls.__bases__:
            bases.append(function_name(base))
            self.consider(base)
        self.parts.append(("class", function_name(cls), tuple(bases), tuple(attrs)))
        if module is None:
            return
        for name, value in sorted(vars(module).items()):
            if isinstance(value, types.ModuleType):
                if is_user_module(value.__name__):
                    self.file(getattr(value, "__file__", None))
            elif isinstance(value, (types.FunctionType, type)):
                origin = getattr(value, "__module__", None)
                if origin != cls.__module__ and is_user_module(origin):
                    self.file(getattr(sys.modules.get(origin), "__file__", None))
            elif _is_plain_constant(value):
                self.parts.append(("modconst", name, self.encode(value)))


def _collect_names(code: types.CodeType, names: Set[str]) -> None:
    names.update(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            _collect_names(const, names)


def identity_fingerprint(func: Callable[..., Any], ns: str, version: Any,
                         encode: Optional[Encoder] = None) -> Optional[bytes]:
    """The 32-byte local cache key of func's identity, or None when it cannot
    be computed (then the identity is computed from source, uncached)."""
    encode = encode or default_encoder
    fp = _Fingerprinter(encode)
    try:
        func = _unwrap(func)
        fp.function(func)
        material = (FINGERPRINT_SCHEMA, sys.version_info[:2], ns, encode(version),
                    function_name(func), tuple(fp.parts), tuple(sorted(fp.files.items())))
        return _native.blake3(encode(material))
    except Exception:  # noqa: BLE001 - the uncached path reports real trouble
        return None


def cache_read(cache_dir: str, fingerprint: bytes) -> Optional[bytes]:
    """The identity stored for fingerprint, or None (absent, short, over
    _CACHE_READ_MAX, corrupt).  One C call: open, read, check the magic and
    BLAKE3 of the identity."""
    try:
        return _native.read_identity_entry(cache_dir, fingerprint, _CACHE_MAGIC)
    except (OSError, ValueError, TypeError):
        return None


def cache_write(cache_dir: str, fingerprint: bytes, identity: bytes) -> None:
    """Store identity under fingerprint (tmp file + rename: readers see the
    whole file or none).  Failures are ignored: the cache is an optimization."""
    if len(identity) + len(_CACHE_MAGIC) + 32 > _CACHE_READ_MAX:
        return
    try:
        os.makedirs(cache_dir, mode=0o700, exist_ok=True)
        final = os.path.join(cache_dir, fingerprint.hex())
        tmp = f"{final}.tmp-{os.getpid()}-{os.urandom(4).hex()}"
        with open(tmp, "wb") as fh:
            fh.write(_CACHE_MAGIC + _native.blake3(identity) + identity)
        os.replace(tmp, final)
    except OSError:
        try:
            os.unlink(tmp)
        except (OSError, UnboundLocalError):
            pass


def cached_identity(func: Callable[..., Any], ns: str, version: Any,
                    cache_dir: Optional[str]) -> bytes:
    """function_identity, through the persistent cache in cache_dir (None: no cache)."""
    fingerprint = identity_fingerprint(func, ns, version) if cache_dir else None
    if fingerprint is not None:
        identity = cache_read(cache_dir, fingerprint)  # type: ignore[arg-type]
        if identity is not None:
            return identity
    identity = function_identity(func, ns, version)
    if fingerprint is not None:
        cache_write(cache_dir, fingerprint, identity)  # type: ignore[arg-type]
    return identity
