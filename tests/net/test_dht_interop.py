"""Our DHT (src/dht) against one nobody here wrote: libtorrent 2.0.8
(Debian's python3-libtorrent), on real UDP sockets.

The first tests share one private DHT on the loopback of one network
namespace: three libtorrent sessions that know each other, and two of our
nodes (tests/interop/dht_tool) that know only libtorrent nodes at start.
Expected values come from libtorrent (its node ids, its routing table, what
it finds and verifies) or from first principles (SHA-1 of a bencoded value,
libsodium signatures), never from our own output.

The daemon-level tests are in test_dht_daemons.py (a Lab of their own:
netlab names namespaces by pid, so this module's Lab must be gone first).

Run with `make test-net` (root: network namespaces).
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
import textwrap
from typing import Iterator

import pytest

from dhtlab import DhtTool, LtPeer, dht_tool_path, have_libtorrent, poll
from netlab import Host, Lab

pytestmark = pytest.mark.skipif(not have_libtorrent(),
                                reason="python3-libtorrent is not installed (scripts/deps.sh)")

LO = "127.0.0.1"
LT_PORTS = [7001, 7002, 7003]


def benc_str(s: bytes) -> bytes:
    return b"%d:%s" % (len(s), s)


class Net:
    lab: Lab
    host: Host
    lt: LtPeer
    x: DhtTool  # bootstrapped from one libtorrent node it pings (--node)
    y: DhtTool  # bootstrapped from one libtorrent node as a router
    announced: list  # info-hashes libtorrent announced


@pytest.fixture(scope="module")
def net() -> Iterator[Net]:
    dht_tool_path()  # fail early if it is not built
    n = Net()
    n.announced = []
    n.lab = Lab(1).__enter__()
    try:
        n.host = n.lab.hosts[0]
        n.lt = LtPeer(n.host)
        n.lt.start(LO, LT_PORTS)
        n.x = DhtTool(n.host, f"{LO}:7101", nodes=[n.lt.addr(0)])
        n.y = DhtTool(n.host, f"{LO}:7102", routers=[n.lt.addr(1)])
        yield n
    finally:
        for c in ("x", "y", "lt"):
            if hasattr(n, c):
                getattr(n, c).close()
        n.lab.down()


def lt_ids(net: Net) -> dict:
    return {node["id"]: f"{LO}:{node['port']}" for node in net.lt.nodes}


# ---------------------------------------------------------------- tables

def test_routing_tables_hold_each_other(net: Net) -> None:
    want = lt_ids(net)

    # X pinged one libtorrent node; it learnt the other two from its replies
    def x_has_all():
        table = {e["id"]: e["addr"] for e in net.x.table()}
        return all(table.get(i) == a for i, a in want.items())
    poll(x_has_all, 20, "X's table to hold the three libtorrent nodes")

    # Y was given lt1 as a router: lt0 and lt2 come from lt1's answers, lt1
    # itself stays out (routers never enter the table, as in libtorrent)
    lt1 = net.lt.nodes[1]["id"]

    def y_has_others():
        table = {e["id"]: e["addr"] for e in net.y.table()}
        return all(table.get(i) == a for i, a in want.items() if i != lt1) and table
    table = poll(y_has_others, 20, "Y's table to hold lt0 and lt2")
    assert lt1 not in table

    # and every libtorrent session has our nodes in its routing table
    for i in range(len(LT_PORTS)):
        poll(lambda: net.lt.live_nodes(i).get(net.x.id) == net.x.addr, 20,
             f"lt{i}'s table to hold X")
    # everything libtorrent sent us decoded (strict bencode, KRPC shape)
    st = net.x.stats()
    assert st["dropped_malformed"] == 0 and st["tokens_rejected"] == 0, st


# ----------------------------------------------------------------- peers

def test_peers_announced_are_found_both_ways(net: Net) -> None:
    # libtorrent announces a torrent; we find its peer
    ih1 = os.urandom(20).hex()
    net.lt.call(op="announce", session=0, info_hash=ih1)
    want = net.lt.addr(0)
    poll(lambda: want in net.x.cmd(f"get-peers {ih1}")["peers"], 30,
         "X to find libtorrent's peer")

    net.announced.append(ih1)

    # we announce; libtorrent accepts our announce_peer and finds the peer
    ih2 = os.urandom(20).hex()
    r = net.x.cmd(f"announce {ih2} 5555")
    assert r["ok"] and r["error"] == 0, r
    assert r["stored_ok"] >= 3, r  # the three libtorrent nodes (and Y) took it
    got = net.lt.call(op="get_peers", session=2, info_hash=ih2, want=f"{LO}:5555", timeout=20)
    assert f"{LO}:5555" in got["peers"], got
    received = [a for i in range(3)
                for a in net.lt.call(op="announces_received", session=i)["announces"]
                if a["info_hash"] == ih2]
    assert {a["peer"] for a in received} == {f"{LO}:5555"}, received
    assert len(received) >= 2, received  # stored_ok counts Y too


# ------------------------------------------------------------- BEP 44 items

def test_mutable_items_both_ways(net: Net) -> None:
    # we put, libtorrent gets and verifies (and the driver checks the
    # signature again with libsodium)
    seed = os.urandom(32).hex()
    r = net.x.cmd(f"put-mutable {seed} 1 hello-from-irohds")
    assert r["ok"] and r["error"] == 0 and r["stored_ok"] >= 3, r
    pk = r["key"]
    assert r["target"] == hashlib.sha1(bytes.fromhex(pk)).hexdigest()  # BEP 44, no salt
    got = net.lt.call(op="get_mutable", session=2, pk=pk, min_seq=1)
    assert got["found"] and got["seq"] == 1 and got["value"] == "hello-from-irohds", got
    assert got["sig_ok"] and got["authoritative"], got

    # libtorrent puts, we get and verify with libsodium
    seed2 = os.urandom(32).hex()
    put = net.lt.call(op="put_mutable", session=0, seed=seed2, value="hello-from-libtorrent")
    assert put["num_success"] >= 2, put
    r = net.x.cmd(f"get-mutable {put['pk']}")
    assert r["items"], r
    last = r["items"][-1]
    assert last["value"] == "hello-from-libtorrent" and last["seq"] == put["seq"], r
    assert last["sig_ok"] and last["k"] == put["pk"], r

    # with a salt both ways (target SHA-1(k || salt))
    r = net.y.cmd(f"put-mutable {seed} 7 salted-by-irohds my-salt")
    assert r["ok"] and r["error"] == 0, r
    assert r["target"] == hashlib.sha1(bytes.fromhex(pk) + b"my-salt").hexdigest()
    got = net.lt.call(op="get_mutable", session=1, pk=pk, salt="my-salt", min_seq=7)
    assert got["found"] and got["seq"] == 7 and got["value"] == "salted-by-irohds", got
    assert got["sig_ok"], got
    put = net.lt.call(op="put_mutable", session=1, seed=seed2, value="salted-by-lt", salt="s2")
    r = net.x.cmd(f"get-mutable {put['pk']} s2")
    assert r["items"] and r["items"][-1]["value"] == "salted-by-lt", r
    assert r["items"][-1]["sig_ok"], r


def test_mutable_seq_ordering(net: Net) -> None:
    seed = os.urandom(32).hex()
    r = net.x.cmd(f"put-mutable {seed} 1 first")
    assert r["ok"] and r["stored_ok"] >= 3, r
    pk = r["key"]
    # libtorrent reads seq 1 and writes seq 2 (its put always bumps seq):
    # the newer one wins everywhere, ours included
    put = net.lt.call(op="put_mutable", session=1, seed=seed, value="libtorrent-wins")
    assert put["seq"] == 2 and put["num_success"] >= 3, put
    r = net.x.cmd(f"get-mutable {pk}")
    assert r["seq"] == 2 and r["items"][-1]["value"] == "libtorrent-wins", r
    assert r["items"][-1]["sig_ok"], r
    # an older seq is refused by every node, with BEP 44's error 302
    r = net.x.cmd(f"put-mutable {seed} 1 stale")
    assert r["stored_ok"] == 0 and r["stored_failed"] >= 3, r
    assert r["error"] == 302 and r["seen_seq"] == 2, r
    # the same seq with another value: BEP 44 leaves it open.  libtorrent
    # answers OK but keeps what it has (its storage replaces only on a
    # higher seq); we refuse with 302 (Y).  Either way nobody serves it.
    r = net.x.cmd(f"put-mutable {seed} 2 same-seq-other-value")
    assert r["error"] == 302 and r["stored_failed"] >= 1, r  # Y's refusal
    got = net.lt.call(op="get_mutable", session=2, pk=pk, min_seq=2)
    assert got["seq"] == 2 and got["value"] == "libtorrent-wins" and got["sig_ok"], got
    r = net.y.cmd(f"get-mutable {pk}")
    assert [i["value"] for i in r["items"]] == ["libtorrent-wins"], r
    # a newer one wins again, and libtorrent sees it
    r = net.x.cmd(f"put-mutable {seed} 5 newest")
    assert r["ok"] and r["stored_ok"] >= 3 and r["error"] == 0, r
    got = net.lt.call(op="get_mutable", session=0, pk=pk, min_seq=5)
    assert got["seq"] == 5 and got["value"] == "newest" and got["sig_ok"], got


def test_immutable_items_both_ways(net: Net) -> None:
    value = b"immutable-from-irohds-" + os.urandom(4).hex().encode()
    target = hashlib.sha1(benc_str(value)).hexdigest()
    r = net.x.cmd(f"put-immutable {value.decode()}")
    assert r["ok"] and r["target"] == target and r["stored_ok"] >= 3, r
    got = net.lt.call(op="get_immutable", session=1, target=target)
    assert got["found"] and got["value"] == value.decode(), got

    value = b"immutable-from-libtorrent-" + os.urandom(4).hex().encode()
    put = net.lt.call(op="put_immutable", session=2, value=value.decode())
    target = hashlib.sha1(benc_str(value)).hexdigest()
    assert put["target"] == target and put["num_success"] >= 2, put
    r = net.y.cmd(f"get-immutable {target}")
    assert r["items"] and r["items"][0]["value"] == value.decode(), r
    assert r["items"][0]["hash_ok"], r


def test_sample_infohashes_answered(net: Net) -> None:
    """BEP 51 from libtorrent to X: answered with what X stores (libtorrent
    counts a reply without interval, num and samples as a failed query)."""
    assert net.announced, "runs after the peers test"
    torrents = net.x.stats()["torrents"]
    got = net.lt.call(op="sample_infohashes", session=1, addr=[LO, net.x.port],
                      target=os.urandom(20).hex())
    assert got["answered"], got
    assert got["num"] == torrents >= 1 and len(got["samples"]) == min(torrents, 20), (got, torrents)
    assert set(net.announced) <= set(got["samples"]), got
    assert got["num_nodes"] >= 2, got  # the closest nodes, as find_node


# ------------------------------------------------------ junk and spoofing

RAW = r'''
import json, os, random, socket, struct, sys
target = ("127.0.0.1", int(sys.argv[1]))
spoof_port = int(sys.argv[2])

def benc(x):
    if isinstance(x, int): return b"i%de" % x
    if isinstance(x, bytes): return b"%d:%s" % (len(x), x)
    if isinstance(x, list): return b"l" + b"".join(benc(i) for i in x) + b"e"
    return b"d" + b"".join(benc(k) + benc(v) for k, v in sorted(x.items())) + b"e"

u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.0.0.1", 0))
u.settimeout(3)
myid = os.urandom(20)
malformed = [
    b"garbage\xff\x00",
    b"d1:ad2:id20:" + myid,                                      # truncated
    b"d1:t2:aa1:y1:q1:q4:ping1:ad2:id20:" + myid + b"ee",        # keys out of order
    b"d1:ad2:id20:" + myid + b"e1:q4:ping1:t2:aa1:y1:q1:zi01ee", # leading zero
    b"l" * 200 + b"e" * 200,                                     # nested too deep
    b"d1:ad2:id3:abce1:q4:ping1:t2:aa1:y1:qe",                   # id not 20 bytes
    b"",
]
for p in malformed:
    u.sendto(p, target)
u.sendto(b"d1:ad2:id20:" + myid + b"e" + b"x" * 5000, target)  # oversize
unsolicited = [
    {b"t": os.urandom(6), b"y": b"r", b"r": {b"id": os.urandom(20)}},
    {b"t": b"zz", b"y": b"e", b"e": [201, b"nobody asked"]},
]
for m in unsolicited:
    u.sendto(benc(m), target)

# A reply forged with a libtorrent node's address as its source (raw IP,
# IP_HDRINCL), naming a node that does not exist: never a reply to one of
# our queries, so neither it nor the node it names may count.
fake_nodes = b"".join(os.urandom(20) + socket.inet_aton("127.0.0.99") + struct.pack(">H", 9000 + i)
                      for i in range(8))
payload = benc({b"t": os.urandom(6), b"y": b"r",
                b"r": {b"id": os.urandom(20), b"nodes": fake_nodes, b"token": b"tok"}})
udp = struct.pack(">HHHH", spoof_port, target[1], 8 + len(payload), 0) + payload
ip = struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(udp), random.randrange(65536), 0, 64, 17, 0,
                 socket.inet_aton("127.0.0.1"), socket.inet_aton("127.0.0.1"))
r = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
r.setsockopt(socket.IPPROTO_IP, socket.IP_HDRINCL, 1)
for _ in range(3):
    r.sendto(ip + udp, target)

# Then an ordinary get and put of an immutable item, to this node only.
value = b"only-on-the-junk-target-" + os.urandom(4).hex().encode()
v = benc(value)
import hashlib
tgt = hashlib.sha1(v).digest()
u.sendto(benc({b"t": b"g1", b"y": b"q", b"q": b"get", b"a": {b"id": myid, b"target": tgt}}), target)
rep = None
while True:  # answers to the junk never come: the first datagram is the get's
    data, _ = u.recvfrom(65536)
    if b"1:t2:g1" in data:
        rep = data
        break
tok_at = rep.index(b"5:token") + 7
n, rest = rep[tok_at:].split(b":", 1)
token = rest[:int(n)]
u.sendto(benc({b"t": b"p1", b"y": b"q", b"q": b"put",
               b"a": {b"id": myid, b"token": token, b"v": value}}), target)
data, _ = u.recvfrom(65536)
print(json.dumps({"malformed": len(malformed), "oversize": 1, "unsolicited": len(unsolicited) + 3,
                  "put_reply": data.decode("latin-1"), "target": tgt.hex(),
                  "value": value.decode()}))
'''


def test_junk_and_spoofed_packets_are_dropped(net: Net) -> None:
    before = net.x.stats()
    r = net.host.run([sys.executable, "-c", textwrap.dedent(RAW),
                      str(net.x.port), str(LT_PORTS[0])], timeout=30)
    sent = json.loads(r.stdout.strip().splitlines()[-1])
    assert "1:y1:r" in sent["put_reply"], sent  # the put was answered, not an error

    def counted():
        st = net.x.stats()
        d = {k: st[k] - before[k] for k in ("dropped_malformed", "dropped_oversize",
                                             "dropped_unsolicited")}
        ok = (d["dropped_malformed"] >= sent["malformed"] and d["dropped_oversize"] >= 1 and
              d["dropped_unsolicited"] >= sent["unsolicited"])
        return (d, st) if ok else None
    d, st = poll(counted, 10, "X to count the junk")
    assert d["dropped_malformed"] == sent["malformed"], d  # exactly those, nothing from libtorrent
    assert st["errors_sent"] == before["errors_sent"], "junk was answered"
    # the forged reply's nodes never entered X's table
    assert not [e for e in net.x.table() if e["addr"].startswith("127.0.0.99:")]

    # X still serves libtorrent: the item only X holds is found by it
    got = net.lt.call(op="get_immutable", session=2, target=sent["target"])
    assert got["found"] and got["value"] == sent["value"], got
    assert net.lt.live_nodes(2).get(net.x.id) == net.x.addr


# ------------------------------------------------------- the local store

def test_two_node_dht_finds_what_the_other_announced(net: Net) -> None:
    """A DHT of one libtorrent node and one of ours (in the same namespace,
    on other ports): each one's announce and item are stored on the other
    alone, so our searches must look in our own storage too."""
    lt2 = LtPeer(net.host)
    try:
        lt2.start(LO, [7201])
        z = DhtTool(net.host, f"{LO}:7202", nodes=[lt2.addr(0)])
        try:
            poll(lambda: lt2.live_nodes(0).get(z.id) == z.addr, 15, "lt to hold Z")
            ih = os.urandom(20).hex()
            lt2.call(op="announce", session=0, info_hash=ih)
            poll(lambda: lt2.addr(0) in z.cmd(f"get-peers {ih}")["peers"], 20,
                 "Z to find the peer libtorrent announced (stored on Z only)")
            put = lt2.call(op="put_mutable", session=0, seed=os.urandom(32).hex(),
                           value="stored-on-z-only")
            assert put["num_success"] == 1, put
            r = z.cmd(f"get-mutable {put['pk']}")
            assert r["items"] and r["items"][-1]["value"] == "stored-on-z-only", r
            assert r["items"][-1]["sig_ok"], r
        finally:
            z.close()
    finally:
        lt2.close()
