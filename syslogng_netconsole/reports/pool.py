"""Per-stream detectors: the one pool behind the incidents destination and `analyze`.

One Detector per ``Record.stream`` (host, src_port, dst_port), with the bounds a
flood of senders needs: at most ``max_streams`` streams (beyond, the least
recently fed is finished and dropped), at most ``max_open`` streams with an open
report (beyond, the least recently fed is finished now, flagged truncated), and
idle streams without an open report forgotten after ``idle`` seconds. ``None``
means no bound (``analyze`` reads a finite input).

Pure: no syslog-ng import, no clock reads (every time is an argument, on the
caller's clock), no lock (the caller serialises every call).
"""

import collections
import copy
from typing import Callable, List, Optional, Tuple

from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.reports.detector import Detector


class _Slot:
    __slots__ = ("det", "seen", "born")

    def __init__(self, det, born: int):
        self.det = det
        self.seen = 0.0         # last feed, caller's clock
        self.born = born        # creation order: timeouts and flushes run in it


def _shift(incidents: List[Incident], offset: float) -> List[Incident]:
    """Move detector times (the caller's clock) by `offset`, e.g. monotonic -> wall."""
    if offset:
        for inc in incidents:
            if inc.first_time:
                inc.first_time += offset
            if inc.last_time:
                inc.last_time += offset
    return incidents


class DetectorPool:
    """Detectors keyed by stream; finished incidents queue until ``drain()``.

    Counters (in ``counters``, a Counter that may be shared with the caller's):
    records, incidents, streams_evicted, reports_forced, park_errors.
    """

    def __init__(self, max_streams: Optional[int] = None, max_open: Optional[int] = None,
                 idle: Optional[float] = None, counters=None,
                 new: Callable[[], Detector] = Detector):
        self.max_streams = max_streams
        self.max_open = max_open
        self.idle = idle
        self.counters = counters if counters is not None else collections.Counter()
        self._new = new
        self._slots = collections.OrderedDict()   # stream key -> _Slot, least recently fed first
        self._open = collections.OrderedDict()    # keys with a deadline pending, same order
        self._out = collections.deque()           # finished incidents
        self._born = 0

    # -- sizes -------------------------------------------------------------------

    @property
    def streams(self) -> int:
        return len(self._slots)

    @property
    def open_reports(self) -> int:
        """Streams with an open report."""
        return len(self._open)

    @property
    def pending(self) -> int:
        """Finished incidents not drained yet."""
        return len(self._out)

    def detector_errors(self) -> int:
        """Failures the detectors swallowed (they never raise)."""
        return sum(s.det.errors for s in self._slots.values())

    def gauges(self) -> dict:
        return {"streams": self.streams, "open_reports": self.open_reports,
                "detector_errors": self.detector_errors()}

    # -- input and timers ----------------------------------------------------------

    def feed(self, rec, now: float) -> int:
        """Feed one record to its stream's detector; return how many incidents finished."""
        before = len(self._out)
        self.counters["records"] += 1
        key = rec.stream
        slot = self._slots.get(key)
        if slot is None:
            if self.max_streams is not None and len(self._slots) >= self.max_streams:
                self._evict_oldest(now)
            slot = self._slots[key] = _Slot(self._new(), self._born)
            self._born += 1
        else:
            self._slots.move_to_end(key)
        slot.seen = now
        slot.det.feed(rec, now)
        found = slot.det.incidents()
        if slot.det.next_deadline() is not None:
            self._open[key] = None
            self._open.move_to_end(key)
            if self.max_open is not None and len(self._open) > self.max_open:
                self._finish_oldest_open(now)
        else:
            self._open.pop(key, None)
        self._collect(found)
        return len(self._out) - before

    def next_deadline(self) -> Optional[float]:
        """The soonest timeout of any open report, or None."""
        deadlines = [d for d in (self._slots[k].det.next_deadline() for k in self._open)
                     if d is not None]
        return min(deadlines) if deadlines else None

    def expire(self, now: float) -> Optional[float]:
        """Run the timeouts due at `now`; return the soonest deadline still pending."""
        due, soonest = [], None
        for key in list(self._open):
            slot = self._slots[key]
            deadline = slot.det.next_deadline()
            if deadline is None:
                del self._open[key]
            elif deadline <= now:
                due.append((slot.born, key, slot))
            elif soonest is None or deadline < soonest:
                soonest = deadline
        due.sort(key=lambda d: d[0])
        for _, key, slot in due:
            slot.det.expire(now)
            self._collect(slot.det.incidents())
            deadline = slot.det.next_deadline()
            if deadline is None:
                del self._open[key]
            elif soonest is None or deadline < soonest:
                soonest = deadline
        return soonest

    def evict_idle(self, now: float) -> int:
        """Forget streams fed last more than `idle` ago that hold no open report."""
        if self.idle is None:
            return 0
        limit, gone = now - self.idle, 0
        for key in list(self._slots):
            if self._slots[key].seen > limit:
                break                   # least recently fed first: the rest are newer
            if key not in self._open:
                del self._slots[key]
                gone += 1
        return gone

    def flush(self, now: float) -> None:
        """End of input: finish every open report."""
        for slot in sorted(self._slots.values(), key=lambda s: s.born):
            slot.det.flush(now)
            self._collect(slot.det.incidents())
        self._open.clear()

    # -- output ------------------------------------------------------------------

    def drain(self, offset: float = 0.0) -> List[Incident]:
        """The finished incidents, oldest first, times moved by `offset`."""
        out = list(self._out)
        self._out.clear()
        return _shift(out, offset)

    def snapshot(self, now: float, offset: float = 0.0) -> Tuple[List[Incident], list]:
        """The open reports as incidents, finished on copies (the live detectors keep
        going): what the destination parks at deinit. Returns (incidents, the
        exceptions of the copies that failed), each failure counted in park_errors."""
        found, errors = [], []
        for key in self._open:
            try:
                det = copy.deepcopy(self._slots[key].det)
            except Exception as exc:
                self.counters["park_errors"] += 1
                errors.append(exc)
                continue
            det.flush(now)
            found.extend(det.incidents())
        return _shift(found, offset), errors

    # -- caps ----------------------------------------------------------------------

    def _collect(self, found: List[Incident]):
        if found:
            self.counters["incidents"] += len(found)
            self._out.extend(found)

    def _evict_oldest(self, now: float):
        """Stream cap reached: finish and drop the least recently fed stream."""
        key, slot = self._slots.popitem(last=False)
        self._open.pop(key, None)
        slot.det.flush(now)
        self.counters["streams_evicted"] += 1
        self._collect(slot.det.incidents())

    def _finish_oldest_open(self, now: float):
        """Open-report cap passed: finish the least recently fed report now, flagged
        truncated. Bounds the memory a flood of "reports" can hold."""
        key = next(iter(self._open))
        del self._open[key]
        det = self._slots[key].det
        det.flush(now)
        found = det.incidents()
        for inc in found:
            inc.truncated = True
        self.counters["reports_forced"] += len(found)
        self._collect(found)
