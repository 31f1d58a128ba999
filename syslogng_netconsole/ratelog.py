"""Rate-limited logging for the syslog-ng drivers: trouble that repeats per
datagram must not flood syslog-ng's internal log. Pure: time is an argument."""

import collections


class RateLimitedLog:
    """At most one line per kind of trouble every `every` seconds; the lines held
    back are counted and mentioned in the next line of that kind.

    `emit(level, text)` writes one line; `level` is "error", "warning", "info"...
    """

    def __init__(self, emit, prefix: str, every: float):
        self._emit = emit
        self._prefix = prefix
        self._every = every
        self._last = {}
        self._suppressed = collections.Counter()

    def __call__(self, kind: str, text: str, now: float, level: str = "error"):
        last = self._last.get(kind)
        if last is not None and now - last < self._every:
            self._suppressed[kind] += 1
            return
        self._last[kind] = now
        n = self._suppressed.pop(kind, 0)
        if n:
            text += " (%d similar messages suppressed)" % n
        self._emit(level, self._prefix + text)

    @property
    def suppressed(self) -> int:
        """Lines held back and not yet mentioned."""
        return sum(self._suppressed.values())
