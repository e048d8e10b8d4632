"""DHT traffic of one node at rest, ours against libtorrent's, per hour.

A private DHT on hosts in network namespaces (tests/net/netlab.py), all on
one bridge:

  host M1  one libtorrent 2.0.8 session (python3-libtorrent), alone
  host M2  one of our nodes (tests/interop/dht_tool: src/dht on a socket), alone
  host R   the rest: N-1 libtorrent sessions and N-1 of our nodes

Every node is given the same two entry points (one libtorrent node and one of
ours on R) and nothing else; nobody searches, announces or puts: what flows is
upkeep only (pings, bucket refreshes, self lookups) and the answers to the
others' upkeep.  After BENCH_DHT_SETTLE seconds (default 60) the two measured
nodes are counted over BENCH_DHT_WINDOW seconds (default 150), then the
counts are extrapolated to an hour.

Counted two ways, and both are printed:
  socket  the veth of M1 and M2 (every frame in and out of the host:
          Ethernet + IP + UDP headers, and a little ARP): the figure the claim
          uses, the same ruler for both;
  own     each node's own counters of DHT payload (our stats; libtorrent's
          dht.dht_bytes_in/out and dht_messages_in/out session counters).

Caveat: a window of a few minutes sees no 15-minute bucket refresh nor the
15-minute self lookup of either implementation; the figure is the steady
ping/answer traffic.  BENCH_DHT_WINDOW=1800 measures a full cycle.

Needs root (network namespaces) and python3-libtorrent (scripts/deps.sh).
"""
from __future__ import annotations

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(HERE, "..", "tests", "net"))
import _common as C  # noqa: E402

N = int(os.environ.get("BENCH_DHT_N", "8"))
SETTLE = float(os.environ.get("BENCH_DHT_SETTLE", "60"))
WINDOW = float(os.environ.get("BENCH_DHT_WINDOW", "150"))
PORT = 6881


def veth(host) -> dict:
    """eth0's counters inside host's namespace."""
    out = {}
    for k in ("rx_packets", "tx_packets", "rx_bytes", "tx_bytes"):
        r = host.run(["cat", f"/sys/class/net/eth0/statistics/{k}"])
        out[k] = int(r.stdout.strip())
    return out


def delta(a: dict, b: dict) -> dict:
    return {k: b[k] - a[k] for k in a}


def per_hour(x: float) -> float:
    return x * 3600.0 / WINDOW


