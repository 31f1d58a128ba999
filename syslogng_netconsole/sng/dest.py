"""The incidents destination: kernel crash detection inside syslog-ng.

Use the SCL block ``netconsole_incidents(state_dir("..."))`` (scl/netconsole.conf; the
drop-in puts it in the netconsole log path). It expands to a python() destination of
``IncidentDestination`` with a ``value-pairs()`` of MESSAGE, HOST and the
``.netconsole.*`` names the detector reads (``messages.DEST_KEYS``).

Two kinds of message arrive. An incident message (``.netconsole.incident`` set: the
netconsole() source with ``detect("yes")`` found the report, sng/detect.py; the
drop-in routes only these here) goes straight to the sink. A record message feeds
the per-stream detectors here, for configurations that send records instead.

This module is only the syslog-ng wiring of two pure parts: the per-stream detectors
(reports/pool.py) and where finished incidents go (incidents/sink.py: store, JSON
lines, log line, then sng/symbolize.py: symbols, alerts).

Threads (3.38 and 4.x): init/deinit on the main thread, ``send()`` on the worker
thread, timeouts and storage on our own thread (Python name "netconsole-incidents",
OS name "nc-incidents"); ``_Engine.lock`` serialises the pool. ``send()`` rebuilds
the Record and feeds the pool -- no disk, no network -- and always returns success
(a failed send would make syslog-ng retry and stall every record behind it; its own
trouble is counted and logged, rate-limited). The thread runs the timeouts -- a host
that panics goes silent, so its report must be finished by a timer, not by its next
message -- and hands finished incidents to the sink.

Detector state lives in the module-level ``_ENGINES`` keyed by persist name and state
dir, so a reload (which builds a new instance but keeps the module) continues open
reports. At deinit the open reports are also parked in the store as snapshots: a
reload discards them, a restart (new process, empty ``_ENGINES``) stores them flagged
truncated, so a shutdown loses nothing.
"""

import collections
import os
import threading
import time
from typing import Dict

try:                                    # 4.x: the base class is required
    from syslogng import LogDestination as _Base
except ImportError:                     # 3.38 (duck-typed) and plain Python
    _Base = object

try:
    from syslogng import Logger as _SngLogger
    _log = _SngLogger()
except ImportError:                     # outside syslog-ng (unit tests)
    import logging
    _log = logging.getLogger("syslogng_netconsole.incidents")

from syslogng_netconsole import metrics, options as opt
from syslogng_netconsole.alerts import config as alert_config
from syslogng_netconsole.incidents.sink import LOG_EVERY, PREFIX, IncidentSink
from syslogng_netconsole.ratelog import RateLimitedLog
from syslogng_netconsole.reports.pool import DetectorPool
from syslogng_netconsole.sng import symbolize as sym
from syslogng_netconsole.sng.messages import incident_from_message, record_from_message
from syslogng_netconsole.threads import name_os_thread

TICK = 0.2                # seconds: the longest the thread sleeps (timer resolution)
EVICT_EVERY = 30.0        # seconds between idle-stream sweeps (and counters file writes)
PRUNE_EVERY = 3600.0      # seconds between retention runs (the first soon after start)
METRICS_EVERY = 15.0      # seconds between metrics_file() writes (the first soon after start)
ALERTS_RETRY = 60         # seconds between attempts to start alerts that failed to


def _text(v: str) -> str:
    if not v:
        raise ValueError("must not be empty")
    return v


# option -> (converter, default). Options arrive as str on 3.38 and typed on 4.x.
OPTIONS = {
    "state_dir": (_text, "/var/lib/syslog-ng/netconsole"),
    "json_lines": (opt.boolean, True),          # also append each incident to incidents.jsonl
    # streams with detector state; beyond, the least recent is finished (an idle one
    # only loses its few context lines). Bounds memory against floods of senders.
    "max_hosts": (opt.positive(int), 10000),
    # streams with an open report; beyond, the least recently fed is finished now
    # (truncated): with the detector's per-report caps this bounds report memory
    "max_open": (opt.positive(int), 1000),
    "host_idle": (opt.positive(float), 600.0),  # forget an idle stream's detector after this
    # incidents stored longer ago are deleted (0: keep all); incidents.jsonl rotates to
    # incidents.jsonl.1 beyond jsonl_max_size (0: never)
    "retention": (opt.duration, 90 * 86400.0),
    "jsonl_max_size": (opt.size, 100 << 20),
    # Prometheus text file of the whole collector (metrics.py), for node_exporter's
    # textfile collector; "" = none
    "metrics_file": (str, ""),
}
OPTIONS.update(sym.OPTIONS)             # symbolized reports: sng/symbolize.py


