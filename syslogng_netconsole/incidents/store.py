"""SQLite incident store in a state directory.

One database file (``incidents.sqlite``) in WAL mode, so the CLI can read while
syslog-ng writes. The schema version is kept in ``PRAGMA user_version`` and
upgraded step by step by ``_MIGRATIONS``. One connection guarded by a lock: the
destination writes from its own thread, tests and the CLI from theirs.

Incidents are keyed by ``Incident.id`` (host, boot, signature, first seq/ts), so
storing the same report twice (a replay, a reload) is a no-op: ``add()`` tells
the caller whether the row is new. Reports still open when syslog-ng stops are
parked in ``pending`` (see sng/dest.py): a restart promotes them, a reload drops them.

No syslog-ng import and no clock reads: times are arguments.
"""

import contextlib
import json
import os
import sqlite3
import threading
from typing import Iterable, List, Optional

from syslogng_netconsole import sqlschema
from syslogng_netconsole.incidents.incident import Incident

DB_NAME = "incidents.sqlite"
STORE_SCHEMA_VERSION = 3      # PRAGMA user_version of incidents.sqlite (migrated up)
# The oldest version a read-only reader (the CLI, metrics) reads as it is, before
# syslog-ng migrated it: the steps since only add (3: a column and an index), and
# readers read the `data` JSON and the first version's columns. A package upgraded
# while syslog-ng is stopped must not make `incidents` fail.
STORE_READABLE_FROM = 2

# Columns copied out of the incident for queries; the whole incident is in `data`.
_COLUMNS = ("id", "host", "boot", "type", "title", "signature", "first_line",
            "corrupted", "truncated", "panicked", "release", "taint",
            "first_seq", "last_seq", "first_ts_us", "last_ts_us",
            "first_time", "last_time", "guilty_file")

# version reached -> statements taking the previous version there. Forward only: a
# release adds a step and bumps STORE_SCHEMA_VERSION, never edits a released step
# (tests/unit/test_upgrade_files.py opens the files of earlier releases).
_MIGRATIONS = {
    1: [
        """CREATE TABLE incidents (
            rowid_ INTEGER PRIMARY KEY AUTOINCREMENT,
            id TEXT NOT NULL UNIQUE,
            host TEXT NOT NULL, boot INTEGER NOT NULL DEFAULT 0,
            type TEXT NOT NULL, title TEXT NOT NULL, signature TEXT NOT NULL,
            first_line TEXT, corrupted INTEGER NOT NULL DEFAULT 0,
            truncated INTEGER NOT NULL DEFAULT 0, panicked INTEGER NOT NULL DEFAULT 0,
            release TEXT, taint TEXT,
            first_seq INTEGER, last_seq INTEGER, first_ts_us INTEGER, last_ts_us INTEGER,
            first_time REAL, last_time REAL,
            stored_at REAL NOT NULL,
            data TEXT NOT NULL)""",
        "CREATE INDEX incidents_host ON incidents(host, stored_at)",
        "CREATE INDEX incidents_signature ON incidents(signature, stored_at)",
        "CREATE INDEX incidents_stored_at ON incidents(stored_at)",
        # open reports parked at deinit, keyed by the destination's persist name
        """CREATE TABLE pending (
            owner TEXT NOT NULL, id TEXT NOT NULL, parked_at REAL NOT NULL,
            data TEXT NOT NULL, PRIMARY KEY (owner, id))""",
    ],
    2: [
        # stored incidents not yet handed to the alerts: a crash between the two
        # (SIGKILL) hands them on at the next start
        "CREATE TABLE handoff (id TEXT PRIMARY KEY)",
    ],
    3: [
        # symbolized reports (issue 14): the guilty file, for queries; the frames'
        # file:line are in `data` (Incident.symbols)
        "ALTER TABLE incidents ADD COLUMN guilty_file TEXT",
        # novelty (seen_before) asks per stored incident whether its signature is
        # known on a release: a storm of one bug must not scan every earlier row
        "CREATE INDEX incidents_signature_release ON incidents(signature, release)",
    ],
}


_SAME_REPORT = ("SELECT 1 FROM incidents WHERE host = ? AND boot = ? AND signature = ?"
                " AND first_ts_us = ? LIMIT 1")


