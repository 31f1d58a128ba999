"""The extended-format stream state machine of the reassembler (netconsd's ncrx):

    ncfrag fragments -> sequencer (dups, reorder window, gaps, reboots)
                     -> continuation stage ('c' + '+' pieces of 4.2-4.8) -> output

Continuation flags changed meaning (shared docs, netconsole-wire 3.3): since
~4.9 a 'c' record is a KERN_CONT piece the kernel could not merge, and the
console, /dev/kmsg and dmesg show it as a line of its own, so it is emitted as
it is (the flag stays metadata). Only 4.2-4.8 kernels send 'c' for the first
piece of an unfinished line and '+' for the pieces that follow; their consoles
printed the pieces as one line, so such pieces are joined. A stream tells which
it is: a '+' (pieces), a 'c' followed by anything but '+', or a release of 4.9
and later (records). Until then a 'c' record waits `cont_probe` for a '+'.

Pure: `now` is always an argument; output goes to the owning Reassembler.
"""

import re
from array import array
from collections import OrderedDict

from . import wire
from .records import EXTENDED, Record
from .stream import SenderStream


# what the continuation flags of a stream mean (see the module docstring)
ERA_UNKNOWN, ERA_RECORDS, ERA_PIECES = 0, 1, 2
_RELEASE = re.compile(r"(\d+)\.(\d+)")


def _release_era(release):
    m = _RELEASE.match(release)
    if m is not None and (int(m.group(1)), int(m.group(2))) >= (4, 9):
        return ERA_RECORDS
    return ERA_UNKNOWN


# The duplicate ring starts small and doubles up to dup_memory (a power of two): a
# fleet's idle streams hold a few dozen records, not 256. It only grows when a slot
# holds a seq the full ring would keep apart, so what it remembers is the same.
RING_START = 16
# Seqs and timestamps in the ring are kept modulo 2**32 (4 bytes, not 8, per value: a
# fleet of idle streams): two seqs in one ring never differ by that much, and the same
# seq with a timestamp equal modulo 71 minutes but not equal is a reboot, which resets
# the ring. EMPTY marks a free slot (a seq of that value is just not checked).
RING_MASK = EMPTY = 0xFFFFFFFF


def _ring_size(full: int) -> int:
    return RING_START if full > RING_START and full & (full - 1) == 0 else full


def _empty_ring(n: int):
    """(seqs, timestamps) of a duplicate ring of n free slots."""
    return array("I", [EMPTY]) * n, array("I", [EMPTY]) * n


def _msgid(rec):
    m = rec.fields.get("msgid") if rec.fields else None
    if m is not None and m.isascii() and m.isdigit() and len(m) <= 10:
        return int(m)
    return None


class FragSet:
    """The pieces of one ncfrag-fragmented record."""
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


