"""The incidents destination driven directly (no syslog-ng): options, message
decoding for 3.38 / 4.x / value-pairs, the timer thread, reload and restart
semantics, the stream cap. tests/integration/test_incidents*.py run it inside
real syslog-ng 3.38 and 4.8."""

import json
import time

import pytest

from harness import samples
from syslogng_netconsole.sng import dest as sng_dest
from syslogng_netconsole.incidents.store import read_incidents


class Msg338:
    """3.38 LogMessage: bytes values, b'' for a missing name."""

    def __init__(self, d):
        self.d = d

    def __getitem__(self, k):
        return self.d.get(k, b"")


class Msg4Strict(Msg338):
    """4.x strict LogMessage: KeyError for a missing name, typed values."""

    def __getitem__(self, k):
        return self.d[k]


def msg(host, text, **fields):
    d = {"HOST": host.encode(), "MESSAGE": text.encode()}
    for k, v in fields.items():
        d[".netconsole." + k] = str(v).encode()
    return d


def test_parse_options():
    o = sng_dest.parse_options({"state-dir": "/x", "max_hosts": "", "json_lines": "no"})
    assert o["state_dir"] == "/x" and o["max_hosts"] == 10000 and o["json_lines"] is False
    assert sng_dest.parse_options({"max_hosts": 7, "host_idle": 1.5})["max_hosts"] == 7  # 4.x typed
    with pytest.raises(ValueError, match="max_hosts"):
        sng_dest.parse_options({"max_hosts": "lots"})
    with pytest.raises(ValueError, match="host_idle"):
        sng_dest.parse_options({"host_idle": "-1"})
    with pytest.raises(ValueError, match="bogus"):
        sng_dest.parse_options({"bogus": "1"})


@pytest.mark.parametrize("wrap", [dict, Msg338, Msg4Strict], ids=["value-pairs", "3.38", "4.x"])
def test_record_from_message(wrap):
    d = msg("10.1.2.3", "BUG: x\\x00y", format="extended", seq=42, ts_us=1234567,
            caller="T95", release="6.1.0-27-amd64", boot=1, lost_before=2, incomplete=1,
            src_port=6665)
    rec = sng_dest.record_from_message(wrap(d), 5.0)
    assert (rec.host, rec.text, rec.format, rec.seq, rec.ts_us, rec.caller, rec.release,
            rec.boot, rec.lost_before, rec.incomplete, rec.src_port, rec.recv_time) == \
        ("10.1.2.3", "BUG: x\\x00y", "extended", 42, 1234567, "T95", "6.1.0-27-amd64",
         1, 2, True, 6665, 5.0)
    bare = sng_dest.record_from_message(wrap({"HOST": b"h", "MESSAGE": b"plain"}), 1.0)
    assert (bare.format, bare.seq, bare.ts_us, bare.incomplete) == ("plain", None, None, False)


def test_record_from_message_typed_and_bad_values():
    d = {"HOST": b"h", "MESSAGE": b"\xff\xfe text", ".netconsole.seq": 7,       # 4.x int
         ".netconsole.incomplete": True, ".netconsole.ts_us": b"notanumber",
         ".netconsole.format": b"weird"}
    rec = sng_dest.record_from_message(d, 1.0)
    assert rec.seq == 7 and rec.incomplete is True and rec.ts_us is None
    assert rec.format == "plain" and rec.text == "\\xff\\xfe text"
    assert sng_dest.record_from_message({}, 1.0).host == "unknown"


