#!/usr/bin/env bash
# bench/bench_blake3.sh: single-core BLAKE3 throughput of irohds, per
# implementation, against b3sum --num-threads 1 measured in the same run.
#
#   bash bench/bench_blake3.sh          (or: scripts/bench.sh blake3)
#
# Builds build/bench (meson --buildtype=release) if it is missing, then:
#  1 MiB   ours: blake3_bench mem, one 1 MiB buffer hashed 8x per sample,
#          301 samples, median.
#          b3sum: one process hashes the same 1 MiB file (in /dev/shm, so
#          page cache) K=513 times (`b3sum --num-threads 1 f f f ...`), and
#          one process hashes it once; per hash = (T_513 - T_1) / 512, which
#          removes process start-up.  What remains is b3sum's per-file cost:
#          open + mmap + hash + munmap + printing a line.  Median of 5 rounds.
#  1 GiB   a random file in /dev/shm.  Ours reads it into memory first and
#          hashes it from there (median of 3 per implementation); b3sum
#          hashes the file (it mmaps it; tmpfs pages are already in memory),
#          median of 3 wall-clock runs including its start-up (~1 ms, noise
#          at this size).  Both hashes are compared.
#  bao     outboard + root of a 100 MB buffer with 16 KiB groups (the store's
#          per-result work), best implementation, median of 5.
# Prints "[bench] ..." lines with GiB/s and ratio = ours / b3sum (above 1:
# ours is faster).  Sizes: IROHDS_B3_BIG_MB (default 1024), IROHDS_B3_K (513).
# Everything in /dev/shm is removed on exit.
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/bench
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" bench/blake3_bench >/dev/null
BENCH=$BUILD/bench/blake3_bench
command -v b3sum >/dev/null || { echo "bench_blake3: b3sum not installed" >&2; exit 2; }

BIG_MB=${IROHDS_B3_BIG_MB:-1024}
K=${IROHDS_B3_K:-513}
WORK=$(mktemp -d /dev/shm/irohds-b3bench-XXXXXX)
trap 'rm -rf "$WORK"' EXIT

# Wall-clock seconds of a command (bash's EPOCHREALTIME: no fork to time).
elapsed() {
  local t0=$EPOCHREALTIME
  "$@" >/dev/null
  local t1=$EPOCHREALTIME
  echo "$t1 - $t0" | bc -l
}
median() { sort -g | awk '{v[NR]=$1} END {print (NR%2) ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2}'; }
gib() { echo "$1 / 1073741824" | bc -l; }
fmt() { printf '%.2f' "$1"; }

# ------------------------------------------------------------------ 1 MiB
head -c 1048576 /dev/urandom >"$WORK/m1"
files=()
for ((i = 0; i < K; i++)); do files+=("$WORK/m1"); done
b3sum --num-threads 1 "${files[@]}" >/dev/null # warm up
per=()
for r in 1 2 3 4 5; do
  tk=$(elapsed b3sum --num-threads 1 "${files[@]}")
  t1=$(elapsed b3sum --num-threads 1 "$WORK/m1")
  per+=("$(echo "($tk - $t1) / ($K - 1)" | bc -l)")
done
b3_small=$(printf '%s\n' "${per[@]}" | median)
b3_small_gib=$(gib "$(echo "1048576 / $b3_small" | bc -l)")

while read -r _ impl gibs; do
  ratio=$(echo "$gibs / $b3_small_gib" | bc -l)
  aim=""
  if [ "$impl" = avx2 ]; then
    met=$(echo "$gibs >= 2.5" | bc -l)
    aim=", aim >= 2.5 GiB/s -> $([ "$met" = 1 ] && echo met || echo MISSED)"
  fi
  echo "[bench] blake3 1 MiB $impl: $(fmt "$gibs") GiB/s (b3sum 1 thread $(fmt "$b3_small_gib") GiB/s) ratio $(fmt "$ratio") (ours/b3sum, above 1 = faster)$aim"
done < <("$BENCH" mem)

# ------------------------------------------------------------------- 1 GiB
head -c $((BIG_MB * 1048576)) /dev/urandom >"$WORK/big"
size=$((BIG_MB * 1048576))
b3_hash=$(b3sum --num-threads 1 --no-names "$WORK/big")
ts=()
for r in 1 2 3; do ts+=("$(elapsed b3sum --num-threads 1 "$WORK/big")"); done
b3_big=$(printf '%s\n' "${ts[@]}" | median)
b3_big_gib=$(gib "$(echo "$size / $b3_big" | bc -l)")

while read -r _ impl gibs hash; do
  ratio=$(echo "$gibs / $b3_big_gib" | bc -l)
  same=$([ "$hash" = "$b3_hash" ] && echo "same hash" || echo "HASH DIFFERS from b3sum")
  echo "[bench] blake3 $BIG_MB MiB $impl: $(fmt "$gibs") GiB/s (b3sum 1 thread $(fmt "$b3_big_gib") GiB/s) ratio $(fmt "$ratio") (ours/b3sum), $same"
done < <("$BENCH" file "$WORK/big" 3)
rm -f "$WORK/big"

# ------------------------------------------------------------- bao outboard
read -r _ secs gibs < <("$BENCH" outboard 100)
met=$(echo "$secs < 0.2" | bc -l)
echo "[bench] bao outboard 100 MB (16 KiB groups): $(printf '%.3f' "$secs") s ($(fmt "$gibs") GiB/s, no anchor), aim < 0.2 s -> $([ "$met" = 1 ] && echo met || echo MISSED)"
