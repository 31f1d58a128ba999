"""Real captures and real sockets: tcpdump -w on lo, `replay` into UDP listeners,
`decode` of what tcpdump wrote, and replay into a real syslog-ng when the
harness is there.

Everything stays on loopback; ports are picked free at run time.
"""

import os
import pathlib
import select
import shutil
import socket
import struct
import subprocess
import time

import pytest

from syslogng_netconsole.ingest import capture as pcap
from syslogng_netconsole.ingest.capture import PcapWriter

from harness.sng import wait_for

REPO = pathlib.Path(__file__).resolve().parent.parent.parent
PYTHON = "/usr/bin/python3"


def cli(*args, timeout=60, input_=None):
    return subprocess.run([PYTHON, "-m", "syslogng_netconsole"] + [str(a) for a in args],
                          cwd=str(REPO), capture_output=True, timeout=timeout, input=input_)


def free_udp_port(addr="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    with socket.socket(fam, socket.SOCK_DGRAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def listener(addr="127.0.0.1"):
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 << 20)
    s.bind((addr, 0))
    return s


def drain(sock, want, timeout=10.0):
    got = []
    end = time.monotonic() + timeout
    while len(got) < want and time.monotonic() < end:
        r, _, _ = select.select([sock], [], [], max(0.0, end - time.monotonic()))
        if r:
            data, src = sock.recvfrom(65535)
            got.append((src[0], src[1], data))
    return got


# --------------------------------------------------------------------------
# captures written by a real tcpdump


