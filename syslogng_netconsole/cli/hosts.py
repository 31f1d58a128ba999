"""`hosts`: the senders the collector has heard, with their kernel release, when they
were last heard, reboots, what of their stream was lost, and their last incident.

Reads ``hosts.sqlite`` in the state directory read-only (the collector writes it
every few seconds; WAL allows both). Most recently heard first.
"""

import json
import sys
import time

from syslogng_netconsole import options
from syslogng_netconsole.alerts import sanitize
from syslogng_netconsole.cli.incidents import _when, add_state_dir
from syslogng_netconsole.hosts.hostdb import HostDb, HostDbError

HELP = "list the hosts the collector has heard: release, last seen, loss, last incident"


def add_arguments(parser):
    add_state_dir(parser, "the collector's", "one JSON object per host")
    parser.add_argument("--release", help="only hosts running this kernel release now")
    parser.add_argument("--since", metavar="AGE", type=options.duration,
                        help="only hosts heard in the last AGE (e.g. 30m, 12h, 7d)")
    parser.add_argument("--limit", type=int, default=1000, metavar="N",
                        help="at most N hosts (default %(default)s)")


def run(args) -> int:
    out = sys.stdout
    if hasattr(out, "reconfigure"):
        out.reconfigure(errors="backslashreplace")
    try:
        db = HostDb(args.state_dir, readonly=True)
        try:
            rows = db.hosts()
        finally:
            db.close()
    except HostDbError as exc:
        print("syslogng-netconsole hosts: %s" % exc, file=sys.stderr)
        return 1
    since = time.time() - args.since if args.since is not None else None
    rows = [r for r in reversed(rows)
            if (args.release is None or r.get("release") == args.release)
            and (since is None or (r.get("last_seen") or 0) >= since)][:max(0, args.limit)]
    for r in rows:
        out.write(json.dumps(r, sort_keys=True) + "\n" if args.json else _line(r))
    out.flush()
    return 0


def _line(r: dict) -> str:
    who = sanitize.printable(r.get("host"), 60)
    if r.get("name"):
        who = "%s (%s)" % (sanitize.printable(r["name"], 64), who)
    lost = "lost %d" % (r.get("lost") or 0)
    if r.get("lost_msgid"):
        lost += " (%d by msgid)" % r["lost_msgid"]
    incomplete = (r.get("incomplete_fragments") or 0) + (r.get("incomplete_lines") or 0)
    last = "-"
    if r.get("last_incident_id"):
        last = "%s %s: %s" % (_when(r.get("last_incident_time")), r["last_incident_id"],
                              sanitize.printable(r.get("last_incident_title"), 120))
    return "%s  %s  release %s  reboots %d  records %d  %s  incomplete %d  incidents %d  " \
           "last incident %s  self-test %s\n" % (
               _when(r.get("last_seen")), who, sanitize.printable(r.get("release") or "-", 100),
               r.get("reboots") or 0, r.get("records") or 0, lost, incomplete,
               r.get("incidents") or 0, last, _selftest(r.get("selftest")))


def _selftest(t) -> str:
    """'2026-12-04 10:00:00Z ok' or '... missing: release prefix (r), ...'; '-' never."""
    if not isinstance(t, dict):
        return "-"
    missing = [sanitize.printable(m, 80) for m in t.get("missing") or ()]
    return "%s %s" % (_when(t.get("time")), "missing: " + ", ".join(missing) if missing else "ok")
