"""One JSON POST, classified by the shared retry policy. Standard library only.

Certificates are verified by default (``ssl.create_default_context``, optional CA
file); redirects are not followed (a payload must not be re-sent elsewhere); the
URL is never logged in full (it may carry a token), only ``redact_url(url)``.
"""

import json
import ssl
import urllib.error
import urllib.request

from syslogng_netconsole import __version__
from syslogng_netconsole.alerts.config import redact_url
from syslogng_netconsole.alerts.errors import error_detail
from syslogng_netconsole.alerts.retry import Result, classify_http, parse_retry_after

USER_AGENT = "syslogng-netconsole/%s" % __version__
MAX_RESPONSE = 64 * 1024


def tls_context(ca_file="", verify=True):
    ctx = ssl.create_default_context(cafile=ca_file or None)
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None     # -> HTTPError with the 3xx status, classified permanent


def _opener(ctx):
    return urllib.request.build_opener(urllib.request.HTTPSHandler(context=ctx),
                                       _NoRedirect())


def post_json(url, body, timeout, ctx, headers=None, now=0.0, ok_body=None):
    """POST ``body`` as JSON. ``ok_body``: a 2xx must also return exactly this text
    (Slack answers 'ok'). ``now`` (wall clock) resolves HTTP-date Retry-After values."""
    data = json.dumps(body, ensure_ascii=False).encode("utf-8")
    hdrs = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
    hdrs.update(headers or {})
    req = urllib.request.Request(url, data=data, method="POST", headers=hdrs)
    where = redact_url(url)
    try:
        with _opener(ctx).open(req, timeout=timeout) as resp:
            status = resp.status
            text = resp.read(MAX_RESPONSE).decode("utf-8", "replace")
    except urllib.error.HTTPError as exc:
        ra = parse_retry_after(exc.headers.get("Retry-After") if exc.headers else None, now)
        try:
            snippet = exc.read(200).decode("utf-8", "replace").strip()
        except Exception:
            snippet = ""
        return classify_http(exc.code, ("from %s %s" % (where, snippet[:100])).strip(), ra)
    except Exception as exc:    # URLError, OSError, ssl errors, timeouts, bad responses
        return Result.retry("%s: %s" % (where, error_detail(exc)))
    if ok_body is not None and text.strip() != ok_body:
        return Result.permanent("%s answered HTTP %d %r" % (where, status, text[:100]))
    return classify_http(status, "from %s" % where)
