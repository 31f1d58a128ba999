"""Host names and labels learnt from the senders' own streams: the name a person knows
a machine by, next to the address that stays the stream's identity.

What a stream can tell:
  userdata  the netconsole target's configfs userdata: ``hostname`` names the host,
            every other key (``rack``, ``role`` ...) is a label (extended records carry
            them as ``userdata.<key>`` fields of every record)
  boot log  systemd's "Hostname set to <NAME>." line of the host's own boot
Names are untrusted kernel text: only [A-Za-z0-9._-], at most 64 characters (an RFC
1123 name fits), anything else is refused and counted; labels are cleaned by
labels.py. The table is bounded (least recently named hosts go first). Pure: records
in, names out; no clock. directory.py puts these together with the other sources.
"""

import collections
import re
from typing import Dict, Optional

from . import labels as hostlabels

MAX_HOSTS = 10000
MAX_NAME = 64
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,%d}\Z" % (MAX_NAME - 1))
_SYSTEMD = re.compile(r"systemd\[1\]: Hostname set to <([^>]{1,256})>\.?\s*\Z")
_USERDATA = "userdata."
_NO_LABELS: Dict[str, str] = {}


def valid_name(name: str) -> bool:
    return bool(_NAME.match(name))


class Learnt:
    """What one host's stream told: userdata name, boot-log name, userdata labels."""
    __slots__ = ("userdata", "boot_log", "labels", "raw")

    def __init__(self):
        self.userdata = self.boot_log = None
        self.labels = _NO_LABELS
        self.raw = None         # the userdata fields last seen, to skip unchanged ones


class HostNames:
    def __init__(self, max_hosts: int = MAX_HOSTS):
        self.max_hosts = max_hosts
        self._hosts = collections.OrderedDict()    # address -> Learnt
        self.counters = collections.Counter()       # learnt, refused, evicted

    def learn(self, rec) -> bool:
        """Take the name and labels a record announces, if any; True when something
        changed (hot path: a record that names nothing costs a dict test and one
        substring test)."""
        fields = rec.fields
        if fields:
            raw = tuple(sorted((k, v) for k, v in fields.items() if k.startswith(_USERDATA)))
            if raw:
                return self._userdata(rec.host, raw)
        if "Hostname set to <" in rec.text:
            m = _SYSTEMD.search(rec.text)
            if m:
                return self._set_boot_log(rec.host, m.group(1))
        return False

    def get(self, host: str) -> Optional[Learnt]:
        return self._hosts.get(host)

    def name(self, host: str) -> Optional[str]:
        got = self._hosts.get(host)
        return (got.userdata or got.boot_log) if got else None

    def __len__(self) -> int:
        return len(self._hosts)

    def _entry(self, host: str) -> Learnt:
        got = self._hosts.get(host)
        if got is not None:
            self._hosts.move_to_end(host)
            return got
        if len(self._hosts) >= self.max_hosts:
            self._hosts.popitem(last=False)
            self.counters["evicted"] += 1
        got = self._hosts[host] = Learnt()
        return got

    def _userdata(self, host: str, raw) -> bool:
        got = self._hosts.get(host)
        if got is not None and got.raw == raw:
            return False
        name = None
        pairs = []
        for key, value in raw:
            key = key[len(_USERDATA):]
            if key == "hostname":
                if valid_name(value):
                    name = value
                else:
                    self.counters["refused"] += 1
            else:
                pairs.append((key, value))
        got = self._entry(host)
        got.raw, got.userdata = raw, name
        got.labels = hostlabels.clean(pairs) or _NO_LABELS
        self.counters["learnt"] += 1
        return True

    def _set_boot_log(self, host: str, name: str) -> bool:
        if not valid_name(name):
            self.counters["refused"] += 1
            return False
        got = self._hosts.get(host)
        if got is not None and got.boot_log == name:
            return False
        self._entry(host).boot_log = name
        self.counters["learnt"] += 1
        return True
