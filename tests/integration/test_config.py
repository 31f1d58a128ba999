"""The SCL file and drop-in as Debian uses them, and how the source treats its options:
stock config + drop-in pass --syntax-only; a bad option fails start-up with one clear
message; a busy port degrades and recovers; IPv6; the receive-buffer warning."""

import pathlib
import shutil
import socket
import subprocess

import pytest

from harness import sng as sngmod
from harness.sng import Sender, wait_for
from harness.ncdata import dmesg_prefix, ext

pytestmark = pytest.mark.syslogng

STOCK = pathlib.Path("/etc/syslog-ng")


@pytest.fixture
def debian_tree(tmp_path):
    """A copy of Debian's /etc/syslog-ng with the drop-in in conf.d and the SCL installed
    as the package installs it (<include-path>/scl/netconsole/netconsole.conf)."""
    why = sngmod.available()
    if why:
        pytest.skip(why)
    if not (STOCK / "syslog-ng.conf").exists():
        pytest.skip("no stock /etc/syslog-ng/syslog-ng.conf here")
    etc = tmp_path / "etc"
    shutil.copytree(STOCK, etc, symlinks=True)
    include = tmp_path / "include"
    (include / "scl" / "netconsole").mkdir(parents=True)
    shutil.copy(sngmod.SCL, include / "scl" / "netconsole" / "netconsole.conf")
    shutil.copy(sngmod.DROPIN, etc / "conf.d" / "netconsole.conf")
    # the stock file names its own directory absolutely: point it at the copy
    stock = (STOCK / "syslog-ng.conf").read_text()
    assert "/etc/syslog-ng/conf.d/" in stock
    (etc / "syslog-ng.conf").write_text(stock.replace("/etc/syslog-ng/", str(etc) + "/"))
    # include-path: the copy first, then the real SCL (scl.conf includes 'scl/*/*.conf')
    wrapper = tmp_path / "main.conf"
    wrapper.write_text('@version: %s\n@define include-path "%s:%s:/usr/share/syslog-ng/include"\n'
                       '@include "%s"\n' % (_stock_version(stock), etc, include, etc / "syslog-ng.conf"))
    return wrapper


def _stock_version(text):
    for line in text.splitlines():
        if line.startswith("@version:"):
            return line.split(":", 1)[1].strip()
    return "3.38"


