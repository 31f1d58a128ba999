"""sng/detect.py and the incident messages of sng/messages.py: detection in the source,
on a clock the test drives."""

import json

from harness.samples import OOPS_LINES, PANIC_LINES
from syslogng_netconsole.ingest.records import EXTENDED, Record
from syslogng_netconsole.sng import messages
from syslogng_netconsole.sng.detect import SourceDetector, reports_path


def recs(host, lines, seq=100):
    return [Record(host=host, text=l, format=EXTENDED, seq=seq + i, ts_us=1_000_000 + i,
                   src_port=6665, dst_port=6666) for i, l in enumerate(lines)]


def test_a_silent_report_is_finished_by_the_timer_with_wall_times():
    det = SourceDetector()
    for r in recs("10.0.0.1", OOPS_LINES):
        det.feed(r, 10.0)
    deadline = det.next_deadline()
    assert deadline is not None
    det.run(deadline - 0.1, 1000.0)
    assert not det.out
    det.run(deadline, 1000.0)
    (inc,) = det.out
    assert inc.host == "10.0.0.1" and inc.first_time == 1010.0 and "nctest" in inc.title
    c = det.counters_snapshot()
    assert c["detect.records"] == len(OOPS_LINES) and c["detect.queued_incidents"] == 1


def test_panic_ends_the_report_and_it_is_posted_as_one_message():
    det = SourceDetector()
    for r in recs("10.0.0.2", OOPS_LINES + PANIC_LINES):
        det.feed(r, 5.0)
    det.run(5.0 + 60, 0.0)
    (inc,) = list(det.out)
    assert inc.panicked
    pairs = dict(messages.incident_pairs(inc))
    assert json.loads(pairs["incident"])["signature"] == inc.signature
    assert pairs["panicked"] == "1" and pairs["incident_title"] == inc.title
    # the destination's side: value-pairs give bytes; a record message is no incident
    msg = {messages.PREFIX + k: v.encode() for k, v in pairs.items()}
    back = messages.incident_from_message(msg)
    assert back.to_dict() == inc.to_dict()
    assert messages.incident_from_message({"MESSAGE": b"x"}) is None
    assert "\n" not in messages.incident_text(inc)


def test_open_reports_saved_at_a_stop_come_back_truncated_after_a_restart(tmp_path):
    det = SourceDetector()
    for r in recs("10.0.0.3", OOPS_LINES[:5]):
        det.feed(r, 1.0)
    path = reports_path(str(tmp_path), 6666)
    assert det.save(path, 1.0, 100.0) == 1
    assert det.pool.open_reports == 1                 # the live state is untouched
    (inc,) = SourceDetector.take_saved(path, fresh=True)
    assert inc.truncated and inc.host == "10.0.0.3"
    assert SourceDetector.take_saved(path, fresh=True) == []      # once


def test_a_reload_drops_the_saved_file_and_goes_on_live(tmp_path):
    det = SourceDetector()
    for r in recs("10.0.0.4", OOPS_LINES[:5]):
        det.feed(r, 1.0)
    path = reports_path(str(tmp_path), 6666)
    det.save(path, 1.0, 0.0)
    assert SourceDetector.take_saved(path, fresh=False) == []
    assert not (tmp_path / "source-6666.reports.jsonl").exists()
    assert reports_path("", 6666) is None


def test_an_unreadable_saved_file_is_kept_aside(tmp_path):
    path = reports_path(str(tmp_path), 6666)
    (tmp_path / "source-6666.reports.jsonl").write_text("{not json\n")
    try:
        SourceDetector.take_saved(path, fresh=True)
        raise AssertionError("no error")
    except ValueError:
        pass
    assert (tmp_path / "source-6666.reports.jsonl.bad").exists()
