"""The detector's journal: what a SIGKILL of syslog-ng (OOM killer, `systemctl
kill`, a crash) must not take with it.

``<state_dir>/source-<port>.journal`` holds frames in the worker's format
(worker/protocol.py):
  ("h", VERSION, wall_offset)       first: converts the monotonic times below
  ("r", [(idx, record tuple, now)]) records handed to the detector, as sent to the
                                    worker (the same bytes: no second encoding)
  ("i", [incident dict, ...])       finished incidents, kept until the store has them
It is appended with one write() per loop iteration: a killed process leaves its
writes in the page cache, so a SIGKILL loses nothing written; a power loss loses at
most SYNC_EVERY seconds (fdatasync). When it has grown, it is rewritten (temporary
file, then rename) with only what is still needed: the records of open reports
(kept.py) and the incidents the store does not hold yet. The next fresh start
replays it (sng/detect.py) and a torn last frame (killed inside a write) is ignored.

No syslogng import, no clock: times are arguments. rewrite(), sync() and load()
raise OSError/ValueError; write() never does: a failed write (a full disk) closes the
journal, keeps the error in `error`, and the caller's next rewrite() reopens it.
"""

import os
from typing import Iterable, List, Optional, Tuple

from ..worker import protocol

VERSION = 1
SYNC_EVERY = 1.0            # seconds between two fdatasync()s of a written journal
COMPACT_MIN = 8 << 20       # bytes grown since the last rewrite: rewrite now if mostly stale
COMPACT_SMALL = 64 << 10    # ... or, at most every COMPACT_EVERY seconds, this many
COMPACT_EVERY = 5.0
RECV_TIME = protocol.REC_FIELDS.index("recv_time")


def journal_path(state_dir: str, port: int) -> Optional[str]:
    return os.path.join(state_dir, "source-%d.journal" % port) if state_dir else None


class Journal:
    def __init__(self, path: str):
        self.path = path
        self.fd = None
        self.size = 0               # bytes in the file
        self.base = 0               # bytes right after the last rewrite
        self.dirty = False          # written since the last fdatasync
        self.synced_at = 0.0
        self.rewritten_at = 0.0
        self.error = None           # why the last write() failed (the journal is closed)

    def rewrite(self, items: Iterable[tuple], incidents: List[dict], wall_offset: float,
                now: float) -> None:
        """Replace the file with these kept records and incidents (crash-safe)."""
        items = list(items)
        tmp = self.path + ".tmp"
        os.makedirs(os.path.dirname(self.path) or ".", exist_ok=True)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            size = _write_all(fd, protocol.frame(("h", VERSION, wall_offset)))
            for i in range(0, len(items), 5000):
                size += _write_all(fd, protocol.frame(("r", items[i:i + 5000])))
            if incidents:
                size += _write_all(fd, protocol.frame(("i", incidents)))
            os.fdatasync(fd)
            os.replace(tmp, self.path)
        except BaseException:
            os.close(fd)
            try:
                os.unlink(tmp)      # a full disk: give the space back
            except OSError:
                pass
            raise
        self.close()
        self.fd, self.size, self.base = fd, size, size
        self.dirty, self.synced_at, self.rewritten_at = False, now, now

    def write(self, data: bytes) -> None:
        if self.fd is None:
            return                  # not open (a failed write or rewrite): rewrite() reopens
        try:
            self.size += _write_all(self.fd, data)
        except OSError as e:        # detection must go on: what is kept is rewritten later
            self.error = e
            self.close()
            return
        self.dirty = True

    def incidents(self, docs: List[dict]) -> None:
        if docs:
            self.write(protocol.frame(("i", docs)))

    def sync(self, now: float) -> None:
        if self.dirty and self.fd is not None and now - self.synced_at >= SYNC_EVERY:
            os.fdatasync(self.fd)
            self.dirty, self.synced_at = False, now

    def grown(self, live_bytes, now: float) -> bool:
        """Worth a rewrite: mostly what is no longer needed, and grown by COMPACT_MIN
        since the last one (or by COMPACT_SMALL, COMPACT_EVERY seconds after it: a
        restart then replays little). `live_bytes()` estimates what a rewrite keeps."""
        grown = self.size - self.base
        if grown > COMPACT_MIN or (grown > COMPACT_SMALL and
                                   now - self.rewritten_at >= COMPACT_EVERY):
            return self.size > 2 * live_bytes()
        return False

    def close(self) -> None:
        fd, self.fd = self.fd, None
        if fd is not None:
            os.close(fd)

    def remove(self) -> None:
        self.close()
        try:
            os.unlink(self.path)
        except FileNotFoundError:
            pass


def load(path: Optional[str], wall_offset: float) -> Tuple[List[tuple], List[dict]]:
    """What a journal holds: ([(record tuple, now)], [incident dict]), its times moved
    to this process's monotonic clock (`wall_offset` = time.time() - time.monotonic()).
    No file: ([], []). A file that cannot be read is renamed to <path>.bad (kept for a
    person) and ValueError raised."""
    if not path or not os.path.exists(path):
        return [], []
    try:
        with open(path, "rb") as f:
            data = f.read()
        frames = protocol.FrameReader().feed(data)      # a torn last frame stays unread
        if not frames or frames[0][0] != "h":
            raise ValueError("not a journal")
        if frames[0][1] != VERSION:
            raise ValueError("journal version %r, %s (this one reads %d); kept as %s.bad"
                             % (frames[0][1], "written by a newer release of "
                                "syslogng-netconsole" if frames[0][1] > VERSION else
                                "not of this release", VERSION, os.path.basename(path)))
        shift = frames[0][2] - wall_offset
        records, incidents, seen = [], [], set()
        for fr in frames[1:]:
            if fr[0] == "r":
                for idx, t, t_now in fr[1]:
                    if idx in seen:     # rewritten from the kept ones while its batch
                        continue        # was still to be written: once is enough
                    seen.add(idx)
                    if t[RECV_TIME]:
                        t = t[:RECV_TIME] + (t[RECV_TIME] + shift,) + t[RECV_TIME + 1:]
                    records.append((t, t_now + shift))
            elif fr[0] == "i":
                incidents.extend(fr[1])
        return records, incidents
    except Exception as exc:
        try:
            os.replace(path, path + ".bad")
        except OSError:
            pass
        raise ValueError("%s: %r" % (path, exc)) from exc


def _write_all(fd: int, data: bytes) -> int:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
    return len(data)
