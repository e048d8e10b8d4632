"""irohds.explain(f, *args, **kwargs): why a call would hit, fetch, compute or wait.

The key is computed exactly as the call computes it; nothing is computed,
no lease is taken, no daemon is started and nothing is written (apart from
the identity cache entry the first keying of a function writes).  The
tiers are asked in the call's order: this process's memory, the local
store, then the daemon (EXPLAIN, docs/ipc.md "EXPLAIN JSON"), whose answer
carries the numbers behind its decision (local compute estimate, download
estimate per provider, wait estimate, sizes, capability figures).

The answer is printed as a few readable lines and returned as a dict:
always "key" (hex), "decision" ("hit" | "fetch" | "compute" | "wait" |
"unknown"), "where" ("memory" | "local store" | "daemon" | "no daemon" |
"disabled" | "no key") and "reason"; plus the daemon's fields when it
answered, or the stored record's figures on a local hit.  A daemon answer
that is not the documented JSON is logged once and reported as "unknown".
"""
from __future__ import annotations

import errno
import json
import math
TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing (~5 ms)
if TYPE_CHECKING:
    from typing import Any, Dict, List, Optional, Tuple

from irohds import _daemon, _memo
from irohds._daemon import log_once

DECISIONS = ("hit", "fetch", "compute", "wait")
NUMBERS = ("local_compute_s", "download_s", "wait_s", "size", "producer_seconds",
           "producer_capability", "our_capability")


def explain(f: Any, args: Tuple[Any, ...], kwargs: Dict[str, Any]) -> Dict[str, Any]:
    bound = getattr(f, "__self__", None)
    if bound is not None and hasattr(f, "__func__"):  # obj.method: the call passes obj
        f, args = f.__func__, (bound,) + tuple(args)
    state = getattr(f, "_irohds", None)
    if not isinstance(state, _memo._State):
        raise TypeError("irohds.explain takes a function decorated with @irohds.memo, "
                        f"not {type(f).__name__}")
    report = decide(state, args, kwargs or None)
    print(render(state.name, report))
    return report


# ----------------------------------------------------------------- decide

