"""Host labels (rack, role, team ...) from untrusted text: a sender's configfs userdata
or the operator's inventory. They end up as Alertmanager label names, JSON keys and
mail lines, so keys are Prometheus label names and values one short printable line.
Pure."""

import re
from typing import Dict, Iterable, Optional, Tuple

MAX_LABELS = 16            # per host; the rest are dropped (counted by the caller)
MAX_KEY = 32
MAX_VALUE = 128
# names an alert already uses for itself: a host label never replaces them
RESERVED = frozenset(("alertname", "host", "hostname", "instance", "type", "signature",
                      "severity", "source", "release", "new", "new_on_release", "job"))
_KEY_BAD = re.compile(r"[^A-Za-z0-9_]")
_WS = re.compile(r"\s+")


def clean_key(key: str) -> Optional[str]:
    """'rack-id' -> 'rack_id'; None for a key that cannot be a label name."""
    k = _KEY_BAD.sub("_", str(key).strip())[:MAX_KEY]
    if not k or k[0].isdigit() or k.startswith("__") or k.lower() in RESERVED:
        return None
    return k


def clean_value(value) -> str:
    """One printable line (control characters, bidi overrides, CR/LF become spaces)."""
    s = str(value)
    if not s.isprintable():
        s = "".join(c if c.isprintable() else " " for c in s)
    return _WS.sub(" ", s).strip()[:MAX_VALUE]


def clean(pairs: Iterable[Tuple[str, object]]) -> Dict[str, str]:
    """Key/value pairs -> at most MAX_LABELS clean labels (first one of a key wins);
    unusable keys and empty values are left out."""
    out = {}
    for key, value in pairs:
        k = clean_key(key)
        if k is None or k in out:
            continue
        v = clean_value(value)
        if v:
            out[k] = v
            if len(out) >= MAX_LABELS:
                break
    return out


def merge(low: Dict[str, str], high: Dict[str, str]) -> Dict[str, str]:
    """`high` (more trusted) wins per key; still at most MAX_LABELS."""
    if not low:
        return high
    if not high:
        return low
    out = dict(high)
    for k, v in low.items():
        if len(out) >= MAX_LABELS:
            break
        out.setdefault(k, v)
    return out
