"""The main job: three machines share one expensive result, peer to peer.

Each "machine" is a network namespace on a private bridge (as root; the hosts
of tests/net/netlab.py), or, without root, a separate data dir and daemon on
127.0.0.1 with its own port.  Every machine runs the same code:

    @irohds.memo(ns="demo")
    def simulate(n_steps, seed=7): ...      # ~4 s of "work"

  1. machine A computes it (nobody has it yet) and announces it;
  2. machine B calls it: its daemon fetches the result from A (verified
     QUIC transfer) instead of computing;
  3. machine C asks irohds.explain() first, then calls it too;
  4. a second process on B gets it from B's own store in microseconds.
Then each daemon's view: `irohds-daemon peers` and `ls`.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import textwrap
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "tests", "net"))

CODE = '''
import os, sys, time
import irohds

@irohds.memo(ns="demo")
def simulate(n_steps: int, seed: int = 7) -> list:
    """Stands in for hours of work: sleeps, then returns a result."""
    time.sleep(4)
    x, out = seed, []
    for _ in range(n_steps):
        x = (x * 1103515245 + 12345) % 2**31
        out.append(x % 1000)
    return out
'''

CALL = '''
import os, sys, time, warnings
warnings.simplefilter("ignore")
import demo_work
t = time.perf_counter()
result = demo_work.simulate(200_000)
dt = time.perf_counter() - t
print(f"  {sys.argv[1]}: simulate(200_000) -> {len(result)} values, sum {sum(result)}, "
      f"in {dt * 1e3:.1f} ms")
'''

EXPLAIN = '''
import warnings
warnings.simplefilter("ignore")
import irohds, demo_work
irohds.explain(demo_work.simulate, 200_000)
'''


class LoopbackHost:
    """Without root: a machine is a data dir and a daemon on 127.0.0.1."""

    def __init__(self, root: str, i: int) -> None:
        self.name = "ABC"[i]
        self.home = os.path.join(root, self.name)
        os.mkdir(self.home, 0o700)
        self.port = 47100 + i
        self.addr = "127.0.0.1"

    def env(self) -> dict:
        env = dict(os.environ, IROHDS_HOME=self.home)
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env["PATH"]
        env.pop("XDG_RUNTIME_DIR", None)
        return env

    def cli(self, *args: str) -> str:
        return subprocess.run(["irohds-daemon", *args], env=self.env(), check=True,
                              capture_output=True, text=True).stdout

    def node_id(self) -> str:
        return json.loads(self.cli("info", "--json"))["node_id"]

    def start(self, bootstrap: list) -> None:
        peers = ", ".join(f'"{h.node_id()}@{h.addr}:{h.port}"' for h in bootstrap)
        with open(os.path.join(self.home, "config.toml"), "w") as f:
            f.write(f'listen = "{self.addr}:{self.port}"\nbootstrap_peers = [{peers}]\n'
                    "mdns = false\ndht = false\n")  # the demo stays on this machine
        self.cli("start")

    def python(self, code: str, cwd: str, label: str = "") -> None:
        env = self.env()
        env["PYTHONPATH"] = cwd
        subprocess.run([sys.executable, "-c", code, label or self.name], env=env, check=True)

    def stop(self) -> None:
        subprocess.run(["irohds-daemon", "stop"], env=self.env(), capture_output=True)


def netns_hosts(lab) -> list:
    """As root: the lab's hosts, with the same small interface as above."""
    class NsHost:
        def __init__(self, h, name):
            self.h, self.name = h, name

        def cli(self, *args):
            return self.h.cli(*args).stdout

        def start(self, bootstrap):
            self.h.start_daemon(bootstrap=[b.h for b in bootstrap])

        def python(self, code, cwd, label=""):
            env = self.h.env(PYTHONPATH=cwd)
            subprocess.run(["ip", "netns", "exec", self.h.ns, sys.executable, "-c", code,
                            label or self.name], env=env, check=True)

        def stop(self):
            pass
    return [NsHost(h, "ABC"[i]) for i, h in enumerate(lab.hosts)]


def run(hosts, code_dir: str, where: str) -> None:
    a, b, c = hosts
    print(f"== three machines ({where}), each with its own daemon and data dir")
    a.start([])
    b.start([a])
    c.start([a])
    for h in hosts:
        h.python("import irohds; irohds.join('demo')", code_dir)
    time.sleep(1.5)
    print("== machine A: nobody has the result yet, so A computes it (~4 s) and announces it")
    a.python(CALL, code_dir, "machine A")
    time.sleep(0.5)
    print("== machine B: its daemon fetches the result from A instead of computing")
    b.python(CALL, code_dir, "machine B")
    print("== machine C: what would a call do?  irohds.explain() says, then C calls")
    c.python(EXPLAIN, code_dir)
    c.python(CALL, code_dir, "machine C")
    print("== machine B again, a new process: straight from B's own store")
    b.python(CALL, code_dir, "machine B, 2nd process")
    print("== irohds-daemon peers (on B)")
    print(textwrap.indent(b.cli("peers"), "  "), end="")
    print("== irohds-daemon ls (on C): the result, computed on A")
    print(textwrap.indent(c.cli("ls"), "  "), end="")


def main() -> int:
    tmp = tempfile.mkdtemp(prefix="irohds-demo.", dir="/tmp")
    try:
        with open(os.path.join(tmp, "demo_work.py"), "w") as f:
            f.write(CODE)
        if os.geteuid() == 0 and shutil.which("ip"):
            from netlab import Lab
            with Lab(3) as lab:
                run(netns_hosts(lab), tmp, "network namespaces on a bridge")
        else:
            hosts = [LoopbackHost(tmp, i) for i in range(3)]
            try:
                run(hosts, tmp, "separate daemons on 127.0.0.1; run as root for namespaces")
            finally:
                for h in hosts:
                    h.stop()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
