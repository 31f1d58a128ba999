"""Title, alternative titles and corrupted flag of one finished report.

Follows syzkaller's extractDescription / isCorrupted (pkg/report,
google/syzkaller, Apache License 2.0): the format whose title regex matches
earliest in the report text wins; its captures and extracted frames fill the
title template; a report without the stack its format needs is corrupted.
"""

import re
from typing import List, NamedTuple, Optional, Tuple

from . import frames as _frames
from . import kinds, titles

_TS_IN_TITLE = re.compile(r"\[ *[0-9]+\.[0-9]+\]")


class Description(NamedTuple):
    title: str
    alt_titles: List[str]
    corrupted: bool
    reason: str
    fmt: Optional[kinds.Format]


REPORT_WINDOW = 200  # lines after the title line a report regex may look at
REPORT_TIMEOUT = 0.5  # seconds one report regex may run (regex module); then: no match


def _report_match(pattern, text: str, pos: int, end: int):
    if kinds._regex is None or not isinstance(pattern, kinds._regex.Pattern):
        return pattern.match(text, pos, end)
    try:
        return pattern.match(text, pos, end, timeout=REPORT_TIMEOUT)
    except TimeoutError:
        return None


def _window_end(text: str, pos: int) -> int:
    for _ in range(REPORT_WINDOW):
        pos = text.find("\n", pos + 1)
        if pos < 0:
            return len(text)
    return pos + 1


def _partially_stripped(prefix, frames) -> List[List[str]]:
    out = []
    for i in range(len(kinds.STRIP_FRAME_PREFIXES) + 1):
        add = i == 0
        strip = kinds.STRIP_FRAME_PREFIXES[i - 1] if i else ""
        lst = []
        for _, raw in frames:
            trimmed = raw[len(strip):] if strip and raw.startswith(strip) else raw
            if trimmed != raw:
                add = True
            lst.append(trimmed)
        if add:
            out.append(list(prefix) + lst)
    return out


def _format(template: str, args) -> str:
    try:
        return template.format(*args)
    except (IndexError, KeyError, ValueError):
        return template


def extract_description(text: str, kind: kinds.Kind) -> Description:
    desc = ""
    corrupted = ""
    alts: List[str] = []
    fmt_used: Optional[kinds.Format] = None
    start = len(text)
    matched_title = False
    for f in kind.formats:
        m = f.title.search(text)
        if m is None or m.start() > start:
            continue
        if m.start() == start and desc:
            continue
        if m.start() < start:
            # alt titles of a later-matching format are kept (as syzkaller does)
            desc, fmt_used, start = "", None, m.start()
        matched_title = True
        if f.report is not None:
            # anchored at the title and within a window of lines: same result on
            # real reports, bounded work on hostile ones
            m = _report_match(f.report, text, m.start(), _window_end(text, m.start()))
            if m is None:
                continue
        prefix = [g if g is not None else "" for g in m.groups()]
        frames: List[Tuple[str, str]] = []
        corrupted = ""
        if f.stack is not None:
            frames, ok = _frames.extract_stack_frames(f.stack, text[m.start():])
            if not ok:
                corrupted = "extracted no frames"
        args = prefix + [c for c, _ in frames]
        desc = _format(f.fmt, args)
        alts.extend(_format(a, args) for a in f.alt)
        for seq in _partially_stripped(prefix, frames):
            alt = _format(f.fmt, seq)
            if alt != desc:
                alts.append(alt)
            alts.extend(_format(a, seq) for a in f.alt)
        seen = set()
        alts = [a for a in alts if not (a in seen or seen.add(a))]
        fmt_used = f
    if not desc:
        if matched_title:
            corrupted = "matched title but not report regexp"
        pos = text.find(kind.header)
        if pos < 0:
            pos = 0
        end = text.find("\n", pos)
        desc = text[pos:end if end >= 0 else len(text)]
    if not corrupted and fmt_used is not None and fmt_used.corrupted:
        corrupted = "report format is marked as corrupted"
    return Description(desc, alts, bool(corrupted), corrupted, fmt_used)


def is_corrupted(title: str, text: str, fmt: Optional[kinds.Format]) -> Tuple[bool, str]:
    if _TS_IN_TITLE.search(title):
        return True, "title matches corrupted regexp"
    if fmt is None or fmt.no_stack:
        return False, ""
    has_stack = False
    for key in kinds.STACK_START:
        m = key.search(text)
        if m is None:
            continue
        lines = text[m.start():].split("\n")
        if len(lines) < 4:
            return True, "call trace is missed"
        corrupted = True
        for ln in lines[1:16]:
            if kinds.STACK_START_ANY.search(ln):
                break
            if "(stack is not available)" in ln or any(r.search(ln) for r in kinds.FRAME_RES):
                has_stack = True
                corrupted = False
                break
        if key is not kinds.RISCV_STACK_START and corrupted:
            return True, "no frames in a stack trace"
    if not has_stack:
        return True, "no stack trace in report"
    return False, ""


def describe(text: str, kind: kinds.Kind) -> Description:
    """Full pipeline: raw description, corruption checks, normalised titles."""
    d = extract_description(text, kind)
    corrupted, reason = d.corrupted, d.reason
    if not corrupted:
        corrupted, reason = is_corrupted(d.title, text, d.fmt)
    title = titles.normalize(d.title)
    alts = []
    for a in d.alt_titles:
        a = titles.normalize(a)
        if a not in alts:
            alts.append(a)
    return Description(title, alts, corrupted, reason, d.fmt)
