"""Alerts from a real syslog-ng 3.38: the netconsole() source receives real UDP
datagrams of a kernel NULL-pointer Oops, the incidents destination (SCL block
``netconsole_incidents`` with alert options) detects it, and the alert reaches a
real aiosmtpd, a local webhook and prometheus-alertmanager. Also: receivers down
and syslog-ng restarted while alerts wait (each alert arrives once per channel),
and reloads that must not leak delivery threads."""

import json
import os
import pathlib
import sqlite3
import time

import pytest

from alert_servers import HttpServer, SmtpServer, free_port, wait_for
from harness import samples
from harness.sng import Syslogng, available

pytestmark = [pytest.mark.alerts, pytest.mark.syslogng]


@pytest.fixture(autouse=True)
def _need_syslogng():
    why = available()
    if why:
        pytest.skip(why)


def extended(lines, seq=700, start_us=12_345_678, release="6.1.0-27-amd64"):
    out = []
    for i, line in enumerate(lines):
        body = "".join(c if 0x20 <= ord(c) < 0x7f and c != "\\" else "\\x%02x" % ord(c)
                       for c in line)
        out.append(("%s,4,%d,%d,-;%s\n" % (release, seq + i, start_us + i * 97, body)).encode())
    return out


def prelude(state, **opts):
    """A second incidents destination with alert options, through the SCL block."""
    args = " ".join('%s("%s")' % (k, v) for k, v in opts.items())
    return ('destination d_alerts {\n    netconsole_incidents(state_dir("%s") persist-name("alerts")\n'
            '        %s);\n};\nlog { source(s_netconsole); destination(d_alerts); };\n'
            % (state, args))


def incidents(state):
    p = pathlib.Path(state) / "incidents.jsonl"
    return [json.loads(l) for l in p.read_text().splitlines()] if p.exists() else []


def outbox_rows(state):
    p = pathlib.Path(state) / "outbox.db"
    if not p.exists():
        return []
    db = sqlite3.connect("file:%s?mode=ro" % p, uri=True, timeout=5)
    try:
        return db.execute("SELECT alert_id, channel, state, attempts FROM deliveries").fetchall()
    except sqlite3.OperationalError:
        return []
    finally:
        db.close()


def alert_threads(pid):
    names = []
    for t in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/comm" % (pid, t)) as f:
                names.append(f.read().strip())
        except OSError:
            pass
    return sorted(n for n in names if n.startswith("nc-alert"))


def test_oops_reaches_mail_webhook_and_alertmanager(tmp_path, smtp, http, alertmanager):
    mail = smtp("none")
    web = http()
    state = tmp_path / "alertstate"
    sng = Syslogng(tmp_path / "sng", prelude=prelude(
        state, smtp_host="127.0.0.1", smtp_port=mail.port, smtp_tls="none",
        mail_to="ops@example.org", webhook_url=web.url, alertmanager_url=alertmanager.url))
    sng.start()
    try:
        snd = sng.sender("127.0.0.2")
        snd.send_all(extended(samples.OOPS_LINES), pace=0.001)
        t_last = time.time()
        assert wait_for(lambda: mail.messages and web.requests, 20), sng.stderr_tail()
        am = wait_for(lambda: [a for a in alertmanager.alerts()
                               if a["labels"].get("host") == "127.0.0.2"], 10)
        (inc,) = incidents(state)
        (msg,) = mail.parsed()
        assert msg["Subject"] == "[netconsole] new: 127.0.0.2: %s" % inc["title"]
        assert "BUG: kernel NULL pointer dereference" in msg.get_content()
        assert "nctest_init" in inc["title"]
        doc = web.requests[0]["json"]
        assert doc["netconsole"]["id"] == inc["id"] == am[0]["annotations"]["alert_id"]
        assert am[0]["labels"]["type"] == inc["type"]
        assert am[0]["labels"]["signature"] == inc["signature"]
        stored = inc["stored_at"]
        db = sqlite3.connect(str(state / "outbox.db"))
        print("outbox:", [(ch, round(c - stored, 3), round(d - c, 3)) for ch, c, d in db.execute(
            "SELECT channel, created_at, done_at FROM deliveries")])
        db.close()
        print("delay last datagram -> stored %.2f s; stored -> mail %.3f s, webhook %.3f s"
              % (stored - t_last, mail.messages[0]["t"] - stored, web.requests[0]["t"] - stored))
        assert mail.messages[0]["t"] - stored < 2.0 and web.requests[0]["t"] - stored < 2.0
        time.sleep(1.0)
        assert len(mail.messages) == 1 and len(web.requests) == 1
        assert "Traceback" not in sng.stderr_text()
    finally:
        sng.stop()


