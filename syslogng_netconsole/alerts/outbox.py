"""Durable alert outbox: SQLite in the state directory, one row per (alert, channel).

At-least-once across restarts: an alert is written here before anything is sent,
and a delivery row leaves ``pending`` only when its channel confirmed it (``sent``)
or gave up (``dead``, logged). Enqueueing the same alert id again is a no-op, so
receivers see each alert once per channel unless syslog-ng died in the middle of
a request (then the stable id lets them drop the duplicate).

A row being delivered carries a lease (``lease_until``, ``lease_pid``): another
dispatcher of the same process (after a reload) skips it until the lease ends; a
new process ignores leases of other pids (their holder is gone).
One SQLite connection per thread (WAL, busy_timeout). Times are wall-clock
seconds passed in by the caller.
"""

import json
import os
import sqlite3
import threading

from syslogng_netconsole import sqlschema

# version reached -> statements taking the previous version there. Forward only: a
# release adds a step and bumps OUTBOX_SCHEMA_VERSION, never edits a released step
# (tests/unit/test_upgrade_files.py opens the files of earlier releases).
_MIGRATIONS = {
    1: [
        """CREATE TABLE IF NOT EXISTS alerts (
            id TEXT PRIMARY KEY, created_at REAL NOT NULL, payload TEXT NOT NULL)""",
        """CREATE TABLE IF NOT EXISTS deliveries (
            alert_id TEXT NOT NULL, channel TEXT NOT NULL,
            state TEXT NOT NULL DEFAULT 'pending',          -- pending | sent | dead
            attempts INTEGER NOT NULL DEFAULT 0,
            created_at REAL NOT NULL, next_at REAL NOT NULL,
            lease_until REAL, lease_pid INTEGER,
            last_error TEXT, done_at REAL,
            PRIMARY KEY (alert_id, channel))""",
        "CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, state, next_at)",
        "CREATE TABLE IF NOT EXISTS kv (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
    ],
}
OUTBOX_SCHEMA_VERSION = 1     # PRAGMA user_version of outbox.db (migrated up)
FILE_NAME = "outbox.db"


class OutboxError(Exception):
    """The outbox file cannot be used by this release (written by a newer one)."""


def migrate(db, path):
    """Take ``db`` to OUTBOX_SCHEMA_VERSION step by step (sqlschema.py); a database of
    a newer release is refused (OutboxError) and left untouched."""
    sqlschema.migrate(db, _MIGRATIONS, OUTBOX_SCHEMA_VERSION, path, OutboxError)


