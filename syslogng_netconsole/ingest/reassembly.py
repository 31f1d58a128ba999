"""Per-sender reassembly: datagrams in, whole Records out (modelled on netconsd's ncrx).

I/O-free and clock-free: every call gets `now` (seconds, float, monotonic) from
the caller, and held pieces come out only through `process()`, `expire(now)`
and `flush(now)`. The glue asks `next_deadline()` when to call `expire()`, so a
host that goes silent mid-record still gets its last words out.

Streams are keyed by (sender address, local port, format): a plain and an
extended target of one host never mix. Per extended stream the pipeline is

    ncfrag fragments -> sequencer (dups, reorder window, gaps, reboots)
                     -> continuation stage (joins 4.2-4.8 'c' + '+' pieces) -> output

and per plain stream: cut-line joining -> one Record per line -> output.
Nothing is dropped silently: every drop has a `dropped_<reason>` counter, and
anything incomplete is emitted flagged `incomplete`.
"""

import heapq
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Optional

from . import wire

from .extended import ExtendedStream
from .records import EXTENDED, PLAIN, Record
from .stream import PlainStream


@dataclass
class ReassemblyLimits:
    """Every cap and timeout of the reassembler (seconds, bytes, counts)."""
    # ncfrag: fragments are sent back-to-back; 1 s also covers netpoll's
    # deferred retry (HZ/10) and is short enough for a dying host's last words
    frag_timeout: float = 1.0
    max_frag_total: int = 16384     # declared ncfrag total above this is refused
    max_frag_sets: int = 32         # open reassemblies per stream (oldest emitted beyond)
    # pieces per set: the kernel sends <= ~9 (1000-byte datagrams); the cap keeps
    # a hostile sender's 1-byte overlapping pieces from costing quadratic time
    max_frag_parts: int = 64
    # Reorder window. LAN reordering is sub-millisecond; a WAN path's is tens of
    # ms. Every seq gap (normal: records below the console loglevel are never
    # sent) costs this much latency, and a record arriving later still comes out
    # (counted `late`), so keep it short: 250 ms (ncrx uses 200 ms).
    reorder_window: float = 0.25
    max_reorder_held: int = 128     # records waiting for a gap to fill, per stream
    dup_memory: int = 256           # seqs remembered per stream to spot duplicates
    # 4.2-4.8 kernels ('+' seen): how long a line's pieces wait for the next '+'
    # piece. Only the stream's last piece waits (the next record releases it).
    cont_hold: float = 1.0
    # A stream not yet known to be either: how long a 'c' record waits for a
    # '+' (4.2-4.8 send a line's pieces back to back). 4.9+ streams never wait.
    cont_probe: float = 0.04
    max_record_bytes: int = 16384   # cap on a record joined from '+' pieces
    line_timeout: float = 1.0       # a cut plain line waits this long for its rest
    max_line_bytes: int = 16384     # a partial plain line longer than this is emitted
    max_streams: int = 10000        # beyond: least recently used stream evicted (a fleet of 10,000 fits)
    idle_timeout: float = 900.0     # a stream silent this long is forgotten
    # seq going forward while the timestamp jumps back this far = sender rebooted
    reboot_ts_back: float = 10.0
    max_pending_bytes: int = 64 << 20   # all held bytes; beyond, oldest streams flushed


# caps that must stay >= 1 for the state machine to work at all
_AT_LEAST_ONE = ("max_frag_total", "max_frag_sets", "max_frag_parts", "dup_memory",
                 "max_record_bytes", "max_line_bytes", "max_streams")


def _sane(limits):
    """A copy of limits with caps clamped to >= 1 and times to >= 0."""
    lim = ReassemblyLimits(**{k: getattr(limits, k) for k in ReassemblyLimits.__dataclass_fields__})
    for k in ReassemblyLimits.__dataclass_fields__:
        v = getattr(lim, k)
        floor = 1 if k in _AT_LEAST_ONE else 0
        if not v >= floor:      # also catches NaN
            setattr(lim, k, type(getattr(ReassemblyLimits, k))(floor))
    return lim


# Counters (all int). Traffic: datagrams, bytes, records (emitted). Sequence:
# lost (seq numbers never received; with msgid, msgids never received),
# duplicates (datagrams or fragments already seen), reordered (arrived below the
# highest seq), late (came after its reorder window; emitted out of order),
# reboots, printk_dropped (sum of the sender's "** N printk messages dropped **").
# Pieces: fragments (accepted ncfrag pieces), fragments_incomplete (sets emitted
# with a hole), fragments_evicted (sets pushed out by max_frag_sets),
# lines_joined, lines_incomplete, continued ('+' pieces joined), cont_orphans ('+'
# pieces whose line start was lost or already out).
# State: hosts (streams now), evicted (LRU beyond max_streams), idle_evicted,
# forced_flushes (max_pending_bytes). Drops: dropped_<reason>; empty is an empty
# datagram or line, internal_error a bug caught so ingestion goes on.
COUNTER_NAMES = (
    "datagrams", "bytes", "records", "lost", "duplicates", "reordered", "late",
    "fragments", "fragments_incomplete", "fragments_evicted", "lines_joined",
    "lines_incomplete", "continued", "cont_orphans", "reboots", "hosts", "evicted",
    "idle_evicted", "forced_flushes", "printk_dropped",
    "dropped_empty", "dropped_bad_header", "dropped_bad_ncfrag", "dropped_frag_too_big",
    "dropped_frag_mismatch", "dropped_frag_conflict", "dropped_frag_too_many",
    "dropped_late_fragment", "dropped_internal_error",
)


