#!/usr/bin/env bash
# Run every benchmark in bench/ and print one summary table.
#   scripts/bench.sh            all of them
#   scripts/bench.sh tier0 ...  only bench/bench_<name>.py (or .sh) for each name given
# Each benchmark measures its anchor in the same run and prints
#   [bench] <name>: <figure> (<anchor> <figure>) ratio <r>, aim <aim> -> met|MISSED
# Exit status: nonzero only if a benchmark crashed; a missed aim is reported, not fatal.
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${IROHDS_BENCH_PYTHON:-$ROOT/.venv/bin/python}
export PATH="$ROOT/.venv/bin:$PATH"

if [ ! -x "$PY" ]; then
  echo "bench: $PY not found (run make install first)" >&2
  exit 2
fi

ALL=(tier0 new_process array_hit key_array store_put blake3 bao_stream quic transfer remote_small serve_memory discovery dht_traffic)
NAMES=("$@")
((${#NAMES[@]})) || NAMES=("${ALL[@]}")

SUMMARY=$(mktemp /tmp/irohds-bench-XXXXXX.jsonl)
OTHER=$(mktemp /tmp/irohds-bench-XXXXXX.log)
trap 'rm -f "$SUMMARY" "$OTHER"' EXIT
export IROHDS_BENCH_SUMMARY=$SUMMARY

crashed=()
for name in "${NAMES[@]}"; do
  py=bench/bench_$name.py
  sh=bench/bench_$name.sh
  start=$(date +%s.%N)
  if [ -f "$py" ]; then
    "$PY" "$py"
    rc=$?
  elif [ -f "$sh" ]; then
    bash "$sh" 2>&1 | tee -a "$OTHER"
    rc=${PIPESTATUS[0]}
  else
    echo "bench: no bench/bench_$name.py or .sh (skipped)"
    continue
  fi
  end=$(date +%s.%N)
  printf '   (%s: exit %d, %.1f s)\n\n' "$name" "$rc" "$(echo "$end - $start" | bc)"
  ((rc == 0)) || crashed+=("$name")
done

"$PY" - "$SUMMARY" <<'PYEOF'
import json, sys
sys.path.insert(0, "bench")
from _common import fmt_time, fmt_ratio, fmt_rate, fmt_bytes, fmt_packets
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
print("== summary (medians; ratio = irohds / anchor)")
w = max([len(r["name"]) for r in rows] + [10])
for r in rows:
    unit = r.get("unit", "s")
    fmt = {"s": fmt_time, "B/s": fmt_rate, "B": fmt_bytes, "pkt": fmt_packets}[unit]
    a = r["anchor"] if r.get("anchor") is not None else float("nan")
    anchor = ""
    ratio = ""
    if r.get("anchor_name"):
        anchor = f'{r["anchor_name"]} {fmt(a)}'
        if unit == "s":
            ratio = fmt_ratio(r["value"], a)
        elif a == a and a:
            ratio = f'ratio {r["value"] / a:.3f}'
    r["value_text"] = fmt(r["value"])
    verdict = "" if r.get("met") is None else ("met" if r["met"] else "MISSED")
    aim = f'aim {r["aim"]}: {verdict}' if r.get("aim") else ""
    print(f'{r["name"]:<{w}}  {r["value_text"]:>10}  {anchor:<28} {ratio:<28} {aim}')
PYEOF

# Shell benchmarks (bench_blake3.sh) print their own format: repeat their ratio lines.
if grep -qi 'ratio' "$OTHER"; then
  echo "== from shell benchmarks"
  grep -i 'ratio' "$OTHER"
fi
if ((${#crashed[@]})); then
  echo "bench: crashed: ${crashed[*]}" >&2
  exit 1
fi
exit 0
