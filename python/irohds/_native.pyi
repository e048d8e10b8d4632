"""Type stub and contract of irohds._native, the C extension (python/irohds/_native/*.c).

Everything below the Python API is C: hashing, canonical argument keys, the
tier-0 in-process table, the read-only store reader, the result container and
the IPC client.  The Python package (irohds/*.py) orchestrates these.
"""
from typing import Any, Callable, Optional, Sequence

# ------------------------------------------------------------------ hashing
def blake3(data: Any, *, length: int = 32, impl: Optional[str] = None) -> bytes:
    """BLAKE3 of a buffer (bytes, memoryview, numpy array...). impl forces
    'portable' | 'sse41' | 'avx2' | 'avx512' (ValueError if the CPU lacks it)."""
def blake3_keyed(key: bytes, data: Any, *, length: int = 32) -> bytes: ...
def blake3_derive_key(context: str, material: Any, *, length: int = 32) -> bytes: ...
def blake3_impls() -> list[str]:
    """Implementations this CPU can run, best last."""

def read_identity_entry(dir: str, fingerprint: bytes, magic: bytes) -> Optional[bytes]:
    """The persistent identity cache's reader: <dir>/<hex fingerprint> holds
    magic + BLAKE3(identity) + identity; returns identity, or None when the
    file is absent, unreadable, over 1 MiB, short, or fails its hash."""

# ----------------------------------------------------- canonical encoding
def canonical(obj: Any, fallback: Callable[[Any], bytes]) -> bytes:
    """The canonical encoding of obj (for tests and docs/keys.md): type-tagged,
    dicts and sets in sorted order of their encoded items.  fallback(obj) is
    called for a type with no canonical form and must return bytes (the
    Python side pickles it and warns once per type)."""

def call_key(identity: bytes, bound: Sequence[tuple[str, Any]],
             fallback: Callable[[Any], bytes]) -> bytes:
    """32-byte cache key = BLAKE3(identity || canonical((name, value) pairs)),
    streamed: a numpy array's bytes are hashed from its buffer, never copied
    (unless it is not C-contiguous)."""

class Binder:
    """Binds a call's args to the function's parameters the way Python does,
    so f(1) and f(x=1) give the same bound tuple.  Built once per function."""
    def __init__(self, func: Callable[..., Any], ignore: Sequence[str] = ()) -> None: ...
    def bind(self, args: tuple, kwargs: Optional[dict]) -> tuple[tuple[str, Any], ...]:
        """Pairs in parameter order, defaults applied, ignored names dropped,
        *args as a tuple, **kwargs as a dict.  TypeError as Python would."""

# ----------------------------------------------------------------- tier 0
class Memo:
    """The decorated function object (tier 0).  A call whose args are all
    hashable is answered from an in-process dict keyed by the args
    themselves; otherwise, or on a miss, slow_path(args, kwargs) runs and its
    result is remembered (when the args are hashable)."""
    __wrapped__: Callable[..., Any]
    def __init__(self, func: Callable[..., Any], slow_path: Callable[[tuple, Optional[dict]], Any],
                 maxsize: Optional[int] = 4096) -> None:
        """maxsize: entries before tier 0 is cleared; None = unbounded, 0 = tier 0
        off (every call goes to slow_path).  Only args of exact types str, int,
        float, bool, None, bytes or tuples of those are served; a hit also
        needs the same types (and float bits) as the stored call, so 1, 1.0
        and True, or 0.0 and -0.0, never share an entry.  kwargs are keyed in
        the order given.  Subclassable (vectorcall is kept on subclasses)."""
    def __call__(self, *args: Any, **kwargs: Any) -> Any: ...
    def cache_clear(self) -> None: ...
    def cache_info(self) -> tuple[int, int, int]:
        """(hits, misses, currsize) of tier 0."""
    def __get__(self, obj: Any, objtype: Any = None) -> Any:
        """Binds like a function, so memoized methods work."""

# ------------------------------------------------------------ paths/config
def paths() -> dict[str, str]:
    """data_dir, config_path, key_path, store_dir, staging_dir, files_dir,
    run_dir, log_path, lock_path, socket_path (from util/util.h)."""
def config() -> dict[str, Any]:
    """config.toml parsed by the C reader: size_limit (int bytes, 0 =
    unlimited), cheap_warning_seconds (float), sync (bool), log_level
    ('error' | 'warn' | 'info' | 'debug'), listen (str), bootstrap_peers
    (list[str]), trusted (list[str]: node ids trusted in every namespace),
    namespace_trusted (dict[str, list[str]]: the [namespace.<ns>] trusted
    lists).  Node ids are lower-case hex.  Raises ValueError on a syntax
    error."""

