"""sng/detect.py and the incident messages of sng/messages.py: detection in the source,
on a clock the test drives."""

import json
import os

from harness.samples import OOPS_LINES, PANIC_LINES
from syslogng_netconsole.ingest.records import EXTENDED, Record
from syslogng_netconsole.sng import messages
from syslogng_netconsole.incidents.store import Store
from syslogng_netconsole.sng import journal
from syslogng_netconsole.sng.detect import CONFIRM_EVERY, SourceDetector, reports_path
from syslogng_netconsole.sng.journal import journal_path


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


def journaled(tmp_path, wall=100.0, fresh=True, now=1.0):
    det = SourceDetector()
    det.open_journal(journal_path(str(tmp_path), 6666), str(tmp_path), fresh, now, wall)
    return det


UNENDED = OOPS_LINES[:40]       # up to "Modules linked in": a call trace, no end marker


def test_an_open_report_survives_a_kill_and_times_out_truncated(tmp_path):
    plain_det = SourceDetector()     # without a restart the same report is not truncated
    for r in recs("10.0.0.3", UNENDED):
        plain_det.feed(r, 1.0)
    plain_det.run(100.0, 100.0)
    assert not plain_det.out[0].truncated
    det = journaled(tmp_path)
    for r in recs("10.0.0.3", UNENDED):
        det.feed(r, 1.0)
    det.run(1.0, 100.0)                 # one loop iteration: the batch is on disk
    # killed here: no checkpoint; a new process, its monotonic clock 40 s ahead
    again = journaled(tmp_path, wall=60.0, now=50.0)
    assert again.pool.open_reports == 1 and not again.out
    assert again.next_deadline() == 1.0 + 40.0 + 5.0          # quiet_seconds, same wall time
    again.run(46.0, 60.0)
    (inc,) = again.out
    assert inc.truncated and inc.host == "10.0.0.3" and inc.first_time == 101.0
    assert inc.title == plain_det.out[0].title and inc.text == plain_det.out[0].text


def test_a_report_continued_after_the_restart_is_the_same_as_without_it(tmp_path):
    lines = recs("10.0.0.4", OOPS_LINES + PANIC_LINES)
    plain_det = SourceDetector()
    for r in lines:
        plain_det.feed(r, 1.0)
    plain_det.run(100.0, 0.0)
    (want,) = plain_det.out
    det = journaled(tmp_path, wall=0.0)
    for r in lines[:7]:
        det.feed(r, 1.0)
    det.run(1.0, 0.0)
    again = journaled(tmp_path, wall=0.0, now=1.5)
    for r in lines[7:]:                 # the host goes on: its end arrives
        again.feed(r, 1.0)
    again.run(100.0, 0.0)
    (inc,) = again.out
    assert inc.to_dict() == want.to_dict() and not inc.truncated


def test_incidents_stay_in_the_journal_until_the_store_has_them(tmp_path):
    det = journaled(tmp_path, wall=0.0)
    for r in recs("10.0.0.5", OOPS_LINES + PANIC_LINES):
        det.feed(r, 1.0)
    det.run(100.0, 0.0)
    (inc,) = det.out                    # posted; syslog-ng's queue is lost with a kill
    again = journaled(tmp_path, wall=0.0, now=200.0)
    (back,) = again.out
    assert back.to_dict() == inc.to_dict() and not again.kept
    store = Store(str(tmp_path))
    assert store.add(back, 1.0)
    store.close()
    again.run(200.0 + CONFIRM_EVERY, 0.0)
    assert not again.unconfirmed        # the store has it: no longer journaled
    third = journaled(tmp_path, wall=0.0, now=300.0)
    assert not third.out and not third.kept


def test_a_reload_replays_nothing_and_the_rewrite_keeps_only_open_reports(tmp_path):
    det = journaled(tmp_path)
    for r in recs("10.0.0.6", ["hello %d" % i for i in range(50)]) + recs(
            "10.0.0.7", OOPS_LINES[:5]):
        det.feed(r, 1.0)
    det.checkpoint(1.0, 100.0)          # deinit: compacted
    assert det.kept.count() == 5 and len(det.kept) == 1
    records, incidents = journal.load(journal_path(str(tmp_path), 6666), 100.0)
    assert [t[0] for t, _ in records] == ["10.0.0.7"] * 5 and incidents == []
    reloaded = journaled(tmp_path, fresh=False)
    assert reloaded.pool.open_reports == 0 and not reloaded.kept


