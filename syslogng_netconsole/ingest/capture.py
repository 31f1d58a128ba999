"""pcap / pcapng reading and pcap writing, down to UDP payloads, and CaptureFeed,
which replays captured packets through the reassembler. Pure stdlib.

Reads what ``tcpdump -w`` (and dumpcap) write: classic pcap in both byte
orders with micro- or nanosecond stamps, and pcapng (SHB/IDB/EPB/SPB and the
obsolete PB, several sections and interfaces, per-interface link type and
timestamp resolution). Link types: Ethernet (802.1Q/802.1ad tags), Linux
cooked capture v1/v2, raw IP, BSD loopback. Network: IPv4 and IPv6 (extension
headers walked). Anything else is skipped and counted in ``counters``.

Netconsole never fragments at the IP layer, so non-first IP fragments are
counted and skipped rather than reassembled.
"""

import socket
import struct
from collections import namedtuple
from typing import Optional

Packet = namedtuple("Packet", "ts src_ip src_port dst_ip dst_port payload")

# link types (https://www.tcpdump.org/linktypes.html)
LINKTYPE_NULL = 0
LINKTYPE_ETHERNET = 1
LINKTYPE_RAW = 101
LINKTYPE_LOOP = 108
LINKTYPE_LINUX_SLL = 113
LINKTYPE_IPV4 = 228
LINKTYPE_IPV6 = 229
LINKTYPE_LINUX_SLL2 = 276

ETH_IPV4 = 0x0800
ETH_IPV6 = 0x86DD
VLAN_TPIDS = (0x8100, 0x88A8, 0x9100)
MAX_VLAN_TAGS = 8

PCAP_MAGIC_US = 0xA1B2C3D4
PCAP_MAGIC_NS = 0xA1B23C4D
PCAPNG_SHB = 0x0A0D0D0A
PCAPNG_BOM = 0x1A2B3C4D
# A capture record or block larger than this is garbage, not a packet.
MAX_RECORD = 16 * 1024 * 1024

# IPv6 extension headers we can walk: next-header -> how to find its length.
_IP6_EXT_8 = {0, 43, 60, 135, 139, 140}   # length field in 8-octet units, +8
_IP6_AH = 51                             # length field in 4-octet units, +8
_IP6_FRAG = 44
IPPROTO_UDP = 17


class PcapError(Exception):
    """The input is not a readable capture; the message names file and offset."""


def _bsd_af_to_ethertype(af):
    # BSD loopback: AF_INET is 2 everywhere, AF_INET6 differs per OS (10/24/28/30).
    if af == 2:
        return ETH_IPV4
    if af in (10, 24, 28, 30):
        return ETH_IPV6
    return None


def _link_ethernet(frame):
    if len(frame) < 14:
        return None, 0
    return struct.unpack_from("!H", frame, 12)[0], 14


def _link_sll(frame):
    if len(frame) < 16:
        return None, 0
    return struct.unpack_from("!H", frame, 14)[0], 16


def _link_sll2(frame):
    if len(frame) < 20:
        return None, 0
    return struct.unpack_from("!H", frame, 0)[0], 20


def _link_raw(frame):
    if not frame:
        return None, 0
    return {4: ETH_IPV4, 6: ETH_IPV6}.get(frame[0] >> 4), 0


def _link_null(frame):
    # the 4-byte family is in the capturing host's byte order: try both
    if len(frame) < 4:
        return None, 0
    for fmt in ("<I", ">I"):
        et = _bsd_af_to_ethertype(struct.unpack_from(fmt, frame, 0)[0])
        if et is not None:
            return et, 4
    return None, 4


def _link_loop(frame):
    if len(frame) < 4:
        return None, 0
    return _bsd_af_to_ethertype(struct.unpack_from(">I", frame, 0)[0]), 4


# link type -> function(frame) -> (ethertype or None, offset of the L3 header)
LINK_DECODERS = {
    LINKTYPE_NULL: _link_null,
    LINKTYPE_ETHERNET: _link_ethernet,
    LINKTYPE_RAW: _link_raw,
    12: _link_raw,          # DLT_RAW as some systems wrote it into files
    14: _link_raw,
    LINKTYPE_LOOP: _link_loop,
    LINKTYPE_LINUX_SLL: _link_sll,
    LINKTYPE_IPV4: lambda f: (ETH_IPV4, 0),
    LINKTYPE_IPV6: lambda f: (ETH_IPV6, 0),
    LINKTYPE_LINUX_SLL2: _link_sll2,
}

