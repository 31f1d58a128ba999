"""The incidents destination: kernel crash detection inside syslog-ng.

Use the SCL block ``netconsole_incidents(state_dir("..."))`` (scl/netconsole.conf; the
drop-in puts it in the netconsole log path). It expands to a python() destination of
``IncidentDestination`` with a ``value-pairs()`` of MESSAGE, HOST and the
``.netconsole.*`` names the detector reads (``FIELDS``).

Each message is one record posted by the ``netconsole()`` source: MESSAGE = text,
HOST = sender. ``send()`` rebuilds the Record and feeds the Detector of that sender's
stream under a lock -- no disk, no network -- and always returns success (its own
trouble is counted and logged, rate-limited: a failed send would make syslog-ng retry
and stall every record behind it).

A background thread (Python name "netconsole-incidents", OS name "nc-incidents";
started in ``init()``, stopped in ``deinit()``) runs the detectors' timeouts -- a host
that panics goes silent, so its report must be finished by a timer, not by its next
message -- and writes finished incidents to SQLite (store.py) and to
``incidents.jsonl`` in the state directory; counters go to ``incidents-stats.json``.

Threads (3.38 and 4.x): init/deinit on the main thread, send on the worker thread,
timeouts and storage on our own thread; ``_Engine.lock`` guards the detectors.
Detector state lives in the module-level ``_ENGINES`` keyed by persist name and state
dir, so a reload (which builds a new instance but keeps the module) continues open
reports. At deinit the open reports are also parked in the store as snapshots: a
reload discards them, a restart (new process, empty ``_ENGINES``) stores them flagged
truncated, so a shutdown loses nothing.

ALERTS (issue 5, alerts/) plug in at ``IncidentDestination._on_incident()``: called on
the background thread once per incident newly stored (not for duplicates), after the
SQLite row and the JSON line were written; it only enqueues into the outbox. The
dispatcher is started in ``init()`` (``_start_alerts``) and stopped in ``deinit()``
(``_stop_alerts``); its options are taken out of the options dict by
``alerts.config.pop_options`` before ``parse_options`` sees the rest.
"""

import collections
import copy
import json
import os
import threading
import time
from typing import Dict, List, Optional

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

from syslogng_netconsole import options as opt
from syslogng_netconsole.alerts import config as alert_config
from syslogng_netconsole.ratelog import RateLimitedLog
from syslogng_netconsole.incident import Incident
from syslogng_netconsole.records import EXTENDED, PLAIN, Record
from syslogng_netconsole.reports import Detector
from syslogng_netconsole.store import Store, StoreError

PREFIX = ".netconsole."
JSONL_NAME = "incidents.jsonl"
STATS_NAME = "incidents-stats.json"
LOG_EVERY = 60.0          # seconds between two log lines about the same kind of trouble
STORE_RETRY = 30.0        # seconds between attempts to reopen a failed store
EVICT_EVERY = 30.0


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
    "tick": (opt.positive(float), 0.2),      # timer resolution for report timeouts
}


def parse_options(options) -> Dict[str, object]:
    """Validated options; ValueError names the bad option."""
    opts = {}
    for key, value in dict(options or {}).items():
        name = str(key).replace("-", "_")
        if name not in OPTIONS:
            raise ValueError("unknown option %r (known: %s)" % (key, ", ".join(sorted(OPTIONS))))
        opts[name] = value
    out = {}
    for name, (conv, default) in OPTIONS.items():
        if name not in opts or opts[name] == "":     # SCL blocks pass "" for "default"
            out[name] = default
            continue
        try:
            out[name] = conv(opts[name])
        except (TypeError, ValueError) as exc:
            raise ValueError("invalid value %r for option %r: %s" % (opts[name], name, exc))
    return out


# -- message -> Record ---------------------------------------------------------

def _get(msg, key: str) -> Optional[str]:
    """A value as str, None when missing: 3.38 gives b'' for missing names,
    4.x strict raises KeyError, value-pairs dicts lack the key, 4.x values may be typed."""
    try:
        return _value(msg[key])
    except (KeyError, IndexError, TypeError):
        return None


