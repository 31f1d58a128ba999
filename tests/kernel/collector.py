"""Waiting for the collector (tests/harness/sng.py) to finish a guest's stream."""

import time


def udp_socket_drops(port):
    """Datagrams the host kernel dropped at the UDP socket bound to port
    (receive buffer full), from /proc/net/udp; None if no such socket."""
    hexport = ":%04X" % port
    with open("/proc/net/udp") as f:
        next(f)
        for line in f:
            fields = line.split()
            if fields[1].endswith(hexport):
                return int(fields[-1])
    return None


def wait_drained(sng, sent, limit=60.0, quiet=2.0):
    """Wait until the collector has read `sent` datagrams (or the kernel
    dropped the rest) and its per-host log has not grown for `quiet` seconds
    (the core's timers have fired). Returns (received, socket drops, seconds
    until all datagrams were read)."""
    from harness.sng import wait_for

    log = sng.log_path("127.0.0.1")
    t0 = time.monotonic()
    deadline = t0 + limit

    def read_all():
        got = sng.counter("source.datagrams")
        drops = udp_socket_drops(sng.port) or 0
        return got + drops >= sent and (got, drops)
    try:
        wait_for(read_all, timeout=limit, interval=0.2)
    except AssertionError:
        pass
    drained = time.monotonic() - t0
    last, since = -1, time.monotonic()
    while time.monotonic() < deadline:
        size = log.stat().st_size if log.exists() else -1
        if size != last:
            last, since = size, time.monotonic()
        elif size >= 0 and time.monotonic() - since >= quiet:
            break
        time.sleep(0.1)
    return sng.counter("source.datagrams"), udp_socket_drops(sng.port), round(drained, 1)
