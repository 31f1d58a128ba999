"""Per-sender reassembly: datagrams in, whole Records out (modelled on netconsd's ncrx).

I/O-free and clock-free: every call gets `now` (seconds, float, monotonic) from
the caller, and held pieces come out only through `process()`, `expire(now)`
and `flush(now)`. The glue asks `next_deadline()` when to call `expire()`, so a
host that goes silent mid-record still gets its last words out.

Streams are keyed by (sender address, local port, format): a plain and an
extended target of one host never mix. Per extended stream the pipeline is

    ncfrag fragments -> sequencer (dups, reorder window, gaps, reboots)
                     -> continuation stage (joins 'c' records) -> output

and per plain stream: cut-line joining -> one Record per line -> output.
Nothing is dropped silently: every drop has a `dropped_<reason>` counter, and
anything incomplete is emitted flagged `incomplete`.
"""

import heapq
from array import array
from collections import OrderedDict
from dataclasses import dataclass
from typing import List, Optional

from . import wire
from .records import EXTENDED, PLAIN, Record


@dataclass
class Limits:
    """Every cap and timeout of the core (seconds, bytes, counts)."""
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
    # How long the last extended record waits for 'c' continuations. Only the
    # stream's last record waits (the next non-'c' record releases it at once).
    cont_hold: float = 1.0
    max_record_bytes: int = 16384   # cap on a record joined from 'c' pieces
    line_timeout: float = 1.0       # a cut plain line waits this long for its rest
    max_line_bytes: int = 16384     # a partial plain line longer than this is emitted
    max_streams: int = 4096         # beyond: least recently used stream evicted
    idle_timeout: float = 900.0     # a stream silent this long is forgotten
    # seq going forward while the timestamp jumps back this far = sender rebooted
    reboot_ts_back: float = 10.0
    max_pending_bytes: int = 64 << 20   # all held bytes; beyond, oldest streams flushed


# caps that must stay >= 1 for the state machine to work at all
_AT_LEAST_ONE = ("max_frag_total", "max_frag_sets", "max_frag_parts", "dup_memory",
                 "max_record_bytes", "max_line_bytes", "max_streams")


def _sane(limits):
    """A copy of limits with caps clamped to >= 1 and times to >= 0."""
    lim = Limits(**{k: getattr(limits, k) for k in Limits.__dataclass_fields__})
    for k in Limits.__dataclass_fields__:
        v = getattr(lim, k)
        floor = 1 if k in _AT_LEAST_ONE else 0
        if not v >= floor:      # also catches NaN
            setattr(lim, k, type(getattr(Limits, k))(floor))
    return lim


# Counters (all int). Traffic: datagrams, bytes, records (emitted). Sequence:
# lost (seq numbers never received; with msgid, msgids never received),
# duplicates (datagrams or fragments already seen), reordered (arrived below the
# highest seq), late (came after its reorder window; emitted out of order),
# reboots, printk_dropped (sum of the sender's "** N printk messages dropped **").
# Pieces: fragments (accepted ncfrag pieces), fragments_incomplete (sets emitted
# with a hole), fragments_evicted (sets pushed out by max_frag_sets),
# lines_joined, lines_incomplete, continued ('c' records joined), cont_orphans.
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


def _msgid(rec):
    m = rec.fields.get("msgid") if rec.fields else None
    if m is not None and m.isascii() and m.isdigit() and len(m) <= 10:
        return int(m)
    return None


