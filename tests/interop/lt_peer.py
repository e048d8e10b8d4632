"""lt_peer: libtorrent DHT nodes driven by JSON lines, for the interop tests
(tests/net/test_dht_interop.py) and bench/bench_dht_traffic.py.

Run with Debian's /usr/bin/python3 (python3-libtorrent 2.0.8 lives there,
not in the venv).  Reads one JSON object per line on stdin, answers one JSON
object per line on stdout:

  {"op": "start", "ip": "127.0.0.1", "ports": [7001, 7002]}
      -> {"nodes": [{"port": 7001, "id": "<hex40>"}, ...]}
  {"op": "add_nodes", "session": 0, "nodes": [["127.0.0.1", 7002], ...]}
  {"op": "live_nodes", "session": 0}          -> {"nodes": [["<hex40>", "ip:port"], ...]}
  {"op": "announce", "session": 0, "info_hash": "<hex40>"}
      adds a torrent (the 2.0.8 binding's dht_announce wants a flags type it
      cannot build): libtorrent announces its listen port on the DHT
  {"op": "get_peers", "session": 0, "info_hash": "<hex40>", "want": "ip:port", "timeout": 10}
      -> {"peers": [...]}: stops early once `want` is among them
  {"op": "announces_received", "session": 0}  -> [{"info_hash", "peer"}]: incoming announce_peer
  {"op": "put_mutable", "session": 0, "seed": "<hex64>", "value": "...", "salt": ""}
      -> {"seq": n, "num_success": n}: libtorrent reads the current item,
         puts seq + 1 (its binding always does)
  {"op": "get_mutable", "session": 0, "pk": "<hex64>", "salt": "", "timeout": 10,
   "min_seq": 0}
      -> {"found", "seq", "value", "value_hex", "sig_ok", "authoritative"};
         sig_ok is checked here with libsodium, apart from libtorrent
  {"op": "put_immutable", "session": 0, "value": "..."}  -> {"target", "num_success"}
  {"op": "get_immutable", "session": 0, "target": "<hex40>", "timeout": 10}
  {"op": "sample_infohashes", "session": 0, "addr": ["127.0.0.1", 7101], "target": "<hex40>"}
      -> BEP 51 to that one node: {"answered", "num", "samples", "interval", "num_nodes"}
  {"op": "stats", "session": 0}  -> dht.* session counters and routing table size
  {"op": "quit"}

libtorrent settings for a private DHT of many nodes on few ips
(shared/research/p2p-stack.md §4.3): no bootstrap routers, restrict
routing/search ips off, no LSD/UPnP/NAT-PMP, and dht_block_ratelimit raised
(its default of 5 packets/s per ip would ban an ip that several of our
nodes share).
"""
import ctypes
import hashlib
import json
import sys
import tempfile
import time
import warnings

import libtorrent as lt

warnings.simplefilter("ignore", DeprecationWarning)
sodium = ctypes.CDLL("libsodium.so.23")
sodium.sodium_init()

sessions = []
backlog = []  # per session: alerts popped but not consumed yet
announces = []  # per session: incoming announce_peer
save_dir = tempfile.mkdtemp(prefix="ltpeer")


def keypair(seed: bytes):
    pk = ctypes.create_string_buffer(32)
    sk = ctypes.create_string_buffer(64)
    sodium.crypto_sign_seed_keypair(pk, sk, seed)
    # libtorrent's 64-byte secret key is orlp/ed25519's expanded form
    h = bytearray(hashlib.sha512(seed).digest())
    h[0] &= 248
    h[31] &= 63
    h[31] |= 64
    return pk.raw, bytes(h)


def verify(sig: bytes, msg: bytes, pk: bytes) -> bool:
    return sodium.crypto_sign_verify_detached(sig, msg, ctypes.c_ulonglong(len(msg)), pk) == 0


def make_session(ip: str, port: int, extra: dict):
    cat = lt.alert.category_t
    settings = {
        "listen_interfaces": "%s:%d" % (ip, port),
        "enable_dht": True,
        "enable_lsd": False,
        "enable_upnp": False,
        "enable_natpmp": False,
        "dht_bootstrap_nodes": "",
        "dht_restrict_routing_ips": False,
        "dht_restrict_search_ips": False,
        "dht_block_ratelimit": 10000,
        "dht_upload_rate_limit": 1000000,
        "alert_mask": cat.dht_notification | cat.dht_operation_notification
        | cat.error_notification | cat.status_notification,
    }
    settings.update(extra)
    return lt.session(settings)


def pump(i: int) -> None:
    for a in sessions[i].pop_alerts():
        if isinstance(a, lt.dht_announce_alert):
            announces[i].append({"info_hash": str(a.info_hash), "peer": "%s:%d" % (a.ip, a.port)})
        backlog[i].append(a)


