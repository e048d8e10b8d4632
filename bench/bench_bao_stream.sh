#!/usr/bin/env bash
# bench/bench_bao_stream.sh: whole-blob bao stream encode and decode
# (blobs/, 16 KiB groups) of a 256 MiB blob in memory, one core, against raw
# BLAKE3 of the same buffer in the same run (see bench/bao_stream_bench.c).
#
#   bash bench/bench_bao_stream.sh       (or: scripts/bench.sh bao_stream)
#
# Builds build/bench (meson --buildtype=release) if it is missing.  Prints
# "[bench] ..." lines: MB/s and ratio = figure / BLAKE3 (1.00: as fast as
# hashing; the encoder does not hash, so it can be above 1).  Aims: decode
# above 2 GB/s.  Size and runs: IROHDS_BAO_MB (256), IROHDS_BAO_RUNS (5).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/bench
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" bench/bao_stream_bench >/dev/null

anchor=""
while read -r name mbs ratio; do
  case "$name" in
  '#'*) continue ;;
  blake3) anchor=$mbs; continue ;;
  esac
  aim=""
  if [[ "$name" == decode_64k ]]; then
    aim=", aim > 2000 MB/s -> $([ "$mbs" -gt 2000 ] && echo met || echo MISSED)"
  fi
  echo "[bench] bao stream $name: $mbs MB/s (blake3 $anchor MB/s) ratio $ratio (figure/blake3)$aim"
done < <("$BUILD/bench/bao_stream_bench" "${IROHDS_BAO_MB:-256}" "${IROHDS_BAO_RUNS:-5}")
