"""The internal alert, shaped like an Alertmanager alert.

``labels`` are identity (never per-occurrence values), ``annotations`` are text,
``starts_at``/``ends_at`` are wall-clock seconds. Every renderer (mail, generic
webhook, Slack, Alertmanager API) starts from this one object, which is also what
the outbox stores (``to_json``/``from_json``). Pure: times are arguments.
"""

import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional

from syslogng_netconsole.alerts import sanitize
from syslogng_netconsole.hosts import labels as hostlabels
from syslogng_netconsole.reports import kinds

# version of the alert document (webhook body, jsonfile line): bump on any
# incompatible change (a field removed, renamed or changing meaning or type); added
# fields keep it (docs/alerts.md: "fields may be added"), as issue 14's symbols,
# guilty_file and subsystem did
ALERT_SCHEMA_VERSION = 1
SEVERITIES = ("info", "warning", "error", "critical")

def severity_rank(severity):
    try:
        return SEVERITIES.index(severity)
    except ValueError:
        return SEVERITIES.index("error")


def severity_of(incident_type, panicked=False, title=""):
    """reports.kinds.severity: the one table (typed crash types, then keywords)."""
    return kinds.severity(incident_type or "", panicked, title or "")


def rfc3339(ts):
    """Wall-clock seconds -> '2026-11-27T12:00:00.123Z' (what Alertmanager expects)."""
    import datetime

    d = datetime.datetime.fromtimestamp(float(ts), tz=datetime.timezone.utc)
    return d.strftime("%Y-%m-%dT%H:%M:%S.") + "%03dZ" % (d.microsecond // 1000)


def _fingerprint(labels):
    h = hashlib.sha1()
    for k in sorted(labels):
        h.update(("%s=%s\n" % (k, labels[k])).encode("utf-8", "replace"))
    return h.hexdigest()[:16]


@dataclass
class Alert:
    id: str                         # stable: receivers drop duplicates by it
    kind: str                       # "incident" | "digest" | "rate-summary" | "test"
    severity: str
    title: str                      # sanitised one line
    host: str                       # sanitised; "" for digests and summaries
    labels: Dict[str, str]
    annotations: Dict[str, str]
    starts_at: float
    ends_at: float
    text: str = ""                  # sanitised full report (body only)
    hosts: List[str] = field(default_factory=list)   # digests: the folded hosts
    count: int = 1                  # occurrences this alert stands for
    incident: Optional[dict] = None  # summary fields of the incident (JSON-safe)
    hostname: str = ""              # the host's name when known (hosts/directory.py)
    host_labels: Dict[str, str] = field(default_factory=dict)  # rack, role ... (also in labels)
    news: str = ""                  # "new", "new on <release>" or "" (incidents/novelty.py)

    @property
    def fingerprint(self):
        return _fingerprint(self.labels)

    def to_json(self):
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, s):
        """Tolerant of rows written by another version: unknown keys are ignored."""
        d = json.loads(s)
        return cls(**{k: v for k, v in d.items() if k in _FIELD_NAMES})

    def who(self):
        """The host as a person reads it: "db-17 (10.1.2.3)", or the address alone."""
        return "%s (%s)" % (self.hostname, self.host) if self.hostname else self.host

    def summary_line(self):
        if self.host:
            return "%s: %s" % (self.who(), self.title)
        return self.title

    def headline(self):
        """The mail subject's and Slack's first line: news first ("new on 6.12.3: ...")."""
        return "%s: %s" % (self.news, self.summary_line()) if self.news else self.summary_line()


_FIELD_NAMES = frozenset(Alert.__dataclass_fields__)

# incident fields carried into alerts (text goes separately, sanitised and capped)
_INCIDENT_FIELDS = ("id", "host", "hostname", "boot", "type", "title", "alt_titles", "signature",
                    "new", "new_on_release",
                    "first_line", "corrupted", "truncated", "panicked", "release", "taint",
                    "cpu", "pid", "comm", "hardware", "pc", "frames", "modules",
                    "first_seq", "last_seq", "first_ts_us", "last_ts_us", "lost_records",
                    "guilty_file", "subsystem", "symbols")


def _clean(v):
    if isinstance(v, (bool, int, float)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_clean(x) for x in v[:64]]
    if isinstance(v, dict):             # symbols: frames with their file:line
        return {sanitize.one_line(k, 64): _clean(x) for k, x in list(v.items())[:64]}
    return sanitize.one_line(v, 500)


