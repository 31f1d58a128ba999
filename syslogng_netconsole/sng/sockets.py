"""The UDP sockets of a netconsole() source: bind, receive buffer, kernel drops.

No syslogng import; `warn` is how trouble is told (the endpoint passes its logger).
"""

import os
import socket
from typing import Optional

SO_RCVBUFFORCE = getattr(socket, "SO_RCVBUFFORCE", 33)  # Linux; Python has no name for it


def bind(addr: str, port: int, rcvbuf: int, reuseport: bool, warn) -> socket.socket:
    """A non-blocking UDP socket bound to addr:port; OSError when it cannot be."""
    fam = socket.AF_INET6 if ":" in addr else socket.AF_INET
    s = socket.socket(fam, socket.SOCK_DGRAM)
    try:
        if fam == socket.AF_INET6:
            # "::" means IPv6 only; list "0.0.0.0,::" for both families
            s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        if reuseport:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        set_rcvbuf(s, rcvbuf, warn)
        s.bind((addr, port))
        s.setblocking(False)
    except BaseException:
        s.close()
        raise
    return s


def set_rcvbuf(s: socket.socket, rcvbuf: int, warn) -> None:
    """SO_RCVBUF; above net.core.rmem_max, SO_RCVBUFFORCE (needs CAP_NET_ADMIN, as
    journald does); else warn: a burst (sysrq-t, an oops storm) then loses datagrams."""
    if not rcvbuf:
        return
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2  # Linux reports double
    if got < rcvbuf:
        try:
            s.setsockopt(socket.SOL_SOCKET, SO_RCVBUFFORCE, rcvbuf)
            got = s.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2
        except OSError:
            pass
    if got < rcvbuf:
        warn("the kernel capped the receive buffer (SO_RCVBUF) at %d bytes instead of %d: "
             "raise net.core.rmem_max (sysctl) to absorb bursts" % (got, rcvbuf))


def kernel_drops(socks) -> Optional[int]:
    """Datagrams the kernel dropped on these sockets (buffer full), from /proc/net/udp*
    (the last column, matched by socket inode); None when unreadable."""
    inodes = set()
    for sock in socks:
        try:
            inodes.add(str(os.fstat(sock.fileno()).st_ino))
        except OSError:
            pass
    total, seen = 0, False
    for table in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(table) as f:
                next(f, None)
                for line in f:
                    cols = line.split()
                    if len(cols) > 12 and cols[9] in inodes:
                        total += int(cols[-1])
                        seen = True
        except (OSError, ValueError):
            pass
    return total if seen else None
