"""Who a sender is: its name and labels from every source, most trusted first
(issue 15):

  1. its own netconsole userdata (``hostname``, other keys as labels)   names.py
  2. the operator's inventory (address or network -> name, labels)      inventory.py
  3. its own boot log ("Hostname set to <NAME>.")                       names.py
  4. reverse DNS, when enabled (background lookups, cached)             rdns.py
Labels: userdata keys win over the inventory's. The address stays the identity of
the stream and of its per-host file; this is only what people read.

``who(host)`` is on the per-record path: one dict lookup once a host is resolved;
the answer is cached per host and dropped when a source changes what it says. Pure
but for the reverse-DNS threads; no clock (``poll(now)``).
"""

from typing import Dict, Optional, Tuple

from . import labels as hostlabels
from .inventory import Inventory
from .names import MAX_HOSTS, HostNames
from .rdns import ReverseDns

Who = Tuple[Optional[str], Dict[str, str]]
_NOBODY: Who = (None, {})


class HostDirectory:
    def __init__(self, max_hosts: int = MAX_HOSTS):
        self.max_hosts = max_hosts
        self.learnt = HostNames(max_hosts)
        self.inventory = Inventory()
        self.rdns: Optional[ReverseDns] = None
        self._cache: Dict[str, Who] = {}

    # ------------------------------------------------------------ sources

    def learn(self, rec) -> None:
        if self.learnt.learn(rec):
            self._cache.pop(rec.host, None)

    def set_inventory(self, inventory: Inventory) -> None:
        self.inventory = inventory
        self._cache.clear()

    def set_reverse_dns(self, enabled: bool, ttl: float, **kw) -> None:
        """Turn reverse DNS on or off (a reload may change it); a new TTL applies to
        the answers that come after."""
        if enabled and self.rdns is None:
            self.rdns = ReverseDns(ttl=ttl, max_hosts=self.max_hosts, **kw)
        elif not enabled and self.rdns is not None:
            self.rdns.close()
            self.rdns = None
        if self.rdns is not None:
            self.rdns.ttl = ttl
        self._cache.clear()

    def poll(self, now: float) -> None:
        """Take the reverse-DNS answers (the source's loop, a few times a second)."""
        if self.rdns is not None:
            for host in self.rdns.collect(now):
                self._cache.pop(host, None)

    def close(self) -> None:
        if self.rdns is not None:
            self.rdns.close()

    # ------------------------------------------------------------ answers

    def who(self, host: str) -> Who:
        got = self._cache.get(host)
        if got is None:
            got = self._resolve(host)
            if len(self._cache) >= self.max_hosts:
                self._cache.clear()     # cheap to rebuild; keeps memory bounded
            self._cache[host] = got
        return got

    def name(self, host: str) -> Optional[str]:
        return self.who(host)[0]

    def labels(self, host: str) -> Dict[str, str]:
        return self.who(host)[1]

    def _resolve(self, host: str) -> Who:
        own = self.learnt.get(host)
        inv = self.inventory.lookup(host)
        name = own.userdata if own else None
        if name is None and inv is not None:
            name = inv.name
        if name is None and own is not None:
            name = own.boot_log
        if name is None and self.rdns is not None:
            name = self.rdns.name(host)
            if name is None:
                self.rdns.want(host)
        labels = hostlabels.merge(inv.labels if inv else {}, own.labels if own else {})
        if name is None and not labels:
            return _NOBODY
        return name, labels
