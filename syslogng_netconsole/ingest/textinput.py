"""Plain kernel text as Records: serial console logs, `dmesg` output (with or
without `[ts]` prefixes), /dev/kmsg dumps, kern.log / journal lines, and the
per-host files the drop-in writes (one dmesg-style line per record).

Each input line becomes one Record of one host (the file name without its
extension: the drop-in names per-host files after the sender). Pure: no clock
reads; the caller gets a synthetic `now` per record from the kernel timestamp.
"""

import gzip
import io
import os
import re
from typing import Iterable, Iterator, Optional, Tuple

from syslogng_netconsole.ingest.records import EXTENDED, INCOMPLETE_MARK, PLAIN, Record
from syslogng_netconsole.ingest.console import parse_console_line

# Wrappers around the kernel line, stripped before parse_console_line():
# (name, pattern); the first match wins and group "rest" is the kernel line.
_WRAPPERS = [
    # kern.log / syslog: "Nov 27 12:00:01 host kernel: [   1.234] text"
    ("syslog", re.compile(r"^[A-Z][a-z]{2} [ \d]\d \d\d:\d\d:\d\d(?:\.\d+)? \S+ kernel: (?P<rest>.*)$")),
    # RFC 3339 syslog / journalctl -o short-iso: "2026-11-27T12:00:01+00:00 host kernel: text"
    ("iso", re.compile(r"^\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:[.,]\d+)?(?:Z|[+-]\d\d:?\d\d)? \S+ kernel: (?P<rest>.*)$")),
]

# /dev/kmsg record: "LEVEL,SEQ,TS_US,FLAG[,more];text"
_KMSG = re.compile(r"^(?P<level>\d+),(?P<seq>\d+),(?P<ts>\d+),(?P<flag>[-c+])[^;]*;(?P<text>.*)$")


TEXT_EXTENSIONS = (".log", ".txt", ".out", ".console", ".dmesg")


def host_from_path(path: str) -> str:
    """`/var/log/netconsole/10.0.0.5.log` -> `10.0.0.5`; `-` -> `stdin`."""
    if path == "-":
        return "stdin"
    name = os.path.basename(path)
    for ext in (".gz",) + TEXT_EXTENSIONS:
        if name.endswith(ext) and len(name) > len(ext):
            name = name[: -len(ext)]
    return name


def open_text(path: str):
    """A text stream for a plain or gzip-compressed file; bad bytes kept as escapes."""
    with open(path, "rb") as f:
        gz = f.read(2) == b"\x1f\x8b"
    raw = gzip.open(path, "rb") if gz else open(path, "rb")
    return io.TextIOWrapper(raw, encoding="utf-8", errors="backslashreplace", newline=None)


def parse_line(line: str) -> Tuple[Optional[int], Optional[str], str, dict]:
    """One line of text -> (ts_us, caller, text, extras). extras may hold
    seq/level/flags when the line is a /dev/kmsg record."""
    for _name, rx in _WRAPPERS:
        m = rx.match(line)
        if m:
            line = m.group("rest")
            break
    m = _KMSG.match(line)
    if m:
        extras = {"seq": int(m.group("seq")), "level": int(m.group("level")),
                  "flags": m.group("flag"), "format": EXTENDED}
        return int(m.group("ts")), None, m.group("text"), extras
    ts_us, caller, text = parse_console_line(line)
    return ts_us, caller, text, {}


def records_from_lines(lines: Iterable[str], host: str) -> Iterator[Record]:
    """Records of one host from text lines (trailing newlines and CRs dropped).

    /dev/kmsg dictionary lines (starting with a space after a kmsg record) are skipped.
    ``recv_time`` is the kernel timestamp in seconds, kept rising across reboots
    (a timestamp going back continues from the last one), or the line number / 1000
    when lines have none: the detector's timeouts then behave as they would have live.
    """
    base = 0.0              # added to ts after a reboot so time keeps rising
    last_ts = None
    now = 0.0
    kmsg = False
    for n, line in enumerate(lines):
        line = line.rstrip("\r\n").replace("\r", "")
        if kmsg and line.startswith(" "):
            continue        # kmsg dictionary line (SUBSYSTEM=, DEVICE=)
        incomplete = line.endswith(INCOMPLETE_MARK)
        if incomplete:
            line = line[: -len(INCOMPLETE_MARK)]
        ts_us, caller, text, extras = parse_line(line)
        kmsg = bool(extras)
        if ts_us is not None:
            t = ts_us / 1e6
            if last_ts is not None and t + base < last_ts:
                base = last_ts - t + 1.0
            last_ts = t + base
            now = max(now, last_ts)
        else:
            now += 0.001
        rec = Record(host=host, text=text, format=extras.get("format", PLAIN),
                     recv_time=now, ts_us=ts_us, caller=caller,
                     seq=extras.get("seq"), level=extras.get("level"),
                     flags=extras.get("flags", ""), incomplete=incomplete)
        if rec.level is not None:
            rec.facility, rec.severity = rec.level >> 3, rec.level & 7
        yield rec
