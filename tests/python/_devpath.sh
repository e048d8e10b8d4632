#!/bin/sh
# _devpath.sh: print a PYTHONPATH dir whose irohds/ package is the source
# tree's .py files plus the extension built in a developer build dir, so the
# tests run without a pip install.  Usage:
#   PYTHONPATH=$(tests/python/_devpath.sh build/native) .venv/bin/python -m pytest tests/python
set -e
root=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$root/build/native}" && pwd)
dir="$build/devpath"
mkdir -p "$dir/irohds"
for f in "$root"/python/irohds/*.py "$root"/python/irohds/*.pyi "$root"/python/irohds/py.typed \
         "$build"/python/_native*.so; do
    [ -e "$f" ] && ln -sf "$f" "$dir/irohds/$(basename "$f")"
done
echo "$dir"
