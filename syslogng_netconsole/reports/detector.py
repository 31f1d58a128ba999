"""Streaming crash-report detector: records in, one Incident per report out.

Per sender stream (host, format, local port) and per printk context (caller
tag ``T123``/``C1``; "console" for timestamped lines without one; "" for bare
text) a report opens on a start marker (``kinds.KINDS``) and ends on the first
of:

* a terminal line (``---[ end Kernel panic``, ``Rebooting in``: from any context,
  the machine stops) or a boot banner / a new ``boot`` of the stream;
* an end marker (``---[ end trace``, the closing ``=====`` of a sanitizer
  report, ``Killed process``) plus a grace period (``grace_lines`` lines of the
  same context, or ``grace_seconds`` without a line for the report): x86
  repeats RIP/registers after the end trace and a panic often follows, and
  both belong to this report;
* the start of another report in the same context (panic and die lines that
  follow an oops do not count: ``kinds.REPORT_START_IGNORES``). With caller tags
  a report that starts inside another one of the same task (a WARNING inside an
  RCU stall) is nested: both are incidents, the outer one goes on;
* quiet: no line for the report for ``quiet_seconds`` (a panicked host goes
  silent; with caller tags, other tasks' chatter does not keep a report open),
  ``max_age`` seconds open (chatter without tags), or ``max_lines``/``max_bytes``
  (truncated).

Time-based ends run from ``expire(now)``, which the caller drives from a timer
(``next_deadline()`` says when). Nothing here reads a clock.

Which lines describe a report follows syzkaller's findReport (google/syzkaller,
Apache License 2.0): lines of the report's context only (plus CPU contexts after
"Sending NMI from CPU"), no "? " / "(unreliable)" frames, and a panic or lockdep
report after 22 lines (16 for KMSAN) is left out of the title search. Hostile
input costs bounded work: lines are cut at 1024 characters and the title is
looked for in the first 1000 lines.
"""

import re
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from ..incidents.incident import Incident
from . import describe as _describe
from . import frames as _frames
from . import kinds
from ..ingest.console import parse_console_line
from .signature import signature

_QUESTIONABLE = re.compile(r"(?:\[<[0-9a-f]+>\])? \? ").search
_EQUALS = "=" * 20
_HEADER = kinds.HEADER_ANY.search
# Panics that only follow a report (its header may come from another context).
_FOLLOWUP_PANIC = re.compile(
    r"Kernel panic - not syncing: .*(?:Fatal exception|panic_on_warn|panic_on_oops|hung_task"
    r"|softlockup|hard LOCKUP|RCU Stall|rcu_stall|Fatal machine check)").search
_CPU_LINE = re.compile(
    r"CPU: (\d+) (?:UID: \d+ )?PID: (\d+) Comm: (.*?) (?:Kdump: loaded )?"
    r"(Not tainted|Tainted: [A-Z ]+?) +(\S+) #")
_HARDWARE = re.compile(r"Hardware name: (.*)")
_PC = re.compile(r"^(?:RIP: 0010:|RIP: [0-9a-f]{4}:(?=\S*\+0x)|IP: |pc : |PC is at |NIP: +|epc : )(.*)")
_MODULES = re.compile(r"Modules linked in:(.*)")
_MODULE_NAME = re.compile(r"^([A-Za-z0-9_\-]+)")
_TERMINAL = ("---[ end Kernel panic", "Rebooting in ")
_END_MARKERS = ("---[ end trace", "Killed process", _EQUALS)
_MARKERS = _TERMINAL + _END_MARKERS
_SPECIAL = re.compile("Kernel panic - not syncing|Disabling lock debugging due to kernel taint"
                      "|Sending NMI from CPU|WARNING: possible circular locking dependency detected"
                      ).search
MAX_DESC_LINES = 1000              # lines of a report the title is looked for in
MAX_LINE = 1024                    # characters kept of one line
MAX_NESTED = 4                     # open reports per context (nested reports)


