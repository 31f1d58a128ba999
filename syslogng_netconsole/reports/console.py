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


def parse_console_line(line: str) -> Tuple[Optional[int], Optional[str], str]:
    """(kernel timestamp in µs or None, caller tag like "T123" or None, text)."""
    if line.endswith("\r"):
        line = line[:-1]
    if not line:
        return None, None, line
    c = line[0]
    start = 0
    if c != "<" and c != "[":
        if "** " not in line and " login: " not in line:
            return None, None, line
        m = _NOISE.match(line)
        if m is None or m.end() == 0:
            return None, None, line
        start = m.end()
    m = _PREFIX.match(line, start)
    level, sec, frac, caller = m.groups()
    if sec is None and caller is None:
        if level is None:
            return None, None, line
        # "<6>text": a bare level prefix (no space follows it)
        return None, None, line[start + len(level) + 2:]
    end = m.end()
    if end == len(line) or line[end - 1] == " ":
        text = line[end:]
    else:
        text = line[end:]
    ts = None
    if sec is not None:
        ts = int(sec) * 1000000 + int((frac + "000000")[:6])
    return ts, caller, text
