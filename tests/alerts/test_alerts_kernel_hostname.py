"""Hosts by name from a real kernel (issue 15's acceptance test): Debian's 6.12 kernel
boots in QEMU with a configfs netconsole target whose userdata carries
`hostname=db-17` (harness.guest_run, ``boot_guest(..., hostname=)``), hits the
NULL-pointer Oops (no panic) and sends to a real syslog-ng 3.38 running the unmodified
drop-in, its alert options pointed at a real aiosmtpd and a real prometheus-alertmanager.
The mail's subject and body, the Alertmanager alert's labels, the stored incident and the
per-host records name the host db-17 next to its address (127.0.0.1: QEMU's user-mode
network, see guest_run). One boot, about half a minute under TCG.

The same names from crafted datagrams, on 3.38 and 4.x and for the boot-log source of
a name too: test_alerts_hostnames.py."""

import re
import time

import pytest

from alert_servers import wait_for
from harness import console_compare as cc
from harness import guest_run
from harness.sng import Syslogng
from test_alerts_syslogng import incidents

pytestmark = [pytest.mark.kernel, pytest.mark.alerts, pytest.mark.syslogng]

KERNEL, MODE, SCENARIO = "6.12", "configfs", "oops"      # userdata needs 6.9+
NAME = "db-17"
ADDR = "127.0.0.1"            # the guest as the collector sees it (slirp)
# the detector's title of nctest's NULL-pointer write, as the kernel tier stores it
# for this scenario (and `analyze` finds in tests/fixtures/kernel-6.12-configfs-oops.pcap)
TITLE = "BUG: unable to handle kernel NULL pointer dereference in nctest_null_deref"
QUIET = 6.5                   # > the detector's quiet timeout: no second mail comes


def test_real_kernel_crash_names_its_host_in_mail_and_alertmanager(tmp_path, smtp,
                                                                   alertmanager):
    why = guest_run.why_no_guest(KERNEL)
    if why:
        pytest.skip(why)
    mail = smtp()
    sng = Syslogng(tmp_path / "sng", capture_pairs=True, defines={"netconsole_alert_options": (
        "smtp_host('127.0.0.1') smtp_port('%d') smtp_tls('none') mail_to('ops@example.org') "
        "alertmanager_url('%s')" % (mail.port, alertmanager.url))})
    sng.start(timeout=40)
    try:
        run = guest_run.boot_guest(KERNEL, MODE, SCENARIO, sng.port, tmp_path / "guest",
                                   hostname=NAME)
        # as in the kernel tier: a hang in the guest's own shutdown after init's
        # power-off marker comes after its stream; any other time-out fails
        assert run.poweroff_hang or not run.timed_out, run.serial_text()[-2000:]
        console, _ = cc.console_lines(run.serial_log.read_bytes())
        for pattern, n in guest_run.EXPECT[SCENARIO]:
            assert sum(1 for x in console if re.search(pattern, x.text)) >= n, \
                "the guest's console lacks %d x %r (did it oops?)" % (n, pattern)
        assert wait_for(lambda: mail.messages, 30), sng.stderr_tail()
        am = wait_for(lambda: [a for a in alertmanager.alerts()
                               if a["labels"].get("host") == ADDR], 10)
        time.sleep(QUIET)
        pairs = sng.pairs()
    finally:
        sng.stop()

    # the guest's kernel sent the name: every record of its NIC's pcap carries it
    records = cc.cli_decode(run.pcap)
    assert records and all(r.get("userdata.hostname") == NAME
                           and r.get("userdata.guest") == "nctest-guest" for r in records), \
        "the guest's records lack userdata hostname=%s: %r" % (NAME, records[:1])

    (inc,) = incidents(sng.statedir)
    assert (inc["host"], inc["hostname"], inc["type"], inc["panicked"]) == \
        (ADDR, NAME, "NULL-POINTER-DEREFERENCE", False), inc
    assert inc["title"] == TITLE
    assert [(i["type"], i["title"]) for i in cc.cli_json("analyze", run.pcap)] == \
        [(inc["type"], inc["title"])]

    (msg,) = mail.parsed()
    subject = str(msg["Subject"])
    assert subject == "[netconsole] new: %s (%s): %s" % (NAME, ADDR, TITLE)
    body = msg.get_body(preferencelist=("plain",)).get_content()
    assert "Host:      %s (%s)" % (NAME, ADDR) in body
    assert "Labels:    guest=nctest-guest role=%s" % records[0]["userdata.role"] in body
    assert "RIP: 0010:nctest_null_deref" in body

    (alert,) = am
    labels = alert["labels"]
    # the guest's other userdata entries are the host's labels
    want = {"alertname": "KernelCrash", "host": ADDR, "instance": ADDR, "hostname": NAME,
            "guest": records[0]["userdata.guest"], "role": records[0]["userdata.role"],
            "type": "NULL-POINTER-DEREFERENCE", "severity": "error", "source": "netconsole",
            "signature": inc["signature"]}
    assert {k: labels.get(k) for k in want} == want, labels
    assert alert["annotations"]["summary"] == "%s (%s): %s" % (NAME, ADDR, TITLE)

    # every record the guest sent was posted, and names it (learnt from the first)
    recs = [p for p in pairs if p.get("HOST") == ADDR and ".netconsole.incident" not in p]
    assert len(recs) == len(records), "the guest sent %d records, syslog-ng posted %d" \
        % (len(records), len(recs))
    assert all(p.get(".netconsole.hostname") == NAME for p in recs), \
        [p for p in recs if p.get(".netconsole.hostname") != NAME][:2]
    print("\nlive %s %s %s hostname=%s: boot %.1f s (+%.1f s build, %s); %d records, all "
          "named\n  Subject: %s\n  Alertmanager labels: %s"
          % (KERNEL, MODE, SCENARIO, NAME, run.seconds, run.build_seconds, run.accel,
             len(recs), subject, dict(sorted(labels.items()))))
