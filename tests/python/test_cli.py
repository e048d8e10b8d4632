"""The irohds-daemon CLI against a store filled through the Python API."""
from __future__ import annotations

import json
from pathlib import Path

from conftest import daemon_cli, run_py, write


def fill(usercode: Path) -> None:
    write(usercode / "m_cli.py", """
        import irohds

        @irohds.memo
        def alpha(x):
            return [x] * 100

        @irohds.memo(ns="lab")
        def beta(x):
            return {"x": x}
    """)
    run_py("import m_cli\nfor i in range(3): m_cli.alpha(i)\nm_cli.beta(1)", usercode)


def test_info_ls_evict_gc(usercode: Path, home: Path) -> None:
    fill(usercode)
    info = json.loads(daemon_cli("info", "--json").stdout)
    assert isinstance(info, dict)
    assert str(home) in json.dumps(info)
    text = daemon_cli("info").stdout
    assert info["node_id"] in text and str(home) in text

    entries = json.loads(daemon_cli("ls", "--json").stdout)
    funcs = sorted(e["func"] for e in entries)
    assert funcs == ["m_cli.alpha"] * 3 + ["m_cli.beta"]
    text = daemon_cli("ls").stdout
    assert "m_cli.alpha" in text and "m_cli.beta" in text

    daemon_cli("evict", "m_cli.alpha")
    entries = json.loads(daemon_cli("ls", "--json").stdout)
    assert [e["func"] for e in entries] == ["m_cli.beta"]

    assert daemon_cli("gc").stdout.startswith("gc freed ")
    gc = json.loads(daemon_cli("gc", "--json").stdout)
    assert set(gc) == {"freed"} and gc["freed"] >= 0


def test_evict_and_gc_with_no_daemon_act_on_the_store(usercode: Path, home: Path) -> None:
    from conftest import stop_daemon

    fill(usercode)
    stop_daemon(str(home))
    out = json.loads(daemon_cli("--json", "evict", "m_cli.alpha").stdout)
    assert out == {"func": "m_cli.alpha", "evicted": 3}
    entries = json.loads(daemon_cli("ls", "--json").stdout)
    assert [e["func"] for e in entries] == ["m_cli.beta"]
    # evict deleted the results' blobs (nothing else referenced them), so gc
    # finds nothing more to free
    assert json.loads(daemon_cli("--json", "gc").stdout) == {"freed": 0}
    info = json.loads(daemon_cli("info", "--json").stdout)
    assert info["running"] is False and info["entries"] == 1


def test_info_before_first_start_makes_the_id_the_daemon_keeps(usercode: Path, home: Path) -> None:
    """A new machine prints the node id others paste into bootstrap_peers
    before its daemon ever ran; the daemon then runs under that same id."""
    from conftest import stop_daemon

    stop_daemon(str(home))
    key = home / "node.key"
    if key.exists():
        key.unlink()
    before = json.loads(daemon_cli("info", "--json").stdout)
    assert before["running"] is False
    node = before["node_id"]
    assert isinstance(node, str) and len(node) == 64 and int(node, 16) >= 0
    assert key.stat().st_size == 32 and (key.stat().st_mode & 0o777) == 0o600
    fill(usercode)  # starts the daemon
    after = json.loads(daemon_cli("info", "--json").stdout)
    assert after["running"] is True and after["node_id"] == node
