"""Host names learnt from the senders' own streams (issue 15, first part): the name a
person knows a machine by, next to the address that stays the stream's identity.

Sources, most trusted first (a name from a more trusted source is never replaced by
a less trusted one):
  userdata  the netconsole target's configfs userdata `hostname` (extended records
            carry it as the `userdata.hostname` field of every record)
  boot log  systemd's "Hostname set to <NAME>." line of the host's own boot
Names are untrusted kernel text: only [A-Za-z0-9._-], at most 64 characters (an RFC
1123 name fits), anything else is refused and counted. The table is bounded (least
recently named hosts go first). Pure: records in, names out; no clock.
"""

import collections
import re
from typing import Optional

MAX_HOSTS = 10000
MAX_NAME = 64
USERDATA, BOOT_LOG = 2, 1                  # trust: higher wins
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}\Z" % (MAX_NAME - 1))
_SYSTEMD = re.compile(r"systemd\[1\]: Hostname set to <([^>]{1,256})>\.?\s*\Z")


class HostNames:
    def __init__(self, max_hosts: int = MAX_HOSTS):
        self.max_hosts = max_hosts
        self._names = collections.OrderedDict()    # address -> (trust, name)
        self.counters = collections.Counter()       # learnt, refused, evicted

    def learn(self, rec) -> None:
        """Take the name a record announces, if any (hot path: one dict lookup and
        one substring test for a record that names nothing)."""
        fields = rec.fields
        name = fields.get("userdata.hostname") if fields else None
        if name is not None:
            self._set(rec.host, USERDATA, name)
        elif "Hostname set to <" in rec.text:
            m = _SYSTEMD.search(rec.text)
            if m:
                self._set(rec.host, BOOT_LOG, m.group(1))

    def name(self, host: str) -> Optional[str]:
        got = self._names.get(host)
        return got[1] if got else None

    def __len__(self) -> int:
        return len(self._names)

    def _set(self, host: str, trust: int, name: str) -> None:
        if not _NAME.match(name):
            self.counters["refused"] += 1
            return
        old = self._names.get(host)
        if old is not None:
            if old[0] > trust or old == (trust, name):
                return
            self._names.move_to_end(host)
        elif len(self._names) >= self.max_hosts:
            self._names.popitem(last=False)
            self.counters["evicted"] += 1
        self._names[host] = (trust, name)
        self.counters["learnt"] += 1
