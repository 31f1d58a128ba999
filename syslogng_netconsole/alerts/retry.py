"""Shared retry policy of every channel: result classification and backoff.

Like Alertmanager's notifiers: 2xx is success, 5xx/429/network errors are retried
with capped exponential backoff and jitter, other 4xx are permanent. A server's
``Retry-After`` (seconds or HTTP date) is honoured. Pure: the caller passes the
random source and the current wall-clock time.
"""

import email.utils
from dataclasses import dataclass
from typing import Optional

OK, RETRY, PERMANENT = "ok", "retry", "permanent"


@dataclass
class Result:
    outcome: str                        # OK | RETRY | PERMANENT
    detail: str = ""                    # short, secret-free
    retry_after: Optional[float] = None  # seconds, from the server

    @property
    def ok(self):
        return self.outcome == OK

    @classmethod
    def success(cls, detail="delivered"):
        return cls(OK, detail)

    @classmethod
    def retry(cls, detail, retry_after=None):
        return cls(RETRY, detail, retry_after)

    @classmethod
    def permanent(cls, detail):
        return cls(PERMANENT, detail)


def classify_http(status, detail="", retry_after=None):
    """HTTP status -> Result. 408/425/429 and 5xx retry; other 4xx are permanent."""
    text = "HTTP %d%s" % (status, (" " + detail) if detail else "")
    if 200 <= status < 300:
        return Result.success(text)
    if status in (408, 425, 429) or status >= 500:
        return Result.retry(text, retry_after)
    return Result.permanent(text)


def parse_retry_after(value, now):
    """'120' or an HTTP date -> seconds from ``now`` (wall clock); None if unusable."""
    if value is None:
        return None
    value = str(value).strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        dt = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if dt is None:
        return None
    return max(0.0, dt.timestamp() - now)


class Backoff:
    """Capped exponential backoff with jitter ("equal jitter": half fixed, half random,
    so a retry never comes back at once)."""

    def __init__(self, base=5.0, cap=900.0, retry_after_cap=3600.0):
        self.base = float(base)
        self.cap = float(cap)
        self.retry_after_cap = float(retry_after_cap)

    def delay(self, attempts, rand, retry_after=None):
        """Seconds until the next try after ``attempts`` failed tries (>= 1).
        ``rand`` is a float in [0, 1)."""
        d = min(self.cap, self.base * (2 ** max(0, min(attempts - 1, 30))))
        d = d / 2 + d / 2 * rand
        if retry_after is not None:
            d = max(d, min(float(retry_after), self.retry_after_cap))
        return d
