"""Results from peers, end to end with a real daemon: a result recorded with
origin remote and a chosen producer (storeutil.put, as the daemon will
store a download) is loaded with plain pickle only when its producer is
trusted (config.toml, [namespace.<ns>], memo(trust=...), this node).
From anyone else a hostile pickle runs nothing: the call computes, returns
its own value, says once which global it refused from which peer, and the
peer's record is replaced by the local result."""
from __future__ import annotations

import asyncio
import json
import logging
import os
import pickle
import time
from pathlib import Path
from typing import Any, List, Optional, Tuple

import numpy as np
import pytest

import attacks
import irohds
from conftest import write_config, run_py, start_daemon, stop_daemon, write
from irohds import _daemon, _native
from storeutil import MKSTORE, ORIGIN_REMOTE, put, write_container

pytestmark = pytest.mark.skipif(MKSTORE is None, reason="irohds-mkstore not built")

PEER = bytes.fromhex("5e" * 32)
CALLS: List[Any] = []
ASYNC_PEER_CALLS: List[Any] = []


@irohds.memo
def f(x):
    CALLS.append(x)
    return {"computed": x}


@irohds.memo(trust=[PEER.hex().upper()])
def g(x):
    CALLS.append(("g", x))
    return {"computed": x}


@irohds.memo(ns="lab")
def h(x):
    CALLS.append(("h", x))
    return {"computed": x}


@irohds.memo
async def af(x):
    ASYNC_PEER_CALLS.append(x)
    return {"computed": x}


@pytest.fixture(autouse=True)
def fresh() -> Any:
    """Each test starts with empty in-process tables and log-once memory."""
    for fn in (f, g, h, af):
        fn.cache_clear()
    CALLS.clear()
    ASYNC_PEER_CALLS.clear()
    _daemon._logged.clear()
    yield


def store_remote(tmp_path: Path, fn: Any, args: Tuple[Any, ...], value: Any = None,
                 pickled: Optional[bytes] = None, producer: bytes = PEER,
                 origin: int = ORIGIN_REMOTE) -> bytes:
    """Record fn(*args) -> a container of value (or of the raw pickle), as a
    download from producer; the daemon must not be running.  The key."""
    state = fn._irohds
    key = state.key(args, None)
    path = tmp_path / f"res-{key.hex()[:8]}"
    write_container(value, path, pickled)
    put(_native.paths()["store_dir"], key, path, func=state.name, ns=state.ns,
        producer=producer, origin=origin)
    return key


def lookup(key: bytes) -> Optional[dict]:
    """Through this process's own store handle: LMDB must not be opened
    twice in one process (closing the second would break the first)."""
    return _daemon.runtime().store().lookup(key)


def refusals(caplog: pytest.LogCaptureFixture) -> List[str]:
    return [r.getMessage() for r in caplog.records
            if r.name == "irohds" and "refused" in r.getMessage()]


def node_id() -> str:
    """This data dir's node id (a daemon is started to make the key, then stopped)."""
    start_daemon()
    node = irohds.info()["node_id"]
    stop_daemon(os.environ["IROHDS_HOME"])
    _daemon.runtime().drop_client(RuntimeError("daemon stopped by the test"))
    return node


# ------------------------------------------------------------ untrusted

def test_hostile_results_from_untrusted_peers_run_nothing(tmp_path: Path,
                                                          caplog: pytest.LogCaptureFixture) -> None:
    """Every payload of attacks.py, each as f(i)'s result from its own peer,
    all served by one daemon."""
    names = sorted(attacks.payloads("/x"))
    cases = []
    for i, name in enumerate(names):
        sentinel = tmp_path / f"pwned-{i}"
        peer = bytes([0x60 + i]) * 32
        key = store_remote(tmp_path, f, (100 + i,), producer=peer,
                           pickled=attacks.payloads(str(sentinel))[name])
        cases.append((i, name, sentinel, peer, key))
    start_daemon()
    node = irohds.info()["node_id"]
    for i, name, sentinel, peer, key in cases:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger="irohds"):
            assert f(100 + i) == {"computed": 100 + i}, name
        time.sleep(0.1)  # a Popen child would have touched it by now
        assert not sentinel.exists(), name
        assert CALLS[-1] == 100 + i, name
        logged = refusals(caplog)
        assert len(logged) == 1, (name, caplog.text)
        assert peer.hex() in logged[0] and "test_remote.f" in logged[0], name
        if name in ("os.system", "nested-in-list", "numpy-object-array"):
            assert f"global {os.system.__module__}.system" in logged[0], name
        # the peer's record was replaced by the result computed here
        record = lookup(key)
        assert record is not None and record["remote"] is False, name
        assert record["producer"].hex() == node, name
    assert CALLS == [100 + i for i in range(len(names))]
    f.cache_clear()
    assert [f(100 + i) for i in range(len(names))] == [{"computed": 100 + i}
                                                       for i in range(len(names))]
    assert len(CALLS) == len(names)  # local hits now


