"""Fleet views for the CLI (issue 13): incidents per kernel release against the hosts
seen on each. Pure but for reading hosts.sqlite in hosts_seen()."""

from typing import Dict, List, Optional

from .hostdb import HostDb, HostDbError


def hosts_seen(state_dir: str) -> Optional[Dict[str, int]]:
    """release -> hosts seen on it, or None when there is no readable host table."""
    try:
        db = HostDb(state_dir, readonly=True)
    except HostDbError:
        return None
    try:
        return {r["release"]: r["hosts"] for r in db.releases()}
    except HostDbError:
        return None
    finally:
        db.close()


def by_release(incident_rows: List[dict], seen: Optional[Dict[str, int]]) -> List[dict]:
    """Store.releases() rows + hosts seen per release -> one row per release (those
    with incidents and those without), most crash-prone first."""
    out = {}
    for r in incident_rows:
        out[r["release"]] = dict(r, hosts_seen=None, per_1000=None)
    for rel, n in (seen or {}).items():
        row = out.setdefault(rel, {"release": rel, "incidents": 0, "signatures": 0,
                                   "crashing_hosts": 0, "hosts_seen": None, "per_1000": None})
        row["hosts_seen"] = n
    for row in out.values():
        n = row["hosts_seen"]
        if n:
            # a host seen on two releases counts on both; one that crashed on a
            # release it was never heard announcing still counts as seen there
            row["hosts_seen"] = n = max(n, row["crashing_hosts"])
            row["per_1000"] = round(1000.0 * row["crashing_hosts"] / n, 1)
    return sorted(out.values(), key=lambda r: (-(r["per_1000"] or 0), -r["incidents"],
                                               r["release"]))