COUNTER_NAMES = (
    "frames",             # frames read from the file
    "udp",                # UDP datagrams yielded
    "unsupported_link",   # frames of a link type we do not decode
    "not_ip",             # ARP, LLDP, ...
    "not_udp",            # TCP, ICMP, ...
    "ip_fragments",       # non-first IP fragments, skipped
    "first_fragments",    # first IP fragments, yielded with what they hold
    "malformed",          # headers that do not add up, skipped
    "snapped",            # datagrams cut by the capture's snap length, yielded cut
    "truncated_file",     # 1 when the file ended inside a record
)


class CaptureReader:
    """Iterate a pcap or pcapng file as `Packet` tuples (UDP only).

    ``source`` is a path or a binary file object. Skipped frames are counted in
    ``counters``; a capture that ends inside its last record stops cleanly with
    a message in ``warnings``. Anything else unreadable raises `PcapError`.
    """

    def __init__(self, source, name=None):
        if hasattr(source, "read"):
            self._f = source
            self._own = False
            self.name = name or getattr(source, "name", "<capture>")
        else:
            self.name = name or str(source)
            try:
                self._f = open(source, "rb")
            except OSError as exc:
                raise PcapError("%s: cannot open: %s" % (self.name, exc.strerror or exc))
            self._own = True
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)
        self.warnings = []
        self.format = None
        self._off = 0

    # -- context manager -------------------------------------------------
    def close(self):
        if self._own:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- low level -------------------------------------------------------
    def _err(self, off, what):
        return PcapError("%s: offset %d: %s" % (self.name, off, what))

    def _read(self, n, what):
        """Exactly n bytes, b"" at a clean end of file, None when cut short."""
        data = self._f.read(n)
        if len(data) == n:
            self._off += n
            return data
        if data:
            self.counters["truncated_file"] = 1
            self.warnings.append(
                "%s: offset %d: file ends inside %s (%d of %d bytes); stopped there"
                % (self.name, self._off, what, len(data), n))
            self._off += len(data)
            return None
        return b""

    def __iter__(self):
        head = self._read(4, "the file header")
        if not head:
            if head == b"":
                raise self._err(0, "empty file, not a pcap or pcapng capture")
            raise self._err(0, "too short to be a pcap or pcapng capture")
        magic_le = struct.unpack("<I", head)[0]
        if magic_le == PCAPNG_SHB:
            self.format = "pcapng"
            return self._iter_pcapng(head)
        for endian in ("<", ">"):
            magic = struct.unpack(endian + "I", head)[0]
            if magic in (PCAP_MAGIC_US, PCAP_MAGIC_NS):
                self.format = "pcap"
                return self._iter_pcap(endian, magic == PCAP_MAGIC_NS)
        raise self._err(0, "not a pcap or pcapng capture (magic %s)" % head.hex())

    # -- classic pcap ----------------------------------------------------
    def _iter_pcap(self, e, nano):
        rest = self._read(20, "the file header")
        if not rest:
            raise self._err(4, "file header is cut short")
        _vmaj, _vmin, _zone, _sigfigs, _snap, link = struct.unpack(e + "HHiIII", rest)
        link &= 0xFFFF     # upper bits may carry FCS information
        div = 1e9 if nano else 1e6
        hdr_fmt = e + "IIII"
        while True:
            off = self._off
            hdr = self._read(16, "a record header")
            if not hdr:
                return
            sec, frac, incl, _orig = struct.unpack(hdr_fmt, hdr)
            if incl > MAX_RECORD:
                raise self._err(off, "record length %d is not plausible (corrupt file?)" % incl)
            frame = self._read(incl, "a packet")
            if frame is None:
                return
            pkt = self._decode(link, sec + frac / div, frame)
            if pkt is not None:
                yield pkt

    # -- pcapng ----------------------------------------------------------
    def _need(self, n, what):
        """Exactly n bytes, or None (with a warning) when the file ends first."""
        if n == 0:
            return b""
        data = self._read(n, what)
        if data == b"":
            self.counters["truncated_file"] = 1
            self.warnings.append("%s: offset %d: file ends inside %s; stopped there"
                                 % (self.name, self._off, what))
            return None
        return data

    def _iter_pcapng(self, btype_raw):
        e = None
        ifaces = []          # this section's: (linktype, divisor, offset seconds, snaplen)
        while True:
            off = self._off - 4
            lenb = self._need(4, "a block header")
            if lenb is None and off == 0:
                raise self._err(0, "file is cut short inside its section header")
            if lenb is None:
                return
            if struct.unpack("<I", btype_raw)[0] == PCAPNG_SHB:
                bom = self._need(4, "a section header")
                if bom is None and off == 0:
                    raise self._err(0, "file is cut short inside its section header")
                if bom is None:
                    return
                e = {PCAPNG_BOM: "<"}.get(struct.unpack("<I", bom)[0]) or \
                    {PCAPNG_BOM: ">"}.get(struct.unpack(">I", bom)[0])
                if e is None:
                    raise self._err(off + 8, "bad pcapng byte-order magic %s" % bom.hex())
                ifaces = []
                head = bom
            elif e is None:
                raise self._err(off, "pcapng file does not start with a section header")
            else:
                head = b""
            blen = struct.unpack(e + "I", lenb)[0]
            if blen < 12 + len(head) or blen % 4 or blen > MAX_RECORD:
                raise self._err(off, "block length %d is not plausible (corrupt file?)" % blen)
            body = self._need(blen - 12 - len(head), "a block")
            trailer = body is not None and self._need(4, "a block trailer")
            if not trailer:
                if off == 0:
                    raise self._err(0, "file is cut short inside its section header")
                return
            if struct.unpack(e + "I", trailer)[0] != blen:
                raise self._err(off, "block trailer length does not match its header "
                                "(corrupt file?)")
            btype = struct.unpack(e + "I", btype_raw)[0]
            if btype != PCAPNG_SHB:
                pkt = self._pcapng_block(e, btype, body, ifaces, off)
                if pkt is not None:
                    yield pkt
            btype_raw = self._read(4, "a block header")
            if not btype_raw:
                return

    def _pcapng_block(self, e, btype, body, ifaces, off):
        if btype == 1:                                       # interface description
            if len(body) < 8:
                raise self._err(off, "interface description block too short")
            link, _res, snap = struct.unpack_from(e + "HHI", body, 0)
            div, tsoff = 1e6, 0
            for code, val in _options(e, body, 8):
                if code == 9 and len(val) >= 1:              # if_tsresol
                    r = val[0]
                    div = float(2 ** (r & 0x7F)) if r & 0x80 else 10.0 ** r
                elif code == 14 and len(val) >= 8:           # if_tsoffset
                    tsoff = struct.unpack(e + "q", val[:8])[0]
            ifaces.append((link, div, tsoff, snap))
            return None
        if btype in (6, 2):                                  # enhanced / obsolete packet
            if len(body) < 20:
                raise self._err(off, "packet block too short")
            if btype == 6:
                iface, hi, lo, cap, _orig = struct.unpack_from(e + "IIIII", body, 0)
            else:
                iface, _drops, hi, lo, cap, _orig = struct.unpack_from(e + "HHIIII", body, 0)
            if iface >= len(ifaces):
                raise self._err(off, "packet refers to undeclared interface %d" % iface)
            if cap > len(body) - 20:
                raise self._err(off, "packet length %d exceeds its block" % cap)
            link, div, tsoff, _snap = ifaces[iface]
            ts = tsoff + ((hi << 32) | lo) / div
            return self._decode(link, ts, body[20:20 + cap])
        if btype == 3:                                       # simple packet: no timestamp
            if not ifaces:
                raise self._err(off, "simple packet block before any interface")
            if len(body) < 4:
                raise self._err(off, "simple packet block too short")
            orig = struct.unpack_from(e + "I", body, 0)[0]
            link, _div, _tsoff, snap = ifaces[0]
            cap = min(orig, len(body) - 4, snap or orig)
            return self._decode(link, 0.0, body[4:4 + cap])
        return None     # name resolution, statistics, custom, ...: nothing for us

    # -- frames ----------------------------------------------------------
    def _decode(self, link, ts, frame):
        c = self.counters
        c["frames"] += 1
        dec = LINK_DECODERS.get(link)
        if dec is None:
            c["unsupported_link"] += 1
            return None
        ethertype, off = dec(frame)
        tags = 0
        while ethertype in VLAN_TPIDS and tags < MAX_VLAN_TAGS and off + 4 <= len(frame):
            ethertype = struct.unpack_from("!H", frame, off + 2)[0]
            off += 4
            tags += 1
        if ethertype == ETH_IPV4:
            return self._ipv4(ts, frame, off)
        if ethertype == ETH_IPV6:
            return self._ipv6(ts, frame, off)
        c["not_ip"] += 1
        return None

    def _ipv4(self, ts, frame, off):
        c = self.counters
        if len(frame) < off + 20 or frame[off] >> 4 != 4:
            c["malformed"] += 1
            return None
        ihl = (frame[off] & 0x0F) * 4
        total, fragw, proto = struct.unpack_from("!H2xHxB", frame, off + 2)
        if ihl < 20 or total < ihl or len(frame) < off + ihl:
            c["malformed"] += 1
            return None
        if proto != IPPROTO_UDP:
            c["not_udp"] += 1
            return None
        if fragw & 0x1FFF:
            c["ip_fragments"] += 1
            return None
        first_frag = bool(fragw & 0x2000)
        src = socket.inet_ntop(socket.AF_INET, frame[off + 12:off + 16])
        dst = socket.inet_ntop(socket.AF_INET, frame[off + 16:off + 20])
        # the IP total length cuts off Ethernet padding
        end = min(len(frame), off + total)
        snapped = len(frame) < off + total
        return self._udp(ts, src, dst, frame[off + ihl:end], first_frag, snapped)

    def _ipv6(self, ts, frame, off):
        c = self.counters
        if len(frame) < off + 40 or frame[off] >> 4 != 6:
            c["malformed"] += 1
            return None
        plen, nxt = struct.unpack_from("!HB", frame, off + 4)
        src = socket.inet_ntop(socket.AF_INET6, frame[off + 8:off + 24])
        dst = socket.inet_ntop(socket.AF_INET6, frame[off + 24:off + 40])
        if plen:
            end = min(len(frame), off + 40 + plen)
            snapped = len(frame) < off + 40 + plen
        else:               # jumbogram: length lives in hop-by-hop; take what is there
            end, snapped = len(frame), False
        pos = off + 40
        first_frag = False
        while nxt != IPPROTO_UDP:
            if pos + 8 > end:
                c["malformed"] += 1
                return None
            if nxt in _IP6_EXT_8:
                hlen = (frame[pos + 1] + 1) * 8
            elif nxt == _IP6_AH:
                hlen = (frame[pos + 1] + 2) * 4
            elif nxt == _IP6_FRAG:
                fragw = struct.unpack_from("!H", frame, pos + 2)[0]
                if fragw & 0xFFF8:
                    c["ip_fragments"] += 1
                    return None
                first_frag = bool(fragw & 1)
                hlen = 8
            else:           # TCP, ICMPv6, ESP, no-next-header, ...
                c["not_udp"] += 1
                return None
            nxt = frame[pos]
            pos += hlen
        if pos > end:
            c["malformed"] += 1
            return None
        return self._udp(ts, src, dst, frame[pos:end], first_frag, snapped)

    def _udp(self, ts, src, dst, seg, first_frag, snapped):
        c = self.counters
        if len(seg) < 8:
            if snapped:
                c["snapped"] += 1
            else:
                c["malformed"] += 1
            return None
        sport, dport, ulen = struct.unpack_from("!HHH", seg, 0)
        if first_frag:
            c["first_fragments"] += 1
            payload = seg[8:]
        elif ulen < 8 or (ulen > len(seg) and not snapped):
            c["malformed"] += 1
            return None
        else:
            if ulen > len(seg):
                c["snapped"] += 1
            payload = seg[8:ulen]
        c["udp"] += 1
        return Packet(ts, src, sport, dst, dport, bytes(payload))


