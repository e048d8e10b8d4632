"""Peers find each other with no configured peer: mDNS on the LAN (the
hosts' bridge is the LAN), and later the DHT."""
from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from netlab import Host, Lab
from test_p2p import MODULE, call, computed, join, wait_for


@pytest.fixture
def code(usercode: Path) -> Path:
    (usercode / "m_lab.py").write_text(MODULE)
    return usercode


def test_mdns_alone_connects_a_namespace(lab_factory, code: Path) -> None:
    lab: Lab = lab_factory(3)
    a, b, c = lab.hosts
    for h in lab.hosts:
        h.start_daemon(mdns=True)  # no bootstrap peers, no DHT
    for h in lab.hosts:
        join(h)
    t0 = time.monotonic()
    wait_for(lambda: len(b.peers()["namespaces"].get("lab", [])) >= 1, 10, "B to find a peer")
    found = time.monotonic() - t0
    sources = {p["source"] for p in b.peers()["namespaces"]["lab"]}
    assert sources == {"mdns"}, sources
    call(a, code, 51, seconds=2)
    out = call(b, code, 51, seconds=2)
    assert computed(b) == 0, "B computed although A was on the LAN with the result"
    assert out["dt"] < 1.5
    assert found < 5, f"mDNS took {found:.1f} s"
    # C too, and every host knows every other one by mDNS
    call(c, code, 51, seconds=2)
    assert computed(c) == 0
    for h in lab.hosts:
        known = {p["node"] for p in h.peers()["known"] if p["source"] == "mdns"}
        assert known == {x.node_id for x in lab.hosts if x is not h}, (h.name, known)


def test_mdns_does_not_join_other_namespaces(lab_factory, code: Path) -> None:
    lab: Lab = lab_factory(2)
    a, b = lab.hosts
    for h in lab.hosts:
        h.start_daemon(mdns=True)
    join(a, "lab")
    join(b, "elsewhere")
    wait_for(lambda: any(p["node"] == a.node_id for p in b.peers()["known"]), 10,
             "B to see A on the LAN")
    time.sleep(1.0)
    # B knows A is there, but A serves another namespace: no gossip between them
    assert b.peers()["namespaces"].get("elsewhere", []) == []
    assert a.peers()["namespaces"].get("lab", []) == []


OTHER_RESPONDER = '''
import socket, struct, sys, time
# Another mDNS responder on the same host (as avahi would be): its own
# socket on 5353, in the group; it counts the irohds packets it hears.
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
s.bind(("0.0.0.0", 5353))
mreq = struct.pack("4s4s", socket.inet_aton("224.0.0.251"), socket.inet_aton(sys.argv[1]))
s.setsockopt(socket.IPPROTO_IP, socket.IP_ADD_MEMBERSHIP, mreq)
s.settimeout(0.5)
print("ready", flush=True)
seen, deadline = 0, time.monotonic() + float(sys.argv[2])
while time.monotonic() < deadline:
    try:
        data, _ = s.recvfrom(9000)
    except socket.timeout:
        continue
    if b"_irohv1" in data:
        seen += 1
print(seen, flush=True)
'''


def test_mdns_coexists_with_another_responder(lab_factory, code: Path) -> None:
    import subprocess
    import sys

    lab: Lab = lab_factory(2)
    a, b = lab.hosts
    other = b.popen([sys.executable, "-c", OTHER_RESPONDER, b.addr, "6"],
                    stdout=subprocess.PIPE, text=True)
    assert other.stdout.readline().strip() == "ready"
    for h in lab.hosts:
        h.start_daemon(mdns=True)  # B's daemon binds 5353 beside the other responder
    for h in lab.hosts:
        join(h)
    wait_for(lambda: len(b.peers()["namespaces"].get("lab", [])) >= 1, 10, "B to find A")
    out, _ = other.communicate(timeout=30)
    assert int(out.strip()) > 0, "the other responder heard nothing: the port was not shared"
