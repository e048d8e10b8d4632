"""@irohds.memo: the decorator and the call path behind tier 0.

    f(args) -> tier 0   (C, _native.Memo: in-process table keyed by the args
                         themselves when they are hashable)
            -> slow_path(args, kwargs), here:
               key = _native.call_key(identity, Binder.bind(args, kwargs))
               tier 0b  in-process dict keyed by the 32-byte key (unhashable args)
               tier 1   the local store, read by this process (no daemon)
               daemon   GET: a hit (someone else stored it meanwhile), or a
                        lease to compute (single flight: others WAIT for us)
               compute  under the lease, in a fresh staging dir for resolve();
                        serialize to a put file; PUT its fd to the daemon;
                        reload the stored result and return that, so the first
                        call returns exactly what every later hit returns
                        (read-only arrays, FileRefs under files/<key>/).

A result the daemon downloaded from a peer (its record says remote) is
loaded with plain pickle only when its producer is trusted (trust=, config
trusted lists, this machine's own node id); otherwise the restricted
unpickler loads plain data and refuses anything else, and a refused result
is computed here and replaces the peer's (forced recompute).  While the
daemon downloads, a progress bar is shown on a terminal's stderr.

Never worse than no cache: any failure of the machinery (no daemon, garbage
replies, corrupt or unloadable blob, a result refused from an untrusted
peer, store unreadable, unpicklable result) is logged once and the call
computes and returns the right value.  Errors raised by the function itself
propagate (its lease is released, nothing is stored); a call with arguments
that do not bind raises TypeError as Python would.

async def functions get a coroutine wrapper with the same path; blocking
IPC runs in a worker thread so the event loop keeps running.
"""
from __future__ import annotations

import functools
import os
import threading
import time
import warnings
import weakref
from collections import OrderedDict
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Sequence, Tuple, TypeVar, Union, overload

from irohds import _daemon, _native, _result
from irohds._daemon import log_once
from irohds._fileref import CallStaging, in_call
from irohds._identity import cached_identity, function_name, pickle_fallback

if TYPE_CHECKING:
    F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_NS = "default"
TIER0B_MAXSIZE = 4096
NS_MAX = 127     # IROHDS_NS_MAX - 1
FUNC_MAX = 255   # IROHDS_FUNC_MAX - 1


class CheapCallWarning(UserWarning):
    """A memoized call took less than cheap_warning_seconds (config.toml)."""


_ENV_DATA = getattr(os.environ, "_data", None)  # POSIX: bytes -> bytes, read without decoding


def disabled() -> bool:
    """IROHDS_DISABLE=1 (any value but "" and "0") turns every cache off."""
    if _ENV_DATA is not None and os.environ.__class__.__name__ == "_Environ":
        return _ENV_DATA.get(b"IROHDS_DISABLE", b"") not in (b"", b"0")
    return os.environ.get("IROHDS_DISABLE", "") not in ("", "0")


# Memoized functions by "module.qualname", for evict() to clear their tables.
_registry: Dict[str, "weakref.WeakSet[_State]"] = {}
_registry_lock = threading.Lock()


class _Miss(Exception):
    """Internal: the cache cannot answer; compute without it."""


class _Unloadable(Exception):
    """Internal: a stored result that must be replaced (refused, corrupt, or
    not unpicklable here); the reason is logged already."""


# read_local's value when the key is stored but its result cannot be used:
# the call then asks the daemon for a forced recompute straight away.
UNLOADABLE = object()

NODE_ID_HEX = 64
_UNKNOWN_PRODUCER = "0" * NODE_ID_HEX


def check_trust(trust: Any) -> frozenset:
    """memo(trust=...) as a set of lower-case node ids; ValueError/TypeError
    for anything but a sequence of 64-hex-digit strings."""
    if isinstance(trust, (str, bytes)):
        raise TypeError("trust is a sequence of node ids, e.g. trust=['<64 hex digits>']")
    ids = set()
    for node in trust:
        if not isinstance(node, str) or len(node) != NODE_ID_HEX:
            raise ValueError(f"trust entries are 64-hex-digit node ids, got {node!r}")
        try:
            bytes.fromhex(node)
        except ValueError:
            raise ValueError(f"trust entries are 64-hex-digit node ids, got {node!r}") from None
        ids.add(node.lower())
    return frozenset(ids)


