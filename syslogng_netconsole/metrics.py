"""The collector's numbers in Prometheus text exposition format (issue 13), for
node_exporter's textfile collector (the destination's ``metrics_file()``) and for
``syslogng-netconsole metrics``.

Everything comes from the state directory, as the collector leaves it: the counters
files (``source-<port>.json``, ``incidents-stats.json``, ``alerts-stats.json``), the
host table (``hosts.sqlite``) and the store (``incidents.sqlite``). Cardinality is
bounded whatever the fleet: per-host series only for the TOP_HOSTS hosts with the
most lost records (the rest summed in one series), releases and incident types as
they come (a fleet runs a few of each; capped too). No clock.
"""

import glob
import json
import os
import re
from typing import Dict, List, Optional, Tuple

from .hosts.hostdb import HostDb, HostDbError
from .incidents.store import Store, StoreError
from .reports import kinds

TOP_HOSTS = 100
TOP_VALUES = 50          # releases, incident types: at most this many series each
# counter names that are levels, not running totals
GAUGES = {"core.hosts", "core.pending_bytes", "detect.kept_records", "detect.open_reports",
          "detect.queued_incidents", "detect.streams", "source.held_bytes",
          "source.held_records", "source.drop_hosts", "open_reports", "streams", "unstored",
          "store_ok", "queued"}
SKIP = {"detect.worker_pid"}
_NAME_BAD = re.compile(r"[^a-zA-Z0-9_]")


def metric_name(*parts: str) -> str:
    return _NAME_BAD.sub("_", "_".join(p for p in parts if p)).strip("_")


def label_value(v) -> str:
    return str(v).replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class Exposition:
    """Metric families in order, each with HELP and TYPE once."""

    def __init__(self):
        self._families: Dict[str, Tuple[str, str, List[str]]] = {}

    def add(self, name: str, kind: str, help_text: str, value, labels=()) -> None:
        if isinstance(value, bool):
            value = int(value)
        if not isinstance(value, (int, float)):
            return
        fam = self._families.setdefault(name, (kind, help_text, []))
        lbl = ",".join('%s="%s"' % (k, label_value(v)) for k, v in labels)
        fam[2].append("%s%s %s" % (name, "{%s}" % lbl if lbl else "", _number(value)))

    def text(self) -> str:
        out = []
        for name, (kind, help_text, samples) in self._families.items():
            out.append("# HELP %s %s" % (name, help_text.replace("\\", "\\\\").replace("\n", " ")))
            out.append("# TYPE %s %s" % (name, kind))
            out.extend(samples)
        return "\n".join(out) + "\n"


def _number(v) -> str:
    return repr(float(v)) if isinstance(v, float) else str(int(v))


def counters(exp: Exposition, prefix: str, values: dict, labels=(), help_of="") -> None:
    """A counters dict ({"core.datagrams": 5, ...}) as netconsole_<prefix>_<name>[_total]."""
    for key in sorted(values):
        v = values[key]
        if key in SKIP or isinstance(v, (dict, list, str)) or v is None:
            continue
        gauge = key in GAUGES
        name = metric_name("netconsole", prefix, key.replace(".", "_")) + ("" if gauge else "_total")
        exp.add(name, "gauge" if gauge else "counter", "%s %s" % (help_of, key), v, labels)


def collect(state_dir: str) -> Tuple[str, List[str]]:
    """The exposition text of the collector whose state is in `state_dir`, and what
    could not be read (each a short message; the rest is still there)."""
    exp, trouble = Exposition(), []
    for path in sorted(glob.glob(os.path.join(state_dir, "source-*.json"))):
        doc = _json(path, trouble)
        if doc:
            port = str(doc.get("port", ""))
            c = doc.get("counters") or {}
            exp.add("netconsole_datagrams_total", "counter", "datagrams received",
                    c.get("source.datagrams", 0), [("port", port)])
            counters(exp, "", c, [("port", port)], "netconsole() source counter")
    for name, prefix in (("incidents-stats.json", "incidents"), ("alerts-stats.json", "alerts")):
        doc = _json(os.path.join(state_dir, name), trouble)
        if doc:
            counters(exp, prefix, doc.get("counters", doc), (), "%s destination value" % prefix)
    _hosts(exp, state_dir, trouble)
    _incidents(exp, state_dir, trouble)
    return exp.text(), trouble


