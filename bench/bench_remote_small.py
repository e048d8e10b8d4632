"""A small result from a peer whose address is known but not yet connected.

Hosts in network namespaces on one bridge (tests/net/netlab.py).  Host A
computes a few results of a 1 s function (small values: a dict of ~1 KB)
and announces them; the consumer hosts are in the namespace, so they know
who holds what and A's address, but none has a blobs connection to A yet.
Each consumer then calls the function once: the call becomes a QUIC
handshake to A, a verified download, a store put and a load.  Timed from the
call to the returned value, in a fresh process (the store open included).

Before that, each consumer runs irohds.explain on the function once: it
computes the function's identity (parsing its source, the one-time cost of a
function's first call on a machine, kept in the data dir afterwards) and asks
the daemon, but opens no connection to A.  So the figure is what a missing
connection costs, not what a function never seen on this machine costs; the
latter is printed too, from one more consumer that skips the explain.

A second call per consumer, for another key, measures the same with the
connection to A already up.

Anchor, same run, same link: a TCP connect + one 1 KB request/response
round trip from a consumer to A (the least any network fetch can cost), in a
fresh process as well.

Aim (issue): at most 10 ms from the call to the value.  Needs root.
"""
from __future__ import annotations

import json
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "net"))
import _common as C  # noqa: E402

CONSUMERS = int(os.environ.get("BENCH_SMALL_CONSUMERS", "5"))

MODULE = '''
import time
import irohds

@irohds.memo(ns="bench")
def small(x):
    time.sleep(1.0)          # an expensive step: a download beats it
    return {"x": x, "payload": list(range(100))}
'''

CALL = '''
import json, sys, time
t0 = time.perf_counter()
import m_small
x = int(sys.argv[1])
t = time.perf_counter()
v = m_small.small(x)
dt = time.perf_counter() - t
print(json.dumps({"dt": dt, "ok": v == {"x": x, "payload": list(range(100))}}))
'''

ECHO_SERVER = '''
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("0.0.0.0", 9200)); s.listen(64)
print("ready", flush=True)
while True:
    c, _ = s.accept()
    data = c.recv(2048)
    c.sendall(b"r" * 1024)
    c.close()
'''

ECHO_CLIENT = '''
import json, socket, sys, time
t = time.perf_counter()
c = socket.create_connection((sys.argv[1], 9200))
c.sendall(b"q" * 64)
got = 0
while got < 1024:
    d = c.recv(4096)
    if not d:
        break
    got += len(d)
c.close()
print(json.dumps({"dt": time.perf_counter() - t, "ok": got == 1024}))
'''


EXPLAIN = '''
import irohds, m_small, sys
irohds.explain(m_small.small, int(sys.argv[1]))
print('{"ok": true}')
'''


def run_json(host, script: str, *args: str, cwd: str = "") -> dict:
    env = host.env()
    if cwd:
        env["PYTHONPATH"] = cwd
    r = host.run([sys.executable, "-c", script, *args], env=env, timeout=120)
    out = json.loads(r.stdout.strip().splitlines()[-1])
    if not out.get("ok"):
        raise RuntimeError(f"{host.name}: wrong result: {r.stdout}\n{r.stderr}")
    return out


def main() -> int:
    C.header("bench_remote_small: a small result from a known, not yet connected peer")
    if os.geteuid() != 0:
        print("  skipped: needs root (network namespaces)")
        return 0
    import subprocess

    from netlab import Lab

    with Lab(2 + CONSUMERS) as lab, C.tmp_dir() as code:
        a, consumers, fresh = lab.hosts[0], lab.hosts[1:-1], lab.hosts[-1]
        C.write_module(code, "m_small", MODULE)
        a.start_daemon()
        for h in consumers + [fresh]:
            h.start_daemon(bootstrap=[a])
        for h in lab.hosts:
            h.python("import irohds; irohds.join('bench')")
        for x in range(2 * CONSUMERS + 1):
            run_json(a, CALL, str(x), cwd=code)  # A computes and announces
        time.sleep(2.0)  # announcements and RTT samples settle

        cold, warm = [], []
        for i, h in enumerate(consumers):
            run_json(h, EXPLAIN, str(i), cwd=code)  # identity known here; no connection to A
            cold.append(run_json(h, CALL, str(i), cwd=code)["dt"])
            warm.append(run_json(h, CALL, str(CONSUMERS + i), cwd=code)["dt"])
        first_ever = run_json(fresh, CALL, str(2 * CONSUMERS), cwd=code)["dt"]
        for line in fresh.log().splitlines():
            if "m_small.small" in line:
                C.info("fresh consumer: " + line.split("] ", 1)[-1][:160])
        computed = sum("computing m_small.small here" in h.log() for h in consumers + [fresh])

        srv = a.popen([sys.executable, "-c", ECHO_SERVER], stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline().strip() == "ready"
        tcp = [run_json(h, ECHO_CLIENT, a.addr)["dt"] for h in consumers for _ in range(3)]
        srv.kill()

    C.info(f"not yet connected: {C.fmt_dist(cold)}")
    C.info(f"connected:         {C.fmt_dist(warm)}")
    C.info(f"not connected, and the function's first call on that machine: "
           f"{C.fmt_time(first_ever)}")
    C.info(f"TCP connect + 1 KB round trip (fresh process): {C.fmt_dist(tcp)}")
    if computed:
        C.info(f"WARNING: {computed} consumer(s) computed instead of fetching")
    m = C.median(cold)
    C.report("small result from a known, not connected peer (call to value)", m,
             "TCP connect + round trip", C.median(tcp), "<= 10 ms", m <= 0.010)
    C.report("small result from a connected peer (call to value)", C.median(warm),
             "TCP connect + round trip", C.median(tcp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
