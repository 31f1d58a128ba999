"""Each channel against a real server: aiosmtpd (plain, STARTTLS with a test CA,
AUTH with a password file, implicit TLS), an http.server (generic JSON, Slack,
HTTPS, scripted errors) and Debian's prometheus-alertmanager."""


import pytest

from syslogng_netconsole.alerts import config, model
from syslogng_netconsole.alerts.alertmanager import AlertmanagerChannel
from syslogng_netconsole.alerts.mail import MailChannel
from syslogng_netconsole.alerts.slack import SlackChannel
from syslogng_netconsole.alerts.webhook import WebhookChannel
from syslogng_netconsole.incidents.incident import Incident

pytestmark = pytest.mark.alerts
T0 = 1_800_000_000.0

TEXT = ("BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
        "#PF: supervisor read access in kernel mode\n"
        "Oops: 0000 [#1] PREEMPT SMP NOPTI\n"
        "RIP: 0010:nctest_null_deref+0x11/0x20 [nctest]\n")


def incident(host="web-1", **kw):
    d = dict(host=host, type="oops", title="BUG: kernel NULL pointer dereference in "
             "nctest_null_deref", signature="fp_v1:oops:nctest_null_deref", text=TEXT,
             release="6.1.0-27-amd64", first_seq=100, first_ts_us=5, modules=["nctest"])
    d.update(kw)
    return Incident(**d)


def alert(**kw):
    return model.from_incident(incident(**kw), T0)


def cfg(**opts):
    return config.from_options(dict({"alert-timeout": "5"}, **opts))


def mail_opts(server, **kw):
    d = {"smtp-host": "127.0.0.1", "smtp-port": str(server.port), "smtp-tls": server.mode,
         "mail-to": "ops@example.org, oncall@example.org", "mail-from": "nc@example.org"}
    d.update(kw)
    return d


def test_smtp_plain(smtp):
    s = smtp("none")
    res = MailChannel(cfg(**mail_opts(s))).deliver(alert(), T0)
    assert res.ok, res.detail
    (m,) = s.messages
    assert m["to"] == ["ops@example.org", "oncall@example.org"] and not m["tls"]
    (msg,) = s.parsed()
    assert msg["Subject"] == "[netconsole] web-1: BUG: kernel NULL pointer dereference in " \
                             "nctest_null_deref"
    body = msg.get_content()
    assert "Host:      web-1" in body and "Kernel:    6.1.0-27-amd64" in body
    assert "RIP: 0010:nctest_null_deref+0x11/0x20 [nctest]" in body
    assert msg["Message-ID"] == "<%s@syslogng-netconsole>" % alert().id


def test_smtp_starttls_with_test_ca(smtp, server_cert, ca_file):
    s = smtp("starttls", cert=server_cert)
    res = MailChannel(cfg(**mail_opts(s, **{"ca-file": ca_file}))).deliver(alert(), T0)
    assert res.ok, res.detail
    assert s.messages[0]["tls"]


def test_smtp_untrusted_certificate_is_refused(smtp, server_cert):
    s = smtp("starttls", cert=server_cert)
    res = MailChannel(cfg(**mail_opts(s))).deliver(alert(), T0)    # system CAs only
    assert res.outcome == "retry" and "certificate verify failed" in res.detail
    assert s.messages == []
    # explicitly switching verification off is possible (documented as unsafe)
    res = MailChannel(cfg(**mail_opts(s, **{"tls-verify": "no"}))).deliver(alert(), T0)
    assert res.ok, res.detail


def test_smtp_auth_password_from_file(smtp, server_cert, ca_file, tmp_path, caplog):
    pw = tmp_path / "pw"
    pw.write_text("s3cret-pass\n")
    s = smtp("starttls", cert=server_cert, user="alerts", password="s3cret-pass")
    opts = mail_opts(s, **{"ca-file": ca_file, "smtp-user": "alerts",
                           "smtp-password-file": str(pw)})
    res = MailChannel(cfg(**opts)).deliver(alert(), T0)
    assert res.ok, res.detail
    assert s.messages[0]["auth"] and s.messages[0]["tls"]
    pw.write_text("wrong")
    res = MailChannel(cfg(**opts)).deliver(alert(), T0)
    assert res.outcome == "permanent" and "authentication failed" in res.detail
    assert "wrong" not in res.detail and "s3cret" not in caplog.text
    pw.unlink()
    res = MailChannel(cfg(**opts)).deliver(alert(), T0)
    assert res.outcome == "retry" and "smtp-password-file" in res.detail


def test_smtp_implicit_tls(smtp, server_cert, ca_file):
    s = smtp("tls", cert=server_cert)
    res = MailChannel(cfg(**mail_opts(s, **{"ca-file": ca_file}))).deliver(alert(), T0)
    assert res.ok, res.detail
    assert s.messages[0]["tls"]
    res = MailChannel(cfg(**mail_opts(s))).deliver(alert(), T0)
    assert res.outcome == "retry" and "certificate verify failed" in res.detail


