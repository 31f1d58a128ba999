"""`sender-config`: point this host's netconsole at the collector.

Run on a sender. Works out the interface, source address and next-hop MAC for the
collector (``ip -j route get``, ``ip -j neigh show``; root not needed), checks the
kernel (netconsole built in or a module, configfs targets, extended/release/userdata
by version, the NIC driver) and prints the files that make the target persistent,
every warning with its fix, and what to run. ``--apply`` (root) writes the files
idempotently and loads the target now; ``--format json`` is for configuration
management. Exit status: 0 a plan, 1 an error the plan could not get past (the
messages say how to fix it), 2 bad arguments.
"""

import ipaddress
import json
import os
import socket
import sys

from syslogng_netconsole.sender import apply as applier
from syslogng_netconsole.sender import gather, render
from syslogng_netconsole.sender.plan import Request, make_plan, param_string

HELP = "work out and write this host's netconsole configuration for the collector"


def add_arguments(parser):
    parser.add_argument("--collector", required=True, metavar="ADDR[:PORT]",
                        help="the collector's address as this host reaches it (IPv6: "
                             "[ADDR]:PORT); a name is resolved")
    parser.add_argument("--port", type=int, help="the collector's UDP port (default: "
                        "the one in --collector, else 6666)")
    parser.add_argument("--local-port", type=int, default=6665,
                        help="the UDP source port (default %(default)s)")
    parser.add_argument("--interface", help="send from this interface instead of the "
                        "route's")
    parser.add_argument("--hostname", help="the userdata hostname (default: the host's "
                        "name at the time the target is made)")
    parser.add_argument("--mac", help="the next hop's MAC, when the neighbour table has "
                        "none")
    parser.add_argument("--method", choices=("auto", "configfs", "params"), default="auto",
                        help="a configfs target made once the network is up (auto when "
                             "the kernel has them) or a module/boot parameter")
    parser.add_argument("--plain", action="store_true",
                        help="the plain format instead of extended (not recommended)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--apply", action="store_true",
                        help="write the files and load the target now (root)")
    parser.add_argument("--root", default="/", metavar="DIR",
                        help="with --apply: write under DIR and load nothing (images, "
                             "tests)")
    parser.add_argument("--force", action="store_true",
                        help="with --apply: replace files not written by sender-config")


def split_collector(text):
    """(address or name, port or None) from ADDR, ADDR:PORT, [V6]:PORT or a bare V6."""
    text = text.strip()
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") else None
    if text.count(":") == 1:
        host, port = text.split(":")
        return host, int(port)
    return text, None


def resolve(host):
    """(address, note): an address as given, or a name's first address."""
    try:
        return str(ipaddress.ip_address(host)), ""
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_DGRAM)
    except OSError as exc:
        raise ValueError("cannot resolve %s: %s" % (host, exc))
    addr = infos[0][4][0]
    return addr, "%s is %s (the first address the resolver gave)" % (host, addr)


def request(args):
    host, port = split_collector(args.collector)
    addr, note = resolve(host)
    return Request(collector=addr, port=args.port or port or 6666,
                   local_port=args.local_port, interface=args.interface,
                   hostname=args.hostname, mac=args.mac, method=args.method,
                   plain=args.plain), note


def run(args):
    try:
        req, note = request(args)
    except ValueError as exc:
        print("syslogng-netconsole sender-config: %s" % exc, file=sys.stderr)
        return 2
    plan = make_plan(gather.facts(req.collector, req.interface), req)
    applied = None
    if args.apply and plan.ok:
        if args.root in ("", "/") and os.geteuid() != 0:
            print("syslogng-netconsole sender-config: --apply writes under /etc and loads "
                  "a kernel target: run it as root (or with --root DIR)", file=sys.stderr)
            return 2
        applied = {"files": applier.write_files(plan, args.root, args.force), "loaded": []}
        if args.root in ("", "/"):
            applied["loaded"] = applier.load(plan)
    if args.format == "json":
        print(json.dumps(to_json(plan, note, applied), indent=2, sort_keys=True))
    else:
        sys.stdout.write(to_text(plan, note, applied, args.apply))
    if not plan.ok:
        return 1
    failed = applied and (any(o.startswith("refused") for _p, o in applied["files"]) or
                          any(rc not in (0, None) for _c, rc, _o in applied["loaded"]))
    return 1 if failed else 0


