#!/usr/bin/env bash
# Build every libFuzzer target (tests/fuzz/fuzz_*.c, with clang and
# ASan+UBSan) and run each for N seconds (default 60) from its seed corpus.
# A crash leaves its input in build/fuzz/crash-* and fails the script.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-60}
B=build/fuzz
if [ ! -f "$B/build.ninja" ]; then
  CC=clang .venv/bin/meson setup "$B" -Dfuzz=true -Dbuildtype=debug -Db_lundef=false >/dev/null
fi
ninja -C "$B" >/dev/null
shopt -s nullglob
for exe in "$B"/tests/fuzz/fuzz_*; do
  [ -f "$exe" ] && [ -x "$exe" ] || continue
  name=$(basename "$exe")
  corpus=$B/corpus-$name; mkdir -p "$corpus"
  seeds=tests/fuzz/seeds/${name#fuzz_}
  args=("$corpus"); [ -d "$seeds" ] && args+=("$seeds")
  echo "fuzz: $name for ${secs}s"
  "$exe" -max_total_time="$secs" -print_final_stats=0 -artifact_prefix="$B/crash-$name-" \
    "${args[@]}" 2>"$B/$name.log" || { tail -40 "$B/$name.log"; exit 1; }
  grep -E "^#[0-9]+.*DONE" "$B/$name.log" | tail -1 || true
done
