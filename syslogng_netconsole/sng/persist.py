"""The source's files in its state_dir: records saved at a stop for the next start
(``source-<port>.pending.jsonl``) and the counters (``source-<port>.json``, read by
people, tests and the kernel tier).

deinit() cannot tell a reload from a stop. So it saves what a stop would lose; the
next instance deletes the file when it takes the live state over (reload), or posts
the saved records (restart). Records carry monotonic times in memory and wall-clock
times on disk: `wall_offset` = time.time() - time.monotonic() converts.

No syslogng import; functions raise OSError/ValueError, the caller counts and logs.
"""

import copy
import dataclasses
import json
import os
from typing import List, Optional, Tuple

from .. import __version__, jsonfiles
from ..ingest.records import Record


def pending_path(state_dir: str, port: int) -> Optional[str]:
    return os.path.join(state_dir, "source-%d.pending.jsonl" % port) if state_dir else None


def save_pending(path: str, held, core, now: float, wall_offset: float) -> None:
    """Save what a stop would lose: the `held` records (the detector has seen them:
    `_detected`), then the pieces the `core` (a Reassembler) still holds, as the
    incomplete records they would become. The live state is left untouched (a
    reload keeps it)."""
    core = copy.deepcopy(core)
    core.flush(now)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    docs = [_to_json(rec, wall_offset, True) for rec in held]
    docs += [_to_json(rec, wall_offset, False) for rec in core.records()]
    jsonfiles.write_lines_atomic(path, docs)


def _to_json(rec: Record, wall_offset: float, detected: bool) -> dict:
    d = dataclasses.asdict(rec)
    d["recv_time"] = rec.recv_time + wall_offset if rec.recv_time else 0.0
    d["_detected"] = detected
    return d


def take_json_lines(path: Optional[str], fresh: bool) -> List[dict]:
    """The objects a stop saved in `path` (one JSON object per line), and the file
    removed. fresh=False (a reload took the live state over, which still has them):
    [] and the file removed. A file that cannot be read is renamed to <path>.bad
    (kept for a person, never retried) and the error raised."""
    if not path or not os.path.exists(path):
        return []
    try:
        docs = []
        if fresh:
            with open(path) as f:
                docs = [json.loads(line) for line in f]
        os.unlink(path)
        return docs
    except Exception:
        try:
            os.replace(path, path + ".bad")
        except OSError:
            pass
        raise


def take_saved(path: Optional[str], fresh: bool, wall_offset: float) -> List[Tuple[Record, bool]]:
    """The records saved at the last stop (take_json_lines), on the monotonic clock,
    each with whether the detector had seen it (then its journal has it; files of
    releases before the flag: not seen)."""
    recs = []
    for d in take_json_lines(path, fresh):
        detected = bool(d.pop("_detected", False))
        if d.get("recv_time"):
            d["recv_time"] -= wall_offset
        recs.append((Record(**d), detected))
    return recs


def counters_path(state_dir: str, port: int) -> str:
    return os.path.join(state_dir, "source-%d.json" % port)


def write_counters(state_dir: str, port: int, ips, counters: dict, wall: float) -> None:
    """Rewrite the counters file (OSError raised); `version` names the release that
    runs (after a package upgrade: the new one, once syslog-ng restarted)."""
    os.makedirs(state_dir, exist_ok=True)
    jsonfiles.write_atomic(counters_path(state_dir, port),
                           {"time": wall, "port": port, "ip": list(ips), "counters": counters,
                            "version": __version__},
                           indent=1, sort_keys=True)
