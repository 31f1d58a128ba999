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


MAX_LINES_BYTES = 100 << 20     # a JSON-lines file is rotated to <path>.1 beyond this


def append_line(path: str, line: str, fsync: bool = False, mode: int = 0o640,
                max_bytes: int = MAX_LINES_BYTES) -> None:
    """Append one already-rendered line (ending in a newline) with a single write():
    O_APPEND keeps concurrent writers' lines whole. A file that would grow beyond
    `max_bytes` (0: no limit) is first renamed to <path>.1 (the one before is gone)."""
    if max_bytes:
        try:
            if os.path.getsize(path) + len(line) > max_bytes:
                os.replace(path, path + ".1")
        except FileNotFoundError:
            pass
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
    try:
        os.write(fd, line.encode("utf-8"))
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
