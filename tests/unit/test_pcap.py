"""pcap/pcapng reader and pcap writer.

Frames and files are built here by hand (independently of the writer) and, for
pcapng, also with dpkt (an independent implementation, Debian's python3-dpkt).
Captures made by a real tcpdump are read in tests/integration/test_cli_replay.py.
"""

import io
import random
import socket
import struct

import pytest
from hypothesis import given, settings, strategies as st

from syslogng_netconsole.ingest import capture as pcap
from syslogng_netconsole.ingest.capture import CaptureReader, Packet, PcapError, PcapWriter

# --------------------------------------------------------------------------
# independent builders


def csum(data):
    """RFC 1071 checksum, written out long-hand (not pcap._checksum)."""
    if len(data) % 2:
        data += b"\0"
    total = 0
    for i in range(0, len(data), 2):
        total += (data[i] << 8) + data[i + 1]
    while total > 0xFFFF:
        total = (total & 0xFFFF) + (total >> 16)
    return 0xFFFF - total


def udp(sport, dport, payload, length=None):
    return struct.pack("!HHHH", sport, dport, 8 + len(payload) if length is None else length,
                       0) + payload


def ipv4(src, dst, body, proto=17, frag=0, total=None):
    return struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + len(body) if total is None else total,
                       1, frag, 64, proto, 0, socket.inet_aton(src),
                       socket.inet_aton(dst)) + body


def ipv6(src, dst, body, nxt=17, plen=None):
    return struct.pack("!IHBB16s16s", 6 << 28, len(body) if plen is None else plen, nxt, 32,
                       socket.inet_pton(socket.AF_INET6, src),
                       socket.inet_pton(socket.AF_INET6, dst)) + body


def eth(l3, ethertype=0x0800, tags=()):
    head = b"\x02" * 6 + b"\x04" * 6
    for tpid, vid in tags:
        head += struct.pack("!HH", tpid, vid)
    return head + struct.pack("!H", ethertype) + l3


def sll(l3, proto=0x0800):
    # packet type 0 (to us), ARPHRD_ETHER, address length 6, address padded to 8
    return struct.pack("!HHH8sH", 0, 1, 6, b"\x02" * 6, proto) + l3


def sll2(l3, proto=0x0800):
    return struct.pack("!HHIHBB8s", proto, 0, 1, 1, 0, 6, b"\x02" * 6) + l3


def pcap_file(frames, link=1, endian="<", nano=False, snaplen=262144):
    """frames: [(ts_sec, ts_frac, frame[, orig_len])]"""
    magic = 0xA1B23C4D if nano else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, snaplen, link)
    for f in frames:
        sec, frac, frame = f[:3]
        orig = f[3] if len(f) > 3 else len(frame)
        out += struct.pack(endian + "IIII", sec, frac, len(frame), orig) + frame
    return out


