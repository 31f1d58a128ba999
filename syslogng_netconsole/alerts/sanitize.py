"""Make untrusted kernel text safe for mail headers, bodies, labels and file names.

Netconsole is unauthenticated UDP: any text in an incident may be hostile. The
email package raises on CR/LF in headers (the alert would be lost) and lets other
control bytes through, so everything is cleaned here first. Pure functions.
"""

import re
import unicodedata

HEADER_CAP = 200
LINE_CAP = 1000
BODY_CAP = 64 * 1024

_WS = re.compile(r"\s+")


def _is_control(ch):
    # Cc, Cf, Cs, Co, Cn: NUL, ESC, DEL, bidi overrides, surrogates, unassigned
    return unicodedata.category(ch)[0] == "C"


def as_text(value):
    """bytes/None/anything -> str, never raising (bad UTF-8 is replaced)."""
    if value is None:
        return ""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def cap(s, limit, marker="..."):
    if len(s) <= limit:
        return s
    return s[: max(0, limit - len(marker))] + marker


def one_line(value, limit=HEADER_CAP):
    """A single line for a mail header, subject or label: control characters
    (CR, LF, NUL, U+2028 ...) become spaces, whitespace runs collapse, length capped."""
    s = as_text(value)
    if not s.isprintable():     # fast path: printable text has no C* and no space but ' '
        s = "".join(" " if (_is_control(c) or c.isspace()) else c for c in s)
    s = _WS.sub(" ", s).strip()
    return cap(s, limit)


def printable(value, limit=160):
    """Text for one terminal or log line: every non-printable character (newline,
    ESC, bidi overrides ...) becomes a space, then the length is cut."""
    s = str(value)
    if not s.isprintable():
        s = "".join(c if c.isprintable() else " " for c in s)
    return s[:limit]


def header(value, limit=HEADER_CAP):
    """A mail header value: ``one_line`` plus no RFC 2047 encoded-word opener, so
    '=?utf-8?q?=0D=0ABcc:...?=' cannot decode to CR/LF in a mail reader."""
    return one_line(one_line(value, limit).replace("=?", "= ?"), limit)


def multi_line(value, limit=BODY_CAP, line_limit=LINE_CAP):
    """Body text: keeps line breaks and tabs, removes other control characters,
    normalises CR/LF, caps every line and the whole text."""
    s = as_text(value).replace("\r\n", "\n").replace("\r", "\n")
    out = []
    total = 0
    for line in s.split("\n"):
        if not line.isprintable():
            line = "".join(c if (c == "\t" or not _is_control(c)) else " " for c in line)
        line = cap(line.rstrip(), line_limit)
        total += len(line) + 1
        if total > limit:
            out.append("[... truncated ...]")
            break
        out.append(line)
    return "\n".join(out)


_FILE_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


def file_name(value, limit=100):
    """A string usable as one path component: no separators, no leading dot."""
    s = _FILE_UNSAFE.sub("_", as_text(value)).lstrip(".") or "_"
    return s[:limit]
