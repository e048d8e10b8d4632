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


DHT_NODES = int(os.environ.get("BENCH_DISCOVERY_DHT_NODES", "20"))


def dht_round() -> float:
    """A private DHT of DHT_NODES daemons on one host's loopback (the first
    is the others' router), A among them serving "bench"; then B starts,
    knowing only the router."""
    import json

    from netlab import Lab

    with Lab(1) as lab:
        host = lab.hosts[0]
        others = [lab.add_tenant(host, 5000 + i, 6000 + i) for i in range(DHT_NODES - 1)]
        for i, d in enumerate(others):
            if i == 1:
                (d.home / "namespaces").write_text("bench\n")  # A
            d.start_daemon(dht=True, extra="dht_bootstrap = " +
                           ("[]" if i == 0 else json.dumps(["127.0.0.1:6000"])) + "\n")
        time.sleep(3.0)  # the DHT settles: A's announce and record are stored
        b = lab.add_tenant(host, 5999, 6999)
        (b.home / "namespaces").write_text("bench\n")
        b.make_id()
        start = time.time()
        b.start_daemon(dht=True, extra='dht_bootstrap = ["127.0.0.1:6000"]\n')
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and "neighbor up in bench" not in b.log():
            time.sleep(0.02)
        return time_to_neighbor(b.log(), start)


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
    res["dht"] = [dht_round() for _ in range(max(1, ROUNDS // 2))]
    for k, v in res.items():
        C.info(f"{k:9s} {C.fmt_dist(v)}")
    anchor = C.median(res["bootstrap"])
    m = C.median(res["mdns"])
    C.report("start to a namespace peer through mDNS", m, "known bootstrap peer", anchor,
             "<= 1 s", m <= 1.0)
    d = C.median(res["dht"])
    C.report(f"start to a namespace peer through a {DHT_NODES}-node DHT", d,
             "known bootstrap peer", anchor, "<= 3 s", d <= 3.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
