"""This process's link to its data dir: paths, config, the store reader, the daemon.

Everything here is opened lazily and kept per process (a fork or a change of
IROHDS_HOME, as in tests, starts afresh):

  * paths() and config() come from C (util/util.h decides them for the
    daemon, the CLI and this package alike);
  * the store reader (_native.Store: LMDB read-only + mmap) answers local
    hits with no daemon round trip; an absent store is a miss;
  * daemon clients, one per thread (a client blocks while it waits for a
    lease holder; other threads must not queue behind it).  When no daemon
    answers, ``irohds-daemon start`` is run (found through $IROHDS_DAEMON,
    then this interpreter's scripts dir, then PATH) and the socket waited
    for; racing processes both end up with the one daemon because the
    daemon's start holds a lock.

Nothing here raises into user code: a failure returns None and is logged
once per reason through logging.getLogger("irohds"), and the caller computes.
"""
from __future__ import annotations

import atexit
import os
import threading
import time
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, Callable, Dict, Optional, Set, Tuple

from irohds import _native

WARNING = 30  # logging.WARNING; logging itself is imported when a message is logged

START_TIMEOUT = 15.0  # seconds to wait for a started daemon's socket
RETRY_AFTER = 30.0    # seconds before trying a failed daemon/store again
REQUEST_TIMEOUT = 10.0
TOUCH_EVERY = 60.0    # seconds: a key's last-used time is recorded at most this often per process
TOUCHED_MAX = 65536   # keys remembered for that before the memory is cleared
WAIT_TIMEOUT = 7 * 86400.0  # a GET waits this long for another process's compute

_logged: Set[str] = set()
_logged_lock = threading.Lock()


def get_logger() -> Any:
    """logging.getLogger("irohds") (logging is imported on first use)."""
    import logging

    return logging.getLogger("irohds")


def __getattr__(name: str) -> Any:  # _daemon.logger, imported lazily
    if name == "logger":
        return get_logger()
    raise AttributeError(name)


def log_once(reason: str, message: str, *args: Any, level: int = WARNING) -> None:
    """Log message once per process for reason (a short stable tag)."""
    with _logged_lock:
        if reason in _logged:
            return
        _logged.add(reason)
    get_logger().log(level, message, *args)


def find_daemon() -> Optional[str]:
    """The irohds-daemon executable: $IROHDS_DAEMON, this interpreter's
    scripts dir, then PATH."""
    import shutil
    import sysconfig

    explicit = os.environ.get("IROHDS_DAEMON")
    if explicit:
        return explicit
    scripts = sysconfig.get_path("scripts")
    if scripts:
        candidate = os.path.join(scripts, "irohds-daemon")
        if os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("irohds-daemon")


