"""hosts/fleet.py, hostdb.py, analytics.py and incidents/novelty.py: per-host facts
(release from every source, reboots, loss by seq and by msgid, incomplete records,
last incident), kept in SQLite across runs, and the fleet views built on them."""

from syslogng_netconsole.hosts import analytics
from syslogng_netconsole.hosts.fleet import HostTable
from syslogng_netconsole.hosts.hostdb import HostDb
from syslogng_netconsole.incidents import novelty
from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.ingest.reassembly import Reassembler
from syslogng_netconsole.ingest.records import EXTENDED, PLAIN, Record


def rec(host, text="x", **kw):
    return Record(host=host, text=text, **kw)


def test_release_from_prefix_banner_or_incident_and_reboots_and_loss():
    t = HostTable()
    t.observe(rec("10.0.0.1", "Linux version 6.1.0-27-amd64 (debian-kernel@...) #1 SMP"), 1.0)
    assert t.release("10.0.0.1") == "6.1.0-27-amd64"
    t.observe(rec("10.0.0.1", "a", format=EXTENDED, release="6.12.3", boot=1,
                  lost_before=4), 2.0)
    t.observe(rec("10.0.0.1", "b", format=EXTENDED, release="6.12.3", boot=1, lost_before=2,
                  fields={"msgid": "17"}, incomplete=True, fragments=3), 3.0)
    t.observe(rec("10.0.0.1", "c", format=PLAIN, incomplete=True), 4.0)
    h = t.get("10.0.0.1")
    assert (h.release, h.reboots, h.records, h.lost, h.lost_msgid) == ("6.12.3", 1, 4, 6, 2)
    assert (h.incomplete_fragments, h.incomplete_lines, h.last_seen) == (1, 1, 4.0)
    assert [r[0] for r in h.releases] == ["6.1.0-27-amd64", "6.12.3"]
    # a plain host that never names its release: the incident's CPU line does
    t.observe(rec("10.0.0.2", "[ 1.0] hello"), 5.0)
    inc = Incident(host="10.0.0.2", type="BUG", title="kernel BUG in f", signature="s",
                   text="x", release="6.1.0-57-amd64")
    t.note_incident(inc, 6.0)
    h2 = t.get("10.0.0.2")
    assert (h2.release, h2.incidents, h2.last_incident_id) == ("6.1.0-57-amd64", 1, inc.id)


def test_the_core_s_records_feed_it_as_they_come():
    core, t = Reassembler(), HostTable()
    core.process(b"6,1,100,-;first\n", "10.0.0.3", 6665, 6666, 1.0)
    core.process(b"6,5,200,-;after a gap\n", "10.0.0.3", 6665, 6666, 1.1)
    for r in core.records():
        t.observe(r, 10.0)
    core.expire(5.0)
    for r in core.records():
        t.observe(r, 11.0)
    h = t.get("10.0.0.3")
    assert h.records == 2 and h.lost == 3


def test_bounded_pruned_and_saved_across_runs(tmp_path):
    t = HostTable(max_hosts=3)
    for i in range(5):
        t.observe(rec("10.0.1.%d" % i, release="r%d" % (i % 2)), float(i))
    assert len(t) == 3 and t.get("10.0.1.0") is None and t.counters["evicted"] == 2
    db = HostDb(str(tmp_path))
    assert db.save(t.take_dirty(lambda h: "n-" + h)) == 5     # the evicted two as they left
    assert t.take_dirty() == []                 # nothing changed since
    gone = t.prune(3.5)
    assert gone == ["10.0.1.2", "10.0.1.3"]
    db.save([], gone)
    db.close()
    ro = HostDb(str(tmp_path), readonly=True)
    rows = ro.hosts()
    assert [(r["host"], r["name"]) for r in rows] == [
        ("10.0.1.0", None), ("10.0.1.1", None), ("10.0.1.4", "n-10.0.1.4")]
    assert ro.releases() == [{"release": "r0", "hosts": 2, "first_seen": 0.0, "last_seen": 4.0},
                             {"release": "r1", "hosts": 1, "first_seen": 1.0, "last_seen": 1.0}]
    ro.close()
    again = HostTable()
    again.load(rows + [{"bad": 1}])
    assert again.get("10.0.1.4").release == "r0" and len(again) == 3


