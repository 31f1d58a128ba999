"""sng/detect_worker.py + worker/: crash detection in a real child process.

The same incidents as the detector in the source, records of finished reports not
kept, and a worker killed with SIGKILL in the middle of reports: restarted, the
kept records replayed, every report still stored once with its full text.
"""

import dataclasses
import os
import pathlib
import signal
import time

import pytest

from syslogng_netconsole.ingest.capture import CaptureFeed, CaptureReader
from syslogng_netconsole.ingest.reassembly import Reassembler
from syslogng_netconsole.sng.detect import SourceDetector
from syslogng_netconsole.sng.detect_worker import interpreter

FIXTURES = pathlib.Path(__file__).resolve().parents[1] / "fixtures"
pytestmark = pytest.mark.skipif(interpreter() is None, reason="no python3.x next to this one")


def records(name, host):
    path = FIXTURES / (name + ".pcap")
    if not path.exists():
        pytest.skip("%s is not in this checkout" % path)
    feed = CaptureFeed(Reassembler())
    with CaptureReader(str(path)) as reader:
        out = [r for r, _ in feed.packets(reader)] + [r for r, _ in feed.finish()]
    return [dataclasses.replace(r, host=host) for r in out]


def run_until(det, now, pred, limit=15.0):
    end = time.monotonic() + limit
    while time.monotonic() < end:
        det.run(time.monotonic(), 0.0)
        if pred():
            return True
        time.sleep(0.01)
    return False


def inline_incidents(recs, now):
    det = SourceDetector(False)
    for r in recs:
        det.feed(r, now)
    det.pool.flush(now)
    det.run(now, 0.0)
    return list(det.out)


def inline_titles(recs, now):
    return sorted((i.host, i.title, i.panicked) for i in inline_incidents(recs, now))


@pytest.fixture
def worker():
    dets = []

    def make():
        d = SourceDetector(True, lambda level, text: None, time.monotonic())
        assert d.worker is not None and d.worker.pid()
        dets.append(d)
        return d
    yield make
    for d in dets:
        d.close()


def test_the_worker_finds_what_the_source_would(worker):
    recs = []
    for i, name in enumerate(["kernel-6.1-extended-oops-panic", "kernel-6.12-release-warn",
                              "kernel-6.12-configfs-oops"]):
        recs += records(name, "10.0.0.%d" % (i + 1))
    det = worker()
    now = time.monotonic()
    for r in recs:
        det.feed(r, now)
    # the panic ends on its terminal line; the others when their grace or quiet ends
    assert run_until(det, now, lambda: len(det.out) >= 3)
    got = sorted((i.host, i.title, i.panicked) for i in det.out)
    assert got == inline_titles(recs, now) and len(got) == 3
    assert all(i.first_time > 0 and not i.truncated for i in det.out)
    # nothing is kept for reports that finished
    assert run_until(det, now, lambda: not det.worker.kept)
    snap = det.counters_snapshot()
    assert snap["detect.worker_pid"] == det.worker.pid() and snap["detect.worker_starts"] == 1


def test_the_counters_arrive_with_the_incident(worker):
    """The source's stats (written at a stop) must cover the records behind every
    incident it holds, not the worker's last periodic snapshot (CI once read 4 of 53)."""
    recs = records("kernel-6.1-extended-oops-panic", "10.0.0.9")
    det = worker()
    now = time.monotonic()
    # the worker's first periodic snapshot (nothing fed yet) comes first
    assert run_until(det, now, lambda: det.worker.remote)
    for r in recs:
        det.feed(r, now)
    assert run_until(det, now, lambda: len(det.out) >= 1)
    # the report ends on or after its panic line: every record up to it was fed
    end = next(i for i, r in enumerate(recs) if r.text.startswith("Kernel panic - not syncing"))
    assert det.counters_snapshot()["detect.records"] >= end + 1


def test_a_killed_worker_is_restarted_and_loses_no_report(worker):
    hosts = ["10.0.1.%d" % i for i in range(1, 6)]
    per_host = [records("kernel-6.1-extended-oops-panic", h) for h in hosts]
    start = next(n for n, r in enumerate(per_host[0]) if r.text.startswith("BUG: kernel NULL"))
    det = worker()
    now = time.monotonic()
    # every host's boot log and the first half of its report
    half = start + 20
    for recs in per_host:
        for r in recs[:half]:
            det.feed(r, now)
    assert run_until(det, now, lambda: det.counters["worker_starts"] == 1 and det.worker.remote
                     and len(det.worker.kept) == len(hosts))
    kept = det.worker.kept.count()
    assert kept < len(hosts) * 30       # the open reports (and a prefix), not the boot logs
    old = det.worker.pid()
    os.kill(old, signal.SIGKILL)
    det.worker.proc.wait(5)
    det.run(time.monotonic(), 0.0)      # sees the death; the next run restarts it
    assert det.worker.proc is None
    for recs in per_host:               # these wait in the batch meanwhile
        for r in recs[half:]:
            det.feed(r, time.monotonic())
    assert run_until(det, now, lambda: len(det.out) >= len(hosts), 20)
    time.sleep(0.3)
    det.run(time.monotonic(), 0.0)
    assert det.worker.pid() != old and det.counters["worker_restarts"] == 1
    assert det.counters["worker_replayed"] >= kept
    incs = list(det.out)
    assert sorted(i.host for i in incs) == sorted(hosts)           # each once
    want = {i.host: i for r in per_host for i in inline_incidents(r, now)}
    for i in incs:
        # the same text line for line: nothing lost, nothing replayed twice
        assert (i.title, i.panicked, i.text) == (want[i.host].title, want[i.host].panicked,
                                                 want[i.host].text) and not i.truncated
        assert "Rebooting in" in i.text and "BUG: kernel NULL" in i.text


