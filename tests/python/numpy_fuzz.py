"""A structure-aware fuzzer for numpy pickles: real dtypes and arrays whose
__reduce__ output has one element changed (a flag, an offset, a shape, a
nested dtype, the raw data...), then loaded and used (repr, tolist, copy,
compare).  Plain pickle crashes the interpreter within ~100 of these (numpy
trusts the states it is given); the restricted unpickler must survive any
number.  Run as a script so a crash is a dead subprocess, not a dead test run:

    python numpy_fuzz.py {restricted|pickle} SEED COUNT   -> prints "ok <built>"
"""
from __future__ import annotations

import pickle
import random
import sys
import warnings
from typing import Any

import numpy as np

from attacks import ReduceBuild

POOL = [np.dtype(d) for d in (
    "f8", ">i4", "U5", "S3", "M8[ns]", "m8[10s]", "?", "c16", "f2", "O", "V16", "V",
    [("a", "<f8"), ("b", "O")], "(2,3)f8", "(2,)O", [(("t", "a"), "f4"), ("b", "O")],
    {"names": ["x"], "formats": ["i4"], "offsets": [4], "itemsize": 12})]
POOL += [np.dtype([("a", "u1"), ("b", "<i4")], align=True), np.dtype("f8", metadata={"k": 1})]
VALUES = [-1, 0, 1, 2, 3, 4, 7, 8, 16, 27, 63, 64, 144, 255, 2**31 - 1, 2**40, None,
          "<", ">", "|", "=", (), (1,), b"ns", "a", {}, True]


class Fuzzer:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def perturb(self, x: Any, depth: int = 0) -> Any:
        rng = self.rng
        if rng.random() < 0.7 or depth > 3:
            return x
        if isinstance(x, tuple) and x:
            items = list(x)
            i = rng.randrange(len(items))
            items[i] = (self.perturb(items[i], depth + 1) if rng.random() < 0.6
                        else rng.choice(VALUES + [self.dtype()]))
            if rng.random() < 0.05:
                items.pop()
            return tuple(items)
        if isinstance(x, dict) and x:
            d = dict(x)
            k = rng.choice(list(d))
            d[k] = self.perturb(d[k], depth + 1)
            return d
        return rng.choice(VALUES)

    def dtype(self) -> Any:
        _, args, state = self.rng.choice(POOL).__reduce__()
        return ReduceBuild(np.dtype, self.perturb(args), self.perturb(state))

    def array(self) -> Any:
        rng = self.rng
        f, args, state = np.zeros(rng.randrange(4), dtype=rng.choice(POOL)).__reduce__()
        state = list(state)
        if rng.random() < 0.5:
            state[1] = tuple(rng.randrange(5) for _ in range(rng.randrange(3)))
        if rng.random() < 0.3:
            state[2] = self.dtype()
        if rng.random() < 0.3:
            state[4] = rng.choice([bytes(rng.randrange(40)), [0] * rng.randrange(6),
                                   [(0, 0.0)] * 2, [(0,)] * 2])
        return ReduceBuild(f, args, tuple(state))

    def other(self) -> Any:
        from numpy._core.multiarray import scalar
        from numpy._core.numeric import _frombuffer

        rng = self.rng
        if rng.random() < 0.5:
            shape = tuple(rng.randrange(9) for _ in range(rng.randrange(3)))
            return ReduceBuild(_frombuffer, (bytes(rng.randrange(64)), self.dtype(), shape,
                                             rng.choice("CFAK")), None)
        return ReduceBuild(scalar, (self.dtype(), bytes(rng.randrange(20))), None)

    def payload(self) -> bytes:
        obj = self.rng.choice([self.array, self.other, self.dtype])()
        return pickle.dumps(obj, protocol=self.rng.choice([2, 4, 5]))


def use(value: Any) -> None:
    """What a caller does with a result: anything that reads it."""
    repr(value)
    if isinstance(value, np.ndarray):
        value.tolist()
        value.copy()
        np.array_equal(value, value)
    if isinstance(value, np.dtype):
        value == np.dtype("f8")  # noqa: B015 - the comparison itself is the test


def main(loader: str, seed: int, count: int) -> None:
    warnings.simplefilter("ignore")
    if loader == "restricted":
        from irohds import _restricted

        load = lambda data: _restricted.loads(data, [])  # noqa: E731
    else:
        load = pickle.loads
    fuzz = Fuzzer(seed)
    built = 0
    for _ in range(count):
        try:
            data = fuzz.payload()
        except Exception:  # noqa: BLE001 - a perturbation pickle itself refuses
            continue
        try:
            use(load(data))
            built += 1
        except Exception:  # noqa: BLE001 - refusals and numpy's own errors are fine
            pass
    print("ok", built)


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
