#!/usr/bin/env bash
# The main job, on one machine: two separate Python processes call the same
# memoized function.  The first computes it (a few seconds of "work"); the
# second gets the stored result straight from the local store.  Then the
# daemon's view: irohds-daemon info / ls.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=$PWD/.venv/bin/python
export IROHDS_HOME=$(mktemp -d /tmp/irohds-demo.XXXXXX)
trap 'irohds-daemon stop >/dev/null 2>&1 || true; rm -rf "$IROHDS_HOME"' EXIT

work=$IROHDS_HOME/demo_work.py
cat > "$work" <<'PY'
import sys, time
import irohds

@irohds.memo(ns="demo")
def simulate(n_steps: int, seed: int = 7) -> list:
    """Stands in for hours of work: sleeps, then returns a result."""
    time.sleep(3)
    x, out = seed, []
    for _ in range(n_steps):
        x = (x * 1103515245 + 12345) % 2**31
        out.append(x % 1000)
    return out

t0 = time.perf_counter()
result = simulate(100_000)
dt = time.perf_counter() - t0
print(f"process {sys.argv[1]} (pid {__import__('os').getpid()}): "
      f"simulate(100_000) -> {len(result)} values, sum {sum(result)}, in {dt*1e3:.3f} ms")
PY

echo "== data dir: $IROHDS_HOME"
echo "== process 1: nothing stored yet, so it computes (~3 s)"
"$PY" -W ignore "$work" 1
echo "== process 2: a new interpreter; the result comes from the local store"
"$PY" -W ignore "$work" 2
echo "== process 3: once more"
"$PY" -W ignore "$work" 3
echo "== irohds-daemon info"
irohds-daemon info
echo "== irohds-daemon ls"
irohds-daemon ls
