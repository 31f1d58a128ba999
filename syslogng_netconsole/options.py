"""Converters for driver options, shared by every syslog-ng driver and the CLI.

syslog-ng 3.38 passes every option value as str; 4.x passes bool, int, float or
list where the SCL wrote one. Each converter accepts both and raises ValueError
saying what it expected; the caller names the option. Pure.
"""

_TRUE = frozenset(("1", "yes", "true", "on"))
_FALSE = frozenset(("0", "no", "false", "off"))


def boolean(v) -> bool:
    if isinstance(v, bool):
        return v
    s = str(v).strip().lower()
    if s in _TRUE:
        return True
    if s in _FALSE:
        return False
    raise ValueError("expected yes or no")


def port(v) -> int:
    p = int(str(v).strip())
    if not 0 < p < 65536:
        raise ValueError("expected a port number, 1-65535")
    return p


def _number(kind, v):
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return kind(v)               # 4.x typed value
    return kind(str(v).strip())


def at_least(kind, minimum):
    """Converter to `kind` (int or float) refusing values below `minimum`."""
    def conv(v):
        n = _number(kind, v)
        if not n >= minimum:          # also refuses NaN
            raise ValueError("expected a number >= %s" % minimum)
        return n
    return conv


def positive(kind):
    """Converter to `kind` refusing zero, negative values and NaN."""
    def conv(v):
        n = _number(kind, v)
        if not n > 0:
            raise ValueError("expected a number > 0")
        return n
    return conv


def items(v) -> list:
    """A comma separated list (or a 4.x list) of non-empty stripped strings."""
    if isinstance(v, (list, tuple)):
        parts = [str(x) for x in v]
    else:
        parts = str(v).split(",")
    return [x.strip() for x in parts if x.strip()]
