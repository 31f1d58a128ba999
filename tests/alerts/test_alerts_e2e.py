"""End to end with a real kernel's traffic: the committed capture of Debian's 6.1
kernel in QEMU hitting a NULL-pointer Oops that panics (panic_on_oops=1), made by
the kernel tier (tests/kernel/make_fixtures.py), is replayed as UDP datagrams into
a real syslog-ng with alerts to aiosmtpd and prometheus-alertmanager; also the
same Oops without a panic (6.12, configfs target). Prints the
delays from the report's last datagram to the incident being stored and to each
delivery."""

import pathlib
import re
import shutil
import socket
import sqlite3
import subprocess
import time

import pytest

from alert_servers import wait_for
from harness.sng import Syslogng, available
from syslogng_netconsole.ingest.capture import read_packets
from test_alerts_syslogng import incidents, prelude

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]
FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
# capture -> (panicked, severity): the NULL-pointer Oops with panic_on_oops=1 (6.1,
# extended format) and without (6.12, configfs target with userdata)
CASES = {"kernel-6.1-extended-oops-panic": (True, "critical"),
         "kernel-6.12-configfs-oops": (False, "error")}
SEQ = re.compile(rb"^(?:[^,;]*,)?\d+,(\d+),\d+,[^;]*;")


def replay(pcap, port, src, max_gap=0.01):
    """Send the capture's datagrams from 127.0.0.1 with their gaps capped; returns
    {seq: send time} for the extended records."""
    sent = {}
    pkts = [p for p in read_packets(str(pcap)) if p.payload]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind((src, 0))
        prev = None
        for p in pkts:
            if prev is not None:
                time.sleep(min(max(p.ts - prev, 0.0), max_gap))
            prev = p.ts
            s.sendto(p.payload, ("127.0.0.1", port))
            m = SEQ.match(p.payload)
            if m:
                sent[int(m.group(1))] = time.time()
    return sent


def collector(tmp_path, state, mail, alertmanager):
    """A started syslog-ng whose incidents mail `mail` and push to `alertmanager`."""
    sng = Syslogng(tmp_path / "sng", prelude=prelude(
        state, smtp_host="127.0.0.1", smtp_port=mail.port, smtp_tls="none",
        mail_to="ops@example.org", alertmanager_url=alertmanager.url))
    return sng.start()


@pytest.mark.parametrize("name", sorted(CASES))
def test_real_kernel_null_deref_gives_mail_and_alertmanager_alert(name, tmp_path, smtp,
                                                                  alertmanager):
    panicked, severity = CASES[name]
    pcap = FIXTURES / (name + ".pcap")
    if available():
        pytest.skip(available())
    if not pcap.exists():
        pytest.skip("%s not present (made by tests/kernel/make_fixtures.py)" % pcap)
    host = "127.0.0.%d" % (10 + sorted(CASES).index(name))    # one sender per case
    mail = smtp("none")
    state = tmp_path / "alertstate"
    sng = collector(tmp_path, state, mail, alertmanager)
    try:
        # the capture's own timing (gaps up to 1 s): compressed, the boot-log replay's
        # seq gaps would hold the report in the reorder window, which live they do not
        sent = replay(pcap, sng.port, host, max_gap=1.0)
        assert wait_for(lambda: mail.messages, 20), sng.stderr_tail()
        am = wait_for(lambda: [a for a in alertmanager.alerts()
                               if a["labels"].get("host") == host], 10)
        (inc,) = incidents(state)
        assert inc["type"] == "NULL-POINTER-DEREFERENCE" and inc["panicked"] is panicked
        assert "nctest_null_deref" in inc["title"]
        (msg,) = mail.parsed()
        # a fresh collector: its first incident of a signature is news
        assert msg["Subject"] == "[netconsole] new: %s: %s" % (host, inc["title"])
        assert "RIP: 0010:nctest_null_deref" in msg.get_content()
        assert ("Kernel panic - not syncing: Fatal exception" in msg.get_content()) is panicked
        assert am[0]["labels"]["severity"] == severity
        assert am[0]["annotations"]["alert_id"] == inc["id"]
        db = sqlite3.connect(str(state / "outbox.db"))
        done = dict(db.execute("SELECT channel, done_at FROM deliveries"))
        db.close()
        last = sent[inc["last_seq"]]
        stored = inc["stored_at"]
        am_done = [t for ch, t in done.items() if ch.startswith("alertmanager")][0]
        print("\n%s: report's last datagram -> incident stored %.2f s; stored -> mail received "
              "%.3f s, stored -> Alertmanager accepted %.3f s; last datagram -> mail %.2f s"
              % (name, stored - last, mail.messages[0]["t"] - stored, am_done - stored,
                 mail.messages[0]["t"] - last))
        assert mail.messages[0]["t"] - stored < 2.0 and am_done - stored < 2.0
    finally:
        sng.stop()