def block(e, btype, body):
    body += b"\0" * (-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(e + "II", btype, n) + body + struct.pack(e + "I", n)


def shb(e="<"):
    return block(e, 0x0A0D0D0A, struct.pack(e + "IHHq", 0x1A2B3C4D, 1, 0, -1))


def opt(e, code, val):
    return struct.pack(e + "HH", code, len(val)) + val + b"\0" * (-len(val) % 4)


def idb(e, link, tsresol=None, tsoffset=None, snap=0):
    opts = b""
    if tsresol is not None:
        opts += opt(e, 9, bytes([tsresol]))
    if tsoffset is not None:
        opts += opt(e, 14, struct.pack(e + "q", tsoffset))
    if opts:
        opts += opt(e, 0, b"")
    return block(e, 1, struct.pack(e + "HHI", link, 0, snap) + opts)


def epb(e, iface, ticks, frame):
    return block(e, 6, struct.pack(e + "IIIII", iface, ticks >> 32, ticks & 0xFFFFFFFF,
                                   len(frame), len(frame)) + frame)


def read(data):
    r = CaptureReader(io.BytesIO(data), name="test.pcap")
    return list(r), r


def dgram(payload=b"6,1,2,-;hello\n", src="10.0.0.5", dst="10.0.0.1", sport=6665, dport=6666):
    return ipv4(src, dst, udp(sport, dport, payload))


# --------------------------------------------------------------------------
# classic pcap


@pytest.mark.parametrize("endian", ["<", ">"])
@pytest.mark.parametrize("nano", [False, True])
def test_pcap_byte_orders_and_resolutions(endian, nano):
    frac = 123456789 if nano else 123456
    data = pcap_file([(1700000000, frac, eth(dgram()))], endian=endian, nano=nano)
    pkts, r = read(data)
    assert r.format == "pcap"
    assert pkts == [Packet(pytest.approx(1700000000.123456789 if nano else 1700000000.123456,
                                         abs=1e-6), "10.0.0.5", 6665, "10.0.0.1", 6666,
                           b"6,1,2,-;hello\n")]


LINKS = [
    ("ethernet", 1, lambda l3, et: eth(l3, et)),
    ("vlan", 1, lambda l3, et: eth(l3, et, tags=[(0x8100, 42)])),
    ("qinq", 1, lambda l3, et: eth(l3, et, tags=[(0x88A8, 7), (0x8100, 42)])),
    ("sll", 113, lambda l3, et: sll(l3, et)),
    ("sll2", 276, lambda l3, et: sll2(l3, et)),
    ("raw", 101, lambda l3, et: l3),
    ("ipv4/ipv6 link", None, lambda l3, et: l3),
    ("bsd null", 0, lambda l3, et: struct.pack("<I", 2 if et == 0x0800 else 10) + l3),
    ("openbsd loop", 108, lambda l3, et: struct.pack(">I", 2 if et == 0x0800 else 24) + l3),
]


@pytest.mark.parametrize("name,link,wrap", LINKS, ids=[x[0] for x in LINKS])
@pytest.mark.parametrize("family", ["ipv4", "ipv6"])
def test_link_types(name, link, wrap, family):
    if family == "ipv4":
        l3, et, src, dst = dgram(b"x"), 0x0800, "10.0.0.5", "10.0.0.1"
    else:
        src, dst = "2001:db8::5", "2001:db8::1"
        l3, et = ipv6(src, dst, udp(6665, 6666, b"x")), 0x86DD
    if link is None:
        link = 228 if family == "ipv4" else 229
    pkts, r = read(pcap_file([(1, 0, wrap(l3, et))], link=link))
    assert [(p.src_ip, p.src_port, p.dst_ip, p.dst_port, p.payload) for p in pkts] == \
        [(src, 6665, dst, 6666, b"x")]
    assert r.counters["udp"] == 1


def test_ethernet_padding_is_not_payload():
    frame = eth(dgram(b"ab")) + b"\0" * 20      # padded to the 60-byte minimum
    pkts, _ = read(pcap_file([(1, 0, frame)]))
    assert pkts[0].payload == b"ab"


def test_skipped_frames_are_counted():
    tcp = ipv4("10.0.0.5", "10.0.0.1", b"\0" * 20, proto=6)
    arp = eth(b"\0" * 28, ethertype=0x0806)
    frames = [
        (1, 0, eth(tcp)),
        (1, 1, arp),
        (1, 2, eth(dgram(), tags=[(0x8100, 1)])),
        (1, 3, eth(b"\x45" + b"\0" * 5)),                 # cut IPv4 header
        (1, 4, eth(ipv4("10.0.0.5", "10.0.0.1", b"\0\1\0\2\0\4\0\0"))),   # UDP len < 8
    ]
    pkts, r = read(pcap_file(frames))
    assert len(pkts) == 1
    c = r.counters
    assert (c["frames"], c["udp"], c["not_udp"], c["not_ip"], c["malformed"]) == (5, 1, 1, 1, 2)


def test_unsupported_link_type_is_counted():
    pkts, r = read(pcap_file([(1, 0, b"whatever")], link=147))
    assert pkts == [] and r.counters["unsupported_link"] == 1


def test_ipv4_fragments():
    body = udp(6665, 6666, b"A" * 16, length=8 + 40)      # first of a 40-byte payload
    first = ipv4("10.0.0.5", "10.0.0.1", body, frag=0x2000)
    later = ipv4("10.0.0.5", "10.0.0.1", b"B" * 24, frag=3)     # offset 24 bytes
    pkts, r = read(pcap_file([(1, 0, eth(first)), (1, 1, eth(later))]))
    assert [p.payload for p in pkts] == [b"A" * 16]
    assert r.counters["first_fragments"] == 1 and r.counters["ip_fragments"] == 1


def test_ipv6_extension_headers_are_walked():
    src, dst = "fe80::1", "fe80::2"
    payload = udp(6665, 6666, b"v6 text\n")
    hop = struct.pack("!BB", 60, 0) + b"\x01\x04\0\0\0\0"          # -> dest opts, 8 bytes
    dstopt = struct.pack("!BB", 44, 1) + b"\0" * 14                 # -> fragment, 16 bytes
    frag_first = struct.pack("!BBHI", 17, 0, 0x0000, 99)            # offset 0, M=0 (atomic)
    pkts, r = read(pcap_file([(5, 0, eth(ipv6(src, dst, hop + dstopt + frag_first + payload,
                                              nxt=0), 0x86DD))]))
    assert [(p.src_ip, p.payload) for p in pkts] == [("fe80::1", b"v6 text\n")]
    frag_later = struct.pack("!BBHI", 17, 0, 185 << 3, 99)
    tcp = ipv6(src, dst, b"\0" * 20, nxt=6)
    pkts, r = read(pcap_file([(5, 0, eth(ipv6(src, dst, frag_later + b"x" * 16, nxt=44),
                                         0x86DD)), (5, 1, eth(tcp, 0x86DD))]))
    assert pkts == [] and r.counters["ip_fragments"] == 1 and r.counters["not_udp"] == 1


def test_snapped_datagram_is_yielded_cut_and_counted():
    frame = eth(dgram(b"y" * 100))
    pkts, r = read(pcap_file([(1, 0, frame[:80], len(frame))], snaplen=80))
    assert pkts[0].payload == b"y" * (80 - 14 - 20 - 8)
    assert r.counters["snapped"] == 1


# --------------------------------------------------------------------------
# pcapng


@pytest.mark.parametrize("e", ["<", ">"])
def test_pcapng_interfaces_resolutions_and_blocks(e):
    v6 = ipv6("2001:db8::5", "2001:db8::1", udp(6665, 6666, b"on sll2"))
    data = (shb(e) + idb(e, 1) + idb(e, 276, tsresol=9) + idb(e, 101, tsresol=0x80 | 10,
                                                            tsoffset=1000)
            + epb(e, 0, 1700000000_250000, eth(dgram(b"on eth")))
            + block(e, 4, b"\0" * 8)                                 # name resolution
            + epb(e, 1, 1700000001_000000500, sll2(v6, 0x86DD))
            + epb(e, 2, 3 * 1024, dgram(b"on raw"))
            + block(e, 5, struct.pack(e + "III", 0, 0, 0))           # interface statistics
            + block(e, 0x80000001, b"custom"))
    pkts, r = read(data)
    assert r.format == "pcapng"
    assert [p.payload for p in pkts] == [b"on eth", b"on sll2", b"on raw"]
    assert pkts[0].ts == pytest.approx(1700000000.25)
    assert pkts[1].ts == pytest.approx(1700000001.0000005, abs=1e-6)
    assert pkts[1].src_ip == "2001:db8::5"
    assert pkts[2].ts == pytest.approx(1003.0)


def test_pcapng_simple_and_obsolete_packet_blocks_and_new_section():
    e = "<"
    spb = block(e, 3, struct.pack(e + "I", len(eth(dgram(b"spb")))) + eth(dgram(b"spb")))
    opb = block(e, 2, struct.pack(e + "HHIIII", 0, 0, 0, 2_000_000,
                                  len(eth(dgram(b"opb"))), len(eth(dgram(b"opb"))))
                + eth(dgram(b"opb")))
    # a second section in the other byte order starts with no interfaces
    data = shb(e) + idb(e, 1) + spb + opb + shb(">") + idb(">", 113) + \
        epb(">", 0, 7_000_000, sll(dgram(b"sec2")))
    pkts, _ = read(data)
    assert [(p.payload, p.ts) for p in pkts] == [(b"spb", 0.0), (b"opb", 2.0),
                                                 (b"sec2", 7.0)]


def test_pcapng_written_by_dpkt():
    dpkt = pytest.importorskip("dpkt")      # python3-dpkt, listed in install-deps.sh
    from dpkt import pcapng as ng
    buf = io.BytesIO()
    w = ng.Writer(buf, idb=[ng.InterfaceDescriptionBlockLE(linktype=1, snaplen=65535),
                            ng.InterfaceDescriptionBlockLE(linktype=113, snaplen=65535)])
    w.writepkt_time(eth(dgram(b"first")), 1700000000.5)
    w.writepkt(ng.EnhancedPacketBlockLE(iface_id=1, pkt_data=sll(dgram(b"second", "10.0.0.9")),
                                        caplen=len(sll(dgram(b"second", "10.0.0.9"))),
                                        pkt_len=len(sll(dgram(b"second", "10.0.0.9")))),
               ts=1700000001.0)
    assert dpkt.__name__ == "dpkt"
    pkts, r = read(buf.getvalue())
    assert [(p.src_ip, p.payload, p.ts) for p in pkts] == \
        [("10.0.0.5", b"first", 1700000000.5), ("10.0.0.9", b"second", 1700000001.0)]


def test_pcapng_errors_name_file_and_offset():
    with pytest.raises(PcapError, match=r"test.pcap: offset 0: not a pcap or pcapng"):
        read(idb("<", 1) + epb("<", 0, 1, b""))       # no section header first
    with pytest.raises(PcapError, match=r"test.pcap: offset 0: .*cut short"):
        read(shb()[:20])
    bad_trailer = bytearray(shb() + idb("<", 1))
    bad_trailer[-1] ^= 0xFF
    with pytest.raises(PcapError, match=r"offset 28: .*trailer"):
        read(bytes(bad_trailer))
    with pytest.raises(PcapError, match=r"undeclared interface 3"):
        read(shb() + idb("<", 1) + epb("<", 3, 1, eth(dgram())))


# --------------------------------------------------------------------------
# truncation and garbage


def _three_packet_captures():
    frames = [eth(dgram(b"p%d" % i)) for i in range(3)]
    classic = pcap_file([(1, i, f) for i, f in enumerate(frames)])
    ng_ = shb() + idb("<", 1) + b"".join(epb("<", 0, i, f) for i, f in enumerate(frames))
    return [classic, ng_]


@pytest.mark.parametrize("which", [0, 1], ids=["pcap", "pcapng"])
def test_every_truncation_stops_cleanly_or_names_the_offset(which):
    full = _three_packet_captures()[which]
    header = 24 if which == 0 else 28
    for cut in range(len(full)):
        data = full[:cut]
        try:
            pkts, r = read(data)
        except PcapError as exc:
            assert cut < header, "cut at %d raised %s" % (cut, exc)
            assert "test.pcap" in str(exc)
            continue
        assert cut >= header
        payloads = [p.payload for p in pkts]
        assert payloads == [b"p0", b"p1", b"p2"][:len(payloads)]
        if r.counters["truncated_file"]:
            assert "test.pcap: offset" in r.warnings[0]
            assert "stopped there" in r.warnings[0]
        else:       # cut exactly at a record boundary
            assert r.warnings == []


def test_garbage_names_file_and_offset():
    with pytest.raises(PcapError, match=r"test.pcap: offset 0: not a pcap"):
        read(b"GET / HTTP/1.1\r\n\r\n")
    with pytest.raises(PcapError, match=r"offset 0: empty"):
        read(b"")
    huge = pcap_file([]) + struct.pack("<IIII", 1, 0, 0x7FFFFFFF, 0x7FFFFFFF)
    with pytest.raises(PcapError, match=r"offset 24: record length"):
        read(huge)


def test_unreadable_path_is_a_pcap_error(tmp_path):
    with pytest.raises(PcapError, match="missing.pcap: cannot open"):
        CaptureReader(str(tmp_path / "missing.pcap"))


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_random_bytes_only_raise_pcap_error(data):
    for head in (b"", pcap_file([]), shb() + idb("<", 1)):
        try:
            read(head + data)
        except PcapError:
            pass


@settings(max_examples=200, deadline=None)
@given(st.sampled_from([0, 1]), st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)),
                                         min_size=1, max_size=8))