class Outbox:
    def __init__(self, path, pid=None):
        """``path``: a file, or ":memory:" (a shared in-memory database: the
        degraded mode when the state directory is unusable)."""
        self.path = path
        self.pid = os.getpid() if pid is None else pid
        self._local = threading.local()
        self._all = {}      # thread -> connection
        self._lock = threading.Lock()      # the connection registry
        # one writer at a time inside the process: SQLite's own busy handler sleeps
        # in steps of up to 100 ms, which made concurrent claims take ~0.3 s
        self._wlock = threading.RLock()
        self._uri = None
        if path == ":memory:":
            self._uri = "file:netconsole-outbox-%d?mode=memory&cache=shared" % id(self)
            self._keep = self._connect()     # the in-memory database and its connection
        migrate(self._db(), path)

    def _connect(self):
        if self._uri:
            db = sqlite3.connect(self._uri, uri=True, timeout=5, check_same_thread=False,
                                 isolation_level=None)
        else:
            db = sqlite3.connect(self.path, timeout=5, check_same_thread=False,
                                 isolation_level=None)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
        db.execute("PRAGMA busy_timeout=5000")
        with self._lock:
            self._all.setdefault(threading.current_thread(), []).append(db)
        return db

    def _db(self):
        if self._uri:
            # in memory, one connection for every thread: the shared cache's table
            # locks fail at once ("database table is locked") instead of waiting for
            # busy_timeout, and lost alerts under concurrent submit and delivery;
            # writers still take _wlock, SQLite serializes the rest (threadsafety 3)
            return self._keep
        db = getattr(self._local, "db", None)
        if db is None:
            db = self._local.db = self._connect()
        return db

    def close(self, skip_threads=()):
        """Close every connection except those of ``skip_threads`` (delivery threads
        still inside a request: they close their own with ``close_thread()``)."""
        with self._lock:
            doomed = [t for t in self._all if t not in skip_threads]
            conns = [db for t in doomed for db in self._all.pop(t)]
        for db in conns:
            try:
                db.close()
            except Exception:
                pass

    def close_thread(self):
        with self._lock:
            conns = self._all.pop(threading.current_thread(), [])
        self._local.db = None
        for db in conns:
            try:
                db.close()
            except Exception:
                pass

    # -- writing ---------------------------------------------------------------
    def transaction(self):
        """``with outbox.transaction() as tx:`` groups enqueue()/kv_set() atomically."""
        return _Tx(self._db(), True, self._wlock)

    def enqueue(self, alert, channels, now, tx=None):
        """Store ``alert`` (model.Alert) for each channel id. Returns how many
        delivery rows were new (0 for an alert id already stored)."""
        if tx is None:
            with self.transaction() as tx:
                return self.enqueue(alert, channels, now, tx)
        db = tx.db
        db.execute("INSERT OR IGNORE INTO alerts (id, created_at, payload) VALUES (?,?,?)",
                   (alert.id, now, alert.to_json()))
        n = 0
        for ch in channels:
            cur = db.execute(
                "INSERT OR IGNORE INTO deliveries (alert_id, channel, created_at, next_at)"
                " VALUES (?,?,?,?)", (alert.id, ch, now, now))
            n += cur.rowcount
        return n

    def kv_set(self, key, value, tx=None):
        if tx is None:
            with self.transaction() as tx:
                return self.kv_set(key, value, tx)
        tx.db.execute("INSERT OR REPLACE INTO kv (key, value) VALUES (?,?)",
                      (key, json.dumps(value)))

    def kv_get(self, key, default=None):
        row = self._db().execute("SELECT value FROM kv WHERE key=?", (key,)).fetchone()
        if row is None:
            return default
        try:
            return json.loads(row[0])
        except ValueError:
            return default

    # -- delivering ------------------------------------------------------------
    def claim(self, channel, now, lease):
        """The next due row of ``channel`` -> (alert_id, payload, attempts, created_at)
        with a lease taken, or None."""
        db = self._db()
        with _Tx(db, True, self._wlock):
            row = db.execute(
                "SELECT d.alert_id, a.payload, d.attempts, d.created_at FROM deliveries d"
                " JOIN alerts a ON a.id = d.alert_id"
                " WHERE d.channel=? AND d.state='pending' AND d.next_at<=?"
                " AND (d.lease_until IS NULL OR d.lease_until<=? OR d.lease_pid<>?)"
                " ORDER BY d.next_at, d.created_at LIMIT 1",
                (channel, now, now, self.pid)).fetchone()
            if row is None:
                return None
            db.execute("UPDATE deliveries SET lease_until=?, lease_pid=?"
                       " WHERE alert_id=? AND channel=?",
                       (now + lease, self.pid, row[0], channel))
        return row

    def _finish(self, alert_id, channel, sets, args):
        db = self._db()
        with _Tx(db, True, self._wlock):
            db.execute("UPDATE deliveries SET %s, lease_until=NULL, lease_pid=NULL,"
                       " attempts=attempts+1 WHERE alert_id=? AND channel=?" % sets,
                       tuple(args) + (alert_id, channel))

    def mark_sent(self, alert_id, channel, now):
        self._finish(alert_id, channel, "state='sent', done_at=?, last_error=NULL", [now])

    def mark_retry(self, alert_id, channel, next_at, error):
        self._finish(alert_id, channel, "next_at=?, last_error=?", [next_at, error[:500]])

    def mark_dead(self, alert_id, channel, now, error):
        self._finish(alert_id, channel, "state='dead', done_at=?, last_error=?",
                     [now, error[:500]])

    def next_due(self, channel):
        """Earliest time a pending row of ``channel`` may be tried (None: nothing)."""
        row = self._db().execute(
            "SELECT MIN(CASE WHEN lease_until IS NOT NULL AND lease_pid=? AND lease_until>next_at"
            " THEN lease_until ELSE next_at END) FROM deliveries"
            " WHERE channel=? AND state='pending'", (self.pid, channel)).fetchone()
        return row[0]

    # -- housekeeping and introspection -------------------------------------------
    def prune(self, now, keep=7 * 86400.0):
        db = self._db()
        with _Tx(db, True, self._wlock):
            db.execute("DELETE FROM deliveries WHERE state<>'pending' AND done_at<?",
                       (now - keep,))
            db.execute("DELETE FROM alerts WHERE id NOT IN"
                       " (SELECT alert_id FROM deliveries)")

    def expire_orphans(self, known, now, max_age):
        """Rows of channels no longer configured: kept (the channel may come back)
        until ``max_age``, then dead. Returns how many rows died."""
        marks = ",".join("?" * len(known)) or "''"
        db = self._db()
        with _Tx(db, True, self._wlock):
            cur = db.execute(
                "UPDATE deliveries SET state='dead', done_at=?, last_error='channel no longer"
                " configured' WHERE state='pending' AND created_at<? AND channel NOT IN (%s)"
                % marks, (now, now - max_age) + tuple(known))
            return cur.rowcount

    def counts(self):
        """{channel: {state: n}}"""
        out = {}
        for ch, state, n in self._db().execute(
                "SELECT channel, state, COUNT(*) FROM deliveries GROUP BY channel, state"):
            out.setdefault(ch, {})[state] = n
        return out

    def rows(self, channel=None):
        q = ("SELECT alert_id, channel, state, attempts, next_at, last_error FROM deliveries"
             + (" WHERE channel=?" if channel else "") + " ORDER BY created_at")
        return self._db().execute(q, (channel,) if channel else ()).fetchall()


class _Tx:
    def __init__(self, db, immediate, lock):
        self.db = db
        self.immediate = immediate
        self.lock = lock

    def __enter__(self):
        self.lock.acquire()
        try:
            self.db.execute("BEGIN IMMEDIATE" if self.immediate else "BEGIN")
        except BaseException:
            self.lock.release()
            raise
        return self

    def __exit__(self, et, ev, tb):
        try:
            self.db.execute("COMMIT" if et is None else "ROLLBACK")
        finally:
            self.lock.release()
        return False
