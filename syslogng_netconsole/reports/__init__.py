"""Kernel crash reports: kinds table, streaming detector, titles, signatures.

Pure core (no syslog-ng import, no clock reads). API::

    from syslogng_netconsole.reports import Detector, parse_console_line
    d = Detector()                  # or Detector(DetectorLimits(quiet_seconds=...))
    d.feed(record, now)             # never raises
    d.next_deadline() -> Optional[float]
    d.expire(now)                   # timer-driven ends (grace, quiet, age)
    d.flush(now)                    # end of input
    d.incidents() -> [Incident]     # drains finished incidents

``severity(type, panicked, title)`` maps an incident to critical/error/warning/info
(see ``kinds``).
"""

from ..ingest.console import parse_console_line
from .detector import Detector, DetectorLimits
from .kinds import INFO_TYPES, severity, title_to_type
from .titles import normalize as normalize_title

__all__ = ["Detector", "DetectorLimits", "parse_console_line", "severity",
           "title_to_type", "normalize_title", "INFO_TYPES"]
