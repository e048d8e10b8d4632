"""Results shared between real processes through a real daemon.

User code lives in a module written into a tmp dir (so it is "user code",
not site-packages); each process imports it.  The function appends a line
to a counter file each time its body runs, which proves whether a process
computed or got the stored result.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

import pytest

from conftest import write_config, blob_files, count_lines, daemon_cli, run_py, spawn_py, write

WORK = """
    import os, time
    import irohds

    COUNTER = os.environ["COUNTER"]

    def helper(x):
        return x * 2

    @irohds.memo
    def work(x, delay=0.0):
        # a comment
        with open(COUNTER, "a") as f:
            f.write(f"{os.getpid()}\\n")
        time.sleep(delay)
        return {"value": helper(x), "pid": os.getpid()}
"""


@pytest.fixture
def work_module(usercode: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    write(usercode / "wmod.py", WORK)
    counter = tmp_path / "counter"
    monkeypatch.setenv("COUNTER", str(counter))
    return counter


def call_work(usercode: Path, arg: int = 21) -> dict:
    out = run_py(f"import json, wmod\nprint(json.dumps(wmod.work({arg})))", usercode)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_second_process_gets_the_first_ones_result(usercode, work_module) -> None:
    first = call_work(usercode)
    second = call_work(usercode)
    assert first["value"] == 42
    assert second == first  # same pid inside: the stored result, not a recompute
    assert count_lines(work_module) == 1


def test_eight_racing_processes_compute_once(usercode, work_module, tmp_path) -> None:
    start_at = time.time() + 3.0  # all start the call at the same moment
    code = f"""
        import json, time, wmod
        time.sleep(max(0.0, {start_at} - time.time()))
        print(json.dumps(wmod.work(7, delay=1.0)))
    """
    procs = [spawn_py(code, usercode) for _ in range(8)]
    results = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert count_lines(work_module) == 1
    assert all(r == results[0] for r in results)
    assert results[0]["value"] == 14


def test_helper_edit_recomputes_comment_edit_does_not(usercode, work_module) -> None:
    call_work(usercode)
    assert count_lines(work_module) == 1
    write(usercode / "wmod.py", WORK.replace("# a comment", "# a reworded comment\n\n"))
    call_work(usercode)
    assert count_lines(work_module) == 1
    write(usercode / "wmod.py", WORK.replace("return x * 2", "return x * 2 + 0"))
    call_work(usercode)
    assert count_lines(work_module) == 2


def test_same_module_in_another_directory_hits(usercode, work_module, tmp_path) -> None:
    call_work(usercode)
    other = tmp_path / "elsewhere" / "checkout"
    write(other / "wmod.py", WORK)
    call_work(other)
    assert count_lines(work_module) == 1


FILES = """
    import irohds

    @irohds.memo
    def make(n):
        path = irohds.resolve("out/data.bin")
        with open(path, "wb") as f:
            f.write(bytes(range(256)) * n)
        with open(irohds.resolve("note.txt"), "w") as f:
            f.write(f"n={n}")
        return {"data": irohds.FileRef("out/data.bin"), "note": irohds.FileRef("note.txt")}
"""


def test_fileref_round_trip_in_another_process(usercode, home) -> None:
    write(usercode / "fmod.py", FILES)
    code = """
        import fmod
        r = fmod.make(3)
        print(r["data"].path)
        print(open(r["note"].path).read())
        print(len(open(r["data"], "rb").read()))
    """
    first = run_py(code, usercode).stdout.splitlines()
    second = run_py(code, usercode).stdout.splitlines()
    assert first == second
    path, note, size = second
    assert note == "n=3" and size == str(256 * 3)
    files_root = str(home / "files") + os.sep
    assert path.startswith(files_root)
    key_dir = path[len(files_root):].split(os.sep)[0]
    assert len(key_dir) == 64 and all(c in "0123456789abcdef" for c in key_dir)
    assert path.endswith(os.path.join("out", "data.bin"))
    with open(path, "rb") as f:
        assert f.read() == bytes(range(256)) * 3
    # the staging dirs handed out to the computing call are gone
    staging = home / "staging"
    assert not [p for p in staging.iterdir() if p.is_dir()] if staging.exists() else True


def test_resolve_refuses_escapes(usercode, tmp_path) -> None:
    import irohds

    outside = tmp_path / "outside"
    outside.mkdir()
    seen = {}

    @irohds.memo
    def f(name):
        try:
            irohds.resolve(name)
            return "ok"
        except ValueError:
            return "refused"

    @irohds.memo
    def via_link():
        base = os.path.dirname(irohds.resolve("probe"))
        os.symlink(outside, os.path.join(base, "link"))
        try:
            irohds.resolve("link/x")
            return "ok"
        except ValueError:
            return "refused"

    for name in ("../x", "/etc/x", "a/../../x", "./x", "a//b"):
        seen[name] = f(name)
    assert set(seen.values()) == {"refused"}, seen
    assert f("fine/name.txt") == "ok"
    assert via_link() == "refused"
    assert not (outside / "x").exists()
    with pytest.raises(RuntimeError):
        irohds.resolve("x")


STORM = """
    import irohds, os, sys

    @irohds.memo
    def item(i, pad):
        return {"i": i, "pad": b"x" * pad}
