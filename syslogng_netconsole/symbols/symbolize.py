"""Symbolize one report: each frame's source file and line, inlined frames
expanded, and the guilty file.

``symbolize(text, release, locator, tool)`` returns a JSON-safe dict::

    {"status": "ok" | "partial" | "none", "reason": "", "frames": [...],
     "guilty_file": "drivers/x/y.c" | None, "sources": {"dir": n, "debuginfod": n}}

one entry per frame line of the report (frames.py), in order::

    {"line": 12, "func": "nctest_init", "off": 80, "size": 4096, "module": "nctest",
     "kind": "return", "locations": [{"func": ..., "file": "nctest.c", "line": 157}, ...]}

``locations`` are innermost first (an inlined callee before the function it was
inlined into); empty when the frame could not be symbolized. Pure: the debug
files come from ``locator`` (lookup.py), file:line from ``tool`` (tool.py).
"""

import posixpath
import re
from typing import Dict, List, Optional, Tuple

from syslogng_netconsole.reports.frames import skip_re
from syslogng_netconsole.symbols import elf
from syslogng_netconsole.symbols.frames import Frame, parse
from syslogng_netconsole.symbols.lookup import open_elf
from syslogng_netconsole.symbols.tool import ToolError

# files that never hold the bug: headers (inlined helpers), the reporting code
GUILTY_FILE_SKIP = re.compile(
    r"^(?:include/|arch/[^/]+/include/|lib/dump_stack\.c|lib/bug\.c|kernel/panic\.c|"
    r"mm/kasan/|mm/kmsan/|kernel/kcsan/|lib/ubsan\.c|kernel/locking/lockdep|"
    r"kernel/printk/|lib/vsprintf\.c|arch/[^/]+/kernel/traps\.c|arch/[^/]+/entry/)")
MAX_CACHED_FILES = 8


class _DebugFile:
    """Symbols and source roots of one debug file (read once, kept for a while)."""

    def __init__(self, path: str, tool):
        self.path = path
        e = open_elf(path)
        self.relocatable = e.type == elf.ET_REL
        self.symbols = e.symbols()
        try:
            self.roots = tool.roots(path)
        except ToolError:
            self.roots = []

    def resolve(self, frame: Frame) -> Optional[Tuple[str, int]]:
        """(section for addr2line or "", address) of a frame, or None when the
        symbol is not there or is too small for the offset (another build)."""
        syms = self.symbols.get(frame.func)
        if not syms:
            return None
        same = [s for s in syms if s.size == frame.size] or syms
        sym = ([s for s in same if s.is_func] or same)[0]     # a function over a label
        if sym.size and frame.off > max(sym.size, frame.size):
            return None
        addr = sym.value + frame.lookup_off
        return (sym.section, addr) if self.relocatable else ("", addr)

    def relative(self, path: str) -> str:
        if not path:
            return ""
        path = posixpath.normpath(path)
        for root in self.roots:
            if path.startswith(root + "/"):
                return path[len(root) + 1:]
        return path[2:] if path.startswith("./") else path


class Cache:
    """Debug files already read, by path (a small LRU: a vmlinux's symbol table
    takes a while to read)."""

    def __init__(self, size: int = MAX_CACHED_FILES):
        self.size = size
        self._files: Dict[str, _DebugFile] = {}

    def get(self, path: str, tool) -> _DebugFile:
        f = self._files.pop(path, None)
        if f is None:
            f = _DebugFile(path, tool)
        self._files[path] = f
        while len(self._files) > self.size:
            self._files.pop(next(iter(self._files)))
        return f


def _frame_dict(f: Frame) -> dict:
    return {"line": f.line, "func": f.func, "off": f.off, "size": f.size,
            "module": f.module, "kind": f.kind, "locations": []}


def _group(frames: List[Frame]):
    groups: Dict[Tuple[str, str], List[Frame]] = {}
    for f in frames:
        groups.setdefault((f.module, f.build_id), []).append(f)
    return groups


