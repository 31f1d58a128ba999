"""The SQLite incident store: schema, idempotent adds, queries, threads, parking."""

import sqlite3
import threading

import pytest

from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.incidents.store import DB_NAME, STORE_SCHEMA_VERSION, Store, StoreError, read_incidents


def make(host="10.0.0.5", sig="sig-a", seq=10, title="BUG: unable to handle kernel NULL pointer dereference in foo", **kw):
    return Incident(host=host, type="NULL-POINTER-DEREFERENCE", title=title, signature=sig,
                    text="BUG: kernel NULL pointer dereference\nRIP: foo+0x1/0x2", first_seq=seq,
                    first_ts_us=seq * 1000, frames=["foo", "bar"], panicked=True, **kw)


def test_add_is_idempotent_and_roundtrips(tmp_path):
    s = Store(str(tmp_path))
    inc = make()
    assert s.add(inc, 100.0) is True
    assert s.add(inc, 101.0) is False          # same id: replay or reload
    assert s.count() == 1
    got = s.get(inc.id)
    assert got["title"] == inc.title and got["frames"] == ["foo", "bar"]
    assert got["panicked"] is True and got["stored_at"] == 100.0
    assert s.get("nope") is None


def test_schema_version_wal_and_reopen(tmp_path):
    s = Store(str(tmp_path))
    s.add(make(), 1.0)
    s.close()
    db = sqlite3.connect(str(tmp_path / DB_NAME))
    assert db.execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()
    assert Store(str(tmp_path)).count() == 1


def test_newer_schema_is_refused(tmp_path):
    db = sqlite3.connect(str(tmp_path / DB_NAME))
    db.execute("PRAGMA user_version=%d" % (STORE_SCHEMA_VERSION + 1))
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(str(tmp_path))


def test_state_dir_under_a_file_raises_store_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    with pytest.raises(StoreError):
        Store(str(f / "state"))


def test_queries(tmp_path):
    s = Store(str(tmp_path))
    s.add(make(host="a", sig="s1", seq=1), 10.0)
    s.add(make(host="b", sig="s1", seq=1), 20.0)
    s.add(make(host="a", sig="s2", seq=2, title="WARNING in bar"), 30.0)
    assert [d["host"] for d in s.list()] == ["a", "b", "a"]           # newest first
    assert [d["signature"] for d in s.list(host="a")] == ["s2", "s1"]
    assert [d["host"] for d in s.list(signature="s1")] == ["b", "a"]
    assert len(s.list(since=15.0)) == 2
    assert len(s.list(limit=1)) == 1
    sigs = {r["signature"]: r for r in s.signatures()}
    assert sigs["s1"]["incidents"] == 2 and sigs["s1"]["hosts"] == 2
    assert sigs["s2"]["title"] == "WARNING in bar"


def test_hostile_text_is_stored_verbatim(tmp_path):
    s = Store(str(tmp_path))
    nasty = "x'); DROP TABLE incidents; --\x00\r\nBcc: a@b\u202e"
    inc = make(title=nasty, host=nasty)
    assert s.add(inc, 1.0)
    assert s.get(inc.id)["title"] == nasty
    assert s.list(host=nasty)[0]["host"] == nasty


def test_concurrent_writers_threads_and_connections(tmp_path):
    s1 = Store(str(tmp_path))
    s2 = Store(str(tmp_path))                  # a second connection, like the CLI
    errors = []

    def work(store, base):
        try:
            for i in range(100):
                store.add(make(host="h%d" % base, seq=i), float(i))
                store.list(limit=5)
        except Exception as exc:               # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(s1 if n % 2 else s2, n)) for n in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors
    assert s1.count() == 600


def test_park_and_unpark(tmp_path):
    s = Store(str(tmp_path))
    a, b = make(seq=1), make(seq=2)
    assert s.park("dest1", [a, b], 5.0) == 2
    assert s.park("dest1", [b], 6.0) == 1        # replaces the previous snapshot
    s.park("other", [a], 6.0)
    got = s.unpark("dest1")
    assert [i.id for i in got] == [b.id] and got[0].frames == ["foo", "bar"]
    assert s.unpark("dest1") == []               # taken once
    assert [i.id for i in s.unpark("other")] == [a.id]


