"""The frames of a report, as the symbolizer needs them.

One frame per line: ``func+0xOFF/0xSIZE``, optionally ``[module]`` or, with
CONFIG_STACKTRACE_BUILD_ID, ``[module BUILDID]``. Where it stands tells what the
address is: ``RIP: 0010:``/``pc :`` lines and the ``WARNING: ... at`` line give the
exact instruction; a call trace line gives a return address (the instruction after
the call: the source line is looked up at OFF-1, as the kernel's
decode_stacktrace.sh and syzkaller do); ``? func+...`` lines are the unwinder's
guesses, kept and marked unreliable. Kernel text is untrusted: names that could
not be a C symbol or module name are not frames.
"""

import re
from typing import List, NamedTuple, Optional

_FRAME = re.compile(
    r"(?:^|[\s:(])(?P<q>\?\s+)?(?P<func>[A-Za-z_][A-Za-z0-9_.$]{0,255})"
    r"\+0x(?P<off>[0-9a-f]{1,16})/0x(?P<size>[0-9a-f]{1,16})"
    r"(?:\s+\[(?P<mod>[A-Za-z0-9_-]{1,64})(?:\s+(?P<bid>[0-9a-f]{16,128}))?\])?")
# the console's "[    1.234567] " or the caller's own prefixes are not part of a frame
_EXACT = re.compile(r"\b(?:RIP|EIP|pc|PC|NIP|IP)\s*:|^\s*WARNING: .* at ")
_RETURN_ONLY = re.compile(r"\blr\s*:|\bLR\s*:")
_NAME_OK = re.compile(r"^[A-Za-z_][A-Za-z0-9_.$]{0,255}$")
_MODULE_OK = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
BUILD_ID_OK = re.compile(r"^[0-9a-f]{16,128}$")


class Frame(NamedTuple):
    line: int                   # index of the report line (text.split("\n"))
    func: str
    off: int
    size: int
    module: str                 # "" = the kernel image (vmlinux)
    build_id: str               # "" unless the report printed one
    kind: str                   # "exact" | "return" | "unreliable"

    @property
    def lookup_off(self) -> int:
        """The offset whose line is the statement: a return address points past it."""
        return self.off - 1 if self.kind != "exact" and self.off > 0 else self.off

    def key(self):
        return (self.module, self.build_id, self.func, self.lookup_off)


def parse_line(index: int, line: str) -> Optional[Frame]:
    m = _FRAME.search(line)
    if m is None:
        return None
    func, mod, bid = m.group("func"), m.group("mod") or "", m.group("bid") or ""
    if not _NAME_OK.match(func) or (mod and not _MODULE_OK.match(mod)):
        return None
    if bid and not BUILD_ID_OK.match(bid):
        bid = ""
    prefix = line[:m.start("func")]
    if m.group("q"):
        kind = "unreliable"
    elif _EXACT.search(prefix) and not _RETURN_ONLY.search(prefix):
        kind = "exact"
    else:
        kind = "return"
    return Frame(index, func, int(m.group("off"), 16), int(m.group("size"), 16),
                 mod, bid, kind)


def parse(text: str, limit: int = 256) -> List[Frame]:
    """Every frame of a report, in order (at most `limit`)."""
    out: List[Frame] = []
    for i, line in enumerate(text.split("\n")):
        if "+0x" not in line:
            continue
        f = parse_line(i, line)
        if f is not None:
            out.append(f)
            if len(out) >= limit:
                break
    return out


def module_name_ok(name: str) -> bool:
    return bool(_MODULE_OK.match(name or ""))
