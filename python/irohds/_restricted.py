"""The restricted unpickler: how a result from an untrusted peer is loaded.

Plain ``pickle.loads`` runs whatever callables the stream names, so a result
computed by another machine is unpickled with plain pickle only when its
producer is trusted (docs/security.md).  Every other result from a peer goes
through ``loads`` here, which builds plain data and nothing else:

    None, bool, int, float, complex, str, bytes, bytearray, tuple, list,
    dict, set, frozenset, numpy arrays / scalars / dtypes, irohds.FileRef

The stream is read by CPython's pure-Python unpickler (``pickle._Unpickler``)
with its dispatch table changed, because the C unpickler only lets a subclass
veto globals, and that is not enough: numpy's own pickle globals can be
combined into memory corruption.  A ``numpy.dtype`` rebuilt with a BUILD
whose state says "no objects" for an object dtype, followed by an array
BUILD from raw bytes, makes an object array whose elements are pointers
chosen by the attacker (tests/python/test_restricted.py shows plain pickle
crashing on one).  So here:

* a global is looked up in a fixed table (ALLOWED); anything else raises
  ``Refused`` naming it.  Nothing is imported for a refused name; numpy is
  imported only when the stream names numpy;
* REDUCE calls only the callables of that table, through a checking
  wrapper: numpy's ``_reconstruct`` only as numpy writes it,
  ``dtype(spec, align, copy)`` always as a fresh copy (a BUILD then never
  reaches a dtype numpy shares; numpy 2.4 also ignores one on its builtin
  dtypes, but nothing here relies on that), ``_frombuffer`` / ``scalar``
  only with a checked, non-object dtype;
* BUILD applies only to a dtype or an array that this load created and has
  not built yet.  numpy's dtype __setstate__ trusts its input (fuzzing,
  tests/python/numpy_fuzz.py, finds states that crash it, or that make a
  dtype numpy crashes on merely comparing), so the sender's state never
  reaches it: the state must have the exact shape and types numpy writes,
  the dtype it describes is built with numpy's constructor (which checks
  offsets, overlaps, sizes), and the state must equal the one numpy writes
  for that dtype; numpy's own state is what gets applied.  An array's state
  must carry such a dtype and, for an object dtype, a list of exactly one
  object (made here) per element, else raw bytes of exactly the array's
  size.  A dtype may be used only after its BUILD, so it cannot change
  under an array that already uses it;
* NEWOBJ, NEWOBJ_EX, INST, OBJ, extension codes and persistent ids are
  refused outright.

Out-of-band buffers (the result container, docs/results.md) are passed
through as given, so an array is still a read-only view of the mapped blob:
no copy, as on the trusted path.  The price is speed on the rest of the
stream: the pure-Python unpickler takes 1-2 us per opcode (20-25x plain
pickle; 150 ms for a list of 100 000 floats), so a result made of millions
of small Python objects loads in seconds (an array is one opcode whatever
its size).  It runs only for results from
untrusted peers, which arrive over the network anyway.
"""
from __future__ import annotations

import io
import pickle
import re
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, List, Sequence, Tuple


class Refused(pickle.UnpicklingError):
    """The stream asks for something that is not plain data.  ``what`` names
    it ("global posix.system", "BUILD on dict", ...)."""

    def __init__(self, what: str) -> None:
        super().__init__(f"refused {what}")
        self.what = what


# (module, name) -> what find_class returns.  numpy names are resolved on
# first use (numpy is imported only for a stream that names it); both the
# numpy 2 (numpy._core) and numpy 1 (numpy.core) spellings are accepted.
_BUILTINS = {("builtins", n) for n in ("complex", "set", "frozenset", "bytearray")}
_NUMPY = {
    ("numpy", "ndarray"): "ndarray",
    ("numpy", "dtype"): "dtype",
    ("numpy._core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy.core.multiarray", "_reconstruct"): "_reconstruct",
    ("numpy._core.multiarray", "scalar"): "scalar",
    ("numpy.core.multiarray", "scalar"): "scalar",
    ("numpy._core.numeric", "_frombuffer"): "_frombuffer",
    ("numpy.core.numeric", "_frombuffer"): "_frombuffer",
}
_FILEREF = ("irohds._fileref", "FileRef")
ALLOWED = sorted(f"{m}.{n}" for m, n in _BUILTINS | set(_NUMPY) | {_FILEREF})