@dataclass
class DetectorLimits:
    """Every cap and timeout of the crash detector (seconds, lines, bytes)."""
    # After an end marker, what still belongs to the report (x86's register
    # summary, the panic of panic_on_oops/panic_on_warn) is printed by the same
    # CPU in the same call, back to back: a report is over once its stream has
    # added nothing to it for this long. Short, because it is on every alert's path.
    grace_seconds: float = 0.25
    grace_lines: int = 40          # ... or this many more lines of the context
    quiet_seconds: float = 5.0     # no line for the report: it is over
    max_age: float = 60.0          # a report open this long is closed
    max_lines: int = 4000          # caps (then truncated=True); all-CPU dumps are long
    max_bytes: int = 512 * 1024
    prefix_lines: int = 5          # lines kept before a start marker (cut here, ====)
    max_contexts: int = 64         # per stream, for the prefix buffers
    max_open: int = 64             # open reports per stream (all contexts)
    idle_drop: float = 3600.0      # forget a quiet stream's state after this




class _Report:
    __slots__ = ("kind", "ctx", "first_line", "lines", "desc", "text_lines", "skip_text",
                 "cpu_traceback", "ended", "grace_left", "grace_deadline", "panicked",
                 "lost", "incomplete", "truncated", "nbytes", "first_seq", "last_seq",
                 "first_ts", "last_ts", "first_time", "last_time", "release", "line_no",
                 "min_lines", "host", "boot", "desc_tail", "restored")

    def __init__(self, kind, ctx, text, prefix, rec, ts, now, line_no):
        self.kind = kind
        self.ctx = ctx
        self.first_line = text
        self.lines = list(prefix)
        self.desc: List[str] = []
        self.text_lines = 0
        self.skip_text = False
        self.cpu_traceback = False
        self.ended = False
        self.grace_left = 0
        self.grace_deadline = 0.0
        self.panicked = False
        self.lost = 0
        self.incomplete = False
        self.truncated = False
        self.nbytes = 0
        self.first_seq = self.last_seq = rec.seq
        self.first_ts = self.last_ts = ts
        self.restored = False       # rebuilt after the collector restarted (mark_restored)
        self.first_time = self.last_time = now
        self.release = rec.release
        self.line_no = line_no
        # KMSAN reports are short: cut a trailing panic earlier (syzkaller)
        self.min_lines = 16 if "BUG: KMSAN:" in text else 22
        self.host = rec.host
        self.boot = rec.boot
        self.desc_tail = False      # the last line taken went into desc too


class _DetectorStream:
    """Per-stream detector state: open reports and prefix buffers per context."""
    __slots__ = ("open", "prefix", "last_time", "boot", "line_no", "last_ctx")

    def __init__(self, boot):
        self.open: Dict[str, List[_Report]] = {}
        self.prefix: Dict[str, List[str]] = {}
        self.last_time = 0.0
        self.boot = boot
        self.line_no = 0
        self.last_ctx = None        # context of the last record fed


def _context(caller, ts) -> str:
    """The printk context a line belongs to: its caller tag, "console" for a
    timestamped line without one, "" for bare text."""
    return caller or ("console" if ts is not None else "")


def _match_kind(text: str) -> Optional[kinds.Kind]:
    for kind in kinds.KINDS:
        if kind.header in text:
            for sup in kind.suppressions:
                if sup.search(text):
                    break
            else:
                return kind
    return None


_DEFAULT_LIMITS = DetectorLimits()     # shared: a pool holds one Detector per stream
_NEVER = float("inf")