class _State:
    """Everything one memoized function keeps: its key material, tier 0b,
    and the steps of the call path (shared by the sync and async wrappers)."""

    def __init__(self, func: Callable[..., Any], ns: str, version: Any,
                 ignore: Sequence[str], tier0: bool, trust: frozenset = frozenset()) -> None:
        self.func = func
        self.trust = trust
        self._trusted: Tuple[Any, frozenset] = (None, frozenset())  # (runtime, ids)
        self.name = function_name(func)
        self.ns = ns
        self.version = version
        self.ignore = tuple(ignore)
        self.tier0 = tier0
        self.results: "OrderedDict[bytes, Any]" = OrderedDict()  # tier 0b
        self.clear_tier0: Callable[[], None] = lambda: None
        self._binder: Any = None
        self._identity: Optional[bytes] = None
        self._cheap_warned = False
        self._lock = threading.Lock()
        with _registry_lock:
            _registry.setdefault(self.name, weakref.WeakSet()).add(self)

    # ------------------------------------------------------------------ key
    def identity(self) -> bytes:
        """Computed on the first call (helpers defined after the decorated
        function exist by then), then cached; across processes through the
        identity cache in <data dir>/identity/ (see _identity)."""
        if self._identity is None:
            with self._lock:
                if self._identity is None:
                    try:
                        cache_dir: Optional[str] = _daemon.runtime().identity_dir
                    except Exception:  # noqa: BLE001 - no data dir: compute uncached
                        cache_dir = None
                    self._identity = cached_identity(self.func, self.ns, self.version,
                                                     cache_dir)
        return self._identity

    def key(self, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]]) -> bytes:
        """The 32-byte cache key.  TypeError for arguments that do not bind
        (propagates, as a plain call would); _Miss if keying fails."""
        if self._binder is None:
            self._binder = _native.Binder(self.func, self.ignore)
        bound = self._binder.bind(args, kwargs)
        try:
            return _native.call_key(self.identity(), bound, pickle_fallback)
        except Exception as exc:  # noqa: BLE001 - e.g. an argument pickle cannot handle
            log_once(f"key-{self.name}-{type(exc).__name__}",
                     "irohds: cannot key a call of %s (%s: %s); computing without the cache",
                     self.name, type(exc).__name__, exc)
            raise _Miss() from exc

    # ---------------------------------------------------------- tiers 0b, 1
    def remember(self, key: bytes, value: Any) -> Any:
        if self.tier0:
            with self._lock:
                self.results[key] = value
                if len(self.results) > TIER0B_MAXSIZE:
                    self.results.popitem(last=False)
        return value

    def forget_all(self) -> None:
        with self._lock:
            self.results.clear()
        self.clear_tier0()

    def read_local(self, key: bytes, record: Optional[Dict[str, Any]] = None,
                   hint: Optional[Dict[str, Any]] = None) -> Tuple[bool, Any]:
        """(True, value) from the local store; (False, None) when it is not
        there; (False, UNLOADABLE) when it is stored but cannot be used (the
        reason is logged; a corrupt blob is reported to the daemon).

        record: the record to load (a put's own result), else the store's;
        hint: a daemon HIT's record, used when the store has none (the
        store's record, when present, is authoritative about where the
        result came from)."""
        rt = _daemon.runtime()
        store = rt._store
        if store is None:
            store = rt.store()
            if store is None:
                return False, None
        if record is None:
            try:
                record = store.lookup(key) or hint
            except Exception as exc:  # noqa: BLE001 - the index, not the result: reopen it
                log_once("store-lookup", "irohds: reading the store index failed (%s: %s); "
                         "reopening it", type(exc).__name__, exc)
                rt.drop_store()
                store = rt.store()
                if store is None:
                    return False, None
                record = hint  # a daemon HIT's record, if any, needs no index
            if record is None:
                return False, None
        try:
            blob = record.get("blob")
            if blob is None:
                blob = record.get("hash")
            if record.get("remote"):
                value = self.load_remote(store, key, record, blob)
            else:
                value = _result.load(store, blob, record["size"], rt.files_prefix + key.hex())
        except FileNotFoundError:
            return False, None  # evicted between lookup and open
        except _Unloadable:
            return False, UNLOADABLE
        except ValueError as exc:
            if "corrupt" in str(exc):
                log_once(f"corrupt-{self.name}", "irohds: a stored result of %s is corrupt "
                         "(%s); reported to the daemon, recomputing", self.name, exc)
                self.report_corrupt(blob)
            else:
                log_once(f"load-{self.name}", "irohds: cannot load a stored result of %s "
                         "(%s); recomputing", self.name, exc)
            return False, UNLOADABLE
        except Exception as exc:  # noqa: BLE001 - unpickling a renamed class, store trouble...
            log_once(f"load-{self.name}", "irohds: cannot load a stored result of %s "
                     "(%s: %s); recomputing", self.name, type(exc).__name__, exc)
            return False, UNLOADABLE
        rt.touch(store, key)
        return True, value

    # ----------------------------------------------------- results from peers
    def configured_trust(self) -> frozenset:
        """Producers trusted for this function: memo(trust=...), config.toml's
        top-level trusted and its [namespace.<ns>] trusted (read once per
        Runtime, i.e. per process and data dir)."""
        rt = _daemon.runtime()
        if self._trusted[0] is not rt:
            config = rt.config
            ids = set(self.trust)
            ids.update(str(n).lower() for n in config.get("trusted", ()))
            per_ns = config.get("namespace_trusted", {})
            if isinstance(per_ns, dict):
                ids.update(str(n).lower() for n in per_ns.get(self.ns, ()))
            ids.discard(_UNKNOWN_PRODUCER)  # an unknown producer is never trusted
            self._trusted = (rt, frozenset(ids))
        return self._trusted[1]

    def load_remote(self, store: Any, key: bytes, record: Dict[str, Any], blob: bytes) -> Any:
        """A result the daemon downloaded from a peer.  Plain pickle when its
        producer is trusted; else the restricted unpickler, and when that
        refuses, plain pickle only if the producer turns out to be this very
        machine (asked of the daemon only then).  _Unloadable otherwise."""
        producer = bytes(record.get("producer") or bytes(32)).hex()
        rt = _daemon.runtime()
        files_dir = rt.files_prefix + key.hex()
        trusted = producer in self.configured_trust() or producer == rt._node_id
        from irohds import _restricted

        try:
            return _result.load_remote(store, blob, record["size"], files_dir, trusted)
        except _restricted.Refused as exc:
            if producer != _UNKNOWN_PRODUCER and producer == rt.node_id():
                return _result.load_remote(store, blob, record["size"], files_dir, True)
            log_once(f"refused-{self.name}-{producer}-{exc.what}",
                     "irohds: refused the result of %s from peer %s: it needs %s, and a result "
                     "from a peer not trusted for namespace %r is loaded only if it is plain "
                     "data; nothing of it ran, computing it here instead (to trust this peer: "
                     "trusted = [...] in config.toml or @irohds.memo(trust=[...]))",
                     self.name, producer, exc.what, self.ns)
            raise _Unloadable() from exc

    def report_corrupt(self, blob: bytes) -> None:
        client = _daemon.client_or_none()
        if client is None:
            return
        try:
            client.corrupt(blob)
        except Exception as exc:  # noqa: BLE001
            _daemon.runtime().drop_client(exc)

    # --------------------------------------------------------------- daemon
    def get(self, key: bytes, force: bool) -> Tuple[Any, str, Any]:
        """(client, 'hit', record) or (client, 'lease', id); _Miss when no
        daemon can answer.  One function, so that the async path connects and
        waits in the same worker thread.  While the daemon downloads the
        result from a peer, a progress bar is drawn on a terminal's stderr."""
        client = _daemon.client_or_none()
        if client is None:
            raise _Miss()
        from irohds import _progress

        bar = _progress.for_stderr(self.name)
        ignored = client.ignored_progress
        try:
            kind, payload = client.get(key, self.name, self.ns, force=force,
                                       timeout=_daemon.WAIT_TIMEOUT, progress=bar)
        except Exception as exc:  # noqa: BLE001 - never worse than no cache
            _daemon.runtime().drop_client(exc)
            raise _Miss() from exc
        finally:
            if bar is not None:
                bar.close()
        if client.ignored_progress != ignored:
            log_once("progress-garbage", "irohds: the daemon sent malformed download progress "
                     "reports (ignored; the result itself is unaffected)")
        if kind not in ("hit", "lease"):
            log_once("daemon-reply", "irohds: unexpected GET reply %r; computing without "
                     "the cache", kind)
            raise _Miss()
        return client, kind, payload

    def release(self, client: Any, key: bytes, lease: Any) -> None:
        try:
            client.release(key, lease)
        except Exception as exc:  # noqa: BLE001 - the daemon frees it when we disconnect
            _daemon.runtime().drop_client(exc)

    def put(self, client: Any, key: bytes, lease: Any, value: Any, seconds: float,
            staging: CallStaging) -> Optional[Tuple[bytes, int]]:
        """Serialize and hand over; (blob, size) when stored, None otherwise
        (the lease is released then)."""
        rt = _daemon.runtime()
        try:
            fd, path = _result.create_put_file(rt.paths["staging_dir"])
        except OSError as exc:
            log_once("put-file", "irohds: cannot create a put file (%s); not caching", exc)
            self.release(client, key, lease)
            return None
        try:
            try:
                _result.dump(value, fd)
            except Exception as exc:  # noqa: BLE001 - unpicklable result
                log_once(f"dump-{self.name}", "irohds: the result of %s cannot be serialized "
                         "(%s: %s); not caching it", self.name, type(exc).__name__, exc)
                self.release(client, key, lease)
                return None
            try:
                blob, size = client.put(key, lease, fd, _native.SER_PICKLE5, seconds,
                                        self.name, self.ns, staging.name)
            except (ConnectionError, TimeoutError, ValueError) as exc:
                _daemon.runtime().drop_client(exc)  # transport trouble: reconnect next time
                return None
            except Exception as exc:  # noqa: BLE001 - an ERROR reply: the daemon refused it
                log_once(f"put-{self.name}", "irohds: the daemon refused to store a result of "
                         "%s (%s); returning it uncached", self.name, exc)
                return None
            return blob, size
        finally:
            os.close(fd)
            try:
                os.unlink(path)
            except OSError:
                pass

    def after_put(self, key: bytes, stored: Optional[Tuple[bytes, int]], value: Any,
                  staging: CallStaging) -> Any:
        """What the call returns: the stored result as a hit would load it,
        else the computed value (its FileRefs then stay in the staging dir)."""
        if stored is None:
            return value
        found, loaded = self.read_local(key, {"blob": stored[0], "size": stored[1]})
        if not found:
            return value
        staging.cleanup()  # the daemon has linked the files under files/<key>/
        return loaded

    # ------------------------------------------------------------- compute
    def new_staging(self) -> CallStaging:
        try:
            root = _daemon.runtime().paths["staging_dir"]
        except Exception:  # noqa: BLE001 - no usable data dir: still let resolve() work
            import tempfile

            root = os.path.join(tempfile.gettempdir(), f"irohds-staging-{os.getuid()}")
        return CallStaging(root)

    def note_cost(self, seconds: float) -> None:
        """Warn once per function when a call is too cheap to share."""
        if self._cheap_warned:
            return
        try:
            limit = float(_daemon.runtime().config.get("cheap_warning_seconds", 15.0))
        except Exception:  # noqa: BLE001
            limit = 15.0
        if seconds >= limit:
            return
        self._cheap_warned = True
        message = (f"irohds: {self.name} took {seconds:.3g} s, less than "
                   f"cheap_warning_seconds={limit:g}: too cheap to be worth sharing over a "
                   "network (functools.cache serves such functions well)")
        _daemon.get_logger().warning(message)
        warnings.warn(message, CheapCallWarning, stacklevel=4)

    # ------------------------------------------------------------ sync path
    def call(self, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]],
             force: bool = False) -> Any:
        """The slow path (tier 0 missed), or a forced recompute."""
        if disabled():
            return self.compute_plain(args, kwargs)
        try:
            key = self.key(args, kwargs)
        except _Miss:
            return self.compute_plain(args, kwargs)
        if not force:
            if key in self.results:
                return self.results[key]
            found, value = self.read_local(key)
            if found:
                return self.remember(key, value)
            force = value is UNLOADABLE  # stored but unusable: replace it
        for attempt in range(2):
            try:
                client, kind, payload = self.get(key, force)
            except _Miss:
                break
            if kind == "lease":
                return self.compute_leased(client, key, payload, args, kwargs)
            found, value = self.read_local(key, hint=payload)
            if found:
                return self.remember(key, value)
            force = True  # stored but unloadable: replace it
        return self.remember(key, self.compute_plain(args, kwargs))

    def compute_plain(self, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]]) -> Any:
        """Compute with no cache (bypass, disabled, or the cache failed)."""
        with in_call(self.new_staging()):
            return self.func(*args, **(kwargs or {}))

    def compute_leased(self, client: Any, key: bytes, lease: Any, args: Tuple[Any, ...],
                       kwargs: Optional[Dict[str, Any]]) -> Any:
        staging = self.new_staging()
        start = time.perf_counter()
        try:
            with in_call(staging):
                value = self.func(*args, **(kwargs or {}))
        except BaseException:
            self.release(client, key, lease)
            staging.cleanup()
            raise
        seconds = time.perf_counter() - start
        self.note_cost(seconds)
        stored = self.put(client, key, lease, value, seconds, staging)
        return self.remember(key, self.after_put(key, stored, value, staging))

    # ----------------------------------------------------------- async path
    async def acall(self, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]],
                    force: bool = False) -> Any:
        if disabled():
            return await self.acompute_plain(args, kwargs)
        try:
            key = self.key(args, kwargs)
        except _Miss:
            return await self.acompute_plain(args, kwargs)
        if not force:
            if key in self.results:
                return self.results[key]
            found, value = self.read_local(key)
            if found:
                return self.remember(key, value)
            force = value is UNLOADABLE
        for attempt in range(2):
            try:
                client, kind, payload = await _to_thread(self.get, key, force)
            except _Miss:
                break
            if kind == "lease":
                return await self.acompute_leased(client, key, payload, args, kwargs)
            found, value = self.read_local(key, hint=payload)
            if found:
                return self.remember(key, value)
            force = True
        return self.remember(key, await self.acompute_plain(args, kwargs))

    async def acompute_plain(self, args: Tuple[Any, ...],
                             kwargs: Optional[Dict[str, Any]]) -> Any:
        with in_call(self.new_staging()):
            return await self.func(*args, **(kwargs or {}))

    async def acompute_leased(self, client: Any, key: bytes, lease: Any, args: Tuple[Any, ...],
                              kwargs: Optional[Dict[str, Any]]) -> Any:
        staging = self.new_staging()
        start = time.perf_counter()
        try:
            with in_call(staging):
                value = await self.func(*args, **(kwargs or {}))
        except BaseException:
            await _to_thread(self.release, client, key, lease)
            staging.cleanup()
            raise
        seconds = time.perf_counter() - start
        self.note_cost(seconds)
        stored = await _to_thread(self.put, client, key, lease, value, seconds, staging)
        return self.remember(key, self.after_put(key, stored, value, staging))


