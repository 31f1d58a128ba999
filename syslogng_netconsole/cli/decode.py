"""`decode`: print the netconsole records in pcap/pcapng captures.

The capture is run through the same core as the collector, with each packet's
capture time as the clock, so fragments, cut lines and timeouts behave as they
did live. Text output is what the per-host log of the collector holds (one
line per text line of a record, Record.dmesg()), byte for byte; with several
senders each line is prefixed by its sender. ``--json`` prints one object per
record.
"""

import io
import json
import sys
from collections import defaultdict

from syslogng_netconsole.ingest.capture import CaptureReader, PcapError
from syslogng_netconsole.ingest.records import EXTENDED, PLAIN

HELP = "print the decoded netconsole records of pcap/pcapng captures (as the per-host log)"

# Record attributes in the JSON object, in this order, after host and text; then
# "dmesg" (the text as the per-host file shows it) and Record.fields flattened under
# their name-value pair names (subsystem, device, cpu, taskname, msgid,
# userdata.KEY), as the source posts them.
JSON_FIELDS = (
    "src_port", "dst_port", "recv_time", "format", "seq", "ts_us", "level", "facility",
    "severity", "flags", "caller", "release", "boot", "lost_before", "fragments",
    "incomplete", "continued",
)


def add_arguments(parser):
    parser.add_argument("inputs", nargs="+", metavar="INPUT",
                        help="pcap or pcapng file as written by tcpdump -w ('-' = stdin)")
    parser.add_argument("--json", action="store_true",
                        help="one JSON object per record instead of text lines")
    parser.add_argument("--port", type=int, action="append", metavar="N",
                        help="only datagrams sent to this UDP port (repeatable)")
    parser.add_argument("--stats", action="store_true",
                        help="always print capture and reassembly counters to stderr")


def _prefixes(streams):
    """core stream key (host, dst_port, format) -> output prefix: none for a
    single stream (the output is then that host's per-host log, byte for byte);
    else "address: ", plus the local port and/or the format only where one
    address has several streams (e.g. a plain and an extended target of one host)."""
    if len(streams) <= 1:
        return {k: "" for k in streams}
    by_host = defaultdict(set)
    for host, dport, fmt in streams:
        by_host[host].add((dport, fmt))
    out = {}
    for host, keys in by_host.items():
        several_ports = len({d for d, _f in keys}) > 1
        several_formats = len({f for _d, f in keys}) > 1
        for dport, fmt in keys:
            p = host
            if several_ports:
                p += " ->%d" % dport
            if several_formats:
                p += " (%s)" % fmt
            out[(host, dport, fmt)] = p + ": "
    return out


def _reader(name, buf):
    if buf is None:
        return CaptureReader(name)
    buf.seek(0)
    return CaptureReader(buf, name=name)


def _scan_streams(inputs, ports):
    """First pass: which streams, as the core keys them, the captures hold."""
    from syslogng_netconsole.ingest import wire

    streams = set()
    for name, buf in inputs:
        try:
            with _reader(name, buf) as r:
                for p in r:
                    if ports and p.dst_port not in ports:
                        continue
                    fmt = PLAIN if wire.parse_extended(p.payload) is None else EXTENDED
                    streams.add((p.src_ip, p.dst_port, fmt))
        except PcapError:
            pass            # reported by the second pass
    return streams


def record_json(rec):
    obj = {"host": rec.host, "text": rec.text}
    for name in JSON_FIELDS:
        obj[name] = getattr(rec, name)
    obj["dmesg"] = rec.dmesg()
    for k, v in rec.fields.items():
        obj.setdefault(k, v)        # a record attribute wins over a same-named field
    return json.dumps(obj)


def run(args):
    # imported here so that `replay` and `--help` work whatever state the core is in
    from syslogng_netconsole.ingest.capture import CaptureFeed
    from syslogng_netconsole.ingest.reassembly import ReassemblyLimits, Reassembler

    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="backslashreplace")
    ports = set(args.port or ())
    status = 0
    # Text output takes two passes (which addresses need a port or format in
    # their prefix), so files are read twice and stdin is kept in memory.
    inputs = []
    for path in args.inputs:
        try:
            if path == "-":
                inputs.append(("<stdin>", io.BytesIO(sys.stdin.buffer.read())))
            else:
                with open(path, "rb"):
                    pass
                inputs.append((path, None))
        except OSError as exc:
            print("syslogng-netconsole decode: %s: cannot read: %s"
                  % (path, exc.strerror or exc), file=sys.stderr)
            status = 1
    prefixes = {} if args.json else _prefixes(_scan_streams(inputs, ports))

    def emit(records):
        for rec in records:
            if args.json:
                out.write(record_json(rec) + "\n")
                continue
            pre = prefixes.get((rec.host, rec.dst_port, rec.format), rec.host + ": ")
            text = rec.dmesg()
            if pre:
                text = pre + text.replace("\n", "\n" + pre)
            out.write(text + "\n")

    core = Reassembler(ReassemblyLimits())
    feed = CaptureFeed(core)
    skipped = defaultdict(int)

    def wanted(reader):
        for pkt in reader:
            if ports and pkt.dst_port not in ports:
                skipped["other_port"] += 1
                continue
            yield pkt

    for name, buf in inputs:
        try:
            reader = _reader(name, buf)
        except PcapError as exc:    # vanished or unreadable between the passes
            print("syslogng-netconsole decode: %s" % exc, file=sys.stderr)
            status = 1
            continue
        try:
            emit(rec for rec, _ in feed.packets(wanted(reader)))
        except PcapError as exc:
            print("syslogng-netconsole decode: %s" % exc, file=sys.stderr)
            status = 1
        reader.close()
        for w in reader.warnings:
            print("syslogng-netconsole decode: warning: %s" % w, file=sys.stderr)
        for k, v in reader.counters.items():
            skipped[k] += v
    emit(rec for rec, _ in feed.finish())
    out.flush()
    _report(skipped, core.counters, args.stats)
    return status


# capture counters that mean nothing was lost
_BENIGN = {"frames", "udp", "not_ip", "not_udp", "other_port"}
# core counters that mean something was lost or cut (besides every dropped_*)
_CORE_LOSSY = {"lost", "fragments_incomplete", "fragments_evicted", "lines_incomplete",
               "evicted", "forced_flushes", "printk_dropped"}


def _report(capture, core, always):
    """Counters to stderr: always with --stats, else only when something was
    skipped, cut or dropped, so that nothing is lost silently."""
    lossy = any(v and k not in _BENIGN for k, v in capture.items()) or \
        any(v and (k.startswith("dropped_") or k in _CORE_LOSSY) for k, v in core.items())
    if not (always or lossy):
        return
    for what, counters in (("capture", capture), ("core", core)):
        print("syslogng-netconsole decode: %s: %s" % (what, " ".join(
            "%s=%s" % kv for kv in sorted(counters.items()) if kv[1])), file=sys.stderr)
