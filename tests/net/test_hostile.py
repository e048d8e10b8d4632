"""Hostile peers: real daemons on separate hosts, and a purpose-built bad
peer (tests/net/helpers/evil_peer.c) on a host of its own that joins their
namespace and misbehaves in one way per test.

Each test checks what the honest daemon *did*, never only that it is still
up: a bad announcement must not stop a local computation (the host's marker
file shows it computed), the daemon's PEERS JSON must count the drop for the
right reason (so the bad messages did arrive and were judged), and an
honest result must still travel between honest hosts meanwhile.  A control
test runs the same peer serving a *good* blob, so the corrupt-serving test
fails for the corruption alone.

Run against the ASan daemon with IROHDS_TEST_DAEMON (see the Makefile's
test-net-asan target)."""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import threading
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional

import pytest

from netlab import EVIL_PEER, Host, Lab
from test_p2p import (CALL, MODULE, call, computed, expected_sha, join, mark, peers_in,
                      spawn_call, wait_for)

pytestmark = pytest.mark.skipif(not os.path.exists(EVIL_PEER),
                                reason=f"evil_peer not built ({EVIL_PEER})")


@pytest.fixture
def code(usercode: Path) -> Path:
    (usercode / "m_lab.py").write_text(MODULE)
    return usercode


# ------------------------------------------------------------------ helpers

class Evil:
    """evil_peer on its own host (no daemon there), bootstrapping into the
    namespace through `via`."""

    def __init__(self, host: Host, via: Host) -> None:
        self.host = host
        self.via = via
        self.keyfile = host.home / "evil.key"
        self.keyfile.write_bytes(os.urandom(32))
        r = host.run([EVIL_PEER, "--key", str(self.keyfile), "id"])
        self.id = r.stdout.strip()
        self.proc: Optional[subprocess.Popen] = None
        self.report: Dict = {}

    def start(self, mode: str, *args: str, duration: float = 20, ns: str = "lab") -> None:
        self.errlog = open(self.host.home / "evil.log", "w")
        self.proc = self.host.popen(
            [EVIL_PEER, "--key", str(self.keyfile), "--listen", f"{self.host.addr}:4433",
             "--bootstrap", self.via.peer_spec(), "--ns", ns, "--mode", mode,
             "--duration", str(duration), *args],
            stdout=subprocess.PIPE, stderr=self.errlog, text=True)

    def log(self) -> str:
        return (self.host.home / "evil.log").read_text(errors="replace")

    def wait_acting(self, timeout: float = 20) -> None:
        wait_for(lambda: "from now on" in self.log(), timeout, "the evil peer to be let in")

    def stop(self, timeout: float = 60) -> Dict:
        """SIGTERM (the peer reports what it did and exits); the report."""
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.terminate()
        out, _ = self.proc.communicate(timeout=timeout)
        self.errlog.close()
        lines = [ln for ln in out.splitlines() if ln.startswith("{")]
        assert lines, f"evil_peer printed no report; its log:\n{self.log()[-3000:]}"
        self.report = json.loads(lines[-1])
        return self.report


def peers_json(h: Host) -> Dict:
    return json.loads(h.cli("peers", "--json").stdout)


def dropped(h: Host) -> Dict[str, int]:
    p = peers_json(h)
    d = dict(p["dropped"])
    d["total"] = p["dropped_messages"]
    return d


def key_of(h: Host, code: Path, x: int, seconds: float, size: int) -> str:
    """The cache key a CALL of m_lab.work(x, ...) uses (hex)."""
    r = h.python(f"import m_lab; print(m_lab.work._irohds.key(({x},), "
                 f"{{'seconds': {seconds}, 'size': {size}}}).hex())", cwd=code)
    return r.stdout.strip()


