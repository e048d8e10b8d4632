"""Randomized blob interop sweep (tests/interop/run.sh, part (d)).

    sweep.py SEED WORKDIR

Random blob sizes (plus fixed edge sizes around 1 KiB chunks and 16 KiB
chunk groups) and random chunk range sets, each request checked two ways:

  iroh -> C      an iroh node serves a random file; blobs_get's verified
                 bytes must equal what iroh's own getter gets from that node
                 (and the file, for whole blobs).
  daemon -> iroh our daemon holds results of random sizes; for each request
                 the daemon's raw response must be byte for byte an iroh
                 node's (serving the same blob file), and iroh's getter must
                 accept it and get the same bytes as from iroh.

Tool paths come from ORACLE, BLOBS_GET, DAEMON, PY (run.sh sets them).
Prints one line per failure and "sweep: N passed, N failed".
"""
from __future__ import annotations

import json
import os
import random
import socket
import subprocess
import sys
import time

ORACLE = os.environ["ORACLE"]
BLOBS_GET = os.environ["BLOBS_GET"]
DAEMON = os.environ["DAEMON"]
PY = os.environ["PY"]

seed = int(sys.argv[1])
work = sys.argv[2]
rng = random.Random(seed)
passed = failed = 0


def check(ok: bool, what: str) -> None:
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL sweep {what} (seed {seed})", flush=True)


def spec(nchunks: int) -> str | None:
    """A random range set in blobs_get's syntax, None = the whole blob."""
    x = rng.random()
    if x < 0.1:
        return None
    if x < 0.2:
        return "last"
    items, c = [], 0
    for _ in range(rng.randrange(1, 4)):
        a = c + rng.randrange(0, max(1, nchunks // 3 + 2))
        if rng.random() < 0.25:
            items.append(f"{a}-")
            break
        b = a + rng.randrange(1, 40)
        items.append(f"{a}-{b}")
        c = b + 1
    return ",".join(items)


def serve(path: str):
    p = subprocess.Popen([ORACLE, "serve", path], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    info = {}
    for line in p.stdout:
        k, _, v = line.strip().partition(" ")
        info[k] = v
        if k == "ready":
            break
    return p, info


def read(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b"<missing>"


def run(argv) -> bool:
    return subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                          timeout=120).returncode == 0


def out(name: str) -> str:
    return os.path.join(work, name)


# ------------------------------------------------------------ iroh -> C
edge = [1023, 1024, 1025, 16383, 16385, 32768, 32769, 16384 * 5 + 1, 16384 * 7 - 1,
        (1 << 20) + 1]
for size in rng.sample(edge, 5) + [rng.randrange(0, 3 << 20) for _ in range(5)]:
    f = out(f"sweep_{size}.bin")
    with open(f, "wb") as fh:
        fh.write(rng.randbytes(size))
    p, s = serve(f)
    nchunks = (size + 1023) // 1024
    for _ in range(5):
        r = spec(nchunks)
        extra = [r] if r else []
        args = [s["node_id"], s["addr"], s["hash"]]
        ok = run([ORACLE, "get", *args, out("sw_ref"), *extra]) and \
            run([BLOBS_GET, *args, out("sw_c"), *extra])
        ok = ok and read(out("sw_ref")) == read(out("sw_c"))
        if r is None:
            ok = ok and read(out("sw_c")) == read(f)
        check(ok, f"iroh->C size {size} ranges {r or 'all'}")
    p.terminate()
    p.wait()
    os.remove(f)

# ------------------------------------------------------- daemon -> iroh
home = out("sweep_daemon")
os.makedirs(os.path.join(home, "code"), exist_ok=True)
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
port = s.getsockname()[1]
s.close()
with open(os.path.join(home, "config.toml"), "w") as fh:
    fh.write(f'listen = "127.0.0.1:{port}"\nbootstrap_peers = []\n')
with open(os.path.join(home, "code", "m_sweep.py"), "w") as fh:
    fh.write("import irohds, random\n"
             "@irohds.memo(ns='sweep')\n"
             "def blob(n, seed):\n"
             "    return random.Random(seed * 1000003 + n).randbytes(n)\n")
env = dict(os.environ, IROHDS_HOME=home)
env.pop("XDG_RUNTIME_DIR", None)
d = subprocess.Popen([DAEMON, "run"], env=env, stdout=open(os.path.join(home, "log"), "w"),
                     stderr=subprocess.STDOUT)
try:
    for _ in range(100):
        r = subprocess.run([DAEMON, "--json", "info"], env=env, capture_output=True, text=True)
        if r.returncode == 0 and json.loads(r.stdout).get("running"):
            break
        time.sleep(0.05)
    did = json.loads(r.stdout)["node_id"]
    ns = [16384 - 50, 16384 - 49, 32768 - 40] + [rng.randrange(0, 3 << 20) for _ in range(5)]
    subprocess.run([PY, "-W", "ignore", "-c", f"import m_sweep\nfor n in {ns}: m_sweep.blob(n, {seed})"],
                   cwd=os.path.join(home, "code"), env=env, check=True, capture_output=True)
    rows = json.loads(subprocess.run([DAEMON, "--json", "ls"], env=env, capture_output=True,
                                     text=True).stdout)
    daddr = f"127.0.0.1:{port}"
    for row in rows:
        h, size = row["blob"], row["size"]
        f = os.path.join(home, "store", "blobs", h[:2], h)
        p, sv = serve(f)
        nchunks = (size + 1023) // 1024
        for _ in range(5):
            r = spec(nchunks)
            extra = [r] if r else []
            ok = run([BLOBS_GET, "--raw", out("sw_raw_iroh"), sv["node_id"], sv["addr"], h,
                      out("sw_o1"), *extra]) and \
                run([BLOBS_GET, "--raw", out("sw_raw_ours"), did, daddr, h, out("sw_o2"), *extra])
            check(ok and read(out("sw_raw_iroh")) == read(out("sw_raw_ours")),
                  f"daemon response == iroh's, size {size} ranges {r or 'all'}")
            ok = run([ORACLE, "get", did, daddr, h, out("sw_o3"), *extra])
            check(ok and read(out("sw_o3")) == read(out("sw_o1")),
                  f"daemon->iroh size {size} ranges {r or 'all'}")
        p.terminate()
        p.wait()
finally:
    d.terminate()
    d.wait()

print(f"sweep: {passed} passed, {failed} failed")
sys.exit(1 if failed else 0)
