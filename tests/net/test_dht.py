"""Peers find each other through the mainline DHT alone: a private DHT of
20 irohds daemons on one host's loopback (no bootstrap peers, no mDNS), and
pkarr address records resolving a node id to an address."""
from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List

import pytest

from netlab import Host, Lab
from test_p2p import MODULE, call, computed, wait_for

N = 20


@pytest.fixture
def code(usercode: Path) -> Path:
    (usercode / "m_lab.py").write_text(MODULE)
    return usercode


def swarm(lab: Lab, namespaces: List[str]) -> List[Host]:
    """N daemons on one host's loopback; the first is every other one's DHT
    router and knows none; each serves namespaces[i]."""
    host = lab.hosts[0]
    ds = [lab.add_tenant(host, 5000 + i, 6000 + i) for i in range(N)]
    for i, d in enumerate(ds):
        (d.home / "namespaces").write_text(namespaces[i] + "\n")
        routers = "[]" if i == 0 else '["127.0.0.1:6000"]'
        d.start_daemon(dht=True, extra=f"dht_bootstrap = {routers}\n")
    return ds


def lab_peers(h: Host, ns: str) -> set:
    return {p["node"] for p in h.peers()["namespaces"].get(ns, [])}


def test_a_private_dht_connects_a_namespace_and_keeps_others_apart(lab_factory,
                                                                    code: Path) -> None:
    lab = lab_factory(1)
    names = ["lab" if i in (5, 15) else f"ns{i}" for i in range(N)]
    names[19] = "other"
    t0 = time.monotonic()
    ds = swarm(lab, names)
    a, b, other = ds[5], ds[15], ds[19]
    wait_for(lambda: b.node_id in lab_peers(a, "lab"), 30, "A and B to meet through the DHT")
    elapsed = time.monotonic() - t0
    # how they met: through the DHT (one side dialled the other's announced
    # address), never a configured peer or mDNS
    sources = {p["source"] for h in (a, b) for p in h.peers()["namespaces"]["lab"]}
    assert "dht" in sources and not sources & {"bootstrap", "mdns"}, sources
    # the DHT holds their records: the tables are not empty
    assert a.peers()["dht"]["nodes_good"] >= 3
    call(a, code, 61, seconds=2)
    out = call(b, code, 61, seconds=2)
    assert computed(b) == 0, "B computed although A, found through the DHT, had it"
    assert out["x"] == 61
    # the daemon of another namespace never sees the lab's members or result
    assert lab_peers(other, "lab") == set() and lab_peers(other, "other") == set()
    assert not any(p["node"] in (a.node_id, b.node_id) for p in
                   other.peers()["namespaces"].get("other", []))
    assert elapsed < 60


def test_a_bootstrap_peer_given_by_id_alone_is_resolved_through_the_dht(lab_factory,
                                                                          code: Path) -> None:
    lab = lab_factory(1)
    host = lab.hosts[0]
    routers = [lab.add_tenant(host, 5100 + i, 6100 + i) for i in range(6)]
    for i, r in enumerate(routers):
        r.start_daemon(dht=True,
                       extra=f"dht_bootstrap = {'[]' if i == 0 else json.dumps(['127.0.0.1:6100'])}\n")
    a = lab.add_tenant(host, 5200, 6200)
    b = lab.add_tenant(host, 5201, 6201)
    (a.home / "namespaces").write_text("lab\n")
    a.start_daemon(dht=True, extra='dht_bootstrap = ["127.0.0.1:6100"]\n')
    time.sleep(2.0)  # A's address record is published
    # B knows A by node id only, and serves no namespace yet (so no DHT
    # rendezvous can introduce them): A's address must come from its record
    b.start_daemon(dht=True, by_id=[a], extra='dht_bootstrap = ["127.0.0.1:6100"]\n')
    wait_for(lambda: any(p["node"] == a.node_id and p["addresses"]
                         for p in b.peers()["known"]), 30, "B to resolve A's id")
    assert "through the DHT" in b.log()
    got = next(p for p in b.peers()["known"] if p["node"] == a.node_id)
    assert got["addresses"][0] == "127.0.0.1:5200" and got["source"] == "bootstrap", got
    b.python("import irohds; irohds.join('lab')")
    wait_for(lambda: a.node_id in lab_peers(b, "lab"), 20, "B to join the namespace through A")
    call(a, code, 62, seconds=2)
    call(b, code, 62, seconds=2)
    assert computed(b) == 0
