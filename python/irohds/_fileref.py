"""Large outputs as files: irohds.resolve(name) and irohds.FileRef(name).

Inside a memoized call, ``resolve(name)`` hands out a path in a per-call
staging dir, ``<data dir>/staging/<random id>/<name>``; the function writes
its file there and returns ``FileRef(name)`` (anywhere inside its result).
At put time the daemon materializes the staged files as read-only hard links
under ``<data dir>/files/<64 hex cache key>/<name>``, and every load of the
result binds its FileRefs to that directory, so ``ref.path`` is a readable
local file in whichever process gets the result.

A FileRef pickles by name only: where the files live is a property of the
machine that loads the result, never of the one that stored it.  The staging
dir is a contextvar set by the memo wrapper, so threads and asyncio tasks
each see their own call's dir.

Names are relative paths of safe components (no "..", ".", empty component,
NUL, absolute path); a name that would lead out of the staging dir through a
symlink is refused too (ValueError).  A result from a peer is loaded with
_REMOTE set: each FileRef in it must then also resolve, symlinks followed,
inside its files/<key>/ dir (the daemon links a peer's files there; this is
the loading side's own check).
"""
from __future__ import annotations

import contextlib
import contextvars
import os
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, Iterator, Optional, Tuple

NAME_MAX = 1024  # IROHDS_NAME_MAX in util.h


class CallStaging:
    """The staging dir of one memoized call, created on first use."""

    def __init__(self, staging_root: str) -> None:
        self.root = staging_root
        self.dir: Optional[str] = None

    @property
    def name(self) -> Optional[str]:
        """The dir's single path component (what PUT carries), or None if unused."""
        return os.path.basename(self.dir) if self.dir else None

    def ensure(self) -> str:
        if self.dir is None:
            os.makedirs(self.root, mode=0o700, exist_ok=True)
            path = os.path.join(self.root, os.urandom(16).hex())
            os.mkdir(path, 0o700)
            self.dir = path
        return self.dir

    def cleanup(self) -> None:
        if self.dir is not None:
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)


_CALL: contextvars.ContextVar[Optional[CallStaging]] = contextvars.ContextVar(
    "irohds_call_staging", default=None)
_BIND: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar(
    "irohds_fileref_bind", default=None)
_REMOTE: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "irohds_fileref_remote", default=False)


@contextlib.contextmanager
def in_call(staging: CallStaging) -> Iterator[CallStaging]:
    """Run the body as a memoized call that may resolve() names."""
    token = _CALL.set(staging)
    try:
        yield staging
    finally:
        _CALL.reset(token)


@contextlib.contextmanager
def bound_to(files_dir: Optional[str]) -> Iterator[None]:
    """FileRefs created (unpickled) in the body point into files_dir."""
    token = _BIND.set(files_dir)
    try:
        yield
    finally:
        _BIND.reset(token)


def check_name(name: Any) -> str:
    """name if it is a safe relative file name, else ValueError (TypeError if not a str)."""
    if not isinstance(name, str):
        raise TypeError(f"a FileRef name is a str, not {type(name).__name__}")
    if not name or len(name.encode("utf-8", "surrogatepass")) > NAME_MAX or "\0" in name:
        raise ValueError(f"invalid FileRef name {name!r}")
    if os.path.isabs(name):
        raise ValueError(f"FileRef name {name!r} is absolute; use a relative name")
    for part in name.split("/"):
        if part in ("", ".", ".."):
            raise ValueError(f"FileRef name {name!r} has an empty, '.' or '..' component")
    return name


def _inside(path: str, root: str) -> bool:
    real = os.path.realpath(path)
    return real == root or real.startswith(root + os.sep)


def check_inside(name: str, base: str) -> None:
    """ValueError unless base/name, symlinks followed, stays inside base."""
    root = os.path.realpath(base)
    if not _inside(os.path.join(base, *name.split("/")), root):
        raise ValueError(f"FileRef name {name!r} leads out of {base}")


def resolve(name: str) -> str:
    """Inside a call of an @irohds.memo function: the path to write the file
    ``name`` to (its parent dirs are created).  Return ``FileRef(name)``."""
    check_name(name)
    staging = _CALL.get()
    if staging is None:
        raise RuntimeError("irohds.resolve() can only be called inside a call of an "
                           "@irohds.memo function (it hands out that call's staging dir)")
    base = staging.ensure()
    root = os.path.realpath(base)
    parts = name.split("/")
    current = base
    for part in parts[:-1]:  # create parents one by one, never through a link out
        current = os.path.join(current, part)
        if os.path.lexists(current):
            if not _inside(current, root) or not os.path.isdir(current):
                raise ValueError(f"FileRef name {name!r} leads out of the staging dir")
        else:
            os.mkdir(current, 0o700)
    path = os.path.join(base, *parts)
    if os.path.lexists(path) and not _inside(path, root):
        raise ValueError(f"FileRef name {name!r} leads out of the staging dir")
    return path


class FileRef:
    """A file that is part of a memoized result.  Immutable; pickles by name.

    ``ref.name`` is the name given to resolve(); ``ref.path`` a readable local
    file (``os.fspath(ref)`` and ``open(ref)`` work too)."""

    __slots__ = ("_name", "_base")
    _name: str
    _base: Optional[str]

    def __new__(cls, name: str) -> "FileRef":
        check_name(name)
        self = super().__new__(cls)
        base = _BIND.get()
        if base is None:
            staging = _CALL.get()
            base = staging.dir if staging is not None else None
        elif _REMOTE.get():
            check_inside(name, base)  # a result from a peer: no way out through a link
        object.__setattr__(self, "_name", name)
        object.__setattr__(self, "_base", base)
        return self

    @property
    def name(self) -> str:
        return self._name

    @property
    def path(self) -> str:
        if self._base is None:
            raise ValueError(
                f"FileRef({self._name!r}) is not bound to any files: return it from an "
                "@irohds.memo function after writing irohds.resolve(name)")
        return os.path.join(self._base, *self._name.split("/"))

    def __fspath__(self) -> str:
        return self.path

    def __setattr__(self, attr: str, value: Any) -> None:
        raise AttributeError("FileRef is immutable")

    def __delattr__(self, attr: str) -> None:
        raise AttributeError("FileRef is immutable")

    def __reduce__(self) -> Tuple[Any, Tuple[str]]:
        return (FileRef, (self._name,))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, FileRef):
            return NotImplemented
        return (self._name, self._base) == (other._name, other._base)

    def __hash__(self) -> int:
        return hash(("irohds.FileRef", self._name))

    def __repr__(self) -> str:
        return f"FileRef({self._name!r})"

    def _key_material(self) -> bytes:
        """What identifies this file as an argument of another memoized call:
        its name and the cache key of the result it belongs to (portable),
        else its content hash, else its name alone."""
        origin = os.path.basename(self._base) if self._base else ""
        if len(origin) == 64 and all(c in "0123456789abcdef" for c in origin):
            return self._name.encode() + b"\0key\0" + origin.encode()
        if self._base is not None and os.path.isfile(self.path):
            from irohds import _native

            with open(self.path, "rb") as f:
                return self._name.encode() + b"\0blake3\0" + _native.blake3(f.read())
        return self._name.encode()