def _flag(v) -> bool:
    return v is True or str(v).lower() in ("1", "true", "yes")


# What the detector reads of a Record (the SCL block's value-pairs() selects the same
# names): .netconsole.<name> -> (Record attribute, converter). Fewer pairs, less work
# per record on the worker thread, which shares the GIL with the source's thread.
FIELDS = {
    "format": ("format", str), "seq": ("seq", int), "ts_us": ("ts_us", int),
    "caller": ("caller", str), "release": ("release", str), "boot": ("boot", int),
    "lost_before": ("lost_before", int), "incomplete": ("incomplete", _flag),
    "src_port": ("src_port", int),
}
_KEYS = tuple((PREFIX + name, attr, conv) for name, (attr, conv) in FIELDS.items())


def _value(v) -> Optional[str]:
    """bytes (3.38, value-pairs) or typed (4.x) -> str; '' and None = missing."""
    if v is None:
        return None
    if isinstance(v, bytes):
        v = v.decode("utf-8", "backslashreplace")
    elif isinstance(v, bool):
        v = "1" if v else "0"
    elif not isinstance(v, str):
        v = str(v)
    return v if v != "" else None


def record_from_message(msg, now: float) -> Record:
    """Rebuild the source's Record (the parts the detector reads) from a
    value-pairs dict or a LogMessage. Hot path: one lookup and one conversion
    per field, nothing else."""
    get = msg.get if isinstance(msg, dict) else (lambda k: _get(msg, k))
    host = _get(msg, "HOST") or _get(msg, "SOURCEIP") or "unknown"
    rec = Record(host=host, text=_get(msg, "MESSAGE") or "", recv_time=now)
    for key, attr, conv in _KEYS:
        v = get(key)
        if v is None or v == b"" or v == "":
            continue
        try:
            if v.__class__ is bytes:
                v = v.decode("utf-8", "backslashreplace")
            setattr(rec, attr, conv(v))
        except (ValueError, TypeError, AttributeError):
            pass                        # a malformed field is left at its default
    if rec.format != EXTENDED:
        rec.format = PLAIN
    return rec


def _clean(s: str, limit: int = 200) -> str:
    """Kernel text for one internal log line: no control characters, capped."""
    s = "".join(c if c.isprintable() else " " for c in str(s))
    return s[:limit]


def _log_line(level, text):
    getattr(_log, level)(text)


def _name_thread(name: bytes):
    """Name the OS thread (top -H, /proc/PID/task/*/comm); Python 3.11 does not."""
    try:
        import ctypes
        ctypes.CDLL(None).prctl(15, name, 0, 0, 0)     # PR_SET_NAME
    except Exception:
        pass


class _Engine:
    """Detector state of one destination; survives reloads in _ENGINES."""

    def __init__(self):
        self.lock = threading.Lock()
        self.detectors = collections.OrderedDict()   # stream key -> Detector, LRU order
        self.last_seen = {}                          # stream key -> monotonic time
        # stream keys with an open report (a deadline pending), least recently fed first
        self.active = collections.OrderedDict()
        self.out = collections.deque()               # finished incidents, wall-clock times
        self.stats = collections.Counter()
        self.ratelog = RateLimitedLog(_log_line, "netconsole-incidents: ", LOG_EVERY)


_ENGINES: Dict[tuple, _Engine] = {}
_ENGINES_LOCK = threading.Lock()


def _wall_offset() -> float:
    return time.time() - time.monotonic()


def _to_wall(incidents: List[Incident], offset: float) -> List[Incident]:
    """Detector times are monotonic (the `now` we pass): make them wall-clock."""
    for inc in incidents:
        if inc.first_time:
            inc.first_time += offset
        if inc.last_time:
            inc.last_time += offset
    return incidents


