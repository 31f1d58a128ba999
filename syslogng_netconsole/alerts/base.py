"""What every channel shares: an id, a redacted description, a lazily built TLS
context (a bad ca-file becomes a retryable delivery error, not a start-up crash).
The HTTP client (and so `ssl`) is imported only by channels that post: the JSON-lines
file must work where `ssl` cannot be imported (a foreign standard library)."""

import hashlib

from syslogng_netconsole.alerts.config import redact_url
from syslogng_netconsole.alerts.errors import error_detail
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
                from syslogng_netconsole.alerts.httpclient import tls_context
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


class HttpChannel(Channel):
    """A channel that POSTs ``render(alert)`` as JSON to one URL."""
    ok_body = None               # Slack: a 2xx must also say "ok"

    def post_url(self):
        return self.url

    def headers(self, alert):
        """Extra headers; an OSError (unreadable token file) is retried."""
        return {}

    def deliver(self, alert, now):
        from syslogng_netconsole.alerts.httpclient import post_json
        ctx, err = self.context()
        if err:
            return err
        try:
            headers = self.headers(alert)
        except OSError as exc:
            return Result.retry(error_detail(exc))
        return post_json(self.post_url(), self.render(alert), self.cfg.timeout, ctx, headers,
                         now, ok_body=self.ok_body)