def same_report_key(incident: Incident):
    """Incidents with equal keys are one report seen through two streams of a host (a
    plain and an extended netconsole target); None when it cannot be told."""
    if incident.first_ts_us is None:
        return None
    return (incident.host, incident.boot, incident.signature, incident.first_ts_us)


class StoreError(Exception):
    """The store cannot be opened or written (permissions, disk, corruption)."""


def _newer(path: str, version: int) -> str:
    return sqlschema.newer_message(path, version, STORE_SCHEMA_VERSION)


def incident_from_dict(d: dict) -> Incident:
    """Inverse of Incident.to_dict(), tolerant of unknown and missing keys."""
    names = Incident.__dataclass_fields__.keys()
    return Incident(**{k: v for k, v in d.items() if k in names})


class Store:
    """The incident database of one state directory."""

    def __init__(self, state_dir: str, timeout: float = 5.0, readonly: bool = False):
        """readonly: for readers such as the CLI; never creates nor migrates."""
        self.path = os.path.join(state_dir, DB_NAME)
        self._lock = threading.Lock()
        try:
            if readonly:
                if not os.path.exists(self.path):
                    raise StoreError("no incident store at %s" % self.path)
                self._db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True,
                                           timeout=timeout, check_same_thread=False,
                                           isolation_level=None)
                version = self._db.execute("PRAGMA user_version").fetchone()[0]
                if version > STORE_SCHEMA_VERSION:
                    raise StoreError(_newer(self.path, version))
                if version < STORE_READABLE_FROM:
                    raise StoreError("%s has schema version %d, older than this release's %d:"
                                     " syslog-ng migrates it when it starts with this release"
                                     % (self.path, version, STORE_SCHEMA_VERSION))
            else:
                os.makedirs(state_dir, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=timeout,
                                           check_same_thread=False,
                                           isolation_level=None)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
            self._db.row_factory = sqlite3.Row
        except (OSError, sqlite3.Error) as exc:
            raise StoreError("cannot open %s: %s" % (self.path, exc)) from exc

    def _migrate(self):
        sqlschema.migrate(self._db, _MIGRATIONS, STORE_SCHEMA_VERSION, self.path, StoreError)

    def close(self):
        with self._lock:
            try:
                self._db.close()
            except sqlite3.Error:
                pass

    def _read(self, sql: str, args=()) -> List[sqlite3.Row]:
        with self._lock:
            try:
                return self._db.execute(sql, args).fetchall()
            except sqlite3.Error as exc:
                raise StoreError("%s: %s" % (self.path, exc)) from exc

    # -- incidents ---------------------------------------------------------

    def add(self, incident: Incident, stored_at: float) -> bool:
        """Store one incident; False when it is already there: the same id (a replay,
        a reload), or the same report seen through another stream of the host (a
        plain and an extended netconsole target: same host, boot, signature and
        kernel timestamp of the first line)."""
        d = incident.to_dict()
        values = [d[c] for c in _COLUMNS]
        for i, c in enumerate(_COLUMNS):
            if isinstance(values[i], bool):
                values[i] = int(values[i])
        sql = ("INSERT OR IGNORE INTO incidents (%s, stored_at, data) VALUES (%s)"
               % (", ".join(_COLUMNS), ", ".join("?" * (len(_COLUMNS) + 2))))
        key = same_report_key(incident)
        with self._transaction() as db:
            if key is not None and db.execute(_SAME_REPORT, key).fetchone():
                return False
            if db.execute(sql, values + [stored_at, json.dumps(d)]).rowcount != 1:
                return False
            db.execute("INSERT OR IGNORE INTO handoff VALUES (?)", (d["id"],))
            return True

    def set_symbols(self, incident_id: str, symbols: dict, guilty_file: Optional[str],
                    subsystem: Optional[dict] = None) -> bool:
        """Add the symbolizer's result to a stored incident; False if it is not
        (or no longer) stored."""
        return self.set_symbols_many([(incident_id, symbols, guilty_file, subsystem)]) == 1

    def set_symbols_many(self, results: Iterable[tuple]) -> int:
        """set_symbols() for many (id, symbols, guilty_file, subsystem), in one
        transaction (a storm symbolizes hundreds at once); how many were stored."""
        n = 0
        with self._transaction() as db:
            for incident_id, symbols, guilty_file, subsystem in results:
                row = db.execute("SELECT data FROM incidents WHERE id = ?",
                                 (incident_id,)).fetchone()
                if row is None:
                    continue
                d = json.loads(row[0])
                d["symbols"], d["guilty_file"], d["subsystem"] = symbols, guilty_file, \
                    subsystem or {}
                db.execute("UPDATE incidents SET data = ?, guilty_file = ? WHERE id = ?",
                           (json.dumps(d), guilty_file, incident_id))
                n += 1
        return n

    def prune(self, before: float) -> int:
        """Delete the incidents stored before wall time `before`; how many."""
        with self._transaction() as db:
            n = db.execute("DELETE FROM incidents WHERE stored_at < ?", (before,)).rowcount
            db.execute("DELETE FROM handoff WHERE id NOT IN (SELECT id FROM incidents)")
        return n

    def summary(self) -> dict:
        """What the store holds: counts, the oldest and newest, the file's size."""
        row = self._read("SELECT COUNT(*), COUNT(DISTINCT host), COUNT(DISTINCT signature),"
                         " MIN(stored_at), MAX(stored_at) FROM incidents")[0]
        waiting = self._read("SELECT COUNT(*) FROM handoff")[0][0]
        size = sum(os.path.getsize(self.path + ext) for ext in ("", "-wal")
                   if os.path.exists(self.path + ext))
        return {"path": self.path, "incidents": row[0], "hosts": row[1], "signatures": row[2],
                "oldest": row[3], "newest": row[4], "alerts_waiting": waiting, "bytes": size}

    def handed(self, incident_id: str) -> None:
        """The incident reached the alerts (or there are none): no hand-off at restart."""
        self.handed_many([incident_id])

    def handed_many(self, incident_ids: Iterable[str]) -> None:
        """handed() for many, in one transaction."""
        with self._transaction() as db:
            db.executemany("DELETE FROM handoff WHERE id = ?", [(i,) for i in incident_ids])

    def unhanded(self) -> List[Incident]:
        """Stored incidents whose hand-off to the alerts never finished, oldest first."""
        rows = self._read("SELECT i.data FROM handoff h JOIN incidents i ON i.id = h.id"
                          " ORDER BY i.rowid_")
        return [incident_from_dict(json.loads(r[0])) for r in rows]

    def known(self, incidents: Iterable[dict], key_checks: int = 500) -> set:
        """The ids of these incidents (Incident.to_dict()s) the store already holds,
        by id or as the same report through another stream of the host (add())."""
        docs = list(incidents)
        out = set()
        for i in range(0, len(docs), 500):     # one query per 500 ids
            ids = [d["id"] for d in docs[i:i + 500]]
            out.update(r[0] for r in self._read(
                "SELECT id FROM incidents WHERE id IN (%s)" % ",".join("?" * len(ids)), ids))
        # by report key: one query each, so at most `key_checks` per call (the caller
        # asks again later; a store that never holds them must not stall it)
        for d in [d for d in docs if d["id"] not in out][:key_checks]:
            key = same_report_key(incident_from_dict(d))
            if key is not None and self._read(_SAME_REPORT, key):
                out.add(d["id"])
        return out

    def count(self) -> int:
        return self._read("SELECT COUNT(*) FROM incidents")[0][0]

    def get(self, incident_id: str) -> Optional[dict]:
        rows = self._read("SELECT data, stored_at FROM incidents WHERE id = ?", (incident_id,))
        return _row_dict(rows[0]) if rows else None

    def list(self, host: Optional[str] = None, signature: Optional[str] = None,
             since: Optional[float] = None, limit: int = 100) -> List[dict]:
        """Incidents, newest first, as Incident.to_dict() plus ``stored_at``; `host` is
        an address or the host's own name."""
        where, args = [], []
        if host is not None:
            where.append("(host = ? OR json_extract(data, '$.hostname') = ?)")
            args += [host, host]
        for cond, value in (("signature = ?", signature), ("stored_at >= ?", since)):
            if value is not None:
                where.append(cond)
                args.append(value)
        sql = "SELECT data, stored_at FROM incidents"
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY stored_at DESC, rowid_ DESC LIMIT ?"
        return [_row_dict(r) for r in self._read(sql, args + [int(limit)])]

    def signatures(self, since: Optional[float] = None) -> List[dict]:
        """One row per signature: title, type, incident and host counts, first/last
        seen, the releases it was seen on (sorted)."""
        sql = ("SELECT signature, MIN(title) AS title, MIN(type) AS type, COUNT(*) AS incidents,"
               " COUNT(DISTINCT host) AS hosts, MIN(stored_at) AS first_seen,"
               " MAX(stored_at) AS last_seen, GROUP_CONCAT(DISTINCT release) AS releases"
               " FROM incidents")
        sql, args = _since(sql, since)
        sql += " GROUP BY signature ORDER BY last_seen DESC"
        rows = [dict(r) for r in self._read(sql, args)]
        for r in rows:
            r["releases"] = sorted((r["releases"] or "").split(",")) if r["releases"] else []
        return rows

    def releases(self, since: Optional[float] = None) -> List[dict]:
        """One row per kernel release ("" = unknown): incidents, distinct signatures,
        crashing hosts."""
        sql, args = _since("SELECT coalesce(release, '') AS release, COUNT(*) AS incidents,"
                           " COUNT(DISTINCT signature) AS signatures,"
                           " COUNT(DISTINCT host) AS crashing_hosts FROM incidents", since)
        return [dict(r) for r in self._read(sql + " GROUP BY 1 ORDER BY 1", args)]

    def type_counts(self) -> List[tuple]:
        """(type, panicked, title, incidents) groups, for the metrics' severities."""
        return [tuple(r) for r in self._read("SELECT type, panicked, title, COUNT(*) FROM"
                                             " incidents GROUP BY 1, 2, 3")]

    def seen_before(self, signature: str, release: Optional[str]) -> dict:
        """Whether the store holds `signature` (1 or 0): on any release, on
        `release`, on another known release. EXISTS, not COUNT: a storm stores a
        thousand incidents of one signature and asks this for each."""
        r = self._read("SELECT EXISTS(SELECT 1 FROM incidents WHERE signature = ?),"
                       " EXISTS(SELECT 1 FROM incidents WHERE signature = ? AND release = ?),"
                       " EXISTS(SELECT 1 FROM incidents WHERE signature = ?"
                       " AND release IS NOT NULL AND release != ?)",
                       (signature, signature, release or "", signature, release or ""))[0]
        return {"any": r[0], "this_release": r[1], "other_releases": r[2]}

    def other_releases(self, release: str) -> int:
        """Known releases other than `release` among all incidents."""
        return self._read("SELECT COUNT(DISTINCT release) FROM incidents"
                          " WHERE release IS NOT NULL AND release != ?", (release,))[0][0]

    # -- reports open at shutdown -------------------------------------------

    @contextlib.contextmanager
    def _transaction(self):
        """One write transaction under the lock; sqlite errors become StoreError."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except sqlite3.Error as exc:
                try:
                    self._db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
                raise StoreError("%s: %s" % (self.path, exc)) from exc

    def park(self, owner: str, incidents: Iterable[Incident], parked_at: float) -> int:
        """Replace ``owner``'s parked reports with these (snapshots of open reports)."""
        rows = [(owner, i.id, parked_at, json.dumps(i.to_dict())) for i in incidents]
        with self._transaction() as db:
            db.execute("DELETE FROM pending WHERE owner = ?", (owner,))
            db.executemany("INSERT OR REPLACE INTO pending VALUES (?, ?, ?, ?)", rows)
        return len(rows)

    def unpark(self, owner: str) -> List[Incident]:
        """Take ``owner``'s parked reports out of the store (each returned once)."""
        with self._transaction() as db:
            rows = db.execute("SELECT data FROM pending WHERE owner = ?", (owner,)).fetchall()
            db.execute("DELETE FROM pending WHERE owner = ?", (owner,))
        out = []
        for r in rows:
            try:
                out.append(incident_from_dict(json.loads(r[0])))
            except (ValueError, TypeError):
                continue
        return out


def _since(sql: str, since: Optional[float]):
    return (sql + " WHERE stored_at >= ?", [since]) if since is not None else (sql, [])


def _row_dict(row) -> dict:
    d = json.loads(row["data"])
    d["stored_at"] = row["stored_at"]
    return d


def read_incidents(state_dir: str, host: Optional[str] = None, limit: int = 10 ** 6) -> List[dict]:
    """The stored incidents, oldest first, read-only; [] while there is no store (yet)."""
    try:
        store = Store(str(state_dir), readonly=True)
    except StoreError:
        return []
    try:
        return store.list(host=host, limit=limit)[::-1]
    except StoreError:
        return []
    finally:
        store.close()
