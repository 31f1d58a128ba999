"""What the netconsole() source keeps across a stop and start.

deinit() cannot tell a reload from a stop. So it saves what a stop would lose: the
unfinished records and the records not yet posted (persist.py), and, with
detect("yes"), the open crash reports and the incidents not yet posted
(detect.py). The next instance deletes both files when it takes the live state
over (a reload), or posts what they hold (a restart).

`log` is syslog-ng's Logger (or a logging.Logger outside syslog-ng); every failure
is counted on the endpoint and logged, never raised.
"""

import time

from . import persist
from .detect import SourceDetector, reports_path


def save_at_stop(ep, det, settings, log) -> None:
    port, state_dir = settings["port"], settings["state_dir"]
    held_bytes, held_records = ep.core.pending_bytes, len(ep.held)
    if held_bytes or held_records:
        saved = _save_pending(ep, persist.pending_path(state_dir, port), log)
        log.info("netconsole: port %d: %d bytes of unfinished records and %d records are kept "
                 "for the next configuration%s"
                 % (port, held_bytes, held_records,
                    " and saved to %s for a restart" % saved if saved
                    else " (lost if syslog-ng is stopping: no state_dir)"))
    path = reports_path(state_dir, port)
    if det is None or not path or not det.has_state():
        return
    try:
        now = time.monotonic()
        n = det.save(path, now, time.time() - now)
        log.info("netconsole: port %d: %d open or unposted crash report(s) saved to %s for a "
                 "restart" % (port, n, path))
    except Exception as e:
        ep.counters["save_errors"] += 1
        log.warning("netconsole: cannot save open crash reports to %s: %r" % (path, e))


def _save_pending(ep, path, log):
    if not path:
        return None
    try:
        now = time.monotonic()
        persist.save_pending(path, ep.held, ep.core, now, time.time() - now)
        return path
    except Exception as e:
        ep.counters["save_errors"] += 1
        log.warning("netconsole: cannot save unfinished records to %s: %r" % (path, e))
        return None


def restore_at_start(ep, det, settings, fresh: bool, log) -> None:
    """fresh: a new process (restart): queue what was saved; else drop the files."""
    port, state_dir = settings["port"], settings["state_dir"]
    path = persist.pending_path(state_dir, port)
    try:
        recs = persist.take_saved(path, fresh, time.time() - time.monotonic())
    except Exception as e:
        ep.counters["restore_errors"] += 1
        log.warning("netconsole: cannot restore saved records from %s: %r" % (path, e))
        recs = []
    if recs:
        ep.held.extend(recs)
        ep.counters["restored"] += len(recs)
        log.info("netconsole: port %d: %d records saved at the last stop are posted now"
                 % (port, len(recs)))
    path = reports_path(state_dir, port)
    try:
        found = SourceDetector.take_saved(path, fresh)
    except Exception as e:
        ep.counters["restore_errors"] += 1
        log.warning("netconsole: cannot restore saved crash reports from %s: %r" % (path, e))
        return
    if found and det is not None:
        det.out.extend(found)
        log.info("netconsole: port %d: %d crash report(s) open at the last stop are posted now "
                 "(open ones flagged truncated)" % (port, len(found)))
