"""`sender-test`: write a marked record to this host's kernel log and say what the
collector should show.

Run on a sender (root: /dev/kmsg is writable by root only). The record is
``<level>netconsole-selftest: id=<random> host=<name> time=<unix>`` (the one
definition: syslogng_netconsole/hosts/selftest.py); netconsole sends it to every
enabled target like any kernel message, so it proves the whole path: target, route,
next-hop MAC, firewall, collector. Exit status: 0 written, 1 not written, 2 bad
arguments.
"""

import json
import os
import secrets
import sys
import time

from syslogng_netconsole.hosts import selftest
from syslogng_netconsole.hosts.names import valid_name
from syslogng_netconsole.sender import gather

HELP = "write a self-test record to the kernel log, for the collector to show"


def add_arguments(parser):
    parser.add_argument("--kmsg", default="/dev/kmsg", metavar="PATH",
                        help="where to write the record (default %(default)s)")
    parser.add_argument("--level", type=int, default=selftest.DEFAULT_LEVEL,
                        help="its log level, 0-7 (default %(default)s: notice)")
    parser.add_argument("--hostname", help="the host= value (default: this host's name)")
    parser.add_argument("--id", help="the id= value (default: random)")
    parser.add_argument("--format", choices=("text", "json"), default="text")


def targets():
    """The enabled configfs targets, each with the source address it sends from."""
    out = []
    for t in gather.configfs_targets():
        if t.get("enabled") != "1":
            continue
        base = os.path.join(gather.CONFIGFS, t["name"])
        with_local = dict(t, local_ip=_read(os.path.join(base, "local_ip")))
        out.append(with_local)
    return out


def _read(path):
    try:
        with open(path) as f:
            return f.read().strip()
    except OSError:
        return ""


def checks(level, found):
    """Warnings about why the record might not arrive."""
    out = []
    if not os.path.isdir("/sys/module/netconsole"):
        out.append("netconsole is not loaded: nothing is sent (sender-config --apply)")
    elif not found:
        out.append("no enabled configfs netconsole target (a module or boot parameter "
                   "target does not show here): check `dmesg | grep netconsole`")
    try:
        with open("/proc/sys/kernel/printk") as f:
            console = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        console = None
    if console is not None and level >= console:
        out.append("the console log level is %d: a level-%d record is not sent to "
                   "netconsole; run `dmesg -n %d` first, or give --level %d"
                   % (console, level, level + 1, max(0, console - 1)))
    return out


def run(args):
    host = args.hostname
    if host is None:
        host = _read("/proc/sys/kernel/hostname")
        host = host if valid_name(host) else None
    test_id = args.id or secrets.token_hex(6)
    now = int(time.time())
    try:
        text = selftest.record(test_id, host, now)
        line = selftest.kmsg_line(text, args.level)
    except ValueError as exc:
        print("syslogng-netconsole sender-test: %s" % exc, file=sys.stderr)
        return 2
    found = targets()
    warnings = checks(args.level, found)
    try:
        fd = os.open(args.kmsg, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)            # one write() is one kernel record
        finally:
            os.close(fd)
    except OSError as exc:
        print("syslogng-netconsole sender-test: cannot write %s: %s%s" % (
            args.kmsg, exc, " (run it as root)" if os.geteuid() else ""), file=sys.stderr)
        return 1
    if args.format == "json":
        print(json.dumps({"written": args.kmsg, "text": text, "level": args.level,
                          "id": test_id, "host": host, "time": now, "targets": found,
                          "warnings": warnings}, sort_keys=True))
    else:
        sys.stdout.write(_explain(args, text, test_id, found, warnings))
    return 0


def _explain(args, text, test_id, found, warnings):
    out = ["wrote to %s: <%d>%s" % (args.kmsg, args.level, text), ""]
    if found:
        out.append("netconsole sends it to:")
        for t in found:
            src = t.get("local_ip") or ""
            src = "" if src in ("", "0.0.0.0", "::") else " from %s" % src
            out.append("  %s:%s via %s%s (configfs target %s)" % (
                t.get("remote_ip"), t.get("remote_port"), t.get("dev_name"), src,
                t.get("name")))
        out.append("")
    for w in warnings:
        out.append("warning: %s" % w)
    if warnings:
        out.append("")
    out += [
        "On the collector, within a second or two, this host's per-host log (the",
        "drop-in's /var/log/netconsole/<this host's address>.log) gets the line",
        "  [<uptime>] %s" % text,
        "with the user facility (written from user space). Find it with",
        "  grep -r 'netconsole-selftest: id=%s' /var/log/netconsole/" % test_id,
        "Nothing there: check the collector's UDP port (firewall), sender-config's",
        "warnings, and `dmesg | grep -i netconsole` here.",
    ]
    return "\n".join(out) + "\n"
