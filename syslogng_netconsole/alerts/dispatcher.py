"""Background delivery: policy at submit time, the outbox, one thread per channel.

``submit(incident, now)`` runs in syslog-ng's destination thread: it applies the
policy and writes to the outbox (one SQLite transaction, ~1 ms), never blocks on
the network and never raises. One delivery thread per channel drains the outbox,
so a slow webhook never delays mail; a housekeeping thread emits digests and
rate-limit summaries when due. ``start()``/``stop()`` are called from the
destination's init/open and deinit (syslog-ng never runs atexit, and a reload
creates a new instance: nothing is left running after ``stop()`` but a thread
still inside one request, which ends by itself after the request).
"""

import logging
import os
import random
import threading
import time

from syslogng_netconsole import jsonfiles
from syslogng_netconsole.alerts import channels as channel_registry
from syslogng_netconsole.alerts import model
from syslogng_netconsole.threads import name_os_thread
from syslogng_netconsole.alerts.outbox import FILE_NAME, Outbox
from syslogng_netconsole.alerts.policy import Policy, RateLimiter
from syslogng_netconsole.alerts.retry import Backoff, Result

HOUSEKEEP_EVERY = 1.0
PRUNE_EVERY = 600.0
STATS_EVERY = 30.0
STATS_NAME = "alerts-stats.json"
IDLE_POLL = 2.0         # a channel thread re-checks the outbox at least this often


