"""Shared helpers of the irohds benchmarks (bench/*.py).

Every benchmark:
  * runs under the venv's own interpreter (sys.executable), never a shim;
  * uses its own IROHDS_HOME (a short mkdtemp under /tmp, so the daemon
    socket path stays under 108 bytes) and stops the daemon it started;
  * measures its anchor (functools, diskcache, joblib...) in the same run and
    prints one line per claim:

        [bench] <name>: <figure> (<anchor> <figure>) ratio <r>, aim <aim> -> met|MISSED

    where ratio is always irohds / anchor for a time (below 1 = irohds is
    faster; the line also says "Nx faster/slower").  A missed aim is printed,
    never raised: benchmarks exit nonzero only when something crashes.
  * if $IROHDS_BENCH_SUMMARY names a file, appends each line there as JSON so
    scripts/bench.sh can print one table for all benchmarks.
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
from typing import Callable, Iterator, Optional, Sequence

BENCH_DIR = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
MB = 1 << 20


# ------------------------------------------------------------------ stats

def median(xs: Sequence[float]) -> float:
    return statistics.median(xs)


def pct(xs: Sequence[float], p: float) -> float:
    """p-th percentile (0..100), linear interpolation between ranks."""
    s = sorted(xs)
    if not s:
        return float("nan")
    k = (len(s) - 1) * p / 100.0
    lo = int(k)
    hi = min(lo + 1, len(s) - 1)
    return s[lo] + (s[hi] - s[lo]) * (k - lo)


def fmt_time(sec: float) -> str:
    """A duration with a unit that keeps 3 significant digits."""
    if sec != sec:
        return "n/a"
    a = abs(sec)
    if a < 1e-6:
        return f"{sec * 1e9:.1f} ns"
    if a < 1e-3:
        return f"{sec * 1e6:.2f} µs" if a < 1e-5 else f"{sec * 1e6:.1f} µs"
    if a < 1.0:
        return f"{sec * 1e3:.2f} ms" if a < 1e-2 else f"{sec * 1e3:.1f} ms"
    return f"{sec:.2f} s"


def fmt_dist(xs: Sequence[float]) -> str:
    """'median (p10 .. p90, n=N)' of durations in seconds."""
    return (f"{fmt_time(median(xs))} (p10 {fmt_time(pct(xs, 10))}, "
            f"p90 {fmt_time(pct(xs, 90))}, n={len(xs)})")


def fmt_ratio(value: float, anchor: float) -> str:
    """ratio value/anchor plus a plain-words version."""
    if not (value > 0 and anchor > 0):
        return "ratio n/a"
    r = value / anchor
    words = f"{1 / r:.1f}x faster" if r < 1 else f"{r:.2f}x slower"
    if r >= 100 or r < 0.01:
        return f"ratio {r:.2e} ({words})"
    return f"ratio {r:.3f} ({words})"


# ---------------------------------------------------------------- report

def report(name: str, value: float, anchor_name: Optional[str], anchor: Optional[float],
           aim: str = "", met: Optional[bool] = None, extra: str = "") -> None:
    """Print the one-line claim: figure, anchor figure, ratio, aim.

    value/anchor are durations in seconds (nan if unavailable)."""
    parts = [f"[bench] {name}: {fmt_time(value)}"]
    if anchor_name is not None:
        parts.append(f" ({anchor_name} {fmt_time(anchor if anchor is not None else float('nan'))})")
        parts.append(" " + fmt_ratio(value, anchor if anchor is not None else float("nan")))
    if aim:
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        parts.append(f", aim {aim} -> {verdict}")
    if extra:
        parts.append(f"  [{extra}]")
    print("".join(parts), flush=True)
    _summarize(name, value, "s", anchor_name, anchor, aim, met)


def _summarize(name: str, value: float, unit: str, anchor_name: Optional[str],
               anchor: Optional[float], aim: str, met: Optional[bool]) -> None:
    """Append the claim to $IROHDS_BENCH_SUMMARY (scripts/bench.sh's table)."""
    path = os.environ.get("IROHDS_BENCH_SUMMARY")
    if path:
        rec = {"bench": os.path.basename(sys.argv[0]), "name": name, "value": value,
               "unit": unit, "anchor_name": anchor_name, "anchor": anchor, "aim": aim,
               "met": met}
        with open(path, "a") as fh:
            fh.write(json.dumps(rec) + "\n")


def fmt_rate(bps: float) -> str:
    return "n/a" if bps != bps else f"{bps / 1e6:.0f} MB/s"


def fmt_bytes(n: float) -> str:
    if n != n:
        return "n/a"
    for unit, div in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if abs(n) >= div:
            return f"{n / div:.1f} {unit}"
    return f"{n:.0f} B"


def fmt_packets(n: float) -> str:
    return "n/a" if n != n else f"{n:.0f} pkt"


def report_amount(name: str, value: float, unit: str, anchor_name: Optional[str],
                  anchor: Optional[float], aim: str = "", met: Optional[bool] = None,
                  extra: str = "") -> None:
    """Like report(), for a rate (unit "B/s": ratio > 1 means irohds is
    faster), a size (unit "B") or a count of packets (unit "pkt"); for the
    last two the ratio is irohds / anchor."""
    fmt = {"B/s": fmt_rate, "pkt": fmt_packets}.get(unit, fmt_bytes)
    parts = [f"[bench] {name}: {fmt(value)}"]
    if anchor_name is not None:
        a = anchor if anchor is not None else float("nan")
        parts.append(f" ({anchor_name} {fmt(a)})")
        parts.append(f" ratio {value / a:.3f}" if a and a == a and value == value else " ratio n/a")
    if aim:
        verdict = "n/a" if met is None else ("met" if met else "MISSED")
        parts.append(f", aim {aim} -> {verdict}")
    if extra:
        parts.append(f"  [{extra}]")
    print("".join(parts), flush=True)
    _summarize(name, value, unit, anchor_name, anchor, aim, met)


def info(msg: str) -> None:
    print(f"  {msg}", flush=True)


def header(title: str) -> None:
    print(f"== {title}", flush=True)
    print(f"   python {sys.version.split()[0]} at {PY}; {os.cpu_count()} cpus; "
          f"load avg {os.getloadavg()[0]:.2f}", flush=True)


# ----------------------------------------------------------- irohds home

def daemon_bin() -> str:
    cand = os.path.join(os.path.dirname(PY), "irohds-daemon")
    if os.access(cand, os.X_OK):
        return cand
    found = shutil.which("irohds-daemon")
    return found or cand


@contextlib.contextmanager
def irohds_home(config: str = "", keep: bool = False) -> Iterator[str]:
    """An isolated IROHDS_HOME (set in os.environ, so children inherit it).

    On exit: `irohds-daemon stop` for that home, then the dir is removed."""
    old = os.environ.get("IROHDS_HOME")
    home = tempfile.mkdtemp(prefix="ib", dir="/tmp")
    if config:
        with open(os.path.join(home, "config.toml"), "w") as fh:
            fh.write(config)
    os.environ["IROHDS_HOME"] = home
    try:
        yield home
    finally:
        stop_daemon(home)
        if old is None:
            os.environ.pop("IROHDS_HOME", None)
        else:
            os.environ["IROHDS_HOME"] = old
        if not keep:
            shutil.rmtree(home, ignore_errors=True)


def stop_daemon(home: str) -> None:
    env = dict(os.environ, IROHDS_HOME=home)
    try:
        subprocess.run([daemon_bin(), "stop"], env=env, timeout=30,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as e:
        print(f"  (irohds-daemon stop failed: {e})", flush=True)


@contextlib.contextmanager
def tmp_dir(prefix: str = "ibanchor") -> Iterator[str]:
    d = tempfile.mkdtemp(prefix=prefix, dir="/tmp")
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


# --------------------------------------------------------------- timing

def warm_memory(gib: float) -> None:
    """Touch and free gib GiB of memory before timing writes.  On a VM, memory
    the guest has never used costs a host-side fault per page the first time
    (measured here: 3 GiB took 12 s once, then 0.4 s), so the first benchmark
    to fill the page cache would otherwise pay for the machine's history."""
    t = time.perf_counter()
    n = int(gib * (1 << 30))
    buf = bytearray(n)               # calloc: untouched until written
    mv = memoryview(buf)
    step = 1 << 26
    for off in range(0, n, step):
        mv[off:off + step] = b"\x01" * min(step, n - off)
    del mv, buf
    info(f"warmed {gib:g} GiB of memory in {time.perf_counter() - t:.2f} s")


def timeit_per_call(stmt: str, glb: dict, number: int, repeat: int) -> list[float]:
    """Seconds per execution of stmt, one figure per repeat."""
    t = timeit.Timer(stmt, globals=glb)
    return [x / number for x in t.repeat(repeat=repeat, number=number)]


def interleaved(cases: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run each case once per round, in rotating order, so drift of a noisy
    machine hits every case alike.  Each case returns one measurement."""
    out: dict[str, list[float]] = {k: [] for k in cases}
    names = list(cases)
    for r in range(rounds):
        k = r % len(names)
        for name in names[k:] + names[:k]:
            out[name].append(cases[name]())
    return out


def run_child(script: str, args: Sequence[str] = (), env: Optional[dict] = None,
              timeout: float = 300) -> dict:
    """Run a fresh interpreter (this venv's) on script; the last stdout line
    must be a JSON object, which is returned.  Raises on failure."""
    proc = subprocess.run([PY, script, *args], env=env or dict(os.environ), timeout=timeout,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = [ln for ln in proc.stdout.splitlines() if ln.strip()]
    if proc.returncode != 0 or not lines:
        raise RuntimeError(f"child {os.path.basename(script)} {' '.join(args)} failed "
                           f"(rc={proc.returncode}):\n{proc.stdout[-2000:]}\n{proc.stderr[-4000:]}")
    return json.loads(lines[-1])


def write_module(directory: str, name: str, source: str) -> str:
    """Write a module that the parent and its fresh children import the same
    way (same file, same name), so the function identity is the same."""
    path = os.path.join(directory, name + ".py")
    with open(path, "w") as fh:
        fh.write(source)
    return path


class _Collect:
    """A logging handler keeping irohds' own warnings ("computing without the
    cache"...): a benchmark whose cache silently fell back is not a figure."""

    def __init__(self) -> None:
        import logging

        class H(logging.Handler):
            def emit(h, record):  # noqa: N805
                self.records.append(f"{record.levelname}: {record.getMessage()}")

        self.records: list[str] = []
        self.handler = H(level=logging.WARNING)
        logging.getLogger("irohds").addHandler(self.handler)


_collector: Optional[_Collect] = None


def watch_irohds_log() -> None:
    """Start collecting irohds' warnings in this process."""
    global _collector
    if _collector is None:
        _collector = _Collect()


def irohds_warnings(reset: bool = True) -> list[str]:
    """The irohds warnings logged since watch_irohds_log(); prints them."""
    if _collector is None:
        return []
    recs = list(_collector.records)
    if reset:
        _collector.records.clear()
    for r in recs:
        print(f"  irohds logged {r}", flush=True)
    return recs


def now() -> float:
    return time.perf_counter()
