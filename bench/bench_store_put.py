"""Storing a 100 MB result: the miss path minus the compute.

The function returns one of ROUNDS+1 arrays prepared (and faulted in) before
timing, each with different bytes, so no store can deduplicate them.  Each
timed call uses a new argument, so it is a miss: key, compute, serialize,
write, hand to the store, ack.  The body times itself; the figure is
call time - body time.  Call 0 is an untimed warm-up (it starts the daemon).

Columns: irohds with the default config (sync = true: the daemon fdatasyncs
the blob before acking), irohds with `sync = false` (in a child process with
its own IROHDS_HOME), joblib.Memory and diskcache Cache.memoize, which do not
fsync.  For information: writing the same bytes to a new file with one
write() (+ fdatasync).

Aim (issue): <= 0.2 s.
"""
from __future__ import annotations

import contextlib
import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_PUT_ROUNDS", "7"))
SIZE = int(os.environ.get("BENCH_PUT_MB", "100")) * C.MB


class _Prepared:
    arrays: list = []
    body_s: list = []


def produce(i):
    t = time.perf_counter()
    a = _Prepared.arrays[i]
    _Prepared.body_s.append(time.perf_counter() - t)
    return a


def prepare(n: int) -> None:
    import numpy as np
    base = np.random.default_rng(1).random(SIZE // 8)
    arrs = []
    for i in range(n):
        a = base.copy()
        a[0] = i
        arrs.append(a)
    _Prepared.arrays = arrs


def timed_miss(f, i: int) -> float:
    _Prepared.body_s.clear()
    t = C.now()
    v = f(i)
    dt = C.now() - t
    assert v is _Prepared.arrays[i] or (v.shape == _Prepared.arrays[i].shape and v[0] == i)
    assert len(_Prepared.body_s) == 1, "the body did not run exactly once: not a miss?"
    return dt - _Prepared.body_s[0]


def raw_write(dirname: str, i: int, sync: bool) -> float:
    a = _Prepared.arrays[i]
    path = os.path.join(dirname, f"raw{i}{'s' if sync else ''}")
    t = C.now()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, memoryview(a).cast("B"))
        if sync:
            os.fdatasync(fd)
    finally:
        os.close(fd)
    dt = C.now() - t
    os.unlink(path)
    return dt


def irohds_only() -> int:
    """Child mode: irohds alone, under the config of the IROHDS_HOME given."""
    import irohds
    C.watch_irohds_log()
    prepare(ROUNDS + 1)
    with contextlib.redirect_stdout(sys.stderr):
        C.warm_memory(min(4.0, (2 * (ROUNDS + 1) * SIZE + (1 << 30)) / (1 << 30)))
    f = irohds.memo(produce)
    timed_miss(f, 0)
    xs = [timed_miss(f, i) for i in range(1, ROUNDS + 1)]
    for w in C.irohds_warnings():
        print(w, file=sys.stderr)
    print(json.dumps({"put_s": xs}))
    return 0


def main() -> int:
    import diskcache
    import joblib

    C.header(f"bench_store_put: storing a {SIZE // C.MB} MiB result (miss minus compute)")
    prepare(ROUNDS + 1)
    # page cache for 3 tools x ROUNDS results + raw writes + slack
    C.warm_memory(min(8.0, (4 * (ROUNDS + 1) * SIZE + (1 << 30)) / (1 << 30)))
    with C.irohds_home(), C.tmp_dir() as work:
        import irohds
        C.watch_irohds_log()
        f_i = irohds.memo(produce)
        f_j = joblib.Memory(os.path.join(work, "jl"), verbose=0).cache(produce)
        f_d = diskcache.Cache(os.path.join(work, "dc")).memoize()(produce)
        for f in (f_i, f_j, f_d):
            timed_miss(f, 0)
        cases = {
            "irohds": lambda i: timed_miss(f_i, i),
            "joblib": lambda i: timed_miss(f_j, i),
            "diskcache": lambda i: timed_miss(f_d, i),
            "write": lambda i: raw_write(work, i, False),
            "write+fdatasync": lambda i: raw_write(work, i, True),
        }
        names = list(cases)
        res: dict[str, list[float]] = {k: [] for k in names}
        for i in range(1, ROUNDS + 1):      # a new key every round: always a miss
            k = i % len(names)
            for name in names[k:] + names[:k]:
                res[name].append(cases[name](i))

        C.irohds_warnings()

    # irohds with sync = false, in its own home and process
    nosync: list[float] = []
    with C.irohds_home(config="sync = false\n"):
        try:
            nosync = C.run_child(os.path.abspath(__file__), ["--irohds-only"])["put_s"]
        except Exception as e:  # noqa: BLE001 - report and go on
            print(f"  irohds sync=false run failed: {e}", flush=True)

    for k, xs in res.items():
        C.info(f"{k:16s} {C.fmt_dist(xs)}")
    if nosync:
        C.info(f"{'irohds sync=false':16s} {C.fmt_dist(nosync)}")
    m = C.median(res["irohds"])
    C.report(f"store {SIZE // C.MB}MB result (sync=true)", m, "joblib.Memory", C.median(res["joblib"]),
             "<= 0.2 s", m <= 0.2)
    C.report(f"store {SIZE // C.MB}MB result (sync=true) vs diskcache", m, "diskcache",
             C.median(res["diskcache"]))
    if nosync:
        n = C.median(nosync)
        C.report(f"store {SIZE // C.MB}MB result (sync=false)", n, "joblib.Memory", C.median(res["joblib"]),
                 "<= 0.2 s", n <= 0.2)
    C.report(f"store {SIZE // C.MB}MB result (sync=true) vs write+fdatasync (info)", m, "write+fdatasync",
             C.median(res["write+fdatasync"]))
    return 0


if __name__ == "__main__":
    if sys.argv[1:] == ["--irohds-only"]:
        sys.exit(irohds_only())
    sys.exit(main())
