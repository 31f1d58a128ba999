"""The source's side of the detection worker (worker/__main__.py): crash detection
on another core, with nothing lost when the worker dies.

Why: in a storm the source's one Python thread is the bottleneck, and the detector
is the largest part of its work (bench/storm.py; docs/design.md, "Storm"). The
worker is a child process started with Debian's interpreter (the one syslog-ng
embeds, found from sys.base_exec_prefix, never from PATH) and a clean
environment; it lives on the endpoint, so a reload keeps it.

Records go out in one frame per loop iteration, without blocking: what the pipe
does not take waits in `outbuf`, and while that is large the source stops
reading its socket (the kernel buffers). Every record handed over is also kept
here until the worker says it cannot need it any more (the stream's reports are
closed); if the worker dies (kill -9, a bug) or makes no progress on records
sent to it for `STALL_SECONDS`, a new one is started and gets every kept record again, in the
original order and with the original times: its reports reopen and finish as
they would have. A replayed report that had already finished keeps its incident
id, so the store takes it once. If no worker can be started, detection runs in
the source (InlineEngine) and a warning says why.

No syslogng import; time is an argument where it can be, the pipes are real.
"""

import collections
import fcntl
import os
import subprocess
import sys
from typing import List, Optional

from ..incidents.store import incident_from_dict
from ..reports.pool import _shift
from ..worker import protocol
from .kept import KeptRecords

STALL_SECONDS = 10.0          # work pending and no answer this long: the worker is killed
RESTART_BACKOFF = (0.0, 0.5, 2.0, 10.0)   # seconds before the 1st, 2nd, ... restart
OUTBUF_HIGH = 32 << 20        # bytes waiting for the pipe: above, the source stops reading
PIPE_SIZE = 1 << 20           # F_SETPIPE_SZ: fewer wakeups in a burst
F_SETPIPE_SZ = 1031


def interpreter() -> Optional[str]:
    """The interpreter syslog-ng embeds, as a program: same prefix, same version."""
    ver = "python%d.%d" % sys.version_info[:2]
    for cand in (os.path.join(sys.base_exec_prefix, "bin", ver), "/usr/bin/" + ver):
        if os.access(cand, os.X_OK):
            return cand
    return None


def _package_parent() -> str:
    return os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