class Runtime:
    """Paths, config, store and daemon clients of one process and data dir."""

    def __init__(self) -> None:
        self.paths: Dict[str, str] = _native.paths()
        self.files_prefix = os.path.join(self.paths["files_dir"], "")  # + key.hex()
        self.identity_dir = os.path.join(self.paths["data_dir"], "identity")
        self._touched: Dict[bytes, float] = {}
        self._first_touch = True
        self._deferred: Optional[Tuple[Any, bytes]] = None
        self._pid = os.getpid()
        self._config: Optional[Dict[str, Any]] = None
        self._node_id: Optional[str] = None  # hex, from the daemon's HELLO
        self._store: Any = None
        self._store_retry_at = 0.0
        self._daemon_retry_at = 0.0
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def config(self) -> Dict[str, Any]:
        """config.toml, read on first use (a hit never needs it)."""
        if self._config is None:
            try:
                self._config = _native.config()
            except (ValueError, OSError) as exc:
                log_once("config", "irohds: config.toml unreadable (%s); using defaults", exc)
                self._config = {}
        return self._config

    # ---------------------------------------------------------------- store
    def store(self) -> Any:
        """The read-only store, or None (absent yet, or unreadable)."""
        if self._store is not None:
            return self._store
        now = time.monotonic()
        if now < self._store_retry_at:
            return None
        with self._lock:
            if self._store is None:
                try:
                    self._store = _native.Store(self.paths["store_dir"])
                except FileNotFoundError:
                    pass  # no daemon has created it yet: every lookup is a miss
                except Exception as exc:  # noqa: BLE001 - never worse than no cache
                    log_once("store-open", "irohds: store unreadable (%s); "
                             "reading through the daemon only", exc)
                    self._store_retry_at = now + RETRY_AFTER
        return self._store

    def touch(self, store: Any, key: bytes) -> None:
        """Record a use of key in the store, at most once per TOUCH_EVERY
        seconds per process (each touch appends to touch.log)."""
        now = time.monotonic()
        last = self._touched.get(key)
        if last is not None and now - last < TOUCH_EVERY:
            return
        if len(self._touched) >= TOUCHED_MAX:
            self._touched.clear()
        self._touched[key] = now
        if self._first_touch:
            # The first hit of a process returns before its touch is written:
            # it is written with the next touch, or at exit (atexit).
            self._first_touch = False
            self._deferred = (store, key)
            atexit.register(self.flush_touch)
            return
        if self._deferred is not None:
            self.flush_touch()
        try:
            store.touch(key)
        except Exception:  # noqa: BLE001 - a lost last-used time is harmless
            pass

    def flush_touch(self) -> None:
        """Write the deferred first touch, if any (next touch, or at exit)."""
        deferred, self._deferred = self._deferred, None
        if deferred is None or os.getpid() != self._pid:
            return
        try:
            deferred[0].touch(deferred[1])
        except Exception:  # noqa: BLE001 - a lost last-used time is harmless
            pass

    def drop_store(self) -> None:
        """Forget the store handle (after an error); reopened on next use."""
        self.flush_touch()
        with self._lock:
            store, self._store = self._store, None
        if store is not None:
            try:
                store.close()
            except Exception:  # noqa: BLE001
                pass

    # --------------------------------------------------------------- daemon
    def client(self) -> Optional[Any]:
        """This thread's daemon client, connecting (and starting the daemon)
        if needed; None when no daemon can be had right now.  A client that
        closed itself (an abandoned GET: Ctrl-C, a timeout) is replaced."""
        client = getattr(self._local, "client", None)
        if client is not None and not client.closed:
            return client
        if time.monotonic() < self._daemon_retry_at:
            return None
        client = self._connect()
        if client is None and self._start():
            client = self._wait_for_socket()
        if client is None:
            self._daemon_retry_at = time.monotonic() + RETRY_AFTER
        self._local.client = client
        return client

    def existing_client(self) -> Optional[Any]:
        """This thread's client, or a fresh connection to a running daemon;
        None when no daemon runs.  Never starts one (for explain)."""
        client = getattr(self._local, "client", None)
        if client is not None and not client.closed:
            return client
        client = self._connect()
        if client is not None:
            self._local.client = client
        return client

    def node_id(self) -> Optional[str]:
        """This machine's node id (hex), as the daemon's HELLO gave it; asks
        a daemon (starting one if needed) the first time.  None if none answers."""
        if self._node_id is None:
            client_or_none()
        return self._node_id

    def drop_client(self, exc: BaseException) -> None:
        """Forget this thread's client after a transport error."""
        client = getattr(self._local, "client", None)
        self._local.client = None
        if client is not None:
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
        log_once(f"daemon-error-{type(exc).__name__}",
                 "irohds: daemon connection failed (%s: %s); computing without it",
                 type(exc).__name__, exc)

    def _connect(self) -> Optional[Any]:
        try:
            client = _native.Client(self.paths["socket_path"], REQUEST_TIMEOUT)
        except (ConnectionError, FileNotFoundError, OSError):
            return None  # nobody listening: try to start one
        try:
            node = client.hello().get("node")
        except Exception as exc:  # noqa: BLE001 - garbage, version mismatch...
            try:
                client.close()
            except Exception:  # noqa: BLE001
                pass
            log_once("daemon-hello", "irohds: the daemon at %s does not answer HELLO "
                     "(%s: %s); computing without the cache",
                     self.paths["socket_path"], type(exc).__name__, exc)
            self._daemon_retry_at = time.monotonic() + RETRY_AFTER
            raise _Unusable() from exc
        if isinstance(node, str) and len(node) == 64:
            self._node_id = node
        return client

    def _start(self) -> bool:
        exe = find_daemon()
        if exe is None:
            log_once("daemon-missing", "irohds: no irohds-daemon found (set IROHDS_DAEMON or "
                     "put it on PATH); computing without the cache")
            return False
        import subprocess
        import tempfile

        # stderr goes to a file, not a pipe: a detached daemon that kept the
        # pipe open would make us wait for its exit.
        with tempfile.TemporaryFile() as err:
            try:
                proc = subprocess.run([exe, "start"], stdin=subprocess.DEVNULL,
                                      stdout=subprocess.DEVNULL, stderr=err,
                                      timeout=START_TIMEOUT, close_fds=True, check=False)
            except (OSError, subprocess.SubprocessError) as exc:
                log_once("daemon-start", "irohds: could not start the daemon (%s start: %s); "
                         "computing without the cache", exe, exc)
                return False
            if proc.returncode != 0:
                err.seek(0)
                why = err.read()[-500:].decode(errors="replace").strip()
                log_once("daemon-start", "irohds: starting the daemon failed (%s start: exit %s: "
                         "%s); computing without the cache", exe, proc.returncode, why)
                return False
        return True

    def _wait_for_socket(self) -> Optional[Any]:
        deadline = time.monotonic() + START_TIMEOUT
        delay = 0.005
        while time.monotonic() < deadline:
            client = self._connect()
            if client is not None:
                return client
            time.sleep(delay)
            delay = min(delay * 2, 0.1)
        log_once("daemon-socket", "irohds: the daemon started but its socket %s never "
                 "answered; computing without the cache", self.paths["socket_path"])
        return None


