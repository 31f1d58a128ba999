"""The state directory of every earlier release, read by this one (issue 17).

tests/fixtures/upgrade/<release>/ holds the files that release's own code wrote
(make_release_files.py, run on a `git archive` of the release): the incident store,
the alert outbox, the pending records saved at a stop and the crash report journal,
with expected.json saying what they held. This release must open each one (migrating
the databases forward), find everything in it, and refuse a file of a newer release
with a clear message without changing a byte of it.
"""

import json
import marshal
import pathlib
import shutil
import sqlite3

import pytest

from syslogng_netconsole import __version__
from syslogng_netconsole.alerts import model
from syslogng_netconsole.alerts.outbox import OUTBOX_SCHEMA_VERSION, Outbox, OutboxError
from syslogng_netconsole.incidents import store as store_mod
from syslogng_netconsole.incidents.store import STORE_SCHEMA_VERSION, Store, StoreError
from syslogng_netconsole.sng import journal, persist
from syslogng_netconsole.worker import protocol

UPGRADE = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "upgrade"
RELEASES = sorted(p.parent.name for p in UPGRADE.glob("*/expected.json"))
WEBHOOK = "webhook:http://127.0.0.1:18080"


def _version_key(v):
    return tuple(int(x) for x in v.split("."))


def test_there_is_a_release_to_upgrade_from():
    assert RELEASES, "no tests/fixtures/upgrade/<release>/expected.json"
    # every fixture is of an earlier release than this one
    for rel in RELEASES:
        assert _version_key(rel) < _version_key(__version__), rel


@pytest.fixture(params=RELEASES)
def release(request, tmp_path):
    """(expected.json, a private copy of the release's state directory)."""
    src = UPGRADE / request.param
    state = tmp_path / "state"
    shutil.copytree(src, state)
    (state / "expected.json").unlink()
    expected = json.loads((src / "expected.json").read_text())
    assert expected["release"] == request.param
    return expected, state


def test_store_of_a_release_is_migrated_and_kept(release):
    expected, state = release
    assert expected["store_schema"] <= STORE_SCHEMA_VERSION
    s = Store(str(state))
    try:
        assert s._db.execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION
        got = {r["id"]: r for r in s.list(limit=100)}
        for want in expected["incidents"]:
            have = got.pop(want["id"])
            for key, value in want.items():
                assert have[key] == value, (want["id"], key)
        assert not got
        assert [i.id for i in s.unhanded()] == expected["unhanded"]
        for owner, ids in expected["parked"].items():
            assert [i.id for i in s.unpark(owner)] == ids
    finally:
        s.close()
    # the CLI's read-only view of the migrated store
    assert_read_only_lists_every_incident(state, expected)


def assert_read_only_lists_every_incident(state, expected):
    """The CLI's read-only view of the store lists every incident of the release."""
    ro = Store(str(state), readonly=True)
    try:
        assert sorted(r["id"] for r in ro.list()) == sorted(i["id"] for i in expected["incidents"])
    finally:
        ro.close()


def test_store_of_a_release_is_read_before_syslog_ng_migrates_it(release):
    """A package upgraded while syslog-ng is stopped: the CLI reads the old store as
    it is (every incident) and leaves its version alone."""
    expected, state = release
    def version():
        db = sqlite3.connect(str(state / "incidents.sqlite"))
        try:
            return db.execute("PRAGMA user_version").fetchone()[0]
        finally:
            db.close()
    old_version = version()
    assert_read_only_lists_every_incident(state, expected)
    assert version() == old_version


def test_outbox_of_a_release_keeps_waiting_alerts(release):
    expected, state = release
    assert expected["outbox_schema"] <= OUTBOX_SCHEMA_VERSION
    ob = Outbox(str(state / "outbox.db"))
    try:
        assert ob._db().execute("PRAGMA user_version").fetchone()[0] == OUTBOX_SCHEMA_VERSION
        assert [list(r) for r in ob.rows()] == expected["outbox_rows"]
        waiting = [r for r in expected["outbox_rows"] if r[2] == "pending"]
        assert waiting
        # the waiting one is due again and its payload is an Alert of this release
        row = ob.claim(WEBHOOK, now=waiting[0][4] + 1, lease=30)
        assert row is not None and row[0] == waiting[0][0]
        alert = model.Alert.from_json(row[1])
        want = expected["alerts"][row[0]]
        assert (alert.id, alert.title, alert.host, alert.labels) == (
            want["id"], want["title"], want["host"], want["labels"])
        ob.mark_sent(row[0], WEBHOOK, waiting[0][4] + 2)
        assert ob.claim(WEBHOOK, now=waiting[0][4] + 3, lease=30) is None
        assert ob.kv_get("policy") == {"release": expected["release"]}
    finally:
        ob.close()


