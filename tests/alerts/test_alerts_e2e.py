"""End to end with a real kernel's traffic: the committed capture of Debian's 6.1
kernel in QEMU hitting a NULL-pointer Oops that panics (panic_on_oops=1), made by
the kernel tier (tests/kernel/make_fixtures.py), is replayed as UDP datagrams into
a real syslog-ng with alerts to aiosmtpd and prometheus-alertmanager. Prints the
delays from the report's last datagram to the incident being stored and to each
delivery."""

import pathlib
import re
import socket
import sqlite3
import time

import pytest

from alert_servers import wait_for
from harness.sng import Syslogng, available
from syslogng_netconsole.pcap import read_packets
from test_alerts_syslogng import incidents, prelude

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]
PCAP = (pathlib.Path(__file__).resolve().parents[1] / "fixtures"
        / "kernel-6.1-extended-oops-panic.pcap")
SEQ = re.compile(rb"^(?:[^,;]*,)?\d+,(\d+),\d+,[^;]*;")


def replay(pcap, port, max_gap=0.01):
    """Send the capture's datagrams from 127.0.0.1 with their gaps capped; returns
    {seq: send time} for the extended records."""
    sent = {}
    pkts = [p for p in read_packets(str(pcap)) if p.payload]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
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


def test_real_kernel_null_deref_gives_mail_and_alertmanager_alert(tmp_path, smtp,
                                                                  alertmanager):
    if available():
        pytest.skip(available())
    if not PCAP.exists():
        pytest.skip("%s not present (made by tests/kernel/make_fixtures.py)" % PCAP)
    mail = smtp("none")
    state = tmp_path / "alertstate"
    sng = Syslogng(tmp_path / "sng", prelude=prelude(
        state, smtp_host="127.0.0.1", smtp_port=mail.port, smtp_tls="none",
        mail_to="ops@example.org", alertmanager_url=alertmanager.url))
    sng.start()
    try:
        sent = replay(PCAP, sng.port)
        assert wait_for(lambda: mail.messages, 20), sng.stderr_tail()
        am = wait_for(lambda: [a for a in alertmanager.alerts()
                               if a["labels"].get("host") == "127.0.0.1"], 10)
        (inc,) = incidents(state)
        assert inc["type"] == "NULL-POINTER-DEREFERENCE" and inc["panicked"]
        assert "nctest_null_deref" in inc["title"]
        (msg,) = mail.parsed()
        assert msg["Subject"] == "[netconsole] 127.0.0.1: %s" % inc["title"]
        assert "Kernel panic - not syncing: Fatal exception" in msg.get_content()
        assert am[0]["labels"]["severity"] == "critical"
        assert am[0]["annotations"]["alert_id"] == inc["id"]
        db = sqlite3.connect(str(state / "outbox.db"))
        done = dict(db.execute("SELECT channel, done_at FROM deliveries"))
        db.close()
        last = sent[inc["last_seq"]]
        stored = inc["stored_at"]
        am_done = [t for ch, t in done.items() if ch.startswith("alertmanager")][0]
        print("\nreport's last datagram -> incident stored %.2f s; stored -> mail received "
              "%.3f s, stored -> Alertmanager accepted %.3f s; last datagram -> mail %.2f s"
              % (stored - last, mail.messages[0]["t"] - stored, am_done - stored,
                 mail.messages[0]["t"] - last))
        assert mail.messages[0]["t"] - stored < 2.0 and am_done - stored < 2.0
    finally:
        sng.stop()
