"""`replay`: send a capture's UDP payloads to a collector again.

Datagrams go out in capture order (so each sender's order is kept), paced by
their capture times divided by ``--speed``. Each original sender address gets
its own source address 127.0.0.N (N = 2, 3, ... in order of first appearance;
`--source-base` starts elsewhere, so several captures can be replayed into one
collector without their senders colliding) when the target is an IPv4 loopback
address, so the collector sees one host per original host; each original (address, port) stream gets its own socket, so
streams of one host (plain and extended targets) stay apart everywhere.
"""

import ipaddress
import socket
import sys
import time
from collections import OrderedDict

from syslogng_netconsole.ingest.capture import CaptureReader, PcapError

HELP = "send the UDP datagrams of a pcap/pcapng capture to a collector"

FIRST_LOOPBACK = int(ipaddress.IPv4Address("127.0.0.2"))
LAST_LOOPBACK = int(ipaddress.IPv4Address("127.255.255.254"))


def add_arguments(parser):
    parser.add_argument("input", metavar="INPUT", help="pcap or pcapng file")
    parser.add_argument("--to", required=True, metavar="HOST:PORT",
                        help="collector address, e.g. 127.0.0.1:6666 or [::1]:6666")
    parser.add_argument("--speed", type=float, default=1.0, metavar="X",
                        help="time scale: 1 = as captured, 2 = twice as fast, "
                             "0 = as fast as possible (default 1)")
    parser.add_argument("--port", type=int, action="append", metavar="N",
                        help="only datagrams that were sent to this UDP port (repeatable)")
    parser.add_argument("--source-base", default="127.0.0.2", metavar="ADDR",
                        help="the loopback address of the first sender, the next ones "
                             "follow it (default %(default)s); e.g. 127.0.1.2 for a second "
                             "capture replayed into the same collector")


def parse_target(text):
    """'HOST:PORT' or '[V6]:PORT' -> (host, port); ValueError with a message."""
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError("--to must be HOST:PORT (or [IPV6]:PORT), got %r" % text)
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    elif ":" in host:
        raise ValueError("write an IPv6 address in brackets: [%s]:%s" % (host, port))
    return host, int(port)


def loopback_index(addr):
    """Where a 127.x.y.z address (z not 0 or 255) stands in loopback_address()'s order;
    ValueError for anything else."""
    try:
        n = int(ipaddress.IPv4Address(addr))
    except ValueError:
        raise ValueError("--source-base must be an IPv4 address, got %r" % addr) from None
    offset = n - (FIRST_LOOPBACK & ~0xFFFFFF)
    block, pos = offset >> 8, offset & 0xFF
    if not 0 <= offset < 1 << 24 or not 1 <= pos <= 254 or n < FIRST_LOOPBACK:
        raise ValueError("--source-base must be a loopback address from 127.0.0.2 to "
                         "127.255.255.254, not ending in .0 or .255, got %r" % addr)
    return block * 254 + pos - 2


def loopback_address(index):
    """The index-th (0-based) per-sender loopback address: 127.0.0.2, .3, ...,
    skipping .0 and .255 of every /24."""
    # each /24 gives 254 usable addresses (.1 - .254), the first block starts at .2
    block, pos = divmod(index + 1, 254)
    n = (FIRST_LOOPBACK & ~0xFFFFFF) | (block << 8) | (pos + 1)
    if n > LAST_LOOPBACK:
        raise ValueError("too many senders for the loopback range")
    return str(ipaddress.IPv4Address(n))


