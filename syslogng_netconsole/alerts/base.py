"""What every channel shares: an id, a redacted description, a lazily built TLS
context (a bad ca-file becomes a retryable delivery error, not a start-up crash)."""

import hashlib

from syslogng_netconsole.alerts.config import redact_url
from syslogng_netconsole.alerts.httpclient import error_detail, tls_context
from syslogng_netconsole.alerts.retry import Result


class Channel:
    kind = "?"
    rate_limited = True          # the local JSON file is exempt

    def __init__(self, cfg, url=""):
        self.cfg = cfg
        self.url = url
        # the outbox keys rows by this id: stable across restarts and URL reordering
        self.id = self.kind + (":" + hashlib.sha1(url.encode()).hexdigest()[:8] if url else "")
        self._ctx = None

    def describe(self):
        return "%s %s" % (self.id, redact_url(self.url)) if self.url else self.id

    def context(self):
        """-> (ssl context, None) or (None, Result to return)."""
        if self._ctx is None:
            try:
                self._ctx = tls_context(self.cfg.ca_file, self.cfg.tls_verify)
            except Exception as exc:
                return None, Result.retry("ca-file %r: %s" % (self.cfg.ca_file,
                                                              error_detail(exc)))
        return self._ctx, None

    def render(self, alert):
        raise NotImplementedError

    def deliver(self, alert, now):
        """-> retry.Result. Never raises for delivery trouble."""
        raise NotImplementedError
