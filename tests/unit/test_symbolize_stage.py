"""The destination's symbolizer stage (sng/symbolize.py) over a real store and a
real symbolizer: a storm is written in batches (one transaction for many, counted
on the sqlite connection itself), alerts go out in order, a failing alert hook
leaves its incident waiting for the next start, and a report without frames is
not waited for."""

import threading
import time

from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.incidents.store import Store
from syslogng_netconsole.sng import symbolize as sym
from syslogng_netconsole.symbols import service

REPORT = ("BUG: kernel NULL pointer dereference, address: 0000000000000000\n"
          "RIP: 0010:nctest_init+0x15/0x1000 [nctest]\nCall Trace:\n"
          " do_one_initcall+0x56/0x220\n")


def options(tmp_path, **kw):
    opts = {k: v[1] for k, v in sym.OPTIONS.items()}
    opts.update(debug_dirs=[str(tmp_path / "nodebug")], debuginfod_urls="none")
    opts.update(kw)
    return opts


def stored(state, n, text=REPORT):
    s = Store(str(state))
    incs = []
    for i in range(n):
        inc = Incident(host="10.0.0.%d" % (i % 200), boot=i, type="BUG", title="t",
                       signature="s", text=text, release="6.1.0-99-amd64", first_seq=i)
        assert s.add(inc, 1.0)
        incs.append(inc)
    s.close()
    return incs


def begins(stage):
    """Count the write transactions on the stage's own store connection."""
    seen = []
    stage._open_store()._db.set_trace_callback(
        lambda sql: seen.append(sql) if sql.startswith("BEGIN") else None)
    return seen


def test_a_storm_is_stored_and_handed_in_batches_in_order(tmp_path):
    state = tmp_path / "state"
    incs = stored(state, 300)
    stage = sym.SymbolizeStage(options(tmp_path, symbolize_wait=10.0), str(state),
                               lambda level, text: None)
    got, all_in = [], threading.Event()

    def on_alert(inc, wall):
        got.append(inc.id)
        assert inc.symbols and inc.symbols["reason"] == "no-debug-file"
        if len(got) == len(incs):
            all_in.set()
    stage.on_alert = on_alert
    for inc in incs:            # queued before the threads run: a storm's backlog
        assert stage.submit(inc, 1.0) == sym.DEFERRED
    seen = begins(stage)
    stage.start()
    try:
        assert all_in.wait(20), len(got)
        deadline = time.monotonic() + 10
        s = Store(str(state))
        while s.unhanded() and time.monotonic() < deadline:
            time.sleep(0.05)
        assert s.unhanded() == []
        assert all(d["symbols"]["status"] == "none" for d in s.list(limit=1000))
        s.close()
    finally:
        sym.stop(stage)
    assert got == [inc.id for inc in incs]          # the order of storage
    # one transaction per incident each for symbols and hand-off was 600
    assert len(seen) <= 8, len(seen)
    assert stage.counters["unsymbolized_no_debug_file"] == 300
    # one search of the release, then remembered as not found
    assert stage.counters["symbolize_negative_hits"] >= 299
    assert stage.counters["symbolize_late"] == 0


def test_a_failing_alert_hook_leaves_its_incident_for_the_next_start(tmp_path):
    state = tmp_path / "state"
    incs = stored(state, 5)
    stage = sym.SymbolizeStage(options(tmp_path), str(state), lambda level, text: None)
    got = []

    def on_alert(inc, wall):
        if inc.id == incs[2].id:
            raise RuntimeError("outbox full")
        got.append(inc.id)
    stage.on_alert = on_alert
    stage.start()
    try:
        for inc in incs:
            stage.submit(inc, 1.0)
        deadline = time.monotonic() + 10
        s = Store(str(state))
        while len(s.unhanded()) > 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert [i.id for i in s.unhanded()] == [incs[2].id]
        s.close()
    finally:
        sym.stop(stage)
    assert got == [i.id for i in incs if i is not incs[2]]
    assert stage.counters["alert_errors"] == 1


def test_a_report_without_frames_is_not_waited_for(tmp_path):
    state = tmp_path / "state"
    (inc,) = stored(state, 1, text="INFO: task kworker blocked for more than 120 seconds.\n")
    stage = sym.SymbolizeStage(options(tmp_path, symbolize_wait=30.0), str(state),
                               lambda level, text: None)
    stage.submit(inc, 1.0)          # threads not started: nothing can symbolize it
    (item,) = list(stage._release.queue)
    assert item.done.is_set()
    (frames_item,) = stored(tmp_path / "other", 1)
    stage.submit(frames_item, 1.0)
    assert not list(stage._release.queue)[1].done.is_set()
    r = service.Symbolizer([], [], str(tmp_path / "c")).run(inc.text, "6.1")
    assert r[0]["reason"] == "no-frames" and r[0]["status"] == "none"


def test_a_symbolizer_that_cannot_start_leaves_storage_alone(tmp_path):
    """e.g. its MAINTAINERS file gone between init() and the start: logged, counted,
    no stage (the sink then hands incidents to the alerts itself)."""
    import collections
    said, counters = [], collections.Counter()
    gone = tmp_path / "MAINTAINERS"
    opts = options(tmp_path, maintainers_file=str(gone))
    assert sym.start_stage(opts, str(tmp_path), lambda lvl, t: said.append((lvl, t)),
                           counters) is None
    assert counters["symbolize_start_errors"] == 1
    assert said and said[0][0] == "error" and "stored unsymbolized" in said[0][1]
