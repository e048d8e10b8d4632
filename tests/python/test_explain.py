"""irohds.explain: the decision a call would make, and why, without making
the call.  Local tiers against the real store and daemon; the daemon's
EXPLAIN answer with numbers of every kind, and one that predates EXPLAIN,
from a fake one."""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Iterator, List

import pytest

import fakedaemon as fd
import irohds
from conftest import start_daemon
from irohds import _daemon, _native
from storeutil import MKSTORE, ORIGIN_REMOTE, put, write_container

CALLS: List[Any] = []


@irohds.memo
def f(x, scale=1):
    CALLS.append(x)
    return x * scale


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    f.cache_clear()
    CALLS.clear()
    _daemon._logged.clear()
    yield


EXAMPLE = {  # docs/ipc.md "EXPLAIN JSON"
    "key": "ab" * 32, "decision": "fetch", "reason": "a download beats computing here",
    "local_compute_s": 12.5, "download_s": 0.8, "wait_s": None,
    "size": 1048576, "producer": "cd" * 32, "producer_seconds": 10.0,
    "producer_capability": 1.1, "our_capability": 0.88,
    "providers": [{"node": "ef" * 32, "connected": True, "rtt_ms": 0.4,
                   "bytes_per_s": 6.4e8, "measured": True}],
    "claim": None}


def explaining(text: str) -> fd.Handler:
    def handle(conn: fd.Conn, msg: fd.Msg) -> None:
        if msg.type == fd.EXPLAIN:
            conn.send(fd.OK, msg.id, {fd.TEXT: text.encode()})
        else:
            fd.error(conn, msg, -95, "this fake only explains")
    return handle


@pytest.fixture
def fake_explaining(home: Path) -> Iterator[Any]:
    daemons: List[fd.FakeDaemon] = []

    def start(text: str) -> fd.FakeDaemon:
        daemons.append(fd.FakeDaemon(_native.paths()["socket_path"], explaining(text)))
        return daemons[-1]
    yield start
    for d in daemons:
        d.stop()


def test_no_daemon_says_so_and_starts_none(capsys: pytest.CaptureFixture) -> None:
    report = irohds.explain(f, 1)
    assert report["decision"] == "compute" and report["where"] == "no daemon"
    assert report["key"] == f._irohds.key((1,), None).hex()
    out = capsys.readouterr().out
    assert "test_explain.f" in out and "no daemon is running" in out and "computes here" in out
    assert CALLS == []
    assert not os.path.exists(_native.paths()["socket_path"])  # explain started nothing


def test_memory_and_local_store_hits(capsys: pytest.CaptureFixture, sock: str) -> None:
    assert f(2, scale=3) == 6
    assert irohds.explain(f, 2, 3)["where"] == "memory"  # f(2, 3) is the same call
    assert "decision   hit: in memory" in capsys.readouterr().out
    f.cache_clear()
    report = irohds.explain(f, x=2, scale=3)
    assert report["decision"] == "hit" and report["where"] == "local store"
    assert report["remote"] is False and report["size"] > 0
    assert "hit: local store" in capsys.readouterr().out
    assert CALLS == [2]


def test_miss_with_the_real_daemon_and_no_peers(sock: str) -> None:
    report = irohds.explain(f, 3)
    assert report["decision"] == "compute" and report["where"] == "daemon"
    assert "no peer of namespace default" in report["reason"]
    # no lease was taken: the call itself computes at once
    assert f(3) == 3 and CALLS == [3]


def test_miss_with_a_daemon_that_predates_explain(home: Path) -> None:
    def refuse_all(conn: fd.Conn, msg: fd.Msg) -> None:
        fd.error(conn, msg, -95, "unknown request type")  # what an older daemon says
    daemon = fd.FakeDaemon(_native.paths()["socket_path"], refuse_all)
    try:
        report = irohds.explain(f, 3)
    finally:
        daemon.stop()
    assert report["decision"] == "compute" and report["where"] == "daemon"
    assert "predates EXPLAIN" in report["reason"]


def test_key_is_the_calls_key(fake_explaining: Any) -> None:
    daemon = fake_explaining(json.dumps(EXAMPLE))
    irohds.explain(f, 4, scale=2)
    sent = [m for m in daemon.requests if m.type == fd.EXPLAIN][0]
    assert sent.fields[fd.KEY] == f._irohds.key((4, 2), None)
    assert sent.text(fd.FUNC) == "test_explain.f" and sent.text(fd.NS) == "default"


