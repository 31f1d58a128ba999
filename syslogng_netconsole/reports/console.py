"""Console-line prefixes: "<6>", "[   12.345678]", "[  T123]" / "[    C1]".

``parse_console_line`` is the one place that understands them, for text
input (console captures, dmesg, plain netconsole with printk.time=1).
"""

import re
from typing import Optional, Tuple

# <level>? [sec.usec]? [T123|C1]? then one space. The syzkaller console regex
# also allows "** N printk messages dropped ** " and "... login: " in front.
_PREFIX = re.compile(
    r"(?:<(\d{1,3})>)?(?:\[ *(\d+)\.(\d+)\])?(?:\[ *([CT]\d+)\])? ?")
_NOISE = re.compile(r"^(?:\*\* \d+ printk messages dropped \*\* )?(?:.* login: )?(?=[<\[])")


_TS = re.compile(r"\[ *(\d+)\.(\d+)\](?:\[ *([CT]\d+)\])? ?")


def parse_console_line(line: str) -> Tuple[Optional[int], Optional[str], str]:
    """(kernel timestamp in µs or None, caller tag like "T123" or None, text)."""
    if not line:
        return None, None, line
    if line[-1] == "\r":
        line = line[:-1]
        if not line:
            return None, None, line
    c = line[0]
    if c == "[":
        m = _TS.match(line)  # the common "[  12.345678][ T123] " case
        if m is not None:
            sec, frac, caller = m.groups()
            return int(sec) * 1000000 + int((frac + "000000")[:6]), caller, line[m.end():]
    elif c != "<":
        if "** " not in line and " login: " not in line:
            return None, None, line
    return _parse_slow(line)


def _parse_slow(line: str) -> Tuple[Optional[int], Optional[str], str]:
    start = 0
    if line[0] not in "<[":
        m = _NOISE.match(line)
        if m is None or m.end() == 0:
            return None, None, line
        start = m.end()
    m = _PREFIX.match(line, start)
    level, sec, frac, caller = m.groups()
    if sec is None and caller is None:
        if level is None:
            return None, None, line
        # "<6>text": a bare level prefix
        return None, None, line[start + len(level) + 2:]
    ts = None
    if sec is not None:
        ts = int(sec) * 1000000 + int((frac + "000000")[:6])
    return ts, caller, line[m.end():]
