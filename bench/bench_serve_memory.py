"""Memory of a daemon serving a 1 GiB result to three peers at once.

Four hosts in network namespaces (tests/net/netlab.py).  A computes a
function whose result is a 1 GiB numpy array; B, C and D then call it at the
same moment, and each fetches it from A (the function takes 12 s on A, more
than the ~9 s a 1 GiB download is guessed to take on a fresh LAN link, so
each decides to fetch).  While they download, A's daemon's resident memory
(VmRSS, and its anonymous part RssAnon, from /proc) is sampled every 20 ms.

The blob is streamed from its file with pread into a 64 KiB window per
stream plus the transport's per-stream send buffer; nothing holds the blob.
The figure is the peak sampled VmRSS; the anchor is the size of the blob
served, so the ratio says what fraction of it was ever resident.

Aim (issue): under 64 MB resident.  Needs root.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "net"))
import _common as C  # noqa: E402

SIZE = int(os.environ.get("BENCH_SERVE_BYTES", str(1 << 30)))

MODULE = '''
import time
import numpy as np
import irohds

@irohds.memo(ns="bench")
def big(tag, nbytes):
    time.sleep(12.0)
    a = np.arange(nbytes // 8, dtype=np.uint64)
    a[0] = tag
    return a
'''

CALL = '''
import json, sys, time
import m_serve
tag, n = int(sys.argv[1]), int(sys.argv[2])
t = time.perf_counter()
a = m_serve.big(tag, n)
print(json.dumps({"dt": time.perf_counter() - t,
                  "ok": bool(a.nbytes == n and int(a[0]) == tag and int(a[-1]) == n // 8 - 1)}))
'''


def rss(pid: int) -> tuple[int, int]:
    """(VmRSS, RssAnon) in bytes."""
    vals = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, v = line.partition(":")
            if k in ("VmRSS", "RssAnon"):
                vals[k] = int(v.split()[0]) * 1024
    return vals.get("VmRSS", 0), vals.get("RssAnon", 0)


def main() -> int:
    C.header(f"bench_serve_memory: A serves a {SIZE >> 20} MiB result to 3 peers at once")
    if os.geteuid() != 0:
        print("  skipped: needs root (network namespaces)")
        return 0
    from netlab import Lab

    with Lab(4) as lab, C.tmp_dir() as code:
        a, peers = lab.hosts[0], lab.hosts[1:]
        C.write_module(code, "m_serve", MODULE)
        a.start_daemon()
        for h in peers:
            h.start_daemon(bootstrap=[a])
        for h in lab.hosts:
            h.python("import irohds; irohds.join('bench')")
        env = dict(a.env(), PYTHONPATH=code)
        a.run([sys.executable, "-c", CALL, "1", str(SIZE)], env=env, timeout=600)
        time.sleep(2.0)
        pid = json.loads(a.cli("info", "--json").stdout)["pid"]
        before = rss(pid)

        samples: list[tuple[int, int]] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.is_set():
                samples.append(rss(pid))
                time.sleep(0.02)

        th = threading.Thread(target=sample)
        th.start()
        procs = [h.popen([sys.executable, "-c", CALL, "1", str(SIZE)],
                         env=dict(h.env(), PYTHONPATH=code), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True) for h in peers]
        outs = [p.communicate(timeout=900) for p in procs]
        stop.set()
        th.join()
        results = [json.loads(o.strip().splitlines()[-1]) for o, _ in outs]
        fetched = sum("stored a result of m_serve.big from peers" in h.log() for h in peers)

    if not all(r["ok"] for r in results):
        raise RuntimeError("a peer got wrong bytes")
    peak = max(s[0] for s in samples)
    peak_anon = max(s[1] for s in samples)
    C.info(f"A before serving: VmRSS {C.fmt_bytes(before[0])} (anon {C.fmt_bytes(before[1])})")
    C.info(f"A while serving: peak VmRSS {C.fmt_bytes(peak)}, peak anon "
           f"{C.fmt_bytes(peak_anon)}, {len(samples)} samples")
    C.info(f"{fetched} of 3 peers fetched (the others computed); call times "
           + ", ".join(f"{r['dt']:.2f} s" for r in results))
    C.report_amount("daemon memory serving 1 GiB to 3 peers (peak VmRSS)", peak, "B",
                    "the blob served", SIZE, "< 64 MB", peak < 64e6)
    return 0


if __name__ == "__main__":
    sys.exit(main())