def wait_alert(i: int, pred, timeout: float):
    end = time.monotonic() + timeout
    while True:
        for k, a in enumerate(backlog[i]):
            if pred(a):
                del backlog[i][k]
                return a
        left = end - time.monotonic()
        if left <= 0:
            return None
        sessions[i].wait_for_alert(int(min(left, 0.2) * 1000) + 1)
        pump(i)


def node_id(i: int) -> bytes:
    st = sessions[i].dht_state()
    ids = st.get(b"node-id") or []
    return ids[0][:20] if ids else b""


def live_nodes(i: int):
    nid = node_id(i)
    backlog[i] = [a for a in backlog[i] if not isinstance(a, lt.dht_live_nodes_alert)]
    sessions[i].dht_live_nodes(lt.sha1_hash(nid))
    a = wait_alert(i, lambda a: isinstance(a, lt.dht_live_nodes_alert), 5)
    if a is None:
        return []
    return [[bytes(n["nid"].to_bytes()).hex() if hasattr(n["nid"], "to_bytes") else str(n["nid"]),
             "%s:%d" % tuple(n["endpoint"])] for n in a.nodes]


def counters(i: int) -> dict:
    backlog[i] = [a for a in backlog[i] if not isinstance(a, lt.session_stats_alert)]
    sessions[i].post_session_stats()
    a = wait_alert(i, lambda a: isinstance(a, lt.session_stats_alert), 5)
    out = {}
    if a is not None:
        values = a.values
        for m in lt.session_stats_metrics():
            if m.name.startswith("dht."):
                out[m.name] = values[m.name] if isinstance(values, dict) else values[m.value_index]
    backlog[i] = [a for a in backlog[i] if not isinstance(a, lt.dht_stats_alert)]
    sessions[i].post_dht_stats()
    st = wait_alert(i, lambda a: isinstance(a, lt.dht_stats_alert), 5)
    if st is not None:
        out["routing_table_nodes"] = sum(b["num_nodes"] for b in st.routing_table)
        out["routing_table_replacements"] = sum(b["num_replacements"] for b in st.routing_table)
    return out


def op_start(m):
    ip = m.get("ip", "127.0.0.1")
    out = []
    for port in m["ports"]:
        sessions.append(make_session(ip, port, m.get("settings", {})))
        backlog.append([])
        announces.append([])
    # wait until every DHT node is up (it has a node id)
    end = time.monotonic() + 10
    for i in range(len(sessions) - len(m["ports"]), len(sessions)):
        while not node_id(i) and time.monotonic() < end:
            time.sleep(0.05)
        out.append({"port": m["ports"][i - (len(sessions) - len(m["ports"]))],
                    "id": node_id(i).hex()})
    return {"nodes": out}


def op_add_nodes(m):
    for ip, port in m["nodes"]:
        sessions[m["session"]].add_dht_node((ip, int(port)))
    return {}


def op_announce(m):
    atp = lt.add_torrent_params()
    atp.info_hashes = lt.info_hash_t(lt.sha1_hash(bytes.fromhex(m["info_hash"])))
    atp.save_path = save_dir
    atp.flags &= ~(lt.torrent_flags.paused | lt.torrent_flags.auto_managed)
    sessions[m["session"]].add_torrent(atp)
    return {}


def op_get_peers(m):
    i = m["session"]
    ih = m["info_hash"]
    peers = set()
    end = time.monotonic() + m.get("timeout", 10)
    while time.monotonic() < end:
        sessions[i].dht_get_peers(lt.sha1_hash(bytes.fromhex(ih)))
        # replies come one alert per node that had peers; a lookup lasts a
        # few seconds at most on loopback
        round_end = min(end, time.monotonic() + 3)
        while time.monotonic() < round_end:
            a = wait_alert(i, lambda a: isinstance(a, lt.dht_get_peers_reply_alert)
                           and str(a.info_hash) == ih, round_end - time.monotonic())
            if a is None:
                break
            for p in a.peers():
                peers.add("%s:%d" % tuple(p))
            if m.get("want") in peers:
                return {"peers": sorted(peers)}
        if not m.get("want"):
            break
    return {"peers": sorted(peers)}


def op_put_mutable(m):
    i = m["session"]
    pk, sk = keypair(bytes.fromhex(m["seed"]))
    salt = m.get("salt", "").encode()
    backlog[i] = [a for a in backlog[i] if not isinstance(a, lt.dht_put_alert)]
    sessions[i].dht_put_mutable_item(sk, pk, m["value"].encode(), salt)
    a = wait_alert(i, lambda a: isinstance(a, lt.dht_put_alert) and a.public_key == pk,
                   m.get("timeout", 20))
    if a is None:
        return {"error": "no dht_put_alert"}
    return {"seq": a.seq, "num_success": a.num_success, "pk": pk.hex()}


