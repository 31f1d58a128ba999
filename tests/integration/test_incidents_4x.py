"""The incidents destination on syslog-ng 4.x in strict mode (`@version: 4.4`):
Debian 13's syslog-ng 4.8 and Python 3.13 in a cached chroot, running the checkout's
SCL and drop-in unmodified (tests/harness/sng.py chroot mode), fed real UDP datagrams
from the host. Strict mode is what rejects duck-typed classes, types option values
and raises KeyError on missing names.
"""

import time

import pytest

from harness import chroot, samples
from harness.sng import Syslogng, wait_for
from syslogng_netconsole.incidents.store import read_incidents

pytestmark = [pytest.mark.syslogng, pytest.mark.chroot]

PACKAGES = chroot.SYSLOGNG_4X


def stored(statedir, host=None):
    return read_incidents(statedir, host)


def test_strict_4x_stores_one_incident_per_report():
    why = chroot.why_unavailable()
    if why:
        pytest.skip(why)
    root = chroot.ensure_chroot("trixie", PACKAGES)
    sng = Syslogng(chroot=root, version="4.4")
    try:
        sng.start(timeout=40)
        plain = [(l + "\n").encode() for l in samples.dmesg(samples.OOPS_LINES + samples.PANIC_LINES)]
        ext = [("4,%d,%d,-;%s\n" % (900 + i, 20_000_000 + i, line)).encode()
               for i, line in enumerate(samples.WARN_LINES)]
        a, b = sng.sender("127.0.0.2"), sng.sender("127.0.0.3")
        for k in range(max(len(plain), len(ext))):      # two hosts, interleaved
            if k < len(plain):
                a.send(plain[k])
            if k < len(ext):
                b.send(ext[k])
        wait_for(lambda: len(stored(sng.statedir)) >= 2, 20,
                 message="no 2 incidents on 4.x:\n" + sng.stderr_tail())
        time.sleep(1.0)
        found = stored(sng.statedir)
        by_host = {r["host"]: r for r in found}
        assert len(found) == 2 and set(by_host) == {"127.0.0.2", "127.0.0.3"}
        assert "nctest_init" in by_host["127.0.0.2"]["title"] and by_host["127.0.0.2"]["panicked"]
        assert by_host["127.0.0.3"]["title"] == "WARNING in nctest_init"
        assert by_host["127.0.0.3"]["first_seq"] == 901      # after the "cut here" line
        assert len((sng.statedir / "incidents.jsonl").read_text().splitlines()) == 2
        # a reload keeps one background thread and loses nothing
        sng.reload()
        a.send_all(plain[:10])
        assert sng.alive()
        err = sng.stderr_text()
        assert "Traceback" not in err and "netconsole-incidents: start-up trouble" not in err, err[-3000:]
        assert "not a subclass" not in err
    finally:
        sng.stop()
        print(sng.stderr_tail(30))


def test_strict_4x_takes_the_symbolizer_options_typed():
    """Every option of the symbolizer stage set, ints and booleans unquoted (typed by
    4.x): syslog-ng starts, and the incident is stored with its symbols field."""
    why = chroot.why_unavailable()
    if why:
        pytest.skip(why)
    import socket
    root = chroot.ensure_chroot("trixie", PACKAGES)
    sng = Syslogng(chroot=root, version="4.4")
    (sng.tmp / "debug").mkdir()
    (sng.tmp / "MAINTAINERS").write_text("DEMO\nL:\tdemo@example.org\nF:\tdrivers/demo/\n")
    with socket.socket() as s:          # nothing listens there: a server that is down
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    sng.defines["netconsole_alert_options"] = (
        "symbolize(yes) debug_dirs('%s') debuginfod_urls('http://127.0.0.1:%d')"
        " debuginfod_cache_size(1048576) symbolize_wait(1) symbolize_timeout(2)"
        " maintainers_file('%s')" % (sng.inside(sng.tmp / "debug"), port,
                                      sng.inside(sng.tmp / "MAINTAINERS")))
    try:
        sng.start(timeout=40)
        lines = [("4,%d,%d,-;%s\n" % (300 + i, 7_000_000 + i, l)).encode()
                 for i, l in enumerate(samples.OOPS_LINES)]
        sng.sender("127.0.0.2").send_all(lines, pace=0.001)
        found = wait_for(lambda: [r for r in stored(sng.statedir) if r.get("symbols")], 20,
                         message="no symbolized incident on 4.x:\n" + sng.stderr_tail())
        (r,) = found
        assert r["symbols"]["status"] == "none"
        # the chroot has no binutils: no-addr2line; with them, no debug file here
        assert r["symbols"]["reason"] == "no-addr2line" or \
            "no-debug-file" in r["symbols"]["reason"], r["symbols"]
        err = sng.stderr_text()
        assert "Traceback" not in err and "start-up trouble" not in err, err[-3000:]
    finally:
        sng.stop()
        print(sng.stderr_tail(30))
