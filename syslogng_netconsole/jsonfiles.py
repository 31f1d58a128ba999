"""The two ways the project writes JSON to disk: replace a whole file atomically
(counters, saved records) and append one line (incidents.jsonl, alerts.jsonl).

Both raise OSError; callers count and log it (rate-limited) their own way.
"""

import json
import os


def write_atomic(path: str, doc, **dump_kw) -> None:
    """Write `doc` as JSON to `path` via a temporary file and rename: a reader never
    sees half a file, a crash leaves the old one."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(doc, f, **dump_kw)
    os.replace(tmp, path)


def write_lines_atomic(path: str, docs) -> None:
    """Write one JSON object per line to `path`, atomically (as write_atomic)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        for doc in docs:
            f.write(json.dumps(doc) + "\n")
    os.replace(tmp, path)


def append_line(path: str, line: str, fsync: bool = False, mode: int = 0o640) -> None:
    """Append one already-rendered line (ending in a newline) with a single write():
    O_APPEND keeps concurrent writers' lines whole."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, line.encode("utf-8"))
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