def main() -> int:
    C.header("bench_dht_traffic: DHT traffic of one node at rest, per hour")
    if os.geteuid() != 0:
        print("  skipped: needs root (network namespaces)")
        return 0
    from dhtlab import DhtTool, LtPeer, have_libtorrent
    from netlab import Lab
    if not have_libtorrent():
        print("  skipped: python3-libtorrent is not installed (scripts/deps.sh)")
        return 0
    C.info(f"{N} libtorrent + {N} irohds nodes; settle {SETTLE:.0f} s, window {WINDOW:.0f} s")
    with Lab(3) as lab:
        m1, m2, rest = lab.hosts
        lt_rest = LtPeer(rest)
        lt_m = LtPeer(m1)
        tools = []
        try:
            lt_rest.start(rest.addr, [7001 + i for i in range(N - 1)])
            entry_lt = lt_rest.addr(0)
            entry_ours = f"{rest.addr}:7101"
            tools.append(DhtTool(rest, entry_ours, nodes=[entry_lt]))
            for i in range(1, N - 1):
                tools.append(DhtTool(rest, f"{rest.addr}:{7101 + i}", nodes=[entry_lt, entry_ours]))
            # the two measured nodes: the same two entry points each
            lt_m.start(m1.addr, [PORT], mesh=False)
            lt_m.call(op="add_nodes", session=0, nodes=[[rest.addr, 7001], [rest.addr, 7101]])
            ours = DhtTool(m2, f"{m2.addr}:{PORT}", nodes=[entry_lt, entry_ours])
            tools.append(ours)
            for i in range(1, N - 1):  # libtorrent's others enter by the same doors
                lt_rest.call(op="add_nodes", session=i, nodes=[[rest.addr, 7001],
                                                               [rest.addr, 7101]])
            time.sleep(SETTLE)
            lt_table = lt_m.call(op="stats", session=0).get("routing_table_nodes")
            our_table = ours.stats()["nodes_good"]
            C.info(f"after settling: routing tables of the measured nodes: libtorrent "
                   f"{lt_table}, ours {our_table} good")

            v_lt0, v_ours0 = veth(m1), veth(m2)
            s_lt0, s_ours0 = lt_m.call(op="stats", session=0), ours.stats()
            t0 = time.monotonic()
            time.sleep(WINDOW)
            v_lt1, v_ours1 = veth(m1), veth(m2)
            s_lt1, s_ours1 = lt_m.call(op="stats", session=0), ours.stats()
            elapsed = time.monotonic() - t0
        finally:
            for t in tools:
                t.close()
            lt_m.close()
            lt_rest.close()

    vl, vo = delta(v_lt0, v_lt1), delta(v_ours0, v_ours1)
    sl = {k: s_lt1[k] - s_lt0[k] for k in ("dht.dht_messages_in", "dht.dht_messages_out",
                                          "dht.dht_bytes_in", "dht.dht_bytes_out")}
    so = {k: s_ours1[k] - s_ours0[k] for k in ("packets_in", "packets_out", "bytes_in",
                                               "bytes_out", "queries_in", "replies_in")}
    C.info(f"window {elapsed:.1f} s")
    C.info(f"socket  libtorrent: {vl['tx_packets']} pkts / {vl['tx_bytes']} B out, "
           f"{vl['rx_packets']} pkts / {vl['rx_bytes']} B in")
    C.info(f"socket  ours:       {vo['tx_packets']} pkts / {vo['tx_bytes']} B out, "
           f"{vo['rx_packets']} pkts / {vo['rx_bytes']} B in")
    C.info(f"own     libtorrent: {sl['dht.dht_messages_out']} msgs / {sl['dht.dht_bytes_out']} B "
           f"out, {sl['dht.dht_messages_in']} msgs / {sl['dht.dht_bytes_in']} B in")
    C.info(f"own     ours:       {so['packets_out']} pkts / {so['bytes_out']} B out, "
           f"{so['packets_in']} pkts / {so['bytes_in']} B in ({so['queries_in']} queries from "
           f"others, {so['replies_in']} answers to ours)")

    lt_pk = per_hour(vl["tx_packets"] + vl["rx_packets"])
    our_pk = per_hour(vo["tx_packets"] + vo["rx_packets"])
    lt_b = per_hour(vl["tx_bytes"] + vl["rx_bytes"])
    our_b = per_hour(vo["tx_bytes"] + vo["rx_bytes"])
    own_lt_b = per_hour(sl["dht.dht_bytes_in"] + sl["dht.dht_bytes_out"])
    own_our_b = per_hour(so["bytes_in"] + so["bytes_out"])
    C.info(f"per hour, own counters: libtorrent {C.fmt_bytes(own_lt_b)}, ours "
           f"{C.fmt_bytes(own_our_b)} of DHT payload")
    C.report_amount("DHT packets per node-hour at rest (in+out, veth)", our_pk, "pkt",
                    "libtorrent 2.0.8", lt_pk,
                    extra=f"N={N}+{N}, window {WINDOW:.0f} s after {SETTLE:.0f} s")
    C.report_amount("DHT bytes per node-hour at rest (in+out, veth)", our_b, "B",
                    "libtorrent 2.0.8", lt_b,
                    extra=f"own counters: ours {C.fmt_bytes(own_our_b)}, libtorrent "
                          f"{C.fmt_bytes(own_lt_b)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