def test_readonly_reader(tmp_path):
    with pytest.raises(StoreError, match="no incident store"):
        Store(str(tmp_path), readonly=True)
    w = Store(str(tmp_path))
    w.add(make(), 1.0)
    r = Store(str(tmp_path), readonly=True)
    assert r.count() == 1 and r.list()[0]["host"] == "10.0.0.5"
    w.add(make(seq=99), 2.0)                   # the writer goes on while a reader is open
    assert r.count() == 2
    with pytest.raises(StoreError):
        r.add(make(seq=5), 3.0)


def test_read_incidents(tmp_path):
    assert read_incidents(tmp_path / "absent") == []
    s = Store(str(tmp_path))
    assert read_incidents(tmp_path) == []
    s.add(make(host="a", seq=1), 5.0)
    s.add(make(host="b", seq=2), 6.0)
    assert [d["host"] for d in read_incidents(tmp_path)] == ["a", "b"]      # oldest first
    assert [d["host"] for d in read_incidents(tmp_path, host="b")] == ["b"]


def test_same_report_through_two_streams_is_stored_once(tmp_path):
    """A host with a plain and an extended target sends each report twice: the
    extended copy has seq numbers (another id), same host, boot, signature, ts."""
    s = Store(str(tmp_path))
    plain = make(seq=1)
    plain.first_seq, plain.first_ts_us = None, 12_345_678
    ext = make(seq=700)
    ext.first_ts_us = 12_345_678
    assert plain.id != ext.id
    assert s.add(plain, 1.0) is True
    assert s.add(ext, 1.1) is False
    later = make(seq=900)                        # the same bug again, later: a new incident
    later.first_ts_us = 99_000_000
    assert s.add(later, 2.0) is True
    other_host = make(host="10.0.0.6", seq=700)
    other_host.first_ts_us = 12_345_678
    assert s.add(other_host, 2.0) is True
    assert s.count() == 3


def test_a_version_1_store_is_migrated_and_keeps_its_incidents(tmp_path):
    from syslogng_netconsole.incidents import store as store_mod
    db = sqlite3.connect(str(tmp_path / DB_NAME), isolation_level=None)
    for stmt in store_mod._MIGRATIONS[1]:         # what release 1 created
        db.execute(stmt)
    db.execute("PRAGMA user_version=1")
    db.close()
    old = make()
    s = Store(str(tmp_path))
    assert s.add(old, 1.0) and s.unhanded()[0].id == old.id
    s.close()
    assert Store(str(tmp_path), readonly=True).count() == 1


def test_hand_offs_and_known(tmp_path):
    s = Store(str(tmp_path))
    a, b, c = make(seq=1), make(seq=2), make(seq=3)
    assert s.add(a, 1.0) and s.add(b, 2.0)
    assert [i.id for i in s.unhanded()] == [a.id, b.id]      # oldest first
    s.handed(a.id)
    assert [i.id for i in s.unhanded()] == [b.id]
    assert not s.add(b, 3.0) and len(s.unhanded()) == 1       # a duplicate adds no hand-off
    other_stream = make(seq=2, boot=0)                        # same report key as b
    other_stream.first_seq = 99
    assert s.known([a.to_dict(), other_stream.to_dict(), c.to_dict()]) == {a.id, other_stream.id}