def test_daemon_explanation_is_printed_with_its_numbers(fake_explaining: Any,
                                                        capsys: pytest.CaptureFixture) -> None:
    fake_explaining(json.dumps(EXAMPLE))
    report = irohds.explain(f, 5)
    assert report["decision"] == "fetch" and report["where"] == "daemon"
    assert report["local_compute_s"] == 12.5 and report["providers"][0]["rtt_ms"] == 0.4
    assert report["key"] == f._irohds.key((5,), None).hex()  # ours, not the daemon's
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[1].startswith("  decision   fetch (a download beats computing here)")
    assert "~12.5 s here (the producer took 10.0 s; capability 1.10 there, 0.88 here)" in out
    assert "~800 ms for 1.0 MB" in out
    assert "efefefefefef…  connected  rtt 0.4 ms  640.0 MB/s (measured)" in out
    assert CALLS == []


def test_wait_with_a_claim(fake_explaining: Any, capsys: pytest.CaptureFixture) -> None:
    fake_explaining(json.dumps(dict(EXAMPLE, decision="wait", wait_s=3.2, providers=[],
                                    claim={"node": "12" * 32, "expected_done_in_s": 3.2})))
    assert irohds.explain(f, 6)["decision"] == "wait"
    out = capsys.readouterr().out
    assert "wait       ~3.2 s (peer 121212121212… is computing it, done in ~3.2 s)" in out
    assert "providers  none known" in out


@pytest.mark.parametrize("text", ["not json", "[1, 2]", '{"decision": "teleport"}', ""])
def test_garbage_explanation_is_unknown_and_logged_once(text: str, fake_explaining: Any,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    fake_explaining(text)
    with caplog.at_level(logging.WARNING, logger="irohds"):
        assert irohds.explain(f, 7)["decision"] == "unknown"
        assert irohds.explain(f, 8)["decision"] == "unknown"
    assert sum("explanation" in r.getMessage() for r in caplog.records) == 1
    assert f(7) == 7  # and the call itself still computes (the fake refuses GET)


def test_fields_of_the_wrong_type_are_unknown(fake_explaining: Any,
                                              caplog: pytest.LogCaptureFixture,
                                              capsys: pytest.CaptureFixture) -> None:
    fake_explaining(json.dumps(dict(EXAMPLE, local_compute_s="soon", size=True,
                                    providers="many", claim=[1], download_s=float("nan"))))
    with caplog.at_level(logging.WARNING, logger="irohds"):
        report = irohds.explain(f, 9)
    assert report["decision"] == "fetch"
    assert report["local_compute_s"] is None and report["size"] is None
    assert report["providers"] == [] and report["claim"] is None
    assert "compute    ~unknown here" in capsys.readouterr().out
    logged = [r.getMessage() for r in caplog.records if "wrong type" in r.getMessage()]
    assert len(logged) == 1 and "local_compute_s" in logged[0]


@pytest.mark.skipif(MKSTORE is None, reason="irohds-mkstore not built")
def test_result_from_an_untrusted_peer(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    key = f._irohds.key((10,), None)
    write_container(100, tmp_path / "res")
    put(_native.paths()["store_dir"], key, tmp_path / "res", func="test_explain.f",
        producer=b"\x77" * 32, origin=ORIGIN_REMOTE)
    report = irohds.explain(f, 10)
    assert report["where"] == "local store" and report["remote"] is True
    assert report["trusted"] is False and report["producer"] == "77" * 32
    assert "not trusted" in report["reason"]
    assert "by peer 777777777777…" in capsys.readouterr().out


class Model:
    @irohds.memo(ignore=["self"])
    def score(self, x):
        CALLS.append(("score", x))
        return -x


def test_bound_method_is_explained_as_its_call(sock: str) -> None:
    model = Model()
    assert model.score(3) == -3
    report = irohds.explain(model.score, 3)
    assert report["decision"] == "hit" and report["where"] == "memory"
    assert report["key"] == Model.score._irohds.key((model, 3), None).hex()


def test_disabled_and_unkeyable(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(TypeError):
        irohds.explain(f)  # does not bind, as the call would not
    with pytest.raises(TypeError, match="decorated with @irohds.memo"):
        irohds.explain(len, [1])
    monkeypatch.setenv("IROHDS_DISABLE", "1")
    assert irohds.explain(f, 1)["where"] == "disabled"
