"""Optional reverse DNS for senders that have no other name: a PTR lookup per host,
done by background threads and cached, never on the ingest path.

``name(host)`` only reads the cache; a host not in it is queued (``want``) and named
once ``collect(now)`` (called from the source's loop, not per datagram) takes the
threads' answers. Entries live ``ttl`` seconds (failures ``negative_ttl``), then the
host is looked up again and keeps its old name until the answer comes. Bounded: at
most ``max_hosts`` entries and as many queued lookups. No clock: time is an argument.
"""

import collections
import heapq
import queue
import socket
import threading
from typing import Callable, List, Optional

from ..threads import name_os_thread
from .names import MAX_HOSTS, valid_name

THREADS = 4            # lookups in flight: a slow resolver delays names, nothing else
NEGATIVE_TTL = 300.0


def ptr_lookup(address: str) -> Optional[str]:
    """The system resolver (nsswitch: /etc/hosts, DNS ...); None when it has no name."""
    try:
        name = socket.gethostbyaddr(address)[0]
    except (OSError, UnicodeError):
        return None
    return name.rstrip(".") or None


class ReverseDns:
    def __init__(self, ttl: float = 3600.0, negative_ttl: float = NEGATIVE_TTL,
                 max_hosts: int = MAX_HOSTS,
                 lookup: Callable[[str], Optional[str]] = ptr_lookup, threads: int = THREADS):
        self.ttl, self.negative_ttl, self.max_hosts = ttl, negative_ttl, max_hosts
        self._lookup = lookup
        self._names = collections.OrderedDict()   # host -> name or None (looked up, no name)
        self._expiry = []                         # heap of (expires at, host)
        self._queued = set()                      # hosts asked for, not answered yet
        self._todo = queue.Queue()
        self._done = collections.deque()          # (host, name) from the threads
        self._nthreads, self._threads = threads, []
        self.counters = collections.Counter()     # lookups, named, unnamed, refused, queue_full

    def name(self, host: str) -> Optional[str]:
        return self._names.get(host)

    def want(self, host: str) -> None:
        """Queue a lookup of a host not in the cache (cheap; never blocks)."""
        if host in self._names or host in self._queued:
            return
        if len(self._queued) >= self.max_hosts:
            self.counters["queue_full"] += 1
            return
        self._ask(host)

    def collect(self, now: float) -> List[str]:
        """Take the answers that arrived and queue the expired entries again;
        returns the hosts whose name changed."""
        changed = []
        while self._done:
            host, name = self._done.popleft()
            self._queued.discard(host)
            if name is not None and not valid_name(name):
                self.counters["refused"] += 1
                name = None
            self.counters["named" if name else "unnamed"] += 1
            if host not in self._names and len(self._names) >= self.max_hosts:
                self._names.popitem(last=False)
            if self._names.get(host, False) != name:
                changed.append(host)
            self._names[host] = name
            self._names.move_to_end(host)
            heapq.heappush(self._expiry, (now + (self.ttl if name else self.negative_ttl), host))
        while self._expiry and self._expiry[0][0] <= now:
            _, host = heapq.heappop(self._expiry)
            if host in self._names and host not in self._queued:
                self._ask(host)                 # the old name stays until the answer
        return changed

    def _ask(self, host: str) -> None:
        self._queued.add(host)
        self.counters["lookups"] += 1
        self._start_threads()
        self._todo.put(host)

    def close(self) -> None:
        for _ in self._threads:
            self._todo.put(None)
        self._threads = []

    def _start_threads(self) -> None:
        while len(self._threads) < self._nthreads:
            t = threading.Thread(target=self._work, name="netconsole-rdns", daemon=True)
            t.start()
            self._threads.append(t)

    def _work(self) -> None:
        name_os_thread("netconsole-rdns")
        while True:
            host = self._todo.get()
            if host is None:
                return
            try:
                name = self._lookup(host)
            except Exception:       # a broken resolver must not kill the thread
                name = None
            self._done.append((host, name))
