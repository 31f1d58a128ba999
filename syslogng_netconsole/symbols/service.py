"""One symbolizer for a destination or a CLI run: the lookup, the debuginfod
client, the tool and the caches put together from options, and the counters.

``Symbolizer.run(text, release)`` -> (symbols, guilty_file, subsystem); see
symbolize.py for ``symbols``. Never raises for bad input, missing files, a missing
tool or a dead server: the report stays unsymbolized and the reason is counted
(``counters``: symbolized, symbolized_partial, unsymbolized, and one
``unsymbolized_<reason>`` per reason).
"""

import collections
import os
from typing import Callable, List, Mapping, Optional

from syslogng_netconsole.symbols import maintainers as maint
from syslogng_netconsole.symbols.debuginfod import Debuginfod, split_urls
from syslogng_netconsole.symbols.lookup import Locator
from syslogng_netconsole.symbols.symbolize import Cache, symbolize
from syslogng_netconsole.symbols.tool import Addr2line

DEFAULT_DIRS = ("/usr/lib/debug", "/")


def debuginfod_urls(value: str, environ: Mapping[str, str]) -> List[str]:
    """The option's URLs: "" = the environment's DEBUGINFOD_URLS (elfutils'
    convention), "none" = no server."""
    value = (value or "").strip()
    if value.lower() == "none":
        return []
    if not value:
        value = environ.get("DEBUGINFOD_URLS", "")
    return split_urls(value)


def check_urls(value: str) -> str:
    """Converter for the option: every URL must be http(s)."""
    value = str(value).strip()
    if value.lower() != "none":
        for u in value.split():
            if split_urls(u) != [u.rstrip("/")]:
                raise ValueError("expected space-separated http:// or https:// URLs")
    return value


def has_frames(text: Optional[str]) -> bool:
    """False when the report cannot have a frame (no ``func+0x``): skipped quickly."""
    return bool(text) and "+0x" in text


class Symbolizer:
    def __init__(self, dirs, urls: List[str], cache_dir: str, cache_size: int = 2 << 30,
                 maintainers_file: str = "", timeout: float = 30.0,
                 clock: Optional[Callable[[], float]] = None, tool=None):
        self.debuginfod = Debuginfod(urls, cache_dir, cache_size, timeout=min(timeout, 10.0),
                                     clock=clock) if urls else None
        self.locator = Locator(list(dirs), self.debuginfod, clock=clock)
        self.tool = tool or Addr2line(timeout=timeout)
        self.timeout = timeout
        self.cache = Cache()
        self.maintainers = maint.load(maintainers_file) if maintainers_file else None
        self.counters = collections.Counter()

    def run(self, text: str, release: Optional[str]):
        # a report without frames: symbolize() says "no-frames" without the tool
        if has_frames(text) and not self.tool.available():
            symbols = {"status": "none", "reason": "no-addr2line", "frames": [],
                       "guilty_file": None, "sources": {}}
        else:
            symbols = symbolize(text, release, self.locator, self.tool, self.cache,
                                timeout=self.timeout)
        status = symbols["status"]
        if status == "ok":
            self.counters["symbolized"] += 1
        elif status == "partial":
            self.counters["symbolized_partial"] += 1
        else:
            self.counters["unsymbolized"] += 1
        for reason in filter(None, symbols["reason"].split(",")):
            self.counters["unsymbolized_" + reason.replace("-", "_")] += 1
        guilty = symbols.get("guilty_file")
        subsystem = self.maintainers.lookup(guilty) if self.maintainers and guilty else {}
        return symbols, guilty, subsystem


def from_options(opts: dict, state_dir: str, environ=os.environ, clock=None) -> Symbolizer:
    """The destination's symbolizer (options of sng/symbolize.py's table)."""
    return Symbolizer(opts["debug_dirs"] or DEFAULT_DIRS,
                      debuginfod_urls(opts["debuginfod_urls"], environ),
                      os.path.join(state_dir, "debuginfod-cache"),
                      opts["debuginfod_cache_size"], opts["maintainers_file"],
                      opts["symbolize_timeout"], clock=clock)