async def _to_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """asyncio.to_thread (3.9+), kept for one place to change."""
    import asyncio

    return await asyncio.to_thread(fn, *args)


# ---------------------------------------------------------------- wrappers

def _copy_metadata(wrapper: Any, func: Callable[..., Any]) -> None:
    for attr in ("__module__", "__name__", "__qualname__", "__doc__"):
        try:
            setattr(wrapper, attr, getattr(func, attr))
        except (AttributeError, TypeError):
            pass
    try:
        wrapper.__dict__.update(getattr(func, "__dict__", {}))
    except AttributeError:
        pass


def _wrap_sync(state: _State) -> Any:
    func = state.func
    if disabled():
        @functools.wraps(func)
        def passthrough(*args: Any, **kwargs: Any) -> Any:
            return state.compute_plain(args, kwargs)
        passthrough.bypass = passthrough  # type: ignore[attr-defined]
        passthrough.refresh = passthrough  # type: ignore[attr-defined]
        passthrough.cache_clear = state.forget_all  # type: ignore[attr-defined]
        passthrough._irohds = state  # type: ignore[attr-defined]
        return passthrough
    wrapper = _native.Memo(func, state.call, TIER0B_MAXSIZE if state.tier0 else 0)
    _copy_metadata(wrapper, func)
    state.clear_tier0 = _weak_clear(wrapper)

    def bypass(*args: Any, **kwargs: Any) -> Any:
        """Compute, reading and writing no cache."""
        return state.compute_plain(args, kwargs)

    def refresh(*args: Any, **kwargs: Any) -> Any:
        """Compute and overwrite the stored result (forced recompute); the
        function's in-process tables are cleared."""
        state.forget_all()
        return state.call(args, kwargs or None, force=True)

    wrapper.bypass = bypass
    wrapper.refresh = refresh
    wrapper.cache_clear = state.forget_all  # tier 0 and 0b (shadows Memo.cache_clear)
    wrapper._irohds = state
    return wrapper


