"""Writing results into a store without a daemon, through the store writer
API (tests/python/helpers/mkstore.c, built as build/<dir>/python/irohds-mkstore):
for the read-only Store's tests and for results "from a peer" (a record with
origin remote and a chosen producer, as the daemon stores a download)."""
from __future__ import annotations

import glob
import os
import pickle
import subprocess
from pathlib import Path
from typing import Any, Iterable, Optional, Tuple

from irohds import _native

ROOT = Path(__file__).resolve().parents[2]
ORIGIN_LOCAL, ORIGIN_REMOTE = 0, 1


def find_mkstore() -> Optional[str]:
    env = os.environ.get("IROHDS_MKSTORE")
    if env:
        return env
    found = sorted(glob.glob(str(ROOT / "build" / "*" / "python" / "irohds-mkstore")),
                   key=os.path.getmtime)
    return found[-1] if found else None


MKSTORE = find_mkstore()


def write_container(value: Any, path: Path, pickled: Optional[bytes] = None) -> int:
    """A result container (docs/results.md) holding value, or the raw pickle
    stream `pickled` (any bytes: a hostile peer chooses them)."""
    buffers: list = []
    if pickled is None:
        pickled = pickle.dumps(value, protocol=5, buffer_callback=buffers.append)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        return _native.write_result(fd, pickled, [b.raw() for b in buffers])
    finally:
        os.close(fd)


def put(store_dir: Any, key: bytes, result_path: Any, func: str = "mod.f", ns: str = "default",
        files: Iterable[Tuple[str, Any]] = (), producer: Optional[bytes] = None,
        origin: int = ORIGIN_LOCAL) -> Tuple[bytes, int]:
    """Record key -> the container at result_path; (blob hash, size)."""
    assert MKSTORE, "irohds-mkstore not built"
    args = [MKSTORE]
    if producer is not None:
        args += ["--producer", producer.hex()]
    args += ["--origin", str(origin), str(store_dir), key.hex(), str(result_path), func, ns]
    args += [f"{name}={path}" for name, path in files]
    out = subprocess.run(args, check=True, capture_output=True, text=True).stdout.split()
    return bytes.fromhex(out[0]), int(out[1])
