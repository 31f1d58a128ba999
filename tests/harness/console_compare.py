"""Compare what the collector decoded with what the guest's serial console printed.

Ground truth is the serial console (ttyS0, written by QEMU to a file). Both
sides print one kernel line per text line with a dmesg prefix
``[    1.234567] ``; the comparison is on the text after that prefix, line by
line, in order. The timestamps are compared too and mismatches counted.

Normalisation, and why it is fair:

* Serial: CR removed (the 8250 console writes CR LF); bytes decoded as UTF-8
  with undecodable bytes as ``\\xNN`` (the core's convention). Lines without
  a dmesg prefix are not kernel records (userspace, firmware) and are set
  aside, counted in ``console_other``.
* Window: the first decoded line is looked up in the console; console lines
  before it were printed before netconsole was enabled (a configfs target gets
  no replay; a ``netconsole=`` parameter replays from ``Linux version``, so
  there the window starts at console line 1 and ``window_start`` is 0).
* End: init prints ``nctest-init: powering off`` to /dev/kmsg before
  ``poweroff -f``. Every console line up to and including that marker must
  be in the decoded log (``missing`` must be 0). Console lines after it are
  printed while the kernel shuts devices down: those the collector did not
  get are ``teardown_lost``, reported, not failed. A panicking guest never
  reaches the marker: there the whole console is strict (the panic is the
  last thing it prints, netpoll keeps sending through it).
* ``c`` continuation records (extended mode) are NOT normalised: since ~4.9
  the console prints every record, a ``c`` record (a KERN_CONT piece the
  kernel could not merge) included, as its own line with its own timestamp,
  and so must the per-host log.
* Kernel truncation (extended mode, 6.2+): the kernel caps one formatted
  extended record at 2048 bytes (PRINTK_MESSAGE_MAX) *before* sending; the
  escaped form of an escape-heavy record can exceed it, and the kernel then
  cuts it, possibly in the middle of a ``\\xNN`` escape. Such a decoded line
  is accepted when the console line's escaped length is over the cap and the
  decoded text (minus a dangling partial escape) is a prefix of the console
  text; it is counted in ``kernel_truncated``. This is what the kernel sent,
  not a receiver loss.
* Console truncation (before 6.2): the console renders one record, every
  line with its prefix, into a 1024-byte buffer and drops the lines that do
  not fit; extended netconsole gets the whole record (newlines as ``\x0a``).
  A decoded line that continues a multi-line record (same timestamp as the
  line before) whose rendering exceeds 1024 bytes is counted in
  ``console_truncated``, not ``extra``: netconsole has more than the console.
* Anything else is a failure: ``missing`` (console line not decoded),
  ``extra`` (decoded line not on the console, e.g. a duplicate),
  ``mismatched`` (both present at the same position but different text).
"""

import dataclasses
import json
import pathlib
import re
import subprocess
import sys
from typing import List, Optional, Tuple

REPO = pathlib.Path(__file__).resolve().parents[2]

PREFIX = re.compile(r"^\[\s*(\d+)\.(\d{6})\] ")
PREFIX_FMT = "[%5d.%06d] "
END_MARKER = "nctest-init: powering off"
EXT_MESSAGE_MAX = 2048          # PRINTK_MESSAGE_MAX since 6.2 (8192 before)
LOOKAHEAD = 64                  # how far to search when resynchronising
_PARTIAL_ESCAPE = re.compile(r"\\(x[0-9a-fA-F]?)?$")


@dataclasses.dataclass
class Line:
    ts_us: Optional[int]
    text: str


