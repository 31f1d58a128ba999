"""Which alerts go out, and when: pure, time is an argument.

- Dedup by signature within ``dedup_window``: the first occurrence alerts at once;
  further occurrences (any host) inside the window are folded and sent as a
  periodic digest ("TITLE: 37 more hosts: ..."), at most one per ``digest_interval``
  per signature. Nothing is dropped silently: every fold ends up in a digest.
- Re-submitting an incident id already seen is a no-op (restart replays).
- ``min_severity`` filters (counted).
- ``RateLimiter``: at most ``limit`` alerts per channel per ``period``; the rest are
  held back and summarised in one "rate limit: N alerts suppressed" message.

State is a JSON-able dict so the dispatcher can persist it across restarts.
"""

from typing import List, Optional

from syslogng_netconsole import options
from syslogng_netconsole.alerts import model

MAX_HOSTS_LISTED = 1000


class Policy:
    def __init__(self, dedup_window=3600.0, digest_interval=300.0, min_severity="info",
                 ttl=3600.0, state=None):
        self.window = float(dedup_window)
        self.interval = float(digest_interval)
        self.min_rank = model.severity_rank(min_severity)
        self.ttl = float(ttl)
        self.state = state if isinstance(state, dict) else {}
        self.state.setdefault("sigs", {})
        self.state.setdefault("ids", {})
        self.counters = {"admitted": 0, "folded": 0, "duplicate": 0,
                         "below_min_severity": 0, "digests": 0}

    def admit(self, alert, now):
        """-> (alerts to send now, verdict)."""
        ids = self.state["ids"]
        if alert.id in ids:
            self.counters["duplicate"] += 1
            return [], "duplicate"
        ids[alert.id] = now
        if model.severity_rank(alert.severity) < self.min_rank:
            self.counters["below_min_severity"] += 1
            return [], "below_min_severity"
        sig = alert.labels.get("signature") or alert.title
        sigs = self.state["sigs"]
        entry = sigs.get(sig)
        if entry is not None and now < entry["until"]:
            self._fold(entry, alert, now)
            self.counters["folded"] += 1
            return [], "folded"
        out = []
        if entry is not None and entry["pending"]:
            out.append(self._digest(entry, now))     # flush the old window first
        sigs[sig] = {"title": alert.title, "type": alert.labels.get("type", ""),
                     "signature": sig, "severity": alert.severity, "host": alert.host,
                     "since": now, "until": now + self.window, "last_emit": now,
                     "next_digest": None, "pending": [], "pending_count": 0, "seq": 0}
        self.counters["admitted"] += 1
        out.append(alert)
        return out, "sent"

    def _fold(self, entry, alert, now):
        if len(entry["pending"]) < MAX_HOSTS_LISTED and alert.host not in entry["pending"]:
            entry["pending"].append(alert.host)
        entry["pending_count"] += 1
        if model.severity_rank(alert.severity) > model.severity_rank(entry["severity"]):
            entry["severity"] = alert.severity
        if entry["next_digest"] is None:
            entry["next_digest"] = max(now, entry["last_emit"] + self.interval)

    def _digest(self, entry, now):
        entry["seq"] += 1
        d = model.digest(entry, entry["pending"], entry["pending_count"], now, self.ttl,
                         entry["seq"])
        entry["pending"] = []
        entry["pending_count"] = 0
        entry["next_digest"] = None
        entry["last_emit"] = now
        self.counters["digests"] += 1
        return d

    def due(self, now) -> List[model.Alert]:
        """Digests whose time has come; also forgets expired state."""
        out = []
        sigs = self.state["sigs"]
        for sig in list(sigs):
            e = sigs[sig]
            if e["next_digest"] is not None and now >= e["next_digest"]:
                out.append(self._digest(e, now))
            elif e["next_digest"] is None and now >= e["until"]:
                del sigs[sig]
        ids = self.state["ids"]
        horizon = now - max(self.window, 86400.0)
        for k in [k for k, t in ids.items() if t < horizon]:
            del ids[k]
        return out

    def next_deadline(self) -> Optional[float]:
        times = [e["next_digest"] for e in self.state["sigs"].values()
                 if e["next_digest"] is not None]
        return min(times) if times else None


def parse_rate(spec):
    """'20/5m', '20/300', '20' (per 5 min) or '0' (unlimited) -> (limit, period s)."""
    s = str(spec).strip().lower()
    if s in ("", "0", "none", "off", "unlimited"):
        return 0, 0.0
    n, _, per = s.partition("/")
    limit = int(n)
    period = options.duration(per) if per else 300.0
    if limit < 0 or period <= 0:
        raise ValueError("rate must be N/PERIOD with N >= 0")
    return limit, period


class RateLimiter:
    """Per-channel fixed-window limit; held-back alerts become one summary."""

    def __init__(self, limit, period, ttl=3600.0, state=None):
        self.limit = int(limit)
        self.period = float(period)
        self.ttl = float(ttl)
        self.state = state if isinstance(state, dict) else {}

    def allow(self, channel, alert, now):
        if self.limit <= 0:
            return True
        w = self.state.get(channel)
        if w is None or now >= w["start"] + self.period:
            if w is not None and w["suppressed"]:
                return self._over_limit(w, alert)   # summary still owed: keep holding
            w = self.state[channel] = {"start": now, "count": 0, "suppressed": 0,
                                       "titles": []}
        if w["count"] < self.limit:
            w["count"] += 1
            return True
        return self._over_limit(w, alert)

    @staticmethod
    def _over_limit(w, alert):
        w["suppressed"] += 1
        if len(w["titles"]) < 50:
            w["titles"].append(alert.summary_line())
        return False

    def due(self, now):
        """-> [(channel, summary alert)] for windows that ended with suppressed alerts."""
        out = []
        for ch in list(self.state):
            w = self.state[ch]
            if now >= w["start"] + self.period:
                if w["suppressed"]:
                    out.append((ch, model.rate_summary(ch, w["suppressed"], w["titles"],
                                                       w["start"], now, self.ttl)))
                del self.state[ch]
        return out

    def next_deadline(self):
        times = [w["start"] + self.period for w in self.state.values() if w["suppressed"]]
        return min(times) if times else None
