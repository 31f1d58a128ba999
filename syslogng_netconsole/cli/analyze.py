"""`analyze`: find kernel crash reports in captures and text logs.

Inputs: pcap/pcapng captures (decoded and reassembled as `decode` does, with
each packet's capture time as the clock), and plain text: serial console logs,
dmesg output with or without `[ts]` prefixes, /dev/kmsg dumps, and the per-host
files the drop-in writes (textinput.py). Every sender stream runs through the
same detector pool as the syslog-ng destination (reports/pool.py); its timeouts
are driven by the records' own times, so a report ends here as it would have
ended live.
"""

import io
import json
import sys
from typing import Iterable, Iterator, List, Tuple

from syslogng_netconsole.incidents.incident import Incident
from syslogng_netconsole.alerts.sanitize import printable
from syslogng_netconsole.ingest.records import Record

HELP = "print the kernel crash reports (incidents) found in captures and console logs"

PCAP_MAGICS = (b"\xd4\xc3\xb2\xa1", b"\xa1\xb2\xc3\xd4", b"\x4d\x3c\xb2\xa1",
               b"\xa1\xb2\x3c\x4d", b"\x0a\x0d\x0d\x0a")

# fields of the --json object, after "input"
JSON_FIELDS = ("host", "type", "title", "alt_titles", "signature", "corrupted",
               "truncated", "panicked", "release", "first_line", "boot", "taint",
               "cpu", "pid", "comm", "hardware", "pc", "frames", "modules",
               "first_seq", "last_seq", "first_ts_us", "last_ts_us", "lost_records", "id",
               "symbols", "guilty_file", "subsystem")


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="pcap/pcapng capture, console/dmesg text, or a per-host log file "
                             "('-' = text on stdin)")
    for flag, text in (("--json", "one JSON object per incident instead of a summary"),
                       ("--text", "also print each incident's full report text")):
        parser.add_argument(flag, action="store_true", help=text)
    parser.add_argument("--symbols", action="append", metavar="DIR", default=[],
                        help="symbolize the reports with the debug files under DIR, laid out "
                             "as Debian's linux-image-*-dbg (boot/vmlinux-RELEASE, "
                             "lib/modules/RELEASE/...); repeatable")
    parser.add_argument("--debuginfod", action="append", metavar="URL", default=[],
                        help="symbolize with debug files from this debuginfod server, by "
                             "build-id (repeatable; cached under ~/.cache)")
    parser.add_argument("--maintainers", metavar="FILE",
                        help="a kernel MAINTAINERS file: the guilty file's subsystem")
    parser.add_argument("--host", metavar="NAME",
                        help="host name for text inputs (default: the file name without extension)")


def is_capture(head: bytes) -> bool:
    return head[:4] in PCAP_MAGICS


def capture_records(name: str, data: bytes, errors: list) -> Iterator[Tuple[Record, float]]:
    """(record, clock) pairs of a capture, through the collector's core as in
    `decode`; read errors are appended to `errors` (records before them are kept)."""
    from syslogng_netconsole.ingest.capture import CaptureReader, PcapError
    from syslogng_netconsole.ingest.capture import CaptureFeed
    from syslogng_netconsole.ingest.reassembly import ReassemblyLimits, Reassembler

    feed = CaptureFeed(Reassembler(ReassemblyLimits()))
    try:
        yield from feed.packets(CaptureReader(io.BytesIO(data), name=name))
    except PcapError as exc:
        errors.append(str(exc))
    yield from feed.finish()


def text_records(path: str, text_stream, host: str) -> Iterator[Tuple[Record, float]]:
    from syslogng_netconsole.ingest.textinput import records_from_lines
    for rec in records_from_lines(text_stream, host):
        yield rec, rec.recv_time


def analyze_records(pairs: Iterable[Tuple[Record, float]]) -> List[Incident]:
    """The incidents of a sequence of (record, clock) pairs; a report seen through
    two streams of one host (plain and extended targets) once, as the store keeps it."""
    from syslogng_netconsole.incidents.store import same_report_key
    # imported here so that a broken detector never breaks the other sub-commands
    from syslogng_netconsole.reports.pool import DetectorPool
    pool, clock = DetectorPool(), 0.0
    for rec, now in pairs:
        clock = max(clock, now)
        pool.expire(clock)              # the timeouts a live timer would have run
        pool.feed(rec, clock)
    pool.flush(clock)
    out, seen = [], set()
    for inc in pool.drain():
        key = same_report_key(inc)
        if key is not None:
            if key in seen:
                continue
            seen.add(key)
        out.append(inc)
    return out