def _wait(pred, timeout=15.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out")


def _rows(state):
    return read_incidents(state)


@pytest.fixture
def fresh_engines():
    saved = dict(sng_dest._ENGINES)
    sng_dest._ENGINES.clear()
    yield
    sng_dest._ENGINES.clear()
    sng_dest._ENGINES.update(saved)


def make_dest(state, **opts):
    d = sng_dest.IncidentDestination()
    assert d.init(dict({"state_dir": str(state)}, **opts)) is True
    assert d.open() is True
    return d


def lines(host, text_lines, seq=100, **kw):
    return [msg(host, l, seq=seq + i, ts_us=1_000_000 + i, format="extended", src_port=6665, **kw)
            for i, l in enumerate(text_lines)]


def test_timer_finishes_a_silent_hosts_report(tmp_path, fresh_engines):
    d = make_dest(tmp_path)
    try:
        for m in lines("10.0.0.1", samples.OOPS_LINES + samples.PANIC_LINES):
            assert d.send(m) is True
        rows = _wait(lambda: _rows(tmp_path))           # no further message: the timer did it
        assert len(rows) == 1 and rows[0]["panicked"] and rows[0]["first_seq"] == 100
        assert rows[0]["first_time"] > 1e9               # wall clock, not monotonic
        jsonl = tmp_path / "incidents.jsonl"             # appended just after the row
        jl = _wait(lambda: jsonl.exists() and jsonl.read_text().splitlines())
        assert [json.loads(l)["id"] for l in jl] == [rows[0]["id"]]
    finally:
        d.deinit()
    stats = json.loads((tmp_path / "incidents-stats.json").read_text())
    assert stats["records"] == len(samples.OOPS_LINES + samples.PANIC_LINES)
    assert stats["stored"] == 1 and stats.get("bad_records", 0) == 0 and stats["open_reports"] == 0


def test_reload_continues_and_restart_stores_truncated(tmp_path, fresh_engines):
    oops = lines("10.0.0.2", samples.OOPS_LINES + samples.PANIC_LINES)
    a = make_dest(tmp_path)
    for m in oops[:20]:
        a.send(m)
    a.deinit()                                       # reload: new instance, same module
    b = make_dest(tmp_path)
    for m in oops[20:]:
        b.send(m)
    rows = _wait(lambda: _rows(tmp_path))
    assert len(rows) == 1 and not rows[0]["truncated"] and "Kernel panic" in rows[0]["text"]
    for m in lines("10.0.0.3", samples.OOPS_LINES[:20], seq=500):
        b.send(m)                                    # left open at shutdown
    b.deinit()
    assert len(_rows(tmp_path)) == 1
    sng_dest._ENGINES.clear()                        # a new process
    c = make_dest(tmp_path)
    try:
        rows = _wait(lambda: len(_rows(tmp_path)) == 2 and _rows(tmp_path))
        late = [r for r in rows if r["host"] == "10.0.0.3"][0]
        assert late["truncated"] is True and late["first_seq"] == 500
    finally:
        c.deinit()
    assert len(_rows(tmp_path)) == 2                 # parked once, stored once


def test_stream_cap_finishes_the_oldest(tmp_path, fresh_engines):
    d = make_dest(tmp_path, max_hosts="2")
    try:
        for m in lines("10.0.0.4", samples.OOPS_LINES[:25]):   # open report, no end
            d.send(m)
        d.send(msg("10.0.0.5", "hello", src_port=6665))
        d.send(msg("10.0.0.6", "hello", src_port=6665))        # third stream: .4 is finished
        rows = _wait(lambda: _rows(tmp_path))
        assert [r["host"] for r in rows] == ["10.0.0.4"]
        assert d._eng.stats["streams_evicted"] == 1 and d._eng.pool.streams == 2
    finally:
        d.deinit()


def test_bad_messages_never_fail_send(tmp_path, fresh_engines):
    d = make_dest(tmp_path)
    try:
        class Broken:
            def __getitem__(self, k):
                raise RuntimeError("boom")

        for m in (Broken(), None, 42, {"HOST": object()}, {"MESSAGE": b"\x00" * 70000}):
            assert d.send(m) is True
        assert d._eng.stats["bad_records"] >= 1
    finally:
        d.deinit()


def test_invalid_option_fails_init_and_deinit_is_quiet(tmp_path, fresh_engines):
    d = sng_dest.IncidentDestination()
    assert d.init({"state_dir": str(tmp_path), "max_hosts": "0"}) is False
    d.deinit()
    assert d.send(msg("h", "x")) is True


def test_unusable_state_dir_degrades(tmp_path, fresh_engines):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    d = make_dest(blocker / "state")
    try:
        for m in lines("10.0.0.7", samples.OOPS_LINES + samples.PANIC_LINES):
            assert d.send(m) is True
        _wait(lambda: d._eng.stats["store_errors"] >= 1)
    finally:
        d.deinit()


def test_open_report_cap_finishes_the_least_recent(tmp_path, fresh_engines):
    d = make_dest(tmp_path, max_open="3")
    try:
        for n in range(5):                                      # 5 hosts open a report each
            for m in lines("10.0.1.%d" % n, samples.OOPS_LINES[:25], seq=1000 * n):
                d.send(m)
        rows = _wait(lambda: len(_rows(tmp_path)) >= 2 and _rows(tmp_path))
        assert [r["host"] for r in rows] == ["10.0.1.0", "10.0.1.1"]
        assert all(r["truncated"] for r in rows)
        assert d._eng.pool.open_reports == 3 and d._eng.stats["reports_forced"] == 2
    finally:
        d.deinit()


def test_alerts_that_cannot_start_are_retried_and_what_waited_is_alerted(
        tmp_path, fresh_engines, monkeypatch):
    from syslogng_netconsole.alerts import dispatcher
    real = dispatcher.Dispatcher
    calls = []

    def flaky(*a, **kw):
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("the outbox module is broken")
        return real(*a, **kw)
    monkeypatch.setattr(dispatcher, "Dispatcher", flaky)
    monkeypatch.setattr(sng_dest, "ALERTS_RETRY", 0.5)
    d = make_dest(tmp_path, alert_file=str(tmp_path / "alerts.jsonl"), alert_log="no")
    try:
        for m in lines("10.0.0.9", samples.OOPS_LINES + samples.PANIC_LINES):
            assert d.send(m) is True
        assert _wait(lambda: _rows(tmp_path))           # stored while alerts are down
        assert d._eng.stats["alert_start_errors"] == 1
        alerts = tmp_path / "alerts.jsonl"
        got = _wait(lambda: alerts.exists() and alerts.read_text().splitlines())
        assert len(got) == 1 and json.loads(got[0])["netconsole"]["host"] == "10.0.0.9"
        assert len(calls) == 2
    finally:
        d.deinit()