def test_stock_debian_config_with_dropin_passes_syntax_only(debian_tree, tmp_path):
    pre = tmp_path / "preprocessed.conf"
    r = subprocess.run([sngmod.SYSLOGNG, "--syntax-only", "-f", str(debian_tree), "--preprocess-into", str(pre)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    r = subprocess.run([sngmod.SYSLOGNG, "--syntax-only", "-f", str(debian_tree)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    text = pre.read_text()
    # the drop-in expanded with the SCL defaults: the real source, port and log dir
    assert 'class("syslogng_netconsole.sng.source.NetconsoleSource")' in text
    assert '"port" "6666"' in text
    assert '"ip" "0.0.0.0"' in text
    assert 'file("/var/log/netconsole/${HOST}.log"' in text
    assert "flags(final)" in text


def test_invalid_option_fails_start_with_one_clear_message(tmp_path):
    why = sngmod.available()
    if why:
        pytest.skip(why)
    s = sngmod.Syslogng(tmp_path, defines={"netconsole_port": "66x"})
    with pytest.raises(sngmod.SyslogngError):
        s.start(timeout=10)
    s.stop()
    err = s.stderr_text()
    assert "invalid value '66x' for option 'port'" in err
    assert s.proc.returncode not in (0, None)


def test_busy_port_degrades_then_recovers(start_sng, tmp_path):
    port = sngmod.free_udp_port()
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    blocker.bind(("127.0.0.1", port))
    try:
        s = sngmod.Syslogng(tmp_path / "busy", port=port)
        s.write_config()
        # start() waits for the port, which the blocker holds: start by hand
        s._stderr = open(s.stderr_path, "ab")
        s.proc = subprocess.Popen(s.argv(), stdin=subprocess.DEVNULL, stdout=s._stderr, stderr=s._stderr,
                                  env=s.environment())
        wait_for(lambda: "syslog-ng starting up" in s.stderr_text() or not s.alive(), 15)
        assert s.alive(), s.stderr_text()
        assert "cannot listen on 127.0.0.1 port %d" % port in s.stderr_text()
    finally:
        blocker.close()
    try:
        # the source retries every 5 s
        wait_for(lambda: "listening on 127.0.0.1 port %d" % port in s.stderr_text(), 10)
        with Sender("127.0.0.40", port) as tx:
            tx.send(ext(3, "after the port came free"))
            wait_for(lambda: s.read_log("127.0.0.40"), 5)
        assert s.log_lines("127.0.0.40") == [dmesg_prefix(1003000) + "after the port came free"]
        assert s.counter("source.bind_errors") >= 1
    finally:
        s.stop()
        print(s.stderr_tail())


def _ipv6_loopback():
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_DGRAM) as t:
            t.bind(("::1", 0))
        return True
    except OSError:
        return False


def test_ipv4_and_ipv6_on_one_source(start_sng):
    if not _ipv6_loopback():
        pytest.skip("no IPv6 loopback (::1) on this machine")
    s = start_sng(defines={"netconsole_ip": "127.0.0.1,::1"})
    with Sender("::1", s.port, dst="::1") as tx6, Sender("127.0.0.41", s.port) as tx4:
        tx6.send(ext(1, "over IPv6"))
        tx4.send(ext(1, "over IPv4"))
        wait_for(lambda: s.read_log("::1") and s.read_log("127.0.0.41"), 5)
    assert s.log_lines("::1") == [dmesg_prefix(1001000) + "over IPv6"]
    assert s.log_lines("127.0.0.41") == [dmesg_prefix(1001000) + "over IPv4"]


def test_receive_buffer_warning_when_the_kernel_caps_it(start_sng):
    rmem_max = int(pathlib.Path("/proc/sys/net/core/rmem_max").read_text())
    port2 = sngmod.free_udp_port()
    extra = ('source s_big { netconsole(ip("127.0.0.1") port("%d") rcvbuf("%d")); };\n'
             'log { source(s_big); };\n' % (port2, rmem_max * 4))
    s = start_sng(prelude=extra)
    wait_for(lambda: "listening on 127.0.0.1 port %d" % port2 in s.stderr_text(), 5)
    assert "the kernel capped the receive buffer (SO_RCVBUF) at %d bytes instead of %d" % (
        rmem_max, rmem_max * 4) in s.stderr_text()


def test_reuseport_and_periodic_counters(start_sng):
    """reuseport("yes") sets SO_REUSEPORT (another SO_REUSEPORT socket can share the
    port); stats_interval("1") logs the counters every second."""
    port2 = sngmod.free_udp_port()
    extra = ('source s_rp { netconsole(ip("127.0.0.1") port("%d") reuseport("yes") stats_interval("1")); };\n'
             'log { source(s_rp); };\n' % port2)
    s = start_sng(prelude=extra)
    wait_for(lambda: "listening on 127.0.0.1 port %d" % port2 in s.stderr_text(), 5)
    with Sender("127.0.0.42", port2) as tx:
        tx.send(ext(1, "counted"))
        wait_for(lambda: "counters (periodic) port=%d" % port2 in s.stderr_text(), 5)
    line = [ln for ln in s.stderr_text().splitlines() if "counters (periodic) port=%d" % port2 in ln][-1]
    assert "source.datagrams=1" in line
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    try:
        other.bind(("127.0.0.1", port2))  # EADDRINUSE unless syslog-ng's socket has SO_REUSEPORT
    finally:
        other.close()
    # the drop-in's own source (no reuseport) refuses the same
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    other.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    with pytest.raises(OSError):
        other.bind(("127.0.0.1", s.port))
    other.close()
