"""Hostile pickles, as a peer could send them in place of a result.

payloads(sentinel) returns {name: pickle bytes}.  Every payload, loaded with
plain pickle, creates the file `sentinel` (test_restricted checks that in a
subprocess, so none of them is a dud); the restricted unpickler must refuse
each one before any of it runs.  Some are made by pickling objects whose
__reduce__ returns a dangerous callable, some are written opcode by opcode.

numpy_pointer_array() is different: no global outside the numpy allow-list,
yet plain pickle builds an object array from raw bytes (pointers chosen by
the sender) and crashes when the array is read.
"""
from __future__ import annotations

import builtins
import copyreg
import os
import pickle
import subprocess
import struct
from typing import Any, Dict

from pickle import (BINPERSID, BININT1, BUILD, EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, EXT1,
                    GLOBAL, MARK, NEWFALSE, NEWOBJ, NEWTRUE, NONE, PERSID, PROTO, REDUCE,
                    SETITEM, SHORT_BINBYTES, SHORT_BINUNICODE, STACK_GLOBAL, STOP, TUPLE, TUPLE1,
                    TUPLE2, TUPLE3)

EXT_CODE = 0x7E  # the extension code test_restricted registers for os.system


def _s(text: str) -> bytes:
    raw = text.encode()
    return SHORT_BINUNICODE + bytes([len(raw)]) + raw


def _g(module: str, name: str) -> bytes:
    return _s(module) + _s(name) + STACK_GLOBAL


class Reduce:
    """An object that pickles as func(*args)."""

    def __init__(self, func: Any, *args: Any) -> None:
        self.func, self.args = func, args

    def __reduce__(self) -> Any:
        return (self.func, self.args)


class ReduceBuild:
    """An object that pickles as func(*args) followed by a BUILD with state."""

    def __init__(self, func: Any, args: tuple, state: Any) -> None:
        self.func, self.args, self.state = func, args, state

    def __reduce__(self) -> Any:
        return (self.func, self.args, self.state)


class Gadget:
    """A class whose __setstate__ runs a command: what a BUILD can reach."""

    def __setstate__(self, state: Dict[str, str]) -> None:
        os.system(state["cmd"])


def payloads(sentinel: str) -> Dict[str, bytes]:
    touch = f"touch {sentinel}"
    code = f"open({sentinel!r}, 'w').close()"
    p: Dict[str, bytes] = {}
    p["os.system"] = pickle.dumps(Reduce(os.system, touch), protocol=5)
    p["builtins.exec"] = pickle.dumps(Reduce(builtins.exec, code), protocol=5)
    p["builtins.eval"] = pickle.dumps(
        Reduce(builtins.eval, f"__import__('os').system({touch!r})"), protocol=5)
    p["subprocess.Popen"] = pickle.dumps(Reduce(subprocess.Popen, ["touch", sentinel]),
                                         protocol=5)
    # getattr(__import__('os'), 'system')('touch ...'), by hand
    p["getattr-chain"] = (
        PROTO + b"\x04" + _g("builtins", "getattr")
        + _g("builtins", "__import__") + _s("os") + TUPLE1 + REDUCE
        + _s("system") + TUPLE2 + REDUCE
        + _s(touch) + TUPLE1 + REDUCE + STOP)
    # protocol 0 text opcodes: GLOBAL 'posix system'
    p["text-global"] = (GLOBAL + f"{os.system.__module__}\nsystem\n".encode() + MARK
                        + b"V" + touch.encode() + b"\n" + TUPLE + REDUCE + STOP)
    p["nested-in-list"] = pickle.dumps([1, "ok", {"deep": [Reduce(os.system, touch)]}],
                                       protocol=5)
    p["nested-in-dict-key"] = pickle.dumps({(1, Reduce(os.system, touch)): 2}, protocol=5)
    p["numpy-object-array"] = _numpy_object_array(touch)
    # BUILD on an instance of a class with a harmful __setstate__
    p["build-setstate"] = (
        PROTO + b"\x04" + _g(__name__, "Gadget") + EMPTY_TUPLE + NEWOBJ
        + EMPTY_DICT + _s("cmd") + _s(touch) + SETITEM + BUILD + STOP)
    # copyreg's reconstructor with os.system standing in for a class
    p["copyreg-reconstructor"] = pickle.dumps(
        Reduce(copyreg._reconstructor, Gadget, object, None), protocol=2)[:-1] \
        + EMPTY_DICT + _s("cmd") + _s(touch) + SETITEM + BUILD + STOP
    # an extension code registered (copyreg.add_extension) for os.system
    p["copyreg-extension"] = (PROTO + b"\x04" + EXT1 + bytes([EXT_CODE]) + _s(touch)
                              + TUPLE1 + REDUCE + STOP)
    # a persistent id that a permissive persistent_load would resolve
    p["persistent-id"] = PROTO + b"\x04" + _s(touch) + BINPERSID + STOP
    p["persistent-id-text"] = PERSID + touch.encode() + b"\n" + STOP
    return p


def _numpy_object_array(touch: str) -> bytes:
    import numpy as np

    return pickle.dumps(np.array([1, Reduce(os.system, touch)], dtype=object), protocol=5)


def numpy_pointer_array(address: int = 0x4141414141414141) -> bytes:
    """An object array built from 8 raw bytes: numpy's pickle globals only.
    The dtype is 'O8' rebuilt with a BUILD state whose flags (0) deny that it
    holds objects, so the array's BUILD accepts raw bytes for its element."""
    def i32(v: int) -> bytes:
        return b"J" + struct.pack("<i", v)
    return (PROTO + b"\x04"
            + _g("numpy._core.multiarray", "_reconstruct") + _g("numpy", "ndarray")
            + BININT1 + b"\x00" + TUPLE1 + SHORT_BINBYTES + b"\x01b" + TUPLE3 + REDUCE
            + MARK + BININT1 + b"\x01" + BININT1 + b"\x01" + TUPLE1
            + _g("numpy", "dtype") + _s("O8") + NEWFALSE + NEWTRUE + TUPLE3 + REDUCE
            + MARK + BININT1 + b"\x03" + _s("|") + NONE + NONE + NONE + i32(-1) + i32(-1)
            + BININT1 + b"\x00" + TUPLE + BUILD
            + NEWFALSE + SHORT_BINBYTES + b"\x08" + struct.pack("<Q", address) + TUPLE + BUILD
            + STOP)


def numpy_overlapping_fields() -> bytes:
    """A structured dtype whose BUILD state puts an object field and a float
    field at the same offset (numpy's constructor refuses that; its
    __setstate__ does not): a float written there becomes a pointer."""
    import numpy as np

    state = (3, "|", None, ("a", "b"), {"a": (np.dtype("O"), 0), "b": (np.dtype("f8"), 0)},
             8, 1, 27)
    return pickle.dumps(ReduceBuild(np.dtype, ("V8", False, True), state), protocol=5)


def build_on(kind: str) -> bytes:
    """A BUILD on a plain object, which has nothing to rebuild."""
    target = {"dict": EMPTY_DICT, "list": EMPTY_LIST, "tuple": EMPTY_TUPLE}[kind]
    return PROTO + b"\x04" + target + EMPTY_DICT + _s("a") + NONE + SETITEM + BUILD + STOP
