"""``<state_dir>/hosts.sqlite``: the per-host facts of fleet.py, kept across restarts
and read by the CLI (``hosts``, ``incidents --by-release``). One row per host (its
facts as JSON) and one per host and release it was seen on. WAL: the collector writes
while the CLI reads; several sources of one collector may share the file. Schema in
``PRAGMA user_version``, migrated forward; a newer one is refused. No clock.
"""

import json
import os
import sqlite3
from typing import Iterable, List

from .. import sqlschema

DB_NAME = "hosts.sqlite"
SCHEMA_VERSION = 1
MAX_ROWS = 10000           # hosts kept; beyond, the least recently heard go
_MIGRATIONS = {
    1: ["CREATE TABLE hosts (host TEXT PRIMARY KEY, last_seen REAL NOT NULL, data TEXT NOT NULL)",
        "CREATE INDEX hosts_last_seen ON hosts(last_seen)",
        """CREATE TABLE host_releases (host TEXT NOT NULL, release TEXT NOT NULL,
               first_seen REAL NOT NULL, last_seen REAL NOT NULL, PRIMARY KEY (host, release))"""],
}


class HostDbError(Exception):
    pass


class HostDb:
    def __init__(self, state_dir: str, readonly: bool = False, timeout: float = 5.0,
                 max_rows: int = MAX_ROWS):
        self.path = os.path.join(state_dir, DB_NAME)
        self.max_rows = max_rows
        try:
            if readonly:
                if not os.path.exists(self.path):
                    raise HostDbError("no host table at %s (the collector writes it once a "
                                      "host has sent something)" % self.path)
                self._db = sqlite3.connect("file:%s?mode=ro" % self.path, uri=True,
                                           timeout=timeout, isolation_level=None,
                                           check_same_thread=False)
                self._check_version(exact=True)
            else:
                os.makedirs(state_dir, exist_ok=True)
                self._db = sqlite3.connect(self.path, timeout=timeout, isolation_level=None,
                                           check_same_thread=False)
                self._db.execute("PRAGMA journal_mode=WAL")
                self._db.execute("PRAGMA synchronous=NORMAL")
                self._migrate()
        except (OSError, sqlite3.Error) as exc:
            raise HostDbError("%s: %s" % (self.path, exc)) from exc

    def _check_version(self, exact: bool) -> int:
        v = sqlschema.version(self._db)
        if v > SCHEMA_VERSION:
            raise HostDbError(sqlschema.newer_message(self.path, v, SCHEMA_VERSION))
        if exact and v != SCHEMA_VERSION:
            raise HostDbError("%s has schema version %d, this program reads %d (the "
                              "collector migrates it when it starts)"
                              % (self.path, v, SCHEMA_VERSION))
        return v

    def _migrate(self) -> None:
        sqlschema.migrate(self._db, _MIGRATIONS, SCHEMA_VERSION, self.path, HostDbError)

    def close(self) -> None:
        try:
            self._db.close()
        except sqlite3.Error:
            pass

    def save(self, rows: Iterable[dict], gone: Iterable[str] = ()) -> int:
        """Upsert these hosts (fleet.HostFacts.to_dict()s), delete the `gone` ones."""
        n = 0
        try:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                for d in rows:
                    self._db.execute("INSERT OR REPLACE INTO hosts VALUES (?, ?, ?)",
                                     (d["host"], d["last_seen"], json.dumps(d)))
                    for rel, first, last in d.get("releases") or ():
                        self._db.execute(
                            "INSERT INTO host_releases VALUES (?, ?, ?, ?) ON CONFLICT "
                            "(host, release) DO UPDATE SET last_seen = max(last_seen, "
                            "excluded.last_seen)", (d["host"], rel, first, last))
                    n += 1
                for host in gone:
                    self._db.execute("DELETE FROM hosts WHERE host = ?", (host,))
                    self._db.execute("DELETE FROM host_releases WHERE host = ?", (host,))
                self._cap()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        except sqlite3.Error as exc:
            raise HostDbError("%s: %s" % (self.path, exc)) from exc
        return n

    def _cap(self) -> None:
        over = self._db.execute("SELECT COUNT(*) FROM hosts").fetchone()[0] - self.max_rows
        if over > 0:
            self._db.execute("DELETE FROM hosts WHERE host IN (SELECT host FROM hosts ORDER BY "
                             "last_seen LIMIT ?)", (over,))
            self._db.execute("DELETE FROM host_releases WHERE host NOT IN (SELECT host FROM hosts)")

    def hosts(self, limit: int = 10 ** 6) -> List[dict]:
        """Every host, least recently heard first."""
        return [json.loads(r[0]) for r in self._read(
            "SELECT data FROM hosts ORDER BY last_seen LIMIT ?", (int(limit),))]

    def releases(self) -> List[dict]:
        """Per release: hosts seen on it, first and last seen."""
        return [{"release": r[0], "hosts": r[1], "first_seen": r[2], "last_seen": r[3]}
                for r in self._read(
                    "SELECT release, COUNT(DISTINCT host), MIN(first_seen), MAX(last_seen) "
                    "FROM host_releases GROUP BY release ORDER BY release")]

    def other_releases(self, release: str) -> int:
        """Releases other than `release` that hosts were seen on."""
        return self._read("SELECT COUNT(DISTINCT release) FROM host_releases WHERE release != ?",
                          (release,))[0][0]

    def _read(self, sql: str, args=()):
        try:
            return self._db.execute(sql, args).fetchall()
        except sqlite3.Error as exc:
            raise HostDbError("%s: %s" % (self.path, exc)) from exc