def unended(host):
    """The 6.1 Oops up to its end marker: a call trace, but its end never came."""
    recs = records("kernel-6.1-extended-oops-panic", host)
    return recs[:next(n for n, r in enumerate(recs) if r.text.startswith("---[ end trace"))]


def test_open_reports_survive_a_kill_of_the_source_through_the_journal(worker, tmp_path):
    from syslogng_netconsole.sng.journal import journal_path
    path = journal_path(str(tmp_path), 6666)
    det = worker()
    now = time.monotonic()
    det.open_journal(path, str(tmp_path), True, now, 0.0)
    assert not inline_incidents(unended("10.0.2.1"), now)[0].truncated   # without a kill
    for r in unended("10.0.2.1"):
        det.feed(r, now)
    assert run_until(det, now, lambda: det.worker.kept and det.worker.remote.get("open_reports"))
    # syslog-ng is killed: no deinit; a new source, 10 s later by the wall clock,
    # replays the journal into its worker: the report has been quiet for 10 s
    again = worker()
    n, _ = again.open_journal(path, str(tmp_path), True, time.monotonic(), 10.0)
    assert n >= 20
    assert run_until(again, now, lambda: again.out)
    (inc,) = again.out
    assert inc.truncated and inc.title.startswith("BUG: unable to handle kernel NULL pointer")
    assert "BUG: kernel NULL pointer dereference" in inc.text


def test_a_hung_worker_is_killed_and_replaced(worker, monkeypatch):
    from syslogng_netconsole.sng import detect_worker
    monkeypatch.setattr(detect_worker, "STALL_SECONDS", 0.5)
    recs = records("kernel-6.1-extended-oops-panic", "10.0.3.1")
    det = worker()
    old = det.worker.pid()
    os.kill(old, signal.SIGSTOP)            # alive, but answers nothing
    now = time.monotonic()
    for r in recs:                          # fits in the pipe: only progress tells
        det.feed(r, now)
    assert run_until(det, now, lambda: det.counters["worker_restarts"] >= 1, 10)
    assert det.worker.pid() != old
    assert run_until(det, now, lambda: det.out, 15)
    assert det.out[0].title.startswith("BUG: unable to handle kernel NULL pointer")


def test_a_report_ended_by_the_open_report_cap_releases_its_kept_records():
    # the worker's loop, on real pipes, with a pool that keeps one open report: the
    # second stream's report finishes the first one at once (truncated); the source
    # must hear that the first stream needs nothing more, without waiting for a timer
    import threading
    from syslogng_netconsole.reports.pool import DetectorPool
    from syslogng_netconsole.worker import protocol
    from syslogng_netconsole.worker.__main__ import serve
    a, b = records("kernel-6.1-extended-oops-panic", "10.0.4.1"), \
        records("kernel-6.1-extended-oops-panic", "10.0.4.2")
    start = next(n for n, r in enumerate(a) if r.text.startswith("BUG: kernel NULL"))
    to_w, from_src = os.pipe()
    from_w, to_src = os.pipe()
    t = threading.Thread(target=serve, args=(to_w, to_src, DetectorPool(max_open=1)),
                         daemon=True)
    t.start()
    now = time.monotonic()
    items = [(1, protocol.rec_tuple(a[start]), now), (2, protocol.rec_tuple(a[start + 1]), now),
             (3, protocol.rec_tuple(b[start]), now)]
    os.write(from_src, protocol.frame(("r", items)))
    reader, acks, incidents = protocol.FrameReader(), {}, []
    end = time.monotonic() + 3.0            # well inside the 5 s quiet timeout
    while time.monotonic() < end and acks.get(a[0].stream) != 3:
        for _kind, incs, got, _counters, _done in reader.feed(os.read(from_w, 1 << 16)):
            incidents += incs
            acks.update((tuple(k), v) for k, v in got)
    os.close(from_src)
    t.join(5)
    assert [i["host"] for i in incidents] == ["10.0.4.1"] and incidents[0]["truncated"]
    assert acks[a[0].stream] == 3           # nothing of 10.0.4.1 up to idx 2 is needed
    assert acks[b[0].stream] == 0           # 10.0.4.2's report is open from idx 3


def test_a_worker_replaced_after_a_journal_replay_still_flags_the_restored_report(
        worker, tmp_path):
    from syslogng_netconsole.sng.journal import journal_path
    path = journal_path(str(tmp_path), 6666)
    det = worker()
    now = time.monotonic()
    det.open_journal(path, str(tmp_path), True, now, 0.0)
    for r in unended("10.0.2.2"):
        det.feed(r, now)
    assert run_until(det, now, lambda: det.worker.kept and det.worker.remote.get("open_reports"))
    # the next process, 2 s later by the wall clock: the report is due 3 s from now
    again = worker()
    again.open_journal(path, str(tmp_path), True, time.monotonic(), 2.0)
    assert run_until(again, now, lambda: not again.worker.mark_pending
                     and again.worker.remote.get("open_reports") == 1)
    os.kill(again.worker.pid(), signal.SIGKILL)     # it had the replay and the mark
    again.worker.proc.wait(5)
    assert run_until(again, now, lambda: again.out)
    (inc,) = again.out
    assert again.counters["worker_restarts"] == 1 and inc.truncated
