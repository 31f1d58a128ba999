"""Injection: hostile kernel text gives well-formed mail (parsed back with the
email package) and valid JSON; plus the retry policy and option parsing."""

import email
import email.policy
import json

import pytest
from hypothesis import given, settings, strategies as st

from syslogng_netconsole.alerts import config, model, sanitize, slack, webhook
from syslogng_netconsole.alerts import alertmanager as am
from syslogng_netconsole.alerts.mail import MailChannel
from syslogng_netconsole.alerts.retry import Backoff, classify_http, parse_retry_after
from syslogng_netconsole.incidents.incident import Incident

pytestmark = pytest.mark.alerts
T0 = 1_800_000_000.0
HOSTILE = [
    "x\r\nBcc: evil@example.org",
    "x\nBcc: evil@example.org\r\n\r\nbody",
    "nul\x00byte esc\x1b[31m del\x7f",
    "quote\" back\\slash 'single' `tick`",
    "u2028\u2028line\u0085next\x0bvt\x0cff",
    "A" * 100_000,
    "\ud800 lone surrogate",
    "<!channel> <@U123> &amp; ```fence```",
    "=?utf-8?q?encoded=0D=0ABcc:_x@y?=",
]


def mail_cfg():
    return config.from_options({"smtp-host": "127.0.0.1", "mail-to": "ops@example.org,b@example.org",
                                "mail-from": "nc@example.org"})


def hostile_incident(s):
    return Incident(host=s, type=s, title=s, signature=s, first_line=s, comm=s,
                    release=s, text="\n".join([s] * 3) + "\n" + "L" * 5000, modules=[s, s])


def parse(msg):
    raw = msg.as_bytes()
    return raw, email.message_from_bytes(raw, policy=email.policy.default)


def check_mail(inc):
    msg = MailChannel(mail_cfg()).render(model.from_incident(inc, T0))
    raw, back = parse(msg)
    assert len(back.get_all("Subject")) == 1
    assert back.get_all("Bcc") is None and back.get_all("Cc") is None
    assert back["To"] == "ops@example.org, b@example.org"
    assert back["From"] == "nc@example.org"
    subj = str(back["Subject"])
    assert b"Subject: [netconsole] " in raw            # one unfolded line
    assert "\r" not in subj and "\n" not in subj
    assert subj.startswith("[netconsole] ")
    assert not any(sanitize._is_control(c) for c in subj)
    assert len(subj) <= sanitize.HEADER_CAP
    for line in raw.split(b"\r\n"):
        assert len(line) <= 998                 # RFC 5322 line limit
    header_block = raw.split(b"\r\n\r\n", 1)[0]
    assert b"\nBcc" not in header_block and b"\x00" not in header_block
    body = back.get_content()
    assert "\x00" not in body and "\x1b" not in body
    return back, body


@pytest.mark.parametrize("s", HOSTILE)
def test_hostile_text_gives_well_formed_mail(s):
    back, body = check_mail(hostile_incident(s))
    assert "---- report ----" in body


@pytest.mark.parametrize("s", HOSTILE)
def test_hostile_text_gives_valid_json(s):
    a = model.from_incident(hostile_incident(s), T0)
    for doc in (webhook.document(a), slack.payload(a), am.payload(a)):
        text = json.dumps(doc, ensure_ascii=False)
        text.encode("utf-8")                    # no lone surrogates left
        assert json.loads(text) == doc
    sl = json.dumps(slack.payload(a))
    assert "<!channel>" not in sl and "<@U123>" not in sl
    body = slack.payload(a)["blocks"][-1]["text"]["text"]
    assert body.startswith("```") and body.endswith("```") and "```" not in body[3:-3]
    labels = am.payload(a)[0]["labels"]
    assert all("\n" not in v and "\r" not in v for v in labels.values())


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.text(max_size=2000))
def test_any_text_renders(title, text):
    inc = Incident(host=title[:50], type="oops", title=title, signature=title, text=text)
    check_mail(inc)
    json.dumps(webhook.document(model.from_incident(inc, T0))).encode()