class Detector:
    __slots__ = ("limits", "_streams", "_out", "errors", "_check_at")

    def __init__(self, limits: Optional[DetectorLimits] = None):
        self.limits = limits or _DEFAULT_LIMITS
        self._streams: Dict[Tuple, _DetectorStream] = {}
        self._out: List[Incident] = []
        self.errors = 0          # internal failures swallowed (never raised)
        self._check_at = _NEVER  # expire() does nothing before this

    # ---- public API ----

    def feed(self, record, now: float) -> None:
        try:
            self._feed(record, now)
        except Exception:  # bad input must never break ingestion
            self.errors += 1

    def next_deadline(self) -> Optional[float]:
        best = None
        lim = self.limits
        for st in self._streams.values():
            for rep in (r for lst in st.open.values() for r in lst):
                d = min(rep.last_time + lim.quiet_seconds, rep.first_time + lim.max_age)
                if rep.ended:
                    d = min(d, rep.grace_deadline)
                if best is None or d < best:
                    best = d
        return best

    def expire(self, now: float) -> None:
        if now < self._check_at:
            return  # nothing can be due yet (deadlines only move later)
        lim = self.limits
        self._check_at = _NEVER
        try:
            for key in list(self._streams):
                st = self._streams[key]
                for rep in [r for lst in st.open.values() for r in lst]:
                    if rep.ended and now >= rep.grace_deadline:
                        self._close(st, rep)
                    elif now >= rep.last_time + lim.quiet_seconds:
                        self._close(st, rep, timeout=True)
                    elif now >= rep.first_time + lim.max_age:
                        self._close(st, rep, timeout=True)
                if not st.open and now - st.last_time >= lim.idle_drop:
                    del self._streams[key]
            nxt = self.next_deadline()
            self._check_at = min(nxt if nxt is not None else _NEVER,
                                 now + lim.idle_drop if self._streams else _NEVER)
        except Exception:
            self.errors += 1

    def flush(self, now: float) -> None:
        try:
            for st in self._streams.values():
                self._close_all(st)
        except Exception:
            self.errors += 1

    def incidents(self) -> List[Incident]:
        out, self._out = self._out, []
        return out

    def mark_restored(self) -> None:
        """The open reports were rebuilt from a journal after the collector restarted:
        one that times out without its end is flagged truncated (its end may have
        arrived while nobody listened)."""
        for st in self._streams.values():
            for lst in st.open.values():
                for rep in lst:
                    rep.restored = True

    def open_reports(self) -> int:
        return sum(len(lst) for st in self._streams.values() for lst in st.open.values())

    # ---- internals ----

    def _feed(self, rec, now: float) -> None:
        key = (rec.host, rec.format, rec.dst_port)
        st = self._streams.get(key)
        if st is None:
            st = self._streams[key] = _DetectorStream(rec.boot)
        if rec.boot != st.boot:
            # the sender rebooted: whatever was open is over
            self._close_all(st)
            st.boot = rec.boot
        st.last_time = now
        if rec.lost_before:
            for lst in st.open.values():
                for rep in lst:
                    rep.lost += rec.lost_before
        parse = rec.ts_us is None and rec.caller is None
        text = rec.text
        if rec.flags == "c" and self._join_piece(st, rec, now):
            return
        st.last_ctx = _context(rec.caller, rec.ts_us)
        for line in (text.split("\n") if "\n" in text else (text,)):
            if parse:
                ts, caller, text = parse_console_line(line)
            else:
                ts, caller, text = rec.ts_us, rec.caller, line
                if text.endswith("\r"):
                    text = text[:-1]
            if len(text) > MAX_LINE:
                # printk lines are at most 1024 bytes; longer is not kernel output and
                # would only feed the regex engine's backtracking
                text = text[:MAX_LINE]
            self._line(st, rec, _context(caller, ts), ts, text, now)

    def _join_piece(self, st: _DetectorStream, rec, now: float) -> bool:
        """A 'c' record (a KERN_CONT piece the kernel printed as a line of its own,
        e.g. the rest of a "Modules linked in:" list) continues the line before it
        in a report: join it there, so a report reads the same whether or not the
        kernel could merge the piece. True if joined."""
        text = rec.text
        ctx = _context(rec.caller, rec.ts_us)
        reps = st.open.get(ctx)
        if (not reps or st.last_ctx != ctx or rec.lost_before or "\n" in text
                or _HEADER(text) or text.startswith(_MARKERS)
                or text.startswith("------------[ cut here ]")):
            return False
        text = text[:MAX_LINE]
        for rep in reps:
            if len(rep.lines[-1]) + len(text) > MAX_LINE:
                return False
        for rep in reps:
            rep.lines[-1] += text
            if rep.desc_tail:
                rep.desc[-1] += text
            rep.nbytes += len(text)
            rep.last_time = now
            if rec.seq is not None:
                rep.last_seq = rec.seq
            if rec.incomplete:
                rep.incomplete = True
            if rep.ended:
                rep.grace_deadline = now + self.limits.grace_seconds
        st.last_time = now
        return True

    def _line(self, st: _DetectorStream, rec, ctx: str, ts, text: str, now: float) -> None:
        st.line_no += 1
        if st.open and text.startswith(_TERMINAL):
            # the machine stops or reboots now: every open report is over; the line
            # belongs to the ones that panicked (it may come from another CPU)
            for lst in list(st.open.values()):
                for rep in list(lst):
                    if rep.panicked or rep.ctx == ctx:
                        self._append(st, rep, ctx, ts, text, rec, now)
                    self._close(st, rep)
            return
        kind = _match_kind(text) if _HEADER(text) else None
        reps = st.open.get(ctx)
        if kind is not None:
            if st.open and kinds.START_IGNORES_ANY.search(text):
                # part of an open report (panic after an oops, x86 BUG's die line);
                # a follow-up panic may come from another context (CPU, task)
                targets = reps
                if not targets and _FOLLOWUP_PANIC(text):
                    targets = [max((r for lst in st.open.values() for r in lst),
                                   key=lambda r: r.last_time)]
                if targets:
                    for rep in list(targets):
                        self._append(st, rep, ctx, ts, text, rec, now)
                    return
            if reps:
                for rep in list(reps):
                    # With caller tags a report nested in another (a WARNING inside an
                    # RCU stall) leaves the outer one open; without them lines would mix.
                    if rep.ended or ctx in ("", "console") or len(reps) >= MAX_NESTED:
                        self._close(st, rep)
            if text.startswith("Booting the kernel"):
                self._close_all(st)
            if sum(len(lst) for lst in st.open.values()) >= self.limits.max_open:
                # too many contexts with open reports: the oldest is over (truncated)
                oldest = min((r for lst in st.open.values() for r in lst),
                             key=lambda r: r.last_time)
                oldest.truncated = True
                self._close(st, oldest)
            prefix = st.prefix.pop(ctx, ())
            rep = _Report(kind, ctx, text, prefix, rec, ts, now, st.line_no)
            st.open.setdefault(ctx, []).append(rep)
            due = now + min(self.limits.quiet_seconds, self.limits.max_age)
            if due < self._check_at:
                self._check_at = due
            self._append(st, rep, ctx, ts, text, rec, now)
            return
        if text.startswith("Linux version "):
            self._close_all(st)
            reps = None

        if reps and text.startswith("------------[ cut here ]"):
            # the next WARN/BUG begins: an ended report is over, the line is its prefix
            for rep in list(reps):
                if rep.ended:
                    self._close(st, rep)
            reps = st.open.get(ctx)
        if not reps and ctx.startswith("C") and st.open:
            reps = [r for lst in st.open.values() for r in lst if r.cpu_traceback]
        if not reps:
            self._keep_prefix(st, ctx, text)
            return
        if ctx in ("", "console"):
            for marker in kinds.INFO_WITH_STACK:
                if marker in text:
                    # another stack is coming: without caller tags it would mix in
                    for rep in list(reps):
                        self._close(st, rep)
                    self._keep_prefix(st, ctx, text)
                    return
        for rep in list(reps):
            self._append(st, rep, ctx, ts, text, rec, now)

    def _keep_prefix(self, st: _DetectorStream, ctx: str, text: str) -> None:
        """The last prefix_lines lines of a context outside any report. A list, not a
        deque(maxlen): a deque takes ~600 bytes however short, and a boot log shows
        dozens of contexts per host (10,000 idle hosts: bench/storm.py S2)."""
        buf = st.prefix.get(ctx)
        if buf is None:
            if len(st.prefix) >= self.limits.max_contexts:
                st.prefix.clear()
            buf = st.prefix[ctx] = []
        if text:
            buf.append(text)
            if len(buf) > self.limits.prefix_lines:
                del buf[0]

    def _close_all(self, st: _DetectorStream) -> None:
        for lst in list(st.open.values()):
            for rep in list(lst):
                self._close(st, rep)

    def _append(self, st, rep: _Report, ctx, ts, text: str, rec, now: float) -> None:
        # hot path: one call per line per open report
        rep.lines.append(text)
        rep.nbytes += len(text) + 1
        rep.last_time = now
        if ts is not None:
            if rep.first_ts is None:
                rep.first_ts = ts
            rep.last_ts = ts
        seq = rec.seq
        if seq is not None:
            if rep.first_seq is None:
                rep.first_seq = seq
            rep.last_seq = seq
        if rec.incomplete:
            rep.incomplete = True
        if rep.release is None and rec.release:
            rep.release = rec.release
        special = _SPECIAL(text)
        if special is not None and special.group() == "Kernel panic - not syncing":
            rep.panicked = True
        same = ctx == rep.ctx
        if same or (rep.cpu_traceback and ctx[:1] == "C"):
            if ctx and (("?" in text and _QUESTIONABLE(text) is not None)
                        or text.endswith(" (unreliable)")) and "<EOI>" not in text:
                rep.desc_tail = False   # unreliable frame: not for titles
            else:
                rep.text_lines += 1
                skip = rep.skip_text
                if special is not None:
                    word = special.group()
                    if word == "Disabling lock debugging due to kernel taint":
                        skip = True
                    elif word == "Sending NMI from CPU":
                        rep.cpu_traceback = True
                    elif rep.text_lines > rep.min_lines:
                        # the panic_on_warn stack / lockdep noise the oops itself caused
                        rep.skip_text = skip = True
                if (not skip and len(rep.desc) < MAX_DESC_LINES) or not rep.desc:
                    rep.desc.append(text)
                    rep.desc_tail = True
                else:
                    rep.desc_tail = False
        else:
            rep.desc_tail = False
        if same and text.startswith(_MARKERS):
            if text.startswith(_TERMINAL):
                self._close(st, rep)
                return
            if not rep.ended and rep.text_lines > 1:
                rep.ended = True
                rep.grace_left = self.limits.grace_lines + 1
                rep.grace_deadline = now + self.limits.grace_seconds
                if rep.grace_deadline < self._check_at:
                    self._check_at = rep.grace_deadline
        if rep.ended:
            rep.grace_deadline = now + self.limits.grace_seconds
        if same and rep.ended:
            rep.grace_left -= 1
            if rep.grace_left <= 0:
                self._close(st, rep)
                return
        if len(rep.lines) >= self.limits.max_lines or rep.nbytes >= self.limits.max_bytes:
            rep.truncated = True
            self._close(st, rep)

    def _close(self, st: _DetectorStream, rep: _Report, timeout: bool = False) -> None:
        lst = st.open.get(rep.ctx)
        if lst is None or rep not in lst:
            return
        lst.remove(rep)
        if not lst:
            del st.open[rep.ctx]
        try:
            inc = self._build(rep, timeout)
        except Exception:
            self.errors += 1
            return
        self._out.append(inc)

    def _build(self, rep: _Report, timeout: bool) -> Incident:
        text = "\n".join(rep.desc) + "\n"
        d = _describe.describe(text, rep.kind)
        type_ = kinds.title_to_type(d.title)
        calls = _frames.call_trace(rep.desc)
        truncated = rep.truncated or rep.lost > 0 or rep.incomplete
        if timeout and not rep.ended and (rep.restored or (not calls and d.corrupted)):
            truncated = True
        corrupted = d.corrupted or rep.lost > 0 or rep.incomplete
        inc = Incident(
            host=rep.host, type=type_, title=d.title,
            signature=signature(type_, d.title),
            text="\n".join(rep.lines), first_line=_clean(rep.first_line, MAX_LINE),
            alt_titles=list(d.alt_titles), boot=rep.boot, corrupted=corrupted,
            truncated=truncated, panicked=rep.panicked,
            release=_clean(rep.release, 128) if rep.release else rep.release,
            frames=calls, first_seq=rep.first_seq, last_seq=rep.last_seq,
            first_ts_us=rep.first_ts, last_ts_us=rep.last_ts, first_time=rep.first_time,
            last_time=rep.last_time, lost_records=rep.lost)
        inc.line_no = rep.line_no
        _fill_fields(inc, rep.lines)
        return inc


