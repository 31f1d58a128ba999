"""Record <-> syslog-ng name-value pairs, both directions: the one list.

The source posts a Record as MESSAGE (text), HOST (sender) and pairs under
``.netconsole.``; the incidents destination rebuilds the part of the Record the
detector reads from those pairs. ``PAIRS`` below is the only place the names live:
the SCL block's ``value-pairs()`` list is checked against ``DEST_KEYS`` by a test.

Pure: no syslogng import (the glue passes LogMessage objects or value-pairs dicts).
"""

import json
import operator
import re
from typing import List, Optional, Tuple

from ..alerts.sanitize import printable
from ..incidents.incident import Incident
from ..incidents.store import incident_from_dict
from ..ingest import wire
from ..ingest.records import EXTENDED, PLAIN, Record

PREFIX = ".netconsole."
DEFAULT_SEVERITY = 5              # plain records carry no level: kern.notice
_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def _flag(v) -> bool:
    return v is True or str(v).lower() in ("1", "true", "yes")


# Record attribute -> how it is posted and read back.
#   NUMBER: decimal string; TEXT: NUL made visible (3.38 cuts values at NUL)
#   dest=True: the incidents destination reads it back (value-pairs() selects it)
NUMBER_PAIRS = ("seq", "ts_us", "level", "boot", "lost_before", "fragments", "continued",
                "src_port", "dst_port")
TEXT_PAIRS = ("format", "flags", "caller", "release")
# what the detector reads: .netconsole.<name> -> (Record attribute, converter)
DEST_FIELDS = {
    "format": ("format", str), "seq": ("seq", int), "ts_us": ("ts_us", int),
    "caller": ("caller", str), "release": ("release", str), "boot": ("boot", int),
    "lost_before": ("lost_before", int), "incomplete": ("incomplete", _flag),
    "src_port": ("src_port", int), "dst_port": ("dst_port", int),
}
# An incident message (the source's detect("yes")) carries the whole Incident as JSON
# in this pair, and a few fields of it for native filters and destinations.
INCIDENT = "incident"
INCIDENT_PAIRS = ("incident_type", "incident_title", "signature", "panicked")
INCIDENT_PRI = 2                  # kern.crit
# the SCL value-pairs() keys of the incidents destination, in order
DEST_KEYS = ("MESSAGE", "HOST") + tuple(PREFIX + n for n in DEST_FIELDS) + (PREFIX + INCIDENT,)

_NUMBERS_OF = operator.attrgetter(*NUMBER_PAIRS)  # one C call per record (hot path)
_TEXTS_OF = operator.attrgetter(*TEXT_PAIRS)
_READ = tuple((PREFIX + name, attr, conv) for name, (attr, conv) in DEST_FIELDS.items())


def visible_nul(s: str) -> str:
    # 3.38 cuts values at NUL; the core keeps undecodable bytes visible, keep NUL visible too
    return s.replace("\x00", "\\x00") if "\x00" in s else s


def message_pairs(rec: Record) -> List[Tuple[str, str]]:
    """(name, value) pairs posted under .netconsole. for a Record, all str."""
    out = [(n, str(v)) for n, v in zip(NUMBER_PAIRS, _NUMBERS_OF(rec)) if v is not None]
    out += [(n, visible_nul(v)) for n, v in zip(TEXT_PAIRS, _TEXTS_OF(rec)) if v]
    out.append(("incomplete", "1" if rec.incomplete else "0"))
    fields = rec.fields
    if fields:
        for i, (key, value) in enumerate(fields.items()):
            if i >= wire.MAX_FIELDS:
                break
            name = _KEY_UNSAFE.sub("_", key)[:80]
            if name in TEXT_PAIRS and getattr(rec, name):
                continue  # e.g. the release prefix already set .netconsole.release
            out.append((name, visible_nul(value)))
    out.append(("dmesg", rec.dmesg()))          # the per-host log's text, NUL escaped
    return out


def record_pri(rec: Record) -> int:
    fac = rec.facility if rec.facility is not None else 0
    sev = rec.severity if rec.severity is not None else DEFAULT_SEVERITY
    return (int(fac) & 0x7F) * 8 + (int(sev) & 7)


# -- pairs -> Record (the incidents destination) ------------------------------

def _value(v) -> Optional[str]:
    """bytes (3.38, value-pairs) or typed (4.x) -> str; '' and None = missing."""
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("utf-8", "backslashreplace")
    elif isinstance(v, bool):
        v = "1" if v else "0"
    elif not isinstance(v, str):
        v = str(v)
    return v if v != "" else None


def _get(msg, key: str) -> Optional[str]:
    """A value as str, None when missing: 3.38 gives b'' for missing names,
    4.x strict raises KeyError, value-pairs dicts lack the key, 4.x values may be typed."""
    try:
        return _value(msg[key])
    except (KeyError, IndexError, TypeError):
        return None


def record_from_message(msg, now: float) -> Record:
    """Rebuild the source's Record (the parts the detector reads) from a
    value-pairs dict or a LogMessage. Hot path: one lookup and one conversion
    per field, nothing else."""
    get = msg.get if isinstance(msg, dict) else (lambda k: _get(msg, k))
    host = _get(msg, "HOST") or _get(msg, "SOURCEIP") or "unknown"
    rec = Record(host=host, text=_get(msg, "MESSAGE") or "", recv_time=now)
    for key, attr, conv in _READ:
        v = get(key)
        if v is None or v == b"" or v == "":
            continue
        try:
            if v.__class__ is bytes:
                v = v.decode("utf-8", "backslashreplace")
            setattr(rec, attr, conv(v))
        except (ValueError, TypeError, AttributeError):
            pass                        # a malformed field is left at its default
    if rec.format != EXTENDED:
        rec.format = PLAIN
    return rec


# -- Incident <-> message (detection in the source) ---------------------------------

def incident_pairs(inc: Incident) -> List[Tuple[str, str]]:
    """(name, value) pairs under .netconsole. of an incident message; ASCII JSON, so
    no NUL and no control character reaches a value."""
    return [(INCIDENT, json.dumps(inc.to_dict(), sort_keys=True)),
            ("incident_type", printable(inc.type, 40)), ("incident_title", printable(inc.title, 200)),
            ("signature", printable(inc.signature, 64)), ("panicked", "1" if inc.panicked else "0")]


def incident_text(inc: Incident) -> str:
    """MESSAGE of an incident message: one printable line."""
    return printable("kernel incident: %s%s" % (inc.title, " (panicked)" if inc.panicked else ""), 300)


def incident_from_message(msg) -> Optional[Incident]:
    """The Incident an incident message carries; None for a record message.
    ValueError when the pair is there but is not an incident."""
    v = msg.get(PREFIX + INCIDENT) if isinstance(msg, dict) else _get(msg, PREFIX + INCIDENT)
    if v.__class__ is bytes:
        v = v.decode("utf-8", "backslashreplace")
    if not v:
        return None
    d = json.loads(v)
    if not isinstance(d, dict) or not d.get("host") or not d.get("signature"):
        raise ValueError("not an incident")
    return incident_from_dict(d)
