"""The decoded unit the core hands to everything above it.

A `Record` is one kernel log record of one sender's stream, complete or
flagged incomplete. The source glue turns it into a syslog-ng message, the CLI
prints it, the crash detector consumes it. Pure data: no I/O, no clock.
"""

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

# (sender address as text, sender UDP port, local UDP port it arrived on)
StreamKey = Tuple[str, int, int]

PLAIN = "plain"
EXTENDED = "extended"


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
    flags: str = ""                # extended flag as sent: "-", "c" or "+"
    caller: Optional[str] = None   # "T123" / "C1"
    release: Optional[str] = None  # release prefix, or sysdata release=
    # dictionary (SUBSYSTEM, DEVICE), userdata and sysdata (cpu, taskname, msgid, ...)
    fields: Dict[str, str] = field(default_factory=dict)
    boot: int = 0                  # counts sender reboots seen on this stream
    lost_before: int = 0           # records missing just before this one (seq gap)
    fragments: int = 1             # datagrams (ncfrag pieces, cut-line pieces) joined
    incomplete: bool = False       # a piece never arrived; text is what we have
    continued: int = 0             # number of 'c' continuation records joined in

    @property
    def stream(self) -> StreamKey:
        return (self.host, self.src_port, self.dst_port)

    def dmesg(self) -> str:
        """The record as `dmesg` prints it: each line with the kernel timestamp."""
        if self.ts_us is None:
            prefix = ""
        else:
            prefix = "[%5d.%06d] " % divmod(self.ts_us, 1_000_000)
        return "\n".join(prefix + line for line in self.text.split("\n"))