_DTYPE_SPEC = re.compile(r"[A-Za-z][0-9]{0,9}\Z")  # what numpy writes: 'f8', 'O8', 'U5', 'V16', 'M8'
_DEPTH = 6  # how deep a dtype state is searched for the dtypes it uses
_ALIGNED_STRUCT = 0x80  # NPY_ALIGNED_STRUCT in a dtype's flags


def _numpy() -> Any:
    try:
        import numpy
    except ImportError as exc:
        raise Refused("numpy (not installed here)") from exc
    return numpy


def _numpy_callables(np: Any) -> Dict[str, Any]:
    """The real numpy objects behind the _NUMPY names."""
    core = getattr(np, "_core", None) or getattr(np, "core")
    return {"ndarray": np.ndarray, "dtype": np.dtype,
            "_reconstruct": core.multiarray._reconstruct,
            "scalar": core.multiarray.scalar,
            "_frombuffer": core.numeric._frombuffer}


def _canonical(np: Any, dt: Any) -> Any:
    """A dtype built afresh from dt's description (fields, offsets, titles,
    subarray, type string), so that numpy derives its flags itself."""
    if dt.names is not None:
        fields = dt.fields
        spec: Dict[str, Any] = {
            "names": list(dt.names),
            "formats": [_canonical(np, fields[n][0]) for n in dt.names],
            "offsets": [fields[n][1] for n in dt.names],
            "itemsize": dt.itemsize}
        titles = [fields[n][2] if len(fields[n]) > 2 else None for n in dt.names]
        if any(t is not None for t in titles):
            spec["titles"] = titles
        return np.dtype(spec, align=dt.isalignedstruct)
    if dt.subdtype is not None:
        base, shape = dt.subdtype
        return np.dtype((_canonical(np, base), shape))
    return np.dtype(dt.str)


def _check_dtype(np: Any, dt: Any) -> Any:
    """The canonical twin of dt, or Refused if dt's flags, item size or
    alignment are not what numpy derives from its description (a BUILD
    state can set them to anything)."""
    try:
        twin = _canonical(np, dt)
        honest = (twin.flags == dt.flags and twin.itemsize == dt.itemsize
                  and twin.alignment == dt.alignment and twin == dt)
    except Exception as exc:  # noqa: BLE001 - numpy refusing the description is a refusal
        raise Refused(f"numpy.dtype with an invalid description ({exc})") from exc
    if not honest:
        raise Refused(f"numpy.dtype whose state contradicts its description "
                      f"(flags {dt.flags}, expected {twin.flags})")
    return twin


def _shape(value: Any, what: str) -> Tuple[int, ...]:
    if type(value) is not tuple or not all(type(n) is int and n >= 0 for n in value):
        raise Refused(f"{what}: shape {value!r:.80}")
    return value