@dataclasses.dataclass
class Agreement:
    console_total: int = 0      # console kernel lines in the window
    console_other: int = 0      # console lines that are not kernel lines
    window_start: int = 0       # index of the first console line netconsole sent
    strict_total: int = 0       # console lines that must arrive (up to the end marker)
    matched: int = 0            # strict console lines found, in order, same text
    kernel_truncated: int = 0   # lines the kernel itself cut (extended, > 2048 B)
    console_truncated: int = 0  # decoded lines the console dropped (record > 1024 B)
    ts_mismatch: int = 0        # matched lines whose timestamps differ
    missing: int = 0            # strict console lines not in the decoded log
    extra: int = 0              # decoded lines not on the console (dups, junk)
    teardown_total: int = 0     # console lines after the end marker
    teardown_lost: int = 0      # of those, not decoded
    decoded_total: int = 0
    problems: List[str] = dataclasses.field(default_factory=list)

    @property
    def percent(self):
        """Agreement over the strict window, in percent."""
        if not self.strict_total:
            return 0.0
        return 100.0 * self.matched / self.strict_total

    @property
    def ok(self):
        return (self.strict_total > 0 and self.missing == 0 and self.extra == 0
                and self.matched == self.strict_total)

    def summary(self):
        return ("%.2f%% (%d/%d console lines; %d kernel-truncated, "
                "%d console-truncated, %d ts mismatches; %d missing, %d extra; "
                "teardown lost %d/%d)"
                % (self.percent, self.matched, self.strict_total,
                   self.kernel_truncated, self.console_truncated, self.ts_mismatch,
                   self.missing, self.extra,
                   self.teardown_lost, self.teardown_total))


def split_prefixed(text) -> Tuple[List[Line], int]:
    """Lines with a dmesg prefix, and the number of other non-empty lines."""
    lines, other = [], 0
    for raw in text.replace("\r", "").split("\n"):
        m = PREFIX.match(raw)
        if m:
            lines.append(Line(int(m.group(1)) * 1000000 + int(m.group(2)), raw[m.end():]))
        elif raw.strip():
            other += 1
    return lines, other


def console_lines(raw: bytes) -> Tuple[List[Line], int]:
    return split_prefixed(raw.decode("utf-8", "backslashreplace"))


def decoded_lines(text) -> List[Line]:
    """Lines of a per-host log (``[ts] text`` per record line). A line without
    a prefix (a record without timestamp) keeps ts None."""
    out = []
    for raw in text.split("\n"):
        if not raw:
            continue
        m = PREFIX.match(raw)
        if m:
            out.append(Line(int(m.group(1)) * 1000000 + int(m.group(2)), raw[m.end():]))
        else:
            out.append(Line(None, raw))
    return out