def test_by_release_counts_hosts_per_thousand():
    rows = [{"release": "6.1", "incidents": 3, "signatures": 2, "crashing_hosts": 2},
            {"release": "", "incidents": 1, "signatures": 1, "crashing_hosts": 1}]
    out = analytics.by_release(rows, {"6.1": 400, "6.12": 600})
    assert out[0] == {"release": "6.1", "incidents": 3, "signatures": 2, "crashing_hosts": 2,
                      "hosts_seen": 400, "per_1000": 5.0}
    assert {r["release"]: r["per_1000"] for r in out} == {"6.1": 5.0, "6.12": 0.0, "": None}
    assert analytics.by_release(rows, None)[0]["hosts_seen"] is None


def _judge(sig, rel, seen, others):
    inc = Incident(host="h", type="BUG", title="t", signature=sig, text="", release=rel)
    novelty.judge(inc, lambda s, r: seen, lambda r: others)
    return inc.new, inc.new_on_release


def test_novelty_new_and_new_on_release():
    none = {"any": 0, "this_release": 0, "other_releases": 0}
    assert _judge("s", "6.12", none, others=1) == (True, True)     # a candidate regression
    assert _judge("s", "6.12", none, others=0) == (True, False)    # one release: nothing to compare
    assert _judge("s", None, none, others=3) == (True, False)      # release unknown
    on_old = {"any": 2, "this_release": 0, "other_releases": 2}
    assert _judge("s", "6.12", on_old, others=1) == (False, False)  # an old bug, new release
    again = {"any": 1, "this_release": 1, "other_releases": 0}
    assert _judge("s", "6.12", again, others=1) == (False, False)


def test_an_evicted_host_s_last_changes_are_saved_and_the_file_is_capped(tmp_path):
    t = HostTable(max_hosts=2)
    t.observe(rec("10.0.2.1", lost_before=2), 1.0)
    t.observe(rec("10.0.2.2"), 2.0)
    t.observe(rec("10.0.2.3"), 3.0)             # evicts 10.0.2.1 before it was saved
    rows = {r["host"]: r for r in t.take_dirty()}
    assert set(rows) == {"10.0.2.1", "10.0.2.2", "10.0.2.3"} and rows["10.0.2.1"]["lost"] == 2
    db = HostDb(str(tmp_path), max_rows=2)
    db.save(rows.values())
    assert [r["host"] for r in db.hosts()] == ["10.0.2.2", "10.0.2.3"]
    db.close()


def test_a_self_test_record_is_shown_with_what_the_set_up_lacks():
    from syslogng_netconsole.hosts import selftest
    text = selftest.record("abcdef123456", "db-17", 1796400000)
    t = HostTable()
    t.observe(rec("10.0.3.1", text, format=EXTENDED, release="6.12.3",
                  fields={"userdata.hostname": "db-17"}), 5.0)
    assert t.get("10.0.3.1").selftest == {
        "id": "abcdef123456", "time": 5.0, "sent": 1796400000, "format": EXTENDED,
        "release": "6.12.3", "hostname": "db-17", "missing": []}
    t.observe(rec("10.0.3.2", "[    1.0] hi", lost_before=2), 6.0)
    t.observe(rec("10.0.3.2", text), 7.0)
    assert t.get("10.0.3.2").selftest["missing"] == [
        "extended format (+)", "userdata hostname", "no loss (2 records lost so far)"]
    t.observe(rec("10.0.3.3", selftest.MARKER + " id=bad"), 8.0)     # malformed: ignored
    assert t.get("10.0.3.3").selftest is None


def test_the_detector_makes_no_incident_of_a_self_test_record():
    from syslogng_netconsole.hosts import selftest
    from syslogng_netconsole.reports.detector import Detector
    d = Detector()
    for i, text in enumerate([selftest.record("abcdef123456", "db-17", 1), "after"]):
        d.feed(rec("10.0.3.1", text, format=EXTENDED, seq=i, ts_us=i), float(i))
    d.flush(100.0)
    assert d.incidents() == []