def test_corrupted_captures_only_raise_pcap_error(which, flips):
    data = bytearray(_three_packet_captures()[which])
    for pos, val in flips:
        data[pos % len(data)] = val
    try:
        read(bytes(data))
    except PcapError:
        pass


# --------------------------------------------------------------------------
# writer


def test_writer_round_trip_ipv4_ipv6_micro_and_nano(tmp_path):
    rnd = random.Random(7)
    sent = []
    for i in range(50):
        v6 = i % 3 == 0
        src = "2001:db8::%x" % (i % 5 + 1) if v6 else "10.0.%d.%d" % (i % 4, i % 7 + 1)
        dst = "2001:db8::100" if v6 else "10.0.0.1"
        payload = bytes(rnd.randrange(256) for _ in range(rnd.randrange(0, 1100)))
        sent.append((1700000000 + i * 0.001234, src, 6665 + i % 2, dst, 6666, payload))
    for nano in (False, True):
        path = tmp_path / ("n.pcap" if nano else "u.pcap")
        with PcapWriter(str(path), nanosecond=nano) as w:
            for s in sent:
                w.write(*s)
        got = list(pcap.read_packets(str(path)))
        assert [tuple(p)[1:] for p in got] == [s[1:] for s in sent]
        for p, s in zip(got, sent):
            assert p.ts == pytest.approx(s[0], abs=1e-6)