def test_restart_while_alerts_wait_delivers_each_once(tmp_path, server_cert, ca_file):
    smtp_port, http_port = free_port(), free_port()
    state = tmp_path / "alertstate"
    pre = prelude(state, smtp_host="127.0.0.1", smtp_port=smtp_port, smtp_tls="starttls",
                  ca_file=ca_file, mail_to="ops@example.org",
                  webhook_url="http://127.0.0.1:%d/hook" % http_port,
                  retry_base="0.3", retry_cap="1", dedup_window="0")
    sng = Syslogng(tmp_path / "sng", prelude=pre)
    sng.start()
    try:
        for i, src in enumerate(("127.0.0.2", "127.0.0.3")):
            sng.sender(src).send_all(extended(samples.OOPS_LINES, seq=100 * i), pace=0.001)
        # both receivers are down: 2 alerts x 2 channels wait, already retried
        assert wait_for(lambda: len([r for r in outbox_rows(state) if r[3] >= 1]) == 4, 25), \
            (outbox_rows(state), sng.stderr_tail())
    finally:
        sng.stop()
    mail = SmtpServer("starttls", cert=server_cert, port=smtp_port).start()
    web = HttpServer(port=http_port).start()
    sng2 = Syslogng(tmp_path / "sng", prelude=pre, port=sng.port)
    sng2.start()
    try:
        assert wait_for(lambda: len(mail.messages) >= 2 and len(web.requests) >= 2, 20), \
            sng2.stderr_tail()
        time.sleep(2.0)
        # the same bug on two hosts: the first stored is news, the other not
        heads = [str(m["Subject"]).split(": BUG")[0] for m in mail.parsed()]
        assert sorted(h.replace("new: ", "") for h in heads) == \
            ["[netconsole] 127.0.0.2", "[netconsole] 127.0.0.3"], heads
        assert sum(h.startswith("[netconsole] new: ") for h in heads) == 1, heads
        assert len(web.requests) == 2
        assert len({r["json"]["netconsole"]["id"] for r in web.requests}) == 2
        assert sorted(r[2] for r in outbox_rows(state)) == ["sent"] * 4
        assert "Traceback" not in sng2.stderr_text()
    finally:
        sng2.stop()
        mail.stop()
        web.stop()


def test_reloads_leak_no_delivery_threads(tmp_path, http):
    web = http()
    sng = Syslogng(tmp_path / "sng", prelude=prelude(tmp_path / "alertstate",
                                                    webhook_url=web.url))
    sng.start()
    try:
        before = wait_for(lambda: alert_threads(sng.pid), 5)
        assert len(before) == 4     # drop-in's jsonfile + housekeeping, ours webhook + housekeeping
        for _ in range(3):
            sng.reload()
        assert wait_for(lambda: alert_threads(sng.pid) == before, 5), alert_threads(sng.pid)
        sng.sender("127.0.0.4").send_all(extended(samples.OOPS_LINES), pace=0.001)
        assert wait_for(lambda: web.requests, 20), sng.stderr_tail()
    finally:
        sng.stop()


def test_bad_alert_option_is_one_clear_error(tmp_path):
    from harness.sng import SyslogngError
    sng = Syslogng(tmp_path / "sng", prelude=prelude(tmp_path / "st", smtp_tls="ssl"))
    with pytest.raises(SyslogngError):
        sng.start()
    sng.stop()
    assert "option 'smtp-tls': must be one of starttls, tls, none" in sng.stderr_text()


def test_fleet_crash_storm_gives_one_alert_and_one_digest(tmp_path, smtp):
    """30 hosts hit the same bug at once (interleaved streams): one mail for the first
    host, then one digest naming the 29 others -- not 30 mails."""
    mail = smtp("none")
    state = tmp_path / "alertstate"
    sng = Syslogng(tmp_path / "sng", prelude=prelude(
        state, smtp_host="127.0.0.1", smtp_port=mail.port, smtp_tls="none",
        mail_to="ops@example.org", digest_interval="3"))
    sng.start()
    try:
        hosts = ["127.0.0.%d" % (100 + i) for i in range(30)]
        senders = [sng.sender(h) for h in hosts]
        lines = extended(samples.OOPS_LINES)
        for line in lines:                       # line k of every host, then line k+1 ...
            for s in senders:
                s.send(line)
            time.sleep(0.002)
        assert wait_for(lambda: len(incidents(state)) == 30, 20), sng.stderr_tail()
        assert wait_for(lambda: len(mail.messages) >= 2, 15), sng.stderr_tail()
        time.sleep(1.0)
        first, digest = mail.parsed()
        assert str(first["Subject"]).startswith("[netconsole] new: 127.0.0.1")
        subj = str(digest["Subject"])
        assert "29 more hosts: " in subj, subj
        body = digest.get_content()
        listed = set(hosts) - {str(first["Subject"]).split()[1].rstrip(":")}
        assert all(h in body for h in listed)
        assert len(mail.messages) == 2
    finally:
        sng.stop()


def test_dropin_alerts_configured_by_define(tmp_path, http):
    """The unmodified drop-in takes its alert options from one @define (as a site's
    00-netconsole-local.conf would set it)."""
    web = http()
    sng = Syslogng(tmp_path / "sng", defines={
        "netconsole_alert_options": "webhook_url('%s') min_severity('error')" % web.url})
    sng.start()
    try:
        sng.sender("127.0.0.5").send_all(extended(samples.OOPS_LINES), pace=0.001)
        assert wait_for(lambda: web.requests, 20), sng.stderr_tail()
        assert web.requests[0]["json"]["netconsole"]["host"] == "127.0.0.5"
        assert not (sng.statedir / "alerts.jsonl").exists()     # a channel is configured
    finally:
        sng.stop()
