"""dhtlab: drivers for DHT nodes in netlab hosts, ours and libtorrent's.

  DhtTool   tests/interop/dht_tool (our src/dht core on a real UDP socket),
            one process per node, commands on stdin, one JSON line each
  LtPeer    tests/interop/lt_peer.py under Debian's /usr/bin/python3
            (python3-libtorrent 2.0.8), several libtorrent sessions per
            process, JSON lines both ways

Both read their child's stdout on a thread, so every wait has a timeout and
a dead child fails the test with its stderr instead of hanging it.  Used by
tests/net/test_dht_interop.py and bench/bench_dht_traffic.py.
"""
from __future__ import annotations

import json
import os
import queue
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence

ROOT = Path(__file__).resolve().parents[2]
LT_PEER = ROOT / "tests" / "interop" / "lt_peer.py"
SYSTEM_PYTHON = "/usr/bin/python3"  # python3-libtorrent is Debian's, not the venv's


def dht_tool_path() -> str:
    """$IROHDS_DHT_TOOL, else the first build dir that has it."""
    env = os.environ.get("IROHDS_DHT_TOOL")
    if env:
        return env
    for b in ("build/release", "build/dev", "build/asan"):
        p = ROOT / b / "tests" / "interop" / "dht_tool"
        if p.exists():
            return str(p)
    raise FileNotFoundError("tests/interop/dht_tool is not built (make install builds it)")


def have_libtorrent() -> bool:
    r = subprocess.run([SYSTEM_PYTHON, "-c", "import libtorrent"], capture_output=True)
    return r.returncode == 0


class _Child:
    """A child process whose stdout lines are read on a thread."""

    def __init__(self, proc: subprocess.Popen, name: str) -> None:
        self.proc = proc
        self.name = name
        self.lines: "queue.Queue[Optional[str]]" = queue.Queue()
        self.stderr: List[str] = []
        threading.Thread(target=self._read, daemon=True).start()
        threading.Thread(target=self._read_err, daemon=True).start()

    def _read(self) -> None:
        assert self.proc.stdout
        for line in self.proc.stdout:
            self.lines.put(line)
        self.lines.put(None)

    def _read_err(self) -> None:
        assert self.proc.stderr
        for line in self.proc.stderr:
            self.stderr.append(line)
            del self.stderr[:-200]

    def line(self, timeout: float) -> dict:
        try:
            got = self.lines.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"{self.name}: no answer in {timeout} s\n"
                                 + "".join(self.stderr[-30:])) from None
        if got is None:
            self.proc.wait(timeout=5)
            raise AssertionError(f"{self.name} exited {self.proc.returncode}:\n"
                                 + "".join(self.stderr[-30:]))
        return json.loads(got)

    def send(self, text: str) -> None:
        assert self.proc.stdin
        self.proc.stdin.write(text + "\n")
        self.proc.stdin.flush()

    def close(self, timeout: float = 10) -> None:
        if self.proc.poll() is None:
            try:
                assert self.proc.stdin
                self.proc.stdin.close()
                self.proc.wait(timeout=timeout)
            except (OSError, subprocess.TimeoutExpired):
                self.proc.kill()
                self.proc.wait(timeout=5)


def _spawn(host, argv: Sequence[str]) -> subprocess.Popen:
    kw = dict(stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
              bufsize=1)
    if host is None:
        return subprocess.Popen(list(argv), **kw)
    return host.popen(list(argv), **kw)


class DhtTool(_Child):
    """One of our nodes.  listen "ip:port"; routers and nodes "ip:port"."""

    def __init__(self, host, listen: str, routers: Iterable[str] = (), nodes: Iterable[str] = (),
                 timeout: float = 20, extra: Sequence[str] = (), serve: bool = True) -> None:
        argv = [dht_tool_path(), "--listen", listen, "--timeout", str(timeout), "--stdin"]
        for r in routers:
            argv += ["--router", r]
        for n in nodes:
            argv += ["--node", n]
        argv += list(extra)
        if serve:
            argv += ["serve", "0"]
        super().__init__(_spawn(host, argv), f"dht_tool {listen}")
        ready = self.line(10)
        assert ready.get("event") == "ready", ready
        self.port: int = ready["port"]
        self.id: str = ready["id"]
        self.addr = f"{listen.rsplit(':', 1)[0]}:{self.port}"

    def cmd(self, line: str, timeout: float = 30) -> dict:
        self.send(line)
        while True:
            out = self.line(timeout)
            if out.get("event") != "stats":  # periodic reports are not answers
                return out

    def stats(self) -> dict:
        return self.cmd("stats")["stats"]

    def table(self) -> List[dict]:
        return self.cmd("stats")["table"]


class LtPeer(_Child):
    """libtorrent sessions in one process (lt_peer.py)."""

    def __init__(self, host=None) -> None:
        super().__init__(_spawn(host, [SYSTEM_PYTHON, str(LT_PEER)]), "lt_peer")
        ready = self.line(20)
        assert ready.get("ready"), ready
        self.version = ready["version"]
        self.nodes: List[dict] = []
        self.ip = ""

    def call(self, timeout: float = 60, **m) -> dict:
        self.send(json.dumps(m))
        out = self.line(timeout)
        if "error" in out:
            raise AssertionError(f"lt_peer {m['op']}: {out['error']}")
        return out

    def start(self, ip: str, ports: Sequence[int], mesh: bool = True,
              settings: Optional[dict] = None) -> List[dict]:
        """Sessions on ip:port each; with mesh every one knows the others."""
        first = len(self.nodes)
        self.ip = ip
        new = self.call(op="start", ip=ip, ports=list(ports), settings=settings or {})["nodes"]
        self.nodes += new
        if mesh:
            for i in range(first, len(self.nodes)):
                others = [[ip, n["port"]] for j, n in enumerate(self.nodes) if j != i]
                self.call(op="add_nodes", session=i, nodes=others)
        return new

    def addr(self, i: int) -> str:
        return f"{self.ip}:{self.nodes[i]['port']}"

    def live_nodes(self, i: int) -> Dict[str, str]:
        """session i's routing table: {id hex: "ip:port"}."""
        return {nid: ep for nid, ep in self.call(op="live_nodes", session=i)["nodes"]}

    def close(self, timeout: float = 10) -> None:
        try:
            self.send(json.dumps({"op": "quit"}))
        except OSError:
            pass
        super().close(timeout)


def poll(fn: Callable[[], object], timeout: float, what: str, every: float = 0.25):
    """fn() until it returns something true; its last value, or fail."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        last = fn()
        if last:
            return last
        time.sleep(every)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")
