"""What one netconsole() source listens with, kept across syslog-ng reloads: UDP
sockets, reassembly state, records not yet posted, counters.

A reload builds a new source instance but keeps this module (it is not re-imported),
so endpoints live in the registry below: the next instance takes its endpoint over
(`take`) while the kernel buffers datagrams, and no port is closed and reopened.

No syslogng import: the source passes `say` (a RateLimitedLog) for trouble that can
repeat and logs what these functions return. Time is an argument (monotonic seconds).
"""

import collections
import os
import select
import socket
import threading
from typing import Dict, List, Optional, Tuple

from ..hosts.directory import HostDirectory
from ..hosts.fleet import HostTable
from ..hosts.reboots import BootWatch
from . import hostfacts
from ..ingest.reassembly import Reassembler
from .sockets import bind, set_rcvbuf

RECV_SIZE = 65536          # largest UDP payload is 65527 bytes: nothing is ever cut
READ_BATCH = 256           # datagrams read per socket before timers and posting run
MAX_HELD = 20000           # drained records waiting for their post (or a restart)...
MAX_HELD_BYTES = 32 << 20  # ...and their text; beyond either, the oldest are dropped (counted)
ORPHAN_GRACE = 30.0        # seconds an untaken endpoint (port left the config) stays open
BIND_RETRY = 5.0           # seconds between attempts to bind a busy port
MAX_DROP_HOSTS = 1000      # hosts whose drops are counted one by one; beyond, under "other"


class Held(collections.deque):
    """Records drained from the core but not yet posted, with their text size."""

    nbytes = 0

    def append(self, rec):
        super().append(rec)
        self.nbytes += len(rec.text)

    def extend(self, recs):
        for rec in recs:
            self.append(rec)

    def popleft(self):
        rec = super().popleft()
        self.nbytes -= len(rec.text)
        return rec

    def full(self, fraction=1.0) -> bool:
        return len(self) >= MAX_HELD * fraction or self.nbytes >= MAX_HELD_BYTES * fraction