def wait_explained(h: Host, code: Path, x: int, seconds: float, size: int,
                   pred: Callable[[Dict], bool], timeout: float, what: str) -> None:
    """Until pred holds of h's EXPLAIN of CALL(x, ...): what h's daemon knows,
    observed, rather than a fixed sleep for a message to travel (sleeps lost
    that race under ASan with a flood on two cores)."""
    script = ("import json, irohds, m_lab\n"
              f"r = irohds.explain(m_lab.work, {x}, seconds={seconds}, size={size})\n"
              "print('JSON ' + json.dumps(r))\n")

    def holds() -> bool:
        out = h.python(script, cwd=code).stdout
        return pred(json.loads(out.rpartition("JSON ")[2]))
    wait_for(holds, timeout, what)


def wait_claim_seen(h: Host, code: Path, x: int, seconds: float, size: int, claimer: Host,
                    timeout: float = 20) -> None:
    """Until h's daemon holds claimer's claim on CALL(x, ...)."""
    wait_explained(h, code, x, seconds, size,
                   lambda r: bool(r.get("claim")) and r["claim"].get("node") == claimer.make_id(),
                   timeout, f"{h.name} to hold {claimer.name}'s claim")


def stored_keys(h: Host) -> List[str]:
    """Key prefixes `irohds-daemon ls` shows."""
    lines = h.cli("ls").stdout.splitlines()[1:]
    return [ln.split()[1] for ln in lines if ln.strip()]


