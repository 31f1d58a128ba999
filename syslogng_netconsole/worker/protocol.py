"""Frames between the netconsole() source and its detection worker, over pipes.

A frame is a 4-byte little-endian length and a marshal payload (the fastest
serialiser of plain tuples in the standard library; both ends run the same
Python). Source -> worker: ("r", [(idx, record tuple, now), ...]); worker ->
source: ("b", [incident dict, ...], [(stream key, needed_from), ...], counters or
None, the last idx processed). `idx` numbers every record the source hands over; `needed_from` is the
lowest idx of that stream the worker could still need after a crash: the first
record of the stream's oldest open report (less a few prefix lines), or one past
the last record it processed when no report is open.

Pure: bytes in, objects out.
"""

import marshal
import operator
import struct

from ..ingest.records import Record

HEADER = struct.Struct("<I")
MAX_FRAME = 256 << 20           # a batch is never near this: a corrupt length
PREFIX_RECORDS = 5              # records kept before a report's first line (its prefix)

# what the detector reads of a Record, in Record's field order (fields is not read)
REC_FIELDS = ("host", "text", "format", "src_port", "dst_port", "recv_time", "seq", "ts_us",
              "level", "facility", "severity", "flags", "caller", "release")
REC_TAIL = ("boot", "lost_before", "fragments", "incomplete", "continued")
rec_tuple = operator.attrgetter(*(REC_FIELDS + REC_TAIL))


def record(t) -> Record:
    n = len(REC_FIELDS)
    return Record(*t[:n], {}, *t[n:])


def frame(obj) -> bytes:
    body = marshal.dumps(obj)
    return HEADER.pack(len(body)) + body


class FrameReader:
    """Bytes as they come from a pipe -> whole frames' objects."""

    def __init__(self):
        self.buf = bytearray()

    def feed(self, data: bytes) -> list:
        buf = self.buf
        buf += data
        out, pos = [], 0
        while len(buf) - pos >= HEADER.size:
            (n,) = HEADER.unpack_from(buf, pos)
            if n > MAX_FRAME:
                raise ValueError("corrupt frame length %d" % n)
            end = pos + HEADER.size + n
            if end > len(buf):
                break
            out.append(marshal.loads(bytes(buf[pos + HEADER.size:end])))
            pos = end
        del buf[:pos]
        return out


class Tracker:
    """Per stream with an open report: the idx of the report's first record and of the
    last record fed: what `needed_from` each stream gets (above). `pool` is the
    DetectorPool it watches (the worker's, or the source's own without a worker)."""

    def __init__(self, pool):
        self.pool = pool
        self.open_start = {}
        self.last = {}

    def fed(self, key, idx: int, acks: dict) -> None:
        if key in self.pool.open_keys:
            start = self.open_start.setdefault(key, idx)
            self.last[key] = idx
            acks[key] = max(0, start - PREFIX_RECORDS)
        else:
            if self.open_start.pop(key, None) is not None:
                del self.last[key]
            acks[key] = idx + 1             # nothing up to here is needed

    def ended(self, acks: dict) -> None:
        """Streams whose report ended without a record of theirs: a timer, or the
        pool's caps finishing it while another stream was fed. Every tracked key was
        open when it was fed, so equal counts mean none has left (no scan)."""
        keys = self.pool.open_keys
        if len(self.open_start) == len(keys):
            return
        for key in [k for k in self.open_start if k not in keys]:
            del self.open_start[key]
            acks[key] = self.last.pop(key) + 1