def test_smtp_down_is_retryable():
    from alert_servers import free_port
    c = cfg(**{"smtp-host": "127.0.0.1", "smtp-port": str(free_port()), "smtp-tls": "none",
               "mail-to": "a@example.org"})
    res = MailChannel(c).deliver(alert(), T0)
    assert res.outcome == "retry" and "Connection refused" in res.detail


def test_generic_webhook(http, tmp_path):
    h = http()
    tok = tmp_path / "token"
    tok.write_text("tok-123\n")
    ch = WebhookChannel(cfg(**{"webhook-url": h.url, "webhook-token-file": str(tok)}), h.url)
    res = ch.deliver(alert(), T0)
    assert res.ok, res.detail
    (req,) = h.requests
    doc = req["json"]
    assert req["headers"]["Authorization"] == "Bearer tok-123"
    assert req["headers"]["X-Netconsole-Alert-Id"] == alert().id
    assert doc["version"] == "4" and doc["status"] == "firing"
    assert doc["receiver"] == "syslogng_netconsole"
    (a,) = doc["alerts"]
    assert a["labels"]["host"] == "web-1" and a["labels"]["severity"] == "error"
    assert a["labels"]["alertname"] == "KernelCrash"
    assert a["startsAt"] == "2027-01-15T08:00:00.000Z" and a["endsAt"] == "2027-01-15T09:00:00.000Z"
    nc = doc["netconsole"]
    assert nc["schema_version"] == 1 and nc["id"] == alert().id
    assert nc["incident"]["release"] == "6.1.0-27-amd64" and nc["text"].startswith("BUG:")
    tok.unlink()                                        # unreadable token: retried, no POST
    res = ch.deliver(alert(), T0)
    assert res.outcome == "retry" and "webhook-token-file" in res.detail
    assert len(h.requests) == 1


def test_slack_payload_and_rate_limit(http):
    h = http()
    h.responses = [(429, {"Retry-After": "7"}, "rate_limited")]
    ch = SlackChannel(cfg(), h.url)
    res = ch.deliver(alert(), T0)
    assert res.outcome == "retry" and res.retry_after == 7
    res = ch.deliver(alert(), T0)
    assert res.ok, res.detail
    (req,) = h.requests
    p = req["json"]
    assert "web-1: BUG: kernel NULL pointer dereference" in p["text"]
    assert p["blocks"][-1]["text"]["text"].startswith("```BUG: kernel NULL")


def test_slack_requires_ok_body_and_4xx_is_permanent(http):
    h = http(ok_body="not ok")
    assert SlackChannel(cfg(), h.url).deliver(alert(), T0).outcome == "permanent"
    h2 = http()
    h2.responses = [(404, {}, "channel_not_found")]
    res = SlackChannel(cfg(), h2.url).deliver(alert(), T0)
    assert res.outcome == "permanent" and "404" in res.detail
    h2.responses = [(503, {}, "busy")]
    assert SlackChannel(cfg(), h2.url).deliver(alert(), T0).outcome == "retry"


def test_https_webhook_verifies_certificates(http, server_cert, ca_file):
    h = http(cert=server_cert)
    res = WebhookChannel(cfg(), h.url).deliver(alert(), T0)
    assert res.outcome == "retry" and "certificate verify failed" in res.detail
    assert h.requests == []
    res = WebhookChannel(cfg(**{"ca-file": ca_file}), h.url).deliver(alert(), T0)
    assert res.ok, res.detail
    assert len(h.requests) == 1


def test_alertmanager_api_v2(alertmanager):
    import time
    now = time.time()
    a = model.from_incident(incident(host="db-7"), now)
    ch = AlertmanagerChannel(cfg(), alertmanager.url)
    res = ch.deliver(a, now)
    assert res.ok, res.detail
    got = [x for x in alertmanager.alerts() if x["labels"].get("host") == "db-7"]
    assert len(got) == 1
    g = got[0]
    assert g["labels"]["alertname"] == "KernelCrash"
    assert g["labels"]["signature"] == "fp_v1:oops:nctest_null_deref"
    assert g["labels"]["severity"] == "error" and g["labels"]["type"] == "oops"
    assert g["annotations"]["alert_id"] == a.id
    assert g["status"]["state"] == "active"
    # a bad request is permanent (400: invalid label name)
    bad = model.Alert.from_json(a.to_json())
    bad.labels = {"a b": "x"}
    assert ch.deliver(bad, now).outcome == "permanent"


def test_smtp_no_downgrade_when_starttls_is_missing(smtp):
    s = smtp("none")                                   # offers no STARTTLS
    c = cfg(**mail_opts(s, **{"smtp-tls": "starttls"}))
    res = MailChannel(c).deliver(alert(), T0)
    assert res.outcome == "retry" and "does not offer STARTTLS" in res.detail
    assert s.messages == []