def _weak_clear(wrapper: Any) -> Callable[[], None]:
    ref = weakref.ref(wrapper)

    def clear() -> None:
        target = ref()
        if target is not None:
            _native.Memo.cache_clear(target)
    return clear


def _wrap_async(state: _State) -> Any:
    func = state.func

    @functools.wraps(func)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        return await state.acall(args, kwargs or None)

    async def bypass(*args: Any, **kwargs: Any) -> Any:
        return await state.acompute_plain(args, kwargs)

    async def refresh(*args: Any, **kwargs: Any) -> Any:
        state.forget_all()
        return await state.acall(args, kwargs or None, force=True)

    wrapper.bypass = bypass  # type: ignore[attr-defined]
    wrapper.refresh = refresh  # type: ignore[attr-defined]
    wrapper.cache_clear = state.forget_all  # type: ignore[attr-defined]
    wrapper._irohds = state  # type: ignore[attr-defined]
    return wrapper


_CO_GENERATOR = 0x20
_CO_COROUTINE = 0x80
_CO_ASYNC_GENERATOR = 0x200


def _code_flags(func: Any) -> int:
    """co_flags of a function (through bound methods and functools.partial, as
    inspect.isgeneratorfunction looks), 0 if it has no code: the inspect
    module is not imported for this."""
    while True:
        if hasattr(func, "__func__") and not hasattr(func, "__code__"):
            func = func.__func__
        elif isinstance(func, functools.partial):
            func = func.func
        else:
            break
    code = getattr(func, "__code__", None)
    flags = getattr(code, "co_flags", 0)
    return flags if isinstance(flags, int) else 0


