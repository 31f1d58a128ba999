"""Forward-only schema migrations of the project's SQLite files (the store, the
outbox, the host table): the version is ``PRAGMA user_version``; each step runs in a
write transaction of its own and is re-checked under the lock (another process may
have migrated meanwhile); a file of a newer release is refused and left untouched."""

from typing import Dict, List


def version(db) -> int:
    return db.execute("PRAGMA user_version").fetchone()[0]


def newer_message(path: str, found: int, latest: int) -> str:
    return ("%s has schema version %d, written by a newer release of syslogng-netconsole "
            "(this one knows up to %d); it is left untouched" % (path, found, latest))


def migrate(db, migrations: Dict[int, List[str]], latest: int, path: str, error) -> None:
    """Take `db` (autocommit: isolation_level=None) up to `latest`; raises `error`
    (an exception class) with newer_message() for a newer file."""
    found = version(db)
    if found > latest:
        raise error(newer_message(path, found, latest))
    for target in range(found + 1, latest + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            if version(db) < target:
                for stmt in migrations[target]:
                    db.execute(stmt)
                db.execute("PRAGMA user_version=%d" % target)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
