#!/usr/bin/env bash
# The main job: three machines share one expensive result peer to peer
# (scripts/demo.py: network namespaces as root, else daemons on 127.0.0.1).
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python -W ignore scripts/demo.py