def to_json(plan, note="", applied=None):
    t = plan.target
    out = {
        "ok": plan.ok, "collector": plan.request.collector, "port": plan.request.port,
        "kernel": plan.kernel, "netconsole": plan.netconsole, "method": plan.method,
        "route": {"dev": plan.dev, "nexthop": plan.nexthop, "via_gateway": plan.via_gateway,
                  "neighbour_state": plan.neigh_state, "kind": plan.kind,
                  "lower": list(plan.lower)},
        "drivers": {k: {"driver": d.name, "module": d.module, "modular": d.modular}
                    for k, d in plan.drivers.items()},
        "target": None, "netconsole_param": None,
        "messages": [{"level": m.level, "code": m.code, "text": m.text, "fix": m.fix}
                     for m in ([_note(note)] if note else []) + plan.messages],
        "files": [], "commands": [],
    }
    if t is not None:
        out["target"] = {k: getattr(t, k) for k in (
            "name", "dev", "local_ip", "source_ip", "local_port", "remote_ip",
            "remote_port", "remote_mac", "extended", "release", "userdata", "hostname")}
        out["netconsole_param"] = param_string(t)
    if plan.ok:
        out["files"] = [{"path": f.path, "mode": "%04o" % f.mode, "applies": f.applies,
                         "about": f.about, "content": f.content} for f in render.files(plan)]
        out["commands"] = [{"about": w, "command": c} for w, c in render.commands(plan)]
    if applied is not None:
        out["applied"] = {"files": [{"path": p, "outcome": o} for p, o in applied["files"]],
                          "loaded": [{"command": c, "status": rc, "output": o}
                                     for c, rc, o in applied["loaded"]]}
    return out


def _note(text):
    from syslogng_netconsole.sender.plan import Message
    return Message("note", "resolved", text)


def _driver_text(plan):
    parts = []
    for dev in plan.lower:
        d = plan.drivers.get(dev)
        if d is None:
            parts.append("%s: no driver found" % dev)
        else:
            parts.append("%s: driver %s (%s)" % (
                dev, d.name, "module %s" % d.module if d.modular else "built in"))
    return "; ".join(parts) or "-"


def _summary(plan):
    req, t = plan.request, plan.target
    lines = ["sender-config: collector %s:%d, kernel %s" % (req.collector, req.port,
                                                        plan.kernel)]
    if plan.dev:
        hop = ("via the gateway %s" % plan.nexthop) if plan.via_gateway else \
            "directly connected"
        src = t.source_ip if t else ""
        lines.append("  route       dev %s%s, %s" % (
            plan.dev, ", source %s" % src if src else "", hop))
        lines.append("  next hop    %s: %s (neighbour %s)" % (
            plan.nexthop, t.remote_mac if t else "MAC unknown", plan.neigh_state))
        kind = " (%s)" % plan.kind if plan.kind else ""
        lines.append("  interface   %s%s; %s" % (plan.dev, kind, _driver_text(plan)))
    if plan.method == "configfs":
        how = "configfs target %s" % t.name if t else "configfs target"
    else:
        how = "%s parameter" % ("boot" if plan.netconsole == "builtin" else "module")
    lines.append("  netconsole  %s; %s" % (plan.netconsole, how))
    if t is not None:
        feats = [x for x, on in (("extended", t.extended), ("release prefix", t.release),
                                 ("userdata hostname=%s" % (t.hostname or "<the host's "
                                  "name>"), t.userdata)) if on] or ["plain"]
        lines.append("  format      %s" % ", ".join(feats))
        lines.append("  parameter   netconsole=%s" % param_string(t))
    return lines


def to_text(plan, note="", applied=None, wanted_apply=False):
    out = _summary(plan)
    msgs = plan.messages
    if note:
        out.append("  (%s)" % note)
    if msgs:
        out.append("")
    for level in ("error", "warning", "note"):
        for m in (x for x in msgs if x.level == level):
            out.append("%s: %s" % (level, m.text))
            if m.fix:
                out.append("  fix: %s" % m.fix)
    if not plan.ok:
        out += ["", "Nothing to write until the errors above are fixed%s." % (
            " (--apply did nothing)" if wanted_apply else "")]
        return "\n".join(out) + "\n"
    out += ["", "Files (--apply writes them; one for a network stack or boot loader only "
            "where its directory exists):"]
    for f in render.files(plan):
        out += ["", "==> %s (%04o; %s: %s) <==" % (f.path, f.mode, render.LABELS[f.applies],
                                                   f.about), f.content.rstrip("\n")]
    out += ["", "Then:"]
    out += ["  %s: %s" % (w, c) for w, c in render.commands(plan)]
    out.append("  check on the collector: syslogng-netconsole sender-test (on this host)")
    if applied is not None:
        out += ["", "Applied:"]
        out += ["  %s: %s" % (p, o) for p, o in applied["files"]]
        for cmd, rc, o in applied["loaded"]:
            status = "left to you" if rc is None else "exit %d" % rc
            out.append("  %s: %s%s" % (cmd, status, (": " + o) if o else ""))
    return "\n".join(out) + "\n"