def tcpdump_capture(tmp_path, flags, sends, name="cap.pcap", v6=False):
    """Run tcpdump with ``flags`` on a port of our own, perform ``sends``
    [(src_addr, payload)] to a listener on that port, return (path, port, t0, t1)."""
    tcpdump = shutil.which("tcpdump") or "/usr/bin/tcpdump"
    if not os.path.exists(tcpdump):
        pytest.skip("tcpdump is not installed (tests/install-deps.sh installs it)")
    dst = "::1" if v6 else "127.0.0.1"
    rx = listener(dst)
    port = rx.getsockname()[1]
    path = tmp_path / name
    proc = subprocess.Popen([tcpdump, "-n", "-U", "-c", str(len(sends)), "-w", str(path)]
                            + flags + ["udp and dst port %d" % port],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        # tcpdump says "listening on ..." once its capture is armed
        # (raw reads: a buffered readline would hide a second line from select)
        seen = b""
        end = time.monotonic() + 15
        while b"listening on" not in seen and time.monotonic() < end:
            r, _, _ = select.select([proc.stderr], [], [], 1.0)
            if r:
                chunk = os.read(proc.stderr.fileno(), 4096)
                if not chunk:
                    break
                seen += chunk
        if b"listening on" not in seen:
            proc.kill()
            proc.wait()
            pytest.fail("tcpdump did not start: %r" % seen)
        t0 = time.time()
        for src, payload in sends:
            fam = socket.AF_INET6 if v6 else socket.AF_INET
            with socket.socket(fam, socket.SOCK_DGRAM) as s:
                s.bind((src, 0))
                s.sendto(payload, (dst, port))
            time.sleep(0.01)
        t1 = time.time()
        proc.wait(timeout=15)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stderr.close()
        rx.close()
    assert proc.returncode == 0
    return path, port, t0, t1


def linktype(path):
    head = path.read_bytes()[:24]
    return struct.unpack("<I", head[20:24])[0]


CAPTURE_VARIANTS = [
    # flags, expected link type, nanosecond magic
    (["-i", "lo"], pcap.LINKTYPE_ETHERNET, False),
    (["-i", "lo", "--nano"], pcap.LINKTYPE_ETHERNET, True),
    (["-i", "any"], pcap.LINKTYPE_LINUX_SLL2, False),
    (["-i", "any", "-y", "LINUX_SLL"], pcap.LINKTYPE_LINUX_SLL, False),
]


@pytest.mark.parametrize("flags,link,nano", CAPTURE_VARIANTS,
                         ids=["lo-ethernet", "lo-nano", "any-sll2", "any-sll"])
def test_reads_real_tcpdump_capture(tmp_path, flags, link, nano):
    sends = [("127.0.0.2", b"6,1,100,-;first from .2\n"),
             ("127.0.0.3", b"[    1.000000] plain from .3\n"),
             ("127.0.0.2", b"6,2,200,-;second from .2\n" + b"z" * 900)]
    path, port, t0, t1 = tcpdump_capture(tmp_path, flags, sends)
    assert linktype(path) == link
    magic = struct.unpack("<I", path.read_bytes()[:4])[0]
    assert magic == (pcap.PCAP_MAGIC_NS if nano else pcap.PCAP_MAGIC_US)
    with pcap.CaptureReader(str(path)) as r:
        pkts = list(r)
    assert [(p.src_ip, p.dst_ip, p.dst_port, p.payload) for p in pkts] == \
        [(s, "127.0.0.1", port, d) for s, d in sends]
    for p in pkts:
        assert t0 - 1 <= p.ts <= t1 + 1
    assert pkts[0].ts <= pkts[1].ts <= pkts[2].ts
    assert r.warnings == [] and r.counters["malformed"] == 0


def test_reads_real_tcpdump_ipv6_capture(tmp_path):
    sends = [("::1", b"6,1,100,-;over ipv6\n")]
    path, port, _t0, _t1 = tcpdump_capture(tmp_path, ["-i", "lo"], sends, v6=True)
    [p] = list(pcap.read_packets(str(path)))
    assert (p.src_ip, p.dst_ip, p.dst_port, p.payload) == ("::1", "::1", port, sends[0][1])


@pytest.mark.parametrize("iface", ["lo", "any"])
def test_decode_real_tcpdump_capture(tmp_path, iface):
    sends = [("127.0.0.2", b"6,1,1000000,-;hello from two\n"),
             ("127.0.0.3", b"[    2.000000] plain from three\n"),
             ("127.0.0.2", b"6,2,2000000,-;bye from two\n")]
    path, _port, _t0, _t1 = tcpdump_capture(tmp_path, ["-i", iface], sends)
    res = cli("decode", path)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.decode().splitlines()
    two = [ln for ln in lines if ln.startswith("127.0.0.2: ")]
    three = [ln for ln in lines if ln.startswith("127.0.0.3: ")]
    assert len(two) == 2 and "hello from two" in two[0] and "bye from two" in two[1]
    assert len(three) == 1 and "plain from three" in three[0]


# --------------------------------------------------------------------------
# replay


def write_capture(path, items):
    with PcapWriter(str(path)) as w:
        for it in items:
            w.write(*it)


def mixed_capture(path):
    """Three hosts (one with two streams, one IPv6), interleaved, plus DNS noise."""
    items = []
    t = 1700000000.0
    for i in range(20):
        t += 0.001
        items.append((t, "10.0.0.5", 6665, "10.0.0.1", 6666, b"6,%d,%d,-;ext a %d\n"
                      % (i, i * 1000, i)))
        if i % 2 == 0:
            items.append((t, "10.0.0.6", 6665, "10.0.0.1", 6666, b"[ %d.0] b %d\n" % (i, i)))
        if i % 4 == 0:
            items.append((t, "10.0.0.5", 7777, "10.0.0.1", 6666, b"[ %d.0] plain a %d\n"
                          % (i, i)))
            items.append((t, "fe80::1", 6665, "fe80::2", 6666, b"6,%d,1,-;v6 %d\n" % (i, i)))
            items.append((t, "10.0.0.9", 5353, "10.0.0.1", 53, b"not netconsole"))
    write_capture(path, items)
    return [it for it in items if it[4] == 6666]


def test_replay_maps_senders_to_loopback_addresses_in_order(tmp_path):
    cap = tmp_path / "mixed.pcap"
    items = mixed_capture(cap)
    rx = listener()
    try:
        res = cli("replay", cap, "--to", "127.0.0.1:%d" % rx.getsockname()[1],
                  "--speed", "0", "--port", "6666")
        assert res.returncode == 0, res.stderr
        got = drain(rx, len(items))
    finally:
        rx.close()
    assert len(got) == len(items)
    # first appearance order: 10.0.0.5, 10.0.0.6, fe80::1
    host_of = {"10.0.0.5": "127.0.0.2", "10.0.0.6": "127.0.0.3", "fe80::1": "127.0.0.4"}
    streams = {}
    for src, sport, data in got:
        streams.setdefault((src, sport), []).append(data)
    expect = {}
    for it in items:
        expect.setdefault((host_of[it[1]], it[2]), []).append(it[5])
    # each original stream arrives from one socket on its host's address, in order
    assert sorted(streams.values()) == sorted(expect.values())
    for (src, _sport), datas in streams.items():
        orig = [k for k, v in expect.items() if v == datas]
        assert orig and orig[0][0] == src
    # 10.0.0.5's two streams share 127.0.0.2 but keep separate source ports
    ports_5 = {sp for (s, sp) in streams if s == "127.0.0.2"}
    assert len(ports_5) == 2
    out = res.stdout.decode()
    assert "10.0.0.5:6665 -> from 127.0.0.2:" in out and ": sent 20" in out
    assert "fe80::1:6665 -> from 127.0.0.4:" in out
    assert "total: %d datagrams from 4 senders" % len(items) in out
    assert b"not replayed: other_port=5" in res.stderr       # the DNS noise, counted


def timed_replay(cap, rx, speed, want):
    """Run replay while receiving; return [(arrival time, payload)]."""
    proc = subprocess.Popen([PYTHON, "-m", "syslogng_netconsole", "replay", str(cap), "--to",
                             "127.0.0.1:%d" % rx.getsockname()[1], "--speed", speed],
                            cwd=str(REPO), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    got = []
    end = time.monotonic() + 20
    while len(got) < want and time.monotonic() < end:
        r, _, _ = select.select([rx], [], [], 0.5)
        if r:
            got.append((time.monotonic(), rx.recv(65535)))
    out, err = proc.communicate(timeout=20)
    assert proc.returncode == 0, err
    return got


def test_two_captures_into_one_collector_with_their_own_source_base(tmp_path):
    cap = tmp_path / "mixed.pcap"
    items = mixed_capture(cap)
    rx = listener()
    try:
        to = "127.0.0.1:%d" % rx.getsockname()[1]
        for base in ("127.0.0.2", "127.0.1.2"):
            res = cli("replay", cap, "--to", to, "--speed", "0", "--port", "6666",
                      "--source-base", base)
            assert res.returncode == 0, res.stderr
        got = drain(rx, 2 * len(items))
    finally:
        rx.close()
    # the same three original senders, twice, from two sets of addresses
    assert sorted({src for src, _p, _d in got}) == [
        "127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.1.2", "127.0.1.3", "127.0.1.4"]
    assert len(got) == 2 * len(items)


def test_replay_paces_by_capture_time(tmp_path):
    cap = tmp_path / "slow.pcap"
    write_capture(cap, [(100.0, "10.0.0.5", 6665, "10.0.0.1", 6666, b"a\n"),
                        (100.6, "10.0.0.5", 6665, "10.0.0.1", 6666, b"b\n"),
                        (101.2, "10.0.0.5", 6665, "10.0.0.1", 6666, b"c\n")])
    rx = listener()
    try:
        got = timed_replay(cap, rx, "2", 3)      # 0.6 s of capture per gap at speed 2
        assert [d for _t, d in got] == [b"a\n", b"b\n", b"c\n"]
        # 1.2 s of capture at speed 2: paced from the start, so only a late first
        # datagram could shorten the span
        span = got[-1][0] - got[0][0]
        assert 0.45 <= span < 3, span
        assert got[1][0] - got[0][0] >= 0.15
        got = timed_replay(cap, rx, "0", 3)
        assert len(got) == 3 and got[-1][0] - got[0][0] < 0.25
    finally:
        rx.close()


def test_replay_to_ipv6_loopback(tmp_path):
    cap = tmp_path / "c.pcap"
    write_capture(cap, [(1.0, "10.0.0.5", 6665, "10.0.0.1", 6666, b"one\n"),
                        (1.0, "10.0.0.6", 6665, "10.0.0.1", 6666, b"two\n")])
    rx = listener("::1")
    try:
        res = cli("replay", cap, "--to", "[::1]:%d" % rx.getsockname()[1], "--speed", "0")
        assert res.returncode == 0, res.stderr
        got = drain(rx, 2)
    finally:
        rx.close()
    assert sorted(d for _s, _p, d in got) == [b"one\n", b"two\n"]
    assert {s for s, _p, _d in got} == {"::1"}
    assert b"2 original hosts were sent from this machine's address" in res.stderr
    assert len({p for _s, p, _d in got}) == 2      # one socket per original sender


@pytest.mark.parametrize("args,msg", [
    (["--to", "nonsense"], b"--to must be HOST:PORT"),
    (["--to", "::1:80"], b"brackets"),
    (["--to", "127.0.0.1:0"], b"--to must be HOST:PORT"),
    (["--to", "127.0.0.1:9", "--speed", "-1"], b"--speed must be >= 0"),
    (["--to", "127.0.0.1:9", "--source-base", "127.0.1.255"], b"--source-base must be"),
    (["--to", "127.0.0.1:9", "--source-base", "10.0.0.2"], b"--source-base must be"),
])
def test_replay_rejects_bad_arguments(tmp_path, args, msg):
    cap = tmp_path / "c.pcap"
    write_capture(cap, [])
    res = cli("replay", cap, *args)
    assert res.returncode == 2 and msg in res.stderr


def test_replay_unreadable_input(tmp_path):
    bad = tmp_path / "bad.pcap"
    bad.write_bytes(b"this is not a capture at all")
    port = free_udp_port()
    res = cli("replay", bad, "--to", "127.0.0.1:%d" % port)
    assert res.returncode == 1
    assert b"bad.pcap: offset 0: not a pcap or pcapng capture" in res.stderr
    res = cli("replay", tmp_path / "missing.pcap", "--to", "127.0.0.1:%d" % port)
    assert res.returncode == 1 and b"missing.pcap: cannot open" in res.stderr


# --------------------------------------------------------------------------
# replay into a real syslog-ng running the project's config


def fleet_capture(path):
    """Three hosts as a collector would capture them: extended records with
    ncfrag fragments, a plain host with a line cut at 1000 bytes, an IPv6 host."""
    items = []
    t = 1700000000.0

    def add(src, payload, dt=0.002):
        nonlocal t
        t += dt
        dst = "2001:db8::1" if ":" in src else "10.0.0.1"
        items.append((t, src, 6665, dst, 6666, payload))

    long_text = b"L" * 1200
    body = long_text + b"\n SUBSYSTEM=pci\n"
    frag_room = 1000 - len(b"4,12,3000000,-,ncfrag=0/%d;" % len(body))
    add("10.0.0.5", b"6,10,1000000,-;first record of five\n")
    add("10.0.0.6", b"[    5.000000] plain host up\n")
    add("10.0.0.5", b"6,11,2000000,-;second record of five\n")
    add("10.0.0.5", b"4,12,3000000,-,ncfrag=0/%d;%s" % (len(body), body[:frag_room]))
    add("2001:db8::7", b"6,1,100,-;ipv6 host here\n")
    add("10.0.0.5", b"4,12,3000000,-,ncfrag=%d/%d;%s" % (frag_room, len(body),
                                                        body[frag_room:]))
    cut = b"[    6.000000] " + b"P" * 985
    add("10.0.0.6", cut)
    add("10.0.0.6", b"REST\n", dt=0.0005)
    add("10.0.0.5", b"6,13,4000000,-;last record of five\n")
    add("10.0.0.6", b"[    7.000000] plain host down\n")
    write_capture(path, items)
    return items


@pytest.mark.syslogng
def test_replay_into_syslogng_matches_decode(tmp_path, start_sng):
    cap = tmp_path / "fleet.pcap"
    fleet_capture(cap)
    sng = start_sng()
    res = cli("replay", cap, "--to", "127.0.0.1:%d" % sng.port, "--speed", "1")
    assert res.returncode == 0, res.stderr
    # senders in order of first appearance: 10.0.0.5, 10.0.0.6, 2001:db8::7
    expect = {
        "127.0.0.2": ["[    1.000000] first record of five",
                      "[    2.000000] second record of five",
                      "[    3.000000] " + "L" * 1200,
                      "[    4.000000] last record of five"],
        "127.0.0.3": ["[    5.000000] plain host up",
                      "[    6.000000] " + "P" * 985 + "REST",
                      "[    7.000000] plain host down"],
        "127.0.0.4": ["[    0.000100] ipv6 host here"],
    }
    for host, lines in expect.items():
        got = wait_for(lambda: len(sng.log_lines(host)) >= len(lines) and sng.log_lines(host),
                       timeout=15, message="%s.log: %r" % (host, sng.read_log(host)))
        assert got == lines
    # `decode` of the same capture prints the same records per original host
    dec = cli("decode", cap)
    assert dec.returncode == 0, dec.stderr
    out = dec.stdout.decode().splitlines()
    orig = {"127.0.0.2": "10.0.0.5", "127.0.0.3": "10.0.0.6", "127.0.0.4": "2001:db8::7"}
    for host, lines in expect.items():
        mine = [ln[len(orig[host]) + 2:] for ln in out if ln.startswith(orig[host] + ": ")]
        assert mine == lines


def burst_capture(path, per_host=800):
    """Three busy hosts interleaved: extended (some records fragmented), extended
    with a release prefix, plain (some lines cut at 1000 bytes)."""
    items = []
    t = 1700000000.0
    hosts = ["10.1.0.1", "10.1.0.2", "10.1.0.3"]
    for i in range(per_host):
        for h, src in enumerate(hosts):
            t += 0.0001
            ts = 1000000 + i * 1000
            if h == 2:
                text = b"[%5d.%06d] plain %d " % (ts // 10**6, ts % 10**6, i)
                if i % 50 == 7:             # a line longer than 1000 bytes: two datagrams
                    line = text + b"p" * 1100 + b"\n"
                    items.append((t, src, 6665, "10.1.0.100", 6666, line[:1000]))
                    items.append((t, src, 6665, "10.1.0.100", 6666, line[1000:]))
                else:
                    items.append((t, src, 6665, "10.1.0.100", 6666, text + b"x" * 60 + b"\n"))
                continue
            head = b"6.12.0," if h == 1 else b""
            head += b"6,%d,%d,-" % (i + 1, ts)
            if i % 40 == 3:                 # a fragmented record
                body = b"record %d " % i + b"F" * 1500 + b"\n SUBSYSTEM=net\n"
                room = 900
                for off in range(0, len(body), room):
                    items.append((t, src, 6665, "10.1.0.100", 6666, head + b",ncfrag=%d/%d;"
                                  % (off, len(body)) + body[off:off + room]))
            else:
                items.append((t, src, 6665, "10.1.0.100", 6666,
                              head + b";record %d of host %d\n" % (i, h)))
    write_capture(path, items)
    return len(items)


@pytest.mark.syslogng
def test_replay_burst_at_full_speed_into_syslogng(tmp_path, start_sng):
    cap = tmp_path / "burst.pcap"
    n = burst_capture(cap)
    sng = start_sng()
    dec = cli("decode", cap)
    assert dec.returncode == 0, dec.stderr
    want = {}
    for ln in dec.stdout.decode().splitlines():
        host, text = ln.split(": ", 1)
        want.setdefault(host, []).append(text)
    assert sorted(len(v) for v in want.values()) == [800, 800, 800]
    res = cli("replay", cap, "--to", "127.0.0.1:%d" % sng.port, "--speed", "0")
    assert res.returncode == 0, res.stderr
    assert ("total: %d datagrams from 3 senders" % n).encode() in res.stdout
    for orig, host in (("10.1.0.1", "127.0.0.2"), ("10.1.0.2", "127.0.0.3"),
                       ("10.1.0.3", "127.0.0.4")):
        got = wait_for(lambda: len(sng.log_lines(host)) >= 800 and sng.log_lines(host),
                       timeout=30, message="%s: %d lines" % (host, len(sng.log_lines(host))))
        assert got == want[orig]


def test_replayer_bounds_open_sockets_and_keeps_addresses():
    from syslogng_netconsole.cli.replay import Replayer
    rx = listener()
    rep = Replayer("127.0.0.1", rx.getsockname()[1], max_sockets=3)
    try:
        order = [("10.9.0.%d" % (i % 7 + 1), i) for i in range(70)]
        for src, i in order:
            rep.send(src, 6665, b"%s %d" % (src.encode(), i))
            assert len(rep.socks) <= 3
        got = drain(rx, len(order))
    finally:
        rep.close()
        rx.close()
    assert len(got) == 70
    for src_addr, _port, data in got:
        orig, i = data.split()
        # 10.9.0.k -> 127.0.0.(k+1): first appearance order is 10.9.0.1, .2, ...
        assert src_addr == "127.0.0.%d" % (int(orig.split(b".")[-1]) + 1)
    per_orig = {}
    for _s, _p, data in got:
        orig, i = data.split()
        per_orig.setdefault(orig, []).append(int(i))
    assert all(v == sorted(v) for v in per_orig.values())
    assert rep.reopened > 0 and sum(rep.sent.values()) == 70
    assert "total: 70 datagrams from 7 senders" in rep.summary()[-1]