class ExtendedStream(SenderStream):
    """An extended stream: ncfrag fragments -> sequencer -> continuation stage."""
    __slots__ = ("frags", "closed", "next_seq", "max_seq", "last_ts", "held",
                 "ring_seq", "ring_ts", "cont", "cont_deadline", "era",
                 "last_msgid", "last_release")

    def __init__(self, r, key, src_port, now):
        SenderStream.__init__(self, r, key, src_port, now)
        self.frags = {}             # (seq, ts) -> FragSet, oldest first
        self.closed = OrderedDict()  # (seq, ts) -> emitted incomplete? (late-fragment check)
        self.next_seq = None        # lowest seq not yet released
        self.max_seq = -1           # highest seq seen; -1: none yet
        self.last_ts = -1           # highest kernel timestamp released; -1: none yet
        self.held = {}              # seq -> [Record, deadline]: waiting for a gap
        n = _ring_size(r.limits.dup_memory)
        self.ring_seq, self.ring_ts = _empty_ring(n)   # released seqs and their ts: duplicates
        self.cont = None            # a 'c'/'+' record waiting for '+' pieces
        self.cont_deadline = 0.0
        self.era = ERA_UNKNOWN      # what 'c' means on this stream
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
            fs = FragSet(p, now, now + r.limits.frag_timeout)
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
        seq &= RING_MASK
        i = seq % len(self.ring_seq)
        return self.ring_seq[i] == seq and self.ring_ts[i] == ts & RING_MASK

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
            if (rec.ts_us + self.r.reboot_us < self.last_ts
                    or (rec.release is not None and self.last_release is not None
                        and rec.release != self.last_release)):
                self._reboot(rec, now)
                return
            h = self.held.get(seq)
            if h is not None:
                c["duplicates"] += 1
                return
            if seq < self.max_seq:
                c["reordered"] += 1
            else:
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
        if (ns - seq > self.r.limits.dup_memory or rec.text.startswith("Linux version ")
                or rec.ts_us + self.r.reboot_us < self.last_ts
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

    def _slot(self, seq: int) -> int:
        """The ring index for seq, after growing the ring if it would forget a seq
        that a ring of dup_memory keeps."""
        full = self.r.limits.dup_memory
        seq &= RING_MASK
        while True:
            ring = self.ring_seq
            n = len(ring)
            i = seq % n
            old = ring[i]
            if n >= full or old == EMPTY or old == seq or (seq - old) % full == 0:
                return i
            m = min(2 * n, full)
            new_seq, new_ts = _empty_ring(m)
            for s_, t_ in zip(ring, self.ring_ts):
                if s_ != EMPTY:
                    new_seq[s_ % m] = s_
                    new_ts[s_ % m] = t_
            self.ring_seq, self.ring_ts = new_seq, new_ts

    def _remember(self, rec):
        i = self._slot(rec.seq)
        self.ring_seq[i] = rec.seq & RING_MASK
        self.ring_ts[i] = rec.ts_us & RING_MASK

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
        ring = self.ring_seq
        s32 = seq & RING_MASK
        i = s32 % len(ring)
        if ring[i] != EMPTY and ring[i] != s32:    # hot path: the slot is free or ours
            i = self._slot(seq)
        self.ring_seq[i] = s32
        ts = rec.ts_us
        self.ring_ts[i] = ts & RING_MASK
        if ts > self.last_ts:
            self.last_ts = ts
        rec.boot = self.boot
        if rec.flags == "-" and self.cont is None:
            # fast path: a normal record with nothing waiting goes out at once
            self.r.counters["records"] += 1
            self.r.out.append(rec)
            return
        self._cont(rec, now)

    def _release_run(self, now):
        held = self.held
        if not held:
            return
        while held:
            h = held.pop(self.next_seq, None)
            if h is None:
                return
            self._hold(-len(h[0].text))
            self._release(h[0], now)
        # emptied: a dict keeps its grown table (about 1 KiB for each idle host)
        self.held = {}

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
                     or abs(fs.piece.seq - rec.seq) > self.r.limits.dup_memory]:
            fs = self.frags.pop(fkey, None)
            if fs is not None:
                self._frag_done(fkey, fs, now, True)
        self._flush_held(now)
        self._flush_cont()
        self.era = ERA_UNKNOWN      # the new boot may run another kernel
        self.boot += 1
        self.next_seq = None
        self.max_seq = -1
        self.last_ts = -1
        self.last_msgid = None
        self.last_release = None
        n = _ring_size(self.r.limits.dup_memory)
        self.ring_seq, self.ring_ts = _empty_ring(n)
        self._sequence(rec, now)

    def _flush_held(self, now):
        while self.held:
            self._skip_gap(now)

    # -- continuation ------------------------------------------------------
    def _cont(self, rec, now):
        flag = rec.flags
        held = self.cont
        r = self.r
        if self.era == ERA_UNKNOWN and rec.release is not None:
            self.era = _release_era(rec.release)
        if flag == "+":
            self.era = ERA_PIECES
            if (held is not None and rec.lost_before == 0
                    and (held.caller is None or rec.caller is None or held.caller == rec.caller)
                    and len(held.text) + len(rec.text) <= r.limits.max_record_bytes):
                held.text += rec.text
                held.continued += 1
                held.fragments += rec.fragments
                held.incomplete = held.incomplete or rec.incomplete
                for k, v in rec.fields.items():
                    held.fields.setdefault(k, v)
                r.counters["continued"] += 1
                self.cont_deadline = now + r.limits.cont_hold
                return
            # its first piece was lost or already out: the rest is a line of its own
            r.counters["cont_orphans"] += 1
        elif held is not None and self.era == ERA_UNKNOWN and rec.lost_before == 0:
            self.era = ERA_RECORDS      # a 'c' not followed by '+'
        if held is not None:
            self._flush_cont()
        if (flag == "-" or self.era == ERA_RECORDS
                or len(rec.text) > r.limits.max_record_bytes):
            self._emit(rec)
            return
        # a 'c' or '+' that '+' pieces may follow
        self.cont = rec
        self.cont_deadline = now + (r.limits.cont_hold if self.era == ERA_PIECES
                                    else r.limits.cont_probe)

    def _flush_cont(self):
        held = self.cont
        if held is not None:
            self.cont = None
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