_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def _clean(value: str, limit: int) -> str:
    """Short fields (comm, hardware ...) are untrusted text: no control chars, bounded."""
    return _CONTROL.sub("?", value)[:limit]


def _fill_fields(inc: Incident, lines: List[str]) -> None:
    modules: List[str] = []
    for ln in lines:
        if inc.cpu is None and "CPU: " in ln:
            m = _CPU_LINE.search(ln)
            if m:
                inc.cpu, inc.pid = int(m.group(1)), int(m.group(2))
                inc.comm = _clean(m.group(3), 64)
                taint = m.group(4)
                inc.taint = "" if taint == "Not tainted" else taint[len("Tainted: "):].replace(" ", "")
                if inc.release is None:
                    inc.release = _clean(m.group(5), 128)
                continue
        if inc.hardware is None and ln.startswith("Hardware name: "):
            inc.hardware = _clean(_HARDWARE.match(ln).group(1).strip(), 200)
            continue
        if inc.pc is None:
            m = _PC.match(ln)
            if m:
                inc.pc = _clean(m.group(1).strip(), 200)
                continue
        if not modules and "Modules linked in:" in ln:
            rest = _MODULES.search(ln).group(1)
            for word in rest.split():
                m = _MODULE_NAME.match(word)
                if m:
                    modules.append(m.group(1))
    inc.modules = modules
