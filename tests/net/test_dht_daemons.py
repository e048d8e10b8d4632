"""irohds daemons on a private mainline DHT that libtorrent is part of.

Two daemons on hosts of their own, and a private DHT of libtorrent sessions
(tests/interop/lt_peer.py) and our dht_tool nodes on a third host: the
daemons publish pkarr address records (read and verified by libtorrent),
find each other by namespace rendezvous (peers source "dht"), and resolve a
bootstrap peer given by node id alone.  Run with `make test-net` (root).
"""
from __future__ import annotations

import contextlib
import json
import os
import time
from typing import Iterator, List, Optional, Tuple

import pytest

from dhtlab import DhtTool, LtPeer, have_libtorrent, poll
from netlab import Host, Lab

pytestmark = pytest.mark.skipif(not have_libtorrent(),
                                reason="python3-libtorrent is not installed (scripts/deps.sh)")


# ----------------------------------------------------------- the daemons

def peers(h: Host) -> dict:
    return json.loads(h.cli("peers", "--json").stdout)


ROUTER_PORTS = [7001, 7002]


def dht_config(routers: List[str]) -> str:
    """config.toml lines: the DHT on port 6881, bootstrapping from routers."""
    return (f'dht_listen = "0.0.0.0:6881"\n'
            f'dht_bootstrap = [{", ".join(json.dumps(r) for r in routers)}]\n')


@contextlib.contextmanager
def private_dht(d: Host, ntools: int) -> Iterator[Tuple[LtPeer, List[DhtTool], List[str]]]:
    """On host d: two libtorrent sessions (the routers, on ROUTER_PORTS) and
    ntools dht_tool nodes that know them; yields (lt, tools, routers) and
    closes them all after."""
    lt = LtPeer(d)
    tools: List[DhtTool] = []
    try:
        lt.start(d.addr, ROUTER_PORTS)
        routers = [lt.addr(0), lt.addr(1)]
        for i in range(ntools):
            tools.append(DhtTool(d, f"{d.addr}:{7101 + i}", nodes=routers))
        yield lt, tools, routers
    finally:
        for t in tools:
            t.close()
        lt.close()


def known_with_address(h: Host, other: Host) -> Optional[dict]:
    """other's entry in h's address book, once it holds other's address."""
    for p in peers(h)["known"]:
        if p["node"] == other.node_id and f"{other.addr}:4433" in p["addresses"]:
            return p
    return None


class IdOnly:
    """A bootstrap_peers entry that is a node id and nothing else."""

    def __init__(self, node_id: str) -> None:
        self.node_id = node_id

    def peer_spec(self) -> str:
        return self.node_id


def test_daemons_find_each_other_through_a_private_dht(lab_factory) -> None:
    """Two irohds daemons (hosts A and B) and a private DHT of two libtorrent
    sessions and five dht_tool nodes (host D).  The daemons publish pkarr
    records, rendezvous in a namespace (source "dht"), and a bootstrap peer
    given by node id alone is resolved to its address."""
    lab: Lab = lab_factory(3)
    a, b, d = lab.hosts
    with private_dht(d, 5) as (lt, tools, routers):
        dht_conf = dht_config(routers)
        try:
            for h in (a, b):
                (h.home / "namespaces").write_text("lab\n")
                h.start_daemon(dht=True, extra=dht_conf)

            # rendezvous: each finds the other in the namespace through the DHT
            def in_ns(h: Host, other: Host):
                for p in peers(h)["namespaces"].get("lab", []):
                    if p["node"] == other.node_id:
                        return p
                return None
            p = poll(lambda: in_ns(b, a), 40, "B to find A in the namespace through the DHT")
            assert p["source"] == "dht", p
            assert f"{a.addr}:4433" in p["addresses"], p

            # A's pkarr record: libtorrent and our node read it, signature checked
            # by libtorrent and libsodium; its TXT record names A's address
            addr_txt = f"addr={a.addr}:4433"
            got = lt.call(op="get_mutable", session=0, pk=a.node_id, timeout=20)
            assert got["found"] and got["sig_ok"] and got["authoritative"], got
            assert addr_txt.encode() in bytes.fromhex(got["value_hex"]), got
            r = tools[0].cmd(f"get-mutable {a.node_id}")
            assert r["items"] and r["items"][-1]["sig_ok"], r
            assert addr_txt.encode() in bytes.fromhex(r["items"][-1]["v_hex"]), r
            assert r["items"][-1]["seq"] == got["seq"], (r, got)
            dht = peers(a)["dht"]
            assert dht["nodes_good"] >= 3 and dht["port"] == 6881, dht

            # B again, in no namespace, knowing A by its node id alone
            b.kill_daemon()
            (b.home / "namespaces").write_text("")
            b.start_daemon(bootstrap=[IdOnly(a.node_id)], dht=True, extra=dht_conf)

            poll(lambda: known_with_address(b, a), 30, "B to resolve A's node id through the DHT")
            assert "through the DHT" in b.log(), b.log()[-3000:]
        finally:
            if os.environ.get("IROHDS_DHT_DEBUG"):
                for h in (a, b):
                    print(f"==== {h.name}\n" + h.log())


def test_address_record_published_once_the_dht_answers(lab_factory) -> None:
    """A daemon that starts before any DHT node answers (its routers come up
    later) still publishes its address record soon after they do, rather
    than at its next half-hourly publish."""
    lab: Lab = lab_factory(2)
    a, d = lab.hosts
    a.start_daemon(dht=True, extra=dht_config([f"{d.addr}:{port}" for port in ROUTER_PORTS]))
    time.sleep(2.5)  # its first publish (1 s after start) reached nobody
    with private_dht(d, 3) as (_, tools, _):
        addr_txt = f"addr={a.addr}:4433".encode()

        def record():
            r = tools[0].cmd(f"get-mutable {a.node_id}")
            return r if r["items"] and addr_txt in bytes.fromhex(r["items"][-1]["v_hex"]) else None
        r = poll(record, 30, "A's address record on the DHT", every=1)
        assert r["items"][-1]["sig_ok"], r


def test_bootstrap_peer_by_id_that_starts_later_is_resolved(lab_factory) -> None:
    """One config for every machine: B names A by node id alone and starts
    first, before A has published anything.  B keeps looking A up until A's
    record is there (a single lookup at start found nothing)."""
    lab: Lab = lab_factory(3)
    a, b, d = lab.hosts
    with private_dht(d, 3) as (_, _, routers):
        dht_conf = dht_config(routers)
        a.make_id()
        b.start_daemon(bootstrap=[IdOnly(a.node_id)], dht=True, extra=dht_conf)
        time.sleep(2)  # B's first lookup of A is over: nothing to find yet
        a.start_daemon(dht=True, extra=dht_conf)
        poll(lambda: known_with_address(b, a), 30,
             "B to resolve A, started after it, through the DHT")
