"""Pure policy: dedup window, digests, min severity, rate limit, severity table."""

import json

import pytest
from hypothesis import given, settings, strategies as st

from syslogng_netconsole import options
from syslogng_netconsole.alerts import model
from syslogng_netconsole.alerts.policy import Policy, RateLimiter, parse_rate
from syslogng_netconsole.incidents.incident import Incident

pytestmark = pytest.mark.alerts
T0 = 1_800_000_000.0


def alert(host, sig="sig-a", title="BUG: unable to handle page fault in foo", typ="oops",
          seq=1, t=T0):
    inc = Incident(host=host, type=typ, title=title, signature=sig, text="x",
                   first_seq=seq, first_ts_us=seq)
    return model.from_incident(inc, t)


def test_first_occurrence_alerts_at_once():
    p = Policy(dedup_window=3600, digest_interval=300)
    out, verdict = p.admit(alert("h1"), T0)
    assert verdict == "sent" and [a.host for a in out] == ["h1"]
    assert p.due(T0 + 1) == []


def test_other_hosts_in_window_fold_into_one_digest():
    p = Policy(dedup_window=3600, digest_interval=300)
    p.admit(alert("h0"), T0)
    for i in range(1, 38):
        out, verdict = p.admit(alert("h%d" % i, t=T0 + i), T0 + i)
        assert out == [] and verdict == "folded"
    assert p.due(T0 + 299) == []                     # not before the interval
    assert p.next_deadline() == T0 + 300
    digests = p.due(T0 + 300)
    assert len(digests) == 1
    d = digests[0]
    assert d.kind == "digest" and d.count == 37 and len(d.hosts) == 37
    assert d.title.startswith("BUG: unable to handle page fault in foo: 37 more hosts: h1, h2")
    assert d.labels["signature"] == "sig-a" and "host" not in d.labels
    assert p.due(T0 + 10_000) == []                  # nothing left: no repeat digest


def test_digest_at_most_once_per_interval_and_new_window_alerts_again():
    p = Policy(dedup_window=1000, digest_interval=300)
    p.admit(alert("h0"), T0)
    p.admit(alert("h1"), T0 + 10)
    assert len(p.due(T0 + 300)) == 1
    p.admit(alert("h2"), T0 + 310)                   # next digest not before T0+600
    assert p.due(T0 + 500) == []
    assert [d.hosts for d in p.due(T0 + 600)] == [["h2"]]
    out, verdict = p.admit(alert("h3"), T0 + 1001)   # window over: alerts at once
    assert verdict == "sent" and out[0].host == "h3"


def test_pending_digest_is_flushed_before_a_new_window():
    p = Policy(dedup_window=100, digest_interval=500)
    p.admit(alert("h0"), T0)
    p.admit(alert("h1"), T0 + 50)
    out, verdict = p.admit(alert("h2"), T0 + 150)
    assert [a.kind for a in out] == ["digest", "incident"]
    assert out[0].hosts == ["h1"] and out[1].host == "h2"


def test_same_incident_id_twice_is_a_noop_and_different_signatures_independent():
    p = Policy()
    a = alert("h0")
    assert p.admit(a, T0)[1] == "sent"
    assert p.admit(model.Alert.from_json(a.to_json()), T0 + 1) == ([], "duplicate")
    assert p.admit(alert("h0", sig="other", seq=2), T0 + 2)[1] == "sent"


def test_min_severity():
    p = Policy(min_severity="error")
    assert p.admit(alert("h", typ="warning", title="WARNING in foo"), T0)[1] \
        == "below_min_severity"
    assert p.admit(alert("h", typ="oops", seq=2), T0)[1] == "sent"
    assert p.counters["below_min_severity"] == 1
    p = Policy(min_severity="critical")
    assert p.admit(alert("h", typ="oops", seq=3), T0)[1] == "below_min_severity"
    assert p.admit(alert("h", typ="panic", seq=4), T0)[1] == "sent"


