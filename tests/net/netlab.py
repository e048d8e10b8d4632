"""netlab: several hosts on one machine, for tests of what crosses a network.

Each host is a network namespace with its own loopback and one veth link to a
bridge that lives in a "switch" namespace of its own, so nothing a test sends
can reach the machine's real interfaces: the only routes a host has are its
/24 on the bridge and its loopback.  A host runs its own irohds daemon with its
own data dir (IROHDS_HOME), and Python processes that talk to that daemon.

    with Lab(3) as lab:
        a, b, c = lab.hosts
        a.start_daemon(); b.start_daemon(bootstrap=[a])
        b.python("import m; print(m.f(1))")

Names carry the creating process's pid (irN<pid>...), so parallel runs never
collide and a run that died without cleaning up is recognised and swept by the
next one (sweep_stale()).  Everything is removed on exit: daemons and
processes killed, namespaces deleted (their veths go with them), data dirs
removed.  Requires root and iproute2.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import textwrap
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence

SCRIPTS = sysconfig.get_path("scripts")
DAEMON = os.environ.get("IROHDS_TEST_DAEMON") or os.path.join(SCRIPTS, "irohds-daemon")
# The hostile peer (tests/net/helpers/evil_peer.c), built by meson and never
# installed: $IROHDS_EVIL_PEER, else the build dir `make install` uses.
EVIL_PEER = os.environ.get("IROHDS_EVIL_PEER") or str(
    Path(__file__).resolve().parents[2] / "build" / "release" / "tests" / "net" / "evil_peer")
PREFIX = "irN"
QUIC_PORT = 4433


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


def sweep_stale() -> None:
    """Delete namespaces left by earlier runs whose process is gone."""
    out = _ip("netns", "list", check=False).stdout
    for line in out.splitlines():
        name = line.split()[0] if line.split() else ""
        m = re.match(rf"{PREFIX}(\d+)[sh]", name)
        if not m:
            continue
        pid = int(m.group(1))
        try:
            os.kill(pid, 0)
            continue  # its creator still runs
        except ProcessLookupError:
            pass
        except PermissionError:
            continue
        _kill_ns_pids(name)
        _ip("netns", "del", name, check=False)


def _kill_ns_pids(ns: str) -> None:
    out = _ip("netns", "pids", ns, check=False).stdout
    for pid in out.split():
        try:
            os.kill(int(pid), signal.SIGKILL)
        except (ProcessLookupError, ValueError):
            pass


class Host:
    """One namespace: an address on the bridge, a data dir, a daemon."""

    def __init__(self, lab: "Lab", index: int, tenant_of: Optional["Host"] = None,
                 port: int = QUIC_PORT, dht_port: int = 0) -> None:
        self.lab = lab
        self.index = index
        if tenant_of is None:
            self.name = f"h{index}"
            self.ns = f"{lab.tag}h{index}"
            self.addr = f"{lab.subnet}.{index + 1}"
        else:  # another daemon in a host's namespace, on its loopback
            self.name = f"{tenant_of.name}t{index}"
            self.ns = tenant_of.ns
            self.addr = "127.0.0.1"
        self.port = port
        self.dht_port = dht_port
        self.home = lab.root / self.name
        self.home.mkdir(mode=0o700)
        self.daemon: Optional[subprocess.Popen] = None
        self.node_id = ""
        self.procs: List[subprocess.Popen] = []

    # ------------------------------------------------------------ processes
    def env(self, **extra: str) -> Dict[str, str]:
        env = dict(os.environ)
        env.pop("XDG_RUNTIME_DIR", None)  # the socket stays under IROHDS_HOME/run
        env["IROHDS_HOME"] = str(self.home)
        env["PATH"] = SCRIPTS + os.pathsep + env.get("PATH", "")
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env.update(extra)
        return env

    def popen(self, argv: Sequence[str], **kw) -> subprocess.Popen:
        """Start argv inside this host's namespace."""
        env = kw.pop("env", None) or self.env()
        p = subprocess.Popen(["ip", "netns", "exec", self.ns, *argv], env=env, **kw)
        self.procs.append(p)
        return p

    def run(self, argv: Sequence[str], timeout: float = 120, check: bool = True,
            env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
        r = subprocess.run(["ip", "netns", "exec", self.ns, *argv], env=env or self.env(),
                           capture_output=True, text=True, timeout=timeout)
        if check and r.returncode != 0:
            raise AssertionError(f"{self.name}: {' '.join(argv)} exited {r.returncode}\n"
                                 f"stdout:\n{r.stdout}\nstderr:\n{r.stderr}")
        return r

    def python(self, code: str, cwd: Optional[Path] = None, timeout: float = 120,
               check: bool = True, **extra_env: str) -> subprocess.CompletedProcess:
        """Run Python code in a fresh interpreter on this host."""
        env = self.env(**extra_env)
        if cwd is not None:
            env["PYTHONPATH"] = str(cwd) + os.pathsep + env.get("PYTHONPATH", "")
        return self.run([sys.executable, "-c", textwrap.dedent(code)], timeout=timeout,
                        check=check, env=env)

    def spawn_python(self, code: str, cwd: Optional[Path] = None,
                     **extra_env: str) -> subprocess.Popen:
        env = self.env(**extra_env)
        if cwd is not None:
            env["PYTHONPATH"] = str(cwd) + os.pathsep + env.get("PYTHONPATH", "")
        return self.popen([sys.executable, "-c", textwrap.dedent(code)], env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        return self.run([DAEMON, *args], check=check)

    # --------------------------------------------------------------- daemon
    def make_id(self) -> str:
        """This host's node id (made now if it has none; the daemon keeps it)."""
        if not self.node_id:
            self.node_id = json.loads(self.cli("info", "--json").stdout)["node_id"]
        return self.node_id

    def peer_spec(self) -> str:
        return f"{self.make_id()}@{self.addr}:{self.port}"

    def write_config(self, bootstrap: Iterable["Host"] = (), extra: str = "",
                     mdns: bool = False, dht: bool = False, by_id: Iterable["Host"] = ()) -> None:
        """Discovery is off unless asked for: a test says which way peers
        find each other (bootstrap_peers by default; by_id: peers named by
        their node id alone, to be resolved through the DHT)."""
        peers = ", ".join([f'"{h.peer_spec()}"' for h in bootstrap] +
                          [f'"{h.make_id()}"' for h in by_id])
        (self.home / "config.toml").write_text(
            f'listen = "{self.addr}:{self.port}"\n'
            + (f'dht_listen = "{self.addr}:{self.dht_port}"\n' if self.dht_port else "") +
            f"bootstrap_peers = [{peers}]\n"
            f"mdns = {'true' if mdns else 'false'}\n"
            f"dht = {'true' if dht else 'false'}\n"
            'log_level = "debug"\n'
            f"{extra}\n")

    def start_daemon(self, bootstrap: Iterable["Host"] = (), extra: str = "",
                     wait: float = 20.0, mdns: bool = False, dht: bool = False,
                     by_id: Iterable["Host"] = ()) -> None:
        """Write config.toml and run the daemon in the foreground (so a test can
        SIGKILL it); returns once its socket answers."""
        self.make_id()
        self.write_config(bootstrap, extra, mdns=mdns, dht=dht, by_id=by_id)
        log = open(self.home / "daemon.log", "ab")
        self.daemon = self.popen([DAEMON, "run"], stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.daemon.poll() is not None:
                raise AssertionError(f"{self.name}: daemon exited {self.daemon.returncode}:\n"
                                     + self.log())
            r = self.cli("info", "--json", check=False)
            if r.returncode == 0 and json.loads(r.stdout).get("running"):
                return
            time.sleep(0.05)
        raise AssertionError(f"{self.name}: daemon did not start in {wait} s:\n" + self.log())

    def kill_daemon(self, sig: int = signal.SIGKILL) -> None:
        if self.daemon and self.daemon.poll() is None:
            self.daemon.send_signal(sig)
            self.daemon.wait(timeout=30)
        self.daemon = None

    def info(self) -> dict:
        return json.loads(self.cli("info", "--json").stdout)

    def peers(self) -> dict:
        """The daemon's PEERS JSON (docs/ipc.md)."""
        return json.loads(self.cli("peers", "--json").stdout)

    def log(self) -> str:
        try:
            return (self.home / "daemon.log").read_text(errors="replace")
        except OSError:
            return ""

    def stop_all(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.kill()
        for p in self.procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                pass
        self.procs.clear()
        self.daemon = None


class Lab:
    """n hosts on one bridge.  Use as a context manager."""

    def __init__(self, n: int) -> None:
        if os.geteuid() != 0:
            raise RuntimeError("netlab needs root (ip netns)")
        sweep_stale()
        pid = os.getpid()
        self.tag = f"{PREFIX}{pid}"
        self.switch = f"{self.tag}s"
        # A /24 per run, from the pid, inside 10.0.0.0/8 (never routed out:
        # the namespaces have no other interface).
        self.subnet = f"10.{(pid >> 8) & 0xff}.{pid & 0xff}"
        self.root = Path(tempfile.mkdtemp(prefix="irnet-", dir="/tmp"))
        self.hosts: List[Host] = []
        self.tenants: List[Host] = []
        self._n = n

    def __enter__(self) -> "Lab":
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.down()

    def _up(self) -> None:
        _ip("netns", "add", self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for i in range(self._n):
            self.add_host()

    def add_host(self) -> Host:
        h = Host(self, len(self.hosts))
        self.hosts.append(h)
        port = f"p{h.index}"
        _ip("netns", "add", h.ns)
        _ip("-n", h.ns, "link", "set", "lo", "up")
        _ip("-n", self.switch, "link", "add", port, "type", "veth", "peer", "name", "eth0",
            "netns", h.ns)
        _ip("-n", self.switch, "link", "set", port, "master", "br0")
        _ip("-n", self.switch, "link", "set", port, "up")
        _ip("-n", h.ns, "addr", "add", f"{h.addr}/24", "dev", "eth0")
        _ip("-n", h.ns, "link", "set", "eth0", "up")
        return h

    def add_tenant(self, host: Host, port: int, dht_port: int) -> Host:
        """Another daemon inside host's namespace, on 127.0.0.1 with its own
        data dir and ports (many DHT nodes without many namespaces)."""
        t = Host(self, len(self.tenants), tenant_of=host, port=port, dht_port=dht_port)
        self.tenants.append(t)
        return t

    def shape(self, host: Host, rate: str) -> None:
        """Limit what host sends (a token bucket on its eth0), e.g. rate="200mbit".
        tbf, because it is the shaper these kernels have (no netem here)."""
        host.run(["tc", "qdisc", "replace", "dev", "eth0", "root", "tbf", "rate", rate,
                  "burst", "256kb", "latency", "200ms"])

    def down(self) -> None:
        for h in self.tenants + self.hosts:
            h.stop_all()
        for h in self.hosts:
            _kill_ns_pids(h.ns)
            _ip("netns", "del", h.ns, check=False)
        _ip("netns", "del", self.switch, check=False)
        if os.environ.get("IROHDS_NETLAB_KEEP"):
            print(f"netlab: kept {self.root}", file=sys.stderr)
        else:
            shutil.rmtree(self.root, ignore_errors=True)