def test_writer_checksums_verify_independently():
    buf = io.BytesIO()
    w = PcapWriter(buf, vlan=5)
    w.write(1.0, "192.168.7.9", 6665, "192.168.7.1", 6666, b"odd length!")
    w.write(2.0, "fe80::1", 6665, "fe80::2", 6666, b"even")
    data = buf.getvalue()
    off = 24
    frames = []
    while off < len(data):
        incl = struct.unpack_from("<I", data, off + 8)[0]
        frames.append(data[off + 16:off + 16 + incl])
        off += 16 + incl
    v4, v6 = frames
    assert v4[12:16] == b"\x81\x00\x00\x05" and v4[16:18] == b"\x08\x00"
    ip = v4[18:]
    assert csum(ip[:20]) == 0                              # header checksum filled
    seg = ip[20:]
    pseudo = ip[12:20] + struct.pack("!BBH", 0, 17, len(seg))
    assert seg[6:8] != b"\0\0" and csum(pseudo + seg) == 0
    ip6 = v6[18:]
    assert ip6[6] == 17 and ip6[7] == 32
    seg = ip6[40:]
    pseudo = ip6[8:40] + struct.pack("!IxxxB", len(seg), 17)
    assert csum(pseudo + seg) == 0


def test_writer_output_parses_with_dpkt():
    dpkt = pytest.importorskip("dpkt")
    buf = io.BytesIO()
    w = PcapWriter(buf)
    w.write(3.5, "10.1.2.3", 6665, "10.1.2.4", 6666, b"hello\n")
    buf.seek(0)
    [(ts, frame)] = list(dpkt.pcap.Reader(buf))
    e = dpkt.ethernet.Ethernet(frame)
    assert ts == 3.5
    assert socket.inet_ntoa(e.data.src) == "10.1.2.3"
    assert (e.data.data.sport, e.data.data.dport, e.data.data.data) == (6665, 6666, b"hello\n")


