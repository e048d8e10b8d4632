"""Never worse than no cache: every failure of the machinery still returns
the right value, computed, and says why once on the "irohds" logger."""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

from conftest import blob_files, count_lines, run_py, write

MOD = """
    import os, irohds

    @irohds.memo
    def f(x):
        with open(os.environ["COUNTER"], "a") as c:
            c.write("1\\n")
        return {"x": x, "sq": x * x, "pad": "p" * 1000}
"""

CALLER = """
    import logging, sys, m_fail
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="LOG %(name)s %(levelname)s %(message)s")
    for i in range(3):
        assert m_fail.f(9) == {"x": 9, "sq": 81, "pad": "p" * 1000}
    assert m_fail.f(x=4)["sq"] == 16
    print("ok")
"""


def irohds_log_lines(stderr: str) -> list:
    return [line for line in stderr.splitlines() if line.startswith("LOG irohds WARNING")
            and "cheap" not in line]


def test_no_daemon_still_computes_and_logs_once(usercode: Path, tmp_path: Path) -> None:
    write(usercode / "m_fail.py", MOD)
    proc = run_py(CALLER, usercode, COUNTER=str(tmp_path / "c"), IROHDS_DAEMON="/bin/false")
    assert proc.stdout.strip() == "ok"
    logs = irohds_log_lines(proc.stderr)
    assert len(logs) == 1, proc.stderr
    assert "daemon" in logs[0]


def test_garbage_daemon(usercode: Path, tmp_path: Path, home: Path) -> None:
    write(usercode / "m_fail.py", MOD)
    from irohds import _native

    sock_path = _native.paths()["socket_path"]
    os.makedirs(os.path.dirname(sock_path), exist_ok=True)
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(16)
    stop = threading.Event()

    def serve() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except socket.timeout:
                continue
            try:
                conn.sendall(b"\xff\x00\x00\x00HTTP/1.1 418 garbage\r\n" + os.urandom(64))
            except OSError:
                pass
            conn.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        proc = run_py(CALLER, usercode, COUNTER=str(tmp_path / "c"), timeout=60)
    finally:
        stop.set()
        thread.join()
        server.close()
    assert proc.stdout.strip() == "ok"
    assert len(irohds_log_lines(proc.stderr)) >= 1


def test_corrupt_blob_is_detected_recomputed_and_replaced(usercode: Path, tmp_path: Path,
                                                          home: Path) -> None:
    write(usercode / "m_fail.py", MOD)
    counter = tmp_path / "c"
    run_py("import m_fail; m_fail.f(9)", usercode, COUNTER=str(counter))
    blobs = blob_files(home)
    assert len(blobs) == 1
    blob = blobs[0]
    os.chmod(blob, 0o600)
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0x01
    blob.write_bytes(bytes(data))
    proc = run_py(CALLER.replace('assert m_fail.f(x=4)["sq"] == 16', ""), usercode,
                  COUNTER=str(counter))
    assert proc.stdout.strip() == "ok"
    assert count_lines(counter) == 2  # computed once more for the corrupt one, then tier 0
    assert any("corrupt" in line for line in irohds_log_lines(proc.stderr)), proc.stderr
    # the recomputed result replaced the corrupt one: a third process hits
    run_py("import m_fail; assert m_fail.f(9)['sq'] == 81", usercode, COUNTER=str(counter))
    assert count_lines(counter) == 2
    from irohds import _native
    for b in blob_files(home):
        assert _native.blake3(b.read_bytes()).hex() == b.name


def test_unpicklable_result_is_returned_not_cached(usercode: Path, tmp_path: Path) -> None:
    write(usercode / "m_lam.py", """
        import os, irohds

        @irohds.memo
        def f(x):
            with open(os.environ["COUNTER"], "a") as c:
                c.write("1\\n")
            return lambda: x
    """)
    counter = tmp_path / "c"
    for _ in range(2):
        run_py("import m_lam; assert m_lam.f(3)() == 3", usercode, COUNTER=str(counter))
    assert count_lines(counter) == 2
