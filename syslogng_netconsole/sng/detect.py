"""Crash detection where the records already are: inside the netconsole() source.

With ``detect("yes")`` (the drop-in sets it) the source feeds every record it posts
to a DetectorPool kept on its endpoint, so a reload continues open reports, and
posts each finished incident as one more message, marked by the
``.netconsole.incident`` pair (the Incident as JSON, sng/messages.py). The drop-in
routes only those messages to ``netconsole_incidents()``, which stores and alerts.
Why: a Python destination costs one interpreter-lock hand-over between syslog-ng's
destination thread and the source's thread per message; run once per record it was
the largest cost of a crash storm (docs/design.md, "Storm"). Native destinations
can take the incident messages too (Kafka, Elasticsearch ...).

At deinit the open reports (finished on copies) and the incidents not yet posted
are saved to ``<state_dir>/source-<port>.reports.jsonl``; a restart posts them (the
open ones flagged truncated), a reload drops the file and goes on live.

No syslogng import; time is an argument (monotonic seconds, wall_offset converts).
"""

import collections
import os
from typing import List, Optional

from .. import jsonfiles
from ..incidents.incident import Incident
from ..incidents.store import incident_from_dict
from ..reports.pool import DetectorPool
from .persist import take_json_lines

# the same bounds as the incidents destination's defaults (scl/netconsole.conf)
MAX_STREAMS = 10000
MAX_OPEN = 1000
IDLE = 600.0
EVICT_EVERY = 30.0
MAX_QUEUED = 10000        # finished incidents waiting while syslog-ng suspends us


class SourceDetector:
    """The pool of one endpoint and its finished incidents not yet posted."""

    def __init__(self):
        self.counters = collections.Counter()
        self.pool = DetectorPool(MAX_STREAMS, MAX_OPEN, IDLE, counters=self.counters)
        self.out = collections.deque()      # Incidents, wall-clock times
        self.last_evict = 0.0

    def feed(self, rec, now: float) -> None:
        self.pool.feed(rec, now)

    def next_deadline(self) -> Optional[float]:
        return self.pool.next_deadline()

    def run(self, now: float, wall_offset: float) -> None:
        """Due report timeouts, the idle sweep, then collect what finished."""
        deadline = self.pool.next_deadline()
        if deadline is not None and deadline <= now:
            self.pool.expire(now)
        if now - self.last_evict >= EVICT_EVERY:
            self.last_evict = now
            self.pool.evict_idle(now)
        self.out.extend(self.pool.drain(wall_offset))
        while len(self.out) > MAX_QUEUED:   # syslog-ng took nothing for very long
            self.out.popleft()
            self.counters["dropped_incidents"] += 1

    def counters_snapshot(self) -> dict:
        out = {"detect." + k: v for k, v in sorted(self.counters.items())}
        out["detect.streams"] = self.pool.streams
        out["detect.open_reports"] = self.pool.open_reports
        out["detect.queued_incidents"] = len(self.out)
        return out

    # -- stop and start ---------------------------------------------------------------

    def save(self, path: str, now: float, wall_offset: float) -> int:
        """Save the open reports and the unposted incidents; the live state stays
        (a reload keeps it). Returns how many were saved."""
        found, _errors = self.pool.snapshot(now, wall_offset)
        rows = [dict(inc.to_dict(), _open=False) for inc in self.out]
        rows += [dict(inc.to_dict(), _open=True) for inc in found]
        os.makedirs(os.path.dirname(path), exist_ok=True)
        jsonfiles.write_lines_atomic(path, rows)
        return len(rows)

    @staticmethod
    def take_saved(path: Optional[str], fresh: bool) -> List[Incident]:
        """What the last stop saved, and the file removed (persist.take_json_lines: a
        reload gets [], an unreadable file is kept aside). Open reports come back
        flagged truncated."""
        out = []
        for d in take_json_lines(path, fresh):
            inc = incident_from_dict(d)
            inc.truncated = inc.truncated or bool(d.get("_open"))
            out.append(inc)
        return out


def reports_path(state_dir: str, port: int) -> Optional[str]:
    return os.path.join(state_dir, "source-%d.reports.jsonl" % port) if state_dir else None