class Replayer:
    """Owns the sockets: one per original stream, bound as described above.

    At most ``max_sockets`` stay open (a fleet capture can hold more senders
    than the process may open files): the least recently used one is closed
    and reopened on the same source address when its stream sends again. Its
    source port then changes, which the collector's core does not key on.
    """

    def __init__(self, target_host, target_port, max_sockets=256, base=0):
        infos = socket.getaddrinfo(target_host, target_port, 0, socket.SOCK_DGRAM)
        if not infos:
            raise OSError("cannot resolve %s" % target_host)
        self.family, _t, _p, _c, self.target = infos[0]
        addr = ipaddress.ip_address(self.target[0])
        self.map_loopback = self.family == socket.AF_INET and addr.is_loopback
        self.max_sockets = max(1, max_sockets)
        self.hosts = {}             # original address -> replay source address
        self.socks = OrderedDict()  # (original address, port) -> open socket, LRU order
        self.source = {}            # (original address, port) -> "addr:port" last sent from
        self.sent = {}              # (original address, port) -> datagrams sent
        self.failed = {}            # (original address, port) -> send errors
        self.reopened = 0
        self.base = base            # loopback_index() of the first sender's address

    def _socket(self, key):
        sock = self.socks.get(key)
        if sock is not None:
            self.socks.move_to_end(key)
            return sock
        if self.map_loopback:
            if key[0] not in self.hosts:
                self.hosts[key[0]] = loopback_address(self.base + len(self.hosts))
            bind = (self.hosts[key[0]], 0)
        else:
            bind = None
        while len(self.socks) >= self.max_sockets:
            self.socks.popitem(last=False)[1].close()
        sock = socket.socket(self.family, socket.SOCK_DGRAM)
        try:
            if bind:
                sock.bind(bind)
        except OSError:
            sock.close()
            raise
        self.socks[key] = sock
        if key in self.sent:
            self.reopened += 1
        else:
            self.sent[key] = 0
            self.failed[key] = 0
        return sock

    def send(self, src_ip, src_port, payload):
        key = (src_ip, src_port)
        sock = self._socket(key)
        try:
            sock.sendto(payload, self.target)
            self.sent[key] += 1
        except OSError:
            # e.g. ECONNREFUSED from an earlier ICMP, ENOBUFS: counted, not fatal
            self.failed[key] += 1
        if key not in self.source:
            self.source[key] = sock.getsockname()[:2]

    def close(self):
        for s in self.socks.values():
            s.close()
        self.socks.clear()

    def summary(self):
        lines = []
        for key in self.sent:
            src = self.source.get(key, ("-", 0))
            lines.append("%s:%d -> from %s:%d: sent %d%s"
                         % (key[0], key[1], src[0], src[1], self.sent[key],
                            ", failed %d" % self.failed[key] if self.failed[key] else ""))
        total = sum(self.sent.values())
        lines.append("total: %d datagrams from %d senders to %s:%d%s%s"
                     % (total, len(self.sent), self.target[0], self.target[1],
                        ", %d failed" % sum(self.failed.values())
                        if any(self.failed.values()) else "",
                        ", %d sockets reopened" % self.reopened if self.reopened else ""))
        return lines


_NOT_SENT = {"unsupported_link", "not_ip", "not_udp", "ip_fragments", "malformed",
             "truncated_file", "other_port"}
_CUT = {"snapped", "first_fragments"}


def run(args):
    prog = "syslogng-netconsole replay"
    try:
        host, port = parse_target(args.to)
    except ValueError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
        return 2
    if args.speed < 0:
        print("%s: --speed must be >= 0" % prog, file=sys.stderr)
        return 2
    ports = set(args.port or ())
    try:
        base = loopback_index(args.source_base)
    except ValueError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
        return 2
    try:
        rep = Replayer(host, port, base=base)
    except OSError as exc:
        print("%s: %s: %s" % (prog, args.to, exc), file=sys.stderr)
        return 2
    status = 0
    try:
        reader = CaptureReader(args.input)
        first_ts = last_ts = None
        start = time.monotonic()
        with reader:
            for pkt in reader:
                if ports and pkt.dst_port not in ports:
                    reader.counters["other_port"] = reader.counters.get("other_port", 0) + 1
                    continue
                if first_ts is None:
                    first_ts = last_ts = pkt.ts
                last_ts = max(last_ts, pkt.ts)    # never wait for a clock going back
                if args.speed > 0:
                    delay = start + (last_ts - first_ts) / args.speed - time.monotonic()
                    if delay > 0:
                        time.sleep(delay)
                rep.send(pkt.src_ip, pkt.src_port, pkt.payload)
        for w in reader.warnings:
            print("%s: warning: %s" % (prog, w), file=sys.stderr)
        # what was not sent, and why; what was sent cut short by the capture
        for what, names in (("not replayed", _NOT_SENT), ("replayed cut short", _CUT)):
            found = sorted((k, v) for k, v in reader.counters.items() if v and k in names)
            if found:
                print("%s: %s: %s" % (prog, what, " ".join("%s=%d" % kv for kv in found)),
                      file=sys.stderr)
    except PcapError as exc:
        print("%s: %s" % (prog, exc), file=sys.stderr)
        status = 1
    except OSError as exc:   # binding a loopback source address failed
        print("%s: %s" % (prog, exc), file=sys.stderr)
        status = 1
    finally:
        for line in rep.summary():
            print(line)
        rep.close()
    hosts = {k[0] for k in rep.sent}
    if not rep.map_loopback and len(hosts) > 1:
        print("%s: note: %d original hosts were sent from this machine's address, so the "
              "collector sees them as one host (use a 127.x.x.x target to keep them apart)"
              % (prog, len(hosts)), file=sys.stderr)
    if any(rep.failed.values()):
        status = status or 1
    return status
