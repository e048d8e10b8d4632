"""irohds: decentralized function memoization.

    import irohds

    @irohds.memo                      # or @irohds.memo(ns="my-lab", version=2, ignore=["self"])
    def train_model(dataset, epochs=10):
        ...

The first call anywhere computes and stores the result; later calls, in this
process, another process or (later) another machine, get it instead.  This
package is the thin Python layer: the decorator and call orchestration
(_memo), function identity (_identity), large outputs as files (_fileref),
result (de)serialization (_result) and the link to the daemon (_daemon).
Hashing, keys, the in-process tier, store reading and IPC are C (_native).
docs/api.md is the reference.
"""
from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, Dict

from irohds import _daemon
from irohds._fileref import FileRef, resolve
from irohds._identity import KeyWarning, function_name
from irohds._memo import CheapCallWarning, forget_function, memo

__all__ = ["memo", "FileRef", "resolve", "evict", "join", "info", "explain",
           "CheapCallWarning", "KeyWarning", "function_name"]


def evict(func: Any) -> int:
    """Drop every stored result of one function, given as "module.qualname"
    (or the memoized function itself), here and in the store.  Returns how
    many stored results the daemon removed.  RuntimeError if no daemon can
    be reached (the in-process tables are cleared regardless)."""
    name = func if isinstance(func, str) else function_name(getattr(func, "__wrapped__", func))
    forget_function(name)
    return int(_daemon.admin_call(lambda c: c.evict(name)))


def join(ns: str) -> None:
    """Record a namespace with the daemon ahead of its first call."""
    if not isinstance(ns, str) or not ns:
        raise ValueError("ns must be a non-empty str")
    _daemon.admin_call(lambda c: c.join(ns))


def explain(f: Any, *args: Any, **kwargs: Any) -> Dict[str, Any]:
    """Why f(*args, **kwargs) would hit, fetch from a peer, compute or wait,
    with the numbers behind it; printed, and returned as a dict.  Computes
    the call's key and nothing else: no compute, no lease, no daemon start.
    See docs/api.md."""
    from irohds._explain import explain as _explain

    return _explain(f, args, kwargs)


def info() -> Dict[str, Any]:
    """The daemon's view (node id, data dir, store size, entries...) as a dict."""
    import json

    result = json.loads(_daemon.admin_call(lambda c: c.info()))
    if not isinstance(result, dict):
        raise ValueError("the daemon's INFO reply is not a JSON object")
    return result