def test_bytes_and_none_are_accepted():
    inc = Incident(host=b"h\xff", type="oops", title=None, signature=b"s", text=b"a\x00b\r\nc")
    a = model.from_incident(inc, T0)
    assert a.host == "h\ufffd" and a.title == "oops" and a.text == "a b\nc"


def test_file_name_sanitizer():
    name = sanitize.file_name("../../etc/passwd")
    assert "/" not in name and not name.startswith(".")
    assert sanitize.file_name("") == "_"


# -- retry policy ----------------------------------------------------------------
@pytest.mark.parametrize("status,outcome", [(200, "ok"), (204, "ok"), (400, "permanent"),
                                            (401, "permanent"), (404, "permanent"),
                                            (410, "permanent"), (429, "retry"),
                                            (408, "retry"), (500, "retry"), (503, "retry"),
                                            (301, "permanent")])
def test_classify_http(status, outcome):
    assert classify_http(status).outcome == outcome


def test_retry_after():
    assert parse_retry_after("120", T0) == 120
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT", 1445412470.0) == 10
    assert parse_retry_after("garbage", T0) is None
    assert parse_retry_after(None, T0) is None


def test_backoff_grows_jittered_capped_and_honours_retry_after():
    b = Backoff(base=5, cap=900)
    assert b.delay(1, 0.0) == 2.5 and b.delay(1, 0.999) < 5
    assert b.delay(4, 0.5) == 30 and b.delay(40, 0.99) <= 900
    assert b.delay(1, 0.0, retry_after=120) == 120
    assert b.delay(1, 0.0, retry_after=10 ** 9) == 3600     # capped


# -- options ---------------------------------------------------------------------
def test_options_are_typed_from_strings_and_4x_values():
    c = config.from_options({"smtp_host": "mx", "mail_to": "a@x, b@x", "smtp_port": "2525",
                             "tls_verify": "no", "dedup_window": "2h", "rate_limit": "5/1m",
                             "alertmanager_url": "http://a:9093,http://b:9093",
                             "digest-interval": 60, "alert-ttl": 600.0})
    assert c.smtp_port == 2525 and c.mail_to == ["a@x", "b@x"] and c.tls_verify is False
    assert c.dedup_window == 7200 and c.rate_limit == (5, 60) and c.digest_interval == 60
    assert c.alertmanager_urls == ["http://a:9093", "http://b:9093"]
    assert config.from_options({"smtp-tls": "tls", "smtp-host": "x", "mail-to": "a@b"}) \
        .smtp_port == 465


@pytest.mark.parametrize("opts,name", [
    ({"smtp-tls": "ssl"}, "smtp-tls"),
    ({"smtp-port": "0"}, "smtp-port"),
    ({"tls-verify": "maybe"}, "tls-verify"),
    ({"webhook-url": "ftp://x"}, "webhook-url"),
    ({"min-severity": "fatal"}, "min-severity"),
    ({"dedup-window": "soon"}, "dedup-window"),
    ({"smtp-host": "x"}, "mail-to"),
    ({"mail-to": "a@b"}, "smtp-host"),
    ({"mail-to": "a@b\r\nBcc: c@d", "smtp-host": "x"}, "mail-to"),
    ({"smtp-host": "x", "mail-to": "a@b", "smtp-tls": "none", "smtp-user": "u"}, "smtp-user"),
])
def test_bad_option_names_the_option(opts, name):
    with pytest.raises(ValueError) as e:
        config.from_options(opts)
    assert str(e.value).startswith("option '%s'" % name)


def test_redacted_urls_hide_secrets():
    assert config.redact_url("https://u:pw@hooks.slack.com/services/T0/B0/SECRET?x=1") \
        == "https://hooks.slack.com"
    with pytest.raises(ValueError) as e:
        config.from_options({"webhook-url": "gopher://u:pw@h/SECRET"})
    assert "SECRET" not in str(e.value) and "pw" not in str(e.value)


