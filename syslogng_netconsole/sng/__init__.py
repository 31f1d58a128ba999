"""syslog-ng glue: the only modules that import syslogng."""
