"""The `netconsole()` source: a syslog-ng Python `LogSource` that owns its UDP sockets.

Why its own sockets rather than syslog-ng's `udp()`: `udp()` strips the datagram's
trailing newline (which tells a cut plain line from a whole one), cuts values at NUL
in 3.38 and hides the sender's port; and a parser only runs when a message arrives, so
a silent host's held pieces would never come out. Here a timer (the poll timeout =
the core's `next_deadline()`) expires them.

Life cycle (checked on 3.38 and 4.8): `init()` (main thread) -> `run()` (a syslog-ng
thread; the only one allowed to `post_message`) ... `request_exit()` (main thread) ->
`run()` returns -> `deinit()`. A reload builds a NEW instance; the sockets, the
reassembly state and the records not yet posted live on in `endpoint`'s registry and
the next instance takes them over. This module is the syslog-ng wiring only: options,
the loop, LogMessage building, flow control and logging.

Flow control: no suspend()/wakeup(), so syslog-ng posts in its blocking mode:
`post_message` waits (without the interpreter lock) while the window is full and returns
at once on `request_exit()`. The non-blocking mode races: python-source.c checks the
window, then calls suspend(), and a wakeup() from the destination's thread can run first
(Python may switch threads at any call) or belong to an earlier full window; the source
then never posts again or posts into a full window, which syslog-ng drops ("Incorrectly
suspended source, dropping message"): with a stress source on 3.38, window 10, 200,000
messages, 1,860 dropped in one of nine runs; the blocking mode, which takes the wakeup
lock around its check, none in six.

Counters: `source.*` (the endpoint) and `core.*` (the reassembler) are logged to
syslog-ng's internal log every `stats_interval` seconds and at deinit, and written as
JSON to `<state_dir>/source-<port>.json` (at most once a second, when they changed).

Runs on 3.38 (bytes values, str options, no set_source_ipaddress: SOURCEIP stays
127.0.0.1 there; HOST is the sender) and 4.x strict (typed options, base classes).
"""

import datetime
import threading
import time

try:  # inside syslog-ng (3.38 and 4.x both require the LogSource base class)
    from syslogng import LogSource as _Base
    from syslogng import LogMessage
    from syslogng import Logger as _SngLogger
    _log = _SngLogger()
except ImportError:  # plain Python: imports work, tests can drive the class
    import logging
    _Base = object
    LogMessage = None
    _log = logging.getLogger("syslogng_netconsole.source")

from .. import __version__
from ..ratelog import RateLimitedLog
from . import endpoint, hostfacts, hostinfo, openfiles, persist, restarts, sockets
from .detect import SourceDetector
from .source_options import parse_options
from .messages import (INCIDENT_PRI, PREFIX, incident_pairs, incident_text, message_pairs,
                       record_pri, visible_nul)

# syslog-ng 4.x (LogMessage.get_as_str exists) reverts a reload whose init() fails;
# 3.x aborts. Outside syslog-ng: behave like 4.x (plain failure).
_FAILED_RELOAD_REVERTS = LogMessage is None or hasattr(LogMessage, "get_as_str")

STATS_FILE_PERIOD = 1.0    # the counters file is rewritten at most this often
LOG_EVERY = 10.0           # one line per error kind per this many seconds
POST_WAIT = 0.001          # a post that took longer waited (the window, or the GIL)


def _log_text(level: str, text: str) -> None:
    getattr(_log, level)("netconsole: " + text)


