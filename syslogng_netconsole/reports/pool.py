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
import heapq
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
        # keys with a deadline pending -> that deadline, least recently fed first
        self._open = collections.OrderedDict()
        # (deadline, born, key), stale entries skipped: the soonest deadline without
        # asking every open stream (a storm keeps thousands open)
        self._heap = []
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
    def open_keys(self):
        """The stream keys with an open report (supports `in`; do not modify)."""
        return self._open

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
        if self._track(key, slot, True) and self.max_open is not None \
                and len(self._open) > self.max_open:
            self._finish_oldest_open(now)
        self._collect(found)
        return len(self._out) - before

    def _track(self, key, slot, fed: bool) -> bool:
        """Note the stream's deadline after a feed or a timeout; True if one is pending."""
        d = slot.det.next_deadline()
        if d is None:
            self._open.pop(key, None)
            return False
        # a timeout popped the stream's entry: push it again even if unchanged
        if not fed or self._open.get(key) != d:
            self._open[key] = d             # first: _compact() rebuilds from _open
            heapq.heappush(self._heap, (d, slot.born, key))
            if len(self._heap) > 2 * len(self._open) + 64:
                self._compact()
        if fed:
            self._open.move_to_end(key)
        return True

    def _valid(self, entry) -> bool:
        d, born, key = entry
        slot = self._slots.get(key)
        return slot is not None and slot.born == born and self._open.get(key) == d

    def _compact(self):
        self._heap = [(d, self._slots[k].born, k) for k, d in self._open.items()]
        heapq.heapify(self._heap)

    def next_deadline(self) -> Optional[float]:
        """The soonest timeout of any open report, or None."""
        heap = self._heap
        while heap:
            if self._valid(heap[0]):
                return heap[0][0]
            heapq.heappop(heap)
        return None

    def expire(self, now: float) -> Optional[float]:
        """Run the timeouts due at `now`; return the soonest deadline still pending."""
        heap, due = self._heap, []
        while heap and heap[0][0] <= now:
            entry = heapq.heappop(heap)
            if self._valid(entry):
                due.append(entry)
        due.sort(key=lambda e: e[1])        # creation order, as before
        for _d, _born, key in due:
            slot = self._slots[key]
            slot.det.expire(now)
            self._collect(slot.det.incidents())
            self._track(key, slot, False)
        return self.next_deadline()

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

    def mark_restored(self) -> None:
        """Every open report was rebuilt after a restart (Detector.mark_restored)."""
        for key in self._open:
            self._slots[key].det.mark_restored()

    def flush(self, now: float) -> None:
        """End of input: finish every open report."""
        for slot in sorted(self._slots.values(), key=lambda s: s.born):
            slot.det.flush(now)
            self._collect(slot.det.incidents())
        self._open.clear()
        self._heap = []

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
