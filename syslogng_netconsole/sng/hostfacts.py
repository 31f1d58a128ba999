"""The source's side of hosts/fleet.py: every record and incident updates the host
table in memory (ep.facts); every SAVE_EVERY seconds the hosts that changed go to
``<state_dir>/hosts.sqlite`` (hosts/hostdb.py) from a thread of their own, so a slow
disk never stalls receiving; hosts not heard for FORGET_AFTER are dropped. A table
that cannot be opened or written is logged (rate-limited) and retried: it degrades
the fleet views only."""

import queue
import threading

from ..hosts.fleet import HostTable  # noqa: F401 (the type of ep.facts)
from ..hosts.hostdb import HostDb, HostDbError
from ..threads import name_os_thread
from . import rebootstate

SAVE_EVERY = 5.0
FORGET_AFTER = 30 * 86400.0
PRUNE_EVERY = 3600.0


class FactsWriter:
    """One thread writing batches of host rows; the loop only enqueues."""

    def __init__(self, state_dir: str, log):
        self.state_dir, self._log = state_dir, log
        self._q = queue.Queue()
        self._db = None
        self._thread = threading.Thread(target=self._run, name="netconsole-hosts", daemon=True)
        self._thread.start()

    def load(self, table: HostTable) -> None:
        """At a fresh start: the hosts of earlier runs (synchronous, once)."""
        try:
            db = HostDb(self.state_dir, readonly=False)
            try:
                table.load(db.hosts(limit=table.max_hosts))
            finally:
                db.close()
        except HostDbError as e:
            self._log("warning", "hosts: %s; the host table starts empty" % e)

    def put(self, rows, gone=()) -> None:
        if rows or gone:
            self._q.put((rows, list(gone)))

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until what was put is written (deinit: the process may exit next)."""
        done = threading.Event()
        self._q.put(done)
        return done.wait(timeout)

    def close(self, timeout: float = 10.0) -> None:
        self._q.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        name_os_thread("netconsole-hosts")
        failed = False
        while True:
            item = self._q.get()
            if item is None:
                break
            if isinstance(item, threading.Event):
                item.set()
                continue
            try:
                if self._db is None:
                    self._db = HostDb(self.state_dir)
                self._db.save(*item)
                if failed:
                    self._log("info", "hosts: %s written again" % self._db.path)
                failed = False
            except HostDbError as e:
                if not failed:          # once per failure spell, not per batch
                    self._log("warning", "hosts: cannot write the host table: %s" % e)
                failed = True
                if self._db is not None:
                    self._db.close()
                    self._db = None
        if self._db is not None:
            self._db.close()


def attach(ep, state_dir: str, log) -> None:
    """A fresh endpoint: its host table (ep.facts, endpoint.py) loaded from the
    state directory, and the writer."""
    if state_dir:
        ep.facts_writer = FactsWriter(state_dir, log)
        ep.facts_writer.load(ep.facts)


def tick(ep, now: float, wall: float, force: bool = False) -> None:
    """From the source's loop (cheap unless SAVE_EVERY passed) and at deinit (force);
    the pending REBOOT incidents too (sng/rebootstate.py)."""
    rebootstate.save(ep, now, force)
    w = ep.facts_writer
    if w is None or (not force and now - ep.facts_saved < SAVE_EVERY):
        return
    ep.facts_saved = now
    gone = ()
    if now - ep.facts_pruned >= PRUNE_EVERY:
        ep.facts_pruned = now
        gone = ep.facts.prune(wall - FORGET_AFTER)
    w.put(ep.facts.take_dirty(ep.names.name), gone)


def watch_reboots(ep, recs, wall: float, say) -> None:
    """The records to hosts/reboots.py (only with detection: its incidents are posted
    with the detector's); a failure is counted and logged, never the loop's."""
    try:
        for rec in recs:
            ep.reboots.observe(rec, wall)
    except Exception as e:
        ep.counters["reboot_errors"] += 1
        say("unexplained-reboot check failed: %r" % (e,))


def save_now(ep, now: float, wall: float) -> None:
    """At deinit (reload or stop): what changed is written before returning."""
    if ep.facts_writer is not None:
        tick(ep, now, wall, force=True)
        ep.facts_writer.flush()


def close(ep) -> None:
    w = ep.facts_writer
    if w is not None:
        w.put(ep.facts.take_dirty(ep.names.name))
        w.close()
        ep.facts_writer = None
