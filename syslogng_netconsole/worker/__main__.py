"""The detection worker process: records in on stdin, finished incidents out on stdout.

Started by the netconsole() source (sng/detect_worker.py) with Debian's interpreter
and a clean environment; it exits when stdin closes (the source stopped, or
syslog-ng died). It runs the same DetectorPool the source runs inline, on its own
core, and its own timers (the clock is CLOCK_MONOTONIC, the same in both
processes). After every batch it says, per stream it touched, which records it
could still need after a crash (protocol.py): the source keeps exactly those, and
a new worker gets them again, so a kill -9 loses no report (a report replayed
twice keeps its incident id: the store takes it once).
"""

import os
import select
import sys
import time

from ..reports.pool import DetectorPool
from . import protocol
from .protocol import Tracker

COUNTERS_EVERY = 1.0         # seconds between counter snapshots sent back


def serve(inp: int, out: int, pool: DetectorPool) -> None:
    reader = protocol.FrameReader()
    tracker = Tracker(pool)
    poller = select.poll()
    poller.register(inp, select.POLLIN)
    last_counters = 0.0
    last_evict = time.monotonic()
    done = 0                                # the last idx processed
    while True:
        now = time.monotonic()
        deadline = pool.next_deadline()
        timeout = 1.0 if deadline is None else min(1.0, max(0.0, deadline - now))
        acks = {}
        if poller.poll(timeout * 1000.0):
            data = os.read(inp, 1 << 20)
            if not data:
                return                      # the source is gone
            for kind, batch in reader.feed(data):
                if kind == "r":
                    for idx, t, t_now in batch:
                        rec = protocol.record(t)
                        pool.feed(rec, t_now)
                        tracker.fed(rec.stream, idx, acks)
                        done = idx
                elif kind == "m":           # what is open now was rebuilt after a restart
                    pool.mark_restored()
        now = time.monotonic()
        deadline = pool.next_deadline()
        if deadline is not None and deadline <= now:
            pool.expire(now)
        tracker.ended(acks)
        if now - last_evict >= 30.0:
            last_evict = now
            pool.evict_idle(now)
        incidents = [inc.to_dict() for inc in pool.drain()]
        counters = None
        # with every incident too: the source's counters then cover at least the
        # records behind each incident it has (its stats file is written at a stop,
        # when the worker's last periodic snapshot may be a second old)
        if incidents or now - last_counters >= COUNTERS_EVERY:
            last_counters = now
            counters = dict(pool.counters, streams=pool.streams, open_reports=pool.open_reports)
        if incidents or acks or counters:
            _write_all(out, protocol.frame(("b", incidents, list(acks.items()), counters, done)))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def main(argv=None) -> int:
    from ..sng.detect import IDLE, MAX_OPEN, MAX_STREAMS
    pool = DetectorPool(MAX_STREAMS, MAX_OPEN, IDLE)
    try:
        serve(sys.stdin.fileno(), sys.stdout.fileno(), pool)
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
