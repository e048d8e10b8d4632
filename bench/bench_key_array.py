"""Computing the key of a call whose argument is a 100 MB numpy array.

All in one process, on the same float64 array (already in memory):
  * irohds _native.call_key(identity, (("x", arr),), fallback) directly: the
    canonical encoding streamed into BLAKE3 from the array's buffer;
  * irohds public path: f(arr) with the result already stored.  An ndarray is
    not hashable, so tier 0 never answers and every call computes the key and
    reads tier 1: the whole hit is timed, nothing subtracted;
  * anchor: joblib.hash(arr) (md5 over the buffer), and for information a
    joblib.Memory hit with the same argument (which hashes it the same way)
    and _native.blake3(arr) (the raw hash, the floor for call_key).
Cases are interleaved round by round.

Aim (issue): irohds key >= 3x faster than joblib.hash.
"""
from __future__ import annotations

import os
import pickle
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_KEY_ROUNDS", "9"))
SIZE = int(os.environ.get("BENCH_KEY_MB", "100")) * C.MB


class _Body:
    runs = 0


def summarize(x):
    _Body.runs += 1
    return float(x[:4].sum())


def main() -> int:
    import joblib
    import numpy as np

    C.header(f"bench_key_array: key of a call with a {SIZE // C.MB} MiB array argument")
    arr = np.random.default_rng(0).random(SIZE // 8)
    expect = summarize(arr)
    with C.irohds_home(), C.tmp_dir() as work:
        import irohds
        from irohds import _native
        C.watch_irohds_log()

        ident = bytes(range(32))
        bound = (("x", arr),)
        k1 = _native.call_key(ident, bound, pickle.dumps)
        assert len(k1) == 32 and _native.call_key(ident, bound, pickle.dumps) == k1

        f = irohds.memo(summarize)
        assert f(arr) == expect          # miss: stores the result
        assert f(arr) == expect          # first hit
        mem_f = joblib.Memory(os.path.join(work, "jl"), verbose=0).cache(summarize)
        assert mem_f(arr) == expect and mem_f(arr) == expect

        def timed(fn):
            def run():
                t = C.now()
                fn()
                return C.now() - t
            return run

        cases = {
            "call_key": timed(lambda: _native.call_key(ident, bound, pickle.dumps)),
            "irohds_hit": timed(lambda: f(arr)),
            "blake3": timed(lambda: _native.blake3(arr)),
            "joblib.hash": timed(lambda: joblib.hash(arr)),
            "joblib_hit": timed(lambda: mem_f(arr)),
        }
        runs0 = _Body.runs
        res = C.interleaved(cases, ROUNDS)
        ran = _Body.runs - runs0  # every timed call is a hit: the body never runs
        if ran:
            print(f"  ERROR: the body ran {ran} times during irohds hits", flush=True)
        C.irohds_warnings()
        gib = SIZE / (1 << 30)
        for name, xs in res.items():
            C.info(f"{name:12s} {C.fmt_dist(xs)}  = {gib / C.median(xs):.2f} GiB/s")

        jh = C.median(res["joblib.hash"])
        ck = C.median(res["call_key"])
        hit = C.median(res["irohds_hit"])
        C.report(f"{SIZE // C.MB}MB array arg: _native.call_key", ck, "joblib.hash", jh,
                 ">= 3x faster", jh >= 3 * ck)
        C.report(f"{SIZE // C.MB}MB array arg: irohds tier-1 hit (whole call)", hit, "joblib.hash", jh,
                 ">= 3x faster", jh >= 3 * hit)
        C.report(f"{SIZE // C.MB}MB array arg: irohds hit vs joblib.Memory hit (info)", hit,
                 "joblib.Memory hit", C.median(res["joblib_hit"]))
        C.report(f"{SIZE // C.MB}MB array: raw _native.blake3 (info)", C.median(res["blake3"]),
                 "joblib.hash", jh)
    return 0


if __name__ == "__main__":
    sys.exit(main())
