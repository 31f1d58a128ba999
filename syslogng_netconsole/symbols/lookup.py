"""Where the debug file of a release and module is.

Directories laid out as Debian's ``linux-image-RELEASE-dbg`` installs them (several,
searched in order)::

    DIR/boot/vmlinux-RELEASE
    DIR/lib/modules/RELEASE/**/MODULE.ko        (also .ko.xz / .ko.gz)
    DIR/.build-id/ab/cdef....debug

A file found there with line tables (``.debug_line``) is used as it is. A file
without them (``/`` as a directory finds the host's own stripped modules in
``/lib/modules``) still names its build-id, and so does a report printed with
CONFIG_STACKTRACE_BUILD_ID: that build-id is then asked of the debuginfod client
(debuginfod.py), if there is one.

A (release, module, build-id) found nowhere is remembered as such for
``negative_ttl`` seconds of the caller's ``clock`` (none: not remembered), so a storm
of reports from a release without debug files costs one search, not one per report;
a ``-dbg`` package installed meanwhile is found once that time has passed (the
release's directory index is read again then).

Names come from kernel text: a release or module name that could be a path
trick (``..``, ``/``, odd characters) is refused before it reaches the disk.
"""

import os
import re
from typing import Callable, Dict, List, Optional, Tuple

from syslogng_netconsole.symbols import elf
from syslogng_netconsole.symbols.frames import BUILD_ID_OK, module_name_ok

RELEASE_OK = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+~-]{0,99}$")
MODULE_EXTS = (".ko", ".ko.xz", ".ko.gz")
MAX_INDEX = 100000          # module files indexed per (directory, release)
MAX_SMALL = 64 << 20        # a compressed module is decompressed in memory up to this
NEGATIVE_TTL = 60.0         # seconds a debug file found nowhere is not looked for again
MAX_NEGATIVE = 4096         # (release, module, build-id) remembered as not found


def release_ok(release: Optional[str]) -> bool:
    return bool(release) and bool(RELEASE_OK.match(release)) and ".." not in release


def _norm(name: str) -> str:
    return name.replace("-", "_")


def open_elf(path: str) -> elf.Elf:
    if path.endswith(".xz") or path.endswith(".gz"):
        try:    # here, not at import: a broken stdlib costs compressed modules only
            import gzip
            import lzma
        except ImportError as exc:
            raise elf.ElfError("cannot decompress: %s" % exc) from exc
        opener = lzma.open if path.endswith(".xz") else gzip.open
        try:
            with opener(path) as f:
                data = f.read(MAX_SMALL + 1)
        except (OSError, lzma.LZMAError, EOFError) as exc:
            raise elf.ElfError("cannot decompress: %s" % exc) from exc
        if len(data) > MAX_SMALL:
            raise elf.ElfError("compressed module too big")
        return elf.Elf(data)
    return elf.read_file(path)


class Locator:
    """Finds debug files; remembers directory indexes and the build-ids of files."""

    def __init__(self, dirs: List[str], debuginfod=None,
                 clock: Optional[Callable[[], float]] = None,
                 negative_ttl: float = NEGATIVE_TTL):
        self.dirs = [d for d in dirs if d]
        self.debuginfod = debuginfod
        self.clock = clock
        self.negative_ttl = negative_ttl
        self._index: Dict[Tuple[str, str], Dict[str, List[str]]] = {}
        self._negative: Dict[Tuple[str, str, str], Tuple[float, str]] = {}
        self.last_error = ""
        self.counters = {"negative_hits": 0}

    def _modules(self, root: str, release: str) -> Dict[str, List[str]]:
        key = (root, release)
        idx = self._index.get(key)
        if idx is not None:
            return idx
        idx = {}
        base = os.path.join(root, "lib", "modules", release)
        n = 0
        for dirpath, dirnames, filenames in os.walk(base):
            dirnames.sort()
            for fn in sorted(filenames):
                for ext in MODULE_EXTS:
                    if fn.endswith(ext):
                        idx.setdefault(_norm(fn[:-len(ext)]), []).append(
                            os.path.join(dirpath, fn))
                        n += 1
            if n >= MAX_INDEX:
                break
        if len(self._index) > 256:
            self._index.clear()
        self._index[key] = idx
        return idx

    def candidates(self, release: str, module: str, build_id: str = "") -> List[str]:
        """Local files that may be the debug file, best first."""
        out = []
        if build_id and BUILD_ID_OK.match(build_id):
            for root in self.dirs:
                out.append(os.path.join(root, ".build-id", build_id[:2], build_id[2:] + ".debug"))
        if release_ok(release):
            for root in self.dirs:
                if not module:
                    out.append(os.path.join(root, "boot", "vmlinux-" + release))
                elif module_name_ok(module):
                    out.extend(self._modules(root, release).get(_norm(module), []))
        return [p for p in out if os.path.isfile(p)]

    def find(self, release: str, module: str, build_id: str = "") -> Tuple[Optional[str], str]:
        """(path of a debug file with line tables, where from: "dir" | "debuginfod"),
        or (None, why not)."""
        if module and not module_name_ok(module):
            return None, "bad-name"
        if self.clock is None or self.negative_ttl <= 0:
            return self._find(release, module, build_id)
        key = (release, module, build_id)
        now = self.clock()
        known = self._negative.get(key)
        if known is not None:
            if now < known[0]:
                self.counters["negative_hits"] += 1
                return None, known[1]
            del self._negative[key]
            for root in self.dirs:      # a -dbg package may have come meanwhile
                self._index.pop((root, release), None)
        path, source = self._find(release, module, build_id)
        if path is None:
            if len(self._negative) >= MAX_NEGATIVE:
                self._negative.clear()
            self._negative[key] = (now + self.negative_ttl, source)
        return path, source

    def _find(self, release: str, module: str, build_id: str) -> Tuple[Optional[str], str]:
        ids = [build_id] if build_id and BUILD_ID_OK.match(build_id) else []
        for path in self.candidates(release, module, build_id):
            try:
                e = open_elf(path)
                bid = e.build_id() or ""
                if ids and bid and bid != ids[0]:
                    continue                    # another build of the module
                if e.has_dwarf() and not path.endswith((".xz", ".gz")):
                    return path, "dir"
                if bid and bid not in ids:
                    ids.append(bid)
            except (OSError, elf.ElfError):
                continue
        if not ids:
            return None, "no-debug-file"
        if self.debuginfod is None:
            return None, "no-debug-file"
        for bid in ids:
            path = self.debuginfod.fetch(bid)
            if path:
                return path, "debuginfod"
        return None, self.debuginfod.last_error or "debuginfod-miss"