"""


@pytest.mark.slow
def test_sigkill_during_a_put_storm_keeps_every_acknowledged_result(usercode, home, tmp_path):
    write(usercode / "smod.py", STORM)
    acks = tmp_path / "acks"
    acks.mkdir()
    writer = """
        import os, smod
        from irohds import _native
        w = int(os.environ["W"])
        store = _native.Store(_native.paths()["store_dir"])
        log = open(os.path.join(os.environ["ACKS"], str(w)), "a", buffering=1)
        for n in range(100000):
            i, pad = w * 1000000 + n, 20000 + n % 7
            smod.item(i, pad)
            # acknowledged = the put returned and the index has it
            if store.lookup(smod.item._irohds.key((i, pad), None)) is not None:
                log.write(f"{i}\\n")
    """
    run_py("import smod; smod.item(-1, 1)", usercode)  # start the daemon, create the store
    procs = [spawn_py(writer, usercode, W=str(w), ACKS=str(acks)) for w in range(3)]
    try:
        time.sleep(2.5)
        kill_daemon()
    finally:  # writers left running would restart a daemon after teardown
        for p in procs:
            p.kill()
            p.wait()
    acked = sorted(int(line) for f in acks.iterdir() for line in f.read_text().split())
    assert len(acked) > 10, "the storm stored too little to mean anything"
    # Restart (auto-start runs recovery), then every acknowledged result must
    # load intact from the store.
    run_py("import smod; smod.item(-2, 1)", usercode)
    check = f"""
        import smod
        st = smod.item._irohds
        bad = []
        for i in {acked!r}:
            found, value = st.read_local(st.key((i, 20000 + (i % 1000000) % 7), None))
            if not found or value["i"] != i:
                bad.append(i)
        print(len(bad))
    """
    assert run_py(check, usercode).stdout.strip() == "0"
    from irohds import _native
    for blob in blob_files(home):
        data = blob.read_bytes()
        assert _native.blake3(data).hex() == blob.name, f"{blob} does not match its hash"


def kill_daemon() -> None:
    """SIGKILL the daemon of the current IROHDS_HOME (pid from its INFO)."""
    pid_out = run_py("""
        import json
        from irohds import _native
        c = _native.Client(_native.paths()["socket_path"], 5.0)
        print(json.loads(c.info())["pid"])
    """).stdout.strip()
    os.kill(int(pid_out), signal.SIGKILL)


BIG = """
    import os, irohds

    @irohds.memo
    def big(i):
        with open(os.environ["COUNTER"], "a") as f:
            f.write(f"{i}\\n")
        return bytes([i]) * 400_000
"""


@pytest.mark.slow
def test_size_limit_evicts_least_recently_used(usercode, home, tmp_path, monkeypatch) -> None:
    write_config(home, 'size_limit = "1500KiB"\ncheap_warning_seconds = 0\n')
    counter = tmp_path / "counter"
    monkeypatch.setenv("COUNTER", str(counter))
    write(usercode / "bmod.py", BIG)
    # 1, 2, 3 fit (3 x 400 kB); touch 1 so that 2 is the least recently used
    for i in (1, 2, 3, 1):
        run_py(f"import bmod; assert bmod.big({i}) == bytes([{i}]) * 400_000", usercode)
    assert count_lines(counter) == 3
    holder = spawn_py("""
        import sys, bmod
        r = bmod.big(3)             # keeps the mapping (and its shared lock) alive
        print("holding", flush=True)
        sys.stdin.readline()
        print(r[:1].hex())
    """, usercode)
    assert holder.stdout.readline().strip() == "holding"
    run_py("import bmod; bmod.big(4)", usercode)   # over the limit now
    daemon_cli("gc")
    lines = counter.read_text().split()
    assert lines == ["1", "2", "3", "4"]
    run_py("import bmod; bmod.big(1); bmod.big(3)", usercode)
    assert counter.read_text().split() == lines, "1 (recent) and 3 (in use) must survive"
    run_py("import bmod; bmod.big(2)", usercode)
    assert counter.read_text().split() == lines + ["2"], "2 was the LRU victim"
    holder.stdin.write("\n")
    holder.stdin.flush()
    out, _ = holder.communicate(timeout=30)
    assert out.strip().endswith("03")
