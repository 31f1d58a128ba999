"""Flow control inside a real syslog-ng 3.38: a netconsole() source with a window of 4
(`log-iw-size(4)`: syslog-ng makes the source wait after every fourth message) loses
nothing under a flood, and no message meets a full window ("Incorrectly suspended
source, dropping message", what python-source.c's non-blocking mode led to:
sng/source.py; the source's code before it failed this one run in five)."""

import socket

import pytest

from harness.sng import Syslogng, available, free_udp_port, wait_for

pytestmark = pytest.mark.syslogng

SMALL_WINDOW = '''
source s_small { netconsole(ip("127.0.0.1") port(%d) state_dir("%s") log-iw-size(4)); };
destination d_small { file("%s" template("${HOST} ${MSG}\\n")); };
log { source(s_small); destination(d_small); };
'''

HOSTS = 4
LINES = 5000        # per host


def test_a_flood_through_a_window_of_four_loses_nothing(tmp_path):
    why = available()
    if why:
        pytest.skip(why)
    port, out, state = free_udp_port(), tmp_path / "small.log", tmp_path / "small-state"
    state.mkdir()
    sng = Syslogng(tmp_path / "sng", prelude=SMALL_WINDOW % (port, state, out))
    sng.start(timeout=30)
    try:
        socks = []
        for h in range(HOSTS):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.bind(("127.0.9.%d" % (h + 1), 0))
            socks.append(s)
        def written():
            return len(out.read_bytes().splitlines()) if out.exists() else 0
        sent = 0
        for i in range(LINES):
            for h, s in enumerate(socks):
                s.sendto(b"[ %5d.000000] line %d of host %d\n" % (i, i, h), ("127.0.0.1", port))
            sent += HOSTS
            if sent % 1000 == 0:    # at most ~2,000 in the socket: its buffer may be 4 MiB
                wait_for(lambda: written() >= sent - 1000, 30)
        expected = HOSTS * LINES
        wait_for(lambda: written() >= expected, 60, message="%d lines" % expected)
        for s in socks:
            s.close()
    finally:
        sng.stop()
    lines = out.read_text().splitlines()
    assert len(lines) == HOSTS * LINES
    for h in range(HOSTS):
        mine = [ln for ln in lines if ln.startswith("127.0.9.%d " % (h + 1))]
        assert mine == ["127.0.9.%d line %d of host %d" % (h + 1, i, h) for i in range(LINES)]
    assert "Incorrectly suspended" not in sng.stderr_text()
