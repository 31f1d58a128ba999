"""The incidents destination's symbolizer stage (issue 14): between the sink
(store -> JSON line -> log line) and the alerts, off the storage thread.

The sink hands each newly stored incident to ``submit()``, which only queues it and
returns ``DEFERRED``: storage never waits. A worker thread ("nc-symbolize") runs
symbols/service.py over it and writes the result into the stored incident
(Store.set_symbols). A second thread ("nc-sym-alerts") hands each incident to the
alerts, in order, as soon as it is symbolized or ``symbolize_wait`` seconds after it
was stored, whichever comes first (unsymbolized then, counted ``symbolize_late``; the
store still gets the symbols when they come). Only then is the hand-off marked done
in the store, so a crash in between hands it on again at the next start.

A storm queues hundreds at once, and both threads compete for the GIL with the
source's socket reader: each takes every queued item there is (at most BATCH) and
writes once per batch (Store.set_symbols_many, Store.handed_many), not once per
incident. A report with no frame is not waited for.

Options (merged into the destination's table, checked in init()): symbolize,
debug_dirs, debuginfod_urls, debuginfod_cache_size, symbolize_wait,
symbolize_timeout, maintainers_file.
"""

import collections
import copy
import os
import queue
import threading
import time

from syslogng_netconsole import options as opt
from syslogng_netconsole.incidents.sink import DEFERRED
from syslogng_netconsole.incidents.store import Store, StoreError
from syslogng_netconsole.symbols import service
from syslogng_netconsole.threads import name_os_thread

MAX_QUEUE = 1000            # incidents waiting; beyond, new ones skip symbolization
BATCH = 200                 # items a thread takes at once: one store transaction for all
FLUSH_EVERY = 0.25          # seconds of symbolizing after which the done ones are stored


def _dirs(v) -> list:
    dirs = opt.items(v)
    for d in dirs:
        if not os.path.isabs(d) or "\0" in d:
            raise ValueError("expected absolute directories, comma separated")
    return dirs


def _readable_file(v) -> str:
    v = str(v)
    if not os.path.isfile(v) or not os.access(v, os.R_OK):
        raise ValueError("no readable file %r" % v)
    return v


OPTIONS = {
    "symbolize": (opt.boolean, True),
    # directories laid out as Debian's linux-image-*-dbg (boot/vmlinux-R,
    # lib/modules/R/...); "/" finds the host's stripped modules for their build-ids
    "debug_dirs": (_dirs, list(service.DEFAULT_DIRS)),
    # "" = $DEBUGINFOD_URLS of syslog-ng's environment; "none" = no server
    "debuginfod_urls": (service.check_urls, ""),
    "debuginfod_cache_size": (opt.size, 2 << 30),
    "symbolize_wait": (opt.duration, 2.0),      # the alert waits at most this long
    "symbolize_timeout": (opt.positive(float), 30.0),   # per tool run / HTTP request
    "maintainers_file": (_readable_file, ""),
}


class _Item:
    __slots__ = ("inc", "wall", "deadline", "done")

    def __init__(self, inc, wall, deadline):
        self.inc, self.wall, self.deadline = inc, wall, deadline
        self.done = threading.Event()