@pytest.mark.parametrize("typ,panicked,sev", [
    ("panic", False, "critical"), ("oops", True, "critical"), ("oops", False, "error"),
    ("bug", False, "error"), ("gpf", False, "error"), ("kasan", False, "error"),
    ("general protection fault", False, "error"), ("warning", False, "warning"),
    ("hung_task", False, "warning"),
    ("rcu_stall", False, "warning"), ("something-new", False, "error"),
    # the detector's own vocabulary (syzkaller crash types, reports/kinds.py)
    ("NULL-POINTER-DEREFERENCE", False, "error"), ("DoS", False, "error"),
    ("BUG", False, "error"), ("KASAN-USE-AFTER-FREE-READ", False, "error"),
    ("WARNING", False, "warning"), ("LOCKDEP", False, "warning"), ("OOM", False, "info"),
    ("WARNING", True, "critical"), ("UNKNOWN", False, "warning"),
])
def test_severity_table(typ, panicked, sev):
    assert model.severity_of(typ, panicked) == sev


def test_alert_severity_uses_the_title_for_unknown_types():
    # the detector's rule (reports/kinds.severity) also holds on the alert path
    assert alert("h", typ="UNKNOWN", title="BUG: Bad page state in process x").severity == "error"
    assert alert("h", typ="UNKNOWN", title="INFO: task hung in f").severity == "warning"
    assert model.severity_of("UNKNOWN", title="BUG: stack guard page was hit") == "error"


def test_state_survives_json_round_trip():
    p = Policy(dedup_window=3600, digest_interval=300)
    p.admit(alert("h0"), T0)
    p.admit(alert("h1"), T0 + 1)
    q = Policy(dedup_window=3600, digest_interval=300,
               state=json.loads(json.dumps(p.state)))
    assert q.admit(alert("h2"), T0 + 2)[1] == "folded"
    assert q.admit(alert("h0"), T0 + 3)[1] == "duplicate"
    assert q.due(T0 + 300)[0].hosts == ["h1", "h2"]


def test_rate_limit_holds_back_and_summarises():
    r = RateLimiter(3, 60)
    got = [r.allow("email", alert("h%d" % i), T0 + i) for i in range(10)]
    assert got == [True] * 3 + [False] * 7
    assert r.allow("webhook:x", alert("h"), T0) is True      # per channel
    assert r.due(T0 + 59) == []
    (ch, summary), = r.due(T0 + 60)
    assert ch == "email" and summary.kind == "rate-summary" and summary.count == 7
    assert "7 alerts suppressed" in summary.title and "h3: " in summary.text
    assert r.allow("email", alert("hx"), T0 + 61) is True    # new period
    assert RateLimiter(0, 0).allow("email", alert("h"), T0) is True


@pytest.mark.parametrize("spec,val", [("90", 90), ("90s", 90), ("5m", 300), ("1h", 3600),
                                      ("1.5h", 5400), ("2d", 172800)])
def test_parse_duration(spec, val):
    assert options.duration(spec) == val


@pytest.mark.parametrize("spec", ["-5m", "nan", "5x", "m", ""])
def test_parse_duration_refuses(spec):
    with pytest.raises(ValueError):
        options.duration(spec)


def test_parse_rate():
    assert parse_rate("20/5m") == (20, 300)
    assert parse_rate("7") == (7, 300)
    assert parse_rate("0") == (0, 0)
    with pytest.raises(ValueError):
        parse_rate("x/5m")


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 20), st.integers(0, 3), st.floats(0, 500)),
                max_size=60))
def test_no_occurrence_is_lost(events):
    """Every admitted occurrence is either alerted at once or counted in a digest."""
    p = Policy(dedup_window=200, digest_interval=60)
    t, sent, folded_in_digests, n = T0, 0, 0, 0
    for i, (host, sig, dt) in enumerate(events):
        t += dt
        for d in p.due(t):
            folded_in_digests += d.count
        out, verdict = p.admit(alert("h%d" % host, sig="s%d" % sig, seq=i, t=t), t)
        n += 1
        sent += sum(1 for a in out if a.kind == "incident")
        folded_in_digests += sum(a.count for a in out if a.kind == "digest")
    for d in p.due(t + 10_000):
        folded_in_digests += d.count
    assert sent + folded_in_digests == n


def test_alert_json_round_trip_ignores_unknown_keys():
    a = alert("h0")
    d = json.loads(a.to_json())
    d["field_of_a_newer_version"] = 1
    assert model.Alert.from_json(json.dumps(d)) == a
