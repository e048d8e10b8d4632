"""Fixtures for the multi-host tests: a Lab of network namespaces per test
(netlab.py), torn down whatever happens.  Run with `make test-net` (root)."""
from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netlab import Lab  # noqa: E402


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "ignore::irohds.CheapCallWarning")


@pytest.fixture
def lab_factory() -> Iterator[Callable[[int], Lab]]:
    """lab_factory(n) -> a Lab of n hosts, removed at teardown."""
    labs = []

    def make(n: int) -> Lab:
        lab = Lab(n).__enter__()
        labs.append(lab)
        return lab

    yield make
    for lab in labs:
        lab.down()


@pytest.fixture
def usercode(tmp_path: Path) -> Path:
    d = tmp_path / "usercode"
    d.mkdir()
    return d
