"""reports/pool.py: per-stream detectors with caps, idle eviction, timers, drain and
snapshots, on a clock the test drives (the pool never reads one)."""

from harness.samples import OOPS_LINES, PANIC_LINES
from syslogng_netconsole.ingest.records import EXTENDED, Record
from syslogng_netconsole.reports.pool import DetectorPool


def recs(host, lines, seq=100, src_port=6665, dst_port=6666):
    return [Record(host=host, text=l, format=EXTENDED, seq=seq + i, ts_us=1_000_000 + i,
                   src_port=src_port, dst_port=dst_port) for i, l in enumerate(lines)]


def feed(pool, records, now):
    n = 0
    for r in records:
        n += pool.feed(r, now)
    return n


def test_one_detector_per_stream_key():
    pool = DetectorPool()
    feed(pool, recs("h", ["hello"]), 1.0)
    feed(pool, recs("h", ["hello"], src_port=1234), 1.0)    # another sender port
    feed(pool, recs("h", ["hello"], dst_port=6667), 1.0)    # another local port
    feed(pool, recs("h", ["again"]), 1.0)
    assert pool.streams == 3 and pool.counters["records"] == 4 and pool.open_reports == 0


def test_timer_finishes_a_silent_report_and_drain_shifts_times():
    pool = DetectorPool()
    assert feed(pool, recs("h", OOPS_LINES), 10.0) == 0
    deadline = pool.next_deadline()
    assert pool.open_reports == 1 and deadline is not None and deadline > 10.0
    assert pool.expire(deadline - 0.5) == deadline and pool.drain() == []
    assert pool.expire(deadline) is None
    (inc,) = pool.drain(offset=1000.0)
    assert inc.first_seq == 100 and inc.first_time == 1010.0
    assert pool.open_reports == 0 and pool.counters["incidents"] == 1 and pool.drain() == []


def test_expire_and_flush_run_in_stream_creation_order():
    pool = DetectorPool()
    for host in ("b", "a", "c"):
        feed(pool, recs(host, OOPS_LINES[:20]), 1.0)
    feed(pool, recs("a", OOPS_LINES[20:25], seq=120), 1.0)   # fed last, created second
    pool.expire(1000.0)
    assert [i.host for i in pool.drain()] == ["b", "a", "c"]
    for host in ("z", "y"):
        feed(pool, recs(host, OOPS_LINES[:20]), 2000.0)
    pool.flush(2000.0)
    assert [i.host for i in pool.drain()] == ["z", "y"] and pool.open_reports == 0


def test_stream_cap_finishes_the_least_recently_fed():
    pool = DetectorPool(max_streams=2)
    feed(pool, recs("old", OOPS_LINES[:25]), 1.0)
    feed(pool, recs("mid", ["hello"]), 2.0)
    feed(pool, recs("old", ["more"], seq=200), 3.0)       # "mid" is now the least recent
    assert feed(pool, recs("new", ["hello"]), 4.0) == 0
    assert pool.counters["streams_evicted"] == 1 and pool.streams == 2
    assert feed(pool, recs("newer", ["hello"]), 5.0) == 1   # "old" goes, its report ends
    (inc,) = pool.drain()
    assert inc.host == "old" and not inc.truncated and pool.open_reports == 0


def test_open_report_cap_forces_the_least_recent_truncated():
    pool = DetectorPool(max_open=2)
    for n in range(4):
        feed(pool, recs("h%d" % n, OOPS_LINES[:25], seq=1000 * n), float(n))
    found = pool.drain()
    assert [i.host for i in found] == ["h0", "h1"] and all(i.truncated for i in found)
    assert pool.open_reports == 2 and pool.counters["reports_forced"] == 2
    assert pool.streams == 4                     # the detectors stay, only the reports end


def test_idle_eviction_keeps_open_reports_and_recent_streams():
    pool = DetectorPool(idle=100.0)
    feed(pool, recs("quiet", ["hello"]), 0.0)
    feed(pool, recs("open", OOPS_LINES[:25]), 0.0)
    feed(pool, recs("recent", ["hello"]), 90.0)
    assert pool.evict_idle(150.0) == 1 and pool.streams == 2
    assert DetectorPool().evict_idle(1e9) == 0    # no bound: nothing forgotten


def test_snapshot_finishes_copies_and_the_live_report_goes_on():
    pool = DetectorPool()
    lines = OOPS_LINES + PANIC_LINES
    feed(pool, recs("h", lines[:20]), 5.0)
    snap, errors = pool.snapshot(5.0, offset=100.0)
    assert errors == [] and len(snap) == 1 and snap[0].first_time == 105.0
    assert pool.open_reports == 1 and pool.drain() == []
    feed(pool, recs("h", lines[20:], seq=120), 6.0)
    pool.flush(6.0)
    (inc,) = pool.drain()
    assert inc.first_seq == snap[0].first_seq and "Kernel panic" in inc.text


def test_gauges_and_shared_counters():
    import collections
    shared = collections.Counter(bad_records=3)
    pool = DetectorPool(counters=shared)
    feed(pool, recs("h", OOPS_LINES[:25]), 1.0)
    assert shared["records"] == 25 and shared["bad_records"] == 3
    assert pool.gauges() == {"streams": 1, "open_reports": 1, "detector_errors": 0}


def test_soonest_deadline_follows_every_stream_without_scanning():
    # a storm keeps thousands of reports open: the pool keeps their deadlines in a
    # heap; the answer must equal the minimum over the streams at every step
    pool = DetectorPool()
    hosts = ["10.0.%d.%d" % (i // 250, i % 250) for i in range(300)]
    for i, h in enumerate(hosts):
        feed(pool, recs(h, OOPS_LINES[:3]), 10.0 + i * 0.01)
    def brute():
        return min(d for d in (s.det.next_deadline() for s in pool._slots.values())
                   if d is not None)
    assert pool.next_deadline() == brute()
    for i, h in enumerate(hosts[:100]):        # later lines move these deadlines on
        feed(pool, recs(h, OOPS_LINES[3:5], seq=200), 20.0 + i * 0.01)
    assert pool.next_deadline() == brute()
    first = pool.next_deadline()
    pool.expire(first)
    assert len(pool.drain()) == 1 and pool.next_deadline() == brute()
    assert len(pool._heap) <= 2 * pool.open_reports + 64
    pool.expire(1e9)
    assert len(pool.drain()) == 299 and pool.next_deadline() is None and pool.open_reports == 0


def test_a_report_whose_last_record_compacts_the_heap_still_times_out():
    # every feed of an open report moves its deadline (a heap push); the push that
    # makes the heap rebuild itself from the open streams must keep the newest one
    for n in range(60, 80):
        pool = DetectorPool()
        for i, r in enumerate(recs("10.0.9.1", OOPS_LINES[:5] + ["more %d" % i for i in range(n)])):
            pool.feed(r, 1.0 + i * 0.001)
        assert pool.open_reports == 1
        pool.expire(100.0)
        assert pool.open_reports == 0 and len(pool.drain()) == 1, n
