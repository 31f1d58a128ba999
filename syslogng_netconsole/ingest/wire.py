"""Netconsole wire decoding: one datagram (or one reassembled body) -> parts.

Pure functions, no state, no clock. The reassembler calls `parse_extended()`
on every datagram (None means plain format), then, once a record is whole,
`decode_ext_body()` for extended records or `parse_plain_line()` per plain line
(its prefix grammar is console.py's).
Spec: ../shared/docs/netconsole-wire.md sections 2-4.
"""

import re
from typing import Dict, Optional, Tuple, Union

from . import console

# netconsole's MAX_PRINT_CHUNK: a plain datagram this long that does not end
# in a newline was cut by the sender and continues in the next datagram
MAX_PRINT_CHUNK = 1000
_I64 = 1 << 63

# [release ","] level "," seq "," ts "," flag *("," field) ";"
# The release charset excludes blanks so a plain line fails at its first space.
_EXT = re.compile(
    rb"(?:([^,;\s]{1,64}),)?(\d{1,4}),(\d{1,20}),(\d{1,20}),([-c+])((?:,[^;\n]{0,1000})?);")
_CALLER = re.compile(rb"[TC]\d{1,10}\Z")
_KEY_BAD = re.compile(r"[^A-Za-z0-9_.-]")
# control characters other than newline and tab are shown as \xNN
_CTRL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")

# fields kept per record; further ` key=value` lines stay visible in the text
MAX_FIELDS = 64
_FLAGS = {b"-": "-", b"c": "c", b"+": "+"}
# netconsole-appended sysdata keys (sent after userdata, in this order)
SYSDATA_KEYS = frozenset(("cpu", "taskname", "release", "msgid"))
# dictionary keys from dev_printk (escaped like the text), field name
_DICT_KEYS = {b"SUBSYSTEM": "subsystem", b"DEVICE": "device"}

# "\xNN" escape -> byte, indexed by the two hex digits (both cases)
_HEX = {}
for _i in range(256):
    for _h in {"%02x" % _i, "%02X" % _i, "%x%X" % divmod(_i, 16), "%X%x" % divmod(_i, 16)}:
        _HEX[_h.encode()] = bytes((_i,))
del _i, _h


class ExtPiece:
    """The parsed header of one extended datagram plus its raw (escaped) body."""
    __slots__ = ("release", "level", "seq", "ts_us", "flag", "caller",
                 "frag_off", "frag_total", "body")

    def __init__(self, release, level, seq, ts_us, flag, caller, frag_off, frag_total, body):
        self.release = release          # str or None
        self.level = level              # int
        self.seq = seq                  # int
        self.ts_us = ts_us              # int
        self.flag = flag                # "-", "c" or "+"
        self.caller = caller            # "T123" / "C1" or None
        self.frag_off = frag_off        # int or None (not fragmented)
        self.frag_total = frag_total    # int or None
        self.body = body                # bytes after the ';'


def parse_extended(payload: bytes) -> Union[None, str, ExtPiece]:
    """Parse an extended-format datagram.

    Returns None when the payload is not extended format (treat it as plain),
    an ExtPiece, or a str naming why a datagram with an extended header is
    invalid (the caller counts it as dropped_<reason>).
    """
    m = _EXT.match(payload)
    if m is None:
        return None
    release, level, seq, ts, flag, extra = m.groups()
    seq = int(seq)
    ts = int(ts)
    if seq >= _I64 or ts >= _I64:
        return "bad_header"
    caller = None
    off = total = None
    if extra:
        for item in extra[1:].split(b","):
            k, _, v = item.partition(b"=")
            if k == b"ncfrag":
                if total is not None:
                    return "bad_ncfrag"     # repeated ncfrag (netconsd heap overflow)
                o, sep, t = v.partition(b"/")
                if not (sep and o.isdigit() and t.isdigit() and len(o) < 7 and len(t) < 7):
                    return "bad_ncfrag"
                off = int(o)
                total = int(t)
            elif k == b"caller":
                caller = v.decode("ascii") if _CALLER.match(v) else to_text(v)
            # unknown fields: ignored, as the dev-kmsg ABI asks
    body = payload[m.end():]
    if total is not None and (off >= total or off + len(body) > total):
        return "bad_ncfrag"
    return ExtPiece(to_text(release) if release is not None else None, int(level), seq, ts,
                    _FLAGS[flag], caller, off, total, body)


def unescape(data: bytes) -> bytes:
    """Undo the kernel's \\xNN escaping (one pass: an escaped backslash stays literal)."""
    if b"\\x" not in data:
        return data
    parts = data.split(b"\\x")
    out = [parts[0]]
    hexmap = _HEX
    for p in parts[1:]:
        b = hexmap.get(p[:2])
        if b is None:
            out.append(b"\\x")      # not an escape: keep as sent
            out.append(p)
        else:
            out.append(b)
            out.append(p[2:])
    return b"".join(out)


def _ctrl_repl(m):
    return "\\x%02x" % ord(m.group())


def to_text(data: bytes) -> str:
    """Bytes -> str: invalid UTF-8 and control bytes kept visibly as \\xNN."""
    s = data.decode("utf-8", "backslashreplace")
    if _CTRL.search(s) is not None:
        s = _CTRL.sub(_ctrl_repl, s)
    return s


def field_key(key: bytes) -> str:
    """A userdata key made safe for a name-value pair name."""
    s = key[:64].decode("ascii", "replace")
    if _KEY_BAD.search(s) is not None:
        s = _KEY_BAD.sub("_", s)
    return s or "_"


def decode_ext_body(body: bytes) -> Tuple[str, Dict[str, str]]:
    """A whole extended body -> (text, fields).

    The text ends at the first raw newline and is unescaped; then come
    ` KEY=value` lines: SUBSYSTEM/DEVICE (escaped), userdata and sysdata (raw).
    At most MAX_FIELDS fields are kept.
    A sysdata key seen twice (userdata `cpu=1`, then sysdata `cpu=42`) keeps the
    later value; the earlier one is kept as userdata.<key>. Lines that are not
    ` key=value` are appended to the text rather than dropped.
    """
    nl = body.find(b"\n")
    if nl < 0:
        return to_text(unescape(body)), {}
    text = to_text(unescape(body[:nl]))
    rest = body[nl + 1:]
    fields = {}     # type: Dict[str, str]
    if not rest:
        return text, fields
    stray = []
    for line in rest.split(b"\n"):
        if not line:
            continue
        k, eq, v = line[1:].partition(b"=")
        if line[:1] != b" " or not eq or len(fields) >= MAX_FIELDS:
            stray.append(to_text(unescape(line)))
            continue
        name = _DICT_KEYS.get(k)
        if name is not None:
            fields[name] = to_text(unescape(v))
            continue
        name = field_key(k)
        value = to_text(v)
        if name in SYSDATA_KEYS:
            prev = fields.get(name)
            if prev is not None:
                fields.setdefault("userdata." + name, prev)
            fields[name] = value
        else:
            fields["userdata." + name] = value
    if stray:
        text = "\n".join([text] + stray)
    return text, fields


def parse_plain_line(line: bytes) -> Tuple[str, Optional[int], Optional[int], Optional[str], int]:
    """One plain console line -> (text, level, ts_us, caller, printk_dropped)."""
    level, ts, caller, pos = console.split_prefix(line)
    dropped = 0
    if pos == 0 and line[:3] == b"** ":
        d = console.DROPPED.match(line)
        if d is not None:
            dropped = int(d.group(1))
    return to_text(line[pos:] if pos else line), level, ts, caller, dropped
