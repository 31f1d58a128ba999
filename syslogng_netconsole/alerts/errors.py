"""Short, secret-free descriptions of delivery errors, for every channel.

Imports no network module: the JSON-lines channel uses it too, and must work where
`ssl` cannot be imported (a foreign standard library). Network error classes are
looked up only if their module is already loaded (else no error can be one).
"""

import sys


def error_detail(exc) -> str:
    urllib_error = sys.modules.get("urllib.error")
    if urllib_error is not None and isinstance(exc, urllib_error.URLError) \
            and not isinstance(exc, urllib_error.HTTPError):
        exc = exc.reason if isinstance(exc.reason, BaseException) else exc
    ssl = sys.modules.get("ssl")
    if ssl is not None and isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate verify failed: %s" % (exc.verify_message or exc.reason)
    if isinstance(exc, TimeoutError):       # socket.timeout is TimeoutError
        return "timed out"
    if isinstance(exc, OSError) and exc.strerror:
        return "%s: %s" % (type(exc).__name__, exc.strerror)
    return "%s: %s" % (type(exc).__name__, str(exc)[:200])