class IncidentDestination(_Base):
    """syslog-ng python() destination; see the module docstring."""

    # -- syslog-ng API (main thread) ------------------------------------------

    def init(self, options):
        try:
            options = dict(options or {})
            self.alert_cfg = alert_config.from_options(alert_config.pop_options(options))
            self.opts = parse_options(options)
        except ValueError as exc:
            _log.error("netconsole-incidents: %s" % exc)
            return False
        try:
            self._setup()
        except Exception as exc:        # never fail a (re)load for recoverable trouble
            _log.error("netconsole-incidents: start-up trouble, running degraded: %r" % (exc,))
        return True

    def deinit(self):
        try:
            self._teardown()
        except Exception as exc:
            _log.error("netconsole-incidents: deinit trouble: %r" % (exc,))

    def open(self):
        return True

    def close(self):
        pass
    # no is_opened(): 3.38 would call it before every send()

    # -- syslog-ng API (worker thread) ----------------------------------------

    def send(self, msg):
        eng = getattr(self, "_eng", None)
        if eng is None:                 # init() failed before the engine existed
            return True
        now = time.monotonic()
        try:
            rec = record_from_message(msg, now)
            self._feed(rec, now)
        except Exception as exc:        # bad input or a detector bug: count, never fail
            eng.stats["bad_records"] += 1
            eng.ratelog("send", "record not analysed: %r" % (exc,), now, "warning")
        return True

    # -- internals -------------------------------------------------------------

    def _setup(self):
        self.state_dir = self.opts["state_dir"]
        self._owner = "%s|%s" % (getattr(self, "persist_name", None) or "incidents",
                                 os.path.abspath(self.state_dir))
        with _ENGINES_LOCK:
            eng = _ENGINES.get(self._owner)
            fresh = eng is None
            if fresh:
                eng = _ENGINES[self._owner] = _Engine()
        self._eng = eng
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._store = None
        self._store_retry_at = 0.0
        self._last_evict = time.monotonic()
        self._open_store(time.monotonic())
        self._adopt_parked(fresh)
        self._start_alerts()
        self._thread = threading.Thread(target=self._run, name="netconsole-incidents",
                                        daemon=True)
        self._thread.start()

    def _teardown(self):
        if getattr(self, "_eng", None) is None:
            return                      # init() rejected the options: nothing started
        thread = getattr(self, "_thread", None)
        if thread is not None:
            self._stop.set()
            self._wake.set()
            thread.join(10.0)
            if thread.is_alive():
                _log.error("netconsole-incidents: background thread did not stop in 10 s")
        self._drain()                   # whatever the thread left
        self._park()
        self._stop_alerts()
        self._write_stats()
        if self._store is not None:
            self._store.close()
            self._store = None
        s = self._eng.stats
        _log.info("netconsole-incidents: records=%d incidents=%d stored=%d duplicates=%d "
                  "bad_records=%d store_errors=%d open_reports=%d"
                  % (s["records"], s["incidents"], s["stored"], s["duplicates"],
                     s["bad_records"], s["store_errors"], len(self._eng.active)))

    def _open_store(self, now: float):
        try:
            os.makedirs(self.state_dir, exist_ok=True)
            self._store = Store(self.state_dir)
        except (OSError, StoreError) as exc:
            self._store = None
            self._store_retry_at = now + STORE_RETRY
            self._eng.ratelog("store-open", "incident store unavailable, retrying every %ds (incidents go "
                              "to the internal log meanwhile): %s" % (STORE_RETRY, exc), now, "error")

    def _adopt_parked(self, fresh: bool):
        """Reports open at the last deinit: a reload continues them live (drop the
        snapshots); a new process stores them, flagged truncated."""
        if self._store is None:
            return
        try:
            parked = self._store.unpark(self._owner)
        except StoreError as exc:
            self._eng.ratelog("unpark", str(exc), time.monotonic(), "error")
            return
        if fresh and parked:
            for inc in parked:
                inc.truncated = True
            self._eng.out.extend(parked)
            _log.info("netconsole-incidents: %d report(s) open at the last shutdown stored "
                      "as truncated" % len(parked))

    def _feed(self, rec: Record, now: float):
        eng = self._eng
        key = rec.stream
        with eng.lock:
            eng.stats["records"] += 1
            det = eng.detectors.get(key)
            if det is None:
                if len(eng.detectors) >= self.opts["max_hosts"]:
                    self._evict_oldest(now)
                det = eng.detectors[key] = Detector()
            else:
                eng.detectors.move_to_end(key)
            eng.last_seen[key] = now
            det.feed(rec, now)
            found = det.incidents()
            if det.next_deadline() is not None:
                eng.active[key] = None
                eng.active.move_to_end(key)
                if len(eng.active) > self.opts["max_open"]:
                    self._finish_oldest_open(now)
            else:
                eng.active.pop(key, None)
            if found:
                eng.stats["incidents"] += len(found)
                eng.out.extend(_to_wall(found, _wall_offset()))
        if found:
            self._wake.set()

    def _evict_oldest(self, now: float):
        """Cap reached (lock held): finish the least recently seen stream."""
        eng = self._eng
        key, det = eng.detectors.popitem(last=False)
        eng.last_seen.pop(key, None)
        eng.active.pop(key, None)
        det.flush(now)
        found = det.incidents()
        eng.stats["streams_evicted"] += 1
        if found:
            eng.stats["incidents"] += len(found)
            eng.out.extend(_to_wall(found, _wall_offset()))

    def _finish_oldest_open(self, now: float):
        """Too many open reports (lock held): finish the least recently fed one now,
        flagged truncated. Bounds the memory a flood of "reports" can hold."""
        eng = self._eng
        key = next(iter(eng.active))
        eng.active.pop(key)
        det = eng.detectors.get(key)
        if det is None:
            return
        det.flush(now)
        found = det.incidents()
        for inc in found:
            inc.truncated = True
        if found:
            eng.stats["reports_forced"] += len(found)
            eng.stats["incidents"] += len(found)
            eng.out.extend(_to_wall(found, _wall_offset()))

    def _run(self):
        _name_thread(b"nc-incidents")
        tick = self.opts["tick"]
        while not self._stop.is_set():
            now = time.monotonic()
            try:
                wait = self._expire(now, tick)
                self._drain()
                if now - self._last_evict >= EVICT_EVERY:
                    self._last_evict = now
                    self._evict_idle(now)
                    self._write_stats()
            except Exception as exc:    # keep the timer alive whatever happens
                self._eng.stats["thread_errors"] += 1
                self._eng.ratelog("thread", "background thread: %r" % (exc,), now, "error")
                wait = tick
            self._wake.wait(wait)
            self._wake.clear()

    def _expire(self, now: float, tick: float) -> float:
        """Run due timeouts; return how long the thread may sleep."""
        eng = self._eng
        soonest = now + tick
        with eng.lock:
            for key in list(eng.active):
                det = eng.detectors.get(key)
                deadline = det.next_deadline() if det is not None else None
                if deadline is not None and deadline <= now:
                    det.expire(now)
                    found = det.incidents()
                    if found:
                        eng.stats["incidents"] += len(found)
                        eng.out.extend(_to_wall(found, _wall_offset()))
                    deadline = det.next_deadline()
                if deadline is None:
                    eng.active.pop(key, None)
                else:
                    soonest = min(soonest, deadline)
        return max(0.01, soonest - now)

    def _evict_idle(self, now: float):
        eng = self._eng
        limit = now - self.opts["host_idle"]
        with eng.lock:
            for key in list(eng.detectors):
                if eng.last_seen.get(key, 0.0) > limit:
                    break               # LRU order: the rest are newer
                if key in eng.active:
                    continue
                del eng.detectors[key]
                eng.last_seen.pop(key, None)

    def _drain(self):
        eng = self._eng
        while True:
            try:
                inc = eng.out.popleft()
            except IndexError:
                return
            self._emit(inc)

    def _emit(self, inc: Incident):
        """Store one finished incident (background thread), then hand it to alerts."""
        eng = self._eng
        now = time.monotonic()
        if self._store is None and now >= self._store_retry_at:
            self._open_store(now)
        new = True
        if self._store is not None:
            try:
                new = self._store.add(inc, time.time())
            except StoreError as exc:
                eng.stats["store_errors"] += 1
                eng.ratelog("store-add", "cannot store incident: %s" % exc, now, "error")
        else:
            eng.stats["store_errors"] += 1
        if not new:
            eng.stats["duplicates"] += 1
            return
        eng.stats["stored"] += 1
        if self.opts["json_lines"]:
            self._append_json(inc, now)
        _log.info("netconsole-incidents: host=%s type=%s title=%s%s"
                  % (_clean(inc.host, 64), _clean(inc.type, 40), _clean(inc.title),
                     " (panicked)" if inc.panicked else ""))
        try:
            self._on_incident(inc)
        except Exception as exc:
            eng.stats["alert_errors"] += 1
            eng.ratelog("alert", "alert hook: %r" % (exc,), now, "error")

    def _append_json(self, inc: Incident, now: float):
        d = inc.to_dict()
        d["stored_at"] = time.time()
        line = json.dumps(d, sort_keys=True) + "\n"       # ensure_ascii: no raw control chars
        try:
            fd = os.open(os.path.join(self.state_dir, JSONL_NAME),
                         os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o640)
            try:
                os.write(fd, line.encode("ascii"))
            finally:
                os.close(fd)
        except OSError as exc:
            self._eng.stats["jsonl_errors"] += 1
            self._eng.ratelog("jsonl", "cannot append to %s: %s" % (JSONL_NAME, exc), now, "error")

    def _park(self):
        """Snapshot the open reports into the store (see the module docstring)."""
        eng = self._eng
        now = time.monotonic()
        snaps = []
        with eng.lock:
            for key in eng.active:
                det = eng.detectors.get(key)
                if det is None:
                    continue
                try:
                    snaps.append(copy.deepcopy(det))
                except Exception as exc:
                    eng.stats["park_errors"] += 1
                    eng.ratelog("park", "cannot snapshot a report: %r" % (exc,), now, "warning")
        found = []
        for det in snaps:
            det.flush(now)
            found.extend(det.incidents())
        if self._store is None:
            if found:
                eng.stats["park_errors"] += len(found)
                _log.error("netconsole-incidents: no store: %d open report(s) are lost if "
                           "this is a shutdown (a reload continues them)" % len(found))
            return
        try:
            self._store.park(self._owner, _to_wall(found, _wall_offset()), time.time())
        except StoreError as exc:
            eng.stats["park_errors"] += 1
            eng.ratelog("park", str(exc), now, "error")

    def _write_stats(self):
        with self._eng.lock:
            s = dict(self._eng.stats)
            s["streams"] = len(self._eng.detectors)
            s["open_reports"] = len(self._eng.active)
            # failures the detector swallowed (it never raises into send())
            s["detector_errors"] = sum(getattr(d, "errors", 0) for d in self._eng.detectors.values())
        s["store_ok"] = self._store is not None
        try:
            tmp = os.path.join(self.state_dir, STATS_NAME + ".tmp")
            with open(tmp, "w") as f:
                json.dump(s, f, sort_keys=True)
            os.replace(tmp, os.path.join(self.state_dir, STATS_NAME))
        except OSError:
            pass                        # the store error is already reported

    # -- alert hook (issue 5) --------------------------------------------------

    def _start_alerts(self):
        """Build and start the alert dispatcher (main thread); see alerts/dispatcher.py."""
        self._alerts = None
        if not self.alert_cfg.enabled:
            return
        from syslogng_netconsole.alerts.dispatcher import Dispatcher
        self._alerts = Dispatcher(self.alert_cfg, self.state_dir, _log)
        self._alerts.start()

    def _stop_alerts(self):
        """Stop the alert dispatcher (main thread, deinit): no thread outlives a reload."""
        alerts, self._alerts = getattr(self, "_alerts", None), None
        if alerts is not None:
            alerts.stop(timeout=1.0)     # a thread inside a slow request finishes alone

    def _on_incident(self, incident: Incident):
        """A new incident was stored: queue its alerts in the outbox (a few ms, never
        raises, never touches the network)."""
        alerts = getattr(self, "_alerts", None)
        if alerts is not None:
            alerts.submit(incident, time.time())
