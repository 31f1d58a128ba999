"""What the netconsole() source keeps across a stop and start.

deinit() cannot tell a reload from a stop. So it saves what a stop would lose: the
unfinished records and the records not yet posted (persist.py); the next instance
deletes the file when it takes the live state over (a reload), or posts what it
holds (a restart). With detect("yes"), the crash report journal (journal.py) is
written all along, so a SIGKILL loses no report either: deinit() only writes it
out compacted, and a fresh start replays it (detect.py).

`log` is syslog-ng's Logger (or a logging.Logger outside syslog-ng); every failure
is counted on the endpoint and logged, never raised.
"""

import time

from . import persist, rebootstate
from .detect import JOURNAL_RETRY, SourceDetector, reports_path
from .journal import journal_path


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
    if det is None or det.journal is None:
        return
    try:
        now = time.monotonic()
        det.checkpoint(now, time.time() - now)
    except Exception as e:
        ep.counters["save_errors"] += 1
        log.warning("netconsole: cannot write the crash report journal %s: %r"
                    % (det.journal.path, e))


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
        ep.held.extend(rec for rec, _ in recs)
        ep.counters["restored"] += len(recs)
        log.info("netconsole: port %d: %d records saved at the last stop are posted now"
                 % (port, len(recs)))
    if det is not None and state_dir:
        _open_journal(ep, det, state_dir, port, fresh, settings["journal"], log)
        rebootstate.restore(ep, fresh, log)
    if det is not None:                 # after the journal's: the order they came in
        now = time.monotonic()
        for rec, detected in recs:
            if not detected or det.journal is None:
                det.feed(rec, now)
    path = reports_path(state_dir, port)
    try:
        found = SourceDetector.take_saved(path, fresh)
    except Exception as e:
        ep.counters["restore_errors"] += 1
        log.warning("netconsole: cannot restore saved crash reports from %s: %r" % (path, e))
        return
    if found and det is not None:
        det.out.extend(found)
        log.info("netconsole: port %d: %d crash report(s) open at the last stop (saved by an "
                 "earlier release) are posted now, open ones flagged truncated"
                 % (port, len(found)))


def _open_journal(ep, det, state_dir, port, fresh, continuous, log) -> None:
    """Replay the journal (a fresh start) and keep writing it; a reload goes on with
    the live one. A journal that cannot be read is kept aside and a new one begun."""
    path = journal_path(state_dir, port)
    if det.journal is not None and det.journal.path == path:
        return
    for attempt in (1, 2):
        now = time.monotonic()
        try:                            # the 2nd attempt replays nothing (no record twice)
            records, incidents = det.open_journal(path, state_dir, fresh and attempt == 1,
                                                  now, time.time() - now, continuous)
        except Exception as e:
            ep.counters["restore_errors"] += 1
            if attempt == 1:
                det.journal = None
            else:                       # said here; the source's loop retries it
                det.journal_retry_at = now + JOURNAL_RETRY
                det.journal_log_at = now + 60.0
            log.warning("netconsole: crash report journal %s: %r%s" % (
                path, e, "; starting a new one" if attempt == 1 else
                "; retrying every %ds (open reports are lost if syslog-ng is killed "
                "meanwhile)" % JOURNAL_RETRY))
            continue
        if records or incidents:
            log.info("netconsole: port %d: %d records of open crash reports and %d "
                     "incident(s) from the journal replayed (after a stop or a crash)"
                     % (port, records, incidents))
        return