def test_retention_prunes_old_incidents_and_the_cli_says_what_is_left(tmp_path, capsys):
    import json as _json
    from syslogng_netconsole.cli import main
    from syslogng_netconsole.incidents.sink import IncidentSink
    s = Store(str(tmp_path))
    old, new = make(seq=1, host="10.0.0.1"), make(seq=2, host="10.0.0.2", sig="sig-b")
    s.add(old, 1000.0)
    s.add(new, 1000.0 + 100 * 86400)
    s.close()
    log = []
    sink = IncidentSink(str(tmp_path), "o", lambda level, text: log.append(text))
    sink.open(0.0)
    assert sink.prune(0, 1.0, 1e12) == 0                  # 0: keep everything
    assert sink.prune(90 * 86400.0, 1.0, 1000.0 + 100 * 86400) == 1
    assert "1 incident(s) older than 90 days deleted" in log[-1]
    sink.close()
    assert [r["id"] for r in read_incidents(str(tmp_path))] == [new.id]
    assert main(["incidents", "--state-dir", str(tmp_path), "--summary", "--json"]) == 0
    doc = _json.loads(capsys.readouterr().out)
    assert (doc["incidents"], doc["hosts"], doc["signatures"]) == (1, 1, 1)
    assert doc["oldest"] == doc["newest"] == 1000.0 + 100 * 86400
    assert doc["alerts_waiting"] == 1 and doc["bytes"] > 0  # no alerts ever took it
    assert main(["incidents", "--state-dir", str(tmp_path), "--summary"]) == 0
    assert "1 incident(s) from 1 host(s), 1 signature(s)" in capsys.readouterr().out


def test_json_lines_rotate_at_their_size_cap(tmp_path):
    from syslogng_netconsole import jsonfiles, options
    path = str(tmp_path / "incidents.jsonl")
    for i in range(10):
        jsonfiles.append_line(path, '{"n": %d}\n' % i, max_bytes=30)
    assert open(path).read() == '{"n": 9}\n'
    assert open(path + ".1").read() == '{"n": 6}\n{"n": 7}\n{"n": 8}\n'
    assert options.size("100M") == 100 << 20 and options.size("64k") == 65536
    assert options.size(0) == 0
    with pytest.raises(ValueError):
        options.size("-1")
    with pytest.raises(ValueError):
        options.size("lots")


def test_incidents_are_found_by_the_host_s_own_name(tmp_path):
    s = Store(str(tmp_path))
    named = make(seq=1, host="10.0.0.7", hostname="db-17")
    s.add(named, 1.0)
    s.add(make(seq=2, host="10.0.0.8"), 2.0)
    assert [r["id"] for r in s.list(host="db-17")] == [named.id]
    assert [r["id"] for r in s.list(host="10.0.0.7")] == [named.id]
    assert s.list(host="db-1") == []


def test_incident_to_dict_is_asdict_and_a_copy():
    """to_dict() is hand-written for speed: it must stay what dataclasses.asdict gives
    (every field, a new field included) and share no list or dict with the incident."""
    import dataclasses
    inc = Incident("h", "BUG", "t", "s", "text", alt_titles=["a"], frames=["f"], modules=["m"],
                   labels={"rack": "1"}, symbols={"frames": [{"locations": [{"line": 1}]}]},
                   subsystem={"name": "x", "lists": ["l"]})
    want = dataclasses.asdict(inc)
    want["id"] = inc.id
    got = inc.to_dict()
    assert got == want
    for name, value in got.items():
        if isinstance(value, (list, dict)):
            assert value is not getattr(inc, name), name
    assert got["symbols"]["frames"] is not inc.symbols["frames"]


def test_seen_before_answers_from_the_index(tmp_path):
    """A storm stores thousands of incidents of one signature and asks seen_before for
    each: it must not scan them (it once counted every row of the signature)."""
    st = Store(str(tmp_path))
    for i in range(3):
        st.add(Incident("10.0.0.%d" % i, "BUG", "t", "sig", "x", release="6.1", boot=i), 1.0 + i)
    st.add(Incident("10.0.1.1", "BUG", "t", "other", "x", release="6.12"), 9.0)
    assert st.seen_before("sig", "6.1") == {"any": 1, "this_release": 1, "other_releases": 0}
    assert st.seen_before("sig", "6.12") == {"any": 1, "this_release": 0, "other_releases": 1}
    assert st.seen_before("new", "6.1") == {"any": 0, "this_release": 0, "other_releases": 0}
    assert st.seen_before("sig", None) == {"any": 1, "this_release": 0, "other_releases": 1}
    db = sqlite3.connect(str(tmp_path / DB_NAME))
    plan = db.execute("EXPLAIN QUERY PLAN SELECT 1 FROM incidents WHERE signature = ?"
                      " AND release IS NOT NULL AND release != ?", ("sig", "6.1")).fetchall()
    assert all("COVERING INDEX incidents_signature_release" in r[-1] for r in plan), plan
    st.close()