class _FragSet:
    __slots__ = ("piece", "first", "deadline", "parts", "got", "nbytes")

    def __init__(self, piece, now, deadline):
        self.piece = piece          # first fragment seen: header fields
        self.first = now
        self.deadline = deadline
        self.parts = {}             # offset -> bytes
        self.got = 0                # bytes at distinct offsets (may overlap)
        self.nbytes = 0

    def covered(self) -> bool:
        pos = 0
        for off in sorted(self.parts):
            if off > pos:
                return False
            end = off + len(self.parts[off])
            if end > pos:
                pos = end
        return pos >= self.piece.frag_total

    def assemble(self) -> bytes:
        """The body; holes (incomplete sets) are shown as `[...]`."""
        out = []
        pos = 0
        for off in sorted(self.parts):
            data = self.parts[off]
            if off > pos:
                out.append(b"[...]")
            elif off < pos:
                data = data[pos - off:]
            out.append(data)
            pos = max(pos, off + len(self.parts[off]))
        if pos < self.piece.frag_total:
            out.append(b"[...]")
        return b"".join(out)


class _Stream:
    """State shared by both formats."""
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


class _PlainStream(_Stream):
    __slots__ = ("partial", "ptime", "pfrags", "pcut", "pdeadline", "last_ts", "seen")

    def __init__(self, r, key, src_port, now):
        _Stream.__init__(self, r, key, src_port, now)
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
            if self.pcut or not wire.starts_plain_record(head):
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