class NetconsoleSource(_Base):
    """syslog-ng python() source class; see the module docstring."""

    @staticmethod
    def generate_persist_name(options):
        # one name per listen address/port: several netconsole() sources need no persist-name()
        o = dict(options or {})
        return "netconsole(%s,%s)" % (str(o.get("ip", "")).replace(" ", ""), o.get("port", ""))

    def init(self, options):
        self._exit = threading.Event()
        self._ep = None
        self._say = RateLimitedLog(lambda level, text: getattr(_log, level)(text),
                                   "netconsole: ", LOG_EVERY)
        try:
            settings, limits = parse_options(options)
        except ValueError as e:
            _log.error(str(e))
            return self._bad_reload()  # at start-up: False, the one real config error
        try:
            return self._take_endpoint(settings, limits)
        except Exception as e:  # never fail a (re)load for a recoverable problem
            _log.error("netconsole: cannot set up the source on port %d: %r; it receives nothing"
                       % (settings["port"], e))
            self._ep = None
            return True

    def _bad_reload(self) -> bool:
        """A config error. syslog-ng 3.x aborts (SIGABRT) when a reload fails, 4.4+
        reverts to the old config: so on 3.x, during a reload, keep this source running
        with its previous settings instead (the error above says what to fix)."""
        if _FAILED_RELOAD_REVERTS:
            return False
        ep = endpoint.keep_previous(getattr(self, "persist_name", None), self)
        if ep is None:
            return False  # start-up (or nothing to keep): fail as usual
        _log.error("netconsole: keeping the previous settings of the source on port %d until the "
                   "configuration is fixed (syslog-ng 3.x would abort on a failed reload)"
                   % ep.settings["port"])
        self._use(ep, time.monotonic())
        return True

    def _take_endpoint(self, settings, limits) -> bool:
        name = getattr(self, "persist_name", None) or "netconsole"
        try:
            ep, fresh = endpoint.take(name, settings, limits, self)
        except endpoint.Busy:
            _log.error("netconsole(): two sources listen on %s port %d; give one a "
                       "persist-name() or another port" % (",".join(settings["ip"]), settings["port"]))
            return False
        if not fresh and ep.core.limits != limits:
            _log.warning("netconsole: changed reassembly limits on port %d apply after a "
                         "restart (a reload keeps the running state)" % settings["port"])
        now = time.monotonic()
        if settings["detect"] and getattr(ep, "detector", None) is None:
            ep.detector = SourceDetector.create(settings["detect_worker"], _log_text, now)
        self._use(ep, now)
        if fresh:
            hostfacts.attach(ep, settings["state_dir"], _log_text)
            warning = openfiles.open_file_warning(limits.max_streams)
            if warning:
                _log.warning("netconsole: " + warning)
        ep.apply_rcvbuf(now, self._say)
        restarts.restore_at_start(ep, self._det, self._settings, fresh, _log)
        self._bind_missing(now)
        return True

    def _use(self, ep, now: float) -> None:
        self._ep, self._settings = ep, ep.settings
        hostinfo.configure(ep, ep.settings, now, _log_text)
        self._det = getattr(ep, "detector", None) if ep.settings["detect"] else None
        self._last_stats_log = now
        self._last_stats_file = 0.0
        self._written = None          # the counters last written to the file

    def _bind_missing(self, now: float) -> None:
        for addr in self._ep.bind_missing(now, self._say):
            _log.info("netconsole: listening on %s port %d (syslogng-netconsole %s)"
                      % (addr, self._settings["port"], __version__))

    # ---------------------------------------------------------------- posting

    def _make_message(self, rec, wall_offset: float, now: float):
        msg = LogMessage(visible_nul(rec.text))
        msg["HOST"] = rec.host
        set_ip = getattr(msg, "set_source_ipaddress", None)  # 4.x only
        if set_ip is not None:
            set_ip(rec.host, rec.src_port)
        msg.set_pri(record_pri(rec))
        # a record that waited (fragments, reorder, continuations) keeps its arrival
        # time; a fresh one keeps the message's own (= now), which costs nothing
        if rec.recv_time and now - rec.recv_time > 0.05:
            msg.set_timestamp(datetime.datetime.fromtimestamp(rec.recv_time + wall_offset,
                                                              datetime.timezone.utc))
        for name, value in message_pairs(rec):
            msg[PREFIX + name] = value
        hostname = self._ep.names.who(rec.host)[0]
        if hostname is not None:
            msg[PREFIX + "hostname"] = hostname
        return msg

    def _take(self, recs) -> None:
        """The drained records name their hosts and go to the detector at once (and
        so to its journal), whether or not syslog-ng takes messages now."""
        if not recs:
            return
        ep, wall = self._ep, time.time()
        learn, observe = ep.names.learn, ep.facts.observe
        for rec in recs:
            learn(rec)
            observe(rec, wall)
        det = self._det
        if det is not None:
            mono = time.monotonic()
            for rec in recs:
                det.feed(rec, mono)     # never raises (the detector counts its errors)
            hostfacts.watch_reboots(ep, recs, wall, lambda t: self._say("reboots", t, mono))

    def _post_held(self, now: float) -> None:
        ep = self._ep
        mono = time.monotonic()
        wall_offset = time.time() - mono
        while ep.held and not self._exit.is_set():
            rec = ep.held.popleft()
            try:
                msg = self._make_message(rec, wall_offset, mono)
            except Exception as e:
                ep.counters["message_errors"] += 1
                self._say("message", "cannot build a message for a record of %s: %r"
                          % (rec.host, e), now)
                continue
            try:
                t0 = time.monotonic()
                self.post_message(msg)          # waits while syslog-ng's window is full
                ep.counters["posted"] += 1
                if time.monotonic() - t0 > POST_WAIT:
                    ep.counters["post_waits"] += 1
            except Exception as e:
                ep.counters["post_errors"] += 1
                self._say("post", "post_message failed: %r" % (e,), now)

    def _detect(self, now: float) -> None:
        """Detection timers, the journal and the worker hand-off (sng/detect.py): before
        posting, which may wait for syslog-ng's window."""
        det, ep = self._det, self._ep
        try:
            det.run(now, time.time() - now)
        except Exception as e:
            ep.counters["detect_errors"] += 1
            self._say("detect", "crash detection failed: %r" % (e,), now)
        det.out.extend(ep.reboots.due(time.time()))     # lost crashes (hosts/reboots.py)

    def _post_incidents(self, now: float) -> None:
        """One message per finished incident."""
        det, ep = self._det, self._ep
        while det.out and not self._exit.is_set():
            inc = det.out.popleft()
            ep.reboots.note_incident(inc)
            hostname, labels = ep.names.who(inc.host)
            if inc.hostname is None:
                inc.hostname = hostname
            if labels and not inc.labels:
                inc.labels = dict(labels)
            if not inc.release:         # the host's, when the report does not print it
                inc.release = ep.facts.release(inc.host)
            ep.facts.note_incident(inc, time.time())
            try:
                msg = LogMessage(incident_text(inc))
                msg["HOST"] = inc.host
                msg.set_pri(INCIDENT_PRI)
                for name, value in incident_pairs(inc):
                    msg[PREFIX + name] = value
                self.post_message(msg)
                ep.counters["posted_incidents"] += 1
            except Exception as e:
                ep.counters["post_errors"] += 1
                self._say("post", "cannot post an incident of %s: %r" % (inc.host, e), now)

    # ---------------------------------------------------------------- loop

    def run(self):
        ep = self._ep
        if ep is None:  # set-up failed (logged in init): idle until stopped
            self._exit.wait()
            return
        while not self._exit.is_set():
            now = time.monotonic()
            try:
                self._bind_missing(now)
                # while many records wait, leave datagrams in the kernel buffer
                det = self._det
                ready = ep.wait(self._timeout(now), not ep.held.full(0.5) and not (
                    det is not None and det.backlogged()), det.fds() if det is not None else ())
                now = time.monotonic()
                for sock in ready:
                    ep.read(sock, now, self._say)
                self._take(ep.drain(now, self._say))
                if self._det is not None:
                    self._detect(now)
                    self._post_incidents(now)   # first: a storm's records may wait
                self._post_held(now)
                self._periodic(now)
            except Exception as e:  # the loop itself must survive anything
                ep.counters["loop_errors"] += 1
                self._say("loop", "receive loop error: %r" % (e,), now)
                self._exit.wait(0.1)
        self._write_stats_file(time.time())

    def _timeout(self, now: float) -> float:
        t = self._ep.timeout(now)
        deadline = self._det.next_deadline() if self._det is not None else None
        if deadline is not None:
            t = min(t, max(0.0, deadline - now))
        due = self._ep.reboots.next_due() if self._det is not None else None
        if due is not None:         # wall time: the grace of a pending REBOOT
            t = min(t, max(0.0, due - time.time()))
        return t

    def request_exit(self):
        # syslog-ng then ends a post that waits for the window; what is still held
        # stays in the endpoint (reload) or is saved (stop: restarts.save_at_stop)
        self._exit.set()
        if self._ep is not None:
            self._ep.wake()

    def deinit(self):
        ep = self._ep
        if ep is None:
            return
        self._log_counters("reload or stop")
        self._write_stats_file(time.time())
        hostfacts.save_now(ep, time.monotonic(), time.time())
        restarts.save_at_stop(ep, self._det, self._settings, _log)
        endpoint.release(ep, self, time.monotonic())
        self._ep = None

    # ---------------------------------------------------------------- counters

    def counters(self) -> dict:
        out = self._ep.counters_snapshot(self._say.suppressed)
        if self._det is not None:
            out.update(self._det.counters_snapshot())
        return out

    def _log_counters(self, why: str) -> None:
        parts = ["%s=%s" % (k, v) for k, v in self.counters().items() if v]
        _log.info("netconsole: counters (%s) port=%d %s" % (why, self._settings["port"], " ".join(parts)))

    def _write_stats_file(self, wall: float, counters=None) -> None:
        state_dir = self._settings["state_dir"] if self._ep is not None else None
        if not state_dir:
            return
        port = self._settings["port"]
        counters = dict(counters if counters is not None else self.counters())
        if self._ep.host_drops:         # which senders lost records to a cap
            counters["dropped_by_host"] = dict(self._ep.host_drops.most_common(100))
        try:
            persist.write_counters(state_dir, port, self._settings["ip"], counters, wall)
        except OSError as e:
            self._ep.counters["stats_file_errors"] += 1
            self._say("statsfile", "cannot write %s: %s" % (persist.counters_path(state_dir, port), e),
                      time.monotonic(), "warning")

    def _periodic(self, now: float) -> None:
        hostinfo.poll(self._ep, now, _log_text)
        hostfacts.tick(self._ep, now, time.time())
        interval = self._settings["stats_interval"]
        if interval and now - self._last_stats_log >= interval:
            self._last_stats_log = now
            self._log_counters("periodic")
        if now - self._last_stats_file >= STATS_FILE_PERIOD:
            self._last_stats_file = now
            drops = sockets.kernel_drops(self._ep.socks.values())
            if drops is not None and drops != self._ep.counters["kernel_drops"]:
                self._ep.counters["kernel_drops"] = drops
            counters = self.counters()
            if counters != self._written:  # rewrite only when something happened
                self._written = counters
                self._write_stats_file(time.time(), counters)
            for port in endpoint.sweep_orphans(now):
                _log.info("netconsole: closing port %s of a source no longer configured" % (port,))
