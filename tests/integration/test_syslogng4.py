"""The same source, SCL and drop-in on syslog-ng 4.8 (Debian 13 chroot) in strict
`@version: 4.4` mode: base classes required, typed options, KeyError on missing keys.
The chroot shares the host's network namespace; the checkout is bind-mounted into it."""

import pathlib
import re
import time

import pytest

from harness import chroot
from harness.sng import Syslogng, wait_for
from harness.ncdata import dmesg_prefix, ext, ext_fragments, plain

pytestmark = [pytest.mark.chroot, pytest.mark.syslogng]

PACKAGES = chroot.SYSLOGNG_4X


@pytest.fixture(scope="module")
def trixie():
    why = chroot.why_unavailable()
    if why:
        pytest.skip(why)
    return chroot.ensure_chroot("trixie", PACKAGES)


def test_chroot_has_syslog_ng_4(trixie):
    out = chroot.run_in_chroot(trixie, ["syslog-ng", "--version"], capture_output=True, text=True,
                               timeout=60).stdout
    m = re.search(r"Installer-Version:\s*(\d+)\.(\d+)", out)
    assert m and int(m.group(1)) >= 4, out


def test_source_on_syslog_ng_4_strict(trixie):
    s = Syslogng(chroot=trixie, version="4.4", capture_pairs=True)
    try:
        s.start(timeout=40)
        tx = s.sender("127.0.0.2")
        tx.send(ext(5, "eth0: link up", level=6, lines=["SUBSYSTEM=net", "DEVICE=n2", "rack=r7"]))
        for f in reversed(ext_fragments(6, "W" * 2300, level=4)):
            tx.send(f)
        tx2 = s.sender("127.0.0.3")
        tx2.send(plain(7000000, "plain on 4.x"))
        tx2.send(plain(8000000, "cut " + "C" * 1100)[:1000])  # never completed
        want2 = ["[    7.000000] plain on 4.x", "[    8.000000] cut " + "C" * 977 + " [incomplete]"]
        lines2 = wait_for(lambda: len(s.log_lines("127.0.0.3")) >= 2 and s.log_lines("127.0.0.3"), 10)
        assert lines2[0] == want2[0]
        assert lines2[1].startswith("[    8.000000] cut CCC") and lines2[1].endswith(" [incomplete]")
        lines = wait_for(lambda: len(s.log_lines("127.0.0.2")) >= 2 and s.log_lines("127.0.0.2"), 10)
        assert lines == [dmesg_prefix(1005000) + "eth0: link up", dmesg_prefix(1006000) + "W" * 2300]
        pairs = [p for p in s.pairs() if p["HOST"] == "127.0.0.2"]
        assert pairs[0][".netconsole.subsystem"] == "net"
        assert pairs[0][".netconsole.userdata.rack"] == "r7"
        assert pairs[0]["PRIORITY"] == "info" and pairs[0]["FACILITY"] == "kern"
        assert pairs[1][".netconsole.fragments"] == "3"
        # 4.x has LogMessage.set_source_ipaddress(): SOURCEIP is the sender there
        assert pairs[0]["SOURCEIP"] == "127.0.0.2"
        # a reload keeps the socket and the held state
        frags = ext_fragments(9, "R" * 1500)
        tx.send(frags[0])
        s.reload(timeout=20)
        tx.send(frags[1])
        lines = wait_for(lambda: len(s.log_lines("127.0.0.2")) >= 3 and s.log_lines("127.0.0.2"), 10)
        assert lines[2] == dmesg_prefix(1009000) + "R" * 1500
        # bad input on 4.x too: still running, bytes kept visible
        bad = s.sender("127.0.0.4")
        for p in (b"", b"\x00" * 50, b"before\x00after\n", b"bad \xff\xfe utf8\n", b"x" * 65507,
                  b"6,1,1,-,ncfrag=9/3;x\n", bytes(range(256))):
            bad.send(p)
        text = wait_for(lambda: "bad \\xff\\xfe utf8" in s.read_log("127.0.0.4") and s.read_log("127.0.0.4"), 10)
        assert "before\\x00after" in text
        assert s.alive()
        assert "Traceback" not in s.stderr_text()
        assert "not a subclass" not in s.stderr_text()
    finally:
        rc = s.stop()
        print(s.stderr_tail(60))
        s.cleanup()  # its directory lives in the shared chroot's /tmp
    assert rc == 0


def test_debian13_stock_config_with_dropin_passes_syntax_only(trixie):
    """Debian 13's own syslog-ng.conf (@version: 4.4) + the drop-in in conf.d + the SCL
    under the include path (a private copy inside the chroot's /tmp)."""
    import shutil
    import tempfile
    from harness import sng as sngmod
    work = pathlib.Path(tempfile.mkdtemp(prefix="stock-", dir=str(trixie / "tmp")))
    try:
        etc = work / "etc"
        shutil.copytree(trixie / "etc" / "syslog-ng", etc, symlinks=True)
        (work / "include" / "scl" / "netconsole").mkdir(parents=True)
        shutil.copy(sngmod.SCL, work / "include" / "scl" / "netconsole" / "netconsole.conf")
        shutil.copy(sngmod.DROPIN, etc / "conf.d" / "netconsole.conf")
        inside = "/" + str(work.relative_to(trixie))
        stock = (etc / "syslog-ng.conf").read_text()
        assert stock.startswith("@version: 4") or "\n@version: 4" in stock
        (etc / "syslog-ng.conf").write_text(stock.replace("/etc/syslog-ng/", inside + "/etc/"))
        version = re.search(r"^@version:\s*(\S+)", stock, re.M).group(1)
        (work / "main.conf").write_text(
            '@version: %s\n@define include-path "%s/etc:%s/include:/usr/share/syslog-ng/include"\n'
            '@include "%s/etc/syslog-ng.conf"\n' % (version, inside, inside, inside))
        r = chroot.run_in_chroot(trixie, ["syslog-ng", "--syntax-only", "-f", inside + "/main.conf",
                                          "--preprocess-into", inside + "/pre.conf"],
                                 capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        pre = (work / "pre.conf").read_text()
        assert 'class("syslogng_netconsole.sng.source.NetconsoleSource")' in pre
        assert 'file("/var/log/netconsole/${HOST}.log"' in pre
    finally:
        shutil.rmtree(work, ignore_errors=True)


def test_bad_option_at_reload_on_4x_reverts(trixie):
    """4.x reverts to the running config when a reload's init() fails: the source
    returns False there (3.x: see test_reload.py) and keeps receiving."""
    s = Syslogng(chroot=trixie, version="4.4")
    try:
        s.start(timeout=40)
        tx = s.sender("127.0.0.5")
        tx.send(ext(1, "before"))
        wait_for(lambda: s.read_log("127.0.0.5"), 10)
        s.defines["netconsole_port"] = "66x"
        s.write_config()
        r = s.ctl("reload", timeout=30)
        assert r.returncode != 0 or "invalid value '66x'" in s.stderr_text()
        wait_for(lambda: "invalid value '66x' for option 'port'" in s.stderr_text(), 10)
        time.sleep(0.5)
        assert s.alive()
        assert "keeping the previous settings" not in s.stderr_text()
        tx.send(ext(2, "after"))
        wait_for(lambda: len(s.log_lines("127.0.0.5")) == 2, 10)
    finally:
        s.stop()
        print(s.stderr_tail(40))
        s.cleanup()