class _ExtStream(_Stream):
    __slots__ = ("frags", "closed", "next_seq", "max_seq", "last_ts", "held",
                 "ring_seq", "ring_ts", "cont", "cont_deadline", "old_cont",
                 "last_msgid", "last_release", "cont_undo")

    def __init__(self, r, key, src_port, now):
        _Stream.__init__(self, r, key, src_port, now)
        self.frags = {}             # (seq, ts) -> _FragSet, oldest first
        self.closed = OrderedDict()  # (seq, ts) -> emitted incomplete? (late-fragment check)
        self.next_seq = None        # lowest seq not yet released
        self.max_seq = -1           # -1: none yet (compares without a None check)
        self.last_ts = -1
        self.held = {}              # seq -> [Record, deadline]: waiting for a gap
        n = r.limits.dup_memory
        self.ring_seq = array("q", [-1]) * n    # released seqs and their ts: duplicates
        self.ring_ts = array("q", [-1]) * n
        self.cont = None            # last released record, waiting for 'c' pieces
        self.cont_deadline = 0.0
        self.old_cont = False       # 3.5-4.8 semantics seen ('+' follows 'c')
        self.cont_undo = None       # how to split off the last 'c' joined (see _cont)
        self.last_msgid = None      # sysdata msgid of the last released record (6.17+)
        self.last_release = None

    def due(self):
        d = None
        if self.frags:
            d = next(iter(self.frags.values())).deadline
        if self.held:
            # deadlines ascend in insertion order (arrival + window; bumps keep
            # the order), so the first held entry has the earliest one
            h = next(iter(self.held.values()))[1]
            if d is None or h < d:
                d = h
        if self.cont is not None and (d is None or self.cont_deadline < d):
            d = self.cont_deadline
        return d

    # -- fragments ---------------------------------------------------------
    def feed(self, p, now):
        if p.frag_total is None:
            self._sequence(self._record(p, p.body, now, 1, False), now)
            return
        r = self.r
        c = r.counters
        if p.frag_total > r.limits.max_frag_total:
            c["dropped_frag_too_big"] += 1
            return
        fkey = (p.seq, p.ts_us)
        fs = self.frags.get(fkey)
        if fs is None:
            was = self.closed.get(fkey)
            if was is not None:
                # the set already came out: incomplete -> late, complete -> duplicate
                c["dropped_late_fragment" if was else "duplicates"] += 1
                return
            if self._is_dup(p.seq, p.ts_us):
                c["duplicates"] += 1
                return
            if len(self.frags) >= r.limits.max_frag_sets:
                old = next(iter(self.frags))
                c["fragments_evicted"] += 1
                self._frag_done(old, self.frags.pop(old), now, True)
            fs = _FragSet(p, now, now + r.limits.frag_timeout)
            self.frags[fkey] = fs
        elif fs.piece.frag_total != p.frag_total:
            c["dropped_frag_mismatch"] += 1
            return
        old = fs.parts.get(p.frag_off)
        if old is not None:
            c["duplicates" if old == p.body else "dropped_frag_conflict"] += 1
            return
        if len(fs.parts) >= r.limits.max_frag_parts:
            c["dropped_frag_too_many"] += 1
            return
        c["fragments"] += 1
        fs.parts[p.frag_off] = p.body
        n = len(p.body)
        fs.got += n
        fs.nbytes += n
        self._hold(n)
        if fs.got >= p.frag_total and fs.covered():
            del self.frags[fkey]
            self._frag_done(fkey, fs, now, False)

    def _frag_done(self, fkey, fs, now, incomplete):
        self._hold(-fs.nbytes)
        closed = self.closed
        closed[fkey] = incomplete
        if len(closed) > 64:
            closed.popitem(last=False)
        if incomplete:
            self.r.counters["fragments_incomplete"] += 1
        self._sequence(self._record(fs.piece, fs.assemble(), fs.first, len(fs.parts),
                                    incomplete), now)

    def _record(self, p, body, t, frags, incomplete):
        text, fields = wire.decode_ext_body(body)
        level = p.level
        release = p.release
        if release is None:
            release = fields.get("release")
        return Record(self.host, text, EXTENDED, self.src_port, self.dst_port, t, p.seq,
                      p.ts_us, level, level >> 3, level & 7, p.flag, p.caller, release,
                      fields, 0, 0, frags, incomplete)

    # -- sequencer ---------------------------------------------------------
    def _is_dup(self, seq, ts):
        i = seq % len(self.ring_seq)
        return self.ring_seq[i] == seq and self.ring_ts[i] == ts

    def _sequence(self, rec, now):
        seq = rec.seq
        ns = self.next_seq
        # fast path: the next record in order, nothing held, no sign of a reboot
        if (seq == ns and not self.held and rec.ts_us + self.r.reboot_us >= self.last_ts
                and (rec.release is None or rec.release == self.last_release
                     or self.last_release is None)):
            if seq > self.max_seq:
                self.max_seq = seq
            self._release(rec, now)
            return
        c = self.r.counters
        if ns is None:
            # first record: wait for lower seqs whose fragments are still arriving
            ns = seq
            for fs in self.frags.values():
                s = fs.piece.seq
                if seq - 64 <= s < ns:
                    ns = s
            self.next_seq = ns
        if seq >= ns:
            if ((self.last_ts is not None and rec.ts_us + self.r.reboot_us < self.last_ts)
                    or (rec.release is not None and self.last_release is not None
                        and rec.release != self.last_release)):
                self._reboot(rec, now)
                return
            h = self.held.get(seq)
            if h is not None:
                c["duplicates"] += 1
                return
            if self.max_seq is not None and seq < self.max_seq:
                c["reordered"] += 1
            if self.max_seq is None or seq > self.max_seq:
                self.max_seq = seq
            # msgid (6.17+) counts what the target really sent: the next msgid
            # means the seq gap is loglevel filtering, nothing to wait for
            if seq == ns or (not self.held and self.last_msgid is not None
                             and _msgid(rec) == (self.last_msgid + 1) & 0xFFFFFFFF):
                self._release(rec, now)
                self._release_run(now)
                return
            self.held[seq] = [rec, now + self.r.limits.reorder_window]
            self._hold(len(rec.text))
            if len(self.held) > self.r.limits.max_reorder_held:
                self._skip_gap(now)
            return
        # seq below the window start
        if self._is_dup(seq, rec.ts_us):
            c["duplicates"] += 1
            return
        if (ns - seq > len(self.ring_seq) or rec.text.startswith("Linux version ")
                or (self.last_ts is not None and rec.ts_us + self.r.reboot_us < self.last_ts)
                or (rec.release is not None and self.last_release is not None
                    and rec.release != self.last_release)):
            self._reboot(rec, now)
            return
        # a record whose gap was given up on: still emitted, out of order
        c["late"] += 1
        c["reordered"] += 1
        if c["lost"] > 0:
            c["lost"] -= 1
        self._remember(rec)
        rec.boot = self.boot
        self._cont(rec, now)

    def _remember(self, rec):
        i = rec.seq % len(self.ring_seq)
        self.ring_seq[i] = rec.seq
        self.ring_ts[i] = rec.ts_us

    def _release(self, rec, now):
        gap = rec.seq - self.next_seq
        mid = _msgid(rec) if rec.fields else None
        if mid is not None:
            # seq gaps are normal (loglevel filtering); a msgid gap is real loss
            if self.last_msgid is not None:
                mgap = (mid - self.last_msgid - 1) & 0xFFFFFFFF
                if mgap < 0x80000000:
                    gap = mgap
            self.last_msgid = mid
        if gap > 0:
            rec.lost_before = gap
            self.r.counters["lost"] += gap
        seq = rec.seq
        self.next_seq = seq + 1
        if rec.release is not None:
            self.last_release = rec.release
        i = seq % len(self.ring_seq)
        self.ring_seq[i] = seq
        self.ring_ts[i] = ts = rec.ts_us
        if self.last_ts is None or ts > self.last_ts:
            self.last_ts = ts
        rec.boot = self.boot
        if rec.flags == "-" and len(rec.text) <= self.r.limits.max_record_bytes:
            # fast path of _cont: a normal record releases the one held before it
            held = self.cont
            if held is not None:
                self.r.counters["records"] += 1
                self.r.out.append(held)
            self.cont = rec
            self.cont_undo = None
            self.cont_deadline = now + self.r.limits.cont_hold
            return
        self._cont(rec, now)

    def _release_run(self, now):
        held = self.held
        while held:
            h = held.pop(self.next_seq, None)
            if h is None:
                return
            self._hold(-len(h[0].text))
            self._release(h[0], now)

    def _skip_gap(self, now):
        """Give up on the gap below the lowest held record and release what follows."""
        head = min(self.held)
        h = self.held.pop(head)
        self._hold(-len(h[0].text))
        self._release(h[0], now)
        self._release_run(now)

    def _release_due(self, now):
        held = self.held
        for _ in range(len(held) + 1):
            if not held or next(iter(held.values()))[1] > now:
                return
            head = min(held)
            # a lower record still arriving as fragments: wait for its timeout
            wait = None
            for fs in self.frags.values():
                if self.next_seq <= fs.piece.seq < head and (wait is None or fs.deadline > wait):
                    wait = fs.deadline
            if wait is not None and wait > now:
                for v in held.values():
                    if v[1] < wait:
                        v[1] = wait
                return
            self._skip_gap(now)

    def _reboot(self, rec, now):
        """The sender restarted: flush the old boot's pieces, start a new boot at rec."""
        c = self.r.counters
        c["reboots"] += 1
        back = self.r.reboot_us
        for fkey in [k for k, fs in self.frags.items()
                     if abs(fs.piece.ts_us - rec.ts_us) > back
                     or abs(fs.piece.seq - rec.seq) > len(self.ring_seq)]:
            fs = self.frags.pop(fkey, None)
            if fs is not None:
                self._frag_done(fkey, fs, now, True)
        self._flush_held(now)
        self._flush_cont()
        self.boot += 1
        self.next_seq = None
        self.max_seq = -1
        self.last_ts = -1
        self.last_msgid = None
        self.last_release = None
        self.ring_seq = array("q", [-1]) * len(self.ring_seq)
        self.ring_ts = array("q", [-1]) * len(self.ring_ts)
        self._sequence(rec, now)

    def _flush_held(self, now):
        while self.held:
            self._skip_gap(now)

    # -- continuation ------------------------------------------------------
    def _cont(self, rec, now):
        flag = rec.flags
        held = self.cont
        if flag == "+" and not self.old_cont:
            # First '+': a 3.5-4.8 kernel, where 'c' opened a line and '+'
            # continues it. Split the 'c' just joined off its parent again.
            self.old_cont = True
            undo = self.cont_undo
            if undo is not None and held is not None:
                plen, pfrags, pinc, pfields, crec = undo
                held.text = held.text[:plen]
                held.continued -= 1
                held.fragments = pfrags
                held.incomplete = pinc
                held.fields = pfields
                self.r.counters["continued"] -= 1
                self._flush_cont()
                self.cont = held = crec
        if flag == "+" or (flag == "c" and not self.old_cont):
            if (held is not None and rec.lost_before == 0
                    and (held.caller is None or rec.caller is None or held.caller == rec.caller)
                    and len(held.text) + len(rec.text) <= self.r.limits.max_record_bytes):
                if flag == "c":
                    self.cont_undo = (len(held.text), held.fragments, held.incomplete,
                                      dict(held.fields), rec)
                held.text += rec.text
                held.continued += 1
                held.fragments += rec.fragments
                held.incomplete = held.incomplete or rec.incomplete
                for k, v in rec.fields.items():
                    held.fields.setdefault(k, v)
                self.r.counters["continued"] += 1
                self.cont_deadline = now + self.r.limits.cont_hold
                return
            self.r.counters["cont_orphans"] += 1
        if held is not None:
            self._flush_cont()
        if len(rec.text) > self.r.limits.max_record_bytes:
            self._emit(rec)     # too big to be joined to: no need to hold it
            return
        self.cont = rec
        self.cont_undo = None
        self.cont_deadline = now + self.r.limits.cont_hold

    def _flush_cont(self):
        held = self.cont
        if held is not None:
            self.cont = None
            self.cont_undo = None
            self._emit(held)

    # -- timers --------------------------------------------------------------
    def expire(self, now):
        frags = self.frags
        while frags:
            fkey, fs = next(iter(frags.items()))
            if fs.deadline > now:
                break
            del frags[fkey]
            self._frag_done(fkey, fs, now, True)
        if self.held:
            self._release_due(now)
        if self.cont is not None and self.cont_deadline <= now:
            self._flush_cont()

    def flush(self, now):
        frags = self.frags
        while frags:    # lowest seq first; _frag_done may remove others (reboot)
            fkey = min(frags)
            self._frag_done(fkey, frags.pop(fkey), now, True)
        self._flush_held(now)
        self._flush_cont()


