"""The decoded unit the core hands to everything above it.

A `Record` is one kernel log record of one sender's stream, complete or
flagged incomplete. The source glue turns it into a syslog-ng message, the CLI
prints it, the crash detector consumes it. Pure data: no I/O, no clock.
"""

import re
from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

# (sender address as text, sender UDP port, local UDP port it arrived on)
StreamKey = Tuple[str, int, int]

PLAIN = "plain"
EXTENDED = "extended"

# a record that missed a piece ends with this in the per-host log
INCOMPLETE_MARK = " [incomplete]"
# Kept out of log lines as \xNN (as dmesg(1) shows non-printables): C0 controls
# but tab and newline (newline splits lines), DEL, C1, and the bidirectional
# overrides that would make a line read differently than it is. 3.38 also cuts
# values at NUL.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def _escape_one(m):
    c = ord(m.group())
    return "\\x%02x" % c if c < 0x100 else "\\u%04x" % c


def escape_unsafe(text: str) -> str:
    return _UNSAFE.sub(_escape_one, text) if _UNSAFE.search(text) else text


@dataclass
class Record:
    host: str                      # sender address, e.g. "10.0.0.5" or "fe80::1"
    text: str                      # decoded text; undecodable bytes kept as \xNN escapes
    format: str = PLAIN            # PLAIN or EXTENDED
    src_port: int = 0              # sender's UDP source port
    dst_port: int = 0              # local port the datagrams arrived on
    recv_time: float = 0.0         # caller's clock when the first piece arrived
    seq: Optional[int] = None      # printk sequence number (extended only)
    ts_us: Optional[int] = None    # kernel timestamp, microseconds since boot
    level: Optional[int] = None    # raw extended level: facility << 3 | severity
    facility: Optional[int] = None
    severity: Optional[int] = None
    flags: str = ""                # extended flag as sent: "-", "c" or "+" (first piece's)
    caller: Optional[str] = None   # "T123" / "C1"
    release: Optional[str] = None  # release prefix, or sysdata release=
    # dictionary (SUBSYSTEM, DEVICE), userdata and sysdata (cpu, taskname, msgid, ...)
    fields: Dict[str, str] = field(default_factory=dict)
    boot: int = 0                  # counts sender reboots seen on this stream
    lost_before: int = 0           # records missing just before this one (seq gap)
    fragments: int = 1             # datagrams (ncfrag pieces, cut-line pieces) joined
    incomplete: bool = False       # a piece never arrived; text is what we have
    continued: int = 0             # '+' pieces joined in (4.2-4.8 kernels only)

    @property
    def stream(self) -> StreamKey:
        return (self.host, self.src_port, self.dst_port)

    def dmesg(self) -> str:
        """The record as the per-host log has it, as the sender's console and dmesg
        print it: one line per text line, each with the kernel timestamp, unsafe
        characters escaped; " [incomplete]" at the end if a piece is missing.
        `decode` prints the same text."""
        text = escape_unsafe(self.text)
        if self.ts_us is not None:
            prefix = "[%5d.%06d] " % divmod(self.ts_us, 1_000_000)
            text = prefix + (text.replace("\n", "\n" + prefix) if "\n" in text else text)
        return text + INCOMPLETE_MARK if self.incomplete else text
