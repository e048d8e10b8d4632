"""Tier-0 hit: irohds.memo vs functools.lru_cache(maxsize=None), small hashable args.

Both wrap the same plain function.  After one warm-up call per argument
shape (irohds: a miss through the daemon, which stores the result), every
timed call is an in-process hit.  timeit runs `f(<args>)` with the arguments
pre-bound in globals, so building them is not timed; irohds and lru_cache
repeats are interleaved so machine drift hits both alike.

Aim (issue): tier-0 hit at most 1.5x an lru_cache hit.
"""
from __future__ import annotations

import functools
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

NUMBER = int(os.environ.get("BENCH_TIER0_NUMBER", "200000"))
REPEAT = int(os.environ.get("BENCH_TIER0_REPEAT", "25"))

CASES = {
    # name: (call expression, globals it needs)
    "int": ("f(i)", {"i": 7}),
    "str": ("f(s)", {"s": "hello-world"}),
    "tuple": ("f(t)", {"t": (1, 2, "x")}),
    "int,str,tuple": ("f(i, s, t)", {"i": 7, "s": "hello-world", "t": (1, 2)}),
}
INFO_CASES = {
    "kwarg": ("f(i, b=s)", {"i": 7, "s": "hello-world"}),
}


def plain(a, b=None, c=None):
    return (a, b, c)


def main() -> int:
    C.header("bench_tier0: tier-0 hit vs functools.lru_cache hit")
    with C.irohds_home():
        import irohds
        C.watch_irohds_log()

        memo_f = irohds.memo(plain)
        lru_f = functools.lru_cache(maxsize=None)(plain)

        all_cases = {**CASES, **INFO_CASES}
        for name, (expr, glb) in all_cases.items():
            for f in (memo_f, lru_f):
                v = eval(expr, {**glb, "f": f})
                assert v == eval(expr, {**glb, "f": plain}), (name, v)
                # a second call: now a tier-0 hit for irohds
                assert eval(expr, {**glb, "f": f}) == v

        # plain call and a hand-written dict memo, for information
        base = C.timeit_per_call("f(i)", {"f": plain, "i": 7}, NUMBER, REPEAT)
        C.info(f"plain Python call f(7), no cache: {C.fmt_dist(base)}")

        info0 = memo_f.cache_info() if hasattr(memo_f, "cache_info") else None
        for name, (expr, glb) in all_cases.items():
            g_m = {**glb, "f": memo_f}
            g_l = {**glb, "f": lru_f}
            res = C.interleaved({
                "irohds": lambda: C.timeit_per_call(expr, g_m, NUMBER, 1)[0],
                "lru": lambda: C.timeit_per_call(expr, g_l, NUMBER, 1)[0],
            }, REPEAT)
            m, a = C.median(res["irohds"]), C.median(res["lru"])
            C.info(f"{name:14s} irohds {C.fmt_dist(res['irohds'])}")
            C.info(f"{'':14s} lru    {C.fmt_dist(res['lru'])}")
            if name in CASES:
                C.report(f"tier0 hit {name}", m, "lru_cache", a,
                         "<= 1.5x lru_cache", m <= 1.5 * a)
            else:
                C.report(f"tier0 hit {name} (info)", m, "lru_cache", a)
        if info0 is not None:
            hits, misses, size = memo_f.cache_info()
            C.info(f"irohds cache_info during the run: +{hits - info0[0]} hits, "
                   f"+{misses - info0[1]} misses, size {size}")
            if misses != info0[1]:
                print("  WARNING: timed calls missed tier 0", flush=True)
        C.irohds_warnings()
    return 0


if __name__ == "__main__":
    sys.exit(main())