def result_file(path: Path, x: int, size: int) -> Path:
    """The blob a daemon would store for m_lab.work(x, size=size): the
    honest bytes, for an evil peer to serve (or to corrupt)."""
    from irohds import _result

    block = hashlib.sha256(str(x).encode()).digest() * 8
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _result.dump({"x": x, "blob": block * (size // 256)}, fd)
    finally:
        os.close(fd)
    return path


def blob_files(h: Host) -> List[str]:
    return [p.name for p in (h.home / "store" / "blobs").rglob("*") if p.is_file()]


def rss_kib(h: Host) -> int:
    pid = h.info()["pid"]
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def honest_pair(lab_factory, n: int = 3) -> Lab:
    """A and B (honest, one topic), and a host for the evil peer."""
    lab = lab_factory(n)
    a, b = lab.hosts[0], lab.hosts[1]
    a.start_daemon()
    b.start_daemon(bootstrap=[a])
    join(a)
    join(b)
    wait_for(lambda: peers_in(b) >= 1 and peers_in(a) >= 1, 15, "A and B in the topic")
    return lab


def honest_transfer(a: Host, b: Host, code: Path, x: int, size: int = 1000) -> Dict:
    """A computes x; B must get it from A (not compute it) within 10 s."""
    before_a, before_b = computed(a), computed(b)
    call(a, code, x, seconds=3, size=size)
    assert computed(a) == before_a + 1
    # A's HAVE spreads; when the first copy came through a relay over its
    # budget, the next comes by PlumTree's IHave and graft (80 ms later).
    wait_explained(b, code, x, 3, size,
                   lambda r: any(p.get("node") == a.make_id() for p in r["providers"]),
                   10, f"B to know A's result {x}")
    t = time.monotonic()
    out = call(b, code, x, seconds=3, size=size)
    dt = time.monotonic() - t
    assert computed(b) == before_b, f"B computed {x} although A had it"
    assert dt < 10, f"B took {dt:.1f} s to get an honest result"
    return out


# -------------------------------------------------------- bad announcements

BAD = [
    ("bad-producer-sig", "bad_signature", "have_bad_producer_sig"),
    ("bad-provider-sig", "bad_signature", "have_bad_provider_sig"),
    ("wrong-ns", "wrong_namespace", "have_wrong_ns"),
    ("stale", "stale", "have_stale"),
]


@pytest.mark.parametrize("mode,reason,sent", BAD, ids=[m for m, _, _ in BAD])
def test_a_bad_announcement_is_ignored_and_counted(lab_factory, code: Path, mode: str,
                                                    reason: str, sent: str) -> None:
    lab = honest_pair(lab_factory)
    a, b, e = lab.hosts
    if mode == "wrong-ns":
        join(b, "elsewhere")  # B is in that namespace too: the topic still decides
    x, seconds, size = 101, 2, 1000
    key = key_of(b, code, x, seconds, size)
    evil = Evil(e, via=b)
    base = dropped(b)
    # The HAVEs name the real result's blob, and the peer serves it well to
    # whoever asks: the flaw of each mode is the only reason to refuse them.
    blob = result_file(e.home / "result.blob", x, size)
    evil.start(mode, "--cache-key", key, "--rate", "10", "--blob", str(blob),
               "--compute-s", "30")
    evil.wait_acting()
    # The bad HAVEs reach B and are refused for the right reason.
    wait_for(lambda: dropped(b)[reason] >= base[reason] + 5, 15,
             f"B to drop {mode} HAVEs as {reason}")
    # B's GET of that key computes locally: nothing usable was announced.
    call(b, code, x, seconds=seconds, size=size)
    assert computed(b) == 1, "B did not compute although only bad HAVEs named the key"
    assert any(key.startswith(k) for k in stored_keys(b)), "the evil peer targeted another key"
    assert "fetching a result" not in b.log()
    # And B still works with its honest peer while the bad peer goes on.
    honest_transfer(a, b, code, 102)
    report = evil.stop()
    assert report["sent"].get(sent, 0) >= 5, report
    d = dropped(b)
    assert d[reason] - base[reason] >= 5
    if mode == "bad-provider-sig":  # both kinds: a flipped signature, another node's name
        assert report["sent"].get("have_forged_provider", 0) >= 5, report
    # everything B refused was one of the bad peer's messages
    assert d["total"] - base["total"] <= sum(report["sent"].values()), (d, report)
    # A and B never asked the bad peer for anything
    assert report["gets"] == 0 and report["gets_other"] == 0, report


# ------------------------------------------------------------ blob serving

def serving_peer(lab: Lab, code: Path, mode: str, x: int, size: int, nkeys: int = 1,
                 value_x: Optional[int] = None) -> tuple:
    """An evil peer announcing itself as producer of m_lab.work(x) (and of
    nkeys - 1 more keys of the same blob), serving the result of
    m_lab.work(value_x) (default x) well (serve-good) or with a byte of each
    group flipped (serve-corrupt)."""
    b, e = lab.hosts[1], lab.hosts[2]
    keys = [key_of(b, code, x + i, 0, size) for i in range(nkeys)]
    blob = result_file(e.home / "result.blob", x if value_x is None else value_x, size)
    evil = Evil(e, via=b)
    args = ["--blob", str(blob), "--compute-s", "30"]
    for k in keys:
        args += ["--cache-key", k]
    evil.start(mode, *args)
    evil.wait_acting()
    return evil, keys, blob


def test_control_an_evil_peer_serving_good_bytes_is_used(lab_factory, code: Path) -> None:
    """The control for the corrupt test below: the same peer, the same
    announcement, honest bytes: B downloads instead of computing."""
    lab = honest_pair(lab_factory)
    b = lab.hosts[1]
    evil, keys, _ = serving_peer(lab, code, "serve-good", 201, 100_000)
    time.sleep(1)  # a HAVE or two reach B
    out = call(b, code, 201, seconds=0, size=100_000)
    assert computed(b) == 0, "B computed although a peer served the result"
    assert out["sha"] == expected_sha(201, 100_000)
    report = evil.stop()
    assert report["gets_by"].get(b.make_id()) == 1, report
    assert "stored a result of m_lab.work from peers" in b.log()


def test_a_peer_serving_corrupt_bytes_is_detected_and_not_asked_again(lab_factory,
                                                                      code: Path) -> None:
    lab = honest_pair(lab_factory)
    a, b = lab.hosts[0], lab.hosts[1]
    size = 100_000
    # (the blob is another value's, so B's own result never shares its hash)
    evil, keys, _ = serving_peer(lab, code, "serve-corrupt", 301, size, nkeys=2, value_x=9301)
    time.sleep(1)
    out = call(b, code, 301, seconds=0, size=size)
    assert computed(b) == 1, "B did not compute after the only provider sent bad bytes"
    assert out["sha"] == expected_sha(301, size)
    log = b.log()
    assert "fail verification" in log, log[-3000:]
    assert evil.id[:16] in log
    # The same blob for another key: B knows that peer lied about it and
    # does not ask again; it computes at once.
    call(b, code, 302, seconds=0, size=size)
    assert computed(b) == 2
    report = evil.stop()
    evil_blob = report["blob"]
    assert report["gets_by"].get(b.make_id()) == 1, f"B asked the lying peer again: {report}"
    assert log.count("fetching a result") == b.log().count("fetching a result") == 1
    # Nothing of the bad download was kept: no blob under the announced hash,
    # no temporary file left behind.
    assert not [f for f in blob_files(b) if f.startswith(evil_blob)], blob_files(b)
    assert not list((b.home / "store" / "tmp").iterdir())
    # B goes on working with its honest peer.
    honest_transfer(a, b, code, 303)


def test_a_corrupt_provider_beside_an_honest_one_is_cut_off(lab_factory, code: Path) -> None:
    """A holds the result, the evil peer re-announces A's HAVE as a second
    provider and serves the same blob corrupted.  The blob is large enough to
    be split between both providers, so B must meet the bad half, drop it,
    and finish from A."""
    size = 20 << 20
    lab = honest_pair(lab_factory)
    a, b, e = lab.hosts
    key = key_of(b, code, 401, 5, size)
    evil = Evil(e, via=b)
    evil.start("serve-corrupt", "--relay", "--cache-key", key, "--blob",
               str(result_file(e.home / "result.blob", 401, size)), duration=60)
    evil.wait_acting()
    call(a, code, 401, seconds=5, size=size)
    wait_for(lambda: "relaying it" in evil.log(), 15, "the evil peer to hear A's HAVE")
    time.sleep(1)  # its relayed HAVE reaches B
    out = call(b, code, 401, seconds=5, size=size)
    assert computed(b) == 0, "B computed although an honest provider had it"
    assert out["sha"] == expected_sha(401, size)
    log = b.log()
    assert "fail verification" in log, log[-3000:]
    assert f"provider {evil.id[:16]} failed" in log
    assert "stored a result of m_lab.work from peers" in log
    report = evil.stop()
    assert report["gets_by"].get(b.make_id(), 0) >= 1, report


def test_a_lying_producer_does_not_hide_an_honest_result(lab_factory, code: Path) -> None:
    """A computed the result and B knows it.  Then the bad peer announces
    itself as producer of another blob for the same key (newer, so it is
    tried first) and serves it corrupted.  B must drop it and fetch A's."""
    lab = honest_pair(lab_factory)
    a, b = lab.hosts[0], lab.hosts[1]
    size = 100_000
    call(a, code, 801, seconds=5, size=size)
    time.sleep(0.5)  # A's HAVE reaches B
    key = key_of(b, code, 801, 5, size)
    e = lab.hosts[2]
    evil = Evil(e, via=b)
    evil.start("serve-corrupt", "--cache-key", key, "--compute-s", "30",
               "--blob", str(result_file(e.home / "result.blob", 9801, size)))
    evil.wait_acting()
    time.sleep(1)  # its HAVEs reach B
    out = call(b, code, 801, seconds=5, size=size)
    assert out["sha"] == expected_sha(801, size)
    report = evil.stop()
    assert report["gets_by"].get(b.make_id()) == 1, report  # it was tried, once
    assert computed(b) == 0, "B computed although A's result was announced"
    log = b.log()
    assert "fail verification" in log, log[-3000:]
    assert "stored a result of m_lab.work from peers" in log


def test_a_bogus_have_does_not_cancel_an_honest_claim(lab_factory, code: Path) -> None:
    """A computes K and claims it.  The bad peer keeps announcing K (another
    blob, served corrupted).  B tries the bad peer, which fails; A's claim
    must still stand, so B waits for A instead of computing K too."""
    lab = honest_pair(lab_factory)
    a, b, e = lab.hosts
    size = 1000
    key = key_of(b, code, 811, 8, size)
    evil = Evil(e, via=b)
    evil.start("serve-corrupt", "--cache-key", key, "--compute-s", "30", "--rate", "10",
               "--blob", str(result_file(e.home / "result.blob", 9811, 100_000)), duration=60)
    evil.wait_acting()
    slow = spawn_call(a, code, 811, seconds=8, size=size)
    wait_for(lambda: computed(a) == 1, 30, "A to start computing")
    time.sleep(1)  # A's claim, and the bad peer's HAVEs after it, reach B
    t = time.monotonic()
    call(b, code, 811, seconds=8, size=size)
    waited = time.monotonic() - t
    assert slow.wait(timeout=60) == 0, slow.stderr.read()
    report = evil.stop()
    assert computed(b) == 0, f"B computed although A had claimed it (after {waited:.1f} s)"
    assert report["gets_by"].get(b.make_id()) == 1, report


def test_a_result_announced_in_another_namespace_is_not_used(lab_factory, code: Path) -> None:
    """The bad peer, in namespace "other" (which B joined too), announces a
    result it produced, correctly signed for "other", under the key of a
    call in "lab".  B's call in "lab" must compute: namespaces do not mix.
    The same peer's result for a call in "other" is fetched: the control."""
    lab = honest_pair(lab_factory)
    b, e = lab.hosts[1], lab.hosts[2]
    (code / "m_other.py").write_text(MODULE.replace('ns="lab"', 'ns="other"'))
    join(b, "other")
    size = 1000
    key_lab = key_of(b, code, 901, 0, size)
    key_other = b.python(f"import m_other; print(m_other.work._irohds.key((902,), "
                         f"{{'seconds': 0, 'size': {size}}}).hex())", cwd=code).stdout.strip()
    assert key_lab != key_other
    evil = Evil(e, via=b)
    # (the blob is m_other.work(902)'s: were it taken for m_lab.work(901),
    # B's call would also return a wrong value)
    evil.start("serve-good", "--cache-key", key_lab, "--cache-key", key_other,
               "--compute-s", "30", "--blob", str(result_file(e.home / "result.blob", 902, size)),
               ns="other")
    evil.wait_acting()
    time.sleep(1)
    call(b, code, 901, seconds=0, size=size)
    assert computed(b) == 1, "B used a result announced in another namespace"
    r = b.python(CALL.format(x=902, seconds=0, size=size).replace("m_lab", "m_other"),
                 cwd=code, MARK=str(mark(b)))
    assert json.loads(r.stdout.strip().splitlines()[-1])["sha"] == expected_sha(902, size)
    assert computed(b) == 1, "B computed the call in \"other\" although the peer served it"
    report = evil.stop()
    assert report["gets_by"].get(b.make_id()) == 1, report


class _RunsCode:
    """Unpickling this calls os.mkdir(path): a stand-in for any code a
    hostile producer can make a plain pickle.load run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_a_pickle_from_an_untrusted_producer_runs_no_code(lab_factory, code: Path) -> None:
    """docs/security.md: a result from a peer is unpickled with plain pickle
    only when its producer is trusted; otherwise plain data only, and the
    call computes locally.  The bad peer serves a well-formed, correctly
    hashed result whose pickle calls os.mkdir when loaded."""
    from irohds import _result

    lab = honest_pair(lab_factory)
    b, e = lab.hosts[1], lab.hosts[2]
    planted = b.home / "planted-by-a-peer"
    blob = e.home / "result.blob"
    fd = os.open(blob, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        _result.dump(_RunsCode(str(planted)), fd)
    finally:
        os.close(fd)
    evil = Evil(e, via=b)
    evil.start("serve-good", "--cache-key", key_of(b, code, 951, 0, 1000), "--compute-s", "30",
               "--blob", str(blob))
    evil.wait_acting()
    time.sleep(1)
    b.python(CALL.format(x=951, seconds=0, size=1000), cwd=code, check=False, MARK=str(mark(b)))
    report = evil.stop()
    assert report["gets_by"].get(b.make_id()) == 1, report  # B did download it
    assert not planted.exists(), "loading a peer's result ran the peer's code on B"
    assert computed(b) == 1, "B should compute rather than use an untrusted pickle"


def test_a_provider_that_hangs_is_given_up_on(lab_factory, code: Path) -> None:
    """A holds the result; the bad peer announces its own (newer, so tried
    first) and answers Gets with silence.  B gives up on it after the stall
    timeout (3 s) and fetches A's instead: a few seconds late, not stuck,
    not computing."""
    lab = honest_pair(lab_factory)
    a, b, e = lab.hosts
    call(a, code, 851, seconds=5)
    time.sleep(0.5)
    evil = Evil(e, via=b)
    evil.start("serve-stall", "--cache-key", key_of(b, code, 851, 5, 1000), "--compute-s", "30",
               "--blob", str(result_file(e.home / "result.blob", 9851, 1000)))
    evil.wait_acting()
    time.sleep(1)
    t = time.monotonic()
    call(b, code, 851, seconds=5)
    dt = time.monotonic() - t
    report = evil.stop()
    assert report["gets_by"].get(b.make_id()) == 1, report
    assert computed(b) == 0, "B computed although A had the result"
    assert dt < 10, f"B took {dt:.1f} s"
    assert f"provider {evil.id[:16]} failed a download" in b.log()


# ------------------------------------------------------------------- flood

@pytest.mark.flood
@pytest.mark.parametrize("signers", [1, 1000], ids=["one-signer", "made-up-signers"])
def test_a_flood_is_rate_limited_and_memory_stays_bounded(lab_factory, code: Path,
                                                          signers: int) -> None:
    """Valid QUERY, HAVE and CLAIM messages for random keys at 3000 a second,
    signed by the bad peer or by keys it made up; it is a neighbour of both
    honest hosts, so it also relays their messages to each other, first.
    B's memory stays bounded, the flood is counted as rate limited, and
    honest results still travel from A to B meanwhile."""
    lab = honest_pair(lab_factory)
    a, b, e = lab.hosts
    evil = Evil(e, via=b)
    rss0 = rss_kib(b)
    base = dropped(b)
    evil.start("flood", "--rate", "3000", "--signers", str(signers), duration=30)
    evil.wait_acting()
    samples: List[int] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            try:
                samples.append(rss_kib(b))
            except (OSError, AssertionError):
                pass
            stop.wait(0.5)

    t = threading.Thread(target=sample)
    t.start()
    try:
        time.sleep(5)  # the flood is on
        assert dropped(b)["rate_limited"] > base["rate_limited"], "no flood reached B"
        # Honest results still travel while the flood goes on.
        for x in (501, 502, 503):
            honest_transfer(a, b, code, x)
        time.sleep(3)
    finally:
        stop.set()
        t.join()
    report = evil.stop()
    sent = sum(report["sent"].values())
    assert sent > 20_000, report
    d = dropped(b)
    assert d["rate_limited"] - base["rate_limited"] > sent // 2, (d, report)
    peak = max(samples)
    assert peak - rss0 < 64 * 1024, f"B's RSS grew from {rss0} to {peak} KiB"
    # no growth in the second half of the flood beyond noise
    half = samples[len(samples) // 2:]
    assert max(half) - min(half) < 16 * 1024, samples
    assert b.info()["running"]


@pytest.mark.flood
@pytest.mark.parametrize("signers", [1, 1000], ids=["one-signer", "made-up-signers"])
def test_a_flood_relayed_by_an_honest_peer_does_not_silence_that_peer(lab_factory, code: Path,
                                                                      signers: int) -> None:
    """The bad peer talks to A alone, so B hears its flood only as A relays
    it (gossip relays before anyone verifies), signed by the bad peer or by
    keys it made up.  A's own announcements must still reach B: each honest
    result below travels from A to B, none is computed by B."""
    lab = honest_pair(lab_factory)
    a, b, e = lab.hosts
    evil = Evil(e, via=a)
    base = dropped(b)
    evil.start("flood", "--rate", "1800", "--only-bootstrap", "--signers", str(signers),
               duration=60)
    evil.wait_acting()
    wait_for(lambda: dropped(b)["rate_limited"] > base["rate_limited"] + 2000, 20,
             "B to refuse part of the relayed flood")
    for x in range(511, 516):
        honest_transfer(a, b, code, x)
    report = evil.stop()
    assert report["max_neighbors"] == 1, report  # it never spoke to B itself
    assert sum(report["sent"].values()) > 10_000, report


@pytest.mark.flood
@pytest.mark.parametrize("life", [0, 2], ids=["dead-on-arrival", "dead-after-2s"])
def test_dead_claims_from_a_flood_do_not_crowd_out_a_live_one(lab_factory, code: Path,
                                                              life: int) -> None:
    """More claims than B keeps (4096) from made-up claimers, each dead on
    arrival or 2 s later: B must still take A's live claim and wait for A
    rather than compute the same thing."""
    lab = honest_pair(lab_factory)
    a, b, e = lab.hosts
    evil = Evil(e, via=b)
    evil.start("flood", "--kinds", "claim", "--claim-life", str(life), "--signers", "1000",
               "--rate", "1000", duration=90)
    evil.wait_acting()
    # B takes 200 relayed messages a second after a burst of 2000: its table
    # of 4096 claims is full after ~11 s.
    time.sleep(16)
    slow = spawn_call(a, code, 701, seconds=6)
    wait_for(lambda: computed(a) == 1, 20, "A to start computing")
    wait_claim_seen(b, code, 701, 6, 1000, claimer=a)  # not crowded out by the dead ones
    t = time.monotonic()
    call(b, code, 701, seconds=6)
    waited = time.monotonic() - t
    assert slow.wait(timeout=60) == 0, slow.stderr.read()
    assert computed(b) == 0, "B computed although A had claimed it"
    assert waited > 1.5, f"B answered in {waited:.2f} s: it cannot have waited for A"
    report = evil.stop()
    assert report["sent"]["claim"] > 10_000, report


# ----------------------------------------------------------------- garbage

def test_garbage_does_not_stop_local_clients_or_honest_peers(lab_factory, code: Path) -> None:
    lab = honest_pair(lab_factory)
    a, b, e = lab.hosts
    evil = Evil(e, via=b)
    base = dropped(b)
    evil.start("garbage", "--rate", "300", duration=25)
    evil.wait_acting()
    time.sleep(3)
    # local client: a miss computes and stores, a second call is a hit
    call(b, code, 601, seconds=0)
    call(b, code, 601, seconds=0)
    assert computed(b) == 1
    # honest peers: both directions
    honest_transfer(a, b, code, 602)
    honest_transfer(b, a, code, 603)
    time.sleep(3)
    report = evil.stop()
    for kind in ("garbage_frame", "oversized_frame", "random_stream", "random_bidi_stream",
                 "garbage_content", "bogus_shuffle", "bad_blob_request", "udp_junk"):
        assert report["sent"].get(kind, 0) > 0, f"the evil peer sent no {kind}: {report}"
    d = dropped(b)
    assert d["gossip_streams"] > base["gossip_streams"], d
    assert d["malformed"] > base["malformed"], d
    assert b.info()["running"] and a.info()["running"]
    honest_transfer(a, b, code, 604)  # and after it
