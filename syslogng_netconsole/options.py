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


def auto_boolean(v):
    """"auto" (the caller decides) or a boolean."""
    return "auto" if str(v).strip().lower() == "auto" else boolean(v)


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


_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def duration(v) -> float:
    """Seconds from '90', '90s', '5m', '1.5h', '2d' (suffix in either case) or a
    4.x number; refuses negative values and NaN."""
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        value = float(v)
    else:
        s = str(v).strip().lower()
        scale = _SECONDS.get(s[-1:], 1)
        try:
            value = float(s[:-1] if s[-1:] in _SECONDS else s) * scale
        except ValueError:
            raise ValueError("expected a duration: a number with an optional s/m/h/d suffix")
    if not value >= 0:
        raise ValueError("expected a duration >= 0")
    return value


_SIZES = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}


def size(v) -> int:
    """Bytes from '4096', '64k', '100M', '1G' (suffix in either case) or a 4.x number;
    0 means no limit."""
    s = str(v).strip().lower()
    scale = _SIZES.get(s[-1:], 1)
    try:
        value = int(float(s[:-1] if s[-1:] in _SIZES else s) * scale)
    except ValueError:
        raise ValueError("expected a size: a number with an optional k/M/G suffix")
    if value < 0:
        raise ValueError("expected a size >= 0")
    return value


def items(v) -> list:
    """A comma separated list (or a 4.x list) of non-empty stripped strings."""
    if isinstance(v, (list, tuple)):
        parts = [str(x) for x in v]
    else:
        parts = str(v).split(",")
    return [x.strip() for x in parts if x.strip()]


def parse_table(table, options, who: str) -> dict:
    """Options of one driver, checked against its table {name: (converter, default)}.

    Names may be spelt with '-' or '_'; "" means the default (the SCL blocks pass ""
    for an option the user did not set); bytes values (3.38) are decoded. Raises
    ValueError naming the driver and the option: unknown name or bad value."""
    out = {name: default for name, (_, default) in table.items()}
    for key, value in dict(options or {}).items():
        name = str(key).replace("-", "_")
        if name not in table:
            raise ValueError("%s: unknown option %r (known: %s)" % (who, key, ", ".join(sorted(table))))
        if isinstance(value, bytes):
            value = value.decode("utf-8", "replace")
        if isinstance(value, str) and value.strip() == "":
            continue
        try:
            out[name] = table[name][0](value)
        except (TypeError, ValueError) as exc:
            raise ValueError("%s: invalid value %r for option %r: %s" % (who, value, name, exc))
    return out