class _Unpickler(pickle._Unpickler):  # type: ignore[name-defined,misc]
    """pickle's pure-Python unpickler with the dispatch changes above."""

    dispatch = dict(pickle._Unpickler.dispatch)  # type: ignore[attr-defined]

    def __init__(self, data: Any, buffers: Sequence[Any]) -> None:
        super().__init__(io.BytesIO(data), buffers=buffers, fix_imports=False)
        self._np: Any = None
        self._real: Dict[str, Any] = {}
        self._calls: Dict[int, Tuple[Any, Callable[..., Any]]] = {}
        # dtypes this load made, by id (the objects are kept alive here, so
        # an id is never reused while it means something):
        self._unbuilt: Dict[int, Tuple[Any, str, bool]] = {}  # dtype, spec, align
        self._built: Dict[int, Any] = {}
        self._new_arrays: Dict[int, Any] = {}  # from _reconstruct, not built yet
        self._register(complex, self._complex)
        self._register(set, self._set)
        self._register(frozenset, self._frozenset)
        self._register(bytearray, self._bytearray)

    def _register(self, real: Any, safe: Callable[..., Any]) -> None:
        self._calls[id(real)] = (real, safe)

    # ----------------------------------------------------------- globals
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) in _BUILTINS:
            return {"complex": complex, "set": set, "frozenset": frozenset,
                    "bytearray": bytearray}[name]
        if (module, name) == _FILEREF:
            from irohds._fileref import FileRef

            self._register(FileRef, self._fileref)
            return FileRef
        role = _NUMPY.get((module, name))
        if role is None:
            raise Refused(f"global {module}.{name}")
        if self._np is None:
            self._np = _numpy()
            self._real = _numpy_callables(self._np)
            self._register(self._real["dtype"], self._dtype)
            self._register(self._real["_reconstruct"], self._reconstruct)
            self._register(self._real["scalar"], self._scalar)
            self._register(self._real["_frombuffer"], self._frombuffer)
        return self._real[role]

    # ------------------------------------------------------------ opcodes
    def load_reduce(self) -> None:
        stack = self.stack
        args = stack.pop()
        func = stack[-1]
        entry = self._calls.get(id(func))
        if entry is None or entry[0] is not func:
            raise Refused(f"REDUCE on {_describe(func)}")
        if type(args) is not tuple:
            raise Refused(f"REDUCE with arguments of type {type(args).__name__}")
        stack[-1] = entry[1](*args)

    def load_build(self) -> None:
        stack = self.stack
        state = stack.pop()
        inst = stack[-1]
        key = id(inst)
        if key in self._unbuilt and self._unbuilt[key][0] is inst:
            self._build_dtype(inst, state)
        elif key in self._new_arrays and self._new_arrays[key] is inst:
            self._build_array(inst, state)
        else:
            raise Refused(f"BUILD on {_describe(inst)}")

    def _refuse_newobj(self) -> None:
        raise Refused("NEWOBJ (object construction)")

    def _refuse_inst(self) -> None:
        raise Refused("INST/OBJ (object construction)")

    def _refuse_ext(self) -> None:
        raise Refused("an extension code (copyreg registry)")

    def _refuse_persid(self) -> None:
        raise Refused("a persistent id")

    def persistent_load(self, pid: Any) -> Any:
        raise Refused("a persistent id")

    dispatch[pickle.REDUCE[0]] = load_reduce
    dispatch[pickle.BUILD[0]] = load_build
    dispatch[pickle.NEWOBJ[0]] = _refuse_newobj
    dispatch[pickle.NEWOBJ_EX[0]] = _refuse_newobj
    dispatch[pickle.INST[0]] = _refuse_inst
    dispatch[pickle.OBJ[0]] = _refuse_inst
    dispatch[pickle.EXT1[0]] = _refuse_ext
    dispatch[pickle.EXT2[0]] = _refuse_ext
    dispatch[pickle.EXT4[0]] = _refuse_ext
    dispatch[pickle.PERSID[0]] = _refuse_persid
    dispatch[pickle.BINPERSID[0]] = _refuse_persid

    # -------------------------------------------------- builtin callables
    @staticmethod
    def _complex(*args: Any) -> complex:
        if len(args) > 2 or not all(type(a) in (int, float, bool) for a in args):
            raise Refused("builtins.complex with arguments other than numbers")
        return complex(*args)

    @staticmethod
    def _items(args: Tuple[Any, ...], what: str) -> Any:
        if args == ():
            return ()
        if len(args) != 1 or type(args[0]) not in (list, tuple):
            raise Refused(f"builtins.{what} with arguments other than a list")
        return args[0]

    def _set(self, *args: Any) -> set:
        return set(self._items(args, "set"))

    def _frozenset(self, *args: Any) -> frozenset:
        return frozenset(self._items(args, "frozenset"))

    @staticmethod
    def _bytearray(*args: Any) -> bytearray:
        # bytes-like only: bytearray(10**12) would be a memory bomb
        if args == ():
            return bytearray()
        if len(args) != 1 or not isinstance(args[0], (bytes, bytearray, memoryview,
                                                      pickle.PickleBuffer)):
            raise Refused("builtins.bytearray with arguments other than bytes")
        return bytearray(args[0])

    @staticmethod
    def _fileref(*args: Any) -> Any:
        """FileRef(name): bound to files/<key>/ like any FileRef loaded from
        a peer, which refuses a name that leads out of that dir (_fileref)."""
        from irohds._fileref import FileRef

        if len(args) != 1 or type(args[0]) is not str:
            raise Refused("irohds.FileRef with arguments other than a name")
        try:
            return FileRef(args[0])
        except ValueError as exc:
            raise Refused(f"irohds.FileRef {args[0]!r:.200} ({exc})") from exc

    # ---------------------------------------------------- numpy callables
    def _dtype(self, spec: Any = None, align: Any = False, copy: Any = True) -> Any:
        if type(spec) is not str or not _DTYPE_SPEC.match(spec) or type(align) is not bool:
            raise Refused(f"numpy.dtype({spec!r:.40}, {align!r:.10}) (not as numpy pickles)")
        dt = self._np.dtype(spec, align, True)  # always a fresh copy: BUILD may follow
        self._unbuilt[id(dt)] = (dt, spec, align)
        return dt

    def _sealed_dtype(self, dt: Any, what: str) -> Any:
        """dt if it is a dtype this load made and built (so checked), else Refused."""
        if not self._is_built_dtype(dt):
            raise Refused(f"{what} with a dtype not rebuilt by this load ({_describe(dt)})")
        return dt

    def _dtypes_in(self, value: Any, depth: int = 0) -> List[Any]:
        if isinstance(value, self._np.dtype):
            return [value]
        if depth >= _DEPTH or type(value) not in (tuple, list, dict):
            return []
        items = value.items() if type(value) is dict else value
        found: List[Any] = []
        for item in items:
            found += self._dtypes_in(item, depth + 1)
        return found

    def _check_dtype_state(self, spec: str, state: Any) -> None:
        """Refused unless state has exactly the shape and types of the states
        numpy writes for a dtype of that spec (version 3: 8 items; version 4:
        9, with metadata; a datetime's always with its unit).  numpy's dtype
        __setstate__ trusts what it is given: an int where the fields dict
        goes, or a datetime without its unit, crashes it."""
        if type(state) is not tuple or len(state) not in (8, 9) or \
                state[0] != len(state) - 5 or type(state[0]) is not int:
            raise Refused("numpy.dtype BUILD with a state numpy does not write")
        _, endian, subarray, names, fields, elsize, alignment, flags = state[:8]
        ok = (type(endian) is str and endian in ("<", ">", "|", "=")
              and all(type(n) is int for n in (elsize, alignment, flags))
              and elsize >= -1 and alignment >= -1 and 0 <= flags <= 0xFFFF
              and (names is None) == (fields is None))
        if ok and subarray is not None:
            ok = (type(subarray) is tuple and len(subarray) == 2
                  and self._is_built_dtype(subarray[0]) and type(subarray[1]) is tuple
                  and all(type(n) is int and 0 <= n < 2**31 for n in subarray[1]))
        if ok and names is not None:
            ok = (type(names) is tuple and type(fields) is dict and len(names) > 0
                  and all(type(n) is str and n in fields for n in names)
                  and all(type(k) is str and self._is_field(v) for k, v in fields.items()))
        datetime = spec[0] in "Mm"
        if ok:
            ok = (len(state) == 9 and self._is_dtype_metadata(state[8], datetime)
                  or len(state) == 8 and not datetime)
        if not ok:
            raise Refused("numpy.dtype BUILD with a state numpy does not write")

    def _is_built_dtype(self, dt: Any) -> bool:
        return self._built.get(id(dt)) is dt

    def _is_field(self, value: Any) -> bool:
        """(dtype, offset) or (dtype, offset, title), as numpy writes a field."""
        return (type(value) is tuple and len(value) in (2, 3) and self._is_built_dtype(value[0])
                and type(value[1]) is int and 0 <= value[1] < 2**31
                and (len(value) == 2 or type(value[2]) is str))

    @staticmethod
    def _is_dtype_metadata(value: Any, datetime: bool) -> bool:
        """None or a metadata dict; for a datetime (that, (unit, num, den, events))."""
        if not datetime:
            return value is None or type(value) is dict
        if type(value) is not tuple or len(value) != 2 or not (value[0] is None
                                                             or type(value[0]) is dict):
            return False
        unit = value[1]
        return (type(unit) is tuple and len(unit) == 4 and type(unit[0]) is bytes
                and len(unit[0]) <= 16 and all(type(n) is int and 0 < n < 2**31 for n in unit[1:]))

    def _build_dtype(self, dt: Any, state: Any) -> None:
        """The sender's state never reaches numpy's dtype __setstate__, which
        trusts it (a state numpy would never write can crash it, or make a
        dtype that crashes numpy when merely compared).  Instead the dtype
        the state describes is built with numpy's constructor, which checks
        everything; the state must then be exactly the one numpy itself
        writes for that dtype, and that state, numpy's own, is applied."""
        _, spec, align = self._unbuilt[id(dt)]
        self._check_dtype_state(spec, state)
        for inner in self._dtypes_in(state):
            self._sealed_dtype(inner, "numpy.dtype BUILD")
        try:
            good = self._describe_dtype(spec, state)
            _, args, own = good.__reduce__()
            same = args == (spec, align, True) and own == state
        except Exception as exc:  # noqa: BLE001 - numpy refusing the description is a refusal
            raise Refused(f"numpy.dtype with an invalid description ({exc})") from exc
        if not same:
            raise Refused("numpy.dtype BUILD with a state that is not numpy's own for the "
                          "dtype it describes")
        dt.__setstate__(own)
        _check_dtype(self._np, dt)
        del self._unbuilt[id(dt)]
        self._built[id(dt)] = dt

    def _describe_dtype(self, spec: str, state: Tuple[Any, ...]) -> Any:
        """The dtype a (checked) BUILD state describes, made by numpy's constructor."""
        np = self._np
        _, endian, subarray, names, fields, elsize, _, flags = state[:8]
        extra = state[8] if len(state) == 9 else None
        metadata = extra[0] if type(extra) is tuple else extra
        kw = {"metadata": metadata} if metadata else {}
        if names is not None:
            entries = [fields[n] for n in names]
            desc: Dict[str, Any] = {"names": list(names), "formats": [e[0] for e in entries],
                                    "offsets": [e[1] for e in entries], "itemsize": elsize}
            if any(len(e) == 3 for e in entries):
                desc["titles"] = [e[2] if len(e) == 3 else None for e in entries]
            return np.dtype(desc, align=bool(flags & _ALIGNED_STRUCT), **kw)
        if subarray is not None:
            return np.dtype(subarray, **kw)
        text = spec
        if type(extra) is tuple:  # a datetime: its unit and multiplier
            unit, num = extra[1][0].decode("ascii"), extra[1][1]
            text += f"[{num if num != 1 else ''}{unit}]" if unit != "generic" else ""
        return np.dtype((endian if endian in "<>" else "") + text, **kw)

    def _has_objects(self, dt: Any) -> bool:
        return bool(_check_dtype(self._np, dt).hasobject)

    def _reconstruct(self, subtype: Any = None, shape: Any = None, typecode: Any = None) -> Any:
        if subtype is not self._np.ndarray or shape != (0,) or typecode != b"b":
            raise Refused("numpy _reconstruct other than numpy's own empty ndarray")
        arr = self._real["_reconstruct"](subtype, shape, typecode)
        self._new_arrays[id(arr)] = arr
        return arr

    def _build_array(self, arr: Any, state: Any) -> None:
        if type(state) is not tuple or len(state) not in (4, 5):
            raise Refused("ndarray BUILD with a state that is not numpy's")
        shape, dt, fortran, raw = state[-4:]
        _shape(shape, "ndarray BUILD")
        self._sealed_dtype(dt, "ndarray BUILD")
        if len(state) == 5 and type(state[0]) is not int:
            raise Refused("ndarray BUILD with a non-integer version")
        if type(fortran) not in (bool, int):
            raise Refused("ndarray BUILD with a non-boolean order flag")
        want = list if self._has_objects(dt) else bytes
        if type(raw) is not want:
            raise Refused(f"ndarray BUILD of dtype {dt} from {type(raw).__name__} "
                          f"(numpy writes {want.__name__})")
        # numpy trusts an object array's list to hold one item per element
        # (a short list makes it read past the list's end), so count here
        count = 1
        for n in shape:
            count *= n
        if count > 2**40 or len(raw) != (count if want is list else count * dt.itemsize):
            raise Refused(f"ndarray BUILD of shape {shape!r:.60} from {len(raw)} "
                          f"{'items' if want is list else 'bytes'}")
        arr.__setstate__(state)
        del self._new_arrays[id(arr)]

    def _plain_dtype(self, dt: Any, what: str) -> Any:
        self._sealed_dtype(dt, what)
        if self._has_objects(dt):
            raise Refused(f"{what} with an object dtype ({dt})")
        return dt

    def _frombuffer(self, buf: Any = None, dt: Any = None, shape: Any = None,
                    order: Any = None) -> Any:
        if not isinstance(buf, (bytes, bytearray, memoryview, pickle.PickleBuffer)):
            raise Refused(f"numpy _frombuffer over {_describe(buf)}")
        self._plain_dtype(dt, "numpy _frombuffer")
        _shape(shape, "numpy _frombuffer")
        if order not in ("C", "F", "A", "K"):
            raise Refused(f"numpy _frombuffer with order {order!r:.20}")
        # numpy's own function: a view of buf (the mapped blob), no copy
        return self._real["_frombuffer"](buf, dt, shape, order)

    def _scalar(self, dt: Any = None, raw: Any = None) -> Any:
        self._plain_dtype(dt, "numpy scalar")
        if type(raw) is not bytes or len(raw) != dt.itemsize:
            raise Refused(f"numpy scalar of dtype {dt} from {type(raw).__name__}")
        return self._real["scalar"](dt, raw)


def _describe(obj: Any) -> str:
    """What an object is, for a refusal message (never its repr: that could
    be long or, for a hostile object, run code)."""
    kind = type(obj)
    if kind.__module__ == "builtins" and callable(obj):
        return f"{kind.__name__} {getattr(obj, '__qualname__', '?')}"
    return f"{kind.__module__}.{kind.__qualname__}".replace("builtins.", "")


def loads(data: Any, buffers: Sequence[Any] = ()) -> Any:
    """Unpickle a result made only of plain data (see the module docstring).
    Refused for anything else; other UnpicklingError / ValueError for a
    malformed stream."""
    return _Unpickler(data, buffers).load()


def allowed_globals() -> List[str]:
    """The globals a restricted load admits (for docs and messages)."""
    return list(ALLOWED)

