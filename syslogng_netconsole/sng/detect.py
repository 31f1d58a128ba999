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

With a state_dir, every record handed to the detector and every finished incident
goes to a journal (journal.py; with journal("no") it is written at deinit only, as
before the journal) until it is no longer needed: the records until their
stream has no open report, the incidents until the store holds them (checked in the
store every CONFIRM_EVERY seconds). A fresh start, after a stop or a SIGKILL,
replays it: the open reports reopen (and continue if their host goes on; one that
times out without its end is flagged truncated) and the incidents are posted again
(the store keeps each once, by id). A reload keeps the live state and the journal.

No syslogng import; time is an argument (monotonic seconds, wall_offset converts).
"""

import collections
import os
from typing import List, Optional, Tuple

from ..incidents.incident import Incident
from ..incidents.store import Store, StoreError, incident_from_dict
from ..reports.pool import DetectorPool
from ..worker import protocol
from . import journal as _journal
from .detect_worker import WorkerEngine
from .kept import KeptRecords
from .persist import take_json_lines

# the same bounds as the incidents destination's defaults (scl/netconsole.conf)
MAX_STREAMS = 10000
MAX_OPEN = 1000
IDLE = 600.0
EVICT_EVERY = 30.0
MAX_QUEUED = 10000        # finished incidents waiting while syslog-ng's window is full
CONFIRM_EVERY = 2.0       # seconds between two looks in the store for posted incidents
UNCONFIRMED_AGE = 86400.0  # a posted incident the store never shows is forgotten then
JOURNAL_RETRY = 5          # seconds between two attempts to rewrite a journal that failed


class SourceDetector:
    """The pool of one endpoint (in the source, or in a worker process) and its
    finished incidents not yet posted. `log(level, text)` tells worker trouble."""

    def __init__(self, worker: bool = False, log=None, now: float = 0.0):
        self.counters = collections.Counter()
        self.pool = DetectorPool(MAX_STREAMS, MAX_OPEN, IDLE, counters=self.counters)
        self.out = collections.deque()      # Incidents, wall-clock times
        self.last_evict = 0.0
        self.log = log or (lambda level, text: None)
        self.worker = None
        self.journal = None             # journal.Journal, once open_journal() ran
        self.continuous = True          # False (journal("no")): written at deinit only
        self.store_dir = None           # where the store is that confirms incidents
        self.unconfirmed = collections.OrderedDict()   # incident id -> dict (journaled)
        self.last_confirm = 0.0
        self.last_size_check = 0.0
        self.journal_retry_at = 0.0     # a journal that failed is rewritten again then
        self.journal_log_at = 0.0       # ... and said so in the log at most this often
        self.idx = 0                    # without a worker: what KeptRecords numbers
        self.batch = []                 # ... and the records not journaled yet
        self.tracker = protocol.Tracker(self.pool)
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
        self.kept = self.worker.kept if self.worker else KeptRecords(self.counters)

    @classmethod
    def create(cls, worker, log, now: float) -> "SourceDetector":
        """worker: True, False or "auto" (a worker when there are two cores or more)."""
        if worker == "auto":
            worker = (os.cpu_count() or 1) > 1
        return cls(worker, log, now)

    def feed(self, rec, now: float) -> None:
        if self.worker is not None:
            self.worker.feed(rec, now)
            return
        self.pool.feed(rec, now)
        if self.journal is not None:    # what the worker engine keeps, kept here
            self.idx += 1
            item = (self.idx, protocol.rec_tuple(rec), now)
            self.batch.append(item)
            self.kept.keep(rec.stream, item, self.tracker)

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
            found = self.worker.run(now, wall_offset)
        else:
            if self.batch:
                if self.continuous:
                    self.journal.write(protocol.frame(("r", self.batch)))
                self.batch = []
            deadline = self.pool.next_deadline()
            if deadline is not None and deadline <= now:
                self.pool.expire(now)
            if now - self.last_evict >= EVICT_EVERY:
                self.last_evict = now
                self.pool.evict_idle(now)
            if self.journal is not None:
                acks = {}
                self.tracker.ended(acks)
                self.kept.trim_all(acks)
            found = self.pool.drain(wall_offset)
        if found and self.journal is not None:
            docs = [inc.to_dict() for inc in found]
            self.unconfirmed.update((d["id"], d) for d in docs)
            while len(self.unconfirmed) > MAX_QUEUED:   # a store that never shows them
                self.unconfirmed.popitem(last=False)
                self.counters["unconfirmed_dropped"] += 1
            if self.continuous:
                self.journal.incidents(docs)
        self.out.extend(found)
        while len(self.out) > MAX_QUEUED:   # syslog-ng took nothing for very long
            self.out.popleft()
            self.counters["dropped_incidents"] += 1
        if self.journal is not None:
            self._maintain(now, wall_offset)

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

    # -- the journal (journal.py) ----------------------------------------------------

    def open_journal(self, path: str, store_dir: str, fresh: bool, now: float,
                     wall_offset: float, continuous: bool = True) -> Tuple[int, int]:
        """Journal from now on to `path`; on a fresh start first replay what it holds.
        Returns (records, incidents) replayed. Raises OSError/ValueError (a bad
        file is kept as <path>.bad and a new journal started by the caller's retry;
        a journal that cannot be written stays, closed, and is rewritten later)."""
        self.journal = _journal.Journal(path)      # feed() keeps records from here on
        self.store_dir = store_dir
        self.continuous = continuous
        records, docs = _journal.load(path, wall_offset) if fresh else ([], [])
        if records:
            records, found = needed(records, wall_offset)
            docs += [inc.to_dict() for inc in found]
        for t, t_now in records:
            self.feed(protocol.record(t), t_now)
        if records:
            (self.worker or self.pool).mark_restored()
        for d in docs:
            if d.get("id") and d["id"] not in self.unconfirmed:
                self.unconfirmed[d["id"]] = d
                self.out.append(incident_from_dict(d))
        self.batch = []                 # in the rewrite below
        if self.worker is not None and continuous:
            self.worker.journal = self.journal
        self.journal.rewrite(self.kept.in_order(), list(self.unconfirmed.values()),
                             wall_offset, now)
        return len(records), len(docs)

    def checkpoint(self, now: float, wall_offset: float) -> None:
        """At deinit: everything fed so far on disk, compacted (stop or reload alike)."""
        if self.journal is None:
            return
        self.run(now, wall_offset)
        self._rewrite(now, wall_offset)

    def _maintain(self, now: float, wall_offset: float) -> None:
        j = self.journal
        try:
            confirmed = 0
            if self.unconfirmed and now - self.last_confirm >= CONFIRM_EVERY:
                self.last_confirm = now
                confirmed = self._confirm(now + wall_offset)
            if not self.continuous:
                return
            # a small journal is rewritten as soon as the store has its incidents (a
            # restart posts nothing twice); a large one when it has grown
            if j.fd is None:
                if now >= self.journal_retry_at:
                    self._rewrite(now, wall_offset)
            elif confirmed and self._live_bytes() < _journal.COMPACT_MIN // 8:
                self._rewrite(now, wall_offset)
            elif now - self.last_size_check >= 0.5:     # _live_bytes() walks every stream
                self.last_size_check = now
                if j.grown(self._live_bytes, now):
                    self._rewrite(now, wall_offset)
            j.sync(now)
        except OSError as e:
            j.error = e
            j.close()
        if j.fd is None and j.error is not None:
            self.counters["journal_errors"] += 1
            self.journal_retry_at = now + JOURNAL_RETRY
            if now >= self.journal_log_at:
                self.journal_log_at = now + 60.0
                self.log("warning", "cannot write the crash report journal %s: %s; retrying "
                         "every %ds (open reports are lost if syslog-ng is killed meanwhile)"
                         % (j.path, j.error, JOURNAL_RETRY))
            j.error = None

    def _rewrite(self, now: float, wall_offset: float) -> None:
        self.journal.rewrite(self.kept.in_order(), list(self.unconfirmed.values()),
                             wall_offset, now)
        self.counters["journal_rewrites"] += 1

    def _live_bytes(self) -> int:
        return 2 * self.kept.text_bytes() + 100 * self.kept.count() + 2048 * len(self.unconfirmed)

    def _confirm(self, wall: float) -> int:
        """Forget the posted incidents the store holds (or that are too old); how many."""
        before = len(self.unconfirmed)
        try:
            store = Store(self.store_dir, readonly=True)
        except StoreError:
            known = set()               # not there yet (or unreadable): keep them
        else:
            try:
                known = store.known(list(self.unconfirmed.values()))
            except StoreError:
                known = set()
            finally:
                store.close()
        for inc_id in known:
            del self.unconfirmed[inc_id]
        while self.unconfirmed:
            inc_id, d = next(iter(self.unconfirmed.items()))
            if wall - (d.get("last_time") or wall) < UNCONFIRMED_AGE:
                break
            del self.unconfirmed[inc_id]
            self.counters["unconfirmed_dropped"] += 1
        return before - len(self.unconfirmed)

    @staticmethod
    def take_saved(path: Optional[str], fresh: bool) -> List[Incident]:
        """What a stop of a release before the journal saved, and the file removed
        (persist.take_json_lines: a reload gets [], an unreadable file is kept
        aside). Open reports come back flagged truncated."""
        out = []
        for d in take_json_lines(path, fresh):
            inc = incident_from_dict(d)
            inc.truncated = inc.truncated or bool(d.get("_open"))
            out.append(inc)
        return out


def needed(records: List[tuple], wall_offset: float) -> Tuple[List[tuple], List[Incident]]:
    """A journal's records, (record tuple, now) each, run through a scratch pool: the
    ones its open reports need (what a restart feeds the live detector), and the
    incidents their records already finished (posted again: the store keeps each
    once). No timer runs here: a report waiting for its grace time stays open."""
    pool = DetectorPool(MAX_STREAMS, MAX_OPEN, IDLE)
    tracker, kept = protocol.Tracker(pool), KeptRecords(collections.Counter())
    for idx, (t, t_now) in enumerate(records, 1):
        rec = protocol.record(t)
        pool.feed(rec, t_now)
        kept.keep(rec.stream, (idx, t, t_now), tracker)
    return [(t, t_now) for _idx, t, t_now in kept.in_order()], pool.drain(wall_offset)


def reports_path(state_dir: str, port: int) -> Optional[str]:
    """Where releases before the journal saved the open reports at a stop."""
    return os.path.join(state_dir, "source-%d.reports.jsonl" % port) if state_dir else None