class _Unusable(Exception):
    """A daemon answers at the socket but not in our protocol."""


_runtime: Optional[Runtime] = None
_runtime_tag: Optional[Tuple[Any, ...]] = None
_runtime_lock = threading.Lock()

_ENV_KEYS = ("IROHDS_HOME", "XDG_DATA_HOME", "XDG_RUNTIME_DIR", "HOME")
_ENV_DATA = getattr(os.environ, "_data", None)  # POSIX: the bytes dict os.environ keeps
if os.environ.__class__.__name__ != "_Environ" or not isinstance(_ENV_DATA, dict):
    _ENV_DATA = None


def runtime() -> Runtime:
    """The Runtime of this process and its current data dir settings."""
    global _runtime, _runtime_tag
    data = _ENV_DATA
    if data is not None:  # the same values as os.environ.get, without encode/decode
        get = data.get
        tag: Tuple[Any, ...] = (os.getpid(), get(b"IROHDS_HOME"), get(b"XDG_DATA_HOME"),
                                get(b"XDG_RUNTIME_DIR"), get(b"HOME"))
    else:
        env = os.environ
        tag = (os.getpid(),) + tuple(env.get(k) for k in _ENV_KEYS)
    rt = _runtime
    if rt is not None and tag == _runtime_tag:
        return rt
    with _runtime_lock:
        if _runtime is None or tag != _runtime_tag:
            _runtime = Runtime()
            _runtime_tag = tag
        return _runtime


def client_or_none() -> Optional[Any]:
    """runtime().client(), never raising."""
    try:
        return runtime().client()
    except _Unusable:
        return None
    except Exception as exc:  # noqa: BLE001 - never worse than no cache
        log_once("daemon-connect", "irohds: cannot reach the daemon (%s: %s); computing "
                 "without the cache", type(exc).__name__, exc)
        return None


def require_client() -> Any:
    """A daemon client for explicit operations (evict, join, info), or RuntimeError."""
    client = client_or_none()
    if client is None:
        raise RuntimeError("irohds: no daemon could be reached or started "
                           "(see the 'irohds' log for why)")
    return client


def admin_call(request: Callable[[Any], Any]) -> Any:
    """request(client) for an explicit operation.  A connection that died since
    it was made (the daemon restarted) is dropped and the request tried once
    more on a fresh one, which starts a daemon if none runs."""
    try:
        return request(require_client())
    except ConnectionError as exc:
        runtime().drop_client(exc)
        return request(require_client())
