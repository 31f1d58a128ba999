"""incidents/sink.py: store -> JSON line -> log line -> alert hand-off, parking,
the counters file; logging and times are the test's (the sink reads no clock)."""

import json

from syslogng_netconsole.incidents import sink as sink_mod
from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.incidents.sink import IncidentSink
from syslogng_netconsole.incidents.store import read_incidents


def incident(host="10.0.0.1", seq=100, title="BUG: kernel NULL pointer dereference"):
    return Incident(host=host, type="NULL-POINTER", title=title, signature="sig",
                    text="BUG: x\n", first_seq=seq, first_time=1.7e9, last_time=1.7e9)


class Log(list):
    def __call__(self, level, text):
        self.append((level, text))


def make(state, **kw):
    log, handed = Log(), []
    s = IncidentSink(str(state), "incidents|%s" % state, log,
                     on_new=lambda inc, wall: handed.append((inc.host, wall)), **kw)
    return s, log, handed


def test_new_incident_goes_everywhere_once(tmp_path):
    s, log, handed = make(tmp_path)
    assert s.open(0.0) and s.store_ok
    inc = incident(title="BUG: bad\x1b[31m")
    assert s.add(inc, 1.0, 1234.5) is True
    assert s.add(incident(), 2.0, 1235.0) is False            # same id: a duplicate
    rows = read_incidents(str(tmp_path))
    assert [r["id"] for r in rows] == [inc.id]
    (line,) = (tmp_path / sink_mod.JSONL_NAME).read_text().splitlines()
    assert json.loads(line)["id"] == inc.id and json.loads(line)["stored_at"] == 1234.5
    assert log == [("info", "netconsole-incidents: host=10.0.0.1 type=NULL-POINTER "
                            "title=BUG: bad [31m")]
    assert handed == [("10.0.0.1", 1234.5)]
    assert (s.counters["stored"], s.counters["duplicates"]) == (1, 1)
    s.close()


def test_json_lines_off_and_alert_hook_trouble_is_counted(tmp_path):
    def boom(inc, wall):
        raise RuntimeError("hook")

    s, log, _ = make(tmp_path, json_lines=False)
    s.on_new = boom
    s.open(0.0)
    assert s.add(incident(), 1.0, 2.0) is True
    assert not (tmp_path / sink_mod.JSONL_NAME).exists()
    assert s.counters["alert_errors"] == 1 and "alert hook" in log[-1][1]
    s.close()


def test_unusable_store_is_retried_and_counted(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s, log, handed = make(blocker / "state")
    assert s.open(0.0) is False and not s.store_ok
    assert log[0][0] == "error" and "unavailable" in log[0][1]
    s.add(incident(), 1.0, 1.0)                 # not retried yet: counted, still handed on
    assert s.counters["store_errors"] == 1 and len(handed) == 1
    blocker.unlink()                            # the directory can be made now
    s.add(incident(seq=200), sink_mod.STORE_RETRY + 1.0, 2.0)
    assert s.store_ok and len(read_incidents(str(blocker / "state"))) == 1
    # the one refused before is stored now, and handed on again (the policy folds it)
    assert s.retry(sink_mod.STORE_RETRY + 2.0, 3.0) == 1
    assert sorted(r["first_seq"] for r in read_incidents(str(blocker / "state"))) == [100, 200]
    assert len(handed) == 3 and s.retry(sink_mod.STORE_RETRY + 9.0, 4.0) == 0
    assert s.counters["stored"] == 2
    s.close()


def test_a_full_store_keeps_the_incident_and_its_line_once(tmp_path, monkeypatch):
    s, log, handed = make(tmp_path)
    s.open(0.0)
    from syslogng_netconsole.incidents.store import StoreError

    def full(inc, wall):
        raise StoreError("database or disk is full")
    real = s._store.add
    monkeypatch.setattr(s._store, "add", full)
    assert s.add(incident(), 1.0, 10.0) and len(handed) == 1
    assert s.retry(2.0, 11.0) == 0                   # still full: kept
    monkeypatch.setattr(s._store, "add", real)
    assert s.retry(2.0 + sink_mod.UNSTORED_RETRY, 12.0) == 1
    assert len(read_incidents(str(tmp_path))) == 1
    assert len((tmp_path / sink_mod.JSONL_NAME).read_text().splitlines()) == 1   # written once


def test_park_and_unpark(tmp_path):
    s, _, _ = make(tmp_path)
    s.open(0.0)
    s.park([incident(seq=1), incident(seq=2)], 1.0, 10.0)
    assert read_incidents(str(tmp_path)) == []
    assert sorted(i.first_seq for i in s.unpark(2.0)) == [1, 2]
    assert s.unpark(3.0) == []                  # taken once
    s.close()
    assert s.unpark(4.0) == []                  # no store: nothing, no error


def test_park_without_store_counts_the_lost_reports(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    s, log, _ = make(blocker / "state")
    s.open(0.0)
    s.park([incident(seq=1), incident(seq=2)], 1.0, 1.0)
    assert s.counters["park_errors"] == 2 and "2 open report(s) are lost" in log[-1][1]


def test_stats_file(tmp_path):
    s, _, _ = make(tmp_path)
    s.open(0.0)
    s.counters["records"] += 5
    s.write_stats({"streams": 2, "open_reports": 1})
    doc = json.loads((tmp_path / sink_mod.STATS_NAME).read_text())
    assert doc == {"records": 5, "streams": 2, "open_reports": 1, "store_ok": True,
                   "unstored": 0}
    s.close()
    s.state_dir = str(tmp_path / "missing")
    s.write_stats({})                           # unwritable: silently skipped


def test_hand_off_waits_for_the_alerts_and_survives_a_crash(tmp_path):
    log, handed = Log(), []
    s = IncidentSink(str(tmp_path), "o", log)
    s.open(0.0)
    assert s.add(incident(seq=1), 1.0, 10.0)        # alerts not running yet: kept
    s.close()                                       # the process dies here
    s = IncidentSink(str(tmp_path), "o", log)
    s.open(0.0)
    assert s.hand_on(1.0, 11.0) == 0                # no set_alerts() yet
    s.set_alerts(lambda inc, wall: handed.append(inc.first_seq))
    assert s.add(incident(seq=2), 2.0, 12.0)
    assert s.hand_on(3.0, 13.0) == 1 and handed == [2, 1]
    assert s.hand_on(4.0, 14.0) == 0 and handed == [2, 1]     # each once
    assert "handed to the alerts now" in log[-1][1]


def test_hand_off_failure_is_retried_and_no_alerts_means_none_wait(tmp_path):
    s = IncidentSink(str(tmp_path), "o", Log())
    s.open(0.0)

    def boom(inc, wall):
        raise OSError("outbox full")
    s.set_alerts(boom)
    assert s.add(incident(seq=1), 1.0, 10.0) and s.counters["alert_errors"] == 1
    got = []
    s.set_alerts(lambda inc, wall: got.append(inc.first_seq))
    assert s.hand_on(2.0, 11.0) == 1 and got == [1]
    s.set_alerts(None, enabled=False)
    assert s.add(incident(seq=2), 3.0, 12.0)
    s.set_alerts(lambda inc, wall: got.append(inc.first_seq))
    assert s.hand_on(4.0, 13.0) == 0 and got == [1]          # not alerted: not kept either