def test_a_torn_last_frame_is_ignored_and_a_bad_journal_kept_aside(tmp_path):
    det = journaled(tmp_path)
    for r in recs("10.0.0.8", OOPS_LINES[:5]):
        det.feed(r, 1.0)
    det.run(1.0, 100.0)
    path = journal_path(str(tmp_path), 6666)
    with open(path, "ab") as f:         # killed in the middle of a write()
        f.write(b"\x40\x00\x00\x00partial")
    assert len(journal.load(path, 100.0)[0]) == 5
    with open(path, "wb") as f:
        f.write(b"\x05\x00\x00\x00garba")
    try:
        journal.load(path, 100.0)
        raise AssertionError("no error")
    except ValueError:
        pass
    assert os.path.exists(path + ".bad") and not os.path.exists(path)


def test_the_journal_is_rewritten_when_mostly_stale(tmp_path, monkeypatch):
    monkeypatch.setattr(journal, "COMPACT_MIN", 4096)
    det = journaled(tmp_path)
    for i, r in enumerate(recs("10.0.0.9", ["line %d" % i for i in range(2000)])):
        det.feed(r, 1.0 + i * 0.01)
        det.run(1.0 + i * 0.01, 100.0)
    assert det.counters["journal_rewrites"] >= 1
    assert os.path.getsize(journal_path(str(tmp_path), 6666)) < 16384


def test_a_journal_that_cannot_be_written_never_stops_detection(tmp_path, monkeypatch):
    import errno
    logged = []
    det = journaled(tmp_path)
    det.log = lambda level, text: logged.append(text)
    real_write = os.write

    def full(fd, data):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(journal.os, "write", full)
    for r in recs("10.0.1.1", OOPS_LINES + PANIC_LINES):
        det.feed(r, 1.0)
    det.run(1.0, 100.0)                             # fails: said once
    det.run(3.0, 100.0)                             # within JOURNAL_RETRY: not tried
    assert det.counters["journal_errors"] == 1
    det.run(7.0, 100.0)                             # tried again, fails, not said again
    assert det.counters["journal_errors"] == 2 and len(logged) == 1
    assert "No space left" in logged[0] and "retrying" in logged[0]
    assert len(det.out) == 1                        # detected, journal or not
    monkeypatch.setattr(journal.os, "write", real_write)    # the disk has room again
    for r in recs("10.0.1.2", OOPS_LINES[:5]):
        det.feed(r, 110.0)
    det.run(110.0, 100.0)
    assert det.journal.fd is not None
    again = journaled(tmp_path, now=111.0)
    assert again.pool.open_reports == 1 and len(again.out) == 1     # both are back


def test_journal_no_writes_at_the_stop_only(tmp_path):
    path = journal_path(str(tmp_path), 6666)
    det = SourceDetector()
    det.open_journal(path, str(tmp_path), True, 1.0, 100.0, continuous=False)
    size = os.path.getsize(path)
    for r in recs("10.0.1.3", UNENDED):
        det.feed(r, 1.0)
    det.run(2.0, 100.0)
    assert os.path.getsize(path) == size            # nothing as it comes
    det.checkpoint(2.0, 100.0)                      # deinit
    assert len(journal.load(path, 100.0)[0]) == len(UNENDED)
    again = journaled(tmp_path, now=3.0)
    assert again.pool.open_reports == 1


def test_a_legacy_saved_file_is_dropped_by_a_reload(tmp_path):
    path = reports_path(str(tmp_path), 6666)
    (tmp_path / "source-6666.reports.jsonl").write_text("{}\n")
    assert SourceDetector.take_saved(path, fresh=False) == []
    assert not (tmp_path / "source-6666.reports.jsonl").exists()
    assert reports_path("", 6666) is None and journal_path("", 6666) is None


def test_an_unreadable_saved_file_is_kept_aside(tmp_path):
    path = reports_path(str(tmp_path), 6666)
    (tmp_path / "source-6666.reports.jsonl").write_text("{not json\n")
    try:
        SourceDetector.take_saved(path, fresh=True)
        raise AssertionError("no error")
    except ValueError:
        pass
    assert (tmp_path / "source-6666.reports.jsonl.bad").exists()
