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

With a worker (detect_worker.py, the drop-in's default on a machine with more than
one core) the detector runs in a child process and only the records go there.

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
from .detect_worker import WorkerEngine
from .persist import take_json_lines

# the same bounds as the incidents destination's defaults (scl/netconsole.conf)
MAX_STREAMS = 10000
MAX_OPEN = 1000
IDLE = 600.0
EVICT_EVERY = 30.0
MAX_QUEUED = 10000        # finished incidents waiting while syslog-ng suspends us


class SourceDetector:
    """The pool of one endpoint (in the source, or in a worker process) and its
    finished incidents not yet posted. `log(level, text)` tells worker trouble."""

    def __init__(self, worker: bool = False, log=None, now: float = 0.0):
        self.counters = collections.Counter()
        self.pool = DetectorPool(MAX_STREAMS, MAX_OPEN, IDLE, counters=self.counters)
        self.out = collections.deque()      # Incidents, wall-clock times
        self.last_evict = 0.0
        self.worker = None
        if worker:
            w = WorkerEngine(self.counters, log or (lambda level, text: None))
            try:
                w.start(now)
                self.worker = w
            except OSError as e:            # detection goes on here, on this core
                self.counters["worker_start_errors"] += 1
                if log is not None:
                    log("warning", "cannot start the detection worker (%s); crash "
                        "detection runs in the source" % (e,))

    @classmethod
    def create(cls, worker, log, now: float) -> "SourceDetector":
        """worker: True, False or "auto" (a worker when there are two cores or more)."""
        if worker == "auto":
            worker = (os.cpu_count() or 1) > 1
        return cls(worker, log, now)

    def feed(self, rec, now: float) -> None:
        (self.worker or self.pool).feed(rec, now)

    def next_deadline(self) -> Optional[float]:
        # a worker runs its own timers; its answers wake the loop through fds()
        return None if self.worker else self.pool.next_deadline()

    def fds(self):
        return self.worker.fds() if self.worker else ()

    def backlogged(self) -> bool:
        return self.worker is not None and self.worker.backlogged()

    def run(self, now: float, wall_offset: float) -> None:
        """Due report timeouts, the idle sweep, then collect what finished."""
        if self.worker is not None:
            self.out.extend(self.worker.run(now, wall_offset))
        else:
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

    def has_state(self) -> bool:
        if self.worker is not None:
            return bool(self.worker.kept or self.out)
        return bool(self.pool.open_reports or self.out)

    def counters_snapshot(self) -> dict:
        counters = dict(self.counters)
        if self.worker is not None:
            counters.update(self.worker.remote_counters())
            gauges = self.worker.gauges()
        else:
            gauges = {"streams": self.pool.streams, "open_reports": self.pool.open_reports}
        out = {"detect." + k: v for k, v in sorted(counters.items())}
        out.update(("detect." + k, v) for k, v in gauges.items())
        out["detect.queued_incidents"] = len(self.out)
        return out

    def close(self) -> None:
        if self.worker is not None:
            self.worker.close()

    # -- stop and start ---------------------------------------------------------------

    def save(self, path: str, now: float, wall_offset: float) -> int:
        """Save the open reports and the unposted incidents; the live state stays
        (a reload keeps it). Returns how many were saved."""
        pool = self.worker.open_pool(now) if self.worker is not None else self.pool
        found, _errors = pool.snapshot(now, wall_offset)
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