def _options(e, body, pos):
    """pcapng options as (code, value) until opt_endofopt or the end of body."""
    while pos + 4 <= len(body):
        code, length = struct.unpack_from(e + "HH", body, pos)
        if code == 0:
            return
        val = body[pos + 4:pos + 4 + length]
        yield code, val
        pos += 4 + length + (-length % 4)


def read_packets(path):
    """Every UDP datagram of a capture file, as `Packet` tuples, in file order."""
    with CaptureReader(path) as r:
        for pkt in r:
            yield pkt


# --------------------------------------------------------------------------
# writing


def _checksum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def _family(ip):
    return socket.AF_INET6 if ":" in ip else socket.AF_INET


def build_ip_udp(src_ip, src_port, dst_ip, dst_port, payload, ident=0):
    """An IPv4 or IPv6 packet (family from the addresses) carrying one UDP datagram,
    with the IPv4 header and UDP checksums filled in."""
    fam = _family(src_ip)
    if _family(dst_ip) != fam:
        raise ValueError("source %s and destination %s are of different families"
                         % (src_ip, dst_ip))
    src = socket.inet_pton(fam, src_ip)
    dst = socket.inet_pton(fam, dst_ip)
    ulen = 8 + len(payload)
    if ulen > 0xFFFF or (fam == socket.AF_INET and ulen + 20 > 0xFFFF):
        raise ValueError("UDP payload of %d bytes is too large" % len(payload))
    if fam == socket.AF_INET:
        pseudo = src + dst + struct.pack("!xBH", IPPROTO_UDP, ulen)
    else:
        pseudo = src + dst + struct.pack("!I3xB", ulen, IPPROTO_UDP)
    udp = struct.pack("!HHHH", src_port, dst_port, ulen, 0) + payload
    csum = _checksum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", csum) + udp[8:]
    if fam == socket.AF_INET:
        # TTL 64 and DF like the kernel's netpoll; checksum computed over the header
        hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + ulen, ident & 0xFFFF, 0x4000,
                          64, IPPROTO_UDP, 0, src, dst)
        hdr = hdr[:10] + struct.pack("!H", _checksum(hdr)) + hdr[12:]
    else:
        hdr = struct.pack("!IHBB16s16s", 6 << 28, ulen, IPPROTO_UDP, 32, src, dst)
    return hdr + udp