class SymbolizeStage:
    def __init__(self, opts: dict, state_dir: str, log, counters=None):
        self.opts = opts
        self.state_dir = state_dir
        self._log = log                 # log(level, text)
        self.counters = counters if counters is not None else collections.Counter()
        self.symbolizer = service.from_options(opts, state_dir, clock=time.monotonic)
        self.on_alert = None            # the dispatcher's submit, or None
        self.on_alert_many = None       # its submit_many: a batch in one transaction
        self._work = queue.Queue()
        self._release = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._store = None
        self._threads = []

    def start(self):
        for target, name in ((self._run_work, "netconsole-symbolize"),
                             (self._run_release, "netconsole-sym-alerts")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)

    def stop(self, timeout: float = 2.0):
        """Hand on what waits (without waiting for symbols), then stop."""
        self._stop.set()
        self._work.put(None)
        self._release.put(None)
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        self._threads = []

    # -- the sink's hand-off (the destination's thread) -------------------------

    def submit(self, inc, wall):
        """Queue one stored incident; DEFERRED tells the sink the hand-off is ours."""
        if self._stop.is_set() or self._work.qsize() >= MAX_QUEUE:
            self.counters["symbolize_skipped"] += 1
            if self.on_alert is not None:
                self.on_alert(inc, wall)
            return None
        item = _Item(inc, wall, time.monotonic() + self.opts["symbolize_wait"])
        if getattr(inc, "symbols", None):
            item.done.set()             # handed on again after a restart: done before
        else:
            if not service.has_frames(inc.text):
                item.done.set()         # no frame to look up: the alert need not wait
            self._work.put(item)        # (the store still gets the "no-frames" result)
        self._release.put(item)
        return DEFERRED

    # -- worker -----------------------------------------------------------------

    @staticmethod
    def _more(q, limit=BATCH - 1):
        """Whatever `q` holds now, up to `limit` items, without waiting."""
        items = []
        while len(items) < limit:
            try:
                items.append(q.get_nowait())
            except queue.Empty:
                break
        return items

    def _run_work(self):
        name_os_thread("nc-symbolize")
        while True:
            batch = [self._work.get()] + self._more(self._work)
            stop = None in batch or self._stop.is_set()
            items = [i for i in batch if i is not None]
            if stop:
                for item in items:
                    item.done.set()
                return
            results, flush_at = [], time.monotonic() + FLUSH_EVERY
            for item in items:
                results.append(self._symbolize(item))
                if time.monotonic() >= flush_at:    # slow tools: store what is done
                    self._store_symbols(results)
                    results, flush_at = [], time.monotonic() + FLUSH_EVERY
            self._store_symbols(results)

    def _symbolize(self, item):
        """One item's (item, id, symbols, guilty, subsystem), or (item, None...)."""
        inc = item.inc
        try:
            symbols, guilty, subsystem = self.symbolizer.run(inc.text, inc.release)
        except Exception as exc:    # never lose the thread
            self.counters["symbolize_errors"] += 1
            self._log("error", "netconsole-incidents: symbolizer: %r" % (exc,))
            return (item, None, None, None, None)
        with self._lock:
            inc.guilty_file, inc.subsystem, inc.symbols = guilty, subsystem, symbols
        return (item, inc.id, symbols, guilty, subsystem)

    def _store_symbols(self, results):
        """All of them in one transaction, then the items are done (released)."""
        self._copy_counters()
        rows = [r[1:] for r in results if r[1] is not None]
        store = self._open_store() if rows else None
        if store is not None:
            try:
                store.set_symbols_many(rows)
            except StoreError as exc:
                self.counters["symbolize_store_errors"] += 1
                self._log("error", "netconsole-incidents: cannot store symbols: %s" % exc)
        for r in results:
            r[0].done.set()

    def _copy_counters(self):
        for k, v in self.symbolizer.counters.items():
            self.counters[k] = v
        for k, v in self.symbolizer.locator.counters.items():
            self.counters["symbolize_" + k] = v
        if self.symbolizer.debuginfod is not None:
            for k, v in self.symbolizer.debuginfod.counters.items():
                self.counters["debuginfod_" + k] = v

    def _open_store(self):
        if self._store is None:
            try:
                self._store = Store(self.state_dir)
            except StoreError as exc:
                self.counters["symbolize_store_errors"] += 1
                self._log("error", "netconsole-incidents: symbolizer store: %s" % exc)
        return self._store

    # -- alerts, in order -------------------------------------------------------

    def _run_release(self):
        name_os_thread("nc-sym-alerts")
        waiting = collections.deque()       # in submit order
        stop = False
        while True:
            if not stop:
                if not waiting:
                    waiting.append(self._release.get())
                waiting.extend(self._more(self._release))
                if None in waiting:
                    stop = True
                    waiting = collections.deque(i for i in waiting if i is not None)
            if not waiting:
                if stop:
                    return
                continue
            stopping = stop or self._stop.is_set()
            head = waiting[0]
            if not stopping:
                head.done.wait(max(0.0, head.deadline - time.monotonic()))
            now, ready = time.monotonic(), []
            while waiting and len(ready) < BATCH and (
                    stopping or waiting[0].done.is_set() or waiting[0].deadline <= now):
                ready.append(waiting.popleft())
            self._hand(ready)

    def _hand(self, items):
        """Each to the alert hook, in order; then the taken ones marked handed in
        one transaction (a crash before: handed on again at the next start)."""
        taken, snapshots = [], []
        for item in items:
            if not item.done.is_set():
                self.counters["symbolize_late"] += 1
            with self._lock:
                snapshots.append((copy.copy(item.inc), item.wall))
        if self.on_alert_many is not None and snapshots:
            try:                        # one outbox transaction for the batch
                self.on_alert_many(snapshots)
                taken = [inc.id for inc, _wall in snapshots]
            except Exception as exc:
                self.counters["alert_errors"] += 1
                self._log("error", "netconsole-incidents: alert hook: %r" % (exc,))
        else:
            for snapshot, wall in snapshots:
                try:
                    if self.on_alert is not None:
                        self.on_alert(snapshot, wall)
                except Exception as exc:
                    self.counters["alert_errors"] += 1
                    self._log("error", "netconsole-incidents: alert hook: %r" % (exc,))
                    continue            # handed on again at the next start
                taken.append(snapshot.id)
        store = self._open_store() if taken else None
        if store is not None:
            try:
                store.handed_many(taken)
            except StoreError as exc:
                self._log("error", "netconsole-incidents: cannot mark a hand-off: %s" % exc)

    def close(self):
        if self._store is not None:
            self._store.close()
            self._store = None


# -- the destination's three calls ------------------------------------------------

def start_stage(opts: dict, state_dir: str, log, counters):
    """The running stage, or None with symbolize("no") or when it cannot start
    (logged: reports are stored and alerted unsymbolized; storage never depends on it)."""
    if not opts.get("symbolize"):
        return None
    try:
        stage = SymbolizeStage(opts, state_dir, log, counters)
        stage.start()
    except Exception as exc:
        counters["symbolize_start_errors"] += 1
        log("error", "netconsole-incidents: the symbolizer cannot start (%r); reports are "
                     "stored unsymbolized" % (exc,))
        return None
    return stage


def attach(sink, stage, dispatcher, enabled: bool = True) -> None:
    """sink.set_alerts() with the dispatcher's submit, through the stage when there is
    one (it also symbolizes when no alerts are configured: the store gets the symbols
    all the same); the stage hands its batches to submit_many (one transaction)."""
    on_alert = dispatcher.submit if dispatcher is not None else None
    if stage is None:
        sink.set_alerts(on_alert, enabled=enabled)
        return
    stage.on_alert = on_alert
    stage.on_alert_many = dispatcher.submit_many if dispatcher is not None else None
    sink.set_alerts(stage.submit)


def stop(stage) -> None:
    if stage is not None:
        stage.stop()
        stage.close()
