"""The REBOOT incidents still in their grace (hosts/reboots.py) across a stop, a
restart and a SIGKILL: a new boot is judged GRACE (15 s) after it began, and a stop
inside that window used to lose the judgement.

The loop writes them to ``<state_dir>/source-<port>.reboots.json`` when they changed,
at most every SAVE_EVERY seconds (a kill loses at most that much), and deinit writes
them at once; a fresh start puts them back with their due times (a reload keeps the
live ones, which the file mirrors). A file that cannot be read is kept as
``<path>.bad`` and logged. Failures are counted (``reboot_save_errors``,
``restore_errors``), never raised.
"""

import json
import os
from typing import Optional

from .. import jsonfiles

SAVE_EVERY = 2.0


def state_path(state_dir: str, port: int) -> Optional[str]:
    return os.path.join(state_dir, "source-%d.reboots.json" % port) if state_dir else None


def save(ep, now: float, force: bool = False) -> None:
    """From the loop (cheap unless something changed) and at deinit (force)."""
    watch = ep.reboots
    if not watch.changed or (not force and now - ep.reboots_saved < SAVE_EVERY):
        return
    path = state_path(ep.settings["state_dir"], ep.settings["port"])
    if path is None:
        return
    ep.reboots_saved = now
    try:
        docs = watch.pending_docs()
        if docs:
            jsonfiles.write_atomic(path, docs)
        elif os.path.exists(path):
            os.unlink(path)
    except OSError:
        watch.changed = True            # tried again at the next save
        ep.counters["reboot_save_errors"] += 1


def restore(ep, fresh: bool, log) -> None:
    """At start: a fresh one takes the saved REBOOTs back; a reload has them live."""
    path = state_path(ep.settings["state_dir"], ep.settings["port"])
    if not fresh or path is None or not os.path.exists(path):
        return
    try:
        with open(path) as f:
            n = ep.reboots.restore(json.load(f))
    except (OSError, ValueError) as e:
        ep.counters["restore_errors"] += 1
        try:
            os.replace(path, path + ".bad")
        except OSError:
            pass
        log.warning("netconsole: cannot read the pending REBOOT incidents %s (kept as .bad): %r"
                    % (path, e))
        return
    if n:
        log.info("netconsole: port %d: %d unexplained reboot(s) judged at the last stop go on "
                 "with their grace" % (ep.settings["port"], n))
