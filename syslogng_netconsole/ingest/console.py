"""The printk console-line prefix, the one grammar: "<6>", "[   12.345678]",
"[  T123]" / "[    C1]", then one blank.

Used on datagrams (bytes: plain netconsole, by ``wire.parse_plain_line``) and on
text input (str: console captures, dmesg, by ``parse_console_line``). Pure.

"<N>" is a syslog PRI, facility * 8 + level. printk keeps the facility in a u8
and /dev/kmsg writers may set any facility (LOG_LOCAL0 and beyond), so N goes up
to 2047: four digits.
"""

import re
from typing import Optional, Tuple, Union

_PREFIX = r"(?:<(\d{1,4})>)?(?:\[ *(\d{1,12})\.(\d{1,9})\])?(?:\[ *([TC]\d{1,10})\])?"
_PREFIX_B = re.compile(_PREFIX.encode())
_PREFIX_S = re.compile(_PREFIX)
# a line that starts a new record (tells a cut plain line's continuation apart)
_NEW_RECORD = re.compile(rb"<\d{1,4}>|\[ *\d{1,12}\.\d{1,9}\]|\*\* \d")
DROPPED = re.compile(rb"\*\* (\d{1,12}) printk messages dropped \*\*")
# in text input, in front of the prefix (as the syzkaller console regex allows)
_NOISE = re.compile(r"^(?:\*\* \d+ printk messages dropped \*\* )?(?:.* login: )?(?=[<\[])")


def split_prefix(line: Union[bytes, str], start: int = 0
                 ) -> Tuple[Optional[int], Optional[int], Optional[str], int]:
    """(level, ts_us, caller, end) of the prefix at line[start:]; the text begins
    at `end` (after the blank that follows a timestamp or caller tag)."""
    m = (_PREFIX_B if line.__class__ is bytes else _PREFIX_S).match(line, start)
    pri, sec, frac, caller = m.groups()
    pos = m.end()
    ts = None
    if sec is not None:
        # %06lu microseconds; scale anything else to microseconds
        n = len(frac)
        f = int(frac)
        ts = int(sec) * 1000000 + (f if n == 6 else (f * 10 ** (6 - n) if n < 6 else f // 10 ** (n - 6)))
    if caller is not None and caller.__class__ is bytes:
        caller = caller.decode("ascii")
    if (sec is not None or caller is not None) and line[pos:pos + 1] in (b" ", " "):
        pos += 1
    return (int(pri) if pri is not None else None), ts, caller, pos


def starts_record(line: bytes) -> bool:
    """True when a plain datagram line begins with a printk prefix (a new record)."""
    return _NEW_RECORD.match(line) is not None


def parse_console_line(line: str) -> Tuple[Optional[int], Optional[str], str]:
    """A text-input line -> (kernel timestamp in µs or None, caller tag like "T123"
    or None, text). A trailing CR goes; a bare "<6>" level is stripped."""
    if not line:
        return None, None, line
    if line[-1] == "\r":
        line = line[:-1]
        if not line:
            return None, None, line
    start = 0
    if line[0] not in "<[":
        if "** " not in line and " login: " not in line:
            return None, None, line
        m = _NOISE.match(line)
        if m is None or m.end() == 0:
            return None, None, line
        start = m.end()
    level, ts, caller, pos = split_prefix(line, start)
    if ts is None and caller is None and level is None:
        return None, None, line
    return ts, caller, line[pos:]
