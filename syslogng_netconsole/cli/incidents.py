"""`incidents`: list the incidents the syslog-ng destination stored.

Reads ``incidents.sqlite`` in the state directory read-only (the collector may
be writing it at the same time; WAL mode allows that). Newest first.
"""

import datetime
import json
import sys
import time

from syslogng_netconsole import options
from syslogng_netconsole.alerts import sanitize
from syslogng_netconsole.incidents.store import Store, StoreError

HELP = "list the kernel crash incidents stored by the syslog-ng destination"

DEFAULT_STATE_DIR = "/var/lib/syslog-ng/netconsole"


def add_state_dir(parser, whose="the destination's", json_help="one JSON object per incident"):
    """--state-dir and --json, as every reader of the state directory takes them."""
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR, metavar="DIR",
                        help="%s state_dir (default %%(default)s)" % whose)
    parser.add_argument("--json", action="store_true", help=json_help)


def add_arguments(parser):
    add_state_dir(parser)
    parser.add_argument("--host", help="only this sender (its address or its own name)")
    parser.add_argument("--signature", help="only this signature")
    parser.add_argument("--since", metavar="AGE", type=options.duration,
                        help="only incidents stored in the last AGE (e.g. 90s, 30m, 12h, 7d)")
    parser.add_argument("--limit", type=int, default=100, metavar="N",
                        help="at most N incidents (default %(default)s)")
    parser.add_argument("--by-signature", action="store_true",
                        help="one line per signature: incidents, hosts, first and last seen, "
                             "releases")
    parser.add_argument("--by-release", action="store_true",
                        help="one line per kernel release: hosts seen on it, incidents, "
                             "distinct signatures, crashing hosts per 1,000 hosts seen")
    parser.add_argument("--text", action="store_true", help="also print each report's text")
    parser.add_argument("--summary", action="store_true",
                        help="what the store holds: incidents, hosts, signatures, oldest and "
                             "newest, alerts waiting for a hand-off, size on disk")


def _when(t) -> str:
    if not t:
        return "-"
    return datetime.datetime.fromtimestamp(t, datetime.timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def run(args) -> int:
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="backslashreplace")
    since = time.time() - args.since if args.since is not None else None
    try:
        store = Store(args.state_dir, readonly=True)
        if args.summary:
            return _summary(store.summary(), args.json, out)
        if args.by_release:
            return _by_release(store.releases(since=since), args, out)
        if args.by_signature:
            rows = store.signatures(since=since)
        else:
            rows = store.list(host=args.host, signature=args.signature, since=since,
                              limit=args.limit)
    except StoreError as exc:
        print("syslogng-netconsole incidents: %s" % exc, file=sys.stderr)
        return 1
    for r in rows:
        if args.json:
            out.write(json.dumps(r, sort_keys=True) + "\n")
        elif args.by_signature:
            out.write("%s  %4d incident(s) %4d host(s)  %s .. %s  %s: %s  [%s]\n" % (
                r["signature"], r["incidents"], r["hosts"], _when(r["first_seen"]),
                _when(r["last_seen"]), sanitize.printable(r["type"], 40),
                sanitize.printable(r["title"]),
                sanitize.printable(", ".join(r["releases"]) or "release unknown", 300)))
        else:
            flags = [f for f in ("panicked", "corrupted", "truncated") if r.get(f)]
            who = sanitize.printable(r.get("host"), 60)
            if r.get("hostname"):
                who = "%s (%s)" % (sanitize.printable(r["hostname"], 64), who)
            out.write("%s  %s  %s  %s: %s%s\n" % (
                _when(r.get("stored_at")), r.get("id"), who,
                sanitize.printable(r.get("type"), 40), sanitize.printable(r.get("title")),
                " [%s]" % ",".join(flags) if flags else ""))
            if args.text:
                _report(r, out)
    out.flush()
    return 0


def _report(r: dict, out) -> None:
    """The report, symbolized when the destination symbolized it (symbols/)."""
    from syslogng_netconsole.symbols.symbolize import annotate
    text, symbols = str(r.get("text", "")), r.get("symbols")
    if isinstance(symbols, dict) and symbols.get("status"):
        out.write("    symbols: %s%s\n" % (sanitize.printable(symbols["status"], 20),
                                           " (%s)" % sanitize.printable(symbols["reason"], 200)
                                           if symbols.get("reason") else ""))
        text = annotate(text, symbols)
    if r.get("guilty_file"):
        out.write("    guilty file: %s\n" % sanitize.printable(r["guilty_file"], 300))
    sub = r.get("subsystem")
    if isinstance(sub, dict) and sub.get("name"):
        out.write("    subsystem: %s %s\n" % (sanitize.printable(sub["name"], 200),
                                             sanitize.printable(" ".join(sub.get("lists") or []),
                                                                300)))
    for line in text.split("\n"):
        out.write("    | %s\n" % sanitize.printable(line, 1000))


def _by_release(rows, args, out) -> int:
    """Incidents per release (the store) against hosts seen per release (hosts.sqlite,
    when the collector writes one): hosts_seen and per_1000 are None without it."""
    from syslogng_netconsole.hosts import analytics
    seen = analytics.hosts_seen(args.state_dir)
    for r in analytics.by_release(rows, seen):
        if args.json:
            out.write(json.dumps(r, sort_keys=True) + "\n")
            continue
        out.write("%-40s  hosts %6s  incidents %5d  signatures %4d  crashing hosts %5d  "
                  "per 1,000 hosts %s\n" % (
                      sanitize.printable(r["release"] or "(unknown)", 40),
                      "-" if r["hosts_seen"] is None else r["hosts_seen"], r["incidents"],
                      r["signatures"], r["crashing_hosts"],
                      "-" if r["per_1000"] is None else "%.1f" % r["per_1000"]))
    out.flush()
    return 0


def _summary(doc: dict, as_json: bool, out) -> int:
    if as_json:
        out.write(json.dumps(doc, sort_keys=True) + "\n")
    else:
        out.write("%s: %d incident(s) from %d host(s), %d signature(s), stored %s .. %s; "
                  "%d waiting for the alerts; %.1f MiB\n"
                  % (doc["path"], doc["incidents"], doc["hosts"], doc["signatures"],
                     _when(doc["oldest"]), _when(doc["newest"]), doc["alerts_waiting"],
                     doc["bytes"] / 1048576.0))
    out.flush()
    return 0
