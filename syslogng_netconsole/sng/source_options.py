"""The netconsole() source's options: names, converters, defaults, one table.

Options come as str on 3.38 and typed on 4.x; a bad one raises ValueError naming
it (the source logs that one error and fails init at start-up).
"""

import ipaddress
import re

from .. import options as opt
from ..ingest.reassembly import ReassemblyLimits


def _to_addrs(v):
    addrs = tuple(a for a in re.split(r"[\s,]+", str(v).strip()) if a)
    if not addrs:
        raise ValueError("expected an IPv4 or IPv6 address")
    for a in addrs:
        ipaddress.ip_address(a)  # ValueError names the bad one
    return addrs


# option name -> (converter, default); "" in the SCL means "the default"
OPTIONS = {
    "ip": (_to_addrs, ("0.0.0.0",)),
    "port": (opt.port, 6666),
    "rcvbuf": (opt.at_least(int, 0), 4194304),
    "reuseport": (opt.boolean, False),
    "state_dir": (str, ""),
    "stats_interval": (opt.at_least(float, 0), 300.0),
    "detect": (opt.boolean, False),     # crash detection here (sng/detect.py)
    # ... in a worker process (sng/detect_worker.py): "auto" = when there are 2+ cores
    "detect_worker": (opt.auto_boolean, "auto"),
    # with detect and a state_dir: open reports journaled against a SIGKILL (journal.py)
    "journal": (opt.boolean, True),
    # host names and labels (sng/hostinfo.py): an inventory file, reverse DNS
    "inventory": (str, ""),
    "reverse_dns": (opt.boolean, False),
    "reverse_dns_ttl": (opt.at_least(float, 1), 3600.0),
}
# reassembly limits: option name -> ReassemblyLimits attribute, converter (default: the core's)
LIMIT_OPTIONS = {
    "fragment_timeout": ("frag_timeout", opt.at_least(float, 0)),
    "line_timeout": ("line_timeout", opt.at_least(float, 0)),
    "reorder_window": ("reorder_window", opt.at_least(float, 0)),
    "max_hosts": ("max_streams", opt.at_least(int, 1)),
    "max_pending": ("max_pending_bytes", opt.at_least(int, 1)),
    "idle_timeout": ("idle_timeout", opt.at_least(float, 0)),
}
_TABLE = dict(OPTIONS, **{name: (conv, None) for name, (_, conv) in LIMIT_OPTIONS.items()})


def parse_options(options):
    """SCL options (str on 3.38, typed on 4.x) -> (settings, ReassemblyLimits).
    Raises ValueError naming the option."""
    values = opt.parse_table(_TABLE, options, "netconsole()")
    settings = {name: values[name] for name in OPTIONS}
    overrides = {attr: values[name] for name, (attr, _) in LIMIT_OPTIONS.items()
                 if values[name] is not None}
    return settings, ReassemblyLimits(**overrides)
