"""The source's side of hosts/directory.py: apply the inventory() and reverse_dns()
options (at start and at every reload), re-read a changed inventory, take reverse-DNS
answers. A missing or broken inventory is logged and leaves the previous table (or
none) in place: names are a convenience, never a reason to stop receiving."""

from ..hosts.inventory import Inventory, InventoryFile

CHECK_EVERY = 2.0          # seconds between looks at the inventory file
MAX_ERROR_LINES = 20       # bad entries logged per reading; the rest are counted


def configure(ep, settings, now: float, log) -> None:
    """At init (start and reload): a new inventory path is read at once, before
    the first record is posted."""
    path = settings["inventory"]
    if path != (ep.inventory.path if ep.inventory is not None else ""):
        ep.inventory = InventoryFile(path) if path else None
        if not path:
            ep.names.set_inventory(Inventory())
        else:
            _read(ep, now, log)
    ep.names.set_reverse_dns(settings["reverse_dns"], settings["reverse_dns_ttl"])


def poll(ep, now: float, log) -> None:
    """From the source's loop: cheap unless CHECK_EVERY has passed."""
    ep.names.poll(now)
    if ep.inventory is not None and now - ep.inventory_checked >= CHECK_EVERY:
        _read(ep, now, log)


def _read(ep, now: float, log) -> None:
    inv = ep.inventory
    ep.inventory_checked = now
    table, trouble = inv.poll()
    if trouble:
        ep.counters["inventory_errors"] += 1
        log("warning", "inventory: %s; host names and labels from it stay as they were"
            % trouble)
    if table is None:
        return
    ep.names.set_inventory(table)
    ep.counters["inventory_loads"] += 1
    for line in table.errors[:MAX_ERROR_LINES]:
        log("warning", "inventory: %s (entry skipped)" % line)
    more = len(table.errors) - MAX_ERROR_LINES
    if more > 0:
        log("warning", "inventory: %d more bad entries in %s" % (more, inv.path))
    log("info", "inventory: %d entries from %s%s" % (
        table.size, inv.path, ", %d skipped" % len(table.errors) if table.errors else ""))