class Endpoint:
    """Sockets + reassembly state of one configured source; survives reloads.
    `settings` are the source's parsed options (ip, port, rcvbuf, reuseport, ...)."""

    def __init__(self, key, settings, limits):
        self.key = key
        self.settings = settings
        self.core = Reassembler(limits)
        self.socks = {}                      # addr -> socket
        self.held = Held()                   # records drained from the core, not yet posted
        self.counters = collections.Counter()
        self.host_drops = collections.Counter()   # sender -> records dropped (caps)
        self.names = HostDirectory()              # sender -> its name and labels (hosts/)
        self.facts = HostTable()                  # sender -> release, boots, loss (hosts/fleet.py)
        self.reboots = BootWatch()                # unexplained reboots (hosts/reboots.py)
        self.facts_writer = None                  # sng/hostfacts.py, with a state_dir
        self.facts_saved = self.facts_pruned = 0.0
        self.reboots_saved = 0.0                  # sng/rebootstate.py
        self.inventory = None                     # hosts.inventory.InventoryFile, when set
        self.inventory_checked = 0.0              # monotonic time of the last look at it
        self.owner = None                    # the source instance using it, or None
        self.orphaned_at = None              # monotonic time it lost its owner
        self.next_bind = 0.0
        self.last_expire = 0.0
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)

    def close(self):
        for s in self.socks.values():
            s.close()
        self.socks.clear()
        det = getattr(self, "detector", None)
        if det is not None:
            det.close()
        self.names.close()
        hostfacts.close(self)
        for fd in (self.wake_r, self.wake_w):
            try:
                os.close(fd)
            except OSError:
                pass

    def apply_rcvbuf(self, now: float, say) -> None:
        """A taken-over endpoint: apply a changed rcvbuf to the sockets it has."""
        for s in self.socks.values():
            try:
                set_rcvbuf(s, self.settings["rcvbuf"], lambda t: say("rcvbuf", t, now, "warning"))
            except OSError:
                pass

    def bind_missing(self, now: float, say) -> List[str]:
        """Bind the configured addresses not yet bound (retried every BIND_RETRY);
        returns the addresses bound now."""
        st, bound = self.settings, []
        if now < self.next_bind:
            return bound
        for addr in st["ip"]:
            if addr in self.socks:
                continue
            try:
                self.socks[addr] = bind(addr, st["port"], st["rcvbuf"], st["reuseport"],
                                        lambda t: say("rcvbuf", t, now, "warning"))
                bound.append(addr)
            except OSError as e:
                self.counters["bind_errors"] += 1
                self.next_bind = now + BIND_RETRY
                say("bind", "cannot listen on %s port %d: %s; retrying every %ds"
                    % (addr, st["port"], e.strerror or e, BIND_RETRY), now)
        return bound

    def wait(self, timeout: float, read: bool, extra=()) -> List[socket.socket]:
        """Block until a socket is readable, the wake pipe is written, an `extra`
        (fd, for writing) is ready (the detection worker's pipes) or `timeout`
        seconds pass; read=False leaves datagrams in the kernel buffer. Returns the
        readable sockets."""
        # poll, not select: syslog-ng may hold far more than 1024 fds (a file per host)
        poller = select.poll()
        by_fd = {s.fileno(): s for s in self.socks.values()} if read else {}
        for fd in [self.wake_r] + list(by_fd):
            poller.register(fd, select.POLLIN)
        for fd, writing in extra:
            poller.register(fd, select.POLLOUT if writing else select.POLLIN)
        try:
            ready = poller.poll(timeout * 1000.0)
        except InterruptedError:
            ready = []
        out = []
        for fd, _ in ready:
            if fd == self.wake_r:
                try:
                    os.read(self.wake_r, 4096)
                except OSError:
                    pass
            elif fd in by_fd:
                out.append(by_fd[fd])
        return out

    def wake(self) -> None:
        """Make a wait() in another thread return (any thread may call this)."""
        try:
            os.write(self.wake_w, b"x")
        except OSError:
            pass  # pipe full: a wakeup is pending anyway (or closed: nobody waits)

    def read(self, sock: socket.socket, now: float, say) -> None:
        """Feed up to READ_BATCH datagrams of `sock` to the core."""
        core, c = self.core, self.counters
        dst_port = self.settings["port"]
        for _ in range(READ_BATCH):
            try:
                payload, addr = sock.recvfrom(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:  # e.g. ICMP errors surfacing; never fatal
                c["recv_errors"] += 1
                say("recv", "receive error: %s" % e, now)
                return
            c["datagrams"] += 1
            c["bytes"] += len(payload)
            try:
                core.process(payload, addr[0], addr[1], dst_port, now)
            except Exception as e:  # bad input must never stop the loop
                c["core_errors"] += 1
                say("core", "reassembly failed on a %d-byte datagram from %s: %r"
                    % (len(payload), addr[0], e), now)

    def drain(self, now: float, say) -> list:
        """Run the core's timers and move its records to `held`; beyond the cap
        (syslog-ng stopped taking messages for long) drop the oldest, counted.
        Returns the records moved (the source's detector takes them at once, posted
        or not: what syslog-ng holds back is still journaled against a SIGKILL)."""
        new = []
        try:
            deadline = self.core.next_deadline()
            # also once a second: expire() forgets idle hosts
            if (deadline is not None and deadline <= now) or now - self.last_expire >= 1.0:
                self.last_expire = now
                self.core.expire(now)
            new = self.core.records()
            self.held.extend(new)
        except Exception as e:
            self.counters["core_errors"] += 1
            say("core", "reassembly timer failed: %r" % (e,), now)
        excess = collections.Counter()
        while self.held.full():
            excess[self.held.popleft().host] += 1
        if excess:
            n = sum(excess.values())
            self.counters["dropped_held"] += n
            self.count_host_drops(excess)
            say("held", "syslog-ng is not accepting messages; dropped %d records (%s)"
                % (n, ", ".join("%s: %d" % hv for hv in excess.most_common(5))), now)
        return new

    def count_host_drops(self, by_host) -> None:
        """Drops per sender, bounded: hosts beyond MAX_DROP_HOSTS count as "other"."""
        drops = self.host_drops
        for host, n in by_host.items():
            if host not in drops and len(drops) >= MAX_DROP_HOSTS:
                host = "other"
            drops[host] += n

    def timeout(self, now: float) -> float:
        """Seconds the loop may wait: 0 with records to post, else until the core's
        next deadline, at most 1 (stats, bind retries, orphan sweep)."""
        if self.held:
            return 0.0
        try:
            deadline = self.core.next_deadline()
        except Exception:
            return 1.0
        return 1.0 if deadline is None else min(1.0, max(0.0, deadline - now))

    def counters_snapshot(self, log_suppressed: int) -> dict:
        """source.* and core.* counters, the names the counters file and log show."""
        out = {"source." + k: v for k, v in sorted(self.counters.items())}
        out["source.held_records"] = len(self.held)
        out["source.drop_hosts"] = len(self.host_drops)
        out["source.held_bytes"] = self.held.nbytes
        out["core.pending_bytes"] = self.core.pending_bytes
        out["source.log_suppressed"] = log_suppressed
        for k, v in sorted(self.core.counters.items()):
            out["core." + k] = v
        return out


# ----------------------------------------------------------------- registry

_ENDPOINTS: Dict[tuple, Endpoint] = {}
_LOCK = threading.Lock()


class Busy(Exception):
    """Another running source already uses this endpoint."""


def _adopt_orphan(key, settings) -> Optional[Endpoint]:
    """A reload that changed the source's addresses or name: take over the orphaned
    endpoint of the same port (its state and the sockets still wanted), so the port is
    never closed and reopened. Called with _LOCK held."""
    for old_key, ep in list(_ENDPOINTS.items()):
        if ep.owner is None and old_key[1] == key[1] and old_key[3] == key[3]:
            del _ENDPOINTS[old_key]
            for addr in list(ep.socks):
                if addr not in settings["ip"]:
                    ep.socks.pop(addr).close()
            ep.key = key
            _ENDPOINTS[key] = ep
            return ep
    return None


def take(name: str, settings, limits, owner) -> Tuple[Endpoint, bool]:
    """The endpoint of source `name` for `owner`: the one of the previous configuration
    (a reload: its state goes on), an orphan of the same port, or a new one. Returns
    (endpoint, fresh); raises Busy when another running source has it."""
    key = (name, settings["port"], settings["ip"], settings["reuseport"])
    with _LOCK:
        ep = _ENDPOINTS.get(key)
        if ep is not None and ep.owner is not None:
            raise Busy(key)
        if ep is None:
            ep = _adopt_orphan(key, settings)
        fresh = ep is None
        if fresh:
            ep = _ENDPOINTS[key] = Endpoint(key, settings, limits)
        else:
            ep.counters["reloads"] += 1
        ep.owner, ep.orphaned_at = owner, None
        ep.settings = settings
    return ep, fresh


def keep_previous(name, owner) -> Optional[Endpoint]:
    """A reload with a bad configuration on syslog-ng 3.x: the orphaned endpoint of
    source `name` (or the only orphan), taken by `owner` with its old settings;
    None when there is none (start-up)."""
    with _LOCK:
        orphans = [ep for ep in _ENDPOINTS.values() if ep.owner is None]
        mine = [ep for ep in orphans if ep.key[0] == name] or (orphans if len(orphans) == 1 else [])
        if not mine:
            return None
        ep = mine[0]
        ep.owner, ep.orphaned_at = owner, None
        ep.counters["reloads"] += 1
    return ep


def release(ep: Endpoint, owner, now: float) -> None:
    """`owner` stops using `ep`: it waits for the next configuration to take it."""
    with _LOCK:
        if ep.owner is owner:
            ep.owner = None
            ep.orphaned_at = now


def sweep_orphans(now: float) -> List[int]:
    """Close endpoints no configuration has taken for ORPHAN_GRACE (port removed);
    returns their ports."""
    closed = []
    with _LOCK:
        for key, ep in list(_ENDPOINTS.items()):
            if ep.owner is None and ep.orphaned_at is not None and now - ep.orphaned_at > ORPHAN_GRACE:
                del _ENDPOINTS[key]
                ep.close()
                closed.append(key[1])
    return closed
