#!/usr/bin/env bash
# The test suite under AddressSanitizer + UndefinedBehaviorSanitizer:
#   1. the C unit tests, built with -fsanitize=address,undefined;
#   2. the Python tests against the sanitized extension and daemon (the
#      extension needs libasan preloaded into the interpreter);
#   3. the multi-host tests (root) against the sanitized daemon;
#   4. every fuzz target (clang, libFuzzer) for a short run.
set -euo pipefail
cd "$(dirname "$0")/.."
B=build/asan
MESON=$PWD/.venv/bin/meson
if [ ! -f "$B/build.ninja" ]; then
  "$MESON" setup "$B" -Dbuildtype=debug -Db_sanitize=address,undefined -Db_lundef=false \
    -Dc_args=-fno-sanitize-recover=undefined >/dev/null
fi
ninja -C "$B" >/dev/null

export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1:strict_string_checks=1
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
echo "== asan: C unit tests"
"$MESON" test -C "$B" --print-errorlogs

echo "== asan: Python tests against the sanitized extension and daemon"
stage=$B/pystage/irohds
rm -rf "$B/pystage"; mkdir -p "$stage"
for f in python/irohds/*.py python/irohds/py.typed; do ln -s "$PWD/$f" "$stage/"; done
ln -s "$PWD/$(ls $B/python/_native*.so)" "$stage/"
mkdir -p "$B/pybin"; ln -sf "$PWD/$B/src/daemon/irohds-daemon" "$B/pybin/irohds-daemon"
LD_PRELOAD="$(gcc -print-file-name=libasan.so):$(gcc -print-file-name=libubsan.so)" \
PYTHONPATH="$PWD/$B/pystage" IROHDS_DAEMON="$PWD/$B/src/daemon/irohds-daemon" \
PATH="$PWD/$B/pybin:$PWD/.venv/bin:$PATH" IROHDS_ASAN=1 \
  .venv/bin/python -m pytest -q -p no:cacheprovider tests/python

if [ "$(id -u)" = 0 ]; then
  echo "== asan: multi-host tests against the sanitized daemon"
  # a small quarantine keeps ASan's own memory out of the flood tests' RSS bound
  ASAN_OPTIONS=$ASAN_OPTIONS:quarantine_size_mb=16 \
  IROHDS_TEST_DAEMON="$PWD/$B/src/daemon/irohds-daemon" \
  IROHDS_DHT_TOOL="$PWD/$B/tests/interop/dht_tool" \
    .venv/bin/python -m pytest -q -p no:cacheprovider tests/net
fi

echo "== fuzz targets (short runs)"
scripts/fuzz.sh "${FUZZ_SECONDS:-10}"