def test_writer_rejects_mixed_families_and_oversize():
    w = PcapWriter(io.BytesIO())
    with pytest.raises(ValueError, match="different families"):
        w.write(0, "10.0.0.1", 1, "::1", 2, b"")
    with pytest.raises(ValueError, match="too large"):
        w.write(0, "10.0.0.1", 1, "10.0.0.2", 2, b"x" * 65520)


_v4 = st.builds(lambda n: socket.inet_ntop(socket.AF_INET, n.to_bytes(4, "big")),
                st.integers(0, 2**32 - 1))
_v6 = st.builds(lambda n: socket.inet_ntop(socket.AF_INET6, n.to_bytes(16, "big")),
                st.integers(0, 2**128 - 1))
_ports = st.integers(0, 65535)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.tuples(_v4, _ports, _v4, _ports, st.binary(max_size=1500)),
                          st.tuples(_v6, _ports, _v6, _ports, st.binary(max_size=1500))),
                max_size=6),
       st.booleans(), st.one_of(st.none(), st.integers(0, 4095)))
def test_writer_reader_round_trip_property(dgrams, nano, vlan):
    buf = io.BytesIO()
    w = PcapWriter(buf, nanosecond=nano, vlan=vlan)
    for i, d in enumerate(dgrams):
        w.write(1000.0 + i * 0.25, *d)
    pkts, r = read(buf.getvalue())
    assert [tuple(p)[1:] for p in pkts] == [tuple(d) for d in dgrams]
    assert [p.ts for p in pkts] == [1000.0 + i * 0.25 for i in range(len(dgrams))]
    assert r.counters["udp"] == len(dgrams) and r.warnings == []