def _json(path: str, trouble: List[str]) -> Optional[dict]:
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            doc = json.load(f)
        return doc if isinstance(doc, dict) else None
    except (OSError, ValueError) as e:
        trouble.append("%s: %s" % (path, e))
        return None


def _hosts(exp: Exposition, state_dir: str, trouble: List[str]) -> None:
    if not os.path.exists(os.path.join(state_dir, "hosts.sqlite")):
        return
    try:
        db = HostDb(state_dir, readonly=True)
        try:
            rows, releases = db.hosts(), db.releases()
        finally:
            db.close()
    except HostDbError as e:
        trouble.append(str(e))
        return
    exp.add("netconsole_hosts", "gauge", "hosts in the host table", len(rows))
    now_on: Dict[str, int] = {}
    for r in rows:
        now_on[r.get("release") or ""] = now_on.get(r.get("release") or "", 0) + 1
    for rel, n in sorted(now_on.items(), key=lambda kv: -kv[1])[:TOP_VALUES]:
        exp.add("netconsole_hosts_on_release", "gauge", "hosts whose current release is this",
                n, [("release", rel)])
    for r in releases[:TOP_VALUES]:
        exp.add("netconsole_hosts_seen_on_release", "gauge", "hosts ever seen on this release",
                r["hosts"], [("release", r["release"])])
    _host_loss(exp, rows)


def _host_loss(exp: Exposition, rows: List[dict]) -> None:
    worst = sorted(rows, key=lambda r: -(r.get("lost") or 0))
    for r in worst[:TOP_HOSTS]:
        if not r.get("lost"):
            break
        labels = [("host", r["host"]), ("hostname", r.get("name") or "")]
        exp.add("netconsole_host_lost_records_total", "counter",
                "records lost to sequence gaps, per host (the %d hosts losing most)" % TOP_HOSTS,
                r["lost"], labels)
        exp.add("netconsole_host_lost_records_msgid_total", "counter",
                "records a msgid proves lost on the network, per host", r.get("lost_msgid") or 0,
                labels)
    rest = worst[TOP_HOSTS:]
    exp.add("netconsole_other_hosts_lost_records_total", "counter",
            "records lost by the hosts not listed per host", sum(r.get("lost") or 0 for r in rest))
    exp.add("netconsole_lost_records_total", "counter", "records lost to sequence gaps, all hosts",
            sum(r.get("lost") or 0 for r in rows))
    for field in ("incomplete_fragments", "incomplete_lines", "reboots"):
        exp.add("netconsole_%s_total" % field, "counter", "%s, all hosts" % field.replace("_", " "),
                sum(r.get(field) or 0 for r in rows))


def _incidents(exp: Exposition, state_dir: str, trouble: List[str]) -> None:
    if not os.path.exists(os.path.join(state_dir, "incidents.sqlite")):
        return
    try:
        store = Store(state_dir, readonly=True)
        try:
            rows = store.type_counts()
        finally:
            store.close()
    except StoreError as e:
        trouble.append(str(e))
        return
    by: Dict[Tuple[str, str], int] = {}
    for itype, panicked, title, n in rows:
        key = (itype or "unknown", kinds.severity(itype or "", bool(panicked), title or ""))
        by[key] = by.get(key, 0) + n
    for (itype, sev), n in sorted(by.items(), key=lambda kv: -kv[1])[:TOP_VALUES * 4]:
        exp.add("netconsole_incidents_total", "counter", "incidents stored, by type and severity",
                n, [("type", itype), ("severity", sev)])


def write(path: str, text: str) -> None:
    """Atomically (node_exporter must never read half a file)."""
    tmp = "%s.tmp.%d" % (path, os.getpid())
    with open(tmp, "w") as f:
        f.write(text)
    os.replace(tmp, path)