class Reassembler:
    """All sender streams of one receiver. See the module docstring."""

    def __init__(self, limits: Optional[Limits] = None):
        self.limits = _sane(limits if limits is not None else Limits())
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
        st = (_PlainStream if plain else _ExtStream)(self, key, src_port, now)
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


class CaptureFeed:
    """Drives a Reassembler with captured packets (anything with ts, src_ip,
    src_port, dst_port and payload), each packet's capture time as the clock, so
    timeouts fire as they did live. The clock never runs backwards (rotated or
    merged captures). Used by the CLI's decode and analyze."""

    def __init__(self, core: Reassembler):
        self.core = core
        self.now: Optional[float] = None

    def packets(self, packets):
        """Yields (record, clock) as records come out."""
        core = self.core
        for pkt in packets:
            now = pkt.ts if self.now is None else max(self.now, pkt.ts)
            self.now = now
            deadline = core.next_deadline()
            if deadline is not None and deadline <= now:
                core.expire(now)
                for rec in core.records():
                    yield rec, now
            core.process(pkt.payload, pkt.src_ip, pkt.src_port, pkt.dst_port, now)
            for rec in core.records():
                yield rec, now

    def finish(self):
        """End of input: everything still held comes out (incomplete where it is)."""
        end = self.now if self.now is not None else 0.0
        self.core.flush(end)
        for rec in self.core.records():
            yield rec, end
