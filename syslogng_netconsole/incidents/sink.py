"""Where the incidents destination puts a finished incident: the SQLite store
(store.py), then one line in ``incidents.jsonl``, one internal log line, and the
hand-off to alerts -- in that order, and only for an incident new to the store
(a duplicate is counted, nothing else). An incident is marked handed on in the
store only once the alerts took it (or none are configured): one stored just
before a crash (SIGKILL), or while the alerts could not start, is handed on by
hand_on() after the next set_alerts(). Reports still open at deinit are parked
in the store and unparked at the next init. Counters go to ``incidents-stats.json``.

Pure of syslog-ng and of clocks: ``log(level, text)`` writes one line, and every
call takes `now` (the caller's monotonic clock: retries, rate-limited logging)
and, where something is written, `wall` (time.time()). Not thread-safe: one
thread at a time (the destination's background thread, or init/deinit).
"""

import collections
import json
import os
from typing import Callable, Iterable, List, Optional

from syslogng_netconsole import jsonfiles
from syslogng_netconsole.hosts.hostdb import DB_NAME as HOSTS_DB, HostDb, HostDbError
from syslogng_netconsole.incidents import novelty
from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.alerts.sanitize import printable
from syslogng_netconsole.incidents.store import Store, StoreError
from syslogng_netconsole.ratelog import RateLimitedLog

JSONL_NAME = "incidents.jsonl"
STATS_NAME = "incidents-stats.json"
PREFIX = "netconsole-incidents: "
LOG_EVERY = 60.0          # seconds between two log lines about the same kind of trouble
STORE_RETRY = 10.0        # seconds between attempts to reopen a failed store
UNSTORED_RETRY = 5.0      # seconds between attempts to store what the store refused
MAX_UNSTORED = 10000      # incidents kept for that; beyond, the oldest is dropped (counted)
# on_new() returns this when it hands the incident on later itself (sng/symbolize.py:
# after symbolizing) and marks the hand-off done in the store then
DEFERRED = "deferred"


