#!/usr/bin/env bash
# Install everything irohds needs to build, test and benchmark on Debian 12.
# Idempotent: a second run installs nothing and takes a second or two.
#   scripts/deps.sh          system packages + the project venv (.venv)
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PKGS=(
  build-essential pkg-config meson ninja-build clang libclang-rt-14-dev
  libuv1-dev liblmdb-dev lmdb-utils libsodium-dev libgnutls28-dev
  libngtcp2-dev libngtcp2-crypto-gnutls-dev libseccomp-dev libjson-c-dev
  b3sum iproute2 python3 python3-venv python3-dev python3-libtorrent
)

missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "deps: installing ${missing[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The venv: its own interpreter, so timings never go through a version-manager shim.
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  "$PY" -m venv .venv
fi
stamp=.venv/.deps-stamp
want="pip-2 pytest numpy joblib diskcache blake3 meson-python meson ninja"
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  .venv/bin/python -m pip install -q --upgrade pip
  .venv/bin/python -m pip install -q pytest numpy joblib diskcache blake3 meson-python 'meson>=1.2' ninja
  echo "$want" > "$stamp"
fi