def cli_json(command, pcap):
    """`syslogng-netconsole COMMAND --json PCAP` output: one object per line."""
    proc = subprocess.run([sys.executable, "-m", "syslogng_netconsole", command, "--json",
                           str(pcap)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          cwd=str(REPO), timeout=120)
    assert proc.returncode == 0, proc.stderr.decode(errors="replace")
    return [json.loads(line) for line in proc.stdout.decode().splitlines() if line]


def cli_decode(pcap):
    """Records of a pcap as `decode --json` prints them."""
    return cli_json("decode", pcap)


def records_to_lines(records) -> List[Line]:
    """`decode --json` records as Lines, one per line of their text."""
    out = []
    for r in records:
        for text in r["text"].split("\n"):
            out.append(Line(r["ts_us"], text))
    return out


def escaped_len(text):
    """Length of text as the extended format escapes it (\\xNN for bytes
    < 0x20, >= 0x7f and backslash)."""
    n = 0
    for b in text.encode("utf-8", "surrogateescape"):
        n += 4 if (b < 0x20 or b >= 0x7F or b == 0x5C) else 1
    return n


def _truncated_by_kernel(console, decoded, extended, ext_max):
    if not extended or not ext_max or escaped_len(console) + 40 < ext_max:
        return False
    stem = _PARTIAL_ESCAPE.sub("", decoded)
    return len(stem) < len(console) and console.startswith(stem)


def compare(console: List[Line], decoded: List[Line], extended=False,
            ext_max=EXT_MESSAGE_MAX, console_max=None, end_marker=END_MARKER) -> Agreement:
    """Align decoded lines with console lines; see the module docstring.
    ext_max: the kernel's cap on one extended record (2048 since 6.2; pass
    None for kernels that cap at 8192, which no printk record reaches).
    console_max: the console's cap on one rendered record (1024 before 6.2,
    extended mode only; None where the console prints whole records)."""
    ag = Agreement(decoded_total=len(decoded))
    if not decoded:
        ag.console_total = len(console)
        ag.strict_total = len(console)
        ag.missing = len(console)
        ag.problems.append("nothing decoded")
        return ag
    # the same text can be printed twice (6.12 prints "network logging
    # started" at module load and again when a configfs target is enabled):
    # prefer the console line with the same timestamp too
    first = decoded[0]
    start = next((i for i, c in enumerate(console)
                  if c.text == first.text and c.ts_us == first.ts_us), None)
    if start is None:
        start = next((i for i, c in enumerate(console) if c.text == first.text), None)
    if start is None:
        ag.problems.append("first decoded line not on the console: %r" % decoded[0].text[:120])
        start = 0
    ag.window_start = start
    window = console[start:]
    ag.console_total = len(window)
    end = next((i for i, c in enumerate(window) if c.text == end_marker), None)
    strict_end = len(window) if end is None else end + 1
    ag.strict_total = strict_end
    ag.teardown_total = len(window) - strict_end

    i = j = 0
    while i < len(window):
        strict = i < strict_end
        if j >= len(decoded):
            _lost(ag, strict, window[i], "missing at end")
            i += 1
            continue
        c, d = window[i], decoded[j]
        if c.text == d.text:
            _hit(ag, strict, c, d)
            i += 1
            j += 1
            continue
        if _truncated_by_kernel(c.text, d.text, extended, ext_max):
            _hit(ag, strict, c, d)
            if strict:
                ag.kernel_truncated += 1
            i += 1
            j += 1
            continue
        # resynchronise: is this console line a little further on in the
        # decoded log (extra decoded lines), or is it missing?
        ahead = next((n for n in range(j + 1, min(len(decoded), j + LOOKAHEAD))
                      if decoded[n].text == c.text), None)
        if ahead is not None:
            for n in range(j, ahead):
                _extra(ag, decoded, n, console_max)
            j = ahead
            continue
        _lost(ag, strict, c, "console line not decoded (decoded has %r)" % d.text[:80])
        i += 1
    for n in range(j, len(decoded)):
        _extra(ag, decoded, n, console_max)
    return ag


def _extra(ag, decoded, n, console_max):
    """A decoded line the console did not print. Fine only if the console
    dropped it: a later line of a multi-line record whose console rendering
    (every line with its prefix) overflowed the console buffer."""
    d = decoded[n]
    if console_max and n and d.ts_us is not None:
        first = n
        while first and decoded[first - 1].ts_us == d.ts_us:
            first -= 1
        rendered = sum(len(PREFIX_FMT % divmod(x.ts_us, 1000000)) + len(x.text.encode()) + 1
                       for x in decoded[first:n + 1])
        if first < n and rendered > console_max:
            ag.console_truncated += 1
            return
    ag.extra += 1
    _note(ag, "extra decoded line %r" % d.text[:120])


def compare_run(kver, mode, console, decoded):
    """compare() with the limits of kernel release kver in netconsole mode
    (plain, extended, release, configfs)."""
    extended = mode != "plain"
    major, minor = (int(x) for x in kver.split(".")[:2])
    before_6_2 = (major, minor) < (6, 2)
    return compare(console, decoded, extended=extended,
                   ext_max=None if before_6_2 else EXT_MESSAGE_MAX,
                   console_max=1024 if (extended and before_6_2) else None)


def _hit(ag, strict, c, d):
    if strict:
        ag.matched += 1
        if d is not None and d.ts_us is not None and c.ts_us != d.ts_us:
            ag.ts_mismatch += 1
            _note(ag, "timestamp %s on the console, %s decoded: %r"
                  % (c.ts_us, d.ts_us, c.text[:80]))


def _lost(ag, strict, c, why):
    if strict:
        ag.missing += 1
        _note(ag, "%s: %r" % (why, c.text[:120]))
    else:
        ag.teardown_lost += 1


def _note(ag, msg):
    if len(ag.problems) < 20:
        ag.problems.append(msg)
