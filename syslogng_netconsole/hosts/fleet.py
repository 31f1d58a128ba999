"""Per-host facts for fleet questions (issue 13): when a host was last heard, which
boot it is in, which kernel release it runs (and ran), and what of its stream was
lost or came incomplete.

Fed with every record (``observe``: a few attribute updates) and with every incident
(``note_incident``); bounded (the least recently heard host goes first) and pruned by
age. The release comes from the record (the release prefix or the `release` sysdata
field), else the `Linux version <release> ...` banner, else an incident's `CPU: ...
<release>` line. Loss: ``lost`` is every record missing from the sequence numbers;
``lost_msgid`` the part of it that records carrying a msgid (6.17+) prove was lost
on the network rather than filtered by the sender's console loglevel. Pure: wall
time is an argument.
"""

import collections
from typing import Dict, Iterable, List, Optional

from . import selftest

MAX_HOSTS = 10000
MAX_RELEASES = 8           # releases remembered per host (the latest last)
_BANNER = "Linux version "

# the persisted fields of a host, in order (hostdb.py stores them as JSON)
FIELDS = ("host", "name", "first_seen", "last_seen", "boot", "reboots", "records", "lost",
          "lost_msgid", "incomplete_fragments", "incomplete_lines", "release", "releases",
          "incidents", "last_incident_id", "last_incident_title", "last_incident_time",
          "selftest")


class HostFacts:
    __slots__ = FIELDS

    def __init__(self, host: str, wall: float):
        self.host, self.name = host, None
        self.first_seen = self.last_seen = wall
        self.boot = self.reboots = self.records = self.lost = self.lost_msgid = 0
        self.incomplete_fragments = self.incomplete_lines = self.incidents = 0
        self.release = None
        self.releases: List[List] = []       # [release, first seen, last seen]
        self.last_incident_id = self.last_incident_title = self.last_incident_time = None
        self.selftest = None                 # the last `sender-test` record seen (selftest_facts)

    def to_dict(self) -> dict:
        return {k: getattr(self, k) for k in FIELDS}

    @classmethod
    def from_dict(cls, d: dict) -> "HostFacts":
        h = cls(str(d["host"]), float(d.get("first_seen") or 0.0))
        for k in FIELDS[1:]:
            if k in d and d[k] is not None:
                setattr(h, k, d[k])
        h.releases = [list(r) for r in h.releases if isinstance(r, (list, tuple)) and len(r) == 3]
        return h

    def set_release(self, release: str, wall: float) -> None:
        self.release = release
        for r in self.releases:
            if r[0] == release:
                r[2] = wall
                return
        self.releases.append([release, wall, wall])
        del self.releases[:-MAX_RELEASES]


