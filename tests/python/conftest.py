"""Shared fixtures for the Python suite: an isolated data dir per test, its
daemon stopped at teardown, and helpers to run code in fresh processes.

The tests run against the *installed* package (make install puts it and
irohds-daemon into .venv), so the subprocesses use this interpreter and its
scripts dir is put first on PATH.  IROHDS_HOME is a short dir under /tmp
because the daemon's socket path must fit in sun_path (108 bytes).
"""
from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Dict, Iterator, List, Optional

import pytest

def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: kills daemons or fills stores (seconds each)")
    # every test function is cheap; test_memo checks the warning explicitly
    config.addinivalue_line("filterwarnings", "ignore::irohds.CheapCallWarning")


SCRIPTS = sysconfig.get_path("scripts")
# The daemon installed beside this interpreter; IROHDS_TEST_DAEMON overrides
# (to run the suite against a build dir).
DAEMON = os.environ.get("IROHDS_TEST_DAEMON") or os.path.join(SCRIPTS, "irohds-daemon")


def _daemon_pid(home: str) -> Optional[int]:
    """The pid of the daemon serving home, from its HELLO reply (None if none)."""
    code = textwrap.dedent("""
        import json
        from irohds import _native
        try:
            c = _native.Client(_native.paths()["socket_path"], 2.0)
            print(json.loads(c.info()).get("pid", ""))
        except Exception:
            print("")
    """)
    env = dict(os.environ, IROHDS_HOME=home)
    try:
        out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                             text=True, timeout=20).stdout.strip()
    except subprocess.TimeoutExpired:
        return None
    return int(out) if out.isdigit() else None


def _alive(pid: int) -> bool:
    """Running (a zombie is not: a detached daemon that exited waits for
    whoever reaps orphans here, which can take a second)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def stop_daemon(home: str) -> None:
    """`irohds-daemon stop`, then SIGKILL if it is still there after 5 s."""
    pid = _daemon_pid(home)
    env = dict(os.environ, IROHDS_HOME=home)
    try:
        subprocess.run([DAEMON, "stop"], env=env, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        pass
    if pid is None:
        return
    deadline = time.monotonic() + 5
    while _alive(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    if _alive(pid):
        os.kill(pid, signal.SIGKILL)


# These tests are about one machine: the daemon listens on loopback only and
# looks for no peers (no mDNS multicast, no public DHT), so nothing leaves
# the machine.  A test that writes its own config.toml uses write_config().
OFFLINE = 'listen = "127.0.0.1:0"\nmdns = false\ndht = false\n'


def write_config(home: Path, text: str = "") -> None:
    """config.toml = the one-machine settings above, then text."""
    (home / "config.toml").write_text(OFFLINE + text)


@pytest.fixture(autouse=True)
def home(monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh IROHDS_HOME for each test; the daemon it started is stopped after."""
    path = tempfile.mkdtemp(prefix="ih-", dir="/tmp")
    write_config(Path(path))
    monkeypatch.setenv("IROHDS_HOME", path)
    monkeypatch.setenv("PATH", SCRIPTS + os.pathsep + os.environ.get("PATH", ""))
    monkeypatch.delenv("IROHDS_DISABLE", raising=False)
    monkeypatch.setenv("IROHDS_DAEMON", DAEMON)
    try:
        yield Path(path)
    finally:
        stop_daemon(path)
        shutil.rmtree(path, ignore_errors=True)


def start_daemon() -> str:
    """Start a daemon for the current IROHDS_HOME and wait for its socket."""
    from irohds import _native

    subprocess.run([DAEMON, "start"], check=True, capture_output=True, timeout=30)
    path = _native.paths()["socket_path"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            _native.Client(path, 1.0).close()
            return path
        except ConnectionError:
            time.sleep(0.05)
    pytest.fail("daemon did not come up")


@pytest.fixture
def sock(home: Path) -> str:
    """A running daemon for this test's data dir; its socket path."""
    return start_daemon()


@pytest.fixture
def usercode(tmp_path: Path) -> Path:
    """A dir of user modules (not under site-packages) on sys.path of the
    subprocesses started with run_py."""
    d = tmp_path / "user"
    d.mkdir()
    return d


def write(path: Path, source: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(source))
    return path


def py_env(usercode: Optional[Path] = None, **extra: str) -> Dict[str, str]:
    env = dict(os.environ)
    if usercode is not None:
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(usercode), env.get("PYTHONPATH")]))
    env.update(extra)
    return env


def run_py(code: str, usercode: Optional[Path] = None, timeout: float = 120,
           check: bool = True, **extra_env: str) -> subprocess.CompletedProcess:
    """Run code in a fresh interpreter (this venv), cwd = usercode."""
    proc = subprocess.run([sys.executable, "-c", textwrap.dedent(code)],
                          env=py_env(usercode, **extra_env),
                          cwd=str(usercode) if usercode else None,
                          capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(f"subprocess failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return proc


def spawn_py(code: str, usercode: Optional[Path] = None, **extra_env: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", textwrap.dedent(code)],
                            env=py_env(usercode, **extra_env),
                            cwd=str(usercode) if usercode else None,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def count_lines(path: Path) -> int:
    """How many times a test function recorded a computation in path."""
    return len(path.read_text().splitlines()) if path.exists() else 0


def daemon_cli(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    proc = subprocess.run([DAEMON, *args], capture_output=True, text=True, timeout=60)
    if check and proc.returncode != 0:
        raise AssertionError(f"irohds-daemon {' '.join(args)} failed ({proc.returncode}):\n"
                             f"{proc.stdout}\n{proc.stderr}")
    return proc


def blob_files(home: Path) -> List[Path]:
    """Result blobs in the store (not outboards)."""
    root = home / "store" / "blobs"
    return sorted(p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".obao"))