def decide(state: Any, args: Tuple[Any, ...], kwargs: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    if _memo.disabled():
        return {"key": None, "decision": "compute", "where": "disabled",
                "reason": "IROHDS_DISABLE is set: every call computes, nothing is cached"}
    try:
        key = state.key(args, kwargs)  # TypeError for arguments that do not bind, as a call
    except _memo._Miss:
        return {"key": None, "decision": "compute", "where": "no key",
                "reason": "the arguments cannot be keyed (the 'irohds' log says why): "
                          "the call computes without the cache"}
    if key in state.results:
        return {"key": key.hex(), "decision": "hit", "where": "memory",
                "reason": "this process holds it already, tier 0"}
    local = _local_record(state, key)
    if local is not None:
        return local
    return _ask_daemon(state, key)


def _local_record(state: Any, key: bytes) -> Optional[Dict[str, Any]]:
    store = _daemon.runtime().store()
    if store is None:
        return None
    try:
        record = store.lookup(key)
    except Exception:  # noqa: BLE001 - an unreadable store is a miss, as for a call
        return None
    if record is None:
        return None
    report: Dict[str, Any] = {
        "key": key.hex(), "decision": "hit", "where": "local store",
        "size": record.get("size"), "producer_seconds": record.get("compute_seconds"),
        "producer": bytes(record.get("producer") or bytes(32)).hex(),
        "remote": bool(record.get("remote"))}
    if not report["remote"]:
        report["reason"] = "computed on this machine, tier 1: read straight from the store"
        return report
    rt = _daemon.runtime()
    trusted = (report["producer"] in state.configured_trust()
               or report["producer"] == rt._node_id)
    report["trusted"] = trusted
    if trusted:
        report["reason"] = ("downloaded earlier from a peer trusted for namespace "
                            f"{state.ns!r}: loaded with pickle")
    else:
        report["reason"] = ("downloaded earlier from a peer not trusted for namespace "
                            f"{state.ns!r}: loaded only if it is plain data (numbers, str, "
                            "containers, numpy arrays), else computed here")
    return report


def _ask_daemon(state: Any, key: bytes) -> Dict[str, Any]:
    base = {"key": key.hex()}
    rt = _daemon.runtime()
    try:
        client = rt.existing_client()
    except Exception:  # noqa: BLE001 - an unusable daemon is no daemon (logged by _daemon)
        client = None
    if client is None:
        return dict(base, decision="compute", where="no daemon",
                    reason="not stored here and no daemon is running: the call starts one, "
                           "which has nothing either, and computes here")
    try:
        text = client.explain(key, state.name, state.ns)
    except OSError as exc:
        if exc.errno == errno.EOPNOTSUPP:
            return dict(base, decision="compute", where="daemon",
                        reason="not stored here, and the daemon predates EXPLAIN: the call "
                               "computes here, or waits if another process is computing it")
        if isinstance(exc, (ConnectionError, TimeoutError)):
            rt.drop_client(exc)
            return dict(base, decision="compute", where="no daemon",
                        reason=f"the daemon did not answer ({exc}): the call computes here")
        return dict(base, decision="unknown", where="daemon",
                    reason=f"the daemon refused to explain ({exc})")
    except Exception as exc:  # noqa: BLE001 - a malformed reply
        rt.drop_client(exc)
        return dict(base, decision="unknown", where="daemon",
                    reason=f"the daemon's reply was unreadable ({exc})")
    return dict(parse(text), key=key.hex(), where="daemon")


def parse(text: str) -> Dict[str, Any]:
    """The daemon's EXPLAIN JSON, checked: a dict with a known decision.
    Fields of the wrong type are dropped (None) and logged once; a reply
    that is not such an object gives decision "unknown"."""
    try:
        data = json.loads(text)
    except ValueError as exc:
        return _garbage(f"not JSON ({exc})")
    if not isinstance(data, dict) or data.get("decision") not in DECISIONS:
        return _garbage("no known decision in it")
    out = dict(data)
    bad: List[str] = []
    out["reason"] = data.get("reason") if isinstance(data.get("reason"), str) else ""
    for name in NUMBERS:
        value = data.get(name)
        if value is not None and not _is_number(value):
            bad.append(name)
        out[name] = value if _is_number(value) else None
    providers = data.get("providers")
    if providers is not None and not isinstance(providers, list):
        bad.append("providers")
    out["providers"] = [p for p in providers if isinstance(p, dict)] \
        if isinstance(providers, list) else []
    if data.get("claim") is not None and not isinstance(data.get("claim"), dict):
        bad.append("claim")
        out["claim"] = None
    if bad:
        log_once("explain-fields", "irohds: the daemon's explanation has fields of the wrong "
                 "type (%s); they are shown as unknown", ", ".join(bad))
    return out


def _garbage(why: str) -> Dict[str, Any]:
    log_once("explain-garbage", "irohds: the daemon's explanation is %s; reported as unknown", why)
    return {"decision": "unknown", "reason": f"the daemon's explanation was unreadable: {why}"}


def _is_number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


# ----------------------------------------------------------------- render

def _seconds(v: Any) -> str:
    if not _is_number(v):
        return "unknown"
    if v < 1:
        return f"{v * 1000:.0f} ms"
    if v < 120:
        return f"{v:.1f} s"
    if v < 7200:
        return f"{v / 60:.1f} min"
    return f"{v / 3600:.1f} h"


def _bytes(v: Any) -> str:
    if not _is_number(v):
        return "unknown size"
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if v >= scale:
            return f"{v / scale:.1f} {unit}"
    return f"{v:.0f} bytes"


def _node(v: Any) -> str:
    return f"{v[:12]}…" if isinstance(v, str) and len(v) > 12 else str(v)


def _provider(p: Dict[str, Any]) -> str:
    parts = [_node(p.get("node")), "connected" if p.get("connected") else "not connected"]
    if _is_number(p.get("rtt_ms")):
        parts.append(f"rtt {p['rtt_ms']:.1f} ms")
    if _is_number(p.get("bytes_per_s")):  # bytes, not bits (docs/ipc.md)
        measured = "measured" if p.get("measured") else "estimated"
        parts.append(f"{p['bytes_per_s'] / 1e6:.1f} MB/s ({measured})")
    return "  ".join(parts)


def render(name: str, r: Dict[str, Any]) -> str:
    """The printed explanation: a header, then one line per known figure."""
    key = r.get("key")
    lines = [f"irohds.explain  {name}" + (f"  key {key[:16]}…" if key else "")]
    decision = r.get("decision", "unknown")
    where = r.get("where")
    head = decision
    if decision == "hit":
        head += ": in memory" if where == "memory" else f": {where}"
    lines.append(f"  decision   {head}" + (f" ({r['reason']})" if r.get("reason") else ""))
    if where == "local store":
        lines.append(f"  stored     {_bytes(r.get('size'))}, computed in "
                     f"{_seconds(r.get('producer_seconds'))}"
                     + (f" by peer {_node(r.get('producer'))}" if r.get("remote") else ""))
        return "\n".join(lines)
    if where != "daemon" or "local_compute_s" not in r:  # no figures to show
        return "\n".join(lines)
    compute = f"  compute    ~{_seconds(r.get('local_compute_s'))} here"
    if _is_number(r.get("producer_seconds")):
        compute += f" (the producer took {_seconds(r['producer_seconds'])}"
        if _is_number(r.get("producer_capability")) and _is_number(r.get("our_capability")):
            compute += (f"; capability {r['producer_capability']:.2f} there, "
                        f"{r['our_capability']:.2f} here")
        compute += ")"
    lines.append(compute)
    if r.get("download_s") is not None or r.get("size") is not None:
        lines.append(f"  download   ~{_seconds(r.get('download_s'))} for {_bytes(r.get('size'))}")
    claim = r.get("claim")
    if r.get("wait_s") is not None or claim:
        wait = f"  wait       ~{_seconds(r.get('wait_s'))}"
        if isinstance(claim, dict):
            wait += (f" (peer {_node(claim.get('node'))} is computing it, done in "
                     f"~{_seconds(claim.get('expected_done_in_s'))})")
        lines.append(wait)
    providers = r.get("providers") or []
    for i, p in enumerate(providers):
        lines.append(("  providers  " if i == 0 else "             ") + _provider(p))
    if not providers:
        lines.append("  providers  none known")
    return "\n".join(lines)