# ----------------------------------------------------------- store reader
class Store:
    """Read-only view of the store (LMDB MDB_RDONLY + mmap).  No daemon."""
    def __init__(self, store_dir: str) -> None:
        """FileNotFoundError if the store does not exist yet."""
    def lookup(self, key: bytes) -> Optional[dict[str, Any]]:
        """None, or {blob: bytes, size, files_size, serializer, compute_seconds,
        created_us, last_used_us, func, ns, nfiles, producer: bytes (32: node
        id of the machine that computed it; zeros when unknown), remote: bool
        (downloaded from a peer; any origin but "computed here" counts)}."""
    def files(self, key: bytes) -> list[tuple[str, bytes, int]]:
        """(name, blob hash, size) of a result's FileRef files."""
    def blob_path(self, blob: bytes) -> str: ...
    def open_result(self, blob: bytes, size: int) -> tuple[memoryview, list[memoryview]]:
        """Return (pickle bytes, out-of-band buffers) of a stored result.
        A blob up to 64 KiB is read into memory and re-hashed (ValueError
        'corrupt ...' if its bytes do not match its name).  A larger one is
        mapped read-only: the views share one mapping that lives as long as
        any view does and holds a shared flock on the blob, so gc will not
        evict it while in use.  ValueError for a malformed container;
        FileNotFoundError if the blob is gone."""
    def touch(self, key: bytes) -> None:
        """Record a use (appends to touch.log; the daemon folds it in)."""
    def close(self) -> None: ...

def write_result(fd: int, pickled: Any, buffers: Sequence[Any]) -> int:
    """Write a result container (docs/results.md) to fd: header, pickle bytes,
    then each out-of-band buffer 64-byte aligned, with writev and the GIL
    released.  Returns bytes written."""

def read_result(data: Any) -> tuple[memoryview, list[memoryview]]:
    """Parse a container held in any buffer (bounds-checked; ValueError on garbage)."""

def map_result(fd: int, size: int, blob: Optional[bytes] = None) -> tuple[memoryview, list[memoryview]]:
    """Store.open_result for a descriptor the caller already holds (dup'ed;
    the caller closes its own): size must match the file, blob (when given)
    is checked for files up to 64 KiB."""

class ResultMapping:
    """The read-only mmap behind open_result/map_result views (buffer
    protocol only); unmapped, and its flock released, with the last view."""

# ------------------------------------------------------------- IPC client
class Client:
    """Blocking client of the daemon (src/ipc).  Blocking calls release the GIL.
    Errors: ConnectionError (daemon gone), TimeoutError, OSError(errno) for an
    ERROR reply (EOPNOTSUPP: a daemon too old for the request), ValueError
    for a malformed reply or a closed client."""
    closed: bool
    """True once closed: by close(), or by a GET abandoned while the daemon
    may still count it as waiting (timeout, Ctrl-C, an exception from the
    progress callback, an unexpected reply).  The daemon drops a waiter whose
    connection closes; left open, the dead request could later be handed the
    key's lease.  Make a new Client then."""
    ignored_progress: int
    """PROGRESS frames dropped as malformed (no SIZE or COUNT, another key,
    COUNT > SIZE) since this client was made."""
    def __init__(self, socket_path: str, timeout: float = 5.0) -> None: ...
    def hello(self) -> dict[str, Any]:
        """The HELLO reply's fields by name, whichever are present: data_dir,
        node (hex node id), pid, text, and any generic field (key, blob,
        lease, size, count, compute_seconds, serializer, func, ns, flags)."""
    def get(self, key: bytes, func: str, ns: str, force: bool = False,
            timeout: Optional[float] = None,
            progress: Optional[Callable[[int, int], Any]] = None) -> tuple[str, Any]:
        """('hit', record dict) or ('lease', lease id).  While another process
        holds the lease, or the daemon downloads the result from a peer, this
        waits (WAIT, then HIT or LEASE), up to timeout seconds (None: as long
        as it takes; Ctrl-C still interrupts, also while PROGRESS frames keep
        coming).  The first reply is awaited for the client's timeout.

        progress(done, total) is called for each well-formed PROGRESS frame
        (bytes verified so far, bytes to download), in this thread with the
        GIL held and this client's lock taken (it must not use this client).
        An exception it raises propagates out of get() and
        abandons the wait (the client closes: see `closed`); callers that
        must not lose the result catch their own errors (irohds._progress
        does).

        The record dict has key, blob, size, serializer, compute_seconds,
        func, ns, node (hex) and flags as sent, plus producer (32 bytes: the
        node that computed it; zeros when the daemon does not say), remote
        (bool: HIT flag REMOTE) and, when a WAIT came first, wait_flags
        (that WAIT's FLAGS: 1 FETCH, 2 PEER)."""
    def put(self, key: bytes, lease: int, fd: int, serializer: int, seconds: float,
            func: str, ns: str, staging: Optional[str] = None) -> tuple[bytes, int]:
        """Hand the result file (fd, passed with SCM_RIGHTS) and the staging
        dir's files to the daemon; returns (blob hash, size) once stored.
        Waits up to 10x the client timeout (at least 60 s): the daemon hashes
        and writes the whole result first."""
    def release(self, key: bytes, lease: int) -> None: ...
    def evict(self, func: str) -> int: ...
    def info(self) -> str: ...
    def explain(self, key: bytes, func: str, ns: str) -> str:
        """EXPLAIN: JSON text saying what a GET of key would do now and why
        (docs/ipc.md "EXPLAIN JSON")."""
    def peers(self) -> str:
        """PEERS: JSON text of the known peers per namespace."""
    def gc(self) -> int: ...
    def join(self, ns: str) -> None: ...
    def corrupt(self, blob: bytes) -> None: ...
    def stop(self) -> None: ...
    def close(self) -> None: ...

SER_PICKLE5: int
