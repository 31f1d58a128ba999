"""Hosts by name, with a real syslog-ng 3.38 and the unmodified drop-in: a sender whose
netconsole target carries configfs userdata `hostname=db-17` (extended records, as the
kernel sends them), and one that names itself only in its boot log (systemd's
"Hostname set to" line, plain format). The mail subject and body, the Alertmanager
labels, the stored incident and `incidents --host NAME` name the host; the records
carry `.netconsole.hostname`. (The kernel-tier guest with userdata hostname is issue
15's next step: the committed 6.12 configfs capture has userdata guest and role.)"""

import json
import subprocess
import sys

import pytest

from alert_servers import wait_for
from harness import samples
from harness.sng import REPO, Syslogng, available
from test_alerts_syslogng import incidents

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]


def with_userdata(lines, seq=900, start_us=22_000_000):
    return [("4,%d,%d,-;%s\n hostname=db-17\n rack=r12\n" % (seq + i, start_us + i * 97, l)).encode()
            for i, l in enumerate(lines)]


def plain(lines, start_us=33_000_000):
    return [("[%5d.%06d] %s\n" % ((start_us + i * 97) // 10 ** 6, (start_us + i * 97) % 10 ** 6,
                                  l)).encode() for i, l in enumerate(lines)]


def test_hosts_are_named_in_alerts_store_cli_and_pairs(tmp_path, smtp, alertmanager):
    why = available()
    if why:
        pytest.skip(why)
    mail = smtp()
    sng = Syslogng(tmp_path / "sng", capture_pairs=True, defines={"netconsole_alert_options": (
        "smtp_host('127.0.0.1') smtp_port('%d') smtp_tls('none') mail_to('ops@example.org') "
        "alertmanager_url('%s')" % (mail.port, alertmanager.url))})
    with sng:
        sng.sender("127.0.8.1").send_all(with_userdata(samples.OOPS_LINES + samples.PANIC_LINES),
                                         pace=0.001)
        sng.sender("127.0.8.2").send_all(plain(
            ["systemd[1]: Hostname set to <web-3.example.org>.", "systemd[1]: Started a."]
            + samples.WARN_LINES), pace=0.001)
        assert wait_for(lambda: len(incidents(sng.statedir)) == 2, 20), sng.stderr_tail()
        assert wait_for(lambda: len(mail.messages) == 2, 20), sng.stderr_tail()
        subjects = sorted(str(m["Subject"]) for m in mail.parsed())
        assert subjects[0].startswith("[netconsole] db-17 (127.0.8.1): BUG:"), subjects
        assert subjects[1].startswith("[netconsole] web-3.example.org (127.0.8.2): WARNING"), subjects
        assert any("Host:      db-17 (127.0.8.1)" in m.get_content() for m in mail.parsed()
                   if not m.is_multipart())
        am = wait_for(lambda: [a for a in alertmanager.alerts()
                               if a["labels"].get("host") == "127.0.8.1"], 20)
        assert am and am[0]["labels"]["hostname"] == "db-17"
        by_host = {r["host"]: r for r in incidents(sng.statedir)}
        assert by_host["127.0.8.1"]["hostname"] == "db-17"
        assert by_host["127.0.8.2"]["hostname"] == "web-3.example.org"
        pairs = [p for p in sng.pairs() if p.get("HOST") == "127.0.8.1"
                 and ".netconsole.incident" not in p]
        assert pairs and pairs[-1].get(".netconsole.hostname") == "db-17"
        assert pairs[-1].get(".netconsole.userdata.rack") == "r12"
    out = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "incidents",
                          "--state-dir", str(sng.statedir), "--host", "db-17", "--json"],
                         cwd=str(REPO), capture_output=True, text=True, timeout=30)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0 and [r["host"] for r in rows] == ["127.0.8.1"], out.stderr