class Reassembler:
    """All sender streams of one receiver. See the module docstring."""

    def __init__(self, limits: Optional[ReassemblyLimits] = None):
        self.limits = _sane(limits if limits is not None else ReassemblyLimits())
        self.counters = dict.fromkeys(COUNTER_NAMES, 0)     # type: Dict[str, int]
        self.out = []                # type: List[Record]
        self.pending_bytes = 0
        self.reboot_us = int(self.limits.reboot_ts_back * 1000000)
        self._streams = OrderedDict()   # key -> stream, least recently used first
        self._heap = []              # (deadline, key); stale entries skipped lazily

    # -- input ---------------------------------------------------------------
    def process(self, payload: bytes, host: str, src_port: int, dst_port: int,
                now: float) -> None:
        """Feed one datagram. Never raises."""
        try:
            self._process(payload, host, src_port, dst_port, now)
        except Exception:   # a bug must not stop ingestion: count it
            self.counters["dropped_internal_error"] += 1

    def _process(self, payload, host, src_port, dst_port, now):
        c = self.counters
        c["datagrams"] += 1
        c["bytes"] += len(payload)
        if not payload:
            c["dropped_empty"] += 1
            return
        if host[:7] == "::ffff:" and "." in host:
            host = host[7:]
        p = wire.parse_extended(payload)
        if p is None:
            key = (host, dst_port, PLAIN)
        elif p.__class__ is str:
            c["dropped_" + p] += 1
            return
        else:
            key = (host, dst_port, EXTENDED)
        streams = self._streams
        st = streams.get(key)
        if st is None:
            st = self._new_stream(key, src_port, now, p is None)
        else:
            streams.move_to_end(key)
            st.src_port = src_port
        st.last_seen = now
        st.feed(payload if p is None else p, now)
        d = st.due()
        if d is not None and (st.pushed is None or d < st.pushed):
            st.pushed = d
            heapq.heappush(self._heap, (d, key))
        if self.pending_bytes > self.limits.max_pending_bytes:
            self._shed(now)
        # forget one idle stream per datagram (expire() does the rest)
        first = next(iter(streams.values()))
        if first.last_seen + self.limits.idle_timeout <= now:
            self._drop_stream(first, now)
            c["idle_evicted"] += 1

    def _new_stream(self, key, src_port, now, plain):
        streams = self._streams
        while len(streams) >= self.limits.max_streams:
            self._drop_stream(next(iter(streams.values())), now)
            self.counters["evicted"] += 1
        st = (PlainStream if plain else ExtendedStream)(self, key, src_port, now)
        streams[key] = st
        self.counters["hosts"] = len(streams)
        return st

    def _drop_stream(self, st, now):
        st.flush(now)
        del self._streams[st.key]
        self.counters["hosts"] = len(self._streams)

    def _shed(self, now):
        """Too many bytes held overall: flush streams, least recently used first."""
        for st in list(self._streams.values()):
            if self.pending_bytes <= self.limits.max_pending_bytes // 2:
                break
            if st.pending:
                st.flush(now)
                self.counters["forced_flushes"] += 1

    # -- output and timers -----------------------------------------------------
    def records(self) -> List[Record]:
        """Finished records since the last call, each stream's in order."""
        out = self.out
        self.out = []
        return out

    def next_deadline(self) -> Optional[float]:
        """Earliest `now` at which expire() has work; None when nothing is held."""
        heap = self._heap
        while heap:
            d, key = heap[0]
            st = self._streams.get(key)
            if st is None or st.pushed != d:
                heapq.heappop(heap)
                continue
            real = st.due()
            if real == d:
                return d
            heapq.heappop(heap)
            st.pushed = real
            if real is not None:
                heapq.heappush(heap, (real, key))
        return None

    def expire(self, now: float) -> None:
        """Run every timeout due at `now`. Never raises."""
        try:
            self._expire(now)
        except Exception:
            self.counters["dropped_internal_error"] += 1

    def _expire(self, now):
        heap = self._heap
        streams = self._streams
        while heap and heap[0][0] <= now:
            d, key = heapq.heappop(heap)
            st = streams.get(key)
            if st is None or st.pushed != d:
                continue
            st.expire(now)
            nd = st.due()
            if nd is not None and nd <= now:
                nd = now + 1e-6     # defensive: a stream must never make this loop spin
            st.pushed = nd
            if nd is not None:
                heapq.heappush(heap, (nd, key))
        idle = self.limits.idle_timeout
        while streams:
            st = next(iter(streams.values()))
            if st.last_seen + idle > now:
                break
            self._drop_stream(st, now)
            self.counters["idle_evicted"] += 1
        if len(heap) > 2 * len(streams) + 64:
            self._rebuild_heap()

    def _rebuild_heap(self):
        self._heap = [(st.pushed, k) for k, st in self._streams.items() if st.pushed is not None]
        heapq.heapify(self._heap)

    def flush(self, now: float) -> None:
        """Emit everything held, incomplete where it is (e.g. at shutdown)."""
        try:
            for st in list(self._streams.values()):
                st.flush(now)
                st.pushed = None
            self._heap = []
        except Exception:
            self.counters["dropped_internal_error"] += 1