def parse_options(options) -> Dict[str, object]:
    """Validated options; ValueError names the bad option."""
    return opt.parse_table(OPTIONS, options, "netconsole_incidents()")


def _log_line(level, text):
    getattr(_log, level)(text)


def _wall_offset() -> float:
    """Detector times are monotonic (the `now` we pass); the store wants wall time."""
    return time.time() - time.monotonic()


class _Engine:
    """Detector state of one destination; survives reloads in _ENGINES."""

    def __init__(self):
        self.lock = threading.Lock()
        self.stats = collections.Counter()      # pool, sink and our own counters
        self.pool = DetectorPool(counters=self.stats)
        self.ratelog = RateLimitedLog(_log_line, PREFIX, LOG_EVERY)


_ENGINES: Dict[str, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


class IncidentDestination(_Base):
    """syslog-ng python() destination; see the module docstring."""

    # -- syslog-ng API (main thread) ------------------------------------------

    def init(self, options):
        try:
            options = dict(options or {})
            self.alert_cfg = alert_config.from_options(alert_config.pop_options(options))
            self.opts = parse_options(options)
        except ValueError as exc:
            _log.error(PREFIX + str(exc))
            return False
        try:
            self._setup()
        except Exception as exc:        # never fail a (re)load for recoverable trouble
            _log.error(PREFIX + "start-up trouble, running degraded: %r" % (exc,))
        return True

    def deinit(self):
        try:
            self._teardown()
        except Exception as exc:
            _log.error(PREFIX + "deinit trouble: %r" % (exc,))

    def open(self):
        return True

    def close(self):    # no is_opened(): 3.38 would call it before every send()
        pass

    # -- syslog-ng API (worker thread) ----------------------------------------

    def send(self, msg):
        eng = getattr(self, "_eng", None)
        if eng is None:                 # init() failed before the engine existed
            return True
        now = time.monotonic()
        try:
            inc = incident_from_message(msg)
            if inc is not None:         # found by the source (detect("yes")): store it
                eng.stats["incidents_received"] += 1
                self._backlog.append(inc)
                self._wake.set()
                return True
            rec = record_from_message(msg, now)
            with eng.lock:
                finished = eng.pool.feed(rec, now)
            if finished:
                self._wake.set()
        except Exception as exc:        # bad input or a detector bug: count, never fail
            eng.stats["bad_records"] += 1
            eng.ratelog("send", "record not analysed: %r" % (exc,), now, "warning")
        return True

    # -- lifecycle (main thread) --------------------------------------------------

    def _setup(self):
        state_dir = self.opts["state_dir"]
        self._owner = "%s|%s" % (getattr(self, "persist_name", None) or "incidents",
                                 os.path.abspath(state_dir))
        with _ENGINES_LOCK:
            eng = _ENGINES.get(self._owner)
            fresh = eng is None
            if fresh:
                eng = _ENGINES[self._owner] = _Engine()
        with eng.lock:                  # a reload may change the bounds
            pool = eng.pool
            pool.max_streams, pool.max_open = self.opts["max_hosts"], self.opts["max_open"]
            pool.idle = self.opts["host_idle"]
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._backlog = collections.deque()     # finished incidents for the sink
        self._sink = IncidentSink(state_dir, self._owner, _log_line, self.opts["json_lines"],
                                  counters=eng.stats, ratelog=eng.ratelog)
        self._sink.jsonl_max = self.opts["jsonl_max_size"]
        self._eng = eng                 # last: send() and deinit() test it
        now = time.monotonic()
        self._sink.open(now)
        # reports open at the last deinit: a reload continues them live (drop the
        # snapshots); a new process stores them, flagged truncated
        parked = self._sink.unpark(now)
        if fresh and parked:
            for inc in parked:
                inc.truncated = True
            self._backlog.extend(parked)
            _log.info(PREFIX + "%d report(s) open at the last shutdown stored as truncated"
                      % len(parked))
        self._symbols = sym.start_stage(self.opts, state_dir, _log_line, eng.stats)
        self._alerts = None
        self._alerts_retry_at = None    # monotonic time of the next attempt, when failed
        self._thread = threading.Thread(target=self._run, name="netconsole-incidents",
                                        daemon=True)
        self._thread.start()
        self._try_alerts(now)

    def _try_alerts(self, now: float) -> None:
        """Start the alerts; alerts failing must never stop storage: retried every
        ALERTS_RETRY seconds by the thread, hand-offs wait in the store meanwhile."""
        failed_before = self._alerts_retry_at is not None
        try:
            self._start_alerts()
        except Exception as exc:
            self._alerts_retry_at = now + ALERTS_RETRY
            self._eng.stats["alert_start_errors"] += 1
            if not failed_before:
                _log.error(PREFIX + "alerts cannot start, incidents are still stored (retried "
                           "every %ds): %r" % (ALERTS_RETRY, exc))
            return
        self._alerts_retry_at = None
        if failed_before:
            _log.info(PREFIX + "alerts started; incidents stored meanwhile are alerted now")

    def _teardown(self):
        if getattr(self, "_eng", None) is None:
            return                      # init() rejected the options: nothing started
        thread = getattr(self, "_thread", None)
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(10.0)
            if thread.is_alive():
                _log.error(PREFIX + "background thread did not stop in 10 s")
        self._drain()                   # whatever the thread left
        self._park()
        self._stop_alerts()
        self._write_stats()
        self._sink.close()
        s = self._eng.stats
        _log.info(PREFIX + "records=%d incidents=%d stored=%d duplicates=%d "
                  "bad_records=%d store_errors=%d open_reports=%d"
                  % (s["records"], s["incidents"], s["stored"], s["duplicates"],
                     s["bad_records"], s["store_errors"], self._eng.pool.open_reports))

    def _park(self):
        """Snapshot the open reports into the store (see the module docstring)."""
        eng = self._eng
        now = time.monotonic()
        with eng.lock:
            found, errors = eng.pool.snapshot(now, _wall_offset())
        for exc in errors:
            eng.ratelog("park", "cannot snapshot a report: %r" % (exc,), now, "warning")
        self._sink.park(found, now, time.time())

    def _start_alerts(self):
        """Build and start the alert dispatcher (see alerts/dispatcher.py); the sink
        hands it each newly stored incident (it only enqueues into the outbox)."""
        self._alerts = None
        if not self.alert_cfg.enabled:
            sym.attach(self._sink, self._symbols, None, enabled=False)
            return
        from syslogng_netconsole.alerts.dispatcher import Dispatcher
        self._alerts = Dispatcher(self.alert_cfg, self._sink.state_dir, _log)
        self._alerts.start()
        sym.attach(self._sink, self._symbols, self._alerts)
        self._wake.set()                # the thread hands on what waited (hand_on)

    def _stop_alerts(self):
        """Stop the alert dispatcher (deinit): no thread outlives a reload."""
        alerts, self._alerts = getattr(self, "_alerts", None), None
        sym.stop(getattr(self, "_symbols", None))   # hands on what waits for symbols
        self._sink.on_new = None
        if alerts is not None:
            alerts.stop(timeout=1.0)     # a thread inside a slow request finishes alone

    # -- background thread ----------------------------------------------------------

    def _run(self):
        name_os_thread("nc-incidents")
        last_evict = time.monotonic()
        next_prune = last_evict + 10.0
        next_metrics = last_evict + 2.0
        eng = self._eng
        while not self._stop.is_set():
            now = time.monotonic()
            wait = TICK
            try:
                with eng.lock:
                    soonest = eng.pool.expire(now)
                if soonest is not None:
                    wait = max(0.01, min(TICK, soonest - now))
                self._drain()
                if self._alerts_retry_at is not None and now >= self._alerts_retry_at:
                    self._try_alerts(now)
                self._sink.retry(time.monotonic(), time.time())
                self._sink.hand_on(time.monotonic(), time.time())
                if now >= next_prune:
                    next_prune = now + PRUNE_EVERY
                    self._sink.prune(self.opts["retention"], now, time.time())
                if self.opts["metrics_file"] and now >= next_metrics:
                    next_metrics = now + METRICS_EVERY
                    self._write_metrics(now)
                if now - last_evict >= EVICT_EVERY:
                    last_evict = now
                    with eng.lock:
                        eng.pool.evict_idle(now)
                    self._write_stats()
            except Exception as exc:    # keep the timer alive whatever happens
                eng.stats["thread_errors"] += 1
                eng.ratelog("thread", "background thread: %r" % (exc,), now, "error")
            self._wake.wait(wait)
            self._wake.clear()

    def _drain(self):
        """Hand the finished incidents to the sink (store, JSON line, alerts)."""
        with self._eng.lock:
            self._backlog.extend(self._eng.pool.drain(_wall_offset()))
        while True:
            try:
                inc = self._backlog.popleft()
            except IndexError:          # empty (or emptied by the other thread)
                return
            self._sink.add(inc, time.monotonic(), time.time())

    def _write_metrics(self, now):
        text, trouble = metrics.collect(self.opts["state_dir"])
        for t in trouble:
            self._eng.ratelog("metrics-read", "metrics: %s" % t, now, "warning")
        try:
            metrics.write(self.opts["metrics_file"], text)
        except OSError as exc:
            self._eng.ratelog("metrics", "cannot write %s: %s" % (self.opts["metrics_file"], exc),
                              now, "error")

    def _write_stats(self):
        with self._eng.lock:
            gauges = self._eng.pool.gauges()
        self._sink.write_stats(gauges)