class IncidentSink:
    """Store -> JSON line -> log line -> ``on_new(incident, wall)`` (alerts).

    Counters (in ``counters``, a Counter that may be shared with the caller's):
    stored, duplicates, store_errors, jsonl_errors, alert_errors, park_errors,
    unstored_dropped (and the gauge unstored in the stats file).
    """

    def __init__(self, state_dir: str, owner: str, log: Callable[[str, str], None],
                 json_lines: bool = True, counters=None, ratelog=None,
                 on_new: Optional[Callable[[Incident, float], None]] = None):
        self.state_dir = state_dir
        self.owner = owner              # whose parked reports are whose
        self.json_lines = json_lines
        self.jsonl_max = jsonfiles.MAX_LINES_BYTES     # rotated to .1 beyond (0: never)
        self.on_new = on_new
        self.alerts_enabled = True      # until set_alerts(): keep the hand-offs for later
        self._handoff_due = False
        self.counters = counters if counters is not None else collections.Counter()
        self._log = log
        self._trouble = ratelog or RateLimitedLog(log, PREFIX, LOG_EVERY)
        self._store = None
        self._hosts = None              # hosts/hostdb.py, read only, when the file exists
        self._retry_at = 0.0
        self._unstored = collections.deque()   # (incident, JSON line written) for retry()
        self._unstored_at = 0.0

    @property
    def store_ok(self) -> bool:
        return self._store is not None

    def open(self, now: float) -> bool:
        """Open the store; on failure retry from add() every STORE_RETRY seconds."""
        try:
            os.makedirs(self.state_dir, exist_ok=True)
            self._store = Store(self.state_dir)
        except (OSError, StoreError) as exc:
            self._store = None
            self._retry_at = now + STORE_RETRY
            self._trouble("store-open", "incident store unavailable, retrying every %ds "
                          "(incidents go to the internal log meanwhile): %s"
                          % (STORE_RETRY, exc), now, "error")
        return self._store is not None

    def close(self):
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._hosts is not None:
            self._hosts.close()
            self._hosts = None

    def add(self, inc: Incident, now: float, wall: float) -> bool:
        """Store one finished incident; True if it was new (and handed on). One the
        store refuses (a full disk, no store yet) is still written to the JSON lines,
        the log and the alerts, and kept for retry()."""
        if self._store is None and now >= self._retry_at:
            self.open(now)
        stored = False
        if self._store is not None:
            self._judge(inc, now)
            try:
                if not self._store.add(inc, wall):
                    self.counters["duplicates"] += 1
                    return False
                stored = True
            except StoreError as exc:
                self.counters["store_errors"] += 1
                self._refused(exc, now)
        else:
            self.counters["store_errors"] += 1
        lined = self._append_json(inc, now, wall) if self.json_lines else True
        if stored:
            self.counters["stored"] += 1
        else:
            self._keep(inc, lined)
        self._log("info", PREFIX + "host=%s type=%s title=%s%s"
                  % (printable(inc.host, 64), printable(inc.type, 40), printable(inc.title, 200),
                     " (panicked)" if inc.panicked else ""))
        self._hand(inc, now, wall)
        return True

    def _judge(self, inc: Incident, now: float) -> None:
        """new / new_on_release (novelty.py), from the store and the host table."""
        try:
            novelty.judge(inc, self._store.seen_before, self._other_releases)
        except (StoreError, HostDbError) as exc:
            self.counters["novelty_errors"] += 1
            self._trouble("novelty", "cannot tell whether an incident is new: %s" % exc,
                          now, "warning")

    def _other_releases(self, release: str) -> int:
        n = self._store.other_releases(release)
        if not os.path.exists(os.path.join(self.state_dir, HOSTS_DB)):
            return n
        if self._hosts is None:
            self._hosts = HostDb(self.state_dir, readonly=True)
        try:
            return max(n, self._hosts.other_releases(release))
        except HostDbError:
            self._hosts.close()
            self._hosts = None
            raise

    def _refused(self, exc: StoreError, now: float) -> None:
        self._trouble("store-add", "cannot store incident (kept, retried every %ds): %s"
                      % (UNSTORED_RETRY, exc), now, "error")

    def _keep(self, inc: Incident, lined: bool) -> None:
        self._unstored.append((inc, lined))
        while len(self._unstored) > MAX_UNSTORED:
            self._unstored.popleft()
            self.counters["unstored_dropped"] += 1

    def retry(self, now: float, wall: float) -> int:
        """Store what the store refused, once it works again (the caller's thread,
        often); the alerts see each again (their policy folds the repeat)."""
        if not self._unstored or now < self._unstored_at:
            return 0
        self._unstored_at = now + UNSTORED_RETRY
        if self._store is None and (now < self._retry_at or not self.open(now)):
            return 0
        n = 0
        while self._unstored:
            inc, lined = self._unstored[0]
            try:
                new = self._store.add(inc, wall)
            except StoreError as exc:
                self._refused(exc, now)
                break
            self._unstored.popleft()
            if new:
                n += 1
                self.counters["stored"] += 1
                if not lined:
                    self._append_json(inc, now, wall)
                self._hand(inc, now, wall)
        if n:
            self._log("info", PREFIX + "%d incident(s) stored now that the store works again" % n)
        return n

    def set_alerts(self, on_new: Optional[Callable[[Incident, float], None]],
                   enabled: bool = True) -> None:
        """Where new incidents go from now on; on_new=None with enabled=True: the
        alerts are configured but do not run (hand-offs wait in the store)."""
        self.on_new = on_new
        self.alerts_enabled = enabled
        self._handoff_due = True

    def hand_on(self, now: float, wall: float) -> int:
        """After set_alerts(): hand on what the store holds unhanded (a crash between
        storing and alerting, or alerts that could not start). Returns how many."""
        if not self._handoff_due or self._store is None:
            return 0
        self._handoff_due = False
        try:
            waiting = self._store.unhanded()
        except StoreError as exc:
            self._handoff_due = True
            self._trouble("handoff", "cannot read the hand-offs: %s" % exc, now, "error")
            return 0
        n = sum(1 for inc in waiting if self._hand(inc, now, wall))
        if n:
            self._log("info", PREFIX + "%d stored incident(s) handed to the alerts now "
                      "(stored before a crash or while the alerts were down)" % n)
        return n

    def _hand(self, inc: Incident, now: float, wall: float) -> bool:
        if self.on_new is None:
            if self.alerts_enabled:
                return False            # kept in the store's hand-offs for later
        else:
            try:
                if self.on_new(inc, wall) is DEFERRED:
                    return True
            except Exception as exc:
                self.counters["alert_errors"] += 1
                self._trouble("alert", "alert hook: %r" % (exc,), now, "error")
                return False
        if self._store is not None:
            try:
                self._store.handed(inc.id)
            except StoreError as exc:       # handed on again at the next start: a duplicate
                self._trouble("handoff", "cannot mark a hand-off done: %s" % exc, now, "error")
        return True

    def _append_json(self, inc: Incident, now: float, wall: float) -> bool:
        d = inc.to_dict()
        d["stored_at"] = wall
        line = json.dumps(d, sort_keys=True) + "\n"       # ensure_ascii: no raw control chars
        try:
            jsonfiles.append_line(os.path.join(self.state_dir, JSONL_NAME), line,
                                  max_bytes=self.jsonl_max)
        except OSError as exc:
            self.counters["jsonl_errors"] += 1
            self._trouble("jsonl", "cannot append to %s: %s" % (JSONL_NAME, exc), now, "error")
            return False
        return True

    def prune(self, retention: float, now: float, wall: float) -> int:
        """Retention: delete incidents stored more than `retention` seconds ago (0:
        keep all). incidents.jsonl is capped by size where it is written."""
        if not retention or self._store is None:
            return 0
        try:
            n = self._store.prune(wall - retention)
        except StoreError as exc:
            self._trouble("prune", "cannot prune old incidents: %s" % exc, now, "error")
            return 0
        if n:
            self.counters["pruned"] += n
            self._log("info", PREFIX + "%d incident(s) older than %d days deleted (retention)"
                      % (n, retention // 86400))
        return n

    def park(self, incidents: Iterable[Incident], now: float, wall: float):
        """Keep the open reports' snapshots in the store until the next unpark()."""
        incidents = list(incidents)
        if self._store is None:
            if incidents:
                self.counters["park_errors"] += len(incidents)
                self._log("error", PREFIX + "no store: %d open report(s) are lost if this is "
                          "a shutdown (a reload continues them)" % len(incidents))
            return
        try:
            self._store.park(self.owner, incidents, wall)
        except StoreError as exc:
            self.counters["park_errors"] += 1
            self._trouble("park", str(exc), now, "error")

    def unpark(self, now: float) -> List[Incident]:
        """The snapshots parked at the last deinit (removed from the store)."""
        if self._store is None:
            return []
        try:
            return self._store.unpark(self.owner)
        except StoreError as exc:
            self._trouble("unpark", str(exc), now, "error")
            return []

    def write_stats(self, gauges: dict):
        """Counters plus the caller's gauges into incidents-stats.json (atomic)."""
        doc = dict(self.counters)
        doc.update(gauges)
        doc["store_ok"] = self._store is not None
        doc["unstored"] = len(self._unstored)
        try:
            jsonfiles.write_atomic(os.path.join(self.state_dir, STATS_NAME), doc,
                                   sort_keys=True)
        except OSError:
            pass                        # the store error is already reported
