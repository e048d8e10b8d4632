"""Fixtures for the multi-host tests: a Lab of network namespaces per test
(netlab.py), torn down whatever happens.  Run with `make test-net` (root)."""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Callable, Iterator

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from netlab import Lab  # noqa: E402

SANITIZER_REPORT = re.compile(r"ERROR: (Address|Leak|Undefined)Sanitizer|runtime error: ")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("filterwarnings", "ignore::irohds.CheapCallWarning")
    config.addinivalue_line("markers", "flood: a bad peer floods for 20 s or more (make test "
                            "runs these once, against the ASan daemon)")


@pytest.fixture
def lab_factory() -> Iterator[Callable[[int], Lab]]:
    """lab_factory(n) -> a Lab of n hosts, removed at teardown."""
    labs = []

    def make(n: int) -> Lab:
        lab = Lab(n).__enter__()
        labs.append(lab)
        return lab

    yield make
    # A sanitized daemon (IROHDS_TEST_DAEMON, make test-net-asan) reports into
    # its log; a report anywhere fails the test that caused it.
    reports = [f"{h.name}: {h.log()[-4000:]}" for lab in labs for h in lab.hosts
               if SANITIZER_REPORT.search(h.log())]
    for lab in labs:
        lab.down()
    assert not reports, "sanitizer report in a daemon log:\n" + "\n".join(reports)


@pytest.fixture
def usercode(tmp_path: Path) -> Path:
    d = tmp_path / "usercode"
    d.mkdir()
    return d
