"""Time from daemon start to knowing a peer of a namespace.

Hosts in network namespaces on one bridge (tests/net/netlab.py).  A daemon
already runs on A, serving namespace "bench".  B's daemon starts with the
namespace in its data dir (so it joins it at once) and nothing else but one
way to find peers:

  mdns       nothing configured; A is on the same LAN (the bridge);
  dht        a private DHT of 20 irohds nodes on the bridge's hosts (when the
             DHT is built in): B knows only the routers;
  bootstrap  the anchor: A's node id and address in B's bootstrap_peers, the
             least any discovery can cost (a QUIC handshake and a gossip Join).

Measured from the moment B's daemon process is started (wall clock, taken
just before the fork) to the time stamp of "neighbor up in bench" in B's log
(A is in B's gossip view of the namespace).

Aims (issue): mDNS at most 1 s, DHT at most 3 s.  Needs root.
"""
from __future__ import annotations

import datetime
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "net"))
import _common as C  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_DISCOVERY_ROUNDS", "5"))


def stamp(line: str) -> float:
    t = line.split(" ", 1)[0]
    return datetime.datetime.strptime(t, "%Y-%m-%dT%H:%M:%S.%fZ").timestamp()


def time_to_neighbor(log: str, start: float) -> float:
    for line in log.splitlines():
        if "neighbor up in bench" in line:
            return stamp(line) - start
    return float("nan")


def one_round(mode: str) -> float:
    from netlab import Lab

    with Lab(2) as lab:
        a, b = lab.hosts
        for h in lab.hosts:
            (h.home / "namespaces").write_text("bench\n")
        a.start_daemon(mdns=(mode == "mdns"))
        time.sleep(0.3)
        b.make_id()
        start = time.time()
        b.start_daemon(bootstrap=[a] if mode == "bootstrap" else [], mdns=(mode == "mdns"))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and "neighbor up in bench" not in b.log():
            time.sleep(0.02)
        return time_to_neighbor(b.log(), start)


def main() -> int:
    C.header("bench_discovery: daemon start to a known peer of the namespace")
    if os.geteuid() != 0:
        print("  skipped: needs root (network namespaces)")
        return 0
    res = C.interleaved({"mdns": lambda: one_round("mdns"),
                         "bootstrap": lambda: one_round("bootstrap")}, ROUNDS)
    for k, v in res.items():
        C.info(f"{k:9s} {C.fmt_dist(v)}")
    m = C.median(res["mdns"])
    C.report("start to a namespace peer through mDNS", m, "known bootstrap peer",
             C.median(res["bootstrap"]), "<= 1 s", m <= 1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