def item_value(item):
    """The binding hands an item over as a dict with "value" (and key, seq,
    signature...) in it: the value itself, as libtorrent holds it."""
    if isinstance(item, dict):
        for k in (b"value", "value"):
            if k in item:
                return item[k]
    return item


def op_get_mutable(m):
    i = m["session"]
    pk = bytes.fromhex(m["pk"])
    salt = m.get("salt", "").encode()
    min_seq = m.get("min_seq", 0)
    end = time.monotonic() + m.get("timeout", 10)
    best = None
    while time.monotonic() < end:
        sessions[i].dht_get_mutable_item(pk, salt)
        while time.monotonic() < end:
            a = wait_alert(i, lambda a: isinstance(a, lt.dht_mutable_item_alert) and a.key == pk,
                           end - time.monotonic())
            if a is None:
                break
            try:
                item_value(a.item)
            except RuntimeError:  # "invalid type requested from entry": no item (yet)
                if a.authoritative:
                    break
                continue
            if best is None or a.seq >= best.seq:
                best = a
            if a.authoritative:
                break
        if best is not None and best.seq >= min_seq:
            break
        time.sleep(0.3)
    if best is None:
        return {"found": False}
    item = item_value(best.item)
    v = lt.bencode(item)
    signed = (b"4:salt%d:%s" % (len(salt), salt) if salt else b"") + b"3:seqi%de1:v" % best.seq + v
    value = item if isinstance(item, bytes) else None
    return {"found": True, "seq": best.seq, "value_hex": v.hex(),
            "value": value.decode("latin-1") if value is not None else None,
            "sig_ok": verify(best.signature, signed, pk), "authoritative": best.authoritative}


def op_put_immutable(m):
    i = m["session"]
    backlog[i] = [a for a in backlog[i] if not isinstance(a, lt.dht_put_alert)]
    target = sessions[i].dht_put_immutable_item(m["value"].encode())
    a = wait_alert(i, lambda a: isinstance(a, lt.dht_put_alert), m.get("timeout", 20))
    return {"target": str(target), "num_success": a.num_success if a else -1}


def op_get_immutable(m):
    i = m["session"]
    target = m["target"]
    end = time.monotonic() + m.get("timeout", 10)
    while time.monotonic() < end:
        sessions[i].dht_get_immutable_item(lt.sha1_hash(bytes.fromhex(target)))
        a = wait_alert(i, lambda a: isinstance(a, lt.dht_immutable_item_alert)
                       and str(a.target) == target, min(5, end - time.monotonic()))
        try:
            item = item_value(a.item) if a is not None else None
        except RuntimeError:  # no item: an undefined entry
            item = None
        if item is not None and lt.bencode(item) not in (b"", b"0:"):
            v = lt.bencode(item)
            return {"found": hashlib.sha1(v).hexdigest() == target, "value_hex": v.hex(),
                    "value": item.decode("latin-1") if isinstance(item, bytes) else None}
        time.sleep(0.3)
    return {"found": False}


def op_sample_infohashes(m):
    """BEP 51 to one node: {"answered", "num", "samples", "interval", "num_nodes"}."""
    i = m["session"]
    ip, port = m["addr"]
    sessions[i].dht_sample_infohashes((ip, int(port)), lt.sha1_hash(bytes.fromhex(m["target"])))
    a = wait_alert(i, lambda a: isinstance(a, lt.dht_sample_infohashes_alert)
                   and tuple(a.endpoint) == (ip, int(port)), m.get("timeout", 10))
    if a is None:
        return {"answered": False}
    return {"answered": True, "num": a.num_infohashes, "interval": a.interval.total_seconds()
            if hasattr(a.interval, "total_seconds") else a.interval,
            "samples": [str(x) for x in a.samples], "num_nodes": a.num_nodes}


def main() -> None:
    ops = {"start": op_start, "add_nodes": op_add_nodes, "announce": op_announce,
           "get_peers": op_get_peers, "put_mutable": op_put_mutable,
           "get_mutable": op_get_mutable, "put_immutable": op_put_immutable,
           "get_immutable": op_get_immutable, "sample_infohashes": op_sample_infohashes,
           "live_nodes": lambda m: {"nodes": live_nodes(m["session"])},
           "stats": lambda m: counters(m["session"]),
           "announces_received": lambda m: (pump(m["session"]),
                                            {"announces": announces[m["session"]]})[1]}
    print(json.dumps({"ready": True, "version": lt.__version__}), flush=True)
    for line in sys.stdin:
        if not line.strip():
            continue
        m = json.loads(line)
        if m["op"] == "quit":
            break
        try:
            out = ops[m["op"]](m)
        except Exception as e:  # reported to the driver, which fails the test
            out = {"error": "%s: %s" % (type(e).__name__, e)}
        print(json.dumps(out), flush=True)
    for s in sessions:
        s.pause()


if __name__ == "__main__":
    main()