def test_plain_data_from_untrusted_peer_loads_zero_copy(tmp_path: Path) -> None:
    value = {"arr": np.arange(1_000_000, dtype=np.float32), "tags": ["a", "b"], "n": 7}
    key = store_remote(tmp_path, f, (4,), value=value)
    start_daemon()
    got = f(4)
    assert CALLS == []
    assert got["tags"] == ["a", "b"] and np.array_equal(got["arr"], value["arr"])
    assert not got["arr"].flags.writeable
    base = got["arr"]
    while not isinstance(base, memoryview):
        base = base.base
    assert type(base.obj).__name__ == "ResultMapping"
    assert lookup(key)["remote"] is True  # kept: nothing was refused


def test_refused_without_a_daemon_still_computes(tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    sentinel = tmp_path / "pwned"
    store_remote(tmp_path, f, (5,), pickled=attacks.payloads(str(sentinel))["os.system"])
    monkeypatch.setenv("IROHDS_DAEMON", "/bin/false")  # none can be started
    with caplog.at_level(logging.WARNING, logger="irohds"):
        assert f(5) == {"computed": 5}
    assert not sentinel.exists() and CALLS == [5]
    assert len(refusals(caplog)) == 1


def test_async_function_refuses_too(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    sentinel = tmp_path / "pwned"
    store_remote(tmp_path, af, (6,), pickled=attacks.payloads(str(sentinel))["builtins.exec"])
    start_daemon()
    with caplog.at_level(logging.WARNING, logger="irohds"):
        assert asyncio.run(af(6)) == {"computed": 6}
    assert not sentinel.exists() and ASYNC_PEER_CALLS == [6]
    assert "global builtins.exec" in refusals(caplog)[0]


def test_new_process_refuses(tmp_path: Path, usercode: Path) -> None:
    """The same in a fresh process that has never talked to the daemon."""
    write(usercode / "m_remote.py", """
        import irohds

        @irohds.memo
        def f(x):
            print("computed", x)
            return x * 10
    """)
    sentinel = tmp_path / "pwned"
    key = json.loads(run_py("""
        import json, m_remote
        print(json.dumps(m_remote.f._irohds.key((2,), None).hex()))
    """, usercode).stdout)
    path = tmp_path / "res"
    write_container(None, path, attacks.payloads(str(sentinel))["subprocess.Popen"])
    put(_native.paths()["store_dir"], bytes.fromhex(key), path, func="m_remote.f",
        producer=PEER, origin=ORIGIN_REMOTE)
    proc = run_py("""
        import logging, sys, m_remote
        logging.basicConfig(stream=sys.stderr, format="LOG %(name)s %(message)s")
        print("result", m_remote.f(2))
    """, usercode)
    time.sleep(0.2)
    assert not sentinel.exists()
    assert "computed 2" in proc.stdout and "result 20" in proc.stdout
    assert proc.stderr.count("refused") == 1 and "global subprocess.Popen" in proc.stderr


# -------------------------------------------------------------- trusted

def test_config_trusted_loads_with_plain_pickle(tmp_path: Path, home: Path) -> None:
    """The same hostile bytes from a trusted producer do run: that is what
    trust means (plain pickle, full Python objects)."""
    write_config(home, f'trusted = ["{PEER.hex()}"]\n')
    sentinel = tmp_path / "pwned"
    store_remote(tmp_path, f, (7,), pickled=attacks.payloads(str(sentinel))["os.system"])
    start_daemon()
    assert f(7) == 0  # os.system's return value, loaded as the result
    assert sentinel.exists() and CALLS == []


def test_memo_trust_loads_with_plain_pickle(tmp_path: Path) -> None:
    sentinel = tmp_path / "pwned"
    store_remote(tmp_path, g, (8,), pickled=attacks.payloads(str(sentinel))["builtins.exec"])
    store_remote(tmp_path, f, (8,), pickled=attacks.payloads(str(tmp_path / "f"))["builtins.exec"])
    start_daemon()
    assert g(8) is None and sentinel.exists() and CALLS == []  # exec returns None
    assert f(8) == {"computed": 8}  # the same peer is not trusted for f
    assert not (tmp_path / "f").exists()


def test_namespace_trust(tmp_path: Path, home: Path) -> None:
    write_config(home, f'[namespace.lab]\ntrusted = ["{PEER.hex()}"]\n')
    assert _native.config()["namespace_trusted"] == {"lab": [PEER.hex()]}
    store_remote(tmp_path, h, (9,), pickled=attacks.payloads(str(tmp_path / "h"))["os.system"])
    store_remote(tmp_path, f, (9,), pickled=attacks.payloads(str(tmp_path / "f"))["os.system"])
    start_daemon()
    assert h(9) == 0 and (tmp_path / "h").exists()  # ns "lab": trusted
    assert f(9) == {"computed": 9} and not (tmp_path / "f").exists()  # ns "default": not


@pytest.mark.parametrize("known", [True, False])
def test_own_node_id_is_trusted(known: bool, tmp_path: Path) -> None:
    """A result this node computed and got back from a peer later.  When this
    process has not talked to the daemon yet (known=False), the restricted
    load refuses first, and the daemon is asked for the node id only then."""
    own = bytes.fromhex(node_id())
    sentinel = tmp_path / "pwned"
    store_remote(tmp_path, f, (10,), pickled=attacks.payloads(str(sentinel))["os.system"],
                 producer=own)
    start_daemon()
    if not known:
        _daemon.runtime()._node_id = None
    assert f(10) == 0 and sentinel.exists() and CALLS == []
    assert _daemon.runtime()._node_id == own.hex()


def test_unknown_producer_is_never_trusted(tmp_path: Path, home: Path) -> None:
    write_config(home, f'trusted = ["{"0" * 64}"]\n')
    sentinel = tmp_path / "pwned"
    store_remote(tmp_path, f, (11,), pickled=attacks.payloads(str(sentinel))["os.system"],
                 producer=bytes(32))
    start_daemon()
    assert f(11) == {"computed": 11} and not sentinel.exists()


def test_bad_trust_option() -> None:
    with pytest.raises(ValueError, match="64-hex-digit"):
        irohds.memo(trust=["abc"])
    with pytest.raises(ValueError, match="64-hex-digit"):
        irohds.memo(trust=["zz" * 32])
    with pytest.raises(TypeError, match="sequence"):
        irohds.memo(trust=PEER.hex())


# ------------------------------------------------------------- FileRefs

def fileref_pickle(name: str) -> bytes:
    """FileRef(name) as a peer would send it (the constructor here would
    refuse a bad name, so the stream is written by hand)."""
    return (b"\x80\x04" + attacks._g("irohds._fileref", "FileRef") + attacks._s(name)
            + pickle.TUPLE1 + pickle.REDUCE + pickle.STOP)


@pytest.mark.parametrize("trusted", [False, True])
@pytest.mark.parametrize("name", ["../../../../etc/passwd", "/etc/passwd", "link/passwd"])
def test_fileref_escaping_files_dir_is_refused(name: str, trusted: bool, tmp_path: Path,
                                               home: Path) -> None:
    if trusted:
        write_config(home, f'trusted = ["{PEER.hex()}"]\n')
    key = store_remote(tmp_path, f, (12,), pickled=fileref_pickle(name))
    files_dir = Path(_native.paths()["files_dir"]) / key.hex()
    files_dir.mkdir(parents=True)
    os.symlink("/etc", files_dir / "link")
    start_daemon()
    assert f(12) == {"computed": 12} and CALLS == [12]


def test_fileref_inside_files_dir_loads(tmp_path: Path) -> None:
    key = store_remote(tmp_path, f, (13,), pickled=fileref_pickle("out/data.txt"))
    files_dir = Path(_native.paths()["files_dir"]) / key.hex()
    (files_dir / "out").mkdir(parents=True)
    (files_dir / "out" / "data.txt").write_text("from a peer")
    start_daemon()
    ref = f(13)
    assert isinstance(ref, irohds.FileRef) and Path(ref.path).read_text() == "from a peer"
    assert CALLS == []


# ------------------------------------------------------ the daemon's HIT

def test_daemon_hit_names_the_producer(tmp_path: Path) -> None:
    key = store_remote(tmp_path, f, (14,), value="v")
    sock = start_daemon()
    kind, record = _native.Client(sock).get(key, f._irohds.name, "default")
    assert kind == "hit"
    assert record["remote"] is True and record["producer"] == PEER
    assert record["node"] == PEER.hex() and "wait_flags" not in record
    local = lookup(key)
    assert local["remote"] is True and local["producer"] == PEER
