"""The default channel, needing no external service: one JSON line per alert (the
generic webhook document) appended to a file in the state directory, plus one line
in syslog-ng's internal log."""

import json
import os

from syslogng_netconsole import jsonfiles
from syslogng_netconsole.alerts import webhook
from syslogng_netconsole.alerts.base import Channel
from syslogng_netconsole.alerts.errors import error_detail
from syslogng_netconsole.alerts.retry import Result


class JsonFileChannel(Channel):
    kind = "jsonfile"
    rate_limited = False

    def __init__(self, cfg, path, log=None):
        super().__init__(cfg)
        self.path = path
        self.log = log

    def describe(self):
        return "jsonfile %s" % self.path

    def render(self, alert):
        return json.dumps(webhook.document(alert), ensure_ascii=False, sort_keys=True)

    def deliver(self, alert, now):
        line = self.render(alert) + "\n"
        try:
            os.makedirs(os.path.dirname(self.path) or ".", mode=0o750, exist_ok=True)
            jsonfiles.append_line(self.path, line, fsync=True)
        except OSError as exc:
            return Result.retry("%s: %s" % (self.path, error_detail(exc)))
        if self.log is not None:
            # warning: syslog-ng shows info-level internal messages only with -v
            self.log.warning("netconsole alert [%s] %s (id %s)"
                             % (alert.severity, alert.summary_line(), alert.id))
        return Result.success("appended to %s" % self.path)
