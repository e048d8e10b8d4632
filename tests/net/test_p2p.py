"""Peers share results: real daemons on separate hosts (network namespaces on
a private bridge, tests/net/netlab.py), real QUIC between them.

Every host runs the same user code (one module on the shared file system,
as the same code on several machines), and its own daemon and data dir.  A
function body appends to a per-host marker file, so "B did not compute" is
checked by B's marker staying empty, not by timing.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
import time
from pathlib import Path
from typing import Dict

import pytest

from netlab import Host, Lab

MODULE = '''
import hashlib, os, time
import irohds

@irohds.memo(ns="lab")
def work(x, seconds=0.0, size=1000):
    """Stands in for an expensive step: marks that it ran, sleeps, returns
    a dict holding `size` bytes derived from x."""
    with open(os.environ["MARK"], "a") as f:
        f.write("c")
    time.sleep(seconds)
    block = hashlib.sha256(str(x).encode()).digest() * 8   # 256 bytes
    return {"x": x, "blob": block * (size // 256)}
'''

CALL = '''
import hashlib, json, time
import m_lab
t = time.perf_counter()
v = m_lab.work({x}, seconds={seconds}, size={size})
dt = time.perf_counter() - t
print(json.dumps({{"x": v["x"], "n": len(v["blob"]),
                  "sha": hashlib.sha256(v["blob"]).hexdigest(), "dt": dt}}))
'''


def expected_sha(x: int, size: int) -> str:
    block = hashlib.sha256(str(x).encode()).digest() * 8
    return hashlib.sha256(block * (size // 256)).hexdigest()


@pytest.fixture
def code(usercode: Path) -> Path:
    (usercode / "m_lab.py").write_text(MODULE)
    return usercode


def mark(h: Host) -> Path:
    return h.home / "mark"


def computed(h: Host) -> int:
    try:
        return len(mark(h).read_text())
    except FileNotFoundError:
        return 0


def call(h: Host, code: Path, x: int, seconds: float = 0.0, size: int = 1000,
         timeout: float = 120) -> Dict:
    r = h.python(CALL.format(x=x, seconds=seconds, size=size), cwd=code, timeout=timeout,
                 MARK=str(mark(h)))
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out["x"] == x and out["n"] == size // 256 * 256
    assert out["sha"] == expected_sha(x, size), "wrong bytes"
    return out


def spawn_call(h: Host, code: Path, x: int, seconds: float = 0.0, size: int = 1000):  # noqa: E501
    return h.spawn_python(CALL.format(x=x, seconds=seconds, size=size), cwd=code,
                          MARK=str(mark(h)))


def join(h: Host, ns: str = "lab") -> None:
    h.python(f"import irohds; irohds.join({ns!r})")


def wait_for(pred, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return
        time.sleep(0.05)
    raise AssertionError(f"timed out waiting for {what}")


def peers_in(h: Host, ns: str = "lab") -> int:
    return len(h.peers()["namespaces"].get(ns, []))


def three(lab_factory) -> Lab:
    """A, then C (bootstrapping from A), then B (from A and C: B can dial
    both providers; a provider known only by its node id needs discovery)."""
    lab = lab_factory(3)
    a, b, c = lab.hosts
    a.start_daemon()
    c.start_daemon(bootstrap=[a])
    b.start_daemon(bootstrap=[a, c])
    return lab


def test_a_result_computed_on_a_is_used_by_b_and_c(lab_factory, code: Path) -> None:
    lab = three(lab_factory)
    a, b, c = lab.hosts
    for h in (a, b, c):
        join(h)
    wait_for(lambda: peers_in(b) >= 1 and peers_in(c) >= 1, 10, "B and C in the topic")
    # 2 s of work: more than a download is estimated to take, so peers fetch
    first = call(a, code, 7, seconds=2, size=100_000)
    assert computed(a) == 1
    for h in (b, c):
        out = call(h, code, 7, seconds=2, size=100_000)
        assert computed(h) == 0, f"{h.name} computed instead of fetching"
        assert out["dt"] < 1.5, out
    # and each holds it now: a second call on B is a local hit with no daemon
    call(b, code, 7, seconds=2, size=100_000)
    assert computed(b) == 0
    assert "stored a result of m_lab.work from peers" in b.log()


EXPLAIN = '''
import json
import irohds, m_lab
r = irohds.explain(m_lab.work, {x}, seconds={seconds}, size={size})
print("JSON " + json.dumps(r))
'''


def test_explain_shows_the_bandwidth_its_decision_used(lab_factory, code: Path) -> None:
    """The provider line irohds.explain prints (Python, from the daemon's
    JSON) and the daemon's own reason (C) state one bandwidth: the JSON once
    carried bytes/s under a name Python read as bits/s, and the line showed
    15.6 MB/s beside a decision made at 125 MB/s."""
    lab = lab_factory(2)
    a, b = lab.hosts
    a.start_daemon()
    b.start_daemon(bootstrap=[a])
    for h in (a, b):
        join(h)
    wait_for(lambda: peers_in(b) >= 1, 10, "B in the topic")
    call(a, code, 13, seconds=2, size=100_000)
    report: Dict = {}

    def explained_fetch() -> bool:
        r = b.python(EXPLAIN.format(x=13, seconds=2, size=100_000), cwd=code)
        text, _, js = r.stdout.rpartition("JSON ")
        report.update(json.loads(js), text=text)
        return report["decision"] == "fetch"
    wait_for(explained_fetch, 10, "B's explain to see A's result")
    m = re.search(r" at ([0-9.]+) (kB|MB|GB)/s", report["reason"])
    assert m, report["reason"]
    said = float(m.group(1)) * {"kB": 1e3, "MB": 1e6, "GB": 1e9}[m.group(2)]
    (prov,) = report["providers"]
    assert prov["bytes_per_s"] == pytest.approx(said, rel=0.01)
    shown = re.search(r"  ([0-9.]+) MB/s \((measured|estimated)\)", report["text"])
    assert shown, report["text"]
    assert float(shown.group(1)) * 1e6 == pytest.approx(said, rel=0.01), report["text"]


def test_a_node_that_joins_later_finds_an_old_result_by_query(lab_factory, code: Path) -> None:
    lab = lab_factory(2)
    a, c = lab.hosts
    a.start_daemon()
    call(a, code, 11, seconds=2)  # announced to nobody: A is alone
    c.start_daemon(bootstrap=[a])
    out = call(c, code, 11, seconds=2)
    assert computed(c) == 0, "C computed although A had the result"
    assert out["dt"] < 5


def test_a_claim_makes_b_wait_for_a_instead_of_computing(lab_factory, code: Path) -> None:
    lab = lab_factory(2)
    a, b = lab.hosts
    a.start_daemon()
    b.start_daemon(bootstrap=[a])
    join(b)
    join(a)
    wait_for(lambda: peers_in(b) >= 1, 10, "B in the topic")
    slow = spawn_call(a, code, 21, seconds=4)
    wait_for(lambda: computed(a) == 1, 20, "A to start computing")
    time.sleep(0.5)  # A's claim reaches B
    t = time.monotonic()
    out = call(b, code, 21, seconds=4)
    waited = time.monotonic() - t
    assert slow.wait(timeout=60) == 0, slow.stderr.read()
    assert computed(b) == 0, "B computed although A had claimed it"
    assert computed(a) == 1
    assert waited > 1.5, f"B answered in {waited:.2f} s: it cannot have waited for A"
    assert out["x"] == 21


def _blob_path(h: Host, size_min: int) -> Path:
    blobs = [p for p in (h.home / "store" / "blobs").rglob("*")
             if p.is_file() and not p.name.endswith(".obao") and p.stat().st_size >= size_min]
    assert len(blobs) == 1, blobs
    return blobs[0]


@pytest.mark.parametrize("size", [32 << 20])
def test_a_provider_serving_corrupt_bytes_is_cut_off(lab_factory, code: Path, size: int) -> None:
    lab = three(lab_factory)
    a, b, c = lab.hosts
    for h in (a, b, c):
        join(h)
    # 5 s of work: a 32 MiB download is estimated well below that
    call(a, code, 31, seconds=5, size=size)
    call(c, code, 31, seconds=5, size=size)  # C now holds it too
    assert computed(c) == 0
    time.sleep(0.5)  # C's HAVE reaches B (a graft round when the C-B link is lazy)
    # Corrupt C's copy on disk (as a failing disk or a malicious peer would):
    # one byte in each eighth of the blob, so whatever part of it B asks C
    # for holds a bad byte.
    blob = _blob_path(c, size)
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as f:
        for k in range(1, 16, 2):
            f.seek(size * k // 16)
            byte = f.read(1)
            f.seek(size * k // 16)
            f.write(bytes([byte[0] ^ 0xFF]))
    out = call(b, code, 31, seconds=5, size=size)
    assert computed(b) == 0, "B computed although an honest provider had the result"
    assert out["sha"] == expected_sha(31, size)
    log = b.log()
    # B split the download between A and C (both announced it); C's parts
    # failed verification, and A finished them.
    assert "fail verification" in log, log[-3000:]
    assert "stored a result of m_lab.work from peers" in log


def test_a_provider_dying_mid_transfer_is_resumed_from_another(lab_factory, code: Path) -> None:
    size = 64 << 20
    lab = three(lab_factory)
    a, b, c = lab.hosts
    for h in (a, b, c):
        join(h)
    call(a, code, 41, seconds=6, size=size)
    call(c, code, 41, seconds=6, size=size)
    assert computed(c) == 0
    # Slow both providers' links down so the transfer to B takes seconds.
    lab.shape(a, "100mbit")
    lab.shape(c, "100mbit")
    p = spawn_call(b, code, 41, seconds=6, size=size)
    wait_for(lambda: "fetching a result of m_lab.work" in b.log(), 20, "B to start fetching")
    time.sleep(1.0)
    a.kill_daemon()  # A dies in the middle of serving its part
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    res = json.loads(out.strip().splitlines()[-1])
    assert res["sha"] == expected_sha(41, size)
    assert computed(b) == 0, "B computed instead of finishing from C"
    log = b.log()
    assert "failed a download" in log, log[-3000:]
