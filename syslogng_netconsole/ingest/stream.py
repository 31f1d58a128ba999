"""Per-stream state of the reassembler: the part both formats share, and the plain
format's line joining (the extended format's state machine is in extended.py).

Pure: `now` is always an argument; output goes to the owning Reassembler.
"""

from . import console, wire
from .records import PLAIN, Record


class SenderStream:
    """State of one sender stream (host, local port, format), shared by both formats;
    `r` is the Reassembler that owns it (limits, counters, output)."""
    __slots__ = ("r", "key", "host", "dst_port", "src_port", "last_seen", "boot",
                 "pushed", "pending")

    def __init__(self, r, key, src_port, now):
        self.r = r
        self.key = key
        self.host = key[0]
        self.dst_port = key[1]
        self.src_port = src_port
        self.last_seen = now
        self.boot = 0
        self.pushed = None          # deadline of this stream's live heap entry
        self.pending = 0            # bytes held

    def _hold(self, n):
        self.pending += n
        self.r.pending_bytes += n

    def _emit(self, rec):
        self.r.counters["records"] += 1
        self.r.out.append(rec)


class PlainStream(SenderStream):
    """A plain stream: cut-line joining, one Record per line."""
    __slots__ = ("partial", "ptime", "pfrags", "pcut", "pdeadline", "last_ts", "seen")

    def __init__(self, r, key, src_port, now):
        SenderStream.__init__(self, r, key, src_port, now)
        self.partial = None         # bytes of a line still waiting for its rest
        self.ptime = 0.0
        self.pfrags = 0
        self.pcut = False
        self.pdeadline = 0.0
        self.last_ts = None
        self.seen = False

    def due(self):
        return self.pdeadline if self.partial is not None else None

    def feed(self, payload, now):
        lines = payload.split(b"\n")
        tail = lines.pop()          # b"" when the datagram ends with a newline
        first_time = now
        frags = 1
        partial = self.partial
        if partial is not None:
            self.partial = None
            self._hold(-len(partial))
            head = lines[0] if lines else tail
            # A piece cut at 1000 bytes always continues; a short one without
            # newline (3.5-4.8 pr_cont) continues unless a new record starts.
            if self.pcut or not console.starts_record(head):
                self.r.counters["lines_joined"] += 1
                first_time = self.ptime
                frags = self.pfrags + 1
                if lines:
                    lines[0] = partial + lines[0]
                else:
                    tail = partial + tail
            else:
                self._line(partial, self.ptime, self.pfrags, False)
        for line in lines:
            self._line(line, first_time, frags, False)
            first_time = now
            frags = 1
        if tail:
            if len(tail) > self.r.limits.max_line_bytes:
                self.r.counters["lines_incomplete"] += 1
                self._line(tail, first_time, frags, True)
                return
            self.partial = tail
            self._hold(len(tail))
            self.ptime = first_time
            self.pfrags = frags
            self.pcut = len(payload) >= wire.MAX_PRINT_CHUNK
            self.pdeadline = now + self.r.limits.line_timeout

    def _line(self, line, t, frags, incomplete):
        c = self.r.counters
        if not line:
            c["dropped_empty"] += 1
            return
        text, level, ts, caller, dropped = wire.parse_plain_line(line)
        if self.seen and (text.startswith("Linux version ") or (
                ts is not None and self.last_ts is not None
                and ts + self.r.reboot_us < self.last_ts)):
            self.boot += 1
            c["reboots"] += 1
        self.seen = True
        if ts is not None:
            self.last_ts = ts
        fields = {}
        if dropped:
            c["printk_dropped"] += dropped
            fields["printk_dropped"] = str(dropped)
        self._emit(Record(
            self.host, text, PLAIN, self.src_port, self.dst_port, t, None, ts, level,
            None if level is None else level >> 3, None if level is None else level & 7,
            "", caller, None, fields, self.boot, dropped, frags, incomplete))

    def expire(self, now):
        if self.partial is not None and self.pdeadline <= now:
            self.flush(now)

    def flush(self, now):
        partial = self.partial
        if partial is not None:
            self.partial = None
            self._hold(-len(partial))
            # only a piece the sender cut is known to miss its rest
            if self.pcut:
                self.r.counters["lines_incomplete"] += 1
            self._line(partial, self.ptime, self.pfrags, self.pcut)