class HostTable:
    def __init__(self, max_hosts: int = MAX_HOSTS):
        self.max_hosts = max_hosts
        self._hosts: "collections.OrderedDict[str, HostFacts]" = collections.OrderedDict()
        self._dirty = set()
        self._evicted: List[dict] = []       # final rows of evicted hosts, not saved yet
        self.counters = collections.Counter()    # evicted, pruned

    def __len__(self) -> int:
        return len(self._hosts)

    def get(self, host: str) -> Optional[HostFacts]:
        return self._hosts.get(host)

    def release(self, host: str) -> Optional[str]:
        h = self._hosts.get(host)
        return h.release if h else None

    def observe(self, rec, wall: float) -> None:
        """One record of `rec.host` (hot path)."""
        host = rec.host
        h = self._hosts.get(host)
        if h is None:
            h = self._add(host, wall)
        elif h.last_seen != wall:
            self._hosts.move_to_end(host)
        h.last_seen = wall
        h.records += 1
        if rec.boot > h.boot:          # the core counts a stream's reboots from 0; a
            h.reboots += rec.boot - h.boot   # host's plain and extended streams each
            h.boot = rec.boot                # count theirs: the highest tells
        if rec.lost_before:
            h.lost += rec.lost_before
            if rec.fields and "msgid" in rec.fields:
                h.lost_msgid += rec.lost_before
        if rec.incomplete:
            if rec.fragments > 1 or rec.format == "extended":
                h.incomplete_fragments += 1
            else:
                h.incomplete_lines += 1
        if rec.text.startswith(selftest.MARKER):
            self._selftest(h, rec, wall)
        rel = rec.release
        if rel is None and rec.text.startswith(_BANNER):
            parts = rec.text.split(None, 3)
            rel = parts[2] if len(parts) > 2 else None
        if rel is not None and rel != h.release:
            h.set_release(rel[:100], wall)
        self._dirty.add(host)

    def _selftest(self, h: HostFacts, rec, wall: float) -> None:
        got = selftest.parse(rec.text)
        if got is None:
            return
        h.selftest = selftest_facts(got, rec, wall, h)

    def note_incident(self, inc, wall: float) -> None:
        """An incident of a host: counted, and its release taken when the host's
        stream never said one (the report's `CPU: ... <release>` line)."""
        h = self._hosts.get(inc.host)
        if h is None:
            h = self._add(inc.host, wall)
        h.incidents += 1
        h.last_incident_id, h.last_incident_title = inc.id, (inc.title or "")[:200]
        h.last_incident_time = wall
        if inc.release and h.release is None:
            h.set_release(str(inc.release)[:100], wall)
        self._dirty.add(inc.host)

    def take_dirty(self, name_of=None) -> List[dict]:
        """The hosts changed since the last call, as dicts (for hostdb.py);
        `name_of(host)` gives each its current name (hosts/directory.py)."""
        out, self._evicted = self._evicted, []
        for host in self._dirty:
            h = self._hosts.get(host)
            if h is not None:
                if name_of is not None:
                    h.name = name_of(host)
                out.append(h.to_dict())
        self._dirty.clear()
        return out

    def load(self, rows: Iterable[dict]) -> None:
        """Hosts from an earlier run (hostdb.py), oldest first; bad rows are skipped."""
        for d in rows:
            try:
                h = HostFacts.from_dict(d)
            except (KeyError, TypeError, ValueError):
                continue
            h.boot = 0                  # the core's stream counters start again
            self._hosts[h.host] = h
            self._hosts.move_to_end(h.host)
            if len(self._hosts) > self.max_hosts:
                self._hosts.popitem(last=False)

    def prune(self, before: float) -> List[str]:
        """Forget hosts not heard since wall time `before`; returns them."""
        gone = [h for h, f in self._hosts.items() if f.last_seen < before]
        for h in gone:
            del self._hosts[h]
            self._dirty.discard(h)
        self.counters["pruned"] += len(gone)
        return gone

    def hosts(self) -> Dict[str, HostFacts]:
        return self._hosts

    def _add(self, host: str, wall: float) -> HostFacts:
        if len(self._hosts) >= self.max_hosts:
            old, facts = self._hosts.popitem(last=False)
            if old in self._dirty:          # its last changes still go to the table
                self._dirty.discard(old)
                if len(self._evicted) < self.max_hosts:
                    self._evicted.append(facts.to_dict())
            self.counters["evicted"] += 1
        h = self._hosts[host] = HostFacts(host, wall)
        return h


def selftest_facts(got: dict, rec, wall: float, h: HostFacts) -> dict:
    """What a self-test record proves about the sender's set-up, and what it lacks
    (the README's recommended set-up: extended format, release prefix, userdata
    hostname, no loss)."""
    fields = rec.fields or {}
    missing = []
    if rec.format != "extended":
        missing.append("extended format (+)")
    elif rec.release is None:
        missing.append("release prefix (r)")
    if "userdata.hostname" not in fields:
        missing.append("userdata hostname")
    if h.lost:
        missing.append("no loss (%d records lost so far)" % h.lost)
    return {"id": got["id"], "time": wall, "sent": got.get("time"), "format": rec.format,
            "release": rec.release, "hostname": fields.get("userdata.hostname"),
            "missing": missing}