def test_sysrq_task_dump_gives_no_alert(tmp_path, smtp):
    """A real sysrq-t dump (stack traces, not a crash) alerts nobody: replayed from one
    host, followed by the real Oops from another host, only the Oops is mailed."""
    if available():
        pytest.skip(available())
    for n in ("kernel-6.1-extended-sysrq-t", "kernel-6.1-extended-oops-panic"):
        if not (FIXTURES / (n + ".pcap")).exists():
            pytest.skip("%s.pcap not present" % n)
    mail = smtp("none")
    state = tmp_path / "alertstate"
    sng = Syslogng(tmp_path / "sng", prelude=prelude(
        state, smtp_host="127.0.0.1", smtp_port=mail.port, smtp_tls="none",
        mail_to="ops@example.org"))
    sng.start()
    try:
        replay(FIXTURES / "kernel-6.1-extended-sysrq-t.pcap", sng.port, "127.0.0.20")
        replay(FIXTURES / "kernel-6.1-extended-oops-panic.pcap", sng.port, "127.0.0.21")
        assert wait_for(lambda: mail.messages, 20), sng.stderr_tail()
        time.sleep(3.0)                # the sysrq host's stream is long over by now
        assert [str(m["Subject"]).split(": BUG")[0] for m in mail.parsed()] == \
            ["[netconsole] new: 127.0.0.21"]
        assert [i["host"] for i in incidents(state)] == ["127.0.0.21"]
    finally:
        sng.stop()


def test_live_kernel_null_deref_gives_mail_and_alertmanager_alert(tmp_path, smtp, alertmanager):
    """The same, live: Debian's 6.1 kernel boots in QEMU, sends extended netconsole to
    the collector and hits the NULL-pointer Oops with panic_on_oops=1."""
    from harness import guest_build, guest_run
    from harness.guest_run import missing_tools
    why = available() or missing_tools()
    if why:
        pytest.skip(why)
    if "6.1" not in guest_build.kernels():
        pytest.skip("Debian's 6.1 kernel (with headers) is not installed")
    mail = smtp("none")
    state = tmp_path / "alertstate"
    sng = collector(tmp_path, state, mail, alertmanager)
    # the datagrams as they reach the collector's host: QEMU's user-mode network
    # forwards them later than its pcap stamps them (measured 0.3-1 s under TCG)
    lo_pcap = tmp_path / "lo.pcap"
    dump = None
    if shutil.which("tcpdump"):
        dump = subprocess.Popen(["tcpdump", "-i", "lo", "-U", "-w", str(lo_pcap), "udp", "port",
                                 str(sng.port)], stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
        time.sleep(1.0)
    try:
        run = guest_run.boot_guest("6.1", "extended", "oops-panic", sng.port, tmp_path / "guest")
        assert not run.timed_out, run.serial_text()[-2000:]
        assert wait_for(lambda: mail.messages, 30), sng.stderr_tail()
        am = wait_for(lambda: [a for a in alertmanager.alerts()
                               if a["labels"].get("host") == "127.0.0.1"], 10)
        (inc,) = incidents(state)
        assert inc["type"] == "NULL-POINTER-DEREFERENCE" and inc["panicked"] is True
        assert "nctest_null_deref" in inc["title"]
        (msg,) = mail.parsed()
        assert msg["Subject"] == "[netconsole] new: 127.0.0.1: %s" % inc["title"]
        assert "Kernel panic - not syncing: Fatal exception" in msg.get_content()
        assert am[0]["labels"]["severity"] == "critical"
        # QEMU's filter-dump stamps each datagram with the host's wall clock
        last = max(p.ts for p in read_packets(str(run.pcap)) if p.payload)
        db = sqlite3.connect(str(state / "outbox.db"))
        done = dict(db.execute("SELECT channel, done_at FROM deliveries"))
        db.close()
        am_done = [t for ch, t in done.items() if ch.startswith("alertmanager")][0]
        print("\nlive 6.1 oops-panic: guest's last datagram (QEMU's pcap clock) -> incident "
              "stored %.2f s; -> mail received %.2f s; -> Alertmanager accepted %.2f s"
              % (inc["stored_at"] - last, mail.messages[0]["t"] - last, am_done - last))
        if dump is not None:
            dump.terminate()
            dump.wait(10)
            dump = None
            arrived = max(p.ts for p in read_packets(str(lo_pcap)) if p.payload)
            # last_time: when the source fed the report's last line to the detector
            print("live 6.1 oops-panic: QEMU forwarded the last datagram %.2f s after its "
                  "pcap stamp; from its arrival on the collector's host: source processed it "
                  "%.3f s, incident stored %.3f s, mail received %.3f s, Alertmanager "
                  "accepted %.3f s" % (arrived - last, inc["last_time"] - arrived,
                                       inc["stored_at"] - arrived,
                                       mail.messages[0]["t"] - arrived, am_done - arrived))
        assert mail.messages[0]["t"] - inc["stored_at"] < 2.0
    finally:
        if dump is not None:
            dump.terminate()
            dump.wait(10)
        sng.stop()
