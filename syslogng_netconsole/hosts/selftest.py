"""The sender self-test record: one line a sender writes to its own kernel log
(``syslogng-netconsole sender-test``) so that an operator can see it arrive at the
collector.

The record's text (what /dev/kmsg gets after the ``<level>`` prefix, and what the
collector's decoded record holds) is::

    netconsole-selftest: id=<8-32 letters/digits> host=<name> time=<unix seconds>

``MARKER`` is the one definition of the prefix: the sender builds the line with
``record()``, the collector recognises it with ``parse()``. Written from user space,
the record has the user facility (extended level 13 for notice), never the kernel's.
Pure: no clock (the caller passes the time), no I/O.
"""

import re
from typing import Dict, Optional, Union

from .names import valid_name

MARKER = "netconsole-selftest:"
# the level sender-test writes at by default (notice); see sender-test --level
DEFAULT_LEVEL = 5
_ID = re.compile(r"[A-Za-z0-9]{8,32}\Z")
_TIME = re.compile(r"[0-9]{1,12}\Z")
MAX_TEXT = 256


def record(test_id: str, host: Optional[str], when: Union[int, float]) -> str:
    """The record's text (no level prefix, no newline). Raises ValueError for an id
    or a host name that parse() would refuse."""
    if not _ID.match(test_id or ""):
        raise ValueError("selftest id %r: 8-32 letters or digits" % (test_id,))
    parts = [MARKER, "id=%s" % test_id]
    if host:
        if not valid_name(host):
            raise ValueError("host name %r: letters, digits, '.', '_', '-', at most 64"
                             % (host,))
        parts.append("host=%s" % host)
    parts.append("time=%d" % int(when))
    return " ".join(parts)


def kmsg_line(text: str, level: int = DEFAULT_LEVEL) -> bytes:
    """What to write to /dev/kmsg: ``<level>text\\n`` (one write = one record)."""
    if not 0 <= level <= 7:
        raise ValueError("level %r: 0-7" % (level,))
    return ("<%d>%s\n" % (level, text)).encode("ascii")


def parse(text) -> Optional[Dict[str, object]]:
    """{"id": str, "host": str or None, "time": int or None} for a self-test
    record's text (leading whitespace and a trailing newline allowed; other keys
    are ignored), None for anything else, a malformed value included."""
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    if not isinstance(text, str) or len(text) > MAX_TEXT:
        return None
    text = text.strip()
    if not text.startswith(MARKER):
        return None
    fields = {}
    for word in text[len(MARKER):].split():
        key, sep, value = word.partition("=")
        if not sep or key in fields:
            return None
        fields[key] = value
    test_id = fields.get("id")
    if test_id is None or not _ID.match(test_id):
        return None
    host = fields.get("host")
    if host is not None and not valid_name(host):
        return None
    when = fields.get("time")
    if when is not None and not _TIME.match(when):
        return None
    return {"id": test_id, "host": host, "time": int(when) if when is not None else None}
