"""syslog-ng netconsole plugin: receive, reassemble and analyse Linux netconsole traffic.

Layout: a pure core (no syslog-ng import, no clock reads; time is an argument)
and thin syslog-ng glue modules (``sng_*``) on top of it.
"""

__version__ = "0.2.1"