class Dispatcher:
    def __init__(self, cfg, state_dir, log=None, clock=time.time, rand=random.random):
        self.cfg = cfg
        self.state_dir = state_dir
        self.log = log or logging.getLogger("syslogng_netconsole.alerts")
        self.clock = clock
        self.rand = rand
        self.failed_channels = []          # "kind: error" of each that cannot start
        self.channels = channel_registry.build(cfg, state_dir, self.log, self.failed_channels)
        self.backoff = Backoff(cfg.retry_base, cfg.retry_cap)
        self.outbox = None
        self.policy = None
        self.rate = None
        self.durable = False
        self._lock = threading.Lock()      # policy and rate state, enqueue
        self._stop = threading.Event()
        self._kicks = {ch.id: threading.Event() for ch in self.channels}
        self._threads = []
        self.stats = dict.fromkeys((
            "submitted", "submit_errors", "queued", "sent", "retried", "dead",
            "rate_suppressed", "internal_errors"), 0)
        self.stats["channel_start_errors"] = len(self.failed_channels)

    # -- life cycle ----------------------------------------------------------------
    def _open(self):
        if self.outbox is not None:
            return
        try:
            os.makedirs(self.state_dir, mode=0o750, exist_ok=True)
            self.outbox = Outbox(os.path.join(self.state_dir, FILE_NAME))
            self.durable = True
        except Exception as exc:
            self.log.error("netconsole alerts: cannot open the outbox in %r (%s); alerts are "
                           "kept in memory only and lost on restart" % (self.state_dir, exc))
            self.outbox = Outbox(":memory:")
        c = self.cfg
        self.policy = Policy(c.dedup_window, c.digest_interval, c.min_severity, c.alert_ttl,
                             self.outbox.kv_get("policy"))
        self.rate = RateLimiter(c.rate_limit[0], c.rate_limit[1], c.alert_ttl,
                                self.outbox.kv_get("rate"))

    def start(self):
        """Open the outbox and start the threads; idempotent, never raises."""
        if self._threads:
            return
        try:
            self._open()
            self._stop.clear()
            for ch in self.channels:
                self._spawn(self._run_channel, ch, "nc-alert-" + ch.kind)
            self._spawn(self._run_housekeeping, None, "nc-alert-housekeeping")
            self.log.info("netconsole alerts: delivering to %s"
                          % "; ".join(ch.describe() for ch in self.channels))
            known = {ch.id for ch in self.channels}
            orphans = sum(c.get("pending", 0) for ch, c in self.outbox.counts().items()
                          if ch not in known)
            if orphans:
                self.log.warning("netconsole alerts: %d alert delivery(ies) wait for channels "
                                 "no longer configured; given up after alert-max-age" % orphans)
        except Exception as exc:
            self.stats["internal_errors"] += 1
            self.log.error("netconsole alerts: cannot start delivery: %s" % exc)

    def _spawn(self, fn, arg, name):
        def run():
            name_os_thread(name)
            fn(*((arg,) if arg is not None else ()))
        t = threading.Thread(target=run, name=name, daemon=True)
        t.start()
        self._threads.append(t)

    def stop(self, timeout=5.0):
        """Stop the threads (join with a deadline) and close the outbox."""
        self._stop.set()
        for k in self._kicks.values():
            k.set()
        deadline = time.monotonic() + timeout
        for t in self._threads:
            t.join(max(0.0, deadline - time.monotonic()))
        busy = [t for t in self._threads if t.is_alive()]
        if busy:
            self.log.warning("netconsole alerts: %d delivery thread(s) still inside a request;"
                             " they exit when it ends" % len(busy))
        self._threads = []
        if self.outbox is not None:
            try:
                with self._lock:
                    self._save_state()
            except Exception as exc:
                self.log.error("netconsole alerts: cannot save policy state: %s" % exc)
            self.write_stats()
            c = self.counters()
            self.log.info("netconsole alerts: " + " ".join(
                "%s=%d" % (k, c[k]) for k in ("submitted", "sent", "retried", "dead", "folded",
                                               "digests", "duplicate", "below_min_severity",
                                               "rate_suppressed", "submit_errors")))
            self.outbox.close(skip_threads=busy)
            # a late submit() (or a start()) reopens it: the alert still lands on disk
            self.outbox = None

    # -- intake (syslog-ng's thread) ----------------------------------------------------
    def submit(self, incident, now=None):
        """Queue alerts for ``incident``; ``now`` is wall-clock seconds. Returns the
        policy verdict ("sent", "folded", "duplicate", "below_min_severity") or
        "error". Never raises."""
        try:
            wall = self.clock() if now is None else float(now)
            return self.submit_alert(model.from_incident(incident, wall, self.cfg.alert_ttl),
                                     wall)
        except Exception as exc:
            self.stats["submit_errors"] += 1
            self.log.error("netconsole alerts: cannot queue an alert: %s" % exc)
            return "error"

    def submit_many(self, items):
        """submit() for several (incident, wall seconds) pairs, in order, in one outbox
        transaction: a storm hands hundreds at once, and every transaction also writes
        the policy state, which grows with the hosts a digest lists. Returns the
        verdicts. Never raises."""
        items = list(items)
        try:
            alerts = [(model.from_incident(inc, float(wall), self.cfg.alert_ttl), float(wall))
                      for inc, wall in items]
            return self._admit(alerts) if alerts else []
        except Exception as exc:
            self.stats["submit_errors"] += len(items)
            self.log.error("netconsole alerts: cannot queue %d alert(s): %s" % (len(items), exc))
            return ["error"] * len(items)

    def submit_alert(self, alert, now):
        return self._admit([(alert, now)])[0]

    def _admit(self, alerts):
        """The policy's verdict on each (alert, now), in order; what it lets through
        written in one outbox transaction (with the policy state); the senders woken."""
        self.stats["submitted"] += len(alerts)
        if self.outbox is None:
            self._open()
        out, verdicts = [], []
        with self._lock:
            for alert, now in alerts:
                queued, verdict = self.policy.admit(alert, now)
                out.extend(queued)
                verdicts.append(verdict)
            self._enqueue(out, alerts[-1][1])
        self._kick()
        return verdicts

    def _enqueue(self, alerts, now, only=None):
        """Rate limit and write ``alerts`` (+ policy state) in one transaction."""
        with self.outbox.transaction() as tx:
            for a in alerts:
                targets = []
                for ch in self.channels:
                    if only is not None and ch.id != only:
                        continue
                    if only is None and ch.rate_limited and not self.rate.allow(ch.id, a, now):
                        self.stats["rate_suppressed"] += 1
                        continue
                    targets.append(ch.id)
                self.stats["queued"] += self.outbox.enqueue(a, targets, now, tx)
            self._save_state(tx)

    def _save_state(self, tx=None):
        self.outbox.kv_set("policy", self.policy.state, tx)
        self.outbox.kv_set("rate", self.rate.state, tx)

    def _kick(self):
        for k in self._kicks.values():
            k.set()

    # -- threads ------------------------------------------------------------------------
    def _run_housekeeping(self):
        outbox = self.outbox            # stop() may drop self.outbox while we finish
        last_prune = last_stats = 0.0
        try:
            while not self._stop.is_set():
                now = self.clock()
                try:
                    self.housekeep(now)
                    if now - last_prune > PRUNE_EVERY:
                        outbox.prune(now)
                        n = outbox.expire_orphans([c.id for c in self.channels], now,
                                                       self.cfg.max_age)
                        if n:
                            self.log.error("netconsole alerts: gave up %d alert delivery(ies)"
                                           " for channels no longer configured" % n)
                        last_prune = now
                    if now - last_stats > STATS_EVERY:
                        self.write_stats()
                        last_stats = now
                except Exception as exc:
                    self.stats["internal_errors"] += 1
                    self.log.error("netconsole alerts: housekeeping failed: %s" % exc)
                self._stop.wait(HOUSEKEEP_EVERY)
        finally:
            outbox.close_thread()

    def housekeep(self, now):
        """Queue the digests and rate-limit summaries that are due."""
        with self._lock:
            digests = self.policy.due(now)
            summaries = self.rate.due(now)
            if digests:
                self._enqueue(digests, now)
            for ch_id, summary in summaries:
                self._enqueue([summary], now, only=ch_id)
        if digests or summaries:
            self._kick()

    def _run_channel(self, ch):
        outbox = self.outbox            # stop() may drop self.outbox while we finish
        kick = self._kicks[ch.id]
        lease = self.cfg.timeout * 2 + 30
        try:
            while not self._stop.is_set():
                kick.clear()
                try:
                    now = self.clock()
                    row = outbox.claim(ch.id, now, lease)
                    if row is None:
                        nd = outbox.next_due(ch.id)
                        wait = IDLE_POLL if nd is None else min(max(nd - now, 0.01), IDLE_POLL)
                        kick.wait(wait)
                        continue
                    self._deliver_one(outbox, ch, row)
                except Exception as exc:     # database trouble: log, back off, go on
                    self.stats["internal_errors"] += 1
                    self.log.error("netconsole alerts: %s: %s" % (ch.id, exc))
                    self._stop.wait(1.0)
        finally:
            outbox.close_thread()

    def _deliver_one(self, outbox, ch, row):
        alert_id, payload, attempts, created = row
        try:
            res = ch.deliver(model.Alert.from_json(payload), self.clock())
        except Exception as exc:
            res = Result.retry("internal error: %s: %s" % (type(exc).__name__, exc))
        now = self.clock()
        attempts += 1
        if res.ok:
            outbox.mark_sent(alert_id, ch.id, now)
            self.stats["sent"] += 1
            return
        expired = now - created > self.cfg.max_age
        if res.outcome == "permanent" or expired:
            outbox.mark_dead(alert_id, ch.id, now, res.detail)
            self.stats["dead"] += 1
            self.log.error("netconsole alerts: %s: giving up on alert %s after %d attempt(s)%s:"
                           " %s" % (ch.describe(), alert_id, attempts,
                                    " (older than alert-max-age)" if expired else "",
                                    res.detail))
            return
        delay = self.backoff.delay(attempts, self.rand(), res.retry_after)
        outbox.mark_retry(alert_id, ch.id, now + delay, res.detail)
        self.stats["retried"] += 1
        if attempts & (attempts - 1) == 0:      # 1, 2, 4, 8 ...: no log storm
            self.log.warning("netconsole alerts: %s: alert %s attempt %d failed (%s); retry "
                             "in %.0f s" % (ch.describe(), alert_id, attempts, res.detail,
                                            delay))

    # -- introspection ------------------------------------------------------------------
    def counters(self):
        out = dict(self.stats)
        if self.policy is not None:
            out.update(self.policy.counters)
        return out

    def write_stats(self):
        """<state_dir>/alerts-stats.json: counters (every drop counted) and the outbox
        rows per channel and state."""
        if not self.durable:
            return
        doc = {"counters": self.counters(), "outbox": self.outbox.counts(),
               "channels": [ch.describe() for ch in self.channels],
               "channels_not_started": self.failed_channels}
        try:
            jsonfiles.write_atomic(os.path.join(self.state_dir, STATS_NAME), doc,
                                   sort_keys=True, indent=1)
        except OSError as exc:
            self.log.warning("netconsole alerts: cannot write %s: %s" % (STATS_NAME, exc))