def symbolize(text: str, release: Optional[str], locator, tool,
              cache: Optional[Cache] = None, timeout: Optional[float] = None) -> dict:
    """See the module docstring. Never raises for bad input or missing files."""
    frames = parse(text or "")
    out = [_frame_dict(f) for f in frames]
    result = {"status": "none", "reason": "", "frames": out, "guilty_file": None,
              "sources": {}}
    if not frames:
        result["reason"] = "no-frames"
        return result
    cache = cache if cache is not None else Cache()
    reasons = []
    for (module, build_id), group in _group(frames).items():
        path, source = locator.find(release or "", module, build_id)
        if path is None:
            reasons.append(source)
            continue
        try:
            dbg = cache.get(path, tool)
        except (OSError, elf.ElfError):
            reasons.append("bad-debug-file")
            continue
        n = _lookup(dbg, group, frames, out, tool, timeout, reasons)
        if n:
            result["sources"][source] = result["sources"].get(source, 0) + n
    done = sum(1 for d in out if d["locations"])
    result["status"] = "ok" if done == len(out) else ("partial" if done else "none")
    result["reason"] = ",".join(sorted(set(reasons)))
    result["guilty_file"] = guilty_file(out)
    return result


def _lookup(dbg, group, frames, out, tool, timeout, reasons) -> int:
    by_section: Dict[str, Dict[int, List[int]]] = {}
    for f in group:
        where = dbg.resolve(f)
        if where is None:
            reasons.append("symbol-not-found")
            continue
        by_section.setdefault(where[0], {}).setdefault(where[1], []).append(frames.index(f))
    n = 0
    for section, addrs in by_section.items():
        try:
            found = tool.lookup(dbg.path, section, sorted(addrs), timeout=timeout)
        except ToolError:
            reasons.append("tool-failed")
            continue
        for addr, idxs in addrs.items():
            locs = [{"func": loc.func, "file": dbg.relative(loc.file), "line": loc.line}
                    for loc in found.get(addr, []) if loc.file]
            for i in idxs:
                out[i]["locations"] = locs
                n += 1 if locs else 0
    return n


def guilty_file(frames: List[dict]) -> Optional[str]:
    """The first file of a reliable frame that is not reporting or helper code
    (the title's frame skip list, plus headers and the reporting files). None when
    that frame could not be symbolized: a later frame's file would be a guess (a
    module without its debug file leaves init/main.c, do_one_initcall's, next)."""
    skip = skip_re(())
    for d in frames:
        if d["kind"] == "unreliable":
            continue
        if not d["locations"] and not skip(d["func"]):
            return None
        for loc in d["locations"]:
            if skip(loc["func"] or d["func"]) or GUILTY_FILE_SKIP.match(loc["file"]):
                continue
            return loc["file"]
    return None


def where(locations: List[dict]) -> str:
    """'nctest.c:40' of the innermost location, '' when none."""
    if not locations:
        return ""
    return "%s:%d" % (locations[0]["file"], locations[0]["line"])


def annotate(text: str, symbols: Optional[dict]) -> str:
    """The report with each symbolized frame line followed by its file:line and
    the functions the code was inlined into, as addr2line -p prints them. `symbols`
    may come from a store or a journal (untrusted): malformed, the text as it is."""
    if not isinstance(symbols, dict) or not symbols.get("frames"):
        return text
    try:
        return _annotate(text, symbols)
    except (TypeError, KeyError, ValueError, AttributeError):
        return text


def _annotate(text: str, symbols: dict) -> str:
    lines = (text or "").split("\n")
    extra: Dict[int, List[str]] = {}
    for d in symbols["frames"]:
        locs = d.get("locations") or []
        i = d.get("line")
        if not locs or not isinstance(i, int) or not 0 <= i < len(lines) or i in extra:
            continue
        inner = locs[0].get("func")
        # code inlined into the frame's function: name it, as decode_stacktrace.sh does
        add = [" (%s)" % where(locs) if not inner or inner == d.get("func") or len(locs) == 1
               else " (%s: %s)" % (where(locs), inner)]
        for loc in locs[1:]:
            add.append("    (inlined by) %s (%s:%d)" % (loc["func"], loc["file"], loc["line"]))
        extra[i] = add
    out = []
    for i, ln in enumerate(lines):
        if i in extra:
            out.append(ln + extra[i][0])
            out.extend(extra[i][1:])
        else:
            out.append(ln)
    return "\n".join(out)
