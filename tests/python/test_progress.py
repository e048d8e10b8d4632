"""Waiting for a download: Client.get's progress callback and the progress
bar on stderr.  The real daemon does not fetch from peers yet, so these run
against fakedaemon.FakeDaemon, which speaks the frames of docs/ipc.md:
WAIT with FETCH, PROGRESS {KEY, SIZE, COUNT}, then HIT (REMOTE, NODE)."""
from __future__ import annotations

import fcntl
import io
import os
import pty
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, List, Tuple

import pytest

import fakedaemon as fd
from conftest import py_env, run_py, write
from irohds import _native, _progress
from storeutil import MKSTORE, ORIGIN_REMOTE, put, write_container

PRODUCER = b"\x42" * 32
TOTAL = 50_000_000


@pytest.fixture
def fake(home: Path) -> Iterator[Callable[[fd.Handler], fd.FakeDaemon]]:
    """Start a FakeDaemon on this data dir's socket with a given handler."""
    started: List[fd.FakeDaemon] = []

    def start(handler: fd.Handler) -> fd.FakeDaemon:
        daemon = fd.FakeDaemon(_native.paths()["socket_path"], handler)
        started.append(daemon)
        return daemon
    yield start
    for daemon in started:
        daemon.stop()


def downloading(steps: int, every: float, then: Callable[[fd.Conn, fd.Msg], None],
                garbage: bool = False) -> fd.Handler:
    """A GET handler: WAIT(FETCH), `steps` PROGRESS frames `every` seconds
    apart (plus three malformed ones when garbage), then `then`."""
    def handle(conn: fd.Conn, msg: fd.Msg) -> None:
        if msg.type != fd.GET:
            fd.error(conn, msg, -95, "not in this fake")
            return
        key = msg.fields[fd.KEY]
        conn.send(fd.WAIT, msg.id, {fd.KEY: key, fd.FLAGS: fd.u32(fd.WAIT_FETCH)})
        if garbage:
            conn.send(fd.PROGRESS, msg.id, {fd.KEY: key, fd.SIZE: fd.u64(10)})  # no COUNT
            conn.send(fd.PROGRESS, msg.id, fd.progress_fields(b"\x00" * 32, 1, 10))  # other key
            conn.send(fd.PROGRESS, msg.id, fd.progress_fields(key, 11, 10))  # more than all
        for i in range(steps + 1):
            if not conn.send(fd.PROGRESS, msg.id, fd.progress_fields(key, TOTAL * i // steps, TOTAL)):
                return
            time.sleep(every)
        then(conn, msg)
    return handle


def lease(conn: fd.Conn, msg: fd.Msg) -> None:
    conn.send(fd.LEASE, msg.id, {fd.KEY: msg.fields[fd.KEY], fd.T_LEASE: fd.u64(9)})


# -------------------------------------------------------- Client.get level

def test_progress_callback_gets_each_report(fake: Any) -> None:
    def hit(conn: fd.Conn, msg: fd.Msg) -> None:
        conn.send(fd.HIT, msg.id, fd.hit_fields(msg.fields[fd.KEY], b"\x01" * 32, 123, PRODUCER,
                                                remote=True))
    fake(downloading(4, 0.01, hit, garbage=True))
    client = _native.Client(_native.paths()["socket_path"])
    seen: List[Tuple[int, int]] = []
    kind, record = client.get(b"\x09" * 32, "m.f", "default", progress=lambda d, t: seen.append((d, t)))
    assert kind == "hit"
    assert seen == [(TOTAL * i // 4, TOTAL) for i in range(5)]
    assert client.ignored_progress == 3  # the malformed ones, not passed on
    assert record["remote"] is True and record["producer"] == PRODUCER
    assert record["wait_flags"] == fd.WAIT_FETCH and record["size"] == 123
    assert not client.closed


def test_wait_then_lease_without_callback(fake: Any) -> None:
    fake(downloading(2, 0.01, lease))
    kind, lease_id = _native.Client(_native.paths()["socket_path"]).get(b"\x01" * 32, "m.f", "d")
    assert (kind, lease_id) == ("lease", 9)


def test_callback_error_abandons_the_wait(fake: Any) -> None:
    daemon = fake(downloading(100, 0.02, lease))
    client = _native.Client(_native.paths()["socket_path"])

    def boom(done: int, total: int) -> None:
        if done:
            raise ZeroDivisionError("from the callback")
    with pytest.raises(ZeroDivisionError, match="from the callback"):
        client.get(b"\x02" * 32, "m.f", "default", progress=boom)
    assert client.closed  # the daemon drops a waiter whose connection closes
    assert daemon.conns[-1].closed.wait(5)


@pytest.fixture
def sigint_raises() -> Iterator[None]:
    """SIGINT raises KeyboardInterrupt for the test, whatever the suite
    inherited: a shell starts background jobs with SIGINT ignored, and Python
    then leaves it ignored (its handler goes in only over SIG_DFL)."""
    before = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, before)


def test_ctrl_c_while_progress_keeps_coming(fake: Any, sigint_raises: None) -> None:
    """Frames arriving every 20 ms must not keep signals from being seen."""
    fake(downloading(500, 0.02, lease))
    client = _native.Client(_native.paths()["socket_path"])
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    t0 = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        client.get(b"\x03" * 32, "m.f", "default", progress=lambda d, t: None)
    assert time.monotonic() - t0 < 3
    assert client.closed


def test_gil_released_while_waiting(fake: Any) -> None:
    fake(downloading(20, 0.05, lease))
    client = _native.Client(_native.paths()["socket_path"])
    ticks = [0]
    stop = threading.Event()

    def spin() -> None:
        while not stop.is_set():
            ticks[0] += 1
    t = threading.Thread(target=spin)
    t.start()
    try:
        client.get(b"\x04" * 32, "m.f", "default", progress=lambda d, total: None)
    finally:
        stop.set()
        t.join()
    assert ticks[0] > 10_000


def test_explain_and_peers_requests(fake: Any) -> None:
    def handle(conn: fd.Conn, msg: fd.Msg) -> None:
        if msg.type == fd.EXPLAIN:
            text = f'{{"key": "{msg.fields[fd.KEY].hex()}", "func": "{msg.text(fd.FUNC)}", ' \
                   f'"ns": "{msg.text(fd.NS)}", "decision": "compute"}}'
        else:
            assert msg.type == fd.PEERS
            text = '{"node_id": "00", "namespaces": {}}'
        conn.send(fd.OK, msg.id, {fd.TEXT: text.encode()})
    fake(handle)
    client = _native.Client(_native.paths()["socket_path"])
    assert client.explain(b"\x05" * 32, "m.f", "lab") == \
        f'{{"key": "{"05" * 32}", "func": "m.f", "ns": "lab", "decision": "compute"}}'
    assert client.peers() == '{"node_id": "00", "namespaces": {}}'


# ------------------------------------------------------------- the bar

class FakeTTY(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_bar_text() -> None:
    text = _progress.render("m.train", 25_000_000, 100_000_000, 5e6, 200)
    assert text.startswith("irohds: fetching m.train")
    assert "[#####---------------]" in text and "25.0/100.0 MB" in text
    assert "5.0 MB/s" in text and "ETA 15s" in text
    # a narrow terminal loses the graphic, then label characters, never the figures
    figures = "25.0/100.0 MB  5.0 MB/s  ETA 15s"
    at = {w: _progress.render("pkg.module.train_model", 25_000_000, 100_000_000, 5e6, w)
          for w in (80, 60, 40)}
    assert at[80] == "irohds: fetching pkg.module.train_model  " + figures
    assert at[60] == "irohds: fetching pkg.mod…  " + figures
    assert at[40] == figures


def test_bar_redraws_at_most_ten_times_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr(_progress.time, "monotonic", lambda: clock[0])
    stream = FakeTTY()
    bar = _progress.Bar("m.f", stream)
    for i in range(1000):  # 1000 reports in 2 s
        bar(i * 1000, 1_000_000)
        clock[0] += 0.002
    bar(1_000_000, 1_000_000)  # the last report is always drawn
    draws = stream.getvalue().count(_progress.CLEAR_LINE)
    assert 18 <= draws <= 22
    assert "1.0/1.0 MB" in stream.getvalue().split(_progress.CLEAR_LINE)[-1]
    bar.close()
    assert stream.getvalue().endswith(_progress.CLEAR_LINE)


def test_bar_on_a_broken_stream_logs_once_and_goes_quiet(caplog: pytest.LogCaptureFixture) -> None:
    from irohds import _daemon

    _daemon._logged.discard("progress-bar")

    class Broken(FakeTTY):
        def write(self, s: str) -> int:
            raise OSError("stderr went away")
    bar = _progress.Bar("m.f", Broken())
    with caplog.at_level("WARNING", logger="irohds"):
        for i in range(5):
            bar(i, 10)  # never raises: that would abandon the wait
        bar.close()
    assert sum("progress bar failed" in r.getMessage() for r in caplog.records) == 1


def test_no_bar_when_stderr_is_not_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stderr", io.StringIO())
    assert _progress.for_stderr("m.f") is None
    monkeypatch.setattr(sys, "stderr", FakeTTY())
    assert isinstance(_progress.for_stderr("m.f"), _progress.Bar)


# ------------------------------------------------- a memoized call, end to end

MODULE = """
    import os, irohds

    @irohds.memo
    def f(x):
        print("computed", x, flush=True)
        return "computed"
"""
CALLER = """
    import logging, sys, m_prog
    logging.basicConfig(stream=sys.stderr, format="LOG %(name)s %(message)s")
    print("result", m_prog.f(1)["payload"], flush=True)
"""


def fetched(tmp_path: Path, steps: int = 24, every: float = 0.05,
            garbage: bool = False) -> fd.Handler:
    """The fake daemon's download: PROGRESS frames, then it stores the
    result as a remote record (mkstore) and answers HIT, as the daemon will."""
    def store_then_hit(conn: fd.Conn, msg: fd.Msg) -> None:
        key = msg.fields[fd.KEY]
        path = tmp_path / "downloaded"
        write_container({"payload": "from a peer"}, path)
        blob, size = put(_native.paths()["store_dir"], key, path, func=msg.text(fd.FUNC),
                         producer=PRODUCER, origin=ORIGIN_REMOTE)
        conn.send(fd.HIT, msg.id, fd.hit_fields(key, blob, size, PRODUCER, remote=True,
                                                func=msg.text(fd.FUNC)))
    return downloading(steps, every, store_then_hit, garbage=garbage)


def run_with_pty_stderr(code: str, usercode: Path) -> Tuple[str, bytes, int]:
    """Run code with stderr on a pseudo-terminal: (stdout, terminal bytes, status)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 120, 0, 0))  # 120 columns
    proc = subprocess.Popen([sys.executable, "-c", code], env=py_env(usercode),
                            cwd=str(usercode), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=slave)
    os.close(slave)
    out = bytearray()
    while True:
        ready, _, _ = select.select([master], [], [], 30)
        if not ready:
            break
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    stdout = proc.stdout.read().decode() if proc.stdout else ""
    return stdout, bytes(out), proc.wait(30)


needs_mkstore = pytest.mark.skipif(MKSTORE is None, reason="irohds-mkstore not built")


@needs_mkstore
def test_bar_on_a_terminal(fake: Any, usercode: Path, tmp_path: Path) -> None:
    import textwrap

    write(usercode / "m_prog.py", MODULE)
    fake(fetched(tmp_path))
    stdout, term, status = run_with_pty_stderr(textwrap.dedent(CALLER), usercode)
    assert status == 0, term
    assert "result from a peer" in stdout and "computed" not in stdout
    text = term.decode(errors="replace")
    assert "irohds: fetching m_prog.f  [" in text and "MB/s  ETA" in text  # the whole bar fits
    assert "[####################]  50.0/50.0 MB" in text
    draws = text.count(_progress.CLEAR_LINE) - 1  # the last one erases the bar
    assert 5 <= draws <= 1.2 * 10 + 4, text  # ~1.2 s of frames every 50 ms: ~10 a second
    assert text.rstrip("\r\n").endswith(_progress.CLEAR_LINE)  # erased at the end


@needs_mkstore
def test_no_bar_without_a_terminal_and_garbage_progress_is_harmless(
        fake: Any, usercode: Path, tmp_path: Path) -> None:
    write(usercode / "m_prog.py", MODULE)
    fake(fetched(tmp_path, steps=5, every=0.01, garbage=True))
    proc = run_py(CALLER, usercode)
    assert "result from a peer" in proc.stdout and "computed" not in proc.stdout
    assert "fetching" not in proc.stderr and "\r" not in proc.stderr
    logs = [line for line in proc.stderr.splitlines() if line.startswith("LOG irohds")]
    assert len(logs) == 1 and "malformed download progress" in logs[0], proc.stderr


def test_hit_path_imports_nothing_new(usercode: Path) -> None:
    """A hit (tier 1, in a new process) never imports the bar, the
    restricted unpickler or explain."""
    write(usercode / "m_hit.py", """
        import irohds

        @irohds.memo
        def f(x):
            return [x] * 3
    """)
    run_py("import m_hit; m_hit.f(2)", usercode)
    proc = run_py("""
        import sys, m_hit
        assert m_hit.f(2) == [2, 2, 2]
        print(sorted(m for m in sys.modules if m.startswith("irohds.")))
    """, usercode)
    loaded = proc.stdout
    for name in ("irohds._progress", "irohds._restricted", "irohds._explain"):
        assert name not in loaded
