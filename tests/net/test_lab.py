"""The lab itself: hosts reach each other over the bridge and nothing else,
each runs its own daemon, and teardown leaves no namespace behind."""
from __future__ import annotations

import subprocess

from netlab import PREFIX, Lab


def namespaces() -> str:
    return subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout


def test_hosts_talk_over_the_bridge_only(lab_factory) -> None:
    lab: Lab = lab_factory(3)
    a, b, c = lab.hosts
    # a UDP datagram from a reaches b at b's bridge address
    srv = b.spawn_python("""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("0.0.0.0", 9999)); s.settimeout(10)
        data, addr = s.recvfrom(100)
        print(data.decode(), addr[0])
    """)
    a.python(f"""
        import socket, time
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        for _ in range(50):
            s.sendto(b"hello", ("{b.addr}", 9999)); time.sleep(0.05)
    """)
    out, err = srv.communicate(timeout=20)
    assert out.split() == ["hello", a.addr], err
    # a host has no route anywhere but its /24: 192.0.2.1 (TEST-NET-1) is unreachable
    r = a.python("""
        import socket
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            s.sendto(b"x", ("192.0.2.1", 9)); print("sent")
        except OSError as e:
            print("errno", e.errno)
    """)
    assert r.stdout.strip() == "errno 101"  # ENETUNREACH


def test_each_host_runs_its_own_daemon_and_teardown_is_complete() -> None:
    with Lab(2) as lab:
        a, b = lab.hosts
        a.start_daemon()
        b.start_daemon(bootstrap=[a])
        ia, ib = a.info(), b.info()
        assert ia["running"] and ib["running"]
        assert ia["node_id"] == a.node_id and ib["node_id"] == b.node_id
        assert ia["node_id"] != ib["node_id"]
        assert f'"{a.node_id}@{a.addr}:4433"' in (b.home / "config.toml").read_text()
        tag = lab.tag
        assert tag in namespaces()
    assert tag not in namespaces()
    assert not any(line.startswith(PREFIX) and tag in line for line in namespaces().splitlines())
