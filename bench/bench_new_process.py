"""First call in a NEW process, and later hits on other keys (tier 1).

Setup (this process): a module with a small function is written to a temp
dir; its results for keys 0..K are stored once (irohds: misses through the
daemon; diskcache Cache.memoize and joblib.Memory: their own misses).

Then, ROUNDS times, for each tool in rotating order, a fresh interpreter
(this venv's python) is started that:
  1. imports the tool (irohds import time printed separately, for information),
  2. imports the module, i.e. applies the decorator (diskcache: Cache(dir)
     is built here, since the decorator needs it; its cost is shown too),
  3. times f(0) alone: from just before the call to the value.  For irohds
     this includes opening the store (LMDB read-only + mmap of the blob),
  4. times f(1) .. f(K) one call each: different args every call, so irohds
     answers from tier 1 (the store read directly), never tier 0.
A marker file counts every execution of the function body: a "hit" that ran
the body is reported as an error.

Aims (issue): first call in a new process <= 0.1 ms; later hits <= 10 µs.
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _common as C  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_NP_ROUNDS", "20"))
K = int(os.environ.get("BENCH_NP_KEYS", "200"))
TOOLS = ("irohds", "diskcache", "joblib")

BODY = '''
def small(x):
    with open(os.environ["IBNP_MARK"], "a") as fh:
        fh.write("c")
    return ("v", x, x * x)
'''
MOD_IROHDS = "import os\nimport irohds\n\n\n@irohds.memo" + BODY
MOD_PLAIN = "import os\n\n" + BODY

CHILD = r'''
import json, os, sys, time
t_start = time.perf_counter()
tool, moddir, cachedir, k = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
sys.path.insert(0, moddir)
out = {}
if tool == "irohds":
    t0 = time.perf_counter()
    import irohds
    t1 = time.perf_counter()
    import ibnp_irohds as m
    f = m.small
    t2 = time.perf_counter()
elif tool == "diskcache":
    t0 = time.perf_counter()
    import diskcache
    t1 = time.perf_counter()
    import ibnp_plain as m
    cache = diskcache.Cache(cachedir)
    f = cache.memoize()(m.small)
    t2 = time.perf_counter()
else:
    t0 = time.perf_counter()
    import joblib
    t1 = time.perf_counter()
    import ibnp_plain as m
    mem = joblib.Memory(cachedir, verbose=0)
    f = mem.cache(m.small)
    t2 = time.perf_counter()
pc = time.perf_counter
a = pc()
v = f(0)
b = pc()
assert v == ("v", 0, 0), v
later = []
for i in range(1, k + 1):
    a2 = pc()
    v = f(i)
    b2 = pc()
    later.append(b2 - a2)
    assert v == ("v", i, i * i), v
out.update(import_s=t1 - t0, decorate_s=t2 - t1, first_s=b - a, later_s=later)
print(json.dumps(out))
'''


def populate(tool: str, moddir: str, cachedir: str) -> None:
    """Store keys 0..K through the tool, in this process."""
    sys.path.insert(0, moddir)
    try:
        if tool == "irohds":
            import ibnp_irohds as m
            f = m.small
        elif tool == "diskcache":
            import diskcache
            import ibnp_plain as m
            f = diskcache.Cache(cachedir).memoize()(m.small)
        else:
            import joblib
            import ibnp_plain as m
            f = joblib.Memory(cachedir, verbose=0).cache(m.small)
        for i in range(K + 1):
            assert f(i) == ("v", i, i * i)
    finally:
        sys.path.remove(moddir)


def main() -> int:
    C.header(f"bench_new_process: first call in a fresh process, then {K} hits on other keys")
    with C.irohds_home() as home, C.tmp_dir() as work:
        moddir = os.path.join(work, "mods")
        os.mkdir(moddir)
        C.write_module(moddir, "ibnp_irohds", MOD_IROHDS)
        C.write_module(moddir, "ibnp_plain", MOD_PLAIN)
        child = C.write_module(work, "child", CHILD)
        mark = os.path.join(work, "mark")
        open(mark, "w").close()
        os.environ["IBNP_MARK"] = mark
        dirs = {"irohds": home, "diskcache": os.path.join(work, "dc"),
                "joblib": os.path.join(work, "jl")}

        t = time.perf_counter()
        C.watch_irohds_log()
        for tool in TOOLS:
            populate(tool, moddir, dirs[tool])
        computed = os.path.getsize(mark)
        C.irohds_warnings()
        C.info(f"setup: stored {K + 1} keys per tool, {computed} body executions, "
               f"{time.perf_counter() - t:.2f} s")

        res: dict[str, list[dict]] = {tool: [] for tool in TOOLS}
        for r in range(ROUNDS):
            order = TOOLS[r % 3:] + TOOLS[:r % 3]
            for tool in order:
                res[tool].append(C.run_child(child, [tool, moddir, dirs[tool], str(K)]))
        recomputed = os.path.getsize(mark) - computed
        if recomputed:
            print(f"  ERROR: {recomputed} function bodies ran in the children (should be hits)",
                  flush=True)

        first = {t: [d["first_s"] for d in res[t]] for t in TOOLS}
        later = {t: [x for d in res[t] for x in d["later_s"]] for t in TOOLS}
        later_med = {t: [C.median(d["later_s"]) for d in res[t]] for t in TOOLS}
        for t in TOOLS:
            imp = [d["import_s"] for d in res[t]]
            dec = [d["decorate_s"] for d in res[t]]
            C.info(f"{t:9s} import {C.fmt_time(C.median(imp))}, "
                   f"decorate (+open for diskcache) {C.fmt_time(C.median(dec))}")
            C.info(f"{t:9s} first call  {C.fmt_dist(first[t])}")
            C.info(f"{t:9s} later hits  {C.fmt_dist(later[t])} "
                   f"(median of per-process medians {C.fmt_time(C.median(later_med[t]))})")
            opened = [d["decorate_s"] + d["first_s"] for d in res[t]]
            C.info(f"{t:9s} decorate + first call {C.fmt_time(C.median(opened))}")

        fm = C.median(first["irohds"])
        for anchor in ("diskcache", "joblib"):
            C.report(f"new-process first call vs {anchor}", fm, f"{anchor}",
                     C.median(first[anchor]), "<= 0.1 ms", fm <= 1e-4)
        lm = C.median(later["irohds"])
        for anchor in ("diskcache", "joblib"):
            C.report(f"new-process later hit (tier 1) vs {anchor}", lm, f"{anchor}",
                     C.median(later[anchor]), "<= 10 µs", lm <= 1e-5)
        imp = C.median([d["import_s"] for d in res["irohds"]])
        C.report("import irohds (info)", imp, None, None)
        if recomputed:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