def from_incident(incident, now, ttl=3600.0, text_cap=sanitize.BODY_CAP):
    """Incident -> Alert. ``now`` is wall-clock seconds (startsAt)."""
    get = lambda name, default=None: getattr(incident, name, default)  # noqa: E731
    host = sanitize.one_line(get("host", ""), 120)
    hostname = sanitize.one_line(get("hostname", "") or "", 64)
    itype = sanitize.one_line(get("type", ""), 60) or "unknown"
    title = sanitize.one_line(get("title", ""), sanitize.HEADER_CAP) or itype
    signature = sanitize.one_line(get("signature", ""), 128)
    severity = severity_of(itype, bool(get("panicked", False)), title)
    details = {}
    for name in _INCIDENT_FIELDS:
        try:
            details[name] = _clean(get(name))
        except Exception:   # a property that fails must not lose the alert
            details[name] = None
    labels = {"alertname": "KernelCrash", "host": host, "instance": host, "type": itype,
              "signature": signature, "severity": severity, "source": "netconsole"}
    if hostname:
        labels["hostname"] = hostname
    release = sanitize.one_line(get("release", "") or "", 100)
    if release:
        labels["release"] = release
    news = ""
    if get("new_on_release", False) and release:
        labels["new_on_release"] = "true"
        news = "new on %s" % release
    if get("new", False):
        labels["new"] = "true"
        news = news or "new"
    host_labels = _host_labels(get("labels"))
    for k, v in host_labels.items():
        labels.setdefault(k, v)         # never one of the alert's own labels
    who = "%s (%s)" % (hostname, host) if hostname else host
    annotations = {"summary": "%s: %s" % (who, title), "title": title,
                   "description": sanitize.multi_line(get("text", ""), 3000),
                   "incident_id": str(details.get("id") or "")}
    for name in ("release", "taint", "pc", "comm"):
        if details.get(name):
            annotations[name] = str(details[name])
    if details.get("modules"):
        annotations["modules"] = sanitize.one_line(" ".join(details["modules"]), 500)
    if details.get("guilty_file"):
        annotations["guilty_file"] = str(details["guilty_file"])
    sub = details.get("subsystem") or {}
    if isinstance(sub, dict) and sub.get("name"):
        annotations["subsystem"] = sanitize.one_line(
            " ".join([sub["name"]] + list(sub.get("lists") or [])), 500)
    text = _report_text(incident)
    # startsAt: when the report began (the destination passes wall-clock times),
    # unless that is missing or implausible
    started = get("first_time", 0.0)
    starts = started if isinstance(started, (int, float)) and \
        now - 86400 < started <= now + 60 else float(now)
    return Alert(id=str(details.get("id") or _fingerprint(labels)), kind="incident",
                 severity=severity, title=title, host=host, labels=labels,
                 annotations=annotations, starts_at=float(starts),
                 ends_at=float(starts) + float(ttl),
                 text=sanitize.multi_line(text, text_cap), incident=details,
                 hostname=hostname, host_labels=host_labels, news=news)


def _report_text(incident):
    """The report, each frame with its file:line once symbolized."""
    from syslogng_netconsole.symbols.symbolize import annotate
    return annotate(getattr(incident, "text", "") or "", getattr(incident, "symbols", None))


def labels_text(host_labels):
    """'rack=r12 role=db' (values are one clean line each: hosts/labels.py)."""
    return " ".join("%s=%s" % kv for kv in sorted(host_labels.items()))


def _host_labels(raw):
    """The incident's host labels, cleaned again: a stored or journaled incident
    of another version, or a hand-made one, is untrusted too."""
    if not isinstance(raw, dict):
        return {}
    return hostlabels.clean((k, v) for k, v in raw.items() if isinstance(v, (str, int, float)))


def digest(first, hosts, count, now, ttl, seq):
    """The periodic digest for one signature: 'TITLE: 37 more hosts: a, b, ...'."""
    shown = ", ".join(hosts[:10]) + (", ..." if len(hosts) > 10 else "")
    nhosts = len(hosts)
    title = sanitize.one_line("%s: %d more host%s: %s" % (
        first["title"], nhosts, "" if nhosts == 1 else "s", shown), sanitize.HEADER_CAP)
    labels = {"alertname": "KernelCrashDigest", "type": first["type"],
              "signature": first["signature"], "severity": first["severity"],
              "source": "netconsole"}
    annotations = {"summary": title, "title": first["title"],
                   "hosts": sanitize.one_line(" ".join(hosts), 4000),
                   "count": str(count), "first_host": first["host"]}
    aid = hashlib.sha1(("digest|%s|%s|%d" % (first["signature"], first["since"], seq))
                       .encode()).hexdigest()[:20]
    body = "%d more occurrence(s) of\n  %s\n(first seen on %s) on these hosts:\n\n%s\n" % (
        count, first["title"], first["host"], "\n".join(hosts))
    return Alert(id=aid, kind="digest", severity=first["severity"], title=title, host="",
                 labels=labels, annotations=annotations, starts_at=float(now),
                 ends_at=float(now) + float(ttl), text=body, hosts=list(hosts), count=count)


def rate_summary(channel, suppressed, titles, period_start, now, ttl):
    """One 'storm' message per channel and period when the rate limit held alerts back."""
    title = "rate limit: %d alert%s suppressed on channel %s" % (
        suppressed, "" if suppressed == 1 else "s", channel)
    labels = {"alertname": "KernelCrashStorm", "severity": "warning", "source": "netconsole"}
    body = "%s\n\n%s\n" % (title, "\n".join(titles))
    aid = hashlib.sha1(("rate|%s|%s" % (channel, period_start)).encode()).hexdigest()[:20]
    return Alert(id=aid, kind="rate-summary", severity="warning", title=title, host="",
                 labels=labels, annotations={"summary": title, "count": str(suppressed)},
                 starts_at=float(now), ends_at=float(now) + float(ttl), text=body,
                 count=suppressed)


def synthetic(now, ttl=300.0, host="test-host"):
    """What `syslogng-netconsole test-alert` sends."""
    labels = {"alertname": "KernelCrashTest", "host": host, "type": "test",
              "signature": "test", "severity": "info", "source": "netconsole"}
    title = "test alert from syslogng-netconsole"
    aid = hashlib.sha1(("test|%r" % now).encode()).hexdigest()[:20]
    return Alert(id=aid, kind="test", severity="info", title=title, host=host,
                 labels=labels, annotations={"summary": "%s: %s" % (host, title),
                                             "title": title},
                 starts_at=float(now), ends_at=float(now) + float(ttl),
                 text="This is a test alert. No kernel crashed.\n")