class WorkerEngine:
    """Detection in a child process; see the module docstring."""

    inline = False

    def __init__(self, counters: collections.Counter, log):
        self.counters = counters        # detect.* (worker counters are merged in)
        self.log = log                  # callable(level, text)
        self.kept = KeptRecords(counters)
        self.journal = None                     # journal.Journal: every frame sent goes there too
        self.mark_pending = False               # mark_restored() not yet told to a worker
        self.restored_upto = 0                  # the last idx a journal replayed
        self.idx = 0
        self.batch: List[tuple] = []
        self.outbuf = bytearray()
        self.reader = protocol.FrameReader()
        self.found = collections.deque()        # Incidents, monotonic times
        self.remote = {}                        # the worker's last counters
        self.proc = None
        self.starts = 0
        self.next_start = 0.0
        self.sent = 0                           # the last idx written to the worker
        self.done = 0                           # the last idx it says it processed
        self.progress_at = 0.0                  # when `done` last moved (or work began)

    # -- process -------------------------------------------------------------------

    def start(self, now: float) -> bool:
        py = interpreter()
        if py is None:
            raise OSError("no %s next to the embedded interpreter"
                          % ("python%d.%d" % sys.version_info[:2]))
        code = ("import sys; sys.path.insert(0, %r); "
                "from syslogng_netconsole.worker.__main__ import main; sys.exit(main())"
                % _package_parent())
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "LANG": "C.UTF-8",
               "PYTHONDONTWRITEBYTECODE": "1"}
        self.proc = subprocess.Popen([py, "-s", "-c", code], stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, env=env, close_fds=True,
                                     cwd="/")
        for f in (self.proc.stdin, self.proc.stdout):
            os.set_blocking(f.fileno(), False)
            try:
                fcntl.fcntl(f.fileno(), F_SETPIPE_SZ, PIPE_SIZE)
            except OSError:
                pass                    # the default 64 KiB works, with more wakeups
        self.starts += 1
        self.counters["worker_starts"] = self.starts
        self.reader = protocol.FrameReader()
        self.done = 0
        self.progress_at = now
        # everything a crashed worker might still have needed, in the original order
        # (the batch not sent yet is in it too)
        kept = self.kept.in_order()
        self.batch = []
        self.outbuf = bytearray()
        # the records a journal replayed, then the mark for the reports they reopened
        # (mark_restored), then the rest: a new worker flags the same reports
        upto = sum(1 for item in kept if item[0] <= self.restored_upto)
        self._frames(kept[:upto])
        if upto:
            self.outbuf += protocol.frame(("m", None))
        self._frames(kept[upto:])
        self.mark_pending = False
        self.sent = kept[-1][0] if kept else 0
        if self.starts > 1:
            self.counters["worker_replayed"] += len(kept)
        return True

    def _frames(self, items: List[tuple]) -> None:
        for i in range(0, len(items), 5000):
            self.outbuf += protocol.frame(("r", items[i:i + 5000]))

    def pid(self) -> Optional[int]:
        return self.proc.pid if self.proc is not None else None

    def close(self) -> None:
        """Stop the worker (its stdin closes; it exits). Kept records stay here."""
        self._end(kill=False)

    def _end(self, kill: bool) -> None:
        """Close the pipes (a live worker then exits by itself) and reap it; a worker
        that is dead, stuck or slow to go is killed."""
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if kill:
            try:
                proc.kill()
            except OSError:
                pass
        for f in (proc.stdin, proc.stdout):
            try:
                f.close()
            except OSError:
                pass
        try:
            proc.wait(2.0)
        except subprocess.TimeoutExpired:
            proc.kill()
            try:
                proc.wait(1.0)
            except subprocess.TimeoutExpired:
                pass                    # reaped by a later poll() of nobody: logged below

    def _lost(self, now: float, why: str) -> None:
        self._end(kill=True)
        self.counters["worker_restarts"] += 1
        n = self.counters["worker_restarts"]
        self.next_start = now + RESTART_BACKOFF[min(n - 1, len(RESTART_BACKOFF) - 1)]
        self.log("warning", "detection worker %s; restarting it with the %d records its "
                 "open reports need" % (why, self.kept.count()))

    # -- the source loop -------------------------------------------------------------

    def feed(self, rec, now: float) -> None:
        self.idx += 1
        item = (self.idx, protocol.rec_tuple(rec), now)
        self.batch.append(item)
        self.kept.add(rec.stream, item)

    def mark_restored(self) -> None:
        """The records fed so far were replayed from the journal after a restart: the
        reports open after them are marked (run() tells the worker after the batch;
        start() tells a replacement at the same place)."""
        self.mark_pending = True
        self.restored_upto = self.idx

    def fds(self):
        """(fd, wants to write) of the worker's pipes, for the loop's poll."""
        if self.proc is None:
            return []
        return [(self.proc.stdout.fileno(), False),
                (self.proc.stdin.fileno(), bool(self.outbuf))]

    def backlogged(self) -> bool:
        return len(self.outbuf) > OUTBUF_HIGH

    def run(self, now: float, wall_offset: float) -> List:
        """Send, receive, supervise; returns the incidents finished since the last call."""
        if self.proc is None and now >= self.next_start:
            try:
                self.start(now)
            except OSError as e:
                self.counters["worker_start_errors"] += 1
                self._lost(now, "cannot start (%s)" % e)
        if self.batch:
            data = protocol.frame(("r", self.batch))
            if self.journal is not None:
                self.journal.write(data)
            if self.proc is not None:
                if self.done >= self.sent:
                    self.progress_at = now      # idle until now: the clock starts here
                self.outbuf += data
                self.sent = self.batch[-1][0]
            self.batch = []                     # else kept: start() sends them
        if self.mark_pending and self.proc is not None:
            self.outbuf += protocol.frame(("m", None))     # after the records it is about
            self.mark_pending = False
        if self.proc is not None:
            self._write(now)
        if self.proc is not None:
            self._read(now)
        if self.proc is not None and self.proc.poll() is not None:
            self._lost(now, "exited with status %s" % self.proc.returncode)
        elif (self.proc is not None and self.done < self.sent
              and now - self.progress_at > STALL_SECONDS):
            self._lost(now, "did not answer for %.0f s" % STALL_SECONDS)
        out = list(self.found)
        self.found.clear()
        return _shift(out, wall_offset)

    def _write(self, now: float) -> None:
        while self.outbuf:
            try:
                n = os.write(self.proc.stdin.fileno(), self.outbuf)
            except BlockingIOError:
                return
            except OSError as e:        # EPIPE: it died
                self._lost(now, "pipe closed (%s)" % e)
                return
            del self.outbuf[:n]

    def _read(self, now: float) -> None:
        while True:
            try:
                data = os.read(self.proc.stdout.fileno(), 1 << 20)
            except BlockingIOError:
                return
            except OSError as e:
                self._lost(now, "read failed (%s)" % e)
                return
            if not data:
                self._lost(now, "closed its output (status %s)" % self.proc.poll())
                return
            try:
                frames = self.reader.feed(data)
            except ValueError as e:
                self._lost(now, "sent garbage (%s)" % e)
                return
            for _kind, incidents, acks, counters, done in frames:
                if done > self.done:
                    self.done, self.progress_at = done, now
                self.found.extend(incident_from_dict(d) for d in incidents)
                for key, needed in acks:
                    self.kept.trim(tuple(key), needed)
                if counters:
                    self.remote = counters

    # -- stop, counters --------------------------------------------------------------

    def gauges(self) -> dict:
        r = self.remote
        return {"streams": r.get("streams", 0), "open_reports": r.get("open_reports", 0),
                "worker_pid": self.pid() or 0, "kept_records": self.kept.count()}

    def remote_counters(self) -> dict:
        return {k: v for k, v in self.remote.items() if k not in ("streams", "open_reports")}