def analyze_path(path: str, host=None, errors=None) -> List[Incident]:
    """Incidents of one input file (capture or text), as the CLI finds them."""
    from syslogng_netconsole.ingest.textinput import host_from_path, open_text
    errors = [] if errors is None else errors
    if path == "-":
        stream = io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="backslashreplace")
        return analyze_records(text_records(path, stream, host or "stdin"))
    with open(path, "rb") as f:
        head = f.read(4)
        if is_capture(head):
            data = head + f.read()
            return analyze_records(capture_records(path, data, errors))
    with open_text(path) as stream:
        return analyze_records(text_records(path, stream, host or host_from_path(path)))


def incident_json(path: str, inc: Incident) -> dict:
    d = {"input": path}
    full = inc.to_dict()
    for name in JSON_FIELDS:
        d[name] = full.get(name)
    return d


def summary(path: str, inc: Incident) -> str:
    flags = [f for f in ("panicked", "corrupted", "truncated") if getattr(inc, f)]
    lines = ["%s: %s: %s" % (printable(path), printable(inc.host, 60), printable(inc.title))]
    where = []
    if inc.first_seq is not None:
        where.append("seq=%s..%s" % (inc.first_seq, inc.last_seq))
    if inc.first_ts_us is not None:
        where.append("at=%.6f" % (inc.first_ts_us / 1e6))
    if inc.lost_records:
        where.append("lost=%d" % inc.lost_records)
    lines.append("    type=%s%s release=%s boot=%d %s" % (
        inc.type, " " + ",".join(flags) if flags else "", inc.release or "-", inc.boot,
        " ".join(where)))
    lines.append("    first line: %s" % printable(inc.first_line))
    if inc.alt_titles:
        lines.append("    also known as: %s" % "; ".join(printable(t) for t in inc.alt_titles))
    lines.append("    signature: %s" % inc.signature)
    return "\n".join(lines)


def _symbolizer(args):
    """The symbolizer of --symbols/--debuginfod, or None."""
    if not (args.symbols or args.debuginfod):
        return None
    import os
    import time
    from syslogng_netconsole.symbols import service
    cache = os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"),
                         "syslogng-netconsole", "debuginfod")
    urls = service.debuginfod_urls(" ".join(args.debuginfod), {}) if args.debuginfod else []
    return service.Symbolizer([os.path.abspath(d) for d in args.symbols], urls, cache,
                              maintainers_file=args.maintainers or "", clock=time.monotonic)


def _symbolize(sym, inc: Incident) -> None:
    inc.symbols, inc.guilty_file, inc.subsystem = sym.run(inc.text, inc.release)


def _text(inc: Incident) -> str:
    from syslogng_netconsole.symbols.symbolize import annotate
    return annotate(inc.text, inc.symbols)


def run(args) -> int:
    out = sys.stdout
    sym = _symbolizer(args)
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="backslashreplace")
    status = 0
    total = 0
    for path in args.inputs:
        errors = []
        try:
            incidents = analyze_path(path, args.host, errors)
        except OSError as exc:
            print("syslogng-netconsole analyze: %s: cannot read: %s"
                  % (path, exc.strerror or exc), file=sys.stderr)
            status = 1
            continue
        for e in errors:
            print("syslogng-netconsole analyze: %s" % e, file=sys.stderr)
            status = 1
        total += len(incidents)
        for inc in incidents:
            if sym is not None:
                _symbolize(sym, inc)
            if args.json:
                out.write(json.dumps(incident_json(path, inc)) + "\n")
            else:
                out.write(summary(path, inc) + "\n")
                if inc.guilty_file:
                    out.write("    guilty file: %s\n" % printable(inc.guilty_file, 300))
                if args.text:
                    for line in _text(inc).split("\n"):
                        out.write("    | %s\n" % printable(line, 1000))
    if not args.json:
        out.write("%d incident(s) in %d input(s)\n" % (total, len(args.inputs)))
    out.flush()
    return status