def _mac(ip):
    # a stable locally administered MAC per address, so senders are told apart
    h = sum(socket.inet_pton(_family(ip), ip)) & 0xFFFFFFFF
    return b"\x02\x00" + struct.pack("!I", h)


def build_ethernet(src_ip, dst_ip, ip_packet, vlan=None):
    """An Ethernet frame around ``ip_packet``, with an optional 802.1Q tag."""
    et = ETH_IPV6 if _family(src_ip) == socket.AF_INET6 else ETH_IPV4
    tag = b"" if vlan is None else struct.pack("!HH", 0x8100, vlan & 0x0FFF)
    return _mac(dst_ip) + _mac(src_ip) + tag + struct.pack("!H", et) + ip_packet


class PcapWriter:
    """Writes UDP datagrams as a classic little-endian pcap with Ethernet frames.

    ``PcapWriter(path)`` or ``PcapWriter(fileobj)``; ``write(ts, src_ip, src_port,
    dst_ip, dst_port, payload)``; ``close()`` (also a context manager).
    ``nanosecond=True`` writes the nanosecond variant.
    """

    def __init__(self, target, nanosecond=False, snaplen=262144, vlan=None):
        if hasattr(target, "write"):
            self._f, self._own = target, False
        else:
            self._f, self._own = open(target, "wb"), True
        self._div = 10 ** 9 if nanosecond else 10 ** 6
        self._vlan = vlan
        self._ident = 0
        magic = PCAP_MAGIC_NS if nanosecond else PCAP_MAGIC_US
        self._f.write(struct.pack("<IHHiIII", magic, 2, 4, 0, 0, snaplen, LINKTYPE_ETHERNET))

    def write_frame(self, ts, frame):
        """One raw Ethernet frame."""
        ticks = int(round(ts * self._div))
        sec, frac = divmod(ticks, self._div)
        self._f.write(struct.pack("<IIII", sec, frac, len(frame), len(frame)))
        self._f.write(frame)

    def write(self, ts, src_ip, src_port, dst_ip, dst_port, payload):
        self._ident = (self._ident + 1) & 0xFFFF
        ip = build_ip_udp(src_ip, src_port, dst_ip, dst_port, bytes(payload), self._ident)
        self.write_frame(ts, build_ethernet(src_ip, dst_ip, ip, self._vlan))

    def flush(self):
        self._f.flush()

    def close(self):
        if self._own:
            self._f.close()
        else:
            self._f.flush()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


class CaptureFeed:
    """Drives a reassembly.Reassembler with captured packets (anything with ts, src_ip,
    src_port, dst_port and payload), each packet's capture time as the clock, so
    timeouts fire as they did live. The clock never runs backwards (rotated or
    merged captures). Used by the CLI's decode and analyze."""

    def __init__(self, core):
        self.core = core
        self.now: Optional[float] = None

    def packets(self, packets):
        """Yields (record, clock) as records come out."""
        core = self.core
        for pkt in packets:
            now = pkt.ts if self.now is None else max(self.now, pkt.ts)
            self.now = now
            deadline = core.next_deadline()
            if deadline is not None and deadline <= now:
                core.expire(now)
                for rec in core.records():
                    yield rec, now
            core.process(pkt.payload, pkt.src_ip, pkt.src_port, pkt.dst_port, now)
            for rec in core.records():
                yield rec, now

    def finish(self):
        """End of input: everything still held comes out (incomplete where it is)."""
        end = self.now if self.now is not None else 0.0
        self.core.flush(end)
        for rec in self.core.records():
            yield rec, end