def test_webhook_format_slack_and_channel_ids():
    from syslogng_netconsole.alerts import channels
    c = config.from_options({"webhook-url": "https://hooks.slack.com/services/T/B/X",
                             "webhook-format": "slack"})
    assert c.webhook_urls == [] and c.slack_urls == ["https://hooks.slack.com/services/T/B/X"]
    chans = channels.build(c, "/nonexistent")
    assert [ch.kind for ch in chans] == ["slack"]
    assert "/services/" not in chans[0].describe()              # the secret path is not shown
    both = config.from_options({"alertmanager-url": "http://a:9093, http://b:9093"})
    ids = [ch.id for ch in channels.build(both, "/s")]
    assert len(set(ids)) == 2 and all(i.startswith("alertmanager:") for i in ids)
    # ids do not depend on the order of the list (rows survive a reordering)
    rev = config.from_options({"alertmanager-url": "http://b:9093,http://a:9093"})
    assert sorted(ch.id for ch in channels.build(rev, "/s")) == sorted(ids)


def test_a_host_known_by_name_is_named_in_every_channel():
    inc = Incident(host="10.1.2.3", hostname="db-17", type="NULL-POINTER-DEREFERENCE",
                   title="BUG: unable to handle kernel NULL pointer dereference in f",
                   signature="s", text="BUG: x\n")
    alert = model.from_incident(inc, T0)
    assert alert.summary_line().startswith("db-17 (10.1.2.3): BUG:")
    back, body = check_mail(inc)
    assert str(back["Subject"]).startswith("[netconsole] db-17 (10.1.2.3): BUG:")
    assert "Host:      db-17 (10.1.2.3)" in body
    doc = webhook.document(alert)
    assert doc["netconsole"]["hostname"] == "db-17" and doc["netconsole"]["host"] == "10.1.2.3"
    assert doc["alerts"][0]["labels"]["hostname"] == "db-17"
    assert alert.annotations["summary"].startswith("db-17 (10.1.2.3): ")
    # unknown: as before, the address alone and no hostname label
    plain = model.from_incident(Incident(host="10.1.2.3", type="WARNING", title="WARNING in f",
                                         signature="s", text="x"), T0)
    assert plain.summary_line() == "10.1.2.3: WARNING in f" and "hostname" not in plain.labels
    assert webhook.document(plain)["netconsole"]["hostname"] is None
    assert model.Alert.from_json(alert.to_json()).hostname == "db-17"


def test_host_labels_reach_every_channel_cleaned_and_never_replace_the_alerts_own():
    hostile = "r12\r\nBcc: evil@example.org\x1b[2J=?utf-8?q?=0D=0A?="
    inc = Incident(host="10.1.2.3", hostname="db-17", type="WARNING", title="WARNING in f",
                   signature="s", text="x\n",
                   labels={"rack": hostile, "severity": "info", "alertname": "x",
                           "team-name": "storage", "9bad": "y", "role": "<!channel>"})
    alert = model.from_incident(inc, T0)
    labels = am.payload(alert)[0]["labels"]
    assert labels["instance"] == labels["host"] == "10.1.2.3"
    assert labels["alertname"] == "KernelCrash" and labels["severity"] != "info"
    assert labels["team_name"] == "storage" and "9bad" not in labels
    assert "\r" not in labels["rack"] and "\n" not in labels["rack"] and "\x1b" not in labels["rack"]
    back, body = check_mail(inc)
    assert "Labels:    rack=r12 Bcc: evil@example.org" in body
    assert "role=<!channel>" in body and "team_name=storage" in body
    doc = webhook.document(alert)
    assert doc["netconsole"]["labels"] == alert.host_labels
    assert set(alert.host_labels) == {"rack", "team_name", "role"}
    assert json.loads(json.dumps(doc)) == doc
    text = json.dumps(slack.payload(alert))
    assert "<!channel>" not in text and "&lt;!channel&gt;" in text
    assert model.Alert.from_json(alert.to_json()).host_labels == alert.host_labels
    # a host with none: no labels line, an empty object
    plain = model.from_incident(Incident(host="10.1.2.3", type="WARNING", title="WARNING in f",
                                         signature="s", text="x"), T0)
    assert plain.host_labels == {} and webhook.document(plain)["netconsole"]["labels"] == {}