def _check_options(func: Callable[..., Any], ns: Optional[str], ignore: Sequence[str]) -> str:
    if _code_flags(func) & (_CO_GENERATOR | _CO_ASYNC_GENERATOR):
        raise TypeError(f"irohds.memo cannot memoize the generator function "
                        f"{function_name(func)}: return a list (or write a file and return "
                        "an irohds.FileRef) instead")
    if not callable(func) or not hasattr(func, "__code__"):
        raise TypeError(f"irohds.memo needs a Python function, not {type(func).__name__}")
    if ns is None:
        ns = DEFAULT_NS
    if not isinstance(ns, str) or not ns or len(ns.encode()) > NS_MAX:
        raise ValueError(f"ns must be a non-empty str of at most {NS_MAX} bytes, got {ns!r}")
    if len(function_name(func).encode()) > FUNC_MAX:
        raise ValueError(f"the function name {function_name(func)!r} is over {FUNC_MAX} bytes")
    if isinstance(ignore, str):
        raise TypeError("ignore is a sequence of parameter names, e.g. ignore=['self']")
    if not ignore:
        return ns
    import inspect

    params = inspect.signature(func).parameters
    unknown = [name for name in ignore if name not in params]
    if unknown:
        raise ValueError(f"ignore names {unknown} that are not parameters of "
                         f"{function_name(func)}")
    return ns