def test_pending_records_of_a_release_are_restored(release):
    expected, state = release
    path = state / "source-6666.pending.jsonl"
    wall_offset = 1000.0
    got = persist.take_saved(str(path), True, wall_offset)
    assert not path.exists()
    assert len(got) == len(expected["pending"]) >= 2
    for (rec, detected), want in zip(got, expected["pending"]):
        assert rec.text == want["text"] and rec.host == want["host"]
        assert rec.recv_time == pytest.approx(want["recv_time"] - wall_offset)
        assert detected == want["_detected"]
    # the held record the detector had seen, then the cut line it had not
    assert [d for _, d in got] == [True, False]


def test_journal_of_a_release_is_replayed(release):
    expected, state = release
    assert expected["journal_version"] <= journal.VERSION
    want = expected["journal"]
    records, incidents = journal.load(str(state / "source-6666.journal"), want["wall_offset"])
    assert [t[1] for t, _ in records] == want["records"]
    assert [d["id"] for d in incidents] == want["incidents"]


# ---------------------------------------------------------------- migrations

def test_store_migrates_from_every_schema_version(tmp_path):
    """Each step from an empty file (0) and from every intermediate version, with an
    incident stored at that version kept."""
    for start in range(0, STORE_SCHEMA_VERSION):
        d = tmp_path / ("v%d" % start)
        d.mkdir()
        db = sqlite3.connect(str(d / store_mod.DB_NAME), isolation_level=None)
        for step in range(1, start + 1):
            for stmt in store_mod._MIGRATIONS[step]:
                db.execute(stmt)
        db.execute("PRAGMA user_version=%d" % start)
        if start >= 1:
            db.execute("INSERT INTO incidents (id, host, type, title, signature, stored_at, data)"
                       " VALUES ('old1', '10.0.0.1', 'BUG', 't', 's', 1.0, '{}')")
        db.close()
        s = Store(str(d))
        try:
            assert s._db.execute("PRAGMA user_version").fetchone()[0] == STORE_SCHEMA_VERSION
            ids = [r[0] for r in s._db.execute("SELECT id FROM incidents")]
            assert ids == (["old1"] if start >= 1 else [])
        finally:
            s.close()


def test_outbox_migrates_from_an_empty_file(tmp_path):
    path = tmp_path / "outbox.db"
    sqlite3.connect(str(path)).close()
    ob = Outbox(str(path))
    try:
        assert ob._db().execute("PRAGMA user_version").fetchone()[0] == OUTBOX_SCHEMA_VERSION
        assert ob.rows() == []
    finally:
        ob.close()


# ---------------------------------------------------------------- newer releases

def _bump(path, version):
    db = sqlite3.connect(str(path), isolation_level=None)
    db.execute("PRAGMA user_version=%d" % version)
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return path.read_bytes()


def test_store_of_a_newer_release_is_refused_untouched(release):
    _, state = release
    db = state / store_mod.DB_NAME
    before = _bump(db, STORE_SCHEMA_VERSION + 1)
    for readonly in (False, True):
        with pytest.raises(StoreError) as e:
            Store(str(state), readonly=readonly)
        msg = str(e.value)
        assert "schema version %d" % (STORE_SCHEMA_VERSION + 1) in msg
        assert "newer release" in msg and "left untouched" in msg
    assert db.read_bytes() == before


def test_outbox_of_a_newer_release_is_refused_untouched(release):
    _, state = release
    path = state / "outbox.db"
    before = _bump(path, OUTBOX_SCHEMA_VERSION + 1)
    with pytest.raises(OutboxError) as e:
        Outbox(str(path))
    assert "schema version %d" % (OUTBOX_SCHEMA_VERSION + 1) in str(e.value)
    assert "newer release" in str(e.value)
    assert path.read_bytes() == before


def test_journal_of_a_newer_release_is_kept_aside(release):
    _, state = release
    path = state / "source-6666.journal"
    data = path.read_bytes()
    end = protocol.HEADER.size + protocol.HEADER.unpack_from(data)[0]
    head = marshal.loads(data[protocol.HEADER.size:end])
    assert head[0] == "h"
    newer = protocol.frame(("h", journal.VERSION + 1, head[2]))
    path.write_bytes(newer + data[end:])
    with pytest.raises(ValueError) as e:
        journal.load(str(path), 0.0)
    assert "newer release" in str(e.value)
    bad = state / "source-6666.journal.bad"
    assert not path.exists() and bad.read_bytes().startswith(newer)
