"""Hosts by name, with a real syslog-ng 3.38 and the unmodified drop-in: a sender whose
netconsole target carries configfs userdata `hostname=db-17` (extended records, as the
kernel sends them), and one that names itself only in its boot log (systemd's
"Hostname set to" line, plain format), on 3.38 and strict 4.x. The mail subject and body, the Alertmanager
labels, the stored incident and `incidents --host NAME` name the host; the records
carry `.netconsole.hostname`. (A real kernel's userdata hostname, from a 6.12 guest in
QEMU: test_alerts_kernel_hostname.py; the committed 6.12 configfs capture has userdata
guest and role only.)"""

import json
import subprocess
import sys

import pytest

from alert_servers import wait_for
from harness import chroot, samples
from harness.sng import REPO, Syslogng, available
from test_alerts_syslogng import incidents

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]


def with_userdata(lines, seq=900, start_us=22_000_000):
    return [("4,%d,%d,-;%s\n hostname=db-17\n rack=r12\n" % (seq + i, start_us + i * 97, l)).encode()
            for i, l in enumerate(lines)]


def plain(lines, start_us=33_000_000):
    return [("[%5d.%06d] %s\n" % ((start_us + i * 97) // 10 ** 6, (start_us + i * 97) % 10 ** 6,
                                  l)).encode() for i, l in enumerate(lines)]


@pytest.mark.parametrize("version", ["3.38", pytest.param("4.x", marks=pytest.mark.chroot)])
def test_hosts_are_named_in_alerts_store_cli_and_pairs(tmp_path, smtp, alertmanager, version):
    if version == "4.x":
        why = chroot.why_unavailable()
        kw = {} if why else {"chroot": chroot.ensure_chroot(
            "trixie", chroot.SYSLOGNG_4X),
            "version": "4.4"}
        hosts = ("127.0.8.3", "127.0.8.4")      # the Alertmanager is shared by both runs
    else:
        why, kw, hosts = available(), {"tmpdir": tmp_path / "sng"}, ("127.0.8.1", "127.0.8.2")
    if why:
        pytest.skip(why)
    mail = smtp()
    sng = Syslogng(capture_pairs=True, defines={"netconsole_alert_options": (
        "smtp_host('127.0.0.1') smtp_port('%d') smtp_tls('none') mail_to('ops@example.org') "
        "alertmanager_url('%s')" % (mail.port, alertmanager.url))}, **kw)
    sng.start(timeout=40)
    a, b = hosts
    try:
        sng.sender(a).send_all(with_userdata(samples.OOPS_LINES + samples.PANIC_LINES),
                               pace=0.001)
        sng.sender(b).send_all(plain(
            ["systemd[1]: Hostname set to <web-3.example.org>.", "systemd[1]: Started a."]
            + samples.WARN_LINES), pace=0.001)
        assert wait_for(lambda: len(incidents(sng.statedir)) == 2, 20), sng.stderr_tail()
        assert wait_for(lambda: len(mail.messages) == 2, 20), sng.stderr_tail()
        subjects = sorted(str(m["Subject"]) for m in mail.parsed())
        assert subjects[0].startswith("[netconsole] new: db-17 (%s): BUG:" % a), subjects
        assert subjects[1].startswith("[netconsole] new: web-3.example.org (%s): WARNING" % b), \
            subjects
        assert any("Host:      db-17 (%s)" % a in m.get_content() for m in mail.parsed()
                   if not m.is_multipart())
        am = wait_for(lambda: [x for x in alertmanager.alerts() if x["labels"].get("host") == a],
                      20)
        assert am and am[0]["labels"]["hostname"] == "db-17"
        by_host = {r["host"]: r for r in incidents(sng.statedir)}
        assert by_host[a]["hostname"] == "db-17"
        assert by_host[b]["hostname"] == "web-3.example.org"
        pairs = [p for p in sng.pairs() if p.get("HOST") == a and ".netconsole.incident" not in p]
        assert pairs and pairs[-1].get(".netconsole.hostname") == "db-17"
        assert pairs[-1].get(".netconsole.userdata.rack") == "r12"
    finally:
        sng.stop()
    out = subprocess.run([sys.executable, "-m", "syslogng_netconsole", "incidents",
                          "--state-dir", str(sng.statedir), "--host", "db-17", "--json"],
                         cwd=str(REPO), capture_output=True, text=True, timeout=30)
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert out.returncode == 0 and [r["host"] for r in rows] == [a], out.stderr