if TYPE_CHECKING:
    @overload
    def memo(func: F) -> F: ...
    @overload
    def memo(func: None = None, *, ns: Optional[str] = None, version: Any = None,
             ignore: Sequence[str] = (), tier0: bool = True,
             trust: Sequence[str] = ()) -> Callable[[F], F]: ...


def memo(func: Optional[Callable[..., Any]] = None, *, ns: Optional[str] = None,
         version: Any = None, ignore: Sequence[str] = (), tier0: bool = True,
         trust: Sequence[str] = ()) -> Union[Any, Callable[[Callable[..., Any]], Any]]:
    """Memoize a function (or async def) on this machine and its peers.

    ns       namespace the results are shared in (default "default")
    version  manual salt: change it to invalidate every stored result
    ignore   parameter names left out of the key (ignore=["self"] for methods)
    tier0    keep results in process memory too (set False for results the
             caller mutates: each call then loads a fresh copy)
    trust    node ids (64 hex digits) of peers whose results of this function
             are loaded with plain pickle; results from other peers load
             only if they are plain data (config.toml trusted lists add more)
    """
    checked_trust = check_trust(trust)

    def decorate(f: Callable[..., Any]) -> Any:
        checked_ns = _check_options(f, ns, ignore)
        state = _State(f, checked_ns, version, ignore, tier0, checked_trust)
        if _code_flags(f) & _CO_COROUTINE:
            return _wrap_async(state)
        return _wrap_sync(state)

    if func is not None:
        return decorate(func)
    return decorate


def forget_function(name: str) -> int:
    """Clear the in-process tables of every memoized function called name;
    returns how many there were."""
    with _registry_lock:
        states = list(_registry.get(name, ()))
    for state in states:
        state.forget_all()
    return len(states)
