#!/usr/bin/env bash
# bench/bench_quic.sh: the QUIC transport alone (src/net, no blobs, no store)
# against plain TCP, same run, loopback.
#
#   bash bench/bench_quic.sh          (or: scripts/bench.sh quic)
#
# Runs bench/quic_bench --role both (a forked receiver, see quic_bench.c):
# 256 MiB per transfer, 5 runs, medians.  Reports one QUIC stream with the
# endpoint's own datagram size (64 KB to loopback), with 1452-byte datagrams
# (what a 1500-MTU link allows) with and without GSO/GRO, and the time from a
# fresh connect to the first echo.  Ratio = QUIC / TCP (above 1: QUIC faster).
# The transfer between two hosts, store and verification included, is
# bench_transfer.py.  Sizes: IROHDS_QUIC_MB (256), IROHDS_QUIC_RUNS (5).
set -euo pipefail
cd "$(dirname "$0")/.."

BUILD=build/bench
if [ ! -f "$BUILD/build.ninja" ]; then
  meson setup "$BUILD" --buildtype=release >/dev/null
fi
ninja -C "$BUILD" bench/quic_bench >/dev/null
MB=${IROHDS_QUIC_MB:-256}
RUNS=${IROHDS_QUIC_RUNS:-5}
OUT=$(mktemp /tmp/irohds-quicbench-XXXXXX)
trap 'rm -f "$OUT"' EXIT
"$BUILD/bench/quic_bench" --bytes $((MB << 20)) --runs "$RUNS" >"$OUT" 2>&1
sed 's/^/  /' "$OUT"

med() { awk -v k="$1" 'index($0, k) == 1 { for (i = 1; i <= NF; i++) if ($i == "median") { print $(i + 1); exit } }' "$OUT"; }
tcp=$(med "TCP ")
auto=$(med "QUIC, auto-sized")
gso=$(med "QUIC, 1452-byte datagrams, GSO+GRO")
nogso=$(med "QUIC, 1452-byte datagrams, no GSO/GRO")
echo333=$(med "connect->first echo, initial RTT 333")
echo10=$(med "connect->first echo, initial RTT 10")
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
echo "[bench] quic loopback, 64 KB datagrams: $auto MB/s (TCP $tcp MB/s) ratio $(ratio "$auto" "$tcp") (QUIC/TCP)"
echo "[bench] quic loopback, 1452-byte datagrams, GSO+GRO: $gso MB/s (TCP $tcp MB/s) ratio $(ratio "$gso" "$tcp") (QUIC/TCP)"
echo "[bench] quic loopback, 1452-byte datagrams, no GSO/GRO: $nogso MB/s (GSO+GRO $gso MB/s) ratio $(ratio "$nogso" "$gso") (without/with)"
echo "[bench] quic connect to first echo: $echo10 ms with our initial RTT (ngtcp2's 333 ms default $echo333 ms) ratio $(ratio "$echo10" "$echo333")"
