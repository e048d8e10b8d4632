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
    assert "irohds" in daemon_cli("info").stdout.lower() or daemon_cli("info").stdout.strip()

    entries = json.loads(daemon_cli("ls", "--json").stdout)
    funcs = sorted(e["func"] for e in entries)
    assert funcs == ["m_cli.alpha"] * 3 + ["m_cli.beta"]
    text = daemon_cli("ls").stdout
    assert "m_cli.alpha" in text and "m_cli.beta" in text

    daemon_cli("evict", "m_cli.alpha")
    entries = json.loads(daemon_cli("ls", "--json").stdout)
    assert [e["func"] for e in entries] == ["m_cli.beta"]

    daemon_cli("gc")
    gc = daemon_cli("gc", "--json", check=False)
    if gc.returncode == 0 and gc.stdout.strip():
        json.loads(gc.stdout)
