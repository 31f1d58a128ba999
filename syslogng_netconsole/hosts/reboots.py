"""Lost crashes (issue 13): a host that starts a new boot although its previous boot
never ended cleanly gets an incident of its own, type REBOOT ("unexplained reboot
after N s of silence", the last lines received before it as its text; one signature
for all of them, so the alerts fold them like any bug).

A boot ended cleanly, and gives none, when its records show (the rules, in order):
  reported  a crash report: an incident of that boot, or the kernel's "Kernel panic -
            not syncing" line (a panic with panic=N reboots by itself; its report is
            the incident)
  kexec     "kexec_core: Starting new kernel": a kexec reboot, or kdump taking a crash
  clean     a shutdown sequence: systemd-shutdown's lines, which it writes to the
            kernel log before it calls reboot(2)
  off       the kernel's "reboot: Power down" or "reboot: System halted" (deliberate)
Anything else is unexplained: a hard reset, a watchdog, a power cut, `reboot -f`.
Measured with real 6.12 guests (the kernel tier): the kernel's own last lines
("reboot: Restarting system", "reboot: Power down") never reach the collector, since
the kernel shuts the NIC down before it prints them; the last record of a `reboot -f`
or `poweroff -f` is whatever user space wrote before. So a clean shutdown is known by
its user-space sequence only, and a forced one looks like a reset.

The judgement waits GRACE seconds after the new boot begins: the incident of a report
that closed late (no end marker) still cancels it. The incidents in their grace are
saved across a stop or a kill (``pending_docs``/``restore``, sng/rebootstate.py).
Bounded (the least recently heard host is forgotten). Pure: wall time is an argument.
"""

import collections
from typing import List, Optional

from ..incidents.incident import Incident
from ..incidents.store import incident_from_dict
from ..ingest.records import Record
from ..reports.signature import signature
from .names import MAX_HOSTS

TYPE = "REBOOT"
TITLE = "unexplained reboot"
SIGNATURE = signature(TYPE, TITLE)       # one bug for the fleet: "hosts reboot unexplained"
GRACE = 15.0
LAST_LINES = 5
# a record starting with one of these explains the boot's end (the rules above):
# a shutdown sequence, a power-off or halt, a kexec, a panic
EXPLAINS = ("systemd-shutdown[1]: ", "systemd-shutdown: ", "reboot: Power down",
            "reboot: System halted", "kexec_core: Starting new kernel",
            "Kernel panic - not syncing")


BACKWARDS_US = 10_000_000   # a kernel clock this far behind the last record's: a new boot


class _Boot:
    __slots__ = ("boot", "last", "explained", "last_wall", "release",
                 "first_seq", "last_seq", "last_ts_us")

    def __init__(self, boot: int):
        self.boot = boot
        self.last = []              # (ts_us, text) of the last LAST_LINES records
        self.explained = False
        self.last_wall = 0.0
        self.release = self.first_seq = self.last_seq = self.last_ts_us = None

    def restarted(self, rec) -> bool:
        """A new boot the core's stream did not count: the stream was forgotten while
        the host was silent (idle, evicted), so the new boot began a new stream."""
        if rec.boot > self.boot:
            return True
        return (rec.ts_us is not None and self.last_ts_us is not None
                and rec.ts_us + BACKWARDS_US < self.last_ts_us
                and (rec.seq is None or self.last_seq is None or rec.seq < self.last_seq))


class BootWatch:
    def __init__(self, max_hosts: int = MAX_HOSTS, grace: float = GRACE):
        self.max_hosts, self.grace = max_hosts, grace
        self._hosts: "collections.OrderedDict[str, _Boot]" = collections.OrderedDict()
        self._pending: List[tuple] = []          # (due wall, incident)
        self.counters = collections.Counter()    # unexplained, cancelled
        self.changed = False                     # _pending changed since pending_docs()

    def observe(self, rec, wall: float) -> None:
        """One record (hot path: a dict lookup and a few prefix tests)."""
        st = self._hosts.get(rec.host)
        if st is None:
            st = self._add(rec.host, rec.boot)
        elif st.restarted(rec):
            self._new_boot(rec, st, wall)
            st = self._hosts[rec.host] = _Boot(max(rec.boot, st.boot))
        else:
            self._hosts.move_to_end(rec.host)
        text = rec.text
        if text.startswith(EXPLAINS):
            st.explained = True
        last = st.last
        last.append((rec.ts_us, text))
        if len(last) > LAST_LINES:
            del last[0]
        st.last_wall = wall
        if rec.release:
            st.release = rec.release
        if st.first_seq is None:
            st.first_seq = rec.seq
        if rec.seq is not None:
            st.last_seq = rec.seq
        if rec.ts_us is not None:
            st.last_ts_us = rec.ts_us

    def note_incident(self, inc) -> None:
        """A crash report of a host: its boot is explained; a pending REBOOT of that
        boot is cancelled."""
        if inc.type == TYPE:
            return
        st = self._hosts.get(inc.host)
        if st is not None and st.boot == inc.boot:
            st.explained = True
        kept = [(due, r) for due, r in self._pending
                if not (r.host == inc.host and r.boot == inc.boot)]
        if len(kept) != len(self._pending):
            self.counters["cancelled"] += len(self._pending) - len(kept)
            self._pending, self.changed = kept, True

    def due(self, wall: float) -> List[Incident]:
        """The REBOOT incidents whose grace has passed."""
        if not self._pending or self._pending[0][0] > wall:
            return []
        out = [r for due, r in self._pending if due <= wall]
        self._pending = [(due, r) for due, r in self._pending if due > wall]
        self.counters["unexplained"] += len(out)
        self.changed = True
        return out

    def pending_docs(self) -> List[dict]:
        """The REBOOT incidents in their grace, JSON-ready, soonest first."""
        self.changed = False
        return [{"due": due, "incident": inc.to_dict()} for due, inc in self._pending]

    def restore(self, docs) -> int:
        """Put back what pending_docs() gave an earlier run: their grace goes on (wall
        times); one already known (same id) or malformed is skipped. How many."""
        known = {inc.id for _due, inc in self._pending}
        n = 0
        for d in docs if isinstance(docs, list) else ():
            try:
                due, inc = float(d["due"]), incident_from_dict(d["incident"])
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
            if inc.type != TYPE or inc.id in known:
                continue
            self._pending.append((due, inc))
            known.add(inc.id)
            n += 1
        self._pending.sort(key=lambda p: p[0])
        return n

    def next_due(self) -> Optional[float]:
        return self._pending[0][0] if self._pending else None

    def _new_boot(self, rec, st: _Boot, wall: float) -> None:
        if st.explained or not st.last:
            return
        silence = max(0.0, wall - st.last_wall)
        lines = [Record(host=rec.host, text=t, ts_us=ts).dmesg() for ts, t in st.last]
        text = "\n".join(lines)
        inc = Incident(host=rec.host, type=TYPE, signature=SIGNATURE,
                       title="%s after %.0f s of silence" % (TITLE, silence),
                       text="%s of %s after %.0f s of silence; the last lines before it:\n%s"
                            % (TITLE, rec.host, silence, text),
                       first_line=lines[-1], boot=st.boot, release=st.release,
                       first_seq=st.first_seq, last_ts_us=st.last_ts_us,
                       first_time=st.last_wall, last_time=wall)
        self._pending.append((wall + self.grace, inc))
        self.changed = True

    def _add(self, host: str, boot: int) -> _Boot:
        if len(self._hosts) >= self.max_hosts:
            self._hosts.popitem(last=False)
        st = self._hosts[host] = _Boot(boot)
        return st
